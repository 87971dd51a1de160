/* uc_check.h - the one way a Check test binary runs its suite: every test
 * main() ends with `return uc_check_run(suite)`. Header-only, tests only. */
#ifndef UC_CHECK_H
#define UC_CHECK_H
#include <check.h>

/* Run `s` (the runner takes ownership of it) and answer the exit code:
 * 0 when every check passed, 1 otherwise. */
static inline int uc_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

/* A new test case named `name` whose every test runs between `setup` and
 * `teardown` (a checked fixture: run in the test's own process). */
static inline TCase *uc_check_tcase(const char *name, void (*setup)(void), void (*teardown)(void))
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

#endif /* UC_CHECK_H */
