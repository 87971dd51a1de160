/* projects.h - projects (tenants): create, read, list, patch, delete, with
 * unique names and the rule that a project with role bindings or service
 * accounts cannot be deleted. Every call takes the caller's claims and
 * checks them itself. Thread-safe. Outputs are new references the caller
 * releases; inputs are borrowed. */
#ifndef IAM_PROJECTS_H
#define IAM_PROJECTS_H
#include <jansson.h>

#include "records.h"
#include "server.h"
#include "uc/auth.h"

#define IAM_CHARS_PROJECT "abcdefghijklmnopqrstuvwxyz0123456789-"

/* POST {name, description?}: system-admin. Errors: UC_EFORBIDDEN,
 * UC_EINVAL (body), UC_EEXIST (name taken), UC_ECONFLICT and the store's. */
UC_MUSTCHECK int iam_projects_create(struct iam_server *s, const struct uc_auth_claims *c,
                                     const json_t *body, json_t **out, char err[UC_ERR_LEN]);

/* GET by id: system-admin or a token of that project. Errors: UC_EINVAL
 * (malformed id), UC_ENOENT (missing or another project's) and the store's. */
UC_MUSTCHECK int iam_projects_get(struct iam_server *s, const struct uc_auth_claims *c,
                                  const char *id, json_t **out, char err[UC_ERR_LEN]);

/* GET list: all for system-admins, else the token's own project.
 * Errors: UC_EINVAL (page token) and the store's. */
UC_MUSTCHECK int iam_projects_list(struct iam_server *s, const struct uc_auth_claims *c,
                                   const struct iam_page *pg, json_t **out, char err[UC_ERR_LEN]);

/* PATCH {description?, revision?}: system-admin or admin of the project.
 * Errors: UC_EINVAL, UC_ENOENT, UC_EFORBIDDEN, UC_ECONFLICT (stale). */
UC_MUSTCHECK int iam_projects_patch(struct iam_server *s, const struct uc_auth_claims *c,
                                    const char *id, const json_t *body, json_t **out,
                                    char err[UC_ERR_LEN]);

/* DELETE: system-admin. Errors: UC_EFORBIDDEN, UC_EINVAL, UC_ENOENT,
 * UC_EBUSY (role bindings or service accounts remain), UC_ECONFLICT. */
UC_MUSTCHECK int iam_projects_delete(struct iam_server *s, const struct uc_auth_claims *c,
                                     const char *id, char err[UC_ERR_LEN]);

/* Revision of project `id` (for checks in other modules' transactions).
 * Errors: UC_EINVAL (malformed id), UC_ENOENT ("project ... not found"). */
UC_MUSTCHECK int iam_projects_revision(struct iam_server *s, const char *id, uint64_t *rev,
                                       char err[UC_ERR_LEN]);

#endif /* IAM_PROJECTS_H */
