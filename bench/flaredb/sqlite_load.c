/* sqlite_load.c - bench/flaredb's local baseline: the statements the bench
 * sends flaredb, run on one SQLite file (WAL, synchronous=FULL) by CLIENTS
 * threads, each with its own connection, for SECONDS. Writers take turns
 * through a mutex, not SQLite's busy handler, whose back-off sleeps (up to
 * 100 ms) would understate what SQLite can do.
 *
 *   sqlite_load DB fill ROWS VALUE          create the table, insert ROWS rows
 *   sqlite_load DB insert|get|batch CLIENTS SECONDS VALUE ROWS BATCH
 *
 * A run prints "<ops/s> <p50 ms> <p99 ms> <ops> <errors> 0 <cpu ms>": the
 * fields of bench/lib.sh's wrk_stats, then the CPU time the process used
 * (user + system), to set against the servers' CPU time per op. An op is one
 * statement run (insert, get) or one transaction of BATCH inserts (batch). */
#include <pthread.h>
#include <stdbool.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "uc/alloc.h"
#include "uc/err.h"

#define MAX_CLIENTS 256
#define BUSY_TIMEOUT_MS 10000
/* Latency histogram: exact below 64 ns, then 32 buckets per power of two
 * (3% resolution), so percentiles need no per-op allocation. */
#define HIST_SUB 32
#define HIST_BUCKETS (64 + 58 * HIST_SUB)

static const char SCHEMA[] = "CREATE TABLE IF NOT EXISTS item(id INTEGER PRIMARY KEY, "
                             "name TEXT NOT NULL, value TEXT NOT NULL)";
static const char INSERT_SQL[] = "INSERT INTO item(name, value) VALUES (?, ?)";
static const char GET_SQL[] = "SELECT id, name, value FROM item WHERE id = ?";

enum op { OP_INSERT, OP_GET, OP_BATCH };

/* What every client runs; read-only while they run. */
struct job {
    const char *path;
    enum op op;
    const char *value;
    long rows;  /* get: ids 1..rows */
    long batch; /* batch: inserts per transaction */
    double seconds;
    pthread_mutex_t write_lock; /* one writer at a time */
    pthread_barrier_t start;    /* clients open their connection first */
    int64_t deadline_ns;        /* set by one client once all are ready */
};

struct client {
    pthread_t tid;
    struct job *job;
    unsigned id;
    uint64_t seq; /* names this client's rows */
    uint32_t rng; /* xorshift state for get ids */
    sqlite3 *db;
    sqlite3_stmt *stmt;
    long ops, errors;
    int rc;
    char err[UC_ERR_LEN];
    uint64_t hist[HIST_BUCKETS];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC */
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static unsigned hist_index(uint64_t ns)
{
    if (ns < 64)
        return (unsigned)ns;
    unsigned e = 63 - (unsigned)__builtin_clzll(ns); /* 6..63 */
    return 64 + (e - 6) * HIST_SUB + (unsigned)((ns >> (e - 5)) & (HIST_SUB - 1));
}

static double hist_value_ms(unsigned i)
{
    if (i < 64)
        return i / 1e6;
    unsigned e = (i - 64) / HIST_SUB + 6, sub = (i - 64) % HIST_SUB;
    return (double)((uint64_t)(HIST_SUB + sub) << (e - 5)) / 1e6;
}

/* The latency at quantile q (0..1) of the merged histogram, in ms. */
static double hist_quantile(const uint64_t *h, uint64_t total, double q)
{
    uint64_t want = (uint64_t)(q * (double)total), seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h[i];
        if (seen > want)
            return hist_value_ms(i);
    }
    return 0;
}

static int db_fail(sqlite3 *db, char *err, const char *what)
{
    return uc_err_set(err, UC_EIO, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
}

/* Open `path` as every connection of the bench does. */
static int db_open(const char *path, sqlite3 **out, char *err)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", NULL, NULL, NULL) !=
            SQLITE_OK) {
        int rc = db_fail(db, err, path);
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

static int exec(sqlite3 *db, const char *sql, char *err)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : db_fail(db, err, sql);
}

/* Run the prepared insert once, naming the row "c<client>-<seq>". */
static int insert_one(struct client *c)
{
    char name[48];
    snprintf(name, sizeof(name), "c%u-%llu", c->id, (unsigned long long)c->seq++);
    sqlite3_stmt *s = c->stmt;
    int rc = sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 2, c->job->value, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (sqlite3_reset(s) != SQLITE_OK && rc == SQLITE_DONE)
        rc = SQLITE_ERROR;
    return rc == SQLITE_DONE ? 0 : db_fail(c->db, c->err, "insert");
}

static uint32_t next_rand(struct client *c)
{
    uint32_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return c->rng = x;
}

/* Point select of a random filled id; the row must be there. */
static int get_one(struct client *c)
{
    sqlite3_stmt *s = c->stmt;
    sqlite3_int64 id = 1 + (sqlite3_int64)(next_rand(c) % (uint32_t)c->job->rows);
    int rc = sqlite3_bind_int64(s, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    bool found = rc == SQLITE_ROW && sqlite3_column_bytes(s, 2) > 0;
    if (sqlite3_reset(s) != SQLITE_OK && rc == SQLITE_ROW)
        return db_fail(c->db, c->err, "select");
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(c->db, c->err, "select");
    return found ? 0 : uc_err_set(c->err, UC_ENOENT, "select: no row with id %lld", (long long)id);
}

/* BATCH inserts in one transaction, undone as a whole on failure. */
static int batch_one(struct client *c)
{
    int rc = exec(c->db, "BEGIN IMMEDIATE", c->err);
    for (long i = 0; rc == 0 && i < c->job->batch; i++)
        rc = insert_one(c);
    if (rc == 0)
        return exec(c->db, "COMMIT", c->err);
    (void)sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL); /* the op already failed */
    return rc;
}

static int run_op(struct client *c)
{
    if (c->job->op == OP_GET)
        return get_one(c);
    if (pthread_mutex_lock(&c->job->write_lock) != 0)
        return uc_err_set(c->err, UC_EINTERNAL, "cannot take the write lock");
    int rc = c->job->op == OP_INSERT ? insert_one(c) : batch_one(c);
    (void)pthread_mutex_unlock(&c->job->write_lock); /* we hold it: cannot fail */
    return rc;
}

/* Ops until the deadline; a failed op is counted and the run goes on. */
static void loop(struct client *c)
{
    for (;;) {
        int64_t t0 = now_ns();
        if (t0 >= c->job->deadline_ns)
            return;
        if (run_op(c) != 0) {
            c->errors++;
            continue;
        }
        c->ops++;
        c->hist[hist_index((uint64_t)(now_ns() - t0))]++;
    }
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    const char *sql = c->job->op == OP_GET ? GET_SQL : INSERT_SQL;
    c->rc = db_open(c->job->path, &c->db, c->err);
    if (c->rc == 0 && sqlite3_prepare_v2(c->db, sql, -1, &c->stmt, NULL) != SQLITE_OK)
        c->rc = db_fail(c->db, c->err, "prepare");
    /* Everyone waits here, even after a failure, or the others would hang. */
    if (pthread_barrier_wait(&c->job->start) == PTHREAD_BARRIER_SERIAL_THREAD)
        c->job->deadline_ns = now_ns() + (int64_t)(c->job->seconds * 1e9);
    (void)pthread_barrier_wait(&c->job->start); /* deadline_ns is now set */
    if (c->rc == 0)
        loop(c);
    sqlite3_finalize(c->stmt);
    sqlite3_close(c->db);
    return NULL;
}

static double cpu_ms(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* Join every client, merge their counts, print the line. The rate counts
 * from the common start to the end of the last op. */
static int report(struct client *cs, unsigned n)
{
    uint64_t hist[HIST_BUCKETS] = {0};
    long ops = 0, errors = 0;
    int rc = 0;
    for (unsigned i = 0; i < n; i++) {
        if (pthread_join(cs[i].tid, NULL) != 0 && rc == 0)
            rc = UC_EINTERNAL;
        if (cs[i].rc != 0 && rc == 0) {
            rc = cs[i].rc;
            fprintf(stderr, "sqlite_load: client %u: %s\n", i, cs[i].err);
        }
        if (cs[i].errors && cs[i].err[0])
            fprintf(stderr, "sqlite_load: client %u: %ld errors, last: %s\n", i, cs[i].errors,
                    cs[i].err);
        ops += cs[i].ops;
        errors += cs[i].errors;
        for (unsigned b = 0; b < HIST_BUCKETS; b++)
            hist[b] += cs[i].hist[b];
    }
    const struct job *j = cs[0].job;
    double s = (double)(now_ns() - j->deadline_ns) / 1e9 + j->seconds;
    if (rc == 0)
        printf("%.0f %.3f %.3f %ld %ld 0 %.0f\n", (double)ops / s,
               hist_quantile(hist, (uint64_t)ops, 0.50), hist_quantile(hist, (uint64_t)ops, 0.99),
               ops, errors, cpu_ms());
    return rc;
}

static int run(struct job *j, unsigned n)
{
    struct client *cs = uc_calloc(n, sizeof(*cs));
    if (!cs)
        return UC_ENOMEM;
    if (pthread_barrier_init(&j->start, NULL, n) != 0) {
        uc_free(cs);
        return UC_EINTERNAL;
    }
    for (unsigned i = 0; i < n; i++) {
        cs[i] = (struct client){.job = j, .id = i, .rng = 2463534242u + i};
        if (pthread_create(&cs[i].tid, NULL, client_main, &cs[i]) != 0) {
            /* Clients already started wait at the barrier for good. */
            fprintf(stderr, "sqlite_load: cannot start client %u\n", i);
            exit(1);
        }
    }
    int rc = report(cs, n);
    (void)pthread_barrier_destroy(&j->start); /* every client has left it */
    uc_free(cs);
    return rc;
}

/* Create the table and insert `rows` rows (ids 1..rows) in one transaction. */
static int fill(const char *path, long rows, const char *value, char *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    struct job j = {.value = value};
    struct client c = {.job = &j, .id = 0};
    int rc = db_open(path, &db, err);
    if (rc == 0)
        rc = exec(db, SCHEMA, err);
    if (rc == 0)
        rc = exec(db, "BEGIN IMMEDIATE", err);
    if (rc == 0 && sqlite3_prepare_v2(db, INSERT_SQL, -1, &s, NULL) != SQLITE_OK)
        rc = db_fail(db, err, "prepare");
    c.db = db;
    c.stmt = s;
    for (long i = 0; rc == 0 && i < rows; i++)
        rc = insert_one(&c);
    if (rc != 0 && c.err[0])
        snprintf(err, UC_ERR_LEN, "%s", c.err);
    sqlite3_finalize(s);
    if (rc == 0)
        rc = exec(db, "COMMIT", err);
    sqlite3_close(db);
    return rc;
}

static long arg_long(const char *s, long min, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v >= min && v <= max ? v : -1;
}

static int usage(void)
{
    fprintf(stderr, "usage: sqlite_load DB fill ROWS VALUE\n"
                    "       sqlite_load DB insert|get|batch CLIENTS SECONDS VALUE ROWS BATCH\n");
    return 2;
}

int main(int argc, char **argv)
{
    char err[UC_ERR_LEN] = "";
    if (argc == 5 && strcmp(argv[2], "fill") == 0) {
        long rows = arg_long(argv[3], 1, 100000000);
        if (rows < 0)
            return usage();
        int rc = fill(argv[1], rows, argv[4], err);
        if (rc != 0)
            fprintf(stderr, "sqlite_load: fill: %s\n", err[0] ? err : uc_strerror(rc));
        return rc == 0 ? 0 : 1;
    }
    if (argc != 8)
        return usage();
    struct job j = {.path = argv[1], .value = argv[5], .write_lock = PTHREAD_MUTEX_INITIALIZER};
    const char *op = argv[2];
    j.op = strcmp(op, "get") == 0 ? OP_GET : strcmp(op, "batch") == 0 ? OP_BATCH : OP_INSERT;
    long clients = arg_long(argv[3], 1, MAX_CLIENTS);
    j.seconds = strtod(argv[4], NULL);
    j.rows = arg_long(argv[6], 1, 100000000);
    j.batch = arg_long(argv[7], 1, 100000);
    if ((j.op == OP_INSERT && strcmp(op, "insert") != 0) || clients < 0 || j.seconds <= 0 ||
        j.rows < 0 || j.batch < 0)
        return usage();
    int rc = run(&j, (unsigned)clients);
    if (rc != 0)
        fprintf(stderr, "sqlite_load: %s\n", uc_strerror(rc));
    return rc == 0 ? 0 : 1;
}
