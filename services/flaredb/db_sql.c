/* db_sql.c - the SQL commands: the leader's check, apply inside the entry's
 * transaction (a savepoint per entry, and per statement when "transaction"
 * is false), read-only requests on a reader, and the table listing. The one
 * rule: apply trusts nothing the check found; it prepares every statement
 * again under the same authorizer and enforces the command's "allow". */
#include <stdio.h>
#include <string.h>

#include "db_internal.h"
#include "uc/alloc.h"
#include "uc/log.h"

/* ---- the leader's check ------------------------------------------------------- */

struct check_state {
    enum flaredb_db_class cls; /* highest so far */
    long nondet_at;            /* first statement calling a non-deterministic function, or -1 */
    char nondet[72];           /* that function */
};

/* Checks statements[si] on reader `c`. */
static int check_stmt(struct fconn *c, struct stmt_cache *sc, const struct sql_req *req, size_t si,
                      json_t *tables, struct check_state *cs, char *err)
{
    sqlite3_stmt *st = NULL;
    struct stmt_fail f;
    bool cached;
    int rc = flaredb_db_stmt_get(c, sc, AZ_READ, req, si, tables, &st, &cached, &f, err);
    if (rc < 0 && f.unprepared && cs->cls >= FLAREDB_DB_DDL_ADDITIVE) {
        /* it may name what an earlier statement creates: apply decides */
        size_t len;
        const char *sql = flaredb_db_sql_text(req, si, &len);
        enum flaredb_db_class g = flaredb_db_guess_class(sql, len);
        cs->cls = g > cs->cls ? g : cs->cls;
        return 0;
    }
    if (rc < 0)
        return rc;
    /* EXPLAIN compiles the statement it explains, but only reads */
    enum flaredb_db_class cls =
        sqlite3_stmt_isexplain(st) ? FLAREDB_DB_READ : flaredb_db_authz_class(&c->az);
    if (cls == FLAREDB_DB_READ && !sqlite3_stmt_isexplain(st) && !sqlite3_stmt_readonly(st))
        cls = FLAREDB_DB_WRITE;
    cs->cls = cls > cs->cls ? cls : cs->cls;
    if (c->az.nondet[0] && cs->nondet_at < 0) {
        cs->nondet_at = (long)si;
        snprintf(cs->nondet, sizeof(cs->nondet), "%s", c->az.nondet);
    }
    rc = flaredb_db_stmt_bind_check(st, req, si, err);
    flaredb_db_stmt_release(st, cached);
    return rc;
}

/* Each distinct text is prepared once per request (a batch shares one). */
static int check_all(struct fconn *c, const struct sql_req *req, json_t *tables,
                     enum flaredb_db_class *cls, char *err)
{
    struct check_state cs = {.cls = FLAREDB_DB_READ, .nondet_at = -1};
    struct stmt_cache sc = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < req->n; i++)
        rc = check_stmt(c, &sc, req, i, tables, &cs, err);
    flaredb_cache_clear(&sc);
    if (rc == 0 && cs.nondet_at >= 0 && cs.cls > FLAREDB_DB_READ)
        rc = uc_err_set(err, UC_EINVAL, "statements[%ld]: " NONDET_MSG, cs.nondet_at, cs.nondet);
    *cls = cs.cls;
    return rc;
}

int flaredb_db_check_sql(struct flaredb_db *db, const struct flaredb_sql *q,
                         struct flaredb_db_verdict *out, char err[UC_ERR_LEN])
{
    json_t *tables = json_array();
    if (!tables)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    struct fconn *c;
    enum flaredb_db_class cls = FLAREDB_DB_READ;
    int rc = flaredb_db_reader_get(db, &c, err);
    if (rc == 0) {
        rc = check_all(c, &q->req, tables, &cls, err);
        flaredb_db_reader_put(db, c);
    }
    if (rc < 0) {
        json_decref(tables);
        return rc;
    }
    *out = (struct flaredb_db_verdict){.cls = cls, .tables = tables};
    return 0;
}

int flaredb_db_sql_check(struct flaredb_db *db, const json_t *cmd, struct flaredb_db_verdict *out,
                         char *err)
{
    struct flaredb_sql *q = NULL;
    int rc = flaredb_sql_from_json(cmd, &q, err);
    if (rc == 0)
        rc = flaredb_db_check_sql(db, q, out, err);
    flaredb_sql_free(q);
    return rc;
}

/* ---- apply ----------------------------------------------------------------------- */

/* Refuses column defaults that call a non-deterministic function in the
 * table a CREATE TABLE or ALTER TABLE just made: SQLite compiles defaults
 * where the authorizer does not look, so without this every later INSERT
 * would fail instead of the CREATE. */
static int check_defaults(struct flaredb_db *db, const char *table, size_t si, char *err)
{
    struct fconn *c = &db->w;
    sqlite3_stmt *q = NULL;
    c->az.mode = AZ_OFF;
    int rc = sqlite3_prepare_v2(c->h,
                                "SELECT name, dflt_value FROM pragma_table_xinfo(?1) "
                                "WHERE dflt_value IS NOT NULL",
                                -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(q, 1, table, -1, SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(q);
        return flaredb_db_fail(c->h, rc, "reading column defaults", err);
    }
    int out = 0;
    while (out == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *dflt = (const char *)sqlite3_column_text(q, 1);
        char *sql = dflt ? uc_asprintf("SELECT (%s)", dflt) : NULL;
        sqlite3_stmt *probe = NULL;
        if (!sql) {
            out = uc_err_set(err, UC_ENOMEM, "out of memory");
            break;
        }
        flaredb_db_authz_begin(c, AZ_WRITE, NULL);
        int prc = sqlite3_prepare_v2(c->h, sql, -1, &probe, NULL);
        const char *col = (const char *)sqlite3_column_text(q, 0);
        char shown[68];
        uc_err_sanitize(shown, sizeof(shown), col ? col : "?", 64);
        if (prc != SQLITE_OK && c->az.deny)
            out = uc_err_set(err, c->az.deny, "statements[%zu]: column '%s' DEFAULT: %s", si, shown,
                             c->az.why);
        else if (prc != SQLITE_OK && flaredb_db_local_rc(prc)) /* not a verdict: retry later */
            out = flaredb_db_fail(c->h, prc, "checking a column default", err);
        sqlite3_finalize(probe);
        uc_free(sql);
        c->az.mode = AZ_OFF;
    }
    if (out == 0 && rc != SQLITE_DONE)
        out = flaredb_db_fail(c->h, rc, "reading column defaults", err);
    sqlite3_finalize(q);
    return out;
}

/* Runs statements[si] on the writer, adding its answer to `res`. */
static int apply_stmt(struct flaredb_db *db, const struct sql_req *req, size_t si,
                      struct flaredb_result *res, struct stmt_fail *f, char *err)
{
    struct fconn *c = &db->w;
    sqlite3_stmt *st = NULL;
    bool cached;
    json_t *full = NULL;
    int64_t changes = 0, last_id = 0;
    int rc = flaredb_db_stmt_get(c, &db->wcache, AZ_WRITE, req, si, NULL, &st, &cached, f, err);
    if (rc < 0)
        return rc;
    enum flaredb_db_class cls =
        sqlite3_stmt_isexplain(st) ? FLAREDB_DB_READ : flaredb_db_authz_class(&c->az);
    if (cls > req->allow)
        rc = uc_err_set(err, UC_EFORBIDDEN,
                        "statements[%zu] is %s, which this request was not allowed (\"allow\" "
                        "is \"%s\")",
                        si, flaredb_db_class_name(cls), flaredb_db_class_name(req->allow));
    if (rc == 0)
        rc = flaredb_db_stmt_bind(c, st, req, si, f, err);
    if (rc == 0) {
        c->max_ticks = (req->max_steps + PROGRESS_OPS - 1) / PROGRESS_OPS;
        if (sqlite3_column_count(st) == 0)
            rc = flaredb_db_stmt_exec(c, st, si, &changes, &last_id, f, err);
        else
            rc = flaredb_db_stmt_collect(c, st, si, FLAREDB_DB_APPLY_MAX_ROWS, &full, f, err);
        c->max_ticks = 0;
    }
    char created[sizeof(c->az.created)];
    memcpy(created, c->az.created, sizeof(created));
    flaredb_db_stmt_release(st, cached);
    if (cls >= FLAREDB_DB_DDL_ADDITIVE) {
        /* the cached statements were checked against the old schema */
        flaredb_cache_rules_keep(&db->wcache);
        db->schema_changed = true;
    }
    if (rc == 0 && cls == FLAREDB_DB_DDL_ADDITIVE && created[0] &&
        (rc = check_defaults(db, created, si, err)) < 0)
        f->local = rc == UC_ENOMEM || rc == UC_EIO || rc == UC_EUNAVAIL;
    if (rc < 0) {
        json_decref(full);
        return rc;
    }
    if (flaredb_result_add(res, full, changes, last_id) < 0) {
        f->local = true;
        return uc_err_set(err, UC_ENOMEM, "out of memory building a result");
    }
    return 0;
}

/* The shared-failure answer: the error, naming the statement, plus (when
 * statements commit one by one) the results of those that did. */
static json_t *failure(int code, const char *msg, size_t si, const struct flaredb_result *done)
{
    json_t *extra = json_pack("{sI}", "statement", (json_int_t)si);
    json_t *e = extra ? flaredb_db_error_json(code, msg, extra) : NULL;
    if (e && done && flaredb_db_set(e, "results", flaredb_result_array(done)) < 0) {
        json_decref(e);
        e = NULL;
    }
    return e;
}

/* Undoes statement si after a shared failure and makes `res` the answer. A
 * statement with OR ROLLBACK (or a trigger's RAISE(ROLLBACK)) has already
 * ended the whole transaction, the same way on every member: the entry then
 * starts again as a no-op, so the applied index still commits. */
static int shared_failure(struct flaredb_db *db, const struct sql_req *req, int code,
                          const char *msg, size_t si, struct flaredb_result *res, char *err)
{
    bool ended = sqlite3_get_autocommit(db->w.h);
    int rc;
    if (ended && db->group.n) /* the entries before it in the group are undone too */
        return uc_err_set(err, UC_EBUSY, "statement %zu ended the group's transaction", si);
    if (ended) {
        rc = flaredb_db_wstep(db, W_BEGIN, err);
        if (rc == 0)
            rc = flaredb_db_wstep(db, W_ENTRY_SP, err);
    } else {
        rc = flaredb_db_wstep(db, req->tx ? W_ENTRY_UNDO : W_STMT_UNDO, err);
        if (rc == 0 && !req->tx)
            rc = flaredb_db_wstep(db, W_STMT_RELEASE, err);
    }
    json_t *r = rc == 0 ? failure(code, msg, si, req->tx || ended ? NULL : res) : NULL;
    if (rc == 0 && !r)
        rc = uc_err_set(err, UC_ENOMEM, "out of memory");
    flaredb_result_reset(res);
    res->json = r;
    return rc;
}

/* Runs the statements into `res` (the answer, or a shared failure). */
static int apply_all(struct flaredb_db *db, const struct sql_req *req, struct flaredb_result *res,
                     char *err)
{
    for (size_t i = 0; i < req->n; i++) {
        struct stmt_fail f = {0};
        char msg[UC_ERR_LEN] = "";
        int rc = req->tx ? 0 : flaredb_db_wstep(db, W_STMT_SP, err);
        if (rc < 0)
            return rc;
        rc = apply_stmt(db, req, i, res, &f, msg);
        if (rc < 0 && f.local)
            return uc_err_set(err, rc, "%s", msg);
        if (rc < 0)
            return shared_failure(db, req, rc, msg, i, res, err);
        if (!req->tx && (rc = flaredb_db_wstep(db, W_STMT_RELEASE, err)) < 0)
            return rc;
    }
    return 0;
}

int flaredb_db_sql_apply(struct flaredb_db *db, const struct sql_req *req,
                         struct flaredb_result *res, char *err)
{
    int rc = flaredb_db_wstep(db, W_ENTRY_SP, err);
    if (rc == 0)
        rc = apply_all(db, req, res, err);
    if (rc == 0)
        rc = flaredb_db_wstep(db, W_ENTRY_RELEASE, err);
    return rc;
}

/* ---- reads ------------------------------------------------------------------------ */

static int query_stmt(struct fconn *c, const struct sql_req *req, size_t si, json_t *results,
                      char *err)
{
    sqlite3_stmt *st = NULL;
    struct stmt_fail f;
    json_t *res = NULL;
    int rc = flaredb_db_stmt_prepare(c, AZ_READ, req, si, NULL, &st, &f, err);
    if (rc < 0)
        return rc;
    if (!sqlite3_stmt_isexplain(st) && !sqlite3_stmt_readonly(st))
        rc = uc_err_set(err, UC_EINVAL, "statements[%zu] is not read-only; send it as a write", si);
    if (rc == 0)
        rc = flaredb_db_stmt_bind(c, st, req, si, &f, err);
    if (rc == 0)
        rc = flaredb_db_stmt_collect(c, st, si, c->db->cfg.max_rows, &res, &f, err);
    sqlite3_finalize(st);
    if (rc == 0 && json_array_append_new(results, res) < 0)
        rc = uc_err_set(err, UC_ENOMEM, "out of memory");
    return rc;
}

int flaredb_db_query_sql(struct flaredb_db *db, const struct flaredb_sql *q, json_t **out,
                         char err[UC_ERR_LEN])
{
    json_t *results = json_array();
    if (!results)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    struct fconn *c;
    int rc = flaredb_db_reader_get(db, &c, err);
    if (rc == 0) {
        rc = flaredb_db_read_begin(c, err);
        for (size_t i = 0; rc == 0 && i < q->req.n; i++)
            rc = query_stmt(c, &q->req, i, results, err);
        flaredb_db_read_end(c);
        flaredb_db_reader_put(db, c);
    }
    json_t *o = rc == 0 ? json_pack("{sO}", "results", results) : NULL;
    json_decref(results);
    if (rc < 0 || !o)
        return rc < 0 ? rc : uc_err_set(err, UC_ENOMEM, "out of memory");
    *out = o;
    return 0;
}

int flaredb_db_query(struct flaredb_db *db, const json_t *req, json_t **out, char err[UC_ERR_LEN])
{
    struct flaredb_sql *q = NULL;
    int rc = flaredb_sql_from_json(req, &q, err);
    if (rc == 0)
        rc = flaredb_db_query_sql(db, q, out, err);
    flaredb_sql_free(q);
    return rc;
}

/* ---- tables -------------------------------------------------------------------------- */

static const char tables_sql[] =
    "SELECT m.name, m.type, p.name, p.type, p.\"notnull\", p.pk "
    "FROM sqlite_schema AS m JOIN pragma_table_info(m.name) AS p "
    "WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
    "AND m.name NOT LIKE '\\_flaredb\\_%' ESCAPE '\\' ORDER BY m.name, p.cid";

/* Appends the current row's column to the last table in `items`, opening a
 * new table entry when the name changes. */
static int add_column(json_t *items, sqlite3_stmt *st)
{
    const char *name = (const char *)sqlite3_column_text(st, 0);
    json_t *last = json_array_get(items, json_array_size(items) - 1);
    if (!name)
        return UC_ENOMEM;
    if (!last || strcmp(json_string_value(json_object_get(last, "name")), name) != 0) {
        last = json_pack("{s:s,s:s?,s:[]}", "name", name, "type",
                         (const char *)sqlite3_column_text(st, 1), "columns");
        if (!last || json_array_append_new(items, last) < 0)
            return UC_ENOMEM;
    }
    const char *cname = (const char *)sqlite3_column_text(st, 2);
    const char *ctype = (const char *)sqlite3_column_text(st, 3);
    json_t *col =
        json_pack("{s:s?,s:s,s:b,s:I}", "name", cname, "type", ctype ? ctype : "", "notnull",
                  sqlite3_column_int(st, 4) != 0, "pk", (json_int_t)sqlite3_column_int64(st, 5));
    if (!col || json_array_append_new(json_object_get(last, "columns"), col) < 0)
        return UC_ENOMEM;
    return 0;
}

static int list_rows(struct fconn *c, const char *sql, const char *what,
                     int (*add)(json_t *items, sqlite3_stmt *st), json_t *items, char *err)
{
    sqlite3_stmt *st = NULL;
    c->az.mode = AZ_OFF;
    int rc = sqlite3_prepare_v2(c->h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return flaredb_db_fail(c->h, rc, what, err);
    int out = 0;
    while (out == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        if (add(items, st) < 0)
            out = uc_err_set(err, UC_ENOMEM, "out of memory %s", what);
    if (out == 0 && rc != SQLITE_DONE)
        out = flaredb_db_fail(c->h, rc, what, err);
    sqlite3_finalize(st);
    return out;
}

int flaredb_db_list(struct flaredb_db *db, const char *sql, const char *what,
                    int (*add)(json_t *items, sqlite3_stmt *st), const char *key, json_t **out,
                    char *err)
{
    json_t *items = json_array();
    if (!items)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    struct fconn *c;
    int rc = flaredb_db_reader_get(db, &c, err);
    if (rc == 0) {
        rc = flaredb_db_read_begin(c, err);
        if (rc == 0)
            rc = list_rows(c, sql, what, add, items, err);
        flaredb_db_read_end(c);
        flaredb_db_reader_put(db, c);
    }
    json_t *o = rc == 0 ? json_pack("{sO}", key, items) : NULL;
    json_decref(items);
    if (!o)
        return rc < 0 ? rc : uc_err_set(err, UC_ENOMEM, "out of memory");
    *out = o;
    return 0;
}

int flaredb_db_tables(struct flaredb_db *db, json_t **out, char err[UC_ERR_LEN])
{
    return flaredb_db_list(db, tables_sql, "listing tables", add_column, "tables", out, err);
}
