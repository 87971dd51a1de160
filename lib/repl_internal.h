/* repl_internal.h - what the replication files share: the request core that
 * drives one struct raft without libuv or threads (repl_core.c, the fsm
 * adapter in repl_fsm.c, membership in repl_member.c), so tests can run it on
 * raft's in-memory fixture; repl.c adds the loop thread and the queue.
 * Internal to libcommon and its tests; services use uc/repl.h only.
 * Not thread-safe: every repl_core function runs on the thread driving raft. */
#ifndef UC_REPL_INTERNAL_H
#define UC_REPL_INTERNAL_H
#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

#include "uc/repl.h"

/* Every log entry this module writes starts with this header: the proposing
 * member's incarnation token and the proposal's sequence number, little
 * endian. It lets the proposer recognise its own entry when it is applied. */
/* Entry header: proposer token, sequence number, payload length (each
 * 64-bit little-endian). libraft's disk format stores entries in whole
 * 8-byte words, so entries are padded to a multiple of 8 and the length
 * says where the payload ends. */
#define REPL_HDR_LEN 24
/* Snapshots start with this magic and the log index they were taken at. */
#define REPL_SNAP_MAGIC "ucrepl1"
#define REPL_SNAP_HDR_LEN 16
/* Most entries handed to raft in one raft_apply call. */
#define REPL_MAX_BATCH 1024
/* File in the data dir a running member holds an exclusive flock on. */
#define REPL_LOCK_FILE "uc-repl.lock"

enum repl_kind {
    REPL_PROPOSE,
    REPL_READ,
    REPL_ADD_LEARNER,
    REPL_PROMOTE,
    REPL_REMOVE,
    REPL_TRANSFER,
};

/* One request on its way: created by the public call, freed by the core
 * after its callback ran. */
struct repl_item {
    struct repl_item *prev, *next;
    enum repl_kind kind;
    int64_t deadline_ms; /* uc_clock_mono_ms scale */
    uc_repl_cb cb;
    void *cb_ctx;
    uint64_t seq;           /* proposals: sequence number in the header */
    uint64_t index;         /* log index once in the log, else 0 */
    struct raft_buffer buf; /* proposals: header + command (raft_malloc'd), until raft takes it */
    uint64_t target;        /* membership: the member's id */
    char addr[UC_REPL_ADDR_LEN];
};

/* Doubly linked FIFO of items; zero-initialised means empty. */
struct repl_list {
    struct repl_item *head, *tail;
    size_t n;
};

void repl_list_push(struct repl_list *l, struct repl_item *it);
void repl_list_remove(struct repl_list *l, struct repl_item *it);
/* Move every item of `from` to the end of `to`; `from` ends up empty. */
void repl_list_splice(struct repl_list *to, struct repl_list *from);

/* A new item of `kind` with cb and deadline set (uc_calloc; freed by the core
 * or by repl_item_free). NULL when out of memory. */
struct repl_item *repl_item_new(enum repl_kind kind, int64_t deadline_ms, uc_repl_cb cb,
                                void *cb_ctx);
/* A new proposal item carrying a copy of `len` bytes at `cmd` behind room
 * for the entry header (filled at submission). NULL when out of memory. */
struct repl_item *repl_item_new_proposal(const void *cmd, size_t len, int64_t deadline_ms,
                                         uc_repl_cb cb, void *cb_ctx);
/* Free an item without running its callback, with its buffer. */
void repl_item_free(struct repl_item *it);

struct repl_barrier; /* in flight barrier and its reads (repl_core.c) */
struct repl_applier; /* the apply thread (repl_apply.c) */
struct repl_change;  /* in flight membership change (repl_member.c) */

struct repl_core {
    struct raft *raft;    /* set by repl_core_attach */
    struct raft_fsm fsm;  /* the adapter: hand it to raft_init */
    struct uc_repl_sm sm; /* the service's state machine */
    uint64_t token;       /* this incarnation's id, in every entry header */
    uint64_t next_seq;
    struct repl_list waiting;     /* proposals in the log, ordered by index */
    struct repl_list reads;       /* reads waiting for the next barrier */
    struct repl_barrier *barrier; /* in flight, or NULL */
    uint64_t noop_term;           /* last term whose opening barrier was issued */
    struct repl_change *change;   /* membership change in flight, or NULL */
    struct uc_repl_stats stats;
    /* The split snapshot raft is taking: its view (held from begin to end)
     * and index. Set and cleared on the loop; the pool thread reads them in
     * between (uv_queue_work orders the accesses). */
    void *snap_view;
    uint64_t snap_index; /* the index snap_view is as of */
    bool snap_held;      /* a view is begun and not ended (it may be NULL) */
    /* The apply thread when the state machine groups its applies, else
     * NULL (apply runs in the fsm adapter). Set by whoever drives raft. */
    struct repl_applier *applier;
    uint64_t collected; /* last entry the apply thread handed back */
    /* Called when a membership change has fully settled in raft (the next
     * one may start), with hook_ctx. May be NULL. */
    void (*change_settled)(void *hook_ctx);
    void *hook_ctx;
};

/* Set up `c` for state machine `sm` (copied) with incarnation `token`
 * (random per start). Fills c->fsm; the caller hands &c->fsm to raft_init and
 * then calls repl_core_attach with the struct raft. */
void repl_core_init(struct repl_core *c, const struct uc_repl_sm *sm, uint64_t token);
void repl_core_attach(struct repl_core *c, struct raft *r);

/* Take every item of `in` (which ends up empty): proposals go to raft in
 * batches of up to REPL_MAX_BATCH entries, reads join the next barrier,
 * membership requests start (or fail with UC_EBUSY if one is in flight).
 * Items already past their deadline fail with UC_ETIMEDOUT. */
void repl_core_submit(struct repl_core *c, struct repl_list *in, int64_t now_ms);

/* Start deferred work: a barrier opening a newly won term, the next barrier
 * for waiting reads, the next step of a membership change. Call after raft callbacks may have run
 * (once per loop iteration). Never call from inside a raft callback. */
void repl_core_pump(struct repl_core *c);

/* Fail every request whose deadline is at or before now_ms. */
void repl_core_sweep(struct repl_core *c, int64_t now_ms);

/* True when no request is waiting on a deadline. */
bool repl_core_idle(const struct repl_core *c);

/* Fail every request still held with UC_EUNAVAIL and `msg` (those in the log
 * with done->unknown). Call once raft is closed. */
void repl_core_fail_all(struct repl_core *c, const char *msg);

/* Fill *out from raft's current state and the core's counters. */
void repl_core_status(const struct repl_core *c, struct uc_repl_status *out);

/* Complete `it` with the given outcome (its callback runs), then free it. */
void repl_complete(struct repl_item *it, int status, const char *msg, bool unknown, uint64_t index,
                   void *result);

/* Write "not the leader (leader is <id> at <addr>)" or "... no leader is
 * known" for raft `r` into msg (UC_ERR_LEN). */
void repl_not_leader_msg(struct raft *r, char msg[UC_ERR_LEN]);

/* Map a raft error code to a UC_E* code. */
int repl_raft_err(int rv);

/* Encode/decode the entry header. decode returns false when len is short. */
void repl_hdr_encode(uint8_t hdr[REPL_HDR_LEN], uint64_t token, uint64_t seq);
/* False when `buf` is shorter than its header or than the payload length
 * the header claims; else *plen is the payload's length. */
bool repl_hdr_decode(const void *buf, size_t len, uint64_t *token, uint64_t *seq, size_t *plen);

/* fsm adapter hook (repl_fsm.c -> repl_core.c): entry `index` has been
 * applied; resolve waiting proposals up to it. `token`/`seq` identify the
 * entry (0/0 when it has no header); `result` is what apply produced. */
void repl_core_applied(struct repl_core *c, uint64_t index, uint64_t token, uint64_t seq,
                       void *result);
/* fsm adapter hook: a snapshot at `index` replaced the state. */
void repl_core_restored(struct repl_core *c, uint64_t index);
/* Fill c->fsm (repl_fsm.c): fsm version 3, asynchronous snapshots when the
 * state machine has the snapshot_begin/encode/end split. */
void repl_fsm_init(struct repl_core *c);
/* End a split snapshot raft abandoned without finalizing it (none does in
 * libraft 0.15; a safety net for close). No-op when none is held. */
void repl_fsm_release(struct repl_core *c);

/* The apply thread (repl_apply.c). start: for c's state machine, which has
 * group_begin/group_end; `notify(ctx)` runs on the apply thread, no lock
 * held, when applied entries wait for collect. Errors: UC_ENOMEM, UC_EIO.
 * stop: join the thread, collect what it applied; entries not yet applied
 * are dropped (the log still holds them). The rest run on the loop thread. push: queue entry
 * `index` (`len` bytes at `payload`, copied; `skip`: nothing to apply),
 * waiting while 64 MiB are queued; UC_ENOMEM. collect: hand applied entries
 * to repl_core_applied, in order. drain: wait until everything pushed is
 * applied, then collect; false with msg when the thread is stuck retrying a
 * failed entry or stopping. idle: nothing pushed is left uncollected.
 * health: groups committed so far, and msg "" or why an entry is being
 * retried. */
int repl_applier_start(struct repl_applier **out, struct repl_core *c, void (*notify)(void *),
                       void *notify_ctx, char err[UC_ERR_LEN]);
void repl_applier_stop(struct repl_applier *a);
int repl_applier_push(struct repl_applier *a, uint64_t index, uint64_t token, uint64_t seq,
                      const void *payload, size_t len, bool skip);
void repl_applier_collect(struct repl_applier *a);
bool repl_applier_drain(struct repl_applier *a, char msg[UC_ERR_LEN]);
bool repl_applier_idle(struct repl_applier *a);
void repl_applier_health(struct repl_applier *a, uint64_t *groups, char msg[UC_ERR_LEN]);

/* Config and data dir (repl_config.c). valid_addr: "host:port" with a
 * non-empty host and a port in 1..65535. check_config: what uc_repl_create
 * documents as UC_EINVAL. open_dir: create `dir` (0700, parents too) and
 * take its lock; *lock_fd gets the open lock file on success.
 * Errors: UC_EINVAL, UC_EIO, UC_EBUSY (locked by another member), UC_ENOMEM. */
bool repl_valid_addr(const char *a);
int repl_check_config(const struct uc_repl_config *cfg, char *err);
int repl_open_dir(const char *dir, int *lock_fd, char *err);

/* Membership (repl_member.c): start `it` (kind REPL_ADD_LEARNER..TRANSFER;
 * it fails at once if its deadline is not after now_ms), advance the
 * in-flight change, expire it, fail it at shutdown. Every request ends with
 * one call of c->change_settled, except those refused because another change
 * was in flight. */
void repl_member_start(struct repl_core *c, struct repl_item *it, int64_t now_ms);
void repl_member_pump(struct repl_core *c);
void repl_member_sweep(struct repl_core *c, int64_t now_ms);
void repl_member_fail_all(struct repl_core *c, const char *msg);
/* True when no membership work needs the sweep: no change in flight, or one
 * that already answered its caller and only waits for a raft callback. */
bool repl_member_idle(const struct repl_core *c);

#endif /* UC_REPL_INTERNAL_H */
