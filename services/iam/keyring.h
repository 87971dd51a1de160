/* keyring.h - IAM's token signing keys: exactly one `active` key signs new
 * tokens, `verifying` keys still verify old ones, `retired` keys do
 * neither. Records live in the store under key/<kid>; the active key's
 * private half is stored sealed (AES-256-GCM under the master key, AAD =
 * kid). An in-memory copy of the usable keys is guarded by a rwlock and
 * rebuilt after every write, so the keyring is thread-safe. */
#ifndef IAM_KEYRING_H
#define IAM_KEYRING_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "records.h"
#include "uc/clock.h"
#include "uc/crypto.h"
#include "uc/err.h"
#include "uc/store.h"

#define IAM_KID_LEN 32 /* "k-" + 16 hex digits + NUL fits */

struct iam_keyring;

/* The kid of a key: "k-" + the first 16 hex digits of SHA-256 of its raw
 * public key. Errors: UC_ECRYPTO. */
UC_MUSTCHECK int iam_keyring_kid(const struct uc_crypto_key *key, char kid[IAM_KID_LEN]);

/* Create a keyring over `st` and load the keys stored there (none is fine).
 * `st`, `master` (32 bytes) and `clock` (NULL = real time) are borrowed for
 * the keyring's life. On success *out is freed with iam_keyring_destroy.
 * Errors: UC_EUNAUTH (a sealed key does not open: wrong master key),
 * UC_EINTERNAL (corrupt records), UC_ECRYPTO, UC_ENOMEM and the store's. */
UC_MUSTCHECK int iam_keyring_create(struct iam_keyring **out, struct uc_store *st,
                                    const uint8_t *master, const struct uc_clock *clock,
                                    char err[UC_ERR_LEN]);

/* Free; NULL is a no-op. */
void iam_keyring_destroy(struct iam_keyring *kr);

/* Make `key` (private, borrowed) the active key unless its kid is already
 * stored; the previous active key becomes verifying. *imported says
 * whether it was new; kid gets its kid. Errors: UC_EINVAL (public key),
 * UC_ECONFLICT (concurrent change), UC_ECRYPTO, UC_ENOMEM and the store's. */
UC_MUSTCHECK int iam_keyring_import(struct iam_keyring *kr, const struct uc_crypto_key *key,
                                    bool *imported, char kid[IAM_KID_LEN], char err[UC_ERR_LEN]);

/* Generate a new active key; the previous active one becomes verifying.
 * *view (new reference) is {kid,status,created_at,updated_at}.
 * Errors: as iam_keyring_import. */
UC_MUSTCHECK int iam_keyring_rotate(struct iam_keyring *kr, json_t **view, char err[UC_ERR_LEN]);

/* Retire a verifying key: it leaves the JWKS and stops verifying.
 * Errors: UC_EINVAL (malformed kid), UC_ENOENT, UC_ECONFLICT (the key is
 * active or already retired), and the store's. */
UC_MUSTCHECK int iam_keyring_retire(struct iam_keyring *kr, const char *kid, char err[UC_ERR_LEN]);

/* One page of {kid,status,created_at,updated_at} items (*out new reference);
 * page tokens are kids. Errors: as iam_list. */
UC_MUSTCHECK int iam_keyring_list(struct iam_keyring *kr, const struct iam_page *pg, json_t **out,
                                  char err[UC_ERR_LEN]);

/* The JWKS document {"keys":[...]}: the active key first, then verifying
 * ones (*out new reference). Errors: UC_ENOMEM. */
UC_MUSTCHECK int iam_keyring_jwks(struct iam_keyring *kr, json_t **out, char err[UC_ERR_LEN]);

/* True when `kid` is the active or a verifying key (it is in the JWKS). */
bool iam_keyring_verifies(struct iam_keyring *kr, const char *kid);

/* Sign payload (borrowed) with the active key: *token freed with uc_free,
 * kid gets the signing kid. Errors: UC_EUNAVAIL (no active key),
 * UC_ECRYPTO, UC_E2BIG, UC_ENOMEM. */
UC_MUSTCHECK int iam_keyring_sign(struct iam_keyring *kr, const json_t *payload, char **token,
                                  char kid[IAM_KID_LEN], char err[UC_ERR_LEN]);

/* Check token's shape and signature against the active or a verifying key
 * (claims are not checked). *payload (new reference) is its payload and kid
 * its kid. Errors: UC_EUNAUTH (malformed, unknown or retired kid, bad
 * signature), UC_ENOMEM. */
UC_MUSTCHECK int iam_keyring_verify(struct iam_keyring *kr, const char *token, json_t **payload,
                                    char kid[IAM_KID_LEN], char err[UC_ERR_LEN]);

#endif /* IAM_KEYRING_H */
