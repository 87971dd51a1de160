/* api.c - chainfire's route table and handlers: keys (base64url in the
 * path), ranges, transactions, leases and watches; the cluster routes come
 * from uc/replsvc.h. Writes go through uc_replsvc_propose and reply from the
 * commit callback (UC_HTTP_ASYNC); reads wait for a read barrier unless
 * ?serializable=true. A follower forwards both to the leader. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "uc/alloc.h"
#include "uc/clock.h"
#include "uc/crypto.h"
#include "uc/json.h"
#include "uc/log.h"

#define LEASE_ID_MASK ((INT64_C(1) << 53) - 1) /* ids stay exact in JSON doubles */
/* An idle watch stream gets an empty line this often: the server learns of
 * a client that went away only when a write to it fails, so without these
 * a dead idle watch would hold its slot (--max-watches) until the next
 * change it selects. */
#define WATCH_KEEPALIVE_MS 1000

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
        uc_replsvc_reply_error(p->s->rs, p->req, d);
    else
        reply_result(p->req, d->result, p->status);
    uc_free(p);
}

/* Check `cmd` (stolen) and propose it; the reply comes from committed(). */
static int propose(struct chainfire_server *s, struct uc_http_req *req, json_t *cmd, int status)
{
    if (uc_replsvc_forward(s->rs, req)) {
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
        uc_replsvc_reply_error(p->s->rs, p->req, d);
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
    if (local || uc_replsvc_forward(s->rs, req)) {
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
    int rc = uc_replsvc_read_barrier(s->rs, barrier_passed, p, req->err);
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
    bool ended;        /* an error line is queued: the stream ends after it */
    int64_t last_sent; /* uc_clock_mono_ms of the last bytes handed out */
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
    int64_t now = uc_clock_mono_ms(NULL);
    if (w->off == w->len) {
        if (w->ended)
            return -1;
        watch_fill(w);
        if (w->off == w->len && !w->ended && now - w->last_sent >= WATCH_KEEPALIVE_MS) {
            buf[0] = '\n'; /* max is never 0: MHD asks for a block */
            w->last_sent = now;
            return 1;
        }
        if (w->off == w->len)
            return w->ended ? -1 : 0;
    }
    size_t n = w->len - w->off < max ? w->len - w->off : max;
    memcpy(buf, w->out + w->off, n);
    w->off += n;
    w->last_sent = now;
    return (long)n;
}

static void watch_done(void *sctx)
{
    struct watch *w = sctx;
    atomic_fetch_sub(&w->s->watches, 1);
    json_decref(w->req);
    uc_free(w->out);
    uc_free(w);
}

/* Count a new watch in, unless max_watches are open already. */
static bool watch_slot(struct chainfire_server *s)
{
    unsigned n = atomic_load(&s->watches);
    do {
        if (n >= s->max_watches)
            return false;
    } while (!atomic_compare_exchange_weak(&s->watches, &n, n + 1));
    return true;
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
    if (!watch_slot(s))
        return uc_http_error(req, UC_ERATE,
                             "this member serves %u watches already (--max-watches); close one, "
                             "or watch through another member",
                             s->max_watches);
    struct watch *w = uc_calloc(1, sizeof(*w));
    if (!w) {
        atomic_fetch_sub(&s->watches, 1);
        return UC_ENOMEM;
    }
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

/* ---- cluster status and metrics ------------------------------------------ */

static int status_fields(void *ctx, json_t *out)
{
    struct chainfire_server *s = ctx;
    pthread_mutex_lock(&s->lock);
    int64_t rev = chainfire_kv_revision(s->kv), comp = chainfire_kv_compacted(s->kv);
    pthread_mutex_unlock(&s->lock);
    if (json_object_set_new(out, "revision", json_integer(rev)) < 0 ||
        json_object_set_new(out, "compact_revision", json_integer(comp)) < 0)
        return UC_ENOMEM;
    return 0;
}

static void metrics(void *ctx, FILE *out)
{
    struct chainfire_server *s = ctx;
    pthread_mutex_lock(&s->lock);
    long long rev = (long long)chainfire_kv_revision(s->kv);
    pthread_mutex_unlock(&s->lock);
    fprintf(out,
            "# HELP chainfire_revision The store's revision\n"
            "# TYPE chainfire_revision gauge\nchainfire_revision %lld\n",
            rev);
    fprintf(out,
            "# HELP chainfire_watches Watch streams open on this member\n"
            "# TYPE chainfire_watches gauge\nchainfire_watches %u\n",
            atomic_load(&s->watches));
    fprintf(out,
            "# HELP chainfire_leases_expired_total Leases this member revoked on expiry\n"
            "# TYPE chainfire_leases_expired_total counter\n"
            "chainfire_leases_expired_total %lu\n",
            atomic_load(&s->leases_expired));
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
    UC_REPLSVC_ROUTES,
};

/* Query parameters the forwarded routes read. */
static const char *const forward_query[] = {"revision", "prefix", NULL};

void chainfire_api_hooks(struct uc_replsvc_config *cfg)
{
    cfg->forward_query = forward_query;
    cfg->status = status_fields;
    cfg->metrics = metrics;
}

void chainfire_api_opts(struct chainfire_server *s, struct uc_http_opts *opts)
{
    opts->routes = routes;
    opts->nroutes = sizeof(routes) / sizeof(routes[0]);
    opts->ctx = s;
}
