/* daemon.c - synchronous signal handling for foreground daemons. */
#include <pthread.h>
#include <signal.h>

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
