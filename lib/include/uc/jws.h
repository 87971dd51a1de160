/* uc/jws.h - compact JWS (RFC 7515) with EdDSA over Ed25519 (RFC 8037):
 * the token format IAM signs and every service verifies. Stateless and
 * thread-safe. */
#ifndef UC_JWS_H
#define UC_JWS_H
#include <jansson.h>

#include "uc/crypto.h"
#include "uc/err.h"

/* Sign `payload` (borrowed) with header {"alg":"EdDSA","typ":"JWT","kid":kid}.
 * *token is a new string freed with uc_free.
 * Errors: UC_EINVAL (public key, bad kid), UC_ECRYPTO, UC_ENOMEM. */
UC_MUSTCHECK int uc_jws_sign(const json_t *payload, const struct uc_crypto_key *key,
                             const char *kid, char **token);

/* Split and decode a compact token without checking the signature: *header
 * and *payload are new references (decref both); *kid points into *header.
 * Errors: UC_EUNAUTH (malformed, alg not EdDSA, no kid), UC_ENOMEM. */
UC_MUSTCHECK int uc_jws_decode(const char *token, json_t **header, json_t **payload,
                               const char **kid, char err[UC_ERR_LEN]);

/* Check the signature of `token` with `key`. Errors: UC_EUNAUTH, UC_ENOMEM. */
UC_MUSTCHECK int uc_jws_verify_sig(const char *token, const struct uc_crypto_key *key,
                                   char err[UC_ERR_LEN]);

/* The public JWK of an Ed25519 key: {"kty":"OKP","crv":"Ed25519","x":...,
 * "kid":kid,"alg":"EdDSA","use":"sig"}; new reference or NULL on ENOMEM. */
json_t *uc_jws_jwk(const struct uc_crypto_key *key, const char *kid);

/* Build a public key from a JWK object. Errors: UC_EINVAL. */
UC_MUSTCHECK int uc_jws_key_from_jwk(const json_t *jwk, struct uc_crypto_key **out,
                                     char err[UC_ERR_LEN]);

#endif /* UC_JWS_H */
