/* test_tokens.c - password and access-key grants, the claims they carry,
 * verification against the keyring's JWKS, introspection, rate limits and
 * the router's authentication callback. */
#include <check.h>
#include <string.h>

#include "../credentials.h"
#include "../users.h"
#include "fixture.h"

static struct fx F;
static char err[UC_ERR_LEN];
static char proj[UC_ID_LEN], alice[UC_ID_LEN], sa[UC_ID_LEN], ak[UC_ID_LEN], secret[64];

static void setup(void)
{
    fx_setup(&F);
    fx_project(&F, "web", proj);
    fx_user(&F, "alice", alice);
    fx_bind(&F, alice, proj, "member", NULL);
    fx_service_account(&F, "ci", proj, sa);
    fx_bind(&F, sa, proj, "admin", NULL);
    fx_access_key(&F, sa, ak, secret);
}

static void teardown(void) { fx_teardown(&F); }

static int issue(const char *body, json_t **out)
{
    int64_t retry = 0;
    json_t *b = fx_json(body);
    *out = NULL;
    int rc = iam_tokens_issue(&F.s, b, out, &retry, err);
    json_decref(b);
    return rc;
}

static json_t *login_alice(void)
{
    json_t *out = NULL;
    ck_assert_msg(issue("{\"grant_type\":\"password\",\"username\":\"alice\","
                        "\"password\":\"correct horse\"}",
                        &out) == 0,
                  "%s", err);
    return out;
}

START_TEST(password_grant_carries_the_only_project_and_role)
{
    json_t *out = login_alice();
    ck_assert_str_eq(uc_json_str(out, "token_type", ""), "Bearer");
    ck_assert_str_eq(uc_json_str(out, "subject", ""), alice);
    ck_assert_str_eq(uc_json_str(out, "project_id", ""), proj);
    ck_assert_int_eq(uc_json_int(out, "expires_in", 0), 3600);
    ck_assert_str_eq(uc_json_str(out, "expires_at", ""), "2027-01-15T09:00:00.000Z");
    ck_assert(!uc_json_bool(out, "system_admin", true));
    json_t *roles = json_object_get(out, "roles");
    ck_assert_uint_eq(json_array_size(roles), 1);
    ck_assert_str_eq(json_string_value(json_array_get(roles, 0)), "member");
    struct uc_auth_claims c;
    ck_assert_int_eq(iam_tokens_verify(&F.s, uc_json_str(out, "token", ""), &c, err), 0);
    ck_assert_str_eq(c.sub, alice);
    ck_assert_str_eq(c.name, "alice");
    ck_assert_str_eq(c.project, proj);
    ck_assert_int_eq(c.role, UC_ROLE_MEMBER);
    ck_assert_int_eq(c.exp - c.iat, 3600);
    json_decref(out);
}
END_TEST

START_TEST(ttl_seconds_shortens_the_token_up_to_the_server_maximum)
{
    json_t *out = NULL;
    ck_assert_int_eq(issue("{\"grant_type\":\"password\",\"username\":\"alice\","
                           "\"password\":\"correct horse\",\"ttl_seconds\":900}",
                           &out),
                     0);
    ck_assert_int_eq(uc_json_int(out, "expires_in", 0), 900);
    json_decref(out);
    ck_assert_int_eq(issue("{\"grant_type\":\"password\",\"username\":\"alice\","
                           "\"password\":\"correct horse\",\"ttl_seconds\":3601}",
                           &out),
                     UC_EINVAL);
    ck_assert_int_eq(issue("{\"grant_type\":\"password\",\"username\":\"alice\","
                           "\"password\":\"correct horse\",\"ttl_seconds\":59}",
                           &out),
                     UC_EINVAL);
}
END_TEST

START_TEST(wrong_password_and_unknown_user_fail_alike)
{
    json_t *out = NULL;
    char first[UC_ERR_LEN];
    ck_assert_int_eq(issue("{\"grant_type\":\"password\",\"username\":\"alice\","
                           "\"password\":\"wrong horse\"}",
                           &out),
                     UC_EUNAUTH);
    snprintf(first, sizeof(first), "%s", err);
    ck_assert_int_eq(issue("{\"grant_type\":\"password\",\"username\":\"mallory\","
                           "\"password\":\"wrong horse\"}",
                           &out),
                     UC_EUNAUTH);
    ck_assert_str_eq(err, first);
    ck_assert_str_eq(err, "invalid credentials");
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(atomic_load(&F.s.counters.token_failures), 2);
}
END_TEST

START_TEST(disabled_user_cannot_log_in)
{
    struct uc_auth_claims admin = fx_admin();
    json_t *b = fx_json("{\"disabled\":true}"), *out = NULL;
    ck_assert_int_eq(iam_users_patch(&F.s, &admin, alice, b, &out, err), 0);
    json_decref(out);
    json_decref(b);
    ck_assert_int_eq(issue("{\"grant_type\":\"password\",\"username\":\"alice\","
                           "\"password\":\"correct horse\"}",
                           &out),
                     UC_EUNAUTH);
    ck_assert_str_eq(err, "invalid credentials");
}
END_TEST

START_TEST(project_without_a_role_is_forbidden)
{
    char other[UC_ID_LEN], body[256];
    json_t *out = NULL;
    fx_project(&F, "other", other);
    snprintf(body, sizeof(body),
             "{\"grant_type\":\"password\",\"username\":\"alice\",\"password\":\"correct "
             "horse\",\"project_id\":\"%s\"}",
             other);
    ck_assert_int_eq(issue(body, &out), UC_EFORBIDDEN);
    snprintf(body, sizeof(body),
             "{\"grant_type\":\"password\",\"username\":\"alice\",\"password\":\"correct "
             "horse\",\"project_id\":\"%s\"}",
             proj);
    ck_assert_int_eq(issue(body, &out), 0);
    ck_assert_str_eq(uc_json_str(out, "project_id", ""), proj);
    json_decref(out);
}
END_TEST

START_TEST(two_project_bindings_give_a_token_without_project)
{
    char other[UC_ID_LEN];
    fx_project(&F, "other", other);
    fx_bind(&F, alice, other, "reader", NULL);
    json_t *out = login_alice();
    ck_assert(json_is_null(json_object_get(out, "project_id")));
    ck_assert_uint_eq(json_array_size(json_object_get(out, "roles")), 0);
    json_decref(out);
}
END_TEST

START_TEST(system_admin_binding_sets_sys)
{
    fx_bind(&F, alice, NULL, "system-admin", NULL);
    json_t *out = login_alice();
    ck_assert(uc_json_bool(out, "system_admin", false));
    struct uc_auth_claims c;
    ck_assert_int_eq(iam_tokens_verify(&F.s, uc_json_str(out, "token", ""), &c, err), 0);
    ck_assert(c.system_admin);
    ck_assert_str_eq(c.project, proj);
    json_decref(out);
}
END_TEST

START_TEST(access_key_grant_defaults_to_the_service_account_project)
{
    char body[256];
    json_t *out = NULL;
    snprintf(body, sizeof(body),
             "{\"grant_type\":\"access_key\",\"access_key_id\":\"%s\",\"secret\":\"%s\"}", ak,
             secret);
    ck_assert_msg(issue(body, &out) == 0, "%s", err);
    ck_assert_str_eq(uc_json_str(out, "subject", ""), sa);
    ck_assert_str_eq(uc_json_str(out, "project_id", ""), proj);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(out, "roles"), 0)), "admin");
    json_decref(out);
}
END_TEST

START_TEST(wrong_secret_unknown_and_revoked_keys_fail_alike)
{
    struct uc_auth_claims admin = fx_admin();
    char body[256];
    json_t *out = NULL;
    snprintf(body, sizeof(body),
             "{\"grant_type\":\"access_key\",\"access_key_id\":\"%s\",\"secret\":\"nope\"}", ak);
    ck_assert_int_eq(issue(body, &out), UC_EUNAUTH);
    ck_assert_int_eq(issue("{\"grant_type\":\"access_key\",\"access_key_id\":"
                           "\"ak-aaaaaaaaaaaaaaaaaaaa\",\"secret\":\"nope\"}",
                           &out),
                     UC_EUNAUTH);
    ck_assert_str_eq(err, "invalid credentials");
    ck_assert_int_eq(iam_credentials_revoke(&F.s, &admin, ak, err), 0);
    snprintf(body, sizeof(body),
             "{\"grant_type\":\"access_key\",\"access_key_id\":\"%s\",\"secret\":\"%s\"}", ak,
             secret);
    ck_assert_int_eq(issue(body, &out), UC_EUNAUTH);
    ck_assert_str_eq(err, "invalid credentials");
}
END_TEST

START_TEST(bad_bodies_are_invalid)
{
    json_t *out = NULL;
    ck_assert_int_eq(issue("{\"grant_type\":\"magic\"}", &out), UC_EINVAL);
    ck_assert_int_eq(issue("{\"username\":\"alice\",\"password\":\"x\"}", &out), UC_EINVAL);
    ck_assert_int_eq(issue("{\"grant_type\":\"password\",\"username\":\"alice\","
                           "\"password\":\"correct horse\",\"secret\":\"x\"}",
                           &out),
                     UC_EINVAL);
    ck_assert_str_eq(err, "unknown field 'secret'");
    ck_assert_int_eq(issue("{\"grant_type\":\"password\",\"username\":\"alice\","
                           "\"password\":\"correct horse\",\"project_id\":\"web\"}",
                           &out),
                     UC_EINVAL);
}
END_TEST

START_TEST(too_many_attempts_are_rate_limited_per_username)
{
    int64_t retry = 0;
    json_t *b = fx_json("{\"grant_type\":\"password\",\"username\":\"alice\",\"password\":\"x\"}");
    json_t *out = NULL;
    for (int i = 0; i < FX_RATE; i++)
        ck_assert_int_eq(iam_tokens_issue(&F.s, b, &out, &retry, err), UC_EUNAUTH);
    ck_assert_int_eq(iam_tokens_issue(&F.s, b, &out, &retry, err), UC_ERATE);
    ck_assert_int_eq(retry, 12); /* 5 per minute: one every 12 s */
    ck_assert_uint_eq(atomic_load(&F.s.counters.rate_limited), 1);
    json_decref(b);
    /* Another user is not affected. */
    ck_assert_int_eq(issue("{\"grant_type\":\"password\",\"username\":\"bob\","
                           "\"password\":\"x\"}",
                           &out),
                     UC_EUNAUTH);
    uc_clock_manual_advance(&F.clock, 12000);
    json_t *ok = login_alice();
    json_decref(ok);
}
END_TEST

/* The keyring's JWKS, as a verifier's fetch callback (no HTTP). */
static int fetch_jwks(void *ctx, json_t **out, char e[UC_ERR_LEN])
{
    return iam_keyring_jwks(ctx, out, e);
}

START_TEST(token_verifies_with_a_verifier_on_the_keyring_jwks)
{
    struct uc_auth_verifier *v = NULL;
    struct uc_auth_verifier_opts o = {
        .fetch = fetch_jwks, .fetch_ctx = F.s.keyring, .clock = &F.clock.clock};
    struct uc_auth_claims c;
    json_t *out = login_alice();
    ck_assert_int_eq(uc_auth_verifier_create(&v, &o, err), 0);
    ck_assert_msg(uc_auth_verify(v, uc_json_str(out, "token", ""), &c, err) == 0, "%s", err);
    ck_assert_str_eq(c.sub, alice);
    ck_assert_int_eq(c.role, UC_ROLE_MEMBER);
    uc_clock_manual_advance(&F.clock, 3601 * 1000);
    ck_assert_int_eq(uc_auth_verify(v, uc_json_str(out, "token", ""), &c, err), UC_EUNAUTH);
    ck_assert_int_eq(iam_tokens_verify(&F.s, uc_json_str(out, "token", ""), &c, err), UC_EUNAUTH);
    uc_auth_verifier_destroy(v);
    json_decref(out);
}
END_TEST

static bool introspect_active(const char *token)
{
    json_t *b = json_pack("{s:s}", "token", token), *out = NULL;
    ck_assert_int_eq(iam_tokens_introspect(&F.s, b, &out, err), 0);
    bool active = uc_json_bool(out, "active", false);
    if (active) {
        ck_assert_str_eq(uc_json_str(out, "sub", ""), alice);
        ck_assert_str_eq(uc_json_str(out, "project", ""), proj);
        ck_assert_ptr_nonnull(uc_json_str(out, "kid", NULL));
    } else {
        ck_assert_uint_eq(json_object_size(out), 1);
    }
    json_decref(out);
    json_decref(b);
    return active;
}

START_TEST(introspection_reflects_deletion_at_once)
{
    struct uc_auth_claims admin = fx_admin();
    json_t *out = login_alice();
    const char *token = uc_json_str(out, "token", "");
    ck_assert(introspect_active(token));
    ck_assert(!introspect_active("garbage"));
    ck_assert_int_eq(iam_users_delete(&F.s, &admin, alice, err), 0);
    ck_assert(!introspect_active(token));
    json_decref(out);
}
END_TEST

START_TEST(authn_takes_the_bootstrap_token_as_system_admin)
{
    struct uc_auth_claims c;
    ck_assert_int_eq(iam_tokens_authn(&F.s, FX_BOOTSTRAP, &c, err), 0);
    ck_assert(c.system_admin);
    ck_assert_str_eq(c.sub, "bootstrap");
    ck_assert_int_eq(iam_tokens_authn(&F.s, FX_BOOTSTRAP "x", &c, err), UC_EUNAUTH);
    ck_assert_int_eq(iam_tokens_authn(&F.s, "", &c, err), UC_EUNAUTH);
    json_t *out = login_alice();
    ck_assert_int_eq(iam_tokens_authn(&F.s, uc_json_str(out, "token", ""), &c, err), 0);
    ck_assert_str_eq(c.sub, alice);
    ck_assert(!c.system_admin);
    json_decref(out);
}
END_TEST

START_TEST(whoami_answers_the_claims)
{
    struct uc_auth_claims c;
    json_t *out = login_alice(), *w = NULL;
    ck_assert_int_eq(iam_tokens_verify(&F.s, uc_json_str(out, "token", ""), &c, err), 0);
    ck_assert_int_eq(iam_tokens_whoami(&c, &w), 0);
    ck_assert_str_eq(uc_json_str(w, "sub", ""), alice);
    ck_assert_str_eq(uc_json_str(w, "kind", ""), "user");
    ck_assert_str_eq(uc_json_str(w, "project", ""), proj);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(w, "roles"), 0)), "member");
    ck_assert(!uc_json_bool(w, "sys", true));
    json_decref(w);
    json_decref(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokens");
    TCase *pw = fx_tcase(s, "issue_password", setup, teardown);
    tcase_add_test(pw, password_grant_carries_the_only_project_and_role);
    tcase_add_test(pw, ttl_seconds_shortens_the_token_up_to_the_server_maximum);
    tcase_add_test(pw, wrong_password_and_unknown_user_fail_alike);
    tcase_add_test(pw, disabled_user_cannot_log_in);
    tcase_add_test(pw, project_without_a_role_is_forbidden);
    tcase_add_test(pw, two_project_bindings_give_a_token_without_project);
    tcase_add_test(pw, system_admin_binding_sets_sys);
    tcase_add_test(pw, bad_bodies_are_invalid);
    tcase_add_test(pw, too_many_attempts_are_rate_limited_per_username);
    TCase *akc = fx_tcase(s, "issue_access_key", setup, teardown);
    tcase_add_test(akc, access_key_grant_defaults_to_the_service_account_project);
    tcase_add_test(akc, wrong_secret_unknown_and_revoked_keys_fail_alike);
    TCase *ver = fx_tcase(s, "verify_introspect_authn", setup, teardown);
    tcase_add_test(ver, token_verifies_with_a_verifier_on_the_keyring_jwks);
    tcase_add_test(ver, introspection_reflects_deletion_at_once);
    tcase_add_test(ver, authn_takes_the_bootstrap_token_as_system_admin);
    tcase_add_test(ver, whoami_answers_the_claims);
    return uc_check_run(s);
}
