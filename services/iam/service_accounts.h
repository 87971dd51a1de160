/* service_accounts.h - service accounts: non-human principals that belong
 * to one project (names unique within it) and log in with access keys.
 * Deleting one removes its role bindings and revokes its credentials in
 * the same transaction. Every call checks the caller's claims itself.
 * Thread-safe. Outputs are new references the caller releases. */
#ifndef IAM_SERVICE_ACCOUNTS_H
#define IAM_SERVICE_ACCOUNTS_H
#include <jansson.h>

#include "records.h"
#include "server.h"
#include "uc/auth.h"

/* POST {name, project_id, description?}: admin of that project. Errors:
 * UC_EINVAL, UC_EFORBIDDEN, UC_ENOENT (project), UC_EEXIST (name taken in
 * the project), UC_ECONFLICT and the store's. */
UC_MUSTCHECK int iam_service_accounts_create(struct iam_server *s, const struct uc_auth_claims *c,
                                             const json_t *body, json_t **out,
                                             char err[UC_ERR_LEN]);

/* GET by id: reader of its project. Errors: UC_EINVAL, UC_EFORBIDDEN,
 * UC_ENOENT (missing or another project's). */
UC_MUSTCHECK int iam_service_accounts_get(struct iam_server *s, const struct uc_auth_claims *c,
                                          const char *id, json_t **out, char err[UC_ERR_LEN]);

/* GET list: `project_id` (may be NULL: the token's project; all for
 * system-admins). Errors: UC_EINVAL, UC_EFORBIDDEN, UC_ENOENT. */
UC_MUSTCHECK int iam_service_accounts_list(struct iam_server *s, const struct uc_auth_claims *c,
                                           const char *project_id, const struct iam_page *pg,
                                           json_t **out, char err[UC_ERR_LEN]);

/* DELETE: admin of its project. Errors: UC_EINVAL, UC_EFORBIDDEN,
 * UC_ENOENT, UC_ECONFLICT, UC_E2BIG (too many dependents). */
UC_MUSTCHECK int iam_service_accounts_delete(struct iam_server *s, const struct uc_auth_claims *c,
                                             const char *id, char err[UC_ERR_LEN]);

/* The record of service account `id`: *rec new reference, *rev (may be
 * NULL) its revision. Errors: UC_EINVAL (malformed id), UC_ENOENT. */
UC_MUSTCHECK int iam_service_accounts_load(struct iam_server *s, const char *id, json_t **rec,
                                           uint64_t *rev, char err[UC_ERR_LEN]);

#endif /* IAM_SERVICE_ACCOUNTS_H */
