/* test_daemon.c - uc_daemon_config (options plus logging in one step) and
 * uc_daemon_main, the main() every daemon shares: which callbacks run, and
 * the exit status each outcome gives. */
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

/* A daemon whose callbacks record that they ran and fail as told. */
struct fake {
    struct cfg cfg;
    int open_rc;
    int serve_rc;
    int opened, served, torn_down;
};

static int fake_open(void *p, char err[UC_ERR_LEN])
{
    struct fake *f = p;
    f->opened++;
    if (f->open_rc < 0)
        uc_err_set(err, f->open_rc, "open failed as told");
    return f->open_rc;
}

static int fake_serve(void *p)
{
    struct fake *f = p;
    f->served++;
    return f->serve_rc;
}

static void fake_teardown(void *p)
{
    struct fake *f = p;
    f->torn_down++;
    /* the options are still there: uc_daemon_main frees them after this */
    ck_assert_ptr_nonnull(f->cfg.log_level);
}

static bool eio_is_config(int rc) { return rc == UC_EIO; }

static const struct uc_daemon_spec spec = {
    .service = "testd",
    .opts = opts,
    .cfg_offset = offsetof(struct fake, cfg),
    .log_level_offset = offsetof(struct cfg, log_level),
    .open = fake_open,
    .serve = fake_serve,
    .teardown = fake_teardown,
};

static int run_main(const struct uc_daemon_spec *sp, struct fake *f, int argc, char **argv)
{
    return uc_daemon_main(sp, f, argc, argv);
}

START_TEST(main_serves_and_tears_down)
{
    struct fake f = {0};
    char *argv[] = {"testd", "--log-level", "error", "--port", "9000"};
    ck_assert_int_eq(run_main(&spec, &f, 5, argv), 0);
    ck_assert_int_eq(f.cfg.port, 9000);
    ck_assert_int_eq(f.opened + f.served + f.torn_down, 3);
    ck_assert_ptr_null(f.cfg.log_level); /* freed after teardown */
}
END_TEST

START_TEST(main_help_is_0_and_opens_nothing)
{
    struct fake f = {0};
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(stdout);
    char *argv[] = {"testd", "--help"};
    int code = run_main(&spec, &f, 2, argv);
    fclose(stdout);
    stdout = saved;
    ck_assert_int_eq(code, 0);
    ck_assert_int_eq(f.opened + f.served + f.torn_down, 0);
}
END_TEST

START_TEST(main_bad_option_is_2_and_opens_nothing)
{
    struct fake f = {0};
    char *argv[] = {"testd", "--port", "70000"};
    ck_assert_int_eq(run_main(&spec, &f, 3, argv), UC_EXIT_CONFIG);
    ck_assert_int_eq(f.opened + f.served + f.torn_down, 0);
}
END_TEST

START_TEST(main_open_einval_is_2_other_errors_1)
{
    char *argv[] = {"testd", "--log-level", "error"};
    struct fake f = {.open_rc = UC_EINVAL};
    ck_assert_int_eq(run_main(&spec, &f, 3, argv), UC_EXIT_CONFIG);
    ck_assert_int_eq(f.served, 0);
    ck_assert_int_eq(f.torn_down, 1);
    f = (struct fake){.open_rc = UC_EIO};
    ck_assert_int_eq(run_main(&spec, &f, 3, argv), UC_EXIT_FAILURE);
    ck_assert_int_eq(f.served, 0);
    ck_assert_int_eq(f.torn_down, 1);
}
END_TEST

START_TEST(main_config_error_hook_decides_what_is_2)
{
    struct uc_daemon_spec sp = spec;
    sp.config_error = eio_is_config;
    char *argv[] = {"testd", "--log-level", "error"};
    struct fake f = {.open_rc = UC_EIO};
    ck_assert_int_eq(run_main(&sp, &f, 3, argv), UC_EXIT_CONFIG);
    f = (struct fake){.open_rc = UC_EINVAL};
    ck_assert_int_eq(run_main(&sp, &f, 3, argv), UC_EXIT_FAILURE);
    ck_assert_int_eq(f.torn_down, 1);
}
END_TEST

START_TEST(main_open_stopped_is_0_without_serving)
{
    struct fake f = {.open_rc = 1};
    char *argv[] = {"testd", "--log-level", "error"};
    ck_assert_int_eq(run_main(&spec, &f, 3, argv), 0);
    ck_assert_int_eq(f.served, 0);
    ck_assert_int_eq(f.torn_down, 1);
}
END_TEST

START_TEST(main_serve_failure_is_1_and_tears_down)
{
    /* UC_EINVAL too: a server that cannot start is not a bad option */
    struct fake f = {.serve_rc = UC_EINVAL};
    char *argv[] = {"testd", "--log-level", "error"};
    ck_assert_int_eq(run_main(&spec, &f, 3, argv), UC_EXIT_FAILURE);
    ck_assert_int_eq(f.served, 1);
    ck_assert_int_eq(f.torn_down, 1);
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
    TCase *tm = tcase_create("uc_daemon_main");
    tcase_add_test(tm, main_serves_and_tears_down);
    tcase_add_test(tm, main_help_is_0_and_opens_nothing);
    tcase_add_test(tm, main_bad_option_is_2_and_opens_nothing);
    tcase_add_test(tm, main_open_einval_is_2_other_errors_1);
    tcase_add_test(tm, main_config_error_hook_decides_what_is_2);
    tcase_add_test(tm, main_open_stopped_is_0_without_serving);
    tcase_add_test(tm, main_serve_failure_is_1_and_tears_down);
    suite_add_tcase(s, tm);
    return uc_check_run(s);
}
