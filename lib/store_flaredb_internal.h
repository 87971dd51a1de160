/* store_flaredb_internal.h - internal: the connection half of the flaredb
 * storage backend (store_flaredb_conn.c), which store_flaredb.c's
 * operations call. The one idea: a call is a sequence of requests sharing
 * one deadline, and every request remembers whether an earlier attempt of
 * it may have reached the cluster (`unknown`), which is what decides
 * whether a write may be re-sent and how its answer is to be read.
 * Thread-safe: the handle is immutable after open except the preferred
 * member (atomic) and the token cache (mutex). */
#ifndef UC_STORE_FLAREDB_INTERNAL_H
#define UC_STORE_FLAREDB_INTERNAL_H
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "uc/store.h"

#define FDB_NS_MAX 64 /* namespace characters */

struct fdb {
    char **members; /* "http://host:port", no trailing '/' */
    size_t nmembers;
    char ns[FDB_NS_MAX + 1];
    int timeout_ms;
    atomic_size_t preferred; /* the member that answered last */
    uc_store_token_fn token_fn;
    void *token_ctx;
    char *token_file; /* NULL when token_fn is used */
    pthread_mutex_t token_mu;
    char *token; /* the token file's content, trimmed */
    /* what the file looked like when token was read: re-read on change */
    dev_t tdev;
    ino_t tino;
    off_t tsize;
    int64_t tmtime_ns;
    bool curl_ready; /* uc_httpc_global_init succeeded: clean up at destroy */
};

/* Parse `rest` (the URL after "flaredb:") and read the token file. On
 * success *out is a new handle freed with fdb_destroy; on failure it is
 * untouched. Errors: as uc_store_open_opts for flaredb. */
int fdb_create(struct fdb **out, const char *rest, const struct uc_store_opts *opts, char *err);
void fdb_destroy(struct fdb *f);

/* How a request may be repeated on another member. */
enum fdb_kind {
    FDB_READ,       /* never changes anything: repeat freely */
    FDB_WRITE,      /* fenced write: repeat even after a lost answer */
    FDB_WRITE_ONCE, /* unfenced write: stop at the first lost answer */
};

/* One call's shared state: its deadline, and whether any write request
 * in it may have been applied without our seeing the answer. */
struct fdb_call {
    int64_t deadline; /* uc_clock_mono_ms scale */
    bool unknown;
};

/* Start a call: deadline = now + the URL's timeout. */
void fdb_call_start(const struct fdb *f, struct fdb_call *c);

/* A definitive answer: its status and parsed JSON body (owned; may be
 * NULL when the body is not JSON). */
struct fdb_answer {
    long status;
    json_t *json;
};
void fdb_answer_clear(struct fdb_answer *a);

/* Send `method` to "<member>/api/v1/kv/<ns><path>" with `body` (borrowed,
 * may be NULL), trying members in turn until one gives a definitive answer
 * (any status but 502/503/504) or the deadline passes; *a gets it. A lost
 * answer to a write sets c->unknown. Errors: UC_EUNAVAIL (no definitive
 * answer before the deadline and nothing may have been applied),
 * UC_ETIMEDOUT (the same, but a write may have been applied; at once for
 * FDB_WRITE_ONCE), UC_ENOMEM, UC_EINVAL, UC_E2BIG (an answer over 64 MiB)
 * and the token's errors. */
int fdb_request(struct fdb *f, struct fdb_call *c, enum fdb_kind kind, const char *method,
                const char *path, const json_t *body, struct fdb_answer *a, char *err);

/* The UC_E* code of a non-2xx answer, with its message in err prefixed by
 * `what`: 400 UC_EINVAL, 401 UC_EUNAUTH, 403 UC_EFORBIDDEN, 404 UC_ENOENT,
 * 409 UC_ECONFLICT, 413 UC_E2BIG, 429 UC_ERATE, 500 UC_EIO, else UC_EPROTO. */
int fdb_answer_error(const struct fdb_answer *a, const char *what, char *err);

#endif /* UC_STORE_FLAREDB_INTERNAL_H */
