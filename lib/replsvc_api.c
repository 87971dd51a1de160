/* replsvc_api.c - the /api/v1/cluster routes every replicated service lists:
 * status and members (this member's view), membership changes and leadership
 * transfer (run on the leader one at a time; a follower forwards them), the
 * backup, and the common /readyz and /metrics parts. Changes answer from
 * uc_repl's completion callback on the loop thread (UC_HTTP_ASYNC). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_internal.h"
#include "replsvc_internal.h"
#include "uc/alloc.h"
#include "uc/json.h"
#include "uc/log.h"

/* One change in flight; for a replacement it carries the steps' state. */
struct call {
    struct uc_replsvc *rs;
    struct uc_http_req *req;
    int status;                   /* HTTP status of a success */
    uint64_t id;                  /* the member changed */
    char addr[UC_REPL_ADDR_LEN];  /* replace: its new raft address */
    char url[UC_REPLSVC_URL_LEN]; /* add: API URL to publish, "" for none */
    bool promote;                 /* replace: it was a voter */
};

/* ---- status and members -------------------------------------------------------- */

static json_t *member_json(struct uc_replsvc *rs, const struct uc_repl_member *m)
{
    char url[UC_REPLSVC_URL_LEN];
    json_t *o = json_pack("{sIssss}", "id", (json_int_t)m->id, "address", m->addr, "role",
                          uc_repl_member_role_name(m->role));
    if (o && replsvc_sm_url(&rs->sm, m->id, url) &&
        json_object_set_new(o, "api_url", json_string(url)) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *members_json(struct uc_replsvc *rs, const struct uc_repl_status *st)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < st->n_members; i++) {
        json_t *o = member_json(rs, &st->members[i]);
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static void reply_members(struct uc_replsvc *rs, struct uc_http_req *req, int status)
{
    struct uc_repl_status st;
    uc_repl_status(rs->repl, &st);
    json_t *m = members_json(rs, &st);
    json_t *out = m ? json_pack("{so}", "members", m) : NULL;
    if (!out)
        uc_http_error(req, UC_ENOMEM, "out of memory");
    else if (uc_http_reply_json(req, status, out) < 0)
        uc_warn("cannot send a reply");
}

static json_t *leader_json(struct uc_replsvc *rs, const struct uc_repl_status *st)
{
    if (!st->leader_id)
        return json_null();
    struct uc_repl_member m = {.id = st->leader_id, .role = UC_REPL_VOTER};
    memcpy(m.addr, st->leader_addr, sizeof(m.addr));
    json_t *o = member_json(rs, &m);
    if (o)
        json_object_del(o, "role");
    return o;
}

static json_t *status_json(struct uc_replsvc *rs, const struct uc_repl_status *st)
{
    json_t *leader = leader_json(rs, st), *members = members_json(rs, st);
    json_t *restore = replsvc_restore_json(rs);
    if (!leader || !members || !restore) {
        json_decref(leader);
        json_decref(members);
        json_decref(restore);
        return NULL;
    }
    return json_pack(
        "{sIsssssIsosIsIsIsIsIsos{sIsIsIsIsI}soss}", "id", (json_int_t)st->id, "role",
        uc_repl_role_name(st->role), "api_url", rs->url, "term", (json_int_t)st->term, "leader",
        leader, "commit_index", (json_int_t)st->commit_index, "applied_index",
        (json_int_t)st->applied_index, "last_index", (json_int_t)st->last_index, "snapshot_index",
        (json_int_t)st->snapshot_index, "snapshot_term", (json_int_t)st->snapshot_term, "members",
        members, "stats", "proposals", (json_int_t)st->stats.proposals, "batches",
        (json_int_t)st->stats.batches, "appends", (json_int_t)st->stats.appends, "reads",
        (json_int_t)st->stats.reads, "apply_groups", (json_int_t)st->stats.apply_groups, "restore",
        restore, "apply_error", st->apply_error);
}

int uc_replsvc_h_status(struct uc_http_req *req, void *ctx)
{
    struct uc_replsvc *rs = replsvc_of(ctx);
    struct uc_repl_status st;
    uc_repl_status(rs->repl, &st);
    json_t *out = status_json(rs, &st);
    if (out && rs->status_hook && rs->status_hook(ctx, out) < 0) {
        json_decref(out);
        out = NULL;
    }
    return out ? uc_http_reply_json(req, 200, out) : UC_ENOMEM;
}

int uc_replsvc_h_members(struct uc_http_req *req, void *ctx)
{
    reply_members(replsvc_of(ctx), req, 200);
    return 0;
}

/* ---- changes ---------------------------------------------------------------------- */

static struct call *call_new(struct uc_replsvc *rs, struct uc_http_req *req, int status)
{
    struct call *c = uc_calloc(1, sizeof(*c));
    if (c) {
        c->rs = rs;
        c->req = req;
        c->status = status;
    }
    return c;
}

/* What a handler returns once it tried to queue `c` (rc from the queuing call). */
static int queued(int rc, struct call *c)
{
    if (rc < 0) {
        uc_free(c);
        return rc;
    }
    return UC_HTTP_ASYNC;
}

static void changed(void *ctx, const struct uc_repl_done *d)
{
    struct call *c = ctx;
    if (d->status < 0)
        uc_replsvc_reply_error(c->rs, c->req, d);
    else
        reply_members(c->rs, c->req, c->status);
    uc_free(c);
}

static int member_param(struct uc_http_req *req, uint64_t *id)
{
    const char *v = uc_http_param(req, "id");
    char *end;
    unsigned long long n = v[0] >= '0' && v[0] <= '9' ? strtoull(v, &end, 10) : 0;
    if (n == 0 || *end || n > INT64_MAX)
        return uc_err_set(req->err, UC_EINVAL, "member id must be a positive integer");
    *id = n;
    return 0;
}

static void url_published(void *ctx, const struct uc_repl_done *d)
{
    struct call *c = ctx;
    if (d->status < 0)
        uc_http_error(c->req, d->status,
                      "member %llu was added as a learner, but publishing its API URL failed: %s",
                      (unsigned long long)c->id, d->msg);
    else
        reply_members(c->rs, c->req, c->status);
    uc_free(c);
}

/* Added: publish the API URL the caller gave, then answer. */
static void added(void *ctx, const struct uc_repl_done *d)
{
    struct call *c = ctx;
    uint8_t *cmd = NULL;
    size_t len = 0;
    if (d->status < 0 || !c->url[0]) {
        changed(c, d);
        return;
    }
    int rc = replsvc_cmd_url(c->id, c->url, &cmd, &len);
    if (rc == 0)
        rc = uc_repl_propose(c->rs->repl, cmd, len, uc_replsvc_deadline(c->rs), url_published, c,
                             c->req->err);
    uc_free(cmd);
    if (rc < 0) {
        uc_http_error(c->req, rc,
                      "member %llu was added as a learner, but its API URL was not "
                      "published: %s",
                      (unsigned long long)c->id, c->req->err);
        uc_free(c);
    }
}

/* The optional api_url of an add, normalised into out. */
static int add_url(struct uc_http_req *req, char out[UC_REPLSVC_URL_LEN])
{
    struct uc_replsvc_opts o = {.advertise_url = (char *)uc_json_str(req->body, "api_url", "")};
    out[0] = '\0';
    if (!o.advertise_url[0])
        return 0;
    int rc = uc_replsvc_advertise_url(&o, out, req->err);
    if (rc < 0) /* the message names --advertise-url: say api_url */
        return uc_err_set(req->err, rc, "field 'api_url' must be an http:// or https:// URL");
    return 0;
}

int uc_replsvc_h_member_add(struct uc_http_req *req, void *ctx)
{
    static const struct uc_json_field fields[] = {
        {"id", UC_JSON_INT, true, 1, INT64_MAX, NULL},
        {"address", UC_JSON_STRING, true, 3, UC_REPL_ADDR_LEN - 1, NULL},
        {"api_url", UC_JSON_STRING, false, 0, UC_REPLSVC_URL_LEN - 2, NULL},
        {NULL, UC_JSON_ANY, false, 0, 0, NULL},
    };
    struct uc_replsvc *rs = replsvc_of(ctx);
    char url[UC_REPLSVC_URL_LEN];
    int rc = uc_json_validate(req->body, fields, req->err);
    if (rc == 0)
        rc = add_url(req, url);
    if (rc < 0 || uc_replsvc_forward(rs, req))
        return rc < 0 ? rc : 0;
    struct call *c = call_new(rs, req, 201);
    if (!c)
        return UC_ENOMEM;
    c->id = (uint64_t)uc_json_int(req->body, "id", 0);
    memcpy(c->url, url, sizeof(url));
    rc = uc_repl_add_learner(rs->repl, c->id, uc_json_str(req->body, "address", ""),
                             uc_replsvc_deadline(rs), added, c, req->err);
    return queued(rc, c);
}

/* A uc_repl membership call on one member id. */
typedef int (*member_call)(struct uc_repl *repl, uint64_t id, int64_t deadline_ms, uc_repl_cb cb,
                           void *cb_ctx, char err[UC_ERR_LEN]);

/* Promote or remove the member named in the path. */
static int change_member(struct uc_http_req *req, void *ctx, member_call call)
{
    struct uc_replsvc *rs = replsvc_of(ctx);
    uint64_t id;
    int rc = member_param(req, &id);
    if (rc < 0 || uc_replsvc_forward(rs, req))
        return rc < 0 ? rc : 0;
    struct call *c = call_new(rs, req, 200);
    if (!c)
        return UC_ENOMEM;
    return queued(call(rs->repl, id, uc_replsvc_deadline(rs), changed, c, req->err), c);
}

int uc_replsvc_h_member_promote(struct uc_http_req *req, void *ctx)
{
    return change_member(req, ctx, uc_repl_promote);
}

int uc_replsvc_h_member_remove(struct uc_http_req *req, void *ctx)
{
    return change_member(req, ctx, uc_repl_remove);
}

int uc_replsvc_h_leader(struct uc_http_req *req, void *ctx)
{
    static const struct uc_json_field fields[] = {
        {"id", UC_JSON_INT, false, 0, INT64_MAX, NULL},
        {NULL, UC_JSON_ANY, false, 0, 0, NULL},
    };
    struct uc_replsvc *rs = replsvc_of(ctx);
    int rc = uc_json_validate(req->body, fields, req->err);
    if (rc < 0 || uc_replsvc_forward(rs, req))
        return rc < 0 ? rc : 0;
    struct call *c = call_new(rs, req, 200);
    if (!c)
        return UC_ENOMEM;
    rc = uc_repl_transfer(rs->repl, (uint64_t)uc_json_int(req->body, "id", 0),
                          uc_replsvc_deadline(rs), changed, c, req->err);
    return queued(rc, c);
}

/* ---- replacing a member's raft address: remove, add as learner, promote ---------- */

static void replace_fail(struct call *c, int code, const char *what, const char *why)
{
    unsigned long long id = (unsigned long long)c->id;
    if (!strcmp(what, "promote"))
        uc_http_error(c->req, code,
                      "member %llu is a learner at %s but was not promoted: %s; start it there "
                      "with an empty data dir, then POST /api/v1/cluster/members/%llu/promote",
                      id, c->addr, why, id);
    else
        uc_http_error(c->req, code,
                      "member %llu was removed but not added back at %s: %s; add it with POST "
                      "/api/v1/cluster/members",
                      id, c->addr, why);
    uc_free(c);
}

static void replace_promoted(void *ctx, const struct uc_repl_done *d)
{
    struct call *c = ctx;
    if (d->status < 0) {
        replace_fail(c, d->status, "promote", d->msg);
        return;
    }
    reply_members(c->rs, c->req, 200);
    uc_free(c);
}

static void replace_added(void *ctx, const struct uc_repl_done *d)
{
    struct call *c = ctx;
    if (d->status < 0) {
        replace_fail(c, d->status, "add", d->msg);
        return;
    }
    if (!c->promote) {
        reply_members(c->rs, c->req, 200);
        uc_free(c);
        return;
    }
    int rc = uc_repl_promote(c->rs->repl, c->id, uc_replsvc_deadline(c->rs), replace_promoted, c,
                             c->req->err);
    if (rc < 0)
        replace_fail(c, rc, "promote", c->req->err);
}

static void replace_removed(void *ctx, const struct uc_repl_done *d)
{
    struct call *c = ctx;
    if (d->status < 0) {
        changed(c, d);
        return;
    }
    int rc = uc_repl_add_learner(c->rs->repl, c->id, c->addr, uc_replsvc_deadline(c->rs),
                                 replace_added, c, c->req->err);
    if (rc < 0)
        replace_fail(c, rc, "add", c->req->err);
}

/* Check the replacement of member c->id by c->addr against status `st`. */
static int replace_check(struct call *c, const struct uc_repl_status *st)
{
    const struct uc_repl_member *m = NULL;
    unsigned long long id = (unsigned long long)c->id;
    for (size_t i = 0; i < st->n_members && !m; i++)
        if (st->members[i].id == c->id)
            m = &st->members[i];
    if (!m)
        return uc_err_set(c->req->err, UC_ENOENT, "no member %llu", id);
    if (st->role == UC_REPL_LEADER && c->id == st->id)
        return uc_err_set(c->req->err, UC_ECONFLICT,
                          "member %llu leads: hand the leadership to another member first (POST "
                          "/api/v1/cluster/leader)",
                          id);
    if (!strcmp(m->addr, c->addr))
        return uc_err_set(c->req->err, UC_ECONFLICT, "member %llu is at %s already", id, c->addr);
    c->promote = m->role == UC_REPL_VOTER;
    return 0;
}

int uc_replsvc_h_member_replace(struct uc_http_req *req, void *ctx)
{
    static const struct uc_json_field fields[] = {
        {"address", UC_JSON_STRING, true, 3, UC_REPL_ADDR_LEN - 1, NULL},
        {NULL, UC_JSON_ANY, false, 0, 0, NULL},
    };
    struct uc_replsvc *rs = replsvc_of(ctx);
    struct uc_repl_status st;
    uint64_t id;
    int rc = member_param(req, &id);
    if (rc == 0)
        rc = uc_json_validate(req->body, fields, req->err);
    if (rc == 0 && !repl_valid_addr(uc_json_str(req->body, "address", "")))
        rc = uc_err_set(req->err, UC_EINVAL, "field 'address' must be host:port");
    /* Three changes in a row, each with its own deadline. */
    if (rc < 0 || replsvc_forward_within(rs, req, 3 * rs->timeout_ms + 1000))
        return rc < 0 ? rc : 0;
    struct call *c = call_new(rs, req, 200);
    if (!c)
        return UC_ENOMEM;
    c->id = id;
    snprintf(c->addr, sizeof(c->addr), "%s", uc_json_str(req->body, "address", ""));
    uc_repl_status(rs->repl, &st);
    rc = replace_check(c, &st);
    if (rc == 0)
        rc = uc_repl_remove(rs->repl, id, uc_replsvc_deadline(rs), replace_removed, c, req->err);
    return queued(rc, c);
}

/* ---- the backup ----------------------------------------------------------------------- */

/* On the loop thread, after the read barrier: the service's snapshot, as of
 * everything applied, behind the backup header. */
static void send_backup(struct uc_replsvc *rs, struct uc_http_req *req)
{
    void *snap = NULL;
    size_t len = 0;
    char disp[96];
    int rc = rs->sm.svc.snapshot(rs->sm.svc.ctx, &snap, &len);
    uint64_t index = replsvc_sm_applied(&rs->sm);
    uint8_t *out = NULL;
    if (rc == 0 && len > UC_REPLSVC_MAX_BACKUP)
        rc = uc_err_set(req->err, UC_E2BIG,
                        "the snapshot (%zu bytes) is above the backup limit of %u bytes", len,
                        (unsigned)UC_REPLSVC_MAX_BACKUP);
    else if (rc < 0)
        uc_err_set(req->err, rc, "cannot take a snapshot: %s", uc_strerror(rc));
    if (rc == 0 && !(out = uc_malloc(UC_REPLSVC_BACKUP_HDR + len)))
        rc = uc_err_set(req->err, UC_ENOMEM, "out of memory");
    if (rc == 0 && (rc = uc_replsvc_backup_header(out, rs->service, index, snap, len)) < 0)
        uc_err_set(req->err, rc, "cannot compute the checksum");
    if (rc < 0) {
        uc_http_error(req, rc, "%s", req->err);
    } else {
        memcpy(out + UC_REPLSVC_BACKUP_HDR, snap, len);
        snprintf(disp, sizeof(disp), "attachment; filename=\"%s-%llu.backup\"", rs->service,
                 (unsigned long long)index);
        (void)uc_http_add_header(req, "Content-Disposition", disp); /* a convenience only */
        if (uc_http_reply_data(req, 200, "application/octet-stream", out,
                               UC_REPLSVC_BACKUP_HDR + len) < 0)
            uc_warn("cannot send the backup");
    }
    uc_free(out);
    uc_free(snap);
}

static void backup_barrier(void *ctx, const struct uc_repl_done *d)
{
    struct call *c = ctx;
    if (d->status < 0)
        uc_replsvc_reply_error(c->rs, c->req, d);
    else
        send_backup(c->rs, c->req);
    uc_free(c);
}

int uc_replsvc_h_backup(struct uc_http_req *req, void *ctx)
{
    struct uc_replsvc *rs = replsvc_of(ctx);
    if (replsvc_forward_within(rs, req, 2 * rs->timeout_ms + 1000))
        return 0;
    struct call *c = call_new(rs, req, 200);
    if (!c)
        return UC_ENOMEM;
    return queued(uc_replsvc_read_barrier(rs, backup_barrier, c, req->err), c);
}

/* ---- readiness and metrics -------------------------------------------------------------- */

static int ready(void *ctx, char err[UC_ERR_LEN])
{
    struct uc_repl_status st;
    uc_repl_status(replsvc_of(ctx)->repl, &st);
    if (st.role == UC_REPL_UNAVAILABLE)
        return uc_err_set(err, UC_EUNAVAIL, "the raft member is not running");
    if (st.apply_error[0]) /* its state falls behind; its reads answer 503 */
        return uc_err_set(err, UC_EUNAVAIL, "%s", st.apply_error);
    return 0;
}

static void metric(FILE *out, const char *svc, const char *name, const char *type, const char *help,
                   unsigned long long v)
{
    fprintf(out, "# HELP %s_%s %s\n# TYPE %s_%s %s\n%s_%s %llu\n", svc, name, help, svc, name, type,
            svc, name, v);
}

static void metrics(void *ctx, FILE *out)
{
    struct uc_replsvc *rs = replsvc_of(ctx);
    struct uc_repl_status st;
    const char *s = rs->service;
    uc_repl_status(rs->repl, &st);
    metric(out, s, "is_leader", "gauge", "1 while this member leads", st.role == UC_REPL_LEADER);
    metric(out, s, "term", "gauge", "Current raft term", st.term);
    metric(out, s, "commit_index", "gauge", "Last raft index known committed", st.commit_index);
    metric(out, s, "applied_index", "gauge", "Last raft index applied", st.applied_index);
    metric(out, s, "snapshot_index", "gauge", "Index of the last snapshot", st.snapshot_index);
    metric(out, s, "apply_groups_total", "counter",
           "Groups of entries the apply thread committed (0: applies run on the loop)",
           st.stats.apply_groups);
    metric(out, s, "apply_failing", "gauge", "1 while an entry that failed to apply is retried",
           st.apply_error[0] != '\0');
    metric(out, s, "members", "gauge", "Members in the configuration", st.n_members_total);
    metric(out, s, "forwarded_total", "counter", "Requests this member forwarded to the leader",
           atomic_load(&rs->forwarded));
    if (rs->metrics_hook)
        rs->metrics_hook(ctx, out);
}

void uc_replsvc_http_opts(struct uc_replsvc *rs, struct uc_http_opts *opts)
{
    opts->service = rs->service;
    opts->bind_addr = rs->listen;
    opts->port = rs->port;
    opts->threads = rs->threads;
    opts->access_log = rs->access_log;
    opts->authn = uc_auth_http_authn;
    opts->authn_ctx = rs->verifier;
    opts->ready = ready;
    opts->metrics = metrics;
}
