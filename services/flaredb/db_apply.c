/* db_apply.c - the entry point of every command: the leader's check and
 * apply, which wraps each log entry in one write transaction that also
 * records its index. Recording the index in the same transaction is what
 * lets apply skip, after a restart, the entries the file already holds. */
#include <string.h>

#include "db_internal.h"
#include "uc/alloc.h"
#include "uc/log.h"

void flaredb_db_verdict_clear(struct flaredb_db_verdict *v)
{
    json_decref(v->tables);
    *v = (struct flaredb_db_verdict){0};
}

static bool usable(struct flaredb_db *db)
{
    /* only restore (on the apply thread) sets broken; reads take the lock */
    return db->w.h != NULL;
}

int flaredb_db_check(struct flaredb_db *db, const json_t *cmd, struct flaredb_db_verdict *out,
                     char err[UC_ERR_LEN])
{
    const char *op = json_string_value(json_object_get(cmd, "op"));
    if (!json_is_object(cmd))
        return uc_err_set(err, UC_EINVAL, "command must be a JSON object");
    if (op && strcmp(op, "sql") == 0)
        return flaredb_db_sql_check(db, cmd, out, err);
    if (!flaredb_db_kv_op(op) && !flaredb_db_acl_op(op))
        return uc_err_set(err, UC_EINVAL,
                          "field 'op' must be \"sql\", \"kv_put\", \"kv_cas\", \"kv_delete\", "
                          "\"kv_txn\", \"acl_set\" or \"acl_delete\"");
    json_t *tables = json_array();
    if (!tables)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    int rc =
        flaredb_db_kv_op(op) ? flaredb_db_kv_check(db, cmd, err) : flaredb_db_acl_check(cmd, err);
    if (rc < 0) {
        json_decref(tables);
        return rc;
    }
    *out = (struct flaredb_db_verdict){.cls = FLAREDB_DB_WRITE, .tables = tables};
    return 0;
}

/* Parses an entry. Not uc_json_parse: when jansson runs out of memory
 * before its lexer starts it leaves the error code unset, and apply must
 * never take this member's lack of memory for a malformed entry (that would
 * apply it as an error here and as a success elsewhere). Returns 0, a
 * shared UC_EINVAL with msg, or a local UC_ENOMEM. */
static int parse_entry(const void *cmd, size_t len, json_t **out, char *msg)
{
    json_error_t je;
    memset(&je, 0, sizeof(je));
    json_t *j = json_loadb(cmd, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (j) {
        *out = j;
        return 0;
    }
    if (!je.text[0] || json_error_code(&je) == json_error_out_of_memory)
        return uc_err_set(msg, UC_ENOMEM, "out of memory parsing an entry");
    char why[JSON_ERROR_TEXT_LENGTH];
    uc_err_sanitize(why, sizeof(why), je.text, sizeof(why) - 4);
    return uc_err_set(msg, UC_EINVAL, "invalid JSON at line %d, column %d: %s", je.line, je.column,
                      why);
}

/* `res` becomes the shared error `msg` (code rc); 0, or a local UC_ENOMEM. */
static int shared_error(struct flaredb_result *res, int rc, const char *msg, char *err)
{
    res->json = flaredb_db_error_json(rc, msg, NULL);
    return res->json ? 0 : uc_err_set(err, UC_ENOMEM, "out of memory");
}

/* An "sql" request from a JSON entry (`j`, NULL for a binary one). */
static int apply_sql(struct flaredb_db *db, const json_t *j, const void *cmd, size_t len,
                     struct flaredb_result *res, char *err)
{
    struct sql_req req;
    char msg[UC_ERR_LEN];
    int rc = j ? flaredb_db_sql_parse(j, &req, msg) : flaredb_db_entry_decode(cmd, len, &req, msg);
    if (rc == UC_ENOMEM)
        rc = uc_err_set(err, rc, "%s", msg);
    else if (rc < 0)
        rc = shared_error(res, rc, msg, err);
    else
        rc = flaredb_db_sql_apply(db, &req, res, err);
    flaredb_db_sql_clear(&req);
    return rc;
}

/* The command's answer into `res`, or a shared error for a malformed one. */
static int dispatch(struct flaredb_db *db, const void *cmd, size_t len, struct flaredb_result *res,
                    char *err)
{
    if (flaredb_db_entry_binary(cmd, len))
        return apply_sql(db, NULL, cmd, len, res, err);
    json_t *j = NULL;
    char msg[UC_ERR_LEN];
    int rc = parse_entry(cmd, len, &j, msg);
    if (rc == UC_ENOMEM)
        return uc_err_set(err, rc, "%s", msg);
    const char *op = rc == 0 ? json_string_value(json_object_get(j, "op")) : NULL;
    if (rc == 0 && op && strcmp(op, "sql") == 0)
        rc = apply_sql(db, j, NULL, 0, res, err);
    else if (rc == 0 && flaredb_db_kv_op(op))
        rc = flaredb_db_kv_apply(db, j, &res->json, err);
    else if (rc == 0 && flaredb_db_acl_op(op))
        rc = flaredb_db_acl_apply(db, j, &res->json, err);
    else
        rc = shared_error(res, UC_EINVAL, rc < 0 ? msg : "unknown op", err);
    json_decref(j);
    return rc;
}

static int record_index(struct flaredb_db *db, uint64_t index, char *err)
{
    int rc = sqlite3_bind_int64(db->ws[W_META_SET], 1, (sqlite3_int64)index);
    if (rc != SQLITE_OK)
        return flaredb_db_fail(db->w.h, rc, "bind", err);
    return flaredb_db_wstep(db, W_META_SET, err);
}

/* Ends a failed entry, unless SQLite already rolled it back. */
static void rollback(struct flaredb_db *db)
{
    char ignored[UC_ERR_LEN];
    if (!sqlite3_get_autocommit(db->w.h) && flaredb_db_wstep(db, W_ROLLBACK, ignored) < 0)
        uc_error("flaredb: rolling back an entry: %s", ignored);
}

int flaredb_db_group_begin(struct flaredb_db *db)
{
    char err[UC_ERR_LEN];
    if (!usable(db)) {
        uc_error("flaredb: nothing applied: the database is closed after a failed restore");
        return UC_EUNAVAIL;
    }
    if (db->group.open)
        return 0;
    int rc = flaredb_db_wstep(db, W_BEGIN, err);
    if (rc < 0) {
        uc_error("flaredb: cannot begin applying: %s", err);
        return rc;
    }
    db->group.open = true;
    db->group.n = 0;
    db->group.index = flaredb_db_applied(db); /* not a previous, undone group's */
    db->group.logged = 0;
    db->group.acl = false;
    return 0;
}

int flaredb_db_group_end(struct flaredb_db *db, bool commit)
{
    char err[UC_ERR_LEN];
    if (!db->group.open)
        return 0;
    db->group.open = false;
    int rc = commit ? flaredb_db_wstep(db, W_COMMIT, err) : 0;
    if (!commit || rc < 0)
        rollback(db);
    if (rc < 0) {
        uc_error("flaredb: entries up to %llu not applied: %s", (unsigned long long)db->group.index,
                 err);
        return rc;
    }
    if (commit && db->group.n) {
        atomic_store(&db->applied, db->group.index);
        db->logged += db->group.logged;
        if (db->group.acl) /* after the commit: a reader that sees the new value sees the rows */
            atomic_fetch_add(&db->acl_gen, 1);
    }
    return 0;
}

/* Runs entry `index` inside the open group. */
static int group_apply(struct flaredb_db *db, const void *cmd, size_t len, uint64_t index,
                       struct flaredb_result **result)
{
    char err[UC_ERR_LEN] = "";
    struct flaredb_result *res = flaredb_result_new();
    if (!res) {
        uc_error("flaredb: entry %llu not applied: out of memory", (unsigned long long)index);
        return UC_ENOMEM;
    }
    db->acl_changed = false;
    db->schema_changed = false;
    int rc = dispatch(db, cmd, len, res, err);
    if (rc == 0)
        rc = record_index(db, index, err);
    if (db->schema_changed) /* statements cached later in the entry saw its own DDL */
        flaredb_cache_rules_keep(&db->wcache);
    if (rc < 0) {
        flaredb_result_free(res);
        if (rc != UC_EBUSY || !db->group.n) /* EBUSY: it goes again alone */
            uc_error("flaredb: entry %llu not applied: %s", (unsigned long long)index, err);
        return rc;
    }
    db->group.n++;
    db->group.index = index;
    db->group.logged += len;
    db->group.acl |= db->acl_changed;
    *result = res;
    return 0;
}

int flaredb_db_apply_result(struct flaredb_db *db, const void *cmd, size_t len, uint64_t index,
                            struct flaredb_result **result)
{
    /* an open group's index starts at the applied one and counts its entries */
    if (index <= (db->group.open ? db->group.index : flaredb_db_applied(db))) {
        *result = NULL;
        return 0;
    }
    if (db->group.open)
        return group_apply(db, cmd, len, index, result);
    int rc = flaredb_db_group_begin(db);
    if (rc == 0)
        rc = group_apply(db, cmd, len, index, result);
    int erc = flaredb_db_group_end(db, rc == 0);
    if (rc == 0 && erc < 0) {
        flaredb_result_free(*result);
        *result = NULL;
        rc = erc;
    }
    return rc;
}

int flaredb_db_apply(struct flaredb_db *db, const void *cmd, size_t len, uint64_t index,
                     json_t **result)
{
    struct flaredb_result *res = NULL;
    int rc = flaredb_db_apply_result(db, cmd, len, index, &res);
    if (rc < 0)
        return rc;
    json_t *j = res ? flaredb_result_json(res) : NULL;
    bool lost = res && !j;
    flaredb_result_free(res);
    if (lost) /* applied, but its answer is lost */
        return UC_ENOMEM;
    *result = j;
    return 0;
}

/* ---- the uc_repl state machine ------------------------------------------------- */

static int sm_apply(void *ctx, const void *cmd, size_t len, uint64_t index, void **result)
{
    struct flaredb_result *res = NULL;
    int rc = flaredb_db_apply_result(ctx, cmd, len, index, &res);
    if (rc == 0)
        *result = res;
    return rc;
}

static int sm_snapshot(void *ctx, void **buf, size_t *len)
{
    char err[UC_ERR_LEN];
    int rc = flaredb_db_snapshot(ctx, buf, len, err);
    if (rc < 0)
        uc_error("flaredb: snapshot: %s", err);
    return rc;
}

static int sm_snapshot_begin(void *ctx, void **view)
{
    char err[UC_ERR_LEN];
    struct flaredb_snap *s = NULL;
    if (!flaredb_db_snapshot_due(ctx))
        return UC_EBUSY;
    int rc = flaredb_db_snapshot_begin(ctx, &s, err);
    if (rc < 0)
        uc_error("flaredb: snapshot: %s", err);
    else
        *view = s;
    return rc;
}

static int sm_snapshot_encode(void *ctx, void *view, size_t room, void **buf, size_t *len)
{
    char err[UC_ERR_LEN];
    (void)ctx;
    int rc = flaredb_db_snapshot_encode(view, room, buf, len, err);
    if (rc < 0)
        uc_error("flaredb: snapshot at index %llu: %s",
                 (unsigned long long)flaredb_db_snapshot_index(view), err);
    return rc;
}

static void sm_snapshot_end(void *ctx, void *view)
{
    (void)ctx;
    flaredb_db_snapshot_end(view);
}

static int sm_restore(void *ctx, const void *buf, size_t len, uint64_t index)
{
    char err[UC_ERR_LEN];
    uint64_t applied = flaredb_db_applied(ctx);
    if (index <= applied) {
        uc_info("flaredb: snapshot at index %llu skipped: the database holds index %llu",
                (unsigned long long)index, (unsigned long long)applied);
        return 0;
    }
    int rc = flaredb_db_restore(ctx, buf, len, index, err);
    if (rc < 0)
        uc_error("flaredb: restore of the snapshot at index %llu: %s", (unsigned long long)index,
                 err);
    else
        uc_info("flaredb: restored the snapshot at index %llu (%zu bytes)",
                (unsigned long long)index, len);
    return rc;
}

static int sm_group_begin(void *ctx) { return flaredb_db_group_begin(ctx); }

static int sm_group_end(void *ctx, bool commit) { return flaredb_db_group_end(ctx, commit); }

static void sm_free_result(void *ctx, void *result)
{
    (void)ctx;
    flaredb_result_free(result);
}

struct uc_repl_sm flaredb_db_sm(struct flaredb_db *db)
{
    return (struct uc_repl_sm){.apply = sm_apply,
                               .snapshot = sm_snapshot,
                               .restore = sm_restore,
                               .free_result = sm_free_result,
                               .ctx = db,
                               .snapshot_begin = sm_snapshot_begin,
                               .snapshot_encode = sm_snapshot_encode,
                               .snapshot_end = sm_snapshot_end,
                               .group_begin = sm_group_begin,
                               .group_end = sm_group_end};
}
