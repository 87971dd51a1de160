/* test_daemon.c - uc_daemon_config: options plus logging in one step. */
#include <check.h>

#include "uc_check.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "uc/daemon.h"
#include "uc/log.h"

struct cfg {
    char *log_level;
    int64_t port;
};

static const struct uc_config_opt opts[] = {
    {"log-level", UC_CFG_STRING, offsetof(struct cfg, log_level), "info", 0, 0, false, "level"},
    {"port", UC_CFG_INT, offsetof(struct cfg, port), "7100", 1, 65535, false, "port"},
    {NULL, 0, 0, NULL, 0, 0, false, NULL},
};

static int load(int argc, char **argv, struct cfg *c)
{
    return uc_daemon_config(c, opts, "testd", offsetof(struct cfg, log_level), argc, argv);
}

START_TEST(sets_the_log_level_from_the_option)
{
    struct cfg c = {0};
    char *argv[] = {"testd", "--log-level", "warn", "--port", "8080"};
    ck_assert_int_eq(load(5, argv, &c), 0);
    ck_assert_int_eq(c.port, 8080);
    ck_assert(!uc_log_enabled(UC_LOG_INFO));
    ck_assert(uc_log_enabled(UC_LOG_WARN));
    uc_config_free(&c, opts);
}
END_TEST

START_TEST(refuses_an_unknown_log_level_and_frees_everything)
{
    struct cfg c = {0};
    char *argv[] = {"testd", "--log-level", "loud"};
    ck_assert_int_eq(load(3, argv, &c), UC_EINVAL);
    /* nothing left to free: valgrind and ASan check the claim */
}
END_TEST

START_TEST(bad_options_are_einval_and_help_is_ehelp)
{
    struct cfg c = {0};
    char *bad[] = {"testd", "--port", "0"};
    ck_assert_int_eq(load(3, bad, &c), UC_EINVAL);
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(stdout);
    char *help[] = {"testd", "--help"};
    int rc = load(2, help, &c);
    fclose(stdout);
    stdout = saved;
    ck_assert_int_eq(rc, UC_EHELP);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("daemon");
    TCase *tc = tcase_create("uc_daemon_config");
    tcase_add_test(tc, sets_the_log_level_from_the_option);
    tcase_add_test(tc, refuses_an_unknown_log_level_and_frees_everything);
    tcase_add_test(tc, bad_options_are_einval_and_help_is_ehelp);
    suite_add_tcase(s, tc);
    return uc_check_run(s);
}
