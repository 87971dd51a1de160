/* repl_fixture.h - a cluster of replication cores (lib/repl_internal.h) on
 * raft's in-memory fixture, for Check tests of lib/repl and of services'
 * state machines: grow a member around any uc_repl_sm, bootstrap, step the
 * simulated clock while doing what repl.c's loop thread does after each
 * iteration. Header-only (static inline) because each test file links
 * alone. Not thread-safe: one test thread drives everything. */
#ifndef UC_REPL_FIXTURE_H
#define UC_REPL_FIXTURE_H
#include <check.h>

#include <raft/fixture.h>
#include <stdbool.h>
#include <stdint.h>

#include "../repl_internal.h"

#define REPL_FX_MAX 5

struct repl_fx {
    struct raft_fixture f;
    struct repl_core *cores[REPL_FX_MAX]; /* borrowed; server i drives cores[i] */
    unsigned n;
};

static inline int64_t repl_fx_now(struct repl_fx *x) { return (int64_t)raft_fixture_time(&x->f); }

/* Add server x->n with `core` (caller-owned, outlives the fixture) running
 * `sm` under incarnation `token`. */
static inline void repl_fx_grow(struct repl_fx *x, struct repl_core *core,
                                const struct uc_repl_sm *sm, uint64_t token)
{
    ck_assert_uint_lt(x->n, REPL_FX_MAX);
    unsigned i = x->n++;
    x->cores[i] = core;
    repl_core_init(core, sm, token);
    /* libraft 0.15's fixture io implements async_work but says version 1,
     * and raft_init refuses an asynchronous fsm on it: grow without the
     * hook, then set both (raft checks only at init). */
    struct raft_fsm *fsm = &core->fsm;
    int (*async)(struct raft_fsm *, struct raft_buffer **, unsigned *) = fsm->snapshot_async;
    fsm->snapshot_async = NULL;
    ck_assert_int_eq(raft_fixture_grow(&x->f, fsm), 0);
    struct raft *r = raft_fixture_get(&x->f, i);
    if (async) {
        ck_assert_ptr_nonnull(r->io->async_work);
        r->io->version = 2;
        fsm->snapshot_async = async;
    }
    repl_core_attach(core, r);
}

/* Make the first `n` grown servers the voters, start every server and
 * elect server 0. */
static inline void repl_fx_bootstrap(struct repl_fx *x, unsigned n)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    ck_assert_int_eq(raft_fixture_configuration(&x->f, n, &conf), 0);
    ck_assert_int_eq(raft_fixture_bootstrap(&x->f, &conf), 0);
    raft_configuration_close(&conf);
    ck_assert_int_eq(raft_fixture_start(&x->f), 0);
    raft_fixture_elect(&x->f, 0);
}

/* One fixture event, then what the loop thread does after each iteration. */
static inline void repl_fx_step(struct repl_fx *x)
{
    raft_fixture_step(&x->f);
    for (unsigned i = 0; i < x->n; i++) {
        if (!raft_fixture_alive(&x->f, i))
            continue;
        repl_core_pump(x->cores[i]);
        repl_core_sweep(x->cores[i], repl_fx_now(x));
    }
}

typedef bool (*repl_fx_pred)(void *arg);

/* Step until pred(arg) holds or max_ms of simulated time passed; returns
 * pred's last answer. */
static inline bool repl_fx_until(struct repl_fx *x, repl_fx_pred pred, void *arg, unsigned max_ms)
{
    int64_t end = repl_fx_now(x) + max_ms;
    while (!pred(arg) && repl_fx_now(x) < end)
        repl_fx_step(x);
    return pred(arg);
}

/* Step through `ms` of simulated time. */
static inline void repl_fx_run(struct repl_fx *x, unsigned ms)
{
    int64_t end = repl_fx_now(x) + ms;
    while (repl_fx_now(x) < end)
        repl_fx_step(x);
}

#endif /* UC_REPL_FIXTURE_H */
