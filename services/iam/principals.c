/* principals.c - one lookup over users and service accounts. */
#include "principals.h"
#include "service_accounts.h"
#include "users.h"

bool iam_principals_is_id(const char *id) { return iam_id_is(id, "user") || iam_id_is(id, "sa"); }

int iam_principals_load(struct iam_server *s, const char *id, json_t **rec, uint64_t *rev,
                        char key[IAM_KEY_LEN], char err[UC_ERR_LEN])
{
    bool user = iam_id_is(id, "user");
    if (!user && !iam_id_is(id, "sa"))
        return uc_err_set(err, UC_EINVAL,
                          "principal_id must look like user-<20 lowercase letters/digits> or "
                          "sa-<20 lowercase letters/digits>");
    int rc = user ? iam_users_load(s, id, rec, rev, err)
                  : iam_service_accounts_load(s, id, rec, rev, err);
    if (rc == 0 && key && (rc = iam_key(key, user ? IAM_K_USER : IAM_K_SA, id, NULL, err)) < 0) {
        json_decref(*rec);
        *rec = NULL;
    }
    return rc;
}
