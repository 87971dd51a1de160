/* test_http_router.c - the route table behind uc_http: pattern checks,
 * path splitting and decoding, specificity, HEAD and the Allow list. */
#include <check.h>

#include "uc_check.h"
#include <string.h>

#include "../http_internal.h"

static int nop(struct uc_http_req *req, void *ctx)
{
    (void)req, (void)ctx;
    return 0;
}

static const struct uc_http_route table[] = {
    {"GET", "/api/v1/users", nop, 0, UC_ROLE_READER, 0},
    {"POST", "/api/v1/users", nop, UC_HTTP_JSON, UC_ROLE_MEMBER, 0},
    {"GET", "/api/v1/users/{id}", nop, 0, UC_ROLE_READER, 0},
    {"DELETE", "/api/v1/users/{id}", nop, 0, UC_ROLE_ADMIN, 0},
    {"GET", "/api/v1/users/me", nop, 0, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/{coll}/{id}/members", nop, 0, UC_ROLE_READER, 4096},
    {"GET", "/", nop, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
};
#define NTABLE (sizeof(table) / sizeof(table[0]))

static struct http_router router;

static void setup(void)
{
    char err[UC_ERR_LEN] = "";
    ck_assert_msg(http_router_init(&router, table, NTABLE, NULL, 0, 1000, err) == 0, "%s", err);
}

static void teardown(void) { http_router_deinit(&router); }

/* Split `path` and match it; the scratch buffer lives in a static. */
static const struct http_route *match(const char *method, const char *path, struct http_path *p)
{
    static char scratch[512];
    ck_assert_int_eq(http_router_split(path, strlen(path), scratch, p), 0);
    return http_router_match(&router, method, p);
}

static int init_one(const char *method, const char *pattern, unsigned flags, char *err)
{
    struct uc_http_route one[] = {{method, pattern, nop, flags, UC_ROLE_ANY, 0}};
    struct http_router r;
    int rc = http_router_init(&r, one, 1, NULL, 0, 10, err);
    if (rc == 0)
        http_router_deinit(&r);
    return rc;
}

START_TEST(init_accepts_good_patterns_and_resolves_limits)
{
    ck_assert_uint_eq(router.n, NTABLE);
    ck_assert_uint_eq(router.routes[0].def.body_limit, 1000);
    ck_assert_uint_eq(router.routes[5].def.body_limit, 4096);
    ck_assert_uint_eq(router.routes[5].nparams, 2);
    ck_assert_str_eq(router.routes[5].names[1], "id");
    ck_assert_uint_eq(router.routes[5].param_seg[1], 3);
    ck_assert_uint_eq(router.routes[6].nseg, 0);
}
END_TEST

START_TEST(init_rejects_bad_patterns)
{
    char err[UC_ERR_LEN] = "";
    const char *bad[] = {"",    "api",   "/a//b",    "/a/",    "/a/../b", "/a/./b", "/{}",
                         "/{a", "/a{b}", "/{a}/{a}", "/a%20b", "/a b",    "/{a-b}", "/a\"b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(init_one("GET", bad[i], 0, err) == UC_EINVAL, "accepted '%s'", bad[i]);
    ck_assert_int_eq(init_one("get", "/a", 0, err), UC_EINVAL);
    ck_assert_int_eq(init_one("", "/a", 0, err), UC_EINVAL);
    ck_assert_int_eq(init_one(NULL, "/a", 0, err), UC_EINVAL);
    ck_assert_int_eq(init_one("GET", NULL, 0, err), UC_EINVAL);
    ck_assert_int_eq(init_one("GET", "/a", 1u << 7, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "unknown flags"));
    ck_assert_int_eq(init_one("GET", "/a/{x}", 0, err), 0);
}
END_TEST

START_TEST(init_rejects_too_many_params_and_segments)
{
    char err[UC_ERR_LEN] = "", pat[400] = "";
    for (int i = 0; i < UC_HTTP_MAX_PARAMS + 1; i++)
        snprintf(pat + strlen(pat), sizeof(pat) - strlen(pat), "/{p%d}", i);
    ck_assert_int_eq(init_one("GET", pat, 0, err), UC_EINVAL);
    pat[0] = '\0';
    for (int i = 0; i < HTTP_MAX_SEGS + 1; i++)
        strcat(pat, "/s");
    ck_assert_int_eq(init_one("GET", pat, 0, err), UC_EINVAL);
}
END_TEST

START_TEST(init_rejects_duplicates_and_names_them)
{
    char err[UC_ERR_LEN] = "";
    struct uc_http_route dup[] = {{"GET", "/a/{x}", nop, 0, UC_ROLE_ANY, 0},
                                  {"GET", "/a/{y}", nop, 0, UC_ROLE_ANY, 0}};
    struct http_router r;
    ck_assert_int_eq(http_router_init(&r, dup, 2, NULL, 0, 10, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "route 1 (GET /a/{y})"));
    ck_assert_ptr_nonnull(strstr(err, "GET /a/{x}"));
    ck_assert_ptr_null(r.routes);
    /* the same path with another method is fine */
    dup[1].method = "PUT";
    ck_assert_int_eq(http_router_init(&r, dup, 2, NULL, 0, 10, err), 0);
    http_router_deinit(&r);
    /* a user route clashing with a built-in */
    struct uc_http_route user[] = {{"GET", "/healthz", nop, 0, UC_ROLE_ANY, 0}};
    struct uc_http_route builtin[] = {
        {"GET", "/healthz", nop, UC_HTTP_PUBLIC | HTTP_ROUTE_BUILTIN, UC_ROLE_ANY, 0}};
    ck_assert_int_eq(http_router_init(&r, user, 1, builtin, 1, 10, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "built in"));
    /* the built-in flag is for built-ins only */
    user[0].flags = HTTP_ROUTE_BUILTIN;
    user[0].pattern = "/other";
    ck_assert_int_eq(http_router_init(&r, user, 1, builtin, 1, 10, err), UC_EINVAL);
}
END_TEST

START_TEST(split_decodes_each_segment)
{
    char scratch[64];
    struct http_path p;
    const char *raw = "/a%2Fb/c%41d/%e2%82%ac/";
    ck_assert_int_eq(http_router_split(raw, strlen(raw), scratch, &p), 0);
    ck_assert_uint_eq(p.nseg, 4);
    ck_assert_str_eq(p.seg[0], "a/b");
    ck_assert_str_eq(p.seg[1], "cAd");
    ck_assert_str_eq(p.seg[2], "\xe2\x82\xac");
    ck_assert_str_eq(p.seg[3], "");
    ck_assert_int_eq(http_router_split("/", 1, scratch, &p), 0);
    ck_assert_uint_eq(p.nseg, 0);
}
END_TEST

START_TEST(split_rejects_dotdot_nul_and_bad_escapes)
{
    char scratch[64];
    struct http_path p;
    const char *bad[] = {"/a/../b", "/..", "/a/%2e%2E", "/a%00b", "/a%zz",
                         "/a%4",    "/a%", "a/b",       ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(http_router_split(bad[i], strlen(bad[i]), scratch, &p) == UC_EINVAL,
                      "accepted '%s'", bad[i]);
    ck_assert_int_eq(http_router_split("/a/.../b", 8, scratch, &p), 0);
    char deep[200] = "";
    for (int i = 0; i < HTTP_MAX_SEGS + 1; i++)
        strcat(deep, "/x");
    char big[256];
    ck_assert_int_eq(http_router_split(deep, strlen(deep), big, &p), UC_ENOENT);
}
END_TEST

START_TEST(match_prefers_exact_segments_over_params)
{
    struct http_path p;
    const struct http_route *rt = match("GET", "/api/v1/users/me", &p);
    ck_assert_ptr_nonnull(rt);
    ck_assert_str_eq(rt->def.pattern, "/api/v1/users/me");
    rt = match("GET", "/api/v1/users/u-42", &p);
    ck_assert_ptr_nonnull(rt);
    ck_assert_str_eq(rt->def.pattern, "/api/v1/users/{id}");
    ck_assert_str_eq(p.seg[rt->param_seg[0]], "u-42");
    /* no DELETE on /users/me: the param route takes it */
    rt = match("DELETE", "/api/v1/users/me", &p);
    ck_assert_ptr_nonnull(rt);
    ck_assert_str_eq(rt->def.pattern, "/api/v1/users/{id}");
    rt = match("GET", "/api/v1/projects/p1/members", &p);
    ck_assert_ptr_nonnull(rt);
    ck_assert_str_eq(p.seg[rt->param_seg[0]], "projects");
    rt = match("GET", "/", &p);
    ck_assert_ptr_nonnull(rt);
    ck_assert_str_eq(rt->def.pattern, "/");
}
END_TEST

START_TEST(match_needs_non_empty_params_and_same_depth)
{
    struct http_path p;
    ck_assert_ptr_null(match("GET", "/api/v1/users/", &p));
    ck_assert_ptr_null(match("GET", "/api/v1/users/a/b", &p));
    ck_assert_ptr_null(match("GET", "/api/v1", &p));
    ck_assert_ptr_null(match("GET", "/nope", &p));
}
END_TEST

START_TEST(match_serves_head_from_get)
{
    struct http_path p;
    const struct http_route *rt = match("HEAD", "/api/v1/users", &p);
    ck_assert_ptr_nonnull(rt);
    ck_assert_str_eq(rt->def.method, "GET");
    ck_assert_ptr_null(match("HEAD", "/nope", &p));
}
END_TEST

START_TEST(allow_lists_methods_of_the_path)
{
    struct http_path p;
    char allow[64];
    ck_assert_ptr_null(match("PATCH", "/api/v1/users", &p));
    ck_assert(http_router_allow(&router, &p, allow, sizeof(allow)));
    ck_assert_str_eq(allow, "GET, POST");
    ck_assert_ptr_null(match("PUT", "/api/v1/users/me", &p));
    ck_assert(http_router_allow(&router, &p, allow, sizeof(allow)));
    ck_assert_str_eq(allow, "GET, DELETE");
    ck_assert_ptr_null(match("GET", "/nope", &p));
    ck_assert(!http_router_allow(&router, &p, allow, sizeof(allow)));
    ck_assert_str_eq(allow, "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("http_router");
    TCase *tc = tcase_create("http_router_init");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, init_accepts_good_patterns_and_resolves_limits);
    tcase_add_test(tc, init_rejects_bad_patterns);
    tcase_add_test(tc, init_rejects_too_many_params_and_segments);
    tcase_add_test(tc, init_rejects_duplicates_and_names_them);
    suite_add_tcase(s, tc);
    tc = tcase_create("http_router_split");
    tcase_add_test(tc, split_decodes_each_segment);
    tcase_add_test(tc, split_rejects_dotdot_nul_and_bad_escapes);
    suite_add_tcase(s, tc);
    tc = tcase_create("http_router_match");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, match_prefers_exact_segments_over_params);
    tcase_add_test(tc, match_needs_non_empty_params_and_same_depth);
    tcase_add_test(tc, match_serves_head_from_get);
    suite_add_tcase(s, tc);
    tc = tcase_create("http_router_allow");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, allow_lists_methods_of_the_path);
    suite_add_tcase(s, tc);
    return uc_check_run(s);
}
