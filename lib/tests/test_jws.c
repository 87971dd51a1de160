/* test_jws.c - compact EdDSA JWS: sign/verify round trips, tampering, wrong
 * keys, the alg and shape rejections of uc_jws_decode, JWK conversion and
 * out-of-memory paths. */
#include <check.h>

#include "uc_check.h"
#include <stdlib.h>
#include <string.h>

#include "uc/alloc.h"
#include "uc/jws.h"

/* RFC 8032 section 7.1 TEST 1 key; its public key in base64url is the
 * RFC 8037 appendix A.2 "x". */
static const uint8_t SEED[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
                                 0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
                                 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
static const char *X_B64 = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

static struct uc_crypto_key *key, *other;
static json_t *claims;

static void setup(void)
{
    ck_assert_int_eq(uc_crypto_ed25519_from_seed(&key, SEED, NULL), 0);
    ck_assert_int_eq(uc_crypto_ed25519_generate(&other, NULL), 0);
    claims = json_pack("{s:s,s:s,s:I}", "sub", "user-1", "project", "proj-a", "exp",
                       (json_int_t)1700000000);
    ck_assert_ptr_nonnull(claims);
}

static void teardown(void)
{
    uc_alloc_fail_after(-1);
    uc_crypto_key_destroy(key);
    uc_crypto_key_destroy(other);
    json_decref(claims);
    key = other = NULL;
    claims = NULL;
}

static char *sign_claims(void)
{
    char *tok = NULL;
    ck_assert_int_eq(uc_jws_sign(claims, key, "k1", &tok), 0);
    return tok;
}

/* A token from raw header and payload text, validly signed with `key`, so
 * that a rejection can only come from the part under test. */
static char *forge(const char *header, const char *payload)
{
    char *h = uc_b64url_encode(header, strlen(header));
    char *p = uc_b64url_encode(payload, strlen(payload));
    char *input = uc_asprintf("%s.%s", h, p);
    uint8_t sig[UC_ED25519_SIG_LEN];
    ck_assert_int_eq(uc_crypto_ed25519_sign(key, input, strlen(input), sig), 0);
    char *s = uc_b64url_encode(sig, sizeof(sig));
    char *tok = uc_asprintf("%s.%s", input, s);
    uc_free(h);
    uc_free(p);
    uc_free(input);
    uc_free(s);
    return tok;
}

/* decode must refuse tok with UC_EUNAUTH, leave outputs untouched and say
 * something containing `why`. */
static void expect_decode_rejects(const char *tok, const char *why)
{
    json_t *h = (json_t *)"x", *p = (json_t *)"y";
    const char *kid = "z";
    char err[UC_ERR_LEN] = "";
    int rc = uc_jws_decode(tok, &h, &p, &kid, err);
    ck_assert_msg(rc == UC_EUNAUTH, "rc %d for %.80s", rc, tok ? tok : "(null)");
    ck_assert_msg(strstr(err, why) != NULL, "err \"%s\" lacks \"%s\"", err, why);
    ck_assert(h == (json_t *)"x" && p == (json_t *)"y" && strcmp(kid, "z") == 0);
}

static void expect_forged_rejected(const char *header, const char *payload, const char *why)
{
    char *tok = forge(header, payload);
    expect_decode_rejects(tok, why);
    uc_free(tok);
}

/* ---- uc_jws_sign ------------------------------------------------------- */

START_TEST(sign_then_decode_and_verify_round_trips)
{
    char *tok = sign_claims();
    json_t *h = NULL, *p = NULL;
    const char *kid = NULL;
    char err[UC_ERR_LEN] = "";
    ck_assert_int_eq(uc_jws_decode(tok, &h, &p, &kid, err), 0);
    ck_assert_str_eq(kid, "k1");
    ck_assert_str_eq(json_string_value(json_object_get(h, "alg")), "EdDSA");
    ck_assert_str_eq(json_string_value(json_object_get(h, "typ")), "JWT");
    ck_assert_uint_eq(json_object_size(h), 3);
    ck_assert(json_equal(p, claims));
    ck_assert_int_eq(uc_jws_verify_sig(tok, key, err), 0);
    json_decref(h);
    json_decref(p);
    uc_free(tok);
}
END_TEST

START_TEST(sign_writes_compact_sorted_header_and_is_deterministic)
{
    char *tok = sign_claims(), *again = sign_claims();
    const char *hjson = "{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"typ\":\"JWT\"}";
    const char *pjson = "{\"sub\":\"user-1\",\"project\":\"proj-a\",\"exp\":1700000000}";
    char *h = uc_b64url_encode(hjson, strlen(hjson));
    char *p = uc_b64url_encode(pjson, strlen(pjson));
    char *want = uc_asprintf("%s.%s.", h, p);
    ck_assert(strncmp(tok, want, strlen(want)) == 0);
    ck_assert_uint_eq(strlen(tok), strlen(want) + 86); /* 64-byte signature */
    ck_assert_str_eq(tok, again);                      /* Ed25519 is deterministic */
    uc_free(h);
    uc_free(p);
    uc_free(want);
    uc_free(tok);
    uc_free(again);
}
END_TEST

START_TEST(sign_refuses_public_keys_bad_kids_and_non_objects)
{
    char *tok = (char *)"untouched";
    struct uc_crypto_key *pub = NULL;
    json_t *jwk = uc_jws_jwk(key, "k1");
    ck_assert_int_eq(uc_jws_key_from_jwk(jwk, &pub, NULL), 0);
    ck_assert_int_eq(uc_jws_sign(claims, pub, "k1", &tok), UC_EINVAL);
    ck_assert_int_eq(uc_jws_sign(claims, key, "", &tok), UC_EINVAL);
    ck_assert_int_eq(uc_jws_sign(claims, key, NULL, &tok), UC_EINVAL);
    ck_assert_int_eq(uc_jws_sign(claims, key, "a b", &tok), UC_EINVAL);
    ck_assert_int_eq(uc_jws_sign(claims, key, "k\n", &tok), UC_EINVAL);
    char longkid[UC_JWS_KID_MAX + 2];
    memset(longkid, 'k', sizeof(longkid) - 1);
    longkid[sizeof(longkid) - 1] = '\0';
    ck_assert_int_eq(uc_jws_sign(claims, key, longkid, &tok), UC_EINVAL);
    longkid[UC_JWS_KID_MAX] = '\0'; /* 63 chars: fine */
    json_t *arr = json_array();
    ck_assert_int_eq(uc_jws_sign(arr, key, "k1", &tok), UC_EINVAL);
    ck_assert_str_eq(tok, "untouched");
    ck_assert_int_eq(uc_jws_sign(claims, key, longkid, &tok), 0);
    uc_free(tok);
    json_decref(arr);
    json_decref(jwk);
    uc_crypto_key_destroy(pub);
}
END_TEST

START_TEST(sign_refuses_payloads_that_make_tokens_over_8k)
{
    char big[UC_JWS_MAX_LEN];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_t *p = json_pack("{s:s}", "blob", big);
    char *tok = (char *)"untouched";
    ck_assert_int_eq(uc_jws_sign(p, key, "k1", &tok), UC_E2BIG);
    ck_assert_str_eq(tok, "untouched");
    json_decref(p);
}
END_TEST

/* ---- uc_jws_verify_sig ------------------------------------------------- */

START_TEST(verify_rejects_tampered_payload)
{
    char *tok = sign_claims();
    const char *evil = "{\"sub\":\"user-1\",\"project\":\"proj-b\",\"exp\":1700000000}";
    char *p = uc_b64url_encode(evil, strlen(evil));
    char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
    *d1 = '\0';
    char *forged = uc_asprintf("%s.%s%s", tok, p, d2);
    char err[UC_ERR_LEN] = "";
    ck_assert_int_eq(uc_jws_verify_sig(forged, key, err), UC_EUNAUTH);
    ck_assert_str_eq(err, "token: bad signature");
    uc_free(p);
    uc_free(forged);
    uc_free(tok);
}
END_TEST

START_TEST(verify_rejects_tampered_signature)
{
    char *tok = sign_claims();
    char *sig = strrchr(tok, '.') + 1;
    char err[UC_ERR_LEN] = "";
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(uc_jws_verify_sig(tok, key, err), UC_EUNAUTH);
    ck_assert_str_eq(err, "token: bad signature");
    sig[0] = '*';
    ck_assert_int_eq(uc_jws_verify_sig(tok, key, err), UC_EUNAUTH);
    ck_assert_str_eq(err, "token: signature is not base64url");
    uc_free(tok);
}
END_TEST

START_TEST(verify_rejects_signature_from_another_key)
{
    char *tok = sign_claims();
    char err[UC_ERR_LEN] = "";
    ck_assert_int_eq(uc_jws_verify_sig(tok, other, err), UC_EUNAUTH);
    uc_free(tok);
}
END_TEST

START_TEST(verify_rejects_malformed_shapes)
{
    char *tok = sign_claims();
    char *sig = strrchr(tok, '.') + 1;
    char *two = uc_strndup(tok, (size_t)(sig - 1 - tok));
    char *four = uc_asprintf("%s.%s", tok, sig);
    char *short_sig = uc_asprintf("%s.%s", two, "AAAA");
    const char *bad[] = {"", ".", "..", "a..c", two, four, short_sig};
    char err[UC_ERR_LEN];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(uc_jws_verify_sig(bad[i], key, err), UC_EUNAUTH);
    ck_assert_int_eq(uc_jws_verify_sig(NULL, key, err), UC_EUNAUTH);
    uc_free(two);
    uc_free(four);
    uc_free(short_sig);
    uc_free(tok);
}
END_TEST

/* ---- uc_jws_decode ----------------------------------------------------- */

START_TEST(decode_rejects_alg_other_than_eddsa)
{
    const char *pl = "{\"sub\":\"x\"}";
    expect_forged_rejected("{\"alg\":\"none\",\"kid\":\"k1\"}", pl, "alg must be EdDSA");
    expect_forged_rejected("{\"alg\":\"HS256\",\"kid\":\"k1\"}", pl, "alg must be EdDSA");
    expect_forged_rejected("{\"alg\":\"EdDSA \",\"kid\":\"k1\"}", pl, "alg must be EdDSA");
    expect_forged_rejected("{\"alg\":\"eddsa\",\"kid\":\"k1\"}", pl, "alg must be EdDSA");
    expect_forged_rejected("{\"alg\":\"ES256\",\"kid\":\"k1\"}", pl, "alg must be EdDSA");
    expect_forged_rejected("{\"alg\":[\"EdDSA\"],\"kid\":\"k1\"}", pl, "alg must be EdDSA");
    expect_forged_rejected("{\"kid\":\"k1\"}", pl, "alg must be EdDSA");
    expect_forged_rejected("{\"alg\":\"EdDSA\\u0000\",\"kid\":\"k1\"}", pl, "not valid JSON");
    expect_forged_rejected("{\"alg\":\"none\",\"alg\":\"EdDSA\",\"kid\":\"k1\"}", pl,
                           "not valid JSON"); /* duplicate keys */
    expect_forged_rejected("{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"crit\":[\"exp\"]}", pl, "crit");

    /* The classic "alg":"none" token with an empty signature. */
    const char *h = "{\"alg\":\"none\",\"kid\":\"k1\"}";
    char *h64 = uc_b64url_encode(h, strlen(h)), *p64 = uc_b64url_encode(pl, strlen(pl));
    char *none = uc_asprintf("%s.%s.", h64, p64);
    expect_decode_rejects(none, "empty part");
    char err[UC_ERR_LEN];
    ck_assert_int_eq(uc_jws_verify_sig(none, key, err), UC_EUNAUTH);
    uc_free(h64);
    uc_free(p64);
    uc_free(none);
}
END_TEST

START_TEST(decode_rejects_missing_or_bad_kid)
{
    const char *pl = "{\"sub\":\"x\"}";
    expect_forged_rejected("{\"alg\":\"EdDSA\"}", pl, "kid");
    expect_forged_rejected("{\"alg\":\"EdDSA\",\"kid\":7}", pl, "kid");
    expect_forged_rejected("{\"alg\":\"EdDSA\",\"kid\":\"\"}", pl, "kid");
    expect_forged_rejected("{\"alg\":\"EdDSA\",\"kid\":\"a\\nb\"}", pl, "kid");
}
END_TEST

START_TEST(decode_rejects_non_object_header_and_payload)
{
    const char *hd = "{\"alg\":\"EdDSA\",\"kid\":\"k1\"}";
    expect_forged_rejected("[\"EdDSA\"]", "{}", "header is not a JSON object");
    expect_forged_rejected("\"EdDSA\"", "{}", "header is not valid JSON");
    expect_forged_rejected("{\"alg\":", "{}", "header is not valid JSON");
    expect_forged_rejected(hd, "[1,2]", "payload is not a JSON object");
    expect_forged_rejected(hd, "42", "payload is not valid JSON");
    expect_forged_rejected(hd, "{\"sub\":", "payload is not valid JSON");
    expect_forged_rejected(hd, "{\"a\":1,\"a\":2}", "payload is not valid JSON");
}
END_TEST

START_TEST(decode_rejects_wrong_part_counts_and_bad_base64)
{
    char *tok = sign_claims();
    char *sig = strrchr(tok, '.') + 1;
    char *two = uc_strndup(tok, (size_t)(sig - 1 - tok));
    char *four = uc_asprintf("%s.%s", tok, sig);
    char *padded = uc_asprintf("%s=", tok);
    char *bad_char = uc_strdup(tok);
    bad_char[3] = '+';
    char *short_sig = uc_asprintf("%s.%s", two, "AAAA");
    expect_decode_rejects(two, "three");
    expect_decode_rejects(four, "three");
    expect_decode_rejects(NULL, "missing");
    expect_decode_rejects("", "three");
    expect_decode_rejects("..", "empty part");
    expect_decode_rejects("a..c", "empty part");
    expect_decode_rejects(padded, "signature is not base64url");
    expect_decode_rejects(bad_char, "header is not base64url");
    expect_decode_rejects(short_sig, "signature is not 64 bytes");
    uc_free(two);
    uc_free(four);
    uc_free(padded);
    uc_free(bad_char);
    uc_free(short_sig);
    uc_free(tok);
}
END_TEST

START_TEST(decode_rejects_tokens_over_8k)
{
    char big[UC_JWS_MAX_LEN + 2];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[100] = big[200] = '.';
    expect_decode_rejects(big, "longer than");
    char err[UC_ERR_LEN];
    ck_assert_int_eq(uc_jws_verify_sig(big, key, err), UC_EUNAUTH);
}
END_TEST

/* ---- JWK --------------------------------------------------------------- */

START_TEST(jwk_has_rfc8037_fields_and_round_trips)
{
    json_t *jwk = uc_jws_jwk(key, "k1");
    ck_assert_ptr_nonnull(jwk);
    ck_assert_str_eq(json_string_value(json_object_get(jwk, "kty")), "OKP");
    ck_assert_str_eq(json_string_value(json_object_get(jwk, "crv")), "Ed25519");
    ck_assert_str_eq(json_string_value(json_object_get(jwk, "x")), X_B64);
    ck_assert_str_eq(json_string_value(json_object_get(jwk, "kid")), "k1");
    ck_assert_str_eq(json_string_value(json_object_get(jwk, "alg")), "EdDSA");
    ck_assert_str_eq(json_string_value(json_object_get(jwk, "use")), "sig");
    ck_assert_ptr_null(json_object_get(jwk, "d"));

    struct uc_crypto_key *pub = NULL;
    char err[UC_ERR_LEN] = "";
    ck_assert_int_eq(uc_jws_key_from_jwk(jwk, &pub, err), 0);
    ck_assert(!uc_crypto_key_is_private(pub));
    char *tok = sign_claims();
    ck_assert_int_eq(uc_jws_verify_sig(tok, pub, err), 0);
    uc_crypto_key_destroy(pub);
    ck_assert_ptr_null(uc_jws_jwk(key, ""));
    uc_free(tok);
    json_decref(jwk);
}
END_TEST

START_TEST(key_from_jwk_rejects_other_key_types_and_bad_x)
{
    const char *bad[] = {
        "{\"kty\":\"EC\",\"crv\":\"Ed25519\",\"x\":\"%s\"}",
        "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"%s\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"%s\"}",
        "{\"crv\":\"Ed25519\",\"x\":\"%s\"}",
        "{\"kty\":\"OKP\",\"x\":\"%s\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%sAA\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%.40s\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s=\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"y\":\"%s\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"alg\":\"HS256\"}",
        "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"use\":\"enc\"}",
        "[\"%s\"]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), bad[i], X_B64);
        json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(j);
        struct uc_crypto_key *k = (struct uc_crypto_key *)"sentinel";
        char err[UC_ERR_LEN] = "";
        ck_assert_msg(uc_jws_key_from_jwk(j, &k, err) == UC_EINVAL, "accepted %s", text);
        ck_assert_ptr_null(k);
        ck_assert_str_ne(err, "");
        json_decref(j);
    }
    json_t *x = json_pack("{s:s,s:s,s:i}", "kty", "OKP", "crv", "Ed25519", "x", 5);
    struct uc_crypto_key *k = NULL;
    ck_assert_int_eq(uc_jws_key_from_jwk(x, &k, NULL), UC_EINVAL);
    json_decref(x);
}
END_TEST

/* ---- out of memory ----------------------------------------------------- */

#define MAX_ALLOCS 200

START_TEST(every_allocation_failure_in_sign_is_enomem)
{
    long n = 0;
    for (;; n++) {
        ck_assert_int_lt(n, MAX_ALLOCS);
        char *tok = (char *)"untouched";
        uc_alloc_fail_after(n);
        int rc = uc_jws_sign(claims, key, "k1", &tok);
        uc_alloc_fail_after(-1);
        if (rc == 0) {
            ck_assert_int_eq(uc_jws_verify_sig(tok, key, NULL), 0);
            uc_free(tok);
            break;
        }
        ck_assert_int_eq(rc, UC_ENOMEM);
        ck_assert_str_eq(tok, "untouched");
    }
    ck_assert_int_gt(n, 5);
}
END_TEST

/* decode may also answer UC_EUNAUTH (see uc/jws.h); it must never leak,
 * crash or succeed with half a result. */
START_TEST(every_allocation_failure_in_decode_verify_and_jwk_fails_cleanly)
{
    char *tok = sign_claims();
    long n = 0;
    for (;; n++) {
        ck_assert_int_lt(n, MAX_ALLOCS);
        json_t *h = NULL, *p = NULL, *jwk = NULL;
        const char *kid = NULL;
        struct uc_crypto_key *pub = NULL;
        uc_alloc_fail_after(n);
        int rc = uc_jws_decode(tok, &h, &p, &kid, NULL);
        /* jansson reports some allocation failures as syntax errors. */
        if (rc == UC_EUNAUTH)
            rc = UC_ENOMEM;
        else if (rc == 0)
            rc = uc_jws_verify_sig(tok, key, NULL);
        if (rc == 0 && !(jwk = uc_jws_jwk(key, "k1")))
            rc = UC_ENOMEM;
        if (rc == 0)
            rc = uc_jws_key_from_jwk(jwk, &pub, NULL);
        uc_alloc_fail_after(-1);
        json_decref(h);
        json_decref(p);
        json_decref(jwk);
        uc_crypto_key_destroy(pub);
        if (rc == 0)
            break;
        ck_assert_int_eq(rc, UC_ENOMEM);
    }
    ck_assert_int_gt(n, 5);
    uc_free(tok);
}
END_TEST

int main(void)
{
    uc_alloc_install_jansson(); /* so out-of-memory tests reach jansson too */
    Suite *s = suite_create("jws");
    struct {
        const char *name;
        const TTest *tests[8];
    } cases[] = {
        {"sign",
         {sign_then_decode_and_verify_round_trips,
          sign_writes_compact_sorted_header_and_is_deterministic,
          sign_refuses_public_keys_bad_kids_and_non_objects,
          sign_refuses_payloads_that_make_tokens_over_8k}},
        {"verify_sig",
         {verify_rejects_tampered_payload, verify_rejects_tampered_signature,
          verify_rejects_signature_from_another_key, verify_rejects_malformed_shapes}},
        {"decode",
         {decode_rejects_alg_other_than_eddsa, decode_rejects_missing_or_bad_kid,
          decode_rejects_non_object_header_and_payload,
          decode_rejects_wrong_part_counts_and_bad_base64, decode_rejects_tokens_over_8k}},
        {"jwk",
         {jwk_has_rfc8037_fields_and_round_trips, key_from_jwk_rejects_other_key_types_and_bad_x}},
        {"out_of_memory",
         {every_allocation_failure_in_sign_is_enomem,
          every_allocation_failure_in_decode_verify_and_jwk_fails_cleanly}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        for (size_t j = 0; j < 8 && cases[i].tests[j]; j++)
            tcase_add_test(tc, cases[i].tests[j]);
        suite_add_tcase(s, tc);
    }
    return uc_check_run(s);
}
