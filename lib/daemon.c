/* daemon.c - synchronous signal handling for foreground daemons, and the
 * one main() they share: every daemon starts, serves and stops in the same
 * order and with the same exit statuses, differing only in its callbacks. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "uc/alloc.h"
#include "uc/daemon.h"
#include "uc/log.h"

static void fill_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

int uc_daemon_init(void)
{
    sigset_t set;
    fill_set(&set);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return UC_EIO;
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        return UC_EIO;
    return 0;
}

int uc_daemon_wait(void)
{
    sigset_t set;
    fill_set(&set);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            uc_info("SIGHUP ignored: restart the service to reload its configuration");
            continue;
        }
        return sig;
    }
}

int uc_daemon_config(void *cfg, const struct uc_config_opt *opts, const char *service,
                     size_t log_level_offset, int argc, char **argv)
{
    char err[UC_ERR_LEN];
    enum uc_log_level level;
    int rc = uc_config_load(cfg, opts, service, argc, argv, err);
    if (rc == UC_EHELP)
        return rc;
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", service, err);
        return UC_EINVAL;
    }
    const char *name = *(char **)((char *)cfg + log_level_offset);
    if (!name || uc_log_parse_level(name, &level) < 0) {
        fprintf(stderr, "%s: --log-level must be debug, info, warn or error\n", service);
        uc_config_free(cfg, opts);
        return UC_EINVAL;
    }
    uc_log_init(service, level);
    return 0;
}

int uc_daemon_listen(struct uc_http_server **http, const struct uc_http_opts *opts)
{
    char err[UC_ERR_LEN];
    int rc = uc_http_start(http, opts, err);
    if (rc < 0) {
        uc_error("cannot serve on %s:%u: %s", opts->bind_addr, (unsigned)opts->port, err);
        return rc;
    }
    uc_info("listening on %s:%u", opts->bind_addr, (unsigned)uc_http_port(*http));
    return 0;
}

void uc_daemon_drain(struct uc_http_server *http, int drain_ms)
{
    int sig = uc_daemon_wait();
    uc_info("signal %d: draining for up to %d ms", sig, drain_ms);
    int left = uc_http_drain(http, drain_ms);
    if (left > 0)
        uc_warn("%d requests still open after the drain", left);
}

int uc_daemon_serve(struct uc_http_server **http, const struct uc_http_opts *opts, int drain_ms)
{
    int rc = uc_daemon_listen(http, opts);
    if (rc < 0)
        return rc;
    uc_daemon_drain(*http, drain_ms);
    return 0;
}

static int open_failed(const struct uc_daemon_spec *spec, int rc, const char *err)
{
    if (err[0] != '\0')
        uc_error("%s", err);
    bool config = spec->config_error ? spec->config_error(rc) : rc == UC_EINVAL;
    return config ? UC_EXIT_CONFIG : UC_EXIT_FAILURE;
}

int uc_daemon_main(const struct uc_daemon_spec *spec, void *state, int argc, char **argv)
{
    char err[UC_ERR_LEN] = "";
    void *cfg = (char *)state + spec->cfg_offset;
    int code = 0;
    if (uc_daemon_init() < 0) {
        fprintf(stderr, "%s: cannot set up signal handling\n", spec->service);
        return UC_EXIT_FAILURE;
    }
    uc_alloc_install_jansson();
    int rc = uc_daemon_config(cfg, spec->opts, spec->service, spec->log_level_offset, argc, argv);
    if (rc == UC_EHELP)
        return 0;
    if (rc < 0)
        return UC_EXIT_CONFIG; /* uc_daemon_config left nothing to free */
    if ((rc = spec->open(state, err)) < 0)
        code = open_failed(spec, rc, err);
    else if (rc == 0 && spec->serve(state) < 0)
        code = UC_EXIT_FAILURE;
    spec->teardown(state);
    uc_config_free(cfg, spec->opts);
    return code;
}
