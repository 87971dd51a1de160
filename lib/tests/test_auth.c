/* test_auth.c - role checks, claim validation and the token verifier, with
 * tokens minted here on a manual clock and a fake IAM key-set endpoint that
 * counts how often it is asked. */
#include <arpa/inet.h>
#include <check.h>

#include "uc_check.h"
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static TCase *fixture_tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

int main(void)
{
    if (uc_httpc_global_init() != 0)
        return 1;
    uc_log_init("test_auth", UC_LOG_ERROR);
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("role_names");
    tcase_add_test(tc, role_names_round_trip);
    suite_add_tcase(s, tc);
    tc = fixture_tcase("require");
    tcase_add_test(tc, require_passes_equal_or_higher_roles);
    tcase_add_test(tc, require_names_the_missing_role);
    tcase_add_test(tc, require_system_admin_needs_the_flag);
    suite_add_tcase(s, tc);
    tc = fixture_tcase("check_project");
    tcase_add_test(tc, check_project_hides_other_projects);
    tcase_add_test(tc, check_project_checks_the_role_inside);
    tcase_add_test(tc, check_project_lets_system_admins_everywhere);
    suite_add_tcase(s, tc);
    tc = fixture_tcase("claims_from_json");
    tcase_add_test(tc, claims_fill_every_field);
    tcase_add_test(tc, claims_take_the_highest_known_role);
    tcase_add_test(tc, claims_without_project_have_no_role);
    tcase_add_test(tc, claims_check_issuer_and_audience);
    tcase_add_test(tc, claims_check_expiry_with_leeway);
    tcase_add_test(tc, claims_check_not_before_and_issued_at);
    tcase_add_test(tc, claims_check_subject_and_string_sizes);
    tcase_add_test(tc, claims_check_roles_and_sys_types);
    suite_add_tcase(s, tc);
    tc = fixture_tcase("verify");
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
    tc = fixture_tcase("http_authn");
    tcase_add_test(tc, http_adapter_matches_the_server_callback);
    suite_add_tcase(s, tc);
    tc = fixture_tcase("verifier_create");
    tcase_add_test(tc, create_needs_a_key_source);
    tcase_add_test(tc, create_survives_out_of_memory);
    suite_add_tcase(s, tc);
    int failed = uc_check_run(s);
    uc_httpc_global_cleanup();
    return failed;
}
