/* api_sql.c - POST /api/v1/sql and GET /api/v1/tables. A request is read
 * once into a flat request (flaredb_sql), restricted to what the caller may
 * reach and checked against the schema wherever it is answered: a refused
 * statement gets SQLite's message and its index, and nothing reaches the
 * log. A read-only request is then a read of that same request (a barrier
 * and a read thread, or this member's copy when serializable); anything
 * else is authorised by its class and proposed as one binary log entry. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "uc/json.h"
#include "uc/log.h"

#define SQL_SHOWN 200  /* bytes of a statement quoted in a log line */
#define LOGGED_STMTS 5 /* statements of a destructive request logged one by one */

static const struct uc_json_field sql_fields[] = {
    {"statements", UC_JSON_ARRAY, true, 1, FLAREDB_DB_MAX_STATEMENTS, NULL},
    {"transaction", UC_JSON_BOOL, false, 0, 0, NULL},
    {"consistency", UC_JSON_STRING, false, 1, 32, NULL},
    {"confirm_destructive", UC_JSON_BOOL, false, 0, 0, NULL},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};

/* `arg` is the request (a struct flaredb_sql with its restrictions). */
static void do_query(struct flaredb_server *s, struct uc_http_req *req, void *arg, uint64_t index)
{
    json_t *out = NULL;
    int rc = flaredb_db_query_sql(s->db, arg, &out, req->err);
    if (rc < 0) {
        (void)flaredb_api_refuse(s, req, rc); /* answered: nothing more to do */
        return;
    }
    if (json_object_set_new(out, "index", json_integer((json_int_t)index)) < 0) {
        json_decref(out);
        uc_http_error(req, UC_ENOMEM, "out of memory");
        return;
    }
    flaredb_api_reply(req, 200, out);
}

static void release_sql(void *arg) { flaredb_sql_free(arg); }

/* May the caller run a request of class `cls`? Writes need any token,
 * additive DDL the admin role in the token's project, destructive DDL the
 * system-admin role and "confirm_destructive": true. */
static int authorize(struct uc_http_req *req, enum flaredb_db_class cls, bool confirmed)
{
    char why[UC_ERR_LEN];
    if (cls == FLAREDB_DB_DDL_ADDITIVE && uc_auth_require(&req->auth, UC_ROLE_ADMIN, why) < 0)
        return uc_err_set(req->err, UC_EFORBIDDEN,
                          "additive DDL (CREATE, ALTER TABLE ADD COLUMN) needs the admin role: %s",
                          why);
    if (cls != FLAREDB_DB_DDL_DESTRUCTIVE)
        return 0;
    if (!req->auth.system_admin)
        return uc_err_set(req->err, UC_EFORBIDDEN,
                          "destructive DDL (DROP, ALTER TABLE RENAME or DROP COLUMN) needs the "
                          "system-admin role");
    if (!confirmed)
        return uc_err_set(req->err, UC_EINVAL,
                          "this request holds destructive DDL (DROP, ALTER TABLE RENAME or DROP "
                          "COLUMN); send \"confirm_destructive\": true to run it");
    return 0;
}

/* Destructive DDL is logged before it is proposed: who, and what. */
static void log_destructive(const struct uc_http_req *req, const struct flaredb_sql *q)
{
    char sub[UC_AUTH_ID_LEN + 4], name[UC_AUTH_ID_LEN + 4], sql[SQL_SHOWN + 4];
    uc_err_sanitize(sub, sizeof(sub), req->auth.sub, UC_AUTH_ID_LEN);
    uc_err_sanitize(name, sizeof(name), req->auth.name, UC_AUTH_ID_LEN);
    size_t n = flaredb_sql_count(q);
    for (size_t i = 0; i < n && i < LOGGED_STMTS; i++) {
        size_t len;
        const char *text = flaredb_sql_text(q, i, &len);
        uc_err_sanitize(sql, sizeof(sql), text, len < SQL_SHOWN ? len : SQL_SHOWN);
        uc_log(UC_LOG_WARN, req->request_id, "destructive DDL by %s (%s): statements[%zu]: %s", sub,
               name, i, sql);
    }
    if (n > LOGGED_STMTS)
        uc_log(UC_LOG_WARN, req->request_id, "destructive DDL by %s (%s): %zu more statements", sub,
               name, n - LOGGED_STMTS);
}

static void count(struct flaredb_server *s, enum flaredb_db_class cls, size_t statements)
{
    atomic_fetch_add(&s->sql_requests[cls], 1);
    atomic_fetch_add(&s->statements[cls], statements);
}

/* Authorise, then propose `q` (freed here) to run at class `cls`. */
static int propose_write(struct flaredb_server *s, struct uc_http_req *req, struct flaredb_sql *q,
                         enum flaredb_db_class cls, bool confirmed)
{
    void *entry = NULL;
    size_t len = 0;
    int rc = authorize(req, cls, confirmed);
    if (rc < 0) {
        flaredb_sql_free(q);
        return flaredb_api_refuse(s, req, rc);
    }
    if (cls == FLAREDB_DB_DDL_DESTRUCTIVE)
        log_destructive(req, q);
    count(s, cls, flaredb_sql_count(q));
    rc = flaredb_sql_encode(q, cls, s->max_steps, &entry, &len, req->err);
    flaredb_sql_free(q);
    if (rc < 0)
        return rc;
    return flaredb_api_propose_entry(s, req, entry, len, true);
}

/* True while this member is the raft leader. */
static bool leads(struct flaredb_server *s)
{
    struct uc_repl_status st;
    uc_repl_status(uc_replsvc_repl(s->rs), &st);
    return st.role == UC_REPL_LEADER;
}

/* The request, read straight from the body when it has the usual shape,
 * else parsed as JSON and checked field by field (whose errors the client
 * then gets). *q is the caller's to free, also after a failure. */
static int read_request(struct uc_http_req *req, struct flaredb_sql **q,
                        struct flaredb_sql_body *top)
{
    int rc = flaredb_sql_parse_fast(req->raw_body, req->raw_len, q, top);
    if (rc != FLAREDB_SQL_GENERAL)
        return rc < 0 ? uc_err_set(req->err, rc, "out of memory") : 0;
    if ((rc = uc_http_json_body(req)) < 0 ||
        (rc = uc_json_validate(req->body, sql_fields, req->err)) < 0)
        return rc;
    *top = (struct flaredb_sql_body){.transaction = uc_json_bool(req->body, "transaction", true),
                                     .confirm_destructive =
                                         uc_json_bool(req->body, "confirm_destructive", false),
                                     .consistency = uc_json_str(req->body, "consistency", NULL)};
    json_t *cmd =
        json_pack("{sssOsb}", "op", "sql", "statements", json_object_get(req->body, "statements"),
                  "transaction", top->transaction);
    rc = cmd ? flaredb_sql_from_json(cmd, q, req->err)
             : uc_err_set(req->err, UC_ENOMEM, "out of memory");
    json_decref(cmd);
    return rc;
}

/* Restrict `q` to what the caller may reach and check it into *cls. */
static int check(struct flaredb_server *s, struct uc_http_req *req, struct flaredb_sql *q,
                 enum flaredb_db_class *cls)
{
    json_t *hidden = NULL;
    struct flaredb_db_verdict v = {0};
    int rc = flaredb_server_hidden(s, &req->auth, &hidden, req->err);
    if (rc < 0)
        return rc;
    flaredb_sql_restrict(q, hidden); /* kept for the read or the log entry */
    json_decref(hidden);
    rc = flaredb_db_check_sql(s->db, q, &v, req->err);
    *cls = v.cls;
    flaredb_db_verdict_clear(&v);
    return rc;
}

int flaredb_api_h_sql(struct uc_http_req *req, void *ctx)
{
    struct flaredb_server *s = ctx;
    struct flaredb_sql *q = NULL;
    struct flaredb_sql_body top;
    enum flaredb_db_class cls = FLAREDB_DB_READ;
    bool lin = true;
    int rc = read_request(req, &q, &top);
    if (rc == 0)
        rc = flaredb_api_consistency(req, top.consistency, &lin);
    if (rc < 0) {
        flaredb_sql_free(q);
        return flaredb_api_refuse(s, req, rc);
    }
    if (lin && uc_replsvc_forward(s->rs, req)) {
        flaredb_sql_free(q);
        return 0;
    }
    rc = check(s, req, q, &cls);
    if (rc < 0 && lin && !leads(s)) {
        /* A cut-off member checks against a schema that may be stale: a
         * table created since would look missing. Only the leader's verdict
         * counts, so answer as for any request that needs it. */
        flaredb_sql_free(q);
        struct uc_repl_done d = {.status = UC_EUNAVAIL,
                                 .msg = "this member is not the leader and cannot reach it"};
        uc_replsvc_reply_error(s->rs, req, &d);
        return 0;
    }
    if (rc < 0) {
        flaredb_sql_free(q);
        return flaredb_api_refuse(s, req, rc);
    }
    if (cls == FLAREDB_DB_READ) {
        count(s, cls, flaredb_sql_count(q));
        return flaredb_server_read(s, req, do_query, q, release_sql, lin);
    }
    if (!lin && uc_replsvc_forward(s->rs, req)) { /* a write asked for "serializable" */
        flaredb_sql_free(q);
        return 0;
    }
    return propose_write(s, req, q, cls, top.confirm_destructive);
}

/* ---- tables ------------------------------------------------------------------------ */

static bool listed(const json_t *hidden, const char *name)
{
    size_t i;
    const json_t *v;
    json_array_foreach(hidden, i, v)
    {
        if (name && strcasecmp(json_string_value(v), name) == 0)
            return false;
    }
    return true;
}

/* `arg` is {"hidden": [...] or null}. */
static void do_tables(struct flaredb_server *s, struct uc_http_req *req, void *varg, uint64_t index)
{
    const json_t *arg = varg;
    json_t *out = NULL;
    (void)index; /* the listing carries no index */
    int rc = flaredb_db_tables(s->db, &out, req->err);
    if (rc < 0) {
        uc_http_error(req, rc, "%s", req->err);
        return;
    }
    const json_t *hidden = json_object_get(arg, "hidden");
    json_t *tables = json_object_get(out, "tables");
    for (size_t i = json_array_size(tables); i-- > 0;)
        if (!listed(hidden, json_string_value(json_object_get(json_array_get(tables, i), "name"))))
            json_array_remove(tables, i);
    flaredb_api_reply(req, 200, out);
}

int flaredb_api_h_tables(struct uc_http_req *req, void *ctx)
{
    struct flaredb_server *s = ctx;
    bool lin;
    json_t *hidden = NULL;
    int rc = flaredb_api_consistency(req, uc_http_query(req, "consistency"), &lin);
    if (rc < 0)
        return rc;
    if (lin && uc_replsvc_forward(s->rs, req))
        return 0;
    if ((rc = flaredb_server_hidden(s, &req->auth, &hidden, req->err)) < 0)
        return rc;
    return flaredb_server_read(s, req, do_tables, json_pack("{so*}", "hidden", hidden),
                               flaredb_server_release_json, lin);
}
