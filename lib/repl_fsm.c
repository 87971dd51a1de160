/* repl_fsm.c - the raft_fsm adapter: unwraps entry headers and calls the
 * service's apply, and frames the service's snapshots with the index they
 * were taken at so restore can pass it on. A state machine with the
 * begin/encode/end split gets raft's asynchronous snapshots (fsm version 3):
 * the loop only captures a view, a pool thread encodes it. */
#include <string.h>

#include "repl_internal.h"
#include "uc/alloc.h"
#include "uc/log.h"

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct repl_core *c = fsm->data;
    /* raft applies entries in order and advances last_applied right after
     * each one, so this entry's index is the next one. */
    uint64_t index = raft_last_applied(c->raft) + 1;
    uint64_t token = 0, seq = 0;
    size_t plen = 0;
    void *res = NULL;
    *result = NULL;
    bool ok = repl_hdr_decode(buf->base, buf->len, &token, &seq, &plen);
    if (!ok)
        uc_error("repl: entry %llu of %zu bytes has a malformed header; skipped",
                 (unsigned long long)index, buf->len);
    if (c->applier) { /* it keeps the order, skipped entries included */
        const uint8_t *payload = ok ? (const uint8_t *)buf->base + REPL_HDR_LEN : NULL;
        return repl_applier_push(c->applier, index, token, seq, payload, ok ? plen : 0, !ok) == 0
                   ? 0
                   : RAFT_NOMEM; /* raft applies it again later */
    }
    if (!ok) {
        repl_core_applied(c, index, 0, 0, NULL);
        return 0;
    }
    const uint8_t *payload = (const uint8_t *)buf->base + REPL_HDR_LEN;
    int rv = c->sm.group_begin ? c->sm.group_begin(c->sm.ctx) : 0; /* a group of one */
    if (rv == 0)
        rv = c->sm.apply(c->sm.ctx, payload, plen, index, &res);
    if (c->sm.group_end) {
        if (rv == 0)
            rv = c->sm.group_end(c->sm.ctx, true);
        else
            (void)c->sm.group_end(c->sm.ctx, false); /* rv says what failed */
    }
    if (rv != 0) {
        uc_error("repl: applying entry %llu failed (%s); this member applies nothing more until it "
                 "succeeds",
                 (unsigned long long)index, uc_strerror(rv));
        if (res && c->sm.free_result)
            c->sm.free_result(c->sm.ctx, res);
        return RAFT_IOERR;
    }
    repl_core_applied(c, index, token, seq, res);
    return 0;
}

static bool split(const struct repl_core *c)
{
    return c->sm.snapshot_begin && c->sm.snapshot_encode && c->sm.snapshot_end;
}

static int to_raft_err(int rv) { return rv == UC_ENOMEM ? RAFT_NOMEM : RAFT_IOERR; }

/* Our header: magic, then the log index the state is as of. */
static void put_hdr(uint8_t *hdr, uint64_t index)
{
    memcpy(hdr, REPL_SNAP_MAGIC, 8);
    for (int i = 0; i < 8; i++)
        hdr[8 + i] = (uint8_t)(index >> (8 * i));
}

/* In one go: b[0] our header, b[1] the service's bytes. */
static int take_whole(struct repl_core *c, struct raft_buffer *b)
{
    void *data = NULL;
    size_t len = 0;
    int rv = c->sm.snapshot(c->sm.ctx, &data, &len);
    if (rv != 0) {
        uc_warn("repl: the state machine could not take a snapshot: %s", uc_strerror(rv));
        return to_raft_err(rv);
    }
    uint8_t *hdr = uc_malloc(REPL_SNAP_HDR_LEN);
    if (!hdr) {
        uc_free(data);
        return RAFT_NOMEM;
    }
    put_hdr(hdr, raft_last_applied(c->raft));
    b[0] = (struct raft_buffer){hdr, REPL_SNAP_HDR_LEN};
    b[1] = (struct raft_buffer){data, len};
    return 0;
}

static int begin_split(struct repl_core *c)
{
    void *view = NULL;
    int rv = c->sm.snapshot_begin(c->sm.ctx, &view);
    if (rv == UC_EBUSY) /* declined for now: raft asks again after the next apply */
        return RAFT_BUSY;
    if (rv != 0) {
        uc_warn("repl: the state machine could not take a snapshot: %s", uc_strerror(rv));
        return to_raft_err(rv);
    }
    c->snap_view = view;
    c->snap_index = raft_last_applied(c->raft);
    c->snap_held = true;
    return 0;
}

/* With an apply thread, the state catches up with raft's last applied
 * entry first; false when it cannot (the reason is logged). */
static bool caught_up(struct repl_core *c, const char *what)
{
    char msg[UC_ERR_LEN];
    if (!c->applier || repl_applier_drain(c->applier, msg))
        return true;
    uc_warn("repl: no %s now: %s", what, msg);
    return false;
}

/* The buffers stay ours (fsm version >= 2) until finalize frees them. A
 * split state machine only begins a view here; snapshot_async encodes it on
 * a pool thread, while the loop goes on applying, into one buffer that
 * starts with room for our header. */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct repl_core *c = fsm->data;
    if (!caught_up(c, "snapshot"))
        return RAFT_BUSY;
    struct raft_buffer *b = uc_calloc(2, sizeof(*b));
    if (!b)
        return RAFT_NOMEM;
    int rv = split(c) ? begin_split(c) : take_whole(c, b);
    if (rv != 0) {
        uc_free(b);
        return rv;
    }
    *bufs = b;
    *n_bufs = split(c) ? 0 : b[1].len ? 2 : 1;
    return 0;
}

/* On a libuv pool thread: c->snap_view and snap_index were set on the loop
 * before raft queued this work, and are cleared there only after it ran. */
static int fsm_snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct repl_core *c = fsm->data;
    void *data = NULL;
    size_t len = 0;
    int rv = c->sm.snapshot_encode(c->sm.ctx, c->snap_view, REPL_SNAP_HDR_LEN, &data, &len);
    if (rv != 0) {
        uc_warn("repl: the state machine could not encode a snapshot: %s", uc_strerror(rv));
        return to_raft_err(rv);
    }
    if (len < REPL_SNAP_HDR_LEN) { /* a broken contract: drop this snapshot */
        uc_error("repl: the state machine's snapshot left no room for the header");
        uc_free(data);
        return RAFT_IOERR;
    }
    put_hdr(data, c->snap_index);
    (*bufs)[0] = (struct raft_buffer){data, len};
    *n_bufs = 1;
    return 0;
}

void repl_fsm_release(struct repl_core *c)
{
    if (c->snap_held) {
        c->snap_held = false;
        c->sm.snapshot_end(c->sm.ctx, c->snap_view);
        c->snap_view = NULL;
    }
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct repl_core *c = fsm->data;
    if (*bufs) {
        uc_free((*bufs)[0].base);
        uc_free((*bufs)[1].base); /* NULL when split, or when the service's copy was empty */
        uc_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    repl_fsm_release(c);
    return 0;
}

/* On success the buffer becomes ours (raft_free); on failure raft keeps it. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct repl_core *c = fsm->data;
    const uint8_t *p = buf->base;
    if (!p || buf->len < REPL_SNAP_HDR_LEN || memcmp(p, REPL_SNAP_MAGIC, 8) != 0) {
        uc_error("repl: snapshot of %zu bytes is not in this module's format", buf->len);
        return RAFT_MALFORMED;
    }
    uint64_t index = 0;
    for (int i = 7; i >= 0; i--)
        index = (index << 8) | p[8 + i];
    if (!caught_up(c, "restore"))
        return RAFT_IOERR;
    int rv = c->sm.restore(c->sm.ctx, p + REPL_SNAP_HDR_LEN, buf->len - REPL_SNAP_HDR_LEN, index);
    if (rv != 0) {
        uc_error("repl: restoring the snapshot at index %llu failed: %s", (unsigned long long)index,
                 uc_strerror(rv));
        return rv == UC_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    repl_core_restored(c, index);
    raft_free(buf->base);
    return 0;
}

void repl_fsm_init(struct repl_core *c)
{
    memset(&c->fsm, 0, sizeof(c->fsm));
    c->fsm.version = 3;
    c->fsm.data = c;
    c->fsm.apply = fsm_apply;
    c->fsm.snapshot = fsm_snapshot;
    c->fsm.restore = fsm_restore;
    c->fsm.snapshot_finalize = fsm_snapshot_finalize;
    /* libraft wants NULL here from state machines that snapshot in one go. */
    c->fsm.snapshot_async = split(c) ? fsm_snapshot_async : NULL;
}
