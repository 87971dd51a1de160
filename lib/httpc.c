/* httpc.c - the HTTP client daemons use to call each other, on libcurl easy
 * handles (one per call): JSON bodies, bearer tokens, one deadline covering
 * every attempt, and backed-off retries for idempotent methods only. */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "uc/alloc.h"
#include "uc/clock.h"
#include "uc/httpc.h"
#include "uc/json.h"

#define RESP_MAX ((size_t)64 * 1024 * 1024)
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_BACKOFF_MS 100
#define MIN_CONNECT_MS 1000 /* a connect attempt gets at least this (or what is left) */

struct call {
    const char *method, *url;
    const void *body;
    size_t len;
    bool has_body;
    const char *content_type;
    bool want_json;
    const struct uc_httpc_opts *opts;
};

struct rbuf {
    struct uc_buf b; /* b.failed: out of memory */
    bool too_big;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct rbuf *b = ud;
    size_t add = size * n;
    if (add > RESP_MAX - b->b.len) {
        b->too_big = true;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return uc_buf_append(&b->b, p, add) < 0 ? 0 : add;
}

static bool is_idempotent(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "PUT") == 0 ||
           strcmp(m, "DELETE") == 0;
}

/* POST, PUT and PATCH always carry a body, if only an empty one
 * (Content-Length: 0); other methods only when given one. */
static bool sends_body(const char *m, bool given)
{
    return given || !m || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
           strcmp(m, "PATCH") == 0;
}

static bool valid_method(const char *m)
{
    if (!m || !m[0] || strlen(m) > 16)
        return false;
    for (const char *p = m; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return false;
    return true;
}

static int add_header(struct curl_slist **h, const char *line)
{
    struct curl_slist *n = curl_slist_append(*h, line);
    if (!n)
        return UC_ENOMEM;
    *h = n;
    return 0;
}

/* The request id rule of docs/api/conventions.md, which the server side
 * (http_request.c) applies to the X-Request-Id it receives. */
static bool valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.';
        if (!ok || n == UC_HTTPC_RID_MAX)
            return false;
    }
    return n > 0;
}

static int build_headers(const struct call *c, struct curl_slist **h, char *err)
{
    char line[128];
    int rc = add_header(h, "Expect:"); /* no 100-continue round trip */
    if (rc == 0 && c->want_json)
        rc = add_header(h, "Accept: application/json");
    if (rc == 0 && c->has_body) {
        /* An empty body gets no Content-Type (curl would claim a form). */
        const char *ct = c->content_type ? c->content_type
                         : c->len        ? "application/octet-stream"
                                         : "";
        if (strlen(ct) > 80 || strpbrk(ct, "\r\n"))
            return uc_err_set(err, UC_EINVAL, "bad content type");
        snprintf(line, sizeof(line), "Content-Type:%s%s", ct[0] ? " " : "", ct);
        rc = add_header(h, line);
    }
    if (rc == 0 && c->opts && c->opts->request_id) {
        if (!valid_request_id(c->opts->request_id))
            return uc_err_set(err, UC_EINVAL,
                              "request id must be 1-%d characters of [A-Za-z0-9-_.]",
                              UC_HTTPC_RID_MAX);
        snprintf(line, sizeof(line), "X-Request-Id: %s", c->opts->request_id);
        rc = add_header(h, line);
    }
    if (rc == 0 && c->opts && c->opts->bearer) {
        if (strpbrk(c->opts->bearer, "\r\n"))
            return uc_err_set(err, UC_EINVAL, "bearer token contains a line break");
        char *auth = uc_asprintf("Authorization: Bearer %s", c->opts->bearer);
        if (!auth)
            return uc_err_set(err, UC_ENOMEM, "out of memory");
        rc = add_header(h, auth);
        uc_free(auth);
    }
    return rc == 0 ? 0 : uc_err_set(err, rc, "out of memory");
}

/* Options that stay the same for every attempt. */
static CURLcode setup_handle(CURL *h, const struct call *c, struct curl_slist *hdrs,
                             struct rbuf *rb, char *curl_err)
{
    CURLcode cc = curl_easy_setopt(h, CURLOPT_URL, c->url);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_WRITEDATA, rb);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)RESP_MAX);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_err);
    if (cc != CURLE_OK)
        return cc;
    if (strcmp(c->method, "GET") == 0 && !c->has_body)
        return curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    if (strcmp(c->method, "HEAD") == 0)
        return curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    cc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    if (cc == CURLE_OK && c->has_body)
        cc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->len);
    if (cc == CURLE_OK && c->has_body)
        cc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->len ? (const char *)c->body : "");
    return cc;
}

/* What one attempt came to: a code, and whether another attempt may help. */
struct outcome {
    int rc;
    bool retry;
    long status;
};

static struct outcome classify(const struct call *c, CURL *h, CURLcode cc, const struct rbuf *rb,
                               int64_t deadline, const char *curl_err, char *err)
{
    struct outcome o = {0, false, 0};
    const char *why = curl_err[0] ? curl_err : curl_easy_strerror(cc);
    curl_off_t connect_us = 0;
    if (cc == CURLE_OK) {
        if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &o.status) != CURLE_OK)
            o.rc = uc_err_set(err, UC_EIO, "%s %s: no status", c->method, c->url);
        o.retry = o.status == 502 || o.status == 503 || o.status == 504;
    } else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
        o.rc =
            uc_err_set(err, UC_EUNAVAIL, "%s %s: could not connect (%s)", c->method, c->url, why);
        o.retry = true;
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        bool connected = curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us) == CURLE_OK &&
                         connect_us > 0;
        o.retry = !connected && uc_clock_mono_ms(NULL) < deadline;
        o.rc = o.retry ? uc_err_set(err, UC_EUNAVAIL, "%s %s: connect timed out", c->method, c->url)
                       : uc_err_set(err, UC_ETIMEDOUT, "%s %s: deadline passed", c->method, c->url);
    } else if (rb->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        o.rc = uc_err_set(err, UC_E2BIG, "%s %s: answer larger than 64 MiB", c->method, c->url);
    } else if (rb->b.failed || cc == CURLE_OUT_OF_MEMORY) {
        o.rc = uc_err_set(err, UC_ENOMEM, "%s %s: out of memory", c->method, c->url);
    } else if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL) {
        o.rc = uc_err_set(err, UC_EINVAL, "%s %s: bad url (%s)", c->method, c->url, why);
    } else {
        o.rc = uc_err_set(err, UC_EIO, "%s %s: %s", c->method, c->url, why);
    }
    return o;
}

static bool is_json_type(const char *ct)
{
    return ct && (strncasecmp(ct, "application/json", 16) == 0 || strstr(ct, "+json") != NULL);
}

/* Move the answer into out; parse it when it is (or looks like) JSON. */
static int finish(CURL *h, struct rbuf *rb, long status, struct uc_httpc_resp *out, char *err)
{
    char *ct = NULL;
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK)
        ct = NULL;
    if (!rb->b.data) {
        rb->b.data = uc_strdup("");
        if (!rb->b.data)
            return uc_err_set(err, UC_ENOMEM, "out of memory");
    }
    size_t skip = strspn(rb->b.data, " \t\r\n");
    bool looks = rb->b.data[skip] == '{' || rb->b.data[skip] == '[';
    json_t *j = NULL;
    if ((looks || is_json_type(ct)) && rb->b.len > 0 &&
        uc_json_parse(rb->b.data, rb->b.len, &j, NULL) != 0)
        j = NULL; /* not JSON after all: the raw body is still there */
    out->status = status;
    out->body = rb->b.data;
    out->len = rb->b.len;
    out->json = j;
    rb->b.data = NULL;
    return 0;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        continue;
}

/* Attempt until success, a final error, no attempts left, or no time left
 * for the next backoff; returns the last outcome. */
static struct outcome run_attempts(const struct call *c, CURL *h, struct rbuf *rb, char *curl_err,
                                   char *err)
{
    const struct uc_httpc_opts *op = c->opts;
    int timeout = op && op->timeout_ms > 0 ? op->timeout_ms : DEFAULT_TIMEOUT_MS;
    int64_t backoff = op && op->backoff_ms > 0 ? op->backoff_ms : DEFAULT_BACKOFF_MS;
    int attempts = 1 + (op && op->retries > 0 && is_idempotent(c->method) ? op->retries : 0);
    int64_t deadline = uc_clock_mono_ms(NULL) + timeout;
    struct outcome o = {UC_ETIMEDOUT, false, 0};
    for (int left = attempts; left > 0; left--) {
        int64_t remaining = deadline - uc_clock_mono_ms(NULL);
        if (remaining <= 0)
            return o; /* only after a backoff overslept: keep the last outcome */
        int64_t connect = left > 1 ? remaining / left : remaining;
        if (connect < MIN_CONNECT_MS)
            connect = remaining < MIN_CONNECT_MS ? remaining : MIN_CONNECT_MS;
        rb->b.len = 0; /* a retry keeps the buffer, not what the last attempt read */
        if (rb->b.data)
            rb->b.data[0] = '\0';
        rb->too_big = rb->b.failed = false;
        curl_err[0] = '\0';
        CURLcode cc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)remaining);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
        if (cc == CURLE_OK)
            cc = curl_easy_perform(h);
        o = classify(c, h, cc, rb, deadline, curl_err, err);
        if (!o.retry || left == 1 || deadline - uc_clock_mono_ms(NULL) <= backoff)
            return o;
        sleep_ms(backoff);
        backoff *= 2;
    }
    return o;
}

static int do_call(const struct call *c, struct uc_httpc_resp *out, char *err)
{
    memset(out, 0, sizeof(*out));
    if (!valid_method(c->method) || !c->url)
        return uc_err_set(err, UC_EINVAL, "bad method or url");
    struct curl_slist *hdrs = NULL;
    struct rbuf rb = {0};
    char curl_err[CURL_ERROR_SIZE];
    int rc = build_headers(c, &hdrs, err);
    if (rc < 0)
        goto out_headers;
    CURL *h = curl_easy_init();
    if (!h) {
        rc = uc_err_set(err, UC_ENOMEM, "cannot create a curl handle");
        goto out_headers;
    }
    curl_err[0] = '\0';
    CURLcode cc = setup_handle(h, c, hdrs, &rb, curl_err);
    if (cc != CURLE_OK) {
        rc = uc_err_set(err, cc == CURLE_OUT_OF_MEMORY ? UC_ENOMEM : UC_EINVAL, "%s %s: %s",
                        c->method, c->url, curl_easy_strerror(cc));
        goto out_handle;
    }
    struct outcome o = run_attempts(c, h, &rb, curl_err, err);
    rc = o.rc < 0 ? o.rc : finish(h, &rb, o.status, out, err);
out_handle:
    curl_easy_cleanup(h);
out_headers:
    curl_slist_free_all(hdrs);
    uc_free(rb.b.data);
    return rc;
}

int uc_httpc_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : UC_EIO;
}

void uc_httpc_global_cleanup(void) { curl_global_cleanup(); }

int uc_httpc_raw(const char *method, const char *url, const void *body, size_t len,
                 const struct uc_httpc_opts *opts, struct uc_httpc_resp *out, char err[UC_ERR_LEN])
{
    struct call c = {
        .method = method,
        .url = url,
        .body = body,
        .len = body ? len : 0,
        .has_body = sends_body(method, body != NULL),
        .content_type = opts && body ? opts->content_type : NULL,
        .opts = opts,
    };
    return do_call(&c, out, err);
}

int uc_httpc_json(const char *method, const char *url, const json_t *body,
                  const struct uc_httpc_opts *opts, struct uc_httpc_resp *out, char err[UC_ERR_LEN])
{
    char *text = NULL;
    if (body) {
        text = uc_json_dumps(body);
        if (!text) {
            memset(out, 0, sizeof(*out));
            return uc_err_set(err, UC_ENOMEM, "out of memory encoding the request body");
        }
    }
    struct call c = {
        .method = method,
        .url = url,
        .body = text,
        .len = text ? strlen(text) : 0,
        .has_body = sends_body(method, text != NULL),
        .content_type = text ? "application/json" : NULL,
        .want_json = true,
        .opts = opts,
    };
    int rc = do_call(&c, out, err);
    uc_free(text);
    return rc;
}

void uc_httpc_resp_clear(struct uc_httpc_resp *r)
{
    if (!r)
        return;
    uc_free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}
