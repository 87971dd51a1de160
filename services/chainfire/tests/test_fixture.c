/* test_fixture.c - chainfire's real state machine (kv.c behind server.c's
 * callbacks, behind the replsvc tag wrapper, behind the replication core)
 * on 3-5 members of raft's in-memory fixture: writes, partitions, membership,
 * snapshot install, compaction and a revived member. The one idea: whatever
 * raft does, every member that applied the same log holds a byte-identical
 * store, so each test ends by comparing chainfire_kv_snapshot bytes.
 * Deterministic: the fixture's clock is simulated and every member's
 * randomized election timeout is pinned. */
#include <check.h>

#include "uc_check.h"
#include <stdio.h>
#include <string.h>

#include "../../../lib/replsvc_internal.h"
#include "../server.h"
#include "repl_fixture.h"
#include "uc/alloc.h"
#include "uc/crypto.h"

/* --- one member per fixture server ------------------------------------------------- */

#define FX_MAX REPL_FX_MAX
#define FX_WAIT_MS 10000

struct member {
    struct chainfire_server srv; /* the store and server.c's sm callbacks */
    struct replsvc_sm w;         /* the tag wrapper every service runs behind */
    struct repl_core core;
};

struct fx {
    struct repl_fx rf;
    struct member m[FX_MAX];
};

static struct fx *X;
static char *ring[8]; /* B()'s strings */
static unsigned ring_next;

/* Server i's election timer fires after 1000 + 100*i ms of silence, so the
 * lowest-numbered member that can reach a majority wins every election. */
static void pin_timeout(unsigned i)
{
    raft_fixture_set_randomized_election_timeout(&X->rf.f, i, 1000 + 100 * i);
}

static void fx_grow(void)
{
    unsigned i = X->rf.n;
    struct member *m = &X->m[i];
    char err[UC_ERR_LEN];
    ck_assert_int_eq(chainfire_server_init(&m->srv, err), 0);
    struct uc_repl_sm svc = chainfire_server_sm(&m->srv);
    ck_assert_int_eq(replsvc_sm_init(&m->w, &svc), 0);
    struct uc_repl_sm sm = replsvc_sm_wrap(&m->w);
    ck_assert_ptr_nonnull(sm.snapshot_begin); /* raft takes split snapshots, as in production */
    repl_fx_grow(&X->rf, &m->core, &sm, 0x2000 + i);
    pin_timeout(i);
}

/* `n` voters, server 0 elected. */
static void fx_setup(unsigned n)
{
    X = uc_calloc(1, sizeof(*X));
    ck_assert_ptr_nonnull(X);
    ck_assert_int_eq(raft_fixture_initialize(&X->rf.f), 0);
    for (unsigned i = 0; i < n; i++)
        fx_grow();
    repl_fx_bootstrap(&X->rf, n);
    for (unsigned i = 0; i < n; i++)
        pin_timeout(i); /* elect bumped the others' timeouts */
}

static void setup3(void) { fx_setup(3); }
static void setup5(void) { fx_setup(5); }

static void teardown(void)
{
    raft_fixture_close(&X->rf.f);
    for (unsigned i = 0; i < X->rf.n; i++) {
        struct member *m = &X->m[i];
        repl_fsm_release(&m->core);
        repl_core_fail_all(&m->core, "test over");
        replsvc_sm_deinit(&m->w);
        chainfire_server_deinit(&m->srv);
    }
    uc_free(X);
    X = NULL;
    for (unsigned k = 0; k < 8; k++) {
        uc_free(ring[k]);
        ring[k] = NULL;
    }
}

static int64_t fx_now(void) { return repl_fx_now(&X->rf); }

static struct raft *fx_raft(unsigned i) { return raft_fixture_get(&X->rf.f, i); }

static void fx_step(void) { repl_fx_step(&X->rf); }

static bool fx_until(repl_fx_pred pred, void *arg, unsigned max_ms)
{
    return repl_fx_until(&X->rf, pred, arg, max_ms);
}

/* Cut servers in `side` (a bit mask) off from every other server, both
 * ways; heal undoes it. */
static void partition(unsigned side, bool cut)
{
    for (unsigned a = 0; a < X->rf.n; a++)
        for (unsigned b = 0; b < X->rf.n; b++) {
            if (!(side >> a & 1) || (side >> b & 1))
                continue;
            if (cut) {
                raft_fixture_saturate(&X->rf.f, a, b);
                raft_fixture_saturate(&X->rf.f, b, a);
            } else {
                raft_fixture_desaturate(&X->rf.f, a, b);
                raft_fixture_desaturate(&X->rf.f, b, a);
            }
        }
}

/* --- commands and their outcomes --------------------------------------------------- */

struct outcome {
    int fired;
    int status;
    bool unknown;
    uint64_t index;
    int64_t revision; /* the result's "revision", -1 when absent */
    int64_t error;    /* the result's error.code, 0 when it succeeded */
    bool succeeded;   /* txn: which branch ran */
    char msg[UC_ERR_LEN];
};

static void record(void *ctx, const struct uc_repl_done *d)
{
    struct outcome *o = ctx;
    o->fired++;
    o->status = d->status;
    o->unknown = d->unknown;
    o->index = d->index;
    snprintf(o->msg, sizeof(o->msg), "%s", d->msg);
    o->revision = -1;
    json_t *res = d->result;
    if (!res)
        return;
    json_t *rev = json_object_get(res, "revision");
    if (json_is_integer(rev))
        o->revision = json_integer_value(rev);
    o->error = json_integer_value(json_object_get(json_object_get(res, "error"), "code"));
    o->succeeded = json_is_true(json_object_get(res, "succeeded"));
    json_decref(res);
}

static bool fired(void *arg) { return ((struct outcome *)arg)->fired > 0; }

/* base64url of a C string, as chainfire's commands carry keys and values;
 * up to 8 live at once, reused round robin, freed in teardown. */
static const char *B(const char *s)
{
    unsigned k = ring_next++ % 8;
    uc_free(ring[k]);
    ring[k] = uc_b64url_encode(s, strlen(s));
    ck_assert_ptr_nonnull(ring[k]);
    return ring[k];
}

/* Propose command object `cmd` (stolen; NULL from a failed json_pack fails
 * the test) on member `i`, checked as the API checks it and tagged as
 * replsvc tags service commands. */
static void propose_json(unsigned i, json_t *cmd, struct outcome *o)
{
    ck_assert_ptr_nonnull(cmd);
    char err[UC_ERR_LEN];
    ck_assert_int_eq(chainfire_kv_check(cmd, NULL, err), 0);
    char *s = json_dumps(cmd, JSON_COMPACT);
    json_decref(cmd);
    ck_assert_ptr_nonnull(s);
    uint8_t *tagged = NULL;
    size_t len = 0;
    ck_assert_int_eq(replsvc_cmd_svc(s, strlen(s), &tagged, &len), 0);
    free(s);
    struct repl_item *it = repl_item_new_proposal(tagged, len, fx_now() + 60000, record, o);
    uc_free(tagged);
    ck_assert_ptr_nonnull(it);
    struct repl_list l = {0};
    repl_list_push(&l, it);
    repl_core_submit(&X->m[i].core, &l, fx_now());
}

/* Propose and wait for success; returns the revision it produced. */
static int64_t commit_json(unsigned i, json_t *cmd)
{
    struct outcome o = {0};
    propose_json(i, cmd, &o);
    ck_assert(fx_until(fired, &o, FX_WAIT_MS));
    ck_assert_msg(o.status == 0, "proposal on %u: %d %s", i, o.status, o.msg);
    ck_assert_int_eq(o.error, 0);
    return o.revision;
}

static int64_t put(unsigned i, const char *k, const char *v)
{
    const char *kb = B(k), *vb = B(v);
    return commit_json(i, json_pack("{ssssss}", "op", "put", "key", kb, "value", vb));
}

/* --- reading members -------------------------------------------------------------- */

/* Member i's value of key k into buf (NUL-terminated); NULL when absent. */
static const char *get(unsigned i, const char *k, char *buf, size_t cap)
{
    char err[UC_ERR_LEN];
    json_t *req = json_pack("{ss}", "key", B(k)), *out = NULL;
    ck_assert_ptr_nonnull(req);
    ck_assert_int_eq(chainfire_kv_range(X->m[i].srv.kv, req, &out, err), 0);
    json_decref(req);
    json_t *kv = json_array_get(json_object_get(out, "kvs"), 0);
    const char *res = NULL;
    if (kv) {
        const char *b = json_string_value(json_object_get(kv, "value"));
        ck_assert_ptr_nonnull(b);
        size_t n = 0;
        uint8_t *raw = NULL;
        ck_assert_int_eq(uc_b64url_decode(b, strlen(b), &raw, &n), 0);
        ck_assert_uint_lt(n, cap);
        memcpy(buf, raw, n);
        buf[n] = '\0';
        uc_free(raw);
        res = buf;
    }
    json_decref(out);
    return res;
}

/* Servers in `mask` have applied through `index`. */
struct caught_up {
    unsigned mask;
    uint64_t index;
};

static bool all_applied(void *arg)
{
    const struct caught_up *c = arg;
    for (unsigned i = 0; i < X->rf.n; i++)
        if ((c->mask >> i & 1) && raft_last_applied(fx_raft(i)) < c->index)
            return false;
    return true;
}

/* Wait until every server in `mask` applied what `leader` applied, then
 * check their stores are byte-identical. */
static void assert_converged(unsigned leader, unsigned mask)
{
    struct caught_up c = {mask, raft_last_applied(fx_raft(leader))};
    ck_assert(fx_until(all_applied, &c, FX_WAIT_MS));
    char *ref = NULL, *b = NULL;
    size_t rlen = 0, blen = 0;
    ck_assert_int_eq(chainfire_kv_snapshot(X->m[leader].srv.kv, &ref, &rlen), 0);
    for (unsigned i = 0; i < X->rf.n; i++) {
        if (!(mask >> i & 1) || i == leader)
            continue;
        ck_assert_int_eq(chainfire_kv_snapshot(X->m[i].srv.kv, &b, &blen), 0);
        ck_assert_msg(blen == rlen && memcmp(ref, b, rlen) == 0, "member %u differs from %u", i,
                      leader);
        uc_free(b);
    }
    uc_free(ref);
}

static unsigned leader_of(unsigned mask)
{
    for (unsigned i = 0; i < X->rf.n; i++)
        if ((mask >> i & 1) && raft_state(fx_raft(i)) == RAFT_LEADER)
            return i;
    return FX_MAX;
}

static bool leads_in(void *arg) { return leader_of(*(unsigned *)arg) < FX_MAX; }

/* --- writes -------------------------------------------------------------------------- */

/* Puts, a txn that takes each branch, a lease with keys and its revoke, a
 * delete: the proposer's results carry the revisions, and all five stores
 * end byte-identical. */
START_TEST(every_command_kind_applies_identically_on_five_members)
{
    ck_assert_int_eq(put(0, "a", "1"), 1);
    ck_assert_int_eq(put(0, "b", "2"), 2);
    const char *ka = B("a"), *v1 = B("1"), *vx = B("x");
    struct outcome t = {0};
    propose_json(0,
                 json_pack("{sss[{ssssssss}]s[{s{ssss}}]}", "op", "txn", "compare", "key", ka,
                           "target", "value", "result", "=", "value", v1, "success", "put", "key",
                           ka, "value", vx),
                 &t);
    ck_assert(fx_until(fired, &t, FX_WAIT_MS));
    ck_assert(t.succeeded);
    ck_assert_int_eq(t.revision, 3);
    struct outcome t2 = {0};
    ka = B("a");
    v1 = B("1");
    propose_json(0,
                 json_pack("{sss[{ssssssss}]s[{s{ssss}}]}", "op", "txn", "compare", "key", ka,
                           "target", "value", "result", "=", "value", v1, "success", "put", "key",
                           ka, "value", B("never")),
                 &t2);
    ck_assert(fx_until(fired, &t2, FX_WAIT_MS));
    ck_assert(!t2.succeeded);
    commit_json(0, json_pack("{sssIsi}", "op", "lease_grant", "id", (json_int_t)7, "ttl", 30));
    const char *kl = B("leased"), *vl = B("v");
    commit_json(
        0, json_pack("{sssssssI}", "op", "put", "key", kl, "value", vl, "lease", (json_int_t)7));
    commit_json(0, json_pack("{sssIsi}", "op", "lease_grant", "id", (json_int_t)8, "ttl", 5));
    assert_converged(0, 0x1f);
    int64_t ttl = 0;
    size_t keys = 0;
    for (unsigned i = 0; i < 5; i++) {
        ck_assert_int_eq(chainfire_kv_lease_get(X->m[i].srv.kv, 7, &ttl, &keys), 0);
        ck_assert_int_eq(ttl, 30);
        ck_assert_uint_eq(keys, 1);
    }
    commit_json(0, json_pack("{sssI}", "op", "lease_revoke", "id", (json_int_t)7));
    const char *kb = B("b");
    int64_t last = commit_json(0, json_pack("{ssss}", "op", "delete", "key", kb));
    assert_converged(0, 0x1f);
    char buf[16];
    for (unsigned i = 0; i < 5; i++) {
        ck_assert_int_eq(chainfire_kv_revision(X->m[i].srv.kv), last);
        ck_assert_str_eq(get(i, "a", buf, sizeof(buf)), "x");
        ck_assert_ptr_null(get(i, "b", buf, sizeof(buf)));
        ck_assert_ptr_null(get(i, "leased", buf, sizeof(buf))); /* went with its lease */
        ck_assert_int_eq(chainfire_kv_lease_get(X->m[i].srv.kv, 7, &ttl, &keys), UC_ENOENT);
        ck_assert_int_eq(chainfire_kv_lease_get(X->m[i].srv.kv, 8, &ttl, &keys), 0);
    }
}
END_TEST

/* A domain error (revoking an unknown lease) is a result, not an apply
 * failure: it answers the proposer everywhere alike and changes nothing. */
START_TEST(refused_command_answers_and_changes_no_member)
{
    put(0, "k", "v");
    struct outcome o = {0};
    propose_json(0, json_pack("{sssI}", "op", "lease_revoke", "id", (json_int_t)99), &o);
    ck_assert(fx_until(fired, &o, FX_WAIT_MS));
    ck_assert_int_eq(o.status, 0);
    ck_assert_int_eq(o.error, UC_ENOENT);
    put(0, "k2", "v2");
    assert_converged(0, 0x7);
    for (unsigned i = 0; i < 3; i++)
        ck_assert_int_eq(chainfire_kv_revision(X->m[i].srv.kv), 2);
}
END_TEST

/* --- partitions ---------------------------------------------------------------------- */

/* Leader 0 and follower 1 are cut off from 2, 3, 4. Server 2's timer fires
 * first, so it wins the majority's election; its writes commit, while the
 * old leader's write (perhaps copied to 1, never committed) is reported as
 * not applied after the heal and appears on no member. */
START_TEST(partitioned_leader_loses_its_uncommitted_writes)
{
    put(0, "base", "0");
    assert_converged(0, 0x1f);
    partition(0x3, true);
    struct outcome lost = {0};
    const char *kl = B("lost"), *vl = B("x");
    propose_json(0, json_pack("{ssssss}", "op", "put", "key", kl, "value", vl), &lost);
    unsigned majority = 0x1c;
    ck_assert(fx_until(leads_in, &majority, FX_WAIT_MS));
    ck_assert_uint_eq(leader_of(majority), 2);
    ck_assert_int_eq(lost.fired, 0);
    ck_assert_int_eq(put(2, "won", "y"), 2);
    ck_assert_int_eq(put(2, "won2", "z"), 3);
    assert_converged(2, majority);
    partition(0x3, false);
    ck_assert(fx_until(fired, &lost, FX_WAIT_MS));
    ck_assert_int_eq(lost.status, UC_EUNAVAIL);
    ck_assert(!lost.unknown); /* definitely not applied: safe to retry */
    ck_assert(strstr(lost.msg, "replaced") != NULL);
    ck_assert_int_eq(put(2, "after", "w"), 4);
    assert_converged(2, 0x1f);
    char buf[8];
    for (unsigned i = 0; i < 5; i++) {
        ck_assert_ptr_null(get(i, "lost", buf, sizeof(buf)));
        ck_assert_str_eq(get(i, "won2", buf, sizeof(buf)), "z");
    }
}
END_TEST

/* A leader cut off alone steps down; proposing on it then is refused at
 * once (not the leader), and the minority never applies anything new. */
START_TEST(isolated_leader_steps_down_and_refuses_writes)
{
    put(0, "base", "0");
    partition(0x1, true);
    unsigned rest = 0x1e;
    ck_assert(fx_until(leads_in, &rest, FX_WAIT_MS));
    ck_assert_uint_eq(leader_of(rest), 1);
    uint64_t before = raft_last_applied(fx_raft(0));
    put(1, "majority", "1");
    struct raft *old = fx_raft(0);
    for (int k = 0; k < 3000 && raft_state(old) == RAFT_LEADER; k++)
        fx_step();
    ck_assert_int_ne(raft_state(old), RAFT_LEADER);
    struct outcome o = {0};
    const char *kb = B("k"), *vb = B("v");
    propose_json(0, json_pack("{ssssss}", "op", "put", "key", kb, "value", vb), &o);
    ck_assert_int_eq(o.fired, 1);
    ck_assert_int_eq(o.status, UC_EUNAVAIL);
    ck_assert_uint_eq(raft_last_applied(old), before);
    partition(0x1, false);
    assert_converged(1, 0x1f);
}
END_TEST

/* --- snapshots, membership, compaction ---------------------------------------------- */

static void small_snapshots(unsigned i)
{
    raft_set_snapshot_threshold(fx_raft(i), 8);
    raft_set_snapshot_trailing(fx_raft(i), 2);
}

/* The log is compacted before a fourth server joins, so the learner can
 * only catch up by installing the leader's snapshot (replsvc framing around
 * chainfire's binary snapshot). Then it is promoted, the leader removes
 * itself, the rest elect a new leader and go on writing. */
START_TEST(learner_installs_a_snapshot_is_promoted_and_the_leader_leaves)
{
    for (unsigned i = 0; i < 3; i++)
        small_snapshots(i);
    char k[16], v[16];
    for (int n = 0; n < 30; n++) {
        snprintf(k, sizeof(k), "k%02d", n % 10);
        snprintf(v, sizeof(v), "v%d", n);
        put(0, k, v);
    }
    commit_json(0, json_pack("{sssIsi}", "op", "lease_grant", "id", (json_int_t)3, "ttl", 60));
    struct uc_repl_status st;
    repl_core_status(&X->m[0].core, &st);
    ck_assert_uint_gt(st.snapshot_index, 8); /* entries 1..8 are gone from the log */
    fx_grow();
    small_snapshots(3);
    ck_assert_int_eq(raft_start(fx_raft(3)), 0);
    struct outcome o = {0};
    struct repl_item *it = repl_item_new(REPL_ADD_LEARNER, fx_now() + 30000, record, &o);
    ck_assert_ptr_nonnull(it);
    it->target = 4;
    snprintf(it->addr, sizeof(it->addr), "4");
    struct repl_list l = {0};
    repl_list_push(&l, it);
    repl_core_submit(&X->m[0].core, &l, fx_now());
    ck_assert(fx_until(fired, &o, 30000));
    ck_assert_int_eq(o.status, 0);
    assert_converged(0, 0xf);
    ck_assert_uint_ge(raft_fixture_n_recv(&X->rf.f, 3, RAFT_IO_INSTALL_SNAPSHOT), 1);
    int64_t ttl = 0;
    size_t keys = 0;
    ck_assert_int_eq(chainfire_kv_lease_get(X->m[3].srv.kv, 3, &ttl, &keys), 0);

    memset(&o, 0, sizeof(o));
    it = repl_item_new(REPL_PROMOTE, fx_now() + 30000, record, &o);
    ck_assert_ptr_nonnull(it);
    it->target = 4;
    repl_list_push(&l, it);
    repl_core_submit(&X->m[0].core, &l, fx_now());
    ck_assert(fx_until(fired, &o, 30000));
    ck_assert_int_eq(o.status, 0);

    memset(&o, 0, sizeof(o));
    it = repl_item_new(REPL_REMOVE, fx_now() + 30000, record, &o);
    ck_assert_ptr_nonnull(it);
    it->target = 1; /* the leader itself */
    repl_list_push(&l, it);
    repl_core_submit(&X->m[0].core, &l, fx_now());
    ck_assert(fx_until(fired, &o, 30000));
    ck_assert_int_eq(o.status, 0);
    unsigned rest = 0xe;
    ck_assert(fx_until(leads_in, &rest, FX_WAIT_MS));
    unsigned nl = leader_of(rest);
    ck_assert_uint_eq(nl, 3); /* a fixed schedule: the same winner every run */
    int64_t rev = chainfire_kv_revision(X->m[nl].srv.kv);
    ck_assert_int_eq(put(nl, "after", "leave"), rev + 1);
    assert_converged(nl, rest);
    char buf[16];
    ck_assert_str_eq(get(3, "after", buf, sizeof(buf)), "leave");
    ck_assert_str_eq(get(3, "k09", buf, sizeof(buf)), "v29");
}
END_TEST

/* Compaction is a log entry like any other: every member drops the same
 * history and refuses the same old revisions. */
START_TEST(compaction_through_the_log_is_equal_everywhere)
{
    for (int n = 0; n < 6; n++)
        put(0, "k", n % 2 ? "odd" : "even");
    int64_t r = commit_json(0, json_pack("{sssi}", "op", "compact", "revision", 4));
    ck_assert_int_eq(r, 6);
    put(0, "k", "last");
    assert_converged(0, 0x1f);
    char err[UC_ERR_LEN];
    for (unsigned i = 0; i < 5; i++) {
        ck_assert_int_eq(chainfire_kv_compacted(X->m[i].srv.kv), 4);
        json_t *req = json_pack("{sssi}", "key", B("k"), "revision", 3), *out = NULL;
        ck_assert_int_eq(chainfire_kv_range(X->m[i].srv.kv, req, &out, err), UC_EINVAL);
        json_decref(req);
        req = json_pack("{sssi}", "key", B("k"), "revision", 5);
        ck_assert_int_eq(chainfire_kv_range(X->m[i].srv.kv, req, &out, err), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(out, "count")), 1);
        json_decref(out);
        json_decref(req);
    }
}
END_TEST

/* A killed member misses writes (and a compaction); revived, it catches up
 * from the leader's log and ends identical. */
START_TEST(killed_member_revived_catches_up)
{
    put(0, "k", "0");
    assert_converged(0, 0x7);
    raft_fixture_kill(&X->rf.f, 2);
    char k[16];
    for (int n = 0; n < 12; n++) {
        snprintf(k, sizeof(k), "m%d", n);
        put(0, k, "v");
    }
    commit_json(0, json_pack("{sssi}", "op", "compact", "revision", 5));
    ck_assert_int_eq(chainfire_kv_revision(X->m[2].srv.kv), 1);
    raft_fixture_revive(&X->rf.f, 2);
    assert_converged(0, 0x7);
    ck_assert_int_eq(chainfire_kv_compacted(X->m[2].srv.kv), 5);
    ck_assert_int_eq(raft_fixture_n_recv(&X->rf.f, 2, RAFT_IO_INSTALL_SNAPSHOT), 0);
}
END_TEST

/* The same, but the leader compacted its raft log meanwhile: the revived
 * member restores chainfire's snapshot through replsvc's frame. */
START_TEST(killed_member_revived_after_log_compaction_installs_a_snapshot)
{
    for (unsigned i = 0; i < 3; i++)
        small_snapshots(i);
    raft_fixture_kill(&X->rf.f, 1);
    char k[16];
    for (int n = 0; n < 25; n++) {
        snprintf(k, sizeof(k), "m%d", n % 7);
        put(0, k, k);
    }
    raft_fixture_revive(&X->rf.f, 1);
    assert_converged(0, 0x7);
    ck_assert_uint_ge(raft_fixture_n_recv(&X->rf.f, 1, RAFT_IO_INSTALL_SNAPSHOT), 1);
    ck_assert_int_eq(chainfire_kv_revision(X->m[1].srv.kv), 25);
}
END_TEST

/* `n` puts of keys <prefix>000.. in one txn (one log entry). */
static int64_t put_many(unsigned i, const char *prefix, int n)
{
    json_t *ops = json_array();
    char k[16];
    for (int j = 0; j < n; j++) {
        snprintf(k, sizeof(k), "%s%03d", prefix, j);
        char *kb = uc_b64url_encode(k, strlen(k));
        ck_assert_ptr_nonnull(kb);
        json_array_append_new(ops, json_pack("{s{ssss}}", "put", "key", kb, "value", "dg"));
        uc_free(kb);
    }
    return commit_json(i, json_pack("{sss[]so}", "op", "txn", "compare", "success", ops));
}

/* Compaction frees history a few hundred keys per applied entry: members
 * that sweep step by step, and one that joins through a snapshot taken in
 * mid-sweep (holding no sweep at all), hold the same store throughout. */
START_TEST(members_sweeping_compaction_in_steps_still_agree)
{
    for (unsigned i = 0; i < 3; i++)
        small_snapshots(i);
    raft_fixture_kill(&X->rf.f, 2);
    char p[8];
    int64_t rev = 0;
    /* 2400 keys; the last 240, which the sweep visits last, written twice. */
    for (int n = 0; n < 22; n++) {
        snprintf(p, sizeof(p), "p%02d", n < 20 ? n : n - 2);
        rev = put_many(0, p, 120);
    }
    commit_json(0, json_pack("{sssI}", "op", "compact", "revision", (json_int_t)rev));
    /* The sweep takes 10 applies; raft snapshots every 8 entries. */
    for (int n = 0; n < 8; n++) {
        ck_assert(chainfire_kv_sweeping(X->m[0].srv.kv));
        put(0, "x", "1");
    }
    raft_fixture_revive(&X->rf.f, 2);
    assert_converged(0, 0x7);
    ck_assert_uint_ge(raft_fixture_n_recv(&X->rf.f, 2, RAFT_IO_INSTALL_SNAPSHOT), 1);
    ck_assert(!chainfire_kv_sweeping(X->m[2].srv.kv));
    put(0, "x", "2");
    put(0, "x", "3");
    assert_converged(0, 0x7);
    ck_assert(!chainfire_kv_sweeping(X->m[0].srv.kv));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chainfire_fixture");
    TCase *five = tcase_create("five");
    tcase_add_checked_fixture(five, setup5, teardown);
    tcase_add_test(five, every_command_kind_applies_identically_on_five_members);
    tcase_add_test(five, partitioned_leader_loses_its_uncommitted_writes);
    tcase_add_test(five, isolated_leader_steps_down_and_refuses_writes);
    tcase_add_test(five, compaction_through_the_log_is_equal_everywhere);
    suite_add_tcase(s, five);
    TCase *three = tcase_create("three");
    tcase_add_checked_fixture(three, setup3, teardown);
    tcase_add_test(three, refused_command_answers_and_changes_no_member);
    tcase_add_test(three, learner_installs_a_snapshot_is_promoted_and_the_leader_leaves);
    tcase_add_test(three, killed_member_revived_catches_up);
    tcase_add_test(three, killed_member_revived_after_log_compaction_installs_a_snapshot);
    tcase_add_test(three, members_sweeping_compaction_in_steps_still_agree);
    suite_add_tcase(s, three);
    return uc_check_run(s);
}
