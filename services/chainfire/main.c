/* main.c - the chainfire daemon's start-up order: signals, options, log,
 * store, HTTP client, replicated-service module (token verifier and raft
 * member), lease-expiry thread, HTTP server; then wait for SIGTERM, drain
 * and tear down in reverse. All state lives in struct daemon on main's
 * stack. */
#include <stddef.h>

#include "api.h"
#include "server.h"
#include "uc/config.h"
#include "uc/daemon.h"
#include "uc/http.h"
#include "uc/replsvc.h"

#define DRAIN_MS 10000
/* etcd's --snapshot-count, not the replicated services' shared 10000: each
 * snapshot stalls a member for tens of ms (lib/repl.c, segment_size), and
 * chainfire's entries are small (docs/operations.md, "Snapshots, log and
 * compaction", says what it costs). */
#define SNAPSHOT_THRESHOLD "100000"

struct cf_config {
    struct uc_replsvc_opts repl;
    int64_t max_key_bytes;
    int64_t max_value_bytes;
    int64_t compact_retain;
    int64_t max_watches;
};

#define OPT(n, t, f, d, lo, hi, req, h)                                                            \
    {                                                                                              \
        n, t, offsetof(struct cf_config, f), d, lo, hi, req, h                                     \
    }
static const struct uc_config_opt options[] = {
    UC_REPLSVC_CONFIG_OPTS(struct cf_config, repl, "chainfire", "7200", "7201", SNAPSHOT_THRESHOLD),
    OPT("max-key-bytes", UC_CFG_INT, max_key_bytes, "1536", 1, 65536, false, "longest key"),
    OPT("max-value-bytes", UC_CFG_INT, max_value_bytes, "1048576", 1, 16777216, false,
        "longest value"),
    OPT("compact-retain", UC_CFG_INT, compact_retain, "10000", 0, INT64_MAX, false,
        "revisions of history the leader keeps; older ones are compacted (0: never)"),
    OPT("max-watches", UC_CFG_INT, max_watches, "1024", 1, 1000000, false,
        "watch streams this member serves at once; more get 429"),
    {NULL},
};

struct daemon {
    struct cf_config cfg;
    struct chainfire_server srv;
    bool srv_ready;
    struct uc_http_server *http;
};

/* Store, replicated-service module and lease expiry. */
static int open_state(void *p, char err[UC_ERR_LEN])
{
    struct daemon *d = p;
    struct chainfire_server *s = &d->srv;
    int rc = chainfire_server_init(s, err);
    if (rc < 0)
        return rc;
    d->srv_ready = true;
    s->limits.max_key = (size_t)d->cfg.max_key_bytes;
    s->limits.max_value = (size_t)d->cfg.max_value_bytes;
    s->compact_retain = d->cfg.compact_retain;
    s->max_watches = (unsigned)d->cfg.max_watches;
    struct uc_replsvc_config rcfg = {
        .service = "chainfire",
        .opts = &d->cfg.repl,
        .sm = chainfire_server_sm(s),
        /* A value travels base64url-encoded inside a JSON command. */
        .max_cmd = (size_t)d->cfg.max_value_bytes * 2 + 65536,
    };
    chainfire_api_hooks(&rcfg);
    if ((rc = uc_replsvc_create(&s->rs, &rcfg, err)) < 0)
        return rc;
    return chainfire_server_start_expiry(s, err);
}

static int serve(void *p)
{
    struct daemon *d = p;
    struct uc_http_opts opts = {
        /* A value is sent as base64url inside JSON: 4/3 of it plus room. */
        .body_limit = (size_t)d->cfg.max_value_bytes / 3 * 4 + 65536,
    };
    uc_replsvc_http_opts(d->srv.rs, &opts);
    chainfire_api_opts(&d->srv, &opts);
    return uc_daemon_serve(&d->http, &opts, DRAIN_MS);
}

/* Undo whatever was set up, in reverse; safe on a partly built daemon.
 * The raft member stops (answering its pending requests) before the HTTP
 * server goes, and the expiry thread before the member it proposes to. */
static void teardown(void *p)
{
    struct daemon *d = p;
    if (d->srv_ready)
        chainfire_server_stop_expiry(&d->srv);
    uc_replsvc_stop(d->srv.rs);
    uc_http_destroy(d->http);
    uc_replsvc_destroy(d->srv.rs);
    d->srv.rs = NULL;
    if (d->srv_ready)
        chainfire_server_deinit(&d->srv);
}

int main(int argc, char **argv)
{
    static const struct uc_daemon_spec spec = {
        .service = "chainfire",
        .opts = options,
        .cfg_offset = offsetof(struct daemon, cfg),
        .log_level_offset = offsetof(struct cf_config, repl.log_level),
        .open = open_state,
        .serve = serve,
        .teardown = teardown,
    };
    struct daemon d = {0};
    return uc_daemon_main(&spec, &d, argc, argv);
}
