/* server.c - glue between the raft member and the store (the uc_repl state
 * machine callbacks) and the leader's lease-expiry thread, which turns
 * expired leases into revoke commands so every member deletes the same keys. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server.h"
#include "uc/alloc.h"
#include "uc/clock.h"
#include "uc/json.h"
#include "uc/log.h"

#define EXPIRY_TICK_MS 100

int chainfire_server_init(struct chainfire_server *s, char err[UC_ERR_LEN])
{
    int rc = chainfire_kv_create(&s->kv);
    if (rc < 0)
        return uc_err_set(err, rc, "cannot create the store");
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        chainfire_kv_destroy(s->kv);
        return uc_err_set(err, UC_EIO, "cannot create a mutex");
    }
    if (pthread_mutex_init(&s->lease_lock, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        chainfire_kv_destroy(s->kv);
        return uc_err_set(err, UC_EIO, "cannot create a mutex");
    }
    atomic_init(&s->stopping, false);
    atomic_init(&s->leases_expired, 0);
    atomic_init(&s->compacting, false);
    atomic_init(&s->watches, 0);
    return 0;
}

void chainfire_server_stop_expiry(struct chainfire_server *s)
{
    atomic_store(&s->stopping, true);
    if (s->expiry_running && pthread_join(s->expiry, NULL) != 0)
        uc_error("cannot join the lease expiry thread");
    s->expiry_running = false;
}

void chainfire_server_deinit(struct chainfire_server *s)
{
    chainfire_server_stop_expiry(s);
    uc_free(s->clocks);
    s->clocks = NULL;
    pthread_mutex_destroy(&s->lease_lock);
    pthread_mutex_destroy(&s->lock);
    chainfire_kv_destroy(s->kv);
    s->kv = NULL;
}

/* ---- state machine ----------------------------------------------------- */

static int sm_apply(void *ctx, const void *cmd, size_t len, uint64_t index, void **result)
{
    struct chainfire_server *s = ctx;
    json_t *res = NULL;
    pthread_mutex_lock(&s->lock);
    int rc = chainfire_kv_apply(s->kv, cmd, len, &res);
    pthread_mutex_unlock(&s->lock);
    if (rc < 0) {
        uc_error("cannot apply log entry %llu: %s; restart this member", (unsigned long long)index,
                 uc_strerror(rc));
        return rc;
    }
    *result = res;
    return 0;
}

static int sm_snapshot(void *ctx, void **buf, size_t *len)
{
    struct chainfire_server *s = ctx;
    char *b = NULL;
    pthread_mutex_lock(&s->lock);
    int rc = chainfire_kv_snapshot(s->kv, &b, len);
    pthread_mutex_unlock(&s->lock);
    if (rc == 0)
        *buf = b;
    return rc;
}

/* raft's periodic snapshots: the loop only copies the store's index under
 * the lock; a pool thread encodes that view without the lock. */
static int sm_snapshot_begin(void *ctx, void **view)
{
    struct chainfire_server *s = ctx;
    struct chainfire_kv_view *v = NULL;
    pthread_mutex_lock(&s->lock);
    int rc = chainfire_kv_view_take(s->kv, &v);
    pthread_mutex_unlock(&s->lock);
    if (rc == 0)
        *view = v;
    return rc;
}

static int sm_snapshot_encode(void *ctx, void *view, size_t room, void **buf, size_t *len)
{
    (void)ctx; /* the view is all it reads */
    char *b = NULL;
    int rc = chainfire_kv_view_encode(view, room, &b, len);
    if (rc == 0)
        *buf = b;
    return rc;
}

static void sm_snapshot_end(void *ctx, void *view)
{
    struct chainfire_server *s = ctx;
    pthread_mutex_lock(&s->lock);
    chainfire_kv_view_release(s->kv, view);
    pthread_mutex_unlock(&s->lock);
}

static int sm_restore(void *ctx, const void *buf, size_t len, uint64_t index)
{
    struct chainfire_server *s = ctx;
    char err[UC_ERR_LEN];
    pthread_mutex_lock(&s->lock);
    int rc = chainfire_kv_restore(s->kv, buf, len, err);
    pthread_mutex_unlock(&s->lock);
    if (rc < 0)
        uc_error("cannot restore the snapshot at index %llu: %s", (unsigned long long)index, err);
    return rc;
}

static void sm_free_result(void *ctx, void *result)
{
    (void)ctx; /* results are plain JSON objects */
    json_decref(result);
}

struct uc_repl_sm chainfire_server_sm(struct chainfire_server *s)
{
    return (struct uc_repl_sm){
        .apply = sm_apply,
        .snapshot = sm_snapshot,
        .restore = sm_restore,
        .free_result = sm_free_result,
        .ctx = s,
        .snapshot_begin = sm_snapshot_begin,
        .snapshot_encode = sm_snapshot_encode,
        .snapshot_end = sm_snapshot_end,
    };
}

int chainfire_server_propose(struct chainfire_server *s, const char *cmd, size_t len, uc_repl_cb cb,
                             void *cb_ctx, char err[UC_ERR_LEN])
{
    return uc_replsvc_propose(s->rs, cmd, len, cb, cb_ctx, err);
}

/* ---- lease clocks ------------------------------------------------------ */

static struct chainfire_lease_clock *clock_find(struct chainfire_server *s, int64_t id)
{
    for (size_t i = 0; i < s->nclocks; i++)
        if (s->clocks[i].id == id)
            return &s->clocks[i];
    return NULL;
}

/* Caller holds lease_lock. A full table only delays expiry to the next tick. */
static struct chainfire_lease_clock *clock_get(struct chainfire_server *s, int64_t id,
                                               int64_t ttl_s, int64_t now)
{
    struct chainfire_lease_clock *c = clock_find(s, id);
    if (c)
        return c;
    if (s->nclocks == s->cclocks) {
        size_t ncap = s->cclocks ? s->cclocks * 2 : 16;
        void *p = uc_realloc(s->clocks, ncap * sizeof(*s->clocks));
        if (!p)
            return NULL;
        s->clocks = p;
        s->cclocks = ncap;
    }
    c = &s->clocks[s->nclocks++];
    *c = (struct chainfire_lease_clock){id, now + ttl_s * 1000, false};
    return c;
}

void chainfire_server_lease_touch(struct chainfire_server *s, int64_t id, int64_t ttl_s)
{
    int64_t now = uc_clock_mono_ms(NULL);
    pthread_mutex_lock(&s->lease_lock);
    struct chainfire_lease_clock *c = clock_get(s, id, ttl_s, now);
    if (c)
        c->deadline_ms = now + ttl_s * 1000;
    pthread_mutex_unlock(&s->lease_lock);
}

int64_t chainfire_server_lease_remaining(struct chainfire_server *s, int64_t id)
{
    int64_t left = -1, now = uc_clock_mono_ms(NULL);
    pthread_mutex_lock(&s->lease_lock);
    const struct chainfire_lease_clock *c = clock_find(s, id);
    if (c)
        left = c->deadline_ms > now ? c->deadline_ms - now : 0;
    pthread_mutex_unlock(&s->lease_lock);
    return left;
}

struct revoke_ctx {
    struct chainfire_server *s;
    int64_t id;
};

static void revoked(void *ctx, const struct uc_repl_done *d)
{
    struct revoke_ctx *rc = ctx;
    struct chainfire_server *s = rc->s;
    pthread_mutex_lock(&s->lease_lock);
    struct chainfire_lease_clock *c = clock_find(s, rc->id);
    if (c && d->status == 0) /* gone: a lease granted later under this id starts afresh */
        *c = s->clocks[--s->nclocks];
    else if (c)
        c->revoking = false; /* retried at the next tick */
    pthread_mutex_unlock(&s->lease_lock);
    if (d->status < 0)
        uc_warn("lease %lld: revoke failed: %s", (long long)rc->id, d->msg);
    sm_free_result(NULL, d->result);
    uc_free(rc);
}

/* Propose a revoke of lease `id` (called without lease_lock: the callback
 * takes it on the loop thread). A failure is retried at the next tick. */
static void propose_revoke(struct chainfire_server *s, int64_t id)
{
    char cmd[96], err[UC_ERR_LEN];
    struct revoke_ctx *rc = uc_malloc(sizeof(*rc));
    int n = snprintf(cmd, sizeof(cmd), "{\"op\":\"lease_revoke\",\"id\":%lld}", (long long)id);
    if (rc) {
        *rc = (struct revoke_ctx){s, id};
        if (chainfire_server_propose(s, cmd, (size_t)n, revoked, rc, err) == 0) {
            atomic_fetch_add(&s->leases_expired, 1);
            uc_info("lease %lld expired: revoking it", (long long)id);
            return;
        }
        uc_free(rc);
    }
    pthread_mutex_lock(&s->lease_lock);
    struct chainfire_lease_clock *c = clock_find(s, id);
    if (c)
        c->revoking = false;
    pthread_mutex_unlock(&s->lease_lock);
}

/* Under lease_lock: drop clocks of leases that are gone, start clocks of
 * new ones, and mark the expired ones as revoking, listing them in due[]. */
static size_t clocks_update(struct chainfire_server *s, const struct chainfire_kv_lease *l,
                            size_t n, int64_t *due)
{
    int64_t now = uc_clock_mono_ms(NULL);
    size_t w = 0, ndue = 0;
    for (size_t i = 0; i < s->nclocks; i++) {
        bool live = false;
        for (size_t j = 0; j < n && !live; j++)
            live = l[j].id == s->clocks[i].id;
        if (live || s->clocks[i].revoking)
            s->clocks[w++] = s->clocks[i];
    }
    s->nclocks = w;
    for (size_t j = 0; j < n; j++) {
        struct chainfire_lease_clock *c = clock_get(s, l[j].id, l[j].ttl_s, now);
        if (c && !c->revoking && c->deadline_ms <= now) {
            c->revoking = true;
            due[ndue++] = c->id;
        }
    }
    return ndue;
}

/* One tick as leader: update the clocks and revoke the expired leases. */
static void expire_tick(struct chainfire_server *s)
{
    struct chainfire_kv_lease *l = NULL;
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    int rc = chainfire_kv_lease_list(s->kv, &l, &n);
    pthread_mutex_unlock(&s->lock);
    /* n may be 0: the pass still drops the clocks of leases now gone. */
    int64_t *due = rc == 0 ? uc_malloc((n ? n : 1) * sizeof(*due)) : NULL;
    if (!due) {
        uc_free(l);
        return;
    }
    pthread_mutex_lock(&s->lease_lock);
    size_t ndue = clocks_update(s, l, n, due);
    pthread_mutex_unlock(&s->lease_lock);
    for (size_t i = 0; i < ndue; i++)
        propose_revoke(s, due[i]);
    uc_free(due);
    uc_free(l);
}

static void compacted(void *ctx, const struct uc_repl_done *d)
{
    struct chainfire_server *s = ctx;
    if (d->status < 0)
        uc_warn("auto-compaction failed: %s", d->msg);
    sm_free_result(NULL, d->result);
    atomic_store(&s->compacting, false);
}

/* Propose a compaction once more than retain * 5/4 revisions are kept. */
static void auto_compact(struct chainfire_server *s)
{
    char cmd[80], err[UC_ERR_LEN];
    if (s->compact_retain <= 0 || atomic_load(&s->compacting))
        return;
    pthread_mutex_lock(&s->lock);
    int64_t rev = chainfire_kv_revision(s->kv), comp = chainfire_kv_compacted(s->kv);
    pthread_mutex_unlock(&s->lock);
    if (rev - comp <= s->compact_retain + s->compact_retain / 4)
        return;
    int n = snprintf(cmd, sizeof(cmd), "{\"op\":\"compact\",\"revision\":%lld}",
                     (long long)(rev - s->compact_retain));
    atomic_store(&s->compacting, true);
    if (chainfire_server_propose(s, cmd, (size_t)n, compacted, s, err) < 0)
        atomic_store(&s->compacting, false);
}

static void *expiry_main(void *arg)
{
    struct chainfire_server *s = arg;
    struct uc_repl_status st;
    const struct timespec tick = {0, EXPIRY_TICK_MS * 1000000L};
    while (!atomic_load(&s->stopping)) {
        uc_repl_status(uc_replsvc_repl(s->rs), &st);
        if (st.role == UC_REPL_LEADER) {
            expire_tick(s);
            auto_compact(s);
        } else {
            /* A later leader restarts every clock: forget ours. */
            pthread_mutex_lock(&s->lease_lock);
            size_t w = 0;
            for (size_t i = 0; i < s->nclocks; i++)
                if (s->clocks[i].revoking)
                    s->clocks[w++] = s->clocks[i];
            s->nclocks = w;
            pthread_mutex_unlock(&s->lease_lock);
        }
        (void)nanosleep(&tick, NULL); /* an early wake-up only shortens one tick */
    }
    return NULL;
}

int chainfire_server_start_expiry(struct chainfire_server *s, char err[UC_ERR_LEN])
{
    if (pthread_create(&s->expiry, NULL, expiry_main, s) != 0)
        return uc_err_set(err, UC_EIO, "cannot start the lease expiry thread");
    s->expiry_running = true;
    return 0;
}
