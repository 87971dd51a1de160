/* test_db_sql_body.c - the fast reader of SQL request bodies. Its one
 * promise: what it accepts, the general path (jansson and the field rules)
 * accepts as the very same request; everything else it hands back. Checked
 * on chosen bodies and on thousands of mutated ones. */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../db_internal.h"
#include "uc/alloc.h"
#include "uc_check.h"

static char err[UC_ERR_LEN];

/* The general path: jansson, the top-level fields, then the statements. */
static int general(const char *body, size_t len, struct flaredb_sql **q,
                   struct flaredb_sql_body *top)
{
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return UC_EINVAL;
    }
    int rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        if (strcmp(key, "transaction") == 0 || strcmp(key, "confirm_destructive") == 0)
            rc |= json_is_boolean(v) ? 0 : 1;
        else if (strcmp(key, "consistency") == 0)
            rc |= json_is_string(v) && json_string_length(v) >= 1 && json_string_length(v) <= 32
                      ? 0
                      : 1;
        else if (strcmp(key, "statements") != 0)
            rc = 1;
    }
    json_t *stmts = json_object_get(j, "statements");
    if (rc || json_array_size(stmts) < 1 || json_array_size(stmts) > FLAREDB_DB_MAX_STATEMENTS) {
        json_decref(j);
        return UC_EINVAL;
    }
    *top = (struct flaredb_sql_body){
        .transaction = !json_is_false(json_object_get(j, "transaction")),
        .confirm_destructive = json_is_true(json_object_get(j, "confirm_destructive"))};
    json_t *cmd =
        json_pack("{sssOsb}", "op", "sql", "statements", stmts, "transaction", top->transaction);
    rc = flaredb_sql_from_json(cmd, q, err);
    json_decref(cmd);
    json_decref(j);
    return rc;
}

static void same_request(const struct flaredb_sql *a, const struct flaredb_sql *b)
{
    ck_assert_uint_eq(a->req.n, b->req.n);
    ck_assert_int_eq(a->req.tx, b->req.tx);
    for (size_t i = 0; i < a->req.n; i++) {
        const struct sql_stmt *x = &a->req.stmts[i], *y = &b->req.stmts[i];
        ck_assert_uint_eq(x->len, y->len);
        ck_assert(memcmp(x->sql, y->sql, x->len) == 0);
        ck_assert_uint_eq(x->np, y->np);
        for (size_t k = 0; k < x->np; k++) {
            const struct sql_param *p = &x->params[k], *r = &y->params[k];
            ck_assert_int_eq(p->type, r->type);
            ck_assert_int_eq(p->i, r->i);
            ck_assert(memcmp(&p->d, &r->d, sizeof(p->d)) == 0);
            ck_assert_uint_eq(p->n, r->n);
            ck_assert(p->n == 0 || memcmp(p->p, r->p, p->n) == 0);
        }
    }
}

/* Parses `body` both ways; returns what the fast reader said. */
static int both(const char *body, size_t len)
{
    struct flaredb_sql *fast = NULL, *slow = NULL;
    struct flaredb_sql_body ft, st;
    int rc = flaredb_sql_parse_fast(body, len, &fast, &ft);
    ck_assert(rc == 0 || rc == FLAREDB_SQL_GENERAL);
    if (rc == 0) {
        ck_assert_msg(general(body, len, &slow, &st) == 0, "accepted, but not generally: %.*s",
                      (int)len, body);
        same_request(fast, slow);
        ck_assert_int_eq(ft.transaction, st.transaction);
        ck_assert_int_eq(ft.confirm_destructive, st.confirm_destructive);
    }
    flaredb_sql_free(fast);
    flaredb_sql_free(slow);
    return rc;
}

static int both_s(const char *body) { return both(body, strlen(body)); }

static const char usual[] =
    " {\"statements\" : [ {\"sql\":\"INSERT INTO t(a, b) VALUES (?, ?)\",\"params\":[1, \"x\"]},\n"
    "{\"params\":[-0, 1.5e3, -9223372036854775808, 9223372036854775807, true, false, null, "
    "\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u4E2D\\u0041\", "
    "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\", "
    "0.1, 2E-3, 1e+2],"
    "\"sql\":\"SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?\"}],\t\"transaction\":false, "
    "\"consistency\":\"serializable\",\"confirm_destructive\":true}\r\n";

START_TEST(the_usual_shape_is_read_as_the_general_path_reads_it)
{
    ck_assert_int_eq(both_s(usual), 0);
    struct flaredb_sql *q = NULL;
    struct flaredb_sql_body top;
    ck_assert_int_eq(flaredb_sql_parse_fast(usual, strlen(usual), &q, &top), 0);
    ck_assert_str_eq(top.consistency, "serializable");
    ck_assert(!top.transaction && top.confirm_destructive);
    ck_assert_uint_eq(flaredb_sql_count(q), 2);
    ck_assert_int_eq(q->req.stmts[1].params[2].i, INT64_MIN);
    ck_assert_int_eq(q->req.stmts[1].params[4].i, 1);
    ck_assert_int_eq(q->req.stmts[1].params[6].type, SQLITE_NULL);
    ck_assert_str_eq(q->req.stmts[1].params[7].p, "q\"\\/\b\f\n\r\t\xc3\xa9\xe4\xb8\xad"
                                                  "A");
    flaredb_sql_free(q);
    ck_assert_int_eq(both_s("{\"statements\":[{\"sql\":\"SELECT 1\"}]}"), 0);
    ck_assert_int_eq(both_s("{\"statements\":[{\"sql\":\"SELECT 1\",\"params\":[]}]}"), 0);
}
END_TEST

START_TEST(anything_unusual_goes_the_general_way)
{
    static const char *const odd[] = {
        "",
        "[]",
        "{}",
        "{\"statements\":[]}",
        "{\"statements\":[{\"sql\":\"\"}]}",
        "{\"statements\":[{\"params\":[]}]}",
        "{\"statements\":[{\"sql\":\"SELECT ?\",\"params\":[{\"blob\":\"AA\"}]}]}",
        "{\"statements\":[{\"sql\":\"SELECT ?\",\"params\":[[1]]}]}",
        "{\"statements\":[{\"sql\":\"SELECT 1\",\"sql\":\"SELECT 2\"}]}",
        "{\"statements\":[{\"sql\":\"SELECT 1\"}],\"statements\":[{\"sql\":\"SELECT 2\"}]}",
        "{\"statements\":[{\"sql\":\"SELECT 1\"}],\"allow\":\"ddl_destructive\"}",
        "{\"statements\":[{\"sql\":\"SELECT 1\",\"x\":1}]}",
        "{\"statements\":[{\"sql\":\"SELECT \\u0000\"}]}",
        "{\"statements\":[{\"sql\":\"SELECT '\\ud83d\\ude00'\"}]}",
        "{\"statements\":[{\"sql\":\"SELECT '\xff'\"}]}",
        "{\"statements\":[{\"sql\":\"SELECT '\xc0\x80'\"}]}",
        "{\"statements\":[{\"sql\":\"SELECT 1\"}]} x",
        "{\"statements\":[{\"sql\":\"SELECT ?\",\"params\":[9223372036854775808]}]}",
        "{\"statements\":[{\"sql\":\"SELECT ?\",\"params\":[-9223372036854775809]}]}",
        "{\"statements\":[{\"sql\":\"SELECT ?\",\"params\":[1e999]}]}",
        "{\"statements\":[{\"sql\":\"SELECT ?\",\"params\":[01]}]}",
        "{\"statements\":[{\"sql\":\"SELECT ?\",\"params\":[1.]}]}",
        "{\"statements\":[{\"sql\":\"SELECT ?\",\"params\":[.5]}]}",
        "{\"statements\":[{\"sql\":\"SELECT ?\",\"params\":[+1]}]}",
        "{\"statements\":[{\"sql\":\"SELECT ?\",\"params\":[tru]}]}",
        "{\"statements\":[{\"sql\":\"SELECT 1\"}],\"consistency\":\"\"}",
        "{\"statements\":[{\"sql\":\"SELECT 1\"}],\"transaction\":1}",
        "{\"statements\":[{\"sql\":\"SELECT\tx\"}]}",
        "{\"statements\":[{\"sql\":\"SELECT 1\"},]}",
        "{\"statements\":[{\"sql\":\"SELECT 1\"}],}",
    };
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
        ck_assert_msg(both_s(odd[i]) == FLAREDB_SQL_GENERAL, "read fast: %s", odd[i]);
    /* 101 statements */
    char big[4096] = "{\"statements\":[";
    for (int i = 0; i <= FLAREDB_DB_MAX_STATEMENTS; i++)
        strcat(big, i ? ",{\"sql\":\"S\"}" : "{\"sql\":\"S\"}");
    strcat(big, "]}");
    ck_assert_int_eq(both_s(big), FLAREDB_SQL_GENERAL);
    /* every proper prefix of a usual body */
    for (size_t n = 0; n + 3 < strlen(usual); n++)
        ck_assert_msg(both(usual, n) == FLAREDB_SQL_GENERAL, "a prefix of %zu bytes", n);
}
END_TEST

START_TEST(mutated_bodies_are_read_fast_only_when_the_general_path_agrees)
{
    size_t len = strlen(usual);
    char *b = uc_malloc(len + 1);
    ck_assert_ptr_nonnull(b);
    static const char alphabet[] = "{}[]\":,\\ 0123456789.-+eEtrufalsn\"x\xc3\xa9\x80";
    unsigned seed = 12345, accepted = 0;
    for (int round = 0; round < 8000; round++) {
        memcpy(b, usual, len + 1);
        int flips = 1 + (int)(rand_r(&seed) % 3);
        for (int f = 0; f < flips; f++)
            b[rand_r(&seed) % len] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
        accepted += both(b, len) == 0;
    }
    ck_assert_uint_gt(accepted, 100); /* many mutations are still the usual shape */
    uc_free(b);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("flaredb_db_sql_body");
    TCase *tc = tcase_create("body");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, the_usual_shape_is_read_as_the_general_path_reads_it);
    tcase_add_test(tc, anything_unusual_goes_the_general_way);
    tcase_add_test(tc, mutated_bodies_are_read_fast_only_when_the_general_path_agrees);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return uc_check_run(suite()); }
