/* server.h - struct chainfire_server: one chainfire member (the replicated
 * KV store, its replicated-service module, the leader's lease clocks). Built
 * in main.c and handed to every handler through uc_http_opts.ctx. The store is guarded by
 * `lock` (raft's loop thread applies, HTTP threads read serializably); the
 * lease clocks by `lease_lock`. */
#ifndef CHAINFIRE_SERVER_H
#define CHAINFIRE_SERVER_H
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "kv.h"
#include "uc/replsvc.h"

/* When the leader lets a lease expire (its own monotonic clock). */
struct chainfire_lease_clock {
    int64_t id;
    int64_t deadline_ms;
    bool revoking; /* a revoke is in flight */
};

struct chainfire_server {
    /* First member: the cluster routes of uc/replsvc.h find the module here.
     * Thread-safe; NULL until started. */
    struct uc_replsvc *rs;
    struct chainfire_kv *kv; /* guarded by lock */
    pthread_mutex_t lock;
    struct chainfire_kv_limits limits;
    pthread_mutex_t lease_lock;
    struct chainfire_lease_clock *clocks; /* guarded by lease_lock */
    size_t nclocks, cclocks;
    pthread_t expiry;
    bool expiry_running;
    atomic_bool stopping;
    atomic_ulong leases_expired; /* revokes proposed by the expiry timer */
    int64_t compact_retain;      /* revisions kept by auto-compaction; 0: off */
    atomic_bool compacting;      /* an auto-compaction is in flight */
    unsigned max_watches;        /* open watch streams this member serves at most */
    atomic_uint watches;         /* open watch streams */
};

/* Set up the store and the locks (rs stays NULL). Errors: UC_ENOMEM,
 * UC_EIO (a mutex could not be created). On failure nothing is left. */
UC_MUSTCHECK int chainfire_server_init(struct chainfire_server *s, char err[UC_ERR_LEN]);
/* Stop the expiry thread and free what init and the clocks hold (not the
 * module: main stops the expiry thread, then destroys the module, then
 * calls this). */
void chainfire_server_deinit(struct chainfire_server *s);

/* The state machine for uc_replsvc_config.sm, with ctx = s. */
struct uc_repl_sm chainfire_server_sm(struct chainfire_server *s);

/* Propose `len` bytes of command JSON at `cmd` (copied) with the request
 * deadline. Returns and calls back as uc_replsvc_propose. */
UC_MUSTCHECK int chainfire_server_propose(struct chainfire_server *s, const char *cmd, size_t len,
                                          uc_repl_cb cb, void *cb_ctx, char err[UC_ERR_LEN]);

/* Start the thread that, while this member leads, proposes a revoke for
 * every lease whose TTL ran out since its grant or last keep-alive (a new
 * leader starts every lease's clock afresh), and a compaction keeping the
 * last compact_retain revisions once a quarter more have piled up.
 * Errors: UC_EIO. */
UC_MUSTCHECK int chainfire_server_start_expiry(struct chainfire_server *s, char err[UC_ERR_LEN]);

/* Stop and join the expiry thread (before the module is stopped);
 * idempotent. */
void chainfire_server_stop_expiry(struct chainfire_server *s);

/* Restart lease `id`'s clock at now + ttl_s (a keep-alive on the leader). */
void chainfire_server_lease_touch(struct chainfire_server *s, int64_t id, int64_t ttl_s);
/* Milliseconds left on lease `id`'s clock, -1 when it has none yet. */
int64_t chainfire_server_lease_remaining(struct chainfire_server *s, int64_t id);

#endif /* CHAINFIRE_SERVER_H */
