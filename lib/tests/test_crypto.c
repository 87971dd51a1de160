/* test_crypto.c - crypto.c against published known-answer vectors (FIPS
 * 180-2, RFC 4231, RFC 4648, RFC 7914, RFC 8032), plus tamper, rejection
 * and out-of-memory cases. */
#include <check.h>

#include "uc_check.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "uc/alloc.h"
#include "uc/crypto.h"

/* RFC 8032 section 7.1, TEST 1 and TEST 2. */
static const char *T1_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char *T1_PUB = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
static const char *T1_SIG = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8"
                            "821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
static const char *T2_SEED = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
static const char *T2_PUB = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
static const char *T2_SIG = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085a"
                            "c1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

/* Parse lowercase hex into out (room for strlen(hex)/2 bytes). */
static void unhex(const char *hex, uint8_t *out)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        char byte[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        out[i] = (uint8_t)strtoul(byte, NULL, 16);
    }
}

static char hexbuf[2 * 1024 + 1];
static const char *hex(const void *p, size_t n)
{
    uc_hex_encode(p, n, hexbuf);
    return hexbuf;
}

static void reset_alloc(void) { uc_alloc_fail_after(-1); }

/* ---- random ------------------------------------------------------------ */

START_TEST(random_fills_buffers_differently_each_call)
{
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    ck_assert_int_eq(uc_crypto_random(a, sizeof(a)), 0);
    ck_assert_int_eq(uc_crypto_random(b, sizeof(b)), 0);
    ck_assert(memcmp(a, zero, sizeof(a)) != 0);
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
    ck_assert_int_eq(uc_crypto_random(a, 0), 0);
}
END_TEST

START_TEST(random_id_is_prefix_dash_and_20_base32_chars)
{
    char id[UC_ID_LEN];
    ck_assert_int_eq(uc_crypto_random_id("proj", id), 0);
    ck_assert_uint_eq(strlen(id), 4 + 1 + 20);
    ck_assert(strncmp(id, "proj-", 5) == 0);
    for (size_t i = 5; i < strlen(id); i++)
        ck_assert_msg(strchr("abcdefghijklmnopqrstuvwxyz234567", id[i]) != NULL, "bad char in %s",
                      id);
    ck_assert_int_eq(uc_crypto_random_id("abcdefghijklmnopqrstuvwx", id), 0); /* 24 chars */
    ck_assert_uint_eq(strlen(id), 24 + 1 + 20);
}
END_TEST

static int cmp_ids(const void *a, const void *b) { return strcmp(a, b); }

START_TEST(random_ids_do_not_repeat)
{
    enum { N = 2000 };
    static char ids[N][UC_ID_LEN];
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(uc_crypto_random_id("vm", ids[i]), 0);
    qsort(ids, N, UC_ID_LEN, cmp_ids);
    for (int i = 1; i < N; i++)
        ck_assert_str_ne(ids[i - 1], ids[i]);
}
END_TEST

START_TEST(random_id_rejects_bad_prefixes)
{
    const char *bad[] = {"", "Proj", "a-b", "a_b", "a b", "abcdefghijklmnopqrstuvwxy", "é"};
    char id[UC_ID_LEN] = "x";
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(uc_crypto_random_id(bad[i], id), UC_EINVAL);
        ck_assert_str_eq(id, "");
    }
    ck_assert_int_eq(uc_crypto_random_id(NULL, id), UC_EINVAL);
}
END_TEST

/* ---- digests ----------------------------------------------------------- */

START_TEST(sha256_matches_fips_180_vectors)
{
    uint8_t d[UC_SHA256_LEN];
    ck_assert_int_eq(uc_crypto_sha256("abc", 3, d), 0);
    ck_assert_str_eq(hex(d, sizeof(d)),
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_int_eq(uc_crypto_sha256(NULL, 0, d), 0);
    ck_assert_str_eq(hex(d, sizeof(d)),
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(hmac_matches_rfc4231_test_cases_1_and_2)
{
    uint8_t mac[UC_SHA256_LEN], key1[20];
    memset(key1, 0x0b, sizeof(key1));
    ck_assert_int_eq(uc_crypto_hmac_sha256(key1, sizeof(key1), "Hi There", 8, mac), 0);
    ck_assert_str_eq(hex(mac, sizeof(mac)),
                     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    const char *data = "what do ya want for nothing?";
    ck_assert_int_eq(uc_crypto_hmac_sha256("Jefe", 4, data, strlen(data), mac), 0);
    ck_assert_str_eq(hex(mac, sizeof(mac)),
                     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}
END_TEST

START_TEST(hmac_accepts_empty_key_and_message)
{
    uint8_t mac[UC_SHA256_LEN];
    ck_assert_int_eq(uc_crypto_hmac_sha256(NULL, 0, NULL, 0, mac), 0);
    ck_assert_str_eq(hex(mac, sizeof(mac)),
                     "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}
END_TEST

/* Threads that race to the first use all get the right digests (when Check
 * forks, each test runs in a fresh process, so the once-only fetch happens
 * here; with CK_FORK=no an earlier test did it). */
static void *hash_many(void *arg)
{
    atomic_int *wrong = arg;
    uint8_t d[UC_SHA256_LEN], mac[UC_SHA256_LEN];
    static const uint8_t abc[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea};
    static const uint8_t jefe[] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e};
    const char *data = "what do ya want for nothing?";
    for (int i = 0; i < 200; i++) {
        if (uc_crypto_sha256("abc", 3, d) != 0 || memcmp(d, abc, sizeof(abc)) != 0)
            atomic_fetch_add(wrong, 1);
        if (uc_crypto_hmac_sha256("Jefe", 4, data, strlen(data), mac) != 0 ||
            memcmp(mac, jefe, sizeof(jefe)) != 0)
            atomic_fetch_add(wrong, 1);
    }
    return NULL;
}

START_TEST(digests_are_right_when_threads_race_to_first_use)
{
    atomic_int wrong;
    atomic_init(&wrong, 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hash_many, &wrong), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_int_eq(atomic_load(&wrong), 0);
}
END_TEST

/* ---- compare, wipe, hex ------------------------------------------------ */

START_TEST(memeq_and_streq_compare_exactly)
{
    ck_assert(uc_crypto_memeq("abc", "abc", 3));
    ck_assert(!uc_crypto_memeq("abc", "abd", 3));
    ck_assert(uc_crypto_memeq("x", "y", 0));
    ck_assert(uc_crypto_streq("token", "token"));
    ck_assert(!uc_crypto_streq("token", "tokeN"));
    ck_assert(!uc_crypto_streq("token", "token2"));
    ck_assert(!uc_crypto_streq("", "a"));
    ck_assert(uc_crypto_streq("", ""));
    ck_assert(!uc_crypto_streq(NULL, "a"));
    ck_assert(!uc_crypto_streq(NULL, NULL));
}
END_TEST

START_TEST(wipe_zeroes_and_hex_encodes_lowercase)
{
    uint8_t buf[8] = {1, 2, 3, 4, 5, 6, 7, 8}, zero[8] = {0};
    uc_crypto_wipe(buf, sizeof(buf));
    ck_assert(memcmp(buf, zero, sizeof(buf)) == 0);
    uc_crypto_wipe(NULL, 0);
    char out[9];
    uc_hex_encode("\x00\xab\xff\x10", 4, out);
    ck_assert_str_eq(out, "00abff10");
    uc_hex_encode("", 0, out);
    ck_assert_str_eq(out, "");
}
END_TEST

/* ---- base64 ------------------------------------------------------------ */

static const char *b64_plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *b64_std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
static const char *b64_url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};

START_TEST(b64_round_trips_rfc4648_vectors)
{
    for (int i = 0; i < 7; i++) {
        char *e = uc_b64_encode(b64_plain[i], strlen(b64_plain[i]));
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(e, b64_std[i]);
        uc_free(e);
        uint8_t *d = NULL;
        size_t n = 99;
        ck_assert_int_eq(uc_b64_decode(b64_std[i], strlen(b64_std[i]), &d, &n), 0);
        ck_assert_uint_eq(n, strlen(b64_plain[i]));
        ck_assert_str_eq((char *)d, b64_plain[i]); /* decoder NUL-terminates */
        uc_free(d);
    }
    char *e = uc_b64_encode("\xfb\xff\xbf", 3);
    ck_assert_str_eq(e, "+/+/");
    uc_free(e);
}
END_TEST

START_TEST(b64url_round_trips_rfc4648_vectors_without_padding)
{
    for (int i = 0; i < 7; i++) {
        char *e = uc_b64url_encode(b64_plain[i], strlen(b64_plain[i]));
        ck_assert_ptr_nonnull(e);
        ck_assert_str_eq(e, b64_url[i]);
        uc_free(e);
        uint8_t *d = NULL;
        size_t n = 99;
        ck_assert_int_eq(uc_b64url_decode(b64_url[i], strlen(b64_url[i]), &d, &n), 0);
        ck_assert_uint_eq(n, strlen(b64_plain[i]));
        ck_assert(memcmp(d, b64_plain[i], n) == 0);
        uc_free(d);
    }
    char *e = uc_b64url_encode("\xfb\xff\xbf", 3);
    ck_assert_str_eq(e, "-_-_");
    uc_free(e);
}
END_TEST

/* Every string in `bad` must be refused with UC_EINVAL, outputs untouched. */
static void expect_rejected(int (*dec)(const char *, size_t, uint8_t **, size_t *),
                            const char *const *bad, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint8_t *d = (uint8_t *)"sentinel";
        size_t n = 77;
        ck_assert_msg(dec(bad[i], strlen(bad[i]), &d, &n) == UC_EINVAL, "accepted \"%s\"", bad[i]);
        ck_assert_str_eq((char *)d, "sentinel");
        ck_assert_uint_eq(n, 77);
    }
}

START_TEST(b64_rejects_bad_alphabet_padding_and_length)
{
    static const char *const bad[] = {
        "Zg",       /* missing padding */
        "Zg=",      /* length not a multiple of 4 */
        "Z===",     /* three padding chars */
        "====",     /* only padding */
        "Zg==Zg==", /* padding in the middle */
        "Zm9v!A==", /* bad character */
        "Zm9-",     /* url alphabet */
        "Zh==",     /* non-zero unused bits */
        "Zm9=",     /* non-zero unused bits */
        "Zm 9v",    /* whitespace */
        "Zm9vY",    /* impossible length */
    };
    expect_rejected(uc_b64_decode, bad, sizeof(bad) / sizeof(bad[0]));
    uint8_t *d = NULL;
    size_t n = 0;
    ck_assert_int_eq(uc_b64_decode("Zm\0v", 4, &d, &n), UC_EINVAL); /* embedded NUL */
}
END_TEST

START_TEST(b64url_rejects_padding_bad_alphabet_and_length)
{
    static const char *const bad[] = {
        "Zg==",             /* padding */
        "Zg=",              /* padding */
        "Z",                /* impossible length */
        "Zm9vY",  "Zm9v+A", /* std alphabet */
        "Zm9v/A",           /* std alphabet */
        "Zh",               /* non-zero unused bits */
        "Zm9",              /* non-zero unused bits */
        "Zm.v",             /* dot */
    };
    expect_rejected(uc_b64url_decode, bad, sizeof(bad) / sizeof(bad[0]));
}
END_TEST

/* ---- Ed25519 ----------------------------------------------------------- */

START_TEST(ed25519_signs_rfc8032_test_1_and_2)
{
    uint8_t seed[32], pub[32], sig[64], msg = 0x72;
    struct uc_crypto_key *k = NULL;
    char err[UC_ERR_LEN];

    unhex(T1_SEED, seed);
    ck_assert_int_eq(uc_crypto_ed25519_from_seed(&k, seed, err), 0);
    ck_assert(uc_crypto_key_is_private(k));
    ck_assert_int_eq(uc_crypto_ed25519_public(k, pub), 0);
    ck_assert_str_eq(hex(pub, 32), T1_PUB);
    ck_assert_int_eq(uc_crypto_ed25519_sign(k, NULL, 0, sig), 0);
    ck_assert_str_eq(hex(sig, 64), T1_SIG);
    ck_assert_int_eq(uc_crypto_ed25519_verify(k, "", 0, sig), 0);
    uc_crypto_key_destroy(k);

    unhex(T2_SEED, seed);
    ck_assert_int_eq(uc_crypto_ed25519_from_seed(&k, seed, err), 0);
    ck_assert_int_eq(uc_crypto_ed25519_sign(k, &msg, 1, sig), 0);
    ck_assert_str_eq(hex(sig, 64), T2_SIG);
    uc_crypto_key_destroy(k);
}
END_TEST

START_TEST(ed25519_public_key_verifies_rfc8032_test_2_and_rejects_changes)
{
    uint8_t pub[32], sig[64], msg = 0x72, other = 0x73;
    struct uc_crypto_key *k = NULL;
    char err[UC_ERR_LEN];
    unhex(T2_PUB, pub);
    unhex(T2_SIG, sig);
    ck_assert_int_eq(uc_crypto_ed25519_from_public(&k, pub, err), 0);
    ck_assert(!uc_crypto_key_is_private(k));
    ck_assert_int_eq(uc_crypto_ed25519_verify(k, &msg, 1, sig), 0);
    ck_assert_int_eq(uc_crypto_ed25519_verify(k, &other, 1, sig), UC_EUNAUTH);
    sig[10] ^= 0x01;
    ck_assert_int_eq(uc_crypto_ed25519_verify(k, &msg, 1, sig), UC_EUNAUTH);
    ck_assert_int_eq(uc_crypto_ed25519_sign(k, &msg, 1, sig), UC_EINVAL); /* public only */
    uc_crypto_key_destroy(k);
    uc_crypto_key_destroy(NULL);
}
END_TEST

START_TEST(ed25519_generated_keys_differ_and_sign_verifiably)
{
    struct uc_crypto_key *a = NULL, *b = NULL;
    uint8_t pa[32], pb[32], sig[64];
    ck_assert_int_eq(uc_crypto_ed25519_generate(&a, NULL), 0);
    ck_assert_int_eq(uc_crypto_ed25519_generate(&b, NULL), 0);
    ck_assert_int_eq(uc_crypto_ed25519_public(a, pa), 0);
    ck_assert_int_eq(uc_crypto_ed25519_public(b, pb), 0);
    ck_assert(memcmp(pa, pb, 32) != 0);
    ck_assert_int_eq(uc_crypto_ed25519_sign(a, "hello", 5, sig), 0);
    ck_assert_int_eq(uc_crypto_ed25519_verify(a, "hello", 5, sig), 0);
    ck_assert_int_eq(uc_crypto_ed25519_verify(b, "hello", 5, sig), UC_EUNAUTH);
    uc_crypto_key_destroy(a);
    uc_crypto_key_destroy(b);
}
END_TEST

START_TEST(ed25519_pem_round_trip_keeps_the_key)
{
    uint8_t seed[32], pub[32], sig1[64], sig2[64];
    struct uc_crypto_key *k = NULL, *k2 = NULL;
    char err[UC_ERR_LEN], *pem = NULL;
    unhex(T1_SEED, seed);
    ck_assert_int_eq(uc_crypto_ed25519_from_seed(&k, seed, err), 0);
    ck_assert_int_eq(uc_crypto_ed25519_to_pem(k, &pem, err), 0);
    ck_assert(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
    ck_assert_int_eq(uc_crypto_ed25519_from_pem(&k2, pem, strlen(pem), err), 0);
    ck_assert(uc_crypto_key_is_private(k2));
    ck_assert_int_eq(uc_crypto_ed25519_public(k2, pub), 0);
    ck_assert_str_eq(hex(pub, 32), T1_PUB);
    ck_assert_int_eq(uc_crypto_ed25519_sign(k, "m", 1, sig1), 0);
    ck_assert_int_eq(uc_crypto_ed25519_sign(k2, "m", 1, sig2), 0);
    ck_assert(memcmp(sig1, sig2, 64) == 0);
    uc_crypto_wipe(pem, strlen(pem));
    uc_free(pem);
    uc_crypto_key_destroy(k);
    uc_crypto_key_destroy(k2);
}
END_TEST

/* PKCS#8 PEM of a freshly generated key of another type, optionally
 * encrypted with passphrase "pw". Caller frees with free(). */
static char *foreign_pem(const char *type, const char *param, bool encrypted)
{
    EVP_PKEY *pkey =
        param ? EVP_PKEY_Q_keygen(NULL, NULL, type, param) : EVP_PKEY_Q_keygen(NULL, NULL, type);
    ck_assert_ptr_nonnull(pkey);
    BIO *bio = BIO_new(BIO_s_mem());
    ck_assert_ptr_nonnull(bio);
    const EVP_CIPHER *c = encrypted ? EVP_aes_256_cbc() : NULL;
    ck_assert_int_eq(
        PEM_write_bio_PKCS8PrivateKey(bio, pkey, c, "pw", encrypted ? 2 : 0, NULL, NULL), 1);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    ck_assert_int_gt(n, 0);
    char *out = strndup(data, (size_t)n);
    ck_assert_ptr_nonnull(out);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    return out;
}

START_TEST(ed25519_from_pem_rejects_other_keys_and_garbage)
{
    struct uc_crypto_key *k = (struct uc_crypto_key *)"sentinel";
    char err[UC_ERR_LEN] = "";
    const char *junk = "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n";
    ck_assert_int_eq(uc_crypto_ed25519_from_pem(&k, junk, strlen(junk), err), UC_EINVAL);
    ck_assert_ptr_null(k);
    ck_assert_int_eq(uc_crypto_ed25519_from_pem(&k, "", 0, err), UC_EINVAL);

    char *ec = foreign_pem("EC", "P-256", false);
    ck_assert_int_eq(uc_crypto_ed25519_from_pem(&k, ec, strlen(ec), err), UC_EINVAL);
    ck_assert_msg(strstr(err, "not ED25519") != NULL, "err: %s", err);
    free(ec);
    char *x = foreign_pem("X25519", NULL, false);
    ck_assert_int_eq(uc_crypto_ed25519_from_pem(&k, x, strlen(x), err), UC_EINVAL);
    free(x);
    char *enc = foreign_pem("ED25519", NULL, true); /* must fail, not prompt */
    ck_assert_int_eq(uc_crypto_ed25519_from_pem(&k, enc, strlen(enc), err), UC_EINVAL);
    ck_assert_ptr_null(k);
    free(enc);
}
END_TEST

START_TEST(ed25519_to_pem_refuses_public_keys)
{
    uint8_t pub[32];
    struct uc_crypto_key *k = NULL;
    char err[UC_ERR_LEN], *pem = (char *)"untouched";
    unhex(T1_PUB, pub);
    ck_assert_int_eq(uc_crypto_ed25519_from_public(&k, pub, err), 0);
    ck_assert_int_eq(uc_crypto_ed25519_to_pem(k, &pem, err), UC_EINVAL);
    ck_assert_str_eq(pem, "untouched");
    uc_crypto_key_destroy(k);
}
END_TEST

/* ---- AES-256-GCM ------------------------------------------------------- */

static uint8_t aes_key[UC_AES_KEY_LEN];
static const char *secret = "the database password";

static void seal_secret(uint8_t **sealed, size_t *n)
{
    memset(aes_key, 0x42, sizeof(aes_key));
    ck_assert_int_eq(uc_crypto_seal(aes_key, "ctx", 3, secret, strlen(secret), sealed, n), 0);
    ck_assert_uint_eq(*n, 12 + strlen(secret) + 16);
}

static int open_sealed(const uint8_t *sealed, size_t n, const char *aad)
{
    uint8_t *out = NULL;
    size_t outlen = 0;
    int rc = uc_crypto_open(aes_key, aad, aad ? strlen(aad) : 0, sealed, n, &out, &outlen);
    if (rc == 0) {
        ck_assert_uint_eq(outlen, strlen(secret));
        ck_assert_str_eq((char *)out, secret);
        uc_free(out);
    } else {
        ck_assert_ptr_null(out);
    }
    return rc;
}

START_TEST(seal_then_open_returns_the_plaintext)
{
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    seal_secret(&a, &na);
    seal_secret(&b, &nb);
    ck_assert(memcmp(a, b, na) != 0); /* fresh nonce each time */
    ck_assert_int_eq(open_sealed(a, na, "ctx"), 0);
    ck_assert_int_eq(open_sealed(b, nb, "ctx"), 0);
    uc_free(a);
    uc_free(b);

    uint8_t *s = NULL, *p = NULL;
    size_t ns = 0, np = 9;
    ck_assert_int_eq(uc_crypto_seal(aes_key, NULL, 0, "", 0, &s, &ns), 0);
    ck_assert_uint_eq(ns, 28);
    ck_assert_int_eq(uc_crypto_open(aes_key, NULL, 0, s, ns, &p, &np), 0);
    ck_assert_uint_eq(np, 0);
    ck_assert_str_eq((char *)p, "");
    uc_free(s);
    uc_free(p);
}
END_TEST

START_TEST(open_detects_tampering_wrong_key_and_truncation)
{
    uint8_t *s = NULL;
    size_t n = 0;
    seal_secret(&s, &n);
    size_t where[] = {0, 12, n - 17, n - 16, n - 1}; /* nonce, ciphertext, tag */
    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        s[where[i]] ^= 0x01;
        ck_assert_int_eq(open_sealed(s, n, "ctx"), UC_EUNAUTH);
        s[where[i]] ^= 0x01;
    }
    ck_assert_int_eq(open_sealed(s, n, "ctY"), UC_EUNAUTH);
    ck_assert_int_eq(open_sealed(s, n, NULL), UC_EUNAUTH);
    ck_assert_int_eq(open_sealed(s, n - 1, "ctx"), UC_EUNAUTH);
    ck_assert_int_eq(open_sealed(s, 27, "ctx"), UC_EUNAUTH);
    ck_assert_int_eq(open_sealed(s, 0, "ctx"), UC_EUNAUTH);
    aes_key[0] ^= 1;
    ck_assert_int_eq(open_sealed(s, n, "ctx"), UC_EUNAUTH);
    aes_key[0] ^= 1;
    ck_assert_int_eq(open_sealed(s, n, "ctx"), 0);
    uc_free(s);
}
END_TEST

/* ---- scrypt and password hashes ---------------------------------------- */

START_TEST(scrypt_matches_rfc7914_vectors)
{
    uint8_t dk[64];
    ck_assert_int_eq(uc_crypto_scrypt("password", 8, "NaCl", 4, 10, 8, 16, dk, 64), 0);
    ck_assert_str_eq(hex(dk, 64), "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731"
                                  "622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc"
                                  "0640");
    ck_assert_int_eq(uc_crypto_scrypt("", 0, "", 0, 4, 1, 1, dk, 64), 0);
    ck_assert_str_eq(hex(dk, 64), "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede214"
                                  "42fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d1"
                                  "8906");
}
END_TEST

START_TEST(scrypt_rejects_parameters_out_of_bounds)
{
    uint8_t dk[32];
    ck_assert_int_eq(uc_crypto_scrypt("pw", 2, "salt", 4, 0, 8, 1, dk, 32), UC_EINVAL);
    ck_assert_int_eq(uc_crypto_scrypt("pw", 2, "salt", 4, 21, 8, 1, dk, 32), UC_EINVAL);
    ck_assert_int_eq(uc_crypto_scrypt("pw", 2, "salt", 4, 10, 0, 1, dk, 32), UC_EINVAL);
    ck_assert_int_eq(uc_crypto_scrypt("pw", 2, "salt", 4, 10, 17, 1, dk, 32), UC_EINVAL);
    ck_assert_int_eq(uc_crypto_scrypt("pw", 2, "salt", 4, 10, 8, 17, dk, 32), UC_EINVAL);
    ck_assert_int_eq(uc_crypto_scrypt("pw", 2, "salt", 4, 10, 8, 1, dk, 0), UC_EINVAL);
}
END_TEST

START_TEST(password_hash_verifies_right_password_only)
{
    char *a = NULL, *b = NULL;
    ck_assert_int_eq(uc_crypto_password_hash("correct horse", 10, &a), 0);
    ck_assert_int_eq(uc_crypto_password_hash("correct horse", 10, &b), 0);
    ck_assert(strncmp(a, "scrypt$10$8$1$", 14) == 0);
    ck_assert_uint_eq(strlen(a), 14 + 22 + 1 + 43); /* 16-byte salt, 32-byte hash */
    ck_assert_str_ne(a, b);                         /* fresh salt each time */
    ck_assert_int_eq(uc_crypto_password_verify("correct horse", a), 0);
    ck_assert_int_eq(uc_crypto_password_verify("correct horse", b), 0);
    ck_assert_int_eq(uc_crypto_password_verify("correct horsE", a), UC_EUNAUTH);
    ck_assert_int_eq(uc_crypto_password_verify("", a), UC_EUNAUTH);
    ck_assert_int_eq(uc_crypto_password_verify(NULL, a), UC_EINVAL);
    uc_free(a);
    uc_free(b);
}
END_TEST

START_TEST(password_hash_uses_logn_15_by_default_and_checks_logn)
{
    char *e = NULL;
    ck_assert_int_eq(uc_crypto_password_hash("pw", 0, &e), 0);
    ck_assert(strncmp(e, "scrypt$15$8$1$", 14) == 0);
    ck_assert_int_eq(uc_crypto_password_verify("pw", e), 0);
    uc_free(e);
    e = (char *)"untouched";
    ck_assert_int_eq(uc_crypto_password_hash("pw", 9, &e), UC_EINVAL);
    ck_assert_int_eq(uc_crypto_password_hash("pw", 21, &e), UC_EINVAL);
    ck_assert_int_eq(uc_crypto_password_hash(NULL, 10, &e), UC_EINVAL);
    ck_assert_str_eq(e, "untouched");
}
END_TEST

START_TEST(password_verify_rejects_malformed_encodings)
{
    /* A valid encoding of "pw" at logN 10, salt "saltsaltsaltsalt". */
    uint8_t hash[32];
    ck_assert_int_eq(uc_crypto_scrypt("pw", 2, "saltsaltsaltsalt", 16, 10, 8, 1, hash, 32), 0);
    char *h64 = uc_b64url_encode(hash, 32);
    char good[256];
    snprintf(good, sizeof(good), "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdA$%s", h64);
    ck_assert_int_eq(uc_crypto_password_verify("pw", good), 0);

    const char *fmts[] = {
        "",
        "scrypt",
        "scrypt$",
        "bcrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdA$%s",
        "scrypt$9$8$1$c2FsdHNhbHRzYWx0c2FsdA$%s",           /* logN below 10 */
        "scrypt$21$8$1$c2FsdHNhbHRzYWx0c2FsdA$%s",          /* logN above 20 */
        "scrypt$010$8$1$c2FsdHNhbHRzYWx0c2FsdA$%s",         /* leading zero */
        "scrypt$+10$8$1$c2FsdHNhbHRzYWx0c2FsdA$%s",         /* sign */
        "scrypt$10$0$1$c2FsdHNhbHRzYWx0c2FsdA$%s",          /* r = 0 */
        "scrypt$10$17$1$c2FsdHNhbHRzYWx0c2FsdA$%s",         /* r > 16 */
        "scrypt$10$8$5$c2FsdHNhbHRzYWx0c2FsdA$%s",          /* p > 4 */
        "scrypt$10$8$$c2FsdHNhbHRzYWx0c2FsdA$%s",           /* empty p */
        "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdA==$%s",        /* padded salt */
        "scrypt$10$8$1$c2FsdA$%s",                          /* salt too short */
        "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdA",             /* no hash */
        "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdA$%s$",         /* trailing field */
        "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdA$%s$x",        /* extra field */
        "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdA$AAAA",        /* hash too short */
        "scrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdA$%s!",         /* bad character */
        "scrypt$99999999999$8$1$c2FsdHNhbHRzYWx0c2FsdA$%s", /* huge logN */
    };
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        char enc[300];
        snprintf(enc, sizeof(enc), fmts[i], h64);
        ck_assert_msg(uc_crypto_password_verify("pw", enc) == UC_EINVAL, "accepted %s", enc);
    }
    char huge[400];
    memset(huge, 'A', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    memcpy(huge, "scrypt$10$8$1$", 14);
    ck_assert_int_eq(uc_crypto_password_verify("pw", huge), UC_EINVAL);
    ck_assert_int_eq(uc_crypto_password_verify("pw", NULL), UC_EINVAL);
    uc_free(h64);
}
END_TEST

/* ---- out of memory ----------------------------------------------------- */

/* Call f with allocation n failing, for n = 0, 1, ... until it succeeds;
 * every failure before that must be a clean UC_ENOMEM. */
#define MAX_ALLOCS 64

START_TEST(every_allocation_failure_in_password_hash_is_enomem)
{
    long n = 0;
    for (;; n++) {
        ck_assert_int_lt(n, MAX_ALLOCS);
        char *e = (char *)"untouched";
        uc_alloc_fail_after(n);
        int rc = uc_crypto_password_hash("pw", 10, &e);
        uc_alloc_fail_after(-1);
        if (rc == 0) {
            ck_assert_int_eq(uc_crypto_password_verify("pw", e), 0);
            uc_free(e);
            break;
        }
        ck_assert_int_eq(rc, UC_ENOMEM);
        ck_assert_str_eq(e, "untouched");
    }
    ck_assert_int_gt(n, 0);
}
END_TEST

START_TEST(every_allocation_failure_in_seal_open_and_keys_is_enomem)
{
    long n = 0;
    for (;; n++) {
        ck_assert_int_lt(n, MAX_ALLOCS);
        uint8_t *s = NULL, *p = NULL;
        size_t ns = 0, np = 0;
        struct uc_crypto_key *k = NULL;
        char *pem = NULL;
        uc_alloc_fail_after(n);
        int rc = uc_crypto_seal(aes_key, NULL, 0, "x", 1, &s, &ns);
        if (rc == 0)
            rc = uc_crypto_open(aes_key, NULL, 0, s, ns, &p, &np);
        if (rc == 0)
            rc = uc_crypto_ed25519_generate(&k, NULL);
        if (rc == 0)
            rc = uc_crypto_ed25519_to_pem(k, &pem, NULL);
        uc_alloc_fail_after(-1);
        uc_free(s);
        uc_free(p);
        uc_free(pem);
        uc_crypto_key_destroy(k);
        if (rc == 0)
            break;
        ck_assert_int_eq(rc, UC_ENOMEM);
    }
    ck_assert_int_ge(n, 4);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crypto");
    struct {
        const char *name;
        const TTest *tests[8];
    } cases[] = {
        {"random",
         {random_fills_buffers_differently_each_call, random_id_is_prefix_dash_and_20_base32_chars,
          random_ids_do_not_repeat, random_id_rejects_bad_prefixes}},
        {"sha256", {sha256_matches_fips_180_vectors}},
        {"hmac_sha256",
         {hmac_matches_rfc4231_test_cases_1_and_2, hmac_accepts_empty_key_and_message,
          digests_are_right_when_threads_race_to_first_use}},
        {"compare", {memeq_and_streq_compare_exactly, wipe_zeroes_and_hex_encodes_lowercase}},
        {"b64",
         {b64_round_trips_rfc4648_vectors, b64url_round_trips_rfc4648_vectors_without_padding,
          b64_rejects_bad_alphabet_padding_and_length,
          b64url_rejects_padding_bad_alphabet_and_length}},
        {"ed25519",
         {ed25519_signs_rfc8032_test_1_and_2,
          ed25519_public_key_verifies_rfc8032_test_2_and_rejects_changes,
          ed25519_generated_keys_differ_and_sign_verifiably, ed25519_pem_round_trip_keeps_the_key,
          ed25519_from_pem_rejects_other_keys_and_garbage, ed25519_to_pem_refuses_public_keys}},
        {"seal_open",
         {seal_then_open_returns_the_plaintext, open_detects_tampering_wrong_key_and_truncation}},
        {"scrypt", {scrypt_matches_rfc7914_vectors, scrypt_rejects_parameters_out_of_bounds}},
        {"password",
         {password_hash_verifies_right_password_only,
          password_hash_uses_logn_15_by_default_and_checks_logn,
          password_verify_rejects_malformed_encodings}},
        {"out_of_memory",
         {every_allocation_failure_in_password_hash_is_enomem,
          every_allocation_failure_in_seal_open_and_keys_is_enomem}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, NULL, reset_alloc);
        tcase_set_timeout(tc, 60); /* scrypt at logN 15 under valgrind */
        for (size_t j = 0; j < 8 && cases[i].tests[j]; j++)
            tcase_add_test(tc, cases[i].tests[j]);
        suite_add_tcase(s, tc);
    }
    return uc_check_run(s);
}
