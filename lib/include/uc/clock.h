/* uc/clock.h - time as an injectable source, so tests can advance it.
 * A NULL clock means the real clocks. Thread-safe for reads; tests set time
 * from one thread. */
#ifndef UC_CLOCK_H
#define UC_CLOCK_H
#include <stdint.h>

struct uc_clock {
    /* Both return milliseconds; wall is unix time, mono never goes back. */
    int64_t (*wall_ms)(void *ctx);
    int64_t (*mono_ms)(void *ctx);
    void *ctx;
};

/* Read `c`, or the system clocks when c is NULL. */
int64_t uc_clock_wall_ms(const struct uc_clock *c);
int64_t uc_clock_mono_ms(const struct uc_clock *c);

/* A manual clock for tests: starts at `start_ms` (both wall and mono) and
 * moves only when uc_clock_manual_advance is called. */
struct uc_clock_manual {
    struct uc_clock clock;
    int64_t now_ms;
};
void uc_clock_manual_init(struct uc_clock_manual *m, int64_t start_ms);
void uc_clock_manual_advance(struct uc_clock_manual *m, int64_t ms);

#endif /* UC_CLOCK_H */
