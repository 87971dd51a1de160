/* test_db_fixture.h - the fixture the flaredb db tests share: a fresh
 * database file in a temporary directory per test, and helpers that apply
 * commands at increasing log indexes. Header-only, tests only. */
#ifndef FLAREDB_TEST_DB_FIXTURE_H
#define FLAREDB_TEST_DB_FIXTURE_H
#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../db.h"
#include "uc/alloc.h"
#include "uc/crypto.h"
#include "uc/json.h"

static char fx_dir[PATH_MAX];
static char fx_path[PATH_MAX + 32];
static struct flaredb_db *db;
static uint64_t fx_index; /* last index applied through fx_apply */
static char err[UC_ERR_LEN];

/* A clock whose every reading is one millisecond later: a time limit of N
 * ms then stops a statement after N progress callbacks, without sleeping. */
static _Atomic int64_t fx_ticking_ms; /* read clocks run on reader threads too */
static inline int64_t fx_tick(void *ctx)
{
    (void)ctx;
    return atomic_fetch_add(&fx_ticking_ms, 1) + 1;
}
static const struct uc_clock fx_ticking = {fx_tick, fx_tick, NULL};

static inline struct flaredb_db_config fx_config(void)
{
    return (struct flaredb_db_config){.path = fx_path, .readers = 2, .clock = &fx_ticking};
}

static inline void fx_open(void)
{
    struct flaredb_db_config cfg = fx_config();
    ck_assert_msg(flaredb_db_open(&db, &cfg, err) == 0, "open: %s", err);
}

static inline void fx_setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(fx_dir, sizeof(fx_dir), "%s/flaredb-db-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(fx_dir));
    snprintf(fx_path, sizeof(fx_path), "%s/flaredb.db", fx_dir);
    fx_index = 0;
    err[0] = '\0';
    fx_open();
}

static inline void fx_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    char p[PATH_MAX + 256];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        ck_assert_int_eq(unlink(p), 0);
    }
    ck_assert_int_eq(closedir(d), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}

static inline void fx_teardown(void)
{
    uc_alloc_fail_after(-1);
    flaredb_db_close(db);
    db = NULL;
    fx_rmdir(fx_dir);
}

/* Packs a command like json_pack. */
static inline json_t *fx_pack(const char *fmt, va_list ap)
{
    json_error_t je;
    json_t *cmd = json_vpack_ex(&je, 0, fmt, ap);
    ck_assert_msg(cmd != NULL, "json_pack: %s", je.text);
    return cmd;
}

/* Applies `cmd` (stolen) at the next index as the leader would log it
 * (flaredb_db_encode: binary for "sql"), or as JSON text when it is too
 * malformed to encode; returns the result. */
static inline json_t *fx_apply_json(json_t *cmd)
{
    void *s = NULL;
    size_t len = 0;
    char why[UC_ERR_LEN];
    if (flaredb_db_encode(cmd, &s, &len, why) < 0) {
        s = uc_json_dumps(cmd);
        ck_assert_ptr_nonnull(s);
        len = strlen(s);
    }
    json_t *res = NULL;
    ck_assert_int_eq(flaredb_db_apply(db, s, len, ++fx_index, &res), 0);
    uc_free(s);
    json_decref(cmd);
    ck_assert_ptr_nonnull(res);
    return res;
}

/* Applies the command json_pack builds from fmt. */
static inline json_t *fx_apply(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *cmd = fx_pack(fmt, ap);
    va_end(ap);
    return fx_apply_json(cmd);
}

/* One statement without params, allowed anything, as a write. */
static inline json_t *fx_sql(const char *sql)
{
    return fx_apply("{s:s,s:[{s:s}],s:s}", "op", "sql", "statements", "sql", sql, "allow",
                    "ddl_destructive");
}

/* Applies `sql` and asserts it succeeded. */
static inline void fx_exec(const char *sql)
{
    json_t *res = fx_sql(sql);
    ck_assert_msg(json_object_get(res, "error") == NULL, "%s: %s", sql,
                  json_string_value(json_object_get(json_object_get(res, "error"), "message")));
    json_decref(res);
}

/* The error code in a result (0 when it succeeded); releases `res`. */
static inline int fx_code(json_t *res)
{
    json_t *e = json_object_get(res, "error");
    int code = e ? (int)json_integer_value(json_object_get(e, "code")) : 0;
    json_decref(res);
    return code;
}

/* The error message of a result (borrowed from it). */
static inline const char *fx_msg(const json_t *res)
{
    return json_string_value(json_object_get(json_object_get(res, "error"), "message"));
}

/* Runs a one-statement read and returns its first result's rows (the whole
 * answer goes to *whole, released by the caller). */
static inline int fx_query(const char *sql, json_t **whole)
{
    json_t *req = json_pack("{s:[{s:s}]}", "statements", "sql", sql);
    ck_assert_ptr_nonnull(req);
    int rc = flaredb_db_query(db, req, whole, err);
    json_decref(req);
    return rc;
}

/* The integer of a one-row, one-column read. */
static inline long long fx_scalar(const char *sql)
{
    json_t *out = NULL;
    ck_assert_msg(fx_query(sql, &out) == 0, "%s: %s", sql, err);
    json_t *rows = json_object_get(json_array_get(json_object_get(out, "results"), 0), "rows");
    json_t *v = json_array_get(json_array_get(rows, 0), 0);
    ck_assert_msg(json_is_integer(v), "%s: no integer", sql);
    long long n = json_integer_value(v);
    json_decref(out);
    return n;
}

#endif /* FLAREDB_TEST_DB_FIXTURE_H */
