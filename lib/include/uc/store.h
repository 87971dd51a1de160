/* uc/store.h - the storage interface services code against: an ordered map
 * from string keys to byte values, each with a revision taken from one
 * store-wide counter that grows with every write. Backends: "sqlite:<path>"
 * (embedded, WAL, synchronous=FULL: a write returns only once durable) and,
 * later, "flaredb:<url>".
 * Thread-safety: a store handle may be used from many threads at once (the
 * sqlite backend serialises calls on one connection behind a mutex); only
 * uc_store_close must not race with other calls on the same handle.
 * Keys are NUL-terminated strings of 1..UC_STORE_MAX_KEY bytes, compared and
 * ordered as bytes (callers use UTF-8). Values are any bytes, NULs included.
 * Revisions start at 1; every write (a put, a delete, a transaction with at
 * least one PUT or DELETE) takes the next one. A failed call writes nothing
 * and consumes no revision. No caller pointer is kept after a call returns. */
#ifndef UC_STORE_H
#define UC_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uc/err.h"

#define UC_STORE_MAX_KEY 1024     /* bytes, without the NUL */
#define UC_STORE_MAX_SCAN 10000   /* largest `limit` uc_store_scan accepts */
#define UC_STORE_MAX_TXN_OPS 1024 /* largest `nops` uc_store_txn accepts */
/* expect_rev values for writes and checks: */
#define UC_STORE_ANY UINT64_MAX /* no check */
#define UC_STORE_ABSENT 0       /* the key must not exist */

struct uc_store; /* opaque */

/* One key and its value; free the contents with uc_store_item_clear. */
struct uc_store_item {
    char *key;    /* owned, NUL-terminated */
    uint8_t *val; /* owned, never NULL; NUL-terminated for convenience, len excludes it */
    size_t len;
    uint64_t rev; /* revision of the write that last set this key */
};

/* Open (creating if missing) the store named by url, e.g. "sqlite:/var/lib/x.db"
 * or "sqlite:x.db" (relative to the working directory). The path is taken
 * literally; its directory must exist. On success *out owns the handle (free
 * with uc_store_close); on failure *out is left unchanged. `url` is copied.
 * Errors: UC_EINVAL (NULL url, unknown scheme, empty path), UC_EIO (missing
 * directory, cannot open or create, not a database, WAL unavailable),
 * UC_EUNAVAIL (file locked by another process past the busy timeout),
 * UC_ENOMEM. */
UC_MUSTCHECK int uc_store_open(struct uc_store **out, const char *url, char err[UC_ERR_LEN]);

/* Close and free the handle; NULL is a no-op. No call on `st` may be running
 * or follow. Items already returned stay valid (the caller owns them). */
void uc_store_close(struct uc_store *st);

/* Fetch `key` into *out (filled only on success; the caller clears it with
 * uc_store_item_clear). Errors: UC_EINVAL (bad key), UC_ENOENT, UC_EIO,
 * UC_EUNAVAIL, UC_ENOMEM. */
UC_MUSTCHECK int uc_store_get(struct uc_store *st, const char *key, struct uc_store_item *out,
                              char err[UC_ERR_LEN]);

/* Write `key` = `len` bytes at `val` (copied; NULL allowed when len is 0) if
 * its current revision is expect_rev (UC_STORE_ANY: always; UC_STORE_ABSENT:
 * only if missing). *new_rev (may be NULL) gets the write's revision, and is
 * untouched on failure. Errors: UC_ECONFLICT (revision check failed; nothing
 * written; err names the key), UC_EINVAL (empty, oversized or NULL key; NULL
 * val with len > 0), UC_E2BIG (value too large for the backend), UC_EIO,
 * UC_EUNAVAIL, UC_ENOMEM. */
UC_MUSTCHECK int uc_store_put(struct uc_store *st, const char *key, const void *val, size_t len,
                              uint64_t expect_rev, uint64_t *new_rev, char err[UC_ERR_LEN]);

/* Delete `key` if its revision is expect_rev (UC_STORE_ANY: any). A missing
 * key is UC_ENOENT whatever expect_rev says. Errors: UC_EINVAL (bad key),
 * UC_ENOENT, UC_ECONFLICT (err names the key), UC_EIO, UC_EUNAVAIL,
 * UC_ENOMEM. */
UC_MUSTCHECK int uc_store_delete(struct uc_store *st, const char *key, uint64_t expect_rev,
                                 char err[UC_ERR_LEN]);

/* Keys starting with `prefix` (NULL or "" for all), in byte order, strictly
 * after `after` (NULL or "" to start), at most `limit` (1..UC_STORE_MAX_SCAN)
 * of them, read from one consistent snapshot. On success *items is a new
 * array of *n items (NULL when *n is 0; free with uc_store_items_free) and
 * *more says whether further matching keys exist (pass the last key as
 * `after` to continue). On failure the outputs are untouched.
 * Errors: UC_EINVAL (limit out of range, prefix or after longer than
 * UC_STORE_MAX_KEY), UC_EIO, UC_EUNAVAIL, UC_ENOMEM. */
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

/* Apply `ops` (1..UC_STORE_MAX_TXN_OPS of them; all borrowed for the call)
 * atomically. Every check (CHECK ops and the expect_rev of PUT and DELETE
 * ops) is evaluated against the store as it was before the transaction;
 * then the writes apply in order, so a later write to the same key wins. A
 * DELETE of a missing key whose check holds (UC_STORE_ANY or
 * UC_STORE_ABSENT) is not an error. *rev (may be NULL; untouched on failure)
 * gets the revision all the writes share, or the store's current revision
 * when `ops` holds only CHECKs (which consume no revision).
 * Errors: UC_ECONFLICT (a check failed; err names the first such key),
 * UC_EINVAL (nops out of range, bad key or op type, NULL val with len > 0),
 * UC_E2BIG, UC_EIO, UC_EUNAVAIL, UC_ENOMEM. */
UC_MUSTCHECK int uc_store_txn(struct uc_store *st, const struct uc_store_op *ops, size_t nops,
                              uint64_t *rev, char err[UC_ERR_LEN]);

/* 0 when the store can serve (for /readyz): runs a trivial read.
 * Errors: UC_EIO, UC_EUNAVAIL, UC_ENOMEM. */
UC_MUSTCHECK int uc_store_ping(struct uc_store *st, char err[UC_ERR_LEN]);

/* Free what `it` owns and zero it; `it` itself is the caller's. A zeroed
 * item is fine, NULL is a no-op. */
void uc_store_item_clear(struct uc_store_item *it);
/* Clear `n` items and free the array; NULL is a no-op. */
void uc_store_items_free(struct uc_store_item *items, size_t n);

#endif /* UC_STORE_H */
