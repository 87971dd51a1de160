/* db_internal.h - what the db*.c files share: the handle's layout, the
 * per-connection authorizer state, and the helpers each file offers the
 * others. Private to services/flaredb/db*.c; see db.h for thread rules. */
#ifndef FLAREDB_DB_INTERNAL_H
#define FLAREDB_DB_INTERNAL_H
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define INTERNAL_PREFIX "_flaredb_"
#define PROGRESS_OPS 1000 /* VM instructions between progress callbacks */
/* The determinism refusal, with the function's name for %s. */
#define NONDET_MSG                                                                                 \
    "%s() is not deterministic, so members would store different values; compute it in the "       \
    "client and pass it as a parameter"

/* ---- authorizer (db_authz.c) ------------------------------------------- */

/* AZ_OFF for flaredb's own statements; AZ_READ for reads (anything
 * deterministic or not, nothing internal); AZ_WRITE for statements bound for
 * the log (AZ_READ's rules plus the determinism rules). */
enum az_mode { AZ_OFF, AZ_READ, AZ_WRITE };

/* One statement's authorization, reset before each prepare. */
struct authz {
    enum az_mode mode;
    enum flaredb_db_class cls; /* highest class seen */
    bool dml;                  /* INSERT/UPDATE/DELETE on a user table, outside triggers */
    bool alter;                /* ALTER TABLE seen ... */
    bool alter_destructive;    /* ... and it renames or drops */
    char created[128];         /* table a CREATE TABLE/ALTER names, for default checks */
    char nondet[72];           /* AZ_READ: the first non-deterministic function seen */
    int deny;                  /* UC_E* code of the first refusal, 0 none */
    char why[192];             /* its message */
    json_t *tables;            /* when set, touched table names are appended once */
    /* Tables the request may not reach (a project restriction): touching
     * one is refused as SQLite refuses a missing table. Borrowed; NULL none. */
    const json_t *hidden;
    bool schema_read; /* sqlite_schema was read (SQLite's own DDL reads it too) */
};

/* One SQLite connection and what its callbacks need. */
struct fconn {
    sqlite3 *h;
    struct flaredb_db *db;
    struct authz az;
    int64_t deadline;  /* readers: mono ms past which a statement stops; 0 none */
    int64_t ticks;     /* writer: progress callbacks in the current statement */
    int64_t max_ticks; /* writer: the statement's budget in callbacks; 0 none */
    bool timed_out;    /* set when the deadline interrupted a statement */
    bool over_budget;  /* set when the budget interrupted a statement */
    bool lent;         /* readers: in use */
};

/* ---- the statement cache (db_cache.c) ------------------------------------ */

#define SCACHE_SLOTS 64 /* hash buckets */
#define SCACHE_MAX 256  /* statements kept; past it the cache starts again */

struct scache_ent;
/* Prepared statements by (mode, SQL text), all authorized under `hidden`. */
struct stmt_cache {
    struct scache_ent *slot[SCACHE_SLOTS];
    struct scache_ent *last; /* the last hit, or NULL */
    size_t n;
    json_t *hidden; /* the hidden list they were authorized under; NULL none */
};

/* Finalize every statement and forget the rules. */
void flaredb_cache_clear(struct stmt_cache *sc);
/* Finalize every statement, keeping the rules (after a schema change). */
void flaredb_cache_rules_keep(struct stmt_cache *sc);
/* Empty the cache unless it was filled under `hidden` (NULL or [] none).
 * Errors: UC_ENOMEM. */
UC_MUSTCHECK int flaredb_cache_rules(struct stmt_cache *sc, const json_t *hidden, char *err);
/* The statement cached for (mode, sql) with its verdict in *az, or NULL. */
sqlite3_stmt *flaredb_cache_find(struct stmt_cache *sc, enum az_mode mode, const char *sql,
                                 size_t len, struct authz *az);
/* Keep `st` with verdict `az`; false (and `st` still the caller's) when
 * memory ran out. May finalize statements found before. */
bool flaredb_cache_add(struct stmt_cache *sc, const char *sql, size_t len, sqlite3_stmt *st,
                       const struct authz *az);

/* Statements of the write connection, prepared at open. */
enum wstmt {
    W_BEGIN,
    W_COMMIT,
    W_ROLLBACK,
    W_ENTRY_SP,
    W_ENTRY_RELEASE,
    W_ENTRY_UNDO,
    W_STMT_SP,
    W_STMT_RELEASE,
    W_STMT_UNDO,
    W_META_SET,
    W_KV_GET,
    W_KV_PUT,
    W_KV_DEL,
    W_NS_GET,
    W_NS_SET,
    W_COUNT
};

struct flaredb_db {
    char *path;
    struct flaredb_db_config cfg; /* defaults filled in; cfg.path borrowed from path */
    struct fconn w;               /* the write (apply) connection */
    sqlite3_stmt *ws[W_COUNT];
    struct stmt_cache wcache; /* user statements of the write connection */
    bool schema_changed;      /* apply thread: the entry ran DDL */
    struct fconn *rd;         /* cfg.readers read connections */
    pthread_mutex_t mu;       /* guards rd[].lent, paused, broken */
    pthread_cond_t cv;        /* signalled when a reader is returned or reads resume */
    bool paused;              /* a restore is swapping the file */
    bool broken;              /* a restore failed after the swap: everything is UC_EUNAVAIL */
    _Atomic uint64_t applied;
    bool acl_changed;         /* apply thread: the entry being applied changed _flaredb_acl */
    uint64_t logged;          /* apply thread: entry bytes applied since the last snapshot */
    uint64_t snap_need;       /* apply thread: `logged` that makes the next snapshot due */
    _Atomic uint64_t acl_gen; /* bumped after every committed ACL change and every restore */
    struct {
        bool open;       /* a transaction spans this group's entries */
        unsigned n;      /* entries applied in it */
        uint64_t index;  /* the last one's */
        uint64_t logged; /* their bytes */
        bool acl;        /* one of them changed _flaredb_acl */
    } group;             /* apply thread: entries that commit together */
};

/* Install the authorizer and progress handler on `c`. */
void flaredb_db_authz_install(struct fconn *c);
/* Make the non-deterministic SQL functions fail at run time on the write
 * connection (defaults and triggers are compiled where the authorizer does
 * not look). Errors: UC_EIO. */
UC_MUSTCHECK int flaredb_db_authz_overrides(sqlite3 *h, char *err);
/* Start authorizing a statement in `mode`; `tables` as in struct authz. */
void flaredb_db_authz_begin(struct fconn *c, enum az_mode mode, json_t *tables);
/* The statement's class once prepared (ALTER resolved). */
enum flaredb_db_class flaredb_db_authz_class(const struct authz *az);
/* `s` after whitespace, comments and semicolons. */
const char *flaredb_db_skip_blank(const char *s, const char *end);
/* True when the statement's first keyword is `kw` (case-insensitive). */
bool flaredb_db_first_word_is(const char *sql, size_t len, const char *kw);
/* Class of a statement from its first keyword, for one that cannot be
 * prepared yet: CREATE additive, DROP and ALTER destructive, else write. */
enum flaredb_db_class flaredb_db_guess_class(const char *sql, size_t len);
bool flaredb_db_is_internal(const char *name);

/* ---- snapshots (db_snapshot.c) ------------------------------------------------ */

/* Whether raft's periodic snapshot should be taken now: always for a small
 * database, else once the entries applied since the last one hold half the
 * database's bytes (apply thread). */
bool flaredb_db_snapshot_due(struct flaredb_db *db);

/* ---- connections (db.c) ------------------------------------------------ */

/* Map SQLite's `rc` to a UC_E* code with "what: <sqlite message>". */
int flaredb_db_fail(sqlite3 *h, int rc, const char *what, char *err);
/* True for SQLite codes that say something about this member (disk, memory,
 * locks) rather than about the statement. */
bool flaredb_db_local_rc(int rc);
/* Step a write-connection statement that returns no rows, then reset it. */
UC_MUSTCHECK int flaredb_db_wstep(struct flaredb_db *db, enum wstmt id, char *err);
/* reset + clear_bindings; never fails in a way the caller has not seen. */
void flaredb_db_done(sqlite3_stmt *st);
/* Lend a read connection (waiting up to the time limit); return it. */
UC_MUSTCHECK int flaredb_db_reader_get(struct flaredb_db *db, struct fconn **out, char *err);
void flaredb_db_reader_put(struct flaredb_db *db, struct fconn *c);
/* Begin and end a read transaction on a lent reader. */
UC_MUSTCHECK int flaredb_db_read_begin(struct fconn *c, char *err);
void flaredb_db_read_end(struct fconn *c);
/* Open / close the write connection and the readers (restore reuses them). */
UC_MUSTCHECK int flaredb_db_conns_open(struct flaredb_db *db, char *err);
void flaredb_db_conns_close(struct flaredb_db *db);
/* Stop lending readers and wait until every one is back / lend again. */
void flaredb_db_readers_pause(struct flaredb_db *db);
void flaredb_db_readers_resume(struct flaredb_db *db, bool broken);

/* ---- statements (db_stmt.c) -------------------------------------------- */

/* One parameter, in SQLite's terms. Text and blob bytes are borrowed from
 * the command (a JSON string, the binary entry) or owned by the request (a
 * decoded blob); they outlive every statement bound to them. */
struct sql_param {
    int type; /* SQLITE_INTEGER, _FLOAT, _TEXT, _BLOB, _NULL, or PARAM_BAD* */
    int64_t i;
    double d;
    const void *p;
    size_t n;
};
#define PARAM_BAD (-1)      /* a JSON value of no SQL type: refused at bind */
#define PARAM_BAD_BLOB (-2) /* {"blob": ...} that is not base64url: refused at bind */

struct sql_stmt {
    const char *sql; /* not NUL-terminated in a binary entry */
    size_t len;
    size_t np;
    struct sql_param *params;
};

/* A "sql" command or read request, validated and flattened, whether it came
 * as JSON (flaredb_db_sql_parse; borrows from the JSON) or as a binary log
 * entry (flaredb_db_entry_decode; borrows from the entry's bytes). Release
 * with flaredb_db_sql_clear. */
struct sql_req {
    struct sql_stmt *stmts; /* owned */
    size_t n;
    bool tx;                     /* "transaction", default true */
    enum flaredb_db_class allow; /* "allow", default FLAREDB_DB_WRITE */
    int64_t max_steps;           /* "max_steps", default FLAREDB_DB_DEFAULT_STEPS */
    const json_t *hidden;        /* "hidden": table names out of reach; NULL none */
    json_t *own_hidden;          /* the same when the request owns it */
    struct sql_param *pool;      /* owned: every statement's params */
    void **blobs;                /* owned: decoded blobs */
    size_t nblobs;
};

/* What struct flaredb_sql (db.h) is: a request and, for one read by
 * flaredb_sql_parse_fast, the arena its strings live in. */
struct flaredb_sql {
    struct sql_req req;
    char *arena;  /* owned; NULL when the strings belong to `json` */
    json_t *json; /* owned reference to the JSON command, when read from one */
};

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), as
 * jansson demands of strings. */
bool flaredb_db_utf8_ok(const unsigned char *s, size_t n);

/* Validate `cmd` into *req (cleared by the caller, also after a failure).
 * Errors: UC_EINVAL naming the field, UC_ENOMEM. */
UC_MUSTCHECK int flaredb_db_sql_parse(const json_t *cmd, struct sql_req *req, char *err);
void flaredb_db_sql_clear(struct sql_req *req);
/* statements[si]'s SQL text and length. */
const char *flaredb_db_sql_text(const struct sql_req *req, size_t si, size_t *len);

/* ---- binary entries (db_entry.c) ------------------------------------------ */

/* True when the entry is binary (its first byte can start no JSON text). */
bool flaredb_db_entry_binary(const void *p, size_t n);
/* Encode a validated request as a binary "sql" entry: *buf (uc_free) of *len
 * bytes. Errors: UC_EINVAL (a parameter of no SQL type), UC_ENOMEM. */
UC_MUSTCHECK int flaredb_db_entry_encode(const struct sql_req *req, void **buf, size_t *len,
                                         char *err);
/* Decode a binary "sql" entry into *req (cleared by the caller, also after a
 * failure); req borrows from the entry. Errors: UC_EINVAL (malformed; the
 * same bytes fail the same way on every member), UC_ENOMEM. */
UC_MUSTCHECK int flaredb_db_entry_decode(const void *p, size_t n, struct sql_req *req, char *err);

/* How a statement failed: `local` for this member's trouble (memory, disk)
 * rather than the statement's. */
struct stmt_fail {
    bool local;
    bool unprepared; /* SQLite could not compile it (it may name a table not made yet) */
};

/* Prepare statements[si] on `c` under `mode`, collecting table names into
 * `tables` (may be NULL). Refuses VACUUM, empty text and a second statement
 * in the string. Errors: the authorizer's code and message, UC_EINVAL with
 * SQLite's message, UC_ENOMEM; *f says which kind. */
UC_MUSTCHECK int flaredb_db_stmt_prepare(struct fconn *c, enum az_mode mode,
                                         const struct sql_req *req, size_t si, json_t *tables,
                                         sqlite3_stmt **st, struct stmt_fail *f, char *err);
/* flaredb_db_stmt_prepare through `sc` (NULL: none): a statement found
 * there comes back with its verdict in c->az and *cached set; one prepared
 * is added when it changes no schema. A cached statement is handed back
 * with flaredb_db_stmt_release, never finalized. */
UC_MUSTCHECK int flaredb_db_stmt_get(struct fconn *c, struct stmt_cache *sc, enum az_mode mode,
                                     const struct sql_req *req, size_t si, json_t *tables,
                                     sqlite3_stmt **st, bool *cached, struct stmt_fail *f,
                                     char *err);
/* Finalize `st`, or reset a cached one for its next use. */
void flaredb_db_stmt_release(sqlite3_stmt *st, bool cached);
/* Bind statements[si]'s params to `st` by position; the count must match.
 * Errors: UC_EINVAL (count, a param of no SQL type, bad blob), UC_ENOMEM,
 * UC_E2BIG. */
UC_MUSTCHECK int flaredb_db_stmt_bind(struct fconn *c, sqlite3_stmt *st, const struct sql_req *req,
                                      size_t si, struct stmt_fail *f, char *err);
/* What flaredb_db_stmt_bind would refuse, without binding: the parameter
 * count and parameters of no SQL type (the only refusals a request within
 * the body limit can meet). Errors: UC_EINVAL. */
UC_MUSTCHECK int flaredb_db_stmt_bind_check(sqlite3_stmt *st, const struct sql_req *req, size_t si,
                                            char *err);
/* Step `st` to its end into *res ({"columns","types","rows","rows_affected",
 * "last_insert_id"}), at most max_rows rows. Errors: UC_E2BIG (rows, or the
 * writer's step budget), UC_ETIMEDOUT (a reader's time limit), UC_ECONFLICT
 * (a constraint), UC_EINVAL (another SQLite error), or a local failure. */
UC_MUSTCHECK int flaredb_db_stmt_collect(struct fconn *c, sqlite3_stmt *st, size_t si,
                                         size_t max_rows, json_t **res, struct stmt_fail *f,
                                         char *err);

/* Step a statement that has no result columns to its end: *changes and
 * *last_id as in flaredb_db_stmt_collect's answer, without building it.
 * Errors: as flaredb_db_stmt_collect. */
UC_MUSTCHECK int flaredb_db_stmt_exec(struct fconn *c, sqlite3_stmt *st, size_t si,
                                      int64_t *changes, int64_t *last_id, struct stmt_fail *f,
                                      char *err);

/* ---- results (db_result.c) ------------------------------------------------- */

/* One SQL statement's answer: a result object when it has columns, else
 * just its two numbers. */
struct res_stmt {
    json_t *full; /* owned; NULL: {"columns":[],...} with the numbers below */
    int64_t changes, last_id;
};

struct flaredb_result {
    json_t *json;       /* owned: a KV or restriction answer, or a shared error */
    struct res_stmt *r; /* SQL: each statement's answer, in order */
    size_t n, cap;
};

/* A new empty result; NULL on ENOMEM. */
struct flaredb_result *flaredb_result_new(void);
/* Append a statement's answer (`full` stolen, may be NULL). Errors: UC_ENOMEM
 * (`full` released). */
UC_MUSTCHECK int flaredb_result_add(struct flaredb_result *r, json_t *full, int64_t changes,
                                    int64_t last_id);
/* The statements' answers so far as a new JSON array; NULL on ENOMEM. */
json_t *flaredb_result_array(const struct flaredb_result *r);
/* Forget the statements' answers. */
void flaredb_result_reset(struct flaredb_result *r);

/* ---- JSON helpers (db_stmt.c) -------------------------------------------- */

/* {"error":{"code":code,"message":msg}} plus `extra` fields (stolen, may be
 * NULL); NULL on ENOMEM. */
json_t *flaredb_db_error_json(int code, const char *msg, json_t *extra);
/* json_object_set_new that counts a NULL value as ENOMEM. */
UC_MUSTCHECK int flaredb_db_set(json_t *obj, const char *name, json_t *v);
/* New JSON string of base64url(p); NULL on ENOMEM. */
json_t *flaredb_db_b64(const void *p, size_t n);

/* ---- SQL (db_sql.c) ------------------------------------------------------ */

UC_MUSTCHECK int flaredb_db_sql_check(struct flaredb_db *db, const json_t *cmd,
                                      struct flaredb_db_verdict *out, char *err);
/* Apply a "sql" request inside the open transaction: 0 with `res` holding
 * the answer (or res->json a shared error), or a local failure. */
UC_MUSTCHECK int flaredb_db_sql_apply(struct flaredb_db *db, const struct sql_req *req,
                                      struct flaredb_result *res, char *err);
/* A listing: the rows of the query `sql`, read on a reader connection in
 * one read transaction with authorization off, each appended to an array
 * by add (which fails only for memory); *out = {"<key>": [...]}. `what`
 * names the listing in errors. */
UC_MUSTCHECK int flaredb_db_list(struct flaredb_db *db, const char *sql, const char *what,
                                 int (*add)(json_t *items, sqlite3_stmt *st), const char *key,
                                 json_t **out, char *err);

/* ---- KV (db_kv.c) ------------------------------------------------------ */

/* True for the "kv_*" ops. */
bool flaredb_db_kv_op(const char *op);
UC_MUSTCHECK int flaredb_db_kv_check(struct flaredb_db *db, const json_t *cmd, char *err);
UC_MUSTCHECK int flaredb_db_kv_apply(struct flaredb_db *db, const json_t *cmd, json_t **result,
                                     char *err);

/* ---- project restrictions (db_acl.c) -------------------------------------- */

/* True for the "acl_*" ops. */
bool flaredb_db_acl_op(const char *op);
UC_MUSTCHECK int flaredb_db_acl_check(const json_t *cmd, char *err);
UC_MUSTCHECK int flaredb_db_acl_apply(struct flaredb_db *db, const json_t *cmd, json_t **result,
                                      char *err);

#endif /* FLAREDB_DB_INTERNAL_H */
