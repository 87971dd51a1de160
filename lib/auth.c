/* auth.c - the verifier that checks IAM's EdDSA tokens offline against a
 * cached JWKS key set, answering tokens it has already verified from its
 * token cache (auth_cache.c), which a key-set change empties. The key set is
 * refetched, rate limited, in two ways: at once when a token names an
 * unknown kid (the caller waits: nothing else can check it), and in a
 * background thread once the set is older than jwks_max_age_ms (nobody
 * waits: the old set stays in use until the new one is in). Claims and role
 * checks live in auth_claims.c. */
#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "uc/alloc.h"
#include "auth_internal.h"
#include "uc/auth.h"
#include "uc/httpc.h"
#include "uc/jws.h"
#include "uc/log.h"

#define DEFAULT_REFETCH_MS 5000
#define JWKS_TIMEOUT_MS 3000
#define JWKS_RETRIES 2
#define JWKS_MAX_KEYS 64
#define ED25519_X_LEN 43 /* base64url of 32 bytes, unpadded */

/* --- the verifier -------------------------------------------------------- */

/* One cached public key. Shared between the cache and verifications in
 * flight: the last holder frees it, so a refetch never pulls a key out from
 * under a thread that is checking a signature with it. */
struct vkey {
    atomic_int refs;
    char kid[UC_AUTH_ID_LEN];
    char x[ED25519_X_LEN + 1]; /* the JWK's public key, to spot a kid reused */
    struct uc_crypto_key *key;
};

struct uc_auth_verifier {
    char *jwks_url;
    uc_auth_fetch_fn fetch;
    void *fetch_ctx;
    char *audience;
    const struct uc_clock *clock;
    int64_t min_refetch_ms, leeway_s, max_age_ms;
    /* Mono ms from which a verification should start a background refetch
     * (INT64_MAX: none due). Only a hint, read without mu so a cache hit
     * pays one atomic load; the decision is taken again under mu. */
    atomic_int_fast64_t refresh_due_ms;
    pthread_mutex_t fetch_mu; /* one fetch at a time; taken before mu */
    pthread_mutex_t mu;       /* guards everything below */
    struct vkey **keys;
    size_t nkeys;
    bool fetched;          /* a fetch has been tried */
    bool loaded;           /* a fetch has succeeded: keys is a usable set */
    int64_t last_fetch_ms; /* when the last fetch (of either kind) began */
    int64_t loaded_ms;     /* when the fetch that produced keys began */
    bool refreshing;       /* the background thread is fetching */
    bool joinable;         /* thread has been started and not joined */
    pthread_t thread;
    uint64_t fetches, failures;
    struct auth_cache *cache; /* NULL when off; locks on its own */
};

/* Default mutexes fail only on programmer error (EINVAL, EDEADLK). */
void auth_lock(pthread_mutex_t *m)
{
    int rc = pthread_mutex_lock(m);
    assert(rc == 0);
    (void)rc; /* checked by the assert; release builds have nothing to do */
}

void auth_unlock(pthread_mutex_t *m)
{
    int rc = pthread_mutex_unlock(m);
    assert(rc == 0);
    (void)rc; /* as in auth_lock() */
}

/* Joining fails only on programmer error (EDEADLK, EINVAL, ESRCH). */
static void join(pthread_t t)
{
    int rc = pthread_join(t, NULL);
    assert(rc == 0);
    (void)rc; /* as in auth_lock() */
}

static void vkey_unref(struct vkey *k)
{
    if (k && atomic_fetch_sub(&k->refs, 1) == 1) {
        uc_crypto_key_destroy(k->key);
        uc_free(k);
    }
}

static void keys_free(struct vkey **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vkey_unref(keys[i]);
    uc_free(keys);
}

static int check_opts(const struct uc_auth_verifier_opts *o, char *err)
{
    if (!o->fetch && !o->jwks_url)
        return uc_err_set(err, UC_EINVAL, "auth: set a JWKS url or a fetch function");
    if (o->cache_entries > UC_AUTH_CACHE_MAX ||
        (o->cache_entries < 0 && o->cache_entries != UC_AUTH_CACHE_OFF))
        return uc_err_set(err, UC_EINVAL, "auth: token cache size must be 1 to %ld, or off",
                          UC_AUTH_CACHE_MAX);
    if (o->cache_max_age_ms < 0 || o->cache_max_age_ms > UC_AUTH_CACHE_MAX_AGE_LIMIT_MS)
        return uc_err_set(err, UC_EINVAL, "auth: token cache max age must be 1 to %d ms",
                          UC_AUTH_CACHE_MAX_AGE_LIMIT_MS);
    if (o->jwks_max_age_ms < 0 || o->jwks_max_age_ms > UC_AUTH_JWKS_MAX_AGE_LIMIT_MS)
        return uc_err_set(err, UC_EINVAL, "auth: key set max age must be 1 to %d ms",
                          UC_AUTH_JWKS_MAX_AGE_LIMIT_MS);
    return 0;
}

/* The token cache opts asks for, or NULL (and 0) when it is off. */
static int cache_create(struct uc_auth_verifier *v, const struct uc_auth_verifier_opts *o)
{
    if (o->cache_entries == UC_AUTH_CACHE_OFF)
        return 0;
    long n = o->cache_entries ? o->cache_entries : UC_AUTH_CACHE_DEFAULT;
    int64_t age = o->cache_max_age_ms ? o->cache_max_age_ms : UC_AUTH_CACHE_MAX_AGE_MS;
    return auth_cache_create(&v->cache, (size_t)n, age, v->leeway_s);
}

int uc_auth_verifier_create(struct uc_auth_verifier **out, const struct uc_auth_verifier_opts *opts,
                            char err[UC_ERR_LEN])
{
    int rc = check_opts(opts, err);
    if (rc < 0)
        return rc;
    struct uc_auth_verifier *v = uc_calloc(1, sizeof(*v));
    if (!v)
        goto fail;
    v->audience = uc_strdup(opts->audience ? opts->audience : UC_AUTH_AUDIENCE);
    v->jwks_url = opts->jwks_url ? uc_strdup(opts->jwks_url) : NULL;
    if (!v->audience || (opts->jwks_url && !v->jwks_url))
        goto fail;
    v->leeway_s = opts->leeway_s > 0 ? opts->leeway_s : 0;
    if (cache_create(v, opts) < 0)
        goto fail;
    if (pthread_mutex_init(&v->mu, NULL) != 0)
        goto fail;
    if (pthread_mutex_init(&v->fetch_mu, NULL) != 0) {
        (void)pthread_mutex_destroy(&v->mu); /* unused and unlocked: cannot fail */
        goto fail;
    }
    v->fetch = opts->fetch;
    v->fetch_ctx = opts->fetch_ctx;
    v->clock = opts->clock;
    v->min_refetch_ms = opts->min_refetch_ms > 0 ? opts->min_refetch_ms : DEFAULT_REFETCH_MS;
    v->max_age_ms = opts->jwks_max_age_ms ? opts->jwks_max_age_ms : UC_AUTH_JWKS_MAX_AGE_MS;
    atomic_init(&v->refresh_due_ms, INT64_MAX);
    *out = v;
    return 0;
fail:
    if (v) {
        auth_cache_destroy(v->cache);
        uc_free(v->audience);
        uc_free(v->jwks_url);
    }
    uc_free(v);
    return uc_err_set(err, UC_ENOMEM, "auth: out of memory creating the verifier");
}

void uc_auth_verifier_destroy(struct uc_auth_verifier *v)
{
    if (!v)
        return;
    /* A background refetch may still be running: it ends within its fetch
     * deadline, and it must not outlive the verifier. */
    if (v->joinable)
        join(v->thread);
    keys_free(v->keys, v->nkeys);
    auth_cache_destroy(v->cache);
    (void)pthread_mutex_destroy(&v->mu);       /* unlocked once no call is in flight */
    (void)pthread_mutex_destroy(&v->fetch_mu); /* as above */
    uc_free(v->audience);
    uc_free(v->jwks_url);
    uc_free(v);
}

/* The cached key for kid with a reference taken, or NULL. Call with mu held. */
static struct vkey *lookup(struct uc_auth_verifier *v, const char *kid)
{
    for (size_t i = 0; i < v->nkeys; i++) {
        if (strcmp(v->keys[i]->kid, kid) == 0) {
            atomic_fetch_add(&v->keys[i]->refs, 1);
            return v->keys[i];
        }
    }
    return NULL;
}

static int http_fetch(const char *url, json_t **out, char *err)
{
    struct uc_httpc_opts o = {.timeout_ms = JWKS_TIMEOUT_MS, .retries = JWKS_RETRIES};
    struct uc_httpc_resp r;
    int rc = uc_httpc_json("GET", url, NULL, &o, &r, err);
    if (rc < 0)
        return rc == UC_ENOMEM ? rc : UC_EUNAVAIL;
    if (r.status != 200 || !json_is_object(r.json)) {
        rc = uc_err_set(err, UC_EUNAVAIL, "GET %s: status %ld%s", url, r.status,
                        r.json ? "" : ", not JSON");
    } else {
        *out = json_incref(r.json);
    }
    uc_httpc_resp_clear(&r);
    return rc;
}

/* Turn one JWK into a cache entry; NULL (and 0) for keys we skip. */
static int key_from_jwk(const json_t *jwk, struct vkey **out)
{
    char kerr[UC_ERR_LEN];
    const char *kid = json_string_value(json_object_get(jwk, "kid"));
    *out = NULL;
    if (!kid || !kid[0] || strlen(kid) >= UC_AUTH_ID_LEN)
        return 0;
    struct uc_crypto_key *key = NULL;
    int rc = uc_jws_key_from_jwk(jwk, &key, kerr);
    if (rc == UC_EINVAL)
        return 0; /* not an Ed25519 signing key: not ours to use */
    if (rc < 0)
        return rc;
    struct vkey *k = uc_calloc(1, sizeof(*k));
    if (!k) {
        uc_crypto_key_destroy(key);
        return UC_ENOMEM;
    }
    atomic_init(&k->refs, 1);
    memcpy(k->kid, kid, strlen(kid) + 1);
    /* uc_jws_key_from_jwk took x, so it is 43 base64url characters */
    snprintf(k->x, sizeof(k->x), "%s", json_string_value(json_object_get(jwk, "x")));
    k->key = key;
    *out = k;
    return 0;
}

/* Build a key array from a JWKS document. */
static int parse_jwks(const json_t *doc, struct vkey ***out, size_t *n, char *err)
{
    const json_t *arr = json_object_get(doc, "keys");
    if (!json_is_array(arr))
        return uc_err_set(err, UC_EUNAVAIL, "key set has no 'keys' array");
    size_t total = json_array_size(arr) < JWKS_MAX_KEYS ? json_array_size(arr) : JWKS_MAX_KEYS;
    struct vkey **keys = uc_calloc(total ? total : 1, sizeof(*keys));
    if (!keys)
        return uc_err_set(err, UC_ENOMEM, "out of memory reading the key set");
    size_t used = 0;
    for (size_t i = 0; i < total; i++) {
        struct vkey *k = NULL;
        int rc = key_from_jwk(json_array_get(arr, i), &k);
        if (rc < 0) {
            keys_free(keys, used);
            return uc_err_set(err, rc, "cannot load key %zu of the key set", i);
        }
        bool dup = false;
        for (size_t j = 0; k && j < used && !dup; j++)
            dup = strcmp(keys[j]->kid, k->kid) == 0;
        if (dup)
            vkey_unref(k); /* the first key with a kid wins */
        else if (k)
            keys[used++] = k;
    }
    *out = keys;
    *n = used;
    return 0;
}

/* True when every key of `old` is in `keys` under the same kid: a set that
 * only gained keys leaves every cached token as good as it was. */
static bool keys_kept(struct vkey *const *old, size_t nold, struct vkey *const *keys, size_t n)
{
    for (size_t i = 0; i < nold; i++) {
        bool found = false;
        for (size_t j = 0; j < n && !found; j++)
            found = strcmp(old[i]->kid, keys[j]->kid) == 0 && strcmp(old[i]->x, keys[j]->x) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Recompute refresh_due_ms after a change to what it depends on. Call with
 * mu held. A failed fetch leaves loaded_ms alone, so the set stays stale
 * and the next try is due min_refetch_ms after the failed one began. */
static void update_due(struct uc_auth_verifier *v)
{
    int64_t due = INT64_MAX;
    if (v->loaded && !v->refreshing) {
        int64_t by_age = v->loaded_ms + v->max_age_ms;
        int64_t by_rate = v->last_fetch_ms + v->min_refetch_ms;
        due = by_age > by_rate ? by_age : by_rate;
    }
    atomic_store_explicit(&v->refresh_due_ms, due, memory_order_relaxed);
}

/* Put a freshly fetched set in place; the old one is returned for the caller
 * to compare and free. Call with mu held. */
static struct vkey **swap_keys(struct uc_auth_verifier *v, struct vkey **keys, size_t n,
                               int64_t started_ms, size_t *nold)
{
    struct vkey **old = v->keys;
    *nold = v->nkeys;
    v->keys = keys;
    v->nkeys = n;
    v->loaded = true;
    v->loaded_ms = started_ms;
    v->fetches++;
    update_due(v);
    return old;
}

/* Fetch the key set, begun at started_ms, and swap it into the cache. Call
 * with fetch_mu held and mu not. */
static int refresh(struct uc_auth_verifier *v, int64_t started_ms, char *err)
{
    json_t *doc = NULL;
    struct vkey **keys = NULL;
    size_t n = 0, nold = 0;
    int rc = v->fetch ? v->fetch(v->fetch_ctx, &doc, err) : http_fetch(v->jwks_url, &doc, err);
    if (rc == 0 && !json_is_object(doc))
        rc = uc_err_set(err, UC_EUNAVAIL, "key set is not a JSON object");
    if (rc == 0)
        rc = parse_jwks(doc, &keys, &n, err);
    json_decref(doc);
    if (rc < 0) {
        uc_warn("auth: cannot fetch the signing keys: %s", err ? err : uc_strerror(rc));
        auth_lock(&v->mu);
        v->fetches++;
        v->failures++;
        auth_unlock(&v->mu);
        return rc == UC_ENOMEM ? rc : uc_err_prefix(err, UC_EUNAVAIL, "signing keys unavailable");
    }
    auth_lock(&v->mu);
    struct vkey **old = swap_keys(v, keys, n, started_ms, &nold);
    auth_unlock(&v->mu);
    /* After the swap: a check still holding an old key read the old cache
     * generation, so its put is dropped (auth_cache_put). */
    bool kept = keys_kept(old, nold, keys, n);
    if (v->cache && !kept)
        auth_cache_flush(v->cache);
    keys_free(old, nold);
    uc_info("auth: loaded %zu signing key(s)%s", n, kept ? "" : "; a key was retired");
    return 0;
}

/* Find kid, refetching the key set once when it is unknown and the last
 * fetch is older than min_refetch_ms. *out holds a reference. */
static int find_key(struct uc_auth_verifier *v, const char *kid, struct vkey **out, char *err)
{
    auth_lock(&v->mu);
    *out = lookup(v, kid);
    auth_unlock(&v->mu);
    if (*out)
        return 0;
    auth_lock(&v->fetch_mu); /* waits out a background refetch: it may bring kid */
    auth_lock(&v->mu);
    *out = lookup(v, kid); /* another thread may have fetched meanwhile */
    int64_t now = uc_clock_mono_ms(v->clock);
    bool allowed = !v->fetched || now - v->last_fetch_ms >= v->min_refetch_ms;
    bool have_keys = v->nkeys > 0;
    if (!*out && allowed) {
        v->fetched = true;
        v->last_fetch_ms = now;
        update_due(v);
    }
    auth_unlock(&v->mu);
    int rc = 0;
    if (!*out && allowed) {
        rc = refresh(v, now, err);
        auth_lock(&v->mu);
        *out = rc == 0 ? lookup(v, kid) : NULL;
        have_keys = v->nkeys > 0;
        auth_unlock(&v->mu);
    }
    auth_unlock(&v->fetch_mu);
    if (*out || rc < 0)
        return rc;
    if (!have_keys)
        return uc_err_set(err, UC_EUNAVAIL, "no signing keys loaded yet");
    return uc_err_set(err, UC_EUNAUTH, "token signed by an unknown key");
}

/* The background refetch: fetch_mu serializes it with unknown-kid fetches.
 * A failure is logged by refresh and leaves the old set in use. */
static void *refresher_main(void *arg)
{
    struct uc_auth_verifier *v = arg;
    char err[UC_ERR_LEN] = "";
    auth_lock(&v->fetch_mu);
    auth_lock(&v->mu);
    /* Our start time, or that of an unknown-kid fetch that took fetch_mu
     * first: either way no later than our fetch begins. */
    int64_t started_ms = v->last_fetch_ms;
    auth_unlock(&v->mu);
    /* The outcome is in the stats and the log; nobody waits for it. */
    (void)refresh(v, started_ms, err);
    auth_unlock(&v->fetch_mu);
    auth_lock(&v->mu);
    v->refreshing = false;
    update_due(v);
    auth_unlock(&v->mu);
    return NULL;
}

/* Start the refresh thread with every signal blocked, so the daemon's
 * signal handling stays where it set it up (as lib/repl.c does). */
static bool start_refresher(struct uc_auth_verifier *v)
{
    sigset_t all, old;
    sigfillset(&all);
    (void)pthread_sigmask(SIG_SETMASK, &all, &old); /* fails only for a bad `how` */
    bool started = pthread_create(&v->thread, NULL, refresher_main, v) == 0;
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL); /* as above */
    return started;
}

/* Start a background refetch when the set is stale and one is due. At most
 * one runs; its thread is joined by the next start or by destroy. The
 * thread is created under mu so its handle is stored before it can finish;
 * it takes mu only after that. */
static void maybe_refresh(struct uc_auth_verifier *v, int64_t now)
{
    auth_lock(&v->mu);
    if (now < atomic_load_explicit(&v->refresh_due_ms, memory_order_relaxed)) {
        auth_unlock(&v->mu); /* another thread started it, or it just finished */
        return;
    }
    if (v->joinable)
        join(v->thread); /* finished: refreshing is false */
    v->last_fetch_ms = now;
    v->refreshing = start_refresher(v);
    v->joinable = v->refreshing;
    if (!v->refreshing) {
        v->fetches++; /* counted as a failed fetch, and retried like one */
        v->failures++;
        uc_warn("auth: cannot start a thread to refresh the signing keys");
    }
    update_due(v);
    auth_unlock(&v->mu);
}

/* The full check: decode, find the key, verify the signature and claims. */
static int verify_token(struct uc_auth_verifier *v, const char *token, struct uc_auth_claims *out,
                        struct auth_times *times, char *err)
{
    json_t *header = NULL, *payload = NULL;
    const char *kid = NULL;
    struct vkey *k = NULL;
    int rc = uc_jws_decode(token, &header, &payload, &kid, err);
    if (rc < 0)
        return rc;
    const char *alg = json_string_value(json_object_get(header, "alg"));
    if (!alg || strcmp(alg, "EdDSA") != 0 || strlen(kid) >= UC_AUTH_ID_LEN)
        rc = uc_err_set(err, UC_EUNAUTH, "token must be EdDSA with a short kid");
    if (rc == 0)
        rc = find_key(v, kid, &k, err);
    if (rc == 0)
        rc = uc_jws_verify_sig(token, k->key, err);
    if (rc == 0) {
        int64_t now_s = uc_clock_wall_ms(v->clock) / 1000;
        rc = auth_claims_check(payload, v->audience, now_s, v->leeway_s, out, times, err);
    }
    if (rc == 0)
        memcpy(out->kid, kid, strlen(kid) + 1);
    vkey_unref(k);
    json_decref(header);
    json_decref(payload);
    return rc;
}

/* Answer from the cache: true when it had the token, with the answer in
 * *rc. The claims were checked when the token was stored; only the clock
 * has moved since. */
static bool from_cache(struct uc_auth_verifier *v, const uint8_t key[UC_SHA256_LEN], int64_t mono,
                       struct uc_auth_claims *out, int *rc, char *err)
{
    struct uc_auth_claims c;
    struct auth_times t;
    if (!auth_cache_get(v->cache, key, mono, &c, &t))
        return false;
    *rc = auth_times_check(&t, uc_clock_wall_ms(v->clock) / 1000, v->leeway_s, err);
    if (*rc == 0)
        *out = c;
    return true;
}

int uc_auth_verify(struct uc_auth_verifier *v, const char *token, struct uc_auth_claims *out,
                   char err[UC_ERR_LEN])
{
    uint8_t key[UC_SHA256_LEN];
    struct uc_auth_claims c;
    struct auth_times t;
    int rc = 0;
    if (!token || !token[0])
        return uc_err_set(err, UC_EUNAUTH, "no token");
    /* Before the cache, so a stream of cache hits still ages the key set. */
    int64_t mono = uc_clock_mono_ms(v->clock);
    if (mono >= atomic_load_explicit(&v->refresh_due_ms, memory_order_relaxed))
        maybe_refresh(v, mono);
    /* Oversized tokens are refused by uc_jws_decode; no point hashing them.
     * A hash failure (OpenSSL out of memory) just means no cache this time. */
    size_t len = strnlen(token, UC_JWS_MAX_LEN + 1);
    bool cached = v->cache && len <= UC_JWS_MAX_LEN && uc_crypto_sha256(token, len, key) == 0;
    if (cached && from_cache(v, key, mono, out, &rc, err))
        return rc;
    /* Read before the key is looked up, so a flush after that is seen. */
    uint64_t gen = cached ? auth_cache_gen(v->cache) : 0;
    rc = verify_token(v, token, &c, &t, err);
    if (rc < 0)
        return rc;
    if (cached)
        auth_cache_put(v->cache, key, gen, uc_clock_mono_ms(v->clock), uc_clock_wall_ms(v->clock),
                       &c, &t);
    *out = c;
    return 0;
}

void uc_auth_verifier_cache_stats(struct uc_auth_verifier *v, struct uc_auth_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (v->cache)
        auth_cache_stats(v->cache, out);
}

void uc_auth_verifier_key_stats(struct uc_auth_verifier *v, struct uc_auth_key_stats *out)
{
    int64_t now = uc_clock_mono_ms(v->clock);
    memset(out, 0, sizeof(*out));
    auth_lock(&v->mu);
    out->fetches = v->fetches;
    out->failures = v->failures;
    out->keys = v->nkeys;
    out->age_ms = v->loaded ? now - v->loaded_ms : -1;
    out->refreshing = v->refreshing;
    auth_unlock(&v->mu);
}

int uc_auth_http_authn(void *ctx, const char *token, struct uc_auth_claims *out,
                       char err[UC_ERR_LEN])
{
    return uc_auth_verify(ctx, token, out, err);
}
