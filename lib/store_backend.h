/* store_backend.h - internal: the vtable a storage backend fills in, so
 * store.c can dispatch a "<scheme>:<rest>" URL to it. store.c validates every
 * argument (keys, limits, op lists) before a backend sees it, so backends may
 * rely on the documented ranges. Each backend makes its handle thread-safe. */
#ifndef UC_STORE_BACKEND_H
#define UC_STORE_BACKEND_H
#include "uc/store.h"

/* `b` below is the backend's own handle, made by open and freed by close.
 * Each function has the contract of the uc_store_* call of the same name. */
struct uc_store_backend {
    const char *scheme; /* the URL up to the first ':', e.g. "sqlite" */
    /* `rest` is the URL after "<scheme>:", non-empty, borrowed for the call.
     * A backend that takes options sets open_opts (`opts` may be NULL and
     * is read during the call only) and leaves open NULL; store.c calls
     * whichever is set. */
    int (*open)(void **b, const char *rest, char *err);
    int (*open_opts)(void **b, const char *rest, const struct uc_store_opts *opts, char *err);
    void (*close)(void *b);
    int (*get)(void *b, const char *key, struct uc_store_item *out, char *err);
    int (*put)(void *b, const char *key, const void *val, size_t len, uint64_t expect_rev,
               uint64_t *new_rev, char *err);
    int (*del)(void *b, const char *key, uint64_t expect_rev, char *err);
    int (*scan)(void *b, const char *prefix, const char *after, size_t limit,
                struct uc_store_item **items, size_t *n, bool *more, char *err);
    int (*txn)(void *b, const struct uc_store_op *ops, size_t nops, uint64_t *rev, char *err);
    int (*ping)(void *b, char *err);
};

/* One per backend; store.c lists them in its scheme table. */
extern const struct uc_store_backend uc_store_sqlite_backend;
extern const struct uc_store_backend uc_store_flaredb_backend;

#endif /* UC_STORE_BACKEND_H */
