/* principals.h - the two kinds of principal (users and service accounts)
 * behind one lookup, for modules that accept either id, and the delete
 * both share. Thread-safe. */
#ifndef IAM_PRINCIPALS_H
#define IAM_PRINCIPALS_H
#include <jansson.h>
#include <stdbool.h>

#include "records.h"
#include "server.h"

/* Load the record of principal `id` ("user-..." or "sa-..."): *rec new
 * reference, *rev (may be NULL) its revision, key (may be NULL) its storage
 * key. Errors: UC_EINVAL (neither kind of id), UC_ENOENT and the store's. */
UC_MUSTCHECK int iam_principals_load(struct iam_server *s, const char *id, json_t **rec,
                                     uint64_t *rev, char key[IAM_KEY_LEN], char err[UC_ERR_LEN]);

/* True for ids that look like a user or service account id. */
bool iam_principals_is_id(const char *id);

/* Append to ops the deletion of principal rec (borrowed; kind k, name
 * unique within `scope`: see iam_ops_del_named) at revision rev, with its
 * role bindings, and the revocation of its credentials. On failure ops may
 * hold some of them. Errors: UC_E2BIG (too many dependents), UC_EINVAL,
 * UC_ENOMEM and the store's. */
UC_MUSTCHECK int iam_principals_delete_ops(struct iam_server *s, const struct iam_kind *k,
                                           const char *scope, const json_t *rec, uint64_t rev,
                                           struct iam_ops *ops, char err[UC_ERR_LEN]);

#endif /* IAM_PRINCIPALS_H */
