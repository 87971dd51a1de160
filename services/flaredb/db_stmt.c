/* db_stmt.c - one user statement's life on any connection: validating the
 * request that carries it, preparing it under the authorizer, binding its
 * parameters by position (never by interpolation), and stepping it into a
 * result whose values keep their SQLite type. Shared by check, apply and
 * reads; each caller decides what a failure means for its transaction. */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "db_internal.h"
#include "uc/alloc.h"
#include "uc/crypto.h"
#include "uc/json.h"

#define MAX_SQL (1 << 20) /* bytes of one statement's text */
#define MAX_PARAMS 32766  /* SQLite's default SQLITE_MAX_VARIABLE_NUMBER */
#define MAX_HIDDEN 100000 /* names in a command's "hidden" list */

/* ---- JSON helpers -------------------------------------------------------------- */

int flaredb_db_set(json_t *obj, const char *name, json_t *v)
{
    if (!v || json_object_set_new(obj, name, v) < 0)
        return UC_ENOMEM;
    return 0;
}

json_t *flaredb_db_b64(const void *p, size_t n)
{
    char *s = uc_b64url_encode(p, n);
    json_t *j = s ? json_string(s) : NULL;
    uc_free(s);
    return j;
}

/* uc_json_message keeps an error quoting a malformed entry's bytes the
 * same answer on every member, rather than a local failure. */
json_t *flaredb_db_error_json(int code, const char *msg, json_t *extra)
{
    json_t *e = json_pack("{siso}", "code", code, "message", uc_json_message(msg));
    if (e && extra && json_object_update(e, extra) < 0) {
        json_decref(e);
        e = NULL;
    }
    json_decref(extra);
    return e ? json_pack("{so}", "error", e) : NULL;
}

/* ---- the request ------------------------------------------------------------------ */

static const struct uc_json_field sql_fields[] = {
    {"op", UC_JSON_STRING, false, 0, 16, NULL},
    {"statements", UC_JSON_ARRAY, true, 1, FLAREDB_DB_MAX_STATEMENTS, NULL},
    {"transaction", UC_JSON_BOOL, false, 0, 0, NULL},
    {"allow", UC_JSON_STRING, false, 0, 32, NULL},
    {"max_steps", UC_JSON_INT, false, 1, FLAREDB_DB_MAX_STEPS, NULL},
    {"hidden", UC_JSON_ARRAY, false, 0, MAX_HIDDEN, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

static const struct uc_json_field stmt_fields[] = {
    {"sql", UC_JSON_STRING, true, 1, MAX_SQL, NULL},
    {"params", UC_JSON_ARRAY, false, 0, MAX_PARAMS, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

static int parse_allow(const char *s, enum flaredb_db_class *out, char *err)
{
    for (int c = FLAREDB_DB_WRITE; c <= FLAREDB_DB_DDL_DESTRUCTIVE; c++) {
        if (strcmp(s, flaredb_db_class_name((enum flaredb_db_class)c)) == 0) {
            *out = (enum flaredb_db_class)c;
            return 0;
        }
    }
    return uc_err_set(err, UC_EINVAL,
                      "field 'allow' must be \"write\", \"ddl_additive\" or \"ddl_destructive\"");
}

/* A JSON parameter as SQLite will take it; a value of no SQL type becomes
 * PARAM_BAD*, refused at bind (so errors keep the statements' order). */
static int param_from_json(const json_t *v, struct sql_req *req, struct sql_param *out, char *err)
{
    *out = (struct sql_param){.type = SQLITE_NULL};
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        *out = (struct sql_param){.type = SQLITE_INTEGER, .i = json_integer_value(v)};
        return 0;
    case JSON_REAL:
        *out = (struct sql_param){.type = SQLITE_FLOAT, .d = json_real_value(v)};
        return 0;
    case JSON_STRING:
        *out = (struct sql_param){
            .type = SQLITE_TEXT, .p = json_string_value(v), .n = json_string_length(v)};
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        *out = (struct sql_param){.type = SQLITE_INTEGER, .i = json_is_true(v)};
        return 0;
    case JSON_NULL:
        return 0;
    default:
        break;
    }
    /* not json_unpack: its strict mode allocates, and memory trouble must
     * not read as a bad parameter */
    const char *b64 = json_string_value(json_object_get(v, "blob"));
    out->type = PARAM_BAD;
    if (!b64 || json_object_size(v) != 1)
        return 0;
    uint8_t *p = NULL;
    size_t n = 0;
    int rc = uc_b64url_decode(b64, strlen(b64), &p, &n);
    if (rc == UC_EINVAL) {
        out->type = PARAM_BAD_BLOB;
        return 0;
    }
    if (rc < 0)
        return uc_err_set(err, rc, "out of memory decoding a blob");
    req->blobs[req->nblobs++] = p;
    *out = (struct sql_param){.type = SQLITE_BLOB, .p = p, .n = n};
    return 0;
}

/* Counts the params (and blob-shaped ones) of validated statements. */
static void count_params(const json_t *stmts, size_t *np, size_t *nobj)
{
    size_t i, k;
    const json_t *s, *v;
    *np = *nobj = 0;
    json_array_foreach(stmts, i, s)
    {
        json_array_foreach(json_object_get(s, "params"), k, v)
        {
            (*np)++;
            *nobj += json_is_object(v);
        }
    }
}

/* Flattens validated statements into req. */
static int flatten(const json_t *stmts, struct sql_req *req, char *err)
{
    size_t np, nobj, i, k, at = 0;
    const json_t *s, *v;
    count_params(stmts, &np, &nobj);
    req->n = json_array_size(stmts);
    req->stmts = uc_calloc(req->n, sizeof(*req->stmts));
    req->pool = uc_calloc(np ? np : 1, sizeof(*req->pool));
    req->blobs = nobj ? uc_calloc(nobj, sizeof(*req->blobs)) : NULL;
    if (!req->stmts || !req->pool || (nobj && !req->blobs))
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    json_array_foreach(stmts, i, s)
    {
        const json_t *sql = json_object_get(s, "sql"), *params = json_object_get(s, "params");
        struct sql_stmt *st = &req->stmts[i];
        *st = (struct sql_stmt){.sql = json_string_value(sql),
                                .len = json_string_length(sql),
                                .np = json_array_size(params),
                                .params = req->pool + at};
        json_array_foreach(params, k, v)
        {
            int rc = param_from_json(v, req, &req->pool[at++], err);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int flaredb_db_sql_parse(const json_t *cmd, struct sql_req *req, char *err)
{
    *req = (struct sql_req){
        .tx = true, .allow = FLAREDB_DB_WRITE, .max_steps = FLAREDB_DB_DEFAULT_STEPS};
    int rc = uc_json_validate(cmd, sql_fields, err);
    if (rc < 0)
        return rc;
    const char *op = uc_json_str(cmd, "op", "sql");
    if (strcmp(op, "sql") != 0)
        return uc_err_set(err, UC_EINVAL, "field 'op' must be \"sql\" here");
    req->tx = uc_json_bool(cmd, "transaction", true);
    req->max_steps = uc_json_int(cmd, "max_steps", FLAREDB_DB_DEFAULT_STEPS);
    const char *allow = uc_json_str(cmd, "allow", NULL);
    if (allow && (rc = parse_allow(allow, &req->allow, err)) < 0)
        return rc;
    size_t i;
    const json_t *s, *stmts = json_object_get(cmd, "statements");
    req->hidden = json_object_get(cmd, "hidden");
    json_array_foreach(req->hidden, i, s)
    {
        size_t n = json_string_length(s);
        if (!json_is_string(s) || n == 0 || n > FLAREDB_DB_MAX_TABLE_NAME)
            return uc_err_set(err, UC_EINVAL, "hidden[%zu] must be a table name of 1-%d bytes", i,
                              FLAREDB_DB_MAX_TABLE_NAME);
    }
    json_array_foreach(stmts, i, s)
    {
        if ((rc = uc_json_validate(s, stmt_fields, err)) < 0)
            return uc_err_prefix(err, rc, "statements[%zu]", i);
    }
    return flatten(stmts, req, err);
}

void flaredb_db_sql_clear(struct sql_req *req)
{
    for (size_t i = 0; i < req->nblobs; i++)
        uc_free(req->blobs[i]);
    uc_free(req->blobs);
    uc_free(req->pool);
    uc_free(req->stmts);
    json_decref(req->own_hidden);
    *req = (struct sql_req){0};
}

const char *flaredb_db_sql_text(const struct sql_req *req, size_t si, size_t *len)
{
    *len = req->stmts[si].len;
    return req->stmts[si].sql;
}

/* ---- parsed requests (the public face of sql_req) ------------------------------- */

int flaredb_sql_from_json(const json_t *cmd, struct flaredb_sql **out, char err[UC_ERR_LEN])
{
    struct flaredb_sql *q = uc_calloc(1, sizeof(*q));
    if (!q)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    q->json = json_incref((json_t *)cmd); /* the strings stay where they are */
    int rc = flaredb_db_sql_parse(cmd, &q->req, err);
    if (rc < 0) {
        flaredb_sql_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

void flaredb_sql_free(struct flaredb_sql *q)
{
    if (!q)
        return;
    flaredb_db_sql_clear(&q->req);
    uc_free(q->arena);
    json_decref(q->json);
    uc_free(q);
}

size_t flaredb_sql_count(const struct flaredb_sql *q) { return q->req.n; }

const char *flaredb_sql_text(const struct flaredb_sql *q, size_t i, size_t *len)
{
    return flaredb_db_sql_text(&q->req, i, len);
}

void flaredb_sql_restrict(struct flaredb_sql *q, json_t *hidden)
{
    json_decref(q->req.own_hidden);
    q->req.own_hidden = json_incref(hidden);
    q->req.hidden = hidden;
}

/* ---- prepare ------------------------------------------------------------------- */

static int prepare_failed(struct fconn *c, int rc, size_t si, struct stmt_fail *f, char *err)
{
    if (c->az.deny)
        return uc_err_set(err, c->az.deny, "statements[%zu]: %s", si, c->az.why);
    f->local = flaredb_db_local_rc(rc);
    if (f->local)
        return flaredb_db_fail(c->h, rc, "preparing a statement", err);
    f->unprepared = true;
    return uc_err_set(err, UC_EINVAL, "statements[%zu]: %s", si, sqlite3_errmsg(c->h));
}

static int prepare(struct fconn *c, enum az_mode mode, const struct sql_req *req, size_t si,
                   json_t *tables, unsigned flags, sqlite3_stmt **st, struct stmt_fail *f,
                   char *err)
{
    size_t len;
    const char *sql = flaredb_db_sql_text(req, si, &len), *tail = NULL;
    *f = (struct stmt_fail){0};
    /* VACUUM passes no authorizer check; INTO would write a file on the member */
    if (flaredb_db_first_word_is(sql, len, "VACUUM"))
        return uc_err_set(err, UC_EINVAL, "statements[%zu]: VACUUM is not allowed", si);
    flaredb_db_authz_begin(c, mode, tables);
    c->az.hidden = json_array_size(req->hidden) ? req->hidden : NULL;
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v3(c->h, sql, (int)len, flags, &s, &tail);
    if (rc != SQLITE_OK)
        return prepare_failed(c, rc, si, f, err);
    if (!s)
        return uc_err_set(err, UC_EINVAL, "statements[%zu] holds no SQL statement", si);
    /* SQLite's own DDL reads sqlite_schema too, so only statements below
     * DDL are refused for reading it */
    if (c->az.hidden && c->az.schema_read &&
        flaredb_db_authz_class(&c->az) < FLAREDB_DB_DDL_ADDITIVE) {
        sqlite3_finalize(s);
        return uc_err_set(err, UC_EFORBIDDEN,
                          "statements[%zu] reads the schema (sqlite_schema or a pragma_ "
                          "function), which would show tables restricted to other projects; "
                          "list tables with GET /api/v1/tables",
                          si);
    }
    if (flaredb_db_skip_blank(tail, sql + len) != sql + len) {
        sqlite3_finalize(s);
        return uc_err_set(err, UC_EINVAL,
                          "statements[%zu] holds more than one SQL statement; send each as its "
                          "own entry of \"statements\"",
                          si);
    }
    *st = s;
    return 0;
}

int flaredb_db_stmt_prepare(struct fconn *c, enum az_mode mode, const struct sql_req *req,
                            size_t si, json_t *tables, sqlite3_stmt **st, struct stmt_fail *f,
                            char *err)
{
    return prepare(c, mode, req, si, tables, 0, st, f, err);
}

int flaredb_db_stmt_get(struct fconn *c, struct stmt_cache *sc, enum az_mode mode,
                        const struct sql_req *req, size_t si, json_t *tables, sqlite3_stmt **st,
                        bool *cached, struct stmt_fail *f, char *err)
{
    size_t len;
    const char *sql = flaredb_db_sql_text(req, si, &len);
    *cached = false;
    *f = (struct stmt_fail){0};
    int rc = sc ? flaredb_cache_rules(sc, req->hidden, err) : 0;
    if (rc < 0) {
        f->local = true;
        return rc;
    }
    sqlite3_stmt *hit = sc ? flaredb_cache_find(sc, mode, sql, len, &c->az) : NULL;
    if (hit) {
        /* the verdict stands; these two matter if SQLite re-prepares it */
        c->az.tables = tables;
        c->az.hidden = json_array_size(req->hidden) ? req->hidden : NULL;
        *st = hit;
        *cached = true;
        return 0;
    }
    rc = prepare(c, mode, req, si, tables, sc ? SQLITE_PREPARE_PERSISTENT : 0, st, f, err);
    /* DDL is never kept: it changes the schema the others were checked against */
    if (rc == 0 && sc && flaredb_db_authz_class(&c->az) < FLAREDB_DB_DDL_ADDITIVE)
        *cached = flaredb_cache_add(sc, sql, len, *st, &c->az);
    return rc;
}

void flaredb_db_stmt_release(sqlite3_stmt *st, bool cached)
{
    if (cached)
        flaredb_db_done(st);
    else
        sqlite3_finalize(st);
}

/* ---- bind ------------------------------------------------------------------------ */

/* The refusal of a parameter of no SQL type; 0 for any other. */
static int bad_param(const struct sql_param *v, int idx, size_t si, char *err)
{
    if (v->type == PARAM_BAD_BLOB)
        return uc_err_set(err, UC_EINVAL, "statements[%zu]: parameter %d: blob is not base64url",
                          si, idx);
    if (v->type == PARAM_BAD)
        return uc_err_set(err, UC_EINVAL,
                          "statements[%zu]: parameter %d must be a number, a string, null, "
                          "true/false or {\"blob\": \"<base64url>\"}",
                          si, idx);
    return 0;
}

/* Returns an SQLite code, or a negative UC_E* code with err set. The bytes
 * outlive the binding: every statement is reset (bindings cleared) or
 * finalized before its request is released, so SQLite need not copy them. */
static int bind_one(sqlite3_stmt *st, int idx, const struct sql_param *v, size_t si, char *err)
{
    switch (v->type) {
    case SQLITE_INTEGER:
        return sqlite3_bind_int64(st, idx, v->i);
    case SQLITE_FLOAT:
        return sqlite3_bind_double(st, idx, v->d);
    case SQLITE_TEXT:
        return sqlite3_bind_text64(st, idx, v->p ? v->p : "", v->n, SQLITE_STATIC, SQLITE_UTF8);
    case SQLITE_BLOB:
        return v->n ? sqlite3_bind_blob64(st, idx, v->p, v->n, SQLITE_STATIC)
                    : sqlite3_bind_zeroblob(st, idx, 0);
    case SQLITE_NULL:
        return sqlite3_bind_null(st, idx);
    default:
        return bad_param(v, idx, si, err);
    }
}

/* The statement's parameter count against the request's. */
static int count_check(sqlite3_stmt *st, const struct sql_stmt *s, size_t si, char *err)
{
    int want = sqlite3_bind_parameter_count(st);
    if (s->np != (size_t)want)
        return uc_err_set(err, UC_EINVAL, "statements[%zu] has %d parameter%s, %zu given", si, want,
                          want == 1 ? "" : "s", s->np);
    return 0;
}

int flaredb_db_stmt_bind_check(sqlite3_stmt *st, const struct sql_req *req, size_t si, char *err)
{
    const struct sql_stmt *s = &req->stmts[si];
    int rc = count_check(st, s, si, err);
    for (size_t i = 0; rc == 0 && i < s->np; i++)
        rc = bad_param(&s->params[i], (int)i + 1, si, err);
    return rc;
}

int flaredb_db_stmt_bind(struct fconn *c, sqlite3_stmt *st, const struct sql_req *req, size_t si,
                         struct stmt_fail *f, char *err)
{
    const struct sql_stmt *s = &req->stmts[si];
    *f = (struct stmt_fail){0};
    int rc0 = count_check(st, s, si, err);
    if (rc0 < 0)
        return rc0;
    for (size_t i = 0; i < s->np; i++) {
        int rc = bind_one(st, (int)i + 1, &s->params[i], si, err);
        if (rc < 0)
            return rc;
        if (rc != SQLITE_OK) {
            f->local = flaredb_db_local_rc(rc);
            return uc_err_prefix(err, flaredb_db_fail(c->h, rc, "bind", err),
                                 "statements[%zu]: parameter %zu", si, i + 1);
        }
    }
    return 0;
}

/* ---- results ----------------------------------------------------------------------- */

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), as
 * jansson demands of strings. */
bool flaredb_db_utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t w;
        /* eight ASCII bytes at a time: a request body is mostly ASCII */
        if (n - i >= 8 && (memcpy(&w, s + i, 8), (w & 0x8080808080808080ull) == 0)) {
            i += 8;
            continue;
        }
        unsigned char b = s[i];
        size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n)
            return false;
        uint32_t cp = len == 1 ? b : b & (0x7F >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

static json_t *text_json(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!t)
        return NULL;
    if (flaredb_db_utf8_ok(t, n))
        return json_stringn((const char *)t, n);
    json_t *b = flaredb_db_b64(t, n);
    return b ? json_pack("{so}", "text_base64url", b) : NULL;
}

/* The value of column i; NULL only when memory ran out. */
static json_t *value_json(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return json_integer(sqlite3_column_int64(st, i));
    case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st, i);
        if (isfinite(d))
            return json_real(d);
        return json_pack("{ss}", "real", d > 0 ? "inf" : "-inf");
    }
    case SQLITE_TEXT:
        return text_json(st, i);
    case SQLITE_BLOB: {
        const void *p = sqlite3_column_blob(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        json_t *b = p || !n ? flaredb_db_b64(p ? p : "", n) : NULL;
        return b ? json_pack("{so}", "blob", b) : NULL;
    }
    default:
        return json_null();
    }
}

static json_t *row_json(sqlite3_stmt *st, int ncol)
{
    json_t *row = json_array();
    for (int i = 0; row && i < ncol; i++) {
        if (json_array_append_new(row, value_json(st, i)) < 0) {
            json_decref(row);
            return NULL;
        }
    }
    return row;
}

/* Declared type of column i in lower case, or JSON null (an expression). */
static json_t *decltype_json(sqlite3_stmt *st, int i)
{
    const char *t = sqlite3_column_decltype(st, i);
    if (!t)
        return json_null();
    char low[64];
    size_t n = 0;
    for (; t[n] && n + 1 < sizeof(low); n++)
        low[n] = (char)tolower((unsigned char)t[n]);
    low[n] = '\0';
    return flaredb_db_utf8_ok((const unsigned char *)low, n) ? json_string(low) : json_null();
}

/* {"columns":[...],"types":[...],"rows":[]}; NULL on ENOMEM. */
static json_t *result_head(sqlite3_stmt *st)
{
    json_t *cols = json_array(), *types = json_array();
    int ncol = sqlite3_column_count(st);
    for (int i = 0; cols && types && i < ncol; i++) {
        const char *name = sqlite3_column_name(st, i);
        if (!name || json_array_append_new(cols, json_string(name)) < 0 ||
            json_array_append_new(types, decltype_json(st, i)) < 0) {
            json_decref(cols);
            json_decref(types);
            return NULL;
        }
    }
    json_t *r = cols && types ? json_object() : NULL;
    if (!r) {
        json_decref(cols);
        json_decref(types);
        return NULL;
    }
    /* not json_pack: its format parsing costs more than the rest here; each
     * set takes its value even when it fails */
    int bad = json_object_set_new(r, "columns", cols);
    bad |= json_object_set_new(r, "types", types);
    bad |= json_object_set_new(r, "rows", json_array());
    if (bad) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* The error of a step that did not reach SQLITE_DONE. */
static int step_failed(struct fconn *c, int rc, size_t si, struct stmt_fail *f, char *err)
{
    if (c->over_budget)
        return uc_err_set(err, UC_E2BIG,
                          "statements[%zu] ran past the write budget of %lld VM steps; narrow it "
                          "(the budget is the server's --max-steps)",
                          si, (long long)c->max_ticks * PROGRESS_OPS);
    if (c->timed_out)
        return uc_err_set(err, UC_ETIMEDOUT,
                          "statements[%zu] ran past the time limit of %u ms; narrow it (add a "
                          "LIMIT or a WHERE)",
                          si, c->db->cfg.time_limit_ms);
    if (c->az.deny) /* refused while running: a table-valued PRAGMA's argument */
        return uc_err_set(err, c->az.deny, "statements[%zu]: %s", si, c->az.why);
    f->local = flaredb_db_local_rc(rc);
    if (f->local)
        return flaredb_db_fail(c->h, rc, "running a statement", err);
    int code = (rc & 0xff) == SQLITE_CONSTRAINT ? UC_ECONFLICT : UC_EINVAL;
    return uc_err_set(err, code, "statements[%zu]: %s", si, sqlite3_errmsg(c->h));
}

/* Steps through the rows into res["rows"]. */
static int step_rows(struct fconn *c, sqlite3_stmt *st, size_t si, size_t max_rows, json_t *res,
                     struct stmt_fail *f, char *err)
{
    json_t *rows = json_object_get(res, "rows");
    int ncol = sqlite3_column_count(st), rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (json_array_size(rows) == max_rows)
            return uc_err_set(err, UC_E2BIG,
                              "statements[%zu] returned more than %zu rows; add a LIMIT", si,
                              max_rows);
        if (json_array_append_new(rows, row_json(st, ncol)) < 0) {
            f->local = true;
            return uc_err_set(err, UC_ENOMEM, "out of memory building a result");
        }
    }
    return rc == SQLITE_DONE ? 0 : step_failed(c, rc, si, f, err);
}

/* Forgets the previous statement's counters and interruptions. */
static void run_begin(struct fconn *c)
{
    /* last_insert_id and changes() belong to the connection: reset so the
     * answer describes this statement alone */
    sqlite3_set_last_insert_rowid(c->h, 0);
    c->over_budget = c->timed_out = false;
    c->ticks = 0;
}

/* Rows the statement just run changed, counted for data changes only. */
static int64_t run_changes(const struct fconn *c)
{
    bool counts = c->az.dml && flaredb_db_authz_class(&c->az) == FLAREDB_DB_WRITE;
    return counts ? sqlite3_changes64(c->h) : 0;
}

int flaredb_db_stmt_collect(struct fconn *c, sqlite3_stmt *st, size_t si, size_t max_rows,
                            json_t **res, struct stmt_fail *f, char *err)
{
    *f = (struct stmt_fail){0};
    json_t *r = result_head(st);
    if (!r) {
        f->local = true;
        return uc_err_set(err, UC_ENOMEM, "out of memory building a result");
    }
    run_begin(c);
    int rc = step_rows(c, st, si, max_rows, r, f, err);
    if (rc == 0 &&
        (flaredb_db_set(r, "rows_affected", json_integer(run_changes(c))) < 0 ||
         flaredb_db_set(r, "last_insert_id", json_integer(sqlite3_last_insert_rowid(c->h))) < 0)) {
        f->local = true;
        rc = uc_err_set(err, UC_ENOMEM, "out of memory building a result");
    }
    if (rc < 0) {
        json_decref(r);
        return rc;
    }
    *res = r;
    return 0;
}

int flaredb_db_stmt_exec(struct fconn *c, sqlite3_stmt *st, size_t si, int64_t *changes,
                         int64_t *last_id, struct stmt_fail *f, char *err)
{
    *f = (struct stmt_fail){0};
    run_begin(c);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ; /* a statement without columns has no row to keep */
    if (rc != SQLITE_DONE)
        return step_failed(c, rc, si, f, err);
    *changes = run_changes(c);
    *last_id = sqlite3_last_insert_rowid(c->h);
    return 0;
}
