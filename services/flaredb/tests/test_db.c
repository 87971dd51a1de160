/* test_db.c - flaredb's database handle: opening and reopening, skipping
 * entries the file already holds, snapshots restored into a fresh database,
 * refused restores that change nothing, the uc_repl state machine wrapper,
 * and reads running beside apply and restore. */
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <time.h>

#include "test_db_fixture.h"
#include "uc_check.h"

static void setup(void) { fx_setup(); }
static void teardown(void) { fx_teardown(); }

static void reopen(void)
{
    flaredb_db_close(db);
    fx_open();
}

static json_t *insert(int v)
{
    return fx_apply("{s:s,s:[{s:s,s:[i]}]}", "op", "sql", "statements", "sql",
                    "INSERT INTO t VALUES(?)", "params", v);
}

/* Applies `cmd` text at `index` and returns the result (NULL when skipped). */
static json_t *apply_at(const char *cmd, uint64_t index)
{
    json_t *res = NULL;
    ck_assert_int_eq(flaredb_db_apply(db, cmd, strlen(cmd), index, &res), 0);
    return res;
}

START_TEST(a_new_database_starts_at_index_zero_in_wal_mode)
{
    ck_assert_uint_eq(flaredb_db_applied(db), 0);
    sqlite3 *h = NULL;
    ck_assert_int_eq(sqlite3_open_v2(fx_path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(h);
    json_t *out = NULL;
    ck_assert_int_eq(flaredb_db_tables(db, &out, err), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(out, "tables")), 0);
    json_decref(out);
}
END_TEST

START_TEST(open_reports_bad_paths_and_foreign_files)
{
    struct flaredb_db *other = NULL;
    struct flaredb_db_config cfg = {0};
    ck_assert_int_eq(flaredb_db_open(&other, &cfg, err), UC_EINVAL);
    cfg.path = "/nonexistent-dir/x/flaredb.db";
    ck_assert_int_eq(flaredb_db_open(&other, &cfg, err), UC_EIO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/x/flaredb.db"));
    char junk[PATH_MAX + 32];
    snprintf(junk, sizeof(junk), "%s/junk.db", fx_dir);
    FILE *f = fopen(junk, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 64; i++)
        fputs("this is not a database file\n", f);
    ck_assert_int_eq(fclose(f), 0);
    cfg.path = junk;
    ck_assert_int_eq(flaredb_db_open(&other, &cfg, err), UC_EINVAL);
    ck_assert_ptr_null(other);
}
END_TEST

START_TEST(entries_already_applied_are_skipped_after_a_reopen)
{
    fx_exec("CREATE TABLE t(v INTEGER)");
    json_decref(insert(1));
    json_decref(insert(2));
    uint64_t last = fx_index;
    reopen();
    ck_assert_uint_eq(flaredb_db_applied(db), last);
    /* raft replays from its last snapshot: every replayed entry is a no-op */
    for (uint64_t i = 1; i <= last; i++)
        ck_assert_ptr_null(apply_at("{\"op\":\"sql\",\"statements\":[{\"sql\":"
                                    "\"INSERT INTO t VALUES(99)\"}]}",
                                    i));
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 2);
    json_decref(insert(3));
    ck_assert_int_eq(fx_scalar("SELECT sum(v) FROM t"), 6);
    ck_assert_uint_eq(flaredb_db_applied(db), last + 1);
}
END_TEST

/* A database with SQL rows and KV keys. */
static void populate(void)
{
    fx_exec("CREATE TABLE t(v INTEGER)");
    for (int i = 1; i <= 50; i++)
        json_decref(insert(i));
    char *k = uc_b64url_encode("\xff\x00k", 3);
    json_decref(fx_apply("{s:s,s:s,s:s,s:s}", "op", "kv_put", "ns", "n", "key", k, "value", "AQI"));
    uc_free(k);
}

START_TEST(a_snapshot_restores_into_a_fresh_database)
{
    populate();
    void *buf = NULL;
    size_t len = 0;
    ck_assert_msg(flaredb_db_snapshot(db, &buf, &len, err) == 0, "%s", err);
    ck_assert_uint_gt(len, 4096);
    uint64_t at = fx_index + 10; /* raft's index counts entries that never reach apply */
    /* a fresh database elsewhere */
    flaredb_db_close(db);
    fx_rmdir(fx_dir);
    fx_setup();
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM sqlite_schema WHERE name = 't'"), 0);
    ck_assert_msg(flaredb_db_restore(db, buf, len, at, err) == 0, "%s", err);
    uc_free(buf);
    ck_assert_uint_eq(flaredb_db_applied(db), at);
    ck_assert_int_eq(fx_scalar("SELECT sum(v) FROM t"), 1275);
    json_t *out = NULL;
    ck_assert_int_eq(flaredb_db_kv_get(db, "n", "\xff\x00k", 3, &out, err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(out, "value")), "AQI");
    json_decref(out);
    /* and it carries on: skips old indexes, applies new ones, survives a reopen */
    ck_assert_ptr_null(
        apply_at("{\"op\":\"sql\",\"statements\":[{\"sql\":\"DELETE FROM t\"}]}", at));
    fx_index = at;
    json_t *r = fx_apply("{s:s,s:s,s:s,s:s}", "op", "kv_put", "ns", "n", "key", "YQ", "value", "");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "revision")), 2);
    json_decref(r);
    reopen();
    ck_assert_uint_eq(flaredb_db_applied(db), at + 1);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 50);
    char restore_tmp[PATH_MAX + 64];
    snprintf(restore_tmp, sizeof(restore_tmp), "%s.restore", fx_path);
    ck_assert_int_eq(access(restore_tmp, F_OK), -1);
}
END_TEST

/* The image of a plain SQLite database that is not flaredb's. */
static void *foreign_image(size_t *len)
{
    sqlite3 *h = NULL;
    ck_assert_int_eq(sqlite3_open(":memory:", &h), SQLITE_OK);
    ck_assert_int_eq(
        sqlite3_exec(h, "CREATE TABLE x(a); INSERT INTO x VALUES(1)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_int64 n = 0;
    unsigned char *img = sqlite3_serialize(h, "main", &n, 0);
    ck_assert_ptr_nonnull(img);
    void *copy = uc_malloc((size_t)n);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, img, (size_t)n);
    sqlite3_free(img);
    sqlite3_close(h);
    *len = (size_t)n;
    return copy;
}

START_TEST(a_bad_image_is_refused_and_changes_nothing)
{
    populate();
    uint64_t applied = flaredb_db_applied(db);
    char junk[8192];
    memset(junk, 'x', sizeof(junk));
    ck_assert_int_eq(flaredb_db_restore(db, junk, sizeof(junk), 999, err), UC_EINVAL);
    size_t len = 0;
    void *img = foreign_image(&len);
    ck_assert_int_eq(flaredb_db_restore(db, img, len, 999, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a usable flaredb snapshot"));
    uc_free(img);
    /* a real snapshot with a damaged b-tree page */
    void *buf = NULL;
    ck_assert_int_eq(flaredb_db_snapshot(db, &buf, &len, err), 0);
    unsigned page = ((unsigned char *)buf)[16] << 8 | ((unsigned char *)buf)[17];
    ck_assert_uint_gt(len, 3 * (size_t)page);
    memset((char *)buf + page, 0xee, 16);
    memset((char *)buf + 2 * page, 0xee, 16);
    ck_assert_int_eq(flaredb_db_restore(db, buf, len, 999, err), UC_EINVAL);
    uc_free(buf);
    ck_assert_uint_eq(flaredb_db_applied(db), applied);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 50);
    json_decref(insert(51));
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 51);
}
END_TEST

START_TEST(the_state_machine_wrapper_skips_old_snapshots)
{
    struct uc_repl_sm sm = flaredb_db_sm(db);
    ck_assert_ptr_eq(sm.ctx, db);
    const char *create = "{\"op\":\"sql\",\"allow\":\"ddl_additive\",\"statements\":[{\"sql\":"
                         "\"CREATE TABLE t(v)\"}]}";
    const char *ins = "{\"op\":\"sql\",\"statements\":[{\"sql\":\"INSERT INTO t VALUES(1)\"}]}";
    void *res = NULL;
    ck_assert_int_eq(sm.apply(sm.ctx, create, strlen(create), 3, &res), 0);
    ck_assert_ptr_nonnull(res);
    ck_assert_ptr_null(flaredb_result_error(res));
    sm.free_result(sm.ctx, res);
    void *snap = NULL;
    size_t len = 0;
    ck_assert_int_eq(sm.snapshot(sm.ctx, &snap, &len), 0);
    res = NULL;
    ck_assert_int_eq(sm.apply(sm.ctx, ins, strlen(ins), 4, &res), 0);
    sm.free_result(sm.ctx, res);
    /* at start-up raft restores its last snapshot: older than the file, so kept */
    ck_assert_int_eq(sm.restore(sm.ctx, snap, len, 3), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 1);
    ck_assert_uint_eq(flaredb_db_applied(db), 4);
    /* a newer one (a leader's install) replaces the state */
    ck_assert_int_eq(sm.restore(sm.ctx, snap, len, 9), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 0);
    ck_assert_uint_eq(flaredb_db_applied(db), 9);
    ck_assert_int_eq(sm.restore(sm.ctx, "junk", 4, 12), UC_EINVAL);
    uc_free(snap);
    sm.free_result(sm.ctx, NULL);
}
END_TEST

/* ---- concurrency ------------------------------------------------------------------ */

static atomic_int stop_readers;
static atomic_long reads_done;

/* Reads the row count over and over: it grows, except once (the restore),
 * and reads never fail. */
static void *reader(void *arg)
{
    (void)arg;
    long long last = 0, drops = 0;
    while (!atomic_load(&stop_readers)) {
        json_t *out = NULL, *req = json_pack("{s:[{s:s}]}", "statements", "sql",
                                             "SELECT count(*), coalesce(sum(v), 0) FROM t");
        char e[UC_ERR_LEN];
        int rc = flaredb_db_query(db, req, &out, e);
        json_decref(req);
        if (rc < 0) {
            fprintf(stderr, "read failed: %s\n", e);
            return (void *)1;
        }
        json_t *row = json_array_get(
            json_object_get(json_array_get(json_object_get(out, "results"), 0), "rows"), 0);
        long long n = json_integer_value(json_array_get(row, 0));
        long long sum = json_integer_value(json_array_get(row, 1));
        json_decref(out);
        /* rows are 1..n, committed one per entry: a consistent read sees exactly that */
        drops += n < last;
        if (sum != n * (n + 1) / 2 || drops > 1)
            return (void *)2;
        last = n;
        atomic_fetch_add(&reads_done, 1);
        /* a breath between reads: valgrind runs one thread at a time, and
         * three readers that never pause starve the writer for minutes */
        struct timespec ts = {0, 1000000L};
        (void)nanosleep(&ts, NULL);
    }
    return NULL;
}

START_TEST(reads_run_beside_apply_and_wait_out_a_restore)
{
    /* three readers share two connections: under valgrind a waiter can be
     * starved for seconds, which the default 5 s wait would turn into 503s */
    flaredb_db_close(db);
    struct flaredb_db_config cfg = fx_config();
    cfg.time_limit_ms = 120000;
    ck_assert_int_eq(flaredb_db_open(&db, &cfg, err), 0);
    fx_exec("CREATE TABLE t(v INTEGER)");
    void *empty = NULL;
    size_t elen = 0;
    ck_assert_int_eq(flaredb_db_snapshot(db, &empty, &elen, err), 0);
    pthread_t th[3];
    atomic_store(&stop_readers, 0);
    atomic_store(&reads_done, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader, NULL), 0);
    for (int v = 1; v <= 100; v++)
        json_decref(insert(v));
    /* back to the empty table while readers run, then fill again */
    ck_assert_msg(flaredb_db_restore(db, empty, elen, fx_index + 1, err) == 0, "%s", err);
    fx_index++;
    for (int v = 1; v <= 50; v++)
        json_decref(insert(v));
    atomic_store(&stop_readers, 1);
    for (int i = 0; i < 3; i++) {
        void *ret = NULL;
        ck_assert_int_eq(pthread_join(th[i], &ret), 0);
        ck_assert_ptr_null(ret);
    }
    ck_assert_int_gt(atomic_load(&reads_done), 0);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 50);
    uc_free(empty);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("flaredb_db");
    TCase *tc = tcase_create("lifecycle");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_new_database_starts_at_index_zero_in_wal_mode);
    tcase_add_test(tc, open_reports_bad_paths_and_foreign_files);
    tcase_add_test(tc, entries_already_applied_are_skipped_after_a_reopen);
    suite_add_tcase(s, tc);
    tc = tcase_create("snapshot");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_snapshot_restores_into_a_fresh_database);
    tcase_add_test(tc, a_bad_image_is_refused_and_changes_nothing);
    tcase_add_test(tc, the_state_machine_wrapper_skips_old_snapshots);
    suite_add_tcase(s, tc);
    tc = tcase_create("concurrency");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, reads_run_beside_apply_and_wait_out_a_restore);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return uc_check_run(suite()); }
