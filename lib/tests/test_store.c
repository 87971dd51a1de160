/* test_store.c - conformance suite for uc/store.h. Runs against the store
 * named by UC_STORE_TEST_URL (each test under its own key prefix), else
 * against a fresh "sqlite:" file per test; the "sqlite" TCase adds checks on
 * the SQLite file itself. */
#include <check.h>

#include "uc_check.h"
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "uc/alloc.h"
#include "uc/store.h"

static char url[PATH_MAX + 16];
static char tmpdir[PATH_MAX];
static char prefix[96]; /* unique per test, so a shared store stays usable */
static struct uc_store *st;
static char err[UC_ERR_LEN];
static unsigned test_seq;

/* --- fixture and helpers ------------------------------------------------------ */

static void setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/uc-store-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    const char *env = getenv("UC_STORE_TEST_URL");
    if (env && *env)
        snprintf(url, sizeof(url), "%s", env);
    else
        snprintf(url, sizeof(url), "sqlite:%s/store.db", tmpdir);
    struct timespec ts;
    ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &ts), 0);
    snprintf(prefix, sizeof(prefix), "uctest/%ld.%lld.%ld.%u/", (long)getpid(),
             (long long)ts.tv_sec, ts.tv_nsec, test_seq++);
    err[0] = '\0';
    ck_assert_msg(uc_store_open(&st, url, err) == 0, "open %s: %s", url, err);
}

static void teardown(void)
{
    uc_store_close(st);
    st = NULL;
    uc_alloc_fail_after(-1);
    DIR *d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    char path[PATH_MAX + 256];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        ck_assert_int_eq(unlink(path), 0);
    }
    ck_assert_int_eq(closedir(d), 0);
    ck_assert_int_eq(rmdir(tmpdir), 0);
}

/* prefix + suffix, in one of 8 rotating buffers. */
static const char *K(const char *suffix)
{
    static char bufs[8][UC_STORE_MAX_KEY + 128];
    static unsigned next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof(bufs[0]), "%s%s", prefix, suffix);
    return b;
}

static bool local_sqlite(void) { return strncmp(url, "sqlite:", 7) == 0; }

static uint64_t put_str(const char *key, const char *val)
{
    uint64_t rev = 0;
    int rc = uc_store_put(st, key, val, strlen(val), UC_STORE_ANY, &rev, err);
    ck_assert_msg(rc == 0, "put %s: %d %s", key, rc, err);
    ck_assert_uint_gt(rev, 0);
    return rev;
}

/* Asserts `key` holds `val` and returns its revision. */
static uint64_t expect_str(const char *key, const char *val)
{
    struct uc_store_item it;
    int rc = uc_store_get(st, key, &it, err);
    ck_assert_msg(rc == 0, "get %s: %d %s", key, rc, err);
    ck_assert_str_eq(it.key, key);
    ck_assert_uint_eq(it.len, strlen(val));
    ck_assert_str_eq((const char *)it.val, val);
    uint64_t rev = it.rev;
    uc_store_item_clear(&it);
    return rev;
}

static void expect_missing(const char *key)
{
    struct uc_store_item it;
    ck_assert_int_eq(uc_store_get(st, key, &it, err), UC_ENOENT);
}

/* --- open, close, durability -------------------------------------------------- */

START_TEST(open_rejects_unknown_scheme_and_empty_location)
{
    struct uc_store *s2 = NULL;
    ck_assert_int_eq(uc_store_open(&s2, "nosuch:/x.db", err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "nosuch"));
    ck_assert_int_eq(uc_store_open(&s2, "/plain/path.db", err), UC_EINVAL);
    ck_assert_int_eq(uc_store_open(&s2, "sqlite:", err), UC_EINVAL);
    ck_assert_int_eq(uc_store_open(&s2, NULL, err), UC_EINVAL);
    ck_assert_ptr_null(s2);
}
END_TEST

START_TEST(open_reports_missing_directory)
{
    char u[PATH_MAX + 64];
    struct uc_store *s2 = NULL;
    snprintf(u, sizeof(u), "sqlite:%s/no-such-dir/x.db", tmpdir);
    err[0] = '\0';
    ck_assert_int_eq(uc_store_open(&s2, u, err), UC_EIO);
    ck_assert_ptr_null(s2);
    ck_assert_msg(strstr(err, "no-such-dir") && strstr(err, "No such file"), "%s", err);
}
END_TEST

START_TEST(open_creates_file_without_directory_part)
{
    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    ck_assert_int_eq(chdir(tmpdir), 0);
    struct uc_store *s2 = NULL;
    int rc = uc_store_open(&s2, "sqlite:plain.db", err);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(rc == 0, "%s", err);
    uint64_t rev = 0;
    ck_assert_int_eq(uc_store_put(s2, "k", "v", 1, UC_STORE_ANY, &rev, err), 0);
    ck_assert_uint_eq(rev, 1);
    uc_store_close(s2);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/plain.db", tmpdir);
    ck_assert_int_eq(access(path, F_OK), 0);
    /* "file:" is a plain file name, not an SQLite URI (which could say mode=memory) */
    ck_assert_int_eq(chdir(tmpdir), 0);
    rc = uc_store_open(&s2, "sqlite:file:u.db?mode=memory", err);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(rc == 0, "%s", err);
    uc_store_close(s2);
    snprintf(path, sizeof(path), "%s/file:u.db?mode=memory", tmpdir);
    ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

START_TEST(open_rejects_a_file_that_is_not_a_database)
{
    char path[PATH_MAX + 16], u[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/junk.db", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 200; i++)
        ck_assert_int_ge(fputs("this is not an sqlite database at all\n", f), 0);
    ck_assert_int_eq(fclose(f), 0);
    snprintf(u, sizeof(u), "sqlite:%s", path);
    struct uc_store *s2 = NULL;
    ck_assert_int_eq(uc_store_open(&s2, u, err), UC_EIO);
    ck_assert_ptr_null(s2);
    ck_assert_msg(strstr(err, "not a database") && strstr(err, "junk.db"), "%s", err);
}
END_TEST

START_TEST(open_without_memory_fails_cleanly)
{
    struct uc_store *s2 = NULL;
    int rc = UC_ENOMEM;
    for (long n = 0; rc == UC_ENOMEM && n < 100; n++) {
        uc_alloc_fail_after(n);
        rc = uc_store_open(&s2, url, err);
        uc_alloc_fail_after(-1);
        if (rc == UC_ENOMEM)
            ck_assert_ptr_null(s2);
    }
    ck_assert_msg(rc == 0, "%d %s", rc, err);
    uc_store_close(s2);
    uc_store_close(NULL); /* a no-op */
}
END_TEST

START_TEST(data_and_revision_survive_reopen)
{
    uint64_t r1 = put_str(K("a"), "one");
    uint64_t r2 = put_str(K("b"), "two");
    uc_store_close(st);
    st = NULL;
    ck_assert_msg(uc_store_open(&st, url, err) == 0, "%s", err);
    ck_assert_uint_eq(expect_str(K("a"), "one"), r1);
    ck_assert_uint_eq(expect_str(K("b"), "two"), r2);
    ck_assert_uint_eq(put_str(K("c"), "three"), r2 + 1);
}
END_TEST

/* --- get and put ------------------------------------------------------------- */

START_TEST(put_then_get_round_trips_binary_and_empty_values)
{
    static const uint8_t bin[] = {'a', 0, 'b', 0, 0xff, 0};
    struct uc_store_item it;
    ck_assert_int_eq(uc_store_put(st, K("bin"), bin, sizeof(bin), UC_STORE_ANY, NULL, err), 0);
    ck_assert_int_eq(uc_store_get(st, K("bin"), &it, err), 0);
    ck_assert_uint_eq(it.len, sizeof(bin));
    ck_assert_mem_eq(it.val, bin, sizeof(bin));
    ck_assert_uint_eq(it.val[it.len], 0);
    uc_store_item_clear(&it);
    ck_assert_ptr_null(it.key);
    uc_store_item_clear(&it); /* clearing twice is harmless */

    ck_assert_int_eq(uc_store_put(st, K("empty"), NULL, 0, UC_STORE_ANY, NULL, err), 0);
    ck_assert_int_eq(uc_store_put(st, K("empty2"), "", 0, UC_STORE_ANY, NULL, err), 0);
    ck_assert_int_eq(uc_store_get(st, K("empty"), &it, err), 0);
    ck_assert_uint_eq(it.len, 0);
    ck_assert_ptr_nonnull(it.val);
    ck_assert_uint_eq(it.val[0], 0);
    uc_store_item_clear(&it);
    expect_str(K("empty2"), "");
}
END_TEST

START_TEST(get_missing_key_is_enoent_and_leaves_item_untouched)
{
    struct uc_store_item it = {.key = (char *)"sentinel"};
    err[0] = '\0';
    ck_assert_int_eq(uc_store_get(st, K("missing"), &it, err), UC_ENOENT);
    ck_assert_str_eq(it.key, "sentinel");
    ck_assert_ptr_nonnull(strstr(err, K("missing")));
}
END_TEST

START_TEST(get_without_memory_fails_cleanly)
{
    put_str(K("k"), "some value");
    struct uc_store_item it = {0};
    int rc = UC_ENOMEM;
    for (long n = 0; rc == UC_ENOMEM && n < 100; n++) {
        uc_alloc_fail_after(n);
        rc = uc_store_get(st, K("k"), &it, err);
        uc_alloc_fail_after(-1);
        if (rc == UC_ENOMEM)
            ck_assert_ptr_null(it.key);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq((const char *)it.val, "some value");
    uc_store_item_clear(&it);
}
END_TEST

START_TEST(revisions_strictly_increase_across_writes)
{
    uint64_t prev = put_str(K("x"), "0");
    for (int i = 0; i < 20; i++) {
        uint64_t r = put_str(K(i % 2 ? "x" : "y"), "v");
        ck_assert_uint_gt(r, prev);
        prev = r;
    }
    ck_assert_int_eq(uc_store_delete(st, K("y"), UC_STORE_ANY, err), 0);
    ck_assert_uint_gt(put_str(K("x"), "after delete"), prev + 1);
}
END_TEST

START_TEST(put_with_matching_revision_succeeds_and_stale_one_conflicts)
{
    uint64_t r1 = put_str(K("cas"), "v1"), r2 = 0;
    ck_assert_int_eq(uc_store_put(st, K("cas"), "v2", 2, r1, &r2, err), 0);
    ck_assert_uint_gt(r2, r1);
    uint64_t untouched = 77;
    err[0] = '\0';
    ck_assert_int_eq(uc_store_put(st, K("cas"), "v3", 2, r1, &untouched, err), UC_ECONFLICT);
    ck_assert_uint_eq(untouched, 77);
    ck_assert_msg(strstr(err, K("cas")) != NULL, "error names the key: %s", err);
    ck_assert_uint_eq(expect_str(K("cas"), "v2"), r2);
    /* a revision on a missing key conflicts too */
    ck_assert_int_eq(uc_store_put(st, K("nokey"), "v", 1, r1, NULL, err), UC_ECONFLICT);
    expect_missing(K("nokey"));
}
END_TEST

START_TEST(put_absent_creates_only_once)
{
    uint64_t r = 0;
    ck_assert_int_eq(uc_store_put(st, K("once"), "first", 5, UC_STORE_ABSENT, &r, err), 0);
    ck_assert_int_eq(uc_store_put(st, K("once"), "second", 6, UC_STORE_ABSENT, NULL, err),
                     UC_ECONFLICT);
    ck_assert_uint_eq(expect_str(K("once"), "first"), r);
    ck_assert_int_eq(uc_store_delete(st, K("once"), UC_STORE_ANY, err), 0);
    ck_assert_int_eq(uc_store_put(st, K("once"), "third", 5, UC_STORE_ABSENT, NULL, err), 0);
    expect_str(K("once"), "third");
}
END_TEST

START_TEST(failed_write_consumes_no_revision)
{
    uint64_t r1 = put_str(K("a"), "1");
    ck_assert_int_eq(uc_store_put(st, K("a"), "2", 1, UC_STORE_ABSENT, NULL, err), UC_ECONFLICT);
    ck_assert_int_eq(uc_store_delete(st, K("a"), r1 + 100, err), UC_ECONFLICT);
    ck_assert_int_eq(uc_store_delete(st, K("gone"), UC_STORE_ANY, err), UC_ENOENT);
    ck_assert_int_eq(uc_store_put(st, "", "2", 1, UC_STORE_ANY, NULL, err), UC_EINVAL);
    ck_assert_uint_eq(put_str(K("b"), "3"), r1 + 1);
}
END_TEST

START_TEST(invalid_keys_are_rejected_with_a_message)
{
    char big[UC_STORE_MAX_KEY + 2];
    struct uc_store_item it;
    struct uc_store_op op = {UC_STORE_OP_PUT, "", "v", 1, UC_STORE_ANY};
    err[0] = '\0';
    ck_assert_int_eq(uc_store_put(st, "", "v", 1, UC_STORE_ANY, NULL, err), UC_EINVAL);
    ck_assert_str_ne(err, "");
    ck_assert_int_eq(uc_store_put(st, NULL, "v", 1, UC_STORE_ANY, NULL, err), UC_EINVAL);
    ck_assert_int_eq(uc_store_get(st, "", &it, err), UC_EINVAL);
    ck_assert_int_eq(uc_store_delete(st, "", UC_STORE_ANY, err), UC_EINVAL);
    ck_assert_int_eq(uc_store_txn(st, &op, 1, NULL, err), UC_EINVAL);
    /* exactly UC_STORE_MAX_KEY bytes is fine, one more is not */
    size_t plen = strlen(prefix);
    memcpy(big, prefix, plen);
    memset(big + plen, 'k', sizeof(big) - plen);
    big[UC_STORE_MAX_KEY] = '\0';
    ck_assert_msg(uc_store_put(st, big, "v", 1, UC_STORE_ANY, NULL, err) == 0, "%s", err);
    expect_str(big, "v");
    big[UC_STORE_MAX_KEY] = 'k';
    big[UC_STORE_MAX_KEY + 1] = '\0';
    err[0] = '\0';
    ck_assert_int_eq(uc_store_put(st, big, "v", 1, UC_STORE_ANY, NULL, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "1024"));
    ck_assert_int_eq(uc_store_get(st, big, &it, err), UC_EINVAL);
    /* a NULL value needs a zero length */
    ck_assert_int_eq(uc_store_put(st, K("v"), NULL, 3, UC_STORE_ANY, NULL, err), UC_EINVAL);
    expect_missing(K("v"));
}
END_TEST

struct counter_arg {
    const char *key;
    int done, conflicts, failures;
};

/* One CAS increment: read, then write back +1 if nobody else wrote. */
static int cas_increment(const char *key)
{
    struct uc_store_item it;
    char buf[32];
    uint64_t expect = UC_STORE_ABSENT;
    long v = 0;
    int rc = uc_store_get(st, key, &it, NULL);
    if (rc == 0) {
        v = strtol((const char *)it.val, NULL, 10);
        expect = it.rev;
        uc_store_item_clear(&it);
    } else if (rc != UC_ENOENT) {
        return rc;
    }
    int n = snprintf(buf, sizeof(buf), "%ld", v + 1);
    return uc_store_put(st, key, buf, (size_t)n, expect, NULL, NULL);
}

static void *counter_thread(void *p)
{
    struct counter_arg *a = p;
    while (a->done < 200 && a->failures == 0) {
        int rc = cas_increment(a->key);
        if (rc == 0)
            a->done++;
        else if (rc == UC_ECONFLICT)
            a->conflicts++;
        else
            a->failures++;
    }
    return NULL;
}

START_TEST(concurrent_cas_increments_lose_no_update)
{
    pthread_t th[4];
    struct counter_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct counter_arg){.key = K("counter")};
        ck_assert_int_eq(pthread_create(&th[i], NULL, counter_thread, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(args[i].failures, 0);
        ck_assert_int_eq(args[i].done, 200);
    }
    expect_str(K("counter"), "800");
}
END_TEST

/* --- delete ------------------------------------------------------------------ */

START_TEST(delete_without_check_removes_the_key)
{
    put_str(K("d"), "v");
    ck_assert_int_eq(uc_store_delete(st, K("d"), UC_STORE_ANY, err), 0);
    expect_missing(K("d"));
}
END_TEST

START_TEST(delete_checks_the_revision)
{
    uint64_t r1 = put_str(K("d"), "v1");
    uint64_t r2 = put_str(K("d"), "v2");
    err[0] = '\0';
    ck_assert_int_eq(uc_store_delete(st, K("d"), r1, err), UC_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(err, K("d")));
    ck_assert_int_eq(uc_store_delete(st, K("d"), UC_STORE_ABSENT, err), UC_ECONFLICT);
    ck_assert_uint_eq(expect_str(K("d"), "v2"), r2);
    ck_assert_int_eq(uc_store_delete(st, K("d"), r2, err), 0);
    expect_missing(K("d"));
}
END_TEST

START_TEST(delete_missing_key_is_enoent)
{
    ck_assert_int_eq(uc_store_delete(st, K("none"), UC_STORE_ANY, err), UC_ENOENT);
    ck_assert_int_eq(uc_store_delete(st, K("none"), 5, err), UC_ENOENT);
    ck_assert_int_eq(uc_store_delete(st, K("none"), UC_STORE_ABSENT, err), UC_ENOENT);
    put_str(K("d"), "v");
    ck_assert_int_eq(uc_store_delete(st, K("d"), UC_STORE_ANY, err), 0);
    ck_assert_int_eq(uc_store_delete(st, K("d"), UC_STORE_ANY, err), UC_ENOENT);
}
END_TEST

/* --- scan -------------------------------------------------------------------- */

/* Scans `pfx` and asserts the keys (suffixes after the test prefix) match. */
static void expect_scan(const char *pfx, const char *after, size_t limit, const char *const *want,
                        size_t nwant, bool want_more)
{
    struct uc_store_item *items = NULL;
    size_t n = 99;
    bool more = !want_more;
    int rc = uc_store_scan(st, pfx, after, limit, &items, &n, &more, err);
    ck_assert_msg(rc == 0, "scan: %s", err);
    ck_assert_uint_eq(n, nwant);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(items[i].key, K(want[i]));
    ck_assert(more == want_more);
    if (n == 0)
        ck_assert_ptr_null(items);
    uc_store_items_free(items, n);
}

START_TEST(scan_returns_prefix_keys_in_byte_order)
{
    static const char *const keys[] = {"a/b", "a/\xc3\xa9", "a/B", "a/", "a/\x7f", "a/a/z", "a/a"};
    static const char *const sorted[] = {"a/",  "a/B",    "a/a",       "a/a/z",
                                         "a/b", "a/\x7f", "a/\xc3\xa9"};
    for (size_t i = 0; i < 7; i++)
        put_str(K(keys[i]), keys[i]);
    expect_scan(K("a/"), NULL, 100, sorted, 7, false);
    struct uc_store_item *items = NULL;
    size_t n = 0;
    bool more = false;
    ck_assert_int_eq(uc_store_scan(st, K("a/a"), "", 10, &items, &n, &more, err), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq((const char *)items[1].val, "a/a/z");
    ck_assert_uint_eq(items[1].len, 5);
    ck_assert_uint_eq(items[1].rev, expect_str(K("a/a/z"), "a/a/z"));
    uc_store_items_free(items, n);
}
END_TEST

START_TEST(scan_prefix_stops_at_its_boundary)
{
    static const char *const keys[] = {"a", "a.", "a/", "a/x", "a/\xff", "a0", "b", "a/\xff\xff"};
    for (size_t i = 0; i < 8; i++)
        put_str(K(keys[i]), "v");
    static const char *const want[] = {"a/", "a/x", "a/\xff", "a/\xff\xff"};
    expect_scan(K("a/"), NULL, 100, want, 4, false);
    static const char *const want_b[] = {"b"};
    expect_scan(K("b"), NULL, 100, want_b, 1, false);
    expect_scan(K("c"), NULL, 100, NULL, 0, false);
}
END_TEST

START_TEST(scan_prefix_ending_in_ff_bytes)
{
    static const char *const keys[] = {"x\xfe",     "x\xff",      "x\xff\x01",
                                       "x\xff\xff", "x\xff\xff!", "y"};
    for (size_t i = 0; i < 6; i++)
        put_str(K(keys[i]), "v");
    static const char *const want[] = {"x\xff", "x\xff\x01", "x\xff\xff", "x\xff\xff!"};
    expect_scan(K("x\xff"), NULL, 100, want, 4, false);
    expect_scan(K("x\xff\xff"), NULL, 100, want + 2, 2, false);
    expect_scan(K("x\xff"), K("x\xff\x01"), 100, want + 2, 2, false);
}
END_TEST

/* Pages through `total` keys `limit` at a time, checking order and `more`. */
static void page_through(size_t total, size_t limit)
{
    char key[64], after[UC_STORE_MAX_KEY + 1] = "";
    size_t seen = 0, pages = 0;
    bool more = true;
    while (more) {
        struct uc_store_item *items = NULL;
        size_t n = 0;
        ck_assert_int_eq(uc_store_scan(st, K("p/"), after, limit, &items, &n, &more, err), 0);
        ck_assert_uint_le(n, limit);
        ck_assert(!more || n == limit);
        for (size_t i = 0; i < n; i++) {
            snprintf(key, sizeof(key), "p/%05zu", seen++);
            ck_assert_str_eq(items[i].key, K(key));
        }
        if (n)
            snprintf(after, sizeof(after), "%s", items[n - 1].key);
        uc_store_items_free(items, n);
        pages++;
    }
    ck_assert_uint_eq(seen, total);
    ck_assert_uint_eq(pages, (total + limit - 1) / limit);
}

START_TEST(scan_pages_with_after_and_more)
{
    char key[64];
    for (size_t i = 0; i < 250; i++) {
        snprintf(key, sizeof(key), "p/%05zu", i);
        put_str(K(key), key);
    }
    put_str(K("p0"), "outside"); /* just past the prefix */
    page_through(250, 7);
    page_through(250, 10); /* an exact multiple: the last full page says no more */
    page_through(250, 250);
    page_through(250, UC_STORE_MAX_SCAN);
    /* exactly `limit` left: more is false on that page */
    static const char *const last[] = {"p/00248", "p/00249"};
    expect_scan(K("p/"), K("p/00247"), 2, last, 2, false);
    expect_scan(K("p/"), K("p/00247"), 1, last, 1, true);
    expect_scan(K("p/"), K("p/00249"), 5, NULL, 0, false);
    /* `after` before the prefix starts at the prefix */
    static const char *const first[] = {"p/00000"};
    expect_scan(K("p/"), K("a"), 1, first, 1, true);
}
END_TEST

START_TEST(scan_limit_must_be_in_range)
{
    struct uc_store_item *items = (struct uc_store_item *)1;
    size_t n = 42;
    bool more = true;
    err[0] = '\0';
    ck_assert_int_eq(uc_store_scan(st, K(""), NULL, 0, &items, &n, &more, err), UC_EINVAL);
    ck_assert_str_ne(err, "");
    ck_assert_int_eq(uc_store_scan(st, K(""), NULL, UC_STORE_MAX_SCAN + 1, &items, &n, &more, err),
                     UC_EINVAL);
    ck_assert_ptr_eq(items, (struct uc_store_item *)1);
    ck_assert_uint_eq(n, 42);
    put_str(K("k"), "v");
    static const char *const want[] = {"k"};
    expect_scan(K(""), NULL, 1, want, 1, false);
    expect_scan(K(""), NULL, UC_STORE_MAX_SCAN, want, 1, false);
}
END_TEST

START_TEST(scan_without_memory_fails_cleanly)
{
    char key[32];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "m/%02d", i);
        put_str(K(key), "value");
    }
    struct uc_store_item *items = NULL;
    size_t n = 0;
    bool more = false;
    int rc = UC_ENOMEM;
    for (long f = 0; rc == UC_ENOMEM && f < 1000; f++) {
        uc_alloc_fail_after(f);
        rc = uc_store_scan(st, K("m/"), NULL, 30, &items, &n, &more, err);
        uc_alloc_fail_after(-1);
        if (rc == UC_ENOMEM)
            ck_assert_ptr_null(items);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(n, 30);
    ck_assert(more);
    ck_assert_ptr_nonnull(items);
    ck_assert_str_eq(items[29].key, K("m/29"));
    uc_store_items_free(items, n);
}
END_TEST

/* --- transactions ------------------------------------------------------------ */

START_TEST(txn_writes_share_one_revision)
{
    uint64_t before = put_str(K("c"), "old"), rev = 0;
    struct uc_store_op ops[] = {
        {UC_STORE_OP_PUT, K("a"), "1", 1, UC_STORE_ABSENT},
        {UC_STORE_OP_PUT, K("b"), "2", 1, UC_STORE_ANY},
        {UC_STORE_OP_DELETE, K("c"), NULL, 0, before},
        {UC_STORE_OP_CHECK, K("zz"), NULL, 0, UC_STORE_ABSENT},
    };
    ck_assert_msg(uc_store_txn(st, ops, 4, &rev, err) == 0, "%s", err);
    ck_assert_uint_eq(rev, before + 1);
    ck_assert_uint_eq(expect_str(K("a"), "1"), rev);
    ck_assert_uint_eq(expect_str(K("b"), "2"), rev);
    expect_missing(K("c"));
    ck_assert_uint_eq(put_str(K("d"), "next"), rev + 1);
}
END_TEST

START_TEST(txn_failing_check_applies_nothing)
{
    uint64_t rc_rev = put_str(K("c"), "c0");
    uint64_t ra = put_str(K("a"), "a0");
    uint64_t rev = 99;
    struct uc_store_op ops[] = {
        {UC_STORE_OP_PUT, K("a"), "a1", 2, ra},
        {UC_STORE_OP_PUT, K("b"), "b1", 2, UC_STORE_ANY},
        {UC_STORE_OP_DELETE, K("a"), NULL, 0, UC_STORE_ANY},
        {UC_STORE_OP_CHECK, K("c"), NULL, 0, rc_rev - 1},
        {UC_STORE_OP_PUT, K("d"), "d1", 2, UC_STORE_ANY},
    };
    err[0] = '\0';
    ck_assert_int_eq(uc_store_txn(st, ops, 5, &rev, err), UC_ECONFLICT);
    ck_assert_msg(strstr(err, K("c")) != NULL, "error names the key: %s", err);
    ck_assert_uint_eq(rev, 99);
    ck_assert_uint_eq(expect_str(K("a"), "a0"), ra);
    expect_missing(K("b"));
    expect_missing(K("d"));
    ck_assert_uint_eq(put_str(K("e"), "e"), ra + 1); /* no revision consumed */
}
END_TEST

START_TEST(txn_checks_see_the_store_before_the_txn)
{
    uint64_t rev = 0;
    struct uc_store_op ops[] = {
        {UC_STORE_OP_PUT, K("k"), "first", 5, UC_STORE_ABSENT},
        {UC_STORE_OP_CHECK, K("k"), NULL, 0, UC_STORE_ABSENT},
        {UC_STORE_OP_PUT, K("k"), "second", 6, UC_STORE_ABSENT},
    };
    ck_assert_msg(uc_store_txn(st, ops, 3, &rev, err) == 0, "%s", err);
    ck_assert_uint_eq(expect_str(K("k"), "second"), rev);
}
END_TEST

START_TEST(txn_delete_of_missing_key)
{
    uint64_t r1 = put_str(K("k"), "v"), rev = 0;
    struct uc_store_op del = {UC_STORE_OP_DELETE, K("missing"), NULL, 0, UC_STORE_ANY};
    ck_assert_int_eq(uc_store_txn(st, &del, 1, &rev, err), 0);
    ck_assert_uint_eq(rev, r1 + 1);
    del.expect_rev = r1;
    ck_assert_int_eq(uc_store_txn(st, &del, 1, &rev, err), UC_ECONFLICT);
}
END_TEST

START_TEST(txn_of_only_checks_consumes_no_revision)
{
    uint64_t r1 = put_str(K("k"), "v"), rev = 0;
    struct uc_store_op ops[] = {
        {UC_STORE_OP_CHECK, K("k"), NULL, 0, r1},
        {UC_STORE_OP_CHECK, K("other"), NULL, 0, UC_STORE_ABSENT},
        {UC_STORE_OP_CHECK, K("k"), NULL, 0, UC_STORE_ANY},
    };
    ck_assert_int_eq(uc_store_txn(st, ops, 3, &rev, err), 0);
    ck_assert_uint_eq(rev, r1);
    ops[1].expect_rev = r1;
    ck_assert_int_eq(uc_store_txn(st, ops, 3, &rev, err), UC_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(err, K("other")));
    ck_assert_uint_eq(put_str(K("k"), "w"), r1 + 1);
}
END_TEST

START_TEST(txn_rejects_bad_op_lists)
{
    uint64_t rev = 5;
    struct uc_store_op ops[] = {
        {UC_STORE_OP_PUT, K("a"), "1", 1, UC_STORE_ANY},
        {UC_STORE_OP_PUT, "", "2", 1, UC_STORE_ANY},
    };
    ck_assert_int_eq(uc_store_txn(st, ops, 0, &rev, err), UC_EINVAL);
    ck_assert_int_eq(uc_store_txn(st, NULL, 1, &rev, err), UC_EINVAL);
    ck_assert_int_eq(uc_store_txn(st, ops, UC_STORE_MAX_TXN_OPS + 1, &rev, err), UC_EINVAL);
    ck_assert_int_eq(uc_store_txn(st, ops, 2, &rev, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "op 1"));
    ops[1].key = K("b");
    ops[1].type = (enum uc_store_op_type)42;
    ck_assert_int_eq(uc_store_txn(st, ops, 2, &rev, err), UC_EINVAL);
    ops[1].type = UC_STORE_OP_PUT;
    ops[1].val = NULL;
    ck_assert_int_eq(uc_store_txn(st, ops, 2, &rev, err), UC_EINVAL);
    ck_assert_uint_eq(rev, 5);
    expect_missing(K("a"));
}
END_TEST

START_TEST(ping_answers_on_an_open_store)
{
    err[0] = '\0';
    ck_assert_msg(uc_store_ping(st, err) == 0, "%s", err);
}
END_TEST

/* --- the SQLite file itself -------------------------------------------------- */

/* A VFS wrapping the default one that counts xSync calls on WAL files. */
static sqlite3_vfs counting_vfs, *real_vfs;
static sqlite3_io_methods wal_methods;
static const sqlite3_io_methods *real_wal_methods;
static atomic_int wal_syncs;

static int counting_sync(sqlite3_file *f, int flags)
{
    atomic_fetch_add(&wal_syncs, 1);
    return real_wal_methods->xSync(f, flags);
}

static int counting_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags,
                         int *out_flags)
{
    (void)vfs; /* the real VFS does the work */
    int rc = real_vfs->xOpen(real_vfs, name, f, flags, out_flags);
    if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) && f->pMethods) {
        real_wal_methods = f->pMethods;
        wal_methods = *f->pMethods;
        wal_methods.xSync = counting_sync;
        f->pMethods = &wal_methods;
    }
    return rc;
}

static void install_counting_vfs(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    ck_assert_ptr_nonnull(real_vfs);
    counting_vfs = *real_vfs;
    counting_vfs.zName = "uc-test-sync-counter";
    counting_vfs.pNext = NULL;
    counting_vfs.xOpen = counting_open;
    ck_assert_int_eq(sqlite3_vfs_register(&counting_vfs, 1), SQLITE_OK);
}

static void remove_counting_vfs(void)
{
    ck_assert_int_eq(sqlite3_vfs_unregister(&counting_vfs), SQLITE_OK);
    ck_assert_int_eq(sqlite3_vfs_register(real_vfs, 1), SQLITE_OK);
}

/* The first column of the first row of `sql` on a second connection. */
static void pragma_text(const char *path, const char *sql, char *out, size_t len)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(stmt), SQLITE_ROW);
    snprintf(out, len, "%s", (const char *)sqlite3_column_text(stmt, 0));
    ck_assert_int_eq(sqlite3_finalize(stmt), SQLITE_OK);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
}

START_TEST(file_is_in_wal_mode_and_every_write_syncs)
{
    char path[PATH_MAX + 16], u[PATH_MAX + 32], text[64];
    snprintf(path, sizeof(path), "%s/sync.db", tmpdir);
    snprintf(u, sizeof(u), "sqlite:%s", path);
    install_counting_vfs();
    struct uc_store *s2 = NULL;
    ck_assert_msg(uc_store_open(&s2, u, err) == 0, "%s", err);
    uint64_t rev = 0;
    for (int i = 0; i < 3; i++) {
        int before = atomic_load(&wal_syncs);
        ck_assert_int_eq(uc_store_put(s2, "k", "v", 1, UC_STORE_ANY, &rev, err), 0);
        ck_assert_msg(atomic_load(&wal_syncs) > before, "put %d returned before a WAL fsync", i);
    }
    pragma_text(path, "PRAGMA journal_mode", text, sizeof(text));
    ck_assert_str_eq(text, "wal");
    pragma_text(path, "SELECT value FROM meta WHERE name = 'revision'", text, sizeof(text));
    ck_assert_uint_eq(strtoull(text, NULL, 10), rev);
    uc_store_close(s2);
    remove_counting_vfs();
}
END_TEST

START_TEST(a_locked_file_is_unavailable_and_costs_no_revision)
{
    char path[PATH_MAX + 16], u[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/locked.db", tmpdir);
    snprintf(u, sizeof(u), "sqlite:%s", path);
    struct uc_store *s2 = NULL;
    uint64_t r1 = 0, r2 = 0;
    ck_assert_msg(uc_store_open(&s2, u, err) == 0, "%s", err);
    ck_assert_int_eq(uc_store_put(s2, "k", "v", 1, UC_STORE_ANY, &r1, err), 0);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    err[0] = '\0';
    ck_assert_int_eq(uc_store_put(s2, "k", "w", 1, UC_STORE_ANY, NULL, err), UC_EUNAVAIL);
    ck_assert_msg(strstr(err, "locked") != NULL, "%s", err);
    ck_assert_int_eq(uc_store_ping(s2, err), 0); /* WAL readers are not blocked */
    ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
    ck_assert_int_eq(uc_store_put(s2, "k", "w", 1, UC_STORE_ANY, &r2, err), 0);
    ck_assert_uint_eq(r2, r1 + 1);
    uc_store_close(s2);
}
END_TEST

static Suite *store_suite(bool sqlite_only)
{
    Suite *s = suite_create("store");
    TCase *tc = uc_check_tcase("open", setup, teardown);
    tcase_add_test(tc, open_rejects_unknown_scheme_and_empty_location);
    tcase_add_test(tc, open_reports_missing_directory);
    tcase_add_test(tc, open_creates_file_without_directory_part);
    tcase_add_test(tc, open_rejects_a_file_that_is_not_a_database);
    tcase_add_test(tc, open_without_memory_fails_cleanly);
    tcase_add_test(tc, data_and_revision_survive_reopen);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("get", setup, teardown);
    tcase_add_test(tc, put_then_get_round_trips_binary_and_empty_values);
    tcase_add_test(tc, get_missing_key_is_enoent_and_leaves_item_untouched);
    tcase_add_test(tc, get_without_memory_fails_cleanly);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("put", setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, revisions_strictly_increase_across_writes);
    tcase_add_test(tc, put_with_matching_revision_succeeds_and_stale_one_conflicts);
    tcase_add_test(tc, put_absent_creates_only_once);
    tcase_add_test(tc, failed_write_consumes_no_revision);
    tcase_add_test(tc, invalid_keys_are_rejected_with_a_message);
    tcase_add_test(tc, concurrent_cas_increments_lose_no_update);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("delete", setup, teardown);
    tcase_add_test(tc, delete_without_check_removes_the_key);
    tcase_add_test(tc, delete_checks_the_revision);
    tcase_add_test(tc, delete_missing_key_is_enoent);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("scan", setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, scan_returns_prefix_keys_in_byte_order);
    tcase_add_test(tc, scan_prefix_stops_at_its_boundary);
    tcase_add_test(tc, scan_prefix_ending_in_ff_bytes);
    tcase_add_test(tc, scan_pages_with_after_and_more);
    tcase_add_test(tc, scan_limit_must_be_in_range);
    tcase_add_test(tc, scan_without_memory_fails_cleanly);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("txn", setup, teardown);
    tcase_add_test(tc, txn_writes_share_one_revision);
    tcase_add_test(tc, txn_failing_check_applies_nothing);
    tcase_add_test(tc, txn_checks_see_the_store_before_the_txn);
    tcase_add_test(tc, txn_delete_of_missing_key);
    tcase_add_test(tc, txn_of_only_checks_consumes_no_revision);
    tcase_add_test(tc, txn_rejects_bad_op_lists);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("ping", setup, teardown);
    tcase_add_test(tc, ping_answers_on_an_open_store);
    suite_add_tcase(s, tc);
    if (sqlite_only) {
        tc = uc_check_tcase("sqlite", setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, file_is_in_wal_mode_and_every_write_syncs);
        tcase_add_test(tc, a_locked_file_is_unavailable_and_costs_no_revision);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    const char *env = getenv("UC_STORE_TEST_URL");
    snprintf(url, sizeof(url), "%s", env && *env ? env : "sqlite:");
    return uc_check_run(store_suite(local_sqlite()));
}
