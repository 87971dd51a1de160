/* service_accounts.c - service accounts in the store: sa/<id> holds the
 * record, by-project/sa/<project>/<id> a copy for listing (records never
 * change), name/sa/<project>/<name> makes names unique in a project. */
#include <string.h>

#include "principals.h"
#include "projects.h"
#include "service_accounts.h"
#include "uc/crypto.h"
#include "uc/json.h"

static const struct uc_json_field create_fields[] = {
    {"name", UC_JSON_STRING, true, 1, 63, UC_JSON_CHARS_NAME},
    {"project_id", UC_JSON_STRING, true, 1, 64, NULL},
    {"description", UC_JSON_STRING, false, 0, IAM_DESCRIPTION_MAX, NULL},
    {NULL},
};

static int new_record(struct iam_server *s, const json_t *body, char id[UC_ID_LEN], json_t **rec)
{
    if (uc_crypto_random_id("sa", id) < 0)
        return UC_ECRYPTO;
    json_t *r = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "name", uc_json_str(body, "name", ""),
                          "project_id", uc_json_str(body, "project_id", ""), "description",
                          uc_json_str(body, "description", ""));
    if (!r || iam_stamp(r, iam_now_ms(s), true) < 0) {
        json_decref(r);
        return UC_ENOMEM;
    }
    *rec = r;
    return 0;
}

/* Check the project at its revision, bump its generation, and add the
 * by-project copy. */
static int create_ops(const json_t *rec, uint64_t proj_rev, struct iam_ops *ops,
                      char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    const char *id = uc_json_str(rec, "id", ""), *proj = uc_json_str(rec, "project_id", "");
    int rc = iam_key(k, IAM_K_PROJECT, proj, NULL, err);
    if (rc == 0)
        rc = iam_ops_touch_parent(ops, k, proj_rev, proj, err);
    if (rc == 0 && (rc = iam_key(k, IAM_K_SA_BY_PROJECT, proj, id, err)) == 0)
        rc = iam_ops_put_json(ops, k, rec, UC_STORE_ABSENT);
    return rc;
}

static int check_create(struct iam_server *s, const struct uc_auth_claims *c, const json_t *body,
                        uint64_t *proj_rev, char err[UC_ERR_LEN])
{
    const char *proj = uc_json_str(body, "project_id", "");
    int rc = uc_json_validate(body, create_fields, err);
    if (rc == 0)
        rc = iam_id_check(proj, "proj", err);
    if (rc == 0)
        rc = iam_check_project(c, proj, UC_ROLE_ADMIN, "project", proj, err);
    if (rc == 0)
        rc = iam_projects_revision(s, proj, proj_rev, err);
    return rc;
}

int iam_service_accounts_create(struct iam_server *s, const struct uc_auth_claims *c,
                                const json_t *body, json_t **out, char err[UC_ERR_LEN])
{
    char id[UC_ID_LEN];
    struct iam_ops ops = {0};
    json_t *rec = NULL;
    uint64_t proj_rev = 0;
    int rc = check_create(s, c, body, &proj_rev, err);
    if (rc == 0)
        rc = new_record(s, body, id, &rec);
    if (rc == 0)
        rc = create_ops(rec, proj_rev, &ops, err);
    if (rc == 0)
        rc = iam_create_named(s->store, &iam_kind_sa, uc_json_str(rec, "project_id", ""), rec, &ops,
                              out, err);
    iam_ops_clear(&ops);
    json_decref(rec);
    return rc;
}

int iam_service_accounts_load(struct iam_server *s, const char *id, json_t **rec, uint64_t *rev,
                              char err[UC_ERR_LEN])
{
    return iam_load(s->store, &iam_kind_sa, id, rec, rev, err);
}

/* Load id and check the caller holds `need` in its project. */
static int load_checked(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                        enum uc_role need, json_t **rec, uint64_t *rev, char err[UC_ERR_LEN])
{
    json_t *r = NULL;
    int rc = iam_service_accounts_load(s, id, &r, rev, err);
    if (rc == 0)
        rc = iam_check_project(c, uc_json_str(r, "project_id", ""), need, "service account", id,
                               err);
    if (rc < 0) {
        json_decref(r);
        return rc;
    }
    *rec = r;
    return 0;
}

int iam_service_accounts_get(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                             json_t **out, char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = load_checked(s, c, id, UC_ROLE_READER, &rec, &rev, err);
    if (rc == 0 && !(*out = iam_record_view(rec, rev)))
        rc = UC_ENOMEM;
    json_decref(rec);
    return rc;
}

int iam_service_accounts_list(struct iam_server *s, const struct uc_auth_claims *c,
                              const char *project_id, const struct iam_page *pg, json_t **out,
                              char err[UC_ERR_LEN])
{
    char prefix[IAM_KEY_LEN];
    if (!project_id && c->system_admin)
        return iam_list(s->store, IAM_K_SA, &iam_kind_sa, pg, iam_map_record, NULL, out, err);
    if (!project_id && !c->project[0])
        return uc_err_set(err, UC_EFORBIDDEN,
                          "this token has no project: pass project_id or use a project token");
    const char *proj = project_id ? project_id : c->project;
    int rc = iam_id_check(proj, "proj", err);
    if (rc == 0)
        rc = iam_check_project(c, proj, UC_ROLE_READER, "project", proj, err);
    if (rc == 0)
        rc = iam_key(prefix, IAM_K_SA_BY_PROJECT, proj, "", err);
    if (rc < 0)
        return rc;
    return iam_list(s->store, prefix, &iam_kind_sa, pg, iam_map_record, NULL, out, err);
}

static int delete_ops(struct iam_server *s, const json_t *rec, uint64_t rev, struct iam_ops *ops,
                      char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    const char *id = uc_json_str(rec, "id", ""), *proj = uc_json_str(rec, "project_id", "");
    int rc = iam_principals_delete_ops(s, &iam_kind_sa, proj, rec, rev, ops, err);
    if (rc == 0 && (rc = iam_key(k, IAM_K_SA_BY_PROJECT, proj, id, err)) == 0)
        rc = iam_ops_del(ops, k, UC_STORE_ANY);
    return rc;
}

int iam_service_accounts_delete(struct iam_server *s, const struct uc_auth_claims *c,
                                const char *id, char err[UC_ERR_LEN])
{
    struct iam_ops ops = {0};
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = load_checked(s, c, id, UC_ROLE_ADMIN, &rec, &rev, err);
    if (rc == 0)
        rc = delete_ops(s, rec, rev, &ops, err);
    if (rc == 0)
        rc = iam_ops_commit(s->store, &ops, NULL, NULL, NULL, err);
    iam_ops_clear(&ops);
    json_decref(rec);
    return rc;
}
