/* uc/auth.h - who is calling: token claims, role checks, and the verifier
 * that checks IAM's EdDSA tokens offline against a cached JWKS key set,
 * refetched when a token names an unknown `kid` and, in the background, once
 * the set is older than a bound (so retired keys stop working), and
 * remembers the tokens it has verified. A verifier is thread-safe (one mutex
 * guards its key set, striped mutexes its token cache); claims are plain
 * values. */
#ifndef UC_AUTH_H
#define UC_AUTH_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
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
 * "admin"; "system-admin" for the global role. UC_ROLE_ANY is "none" (for
 * messages; uc_role_parse does not take it), out-of-range values "unknown".
 * Never NULL; a static string. */
const char *uc_role_name(enum uc_role r);
/* Exact, case-sensitive. On failure *out is untouched.
 * Errors: UC_EINVAL for an unknown name or NULL. */
UC_MUSTCHECK int uc_role_parse(const char *name, enum uc_role *out);

/* 0 when the caller holds at least `need`: system admins pass everything,
 * UC_ROLE_SYSTEM_ADMIN needs a system admin, UC_ROLE_ANY passes anyone,
 * otherwise c->role (the role in the caller's own project) >= need.
 * Errors: UC_EFORBIDDEN, with e.g. "this call needs the 'admin' role in
 * the project; the token has 'reader'" in err. */
UC_MUSTCHECK int uc_auth_require(const struct uc_auth_claims *c, enum uc_role need,
                                 char err[UC_ERR_LEN]);

/* 0 when the caller may act with role `need` on objects of `project_id`
 * (borrowed; NULL matches no project): system admins always, others only
 * inside their own project and with uc_auth_require(need). Errors:
 * UC_ENOENT ("not found") when the object is in another project or the
 * token has none (so its existence does not leak), UC_EFORBIDDEN when the
 * role is too low. */
UC_MUSTCHECK int uc_auth_check_project(const struct uc_auth_claims *c, const char *project_id,
                                       enum uc_role need, char err[UC_ERR_LEN]);

/* Fill `out` from a decoded JWT payload (borrowed), as IAM signs it:
 *   {"iss":"ultracloud-iam", "aud":"ultracloud" (or an array holding it),
 *    "sub":"user-...", "name":"alice", "project":"proj-..." (optional),
 *    "roles":["member"], "sys":true (system admins only),
 *    "iat":..., "exp":..., "nbf":... (optional), "jti":"..."}
 * Checks: iss is UC_AUTH_ISSUER; aud holds UC_AUTH_AUDIENCE; exp is present
 * and exp > now_s - leeway_s; nbf and iat, when present, are <= now_s +
 * leeway_s (times are JSON integers); sub is a non-empty string; sub, name,
 * project and jti fit their buffers (else the token is refused, never
 * cut); roles is an array of strings whose highest known project role
 * becomes out->role (unknown names are ignored, and without a project the
 * role is UC_ROLE_ANY); sys is a boolean. out->kid is left "" (it lives in
 * the header). On failure *out is untouched.
 * Errors: UC_EUNAUTH with the reason ("token expired", ...). */
UC_MUSTCHECK int uc_auth_claims_from_json(const json_t *payload, int64_t now_s, int64_t leeway_s,
                                          struct uc_auth_claims *out, char err[UC_ERR_LEN]);

/* Where a verifier gets its JWKS document ({"keys":[...]}): on success *out
 * is a new reference the verifier releases; on failure return a negative
 * UC_E* with a message. Called with no verifier lock held except the one
 * that serializes fetches, so it may block (briefly), from a verifying
 * thread or from the verifier's background refresh thread: fetch_ctx must
 * be safe to use from any thread. */
typedef int (*uc_auth_fetch_fn)(void *ctx, json_t **out, char err[UC_ERR_LEN]);

struct uc_auth_verifier_opts {
    /* Used when fetch is NULL: GET with uc_httpc_json (3 s deadline, 2
     * retries); needs uc_httpc_global_init. */
    const char *jwks_url;
    uc_auth_fetch_fn fetch; /* optional: e.g. IAM reads its own keys */
    void *fetch_ctx;
    const char *audience;         /* NULL = UC_AUTH_AUDIENCE */
    const struct uc_clock *clock; /* NULL = real time */
    int64_t min_refetch_ms;       /* unknown kids refetch at most this often; 0 = 5000 */
    int64_t leeway_s;             /* clock skew allowed on exp/nbf; 0 = none */
    /* Verified-token cache (see "The token cache" below): slots, 1 to
     * UC_AUTH_CACHE_MAX; 0 = UC_AUTH_CACHE_DEFAULT (so zeroed opts get it),
     * UC_AUTH_CACHE_OFF turns it off. */
    long cache_entries;
    int64_t cache_max_age_ms; /* 1 to UC_AUTH_CACHE_MAX_AGE_LIMIT_MS; 0 = 5 min */
    /* Key set age that starts a background refetch (see "Key retirement"
     * below): 1 to UC_AUTH_JWKS_MAX_AGE_LIMIT_MS; 0 = UC_AUTH_JWKS_MAX_AGE_MS. */
    int64_t jwks_max_age_ms;
};

/* Key retirement. IAM retires a key by dropping it from its JWKS; a
 * verifier stops accepting it when it next loads the set. Loads happen
 * (a) at once, with the caller waiting, for a token whose kid is not in
 * the set (at most once per min_refetch_ms), and (b) in the background
 * once the set is stale: jwks_max_age_ms after the fetch that produced it
 * began. The first verification that finds the set stale (a token cache
 * hit counts) starts one refetch on a thread of the verifier's own and goes
 * on with the current set; so does every verification meanwhile. No
 * verification waits on the network while a set is loaded, except for an
 * unknown kid (a token that no loaded key can check). When the new set
 * lacks a kid or changes its key, the refetch swaps it in and empties the
 * token cache before it completes.
 * The bound, while IAM answers: a verification refuses the key once both
 * (1) jwks_max_age_ms (or min_refetch_ms, if larger) have passed since the
 * key was retired and (2) the refetch started by the first verification
 * after that has completed. With steady traffic that is jwks_max_age_ms
 * plus one fetch (at most its 3 s deadline over jwks_url) after the
 * retirement; after an idle spell, the verifications that overlap that one
 * fetch may still pass. A failed refetch keeps the old set (IAM being down
 * must not stop every service), is logged, and is retried by the first
 * verification min_refetch_ms after it began; the bound then counts from
 * IAM's recovery. uc_auth_verifier_destroy waits for a refetch in flight. */
#define UC_AUTH_JWKS_MAX_AGE_MS (5 * 60 * 1000)
#define UC_AUTH_JWKS_MAX_AGE_LIMIT_MS (60 * 60 * 1000)

/* The token cache. A token that verified is remembered by the SHA-256 of
 * its exact bytes (the token itself is never stored), with its claims, so
 * checking it again costs a hash and a lookup instead of an Ed25519 verify
 * and a JSON parse. Failures are never cached.
 * - Every hit re-checks exp, nbf and iat against the verifier's clock with
 *   its leeway, so a cached token expires exactly when an uncached one does.
 * - Key retirement: the verifier learns of it when it refetches the key set
 *   (see "Key retirement" above; cache hits age the set too). A refetch
 *   that drops a kid or changes its key empties the cache before it ends,
 *   and a check that looked its key up in the old set cannot refill it; so
 *   a retired key stops working at the same moment with or without the
 *   cache. In any case no entry is used longer than cache_max_age_ms
 *   (default 5 min) after its signature was checked.
 * - Size: cache_entries slots of about 430 bytes, allocated on first use one
 *   stripe (up to 1/16) at a time; when the 8 slots a token may use are full
 *   the entry with the least life left is evicted. */
#define UC_AUTH_CACHE_DEFAULT 4096
#define UC_AUTH_CACHE_MAX (1L << 20)
#define UC_AUTH_CACHE_OFF (-1L)
#define UC_AUTH_CACHE_MAX_AGE_MS (5 * 60 * 1000)
#define UC_AUTH_CACHE_MAX_AGE_LIMIT_MS (60 * 60 * 1000)

/* What the token cache has done since the verifier was created. */
struct uc_auth_cache_stats {
    uint64_t hits;      /* checks answered from the cache (accepted or expired) */
    uint64_t misses;    /* checks that found no live entry (verified in full) */
    uint64_t evictions; /* live entries pushed out to make room */
    uint64_t flushes;   /* times a key-set change emptied the cache */
    size_t entries;     /* live entries now */
    size_t capacity;    /* slots; 0 when the cache is off */
};

struct uc_auth_verifier;

/* What the verifier's key set fetches have done since it was created. */
struct uc_auth_key_stats {
    uint64_t fetches;  /* fetches that ended, of either kind, loaded or not */
    uint64_t failures; /* of those, the ones that loaded nothing (also a
                        * refresh thread that could not start) */
    size_t keys;       /* usable keys in the current set */
    int64_t age_ms;    /* since the fetch of the current set began; -1 before one */
    bool refreshing;   /* a background refetch is in flight */
};

/* Create a verifier; it fetches keys lazily on first use. Strings in opts
 * are copied; clock and fetch_ctx are borrowed for the verifier's life. On
 * success *out owns it (free with uc_auth_verifier_destroy); on failure
 * *out is untouched. Errors: UC_EINVAL (neither url nor fetch, or a cache
 * size, cache age or key set age out of range), UC_ENOMEM. */
UC_MUSTCHECK int uc_auth_verifier_create(struct uc_auth_verifier **out,
                                         const struct uc_auth_verifier_opts *opts,
                                         char err[UC_ERR_LEN]);
/* Free the verifier and its keys; NULL is a no-op. No call may be in
 * flight; a background refetch in flight is waited for (its deadline). */
void uc_auth_verifier_destroy(struct uc_auth_verifier *v);

/* Verify a compact JWS (borrowed): alg must be EdDSA, the kid known,
 * signature valid, claims valid (uc_auth_claims_from_json with the
 * verifier's audience, clock and leeway); out->kid is the token's kid.
 * A known kid never waits on the network; a stale set starts a background
 * refetch (see "Key retirement"). An unknown kid refetches the whole key
 * set (which replaces the cache, so retired keys stop working) at most once
 * per min_refetch_ms, counting fetches of either kind (failed ones too),
 * after waiting for a background refetch in flight, which may bring it;
 * the first use always fetches. Keys in the set that are not Ed25519 or have no kid are
 * skipped.
 * A token verified before is answered from the token cache (see above)
 * with the same claims, after its times are re-checked.
 * On failure *out is untouched.
 * Errors: UC_EUNAUTH (bad, expired, tampered, wrong audience or issuer,
 * unknown key), UC_EUNAVAIL (the key set could not be fetched, or none has
 * been loaded yet and a refetch is not due), UC_ENOMEM. */
UC_MUSTCHECK int uc_auth_verify(struct uc_auth_verifier *v, const char *token,
                                struct uc_auth_claims *out, char err[UC_ERR_LEN]);

/* Fill *out with the token cache's counters (all zero when it is off). */
void uc_auth_verifier_cache_stats(struct uc_auth_verifier *v, struct uc_auth_cache_stats *out);

/* Fill *out with the key set's counters and state. */
void uc_auth_verifier_key_stats(struct uc_auth_verifier *v, struct uc_auth_key_stats *out);

/* Adapter with the signature of uc_http_authn_fn; ctx is the verifier.
 * Same results as uc_auth_verify. */
int uc_auth_http_authn(void *ctx, const char *token, struct uc_auth_claims *out,
                       char err[UC_ERR_LEN]);

#endif /* UC_AUTH_H */
