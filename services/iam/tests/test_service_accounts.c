/* test_service_accounts.c - service accounts: names unique per project,
 * project-scoped visibility and deletion with its dependents. */
#include <check.h>
#include <string.h>

#include "../credentials.h"
#include "../projects.h"
#include "../service_accounts.h"
#include "fixture.h"

static struct fx F;
static char err[UC_ERR_LEN];
static struct uc_auth_claims admin;
static char web[UC_ID_LEN], db[UC_ID_LEN];

static int create_as(const struct uc_auth_claims *c, const char *name, const char *project,
                     char id[UC_ID_LEN])
{
    char body[160];
    json_t *out = NULL;
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"project_id\":\"%s\"}", name, project);
    int rc = fx_call(&F, iam_service_accounts_create, c, body, &out, err);
    if (rc == 0 && id)
        fx_str(out, "id", id, UC_ID_LEN);
    json_decref(out);
    return rc;
}

static void setup(void)
{
    fx_setup(&F);
    admin = fx_admin();
    fx_project(&F, "web", web);
    fx_project(&F, "db", db);
}

static void teardown(void) { fx_teardown(&F); }

START_TEST(names_are_unique_within_a_project)
{
    char id[UC_ID_LEN];
    ck_assert_int_eq(create_as(&admin, "ci", web, id), 0);
    ck_assert(iam_id_is(id, "sa"));
    ck_assert_int_eq(create_as(&admin, "ci", web, NULL), UC_EEXIST);
    ck_assert_int_eq(create_as(&admin, "ci", db, NULL), 0);
    ck_assert_int_eq(create_as(&admin, "ci", "proj-aaaaaaaaaaaaaaaaaaaa", NULL), UC_ENOENT);
    ck_assert_int_eq(create_as(&admin, "ci", "web", NULL), UC_EINVAL);
}
END_TEST

START_TEST(creating_needs_the_project_admin)
{
    struct uc_auth_claims member = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", web, UC_ROLE_MEMBER);
    struct uc_auth_claims padmin = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", web, UC_ROLE_ADMIN);
    ck_assert_int_eq(create_as(&member, "ci", web, NULL), UC_EFORBIDDEN);
    ck_assert_int_eq(create_as(&padmin, "ci", db, NULL), UC_ENOENT);
    ck_assert_int_eq(create_as(&padmin, "ci", web, NULL), 0);
}
END_TEST

/* How many service accounts the list after page token (may be NULL) shows. */
static size_t list_count_after(const struct uc_auth_claims *c, const char *project,
                               const char *token, int want)
{
    struct iam_page pg = {.limit = 100, .token = token};
    json_t *out = NULL;
    ck_assert_int_eq(iam_service_accounts_list(&F.s, c, project, &pg, &out, err), want);
    size_t n = out ? json_array_size(json_object_get(out, "items")) : 0;
    json_decref(out);
    return n;
}

static size_t list_count(const struct uc_auth_claims *c, const char *project, int want)
{
    return list_count_after(c, project, NULL, want);
}

START_TEST(readers_see_only_their_project)
{
    char a[UC_ID_LEN], b[UC_ID_LEN];
    json_t *out = NULL;
    ck_assert_int_eq(create_as(&admin, "a", web, a), 0);
    ck_assert_int_eq(create_as(&admin, "b", db, b), 0);
    struct uc_auth_claims reader = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", web, UC_ROLE_READER);
    struct uc_auth_claims none = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", "", UC_ROLE_ANY);
    ck_assert_uint_eq(list_count(&admin, NULL, 0), 2);
    ck_assert_uint_eq(list_count(&admin, db, 0), 1);
    ck_assert_uint_eq(list_count(&reader, NULL, 0), 1);
    ck_assert_uint_eq(list_count(&reader, db, UC_ENOENT), 0);
    ck_assert_uint_eq(list_count(&none, NULL, UC_EFORBIDDEN), 0);
    ck_assert_uint_eq(list_count_after(&admin, NULL, "sa-zzzzzzzzzzzzzzzzzzzz", 0), 0);
    ck_assert_uint_eq(list_count_after(&admin, db, web, UC_EINVAL), 0); /* not an sa id */
    ck_assert_int_eq(iam_service_accounts_get(&F.s, &reader, a, &out, err), 0);
    ck_assert_str_eq(uc_json_str(out, "project_id", ""), web);
    json_decref(out);
    ck_assert_int_eq(iam_service_accounts_get(&F.s, &reader, b, &out, err), UC_ENOENT);
}
END_TEST

START_TEST(delete_removes_bindings_and_revokes_keys)
{
    char id[UC_ID_LEN], ak[UC_ID_LEN];
    json_t *out = NULL;
    ck_assert_int_eq(create_as(&admin, "ci", web, id), 0);
    fx_bind(&F, id, web, "member", NULL);
    fx_access_key(&F, id, ak, NULL);
    struct uc_auth_claims member = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", web, UC_ROLE_MEMBER);
    ck_assert_int_eq(iam_service_accounts_delete(&F.s, &member, id, err), UC_EFORBIDDEN);
    ck_assert_int_eq(iam_service_accounts_delete(&F.s, &admin, id, err), 0);
    ck_assert_int_eq(iam_service_accounts_get(&F.s, &admin, id, &out, err), UC_ENOENT);
    ck_assert_int_eq(iam_credentials_get(&F.s, &admin, ak, &out, err), 0);
    ck_assert_str_eq(uc_json_str(out, "status", ""), "revoked");
    json_decref(out);
    ck_assert_int_eq(iam_projects_delete(&F.s, &admin, web, err), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service_accounts");
    TCase *c = fx_tcase(s, "create", setup, teardown);
    tcase_add_test(c, names_are_unique_within_a_project);
    tcase_add_test(c, creating_needs_the_project_admin);
    TCase *g = fx_tcase(s, "get_list", setup, teardown);
    tcase_add_test(g, readers_see_only_their_project);
    TCase *d = fx_tcase(s, "delete", setup, teardown);
    tcase_add_test(d, delete_removes_bindings_and_revokes_keys);
    return uc_check_run(s);
}
