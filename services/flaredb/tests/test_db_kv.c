/* test_db_kv.c - flaredb's namespaced key-value surface: versions and
 * per-namespace revisions, compare-and-swap on either, deletes,
 * transactions with the uc_store semantics, scans by prefix or range with
 * continuation tokens over arbitrary bytes, and command validation. */
#include "test_db_fixture.h"
#include "uc_check.h"

static char *enc[256]; /* base64url strings made by B()/BN(), freed in teardown */
static size_t nenc;

static void setup(void) { fx_setup(); }

static void teardown(void)
{
    for (size_t i = 0; i < nenc; i++)
        uc_free(enc[i]);
    nenc = 0;
    fx_teardown();
}

/* base64url of n bytes, valid until teardown. */
static const char *BN(const void *p, size_t n)
{
    ck_assert_uint_lt(nenc, 256);
    enc[nenc] = uc_b64url_encode(p, n);
    ck_assert_ptr_nonnull(enc[nenc]);
    return enc[nenc++];
}

static const char *B(const char *s) { return BN(s, strlen(s)); }

static int64_t num(const json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    ck_assert_msg(json_is_integer(v), "no integer '%s'", name);
    return json_integer_value(v);
}

/* Puts k=v in ns "t"; returns the result. */
static json_t *put(const char *k, const char *v)
{
    return fx_apply("{s:s,s:s,s:s,s:s}", "op", "kv_put", "ns", "t", "key", B(k), "value", B(v));
}

/* The revision of a successful write; releases the result. */
static int64_t rev_of(json_t *res)
{
    ck_assert_msg(!json_object_get(res, "error"), "%s", fx_msg(res));
    int64_t r = num(res, "revision");
    json_decref(res);
    return r;
}

/* Asserts ns "t" holds k=v and returns the record (caller releases). */
static json_t *get(const char *k, const char *v)
{
    json_t *out = NULL;
    ck_assert_msg(flaredb_db_kv_get(db, "t", k, strlen(k), &out, err) == 0, "%s: %s", k, err);
    ck_assert_str_eq(json_string_value(json_object_get(out, "value")), B(v));
    return out;
}

START_TEST(puts_count_versions_and_namespace_revisions)
{
    json_t *r = put("a", "1");
    ck_assert_int_eq(num(r, "revision"), 1);
    ck_assert_int_eq(num(r, "version"), 1);
    ck_assert_int_eq(num(r, "create_revision"), 1);
    json_decref(r);
    ck_assert_int_eq(rev_of(put("b", "x")), 2);
    r = put("a", "2");
    ck_assert_int_eq(num(r, "revision"), 3);
    ck_assert_int_eq(num(r, "version"), 2);
    ck_assert_int_eq(num(r, "create_revision"), 1);
    json_decref(r);
    r = get("a", "2");
    ck_assert_int_eq(num(r, "revision"), 3);
    ck_assert_int_eq(num(r, "version"), 2);
    ck_assert_int_eq(num(r, "create_revision"), 1);
    ck_assert_str_eq(json_string_value(json_object_get(r, "key")), B("a"));
    json_decref(r);
    /* another namespace counts on its own; SQL entries take no revision */
    fx_exec("CREATE TABLE x(a)");
    ck_assert_int_eq(rev_of(fx_apply("{s:s,s:s,s:s,s:s}", "op", "kv_put", "ns", "other", "key",
                                     B("a"), "value", B("z"))),
                     1);
    ck_assert_int_eq(rev_of(put("c", "")), 4);
    json_decref(get("c", ""));
    json_t *out = NULL;
    ck_assert_int_eq(flaredb_db_kv_get(db, "t", "zz", 2, &out, err), UC_ENOENT);
}
END_TEST

START_TEST(expectations_guard_puts_and_a_failed_write_costs_no_revision)
{
    ck_assert_int_eq(rev_of(fx_apply("{s:s,s:s,s:s,s:s,s:i}", "op", "kv_put", "ns", "t", "key",
                                     B("k"), "value", B("v1"), "expect_version", 0)),
                     1);
    json_t *res = fx_apply("{s:s,s:s,s:s,s:s,s:i}", "op", "kv_put", "ns", "t", "key", B("k"),
                           "value", B("v2"), "expect_version", 0);
    ck_assert_ptr_nonnull(strstr(fx_msg(res), "exists (version 1)"));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(res, "error"), "key")),
                     B("k"));
    ck_assert_int_eq(fx_code(res), UC_ECONFLICT);
    res = fx_apply("{s:s,s:s,s:s,s:s,s:i}", "op", "kv_cas", "ns", "t", "key", B("k"), "value",
                   B("v2"), "expect_revision", 7);
    ck_assert_ptr_nonnull(strstr(fx_msg(res), "is at revision 1, expected 7"));
    ck_assert_int_eq(fx_code(res), UC_ECONFLICT);
    ck_assert_int_eq(fx_code(fx_apply("{s:s,s:s,s:s,s:s,s:i}", "op", "kv_put", "ns", "t", "key",
                                      B("new"), "value", B("v"), "expect_revision", 1)),
                     UC_ECONFLICT);
    json_decref(get("k", "v1"));
    ck_assert_int_eq(
        rev_of(fx_apply("{s:s,s:s,s:s,s:s,s:i,s:i}", "op", "kv_cas", "ns", "t", "key", B("k"),
                        "value", B("v2"), "expect_revision", 1, "expect_version", 1)),
        2);
    json_decref(get("k", "v2"));
    /* kv_cas without an expectation is malformed */
    ck_assert_int_eq(fx_code(fx_apply("{s:s,s:s,s:s,s:s}", "op", "kv_cas", "ns", "t", "key", B("k"),
                                      "value", B("v3"))),
                     UC_EINVAL);
    ck_assert_int_eq(rev_of(put("z", "z")), 3);
}
END_TEST

START_TEST(deletes_check_and_restart_versions)
{
    ck_assert_int_eq(rev_of(put("k", "v")), 1);
    ck_assert_int_eq(fx_code(fx_apply("{s:s,s:s,s:s,s:i}", "op", "kv_delete", "ns", "t", "key",
                                      B("k"), "expect_revision", 9)),
                     UC_ECONFLICT);
    ck_assert_int_eq(
        fx_code(fx_apply("{s:s,s:s,s:s}", "op", "kv_delete", "ns", "t", "key", B("missing"))),
        UC_ENOENT);
    ck_assert_int_eq(rev_of(fx_apply("{s:s,s:s,s:s,s:i}", "op", "kv_delete", "ns", "t", "key",
                                     B("k"), "expect_revision", 1)),
                     2);
    json_t *out = NULL;
    ck_assert_int_eq(flaredb_db_kv_get(db, "t", "k", 1, &out, err), UC_ENOENT);
    json_t *r = put("k", "again");
    ck_assert_int_eq(num(r, "revision"), 3);
    ck_assert_int_eq(num(r, "version"), 1);
    ck_assert_int_eq(num(r, "create_revision"), 3);
    json_decref(r);
}
END_TEST

START_TEST(a_txn_is_atomic_and_its_writes_share_one_revision)
{
    int64_t c0 = rev_of(put("c", "old"));
    json_t *res =
        fx_apply("{s:s,s:s,s:[{s:s,s:s,s:s},{s:s,s:s,s:s},{s:s,s:s,s:I},{s:s,s:s}]}", "op",
                 "kv_txn", "ns", "t", "ops", "op", "put", "key", B("a"), "value", B("1"), "op",
                 "put", "key", B("b"), "value", B("2"), "op", "check", "key", B("c"),
                 "expect_revision", (json_int_t)c0, "op", "delete", "key", B("never-existed"));
    int64_t rev = rev_of(res);
    ck_assert_int_eq(rev, c0 + 1);
    json_t *a = get("a", "1");
    ck_assert_int_eq(num(a, "revision"), rev);
    json_decref(a);
    json_decref(get("b", "2"));
    /* one failed check: nothing written, no revision consumed */
    res = fx_apply("{s:s,s:s,s:[{s:s,s:s,s:s},{s:s,s:s,s:i}]}", "op", "kv_txn", "ns", "t", "ops",
                   "op", "put", "key", B("d"), "value", B("x"), "op", "check", "key", B("a"),
                   "expect_version", 0);
    ck_assert_int_eq(fx_code(res), UC_ECONFLICT);
    json_t *out = NULL;
    ck_assert_int_eq(flaredb_db_kv_get(db, "t", "d", 1, &out, err), UC_ENOENT);
    /* checks alone answer the current revision and take none */
    res = fx_apply("{s:s,s:s,s:[{s:s,s:s,s:I}]}", "op", "kv_txn", "ns", "t", "ops", "op", "check",
                   "key", B("a"), "expect_revision", (json_int_t)rev);
    ck_assert_int_eq(rev_of(res), rev);
    ck_assert_int_eq(rev_of(put("e", "e")), rev + 1);
    /* the later of two writes to one key wins; checks see the state before */
    res = fx_apply("{s:s,s:s,s:[{s:s,s:s,s:s},{s:s,s:s,s:s,s:I}]}", "op", "kv_txn", "ns", "t",
                   "ops", "op", "put", "key", B("a"), "value", B("first"), "op", "put", "key",
                   B("a"), "value", B("second"), "expect_revision", (json_int_t)rev);
    ck_assert_int_eq(rev_of(res), rev + 2);
    a = get("a", "second");
    ck_assert_int_eq(num(a, "version"), 3);
    json_decref(a);
}
END_TEST

/* Scans ns "t" with req (stolen); returns the answer. */
static json_t *scan(json_t *req)
{
    ck_assert_ptr_nonnull(req);
    json_t *out = NULL;
    ck_assert_msg(flaredb_db_kv_scan(db, "t", req, &out, err) == 0, "%s", err);
    json_decref(req);
    return out;
}

/* The keys of a scan answer, decoded and joined with ','. */
static void keys_of(const json_t *out, char *buf, size_t len)
{
    size_t i, used = 0;
    json_t *it;
    buf[0] = '\0';
    json_array_foreach(json_object_get(out, "items"), i, it)
    {
        const char *k = json_string_value(json_object_get(it, "key"));
        uint8_t *p = NULL;
        size_t n = 0;
        ck_assert_int_eq(uc_b64url_decode(k, strlen(k), &p, &n), 0);
        for (size_t j = 0; j < n && used + 5 < len; j++)
            used += (size_t)snprintf(buf + used, len - used,
                                     p[j] >= 0x20 && p[j] < 0x7f ? "%c" : "\\x%02x", p[j]);
        if (used + 2 < len)
            used += (size_t)snprintf(buf + used, len - used, ",");
        uc_free(p);
    }
}

START_TEST(scans_by_prefix_and_range_continue_with_tokens)
{
    const char *keys[] = {"a", "a/1", "a/2", "a/3", "a\xff", "a\xff\xff", "b", "b/1"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        json_decref(put(keys[i], "v"));
    char buf[256];
    json_t *out = scan(json_pack("{s:s}", "prefix", B("a")));
    keys_of(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "a,a/1,a/2,a/3,a\\xff,a\\xff\\xff,");
    ck_assert_int_eq(num(out, "revision"), 8);
    json_decref(out);
    out = scan(json_pack("{s:s}", "prefix", BN("a\xff", 2)));
    keys_of(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "a\\xff,a\\xff\\xff,");
    json_decref(out);
    out = scan(json_pack("{s:s,s:s}", "start", B("a/2"), "end", B("b")));
    keys_of(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "a/2,a/3,a\\xff,a\\xff\\xff,");
    json_decref(out);
    /* pages of two, following next_page_token to the end */
    char token[64] = "", all[256] = "";
    for (int page = 0; page < 10; page++) {
        out = scan(token[0] ? json_pack("{s:i,s:s}", "limit", 2, "page_token", token)
                            : json_pack("{s:i}", "limit", 2));
        keys_of(out, buf, sizeof(buf));
        strncat(all, buf, sizeof(all) - strlen(all) - 1);
        json_t *next = json_object_get(out, "next_page_token");
        ck_assert_int_eq(json_is_true(json_object_get(out, "more")), next != NULL);
        snprintf(token, sizeof(token), "%s", next ? json_string_value(next) : "");
        json_decref(out);
        if (!token[0])
            break;
    }
    ck_assert_str_eq(all, "a,a/1,a/2,a/3,a\\xff,a\\xff\\xff,b,b/1,");
    /* after is exclusive and combines with the prefix */
    out = scan(json_pack("{s:s,s:s}", "prefix", B("a/"), "after", B("a/1")));
    keys_of(out, buf, sizeof(buf));
    ck_assert_str_eq(buf, "a/2,a/3,");
    ck_assert(json_is_false(json_object_get(out, "more")));
    json_decref(out);
}
END_TEST

START_TEST(scan_requests_are_validated)
{
    json_t *out = NULL, *req = json_pack("{s:i}", "limit", 0);
    ck_assert_int_eq(flaredb_db_kv_scan(db, "t", req, &out, err), UC_EINVAL);
    json_decref(req);
    req = json_pack("{s:s}", "page_token", "!!");
    ck_assert_int_eq(flaredb_db_kv_scan(db, "t", req, &out, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "page_token"));
    json_decref(req);
    req = json_pack("{s:s}", "prefixx", "");
    ck_assert_int_eq(flaredb_db_kv_scan(db, "t", req, &out, err), UC_EINVAL);
    json_decref(req);
    req = json_object();
    ck_assert_int_eq(flaredb_db_kv_scan(db, "Bad NS", req, &out, err), UC_EINVAL);
    ck_assert_int_eq(flaredb_db_kv_scan(db, "empty", req, &out, err), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(out, "items")), 0);
    ck_assert_int_eq(num(out, "revision"), 0);
    json_decref(out);
    json_decref(req);
}
END_TEST

/* flaredb_db_check on a command built like json_pack. */
static int check(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *cmd = fx_pack(fmt, ap);
    va_end(ap);
    struct flaredb_db_verdict v = {0};
    int rc = flaredb_db_check(db, cmd, &v, err);
    if (rc == 0)
        ck_assert_int_eq(v.cls, FLAREDB_DB_WRITE);
    flaredb_db_verdict_clear(&v);
    json_decref(cmd);
    return rc;
}

START_TEST(commands_are_checked_before_proposing)
{
    ck_assert_int_eq(
        check("{s:s,s:s,s:s,s:s}", "op", "kv_put", "ns", "t", "key", B("k"), "value", B("v")), 0);
    ck_assert_int_eq(
        check("{s:s,s:s,s:s,s:s}", "op", "kv_put", "ns", "T!", "key", B("k"), "value", B("v")),
        UC_EINVAL);
    ck_assert_int_eq(
        check("{s:s,s:s,s:s,s:s}", "op", "kv_put", "ns", "t", "key", "a+b", "value", B("v")),
        UC_EINVAL);
    ck_assert_int_eq(check("{s:s,s:s,s:s}", "op", "kv_put", "ns", "t", "key", B("k")), UC_EINVAL);
    ck_assert_int_eq(
        check("{s:s,s:s,s:s,s:s}", "op", "kv_delete", "ns", "t", "key", B("k"), "value", B("v")),
        UC_EINVAL);
    ck_assert_int_eq(check("{s:s,s:s,s:s,s:s,s:i}", "op", "kv_put", "ns", "t", "key", B("k"),
                           "value", B("v"), "expect_version", -1),
                     UC_EINVAL);
    ck_assert_int_eq(check("{s:s,s:s,s:[]}", "op", "kv_txn", "ns", "t", "ops"), UC_EINVAL);
    ck_assert_int_eq(check("{s:s,s:s,s:[{s:s,s:s}]}", "op", "kv_txn", "ns", "t", "ops", "op",
                           "frob", "key", B("k")),
                     UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "ops[0]"));
    ck_assert_int_eq(check("{s:s}", "op", "kv_get"), UC_EINVAL);
    char *big = uc_calloc(1, (1u << 20) + 2);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', (1u << 20) + 1);
    ck_assert_int_eq(check("{s:s,s:s,s:s,s:s}", "op", "kv_put", "ns", "t", "key", B("k"), "value",
                           BN(big, (1u << 20) + 1)),
                     UC_E2BIG);
    uc_free(big);
    char key[FLAREDB_DB_MAX_KEY + 1];
    memset(key, 'k', sizeof(key));
    ck_assert_int_eq(check("{s:s,s:s,s:s,s:s}", "op", "kv_put", "ns", "t", "key",
                           BN(key, sizeof(key)), "value", B("v")),
                     UC_EINVAL);
}
END_TEST

START_TEST(kv_apply_survives_allocation_failures)
{
    uc_alloc_install_jansson();
    json_decref(put("k", "v"));
    char *cmd = uc_asprintf("{\"op\":\"kv_txn\",\"ns\":\"t\",\"ops\":[{\"op\":\"put\",\"key\":"
                            "\"%s\",\"value\":\"%s\",\"expect_revision\":1},{\"op\":\"delete\","
                            "\"key\":\"%s\"}]}",
                            B("k"), B("w"), B("gone"));
    ck_assert_ptr_nonnull(cmd);
    int ok = 0;
    for (long n = 0; n < 100 && !ok; n++) {
        uint64_t before = flaredb_db_applied(db);
        json_t *res = NULL;
        uc_alloc_fail_after(n);
        int rc = flaredb_db_apply(db, cmd, strlen(cmd), before + 1, &res);
        uc_alloc_fail_after(-1);
        if (rc < 0) {
            ck_assert_int_eq(rc, UC_ENOMEM);
            ck_assert_uint_eq(flaredb_db_applied(db), before);
            json_decref(get("k", "v"));
            continue;
        }
        ck_assert_int_eq(rev_of(res), 2);
        ok = 1;
    }
    ck_assert(ok);
    json_decref(get("k", "w"));
    uc_free(cmd);
}
END_TEST

START_TEST(kv_reads_survive_allocation_failures)
{
    uc_alloc_install_jansson();
    json_decref(put("a", "1"));
    json_decref(put("b", "2"));
    json_t *req = json_pack("{s:s,s:i}", "prefix", "", "limit", 1);
    ck_assert_ptr_nonnull(req);
    int got = 0, scanned = 0;
    for (long n = 0; n < 200 && !(got && scanned); n++) {
        json_t *out = NULL;
        uc_alloc_fail_after(n);
        int g = got ? 0 : flaredb_db_kv_get(db, "t", "a", 1, &out, err);
        json_decref(out);
        out = NULL;
        int sc = scanned ? 0 : flaredb_db_kv_scan(db, "t", req, &out, err);
        uc_alloc_fail_after(-1);
        ck_assert_msg(g == 0 || g == UC_ENOMEM, "get: %d %s", g, err);
        ck_assert_msg(sc == 0 || sc == UC_ENOMEM, "scan: %d %s", sc, err);
        if (sc == 0 && !scanned)
            ck_assert_ptr_nonnull(json_object_get(out, "next_page_token"));
        json_decref(out);
        got |= g == 0;
        scanned |= sc == 0;
    }
    ck_assert(got && scanned);
    json_decref(req);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("flaredb_db_kv");
    TCase *tc = tcase_create("writes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, puts_count_versions_and_namespace_revisions);
    tcase_add_test(tc, expectations_guard_puts_and_a_failed_write_costs_no_revision);
    tcase_add_test(tc, deletes_check_and_restart_versions);
    tcase_add_test(tc, a_txn_is_atomic_and_its_writes_share_one_revision);
    tcase_add_test(tc, kv_apply_survives_allocation_failures);
    suite_add_tcase(s, tc);
    tc = tcase_create("scans");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, scans_by_prefix_and_range_continue_with_tokens);
    tcase_add_test(tc, scan_requests_are_validated);
    tcase_add_test(tc, kv_reads_survive_allocation_failures);
    suite_add_tcase(s, tc);
    tc = tcase_create("check");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, commands_are_checked_before_proposing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return uc_check_run(suite()); }
