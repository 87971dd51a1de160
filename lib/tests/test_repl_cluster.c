/* test_repl_cluster.c - the replication module with real I/O: members of a
 * cluster inside this process on 127.0.0.1, each with its own data dir under
 * a temporary directory and its own loop thread. Covers elections, batching
 * under concurrency, leader loss, restart and snapshot catch-up, lost quorum,
 * stop, and membership. With UC_REPL_BENCH=1 it also prints proposals/s. */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>

#include "uc_check.h"
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>

#include "uc/alloc.h"
#include "uc/clock.h"
#include "uc/repl.h"

/* --- a zero-filling heap for libraft ----------------------------------------------------
 * libraft 0.15 writes the padding of buffers it allocates without filling
 * it (segment blocks, encoded configurations); valgrind reports each write.
 * Zeroing raft's allocations keeps the valgrind run about our code. */

static void *zmalloc(void *data, size_t n)
{
    (void)data;
    return calloc(1, n ? n : 1);
}

static void zfree(void *data, void *p)
{
    (void)data;
    free(p);
}

static void *zcalloc(void *data, size_t nmemb, size_t n)
{
    (void)data;
    return calloc(nmemb, n);
}

static void *zrealloc(void *data, void *p, size_t n)
{
    (void)data;
    return realloc(p, n); /* raft only grows arrays it fills itself */
}

static void *zaligned(void *data, size_t align, size_t n)
{
    (void)data;
    void *p = aligned_alloc(align, (n + align - 1) / align * align);
    if (p)
        memset(p, 0, n);
    return p;
}

static void zaligned_free(void *data, size_t align, void *p)
{
    (void)data;
    (void)align;
    free(p);
}

static struct raft_heap zero_heap = {NULL,     zmalloc,  zfree,        zcalloc,
                                     zrealloc, zaligned, zaligned_free};

static void sleep_ms(unsigned ms);

/* --- a thread-safe state machine that records the values it applied ---------------- */

struct csm {
    pthread_mutex_t mu;
    uint64_t *vals;
    size_t n, cap;
    int restores;
    uint64_t restore_index; /* highest snapshot index restored */
    /* Split snapshots: views begun and ended, encodes run, and whether an
     * encode ran off the thread that applies (and while it applied more).
     * While `hold` is set an encode waits (up to 10 s) with `encoding` set. */
    int begins, ends, encodes;
    pthread_t apply_thread;
    bool encoded_off_loop, applied_during_encode, hold, encoding;
    /* Grouped applies: values of the open group sit above `mark` until
     * group_end; groups committed, the largest tried, groups undone. Entry
     * fail_index fails its next fail_times applies (a local failure). */
    size_t mark, in_group;
    int groups, max_group, undone;
    uint64_t fail_index;
    int fail_times;
};

static int csm_push(struct csm *s, uint64_t v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint64_t *p = uc_realloc(s->vals, cap * sizeof(*p));
        if (!p)
            return UC_ENOMEM;
        s->vals = p;
        s->cap = cap;
    }
    s->vals[s->n++] = v;
    return 0;
}

#define ODD_BASE 1000

static int csm_apply(void *ctx, const void *cmd, size_t len, uint64_t index, void **result)
{
    struct csm *s = ctx;
    uint64_t v = 0;
    (void)index;
    if (len == sizeof(v))
        memcpy(&v, cmd, sizeof(v));
    else if (len > 0 && memchr(cmd, 0, len) == NULL)
        v = ODD_BASE + len; /* a raw command of `len` bytes, each 'a' + len */
    for (size_t k = 0; len != sizeof(v) && k < len; k++)
        if (((const uint8_t *)cmd)[k] != (uint8_t)('a' + len))
            v = 0; /* the payload came back altered: the test sees a 0 */
    pthread_mutex_lock(&s->mu);
    if (index == s->fail_index && s->fail_times > 0) {
        s->fail_times--;
        pthread_mutex_unlock(&s->mu);
        return UC_EIO;
    }
    s->in_group++;
    int rv = csm_push(s, v);
    *result = (void *)(uintptr_t)s->n; /* no allocation: free_result stays NULL */
    s->apply_thread = pthread_self();
    pthread_mutex_unlock(&s->mu);
    return rv;
}

static int csm_group_begin(void *ctx)
{
    struct csm *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->mark = s->n;
    s->in_group = 0;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int csm_group_end(void *ctx, bool commit)
{
    struct csm *s = ctx;
    pthread_mutex_lock(&s->mu);
    if (commit) {
        /* a commit costs something (SQLite's does): entries queue behind it */
        pthread_mutex_unlock(&s->mu);
        sleep_ms(5);
        pthread_mutex_lock(&s->mu);
        s->groups++;
    } else {
        s->n = s->mark;
        s->undone++;
    }
    if ((int)s->in_group > s->max_group)
        s->max_group = (int)s->in_group;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int csm_snapshot(void *ctx, void **buf, size_t *len)
{
    struct csm *s = ctx;
    pthread_mutex_lock(&s->mu);
    *len = s->n * sizeof(uint64_t);
    *buf = uc_malloc(*len);
    if (*buf && *len)
        memcpy(*buf, s->vals, *len);
    pthread_mutex_unlock(&s->mu);
    return *buf ? 0 : UC_ENOMEM;
}

/* The split: a view is the count at begin (values are only appended, and a
 * restore cannot run while raft takes a snapshot); encode copies that many
 * under the lock, as apply may be growing the array meanwhile. */
struct csm_view {
    size_t n;
};

static int csm_begin(void *ctx, void **view)
{
    struct csm *s = ctx;
    struct csm_view *v = uc_malloc(sizeof(*v));
    if (!v)
        return UC_ENOMEM;
    pthread_mutex_lock(&s->mu);
    v->n = s->n;
    s->begins++;
    pthread_mutex_unlock(&s->mu);
    *view = v;
    return 0;
}

static int csm_encode(void *ctx, void *view, size_t room, void **buf, size_t *len)
{
    struct csm *s = ctx;
    const struct csm_view *v = view;
    pthread_mutex_lock(&s->mu);
    s->encoding = true;
    for (int waited = 0; s->hold && waited < 2000; waited++) {
        pthread_mutex_unlock(&s->mu);
        sleep_ms(5);
        pthread_mutex_lock(&s->mu);
    }
    s->encoding = false;
    *len = room + v->n * sizeof(uint64_t);
    *buf = uc_malloc(*len);
    if (*buf && v->n)
        memcpy((uint8_t *)*buf + room, s->vals, v->n * sizeof(uint64_t));
    s->encodes++;
    if (!pthread_equal(pthread_self(), s->apply_thread))
        s->encoded_off_loop = true;
    if (s->n > v->n)
        s->applied_during_encode = true;
    pthread_mutex_unlock(&s->mu);
    return *buf ? 0 : UC_ENOMEM;
}

static void csm_end(void *ctx, void *view)
{
    struct csm *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->ends++;
    pthread_mutex_unlock(&s->mu);
    uc_free(view);
}

static int csm_restore(void *ctx, const void *buf, size_t len, uint64_t index)
{
    struct csm *s = ctx;
    int rv = 0;
    pthread_mutex_lock(&s->mu);
    s->n = 0;
    for (size_t k = 0; k < len / sizeof(uint64_t) && rv == 0; k++) {
        uint64_t v;
        memcpy(&v, (const uint8_t *)buf + k * sizeof(v), sizeof(v));
        rv = csm_push(s, v);
    }
    s->restores++;
    if (index > s->restore_index)
        s->restore_index = index;
    pthread_mutex_unlock(&s->mu);
    return rv;
}

static size_t csm_count(struct csm *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* --- a cluster of members ----------------------------------------------------------- */

#define MAXN 5

struct node {
    uint64_t id;
    char addr[64];
    char dir[512];
    struct csm sm;
    struct uc_repl *repl; /* NULL while stopped */
};

static struct {
    char base[256];
    struct node nodes[MAXN];
    unsigned snapshot_threshold, snapshot_trailing;
    bool split;     /* members use the snapshot_begin/encode/end split */
    bool grouped;   /* members group their applies (an apply thread) */
    unsigned scale; /* timeouts multiplier (valgrind is slow) */
} C;

static struct uc_repl_sm csm_sm(struct csm *s)
{
    struct uc_repl_sm sm = {
        .apply = csm_apply, .snapshot = csm_snapshot, .restore = csm_restore, .ctx = s};
    if (C.split) {
        sm.snapshot_begin = csm_begin;
        sm.snapshot_encode = csm_encode;
        sm.snapshot_end = csm_end;
    }
    if (C.grouped) {
        sm.group_begin = csm_group_begin;
        sm.group_end = csm_group_end;
    }
    return sm;
}

static unsigned slow(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload") ? 6 : 1;
}

static int64_t now(void) { return uc_clock_mono_ms(NULL); }

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Reserve n free loopback ports (bound together so they differ). */
static void pick_ports(unsigned n)
{
    int fds[MAXN];
    for (unsigned i = 0; i < n; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fds[i], 0);
        ck_assert_int_eq(bind(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
        ck_assert_int_eq(getsockname(fds[i], (struct sockaddr *)&a, &alen), 0);
        snprintf(C.nodes[i].addr, sizeof(C.nodes[i].addr), "127.0.0.1:%u", ntohs(a.sin_port));
    }
    for (unsigned i = 0; i < n; i++)
        ck_assert_int_eq(close(fds[i]), 0);
}

static void setup(void)
{
    memset(&C, 0, sizeof(C));
    C.scale = slow();
    snprintf(C.base, sizeof(C.base), "/tmp/uc-repl-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(C.base));
    pick_ports(MAXN);
    for (unsigned i = 0; i < MAXN; i++) {
        struct node *n = &C.nodes[i];
        n->id = i + 1;
        snprintf(n->dir, sizeof(n->dir), "%s/n%u", C.base, i + 1);
        ck_assert_int_eq(pthread_mutex_init(&n->sm.mu, NULL), 0);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    for (unsigned i = 0; i < MAXN; i++) {
        uc_repl_destroy(C.nodes[i].repl);
        uc_free(C.nodes[i].sm.vals);
        pthread_mutex_destroy(&C.nodes[i].sm.mu);
    }
    ck_assert_int_eq(nftw(C.base, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Start member i; the first `voters` members form the bootstrap list (0: join). */
static int start_node(unsigned i, unsigned voters, char err[UC_ERR_LEN])
{
    struct uc_repl_member boot[MAXN];
    for (unsigned k = 0; k < voters; k++) {
        boot[k].id = C.nodes[k].id;
        snprintf(boot[k].addr, sizeof(boot[k].addr), "%s", C.nodes[k].addr);
        boot[k].role = UC_REPL_VOTER;
    }
    struct node *n = &C.nodes[i];
    pthread_mutex_lock(&n->sm.mu);
    n->sm.n = 0; /* a fresh process: restore and replay rebuild the state */
    pthread_mutex_unlock(&n->sm.mu);
    struct uc_repl_config cfg = {
        .id = n->id,
        .address = n->addr,
        .data_dir = n->dir,
        .sm = csm_sm(&n->sm),
        .bootstrap = boot,
        .n_bootstrap = voters,
        .election_timeout_ms = 500 * C.scale,
        .heartbeat_ms = 50 * C.scale,
        .snapshot_threshold = C.snapshot_threshold,
        .snapshot_trailing = C.snapshot_trailing,
    };
    return uc_repl_create(&n->repl, &cfg, err);
}

static void start3(void)
{
    char err[UC_ERR_LEN];
    for (unsigned i = 0; i < 3; i++)
        ck_assert_msg(start_node(i, 3, err) == 0, "start %u: %s", i, err);
}

static void stop_node(unsigned i)
{
    uc_repl_destroy(C.nodes[i].repl);
    C.nodes[i].repl = NULL;
}

/* Index of the member every running member agrees leads, or -1 after max_ms. */
static int wait_leader(unsigned max_ms)
{
    int64_t end = now() + max_ms * C.scale;
    do {
        int leader = -1;
        bool agree = true;
        for (unsigned i = 0; i < MAXN && agree; i++) {
            struct uc_repl_status st;
            if (!C.nodes[i].repl)
                continue;
            uc_repl_status(C.nodes[i].repl, &st);
            if (st.role == UC_REPL_LEADER)
                leader = (int)i;
            if (st.leader_id == 0 || (leader >= 0 && st.leader_id != C.nodes[leader].id))
                agree = false;
        }
        if (agree && leader >= 0)
            return leader;
        sleep_ms(10);
    } while (now() < end);
    return -1;
}

static int follower_of(int leader)
{
    for (unsigned i = 0; i < MAXN; i++)
        if (C.nodes[i].repl && (int)i != leader)
            return (int)i;
    return -1;
}

static bool wait_count(unsigned i, size_t n, unsigned max_ms)
{
    int64_t end = now() + max_ms * C.scale;
    while (csm_count(&C.nodes[i].sm) < n && now() < end)
        sleep_ms(10);
    return csm_count(&C.nodes[i].sm) >= n;
}

static void assert_same_log(unsigned a, unsigned b)
{
    struct csm *x = &C.nodes[a].sm, *y = &C.nodes[b].sm;
    pthread_mutex_lock(&x->mu);
    pthread_mutex_lock(&y->mu);
    ck_assert_uint_eq(x->n, y->n);
    ck_assert_int_eq(memcmp(x->vals, y->vals, x->n * sizeof(uint64_t)), 0);
    pthread_mutex_unlock(&y->mu);
    pthread_mutex_unlock(&x->mu);
}

/* --- waiting for one callback --------------------------------------------------------- */

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fired;
    int status;
    bool unknown;
    uint64_t index;
    uintptr_t result;
    int64_t at;
    char msg[UC_ERR_LEN];
};

static void waiter_init(struct waiter *w)
{
    memset(w, 0, sizeof(*w));
    ck_assert_int_eq(pthread_mutex_init(&w->mu, NULL), 0);
    ck_assert_int_eq(pthread_cond_init(&w->cv, NULL), 0);
}

static void waiter_fini(struct waiter *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

static void on_done(void *ctx, const struct uc_repl_done *d)
{
    struct waiter *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->fired++;
    w->status = d->status;
    w->unknown = d->unknown;
    w->index = d->index;
    w->result = (uintptr_t)d->result;
    w->at = now();
    snprintf(w->msg, sizeof(w->msg), "%s", d->msg);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Wait for the callback (the module promises one; the cap only guards the test). */
static void waiter_wait(struct waiter *w)
{
    int64_t end = now() + 30000 * C.scale;
    pthread_mutex_lock(&w->mu);
    while (!w->fired && now() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    ck_assert_int_eq(w->fired, 1);
}

static int propose_sync(unsigned i, uint64_t v, unsigned timeout_ms, struct waiter *w)
{
    char err[UC_ERR_LEN];
    waiter_init(w);
    ck_assert_msg(uc_repl_propose(C.nodes[i].repl, &v, sizeof(v), now() + timeout_ms * C.scale,
                                  on_done, w, err) == 0,
                  "propose: %s", err);
    waiter_wait(w);
    waiter_fini(w);
    return w->status;
}

/* Propose on whoever leads, retrying through elections. */
static void propose_ok(uint64_t v)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        int l = wait_leader(5000);
        ck_assert_int_ge(l, 0);
        struct waiter w;
        if (propose_sync((unsigned)l, v, 3000, &w) == 0)
            return;
        ck_assert_msg(!w.unknown, "write %llu outcome unknown: %s", (unsigned long long)v, w.msg);
    }
    ck_abort_msg("no leader accepted write %llu", (unsigned long long)v);
}

/* --- elections and the write path -------------------------------------------------------- */

START_TEST(three_members_elect_one_leader_within_seconds)
{
    start3();
    int64_t t0 = now();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    ck_assert_int_lt(now() - t0, 5000 * (int64_t)C.scale);
    uint64_t id = 0;
    char addr[UC_REPL_ADDR_LEN];
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(uc_repl_leader(C.nodes[i].repl, &id, addr), 0);
        ck_assert_uint_eq(id, C.nodes[l].id);
        ck_assert_str_eq(addr, C.nodes[l].addr);
    }
    struct uc_repl_status st;
    uc_repl_status(C.nodes[l].repl, &st);
    ck_assert_int_eq(st.role, UC_REPL_LEADER);
    ck_assert_uint_eq(st.n_members, 3);
    ck_assert_int_eq(st.members[0].role, UC_REPL_VOTER);
}
END_TEST

struct flood {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ok;
    char first_err[UC_ERR_LEN];
};

static void flood_cb(void *ctx, const struct uc_repl_done *d)
{
    struct flood *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->done++;
    if (d->status == 0)
        f->ok++;
    else if (!f->first_err[0])
        snprintf(f->first_err, sizeof(f->first_err), "%d %s", d->status, d->msg);
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

struct flooder {
    pthread_t th;
    unsigned node, thread, count;
    struct flood *f;
};

static void *flooder_main(void *arg)
{
    struct flooder *fl = arg;
    char err[UC_ERR_LEN];
    for (unsigned k = 0; k < fl->count; k++) {
        uint64_t v = (uint64_t)fl->thread * 100000 + k;
        int rv = uc_repl_propose(C.nodes[fl->node].repl, &v, sizeof(v), now() + 30000 * C.scale,
                                 flood_cb, fl->f, err);
        if (rv != 0)
            flood_cb(fl->f, &(struct uc_repl_done){.status = rv, .msg = err});
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void concurrent_run(void)
{
    enum { THREADS = 4, EACH = 250, TOTAL = THREADS * EACH };
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    if (C.grouped) { /* entry 200 fails once everywhere, likely inside a group */
        struct uc_repl_status st;
        uc_repl_status(C.nodes[l].repl, &st);
        for (unsigned i = 0; i < 3; i++) {
            pthread_mutex_lock(&C.nodes[i].sm.mu);
            C.nodes[i].sm.fail_index = st.last_index + 200;
            C.nodes[i].sm.fail_times = 1;
            pthread_mutex_unlock(&C.nodes[i].sm.mu);
        }
    }
    struct flood f = {.done = 0};
    ck_assert_int_eq(pthread_mutex_init(&f.mu, NULL), 0);
    ck_assert_int_eq(pthread_cond_init(&f.cv, NULL), 0);
    struct flooder fl[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
        fl[t] = (struct flooder){.node = (unsigned)l, .thread = t, .count = EACH, .f = &f};
        ck_assert_int_eq(pthread_create(&fl[t].th, NULL, flooder_main, &fl[t]), 0);
    }
    for (unsigned t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_join(fl[t].th, NULL), 0);
    pthread_mutex_lock(&f.mu);
    while (f.done < TOTAL)
        pthread_cond_wait(&f.cv, &f.mu); /* every proposal has a deadline: no hang */
    pthread_mutex_unlock(&f.mu);
    ck_assert_msg(f.ok == TOTAL, "%d of %d failed, first: %s", TOTAL - f.ok, TOTAL, f.first_err);
    for (unsigned i = 0; i < 3; i++)
        ck_assert(wait_count(i, TOTAL, 10000));
    assert_same_log(0, 1);
    assert_same_log(0, 2);
    uint64_t *sorted = uc_malloc(TOTAL * sizeof(uint64_t));
    ck_assert_ptr_nonnull(sorted);
    pthread_mutex_lock(&C.nodes[0].sm.mu);
    ck_assert_uint_eq(C.nodes[0].sm.n, TOTAL);
    memcpy(sorted, C.nodes[0].sm.vals, TOTAL * sizeof(uint64_t));
    pthread_mutex_unlock(&C.nodes[0].sm.mu);
    qsort(sorted, TOTAL, sizeof(uint64_t), cmp_u64);
    for (unsigned t = 0, k = 0; t < THREADS; t++)
        for (unsigned j = 0; j < EACH; j++, k++)
            ck_assert_uint_eq(sorted[k], (uint64_t)t * 100000 + j); /* each exactly once */
    uc_free(sorted);
    struct uc_repl_status st;
    uc_repl_status(C.nodes[l].repl, &st);
    ck_assert_uint_eq(st.stats.proposals, TOTAL);
    ck_assert_uint_lt(st.stats.batches, TOTAL); /* some proposals shared a raft_apply */
    /* Counted, one entry per group at least. Whether entries share groups is
     * checked below over all members: the leader's own commits may all come
     * one at a time. */
    if (C.grouped)
        ck_assert(st.stats.apply_groups > 0 && st.stats.apply_groups <= TOTAL);
    else
        ck_assert_uint_eq(st.stats.apply_groups, 0);
    pthread_cond_destroy(&f.cv);
    pthread_mutex_destroy(&f.mu);
    int max_group = 0;
    for (unsigned i = 0; C.grouped && i < 3; i++) {
        pthread_mutex_lock(&C.nodes[i].sm.mu);
        ck_assert_int_eq(C.nodes[i].sm.fail_times, 0); /* met, and applied after all */
        ck_assert_int_ge(C.nodes[i].sm.undone, 1);
        ck_assert_int_le(C.nodes[i].sm.groups, TOTAL);
        if (C.nodes[i].sm.max_group > max_group)
            max_group = C.nodes[i].sm.max_group;
        pthread_mutex_unlock(&C.nodes[i].sm.mu);
    }
    /* The leader's commits come in batches: entries queue behind a commit. */
    ck_assert(!C.grouped || max_group > 1);
}

START_TEST(concurrent_proposals_apply_once_in_the_same_order_everywhere) { concurrent_run(); }
END_TEST

/* The same with grouped applies on an apply thread, one entry failing once
 * on every member: its group is undone and applied again, entry by entry. */
START_TEST(grouped_applies_keep_the_order_and_apply_each_entry_once)
{
    C.grouped = true;
    concurrent_run();
}
END_TEST

/* An entry that keeps failing holds up this member only: the proposer hears
 * of it once it applied, linearizable reads meanwhile answer 503. */
START_TEST(a_failing_grouped_apply_is_retried_and_reads_wait_for_it)
{
    C.grouped = true;
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    propose_ok(1);
    struct uc_repl_status st;
    uc_repl_status(C.nodes[l].repl, &st);
    pthread_mutex_lock(&C.nodes[l].sm.mu);
    C.nodes[l].sm.fail_index = st.last_index + 1;
    C.nodes[l].sm.fail_times = 2;
    pthread_mutex_unlock(&C.nodes[l].sm.mu);
    struct waiter p, r;
    char err[UC_ERR_LEN];
    uint64_t v = 2;
    waiter_init(&p);
    int64_t t0 = now();
    ck_assert_int_eq(
        uc_repl_propose(C.nodes[l].repl, &v, sizeof(v), now() + 10000 * C.scale, on_done, &p, err),
        0);
    ck_assert(wait_count((unsigned)follower_of(l), 2, 5000)); /* the followers are fine */
    waiter_init(&r);
    ck_assert_int_eq(
        uc_repl_read_barrier(C.nodes[l].repl, now() + 5000 * C.scale, on_done, &r, err), 0);
    waiter_wait(&r);
    ck_assert_int_eq(r.status, UC_EUNAVAIL);
    ck_assert_msg(strstr(r.msg, "cannot apply entry") != NULL, "%s", r.msg);
    struct uc_repl_status now_st;
    uc_repl_status(C.nodes[l].repl, &now_st); /* the status says so too (readyz) */
    ck_assert_msg(strstr(now_st.apply_error, "cannot apply entry") != NULL, "%s",
                  now_st.apply_error);
    waiter_wait(&p);
    ck_assert_int_eq(p.status, 0);
    ck_assert_uint_eq(p.index, st.last_index + 1);
    ck_assert_int_ge(p.at - t0, 900); /* two failures, a second apart */
    ck_assert(wait_count((unsigned)l, 2, 5000));
    for (unsigned i = 0; i < 3; i++)
        if ((int)i != l)
            assert_same_log((unsigned)l, i);
    waiter_fini(&p);
    waiter_fini(&r);
    waiter_init(&r); /* caught up: reads go through again */
    ck_assert_int_eq(uc_repl_read_barrier(C.nodes[l].repl, now() + 3000, on_done, &r, err), 0);
    waiter_wait(&r);
    ck_assert_int_eq(r.status, 0);
    waiter_fini(&r);
    uc_repl_status(C.nodes[l].repl, &now_st);
    ck_assert_str_eq(now_st.apply_error, "");
    ck_assert_uint_ge(now_st.stats.apply_groups, 2);
}
END_TEST

START_TEST(follower_refuses_a_proposal_and_names_the_leader)
{
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    int fo = follower_of(l);
    struct waiter w;
    ck_assert_int_eq(propose_sync((unsigned)fo, 1, 2000, &w), UC_EUNAVAIL);
    ck_assert(!w.unknown);
    char want[UC_ERR_LEN];
    snprintf(want, sizeof(want), "not the leader (leader is %llu at %s)",
             (unsigned long long)C.nodes[l].id, C.nodes[l].addr);
    ck_assert_str_eq(w.msg, want);
}
END_TEST

START_TEST(read_barrier_confirms_the_leader_and_refuses_on_followers)
{
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    struct waiter p, r, fr;
    ck_assert_int_eq(propose_sync((unsigned)l, 5, 3000, &p), 0);
    char err[UC_ERR_LEN];
    waiter_init(&r);
    ck_assert_int_eq(uc_repl_read_barrier(C.nodes[l].repl, now() + 3000, on_done, &r, err), 0);
    waiter_wait(&r);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_gt(r.index, p.index);
    waiter_init(&fr);
    ck_assert_int_eq(
        uc_repl_read_barrier(C.nodes[follower_of(l)].repl, now() + 3000, on_done, &fr, err), 0);
    waiter_wait(&fr);
    ck_assert_int_eq(fr.status, UC_EUNAVAIL);
    ck_assert(strstr(fr.msg, "leader is") != NULL);
    waiter_fini(&r);
    waiter_fini(&fr);
}
END_TEST

/* --- failures and restarts ---------------------------------------------------------------- */

START_TEST(stopping_the_leader_elects_another_and_writes_continue)
{
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    for (uint64_t v = 1; v <= 10; v++)
        propose_ok(v);
    stop_node((unsigned)l);
    int64_t t0 = now();
    int l2 = wait_leader(5000);
    ck_assert_int_ge(l2, 0);
    ck_assert_int_ne(l2, l);
    ck_assert_int_lt(now() - t0, 5000 * (int64_t)C.scale);
    for (uint64_t v = 11; v <= 20; v++)
        propose_ok(v);
    char err[UC_ERR_LEN];
    ck_assert_msg(start_node((unsigned)l, 3, err) == 0, "restart: %s", err);
    ck_assert(wait_count((unsigned)l, 20, 10000));
    assert_same_log((unsigned)l, (unsigned)l2);
}
END_TEST

static void restart_run(void)
{
    C.snapshot_threshold = 32;
    C.snapshot_trailing = 8;
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    for (uint64_t v = 1; v <= 10; v++)
        propose_ok(v);
    int fo = follower_of(l);
    ck_assert(wait_count((unsigned)fo, 10, 5000));
    stop_node((unsigned)fo);
    struct flood f = {.done = 0};
    ck_assert_int_eq(pthread_mutex_init(&f.mu, NULL), 0);
    ck_assert_int_eq(pthread_cond_init(&f.cv, NULL), 0);
    struct flooder fl = {.node = (unsigned)l, .thread = 1, .count = 300, .f = &f};
    flooder_main(&fl);
    pthread_mutex_lock(&f.mu);
    while (f.done < 300)
        pthread_cond_wait(&f.cv, &f.mu);
    pthread_mutex_unlock(&f.mu);
    ck_assert_msg(f.ok == 300, "first failure: %s", f.first_err);
    struct uc_repl_status st;
    int64_t end = now() + 5000 * C.scale;
    do { /* the snapshot is written in the background */
        sleep_ms(10);
        uc_repl_status(C.nodes[l].repl, &st);
    } while (st.snapshot_index <= 50 && now() < end);
    ck_assert_uint_gt(st.snapshot_index, 50); /* compacted well past the stopped member */
    /* Let raft_uv's queue for the stopped peer (a few messages, oldest
     * dropped) fill with messages built after the compaction. */
    sleep_ms(10 * 50 * C.scale);
    char err[UC_ERR_LEN];
    ck_assert_msg(start_node((unsigned)fo, 3, err) == 0, "restart: %s", err);
    ck_assert(wait_count((unsigned)fo, 310, 15000));
    assert_same_log((unsigned)fo, (unsigned)l);
    pthread_mutex_lock(&C.nodes[fo].sm.mu);
    uint64_t restored = C.nodes[fo].sm.restore_index;
    pthread_mutex_unlock(&C.nodes[fo].sm.mu);
    ck_assert_uint_gt(restored, 20); /* installed from the leader, past its own state */
    pthread_cond_destroy(&f.cv);
    pthread_mutex_destroy(&f.mu);
}

START_TEST(restarted_member_catches_up_through_a_snapshot) { restart_run(); }
END_TEST

/* Snapshots, installs and restarts wait for the apply thread. */
START_TEST(grouped_member_catches_up_through_a_snapshot)
{
    C.grouped = true;
    restart_run();
}
END_TEST

/* Flood member `node` with THREADS x `each` proposals numbered from
 * `base`; wait for every answer and insist they all succeeded. */
static void flood_all(unsigned node, unsigned base, unsigned each)
{
    enum { THREADS = 4 };
    struct flood f = {.done = 0};
    ck_assert_int_eq(pthread_mutex_init(&f.mu, NULL), 0);
    ck_assert_int_eq(pthread_cond_init(&f.cv, NULL), 0);
    struct flooder fl[THREADS];
    for (unsigned t = 0; t < THREADS; t++) {
        fl[t] = (struct flooder){.node = node, .thread = base + t, .count = each, .f = &f};
        ck_assert_int_eq(pthread_create(&fl[t].th, NULL, flooder_main, &fl[t]), 0);
    }
    for (unsigned t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_join(fl[t].th, NULL), 0);
    pthread_mutex_lock(&f.mu);
    while (f.done < (int)(THREADS * each))
        pthread_cond_wait(&f.cv, &f.mu); /* every proposal has a deadline: no hang */
    pthread_mutex_unlock(&f.mu);
    ck_assert_msg(f.ok == (int)(THREADS * each), "%d failed, first: %s",
                  (int)(THREADS * each) - f.ok, f.first_err);
    pthread_cond_destroy(&f.cv);
    pthread_mutex_destroy(&f.mu);
}

static bool csm_flag(struct csm *s, const bool *flag)
{
    pthread_mutex_lock(&s->mu);
    bool v = *flag;
    pthread_mutex_unlock(&s->mu);
    return v;
}

/* Split snapshots: the leader's first encode is held on its pool thread
 * while a second flood of proposals is applied; it must still write the
 * state as of the index it was begun at. A member that missed everything
 * installs a snapshot and ends up with the same log, and every member
 * restarted from its own snapshots and log does too. */
START_TEST(split_snapshots_are_encoded_off_the_loop_while_proposals_continue)
{
    C.split = true;
    C.snapshot_threshold = 32;
    C.snapshot_trailing = 8;
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    int fo = follower_of(l);
    stop_node((unsigned)fo);
    struct csm *ls = &C.nodes[l].sm;
    pthread_mutex_lock(&ls->mu);
    ls->hold = true;
    pthread_mutex_unlock(&ls->mu);
    flood_all((unsigned)l, 0, 40);
    int64_t end = now() + 5000 * C.scale;
    while (!csm_flag(ls, &ls->encoding) && now() < end)
        sleep_ms(5);
    ck_assert(csm_flag(ls, &ls->encoding));
    flood_all((unsigned)l, 10, 40); /* applied while the encode is held */
    pthread_mutex_lock(&ls->mu);
    ls->hold = false;
    pthread_mutex_unlock(&ls->mu);
    flood_all((unsigned)l, 20, 40);
    size_t total = 480;
    struct uc_repl_status st;
    end = now() + 10000 * C.scale;
    do { /* raft looks at the threshold only when it applies: keep writing */
        propose_ok(900000 + total++);
        sleep_ms(10);
        uc_repl_status(C.nodes[l].repl, &st);
    } while (st.snapshot_index <= 400 && now() < end);
    ck_assert_uint_gt(st.snapshot_index, 400);
    pthread_mutex_lock(&ls->mu);
    int encodes = ls->encodes;
    bool off_loop = ls->encoded_off_loop, during = ls->applied_during_encode;
    pthread_mutex_unlock(&ls->mu);
    ck_assert_int_ge(encodes, 2);
    ck_assert(off_loop);
    ck_assert(during);
    char err[UC_ERR_LEN];
    sleep_ms(10 * 50 * C.scale); /* as above: let the stopped peer's queue turn over */
    ck_assert_msg(start_node((unsigned)fo, 3, err) == 0, "restart: %s", err);
    ck_assert(wait_count((unsigned)fo, total, 15000));
    assert_same_log((unsigned)fo, (unsigned)l);
    pthread_mutex_lock(&C.nodes[fo].sm.mu);
    uint64_t restored = C.nodes[fo].sm.restore_index;
    pthread_mutex_unlock(&C.nodes[fo].sm.mu);
    ck_assert_uint_gt(restored, 32);
    int restores[3];
    for (unsigned i = 0; i < 3; i++)
        stop_node(i);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(C.nodes[i].sm.begins, C.nodes[i].sm.ends); /* every view ended */
        restores[i] = C.nodes[i].sm.restores;
        ck_assert_msg(start_node(i, 3, err) == 0, "restart %u: %s", i, err);
    }
    ck_assert_int_ge(wait_leader(10000), 0);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert(wait_count(i, total, 10000));
        pthread_mutex_lock(&C.nodes[i].sm.mu);
        int now_restores = C.nodes[i].sm.restores;
        pthread_mutex_unlock(&C.nodes[i].sm.mu);
        ck_assert_int_gt(now_restores, restores[i]); /* its own latest snapshot */
    }
    assert_same_log(0, 1);
    assert_same_log(0, 2);
}
END_TEST

/* libraft stores entries in whole 8-byte words: commands of every length
 * must come back byte for byte after every member restarts from disk. */
START_TEST(odd_length_commands_survive_a_full_restart)
{
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    char err[UC_ERR_LEN];
    for (size_t len = 1; len <= 13; len++) {
        if (len == sizeof(uint64_t))
            continue;
        char cmd[16];
        memset(cmd, 'a' + (int)len, len);
        struct waiter w;
        waiter_init(&w);
        ck_assert_msg(uc_repl_propose(C.nodes[l].repl, cmd, len, now() + 5000 * C.scale, on_done,
                                      &w, err) == 0,
                      "propose: %s", err);
        waiter_wait(&w);
        waiter_fini(&w);
        ck_assert_int_eq(w.status, 0);
    }
    for (unsigned i = 0; i < 3; i++)
        ck_assert(wait_count(i, 12, 5000));
    for (unsigned i = 0; i < 3; i++)
        stop_node(i);
    for (unsigned i = 0; i < 3; i++)
        ck_assert_msg(start_node(i, 3, err) == 0, "restart %u: %s", i, err);
    ck_assert_int_ge(wait_leader(10000), 0);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert(wait_count(i, 12, 10000));
        pthread_mutex_lock(&C.nodes[i].sm.mu);
        size_t at = 0;
        for (uint64_t len = 1; len <= 13; len++)
            if (len != sizeof(uint64_t))
                ck_assert_uint_eq(C.nodes[i].sm.vals[at++], ODD_BASE + len);
        pthread_mutex_unlock(&C.nodes[i].sm.mu);
    }
}
END_TEST

START_TEST(deadline_is_kept_when_quorum_is_lost)
{
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    propose_ok(1);
    for (unsigned i = 0; i < 3; i++)
        if ((int)i != l)
            stop_node(i);
    struct waiter w;
    int64_t t0 = now();
    unsigned deadline = 800;
    int rv = propose_sync((unsigned)l, 2, deadline, &w);
    ck_assert_msg(rv == UC_ETIMEDOUT || rv == UC_EUNAVAIL, "status %d %s", rv, w.msg);
    ck_assert_int_le(w.at - t0, (int64_t)(deadline + 300) * C.scale);
    if (rv == UC_ETIMEDOUT)
        ck_assert(w.unknown); /* it reached the log; a later leader may commit it */
}
END_TEST

START_TEST(stop_fails_pending_requests_and_refuses_new_ones)
{
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    propose_ok(1);
    for (unsigned i = 0; i < 3; i++)
        if ((int)i != l)
            stop_node(i);
    struct waiter w;
    char err[UC_ERR_LEN];
    uint64_t v = 2;
    waiter_init(&w);
    ck_assert_int_eq(
        uc_repl_propose(C.nodes[l].repl, &v, sizeof(v), now() + 60000, on_done, &w, err), 0);
    sleep_ms(100);
    uc_repl_stop(C.nodes[l].repl);
    ck_assert_int_eq(w.fired, 1); /* answered before stop returned */
    ck_assert_int_eq(w.status, UC_EUNAVAIL);
    ck_assert_int_eq(
        uc_repl_propose(C.nodes[l].repl, &v, sizeof(v), now() + 1000, on_done, &w, err),
        UC_EUNAVAIL);
    ck_assert_int_eq(w.fired, 1);
    struct uc_repl_status st;
    uc_repl_status(C.nodes[l].repl, &st);
    ck_assert_int_eq(st.role, UC_REPL_UNAVAILABLE);
    ck_assert_int_eq(uc_repl_leader(C.nodes[l].repl, NULL, NULL), UC_EUNAVAIL);
    uc_repl_stop(C.nodes[l].repl); /* idempotent */
    waiter_fini(&w);
}
END_TEST

START_TEST(create_refuses_bad_configs_and_a_busy_data_dir)
{
    char err[UC_ERR_LEN];
    struct uc_repl *r = NULL;
    struct uc_repl_config cfg = {
        .id = 1,
        .address = C.nodes[0].addr,
        .data_dir = C.nodes[0].dir,
        .sm = csm_sm(&C.nodes[0].sm),
    };
    cfg.sm.snapshot_begin = csm_begin; /* without encode and end */
    ck_assert_int_eq(uc_repl_create(&r, &cfg, err), UC_EINVAL);
    ck_assert(strstr(err, "go together") != NULL);
    cfg.sm.snapshot_begin = NULL;
    cfg.id = 0;
    ck_assert_int_eq(uc_repl_create(&r, &cfg, err), UC_EINVAL);
    cfg.id = 1;
    cfg.address = "nohostport";
    ck_assert_int_eq(uc_repl_create(&r, &cfg, err), UC_EINVAL);
    cfg.address = C.nodes[0].addr;
    cfg.heartbeat_ms = 2000;
    ck_assert_int_eq(uc_repl_create(&r, &cfg, err), UC_EINVAL);
    ck_assert(strstr(err, "heartbeat") != NULL);
    cfg.heartbeat_ms = 0;
    struct uc_repl_member other = {.id = 2, .addr = "127.0.0.1:1", .role = UC_REPL_VOTER};
    cfg.bootstrap = &other;
    cfg.n_bootstrap = 1;
    ck_assert_int_eq(uc_repl_create(&r, &cfg, err), UC_EINVAL); /* without this member */
    cfg.n_bootstrap = 0;
    ck_assert_ptr_null(r);
    ck_assert_msg(start_node(0, 1, err) == 0, "%s", err);
    ck_assert_int_eq(uc_repl_create(&r, &cfg, err), UC_EBUSY);
    ck_assert_ptr_null(r);
    int l = wait_leader(5000); /* a single voter leads itself */
    ck_assert_int_eq(l, 0);
}
END_TEST

START_TEST(create_fails_cleanly_when_the_address_is_taken)
{
    char err[UC_ERR_LEN];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    a.sin_port = htons((uint16_t)atoi(strrchr(C.nodes[0].addr, ':') + 1));
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fd, 1), 0);
    ck_assert_int_eq(start_node(0, 1, err), UC_EIO);
    ck_assert_ptr_null(C.nodes[0].repl);
    ck_assert(strstr(err, C.nodes[0].addr) != NULL);
    ck_assert_int_eq(close(fd), 0);
    ck_assert_msg(start_node(0, 1, err) == 0, "%s", err); /* the dir was released */
}
END_TEST

START_TEST(create_unwinds_every_allocation_failure)
{
    char err[UC_ERR_LEN];
    int rv = UC_ENOMEM;
    for (long n = 0; n < 100 && rv == UC_ENOMEM; n++) {
        uc_alloc_fail_after(n);
        rv = start_node(0, 1, err);
        uc_alloc_fail_after(-1);
        if (rv != 0) {
            ck_assert_msg(rv == UC_ENOMEM, "after %ld allocations: %d %s", n, rv, err);
            ck_assert_ptr_null(C.nodes[0].repl);
        }
    }
    ck_assert_int_eq(rv, 0);
    ck_assert_int_eq(wait_leader(5000), 0);
}
END_TEST

/* --- membership ------------------------------------------------------------------------- */

static unsigned role_in(unsigned on, uint64_t id)
{
    struct uc_repl_status st;
    uc_repl_status(C.nodes[on].repl, &st);
    for (size_t k = 0; k < st.n_members; k++)
        if (st.members[k].id == id)
            return st.members[k].role;
    return 99;
}

START_TEST(fourth_member_joins_as_learner_is_promoted_leads_and_is_removed)
{
    char err[UC_ERR_LEN];
    struct waiter w;
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    for (uint64_t v = 1; v <= 5; v++)
        propose_ok(v);
    ck_assert_msg(start_node(3, 0, err) == 0, "join: %s", err); /* empty dir, no bootstrap */
    struct uc_repl *lr = C.nodes[l].repl;
    int64_t dl = now() + 20000 * C.scale;

    waiter_init(&w);
    ck_assert_int_eq(uc_repl_add_learner(lr, 4, C.nodes[3].addr, dl, on_done, &w, err), 0);
    ck_assert_int_eq(uc_repl_promote(lr, 4, dl, on_done, &w, err), UC_EBUSY);
    ck_assert_str_eq(err, "another membership change is in flight");
    waiter_wait(&w);
    ck_assert_msg(w.status == 0, "add: %s", w.msg);
    waiter_fini(&w);
    ck_assert_uint_eq(role_in((unsigned)l, 4), UC_REPL_LEARNER);
    ck_assert(wait_count(3, 5, 10000)); /* the learner receives the log */

    waiter_init(&w);
    ck_assert_int_eq(uc_repl_promote(lr, 4, dl, on_done, &w, err), 0);
    waiter_wait(&w);
    ck_assert_msg(w.status == 0, "promote: %s", w.msg);
    waiter_fini(&w);
    ck_assert_uint_eq(role_in((unsigned)l, 4), UC_REPL_VOTER);

    waiter_init(&w);
    ck_assert_int_eq(uc_repl_transfer(lr, 4, dl, on_done, &w, err), 0);
    waiter_wait(&w);
    ck_assert_msg(w.status == 0, "transfer: %s", w.msg);
    waiter_fini(&w);
    ck_assert_int_eq(wait_leader(5000), 3);
    propose_ok(6);

    waiter_init(&w); /* the leader removes itself */
    ck_assert_int_eq(uc_repl_remove(C.nodes[3].repl, 4, dl, on_done, &w, err), 0);
    waiter_wait(&w);
    ck_assert_msg(w.status == 0, "remove: %s", w.msg);
    waiter_fini(&w);
    stop_node(3);
    int l2 = wait_leader(5000);
    ck_assert(l2 >= 0 && l2 < 3);
    ck_assert_uint_eq(role_in((unsigned)l2, 4), 99);
    propose_ok(7);
    ck_assert(wait_count(0, 7, 5000));
}
END_TEST

/* --- measurement (UC_REPL_BENCH=1) --------------------------------------------------------- */

struct bencher {
    pthread_t th;
    unsigned node;
    int64_t until;
    unsigned long ops;
    uint64_t base;
};

static void *bencher_main(void *arg)
{
    struct bencher *b = arg;
    while (now() < b->until) {
        struct waiter w;
        if (propose_sync(b->node, b->base + b->ops, 5000, &w) == 0)
            b->ops++;
    }
    return NULL;
}

static void bench_run(unsigned leader, unsigned clients, unsigned secs)
{
    struct bencher b[64];
    ck_assert(clients >= 1 && clients <= 64);
    struct uc_repl_status s0, s1, f0, f1;
    uc_repl_status(C.nodes[leader].repl, &s0);
    unsigned fo = (unsigned)follower_of((int)leader);
    uc_repl_status(C.nodes[fo].repl, &f0);
    int64_t t0 = now();
    for (unsigned i = 0; i < clients; i++) {
        b[i] = (struct bencher){.node = leader, .until = t0 + secs * 1000, .base = i * 10000000ULL};
        ck_assert_int_eq(pthread_create(&b[i].th, NULL, bencher_main, &b[i]), 0);
    }
    unsigned long ops = 0;
    for (unsigned i = 0; i < clients; i++) {
        ck_assert_int_eq(pthread_join(b[i].th, NULL), 0);
        ops += b[i].ops;
    }
    double el = (double)(now() - t0) / 1000.0;
    uc_repl_status(C.nodes[leader].repl, &s1);
    uc_repl_status(C.nodes[fo].repl, &f1);
    double per_batch =
        (double)(s1.stats.proposals - s0.stats.proposals) /
        (double)(s1.stats.batches - s0.stats.batches + (s1.stats.batches == s0.stats.batches));
    double per_append =
        (double)(s1.stats.appended_entries - s0.stats.appended_entries) /
        (double)(s1.stats.appends - s0.stats.appends + (s1.stats.appends == s0.stats.appends));
    double f_per_append =
        (double)(f1.stats.appended_entries - f0.stats.appended_entries) /
        (double)(f1.stats.appends - f0.stats.appends + (f1.stats.appends == f0.stats.appends));
    printf("repl bench: %2u proposers: %8.0f proposals/s, %.2f entries per raft_apply, "
           "%.2f entries per leader append, %.2f per follower append\n",
           clients, (double)ops / el, per_batch, per_append, f_per_append);
}

START_TEST(measure_proposals_per_second)
{
    if (!getenv("UC_REPL_BENCH"))
        return;
    start3();
    int l = wait_leader(5000);
    ck_assert_int_ge(l, 0);
    propose_ok(1);
    const char *only = getenv("UC_REPL_BENCH_CLIENTS"); /* one count, e.g. for perf stat */
    if (only) {
        bench_run((unsigned)l, (unsigned)atoi(only), 3);
        return;
    }
    bench_run((unsigned)l, 1, 3);
    bench_run((unsigned)l, 16, 3);
    bench_run((unsigned)l, 64, 3);
}
END_TEST

/* --- log segments ------------------------------------------------------------------------- */

/* The size of the largest open segment file in member i's data dir. */
static long long open_segment_bytes(unsigned i)
{
    DIR *d = opendir(C.nodes[i].dir);
    ck_assert_ptr_nonnull(d);
    long long max = 0;
    char path[sizeof(C.nodes[i].dir) + 300];
    for (struct dirent *e = readdir(d); e; e = readdir(d)) {
        struct stat st;
        if (strncmp(e->d_name, "open-", 5) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", C.nodes[i].dir, e->d_name);
        ck_assert_int_eq(stat(path, &st), 0);
        max = st.st_size > max ? st.st_size : max;
    }
    ck_assert_int_eq(closedir(d), 0);
    return max;
}

/* Segment files hold the entries between two snapshots (512 bytes an entry,
 * from raft_uv's 8 MiB to 64 MiB), so that a snapshot, not a full segment,
 * is what closes one: each close stalls the member (lib/repl.c). */
START_TEST(log_segments_are_sized_by_the_snapshot_threshold)
{
    static const struct {
        unsigned threshold;
        long long bytes;
    } cases[] = {{100000, 100000 * 512}, {10000000, 64 << 20}, {1000, 8 << 20}};
    char err[UC_ERR_LEN];
    for (unsigned i = 0; i < 3; i++) {
        C.snapshot_threshold = cases[i].threshold;
        ck_assert_msg(start_node(0, 1, err) == 0, "%s", err);
        propose_ok(i + 1);
        ck_assert_int_eq(open_segment_bytes(0), cases[i].bytes);
        stop_node(0);
    }
}
END_TEST

int main(void)
{
    raft_heap_set(&zero_heap); /* before libraft allocates anything */
    Suite *s = suite_create("repl_cluster");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"election", three_members_elect_one_leader_within_seconds},
        {"propose", concurrent_proposals_apply_once_in_the_same_order_everywhere},
        {"propose", follower_refuses_a_proposal_and_names_the_leader},
        {"read_barrier", read_barrier_confirms_the_leader_and_refuses_on_followers},
        {"leader_loss", stopping_the_leader_elects_another_and_writes_continue},
        {"snapshot", restarted_member_catches_up_through_a_snapshot},
        {"grouped", grouped_applies_keep_the_order_and_apply_each_entry_once},
        {"grouped", a_failing_grouped_apply_is_retried_and_reads_wait_for_it},
        {"grouped", grouped_member_catches_up_through_a_snapshot},
        {"snapshot", split_snapshots_are_encoded_off_the_loop_while_proposals_continue},
        {"odd_lengths", odd_length_commands_survive_a_full_restart},
        {"segments", log_segments_are_sized_by_the_snapshot_threshold},
        {"deadline", deadline_is_kept_when_quorum_is_lost},
        {"stop", stop_fails_pending_requests_and_refuses_new_ones},
        {"create", create_refuses_bad_configs_and_a_busy_data_dir},
        {"create", create_fails_cleanly_when_the_address_is_taken},
        {"create", create_unwinds_every_allocation_failure},
        {"membership", fourth_member_joins_as_learner_is_promoted_leads_and_is_removed},
        {"bench", measure_proposals_per_second},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120 * slow());
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return uc_check_run(s);
}
