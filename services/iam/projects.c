/* projects.c - projects in the store: proj/<id> holds the record,
 * name/proj/<name> makes names unique, gen/<id> orders child creation
 * against deletion. */
#include <string.h>

#include "projects.h"
#include "uc/crypto.h"
#include "uc/json.h"

static const struct uc_json_field create_fields[] = {
    {"name", UC_JSON_STRING, true, 1, 63, IAM_CHARS_PROJECT},
    {"description", UC_JSON_STRING, false, 0, IAM_DESCRIPTION_MAX, NULL},
    {NULL},
};

static const struct uc_json_field patch_fields[] = {
    {"description", UC_JSON_STRING, false, 0, IAM_DESCRIPTION_MAX, NULL},
    {"revision", UC_JSON_INT, false, 1, INT64_MAX, NULL},
    {NULL},
};

static int new_record(struct iam_server *s, const json_t *body, char id[UC_ID_LEN], json_t **rec)
{
    if (uc_crypto_random_id("proj", id) < 0)
        return UC_ECRYPTO;
    json_t *r = json_pack("{s:s, s:s, s:s}", "id", id, "name", uc_json_str(body, "name", ""),
                          "description", uc_json_str(body, "description", ""));
    if (!r || iam_stamp(r, iam_now_ms(s), true) < 0) {
        json_decref(r);
        return UC_ENOMEM;
    }
    *rec = r;
    return 0;
}

int iam_projects_create(struct iam_server *s, const struct uc_auth_claims *c, const json_t *body,
                        json_t **out, char err[UC_ERR_LEN])
{
    char id[UC_ID_LEN];
    json_t *rec = NULL;
    int rc = uc_auth_require(c, UC_ROLE_SYSTEM_ADMIN, err);
    if (rc == 0)
        rc = uc_json_validate(body, create_fields, err);
    if (rc == 0)
        rc = new_record(s, body, id, &rec);
    if (rc == 0)
        rc = iam_create_named(s->store, &iam_kind_project, NULL, rec, NULL, out, err);
    json_decref(rec);
    return rc;
}

int iam_projects_revision(struct iam_server *s, const char *id, uint64_t *rev, char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    int rc = iam_load(s->store, &iam_kind_project, id, &rec, rev, err);
    json_decref(rec);
    return rc;
}

int iam_projects_get(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                     json_t **out, char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = iam_id_check(id, "proj", err);
    if (rc == 0)
        rc = iam_check_project(c, id, UC_ROLE_ANY, "project", id, err);
    if (rc == 0)
        rc = iam_load(s->store, &iam_kind_project, id, &rec, &rev, err);
    if (rc == 0 && !(*out = iam_record_view(rec, rev)))
        rc = UC_ENOMEM;
    json_decref(rec);
    return rc;
}

/* A non-admin's list: its token's project, when it has one. */
static int own_list(struct iam_server *s, const struct uc_auth_claims *c, json_t **out,
                    char err[UC_ERR_LEN])
{
    json_t *items = json_array(), *view = NULL;
    int rc = items ? 0 : UC_ENOMEM;
    if (rc == 0 && c->project[0]) {
        rc = iam_projects_get(s, c, c->project, &view, err);
        if (rc == UC_ENOENT || rc == UC_EINVAL)
            rc = 0; /* the project is gone (or the token odd): an empty list */
        else if (rc == 0 && json_array_append_new(items, view) != 0)
            rc = UC_ENOMEM;
    }
    if (rc < 0) {
        json_decref(items);
        return rc;
    }
    return iam_wrap_items(items, out);
}

int iam_projects_list(struct iam_server *s, const struct uc_auth_claims *c,
                      const struct iam_page *pg, json_t **out, char err[UC_ERR_LEN])
{
    if (c->system_admin)
        return iam_list(s->store, IAM_K_PROJECT, &iam_kind_project, pg, iam_map_record, NULL, out,
                        err);
    int rc = iam_page_check(pg, &iam_kind_project, err);
    return rc < 0 ? rc : own_list(s, c, out, err);
}

static int apply_patch(struct iam_server *s, const char *id, json_t *rec, uint64_t *rev,
                       const json_t *body, char err[UC_ERR_LEN])
{
    const char *desc = uc_json_str(body, "description", NULL);
    int rc = iam_check_revision(body, *rev, err);
    if (rc < 0 || !desc)
        return rc; /* nothing to change: answer the record as it is */
    rc = iam_set(rec, "description", json_string(desc));
    if (rc == 0)
        rc = iam_stamp(rec, iam_now_ms(s), false);
    if (rc == 0)
        rc = iam_record_update(s->store, &iam_kind_project, id, rec, rev, err);
    return rc;
}

int iam_projects_patch(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                       const json_t *body, json_t **out, char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = iam_id_check(id, "proj", err);
    if (rc == 0)
        rc = uc_json_validate(body, patch_fields, err);
    if (rc == 0)
        rc = iam_check_project(c, id, UC_ROLE_ADMIN, "project", id, err);
    if (rc == 0)
        rc = iam_load(s->store, &iam_kind_project, id, &rec, &rev, err);
    if (rc == 0)
        rc = apply_patch(s, id, rec, &rev, body, err);
    if (rc == 0 && !(*out = iam_record_view(rec, rev)))
        rc = UC_ENOMEM;
    json_decref(rec);
    return rc;
}

/* UC_EBUSY while role bindings or service accounts refer to the project. */
static int check_empty(struct iam_server *s, const char *id, char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    bool used = false;
    int rc = iam_key(k, IAM_K_RB_BY_PROJECT, id, "", err);
    if (rc == 0)
        rc = iam_prefix_used(s->store, k, &used, err);
    if (rc == 0 && used)
        return uc_err_set(err, UC_EBUSY, "project %s still has role bindings: delete them first",
                          id);
    if (rc == 0)
        rc = iam_key(k, IAM_K_SA_BY_PROJECT, id, "", err);
    if (rc == 0)
        rc = iam_prefix_used(s->store, k, &used, err);
    if (rc == 0 && used)
        return uc_err_set(err, UC_EBUSY, "project %s still has service accounts: delete them first",
                          id);
    return rc;
}

int iam_projects_delete(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                        char err[UC_ERR_LEN])
{
    struct iam_ops ops = {0};
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = uc_auth_require(c, UC_ROLE_SYSTEM_ADMIN, err);
    if (rc == 0)
        rc = iam_load(s->store, &iam_kind_project, id, &rec, &rev, err);
    /* The deletes read the generation before check_empty scans for children. */
    if (rc == 0)
        rc = iam_ops_del_named(s->store, &iam_kind_project, NULL, rec, rev, &ops, err);
    if (rc == 0)
        rc = check_empty(s, id, err);
    if (rc == 0)
        rc = iam_ops_commit(s->store, &ops, NULL, NULL, NULL, err);
    iam_ops_clear(&ops);
    json_decref(rec);
    return rc;
}
