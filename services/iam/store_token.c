/* store_token.c - iam's self-signed token for its store, cached and signed
 * again shortly before it expires or when the key it should carry changes
 * (see store_token.h for which key that is). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "keyring.h"
#include "store_token.h"
#include "uc/alloc.h"
#include "uc/auth.h"
#include "uc/jws.h"

struct iam_store_token {
    const struct uc_crypto_key *file_key;
    char file_kid[IAM_KID_LEN];
    const struct uc_clock *clock;
    pthread_mutex_t mu; /* guards everything below */
    struct iam_keyring *kr;
    char *token; /* NULL until the first call */
    char kid[IAM_KID_LEN];
    int64_t exp_s;
};

int iam_store_token_create(struct iam_store_token **out, const struct uc_crypto_key *file_key,
                           const struct uc_clock *clock, char err[UC_ERR_LEN])
{
    if (!uc_crypto_key_is_private(file_key))
        return uc_err_set(err, UC_EINVAL, "the store token needs a private key");
    struct iam_store_token *t = uc_calloc(1, sizeof(*t));
    if (!t)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    t->file_key = file_key;
    t->clock = clock;
    int rc = iam_keyring_kid(file_key, t->file_kid);
    if (rc == 0 && pthread_mutex_init(&t->mu, NULL) != 0)
        rc = uc_err_set(err, UC_ENOMEM, "cannot create a mutex");
    else if (rc < 0)
        uc_err_set(err, rc, "cannot compute the signing key's kid");
    if (rc < 0) {
        uc_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

static void drop_token(struct iam_store_token *t)
{
    if (t->token) {
        uc_crypto_wipe(t->token, strlen(t->token));
        uc_free(t->token);
        t->token = NULL;
    }
}

void iam_store_token_destroy(struct iam_store_token *t)
{
    if (!t)
        return;
    drop_token(t);
    /* Nobody holds the mutex at destroy time; a failure could not be acted on. */
    (void)pthread_mutex_destroy(&t->mu);
    uc_free(t);
}

void iam_store_token_use_keyring(struct iam_store_token *t, struct iam_keyring *kr)
{
    pthread_mutex_lock(&t->mu);
    t->kr = kr;
    pthread_mutex_unlock(&t->mu);
}

static json_t *claims(int64_t now_s)
{
    char jti[UC_ID_LEN];
    if (uc_crypto_random_id("st", jti) < 0)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:[], s:b, s:I, s:I, s:s}", "iss", UC_AUTH_ISSUER,
                     "aud", UC_AUTH_AUDIENCE, "sub", IAM_STORE_TOKEN_SUB, "name",
                     IAM_STORE_TOKEN_SUB, "kind", "service", "roles", "sys", 0, "iat",
                     (json_int_t)now_s, "exp", (json_int_t)(now_s + IAM_STORE_TOKEN_TTL_S), "jti",
                     jti);
}

/* Sign a new token into t (mu held): with the file key unless a loaded
 * keyring no longer verifies it. */
static int renew(struct iam_store_token *t, int64_t now_s, char err[UC_ERR_LEN])
{
    char kid[IAM_KID_LEN], *token = NULL;
    json_t *payload = claims(now_s);
    if (!payload)
        return uc_err_set(err, UC_ENOMEM, "cannot build the store token's claims");
    int rc;
    if (!t->kr || iam_keyring_verifies(t->kr, t->file_kid)) {
        snprintf(kid, sizeof(kid), "%s", t->file_kid);
        rc = uc_jws_sign(payload, t->file_key, kid, &token);
        if (rc < 0)
            uc_err_set(err, rc, "cannot sign the store token: %s", uc_strerror(rc));
    } else {
        rc = iam_keyring_sign(t->kr, payload, &token, kid, err);
    }
    json_decref(payload);
    if (rc < 0)
        return rc;
    if (strlen(token) >= UC_STORE_TOKEN_LEN) {
        uc_free(token);
        return uc_err_set(err, UC_E2BIG, "the store token is too long");
    }
    drop_token(t);
    t->token = token;
    snprintf(t->kid, sizeof(t->kid), "%s", kid);
    t->exp_s = now_s + IAM_STORE_TOKEN_TTL_S;
    return 0;
}

/* Whether the cached token should be replaced (mu held). */
static bool stale(const struct iam_store_token *t, int64_t now_s)
{
    if (!t->token || now_s + IAM_STORE_TOKEN_RENEW_S >= t->exp_s)
        return true;
    bool want_file = !t->kr || iam_keyring_verifies(t->kr, t->file_kid);
    return want_file != (strcmp(t->kid, t->file_kid) == 0) ||
           (!want_file && !iam_keyring_verifies(t->kr, t->kid));
}

int iam_store_token_get(void *ctx, char token[UC_STORE_TOKEN_LEN], char err[UC_ERR_LEN])
{
    struct iam_store_token *t = ctx;
    int64_t now_s = uc_clock_wall_ms(t->clock) / 1000;
    pthread_mutex_lock(&t->mu);
    int rc = stale(t, now_s) ? renew(t, now_s, err) : 0;
    if (rc == 0)
        snprintf(token, UC_STORE_TOKEN_LEN, "%s", t->token);
    pthread_mutex_unlock(&t->mu);
    return rc;
}
