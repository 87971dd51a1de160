/* verify.c - offline token verification rate for bench/iam-tokens: one
 * token checked COUNT times with uc_auth_verify against iam's JWKS (fetched
 * once), on 1 and on THREADS threads, beside a bare Ed25519 check of the
 * same signature (the floor). Prints "<name> <threads> <ops> <s> <ops/s>". */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "uc/alloc.h"
#include "uc/auth.h"
#include "uc/crypto.h"
#include "uc/httpc.h"
#include "uc/jws.h"
#include "uc/log.h"

#define MAX_THREADS 16
#define CHECK_EVERY 256 /* iterations between deadline checks */

/* What every worker checks; read-only while the workers run. */
struct job {
    const char *token;
    struct uc_auth_verifier *verifier; /* NULL: bare Ed25519 check */
    const struct uc_crypto_key *key;
    const char *input; /* "<header>.<payload>" */
    size_t input_len;
    uint8_t sig[UC_ED25519_SIG_LEN];
    long count;         /* per thread */
    double deadline_ns; /* monotonic */
};

struct worker {
    pthread_t tid;
    const struct job *job;
    long done;
    int rc;
    char err[UC_ERR_LEN];
};

static double now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC */
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int check_once(const struct job *j, char *err)
{
    if (!j->verifier) {
        int rc = uc_crypto_ed25519_verify(j->key, j->input, j->input_len, j->sig);
        return rc == 0 ? 0 : uc_err_set(err, rc, "bare Ed25519 check failed");
    }
    struct uc_auth_claims c;
    return uc_auth_verify(j->verifier, j->token, &c, err);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    const struct job *j = w->job;
    for (long i = 0; i < j->count; i++) {
        if ((w->rc = check_once(j, w->err)) != 0)
            return NULL;
        w->done++;
        if (i % CHECK_EVERY == 0 && now_ns() > j->deadline_ns)
            break;
    }
    return NULL;
}

/* Run job on n threads and print its line. */
static int run(const char *name, struct job *j, unsigned n, long count, double max_s)
{
    struct worker w[MAX_THREADS];
    memset(w, 0, sizeof(w));
    j->count = count / (long)n;
    double t0 = now_ns();
    j->deadline_ns = t0 + max_s * 1e9;
    unsigned started = 0;
    for (; started < n; started++) {
        w[started].job = j;
        if (pthread_create(&w[started].tid, NULL, work, &w[started]) != 0)
            break;
    }
    long ops = 0;
    int rc = started == n ? 0 : UC_EIO;
    if (rc != 0)
        fprintf(stderr, "verify: %s: cannot start thread %u\n", name, started + 1);
    for (unsigned i = 0; i < started; i++) {
        if (pthread_join(w[i].tid, NULL) != 0)
            rc = UC_EIO;
        if (w[i].rc != 0 && rc == 0) {
            rc = w[i].rc;
            fprintf(stderr, "verify: %s: %s\n", name, w[i].err);
        }
        ops += w[i].done;
    }
    double s = (now_ns() - t0) / 1e9;
    if (rc == 0)
        printf("%s %u %ld %.3f %.0f\n", name, n, ops, s, (double)ops / s);
    return rc;
}

/* run() on one thread, then on `threads` threads when that is more. */
static int run_both(const char *name, struct job *j, unsigned threads, long count, double max_s)
{
    int rc = run(name, j, 1, count, max_s);
    return rc == 0 && threads > 1 ? run(name, j, threads, count, max_s) : rc;
}

/* The verifier's fetch callback: hands out the document fetched once. */
static int fetch_cached(void *ctx, json_t **out, char err[UC_ERR_LEN])
{
    (void)err;
    *out = json_incref(ctx);
    return 0;
}

static char *read_token(const char *path)
{
    char buf[UC_JWS_MAX_LEN + 2];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf[0] ? uc_strdup(buf) : NULL;
}

/* The JWK of the token's kid, from the key set (borrowed from jwks). */
static const json_t *jwk_for(const json_t *jwks, const char *token, char *err)
{
    json_t *hdr = NULL, *payload = NULL, *k;
    const char *kid = NULL;
    const json_t *found = NULL;
    size_t i;
    if (uc_jws_decode(token, &hdr, &payload, &kid, err) != 0)
        return NULL;
    json_array_foreach(json_object_get(jwks, "keys"), i, k)
    {
        const char *id = json_string_value(json_object_get(k, "kid"));
        if (!found && id && strcmp(id, kid) == 0)
            found = k;
    }
    if (!found)
        uc_err_set(err, UC_ENOENT, "the JWKS has no key %s", kid);
    json_decref(hdr);
    json_decref(payload);
    return found;
}

/* Fill the bare-check half of j: key, signing input and signature. */
static int prepare_bare(struct job *j, const json_t *jwks, struct uc_crypto_key **key, char *err)
{
    const json_t *jwk = jwk_for(jwks, j->token, err);
    if (!jwk || uc_jws_key_from_jwk(jwk, key, err) != 0)
        return UC_EINVAL;
    const char *dot = strrchr(j->token, '.');
    uint8_t *sig = NULL;
    size_t slen = 0;
    if (!dot || uc_b64url_decode(dot + 1, strlen(dot + 1), &sig, &slen) != 0 ||
        slen != UC_ED25519_SIG_LEN) {
        uc_free(sig);
        return uc_err_set(err, UC_EINVAL, "the token's signature is not 64 bytes of base64url");
    }
    memcpy(j->sig, sig, slen);
    uc_free(sig);
    j->key = *key;
    j->input = j->token;
    j->input_len = (size_t)(dot - j->token);
    return 0;
}

static int fetch_jwks(const char *url, json_t **out, char *err)
{
    struct uc_httpc_resp r = {0};
    struct uc_httpc_opts o = {.timeout_ms = 3000};
    int rc = uc_httpc_json("GET", url, NULL, &o, &r, err);
    if (rc == 0 && (r.status != 200 || !json_is_object(r.json)))
        rc = uc_err_set(err, UC_EIO, "GET %s answered %ld", url, r.status);
    if (rc == 0)
        *out = json_incref(r.json);
    uc_httpc_resp_clear(&r);
    return rc;
}

/* Bare check, then uc_auth_verify on 1 and on `threads` threads. */
static int bench(struct job *j, const json_t *jwks, unsigned threads, long count, double max_s,
                 char *err)
{
    struct uc_crypto_key *key = NULL;
    struct uc_auth_verifier_opts o = {.fetch = fetch_cached, .fetch_ctx = (void *)jwks};
    int rc = prepare_bare(j, jwks, &key, err);
    if (rc == 0)
        rc = uc_auth_verifier_create(&j->verifier, &o, err);
    struct uc_auth_verifier *v = j->verifier;
    struct uc_auth_claims c;
    if (rc == 0)
        rc = uc_auth_verify(v, j->token, &c, err); /* loads the keys, proves the token good */
    j->verifier = NULL;
    if (rc == 0)
        rc = run_both("ed25519_only", j, threads, count, max_s);
    j->verifier = v;
    if (rc == 0)
        rc = run_both("uc_auth_verify", j, threads, count, max_s);
    uc_auth_verifier_destroy(v);
    uc_crypto_key_destroy(key);
    return rc;
}

int main(int argc, char **argv)
{
    char err[UC_ERR_LEN] = "";
    json_t *jwks = NULL;
    if (argc != 6) {
        fprintf(stderr, "usage: verify JWKS_URL TOKEN_FILE COUNT MAX_SECONDS THREADS\n");
        return 2;
    }
    long count = strtol(argv[3], NULL, 10);
    double max_s = strtod(argv[4], NULL);
    long threads = strtol(argv[5], NULL, 10);
    if (count < 1 || max_s <= 0 || threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "verify: COUNT >= 1, MAX_SECONDS > 0, THREADS 1-%d\n", MAX_THREADS);
        return 2;
    }
    uc_alloc_install_jansson();
    uc_log_init("verify", UC_LOG_WARN);
    struct job j = {.token = NULL};
    int rc = uc_httpc_global_init();
    if (rc == 0 && !(j.token = read_token(argv[2])))
        rc = uc_err_set(err, UC_EINVAL, "no token in %s", argv[2]);
    if (rc == 0)
        rc = fetch_jwks(argv[1], &jwks, err);
    if (rc == 0)
        rc = bench(&j, jwks, (unsigned)threads, count, max_s, err);
    if (rc != 0 && err[0])
        fprintf(stderr, "verify: %s\n", err);
    json_decref(jwks);
    uc_free((void *)j.token);
    uc_httpc_global_cleanup();
    return rc == 0 ? 0 : 1;
}
