/* uc/store.h - the storage interface services code against: an ordered map
 * from string keys to byte values, each with a revision taken from one
 * store-wide counter that grows with every write. Backends: "sqlite:<path>"
 * (embedded, WAL, synchronous=FULL: a write returns only once durable) and
 * "flaredb:<members>/<namespace>" (one namespace of a flaredb cluster over
 * HTTP; see "The flaredb backend" below).
 * Thread-safety: a store handle may be used from many threads at once (the
 * sqlite backend serialises calls on one connection behind a mutex, the
 * flaredb backend makes one HTTP request per call); only uc_store_close
 * must not race with other calls on the same handle.
 * Keys are NUL-terminated strings of 1..UC_STORE_MAX_KEY bytes, compared and
 * ordered as bytes (callers use UTF-8). Values are any bytes, NULs included.
 * Revisions start at 1; every write (a put, a delete, a transaction with at
 * least one PUT or DELETE) takes the next one. A failed call writes nothing
 * and consumes no revision, with one exception a networked backend cannot
 * avoid: UC_ETIMEDOUT from a write means its outcome is unknown (see below).
 * No caller pointer is kept after a call returns. */
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

/* The flaredb backend. URL form:
 *   flaredb:<member>[,<member>...]/<namespace>[?<param>=<value>[&...]]
 * e.g. "flaredb:http://10.0.0.1:7300,http://10.0.0.2:7300/iam?token_file=/etc/uc/iam.token".
 * A member is "http://host:port" or "https://host:port" (no path; at most
 * UC_STORE_MAX_MEMBERS); the namespace is 1-64 characters of [a-z0-9_.-].
 * Parameters: token_file=<path> (a file holding the bearer token, read
 * again whenever it changes; surrounding white space is ignored) and
 * timeout_ms=<100..600000> (deadline of one call, default 10000). Open
 * checks the URL and reads the token file but does not contact the
 * cluster: the first call does (uc_store_ping for a check).
 *
 * Every call goes to one member (the last that answered first); on a
 * refused connection, a 502/503/504 or a timeout it moves to the next one,
 * backing off once all were tried, until the deadline. Followers forward to
 * the leader; reads are linearizable. Keys travel base64url-encoded, so any
 * string key works. Answers map to the codes above: 404 UC_ENOENT, 409
 * UC_ECONFLICT (err names the key as the caller spelled it), 413 UC_E2BIG,
 * 400 UC_EINVAL, 401 UC_EUNAUTH, 403 UC_EFORBIDDEN, no member answering
 * before the deadline UC_EUNAVAIL, an answer that makes no sense UC_EPROTO.
 * So every call may also fail with UC_EUNAUTH, UC_EFORBIDDEN or UC_EPROTO,
 * and writes with UC_ETIMEDOUT.
 *
 * Writes and lost answers. A write whose answer was lost (the member died
 * or timed out after the request went out) may or may not have been
 * applied, so it is re-sent only when a second application is impossible:
 * when it carries a "fence", a write op on a key that expects a revision
 * (the revision is gone once the write applies) or a PUT that expects the
 * key absent (present once it applies). A put or delete with UC_STORE_ANY,
 * and a transaction without a fence, first read the revision of one key it
 * writes and expect it (so a PUT with UC_STORE_ANY costs a read and a
 * write; a delete of a missing key is UC_ENOENT without writing). If a
 * re-sent write then conflicts, the keys are read back: when every key it
 * puts holds its value at one shared revision it is reported applied, with
 * that revision (an identical write by someone else in that window cannot
 * be told apart); a delete, or a transaction of deletes called with a NULL
 * `rev`, that finds its keys gone is reported applied too. Otherwise the
 * call fails with UC_ETIMEDOUT ("outcome unknown"): the write was applied
 * at most once, maybe not at all, and the caller must read to find out.
 * A fence on an absent key admits one case of double application: someone
 * deletes the key between the lost attempt and the re-sent one. A
 * transaction whose writes are all deletes of missing keys has no fence
 * and is never re-sent after a lost answer. */
#define UC_STORE_MAX_MEMBERS 16
#define UC_STORE_TOKEN_LEN 8193 /* a bearer token with its NUL */

/* Supplies the bearer token of a networked backend: write it, NUL-terminated,
 * into `token` and return 0, or a negative UC_E* code with a message (the
 * call then fails with that code). Called before every request, from any
 * thread, so it must be thread-safe and cheap (cache the token). */
typedef int (*uc_store_token_fn)(void *ctx, char token[UC_STORE_TOKEN_LEN], char err[UC_ERR_LEN]);

/* Options of uc_store_open_opts; NULL means all defaults. */
struct uc_store_opts {
    /* flaredb: where tokens come from when the URL has no token_file (one
     * of the two is required). The sqlite backend ignores it. token_ctx is
     * borrowed for the life of the store. */
    uc_store_token_fn token;
    void *token_ctx;
};

/* uc_store_open with options (`opts` is read during the call only).
 * Errors: as uc_store_open; for flaredb also UC_EINVAL (bad member,
 * namespace or parameter; neither token_file nor opts->token), UC_ENOENT
 * and UC_EIO (token file unreadable), UC_E2BIG (token file over
 * UC_STORE_TOKEN_LEN - 1 bytes). */
UC_MUSTCHECK int uc_store_open_opts(struct uc_store **out, const char *url,
                                    const struct uc_store_opts *opts, char err[UC_ERR_LEN]);

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
