/* repl_apply.c - the apply thread, for state machines that group their
 * applies (uc_repl_sm.group_begin/group_end). The loop only queues each
 * committed command and goes on; this thread applies whatever has queued up
 * as one group and hands the entries back, results attached, for the loop
 * to resolve in log order. The one idea: the loop never waits for apply,
 * except in repl_applier_drain, which it calls before anything that must see
 * the state as of raft's last applied entry (reads, snapshots, restores). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "repl_internal.h"
#include "uc/alloc.h"
#include "uc/log.h"

#define QUEUE_BYTES ((size_t)64 << 20) /* queued payload before push waits */
#define RETRY_MS 1000                  /* between attempts at a failing entry */

/* One committed command, from push to collect. */
struct job {
    struct job *next;
    uint64_t index, token, seq;
    bool skip;    /* nothing to apply (a malformed header) */
    void *result; /* apply's, once applied */
    size_t len;
    unsigned char data[];
};

struct job_list {
    struct job *head, *tail;
    size_t n;
};

struct repl_applier {
    struct repl_core *core; /* the loop's; the thread reads only core->sm */
    void (*notify)(void *ctx);
    void *notify_ctx;
    pthread_t thread;

    pthread_mutex_t mu;
    pthread_cond_t work;    /* the thread: jobs queued, or stop */
    pthread_cond_t settled; /* the loop: queue empty and thread idle, space, or failing */
    struct job_list in, out;
    size_t in_bytes;
    uint64_t groups; /* committed */
    bool busy;       /* a group is being applied */
    bool failing;    /* retrying a failed entry */
    bool stop;
    char failure[UC_ERR_LEN];
};

static void jobs_push(struct job_list *l, struct job *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    l->n++;
}

/* Move every job of `from` to the end of `to`; `from` ends up empty. */
static void jobs_splice(struct job_list *to, struct job_list *from)
{
    if (!from->head)
        return;
    if (to->tail)
        to->tail->next = from->head;
    else
        to->head = from->head;
    to->tail = from->tail;
    to->n += from->n;
    *from = (struct job_list){0};
}

static void jobs_free(struct repl_applier *a, struct job *j)
{
    while (j) {
        struct job *next = j->next;
        if (j->result && a->core->sm.free_result)
            a->core->sm.free_result(a->core->sm.ctx, j->result);
        uc_free(j);
        j = next;
    }
}

/* ---- the thread ---------------------------------------------------------------- */

/* One attempt at the group starting at `j` (`n` jobs): all applied and
 * committed, or none. `quiet` leaves the failure to the caller's retry. */
static int attempt(struct repl_applier *a, struct job *j, size_t n, bool quiet)
{
    const struct uc_repl_sm *sm = &a->core->sm;
    int rc = sm->group_begin(sm->ctx);
    struct job *k = j;
    for (size_t i = 0; rc == 0 && i < n; i++, k = k->next)
        if (!k->skip)
            rc = sm->apply(sm->ctx, k->data, k->len, k->index, &k->result);
    if (rc == 0)
        rc = sm->group_end(sm->ctx, true);
    else
        (void)sm->group_end(sm->ctx, false); /* its failure adds nothing to rc's */
    if (rc == 0)
        return 0;
    for (k = j; k && n--; k = k->next) {
        if (k->result && sm->free_result)
            sm->free_result(sm->ctx, k->result);
        k->result = NULL;
    }
    if (!quiet)
        uc_error("repl: applying entry %llu failed (%s); retrying every %d ms, and this member "
                 "applies nothing after it meanwhile",
                 (unsigned long long)j->index, uc_strerror(rc), RETRY_MS);
    return rc;
}

/* Sleep RETRY_MS unless told to stop; false when stopping. */
static bool pause_retry(struct repl_applier *a, const struct job *j, int rc)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts); /* cannot fail with a valid clock id */
    ts.tv_sec += RETRY_MS / 1000;
    pthread_mutex_lock(&a->mu);
    a->failing = true;
    snprintf(a->failure, sizeof(a->failure), "this member cannot apply entry %llu: %s",
             (unsigned long long)j->index, uc_strerror(rc));
    pthread_cond_broadcast(&a->settled);
    while (!a->stop && pthread_cond_timedwait(&a->work, &a->mu, &ts) != ETIMEDOUT)
        ;
    bool go_on = !a->stop;
    pthread_mutex_unlock(&a->mu);
    return go_on;
}

static void count_groups(struct repl_applier *a, uint64_t n)
{
    pthread_mutex_lock(&a->mu);
    a->groups += n;
    pthread_mutex_unlock(&a->mu);
}

/* Applies `g`: as one group, else entry by entry; false when told to stop
 * before every entry was applied. */
static bool apply_group(struct repl_applier *a, struct job *g, size_t n)
{
    if (n > 1 && attempt(a, g, n, true) == 0) {
        count_groups(a, 1);
        return true;
    }
    for (struct job *j = g; j; j = j->next) {
        int rc;
        bool failed = false;
        while ((rc = attempt(a, j, 1, false)) != 0) {
            failed = true;
            if (!pause_retry(a, j, rc))
                return false;
        }
        if (failed) {
            uc_info("repl: entry %llu applied after all", (unsigned long long)j->index);
            pthread_mutex_lock(&a->mu);
            a->failing = false;
            pthread_mutex_unlock(&a->mu);
        }
        count_groups(a, 1);
    }
    return true;
}

static void *applier_main(void *arg)
{
    struct repl_applier *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->stop && !a->in.head) {
            a->busy = false;
            pthread_cond_broadcast(&a->settled);
            pthread_cond_wait(&a->work, &a->mu);
        }
        if (a->stop)
            break;
        struct job_list g = {0};
        jobs_splice(&g, &a->in);
        a->in_bytes = 0;
        a->busy = true;
        pthread_cond_broadcast(&a->settled); /* room for push */
        pthread_mutex_unlock(&a->mu);

        bool done = apply_group(a, g.head, g.n);

        pthread_mutex_lock(&a->mu);
        if (!done) {
            jobs_free(a, g.head);
            break;
        }
        bool first = !a->out.head;
        jobs_splice(&a->out, &g);
        if (first) { /* the loop collects everything out holds in one go */
            pthread_mutex_unlock(&a->mu);
            a->notify(a->notify_ctx);
            pthread_mutex_lock(&a->mu);
        }
    }
    a->busy = false;
    pthread_cond_broadcast(&a->settled);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- the loop's side ------------------------------------------------------------- */

int repl_applier_start(struct repl_applier **out, struct repl_core *c, void (*notify)(void *),
                       void *notify_ctx, char err[UC_ERR_LEN])
{
    struct repl_applier *a = uc_calloc(1, sizeof(*a));
    if (!a)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    a->core = c;
    a->notify = notify;
    a->notify_ctx = notify_ctx;
    if (pthread_mutex_init(&a->mu, NULL) != 0) {
        uc_free(a);
        return uc_err_set(err, UC_ENOMEM, "replication: cannot create a mutex");
    }
    if (pthread_cond_init(&a->work, NULL) != 0 || pthread_cond_init(&a->settled, NULL) != 0) {
        pthread_mutex_destroy(&a->mu);
        uc_free(a);
        return uc_err_set(err, UC_ENOMEM, "replication: cannot create a condition variable");
    }
    sigset_t all, old;
    sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old); /* as the loop thread: no signals */
    int rv = pthread_create(&a->thread, NULL, applier_main, a);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rv != 0) {
        pthread_cond_destroy(&a->work);
        pthread_cond_destroy(&a->settled);
        pthread_mutex_destroy(&a->mu);
        uc_free(a);
        return uc_err_set(err, rv == EAGAIN ? UC_ENOMEM : UC_EIO, "start the apply thread: %s",
                          strerror(rv));
    }
    *out = a;
    return 0;
}

void repl_applier_stop(struct repl_applier *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_broadcast(&a->work);
    pthread_mutex_unlock(&a->mu);
    int rv = pthread_join(a->thread, NULL);
    if (rv != 0)
        uc_error("repl: joining the apply thread: %s", strerror(rv));
    repl_applier_collect(a);
    jobs_free(a, a->in.head);
    pthread_cond_destroy(&a->work);
    pthread_cond_destroy(&a->settled);
    pthread_mutex_destroy(&a->mu);
    uc_free(a);
}

int repl_applier_push(struct repl_applier *a, uint64_t index, uint64_t token, uint64_t seq,
                      const void *payload, size_t len, bool skip)
{
    struct job *j = uc_malloc(sizeof(*j) + len);
    if (!j)
        return UC_ENOMEM;
    *j = (struct job){.index = index, .token = token, .seq = seq, .skip = skip, .len = len};
    if (len)
        memcpy(j->data, payload, len);
    pthread_mutex_lock(&a->mu);
    /* Backpressure: the loop waits here rather than queue without bound. */
    while (a->in_bytes > QUEUE_BYTES && !a->stop && !a->failing)
        pthread_cond_wait(&a->settled, &a->mu);
    jobs_push(&a->in, j);
    a->in_bytes += len;
    pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

void repl_applier_collect(struct repl_applier *a)
{
    struct job_list done = {0};
    pthread_mutex_lock(&a->mu);
    jobs_splice(&done, &a->out);
    pthread_mutex_unlock(&a->mu);
    for (struct job *j = done.head, *next; j; j = next) {
        next = j->next;
        repl_core_applied(a->core, j->index, j->token, j->seq, j->result);
        a->core->collected = j->index;
        uc_free(j);
    }
}

bool repl_applier_drain(struct repl_applier *a, char msg[UC_ERR_LEN])
{
    pthread_mutex_lock(&a->mu);
    while ((a->in.head || a->busy) && !a->failing && !a->stop)
        pthread_cond_wait(&a->settled, &a->mu);
    bool drained = !a->in.head && !a->busy;
    if (!drained)
        snprintf(msg, UC_ERR_LEN, "%s", a->stop ? "replication stopped" : a->failure);
    pthread_mutex_unlock(&a->mu);
    repl_applier_collect(a);
    return drained;
}

void repl_applier_health(struct repl_applier *a, uint64_t *groups, char msg[UC_ERR_LEN])
{
    pthread_mutex_lock(&a->mu);
    *groups = a->groups;
    snprintf(msg, UC_ERR_LEN, "%s", a->failing ? a->failure : "");
    pthread_mutex_unlock(&a->mu);
}

bool repl_applier_idle(struct repl_applier *a)
{
    pthread_mutex_lock(&a->mu);
    bool idle = !a->in.head && !a->busy && !a->out.head;
    pthread_mutex_unlock(&a->mu);
    return idle;
}
