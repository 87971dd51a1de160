/* store_token.h - the bearer token iam shows its own store. On a flaredb
 * store iam is a client like any other service, but it cannot log in to
 * itself: it signs its token with its own key, and flaredb checks it
 * against iam's JWKS like every other token. Until the keyring is loaded
 * from the store the token is signed with the --signing-key-file key
 * (which iam publishes while it starts); afterwards with that key while
 * the keyring still verifies it, else with the active key. Thread-safe:
 * one mutex guards the cached token. */
#ifndef IAM_STORE_TOKEN_H
#define IAM_STORE_TOKEN_H
#include "uc/clock.h"
#include "uc/crypto.h"
#include "uc/err.h"
#include "uc/store.h"

#define IAM_STORE_TOKEN_TTL_S 300  /* lifetime of one token */
#define IAM_STORE_TOKEN_RENEW_S 60 /* a new one is signed this long before expiry */
#define IAM_STORE_TOKEN_SUB "iam"  /* the subject flaredb sees (and logs) */

struct iam_keyring;
struct iam_store_token;

/* A token source signing with `file_key` (private, borrowed for its life)
 * and reading time from `clock` (NULL = real time). On success *out is
 * freed with iam_store_token_destroy. Errors: UC_EINVAL (public key),
 * UC_ECRYPTO, UC_ENOMEM. */
UC_MUSTCHECK int iam_store_token_create(struct iam_store_token **out,
                                        const struct uc_crypto_key *file_key,
                                        const struct uc_clock *clock, char err[UC_ERR_LEN]);

/* Free; NULL is a no-op. */
void iam_store_token_destroy(struct iam_store_token *t);

/* From now on consult `kr` (borrowed; NULL to stop, e.g. before the
 * keyring is destroyed) to pick the signing key. */
void iam_store_token_use_keyring(struct iam_store_token *t, struct iam_keyring *kr);

/* uc_store_token_fn: ctx is the struct iam_store_token. The token has the
 * claims of any IAM token with sub "iam", no project, no role and no
 * system-admin flag, and lives IAM_STORE_TOKEN_TTL_S seconds.
 * Errors: UC_EUNAVAIL (the keyring has no active key), UC_ECRYPTO,
 * UC_E2BIG, UC_ENOMEM. */
int iam_store_token_get(void *ctx, char token[UC_STORE_TOKEN_LEN], char err[UC_ERR_LEN]);

#endif /* IAM_STORE_TOKEN_H */
