/* bindings.c - role bindings in the store: rb/<id> holds the record,
 * by-principal/rb/<principal>/<project|system> and
 * by-project/rb/<project>/<id> hold copies (bindings never change). */
#include <string.h>

#include "bindings.h"
#include "principals.h"
#include "projects.h"
#include "uc/crypto.h"
#include "uc/json.h"

#define MAX_BINDINGS 1000 /* per principal: far above the number of projects */

static const struct uc_json_field create_fields[] = {
    {"principal_id", UC_JSON_STRING, true, 1, 64, NULL},
    {"project_id", UC_JSON_STRING, false, 1, 64, NULL},
    {"role", UC_JSON_STRING, true, 1, 32, NULL},
    {NULL},
};

/* A new binding being created: what its transaction needs. */
struct draft {
    const char *principal, *project; /* borrowed from the body; project NULL = system */
    enum uc_role role;
    uint64_t principal_rev, project_rev;
    char principal_key[IAM_KEY_LEN];
};

static int check_project(const struct uc_auth_claims *c, const char *project, enum uc_role need,
                         char err[UC_ERR_LEN])
{
    return iam_check_project(c, project, need, "project", project, err);
}

/* Check the principal exists; fill its storage key and revision. */
static int principal_rev(struct iam_server *s, const char *id, char key[IAM_KEY_LEN], uint64_t *rev,
                         char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    int rc = iam_principals_load(s, id, &rec, rev, key, err);
    json_decref(rec);
    return rc;
}

static int parse_role(const json_t *body, struct draft *d, char err[UC_ERR_LEN])
{
    const char *name = uc_json_str(body, "role", "");
    if (uc_role_parse(name, &d->role) < 0 || d->role == UC_ROLE_ANY)
        return uc_err_set(err, UC_EINVAL,
                          "field 'role' must be one of reader, member, admin, system-admin");
    if (d->role == UC_ROLE_SYSTEM_ADMIN && d->project)
        return uc_err_set(err, UC_EINVAL, "system-admin bindings take no project_id");
    if (d->role != UC_ROLE_SYSTEM_ADMIN && !d->project)
        return uc_err_set(err, UC_EINVAL, "field 'project_id' is required for role %s", name);
    return 0;
}

static int check_create(struct iam_server *s, const struct uc_auth_claims *c, const json_t *body,
                        struct draft *d, char err[UC_ERR_LEN])
{
    int rc = uc_json_validate(body, create_fields, err);
    if (rc < 0)
        return rc;
    d->principal = uc_json_str(body, "principal_id", "");
    d->project = uc_json_str(body, "project_id", NULL);
    rc = parse_role(body, d, err);
    if (rc == 0 && d->project)
        rc = iam_id_check(d->project, "proj", err);
    if (rc == 0 && !d->project)
        rc = uc_auth_require(c, UC_ROLE_SYSTEM_ADMIN, err);
    if (rc == 0 && d->project)
        rc = check_project(c, d->project, UC_ROLE_ADMIN, err);
    if (rc == 0 && d->project)
        rc = iam_projects_revision(s, d->project, &d->project_rev, err);
    if (rc == 0)
        rc = principal_rev(s, d->principal, d->principal_key, &d->principal_rev, err);
    return rc;
}

static int new_record(struct iam_server *s, const struct draft *d, json_t **rec)
{
    char id[UC_ID_LEN];
    if (uc_crypto_random_id("rb", id) < 0)
        return UC_ECRYPTO;
    json_t *r = json_pack("{s:s, s:s, s:s?, s:s}", "id", id, "principal_id", d->principal,
                          "project_id", d->project, "role", uc_role_name(d->role));
    if (!r || iam_stamp(r, iam_now_ms(s), true) < 0) {
        json_decref(r);
        return UC_ENOMEM;
    }
    *rec = r;
    return 0;
}

static int create_ops(const struct draft *d, const json_t *rec, struct iam_ops *ops, char *uniq,
                      char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    const char *id = uc_json_str(rec, "id", "");
    int rc = iam_ops_touch_parent(ops, d->principal_key, d->principal_rev, d->principal, err);
    if (rc == 0 && d->project && (rc = iam_key(k, IAM_K_PROJECT, d->project, NULL, err)) == 0)
        rc = iam_ops_touch_parent(ops, k, d->project_rev, d->project, err);
    if (rc == 0 && (rc = iam_key(k, IAM_K_BINDING, id, NULL, err)) == 0)
        rc = iam_ops_put_json(ops, k, rec, UC_STORE_ABSENT);
    if (rc == 0 && (rc = iam_key(uniq, IAM_K_RB_BY_PRINCIPAL, d->principal,
                                 d->project ? d->project : IAM_SYSTEM_SCOPE, err)) == 0)
        rc = iam_ops_put_json(ops, uniq, rec, UC_STORE_ABSENT);
    if (rc == 0 && d->project && (rc = iam_key(k, IAM_K_RB_BY_PROJECT, d->project, id, err)) == 0)
        rc = iam_ops_put_json(ops, k, rec, UC_STORE_ABSENT);
    return rc;
}

int iam_bindings_create(struct iam_server *s, const struct uc_auth_claims *c, const json_t *body,
                        json_t **out, char err[UC_ERR_LEN])
{
    char uniq[IAM_KEY_LEN], exists[160];
    struct draft d = {0};
    struct iam_ops ops = {0};
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = check_create(s, c, body, &d, err);
    if (rc == 0)
        rc = new_record(s, &d, &rec);
    if (rc == 0)
        rc = create_ops(&d, rec, &ops, uniq, err);
    if (rc == 0) {
        if (d.project)
            snprintf(exists, sizeof(exists), "%s already has a role in project %s", d.principal,
                     d.project);
        else
            snprintf(exists, sizeof(exists), "%s already is a system-admin", d.principal);
        rc = iam_ops_commit(s->store, &ops, uniq, exists, &rev, err);
    }
    if (rc == 0 && !(*out = iam_record_view(rec, rev)))
        rc = UC_ENOMEM;
    iam_ops_clear(&ops);
    json_decref(rec);
    return rc;
}

/* One binding (or none) as a list: the principal's in `project`. */
static int single(struct iam_server *s, const char *principal, const char *project, json_t **out,
                  char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    struct uc_store_item it = {0};
    json_t *items = json_array(), *view = NULL;
    int rc = items ? iam_key(k, IAM_K_RB_BY_PRINCIPAL, principal, project, err) : UC_ENOMEM;
    if (rc == 0)
        rc = uc_store_get(s->store, k, &it, err);
    if (rc == 0)
        rc = iam_map_record(NULL, &it, &view, err);
    if (rc == 0 && json_array_append_new(items, view) != 0)
        rc = UC_ENOMEM;
    if (rc == UC_ENOENT)
        rc = 0;
    uc_store_item_clear(&it);
    if (rc < 0) {
        json_decref(items);
        return rc;
    }
    return iam_wrap_items(items, out);
}

/* token_kind: as for iam_list. */
static int list_prefix(struct iam_server *s, const char *a, const char *b,
                       const struct iam_kind *token_kind, const struct iam_page *pg, json_t **out,
                       char err[UC_ERR_LEN])
{
    char prefix[IAM_KEY_LEN];
    int rc = iam_key(prefix, a, b, "", err);
    if (rc < 0)
        return rc;
    return iam_list(s->store, prefix, token_kind, pg, iam_map_record, NULL, out, err);
}

/* A principal's bindings are keyed, and so paged, by project id or "system". */
static int check_principal_token(const struct iam_page *pg, char err[UC_ERR_LEN])
{
    if (pg->token && strcmp(pg->token, IAM_SYSTEM_SCOPE) == 0)
        return 0;
    return iam_page_check(pg, &iam_kind_project, err);
}

static int list_principal(struct iam_server *s, const struct uc_auth_claims *c, const char *project,
                          const char *principal, const struct iam_page *pg, json_t **out,
                          char err[UC_ERR_LEN])
{
    if (!iam_principals_is_id(principal))
        return uc_err_set(err, UC_EINVAL, "principal_id must look like user-<...> or sa-<...>");
    if (check_principal_token(pg, err) < 0)
        return UC_EINVAL;
    if (!project && (c->system_admin || strcmp(c->sub, principal) == 0))
        return list_prefix(s, IAM_K_RB_BY_PRINCIPAL, principal, NULL, pg, out, err);
    if (!project && !c->project[0])
        return uc_err_set(err, UC_EFORBIDDEN, "this token has no project: pass project_id");
    project = project ? project : c->project;
    int rc = check_project(c, project, UC_ROLE_READER, err);
    return rc < 0 ? rc : single(s, principal, project, out, err);
}

int iam_bindings_list(struct iam_server *s, const struct uc_auth_claims *c, const char *project_id,
                      const char *principal_id, const struct iam_page *pg, json_t **out,
                      char err[UC_ERR_LEN])
{
    if (project_id && iam_id_check(project_id, "proj", err) < 0)
        return UC_EINVAL;
    if (principal_id)
        return list_principal(s, c, project_id, principal_id, pg, out, err);
    if (!project_id && c->system_admin)
        return iam_list(s->store, IAM_K_BINDING, &iam_kind_binding, pg, iam_map_record, NULL, out,
                        err);
    if (!project_id && !c->project[0])
        return uc_err_set(err, UC_EFORBIDDEN, "this token has no project: pass project_id");
    const char *project = project_id ? project_id : c->project;
    int rc = check_project(c, project, UC_ROLE_READER, err);
    return rc < 0 ? rc
                  : list_prefix(s, IAM_K_RB_BY_PROJECT, project, &iam_kind_binding, pg, out, err);
}

/* The three keys of a binding record, as delete ops; `rev` guards rb/<id>. */
static int delete_ops(const json_t *rec, uint64_t rev, struct iam_ops *ops, char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    const char *id = uc_json_str(rec, "id", ""), *proj = uc_json_str(rec, "project_id", NULL);
    const char *principal = uc_json_str(rec, "principal_id", "");
    int rc = iam_key(k, IAM_K_BINDING, id, NULL, err);
    if (rc == 0)
        rc = iam_ops_del(ops, k, rev);
    if (rc == 0 && (rc = iam_key(k, IAM_K_RB_BY_PRINCIPAL, principal,
                                 proj ? proj : IAM_SYSTEM_SCOPE, err)) == 0)
        rc = iam_ops_del(ops, k, UC_STORE_ANY);
    if (rc == 0 && proj && (rc = iam_key(k, IAM_K_RB_BY_PROJECT, proj, id, err)) == 0)
        rc = iam_ops_del(ops, k, UC_STORE_ANY);
    return rc;
}

int iam_bindings_delete(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                        char err[UC_ERR_LEN])
{
    struct iam_ops ops = {0};
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = iam_load(s->store, &iam_kind_binding, id, &rec, &rev, err);
    if (rc == 0) {
        const char *proj = uc_json_str(rec, "project_id", NULL);
        rc = proj ? iam_check_project(c, proj, UC_ROLE_ADMIN, "role binding", id, err)
                  : uc_auth_require(c, UC_ROLE_SYSTEM_ADMIN, err);
    }
    if (rc == 0)
        rc = delete_ops(rec, rev, &ops, err);
    if (rc == 0)
        rc = iam_ops_commit(s->store, &ops, NULL, NULL, NULL, err);
    iam_ops_clear(&ops);
    json_decref(rec);
    return rc;
}

typedef int (*binding_fn)(void *ctx, const json_t *rec, char err[UC_ERR_LEN]);

/* Call fn on every binding of `principal`, until one fails. */
static int each_binding(struct iam_server *s, const char *principal, binding_fn fn, void *ctx,
                        char err[UC_ERR_LEN])
{
    char prefix[IAM_KEY_LEN];
    struct uc_store_item *items = NULL;
    size_t n = 0;
    int rc = iam_key(prefix, IAM_K_RB_BY_PRINCIPAL, principal, "", err);
    if (rc == 0)
        rc = iam_scan_all(s->store, prefix, MAX_BINDINGS, &items, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *rec = NULL;
        rc = iam_record_parse(&items[i], &rec, err);
        if (rc == 0)
            rc = fn(ctx, rec, err);
        json_decref(rec);
    }
    uc_store_items_free(items, n);
    return rc;
}

/* binding_fn adding rec to the struct iam_grants at ctx. */
static int add_grant(void *ctx, const json_t *rec, char err[UC_ERR_LEN])
{
    (void)err; /* adding a grant cannot fail */
    struct iam_grants *g = ctx;
    enum uc_role role = UC_ROLE_ANY;
    const char *proj = uc_json_str(rec, "project_id", NULL);
    if (uc_role_parse(uc_json_str(rec, "role", ""), &role) < 0)
        return 0; /* a role this build does not know grants nothing */
    if (!proj) {
        g->system_admin = g->system_admin || role == UC_ROLE_SYSTEM_ADMIN;
        return 0;
    }
    if (g->nprojects++ == 0) {
        snprintf(g->only_project, sizeof(g->only_project), "%s", proj);
        g->only_role = role;
    }
    return 0;
}

int iam_bindings_grants(struct iam_server *s, const char *principal, struct iam_grants *g,
                        char err[UC_ERR_LEN])
{
    *g = (struct iam_grants){0};
    return each_binding(s, principal, add_grant, g, err);
}

int iam_bindings_role(struct iam_server *s, const char *principal, const char *project, bool *found,
                      enum uc_role *role, char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    json_t *rec = NULL;
    *found = false;
    int rc = iam_key(k, IAM_K_RB_BY_PRINCIPAL, principal, project, err);
    if (rc == 0)
        rc = iam_record_load(s->store, k, "role binding", &rec, NULL, err);
    if (rc == UC_ENOENT)
        return 0;
    if (rc == 0 && uc_role_parse(uc_json_str(rec, "role", ""), role) == 0)
        *found = true;
    json_decref(rec);
    return rc;
}

/* binding_fn adding the deletion of rec to the struct iam_ops at ctx. */
static int add_delete(void *ctx, const json_t *rec, char err[UC_ERR_LEN])
{
    return delete_ops(rec, UC_STORE_ANY, ctx, err);
}

int iam_bindings_cascade(struct iam_server *s, const char *principal, struct iam_ops *ops,
                         char err[UC_ERR_LEN])
{
    return each_binding(s, principal, add_delete, ops, err);
}
