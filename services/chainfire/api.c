/* api.c - chainfire's route table and handlers: keys (base64url in the
 * path), ranges, transactions, leases and cluster status. Writes go through
 * uc_repl_propose and reply from the commit callback (UC_HTTP_ASYNC);
 * reads wait for uc_repl_read_barrier unless ?serializable=true. */
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "uc/alloc.h"
#include "uc/clock.h"
#include "uc/crypto.h"
#include "uc/httpc.h"
#include "uc/json.h"
#include "uc/log.h"

#define LEASE_ID_MASK ((INT64_C(1) << 53) - 1) /* ids stay exact in JSON doubles */

/* What a linearizable read does once the barrier passed (on the loop
 * thread, or at once for a serializable read). */
typedef void (*read_fn)(struct chainfire_server *s, struct uc_http_req *req, json_t *arg);

struct pending {
    struct chainfire_server *s;
    struct uc_http_req *req;
    read_fn fn;  /* reads only */
    json_t *arg; /* reads only; owned */
    int status;  /* writes: status of a success */
};

static int64_t deadline(const struct chainfire_server *s)
{
    return uc_clock_mono_ms(NULL) + s->timeout_ms;
}

/* ---- forwarding ---------------------------------------------------------- */

static const char *peer_url(const struct chainfire_server *s, uint64_t id)
{
    for (size_t i = 0; i < s->npeers; i++)
        if (s->peers[i].id == id)
            return s->peers[i].url;
    return NULL;
}

/* "?forwarded=1" plus the query parameters the forwarded routes read. */
static void forward_query(struct uc_http_req *req, char *q, size_t n)
{
    static const char *const names[] = {"revision", "prefix"};
    size_t used = (size_t)snprintf(q, n, "?forwarded=1");
    for (size_t i = 0; i < 2 && used < n; i++) {
        const char *v = uc_http_query(req, names[i]);
        if (v && v[0] && strspn(v, "0123456789abcdefghijklmnopqrstuvwxyz") == strlen(v))
            used += (size_t)snprintf(q + used, n - used, "&%s=%.32s", names[i], v);
    }
}

/* Send the request to the leader and relay its answer. */
static void forward_to(struct chainfire_server *s, struct uc_http_req *req, uint64_t leader,
                       const char *base)
{
    char q[128], hdr[24];
    struct uc_httpc_resp resp = {0};
    const char *auth = uc_http_header(req, "Authorization");
    struct uc_httpc_opts o = {.bearer = auth && !strncmp(auth, "Bearer ", 7) ? auth + 7 : NULL,
                              .timeout_ms = (int)s->timeout_ms,
                              .content_type = "application/json"};
    forward_query(req, q, sizeof(q));
    char *url = uc_asprintf("%s%s%s", base, req->path, q);
    int rc = url ? uc_httpc_raw(req->method, url, req->raw_len ? req->raw_body : NULL, req->raw_len,
                                &o, &resp, req->err)
                 : UC_ENOMEM;
    uc_free(url);
    if (rc < 0) {
        uc_http_error(req, rc == UC_ETIMEDOUT || rc == UC_ENOMEM ? rc : UC_EUNAVAIL,
                      "forwarding to the leader (%" PRIu64 " at %s) failed: %s", leader, base,
                      req->err);
        return;
    }
    snprintf(hdr, sizeof(hdr), "%" PRIu64, leader);
    /* The answer is complete without it; the header only tells who served it. */
    (void)uc_http_add_header(req, "X-Chainfire-Leader", hdr);
    if (uc_http_reply_data(req, (int)resp.status, resp.len ? "application/json" : NULL, resp.body,
                           resp.len) < 0)
        uc_warn("cannot relay the leader's answer");
    uc_httpc_resp_clear(&resp);
}

/* True when the request was forwarded to the leader (and answered): this
 * member is a follower that knows the leader and its URL, and the request
 * was not forwarded to it already (no second hop). */
static bool forwarded(struct chainfire_server *s, struct uc_http_req *req)
{
    uint64_t leader;
    if (!s->npeers || uc_http_query(req, "forwarded") ||
        uc_repl_leader(s->repl, &leader, NULL) < 0 || leader == s->id)
        return false;
    const char *base = peer_url(s, leader);
    if (!base)
        return false;
    forward_to(s, req, leader, base);
    return true;
}

/* Answer a failed raft request: 503 naming the leader when there is one. */
static void reply_repl_error(struct chainfire_server *s, struct uc_http_req *req,
                             const struct uc_repl_done *d)
{
    uint64_t id;
    char addr[UC_REPL_ADDR_LEN], hdr[24];
    if (d->status == UC_EUNAVAIL && uc_repl_leader(s->repl, &id, addr) == 0) {
        snprintf(hdr, sizeof(hdr), "%" PRIu64, id);
        /* The message names the leader too; the header only saves parsing. */
        (void)uc_http_add_header(req, "X-Chainfire-Leader", hdr);
    }
    uc_http_error(req, d->status, "%s%s", d->msg,
                  d->unknown ? " (the write may still be applied)" : "");
}

/* Answer with a command's result (stolen): its error, or `status`. */
static void reply_result(struct uc_http_req *req, json_t *res, int status)
{
    json_t *e = json_object_get(res, "error");
    if (e) {
        int code = (int)json_integer_value(json_object_get(e, "code"));
        uc_http_error(req, code, "%s", uc_json_str(e, "message", ""));
        json_decref(res);
        return;
    }
    if (uc_http_reply_json(req, status, res) < 0)
        uc_warn("cannot send a reply");
}

static void committed(void *ctx, const struct uc_repl_done *d)
{
    struct pending *p = ctx;
    if (d->status < 0)
        reply_repl_error(p->s, p->req, d);
    else
        reply_result(p->req, d->result, p->status);
    uc_free(p);
}

/* Check `cmd` (stolen) and propose it; the reply comes from committed(). */
static int propose(struct chainfire_server *s, struct uc_http_req *req, json_t *cmd, int status)
{
    if (forwarded(s, req)) {
        json_decref(cmd);
        return 0;
    }
    int rc = cmd ? chainfire_kv_check(cmd, &s->limits, req->err) : UC_ENOMEM;
    char *bytes = rc == 0 ? uc_json_dumps(cmd) : NULL;
    struct pending *p = bytes ? uc_malloc(sizeof(*p)) : NULL;
    json_decref(cmd);
    if (rc < 0 || !p) {
        uc_free(bytes);
        return rc < 0 ? rc : UC_ENOMEM;
    }
    *p = (struct pending){.s = s, .req = req, .status = status};
    rc = chainfire_server_propose(s, bytes, strlen(bytes), committed, p, req->err);
    uc_free(bytes);
    if (rc < 0) {
        uc_free(p);
        return rc;
    }
    return UC_HTTP_ASYNC;
}

static void barrier_passed(void *ctx, const struct uc_repl_done *d)
{
    struct pending *p = ctx;
    if (d->status < 0)
        reply_repl_error(p->s, p->req, d);
    else
        p->fn(p->s, p->req, p->arg);
    json_decref(p->arg);
    uc_free(p);
}

static bool serializable(const struct uc_http_req *req)
{
    const char *v = uc_http_query(req, "serializable");
    return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

/* Run `fn` now (serializable) or after a read barrier; `arg` is stolen. */
static int read_at(struct chainfire_server *s, struct uc_http_req *req, read_fn fn, json_t *arg,
                   bool local)
{
    if (!arg)
        return UC_ENOMEM;
    if (local || forwarded(s, req)) {
        if (local)
            fn(s, req, arg);
        json_decref(arg);
        return 0;
    }
    struct pending *p = uc_malloc(sizeof(*p));
    if (!p) {
        json_decref(arg);
        return UC_ENOMEM;
    }
    *p = (struct pending){.s = s, .req = req, .fn = fn, .arg = arg};
    int rc = uc_repl_read_barrier(s->repl, deadline(s), barrier_passed, p, req->err);
    if (rc < 0) {
        json_decref(arg);
        uc_free(p);
        return rc;
    }
    return UC_HTTP_ASYNC;
}

/* ---- keys -------------------------------------------------------------- */

static void do_range(struct chainfire_server *s, struct uc_http_req *req, json_t *arg)
{
    json_t *out = NULL;
    pthread_mutex_lock(&s->lock);
    int rc = chainfire_kv_range(s->kv, arg, &out, req->err);
    pthread_mutex_unlock(&s->lock);
    if (rc < 0)
        uc_http_error(req, rc, "%s", req->err);
    else if (uc_http_reply_json(req, 200, out) < 0)
        uc_warn("cannot send a reply");
}

static void do_get(struct chainfire_server *s, struct uc_http_req *req, json_t *arg)
{
    json_t *out = NULL;
    pthread_mutex_lock(&s->lock);
    int rc = chainfire_kv_range(s->kv, arg, &out, req->err);
    pthread_mutex_unlock(&s->lock);
    if (rc < 0) {
        uc_http_error(req, rc, "%s", req->err);
        return;
    }
    json_t *kv = json_array_get(json_object_get(out, "kvs"), 0);
    if (!kv) {
        json_decref(out);
        uc_http_error(req, UC_ENOENT, "key not found");
        return;
    }
    json_t *res = json_pack("{sOsO}", "kv", kv, "revision", json_object_get(out, "revision"));
    json_decref(out);
    if (!res)
        uc_http_error(req, UC_ENOMEM, "out of memory");
    else if (uc_http_reply_json(req, 200, res) < 0)
        uc_warn("cannot send a reply");
}

/* ?revision=N as an integer, 0 when absent. */
static int query_revision(struct uc_http_req *req, int64_t *rev)
{
    const char *v = uc_http_query(req, "revision");
    char *end;
    *rev = 0;
    if (!v || !v[0])
        return 0;
    long long n = strtoll(v, &end, 10);
    if (*end || n < 0)
        return uc_err_set(req->err, UC_EINVAL, "revision must be a non-negative integer");
    *rev = n;
    return 0;
}

static int h_get(struct uc_http_req *req, void *ctx)
{
    int64_t rev;
    int rc = query_revision(req, &rev);
    if (rc < 0)
        return rc;
    json_t *arg =
        json_pack("{sssI}", "key", uc_http_param(req, "key"), "revision", (json_int_t)rev);
    return read_at(ctx, req, do_get, arg, serializable(req));
}

static int h_range(struct uc_http_req *req, void *ctx)
{
    bool local = uc_json_bool(req->body, "serializable", false) || serializable(req);
    return read_at(ctx, req, do_range, json_incref(req->body), local);
}

static int h_put(struct uc_http_req *req, void *ctx)
{
    if (json_object_get(req->body, "key") || json_object_get(req->body, "op"))
        return uc_err_set(req->err, UC_EINVAL, "the body holds only 'value' and 'lease'");
    json_t *cmd = json_deep_copy(req->body);
    if (!cmd || json_object_set_new(cmd, "op", json_string("put")) < 0 ||
        json_object_set_new(cmd, "key", json_string(uc_http_param(req, "key"))) < 0) {
        json_decref(cmd);
        return UC_ENOMEM;
    }
    return propose(ctx, req, cmd, 200);
}

static int h_delete(struct uc_http_req *req, void *ctx)
{
    bool prefix = false;
    const char *p = uc_http_query(req, "prefix");
    if (p && (!strcmp(p, "true") || !strcmp(p, "1")))
        prefix = true;
    json_t *cmd =
        json_pack("{sssssb}", "op", "delete", "key", uc_http_param(req, "key"), "prefix", prefix);
    return propose(ctx, req, cmd, 200);
}

static int h_txn(struct uc_http_req *req, void *ctx)
{
    if (json_object_get(req->body, "op"))
        return uc_err_set(req->err, UC_EINVAL, "unknown field 'op'");
    json_t *cmd = json_deep_copy(req->body);
    if (!cmd || json_object_set_new(cmd, "op", json_string("txn")) < 0) {
        json_decref(cmd);
        return UC_ENOMEM;
    }
    return propose(ctx, req, cmd, 200);
}

static int h_compact(struct uc_http_req *req, void *ctx)
{
    static const struct uc_json_field fields[] = {
        {"revision", UC_JSON_INT, true, 1, INT64_MAX, NULL},
        {NULL, UC_JSON_ANY, false, 0, 0, NULL},
    };
    int rc = uc_json_validate(req->body, fields, req->err);
    if (rc < 0)
        return rc;
    json_t *cmd = json_pack("{sssI}", "op", "compact", "revision",
                            (json_int_t)uc_json_int(req->body, "revision", 0));
    return propose(ctx, req, cmd, 200);
}

/* ---- leases ------------------------------------------------------------ */

static int lease_param(struct uc_http_req *req, int64_t *id)
{
    const char *v = uc_http_param(req, "id");
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || n <= 0 || n > LEASE_ID_MASK)
        return uc_err_set(req->err, UC_EINVAL, "lease id must be an integer from 1 to %lld",
                          (long long)LEASE_ID_MASK);
    *id = n;
    return 0;
}

static int h_lease_grant(struct uc_http_req *req, void *ctx)
{
    static const struct uc_json_field fields[] = {
        {"ttl", UC_JSON_INT, true, 1, 365 * 86400, NULL},
        {"id", UC_JSON_INT, false, 1, LEASE_ID_MASK, NULL},
        {NULL, UC_JSON_ANY, false, 0, 0, NULL},
    };
    int64_t id;
    int rc = uc_json_validate(req->body, fields, req->err);
    if (rc < 0)
        return rc;
    id = uc_json_int(req->body, "id", 0);
    while (id == 0) {
        if (uc_crypto_random(&id, sizeof(id)) < 0)
            return uc_err_set(req->err, UC_ECRYPTO, "no random lease id");
        id &= LEASE_ID_MASK;
    }
    json_t *cmd = json_pack("{sssIsI}", "op", "lease_grant", "id", (json_int_t)id, "ttl",
                            (json_int_t)uc_json_int(req->body, "ttl", 0));
    return propose(ctx, req, cmd, 201);
}

static int h_lease_revoke(struct uc_http_req *req, void *ctx)
{
    int64_t id;
    int rc = lease_param(req, &id);
    if (rc < 0)
        return rc;
    return propose(ctx, req, json_pack("{sssI}", "op", "lease_revoke", "id", (json_int_t)id), 200);
}

/* Keep-alive and time-to-live both answer the lease as the leader sees it;
 * `arg` is {"id":N,"touch":bool}. */
static void do_lease(struct chainfire_server *s, struct uc_http_req *req, json_t *arg)
{
    int64_t id = uc_json_int(arg, "id", 0), ttl;
    size_t keys;
    pthread_mutex_lock(&s->lock);
    int rc = chainfire_kv_lease_get(s->kv, id, &ttl, &keys);
    pthread_mutex_unlock(&s->lock);
    if (rc < 0) {
        uc_http_error(req, rc, "lease %lld not found", (long long)id);
        return;
    }
    if (uc_json_bool(arg, "touch", false))
        chainfire_server_lease_touch(s, id, ttl);
    int64_t left = chainfire_server_lease_remaining(s, id);
    json_t *out =
        json_pack("{sIsIsIsI}", "id", (json_int_t)id, "ttl", (json_int_t)ttl, "remaining_ms",
                  (json_int_t)(left < 0 ? ttl * 1000 : left), "keys", (json_int_t)keys);
    if (!out)
        uc_http_error(req, UC_ENOMEM, "out of memory");
    else if (uc_http_reply_json(req, 200, out) < 0)
        uc_warn("cannot send a reply");
}

static int lease_read(struct uc_http_req *req, void *ctx, bool touch)
{
    int64_t id;
    int rc = lease_param(req, &id);
    if (rc < 0)
        return rc;
    json_t *arg = json_pack("{sIsb}", "id", (json_int_t)id, "touch", touch);
    /* Only the leader keeps lease clocks, so neither is ever local. */
    return read_at(ctx, req, do_lease, arg, false);
}

static int h_lease_keepalive(struct uc_http_req *req, void *ctx)
{
    return lease_read(req, ctx, true);
}

static int h_lease_get(struct uc_http_req *req, void *ctx) { return lease_read(req, ctx, false); }

/* ---- watch ------------------------------------------------------------- */

/* One open watch stream: NDJSON lines waiting in out[off..len). */
struct watch {
    struct chainfire_server *s;
    json_t *req;  /* key, range_end, prefix; owned */
    int64_t next; /* first revision not yet looked at */
    char *out;
    size_t len, off;
    bool ended; /* an error line is queued: the stream ends after it */
};

/* Append `v` (stolen) as one line. */
static int queue_line(struct watch *w, json_t *v)
{
    char *line = v ? uc_json_dumps(v) : NULL;
    json_decref(v);
    if (!line)
        return UC_ENOMEM;
    size_t n = strlen(line);
    char *p = uc_realloc(w->out, w->len + n + 1);
    if (!p) {
        uc_free(line);
        return UC_ENOMEM;
    }
    memcpy(p + w->len, line, n);
    p[w->len + n] = '\n';
    w->out = p;
    w->len += n + 1;
    uc_free(line);
    return 0;
}

/* Queue the changes since the last look; an error becomes the last line. */
static void watch_fill(struct watch *w)
{
    json_t *events = NULL, *ev;
    int64_t upto = 0;
    char err[UC_ERR_LEN];
    int rc = 0;
    pthread_mutex_lock(&w->s->lock);
    if (chainfire_kv_revision(w->s->kv) >= w->next)
        rc = chainfire_kv_changes(w->s->kv, w->req, w->next, &events, &upto, err);
    pthread_mutex_unlock(&w->s->lock);
    size_t i;
    uc_free(w->out);
    w->out = NULL;
    w->len = w->off = 0;
    json_array_foreach(events, i, ev)
    {
        if (rc == 0)
            rc = queue_line(w, json_incref(ev));
    }
    json_decref(events);
    if (rc == 0 && events)
        w->next = upto + 1;
    if (rc < 0) {
        w->len = w->off = 0;
        w->ended = true;
        if (queue_line(w, json_pack("{s{ss}}", "error", "message", err)) < 0)
            w->len = 0;
    }
}

static long watch_next(void *sctx, char *buf, size_t max)
{
    struct watch *w = sctx;
    if (w->off == w->len) {
        if (w->ended)
            return -1;
        watch_fill(w);
        if (w->off == w->len)
            return w->ended ? -1 : 0;
    }
    size_t n = w->len - w->off < max ? w->len - w->off : max;
    memcpy(buf, w->out + w->off, n);
    w->off += n;
    return (long)n;
}

static void watch_done(void *sctx)
{
    struct watch *w = sctx;
    json_decref(w->req);
    uc_free(w->out);
    uc_free(w);
}

static int h_watch(struct uc_http_req *req, void *ctx)
{
    static const struct uc_json_field fields[] = {
        {"key", UC_JSON_STRING, true, 0, 0, NULL},
        {"range_end", UC_JSON_STRING, false, 0, 0, NULL},
        {"prefix", UC_JSON_BOOL, false, 0, 0, NULL},
        {"start_revision", UC_JSON_INT, false, 1, INT64_MAX, NULL},
        {NULL, UC_JSON_ANY, false, 0, 0, NULL},
    };
    struct chainfire_server *s = ctx;
    json_t *events = NULL;
    int64_t upto;
    int rc = uc_json_validate(req->body, fields, req->err);
    if (rc < 0)
        return rc;
    struct watch *w = uc_calloc(1, sizeof(*w));
    if (!w)
        return UC_ENOMEM;
    w->s = s;
    w->req = json_pack("{sO*sO*sO*}", "key", json_object_get(req->body, "key"), "range_end",
                       json_object_get(req->body, "range_end"), "prefix",
                       json_object_get(req->body, "prefix"));
    pthread_mutex_lock(&s->lock);
    int64_t rev = chainfire_kv_revision(s->kv);
    w->next = uc_json_int(req->body, "start_revision", rev + 1);
    /* Checks the key fields and the compaction point before streaming. */
    rc =
        w->req ? chainfire_kv_changes(s->kv, w->req, rev + 1, &events, &upto, req->err) : UC_ENOMEM;
    if (rc == 0 && w->next <= chainfire_kv_compacted(s->kv))
        rc = chainfire_kv_changes(s->kv, w->req, w->next, &events, &upto, req->err);
    pthread_mutex_unlock(&s->lock);
    json_decref(events);
    if (rc == 0)
        rc = queue_line(w, json_pack("{sbsIsI}", "watching", 1, "revision", (json_int_t)rev,
                                     "start_revision", (json_int_t)w->next));
    if (rc < 0) {
        watch_done(w);
        return rc;
    }
    return uc_http_reply_stream(req, 200, "application/x-ndjson", watch_next, watch_done, w);
}

/* ---- cluster ----------------------------------------------------------- */

static json_t *members_json(const struct uc_repl_status *st)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < st->n_members; i++) {
        const struct uc_repl_member *m = &st->members[i];
        json_t *o = json_pack("{sIssss}", "id", (json_int_t)m->id, "address", m->addr, "role",
                              uc_repl_member_role_name(m->role));
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *status_json(struct chainfire_server *s, const struct uc_repl_status *st)
{
    pthread_mutex_lock(&s->lock);
    int64_t rev = chainfire_kv_revision(s->kv), comp = chainfire_kv_compacted(s->kv);
    pthread_mutex_unlock(&s->lock);
    json_t *leader = st->leader_id ? json_pack("{sIss}", "id", (json_int_t)st->leader_id, "address",
                                               st->leader_addr)
                                   : json_null();
    json_t *members = members_json(st);
    if (!leader || !members) {
        json_decref(leader);
        json_decref(members);
        return NULL;
    }
    return json_pack(
        "{sIsssIsosIsIsIsIsIsIsIsos{sIsIsIsI}}", "id", (json_int_t)st->id, "role",
        uc_repl_role_name(st->role), "term", (json_int_t)st->term, "leader", leader, "commit_index",
        (json_int_t)st->commit_index, "applied_index", (json_int_t)st->applied_index, "last_index",
        (json_int_t)st->last_index, "snapshot_index", (json_int_t)st->snapshot_index,
        "snapshot_term", (json_int_t)st->snapshot_term, "revision", (json_int_t)rev,
        "compact_revision", (json_int_t)comp, "members", members, "stats", "proposals",
        (json_int_t)st->stats.proposals, "batches", (json_int_t)st->stats.batches, "appends",
        (json_int_t)st->stats.appends, "reads", (json_int_t)st->stats.reads);
}

static int h_status(struct uc_http_req *req, void *ctx)
{
    struct chainfire_server *s = ctx;
    struct uc_repl_status st;
    uc_repl_status(s->repl, &st);
    json_t *out = status_json(s, &st);
    return out ? uc_http_reply_json(req, 200, out) : UC_ENOMEM;
}

static int h_members(struct uc_http_req *req, void *ctx)
{
    struct chainfire_server *s = ctx;
    struct uc_repl_status st;
    uc_repl_status(s->repl, &st);
    json_t *m = members_json(&st);
    json_t *out = m ? json_pack("{so}", "members", m) : NULL;
    return out ? uc_http_reply_json(req, 200, out) : UC_ENOMEM;
}

/* ---- membership -------------------------------------------------------- */

static void changed(void *ctx, const struct uc_repl_done *d)
{
    struct pending *p = ctx;
    if (d->status < 0) {
        reply_repl_error(p->s, p->req, d);
    } else {
        struct uc_repl_status st;
        uc_repl_status(p->s->repl, &st);
        json_t *m = members_json(&st);
        json_t *out = m ? json_pack("{so}", "members", m) : NULL;
        if (!out)
            uc_http_error(p->req, UC_ENOMEM, "out of memory");
        else if (uc_http_reply_json(p->req, p->status, out) < 0)
            uc_warn("cannot send a reply");
    }
    uc_free(p);
}

/* A membership call's common part: `rc` is what queuing it returned. */
static int change_queued(int rc, struct pending *p)
{
    if (rc < 0) {
        uc_free(p);
        return rc;
    }
    return UC_HTTP_ASYNC;
}

static struct pending *change_ctx(struct chainfire_server *s, struct uc_http_req *req, int status)
{
    struct pending *p = uc_malloc(sizeof(*p));
    if (p)
        *p = (struct pending){.s = s, .req = req, .status = status};
    return p;
}

static int member_param(struct uc_http_req *req, uint64_t *id)
{
    const char *v = uc_http_param(req, "id");
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || n == 0 || v[0] == '-')
        return uc_err_set(req->err, UC_EINVAL, "member id must be a positive integer");
    *id = n;
    return 0;
}

static int h_member_add(struct uc_http_req *req, void *ctx)
{
    static const struct uc_json_field fields[] = {
        {"id", UC_JSON_INT, true, 1, INT64_MAX, NULL},
        {"address", UC_JSON_STRING, true, 3, UC_REPL_ADDR_LEN - 1, NULL},
        {NULL, UC_JSON_ANY, false, 0, 0, NULL},
    };
    struct chainfire_server *s = ctx;
    int rc = uc_json_validate(req->body, fields, req->err);
    if (rc < 0)
        return rc;
    struct pending *p = change_ctx(s, req, 201);
    if (!p)
        return UC_ENOMEM;
    rc = uc_repl_add_learner(s->repl, (uint64_t)uc_json_int(req->body, "id", 0),
                             uc_json_str(req->body, "address", ""), deadline(s), changed, p,
                             req->err);
    return change_queued(rc, p);
}

static int h_member_promote(struct uc_http_req *req, void *ctx)
{
    struct chainfire_server *s = ctx;
    uint64_t id;
    int rc = member_param(req, &id);
    struct pending *p = rc == 0 ? change_ctx(s, req, 200) : NULL;
    if (rc < 0 || !p)
        return rc < 0 ? rc : UC_ENOMEM;
    return change_queued(uc_repl_promote(s->repl, id, deadline(s), changed, p, req->err), p);
}

static int h_member_remove(struct uc_http_req *req, void *ctx)
{
    struct chainfire_server *s = ctx;
    uint64_t id;
    int rc = member_param(req, &id);
    struct pending *p = rc == 0 ? change_ctx(s, req, 200) : NULL;
    if (rc < 0 || !p)
        return rc < 0 ? rc : UC_ENOMEM;
    return change_queued(uc_repl_remove(s->repl, id, deadline(s), changed, p, req->err), p);
}

static int h_transfer(struct uc_http_req *req, void *ctx)
{
    static const struct uc_json_field fields[] = {
        {"id", UC_JSON_INT, false, 0, INT64_MAX, NULL},
        {NULL, UC_JSON_ANY, false, 0, 0, NULL},
    };
    struct chainfire_server *s = ctx;
    int rc = uc_json_validate(req->body, fields, req->err);
    struct pending *p = rc == 0 ? change_ctx(s, req, 200) : NULL;
    if (rc < 0 || !p)
        return rc < 0 ? rc : UC_ENOMEM;
    rc = uc_repl_transfer(s->repl, (uint64_t)uc_json_int(req->body, "id", 0), deadline(s), changed,
                          p, req->err);
    return change_queued(rc, p);
}

/* ---- table ------------------------------------------------------------- */

#define JSON UC_HTTP_JSON
#define ANY UC_ROLE_ANY
#define SYS UC_ROLE_SYSTEM_ADMIN
static const struct uc_http_route routes[] = {
    {"GET", "/api/v1/kv/{key}", h_get, 0, ANY, 0},
    {"PUT", "/api/v1/kv/{key}", h_put, JSON, ANY, 0},
    {"DELETE", "/api/v1/kv/{key}", h_delete, 0, ANY, 0},
    {"POST", "/api/v1/kv/range", h_range, JSON, ANY, 0},
    {"POST", "/api/v1/txn", h_txn, JSON, ANY, 0},
    {"POST", "/api/v1/watch", h_watch, JSON, ANY, 0},
    {"POST", "/api/v1/compaction", h_compact, JSON, SYS, 0},
    {"POST", "/api/v1/leases", h_lease_grant, JSON, ANY, 0},
    {"GET", "/api/v1/leases/{id}", h_lease_get, 0, ANY, 0},
    {"POST", "/api/v1/leases/{id}/keepalive", h_lease_keepalive, 0, ANY, 0},
    {"DELETE", "/api/v1/leases/{id}", h_lease_revoke, 0, ANY, 0},
    {"GET", "/api/v1/cluster/status", h_status, 0, SYS, 0},
    {"GET", "/api/v1/cluster/members", h_members, 0, SYS, 0},
    {"POST", "/api/v1/cluster/members", h_member_add, JSON, SYS, 0},
    {"POST", "/api/v1/cluster/members/{id}/promote", h_member_promote, 0, SYS, 0},
    {"DELETE", "/api/v1/cluster/members/{id}", h_member_remove, 0, SYS, 0},
    {"POST", "/api/v1/cluster/leader", h_transfer, JSON, SYS, 0},
};

static int ready(void *ctx, char err[UC_ERR_LEN])
{
    struct chainfire_server *s = ctx;
    struct uc_repl_status st;
    uc_repl_status(s->repl, &st);
    if (st.role == UC_REPL_UNAVAILABLE)
        return uc_err_set(err, UC_EUNAVAIL, "the raft member is not running");
    return 0;
}

static void metrics(void *ctx, FILE *out)
{
    struct chainfire_server *s = ctx;
    struct uc_repl_status st;
    uc_repl_status(s->repl, &st);
    pthread_mutex_lock(&s->lock);
    long long rev = (long long)chainfire_kv_revision(s->kv);
    pthread_mutex_unlock(&s->lock);
    fprintf(out,
            "# HELP chainfire_is_leader 1 while this member leads\n"
            "# TYPE chainfire_is_leader gauge\nchainfire_is_leader %d\n",
            st.role == UC_REPL_LEADER);
    fprintf(out,
            "# HELP chainfire_revision The store's revision\n"
            "# TYPE chainfire_revision gauge\nchainfire_revision %lld\n",
            rev);
    fprintf(out,
            "# HELP chainfire_applied_index Last raft index applied\n"
            "# TYPE chainfire_applied_index gauge\nchainfire_applied_index %llu\n",
            (unsigned long long)st.applied_index);
    fprintf(out,
            "# HELP chainfire_leases_expired_total Leases this member revoked on expiry\n"
            "# TYPE chainfire_leases_expired_total counter\n"
            "chainfire_leases_expired_total %lu\n",
            atomic_load(&s->leases_expired));
}

void chainfire_api_opts(struct chainfire_server *s, struct uc_http_opts *opts)
{
    opts->routes = routes;
    opts->nroutes = sizeof(routes) / sizeof(routes[0]);
    opts->ctx = s;
    opts->ready = ready;
    opts->metrics = metrics;
}
