/* db_snapshot.c - snapshots and restores of the whole database. A snapshot
 * is the SQLite file image: sqlite3_serialize on the write connection for
 * one taken at once (a backup), or on a read transaction opened between two
 * applies for raft's, so the copy runs on a pool thread while WAL keeps the
 * pinned state for it. A restore writes the image beside the file, checks
 * and syncs it, records the snapshot's index in it, and only then renames it
 * over the live file, so a failure before the rename leaves the database as
 * it was. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "db_internal.h"
#include "uc/alloc.h"
#include "uc/log.h"

#define HEADER "SQLite format 3" /* with its NUL: the first 16 bytes of every database */

int flaredb_db_snapshot(struct flaredb_db *db, void **buf, size_t *len, char err[UC_ERR_LEN])
{
    if (!db->w.h)
        return uc_err_set(err, UC_EIO, "the database is closed after a failed restore");
    sqlite3_int64 n = 0;
    db->w.az.mode = AZ_OFF;
    unsigned char *img = sqlite3_serialize(db->w.h, "main", &n, 0);
    if (!img)
        return uc_err_set(err, UC_EIO, "serializing the database failed: %s",
                          sqlite3_errmsg(db->w.h));
    void *copy = uc_malloc((size_t)n);
    if (!copy) {
        sqlite3_free(img);
        return uc_err_set(err, UC_ENOMEM, "out of memory for a %lld-byte snapshot", (long long)n);
    }
    memcpy(copy, img, (size_t)n);
    sqlite3_free(img);
    *buf = copy;
    *len = (size_t)n;
    return 0;
}

/* ---- snapshots off the apply thread -------------------------------------------- */

struct flaredb_snap {
    sqlite3 *h;
    uint64_t index;
};

/* A read-only connection that never checkpoints on close: it may outlive a
 * restore's rename, and a checkpoint would then delete the new file's -wal
 * by name. */
static int snap_open(struct flaredb_db *db, sqlite3 **out, char *err)
{
    sqlite3 *h = NULL;
    int rc = sqlite3_open_v2(db->path, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_db_config(h, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(h, (int)db->cfg.busy_timeout_ms);
    if (rc != SQLITE_OK) {
        rc = flaredb_db_fail(h, rc, "opening the snapshot connection", err);
        sqlite3_close(h);
        return rc;
    }
    *out = h;
    return 0;
}

/* Starts the read transaction: reading the applied index is what takes the
 * WAL snapshot, so the index it answers is the state pinned. */
static int snap_pin(sqlite3 *h, uint64_t *index, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_exec(h, "BEGIN", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(h, "SELECT value FROM _flaredb_meta WHERE name = 'applied_index'",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *index = (uint64_t)sqlite3_column_int64(st, 0);
    int out = rc == SQLITE_ROW ? 0 : flaredb_db_fail(h, rc, "pinning a snapshot", err);
    sqlite3_finalize(st);
    return out;
}

/* A whole-database copy costs in proportion to the database; below this
 * size it is cheap enough to take at raft's entry count alone. */
#define SNAP_SMALL_DB (64u << 20)
/* Past this many log bytes a snapshot is taken whatever the database's
 * size: raft holds the entries since the last one in memory. */
#define SNAP_MAX_LOG (512u << 20)

/* The database's size in bytes (pages in use times page size), or 0. */
static uint64_t db_bytes(struct flaredb_db *db)
{
    sqlite3_stmt *st = NULL;
    uint64_t n = 0;
    db->w.az.mode = AZ_OFF;
    if (sqlite3_prepare_v2(db->w.h,
                           "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
                           -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return n;
}

bool flaredb_db_snapshot_due(struct flaredb_db *db)
{
    /* The size is read again only when `logged` reaches what the last
     * reading asked for, so declining costs a comparison per apply. Each
     * byte written then costs at most two bytes of snapshot copying. */
    if (db->logged < db->snap_need && db->logged < SNAP_MAX_LOG)
        return false;
    uint64_t size = db_bytes(db);
    db->snap_need = size < SNAP_SMALL_DB ? 0 : size / 2;
    return db->logged >= db->snap_need || db->logged >= SNAP_MAX_LOG;
}

int flaredb_db_snapshot_begin(struct flaredb_db *db, struct flaredb_snap **out,
                              char err[UC_ERR_LEN])
{
    if (!db->w.h)
        return uc_err_set(err, UC_EUNAVAIL, "the database is closed after a failed restore");
    struct flaredb_snap *s = uc_calloc(1, sizeof(*s));
    if (!s)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    int rc = snap_open(db, &s->h, err);
    if (rc == 0)
        rc = snap_pin(s->h, &s->index, err);
    if (rc == 0 && s->index != flaredb_db_applied(db))
        rc = uc_err_set(err, UC_EIO, "the snapshot read index %llu, but %llu is applied",
                        (unsigned long long)s->index, (unsigned long long)flaredb_db_applied(db));
    if (rc < 0) {
        flaredb_db_snapshot_end(s);
        return rc;
    }
    db->logged = 0;
    *out = s;
    return 0;
}

int flaredb_db_snapshot_encode(struct flaredb_snap *s, size_t room, void **buf, size_t *len,
                               char err[UC_ERR_LEN])
{
    sqlite3_int64 n = 0;
    /* inside the open read transaction: the pages of the pinned state */
    unsigned char *img = sqlite3_serialize(s->h, "main", &n, 0);
    if (!img)
        return uc_err_set(err, UC_EIO, "serializing the database failed: %s", sqlite3_errmsg(s->h));
    unsigned char *out = (size_t)n <= SIZE_MAX - room ? uc_malloc(room + (size_t)n) : NULL;
    if (!out) {
        sqlite3_free(img);
        return uc_err_set(err, UC_ENOMEM, "out of memory for a %lld-byte snapshot", (long long)n);
    }
    memcpy(out + room, img, (size_t)n);
    sqlite3_free(img);
    *buf = out;
    *len = room + (size_t)n;
    return 0;
}

void flaredb_db_snapshot_end(struct flaredb_snap *s)
{
    if (!s)
        return;
    /* closing ends the read transaction; it has nothing to lose */
    if (s->h && sqlite3_close(s->h) != SQLITE_OK)
        uc_error("flaredb: closing the snapshot connection: %s", sqlite3_errmsg(s->h));
    uc_free(s);
}

uint64_t flaredb_db_snapshot_index(const struct flaredb_snap *s) { return s->index; }

/* ---- files --------------------------------------------------------------------- */

static int unlink_quiet(const char *path, char *err)
{
    if (unlink(path) == 0 || errno == ENOENT)
        return 0;
    return uc_err_set(err, UC_EIO, "unlink %s: %s", path, strerror(errno));
}

/* Removes `base` and its -wal/-shm companions; `suffix_only` keeps base. */
static int unlink_db(const char *base, bool suffix_only, char *err)
{
    static const char *const sfx[] = {"-wal", "-shm"};
    char p[4096];
    int rc = suffix_only ? 0 : unlink_quiet(base, err);
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        if ((size_t)snprintf(p, sizeof(p), "%s%s", base, sfx[i]) >= sizeof(p))
            return uc_err_set(err, UC_EIO, "database path too long");
        rc = unlink_quiet(p, err);
    }
    return rc;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_file(const char *path, const void *buf, size_t len, char *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return uc_err_set(err, UC_EIO, "create %s: %s", path, strerror(errno));
    int rc = write_all(fd, buf, len) == 0 && fsync(fd) == 0 ? 0 : -1;
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    return rc == 0 ? 0 : uc_err_set(err, UC_EIO, "write %s: %s", path, strerror(saved));
}

/* fsync the directory holding `path`, so a rename in it is durable. */
static int sync_dir(const char *path, char *err)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof(dir))
        return uc_err_set(err, UC_EIO, "database path too long");
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (n == 0)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)n, path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? 0 : -1;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    return rc == 0 ? 0 : uc_err_set(err, UC_EIO, "fsync %s: %s", dir, strerror(saved));
}

/* ---- checking the image ------------------------------------------------------------ */

/* The text or integer the first row of `sql` answers, compared with `want`. */
static int expect_row(sqlite3 *h, const char *sql, const char *want, char *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    const char *got = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int out = 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = uc_err_set(err, UC_EINVAL, "not a usable flaredb snapshot: %s", sqlite3_errmsg(h));
    else if (!got || strcmp(got, want) != 0)
        out = uc_err_set(err, UC_EINVAL, "not a usable flaredb snapshot: %s answered %s", sql,
                         got ? got : "nothing");
    sqlite3_finalize(st);
    return out;
}

/* Opens the image at `tmp`, checks it, records `index` and leaves it in
 * rollback-journal mode, complete in one file (writer_open turns WAL on). */
static int prepare_image(const char *tmp, uint64_t index, char *err)
{
    sqlite3 *h = NULL;
    char sql[128];
    int rc = sqlite3_open_v2(tmp, &h, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) {
        rc = uc_err_set(err, UC_EINVAL, "not a usable flaredb snapshot: %s",
                        h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
        sqlite3_close(h);
        return rc;
    }
    snprintf(sql, sizeof(sql), "UPDATE _flaredb_meta SET value = %llu WHERE name = 'applied_index'",
             (unsigned long long)index);
    rc = expect_row(h, "PRAGMA journal_mode=DELETE", "delete", err);
    if (rc == 0 && sqlite3_exec(h, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK)
        rc = uc_err_set(err, UC_EIO, "synchronous=FULL: %s", sqlite3_errmsg(h));
    if (rc == 0)
        rc = expect_row(h, "PRAGMA quick_check", "ok", err);
    if (rc == 0)
        rc = expect_row(h, "SELECT value FROM _flaredb_meta WHERE name = 'format'", "1", err);
    if (rc == 0 && sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK)
        rc = uc_err_set(err, UC_EIO, "recording the snapshot's index: %s", sqlite3_errmsg(h));
    if (sqlite3_close(h) != SQLITE_OK && rc == 0)
        rc = uc_err_set(err, UC_EIO, "closing the snapshot image failed");
    return rc;
}

/* ---- the swap ------------------------------------------------------------------- */

/* Closes everything, renames tmp over the file and reopens. The old -wal
 * and -shm go before the rename: closing the last connection checkpointed
 * them, and left beside the new file they would be replayed into it. */
static int swap(struct flaredb_db *db, const char *tmp, char *err)
{
    char reopen_err[UC_ERR_LEN];
    flaredb_db_readers_pause(db);
    flaredb_db_conns_close(db);
    int rc = unlink_db(db->path, true, err);
    if (rc == 0 && rename(tmp, db->path) != 0)
        rc = uc_err_set(err, UC_EIO, "rename %s: %s", tmp, strerror(errno));
    if (rc == 0)
        rc = sync_dir(db->path, err);
    int orc = flaredb_db_conns_open(db, reopen_err);
    if (orc < 0 && rc == 0)
        rc = uc_err_set(err, UC_EIO, "reopening after the restore: %s", reopen_err);
    else if (orc < 0)
        uc_err_prefix(err, rc, "(and reopening failed: %s)", reopen_err);
    flaredb_db_readers_resume(db, orc < 0);
    return rc;
}

int flaredb_db_restore(struct flaredb_db *db, const void *buf, size_t len, uint64_t index,
                       char err[UC_ERR_LEN])
{
    if (!buf || len < 100 || memcmp(buf, HEADER, sizeof(HEADER)) != 0)
        return uc_err_set(err, UC_EINVAL, "not an SQLite database image");
    char *tmp = uc_asprintf("%s.restore", db->path);
    if (!tmp)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    int rc = unlink_db(tmp, false, err);
    if (rc == 0)
        rc = write_file(tmp, buf, len, err);
    if (rc == 0)
        rc = prepare_image(tmp, index, err);
    if (rc == 0)
        rc = swap(db, tmp, err);
    /* the restrictions may differ in the new file (or be unreadable) */
    atomic_fetch_add(&db->acl_gen, 1);
    if (rc == 0)
        db->logged = 0; /* the state is a snapshot's again */
    if (rc < 0) {
        char ignored[UC_ERR_LEN];
        /* a leftover is harmless: the next restore removes it first */
        (void)unlink_db(tmp, false, ignored);
    }
    uc_free(tmp);
    return rc;
}
