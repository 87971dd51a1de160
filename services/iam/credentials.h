/* credentials.h - access keys: an id (ak-...) and a random secret, shown
 * once; the secret is stored sealed with AES-256-GCM under the master key
 * (AAD = the key id). Revoking keeps the record (status "revoked") and
 * drops the sealed secret. Every call checks the caller's claims itself.
 * Thread-safe. Outputs are new references the caller releases. */
#ifndef IAM_CREDENTIALS_H
#define IAM_CREDENTIALS_H
#include <jansson.h>

#include "records.h"
#include "server.h"
#include "uc/auth.h"

#define IAM_PRINCIPAL_LEN UC_ID_LEN

/* POST {principal_id, description?}: a user for itself, an admin of a
 * service account's project, or a system-admin. *out includes "secret".
 * Errors: UC_EINVAL, UC_EFORBIDDEN, UC_ENOENT, UC_ECRYPTO and the store's. */
UC_MUSTCHECK int iam_credentials_create(struct iam_server *s, const struct uc_auth_claims *c,
                                        const json_t *body, json_t **out, char err[UC_ERR_LEN]);

/* GET by id (never the secret). Errors: UC_EINVAL, UC_EFORBIDDEN, UC_ENOENT. */
UC_MUSTCHECK int iam_credentials_get(struct iam_server *s, const struct uc_auth_claims *c,
                                     const char *id, json_t **out, char err[UC_ERR_LEN]);

/* GET list for `principal_id` (NULL: the caller's own; system-admins see
 * all). Errors: UC_EINVAL, UC_EFORBIDDEN, UC_ENOENT. */
UC_MUSTCHECK int iam_credentials_list(struct iam_server *s, const struct uc_auth_claims *c,
                                      const char *principal_id, const struct iam_page *pg,
                                      json_t **out, char err[UC_ERR_LEN]);

/* DELETE: revoke at once. Errors: UC_EINVAL, UC_EFORBIDDEN, UC_ENOENT,
 * UC_ECONFLICT. */
UC_MUSTCHECK int iam_credentials_revoke(struct iam_server *s, const struct uc_auth_claims *c,
                                        const char *id, char err[UC_ERR_LEN]);

/* Check an access key grant: 0 and the owner's id in principal when `id`
 * is an active credential whose secret is `secret`.
 * Errors: UC_EUNAUTH (unknown, revoked or wrong: one message), and the
 * store's. */
UC_MUSTCHECK int iam_credentials_check(struct iam_server *s, const char *id, const char *secret,
                                       char principal[IAM_PRINCIPAL_LEN], char err[UC_ERR_LEN]);

/* Append to ops the revocation of every active credential of `principal`.
 * Errors: UC_E2BIG, UC_ENOMEM and the store's. */
UC_MUSTCHECK int iam_credentials_cascade(struct iam_server *s, const char *principal,
                                         struct iam_ops *ops, char err[UC_ERR_LEN]);

#endif /* IAM_CREDENTIALS_H */
