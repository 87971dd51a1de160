/* auth_cache.c - the verifier's cache of verified tokens: claims by the
 * SHA-256 of the token. The idea: a fixed-size, set-associative table split
 * into stripes, each with its own mutex, so a lookup is a hash, one short
 * lock and at most PROBE slot compares, and threads rarely meet. */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "uc/alloc.h"
#include "auth_internal.h"

#define MAX_STRIPES 16
#define PROBE 8 /* slots a key may live in, from its home slot on */

struct entry {
    uint8_t key[UC_SHA256_LEN];
    bool live;
    int64_t dead_mono_ms;    /* insertion + max age: never used from then on */
    int64_t expires_wall_ms; /* exp + leeway: worthless from then on */
    struct auth_times times;
    struct uc_auth_claims claims;
};

/* One lock's share of the table. The padding keeps neighbouring stripes'
 * mutexes off one cache line, so threads on different stripes do not
 * bounce it between cores. */
struct stripe {
    pthread_mutex_t mu; /* guards the rest of the stripe */
    struct entry *slots;
    size_t nslots, used;
    uint64_t hits, misses, evictions;
    char pad[64];
};

struct auth_cache {
    int64_t max_age_ms, leeway_ms;
    size_t nstripes, capacity;
    atomic_uint_fast64_t gen; /* bumped by each flush */
    struct stripe stripes[MAX_STRIPES];
};

/* Seconds to milliseconds, clamped far from overflow: exp is whatever
 * integer the token carried. */
static int64_t to_ms(int64_t s)
{
    const int64_t lim = INT64_MAX / 4000;
    return (s > lim ? lim : s < -lim ? -lim : s) * 1000;
}

/* Stripes of at least PROBE slots, at most MAX_STRIPES, a power of two. */
static size_t stripes_for(size_t entries)
{
    size_t n = 1;
    while (n < MAX_STRIPES && entries / (n * 2) >= PROBE)
        n *= 2;
    return n;
}

int auth_cache_create(struct auth_cache **out, size_t entries, int64_t max_age_ms, int64_t leeway_s)
{
    assert(entries > 0 && max_age_ms > 0);
    struct auth_cache *c = uc_calloc(1, sizeof(*c));
    if (!c)
        return UC_ENOMEM;
    c->max_age_ms = max_age_ms;
    c->leeway_ms = to_ms(leeway_s);
    c->capacity = entries;
    c->nstripes = stripes_for(entries);
    atomic_init(&c->gen, 0);
    for (size_t i = 0; i < c->nstripes; i++) {
        struct stripe *s = &c->stripes[i];
        s->nslots = entries / c->nstripes + (i < entries % c->nstripes);
        if (pthread_mutex_init(&s->mu, NULL) != 0) {
            c->nstripes = i; /* destroy only the mutexes made so far */
            auth_cache_destroy(c);
            return UC_ENOMEM;
        }
    }
    *out = c;
    return 0;
}

void auth_cache_destroy(struct auth_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nstripes; i++) {
        (void)pthread_mutex_destroy(&c->stripes[i].mu); /* unlocked: no call in flight */
        uc_free(c->stripes[i].slots);
    }
    uc_free(c);
}

uint64_t auth_cache_gen(struct auth_cache *c) { return atomic_load(&c->gen); }

/* SHA-256 output is uniform, so its first bytes serve as the hash. */
static uint64_t hash_of(const uint8_t key[UC_SHA256_LEN])
{
    uint64_t h;
    memcpy(&h, key, sizeof(h));
    return h;
}

static struct stripe *stripe_of(struct auth_cache *c, uint64_t h)
{
    return &c->stripes[h & (c->nstripes - 1)];
}

static size_t probe_len(const struct stripe *s) { return s->nslots < PROBE ? s->nslots : PROBE; }

/* The slot holding key in its probe window, or NULL. Call with s->mu held.
 * memcmp, not a constant-time compare: the keys are SHA-256 digests, and
 * learning how many leading bytes of a stored digest match one's own
 * token's digest tells an attacker nothing they could use without a
 * preimage, while the tokens themselves never enter a comparison. */
static struct entry *find(struct stripe *s, uint64_t h, const uint8_t key[UC_SHA256_LEN])
{
    size_t home = (size_t)(h >> 8) % s->nslots;
    for (size_t i = 0; s->slots && i < probe_len(s); i++) {
        struct entry *e = &s->slots[(home + i) % s->nslots];
        if (e->live && memcmp(e->key, key, UC_SHA256_LEN) == 0)
            return e;
    }
    return NULL;
}

static void drop(struct stripe *s, struct entry *e)
{
    e->live = false;
    s->used--;
}

bool auth_cache_get(struct auth_cache *c, const uint8_t key[UC_SHA256_LEN], int64_t mono_ms,
                    struct uc_auth_claims *claims, struct auth_times *times)
{
    uint64_t h = hash_of(key);
    struct stripe *s = stripe_of(c, h);
    auth_lock(&s->mu);
    struct entry *e = find(s, h, key);
    if (e && mono_ms >= e->dead_mono_ms) {
        drop(s, e);
        e = NULL;
    }
    if (e) {
        *claims = e->claims;
        *times = e->times;
        s->hits++;
    } else {
        s->misses++;
    }
    auth_unlock(&s->mu);
    return e != NULL;
}

/* Milliseconds an entry has left to be of use: the sooner of its max age
 * and its token's expiry. */
static int64_t life_left(const struct entry *e, int64_t mono_ms, int64_t wall_ms)
{
    int64_t by_age = e->dead_mono_ms - mono_ms, by_exp = e->expires_wall_ms - wall_ms;
    return by_age < by_exp ? by_age : by_exp;
}

/* Where a new key goes in its window: a free or worthless slot, else the
 * live entry with the least life left (counted as an eviction). Call with
 * s->mu held and s->slots allocated. */
static struct entry *victim(struct stripe *s, uint64_t h, int64_t mono_ms, int64_t wall_ms)
{
    size_t home = (size_t)(h >> 8) % s->nslots;
    struct entry *best = &s->slots[home];
    int64_t best_left = INT64_MAX; /* above any life: max age is bounded */
    for (size_t i = 0; i < probe_len(s); i++) {
        struct entry *e = &s->slots[(home + i) % s->nslots];
        if (!e->live)
            return e;
        int64_t left = life_left(e, mono_ms, wall_ms);
        if (left < best_left) {
            best = e;
            best_left = left;
        }
    }
    drop(s, best);
    if (best_left > 0)
        s->evictions++;
    return best;
}

void auth_cache_put(struct auth_cache *c, const uint8_t key[UC_SHA256_LEN], uint64_t gen,
                    int64_t mono_ms, int64_t wall_ms, const struct uc_auth_claims *claims,
                    const struct auth_times *times)
{
    uint64_t h = hash_of(key);
    struct stripe *s = stripe_of(c, h);
    auth_lock(&s->mu);
    /* Read under the stripe lock: a flush bumps gen before it takes the
     * locks, so either this put sees the new gen or the flush clears it. */
    if (atomic_load(&c->gen) != gen)
        goto out;
    if (!s->slots && !(s->slots = uc_calloc(s->nslots, sizeof(*s->slots))))
        goto out;
    struct entry *e = find(s, h, key);
    if (e)
        drop(s, e); /* another thread verified the same token meanwhile */
    else
        e = victim(s, h, mono_ms, wall_ms);
    memcpy(e->key, key, UC_SHA256_LEN);
    e->dead_mono_ms = mono_ms + c->max_age_ms;
    e->expires_wall_ms = to_ms(times->exp) + c->leeway_ms;
    e->times = *times;
    e->claims = *claims;
    e->live = true;
    s->used++;
out:
    auth_unlock(&s->mu);
}

void auth_cache_flush(struct auth_cache *c)
{
    atomic_fetch_add(&c->gen, 1);
    for (size_t i = 0; i < c->nstripes; i++) {
        struct stripe *s = &c->stripes[i];
        auth_lock(&s->mu);
        for (size_t j = 0; s->slots && j < s->nslots; j++)
            s->slots[j].live = false;
        s->used = 0;
        auth_unlock(&s->mu);
    }
}

void auth_cache_stats(struct auth_cache *c, struct uc_auth_cache_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->capacity = c->capacity;
    out->flushes = atomic_load(&c->gen);
    for (size_t i = 0; i < c->nstripes; i++) {
        struct stripe *s = &c->stripes[i];
        auth_lock(&s->mu);
        out->hits += s->hits;
        out->misses += s->misses;
        out->evictions += s->evictions;
        out->entries += s->used;
        auth_unlock(&s->mu);
    }
}
