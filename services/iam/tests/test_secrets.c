/* test_secrets.c - reading the bootstrap token, the master key and the
 * signing key, and refusing anything of the wrong shape. */
#include <check.h>

#include "uc_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../secrets.h"
#include "uc/alloc.h"

static char dir[64], path[128];
static char err[UC_ERR_LEN];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/iam-secrets-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/secret", dir);
}

static void teardown(void)
{
    /* The file may not have been written by every test. */
    (void)unlink(path);
    ck_assert_int_eq(rmdir(dir), 0);
}

static const char *put(const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

#define TOKEN32 "abcdefghijklmnopqrstuvwxyz012345"

START_TEST(bootstrap_token_drops_one_newline)
{
    char *tok = NULL;
    ck_assert_int_eq(iam_secrets_bootstrap(put(TOKEN32 "\n", 33), &tok, err), 0);
    ck_assert_str_eq(tok, TOKEN32);
    uc_free(tok);
    ck_assert_int_eq(iam_secrets_bootstrap(put(TOKEN32, 32), &tok, err), 0);
    ck_assert_str_eq(tok, TOKEN32);
    uc_free(tok);
}
END_TEST

START_TEST(bootstrap_token_refuses_short_spaced_and_missing)
{
    char *tok = NULL;
    ck_assert_int_eq(iam_secrets_bootstrap(put("abcdefghijklmnopqrstuvwxyz01234\n", 32), &tok, err),
                     UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "at least 32 characters (it has 31)"));
    ck_assert_int_eq(iam_secrets_bootstrap(put(TOKEN32 " x", 34), &tok, err), UC_EINVAL);
    ck_assert_int_eq(iam_secrets_bootstrap(put(TOKEN32 "\n\n", 34), &tok, err), UC_EINVAL);
    ck_assert_int_eq(iam_secrets_bootstrap("/nonexistent/token", &tok, err), UC_ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "--bootstrap-token-file"));
    ck_assert_int_eq(iam_secrets_bootstrap(NULL, &tok, err), UC_EINVAL);
    ck_assert_ptr_null(tok);
}
END_TEST

#define HEX64 "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F"

static void assert_counting_key(const uint8_t key[UC_AES_KEY_LEN])
{
    for (int i = 0; i < UC_AES_KEY_LEN; i++)
        ck_assert_uint_eq(key[i], i);
}

START_TEST(master_key_reads_raw_bytes_or_hex)
{
    uint8_t raw[UC_AES_KEY_LEN + 1], key[UC_AES_KEY_LEN];
    for (int i = 0; i < UC_AES_KEY_LEN; i++)
        raw[i] = (uint8_t)i;
    ck_assert_int_eq(iam_secrets_master(put(raw, 32), NULL, key, err), 0);
    assert_counting_key(key);
    raw[32] = '\n';
    ck_assert_int_eq(iam_secrets_master(put(raw, 33), NULL, key, err), 0);
    assert_counting_key(key);
    ck_assert_int_eq(iam_secrets_master(put(HEX64 "\n", 65), NULL, key, err), 0);
    assert_counting_key(key);
    ck_assert_int_eq(iam_secrets_master(NULL, HEX64, key, err), 0);
    assert_counting_key(key);
}
END_TEST

START_TEST(master_key_of_the_wrong_length_refuses_to_start)
{
    uint8_t key[UC_AES_KEY_LEN];
    ck_assert_int_eq(iam_secrets_master(put("0123456789", 10), NULL, key, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "exactly 32 raw bytes or 64 hex digits"));
    ck_assert_int_eq(iam_secrets_master(put(HEX64 "00", 66), NULL, key, err), UC_EINVAL);
    ck_assert_int_eq(
        iam_secrets_master(
            put("zz0102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F", 64), NULL, key,
            err),
        UC_EINVAL);
    ck_assert_int_eq(iam_secrets_master(NULL, "abcd", key, err), UC_EINVAL);
    ck_assert_str_eq(err, "IAM_CRED_MASTER_KEY must be exactly 64 hex digits");
    ck_assert_int_eq(iam_secrets_master(NULL, NULL, key, err), UC_EINVAL);
    ck_assert_str_eq(err, "--cred-master-key-file or IAM_CRED_MASTER_KEY is required");
}
END_TEST

START_TEST(signing_key_must_be_an_ed25519_pem)
{
    struct uc_crypto_key *k = NULL, *back = NULL;
    char *pem = NULL;
    uint8_t a[UC_ED25519_PUB_LEN], b[UC_ED25519_PUB_LEN];
    ck_assert_int_eq(uc_crypto_ed25519_generate(&k, err), 0);
    ck_assert_int_eq(uc_crypto_ed25519_to_pem(k, &pem, err), 0);
    ck_assert_int_eq(iam_secrets_signing_key(put(pem, strlen(pem)), &back, err), 0);
    ck_assert_int_eq(uc_crypto_ed25519_public(k, a), 0);
    ck_assert_int_eq(uc_crypto_ed25519_public(back, b), 0);
    ck_assert_mem_eq(a, b, sizeof(a));
    uc_crypto_key_destroy(back);
    back = NULL;
    ck_assert_int_eq(iam_secrets_signing_key(put("not a key\n", 10), &back, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not an Ed25519 private key"));
    ck_assert_int_eq(iam_secrets_signing_key("/nonexistent/k.pem", &back, err), UC_ENOENT);
    ck_assert_ptr_null(back);
    uc_free(pem);
    uc_crypto_key_destroy(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("secrets");
    TCase *b = tcase_create("bootstrap");
    tcase_add_checked_fixture(b, setup, teardown);
    tcase_add_test(b, bootstrap_token_drops_one_newline);
    tcase_add_test(b, bootstrap_token_refuses_short_spaced_and_missing);
    suite_add_tcase(s, b);
    TCase *m = tcase_create("master");
    tcase_add_checked_fixture(m, setup, teardown);
    tcase_add_test(m, master_key_reads_raw_bytes_or_hex);
    tcase_add_test(m, master_key_of_the_wrong_length_refuses_to_start);
    suite_add_tcase(s, m);
    TCase *k = tcase_create("signing_key");
    tcase_add_checked_fixture(k, setup, teardown);
    tcase_add_test(k, signing_key_must_be_an_ed25519_pem);
    suite_add_tcase(s, k);
    return uc_check_run(s);
}
