/* http_request.c - the life of one request on an MHD worker: the raw path
 * at the request line, then route, request id, token and role, body limit
 * and JSON, the handler, and at the end metrics and the access log. */
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"
#include "uc/alloc.h"
#include "uc/log.h"

#define DISCARD_MAX (1024 * 1024) /* body bytes dropped after a 413 before we hang up */

static bool valid_rid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        if (!ok || n == UC_HTTP_RID_LEN - 1)
            return false;
    }
    return n > 0;
}

static void set_request_id(struct http_conn *c)
{
    static const char hex[] = "0123456789abcdef";
    char *rid = c->req.request_id;
    const char *h = MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, "X-Request-Id");
    if (h && valid_rid(h)) {
        strcpy(rid, h); /* valid_rid bounds the length */
        return;
    }
    uint64_t n = atomic_fetch_add_explicit(&c->srv->rid_next, 1, memory_order_relaxed);
    size_t p = strlen(c->srv->rid_prefix), k = 0;
    char digits[16];
    memcpy(rid, c->srv->rid_prefix, p);
    do {
        digits[k++] = hex[n & 15];
        n >>= 4;
    } while (n);
    while (k)
        rid[p++] = digits[--k];
    rid[p] = '\0';
}

UC_PRINTF(5, 6)
static int fail(struct http_conn *c, int code, const char *hname, const char *hval, const char *fmt,
                ...)
{
    char msg[UC_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Without the extra header the envelope is still worth sending, and a
     * failed reply closes the connection: nothing more to do either way. */
    if (hname)
        (void)uc_http_add_header(&c->req, hname, hval);
    (void)http_reply_envelope(c, code, msg);
    return code;
}

static int route_request(struct http_conn *c, const char *method)
{
    struct uc_http_server *s = c->srv;
    struct http_path p;
    c->series = http_metrics_unmatched(&s->metrics, method);
    int rc = http_router_split(c->path, c->pathlen, c->path + c->pathlen + 1, &p);
    const struct http_route *rt = rc == 0 ? http_router_match(&s->router, method, &p) : NULL;
    if (rt) {
        c->route = rt;
        c->series = (size_t)(rt - s->router.routes);
        c->req.route = rt->def.pattern;
        for (unsigned i = 0; i < rt->nparams; i++)
            c->params[i] = p.seg[rt->param_seg[i]];
        return 0;
    }
    char shown[160], meth[24], allow[128];
    uc_err_sanitize(shown, sizeof(shown), c->path, 128);
    uc_err_sanitize(meth, sizeof(meth), method, 16);
    if (rc == UC_EINVAL)
        return fail(c, UC_EINVAL, NULL, NULL,
                    "invalid request path '%s': it must start with '/' and have no '..' "
                    "segment, %%00 or malformed %%-escape",
                    shown);
    if (rc == 0 && http_router_allow(&s->router, &p, allow, sizeof(allow)))
        return fail(c, UC_EMETHOD, MHD_HTTP_HEADER_ALLOW, allow,
                    "method %s is not allowed on %s (allowed: %s)", meth, shown, allow);
    return fail(c, UC_ENOENT, NULL, NULL, "no route for %s %s", meth, shown);
}

/* The token of a "Bearer <token>" header, or NULL. */
static const char *bearer_token(const char *h)
{
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7 + strspn(h + 7, " ");
    return h[0] ? h : NULL;
}

/* Check the bearer token (if any) and the route's role. */
static int authenticate(struct http_conn *c)
{
    struct uc_http_server *s = c->srv;
    const struct uc_http_route *def = &c->route->def;
    bool pub = def->flags & UC_HTTP_PUBLIC;
    if (def->flags & HTTP_ROUTE_BUILTIN)
        return 0;
    const char *h =
        MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *token = h ? bearer_token(h) : NULL;
    if (!h && pub)
        return 0;
    if (!token)
        return fail(c, UC_EUNAUTH, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer",
                    h ? "the Authorization header must be 'Bearer <token>'"
                      : "missing bearer token: send 'Authorization: Bearer <token>'");
    if (!s->opts.authn)
        return pub ? 0
                   : fail(c, UC_EUNAUTH, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer",
                          "this server cannot verify tokens (no authenticator configured)");
    char e[UC_ERR_LEN] = "";
    int rc = s->opts.authn(s->opts.authn_ctx, token, &c->req.auth, e);
    if (rc != 0) {
        memset(&c->req.auth, 0, sizeof(c->req.auth));
        rc = rc < 0 ? rc : UC_EUNAUTH;
        return fail(c, rc, rc == UC_EUNAUTH ? MHD_HTTP_HEADER_WWW_AUTHENTICATE : NULL,
                    "Bearer error=\"invalid_token\"", "%s", e[0] ? e : uc_strerror(rc));
    }
    c->req.authenticated = true;
    if (pub)
        return 0;
    rc = uc_auth_require(&c->req.auth, def->role, e);
    return rc == 0 ? 0 : fail(c, rc, NULL, NULL, "%s", e[0] ? e : uc_strerror(rc));
}

/* Whether a body follows the headers (a bad Content-Length counts: it
 * gets its 400 from start_body). */
static bool body_follows(struct http_conn *c)
{
    const char *cl =
        MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (cl)
        return strcmp(cl, "0") != 0;
    return te && strcasestr(te, "chunked");
}

/* Check the announced size and get a buffer; < 0 after an error reply. */
static int start_body(struct http_conn *c)
{
    size_t limit = c->route->def.body_limit, cap = limit < 4096 ? limit + 1 : 4096;
    const char *cl =
        MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (cl[0] < '0' || cl[0] > '9' || *end)
            return fail(c, UC_EINVAL, NULL, NULL, "invalid Content-Length");
        if (n > limit + DISCARD_MAX)
            return fail(c, UC_E2BIG, NULL, NULL,
                        "request body of %llu bytes is over the limit of %zu bytes", n, limit);
        if (n > limit) {
            /* Read and drop it, then answer: a reply sent while the client
             * still sends, followed by a close, can reach it as a reset
             * instead of the 413. Past DISCARD_MAX we answer at once. */
            c->too_big = true;
            c->announced = n;
            return 0;
        }
        cap = (size_t)n + 1;
    }
    c->body = uc_malloc(cap);
    if (!c->body)
        return fail(c, UC_ENOMEM, NULL, NULL, "out of memory for the request body");
    c->body_cap = cap;
    return 0;
}

static enum MHD_Result take_body(struct http_conn *c, const char *data, size_t n)
{
    size_t len = c->req.raw_len, limit = c->route->def.body_limit;
    if (c->too_big || c->body_oom) {
        c->discarded += n;
        /* An announced body is at most limit + DISCARD_MAX (start_body). */
        size_t allow = c->announced ? (size_t)c->announced : DISCARD_MAX;
        return c->discarded <= allow ? MHD_YES : MHD_NO;
    }
    if (n > limit - len) {
        c->too_big = true; /* answered 413 once the client is done sending */
        c->discarded = n;
        return MHD_YES;
    }
    if (len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap * 2 > len + n + 1 ? c->body_cap * 2 : len + n + 1;
        cap = cap < limit + 1 ? cap : limit + 1;
        char *b = uc_realloc(c->body, cap);
        if (!b) {
            c->body_oom = true;
            return MHD_YES;
        }
        c->body = b;
        c->body_cap = cap;
    }
    memcpy(c->body + len, data, n);
    c->req.raw_len = len + n;
    return MHD_YES;
}

/* The raw body as a JSON object into req->body, or UC_EINVAL with `msg`. */
static int body_json(struct uc_http_req *req, char *msg)
{
    if (req->raw_len == 0)
        return uc_err_set(msg, UC_EINVAL, "request body is empty; expected a JSON object");
    json_error_t je;
    json_t *j = json_loadb(req->raw_body, req->raw_len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        char text[160];
        uc_err_sanitize(text, sizeof(text), je.text, 120);
        return uc_err_set(msg, UC_EINVAL, "request body is not valid JSON: %s (line %d, column %d)",
                          text, je.line, je.column);
    }
    if (!json_is_object(j)) {
        json_decref(j);
        return uc_err_set(msg, UC_EINVAL, "request body must be a JSON object");
    }
    req->body = j;
    return 0;
}

static int parse_json(struct http_conn *c)
{
    char msg[UC_ERR_LEN];
    int rc = body_json(&c->req, msg);
    return rc < 0 ? fail(c, rc, NULL, NULL, "%s", msg) : 0;
}

int uc_http_json_body(struct uc_http_req *req) { return req->body ? 0 : body_json(req, req->err); }

static enum MHD_Result dispatch(struct http_conn *c)
{
    c->phase = HTTP_PH_HANDLER;
    if ((c->route->def.flags & UC_HTTP_JSON) && parse_json(c) != 0)
        return http_queue_reply(c);
    int rc = c->route->def.handler(&c->req, c->srv->opts.ctx);
    if (rc == UC_HTTP_ASYNC)
        return http_park(c);
    pthread_mutex_lock(&c->lock);
    bool replied = c->replied;
    pthread_mutex_unlock(&c->lock);
    if (!replied && rc < 0) {
        (void)http_reply_envelope(c, rc, c->req.err); /* failure closes */
    } else if (!replied) {
        uc_log(UC_LOG_ERROR, c->req.request_id, "http: handler of %s %s returned without a reply",
               c->route->def.method, c->route->def.pattern);
        /* As above, a failed reply closes the connection. */
        (void)http_reply_envelope(c, UC_EINTERNAL, "the handler did not reply");
    } else if (rc < 0) {
        uc_log(UC_LOG_WARN, c->req.request_id, "http: handler of %s %s replied, then returned %d",
               c->route->def.method, c->route->def.pattern, rc);
    }
    return http_queue_reply(c);
}

/* Headers are in: route, authenticate and check the announced size. An
 * error on a request with a body is sent at once (MHD then skips the body
 * and closes the connection); otherwise the reply waits for the call that
 * ends the request, which keeps the connection alive. */
static enum MHD_Result first_call(struct http_conn *c, const char *method)
{
    c->req.method = method;
    set_request_id(c);
    bool body = body_follows(c);
    int rc = route_request(c, method);
    if (rc == 0)
        rc = authenticate(c);
    if (rc == 0 && body)
        rc = start_body(c);
    if (rc < 0 && body)
        return http_queue_reply(c);
    c->phase = rc < 0 ? HTTP_PH_ANSWERED : body ? HTTP_PH_BODY : HTTP_PH_READY;
    return MHD_YES;
}

static enum MHD_Result finish_body(struct http_conn *c)
{
    if (c->too_big || c->body_oom) {
        if (c->too_big && c->announced)
            fail(c, UC_E2BIG, NULL, NULL,
                 "request body of %llu bytes is over the limit of %zu bytes", c->announced,
                 c->route->def.body_limit);
        else if (c->too_big)
            fail(c, UC_E2BIG, NULL, NULL, "request body is over the limit of %zu bytes",
                 c->route->def.body_limit);
        else
            fail(c, UC_ENOMEM, NULL, NULL, "out of memory for the request body");
        return http_queue_reply(c);
    }
    c->body[c->req.raw_len] = '\0';
    c->req.raw_body = c->body;
    return dispatch(c);
}

enum MHD_Result http_on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls)
{
    struct http_conn *c = *con_cls;
    (void)cls, (void)mc, (void)url, (void)version;
    if (!c)
        return MHD_NO; /* http_on_uri ran out of memory */
    switch (c->phase) {
    case HTTP_PH_HEADERS:
        return first_call(c, method);
    case HTTP_PH_BODY:
        if (*upload_size > 0) {
            size_t n = *upload_size;
            *upload_size = 0;
            return take_body(c, upload, n);
        }
        return finish_body(c);
    case HTTP_PH_READY:
        return dispatch(c);
    case HTTP_PH_ANSWERED:
    case HTTP_PH_RESUMED:
        return http_queue_reply(c);
    default:
        return MHD_NO;
    }
}

/* MHD's request-line hook: the raw path, before MHD decodes it in place. */
void *http_on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    struct uc_http_server *s = cls;
    size_t len = strcspn(uri, "?#");
    struct http_conn *c = uc_malloc(sizeof(*c) + 2 * len + 2);
    if (!c)
        return NULL;
    memset(c, 0, sizeof(*c));
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        uc_free(c);
        return NULL;
    }
    c->srv = s;
    c->mhd = mc;
    c->start_ns = http_now_ns();
    c->series = http_metrics_unmatched(&s->metrics, NULL);
    c->req.priv = c;
    c->req.raw_body = "";
    c->req.path = c->path;
    c->pathlen = len;
    memcpy(c->path, uri, len);
    c->path[len] = '\0';
    atomic_fetch_add(&s->metrics.in_flight, 1);
    return c;
}

static void access_log(const struct http_conn *c, unsigned status, uint64_t dur_ns, bool failed)
{
    char path[160], method[24], sub[UC_AUTH_ID_LEN + 8] = "";
    uc_err_sanitize(path, sizeof(path), c->path, 128);
    uc_err_sanitize(method, sizeof(method), c->req.method ? c->req.method : "-", 16);
    if (c->req.authenticated) {
        memcpy(sub, " sub=", 5);
        uc_err_sanitize(sub + 5, sizeof(sub) - 5, c->req.auth.sub, UC_AUTH_ID_LEN);
    }
    uc_log(UC_LOG_INFO, c->req.request_id[0] ? c->req.request_id : NULL,
           "http: %s %s status=%u bytes=%llu ms=%.3f%s%s", method, path, status,
           (unsigned long long)c->bytes, (double)dur_ns / 1e6, sub, failed ? " aborted" : "");
}

static void conn_free(struct http_conn *c)
{
    if (c->resp)
        MHD_destroy_response(c->resp);
    json_decref(c->req.body);
    uc_free(c->body);
    for (unsigned i = 0; i < c->nhdr; i++) {
        uc_free(c->hdr[i][0]);
        uc_free(c->hdr[i][1]);
    }
    pthread_mutex_destroy(&c->lock);
    uc_free(c);
}

void http_on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                       enum MHD_RequestTerminationCode toe)
{
    struct uc_http_server *s = cls;
    struct http_conn *c = *con_cls;
    (void)mc;
    if (!c)
        return;
    *con_cls = NULL;
    uint64_t dur = http_now_ns() - c->start_ns;
    bool failed = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK;
    pthread_mutex_lock(&c->lock);
    unsigned status = c->replied ? c->status : 0;
    pthread_mutex_unlock(&c->lock);
    http_metrics_record(&s->metrics, c->series, status, dur, failed);
    if (s->opts.access_log)
        access_log(c, status, dur, failed);
    atomic_fetch_sub(&s->metrics.in_flight, 1);
    conn_free(c);
}
