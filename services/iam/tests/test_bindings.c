/* test_bindings.c - role bindings: one per principal and project, who may
 * grant what, listing filters, and the grants tokens are built from. */
#include <check.h>
#include <string.h>

#include "../bindings.h"
#include "fixture.h"

static struct fx F;
static char err[UC_ERR_LEN];
static struct uc_auth_claims admin;
static char web[UC_ID_LEN], db[UC_ID_LEN], alice[UC_ID_LEN];

static void setup(void)
{
    fx_setup(&F);
    admin = fx_admin();
    fx_project(&F, "web", web);
    fx_project(&F, "db", db);
    fx_user(&F, "alice", alice);
}

static void teardown(void) { fx_teardown(&F); }

static int bind_as(const struct uc_auth_claims *c, const char *principal, const char *project,
                   const char *role, char id[UC_ID_LEN])
{
    char body[256];
    json_t *out = NULL;
    fx_binding_body(body, principal, project, role);
    int rc = fx_call(&F, iam_bindings_create, c, body, &out, err);
    if (rc == 0 && id)
        fx_str(out, "id", id, UC_ID_LEN);
    json_decref(out);
    return rc;
}

START_TEST(one_binding_per_principal_and_project)
{
    char id[UC_ID_LEN];
    ck_assert_int_eq(bind_as(&admin, alice, web, "member", id), 0);
    ck_assert(iam_id_is(id, "rb"));
    ck_assert_int_eq(bind_as(&admin, alice, web, "admin", NULL), UC_EEXIST);
    ck_assert_int_eq(bind_as(&admin, alice, db, "admin", NULL), 0);
    ck_assert_int_eq(bind_as(&admin, alice, NULL, "system-admin", NULL), 0);
    ck_assert_int_eq(bind_as(&admin, alice, NULL, "system-admin", NULL), UC_EEXIST);
}
END_TEST

START_TEST(bad_roles_principals_and_projects_are_refused)
{
    ck_assert_int_eq(bind_as(&admin, alice, web, "owner", NULL), UC_EINVAL);
    ck_assert_int_eq(bind_as(&admin, alice, web, "system-admin", NULL), UC_EINVAL);
    ck_assert_int_eq(bind_as(&admin, alice, NULL, "member", NULL), UC_EINVAL);
    ck_assert_int_eq(bind_as(&admin, "user-aaaaaaaaaaaaaaaaaaaa", web, "member", NULL), UC_ENOENT);
    ck_assert_int_eq(bind_as(&admin, "bob", web, "member", NULL), UC_EINVAL);
    ck_assert_int_eq(bind_as(&admin, alice, "proj-aaaaaaaaaaaaaaaaaaaa", "member", NULL),
                     UC_ENOENT);
}
END_TEST

START_TEST(project_admins_grant_in_their_project_only)
{
    struct uc_auth_claims padmin = fx_caller("user-bbbbbbbbbbbbbbbbbbbb", web, UC_ROLE_ADMIN);
    struct uc_auth_claims member = fx_caller("user-bbbbbbbbbbbbbbbbbbbb", web, UC_ROLE_MEMBER);
    ck_assert_int_eq(bind_as(&member, alice, web, "reader", NULL), UC_EFORBIDDEN);
    ck_assert_int_eq(bind_as(&padmin, alice, db, "reader", NULL), UC_ENOENT);
    ck_assert_int_eq(bind_as(&padmin, alice, NULL, "system-admin", NULL), UC_EFORBIDDEN);
    ck_assert_int_eq(bind_as(&padmin, alice, web, "reader", NULL), 0);
}
END_TEST

/* How many bindings the list after page token (may be NULL) shows. */
static size_t count_after(const struct uc_auth_claims *c, const char *project,
                          const char *principal, const char *token, int want_rc)
{
    struct iam_page pg = {.limit = 100, .token = token};
    json_t *out = NULL;
    ck_assert_int_eq(iam_bindings_list(&F.s, c, project, principal, &pg, &out, err), want_rc);
    size_t n = out ? json_array_size(json_object_get(out, "items")) : 0;
    json_decref(out);
    return n;
}

static size_t count(const struct uc_auth_claims *c, const char *project, const char *principal,
                    int want_rc)
{
    return count_after(c, project, principal, NULL, want_rc);
}

START_TEST(list_filters_by_project_and_principal)
{
    ck_assert_int_eq(bind_as(&admin, alice, web, "member", NULL), 0);
    ck_assert_int_eq(bind_as(&admin, alice, db, "reader", NULL), 0);
    ck_assert_int_eq(bind_as(&admin, alice, NULL, "system-admin", NULL), 0);
    ck_assert_uint_eq(count(&admin, NULL, NULL, 0), 3);
    ck_assert_uint_eq(count(&admin, web, NULL, 0), 1);
    ck_assert_uint_eq(count(&admin, NULL, alice, 0), 3);
    ck_assert_uint_eq(count(&admin, db, alice, 0), 1);
    struct uc_auth_claims reader = fx_caller("user-bbbbbbbbbbbbbbbbbbbb", web, UC_ROLE_READER);
    ck_assert_uint_eq(count(&reader, NULL, NULL, 0), 1);
    ck_assert_uint_eq(count(&reader, db, NULL, UC_ENOENT), 0);
    ck_assert_uint_eq(count(&reader, NULL, alice, 0), 1); /* only the web binding */
    ck_assert_uint_eq(count(&admin, "web", NULL, UC_EINVAL), 0);
}
END_TEST

START_TEST(list_page_tokens_are_binding_ids_or_a_principal_s_projects)
{
    ck_assert_int_eq(bind_as(&admin, alice, web, "member", NULL), 0);
    ck_assert_int_eq(bind_as(&admin, alice, NULL, "system-admin", NULL), 0);
    ck_assert_uint_eq(count_after(&admin, NULL, NULL, "garbage", UC_EINVAL), 0);
    ck_assert_str_eq(err, "page_token is not one this server handed out");
    ck_assert_uint_eq(count_after(&admin, web, NULL, web, UC_EINVAL), 0);
    ck_assert_uint_eq(count_after(&admin, web, NULL, "rb-zzzzzzzzzzzzzzzzzzzz", 0), 0);
    /* A principal's bindings are keyed by project id or "system". */
    ck_assert_uint_eq(count_after(&admin, NULL, alice, "proj-00000000000000000000", 0), 2);
    ck_assert_uint_eq(count_after(&admin, NULL, alice, "system", 0), 0);
    ck_assert_uint_eq(count_after(&admin, NULL, alice, "rb-zzzzzzzzzzzzzzzzzzzz", UC_EINVAL), 0);
    ck_assert_uint_eq(count_after(&admin, web, alice, "garbage", UC_EINVAL), 0);
}
END_TEST

START_TEST(grants_summarise_the_bindings)
{
    struct iam_grants g;
    bool found = true;
    enum uc_role role = UC_ROLE_ANY;
    ck_assert_int_eq(iam_bindings_grants(&F.s, alice, &g, err), 0);
    ck_assert(!g.system_admin);
    ck_assert_uint_eq(g.nprojects, 0);
    ck_assert_int_eq(bind_as(&admin, alice, web, "admin", NULL), 0);
    ck_assert_int_eq(iam_bindings_grants(&F.s, alice, &g, err), 0);
    ck_assert_uint_eq(g.nprojects, 1);
    ck_assert_str_eq(g.only_project, web);
    ck_assert_int_eq(g.only_role, UC_ROLE_ADMIN);
    ck_assert_int_eq(bind_as(&admin, alice, NULL, "system-admin", NULL), 0);
    ck_assert_int_eq(iam_bindings_grants(&F.s, alice, &g, err), 0);
    ck_assert(g.system_admin);
    ck_assert_uint_eq(g.nprojects, 1);
    ck_assert_int_eq(iam_bindings_role(&F.s, alice, db, &found, &role, err), 0);
    ck_assert(!found);
    ck_assert_int_eq(iam_bindings_role(&F.s, alice, web, &found, &role, err), 0);
    ck_assert(found);
    ck_assert_int_eq(role, UC_ROLE_ADMIN);
}
END_TEST

START_TEST(delete_needs_the_project_admin_and_frees_the_slot)
{
    char id[UC_ID_LEN], sys[UC_ID_LEN];
    struct uc_auth_claims padmin = fx_caller("user-bbbbbbbbbbbbbbbbbbbb", web, UC_ROLE_ADMIN);
    struct uc_auth_claims other = fx_caller("user-bbbbbbbbbbbbbbbbbbbb", db, UC_ROLE_ADMIN);
    ck_assert_int_eq(bind_as(&admin, alice, web, "member", id), 0);
    ck_assert_int_eq(bind_as(&admin, alice, NULL, "system-admin", sys), 0);
    ck_assert_int_eq(iam_bindings_delete(&F.s, &other, id, err), UC_ENOENT);
    ck_assert_int_eq(iam_bindings_delete(&F.s, &padmin, sys, err), UC_EFORBIDDEN);
    ck_assert_int_eq(iam_bindings_delete(&F.s, &padmin, id, err), 0);
    ck_assert_int_eq(iam_bindings_delete(&F.s, &padmin, id, err), UC_ENOENT);
    ck_assert_int_eq(iam_bindings_delete(&F.s, &admin, "rb-x", err), UC_EINVAL);
    ck_assert_int_eq(bind_as(&admin, alice, web, "admin", NULL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bindings");
    TCase *c = fx_tcase(s, "create", setup, teardown);
    tcase_add_test(c, one_binding_per_principal_and_project);
    tcase_add_test(c, bad_roles_principals_and_projects_are_refused);
    tcase_add_test(c, project_admins_grant_in_their_project_only);
    TCase *l = fx_tcase(s, "list_grants", setup, teardown);
    tcase_add_test(l, list_filters_by_project_and_principal);
    tcase_add_test(l, list_page_tokens_are_binding_ids_or_a_principal_s_projects);
    tcase_add_test(l, grants_summarise_the_bindings);
    TCase *d = fx_tcase(s, "delete", setup, teardown);
    tcase_add_test(d, delete_needs_the_project_admin_and_frees_the_slot);
    return uc_check_run(s);
}
