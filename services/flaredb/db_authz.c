/* db_authz.c - the rules every user statement meets, as an SQLite
 * authorizer: no internal tables, no ATTACH, TEMP objects, transaction
 * control or writing PRAGMAs, and in writes no non-deterministic function.
 * The same callback classifies statements (read, write, additive or
 * destructive DDL). It runs when a statement is prepared, on the leader's
 * check and again inside apply, so both reach the same verdict. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "db_internal.h"

#define NAME_SHOWN 64 /* bytes of a client-chosen name quoted in a message */

/* Functions whose result differs between members or across a restart. */
static const char *const nondet_fns[] = {"random",
                                         "randomblob",
                                         "date",
                                         "time",
                                         "datetime",
                                         "julianday",
                                         "unixepoch",
                                         "strftime",
                                         "timediff",
                                         "current_date",
                                         "current_time",
                                         "current_timestamp",
                                         "changes",
                                         "total_changes",
                                         "last_insert_rowid",
                                         NULL};
/* Functions that reach outside the database: never. */
static const char *const banned_fns[] = {"load_extension", "fts3_tokenizer", "readfile",
                                         "writefile",      "edit",           NULL};
/* Read-only PRAGMAs that take a table or index name (or a count). */
static const char *const pragma_named[] = {
    "table_info",  "table_xinfo",      "table_list",        "index_list",      "index_info",
    "index_xinfo", "foreign_key_list", "foreign_key_check", "integrity_check", "quick_check",
    NULL};
/* PRAGMAs that are read-only when given no value. */
static const char *const pragma_plain[] = {
    "user_version",   "schema_version", "application_id",  "page_count",     "page_size",
    "freelist_count", "data_version",   "encoding",        "collation_list", "function_list",
    "module_list",    "pragma_list",    "compile_options", "foreign_keys",   NULL};
static const char *const vtab_modules[] = {"fts5", "fts4", "fts3", "rtree", NULL};

static bool in_list(const char *const *list, const char *name)
{
    for (size_t i = 0; name && list[i]; i++)
        if (strcasecmp(list[i], name) == 0)
            return true;
    return false;
}

bool flaredb_db_is_internal(const char *name)
{
    return name && strncasecmp(name, INTERNAL_PREFIX, strlen(INTERNAL_PREFIX)) == 0;
}

static bool is_sqlite_own(const char *name) { return name && strncasecmp(name, "sqlite_", 7) == 0; }

/* Records the first refusal (code and message) and refuses. */
UC_PRINTF(3, 4) static int deny(struct authz *az, int code, const char *fmt, ...)
{
    if (!az->deny) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(az->why, sizeof(az->why), fmt, ap);
        va_end(ap);
        az->deny = code;
    }
    return SQLITE_DENY;
}

static int deny_internal(struct authz *az, const char *name)
{
    char shown[NAME_SHOWN + 4];
    uc_err_sanitize(shown, sizeof(shown), name, NAME_SHOWN);
    return deny(az, UC_EFORBIDDEN,
                "'%s' is flaredb's own: names starting with " INTERNAL_PREFIX
                " are not reachable through SQL",
                shown);
}

static void raise(struct authz *az, enum flaredb_db_class cls)
{
    if (cls > az->cls)
        az->cls = cls;
}

/* Appends `name` to az->tables once; a failed append only loses the name
 * (flaredb_db_sql_check notices the missing memory through its own calls). */
static void note_table(struct authz *az, const char *name)
{
    if (!az->tables || !name || is_sqlite_own(name) || strncasecmp(name, "pragma_", 7) == 0)
        return;
    size_t i;
    json_t *v;
    json_array_foreach(az->tables, i, v)
    {
        if (strcasecmp(json_string_value(v), name) == 0)
            return;
    }
    /* ENOMEM here surfaces as a missing name; the caller checks memory later */
    (void)json_array_append_new(az->tables, json_string(name));
}

/* True when `name` is in the request's hidden list (case-insensitive, as
 * SQLite's names are). */
static bool is_hidden(const struct authz *az, const char *name)
{
    size_t i;
    const json_t *v;
    json_array_foreach(az->hidden, i, v)
    {
        if (name && strcasecmp(json_string_value(v), name) == 0)
            return true;
    }
    return false;
}

/* A table restricted to another project reads as one that does not exist,
 * so its existence does not leak (as IAM answers 404 across projects). */
static int deny_hidden(struct authz *az, const char *name)
{
    char shown[NAME_SHOWN + 4];
    uc_err_sanitize(shown, sizeof(shown), name, NAME_SHOWN);
    return deny(az, UC_ENOENT, "no such table: %s", shown);
}

static int use_table(struct authz *az, const char *table, bool write, const char *trigger)
{
    if (flaredb_db_is_internal(table))
        return deny_internal(az, table);
    if (is_hidden(az, table))
        return deny_hidden(az, table);
    if (!write && !trigger && table &&
        (strcasecmp(table, "sqlite_master") == 0 || strcasecmp(table, "sqlite_temp_master") == 0))
        az->schema_read = true;
    if (write && !is_sqlite_own(table)) {
        raise(az, FLAREDB_DB_WRITE);
        az->dml |= trigger == NULL;
    }
    note_table(az, table);
    return SQLITE_OK;
}

/* A CREATE of `name` on `table` (the same for tables and views). */
static int create(struct authz *az, const char *name, const char *table, bool has_defaults)
{
    if (flaredb_db_is_internal(name) || flaredb_db_is_internal(table))
        return deny_internal(az, flaredb_db_is_internal(name) ? name : table);
    if (is_hidden(az, name) || is_hidden(az, table))
        return deny_hidden(az, is_hidden(az, name) ? name : table);
    if (is_sqlite_own(name)) { /* ANALYZE creating sqlite_stat1 */
        raise(az, FLAREDB_DB_WRITE);
        return SQLITE_OK;
    }
    raise(az, FLAREDB_DB_DDL_ADDITIVE);
    note_table(az, table);
    if (has_defaults && name)
        snprintf(az->created, sizeof(az->created), "%s", name);
    return SQLITE_OK;
}

static int drop(struct authz *az, const char *name, const char *table)
{
    if (flaredb_db_is_internal(name) || flaredb_db_is_internal(table))
        return deny_internal(az, flaredb_db_is_internal(name) ? name : table);
    if (is_hidden(az, name) || is_hidden(az, table))
        return deny_hidden(az, is_hidden(az, name) ? name : table);
    raise(az, FLAREDB_DB_DDL_DESTRUCTIVE);
    note_table(az, table);
    return SQLITE_OK;
}

/* ALTER TABLE: SQLite names the column only for DROP COLUMN; RENAME shows
 * itself through the sqlite_rename_* functions it runs (see function()). */
static int alter(struct authz *az, const char *table, const char *column)
{
    if (flaredb_db_is_internal(table))
        return deny_internal(az, table);
    if (is_hidden(az, table))
        return deny_hidden(az, table);
    az->alter = true;
    az->alter_destructive |= column != NULL;
    note_table(az, table);
    if (table)
        snprintf(az->created, sizeof(az->created), "%s", table);
    return SQLITE_OK;
}

static int vtable(struct authz *az, const char *name, const char *module)
{
    if (!in_list(vtab_modules, module)) {
        char shown[NAME_SHOWN + 4];
        uc_err_sanitize(shown, sizeof(shown), module ? module : "?", NAME_SHOWN);
        return deny(az, UC_EINVAL,
                    "virtual table module '%s' is not allowed (fts5, fts4, fts3 and rtree are)",
                    shown);
    }
    return create(az, name, name, false);
}

static int function(struct authz *az, const char *name)
{
    char shown[NAME_SHOWN + 4];
    uc_err_sanitize(shown, sizeof(shown), name ? name : "?", NAME_SHOWN);
    if (in_list(banned_fns, name))
        return deny(az, UC_EINVAL, "%s() is not allowed", shown);
    if (name && (strncasecmp(name, "sqlite_rename_", 14) == 0 ||
                 strcasecmp(name, "sqlite_drop_column") == 0))
        az->alter_destructive = true;
    if (!in_list(nondet_fns, name))
        return SQLITE_OK;
    if (az->mode == AZ_READ) { /* fine in a read; flaredb_db_sql_check decides */
        if (!az->nondet[0])
            snprintf(az->nondet, sizeof(az->nondet), "%s", shown);
        return SQLITE_OK;
    }
    return deny(az, UC_EINVAL, NONDET_MSG, shown);
}

static int pragma(struct authz *az, const char *name, const char *arg)
{
    if (in_list(pragma_named, name) && is_hidden(az, arg))
        return deny_hidden(az, arg);
    if (in_list(pragma_named, name))
        return flaredb_db_is_internal(arg) ? deny_internal(az, arg) : SQLITE_OK;
    if (in_list(pragma_plain, name) && !arg)
        return SQLITE_OK;
    char shown[NAME_SHOWN + 4];
    uc_err_sanitize(shown, sizeof(shown), name ? name : "?", NAME_SHOWN);
    return deny(az, UC_EINVAL,
                "PRAGMA %s%s is not allowed: only read-only PRAGMAs (table_info, index_list, "
                "user_version, ...) are",
                shown, arg ? " with a value" : "");
}

static int authorize_ddl(struct authz *az, int action, const char *a3, const char *a4,
                         const char *db)
{
    switch (action) {
    case SQLITE_CREATE_TABLE:
        return create(az, a3, a3, true);
    case SQLITE_CREATE_VIEW:
        return create(az, a3, a3, false);
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TRIGGER:
        return create(az, a3, a4, false);
    case SQLITE_CREATE_VTABLE:
        return vtable(az, a3, a4);
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_VIEW:
    case SQLITE_DROP_VTABLE:
        return drop(az, a3, a3);
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TRIGGER:
        return drop(az, a3, a4);
    case SQLITE_ALTER_TABLE:
        return alter(az, a4, db);
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
        return deny(az, UC_EINVAL,
                    "TEMP objects are not allowed: they would live in one connection of "
                    "one member");
    default:
        return deny(az, UC_EINVAL, "statement kind %d is not allowed", action);
    }
}

static int authorize(void *ctx, int action, const char *a3, const char *a4, const char *db,
                     const char *trigger)
{
    struct authz *az = &((struct fconn *)ctx)->az;
    if (az->mode == AZ_OFF)
        return SQLITE_OK;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_READ:
        return use_table(az, a3, false, trigger);
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
        return use_table(az, a3, true, trigger);
    case SQLITE_FUNCTION:
        return function(az, a4);
    case SQLITE_PRAGMA:
        return pragma(az, a3, a4);
    case SQLITE_REINDEX:
    case SQLITE_ANALYZE:
        raise(az, FLAREDB_DB_WRITE);
        return SQLITE_OK;
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
        return deny(az, UC_EINVAL,
                    "transaction control (BEGIN, COMMIT, SAVEPOINT, ...) is not allowed: a "
                    "request is one transaction when \"transaction\" is true");
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
        return deny(az, UC_EINVAL, "ATTACH and DETACH are not allowed");
    default: /* schema changes, and anything unknown (refused there) */
        return authorize_ddl(az, action, a3, a4, db);
    }
}

/* Interrupts a runaway statement: by count on the writer (the same on
 * every member), by the clock on readers. */
static int progress(void *ctx)
{
    struct fconn *c = ctx;
    if (c->max_ticks && ++c->ticks > c->max_ticks) {
        c->over_budget = true;
        return 1;
    }
    if (c->deadline && uc_clock_mono_ms(c->db->cfg.clock) >= c->deadline) {
        c->timed_out = true;
        return 1;
    }
    return 0;
}

void flaredb_db_authz_install(struct fconn *c)
{
    /* both calls only store a pointer; neither can fail on an open handle */
    (void)sqlite3_set_authorizer(c->h, authorize, c);
    sqlite3_progress_handler(c->h, PROGRESS_OPS, progress, c);
}

void flaredb_db_authz_begin(struct fconn *c, enum az_mode mode, json_t *tables)
{
    c->az = (struct authz){.mode = mode, .cls = FLAREDB_DB_READ, .tables = tables};
}

enum flaredb_db_class flaredb_db_authz_class(const struct authz *az)
{
    enum flaredb_db_class cls = az->cls;
    if (az->alter) {
        enum flaredb_db_class a =
            az->alter_destructive ? FLAREDB_DB_DDL_DESTRUCTIVE : FLAREDB_DB_DDL_ADDITIVE;
        cls = a > cls ? a : cls;
    }
    return cls;
}

/* The run-time half of the determinism rule on the write connection. */
static void refuse(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    char msg[192];
    snprintf(msg, sizeof(msg), NONDET_MSG, (const char *)sqlite3_user_data(ctx));
    sqlite3_result_error(ctx, msg, -1);
}

int flaredb_db_authz_overrides(sqlite3 *h, char *err)
{
    for (size_t i = 0; nondet_fns[i]; i++) {
        int rc = sqlite3_create_function_v2(h, nondet_fns[i], -1, SQLITE_UTF8,
                                            (void *)nondet_fns[i], refuse, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            return flaredb_db_fail(h, rc, "overriding non-deterministic functions", err);
    }
    return 0;
}

const char *flaredb_db_class_name(enum flaredb_db_class cls)
{
    switch (cls) {
    case FLAREDB_DB_READ:
        return "read";
    case FLAREDB_DB_WRITE:
        return "write";
    case FLAREDB_DB_DDL_ADDITIVE:
        return "ddl_additive";
    case FLAREDB_DB_DDL_DESTRUCTIVE:
        return "ddl_destructive";
    }
    return "unknown";
}

/* ---- a little lexing, for what the authorizer cannot see ------------------ */

const char *flaredb_db_skip_blank(const char *s, const char *end)
{
    while (s < end) {
        if (isspace((unsigned char)*s) || *s == ';') {
            s++;
        } else if (end - s >= 2 && s[0] == '-' && s[1] == '-') {
            while (s < end && *s != '\n')
                s++;
        } else if (end - s >= 2 && s[0] == '/' && s[1] == '*') {
            s += 2;
            while (s < end && !(end - s >= 2 && s[0] == '*' && s[1] == '/'))
                s++;
            s = s < end ? s + 2 : end;
        } else {
            break;
        }
    }
    return s;
}

bool flaredb_db_first_word_is(const char *sql, size_t len, const char *kw)
{
    const char *end = sql + len, *p = flaredb_db_skip_blank(sql, end);
    size_t n = strlen(kw);
    if ((size_t)(end - p) < n || strncasecmp(p, kw, n) != 0)
        return false;
    return p + n == end || !(isalnum((unsigned char)p[n]) || p[n] == '_');
}

enum flaredb_db_class flaredb_db_guess_class(const char *sql, size_t len)
{
    if (flaredb_db_first_word_is(sql, len, "CREATE"))
        return FLAREDB_DB_DDL_ADDITIVE;
    if (flaredb_db_first_word_is(sql, len, "DROP") || flaredb_db_first_word_is(sql, len, "ALTER"))
        return FLAREDB_DB_DDL_DESTRUCTIVE;
    return FLAREDB_DB_WRITE;
}
