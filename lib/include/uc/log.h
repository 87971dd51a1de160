/* uc/log.h - one line per event on stderr, for journald.
 * Format: "<RFC3339 time> <level> <service> [rid=<id>] message". Set up once
 * in main with uc_log_init; logging itself is thread-safe (one write(2) per
 * line, so lines from different threads never interleave). */
#ifndef UC_LOG_H
#define UC_LOG_H
#include "uc/err.h"

enum uc_log_level { UC_LOG_DEBUG, UC_LOG_INFO, UC_LOG_WARN, UC_LOG_ERROR };

/* `service` is borrowed for the life of the process (a string literal). */
void uc_log_init(const char *service, enum uc_log_level level);

/* Parse "debug|info|warn|error". Errors: UC_EINVAL. */
UC_MUSTCHECK int uc_log_parse_level(const char *s, enum uc_log_level *out);

/* True when `level` would be written (skip building costly messages). */
int uc_log_enabled(enum uc_log_level level);

/* Write one line; `rid` (request id) may be NULL. Newlines in the message
 * are replaced by spaces so one event is always one line. */
UC_PRINTF(3, 4) void uc_log(enum uc_log_level level, const char *rid, const char *fmt, ...);

#define uc_debug(...) uc_log(UC_LOG_DEBUG, NULL, __VA_ARGS__)
#define uc_info(...) uc_log(UC_LOG_INFO, NULL, __VA_ARGS__)
#define uc_warn(...) uc_log(UC_LOG_WARN, NULL, __VA_ARGS__)
#define uc_error(...) uc_log(UC_LOG_ERROR, NULL, __VA_ARGS__)

#endif /* UC_LOG_H */
