/* test_db_cache.c - the prepared-statement cache of the write connection and
 * the leader's once-per-text check: a text is compiled once and reused, a
 * schema change or other restrictions ("hidden") never reuse a statement
 * authorized before, and the determinism rules hold for cached texts too.
 * Looks inside the handle (db_internal.h) to see what the cache holds. */
#include "../db_internal.h"
#include "test_db_fixture.h"
#include "uc_check.h"

static void setup(void)
{
    fx_setup();
    fx_exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    fx_exec("CREATE TABLE secret(id INTEGER PRIMARY KEY, v TEXT)");
}

static void teardown(void) { fx_teardown(); }

#define INS "INSERT INTO t(v) VALUES (?1)"

/* A command of n copies of INS with params "v<i>"; `hidden` may be NULL. */
static json_t *batch(size_t n, const char *hidden)
{
    json_t *stmts = json_array();
    for (size_t i = 0; i < n; i++) {
        char v[32];
        snprintf(v, sizeof(v), "v%zu", i);
        ck_assert_int_eq(
            json_array_append_new(stmts, json_pack("{s:s,s:[s]}", "sql", INS, "params", v)), 0);
    }
    json_t *cmd = json_pack("{s:s,s:o}", "op", "sql", "statements", stmts);
    ck_assert_ptr_nonnull(cmd);
    if (hidden)
        ck_assert_int_eq(json_object_set_new(cmd, "hidden", json_pack("[s]", hidden)), 0);
    return cmd;
}

static sqlite3_stmt *cached(const char *sql)
{
    struct authz az;
    return flaredb_cache_find(&db->wcache, AZ_WRITE, sql, strlen(sql), &az);
}

START_TEST(a_batch_compiles_its_text_once_and_later_entries_reuse_it)
{
    ck_assert_int_eq(fx_code(fx_apply_json(batch(100, NULL))), 0);
    ck_assert_uint_eq(db->wcache.n, 1);
    sqlite3_stmt *st = cached(INS);
    ck_assert_ptr_nonnull(st);
    json_t *res = fx_apply_json(batch(3, NULL));
    json_t *results = json_object_get(res, "results");
    ck_assert_uint_eq(json_array_size(results), 3);
    /* each answer describes its own statement, not the reused one's last run */
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_array_get(results, 2), "last_insert_id")), 103);
    json_decref(res);
    ck_assert_ptr_eq(cached(INS), st);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 103);
    ck_assert_int_eq(fx_scalar("SELECT count(DISTINCT v) FROM t"), 100);
}
END_TEST

START_TEST(a_schema_change_empties_the_cache_and_the_new_schema_shows)
{
    fx_exec("SELECT * FROM t");
    ck_assert_ptr_nonnull(cached("SELECT * FROM t"));
    fx_exec("ALTER TABLE t ADD COLUMN extra INTEGER DEFAULT 7");
    ck_assert_uint_eq(db->wcache.n, 0);
    fx_exec("INSERT INTO t(v) VALUES ('x')");
    json_t *res = fx_sql("SELECT * FROM t");
    json_t *r0 = json_array_get(json_object_get(res, "results"), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(r0, "columns")), 3);
    ck_assert_int_eq(
        json_integer_value(json_array_get(json_array_get(json_object_get(r0, "rows"), 0), 2)), 7);
    json_decref(res);
    /* a DDL rolled back with its entry leaves nothing compiled against it */
    res = fx_apply("{s:s,s:[{s:s},{s:s},{s:s}],s:s}", "op", "sql", "statements", "sql",
                   "CREATE TABLE gone(a)", "sql", "INSERT INTO gone VALUES (1)", "sql",
                   "INSERT INTO nowhere VALUES (1)", "allow", "ddl_additive");
    ck_assert_int_eq(fx_code(res), UC_EINVAL);
    ck_assert_ptr_null(cached("INSERT INTO gone VALUES (1)"));
    ck_assert_int_eq(fx_code(fx_sql("INSERT INTO gone VALUES (1)")), UC_EINVAL);
}
END_TEST

START_TEST(other_restrictions_never_reuse_a_statement_authorized_before)
{
    const char *ins = "INSERT INTO secret(v) VALUES ('a')";
    fx_exec(ins);
    ck_assert_ptr_nonnull(cached(ins));
    json_t *res = fx_apply("{s:s,s:[{s:s}],s:[s]}", "op", "sql", "statements", "sql", ins, "hidden",
                           "secret");
    ck_assert_str_eq(fx_msg(res), "statements[0]: no such table: secret");
    ck_assert_int_eq(fx_code(res), UC_ENOENT);
    /* and the other way round: authorized under a hidden list, then without */
    res = fx_apply_json(batch(2, "secret"));
    ck_assert_int_eq(fx_code(res), 0);
    ck_assert_ptr_nonnull(cached(INS));
    ck_assert_int_eq(fx_code(fx_apply_json(batch(2, "t"))), UC_ENOENT);
    ck_assert_int_eq(fx_code(fx_apply_json(batch(2, NULL))), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM secret"), 1);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 4);
}
END_TEST

START_TEST(determinism_is_enforced_for_every_use_of_a_text)
{
    const char *nondet = "INSERT INTO t(v) VALUES (random())";
    for (int i = 0; i < 2; i++) {
        json_t *res = fx_sql(nondet);
        ck_assert_ptr_nonnull(strstr(fx_msg(res), "random() is not deterministic"));
        ck_assert_int_eq(fx_code(res), UC_EINVAL);
        ck_assert_ptr_null(cached(nondet));
    }
    /* a read of the same function is fine on a reader, and still refused in a write */
    json_t *out = NULL;
    ck_assert_int_eq(fx_query("SELECT random() IS NOT NULL", &out), 0);
    json_decref(out);
    ck_assert_int_eq(fx_code(fx_sql("SELECT random() IS NOT NULL")), UC_EINVAL);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 0);
}
END_TEST

static int check(json_t *cmd, enum flaredb_db_class *cls)
{
    struct flaredb_db_verdict v = {0};
    int rc = flaredb_db_check(db, cmd, &v, err);
    if (rc == 0)
        *cls = v.cls;
    flaredb_db_verdict_clear(&v);
    json_decref(cmd);
    return rc;
}

START_TEST(the_check_of_a_batch_checks_every_statement)
{
    enum flaredb_db_class cls = FLAREDB_DB_READ;
    ck_assert_int_eq(check(batch(100, NULL), &cls), 0);
    ck_assert_int_eq(cls, FLAREDB_DB_WRITE);
    json_t *cmd = batch(100, NULL);
    json_t *s57 = json_array_get(json_object_get(cmd, "statements"), 57);
    ck_assert_int_eq(json_object_set_new(s57, "params", json_array()), 0);
    ck_assert_int_eq(check(cmd, &cls), UC_EINVAL);
    ck_assert_str_eq(err, "statements[57] has 1 parameter, 0 given");
    cmd = batch(5, NULL);
    ck_assert_int_eq(json_array_append_new(json_object_get(cmd, "statements"),
                                           json_pack("{s:s}", "sql", "SELECT random()")),
                     0);
    ck_assert_int_eq(check(cmd, &cls), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "statements[5]: random() is not deterministic"));
    ck_assert_int_eq(check(batch(3, "t"), &cls), UC_ENOENT);
}
END_TEST

START_TEST(a_restore_drops_the_cache)
{
    fx_exec("INSERT INTO t(v) VALUES ('a')");
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(flaredb_db_snapshot(db, &buf, &len, err), 0);
    ck_assert_int_eq(fx_code(fx_apply_json(batch(2, NULL))), 0);
    ck_assert_uint_eq(db->wcache.n, 2);
    ck_assert_msg(flaredb_db_restore(db, buf, len, ++fx_index, err) == 0, "%s", err);
    uc_free(buf);
    ck_assert_uint_eq(db->wcache.n, 0);
    ck_assert_int_eq(fx_code(fx_apply_json(batch(2, NULL))), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 3);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("flaredb_db_cache");
    TCase *tc = tcase_create("cache");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_batch_compiles_its_text_once_and_later_entries_reuse_it);
    tcase_add_test(tc, a_schema_change_empties_the_cache_and_the_new_schema_shows);
    tcase_add_test(tc, other_restrictions_never_reuse_a_statement_authorized_before);
    tcase_add_test(tc, determinism_is_enforced_for_every_use_of_a_text);
    tcase_add_test(tc, the_check_of_a_batch_checks_every_statement);
    tcase_add_test(tc, a_restore_drops_the_cache);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return uc_check_run(suite()); }
