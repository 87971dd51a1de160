/* replsvc.c - a replicated service's member: start-up (options, backup file,
 * token verifier, raft member on the wrapped state machine), the thread that
 * while this member leads publishes its API URL and proposes a pending
 * restore, and the tagged propose/read calls the service uses. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "replsvc_internal.h"
#include "uc/alloc.h"
#include "uc/clock.h"
#include "uc/httpc.h"
#include "uc/log.h"

#define TICK_MS 50 /* how often the publisher looks at the member's role */

/* ---- the publisher thread ------------------------------------------------------ */

static void url_done(void *ctx, const struct uc_repl_done *d)
{
    struct uc_replsvc *rs = ctx;
    if (d->status < 0)
        uc_debug("publishing this member's URL failed: %s", d->msg);
    atomic_store(&rs->url_busy, false);
}

/* Propose this member's URL unless the table has it already. */
static void publish_url(struct uc_replsvc *rs)
{
    char cur[UC_REPLSVC_URL_LEN], err[UC_ERR_LEN];
    uint8_t *cmd = NULL;
    size_t len = 0;
    if (atomic_load(&rs->url_busy) ||
        (replsvc_sm_url(&rs->sm, rs->id, cur) && !strcmp(cur, rs->url)))
        return;
    if (replsvc_cmd_url(rs->id, rs->url, &cmd, &len) < 0)
        return; /* out of memory: the next tick tries again */
    atomic_store(&rs->url_busy, true);
    if (uc_repl_propose(rs->repl, cmd, len, uc_replsvc_deadline(rs), url_done, rs, err) < 0) {
        atomic_store(&rs->url_busy, false);
        uc_debug("cannot publish this member's URL: %s", err);
    }
    uc_free(cmd);
}

/* Caller holds restore_mu: the backup is settled, one way or the other. */
static void restore_settle(struct uc_replsvc *rs, enum replsvc_restore state, const char *msg)
{
    rs->restore = state;
    snprintf(rs->restore_msg, sizeof(rs->restore_msg), "%s", msg);
    uc_free(rs->backup);
    rs->backup = NULL;
    if (state == RESTORE_DONE)
        uc_info("restore: %s", msg);
    else
        uc_error("restore: %s", msg);
}

static void restore_done(void *ctx, const struct uc_repl_done *d)
{
    struct uc_replsvc *rs = ctx;
    struct replsvc_state st;
    char msg[UC_ERR_LEN];
    replsvc_sm_state(&rs->sm, &st);
    pthread_mutex_lock(&rs->restore_mu);
    if (d->status < 0) {
        rs->restore = RESTORE_PENDING; /* retried while this member leads */
        snprintf(rs->restore_msg, sizeof(rs->restore_msg),
                 "proposing the backup failed (%s); retrying while this member leads", d->msg);
        uc_warn("restore: %s", rs->restore_msg);
    } else if (st.restored_index == d->index) {
        snprintf(msg, sizeof(msg),
                 "the backup (index %llu of the old cluster) was loaded at "
                 "index %llu",
                 (unsigned long long)rs->backup_info.index, (unsigned long long)d->index);
        restore_settle(rs, RESTORE_DONE, msg);
    } else {
        restore_settle(rs, RESTORE_REFUSED,
                       "the cluster refused the backup: it held data already, or the service "
                       "could not load it (see the log of every member)");
    }
    pthread_mutex_unlock(&rs->restore_mu);
}

/* Caller holds restore_mu; the backup is still pending. */
static void restore_propose(struct uc_replsvc *rs)
{
    char err[UC_ERR_LEN];
    uint8_t *cmd = NULL;
    size_t len = 0;
    int rc = replsvc_cmd_restore(rs->backup_info.sha256, rs->backup + UC_REPLSVC_BACKUP_HDR,
                                 (size_t)rs->backup_info.len, &cmd, &len);
    if (rc == 0)
        rc = uc_repl_propose(rs->repl, cmd, len, uc_replsvc_deadline(rs), restore_done, rs, err);
    else
        snprintf(err, sizeof(err), "%s", uc_strerror(rc));
    uc_free(cmd);
    if (rc == 0)
        rs->restore = RESTORE_PROPOSED;
    else
        uc_warn("restore: cannot propose the backup yet: %s", err);
}

/* Settle a pending --restore-from from what the log says (done, or refused
 * because the store holds data: both only ever become true), else propose
 * it while this member leads. */
static void restore_tick(struct uc_replsvc *rs, bool leader)
{
    struct replsvc_state st;
    char msg[UC_ERR_LEN];
    pthread_mutex_lock(&rs->restore_mu);
    if (rs->restore != RESTORE_PENDING) {
        pthread_mutex_unlock(&rs->restore_mu);
        return;
    }
    replsvc_sm_state(&rs->sm, &st);
    if (st.restored_index &&
        uc_crypto_memeq(st.restored_sha, rs->backup_info.sha256, UC_SHA256_LEN)) {
        snprintf(msg, sizeof(msg), "this backup was loaded at index %llu already",
                 (unsigned long long)st.restored_index);
        restore_settle(rs, RESTORE_DONE, msg);
    } else if (st.svc_data) {
        restore_settle(rs, RESTORE_REFUSED,
                       "--restore-from ignored: the cluster holds data already (a restore needs a "
                       "new cluster with empty data dirs)");
    } else if (leader) {
        restore_propose(rs);
    }
    pthread_mutex_unlock(&rs->restore_mu);
}

static void *publisher_main(void *arg)
{
    struct uc_replsvc *rs = arg;
    struct uc_repl_status st;
    const struct timespec tick = {0, TICK_MS * 1000000L};
    while (!atomic_load(&rs->stopping)) {
        uc_repl_status(rs->repl, &st);
        if (st.role == UC_REPL_LEADER)
            publish_url(rs);
        restore_tick(rs, st.role == UC_REPL_LEADER);
        (void)nanosleep(&tick, NULL); /* an early wake-up only shortens one tick */
    }
    return NULL;
}

json_t *replsvc_restore_json(struct uc_replsvc *rs)
{
    static const char *const names[] = {"none", "pending", "proposed", "done", "refused"};
    struct replsvc_state st;
    replsvc_sm_state(&rs->sm, &st);
    pthread_mutex_lock(&rs->restore_mu);
    enum replsvc_restore r = rs->restore;
    if (r == RESTORE_NONE && st.restored_index)
        r = RESTORE_DONE;
    json_t *out =
        json_pack("{sbsssIss}", "from_file", rs->restore != RESTORE_NONE, "state", names[r],
                  "index", (json_int_t)st.restored_index, "message", rs->restore_msg);
    pthread_mutex_unlock(&rs->restore_mu);
    return out;
}

/* ---- create ----------------------------------------------------------------------- */

/* The service name (1-31 of [a-z0-9-]) and the leader header built from it. */
static int set_service(struct uc_replsvc *rs, const char *name, char *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= sizeof(rs->service) ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != n)
        return uc_err_set(err, UC_EINVAL, "replsvc: the service name must be 1-31 of [a-z0-9-]");
    memcpy(rs->service, name, n + 1);
    char *h = rs->leader_hdr;
    h += sprintf(h, "X-");
    for (size_t i = 0; i < n; i++) {
        bool first = i == 0 || name[i - 1] == '-';
        *h++ = first && name[i] >= 'a' && name[i] <= 'z' ? (char)(name[i] - 32) : name[i];
    }
    strcpy(h, "-Leader");
    return 0;
}

/* The voters to bootstrap with on an empty data dir (none with --bootstrap=false). */
static int bootstrap_list(const struct uc_replsvc_opts *o, struct uc_repl_member *m, size_t *n,
                          char *err)
{
    *n = 0;
    if (!o->bootstrap)
        return 0;
    if (!o->initial_cluster || !o->initial_cluster[0]) {
        m[0] = (struct uc_repl_member){.id = (uint64_t)o->node_id, .role = UC_REPL_VOTER};
        snprintf(m[0].addr, sizeof(m[0].addr), "%s", o->raft_address ? o->raft_address : "");
        *n = 1;
        return 0;
    }
    int rc = uc_replsvc_parse_cluster(o->initial_cluster, m, UC_REPL_MAX_MEMBERS, n, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < *n; i++)
        if (m[i].id == (uint64_t)o->node_id)
            return 0;
    return uc_err_set(err, UC_EINVAL,
                      "--initial-cluster does not list this member (--node-id %lld)",
                      (long long)o->node_id);
}

/* Read and check the --restore-from file; the member keeps it until settled. */
static int load_backup(struct uc_replsvc *rs, const char *path, char *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc =
        uc_config_read_file(path, UC_REPLSVC_MAX_BACKUP + UC_REPLSVC_BACKUP_HDR, &buf, &len, err);
    if (rc == 0)
        rc = uc_replsvc_backup_verify(buf, len, rs->service, &rs->backup_info, err);
    if (rc < 0) {
        uc_free(buf);
        return uc_err_prefix(err, UC_EINVAL, "--restore-from %s", path);
    }
    rs->backup = (uint8_t *)buf;
    rs->backup_len = len;
    rs->restore = RESTORE_PENDING;
    snprintf(rs->restore_msg, sizeof(rs->restore_msg),
             "waiting to lead a new cluster to load the backup");
    uc_info("restore: %s holds a backup of %llu bytes taken at index %llu; it is loaded once this "
            "member leads an empty cluster",
            path, (unsigned long long)rs->backup_info.len,
            (unsigned long long)rs->backup_info.index);
    return 0;
}

/* Copy what the module keeps of the options. */
static int take_opts(struct uc_replsvc *rs, const struct uc_replsvc_config *cfg, char *err)
{
    const struct uc_replsvc_opts *o = cfg->opts;
    if (!o || !cfg->sm.apply || !cfg->sm.snapshot || !cfg->sm.restore)
        return uc_err_set(err, UC_EINVAL, "replsvc: need options and a state machine");
    int rc = set_service(rs, cfg->service, err);
    if (rc == 0)
        rc = uc_replsvc_advertise_url(o, rs->url, err);
    if (rc < 0)
        return rc;
    rs->id = (uint64_t)o->node_id;
    snprintf(rs->listen, sizeof(rs->listen), "%s", o->listen ? o->listen : "127.0.0.1");
    rs->port = (uint16_t)o->port;
    rs->threads = (unsigned)o->threads;
    rs->access_log = o->access_log;
    rs->timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : 5000;
    rs->max_cmd = cfg->max_cmd ? cfg->max_cmd : UC_REPL_DEFAULT_CMD;
    rs->segment_bytes = cfg->segment_bytes;
    if (rs->max_cmd >= UC_REPL_MAX_CMD)
        rs->max_cmd = UC_REPL_MAX_CMD - 1;
    rs->forward_query = cfg->forward_query;
    rs->status_hook = cfg->status;
    rs->metrics_hook = cfg->metrics;
    return 0;
}

static int start_repl(struct uc_replsvc *rs, const struct uc_replsvc_opts *o, char *err)
{
    struct uc_repl_member boot[UC_REPL_MAX_MEMBERS];
    size_t nboot = 0;
    int rc = bootstrap_list(o, boot, &nboot, err);
    if (rc < 0)
        return rc;
    /* Room for a tagged service command, and on the restoring member for
     * the restore record (only the proposer checks the size). */
    size_t max = rs->max_cmd + 1;
    if (rs->backup && rs->backup_info.len + UC_REPLSVC_RESTORE_HDR > max)
        max = (size_t)rs->backup_info.len + UC_REPLSVC_RESTORE_HDR;
    struct uc_repl_config rc_cfg = {
        .id = rs->id,
        .address = o->raft_address,
        .bind_address = o->raft_bind,
        .data_dir = o->data_dir,
        .sm = replsvc_sm_wrap(&rs->sm),
        .bootstrap = nboot ? boot : NULL,
        .n_bootstrap = nboot,
        .election_timeout_ms = (unsigned)o->election_timeout_ms,
        .heartbeat_ms = (unsigned)o->heartbeat_ms,
        .snapshot_threshold = (unsigned)o->snapshot_threshold,
        .segment_bytes = rs->segment_bytes,
        .max_cmd = max,
    };
    if ((rc = uc_repl_create(&rs->repl, &rc_cfg, err)) < 0)
        return uc_err_prefix(err, rc, "raft");
    return 0;
}

static int start_verifier(struct uc_replsvc *rs, const struct uc_replsvc_opts *o, char *err)
{
    struct uc_auth_verifier_opts vo = {.jwks_url = o->iam_jwks_url, .leeway_s = 30};
    int rc = uc_auth_verifier_create(&rs->verifier, &vo, err);
    return rc < 0 ? uc_err_prefix(err, rc, "--iam-jwks-url") : 0;
}

int uc_replsvc_create(struct uc_replsvc **out, const struct uc_replsvc_config *cfg,
                      char err[UC_ERR_LEN])
{
    struct uc_replsvc *rs = uc_calloc(1, sizeof(*rs));
    if (!rs)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    atomic_init(&rs->stopping, false);
    atomic_init(&rs->url_busy, false);
    atomic_init(&rs->forwarded, 0);
    int rc = take_opts(rs, cfg, err);
    if (rc == 0 && pthread_mutex_init(&rs->restore_mu, NULL) != 0)
        rc = uc_err_set(err, UC_ENOMEM, "replsvc: cannot create a mutex");
    rs->restore_mu_ready = rc == 0;
    if (rc == 0 && replsvc_sm_init(&rs->sm, &cfg->sm) < 0)
        rc = uc_err_set(err, UC_ENOMEM, "replsvc: cannot create a mutex");
    rs->sm_ready = rc == 0;
    /* libcurl counts its inits, so each member (and a store) may take one */
    if (rc == 0 && uc_httpc_global_init() < 0)
        rc = uc_err_set(err, UC_EIO, "replsvc: cannot set up the HTTP client");
    rs->httpc_ready = rc == 0;
    if (rc == 0 && cfg->opts->restore_from && cfg->opts->restore_from[0])
        rc = load_backup(rs, cfg->opts->restore_from, err);
    if (rc == 0)
        rc = start_verifier(rs, cfg->opts, err);
    if (rc == 0)
        rc = start_repl(rs, cfg->opts, err);
    if (rc == 0 && pthread_create(&rs->thread, NULL, publisher_main, rs) != 0)
        rc = uc_err_set(err, UC_EIO, "replsvc: cannot start the publisher thread");
    if (rc < 0) {
        uc_replsvc_destroy(rs);
        return rc;
    }
    rs->thread_running = true;
    uc_info("member %llu, API at %s", (unsigned long long)rs->id, rs->url);
    *out = rs;
    return 0;
}

/* ---- stop ------------------------------------------------------------------------- */

void uc_replsvc_stop(struct uc_replsvc *rs)
{
    if (!rs)
        return;
    atomic_store(&rs->stopping, true);
    if (rs->thread_running && pthread_join(rs->thread, NULL) != 0)
        uc_error("replsvc: cannot join the publisher thread");
    rs->thread_running = false;
    uc_repl_stop(rs->repl);
}

void uc_replsvc_destroy(struct uc_replsvc *rs)
{
    if (!rs)
        return;
    uc_replsvc_stop(rs);
    uc_repl_destroy(rs->repl);
    uc_auth_verifier_destroy(rs->verifier);
    if (rs->httpc_ready)
        uc_httpc_global_cleanup();
    if (rs->sm_ready)
        replsvc_sm_deinit(&rs->sm);
    if (rs->restore_mu_ready)
        pthread_mutex_destroy(&rs->restore_mu);
    uc_free(rs->backup);
    uc_free(rs);
}

/* ---- calls the service makes -------------------------------------------------------- */

struct uc_repl *uc_replsvc_repl(struct uc_replsvc *rs) { return rs->repl; }

int64_t uc_replsvc_deadline(const struct uc_replsvc *rs)
{
    return uc_clock_mono_ms(NULL) + rs->timeout_ms;
}

int uc_replsvc_propose(struct uc_replsvc *rs, const void *cmd, size_t len, uc_repl_cb cb,
                       void *cb_ctx, char err[UC_ERR_LEN])
{
    uint8_t *buf = NULL;
    size_t blen = 0;
    if (len > rs->max_cmd)
        return uc_err_set(err, UC_E2BIG, "command of %zu bytes is above the limit of %zu", len,
                          rs->max_cmd);
    if (!cmd && len)
        return uc_err_set(err, UC_EINVAL, "propose: NULL command");
    if (replsvc_cmd_svc(cmd, len, &buf, &blen) < 0)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    int rc = uc_repl_propose(rs->repl, buf, blen, uc_replsvc_deadline(rs), cb, cb_ctx, err);
    uc_free(buf);
    return rc;
}

int uc_replsvc_read_barrier(struct uc_replsvc *rs, uc_repl_cb cb, void *cb_ctx,
                            char err[UC_ERR_LEN])
{
    return uc_repl_read_barrier(rs->repl, uc_replsvc_deadline(rs), cb, cb_ctx, err);
}
