/* uc/store.h - the storage interface services code against: an ordered map
 * from string keys to byte values, each with a revision taken from one
 * store-wide counter that grows with every write. Backends: "sqlite:<path>"
 * (embedded, WAL, synchronous=FULL: a write returns only once durable) and,
 * later, "flaredb:<url>". A store handle is thread-safe. */
#ifndef UC_STORE_H
#define UC_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uc/err.h"

#define UC_STORE_MAX_KEY 1024
/* expect_rev values for writes: */
#define UC_STORE_ANY UINT64_MAX /* no check */
#define UC_STORE_ABSENT 0       /* the key must not exist */

struct uc_store;

/* One key and its value; free the contents with uc_store_item_clear. */
struct uc_store_item {
    char *key;
    uint8_t *val; /* NUL-terminated for convenience; len excludes it */
    size_t len;
    uint64_t rev;
};

/* Open the store named by url ("sqlite:/path/to/file.db").
 * Errors: UC_EINVAL (unknown scheme), UC_EIO (cannot open), UC_ENOMEM. */
UC_MUSTCHECK int uc_store_open(struct uc_store **out, const char *url, char err[UC_ERR_LEN]);
void uc_store_close(struct uc_store *st);

/* Fetch `key` into *out (filled only on success).
 * Errors: UC_ENOENT, UC_EIO, UC_ENOMEM. */
UC_MUSTCHECK int uc_store_get(struct uc_store *st, const char *key, struct uc_store_item *out,
                              char err[UC_ERR_LEN]);

/* Write `key` if its current revision is expect_rev (UC_STORE_ANY: always;
 * UC_STORE_ABSENT: only if missing). *new_rev (may be NULL) gets the write's
 * revision. Errors: UC_ECONFLICT (revision check failed; nothing written),
 * UC_EINVAL (empty or oversized key), UC_EIO, UC_ENOMEM. */
UC_MUSTCHECK int uc_store_put(struct uc_store *st, const char *key, const void *val, size_t len,
                              uint64_t expect_rev, uint64_t *new_rev, char err[UC_ERR_LEN]);

/* Delete `key` if its revision is expect_rev (UC_STORE_ANY: any).
 * Errors: UC_ENOENT, UC_ECONFLICT, UC_EIO. */
UC_MUSTCHECK int uc_store_delete(struct uc_store *st, const char *key, uint64_t expect_rev,
                                 char err[UC_ERR_LEN]);

/* Keys with `prefix`, in byte order, strictly after `after` (NULL or "" to
 * start), at most `limit` (1..10000). *items is a new array of *n items
 * (free with uc_store_items_free); *more says whether keys remain.
 * Errors: UC_EINVAL, UC_EIO, UC_ENOMEM. */
UC_MUSTCHECK int uc_store_scan(struct uc_store *st, const char *prefix, const char *after,
                               size_t limit, struct uc_store_item **items, size_t *n, bool *more,
                               char err[UC_ERR_LEN]);

/* A transaction is a list of operations applied all-or-nothing: every CHECK
 * and every write's expect_rev must hold, or nothing changes. */
enum uc_store_op_type { UC_STORE_OP_PUT, UC_STORE_OP_DELETE, UC_STORE_OP_CHECK };
struct uc_store_op {
    enum uc_store_op_type type;
    const char *key;
    const void *val; /* PUT only */
    size_t len;
    uint64_t expect_rev; /* UC_STORE_ANY, UC_STORE_ABSENT or a revision */
};

/* Apply `ops` atomically. *rev (may be NULL) gets the revision of the
 * writes (all writes in one transaction share it). A DELETE of a missing key
 * with expect_rev UC_STORE_ANY is not an error. Errors: UC_ECONFLICT (a
 * check failed; err names the key), UC_EINVAL, UC_EIO, UC_ENOMEM. */
UC_MUSTCHECK int uc_store_txn(struct uc_store *st, const struct uc_store_op *ops, size_t nops,
                              uint64_t *rev, char err[UC_ERR_LEN]);

/* 0 when the store can serve (for /readyz). Errors: UC_EIO, UC_EUNAVAIL. */
UC_MUSTCHECK int uc_store_ping(struct uc_store *st, char err[UC_ERR_LEN]);

void uc_store_item_clear(struct uc_store_item *it);
void uc_store_items_free(struct uc_store_item *items, size_t n);

#endif /* UC_STORE_H */
