/* users.c - users in the store: user/<id> holds the record (with the
 * private "_password_hash"), name/user/<name> makes names unique and
 * gen/<id> orders child creation against deletion. */
#include <string.h>

#include "principals.h"
#include "users.h"
#include "uc/alloc.h"
#include "uc/crypto.h"
#include "uc/json.h"

static const struct uc_json_field create_fields[] = {
    {"name", UC_JSON_STRING, true, 1, 63, UC_JSON_CHARS_NAME},
    {"password", UC_JSON_STRING, true, 8, 256, NULL},
    {"display_name", UC_JSON_STRING, false, 0, IAM_DISPLAY_NAME_MAX, NULL},
    {NULL},
};

static const struct uc_json_field patch_fields[] = {
    {"display_name", UC_JSON_STRING, false, 0, IAM_DISPLAY_NAME_MAX, NULL},
    {"password", UC_JSON_STRING, false, 8, 256, NULL},
    {"disabled", UC_JSON_BOOL, false, 0, 0, NULL},
    {"revision", UC_JSON_INT, false, 1, INT64_MAX, NULL},
    {NULL},
};

/* rec["_password_hash"] = scrypt hash of password. */
static int set_password(struct iam_server *s, json_t *rec, const char *password,
                        char err[UC_ERR_LEN])
{
    char *hash = NULL;
    int rc = uc_crypto_password_hash(password, s->scrypt_log_n, &hash);
    if (rc < 0)
        return uc_err_set(err, rc, "cannot hash the password: %s", uc_strerror(rc));
    rc = iam_set(rec, "_password_hash", json_string(hash));
    uc_free(hash);
    return rc;
}

static int new_record(struct iam_server *s, const json_t *body, char id[UC_ID_LEN], json_t **rec,
                      char err[UC_ERR_LEN])
{
    if (uc_crypto_random_id("user", id) < 0)
        return UC_ECRYPTO;
    json_t *r = json_pack("{s:s, s:s, s:s, s:b}", "id", id, "name", uc_json_str(body, "name", ""),
                          "display_name", uc_json_str(body, "display_name", ""), "disabled", 0);
    int rc = r ? iam_stamp(r, iam_now_ms(s), true) : UC_ENOMEM;
    if (rc == 0)
        rc = set_password(s, r, uc_json_str(body, "password", ""), err);
    if (rc < 0) {
        json_decref(r);
        return rc;
    }
    *rec = r;
    return 0;
}

int iam_users_create(struct iam_server *s, const struct uc_auth_claims *c, const json_t *body,
                     json_t **out, char err[UC_ERR_LEN])
{
    char id[UC_ID_LEN];
    json_t *rec = NULL;
    int rc = uc_auth_require(c, UC_ROLE_SYSTEM_ADMIN, err);
    if (rc == 0)
        rc = uc_json_validate(body, create_fields, err);
    if (rc == 0)
        rc = new_record(s, body, id, &rec, err);
    if (rc == 0)
        rc = iam_create_named(s->store, &iam_kind_user, NULL, rec, NULL, out, err);
    json_decref(rec);
    return rc;
}

int iam_users_load(struct iam_server *s, const char *id, json_t **rec, uint64_t *rev,
                   char err[UC_ERR_LEN])
{
    return iam_load(s->store, &iam_kind_user, id, rec, rev, err);
}

int iam_users_find(struct iam_server *s, const char *name, json_t **rec, char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    struct uc_store_item it = {0};
    int rc = iam_key(k, IAM_K_USER_NAME, name, NULL, err);
    if (rc == 0)
        rc = uc_store_get(s->store, k, &it, err);
    if (rc == 0)
        rc = iam_users_load(s, (const char *)it.val, rec, NULL, err);
    uc_store_item_clear(&it);
    return rc;
}

/* System-admins, or the user itself. */
static int check_self(const struct uc_auth_claims *c, const char *id, char err[UC_ERR_LEN])
{
    if (c->system_admin || strcmp(c->sub, id) == 0)
        return 0;
    return uc_err_set(err, UC_EFORBIDDEN, "only a system-admin or the user itself may do this");
}

int iam_users_get(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                  json_t **out, char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = iam_id_check(id, "user", err);
    if (rc == 0)
        rc = check_self(c, id, err);
    if (rc == 0)
        rc = iam_users_load(s, id, &rec, &rev, err);
    if (rc == 0 && !(*out = iam_record_view(rec, rev)))
        rc = UC_ENOMEM;
    json_decref(rec);
    return rc;
}

int iam_users_list(struct iam_server *s, const struct uc_auth_claims *c, const struct iam_page *pg,
                   json_t **out, char err[UC_ERR_LEN])
{
    int rc = uc_auth_require(c, UC_ROLE_SYSTEM_ADMIN, err);
    if (rc < 0)
        return rc;
    return iam_list(s->store, IAM_K_USER, &iam_kind_user, pg, iam_map_record, NULL, out, err);
}

static int check_patch_rights(const struct uc_auth_claims *c, const char *id, const json_t *body,
                              char err[UC_ERR_LEN])
{
    int rc = check_self(c, id, err);
    if (rc == 0 && !c->system_admin && json_is_boolean(json_object_get(body, "disabled")))
        rc = uc_err_set(err, UC_EFORBIDDEN, "only a system-admin may enable or disable a user");
    return rc;
}

/* Apply the body's changes to rec; *changed says whether any field was set. */
static int apply_fields(struct iam_server *s, json_t *rec, const json_t *body, bool *changed,
                        char err[UC_ERR_LEN])
{
    const char *dn = uc_json_str(body, "display_name", NULL);
    const char *pw = uc_json_str(body, "password", NULL);
    const json_t *dis = json_object_get(body, "disabled");
    int rc = 0;
    *changed = dn || pw || json_is_boolean(dis);
    if (dn)
        rc = iam_set(rec, "display_name", json_string(dn));
    if (rc == 0 && json_is_boolean(dis))
        rc = iam_set(rec, "disabled", json_boolean(json_is_true(dis)));
    if (rc == 0 && pw)
        rc = set_password(s, rec, pw, err);
    return rc;
}

static int apply_patch(struct iam_server *s, const char *id, json_t *rec, uint64_t *rev,
                       const json_t *body, char err[UC_ERR_LEN])
{
    bool changed = false;
    int rc = iam_check_revision(body, *rev, err);
    if (rc == 0)
        rc = apply_fields(s, rec, body, &changed, err);
    if (rc < 0 || !changed)
        return rc;
    rc = iam_stamp(rec, iam_now_ms(s), false);
    if (rc == 0)
        rc = iam_record_update(s->store, &iam_kind_user, id, rec, rev, err);
    return rc;
}

int iam_users_patch(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                    const json_t *body, json_t **out, char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = iam_id_check(id, "user", err);
    if (rc == 0)
        rc = uc_json_validate(body, patch_fields, err);
    if (rc == 0)
        rc = check_patch_rights(c, id, body, err);
    if (rc == 0)
        rc = iam_users_load(s, id, &rec, &rev, err);
    if (rc == 0)
        rc = apply_patch(s, id, rec, &rev, body, err);
    if (rc == 0 && !(*out = iam_record_view(rec, rev)))
        rc = UC_ENOMEM;
    json_decref(rec);
    return rc;
}

int iam_users_delete(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                     char err[UC_ERR_LEN])
{
    struct iam_ops ops = {0};
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = uc_auth_require(c, UC_ROLE_SYSTEM_ADMIN, err);
    if (rc == 0)
        rc = iam_users_load(s, id, &rec, &rev, err);
    if (rc == 0)
        rc = iam_principals_delete_ops(s, &iam_kind_user, NULL, rec, rev, &ops, err);
    if (rc == 0)
        rc = iam_ops_commit(s->store, &ops, NULL, NULL, NULL, err);
    iam_ops_clear(&ops);
    json_decref(rec);
    return rc;
}
