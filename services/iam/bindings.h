/* bindings.h - role bindings: one principal, one role, in one project (or
 * the global system-admin role). Stored at rb/<id> with two index copies
 * (by principal, which also makes "one binding per project" unique, and by
 * project). Bindings never change after creation. Every call checks the
 * caller's claims itself. Thread-safe. Outputs are new references. */
#ifndef IAM_BINDINGS_H
#define IAM_BINDINGS_H
#include <jansson.h>
#include <stdbool.h>

#include "records.h"
#include "server.h"
#include "uc/auth.h"

/* POST {principal_id, project_id?, role}: admin of the project;
 * system-admin bindings only by a system-admin. Errors: UC_EINVAL,
 * UC_EFORBIDDEN, UC_ENOENT (principal or project), UC_EEXIST (the principal
 * already has a binding there), UC_ECONFLICT and the store's. */
UC_MUSTCHECK int iam_bindings_create(struct iam_server *s, const struct uc_auth_claims *c,
                                     const json_t *body, json_t **out, char err[UC_ERR_LEN]);

/* GET list, filtered by project_id and/or principal_id (either may be
 * NULL): readers see their own project's bindings; system-admins all.
 * Errors: UC_EINVAL, UC_EFORBIDDEN, UC_ENOENT (another project). */
UC_MUSTCHECK int iam_bindings_list(struct iam_server *s, const struct uc_auth_claims *c,
                                   const char *project_id, const char *principal_id,
                                   const struct iam_page *pg, json_t **out, char err[UC_ERR_LEN]);

/* DELETE: admin of its project (system-admin for system bindings).
 * Errors: UC_EINVAL, UC_EFORBIDDEN, UC_ENOENT, UC_ECONFLICT. */
UC_MUSTCHECK int iam_bindings_delete(struct iam_server *s, const struct uc_auth_claims *c,
                                     const char *id, char err[UC_ERR_LEN]);

/* What a principal holds, for token issuance. */
struct iam_grants {
    bool system_admin;
    size_t nprojects;             /* project bindings */
    char only_project[UC_ID_LEN]; /* the project when nprojects == 1 */
    enum uc_role only_role;
};

/* Fill *g for `principal`. Errors: UC_E2BIG (absurdly many bindings) and
 * the store's. */
UC_MUSTCHECK int iam_bindings_grants(struct iam_server *s, const char *principal,
                                     struct iam_grants *g, char err[UC_ERR_LEN]);

/* The role of `principal` in `project` into *role; *found false when it
 * has none. Errors: the store's. */
UC_MUSTCHECK int iam_bindings_role(struct iam_server *s, const char *principal, const char *project,
                                   bool *found, enum uc_role *role, char err[UC_ERR_LEN]);

/* Append to ops the deletes of every binding of `principal`.
 * Errors: UC_E2BIG, UC_ENOMEM and the store's. */
UC_MUSTCHECK int iam_bindings_cascade(struct iam_server *s, const char *principal,
                                      struct iam_ops *ops, char err[UC_ERR_LEN]);

#endif /* IAM_BINDINGS_H */
