/* test_db_snap.c - the snapshot split raft uses: begin pins the state as of
 * the last applied entry, entries applied afterwards do not reach the image
 * encode makes (on another thread, as the pool does), and that image
 * restores to exactly the pinned state. */
#include <pthread.h>

#include "../db_internal.h"
#include "test_db_fixture.h"
#include "uc_check.h"

static void setup(void)
{
    fx_setup();
    fx_exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)");
    fx_exec("INSERT INTO t(v) VALUES ('before')");
}

static void teardown(void) { fx_teardown(); }

struct encode_job {
    struct flaredb_snap *s;
    size_t room;
    void *buf;
    size_t len;
    int rc;
    char err[UC_ERR_LEN];
};

static void *encode_thread(void *arg)
{
    struct encode_job *j = arg;
    j->rc = flaredb_db_snapshot_encode(j->s, j->room, &j->buf, &j->len, j->err);
    return NULL;
}

/* Encodes on a thread of its own while `later` statements apply here. */
static void encode_beside(struct encode_job *j, int later)
{
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, encode_thread, j), 0);
    for (int i = 0; i < later; i++)
        fx_exec("INSERT INTO t(v) VALUES ('during')");
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(j->rc == 0, "encode: %s", j->err);
}

START_TEST(the_state_at_begin_is_what_encode_copies_and_restore_brings_back)
{
    struct encode_job j = {.room = 48};
    ck_assert_msg(flaredb_db_snapshot_begin(db, &j.s, err) == 0, "begin: %s", err);
    uint64_t pinned = flaredb_db_applied(db);
    ck_assert_uint_eq(flaredb_db_snapshot_index(j.s), pinned);
    for (int i = 0; i < 20; i++) /* before encode starts, too */
        fx_exec("INSERT INTO t(v) VALUES ('after')");
    encode_beside(&j, 20);
    flaredb_db_snapshot_end(j.s);
    ck_assert_uint_ge(j.len, j.room + 100);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 41);
    /* the synchronous snapshot of the pinned state gives the same bytes */
    const unsigned char *img = (const unsigned char *)j.buf + j.room;
    ck_assert_mem_eq(img, "SQLite format 3", 16);
    ck_assert_msg(flaredb_db_restore(db, img, j.len - j.room, ++fx_index, err) == 0, "%s", err);
    uc_free(j.buf);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 1);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t WHERE v = 'before'"), 1);
    ck_assert_uint_eq(flaredb_db_applied(db), fx_index);
    fx_exec("INSERT INTO t(v) VALUES ('next')");
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 2);
}
END_TEST

START_TEST(encode_matches_the_synchronous_snapshot)
{
    void *sync = NULL;
    size_t slen = 0;
    ck_assert_int_eq(flaredb_db_snapshot(db, &sync, &slen, err), 0);
    struct encode_job j = {.room = 0};
    ck_assert_msg(flaredb_db_snapshot_begin(db, &j.s, err) == 0, "begin: %s", err);
    encode_beside(&j, 0);
    flaredb_db_snapshot_end(j.s);
    ck_assert_uint_eq(j.len, slen);
    ck_assert_mem_eq(j.buf, sync, slen);
    uc_free(j.buf);
    uc_free(sync);
}
END_TEST

START_TEST(a_restore_while_a_view_is_open_keeps_both_sound)
{
    struct encode_job j = {.room = 16};
    ck_assert_msg(flaredb_db_snapshot_begin(db, &j.s, err) == 0, "begin: %s", err);
    void *other = NULL;
    size_t olen = 0;
    fx_exec("INSERT INTO t(v) VALUES ('in the restored image')");
    ck_assert_int_eq(flaredb_db_snapshot(db, &other, &olen, err), 0);
    ck_assert_msg(flaredb_db_restore(db, other, olen, ++fx_index, err) == 0, "%s", err);
    uc_free(other);
    encode_beside(&j, 3);
    flaredb_db_snapshot_end(j.s);
    /* the view's close must not have touched the new file's WAL */
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 5);
    flaredb_db_close(db);
    fx_open();
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 5);
    ck_assert_msg(flaredb_db_restore(db, (char *)j.buf + j.room, j.len - j.room, ++fx_index, err) ==
                      0,
                  "%s", err);
    uc_free(j.buf);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 1);
}
END_TEST

START_TEST(the_split_snapshot_drives_raft_state_machine)
{
    struct uc_repl_sm sm = flaredb_db_sm(db);
    ck_assert_ptr_nonnull(sm.snapshot_begin);
    void *view = NULL;
    ck_assert_int_eq(sm.snapshot_begin(sm.ctx, &view), 0);
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(sm.snapshot_encode(sm.ctx, view, 8, &buf, &len), 0);
    sm.snapshot_end(sm.ctx, view);
    fx_exec("DELETE FROM t");
    ck_assert_int_eq(sm.restore(sm.ctx, (char *)buf + 8, len - 8, ++fx_index), 0);
    uc_free(buf);
    ck_assert_int_eq(fx_scalar("SELECT count(*) FROM t"), 1);
}
END_TEST

START_TEST(a_large_database_is_snapshotted_once_the_log_holds_half_its_size)
{
    struct uc_repl_sm sm = flaredb_db_sm(db);
    void *view = NULL;
    /* small: due at once, and taking one starts the count again */
    ck_assert(flaredb_db_snapshot_due(db));
    ck_assert_int_eq(sm.snapshot_begin(sm.ctx, &view), 0);
    sm.snapshot_end(sm.ctx, view);
    ck_assert_uint_eq(db->logged, 0);
    /* 72 MiB of pages: past the small size, half of it is 36 MiB of log */
    fx_exec("CREATE TABLE big(b BLOB)");
    fx_exec("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 72) "
            "INSERT INTO big SELECT zeroblob(1048576) FROM c");
    ck_assert(!flaredb_db_snapshot_due(db));
    ck_assert_int_eq(sm.snapshot_begin(sm.ctx, &view), UC_EBUSY);
    ck_assert_uint_gt(db->snap_need, 36u << 20);
    uint64_t need = db->snap_need;
    db->logged = need - 1; /* as if that many bytes of entries were applied */
    ck_assert(!flaredb_db_snapshot_due(db));
    fx_exec("INSERT INTO t(v) VALUES ('one more entry')");
    ck_assert(flaredb_db_snapshot_due(db));
    ck_assert_int_eq(sm.snapshot_begin(sm.ctx, &view), 0);
    ck_assert_uint_eq(db->logged, 0);
    sm.snapshot_end(sm.ctx, view);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("flaredb_db_snap");
    TCase *tc = tcase_create("split");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, the_state_at_begin_is_what_encode_copies_and_restore_brings_back);
    tcase_add_test(tc, encode_matches_the_synchronous_snapshot);
    tcase_add_test(tc, a_restore_while_a_view_is_open_keeps_both_sound);
    tcase_add_test(tc, the_split_snapshot_drives_raft_state_machine);
    tcase_add_test(tc, a_large_database_is_snapshotted_once_the_log_holds_half_its_size);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return uc_check_run(suite()); }
