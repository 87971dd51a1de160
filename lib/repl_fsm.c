/* repl_fsm.c - the raft_fsm adapter: unwraps entry headers and calls the
 * service's apply, and frames the service's snapshots with the index they
 * were taken at so restore can pass it on. */
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
    if (!repl_hdr_decode(buf->base, buf->len, &token, &seq, &plen)) {
        uc_error("repl: entry %llu of %zu bytes has a malformed header; skipped",
                 (unsigned long long)index, buf->len);
        repl_core_applied(c, index, 0, 0, NULL);
        return 0;
    }
    int rv = c->sm.apply(c->sm.ctx, (const uint8_t *)buf->base + REPL_HDR_LEN, plen, index, &res);
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

/* bufs[0] is our header (magic, index), bufs[1] the service's copy; with
 * fsm version 2 they stay ours and snapshot_finalize frees them. */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct repl_core *c = fsm->data;
    void *data = NULL;
    size_t len = 0;
    int rv = c->sm.snapshot(c->sm.ctx, &data, &len);
    if (rv != 0) {
        uc_warn("repl: the state machine could not take a snapshot: %s", uc_strerror(rv));
        return rv == UC_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    struct raft_buffer *b = uc_calloc(2, sizeof(*b));
    uint8_t *hdr = uc_malloc(REPL_SNAP_HDR_LEN);
    if (!b || !hdr) {
        uc_free(b);
        uc_free(hdr);
        uc_free(data);
        return RAFT_NOMEM;
    }
    uint64_t index = raft_last_applied(c->raft);
    memcpy(hdr, REPL_SNAP_MAGIC, 8);
    for (int i = 0; i < 8; i++)
        hdr[8 + i] = (uint8_t)(index >> (8 * i));
    b[0].base = hdr;
    b[0].len = REPL_SNAP_HDR_LEN;
    b[1].base = data;
    b[1].len = len;
    *bufs = b;
    *n_bufs = len ? 2 : 1;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    (void)fsm; /* the buffers say everything */
    if (*bufs) {
        uc_free((*bufs)[0].base);
        uc_free((*bufs)[1].base); /* NULL when the service's copy was empty */
        uc_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
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
    c->fsm.version = 2;
    c->fsm.data = c;
    c->fsm.apply = fsm_apply;
    c->fsm.snapshot = fsm_snapshot;
    c->fsm.restore = fsm_restore;
    c->fsm.snapshot_finalize = fsm_snapshot_finalize;
}
