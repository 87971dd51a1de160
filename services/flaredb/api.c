/* api.c - flaredb's route table and what every handler shares: error
 * envelopes that name the failing statement or key, proposing a checked
 * command and answering from its commit, the status fields and the
 * flaredb_* metrics. The handlers live in api_sql.c, api_kv.c and
 * api_acl.c. */
#include <stdio.h>
#include <string.h>

#include "api_internal.h"
#include "uc/alloc.h"
#include "uc/json.h"
#include "uc/log.h"

/* ---- answers ------------------------------------------------------------------ */

void flaredb_api_reply(struct uc_http_req *req, int status, json_t *body)
{
    if (uc_http_reply_json(req, status, body) < 0)
        uc_warn("cannot send a reply");
}

void flaredb_api_fail(struct uc_http_req *req, int code, const char *msg, json_t *extra,
                      json_t *results)
{
    if (code >= 0)
        code = UC_EINTERNAL;
    json_t *e = json_pack("{ssssss}", "code", uc_err_api_code(code), "message",
                          msg && msg[0] ? msg : uc_strerror(code), "request_id", req->request_id);
    if (e && extra && json_object_update_missing(e, extra) < 0) {
        json_decref(e);
        e = NULL;
    }
    json_t *body = e ? json_pack("{so}", "error", e) : NULL;
    if (body && results && json_object_set(body, "results", results) < 0) {
        json_decref(body);
        body = NULL;
    }
    json_decref(extra);
    json_decref(results);
    if (!body)
        uc_http_error(req, UC_ENOMEM, "out of memory");
    else
        flaredb_api_reply(req, uc_err_http_status(code), body);
}

int flaredb_api_refuse(struct flaredb_server *s, struct uc_http_req *req, int code)
{
    size_t si;
    json_t *extra = NULL;
    if (sscanf(req->err, "statements[%zu]", &si) == 1)
        extra = json_pack("{sI}", "statement", (json_int_t)si);
    if (s)
        atomic_fetch_add(&s->sql_rejected, 1);
    flaredb_api_fail(req, code, req->err, extra, NULL);
    return 0;
}

int flaredb_api_consistency(struct uc_http_req *req, const char *v, bool *linearizable)
{
    if (!v || strcmp(v, "linearizable") == 0)
        *linearizable = true;
    else if (strcmp(v, "serializable") == 0)
        *linearizable = false;
    else
        return uc_err_set(req->err, UC_EINVAL,
                          "consistency must be \"linearizable\" or \"serializable\"");
    return 0;
}

/* ---- proposals ------------------------------------------------------------------ */

struct pending {
    struct flaredb_server *s;
    struct uc_http_req *req;
    bool with_index;
};

/* Answer with a command's result (borrowed): its shared error, or 200. */
static void reply_result(struct uc_http_req *req, const struct flaredb_result *res, uint64_t index,
                         bool with_index)
{
    if (!res) {
        uc_http_error(req, UC_EINTERNAL, "entry %llu had been applied before it was proposed",
                      (unsigned long long)index);
        return;
    }
    const json_t *e = flaredb_result_error(res);
    if (e) {
        json_t *all = flaredb_result_json(res);
        int code = (int)json_integer_value(json_object_get(e, "code"));
        json_t *extra = json_deep_copy(e);
        if (extra) {
            json_object_del(extra, "code");
            json_object_del(extra, "message");
        }
        flaredb_api_fail(req, code, json_string_value(json_object_get(e, "message")), extra,
                         json_incref(json_object_get(all, "results")));
        json_decref(all);
        return;
    }
    size_t len = 0;
    char *text = flaredb_result_text(res, index, with_index, &len);
    if (!text) {
        uc_http_error(req, UC_ENOMEM, "out of memory (the write is applied)");
        return;
    }
    if (uc_http_reply_data(req, 200, "application/json", text, len) < 0)
        uc_warn("cannot send a reply");
    uc_free(text);
}

static void committed(void *ctx, const struct uc_repl_done *d)
{
    struct pending *p = ctx;
    if (d->status < 0)
        uc_replsvc_reply_error(p->s->rs, p->req, d);
    else
        reply_result(p->req, d->result, d->index, p->with_index);
    flaredb_result_free(d->result); /* ours once committed */
    uc_free(p);
}

int flaredb_api_propose_entry(struct flaredb_server *s, struct uc_http_req *req, void *entry,
                              size_t len, bool with_index)
{
    struct pending *p = uc_malloc(sizeof(*p));
    if (!p) {
        uc_free(entry);
        return uc_err_set(req->err, UC_ENOMEM, "out of memory");
    }
    *p = (struct pending){.s = s, .req = req, .with_index = with_index};
    int rc = flaredb_server_propose(s, entry, len, committed, p, req->err);
    uc_free(entry);
    if (rc < 0) {
        uc_free(p);
        return rc;
    }
    return UC_HTTP_ASYNC;
}

int flaredb_api_propose(struct flaredb_server *s, struct uc_http_req *req, json_t *cmd,
                        bool with_index)
{
    void *entry = NULL;
    size_t len = 0;
    int rc = cmd ? flaredb_db_encode(cmd, &entry, &len, req->err)
                 : uc_err_set(req->err, UC_ENOMEM, "out of memory");
    json_decref(cmd);
    if (rc < 0)
        return rc;
    return flaredb_api_propose_entry(s, req, entry, len, with_index);
}

int flaredb_api_submit(struct flaredb_server *s, struct uc_http_req *req, json_t *cmd)
{
    struct flaredb_db_verdict v = {0};
    if (!cmd)
        return uc_err_set(req->err, UC_ENOMEM, "out of memory");
    int rc = flaredb_db_check(s->db, cmd, &v, req->err);
    flaredb_db_verdict_clear(&v);
    if (rc < 0) {
        json_decref(cmd);
        return flaredb_api_refuse(NULL, req, rc);
    }
    return flaredb_api_propose(s, req, cmd, false);
}

/* ---- cluster status and metrics -------------------------------------------------- */

static int status_fields(void *ctx, json_t *out)
{
    struct flaredb_server *s = ctx;
    json_t *db = json_pack("{sI}", "applied_index", (json_int_t)flaredb_db_applied(s->db));
    return db && json_object_set_new(out, "database", db) == 0 ? 0 : UC_ENOMEM;
}

static void metric_by_class(FILE *out, const char *name, const char *help, atomic_ulong *v)
{
    fprintf(out, "# HELP flaredb_%s %s\n# TYPE flaredb_%s counter\n", name, help, name);
    for (int c = FLAREDB_DB_READ; c <= FLAREDB_DB_DDL_DESTRUCTIVE; c++)
        fprintf(out, "flaredb_%s{class=\"%s\"} %lu\n", name,
                flaredb_db_class_name((enum flaredb_db_class)c), atomic_load(&v[c]));
}

static void metrics(void *ctx, FILE *out)
{
    static const char *const ops[FLAREDB_KV_NOPS] = {"get", "scan", "put", "delete", "txn"};
    struct flaredb_server *s = ctx;
    metric_by_class(out, "sql_requests_total", "SQL requests accepted, by their class",
                    s->sql_requests);
    metric_by_class(out, "statements_total", "SQL statements accepted, by their request's class",
                    s->statements);
    fprintf(out,
            "# HELP flaredb_sql_rejected_total SQL requests refused before the log or a read\n"
            "# TYPE flaredb_sql_rejected_total counter\nflaredb_sql_rejected_total %lu\n",
            atomic_load(&s->sql_rejected));
    fprintf(out, "# HELP flaredb_kv_ops_total KV requests accepted, by operation\n"
                 "# TYPE flaredb_kv_ops_total counter\n");
    for (int i = 0; i < FLAREDB_KV_NOPS; i++)
        fprintf(out, "flaredb_kv_ops_total{op=\"%s\"} %lu\n", ops[i], atomic_load(&s->kv_ops[i]));
    fprintf(out,
            "# HELP flaredb_db_applied_index Last log index the database holds\n"
            "# TYPE flaredb_db_applied_index gauge\nflaredb_db_applied_index %llu\n",
            (unsigned long long)flaredb_db_applied(s->db));
}

/* ---- table ----------------------------------------------------------------------- */

#define JSON UC_HTTP_JSON
#define ANY UC_ROLE_ANY
#define SYS UC_ROLE_SYSTEM_ADMIN
static const struct uc_http_route routes[] = {
    {"POST", "/api/v1/sql", flaredb_api_h_sql, 0, ANY, 0}, /* reads its raw body */
    {"GET", "/api/v1/tables", flaredb_api_h_tables, 0, ANY, 0},
    {"GET", "/api/v1/kv/{ns}/{key}", flaredb_api_h_kv_get, 0, ANY, 0},
    {"PUT", "/api/v1/kv/{ns}/{key}", flaredb_api_h_kv_put, JSON, ANY, 0},
    {"DELETE", "/api/v1/kv/{ns}/{key}", flaredb_api_h_kv_delete, 0, ANY, 0},
    {"POST", "/api/v1/kv/{ns}/scan", flaredb_api_h_kv_scan, JSON, ANY, 0},
    {"POST", "/api/v1/kv/{ns}/txn", flaredb_api_h_kv_txn, JSON, ANY, 0},
    {"GET", "/api/v1/acl", flaredb_api_h_acl_list, 0, SYS, 0},
    {"PUT", "/api/v1/acl/{kind}/{name}", flaredb_api_h_acl_put, JSON, SYS, 0},
    {"DELETE", "/api/v1/acl/{kind}/{name}", flaredb_api_h_acl_delete, 0, SYS, 0},
    UC_REPLSVC_ROUTES,
};

/* Query parameters the forwarded routes read. */
static const char *const forward_query[] = {"consistency", "expect_revision", "expect_version",
                                            NULL};

void flaredb_api_hooks(struct uc_replsvc_config *cfg)
{
    cfg->forward_query = forward_query;
    cfg->status = status_fields;
    cfg->metrics = metrics;
}

void flaredb_api_opts(struct flaredb_server *s, struct uc_http_opts *opts)
{
    opts->routes = routes;
    opts->nroutes = sizeof(routes) / sizeof(routes[0]);
    opts->ctx = s;
}
