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

#endif /* UC_CHECK_H */
