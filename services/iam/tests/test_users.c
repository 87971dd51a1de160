/* test_users.c - users: creation with hashed passwords, who may read and
 * change a user, and deletion cascading to bindings and credentials. */
#include <check.h>
#include <string.h>

#include "../bindings.h"
#include "../credentials.h"
#include "../projects.h"
#include "../records.h"
#include "../users.h"
#include "fixture.h"

static struct fx F;
static char err[UC_ERR_LEN];
static struct uc_auth_claims admin;
static char alice[UC_ID_LEN];

static int call_create(const char *body, json_t **out)
{
    return fx_call(&F, iam_users_create, &admin, body, out, err);
}

static void setup(void)
{
    json_t *out = NULL;
    fx_setup(&F);
    admin = fx_admin();
    ck_assert_int_eq(call_create("{\"name\":\"alice\",\"password\":\"correct horse\","
                                 "\"display_name\":\"Alice\"}",
                                 &out),
                     0);
    fx_str(out, "id", alice, sizeof(alice));
    json_decref(out);
}

static void teardown(void) { fx_teardown(&F); }

static int patch(const struct uc_auth_claims *c, const char *body, json_t **out)
{
    json_t *b = fx_json(body);
    *out = NULL;
    int rc = iam_users_patch(&F.s, c, alice, b, out, err);
    json_decref(b);
    return rc;
}

START_TEST(password_is_stored_hashed_and_never_shown)
{
    json_t *out = NULL, *rec = NULL;
    ck_assert_int_eq(iam_users_get(&F.s, &admin, alice, &out, err), 0);
    ck_assert_ptr_null(json_object_get(out, "password"));
    ck_assert_ptr_null(json_object_get(out, "_password_hash"));
    ck_assert_str_eq(uc_json_str(out, "display_name", ""), "Alice");
    ck_assert(!uc_json_bool(out, "disabled", true));
    ck_assert_int_eq(iam_users_load(&F.s, alice, &rec, NULL, err), 0);
    const char *hash = uc_json_str(rec, "_password_hash", "");
    ck_assert_ptr_nonnull(strstr(hash, "scrypt$10$"));
    ck_assert_int_eq(uc_crypto_password_verify("correct horse", hash), 0);
    json_decref(rec);
    json_decref(out);
}
END_TEST

START_TEST(names_are_unique_and_checked)
{
    json_t *out = NULL;
    ck_assert_int_eq(call_create("{\"name\":\"alice\",\"password\":\"another one\"}", &out),
                     UC_EEXIST);
    ck_assert_int_eq(call_create("{\"name\":\"bob smith\",\"password\":\"another one\"}", &out),
                     UC_EINVAL);
    ck_assert_int_eq(call_create("{\"name\":\"bob\",\"password\":\"short\"}", &out), UC_EINVAL);
    ck_assert_str_eq(err, "field 'password' must be a string of 8-256 characters");
    ck_assert_int_eq(call_create("{\"name\":\"b.o_b-1\",\"password\":\"long enough\"}", &out), 0);
    json_decref(out);
}
END_TEST

START_TEST(only_admins_and_the_user_itself_may_read)
{
    json_t *out = NULL;
    struct uc_auth_claims self = fx_caller(alice, "", UC_ROLE_ANY);
    struct uc_auth_claims other = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", "", UC_ROLE_ANY);
    ck_assert_int_eq(iam_users_get(&F.s, &self, alice, &out, err), 0);
    json_decref(out);
    ck_assert_int_eq(iam_users_get(&F.s, &other, alice, &out, err), UC_EFORBIDDEN);
    ck_assert_int_eq(iam_users_get(&F.s, &admin, "user-aaaaaaaaaaaaaaaaaaaa", &out, err),
                     UC_ENOENT);
    struct iam_page pg = {.limit = 10};
    ck_assert_int_eq(iam_users_list(&F.s, &self, &pg, &out, err), UC_EFORBIDDEN);
    ck_assert_int_eq(iam_users_list(&F.s, &admin, &pg, &out, err), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(out, "items")), 1);
    json_decref(out);
    pg.token = "proj-aaaaaaaaaaaaaaaaaaaa"; /* not a user id: not a token of this list */
    ck_assert_int_eq(iam_users_list(&F.s, &admin, &pg, &out, err), UC_EINVAL);
    pg.token = alice;
    ck_assert_int_eq(iam_users_list(&F.s, &admin, &pg, &out, err), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(out, "items")), 0);
    json_decref(out);
}
END_TEST

START_TEST(the_user_may_change_its_name_and_password_but_not_disable_itself)
{
    json_t *out = NULL, *rec = NULL;
    struct uc_auth_claims self = fx_caller(alice, "", UC_ROLE_ANY);
    ck_assert_int_eq(patch(&self, "{\"display_name\":\"Al\",\"password\":\"new secret\"}", &out),
                     0);
    ck_assert_str_eq(uc_json_str(out, "display_name", ""), "Al");
    json_decref(out);
    ck_assert_int_eq(iam_users_load(&F.s, alice, &rec, NULL, err), 0);
    ck_assert_int_eq(
        uc_crypto_password_verify("new secret", uc_json_str(rec, "_password_hash", "")), 0);
    json_decref(rec);
    ck_assert_int_eq(patch(&self, "{\"disabled\":true}", &out), UC_EFORBIDDEN);
    ck_assert_int_eq(patch(&admin, "{\"disabled\":true}", &out), 0);
    ck_assert(uc_json_bool(out, "disabled", false));
    json_decref(out);
    ck_assert_int_eq(patch(&admin, "{\"revision\":1}", &out), UC_ECONFLICT);
}
END_TEST

START_TEST(delete_removes_bindings_and_revokes_credentials)
{
    char proj[UC_ID_LEN], ak[UC_ID_LEN];
    json_t *out = NULL;
    struct iam_page pg = {.limit = 10};
    /* Give alice a project binding and a credential. */
    fx_project(&F, "web", proj);
    fx_bind(&F, alice, proj, "admin", NULL);
    fx_access_key(&F, alice, ak, NULL);
    ck_assert_int_eq(iam_projects_delete(&F.s, &admin, proj, err), UC_EBUSY);
    ck_assert_int_eq(iam_users_delete(&F.s, &admin, alice, err), 0);
    ck_assert_int_eq(iam_users_get(&F.s, &admin, alice, &out, err), UC_ENOENT);
    ck_assert_int_eq(iam_bindings_list(&F.s, &admin, proj, NULL, &pg, &out, err), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(out, "items")), 0);
    json_decref(out);
    ck_assert_int_eq(iam_credentials_get(&F.s, &admin, ak, &out, err), 0);
    ck_assert_str_eq(uc_json_str(out, "status", ""), "revoked");
    ck_assert(json_is_string(json_object_get(out, "revoked_at")));
    json_decref(out);
    ck_assert_int_eq(iam_projects_delete(&F.s, &admin, proj, err), 0);
    /* The name can be taken again. */
    ck_assert_int_eq(call_create("{\"name\":\"alice\",\"password\":\"correct horse\"}", &out), 0);
    json_decref(out);
}
END_TEST

START_TEST(delete_needs_a_system_admin)
{
    struct uc_auth_claims self = fx_caller(alice, "", UC_ROLE_ANY);
    ck_assert_int_eq(iam_users_delete(&F.s, &self, alice, err), UC_EFORBIDDEN);
    ck_assert_int_eq(iam_users_delete(&F.s, &admin, "user-aaaaaaaaaaaaaaaaaaaa", err), UC_ENOENT);
    ck_assert_int_eq(iam_users_delete(&F.s, &admin, "alice", err), UC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("users");
    TCase *c = fx_tcase(s, "create", setup, teardown);
    tcase_add_test(c, password_is_stored_hashed_and_never_shown);
    tcase_add_test(c, names_are_unique_and_checked);
    TCase *g = fx_tcase(s, "get_list", setup, teardown);
    tcase_add_test(g, only_admins_and_the_user_itself_may_read);
    TCase *p = fx_tcase(s, "patch", setup, teardown);
    tcase_add_test(p, the_user_may_change_its_name_and_password_but_not_disable_itself);
    TCase *d = fx_tcase(s, "delete", setup, teardown);
    tcase_add_test(d, delete_removes_bindings_and_revokes_credentials);
    tcase_add_test(d, delete_needs_a_system_admin);
    return uc_check_run(s);
}
