/* api.c - the route table of IAM and its handlers: each maps a request
 * onto a domain call (tokens, keyring, projects, users, service accounts,
 * role bindings, credentials) and the result onto a status code. */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "bindings.h"
#include "credentials.h"
#include "keyring.h"
#include "projects.h"
#include "service_accounts.h"
#include "tokens.h"
#include "users.h"

/* Answer `out` with `status`, or hand a failure to the router. */
static int reply(struct uc_http_req *req, int rc, int status, json_t *out)
{
    if (rc < 0) {
        json_decref(out);
        return rc;
    }
    return uc_http_reply_json(req, status, out);
}

static int reply_deleted(struct uc_http_req *req, int rc)
{
    return rc < 0 ? rc : uc_http_reply_json(req, 204, NULL);
}

static int page(struct uc_http_req *req, struct iam_page *pg)
{
    return uc_http_list_params(req, IAM_LIST_DEFAULT, IAM_LIST_MAX, &pg->limit, &pg->token);
}

/* A query parameter, NULL when absent or empty. */
static const char *query(const struct uc_http_req *req, const char *name)
{
    const char *v = uc_http_query(req, name);
    return v && v[0] ? v : NULL;
}

static void no_store(struct uc_http_req *req)
{
    /* Without the header the answer is still correct, only cacheable by a
     * careless proxy; there is nothing better to do if it cannot be added. */
    (void)uc_http_add_header(req, "Cache-Control", "no-store");
}

/* --- tokens and keys --- */

#define STARTING "iam is starting: its signing keys are not loaded from the store yet"

/* 503 while main is still loading the keyring (see server.h). */
static int starting(const struct iam_server *s, char err[UC_ERR_LEN])
{
    return atomic_load(&s->starting) ? uc_err_set(err, UC_EUNAVAIL, STARTING) : 0;
}

static int h_token(struct uc_http_req *req, void *ctx)
{
    if (starting(ctx, req->err) < 0)
        return UC_EUNAVAIL;
    char retry[24];
    int64_t retry_after = 0;
    json_t *out = NULL;
    int rc = iam_tokens_issue(ctx, req->body, &out, &retry_after, req->err);
    if (rc == UC_ERATE) {
        snprintf(retry, sizeof(retry), "%lld", (long long)retry_after);
        /* Without the header the 429 still tells the client to slow down. */
        (void)uc_http_add_header(req, "Retry-After", retry);
    }
    if (rc == 0)
        no_store(req);
    return reply(req, rc, 201, out);
}

static int h_introspect(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc = iam_tokens_introspect(ctx, req->body, &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_whoami(struct uc_http_req *req, void *ctx)
{
    (void)ctx; /* the answer is the caller's claims only */
    json_t *out = NULL;
    int rc = iam_tokens_whoami(&req->auth, &out);
    return reply(req, rc, 200, out);
}

static int h_jwks(struct uc_http_req *req, void *ctx)
{
    struct iam_server *s = ctx;
    json_t *out = NULL;
    /* While starting: the signing key file's key only, which flaredb needs
     * to verify the token iam reads its keyring with. */
    if (atomic_load(&s->starting))
        return uc_http_reply_json(req, 200, json_incref(s->boot_jwks));
    int rc = iam_keyring_jwks(s->keyring, &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_keys_list(struct uc_http_req *req, void *ctx)
{
    struct iam_server *s = ctx;
    struct iam_page pg;
    json_t *out = NULL;
    int rc = page(req, &pg);
    if (rc == 0)
        rc = iam_keyring_list(s->keyring, &pg, &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_keys_rotate(struct uc_http_req *req, void *ctx)
{
    struct iam_server *s = ctx;
    json_t *out = NULL;
    int rc = iam_keyring_rotate(s->keyring, &out, req->err);
    if (rc == 0)
        atomic_fetch_add(&s->counters.keys_rotated, 1);
    return reply(req, rc, 201, out);
}

static int h_keys_retire(struct uc_http_req *req, void *ctx)
{
    struct iam_server *s = ctx;
    return reply_deleted(req, iam_keyring_retire(s->keyring, uc_http_param(req, "kid"), req->err));
}

/* --- projects --- */

static int h_project_create(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc = iam_projects_create(ctx, &req->auth, req->body, &out, req->err);
    return reply(req, rc, 201, out);
}

static int h_project_list(struct uc_http_req *req, void *ctx)
{
    struct iam_page pg;
    json_t *out = NULL;
    int rc = page(req, &pg);
    if (rc == 0)
        rc = iam_projects_list(ctx, &req->auth, &pg, &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_project_get(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc = iam_projects_get(ctx, &req->auth, uc_http_param(req, "id"), &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_project_patch(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc =
        iam_projects_patch(ctx, &req->auth, uc_http_param(req, "id"), req->body, &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_project_delete(struct uc_http_req *req, void *ctx)
{
    return reply_deleted(req,
                         iam_projects_delete(ctx, &req->auth, uc_http_param(req, "id"), req->err));
}

/* --- users --- */

static int h_user_create(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc = iam_users_create(ctx, &req->auth, req->body, &out, req->err);
    return reply(req, rc, 201, out);
}

static int h_user_list(struct uc_http_req *req, void *ctx)
{
    struct iam_page pg;
    json_t *out = NULL;
    int rc = page(req, &pg);
    if (rc == 0)
        rc = iam_users_list(ctx, &req->auth, &pg, &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_user_get(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc = iam_users_get(ctx, &req->auth, uc_http_param(req, "id"), &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_user_patch(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc = iam_users_patch(ctx, &req->auth, uc_http_param(req, "id"), req->body, &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_user_delete(struct uc_http_req *req, void *ctx)
{
    return reply_deleted(req,
                         iam_users_delete(ctx, &req->auth, uc_http_param(req, "id"), req->err));
}

/* --- service accounts --- */

static int h_sa_create(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc = iam_service_accounts_create(ctx, &req->auth, req->body, &out, req->err);
    return reply(req, rc, 201, out);
}

static int h_sa_list(struct uc_http_req *req, void *ctx)
{
    struct iam_page pg;
    json_t *out = NULL;
    int rc = page(req, &pg);
    if (rc == 0)
        rc = iam_service_accounts_list(ctx, &req->auth, query(req, "project_id"), &pg, &out,
                                       req->err);
    return reply(req, rc, 200, out);
}

static int h_sa_get(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc = iam_service_accounts_get(ctx, &req->auth, uc_http_param(req, "id"), &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_sa_delete(struct uc_http_req *req, void *ctx)
{
    return reply_deleted(
        req, iam_service_accounts_delete(ctx, &req->auth, uc_http_param(req, "id"), req->err));
}

/* --- roles and role bindings --- */

static int h_roles(struct uc_http_req *req, void *ctx)
{
    (void)ctx; /* the roles are fixed */
    json_t *out = json_pack(
        "{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}]}", "items", "name",
        "reader", "scope", "project", "description",
        "read the project's objects (reader < member < admin)", "name", "member", "scope",
        "project", "description", "everything a reader may, plus create and change objects", "name",
        "admin", "scope", "project", "description",
        "everything a member may, plus manage service accounts, role bindings and the project",
        "name", "system-admin", "scope", "global", "description",
        "everything, in every project: users, projects, signing keys");
    return reply(req, out ? 0 : UC_ENOMEM, 200, out);
}

static int h_rb_create(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc = iam_bindings_create(ctx, &req->auth, req->body, &out, req->err);
    return reply(req, rc, 201, out);
}

static int h_rb_list(struct uc_http_req *req, void *ctx)
{
    struct iam_page pg;
    json_t *out = NULL;
    int rc = page(req, &pg);
    if (rc == 0)
        rc = iam_bindings_list(ctx, &req->auth, query(req, "project_id"),
                               query(req, "principal_id"), &pg, &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_rb_delete(struct uc_http_req *req, void *ctx)
{
    return reply_deleted(req,
                         iam_bindings_delete(ctx, &req->auth, uc_http_param(req, "id"), req->err));
}

/* --- credentials --- */

static int h_cred_create(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc = iam_credentials_create(ctx, &req->auth, req->body, &out, req->err);
    if (rc == 0)
        no_store(req);
    return reply(req, rc, 201, out);
}

static int h_cred_list(struct uc_http_req *req, void *ctx)
{
    struct iam_page pg;
    json_t *out = NULL;
    int rc = page(req, &pg);
    if (rc == 0)
        rc = iam_credentials_list(ctx, &req->auth, query(req, "principal_id"), &pg, &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_cred_get(struct uc_http_req *req, void *ctx)
{
    json_t *out = NULL;
    int rc = iam_credentials_get(ctx, &req->auth, uc_http_param(req, "id"), &out, req->err);
    return reply(req, rc, 200, out);
}

static int h_cred_delete(struct uc_http_req *req, void *ctx)
{
    return reply_deleted(
        req, iam_credentials_revoke(ctx, &req->auth, uc_http_param(req, "id"), req->err));
}

/* --- the table --- */

#define PUB UC_HTTP_PUBLIC
#define JSON UC_HTTP_JSON
#define ANY UC_ROLE_ANY
#define SYS UC_ROLE_SYSTEM_ADMIN
#define TOKEN_BODY_LIMIT (64 * 1024)

static const struct uc_http_route routes[] = {
    {"POST", "/api/v1/tokens", h_token, PUB | JSON, ANY, TOKEN_BODY_LIMIT},
    {"POST", "/api/v1/tokens/introspect", h_introspect, JSON, ANY, TOKEN_BODY_LIMIT},
    {"GET", "/api/v1/whoami", h_whoami, 0, ANY, 0},
    {"GET", "/api/v1/keys", h_jwks, PUB, ANY, 0},
    {"GET", "/api/v1/signing-keys", h_keys_list, 0, SYS, 0},
    {"POST", "/api/v1/signing-keys", h_keys_rotate, 0, SYS, 0},
    {"DELETE", "/api/v1/signing-keys/{kid}", h_keys_retire, 0, SYS, 0},
    {"POST", "/api/v1/projects", h_project_create, JSON, SYS, 0},
    {"GET", "/api/v1/projects", h_project_list, 0, ANY, 0},
    {"GET", "/api/v1/projects/{id}", h_project_get, 0, ANY, 0},
    {"PATCH", "/api/v1/projects/{id}", h_project_patch, JSON, ANY, 0},
    {"DELETE", "/api/v1/projects/{id}", h_project_delete, 0, SYS, 0},
    {"POST", "/api/v1/users", h_user_create, JSON, SYS, 0},
    {"GET", "/api/v1/users", h_user_list, 0, SYS, 0},
    {"GET", "/api/v1/users/{id}", h_user_get, 0, ANY, 0},
    {"PATCH", "/api/v1/users/{id}", h_user_patch, JSON, ANY, 0},
    {"DELETE", "/api/v1/users/{id}", h_user_delete, 0, SYS, 0},
    {"POST", "/api/v1/service-accounts", h_sa_create, JSON, ANY, 0},
    {"GET", "/api/v1/service-accounts", h_sa_list, 0, ANY, 0},
    {"GET", "/api/v1/service-accounts/{id}", h_sa_get, 0, ANY, 0},
    {"DELETE", "/api/v1/service-accounts/{id}", h_sa_delete, 0, ANY, 0},
    {"GET", "/api/v1/roles", h_roles, 0, ANY, 0},
    {"POST", "/api/v1/role-bindings", h_rb_create, JSON, ANY, 0},
    {"GET", "/api/v1/role-bindings", h_rb_list, 0, ANY, 0},
    {"DELETE", "/api/v1/role-bindings/{id}", h_rb_delete, 0, ANY, 0},
    {"POST", "/api/v1/credentials", h_cred_create, JSON, ANY, 0},
    {"GET", "/api/v1/credentials", h_cred_list, 0, ANY, 0},
    {"GET", "/api/v1/credentials/{id}", h_cred_get, 0, ANY, 0},
    {"DELETE", "/api/v1/credentials/{id}", h_cred_delete, 0, ANY, 0},
};

static int ready(void *ctx, char err[UC_ERR_LEN])
{
    struct iam_server *s = ctx;
    int rc = starting(s, err);
    return rc < 0 ? rc : uc_store_ping(s->store, err);
}

static void counter(FILE *out, const char *name, const char *help, unsigned long v)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %lu\n", name, help, name, name, v);
}

void iam_api_metrics(void *ctx, FILE *out)
{
    struct iam_server *s = ctx;
    counter(out, "iam_tokens_issued_total", "Tokens issued.",
            atomic_load(&s->counters.tokens_issued));
    counter(out, "iam_token_failures_total", "Token requests refused (401 or 403).",
            atomic_load(&s->counters.token_failures));
    counter(out, "iam_rate_limited_total", "Token requests refused with 429.",
            atomic_load(&s->counters.rate_limited));
    counter(out, "iam_introspections_total", "Token introspections.",
            atomic_load(&s->counters.introspections));
    counter(out, "iam_signing_key_rotations_total", "Signing keys generated through the API.",
            atomic_load(&s->counters.keys_rotated));
}

void iam_api_opts(struct iam_server *s, struct uc_http_opts *opts)
{
    opts->routes = routes;
    opts->nroutes = sizeof(routes) / sizeof(routes[0]);
    opts->ctx = s;
    opts->authn = iam_tokens_authn;
    opts->authn_ctx = s;
    opts->ready = ready;
    opts->metrics = iam_api_metrics;
}
