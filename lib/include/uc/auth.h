/* uc/auth.h - who is calling: token claims, role checks, and the verifier
 * that checks IAM's EdDSA tokens offline against a cached JWKS key set,
 * refetched when a token names an unknown `kid`. A verifier is thread-safe
 * (one mutex guards its key cache); claims are plain values. */
#ifndef UC_AUTH_H
#define UC_AUTH_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "uc/clock.h"
#include "uc/err.h"

/* Roles in a project, ordered: a higher role includes the lower ones. The
 * system admin role is global and passes every check. */
enum uc_role {
    UC_ROLE_ANY = 0, /* any authenticated caller */
    UC_ROLE_READER,
    UC_ROLE_MEMBER,
    UC_ROLE_ADMIN,
    UC_ROLE_SYSTEM_ADMIN,
};

#define UC_AUTH_ID_LEN 64
#define UC_AUTH_AUDIENCE "ultracloud"
#define UC_AUTH_ISSUER "ultracloud-iam"

/* What a verified token says. `role` is the caller's highest role in
 * `project` (UC_ROLE_ANY when it has none or no project). */
struct uc_auth_claims {
    char sub[UC_AUTH_ID_LEN];     /* principal id: "user-..." or "sa-..." */
    char name[UC_AUTH_ID_LEN];    /* principal's name, for logs */
    char project[UC_AUTH_ID_LEN]; /* "" when the token has no project */
    char kid[UC_AUTH_ID_LEN];
    char jti[UC_AUTH_ID_LEN];
    enum uc_role role;
    bool system_admin;
    int64_t iat, exp; /* unix seconds */
};

/* Role names as they appear in tokens and the API: "reader", "member",
 * "admin"; "system-admin" for the global role. */
const char *uc_role_name(enum uc_role r);
/* Errors: UC_EINVAL for an unknown name. */
UC_MUSTCHECK int uc_role_parse(const char *name, enum uc_role *out);

/* 0 when the caller holds at least `need` (in its own project for project
 * roles). Errors: UC_EFORBIDDEN, with the missing role named in err. */
UC_MUSTCHECK int uc_auth_require(const struct uc_auth_claims *c, enum uc_role need,
                                 char err[UC_ERR_LEN]);

/* 0 when the caller may act with role `need` on objects of `project_id`:
 * system admins always, others only inside their own project. Errors:
 * UC_ENOENT when the object is in another project (so its existence does
 * not leak), UC_EFORBIDDEN when the role is too low. */
UC_MUSTCHECK int uc_auth_check_project(const struct uc_auth_claims *c, const char *project_id,
                                       enum uc_role need, char err[UC_ERR_LEN]);

/* Fill `out` from a decoded JWT payload, checking exp/nbf against now_s
 * (with leeway_s), iss and aud. Errors: UC_EUNAUTH with the reason. */
UC_MUSTCHECK int uc_auth_claims_from_json(const json_t *payload, int64_t now_s, int64_t leeway_s,
                                          struct uc_auth_claims *out, char err[UC_ERR_LEN]);

/* Where a verifier gets its JWKS document ({"keys":[...]}): *out is a new
 * reference the verifier releases. */
typedef int (*uc_auth_fetch_fn)(void *ctx, json_t **out, char err[UC_ERR_LEN]);

struct uc_auth_verifier_opts {
    const char *jwks_url;   /* used when fetch is NULL: GET with uc_httpc */
    uc_auth_fetch_fn fetch; /* optional: e.g. IAM reads its own keys */
    void *fetch_ctx;
    const char *audience;         /* NULL = UC_AUTH_AUDIENCE */
    const struct uc_clock *clock; /* NULL = real time */
    int64_t min_refetch_ms;       /* unknown kids refetch at most this often; 0 = 5000 */
    int64_t leeway_s;             /* clock skew allowed on exp/nbf; 0 = none */
};

struct uc_auth_verifier;

/* Create a verifier; it fetches keys lazily on first use. Strings in opts
 * are copied. Errors: UC_EINVAL (neither url nor fetch), UC_ENOMEM. */
UC_MUSTCHECK int uc_auth_verifier_create(struct uc_auth_verifier **out,
                                         const struct uc_auth_verifier_opts *opts,
                                         char err[UC_ERR_LEN]);
void uc_auth_verifier_destroy(struct uc_auth_verifier *v);

/* Verify a compact JWS: alg must be EdDSA, kid known (refetching the key set
 * once when it is not, rate-limited), signature valid, claims valid.
 * Errors: UC_EUNAUTH (bad, expired, tampered, wrong audience, unknown key),
 * UC_EUNAVAIL (the key set could not be fetched), UC_ENOMEM. */
UC_MUSTCHECK int uc_auth_verify(struct uc_auth_verifier *v, const char *token,
                                struct uc_auth_claims *out, char err[UC_ERR_LEN]);

/* Adapter with the signature of uc_http_authn_fn; ctx is the verifier. */
int uc_auth_http_authn(void *ctx, const char *token, struct uc_auth_claims *out,
                       char err[UC_ERR_LEN]);

#endif /* UC_AUTH_H */
