/* uc/daemon.h - process lifecycle for a foreground daemon: SIGTERM/SIGINT
 * are blocked in every thread at start-up and taken synchronously by main
 * with sigwait, so no signal handler ever runs concurrently with our code. */
#ifndef UC_DAEMON_H
#define UC_DAEMON_H
#include <stdbool.h>
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

/* Start the HTTP server (*http is set once it runs; the caller frees it
 * with uc_http_destroy) and log where it listens. Errors: those of
 * uc_http_start, logged as one line. */
UC_MUSTCHECK int uc_daemon_listen(struct uc_http_server **http, const struct uc_http_opts *opts);

/* Wait for SIGTERM/SIGINT, then drain requests in flight for up to
 * drain_ms. */
void uc_daemon_drain(struct uc_http_server *http, int drain_ms);

/* uc_daemon_listen, then uc_daemon_drain. */
UC_MUSTCHECK int uc_daemon_serve(struct uc_http_server **http, const struct uc_http_opts *opts,
                                 int drain_ms);

/* Exit statuses of uc_daemon_main. */
#define UC_EXIT_FAILURE 1
#define UC_EXIT_CONFIG 2 /* a bad option, or --help with a bad table */

/* What a daemon's main() differs in. The state is the daemon's own struct;
 * its options struct lives at cfg_offset in it. */
struct uc_daemon_spec {
    const char *service;
    const struct uc_config_opt *opts;
    size_t cfg_offset;
    size_t log_level_offset; /* in the options struct */
    /* Build everything before serving; failures are logged here or left
     * in err (then logged by uc_daemon_main). Returns 0 to serve, > 0 to
     * end at once with exit 0 (a stop signal came while starting), or an
     * error: exit 2 when config_error(rc), else 1. */
    int (*open)(void *state, char err[UC_ERR_LEN]);
    int (*serve)(void *state); /* until stopped; an error (logged) is exit 1 */
    /* Undo whatever open built; must be safe on a partly built state.
     * Runs whenever the options loaded; the options are freed after it. */
    void (*teardown)(void *state);
    bool (*config_error)(int rc); /* NULL: rc == UC_EINVAL */
};

/* The whole of a daemon's main(): uc_daemon_init, jansson on uc_malloc,
 * uc_daemon_config into the zeroed `state`, then open, serve, teardown.
 * Returns the process exit status: 0, UC_EXIT_FAILURE or UC_EXIT_CONFIG
 * (help printed: 0). */
int uc_daemon_main(const struct uc_daemon_spec *spec, void *state, int argc, char **argv);

#endif /* UC_DAEMON_H */
