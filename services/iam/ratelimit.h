/* ratelimit.h - per-subject token buckets for the token endpoint: each key
 * (a username or access key id) may make `per_minute` attempts in a burst,
 * refilled evenly over a minute. Memory is bounded: a fixed table in which a
 * new key takes over the least recently used slot of its probe window.
 * Thread-safe (one mutex). Time comes from the injected clock. */
#ifndef IAM_RATELIMIT_H
#define IAM_RATELIMIT_H
#include <stddef.h>
#include <stdint.h>

#include "uc/clock.h"
#include "uc/err.h"

struct iam_ratelimit;

/* Create a limiter of `per_minute` (1..1000000) attempts per key with room
 * for about `slots` keys (rounded up to a power of two, at least 64).
 * `clock` is borrowed for the limiter's life (NULL = real time). On
 * success *out is freed with iam_ratelimit_destroy.
 * Errors: UC_EINVAL (bad rate), UC_ECRYPTO (no randomness), UC_ENOMEM. */
UC_MUSTCHECK int iam_ratelimit_create(struct iam_ratelimit **out, int64_t per_minute, size_t slots,
                                      const struct uc_clock *clock);

/* Free; NULL is a no-op. */
void iam_ratelimit_destroy(struct iam_ratelimit *rl);

/* Take one attempt for `key` (borrowed). Returns 0 when allowed. When the
 * key's bucket is empty, returns UC_ERATE and sets *retry_after_s to the
 * whole seconds (at least 1) until the next attempt is allowed.
 * Errors: UC_ERATE, UC_ECRYPTO (hashing failed). */
UC_MUSTCHECK int iam_ratelimit_take(struct iam_ratelimit *rl, const char *key,
                                    int64_t *retry_after_s);

#endif /* IAM_RATELIMIT_H */
