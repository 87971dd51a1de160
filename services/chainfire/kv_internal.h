/* kv_internal.h - what kv.c, kv_cmd.c and kv_snapshot.c share: the store's
 * layout and its raw operations. Private to those files; not thread-safe. */
#ifndef CHAINFIRE_KV_INTERNAL_H
#define CHAINFIRE_KV_INTERNAL_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

/* One revision of a key; a tombstone (tomb) marks a delete and has no value. */
struct rev {
    int64_t create, mod, version, lease;
    uint8_t *val;
    size_t len;
    bool tomb;
};

struct entry {
    uint8_t *key;
    size_t klen;
    struct rev *revs;
    size_t n, cap;
};

/* Keys and values live in buffers of their own that never change once
 * written, so a snapshot view (kv_snapshot.c) can share them: while views
 * are pinned, buffers the store lets go of wait in the graveyard, a list
 * linked through a hidden word in front of each buffer (so burying one
 * needs no allocation and never touches the bytes a view may be reading),
 * and are freed when the last view is released. Arrays (ents, revs, leases)
 * change in place and are copied by a view instead. */
struct chainfire_kv {
    struct entry *ents;
    size_t n, cap;
    int64_t rev, compact_rev;
    struct chainfire_kv_lease *leases;
    size_t nleases, lcap;
    unsigned pins;   /* views taken and not released */
    void *graveyard; /* buffers released while pinned */
    /* Compaction sweep: history below compact_rev that no read can see any
     * more is freed a few entries per apply, from ents[sweep_at] on
     * (wrapping), until sweep_left entries were visited; entries left
     * empty (holes) stay in place until then. */
    size_t sweep_at, sweep_left, holes;
};

/* A byte string decoded from base64url; `end` ranges also use `open`
 * (no upper bound) and `single` (only `key`). */
struct bytes {
    uint8_t *p;
    size_t n;
};

struct span {
    struct bytes key, end;
    bool single, open;
};

/* ---- layout (kv.c) ----------------------------------------------------- */

void chainfire_kv_bytes_free(struct bytes *b);
void chainfire_kv_span_free(struct span *s);
/* memcmp order, a prefix sorting first. */
int chainfire_kv_keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);
/* Index of the first entry >= key; *found (may be NULL) when it equals key. */
size_t chainfire_kv_lower_bound(const struct chainfire_kv *kv, const uint8_t *k, size_t kl,
                                bool *found);
bool chainfire_kv_in_span(const struct span *s, const struct entry *e);
/* The revision of `e` visible at revision `at` / now; NULL when absent. */
const struct rev *chainfire_kv_visible(const struct entry *e, int64_t at);
const struct rev *chainfire_kv_live(const struct entry *e);
/* Free everything the store holds and empty it (it stays usable; pins and
 * the graveyard stay as they are). */
void chainfire_kv_clear(struct chainfire_kv *kv);
/* A key or value buffer for `n` bytes (behind its hidden link word); NULL
 * on ENOMEM. Free it with one of the two below, never with uc_free. */
uint8_t *chainfire_kv_buf_new(size_t n);
/* Free a buffer no view can share (never stored, or the store is not
 * pinned); NULL is a no-op. */
void chainfire_kv_buf_drop(void *p);
/* Let go of a stored key or value buffer: freed now, or buried while
 * pinned; NULL is a no-op. */
void chainfire_kv_buf_free(struct chainfire_kv *kv, void *p);
/* Free the graveyard (the last pin is gone). */
void chainfire_kv_bury(struct chainfire_kv *kv);
/* Make room for `need` elements of `size` bytes in *arr. Errors: UC_ENOMEM. */
UC_MUSTCHECK int chainfire_kv_grow(void **arr, size_t *cap, size_t need, size_t size);
/* The entry for key k (copied), inserted empty when missing; *out is valid
 * until the next insert. Errors: UC_ENOMEM. */
UC_MUSTCHECK int chainfire_kv_entry_get(struct chainfire_kv *kv, const struct bytes *k,
                                        struct entry **out);
/* Write k=v (copied) attached to `lease` at revision `rev`. Errors: UC_ENOMEM. */
UC_MUSTCHECK int chainfire_kv_put_raw(struct chainfire_kv *kv, const struct bytes *k,
                                      const struct bytes *v, int64_t lease, int64_t rev);
/* Tombstone the live keys in `s` (NULL: all) attached to `lease` (0: any)
 * at `rev`, adding their number to *deleted. Errors: UC_ENOMEM. */
UC_MUSTCHECK int chainfire_kv_delete_raw(struct chainfire_kv *kv, const struct span *s,
                                         int64_t lease, int64_t rev, int64_t *deleted);
struct chainfire_kv_lease *chainfire_kv_lease_find(const struct chainfire_kv *kv, int64_t id);
/* Insert in id order. Errors: UC_ENOMEM. */
UC_MUSTCHECK int chainfire_kv_lease_add(struct chainfire_kv *kv, int64_t id, int64_t ttl);
void chainfire_kv_lease_drop(struct chainfire_kv *kv, struct chainfire_kv_lease *l);
/* Compact at revision `at`: reads below it are refused from now on, and a
 * sweep is started that frees the history they alone could see. */
void chainfire_kv_compact_raw(struct chainfire_kv *kv, int64_t at);
/* The number of e's oldest revisions that nothing at or after revision
 * `at` sees: all but the one visible at `at`, and that one too when it is a
 * tombstone. */
size_t chainfire_kv_compact_drop(const struct entry *e, int64_t at);

/* ---- JSON helpers (kv.c) ----------------------------------------------- */

/* Decode field `name` (unpadded base64url) into *out (freed with
 * chainfire_kv_bytes_free); absent or "" is empty unless required.
 * Errors: UC_EINVAL, UC_ENOMEM, with a message. */
UC_MUSTCHECK int chainfire_kv_get_bytes(const json_t *obj, const char *name, bool required,
                                        struct bytes *out, char *err);
/* key, range_end and prefix of a request into *s (freed with
 * chainfire_kv_span_free). Errors: UC_EINVAL, UC_ENOMEM. */
UC_MUSTCHECK int chainfire_kv_get_span(const json_t *obj, struct span *s, char *err);
/* New JSON string of p's base64url; NULL on ENOMEM. */
json_t *chainfire_kv_b64_json(const uint8_t *p, size_t n);
/* json_object_set_new that counts a NULL value as ENOMEM. */
UC_MUSTCHECK int chainfire_kv_set_new(json_t *obj, const char *name, json_t *v);
/* A key record {"key","value","create_revision",...}; NULL on ENOMEM. */
json_t *chainfire_kv_record_json(const struct entry *e, const struct rev *r, bool keys_only);

#endif /* CHAINFIRE_KV_INTERNAL_H */
