/* principals.c - one lookup over users and service accounts, and what
 * deleting either takes with it. */
#include "principals.h"
#include "bindings.h"
#include "credentials.h"
#include "uc/json.h"

bool iam_principals_is_id(const char *id) { return iam_id_is(id, "user") || iam_id_is(id, "sa"); }

int iam_principals_load(struct iam_server *s, const char *id, json_t **rec, uint64_t *rev,
                        char key[IAM_KEY_LEN], char err[UC_ERR_LEN])
{
    bool user = iam_id_is(id, "user");
    if (!user && !iam_id_is(id, "sa"))
        return uc_err_set(err, UC_EINVAL,
                          "principal_id must look like user-<20 lowercase letters/digits> or "
                          "sa-<20 lowercase letters/digits>");
    const struct iam_kind *k = user ? &iam_kind_user : &iam_kind_sa;
    int rc = iam_load(s->store, k, id, rec, rev, err);
    if (rc == 0 && key && (rc = iam_key(key, k->key, id, NULL, err)) < 0) {
        json_decref(*rec);
        *rec = NULL;
    }
    return rc;
}

int iam_principals_delete_ops(struct iam_server *s, const struct iam_kind *k, const char *scope,
                              const json_t *rec, uint64_t rev, struct iam_ops *ops,
                              char err[UC_ERR_LEN])
{
    const char *id = uc_json_str(rec, "id", "");
    /* The generation is read first: a binding or credential created after
     * this point changes it, and the transaction's check then fails. */
    int rc = iam_ops_del_named(s->store, k, scope, rec, rev, ops, err);
    if (rc == 0)
        rc = iam_bindings_cascade(s, id, ops, err);
    if (rc == 0)
        rc = iam_credentials_cascade(s, id, ops, err);
    return rc;
}
