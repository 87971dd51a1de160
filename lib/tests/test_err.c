/* test_err.c - the error table and message helpers. */
#include <check.h>

#include "uc_check.h"
#include <string.h>

#include "uc/err.h"

START_TEST(codes_map_to_status_and_api_code)
{
    ck_assert_int_eq(uc_err_http_status(UC_EINVAL), 400);
    ck_assert_int_eq(uc_err_http_status(UC_EUNAUTH), 401);
    ck_assert_int_eq(uc_err_http_status(UC_EFORBIDDEN), 403);
    ck_assert_int_eq(uc_err_http_status(UC_ENOENT), 404);
    ck_assert_int_eq(uc_err_http_status(UC_ECONFLICT), 409);
    ck_assert_int_eq(uc_err_http_status(UC_E2BIG), 413);
    ck_assert_int_eq(uc_err_http_status(UC_ERATE), 429);
    ck_assert_int_eq(uc_err_http_status(UC_EUNAVAIL), 503);
    ck_assert_int_eq(uc_err_http_status(-12345), 500);
    ck_assert_str_eq(uc_err_api_code(UC_EINVAL), "invalid_argument");
    ck_assert_str_eq(uc_err_api_code(UC_ECONFLICT), "conflict");
}
END_TEST

START_TEST(unknown_errno_uses_strerror)
{
    ck_assert_str_eq(uc_strerror(-EPIPE), strerror(EPIPE));
    ck_assert_str_eq(uc_strerror(-5000), "unknown error");
}
END_TEST

START_TEST(set_and_prefix_build_context)
{
    char err[UC_ERR_LEN];
    ck_assert_int_eq(uc_err_set(err, UC_EIO, "open %s", "x.db"), UC_EIO);
    ck_assert_int_eq(uc_err_prefix(err, UC_EIO, "store"), UC_EIO);
    ck_assert_str_eq(err, "store: open x.db");
    ck_assert_int_eq(uc_err_set(NULL, UC_EINVAL, "ignored"), UC_EINVAL);
}
END_TEST

START_TEST(sanitize_strips_control_and_truncates)
{
    char out[32];
    uc_err_sanitize(out, sizeof(out), "a\r\nb\tc", 100);
    ck_assert_str_eq(out, "a  b c");
    uc_err_sanitize(out, sizeof(out), "abcdefghij", 4);
    ck_assert_str_eq(out, "abcd...");
    uc_err_sanitize(out, 6, "abcdefghij", 100);
    ck_assert_uint_eq(strlen(out), 5);
    ck_assert(strstr(out, "...") != NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, codes_map_to_status_and_api_code);
    tcase_add_test(tc, unknown_errno_uses_strerror);
    tcase_add_test(tc, set_and_prefix_build_context);
    tcase_add_test(tc, sanitize_strips_control_and_truncates);
    suite_add_tcase(s, tc);
    return uc_check_run(s);
}
