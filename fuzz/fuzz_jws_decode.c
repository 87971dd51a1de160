/* fuzz_jws_decode.c - bearer tokens and key sets. Input starting with '{'
 * is a JWKS document or one JWK: uc_jws_key_from_jwk on each key, and a
 * verifier fed the document checks a token signed by the fixed key. Any
 * other input is a compact token: uc_jws_decode, uc_jws_verify_sig with the
 * fixed key, and uc_auth_verify against a verifier that knows that key. */
#include <jansson.h>

#include "fuzz.h"
#include "uc/auth.h"
#include "uc/json.h"
#include "uc/jws.h"
#include "uc/log.h"

#define NOW_MS 1767225600000LL /* 2026-01-01T00:00:00Z */
#define KID "k1"

static struct uc_crypto_key *key;     /* the fixed signing key */
static json_t *jwks;                  /* {"keys":[its JWK]} */
static char *good_token;              /* signed by key, valid at NOW_MS */
static struct uc_auth_verifier *ver;  /* knows key */
static struct uc_clock_manual clock_; /* stays at NOW_MS */

static int fetch_doc(void *ctx, json_t **out, char err[UC_ERR_LEN])
{
    (void)err;
    *out = json_incref(ctx);
    return 0;
}

static struct uc_auth_verifier *verifier_for(json_t *doc)
{
    struct uc_auth_verifier_opts o = {.fetch = fetch_doc, .fetch_ctx = doc, .clock = &clock_.clock};
    struct uc_auth_verifier *v = NULL;
    fuzz_check(uc_auth_verifier_create(&v, &o, NULL) == 0, "cannot create a verifier");
    return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const uint8_t seed[UC_ED25519_SEED_LEN] = "ultracloud fuzz fixed key seed!";
    uc_alloc_install_jansson();
    uc_log_init("fuzz", UC_LOG_ERROR);
    uc_clock_manual_init(&clock_, NOW_MS);
    fuzz_check(uc_crypto_ed25519_from_seed(&key, seed, NULL) == 0, "cannot make the key");
    json_t *jwk = uc_jws_jwk(key, KID);
    jwks = json_pack("{s:[o]}", "keys", jwk);
    json_t *claims =
        json_pack("{s:s,s:s,s:s,s:s,s:[s],s:I,s:I}", "iss", UC_AUTH_ISSUER, "aud", UC_AUTH_AUDIENCE,
                  "sub", "user-fuzz", "project", "proj-fuzz", "roles", "admin", "iat",
                  (json_int_t)(NOW_MS / 1000), "exp", (json_int_t)(NOW_MS / 1000 + 3600));
    fuzz_check(jwk && jwks && claims, "cannot build the fixtures");
    fuzz_check(uc_jws_sign(claims, key, KID, &good_token) == 0, "cannot sign the fixed token");
    json_decref(claims);
    ver = verifier_for(jwks);
    return 0;
}

/* A decoded token must satisfy what uc_jws_decode promises. */
static void check_decoded(const char *tok)
{
    json_t *h = NULL, *p = NULL;
    const char *kid = NULL;
    char err[UC_ERR_LEN];
    int rc = uc_jws_decode(tok, &h, &p, &kid, err);
    fuzz_check(rc == 0 || rc == UC_EUNAUTH || rc == UC_ENOMEM, "uc_jws_decode: unexpected code");
    if (rc != 0) {
        fuzz_check(!h && !p && !kid, "failed decode touched its outputs");
        return;
    }
    fuzz_check(json_is_object(h) && json_is_object(p), "decoded parts are not objects");
    fuzz_check(strcmp(json_string_value(json_object_get(h, "alg")), "EdDSA") == 0, "alg");
    fuzz_check(kid && kid == json_string_value(json_object_get(h, "kid")), "kid not in header");
    fuzz_check(strlen(kid) >= 1 && strlen(kid) <= UC_JWS_KID_MAX, "kid length");
    json_decref(h);
    json_decref(p);
}

static void run_token(const char *tok)
{
    char err[UC_ERR_LEN];
    check_decoded(tok);
    int rc = uc_jws_verify_sig(tok, key, err);
    fuzz_check(rc == 0 || rc == UC_EUNAUTH || rc == UC_ENOMEM, "verify_sig: unexpected code");
    struct uc_auth_claims c;
    rc = uc_auth_verify(ver, tok, &c, err);
    fuzz_check(rc == 0 || rc == UC_EUNAUTH || rc == UC_ENOMEM, "uc_auth_verify: unexpected code");
    if (rc == 0)
        fuzz_check(strcmp(c.kid, KID) == 0 && c.exp > NOW_MS / 1000, "accepted claims");
}

static void try_jwk(const json_t *jwk)
{
    struct uc_crypto_key *k = (struct uc_crypto_key *)1;
    char err[UC_ERR_LEN];
    int rc = uc_jws_key_from_jwk(jwk, &k, err);
    fuzz_check(rc == 0 || rc == UC_EINVAL || rc == UC_ECRYPTO || rc == UC_ENOMEM,
               "uc_jws_key_from_jwk: unexpected code");
    fuzz_check((rc == 0) == (k != NULL), "key set on failure or missing on success");
    if (rc != 0)
        return;
    fuzz_check(!uc_crypto_key_is_private(k), "a JWK gave a private key");
    rc = uc_jws_verify_sig(good_token, k, err);
    fuzz_check(rc == 0 || rc == UC_EUNAUTH, "verify with a JWK key: unexpected code");
    uc_crypto_key_destroy(k);
}

static void run_jwks(const uint8_t *data, size_t size)
{
    json_t *doc = NULL;
    char err[UC_ERR_LEN];
    if (uc_json_parse((const char *)data, size, &doc, err) != 0)
        return;
    try_jwk(doc);
    const json_t *keys = json_object_get(doc, "keys");
    for (size_t i = 0; i < json_array_size(keys); i++)
        try_jwk(json_array_get(keys, i));
    struct uc_auth_verifier *v = verifier_for(doc);
    struct uc_auth_claims c;
    int rc = uc_auth_verify(v, good_token, &c, err);
    fuzz_check(rc == 0 || rc == UC_EUNAUTH || rc == UC_EUNAVAIL || rc == UC_ENOMEM,
               "uc_auth_verify with a fuzzed key set: unexpected code");
    uc_auth_verifier_destroy(v);
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == '{') {
        run_jwks(data, size);
        return 0;
    }
    char *tok = fuzz_cstr(data, size);
    run_token(tok);
    uc_free(tok);
    return 0;
}
