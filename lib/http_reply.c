/* http_reply.c - how a request gets its answer: replies built on any thread
 * and handed to the MHD thread under the request's mutex (suspend/resume
 * for ASYNC handlers), the error envelope, and streams that sleep between
 * polls instead of busy-waiting. */
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"
#include "uc/json.h"
#include "uc/alloc.h"
#include "uc/log.h"

#define STREAM_POLL_MS 20        /* a stream with nothing to send sleeps this long */
#define STREAM_BLOCK (16 * 1024) /* bytes asked of a stream's `next` at most */

/* A streaming reply; freed by MHD through stream_free. */
struct http_stream {
    struct uc_http_server *srv;
    struct http_conn *c;
    uc_http_stream_next next;
    void (*done)(void *);
    void *sctx;
    struct http_stream *link; /* on srv->sleeping */
};

static void unlink_parked(struct uc_http_server *s, struct http_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->parked = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->listed = false;
}

/* Give the request its response (NULL: close the connection instead) and
 * wake it when it is parked. Any thread. */
static int deliver(struct http_conn *c, struct MHD_Response *r, unsigned status, uint64_t bytes)
{
    pthread_mutex_lock(&c->lock);
    if (c->replied) {
        uc_log(UC_LOG_ERROR, c->req.request_id, "http: second reply to %s %s dropped",
               c->req.method ? c->req.method : "-", c->req.route ? c->req.route : "-");
        pthread_mutex_unlock(&c->lock);
        if (r)
            MHD_destroy_response(r);
        return UC_EINVAL;
    }
    c->replied = true;
    c->resp = r;
    c->status = r ? status : 500;
    c->bytes = bytes;
    /* A parked request that is no longer listed was taken by
     * uc_http_destroy, which resumes it itself. */
    if (c->phase == HTTP_PH_PARKED && c->listed) {
        pthread_mutex_lock(&c->srv->lock);
        unlink_parked(c->srv, c);
        pthread_mutex_unlock(&c->srv->lock);
        c->phase = HTTP_PH_RESUMED;
        MHD_resume_connection(c->mhd);
    }
    pthread_mutex_unlock(&c->lock);
    return r ? 0 : UC_ENOMEM;
}

static bool add_headers(struct http_conn *c, struct MHD_Response *r, const char *ctype, bool extra)
{
    if (MHD_add_response_header(r, "X-Request-Id", c->req.request_id) != MHD_YES)
        return false;
    if (ctype && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES)
        return false;
    for (unsigned i = 0; extra && i < c->nhdr; i++)
        if (MHD_add_response_header(r, c->hdr[i][0], c->hdr[i][1]) != MHD_YES)
            return false;
    return true;
}

int http_send_response(struct http_conn *c, struct MHD_Response *r, int status, const char *ctype,
                       uint64_t bytes)
{
    if (r && !add_headers(c, r, ctype, true)) {
        MHD_destroy_response(r);
        r = NULL;
    }
    return deliver(c, r, status >= 100 && status <= 599 ? (unsigned)status : 500, bytes);
}

static void json_text_free(void *p)
{
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    f(p);
}

/* A response holding `body` as compact JSON; steals the reference. */
static struct MHD_Response *json_response(json_t *body, uint64_t *len)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return NULL;
    *len = strlen(text);
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(*len, text, json_text_free);
    if (!r)
        json_text_free(text);
    return r;
}

static struct MHD_Response *envelope_response(struct http_conn *c, int code, const char *msg,
                                              uint64_t *len)
{
    json_t *body = json_pack("{s:{s:s,s:o,s:s}}", "error", "code", uc_err_api_code(code), "message",
                             uc_json_message(msg[0] ? msg : uc_strerror(code)), "request_id",
                             c->req.request_id);
    return json_response(body, len);
}

int http_reply_envelope(struct http_conn *c, int code, const char *msg)
{
    if (code >= 0)
        code = UC_EINTERNAL;
    uint64_t len = 0;
    struct MHD_Response *r = envelope_response(c, code, msg, &len);
    return http_send_response(c, r, uc_err_http_status(code), HTTP_JSON_TYPE, len);
}

int uc_http_reply_json(struct uc_http_req *req, int status, json_t *body)
{
    struct http_conn *c = req->priv;
    uint64_t len = 0;
    if (!body) {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        return http_send_response(c, r, status, NULL, 0);
    }
    struct MHD_Response *r = json_response(body, &len);
    return http_send_response(c, r, status, HTTP_JSON_TYPE, len);
}

int uc_http_error(struct uc_http_req *req, int code, const char *fmt, ...)
{
    char msg[UC_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return http_reply_envelope(req->priv, code, msg);
}

int uc_http_reply_data(struct uc_http_req *req, int status, const char *content_type,
                       const void *data, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    return http_send_response(req->priv, r, status, content_type, len);
}

int uc_http_add_header(struct uc_http_req *req, const char *name, const char *value)
{
    struct http_conn *c = req->priv;
    if (!name || !name[0] || !value || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return UC_EINVAL;
    if (c->nhdr == UC_HTTP_MAX_HEADERS)
        return UC_E2BIG;
    char *n = uc_strdup(name), *v = uc_strdup(value);
    if (!n || !v) {
        uc_free(n);
        uc_free(v);
        return UC_ENOMEM;
    }
    c->hdr[c->nhdr][0] = n;
    c->hdr[c->nhdr++][1] = v;
    return 0;
}

enum MHD_Result http_queue_reply(struct http_conn *c)
{
    pthread_mutex_lock(&c->lock);
    struct MHD_Response *r = c->resp;
    unsigned status = c->status;
    c->resp = NULL;
    pthread_mutex_unlock(&c->lock);
    if (!r)
        return MHD_NO;
    enum MHD_Result ok = MHD_queue_response(c->mhd, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* The handler said ASYNC: suspend until the reply, unless it is there. */
enum MHD_Result http_park(struct http_conn *c)
{
    struct uc_http_server *s = c->srv;
    pthread_mutex_lock(&c->lock);
    if (c->replied) {
        pthread_mutex_unlock(&c->lock);
        return http_queue_reply(c);
    }
    pthread_mutex_lock(&s->lock);
    bool stopping = atomic_load(&s->stopping);
    if (!stopping) {
        c->next = s->parked;
        if (s->parked)
            s->parked->prev = c;
        s->parked = c;
        c->listed = true;
        c->phase = HTTP_PH_PARKED;
        MHD_suspend_connection(c->mhd);
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&c->lock);
    if (!stopping)
        return MHD_YES;
    (void)http_reply_envelope(c, UC_EUNAVAIL, "server is shutting down"); /* failure closes */
    return http_queue_reply(c);
}

/* Answer every parked request 503 and resume it (see deliver). */
void http_answer_parked(struct uc_http_server *s)
{
    for (;;) {
        pthread_mutex_lock(&s->lock);
        struct http_conn *c = s->parked;
        if (c)
            unlink_parked(s, c);
        pthread_mutex_unlock(&s->lock);
        if (!c)
            return;
        pthread_mutex_lock(&c->lock);
        if (!c->replied) {
            uint64_t len = 0;
            struct MHD_Response *r =
                envelope_response(c, UC_EUNAVAIL, "server is shutting down", &len);
            if (r && !add_headers(c, r, HTTP_JSON_TYPE, false)) {
                MHD_destroy_response(r);
                r = NULL;
            }
            c->replied = true;
            c->resp = r;
            c->status = 503;
            c->bytes = len;
        }
        c->phase = HTTP_PH_RESUMED;
        MHD_resume_connection(c->mhd);
        pthread_mutex_unlock(&c->lock);
    }
}

/* Resume every sleeping stream; their readers poll `next` again. Call with
 * s->lock held. */
static void wake_sleepers(struct uc_http_server *s)
{
    struct http_stream *st = s->sleeping;
    s->sleeping = NULL;
    while (st) {
        struct http_stream *following = st->link;
        MHD_resume_connection(st->c->mhd);
        st = following;
    }
}

/* Suspend the stream's connection until the next tick; false when the
 * server is stopping (the stream should end instead). */
static bool stream_sleep(struct http_stream *st)
{
    struct uc_http_server *s = st->srv;
    pthread_mutex_lock(&s->lock);
    bool ok = !atomic_load(&s->stopping);
    if (ok) {
        if (!s->sleeping)
            pthread_cond_signal(&s->tick);
        st->link = s->sleeping;
        s->sleeping = st;
        MHD_suspend_connection(st->c->mhd);
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* MHD's content reader: must not busy-wait, so "nothing now" suspends. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct http_stream *st = cls;
    (void)pos;
    if (atomic_load(&st->srv->draining) || atomic_load(&st->srv->stopping))
        return MHD_CONTENT_READER_END_OF_STREAM;
    long n = st->next(st->sctx, buf, max);
    if (n > 0) {
        size_t got = (size_t)n < max ? (size_t)n : max;
        st->c->bytes += got;
        return (ssize_t)got;
    }
    if (n < 0 || !stream_sleep(st))
        return MHD_CONTENT_READER_END_OF_STREAM;
    return 0;
}

static void stream_free(void *cls)
{
    struct http_stream *st = cls;
    if (st->done)
        st->done(st->sctx);
    uc_free(st);
}

int uc_http_reply_stream(struct uc_http_req *req, int status, const char *content_type,
                         uc_http_stream_next next, void (*done)(void *sctx), void *sctx)
{
    struct http_conn *c = req->priv;
    struct MHD_Response *r = NULL;
    struct http_stream *st = uc_calloc(1, sizeof(*st));
    if (st) {
        *st = (struct http_stream){.srv = c->srv, .c = c, .next = next, .done = done, .sctx = sctx};
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, st,
                                              stream_free);
        if (!r)
            uc_free(st);
    }
    if (!r && done)
        done(sctx);
    return http_send_response(c, r, status, content_type, 0);
}

static void *ticker_main(void *arg)
{
    struct uc_http_server *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!atomic_load(&s->stopping)) {
        if (!s->sleeping) {
            pthread_cond_wait(&s->tick, &s->lock);
            continue;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_nsec += STREAM_POLL_MS * 1000000L;
        if (t.tv_nsec >= 1000000000L) {
            t.tv_sec++;
            t.tv_nsec -= 1000000000L;
        }
        /* Timeout or stop: either way the sleepers are woken now. */
        (void)pthread_cond_timedwait(&s->tick, &s->lock, &t);
        wake_sleepers(s);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int http_streams_start(struct uc_http_server *s, char err[UC_ERR_LEN])
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return uc_err_set(err, UC_ENOMEM, "cannot create a condition variable");
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&s->tick, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return uc_err_set(err, UC_ENOMEM, "cannot create a condition variable");
    if (pthread_create(&s->ticker, NULL, ticker_main, s) != 0) {
        pthread_cond_destroy(&s->tick);
        return uc_err_set(err, UC_EIO, "cannot start the stream poller thread");
    }
    return 0;
}

void http_streams_stop(struct uc_http_server *s)
{
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stopping, true);
    pthread_cond_signal(&s->tick);
    wake_sleepers(s);
    pthread_mutex_unlock(&s->lock);
    int rc = pthread_join(s->ticker, NULL);
    if (rc != 0)
        uc_log(UC_LOG_ERROR, NULL, "http: joining the stream poller: %s", strerror(rc));
    pthread_cond_destroy(&s->tick);
}
