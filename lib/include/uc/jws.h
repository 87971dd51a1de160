/* uc/jws.h - compact JWS (RFC 7515) with EdDSA over Ed25519 (RFC 8037):
 * the token format IAM signs and every service verifies. Stateless and
 * thread-safe. Only "alg":"EdDSA" exists here: no "none", no HMAC. */
#ifndef UC_JWS_H
#define UC_JWS_H
#include <jansson.h>

#include "uc/crypto.h"
#include "uc/err.h"

/* Longest token accepted or produced, in bytes (without the NUL). */
#define UC_JWS_MAX_LEN 8192
/* A kid is 1..63 printable ASCII characters (0x21..0x7e), so it fits
 * uc_auth_claims.kid and is safe to log. */
#define UC_JWS_KID_MAX 63

/* Sign `payload` (a JSON object, borrowed; serialized with JSON_COMPACT)
 * with the protected header {"alg":"EdDSA","kid":kid,"typ":"JWT"} (compact,
 * keys sorted). `kid` is borrowed. On success *token is a new string freed
 * with uc_free; on failure it is untouched.
 * Errors: UC_EINVAL (public key, bad kid, payload not an object),
 * UC_E2BIG (token would exceed UC_JWS_MAX_LEN), UC_ECRYPTO, UC_ENOMEM. */
UC_MUSTCHECK int uc_jws_sign(const json_t *payload, const struct uc_crypto_key *key,
                             const char *kid, char **token);

/* Split and decode a compact token WITHOUT checking the signature (pair it
 * with uc_jws_verify_sig). Rejects: not exactly three non-empty parts, a
 * token over UC_JWS_MAX_LEN, bad base64url, a header that is not a JSON
 * object (duplicate keys refused), alg not exactly "EdDSA", a "crit" header,
 * a missing or malformed kid, a payload that is not a JSON object, and a
 * signature that is not 64 bytes. On success *header and *payload are new
 * references (the caller decrefs both) and *kid points into *header (valid
 * while *header lives); on failure all three are untouched.
 * Errors: UC_EUNAUTH (malformed, with the reason in err), UC_ENOMEM.
 * jansson reports some allocation failures as syntax errors; those come
 * back as UC_EUNAUTH, which still fails closed. */
UC_MUSTCHECK int uc_jws_decode(const char *token, json_t **header, json_t **payload,
                               const char **kid, char err[UC_ERR_LEN]);

/* Check the signature of `token` (borrowed) with `key` (public or private,
 * borrowed). Checks the token's shape (three non-empty parts, length, a
 * 64-byte signature) but not its header or payload: call uc_jws_decode too.
 * Errors: UC_EUNAUTH (malformed or bad signature), UC_ECRYPTO, UC_ENOMEM. */
UC_MUSTCHECK int uc_jws_verify_sig(const char *token, const struct uc_crypto_key *key,
                                   char err[UC_ERR_LEN]);

/* The public JWK of an Ed25519 key: {"kty":"OKP","crv":"Ed25519","x":...,
 * "kid":kid,"alg":"EdDSA","use":"sig"}. `key` and `kid` are borrowed.
 * Returns a new reference, or NULL on ENOMEM, a bad kid or a key OpenSSL
 * cannot export. */
json_t *uc_jws_jwk(const struct uc_crypto_key *key, const char *kid);

/* Build a public key from a JWK object (borrowed): kty must be "OKP", crv
 * "Ed25519", x the base64url of 32 bytes; "alg" and "use", when present,
 * must be "EdDSA" and "sig". Any "d" member is ignored: the key is always
 * public. On success *out is a new key freed with uc_crypto_key_destroy;
 * on failure it is NULL.
 * Errors: UC_EINVAL (not such a JWK), UC_ECRYPTO, UC_ENOMEM. */
UC_MUSTCHECK int uc_jws_key_from_jwk(const json_t *jwk, struct uc_crypto_key **out,
                                     char err[UC_ERR_LEN]);

#endif /* UC_JWS_H */
