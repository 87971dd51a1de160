/* server.h - struct flaredb_server: one flaredb member (its database, its
 * replicated-service module, the threads that run reads once a read barrier
 * passed, the cache of project restrictions and the counters behind
 * /metrics). Built in main.c and handed to every handler through
 * uc_http_opts.ctx.
 *
 * The one idea: raft's loop thread never runs SQL it can avoid. It applies
 * entries (it must), but a linearizable read only waits there for its
 * barrier and then goes to a read thread, so a slow query cannot delay
 * heartbeats. Thread-safety: every function but init, start_reads,
 * stop_reads and deinit (main's thread) may be called from any thread. */
#ifndef FLAREDB_SERVER_H
#define FLAREDB_SERVER_H
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "uc/auth.h"
#include "uc/http.h"
#include "uc/replsvc.h"

/* KV operations, for the flaredb_kv_ops_total metric. */
enum flaredb_kv_op {
    FLAREDB_KV_GET,
    FLAREDB_KV_SCAN,
    FLAREDB_KV_PUT,
    FLAREDB_KV_DELETE,
    FLAREDB_KV_TXN,
    FLAREDB_KV_NOPS
};

struct flaredb_read; /* a read waiting for a read thread (server_reads.c) */

struct flaredb_server {
    /* First member: the cluster routes of uc/replsvc.h find the module here.
     * Thread-safe; NULL until started. */
    struct uc_replsvc *rs;
    struct flaredb_db *db; /* thread-safe as db.h says */
    int64_t max_steps;     /* VM steps one statement of a write may take */

    /* reads after a barrier: a FIFO served by nthreads threads */
    pthread_mutex_t read_mu;
    pthread_cond_t read_cv;
    struct flaredb_read *head, *tail; /* guarded by read_mu */
    bool read_stop;                   /* guarded by read_mu */
    pthread_t *threads;
    unsigned nthreads, nstarted;

    /* project restrictions as of acl_gen (flaredb_db_acl_list's items) */
    pthread_mutex_t acl_mu;
    json_t *acl; /* guarded by acl_mu; NULL until first needed */
    uint64_t acl_gen;

    /* counters for /metrics */
    atomic_ulong sql_requests[FLAREDB_DB_DDL_DESTRUCTIVE + 1]; /* by request class */
    atomic_ulong statements[FLAREDB_DB_DDL_DESTRUCTIVE + 1];   /* by their request's class */
    atomic_ulong sql_rejected; /* refused before the log or a read ran */
    atomic_ulong kv_ops[FLAREDB_KV_NOPS];
};

/* Open the database (`dbcfg`, borrowed for the call) and set up the locks;
 * `read_threads` (>= 1) threads will serve reads. rs stays NULL.
 * Errors: those of flaredb_db_open, UC_EIO (a lock could not be made),
 * UC_ENOMEM. On failure nothing is left. */
UC_MUSTCHECK int flaredb_server_init(struct flaredb_server *s,
                                     const struct flaredb_db_config *dbcfg, unsigned read_threads,
                                     char err[UC_ERR_LEN]);

/* Start the read threads. Errors: UC_EIO (none could start; those that did
 * are stopped again by flaredb_server_stop_reads). */
UC_MUSTCHECK int flaredb_server_start_reads(struct flaredb_server *s, char err[UC_ERR_LEN]);

/* Let the read threads finish the queued reads, then join them; reads that
 * pass their barrier later are answered 503. Call after uc_replsvc_stop
 * (no barrier fires after it) and before uc_http_destroy. Idempotent. */
void flaredb_server_stop_reads(struct flaredb_server *s);

/* Free what init made (main destroys the module first). */
void flaredb_server_deinit(struct flaredb_server *s);

/* The state machine for uc_replsvc_config.sm (the database's). */
struct uc_repl_sm flaredb_server_sm(struct flaredb_server *s);

/* What a read does once it may: runs on a read thread (linearizable) or on
 * the handler's thread (serializable) and answers `req`. `arg` is borrowed
 * for the call; `index` is the log index the read reflects. */
typedef void (*flaredb_read_fn)(struct flaredb_server *s, struct uc_http_req *req, void *arg,
                                uint64_t index);

/* Run `fn(s, req, arg)` now on this member's copy, or, when `linearizable`,
 * after a read barrier on a read thread. `arg` is stolen: `release` frees it
 * once fn ran or the read failed (NULL counts as out of memory). Returns 0
 * when fn already answered, UC_HTTP_ASYNC when it will, or an error the
 * handler returns as is (nothing answered): UC_ENOMEM, or those of
 * uc_replsvc_read_barrier. Forwarding to the leader is the caller's
 * business (uc_replsvc_forward first). */
UC_MUSTCHECK int flaredb_server_read(struct flaredb_server *s, struct uc_http_req *req,
                                     flaredb_read_fn fn, void *arg, void (*release)(void *arg),
                                     bool linearizable);

/* A `release` for a JSON arg (json_decref). */
void flaredb_server_release_json(void *arg);

/* Propose `len` bytes of command JSON (copied) with the request deadline.
 * Returns and calls back as uc_replsvc_propose. */
UC_MUSTCHECK int flaredb_server_propose(struct flaredb_server *s, const char *cmd, size_t len,
                                        uc_repl_cb cb, void *cb_ctx, char err[UC_ERR_LEN]);

/* 0 when caller `c` may reach the namespace or table `name` (`kind` is
 * "namespace" or "table"): it has no restriction, or it is restricted to
 * the project of c's token and c holds a role there, or c is a system
 * admin. Errors: UC_ENOENT ("<kind> '<name>' not found", so a restricted
 * object's existence does not leak), and those of flaredb_db_acl_list. */
UC_MUSTCHECK int flaredb_server_reach(struct flaredb_server *s, const struct uc_auth_claims *c,
                                      const char *kind, const char *name, char err[UC_ERR_LEN]);

/* The tables `c` may not reach: *out is a new array of names (lower case),
 * or NULL when there are none. Errors: those of flaredb_db_acl_list,
 * UC_ENOMEM; *out untouched. */
UC_MUSTCHECK int flaredb_server_hidden(struct flaredb_server *s, const struct uc_auth_claims *c,
                                       json_t **out, char err[UC_ERR_LEN]);

#endif /* FLAREDB_SERVER_H */
