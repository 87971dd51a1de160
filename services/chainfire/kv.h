/* kv.h - chainfire's replicated state machine: an in-memory MVCC key/value
 * store with a global revision, per-key history, leases and compaction.
 * Changes arrive only as encoded commands (JSON, see docs/api/chainfire.md)
 * so every member applies the same bytes to the same result; nothing inside
 * reads a clock or randomness. Not thread-safe: the caller serialises. */
#ifndef CHAINFIRE_KV_H
#define CHAINFIRE_KV_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uc/err.h"

#define CHAINFIRE_KV_DEFAULT_MAX_KEY 1536
#define CHAINFIRE_KV_DEFAULT_MAX_VALUE (1024 * 1024)
#define CHAINFIRE_KV_MAX_TXN_OPS 128 /* compares, and ops per branch */

struct chainfire_kv; /* opaque */

/* Size limits checked on requests (never inside apply, so members with
 * different limits still agree). */
struct chainfire_kv_limits {
    size_t max_key;   /* bytes */
    size_t max_value; /* bytes */
};

struct chainfire_kv_lease {
    int64_t id;
    int64_t ttl_s;
};

/* A new empty store at revision 0. On success *out owns it (free with
 * chainfire_kv_destroy). Errors: UC_ENOMEM. */
UC_MUSTCHECK int chainfire_kv_create(struct chainfire_kv **out);
/* Free the store; NULL is a no-op. */
void chainfire_kv_destroy(struct chainfire_kv *kv);

/* Check a command object (borrowed) before it is proposed: its shape, its
 * base64url keys and values, and their sizes against `lim` (NULL: no size
 * checks). Commands: {"op":"put"|"delete"|"txn"|"lease_grant"|
 * "lease_revoke"|"compact", ...} with the fields of docs/api/chainfire.md.
 * Errors: UC_EINVAL (malformed, with the field named in err), UC_E2BIG (a
 * key or value over its limit), UC_ENOMEM. */
UC_MUSTCHECK int chainfire_kv_check(const json_t *cmd, const struct chainfire_kv_limits *lim,
                                    char err[UC_ERR_LEN]);

/* Apply one committed command (`len` bytes of JSON at `cmd`, borrowed).
 * On success *result is a new JSON object the caller releases: the
 * answer ({"revision":R,...}), or, when the command failed for a domain
 * reason (malformed, unknown lease, compacted revision...), nothing changed
 * and the object is {"error":{"code":<UC_E* int>,"message":"..."}}.
 * Deterministic: equal stores given equal bytes end equal.
 * Errors: UC_ENOMEM (the store may be part-way through a transaction: the
 * member must stop applying and be restarted from its log). */
UC_MUSTCHECK int chainfire_kv_apply(struct chainfire_kv *kv, const void *cmd, size_t len,
                                    json_t **result);

/* Read a range without changing anything. `req` (borrowed) is a range
 * request {"key","range_end"?,"prefix"?,"limit"?,"keys_only"?,
 * "count_only"?,"revision"?}; unknown fields other than "serializable" are
 * refused. On success *out is a new object {"kvs":[...],"count":n,
 * "more":bool,"revision":R} owned by the caller.
 * Errors: UC_EINVAL (malformed; a revision that is compacted, naming the
 * oldest available, or in the future), UC_ENOMEM. */
UC_MUSTCHECK int chainfire_kv_range(const struct chainfire_kv *kv, const json_t *req, json_t **out,
                                    char err[UC_ERR_LEN]);

/* The changes to the keys a watch request `req` (borrowed; key,
 * range_end, prefix as in a range) selects that were written at revision
 * `from` or later, in revision order and, within one revision, key order:
 * *events is a new array of {"type":"put","kv":{...}} and
 * {"type":"delete","kv":{"key","mod_revision"}} owned by the caller, and
 * *upto the current revision (the next call passes upto + 1).
 * Errors: UC_EINVAL (bad key fields, or `from` at or below the compaction
 * point: "revision R is compacted; the oldest available is C+1"),
 * UC_ENOMEM. Outputs untouched on failure. */
UC_MUSTCHECK int chainfire_kv_changes(const struct chainfire_kv *kv, const json_t *req,
                                      int64_t from, json_t **events, int64_t *upto,
                                      char err[UC_ERR_LEN]);

/* The current revision, and the revision the history was compacted at (0
 * when never). */
int64_t chainfire_kv_revision(const struct chainfire_kv *kv);
int64_t chainfire_kv_compacted(const struct chainfire_kv *kv);

/* Compaction frees history in steps: a compact command only moves the
 * compaction point (reads and watches below it are refused at once), then
 * every command applied after it, whatever it does, first visits up to
 * CHAINFIRE_KV_SWEEP_STEP keys and frees their history below that point,
 * so no single apply holds the loop for a time that grows with the store.
 * Members may be at different points of a sweep (one restored from a
 * snapshot has none left): snapshots leave out what the sweep has yet to
 * free, so members that applied the same log still give the same bytes. */
#define CHAINFIRE_KV_SWEEP_STEP 256

/* Visit up to `max` keys of the sweep in progress (SIZE_MAX: finish it).
 * The visit that ends a sweep also removes the keys left with no history,
 * in one pass over the key array that moves only the remaining keys' slots. */
void chainfire_kv_sweep(struct chainfire_kv *kv, size_t max);
/* True while a sweep has keys left to visit. */
bool chainfire_kv_sweeping(const struct chainfire_kv *kv);

/* The TTL of lease `id` and the number of live keys attached to it.
 * Errors: UC_ENOENT (no such lease). Outputs untouched on failure. */
UC_MUSTCHECK int chainfire_kv_lease_get(const struct chainfire_kv *kv, int64_t id, int64_t *ttl_s,
                                        size_t *keys);

/* Every lease, in id order: *out is a new array of *n entries freed with
 * uc_free (NULL when *n is 0). Errors: UC_ENOMEM (outputs untouched). */
UC_MUSTCHECK int chainfire_kv_lease_list(const struct chainfire_kv *kv,
                                         struct chainfire_kv_lease **out, size_t *n);

/* ---- snapshots -------------------------------------------------------
 * A snapshot is the whole state (revision, compaction point, leases, every
 * key's history) in a compact binary form (kv_snapshot.c says how). It is
 * taken in two steps so the expensive one can run without the store's lock:
 * view_take copies the store's index (arrays of a few dozen bytes per
 * revision) and pins the key and value buffers it shares; view_encode then
 * writes the bytes from the view alone, on any thread, while the store goes
 * on changing; view_release unpins. */

struct chainfire_kv_view; /* opaque */

/* Capture the state now. Called where the store is not changing (under the
 * caller's lock). On success *out is a new view (release it with
 * chainfire_kv_view_release before the store is destroyed).
 * Errors: UC_ENOMEM (outputs untouched). */
UC_MUSTCHECK int chainfire_kv_view_take(struct chainfire_kv *kv, struct chainfire_kv_view **out);

/* Encode view `v` into a new buffer of *len bytes freed with uc_free,
 * after `room` bytes left unwritten at its start (*len counts them) for the
 * frames of the layers above. Any thread; reads only the view and the
 * buffers it pins, so it may run while the store is changed (not while it
 * is destroyed). Errors: UC_ENOMEM (outputs untouched). */
UC_MUSTCHECK int chainfire_kv_view_encode(const struct chainfire_kv_view *v, size_t room,
                                          char **buf, size_t *len);

/* Free view `v` (NULL: no-op) and unpin: when no view is left, the buffers
 * the store let go of meanwhile are freed. Called where the store is not
 * changing (under the caller's lock). */
void chainfire_kv_view_release(struct chainfire_kv *kv, struct chainfire_kv_view *v);

/* take, encode and release in one go: the state now, as a new buffer of
 * *len bytes freed with uc_free. Errors: UC_ENOMEM (outputs untouched). */
UC_MUSTCHECK int chainfire_kv_snapshot(struct chainfire_kv *kv, char **buf, size_t *len);

/* Replace the whole state by one a snapshot holds (`len` bytes at `buf`,
 * borrowed), after checking every length, count and ordering in it. On
 * failure the store is unchanged.
 * Errors: UC_EINVAL ("not a chainfire snapshot", the JSON snapshots of
 * earlier versions, which are no longer read, or "snapshot: <what is
 * wrong>"), UC_ENOMEM. */
UC_MUSTCHECK int chainfire_kv_restore(struct chainfire_kv *kv, const void *buf, size_t len,
                                      char err[UC_ERR_LEN]);

#endif /* CHAINFIRE_KV_H */
