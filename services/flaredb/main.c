/* main.c - the flaredb daemon's start-up order: signals, options, log, the
 * database in the data dir, HTTP client, replicated-service module (token
 * verifier and raft member, which may restore a snapshot into the
 * database), read threads, HTTP server; then wait for SIGTERM, drain and
 * tear down in reverse. All state lives in struct daemon on main's stack. */
#include <errno.h>
#include <sqlite3.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "server.h"
#include "uc/alloc.h"
#include "uc/config.h"
#include "uc/daemon.h"
#include "uc/http.h"
#include "uc/replsvc.h"

#define SEGMENT_BYTES ((size_t)64 << 20)
#define DRAIN_MS 10000
#define DB_FILE "flaredb.db"

struct fdb_config {
    struct uc_replsvc_opts repl;
    int64_t statement_timeout_ms;
    int64_t max_steps;
    int64_t max_rows;
    int64_t readers;
    int64_t max_value_bytes;
};

#define OPT(n, t, f, d, lo, hi, req, h)                                                            \
    {                                                                                              \
        n, t, offsetof(struct fdb_config, f), d, lo, hi, req, h                                    \
    }
static const struct uc_config_opt options[] = {
    UC_REPLSVC_CONFIG_OPTS(struct fdb_config, repl, "flaredb", "7300", "7301", "10000"),
    OPT("statement-timeout-ms", UC_CFG_INT, statement_timeout_ms, "5000", 10, 600000, false,
        "wall-clock limit of one read request (all its statements); a write is bounded by "
        "--max-steps instead"),
    OPT("max-steps", UC_CFG_INT, max_steps, "100000000", 1000, FLAREDB_DB_MAX_STEPS, false,
        "SQLite VM steps one statement of a write may take (a count, so every member stops a "
        "runaway write at the same point)"),
    OPT("max-rows", UC_CFG_INT, max_rows, "10000", 1, 1000000, false,
        "rows one statement of a read may return"),
    OPT("readers", UC_CFG_INT, readers, "4", 1, 64, false,
        "read connections, and threads that answer linearizable reads"),
    OPT("max-value-bytes", UC_CFG_INT, max_value_bytes, "1048576", 1, 16777216, false,
        "longest KV value; requests may be 4/3 of it plus 64 KiB (base64url in JSON)"),
    {NULL},
};

struct daemon {
    struct fdb_config cfg;
    struct flaredb_server srv;
    bool srv_ready;
    struct uc_http_server *http;
};

/* A value is sent as base64url inside JSON: 4/3 of it plus room. */
static size_t body_limit(const struct fdb_config *c)
{
    return (size_t)c->max_value_bytes / 3 * 4 + 65536;
}

/* mkdir -p with mode 0700 for what it creates: the database lives in the
 * data dir, which must exist before raft (which would create it) starts. */
static int make_dir(const char *path, char *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return uc_err_set(err, UC_EINVAL, "--data-dir: must be 1-%zu characters", sizeof(buf) - 1);
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; p <= buf + n; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return uc_err_set(err, UC_EIO, "--data-dir: cannot create %s: %s", buf,
                              strerror(errno));
        *p = c;
    }
    return 0;
}

static int open_db(struct daemon *d, char err[UC_ERR_LEN])
{
    const struct fdb_config *c = &d->cfg;
    int rc = make_dir(c->repl.data_dir, err);
    char *path = rc == 0 ? uc_asprintf("%s/%s", c->repl.data_dir, DB_FILE) : NULL;
    if (rc < 0)
        return rc;
    if (!path)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    struct flaredb_db_config dbcfg = {
        .path = path,
        .readers = (unsigned)c->readers,
        .time_limit_ms = (unsigned)c->statement_timeout_ms,
        .max_rows = (size_t)c->max_rows,
        .max_value = (size_t)c->max_value_bytes,
    };
    rc = flaredb_server_init(&d->srv, &dbcfg, (unsigned)c->readers, err);
    uc_free(path);
    if (rc < 0)
        return rc;
    d->srv_ready = true;
    d->srv.max_steps = c->max_steps;
    return 0;
}

/* Database, replicated-service module and read threads. */
static int open_state(void *p, char err[UC_ERR_LEN])
{
    struct daemon *d = p;
    int rc = open_db(d, err);
    if (rc < 0)
        return rc;
    struct uc_replsvc_config rcfg = {
        .service = "flaredb",
        .opts = &d->cfg.repl,
        .sm = flaredb_server_sm(&d->srv),
        /* a request re-serialized, with the fields the API adds */
        .max_cmd = body_limit(&d->cfg) * 2 + 65536,
        /* entries up to a batch's ~11 KB: the largest segments, so a filled
         * one (a stall of tens of ms, lib/repl.c) comes rarely */
        .segment_bytes = SEGMENT_BYTES,
    };
    flaredb_api_hooks(&rcfg);
    if ((rc = uc_replsvc_create(&d->srv.rs, &rcfg, err)) < 0)
        return rc;
    return flaredb_server_start_reads(&d->srv, err);
}

static int serve(void *p)
{
    struct daemon *d = p;
    struct uc_http_opts opts = {.body_limit = body_limit(&d->cfg)};
    uc_replsvc_http_opts(d->srv.rs, &opts);
    flaredb_api_opts(&d->srv, &opts);
    return uc_daemon_serve(&d->http, &opts, DRAIN_MS);
}

/* Undo whatever was set up, in reverse; safe on a partly built daemon. The
 * raft member stops first (answering its pending requests; no barrier
 * fires after it), then the read threads finish what is queued, and only
 * then does the HTTP server go with the requests they answer. */
static void teardown(void *p)
{
    struct daemon *d = p;
    uc_replsvc_stop(d->srv.rs);
    if (d->srv_ready)
        flaredb_server_stop_reads(&d->srv);
    uc_http_destroy(d->http);
    uc_replsvc_destroy(d->srv.rs);
    d->srv.rs = NULL;
    if (d->srv_ready)
        flaredb_server_deinit(&d->srv);
}

int main(int argc, char **argv)
{
    static const struct uc_daemon_spec spec = {
        .service = "flaredb",
        .opts = options,
        .cfg_offset = offsetof(struct daemon, cfg),
        .log_level_offset = offsetof(struct fdb_config, repl.log_level),
        .open = open_state,
        .serve = serve,
        .teardown = teardown,
    };
    struct daemon d = {0};
    /* SQLite's allocation statistics take a global mutex on every malloc,
     * which every apply and read would contend on; flaredb reads none */
    if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK)
        fprintf(stderr, "flaredb: SQLite memory statistics stay on\n");
    return uc_daemon_main(&spec, &d, argc, argv);
}
