/* test_repl.c - the replication core and its fsm adapter, driven on raft's
 * in-memory fixture: batching, proposer matching, deadlines, shared read
 * barriers, leader changes, snapshot install and membership, all on the
 * fixture's simulated clock (no real I/O, no threads). */
#include <check.h>

#include "uc_check.h"
#include <stdio.h>
#include <string.h>

#include "repl_fixture.h"
#include "uc/alloc.h"

/* --- a state machine that records what it applied ------------------------------- */

#define TSM_MAX 4096

struct tsm {
    uint64_t vals[TSM_MAX]; /* applied values, in order */
    size_t n;
    int restores;
    uint64_t restore_index;
    int fail_next; /* make the next N applies fail transiently */
    int frees;     /* results freed through free_result */
    /* Split snapshots: views begun and ended, encodes that ran, how many
     * of them found entries applied after their begin, and failures to
     * inject into the next begin or encode. */
    int begins, ends, encodes, late_encodes;
    int fail_begin, fail_encode;
};

static int tsm_apply(void *ctx, const void *cmd, size_t len, uint64_t index, void **result)
{
    struct tsm *t = ctx;
    (void)index; /* checked through the proposers' done->index */
    if (t->fail_next > 0) {
        t->fail_next--;
        return UC_EIO;
    }
    uint64_t v = 0;
    if (len == sizeof(v))
        memcpy(&v, cmd, sizeof(v));
    ck_assert_uint_lt(t->n, TSM_MAX);
    t->vals[t->n++] = v;
    uint64_t *res = uc_malloc(sizeof(*res));
    ck_assert_ptr_nonnull(res);
    *res = t->n;
    *result = res;
    return 0;
}

static int tsm_snapshot(void *ctx, void **buf, size_t *len)
{
    struct tsm *t = ctx;
    *len = t->n * sizeof(uint64_t);
    *buf = uc_malloc(*len);
    if (!*buf)
        return UC_ENOMEM;
    memcpy(*buf, t->vals, *len);
    return 0;
}

static int tsm_restore(void *ctx, const void *buf, size_t len, uint64_t index)
{
    struct tsm *t = ctx;
    ck_assert_uint_eq(len % sizeof(uint64_t), 0);
    t->n = len / sizeof(uint64_t);
    memcpy(t->vals, buf, len);
    t->restores++;
    t->restore_index = index;
    return 0;
}

/* A view is the count at begin: values are only appended (the fixture runs
 * no restore while raft takes a snapshot). */
struct tsm_view {
    size_t n;
};

static int tsm_begin(void *ctx, void **view)
{
    struct tsm *t = ctx;
    if (t->fail_begin > 0) {
        t->fail_begin--;
        return UC_ENOMEM;
    }
    struct tsm_view *v = uc_malloc(sizeof(*v));
    if (!v)
        return UC_ENOMEM;
    v->n = t->n;
    t->begins++;
    *view = v;
    return 0;
}

static int tsm_encode(void *ctx, void *view, size_t room, void **buf, size_t *len)
{
    struct tsm *t = ctx;
    const struct tsm_view *v = view;
    t->encodes++;
    if (t->n > v->n)
        t->late_encodes++;
    if (t->fail_encode > 0) {
        t->fail_encode--;
        return UC_EIO;
    }
    *len = room + v->n * sizeof(uint64_t);
    *buf = uc_malloc(*len);
    if (!*buf)
        return UC_ENOMEM;
    memcpy((uint8_t *)*buf + room, t->vals, v->n * sizeof(uint64_t));
    return 0;
}

static void tsm_end(void *ctx, void *view)
{
    struct tsm *t = ctx;
    t->ends++;
    uc_free(view);
}

static void tsm_free_result(void *ctx, void *result)
{
    struct tsm *t = ctx;
    t->frees++;
    uc_free(result);
}

/* --- a fixture cluster with one core per server --------------------------------- */

#define FX_MAX REPL_FX_MAX

struct fx {
    struct repl_fx rf;
    struct repl_core core[FX_MAX];
    struct tsm sm[FX_MAX];
    bool closed;
    bool split; /* servers grown from now on use the snapshot split */
};

static struct fx *X;

static void fx_grow(void)
{
    unsigned i = X->rf.n;
    struct uc_repl_sm sm = {.apply = tsm_apply,
                            .snapshot = tsm_snapshot,
                            .restore = tsm_restore,
                            .free_result = tsm_free_result,
                            .ctx = &X->sm[i]};
    if (X->split) {
        sm.snapshot_begin = tsm_begin;
        sm.snapshot_encode = tsm_encode;
        sm.snapshot_end = tsm_end;
    }
    repl_fx_grow(&X->rf, &X->core[i], &sm, 0x1000 + i);
}

static bool split_next; /* the next setup grows split servers */

/* Three voters, server 0 elected. */
static void setup(void)
{
    X = uc_calloc(1, sizeof(*X));
    ck_assert_ptr_nonnull(X);
    X->split = split_next;
    ck_assert_int_eq(raft_fixture_initialize(&X->rf.f), 0);
    for (int i = 0; i < 3; i++)
        fx_grow();
    repl_fx_bootstrap(&X->rf, 3);
}

static void setup_split(void)
{
    split_next = true;
    setup();
    split_next = false;
}

static void teardown(void)
{
    if (!X->closed)
        raft_fixture_close(&X->rf.f);
    for (unsigned i = 0; i < X->rf.n; i++) {
        repl_fsm_release(&X->core[i]);
        ck_assert_int_eq(X->sm[i].begins, X->sm[i].ends); /* every view ended once */
        repl_core_fail_all(&X->core[i], "test over");
    }
    uc_free(X);
    X = NULL;
}

static int64_t fx_now(void) { return repl_fx_now(&X->rf); }

static struct raft *fx_raft(unsigned i) { return raft_fixture_get(&X->rf.f, i); }

static void fx_step(void) { repl_fx_step(&X->rf); }

static bool fx_until(repl_fx_pred pred, void *arg, unsigned max_ms)
{
    return repl_fx_until(&X->rf, pred, arg, max_ms);
}

static void fx_run(unsigned ms) { repl_fx_run(&X->rf, ms); }

/* --- recording callbacks ----------------------------------------------------------- */

struct outcome {
    int fired;
    int status;
    bool unknown;
    uint64_t index;
    uint64_t result; /* the apply count the proposal produced */
    int64_t at;      /* fixture time of the callback */
    char msg[UC_ERR_LEN];
};

static void record(void *ctx, const struct uc_repl_done *d)
{
    struct outcome *o = ctx;
    o->fired++;
    o->status = d->status;
    o->unknown = d->unknown;
    o->index = d->index;
    o->at = X ? fx_now() : 0;
    snprintf(o->msg, sizeof(o->msg), "%s", d->msg);
    if (d->result) {
        o->result = *(uint64_t *)d->result;
        uc_free(d->result);
    }
}

static bool fired(void *arg) { return ((struct outcome *)arg)->fired > 0; }

struct many {
    struct outcome *o;
    size_t n;
};

static bool all_fired(void *arg)
{
    struct many *m = arg;
    for (size_t i = 0; i < m->n; i++)
        if (!m->o[i].fired)
            return false;
    return true;
}

static void push_proposal(struct repl_list *l, uint64_t v, int64_t deadline, struct outcome *o)
{
    struct repl_item *it = repl_item_new_proposal(&v, sizeof(v), deadline, record, o);
    ck_assert_ptr_nonnull(it);
    repl_list_push(l, it);
}

static void propose(unsigned i, uint64_t v, int64_t deadline, struct outcome *o)
{
    struct repl_list l = {0};
    push_proposal(&l, v, deadline, o);
    repl_core_submit(&X->core[i], &l, fx_now());
    ck_assert_ptr_null(l.head);
}

static void submit_kind(unsigned i, enum repl_kind kind, uint64_t target, const char *addr,
                        int64_t deadline, struct outcome *o)
{
    struct repl_list l = {0};
    struct repl_item *it = repl_item_new(kind, deadline, record, o);
    ck_assert_ptr_nonnull(it);
    it->target = target;
    if (addr)
        snprintf(it->addr, sizeof(it->addr), "%s", addr);
    repl_list_push(&l, it);
    repl_core_submit(&X->core[i], &l, fx_now());
}

static void read_on(unsigned i, int64_t deadline, struct outcome *o)
{
    submit_kind(i, REPL_READ, 0, NULL, deadline, o);
}

struct applied_arg {
    unsigned server;
    size_t n;
};

static bool applied_n(void *arg)
{
    struct applied_arg *a = arg;
    return X->sm[a->server].n >= a->n;
}

struct index_arg {
    unsigned server;
    uint64_t index;
};

static bool applied_index(void *arg)
{
    struct index_arg *a = arg;
    return raft_last_applied(fx_raft(a->server)) >= a->index;
}

static void assert_same_log(unsigned a, unsigned b)
{
    ck_assert_uint_eq(X->sm[a].n, X->sm[b].n);
    for (size_t k = 0; k < X->sm[a].n; k++)
        ck_assert_uint_eq(X->sm[a].vals[k], X->sm[b].vals[k]);
}

/* --- submit -------------------------------------------------------------------------- */

START_TEST(leader_batches_and_applies_everywhere_in_order)
{
    struct outcome o[5] = {0};
    struct repl_list l = {0};
    for (uint64_t k = 0; k < 5; k++)
        push_proposal(&l, 100 + k, fx_now() + 5000, &o[k]);
    repl_core_submit(&X->core[0], &l, fx_now());
    ck_assert_uint_eq(X->core[0].stats.batches, 1);
    ck_assert_uint_eq(X->core[0].stats.proposals, 5);
    struct many m = {o, 5};
    ck_assert(fx_until(all_fired, &m, 2000));
    for (int k = 0; k < 5; k++) {
        ck_assert_int_eq(o[k].status, 0);
        ck_assert_int_eq(o[k].fired, 1);
        ck_assert_uint_eq(o[k].result, (uint64_t)k + 1); /* k+1 th command applied */
        ck_assert_uint_eq(o[k].index, o[0].index + (uint64_t)k);
    }
    struct applied_arg all[2] = {{1, 5}, {2, 5}};
    ck_assert(fx_until(applied_n, &all[0], 2000));
    ck_assert(fx_until(applied_n, &all[1], 2000));
    for (unsigned s = 0; s < 3; s++)
        ck_assert_uint_eq(X->sm[s].vals[4], 104);
    assert_same_log(0, 1);
    assert_same_log(0, 2);
    /* Followers' results have no taker and are freed; the leader's went to
     * the callbacks. */
    ck_assert_int_eq(X->sm[0].frees, 0);
    ck_assert_int_eq(X->sm[1].frees, 5);
}
END_TEST

START_TEST(follower_refuses_and_names_the_leader)
{
    struct outcome o = {0};
    propose(1, 7, fx_now() + 5000, &o);
    ck_assert_int_eq(o.fired, 1);
    ck_assert_int_eq(o.status, UC_EUNAVAIL);
    ck_assert(!o.unknown);
    ck_assert_str_eq(o.msg, "not the leader (leader is 1 at 1)");
    ck_assert_uint_eq(X->core[1].stats.proposals, 0);
}
END_TEST

START_TEST(expired_request_is_refused_before_the_log)
{
    struct outcome o = {0};
    propose(0, 7, fx_now(), &o);
    ck_assert_int_eq(o.fired, 1);
    ck_assert_int_eq(o.status, UC_ETIMEDOUT);
    ck_assert(!o.unknown);
    ck_assert_uint_eq(X->core[0].stats.proposals, 0);
}
END_TEST

START_TEST(failed_apply_on_a_follower_does_not_stop_the_cluster)
{
    struct outcome o[3] = {0};
    X->sm[1].fail_next = 1000;
    for (uint64_t k = 0; k < 3; k++) {
        propose(0, 9 + k, fx_now() + 5000, &o[k]);
        ck_assert(fx_until(fired, &o[k], 2000));
        ck_assert_int_eq(o[k].status, 0);
    }
    struct applied_arg a = {2, 3};
    ck_assert(fx_until(applied_n, &a, 3000));
    ck_assert_uint_eq(X->sm[2].vals[2], 11);
    ck_assert_uint_eq(X->sm[1].n, 0); /* halted on its first entry */
    ck_assert_uint_lt(raft_last_applied(fx_raft(1)), o[0].index);
}
END_TEST

/* --- deadlines ------------------------------------------------------------------------ */

START_TEST(deadline_without_quorum_fails_as_unknown)
{
    struct outcome o = {0};
    raft_fixture_saturate(&X->rf.f, 0, 1);
    raft_fixture_saturate(&X->rf.f, 0, 2);
    int64_t deadline = fx_now() + 500;
    propose(0, 1, deadline, &o);
    ck_assert(!repl_core_idle(&X->core[0]));
    ck_assert(fx_until(fired, &o, 2000));
    ck_assert_int_eq(o.status, UC_ETIMEDOUT);
    ck_assert(o.unknown);
    ck_assert_int_ge(o.at, deadline);
    ck_assert_int_lt(o.at, deadline + 150); /* swept at the first step after it */
    ck_assert(repl_core_idle(&X->core[0]));
}
END_TEST

/* --- leader changes --------------------------------------------------------------------- */

static bool other_leads(void *arg)
{
    (void)arg;
    return raft_state(fx_raft(1)) == RAFT_LEADER || raft_state(fx_raft(2)) == RAFT_LEADER;
}

START_TEST(entry_replaced_after_leader_change_is_reported_not_applied)
{
    struct outcome old = {0}, fresh = {0};
    raft_fixture_saturate(&X->rf.f, 0, 1);
    raft_fixture_saturate(&X->rf.f, 0, 2);
    propose(0, 1, fx_now() + 60000, &old);
    ck_assert(fx_until(other_leads, NULL, 10000));
    unsigned nl = raft_state(fx_raft(1)) == RAFT_LEADER ? 1 : 2;
    propose(nl, 2, fx_now() + 60000, &fresh);
    ck_assert(fx_until(fired, &fresh, 3000));
    ck_assert_int_eq(fresh.status, 0);
    raft_fixture_desaturate(&X->rf.f, 0, 1);
    raft_fixture_desaturate(&X->rf.f, 0, 2);
    ck_assert(fx_until(fired, &old, 10000));
    ck_assert_int_eq(old.status, UC_EUNAVAIL);
    ck_assert(!old.unknown); /* definitely not applied */
    ck_assert(strstr(old.msg, "replaced") != NULL);
    struct applied_arg a = {0, 1};
    ck_assert(fx_until(applied_n, &a, 3000));
    ck_assert_uint_eq(X->sm[0].n, 1);
    ck_assert_uint_eq(X->sm[0].vals[0], 2);
}
END_TEST

START_TEST(deposed_leader_fails_its_reads_and_follows_the_new_one)
{
    struct outcome r = {0}, p = {0};
    fx_run(100);
    read_on(0, fx_now() + 60000, &r);
    ck_assert_ptr_nonnull(X->core[0].barrier);
    raft_fixture_depose(&X->rf.f);
    fx_step();
    ck_assert_int_eq(r.fired, 1);
    ck_assert_int_eq(r.status, UC_EUNAVAIL); /* safe to retry: nothing was read */
    ck_assert(!r.unknown);
    ck_assert(strstr(r.msg, "leadership not confirmed") != NULL);
    raft_fixture_elect(&X->rf.f, 1);
    propose(1, 77, fx_now() + 5000, &p);
    ck_assert(fx_until(fired, &p, 2000));
    ck_assert_int_eq(p.status, 0);
    struct index_arg a = {0, p.index};
    ck_assert(fx_until(applied_index, &a, 2000));
    struct uc_repl_status st;
    repl_core_status(&X->core[0], &st);
    ck_assert_int_eq(st.role, UC_REPL_FOLLOWER);
    ck_assert_uint_eq(st.leader_id, 2);
    ck_assert_uint_eq(X->sm[0].vals[X->sm[0].n - 1], 77);
}
END_TEST

/* --- reads ------------------------------------------------------------------------------ */

START_TEST(reads_arriving_together_share_one_barrier)
{
    struct outcome o[3] = {0};
    struct repl_list l = {0};
    for (int k = 0; k < 3; k++) {
        struct repl_item *it = repl_item_new(REPL_READ, fx_now() + 5000, record, &o[k]);
        ck_assert_ptr_nonnull(it);
        repl_list_push(&l, it);
    }
    repl_core_submit(&X->core[0], &l, fx_now());
    ck_assert_uint_eq(X->core[0].stats.barriers, 1);
    struct many m = {o, 3};
    ck_assert(fx_until(all_fired, &m, 2000));
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(o[k].status, 0);
        ck_assert_uint_eq(o[k].index, o[0].index);
    }
    ck_assert_uint_gt(o[0].index, 1);
    ck_assert_uint_eq(X->core[0].stats.reads, 3);
}
END_TEST

START_TEST(reads_during_a_barrier_wait_for_the_next_one)
{
    struct outcome first = {0}, later[2] = {0};
    read_on(0, fx_now() + 5000, &first);
    ck_assert_ptr_nonnull(X->core[0].barrier);
    read_on(0, fx_now() + 5000, &later[0]);
    read_on(0, fx_now() + 5000, &later[1]);
    ck_assert_uint_eq(X->core[0].stats.barriers, 1); /* the later reads wait */
    struct many m = {later, 2};
    ck_assert(fx_until(all_fired, &m, 3000));
    ck_assert_int_eq(first.status, 0);
    ck_assert_int_eq(later[0].status, 0);
    ck_assert_uint_eq(later[0].index, later[1].index);
    ck_assert_uint_gt(later[0].index, first.index);
    ck_assert_uint_eq(X->core[0].stats.barriers, 2);
}
END_TEST

START_TEST(read_on_follower_is_refused)
{
    struct outcome o = {0};
    read_on(2, fx_now() + 5000, &o);
    ck_assert_int_eq(o.fired, 1);
    ck_assert_int_eq(o.status, UC_EUNAVAIL);
    ck_assert_str_eq(o.msg, "not the leader (leader is 1 at 1)");
}
END_TEST

START_TEST(read_without_quorum_times_out)
{
    struct outcome o = {0};
    raft_fixture_saturate(&X->rf.f, 0, 1);
    raft_fixture_saturate(&X->rf.f, 0, 2);
    int64_t deadline = fx_now() + 300;
    read_on(0, deadline, &o);
    ck_assert(fx_until(fired, &o, 2000));
    ck_assert_int_eq(o.status, UC_ETIMEDOUT);
    ck_assert(!o.unknown);
    ck_assert_int_ge(o.at, deadline);
}
END_TEST

/* --- snapshots ---------------------------------------------------------------------------- */

START_TEST(lagging_member_catches_up_through_a_snapshot)
{
    for (unsigned i = 0; i < 3; i++) {
        raft_set_snapshot_threshold(fx_raft(i), 4);
        raft_set_snapshot_trailing(fx_raft(i), 2);
    }
    raft_fixture_kill(&X->rf.f, 2);
    struct outcome o[20] = {0};
    for (uint64_t k = 0; k < 20; k++) {
        propose(0, 500 + k, fx_now() + 5000, &o[k]);
        ck_assert(fx_until(fired, &o[k], 2000));
        ck_assert_int_eq(o[k].status, 0);
    }
    struct uc_repl_status st;
    repl_core_status(&X->core[0], &st);
    ck_assert_uint_gt(st.snapshot_index, 4);
    ck_assert_uint_gt(st.snapshot_term, 0);
    raft_fixture_revive(&X->rf.f, 2);
    struct applied_arg a = {2, 20};
    ck_assert(fx_until(applied_n, &a, 10000));
    ck_assert_int_ge(X->sm[2].restores, 1);
    ck_assert_uint_gt(X->sm[2].restore_index, 4);
    assert_same_log(0, 2);
}
END_TEST

START_TEST(snapshot_frames_restore_and_rejects_foreign_data)
{
    struct raft_fsm *fsm = &X->core[0].fsm;
    struct raft_buffer *bufs = NULL;
    unsigned n = 0;
    X->sm[0].vals[0] = 42;
    X->sm[0].n = 1;
    ck_assert_int_eq(fsm->snapshot(fsm, &bufs, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(bufs[0].len, REPL_SNAP_HDR_LEN);
    /* Glue the frame together as raft does on restore. */
    struct raft_buffer whole = {raft_malloc(bufs[0].len + bufs[1].len), bufs[0].len + bufs[1].len};
    ck_assert_ptr_nonnull(whole.base);
    memcpy(whole.base, bufs[0].base, bufs[0].len);
    memcpy((uint8_t *)whole.base + bufs[0].len, bufs[1].base, bufs[1].len);
    ck_assert_int_eq(fsm->snapshot_finalize(fsm, &bufs, &n), 0);
    ck_assert_ptr_null(bufs);
    X->sm[1].n = 0;
    struct raft_fsm *f1 = &X->core[1].fsm;
    ck_assert_int_eq(f1->restore(f1, &whole), 0); /* takes the buffer */
    ck_assert_uint_eq(X->sm[1].n, 1);
    ck_assert_uint_eq(X->sm[1].vals[0], 42);
    ck_assert_uint_eq(X->sm[1].restore_index, raft_last_applied(fx_raft(0)));
    struct raft_buffer junk = {raft_malloc(32), 32};
    ck_assert_ptr_nonnull(junk.base);
    memset(junk.base, 'x', 32);
    ck_assert_int_eq(f1->restore(f1, &junk), RAFT_MALFORMED);
    raft_free(junk.base); /* still ours after a refusal */
}
END_TEST

/* The split: raft begins a view on the loop and encodes it later, after
 * more entries were applied; the snapshot still holds the state as of its
 * index, so the member that missed everything converges on the same log. */
START_TEST(split_snapshot_holds_the_state_it_began_with_while_entries_apply)
{
    for (unsigned i = 0; i < 3; i++) {
        raft_set_snapshot_threshold(fx_raft(i), 4);
        raft_set_snapshot_trailing(fx_raft(i), 2);
    }
    raft_fixture_kill(&X->rf.f, 2);
    struct outcome o[24] = {0};
    for (uint64_t k = 0; k < 24; k++) {
        propose(0, 700 + k, fx_now() + 5000, &o[k]);
        ck_assert(fx_until(fired, &o[k], 2000));
        ck_assert_int_eq(o[k].status, 0);
    }
    fx_run(100); /* the last snapshot is encoded and written */
    struct uc_repl_status st;
    repl_core_status(&X->core[0], &st);
    ck_assert_uint_gt(st.snapshot_index, 4);
    ck_assert_int_ge(X->sm[0].encodes, 1);
    ck_assert_int_eq(X->sm[0].begins - X->sm[0].ends, X->core[0].snap_held);
    raft_fixture_revive(&X->rf.f, 2);
    struct index_arg a = {2, raft_last_applied(fx_raft(0))};
    ck_assert(fx_until(applied_index, &a, 10000));
    ck_assert_int_ge(X->sm[2].restores, 1);
    assert_same_log(0, 2);
}
END_TEST

/* Entries keep coming while the encode has not run yet: the leader's disk
 * (which also paces the fixture's pool work) takes 10 ms, the network 1 ms,
 * and a proposal goes in every 2 ms, so entries commit between a begin and
 * its encode. */
START_TEST(split_snapshot_encodes_after_later_entries_were_applied)
{
    for (unsigned i = 0; i < 3; i++) {
        raft_set_snapshot_threshold(fx_raft(i), 4);
        raft_set_snapshot_trailing(fx_raft(i), 2);
        raft_fixture_set_network_latency(&X->rf.f, i, 1);
        raft_fixture_set_disk_latency(&X->rf.f, i, i == 0 ? 10 : 1);
    }
    raft_fixture_kill(&X->rf.f, 2);
    struct outcome o[100] = {0};
    size_t n = 0;
    const struct tsm_view *v = NULL;
    while (n < 100 && !(v && v->n < X->sm[0].n)) {
        propose(0, 800 + n, fx_now() + 5000, &o[n]);
        n++;
        fx_run(2);
        v = X->core[0].snap_view;
    }
    ck_assert_uint_lt(n, 100);
    /* No snapshot after this late one: the stopped member must install it. */
    raft_set_snapshot_threshold(fx_raft(0), 1000);
    struct many m = {o, n};
    ck_assert(fx_until(all_fired, &m, 5000));
    fx_run(200);
    ck_assert_int_ge(X->sm[0].late_encodes, 1);
    raft_fixture_revive(&X->rf.f, 2);
    struct index_arg a = {2, raft_last_applied(fx_raft(0))};
    ck_assert(fx_until(applied_index, &a, 10000));
    ck_assert_int_ge(X->sm[2].restores, 1);
    assert_same_log(0, 1);
    assert_same_log(0, 2);
}
END_TEST

/* A failed begin takes no snapshot and ends nothing; a failed encode drops
 * that snapshot but still ends its view; raft tries again later. */
START_TEST(failed_split_snapshots_are_dropped_and_retried)
{
    raft_set_snapshot_threshold(fx_raft(0), 4);
    X->sm[0].fail_begin = 1;
    X->sm[0].fail_encode = 1;
    struct outcome o[30] = {0};
    for (uint64_t k = 0; k < 30; k++) {
        propose(0, 900 + k, fx_now() + 5000, &o[k]);
        ck_assert(fx_until(fired, &o[k], 2000));
        ck_assert_int_eq(o[k].status, 0);
    }
    fx_run(200);
    ck_assert_int_eq(X->sm[0].fail_begin, 0);
    ck_assert_int_eq(X->sm[0].fail_encode, 0);
    ck_assert_int_ge(X->sm[0].encodes, 2);
    struct uc_repl_status st;
    repl_core_status(&X->core[0], &st);
    ck_assert_uint_gt(st.snapshot_index, 4);
    ck_assert_int_eq(X->sm[0].begins - X->sm[0].ends, X->core[0].snap_held);
}
END_TEST

START_TEST(entry_header_round_trips_and_short_entries_are_skipped)
{
    uint8_t hdr[REPL_HDR_LEN + 8] = {0};
    uint64_t token = 0, seq = 0;
    size_t plen = 99;
    repl_hdr_encode(hdr, 0x0102030405060708ULL, 77);
    ck_assert_uint_eq(hdr[0], 0x08); /* little endian */
    ck_assert(repl_hdr_decode(hdr, sizeof(hdr), &token, &seq, &plen));
    ck_assert_uint_eq(token, 0x0102030405060708ULL);
    ck_assert_uint_eq(seq, 77);
    ck_assert_uint_eq(plen, 0);
    ck_assert(!repl_hdr_decode(hdr, REPL_HDR_LEN - 1, &token, &seq, &plen));
    hdr[16] = 9; /* claims more payload than the 8 padded bytes that follow */
    ck_assert(!repl_hdr_decode(hdr, sizeof(hdr), &token, &seq, &plen));
    hdr[16] = 5;
    ck_assert(repl_hdr_decode(hdr, sizeof(hdr), &token, &seq, &plen));
    ck_assert_uint_eq(plen, 5);
    /* A raw entry without our header is skipped, not handed to the service. */
    struct raft_buffer raw = {raft_malloc(4), 4};
    ck_assert_ptr_nonnull(raw.base);
    memset(raw.base, 0, 4);
    struct raft_apply req;
    ck_assert_int_eq(raft_apply(fx_raft(0), &req, &raw, 1, NULL), 0);
    struct index_arg a = {1, req.index};
    ck_assert(fx_until(applied_index, &a, 2000));
    ck_assert_uint_eq(X->sm[1].n, 0);
    a.server = 0;
    ck_assert(fx_until(applied_index, &a, 2000)); /* raft is done with req */
    ck_assert_uint_eq(X->sm[0].n, 0);
}
END_TEST

/* --- membership -------------------------------------------------------------------------- */

static unsigned role_of(unsigned server, uint64_t id)
{
    const struct raft_configuration *c = &fx_raft(server)->configuration;
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == id)
            return (unsigned)c->servers[i].role;
    return 99;
}

static void change_ok(unsigned on, enum repl_kind kind, uint64_t target, const char *addr)
{
    struct outcome o = {0};
    submit_kind(on, kind, target, addr, fx_now() + 30000, &o);
    ck_assert(fx_until(fired, &o, 30000));
    ck_assert_msg(o.status == 0, "change %d on %u: %d %s", kind, on, o.status, o.msg);
    ck_assert_ptr_null(X->core[on].change);
}

static bool server_leads(void *arg)
{
    unsigned i = *(unsigned *)arg;
    return raft_state(fx_raft(i)) == RAFT_LEADER;
}

START_TEST(learner_is_added_promoted_given_leadership_and_removed)
{
    fx_grow();
    ck_assert_int_eq(raft_start(fx_raft(3)), 0);
    struct outcome o = {0};
    propose(0, 11, fx_now() + 5000, &o);
    ck_assert(fx_until(fired, &o, 2000));

    change_ok(0, REPL_ADD_LEARNER, 4, "4");
    ck_assert_uint_eq(role_of(0, 4), RAFT_STANDBY);
    struct applied_arg a = {3, 1};
    ck_assert(fx_until(applied_n, &a, 5000)); /* the learner receives the log */
    ck_assert_uint_eq(X->sm[3].vals[0], 11);

    change_ok(0, REPL_PROMOTE, 4, NULL);
    ck_assert_uint_eq(role_of(0, 4), RAFT_VOTER);

    change_ok(0, REPL_TRANSFER, 4, NULL);
    unsigned four = 3;
    ck_assert(fx_until(server_leads, &four, 5000));

    change_ok(3, REPL_TRANSFER, 0, NULL); /* raft picks the target */
    unsigned other = 0;
    while (other < 2 && raft_state(fx_raft(other)) != RAFT_LEADER)
        other++;
    ck_assert_int_eq(raft_state(fx_raft(other)), RAFT_LEADER);
    change_ok(other, REPL_TRANSFER, 4, NULL);
    ck_assert(fx_until(server_leads, &four, 5000));

    change_ok(3, REPL_REMOVE, 4, NULL); /* the leader removes itself */
    ck_assert_uint_eq(role_of(0, 4), 99);
    ck_assert(fx_until(other_leads, NULL, 10000) || raft_state(fx_raft(0)) == RAFT_LEADER);
    struct uc_repl_status st;
    repl_core_status(&X->core[0], &st);
    ck_assert_uint_eq(st.n_members, 3);
}
END_TEST

START_TEST(second_change_while_one_is_in_flight_is_busy)
{
    fx_grow();
    ck_assert_int_eq(raft_start(fx_raft(3)), 0);
    struct outcome first = {0}, second = {0};
    submit_kind(0, REPL_ADD_LEARNER, 4, "4", fx_now() + 30000, &first);
    ck_assert_ptr_nonnull(X->core[0].change);
    submit_kind(0, REPL_REMOVE, 3, NULL, fx_now() + 30000, &second);
    ck_assert_int_eq(second.fired, 1);
    ck_assert_int_eq(second.status, UC_EBUSY);
    ck_assert_str_eq(second.msg, "another membership change is in flight");
    ck_assert(fx_until(fired, &first, 30000));
    ck_assert_int_eq(first.status, 0);
}
END_TEST

START_TEST(changes_report_why_raft_refused)
{
    struct outcome o[4] = {0};
    submit_kind(1, REPL_REMOVE, 3, NULL, fx_now() + 5000, &o[0]);
    ck_assert_int_eq(o[0].status, UC_EUNAVAIL);
    ck_assert_str_eq(o[0].msg, "not the leader (leader is 1 at 1)");
    submit_kind(0, REPL_PROMOTE, 9, NULL, fx_now() + 5000, &o[1]);
    ck_assert_int_eq(o[1].status, UC_ENOENT);
    ck_assert_str_eq(o[1].msg, "no member 9");
    submit_kind(0, REPL_ADD_LEARNER, 2, "9", fx_now() + 5000, &o[2]);
    ck_assert_int_eq(o[2].status, UC_EEXIST);
    submit_kind(0, REPL_PROMOTE, 2, NULL, fx_now() + 5000, &o[3]);
    ck_assert_int_eq(o[3].status, UC_EINVAL); /* already a voter */
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(o[k].fired, 1);
    ck_assert_ptr_null(X->core[0].change);
}
END_TEST

START_TEST(change_past_its_deadline_is_unknown_and_keeps_the_slot)
{
    fx_grow();
    ck_assert_int_eq(raft_start(fx_raft(3)), 0);
    raft_fixture_saturate(&X->rf.f, 0, 1);
    raft_fixture_saturate(&X->rf.f, 0, 2);
    struct outcome o = {0}, busy = {0};
    submit_kind(0, REPL_ADD_LEARNER, 4, "4", fx_now() + 200, &o);
    ck_assert(fx_until(fired, &o, 2000));
    ck_assert_int_eq(o.status, UC_ETIMEDOUT);
    ck_assert(o.unknown);
    if (X->core[0].change) { /* raft has not settled it yet */
        submit_kind(0, REPL_REMOVE, 3, NULL, fx_now() + 200, &busy);
        ck_assert_int_eq(busy.status, UC_EBUSY);
    }
    raft_fixture_desaturate(&X->rf.f, 0, 1);
    raft_fixture_desaturate(&X->rf.f, 0, 2);
    fx_run(5000);
    ck_assert(repl_core_idle(&X->core[0]));
}
END_TEST

/* --- out of memory ------------------------------------------------------------------------ */

START_TEST(out_of_memory_fails_requests_cleanly)
{
    struct outcome p[2] = {0}, r = {0}, m = {0};
    struct repl_list l = {0};
    fx_run(100); /* let the term's opening barrier finish */
    push_proposal(&l, 1, fx_now() + 5000, &p[0]);
    push_proposal(&l, 2, fx_now() + 5000, &p[1]);
    struct repl_item *rd = repl_item_new(REPL_READ, fx_now() + 5000, record, &r);
    struct repl_item *rm = repl_item_new(REPL_REMOVE, fx_now() + 5000, record, &m);
    ck_assert(rd && rm);
    rm->target = 3;
    repl_list_push(&l, rd);
    repl_list_push(&l, rm);
    uc_alloc_fail_after(0); /* every allocation the core makes fails */
    repl_core_submit(&X->core[0], &l, fx_now());
    uc_alloc_fail_after(-1);
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(p[k].fired, 1);
        ck_assert_int_eq(p[k].status, UC_ENOMEM);
        ck_assert(!p[k].unknown);
    }
    ck_assert_int_eq(r.status, UC_ENOMEM);
    ck_assert_int_eq(m.status, UC_ENOMEM);
    ck_assert_ptr_null(X->core[0].change);
    ck_assert(repl_core_idle(&X->core[0]));
    struct outcome ok = {0}; /* and it recovers */
    propose(0, 3, fx_now() + 5000, &ok);
    ck_assert(fx_until(fired, &ok, 2000));
    ck_assert_int_eq(ok.status, 0);
}
END_TEST

/* --- status and shutdown ------------------------------------------------------------------ */

START_TEST(status_reports_roles_leader_and_members)
{
    struct outcome o = {0};
    propose(0, 5, fx_now() + 5000, &o);
    ck_assert(fx_until(fired, &o, 2000));
    struct index_arg a = {1, o.index};
    ck_assert(fx_until(applied_index, &a, 2000));
    struct uc_repl_status st;
    repl_core_status(&X->core[0], &st);
    ck_assert_uint_eq(st.id, 1);
    ck_assert_int_eq(st.role, UC_REPL_LEADER);
    ck_assert_uint_eq(st.leader_id, 1);
    ck_assert_str_eq(st.leader_addr, "1");
    ck_assert_uint_ge(st.term, 1);
    ck_assert_uint_ge(st.commit_index, o.index);
    ck_assert_uint_eq(st.applied_index, st.commit_index);
    ck_assert_uint_eq(st.last_index, o.index + 1); /* the term's opening barrier follows */
    ck_assert_uint_eq(st.n_members, 3);
    ck_assert_uint_eq(st.n_members_total, 3);
    ck_assert_uint_eq(st.members[2].id, 3);
    ck_assert_str_eq(st.members[2].addr, "3");
    ck_assert_int_eq(st.members[2].role, UC_REPL_VOTER);
    ck_assert_uint_eq(st.stats.proposals, 1);
    repl_core_status(&X->core[1], &st);
    ck_assert_int_eq(st.role, UC_REPL_FOLLOWER);
    ck_assert_uint_eq(st.leader_id, 1);
    ck_assert_uint_ge(st.applied_index, o.index);
    ck_assert_str_eq(uc_repl_role_name(UC_REPL_CANDIDATE), "candidate");
    ck_assert_str_eq(uc_repl_member_role_name(UC_REPL_LEARNER), "learner");
}
END_TEST

START_TEST(close_answers_reads_and_fail_all_answers_proposals)
{
    struct outcome p = {0}, r = {0};
    raft_fixture_saturate(&X->rf.f, 0, 1);
    raft_fixture_saturate(&X->rf.f, 0, 2);
    propose(0, 1, fx_now() + 60000, &p);
    read_on(0, fx_now() + 60000, &r);
    fx_run(50);
    ck_assert_int_eq(p.fired + r.fired, 0);
    ck_assert_ptr_nonnull(X->core[0].barrier); /* the term's opening one; the read waits */
    raft_fixture_close(&X->rf.f);              /* raft answers its barrier */
    X->closed = true;
    ck_assert_ptr_null(X->core[0].barrier);
    ck_assert_int_eq(p.fired + r.fired, 0);
    repl_core_fail_all(&X->core[0], "replication stopped");
    ck_assert_int_eq(r.fired, 1);
    ck_assert_int_eq(r.status, UC_EUNAVAIL);
    ck_assert(!r.unknown);
    ck_assert_int_eq(p.fired, 1);
    ck_assert_int_eq(p.status, UC_EUNAVAIL);
    ck_assert(p.unknown);
    ck_assert(strstr(p.msg, "replication stopped") != NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("repl");
    struct {
        const char *name;
        const TTest *tests[6];
    } cases[] = {
        {"submit",
         {leader_batches_and_applies_everywhere_in_order, follower_refuses_and_names_the_leader,
          expired_request_is_refused_before_the_log,
          failed_apply_on_a_follower_does_not_stop_the_cluster}},
        {"sweep", {deadline_without_quorum_fails_as_unknown}},
        {"applied",
         {entry_replaced_after_leader_change_is_reported_not_applied,
          deposed_leader_fails_its_reads_and_follows_the_new_one}},
        {"reads",
         {reads_arriving_together_share_one_barrier, reads_during_a_barrier_wait_for_the_next_one,
          read_on_follower_is_refused, read_without_quorum_times_out}},
        {"fsm",
         {lagging_member_catches_up_through_a_snapshot,
          snapshot_frames_restore_and_rejects_foreign_data,
          entry_header_round_trips_and_short_entries_are_skipped}},
        {"member",
         {learner_is_added_promoted_given_leadership_and_removed,
          second_change_while_one_is_in_flight_is_busy, changes_report_why_raft_refused,
          change_past_its_deadline_is_unknown_and_keeps_the_slot}},
        {"oom", {out_of_memory_fails_requests_cleanly}},
        {"status", {status_reports_roles_leader_and_members}},
        {"fail_all", {close_answers_reads_and_fail_all_answers_proposals}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        for (size_t k = 0; k < 6 && cases[i].tests[k]; k++)
            tcase_add_test(tc, cases[i].tests[k]);
        suite_add_tcase(s, tc);
    }
    TCase *tc = tcase_create("split");
    tcase_add_checked_fixture(tc, setup_split, teardown);
    tcase_add_test(tc, split_snapshot_holds_the_state_it_began_with_while_entries_apply);
    tcase_add_test(tc, split_snapshot_encodes_after_later_entries_were_applied);
    tcase_add_test(tc, failed_split_snapshots_are_dropped_and_retried);
    suite_add_tcase(s, tc);
    return uc_check_run(s);
}
