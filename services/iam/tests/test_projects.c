/* test_projects.c - projects: unique names, visibility across projects,
 * revisions on patch, paging, and the delete guard. */
#include <check.h>
#include <string.h>

#include "../projects.h"
#include "fixture.h"

static struct fx F;
static char err[UC_ERR_LEN];
static struct uc_auth_claims admin;

static void setup(void)
{
    fx_setup(&F);
    admin = fx_admin();
}

static void teardown(void) { fx_teardown(&F); }

static int create(const char *body, json_t **out)
{
    return fx_call(&F, iam_projects_create, &admin, body, out, err);
}

START_TEST(create_answers_the_record_with_id_times_and_revision)
{
    json_t *out = NULL;
    ck_assert_int_eq(create("{\"name\":\"web\",\"description\":\"front\"}", &out), 0);
    ck_assert(iam_id_is(uc_json_str(out, "id", ""), "proj"));
    ck_assert_str_eq(uc_json_str(out, "name", ""), "web");
    ck_assert_str_eq(uc_json_str(out, "description", ""), "front");
    ck_assert_str_eq(uc_json_str(out, "created_at", ""), "2027-01-15T08:00:00.000Z");
    ck_assert_str_eq(uc_json_str(out, "updated_at", ""), "2027-01-15T08:00:00.000Z");
    ck_assert_int_gt(uc_json_int(out, "revision", 0), 0);
    json_decref(out);
}
END_TEST

START_TEST(duplicate_name_is_already_exists)
{
    json_t *out = NULL;
    char id[UC_ID_LEN];
    fx_project(&F, "web", id);
    ck_assert_int_eq(create("{\"name\":\"web\"}", &out), UC_EEXIST);
    ck_assert_str_eq(err, "project name 'web' already exists");
}
END_TEST

START_TEST(bad_bodies_and_callers_are_refused)
{
    json_t *out = NULL, *b = fx_json("{\"name\":\"web\"}");
    ck_assert_int_eq(create("{\"name\":\"Web\"}", &out), UC_EINVAL);
    ck_assert_int_eq(create("{\"name\":\"\"}", &out), UC_EINVAL);
    ck_assert_int_eq(create("{\"name\":\"web\",\"x\":1}", &out), UC_EINVAL);
    ck_assert_int_eq(create("{}", &out), UC_EINVAL);
    struct uc_auth_claims member = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", "", UC_ROLE_ADMIN);
    ck_assert_int_eq(iam_projects_create(&F.s, &member, b, &out, err), UC_EFORBIDDEN);
    json_decref(b);
}
END_TEST

START_TEST(get_hides_other_projects_and_checks_ids)
{
    char a[UC_ID_LEN], b[UC_ID_LEN];
    json_t *out = NULL;
    fx_project(&F, "a", a);
    fx_project(&F, "b", b);
    struct uc_auth_claims in_a = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", a, UC_ROLE_READER);
    ck_assert_int_eq(iam_projects_get(&F.s, &in_a, a, &out, err), 0);
    ck_assert_str_eq(uc_json_str(out, "name", ""), "a");
    json_decref(out);
    ck_assert_int_eq(iam_projects_get(&F.s, &in_a, b, &out, err), UC_ENOENT);
    ck_assert_int_eq(iam_projects_get(&F.s, &admin, "proj-aaaaaaaaaaaaaaaaaaaa", &out, err),
                     UC_ENOENT);
    ck_assert_int_eq(iam_projects_get(&F.s, &admin, "proj-AAAA", &out, err), UC_EINVAL);
    ck_assert_str_eq(err, "id must look like proj-<20 lowercase letters/digits>");
    ck_assert_int_eq(iam_projects_get(&F.s, &admin, "user-aaaaaaaaaaaaaaaaaaaa", &out, err),
                     UC_EINVAL);
}
END_TEST

START_TEST(list_pages_for_admins_and_shows_only_the_own_project_to_others)
{
    char ids[5][UC_ID_LEN], name[8];
    struct iam_page pg = {.limit = 2};
    json_t *out = NULL;
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        fx_project(&F, name, ids[i]);
    }
    size_t seen = 0;
    char token[UC_ID_LEN] = "";
    do {
        pg.token = token[0] ? token : NULL;
        ck_assert_int_eq(iam_projects_list(&F.s, &admin, &pg, &out, err), 0);
        seen += json_array_size(json_object_get(out, "items"));
        const char *next = uc_json_str(out, "next_page_token", NULL);
        snprintf(token, sizeof(token), "%s", next ? next : "");
        json_decref(out);
    } while (token[0]);
    ck_assert_uint_eq(seen, 5);
    pg.token = "../../x";
    ck_assert_int_eq(iam_projects_list(&F.s, &admin, &pg, &out, err), UC_EINVAL);
    struct uc_auth_claims in2 = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", ids[2], UC_ROLE_READER);
    pg.token = NULL;
    ck_assert_int_eq(iam_projects_list(&F.s, &in2, &pg, &out, err), 0);
    json_t *items = json_object_get(out, "items");
    ck_assert_uint_eq(json_array_size(items), 1);
    ck_assert_str_eq(uc_json_str(json_array_get(items, 0), "id", ""), ids[2]);
    json_decref(out);
}
END_TEST

START_TEST(list_refuses_page_tokens_that_are_not_project_ids)
{
    char id[UC_ID_LEN];
    struct iam_page pg = {.limit = 10, .token = "garbage"};
    json_t *out = NULL;
    fx_project(&F, "web", id);
    ck_assert_int_eq(iam_projects_list(&F.s, &admin, &pg, &out, err), UC_EINVAL);
    ck_assert_str_eq(err, "page_token is not one this server handed out");
    ck_assert_ptr_null(out);
    pg.token = "user-aaaaaaaaaaaaaaaaaaaa"; /* an id, of another collection */
    ck_assert_int_eq(iam_projects_list(&F.s, &admin, &pg, &out, err), UC_EINVAL);
    pg.token = "";
    ck_assert_int_eq(iam_projects_list(&F.s, &admin, &pg, &out, err), UC_EINVAL);
    struct uc_auth_claims reader = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", id, UC_ROLE_READER);
    pg.token = "garbage";
    ck_assert_int_eq(iam_projects_list(&F.s, &reader, &pg, &out, err), UC_EINVAL);
    /* A well-formed project id is a token even when no such project is left. */
    pg.token = "proj-zzzzzzzzzzzzzzzzzzzz";
    ck_assert_int_eq(iam_projects_list(&F.s, &admin, &pg, &out, err), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(out, "items")), 0);
    json_decref(out);
    pg.token = id;
    ck_assert_int_eq(iam_projects_list(&F.s, &reader, &pg, &out, err), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(out, "items")), 1);
    json_decref(out);
}
END_TEST

static int patch(const struct uc_auth_claims *c, const char *id, const char *body, json_t **out)
{
    json_t *b = fx_json(body);
    *out = NULL;
    int rc = iam_projects_patch(&F.s, c, id, b, out, err);
    json_decref(b);
    return rc;
}

START_TEST(patch_with_a_stale_revision_is_a_conflict)
{
    char id[UC_ID_LEN], body[96];
    json_t *out = NULL;
    fx_project(&F, "web", id);
    ck_assert_int_eq(iam_projects_get(&F.s, &admin, id, &out, err), 0);
    int64_t rev = uc_json_int(out, "revision", 0);
    json_decref(out);
    uc_clock_manual_advance(&F.clock, 1500);
    snprintf(body, sizeof(body), "{\"description\":\"v2\",\"revision\":%lld}", (long long)rev);
    ck_assert_int_eq(patch(&admin, id, body, &out), 0);
    ck_assert_str_eq(uc_json_str(out, "description", ""), "v2");
    ck_assert_int_gt(uc_json_int(out, "revision", 0), rev);
    ck_assert_str_eq(uc_json_str(out, "updated_at", ""), "2027-01-15T08:00:01.500Z");
    ck_assert_str_eq(uc_json_str(out, "created_at", ""), "2027-01-15T08:00:00.000Z");
    json_decref(out);
    ck_assert_int_eq(patch(&admin, id, body, &out), UC_ECONFLICT);
    ck_assert_int_eq(patch(&admin, id, "{\"name\":\"x\"}", &out), UC_EINVAL);
}
END_TEST

START_TEST(patch_needs_project_admin)
{
    char id[UC_ID_LEN];
    json_t *out = NULL;
    fx_project(&F, "web", id);
    struct uc_auth_claims member = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", id, UC_ROLE_MEMBER);
    struct uc_auth_claims padmin = fx_caller("user-aaaaaaaaaaaaaaaaaaaa", id, UC_ROLE_ADMIN);
    ck_assert_int_eq(patch(&member, id, "{\"description\":\"x\"}", &out), UC_EFORBIDDEN);
    ck_assert_int_eq(patch(&padmin, id, "{\"description\":\"x\"}", &out), 0);
    json_decref(out);
}
END_TEST

START_TEST(delete_waits_for_bindings_and_service_accounts)
{
    char id[UC_ID_LEN], sa[UC_ID_LEN], rb[UC_ID_LEN];
    json_t *out = NULL;
    fx_project(&F, "web", id);
    fx_service_account(&F, "ci", id, sa);
    fx_bind(&F, sa, id, "reader", rb);
    ck_assert_int_eq(iam_projects_delete(&F.s, &admin, id, err), UC_EBUSY);
    ck_assert_int_eq(iam_bindings_delete(&F.s, &admin, rb, err), 0);
    ck_assert_int_eq(iam_projects_delete(&F.s, &admin, id, err), UC_EBUSY);
    ck_assert_int_eq(iam_service_accounts_delete(&F.s, &admin, sa, err), 0);
    ck_assert_int_eq(iam_projects_delete(&F.s, &admin, id, err), 0);
    ck_assert_int_eq(iam_projects_get(&F.s, &admin, id, &out, err), UC_ENOENT);
    ck_assert_int_eq(iam_projects_delete(&F.s, &admin, id, err), UC_ENOENT);
    /* The name is free again. */
    fx_project(&F, "web", id);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("projects");
    TCase *c = fx_tcase(s, "create", setup, teardown);
    tcase_add_test(c, create_answers_the_record_with_id_times_and_revision);
    tcase_add_test(c, duplicate_name_is_already_exists);
    tcase_add_test(c, bad_bodies_and_callers_are_refused);
    TCase *g = fx_tcase(s, "get_list", setup, teardown);
    tcase_add_test(g, get_hides_other_projects_and_checks_ids);
    tcase_add_test(g, list_pages_for_admins_and_shows_only_the_own_project_to_others);
    tcase_add_test(g, list_refuses_page_tokens_that_are_not_project_ids);
    TCase *p = fx_tcase(s, "patch", setup, teardown);
    tcase_add_test(p, patch_with_a_stale_revision_is_a_conflict);
    tcase_add_test(p, patch_needs_project_admin);
    TCase *d = fx_tcase(s, "delete", setup, teardown);
    tcase_add_test(d, delete_waits_for_bindings_and_service_accounts);
    return uc_check_run(s);
}
