/* repl.c - the replication module's public face: a loop thread running libuv
 * with raft_uv disk and TCP I/O, the mutex-protected queue that carries
 * requests from any thread to it, the status copy, and start and stop. */
#include <pthread.h>
#include <raft/uv.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "repl_internal.h"
#include "uc/alloc.h"
#include "uc/clock.h"
#include "uc/log.h"

#define SWEEP_MS 10          /* deadline granularity */
#define CONNECT_RETRY_MS 200 /* between attempts to reach a peer */
/* raft_uv segment sizes: its default, a cap, and the room assumed per entry. */
#define SEGMENT_MIN ((size_t)8 << 20)
#define SEGMENT_MAX ((size_t)64 << 20)
#define SEGMENT_PER_ENTRY 512

struct uc_repl {
    /* Set at create, then read-only. */
    uint64_t id;
    char *address, *bind_address, *data_dir;
    size_t max_cmd;
    int lock_fd;

    /* Loop thread only (and the creating thread before the loop starts). */
    uv_loop_t loop;
    uv_async_t wake;
    uv_async_t applied; /* the apply thread has entries for collect */
    uv_timer_t sweep;
    uv_check_t check;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft raft;
    int (*uv_append)(struct raft_io *, struct raft_io_append *, const struct raft_entry[], unsigned,
                     raft_io_append_cb);
    int (*tcp_connect)(struct raft_uv_transport *, struct raft_uv_connect *, raft_id, const char *,
                       raft_uv_connect_cb);
    struct repl_core core;
    bool closing;
    pthread_t thread;

    /* Shared, under mu. */
    pthread_mutex_t mu;
    struct repl_list incoming;
    bool stopping;    /* no new requests; the loop is closing raft */
    bool change_busy; /* a membership change is queued or in flight */
    struct uc_repl_status status;

    pthread_mutex_t stop_mu; /* serialises uc_repl_stop */
    bool joined;
};

/* --- the loop thread ----------------------------------------------------------- */

static int64_t now_ms(void) { return uc_clock_mono_ms(NULL); }

/* Counts disk appends on the way to raft_uv, for the batching figures. */
static int counting_append(struct raft_io *io, struct raft_io_append *req,
                           const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    struct uc_repl *repl = (struct uc_repl *)((char *)io - offsetof(struct uc_repl, io));
    repl->core.stats.appends++;
    repl->core.stats.appended_entries += n;
    return repl->uv_append(io, req, entries, n, cb);
}

static void set_nodelay(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->type == UV_TCP && !uv_is_closing(h))
        (void)uv_tcp_nodelay((uv_tcp_t *)h, 1); /* a failure only leaves Nagle on */
}

/* raft_uv_tcp (0.15) leaves Nagle's algorithm on, and a member only writes
 * to its peers on the connections it opened, so their ACKs never ride on a
 * reply: a message sent while the last one is unacknowledged waits for the
 * peer's delayed ACK (~40 ms). raft_uv_tcp creates the socket inside
 * connect, so switch Nagle off on every raft socket right after it. */
static int nodelay_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                           const char *address, raft_uv_connect_cb cb)
{
    struct uc_repl *repl = (struct uc_repl *)((char *)t - offsetof(struct uc_repl, transport));
    int rv = repl->tcp_connect(t, req, id, address, cb);
    if (rv == 0)
        uv_walk(&repl->loop, set_nodelay, NULL);
    return rv;
}

static void publish_status(struct uc_repl *repl)
{
    struct uc_repl_status st;
    repl_core_status(&repl->core, &st);
    pthread_mutex_lock(&repl->mu);
    repl->status = st;
    pthread_mutex_unlock(&repl->mu);
}

/* Once raft is closed its state is gone: keep the last copy, minus the role. */
static void publish_stopped(struct uc_repl *repl)
{
    pthread_mutex_lock(&repl->mu);
    repl->status.role = UC_REPL_UNAVAILABLE;
    repl->status.leader_id = 0;
    repl->status.leader_addr[0] = '\0';
    uint64_t groups = repl->status.stats.apply_groups; /* the apply thread's, gone now */
    repl->status.stats = repl->core.stats;
    repl->status.stats.apply_groups = groups;
    repl->status.apply_error[0] = '\0';
    pthread_mutex_unlock(&repl->mu);
}

static void on_sweep(uv_timer_t *t)
{
    struct uc_repl *repl = t->data;
    repl_core_sweep(&repl->core, now_ms());
    if (repl_core_idle(&repl->core))
        (void)uv_timer_stop(t); /* always 0 */
}

static void arm_sweep(struct uc_repl *repl)
{
    if (repl->closing || uv_is_active((uv_handle_t *)&repl->sweep) || repl_core_idle(&repl->core))
        return;
    int rv = uv_timer_start(&repl->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    if (rv != 0)
        uc_error("repl: cannot start the deadline timer: %s", uv_strerror(rv));
}

static void on_handle_closed(uv_handle_t *h) { (void)h; /* embedded in struct uc_repl */ }

static void close_handles(struct uc_repl *repl)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&repl->wake, (uv_handle_t *)&repl->applied,
                         (uv_handle_t *)&repl->sweep, (uv_handle_t *)&repl->check};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (hs[i]->loop && !uv_is_closing(hs[i]))
            uv_close(hs[i], on_handle_closed);
}

static void on_raft_closed(struct raft *r)
{
    struct uc_repl *repl = r->data;
    repl_applier_stop(repl->core.applier); /* answers what it applied */
    repl->core.applier = NULL;
    repl_fsm_release(&repl->core);
    repl_core_fail_all(&repl->core, "replication stopped");
    raft_uv_close(&repl->io);
    raft_uv_tcp_close(&repl->transport);
    publish_stopped(repl);
    close_handles(repl);
}

/* Close raft, then everything else; the loop ends once all is closed. Runs
 * in a libuv callback of ours, never inside one of raft's. */
static void begin_close(struct uc_repl *repl)
{
    if (repl->closing)
        return;
    repl->closing = true;
    raft_close(&repl->raft, on_raft_closed);
}

static void on_wake(uv_async_t *a)
{
    struct uc_repl *repl = a->data;
    struct repl_list in = {0};
    pthread_mutex_lock(&repl->mu);
    repl_list_splice(&in, &repl->incoming);
    bool stopping = repl->stopping;
    pthread_mutex_unlock(&repl->mu);
    if (stopping || repl->closing) {
        struct repl_item *it;
        while ((it = in.head)) {
            repl_list_remove(&in, it);
            repl_complete(it, UC_EUNAVAIL, "replication is stopping", false, 0, NULL);
        }
        begin_close(repl);
        return;
    }
    repl_core_submit(&repl->core, &in, now_ms());
    arm_sweep(repl);
}

static void on_applied(uv_async_t *a)
{
    struct uc_repl *repl = a->data;
    if (repl->core.applier)
        repl_applier_collect(repl->core.applier);
}

/* On the apply thread. */
static void notify_applied(void *ctx)
{
    struct uc_repl *repl = ctx;
    int rv = uv_async_send(&repl->applied);
    if (rv != 0) /* only for a closed handle: the member is stopping */
        uc_warn("repl: cannot wake the raft thread: %s", uv_strerror(rv));
}

/* After every loop iteration: deferred raft calls, then the status copy. */
static void on_check(uv_check_t *h)
{
    struct uc_repl *repl = h->data;
    if (repl->closing)
        return;
    repl_core_pump(&repl->core);
    arm_sweep(repl);
    publish_status(repl);
}

static void on_change_settled(void *ctx)
{
    struct uc_repl *repl = ctx;
    pthread_mutex_lock(&repl->mu);
    repl->change_busy = false;
    pthread_mutex_unlock(&repl->mu);
}

static void *loop_main(void *arg)
{
    struct uc_repl *repl = arg;
    int rv = uv_run(&repl->loop, UV_RUN_DEFAULT);
    if (rv != 0)
        uc_error("repl: the loop ended with handles still active");
    return NULL;
}

/* --- create -------------------------------------------------------------------- */

static int copy_config(struct uc_repl *repl, const struct uc_repl_config *cfg, char *err)
{
    repl->id = cfg->id;
    repl->max_cmd = cfg->max_cmd ? cfg->max_cmd : UC_REPL_DEFAULT_CMD;
    repl->address = uc_strdup(cfg->address);
    repl->data_dir = uc_strdup(cfg->data_dir);
    repl->bind_address = cfg->bind_address ? uc_strdup(cfg->bind_address) : NULL;
    if (!repl->address || !repl->data_dir || (cfg->bind_address && !repl->bind_address))
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    return 0;
}

static uint64_t new_token(void)
{
    uint64_t token = 0;
    if (getrandom(&token, sizeof(token), GRND_NONBLOCK) != (ssize_t)sizeof(token)) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts); /* cannot fail with a valid clock id */
        token = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
    }
    return token ? token : 1;
}

static int init_handles(struct uc_repl *repl, char *err)
{
    int rv = uv_loop_init(&repl->loop);
    if (rv != 0)
        return uc_err_set(err, UC_EIO, "libuv loop: %s", uv_strerror(rv));
    repl->loop.data = repl;
    repl->wake.data = repl->applied.data = repl->sweep.data = repl->check.data = repl;
    if ((rv = uv_async_init(&repl->loop, &repl->wake, on_wake)) != 0 ||
        (rv = uv_async_init(&repl->loop, &repl->applied, on_applied)) != 0 ||
        (rv = uv_timer_init(&repl->loop, &repl->sweep)) != 0 ||
        (rv = uv_check_init(&repl->loop, &repl->check)) != 0 ||
        (rv = uv_check_start(&repl->check, on_check)) != 0)
        return uc_err_set(err, UC_EIO, "libuv handles: %s", uv_strerror(rv));
    return 0;
}

static int bootstrap(struct uc_repl *repl, const struct uc_repl_config *cfg, char *err)
{
    static const int roles[] = {[UC_REPL_VOTER] = RAFT_VOTER,
                                [UC_REPL_LEARNER] = RAFT_STANDBY,
                                [UC_REPL_SPARE] = RAFT_SPARE};
    struct raft_configuration conf;
    int rv = 0;
    raft_configuration_init(&conf);
    for (size_t i = 0; i < cfg->n_bootstrap && rv == 0; i++) {
        const struct uc_repl_member *m = &cfg->bootstrap[i];
        rv = raft_configuration_add(&conf, m->id, m->addr, roles[m->role]);
    }
    if (rv != 0) {
        raft_configuration_close(&conf);
        return uc_err_set(err, repl_raft_err(rv), "bootstrap list: %s", raft_strerror(rv));
    }
    rv = raft_bootstrap(&repl->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) /* CANTBOOTSTRAP: state exists already */
        return uc_err_set(err, repl_raft_err(rv) == UC_ENOMEM ? UC_ENOMEM : UC_EIO,
                          "bootstrap %s: %s", repl->data_dir, raft_errmsg(&repl->raft));
    return 0;
}

/* raft_uv closes its open segment file when the segment is full and after
 * every snapshot, and a close destroys the segment's kernel AIO context
 * (io_destroy) on the loop thread, which waits out RCU grace periods: tens
 * of ms during which the member handles nothing. Segments that hold the
 * entries between two snapshots leave the snapshot as the only close. */
static size_t segment_size(unsigned snapshot_threshold, size_t asked)
{
    size_t s = asked ? asked : (size_t)snapshot_threshold * SEGMENT_PER_ENTRY;
    return s < SEGMENT_MIN ? SEGMENT_MIN : s > SEGMENT_MAX ? SEGMENT_MAX : s;
}

static void tune(struct uc_repl *repl, const struct uc_repl_config *cfg)
{
    struct raft *r = &repl->raft;
    unsigned threshold =
        cfg->snapshot_threshold ? cfg->snapshot_threshold : UC_REPL_DEFAULT_SNAPSHOT;
    raft_set_election_timeout(r, cfg->election_timeout_ms ? cfg->election_timeout_ms : 1000);
    raft_set_heartbeat_timeout(r, cfg->heartbeat_ms ? cfg->heartbeat_ms : 100);
    raft_set_snapshot_threshold(r, threshold);
    raft_uv_set_segment_size(&repl->io, segment_size(threshold, cfg->segment_bytes));
    raft_set_snapshot_trailing(r, cfg->snapshot_trailing ? cfg->snapshot_trailing : 128);
    raft_set_pre_vote(r, !cfg->disable_pre_vote);
    raft_uv_set_connect_retry_delay(&repl->io, CONNECT_RETRY_MS);
}

/* Stages reached by create, for the teardown. */
enum stage { ST_NONE, ST_HANDLES, ST_TRANSPORT, ST_IO, ST_RAFT };

static int init_raft(struct uc_repl *repl, const struct uc_repl_config *cfg, enum stage *st,
                     char *err)
{
    int rv = raft_uv_tcp_init(&repl->transport, &repl->loop);
    if (rv != 0)
        return uc_err_set(err, repl_raft_err(rv), "raft transport: %s", raft_strerror(rv));
    *st = ST_TRANSPORT;
    repl->tcp_connect = repl->transport.connect;
    repl->transport.connect = nodelay_connect;
    if (repl->bind_address &&
        (rv = raft_uv_tcp_set_bind_address(&repl->transport, repl->bind_address)) != 0)
        return uc_err_set(err, UC_EINVAL, "raft bind address %s: %s", repl->bind_address,
                          raft_strerror(rv));
    rv = raft_uv_init(&repl->io, &repl->loop, repl->data_dir, &repl->transport);
    if (rv != 0)
        return uc_err_set(err, repl_raft_err(rv) == UC_ENOMEM ? UC_ENOMEM : UC_EIO,
                          "raft storage in %s: %s", repl->data_dir, repl->io.errmsg);
    *st = ST_IO;
    /* libraft 0.15's raft_uv fills in async_work (a version 2 field) but
     * still says version 1, and raft_init refuses asynchronous snapshots
     * from a version 1 io. */
    if (repl->io.version < 2 && repl->io.async_work)
        repl->io.version = 2;
    repl->uv_append = repl->io.append;
    repl->io.append = counting_append;
    repl_core_init(&repl->core, &cfg->sm, new_token());
    repl->core.change_settled = on_change_settled;
    repl->core.hook_ctx = repl;
    if (cfg->sm.group_begin &&
        (rv = repl_applier_start(&repl->core.applier, &repl->core, notify_applied, repl, err)) != 0)
        return rv;
    rv = raft_init(&repl->raft, &repl->io, &repl->core.fsm, repl->id, repl->address);
    if (rv != 0)
        return uc_err_set(err, repl_raft_err(rv) == UC_ENOMEM ? UC_ENOMEM : UC_EIO, "raft: %s",
                          raft_errmsg(&repl->raft));
    *st = ST_RAFT;
    repl->raft.data = repl;
    repl_core_attach(&repl->core, &repl->raft);
    tune(repl, cfg);
    if (cfg->n_bootstrap && (rv = bootstrap(repl, cfg, err)) != 0)
        return rv;
    rv = raft_start(&repl->raft);
    if (rv != 0)
        return uc_err_set(err, repl_raft_err(rv) == UC_ENOMEM ? UC_ENOMEM : UC_EIO,
                          "start raft in %s at %s: %s", repl->data_dir, repl->address,
                          raft_errmsg(&repl->raft));
    return 0;
}

/* Undo create from stage `st`, on the calling thread (no loop thread runs). */
static void teardown(struct uc_repl *repl, enum stage st)
{
    if (st == ST_RAFT) {
        begin_close(repl); /* on_raft_closed closes io, transport and handles */
    } else {
        repl_applier_stop(repl->core.applier);
        repl->core.applier = NULL;
        if (st >= ST_IO)
            raft_uv_close(&repl->io);
        if (st >= ST_TRANSPORT)
            raft_uv_tcp_close(&repl->transport);
        if (st >= ST_HANDLES)
            close_handles(repl);
    }
    if (st >= ST_HANDLES) {
        if (uv_run(&repl->loop, UV_RUN_DEFAULT) != 0 || uv_loop_close(&repl->loop) != 0)
            uc_error("repl: libuv handles left open after a failed start");
    }
}

static void free_repl(struct uc_repl *repl)
{
    if (repl->lock_fd >= 0)
        (void)close(repl->lock_fd); /* releases the flock; nothing to report on failure */
    pthread_mutex_destroy(&repl->mu);
    pthread_mutex_destroy(&repl->stop_mu);
    uc_free(repl->address);
    uc_free(repl->bind_address);
    uc_free(repl->data_dir);
    uc_free(repl);
}

static int start_thread(struct uc_repl *repl, char *err)
{
    sigset_t all, old;
    sigfillset(&all);
    /* The loop thread takes no signals: SIGPIPE from a dead peer's socket
     * then becomes EPIPE, and the daemon's signal handling stays on main. */
    (void)pthread_sigmask(SIG_SETMASK, &all, &old); /* fails only for a bad `how` */
    int rv = pthread_create(&repl->thread, NULL, loop_main, repl);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv != 0)
        return uc_err_set(err, rv == EAGAIN ? UC_ENOMEM : UC_EIO, "start the raft thread: %s",
                          strerror(rv));
    return 0;
}

int uc_repl_create(struct uc_repl **out, const struct uc_repl_config *cfg, char err[UC_ERR_LEN])
{
    int rv = repl_check_config(cfg, err);
    if (rv)
        return rv;
    struct uc_repl *repl = uc_calloc(1, sizeof(*repl));
    if (!repl)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    repl->lock_fd = -1;
    if (pthread_mutex_init(&repl->mu, NULL) != 0) {
        uc_free(repl);
        return uc_err_set(err, UC_ENOMEM, "replication: cannot create a mutex");
    }
    if (pthread_mutex_init(&repl->stop_mu, NULL) != 0) {
        pthread_mutex_destroy(&repl->mu);
        uc_free(repl);
        return uc_err_set(err, UC_ENOMEM, "replication: cannot create a mutex");
    }
    enum stage st = ST_NONE;
    if ((rv = copy_config(repl, cfg, err)) != 0 ||
        (rv = repl_open_dir(repl->data_dir, &repl->lock_fd, err)) != 0)
        goto fail;
    if ((rv = init_handles(repl, err)) != 0) {
        st = repl->loop.data ? ST_HANDLES : ST_NONE;
        goto fail;
    }
    st = ST_HANDLES;
    if ((rv = init_raft(repl, cfg, &st, err)) != 0)
        goto fail;
    publish_status(repl); /* before the loop thread owns the core */
    if ((rv = start_thread(repl, err)) != 0)
        goto fail;
    *out = repl;
    return 0;
fail:
    teardown(repl, st);
    free_repl(repl);
    return rv;
}

/* --- stop ---------------------------------------------------------------------- */

void uc_repl_stop(struct uc_repl *repl)
{
    if (!repl)
        return;
    pthread_mutex_lock(&repl->stop_mu);
    if (!repl->joined) {
        pthread_mutex_lock(&repl->mu);
        repl->stopping = true;
        int rv = uv_async_send(&repl->wake);
        pthread_mutex_unlock(&repl->mu);
        if (rv != 0)
            uc_error("repl: cannot wake the raft thread to stop it: %s", uv_strerror(rv));
        rv = pthread_join(repl->thread, NULL);
        if (rv != 0)
            uc_error("repl: joining the raft thread: %s", strerror(rv));
        if (uv_loop_close(&repl->loop) != 0)
            uc_error("repl: libuv handles left open at stop");
        if (repl->lock_fd >= 0 && close(repl->lock_fd) != 0)
            uc_warn("repl: closing the lock file: %s", strerror(errno));
        repl->lock_fd = -1;
        repl->joined = true;
    }
    pthread_mutex_unlock(&repl->stop_mu);
}

void uc_repl_destroy(struct uc_repl *repl)
{
    if (!repl)
        return;
    uc_repl_stop(repl);
    free_repl(repl);
}

/* --- requests from any thread ---------------------------------------------------- */

static int enqueue(struct uc_repl *repl, struct repl_item *it, bool change, char *err)
{
    pthread_mutex_lock(&repl->mu);
    if (repl->stopping) {
        pthread_mutex_unlock(&repl->mu);
        repl_item_free(it);
        return uc_err_set(err, UC_EUNAVAIL, "replication is stopped");
    }
    if (change && repl->change_busy) {
        pthread_mutex_unlock(&repl->mu);
        repl_item_free(it);
        return uc_err_set(err, UC_EBUSY, "another membership change is in flight");
    }
    if (change)
        repl->change_busy = true;
    /* The loop drains the whole queue on each wake-up, so only the first
     * item of a batch needs to wake it. */
    bool first = repl->incoming.n == 0;
    repl_list_push(&repl->incoming, it);
    int rv = first ? uv_async_send(&repl->wake) : 0;
    pthread_mutex_unlock(&repl->mu);
    if (rv != 0) /* only when the handle is closing, which needs `stopping` */
        uc_error("repl: cannot wake the raft thread: %s", uv_strerror(rv));
    return 0;
}

int uc_repl_propose(struct uc_repl *repl, const void *cmd, size_t len, int64_t deadline_ms,
                    uc_repl_cb cb, void *cb_ctx, char err[UC_ERR_LEN])
{
    if (!repl || !cb || (!cmd && len))
        return uc_err_set(err, UC_EINVAL, "propose: need a member, a callback and a command");
    if (len > repl->max_cmd)
        return uc_err_set(err, UC_E2BIG, "command of %zu bytes is above the limit of %zu", len,
                          repl->max_cmd);
    struct repl_item *it = repl_item_new_proposal(cmd, len, deadline_ms, cb, cb_ctx);
    if (!it)
        return uc_err_set(err, UC_ENOMEM, "out of memory queueing a proposal");
    return enqueue(repl, it, false, err);
}

int uc_repl_read_barrier(struct uc_repl *repl, int64_t deadline_ms, uc_repl_cb cb, void *cb_ctx,
                         char err[UC_ERR_LEN])
{
    if (!repl || !cb)
        return uc_err_set(err, UC_EINVAL, "read barrier: need a member and a callback");
    struct repl_item *it = repl_item_new(REPL_READ, deadline_ms, cb, cb_ctx);
    if (!it)
        return uc_err_set(err, UC_ENOMEM, "out of memory queueing a read");
    return enqueue(repl, it, false, err);
}

static int change(struct uc_repl *repl, enum repl_kind kind, uint64_t id, const char *addr,
                  int64_t deadline_ms, uc_repl_cb cb, void *cb_ctx, char *err)
{
    if (!repl || !cb)
        return uc_err_set(err, UC_EINVAL, "membership: need a member and a callback");
    if (id == 0 && kind != REPL_TRANSFER)
        return uc_err_set(err, UC_EINVAL, "membership: member ids are > 0");
    if (kind == REPL_ADD_LEARNER && !repl_valid_addr(addr))
        return uc_err_set(err, UC_EINVAL,
                          "membership: the new member's address must be "
                          "host:port");
    struct repl_item *it = repl_item_new(kind, deadline_ms, cb, cb_ctx);
    if (!it)
        return uc_err_set(err, UC_ENOMEM, "out of memory queueing a membership change");
    it->target = id;
    if (addr)
        snprintf(it->addr, sizeof(it->addr), "%s", addr);
    return enqueue(repl, it, true, err);
}

int uc_repl_add_learner(struct uc_repl *repl, uint64_t id, const char *addr, int64_t deadline_ms,
                        uc_repl_cb cb, void *cb_ctx, char err[UC_ERR_LEN])
{
    return change(repl, REPL_ADD_LEARNER, id, addr, deadline_ms, cb, cb_ctx, err);
}

int uc_repl_promote(struct uc_repl *repl, uint64_t id, int64_t deadline_ms, uc_repl_cb cb,
                    void *cb_ctx, char err[UC_ERR_LEN])
{
    return change(repl, REPL_PROMOTE, id, NULL, deadline_ms, cb, cb_ctx, err);
}

int uc_repl_remove(struct uc_repl *repl, uint64_t id, int64_t deadline_ms, uc_repl_cb cb,
                   void *cb_ctx, char err[UC_ERR_LEN])
{
    return change(repl, REPL_REMOVE, id, NULL, deadline_ms, cb, cb_ctx, err);
}

int uc_repl_transfer(struct uc_repl *repl, uint64_t id, int64_t deadline_ms, uc_repl_cb cb,
                     void *cb_ctx, char err[UC_ERR_LEN])
{
    return change(repl, REPL_TRANSFER, id, NULL, deadline_ms, cb, cb_ctx, err);
}

/* --- status ---------------------------------------------------------------------- */

int uc_repl_leader(struct uc_repl *repl, uint64_t *id, char addr[UC_REPL_ADDR_LEN])
{
    int rv = UC_EUNAVAIL;
    pthread_mutex_lock(&repl->mu);
    if (repl->status.leader_id != 0) {
        if (id)
            *id = repl->status.leader_id;
        if (addr)
            memcpy(addr, repl->status.leader_addr, UC_REPL_ADDR_LEN);
        rv = 0;
    }
    pthread_mutex_unlock(&repl->mu);
    return rv;
}

void uc_repl_status(struct uc_repl *repl, struct uc_repl_status *out)
{
    pthread_mutex_lock(&repl->mu);
    *out = repl->status;
    pthread_mutex_unlock(&repl->mu);
}
