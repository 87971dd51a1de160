/* test_db_entry.c - the binary "sql" log entry: it must apply exactly as the
 * JSON command it was encoded from, keep each distinct text once, and be
 * refused the same way on every member when it is malformed (every
 * truncation, every flipped byte), never crashing a member. */
#include <check.h>
#include <jansson.h>
#include <string.h>

#include "../db_internal.h"
#include "test_db_fixture.h"
#include "uc_check.h"

static void setup(void)
{
    fx_setup();
    fx_exec("CREATE TABLE t(id INTEGER PRIMARY KEY, a, b, c)");
}

/* A command with every kind of parameter. */
static json_t *mixed(void)
{
    json_t *cmd = json_pack(
        "{s:s,s:[{s:s,s:[I,f,s]},{s:s,s:[I,n,{s:s}]},{s:s,s:[b,s,s#]}],s:b,s:I,s:[s]}", "op", "sql",
        "statements", "sql", "INSERT INTO t(a, b, c) VALUES (?, ?, ?)", "params",
        (json_int_t)-9007199254740993LL, 2.5, "text", "sql",
        "INSERT INTO t(a, b, c) VALUES (?, ?, ?)", "params", (json_int_t)INT64_MIN, "blob",
        "AAEC_w", "sql", "INSERT INTO t(a, b, c) VALUES (?, ?, ?)", "params", 1, "", "tab\tin",
        (size_t)6, "transaction", 0, "max_steps", (json_int_t)123456, "hidden", "secret");
    ck_assert_ptr_nonnull(cmd);
    return cmd;
}

static void encode(const json_t *cmd, void **buf, size_t *len)
{
    ck_assert_msg(flaredb_db_encode(cmd, buf, len, err) == 0, "%s", err);
    ck_assert(flaredb_db_entry_binary(*buf, *len));
}

/* The rows of t as one JSON array of typed values. */
static json_t *table(void)
{
    json_t *out = NULL;
    ck_assert_int_eq(fx_query("SELECT id, a, typeof(a), b, typeof(b), hex(c), typeof(c) FROM t "
                              "ORDER BY id",
                              &out),
                     0);
    json_t *rows =
        json_incref(json_object_get(json_array_get(json_object_get(out, "results"), 0), "rows"));
    json_decref(out);
    return rows;
}

START_TEST(a_binary_entry_applies_as_its_json_command)
{
    json_t *cmd = mixed();
    void *buf = NULL;
    size_t len = 0;
    encode(cmd, &buf, &len);
    json_t *bin = NULL, *js = NULL;
    ck_assert_int_eq(flaredb_db_apply(db, buf, len, ++fx_index, &bin), 0);
    json_t *after_bin = table();
    fx_exec("DELETE FROM t");
    char *text = json_dumps(cmd, JSON_COMPACT);
    ck_assert_int_eq(flaredb_db_apply(db, text, strlen(text), ++fx_index, &js), 0);
    free(text);
    json_t *after_js = table();
    /* same values and types (ids aside, removed from here on) */
    ck_assert_uint_eq(json_array_size(after_bin), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *a = json_array_get(after_bin, i), *b = json_array_get(after_js, i);
        ck_assert(json_array_remove(a, 0) == 0 && json_array_remove(b, 0) == 0);
        ck_assert_msg(json_equal(a, b), "row %zu differs", i);
    }
    ck_assert_str_eq(json_string_value(json_array_get(json_array_get(after_bin, 0), 1)), "integer");
    ck_assert_str_eq(json_string_value(json_array_get(json_array_get(after_bin, 1), 5)), "blob");
    ck_assert_str_eq(json_string_value(json_array_get(json_array_get(after_bin, 2), 4)),
                     "74616209696E"); /* the bytes of a text sized by length */
    ck_assert_int_eq(json_array_size(json_object_get(bin, "results")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_array_get(json_object_get(bin, "results"), 2), "rows_affected")),
                     1);
    json_decref(after_bin);
    json_decref(after_js);
    json_decref(bin);
    json_decref(js);
    json_decref(cmd);
    uc_free(buf);
}
END_TEST

START_TEST(a_batch_keeps_its_one_text_once)
{
    json_t *stmts = json_array();
    for (int i = 0; i < FLAREDB_DB_MAX_STATEMENTS; i++)
        ck_assert_int_eq(json_array_append_new(stmts, json_pack("{s:s,s:[i,s]}", "sql",
                                                                "INSERT INTO t(a, b) VALUES (?, ?)",
                                                                "params", i, "v")),
                         0);
    json_t *cmd = json_pack("{s:s,s:o}", "op", "sql", "statements", stmts);
    void *buf = NULL;
    size_t len = 0;
    encode(cmd, &buf, &len);
    const char *text = "INSERT INTO t(a, b) VALUES (?, ?)";
    const char *hit = memmem(buf, len, text, strlen(text));
    ck_assert_ptr_nonnull(hit);
    size_t rest = len - (size_t)(hit - (const char *)buf) - 1;
    ck_assert_ptr_null(memmem(hit + 1, rest, text, strlen(text)));
    ck_assert_uint_lt(len, 1000); /* the JSON form is about 6 KB */
    json_t *res = NULL;
    ck_assert_int_eq(flaredb_db_apply(db, buf, len, ++fx_index, &res), 0);
    ck_assert_int_eq(fx_code(res), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), FLAREDB_DB_MAX_STATEMENTS);
    ck_assert_int_eq(fx_scalar("SELECT sum(a) FROM t"), 99 * 100 / 2);
    json_decref(cmd);
    uc_free(buf);
}
END_TEST

/* Applies `len` bytes of `buf` at the next index; returns the error code
 * of the answer (0: applied as a command). */
static int apply_bytes(const void *buf, size_t len)
{
    json_t *res = NULL;
    ck_assert_int_eq(flaredb_db_apply(db, buf, len, ++fx_index, &res), 0);
    ck_assert_uint_eq(flaredb_db_applied(db), fx_index);
    return fx_code(res);
}

START_TEST(every_truncation_and_trailing_byte_is_refused_and_changes_nothing)
{
    json_t *cmd = mixed();
    void *buf = NULL;
    size_t len = 0;
    encode(cmd, &buf, &len);
    for (size_t n = 1; n < len; n++)
        ck_assert_msg(apply_bytes(buf, n) == UC_EINVAL, "a prefix of %zu bytes applied", n);
    char *longer = uc_malloc(len + 1);
    ck_assert_ptr_nonnull(longer);
    memcpy(longer, buf, len);
    longer[len] = 0;
    ck_assert_int_eq(apply_bytes(longer, len + 1), UC_EINVAL);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 0);
    ck_assert_int_eq(apply_bytes(buf, len), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 3);
    uc_free(longer);
    uc_free(buf);
    json_decref(cmd);
}
END_TEST

START_TEST(flipped_bytes_never_crash_and_apply_deterministically)
{
    json_t *cmd = mixed();
    void *buf = NULL;
    size_t len = 0;
    encode(cmd, &buf, &len);
    unsigned char *b = buf;
    static const unsigned char vals[] = {0x00, 0x01, 0x7F, 0x80, 0xFF};
    for (size_t i = 1; i < len; i++) {
        unsigned char keep = b[i];
        for (size_t k = 0; k < sizeof(vals); k++) {
            b[i] = vals[k];
            int code = apply_bytes(b, len);
            /* a command that still decodes may fail as SQL; nothing else */
            ck_assert_msg(code == 0 || code == UC_EINVAL || code == UC_ECONFLICT ||
                              code == UC_EFORBIDDEN || code == UC_E2BIG || code == UC_ENOENT,
                          "byte %zu = %u: code %d", i, vals[k], code);
        }
        b[i] = keep;
    }
    uc_free(buf);
    json_decref(cmd);
}
END_TEST

START_TEST(a_parameter_of_no_sql_type_is_not_encoded)
{
    json_t *cmd = json_pack("{s:s,s:[{s:s,s:[[i]]}]}", "op", "sql", "statements", "sql",
                            "INSERT INTO t(a) VALUES (?)", "params", 1);
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(flaredb_db_encode(cmd, &buf, &len, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "statements[0]: parameter 1"));
    json_decref(cmd);
    /* other commands stay JSON */
    cmd = json_pack("{s:s,s:s,s:s,s:s}", "op", "kv_put", "ns", "n", "key", "aw", "value", "");
    ck_assert_int_eq(flaredb_db_encode(cmd, &buf, &len, err), 0);
    ck_assert(!flaredb_db_entry_binary(buf, len));
    ck_assert_int_eq(((const char *)buf)[0], '{');
    uc_free(buf);
    json_decref(cmd);
}
END_TEST

START_TEST(the_answer_text_is_the_json_answer_with_its_index)
{
    json_t *cmd = json_pack("{s:s,s:[{s:s,s:[i]},{s:s},{s:s}],s:s}", "op", "sql", "statements",
                            "sql", "INSERT INTO t(a) VALUES (?)", "params", 7, "sql",
                            "UPDATE t SET b = 'x' RETURNING id, a, b", "sql",
                            "DELETE FROM t WHERE a = 8", "allow", "write");
    void *buf = NULL;
    size_t len = 0;
    encode(cmd, &buf, &len);
    struct flaredb_result *res = NULL;
    ck_assert_int_eq(flaredb_db_apply_result(db, buf, len, ++fx_index, &res), 0);
    ck_assert_ptr_null(flaredb_result_error(res));
    size_t tlen = 0;
    char *text = flaredb_result_text(res, 42, true, &tlen);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), tlen);
    json_t *got = json_loads(text, 0, NULL), *want = flaredb_result_json(res);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(json_object_set_new(want, "index", json_integer(42)), 0);
    ck_assert_msg(json_equal(got, want), "%s", text);
    json_t *first = json_array_get(json_object_get(got, "results"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(first, "last_insert_id")), 1);
    ck_assert_int_eq(json_array_size(json_object_get(
                         json_array_get(json_object_get(got, "results"), 1), "rows")),
                     1);
    uc_free(text);
    text = flaredb_result_text(res, 42, false, &tlen);
    ck_assert_ptr_null(strstr(text, "index"));
    uc_free(text);
    json_decref(got);
    json_decref(want);
    flaredb_result_free(res);
    uc_free(buf);
    json_decref(cmd);
}
END_TEST

START_TEST(a_restricted_request_carries_its_restrictions_into_the_entry_and_the_read)
{
    json_t *cmd = json_pack("{s:s,s:[{s:s}]}", "op", "sql", "statements", "sql",
                            "INSERT INTO t(a) VALUES (1)");
    json_t *hidden = json_pack("[s]", "T");
    struct flaredb_sql *q = NULL;
    ck_assert_int_eq(flaredb_sql_from_json(cmd, &q, err), 0);
    flaredb_sql_restrict(q, hidden);
    json_decref(hidden); /* q keeps its own reference */
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(flaredb_sql_encode(q, FLAREDB_DB_WRITE, 1000, &buf, &len, err), 0);
    /* apply enforces them too, not only the leader's check */
    ck_assert_int_eq(apply_bytes(buf, len), UC_ENOENT);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 0);
    json_t *out = NULL;
    json_decref(cmd);
    cmd = json_pack("{s:[{s:s}]}", "statements", "sql", "SELECT count(*) FROM t");
    struct flaredb_sql *r = NULL;
    ck_assert_int_eq(flaredb_sql_from_json(cmd, &r, err), 0);
    hidden = json_pack("[s]", "t");
    flaredb_sql_restrict(r, hidden);
    json_decref(hidden);
    ck_assert_int_eq(flaredb_db_query_sql(db, r, &out, err), UC_ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "no such table"));
    flaredb_sql_free(r);
    flaredb_sql_free(q);
    uc_free(buf);
    json_decref(cmd);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("flaredb_db_entry");
    TCase *tc = uc_check_tcase("entry", setup, fx_teardown);
    tcase_add_test(tc, a_binary_entry_applies_as_its_json_command);
    tcase_add_test(tc, a_batch_keeps_its_one_text_once);
    tcase_add_test(tc, every_truncation_and_trailing_byte_is_refused_and_changes_nothing);
    tcase_add_test(tc, flipped_bytes_never_crash_and_apply_deterministically);
    tcase_add_test(tc, a_parameter_of_no_sql_type_is_not_encoded);
    tcase_add_test(tc, the_answer_text_is_the_json_answer_with_its_index);
    tcase_add_test(tc, a_restricted_request_carries_its_restrictions_into_the_entry_and_the_read);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return uc_check_run(suite()); }
