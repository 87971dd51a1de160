/* ratelimit.c - bounded table of token buckets keyed by a salted hash of
 * the subject, in integer units (one attempt = 60000 units, refilled at
 * per_minute units per millisecond) so timings are exact. */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "ratelimit.h"
#include "uc/alloc.h"
#include "uc/crypto.h"

#define UNIT 60000 /* units per attempt = milliseconds per minute */
#define PROBE 8    /* slots looked at per key */
#define MIN_SLOTS 64
#define SEED_LEN 16
#define MAX_KEY 256

struct bucket {
    uint64_t hash; /* 0 = empty slot */
    int64_t units;
    int64_t last_ms;
};

struct iam_ratelimit {
    pthread_mutex_t lock;
    const struct uc_clock *clock;
    int64_t per_minute;
    size_t mask;
    uint8_t seed[SEED_LEN];
    struct bucket *slots;
};

int iam_ratelimit_create(struct iam_ratelimit **out, int64_t per_minute, size_t slots,
                         const struct uc_clock *clock)
{
    if (per_minute < 1 || per_minute > 1000000)
        return UC_EINVAL;
    size_t n = MIN_SLOTS;
    while (n < slots && n < ((size_t)1 << 24))
        n <<= 1;
    struct iam_ratelimit *rl = uc_calloc(1, sizeof(*rl));
    if (!rl)
        return UC_ENOMEM;
    rl->slots = uc_calloc(n, sizeof(*rl->slots));
    if (!rl->slots)
        goto fail_slots;
    if (uc_crypto_random(rl->seed, sizeof(rl->seed)) < 0)
        goto fail_seed;
    if (pthread_mutex_init(&rl->lock, NULL) != 0)
        goto fail_seed;
    rl->clock = clock;
    rl->per_minute = per_minute;
    rl->mask = n - 1;
    *out = rl;
    return 0;
fail_seed:
    uc_free(rl->slots);
    uc_free(rl);
    return UC_ECRYPTO;
fail_slots:
    uc_free(rl);
    return UC_ENOMEM;
}

void iam_ratelimit_destroy(struct iam_ratelimit *rl)
{
    if (!rl)
        return;
    /* Nothing useful to do if destroying an unlocked mutex fails. */
    (void)pthread_mutex_destroy(&rl->lock);
    uc_free(rl->slots);
    uc_free(rl);
}

/* Salted SHA-256 of key, first 8 bytes, never 0 (0 marks an empty slot). */
static int key_hash(const struct iam_ratelimit *rl, const char *key, uint64_t *out)
{
    uint8_t buf[SEED_LEN + MAX_KEY], digest[UC_SHA256_LEN];
    size_t n = strnlen(key, MAX_KEY);
    memcpy(buf, rl->seed, SEED_LEN);
    memcpy(buf + SEED_LEN, key, n);
    if (uc_crypto_sha256(buf, SEED_LEN + n, digest) < 0)
        return UC_ECRYPTO;
    uint64_t h;
    memcpy(&h, digest, sizeof(h));
    *out = h ? h : 1;
    return 0;
}

/* The key's bucket, or a fresh full one in the least recently used slot. */
static struct bucket *find(struct iam_ratelimit *rl, uint64_t h, int64_t now)
{
    struct bucket *victim = NULL;
    for (size_t i = 0; i < PROBE; i++) {
        struct bucket *b = &rl->slots[(h + i) & rl->mask];
        if (b->hash == h)
            return b;
        if (!victim || (victim->hash && (!b->hash || b->last_ms < victim->last_ms)))
            victim = b;
    }
    *victim = (struct bucket){h, rl->per_minute * UNIT, now};
    return victim;
}

int iam_ratelimit_take(struct iam_ratelimit *rl, const char *key, int64_t *retry_after_s)
{
    uint64_t h;
    if (key_hash(rl, key, &h) < 0)
        return UC_ECRYPTO;
    int rc = 0;
    pthread_mutex_lock(&rl->lock);
    int64_t now = uc_clock_mono_ms(rl->clock);
    struct bucket *b = find(rl, h, now);
    int64_t dt = now - b->last_ms;
    dt = dt < 0 ? 0 : dt > UNIT ? UNIT : dt;
    int64_t cap = rl->per_minute * UNIT;
    b->units = b->units + dt * rl->per_minute > cap ? cap : b->units + dt * rl->per_minute;
    b->last_ms = now;
    if (b->units >= UNIT) {
        b->units -= UNIT;
    } else {
        int64_t wait_ms = (UNIT - b->units + rl->per_minute - 1) / rl->per_minute;
        *retry_after_s = wait_ms <= 1000 ? 1 : (wait_ms + 999) / 1000;
        rc = UC_ERATE;
    }
    pthread_mutex_unlock(&rl->lock);
    return rc;
}
