/* log.c - one line per event on stderr. Each line is built in a buffer and
 * written with a single write(2), so concurrent threads never interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "uc/log.h"

/* Process-wide and set once in main before threads start. */
static const char *log_service = "uc";
static enum uc_log_level log_level = UC_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void uc_log_init(const char *service, enum uc_log_level level)
{
    log_service = service;
    log_level = level;
}

int uc_log_parse_level(const char *s, enum uc_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum uc_log_level)i;
            return 0;
        }
    }
    return UC_EINVAL;
}

int uc_log_enabled(enum uc_log_level level) { return level >= log_level; }

void uc_log(enum uc_log_level level, const char *rid, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ %s %s ", ts.tv_nsec / 1000000,
                  level_names[level], log_service);
    if (rid)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "rid=%s ", rid);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failed log write */
}
