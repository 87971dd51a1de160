/* test_db_sql.c - flaredb's SQL state machine: results and their types,
 * parameter binding, atomic multi-statement entries, the determinism and
 * access rules (on the leader's check and again inside apply), statement
 * classification, reads with their time and row limits, and the table
 * listing. */
#include "test_db_fixture.h"
#include "uc_check.h"

/* flaredb_db_check on a command built like json_pack; the verdict goes to
 * *v (cleared by the caller) when it passes. */
static int check(struct flaredb_db_verdict *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *cmd = fx_pack(fmt, ap);
    va_end(ap);
    struct flaredb_db_verdict tmp = {0};
    int rc = flaredb_db_check(db, cmd, v ? v : &tmp, err);
    json_decref(cmd);
    flaredb_db_verdict_clear(&tmp);
    return rc;
}

/* The class flaredb_db_check gives one statement (which must pass). */
static enum flaredb_db_class class_of(const char *sql)
{
    struct flaredb_db_verdict v = {0};
    ck_assert_msg(check(&v, "{s:s,s:[{s:s}]}", "op", "sql", "statements", "sql", sql) == 0,
                  "%s: %s", sql, err);
    enum flaredb_db_class c = v.cls;
    flaredb_db_verdict_clear(&v);
    return c;
}

/* Checks one statement; returns the code (0 when accepted). */
static int check_sql(const char *sql)
{
    return check(NULL, "{s:s,s:[{s:s}]}", "op", "sql", "statements", "sql", sql);
}

static json_t *result_at(json_t *res, size_t i)
{
    return json_array_get(json_object_get(res, "results"), i);
}

/* ---- results --------------------------------------------------------------------- */

START_TEST(values_keep_their_sqlite_types)
{
    fx_exec("CREATE TABLE t(i INTEGER, r REAL, s TEXT, b BLOB, n)");
    json_t *res = fx_apply("{s:s,s:[{s:s,s:[I,f,s,{s:s},n]},{s:s}]}", "op", "sql", "statements",
                           "sql", "INSERT INTO t VALUES(?, ?, ?, ?, ?)", "params",
                           (json_int_t)9007199254740993LL, 2.5, "h\u00e9llo", "blob", "AP8B", "sql",
                           "SELECT i, r, s, b, n, 1e999, -1e999, 2.0 FROM t");
    ck_assert_msg(!json_object_get(res, "error"), "%s", fx_msg(res));
    json_t *ins = result_at(res, 0), *sel = result_at(res, 1);
    ck_assert_int_eq(json_integer_value(json_object_get(ins, "rows_affected")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(ins, "last_insert_id")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(sel, "rows_affected")), 0);
    char *cols = json_dumps(json_object_get(sel, "columns"), JSON_COMPACT);
    char *types = json_dumps(json_object_get(sel, "types"), JSON_COMPACT);
    char *rows = json_dumps(json_object_get(sel, "rows"), JSON_COMPACT);
    ck_assert_str_eq(cols, "[\"i\",\"r\",\"s\",\"b\",\"n\",\"1e999\",\"-1e999\",\"2.0\"]");
    ck_assert_str_eq(types, "[\"integer\",\"real\",\"text\",\"blob\",null,null,null,null]");
    ck_assert_str_eq(rows, "[[9007199254740993,2.5,\"h\u00e9llo\",{\"blob\":\"AP8B\"},null,"
                           "{\"real\":\"inf\"},{\"real\":\"-inf\"},2.0]]");
    free(cols);
    free(types);
    free(rows);
    json_decref(res);
}
END_TEST

START_TEST(text_that_is_not_utf8_comes_back_as_base64url)
{
    json_t *out = NULL;
    ck_assert_int_eq(fx_query("SELECT CAST(x'ff61' AS TEXT)", &out), 0);
    json_t *v = json_array_get(
        json_array_get(json_object_get(json_array_get(json_object_get(out, "results"), 0), "rows"),
                       0),
        0);
    ck_assert_str_eq(json_string_value(json_object_get(v, "text_base64url")), "_2E");
    json_decref(out);
}
END_TEST

START_TEST(params_are_bound_never_interpolated)
{
    fx_exec("CREATE TABLE u(name TEXT)");
    const char *evil = "x'); DROP TABLE u; --";
    json_decref(fx_apply("{s:s,s:[{s:s,s:[s]}]}", "op", "sql", "statements", "sql",
                         "INSERT INTO u VALUES(?)", "params", evil));
    json_t *out = NULL;
    json_t *req = json_pack("{s:[{s:s,s:[s]}]}", "statements", "sql",
                            "SELECT count(*) FROM u WHERE name = ?", "params", evil);
    ck_assert_int_eq(flaredb_db_query(db, req, &out, err), 0);
    json_t *rows = json_object_get(json_array_get(json_object_get(out, "results"), 0), "rows");
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(rows, 0), 0)), 1);
    json_decref(out);
    json_decref(req);
    /* booleans bind as 1/0, ?NNN numbering counts up to its largest index */
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM u"), 1);
    req = json_pack("{s:[{s:s,s:[b,b]}]}", "statements", "sql", "SELECT ?2 * 10 + ?1", "params", 1,
                    0);
    ck_assert_int_eq(flaredb_db_query(db, req, &out, err), 0);
    rows = json_object_get(json_array_get(json_object_get(out, "results"), 0), "rows");
    ck_assert_int_eq(json_integer_value(json_array_get(json_array_get(rows, 0), 0)), 1);
    json_decref(out);
    json_decref(req);
}
END_TEST

START_TEST(param_count_and_types_are_checked)
{
    fx_exec("CREATE TABLE p(a, b)");
    ck_assert_int_eq(check(NULL, "{s:s,s:[{s:s,s:[i]}]}", "op", "sql", "statements", "sql",
                           "INSERT INTO p VALUES(?, ?)", "params", 1),
                     UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "statements[0] has 2 parameters, 1 given"));
    ck_assert_int_eq(check(NULL, "{s:s,s:[{s:s,s:[i,[]]}]}", "op", "sql", "statements", "sql",
                           "INSERT INTO p VALUES(?, ?)", "params", 1),
                     UC_EINVAL);
    ck_assert_int_eq(check(NULL, "{s:s,s:[{s:s,s:[i,{s:s}]}]}", "op", "sql", "statements", "sql",
                           "INSERT INTO p VALUES(?, ?)", "params", 1, "blob", "a+b="),
                     UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not base64url"));
    /* apply refuses the same, as a shared error that changes nothing */
    ck_assert_int_eq(fx_code(fx_apply("{s:s,s:[{s:s}]}", "op", "sql", "statements", "sql",
                                      "INSERT INTO p VALUES(?, ?)")),
                     UC_EINVAL);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM p"), 0);
}
END_TEST

/* ---- atomic entries ------------------------------------------------------------------ */

START_TEST(a_failing_statement_rolls_back_the_whole_request)
{
    fx_exec("CREATE TABLE a(id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    json_t *res =
        fx_apply("{s:s,s:[{s:s},{s:s},{s:s}]}", "op", "sql", "statements", "sql",
                 "INSERT INTO a(v) VALUES('one')", "sql", "INSERT INTO a(v) VALUES('two')", "sql",
                 "INSERT INTO a(v) VALUES(NULL)");
    json_t *e = json_object_get(res, "error");
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "statement")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(e, "code")), UC_ECONFLICT);
    ck_assert_ptr_nonnull(strstr(fx_msg(res), "statements[2]: NOT NULL constraint failed: a.v"));
    ck_assert_ptr_null(json_object_get(e, "results"));
    json_decref(res);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM a"), 0);
    /* the entry still counts as applied */
    ck_assert_uint_eq(flaredb_db_applied(db), fx_index);
}
END_TEST

START_TEST(without_transaction_each_statement_commits_and_the_first_failure_stops)
{
    fx_exec("CREATE TABLE a(v TEXT NOT NULL)");
    json_t *res = fx_apply("{s:s,s:b,s:[{s:s},{s:s},{s:s}]}", "op", "sql", "transaction", 0,
                           "statements", "sql", "INSERT INTO a VALUES('one')", "sql",
                           "INSERT INTO a VALUES(NULL)", "sql", "INSERT INTO a VALUES('three')");
    json_t *e = json_object_get(res, "error");
    ck_assert_int_eq(json_integer_value(json_object_get(e, "statement")), 1);
    ck_assert_uint_eq(json_array_size(json_object_get(res, "results")), 1);
    json_decref(res);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM a"), 1);
}
END_TEST

START_TEST(or_rollback_ends_the_request_but_the_entry_still_applies)
{
    fx_exec("CREATE TABLE a(id INTEGER PRIMARY KEY)");
    fx_exec("INSERT INTO a VALUES(1)");
    json_t *res =
        fx_apply("{s:s,s:b,s:[{s:s},{s:s}]}", "op", "sql", "transaction", 0, "statements", "sql",
                 "INSERT INTO a VALUES(2)", "sql", "INSERT OR ROLLBACK INTO a VALUES(1)");
    ck_assert_int_eq(fx_code(res), UC_ECONFLICT);
    ck_assert_uint_eq(flaredb_db_applied(db), fx_index);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM a"), 1);
    fx_exec("INSERT INTO a VALUES(3)"); /* the write connection is still in shape */
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM a"), 2);
}
END_TEST

/* ---- groups (what uc_repl's apply thread does) ------------------------------------ */

/* Applies `sql` as entry ++fx_index inside the open group; the code. */
static int group_add(const char *sql)
{
    json_t *cmd =
        json_pack("{s:s,s:b,s:[{s:s}]}", "op", "sql", "transaction", 0, "statements", "sql", sql);
    ck_assert_ptr_nonnull(cmd);
    char *s = json_dumps(cmd, JSON_COMPACT);
    json_decref(cmd);
    ck_assert_ptr_nonnull(s);
    json_t *res = NULL;
    int rc = flaredb_db_apply(db, s, strlen(s), ++fx_index, &res);
    free(s);
    if (rc == 0) {
        ck_assert_ptr_nonnull(res);
        json_decref(res);
    }
    return rc;
}

START_TEST(a_group_commits_together_or_not_at_all)
{
    fx_exec("CREATE TABLE a(v INTEGER UNIQUE)");
    uint64_t before = fx_index;
    ck_assert_int_eq(flaredb_db_group_begin(db), 0);
    ck_assert_int_eq(group_add("INSERT INTO a VALUES(1)"), 0);
    ck_assert_int_eq(group_add("INSERT INTO a VALUES(1)"), 0); /* a shared failure: undone alone */
    ck_assert_int_eq(group_add("INSERT INTO a VALUES(2)"), 0);
    ck_assert_uint_eq(flaredb_db_applied(db), before); /* nothing is visible before the end */
    ck_assert_int_eq(flaredb_db_group_end(db, false), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM a"), 0);
    ck_assert_uint_eq(flaredb_db_applied(db), before);
    /* the same entries again, as the apply thread retries them */
    fx_index = before;
    ck_assert_int_eq(flaredb_db_group_begin(db), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(group_add(i == 2 ? "INSERT INTO a VALUES(2)" : "INSERT INTO a VALUES(1)"),
                         0);
    ck_assert_int_eq(flaredb_db_group_end(db, true), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM a"), 2);
    ck_assert_uint_eq(flaredb_db_applied(db), before + 3);
    ck_assert_int_eq(flaredb_db_group_end(db, true), 0); /* no group: a no-op */
}
END_TEST

/* OR ROLLBACK ends the whole transaction: inside a group after other
 * entries it is refused (UC_EBUSY), and alone it applies as before. */
START_TEST(an_entry_that_ends_the_transaction_goes_again_alone)
{
    fx_exec("CREATE TABLE a(id INTEGER PRIMARY KEY)");
    fx_exec("INSERT INTO a VALUES(1)");
    uint64_t before = fx_index;
    ck_assert_int_eq(flaredb_db_group_begin(db), 0);
    ck_assert_int_eq(group_add("INSERT INTO a VALUES(2)"), 0);
    ck_assert_int_eq(group_add("INSERT OR ROLLBACK INTO a VALUES(1)"), UC_EBUSY);
    ck_assert_int_eq(flaredb_db_group_end(db, false), 0);
    ck_assert_uint_eq(flaredb_db_applied(db), before);
    fx_index = before;
    ck_assert_int_eq(group_add("INSERT INTO a VALUES(2)"), 0);
    ck_assert_int_eq(group_add("INSERT OR ROLLBACK INTO a VALUES(1)"), 0);
    ck_assert_uint_eq(flaredb_db_applied(db), before + 2);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM a"), 2);
    /* first in a group, it is undone alone and the group goes on */
    ck_assert_int_eq(flaredb_db_group_begin(db), 0);
    ck_assert_int_eq(group_add("INSERT OR ROLLBACK INTO a VALUES(1)"), 0);
    ck_assert_int_eq(group_add("INSERT INTO a VALUES(3)"), 0);
    ck_assert_int_eq(flaredb_db_group_end(db, true), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM a"), 3);
    ck_assert_uint_eq(flaredb_db_applied(db), before + 4);
}
END_TEST

START_TEST(a_malformed_command_applies_as_a_shared_error)
{
    const char *bad[] = {
        "not json",
        "[1]",
        "{\"op\":\"sql\"}",
        "{\"op\":\"nope\"}",
        "{\"op\":\"sql\",\"statements\":[{\"sql\":\"SELECT 1\",\"x\":1}]}",
        "{\"op\":\"sql\",\"allow\":\"root\",\"statements\":[{\"sql\":\"SELECT 1\"}]}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *res = NULL;
        ck_assert_int_eq(flaredb_db_apply(db, bad[i], strlen(bad[i]), ++fx_index, &res), 0);
        ck_assert_msg(fx_code(res) == UC_EINVAL, "%s", bad[i]);
        ck_assert_uint_eq(flaredb_db_applied(db), fx_index);
    }
}
END_TEST

START_TEST(two_statements_in_one_string_are_refused)
{
    ck_assert_int_eq(check_sql("SELECT 1; SELECT 2"), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "more than one SQL statement"));
    ck_assert_int_eq(check_sql("SELECT 1; -- trailing comment\n ; /* and this */ "), 0);
    ck_assert_int_eq(check_sql("  -- nothing\n"), UC_EINVAL);
    ck_assert_int_eq(fx_code(fx_sql("CREATE TABLE x(a); DROP TABLE x")), UC_EINVAL);
    ck_assert_int_eq(check_sql("SELEC 1"), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "statements[0]: near \"SELEC\": syntax error"));
}
END_TEST

/* ---- determinism --------------------------------------------------------------------- */

START_TEST(non_deterministic_functions_are_refused_in_writes)
{
    fx_exec("CREATE TABLE t(a)");
    const char *bad[] = {"INSERT INTO t VALUES(random())",
                         "INSERT INTO t VALUES(randomblob(4))",
                         "INSERT INTO t VALUES(datetime('now'))",
                         "INSERT INTO t VALUES(CURRENT_TIMESTAMP)",
                         "UPDATE t SET a = julianday()",
                         "INSERT INTO t SELECT strftime('%s', '2020-01-01')",
                         "INSERT INTO t VALUES(last_insert_rowid())",
                         "WITH r(x) AS (SELECT random()) INSERT INTO t SELECT x FROM r"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(check_sql(bad[i]) == UC_EINVAL, "%s", bad[i]);
        ck_assert_msg(strstr(err, "is not deterministic"), "%s: %s", bad[i], err);
        /* and inside apply, should a command skip the check */
        json_t *res = fx_sql(bad[i]);
        ck_assert_msg(strstr(fx_msg(res), "is not deterministic"), "%s", bad[i]);
        ck_assert_int_eq(fx_code(res), UC_EINVAL);
    }
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 0);
}
END_TEST

START_TEST(a_read_in_a_write_request_obeys_the_write_rules)
{
    fx_exec("CREATE TABLE t(a)");
    ck_assert_int_eq(check(NULL, "{s:s,s:[{s:s},{s:s}]}", "op", "sql", "statements", "sql",
                           "SELECT random()", "sql", "INSERT INTO t VALUES(1)"),
                     UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "statements[0]: random() is not deterministic"));
    /* alone it is a read, where anything goes */
    ck_assert_int_eq(class_of("SELECT random(), datetime('now')"), FLAREDB_DB_READ);
    json_t *out = NULL;
    ck_assert_int_eq(fx_query("SELECT random(), datetime('now')", &out), 0);
    json_decref(out);
}
END_TEST

START_TEST(defaults_and_triggers_cannot_smuggle_them_in)
{
    json_t *res = fx_sql("CREATE TABLE d(a, at TEXT DEFAULT CURRENT_TIMESTAMP)");
    ck_assert_ptr_nonnull(strstr(fx_msg(res), "column 'at' DEFAULT: current_timestamp()"));
    ck_assert_int_eq(fx_code(res), UC_EINVAL);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM sqlite_schema WHERE name = 'd'"), 0);
    fx_exec("CREATE TABLE d(a, b DEFAULT 7)");
    res = fx_sql("ALTER TABLE d ADD COLUMN r DEFAULT (random())");
    ck_assert_int_eq(fx_code(res), UC_EINVAL);
    fx_exec("CREATE TABLE log(a)");
    fx_exec("CREATE TRIGGER tr AFTER INSERT ON d BEGIN INSERT INTO log VALUES(random()); END");
    ck_assert_int_eq(check_sql("INSERT INTO d(a) VALUES(1)"), UC_EINVAL);
    ck_assert_int_eq(fx_code(fx_sql("INSERT INTO d(a) VALUES(1)")), UC_EINVAL);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM log"), 0);
}
END_TEST

START_TEST(attach_pragma_writes_vacuum_and_transactions_are_refused)
{
    const char *bad[] = {"ATTACH ':memory:' AS x",
                         "DETACH x",
                         "PRAGMA user_version = 3",
                         "PRAGMA foreign_keys = OFF",
                         "PRAGMA journal_mode",
                         "PRAGMA writable_schema = 1",
                         "VACUUM",
                         " /* sneaky */ vacuum INTO '/tmp/x.db'",
                         "BEGIN",
                         "COMMIT",
                         "SAVEPOINT s",
                         "RELEASE flaredb_entry",
                         "CREATE TEMP TABLE tt(a)",
                         "SELECT load_extension('x')",
                         "CREATE VIRTUAL TABLE v USING csv(filename='/etc/passwd')"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(check_sql(bad[i]) == UC_EINVAL, "%s: %s", bad[i], err);
        ck_assert_msg(fx_code(fx_sql(bad[i])) != 0, "%s applied", bad[i]);
    }
    ck_assert_int_eq(check_sql("PRAGMA user_version"), 0);
    ck_assert_int_eq(check_sql("PRAGMA table_info('sqlite_schema')"), 0);
    ck_assert_int_eq(check_sql("CREATE VIRTUAL TABLE ft USING fts5(body)"), 0);
}
END_TEST

/* ---- classification -------------------------------------------------------------------- */

START_TEST(statements_are_classified)
{
    fx_exec("CREATE TABLE c(a, b)");
    fx_exec("CREATE INDEX ci ON c(a)");
    fx_exec("CREATE VIEW cv AS SELECT a FROM c");
    ck_assert_int_eq(class_of("SELECT * FROM c"), FLAREDB_DB_READ);
    ck_assert_int_eq(class_of("EXPLAIN DELETE FROM c"), FLAREDB_DB_READ);
    ck_assert_int_eq(class_of("INSERT INTO c VALUES(1, 2)"), FLAREDB_DB_WRITE);
    ck_assert_int_eq(class_of("DELETE FROM c"), FLAREDB_DB_WRITE);
    ck_assert_int_eq(class_of("ANALYZE"), FLAREDB_DB_WRITE);
    ck_assert_int_eq(class_of("CREATE TABLE n(a)"), FLAREDB_DB_DDL_ADDITIVE);
    ck_assert_int_eq(class_of("CREATE INDEX n ON c(b)"), FLAREDB_DB_DDL_ADDITIVE);
    ck_assert_int_eq(class_of("CREATE VIEW n AS SELECT 1"), FLAREDB_DB_DDL_ADDITIVE);
    ck_assert_int_eq(class_of("ALTER TABLE c ADD COLUMN d TEXT"), FLAREDB_DB_DDL_ADDITIVE);
    ck_assert_int_eq(class_of("DROP TABLE c"), FLAREDB_DB_DDL_DESTRUCTIVE);
    ck_assert_int_eq(class_of("DROP INDEX ci"), FLAREDB_DB_DDL_DESTRUCTIVE);
    ck_assert_int_eq(class_of("DROP VIEW cv"), FLAREDB_DB_DDL_DESTRUCTIVE);
    ck_assert_int_eq(class_of("ALTER TABLE c RENAME TO d"), FLAREDB_DB_DDL_DESTRUCTIVE);
    ck_assert_int_eq(class_of("ALTER TABLE c RENAME COLUMN a TO z"), FLAREDB_DB_DDL_DESTRUCTIVE);
    ck_assert_int_eq(class_of("ALTER TABLE c DROP COLUMN b"), FLAREDB_DB_DDL_DESTRUCTIVE);
    ck_assert_str_eq(flaredb_db_class_name(FLAREDB_DB_DDL_DESTRUCTIVE), "ddl_destructive");
}
END_TEST

START_TEST(a_request_takes_its_highest_class_and_lists_its_tables)
{
    fx_exec("CREATE TABLE c(a)");
    struct flaredb_db_verdict v = {0};
    ck_assert_int_eq(check(&v, "{s:s,s:[{s:s},{s:s},{s:s}]}", "op", "sql", "statements", "sql",
                           "CREATE TABLE fresh(x)", "sql", "INSERT INTO fresh SELECT a FROM c",
                           "sql", "CREATE INDEX fi ON fresh(x)"),
                     0);
    /* the INSERT names a table the request itself creates: classified by keyword */
    ck_assert_int_eq(v.cls, FLAREDB_DB_DDL_ADDITIVE);
    char *t = json_dumps(v.tables, JSON_COMPACT);
    ck_assert_str_eq(t, "[\"fresh\"]");
    free(t);
    flaredb_db_verdict_clear(&v);
    ck_assert_int_eq(check(&v, "{s:s,s:[{s:s}]}", "op", "sql", "statements", "sql",
                           "SELECT * FROM c JOIN pragma_table_info('c') USING (a)"),
                     UC_EINVAL); /* no such column: a parse error is still a 400 */
    ck_assert_int_eq(check(&v, "{s:s,s:[{s:s}]}", "op", "sql", "statements", "sql",
                           "UPDATE c SET a = (SELECT count(*) FROM sqlite_schema)"),
                     0);
    t = json_dumps(v.tables, JSON_COMPACT);
    ck_assert_str_eq(t, "[\"c\"]");
    free(t);
    flaredb_db_verdict_clear(&v);
}
END_TEST

START_TEST(apply_enforces_the_allowed_class)
{
    fx_exec("CREATE TABLE c(a)");
    json_t *res = fx_apply("{s:s,s:[{s:s}]}", "op", "sql", "statements", "sql", "DROP TABLE c");
    ck_assert_int_eq(fx_code(res), UC_EFORBIDDEN);
    res = fx_apply("{s:s,s:s,s:[{s:s}]}", "op", "sql", "allow", "ddl_additive", "statements", "sql",
                   "ALTER TABLE c RENAME TO d");
    ck_assert_ptr_nonnull(strstr(fx_msg(res), "is ddl_destructive"));
    ck_assert_int_eq(fx_code(res), UC_EFORBIDDEN);
    res = fx_apply("{s:s,s:s,s:[{s:s}]}", "op", "sql", "allow", "ddl_additive", "statements", "sql",
                   "CREATE TABLE e(a)");
    ck_assert_int_eq(fx_code(res), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM sqlite_schema WHERE name IN ('c', 'e')"), 2);
}
END_TEST

/* ---- internal tables ------------------------------------------------------------------- */

START_TEST(internal_tables_are_out_of_reach)
{
    fx_exec("CREATE TABLE u(a)");
    const char *bad[] = {"SELECT * FROM _flaredb_kv",
                         "SELECT * FROM main._FLAREDB_META",
                         "UPDATE _flaredb_meta SET value = 0",
                         "DELETE FROM _flaredb_ns",
                         "INSERT INTO _flaredb_kv VALUES('a', x'01', x'', 1, 1, 1)",
                         "DROP TABLE _flaredb_kv",
                         "ALTER TABLE _flaredb_kv ADD COLUMN z",
                         "CREATE TABLE _flaredb_mine(a)",
                         "CREATE INDEX i ON _flaredb_kv(value)",
                         "CREATE TRIGGER t AFTER INSERT ON _flaredb_kv BEGIN SELECT 1; END",
                         "PRAGMA table_info(_flaredb_kv)"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(check_sql(bad[i]) == UC_EFORBIDDEN, "%s: %d %s", bad[i], check_sql(bad[i]),
                      err);
        ck_assert_msg(fx_code(fx_sql(bad[i])) == UC_EFORBIDDEN, "%s", bad[i]);
    }
    /* a table-valued PRAGMA learns its argument when it runs */
    json_t *out = NULL;
    ck_assert_int_eq(fx_query("SELECT * FROM pragma_table_info('_flaredb_meta')", &out),
                     UC_EFORBIDDEN);
    ck_assert_int_eq(fx_code(fx_sql("SELECT * FROM pragma_table_info('_flaredb_meta')")),
                     UC_EFORBIDDEN);
    /* a view or a trigger is checked where it is used */
    fx_exec("CREATE VIEW peek AS SELECT * FROM _flaredb_meta");
    ck_assert_int_eq(fx_query("SELECT * FROM peek", &out), UC_EFORBIDDEN);
    fx_exec("CREATE TRIGGER sneak AFTER INSERT ON u BEGIN DELETE FROM _flaredb_meta; END");
    ck_assert_int_eq(fx_code(fx_sql("INSERT INTO u VALUES(1)")), UC_EFORBIDDEN);
    ck_assert_uint_eq(flaredb_db_applied(db), fx_index);
}
END_TEST

/* ---- reads ----------------------------------------------------------------------------- */

START_TEST(reads_refuse_writes)
{
    fx_exec("CREATE TABLE r(a)");
    json_t *out = NULL;
    ck_assert_int_eq(fx_query("INSERT INTO r VALUES(1)", &out), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not read-only"));
    ck_assert_int_eq(fx_query("VACUUM INTO '/tmp/flaredb-never.db'", &out), UC_EINVAL);
    ck_assert_int_eq(access("/tmp/flaredb-never.db", F_OK), -1);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM r"), 0);
}
END_TEST

START_TEST(a_runaway_read_stops_at_the_time_limit)
{
    flaredb_db_close(db);
    struct flaredb_db_config cfg = fx_config();
    cfg.time_limit_ms = 50; /* 50 progress callbacks of the ticking clock */
    ck_assert_int_eq(flaredb_db_open(&db, &cfg, err), 0);
    json_t *out = NULL;
    ck_assert_int_eq(fx_query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                              "SELECT count(*) FROM c",
                              &out),
                     UC_ETIMEDOUT);
    ck_assert_ptr_nonnull(strstr(err, "statements[0] ran past the time limit of 50 ms"));
    /* the reader is usable again */
    ck_assert_int_eq(fx_scalar("SELECT 41 + 1"), 42);
}
END_TEST

START_TEST(a_read_stops_at_the_row_limit)
{
    flaredb_db_close(db);
    struct flaredb_db_config cfg = fx_config();
    cfg.max_rows = 10;
    ck_assert_int_eq(flaredb_db_open(&db, &cfg, err), 0);
    json_t *out = NULL;
    ck_assert_int_eq(fx_query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                              "LIMIT 10) SELECT x FROM c",
                              &out),
                     0);
    json_decref(out);
    ck_assert_int_eq(fx_query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                              "LIMIT 11) SELECT x FROM c",
                              &out),
                     UC_E2BIG);
}
END_TEST

START_TEST(a_runaway_write_stops_at_the_same_step_on_every_member)
{
    fx_exec("CREATE TABLE big(x)");
    const char *runaway = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                          "INSERT INTO big SELECT x FROM c";
    json_t *res = fx_apply("{s:s,s:I,s:[{s:s}]}", "op", "sql", "max_steps", (json_int_t)200000,
                           "statements", "sql", runaway);
    ck_assert_ptr_nonnull(strstr(fx_msg(res), "ran past the write budget of 200000 VM steps"));
    ck_assert_int_eq(fx_code(res), UC_E2BIG);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM big"), 0);
    /* a bounded one under the same budget goes through */
    res = fx_apply("{s:s,s:I,s:[{s:s}]}", "op", "sql", "max_steps", (json_int_t)200000,
                   "statements", "sql",
                   "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100) "
                   "INSERT INTO big SELECT x FROM c");
    ck_assert_int_eq(fx_code(res), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM big"), 100);
}
END_TEST

START_TEST(tables_are_listed_with_their_columns)
{
    fx_exec("CREATE TABLE vm(id TEXT PRIMARY KEY, name TEXT NOT NULL, cpus INTEGER)");
    fx_exec("CREATE VIEW names AS SELECT name FROM vm");
    json_t *out = NULL;
    ck_assert_msg(flaredb_db_tables(db, &out, err) == 0, "%s", err);
    char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(
        s, "{\"tables\":[{\"columns\":[{\"name\":\"name\",\"notnull\":false,\"pk\":0,\"type\":"
           "\"TEXT\"}],\"name\":\"names\",\"type\":\"view\"},{\"columns\":[{\"name\":\"id\","
           "\"notnull\":false,\"pk\":1,\"type\":\"TEXT\"},{\"name\":\"name\",\"notnull\":true,"
           "\"pk\":0,\"type\":\"TEXT\"},{\"name\":\"cpus\",\"notnull\":false,\"pk\":0,\"type\":"
           "\"INTEGER\"}],\"name\":\"vm\",\"type\":\"table\"}]}");
    free(s);
    json_decref(out);
}
END_TEST

/* ---- out of memory ----------------------------------------------------------------------- */

/* Applies `cmd` with the Nth allocation failing for growing N: until it
 * goes through, each run fails with UC_ENOMEM leaving the applied index and
 * the row count as they were; then its answer has `code` (memory trouble
 * never turns into a different, shared, verdict). */
static void apply_under_failures(const char *cmd, int code, const char *count_sql)
{
    long long rows = fx_scalar(count_sql);
    for (long n = 0; n < 400; n++) {
        uint64_t before = flaredb_db_applied(db);
        struct flaredb_result *res = NULL;
        uc_alloc_fail_after(n);
        int rc = flaredb_db_apply_result(db, cmd, strlen(cmd), before + 1, &res);
        uc_alloc_fail_after(-1);
        if (rc < 0) {
            ck_assert_int_eq(rc, UC_ENOMEM);
            ck_assert_uint_eq(flaredb_db_applied(db), before);
            ck_assert_int_eq(fx_scalar(count_sql), rows);
            continue;
        }
        const json_t *e = flaredb_result_error(res);
        int got = e ? (int)json_integer_value(json_object_get(e, "code")) : 0;
        flaredb_result_free(res);
        ck_assert_msg(got == code, "%s: after %ld allocations", cmd, n);
        ck_assert_uint_eq(flaredb_db_applied(db), before + 1);
        return;
    }
    ck_abort_msg("never applied");
}

START_TEST(apply_survives_allocation_failures_without_partial_changes)
{
    uc_alloc_install_jansson();
    const char *count = "SELECT count(*) FROM sqlite_schema";
    apply_under_failures("{\"op\":\"sql\",\"allow\":\"ddl_additive\",\"statements\":[{\"sql\":"
                         "\"CREATE TABLE m(a INTEGER NOT NULL DEFAULT 1, b BLOB)\"}]}",
                         0, count);
    apply_under_failures("{\"op\":\"sql\",\"allow\":\"ddl_additive\",\"statements\":[{\"sql\":"
                         "\"CREATE TABLE bad(a DEFAULT (random()))\"}]}",
                         UC_EINVAL, count);
    count = "SELECT count(*) FROM m";
    apply_under_failures("{\"op\":\"sql\",\"statements\":[{\"sql\":\"INSERT INTO m VALUES(?, ?)\","
                         "\"params\":[1,{\"blob\":\"AAE\"}]},{\"sql\":\"SELECT a, b FROM m\"}]}",
                         0, count);
    apply_under_failures(
        "{\"op\":\"sql\",\"transaction\":false,\"statements\":[{\"sql\":"
        "\"INSERT INTO m(b) VALUES(1)\"},{\"sql\":\"INSERT INTO m VALUES(NULL, 2)\"}]}",
        UC_ECONFLICT, count);
    ck_assert_int_eq(fx_scalar(count), 2);
}
END_TEST

/* Runs `call` with the Nth allocation failing for growing N: each run
 * either succeeds or says UC_ENOMEM, and leaks nothing (valgrind). */
static void walk_failures(int (*call)(void))
{
    uc_alloc_install_jansson();
    for (long n = 0; n < 400; n++) {
        uc_alloc_fail_after(n);
        int rc = call();
        uc_alloc_fail_after(-1);
        ck_assert_msg(rc == 0 || rc == UC_ENOMEM, "failing allocation %ld: %d %s", n, rc, err);
        if (rc == 0)
            return;
    }
    ck_abort_msg("never succeeded");
}

static int query_once(void)
{
    json_t *out = NULL, *req = json_pack("{s:[{s:s,s:[s,{s:s}]}]}", "statements", "sql",
                                         "SELECT a, ?, ? FROM m", "params", "x", "blob", "AAE");
    if (!req)
        return UC_ENOMEM;
    int rc = flaredb_db_query(db, req, &out, err);
    json_decref(req);
    json_decref(out);
    return rc;
}

static int check_once(void)
{
    struct flaredb_db_verdict v = {0};
    json_t *cmd =
        json_pack("{s:s,s:[{s:s,s:[i]}]}", "op", "sql", "statements", "sql",
                  "UPDATE m SET a = ? WHERE b IN (SELECT name FROM sqlite_schema)", "params", 1);
    if (!cmd)
        return UC_ENOMEM;
    int rc = flaredb_db_check(db, cmd, &v, err);
    json_decref(cmd);
    flaredb_db_verdict_clear(&v);
    return rc;
}

static int tables_once(void)
{
    json_t *out = NULL;
    int rc = flaredb_db_tables(db, &out, err);
    json_decref(out);
    return rc;
}

START_TEST(reads_checks_and_listings_survive_allocation_failures)
{
    fx_exec("CREATE TABLE m(a INTEGER, b TEXT)");
    fx_exec("INSERT INTO m VALUES(1, 'x'), (2, 'y')");
    walk_failures(query_once);
    walk_failures(check_once);
    walk_failures(tables_once);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("flaredb_db_sql");
    TCase *tc = tcase_create("results");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, values_keep_their_sqlite_types);
    tcase_add_test(tc, text_that_is_not_utf8_comes_back_as_base64url);
    tcase_add_test(tc, params_are_bound_never_interpolated);
    tcase_add_test(tc, param_count_and_types_are_checked);
    suite_add_tcase(s, tc);
    tc = tcase_create("atomic");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, a_failing_statement_rolls_back_the_whole_request);
    tcase_add_test(tc, without_transaction_each_statement_commits_and_the_first_failure_stops);
    tcase_add_test(tc, or_rollback_ends_the_request_but_the_entry_still_applies);
    tcase_add_test(tc, a_group_commits_together_or_not_at_all);
    tcase_add_test(tc, an_entry_that_ends_the_transaction_goes_again_alone);
    tcase_add_test(tc, a_malformed_command_applies_as_a_shared_error);
    tcase_add_test(tc, two_statements_in_one_string_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("determinism");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, non_deterministic_functions_are_refused_in_writes);
    tcase_add_test(tc, a_read_in_a_write_request_obeys_the_write_rules);
    tcase_add_test(tc, defaults_and_triggers_cannot_smuggle_them_in);
    tcase_add_test(tc, attach_pragma_writes_vacuum_and_transactions_are_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("classification");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, statements_are_classified);
    tcase_add_test(tc, a_request_takes_its_highest_class_and_lists_its_tables);
    tcase_add_test(tc, apply_enforces_the_allowed_class);
    tcase_add_test(tc, internal_tables_are_out_of_reach);
    suite_add_tcase(s, tc);
    tc = tcase_create("reads");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, reads_refuse_writes);
    tcase_add_test(tc, a_runaway_read_stops_at_the_time_limit);
    tcase_add_test(tc, a_read_stops_at_the_row_limit);
    tcase_add_test(tc, a_runaway_write_stops_at_the_same_step_on_every_member);
    tcase_add_test(tc, tables_are_listed_with_their_columns);
    suite_add_tcase(s, tc);
    tc = tcase_create("oom");
    tcase_add_checked_fixture(tc, fx_setup, fx_teardown);
    tcase_add_test(tc, apply_survives_allocation_failures_without_partial_changes);
    tcase_add_test(tc, reads_checks_and_listings_survive_allocation_failures);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return uc_check_run(suite()); }
