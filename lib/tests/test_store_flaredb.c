/* test_store_flaredb.c - the flaredb storage backend's own rules, which the
 * conformance suite (test_store.c against a real cluster) cannot provoke:
 * URL and token checks, failover, and what a write does after a lost
 * answer. The peer is a canned-answer server on a thread inside the test
 * that records every request, so each test states the exact exchange. */
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

#include "uc/alloc.h"
#include "uc/crypto.h"
#include "uc/store.h"

/* --- the fake peer ------------------------------------------------------- */

#define MAX_REQS 16

struct canned {
    int status; /* 0: close the connection without answering (a lost answer) */
    const char *body;
};

static struct {
    int lfd;
    uint16_t port;
    pthread_t th;
    const struct canned *answers; /* answer i to request i; the last repeats */
    size_t nanswers;
    atomic_int requests;
    atomic_bool stop;
    char reqs[MAX_REQS][4096]; /* each request's head and body */
} srv;

static char dir[64], err[UC_ERR_LEN];
static struct uc_store *st;

static void answer(int fd, const struct canned *a)
{
    char out[2048];
    if (a->status == 0)
        return;
    int n = snprintf(out, sizeof(out),
                     "HTTP/1.1 %d X\r\nConnection: close\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     a->status, strlen(a->body), a->body);
    ck_assert_int_eq(write(fd, out, (size_t)n), n);
}

static void *serve(void *arg)
{
    (void)arg; /* the server is the global srv */
    char buf[sizeof(srv.reqs[0])];
    while (!atomic_load(&srv.stop)) {
        struct pollfd p = {.fd = srv.lfd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(srv.lfd, NULL, NULL);
        if (fd < 0)
            continue;
        raw_http_read(fd, buf, sizeof(buf), 2000, NULL);
        int i = atomic_load(&srv.requests);
        if (i < MAX_REQS)
            memcpy(srv.reqs[i], buf, sizeof(buf));
        atomic_store(&srv.requests, i + 1);
        answer(fd, &srv.answers[(size_t)i < srv.nanswers ? (size_t)i : srv.nanswers - 1]);
        ck_assert_int_eq(close(fd), 0);
    }
    return NULL;
}

static uint16_t listen_any(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(*fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(*fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

/* A port nothing listens on: bound, never listened to, kept until teardown. */
static int closed_fd = -1;
static uint16_t closed_port(void)
{
    if (closed_fd < 0)
        return listen_any(&closed_fd);
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(closed_fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

static void server_start(const struct canned *answers, size_t n)
{
    srv.port = listen_any(&srv.lfd);
    ck_assert_int_eq(listen(srv.lfd, 16), 0);
    srv.answers = answers;
    srv.nanswers = n;
    ck_assert_int_eq(pthread_create(&srv.th, NULL, serve, NULL), 0);
}

static const char *req(int i)
{
    ck_assert_int_lt(i, atomic_load(&srv.requests));
    return srv.reqs[i];
}

/* --- fixture ----------------------------------------------------------------- */

static void write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/uc-store-fdb-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_file("token", "tok-one\n");
    srv.lfd = -1;
    atomic_store(&srv.requests, 0);
    atomic_store(&srv.stop, false);
    st = NULL;
    err[0] = '\0';
}

static void teardown(void)
{
    uc_store_close(st);
    if (srv.lfd >= 0) {
        atomic_store(&srv.stop, true);
        ck_assert_int_eq(pthread_join(srv.th, NULL), 0);
        ck_assert_int_eq(close(srv.lfd), 0);
    }
    if (closed_fd >= 0)
        ck_assert_int_eq(close(closed_fd), 0);
    closed_fd = -1;
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Open "flaredb:<members>/ns?token_file=<dir>/token&timeout_ms=<ms>". */
static void open_members(const char *members, int timeout_ms)
{
    char url[512];
    snprintf(url, sizeof(url), "flaredb:%s/ns?token_file=%s/token&timeout_ms=%d", members, dir,
             timeout_ms);
    ck_assert_msg(uc_store_open(&st, url, err) == 0, "%s: %s", url, err);
}

/* The fake server as the only member. */
static void open_server(void)
{
    char m[64];
    snprintf(m, sizeof(m), "http://127.0.0.1:%u", srv.port);
    open_members(m, 2000);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* {"key","value","revision"} of a record, key and value given as text. */
static const char *record(char *buf, size_t len, const char *key, const char *val, int rev)
{
    char *k = uc_b64url_encode(key, strlen(key)), *v = uc_b64url_encode(val, strlen(val));
    snprintf(buf, len, "{\"key\":\"%s\",\"value\":\"%s\",\"revision\":%d}", k, v, rev);
    uc_free(k);
    uc_free(v);
    return buf;
}

/* --- URLs and tokens ---------------------------------------------------------- */

START_TEST(bad_urls_are_refused_with_the_reason)
{
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"flaredb:http://h:1", "<members>/<namespace>"},
        {"flaredb:http://h:1/", "namespace"},
        {"flaredb:http://h:1/Upper", "namespace"},
        {"flaredb:http://h:1/"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "namespace"},
        {"flaredb:h:1/ns", "http://host:port"},
        {"flaredb:ftp://h:1/ns", "http://host:port"},
        {"flaredb:http://h:1/x/ns", "http://host:port"},
        {"flaredb:http://h:1,,http://g:2/ns", "empty member"},
        {"flaredb:http://h:1/ns?token=abc", "unknown parameter"},
        {"flaredb:http://h:1/ns?timeout_ms=5", "timeout_ms"},
        {"flaredb:http://h:1/ns?timeout_ms=x", "timeout_ms"},
        {"flaredb:http://h:1/ns?token_file", "name=value"},
        {"flaredb:http://h:1/ns", "needs a token"},
        {"flaredb:http://a:1,http://a:2,http://a:3,http://a:4,http://a:5,http://a:6,http://a:7,"
         "http://a:8,http://a:9,http://a:10,http://a:11,http://a:12,http://a:13,http://a:14,"
         "http://a:15,http://a:16,http://a:17/ns?token_file=/x",
         "at most 16"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(uc_store_open(&st, bad[i].url, err) == UC_EINVAL, "%s", bad[i].url);
        ck_assert_ptr_null(st);
        ck_assert_msg(strstr(err, bad[i].why), "%s: %s", bad[i].url, err);
    }
}
END_TEST

START_TEST(token_file_must_hold_one_token)
{
    char url[256];
    snprintf(url, sizeof(url), "flaredb:https://h:1,http://[::1]:2/ns.x-1_?token_file=%s/none",
             dir);
    ck_assert_int_eq(uc_store_open(&st, url, err), UC_ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "token_file"));
    static const char *const bad[] = {"", " \n\t", "two words\n", "tab\tinside"};
    for (size_t i = 0; i < 4; i++) {
        write_file("bad", bad[i]);
        snprintf(url, sizeof(url), "flaredb:http://h:1/ns?token_file=%s/bad", dir);
        ck_assert_int_eq(uc_store_open(&st, url, err), UC_EINVAL);
        ck_assert_ptr_null(st);
    }
    write_file("ok", "\n  a.b-c_d  \n");
    snprintf(url, sizeof(url), "flaredb:https://h:1,http://[::1]:2/ns.x-1_?token_file=%s/ok", dir);
    ck_assert_msg(uc_store_open(&st, url, err) == 0, "%s", err);
}
END_TEST

static int provider_calls;
static int provider(void *ctx, char token[UC_STORE_TOKEN_LEN], char e[UC_ERR_LEN])
{
    provider_calls++;
    if (ctx)
        return uc_err_set(e, UC_EUNAUTH, "no token today");
    snprintf(token, UC_STORE_TOKEN_LEN, "tok-from-provider");
    return 0;
}

START_TEST(a_provider_supplies_tokens_and_its_errors_stop_the_call)
{
    static const struct canned a[] = {{404, "{}"}};
    server_start(a, 1);
    char url[128];
    struct uc_store_item it;
    snprintf(url, sizeof(url), "flaredb:http://127.0.0.1:%u/ns", srv.port);
    struct uc_store_opts o = {.token = provider};
    ck_assert_int_eq(uc_store_open_opts(&st, url, &o, err), 0);
    ck_assert_int_eq(uc_store_get(st, "k", &it, err), UC_ENOENT);
    ck_assert_ptr_nonnull(strstr(req(0), "GET /api/v1/kv/ns/aw HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(req(0), "Authorization: Bearer tok-from-provider\r\n"));
    uc_store_close(st);
    o.token_ctx = &o; /* now it fails */
    ck_assert_int_eq(uc_store_open_opts(&st, url, &o, err), 0);
    ck_assert_int_eq(uc_store_get(st, "k", &it, err), UC_EUNAUTH);
    ck_assert_ptr_nonnull(strstr(err, "no token today"));
    ck_assert_int_eq(atomic_load(&srv.requests), 1);
}
END_TEST

START_TEST(the_token_file_is_read_again_when_it_changes)
{
    static const struct canned a[] = {{404, "{}"}};
    struct uc_store_item it;
    server_start(a, 1);
    open_server();
    ck_assert_int_eq(uc_store_get(st, "k", &it, err), UC_ENOENT);
    ck_assert_ptr_nonnull(strstr(req(0), "Bearer tok-one\r\n"));
    write_file("token", "tok-two-longer\n");
    ck_assert_int_eq(uc_store_get(st, "k", &it, err), UC_ENOENT);
    ck_assert_ptr_nonnull(strstr(req(1), "Bearer tok-two-longer\r\n"));
    write_file("token", "   \n"); /* half-written: the previous token stays */
    ck_assert_int_eq(uc_store_get(st, "k", &it, err), UC_ENOENT);
    ck_assert_ptr_nonnull(strstr(req(2), "Bearer tok-two-longer\r\n"));
}
END_TEST

/* --- failover ------------------------------------------------------------------- */

START_TEST(a_dead_member_is_skipped)
{
    char rec[256], members[128];
    server_start((const struct canned[]){{200, record(rec, sizeof(rec), "k", "v\x01", 7)}}, 1);
    snprintf(members, sizeof(members), "http://127.0.0.1:%u,http://127.0.0.1:%u", closed_port(),
             srv.port);
    open_members(members, 2000);
    struct uc_store_item it;
    ck_assert_msg(uc_store_get(st, "k", &it, err) == 0, "%s", err);
    ck_assert_str_eq(it.key, "k");
    ck_assert_uint_eq(it.len, 2);
    ck_assert_str_eq((const char *)it.val, "v\x01");
    ck_assert_uint_eq(it.rev, 7);
    uc_store_item_clear(&it);
}
END_TEST

START_TEST(no_member_answering_is_unavailable_at_the_deadline)
{
    char members[64];
    snprintf(members, sizeof(members), "http://127.0.0.1:%u", closed_port());
    open_members(members, 300);
    struct uc_store_item it;
    int64_t t0 = now_ms();
    ck_assert_int_eq(uc_store_get(st, "k", &it, err), UC_EUNAVAIL);
    int64_t took = now_ms() - t0;
    ck_assert_msg(took >= 290 && took < 1500, "took %lld ms", (long long)took);
    ck_assert_ptr_nonnull(strstr(err, "300 ms"));
    ck_assert_int_eq(uc_store_ping(st, err), UC_EUNAVAIL);
}
END_TEST

START_TEST(a_503_is_retried_and_the_answer_after_it_counts)
{
    static const struct canned a[] = {{503, "{\"error\":{\"message\":\"no leader\"}}"},
                                      {404, "{}"}};
    server_start(a, 2);
    open_server();
    ck_assert_int_eq(uc_store_ping(st, err), 0);
    ck_assert_int_eq(atomic_load(&srv.requests), 2);
}
END_TEST

/* --- writes and lost answers ------------------------------------------------- */

START_TEST(put_without_expectation_reads_then_fences)
{
    char r3[256], r4[256];
    const struct canned a[] = {
        {200, record(r3, sizeof(r3), "k", "old", 3)},
        {409, "{\"error\":{\"code\":\"conflict\",\"key\":\"aw\"}}"}, /* someone wrote meanwhile */
        {200, record(r4, sizeof(r4), "k", "theirs", 4)},
        {200, "{\"revision\":5}"},
    };
    server_start(a, 4);
    open_server();
    uint64_t rev = 0;
    ck_assert_msg(uc_store_put(st, "k", "mine", 4, UC_STORE_ANY, &rev, err) == 0, "%s", err);
    ck_assert_uint_eq(rev, 5);
    ck_assert_ptr_nonnull(strstr(req(1), "PUT /api/v1/kv/ns/aw "));
    ck_assert_ptr_nonnull(strstr(req(1), "\"expect_revision\":3"));
    ck_assert_ptr_nonnull(strstr(req(3), "\"expect_revision\":4"));
    ck_assert_ptr_nonnull(strstr(req(3), "\"value\":\"bWluZQ\""));
}
END_TEST

START_TEST(delete_of_a_missing_key_writes_nothing)
{
    static const struct canned a[] = {{404, "{}"}};
    server_start(a, 1);
    open_server();
    ck_assert_int_eq(uc_store_delete(st, "gone", UC_STORE_ANY, err), UC_ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "gone"));
    ck_assert_int_eq(atomic_load(&srv.requests), 1);
    ck_assert_ptr_nonnull(strstr(req(0), "GET "));
}
END_TEST

START_TEST(a_lost_fenced_write_that_applied_is_reported_applied)
{
    char rec[256];
    const struct canned a[] = {
        {0, ""},                                         /* applied, answer lost */
        {409, "{\"error\":{\"code\":\"conflict\"}}"},    /* the re-send conflicts */
        {200, record(rec, sizeof(rec), "k", "mine", 9)}, /* read back: ours */
    };
    server_start(a, 3);
    open_server();
    uint64_t rev = 0;
    ck_assert_msg(uc_store_put(st, "k", "mine", 4, 5, &rev, err) == 0, "%s", err);
    ck_assert_uint_eq(rev, 9);
    ck_assert_int_eq(atomic_load(&srv.requests), 3);
    ck_assert_ptr_nonnull(strstr(req(1), "\"expect_revision\":5")); /* the same write again */
}
END_TEST

START_TEST(a_lost_fenced_write_that_cannot_be_shown_is_outcome_unknown)
{
    char rec[256];
    const struct canned a[] = {
        {503, "{\"error\":{\"message\":\"the write may still be applied\"}}"},
        {409, "{\"error\":{\"code\":\"conflict\"}}"},
        {200, record(rec, sizeof(rec), "k", "theirs", 9)},
    };
    server_start(a, 3);
    open_server();
    uint64_t rev = 77;
    ck_assert_int_eq(uc_store_put(st, "k", "mine", 4, 5, &rev, err), UC_ETIMEDOUT);
    ck_assert_ptr_nonnull(strstr(err, "outcome unknown"));
    ck_assert_uint_eq(rev, 77);
}
END_TEST

START_TEST(an_unfenced_write_is_not_sent_again_after_a_lost_answer)
{
    static const struct canned a[] = {{404, "{}"}, {0, ""}, {200, "{\"revision\":2}"}};
    server_start(a, 3);
    open_server();
    struct uc_store_op op = {UC_STORE_OP_DELETE, "missing", NULL, 0, UC_STORE_ANY};
    ck_assert_int_eq(uc_store_txn(st, &op, 1, NULL, err), UC_ETIMEDOUT);
    ck_assert_ptr_nonnull(strstr(err, "not re-sent"));
    ck_assert_int_eq(atomic_load(&srv.requests), 2); /* the read, then one txn */
    ck_assert_ptr_nonnull(strstr(req(1), "POST /api/v1/kv/ns/txn "));
}
END_TEST

START_TEST(a_conflict_names_the_callers_key)
{
    char ra[256], rb[256];
    const struct canned a[] = {
        {409, "{\"error\":{\"code\":\"conflict\",\"message\":\"key 'Yg' is at revision 3\"}}"},
        {200, record(ra, sizeof(ra), "a", "x", 1)}, /* no key in the answer: read */
        {200, record(rb, sizeof(rb), "b", "x", 3)},
    };
    server_start(a, 3);
    open_server();
    struct uc_store_op ops[] = {
        {UC_STORE_OP_PUT, "a", "1", 1, 1},
        {UC_STORE_OP_CHECK, "b", NULL, 0, 2},
    };
    ck_assert_int_eq(uc_store_txn(st, ops, 2, NULL, err), UC_ECONFLICT);
    ck_assert_msg(strstr(err, "'b'") != NULL, "%s", err);
}
END_TEST

START_TEST(a_txn_of_checks_is_a_read_and_may_answer_revision_zero)
{
    static const struct canned a[] = {{0, ""}, {200, "{\"revision\":0}"}};
    server_start(a, 2);
    open_server();
    struct uc_store_op op = {UC_STORE_OP_CHECK, "k", NULL, 0, UC_STORE_ABSENT};
    uint64_t rev = 9;
    ck_assert_msg(uc_store_txn(st, &op, 1, &rev, err) == 0, "%s", err);
    ck_assert_uint_eq(rev, 0);                       /* an empty namespace */
    ck_assert_int_eq(atomic_load(&srv.requests), 2); /* lost, and asked again: it writes nothing */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("store_flaredb");
    TCase *tc = tcase_create("url");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, bad_urls_are_refused_with_the_reason);
    tcase_add_test(tc, token_file_must_hold_one_token);
    tcase_add_test(tc, a_provider_supplies_tokens_and_its_errors_stop_the_call);
    tcase_add_test(tc, the_token_file_is_read_again_when_it_changes);
    suite_add_tcase(s, tc);
    tc = tcase_create("failover");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_dead_member_is_skipped);
    tcase_add_test(tc, no_member_answering_is_unavailable_at_the_deadline);
    tcase_add_test(tc, a_503_is_retried_and_the_answer_after_it_counts);
    suite_add_tcase(s, tc);
    tc = tcase_create("writes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, put_without_expectation_reads_then_fences);
    tcase_add_test(tc, delete_of_a_missing_key_writes_nothing);
    tcase_add_test(tc, a_lost_fenced_write_that_applied_is_reported_applied);
    tcase_add_test(tc, a_lost_fenced_write_that_cannot_be_shown_is_outcome_unknown);
    tcase_add_test(tc, an_unfenced_write_is_not_sent_again_after_a_lost_answer);
    tcase_add_test(tc, a_conflict_names_the_callers_key);
    tcase_add_test(tc, a_txn_of_checks_is_a_read_and_may_answer_revision_zero);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return uc_check_run(suite()); }
