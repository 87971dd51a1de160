/* test_ratelimit.c - per-subject token buckets on a manual clock. */
#include <check.h>

#include "uc_check.h"
#include <stdio.h>

#include "../ratelimit.h"

static struct uc_clock_manual clk;
static struct iam_ratelimit *rl;

static void setup(void)
{
    uc_clock_manual_init(&clk, 1000000);
    ck_assert_int_eq(iam_ratelimit_create(&rl, 30, 64, &clk.clock), 0);
}

static void teardown(void) { iam_ratelimit_destroy(rl); }

/* Take `n` attempts and return how many were allowed. */
static int take_n(const char *key, int n)
{
    int ok = 0;
    int64_t retry = 0;
    for (int i = 0; i < n; i++)
        ok += iam_ratelimit_take(rl, key, &retry) == 0;
    return ok;
}

START_TEST(burst_of_rate_is_allowed_then_refused)
{
    int64_t retry = 0;
    ck_assert_int_eq(take_n("u:alice", 30), 30);
    ck_assert_int_eq(iam_ratelimit_take(rl, "u:alice", &retry), UC_ERATE);
    /* 30 per minute refills one attempt every 2 s. */
    ck_assert_int_eq(retry, 2);
}
END_TEST

START_TEST(refills_evenly_over_a_minute)
{
    int64_t retry = 0;
    ck_assert_int_eq(take_n("u:alice", 30), 30);
    uc_clock_manual_advance(&clk, 1999);
    ck_assert_int_eq(iam_ratelimit_take(rl, "u:alice", &retry), UC_ERATE);
    ck_assert_int_eq(retry, 1);
    uc_clock_manual_advance(&clk, 1);
    ck_assert_int_eq(iam_ratelimit_take(rl, "u:alice", &retry), 0);
    ck_assert_int_eq(iam_ratelimit_take(rl, "u:alice", &retry), UC_ERATE);
    uc_clock_manual_advance(&clk, 60000);
    ck_assert_int_eq(take_n("u:alice", 40), 30); /* never more than a full bucket */
}
END_TEST

START_TEST(keys_are_independent)
{
    int64_t retry = 0;
    ck_assert_int_eq(take_n("u:alice", 30), 30);
    ck_assert_int_eq(iam_ratelimit_take(rl, "u:bob", &retry), 0);
    ck_assert_int_eq(iam_ratelimit_take(rl, "k:alice", &retry), 0);
    ck_assert_int_eq(iam_ratelimit_take(rl, "u:alice", &retry), UC_ERATE);
}
END_TEST

START_TEST(many_keys_stay_within_the_table)
{
    char key[32];
    int64_t retry = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "u:user%d", i);
        ck_assert_int_eq(iam_ratelimit_take(rl, key, &retry), 0);
        uc_clock_manual_advance(&clk, 1);
    }
    /* A key pushed out of the table starts again with a full bucket. */
    ck_assert_int_eq(take_n("u:user0", 30), 30);
}
END_TEST

START_TEST(create_rejects_a_bad_rate)
{
    struct iam_ratelimit *r = NULL;
    ck_assert_int_eq(iam_ratelimit_create(&r, 0, 64, NULL), UC_EINVAL);
    ck_assert_int_eq(iam_ratelimit_create(&r, 1000001, 64, NULL), UC_EINVAL);
    ck_assert_ptr_null(r);
}
END_TEST

START_TEST(slow_rate_reports_long_retry)
{
    struct iam_ratelimit *r = NULL;
    int64_t retry = 0;
    ck_assert_int_eq(iam_ratelimit_create(&r, 1, 64, &clk.clock), 0);
    ck_assert_int_eq(iam_ratelimit_take(r, "k:x", &retry), 0);
    ck_assert_int_eq(iam_ratelimit_take(r, "k:x", &retry), UC_ERATE);
    ck_assert_int_eq(retry, 60);
    uc_clock_manual_advance(&clk, 45000);
    ck_assert_int_eq(iam_ratelimit_take(r, "k:x", &retry), UC_ERATE);
    ck_assert_int_eq(retry, 15);
    iam_ratelimit_destroy(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *take = tcase_create("take");
    tcase_add_checked_fixture(take, setup, teardown);
    tcase_add_test(take, burst_of_rate_is_allowed_then_refused);
    tcase_add_test(take, refills_evenly_over_a_minute);
    tcase_add_test(take, keys_are_independent);
    tcase_add_test(take, many_keys_stay_within_the_table);
    tcase_add_test(take, slow_rate_reports_long_retry);
    suite_add_tcase(s, take);
    TCase *create = tcase_create("create");
    tcase_add_test(create, create_rejects_a_bad_rate);
    suite_add_tcase(s, create);
    return uc_check_run(s);
}
