/* store_sqlite.c - the "sqlite:<path>" storage backend: one WAL-mode,
 * synchronous=FULL connection behind a mutex, with every statement prepared
 * once at open. The only place SQLite result codes become UC_E* codes. */
#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "store_backend.h"
#include "uc/alloc.h"
#include "uc/log.h"

#define BUSY_TIMEOUT_MS 5000
#define SCHEMA_VERSION 1
#define KEY_SHOWN 64 /* bytes of a key quoted in an error message */

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_GET,
    S_REV,
    S_PUT,
    S_DEL,
    S_META_GET,
    S_META_SET,
    S_SCAN, /* four scan variants: S_SCAN + (exclusive ? 1 : 0) + (bounded ? 2 : 0) */
    S_SCAN_GT,
    S_SCAN_GE_LT,
    S_SCAN_GT_LT,
    S_COUNT
};

/* Scans bind ?1 lower bound, ?2 upper bound (bounded variants), ?3 limit. */
static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_GET] = "SELECT key, val, rev FROM kv WHERE key = ?1",
    [S_REV] = "SELECT rev FROM kv WHERE key = ?1",
    [S_PUT] = "INSERT INTO kv(key, val, rev) VALUES(?1, ?2, ?3) "
              "ON CONFLICT(key) DO UPDATE SET val = excluded.val, rev = excluded.rev",
    [S_DEL] = "DELETE FROM kv WHERE key = ?1",
    [S_META_GET] = "SELECT value FROM meta WHERE name = 'revision'",
    [S_META_SET] = "UPDATE meta SET value = ?1 WHERE name = 'revision'",
    [S_SCAN] = "SELECT key, val, rev FROM kv WHERE key >= ?1 ORDER BY key LIMIT ?3",
    [S_SCAN_GT] = "SELECT key, val, rev FROM kv WHERE key > ?1 ORDER BY key LIMIT ?3",
    [S_SCAN_GE_LT] = "SELECT key, val, rev FROM kv WHERE key >= ?1 AND key < ?2 "
                     "ORDER BY key LIMIT ?3",
    [S_SCAN_GT_LT] = "SELECT key, val, rev FROM kv WHERE key > ?1 AND key < ?2 "
                     "ORDER BY key LIMIT ?3",
};

/* Run once, in one write transaction, when the file has user_version 0. */
static const char *const schema_sql[] = {
    "CREATE TABLE kv(key TEXT PRIMARY KEY, val BLOB NOT NULL, rev INTEGER NOT NULL) "
    "WITHOUT ROWID",
    "CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO meta(name, value) VALUES('revision', 0)",
    "PRAGMA user_version = 1",
};

struct sq {
    pthread_mutex_t mu; /* guards db and every statement */
    sqlite3 *db;
    sqlite3_stmt *stmt[S_COUNT];
};

/* --- errors and statement helpers ------------------------------------------ */

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return UC_EUNAVAIL;
    case SQLITE_NOMEM:
        return UC_ENOMEM;
    case SQLITE_TOOBIG:
        return UC_E2BIG;
    default:
        return UC_EIO;
    }
}

/* Turns SQLite's `rc` into a UC_E* code with "sqlite: <what>: <errmsg>". */
static int fail(sqlite3 *db, int rc, const char *what, char *err)
{
    int code = map_rc(rc);
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (code == UC_EUNAVAIL)
        return uc_err_set(err, code, "sqlite: %s: %s (still busy after %d ms)", what, msg,
                          BUSY_TIMEOUT_MS);
    return uc_err_set(err, code, "sqlite: %s: %s", what, msg);
}

/* Ends a use of a statement: drops its cursor and the borrowed bindings. */
static void done(sqlite3_stmt *st)
{
    /* reset repeats the last step's error, which the caller already handled */
    (void)sqlite3_reset(st);
    /* clear_bindings cannot fail */
    (void)sqlite3_clear_bindings(st);
}

/* Steps a statement that returns no rows, then ends its use. */
static int step_done(struct sq *s, enum stmt_id id, const char *what, char *err)
{
    int rc = sqlite3_step(s->stmt[id]);
    int out = rc == SQLITE_DONE ? 0 : fail(s->db, rc, what, err);
    done(s->stmt[id]);
    return out;
}

static int bind_key(struct sq *s, sqlite3_stmt *st, int idx, const char *key, size_t len, char *err)
{
    int rc = sqlite3_bind_text(st, idx, key, (int)len, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : fail(s->db, rc, "bind", err);
}

static int bind_int(struct sq *s, sqlite3_stmt *st, int idx, uint64_t v, char *err)
{
    int rc = sqlite3_bind_int64(st, idx, (sqlite3_int64)v);
    return rc == SQLITE_OK ? 0 : fail(s->db, rc, "bind", err);
}

static int bind_val(struct sq *s, sqlite3_stmt *st, int idx, const void *val, size_t len, char *err)
{
    /* A NULL pointer would bind SQL NULL; an empty value is a zero-length blob. */
    int rc = len ? sqlite3_bind_blob64(st, idx, val, len, SQLITE_STATIC)
                 : sqlite3_bind_zeroblob(st, idx, 0);
    return rc == SQLITE_OK ? 0 : fail(s->db, rc, "bind value", err);
}

static void lock(struct sq *s)
{
    int rc = pthread_mutex_lock(&s->mu);
    assert(rc == 0); /* only fails on a broken or destroyed mutex */
    (void)rc;
}

static void unlock(struct sq *s)
{
    int rc = pthread_mutex_unlock(&s->mu);
    assert(rc == 0);
    (void)rc;
}

/* --- reading rows ----------------------------------------------------------- */

/* Copies the current (key, val, rev) row into *it. Errors: UC_ENOMEM. */
static int row_to_item(sqlite3_stmt *st, struct uc_store_item *it, char *err)
{
    const unsigned char *key = sqlite3_column_text(st, 0);
    size_t klen = (size_t)sqlite3_column_bytes(st, 0);
    const void *val = sqlite3_column_blob(st, 1);
    size_t vlen = (size_t)sqlite3_column_bytes(st, 1);
    if (!key || (!val && vlen))
        return uc_err_set(err, UC_ENOMEM, "sqlite: out of memory reading a row");
    char *k = uc_malloc(klen + 1);
    uint8_t *v = uc_malloc(vlen + 1);
    if (!k || !v) {
        uc_free(k);
        uc_free(v);
        return uc_err_set(err, UC_ENOMEM, "sqlite: out of memory copying a row");
    }
    memcpy(k, key, klen);
    k[klen] = '\0';
    if (vlen)
        memcpy(v, val, vlen);
    v[vlen] = '\0';
    *it = (struct uc_store_item){
        .key = k, .val = v, .len = vlen, .rev = (uint64_t)sqlite3_column_int64(st, 2)};
    return 0;
}

static int not_found(const char *key, char *err)
{
    char shown[KEY_SHOWN + 4];
    uc_err_sanitize(shown, sizeof(shown), key, KEY_SHOWN);
    return uc_err_set(err, UC_ENOENT, "store: key '%s' not found", shown);
}

static int sq_get(void *b, const char *key, struct uc_store_item *out, char *err)
{
    struct sq *s = b;
    sqlite3_stmt *st = s->stmt[S_GET];
    lock(s);
    int rc = bind_key(s, st, 1, key, strlen(key), err);
    if (rc == 0) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            rc = row_to_item(st, out, err);
        else if (r == SQLITE_DONE)
            rc = not_found(key, err);
        else
            rc = fail(s->db, r, "get", err);
    }
    done(st);
    unlock(s);
    return rc;
}

/* Grows *items to hold one more item. */
static int reserve(struct uc_store_item **items, size_t n, size_t *cap, size_t limit, char *err)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    ncap = ncap > limit ? limit : ncap;
    struct uc_store_item *p = uc_realloc(*items, ncap * sizeof(*p));
    if (!p)
        return uc_err_set(err, UC_ENOMEM, "sqlite: out of memory for scan results");
    *items = p;
    *cap = ncap;
    return 0;
}

/* Reads up to `limit` rows of a bound scan statement; one row more sets *more. */
static int collect(struct sq *s, sqlite3_stmt *st, size_t limit, struct uc_store_item **items,
                   size_t *n, bool *more, char *err)
{
    struct uc_store_item *arr = NULL;
    size_t cnt = 0, cap = 0;
    bool extra = false;
    int rc = 0, r = SQLITE_DONE;
    while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == limit) {
            extra = true;
            break;
        }
        rc = reserve(&arr, cnt, &cap, limit, err);
        if (rc == 0)
            rc = row_to_item(st, &arr[cnt], err);
        cnt += rc == 0;
    }
    if (rc == 0 && !extra && r != SQLITE_DONE)
        rc = fail(s->db, r, "scan", err);
    if (rc < 0) {
        uc_store_items_free(arr, cnt);
        return rc;
    }
    *items = cnt ? arr : NULL;
    if (!cnt)
        uc_free(arr);
    *n = cnt;
    *more = extra;
    return 0;
}

/* Writes into hi the smallest string greater than every string starting with
 * `prefix` (strip trailing 0xFF bytes, bump the last byte). Returns its length;
 * 0 means no such bound (prefix empty or all 0xFF). */
static size_t prefix_successor(const char *prefix, char *hi)
{
    size_t len = strlen(prefix);
    while (len > 0 && (unsigned char)prefix[len - 1] == 0xFF)
        len--;
    if (len == 0)
        return 0;
    memcpy(hi, prefix, len);
    hi[len - 1] = (char)((unsigned char)hi[len - 1] + 1);
    return len;
}

static int sq_scan(void *b, const char *prefix, const char *after, size_t limit,
                   struct uc_store_item **items, size_t *n, bool *more, char *err)
{
    struct sq *s = b;
    char hi[UC_STORE_MAX_KEY];
    size_t hlen = prefix_successor(prefix, hi);
    /* Start at the later of prefix (inclusive) and after (exclusive). */
    bool excl = after[0] && strcmp(after, prefix) >= 0;
    const char *lo = excl ? after : prefix;
    sqlite3_stmt *st = s->stmt[S_SCAN + (excl ? 1 : 0) + (hlen ? 2 : 0)];
    lock(s);
    int rc = bind_key(s, st, 1, lo, strlen(lo), err);
    if (rc == 0 && hlen)
        rc = bind_key(s, st, 2, hi, hlen, err);
    if (rc == 0)
        rc = bind_int(s, st, 3, (uint64_t)limit + 1, err);
    if (rc == 0)
        rc = collect(s, st, limit, items, n, more, err);
    done(st);
    unlock(s);
    return rc;
}

/* --- writing ---------------------------------------------------------------- */

/* *rev = the key's revision, 0 when it is missing. */
static int key_rev(struct sq *s, const char *key, uint64_t *rev, char *err)
{
    sqlite3_stmt *st = s->stmt[S_REV];
    int rc = bind_key(s, st, 1, key, strlen(key), err);
    if (rc == 0) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            *rev = (uint64_t)sqlite3_column_int64(st, 0);
        else if (r == SQLITE_DONE)
            *rev = 0;
        else
            rc = fail(s->db, r, "read revision", err);
    }
    done(st);
    return rc;
}

/* Checks op's expect_rev against the store; `strict` makes a DELETE of a
 * missing key UC_ENOENT (uc_store_delete) rather than a no-op (txn). */
static int check_op(struct sq *s, const struct uc_store_op *op, bool strict, char *err)
{
    uint64_t cur = 0;
    int rc = key_rev(s, op->key, &cur, err);
    if (rc < 0)
        return rc;
    if (strict && op->type == UC_STORE_OP_DELETE && cur == 0)
        return not_found(op->key, err);
    char shown[KEY_SHOWN + 4];
    uc_err_sanitize(shown, sizeof(shown), op->key, KEY_SHOWN);
    if (op->expect_rev == UC_STORE_ANY || op->expect_rev == cur)
        return 0;
    if (cur == 0)
        return uc_err_set(err, UC_ECONFLICT,
                          "store: key '%s' is absent, expected revision %" PRIu64, shown,
                          op->expect_rev);
    if (op->expect_rev == UC_STORE_ABSENT)
        return uc_err_set(err, UC_ECONFLICT, "store: key '%s' exists (revision %" PRIu64 ")", shown,
                          cur);
    return uc_err_set(err, UC_ECONFLICT,
                      "store: key '%s' is at revision %" PRIu64 ", expected %" PRIu64, shown, cur,
                      op->expect_rev);
}

static int apply_op(struct sq *s, const struct uc_store_op *op, uint64_t rev, char *err)
{
    if (op->type == UC_STORE_OP_CHECK)
        return 0;
    enum stmt_id id = op->type == UC_STORE_OP_PUT ? S_PUT : S_DEL;
    sqlite3_stmt *st = s->stmt[id];
    int rc = bind_key(s, st, 1, op->key, strlen(op->key), err);
    if (rc == 0 && id == S_PUT)
        rc = bind_val(s, st, 2, op->val, op->len, err);
    if (rc == 0 && id == S_PUT)
        rc = bind_int(s, st, 3, rev, err);
    if (rc < 0) {
        done(st);
        return rc;
    }
    return step_done(s, id, id == S_PUT ? "put" : "delete", err);
}

static int read_revision(struct sq *s, uint64_t *rev, char *err)
{
    sqlite3_stmt *st = s->stmt[S_META_GET];
    int rc = 0, r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        *rev = (uint64_t)sqlite3_column_int64(st, 0);
    else if (r == SQLITE_DONE)
        rc = uc_err_set(err, UC_EIO, "sqlite: the meta table has no revision row");
    else
        rc = fail(s->db, r, "read store revision", err);
    done(st);
    return rc;
}

/* Checks, applies and bumps the revision inside an open transaction. */
static int txn_body(struct sq *s, const struct uc_store_op *ops, size_t nops, bool strict,
                    uint64_t *rev, char *err)
{
    bool writes = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nops; i++) {
        writes |= ops[i].type != UC_STORE_OP_CHECK;
        if (ops[i].expect_rev != UC_STORE_ANY || (strict && ops[i].type == UC_STORE_OP_DELETE))
            rc = check_op(s, &ops[i], strict, err);
    }
    uint64_t cur = 0;
    if (rc == 0)
        rc = read_revision(s, &cur, err);
    if (rc < 0 || !writes) {
        *rev = cur;
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < nops; i++)
        rc = apply_op(s, &ops[i], cur + 1, err);
    if (rc == 0)
        rc = bind_int(s, s->stmt[S_META_SET], 1, cur + 1, err);
    if (rc == 0)
        rc = step_done(s, S_META_SET, "bump store revision", err);
    *rev = cur + 1;
    return rc;
}

/* Ends a failed transaction, unless SQLite already rolled it back. */
static void rollback(struct sq *s)
{
    if (sqlite3_get_autocommit(s->db))
        return;
    char ignored[UC_ERR_LEN];
    if (step_done(s, S_ROLLBACK, "rollback", ignored) < 0)
        uc_warn("%s", ignored);
}

static int run_txn(struct sq *s, const struct uc_store_op *ops, size_t nops, bool strict,
                   uint64_t *rev, char *err)
{
    uint64_t r = 0;
    lock(s);
    int rc = step_done(s, S_BEGIN, "begin transaction", err);
    if (rc == 0)
        rc = txn_body(s, ops, nops, strict, &r, err);
    if (rc == 0)
        rc = step_done(s, S_COMMIT, "commit", err);
    if (rc < 0)
        rollback(s);
    unlock(s);
    if (rc == 0 && rev)
        *rev = r;
    return rc;
}

static int sq_txn(void *b, const struct uc_store_op *ops, size_t nops, uint64_t *rev, char *err)
{
    return run_txn(b, ops, nops, false, rev, err);
}

static int sq_put(void *b, const char *key, const void *val, size_t len, uint64_t expect_rev,
                  uint64_t *new_rev, char *err)
{
    struct uc_store_op op = {UC_STORE_OP_PUT, key, val, len, expect_rev};
    return run_txn(b, &op, 1, false, new_rev, err);
}

static int sq_del(void *b, const char *key, uint64_t expect_rev, char *err)
{
    struct uc_store_op op = {UC_STORE_OP_DELETE, key, NULL, 0, expect_rev};
    return run_txn(b, &op, 1, true, NULL, err);
}

static int sq_ping(void *b, char *err)
{
    struct sq *s = b;
    uint64_t rev;
    lock(s);
    int rc = read_revision(s, &rev, err);
    unlock(s);
    return rc;
}

/* --- open and close ---------------------------------------------------------- */

/* Prepares, steps to completion and finalizes one constant statement; *text
 * (may be NULL) gets the first column of the first row, if any. */
static int run_const(sqlite3 *db, const char *sql, char *text, size_t tlen, char *err)
{
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (r != SQLITE_OK)
        return fail(db, r, sql, err);
    bool first = true;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        if (first && text && t)
            snprintf(text, tlen, "%s", (const char *)t);
        first = false;
    }
    int rc = r == SQLITE_DONE ? 0 : fail(db, r, sql, err);
    /* finalize repeats the step error handled above */
    (void)sqlite3_finalize(st);
    return rc;
}

/* WAL, durable commits, no foreign keys; checks the settings took. */
static int set_pragmas(sqlite3 *db, char *err)
{
    char mode[16] = "", sync[16] = "";
    int rc = run_const(db, "PRAGMA journal_mode = WAL", mode, sizeof(mode), err);
    if (rc == 0 && strcmp(mode, "wal") != 0)
        rc = uc_err_set(err, UC_EIO, "sqlite: cannot use WAL mode (journal mode is '%s')", mode);
    if (rc == 0)
        rc = run_const(db, "PRAGMA synchronous = FULL", NULL, 0, err);
    if (rc == 0)
        rc = run_const(db, "PRAGMA synchronous", sync, sizeof(sync), err);
    if (rc == 0 && strcmp(sync, "2") != 0)
        rc = uc_err_set(err, UC_EIO, "sqlite: synchronous=FULL did not take (got %s)", sync);
    if (rc == 0)
        rc = run_const(db, "PRAGMA foreign_keys = OFF", NULL, 0, err);
    return rc;
}

/* Creates the tables in a fresh file; refuses a schema it does not know. */
static int ensure_schema(sqlite3 *db, char *err)
{
    char ver[24] = "";
    int rc = run_const(db, "BEGIN IMMEDIATE", NULL, 0, err);
    if (rc == 0)
        rc = run_const(db, "PRAGMA user_version", ver, sizeof(ver), err);
    if (rc == 0 && strcmp(ver, "0") == 0)
        for (size_t i = 0; rc == 0 && i < sizeof(schema_sql) / sizeof(schema_sql[0]); i++)
            rc = run_const(db, schema_sql[i], NULL, 0, err);
    else if (rc == 0 && strcmp(ver, "1") != 0)
        rc = uc_err_set(err, UC_EIO, "sqlite: schema version %s is not supported (want %d)", ver,
                        SCHEMA_VERSION);
    if (rc == 0)
        return run_const(db, "COMMIT", NULL, 0, err);
    if (!sqlite3_get_autocommit(db)) {
        char ignored[UC_ERR_LEN];
        if (run_const(db, "ROLLBACK", NULL, 0, ignored) < 0)
            uc_warn("%s", ignored);
    }
    return rc;
}

/* A clear error when the file's directory is missing, before SQLite tries. */
static int check_dir(const char *path, char *err)
{
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return 0;
    char *dir = uc_strndup(path, (size_t)(slash - path));
    if (!dir)
        return uc_err_set(err, UC_ENOMEM, "sqlite: out of memory");
    char shown[160];
    uc_err_sanitize(shown, sizeof(shown), dir, 150);
    struct stat sb;
    int rc = 0;
    if (stat(dir, &sb) != 0)
        rc = uc_err_set(err, UC_EIO, "sqlite: directory '%s' for the store: %s", shown,
                        strerror(errno));
    else if (!S_ISDIR(sb.st_mode))
        rc = uc_err_set(err, UC_EIO, "sqlite: '%s' is not a directory", shown);
    uc_free(dir);
    return rc;
}

static void close_db(sqlite3 *db)
{
    int r = sqlite3_close(db);
    if (r != SQLITE_OK)
        uc_warn("sqlite: close: %s", sqlite3_errstr(r));
}

/* Opens the file (creating it) and readies it for use. On failure *out is
 * untouched and nothing stays open. */
static int open_db(const char *path, sqlite3 **out, char *err)
{
    int rc = check_dir(path, err);
    if (rc < 0)
        return rc;
    /* The system SQLite accepts URI filenames; keep "file:..." a plain path. */
    char *lit = strncmp(path, "file:", 5) == 0 ? uc_asprintf("./%s", path) : NULL;
    if (strncmp(path, "file:", 5) == 0 && !lit)
        return uc_err_set(err, UC_ENOMEM, "sqlite: out of memory");
    sqlite3 *db = NULL;
    int r = sqlite3_open_v2(lit ? lit : path, &db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    uc_free(lit);
    if (!db)
        return uc_err_set(err, UC_ENOMEM, "sqlite: out of memory opening the database");
    rc = r == SQLITE_OK ? 0 : fail(db, r, "open", err);
    if (rc == 0 && (r = sqlite3_extended_result_codes(db, 1)) != SQLITE_OK)
        rc = fail(db, r, "enable extended result codes", err);
    if (rc == 0 && (r = sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS)) != SQLITE_OK)
        rc = fail(db, r, "set busy timeout", err);
    if (rc == 0)
        rc = set_pragmas(db, err);
    if (rc == 0)
        rc = ensure_schema(db, err);
    if (rc < 0) {
        close_db(db);
        return rc;
    }
    *out = db;
    return 0;
}

static void finalize_all(struct sq *s)
{
    for (size_t i = 0; i < S_COUNT; i++) {
        /* finalize only repeats the last step's error, handled where it ran */
        (void)sqlite3_finalize(s->stmt[i]);
        s->stmt[i] = NULL;
    }
}

static int prepare_all(struct sq *s, char *err)
{
    for (size_t i = 0; i < S_COUNT; i++) {
        int r = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                                   NULL);
        if (r != SQLITE_OK) {
            int rc = fail(s->db, r, "prepare", err);
            finalize_all(s);
            return rc;
        }
    }
    return 0;
}

static int sq_open(void **b, const char *path, char *err)
{
    char shown[160];
    uc_err_sanitize(shown, sizeof(shown), path, 150);
    struct sq *s = uc_calloc(1, sizeof(*s));
    if (!s)
        return uc_err_set(err, UC_ENOMEM, "store %s: out of memory", shown);
    int rc = open_db(path, &s->db, err);
    if (rc < 0)
        goto free_s;
    rc = prepare_all(s, err);
    if (rc < 0)
        goto close;
    int r = pthread_mutex_init(&s->mu, NULL);
    if (r != 0) {
        rc = uc_err_set(err, UC_ENOMEM, "sqlite: cannot create a mutex: %s", strerror(r));
        goto finalize;
    }
    *b = s;
    return 0;
finalize:
    finalize_all(s);
close:
    close_db(s->db);
free_s:
    uc_free(s);
    return uc_err_prefix(err, rc, "store %s", shown);
}

static void sq_close(void *b)
{
    struct sq *s = b;
    finalize_all(s);
    close_db(s->db);
    int r = pthread_mutex_destroy(&s->mu);
    assert(r == 0); /* only fails while locked: a caller broke the contract */
    (void)r;
    uc_free(s);
}

const struct uc_store_backend uc_store_sqlite_backend = {
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .get = sq_get,
    .put = sq_put,
    .del = sq_del,
    .scan = sq_scan,
    .txn = sq_txn,
    .ping = sq_ping,
};
