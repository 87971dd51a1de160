/* repl_member.c - membership changes on the leader, one at a time: add a
 * learner (raft_add as spare, then raft_assign to standby), promote it
 * (raft_assign to voter), remove a member, transfer leadership. */
#include <stdio.h>
#include <string.h>

#include "repl_internal.h"
#include "uc/alloc.h"

enum step {
    STEP_ADDING,      /* add_learner: raft_add in flight */
    STEP_NEED_ASSIGN, /* add_learner: the member is a spare; make it standby */
    STEP_RUNNING,     /* the change's last raft request is in flight */
    STEP_WAIT_COMMIT, /* raft holds an uncommitted configuration; retry once it commits */
    STEP_VERIFY,      /* transfer: raft is done; wait to hear who leads now */
};

struct repl_change {
    struct raft_change req;
    struct raft_transfer treq;
    struct repl_core *core;
    struct repl_item *item; /* NULL once the caller got an answer */
    enum repl_kind kind;
    uint64_t target;
    enum step step;
    uint64_t wait_index;  /* STEP_WAIT_COMMIT: retry once this index commits */
    int64_t verify_until; /* STEP_VERIFY: give up then (0 until the next sweep sets it) */
};

/* Describe raft's refusal `rv` of change `ch` into msg; returns the code and
 * sets *unknown when the change may have happened anyway. */
static int change_error(struct repl_change *ch, int rv, char msg[UC_ERR_LEN], bool *unknown)
{
    *unknown = rv == RAFT_LEADERSHIPLOST || rv == RAFT_SHUTDOWN;
    unsigned long long id = (unsigned long long)ch->target;
    const char *addr = ch->item ? ch->item->addr : "";
    switch (rv) {
    case RAFT_NOTLEADER:
        repl_not_leader_msg(ch->core->raft, msg);
        return UC_EUNAVAIL;
    case RAFT_DUPLICATEID:
        return uc_err_set(msg, UC_EEXIST, "member %llu already exists", id);
    case RAFT_DUPLICATEADDRESS:
        return uc_err_set(msg, UC_EEXIST, "address %s is already used by a member", addr);
    case RAFT_BADID:
    case RAFT_NOTFOUND:
        if (ch->kind == REPL_TRANSFER)
            return uc_err_set(msg, UC_ENOENT, "no other voter %llu to hand leadership to", id);
        return uc_err_set(msg, UC_ENOENT, "no member %llu", id);
    case RAFT_BADROLE:
        return uc_err_set(msg, UC_EINVAL, "member %llu already has that role", id);
    case RAFT_CANTCHANGE:
        return uc_err_set(msg, UC_EBUSY, "raft still has an uncommitted configuration change");
    case RAFT_NOCONNECTION:
        if (ch->kind == REPL_PROMOTE)
            return uc_err_set(msg, UC_EUNAVAIL, "member %llu did not catch up with the log", id);
        break;
    case RAFT_LEADERSHIPLOST:
        return uc_err_set(msg, UC_EUNAVAIL, "leadership lost during the change; outcome unknown");
    case RAFT_SHUTDOWN:
        return uc_err_set(msg, UC_EUNAVAIL, "stopping during the change; outcome unknown");
    default:
        break;
    }
    return uc_err_set(msg, repl_raft_err(rv), "membership change failed: %s", raft_strerror(rv));
}

/* Retire the change, then answer the caller (if still waiting): the slot is
 * free by the time the callback runs, so it may start the next change. */
static void finish(struct repl_change *ch, int status, const char *msg, bool unknown)
{
    struct repl_core *c = ch->core;
    struct repl_item *it = ch->item;
    if (c->change == ch)
        c->change = NULL;
    uc_free(ch);
    if (c->change_settled)
        c->change_settled(c->hook_ctx);
    if (it)
        repl_complete(it, status, msg, unknown, 0, NULL);
}

static void finish_raft(struct repl_change *ch, int rv)
{
    char msg[UC_ERR_LEN];
    bool unknown = false;
    int code = rv ? change_error(ch, rv, msg, &unknown) : 0;
    finish(ch, code, code ? msg : "", unknown);
}

static void change_cb(struct raft_change *req, int status)
{
    struct repl_change *ch = req->data;
    if (status == 0 && ch->step == STEP_ADDING) {
        /* Even if the caller gave up, finish what was asked: make it standby.
         * repl_member_pump does it, outside raft's callback. */
        ch->step = STEP_NEED_ASSIGN;
        return;
    }
    finish_raft(ch, status);
}

static int issue(struct repl_change *ch);

/* Settle a transfer from who this member now sees leading: the target
 * (done); itself, still leader (raft gave up, e.g. the target ignored the
 * TimeoutNow because it had not yet learned it is a voter: try again while
 * the caller waits); a third member (failed); nobody yet (wait, unless
 * `give_up`). Never called inside a raft callback. */
static void verify_transfer(struct repl_change *ch, bool give_up)
{
    struct raft *r = ch->core->raft;
    raft_id leader = 0;
    const char *addr = NULL;
    char msg[UC_ERR_LEN];
    raft_leader(r, &leader, &addr);
    if (leader != 0 && leader == ch->target) {
        finish(ch, 0, "", false);
        return;
    }
    if (raft_state(r) == RAFT_LEADER && ch->item) {
        ch->step = STEP_RUNNING;
        ch->verify_until = 0;
        int rv = issue(ch);
        if (rv != 0)
            finish_raft(ch, rv);
        return;
    }
    if (leader == 0 && !give_up)
        return;
    snprintf(msg, sizeof(msg), "leadership transfer to %llu did not complete",
             (unsigned long long)ch->target);
    finish(ch, UC_EUNAVAIL, msg, false);
}

/* raft calls this when it sees the target lead, when the transfer timed out,
 * or when this member steps down for the target's election (the new leader
 * is then not known yet); repl_member_pump and _sweep settle the rest. */
static void transfer_cb(struct raft_transfer *req)
{
    struct repl_change *ch = req->data;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(ch->core->raft, &leader, &addr);
    if (leader != 0 && leader == ch->target)
        finish(ch, 0, "", false);
    else
        ch->step = STEP_VERIFY;
}

static int issue(struct repl_change *ch)
{
    struct raft *r = ch->core->raft;
    switch (ch->kind) {
    case REPL_ADD_LEARNER:
        if (ch->step == STEP_NEED_ASSIGN) {
            ch->step = STEP_RUNNING;
            return raft_assign(r, &ch->req, ch->target, RAFT_STANDBY, change_cb);
        }
        ch->step = STEP_ADDING;
        return raft_add(r, &ch->req, ch->target, ch->item->addr, change_cb);
    case REPL_PROMOTE:
        return raft_assign(r, &ch->req, ch->target, RAFT_VOTER, change_cb);
    case REPL_REMOVE:
        return raft_remove(r, &ch->req, ch->target, change_cb);
    case REPL_TRANSFER: {
        int rv = raft_transfer(r, &ch->treq, ch->target, transfer_cb);
        if (rv == 0)
            ch->target = ch->treq.id; /* raft picked one when asked for 0 */
        return rv;
    }
    default:
        return RAFT_INVALID;
    }
}

/* Fail `it` before it became the change in flight. */
static void refuse(struct repl_core *c, struct repl_item *it, int status, const char *msg)
{
    if (c->change_settled)
        c->change_settled(c->hook_ctx);
    repl_complete(it, status, msg, false, 0, NULL);
}

void repl_member_start(struct repl_core *c, struct repl_item *it, int64_t now_ms)
{
    if (c->change) {
        /* No settled call: the change in flight still holds the slot. */
        repl_complete(it, UC_EBUSY, "another membership change is in flight", false, 0, NULL);
        return;
    }
    if (it->deadline_ms <= now_ms) {
        refuse(c, it, UC_ETIMEDOUT, "deadline passed before the change was submitted");
        return;
    }
    struct repl_change *ch = uc_calloc(1, sizeof(*ch));
    if (!ch) {
        refuse(c, it, UC_ENOMEM, "out of memory starting a membership change");
        return;
    }
    ch->core = c;
    ch->item = it;
    ch->kind = it->kind;
    ch->target = it->target;
    ch->req.data = ch;
    ch->treq.data = ch;
    ch->step = STEP_RUNNING;
    int rv = raft_state(c->raft) == RAFT_LEADER ? issue(ch) : RAFT_NOTLEADER;
    if (rv == RAFT_CANTCHANGE) {
        /* Typically a new leader whose predecessor's last change is not yet
         * known to be committed; the term's opening barrier settles it. */
        ch->step = STEP_WAIT_COMMIT;
        ch->wait_index = raft_last_index(c->raft);
        rv = 0;
    }
    if (rv != 0) {
        finish_raft(ch, rv);
        return;
    }
    c->change = ch;
}

void repl_member_pump(struct repl_core *c)
{
    struct repl_change *ch = c->change;
    struct raft *r = c->raft;
    if (ch && ch->step == STEP_VERIFY) {
        verify_transfer(ch, false);
        return;
    }
    if (!ch || (ch->step != STEP_NEED_ASSIGN && ch->step != STEP_WAIT_COMMIT))
        return;
    if (raft_state(r) != RAFT_LEADER) {
        finish_raft(ch, RAFT_NOTLEADER);
        return;
    }
    if (ch->step == STEP_WAIT_COMMIT) {
        if (r->configuration_uncommitted_index != 0 && r->commit_index < ch->wait_index)
            return;
        ch->step = STEP_RUNNING; /* one retry; a second refusal is UC_EBUSY */
    }
    int rv = issue(ch);
    if (rv != 0)
        finish_raft(ch, rv);
}

void repl_member_sweep(struct repl_core *c, int64_t now_ms)
{
    struct repl_change *ch = c->change;
    if (ch && ch->step == STEP_VERIFY) {
        if (ch->verify_until == 0)
            ch->verify_until = now_ms + 2 * (int64_t)c->raft->election_timeout;
        bool give_up = now_ms >= ch->verify_until;
        verify_transfer(ch, give_up);
        ch = c->change; /* NULL if that settled it */
    }
    if (!ch || !ch->item || ch->item->deadline_ms > now_ms)
        return;
    repl_complete(ch->item, UC_ETIMEDOUT,
                  "deadline passed before the membership change completed; it may still "
                  "complete",
                  true, 0, NULL);
    ch->item = NULL; /* the change stays in flight until raft settles it */
}

bool repl_member_idle(const struct repl_core *c)
{
    return !c->change || (!c->change->item && c->change->step != STEP_VERIFY);
}

void repl_member_fail_all(struct repl_core *c, const char *msg)
{
    struct repl_change *ch = c->change;
    if (!ch)
        return;
    char m[UC_ERR_LEN];
    snprintf(m, sizeof(m), "%s; outcome unknown", msg);
    finish(ch, UC_EUNAVAIL, m, true);
}
