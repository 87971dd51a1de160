/* test_keyring.c - signing keys: import, rotation, retirement, the JWKS
 * document, signing and verifying, and sealing under the master key. */
#include <check.h>
#include <string.h>

#include "../records.h"
#include "fixture.h"
#include "uc/jws.h"

static struct fx F;
static char err[UC_ERR_LEN];

static void setup(void) { fx_setup(&F); }
static void teardown(void) { fx_teardown(&F); }

static void kid_of(const struct uc_crypto_key *k, char kid[IAM_KID_LEN])
{
    ck_assert_int_eq(iam_keyring_kid(k, kid), 0);
}

static json_t *jwks(void)
{
    json_t *doc = NULL;
    ck_assert_int_eq(iam_keyring_jwks(F.s.keyring, &doc, err), 0);
    return doc;
}

static const char *status_of(const char *kid)
{
    static char status[16];
    char k[IAM_KEY_LEN];
    json_t *rec = NULL;
    ck_assert_int_eq(iam_key(k, IAM_K_KEY, kid, NULL, err), 0);
    ck_assert_int_eq(iam_record_load(F.s.store, k, "key", &rec, NULL, err), 0);
    snprintf(status, sizeof(status), "%s", uc_json_str(rec, "status", ""));
    json_decref(rec);
    return status;
}

START_TEST(kid_is_k_and_16_hex_of_the_public_key_hash)
{
    uint8_t pub[UC_ED25519_PUB_LEN], digest[UC_SHA256_LEN];
    char kid[IAM_KID_LEN], hex[65], want[80];
    kid_of(F.key, kid);
    ck_assert_int_eq(uc_crypto_ed25519_public(F.key, pub), 0);
    ck_assert_int_eq(uc_crypto_sha256(pub, sizeof(pub), digest), 0);
    uc_hex_encode(digest, 8, hex);
    snprintf(want, sizeof(want), "k-%s", hex);
    ck_assert_str_eq(kid, want);
    ck_assert_uint_eq(strlen(kid), 18);
}
END_TEST

START_TEST(imported_key_is_active_and_in_the_jwks)
{
    char kid[IAM_KID_LEN];
    kid_of(F.key, kid);
    ck_assert_str_eq(status_of(kid), "active");
    json_t *doc = jwks();
    json_t *keys = json_object_get(doc, "keys");
    ck_assert_uint_eq(json_array_size(keys), 1);
    json_t *k = json_array_get(keys, 0);
    ck_assert_str_eq(uc_json_str(k, "kty", ""), "OKP");
    ck_assert_str_eq(uc_json_str(k, "crv", ""), "Ed25519");
    ck_assert_str_eq(uc_json_str(k, "alg", ""), "EdDSA");
    ck_assert_str_eq(uc_json_str(k, "use", ""), "sig");
    ck_assert_str_eq(uc_json_str(k, "kid", ""), kid);
    ck_assert_uint_eq(strlen(uc_json_str(k, "x", "")), 43);
    ck_assert_ptr_null(json_object_get(k, "d"));
    json_decref(doc);
}
END_TEST

START_TEST(importing_the_same_key_again_changes_nothing)
{
    char kid[IAM_KID_LEN];
    bool imported = true;
    ck_assert_int_eq(iam_keyring_import(F.s.keyring, F.key, &imported, kid, err), 0);
    ck_assert(!imported);
    ck_assert_str_eq(status_of(kid), "active");
}
END_TEST

START_TEST(a_new_file_key_rotates_the_old_one_to_verifying)
{
    struct uc_crypto_key *k2 = NULL;
    char old[IAM_KID_LEN], kid[IAM_KID_LEN];
    bool imported = false;
    kid_of(F.key, old);
    ck_assert_int_eq(uc_crypto_ed25519_generate(&k2, err), 0);
    ck_assert_int_eq(iam_keyring_import(F.s.keyring, k2, &imported, kid, err), 0);
    ck_assert(imported);
    ck_assert_str_eq(status_of(kid), "active");
    ck_assert_str_eq(status_of(old), "verifying");
    json_t *doc = jwks();
    json_t *keys = json_object_get(doc, "keys");
    ck_assert_uint_eq(json_array_size(keys), 2);
    ck_assert_str_eq(uc_json_str(json_array_get(keys, 0), "kid", ""), kid); /* active first */
    ck_assert_str_eq(uc_json_str(json_array_get(keys, 1), "kid", ""), old);
    json_decref(doc);
    uc_crypto_key_destroy(k2);
}
END_TEST

START_TEST(import_refuses_a_public_key)
{
    uint8_t pub[UC_ED25519_PUB_LEN];
    struct uc_crypto_key *pk = NULL;
    char kid[IAM_KID_LEN];
    bool imported = false;
    ck_assert_int_eq(uc_crypto_ed25519_public(F.key, pub), 0);
    ck_assert_int_eq(uc_crypto_ed25519_from_public(&pk, pub, err), 0);
    ck_assert_int_eq(iam_keyring_import(F.s.keyring, pk, &imported, kid, err), UC_EINVAL);
    uc_crypto_key_destroy(pk);
}
END_TEST

/* Sign a small payload and return the token (caller frees). */
static char *sign(char kid[IAM_KID_LEN])
{
    char *token = NULL;
    json_t *p = json_pack("{s:s}", "sub", "user-aaaaaaaaaaaaaaaaaaaa");
    ck_assert_int_eq(iam_keyring_sign(F.s.keyring, p, &token, kid, err), 0);
    json_decref(p);
    return token;
}

static int verify(const char *token)
{
    char kid[IAM_KID_LEN];
    json_t *payload = NULL;
    int rc = iam_keyring_verify(F.s.keyring, token, &payload, kid, err);
    json_decref(payload);
    return rc;
}

START_TEST(rotation_keeps_old_tokens_verifying)
{
    char kid1[IAM_KID_LEN], kid2[IAM_KID_LEN];
    char *t1 = sign(kid1);
    json_t *view = NULL;
    ck_assert_int_eq(iam_keyring_rotate(F.s.keyring, &view, err), 0);
    ck_assert_str_eq(uc_json_str(view, "status", ""), "active");
    ck_assert_ptr_null(json_object_get(view, "_sealed"));
    char *t2 = sign(kid2);
    ck_assert_str_eq(kid2, uc_json_str(view, "kid", ""));
    ck_assert_str_ne(kid1, kid2);
    ck_assert_int_eq(verify(t1), 0);
    ck_assert_int_eq(verify(t2), 0);
    ck_assert_str_eq(status_of(kid1), "verifying");
    json_decref(view);
    uc_free(t1);
    uc_free(t2);
}
END_TEST

START_TEST(retired_key_leaves_jwks_and_stops_verifying)
{
    char kid1[IAM_KID_LEN];
    char *t1 = sign(kid1);
    json_t *view = NULL;
    ck_assert_int_eq(iam_keyring_rotate(F.s.keyring, &view, err), 0);
    ck_assert_int_eq(iam_keyring_retire(F.s.keyring, kid1, err), 0);
    ck_assert_str_eq(status_of(kid1), "retired");
    ck_assert_int_eq(verify(t1), UC_EUNAUTH);
    json_t *doc = jwks();
    ck_assert_uint_eq(json_array_size(json_object_get(doc, "keys")), 1);
    ck_assert_int_eq(iam_keyring_retire(F.s.keyring, kid1, err), UC_ECONFLICT);
    json_decref(doc);
    json_decref(view);
    uc_free(t1);
}
END_TEST

START_TEST(retire_refuses_active_unknown_and_malformed_kids)
{
    char kid[IAM_KID_LEN];
    kid_of(F.key, kid);
    ck_assert_int_eq(iam_keyring_retire(F.s.keyring, kid, err), UC_ECONFLICT);
    ck_assert_int_eq(iam_keyring_retire(F.s.keyring, "k-0000000000000000", err), UC_ENOENT);
    ck_assert_int_eq(iam_keyring_retire(F.s.keyring, "k-XYZ", err), UC_EINVAL);
    ck_assert_int_eq(iam_keyring_retire(F.s.keyring, "../key", err), UC_EINVAL);
}
END_TEST

START_TEST(list_shows_kid_status_and_times_only)
{
    json_t *view = NULL, *out = NULL;
    struct iam_page pg = {.limit = 100};
    ck_assert_int_eq(iam_keyring_rotate(F.s.keyring, &view, err), 0);
    ck_assert_int_eq(iam_keyring_list(F.s.keyring, &pg, &out, err), 0);
    json_t *items = json_object_get(out, "items");
    ck_assert_uint_eq(json_array_size(items), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *it = json_array_get(items, i);
        ck_assert_uint_eq(json_object_size(it), 4);
        ck_assert_ptr_nonnull(json_object_get(it, "kid"));
        ck_assert_ptr_nonnull(json_object_get(it, "created_at"));
    }
    json_decref(out);
    json_decref(view);
    /* Page tokens are kids. */
    pg.token = "k-ffffffffffffffff";
    ck_assert_int_eq(iam_keyring_list(F.s.keyring, &pg, &out, err), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(out, "items")), 0);
    json_decref(out);
    pg.token = "garbage";
    ck_assert_int_eq(iam_keyring_list(F.s.keyring, &pg, &out, err), UC_EINVAL);
    ck_assert_str_eq(err, "page_token is not one this server handed out");
}
END_TEST

START_TEST(tampered_and_foreign_tokens_fail)
{
    char kid[IAM_KID_LEN];
    char *t = sign(kid);
    t[strlen(t) - 3] ^= 1;
    ck_assert_int_eq(verify(t), UC_EUNAUTH);
    ck_assert_int_eq(verify("not-a-token"), UC_EUNAUTH);
    uc_free(t);
    /* A token from a key the keyring never saw. */
    struct uc_crypto_key *other = NULL;
    char *ft = NULL;
    json_t *p = json_pack("{s:s}", "sub", "x");
    ck_assert_int_eq(uc_crypto_ed25519_generate(&other, err), 0);
    ck_assert_int_eq(uc_jws_sign(p, other, "k-0123456789abcdef", &ft), 0);
    ck_assert_int_eq(verify(ft), UC_EUNAUTH);
    uc_free(ft);
    json_decref(p);
    uc_crypto_key_destroy(other);
}
END_TEST

START_TEST(stored_private_key_is_sealed)
{
    char kid[IAM_KID_LEN], k[IAM_KEY_LEN];
    struct uc_store_item it = {0};
    kid_of(F.key, kid);
    ck_assert_int_eq(iam_key(k, IAM_K_KEY, kid, NULL, err), 0);
    ck_assert_int_eq(uc_store_get(F.s.store, k, &it, err), 0);
    ck_assert_ptr_null(strstr((const char *)it.val, "PRIVATE KEY"));
    ck_assert_ptr_nonnull(strstr((const char *)it.val, "\"_sealed\""));
    uc_store_item_clear(&it);
}
END_TEST

START_TEST(sealed_keys_do_not_open_without_the_master_key)
{
    struct iam_keyring *kr = NULL;
    uint8_t wrong[UC_AES_KEY_LEN] = {0};
    ck_assert_int_eq(iam_keyring_create(&kr, F.s.store, wrong, NULL, err), UC_EUNAUTH);
    ck_assert_ptr_null(kr);
    /* The right master key opens them: a second keyring signs like the first. */
    ck_assert_int_eq(iam_keyring_create(&kr, F.s.store, F.s.master_key, NULL, err), 0);
    char *token = NULL, kid[IAM_KID_LEN];
    json_t *p = json_pack("{s:s}", "sub", "x");
    ck_assert_int_eq(iam_keyring_sign(kr, p, &token, kid, err), 0);
    ck_assert_int_eq(verify(token), 0);
    uc_free(token);
    json_decref(p);
    iam_keyring_destroy(kr);
}
END_TEST

START_TEST(empty_keyring_cannot_sign)
{
    struct iam_keyring *kr = NULL;
    struct uc_store *st = NULL;
    char url[160], *token = NULL, kid[IAM_KID_LEN];
    snprintf(url, sizeof(url), "sqlite:%s/empty.db", F.dir);
    ck_assert_int_eq(uc_store_open(&st, url, err), 0);
    ck_assert_int_eq(iam_keyring_create(&kr, st, F.s.master_key, NULL, err), 0);
    json_t *p = json_pack("{s:s}", "sub", "x"), *doc = NULL;
    ck_assert_int_eq(iam_keyring_sign(kr, p, &token, kid, err), UC_EUNAVAIL);
    ck_assert_int_eq(iam_keyring_jwks(kr, &doc, err), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(doc, "keys")), 0);
    json_decref(doc);
    json_decref(p);
    iam_keyring_destroy(kr);
    uc_store_close(st);
    snprintf(url, sizeof(url), "%s/empty.db", F.dir);
    ck_assert_int_eq(unlink(url), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keyring");
    TCase *imp = fx_tcase(s, "import", setup, teardown);
    tcase_add_test(imp, kid_is_k_and_16_hex_of_the_public_key_hash);
    tcase_add_test(imp, imported_key_is_active_and_in_the_jwks);
    tcase_add_test(imp, importing_the_same_key_again_changes_nothing);
    tcase_add_test(imp, a_new_file_key_rotates_the_old_one_to_verifying);
    tcase_add_test(imp, import_refuses_a_public_key);
    TCase *rot = fx_tcase(s, "rotate_retire_list", setup, teardown);
    tcase_add_test(rot, rotation_keeps_old_tokens_verifying);
    tcase_add_test(rot, retired_key_leaves_jwks_and_stops_verifying);
    tcase_add_test(rot, retire_refuses_active_unknown_and_malformed_kids);
    tcase_add_test(rot, list_shows_kid_status_and_times_only);
    TCase *sv = fx_tcase(s, "sign_verify", setup, teardown);
    tcase_add_test(sv, tampered_and_foreign_tokens_fail);
    tcase_add_test(sv, empty_keyring_cannot_sign);
    TCase *seal = fx_tcase(s, "sealing", setup, teardown);
    tcase_add_test(seal, stored_private_key_is_sealed);
    tcase_add_test(seal, sealed_keys_do_not_open_without_the_master_key);
    return uc_check_run(s);
}
