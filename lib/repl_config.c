/* repl_config.c - checks on a replication config before anything starts,
 * and the data directory: created when missing and locked against a second
 * member using it. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repl_internal.h"
#include "uc/alloc.h"

/* "host:port" with a non-empty host and a port in 1..65535. */
bool repl_valid_addr(const char *a)
{
    if (!a || !*a || strlen(a) >= UC_REPL_ADDR_LEN)
        return false;
    const char *colon = strrchr(a, ':');
    if (!colon || colon == a || !colon[1] || strlen(colon + 1) > 5)
        return false;
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (*p - '0');
    }
    return port >= 1 && port <= 65535;
}

static int check_bootstrap(const struct uc_repl_config *cfg, char *err)
{
    bool self = false;
    for (size_t i = 0; i < cfg->n_bootstrap; i++) {
        const struct uc_repl_member *m = &cfg->bootstrap[i];
        if (m->id == 0 || !repl_valid_addr(m->addr))
            return uc_err_set(err, UC_EINVAL, "bootstrap member %zu: need an id > 0 and host:port",
                              i);
        if (m->role != UC_REPL_VOTER && m->role != UC_REPL_LEARNER && m->role != UC_REPL_SPARE)
            return uc_err_set(err, UC_EINVAL, "bootstrap member %zu: unknown role", i);
        if (m->id == cfg->id)
            self = true;
    }
    if (cfg->n_bootstrap && !self)
        return uc_err_set(err, UC_EINVAL, "the bootstrap list must include this member (%llu)",
                          (unsigned long long)cfg->id);
    return 0;
}

int repl_check_config(const struct uc_repl_config *cfg, char *err)
{
    if (!cfg || cfg->id == 0)
        return uc_err_set(err, UC_EINVAL, "replication: the member id must be > 0");
    if (!repl_valid_addr(cfg->address))
        return uc_err_set(err, UC_EINVAL, "replication: address must be host:port");
    if (cfg->bind_address && !repl_valid_addr(cfg->bind_address))
        return uc_err_set(err, UC_EINVAL, "replication: bind address must be ip:port");
    if (!cfg->data_dir || !*cfg->data_dir)
        return uc_err_set(err, UC_EINVAL, "replication: a data directory is required");
    if (!cfg->sm.apply || !cfg->sm.snapshot || !cfg->sm.restore)
        return uc_err_set(err, UC_EINVAL,
                          "replication: the state machine needs apply, "
                          "snapshot and restore");
    int nsplit = !!cfg->sm.snapshot_begin + !!cfg->sm.snapshot_encode + !!cfg->sm.snapshot_end;
    if (nsplit != 0 && nsplit != 3)
        return uc_err_set(err, UC_EINVAL,
                          "replication: snapshot_begin, snapshot_encode and snapshot_end "
                          "go together");
    if (!cfg->sm.group_begin != !cfg->sm.group_end)
        return uc_err_set(err, UC_EINVAL, "replication: group_begin and group_end go together");
    if (cfg->max_cmd > UC_REPL_MAX_CMD)
        return uc_err_set(err, UC_EINVAL, "replication: max_cmd above %u bytes", UC_REPL_MAX_CMD);
    unsigned election = cfg->election_timeout_ms ? cfg->election_timeout_ms : 1000;
    unsigned heartbeat = cfg->heartbeat_ms ? cfg->heartbeat_ms : 100;
    if (heartbeat >= election)
        return uc_err_set(err, UC_EINVAL,
                          "replication: heartbeat (%u ms) must be shorter than "
                          "the election timeout (%u ms)",
                          heartbeat, election);
    return check_bootstrap(cfg, err);
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *path, char *err)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof(buf))
        return uc_err_set(err, UC_EINVAL, "data directory path too long");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return uc_err_set(err, UC_EIO, "create %s: %s", buf, strerror(errno));
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return uc_err_set(err, UC_EIO, "%s is not a directory", path);
    return 0;
}

int repl_open_dir(const char *dir, int *lock_fd, char *err)
{
    int rv = make_dirs(dir, err);
    if (rv)
        return rv;
    char *path = uc_asprintf("%s/%s", dir, REPL_LOCK_FILE);
    if (!path)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rv = uc_err_set(err, UC_EIO, "open %s: %s", path, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rv = errno == EWOULDBLOCK ? uc_err_set(err, UC_EBUSY, "%s is in use by another member", dir)
                                  : uc_err_set(err, UC_EIO, "lock %s: %s", path, strerror(errno));
        (void)close(fd); /* nothing to report: the lock was never ours */
    } else {
        *lock_fd = fd;
    }
    uc_free(path);
    return rv;
}
