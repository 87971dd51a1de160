/* db_acl.c - project restrictions: which namespaces and tables belong to
 * one project, kept in the internal _flaredb_acl table and changed only
 * through the log (acl_set, acl_delete), so every member enforces the same
 * list. The one idea: the database only stores and lists the list; the API
 * layer decides who may reach what and hands apply the tables a request may
 * not touch ("hidden" in a sql command), which the authorizer then refuses. */
#include <ctype.h>
#include <string.h>

#include "db_internal.h"
#include "uc/json.h"

#define NS_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_.-"

static const struct uc_json_field acl_fields[] = {
    {"op", UC_JSON_STRING, true, 1, 16, NULL},
    {"kind", UC_JSON_STRING, true, 1, 16, NULL},
    {"name", UC_JSON_STRING, true, 1, FLAREDB_DB_MAX_TABLE_NAME, NULL},
    {"project", UC_JSON_STRING, false, 1, FLAREDB_DB_MAX_PROJECT, UC_JSON_CHARS_ID},
    {NULL, 0, false, 0, 0, NULL},
};

/* A validated command, with the name as stored (tables in lower case:
 * SQLite's names are case-insensitive). */
struct acl_cmd {
    bool set;
    const char *kind;
    char name[FLAREDB_DB_MAX_TABLE_NAME + 1];
    const char *project; /* acl_set only; borrowed */
};

bool flaredb_db_acl_op(const char *op)
{
    return op && (strcmp(op, "acl_set") == 0 || strcmp(op, "acl_delete") == 0);
}

static int check_name(const char *kind, const char *name, char *err)
{
    size_t n = strlen(name);
    if (strcmp(kind, "namespace") == 0) {
        if (n > FLAREDB_DB_MAX_NS || strspn(name, NS_CHARS) != n)
            return uc_err_set(err, UC_EINVAL, "namespace must be 1-%d characters of a-z 0-9 _ . -",
                              FLAREDB_DB_MAX_NS);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return uc_err_set(err, UC_EINVAL, "a table name holds no control characters");
    if (flaredb_db_is_internal(name))
        return uc_err_set(err, UC_EINVAL, "tables starting with _flaredb_ are flaredb's own");
    return 0;
}

static int parse(const json_t *cmd, struct acl_cmd *c, char *err)
{
    int rc = uc_json_validate(cmd, acl_fields, err);
    if (rc < 0)
        return rc;
    const char *op = uc_json_str(cmd, "op", "");
    *c = (struct acl_cmd){.set = strcmp(op, "acl_set") == 0,
                          .kind = uc_json_str(cmd, "kind", ""),
                          .project = uc_json_str(cmd, "project", NULL)};
    if (!flaredb_db_acl_op(op))
        return uc_err_set(err, UC_EINVAL, "field 'op' must be \"acl_set\" or \"acl_delete\"");
    if (strcmp(c->kind, "namespace") != 0 && strcmp(c->kind, "table") != 0)
        return uc_err_set(err, UC_EINVAL, "field 'kind' must be \"namespace\" or \"table\"");
    if (c->set != (c->project != NULL))
        return uc_err_set(err, UC_EINVAL,
                          c->set ? "field 'project' is required"
                                 : "field 'project' is only for acl_set");
    const char *name = uc_json_str(cmd, "name", "");
    size_t i = 0;
    bool table = strcmp(c->kind, "table") == 0;
    for (; name[i]; i++)
        c->name[i] = table ? (char)tolower((unsigned char)name[i]) : name[i];
    c->name[i] = '\0';
    return check_name(c->kind, c->name, err);
}

int flaredb_db_acl_check(const json_t *cmd, char *err)
{
    struct acl_cmd c;
    return parse(cmd, &c, err);
}

/* Runs `sql` with ?1 kind, ?2 name, ?3 project (when set) on the writer;
 * *changed tells whether a row changed. */
static int write_row(struct flaredb_db *db, const char *sql, const struct acl_cmd *c, bool *changed,
                     char *err)
{
    sqlite3_stmt *st = NULL;
    db->w.az.mode = AZ_OFF;
    int rc = sqlite3_prepare_v2(db->w.h, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, c->kind, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && c->project)
        rc = sqlite3_bind_text(st, 3, c->project, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int out = rc == SQLITE_DONE ? 0 : flaredb_db_fail(db->w.h, rc, "writing _flaredb_acl", err);
    *changed = out == 0 && sqlite3_changes(db->w.h) > 0;
    sqlite3_finalize(st);
    return out;
}

int flaredb_db_acl_apply(struct flaredb_db *db, const json_t *cmd, json_t **result, char *err)
{
    struct acl_cmd c;
    char msg[UC_ERR_LEN];
    bool changed = false;
    int shared = parse(cmd, &c, msg);
    if (shared == UC_ENOMEM)
        return uc_err_set(err, shared, "%s", msg);
    if (shared == 0) {
        int rc = write_row(db,
                           c.set ? "INSERT INTO _flaredb_acl(kind, name, project) VALUES(?1, ?2, "
                                   "?3) ON CONFLICT(kind, name) DO UPDATE SET project = "
                                   "excluded.project"
                                 : "DELETE FROM _flaredb_acl WHERE kind = ?1 AND name = ?2",
                           &c, &changed, err);
        if (rc < 0)
            return rc; /* this member's trouble: nothing changed */
    }
    if (shared == 0 && !c.set && !changed)
        shared = uc_err_set(msg, UC_ENOENT, "%s '%s' has no restriction", c.kind, c.name);
    if (shared < 0)
        *result = flaredb_db_error_json(shared, msg, NULL);
    else
        *result = json_pack("{ssssso*}", "kind", c.kind, "name", c.name, "project",
                            c.project ? json_string(c.project) : NULL);
    db->acl_changed |= shared == 0;
    return *result ? 0 : uc_err_set(err, UC_ENOMEM, "out of memory");
}

static int add_restriction(json_t *items, sqlite3_stmt *st)
{
    json_t *row = json_pack("{s:s?,s:s?,s:s?}", "kind", (const char *)sqlite3_column_text(st, 0),
                            "name", (const char *)sqlite3_column_text(st, 1), "project",
                            (const char *)sqlite3_column_text(st, 2));
    if (!row || json_array_append_new(items, row) < 0)
        return UC_ENOMEM;
    return 0;
}

int flaredb_db_acl_list(struct flaredb_db *db, json_t **out, char err[UC_ERR_LEN])
{
    return flaredb_db_list(db, "SELECT kind, name, project FROM _flaredb_acl ORDER BY 1, 2",
                           "reading _flaredb_acl", add_restriction, "items", out, err);
}

uint64_t flaredb_db_acl_generation(struct flaredb_db *db) { return atomic_load(&db->acl_gen); }
