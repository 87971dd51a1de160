/* uc/daemon.h - process lifecycle for a foreground daemon: SIGTERM/SIGINT
 * are blocked in every thread at start-up and taken synchronously by main
 * with sigwait, so no signal handler ever runs concurrently with our code. */
#ifndef UC_DAEMON_H
#define UC_DAEMON_H
#include <stddef.h>

#include "uc/config.h"
#include "uc/err.h"
#include "uc/http.h"

/* Block SIGTERM, SIGINT and SIGHUP and ignore SIGPIPE. Call first in main,
 * before any thread starts, so every thread inherits the mask.
 * Errors: UC_EIO. */
UC_MUSTCHECK int uc_daemon_init(void);

/* Wait until SIGTERM or SIGINT arrives (SIGHUP is logged and ignored) and
 * return its number. */
int uc_daemon_wait(void);

/* A daemon's first step: uc_config_load into `cfg`, then logging set up as
 * `service` at the level named by the string option stored at
 * `log_level_offset` in `cfg` (offsetof(struct my_config, log_level)).
 * A failure is printed as one line "<service>: <message>" on stderr.
 * Returns 0, UC_EHELP (help printed: exit 0) or UC_EINVAL (exit 2); on
 * failure `cfg` holds nothing to free. `service` is borrowed for the life
 * of the process. */
UC_MUSTCHECK int uc_daemon_config(void *cfg, const struct uc_config_opt *opts, const char *service,
                                  size_t log_level_offset, int argc, char **argv);

/* Serve until told to stop: start the HTTP server (*http is set once it
 * runs; the caller frees it with uc_http_destroy), log where it listens,
 * wait for SIGTERM/SIGINT, then drain requests in flight for up to
 * drain_ms. Errors: those of uc_http_start, logged as one line. */
UC_MUSTCHECK int uc_daemon_serve(struct uc_http_server **http, const struct uc_http_opts *opts,
                                 int drain_ms);

#endif /* UC_DAEMON_H */
