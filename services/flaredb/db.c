/* db.c - flaredb's database handle: opening the file (WAL, schema of the
 * internal tables), the write connection and its prepared statements, and
 * the pool of read connections that reads borrow while apply writes.
 * A restore pauses the pool, swaps the file and reopens everything, so the
 * pool's mutex is the one place readers and the file swap meet. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "db_internal.h"
#include "uc/alloc.h"
#include "uc/log.h"

#define DEFAULT_READERS 4
#define DEFAULT_TIME_LIMIT_MS 5000
#define DEFAULT_MAX_ROWS 10000
#define DEFAULT_BUSY_MS 5000
#define DEFAULT_MAX_VALUE (1u << 20)
#define MAX_READERS 64
#define FORMAT 1

/* Savepoints nest inside the BEGIN that apply opens: the entry's undoes the
 * user's changes on a shared failure while the applied index still commits. */
static const char *const wstmt_sql[W_COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_ENTRY_SP] = "SAVEPOINT flaredb_entry",
    [W_ENTRY_RELEASE] = "RELEASE flaredb_entry",
    [W_ENTRY_UNDO] = "ROLLBACK TO flaredb_entry",
    [W_STMT_SP] = "SAVEPOINT flaredb_stmt",
    [W_STMT_RELEASE] = "RELEASE flaredb_stmt",
    [W_STMT_UNDO] = "ROLLBACK TO flaredb_stmt",
    [W_META_SET] = "UPDATE _flaredb_meta SET value = ?1 WHERE name = 'applied_index'",
    [W_KV_GET] = "SELECT version, create_rev, mod_rev FROM _flaredb_kv WHERE ns = ?1 AND key = ?2",
    [W_KV_PUT] = "INSERT INTO _flaredb_kv(ns, key, value, version, create_rev, mod_rev) "
                 "VALUES(?1, ?2, ?3, 1, ?4, ?4) ON CONFLICT(ns, key) DO UPDATE SET "
                 "value = excluded.value, version = version + 1, mod_rev = excluded.mod_rev "
                 "RETURNING version, create_rev",
    [W_KV_DEL] = "DELETE FROM _flaredb_kv WHERE ns = ?1 AND key = ?2",
    [W_NS_GET] = "SELECT rev FROM _flaredb_ns WHERE ns = ?1",
    [W_NS_SET] = "INSERT INTO _flaredb_ns(ns, rev) VALUES(?1, ?2) "
                 "ON CONFLICT(ns) DO UPDATE SET rev = excluded.rev",
};

/* Run in one transaction at every open; IF NOT EXISTS makes it idempotent. */
static const char schema_sql[] =
    "BEGIN IMMEDIATE;"
    "CREATE TABLE IF NOT EXISTS _flaredb_meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS _flaredb_ns(ns TEXT PRIMARY KEY, rev INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS _flaredb_kv(ns TEXT NOT NULL, key BLOB NOT NULL,"
    " value BLOB NOT NULL, version INTEGER NOT NULL, create_rev INTEGER NOT NULL,"
    " mod_rev INTEGER NOT NULL, PRIMARY KEY(ns, key)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS _flaredb_acl(kind TEXT NOT NULL, name TEXT NOT NULL,"
    " project TEXT NOT NULL, PRIMARY KEY(kind, name)) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO _flaredb_meta(name, value) VALUES('format', 1), ('applied_index', 0);"
    "COMMIT;";

/* ---- errors and statements ------------------------------------------------ */

bool flaredb_db_local_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_ERROR:
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
    case SQLITE_AUTH:
    case SQLITE_INTERRUPT:
    case SQLITE_ABORT:
    case SQLITE_SCHEMA:
    case SQLITE_LOCKED: /* a table this connection is reading: the statement's doing */
        return false;
    default:
        return true;
    }
}

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
        return UC_EUNAVAIL;
    case SQLITE_NOMEM:
        return UC_ENOMEM;
    case SQLITE_TOOBIG:
        return UC_E2BIG;
    case SQLITE_NOTADB:
        return UC_EINVAL;
    default:
        return UC_EIO;
    }
}

int flaredb_db_fail(sqlite3 *h, int rc, const char *what, char *err)
{
    const char *msg = h ? sqlite3_errmsg(h) : sqlite3_errstr(rc);
    return uc_err_set(err, map_rc(rc), "%s: %s", what, msg);
}

void flaredb_db_done(sqlite3_stmt *st)
{
    /* reset repeats the last step's error, which the caller already handled */
    (void)sqlite3_reset(st);
    /* clear_bindings cannot fail */
    (void)sqlite3_clear_bindings(st);
}

int flaredb_db_wstep(struct flaredb_db *db, enum wstmt id, char *err)
{
    /* our own statements: no user rules, no step budget (a re-prepare after
     * a schema change runs the authorizer again) */
    db->w.az.mode = AZ_OFF;
    db->w.max_ticks = 0;
    int rc = sqlite3_step(db->ws[id]);
    int out = rc == SQLITE_DONE ? 0 : flaredb_db_fail(db->w.h, rc, wstmt_sql[id], err);
    flaredb_db_done(db->ws[id]);
    return out;
}

/* Runs `sql` (no rows wanted) with the authorizer off. */
static int exec(struct fconn *c, const char *sql, char *err)
{
    c->az.mode = AZ_OFF;
    int rc = sqlite3_exec(c->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : flaredb_db_fail(c->h, rc, "sqlite", err);
}

/* The integer the one-row query `sql` answers, in *v. */
static int query_int(struct fconn *c, const char *sql, int64_t *v, char *err)
{
    sqlite3_stmt *st = NULL;
    c->az.mode = AZ_OFF;
    int rc = sqlite3_prepare_v2(c->h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return flaredb_db_fail(c->h, rc, "sqlite", err);
    rc = sqlite3_step(st);
    int out = 0;
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        out = uc_err_set(err, UC_EINVAL, "%s: no row (not a flaredb database?)", sql);
    else
        out = flaredb_db_fail(c->h, rc, "sqlite", err);
    sqlite3_finalize(st);
    return out;
}

/* ---- connections -------------------------------------------------------------- */

static int conn_open(struct flaredb_db *db, struct fconn *c, int flags, char *err)
{
    *c = (struct fconn){.db = db};
    int rc = sqlite3_open_v2(db->path, &c->h, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = flaredb_db_fail(c->h, rc, db->path, err);
        sqlite3_close(c->h);
        c->h = NULL;
        return rc;
    }
    rc = sqlite3_busy_timeout(c->h, (int)db->cfg.busy_timeout_ms);
    if (rc != SQLITE_OK)
        return flaredb_db_fail(c->h, rc, "busy timeout", err);
    flaredb_db_authz_install(c);
    return 0;
}

static void conn_close(struct fconn *c)
{
    if (c->h && sqlite3_close(c->h) != SQLITE_OK)
        uc_error("flaredb: closing a connection: %s", sqlite3_errmsg(c->h));
    c->h = NULL;
}

static int wal_on(struct fconn *c, char *err)
{
    sqlite3_stmt *st = NULL;
    c->az.mode = AZ_OFF;
    int rc = sqlite3_prepare_v2(c->h, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return flaredb_db_fail(c->h, rc, "journal_mode", err);
    rc = sqlite3_step(st);
    const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int out = 0;
    if (rc != SQLITE_ROW)
        out = flaredb_db_fail(c->h, rc, "journal_mode", err);
    else if (!mode || strcmp(mode, "wal") != 0)
        out = uc_err_set(err, UC_EIO, "%s: WAL mode unavailable (journal_mode is %s)", c->db->path,
                         mode ? mode : "unknown");
    sqlite3_finalize(st);
    return out;
}

static int writer_schema(struct flaredb_db *db, char *err)
{
    struct fconn *c = &db->w;
    int64_t format = 0, applied = 0;
    int rc = exec(c, schema_sql, err);
    if (rc < 0) {
        (void)sqlite3_exec(c->h, "ROLLBACK", NULL, NULL, NULL); /* may have failed first */
        return uc_err_prefix(err, rc, "%s: creating flaredb's tables", db->path);
    }
    rc = query_int(c, "SELECT value FROM _flaredb_meta WHERE name = 'format'", &format, err);
    if (rc == 0 && format != FORMAT)
        rc = uc_err_set(err, UC_EINVAL, "%s: flaredb format %lld, this build reads %d", db->path,
                        (long long)format, FORMAT);
    if (rc == 0)
        rc = query_int(c, "SELECT value FROM _flaredb_meta WHERE name = 'applied_index'", &applied,
                       err);
    if (rc == 0)
        atomic_store(&db->applied, (uint64_t)applied);
    return rc;
}

static int writer_open(struct flaredb_db *db, char *err)
{
    struct fconn *c = &db->w;
    int rc = conn_open(db, c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, err);
    if (rc == 0)
        rc = wal_on(c, err);
    if (rc == 0)
        rc = exec(c, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON", err);
    if (rc == 0)
        rc = writer_schema(db, err);
    if (rc == 0)
        rc = flaredb_db_authz_overrides(c->h, err);
    for (int i = 0; rc == 0 && i < W_COUNT; i++) {
        int r =
            sqlite3_prepare_v3(c->h, wstmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->ws[i], NULL);
        if (r != SQLITE_OK)
            rc = flaredb_db_fail(c->h, r, wstmt_sql[i], err);
    }
    return rc;
}

static int reader_open(struct flaredb_db *db, struct fconn *c, char *err)
{
    int rc = conn_open(db, c, SQLITE_OPEN_READWRITE, err);
    /* query_only backs up the authorizer: a reader never writes */
    return rc == 0 ? exec(c, "PRAGMA query_only=1", err) : rc;
}

void flaredb_db_conns_close(struct flaredb_db *db)
{
    for (unsigned i = 0; db->rd && i < db->cfg.readers; i++)
        conn_close(&db->rd[i]);
    flaredb_cache_clear(&db->wcache);
    for (int i = 0; i < W_COUNT; i++) {
        sqlite3_finalize(db->ws[i]);
        db->ws[i] = NULL;
    }
    conn_close(&db->w);
}

int flaredb_db_conns_open(struct flaredb_db *db, char *err)
{
    int rc = writer_open(db, err);
    for (unsigned i = 0; rc == 0 && i < db->cfg.readers; i++)
        rc = reader_open(db, &db->rd[i], err);
    if (rc < 0)
        flaredb_db_conns_close(db);
    return rc;
}

/* ---- the reader pool ------------------------------------------------------- */

static void lock(struct flaredb_db *db)
{
    if (pthread_mutex_lock(&db->mu) != 0)
        uc_error("flaredb: pthread_mutex_lock failed"); /* only on a destroyed mutex */
}

static void unlock(struct flaredb_db *db)
{
    if (pthread_mutex_unlock(&db->mu) != 0)
        uc_error("flaredb: pthread_mutex_unlock failed");
}

static struct timespec deadline_in(unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static struct fconn *free_reader(struct flaredb_db *db)
{
    for (unsigned i = 0; !db->paused && i < db->cfg.readers; i++)
        if (!db->rd[i].lent)
            return &db->rd[i];
    return NULL;
}

int flaredb_db_reader_get(struct flaredb_db *db, struct fconn **out, char *err)
{
    struct timespec until = deadline_in(db->cfg.time_limit_ms);
    struct fconn *c = NULL;
    int rc = 0;
    lock(db);
    while (rc == 0 && !db->broken && !(c = free_reader(db)))
        rc = pthread_cond_timedwait(&db->cv, &db->mu, &until);
    if (c)
        c->lent = true;
    bool broken = db->broken;
    unlock(db);
    if (broken)
        return uc_err_set(err, UC_EUNAVAIL, "database unusable after a failed restore");
    if (!c)
        return uc_err_set(err, UC_EUNAVAIL, "all %u read connections stayed busy for %u ms",
                          db->cfg.readers, db->cfg.time_limit_ms);
    c->deadline = uc_clock_mono_ms(db->cfg.clock) + (int64_t)db->cfg.time_limit_ms;
    c->timed_out = false;
    *out = c;
    return 0;
}

void flaredb_db_reader_put(struct flaredb_db *db, struct fconn *c)
{
    c->az.mode = AZ_OFF;
    c->az.tables = NULL;
    c->deadline = 0;
    lock(db);
    c->lent = false;
    pthread_cond_broadcast(&db->cv);
    unlock(db);
}

void flaredb_db_readers_pause(struct flaredb_db *db)
{
    lock(db);
    db->paused = true;
    for (;;) {
        bool any = false;
        for (unsigned i = 0; i < db->cfg.readers; i++)
            any |= db->rd[i].lent;
        if (!any)
            break;
        /* reads are bounded by the time limit, so this wait is too */
        if (pthread_cond_wait(&db->cv, &db->mu) != 0)
            uc_error("flaredb: pthread_cond_wait failed");
    }
    unlock(db);
}

void flaredb_db_readers_resume(struct flaredb_db *db, bool broken)
{
    lock(db);
    db->paused = false;
    db->broken = broken;
    pthread_cond_broadcast(&db->cv);
    unlock(db);
}

int flaredb_db_read_begin(struct fconn *c, char *err) { return exec(c, "BEGIN", err); }

void flaredb_db_read_end(struct fconn *c)
{
    char ignored[UC_ERR_LEN];
    /* a read transaction has nothing to lose: ROLLBACK ends it even after an error */
    if (!sqlite3_get_autocommit(c->h) && exec(c, "ROLLBACK", ignored) < 0)
        uc_warn("flaredb: ending a read: %s", ignored);
}

/* ---- lifecycle -------------------------------------------------------------- */

static void defaults(struct flaredb_db_config *c)
{
    c->readers = c->readers ? c->readers : DEFAULT_READERS;
    c->readers = c->readers > MAX_READERS ? MAX_READERS : c->readers;
    c->time_limit_ms = c->time_limit_ms ? c->time_limit_ms : DEFAULT_TIME_LIMIT_MS;
    c->max_rows = c->max_rows ? c->max_rows : DEFAULT_MAX_ROWS;
    c->busy_timeout_ms = c->busy_timeout_ms ? c->busy_timeout_ms : DEFAULT_BUSY_MS;
    c->max_value = c->max_value ? c->max_value : DEFAULT_MAX_VALUE;
}

static int sync_init(struct flaredb_db *db, char *err)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return uc_err_set(err, UC_ENOMEM, "pthread_condattr_init failed");
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&db->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return uc_err_set(err, UC_ENOMEM, "pthread_cond_init failed");
    if (pthread_mutex_init(&db->mu, NULL) != 0) {
        pthread_cond_destroy(&db->cv);
        return uc_err_set(err, UC_ENOMEM, "pthread_mutex_init failed");
    }
    return 0;
}

int flaredb_db_open(struct flaredb_db **out, const struct flaredb_db_config *cfg,
                    char err[UC_ERR_LEN])
{
    if (!cfg || !cfg->path || !cfg->path[0])
        return uc_err_set(err, UC_EINVAL, "flaredb: no database path");
    struct flaredb_db *db = uc_calloc(1, sizeof(*db));
    if (!db)
        return uc_err_set(err, UC_ENOMEM, "flaredb: out of memory");
    db->cfg = *cfg;
    defaults(&db->cfg);
    db->path = uc_strdup(cfg->path);
    db->rd = uc_calloc(db->cfg.readers, sizeof(*db->rd));
    int rc = db->path && db->rd ? 0 : uc_err_set(err, UC_ENOMEM, "flaredb: out of memory");
    if (rc < 0)
        goto free_db;
    db->cfg.path = db->path;
    rc = sync_init(db, err);
    if (rc < 0)
        goto free_db;
    rc = flaredb_db_conns_open(db, err);
    if (rc < 0)
        goto destroy_sync;
    *out = db;
    return 0;
destroy_sync:
    pthread_cond_destroy(&db->cv);
    pthread_mutex_destroy(&db->mu);
free_db:
    uc_free(db->rd);
    uc_free(db->path);
    uc_free(db);
    return rc;
}

void flaredb_db_close(struct flaredb_db *db)
{
    if (!db)
        return;
    flaredb_db_conns_close(db);
    pthread_cond_destroy(&db->cv);
    pthread_mutex_destroy(&db->mu);
    uc_free(db->rd);
    uc_free(db->path);
    uc_free(db);
}

uint64_t flaredb_db_applied(struct flaredb_db *db) { return atomic_load(&db->applied); }
