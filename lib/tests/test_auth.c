/* test_auth.c - role checks, claim validation, the token verifier and its
 * token cache, with tokens minted here on a manual clock and a fake IAM
 * key-set source that counts how often it is asked: a fetch callback, or a
 * real uc_http server for the background refetch of a stale key set. */
#include <arpa/inet.h>
#include <check.h>

#include "uc_check.h"
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../auth_internal.h"
#include "uc/alloc.h"
#include "uc/auth.h"
#include "uc/crypto.h"
#include "uc/http.h"
#include "uc/httpc.h"
#include "uc/jws.h"
#include "uc/log.h"

#define T0_MS 1767323045000LL
#define NOW ((json_int_t)(T0_MS / 1000))

static struct uc_clock_manual clk;
static struct uc_crypto_key *k1, *k2, *k3;
static json_t *jwks; /* what the fake IAM serves */
static atomic_int fetches;
static bool fetch_fails;
static struct uc_auth_verifier *v;
static char err[UC_ERR_LEN];

static int fake_fetch(void *ctx, json_t **out, char e[UC_ERR_LEN])
{
    (void)ctx; /* the fake IAM is global */
    atomic_fetch_add(&fetches, 1);
    if (fetch_fails)
        return uc_err_set(e, UC_EUNAVAIL, "iam is down");
    *out = json_deep_copy(jwks);
    return *out ? 0 : UC_ENOMEM;
}

static void publish(const struct uc_crypto_key *k, const char *kid)
{
    json_t *jwk = uc_jws_jwk(k, kid);
    ck_assert_ptr_nonnull(jwk);
    ck_assert_int_eq(json_array_append_new(json_object_get(jwks, "keys"), jwk), 0);
}

static struct uc_auth_verifier *make_verifier(const char *audience, int64_t leeway_s)
{
    struct uc_auth_verifier_opts o = {
        .fetch = fake_fetch,
        .audience = audience,
        .clock = &clk.clock,
        .min_refetch_ms = 5000,
        .leeway_s = leeway_s,
    };
    struct uc_auth_verifier *ver = NULL;
    ck_assert_int_eq(uc_auth_verifier_create(&ver, &o, err), 0);
    return ver;
}

static void setup(void)
{
    uc_clock_manual_init(&clk, T0_MS);
    ck_assert_int_eq(uc_crypto_ed25519_generate(&k1, err), 0);
    ck_assert_int_eq(uc_crypto_ed25519_generate(&k2, err), 0);
    ck_assert_int_eq(uc_crypto_ed25519_generate(&k3, err), 0);
    jwks = json_pack("{s:[]}", "keys");
    publish(k1, "k1");
    atomic_store(&fetches, 0);
    fetch_fails = false;
    v = make_verifier(NULL, 0);
    err[0] = '\0';
}

static void teardown(void)
{
    uc_auth_verifier_destroy(v);
    json_decref(jwks);
    uc_crypto_key_destroy(k1);
    uc_crypto_key_destroy(k2);
    uc_crypto_key_destroy(k3);
}

/* The claims IAM signs for alice, a member of proj-1, valid for ten minutes. */
static json_t *claims(void)
{
    json_t *c = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[s],s:I,s:I,s:s}", "iss", UC_AUTH_ISSUER, "aud",
                          UC_AUTH_AUDIENCE, "sub", "user-abc", "name", "alice", "project", "proj-1",
                          "roles", "member", "iat", NOW, "exp", NOW + 600, "jti", "tok-1");
    ck_assert_ptr_nonnull(c);
    return c;
}

static void set(json_t *c, const char *key, json_t *val)
{
    ck_assert_int_eq(json_object_set_new(c, key, val), 0);
}

/* Sign payload (reference stolen) with k under kid. Free with uc_free. */
static char *mint(const struct uc_crypto_key *k, const char *kid, json_t *payload)
{
    char *tok = NULL;
    ck_assert_int_eq(uc_jws_sign(payload, k, kid, &tok), 0);
    json_decref(payload);
    return tok;
}

static int verify(const char *tok, struct uc_auth_claims *c)
{
    err[0] = '\0';
    return uc_auth_verify(v, tok, c, err);
}

/* --- roles --------------------------------------------------------------- */

START_TEST(role_names_round_trip)
{
    static const char *const names[] = {"reader", "member", "admin", "system-admin"};
    for (int i = 0; i < 4; i++) {
        enum uc_role r = UC_ROLE_ANY;
        ck_assert_int_eq(uc_role_parse(names[i], &r), 0);
        ck_assert_int_eq(r, UC_ROLE_READER + i);
        ck_assert_str_eq(uc_role_name(r), names[i]);
    }
    enum uc_role r = UC_ROLE_ADMIN;
    ck_assert_int_eq(uc_role_parse("owner", &r), UC_EINVAL);
    ck_assert_int_eq(uc_role_parse("Admin", &r), UC_EINVAL);
    ck_assert_int_eq(uc_role_parse("none", &r), UC_EINVAL);
    ck_assert_int_eq(uc_role_parse(NULL, &r), UC_EINVAL);
    ck_assert_int_eq(r, UC_ROLE_ADMIN);
    ck_assert_str_eq(uc_role_name(UC_ROLE_ANY), "none");
}
END_TEST

/* --- uc_auth_require ----------------------------------------------------- */

START_TEST(require_passes_equal_or_higher_roles)
{
    struct uc_auth_claims c = {.project = "proj-1", .role = UC_ROLE_MEMBER};
    ck_assert_int_eq(uc_auth_require(&c, UC_ROLE_ANY, err), 0);
    ck_assert_int_eq(uc_auth_require(&c, UC_ROLE_READER, err), 0);
    ck_assert_int_eq(uc_auth_require(&c, UC_ROLE_MEMBER, err), 0);
}
END_TEST

START_TEST(require_names_the_missing_role)
{
    struct uc_auth_claims c = {.project = "proj-1", .role = UC_ROLE_READER};
    ck_assert_int_eq(uc_auth_require(&c, UC_ROLE_ADMIN, err), UC_EFORBIDDEN);
    ck_assert_str_eq(err,
                     "this call needs the 'admin' role in the project; the token has 'reader'");
    struct uc_auth_claims none = {0};
    ck_assert_int_eq(uc_auth_require(&none, UC_ROLE_READER, err), UC_EFORBIDDEN);
    ck_assert_str_eq(err,
                     "this call needs the 'reader' role in the project; the token has no role");
    ck_assert_int_eq(uc_auth_require(&none, UC_ROLE_ANY, err), 0);
}
END_TEST

START_TEST(require_system_admin_needs_the_flag)
{
    struct uc_auth_claims c = {.project = "proj-1", .role = UC_ROLE_ADMIN};
    ck_assert_int_eq(uc_auth_require(&c, UC_ROLE_SYSTEM_ADMIN, err), UC_EFORBIDDEN);
    ck_assert_str_eq(err, "this call needs the 'system-admin' role");
    struct uc_auth_claims sa = {.system_admin = true};
    for (int r = UC_ROLE_ANY; r <= UC_ROLE_SYSTEM_ADMIN; r++)
        ck_assert_int_eq(uc_auth_require(&sa, (enum uc_role)r, err), 0);
}
END_TEST

/* --- uc_auth_check_project ------------------------------------------------ */

START_TEST(check_project_hides_other_projects)
{
    struct uc_auth_claims c = {.project = "proj-1", .role = UC_ROLE_ADMIN};
    ck_assert_int_eq(uc_auth_check_project(&c, "proj-2", UC_ROLE_READER, err), UC_ENOENT);
    ck_assert_str_eq(err, "not found");
    ck_assert_int_eq(uc_auth_check_project(&c, NULL, UC_ROLE_READER, err), UC_ENOENT);
    struct uc_auth_claims none = {.role = UC_ROLE_ANY};
    ck_assert_int_eq(uc_auth_check_project(&none, "", UC_ROLE_ANY, err), UC_ENOENT);
}
END_TEST

START_TEST(check_project_checks_the_role_inside)
{
    struct uc_auth_claims c = {.project = "proj-1", .role = UC_ROLE_READER};
    ck_assert_int_eq(uc_auth_check_project(&c, "proj-1", UC_ROLE_READER, err), 0);
    ck_assert_int_eq(uc_auth_check_project(&c, "proj-1", UC_ROLE_MEMBER, err), UC_EFORBIDDEN);
    ck_assert_str_eq(err,
                     "this call needs the 'member' role in the project; the token has 'reader'");
}
END_TEST

START_TEST(check_project_lets_system_admins_everywhere)
{
    struct uc_auth_claims sa = {.system_admin = true};
    ck_assert_int_eq(uc_auth_check_project(&sa, "proj-9", UC_ROLE_ADMIN, err), 0);
}
END_TEST

/* --- uc_auth_claims_from_json ---------------------------------------------- */

static int from_json(json_t *c, int64_t leeway, struct uc_auth_claims *out)
{
    err[0] = '\0';
    int rc = uc_auth_claims_from_json(c, NOW, leeway, out, err);
    json_decref(c);
    return rc;
}

static void assert_claims_reject(json_t *c, const char *msg)
{
    struct uc_auth_claims out = {.role = UC_ROLE_ADMIN};
    ck_assert_int_eq(from_json(c, 0, &out), UC_EUNAUTH);
    ck_assert_str_eq(err, msg);
    ck_assert_int_eq(out.role, UC_ROLE_ADMIN); /* untouched */
}

START_TEST(claims_fill_every_field)
{
    struct uc_auth_claims c;
    ck_assert_int_eq(from_json(claims(), 0, &c), 0);
    ck_assert_str_eq(c.sub, "user-abc");
    ck_assert_str_eq(c.name, "alice");
    ck_assert_str_eq(c.project, "proj-1");
    ck_assert_str_eq(c.jti, "tok-1");
    ck_assert_str_eq(c.kid, "");
    ck_assert_int_eq(c.role, UC_ROLE_MEMBER);
    ck_assert(!c.system_admin);
    ck_assert_int_eq(c.iat, NOW);
    ck_assert_int_eq(c.exp, NOW + 600);
}
END_TEST

START_TEST(claims_take_the_highest_known_role)
{
    json_t *j = claims();
    set(j, "roles", json_pack("[s,s,s,s]", "reader", "owner", "admin", "member"));
    struct uc_auth_claims c;
    ck_assert_int_eq(from_json(j, 0, &c), 0);
    ck_assert_int_eq(c.role, UC_ROLE_ADMIN);
    j = claims();
    set(j, "roles", json_pack("[s]", "system-admin"));
    ck_assert_int_eq(from_json(j, 0, &c), 0);
    ck_assert_int_eq(c.role, UC_ROLE_ANY);
    ck_assert(!c.system_admin);
}
END_TEST

START_TEST(claims_without_project_have_no_role)
{
    json_t *j = claims();
    ck_assert_int_eq(json_object_del(j, "project"), 0);
    set(j, "sys", json_true());
    struct uc_auth_claims c;
    ck_assert_int_eq(from_json(j, 0, &c), 0);
    ck_assert_str_eq(c.project, "");
    ck_assert_int_eq(c.role, UC_ROLE_ANY);
    ck_assert(c.system_admin);
}
END_TEST

START_TEST(claims_check_issuer_and_audience)
{
    json_t *j = claims();
    set(j, "iss", json_string("someone-else"));
    assert_claims_reject(j, "token issuer is not 'ultracloud-iam'");
    j = claims();
    ck_assert_int_eq(json_object_del(j, "iss"), 0);
    assert_claims_reject(j, "token issuer is not 'ultracloud-iam'");
    j = claims();
    set(j, "aud", json_string("other"));
    assert_claims_reject(j, "token audience does not include 'ultracloud'");
    j = claims();
    set(j, "aud", json_pack("[s,i]", "other", 1));
    assert_claims_reject(j, "token audience does not include 'ultracloud'");
    j = claims();
    ck_assert_int_eq(json_object_del(j, "aud"), 0);
    assert_claims_reject(j, "token audience does not include 'ultracloud'");
    j = claims();
    set(j, "aud", json_pack("[s,s]", "other", "ultracloud"));
    struct uc_auth_claims c;
    ck_assert_int_eq(from_json(j, 0, &c), 0);
}
END_TEST

START_TEST(claims_check_expiry_with_leeway)
{
    json_t *j = claims();
    set(j, "exp", json_integer(NOW));
    assert_claims_reject(j, "token expired");
    j = claims();
    ck_assert_int_eq(json_object_del(j, "exp"), 0);
    assert_claims_reject(j, "token has no 'exp' claim");
    j = claims();
    set(j, "exp", json_real((double)NOW + 600));
    assert_claims_reject(j, "token claim 'exp' must be an integer");
    struct uc_auth_claims c;
    j = claims();
    set(j, "exp", json_integer(NOW + 1));
    ck_assert_int_eq(from_json(j, 0, &c), 0);
    j = claims();
    set(j, "exp", json_integer(NOW - 29));
    ck_assert_int_eq(from_json(j, 30, &c), 0);
    j = claims();
    set(j, "exp", json_integer(NOW - 30));
    ck_assert_int_eq(from_json(j, 30, &c), UC_EUNAUTH);
}
END_TEST

START_TEST(claims_check_not_before_and_issued_at)
{
    json_t *j = claims();
    set(j, "nbf", json_integer(NOW + 1));
    assert_claims_reject(j, "token not valid yet");
    j = claims();
    set(j, "iat", json_integer(NOW + 1));
    assert_claims_reject(j, "token issued in the future");
    struct uc_auth_claims c;
    j = claims();
    set(j, "nbf", json_integer(NOW + 30));
    set(j, "iat", json_integer(NOW + 30));
    ck_assert_int_eq(from_json(j, 30, &c), 0);
    j = claims();
    set(j, "nbf", json_integer(NOW));
    ck_assert_int_eq(from_json(j, 0, &c), 0);
}
END_TEST

START_TEST(claims_check_subject_and_string_sizes)
{
    char s63[64], s64[65];
    memset(s63, 'a', 63);
    s63[63] = '\0';
    memset(s64, 'a', 64);
    s64[64] = '\0';
    json_t *j = claims();
    set(j, "sub", json_string(""));
    assert_claims_reject(j, "token claim 'sub' is empty");
    j = claims();
    ck_assert_int_eq(json_object_del(j, "sub"), 0);
    assert_claims_reject(j, "token has no 'sub' claim");
    j = claims();
    set(j, "sub", json_string(s64));
    assert_claims_reject(j, "token claim 'sub' is too long");
    static const char *const others[] = {"name", "project", "jti"};
    for (size_t i = 0; i < 3; i++) {
        char msg[64];
        j = claims();
        set(j, others[i], json_string(s64));
        snprintf(msg, sizeof(msg), "token claim '%s' is too long", others[i]);
        assert_claims_reject(j, msg);
        j = claims();
        set(j, others[i], json_integer(1));
        snprintf(msg, sizeof(msg), "token claim '%s' must be a string", others[i]);
        assert_claims_reject(j, msg);
    }
    struct uc_auth_claims c;
    j = claims();
    set(j, "sub", json_string(s63));
    ck_assert_int_eq(from_json(j, 0, &c), 0);
    ck_assert_str_eq(c.sub, s63);
}
END_TEST

START_TEST(claims_check_roles_and_sys_types)
{
    json_t *j = claims();
    set(j, "roles", json_string("admin"));
    assert_claims_reject(j, "token claim 'roles' must be an array");
    j = claims();
    set(j, "roles", json_pack("[i]", 3));
    assert_claims_reject(j, "token claim 'roles' must hold strings");
    j = claims();
    set(j, "sys", json_string("true"));
    assert_claims_reject(j, "token claim 'sys' must be true or false");
    struct uc_auth_claims out;
    ck_assert_int_eq(from_json(json_pack("[]"), 0, &out), UC_EUNAUTH);
    ck_assert_str_eq(err, "token payload is not a JSON object");
}
END_TEST

/* --- the verifier ----------------------------------------------------------- */

START_TEST(good_token_verifies)
{
    char *tok = mint(k1, "k1", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(tok, &c), 0);
    ck_assert_str_eq(c.sub, "user-abc");
    ck_assert_str_eq(c.kid, "k1");
    ck_assert_str_eq(c.project, "proj-1");
    ck_assert_int_eq(c.role, UC_ROLE_MEMBER);
    ck_assert_int_eq(atomic_load(&fetches), 1);
    uc_free(tok);
}
END_TEST

START_TEST(known_kid_never_refetches)
{
    char *tok = mint(k1, "k1", claims());
    struct uc_auth_claims c;
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(verify(tok, &c), 0);
        uc_clock_manual_advance(&clk, 10000);
    }
    ck_assert_int_eq(atomic_load(&fetches), 1);
    uc_free(tok);
}
END_TEST

START_TEST(expired_token_is_rejected)
{
    char *tok = mint(k1, "k1", claims());
    struct uc_auth_claims c = {.role = UC_ROLE_ADMIN};
    uc_clock_manual_advance(&clk, 600 * 1000);
    ck_assert_int_eq(verify(tok, &c), UC_EUNAUTH);
    ck_assert_str_eq(err, "token expired");
    ck_assert_int_eq(c.role, UC_ROLE_ADMIN);
    uc_free(tok);
}
END_TEST

START_TEST(leeway_tolerates_small_skew)
{
    struct uc_auth_verifier *lv = make_verifier(NULL, 30);
    char *tok = mint(k1, "k1", claims());
    struct uc_auth_claims c;
    uc_clock_manual_advance(&clk, 620 * 1000);
    ck_assert_int_eq(uc_auth_verify(lv, tok, &c, err), 0);
    uc_clock_manual_advance(&clk, 10 * 1000);
    ck_assert_int_eq(uc_auth_verify(lv, tok, &c, err), UC_EUNAUTH);
    uc_auth_verifier_destroy(lv);
    uc_free(tok);
}
END_TEST

START_TEST(not_yet_valid_token_is_rejected)
{
    json_t *j = claims();
    set(j, "nbf", json_integer(NOW + 60));
    char *tok = mint(k1, "k1", j);
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(tok, &c), UC_EUNAUTH);
    ck_assert_str_eq(err, "token not valid yet");
    uc_clock_manual_advance(&clk, 60 * 1000);
    ck_assert_int_eq(verify(tok, &c), 0);
    uc_free(tok);
}
END_TEST

START_TEST(wrong_audience_or_issuer_is_rejected)
{
    json_t *j = claims();
    set(j, "aud", json_string("somewhere-else"));
    char *tok = mint(k1, "k1", j);
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(tok, &c), UC_EUNAUTH);
    ck_assert_str_eq(err, "token audience does not include 'ultracloud'");
    uc_free(tok);
    j = claims();
    set(j, "iss", json_string("evil-iam"));
    tok = mint(k1, "k1", j);
    ck_assert_int_eq(verify(tok, &c), UC_EUNAUTH);
    ck_assert_str_eq(err, "token issuer is not 'ultracloud-iam'");
    uc_free(tok);
}
END_TEST

START_TEST(verifier_audience_is_configurable)
{
    struct uc_auth_verifier *gw = make_verifier("apigateway", 0);
    json_t *j = claims();
    set(j, "aud", json_pack("[s]", "apigateway"));
    char *tok = mint(k1, "k1", j), *plain = mint(k1, "k1", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(uc_auth_verify(gw, tok, &c, err), 0);
    ck_assert_int_eq(uc_auth_verify(gw, plain, &c, err), UC_EUNAUTH);
    ck_assert_str_eq(err, "token audience does not include 'apigateway'");
    ck_assert_int_eq(verify(tok, &c), UC_EUNAUTH);
    uc_auth_verifier_destroy(gw);
    uc_free(tok);
    uc_free(plain);
}
END_TEST

START_TEST(tampered_payload_is_rejected)
{
    json_t *j = claims();
    set(j, "roles", json_pack("[s]", "admin"));
    char *member = mint(k1, "k1", claims()), *admin = mint(k1, "k1", j);
    /* header and signature of the member token around the admin payload */
    char *m1 = strchr(member, '.'), *m2 = strrchr(member, '.');
    char *a1 = strchr(admin, '.'), *a2 = strrchr(admin, '.');
    char spliced[4096];
    snprintf(spliced, sizeof(spliced), "%.*s%.*s%s", (int)(m1 - member), member, (int)(a2 - a1), a1,
             m2);
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(spliced, &c), UC_EUNAUTH);
    member[(m1 - member) + 5] ^= 1; /* flip one bit of the payload */
    ck_assert_int_eq(verify(member, &c), UC_EUNAUTH);
    uc_free(member);
    uc_free(admin);
}
END_TEST

START_TEST(key_outside_the_key_set_is_rejected)
{
    char *tok = mint(k3, "k1", claims()); /* claims a published kid */
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(tok, &c), UC_EUNAUTH);
    uc_free(tok);
}
END_TEST

START_TEST(unknown_kid_refetches_once_and_is_rate_limited)
{
    char *good = mint(k1, "k1", claims()), *stranger = mint(k3, "k3", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(good, &c), 0);
    ck_assert_int_eq(atomic_load(&fetches), 1);
    uc_clock_manual_advance(&clk, 5000);
    ck_assert_int_eq(verify(stranger, &c), UC_EUNAUTH);
    ck_assert_str_eq(err, "token signed by an unknown key");
    ck_assert_int_eq(atomic_load(&fetches), 2);
    ck_assert_int_eq(verify(stranger, &c), UC_EUNAUTH);
    uc_clock_manual_advance(&clk, 4999);
    ck_assert_int_eq(verify(stranger, &c), UC_EUNAUTH);
    ck_assert_int_eq(atomic_load(&fetches), 2);
    uc_clock_manual_advance(&clk, 1);
    ck_assert_int_eq(verify(stranger, &c), UC_EUNAUTH);
    ck_assert_int_eq(atomic_load(&fetches), 3);
    ck_assert_int_eq(verify(good, &c), 0);
    ck_assert_int_eq(atomic_load(&fetches), 3);
    uc_free(good);
    uc_free(stranger);
}
END_TEST

START_TEST(rotated_key_is_found_by_refetch)
{
    char *old = mint(k1, "k1", claims()), *new = mint(k2, "k2", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(old, &c), 0);
    publish(k2, "k2"); /* IAM rotates: k2 appears beside k1 */
    uc_clock_manual_advance(&clk, 5000);
    ck_assert_int_eq(verify(new, &c), 0);
    ck_assert_str_eq(c.kid, "k2");
    ck_assert_int_eq(atomic_load(&fetches), 2);
    /* IAM retires k1; the next refetch drops it. */
    ck_assert_int_eq(json_array_remove(json_object_get(jwks, "keys"), 0), 0);
    uc_clock_manual_advance(&clk, 5000);
    char *stranger = mint(k3, "k3", claims());
    ck_assert_int_eq(verify(stranger, &c), UC_EUNAUTH);
    ck_assert_int_eq(atomic_load(&fetches), 3);
    ck_assert_int_eq(verify(old, &c), UC_EUNAUTH);
    ck_assert_int_eq(verify(new, &c), 0);
    uc_free(old);
    uc_free(new);
    uc_free(stranger);
}
END_TEST

/* A token with header `hdr` in front of a real token's payload and signature. */
static char *with_header(const char *hdr)
{
    char *tok = mint(k1, "k1", claims());
    char *h64 = uc_b64url_encode(hdr, strlen(hdr));
    ck_assert_ptr_nonnull(h64);
    char *forged = uc_asprintf("%s%s", h64, strchr(tok, '.'));
    ck_assert_ptr_nonnull(forged);
    uc_free(h64);
    uc_free(tok);
    return forged;
}

START_TEST(other_algorithms_are_rejected)
{
    static const char *const headers[] = {
        "{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}",
        "{\"alg\":\"none\",\"kid\":\"k1\",\"typ\":\"JWT\"}",
        "{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"JWT\"}",
        "{\"kid\":\"k1\",\"typ\":\"JWT\"}",
    };
    struct uc_auth_claims c;
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *forged = with_header(headers[i]);
        ck_assert_msg(verify(forged, &c) == UC_EUNAUTH, "accepted %s", headers[i]);
        uc_free(forged);
    }
    char *same = with_header("{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"typ\":\"JWT\"}");
    ck_assert_int_eq(verify(same, &c), 0); /* the forging itself is sound */
    uc_free(same);
}
END_TEST

START_TEST(malformed_tokens_are_rejected)
{
    struct uc_auth_claims c;
    ck_assert_int_eq(verify("", &c), UC_EUNAUTH);
    ck_assert_str_eq(err, "no token");
    ck_assert_int_eq(verify(NULL, &c), UC_EUNAUTH);
    ck_assert_int_eq(verify("abc", &c), UC_EUNAUTH);
    ck_assert_int_eq(verify("a.b.c", &c), UC_EUNAUTH);
    ck_assert_int_eq(atomic_load(&fetches), 0);
}
END_TEST

START_TEST(unreachable_key_set_is_unavailable)
{
    fetch_fails = true;
    char *tok = mint(k1, "k1", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(tok, &c), UC_EUNAVAIL);
    ck_assert_str_eq(err, "signing keys unavailable: iam is down");
    ck_assert_int_eq(verify(tok, &c), UC_EUNAVAIL);
    ck_assert_str_eq(err, "no signing keys loaded yet");
    ck_assert_int_eq(atomic_load(&fetches), 1);
    fetch_fails = false;
    uc_clock_manual_advance(&clk, 5000);
    ck_assert_int_eq(verify(tok, &c), 0);
    ck_assert_int_eq(atomic_load(&fetches), 2);
    uc_free(tok);
}
END_TEST

START_TEST(bad_key_set_keeps_the_old_keys)
{
    char *tok = mint(k1, "k1", claims()), *stranger = mint(k3, "k3", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(tok, &c), 0);
    json_decref(jwks);
    jwks = json_pack("{s:s}", "keys", "oops");
    uc_clock_manual_advance(&clk, 5000);
    ck_assert_int_eq(verify(stranger, &c), UC_EUNAVAIL);
    ck_assert_str_eq(err, "signing keys unavailable: key set has no 'keys' array");
    ck_assert_int_eq(verify(tok, &c), 0);
    uc_free(tok);
    uc_free(stranger);
}
END_TEST

START_TEST(unusable_jwks_entries_are_skipped)
{
    json_t *keys = json_object_get(jwks, "keys");
    ck_assert_int_eq(
        json_array_insert_new(keys, 0, json_pack("{s:s,s:s}", "kty", "RSA", "kid", "r1")), 0);
    ck_assert_int_eq(json_array_insert_new(keys, 0, json_pack("{s:s}", "kty", "OKP")), 0);
    char *tok = mint(k1, "k1", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(tok, &c), 0);
    uc_free(tok);
}
END_TEST

START_TEST(http_adapter_matches_the_server_callback)
{
    uc_http_authn_fn fn = uc_auth_http_authn;
    char *tok = mint(k1, "k1", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(fn(v, tok, &c, err), 0);
    ck_assert_str_eq(c.name, "alice");
    ck_assert_int_eq(fn(v, "x.y.z", &c, err), UC_EUNAUTH);
    uc_free(tok);
}
END_TEST

START_TEST(jwks_url_fetch_failure_is_unavailable)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0); /* bound, not listening */
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/v1/keys", ntohs(a.sin_port));
    struct uc_auth_verifier_opts o = {.jwks_url = url, .clock = &clk.clock};
    struct uc_auth_verifier *hv = NULL;
    ck_assert_int_eq(uc_auth_verifier_create(&hv, &o, err), 0);
    char *tok = mint(k1, "k1", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(uc_auth_verify(hv, tok, &c, err), UC_EUNAVAIL);
    ck_assert_msg(strstr(err, "could not connect") != NULL, "got: %s", err);
    uc_auth_verifier_destroy(hv);
    uc_free(tok);
    ck_assert_int_eq(close(fd), 0);
}
END_TEST

START_TEST(create_needs_a_key_source)
{
    struct uc_auth_verifier_opts o = {0};
    struct uc_auth_verifier *x = NULL;
    ck_assert_int_eq(uc_auth_verifier_create(&x, &o, err), UC_EINVAL);
    ck_assert_ptr_null(x);
    uc_auth_verifier_destroy(NULL);
}
END_TEST

START_TEST(create_survives_out_of_memory)
{
    struct uc_auth_verifier_opts o = {.jwks_url = "http://iam/keys", .audience = "x"};
    int rc = UC_ENOMEM;
    for (long n = 0; rc == UC_ENOMEM; n++) {
        struct uc_auth_verifier *x = NULL;
        uc_alloc_fail_after(n);
        rc = uc_auth_verifier_create(&x, &o, err);
        uc_alloc_fail_after(-1);
        if (rc == UC_ENOMEM)
            ck_assert_ptr_null(x);
        uc_auth_verifier_destroy(x);
    }
    ck_assert_int_eq(rc, 0);
}
END_TEST

/* Threads verify a known token while another keeps swapping the key set. */
struct race {
    struct uc_auth_verifier *ver;
    const char *tok;
    atomic_int failures;
};

static void *verify_loop(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < 300; i++) {
        struct uc_auth_claims c;
        char e[UC_ERR_LEN];
        if (uc_auth_verify(r->ver, r->tok, &c, e) != 0)
            atomic_fetch_add(&r->failures, 1);
    }
    return NULL;
}

START_TEST(concurrent_verification_survives_refetches)
{
    /* Real time and a 1 ms refetch limit, so refetches really interleave. */
    struct uc_auth_verifier_opts o = {.fetch = fake_fetch, .min_refetch_ms = 1};
    struct uc_auth_verifier *rv = NULL;
    ck_assert_int_eq(uc_auth_verifier_create(&rv, &o, err), 0);
    json_t *j = claims();
    json_int_t now = (json_int_t)(uc_clock_wall_ms(NULL) / 1000);
    set(j, "iat", json_integer(now));
    set(j, "exp", json_integer(now + 600));
    char *tok = mint(k1, "k1", j), *stranger = mint(k3, "k3", claims());
    struct race r = {.ver = rv, .tok = tok};
    atomic_init(&r.failures, 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, verify_loop, &r), 0);
    for (int i = 0; i < 200; i++) {
        struct uc_auth_claims c;
        ck_assert_int_eq(uc_auth_verify(rv, stranger, &c, err), UC_EUNAUTH);
        usleep(100);
    }
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_int_eq(atomic_load(&r.failures), 0);
    ck_assert_int_gt(atomic_load(&fetches), 2);
    uc_auth_verifier_destroy(rv);
    uc_free(tok);
    uc_free(stranger);
}
END_TEST

/* --- the token cache ---------------------------------------------------------- */

static struct uc_auth_verifier *make_cached(long entries, int64_t max_age_ms, int64_t leeway_s)
{
    struct uc_auth_verifier_opts o = {
        .fetch = fake_fetch,
        .clock = &clk.clock,
        .leeway_s = leeway_s,
        .cache_entries = entries,
        .cache_max_age_ms = max_age_ms,
    };
    struct uc_auth_verifier *ver = NULL;
    ck_assert_int_eq(uc_auth_verifier_create(&ver, &o, err), 0);
    return ver;
}

static struct uc_auth_cache_stats stats_of(struct uc_auth_verifier *ver)
{
    struct uc_auth_cache_stats st;
    uc_auth_verifier_cache_stats(ver, &st);
    return st;
}

/* A k1 token for user-<i> that expires after `life` seconds. */
static char *mint_user(int i, json_int_t life)
{
    char sub[32];
    snprintf(sub, sizeof(sub), "user-%d", i);
    json_t *j = claims();
    set(j, "sub", json_string(sub));
    set(j, "exp", json_integer(NOW + life));
    return mint(k1, "k1", j);
}

static void assert_same_claims(const struct uc_auth_claims *a, const struct uc_auth_claims *b)
{
    ck_assert_str_eq(a->sub, b->sub);
    ck_assert_str_eq(a->name, b->name);
    ck_assert_str_eq(a->project, b->project);
    ck_assert_str_eq(a->kid, b->kid);
    ck_assert_str_eq(a->jti, b->jti);
    ck_assert_int_eq(a->role, b->role);
    ck_assert_int_eq(a->system_admin, b->system_admin);
    ck_assert_int_eq(a->iat, b->iat);
    ck_assert_int_eq(a->exp, b->exp);
}

START_TEST(cache_hit_returns_identical_claims)
{
    json_t *j = claims();
    set(j, "sys", json_true());
    char *tok = mint(k1, "k1", j);
    struct uc_auth_claims first, again;
    ck_assert_int_eq(verify(tok, &first), 0);
    memset(&again, 0x5a, sizeof(again));
    ck_assert_int_eq(verify(tok, &again), 0);
    assert_same_claims(&first, &again);
    ck_assert_str_eq(again.kid, "k1");
    ck_assert(again.system_admin);
    struct uc_auth_cache_stats st = stats_of(v);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.entries, 1);
    ck_assert_uint_eq(st.capacity, UC_AUTH_CACHE_DEFAULT);
    uc_free(tok);
}
END_TEST

START_TEST(cache_hit_rechecks_expiry)
{
    struct uc_auth_verifier *cv = make_cached(0, UC_AUTH_CACHE_MAX_AGE_LIMIT_MS, 0);
    char *tok = mint(k1, "k1", claims()); /* exp = NOW + 600 */
    struct uc_auth_claims c;
    ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), 0);
    uc_clock_manual_advance(&clk, 599 * 1000);
    ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), 0);
    uc_clock_manual_advance(&clk, 1000);
    c.role = UC_ROLE_ADMIN;
    ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), UC_EUNAUTH);
    ck_assert_str_eq(err, "token expired");
    ck_assert_int_eq(c.role, UC_ROLE_ADMIN); /* untouched */
    struct uc_auth_cache_stats st = stats_of(cv);
    ck_assert_uint_eq(st.misses, 1); /* both later answers came from the cache */
    ck_assert_uint_eq(st.hits, 2);
    uc_auth_verifier_destroy(cv);
    uc_free(tok);
}
END_TEST

START_TEST(cache_hit_honours_leeway)
{
    struct uc_auth_verifier *cv = make_cached(0, UC_AUTH_CACHE_MAX_AGE_LIMIT_MS, 30);
    char *tok = mint(k1, "k1", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), 0);
    uc_clock_manual_advance(&clk, 629 * 1000);
    ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), 0);
    uc_clock_manual_advance(&clk, 1000);
    ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), UC_EUNAUTH);
    ck_assert_str_eq(err, "token expired");
    ck_assert_uint_eq(stats_of(cv).hits, 2);
    uc_auth_verifier_destroy(cv);
    uc_free(tok);
}
END_TEST

/* A clock whose wall time can step back while mono keeps going. */
struct split_clock {
    struct uc_clock clock;
    int64_t wall, mono;
};
static int64_t split_wall(void *ctx) { return ((struct split_clock *)ctx)->wall; }
static int64_t split_mono(void *ctx) { return ((struct split_clock *)ctx)->mono; }

START_TEST(cache_hit_rechecks_not_before_when_the_wall_clock_steps_back)
{
    struct split_clock sc = {.clock = {split_wall, split_mono, &sc}, .wall = T0_MS, .mono = 1};
    struct uc_auth_verifier_opts o = {.fetch = fake_fetch, .clock = &sc.clock};
    struct uc_auth_verifier *cv = NULL;
    ck_assert_int_eq(uc_auth_verifier_create(&cv, &o, err), 0);
    json_t *j = claims();
    set(j, "nbf", json_integer(NOW));
    char *tok = mint(k1, "k1", j);
    struct uc_auth_claims c;
    ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), 0);
    sc.wall -= 10 * 1000; /* an NTP step back */
    sc.mono += 1000;
    ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), UC_EUNAUTH);
    ck_assert_str_eq(err, "token not valid yet");
    ck_assert_uint_eq(stats_of(cv).hits, 1);
    uc_auth_verifier_destroy(cv);
    uc_free(tok);
}
END_TEST

START_TEST(cache_entries_die_at_max_age)
{
    char *tok = mint(k1, "k1", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(tok, &c), 0);
    uc_clock_manual_advance(&clk, UC_AUTH_CACHE_MAX_AGE_MS - 1);
    ck_assert_int_eq(verify(tok, &c), 0);
    ck_assert_uint_eq(stats_of(v).hits, 1);
    uc_clock_manual_advance(&clk, 1);
    ck_assert_int_eq(verify(tok, &c), 0); /* verified in full again */
    struct uc_auth_cache_stats st = stats_of(v);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.misses, 2);
    ck_assert_uint_eq(st.entries, 1);
    uc_free(tok);
}
END_TEST

START_TEST(retired_key_stops_verifying_from_the_cache)
{
    char *old = mint(k1, "k1", claims()), *new = mint(k2, "k2", claims());
    char *stranger = mint(k3, "k3", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(old, &c), 0);
    ck_assert_int_eq(verify(old, &c), 0);
    ck_assert_uint_eq(stats_of(v).hits, 1);
    publish(k2, "k2");
    uc_clock_manual_advance(&clk, 5000);
    ck_assert_int_eq(verify(new, &c), 0); /* a refetch that only adds a key */
    ck_assert_uint_eq(stats_of(v).flushes, 0);
    ck_assert_int_eq(verify(old, &c), 0);
    ck_assert_uint_eq(stats_of(v).hits, 2);
    /* IAM retires k1; the next refetch (for k3) empties the cache at once. */
    ck_assert_int_eq(json_array_remove(json_object_get(jwks, "keys"), 0), 0);
    uc_clock_manual_advance(&clk, 5000);
    ck_assert_int_eq(verify(stranger, &c), UC_EUNAUTH);
    struct uc_auth_cache_stats st = stats_of(v);
    ck_assert_uint_eq(st.flushes, 1);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_int_eq(verify(old, &c), UC_EUNAUTH);
    ck_assert_str_eq(err, "token signed by an unknown key");
    ck_assert_int_eq(verify(new, &c), 0);
    uc_free(old);
    uc_free(new);
    uc_free(stranger);
}
END_TEST

START_TEST(reused_kid_with_a_new_key_empties_the_cache)
{
    char *old = mint(k1, "k1", claims()), *stranger = mint(k3, "k3", claims());
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(old, &c), 0);
    ck_assert_int_eq(json_array_clear(json_object_get(jwks, "keys")), 0);
    publish(k2, "k1"); /* same kid, other key */
    uc_clock_manual_advance(&clk, 5000);
    ck_assert_int_eq(verify(stranger, &c), UC_EUNAUTH);
    ck_assert_uint_eq(stats_of(v).flushes, 1);
    ck_assert_int_eq(verify(old, &c), UC_EUNAUTH);
    uc_free(old);
    uc_free(stranger);
}
END_TEST

START_TEST(failed_verifications_are_not_cached)
{
    json_t *j = claims();
    set(j, "nbf", json_integer(NOW + 60));
    char *early = mint(k1, "k1", j), *forged = mint(k3, "k1", claims());
    struct uc_auth_claims c;
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(verify(early, &c), UC_EUNAUTH);
        ck_assert_int_eq(verify(forged, &c), UC_EUNAUTH);
    }
    struct uc_auth_cache_stats st = stats_of(v);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.hits, 0);
    ck_assert_uint_eq(st.misses, 4);
    uc_clock_manual_advance(&clk, 60 * 1000);
    ck_assert_int_eq(verify(early, &c), 0);
    ck_assert_uint_eq(stats_of(v).entries, 1);
    uc_free(early);
    uc_free(forged);
}
END_TEST

START_TEST(cache_evicts_the_entry_with_least_life_at_capacity)
{
    struct uc_auth_verifier *cv = make_cached(4, 0, 0); /* one window of 4 slots */
    char *tok[5];
    struct uc_auth_claims c;
    for (int i = 0; i < 5; i++)
        tok[i] = mint_user(i, 100 * (i + 1));
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(uc_auth_verify(cv, tok[i], &c, err), 0);
    struct uc_auth_cache_stats st = stats_of(cv);
    ck_assert_uint_eq(st.entries, 4);
    ck_assert_uint_eq(st.evictions, 0);
    ck_assert_int_eq(uc_auth_verify(cv, tok[4], &c, err), 0);
    st = stats_of(cv);
    ck_assert_uint_eq(st.entries, 4);
    ck_assert_uint_eq(st.evictions, 1);
    for (int i = 1; i < 5; i++) /* user-0 expired soonest, so it went */
        ck_assert_int_eq(uc_auth_verify(cv, tok[i], &c, err), 0);
    ck_assert_uint_eq(stats_of(cv).hits, 4);
    ck_assert_int_eq(uc_auth_verify(cv, tok[0], &c, err), 0);
    ck_assert_str_eq(c.sub, "user-0");
    st = stats_of(cv);
    ck_assert_uint_eq(st.misses, 6);
    ck_assert_uint_eq(st.entries, 4);
    for (int i = 0; i < 5; i++)
        uc_free(tok[i]);
    uc_auth_verifier_destroy(cv);
}
END_TEST

START_TEST(cache_never_grows_past_capacity)
{
    struct uc_auth_verifier *cv = make_cached(32, 0, 0);
    struct uc_auth_claims c;
    for (int i = 0; i < 100; i++) {
        char *tok = mint_user(i, 600);
        char want[32];
        snprintf(want, sizeof(want), "user-%d", i);
        ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), 0);
        ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), 0); /* just stored: a hit */
        ck_assert_str_eq(c.sub, want);
        uc_free(tok);
    }
    struct uc_auth_cache_stats st = stats_of(cv);
    ck_assert_uint_eq(st.capacity, 32);
    ck_assert_uint_le(st.entries, 32);
    ck_assert_uint_ge(st.evictions, 100 - 32);
    ck_assert_uint_eq(st.hits, 100);
    ck_assert_uint_eq(st.misses, 100);
    uc_auth_verifier_destroy(cv);
}
END_TEST

START_TEST(cache_can_be_turned_off)
{
    struct uc_auth_verifier *cv = make_cached(UC_AUTH_CACHE_OFF, 0, 0);
    char *tok = mint(k1, "k1", claims());
    struct uc_auth_claims c;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), 0);
        ck_assert_str_eq(c.sub, "user-abc");
    }
    struct uc_auth_cache_stats st = stats_of(cv);
    ck_assert_uint_eq(st.capacity, 0);
    ck_assert_uint_eq(st.hits + st.misses + st.entries, 0);
    /* Off means every call checks the signature: a retired key fails at
     * once, as with the cache on. */
    ck_assert_int_eq(json_array_clear(json_object_get(jwks, "keys")), 0);
    publish(k2, "k2");
    uc_clock_manual_advance(&clk, 5000);
    char *stranger = mint(k3, "k3", claims());
    ck_assert_int_eq(uc_auth_verify(cv, stranger, &c, err), UC_EUNAUTH);
    ck_assert_int_eq(uc_auth_verify(cv, tok, &c, err), UC_EUNAUTH);
    uc_auth_verifier_destroy(cv);
    uc_free(tok);
    uc_free(stranger);
}
END_TEST

START_TEST(cache_options_are_bounded)
{
    static const struct {
        long entries;
        int64_t age;
    } bad[] = {
        {-2, 0},
        {UC_AUTH_CACHE_MAX + 1, 0},
        {0, -1},
        {0, UC_AUTH_CACHE_MAX_AGE_LIMIT_MS + 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct uc_auth_verifier_opts o = {
            .fetch = fake_fetch, .cache_entries = bad[i].entries, .cache_max_age_ms = bad[i].age};
        struct uc_auth_verifier *x = NULL;
        ck_assert_int_eq(uc_auth_verifier_create(&x, &o, err), UC_EINVAL);
        ck_assert_ptr_null(x);
    }
    ck_assert_str_eq(err, "auth: token cache max age must be 1 to 3600000 ms");
    struct uc_auth_verifier *x = make_cached(1, 1, 0);
    ck_assert_uint_eq(stats_of(x).capacity, 1);
    uc_auth_verifier_destroy(x);
}
END_TEST

START_TEST(oversized_tokens_skip_the_cache)
{
    char *big = uc_malloc(UC_JWS_MAX_LEN + 2);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', UC_JWS_MAX_LEN + 1);
    big[UC_JWS_MAX_LEN + 1] = '\0';
    struct uc_auth_claims c;
    ck_assert_int_eq(verify(big, &c), UC_EUNAUTH);
    ck_assert_uint_eq(stats_of(v).misses, 0); /* not even looked up */
    uc_free(big);
}
END_TEST

/* Every allocation failure in a check gives ENOMEM or the right answer, and
 * one in the cache gives the right answer uncached. */
START_TEST(cache_allocation_failure_degrades_to_uncached)
{
    char *tok = mint(k1, "k1", claims()), *forged = mint(k3, "k1", claims());
    bool saw_uncached = false, cached_first = false;
    for (long n = 0; !cached_first; n++) {
        uc_auth_verifier_destroy(v);
        v = make_verifier(NULL, 0);
        struct uc_auth_claims c = {.role = UC_ROLE_ADMIN};
        ck_assert_int_eq(verify(forged, &c), UC_EUNAUTH); /* loads the keys */
        uc_alloc_fail_after(n);
        int bad = verify(forged, &c);
        int rc = verify(tok, &c);
        uc_alloc_fail_after(-1);
        ck_assert_msg(bad == UC_EUNAUTH || bad == UC_ENOMEM, "forged token gave %d", bad);
        ck_assert_msg(rc == 0 || rc == UC_ENOMEM, "n=%ld gave %d: %s", n, rc, err);
        if (rc != 0) {
            ck_assert_int_eq(c.role, UC_ROLE_ADMIN);
            continue;
        }
        ck_assert_str_eq(c.sub, "user-abc");
        ck_assert_int_eq(c.role, UC_ROLE_MEMBER);
        cached_first = stats_of(v).entries == 1;
        saw_uncached |= !cached_first;
        ck_assert_int_eq(verify(tok, &c), 0); /* cached by now either way */
        ck_assert_str_eq(c.sub, "user-abc");
        ck_assert_int_eq(verify(forged, &c), UC_EUNAUTH);
        ck_assert_uint_eq(stats_of(v).entries, 1);
    }
    ck_assert(saw_uncached);
    uc_free(tok);
    uc_free(forged);
}
END_TEST

/* A put that read the generation before a flush is dropped: the check it
 * comes from may have used a key that the flush retired. */
START_TEST(stale_put_after_flush_is_dropped)
{
    struct auth_cache *cache = NULL;
    ck_assert_int_eq(auth_cache_create(&cache, 16, 1000, 0), 0);
    uint8_t key[UC_SHA256_LEN];
    ck_assert_int_eq(uc_crypto_sha256("tok", 3, key), 0);
    struct uc_auth_claims c = {.sub = "user-1", .exp = NOW + 60}, out;
    struct auth_times t = {.exp = NOW + 60}, tout;
    uint64_t gen = auth_cache_gen(cache);
    auth_cache_flush(cache);
    auth_cache_put(cache, key, gen, 0, T0_MS, &c, &t);
    ck_assert(!auth_cache_get(cache, key, 1, &out, &tout));
    auth_cache_put(cache, key, auth_cache_gen(cache), 0, T0_MS, &c, &t);
    ck_assert(auth_cache_get(cache, key, 999, &out, &tout));
    ck_assert_str_eq(out.sub, "user-1");
    ck_assert_int_eq(tout.exp, NOW + 60);
    ck_assert(!auth_cache_get(cache, key, 1000, &out, &tout)); /* max age */
    struct uc_auth_cache_stats st;
    auth_cache_stats(cache, &st);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.flushes, 1);
    auth_cache_destroy(cache);
}
END_TEST

/* Workers verify more distinct tokens than the cache holds (hits, misses
 * and evictions) while the main thread keeps retiring a key (flushes). */
struct churn {
    struct uc_auth_verifier *ver;
    char *tok[32];
    atomic_int failures;
};

static void *churn_loop(void *arg)
{
    struct churn *r = arg;
    for (int i = 0; i < 400; i++) {
        int t = (i / 4 * 7) % 32; /* each token 4 times running: mostly hits */
        struct uc_auth_claims c;
        char e[UC_ERR_LEN], want[32];
        snprintf(want, sizeof(want), "user-%d", t);
        if (uc_auth_verify(r->ver, r->tok[t], &c, e) != 0 || strcmp(c.sub, want) != 0)
            atomic_fetch_add(&r->failures, 1);
    }
    return NULL;
}

START_TEST(concurrent_verification_with_evictions_and_flushes)
{
    struct uc_auth_verifier_opts o = {
        .fetch = fake_fetch, .min_refetch_ms = 1, .cache_entries = 16};
    struct churn r = {.ver = NULL};
    ck_assert_int_eq(uc_auth_verifier_create(&r.ver, &o, err), 0);
    json_int_t now = (json_int_t)(uc_clock_wall_ms(NULL) / 1000);
    for (int i = 0; i < 32; i++) {
        json_t *j = claims();
        char sub[32];
        snprintf(sub, sizeof(sub), "user-%d", i);
        set(j, "sub", json_string(sub));
        set(j, "iat", json_integer(now));
        set(j, "exp", json_integer(now + 600));
        r.tok[i] = mint(k1, "k1", j);
    }
    char *stranger = mint(k3, "k3", claims());
    atomic_init(&r.failures, 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, churn_loop, &r), 0);
    for (int i = 0; i < 30; i++) {
        struct uc_auth_claims c;
        if (i % 2 == 0)
            publish(k2, "k2");
        else
            ck_assert_int_eq(json_array_remove(json_object_get(jwks, "keys"), 1), 0);
        usleep(1100); /* past min_refetch_ms */
        ck_assert_int_eq(uc_auth_verify(r.ver, stranger, &c, err), UC_EUNAUTH);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_int_eq(atomic_load(&r.failures), 0);
    struct uc_auth_cache_stats st = stats_of(r.ver);
    ck_assert_uint_ge(st.flushes, 10);
    ck_assert_uint_gt(st.hits, 0);
    ck_assert_uint_gt(st.evictions, 0);
    ck_assert_uint_le(st.entries, 16);
    uc_auth_verifier_destroy(r.ver);
    for (int i = 0; i < 32; i++)
        uc_free(r.tok[i]);
    uc_free(stranger);
}
END_TEST

/* --- key retirement: the stale key set over HTTP ---------------------------- */

/* A fake IAM on a real uc_http server: GET /keys answers the global jwks
 * (read under mu, so tests change it under mu too), or a 500 when `status`
 * says so, and can hold answers back to keep a fetch in flight. */
static struct {
    struct uc_http_server *http;
    char url[64];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool hold;
    int status;
    atomic_int requests, parked;
} iam;
static struct uc_auth_verifier *hv; /* a verifier on iam.url */

static void iam_lock(void) { ck_assert_int_eq(pthread_mutex_lock(&iam.mu), 0); }
static void iam_unlock(void) { ck_assert_int_eq(pthread_mutex_unlock(&iam.mu), 0); }

static int serve_keys(struct uc_http_req *req, void *ctx)
{
    (void)ctx; /* the fake IAM is global */
    atomic_fetch_add(&iam.requests, 1);
    iam_lock();
    atomic_fetch_add(&iam.parked, 1);
    while (iam.hold)
        ck_assert_int_eq(pthread_cond_wait(&iam.cv, &iam.mu), 0);
    atomic_fetch_sub(&iam.parked, 1);
    json_t *doc = iam.status == 200 ? json_deep_copy(jwks) : NULL;
    iam_unlock();
    if (!doc)
        return uc_http_error(req, UC_EINTERNAL, "keyring unreadable");
    return uc_http_reply_json(req, 200, doc);
}

static const struct uc_http_route iam_routes[] = {
    {"GET", "/keys", serve_keys, UC_HTTP_PUBLIC, UC_ROLE_ANY, 0},
};

static void set_hold(bool hold)
{
    iam_lock();
    iam.hold = hold;
    ck_assert_int_eq(pthread_cond_broadcast(&iam.cv), 0);
    iam_unlock();
}

static void set_status(int status)
{
    iam_lock();
    iam.status = status;
    iam_unlock();
}

/* IAM retires k1: the key set keeps only its other keys. */
static void retire_k1(void)
{
    iam_lock();
    ck_assert_int_eq(json_array_remove(json_object_get(jwks, "keys"), 0), 0);
    iam_unlock();
}

static void setup_iam(void)
{
    setup();
    ck_assert_int_eq(pthread_mutex_init(&iam.mu, NULL), 0);
    ck_assert_int_eq(pthread_cond_init(&iam.cv, NULL), 0);
    iam.hold = false;
    iam.status = 200;
    atomic_store(&iam.requests, 0);
    atomic_store(&iam.parked, 0);
    struct uc_http_opts o = {.service = "fake-iam",
                             .bind_addr = "127.0.0.1",
                             .threads = 2,
                             .routes = iam_routes,
                             .nroutes = 1};
    ck_assert_msg(uc_http_start(&iam.http, &o, err) == 0, "%s", err);
    snprintf(iam.url, sizeof(iam.url), "http://127.0.0.1:%u/keys",
             (unsigned)uc_http_port(iam.http));
    hv = NULL;
}

static void teardown_iam(void)
{
    set_hold(false);              /* so a refetch in flight can end */
    uc_auth_verifier_destroy(hv); /* waits for it */
    uc_http_destroy(iam.http);
    ck_assert_int_eq(pthread_cond_destroy(&iam.cv), 0);
    ck_assert_int_eq(pthread_mutex_destroy(&iam.mu), 0);
    teardown();
}

/* A verifier on the fake IAM, stale after max_age_ms (0: the default). */
static void make_http_verifier(int64_t max_age_ms)
{
    struct uc_auth_verifier_opts o = {
        .jwks_url = iam.url, .clock = &clk.clock, .jwks_max_age_ms = max_age_ms};
    ck_assert_int_eq(uc_auth_verifier_create(&hv, &o, err), 0);
}

static int hverify(const char *tok)
{
    struct uc_auth_claims c;
    err[0] = '\0';
    return uc_auth_verify(hv, tok, &c, err);
}

static struct uc_auth_key_stats key_stats(void)
{
    struct uc_auth_key_stats st;
    uc_auth_verifier_key_stats(hv, &st);
    return st;
}

static int64_t real_ms(void)
{
    struct timespec ts;
    ck_assert_int_eq(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Real threads are at work here, so these wait (up to 10 s) rather than
 * advance the clock: for the background refetch to end, and for n answers
 * to be held back at the fake IAM. */
static void wait_refreshed(void)
{
    int64_t deadline = real_ms() + 10000;
    while (key_stats().refreshing && real_ms() < deadline)
        usleep(1000);
    ck_assert(!key_stats().refreshing);
}

static void wait_parked(int n)
{
    int64_t deadline = real_ms() + 10000;
    while (atomic_load(&iam.parked) != n && real_ms() < deadline)
        usleep(1000);
    ck_assert_int_eq(atomic_load(&iam.parked), n);
}

START_TEST(stale_key_set_is_refetched_while_the_old_one_serves)
{
    publish(k2, "k2");
    make_http_verifier(60 * 1000);
    char *old = mint(k1, "k1", claims()), *new = mint(k2, "k2", claims());
    char *fresh = mint_user(7, 600); /* a k1 token not in the token cache */
    struct uc_auth_key_stats st = key_stats();
    ck_assert_int_eq(st.age_ms, -1);
    ck_assert_int_eq(hverify(old), 0);
    st = key_stats();
    ck_assert_uint_eq(st.fetches, 1);
    ck_assert_uint_eq(st.keys, 2);
    ck_assert_int_eq(st.age_ms, 0);
    retire_k1();
    uc_clock_manual_advance(&clk, 60 * 1000 - 1);
    ck_assert_int_eq(hverify(old), 0); /* not stale yet: no fetch */
    ck_assert(!key_stats().refreshing);
    ck_assert_int_eq(atomic_load(&iam.requests), 1);
    /* Stale now. The cache hit that notices starts one refetch and does
     * not wait for it; nor does anyone else meanwhile. */
    set_hold(true);
    uc_clock_manual_advance(&clk, 1);
    ck_assert_int_eq(hverify(old), 0);
    wait_parked(1);
    ck_assert(key_stats().refreshing);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(hverify(old), 0);
    ck_assert_int_eq(hverify(fresh), 0); /* a full check, on the old set */
    ck_assert_uint_eq(stats_of(hv).hits, 5);
    ck_assert_int_eq(atomic_load(&iam.requests), 1 + 1);
    set_hold(false);
    wait_refreshed();
    st = key_stats();
    ck_assert_uint_eq(st.fetches, 2);
    ck_assert_uint_eq(st.failures, 0);
    ck_assert_uint_eq(st.keys, 1);
    ck_assert_int_eq(st.age_ms, 0); /* counted from when the fetch began */
    ck_assert_uint_eq(stats_of(hv).flushes, 1);
    ck_assert_uint_eq(stats_of(hv).entries, 0);
    ck_assert_int_eq(hverify(old), UC_EUNAUTH);
    ck_assert_str_eq(err, "token signed by an unknown key");
    ck_assert_int_eq(hverify(fresh), UC_EUNAUTH);
    ck_assert_int_eq(hverify(new), 0);
    ck_assert_int_eq(atomic_load(&iam.requests), 2); /* k1 is unknown, but just fetched */
    uc_free(old);
    uc_free(new);
    uc_free(fresh);
}
END_TEST

START_TEST(stale_after_five_minutes_by_default)
{
    make_http_verifier(0);
    char *tok = mint(k1, "k1", claims());
    ck_assert_int_eq(hverify(tok), 0);
    uc_clock_manual_advance(&clk, UC_AUTH_JWKS_MAX_AGE_MS - 1);
    ck_assert_int_eq(hverify(tok), 0);
    ck_assert(!key_stats().refreshing);
    ck_assert_int_eq(atomic_load(&iam.requests), 1);
    uc_clock_manual_advance(&clk, 1);
    ck_assert_int_eq(hverify(tok), 0);
    wait_refreshed();
    ck_assert_int_eq(atomic_load(&iam.requests), 2);
    ck_assert_uint_eq(key_stats().fetches, 2);
    ck_assert_uint_eq(stats_of(hv).flushes, 0); /* same keys: the cache stays */
    uc_free(tok);
}
END_TEST

START_TEST(failed_refetch_keeps_the_old_set_and_backs_off)
{
    publish(k2, "k2");
    make_http_verifier(60 * 1000);
    char *tok = mint(k1, "k1", claims());
    ck_assert_int_eq(hverify(tok), 0);
    retire_k1();
    set_status(500);
    uc_clock_manual_advance(&clk, 60 * 1000);
    ck_assert_int_eq(hverify(tok), 0);
    wait_refreshed();
    struct uc_auth_key_stats st = key_stats();
    ck_assert_uint_eq(st.fetches, 2);
    ck_assert_uint_eq(st.failures, 1);
    ck_assert_uint_eq(st.keys, 2);
    ck_assert_int_eq(hverify(tok), 0); /* IAM is down: the old set goes on */
    set_status(200);
    uc_clock_manual_advance(&clk, 4999); /* min_refetch_ms is the backoff */
    ck_assert_int_eq(hverify(tok), 0);
    ck_assert(!key_stats().refreshing);
    ck_assert_int_eq(atomic_load(&iam.requests), 2);
    uc_clock_manual_advance(&clk, 1);
    ck_assert_int_eq(hverify(tok), 0);
    wait_refreshed();
    ck_assert_int_eq(atomic_load(&iam.requests), 3);
    ck_assert_int_eq(hverify(tok), UC_EUNAUTH);
    st = key_stats();
    ck_assert_uint_eq(st.keys, 1);
    ck_assert_uint_eq(st.fetches, 3);
    ck_assert_uint_eq(st.failures, 1);
    ck_assert_int_eq(st.age_ms, 0);
    uc_free(tok);
}
END_TEST

/* A token with a kid the set lacks, checked while a background refetch is
 * in flight: it waits for that fetch instead of starting its own. */
struct waiter {
    const char *tok;
    int rc;
    atomic_bool done;
};

static void *verify_in_thread(void *arg)
{
    struct waiter *w = arg;
    struct uc_auth_claims c;
    char e[UC_ERR_LEN];
    w->rc = uc_auth_verify(hv, w->tok, &c, e);
    atomic_store(&w->done, true);
    return NULL;
}

START_TEST(unknown_kid_waits_for_the_refetch_in_flight)
{
    make_http_verifier(60 * 1000);
    char *old = mint(k1, "k1", claims()), *new = mint(k2, "k2", claims());
    ck_assert_int_eq(hverify(old), 0);
    iam_lock();
    publish(k2, "k2");
    iam_unlock();
    set_hold(true);
    uc_clock_manual_advance(&clk, 60 * 1000);
    ck_assert_int_eq(hverify(old), 0);
    wait_parked(1);
    struct waiter w = {.tok = new, .rc = 1};
    atomic_init(&w.done, false);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, verify_in_thread, &w), 0);
    usleep(50 * 1000);
    ck_assert(!atomic_load(&w.done)); /* waiting for the fetch in flight */
    set_hold(false);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(w.rc, 0);
    ck_assert_int_eq(atomic_load(&iam.requests), 2);
    ck_assert_uint_eq(key_stats().fetches, 2);
    uc_free(old);
    uc_free(new);
}
END_TEST

static void *release_later(void *arg)
{
    (void)arg; /* the fake IAM is global */
    usleep(100 * 1000);
    set_hold(false);
    return NULL;
}

START_TEST(destroy_waits_for_the_refetch_in_flight)
{
    make_http_verifier(60 * 1000);
    char *tok = mint(k1, "k1", claims());
    ck_assert_int_eq(hverify(tok), 0);
    set_hold(true);
    uc_clock_manual_advance(&clk, 60 * 1000);
    ck_assert_int_eq(hverify(tok), 0);
    wait_parked(1);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, release_later, NULL), 0);
    int64_t t0 = real_ms();
    uc_auth_verifier_destroy(hv);
    hv = NULL;
    ck_assert_int_ge(real_ms() - t0, 90);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(atomic_load(&iam.parked), 0);
    uc_free(tok);
}
END_TEST

START_TEST(key_set_max_age_is_bounded)
{
    static const int64_t bad[] = {-1, UC_AUTH_JWKS_MAX_AGE_LIMIT_MS + 1};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct uc_auth_verifier_opts o = {.fetch = fake_fetch, .jwks_max_age_ms = bad[i]};
        struct uc_auth_verifier *x = NULL;
        ck_assert_int_eq(uc_auth_verifier_create(&x, &o, err), UC_EINVAL);
        ck_assert_ptr_null(x);
        ck_assert_str_eq(err, "auth: key set max age must be 1 to 3600000 ms");
    }
    struct uc_auth_verifier_opts o = {.fetch = fake_fetch,
                                      .jwks_max_age_ms = UC_AUTH_JWKS_MAX_AGE_LIMIT_MS};
    struct uc_auth_verifier *x = NULL;
    ck_assert_int_eq(uc_auth_verifier_create(&x, &o, err), 0);
    uc_auth_verifier_destroy(x);
}
END_TEST

int main(void)
{
    if (uc_httpc_global_init() != 0)
        return 1;
    uc_log_init("test_auth", UC_LOG_ERROR);
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("role_names");
    tcase_add_test(tc, role_names_round_trip);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("require", setup, teardown);
    tcase_add_test(tc, require_passes_equal_or_higher_roles);
    tcase_add_test(tc, require_names_the_missing_role);
    tcase_add_test(tc, require_system_admin_needs_the_flag);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("check_project", setup, teardown);
    tcase_add_test(tc, check_project_hides_other_projects);
    tcase_add_test(tc, check_project_checks_the_role_inside);
    tcase_add_test(tc, check_project_lets_system_admins_everywhere);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("claims_from_json", setup, teardown);
    tcase_add_test(tc, claims_fill_every_field);
    tcase_add_test(tc, claims_take_the_highest_known_role);
    tcase_add_test(tc, claims_without_project_have_no_role);
    tcase_add_test(tc, claims_check_issuer_and_audience);
    tcase_add_test(tc, claims_check_expiry_with_leeway);
    tcase_add_test(tc, claims_check_not_before_and_issued_at);
    tcase_add_test(tc, claims_check_subject_and_string_sizes);
    tcase_add_test(tc, claims_check_roles_and_sys_types);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("verify", setup, teardown);
    tcase_add_test(tc, good_token_verifies);
    tcase_add_test(tc, known_kid_never_refetches);
    tcase_add_test(tc, expired_token_is_rejected);
    tcase_add_test(tc, leeway_tolerates_small_skew);
    tcase_add_test(tc, not_yet_valid_token_is_rejected);
    tcase_add_test(tc, wrong_audience_or_issuer_is_rejected);
    tcase_add_test(tc, verifier_audience_is_configurable);
    tcase_add_test(tc, tampered_payload_is_rejected);
    tcase_add_test(tc, key_outside_the_key_set_is_rejected);
    tcase_add_test(tc, unknown_kid_refetches_once_and_is_rate_limited);
    tcase_add_test(tc, rotated_key_is_found_by_refetch);
    tcase_add_test(tc, other_algorithms_are_rejected);
    tcase_add_test(tc, malformed_tokens_are_rejected);
    tcase_add_test(tc, unreachable_key_set_is_unavailable);
    tcase_add_test(tc, bad_key_set_keeps_the_old_keys);
    tcase_add_test(tc, unusable_jwks_entries_are_skipped);
    tcase_add_test(tc, jwks_url_fetch_failure_is_unavailable);
    tcase_add_test(tc, concurrent_verification_survives_refetches);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("token_cache", setup, teardown);
    tcase_add_test(tc, cache_hit_returns_identical_claims);
    tcase_add_test(tc, cache_hit_rechecks_expiry);
    tcase_add_test(tc, cache_hit_honours_leeway);
    tcase_add_test(tc, cache_hit_rechecks_not_before_when_the_wall_clock_steps_back);
    tcase_add_test(tc, cache_entries_die_at_max_age);
    tcase_add_test(tc, retired_key_stops_verifying_from_the_cache);
    tcase_add_test(tc, reused_kid_with_a_new_key_empties_the_cache);
    tcase_add_test(tc, failed_verifications_are_not_cached);
    tcase_add_test(tc, cache_evicts_the_entry_with_least_life_at_capacity);
    tcase_add_test(tc, cache_never_grows_past_capacity);
    tcase_add_test(tc, cache_can_be_turned_off);
    tcase_add_test(tc, cache_options_are_bounded);
    tcase_add_test(tc, oversized_tokens_skip_the_cache);
    tcase_add_test(tc, cache_allocation_failure_degrades_to_uncached);
    tcase_add_test(tc, stale_put_after_flush_is_dropped);
    tcase_add_test(tc, concurrent_verification_with_evictions_and_flushes);
    suite_add_tcase(s, tc);
    tc = tcase_create("key_retirement");
    tcase_add_checked_fixture(tc, setup_iam, teardown_iam);
    tcase_add_test(tc, stale_key_set_is_refetched_while_the_old_one_serves);
    tcase_add_test(tc, stale_after_five_minutes_by_default);
    tcase_add_test(tc, failed_refetch_keeps_the_old_set_and_backs_off);
    tcase_add_test(tc, unknown_kid_waits_for_the_refetch_in_flight);
    tcase_add_test(tc, destroy_waits_for_the_refetch_in_flight);
    tcase_add_test(tc, key_set_max_age_is_bounded);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("http_authn", setup, teardown);
    tcase_add_test(tc, http_adapter_matches_the_server_callback);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("verifier_create", setup, teardown);
    tcase_add_test(tc, create_needs_a_key_source);
    tcase_add_test(tc, create_survives_out_of_memory);
    suite_add_tcase(s, tc);
    int failed = uc_check_run(s);
    uc_httpc_global_cleanup();
    return failed;
}
