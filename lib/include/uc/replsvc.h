/* uc/replsvc.h - what every replicated service (chainfire, flaredb) shares on
 * top of uc/repl.h: the common start-up options, a state-machine wrapper that
 * replicates the module's own records (each member's API URL, a restore from
 * backup) beside the service's commands, forwarding to the leader, and the
 * /api/v1/cluster routes (status, members, leader, backup).
 *
 * The one idea: every log entry starts with a one-byte tag. The service only
 * ever sees its own commands (uc_replsvc_propose adds the tag, the wrapper
 * strips it); the module's records ride the same log, so every member agrees
 * on who may be forwarded to and whether a restore happened.
 *
 * How a handler reaches the module: the service's handler ctx (uc_http_opts
 * .ctx) is a struct whose FIRST member is `struct uc_replsvc *`; the cluster
 * handlers below read it from there. Thread-safety: every function may be
 * called from any thread, except create/stop/destroy (main's thread). */
#ifndef UC_REPLSVC_H
#define UC_REPLSVC_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "uc/auth.h"
#include "uc/config.h"
#include "uc/crypto.h"
#include "uc/err.h"
#include "uc/http.h"
#include "uc/repl.h"

#define UC_REPLSVC_URL_LEN 256     /* an API URL with its NUL */
#define UC_REPLSVC_SERVICE_LEN 32  /* a service name with its NUL */
#define UC_REPLSVC_BACKUP_HDR 96   /* bytes of the header in front of a backup */
#define UC_REPLSVC_RESTORE_HDR 128 /* room a restore record needs beside the payload */
/* Largest service snapshot a backup may carry: the restore record holding it
 * must fit in one log command (UC_REPL_MAX_CMD, 64 MiB). */
#define UC_REPLSVC_MAX_BACKUP (UC_REPL_MAX_CMD - UC_REPLSVC_RESTORE_HDR)

/* ---- start-up options ------------------------------------------------------ */

/* The options every replicated service takes. Embed it in the service's
 * config struct and list UC_REPLSVC_CONFIG_OPTS in its option table; the
 * strings belong to that struct (uc_config_free). */
struct uc_replsvc_opts {
    int64_t node_id;
    char *listen;
    int64_t port;
    char *advertise_url; /* NULL: http://<listen>:<port> */
    char *raft_address;
    char *raft_bind;
    char *data_dir;
    char *initial_cluster;
    bool bootstrap;
    char *restore_from;
    char *iam_jwks_url;
    int64_t request_timeout_ms;
    int64_t election_timeout_ms;
    int64_t heartbeat_ms;
    int64_t snapshot_threshold;
    int64_t threads;
    char *log_level;
    bool access_log;
};

#define UC_REPLSVC_OPT_(type, f, n, t, d, lo, hi, req, h)                                          \
    {                                                                                              \
        n, t, offsetof(type, f), d, lo, hi, req, h                                                 \
    }
/* The uc_config_opt rows of struct uc_replsvc_opts, for a service's table:
 *   UC_REPLSVC_CONFIG_OPTS(struct cf_config, repl, "chainfire", "7200", "7201", "100000"),
 * `field` names the embedded struct uc_replsvc_opts; `svc`, `api_port` and
 * `raft_port` are string literals giving the defaults (data dir
 * /var/lib/ultracloud/<svc>, port <api_port>, raft 127.0.0.1:<raft_port>).
 * Expands to rows only (no terminator). */
#define UC_REPLSVC_CONFIG_OPTS(type, field, svc, api_port, raft_port, snapshot_default)            \
    UC_REPLSVC_OPT_(type, field.node_id, "node-id", UC_CFG_INT, NULL, 1, INT64_MAX, true,          \
                    "this member's raft id (> 0), never reused"),                                  \
        UC_REPLSVC_OPT_(type, field.listen, "listen", UC_CFG_STRING, "127.0.0.1", 0, 0, false,     \
                        "API bind address"),                                                       \
        UC_REPLSVC_OPT_(type, field.port, "port", UC_CFG_INT, api_port, 1, 65535, false,           \
                        "API port"),                                                               \
        UC_REPLSVC_OPT_(type, field.advertise_url, "advertise-url", UC_CFG_STRING, NULL, 0, 0,     \
                        false,                                                                     \
                        "URL the other members reach this member's API at, published through "     \
                        "the log so followers can forward to it (default http://<listen>:<port>; " \
                        "required when --listen is 0.0.0.0 or ::)"),                               \
        UC_REPLSVC_OPT_(type, field.raft_address, "raft-address", UC_CFG_STRING,                   \
                        "127.0.0.1:" raft_port, 0, 0, false,                                       \
                        "host:port the other members reach this one's raft at"),                   \
        UC_REPLSVC_OPT_(type, field.raft_bind, "raft-bind", UC_CFG_STRING, NULL, 0, 0, false,      \
                        "ip:port raft listens on (default: --raft-address)"),                      \
        UC_REPLSVC_OPT_(type, field.data_dir, "data-dir", UC_CFG_STRING,                           \
                        "/var/lib/ultracloud/" svc, 0, 0, false,                                   \
                        "raft log and snapshots (created 0700)"),                                  \
        UC_REPLSVC_OPT_(type, field.initial_cluster, "initial-cluster", UC_CFG_STRING, NULL, 0, 0, \
                        false,                                                                     \
                        "first voters as id=host:port,... (used only on an empty data dir; "       \
                        "absent: a one-member cluster of this member)"),                           \
        UC_REPLSVC_OPT_(type, field.bootstrap, "bootstrap", UC_CFG_BOOL, "true", 0, 0, false,      \
                        "bootstrap from --initial-cluster when the data dir is empty; false to "   \
                        "wait to be added"),                                                       \
        UC_REPLSVC_OPT_(type, field.restore_from, "restore-from", UC_CFG_STRING, NULL, 0, 0,       \
                        false,                                                                     \
                        "backup file (GET /api/v1/cluster/backup) to load into a new, empty "      \
                        "cluster once this member leads it"),                                      \
        UC_REPLSVC_OPT_(type, field.iam_jwks_url, "iam-jwks-url", UC_CFG_STRING, NULL, 0, 0, true, \
                        "IAM's key set, e.g. http://127.0.0.1:7100/api/v1/keys"),                  \
        UC_REPLSVC_OPT_(type, field.request_timeout_ms, "request-timeout-ms", UC_CFG_INT, "5000",  \
                        100, 600000, false, "deadline of one write or linearizable read"),         \
        UC_REPLSVC_OPT_(type, field.election_timeout_ms, "election-timeout-ms", UC_CFG_INT,        \
                        "1000", 50, 60000, false, "raft election timeout"),                        \
        UC_REPLSVC_OPT_(type, field.heartbeat_ms, "heartbeat-ms", UC_CFG_INT, "100", 10, 10000,    \
                        false, "raft heartbeat"),                                                  \
        UC_REPLSVC_OPT_(type, field.snapshot_threshold, "snapshot-threshold", UC_CFG_INT,          \
                        snapshot_default, 2, 10000000, false,                                      \
                        "entries applied between snapshots"),                                      \
        UC_REPLSVC_OPT_(type, field.threads, "threads", UC_CFG_INT, "4", 1, 64, false,             \
                        "HTTP worker threads"),                                                    \
        UC_REPLSVC_OPT_(type, field.log_level, "log-level", UC_CFG_STRING, "info", 0, 0, false,    \
                        "debug, info, warn or error"),                                             \
        UC_REPLSVC_OPT_(type, field.access_log, "access-log", UC_CFG_BOOL, "false", 0, 0, false,   \
                        "log one line per request")

/* Parse --initial-cluster "id=host:port,..." into out[0..*n) as voters.
 * Ids are integers > 0, each id and address at most once, at most `max`
 * members. On failure *n and out are untouched.
 * Errors: UC_EINVAL ("--initial-cluster: 'x' is not id=host:port", "... too
 * many members", "... member 2 is listed twice"). */
UC_MUSTCHECK int uc_replsvc_parse_cluster(const char *spec, struct uc_repl_member *out, size_t max,
                                          size_t *n, char err[UC_ERR_LEN]);

/* This member's API URL: --advertise-url without a trailing '/', else
 * http://<listen>:<port> (IPv6 in brackets). On failure out is "".
 * Errors: UC_EINVAL (not http:// or https://, spaces or control characters,
 * too long; no --advertise-url while --listen is 0.0.0.0 or ::). */
UC_MUSTCHECK int uc_replsvc_advertise_url(const struct uc_replsvc_opts *o,
                                          char out[UC_REPLSVC_URL_LEN], char err[UC_ERR_LEN]);

/* ---- the replicated service -------------------------------------------------- */

struct uc_replsvc; /* opaque */

struct uc_replsvc_config {
    /* "chainfire": log lines, metric names (<service>_is_leader), the leader
     * header (X-Chainfire-Leader) and the backup header. 1-31 of [a-z0-9-].
     * Borrowed for the module's life (a string literal). */
    const char *service;
    const struct uc_replsvc_opts *opts; /* read during create only */
    struct uc_repl_sm sm;               /* the service's; sm.ctx borrowed until destroy */
    size_t max_cmd;                     /* largest service command; 0: UC_REPL_DEFAULT_CMD */
    size_t segment_bytes;               /* raft log segment size; 0: uc_repl's choice */
    /* Query parameters a forwarded request keeps (besides forwarded=1),
     * NULL-terminated; NULL: none. Borrowed for the module's life. */
    const char *const *forward_query;
    /* GET /api/v1/cluster/status: add the service's fields to `out`
     * (borrowed); ctx is the handler ctx (uc_http_opts.ctx); any thread.
     * May be NULL. Returns 0 or UC_ENOMEM. */
    int (*status)(void *ctx, json_t *out);
    /* GET /metrics: the service's own lines after the module's, with the
     * handler ctx; may be NULL. */
    void (*metrics)(void *ctx, FILE *out);
};

/* Start the member: parse --initial-cluster, work out the advertised URL,
 * read and check the --restore-from file, create the IAM token verifier and
 * the uc_repl member (on the wrapped state machine; sm.restore is called on
 * this thread when the data dir holds a snapshot), and start the thread
 * that publishes this member's URL and proposes the restore while it leads.
 * Takes its own uc_httpc_global_init (libcurl counts them; verifier and
 * forwarding use it), released by uc_replsvc_destroy.
 * On success *out owns everything (stop with uc_replsvc_stop, free with
 * uc_replsvc_destroy); on failure nothing is left running and *out is
 * untouched. Errors: UC_EINVAL (a bad option, a bad backup file: exit 2),
 * UC_EBUSY, UC_EIO and UC_ENOMEM as uc_repl_create, or as
 * uc_auth_verifier_create; err names the option or file. */
UC_MUSTCHECK int uc_replsvc_create(struct uc_replsvc **out, const struct uc_replsvc_config *cfg,
                                   char err[UC_ERR_LEN]);

/* Stop the publishing thread, then the raft member (pending requests are
 * answered as uc_repl_stop says). Idempotent; NULL is a no-op. Stop the
 * service's own threads that propose before this. */
void uc_replsvc_stop(struct uc_replsvc *rs);

/* Stop if needed, then free; NULL is a no-op. */
void uc_replsvc_destroy(struct uc_replsvc *rs);

/* The raft member, for status and the calls this module does not wrap
 * (borrowed until destroy). Do not propose through it directly: the
 * wrapper would not recognise the command (use uc_replsvc_propose). */
struct uc_repl *uc_replsvc_repl(struct uc_replsvc *rs);

/* Fill the common uc_http_opts fields: service, bind_addr, port, threads,
 * access_log, authn/authn_ctx (the IAM verifier), ready (503 while the
 * raft member is not running) and metrics (the module's figures, then
 * cfg->metrics). The caller sets routes, nroutes, ctx and body_limit; ctx
 * must start with the struct uc_replsvc pointer. */
void uc_replsvc_http_opts(struct uc_replsvc *rs, struct uc_http_opts *opts);

/* now + --request-timeout-ms on the uc_clock_mono_ms scale. */
int64_t uc_replsvc_deadline(const struct uc_replsvc *rs);

/* Propose a service command (`len` bytes at `cmd`, copied) with the request
 * deadline; sm.apply sees exactly these bytes. Returns and calls back as
 * uc_repl_propose. Errors: those of uc_repl_propose; UC_E2BIG above max_cmd. */
UC_MUSTCHECK int uc_replsvc_propose(struct uc_replsvc *rs, const void *cmd, size_t len,
                                    uc_repl_cb cb, void *cb_ctx, char err[UC_ERR_LEN]);

/* uc_repl_read_barrier with the request deadline. */
UC_MUSTCHECK int uc_replsvc_read_barrier(struct uc_replsvc *rs, uc_repl_cb cb, void *cb_ctx,
                                         char err[UC_ERR_LEN]);

/* Forward `req` to the leader when this member is a follower that knows the
 * leader's API URL and the request was not forwarded already: the same
 * method, path, body, bearer token and the cfg->forward_query parameters
 * plus forwarded=1 go to the leader, and its status and body are relayed
 * with X-<Service>-Leader: <id> (a failed hop answers 503 naming the
 * leader). Blocks the calling thread up to the request timeout. Returns
 * true when the request was answered so, false when the caller must handle
 * it itself (this member leads, no leader or URL is known, or the request
 * came forwarded: it then typically gets a 503 through
 * uc_replsvc_reply_error). */
bool uc_replsvc_forward(struct uc_replsvc *rs, struct uc_http_req *req);

/* Answer a failed uc_repl request `d` (status < 0): its code and message,
 * with X-<Service>-Leader when a leader is known, and "(the write may still
 * be applied)" appended when d->unknown. */
void uc_replsvc_reply_error(struct uc_replsvc *rs, struct uc_http_req *req,
                            const struct uc_repl_done *d);

/* ---- the cluster routes -------------------------------------------------------- */

/* Handlers for the service's route table (ctx as described at the top).
 * Changes and the backup are forwarded to the leader; status and members
 * answer from this member's view. See docs/api/chainfire.md. */
int uc_replsvc_h_status(struct uc_http_req *req, void *ctx);         /* GET  .../status */
int uc_replsvc_h_members(struct uc_http_req *req, void *ctx);        /* GET  .../members */
int uc_replsvc_h_member_add(struct uc_http_req *req, void *ctx);     /* POST .../members */
int uc_replsvc_h_member_promote(struct uc_http_req *req, void *ctx); /* POST .../{id}/promote */
int uc_replsvc_h_member_remove(struct uc_http_req *req, void *ctx);  /* DELETE .../{id} */
int uc_replsvc_h_member_replace(struct uc_http_req *req, void *ctx); /* PUT .../{id} */
int uc_replsvc_h_leader(struct uc_http_req *req, void *ctx);         /* POST .../leader */
int uc_replsvc_h_backup(struct uc_http_req *req, void *ctx);         /* GET  .../backup */

/* The route rows for the handlers above, all system-admin; list them in the
 * service's table (no terminator). */
#define UC_REPLSVC_ROUTES                                                                          \
    {"GET", "/api/v1/cluster/status", uc_replsvc_h_status, 0, UC_ROLE_SYSTEM_ADMIN, 0},            \
        {"GET", "/api/v1/cluster/members", uc_replsvc_h_members, 0, UC_ROLE_SYSTEM_ADMIN, 0},      \
        {"POST",       "/api/v1/cluster/members", uc_replsvc_h_member_add,                         \
         UC_HTTP_JSON, UC_ROLE_SYSTEM_ADMIN,      0},                                              \
        {"POST",                                                                                   \
         "/api/v1/cluster/members/{id}/promote",                                                   \
         uc_replsvc_h_member_promote,                                                              \
         0,                                                                                        \
         UC_ROLE_SYSTEM_ADMIN,                                                                     \
         0},                                                                                       \
        {"DELETE", "/api/v1/cluster/members/{id}", uc_replsvc_h_member_remove,                     \
         0,        UC_ROLE_SYSTEM_ADMIN,           0},                                             \
        {"PUT",        "/api/v1/cluster/members/{id}", uc_replsvc_h_member_replace,                \
         UC_HTTP_JSON, UC_ROLE_SYSTEM_ADMIN,           0},                                         \
        {"POST",       "/api/v1/cluster/leader", uc_replsvc_h_leader,                              \
         UC_HTTP_JSON, UC_ROLE_SYSTEM_ADMIN,     0},                                               \
    {                                                                                              \
        "GET", "/api/v1/cluster/backup", uc_replsvc_h_backup, 0, UC_ROLE_SYSTEM_ADMIN, 0           \
    }

/* ---- backup files ---------------------------------------------------------------- */

/* What a backup header says. */
struct uc_replsvc_backup_info {
    char service[UC_REPLSVC_SERVICE_LEN];
    uint64_t index;                /* log index the snapshot was taken at */
    uint64_t len;                  /* payload bytes after the header */
    uint8_t sha256[UC_SHA256_LEN]; /* of the payload */
};

/* Write the UC_REPLSVC_BACKUP_HDR-byte header for `len` payload bytes at
 * `payload` (borrowed) of `service`, taken at `index`: magic "ucbackup",
 * format version 1, service name, index, length, SHA-256, all little-endian.
 * Errors: UC_EINVAL (service name empty or too long), UC_ECRYPTO. */
UC_MUSTCHECK int uc_replsvc_backup_header(uint8_t hdr[UC_REPLSVC_BACKUP_HDR], const char *service,
                                          uint64_t index, const void *payload, size_t len);

/* Check a whole backup file image (`len` bytes at `buf`): magic, version,
 * that it was taken of `service`, the length and the checksum. On success
 * *info describes it and the payload is buf + UC_REPLSVC_BACKUP_HDR.
 * Errors: UC_EINVAL with what is wrong ("not a backup file", "a backup of
 * flaredb, not chainfire", "truncated: ...", "checksum mismatch"),
 * UC_E2BIG (payload above UC_REPLSVC_MAX_BACKUP), UC_ECRYPTO. */
UC_MUSTCHECK int uc_replsvc_backup_verify(const void *buf, size_t len, const char *service,
                                          struct uc_replsvc_backup_info *info,
                                          char err[UC_ERR_LEN]);

#endif /* UC_REPLSVC_H */
