/* test_credentials.c - access keys: the secret shown once and stored
 * sealed, who may manage whose keys, revocation and the grant check. */
#include <check.h>
#include <string.h>

#include "../credentials.h"
#include "../records.h"
#include "fixture.h"

static struct fx F;
static char err[UC_ERR_LEN];
static struct uc_auth_claims admin;
static char web[UC_ID_LEN], alice[UC_ID_LEN], sa[UC_ID_LEN];

static void setup(void)
{
    fx_setup(&F);
    admin = fx_admin();
    fx_project(&F, "web", web);
    fx_user(&F, "alice", alice);
    fx_service_account(&F, "ci", web, sa);
}

static void teardown(void) { fx_teardown(&F); }

static int create_as(const struct uc_auth_claims *c, const char *principal, json_t **out)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"principal_id\":\"%s\",\"description\":\"k\"}", principal);
    return fx_call(&F, iam_credentials_create, c, body, out, err);
}

START_TEST(secret_is_shown_once_and_stored_sealed)
{
    json_t *out = NULL, *again = NULL;
    char id[UC_ID_LEN], secret[64], k[IAM_KEY_LEN];
    ck_assert_int_eq(create_as(&admin, sa, &out), 0);
    fx_str(out, "id", id, sizeof(id));
    fx_str(out, "secret", secret, sizeof(secret));
    ck_assert(iam_id_is(id, "ak"));
    ck_assert_uint_eq(strlen(secret), 43);
    ck_assert_str_eq(uc_json_str(out, "status", ""), "active");
    ck_assert(json_is_null(json_object_get(out, "revoked_at")));
    ck_assert_int_eq(iam_credentials_get(&F.s, &admin, id, &again, err), 0);
    ck_assert_ptr_null(json_object_get(again, "secret"));
    ck_assert_ptr_null(json_object_get(again, "_sealed"));
    struct uc_store_item it = {0};
    ck_assert_int_eq(iam_key(k, IAM_K_CRED, id, NULL, err), 0);
    ck_assert_int_eq(uc_store_get(F.s.store, k, &it, err), 0);
    ck_assert_ptr_null(strstr((const char *)it.val, secret));
    uc_store_item_clear(&it);
    json_decref(again);
    json_decref(out);
}
END_TEST

/* A key of the service account, made as admin: its id and secret. */
static void new_key(char id[UC_ID_LEN], char secret[64])
{
    json_t *out = NULL;
    ck_assert_int_eq(create_as(&admin, sa, &out), 0);
    fx_str(out, "id", id, UC_ID_LEN);
    fx_str(out, "secret", secret, 64);
    json_decref(out);
}

START_TEST(check_accepts_the_secret_until_revoked)
{
    char id[UC_ID_LEN], secret[64], principal[IAM_PRINCIPAL_LEN];
    new_key(id, secret);
    ck_assert_int_eq(iam_credentials_check(&F.s, id, secret, principal, err), 0);
    ck_assert_str_eq(principal, sa);
    ck_assert_int_eq(iam_credentials_check(&F.s, id, "wrong", principal, err), UC_EUNAUTH);
    ck_assert_int_eq(iam_credentials_check(&F.s, "ak-x", secret, principal, err), UC_EUNAUTH);
    ck_assert_int_eq(iam_credentials_revoke(&F.s, &admin, id, err), 0);
    ck_assert_int_eq(iam_credentials_check(&F.s, id, secret, principal, err), UC_EUNAUTH);
    ck_assert_str_eq(err, "invalid credentials");
    ck_assert_int_eq(iam_credentials_revoke(&F.s, &admin, id, err), 0); /* idempotent */
}
END_TEST

START_TEST(another_master_key_cannot_open_the_secret)
{
    char id[UC_ID_LEN], secret[64], principal[IAM_PRINCIPAL_LEN];
    new_key(id, secret);
    F.s.master_key[0] ^= 0xff;
    ck_assert_int_eq(iam_credentials_check(&F.s, id, secret, principal, err), UC_EUNAUTH);
    F.s.master_key[0] ^= 0xff;
}
END_TEST

START_TEST(users_manage_their_own_and_admins_their_service_accounts)
{
    json_t *out = NULL;
    struct uc_auth_claims self = fx_caller(alice, web, UC_ROLE_MEMBER);
    struct uc_auth_claims padmin = fx_caller(alice, web, UC_ROLE_ADMIN);
    struct uc_auth_claims stranger = fx_caller("user-bbbbbbbbbbbbbbbbbbbb", "", UC_ROLE_ANY);
    ck_assert_int_eq(create_as(&self, alice, &out), 0);
    json_decref(out);
    ck_assert_int_eq(create_as(&stranger, alice, &out), UC_EFORBIDDEN);
    ck_assert_int_eq(create_as(&self, sa, &out), UC_EFORBIDDEN);
    ck_assert_int_eq(create_as(&stranger, sa, &out), UC_ENOENT);
    ck_assert_int_eq(create_as(&padmin, sa, &out), 0);
    json_decref(out);
    ck_assert_int_eq(create_as(&admin, "user-aaaaaaaaaaaaaaaaaaaa", &out), UC_ENOENT);
    ck_assert_int_eq(create_as(&admin, "proj-aaaaaaaaaaaaaaaaaaaa", &out), UC_EINVAL);
}
END_TEST

/* How many keys the list after page token (may be NULL) shows. */
static size_t list_count_after(const struct uc_auth_claims *c, const char *principal,
                               const char *token, int want)
{
    struct iam_page pg = {.limit = 100, .token = token};
    json_t *out = NULL;
    ck_assert_int_eq(iam_credentials_list(&F.s, c, principal, &pg, &out, err), want);
    size_t n = out ? json_array_size(json_object_get(out, "items")) : 0;
    json_decref(out);
    return n;
}

static size_t list_count(const struct uc_auth_claims *c, const char *principal, int want)
{
    return list_count_after(c, principal, NULL, want);
}

START_TEST(lists_follow_the_same_rules)
{
    json_t *out = NULL;
    struct uc_auth_claims self = fx_caller(alice, "", UC_ROLE_ANY);
    ck_assert_int_eq(create_as(&admin, alice, &out), 0);
    json_decref(out);
    ck_assert_int_eq(create_as(&admin, sa, &out), 0);
    json_decref(out);
    ck_assert_uint_eq(list_count(&admin, NULL, 0), 2);
    ck_assert_uint_eq(list_count(&admin, sa, 0), 1);
    ck_assert_uint_eq(list_count(&self, NULL, 0), 1);
    ck_assert_uint_eq(list_count(&self, sa, UC_ENOENT), 0);
    ck_assert_uint_eq(list_count_after(&admin, NULL, "ak-zzzzzzzzzzzzzzzzzzzz", 0), 0);
    ck_assert_uint_eq(list_count_after(&admin, NULL, sa, UC_EINVAL), 0); /* not an ak id */
    ck_assert_uint_eq(list_count_after(&self, NULL, "garbage", UC_EINVAL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("credentials");
    TCase *c = fx_tcase(s, "create_check", setup, teardown);
    tcase_add_test(c, secret_is_shown_once_and_stored_sealed);
    tcase_add_test(c, check_accepts_the_secret_until_revoked);
    tcase_add_test(c, another_master_key_cannot_open_the_secret);
    TCase *a = fx_tcase(s, "access", setup, teardown);
    tcase_add_test(a, users_manage_their_own_and_admins_their_service_accounts);
    tcase_add_test(a, lists_follow_the_same_rules);
    return uc_check_run(s);
}
