/* tokens.c - password and access-key grants, claims and signing,
 * introspection, whoami and the router's authentication callback. */
#include <stdio.h>
#include <string.h>

#include "bindings.h"
#include "credentials.h"
#include "keyring.h"
#include "principals.h"
#include "projects.h"
#include "ratelimit.h"
#include "tokens.h"
#include "users.h"
#include "uc/alloc.h"
#include "uc/json.h"
#include "uc/jws.h"

#define BAD_CREDS "invalid credentials"
#define BOOTSTRAP_SUB "bootstrap"

static const struct uc_json_field password_fields[] = {
    {"grant_type", UC_JSON_STRING, true, 1, 32, NULL},
    {"username", UC_JSON_STRING, true, 1, 256, NULL},
    {"password", UC_JSON_STRING, true, 1, 1024, NULL},
    {"project_id", UC_JSON_STRING, false, 1, 64, NULL},
    {"ttl_seconds", UC_JSON_INT, false, 60, 86400, NULL},
    {NULL},
};

static const struct uc_json_field access_key_fields[] = {
    {"grant_type", UC_JSON_STRING, true, 1, 32, NULL},
    {"access_key_id", UC_JSON_STRING, true, 1, 64, NULL},
    {"secret", UC_JSON_STRING, true, 1, 256, NULL},
    {"project_id", UC_JSON_STRING, false, 1, 64, NULL},
    {"ttl_seconds", UC_JSON_INT, false, 60, 86400, NULL},
    {NULL},
};

static const struct uc_json_field introspect_fields[] = {
    {"token", UC_JSON_STRING, true, 1, UC_JWS_MAX_LEN, NULL},
    {NULL},
};

/* Who logged in, and what the token will say. */
struct grant {
    char sub[UC_ID_LEN];
    char name[UC_AUTH_ID_LEN];
    const char *kind;            /* "user" or "service_account" */
    char own_project[UC_ID_LEN]; /* service accounts only */
    char project[UC_ID_LEN];     /* "" = none */
    enum uc_role role;
    bool sys;
    int64_t iat, exp;
};

int iam_tokens_init(struct iam_server *s, char err[UC_ERR_LEN])
{
    int rc = uc_crypto_password_hash("not a password", s->scrypt_log_n, &s->dummy_hash);
    if (rc < 0)
        return uc_err_set(err, rc, "cannot prepare the password hasher: %s", uc_strerror(rc));
    return 0;
}

void iam_tokens_deinit(struct iam_server *s)
{
    uc_free(s->dummy_hash);
    s->dummy_hash = NULL;
}

/* The grant's field table, by grant_type. */
static int grant_table(const json_t *body, const struct uc_json_field **fields,
                       char err[UC_ERR_LEN])
{
    const json_t *gt = json_object_get(body, "grant_type");
    if (!gt || json_is_null(gt))
        return uc_err_set(err, UC_EINVAL, "field 'grant_type' is required");
    const char *v = json_string_value(gt);
    if (v && strcmp(v, "password") == 0)
        *fields = password_fields;
    else if (v && strcmp(v, "access_key") == 0)
        *fields = access_key_fields;
    else
        return uc_err_set(err, UC_EINVAL, "field 'grant_type' must be password or access_key");
    return 0;
}

static int check_body(struct iam_server *s, const json_t *body, char err[UC_ERR_LEN])
{
    const struct uc_json_field *fields = NULL;
    int rc = grant_table(body, &fields, err);
    if (rc == 0)
        rc = uc_json_validate(body, fields, err);
    int64_t ttl = uc_json_int(body, "ttl_seconds", 0);
    if (rc == 0 && ttl > s->token_ttl_s)
        rc = uc_err_set(err, UC_EINVAL, "field 'ttl_seconds' must be an integer from 60 to %lld",
                        (long long)s->token_ttl_s);
    const char *proj = uc_json_str(body, "project_id", NULL);
    if (rc == 0 && proj)
        rc = iam_id_check(proj, "proj", err);
    return rc;
}

static int rate_limit(struct iam_server *s, const json_t *body, int64_t *retry_after_s,
                      char err[UC_ERR_LEN])
{
    char key[300];
    const char *user = uc_json_str(body, "username", NULL);
    snprintf(key, sizeof(key), "%s:%s", user ? "u" : "k",
             user ? user : uc_json_str(body, "access_key_id", ""));
    int rc = iam_ratelimit_take(s->ratelimit, key, retry_after_s);
    if (rc == UC_ERATE) {
        atomic_fetch_add(&s->counters.rate_limited, 1);
        return uc_err_set(err, UC_ERATE, "too many token requests for this %s: retry in %lld s",
                          user ? "user" : "access key", (long long)*retry_after_s);
    }
    return rc < 0 ? uc_err_set(err, rc, "rate limiter failed") : 0;
}

static int fill_user(struct grant *g, const json_t *rec)
{
    if (json_is_true(json_object_get(rec, "disabled")))
        return UC_EUNAUTH;
    snprintf(g->sub, sizeof(g->sub), "%s", uc_json_str(rec, "id", ""));
    snprintf(g->name, sizeof(g->name), "%s", uc_json_str(rec, "name", ""));
    g->kind = "user";
    return 0;
}

static int login_password(struct iam_server *s, const json_t *body, struct grant *g,
                          char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    const char *pw = uc_json_str(body, "password", "");
    int rc = iam_users_find(s, uc_json_str(body, "username", ""), &rec, err);
    if (rc == UC_ENOENT) {
        /* Spend the same time as a wrong password, then fail the same way. */
        rc = uc_crypto_password_verify(pw, s->dummy_hash);
        return rc == UC_EUNAUTH || rc == 0 ? UC_EUNAUTH : rc;
    }
    if (rc == 0)
        rc = uc_crypto_password_verify(pw, uc_json_str(rec, "_password_hash", ""));
    if (rc == UC_EINVAL)
        rc = UC_EUNAUTH; /* an unusable stored hash logs nobody in */
    if (rc == 0)
        rc = fill_user(g, rec);
    json_decref(rec);
    return rc;
}

static int login_access_key(struct iam_server *s, const json_t *body, struct grant *g,
                            char err[UC_ERR_LEN])
{
    char principal[IAM_PRINCIPAL_LEN];
    json_t *rec = NULL;
    int rc = iam_credentials_check(s, uc_json_str(body, "access_key_id", ""),
                                   uc_json_str(body, "secret", ""), principal, err);
    if (rc == 0)
        rc = iam_principals_load(s, principal, &rec, NULL, NULL, err);
    if (rc == UC_ENOENT || rc == UC_EINVAL)
        rc = UC_EUNAUTH; /* the owner is gone */
    if (rc == 0 && iam_id_is(principal, "user")) {
        rc = fill_user(g, rec);
    } else if (rc == 0) {
        snprintf(g->sub, sizeof(g->sub), "%s", principal);
        snprintf(g->name, sizeof(g->name), "%s", uc_json_str(rec, "name", ""));
        snprintf(g->own_project, sizeof(g->own_project), "%s", uc_json_str(rec, "project_id", ""));
        g->kind = "service_account";
    }
    json_decref(rec);
    return rc;
}

/* An explicitly requested project: the principal needs a role there
 * (system-admins may enter any existing project). */
static int scope_requested(struct iam_server *s, struct grant *g, const char *project,
                           char err[UC_ERR_LEN])
{
    bool found = false;
    uint64_t rev = 0;
    int rc = iam_bindings_role(s, g->sub, project, &found, &g->role, err);
    if (rc == 0 && !found && !g->sys)
        return uc_err_set(err, UC_EFORBIDDEN, "%s has no role in project %s", g->name, project);
    if (rc == 0 && !found)
        rc = iam_projects_revision(s, project, &rev, err);
    if (rc == 0)
        snprintf(g->project, sizeof(g->project), "%s", project);
    return rc;
}

static int scope(struct iam_server *s, struct grant *g, const char *want, char err[UC_ERR_LEN])
{
    struct iam_grants gr;
    bool found = false;
    int rc = iam_bindings_grants(s, g->sub, &gr, err);
    if (rc < 0)
        return rc;
    g->sys = gr.system_admin;
    g->role = UC_ROLE_ANY;
    if (want)
        return scope_requested(s, g, want, err);
    if (g->own_project[0]) {
        snprintf(g->project, sizeof(g->project), "%s", g->own_project);
        return iam_bindings_role(s, g->sub, g->project, &found, &g->role, err);
    }
    if (gr.nprojects == 1) {
        snprintf(g->project, sizeof(g->project), "%s", gr.only_project);
        g->role = gr.only_role;
    }
    return 0;
}

static json_t *roles_array(enum uc_role role)
{
    json_t *a = json_array();
    if (a && role != UC_ROLE_ANY && role != UC_ROLE_SYSTEM_ADMIN &&
        json_array_append_new(a, json_string(uc_role_name(role))) != 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

static int claims_payload(const struct grant *g, json_t **out)
{
    char jti[UC_ID_LEN];
    if (uc_crypto_random_id("t", jti) < 0)
        return UC_ECRYPTO;
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:b, s:I, s:I, s:s}", "iss",
                          UC_AUTH_ISSUER, "aud", UC_AUTH_AUDIENCE, "sub", g->sub, "name", g->name,
                          "kind", g->kind, "roles", roles_array(g->role), "sys", g->sys, "iat",
                          (json_int_t)g->iat, "exp", (json_int_t)g->exp, "jti", jti);
    if (p && g->project[0] && iam_set(p, "project", json_string(g->project)) < 0) {
        json_decref(p);
        p = NULL;
    }
    *out = p;
    return p ? 0 : UC_ENOMEM;
}

static int answer(const struct grant *g, const char *token, json_t **out)
{
    char exp_at[32];
    uc_json_time(g->exp * 1000, exp_at);
    json_t *a =
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:s?, s:o, s:b}", "token", token, "token_type",
                  "Bearer", "expires_at", exp_at, "expires_in", (json_int_t)(g->exp - g->iat),
                  "subject", g->sub, "project_id", g->project[0] ? g->project : NULL, "roles",
                  roles_array(g->role), "system_admin", g->sys);
    *out = a;
    return a ? 0 : UC_ENOMEM;
}

/* Sign the grant's claims and build the answer. */
static int sign(struct iam_server *s, struct grant *g, int64_t ttl, json_t **out,
                char err[UC_ERR_LEN])
{
    char kid[IAM_KID_LEN], *token = NULL;
    json_t *payload = NULL;
    g->iat = iam_now_ms(s) / 1000;
    g->exp = g->iat + ttl;
    int rc = claims_payload(g, &payload);
    if (rc == 0)
        rc = iam_keyring_sign(s->keyring, payload, &token, kid, err);
    if (rc == 0)
        rc = answer(g, token, out);
    uc_free(token);
    json_decref(payload);
    return rc;
}

static void count_result(struct iam_server *s, int rc)
{
    if (rc == 0)
        atomic_fetch_add(&s->counters.tokens_issued, 1);
    else if (rc == UC_EUNAUTH || rc == UC_EFORBIDDEN)
        atomic_fetch_add(&s->counters.token_failures, 1);
}

int iam_tokens_issue(struct iam_server *s, const json_t *body, json_t **out, int64_t *retry_after_s,
                     char err[UC_ERR_LEN])
{
    struct grant g = {0};
    int rc = check_body(s, body, err);
    if (rc == 0)
        rc = rate_limit(s, body, retry_after_s, err);
    if (rc < 0)
        return rc;
    if (uc_json_str(body, "username", NULL))
        rc = login_password(s, body, &g, err);
    else
        rc = login_access_key(s, body, &g, err);
    if (rc == UC_EUNAUTH)
        uc_err_set(err, UC_EUNAUTH, BAD_CREDS);
    if (rc == 0)
        rc = scope(s, &g, uc_json_str(body, "project_id", NULL), err);
    if (rc == 0)
        rc = sign(s, &g, uc_json_int(body, "ttl_seconds", s->token_ttl_s), out, err);
    count_result(s, rc);
    return rc;
}

int iam_tokens_verify(struct iam_server *s, const char *token, struct uc_auth_claims *out,
                      char err[UC_ERR_LEN])
{
    char kid[IAM_KID_LEN];
    json_t *payload = NULL;
    int rc = iam_keyring_verify(s->keyring, token, &payload, kid, err);
    if (rc < 0)
        return rc;
    rc = uc_auth_claims_from_json(payload, iam_now_ms(s) / 1000, 0, out, err);
    json_decref(payload);
    if (rc == 0)
        snprintf(out->kid, sizeof(out->kid), "%s", kid);
    return rc;
}

static const char *kind_of(const char *sub)
{
    if (strncmp(sub, "user-", 5) == 0)
        return "user";
    if (strncmp(sub, "sa-", 3) == 0)
        return "service_account";
    return sub;
}

/* The claims every answer about a token shares. */
static json_t *claims_json(const struct uc_auth_claims *c)
{
    return json_pack("{s:s, s:s, s:s?, s:o, s:b, s:I}", "sub", c->sub, "name", c->name, "project",
                     c->project[0] ? c->project : NULL, "roles", roles_array(c->role), "sys",
                     c->system_admin, "exp", (json_int_t)c->exp);
}

int iam_tokens_whoami(const struct uc_auth_claims *c, json_t **out)
{
    json_t *w = claims_json(c);
    if (w && json_object_update_new(w, json_pack("{s:s, s:I, s:s, s:s}", "kind", kind_of(c->sub),
                                                 "iat", (json_int_t)c->iat, "jti", c->jti, "kid",
                                                 c->kid)) != 0) {
        json_decref(w);
        w = NULL;
    }
    *out = w;
    return w ? 0 : UC_ENOMEM;
}

/* Is the token's principal still there and enabled? */
static int principal_active(struct iam_server *s, const char *sub, bool *active,
                            char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    int rc = iam_principals_load(s, sub, &rec, NULL, NULL, err);
    *active = rc == 0 && !json_is_true(json_object_get(rec, "disabled"));
    json_decref(rec);
    return rc == UC_ENOENT || rc == UC_EINVAL ? 0 : rc;
}

int iam_tokens_introspect(struct iam_server *s, const json_t *body, json_t **out,
                          char err[UC_ERR_LEN])
{
    struct uc_auth_claims c;
    bool active = false;
    int rc = uc_json_validate(body, introspect_fields, err);
    if (rc < 0)
        return rc;
    atomic_fetch_add(&s->counters.introspections, 1);
    rc = iam_tokens_verify(s, uc_json_str(body, "token", ""), &c, NULL);
    if (rc == UC_EUNAUTH)
        return (*out = json_pack("{s:b}", "active", 0)) ? 0 : UC_ENOMEM;
    if (rc == 0)
        rc = principal_active(s, c.sub, &active, err);
    if (rc < 0)
        return rc;
    json_t *r = active ? claims_json(&c) : json_object();
    if (r && iam_set(r, "active", json_boolean(active)) < 0) {
        json_decref(r);
        r = NULL;
    }
    if (r && active && iam_set(r, "kid", json_string(c.kid)) < 0) {
        json_decref(r);
        r = NULL;
    }
    *out = r;
    return r ? 0 : UC_ENOMEM;
}

int iam_tokens_authn(void *ctx, const char *token, struct uc_auth_claims *out, char err[UC_ERR_LEN])
{
    struct iam_server *s = ctx;
    if (atomic_load(&s->starting)) /* the keyring is not there to verify with yet */
        return uc_err_set(err, UC_EUNAVAIL, "iam is starting: its signing keys are not loaded yet");
    if (s->bootstrap_token && uc_crypto_streq(token, s->bootstrap_token)) {
        *out = (struct uc_auth_claims){.role = UC_ROLE_ANY, .system_admin = true};
        snprintf(out->sub, sizeof(out->sub), "%s", BOOTSTRAP_SUB);
        snprintf(out->name, sizeof(out->name), "%s", BOOTSTRAP_SUB);
        return 0;
    }
    int rc = iam_tokens_verify(s, token, out, err);
    return rc == UC_ENOMEM ? rc : rc < 0 ? UC_EUNAUTH : 0;
}
