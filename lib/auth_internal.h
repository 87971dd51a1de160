/* auth_internal.h - what auth.c (the verifier) needs from auth_claims.c and
 * from auth_cache.c, its cache of verified tokens. */
#ifndef UC_AUTH_INTERNAL_H
#define UC_AUTH_INTERNAL_H
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "uc/auth.h"
#include "uc/crypto.h"

/* pthread_mutex_lock/unlock of a default mutex, which fail only on a
 * programmer error: asserted, so callers have no failure path to design. */
void auth_lock(pthread_mutex_t *m);
void auth_unlock(pthread_mutex_t *m);

/* A token's time claims (unix seconds), kept beside its cached claims so a
 * cache hit is held to the same clock checks as a full verification. */
struct auth_times {
    int64_t exp, iat, nbf;
    bool has_iat, has_nbf;
};

/* The clock half of the claim checks: exp > now - leeway, and nbf and iat,
 * when present, <= now + leeway. Errors: UC_EUNAUTH ("token expired", ...). */
int auth_times_check(const struct auth_times *t, int64_t now, int64_t leeway, char *err);

/* uc_auth_claims_from_json with the audience as a parameter: the verifier
 * checks the audience it was configured with. When `times` is not NULL it
 * receives the time claims on success. Errors: UC_EUNAUTH. */
int auth_claims_check(const json_t *p, const char *audience, int64_t now, int64_t leeway,
                      struct uc_auth_claims *out, struct auth_times *times, char *err);

/* --- auth_cache.c: verified tokens by the SHA-256 of their bytes ---------- */

struct auth_cache;

/* A cache of `entries` slots (1..UC_AUTH_CACHE_MAX) whose entries live
 * max_age_ms of the mono clock; leeway_s only ranks entries for eviction.
 * Slots are allocated on first use, a stripe at a time.
 * Errors: UC_ENOMEM (*out untouched). */
int auth_cache_create(struct auth_cache **out, size_t entries, int64_t max_age_ms,
                      int64_t leeway_s);
/* NULL is a no-op. No call may be in flight. */
void auth_cache_destroy(struct auth_cache *c);

/* The flush generation; read it before looking up the key a token is
 * checked with, and hand it to auth_cache_put. */
uint64_t auth_cache_gen(struct auth_cache *c);

/* Copy out the live entry for `key`: true on a hit. The caller must still
 * check the times against the wall clock. */
bool auth_cache_get(struct auth_cache *c, const uint8_t key[UC_SHA256_LEN], int64_t mono_ms,
                    struct uc_auth_claims *claims, struct auth_times *times);

/* Remember a verified token. Dropped silently when the cache was flushed
 * since `gen` was read, or when its stripe cannot be allocated: the cache is
 * an optimisation, so a failure here only costs the next call a verify. */
void auth_cache_put(struct auth_cache *c, const uint8_t key[UC_SHA256_LEN], uint64_t gen,
                    int64_t mono_ms, int64_t wall_ms, const struct uc_auth_claims *claims,
                    const struct auth_times *times);

/* Forget every entry; puts that read an older generation are dropped. */
void auth_cache_flush(struct auth_cache *c);

/* Counters and occupancy, summed over the stripes. */
void auth_cache_stats(struct auth_cache *c, struct uc_auth_cache_stats *out);

#endif /* UC_AUTH_INTERNAL_H */
