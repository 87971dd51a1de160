/* repl_core.c - the request core of the replication module: hands proposals
 * to raft in batches, matches applied entries to their proposers, shares one
 * raft barrier among the reads waiting for it, and expires requests at their
 * deadline. Runs on whatever thread drives the struct raft (no libuv here). */
#include <stdio.h>
#include <string.h>

#include "repl_internal.h"
#include "uc/alloc.h"
#include "uc/log.h"

/* One raft barrier and the reads it answers. */
struct repl_barrier {
    struct raft_barrier req;
    struct repl_core *core;
    struct repl_list group;
};

/* --- lists and items -------------------------------------------------------- */

void repl_list_push(struct repl_list *l, struct repl_item *it)
{
    it->next = NULL;
    it->prev = l->tail;
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    l->n++;
}

void repl_list_remove(struct repl_list *l, struct repl_item *it)
{
    if (it->prev)
        it->prev->next = it->next;
    else
        l->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        l->tail = it->prev;
    it->prev = it->next = NULL;
    l->n--;
}

void repl_list_splice(struct repl_list *to, struct repl_list *from)
{
    if (!from->head)
        return;
    if (to->tail) {
        to->tail->next = from->head;
        from->head->prev = to->tail;
    } else {
        to->head = from->head;
    }
    to->tail = from->tail;
    to->n += from->n;
    memset(from, 0, sizeof(*from));
}

/* Insert `it` after `pos` (NULL: at the head). */
static void list_insert_after(struct repl_list *l, struct repl_item *pos, struct repl_item *it)
{
    if (!pos) {
        it->prev = NULL;
        it->next = l->head;
        if (l->head)
            l->head->prev = it;
        else
            l->tail = it;
        l->head = it;
    } else {
        it->prev = pos;
        it->next = pos->next;
        if (pos->next)
            pos->next->prev = it;
        else
            l->tail = it;
        pos->next = it;
    }
    l->n++;
}

struct repl_item *repl_item_new(enum repl_kind kind, int64_t deadline_ms, uc_repl_cb cb,
                                void *cb_ctx)
{
    struct repl_item *it = uc_calloc(1, sizeof(*it));
    if (!it)
        return NULL;
    it->kind = kind;
    it->deadline_ms = deadline_ms;
    it->cb = cb;
    it->cb_ctx = cb_ctx;
    return it;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

struct repl_item *repl_item_new_proposal(const void *cmd, size_t len, int64_t deadline_ms,
                                         uc_repl_cb cb, void *cb_ctx)
{
    struct repl_item *it = repl_item_new(REPL_PROPOSE, deadline_ms, cb, cb_ctx);
    if (!it)
        return NULL;
    /* raft frees entry buffers with raft_free once it owns them, so they come
     * from raft's allocator rather than uc_malloc. */
    size_t total = (REPL_HDR_LEN + len + 7) & ~(size_t)7;
    it->buf.base = raft_calloc(1, total); /* zeroed padding */
    if (!it->buf.base) {
        uc_free(it);
        return NULL;
    }
    it->buf.len = total;
    put_le64((uint8_t *)it->buf.base + 16, len);
    if (len)
        memcpy((uint8_t *)it->buf.base + REPL_HDR_LEN, cmd, len);
    return it;
}

void repl_item_free(struct repl_item *it)
{
    if (!it)
        return;
    raft_free(it->buf.base);
    uc_free(it);
}

void repl_complete(struct repl_item *it, int status, const char *msg, bool unknown, uint64_t index,
                   void *result)
{
    struct uc_repl_done done = {
        .status = status,
        .msg = msg ? msg : "",
        .index = index,
        .result = result,
        .unknown = status != 0 && unknown,
    };
    it->cb(it->cb_ctx, &done);
    repl_item_free(it);
}

static void fail_list(struct repl_list *l, int status, const char *msg, bool unknown)
{
    struct repl_item *it;
    while ((it = l->head)) {
        repl_list_remove(l, it);
        repl_complete(it, status, msg, unknown, 0, NULL);
    }
}

/* --- small helpers ---------------------------------------------------------- */

void repl_hdr_encode(uint8_t hdr[REPL_HDR_LEN], uint64_t token, uint64_t seq)
{
    put_le64(hdr, token);
    put_le64(hdr + 8, seq);
}

bool repl_hdr_decode(const void *buf, size_t len, uint64_t *token, uint64_t *seq, size_t *plen)
{
    if (!buf || len < REPL_HDR_LEN)
        return false;
    uint64_t n = get_le64((const uint8_t *)buf + 16);
    if (n > len - REPL_HDR_LEN)
        return false;
    *token = get_le64(buf);
    *seq = get_le64((const uint8_t *)buf + 8);
    *plen = (size_t)n;
    return true;
}

void repl_not_leader_msg(struct raft *r, char msg[UC_ERR_LEN])
{
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(r, &id, &addr);
    if (id && addr)
        snprintf(msg, UC_ERR_LEN, "not the leader (leader is %llu at %s)", id, addr);
    else
        snprintf(msg, UC_ERR_LEN, "not the leader (no leader is known)");
}

int repl_raft_err(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case RAFT_NOMEM:
        return UC_ENOMEM;
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
    case RAFT_SHUTDOWN:
    case RAFT_NOCONNECTION:
        return UC_EUNAVAIL;
    case RAFT_CANTCHANGE:
    case RAFT_BUSY:
        return UC_EBUSY;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
        return UC_EEXIST;
    case RAFT_BADID:
    case RAFT_NOTFOUND:
        return UC_ENOENT;
    case RAFT_BADROLE:
    case RAFT_INVALID:
    case RAFT_MALFORMED:
        return UC_EINVAL;
    case RAFT_TOOBIG:
        return UC_E2BIG;
    case RAFT_IOERR:
    case RAFT_CORRUPT:
    case RAFT_NOSPACE:
        return UC_EIO;
    default:
        return UC_EINTERNAL;
    }
}

/* --- set-up ------------------------------------------------------------------ */

void repl_core_init(struct repl_core *c, const struct uc_repl_sm *sm, uint64_t token)
{
    memset(c, 0, sizeof(*c));
    c->sm = *sm;
    c->token = token;
    repl_fsm_init(c);
}

void repl_core_attach(struct repl_core *c, struct raft *r) { c->raft = r; }

/* --- proposals ---------------------------------------------------------------- */

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    /* Outcomes reach proposers through repl_core_applied, which sees every
     * entry of the batch; raft only reports here on the first one. */
    (void)status;
    (void)result; /* always NULL: the fsm adapter hands results out itself */
    uc_free(req);
}

/* Keep `waiting` ordered by index: new entries nearly always go last. */
static void insert_waiting(struct repl_core *c, struct repl_item *it)
{
    struct repl_item *pos = c->waiting.tail;
    while (pos && pos->index > it->index)
        pos = pos->prev;
    list_insert_after(&c->waiting, pos, it);
}

static void submit_batch(struct repl_core *c, struct repl_list *batch)
{
    unsigned n = (unsigned)batch->n, k = 0;
    struct raft_buffer *bufs = uc_malloc(n * sizeof(*bufs));
    struct raft_apply *req = uc_malloc(sizeof(*req));
    if (!bufs || !req) {
        uc_free(bufs);
        uc_free(req);
        fail_list(batch, UC_ENOMEM, "out of memory handing the entry to raft", false);
        return;
    }
    for (struct repl_item *it = batch->head; it; it = it->next) {
        repl_hdr_encode(it->buf.base, c->token, ++c->next_seq);
        it->seq = c->next_seq;
        bufs[k++] = it->buf;
    }
    req->data = c;
    int rv = raft_apply(c->raft, req, bufs, n, apply_cb);
    uc_free(bufs);
    if (rv != 0) {
        char msg[UC_ERR_LEN];
        uc_free(req);
        if (rv == RAFT_NOTLEADER)
            repl_not_leader_msg(c->raft, msg);
        else
            snprintf(msg, sizeof(msg), "raft refused the entry: %s", raft_strerror(rv));
        fail_list(batch, repl_raft_err(rv), msg, false);
        return;
    }
    /* raft owns the buffers now; entries take consecutive indexes. */
    raft_index first = req->index;
    struct repl_item *it;
    for (k = 0; (it = batch->head); k++) {
        repl_list_remove(batch, it);
        it->buf.base = NULL;
        it->buf.len = 0;
        it->index = first + k;
        insert_waiting(c, it);
    }
    c->stats.proposals += n;
    c->stats.batches++;
}

static void submit_proposals(struct repl_core *c, struct repl_list *props)
{
    if (raft_state(c->raft) != RAFT_LEADER) {
        char msg[UC_ERR_LEN];
        repl_not_leader_msg(c->raft, msg);
        fail_list(props, UC_EUNAVAIL, msg, false);
        return;
    }
    while (props->head) {
        struct repl_list batch = {0};
        while (props->head && batch.n < REPL_MAX_BATCH) {
            struct repl_item *it = props->head;
            repl_list_remove(props, it);
            repl_list_push(&batch, it);
        }
        submit_batch(c, &batch);
    }
}

void repl_core_submit(struct repl_core *c, struct repl_list *in, int64_t now_ms)
{
    struct repl_list props = {0};
    struct repl_item *it;
    while ((it = in->head)) {
        repl_list_remove(in, it);
        if (it->kind != REPL_PROPOSE && it->kind != REPL_READ) {
            repl_member_start(c, it, now_ms);
        } else if (it->deadline_ms <= now_ms) {
            repl_complete(it, UC_ETIMEDOUT, "deadline passed before the request was submitted",
                          false, 0, NULL);
        } else if (it->kind == REPL_PROPOSE) {
            repl_list_push(&props, it);
        } else {
            repl_list_push(&c->reads, it);
        }
    }
    if (props.head)
        submit_proposals(c, &props);
    repl_core_pump(c);
}

void repl_core_applied(struct repl_core *c, uint64_t index, uint64_t token, uint64_t seq,
                       void *result)
{
    bool taken = false;
    struct repl_item *it;
    while ((it = c->waiting.head) && it->index <= index) {
        repl_list_remove(&c->waiting, it);
        if (!taken && it->index == index && token == c->token && seq == it->seq) {
            taken = true;
            repl_complete(it, 0, "", false, index, result);
        } else {
            repl_complete(it, UC_EUNAVAIL,
                          "the entry was replaced in the log after a leader change; not applied",
                          false, 0, NULL);
        }
    }
    if (!taken && result && c->sm.free_result)
        c->sm.free_result(c->sm.ctx, result);
}

void repl_core_restored(struct repl_core *c, uint64_t index)
{
    struct repl_item *it;
    while ((it = c->waiting.head) && it->index <= index) {
        repl_list_remove(&c->waiting, it);
        repl_complete(it, UC_EUNAVAIL,
                      "a snapshot from the leader replaced the log; outcome unknown", true, 0,
                      NULL);
    }
}

/* --- reads ---------------------------------------------------------------------- */

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct repl_barrier *b = req->data;
    struct repl_core *c = b->core;
    char msg[UC_ERR_LEN];
    if (c->barrier == b)
        c->barrier = NULL;
    /* A read sees everything applied before its barrier: with an apply
     * thread, that is once it caught up. */
    if (status == 0 && c->applier && !repl_applier_drain(c->applier, msg)) {
        fail_list(&b->group, UC_EUNAVAIL, msg, false);
    } else if (status == 0) {
        struct repl_item *it;
        c->stats.reads += b->group.n;
        while ((it = b->group.head)) {
            repl_list_remove(&b->group, it);
            repl_complete(it, 0, "", false, req->index, NULL);
        }
    } else {
        snprintf(msg, sizeof(msg), "leadership not confirmed for the read: %s",
                 raft_strerror(status));
        fail_list(&b->group, UC_EUNAVAIL, msg, false);
    }
    uc_free(b);
}

static void start_barrier(struct repl_core *c)
{
    char msg[UC_ERR_LEN];
    if (raft_state(c->raft) != RAFT_LEADER) {
        repl_not_leader_msg(c->raft, msg);
        fail_list(&c->reads, UC_EUNAVAIL, msg, false);
        return;
    }
    struct repl_barrier *b = uc_calloc(1, sizeof(*b));
    if (!b) {
        fail_list(&c->reads, UC_ENOMEM, "out of memory starting a read barrier", false);
        return;
    }
    b->core = c;
    b->req.data = b;
    repl_list_splice(&b->group, &c->reads);
    int rv = raft_barrier(c->raft, &b->req, barrier_cb);
    if (rv != 0) {
        if (rv == RAFT_NOTLEADER)
            repl_not_leader_msg(c->raft, msg);
        else
            snprintf(msg, sizeof(msg), "raft refused the read barrier: %s", raft_strerror(rv));
        fail_list(&b->group, repl_raft_err(rv), msg, false);
        uc_free(b);
        return;
    }
    c->barrier = b;
    c->stats.barriers++;
}

void repl_core_pump(struct repl_core *c)
{
    struct raft *r = c->raft;
    if (!c->barrier && raft_state(r) == RAFT_LEADER && c->noop_term != r->current_term) {
        /* A new leader commits an entry of its own term at once (raft 0.15
         * does not): earlier entries then commit, their proposers learn their
         * fate, and membership changes are allowed again. */
        c->noop_term = r->current_term;
        start_barrier(c);
    } else if (c->reads.head && !c->barrier) {
        start_barrier(c);
    }
    repl_member_pump(c);
}

/* --- deadlines and shutdown ---------------------------------------------------- */

static void expire_list(struct repl_list *l, int64_t now_ms, const char *msg, bool unknown)
{
    struct repl_item *it = l->head;
    while (it) {
        struct repl_item *next = it->next;
        if (it->deadline_ms <= now_ms) {
            repl_list_remove(l, it);
            repl_complete(it, UC_ETIMEDOUT, msg, unknown, 0, NULL);
        }
        it = next;
    }
}

void repl_core_sweep(struct repl_core *c, int64_t now_ms)
{
    expire_list(&c->waiting, now_ms,
                "deadline passed before the entry was committed; it may still be applied", true);
    expire_list(&c->reads, now_ms, "deadline passed before the read was confirmed", false);
    if (c->barrier)
        expire_list(&c->barrier->group, now_ms, "deadline passed before the read was confirmed",
                    false);
    repl_member_sweep(c, now_ms);
}

bool repl_core_idle(const struct repl_core *c)
{
    return !c->waiting.head && !c->reads.head && !(c->barrier && c->barrier->group.head) &&
           repl_member_idle(c);
}

void repl_core_fail_all(struct repl_core *c, const char *msg)
{
    char unknown_msg[UC_ERR_LEN];
    snprintf(unknown_msg, sizeof(unknown_msg), "%s; the entry may still be applied", msg);
    fail_list(&c->waiting, UC_EUNAVAIL, unknown_msg, true);
    fail_list(&c->reads, UC_EUNAVAIL, msg, false);
    if (c->barrier) {
        /* raft answers every barrier before its close callback; this is only
         * reached if raft never ran. */
        fail_list(&c->barrier->group, UC_EUNAVAIL, msg, false);
        uc_free(c->barrier);
        c->barrier = NULL;
    }
    repl_member_fail_all(c, msg);
}

/* --- status ------------------------------------------------------------------------ */

static enum uc_repl_role role_of(int state)
{
    switch (state) {
    case RAFT_FOLLOWER:
        return UC_REPL_FOLLOWER;
    case RAFT_CANDIDATE:
        return UC_REPL_CANDIDATE;
    case RAFT_LEADER:
        return UC_REPL_LEADER;
    default:
        return UC_REPL_UNAVAILABLE;
    }
}

static enum uc_repl_member_role member_role_of(int role)
{
    return role == RAFT_VOTER     ? UC_REPL_VOTER
           : role == RAFT_STANDBY ? UC_REPL_LEARNER
                                  : UC_REPL_SPARE;
}

void repl_core_status(const struct repl_core *c, struct uc_repl_status *out)
{
    struct raft *r = c->raft;
    raft_id leader = 0;
    const char *addr = NULL;
    memset(out, 0, sizeof(*out));
    out->stats = c->stats;
    if (!r)
        return;
    out->id = r->id;
    out->role = role_of(raft_state(r));
    out->term = r->current_term;
    raft_leader(r, &leader, &addr);
    out->leader_id = leader;
    if (leader && addr)
        snprintf(out->leader_addr, sizeof(out->leader_addr), "%s", addr);
    out->commit_index = r->commit_index;
    /* raft counts an entry applied once the apply thread has it queued */
    out->applied_index =
        c->applier && !repl_applier_idle(c->applier) ? c->collected : raft_last_applied(r);
    out->last_index = raft_last_index(r);
    if (c->applier)
        repl_applier_health(c->applier, &out->stats.apply_groups, out->apply_error);
    out->snapshot_index = r->log.snapshot.last_index;
    out->snapshot_term = r->log.snapshot.last_term;
    out->n_members_total = r->configuration.n;
    for (unsigned i = 0; i < r->configuration.n && out->n_members < UC_REPL_MAX_MEMBERS; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        struct uc_repl_member *m = &out->members[out->n_members++];
        m->id = s->id;
        snprintf(m->addr, sizeof(m->addr), "%s", s->address ? s->address : "");
        m->role = member_role_of(s->role);
    }
}

const char *uc_repl_role_name(enum uc_repl_role role)
{
    switch (role) {
    case UC_REPL_FOLLOWER:
        return "follower";
    case UC_REPL_CANDIDATE:
        return "candidate";
    case UC_REPL_LEADER:
        return "leader";
    default:
        return "unavailable";
    }
}

const char *uc_repl_member_role_name(enum uc_repl_member_role role)
{
    switch (role) {
    case UC_REPL_VOTER:
        return "voter";
    case UC_REPL_LEARNER:
        return "learner";
    default:
        return "spare";
    }
}
