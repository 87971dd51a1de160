/* fixture.h - a throw-away IAM server for unit tests (a temporary sqlite
 * store, a manual clock, a fixed master key, a keyring holding one
 * generated key, a rate limiter and a fast password hasher), helpers that
 * create resources in it, and the Check runner. Header-only (static
 * inline) so each test binary links it alone. */
#ifndef IAM_TEST_FIXTURE_H
#define IAM_TEST_FIXTURE_H
#include <check.h>

#include "uc_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../bindings.h"
#include "../credentials.h"
#include "../keyring.h"
#include "../projects.h"
#include "../ratelimit.h"
#include "../server.h"
#include "../service_accounts.h"
#include "../tokens.h"
#include "../users.h"
#include "uc/alloc.h"
#include "uc/auth.h"
#include "uc/json.h"

#define FX_START_MS 1800000000000LL /* 2027-01-15T08:00:00Z */
#define FX_BOOTSTRAP "bootstrap-token-for-tests-0123456789abcdef"
#define FX_RATE 5

struct fx {
    char dir[64];
    char url[128];
    struct uc_clock_manual clock;
    struct uc_crypto_key *key;
    struct iam_server s;
};

static inline void fx_paths(struct fx *f)
{
    snprintf(f->dir, sizeof(f->dir), "/tmp/iam-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    snprintf(f->url, sizeof(f->url), "sqlite:%s/iam.db", f->dir);
}

static inline void fx_setup(struct fx *f)
{
    char err[UC_ERR_LEN] = "";
    char kid[IAM_KID_LEN];
    bool imported = false;
    memset(f, 0, sizeof(*f));
    fx_paths(f);
    uc_clock_manual_init(&f->clock, FX_START_MS);
    for (size_t i = 0; i < sizeof(f->s.master_key); i++)
        f->s.master_key[i] = (uint8_t)(i * 7 + 1);
    f->s.clock = &f->clock.clock;
    f->s.token_ttl_s = 3600;
    f->s.scrypt_log_n = 10;
    f->s.bootstrap_token = FX_BOOTSTRAP;
    ck_assert_int_eq(uc_store_open(&f->s.store, f->url, err), 0);
    ck_assert_int_eq(iam_ratelimit_create(&f->s.ratelimit, FX_RATE, 64, &f->clock.clock), 0);
    ck_assert_msg(
        iam_keyring_create(&f->s.keyring, f->s.store, f->s.master_key, &f->clock.clock, err) == 0,
        "%s", err);
    ck_assert_int_eq(uc_crypto_ed25519_generate(&f->key, err), 0);
    ck_assert_msg(iam_keyring_import(f->s.keyring, f->key, &imported, kid, err) == 0, "%s", err);
    ck_assert_int_eq(iam_tokens_init(&f->s, err), 0);
}

static inline void fx_remove_files(const struct fx *f)
{
    static const char *const names[] = {"iam.db", "iam.db-wal", "iam.db-shm", "iam.db-journal"};
    char p[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
        /* Some of these files never exist: a failed unlink is expected. */
        (void)unlink(p);
    }
    ck_assert_int_eq(rmdir(f->dir), 0);
}

static inline void fx_teardown(struct fx *f)
{
    iam_tokens_deinit(&f->s);
    iam_keyring_destroy(f->s.keyring);
    iam_ratelimit_destroy(f->s.ratelimit);
    uc_store_close(f->s.store);
    uc_crypto_key_destroy(f->key);
    fx_remove_files(f);
}

/* Claims of a system admin, and of a principal in a project with a role. */
static inline struct uc_auth_claims fx_admin(void)
{
    struct uc_auth_claims c = {.system_admin = true, .role = UC_ROLE_ANY};
    snprintf(c.sub, sizeof(c.sub), "bootstrap");
    return c;
}

static inline struct uc_auth_claims fx_caller(const char *sub, const char *project,
                                              enum uc_role role)
{
    struct uc_auth_claims c = {.role = role};
    snprintf(c.sub, sizeof(c.sub), "%s", sub);
    snprintf(c.project, sizeof(c.project), "%s", project ? project : "");
    return c;
}

/* Parse a JSON literal (tests only: aborts the test on bad JSON). */
static inline json_t *fx_json(const char *text)
{
    json_t *v = NULL;
    char err[UC_ERR_LEN] = "";
    ck_assert_msg(uc_json_parse(text, strlen(text), &v, err) == 0, "%s", err);
    return v;
}

/* Copy out a string field of obj into a caller buffer. */
static inline void fx_str(const json_t *obj, const char *name, char *buf, size_t len)
{
    const char *v = uc_json_str(obj, name, NULL);
    ck_assert_ptr_nonnull(v);
    snprintf(buf, len, "%s", v);
}

/* The create call of a resource module (iam_projects_create and its kin). */
typedef int (*fx_create_fn)(struct iam_server *, const struct uc_auth_claims *, const json_t *,
                            json_t **, char *);

/* Call fn as c with the JSON body text: fn's answer; *out is NULL unless
 * it succeeds, err gets its message. */
static inline int fx_call(struct fx *f, fx_create_fn fn, const struct uc_auth_claims *c,
                          const char *body, json_t **out, char err[UC_ERR_LEN])
{
    json_t *b = fx_json(body);
    *out = NULL;
    int rc = fn(&f->s, c, b, out, err);
    json_decref(b);
    return rc;
}

/* Create as a system admin and assert it works: id (may be NULL) gets
 * the new id, *out (may be NULL: released) the answer. */
static inline void fx_create(struct fx *f, fx_create_fn fn, const char *body, char id[UC_ID_LEN],
                             json_t **out)
{
    char err[UC_ERR_LEN] = "";
    struct uc_auth_claims admin = fx_admin();
    json_t *o = NULL;
    ck_assert_msg(fx_call(f, fn, &admin, body, &o, err) == 0, "%s: %s", body, err);
    if (id)
        fx_str(o, "id", id, UC_ID_LEN);
    if (out)
        *out = o;
    else
        json_decref(o);
}

/* Project `name`, into id. */
static inline void fx_project(struct fx *f, const char *name, char id[UC_ID_LEN])
{
    char body[128];
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    fx_create(f, iam_projects_create, body, id, NULL);
}

/* User `name` with password "correct horse", into id. */
static inline void fx_user(struct fx *f, const char *name, char id[UC_ID_LEN])
{
    char body[128];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"password\":\"correct horse\"}", name);
    fx_create(f, iam_users_create, body, id, NULL);
}

/* Service account `name` in project, into id. */
static inline void fx_service_account(struct fx *f, const char *name, const char *project,
                                      char id[UC_ID_LEN])
{
    char body[160];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"project_id\":\"%s\"}", name, project);
    fx_create(f, iam_service_accounts_create, body, id, NULL);
}

/* The body of a binding of principal to role in project (NULL: global). */
static inline void fx_binding_body(char body[256], const char *principal, const char *project,
                                   const char *role)
{
    if (project)
        snprintf(body, 256, "{\"principal_id\":\"%s\",\"project_id\":\"%s\",\"role\":\"%s\"}",
                 principal, project, role);
    else
        snprintf(body, 256, "{\"principal_id\":\"%s\",\"role\":\"%s\"}", principal, role);
}

/* Bind principal to role in project (NULL: global); id may be NULL. */
static inline void fx_bind(struct fx *f, const char *principal, const char *project,
                           const char *role, char id[UC_ID_LEN])
{
    char body[256];
    fx_binding_body(body, principal, project, role);
    fx_create(f, iam_bindings_create, body, id, NULL);
}

/* An access key of principal: its id, and its secret (may be NULL). */
static inline void fx_access_key(struct fx *f, const char *principal, char id[UC_ID_LEN],
                                 char secret[64])
{
    char body[128];
    json_t *out = NULL;
    snprintf(body, sizeof(body), "{\"principal_id\":\"%s\"}", principal);
    fx_create(f, iam_credentials_create, body, id, &out);
    if (secret)
        fx_str(out, "secret", secret, 64);
    json_decref(out);
}

/* Add a TCase `name` to s, with setup and teardown around each test. */
static inline TCase *fx_tcase(Suite *s, const char *name, void (*setup)(void),
                              void (*teardown)(void))
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    return tc;
}

/* Run s; main's exit status. */

#endif /* IAM_TEST_FIXTURE_H */
