/* users.h - human users: create, read, list, patch, delete (which removes
 * the user's role bindings and revokes its credentials in the same
 * transaction). Passwords are stored as scrypt hashes and never returned.
 * Every call checks the caller's claims itself. Thread-safe. Outputs are
 * new references the caller releases; inputs are borrowed. */
#ifndef IAM_USERS_H
#define IAM_USERS_H
#include <jansson.h>

#include "records.h"
#include "server.h"
#include "uc/auth.h"

#define IAM_DISPLAY_NAME_MAX 256

/* POST {name, password, display_name?}: system-admin. Errors:
 * UC_EFORBIDDEN, UC_EINVAL, UC_EEXIST (name taken), UC_ECRYPTO and the
 * store's. */
UC_MUSTCHECK int iam_users_create(struct iam_server *s, const struct uc_auth_claims *c,
                                  const json_t *body, json_t **out, char err[UC_ERR_LEN]);

/* GET by id: system-admin or the user itself. Errors: UC_EINVAL,
 * UC_EFORBIDDEN, UC_ENOENT and the store's. */
UC_MUSTCHECK int iam_users_get(struct iam_server *s, const struct uc_auth_claims *c, const char *id,
                               json_t **out, char err[UC_ERR_LEN]);

/* GET list: system-admin. Errors: UC_EFORBIDDEN, UC_EINVAL (page token). */
UC_MUSTCHECK int iam_users_list(struct iam_server *s, const struct uc_auth_claims *c,
                                const struct iam_page *pg, json_t **out, char err[UC_ERR_LEN]);

/* PATCH {display_name?, password?, disabled?, revision?}: system-admin; the
 * user may change its own display_name and password. Errors: UC_EINVAL,
 * UC_EFORBIDDEN, UC_ENOENT, UC_ECONFLICT (stale revision). */
UC_MUSTCHECK int iam_users_patch(struct iam_server *s, const struct uc_auth_claims *c,
                                 const char *id, const json_t *body, json_t **out,
                                 char err[UC_ERR_LEN]);

/* DELETE: system-admin. Errors: UC_EFORBIDDEN, UC_EINVAL, UC_ENOENT,
 * UC_ECONFLICT, UC_E2BIG (too many dependents for one transaction). */
UC_MUSTCHECK int iam_users_delete(struct iam_server *s, const struct uc_auth_claims *c,
                                  const char *id, char err[UC_ERR_LEN]);

/* The full record (with "_password_hash") of user `id` / of the user named
 * `name`: *rec new reference, *rev (may be NULL) its revision.
 * Errors: UC_EINVAL (malformed id), UC_ENOENT and the store's. */
UC_MUSTCHECK int iam_users_load(struct iam_server *s, const char *id, json_t **rec, uint64_t *rev,
                                char err[UC_ERR_LEN]);
UC_MUSTCHECK int iam_users_find(struct iam_server *s, const char *name, json_t **rec,
                                char err[UC_ERR_LEN]);

#endif /* IAM_USERS_H */
