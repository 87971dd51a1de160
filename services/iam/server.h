/* server.h - struct iam_server: everything one IAM daemon holds (store,
 * keyring, rate limiter, secrets, counters). Built in main.c (or a test) and
 * handed to every handler through uc_http_opts.ctx; there are no globals.
 * Fields are set before serving and then only read, except the counters
 * and `starting` (atomic) and the objects that guard themselves (store,
 * keyring, limiter); the keyring is set while `starting` is still true. */
#ifndef IAM_SERVER_H
#define IAM_SERVER_H
#include <stdatomic.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "uc/clock.h"
#include "uc/crypto.h"
#include "uc/store.h"

struct iam_keyring;
struct iam_ratelimit;

struct iam_counters {
    atomic_ulong tokens_issued;  /* tokens handed out */
    atomic_ulong token_failures; /* refused grants (401/403) */
    atomic_ulong rate_limited;   /* grants refused with 429 */
    atomic_ulong introspections; /* introspect calls */
    atomic_ulong keys_rotated;   /* signing keys generated through the API */
};

struct iam_server {
    struct uc_store *store;             /* borrowed; thread-safe */
    struct iam_keyring *keyring;        /* borrowed; thread-safe */
    struct iam_ratelimit *ratelimit;    /* borrowed; thread-safe */
    const struct uc_clock *clock;       /* NULL = real time */
    uint8_t master_key[UC_AES_KEY_LEN]; /* seals credential secrets; wiped at exit */
    const char *bootstrap_token;        /* borrowed; NULL disables it */
    int64_t token_ttl_s;                /* longest (and default) token lifetime */
    int scrypt_log_n;                   /* cost of new password hashes */
    char *dummy_hash;                   /* verified when a user is unknown (same timing) */
    struct iam_counters counters;
    /* True while main is still loading the keyring from the store (which,
     * on flaredb, needs this very daemon's JWKS): the API then answers 503
     * except GET /api/v1/keys, which serves boot_jwks (borrowed). Set false
     * once store and keyring are ready; false from the start in tests. */
    atomic_bool starting;
    json_t *boot_jwks;
};

#endif /* IAM_SERVER_H */
