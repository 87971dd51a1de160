/* db.h - flaredb's state machine: one SQLite database that every member
 * changes only by applying the same log entries (JSON commands) in order,
 * plus the reads, checks and snapshots around it. No HTTP here.
 *
 * The one idea: every write is decided by the bytes of its entry alone.
 * Statements are checked twice with the same rules (an SQLite authorizer):
 * by the leader before proposing, for a precise 400, and again inside apply,
 * where a refused statement becomes the same error result on every member.
 * See docs/api/flaredb.md ("State machine") for the command format and the
 * determinism rules.
 *
 * Thread-safety: apply, snapshot, restore and close run on one thread (raft's
 * loop thread), never concurrently with each other. check, query, tables,
 * kv_get, kv_scan and applied may run on any thread, concurrently with them
 * and with each other: they use a pool of read connections, and WAL lets
 * them read while apply writes. */
#ifndef FLAREDB_DB_H
#define FLAREDB_DB_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uc/clock.h"
#include "uc/err.h"
#include "uc/repl.h"

#define FLAREDB_DB_MAX_STATEMENTS 100  /* statements in one request */
#define FLAREDB_DB_MAX_NS 64           /* namespace bytes, [a-z0-9_.-] */
#define FLAREDB_DB_MAX_KEY 4096        /* key bytes (after base64url decoding) */
#define FLAREDB_DB_MAX_SCAN 10000      /* largest scan limit */
#define FLAREDB_DB_MAX_TXN_OPS 1024    /* operations in one kv_txn */
#define FLAREDB_DB_APPLY_MAX_ROWS 1000 /* rows one statement may return inside a write */
#define FLAREDB_DB_MAX_TABLE_NAME 128  /* bytes of a table name in a restriction */
#define FLAREDB_DB_MAX_PROJECT 63      /* bytes of a project id in a restriction */
/* VM instructions one statement may execute inside a write when the command
 * names no "max_steps" (about a second of work). A count, not a time, so
 * every member stops a runaway write at the same point. */
#define FLAREDB_DB_DEFAULT_STEPS 100000000LL
#define FLAREDB_DB_MAX_STEPS (1LL << 40)

struct flaredb_db; /* opaque */

struct flaredb_db_config {
    const char *path;             /* database file (created when missing); copied */
    unsigned readers;             /* read connections; 0: 4 */
    unsigned time_limit_ms;       /* wall-clock bound of one read request; 0: 5000 */
    size_t max_rows;              /* rows one read statement may return; 0: 10000 */
    unsigned busy_timeout_ms;     /* wait on another process's lock; 0: 5000 */
    size_t max_value;             /* KV value bytes flaredb_db_check accepts; 0: 1 MiB */
    const struct uc_clock *clock; /* time limit clock; NULL: the system's; borrowed */
};

/* What a command does, in increasing order of the permission it needs. */
enum flaredb_db_class {
    FLAREDB_DB_READ,            /* read-only statements only */
    FLAREDB_DB_WRITE,           /* data changes (and KV operations) */
    FLAREDB_DB_DDL_ADDITIVE,    /* CREATE TABLE/INDEX/VIEW/TRIGGER, ALTER TABLE ADD COLUMN */
    FLAREDB_DB_DDL_DESTRUCTIVE, /* DROP ..., ALTER TABLE RENAME / DROP COLUMN */
};

/* flaredb_db_check's findings. Release with flaredb_db_verdict_clear. */
struct flaredb_db_verdict {
    enum flaredb_db_class cls; /* the highest class of any statement */
    /* Names of the tables and views the statements touch, as SQLite resolved
     * them (table-valued functions such as json_each included), each once;
     * an empty array for KV commands. Owned (a jansson reference). */
    json_t *tables;
};

/* Open (creating when missing) the database at cfg->path and its read
 * connections: WAL, synchronous=NORMAL (raft's log is the durable copy, see
 * docs/api/flaredb.md), foreign keys on. On success *out owns the handle
 * (free with flaredb_db_close); on failure *out is untouched.
 * Errors: UC_EINVAL (no path, a file of another format), UC_EIO (cannot
 * open, create or read it; WAL unavailable), UC_EUNAVAIL (locked by another
 * process past the busy timeout), UC_ENOMEM. */
UC_MUSTCHECK int flaredb_db_open(struct flaredb_db **out, const struct flaredb_db_config *cfg,
                                 char err[UC_ERR_LEN]);

/* Close every connection and free the handle; NULL is a no-op. No other call
 * may be running or follow. */
void flaredb_db_close(struct flaredb_db *db);

/* Log index of the last entry applied (0 for a new database). */
uint64_t flaredb_db_applied(struct flaredb_db *db);

/* Check a command (borrowed: "sql", "kv_*" or "acl_*") as the leader does
 * before proposing it: its shape, its sizes, and for SQL each statement
 * prepared against the current
 * schema with the determinism and access rules. A statement that cannot be
 * prepared because an earlier statement of the same request creates what it
 * names is classified by its first keyword and left to apply, which runs the
 * same rules. Fills *out (caller clears it) on success; untouched on failure.
 * Errors: UC_EINVAL (malformed command, SQLite's parse error, two statements
 * in one string, a non-deterministic function, ATTACH, VACUUM, a PRAGMA
 * outside the read-only list, transaction control, TEMP objects; err names
 * the statement as "statements[i]"), UC_EFORBIDDEN (an internal _flaredb_
 * table; reading sqlite_schema while "hidden" names a table), UC_ENOENT (a
 * table named in the command's "hidden" list: "no such table"), UC_E2BIG
 * (a KV value over max_value), UC_EUNAVAIL (no read
 * connection free within the time limit, or the database is unusable after
 * a failed restore), UC_ENOMEM. */
UC_MUSTCHECK int flaredb_db_check(struct flaredb_db *db, const json_t *cmd,
                                  struct flaredb_db_verdict *out, char err[UC_ERR_LEN]);

/* Release what a verdict owns; a zeroed verdict is fine. */
void flaredb_db_verdict_clear(struct flaredb_db_verdict *v);

/* Lower-case name of a class ("read", "write", "ddl_additive",
 * "ddl_destructive"); never NULL. */
const char *flaredb_db_class_name(enum flaredb_db_class cls);

/* Apply log entry `index` (`len` bytes at `cmd`, borrowed: a JSON command,
 * or the binary form flaredb_db_encode gives an "sql" one) in one SQLite
 * transaction that also records `index` as applied. Entries at or below the
 * applied index are skipped (0, *result NULL): after a restart raft replays
 * entries the file already holds. Otherwise *result is a new result the
 * caller frees with flaredb_result_free: the answer ({"results":[...]} for
 * SQL, see the doc for KV), or, when the command failed for a reason every
 * member shares (malformed, a statement SQLite refuses, a failed compare), an
 * answer with "error": {"code": <UC_E* int>, "message": "...", ...}: nothing
 * of the command changed, but the entry counts as applied.
 * Errors: UC_EIO, UC_EUNAVAIL, UC_ENOMEM: a local failure (disk,
 * memory, a lock held by another process); nothing changed, not even the
 * applied index, and *result is untouched. */
struct flaredb_result;
UC_MUSTCHECK int flaredb_db_apply_result(struct flaredb_db *db, const void *cmd, size_t len,
                                         uint64_t index, struct flaredb_result **result);

/* Groups: entries applied between begin and end commit together (one
 * transaction; each entry still all or nothing). begin: UC_EUNAVAIL (closed
 * after a failed restore), UC_EIO. end(commit): 0, or UC_EIO and everything
 * since begin is undone; end(false) undoes; without a group both are no-ops.
 * Inside a group, flaredb_db_apply_result adds to it, and fails with UC_EBUSY
 * an entry that would end the transaction early (OR ROLLBACK, or a trigger's
 * RAISE(ROLLBACK)) after others: the caller undoes the group and applies
 * each alone. Outside one, an entry is a group of its own. */
UC_MUSTCHECK int flaredb_db_group_begin(struct flaredb_db *db);
UC_MUSTCHECK int flaredb_db_group_end(struct flaredb_db *db, bool commit);

/* flaredb_db_apply_result with the answer as a new JSON object (*result,
 * released by the caller; NULL for a skipped entry). Errors: as
 * flaredb_db_apply_result, and UC_ENOMEM when the entry was applied but
 * memory for its answer ran out. For tests and tools. */
UC_MUSTCHECK int flaredb_db_apply(struct flaredb_db *db, const void *cmd, size_t len,
                                  uint64_t index, json_t **result);

/* Release a result; NULL is a no-op. */
void flaredb_result_free(struct flaredb_result *r);
/* The "error" object of a shared failure (borrowed), or NULL. */
const json_t *flaredb_result_error(const struct flaredb_result *r);
/* The whole answer as a new JSON object; NULL on ENOMEM. */
json_t *flaredb_result_json(const struct flaredb_result *r);
/* A successful answer as compact JSON text, with "index": `index` added
 * when `with_index`: a new NUL-terminated string of *len bytes (uc_free);
 * NULL on ENOMEM. Writes the statements' answers without building them as
 * JSON first. */
char *flaredb_result_text(const struct flaredb_result *r, uint64_t index, bool with_index,
                          size_t *len);

/* The log entry for a checked command (borrowed): an "sql" command in a
 * compact binary form (each distinct statement text once, typed
 * parameters; docs/api/flaredb.md "State machine"), any other command as
 * compact JSON. *buf (uc_free) holds *len bytes.
 * Errors: UC_EINVAL (a malformed command), UC_ENOMEM. */
UC_MUSTCHECK int flaredb_db_encode(const json_t *cmd, void **buf, size_t *len,
                                   char err[UC_ERR_LEN]);

/* Run a read-only SQL request (`req` borrowed: a "sql" command object, with
 * or without "op") on a read connection, all statements in one read
 * transaction, bounded by the time limit and max_rows. On success *out is a
 * new object {"results":[...]} the caller releases; untouched on failure.
 * Errors: UC_EINVAL (as flaredb_db_check, plus a statement that is not
 * read-only, or SQLite's run-time error), UC_EFORBIDDEN, UC_ETIMEDOUT (the
 * time limit passed; err names the statement), UC_E2BIG (a statement
 * returned more than max_rows rows), UC_EUNAVAIL, UC_EIO, UC_ENOMEM. */
UC_MUSTCHECK int flaredb_db_query(struct flaredb_db *db, const json_t *req, json_t **out,
                                  char err[UC_ERR_LEN]);

/* The user tables and views with their columns, by name: *out is a new
 * object {"tables":[{"name","type":"table"|"view","columns":[{"name",
 * "type","notnull":bool,"pk":int}]}]} without flaredb's and SQLite's own.
 * Errors: UC_EUNAVAIL, UC_EIO, UC_ENOMEM (outputs untouched). */
UC_MUSTCHECK int flaredb_db_tables(struct flaredb_db *db, json_t **out, char err[UC_ERR_LEN]);

/* Key `key` (`klen` bytes, borrowed) of namespace `ns`: *out is a new object
 * {"key","value" (base64url),"revision","version","create_revision"}.
 * Errors: UC_EINVAL (bad namespace or key length), UC_ENOENT, UC_EUNAVAIL,
 * UC_EIO, UC_ENOMEM. Outputs untouched on failure. */
UC_MUSTCHECK int flaredb_db_kv_get(struct flaredb_db *db, const char *ns, const void *key,
                                   size_t klen, json_t **out, char err[UC_ERR_LEN]);

/* Keys of namespace `ns` in byte order from one consistent read. `req`
 * (borrowed) may hold "prefix", "start" (inclusive), "end" (exclusive),
 * "after" and "page_token" (both exclusive; the token is the base64url of the
 * last key of the previous page), all base64url, and "limit" (1..10000,
 * default 100). *out is a new object {"items":[records as kv_get],
 * "more":bool, "next_page_token" (when more), "revision": the namespace's}.
 * Errors: UC_EINVAL (unknown field, bad base64url, limit out of range),
 * UC_ETIMEDOUT (past the time limit), UC_EUNAVAIL, UC_EIO, UC_ENOMEM.
 * Outputs untouched on failure. */
UC_MUSTCHECK int flaredb_db_kv_scan(struct flaredb_db *db, const char *ns, const json_t *req,
                                    json_t **out, char err[UC_ERR_LEN]);

/* A consistent copy of the whole database as of the last applied entry: on
 * success *buf is a new buffer of *len bytes (an SQLite file image) freed
 * with uc_free; untouched on failure. Errors: UC_EIO, UC_ENOMEM. */
UC_MUSTCHECK int flaredb_db_snapshot(struct flaredb_db *db, void **buf, size_t *len,
                                     char err[UC_ERR_LEN]);

/* The same snapshot in three steps, so the copy runs off the apply thread.
 * begin (apply thread, between applies; cheap): pin the state as of the last
 * applied entry in a read transaction on a connection of its own (WAL keeps
 * that state while apply goes on), returned as *out. encode (any one thread,
 * concurrently with apply and restore): the image of the pinned state into
 * *buf (uc_free), its first `room` bytes left free and counted in *len.
 * end (apply thread, once per successful begin, after encode returned):
 * close the view. Errors: UC_EIO (the file, or the index read back at begin
 * differs from the applied one), UC_EUNAVAIL (closed after a failed
 * restore), UC_ENOMEM. */
struct flaredb_snap;
UC_MUSTCHECK int flaredb_db_snapshot_begin(struct flaredb_db *db, struct flaredb_snap **out,
                                           char err[UC_ERR_LEN]);
UC_MUSTCHECK int flaredb_db_snapshot_encode(struct flaredb_snap *s, size_t room, void **buf,
                                            size_t *len, char err[UC_ERR_LEN]);
void flaredb_db_snapshot_end(struct flaredb_snap *s);
/* The applied index the view holds. */
uint64_t flaredb_db_snapshot_index(const struct flaredb_snap *s);

/* Replace the whole database by a copy flaredb_db_snapshot made (`len` bytes
 * at `buf`, borrowed), taken at log index `index`, which becomes the applied
 * index. The image is written to "<path>.restore", checked, synced and
 * renamed over the file; reads wait meanwhile. On failure before the rename
 * the database is unchanged.
 * Errors: UC_EINVAL (not a flaredb database image, or a corrupt one),
 * UC_EIO (cannot write or reopen; after a failed reopen the handle answers
 * UC_EUNAVAIL until closed), UC_ENOMEM. */
UC_MUSTCHECK int flaredb_db_restore(struct flaredb_db *db, const void *buf, size_t len,
                                    uint64_t index, char err[UC_ERR_LEN]);

/* Every project restriction (acl_set commands not undone by acl_delete):
 * *out is a new object {"items":[{"kind":"namespace"|"table","name",
 * "project"}]} ordered by kind, then name; table names are lower case.
 * Errors: UC_EUNAVAIL, UC_EIO, UC_ENOMEM (outputs untouched). */
UC_MUSTCHECK int flaredb_db_acl_list(struct flaredb_db *db, json_t **out, char err[UC_ERR_LEN]);

/* A counter that moves after every committed change of the restrictions
 * and every restore: a copy of flaredb_db_acl_list read after this value
 * was is current while the value stays the same. */
uint64_t flaredb_db_acl_generation(struct flaredb_db *db);

/* ---- parsed SQL requests -------------------------------------------------- */

/* A POST /api/v1/sql request read once and kept flat: its statements, texts
 * and typed parameters, then checked and encoded without JSON in between.
 * Not thread-safe; one request, one thread at a time. */
struct flaredb_sql;

/* The top-level fields of a request body besides "statements". */
struct flaredb_sql_body {
    bool transaction;         /* default true */
    bool confirm_destructive; /* default false */
    const char *consistency;  /* NULL when absent; borrowed from the flaredb_sql */
};

#define FLAREDB_SQL_GENERAL 1 /* flaredb_sql_parse_fast: not the usual shape */

/* Read a request body (`len` bytes, borrowed) of the usual shape straight
 * into *out (flaredb_sql_free) and *top. Returns 0, UC_ENOMEM, or
 * FLAREDB_SQL_GENERAL for anything else (blobs, unknown or repeated keys,
 * any malformed body): parse it as JSON and use flaredb_sql_from_json,
 * whose errors are the ones a client sees. */
UC_MUSTCHECK int flaredb_sql_parse_fast(const char *body, size_t len, struct flaredb_sql **out,
                                        struct flaredb_sql_body *top);

/* The request of an "sql" command `cmd` (borrowed; *out keeps a reference).
 * Errors: UC_EINVAL naming the field, UC_ENOMEM. */
UC_MUSTCHECK int flaredb_sql_from_json(const json_t *cmd, struct flaredb_sql **out,
                                       char err[UC_ERR_LEN]);
void flaredb_sql_free(struct flaredb_sql *q);
size_t flaredb_sql_count(const struct flaredb_sql *q);
/* Statement i's text (not NUL-terminated in every case) and length. */
const char *flaredb_sql_text(const struct flaredb_sql *q, size_t i, size_t *len);
/* Tables the request may not reach (JSON array of names, or NULL; q keeps
 * a reference), as a command's "hidden": the check, a read and the log
 * entry all carry them. */
void flaredb_sql_restrict(struct flaredb_sql *q, json_t *hidden);

/* flaredb_db_query for a parsed request. */
UC_MUSTCHECK int flaredb_db_query_sql(struct flaredb_db *db, const struct flaredb_sql *q,
                                      json_t **out, char err[UC_ERR_LEN]);

/* flaredb_db_check for a parsed request. */
UC_MUSTCHECK int flaredb_db_check_sql(struct flaredb_db *db, const struct flaredb_sql *q,
                                      struct flaredb_db_verdict *out, char err[UC_ERR_LEN]);

/* The log entry of a checked write: q run at class `allow` with a budget
 * of `max_steps` VM steps per statement (flaredb_db_encode's binary form).
 * Errors: as flaredb_db_encode. */
UC_MUSTCHECK int flaredb_sql_encode(const struct flaredb_sql *q, enum flaredb_db_class allow,
                                    int64_t max_steps, void **buf, size_t *len,
                                    char err[UC_ERR_LEN]);

/* The state machine for uc_repl_create: apply is flaredb_db_apply_result
 * (results are struct flaredb_result *, released by free_result), snapshot is
 * flaredb_db_snapshot (and the split one above for raft's own), restore is flaredb_db_restore
 * except that a snapshot at or below the applied index is a no-op (the file already holds that
 * state plus later committed entries). Failures are logged. `db` is
 * borrowed until the uc_repl is destroyed. */
struct uc_repl_sm flaredb_db_sm(struct flaredb_db *db);

#endif /* FLAREDB_DB_H */
