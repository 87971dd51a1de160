/* credentials.c - access keys in the store: ak/<id> holds the record (the
 * secret sealed in "_sealed" while active), by-principal/ak/<principal>/<id>
 * lists a principal's keys. */
#include <string.h>

#include "credentials.h"
#include "principals.h"
#include "service_accounts.h"
#include "uc/alloc.h"
#include "uc/crypto.h"
#include "uc/json.h"

#define SECRET_BYTES 32
#define MAX_CREDS 1000 /* per principal */
#define BAD_CREDS "invalid credentials"

static const struct uc_json_field create_fields[] = {
    {"principal_id", UC_JSON_STRING, true, 1, 64, NULL},
    {"description", UC_JSON_STRING, false, 0, IAM_DESCRIPTION_MAX, NULL},
    {NULL},
};

/* May the caller manage `principal`'s credentials? System-admins always, a
 * user its own, an admin of a service account's project that account's.
 * Errors: UC_EFORBIDDEN, UC_ENOENT (a service account not visible),
 * UC_EINVAL. */
static int may_manage(struct iam_server *s, const struct uc_auth_claims *c, const char *principal,
                      char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    if (!iam_principals_is_id(principal))
        return uc_err_set(err, UC_EINVAL, "principal_id must look like user-<...> or sa-<...>");
    if (c->system_admin || strcmp(c->sub, principal) == 0)
        return 0;
    if (iam_id_is(principal, "user"))
        return uc_err_set(err, UC_EFORBIDDEN, "a user may only manage its own credentials");
    int rc = iam_service_accounts_load(s, principal, &rec, NULL, err);
    if (rc == 0)
        rc = iam_check_project(c, uc_json_str(rec, "project_id", ""), UC_ROLE_ADMIN,
                               "service account", principal, err);
    json_decref(rec);
    return rc;
}

/* A fresh secret (base64url of 32 random bytes) and its sealed form. */
static int new_secret(struct iam_server *s, const char *id, char **secret, char **sealed_b64)
{
    uint8_t raw[SECRET_BYTES], *sealed = NULL;
    size_t slen = 0;
    if (uc_crypto_random(raw, sizeof(raw)) < 0)
        return UC_ECRYPTO;
    *secret = uc_b64url_encode(raw, sizeof(raw));
    uc_crypto_wipe(raw, sizeof(raw));
    if (!*secret)
        return UC_ENOMEM;
    int rc =
        uc_crypto_seal(s->master_key, id, strlen(id), *secret, strlen(*secret), &sealed, &slen);
    if (rc == 0 && !(*sealed_b64 = uc_b64_encode(sealed, slen)))
        rc = UC_ENOMEM;
    uc_free(sealed);
    if (rc < 0) {
        uc_crypto_wipe(*secret, strlen(*secret));
        uc_free(*secret);
        *secret = NULL;
    }
    return rc;
}

static int new_record(struct iam_server *s, const json_t *body, const char *id, const char *sealed,
                      json_t **rec)
{
    json_t *r = json_pack("{s:s, s:s, s:s, s:s, s:n, s:s}", "id", id, "principal_id",
                          uc_json_str(body, "principal_id", ""), "description",
                          uc_json_str(body, "description", ""), "status", "active", "revoked_at",
                          "_sealed", sealed);
    if (!r || iam_stamp(r, iam_now_ms(s), true) < 0) {
        json_decref(r);
        return UC_ENOMEM;
    }
    *rec = r;
    return 0;
}

static int create_ops(const json_t *rec, const char *pkey, uint64_t prev, struct iam_ops *ops,
                      char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    const char *id = uc_json_str(rec, "id", ""), *principal = uc_json_str(rec, "principal_id", "");
    int rc = iam_ops_touch_parent(ops, pkey, prev, principal, err);
    if (rc == 0 && (rc = iam_key(k, IAM_K_CRED, id, NULL, err)) == 0)
        rc = iam_ops_put_json(ops, k, rec, UC_STORE_ABSENT);
    if (rc == 0 && (rc = iam_key(k, IAM_K_CRED_BY_PRINCIPAL, principal, id, err)) == 0)
        rc = iam_ops_put(ops, k, id, strlen(id), UC_STORE_ABSENT);
    return rc;
}

/* Store the record; *out is its view plus the secret. */
static int store_new(struct iam_server *s, const json_t *body, const char *id, const char *pkey,
                     uint64_t prev, json_t **out, char err[UC_ERR_LEN])
{
    char *secret = NULL, *sealed = NULL;
    struct iam_ops ops = {0};
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = new_secret(s, id, &secret, &sealed);
    if (rc == 0)
        rc = new_record(s, body, id, sealed, &rec);
    if (rc == 0)
        rc = create_ops(rec, pkey, prev, &ops, err);
    if (rc == 0)
        rc = iam_ops_commit(s->store, &ops, NULL, NULL, &rev, err);
    if (rc == 0 && !(*out = iam_record_view(rec, rev)))
        rc = UC_ENOMEM;
    if (rc == 0 && (rc = iam_set(*out, "secret", json_string(secret))) < 0) {
        json_decref(*out);
        *out = NULL;
    }
    if (secret)
        uc_crypto_wipe(secret, strlen(secret));
    uc_free(secret);
    uc_free(sealed);
    iam_ops_clear(&ops);
    json_decref(rec);
    return rc;
}

int iam_credentials_create(struct iam_server *s, const struct uc_auth_claims *c, const json_t *body,
                           json_t **out, char err[UC_ERR_LEN])
{
    char id[UC_ID_LEN], pkey[IAM_KEY_LEN];
    json_t *prec = NULL;
    uint64_t prev = 0;
    int rc = uc_json_validate(body, create_fields, err);
    const char *principal = uc_json_str(body, "principal_id", "");
    if (rc == 0)
        rc = may_manage(s, c, principal, err);
    if (rc == 0)
        rc = iam_principals_load(s, principal, &prec, &prev, pkey, err);
    json_decref(prec);
    if (rc == 0 && uc_crypto_random_id("ak", id) < 0)
        rc = UC_ECRYPTO;
    if (rc == 0)
        rc = store_new(s, body, id, pkey, prev, out, err);
    return rc;
}

/* Load credential id and check the caller may manage its principal. */
static int load_checked(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                        json_t **rec, uint64_t *rev, char err[UC_ERR_LEN])
{
    json_t *r = NULL;
    int rc = iam_load(s->store, &iam_kind_cred, id, &r, rev, err);
    if (rc == 0)
        rc = may_manage(s, c, uc_json_str(r, "principal_id", ""), err);
    if (rc == UC_ENOENT || rc == UC_EINVAL)
        rc = uc_err_set(err, UC_ENOENT, "credential %s not found", id);
    if (rc < 0) {
        json_decref(r);
        return rc;
    }
    *rec = r;
    return 0;
}

int iam_credentials_get(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                        json_t **out, char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = iam_id_check(id, "ak", err);
    if (rc == 0)
        rc = load_checked(s, c, id, &rec, &rev, err);
    if (rc == 0 && !(*out = iam_record_view(rec, rev)))
        rc = UC_ENOMEM;
    json_decref(rec);
    return rc;
}

int iam_credentials_list(struct iam_server *s, const struct uc_auth_claims *c,
                         const char *principal_id, const struct iam_page *pg, json_t **out,
                         char err[UC_ERR_LEN])
{
    char prefix[IAM_KEY_LEN];
    struct iam_index_map map = {s->store, IAM_K_CRED};
    if (!principal_id && c->system_admin)
        return iam_list(s->store, IAM_K_CRED, &iam_kind_cred, pg, iam_map_record, NULL, out, err);
    const char *principal = principal_id ? principal_id : c->sub;
    int rc = may_manage(s, c, principal, err);
    if (rc == 0)
        rc = iam_key(prefix, IAM_K_CRED_BY_PRINCIPAL, principal, "", err);
    if (rc < 0)
        return rc;
    return iam_list(s->store, prefix, &iam_kind_cred, pg, iam_map_index, &map, out, err);
}

/* Mark rec revoked now and drop its sealed secret. */
static int revoke_fields(struct iam_server *s, json_t *rec)
{
    char ts[32];
    uc_json_time(iam_now_ms(s), ts);
    /* A record without a sealed secret is fine: nothing to drop. */
    (void)json_object_del(rec, "_sealed");
    int rc = iam_set(rec, "status", json_string("revoked"));
    if (rc == 0)
        rc = iam_set(rec, "revoked_at", json_string(ts));
    if (rc == 0)
        rc = iam_stamp(rec, iam_now_ms(s), false);
    return rc;
}

static bool is_active(const json_t *rec)
{
    return strcmp(uc_json_str(rec, "status", ""), "active") == 0;
}

int iam_credentials_revoke(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                           char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = iam_id_check(id, "ak", err);
    if (rc == 0)
        rc = load_checked(s, c, id, &rec, &rev, err);
    /* Revoking twice is not an error: an inactive key is left as it is. */
    if (rc == 0 && is_active(rec) && (rc = revoke_fields(s, rec)) == 0)
        rc = iam_record_update(s->store, &iam_kind_cred, id, rec, &rev, err);
    json_decref(rec);
    return rc;
}

/* 0 when the sealed secret of rec opens to `secret`. */
static int secret_matches(struct iam_server *s, const json_t *rec, const char *id,
                          const char *secret)
{
    const char *b64 = uc_json_str(rec, "_sealed", NULL);
    uint8_t *sealed = NULL, *plain = NULL;
    size_t slen = 0, plen = 0;
    if (!b64 || uc_b64_decode(b64, strlen(b64), &sealed, &slen) < 0)
        return UC_EUNAUTH;
    int rc = uc_crypto_open(s->master_key, id, strlen(id), sealed, slen, &plain, &plen);
    uc_free(sealed);
    if (rc < 0)
        return rc;
    rc = strlen((const char *)plain) == plen && uc_crypto_streq((const char *)plain, secret)
             ? 0
             : UC_EUNAUTH;
    uc_crypto_wipe(plain, plen);
    uc_free(plain);
    return rc;
}

int iam_credentials_check(struct iam_server *s, const char *id, const char *secret,
                          char principal[IAM_PRINCIPAL_LEN], char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    int rc =
        iam_id_is(id, "ak") ? iam_load(s->store, &iam_kind_cred, id, &rec, NULL, err) : UC_ENOENT;
    if (rc == UC_ENOENT)
        return uc_err_set(err, UC_EUNAUTH, BAD_CREDS);
    if (rc < 0)
        return rc;
    rc = is_active(rec) ? secret_matches(s, rec, id, secret) : UC_EUNAUTH;
    if (rc == 0)
        snprintf(principal, IAM_PRINCIPAL_LEN, "%s", uc_json_str(rec, "principal_id", ""));
    else if (rc == UC_EUNAUTH)
        uc_err_set(err, UC_EUNAUTH, BAD_CREDS);
    else
        uc_err_set(err, rc, "cannot open the stored secret: %s", uc_strerror(rc));
    json_decref(rec);
    return rc;
}

static int cascade_one(struct iam_server *s, const char *id, struct iam_ops *ops,
                       char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = iam_load(s->store, &iam_kind_cred, id, &rec, &rev, err);
    if (rc == UC_ENOENT || rc == UC_EINVAL)
        return 0; /* an index entry without its record: nothing to revoke */
    if (rc == 0 && is_active(rec)) {
        rc = revoke_fields(s, rec);
        if (rc == 0 && (rc = iam_key(k, IAM_K_CRED, id, NULL, err)) == 0)
            rc = iam_ops_put_json(ops, k, rec, rev);
    }
    json_decref(rec);
    return rc;
}

int iam_credentials_cascade(struct iam_server *s, const char *principal, struct iam_ops *ops,
                            char err[UC_ERR_LEN])
{
    char prefix[IAM_KEY_LEN];
    struct uc_store_item *items = NULL;
    size_t n = 0;
    int rc = iam_key(prefix, IAM_K_CRED_BY_PRINCIPAL, principal, "", err);
    if (rc == 0)
        rc = iam_scan_all(s->store, prefix, MAX_CREDS, &items, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = cascade_one(s, (const char *)items[i].val, ops, err);
    uc_store_items_free(items, n);
    return rc;
}
