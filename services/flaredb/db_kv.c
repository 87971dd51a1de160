/* db_kv.c - the namespaced key-value surface in the internal _flaredb_kv
 * table: puts, deletes, compare-and-swap and transactions applied from the
 * log, gets and scans on readers. Each namespace counts its own revisions
 * (every write command takes the next one, a transaction's writes share
 * it), which is what lib/'s uc_store contract needs: consecutive revisions
 * that SQL entries and other namespaces do not consume. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db_internal.h"
#include "uc/alloc.h"
#include "uc/crypto.h"
#include "uc/json.h"

#define NS_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_.-"
#define B64_MAX(n) (((n)*4 + 2) / 3) /* unpadded base64url length of n bytes */
#define KEY_SHOWN 64                 /* base64url characters of a key quoted in a message */

enum kv_type { KV_PUT, KV_DELETE, KV_CHECK };

struct kv_op {
    enum kv_type type;
    uint8_t *key, *val;
    size_t klen, vlen;
    int64_t expect_rev, expect_ver; /* -1: no check */
    const char *key_b64;            /* borrowed from the command */
};

struct kv_cmd {
    const char *ns; /* borrowed */
    struct kv_op *ops;
    size_t n;
    bool single; /* kv_put/kv_cas/kv_delete: a missing key to delete is UC_ENOENT */
};

struct cur {
    bool found;
    int64_t version, create, mod;
};

/* ---- commands ------------------------------------------------------------------ */

static const struct uc_json_field single_fields[] = {
    {"op", UC_JSON_STRING, true, 1, 16, NULL},
    {"ns", UC_JSON_STRING, true, 1, FLAREDB_DB_MAX_NS, NS_CHARS},
    {"key", UC_JSON_STRING, true, 1, B64_MAX(FLAREDB_DB_MAX_KEY), NULL},
    {"value", UC_JSON_STRING, false, 0, B64_MAX(UC_REPL_MAX_CMD), NULL},
    {"expect_revision", UC_JSON_INT, false, 0, INT64_MAX, NULL},
    {"expect_version", UC_JSON_INT, false, 0, INT64_MAX, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

static const struct uc_json_field txn_fields[] = {
    {"op", UC_JSON_STRING, true, 1, 16, NULL},
    {"ns", UC_JSON_STRING, true, 1, FLAREDB_DB_MAX_NS, NS_CHARS},
    {"ops", UC_JSON_ARRAY, true, 1, FLAREDB_DB_MAX_TXN_OPS, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

static const struct uc_json_field txn_op_fields[] = {
    {"op", UC_JSON_STRING, true, 1, 16, NULL},
    {"key", UC_JSON_STRING, true, 1, B64_MAX(FLAREDB_DB_MAX_KEY), NULL},
    {"value", UC_JSON_STRING, false, 0, B64_MAX(UC_REPL_MAX_CMD), NULL},
    {"expect_revision", UC_JSON_INT, false, 0, INT64_MAX, NULL},
    {"expect_version", UC_JSON_INT, false, 0, INT64_MAX, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

bool flaredb_db_kv_op(const char *op)
{
    return op && (strcmp(op, "kv_put") == 0 || strcmp(op, "kv_cas") == 0 ||
                  strcmp(op, "kv_delete") == 0 || strcmp(op, "kv_txn") == 0);
}

static void cmd_clear(struct kv_cmd *c)
{
    for (size_t i = 0; c->ops && i < c->n; i++) {
        uc_free(c->ops[i].key);
        uc_free(c->ops[i].val);
    }
    uc_free(c->ops);
    *c = (struct kv_cmd){0};
}

/* Decodes base64url field `name` of `o`; *p is NUL-terminated, freed by the caller. */
static int decode(const json_t *o, const char *name, uint8_t **p, size_t *n, char *err)
{
    const char *s = json_string_value(json_object_get(o, name));
    int rc = uc_b64url_decode(s, strlen(s), p, n);
    if (rc == UC_EINVAL)
        return uc_err_set(err, rc, "field '%s' must be base64url (RFC 4648 section 5, no padding)",
                          name);
    return rc < 0 ? uc_err_set(err, rc, "out of memory") : 0;
}

/* One operation from object `o` of type `type`. */
static int parse_op(const json_t *o, enum kv_type type, struct kv_op *op, char *err)
{
    bool has_val = json_object_get(o, "value") != NULL;
    *op = (struct kv_op){.type = type,
                         .expect_rev = uc_json_int(o, "expect_revision", -1),
                         .expect_ver = uc_json_int(o, "expect_version", -1),
                         .key_b64 = json_string_value(json_object_get(o, "key"))};
    if (type == KV_PUT && !has_val)
        return uc_err_set(err, UC_EINVAL, "field 'value' is required");
    if (type != KV_PUT && has_val)
        return uc_err_set(err, UC_EINVAL, "field 'value' is only for puts");
    int rc = decode(o, "key", &op->key, &op->klen, err);
    if (rc == 0 && (op->klen == 0 || op->klen > FLAREDB_DB_MAX_KEY))
        rc =
            uc_err_set(err, UC_EINVAL, "field 'key' must decode to 1-%d bytes", FLAREDB_DB_MAX_KEY);
    if (rc == 0 && type == KV_PUT)
        rc = decode(o, "value", &op->val, &op->vlen, err);
    return rc;
}

static int parse_txn(const json_t *j, struct kv_cmd *c, char *err)
{
    const json_t *ops = json_object_get(j, "ops"), *o;
    size_t i;
    c->ops = uc_calloc(json_array_size(ops), sizeof(*c->ops));
    if (!c->ops)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    json_array_foreach(ops, i, o)
    {
        int rc = uc_json_validate(o, txn_op_fields, err);
        const char *t = rc == 0 ? uc_json_str(o, "op", "") : "";
        enum kv_type type = strcmp(t, "put") == 0      ? KV_PUT
                            : strcmp(t, "delete") == 0 ? KV_DELETE
                                                       : KV_CHECK;
        if (rc == 0 && type == KV_CHECK && strcmp(t, "check") != 0)
            rc = uc_err_set(err, UC_EINVAL, "field 'op' must be \"put\", \"delete\" or \"check\"");
        c->n = i + 1; /* so cmd_clear frees what parse_op decoded */
        if (rc == 0)
            rc = parse_op(o, type, &c->ops[i], err);
        if (rc < 0)
            return uc_err_prefix(err, rc, "ops[%zu]", i);
    }
    return 0;
}

static int parse_single(const json_t *j, const char *op, struct kv_cmd *c, char *err)
{
    bool del = strcmp(op, "kv_delete") == 0;
    c->ops = uc_calloc(1, sizeof(*c->ops));
    if (!c->ops)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    c->n = 1;
    c->single = true;
    int rc = parse_op(j, del ? KV_DELETE : KV_PUT, &c->ops[0], err);
    if (rc == 0 && strcmp(op, "kv_cas") == 0 && c->ops[0].expect_rev < 0 &&
        c->ops[0].expect_ver < 0)
        rc = uc_err_set(err, UC_EINVAL, "kv_cas needs 'expect_revision' or 'expect_version'");
    return rc;
}

/* Validates and decodes a kv_* command; *c is cleared by the caller. */
static int cmd_parse(const json_t *j, struct kv_cmd *c, char *err)
{
    *c = (struct kv_cmd){0};
    const char *op = json_string_value(json_object_get(j, "op"));
    if (!flaredb_db_kv_op(op))
        return uc_err_set(err, UC_EINVAL, "field 'op' must name a kv operation");
    bool txn = strcmp(op, "kv_txn") == 0;
    int rc = uc_json_validate(j, txn ? txn_fields : single_fields, err);
    if (rc < 0)
        return rc;
    c->ns = json_string_value(json_object_get(j, "ns"));
    return txn ? parse_txn(j, c, err) : parse_single(j, op, c, err);
}

int flaredb_db_kv_check(struct flaredb_db *db, const json_t *cmd, char *err)
{
    struct kv_cmd c;
    int rc = cmd_parse(cmd, &c, err);
    for (size_t i = 0; rc == 0 && i < c.n; i++)
        if (c.ops[i].vlen > db->cfg.max_value)
            rc = uc_err_set(err, UC_E2BIG, "value of %zu bytes is over the limit of %zu bytes",
                            c.ops[i].vlen, db->cfg.max_value);
    cmd_clear(&c);
    return rc;
}

/* ---- apply ------------------------------------------------------------------------ */

static int bind_ns_key(struct flaredb_db *db, sqlite3_stmt *st, const char *ns,
                       const struct kv_op *op, char *err)
{
    int rc = sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 2, op->key, op->klen, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : flaredb_db_fail(db->w.h, rc, "bind", err);
}

static int read_cur(struct flaredb_db *db, const char *ns, const struct kv_op *op, struct cur *cur,
                    char *err)
{
    sqlite3_stmt *st = db->ws[W_KV_GET];
    db->w.az.mode = AZ_OFF;
    int rc = bind_ns_key(db, st, ns, op, err);
    int r = rc == 0 ? sqlite3_step(st) : SQLITE_DONE;
    *cur = (struct cur){.found = r == SQLITE_ROW};
    if (r == SQLITE_ROW) {
        cur->version = sqlite3_column_int64(st, 0);
        cur->create = sqlite3_column_int64(st, 1);
        cur->mod = sqlite3_column_int64(st, 2);
    } else if (rc == 0 && r != SQLITE_DONE) {
        rc = flaredb_db_fail(db->w.h, r, "reading a key", err);
    }
    flaredb_db_done(st);
    return rc;
}

/* One expectation against the current state: 0 or UC_ECONFLICT with msg. */
static int expect(const char *what, int64_t want, const struct cur *cur, int64_t have,
                  const char *key, char *msg)
{
    if (want < 0 || (want == 0 && !cur->found) || (cur->found && want == have))
        return 0;
    if (!cur->found)
        return uc_err_set(msg, UC_ECONFLICT, "key '%s' is absent, expected %s %" PRId64, key, what,
                          want);
    if (want == 0)
        return uc_err_set(msg, UC_ECONFLICT, "key '%s' exists (%s %" PRId64 ")", key, what, have);
    return uc_err_set(msg, UC_ECONFLICT, "key '%s' is at %s %" PRId64 ", expected %" PRId64, key,
                      what, have, want);
}

/* Evaluates op's checks; *msg gets a shared failure (0 return, *failed). */
static int check_op(struct flaredb_db *db, const struct kv_cmd *c, const struct kv_op *op,
                    int *failed, char *msg, char *err)
{
    struct cur cur;
    if (op->expect_rev < 0 && op->expect_ver < 0 && !(c->single && op->type == KV_DELETE))
        return 0;
    int rc = read_cur(db, c->ns, op, &cur, err);
    if (rc < 0)
        return rc;
    char shown[KEY_SHOWN + 4];
    uc_err_sanitize(shown, sizeof(shown), op->key_b64, KEY_SHOWN);
    if (c->single && op->type == KV_DELETE && !cur.found)
        *failed = uc_err_set(msg, UC_ENOENT, "key '%s' not found", shown);
    else if (!(*failed = expect("revision", op->expect_rev, &cur, cur.mod, shown, msg)))
        *failed = expect("version", op->expect_ver, &cur, cur.version, shown, msg);
    return 0;
}

static int ns_rev(struct flaredb_db *db, const char *ns, int64_t *rev, char *err)
{
    sqlite3_stmt *st = db->ws[W_NS_GET];
    db->w.az.mode = AZ_OFF;
    int rc = sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    int r = rc == SQLITE_OK ? sqlite3_step(st) : rc;
    *rev = r == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    flaredb_db_done(st);
    return r == SQLITE_ROW || r == SQLITE_DONE
               ? 0
               : flaredb_db_fail(db->w.h, r, "reading a revision", err);
}

/* Writes one op at `rev`; for a put, *version and *create get the key's. */
static int write_op(struct flaredb_db *db, const char *ns, const struct kv_op *op, int64_t rev,
                    int64_t *version, int64_t *create, char *err)
{
    if (op->type == KV_CHECK)
        return 0;
    if (op->type == KV_DELETE) {
        int rc = bind_ns_key(db, db->ws[W_KV_DEL], ns, op, err);
        return rc == 0 ? flaredb_db_wstep(db, W_KV_DEL, err) : rc;
    }
    sqlite3_stmt *st = db->ws[W_KV_PUT];
    db->w.az.mode = AZ_OFF;
    int rc = bind_ns_key(db, st, ns, op, err), r = SQLITE_OK;
    if (rc == 0)
        r = op->vlen ? sqlite3_bind_blob64(st, 3, op->val, op->vlen, SQLITE_STATIC)
                     : sqlite3_bind_zeroblob(st, 3, 0);
    if (rc == 0 && r == SQLITE_OK)
        r = sqlite3_bind_int64(st, 4, rev);
    if (rc == 0 && r == SQLITE_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        *version = sqlite3_column_int64(st, 0);
        *create = sqlite3_column_int64(st, 1);
        r = sqlite3_step(st);
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = flaredb_db_fail(db->w.h, r, "writing a key", err);
    flaredb_db_done(st);
    return rc;
}

static int write_all(struct flaredb_db *db, const struct kv_cmd *c, int64_t rev, json_t **result,
                     char *err)
{
    int64_t version = 0, create = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < c->n; i++)
        rc = write_op(db, c->ns, &c->ops[i], rev, &version, &create, err);
    if (rc == 0) {
        sqlite3_stmt *st = db->ws[W_NS_SET];
        int r = sqlite3_bind_text(st, 1, c->ns, -1, SQLITE_STATIC);
        if (r == SQLITE_OK)
            r = sqlite3_bind_int64(st, 2, rev);
        rc = r == SQLITE_OK ? flaredb_db_wstep(db, W_NS_SET, err)
                            : flaredb_db_fail(db->w.h, r, "bind", err);
    }
    if (rc < 0)
        return rc;
    bool put = c->single && c->ops[0].type == KV_PUT;
    *result = put ? json_pack("{sIsIsI}", "revision", (json_int_t)rev, "version",
                              (json_int_t)version, "create_revision", (json_int_t)create)
                  : json_pack("{sI}", "revision", (json_int_t)rev);
    return *result ? 0 : uc_err_set(err, UC_ENOMEM, "out of memory");
}

static int apply_cmd(struct flaredb_db *db, const struct kv_cmd *c, json_t **result, char *err)
{
    char msg[UC_ERR_LEN];
    int failed = 0, rc = 0;
    bool writes = false;
    size_t i;
    for (i = 0; rc == 0 && !failed && i < c->n; i++) {
        writes |= c->ops[i].type != KV_CHECK;
        rc = check_op(db, c, &c->ops[i], &failed, msg, err);
    }
    if (rc < 0)
        return rc;
    if (failed) { /* the loop stopped one past the op that failed */
        json_t *extra = json_pack("{ss}", "key", c->ops[i - 1].key_b64);
        *result = extra ? flaredb_db_error_json(failed, msg, extra) : NULL;
        return *result ? 0 : uc_err_set(err, UC_ENOMEM, "out of memory");
    }
    int64_t rev;
    if ((rc = ns_rev(db, c->ns, &rev, err)) < 0)
        return rc;
    if (writes)
        return write_all(db, c, rev + 1, result, err);
    *result = json_pack("{sI}", "revision", (json_int_t)rev);
    return *result ? 0 : uc_err_set(err, UC_ENOMEM, "out of memory");
}

int flaredb_db_kv_apply(struct flaredb_db *db, const json_t *cmd, json_t **result, char *err)
{
    struct kv_cmd c;
    char msg[UC_ERR_LEN];
    int rc = cmd_parse(cmd, &c, msg);
    if (rc == UC_ENOMEM) {
        cmd_clear(&c);
        return uc_err_set(err, rc, "%s", msg);
    }
    if (rc < 0) {
        cmd_clear(&c);
        *result = flaredb_db_error_json(rc, msg, NULL);
        return *result ? 0 : uc_err_set(err, UC_ENOMEM, "out of memory");
    }
    rc = apply_cmd(db, &c, result, err);
    cmd_clear(&c);
    return rc;
}

/* ---- reads ------------------------------------------------------------------------- */

static int check_ns_key(const char *ns, size_t klen, char *err)
{
    size_t n = ns ? strlen(ns) : 0;
    if (n == 0 || n > FLAREDB_DB_MAX_NS || strspn(ns, NS_CHARS) != n)
        return uc_err_set(err, UC_EINVAL, "namespace must be 1-%d characters of a-z 0-9 _ . -",
                          FLAREDB_DB_MAX_NS);
    if (klen == 0 || klen > FLAREDB_DB_MAX_KEY)
        return uc_err_set(err, UC_EINVAL, "key must be 1-%d bytes", FLAREDB_DB_MAX_KEY);
    return 0;
}

/* {"key","value","revision","version","create_revision"} of a row whose
 * columns are key, value, version, create_rev, mod_rev. */
static json_t *record(sqlite3_stmt *st)
{
    const void *k = sqlite3_column_blob(st, 0), *v = sqlite3_column_blob(st, 1);
    size_t kn = (size_t)sqlite3_column_bytes(st, 0), vn = (size_t)sqlite3_column_bytes(st, 1);
    json_t *key = k ? flaredb_db_b64(k, kn) : NULL;
    json_t *val = v || !vn ? flaredb_db_b64(v ? v : "", vn) : NULL;
    if (!key || !val) {
        json_decref(key);
        json_decref(val);
        return NULL;
    }
    return json_pack("{sosos:I,s:I,s:I}", "key", key, "value", val, "revision",
                     (json_int_t)sqlite3_column_int64(st, 4), "version",
                     (json_int_t)sqlite3_column_int64(st, 2), "create_revision",
                     (json_int_t)sqlite3_column_int64(st, 3));
}

static int get_on(struct fconn *c, const char *ns, const void *key, size_t klen, json_t **out,
                  char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->h,
                                "SELECT key, value, version, create_rev, mod_rev FROM _flaredb_kv "
                                "WHERE ns = ?1 AND key = ?2",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 2, key, klen, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int out_rc = 0;
    if (rc == SQLITE_ROW)
        out_rc = (*out = record(st)) ? 0 : uc_err_set(err, UC_ENOMEM, "out of memory");
    else if (rc == SQLITE_DONE)
        out_rc = uc_err_set(err, UC_ENOENT, "key not found");
    else
        out_rc = flaredb_db_fail(c->h, rc, "reading a key", err);
    sqlite3_finalize(st);
    return out_rc;
}

int flaredb_db_kv_get(struct flaredb_db *db, const char *ns, const void *key, size_t klen,
                      json_t **out, char err[UC_ERR_LEN])
{
    int rc = check_ns_key(ns, klen, err);
    struct fconn *c;
    if (rc == 0 && (rc = flaredb_db_reader_get(db, &c, err)) == 0) {
        c->az.mode = AZ_OFF;
        rc = get_on(c, ns, key, klen, out, err);
        flaredb_db_reader_put(db, c);
    }
    return rc;
}

/* ---- scans ------------------------------------------------------------------------- */

struct bound {
    uint8_t *p;
    size_t n;
    bool set;
};

enum { B_PREFIX, B_START, B_END, B_AFTER, B_TOKEN, B_SUCC, B_COUNT };

struct scan {
    struct bound b[B_COUNT]; /* decoded fields (owned) and the prefix's successor */
    struct bound lo, hi;     /* the effective range: borrowed from b[] */
    bool lo_excl;
    size_t limit;
};

static const struct uc_json_field scan_fields[] = {
    {"prefix", UC_JSON_STRING, false, 0, B64_MAX(FLAREDB_DB_MAX_KEY), NULL},
    {"start", UC_JSON_STRING, false, 0, B64_MAX(FLAREDB_DB_MAX_KEY), NULL},
    {"end", UC_JSON_STRING, false, 0, B64_MAX(FLAREDB_DB_MAX_KEY), NULL},
    {"after", UC_JSON_STRING, false, 0, B64_MAX(FLAREDB_DB_MAX_KEY), NULL},
    {"page_token", UC_JSON_STRING, false, 0, B64_MAX(FLAREDB_DB_MAX_KEY), NULL},
    {"limit", UC_JSON_INT, false, 1, FLAREDB_DB_MAX_SCAN, NULL},
    {NULL, 0, false, 0, 0, NULL},
};

static int keycmp(const struct bound *a, const struct bound *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    int c = n ? memcmp(a->p, b->p, n) : 0;
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

static void scan_clear(struct scan *s)
{
    for (size_t i = 0; i < B_COUNT; i++)
        uc_free(s->b[i].p);
}

/* The smallest key above every key starting with `pre` (strip trailing
 * 0xFF bytes, bump the last); left unset when there is none. */
static int successor(const struct bound *pre, struct bound *out)
{
    size_t n = pre->n;
    while (n > 0 && pre->p[n - 1] == 0xFF)
        n--;
    if (n == 0)
        return 0;
    out->p = uc_malloc(n);
    if (!out->p)
        return UC_ENOMEM;
    memcpy(out->p, pre->p, n);
    out->p[n - 1]++;
    out->n = n;
    out->set = true;
    return 0;
}

/* Narrows the range to the intersection of every bound the request gives;
 * after and page_token are both exclusive lower bounds. */
static void narrow(struct scan *s)
{
    static const struct bound empty = {(uint8_t *)"", 0, true};
    const struct bound *b = s->b;
    s->lo = b[B_PREFIX].set ? b[B_PREFIX] : empty;
    if (b[B_START].set && keycmp(&b[B_START], &s->lo) > 0)
        s->lo = b[B_START];
    for (int i = B_AFTER; i <= B_TOKEN; i++) {
        if (b[i].set && keycmp(&b[i], &s->lo) >= 0) {
            s->lo = b[i];
            s->lo_excl = true;
        }
    }
    s->hi = b[B_SUCC];
    if (b[B_END].set && (!s->hi.set || keycmp(&b[B_END], &s->hi) < 0))
        s->hi = b[B_END];
}

static int scan_parse(const json_t *req, struct scan *s, char *err)
{
    static const char *const names[] = {"prefix", "start", "end", "after", "page_token"};
    *s = (struct scan){0};
    int rc = uc_json_validate(req, scan_fields, err);
    for (int i = 0; rc == 0 && i < B_SUCC; i++) {
        if (!json_object_get(req, names[i]))
            continue;
        rc = decode(req, names[i], &s->b[i].p, &s->b[i].n, err);
        s->b[i].set = rc == 0;
        if (rc == UC_EINVAL && i == B_TOKEN)
            uc_err_set(err, rc, "page_token is not one this server issued");
    }
    if (rc == 0 && s->b[B_PREFIX].set && (rc = successor(&s->b[B_PREFIX], &s->b[B_SUCC])) < 0)
        uc_err_set(err, rc, "out of memory");
    if (rc < 0)
        return rc;
    narrow(s);
    s->limit = (size_t)uc_json_int(req, "limit", 100);
    return 0;
}

/* Scans bind ?1 ns, ?2 lower bound, ?3 upper bound (bounded variants), ?4 limit. */
static const char *const scan_sql[4] = {
    "SELECT key, value, version, create_rev, mod_rev FROM _flaredb_kv "
    "WHERE ns = ?1 AND key >= ?2 ORDER BY key LIMIT ?4",
    "SELECT key, value, version, create_rev, mod_rev FROM _flaredb_kv "
    "WHERE ns = ?1 AND key > ?2 ORDER BY key LIMIT ?4",
    "SELECT key, value, version, create_rev, mod_rev FROM _flaredb_kv "
    "WHERE ns = ?1 AND key >= ?2 AND key < ?3 ORDER BY key LIMIT ?4",
    "SELECT key, value, version, create_rev, mod_rev FROM _flaredb_kv "
    "WHERE ns = ?1 AND key > ?2 AND key < ?3 ORDER BY key LIMIT ?4",
};

static int scan_bind(sqlite3_stmt *st, const char *ns, const struct scan *s)
{
    int rc = sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 2, s->lo.p, s->lo.n, SQLITE_STATIC);
    if (rc == SQLITE_OK && s->hi.set)
        rc = sqlite3_bind_blob64(st, 3, s->hi.p, s->hi.n, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)s->limit + 1);
    return rc;
}

/* Reads up to s->limit records into items; *last is the last key's row
 * copied as base64url when one more exists. */
static int scan_rows(struct fconn *c, const char *ns, const struct scan *s, json_t *items,
                     bool *more, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->h, scan_sql[(s->lo_excl ? 1 : 0) + (s->hi.set ? 2 : 0)], -1, &st,
                                NULL);
    if (rc == SQLITE_OK)
        rc = scan_bind(st, ns, s);
    int out = 0;
    *more = false;
    while (rc == SQLITE_OK && out == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (json_array_size(items) == s->limit) {
            *more = true;
            rc = SQLITE_DONE;
        } else if (json_array_append_new(items, record(st)) < 0) {
            out = uc_err_set(err, UC_ENOMEM, "out of memory");
        }
        rc = rc == SQLITE_ROW ? SQLITE_OK : rc;
    }
    if (out == 0 && rc != SQLITE_DONE && rc != SQLITE_OK)
        out = c->timed_out ? uc_err_set(err, UC_ETIMEDOUT, "scan ran past the time limit of %u ms",
                                        c->db->cfg.time_limit_ms)
                           : flaredb_db_fail(c->h, rc, "scanning keys", err);
    sqlite3_finalize(st);
    return out;
}

static int ns_rev_on(struct fconn *c, const char *ns, int64_t *rev, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->h, "SELECT rev FROM _flaredb_ns WHERE ns = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    *rev = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? 0
               : flaredb_db_fail(c->h, rc, "reading a revision", err);
}

/* {"items","more","next_page_token"?,"revision"} from one read transaction. */
static int scan_on(struct fconn *c, const char *ns, const struct scan *s, json_t **out, char *err)
{
    json_t *items = json_array();
    bool more = false;
    int64_t rev = 0;
    int rc = items ? flaredb_db_read_begin(c, err) : uc_err_set(err, UC_ENOMEM, "out of memory");
    if (rc == 0)
        rc = ns_rev_on(c, ns, &rev, err);
    if (rc == 0)
        rc = scan_rows(c, ns, s, items, &more, err);
    flaredb_db_read_end(c);
    json_t *o =
        rc == 0 ? json_pack("{sOsbsI}", "items", items, "more", more, "revision", (json_int_t)rev)
                : NULL;
    json_t *last = json_array_get(items, json_array_size(items) - 1);
    if (o && more && json_object_set(o, "next_page_token", json_object_get(last, "key")) < 0) {
        json_decref(o);
        o = NULL;
    }
    json_decref(items);
    if (rc == 0 && !o)
        rc = uc_err_set(err, UC_ENOMEM, "out of memory");
    if (rc == 0)
        *out = o;
    return rc;
}

int flaredb_db_kv_scan(struct flaredb_db *db, const char *ns, const json_t *req, json_t **out,
                       char err[UC_ERR_LEN])
{
    struct scan s;
    int rc = check_ns_key(ns, 1, err);
    if (rc < 0)
        return rc;
    rc = scan_parse(req, &s, err);
    struct fconn *c;
    if (rc == 0 && (rc = flaredb_db_reader_get(db, &c, err)) == 0) {
        c->az.mode = AZ_OFF;
        rc = scan_on(c, ns, &s, out, err);
        flaredb_db_reader_put(db, c);
    }
    scan_clear(&s);
    return rc;
}
