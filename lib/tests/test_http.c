/* test_http.c - the uc_http server end to end: a real server on 127.0.0.1
 * port 0 and libcurl as the client, covering routing, auth, bodies, request
 * ids, the built-in routes, async replies, streams, drain and destroy. */
#include <check.h>

#include "uc_check.h"
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "uc/http.h"

/* --- the service under test ------------------------------------------------ */

static atomic_bool is_ready;
static struct uc_http_req *_Atomic parked;
static atomic_int stream_done, second_reply_rc;

static pthread_t workers[128];
static int nworkers;
static pthread_mutex_t workers_lock = PTHREAD_MUTEX_INITIALIZER;

static int fake_authn(void *ctx, const char *token, struct uc_auth_claims *out,
                      char err[UC_ERR_LEN])
{
    (void)ctx;
    memset(out, 0, sizeof(*out));
    if (strcmp(token, "good-token") == 0) {
        strcpy(out->sub, "user-1");
        strcpy(out->project, "proj-1");
        out->role = UC_ROLE_MEMBER;
        return 0;
    }
    if (strcmp(token, "admin-token") == 0) {
        strcpy(out->sub, "user-root");
        out->system_admin = true;
        return 0;
    }
    if (strcmp(token, "down-token") == 0)
        return uc_err_set(err, UC_EUNAVAIL, "key set unavailable");
    return uc_err_set(err, UC_EUNAUTH, "token signature is invalid");
}

static int ready_cb(void *ctx, char err[UC_ERR_LEN])
{
    (void)ctx;
    return atomic_load(&is_ready) ? 0 : uc_err_set(err, UC_EUNAVAIL, "store is not open");
}

static void metrics_cb(void *ctx, FILE *out)
{
    (void)ctx;
    fputs("test_widgets_total 7\n", out);
}

static int h_list(struct uc_http_req *req, void *ctx)
{
    int limit = 0;
    const char *tok = NULL;
    (void)ctx;
    int rc = uc_http_list_params(req, 20, 100, &limit, &tok);
    if (rc != 0)
        return rc;
    return uc_http_reply_json(
        req, 200, json_pack("{s:[],s:i,s:s?}", "items", "limit", limit, "page_token", tok));
}

static int h_get(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    return uc_http_reply_json(req, 200, json_pack("{s:s}", "id", uc_http_param(req, "id")));
}

static int h_special(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    return uc_http_reply_json(req, 200, json_pack("{s:b}", "special", 1));
}

static int h_create(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    return uc_http_reply_json(req, 201, json_pack("{s:O}", "got", req->body));
}

static int h_raw(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    return uc_http_reply_json(req, 200,
                              json_pack("{s:i,s:b}", "len", (int)req->raw_len, "nul",
                                        req->raw_body[req->raw_len] == '\0'));
}

static int h_delete(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    return uc_http_reply_json(req, 204, NULL);
}

static int h_whoami(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    return uc_http_reply_json(
        req, 200, json_pack("{s:s?}", "sub", req->authenticated ? req->auth.sub : NULL));
}

static int h_conflict(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    return uc_err_set(req->err, UC_ECONFLICT, "revision 3 is stale");
}

static int h_plain_error(struct uc_http_req *req, void *ctx)
{
    (void)req, (void)ctx;
    return UC_ENOENT;
}

static int h_no_reply(struct uc_http_req *req, void *ctx)
{
    (void)req, (void)ctx;
    return 0;
}

static int h_query(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    return uc_http_reply_json(req, 200,
                              json_pack("{s:s?,s:s?}", "q", uc_http_query(req, "q"), "thing",
                                        uc_http_header(req, "x-thing")));
}

static int h_headers(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    int bad = uc_http_add_header(req, "X-Bad", "a\r\nb");
    int n = 0;
    while (uc_http_add_header(req, "X-Custom", "yes") == 0)
        n++;
    int rc = uc_http_reply_data(req, 200, "text/plain", "hi", 2);
    atomic_store(&second_reply_rc, uc_http_reply_data(req, 500, NULL, "", 0));
    return rc == 0 && bad == UC_EINVAL && n == UC_HTTP_MAX_HEADERS ? 0 : UC_EINTERNAL;
}

struct later {
    struct uc_http_req *req;
    int delay_us;
};

static void *reply_later(void *arg)
{
    struct later *l = arg;
    if (l->delay_us > 0)
        usleep((useconds_t)l->delay_us);
    ck_assert_int_eq(uc_http_reply_json(l->req, 200, json_pack("{s:b}", "async", 1)), 0);
    free(l);
    return NULL;
}

static int h_async(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    struct later *l = malloc(sizeof(*l));
    ck_assert_ptr_nonnull(l);
    const char *d = uc_http_query(req, "delay_us");
    l->req = req;
    l->delay_us = d ? atoi(d) : 5000;
    pthread_mutex_lock(&workers_lock);
    ck_assert_int_lt(nworkers, 128);
    ck_assert_int_eq(pthread_create(&workers[nworkers++], NULL, reply_later, l), 0);
    pthread_mutex_unlock(&workers_lock);
    return UC_HTTP_ASYNC;
}

static int h_async_now(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    ck_assert_int_eq(uc_http_reply_json(req, 202, json_pack("{s:b}", "now", 1)), 0);
    return UC_HTTP_ASYNC;
}

static int h_park(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    atomic_store(&parked, req);
    return UC_HTTP_ASYNC;
}

struct lines {
    int calls, sent;
    bool endless;
};

static long next_line(void *sctx, char *buf, size_t max)
{
    struct lines *l = sctx;
    if (l->endless)
        return 0;
    if (l->sent == 3)
        return -1;
    if (l->calls++ % 2 == 1)
        return 0; /* nothing now: the server suspends and polls again */
    return snprintf(buf, max, "line %d\n", ++l->sent);
}

static void lines_done(void *sctx)
{
    free(sctx);
    atomic_fetch_add(&stream_done, 1);
}

static int h_stream(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    struct lines *l = calloc(1, sizeof(*l));
    ck_assert_ptr_nonnull(l);
    l->endless = uc_http_query(req, "endless") != NULL;
    if (l->endless)
        atomic_store(&parked, req);
    return uc_http_reply_stream(req, 200, "text/plain", next_line, lines_done, l);
}

static const struct uc_http_route routes[] = {
    {"GET", "/api/v1/items", h_list, 0, UC_ROLE_READER, 0},
    {"POST", "/api/v1/items", h_create, UC_HTTP_JSON, UC_ROLE_MEMBER, 64},
    {"GET", "/api/v1/items/{id}", h_get, 0, UC_ROLE_READER, 0},
    {"GET", "/api/v1/items/special", h_special, 0, UC_ROLE_READER, 0},
    {"DELETE", "/api/v1/items/{id}", h_delete, 0, UC_ROLE_ADMIN, 0},
    {"GET", "/api/v1/admin", h_special, 0, UC_ROLE_SYSTEM_ADMIN, 0},
    {"PUT", "/api/v1/raw", h_raw, UC_HTTP_PUBLIC, UC_ROLE_ANY, 64},
    {"PUT", "/api/v1/big", h_raw, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/whoami", h_whoami, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/conflict", h_conflict, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/plain-error", h_plain_error, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/no-reply", h_no_reply, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/query", h_query, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/headers", h_headers, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/async", h_async, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/async-now", h_async_now, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/park", h_park, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/stream", h_stream, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
};

static struct uc_http_opts opts_for(const char *addr)
{
    return (struct uc_http_opts){
        .service = "test",
        .bind_addr = addr,
        .threads = 2,
        .conn_timeout_s = 5,
        .routes = routes,
        .nroutes = sizeof(routes) / sizeof(routes[0]),
        .authn = fake_authn,
        .ready = ready_cb,
        .metrics = metrics_cb,
    };
}

/* --- the client ----------------------------------------------------------- */

static struct uc_http_server *srv;
static char base[64];
static CURL *shared;

struct reply {
    CURLcode rc;
    long status;
    long connects;
    char body[16384];
    size_t len;
    char head[4096];
    size_t hlen;
};

struct call {
    const char *method; /* default GET */
    const char *path;
    const char *token;
    const char *header; /* one extra request header line */
    const char *body;   /* sent with Content-Length */
    size_t body_len;    /* 0: strlen(body) */
    bool chunked;       /* send body chunked instead */
    const char *url;    /* instead of base + path */
    CURL *curl;         /* default: the shared keep-alive handle */
};

struct upload {
    const char *data;
    size_t len, off;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t take = size * n;
    if (take > sizeof(r->body) - 1 - r->len)
        take = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return size * n;
}

static size_t on_head(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t take = size * n;
    if (strncmp(p, "HTTP/", 5) == 0)
        r->hlen = 0; /* a 100 Continue came first */
    if (take > sizeof(r->head) - 1 - r->hlen)
        take = sizeof(r->head) - 1 - r->hlen;
    memcpy(r->head + r->hlen, p, take);
    r->hlen += take;
    r->head[r->hlen] = '\0';
    return size * n;
}

static size_t on_upload(char *buf, size_t size, size_t n, void *ud)
{
    struct upload *u = ud;
    size_t take = size * n < 100 ? size * n : 100; /* several chunks */
    if (take > u->len - u->off)
        take = u->len - u->off;
    memcpy(buf, u->data + u->off, take);
    u->off += take;
    return take;
}

static void do_call(const struct call *c, struct reply *r)
{
    CURL *h = c->curl ? c->curl : shared;
    char url[512], auth[128];
    struct curl_slist *hdrs = NULL;
    struct upload up = {c->body, c->body ? (c->body_len ? c->body_len : strlen(c->body)) : 0, 0};
    memset(r, 0, sizeof(*r));
    curl_easy_reset(h);
    snprintf(url, sizeof(url), "%s%s", c->url ? c->url : base, c->path ? c->path : "");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method ? c->method : "GET");
    if (c->method && strcmp(c->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_head);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (c->token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (c->header)
        hdrs = curl_slist_append(hdrs, c->header);
    if (c->body && c->chunked) {
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(h, CURLOPT_READDATA, &up);
    } else if (c->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)up.len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    r->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_slist_free_all(hdrs);
}

static struct reply *get(const char *path)
{
    static struct reply r;
    do_call(&(struct call){.path = path}, &r);
    return &r;
}

/* The value of response header `name`, or NULL; in a static buffer. */
static const char *header_of(const struct reply *r, const char *name)
{
    static char val[512];
    size_t n = strlen(name);
    for (const char *line = r->head; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncasecmp(line, name, n) != 0 || line[n] != ':')
            continue;
        const char *v = line + n + 1;
        v += strspn(v, " ");
        size_t len = strcspn(v, "\r\n");
        snprintf(val, sizeof(val), "%.*s", (int)len, v);
        return val;
    }
    return NULL;
}

static json_t *body_json(const struct reply *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->len, 0, &e);
    ck_assert_msg(j != NULL, "body is not JSON (%s): %s", e.text, r->body);
    return j;
}

/* The reply is exactly {"error":{"code","message","request_id"}} with the
 * request id of the X-Request-Id header and a message containing `part`. */
static void check_envelope(const struct reply *r, long status, const char *code, const char *part)
{
    ck_assert_int_eq(r->rc, CURLE_OK);
    ck_assert_msg(r->status == status, "status %ld, want %ld: %s", r->status, status, r->body);
    json_t *j = body_json(r);
    ck_assert_uint_eq(json_object_size(j), 1);
    json_t *e = json_object_get(j, "error");
    ck_assert_uint_eq(json_object_size(e), 3);
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
    const char *msg = json_string_value(json_object_get(e, "message"));
    ck_assert_msg(msg && strstr(msg, part), "message '%s' lacks '%s'", msg, part);
    const char *rid = header_of(r, "X-Request-Id");
    ck_assert_ptr_nonnull(rid);
    ck_assert_str_eq(json_string_value(json_object_get(e, "request_id")), rid);
    ck_assert_str_eq(header_of(r, "Content-Type"), "application/json");
    json_decref(j);
}

static const char *json_str(const struct reply *r, const char *key)
{
    static char val[512];
    json_t *j = body_json(r);
    const char *v = json_string_value(json_object_get(j, key));
    snprintf(val, sizeof(val), "%s", v ? v : "(null)");
    json_decref(j);
    return val;
}

static json_int_t json_num(const struct reply *r, const char *key)
{
    json_t *j = body_json(r);
    json_int_t v = json_integer_value(json_object_get(j, key));
    json_decref(j);
    return v;
}

/* --- fixture -------------------------------------------------------------- */

static void join_workers(void)
{
    pthread_mutex_lock(&workers_lock);
    for (int i = 0; i < nworkers; i++)
        ck_assert_int_eq(pthread_join(workers[i], NULL), 0);
    nworkers = 0;
    pthread_mutex_unlock(&workers_lock);
}

static void setup(void)
{
    struct uc_http_opts o = opts_for("127.0.0.1");
    char err[UC_ERR_LEN] = "";
    atomic_store(&is_ready, true);
    atomic_store(&parked, NULL);
    atomic_store(&stream_done, 0);
    ck_assert_msg(uc_http_start(&srv, &o, err) == 0, "%s", err);
    ck_assert_uint_ne(uc_http_port(srv), 0);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", (unsigned)uc_http_port(srv));
    shared = curl_easy_init();
    ck_assert_ptr_nonnull(shared);
}

static void teardown(void)
{
    join_workers();
    uc_http_destroy(srv);
    srv = NULL;
    curl_easy_cleanup(shared);
    shared = NULL;
}

/* Wait up to 2 s for *flag to become non-zero. */
static bool wait_for(atomic_int *flag)
{
    for (int i = 0; i < 2000 && !atomic_load(flag); i++)
        usleep(1000);
    return atomic_load(flag) != 0;
}

static bool wait_parked(void)
{
    for (int i = 0; i < 2000 && !atomic_load(&parked); i++)
        usleep(1000);
    return atomic_load(&parked) != NULL;
}

/* A GET on its own connection, in a thread. */
struct bg {
    pthread_t t;
    char path[128];
    struct reply r;
};

static void *bg_main(void *arg)
{
    struct bg *b = arg;
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    do_call(&(struct call){.path = b->path, .curl = h}, &b->r);
    curl_easy_cleanup(h);
    return NULL;
}

static void bg_start(struct bg *b, const char *path)
{
    memset(b, 0, sizeof(*b));
    snprintf(b->path, sizeof(b->path), "%s", path);
    ck_assert_int_eq(pthread_create(&b->t, NULL, bg_main, b), 0);
}

/* --- uc_http_start -------------------------------------------------------- */

START_TEST(start_rejects_bad_address_and_routes)
{
    struct uc_http_server *s = NULL;
    char err[UC_ERR_LEN] = "";
    struct uc_http_opts o = opts_for("localhost");
    ck_assert_int_eq(uc_http_start(&s, &o, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "numeric"));
    o = opts_for(NULL);
    ck_assert_int_eq(uc_http_start(&s, &o, err), UC_EINVAL);
    struct uc_http_route bad[] = {{"GET", "/a/{x", h_get, 0, UC_ROLE_ANY, 0}};
    o = opts_for("127.0.0.1");
    o.routes = bad;
    o.nroutes = 1;
    ck_assert_int_eq(uc_http_start(&s, &o, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "/a/{x"));
    struct uc_http_route clash[] = {{"GET", "/metrics", h_get, 0, UC_ROLE_ANY, 0}};
    o.routes = clash;
    ck_assert_int_eq(uc_http_start(&s, &o, err), UC_EINVAL);
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(start_reports_a_busy_port)
{
    struct uc_http_server *s = NULL;
    char err[UC_ERR_LEN] = "";
    struct uc_http_opts o = opts_for("127.0.0.1");
    o.port = uc_http_port(srv);
    ck_assert_int_eq(uc_http_start(&s, &o, err), UC_EIO);
    ck_assert_ptr_null(s);
    char want[32];
    snprintf(want, sizeof(want), "port %u", (unsigned)o.port);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);
}
END_TEST

START_TEST(start_serves_ipv6_and_keeps_connections_alive)
{
    struct uc_http_server *s = NULL;
    char err[UC_ERR_LEN] = "", url[64];
    struct uc_http_opts o = opts_for("::1");
    ck_assert_msg(uc_http_start(&s, &o, err) == 0, "%s", err);
    snprintf(url, sizeof(url), "http://[::1]:%u", (unsigned)uc_http_port(s));
    struct reply r;
    do_call(&(struct call){.url = url, .path = "/healthz"}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.connects, 1);
    do_call(&(struct call){.url = url, .path = "/healthz"}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.connects, 0); /* reused */
    uc_http_destroy(s);
    uc_http_destroy(NULL);
}
END_TEST

/* --- routing -------------------------------------------------------------- */

START_TEST(routes_match_params_and_prefer_exact_segments)
{
    struct reply r;
    do_call(&(struct call){.path = "/api/v1/items/it%20m-1", .token = "good-token"}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_str(&r, "id"), "it m-1");
    do_call(&(struct call){.path = "/api/v1/items/special", .token = "good-token"}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"special\":true}");
    do_call(&(struct call){.path = "/api/v1/items/a%2Fb", .token = "good-token"}, &r);
    ck_assert_str_eq(json_str(&r, "id"), "a/b");
}
END_TEST

START_TEST(unknown_path_is_404_with_envelope)
{
    struct reply *r = get("/api/v1/nothing-here");
    check_envelope(r, 404, "not_found", "no route for GET /api/v1/nothing-here");
    r = get("/api/v1/items/");
    check_envelope(r, 404, "not_found", "no route");
}
END_TEST

START_TEST(wrong_method_is_405_with_allow)
{
    struct reply r;
    do_call(&(struct call){.method = "PATCH", .path = "/api/v1/items"}, &r);
    check_envelope(&r, 405, "method_not_allowed", "PATCH");
    ck_assert_str_eq(header_of(&r, "Allow"), "GET, POST");
}
END_TEST

START_TEST(dotdot_and_nul_paths_are_400)
{
    check_envelope(get("/api/v1/../v1/items"), 400, "invalid_argument", "invalid request path");
    check_envelope(get("/api/v1/items/%2e%2e"), 400, "invalid_argument", "invalid request path");
    check_envelope(get("/api/v1/items/a%00b"), 400, "invalid_argument", "invalid request path");
}
END_TEST

START_TEST(head_is_served_by_get_without_body)
{
    struct reply r;
    do_call(&(struct call){.method = "HEAD", .path = "/healthz"}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.len, 0);
}
END_TEST

/* --- auth ----------------------------------------------------------------- */

START_TEST(missing_token_is_401_with_challenge)
{
    struct reply *r = get("/api/v1/items");
    check_envelope(r, 401, "unauthenticated", "missing bearer token");
    ck_assert_str_eq(header_of(r, "WWW-Authenticate"), "Bearer");
    struct reply r2;
    do_call(&(struct call){.path = "/api/v1/items", .header = "Authorization: Basic dXNlcg=="},
            &r2);
    check_envelope(&r2, 401, "unauthenticated", "Bearer <token>");
}
END_TEST

START_TEST(bad_token_is_401_and_authn_errors_keep_their_code)
{
    struct reply r;
    do_call(&(struct call){.path = "/api/v1/items", .token = "forged"}, &r);
    check_envelope(&r, 401, "unauthenticated", "token signature is invalid");
    ck_assert_ptr_nonnull(strstr(header_of(&r, "WWW-Authenticate"), "invalid_token"));
    do_call(&(struct call){.path = "/api/v1/items", .token = "down-token"}, &r);
    check_envelope(&r, 503, "unavailable", "key set unavailable");
}
END_TEST

START_TEST(low_role_is_403_and_enough_role_passes)
{
    struct reply r;
    do_call(&(struct call){.method = "DELETE", .path = "/api/v1/items/x", .token = "good-token"},
            &r);
    check_envelope(&r, 403, "permission_denied", "admin");
    do_call(&(struct call){.path = "/api/v1/admin", .token = "good-token"}, &r);
    check_envelope(&r, 403, "permission_denied", "system-admin");
    do_call(&(struct call){.method = "DELETE", .path = "/api/v1/items/x", .token = "admin-token"},
            &r);
    ck_assert_int_eq(r.status, 204);
    do_call(&(struct call){.path = "/api/v1/admin", .token = "admin-token"}, &r);
    ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(public_routes_check_a_token_only_when_sent)
{
    struct reply r;
    do_call(&(struct call){.path = "/api/v1/whoami"}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"sub\":null}");
    do_call(&(struct call){.path = "/api/v1/whoami", .token = "good-token"}, &r);
    ck_assert_str_eq(json_str(&r, "sub"), "user-1");
    do_call(&(struct call){.path = "/api/v1/whoami", .token = "forged"}, &r);
    check_envelope(&r, 401, "unauthenticated", "invalid");
    /* built-ins ignore tokens altogether */
    do_call(&(struct call){.path = "/healthz", .token = "forged"}, &r);
    ck_assert_int_eq(r.status, 200);
}
END_TEST

START_TEST(no_authenticator_means_401)
{
    struct uc_http_server *s = NULL;
    char err[UC_ERR_LEN] = "", url[64];
    struct uc_http_opts o = opts_for("127.0.0.1");
    o.authn = NULL;
    ck_assert_msg(uc_http_start(&s, &o, err) == 0, "%s", err);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)uc_http_port(s));
    struct reply r;
    do_call(&(struct call){.url = url, .path = "/api/v1/items", .token = "good-token"}, &r);
    check_envelope(&r, 401, "unauthenticated", "no authenticator");
    do_call(&(struct call){.url = url, .path = "/api/v1/whoami", .token = "good-token"}, &r);
    ck_assert_str_eq(r.body, "{\"sub\":null}");
    uc_http_destroy(s);
}
END_TEST

/* --- bodies --------------------------------------------------------------- */

START_TEST(json_body_reaches_the_handler)
{
    struct reply r;
    do_call(&(struct call){.method = "POST",
                           .path = "/api/v1/items",
                           .token = "good-token",
                           .body = "{\"name\":\"a\"}"},
            &r);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(r.body, "{\"got\":{\"name\":\"a\"}}");
    do_call(&(struct call){.method = "POST",
                           .path = "/api/v1/items",
                           .token = "good-token",
                           .body = "{\"name\":\"chunked\"}",
                           .chunked = true},
            &r);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(r.body, "{\"got\":{\"name\":\"chunked\"}}");
}
END_TEST

START_TEST(body_over_limit_is_413)
{
    static char big[100 * 1024];
    memset(big, 'x', sizeof(big) - 1);
    struct reply r;
    do_call(&(struct call){.method = "PUT", .path = "/api/v1/raw", .body = big}, &r);
    check_envelope(&r, 413, "too_large", "limit of 64 bytes");
    do_call(&(struct call){.method = "PUT", .path = "/api/v1/raw", .body = big, .body_len = 65},
            &r);
    check_envelope(&r, 413, "too_large", "65 bytes");
    do_call(
        &(struct call){
            .method = "PUT", .path = "/api/v1/raw", .body = big, .body_len = 300, .chunked = true},
        &r);
    check_envelope(&r, 413, "too_large", "limit of 64 bytes");
    do_call(
        &(struct call){
            .method = "PUT", .path = "/api/v1/raw", .body = big, .body_len = 64, .chunked = true},
        &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_num(&r, "len"), 64);
}
END_TEST

START_TEST(large_bodies_arrive_whole)
{
    static char big[300 * 1024];
    memset(big, 'y', sizeof(big) - 1);
    struct reply r;
    do_call(&(struct call){.method = "PUT", .path = "/api/v1/big", .body = big}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_num(&r, "len"), (json_int_t)sizeof(big) - 1);
    do_call(&(struct call){.method = "PUT", .path = "/api/v1/big", .body = big, .chunked = true},
            &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_num(&r, "len"), (json_int_t)sizeof(big) - 1);
}
END_TEST

START_TEST(raw_body_is_nul_terminated)
{
    struct reply r;
    do_call(&(struct call){.method = "PUT", .path = "/api/v1/raw", .body = "hello"}, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"len\":5,\"nul\":true}");
    do_call(&(struct call){.method = "PUT", .path = "/api/v1/raw"}, &r);
    ck_assert_str_eq(r.body, "{\"len\":0,\"nul\":true}");
}
END_TEST

START_TEST(bad_json_bodies_are_400)
{
    struct reply r;
    struct call c = {.method = "POST", .path = "/api/v1/items", .token = "good-token"};
    c.body = "{\"name\": ";
    do_call(&c, &r);
    check_envelope(&r, 400, "invalid_argument", "request body is not valid JSON: ");
    ck_assert_ptr_nonnull(strstr(r.body, "line 1, column"));
    c.body = "[1,2]";
    do_call(&c, &r);
    check_envelope(&r, 400, "invalid_argument", "request body must be a JSON object");
    c.body = "{\"a\":1,\"a\":2}";
    do_call(&c, &r);
    check_envelope(&r, 400, "invalid_argument", "duplicate");
    c.body = NULL;
    do_call(&c, &r);
    check_envelope(&r, 400, "invalid_argument", "empty");
}
END_TEST

/* --- request ids ---------------------------------------------------------- */

START_TEST(request_id_is_echoed_when_valid)
{
    struct reply r;
    do_call(&(struct call){.path = "/nope", .header = "X-Request-Id: abc-123_x.Y"}, &r);
    ck_assert_str_eq(header_of(&r, "X-Request-Id"), "abc-123_x.Y");
    check_envelope(&r, 404, "not_found", "no route");
    char long_id[80] = "X-Request-Id: ";
    memset(long_id + strlen(long_id), 'a', 64);
    do_call(&(struct call){.path = "/healthz", .header = long_id}, &r);
    ck_assert_str_eq(header_of(&r, "X-Request-Id"), long_id + 14);
}
END_TEST

START_TEST(request_id_is_generated_otherwise)
{
    struct reply r;
    char first[UC_HTTP_RID_LEN];
    do_call(&(struct call){.path = "/healthz", .header = "X-Request-Id: bad id!"}, &r);
    snprintf(first, sizeof(first), "%s", header_of(&r, "X-Request-Id"));
    ck_assert_uint_ge(strlen(first), 14);
    ck_assert_int_eq(first[12], '-');
    ck_assert_uint_eq(strspn(first, "0123456789abcdef-"), strlen(first));
    char too_long[90] = "X-Request-Id: ";
    memset(too_long + strlen(too_long), 'a', 65);
    do_call(&(struct call){.path = "/healthz", .header = too_long}, &r);
    const char *second = header_of(&r, "X-Request-Id");
    ck_assert_str_ne(second, first);
    ck_assert_int_eq(strncmp(second, first, 13), 0); /* same server prefix */
}
END_TEST

/* --- built-in routes ------------------------------------------------------ */

START_TEST(healthz_and_readyz_answer)
{
    struct reply *r = get("/healthz");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "{\"status\":\"ok\"}");
    ck_assert_str_eq(header_of(r, "Content-Type"), "application/json");
    r = get("/readyz");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "{\"status\":\"ready\"}");
    atomic_store(&is_ready, false);
    check_envelope(get("/readyz"), 503, "unavailable", "store is not open");
}
END_TEST

/* The value of the metric line starting with `series` (0 when absent). */
static long long metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return atoll(p + n + 1);
    return 0;
}

START_TEST(metrics_count_requests_by_route_and_status)
{
    const char *ok = "uc_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}";
    const char *miss = "uc_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}";
    const char *hist = "uc_http_request_duration_seconds_count{route=\"/healthz\",method=\"GET\"}";
    const char *inf =
        "uc_http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",le=\"+Inf\"}";
    get("/healthz");
    struct reply *r = get("/metrics");
    ck_assert_int_eq(r->status, 200);
    ck_assert_ptr_nonnull(strstr(header_of(r, "Content-Type"), "text/plain; version=0.0.4"));
    long long before = metric(r->body, ok), misses = metric(r->body, miss);
    ck_assert_int_eq(before, 1);
    ck_assert_int_eq(metric(r->body, hist), 1);
    get("/healthz");
    get("/healthz");
    get("/no/such/route");
    r = get("/metrics");
    ck_assert_int_eq(metric(r->body, ok), before + 2);
    ck_assert_int_eq(metric(r->body, miss), misses + 1);
    ck_assert_int_eq(metric(r->body, hist), 3);
    ck_assert_int_eq(metric(r->body, inf), 3);
    ck_assert_ptr_nonnull(strstr(r->body, "le=\"0.001\"}"));
    ck_assert_ptr_nonnull(strstr(r->body, "le=\"10\"}"));
    ck_assert_ptr_nonnull(
        strstr(r->body, "uc_http_request_duration_seconds_sum{route=\"/healthz\""));
    ck_assert_int_eq(
        metric(r->body, "uc_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"200\"}"),
        1);
    ck_assert_int_eq(metric(r->body, "uc_http_requests_in_flight"), 1); /* this one */
    ck_assert_int_gt(metric(r->body, "process_resident_memory_bytes"), 1000000);
    ck_assert_int_gt(metric(r->body, "process_start_time_seconds"), 1600000000);
    ck_assert_int_eq(metric(r->body, "test_widgets_total"), 7);
}
END_TEST

START_TEST(metrics_count_server_errors)
{
    const char *errs = "uc_http_request_errors_total{route=\"/api/v1/no-reply\",method=\"GET\"}";
    check_envelope(get("/api/v1/no-reply"), 500, "internal", "did not reply");
    struct reply *r = get("/metrics");
    ck_assert_int_eq(metric(r->body, errs), 1);
}
END_TEST

/* --- handlers and replies ------------------------------------------------- */

START_TEST(negative_handler_result_uses_its_message_or_the_default)
{
    check_envelope(get("/api/v1/conflict"), 409, "conflict", "revision 3 is stale");
    struct reply *r = get("/api/v1/plain-error");
    check_envelope(r, 404, "not_found", "not found");
}
END_TEST

START_TEST(extra_headers_are_sent_and_second_reply_is_refused)
{
    struct reply *r = get("/api/v1/headers");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "hi");
    ck_assert_str_eq(header_of(r, "X-Custom"), "yes");
    ck_assert_ptr_null(header_of(r, "X-Bad"));
    ck_assert_int_eq(atomic_load(&second_reply_rc), UC_EINVAL);
}
END_TEST

START_TEST(query_and_headers_are_readable)
{
    struct reply r;
    do_call(&(struct call){.path = "/api/v1/query?q=a%20b&x=1", .header = "X-Thing: yes"}, &r);
    ck_assert_str_eq(r.body, "{\"q\":\"a b\",\"thing\":\"yes\"}");
    do_call(&(struct call){.path = "/api/v1/query"}, &r);
    ck_assert_str_eq(r.body, "{\"q\":null,\"thing\":null}");
}
END_TEST

START_TEST(list_params_default_bound_and_pass_the_token)
{
    struct reply r;
    struct call c = {.token = "good-token", .path = "/api/v1/items"};
    do_call(&c, &r);
    ck_assert_str_eq(r.body, "{\"items\":[],\"limit\":20,\"page_token\":null}");
    c.path = "/api/v1/items?limit=100&page_token=abc";
    do_call(&c, &r);
    ck_assert_str_eq(r.body, "{\"items\":[],\"limit\":100,\"page_token\":\"abc\"}");
    const char *bad[] = {"0", "101", "abc", "5x", "-1", "99999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/api/v1/items?limit=%s", bad[i]);
        c.path = path;
        do_call(&c, &r);
        check_envelope(&r, 400, "invalid_argument", "limit must be an integer from 1 to 100");
    }
}
END_TEST

/* --- async ---------------------------------------------------------------- */

START_TEST(async_reply_from_another_thread)
{
    struct reply *r = get("/api/v1/async");
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "{\"async\":true}");
    ck_assert_ptr_nonnull(header_of(r, "X-Request-Id"));
}
END_TEST

START_TEST(async_reply_before_the_handler_returns)
{
    struct reply *r = get("/api/v1/async-now");
    ck_assert_int_eq(r->status, 202);
    ck_assert_str_eq(r->body, "{\"now\":true}");
}
END_TEST

START_TEST(async_replies_racing_the_suspend_all_arrive)
{
    for (int i = 0; i < 60; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/api/v1/async?delay_us=%d", i % 3 == 0 ? 0 : i * 20);
        struct reply *r = get(path);
        ck_assert_int_eq(r->status, 200);
        ck_assert_str_eq(r->body, "{\"async\":true}");
    }
    join_workers();
}
END_TEST

/* --- streams -------------------------------------------------------------- */

START_TEST(stream_sends_three_lines_then_ends)
{
    struct reply *r = get("/api/v1/stream");
    ck_assert_int_eq(r->rc, CURLE_OK);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, "line 1\nline 2\nline 3\n");
    ck_assert_str_eq(header_of(r, "Transfer-Encoding"), "chunked");
    ck_assert(wait_for(&stream_done));
    ck_assert_int_eq(atomic_load(&stream_done), 1);
    r = get("/healthz"); /* the connection is still usable */
    ck_assert_int_eq(r->status, 200);
    ck_assert_int_eq(r->connects, 0);
}
END_TEST

/* --- uc_http_drain -------------------------------------------------------- */

START_TEST(drain_waits_for_an_async_request)
{
    struct bg b;
    bg_start(&b, "/api/v1/park");
    ck_assert(wait_parked());
    ck_assert_int_eq(uc_http_drain(srv, 50), 1);
    struct reply *r = get("/healthz"); /* new connections are refused */
    ck_assert_int_eq(r->rc, CURLE_COULDNT_CONNECT);
    ck_assert_int_eq(uc_http_reply_json(atomic_load(&parked), 200, json_pack("{s:b}", "late", 1)),
                     0);
    ck_assert_int_eq(uc_http_drain(srv, 2000), 0);
    ck_assert_int_eq(pthread_join(b.t, NULL), 0);
    ck_assert_int_eq(b.r.status, 200);
    ck_assert_str_eq(b.r.body, "{\"late\":true}");
}
END_TEST

START_TEST(drain_ends_open_streams)
{
    struct bg b;
    bg_start(&b, "/api/v1/stream?endless=1");
    ck_assert(wait_parked());
    ck_assert_int_eq(uc_http_drain(srv, 2000), 0);
    ck_assert_int_eq(pthread_join(b.t, NULL), 0);
    ck_assert_int_eq(b.r.rc, CURLE_OK);
    ck_assert_int_eq(b.r.status, 200);
    ck_assert_uint_eq(b.r.len, 0);
    ck_assert(wait_for(&stream_done));
}
END_TEST

START_TEST(readyz_fails_while_draining)
{
    get("/healthz"); /* open the keep-alive connection first */
    ck_assert_int_eq(uc_http_drain(srv, 2000), 0);
    check_envelope(get("/readyz"), 503, "unavailable", "draining");
}
END_TEST

/* --- uc_http_destroy ------------------------------------------------------ */

START_TEST(destroy_answers_pending_requests_503)
{
    struct bg b;
    bg_start(&b, "/api/v1/park");
    ck_assert(wait_parked());
    uc_http_destroy(srv);
    srv = NULL;
    ck_assert_int_eq(pthread_join(b.t, NULL), 0);
    check_envelope(&b.r, 503, "unavailable", "shutting down");
}
END_TEST

START_TEST(destroy_ends_open_streams)
{
    struct bg b;
    bg_start(&b, "/api/v1/stream?endless=1");
    ck_assert(wait_parked());
    uc_http_destroy(srv);
    srv = NULL;
    ck_assert_int_eq(pthread_join(b.t, NULL), 0);
    ck_assert_int_eq(atomic_load(&stream_done), 1);
}
END_TEST

/* --- access log ----------------------------------------------------------- */

START_TEST(access_log_writes_one_line_per_request)
{
    struct uc_http_server *s = NULL;
    char err[UC_ERR_LEN] = "", url[64], path[] = "/tmp/test_http_log.XXXXXX";
    struct uc_http_opts o = opts_for("127.0.0.1");
    o.access_log = true;
    ck_assert_msg(uc_http_start(&s, &o, err) == 0, "%s", err);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)uc_http_port(s));
    int fd = mkstemp(path), saved = dup(2);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, 2), 2);
    struct reply r;
    do_call(&(struct call){.url = url,
                           .path = "/api/v1/whoami",
                           .token = "good-token",
                           .header = "X-Request-Id: log-test-1"},
            &r);
    do_call(&(struct call){.url = url, .path = "/x%01y"}, &r);
    uc_http_destroy(s);
    ck_assert_int_eq(dup2(saved, 2), 2);
    close(saved);
    char text[4096] = "";
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    close(fd);
    unlink(path);
    ck_assert_int_gt(n, 0);
    ck_assert_msg(strstr(text, "rid=log-test-1 http: GET /api/v1/whoami status=200 bytes=16 ms=") !=
                      NULL,
                  "%s", text);
    ck_assert_ptr_nonnull(strstr(text, " sub=user-1\n"));
    ck_assert_ptr_nonnull(strstr(text, "http: GET /x%01y status=404"));
}
END_TEST

static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("http");
    TCase *tc = tcase(s, "uc_http_start");
    tcase_add_test(tc, start_rejects_bad_address_and_routes);
    tcase_add_test(tc, start_reports_a_busy_port);
    tcase_add_test(tc, start_serves_ipv6_and_keeps_connections_alive);
    tc = tcase(s, "routing");
    tcase_add_test(tc, routes_match_params_and_prefer_exact_segments);
    tcase_add_test(tc, unknown_path_is_404_with_envelope);
    tcase_add_test(tc, wrong_method_is_405_with_allow);
    tcase_add_test(tc, dotdot_and_nul_paths_are_400);
    tcase_add_test(tc, head_is_served_by_get_without_body);
    tc = tcase(s, "auth");
    tcase_add_test(tc, missing_token_is_401_with_challenge);
    tcase_add_test(tc, bad_token_is_401_and_authn_errors_keep_their_code);
    tcase_add_test(tc, low_role_is_403_and_enough_role_passes);
    tcase_add_test(tc, public_routes_check_a_token_only_when_sent);
    tcase_add_test(tc, no_authenticator_means_401);
    tc = tcase(s, "bodies");
    tcase_add_test(tc, json_body_reaches_the_handler);
    tcase_add_test(tc, body_over_limit_is_413);
    tcase_add_test(tc, large_bodies_arrive_whole);
    tcase_add_test(tc, raw_body_is_nul_terminated);
    tcase_add_test(tc, bad_json_bodies_are_400);
    tc = tcase(s, "request_id");
    tcase_add_test(tc, request_id_is_echoed_when_valid);
    tcase_add_test(tc, request_id_is_generated_otherwise);
    tc = tcase(s, "builtin_routes");
    tcase_add_test(tc, healthz_and_readyz_answer);
    tcase_add_test(tc, metrics_count_requests_by_route_and_status);
    tcase_add_test(tc, metrics_count_server_errors);
    tc = tcase(s, "uc_http_error");
    tcase_add_test(tc, negative_handler_result_uses_its_message_or_the_default);
    tcase_add_test(tc, extra_headers_are_sent_and_second_reply_is_refused);
    tc = tcase(s, "uc_http_query");
    tcase_add_test(tc, query_and_headers_are_readable);
    tc = tcase(s, "uc_http_list_params");
    tcase_add_test(tc, list_params_default_bound_and_pass_the_token);
    tc = tcase(s, "uc_http_reply_json");
    tcase_add_test(tc, async_reply_from_another_thread);
    tcase_add_test(tc, async_reply_before_the_handler_returns);
    tcase_add_test(tc, async_replies_racing_the_suspend_all_arrive);
    tc = tcase(s, "uc_http_reply_stream");
    tcase_add_test(tc, stream_sends_three_lines_then_ends);
    tc = tcase(s, "uc_http_drain");
    tcase_add_test(tc, drain_waits_for_an_async_request);
    tcase_add_test(tc, drain_ends_open_streams);
    tcase_add_test(tc, readyz_fails_while_draining);
    tc = tcase(s, "uc_http_destroy");
    tcase_add_test(tc, destroy_answers_pending_requests_503);
    tcase_add_test(tc, destroy_ends_open_streams);
    tc = tcase(s, "access_log");
    tcase_add_test(tc, access_log_writes_one_line_per_request);
    int failed = uc_check_run(s);
    curl_global_cleanup();
    return failed;
}
