/* test_db_acl.c - project restrictions in the database: acl_set and
 * acl_delete through apply, the listing and its generation counter, and the
 * "hidden" list of a sql command, which the authorizer enforces on check,
 * apply and reads alike. */
#include "test_db_fixture.h"
#include "uc_check.h"

static void setup(void)
{
    fx_setup();
    fx_exec("CREATE TABLE secret(id INTEGER PRIMARY KEY, v TEXT)");
    fx_exec("CREATE TABLE open(id INTEGER PRIMARY KEY, v TEXT)");
    fx_exec("INSERT INTO secret(v) VALUES ('s1')");
}

static void teardown(void) { fx_teardown(); }

static json_t *acl_set(const char *kind, const char *name, const char *project)
{
    return fx_apply("{s:s,s:s,s:s,s:s}", "op", "acl_set", "kind", kind, "name", name, "project",
                    project);
}

static json_t *acl_delete(const char *kind, const char *name)
{
    return fx_apply("{s:s,s:s,s:s}", "op", "acl_delete", "kind", kind, "name", name);
}

static char *listing(void)
{
    json_t *out = NULL;
    ck_assert_msg(flaredb_db_acl_list(db, &out, err) == 0, "%s", err);
    char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(out);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* A one-statement sql command hiding `hidden` (one name). */
static json_t *hiding(const char *sql, const char *hidden)
{
    return json_pack("{s:s,s:[{s:s}],s:[s],s:s}", "op", "sql", "statements", "sql", sql, "hidden",
                     hidden, "allow", "ddl_destructive");
}

static int check_code(json_t *cmd)
{
    struct flaredb_db_verdict v = {0};
    int rc = flaredb_db_check(db, cmd, &v, err);
    flaredb_db_verdict_clear(&v);
    json_decref(cmd);
    return rc;
}

START_TEST(restrictions_are_set_listed_moved_and_deleted)
{
    uint64_t g0 = flaredb_db_acl_generation(db);
    ck_assert_int_eq(fx_code(acl_set("table", "Secret", "proj-a")), 0);
    ck_assert_int_eq(fx_code(acl_set("namespace", "ns.1", "proj-a")), 0);
    ck_assert_uint_gt(flaredb_db_acl_generation(db), g0);
    char *s = listing();
    ck_assert_str_eq(s, "{\"items\":[{\"kind\":\"namespace\",\"name\":\"ns.1\",\"project\":"
                        "\"proj-a\"},{\"kind\":\"table\",\"name\":\"secret\",\"project\":"
                        "\"proj-a\"}]}");
    free(s);
    ck_assert_int_eq(fx_code(acl_set("table", "secret", "proj-b")), 0); /* moves it */
    ck_assert_int_eq(fx_code(acl_delete("namespace", "ns.1")), 0);
    uint64_t g1 = flaredb_db_acl_generation(db);
    ck_assert_int_eq(fx_code(acl_delete("namespace", "ns.1")), UC_ENOENT);
    ck_assert_uint_eq(flaredb_db_acl_generation(db), g1); /* a failed change moves nothing */
    s = listing();
    ck_assert_str_eq(s, "{\"items\":[{\"kind\":\"table\",\"name\":\"secret\",\"project\":"
                        "\"proj-b\"}]}");
    free(s);
}
END_TEST

START_TEST(malformed_restrictions_fail_alike_on_check_and_apply)
{
    static const char *const bad[] = {
        "{\"op\":\"acl_set\",\"kind\":\"bucket\",\"name\":\"x\",\"project\":\"p\"}",
        "{\"op\":\"acl_set\",\"kind\":\"namespace\",\"name\":\"UP\",\"project\":\"p\"}",
        "{\"op\":\"acl_set\",\"kind\":\"table\",\"name\":\"t\"}",
        "{\"op\":\"acl_delete\",\"kind\":\"table\",\"name\":\"t\",\"project\":\"p\"}",
        "{\"op\":\"acl_set\",\"kind\":\"table\",\"name\":\"_flaredb_kv\",\"project\":\"p\"}",
        "{\"op\":\"acl_set\",\"kind\":\"table\",\"name\":\"t\",\"project\":\"P Q\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *cmd = json_loads(bad[i], 0, NULL);
        ck_assert_ptr_nonnull(cmd);
        ck_assert_msg(check_code(json_incref(cmd)) == UC_EINVAL, "%s", bad[i]);
        ck_assert_int_eq(fx_code(fx_apply_json(cmd)), UC_EINVAL);
    }
    char *s = listing();
    ck_assert_str_eq(s, "{\"items\":[]}");
    free(s);
}
END_TEST

START_TEST(hidden_tables_read_as_missing_everywhere)
{
    static const char *const uses[] = {
        "SELECT * FROM secret",
        "SELECT * FROM open JOIN SECRET",
        "INSERT INTO secret(v) VALUES ('x')",
        "DELETE FROM secret",
        "DROP TABLE secret",
        "ALTER TABLE secret ADD COLUMN w",
        "CREATE INDEX i ON secret(v)",
        "PRAGMA table_info(secret)",
    };
    for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]); i++) {
        ck_assert_msg(check_code(hiding(uses[i], "secret")) == UC_ENOENT, "%s: %s", uses[i], err);
        ck_assert_msg(strstr(err, "no such table: ") != NULL, "%s", err);
    }
    /* apply and reads hold the same line without the leader's check */
    json_t *res = fx_apply_json(hiding("DELETE FROM secret", "secret"));
    ck_assert_int_eq(fx_code(res), UC_ENOENT);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM secret"), 1);
    json_t *req = hiding("SELECT v FROM secret", "SECRET"), *out = NULL;
    ck_assert_int_eq(flaredb_db_query(db, req, &out, err), UC_ENOENT);
    json_decref(req);
    /* other tables and new ones stay usable */
    ck_assert_int_eq(check_code(hiding("INSERT INTO open(v) VALUES ('y')", "secret")), 0);
    ck_assert_int_eq(fx_code(fx_apply_json(hiding("CREATE TABLE mine(a)", "secret"))), 0);
    ck_assert_int_eq(fx_code(fx_apply_json(hiding("DROP TABLE mine", "secret"))), 0);
}
END_TEST

START_TEST(the_schema_table_is_closed_while_something_is_hidden)
{
    ck_assert_int_eq(check_code(hiding("SELECT name FROM sqlite_schema", "secret")), UC_EFORBIDDEN);
    ck_assert_int_eq(
        check_code(hiding("INSERT INTO open(v) SELECT sql FROM sqlite_master", "secret")),
        UC_EFORBIDDEN);
    json_t *cmd = json_pack("{s:s,s:[{s:s}]}", "op", "sql", "statements", "sql",
                            "SELECT name FROM sqlite_schema");
    ck_assert_int_eq(check_code(cmd), 0); /* nothing hidden: readable */
}
END_TEST

START_TEST(a_restore_moves_the_generation)
{
    ck_assert_int_eq(fx_code(acl_set("table", "secret", "proj-a")), 0);
    void *img = NULL;
    size_t len = 0;
    ck_assert_msg(flaredb_db_snapshot(db, &img, &len, err) == 0, "%s", err);
    ck_assert_int_eq(fx_code(acl_delete("table", "secret")), 0);
    uint64_t g = flaredb_db_acl_generation(db);
    ck_assert_msg(flaredb_db_restore(db, img, len, fx_index + 1, err) == 0, "%s", err);
    uc_free(img);
    ck_assert_uint_gt(flaredb_db_acl_generation(db), g);
    char *s = listing();
    ck_assert_ptr_nonnull(strstr(s, "proj-a"));
    free(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("flaredb_db_acl");
    TCase *tc = tcase_create("restrictions");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, restrictions_are_set_listed_moved_and_deleted);
    tcase_add_test(tc, malformed_restrictions_fail_alike_on_check_and_apply);
    tcase_add_test(tc, a_restore_moves_the_generation);
    suite_add_tcase(s, tc);
    tc = tcase_create("hidden");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, hidden_tables_read_as_missing_everywhere);
    tcase_add_test(tc, the_schema_table_is_closed_while_something_is_hidden);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return uc_check_run(suite()); }
