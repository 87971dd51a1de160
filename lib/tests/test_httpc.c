/* test_httpc.c - the HTTP client against a tiny canned-answer server that
 * runs on a thread inside the test and counts the requests it gets. */
#include <arpa/inet.h>
#include <check.h>

#include "raw_http.h"
#include "uc_check.h"
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "uc/httpc.h"

/* --- the fake peer ------------------------------------------------------- */

struct canned {
    int status;
    const char *ctype; /* NULL: no Content-Type header */
    const char *body;
    long long clen; /* > 0: claim this Content-Length instead of the body's */
};

struct server {
    int lfd;
    uint16_t port;
    pthread_t th;
    const struct canned *answers; /* answer i to request i; the last repeats */
    size_t nanswers;
    bool hang; /* read requests but never answer */
    atomic_int requests;
    atomic_bool stop;
    pthread_mutex_t mu;
    char last[16384]; /* the last request: head and body */
};

static struct server srv;

static void answer(int fd, const struct canned *a)
{
    char head[512];
    size_t blen = strlen(a->body);
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nConnection: close\r\n", a->status);
    if (a->ctype)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Type: %s\r\n", a->ctype);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %lld\r\n\r\n",
                  a->clen > 0 ? a->clen : (long long)blen);
    ck_assert_int_eq(write(fd, head, (size_t)n), n);
    if (blen)
        ck_assert_int_eq(write(fd, a->body, blen), (ssize_t)blen);
}

/* Hold a connection open without answering until the client leaves or the test ends. */
static void hang(int fd)
{
    char sink[256];
    while (!atomic_load(&srv.stop)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) > 0 && read(fd, sink, sizeof(sink)) <= 0)
            return;
    }
}

static void *serve(void *arg)
{
    (void)arg; /* the server is the global srv */
    char buf[sizeof(srv.last)];
    while (!atomic_load(&srv.stop)) {
        struct pollfd p = {.fd = srv.lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        raw_http_read(fd, buf, sizeof(buf), 50, &srv.stop);
        ck_assert_int_eq(pthread_mutex_lock(&srv.mu), 0);
        memcpy(srv.last, buf, sizeof(buf));
        ck_assert_int_eq(pthread_mutex_unlock(&srv.mu), 0);
        int i = atomic_fetch_add(&srv.requests, 1);
        if (srv.hang)
            hang(fd);
        else
            answer(fd, &srv.answers[(size_t)i < srv.nanswers ? (size_t)i : srv.nanswers - 1]);
        ck_assert_int_eq(close(fd), 0);
    }
    return NULL;
}

static int listen_any(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void server_start(const struct canned *answers, size_t n, bool hang_mode)
{
    srv.lfd = listen_any(&srv.port);
    ck_assert_int_eq(listen(srv.lfd, 16), 0);
    srv.answers = answers;
    srv.nanswers = n;
    srv.hang = hang_mode;
    atomic_store(&srv.requests, 0);
    atomic_store(&srv.stop, false);
    srv.last[0] = '\0';
    ck_assert_int_eq(pthread_create(&srv.th, NULL, serve, NULL), 0);
}

static void setup(void)
{
    srv.lfd = -1;
    ck_assert_int_eq(pthread_mutex_init(&srv.mu, NULL), 0);
}

static void teardown(void)
{
    if (srv.lfd >= 0) {
        atomic_store(&srv.stop, true);
        ck_assert_int_eq(pthread_join(srv.th, NULL), 0);
        ck_assert_int_eq(close(srv.lfd), 0);
    }
    ck_assert_int_eq(pthread_mutex_destroy(&srv.mu), 0);
}

static void url(char *buf, size_t len, const char *path)
{
    snprintf(buf, len, "http://127.0.0.1:%u%s", srv.port, path);
}

static bool last_has(const char *s)
{
    ck_assert_int_eq(pthread_mutex_lock(&srv.mu), 0);
    bool found = strstr(srv.last, s) != NULL;
    ck_assert_int_eq(pthread_mutex_unlock(&srv.mu), 0);
    return found;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define ONE(...) ((const struct canned[]){__VA_ARGS__}), 1

static const struct canned ok_json = {200, "application/json", "{\"ok\":true,\"n\":3}", 0};
static const struct canned unavailable = {503, "application/json", "{\"error\":{}}", 0};

/* --- uc_httpc_json --------------------------------------------------------- */

START_TEST(get_parses_a_json_answer)
{
    server_start(&ok_json, 1, false);
    char u[64], err[UC_ERR_LEN];
    url(u, sizeof(u), "/api/v1/things");
    struct uc_httpc_resp r;
    ck_assert_int_eq(uc_httpc_json("GET", u, NULL, NULL, &r, err), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, ok_json.body);
    ck_assert_uint_eq(r.len, strlen(ok_json.body));
    ck_assert(json_is_true(json_object_get(r.json, "ok")));
    ck_assert(last_has("GET /api/v1/things HTTP/1.1\r\n"));
    ck_assert(last_has("Accept: application/json\r\n"));
    ck_assert(!last_has("Authorization"));
    uc_httpc_resp_clear(&r);
    ck_assert_ptr_null(r.body);
    ck_assert_ptr_null(r.json);
}
END_TEST

START_TEST(json_is_recognised_by_body_or_type_only)
{
    static const struct canned answers[] = {
        {200, "text/plain", " [1,2]", 0},
        {200, "text/plain", "hello", 0},
        {200, "application/json", "not json", 0},
    };
    server_start(answers, 3, false);
    char u[64];
    url(u, sizeof(u), "/");
    struct uc_httpc_resp r;
    ck_assert_int_eq(uc_httpc_json("GET", u, NULL, NULL, &r, NULL), 0);
    ck_assert(json_is_array(r.json));
    uc_httpc_resp_clear(&r);
    ck_assert_int_eq(uc_httpc_json("GET", u, NULL, NULL, &r, NULL), 0);
    ck_assert_ptr_null(r.json);
    ck_assert_str_eq(r.body, "hello");
    uc_httpc_resp_clear(&r);
    ck_assert_int_eq(uc_httpc_json("GET", u, NULL, NULL, &r, NULL), 0);
    ck_assert_ptr_null(r.json);
    ck_assert_str_eq(r.body, "not json");
    uc_httpc_resp_clear(&r);
}
END_TEST

START_TEST(post_sends_the_json_body)
{
    server_start(ONE({201, NULL, "", 0}), false);
    char u[64];
    url(u, sizeof(u), "/api/v1/things");
    json_t *body = json_pack("{s:s,s:i}", "name", "web", "size", 2);
    struct uc_httpc_resp r;
    ck_assert_int_eq(uc_httpc_json("POST", u, body, NULL, &r, NULL), 0);
    json_decref(body);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(r.body, "");
    ck_assert_ptr_null(r.json);
    ck_assert(last_has("POST /api/v1/things HTTP/1.1\r\n"));
    ck_assert(last_has("\r\nContent-Type: application/json\r\n"));
    ck_assert(last_has("\r\nContent-Length: 23\r\n"));
    ck_assert(last_has("\r\n\r\n{\"name\":\"web\",\"size\":2}"));
    uc_httpc_resp_clear(&r);
}
END_TEST

START_TEST(bodiless_post_sends_an_empty_body_without_type)
{
    server_start(ONE({204, NULL, "", 0}), false);
    char u[64];
    url(u, sizeof(u), "/x");
    struct uc_httpc_resp r;
    ck_assert_int_eq(uc_httpc_json("POST", u, NULL, NULL, &r, NULL), 0);
    ck_assert_int_eq(r.status, 204);
    ck_assert(last_has("\r\nContent-Length: 0\r\n"));
    ck_assert(!last_has("Content-Type"));
    uc_httpc_resp_clear(&r);
}
END_TEST

START_TEST(bearer_token_is_sent)
{
    server_start(&ok_json, 1, false);
    char u[64];
    url(u, sizeof(u), "/");
    struct uc_httpc_opts o = {.bearer = "tok.abc.def"};
    struct uc_httpc_resp r;
    ck_assert_int_eq(uc_httpc_json("DELETE", u, NULL, &o, &r, NULL), 0);
    ck_assert(last_has("DELETE / HTTP/1.1\r\n"));
    ck_assert(last_has("\r\nAuthorization: Bearer tok.abc.def\r\n"));
    uc_httpc_resp_clear(&r);
}
END_TEST

START_TEST(bearer_with_line_break_is_refused)
{
    struct uc_httpc_opts o = {.bearer = "tok\r\nX-Evil: 1"};
    struct uc_httpc_resp r;
    char err[UC_ERR_LEN];
    ck_assert_int_eq(uc_httpc_json("GET", "http://127.0.0.1:1/", NULL, &o, &r, err), UC_EINVAL);
    ck_assert_str_eq(err, "bearer token contains a line break");
    ck_assert_ptr_null(r.body);
}
END_TEST

START_TEST(request_id_is_sent_as_x_request_id)
{
    server_start(&ok_json, 1, false);
    char u[64];
    url(u, sizeof(u), "/");
    char longest[UC_HTTPC_RID_MAX + 1];
    memset(longest, 'r', UC_HTTPC_RID_MAX);
    longest[UC_HTTPC_RID_MAX] = '\0';
    struct uc_httpc_opts o = {.request_id = "fwd-1a2B_3.c"};
    struct uc_httpc_resp r;
    ck_assert_int_eq(uc_httpc_raw("POST", u, "{}", 2, &o, &r, NULL), 0);
    ck_assert(last_has("\r\nX-Request-Id: fwd-1a2B_3.c\r\n"));
    uc_httpc_resp_clear(&r);
    o.request_id = longest;
    ck_assert_int_eq(uc_httpc_json("GET", u, NULL, &o, &r, NULL), 0);
    ck_assert(last_has(longest));
    uc_httpc_resp_clear(&r);
    ck_assert_int_eq(uc_httpc_json("GET", u, NULL, NULL, &r, NULL), 0);
    ck_assert(!last_has("X-Request-Id"));
    uc_httpc_resp_clear(&r);
    ck_assert_int_eq(atomic_load(&srv.requests), 3);
}
END_TEST

START_TEST(malformed_request_id_is_refused_before_sending)
{
    server_start(&ok_json, 1, false);
    char u[64], err[UC_ERR_LEN], toolong[UC_HTTPC_RID_MAX + 2];
    url(u, sizeof(u), "/");
    memset(toolong, 'r', UC_HTTPC_RID_MAX + 1);
    toolong[UC_HTTPC_RID_MAX + 1] = '\0';
    const char *bad[] = {"", "a b", "rid\r\nX-Evil: 1", "r/1", "r\xc3\xa9", toolong};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct uc_httpc_opts o = {.request_id = bad[i]};
        struct uc_httpc_resp r;
        ck_assert_int_eq(uc_httpc_json("GET", u, NULL, &o, &r, err), UC_EINVAL);
        ck_assert_str_eq(err, "request id must be 1-64 characters of [A-Za-z0-9-_.]");
        ck_assert_ptr_null(r.body);
    }
    ck_assert_int_eq(atomic_load(&srv.requests), 0);
}
END_TEST

START_TEST(get_retries_a_503)
{
    static const struct canned answers[] = {
        {503, "application/json", "{}", 0},
        {200, "application/json", "{\"ok\":true,\"n\":3}", 0},
    };
    server_start(answers, 2, false);
    char u[64];
    url(u, sizeof(u), "/");
    struct uc_httpc_opts o = {.retries = 2, .backoff_ms = 10};
    struct uc_httpc_resp r;
    ck_assert_int_eq(uc_httpc_json("GET", u, NULL, &o, &r, NULL), 0);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(atomic_load(&srv.requests), 2);
    ck_assert_str_eq(r.body, "{\"ok\":true,\"n\":3}");
    uc_httpc_resp_clear(&r);
}
END_TEST

START_TEST(post_and_patch_are_never_retried)
{
    server_start(&unavailable, 1, false);
    char u[64];
    url(u, sizeof(u), "/");
    struct uc_httpc_opts o = {.retries = 3, .backoff_ms = 10};
    struct uc_httpc_resp r;
    ck_assert_int_eq(uc_httpc_json("POST", u, NULL, &o, &r, NULL), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(atomic_load(&srv.requests), 1);
    uc_httpc_resp_clear(&r);
    ck_assert_int_eq(uc_httpc_raw("PATCH", u, "x", 1, &o, &r, NULL), 0);
    ck_assert_int_eq(r.status, 503);
    ck_assert_int_eq(atomic_load(&srv.requests), 2);
    uc_httpc_resp_clear(&r);
}
END_TEST

START_TEST(retries_stop_when_the_deadline_nears)
{
    server_start(&unavailable, 1, false);
    char u[64];
    url(u, sizeof(u), "/");
    /* Backoffs of 100, 200, 400 ms: the third no longer fits in 500 ms. */
    struct uc_httpc_opts o = {.retries = 10, .backoff_ms = 100, .timeout_ms = 500};
    struct uc_httpc_resp r;
    int64_t t0 = now_ms();
    ck_assert_int_eq(uc_httpc_json("GET", u, NULL, &o, &r, NULL), 0);
    int64_t took = now_ms() - t0;
    ck_assert_int_eq(r.status, 503);
    /* 3 on an idle machine; a slow one (valgrind) may only fit 2. */
    ck_assert_int_ge(atomic_load(&srv.requests), 2);
    ck_assert_int_le(atomic_load(&srv.requests), 3);
    /* It gave up instead of sleeping the third backoff, which would end at
     * 700 ms at the earliest; the margin is for a slow (valgrind) request. */
    ck_assert_int_lt(took, 650);
    uc_httpc_resp_clear(&r);
}
END_TEST

START_TEST(silent_server_hits_the_deadline)
{
    server_start(NULL, 0, true);
    char u[64], err[UC_ERR_LEN];
    url(u, sizeof(u), "/slow");
    struct uc_httpc_opts o = {.timeout_ms = 300, .retries = 3, .backoff_ms = 10};
    struct uc_httpc_resp r;
    int64_t t0 = now_ms();
    ck_assert_int_eq(uc_httpc_json("GET", u, NULL, &o, &r, err), UC_ETIMEDOUT);
    int64_t took = now_ms() - t0;
    ck_assert_int_ge(took, 290);
    ck_assert_int_lt(took, 300 + 700);
    ck_assert_int_eq(atomic_load(&srv.requests), 1);
    ck_assert_ptr_null(r.body);
    ck_assert_msg(strstr(err, "deadline") != NULL, "got: %s", err);
}
END_TEST

START_TEST(refused_connection_is_unavailable)
{
    uint16_t port;
    int fd = listen_any(&port); /* bound but not listening: connections are refused */
    char u[64], err[UC_ERR_LEN];
    snprintf(u, sizeof(u), "http://127.0.0.1:%u/", port);
    struct uc_httpc_opts o = {.retries = 2, .backoff_ms = 5};
    struct uc_httpc_resp r;
    ck_assert_int_eq(uc_httpc_json("GET", u, NULL, &o, &r, err), UC_EUNAVAIL);
    ck_assert_msg(strstr(err, "could not connect") != NULL, "got: %s", err);
    ck_assert_ptr_null(r.body);
    ck_assert_int_eq(close(fd), 0);
}
END_TEST

START_TEST(oversized_answer_is_e2big)
{
    server_start(ONE({200, "application/octet-stream", "", 64LL * 1024 * 1024 + 1}), false);
    char u[64], err[UC_ERR_LEN];
    url(u, sizeof(u), "/big");
    struct uc_httpc_resp r;
    ck_assert_int_eq(uc_httpc_raw("GET", u, NULL, 0, NULL, &r, err), UC_E2BIG);
    ck_assert_ptr_null(r.body);
}
END_TEST

START_TEST(bad_method_or_url_is_einval)
{
    struct uc_httpc_resp r;
    char err[UC_ERR_LEN];
    ck_assert_int_eq(uc_httpc_raw("get", "http://127.0.0.1/", NULL, 0, NULL, &r, err), UC_EINVAL);
    ck_assert_int_eq(uc_httpc_raw("GET", "ftp://127.0.0.1/", NULL, 0, NULL, &r, err), UC_EINVAL);
    ck_assert_int_eq(uc_httpc_raw("GET", "http://[::1/", NULL, 0, NULL, &r, err), UC_EINVAL);
}
END_TEST

/* --- uc_httpc_raw ------------------------------------------------------------ */

START_TEST(raw_body_carries_its_content_type)
{
    server_start(ONE({200, "text/plain", "stored", 0}), false);
    char u[64];
    url(u, sizeof(u), "/obj");
    struct uc_httpc_opts o = {.content_type = "text/csv"};
    struct uc_httpc_resp r;
    ck_assert_int_eq(uc_httpc_raw("PUT", u, "a,b\n", 4, &o, &r, NULL), 0);
    ck_assert(last_has("PUT /obj HTTP/1.1\r\n"));
    ck_assert(last_has("\r\nContent-Type: text/csv\r\n"));
    ck_assert(last_has("\r\n\r\na,b\n"));
    ck_assert_str_eq(r.body, "stored");
    ck_assert_ptr_null(r.json);
    uc_httpc_resp_clear(&r);
}
END_TEST

/* --- uc_httpc_resp_clear ----------------------------------------------------- */

START_TEST(clear_is_safe_on_a_zeroed_response)
{
    struct uc_httpc_resp r = {0};
    uc_httpc_resp_clear(&r);
    uc_httpc_resp_clear(NULL);
    ck_assert_ptr_null(r.body);
}
END_TEST

int main(void)
{
    if (uc_httpc_global_init() != 0)
        return 1;
    Suite *s = suite_create("httpc");
    TCase *tc = uc_check_tcase("json", setup, teardown);
    tcase_add_test(tc, get_parses_a_json_answer);
    tcase_add_test(tc, json_is_recognised_by_body_or_type_only);
    tcase_add_test(tc, post_sends_the_json_body);
    tcase_add_test(tc, bodiless_post_sends_an_empty_body_without_type);
    tcase_add_test(tc, bearer_token_is_sent);
    tcase_add_test(tc, bearer_with_line_break_is_refused);
    tcase_add_test(tc, request_id_is_sent_as_x_request_id);
    tcase_add_test(tc, malformed_request_id_is_refused_before_sending);
    tcase_add_test(tc, get_retries_a_503);
    tcase_add_test(tc, post_and_patch_are_never_retried);
    tcase_add_test(tc, retries_stop_when_the_deadline_nears);
    tcase_add_test(tc, silent_server_hits_the_deadline);
    tcase_add_test(tc, refused_connection_is_unavailable);
    tcase_add_test(tc, oversized_answer_is_e2big);
    tcase_add_test(tc, bad_method_or_url_is_einval);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("raw", setup, teardown);
    tcase_add_test(tc, raw_body_carries_its_content_type);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("resp_clear", setup, teardown);
    tcase_add_test(tc, clear_is_safe_on_a_zeroed_response);
    suite_add_tcase(s, tc);
    int failed = uc_check_run(s);
    uc_httpc_global_cleanup();
    return failed;
}
