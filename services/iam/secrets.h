/* secrets.h - reading IAM's start-up secrets: the bootstrap token, the
 * 32-byte master key (file or environment) and the Ed25519 signing key.
 * Each failure comes back as one line naming the option, for main to print
 * before it exits 2. Stateless; buffers holding secrets are wiped. */
#ifndef IAM_SECRETS_H
#define IAM_SECRETS_H
#include <stdint.h>

#include "uc/crypto.h"
#include "uc/err.h"

#define IAM_BOOTSTRAP_MIN 32

/* Read the bootstrap token from `path`: at least IAM_BOOTSTRAP_MIN
 * printable ASCII characters without spaces, one trailing newline ignored.
 * On success *out is a new string the caller wipes and frees with uc_free.
 * Errors: UC_EINVAL (missing path, too short, bad characters), UC_ENOENT,
 * UC_EIO, UC_E2BIG, UC_ENOMEM. */
UC_MUSTCHECK int iam_secrets_bootstrap(const char *path, char **out, char err[UC_ERR_LEN]);

/* Fill key from the file at `path` (32 raw bytes or 64 hex digits, one
 * trailing newline ignored) or, when path is NULL, from `env_hex` (64 hex
 * digits; NULL when the variable is unset). On failure key is zeroed.
 * Errors: UC_EINVAL (neither given, wrong length or digits), UC_ENOENT,
 * UC_EIO, UC_E2BIG, UC_ENOMEM. */
UC_MUSTCHECK int iam_secrets_master(const char *path, const char *env_hex,
                                    uint8_t key[UC_AES_KEY_LEN], char err[UC_ERR_LEN]);

/* Load the Ed25519 private key (PKCS#8 PEM) at `path`. On success *out is
 * freed with uc_crypto_key_destroy. Errors: UC_EINVAL (not such a key),
 * UC_ENOENT, UC_EIO, UC_E2BIG, UC_ENOMEM. */
UC_MUSTCHECK int iam_secrets_signing_key(const char *path, struct uc_crypto_key **out,
                                         char err[UC_ERR_LEN]);

#endif /* IAM_SECRETS_H */
