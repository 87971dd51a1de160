/* test_kv.c - chainfire's MVCC state machine: revisions, ranges, deletes,
 * transactions, leases, compaction (and its stepwise sweep, looked at
 * through kv_internal.h), snapshots and command validation. */
#include <check.h>

#include "uc_check.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../kv_internal.h"
#include "uc/alloc.h"
#include "uc/crypto.h"

static struct chainfire_kv *kv;
static char *enc[64]; /* base64url strings made by B(), freed in teardown */
static size_t nenc;

static void setup(void) { ck_assert_int_eq(chainfire_kv_create(&kv), 0); }

static void teardown(void)
{
    chainfire_kv_destroy(kv);
    for (size_t i = 0; i < nenc; i++)
        uc_free(enc[i]);
    nenc = 0;
}

/* base64url of a C string, valid until teardown. */
static const char *B(const char *s)
{
    ck_assert_uint_lt(nenc, 64);
    enc[nenc] = uc_b64url_encode(s, strlen(s));
    ck_assert_ptr_nonnull(enc[nenc]);
    return enc[nenc++];
}

/* Apply the command json_pack builds from fmt; returns the result. */
static json_t *run(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *cmd = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    ck_assert_ptr_nonnull(cmd);
    char *s = json_dumps(cmd, JSON_COMPACT);
    json_t *res = NULL;
    ck_assert_int_eq(chainfire_kv_apply(kv, s, strlen(s), &res), 0);
    free(s);
    json_decref(cmd);
    ck_assert_ptr_nonnull(res);
    return res;
}

static void put(const char *k, const char *v)
{
    json_decref(run("{ssssss}", "op", "put", "key", B(k), "value", B(v)));
}

static int64_t num(const json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    ck_assert_msg(json_is_integer(v), "no integer '%s'", name);
    return json_integer_value(v);
}

/* The error code of a refused command (0 when it succeeded). */
static int refused(json_t *res)
{
    json_t *e = json_object_get(res, "error");
    int code = e ? (int)json_integer_value(json_object_get(e, "code")) : 0;
    json_decref(res);
    return code;
}

/* Range read from a request built like run(); returns the result. */
static json_t *rng(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *req = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    json_t *out = NULL;
    char err[UC_ERR_LEN];
    ck_assert_int_eq(chainfire_kv_range(kv, req, &out, err), 0);
    json_decref(req);
    return out;
}

/* The value of `key` now as a C string in buf, or NULL when absent. */
static const char *get(const char *key, char *buf, size_t n)
{
    json_t *r = rng("{ss}", "key", B(key));
    json_t *kvs = json_object_get(r, "kvs");
    const char *out = NULL;
    if (json_array_size(kvs) == 1) {
        const char *v = json_string_value(json_object_get(json_array_get(kvs, 0), "value"));
        uint8_t *raw;
        size_t len;
        ck_assert_int_eq(uc_b64url_decode(v, strlen(v), &raw, &len), 0);
        snprintf(buf, n, "%.*s", (int)len, (const char *)raw);
        uc_free(raw);
        out = buf;
    }
    json_decref(r);
    return out;
}

/* --- put ---------------------------------------------------------------- */

START_TEST(put_bumps_the_revision_and_the_key_version)
{
    json_t *r = run("{ssssss}", "op", "put", "key", B("a"), "value", B("1"));
    ck_assert_int_eq(num(r, "revision"), 1);
    json_decref(r);
    put("b", "x");
    put("a", "2");
    ck_assert_int_eq(chainfire_kv_revision(kv), 3);
    r = rng("{ss}", "key", B("a"));
    json_t *a = json_array_get(json_object_get(r, "kvs"), 0);
    ck_assert_int_eq(num(a, "create_revision"), 1);
    ck_assert_int_eq(num(a, "mod_revision"), 3);
    ck_assert_int_eq(num(a, "version"), 2);
    ck_assert_str_eq(json_string_value(json_object_get(a, "value")), B("2"));
    json_decref(r);
}
END_TEST

START_TEST(put_with_an_empty_value_is_kept)
{
    char buf[8];
    put("k", "");
    ck_assert_str_eq(get("k", buf, sizeof(buf)), "");
}
END_TEST

/* --- range -------------------------------------------------------------- */

static void fill(void)
{
    put("foo/a", "1");
    put("foo/b", "2");
    put("foo/c", "3");
    put("fop", "4");
    put("fo", "5");
}

START_TEST(range_by_prefix_excludes_neighbours)
{
    fill();
    json_t *r = rng("{sssb}", "key", B("foo/"), "prefix", 1);
    ck_assert_int_eq(num(r, "count"), 3);
    ck_assert_int_eq(json_array_size(json_object_get(r, "kvs")), 3);
    const char *k0 =
        json_string_value(json_object_get(json_array_get(json_object_get(r, "kvs"), 0), "key"));
    ck_assert_str_eq(k0, B("foo/a"));
    json_decref(r);
}
END_TEST

START_TEST(range_start_end_is_half_open)
{
    fill();
    json_t *r = rng("{ssss}", "key", B("foo/a"), "range_end", B("foo/c"));
    ck_assert_int_eq(num(r, "count"), 2);
    json_decref(r);
    r = rng("{ssss}", "key", B("foo/b"), "range_end", "AA"); /* "\0": to the end */
    ck_assert_int_eq(num(r, "count"), 3);                    /* foo/b foo/c fop */
    json_decref(r);
}
END_TEST

START_TEST(range_limit_sets_more_and_counts_all)
{
    fill();
    json_t *r = rng("{sssbsi}", "key", B("f"), "prefix", 1, "limit", 2);
    ck_assert_int_eq(num(r, "count"), 5);
    ck_assert_int_eq(json_array_size(json_object_get(r, "kvs")), 2);
    ck_assert(json_is_true(json_object_get(r, "more")));
    json_decref(r);
}
END_TEST

START_TEST(range_keys_only_and_count_only)
{
    fill();
    json_t *r = rng("{sssbsb}", "key", B("foo/"), "prefix", 1, "keys_only", 1);
    json_t *first = json_array_get(json_object_get(r, "kvs"), 0);
    ck_assert_ptr_null(json_object_get(first, "value"));
    ck_assert_ptr_nonnull(json_object_get(first, "key"));
    json_decref(r);
    r = rng("{sssbsb}", "key", B("foo/"), "prefix", 1, "count_only", 1);
    ck_assert_int_eq(num(r, "count"), 3);
    ck_assert_int_eq(json_array_size(json_object_get(r, "kvs")), 0);
    json_decref(r);
}
END_TEST

START_TEST(range_at_a_past_revision_sees_old_values)
{
    char buf[8];
    put("a", "1");
    put("a", "2");
    json_decref(run("{ssss}", "op", "delete", "key", B("a")));
    ck_assert_ptr_null(get("a", buf, sizeof(buf)));
    json_t *r = rng("{sssi}", "key", B("a"), "revision", 1);
    json_t *a = json_array_get(json_object_get(r, "kvs"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(a, "value")), B("1"));
    json_decref(r);
}
END_TEST

START_TEST(range_refuses_future_revisions_and_bad_keys)
{
    json_t *out = NULL, *req = json_pack("{sssi}", "key", B("a"), "revision", 5);
    char err[UC_ERR_LEN];
    ck_assert_int_eq(chainfire_kv_range(kv, req, &out, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "future"));
    json_decref(req);
    req = json_pack("{ss}", "key", "not base64!");
    ck_assert_int_eq(chainfire_kv_range(kv, req, &out, err), UC_EINVAL);
    json_decref(req);
    ck_assert_ptr_null(out);
}
END_TEST

/* --- delete ------------------------------------------------------------- */

START_TEST(delete_single_then_recreate_resets_version)
{
    put("a", "1");
    put("a", "2");
    json_t *r = run("{ssss}", "op", "delete", "key", B("a"));
    ck_assert_int_eq(num(r, "deleted"), 1);
    ck_assert_int_eq(num(r, "revision"), 3);
    json_decref(r);
    r = run("{ssss}", "op", "delete", "key", B("a"));
    ck_assert_int_eq(num(r, "deleted"), 0);
    ck_assert_int_eq(num(r, "revision"), 3); /* nothing deleted: no new revision */
    json_decref(r);
    put("a", "3");
    r = rng("{ss}", "key", B("a"));
    json_t *a = json_array_get(json_object_get(r, "kvs"), 0);
    ck_assert_int_eq(num(a, "version"), 1);
    ck_assert_int_eq(num(a, "create_revision"), 4);
    json_decref(r);
}
END_TEST

START_TEST(delete_by_prefix_removes_only_the_prefix)
{
    fill();
    json_t *r = run("{sssssb}", "op", "delete", "key", B("foo/"), "prefix", 1);
    ck_assert_int_eq(num(r, "deleted"), 3);
    json_decref(r);
    r = rng("{sssb}", "key", B("f"), "prefix", 1);
    ck_assert_int_eq(num(r, "count"), 2);
    json_decref(r);
}
END_TEST

/* --- txn ---------------------------------------------------------------- */

/* Compare-and-swap on value: put `to` if key holds `from`. */
static bool cas(const char *k, const char *from, const char *to)
{
    json_t *r =
        run("{sss[{ssssssss}]s[{s{ssss}}]}", "op", "txn", "compare", "key", B(k), "target", "value",
            "result", "=", "value", B(from), "success", "put", "key", B(k), "value", B(to));
    bool ok = json_is_true(json_object_get(r, "succeeded"));
    json_decref(r);
    return ok;
}

START_TEST(txn_compare_and_swap_on_value)
{
    char buf[8];
    put("lock", "free");
    ck_assert(cas("lock", "free", "held"));
    ck_assert(!cas("lock", "free", "held2"));
    ck_assert_str_eq(get("lock", buf, sizeof(buf)), "held");
    ck_assert(!cas("missing", "x", "y")); /* value compares on a missing key fail */
    ck_assert_ptr_null(get("missing", buf, sizeof(buf)));
}
END_TEST

/* Outcome of one numeric compare on key "a". */
static bool cmp_num(const char *target, const char *op, int64_t v)
{
    json_t *r = run("{sss[{sssssssI}]}", "op", "txn", "compare", "key", B("a"), "target", target,
                    "result", op, target, (json_int_t)v);
    bool ok = json_is_true(json_object_get(r, "succeeded"));
    json_decref(r);
    return ok;
}

START_TEST(txn_numeric_compares_cover_every_operator)
{
    put("x", "0"); /* rev 1 */
    put("a", "1"); /* rev 2 */
    put("a", "2"); /* rev 3: version 2, create 2, mod 3 */
    ck_assert(cmp_num("version", "=", 2) && !cmp_num("version", "=", 1));
    ck_assert(cmp_num("version", "!=", 1) && !cmp_num("version", "!=", 2));
    ck_assert(cmp_num("version", "<", 3) && !cmp_num("version", "<", 2));
    ck_assert(cmp_num("version", ">", 1) && !cmp_num("version", ">", 2));
    ck_assert(cmp_num("create_revision", "=", 2));
    ck_assert(cmp_num("mod_revision", "=", 3) && cmp_num("mod_revision", ">", 2));
    /* A missing key has version 0: "create if absent". */
    json_t *r = run("{sss[{sssssssi}]}", "op", "txn", "compare", "key", B("new"), "target",
                    "version", "result", "=", "version", 0);
    ck_assert(json_is_true(json_object_get(r, "succeeded")));
    json_decref(r);
}
END_TEST

START_TEST(txn_failure_branch_runs_and_reads_see_writes)
{
    put("a", "1");
    json_t *r = run("{sss[{ssssssss}]s[{s{ssss}}]s[{s{ssss}}{s{ss}}]}", "op", "txn", "compare",
                    "key", B("a"), "target", "value", "result", "=", "value", B("2"), "success",
                    "put", "key", B("a"), "value", B("s"), "failure", "put", "key", B("b"), "value",
                    B("f"), "range", "key", B("b"));
    ck_assert(json_is_false(json_object_get(r, "succeeded")));
    ck_assert_int_eq(num(r, "revision"), 2);
    json_t *rr = json_object_get(json_array_get(json_object_get(r, "responses"), 1), "range");
    ck_assert_int_eq(num(rr, "count"), 1);
    json_decref(r);
}
END_TEST

START_TEST(txn_writes_share_one_revision)
{
    json_t *r = run("{sss[{s{ssss}}{s{ssss}}]}", "op", "txn", "success", "put", "key", B("a"),
                    "value", B("1"), "put", "key", B("b"), "value", B("2"));
    ck_assert(json_is_true(json_object_get(r, "succeeded")));
    ck_assert_int_eq(num(r, "revision"), 1);
    json_decref(r);
}
END_TEST

/* --- leases ------------------------------------------------------------- */

START_TEST(lease_revoke_deletes_attached_keys)
{
    char buf[8];
    int64_t ttl;
    size_t keys;
    json_decref(run("{sssIsi}", "op", "lease_grant", "id", (json_int_t)77, "ttl", 5));
    json_decref(
        run("{sssssssI}", "op", "put", "key", B("l1"), "value", B("v"), "lease", (json_int_t)77));
    put("other", "v");
    ck_assert_int_eq(chainfire_kv_lease_get(kv, 77, &ttl, &keys), 0);
    ck_assert_int_eq(ttl, 5);
    ck_assert_uint_eq(keys, 1);
    json_t *r = run("{sssI}", "op", "lease_revoke", "id", (json_int_t)77);
    ck_assert_int_eq(num(r, "deleted"), 1);
    json_decref(r);
    ck_assert_ptr_null(get("l1", buf, sizeof(buf)));
    ck_assert_str_eq(get("other", buf, sizeof(buf)), "v");
    ck_assert_int_eq(chainfire_kv_lease_get(kv, 77, &ttl, &keys), UC_ENOENT);
}
END_TEST

START_TEST(lease_unknown_or_duplicate_is_refused_without_change)
{
    json_decref(run("{sssIsi}", "op", "lease_grant", "id", (json_int_t)1, "ttl", 5));
    ck_assert_int_eq(refused(run("{sssIsi}", "op", "lease_grant", "id", (json_int_t)1, "ttl", 5)),
                     UC_EEXIST);
    ck_assert_int_eq(refused(run("{sssssssI}", "op", "put", "key", B("k"), "value", B("v"), "lease",
                                 (json_int_t)9)),
                     UC_ENOENT);
    ck_assert_int_eq(refused(run("{sssI}", "op", "lease_revoke", "id", (json_int_t)9)), UC_ENOENT);
    ck_assert_int_eq(chainfire_kv_revision(kv), 0);
}
END_TEST

START_TEST(lease_list_is_in_id_order)
{
    struct chainfire_kv_lease *l;
    size_t n;
    json_decref(run("{sssIsi}", "op", "lease_grant", "id", (json_int_t)30, "ttl", 3));
    json_decref(run("{sssIsi}", "op", "lease_grant", "id", (json_int_t)10, "ttl", 1));
    ck_assert_int_eq(chainfire_kv_lease_list(kv, &l, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(l[0].id, 10);
    ck_assert_int_eq(l[1].ttl_s, 3);
    uc_free(l);
}
END_TEST

/* --- compaction --------------------------------------------------------- */

START_TEST(compact_drops_old_revisions_but_keeps_current)
{
    char buf[8];
    put("a", "1");
    put("a", "2");
    put("b", "1");
    json_decref(run("{ssss}", "op", "delete", "key", B("b")));
    json_t *r = run("{sssi}", "op", "compact", "revision", 3);
    ck_assert_int_eq(num(r, "compacted"), 3);
    json_decref(r);
    ck_assert_int_eq(chainfire_kv_compacted(kv), 3);
    ck_assert_str_eq(get("a", buf, sizeof(buf)), "2");
    json_t *out = NULL, *req = json_pack("{sssi}", "key", B("a"), "revision", 1);
    char err[UC_ERR_LEN];
    ck_assert_int_eq(chainfire_kv_range(kv, req, &out, err), UC_EINVAL);
    ck_assert_str_eq(err, "revision 1 is compacted; the oldest available is 3");
    json_decref(req);
    r = rng("{sssi}", "key", B("b"), "revision", 3); /* still readable at the compact point */
    ck_assert_int_eq(num(r, "count"), 1);
    json_decref(r);
    ck_assert_int_eq(refused(run("{sssi}", "op", "compact", "revision", 3)), UC_EINVAL);
    ck_assert_int_eq(refused(run("{sssi}", "op", "compact", "revision", 9)), UC_EINVAL);
}
END_TEST

/* Apply the command `fmt` formats to store `s`, with %s standing for the
 * base64url of `key`; the result must not be a refusal. */
static void cmd_to(struct chainfire_kv *s, const char *fmt, const char *key)
{
    char *k = uc_b64url_encode(key, strlen(key)), cmd[256];
    ck_assert_ptr_nonnull(k);
    int len = snprintf(cmd, sizeof(cmd), fmt, k);
    uc_free(k);
    json_t *res = NULL;
    ck_assert_int_eq(chainfire_kv_apply(s, cmd, (size_t)len, &res), 0);
    ck_assert_ptr_null(json_object_get(res, "error"));
    json_decref(res);
}

#define PUT "{\"op\":\"put\",\"key\":\"%s\",\"value\":\"dg\"}"
#define DEL "{\"op\":\"delete\",\"key\":\"%s\"}"

static void compact_to(struct chainfire_kv *s, int64_t rev)
{
    char cmd[64];
    int len = snprintf(cmd, sizeof(cmd), "{\"op\":\"compact\",\"revision\":%lld}", (long long)rev);
    json_t *res = NULL;
    ck_assert_int_eq(chainfire_kv_apply(s, cmd, (size_t)len, &res), 0);
    ck_assert_int_eq(num(res, "compacted"), rev);
    json_decref(res);
}

/* How many revisions the store holds, freed or not by a sweep yet. */
static size_t revs_held(const struct chainfire_kv *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->ents[i].n;
    return n;
}

static void put_keys(struct chainfire_kv *s, const char *prefix, int n, int step)
{
    char k[16];
    for (int i = 0; i < n; i += step) {
        snprintf(k, sizeof(k), "%s%03d", prefix, i);
        cmd_to(s, PUT, k);
    }
}

/* A compact command only moves the compaction point; each later apply
 * frees the history of at most CHAINFIRE_KV_SWEEP_STEP keys. */
START_TEST(compaction_frees_history_a_step_per_apply)
{
    put_keys(kv, "k", 600, 1);
    put_keys(kv, "k", 600, 1);
    compact_to(kv, 1200);
    ck_assert(chainfire_kv_sweeping(kv));
    ck_assert_uint_eq(revs_held(kv), 1200);
    cmd_to(kv, PUT, "z");
    ck_assert_uint_eq(revs_held(kv), 1200 - CHAINFIRE_KV_SWEEP_STEP + 1);
    cmd_to(kv, PUT, "z");
    ck_assert_uint_eq(revs_held(kv), 1200 - 2 * CHAINFIRE_KV_SWEEP_STEP + 2);
    ck_assert(chainfire_kv_sweeping(kv));
    cmd_to(kv, PUT, "z"); /* the last 88 keys, and z, new to the part left */
    ck_assert(!chainfire_kv_sweeping(kv));
    ck_assert_uint_eq(revs_held(kv), 600 + 3);
    ck_assert_uint_eq(kv->n, 601);
}
END_TEST

/* The same commands on two stores, one finishing every sweep at once: new
 * keys on both sides of the sweep's place, deletes that leave keys empty,
 * and a second compaction in mid-sweep. Once the stepwise sweep is done the
 * two hold the same keys and revisions, and snapshots are equal all along. */
START_TEST(stepwise_compaction_ends_where_a_one_shot_one_does)
{
    struct chainfire_kv *once = NULL, *both[2];
    ck_assert_int_eq(chainfire_kv_create(&once), 0);
    both[0] = kv;
    both[1] = once;
    char k[16], *a, *b;
    size_t alen, blen;
    for (int round = 0; round < 12; round++) {
        for (int j = 0; j < 2; j++) {
            struct chainfire_kv *s = both[j];
            put_keys(s, round % 2 ? "a" : "k", 300, round + 1);
            snprintf(k, sizeof(k), "k%03d", round * 7);
            if (round > 0)
                cmd_to(s, DEL, k);
            if (round == 1 || round == 3)
                compact_to(s, chainfire_kv_revision(s) - 5);
            if (s == once)
                chainfire_kv_sweep(once, SIZE_MAX);
        }
        ck_assert_int_eq(chainfire_kv_snapshot(kv, &a, &alen), 0);
        ck_assert_int_eq(chainfire_kv_snapshot(once, &b, &blen), 0);
        ck_assert_uint_eq(alen, blen);
        ck_assert_mem_eq(a, b, alen);
        uc_free(a);
        uc_free(b);
    }
    ck_assert(!chainfire_kv_sweeping(kv));
    ck_assert_uint_eq(kv->n, once->n);
    for (size_t i = 0; i < kv->n; i++) {
        const struct entry *x = &kv->ents[i], *y = &once->ents[i];
        ck_assert_mem_eq(x->key, y->key, x->klen);
        ck_assert_uint_eq(x->n, y->n);
        for (size_t r = 0; r < x->n; r++)
            ck_assert_int_eq(x->revs[r].mod, y->revs[r].mod);
    }
    chainfire_kv_destroy(once);
}
END_TEST

/* Keys added in mid-sweep, before and after its place, neither make it
 * skip a key nor cost a key's history: every old revision still goes. */
START_TEST(sweep_keeps_its_place_when_keys_are_added)
{
    put_keys(kv, "k", 600, 1);
    put_keys(kv, "k", 600, 1);
    compact_to(kv, 1200);
    cmd_to(kv, PUT, "a000"); /* after the first step, before its place */
    cmd_to(kv, PUT, "m000"); /* after its place */
    for (int i = 0; i < 3; i++)
        cmd_to(kv, PUT, "a000");
    ck_assert(!chainfire_kv_sweeping(kv));
    ck_assert_uint_eq(revs_held(kv), 600 + 4 + 1);
}
END_TEST

/* A snapshot taken in mid-sweep leaves out what the sweep has yet to free:
 * it equals the one taken after, and restores to a store with no sweep
 * left and the same snapshot. */
START_TEST(snapshot_in_mid_sweep_holds_only_what_compaction_keeps)
{
    char *mid, *after, *again, err[UC_ERR_LEN];
    size_t mlen, alen, glen;
    put_keys(kv, "k", 400, 1);
    put_keys(kv, "k", 400, 2);
    cmd_to(kv, DEL, "k003");
    compact_to(kv, chainfire_kv_revision(kv));
    cmd_to(kv, PUT, "k500");
    ck_assert(chainfire_kv_sweeping(kv));
    ck_assert_int_eq(chainfire_kv_snapshot(kv, &mid, &mlen), 0);
    chainfire_kv_sweep(kv, SIZE_MAX);
    ck_assert_int_eq(chainfire_kv_snapshot(kv, &after, &alen), 0);
    ck_assert_uint_eq(mlen, alen);
    ck_assert_mem_eq(mid, after, mlen);
    ck_assert_uint_eq(kv->n, 400); /* k003 is gone, k500 came */
    ck_assert_int_eq(chainfire_kv_restore(kv, mid, mlen, err), 0);
    ck_assert(!chainfire_kv_sweeping(kv));
    ck_assert_int_eq(chainfire_kv_snapshot(kv, &again, &glen), 0);
    ck_assert_uint_eq(glen, mlen);
    ck_assert_mem_eq(again, mid, mlen);
    uc_free(mid);
    uc_free(after);
    uc_free(again);
}
END_TEST

/* --- snapshot / restore ------------------------------------------------- */

START_TEST(snapshot_round_trips_history_and_leases)
{
    char *buf, *buf2, v[8];
    size_t len, len2;
    put("a", "1");
    put("a", "2");
    json_decref(run("{sssIsi}", "op", "lease_grant", "id", (json_int_t)5, "ttl", 9));
    json_decref(
        run("{sssssssI}", "op", "put", "key", B("l"), "value", B("x"), "lease", (json_int_t)5));
    ck_assert_int_eq(chainfire_kv_snapshot(kv, &buf, &len), 0);
    chainfire_kv_destroy(kv);
    ck_assert_int_eq(chainfire_kv_create(&kv), 0);
    char err[UC_ERR_LEN];
    ck_assert_msg(chainfire_kv_restore(kv, buf, len, err) == 0, "%s", err);
    ck_assert_int_eq(chainfire_kv_revision(kv), 3);
    ck_assert_str_eq(get("a", v, sizeof(v)), "2");
    ck_assert_int_eq(chainfire_kv_snapshot(kv, &buf2, &len2), 0);
    ck_assert_uint_eq(len, len2);
    ck_assert_mem_eq(buf, buf2, len); /* same state, same bytes */
    json_t *r = run("{sssI}", "op", "lease_revoke", "id", (json_int_t)5);
    ck_assert_int_eq(num(r, "deleted"), 1);
    json_decref(r);
    uc_free(buf);
    uc_free(buf2);
}
END_TEST

START_TEST(restore_of_garbage_leaves_the_store_unchanged)
{
    char v[8], err[UC_ERR_LEN];
    put("a", "1");
    ck_assert_int_eq(chainfire_kv_restore(kv, "nope", 4, err), UC_EINVAL);
    ck_assert_str_eq(err, "not a chainfire snapshot (no 'cfsnap02' magic)");
    ck_assert_int_eq(chainfire_kv_restore(kv, "", 0, err), UC_EINVAL);
    ck_assert_str_eq(get("a", v, sizeof(v)), "1");
}
END_TEST

/* Earlier versions wrote JSON snapshots; one left in a data dir or a backup
 * is refused with what to do instead, never misread. */
START_TEST(restore_of_an_old_json_snapshot_says_what_to_do)
{
    char v[8], err[UC_ERR_LEN];
    put("a", "1");
    const char *old = "{\"v\":1,\"revision\":1,\"compacted\":0,\"leases\":[],"
                      "\"keys\":[[\"YQ\",[[1,1,1,0,\"MQ\"]]]]}";
    ck_assert_int_eq(chainfire_kv_restore(kv, old, strlen(old), err), UC_EINVAL);
    ck_assert(strstr(err, "JSON snapshot from an earlier chainfire") != NULL);
    ck_assert(strstr(err, "empty data dir") != NULL);
    ck_assert_str_eq(get("a", v, sizeof(v)), "1");
}
END_TEST

/* Every shorter prefix, a byte past the end and a few corrupted fields are
 * refused without touching the store. */
START_TEST(restore_refuses_truncated_or_corrupt_snapshots)
{
    char *buf, v[8], err[UC_ERR_LEN];
    size_t len;
    put("a", "1");
    put("b", "22");
    json_decref(run("{sssIsi}", "op", "lease_grant", "id", (json_int_t)7, "ttl", 9));
    ck_assert_int_eq(chainfire_kv_snapshot(kv, &buf, &len), 0);
    put("a", "3");
    for (size_t n = 0; n < len; n++)
        ck_assert_msg(chainfire_kv_restore(kv, buf, n, err) == UC_EINVAL, "prefix %zu", n);
    char *big = uc_malloc(len + 1);
    ck_assert_ptr_nonnull(big);
    memcpy(big, buf, len);
    big[len] = 0;
    ck_assert_int_eq(chainfire_kv_restore(kv, big, len + 1, err), UC_EINVAL);
    ck_assert_str_eq(err, "snapshot: 1 bytes past the end");
    /* Layout: magic, 4 header words, one lease (2 words), then key "a":
     * klen at 56, the key at 64, nrevs at 65, its revision's flag at 73. */
    memcpy(big, buf, len);
    big[64] = 'c'; /* "c" before "b": keys out of order */
    ck_assert_int_eq(chainfire_kv_restore(kv, big, len, err), UC_EINVAL);
    ck_assert_str_eq(err, "snapshot: keys empty or out of order");
    memcpy(big, buf, len);
    big[73] = 2; /* neither a value nor a tombstone */
    ck_assert_int_eq(chainfire_kv_restore(kv, big, len, err), UC_EINVAL);
    memcpy(big, buf, len);
    big[65] = 99; /* more revisions than bytes */
    ck_assert_int_eq(chainfire_kv_restore(kv, big, len, err), UC_EINVAL);
    memcpy(big, buf, len);
    big[16] = 9; /* compacted (9) past the revision (2) */
    ck_assert_int_eq(chainfire_kv_restore(kv, big, len, err), UC_EINVAL);
    ck_assert_str_eq(get("a", v, sizeof(v)), "3");
    ck_assert_int_eq(chainfire_kv_revision(kv), 3);
    ck_assert_int_eq(chainfire_kv_restore(kv, buf, len, err), 0);
    ck_assert_str_eq(get("a", v, sizeof(v)), "1");
    uc_free(big);
    uc_free(buf);
}
END_TEST

/* A failed allocation anywhere in a restore leaves the store as it was. */
START_TEST(restore_out_of_memory_leaves_the_store_unchanged)
{
    char *buf, v[8], err[UC_ERR_LEN];
    size_t len;
    put("a", "1");
    put("b", "2");
    put("a", "3");
    json_decref(run("{sssIsi}", "op", "lease_grant", "id", (json_int_t)7, "ttl", 9));
    ck_assert_int_eq(chainfire_kv_snapshot(kv, &buf, &len), 0);
    struct chainfire_kv *other;
    ck_assert_int_eq(chainfire_kv_create(&other), 0);
    int rc = UC_ENOMEM;
    long n;
    for (n = 0; rc == UC_ENOMEM && n < 100; n++) {
        uc_alloc_fail_after(n);
        rc = chainfire_kv_restore(other, buf, len, err);
        uc_alloc_fail_after(-1);
        ck_assert(rc == 0 || chainfire_kv_revision(other) == 0);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_gt(n, 3);
    ck_assert_int_eq(chainfire_kv_revision(other), 3);
    chainfire_kv_destroy(kv);
    kv = other;
    ck_assert_str_eq(get("a", v, sizeof(v)), "3");
    uc_free(buf);
}
END_TEST

/* A view taken now encodes to exactly the snapshot of now, however much the
 * store changes (overwrites, deletes, compaction, a restore) before the
 * encode; the buffers it shares outlive those changes until it goes. */
START_TEST(view_encodes_the_state_it_was_taken_at_while_the_store_changes)
{
    char *want, *got, *other, v[8], err[UC_ERR_LEN];
    size_t wlen, glen, olen;
    put("a", "1");
    put("a", "2");
    put("b", "x");
    json_decref(run("{sssIsi}", "op", "lease_grant", "id", (json_int_t)5, "ttl", 9));
    ck_assert_int_eq(chainfire_kv_snapshot(kv, &want, &wlen), 0);
    struct chainfire_kv_view *view;
    ck_assert_int_eq(chainfire_kv_view_take(kv, &view), 0);
    put("a", "3");
    json_decref(run("{ssss}", "op", "delete", "key", B("b")));
    json_decref(run("{sssi}", "op", "compact", "revision", 5));
    ck_assert_int_eq(chainfire_kv_snapshot(kv, &other, &olen), 0);
    put("c", "4");
    ck_assert_int_eq(chainfire_kv_restore(kv, other, olen, err), 0); /* frees every buffer */
    ck_assert_int_eq(chainfire_kv_view_encode(view, 3, &got, &glen), 0);
    ck_assert_uint_eq(glen, 3 + wlen); /* room for the frames above */
    ck_assert_mem_eq(got + 3, want, wlen);
    memmove(got, got + 3, wlen);
    glen = wlen;
    chainfire_kv_view_release(kv, view);
    ck_assert_str_eq(get("a", v, sizeof(v)), "3");
    ck_assert_int_eq(chainfire_kv_restore(kv, got, glen, err), 0);
    ck_assert_str_eq(get("a", v, sizeof(v)), "2");
    ck_assert_str_eq(get("b", v, sizeof(v)), "x");
    uc_free(want);
    uc_free(got);
    uc_free(other);
}
END_TEST

START_TEST(empty_store_round_trips)
{
    char *buf, err[UC_ERR_LEN];
    size_t len;
    ck_assert_int_eq(chainfire_kv_snapshot(kv, &buf, &len), 0);
    ck_assert_uint_eq(len, 40);
    put("a", "1");
    ck_assert_int_eq(chainfire_kv_restore(kv, buf, len, err), 0);
    ck_assert_int_eq(chainfire_kv_revision(kv), 0);
    char v[8];
    ck_assert_ptr_null(get("a", v, sizeof(v)));
    uc_free(buf);
}
END_TEST

/* --- changes (watch) ---------------------------------------------------- */

/* Changes under prefix p from revision `from`, as "type:key@rev ..." in buf. */
static int changes(const char *p, int64_t from, char *buf, size_t n)
{
    json_t *req = json_pack("{sssb}", "key", B(p), "prefix", 1), *ev = NULL;
    int64_t upto = -1;
    char err[UC_ERR_LEN];
    int rc = chainfire_kv_changes(kv, req, from, &ev, &upto, err);
    json_decref(req);
    buf[0] = '\0';
    if (rc < 0)
        return rc;
    ck_assert_int_eq(upto, chainfire_kv_revision(kv));
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e)
    {
        json_t *k = json_object_get(e, "kv");
        const char *key = json_string_value(json_object_get(k, "key"));
        uint8_t *raw;
        size_t len, used = strlen(buf);
        ck_assert_int_eq(uc_b64url_decode(key, strlen(key), &raw, &len), 0);
        snprintf(buf + used, n - used, "%s%s:%.*s@%lld", i ? " " : "",
                 json_string_value(json_object_get(e, "type")), (int)len, (const char *)raw,
                 (long long)num(k, "mod_revision"));
        uc_free(raw);
    }
    json_decref(ev);
    return 0;
}

START_TEST(changes_come_in_revision_order_with_deletes)
{
    char buf[256];
    put("w/b", "1");                                             /* 1 */
    put("w/a", "1");                                             /* 2 */
    put("x", "1");                                               /* 3: outside the prefix */
    json_decref(run("{ssss}", "op", "delete", "key", B("w/b"))); /* 4 */
    put("w/a", "2");                                             /* 5 */
    ck_assert_int_eq(changes("w/", 1, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "put:w/b@1 put:w/a@2 delete:w/b@4 put:w/a@5");
    ck_assert_int_eq(changes("w/", 4, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "delete:w/b@4 put:w/a@5");
    ck_assert_int_eq(changes("w/", 6, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(changes_from_a_compacted_revision_name_the_oldest)
{
    char buf[256];
    put("w/a", "1");
    put("w/a", "2");
    put("w/a", "3");
    json_decref(run("{sssi}", "op", "compact", "revision", 2));
    ck_assert_int_eq(changes("w/", 2, buf, sizeof(buf)), UC_EINVAL);
    ck_assert_int_eq(changes("w/", 3, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "put:w/a@3");
    json_t *req = json_pack("{sssb}", "key", B("w/"), "prefix", 1), *ev = NULL;
    int64_t upto = 0;
    char err[UC_ERR_LEN];
    ck_assert_int_eq(chainfire_kv_changes(kv, req, 1, &ev, &upto, err), UC_EINVAL);
    ck_assert_str_eq(err, "revision 1 is compacted; the oldest available is 3");
    json_decref(req);
}
END_TEST

/* --- check / apply of bad commands -------------------------------------- */

static int check(const char *json, size_t max_key, size_t max_value)
{
    json_error_t je;
    json_t *cmd = json_loads(json, 0, &je);
    ck_assert_ptr_nonnull(cmd);
    struct chainfire_kv_limits lim = {max_key, max_value};
    char err[UC_ERR_LEN];
    int rc = chainfire_kv_check(cmd, &lim, err);
    json_decref(cmd);
    return rc;
}

START_TEST(check_refuses_malformed_and_oversized_commands)
{
    ck_assert_int_eq(check("{\"op\":\"put\",\"key\":\"YQ\",\"value\":\"MQ\"}", 4, 4), 0);
    ck_assert_int_eq(check("{\"op\":\"put\",\"key\":\"\",\"value\":\"MQ\"}", 4, 4), UC_EINVAL);
    ck_assert_int_eq(check("{\"op\":\"put\",\"key\":\"YQ==\"}", 4, 4), UC_EINVAL);
    ck_assert_int_eq(check("{\"op\":\"put\",\"key\":\"YWJjZGU\"}", 4, 4), UC_E2BIG);
    ck_assert_int_eq(check("{\"op\":\"put\",\"key\":\"YQ\",\"value\":\"YWJjZGU\"}", 4, 4),
                     UC_E2BIG);
    ck_assert_int_eq(check("{\"op\":\"put\",\"key\":\"YQ\",\"value\":\"YWJjZA\"}", 4, 4), 0);
    ck_assert_int_eq(check("{\"op\":\"zap\"}", 4, 4), UC_EINVAL);
    ck_assert_int_eq(check("{\"op\":\"put\",\"key\":\"YQ\",\"bogus\":1}", 4, 4), UC_EINVAL);
    ck_assert_int_eq(check("{\"op\":\"delete\",\"key\":\"YQ\",\"prefix\":true,\"range_end\":"
                           "\"Yg\"}",
                           4, 4),
                     UC_EINVAL);
    ck_assert_int_eq(check("{\"op\":\"txn\",\"compare\":[{\"key\":\"YQ\",\"target\":\"version\","
                           "\"result\":\"=\"}]}",
                           4, 4),
                     UC_EINVAL);
    ck_assert_int_eq(
        check("{\"op\":\"txn\",\"success\":[{\"put\":{\"key\":\"YQ\"},\"range\":{}}]}", 4, 4),
        UC_EINVAL);
}
END_TEST

START_TEST(apply_of_a_malformed_command_is_refused_without_change)
{
    json_t *res = NULL;
    ck_assert_int_eq(chainfire_kv_apply(kv, "{\"op\":", 6, &res), 0);
    ck_assert_int_eq(refused(res), UC_EINVAL);
    ck_assert_int_eq(chainfire_kv_apply(kv, "{\"op\":\"put\"}", 12, &res), 0);
    ck_assert_int_eq(refused(res), UC_EINVAL);
    ck_assert_int_eq(chainfire_kv_revision(kv), 0);
}
END_TEST

/* A TCase with the store fixture, added to s. */
static TCase *tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *kv_suite(void)
{
    Suite *s = suite_create("chainfire_kv");
    TCase *tc = tcase(s, "put");
    tcase_add_test(tc, put_bumps_the_revision_and_the_key_version);
    tcase_add_test(tc, put_with_an_empty_value_is_kept);
    tc = tcase(s, "range");
    tcase_add_test(tc, range_by_prefix_excludes_neighbours);
    tcase_add_test(tc, range_start_end_is_half_open);
    tcase_add_test(tc, range_limit_sets_more_and_counts_all);
    tcase_add_test(tc, range_keys_only_and_count_only);
    tcase_add_test(tc, range_at_a_past_revision_sees_old_values);
    tcase_add_test(tc, range_refuses_future_revisions_and_bad_keys);
    tc = tcase(s, "delete");
    tcase_add_test(tc, delete_single_then_recreate_resets_version);
    tcase_add_test(tc, delete_by_prefix_removes_only_the_prefix);
    tc = tcase(s, "txn");
    tcase_add_test(tc, txn_compare_and_swap_on_value);
    tcase_add_test(tc, txn_numeric_compares_cover_every_operator);
    tcase_add_test(tc, txn_failure_branch_runs_and_reads_see_writes);
    tcase_add_test(tc, txn_writes_share_one_revision);
    tc = tcase(s, "lease");
    tcase_add_test(tc, lease_revoke_deletes_attached_keys);
    tcase_add_test(tc, lease_unknown_or_duplicate_is_refused_without_change);
    tcase_add_test(tc, lease_list_is_in_id_order);
    tc = tcase(s, "compact");
    tcase_add_test(tc, compact_drops_old_revisions_but_keeps_current);
    tcase_add_test(tc, compaction_frees_history_a_step_per_apply);
    tcase_add_test(tc, stepwise_compaction_ends_where_a_one_shot_one_does);
    tcase_add_test(tc, sweep_keeps_its_place_when_keys_are_added);
    tcase_add_test(tc, snapshot_in_mid_sweep_holds_only_what_compaction_keeps);
    tc = tcase(s, "snapshot_restore");
    tcase_add_test(tc, snapshot_round_trips_history_and_leases);
    tcase_add_test(tc, restore_of_garbage_leaves_the_store_unchanged);
    tcase_add_test(tc, restore_of_an_old_json_snapshot_says_what_to_do);
    tcase_add_test(tc, restore_refuses_truncated_or_corrupt_snapshots);
    tcase_add_test(tc, restore_out_of_memory_leaves_the_store_unchanged);
    tcase_add_test(tc, view_encodes_the_state_it_was_taken_at_while_the_store_changes);
    tcase_add_test(tc, empty_store_round_trips);
    tc = tcase(s, "changes");
    tcase_add_test(tc, changes_come_in_revision_order_with_deletes);
    tcase_add_test(tc, changes_from_a_compacted_revision_name_the_oldest);
    tc = tcase(s, "check_apply");
    tcase_add_test(tc, check_refuses_malformed_and_oversized_commands);
    tcase_add_test(tc, apply_of_a_malformed_command_is_refused_without_change);
    return s;
}

int main(void) { return uc_check_run(kv_suite()); }
