/* main.c - the chainfire daemon's start-up order: signals, options, log,
 * store, token verifier, raft member, lease-expiry thread, HTTP server; then
 * wait for SIGTERM, drain and tear down in reverse. All state lives in
 * struct daemon on main's stack. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "server.h"
#include "uc/alloc.h"
#include "uc/auth.h"
#include "uc/config.h"
#include "uc/daemon.h"
#include "uc/http.h"
#include "uc/httpc.h"
#include "uc/log.h"

#define EXIT_CONFIG 2
#define DRAIN_MS 10000

struct cf_config {
    int64_t node_id;
    char *listen;
    int64_t port;
    char *raft_address;
    char *raft_bind;
    char *data_dir;
    char *initial_cluster;
    char *peer_urls;
    bool bootstrap;
    char *iam_jwks_url;
    int64_t request_timeout_ms;
    int64_t max_key_bytes;
    int64_t max_value_bytes;
    int64_t election_timeout_ms;
    int64_t heartbeat_ms;
    int64_t snapshot_threshold;
    int64_t compact_retain;
    int64_t threads;
    char *log_level;
    bool access_log;
};

#define OPT(n, t, f, d, lo, hi, req, h)                                                            \
    {                                                                                              \
        n, t, offsetof(struct cf_config, f), d, lo, hi, req, h                                     \
    }
static const struct uc_config_opt options[] = {
    OPT("node-id", UC_CFG_INT, node_id, NULL, 1, INT64_MAX, true, "this member's raft id (> 0)"),
    OPT("listen", UC_CFG_STRING, listen, "127.0.0.1", 0, 0, false, "API bind address"),
    OPT("port", UC_CFG_INT, port, "7200", 1, 65535, false, "API port"),
    OPT("raft-address", UC_CFG_STRING, raft_address, "127.0.0.1:7201", 0, 0, false,
        "host:port the other members reach this one's raft at"),
    OPT("raft-bind", UC_CFG_STRING, raft_bind, NULL, 0, 0, false,
        "ip:port raft listens on (default: --raft-address)"),
    OPT("data-dir", UC_CFG_STRING, data_dir, "/var/lib/ultracloud/chainfire", 0, 0, false,
        "raft log and snapshots (created 0700)"),
    OPT("initial-cluster", UC_CFG_STRING, initial_cluster, NULL, 0, 0, false,
        "first voters as id=host:port,... (used only on an empty data dir)"),
    OPT("peer-urls", UC_CFG_STRING, peer_urls, NULL, 0, 0, false,
        "API URLs of the members as id=http://host:port,...: followers forward writes and "
        "linearizable reads to the leader's (absent: they answer 503 naming the leader)"),
    OPT("bootstrap", UC_CFG_BOOL, bootstrap, "true", 0, 0, false,
        "bootstrap from --initial-cluster when the data dir is empty; false to wait to be added"),
    OPT("iam-jwks-url", UC_CFG_STRING, iam_jwks_url, NULL, 0, 0, true,
        "IAM's key set, e.g. http://127.0.0.1:7100/api/v1/keys"),
    OPT("request-timeout-ms", UC_CFG_INT, request_timeout_ms, "5000", 100, 600000, false,
        "deadline of one write or linearizable read"),
    OPT("max-key-bytes", UC_CFG_INT, max_key_bytes, "1536", 1, 65536, false, "longest key"),
    OPT("max-value-bytes", UC_CFG_INT, max_value_bytes, "1048576", 1, 16777216, false,
        "longest value"),
    OPT("election-timeout-ms", UC_CFG_INT, election_timeout_ms, "1000", 50, 60000, false,
        "raft election timeout"),
    OPT("heartbeat-ms", UC_CFG_INT, heartbeat_ms, "100", 10, 10000, false, "raft heartbeat"),
    OPT("snapshot-threshold", UC_CFG_INT, snapshot_threshold, "1024", 2, 10000000, false,
        "entries applied between snapshots"),
    OPT("compact-retain", UC_CFG_INT, compact_retain, "10000", 0, INT64_MAX, false,
        "revisions of history the leader keeps; older ones are compacted (0: never)"),
    OPT("threads", UC_CFG_INT, threads, "4", 1, 64, false, "HTTP worker threads"),
    OPT("log-level", UC_CFG_STRING, log_level, "info", 0, 0, false, "debug, info, warn or error"),
    OPT("access-log", UC_CFG_BOOL, access_log, "false", 0, 0, false, "log one line per request"),
    {NULL},
};

struct daemon {
    struct cf_config cfg;
    struct chainfire_server srv;
    bool srv_ready;
    bool httpc_ready;
    struct uc_auth_verifier *verifier;
    struct uc_repl_member peers[UC_REPL_MAX_MEMBERS];
    size_t npeers;
    struct uc_http_server *http;
    char err[UC_ERR_LEN];
};

/* One "id=host:port" item of --initial-cluster into d->peers. */
static int parse_peer(struct daemon *d, const char *item, size_t len)
{
    char buf[UC_REPL_ADDR_LEN + 32], *end;
    if (len >= sizeof(buf) || d->npeers == UC_REPL_MAX_MEMBERS)
        return uc_err_set(d->err, UC_EINVAL, "--initial-cluster: too long or too many members");
    memcpy(buf, item, len);
    buf[len] = '\0';
    char *eq = strchr(buf, '=');
    unsigned long long id = eq ? strtoull(buf, &end, 10) : 0;
    if (!eq || end != eq || id == 0 || !eq[1] || strlen(eq + 1) >= UC_REPL_ADDR_LEN)
        return uc_err_set(d->err, UC_EINVAL, "--initial-cluster: '%s' is not id=host:port", buf);
    struct uc_repl_member *m = &d->peers[d->npeers++];
    m->id = id;
    m->role = UC_REPL_VOTER;
    snprintf(m->addr, sizeof(m->addr), "%s", eq + 1);
    return 0;
}

static int parse_cluster(struct daemon *d)
{
    const char *s = d->cfg.initial_cluster;
    if (!d->cfg.bootstrap)
        return 0;
    if (!s || !s[0]) { /* a single-member cluster of this member */
        d->peers[0] =
            (struct uc_repl_member){.id = (uint64_t)d->cfg.node_id, .role = UC_REPL_VOTER};
        snprintf(d->peers[0].addr, sizeof(d->peers[0].addr), "%s", d->cfg.raft_address);
        d->npeers = 1;
        return 0;
    }
    while (*s) {
        size_t len = strcspn(s, ",");
        int rc = parse_peer(d, s, len);
        if (rc < 0)
            return rc;
        s += len + (s[len] == ',');
    }
    return 0;
}

/* One "id=http://host:port" item of --peer-urls into the server. */
static int parse_url(struct daemon *d, const char *item, size_t len)
{
    struct chainfire_server *s = &d->srv;
    char buf[CHAINFIRE_URL_LEN + 32], *end;
    if (len >= sizeof(buf) || s->npeers == UC_REPL_MAX_MEMBERS)
        return uc_err_set(d->err, UC_EINVAL, "--peer-urls: too long or too many members");
    memcpy(buf, item, len);
    buf[len] = '\0';
    char *eq = strchr(buf, '=');
    unsigned long long id = eq ? strtoull(buf, &end, 10) : 0;
    if (!eq || end != eq || id == 0 || strncmp(eq + 1, "http", 4) != 0 ||
        strlen(eq + 1) >= CHAINFIRE_URL_LEN)
        return uc_err_set(d->err, UC_EINVAL, "--peer-urls: '%s' is not id=http://host:port", buf);
    struct chainfire_peer_url *p = &s->peers[s->npeers++];
    p->id = id;
    snprintf(p->url, sizeof(p->url), "%s", eq + 1);
    size_t n = strlen(p->url);
    if (n && p->url[n - 1] == '/')
        p->url[n - 1] = '\0';
    return 0;
}

static int parse_urls(struct daemon *d)
{
    const char *s = d->cfg.peer_urls;
    while (s && *s) {
        size_t len = strcspn(s, ",");
        int rc = parse_url(d, s, len);
        if (rc < 0)
            return rc;
        s += len + (s[len] == ',');
    }
    return 0;
}

/* Store, token verifier, raft member and lease expiry. */
static int open_state(struct daemon *d)
{
    struct chainfire_server *s = &d->srv;
    int rc = chainfire_server_init(s, d->err);
    if (rc < 0)
        return rc;
    d->srv_ready = true;
    s->limits.max_key = (size_t)d->cfg.max_key_bytes;
    s->limits.max_value = (size_t)d->cfg.max_value_bytes;
    s->timeout_ms = d->cfg.request_timeout_ms;
    s->compact_retain = d->cfg.compact_retain;
    s->id = (uint64_t)d->cfg.node_id;
    if ((rc = uc_httpc_global_init()) < 0)
        return uc_err_set(d->err, rc, "cannot set up the HTTP client");
    d->httpc_ready = true;
    struct uc_auth_verifier_opts vo = {.jwks_url = d->cfg.iam_jwks_url, .leeway_s = 30};
    if ((rc = uc_auth_verifier_create(&d->verifier, &vo, d->err)) < 0)
        return uc_err_prefix(d->err, rc, "--iam-jwks-url");
    if ((rc = parse_cluster(d)) < 0 || (rc = parse_urls(d)) < 0)
        return rc;
    struct uc_repl_config rc_cfg = {
        .id = (uint64_t)d->cfg.node_id,
        .address = d->cfg.raft_address,
        .bind_address = d->cfg.raft_bind,
        .data_dir = d->cfg.data_dir,
        .sm = chainfire_server_sm(s),
        .bootstrap = d->npeers ? d->peers : NULL,
        .n_bootstrap = d->npeers,
        .election_timeout_ms = (unsigned)d->cfg.election_timeout_ms,
        .heartbeat_ms = (unsigned)d->cfg.heartbeat_ms,
        .snapshot_threshold = (unsigned)d->cfg.snapshot_threshold,
        .max_cmd = (size_t)d->cfg.max_value_bytes * 2 + 65536,
    };
    if ((rc = uc_repl_create(&s->repl, &rc_cfg, d->err)) < 0)
        return uc_err_prefix(d->err, rc, "raft");
    if ((rc = chainfire_server_start_expiry(s, d->err)) < 0)
        return rc;
    uc_info("member %lld, raft at %s, data in %s", (long long)d->cfg.node_id, d->cfg.raft_address,
            d->cfg.data_dir);
    return 0;
}

static int serve(struct daemon *d)
{
    struct uc_http_opts opts = {
        .service = "chainfire",
        .bind_addr = d->cfg.listen,
        .port = (uint16_t)d->cfg.port,
        .threads = (unsigned)d->cfg.threads,
        .access_log = d->cfg.access_log,
        /* A value is sent as base64url inside JSON: 4/3 of it plus room. */
        .body_limit = (size_t)d->cfg.max_value_bytes / 3 * 4 + 65536,
        .authn = uc_auth_http_authn,
        .authn_ctx = d->verifier,
    };
    chainfire_api_opts(&d->srv, &opts);
    return uc_daemon_serve(&d->http, &opts, DRAIN_MS);
}

/* Undo whatever was set up, in reverse; safe on a partly built daemon.
 * The raft member stops (answering its pending requests) before the HTTP
 * server goes, and the expiry thread before the member it proposes to. */
static void teardown(struct daemon *d)
{
    if (d->srv_ready)
        chainfire_server_stop_expiry(&d->srv);
    uc_repl_stop(d->srv.repl);
    uc_http_destroy(d->http);
    uc_repl_destroy(d->srv.repl);
    d->srv.repl = NULL;
    uc_auth_verifier_destroy(d->verifier);
    if (d->httpc_ready)
        uc_httpc_global_cleanup();
    if (d->srv_ready)
        chainfire_server_deinit(&d->srv);
    uc_config_free(&d->cfg, options);
}

int main(int argc, char **argv)
{
    struct daemon d = {0};
    int code = 0, rc;
    if (uc_daemon_init() < 0) {
        fprintf(stderr, "chainfire: cannot set up signal handling\n");
        return 1;
    }
    uc_alloc_install_jansson();
    rc = uc_daemon_config(&d.cfg, options, "chainfire", offsetof(struct cf_config, log_level), argc,
                          argv);
    if (rc == UC_EHELP)
        return 0;
    if (rc < 0)
        return EXIT_CONFIG; /* uc_config_load left nothing to free */
    if ((rc = open_state(&d)) < 0) {
        uc_error("%s", d.err);
        code = rc == UC_EINVAL ? EXIT_CONFIG : 1;
    } else if (serve(&d) < 0) {
        code = 1;
    }
    teardown(&d);
    return code;
}
