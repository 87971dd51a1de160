/* api_acl.c - project restrictions, system-admin only:
 * GET /api/v1/acl, PUT and DELETE /api/v1/acl/{namespaces|tables}/{name}.
 * A change is a log entry like any write, so every member enforces the
 * same list from the same index on (server_acl.c reads it). */
#include <string.h>

#include "api_internal.h"
#include "uc/json.h"
#include "uc/log.h"

static const struct uc_json_field put_fields[] = {
    {"project", UC_JSON_STRING, true, 1, FLAREDB_DB_MAX_PROJECT, UC_JSON_CHARS_ID},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};

/* The {kind} segment as the database names it. */
static int kind_of(struct uc_http_req *req, const char **kind)
{
    const char *k = uc_http_param(req, "kind");
    if (strcmp(k, "namespaces") == 0)
        *kind = "namespace";
    else if (strcmp(k, "tables") == 0)
        *kind = "table";
    else
        return uc_err_set(req->err, UC_ENOENT,
                          "no such collection: restrictions live under /api/v1/acl/namespaces and "
                          "/api/v1/acl/tables");
    return 0;
}

static void do_list(struct flaredb_server *s, struct uc_http_req *req, void *varg, uint64_t index)
{
    const json_t *arg = varg;
    json_t *out = NULL;
    (void)arg; /* nothing to narrow */
    (void)index;
    int rc = flaredb_db_acl_list(s->db, &out, req->err);
    if (rc < 0)
        uc_http_error(req, rc, "%s", req->err);
    else
        flaredb_api_reply(req, 200, out);
}

int flaredb_api_h_acl_list(struct uc_http_req *req, void *ctx)
{
    struct flaredb_server *s = ctx;
    bool lin;
    int rc = flaredb_api_consistency(req, uc_http_query(req, "consistency"), &lin);
    if (rc < 0)
        return rc;
    if (lin && uc_replsvc_forward(s->rs, req))
        return 0;
    return flaredb_server_read(s, req, do_list, json_object(), flaredb_server_release_json, lin);
}

/* Log who changes which restriction; names are client text, so cut. */
static void log_change(const struct uc_http_req *req, const char *what, const char *kind)
{
    char name[72], sub[UC_AUTH_ID_LEN + 4];
    uc_err_sanitize(name, sizeof(name), uc_http_param(req, "name"), 64);
    uc_err_sanitize(sub, sizeof(sub), req->auth.sub, UC_AUTH_ID_LEN);
    uc_log(UC_LOG_INFO, req->request_id, "%s restriction of %s '%s' by %s", what, kind, name, sub);
}

int flaredb_api_h_acl_put(struct uc_http_req *req, void *ctx)
{
    struct flaredb_server *s = ctx;
    const char *kind;
    int rc = uc_json_validate(req->body, put_fields, req->err);
    if (rc < 0)
        return rc;
    if (uc_replsvc_forward(s->rs, req))
        return 0;
    if ((rc = kind_of(req, &kind)) < 0)
        return rc;
    log_change(req, "setting the", kind);
    return flaredb_api_submit(s, req,
                              json_pack("{ssssssss?}", "op", "acl_set", "kind", kind, "name",
                                        uc_http_param(req, "name"), "project",
                                        uc_json_str(req->body, "project", NULL)));
}

int flaredb_api_h_acl_delete(struct uc_http_req *req, void *ctx)
{
    struct flaredb_server *s = ctx;
    const char *kind;
    if (uc_replsvc_forward(s->rs, req))
        return 0;
    int rc = kind_of(req, &kind);
    if (rc < 0)
        return rc;
    log_change(req, "removing the", kind);
    return flaredb_api_submit(s, req,
                              json_pack("{ssssss}", "op", "acl_delete", "kind", kind, "name",
                                        uc_http_param(req, "name")));
}
