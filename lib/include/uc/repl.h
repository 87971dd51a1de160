/* uc/repl.h - the replication module: one Raft member (libraft + raft_uv on a
 * loop thread of its own) driving a state machine the service supplies.
 * chainfire and flaredb both build on it. Thread-safety: every function may be
 * called from any thread, except that uc_repl_stop/uc_repl_destroy must not be
 * called from a callback this module invokes. Callbacks (the state machine's
 * and the completion callbacks) run on the loop thread, one at a time; only
 * the state machine's snapshot_encode runs on a pool thread beside them, and
 * apply on an apply thread when the state machine groups its applies. */
#ifndef UC_REPL_H
#define UC_REPL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uc/err.h"

#define UC_REPL_ADDR_LEN 128           /* "host:port" with its NUL */
#define UC_REPL_MAX_MEMBERS 16         /* members listed in a status */
#define UC_REPL_MAX_CMD (64u << 20)    /* hard cap on one command, bytes */
#define UC_REPL_DEFAULT_CMD (8u << 20) /* max_cmd when the config leaves 0 */
/* snapshot_threshold when the config leaves 0: etcd 3.6's snapshot count.
 * Raft keeps that many entries in memory and a restart replays up to that
 * many; fewer costs CPU and disk (docs/architecture.md, "Snapshots"). */
#define UC_REPL_DEFAULT_SNAPSHOT 10000u

struct uc_repl; /* opaque */

/* The service's state machine. Every function but snapshot_encode (and
 * apply, when grouped) runs on the loop thread and never concurrently with
 * another of them.
 *
 * apply: apply one committed command (`len` bytes at `cmd`, borrowed for the
 *   call; `index` is its log index, strictly increasing). Called in log order
 *   on every member. It must be deterministic: a command that fails for a
 *   domain reason (a failed compare, a bad statement) still returns 0 and
 *   reports the failure through *result. *result (initially NULL) is handed to
 *   the proposer's callback on the member that proposed it; everywhere else it
 *   is passed to free_result. A non-zero return (a negative UC_E* code) is
 *   an unrecoverable local failure such as a full disk: nothing may have
 *   changed, and this member stops applying (raft may retry the entry later,
 *   but nothing after it is applied before it succeeds) while the others go
 *   on; the service should log it and restart the member.
 * snapshot: produce a consistent copy of the whole state as of the last
 *   applied entry: on success *buf is a new buffer of *len bytes allocated with
 *   uc_malloc, which the module frees with uc_free. Return 0 or a negative
 *   UC_E* code (no snapshot is taken then; it is retried later).
 * restore: replace the whole state by a copy that snapshot produced, taken at
 *   log index `index` (`len` bytes at `buf`, borrowed for the call). Called at
 *   start-up when a snapshot exists and when the leader installs one. Return 0
 *   or a negative UC_E* code (a failed install is retried by the leader).
 * free_result: release a result no callback received; NULL when results are
 *   never allocated.
 * After a restart the state is rebuilt as restore(latest snapshot) followed
 * by apply() of every later entry: a state machine that keeps its own copy on
 * disk must skip entries whose index it already holds.
 *
 * Snapshots off the loop (optional; all three set or none). The snapshots
 * raft takes every snapshot_threshold entries then cost the loop only
 * snapshot_begin; `snapshot` still serves callers that want bytes at once
 * (a backup), so both must produce the same bytes for the same state.
 * snapshot_begin: on the loop thread, between two applies: capture what
 *   snapshot would encode now (the state as of the last applied entry) in a
 *   new *view, cheaply (copy an index, pin shared buffers; not the data).
 *   Return 0 or a negative UC_E* code (no snapshot; retried later). UC_EBUSY
 *   declines quietly: raft asks again after the next apply, so a state
 *   machine can space out snapshots that are dear (a whole database copy).
 * snapshot_encode: on a libuv pool thread, while apply and restore go on
 *   on the loop thread: encode `view` into *buf (uc_malloc, freed by the
 *   module) of *len bytes, touching nothing but the view and what it pins.
 *   The first `room` bytes of *buf are left for the module's frames (it
 *   fills them; *len counts them), so nothing is copied after the encode.
 *   Return 0 or a negative UC_E* code (this snapshot is dropped).
 * snapshot_end: on the loop thread, exactly once per successful begin, after
 *   encode returned or when the snapshot was abandoned: free the view.
 *
 * Applying on a thread of its own (optional; both set or neither). Then
 * apply runs on the module's apply thread, so that neither the loop nor a
 * follower's answer to the leader waits for it, and committed entries that
 * queue up meanwhile are applied as one group: group_begin, apply for each
 * in log order, group_end. Results reach proposers only once group_end
 * committed. The loop lets the apply thread finish its group (and none
 * starts) before it calls restore, snapshot or snapshot_begin and before it
 * answers a read, so those never overlap apply; free_result may.
 * group_begin: open the group (say, a transaction). 0 or a negative UC_E*.
 * group_end: commit (true) or undo (false) every apply since group_begin;
 *   undo must leave the state as before group_begin (it also follows a
 *   failed group_begin). Return 0 or a negative UC_E* (a failed commit must
 *   undo). Any failure in a group of several
 *   entries undoes it and applies the same entries one per group; a
 *   failure with one entry is retried every second, as apply's failures are
 *   without a group. apply may fail a grouped entry on purpose (say, when
 *   the entry would end the group's transaction early): alone it must then
 *   succeed. */
struct uc_repl_sm {
    int (*apply)(void *ctx, const void *cmd, size_t len, uint64_t index, void **result);
    int (*snapshot)(void *ctx, void **buf, size_t *len);
    int (*restore)(void *ctx, const void *buf, size_t len, uint64_t index);
    void (*free_result)(void *ctx, void *result);
    void *ctx; /* borrowed until uc_repl_destroy returns */
    int (*snapshot_begin)(void *ctx, void **view);
    int (*snapshot_encode)(void *ctx, void *view, size_t room, void **buf, size_t *len);
    void (*snapshot_end)(void *ctx, void *view);
    int (*group_begin)(void *ctx);
    int (*group_end)(void *ctx, bool commit);
};

enum uc_repl_role { UC_REPL_UNAVAILABLE, UC_REPL_FOLLOWER, UC_REPL_CANDIDATE, UC_REPL_LEADER };

/* A member's part in the cluster: voters count towards quorum, learners
 * receive the log without voting, spares receive nothing (a learner passes
 * through spare while being added). */
enum uc_repl_member_role { UC_REPL_VOTER, UC_REPL_LEARNER, UC_REPL_SPARE };

struct uc_repl_member {
    uint64_t id;
    char addr[UC_REPL_ADDR_LEN];
    enum uc_repl_member_role role;
};

struct uc_repl_config {
    uint64_t id;              /* this member's id, > 0 */
    const char *address;      /* "host:port" peers reach it at (copied) */
    const char *bind_address; /* "ip:port" to listen on, NULL: `address` (copied) */
    const char *data_dir;     /* created (0700) when missing; copied */
    struct uc_repl_sm sm;     /* copied; sm.ctx borrowed */
    /* Initial voters, used only when data_dir holds no raft state yet; they
     * must include `id`. Leave empty for a member that joins an existing
     * cluster (it waits until a leader adds it). Copied. */
    const struct uc_repl_member *bootstrap;
    size_t n_bootstrap;
    /* Tuning; 0 picks the default shown. */
    unsigned election_timeout_ms; /* 1000; randomised between 1x and 2x */
    unsigned heartbeat_ms;        /* 100 */
    /* UC_REPL_DEFAULT_SNAPSHOT entries applied since the last one. */
    unsigned snapshot_threshold;
    /* The log's segment file size. Every segment that fills up stalls the
     * member for tens of ms (lib/repl.c, segment_size), so a service with
     * large entries asks for large segments; raft_uv preallocates up to
     * three. 0: 512 bytes per snapshot_threshold entry; always clamped to
     * 8-64 MiB. */
    size_t segment_bytes;
    unsigned snapshot_trailing; /* 128 entries kept behind a snapshot */
    size_t max_cmd;             /* UC_REPL_DEFAULT_CMD; at most UC_REPL_MAX_CMD */
    bool disable_pre_vote;      /* pre-vote is on unless this is set */
};

/* The outcome of one asynchronous request, passed to its callback. */
struct uc_repl_done {
    int status;      /* 0, or a negative UC_E* code (each call lists its own) */
    const char *msg; /* "" on success, else what happened; borrowed for the call */
    uint64_t index;  /* log index of the entry (proposals and reads), else 0 */
    void *result;    /* proposals: apply's *result, now owned by the callback */
    /* Set when the request reached the log but its fate is not known: the
     * deadline passed or the member stopped first. The cluster may still
     * apply it; a retry may then apply it twice. Never set with status 0. */
    bool unknown;
};

/* Completion callback: runs exactly once on the loop thread for every call
 * that returned 0. `done` is borrowed for the call. It must not block and must
 * not call uc_repl_stop or uc_repl_destroy; it may call the other functions. */
typedef void (*uc_repl_cb)(void *ctx, const struct uc_repl_done *done);

struct uc_repl_stats {
    uint64_t proposals;        /* commands submitted to raft by this member */
    uint64_t batches;          /* raft_apply calls carrying them */
    uint64_t appends;          /* log appends issued to disk (leader and follower) */
    uint64_t appended_entries; /* entries those appends carried */
    uint64_t reads;            /* read barriers answered successfully */
    uint64_t barriers;         /* raft barriers issued: for reads, and one per term won */
    uint64_t apply_groups;     /* groups the apply thread committed (0 without one) */
};

struct uc_repl_status {
    uint64_t id;
    enum uc_repl_role role;
    uint64_t term;
    uint64_t leader_id;                 /* 0 when no leader is known */
    char leader_addr[UC_REPL_ADDR_LEN]; /* "" when no leader is known */
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t last_index;     /* last entry in the local log */
    uint64_t snapshot_index; /* last snapshot taken or installed, 0 if none */
    uint64_t snapshot_term;
    size_t n_members;       /* entries used in members[] */
    size_t n_members_total; /* members in the configuration (may exceed the array) */
    struct uc_repl_member members[UC_REPL_MAX_MEMBERS];
    struct uc_repl_stats stats;
    /* "" unless the apply thread is retrying an entry that failed: then
     * what failed ("this member cannot apply entry N: ..."). */
    char apply_error[UC_ERR_LEN];
};

/* Open data_dir, load the snapshot and log found there (calling sm.restore
 * on this thread), bootstrap it when empty, and start the loop thread that
 * joins the cluster. On success *out owns the member (stop with uc_repl_stop,
 * free with uc_repl_destroy); on failure *out is untouched and nothing is left
 * running. The config and every string in it are copied.
 * Errors: UC_EINVAL (id 0, malformed or missing address, no data_dir, missing
 * sm functions or only part of the snapshot split, bootstrap list without
 * this member or with a bad entry, max_cmd too large), UC_EBUSY (data_dir is
 * used by another member), UC_EIO (cannot create or read data_dir, corrupt
 * raft state, address not bindable), UC_ENOMEM. */
UC_MUSTCHECK int uc_repl_create(struct uc_repl **out, const struct uc_repl_config *cfg,
                                char err[UC_ERR_LEN]);

/* Stop the member: new calls fail with UC_EUNAVAIL, requests not yet handed
 * to raft fail with UC_EUNAVAIL, requests already in the log fail with
 * UC_EUNAVAIL and done->unknown set, raft is closed and the loop thread
 * joined. Idempotent; NULL is a no-op. Not from a callback of this module. */
void uc_repl_stop(struct uc_repl *repl);

/* Stop if still running, then free everything; NULL is a no-op. */
void uc_repl_destroy(struct uc_repl *repl);

/* Propose `len` bytes at `cmd` (copied; NULL allowed when len is 0) for the
 * log, to be answered by `cb(cb_ctx, done)` no later than shortly after
 * `deadline_ms` (on the uc_clock_mono_ms(NULL) scale). Proposals arriving
 * together are appended together (one raft_apply, one disk sync).
 * Returns 0 when queued: cb then fires exactly once with
 *   0: committed and applied here; done->index and done->result are set;
 *   UC_EUNAVAIL: not applied, and never will be: this member is not the leader
 *     (done->msg says "not the leader (leader is <id> at <addr>)" or that none
 *     is known), or the entry was overwritten after a leader change; or, with
 *     done->unknown, the member stopped after the entry reached the log, or a
 *     snapshot installed by the leader replaced the log before it was seen;
 *   UC_ETIMEDOUT: the deadline passed: before submission (not applied), or
 *     with done->unknown after it (the cluster may still apply it);
 *   UC_ENOMEM, UC_EIO or another code: raft refused the entry (not applied).
 * A leader that lost its leadership keeps its proposals until the new
 * leader's log settles them (0 or UC_EUNAVAIL) or the deadline passes.
 * Errors (cb will not fire): UC_EINVAL (NULL cmd with len > 0), UC_E2BIG (len
 * above max_cmd), UC_EUNAVAIL (member stopping or stopped), UC_ENOMEM. */
UC_MUSTCHECK int uc_repl_propose(struct uc_repl *repl, const void *cmd, size_t len,
                                 int64_t deadline_ms, uc_repl_cb cb, void *cb_ctx,
                                 char err[UC_ERR_LEN]);

/* Ask for a linearizable read point: cb fires with status 0 once this member
 * has confirmed it is still the leader (a raft barrier committed in its term,
 * shared by every read that arrived while the previous barrier was in flight)
 * and has applied everything committed before the call; the state machine may
 * then be read. done->index is the barrier's index.
 * Returns 0 when queued; cb then fires exactly once with 0, UC_EUNAVAIL (not
 * the leader, leadership lost, or stopped; msg names the leader when known),
 * UC_ETIMEDOUT (deadline passed) or UC_ENOMEM; a failed read read nothing and
 * may be retried. Errors (cb will not fire): UC_EUNAVAIL (stopping or
 * stopped), UC_ENOMEM. */
UC_MUSTCHECK int uc_repl_read_barrier(struct uc_repl *repl, int64_t deadline_ms, uc_repl_cb cb,
                                      void *cb_ctx, char err[UC_ERR_LEN]);

/* Membership changes, run on the leader one at a time. Each returns 0 when
 * queued, and cb then fires exactly once with 0 or:
 *   UC_EUNAVAIL: not the leader (msg names it), leadership lost (with
 *     done->unknown), or stopped;
 *   UC_ETIMEDOUT with done->unknown: the deadline passed; the change may
 *     still complete (later changes get UC_EBUSY until raft settles it);
 *   UC_EBUSY: raft still has an uncommitted configuration change (a new
 *     leader first waits for its term's opening entry to commit);
 *   UC_ENOMEM; the per-call codes listed below.
 * Errors (cb will not fire): UC_EBUSY "another membership change is in
 * flight", UC_EINVAL (id 0, bad address), UC_EUNAVAIL (stopping or
 * stopped), UC_ENOMEM.
 *
 * add_learner: add `id` at `addr` (copied) as a non-voting learner that
 * receives the log (a new member starts with an empty data_dir and no
 * bootstrap list). Two raft changes: added as a spare, then made a learner; a
 * failure between them leaves a spare, which remove() clears.
 * cb codes: UC_EEXIST (id or address already a member). */
UC_MUSTCHECK int uc_repl_add_learner(struct uc_repl *repl, uint64_t id, const char *addr,
                                     int64_t deadline_ms, uc_repl_cb cb, void *cb_ctx,
                                     char err[UC_ERR_LEN]);

/* Promote learner `id` to voter once it has caught up with the log.
 * cb codes: UC_ENOENT (no member `id`), UC_EINVAL (already a voter),
 * UC_EUNAVAIL (it did not catch up in time). */
UC_MUSTCHECK int uc_repl_promote(struct uc_repl *repl, uint64_t id, int64_t deadline_ms,
                                 uc_repl_cb cb, void *cb_ctx, char err[UC_ERR_LEN]);

/* Remove member `id` (the leader itself included: it keeps leading until the
 * change commits, then steps down and the rest elect a new leader).
 * cb codes: UC_ENOENT (no member `id`). */
UC_MUSTCHECK int uc_repl_remove(struct uc_repl *repl, uint64_t id, int64_t deadline_ms,
                                uc_repl_cb cb, void *cb_ctx, char err[UC_ERR_LEN]);

/* Hand leadership to voter `id` (0: one raft picks). cb fires with 0 once
 * this member sees `id` lead. When raft's attempt lapses (after an election
 * timeout) with this member still leading, it is tried again until the
 * deadline; UC_EUNAVAIL when another member took over or no leader showed up
 * within two election timeouts. cb codes: UC_ENOENT (no such voter, or `id`
 * is this member). */
UC_MUSTCHECK int uc_repl_transfer(struct uc_repl *repl, uint64_t id, int64_t deadline_ms,
                                  uc_repl_cb cb, void *cb_ctx, char err[UC_ERR_LEN]);

/* The leader as last seen by the loop: *id (may be NULL) and addr (may be
 * NULL) get it on success and are untouched otherwise.
 * Errors: UC_EUNAVAIL (no leader known, or the member is stopped). */
UC_MUSTCHECK int uc_repl_leader(struct uc_repl *repl, uint64_t *id, char addr[UC_REPL_ADDR_LEN]);

/* Copy the latest status (refreshed by the loop after every event) into
 * *out. A stopped member reports role UC_REPL_UNAVAILABLE and no leader. */
void uc_repl_status(struct uc_repl *repl, struct uc_repl_status *out);

/* Lower-case name of a role ("leader", "follower", ...) and of a member role
 * ("voter", "learner", "spare"); never NULL. */
const char *uc_repl_role_name(enum uc_repl_role role);
const char *uc_repl_member_role_name(enum uc_repl_member_role role);

#endif /* UC_REPL_H */
