/* server_reads.c - reads that must reflect everything committed before
 * they arrived: a read barrier on raft's loop thread, then the query on one
 * of a few read threads fed by a FIFO. The loop thread only queues, so a
 * query running up to its time limit never holds up heartbeats or apply. */
#include "server.h"
#include "uc/alloc.h"
#include "uc/log.h"

struct flaredb_read {
    struct flaredb_server *s;
    struct uc_http_req *req;
    flaredb_read_fn fn;
    void *arg; /* owned: release frees it */
    void (*release)(void *arg);
    uint64_t index;
    struct flaredb_read *next;
};

static void run(struct flaredb_read *r)
{
    r->fn(r->s, r->req, r->arg, r->index);
    r->release(r->arg);
    uc_free(r);
}

static void *read_main(void *arg)
{
    struct flaredb_server *s = arg;
    pthread_mutex_lock(&s->read_mu);
    for (;;) {
        while (!s->head && !s->read_stop)
            pthread_cond_wait(&s->read_cv, &s->read_mu);
        struct flaredb_read *r = s->head;
        if (!r)
            break; /* stopping, and nothing left to answer */
        s->head = r->next;
        if (!s->head)
            s->tail = NULL;
        pthread_mutex_unlock(&s->read_mu);
        run(r);
        pthread_mutex_lock(&s->read_mu);
    }
    pthread_mutex_unlock(&s->read_mu);
    return NULL;
}

/* On the loop thread: queue the read, or answer a failed barrier. */
static void barrier_passed(void *ctx, const struct uc_repl_done *d)
{
    struct flaredb_read *r = ctx;
    struct flaredb_server *s = r->s;
    bool queued = false;
    if (d->status == 0) {
        r->index = d->index;
        pthread_mutex_lock(&s->read_mu);
        if (!s->read_stop) {
            *(s->tail ? &s->tail->next : &s->head) = r;
            s->tail = r;
            queued = true;
            pthread_cond_signal(&s->read_cv);
        }
        pthread_mutex_unlock(&s->read_mu);
    }
    if (queued)
        return;
    if (d->status < 0)
        uc_replsvc_reply_error(s->rs, r->req, d);
    else
        uc_http_error(r->req, UC_EUNAVAIL, "this member is shutting down; retry on another");
    r->release(r->arg);
    uc_free(r);
}

void flaredb_server_release_json(void *arg) { json_decref(arg); }

int flaredb_server_read(struct flaredb_server *s, struct uc_http_req *req, flaredb_read_fn fn,
                        void *arg, void (*release)(void *arg), bool linearizable)
{
    if (!arg)
        return uc_err_set(req->err, UC_ENOMEM, "out of memory");
    if (!linearizable) {
        fn(s, req, arg, flaredb_db_applied(s->db));
        release(arg);
        return 0;
    }
    struct flaredb_read *r = uc_malloc(sizeof(*r));
    if (!r) {
        release(arg);
        return uc_err_set(req->err, UC_ENOMEM, "out of memory");
    }
    *r = (struct flaredb_read){.s = s, .req = req, .fn = fn, .arg = arg, .release = release};
    int rc = uc_replsvc_read_barrier(s->rs, barrier_passed, r, req->err);
    if (rc < 0) {
        release(arg);
        uc_free(r);
        return rc;
    }
    return UC_HTTP_ASYNC;
}

int flaredb_server_start_reads(struct flaredb_server *s, char err[UC_ERR_LEN])
{
    for (; s->nstarted < s->nthreads; s->nstarted++)
        if (pthread_create(&s->threads[s->nstarted], NULL, read_main, s) != 0)
            return uc_err_set(err, UC_EIO, "cannot start read thread %u", s->nstarted + 1);
    return 0;
}

void flaredb_server_stop_reads(struct flaredb_server *s)
{
    if (!s->threads)
        return;
    pthread_mutex_lock(&s->read_mu);
    s->read_stop = true;
    pthread_cond_broadcast(&s->read_cv);
    pthread_mutex_unlock(&s->read_mu);
    for (unsigned i = 0; i < s->nstarted; i++)
        if (pthread_join(s->threads[i], NULL) != 0)
            uc_error("cannot join read thread %u", i + 1);
    s->nstarted = 0;
}
