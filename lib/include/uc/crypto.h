/* uc/crypto.h - the crypto UltraCloud needs, on OpenSSL 3 only: random ids,
 * SHA-256, HMAC, base64/base64url, Ed25519, AES-256-GCM, scrypt password
 * hashes, constant-time compare and wiping. Thread-safe; a key object may be
 * shared by threads once created. */
#ifndef UC_CRYPTO_H
#define UC_CRYPTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uc/err.h"

#define UC_SHA256_LEN 32
#define UC_ED25519_PUB_LEN 32
#define UC_ED25519_SIG_LEN 64
#define UC_AES_KEY_LEN 32
#define UC_AES_NONCE_LEN 12
#define UC_AES_TAG_LEN 16
#define UC_ID_LEN 48 /* room for "<prefix>-" + 20 random chars + NUL */

/* Fill buf with n cryptographically random bytes. Errors: UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_random(void *buf, size_t n);

/* Write "<prefix>-<20 chars of lowercase base32 randomness>" into out.
 * prefix is at most 24 chars. Errors: UC_EINVAL, UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_random_id(const char *prefix, char out[UC_ID_LEN]);

void uc_crypto_sha256(const void *data, size_t n, uint8_t out[UC_SHA256_LEN]);
/* Errors: UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_hmac_sha256(const void *key, size_t klen, const void *data, size_t n,
                                       uint8_t out[UC_SHA256_LEN]);

/* Constant-time equality of two n-byte buffers. */
bool uc_crypto_memeq(const void *a, const void *b, size_t n);
/* Constant-time equality of two NUL-terminated strings (length may leak). */
bool uc_crypto_streq(const char *a, const char *b);
/* Overwrite n bytes with zeros in a way the compiler keeps. */
void uc_crypto_wipe(void *p, size_t n);

/* base64url without padding (RFC 4648 section 5) and standard base64 with
 * padding. Encoders return a new string freed with uc_free, or NULL on
 * ENOMEM. Decoders return a new buffer (NUL-terminated for convenience)
 * and its length. Decode errors: UC_EINVAL (bad alphabet or length),
 * UC_ENOMEM. */
UC_MUSTCHECK char *uc_b64url_encode(const void *data, size_t n);
UC_MUSTCHECK int uc_b64url_decode(const char *s, size_t slen, uint8_t **out, size_t *outlen);
UC_MUSTCHECK char *uc_b64_encode(const void *data, size_t n);
UC_MUSTCHECK int uc_b64_decode(const char *s, size_t slen, uint8_t **out, size_t *outlen);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void uc_hex_encode(const void *data, size_t n, char *out);

/* An Ed25519 key: private (can sign and verify) or public (verify only). */
struct uc_crypto_key;

/* Errors for the key functions: UC_EINVAL (not an Ed25519 key, bad PEM or
 * length), UC_ECRYPTO, UC_ENOMEM. On failure *out is NULL. */
UC_MUSTCHECK int uc_crypto_ed25519_generate(struct uc_crypto_key **out, char err[UC_ERR_LEN]);
/* Load a PKCS#8 PEM private key ("-----BEGIN PRIVATE KEY-----"). */
UC_MUSTCHECK int uc_crypto_ed25519_from_pem(struct uc_crypto_key **out, const char *pem,
                                            size_t len, char err[UC_ERR_LEN]);
UC_MUSTCHECK int uc_crypto_ed25519_from_public(struct uc_crypto_key **out,
                                               const uint8_t pub[UC_ED25519_PUB_LEN],
                                               char err[UC_ERR_LEN]);
/* PKCS#8 PEM of a private key; *pem freed with uc_free (wipe it first). */
UC_MUSTCHECK int uc_crypto_ed25519_to_pem(const struct uc_crypto_key *k, char **pem,
                                          char err[UC_ERR_LEN]);
UC_MUSTCHECK int uc_crypto_ed25519_public(const struct uc_crypto_key *k,
                                          uint8_t out[UC_ED25519_PUB_LEN]);
bool uc_crypto_key_is_private(const struct uc_crypto_key *k);
/* Errors: UC_EINVAL (public key), UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_ed25519_sign(const struct uc_crypto_key *k, const void *msg, size_t n,
                                        uint8_t sig[UC_ED25519_SIG_LEN]);
/* 0 when valid. Errors: UC_EUNAUTH (bad signature), UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_ed25519_verify(const struct uc_crypto_key *k, const void *msg,
                                          size_t n, const uint8_t sig[UC_ED25519_SIG_LEN]);
void uc_crypto_key_destroy(struct uc_crypto_key *k);

/* AES-256-GCM. Seal writes nonce(12) || ciphertext(n) || tag(16) to a new
 * buffer (*out, *outlen; caller frees with uc_free); `aad` may be NULL.
 * Open reverses it. Errors: UC_EUNAUTH (open: wrong key, tampered or
 * truncated), UC_ECRYPTO, UC_ENOMEM. */
UC_MUSTCHECK int uc_crypto_seal(const uint8_t key[UC_AES_KEY_LEN], const void *aad, size_t aadlen,
                                const void *plain, size_t n, uint8_t **out, size_t *outlen);
UC_MUSTCHECK int uc_crypto_open(const uint8_t key[UC_AES_KEY_LEN], const void *aad, size_t aadlen,
                                const void *sealed, size_t n, uint8_t **out, size_t *outlen);

/* scrypt password hashing. Hash produces "scrypt$<logN>$<r>$<p>$<salt b64url>$<hash b64url>"
 * (freed with uc_free). Verify answers 0 when `password` matches `encoded`.
 * Errors: UC_EUNAUTH (mismatch), UC_EINVAL (malformed encoding), UC_ECRYPTO,
 * UC_ENOMEM. logN = 0 means the default (15). */
UC_MUSTCHECK int uc_crypto_password_hash(const char *password, int logN, char **encoded);
UC_MUSTCHECK int uc_crypto_password_verify(const char *password, const char *encoded);

#endif /* UC_CRYPTO_H */
