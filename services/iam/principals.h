/* principals.h - the two kinds of principal (users and service accounts)
 * behind one lookup, for modules that accept either id. Thread-safe. */
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

#endif /* IAM_PRINCIPALS_H */
