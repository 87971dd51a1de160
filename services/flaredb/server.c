/* server.c - a flaredb member's lifetime: the database and the locks
 * around it, the state machine handed to the replicated-service module,
 * and proposals. Reads live in server_reads.c, restrictions in
 * server_acl.c. */
#include <string.h>

#include "server.h"
#include "uc/alloc.h"
#include "uc/log.h"

static int cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

int flaredb_server_init(struct flaredb_server *s, const struct flaredb_db_config *dbcfg,
                        unsigned read_threads, char err[UC_ERR_LEN])
{
    *s = (struct flaredb_server){.nthreads = read_threads ? read_threads : 1,
                                 .max_steps = FLAREDB_DB_DEFAULT_STEPS};
    s->threads = uc_calloc(s->nthreads, sizeof(*s->threads));
    if (!s->threads)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    int rc = flaredb_db_open(&s->db, dbcfg, err);
    if (rc < 0)
        goto free_threads;
    rc = UC_EIO;
    if (pthread_mutex_init(&s->read_mu, NULL) != 0)
        goto close_db;
    if (cond_init(&s->read_cv) != 0)
        goto destroy_read_mu;
    if (pthread_mutex_init(&s->acl_mu, NULL) != 0)
        goto destroy_read_cv;
    return 0;
destroy_read_cv:
    pthread_cond_destroy(&s->read_cv);
destroy_read_mu:
    pthread_mutex_destroy(&s->read_mu);
close_db:
    uc_err_set(err, rc, "cannot create a lock");
    flaredb_db_close(s->db);
free_threads:
    uc_free(s->threads);
    *s = (struct flaredb_server){0};
    return rc;
}

void flaredb_server_deinit(struct flaredb_server *s)
{
    flaredb_server_stop_reads(s);
    json_decref(s->acl);
    pthread_mutex_destroy(&s->acl_mu);
    pthread_cond_destroy(&s->read_cv);
    pthread_mutex_destroy(&s->read_mu);
    flaredb_db_close(s->db);
    uc_free(s->threads);
    *s = (struct flaredb_server){0};
}

struct uc_repl_sm flaredb_server_sm(struct flaredb_server *s) { return flaredb_db_sm(s->db); }

int flaredb_server_propose(struct flaredb_server *s, const char *cmd, size_t len, uc_repl_cb cb,
                           void *cb_ctx, char err[UC_ERR_LEN])
{
    return uc_replsvc_propose(s->rs, cmd, len, cb, cb_ctx, err);
}
