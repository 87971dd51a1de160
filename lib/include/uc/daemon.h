/* uc/daemon.h - process lifecycle for a foreground daemon: SIGTERM/SIGINT
 * are blocked in every thread at start-up and taken synchronously by main
 * with sigwait, so no signal handler ever runs concurrently with our code. */
#ifndef UC_DAEMON_H
#define UC_DAEMON_H
#include "uc/err.h"

/* Block SIGTERM, SIGINT and SIGHUP and ignore SIGPIPE. Call first in main,
 * before any thread starts, so every thread inherits the mask.
 * Errors: UC_EIO. */
UC_MUSTCHECK int uc_daemon_init(void);

/* Wait until SIGTERM or SIGINT arrives (SIGHUP is logged and ignored) and
 * return its number. */
int uc_daemon_wait(void);

#endif /* UC_DAEMON_H */
