/* api_sql.c - POST /api/v1/sql and GET /api/v1/tables. A request is first
 * checked against the schema (flaredb_db_check) wherever it is answered:
 * a refused statement gets SQLite's message and its index, and nothing
 * reaches the log. A read-only request is then a read (a barrier and a
 * read thread, or this member's copy when serializable); anything else is
 * authorised by its class and proposed as one log entry. */
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

/* The command the database checks, reads or applies: the client's
 * statements and transaction flag, plus the tables the caller may not
 * reach ("hidden", enforced by the database's authorizer). */
static int build_cmd(struct flaredb_server *s, struct uc_http_req *req, json_t **out)
{
    json_t *hidden = NULL;
    int rc = flaredb_server_hidden(s, &req->auth, &hidden, req->err);
    if (rc < 0)
        return rc;
    json_t *cmd =
        json_pack("{sssOsb}", "op", "sql", "statements", json_object_get(req->body, "statements"),
                  "transaction", uc_json_bool(req->body, "transaction", true));
    if (cmd && hidden && json_object_set(cmd, "hidden", hidden) < 0) {
        json_decref(cmd);
        cmd = NULL;
    }
    json_decref(hidden);
    if (!cmd)
        return uc_err_set(req->err, UC_ENOMEM, "out of memory");
    *out = cmd;
    return 0;
}

static void do_query(struct flaredb_server *s, struct uc_http_req *req, const json_t *cmd,
                     uint64_t index)
{
    json_t *out = NULL;
    int rc = flaredb_db_query(s->db, cmd, &out, req->err);
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

/* May the caller run a request of class `cls`? Writes need any token,
 * additive DDL the admin role in the token's project, destructive DDL the
 * system-admin role and "confirm_destructive": true. */
static int authorize(struct uc_http_req *req, enum flaredb_db_class cls)
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
    if (!uc_json_bool(req->body, "confirm_destructive", false))
        return uc_err_set(req->err, UC_EINVAL,
                          "this request holds destructive DDL (DROP, ALTER TABLE RENAME or DROP "
                          "COLUMN); send \"confirm_destructive\": true to run it");
    return 0;
}

/* Destructive DDL is logged before it is proposed: who, and what. */
static void log_destructive(const struct uc_http_req *req)
{
    const json_t *stmts = json_object_get(req->body, "statements");
    char sub[UC_AUTH_ID_LEN + 4], name[UC_AUTH_ID_LEN + 4], sql[SQL_SHOWN + 4];
    uc_err_sanitize(sub, sizeof(sub), req->auth.sub, UC_AUTH_ID_LEN);
    uc_err_sanitize(name, sizeof(name), req->auth.name, UC_AUTH_ID_LEN);
    size_t n = json_array_size(stmts);
    for (size_t i = 0; i < n && i < LOGGED_STMTS; i++) {
        const char *text = json_string_value(json_object_get(json_array_get(stmts, i), "sql"));
        uc_err_sanitize(sql, sizeof(sql), text ? text : "", SQL_SHOWN);
        uc_log(UC_LOG_WARN, req->request_id, "destructive DDL by %s (%s): statements[%zu]: %s", sub,
               name, i, sql);
    }
    if (n > LOGGED_STMTS)
        uc_log(UC_LOG_WARN, req->request_id, "destructive DDL by %s (%s): %zu more statements", sub,
               name, n - LOGGED_STMTS);
}

static void count(struct flaredb_server *s, const struct uc_http_req *req,
                  enum flaredb_db_class cls)
{
    atomic_fetch_add(&s->sql_requests[cls], 1);
    atomic_fetch_add(&s->statements[cls],
                     json_array_size(json_object_get(req->body, "statements")));
}

/* Authorise, then propose `cmd` (stolen) with the class it may run at. */
static int propose_write(struct flaredb_server *s, struct uc_http_req *req, json_t *cmd,
                         enum flaredb_db_class cls)
{
    int rc = authorize(req, cls);
    if (rc < 0) {
        json_decref(cmd);
        return flaredb_api_refuse(s, req, rc);
    }
    if (json_object_set_new(cmd, "allow", json_string(flaredb_db_class_name(cls))) < 0 ||
        json_object_set_new(cmd, "max_steps", json_integer(s->max_steps)) < 0) {
        json_decref(cmd);
        return uc_err_set(req->err, UC_ENOMEM, "out of memory");
    }
    if (cls == FLAREDB_DB_DDL_DESTRUCTIVE)
        log_destructive(req);
    count(s, req, cls);
    return flaredb_api_propose(s, req, cmd, true);
}

/* True while this member is the raft leader. */
static bool leads(struct flaredb_server *s)
{
    struct uc_repl_status st;
    uc_repl_status(uc_replsvc_repl(s->rs), &st);
    return st.role == UC_REPL_LEADER;
}

int flaredb_api_h_sql(struct uc_http_req *req, void *ctx)
{
    struct flaredb_server *s = ctx;
    struct flaredb_db_verdict v = {0};
    bool lin;
    json_t *cmd = NULL;
    int rc = uc_json_validate(req->body, sql_fields, req->err);
    if (rc == 0)
        rc = flaredb_api_consistency(req, uc_json_str(req->body, "consistency", NULL), &lin);
    if (rc < 0)
        return flaredb_api_refuse(s, req, rc);
    if (lin && uc_replsvc_forward(s->rs, req))
        return 0;
    if ((rc = build_cmd(s, req, &cmd)) < 0)
        return rc;
    rc = flaredb_db_check(s->db, cmd, &v, req->err);
    enum flaredb_db_class cls = v.cls;
    flaredb_db_verdict_clear(&v);
    if (rc < 0 && lin && !leads(s)) {
        /* A cut-off member checks against a schema that may be stale: a
         * table created since would look missing. Only the leader's verdict
         * counts, so answer as for any request that needs it. */
        json_decref(cmd);
        struct uc_repl_done d = {.status = UC_EUNAVAIL,
                                 .msg = "this member is not the leader and cannot reach it"};
        uc_replsvc_reply_error(s->rs, req, &d);
        return 0;
    }
    if (rc < 0) {
        json_decref(cmd);
        return flaredb_api_refuse(s, req, rc);
    }
    if (cls == FLAREDB_DB_READ) {
        count(s, req, cls);
        return flaredb_server_read(s, req, do_query, cmd, lin);
    }
    if (!lin && uc_replsvc_forward(s->rs, req)) { /* a write asked for "serializable" */
        json_decref(cmd);
        return 0;
    }
    return propose_write(s, req, cmd, cls);
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
static void do_tables(struct flaredb_server *s, struct uc_http_req *req, const json_t *arg,
                      uint64_t index)
{
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
    return flaredb_server_read(s, req, do_tables, json_pack("{so*}", "hidden", hidden), lin);
}
