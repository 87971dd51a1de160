/* test_config.c - option precedence (flag > env > file > default), every
 * error message, the generated --help, and reading small files. */
#include <check.h>

#include "uc_check.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uc/alloc.h"
#include "uc/config.h"

struct cfg {
    char *bind;
    int64_t port;
    bool debug;
    char *token;
    int64_t workers;
};

static const struct uc_config_opt opts[] = {
    {"bind-addr", UC_CFG_STRING, offsetof(struct cfg, bind), "127.0.0.1", 0, 0, false,
     "Address the API listens on."},
    {"listen-port", UC_CFG_INT, offsetof(struct cfg, port), "7100", 1, 65535, false,
     "Port the API listens on."},
    {"debug", UC_CFG_BOOL, offsetof(struct cfg, debug), "false", 0, 0, false, "Log debug lines."},
    {"admin-token", UC_CFG_STRING, offsetof(struct cfg, token), NULL, 0, 0, true,
     "Bootstrap admin token."},
    {"workers", UC_CFG_INT, offsetof(struct cfg, workers), NULL, 0, 0, false, "Worker threads."},
    {NULL},
};

static const char *const env_vars[] = {
    "UC_TEST_SVC_BIND_ADDR",   "UC_TEST_SVC_LISTEN_PORT", "UC_TEST_SVC_DEBUG",
    "UC_TEST_SVC_ADMIN_TOKEN", "UC_TEST_SVC_WORKERS",     "UC_TEST_SVC_CONFIG",
};

static char file_path[64];
static struct cfg c;
static char err[UC_ERR_LEN];

static void setup(void)
{
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        ck_assert_int_eq(unsetenv(env_vars[i]), 0);
    memset(&c, 0, sizeof(c));
    err[0] = '\0';
    file_path[0] = '\0';
}

static void teardown(void)
{
    uc_config_free(&c, opts);
    if (file_path[0])
        ck_assert_int_eq(unlink(file_path), 0);
}

/* Write `text` to a new temporary file whose name lands in file_path. */
static void write_file(const char *text)
{
    snprintf(file_path, sizeof(file_path), "/tmp/test_config_XXXXXX");
    int fd = mkstemp(file_path);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    ck_assert_int_eq(close(fd), 0);
}

/* Run uc_config_load on a NULL-terminated argument list (argv[0] added). */
static int load_args(const char *const *args)
{
    char *argv[16] = {"test-svc"};
    int argc = 1;
    for (; args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    return uc_config_load(&c, opts, "test-svc", argc, argv, err);
}

#define LOAD(...) load_args((const char *const[]){__VA_ARGS__, NULL})

static void assert_fails(int rc, const char *msg)
{
    ck_assert_int_eq(rc, UC_EINVAL);
    ck_assert_str_eq(err, msg);
    ck_assert_ptr_null(c.bind);
    ck_assert_ptr_null(c.token);
}

START_TEST(defaults_apply_when_nothing_else_is_set)
{
    ck_assert_int_eq(LOAD("--admin-token", "t0"), 0);
    ck_assert_str_eq(c.bind, "127.0.0.1");
    ck_assert_int_eq(c.port, 7100);
    ck_assert(!c.debug);
    ck_assert_str_eq(c.token, "t0");
    ck_assert_int_eq(c.workers, 0);
}
END_TEST

START_TEST(file_beats_default)
{
    write_file("{\"listen_port\": 7200, \"debug\": true, \"bind_addr\": \"0.0.0.0\","
               " \"admin_token\": \"from-file\", \"workers\": -3}");
    ck_assert_int_eq(LOAD("--config", file_path), 0);
    ck_assert_int_eq(c.port, 7200);
    ck_assert(c.debug);
    ck_assert_str_eq(c.bind, "0.0.0.0");
    ck_assert_str_eq(c.token, "from-file");
    ck_assert_int_eq(c.workers, -3);
}
END_TEST

START_TEST(env_beats_file)
{
    write_file("{\"listen_port\": 7200, \"admin_token\": \"from-file\"}");
    ck_assert_int_eq(setenv("UC_TEST_SVC_LISTEN_PORT", "7300", 1), 0);
    ck_assert_int_eq(setenv("UC_TEST_SVC_DEBUG", "yes", 1), 0);
    ck_assert_int_eq(setenv("UC_TEST_SVC_CONFIG", file_path, 1), 0);
    ck_assert_int_eq(LOAD("--bind-addr=::1"), 0);
    ck_assert_int_eq(c.port, 7300);
    ck_assert(c.debug);
    ck_assert_str_eq(c.token, "from-file");
    ck_assert_str_eq(c.bind, "::1");
}
END_TEST

START_TEST(flag_beats_env)
{
    ck_assert_int_eq(setenv("UC_TEST_SVC_LISTEN_PORT", "7300", 1), 0);
    ck_assert_int_eq(setenv("UC_TEST_SVC_ADMIN_TOKEN", "from-env", 1), 0);
    ck_assert_int_eq(setenv("UC_TEST_SVC_DEBUG", "true", 1), 0);
    ck_assert_int_eq(LOAD("--listen-port", "7400", "--admin-token=from-flag", "--debug=no"), 0);
    ck_assert_int_eq(c.port, 7400);
    ck_assert_str_eq(c.token, "from-flag");
    ck_assert(!c.debug);
}
END_TEST

START_TEST(flag_forms_and_last_one_wins)
{
    ck_assert_int_eq(LOAD("--debug", "--admin-token", "a", "--admin-token=b", "--workers", "-4"),
                     0);
    ck_assert(c.debug);
    ck_assert_str_eq(c.token, "b");
    ck_assert_int_eq(c.workers, -4);
}
END_TEST

START_TEST(bool_values_are_case_insensitive_words)
{
    ck_assert_int_eq(LOAD("--admin-token=t", "--debug=TRUE"), 0);
    ck_assert(c.debug);
    uc_config_free(&c, opts);
    ck_assert_int_eq(LOAD("--admin-token=t", "--debug=0"), 0);
    ck_assert(!c.debug);
}
END_TEST

START_TEST(bounds_are_inclusive)
{
    ck_assert_int_eq(LOAD("--admin-token=t", "--listen-port=1"), 0);
    ck_assert_int_eq(c.port, 1);
    uc_config_free(&c, opts);
    ck_assert_int_eq(LOAD("--admin-token=t", "--listen-port=65535"), 0);
    ck_assert_int_eq(c.port, 65535);
    uc_config_free(&c, opts);
    const char *msg = "--listen-port: must be an integer from 1 to 65535 (got '0')";
    assert_fails(LOAD("--admin-token=t", "--listen-port=0"), msg);
    msg = "--listen-port: must be an integer from 1 to 65535 (got '65536')";
    assert_fails(LOAD("--admin-token=t", "--listen-port=65536"), msg);
}
END_TEST

START_TEST(bad_numbers_are_rejected_strictly)
{
    assert_fails(LOAD("--admin-token=t", "--listen-port", "abc"),
                 "--listen-port: must be an integer from 1 to 65535 (got 'abc')");
    static const char *const bad[] = {"80x", "+80", " 80", "", "8 0", "0x50"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char arg[64];
        snprintf(arg, sizeof(arg), "--listen-port=%s", bad[i]);
        ck_assert_msg(LOAD("--admin-token=t", arg) == UC_EINVAL, "accepted '%s'", bad[i]);
    }
    assert_fails(LOAD("--admin-token=t", "--workers=99999999999999999999"),
                 "--workers: must be an integer (got '99999999999999999999')");
}
END_TEST

START_TEST(bad_bool_is_rejected)
{
    assert_fails(LOAD("--admin-token=t", "--debug=maybe"),
                 "--debug: must be true or false (got 'maybe')");
}
END_TEST

START_TEST(env_errors_name_the_variable)
{
    ck_assert_int_eq(setenv("UC_TEST_SVC_LISTEN_PORT", "http", 1), 0);
    assert_fails(LOAD("--admin-token=t"),
                 "UC_TEST_SVC_LISTEN_PORT: must be an integer from 1 to 65535 (got 'http')");
}
END_TEST

START_TEST(unknown_flags_and_positionals_are_rejected)
{
    assert_fails(LOAD("--admin-token=t", "--listen-prot=80"),
                 "unknown option '--listen-prot' (see --help)");
    assert_fails(LOAD("--admin-token=t", "extra"),
                 "unexpected argument 'extra' (options start with --)");
    assert_fails(LOAD("-p", "80"), "unexpected argument '-p' (options start with --)");
    assert_fails(LOAD("--"), "unexpected argument '--' (options start with --)");
}
END_TEST

START_TEST(missing_flag_value_is_rejected)
{
    assert_fails(LOAD("--admin-token"), "--admin-token: needs a value");
    assert_fails(LOAD("--admin-token", "--debug"), "--admin-token: needs a value");
    assert_fails(LOAD("--config"), "--config: needs a value");
}
END_TEST

START_TEST(missing_required_option_is_named)
{
    assert_fails(LOAD("--debug"), "--admin-token is required (or set UC_TEST_SVC_ADMIN_TOKEN, or "
                                  "\"admin_token\" in the config file)");
}
END_TEST

START_TEST(file_errors_name_the_file_and_key)
{
    char msg[UC_ERR_LEN];
    write_file("{\"admin_token\": \"t\", \"listen_port\": \"80\"}");
    snprintf(msg, sizeof(msg), "%s: listen_port: must be an integer from 1 to 65535 (got a string)",
             file_path);
    assert_fails(LOAD("--config", file_path), msg);
    ck_assert_int_eq(unlink(file_path), 0);

    write_file("{\"admin_token\": 5}");
    snprintf(msg, sizeof(msg), "%s: admin_token: must be a string (got a number)", file_path);
    assert_fails(LOAD("--config", file_path), msg);
    ck_assert_int_eq(unlink(file_path), 0);

    write_file("{\"admin_token\": \"t\", \"debug\": \"true\"}");
    snprintf(msg, sizeof(msg), "%s: debug: must be true or false (got a string)", file_path);
    assert_fails(LOAD("--config", file_path), msg);
    ck_assert_int_eq(unlink(file_path), 0);

    write_file("{\"admin_token\": \"t\", \"listen_port\": 70000}");
    snprintf(msg, sizeof(msg), "%s: listen_port: must be an integer from 1 to 65535 (got 70000)",
             file_path);
    assert_fails(LOAD("--config", file_path), msg);
}
END_TEST

START_TEST(file_unknown_keys_are_rejected)
{
    char msg[UC_ERR_LEN];
    write_file("{\"admin_token\": \"t\", \"listen-port\": 80}");
    snprintf(msg, sizeof(msg), "%s: unknown key 'listen-port'", file_path);
    assert_fails(LOAD("--config", file_path), msg);
}
END_TEST

START_TEST(file_must_be_a_json_object)
{
    char msg[UC_ERR_LEN];
    write_file("[1]");
    snprintf(msg, sizeof(msg), "%s: must hold a JSON object", file_path);
    assert_fails(LOAD("--config", file_path), msg);
    ck_assert_int_eq(unlink(file_path), 0);
    write_file("{\"admin_token\": }");
    ck_assert_int_eq(LOAD("--config", file_path), UC_EINVAL);
    snprintf(msg, sizeof(msg), "%s: invalid JSON at line 1, column ", file_path);
    ck_assert_msg(strncmp(err, msg, strlen(msg)) == 0, "got: %s", err);
}
END_TEST

START_TEST(missing_config_file_is_reported)
{
    ck_assert_int_eq(setenv("UC_TEST_SVC_CONFIG", "/nonexistent/uc.json", 1), 0);
    ck_assert_int_eq(LOAD("--admin-token=t"), UC_ENOENT);
    ck_assert_str_eq(err, "cannot read '/nonexistent/uc.json': no such file");
    ck_assert_ptr_null(c.token);
}
END_TEST

START_TEST(failure_leaves_target_untouched)
{
    struct cfg before;
    memset(&c, 0xa5, sizeof(c));
    memcpy(&before, &c, sizeof(c));
    ck_assert_int_eq(LOAD("--bind-addr=x", "--listen-port=80"), UC_EINVAL);
    ck_assert_int_eq(memcmp(&before, &c, sizeof(c)), 0);
    memset(&c, 0, sizeof(c));
}
END_TEST

START_TEST(out_of_memory_is_clean_at_every_step)
{
    int rc = UC_ENOMEM;
    for (long n = 0; rc == UC_ENOMEM && n < 100; n++) {
        uc_alloc_fail_after(n);
        rc = LOAD("--admin-token=t", "--bind-addr=b");
        uc_alloc_fail_after(-1);
        if (rc == UC_ENOMEM) {
            ck_assert_ptr_null(c.bind);
            ck_assert_ptr_null(c.token);
        }
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(c.bind, "b");
}
END_TEST

/* Run `fn` with stdout captured into buf. */
static int capture_stdout(char *buf, size_t len, int (*fn)(void))
{
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    ck_assert_int_eq(fflush(stdout), 0);
    int saved = dup(STDOUT_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fileno(tmp), STDOUT_FILENO), 0);
    int rc = fn();
    ck_assert_int_eq(fflush(stdout), 0);
    ck_assert_int_ge(dup2(saved, STDOUT_FILENO), 0);
    ck_assert_int_eq(close(saved), 0);
    rewind(tmp);
    size_t n = fread(buf, 1, len - 1, tmp);
    buf[n] = '\0';
    ck_assert_int_eq(fclose(tmp), 0);
    return rc;
}

static int load_help(void) { return LOAD("--listen-port=abc", "--help"); }
static int load_h(void) { return LOAD("-h"); }

START_TEST(help_prints_usage_and_returns_ehelp)
{
    char out[4096];
    ck_assert_int_eq(capture_stdout(out, sizeof(out), load_help), UC_EHELP);
    ck_assert_ptr_nonnull(strstr(out, "Usage: test-svc [OPTIONS]"));
    ck_assert_ptr_nonnull(strstr(out, "--listen-port N"));
    ck_assert_ptr_null(c.bind);
    ck_assert_int_eq(capture_stdout(out, sizeof(out), load_h), UC_EHELP);
    ck_assert_ptr_nonnull(strstr(out, "--help"));
}
END_TEST

static int check_good(void) { return LOAD("--check-config", "--admin-token=t", "--debug"); }
static int check_bad(void) { return LOAD("--check-config", "--listen-port=0", "--admin-token=t"); }
static int check_missing(void) { return LOAD("--check-config"); }

START_TEST(check_config_reports_ok_and_writes_nothing)
{
    char out[256];
    ck_assert_int_eq(capture_stdout(out, sizeof(out), check_good), UC_EHELP);
    ck_assert_str_eq(out, "config ok\n");
    ck_assert_ptr_null(c.token);
    ck_assert_ptr_null(c.bind);
    ck_assert(!c.debug);
}
END_TEST

START_TEST(check_config_fails_like_a_normal_start)
{
    char out[256];
    ck_assert_int_eq(capture_stdout(out, sizeof(out), check_bad), UC_EINVAL);
    ck_assert_str_eq(out, "");
    ck_assert_str_eq(err, "--listen-port: must be an integer from 1 to 65535 (got '0')");
    ck_assert_int_eq(capture_stdout(out, sizeof(out), check_missing), UC_EINVAL);
    ck_assert_str_eq(out, "");
    ck_assert_str_eq(err, "--admin-token is required (or set UC_TEST_SVC_ADMIN_TOKEN, or "
                          "\"admin_token\" in the config file)");
}
END_TEST

START_TEST(check_config_reads_the_file)
{
    char out[256];
    write_file("{\"admin_token\": \"t\", \"listen_port\": 7300}");
    ck_assert_int_eq(setenv("UC_TEST_SVC_CONFIG", file_path, 1), 0);
    ck_assert_int_eq(capture_stdout(out, sizeof(out), check_missing), UC_EHELP);
    ck_assert_str_eq(out, "config ok\n");
    ck_assert_int_eq(unlink(file_path), 0);
    write_file("{\"admin_token\": \"t\", \"advertise_url\": \"x\"}");
    ck_assert_int_eq(setenv("UC_TEST_SVC_CONFIG", file_path, 1), 0);
    ck_assert_int_eq(capture_stdout(out, sizeof(out), check_missing), UC_EINVAL);
    ck_assert_str_eq(out, "");
    ck_assert_ptr_nonnull(strstr(err, ": unknown key 'advertise_url'"));
}
END_TEST

START_TEST(check_config_takes_no_value)
{
    ck_assert_int_eq(LOAD("--check-config=yes", "--admin-token=t"), UC_EINVAL);
    ck_assert_str_eq(err, "--check-config: takes no value");
    ck_assert_ptr_null(c.token);
}
END_TEST

START_TEST(usage_lists_flag_env_default_and_help)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    uc_config_usage(opts, "test-svc", f);
    ck_assert_int_eq(fclose(f), 0);
    const char *want[] = {
        "  --listen-port N                env UC_TEST_SVC_LISTEN_PORT, default 7100\n"
        "      Port the API listens on. (1 to 65535)\n",
        "  --bind-addr TEXT               env UC_TEST_SVC_BIND_ADDR, default 127.0.0.1\n"
        "      Address the API listens on.\n",
        "  --debug[=BOOL]                 env UC_TEST_SVC_DEBUG, default false\n",
        "  --admin-token TEXT             env UC_TEST_SVC_ADMIN_TOKEN, required\n"
        "      Bootstrap admin token.\n",
        "  --workers N                    env UC_TEST_SVC_WORKERS\n",
        "  --config FILE                  env UC_TEST_SVC_CONFIG\n",
        "  --check-config\n",
        "  -h, --help",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(buf, want[i]) != NULL, "missing:\n%s\nin:\n%s", want[i], buf);
    free(buf); /* open_memstream allocates with malloc */
}
END_TEST

/* --- uc_config_read_file ------------------------------------------------- */

START_TEST(read_file_returns_whole_contents)
{
    write_file("secret\n");
    char *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(uc_config_read_file(file_path, 7, &data, &len, err), 0);
    ck_assert_uint_eq(len, 7);
    ck_assert_str_eq(data, "secret\n");
    uc_free(data);
}
END_TEST

START_TEST(read_file_refuses_files_over_max)
{
    write_file("12345678");
    char *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(uc_config_read_file(file_path, 7, &data, &len, err), UC_E2BIG);
    ck_assert_ptr_null(data);
    char msg[UC_ERR_LEN];
    snprintf(msg, sizeof(msg), "%s: larger than 7 bytes", file_path);
    ck_assert_str_eq(err, msg);
}
END_TEST

START_TEST(read_file_caps_streams_without_a_size)
{
    char *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(uc_config_read_file("/dev/zero", 10000, &data, &len, err), UC_E2BIG);
    ck_assert_str_eq(err, "/dev/zero: larger than 10000 bytes");
    ck_assert_int_eq(uc_config_read_file("/dev/null", 10, &data, &len, err), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(data, "");
    uc_free(data);
}
END_TEST

START_TEST(read_file_reports_missing_file_and_directory)
{
    char *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(uc_config_read_file("/nonexistent/key.pem", 10, &data, &len, err), UC_ENOENT);
    ck_assert_str_eq(err, "cannot read '/nonexistent/key.pem': no such file");
    ck_assert_int_eq(uc_config_read_file("/tmp", 10, &data, &len, err), UC_EIO);
    ck_assert_str_eq(err, "cannot read '/tmp': is a directory");
    ck_assert_ptr_null(data);
}
END_TEST

START_TEST(read_file_out_of_memory)
{
    write_file("abc");
    char *data = NULL;
    size_t len = 0;
    uc_alloc_fail_after(0);
    int rc = uc_config_read_file(file_path, 10, &data, &len, err);
    uc_alloc_fail_after(-1);
    ck_assert_int_eq(rc, UC_ENOMEM);
    ck_assert_ptr_null(data);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = uc_check_tcase("load", setup, teardown);
    tcase_add_test(tc, defaults_apply_when_nothing_else_is_set);
    tcase_add_test(tc, file_beats_default);
    tcase_add_test(tc, env_beats_file);
    tcase_add_test(tc, flag_beats_env);
    tcase_add_test(tc, flag_forms_and_last_one_wins);
    tcase_add_test(tc, bool_values_are_case_insensitive_words);
    tcase_add_test(tc, bounds_are_inclusive);
    tcase_add_test(tc, bad_numbers_are_rejected_strictly);
    tcase_add_test(tc, bad_bool_is_rejected);
    tcase_add_test(tc, env_errors_name_the_variable);
    tcase_add_test(tc, unknown_flags_and_positionals_are_rejected);
    tcase_add_test(tc, missing_flag_value_is_rejected);
    tcase_add_test(tc, missing_required_option_is_named);
    tcase_add_test(tc, file_errors_name_the_file_and_key);
    tcase_add_test(tc, file_unknown_keys_are_rejected);
    tcase_add_test(tc, file_must_be_a_json_object);
    tcase_add_test(tc, missing_config_file_is_reported);
    tcase_add_test(tc, failure_leaves_target_untouched);
    tcase_add_test(tc, out_of_memory_is_clean_at_every_step);
    tcase_add_test(tc, help_prints_usage_and_returns_ehelp);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("check_config", setup, teardown);
    tcase_add_test(tc, check_config_reports_ok_and_writes_nothing);
    tcase_add_test(tc, check_config_fails_like_a_normal_start);
    tcase_add_test(tc, check_config_reads_the_file);
    tcase_add_test(tc, check_config_takes_no_value);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("usage", setup, teardown);
    tcase_add_test(tc, usage_lists_flag_env_default_and_help);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("read_file", setup, teardown);
    tcase_add_test(tc, read_file_returns_whole_contents);
    tcase_add_test(tc, read_file_refuses_files_over_max);
    tcase_add_test(tc, read_file_caps_streams_without_a_size);
    tcase_add_test(tc, read_file_reports_missing_file_and_directory);
    tcase_add_test(tc, read_file_out_of_memory);
    suite_add_tcase(s, tc);
    return uc_check_run(s);
}
