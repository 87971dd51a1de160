/* uc/crypto.h - the crypto UltraCloud needs, on OpenSSL 3 only: random ids,
 * SHA-256, HMAC, base64/base64url, Ed25519, AES-256-GCM, scrypt password
 * hashes, constant-time compare and wiping. Thread-safe; a key object may be
 * shared by threads once created. No function keeps a caller's pointer. */
#ifndef UC_CRYPTO_H
#define UC_CRYPTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uc/err.h"

#define UC_SHA256_LEN 32
#define UC_ED25519_PUB_LEN 32
#define UC_ED25519_SEED_LEN 32
#define UC_ED25519_SIG_LEN 64
#define UC_AES_KEY_LEN 32
#define UC_AES_NONCE_LEN 12
#define UC_AES_TAG_LEN 16
#define UC_ID_PREFIX_MAX 24
#define UC_ID_RANDOM_LEN 20
#define UC_ID_LEN 48 /* room for "<prefix>-" + 20 random chars + NUL */

/* Fill buf with n cryptographically random bytes. On failure buf is zeroed.
 * Errors: UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_random(void *buf, size_t n);

/* Write "<prefix>-<20 chars of lowercase RFC 4648 base32>" (100 random bits)
 * into out. prefix is 1..24 chars of [a-z0-9]. On failure out is "".
 * Errors: UC_EINVAL (bad prefix), UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_random_id(const char *prefix, char out[UC_ID_LEN]);

/* SHA-256 of n bytes at data. Only fails when OpenSSL cannot allocate; out is
 * then zeroed. Errors: UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_sha256(const void *data, size_t n, uint8_t out[UC_SHA256_LEN]);
/* HMAC-SHA256; key may be NULL when klen is 0. On failure out is zeroed.
 * Errors: UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_hmac_sha256(const void *key, size_t klen, const void *data, size_t n,
                                       uint8_t out[UC_SHA256_LEN]);

/* Constant-time equality of two n-byte buffers. */
bool uc_crypto_memeq(const void *a, const void *b, size_t n);
/* Constant-time equality of two NUL-terminated strings (length may leak);
 * false when either is NULL. */
bool uc_crypto_streq(const char *a, const char *b);
/* Overwrite n bytes with zeros in a way the compiler keeps. */
void uc_crypto_wipe(void *p, size_t n);

/* base64url without padding (RFC 4648 section 5) and standard base64 with
 * padding (section 4). Encoders return a new string freed with uc_free, or
 * NULL on ENOMEM. Decoders read slen bytes of s (no NUL needed) and are
 * strict: they reject characters outside the alphabet, '=' in base64url,
 * missing or misplaced padding in base64, impossible lengths and non-zero
 * unused trailing bits (so every byte string has exactly one encoding). On
 * success *out is a new buffer of *outlen bytes plus a NUL, freed with
 * uc_free; on failure *out and *outlen are untouched.
 * Errors: UC_EINVAL (bad alphabet, padding or length), UC_ENOMEM. */
UC_MUSTCHECK char *uc_b64url_encode(const void *data, size_t n);
UC_MUSTCHECK int uc_b64url_decode(const char *s, size_t slen, uint8_t **out, size_t *outlen);
UC_MUSTCHECK char *uc_b64_encode(const void *data, size_t n);
UC_MUSTCHECK int uc_b64_decode(const char *s, size_t slen, uint8_t **out, size_t *outlen);

/* Lowercase hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void uc_hex_encode(const void *data, size_t n, char *out);

/* An Ed25519 key: private (can sign and verify) or public (verify only).
 * Opaque; wraps an OpenSSL EVP_PKEY. */
struct uc_crypto_key;

/* Errors for the key constructors: UC_EINVAL (not an Ed25519 key, bad PEM or
 * length), UC_ECRYPTO, UC_ENOMEM. On success *out is a new key freed with
 * uc_crypto_key_destroy; on failure *out is NULL. Input buffers are
 * borrowed for the call only. */
UC_MUSTCHECK int uc_crypto_ed25519_generate(struct uc_crypto_key **out, char err[UC_ERR_LEN]);
/* Private key from its 32-byte RFC 8032 seed ("secret key"). */
UC_MUSTCHECK int uc_crypto_ed25519_from_seed(struct uc_crypto_key **out,
                                             const uint8_t seed[UC_ED25519_SEED_LEN],
                                             char err[UC_ERR_LEN]);
/* Load an unencrypted PEM private key ("-----BEGIN PRIVATE KEY-----", PKCS#8)
 * of len bytes (at most 16 KiB; no NUL needed). Encrypted keys are refused
 * without prompting. */
UC_MUSTCHECK int uc_crypto_ed25519_from_pem(struct uc_crypto_key **out, const char *pem, size_t len,
                                            char err[UC_ERR_LEN]);
UC_MUSTCHECK int uc_crypto_ed25519_from_public(struct uc_crypto_key **out,
                                               const uint8_t pub[UC_ED25519_PUB_LEN],
                                               char err[UC_ERR_LEN]);
/* PKCS#8 PEM of a private key: *pem is a new NUL-terminated string freed by
 * the caller with uc_free (wipe it first with uc_crypto_wipe); untouched on
 * failure. Errors: UC_EINVAL (public key), UC_ECRYPTO, UC_ENOMEM. */
UC_MUSTCHECK int uc_crypto_ed25519_to_pem(const struct uc_crypto_key *k, char **pem,
                                          char err[UC_ERR_LEN]);
/* The raw 32-byte public key. Errors: UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_ed25519_public(const struct uc_crypto_key *k,
                                          uint8_t out[UC_ED25519_PUB_LEN]);
bool uc_crypto_key_is_private(const struct uc_crypto_key *k);
/* Sign n bytes of msg (NULL allowed when n is 0). Deterministic (RFC 8032).
 * Errors: UC_EINVAL (public key), UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_ed25519_sign(const struct uc_crypto_key *k, const void *msg, size_t n,
                                        uint8_t sig[UC_ED25519_SIG_LEN]);
/* 0 when sig is a valid signature of msg under k (public or private).
 * Errors: UC_EUNAUTH (bad signature), UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_ed25519_verify(const struct uc_crypto_key *k, const void *msg, size_t n,
                                          const uint8_t sig[UC_ED25519_SIG_LEN]);
/* Free a key; NULL is a no-op. OpenSSL wipes the private part. */
void uc_crypto_key_destroy(struct uc_crypto_key *k);

/* AES-256-GCM with a random 96-bit nonce. Seal writes nonce(12) ||
 * ciphertext(n) || tag(16) to a new buffer (*out, *outlen; caller frees with
 * uc_free); `aad` may be NULL when aadlen is 0. Open reverses it; its *out
 * is NUL-terminated for convenience (caller wipes and frees it). Outputs are
 * untouched on failure. At most 1 GiB per call.
 * Errors: UC_EUNAUTH (open: wrong key or AAD, tampered or truncated),
 * UC_EINVAL (too large), UC_ECRYPTO, UC_ENOMEM. */
UC_MUSTCHECK int uc_crypto_seal(const uint8_t key[UC_AES_KEY_LEN], const void *aad, size_t aadlen,
                                const void *plain, size_t n, uint8_t **out, size_t *outlen);
UC_MUSTCHECK int uc_crypto_open(const uint8_t key[UC_AES_KEY_LEN], const void *aad, size_t aadlen,
                                const void *sealed, size_t n, uint8_t **out, size_t *outlen);

/* The scrypt KDF (RFC 7914) with N = 2^logN: writes outlen (1..1024) bytes
 * to out. Bounds: logN 1..20, r 1..16, p 1..16. On failure out is zeroed.
 * Errors: UC_EINVAL (parameter out of bounds), UC_ECRYPTO. */
UC_MUSTCHECK int uc_crypto_scrypt(const void *pw, size_t pwlen, const void *salt, size_t saltlen,
                                  int logN, int r, int p, uint8_t *out, size_t outlen);

/* scrypt password hashing. Hash produces
 * "scrypt$<logN>$<r>$<p>$<salt b64url>$<hash b64url>" with r=8, p=1, a
 * 16-byte random salt and a 32-byte hash; *encoded is a new string freed
 * with uc_free, untouched on failure. logN = 0 means the default (15),
 * otherwise 10..20. Verify answers 0 when `password` matches `encoded`,
 * comparing in constant time. It parses strictly and accepts logN 10..20,
 * r 1..16, p 1..4, a salt of 8..64 bytes and a hash of 16..64 bytes, so a
 * stored string cannot make it run away (worst case about 2 GiB, seconds).
 * Errors: UC_EUNAUTH (mismatch), UC_EINVAL (NULL password, bad logN,
 * malformed encoding), UC_ECRYPTO, UC_ENOMEM. */
UC_MUSTCHECK int uc_crypto_password_hash(const char *password, int logN, char **encoded);
UC_MUSTCHECK int uc_crypto_password_verify(const char *password, const char *encoded);

#endif /* UC_CRYPTO_H */
