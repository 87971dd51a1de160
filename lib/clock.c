/* clock.c - real and manual time sources behind struct uc_clock. */
#include <time.h>

#include "uc/clock.h"

static int64_t read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t uc_clock_wall_ms(const struct uc_clock *c)
{
    return c ? c->wall_ms(c->ctx) : read_clock(CLOCK_REALTIME);
}

int64_t uc_clock_mono_ms(const struct uc_clock *c)
{
    return c ? c->mono_ms(c->ctx) : read_clock(CLOCK_MONOTONIC);
}

static int64_t manual_now(void *ctx) { return ((struct uc_clock_manual *)ctx)->now_ms; }

void uc_clock_manual_init(struct uc_clock_manual *m, int64_t start_ms)
{
    m->now_ms = start_ms;
    m->clock.wall_ms = manual_now;
    m->clock.mono_ms = manual_now;
    m->clock.ctx = m;
}

void uc_clock_manual_advance(struct uc_clock_manual *m, int64_t ms) { m->now_ms += ms; }
