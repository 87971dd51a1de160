/* test_store_token.c - the token iam signs for its own store: its claims,
 * the cache and its renewal, and which key signs it before and after the
 * keyring is loaded (the file key while the keyring verifies it). */
#include <check.h>
#include <string.h>

#include "../store_token.h"
#include "fixture.h"
#include "uc/jws.h"

static struct fx F;
static char err[UC_ERR_LEN];
static struct iam_store_token *T;

static void setup(void)
{
    fx_setup(&F);
    ck_assert_int_eq(iam_store_token_create(&T, F.key, &F.clock.clock, err), 0);
}

static void teardown(void)
{
    iam_store_token_destroy(T);
    fx_teardown(&F);
}

static void get(char tok[UC_STORE_TOKEN_LEN])
{
    ck_assert_msg(iam_store_token_get(T, tok, err) == 0, "%s", err);
}

/* The token's kid; its claims checked as any service would check them. */
static void verify(const char *tok, char kid[IAM_KID_LEN], struct uc_auth_claims *c)
{
    json_t *hdr = NULL, *pl = NULL;
    const char *k = NULL;
    ck_assert_int_eq(uc_jws_decode(tok, &hdr, &pl, &k, err), 0);
    snprintf(kid, IAM_KID_LEN, "%s", k);
    ck_assert_msg(
        uc_auth_claims_from_json(pl, uc_clock_wall_ms(&F.clock.clock) / 1000, 0, c, err) == 0, "%s",
        err);
    json_decref(hdr);
    json_decref(pl);
}

START_TEST(the_token_is_an_ordinary_iam_token_without_privileges)
{
    char tok[UC_STORE_TOKEN_LEN], kid[IAM_KID_LEN], file_kid[IAM_KID_LEN];
    struct uc_auth_claims c;
    get(tok);
    verify(tok, kid, &c);
    ck_assert_int_eq(iam_keyring_kid(F.key, file_kid), 0);
    ck_assert_str_eq(kid, file_kid);
    ck_assert_int_eq(uc_jws_verify_sig(tok, F.key, err), 0);
    ck_assert_str_eq(c.sub, IAM_STORE_TOKEN_SUB);
    ck_assert_str_eq(c.project, "");
    ck_assert_int_eq(c.role, UC_ROLE_ANY);
    ck_assert(!c.system_admin);
    ck_assert_int_eq(c.exp - c.iat, IAM_STORE_TOKEN_TTL_S);
}
END_TEST

START_TEST(the_token_is_cached_then_renewed_before_it_expires)
{
    char a[UC_STORE_TOKEN_LEN], b[UC_STORE_TOKEN_LEN], kid[IAM_KID_LEN];
    struct uc_auth_claims c;
    get(a);
    uc_clock_manual_advance(&F.clock, (IAM_STORE_TOKEN_TTL_S - IAM_STORE_TOKEN_RENEW_S - 1) * 1000);
    get(b);
    ck_assert_str_eq(a, b);
    uc_clock_manual_advance(&F.clock, 1000);
    get(b);
    ck_assert_str_ne(a, b);
    verify(b, kid, &c);
    ck_assert_int_eq(c.iat, FX_START_MS / 1000 + IAM_STORE_TOKEN_TTL_S - IAM_STORE_TOKEN_RENEW_S);
}
END_TEST

START_TEST(the_file_key_signs_while_the_keyring_verifies_it)
{
    char tok[UC_STORE_TOKEN_LEN], kid[IAM_KID_LEN], file_kid[IAM_KID_LEN];
    struct uc_auth_claims c;
    json_t *view = NULL;
    ck_assert_int_eq(iam_keyring_kid(F.key, file_kid), 0);
    iam_store_token_use_keyring(T, F.s.keyring);
    ck_assert_int_eq(iam_keyring_rotate(F.s.keyring, &view, err), 0); /* file key: verifying */
    get(tok);
    verify(tok, kid, &c);
    ck_assert_str_eq(kid, file_kid);
    ck_assert_int_eq(iam_keyring_retire(F.s.keyring, file_kid, err), 0);
    get(tok); /* the cached token's key is retired: a new one, by the active key */
    verify(tok, kid, &c);
    ck_assert_str_eq(kid, uc_json_str(view, "kid", ""));
    json_t *pl = NULL;
    ck_assert_int_eq(iam_keyring_verify(F.s.keyring, tok, &pl, kid, err), 0);
    json_decref(pl);
    json_decref(view);
    iam_store_token_use_keyring(T, NULL);
}
END_TEST

START_TEST(a_public_key_cannot_sign)
{
    uint8_t pub[UC_ED25519_PUB_LEN];
    struct uc_crypto_key *k = NULL;
    struct iam_store_token *t = NULL;
    ck_assert_int_eq(uc_crypto_ed25519_public(F.key, pub), 0);
    ck_assert_int_eq(uc_crypto_ed25519_from_public(&k, pub, err), 0);
    ck_assert_int_eq(iam_store_token_create(&t, k, NULL, err), UC_EINVAL);
    ck_assert_ptr_null(t);
    uc_crypto_key_destroy(k);
    iam_store_token_destroy(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_token");
    TCase *tc = tcase_create("store_token");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, the_token_is_an_ordinary_iam_token_without_privileges);
    tcase_add_test(tc, the_token_is_cached_then_renewed_before_it_expires);
    tcase_add_test(tc, the_file_key_signs_while_the_keyring_verifies_it);
    tcase_add_test(tc, a_public_key_cannot_sign);
    suite_add_tcase(s, tc);
    return uc_check_run(s);
}
