/* kv_snapshot.c - chainfire's snapshots: a view of the store taken under the
 * lock, encoded without it in a compact binary form, and the restore that
 * checks every byte before it replaces anything. See kv.h.
 *
 * Format (integers little-endian; lengths and counts u64, the rest i64):
 *   "cfsnap02" revision compacted nleases nkeys
 *   nleases x (id ttl)                                 ids ascending
 *   nkeys x (klen key nrevs nrevs x revision)          keys ascending
 *   revision: tomb(u8 0|1) create mod version lease [vlen value] (no value
 *             for a tombstone); mod ascending within a key
 * No base64 and no JSON: encoding is a walk and a memcpy per buffer, and
 * raft_uv compresses the file. Earlier versions wrote JSON ({"v":1,...});
 * those are refused with a message saying what to do. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_internal.h"
#include "uc/alloc.h"

#define MAGIC "cfsnap02"
#define MAGIC_LEN 8
#define HDR_LEN (MAGIC_LEN + 4 * 8)
#define LEASE_LEN 16
#define KEY_MIN (8 + 1 + 8)   /* klen, one key byte, nrevs */
#define REV_FIXED (1 + 4 * 8) /* tomb flag, create, mod, version, lease */
#define REV_MIN REV_FIXED     /* a tombstone */

/* ---- views --------------------------------------------------------------- */

/* One key of a view: its buffer (pinned) and its revisions in view->revs. */
struct vkey {
    const uint8_t *key;
    size_t klen;
    size_t first, n;
};

struct chainfire_kv_view {
    int64_t rev, compact_rev;
    struct chainfire_kv_lease *leases;
    size_t nleases;
    struct vkey *keys;
    size_t nkeys;
    struct rev *revs; /* copies; their val pointers share the pinned buffers */
    size_t nrevs;
};

static void view_free(struct chainfire_kv_view *v)
{
    uc_free(v->leases);
    uc_free(v->keys);
    uc_free(v->revs);
    uc_free(v);
}

/* Copy the index: keys with the revisions compaction keeps (what the sweep
 * has yet to free is left out, and so are keys left with nothing), and the
 * leases. */
static void view_fill(struct chainfire_kv_view *v, const struct chainfire_kv *kv)
{
    size_t k = 0, r = 0;
    for (size_t i = 0; i < kv->n; i++) {
        const struct entry *e = &kv->ents[i];
        size_t drop = chainfire_kv_compact_drop(e, kv->compact_rev), n = e->n - drop;
        if (n == 0)
            continue;
        v->keys[k++] = (struct vkey){e->key, e->klen, r, n};
        memcpy(&v->revs[r], &e->revs[drop], n * sizeof(*e->revs));
        r += n;
    }
    if (kv->nleases)
        memcpy(v->leases, kv->leases, kv->nleases * sizeof(*kv->leases));
    v->rev = kv->rev;
    v->compact_rev = kv->compact_rev;
}

int chainfire_kv_view_take(struct chainfire_kv *kv, struct chainfire_kv_view **out)
{
    size_t nkeys = 0, nrevs = 0;
    for (size_t i = 0; i < kv->n; i++) {
        const struct entry *e = &kv->ents[i];
        size_t n = e->n - chainfire_kv_compact_drop(e, kv->compact_rev);
        nkeys += n > 0;
        nrevs += n;
    }
    struct chainfire_kv_view *v = uc_calloc(1, sizeof(*v));
    if (!v)
        return UC_ENOMEM;
    v->keys = uc_calloc(nkeys ? nkeys : 1, sizeof(*v->keys));
    v->revs = uc_calloc(nrevs ? nrevs : 1, sizeof(*v->revs));
    v->leases = uc_calloc(kv->nleases ? kv->nleases : 1, sizeof(*v->leases));
    if (!v->keys || !v->revs || !v->leases) {
        view_free(v);
        return UC_ENOMEM;
    }
    v->nkeys = nkeys;
    v->nrevs = nrevs;
    v->nleases = kv->nleases;
    view_fill(v, kv);
    kv->pins++;
    *out = v;
    return 0;
}

void chainfire_kv_view_release(struct chainfire_kv *kv, struct chainfire_kv_view *v)
{
    if (!v)
        return;
    view_free(v);
    if (kv->pins > 0 && --kv->pins == 0)
        chainfire_kv_bury(kv);
}

/* ---- encoding --------------------------------------------------------------- */

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}

static uint8_t *put_bytes(uint8_t *p, const uint8_t *b, size_t n)
{
    p = put64(p, n);
    if (n)
        memcpy(p, b, n);
    return p + n;
}

static size_t encoded_size(const struct chainfire_kv_view *v)
{
    size_t n = HDR_LEN + v->nleases * LEASE_LEN;
    for (size_t i = 0; i < v->nkeys; i++)
        n += 16 + v->keys[i].klen;
    for (size_t i = 0; i < v->nrevs; i++)
        n += REV_FIXED + (v->revs[i].tomb ? 0 : 8 + v->revs[i].len);
    return n;
}

static uint8_t *put_rev(uint8_t *p, const struct rev *r)
{
    *p++ = r->tomb ? 1 : 0;
    p = put64(p, (uint64_t)r->create);
    p = put64(p, (uint64_t)r->mod);
    p = put64(p, (uint64_t)r->version);
    p = put64(p, (uint64_t)r->lease);
    return r->tomb ? p : put_bytes(p, r->val, r->len);
}

int chainfire_kv_view_encode(const struct chainfire_kv_view *v, size_t room, char **buf,
                             size_t *len)
{
    size_t n = encoded_size(v);
    uint8_t *out = n <= SIZE_MAX - room ? uc_malloc(room + n) : NULL, *p = out + room;
    if (!out)
        return UC_ENOMEM;
    memcpy(p, MAGIC, MAGIC_LEN);
    p = put64(p + MAGIC_LEN, (uint64_t)v->rev);
    p = put64(p, (uint64_t)v->compact_rev);
    p = put64(p, v->nleases);
    p = put64(p, v->nkeys);
    for (size_t i = 0; i < v->nleases; i++) {
        p = put64(p, (uint64_t)v->leases[i].id);
        p = put64(p, (uint64_t)v->leases[i].ttl_s);
    }
    for (size_t i = 0; i < v->nkeys; i++) {
        const struct vkey *k = &v->keys[i];
        p = put_bytes(p, k->key, k->klen);
        p = put64(p, k->n);
        for (size_t j = 0; j < k->n; j++)
            p = put_rev(p, &v->revs[k->first + j]);
    }
    *buf = (char *)out;
    *len = room + n;
    return 0;
}

int chainfire_kv_snapshot(struct chainfire_kv *kv, char **buf, size_t *len)
{
    struct chainfire_kv_view *v = NULL;
    int rc = chainfire_kv_view_take(kv, &v);
    if (rc < 0)
        return rc;
    rc = chainfire_kv_view_encode(v, 0, buf, len);
    chainfire_kv_view_release(kv, v);
    return rc;
}

/* ---- decoding ----------------------------------------------------------------- */

struct cursor {
    const uint8_t *p, *end;
    char *err;
};

static bool get64(struct cursor *c, uint64_t *v)
{
    if (c->end - c->p < 8)
        return false;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | c->p[i];
    c->p += 8;
    *v = x;
    return true;
}

static bool get_i64(struct cursor *c, int64_t *v)
{
    uint64_t x;
    if (!get64(c, &x))
        return false;
    *v = (int64_t)x;
    return true;
}

/* A count of items of at least `min` bytes each that must fit in what is left. */
static bool get_count(struct cursor *c, size_t min, uint64_t *n)
{
    return get64(c, n) && *n <= (uint64_t)(c->end - c->p) / min;
}

/* A length-prefixed byte string, copied into a new key/value buffer. */
static int get_buf(struct cursor *c, uint8_t **out, size_t *n)
{
    uint64_t len;
    if (!get_count(c, 1, &len))
        return uc_err_set(c->err, UC_EINVAL, "snapshot: truncated");
    uint8_t *b = chainfire_kv_buf_new((size_t)len);
    if (!b)
        return uc_err_set(c->err, UC_ENOMEM, "out of memory");
    if (len)
        memcpy(b, c->p, (size_t)len);
    c->p += len;
    *out = b;
    *n = (size_t)len;
    return 0;
}

/* `n` leases (the count was checked against the bytes left). */
static int read_leases(struct cursor *c, struct chainfire_kv *kv, uint64_t n)
{
    if (n && !(kv->leases = uc_calloc((size_t)n, sizeof(*kv->leases))))
        return uc_err_set(c->err, UC_ENOMEM, "out of memory");
    kv->lcap = (size_t)n;
    for (; kv->nleases < n; kv->nleases++) {
        struct chainfire_kv_lease *l = &kv->leases[kv->nleases];
        if (!get_i64(c, &l->id) || !get_i64(c, &l->ttl_s))
            return uc_err_set(c->err, UC_EINVAL, "snapshot: truncated");
        if (kv->nleases && l->id <= l[-1].id)
            return uc_err_set(c->err, UC_EINVAL, "snapshot: leases out of order");
    }
    return 0;
}

/* One revision into e->revs[e->n] (room made by the caller). */
static int read_rev(struct cursor *c, struct entry *e, int64_t revision)
{
    struct rev r = {0};
    if (c->p == c->end || *c->p > 1)
        return uc_err_set(c->err, UC_EINVAL, "snapshot: bad revision of a key");
    r.tomb = *c->p++ == 1;
    if (!get_i64(c, &r.create) || !get_i64(c, &r.mod) || !get_i64(c, &r.version) ||
        !get_i64(c, &r.lease))
        return uc_err_set(c->err, UC_EINVAL, "snapshot: truncated");
    if (r.mod <= 0 || r.mod > revision || (e->n && r.mod <= e->revs[e->n - 1].mod))
        return uc_err_set(c->err, UC_EINVAL, "snapshot: revision %lld of a key is out of order",
                          (long long)r.mod);
    if (!r.tomb) {
        int rc = get_buf(c, &r.val, &r.len);
        if (rc < 0)
            return rc;
    }
    e->revs[e->n++] = r;
    return 0;
}

/* One key and its history, appended to the store (keys come sorted). */
static int read_key(struct cursor *c, struct chainfire_kv *kv, int64_t revision)
{
    struct entry e = {0};
    uint64_t nrevs = 0;
    int rc = get_buf(c, &e.key, &e.klen);
    if (rc < 0)
        return rc;
    const struct entry *prev = kv->n ? &kv->ents[kv->n - 1] : NULL;
    if (e.klen == 0 || (prev && chainfire_kv_keycmp(prev->key, prev->klen, e.key, e.klen) >= 0))
        rc = uc_err_set(c->err, UC_EINVAL, "snapshot: keys empty or out of order");
    else if (!get_count(c, REV_MIN, &nrevs) || nrevs == 0)
        rc = uc_err_set(c->err, UC_EINVAL, "snapshot: bad revision count");
    else if (!(e.revs = uc_calloc((size_t)nrevs, sizeof(*e.revs))))
        rc = uc_err_set(c->err, UC_ENOMEM, "out of memory");
    e.cap = rc == 0 ? (size_t)nrevs : 0;
    while (rc == 0 && e.n < e.cap)
        rc = read_rev(c, &e, revision);
    if (rc == 0) { /* kv->ents has room for every key (restore_into) */
        kv->ents[kv->n++] = e;
        return 0;
    }
    for (size_t i = 0; i < e.n; i++)
        chainfire_kv_buf_drop(e.revs[i].val);
    uc_free(e.revs);
    chainfire_kv_buf_drop(e.key);
    return rc;
}

static int restore_into(struct chainfire_kv *kv, struct cursor *c)
{
    uint64_t nleases, nkeys;
    int rc;
    if (!get_i64(c, &kv->rev) || !get_i64(c, &kv->compact_rev) || !get64(c, &nleases) ||
        !get64(c, &nkeys))
        return uc_err_set(c->err, UC_EINVAL, "snapshot: truncated header");
    if (kv->rev < 0 || kv->compact_rev < 0 || kv->compact_rev > kv->rev)
        return uc_err_set(c->err, UC_EINVAL, "snapshot: bad revision or compaction point");
    if (nleases > (uint64_t)(c->end - c->p) / LEASE_LEN)
        return uc_err_set(c->err, UC_EINVAL, "snapshot: bad lease count");
    if ((rc = read_leases(c, kv, nleases)) < 0)
        return rc;
    if (nkeys > (uint64_t)(c->end - c->p) / (KEY_MIN + REV_MIN))
        return uc_err_set(c->err, UC_EINVAL, "snapshot: bad key count");
    if (nkeys && !(kv->ents = uc_calloc((size_t)nkeys, sizeof(*kv->ents))))
        return uc_err_set(c->err, UC_ENOMEM, "out of memory");
    kv->cap = (size_t)nkeys;
    for (uint64_t i = 0; rc == 0 && i < nkeys; i++)
        rc = read_key(c, kv, kv->rev);
    if (rc == 0 && c->p != c->end)
        rc = uc_err_set(c->err, UC_EINVAL, "snapshot: %zu bytes past the end",
                        (size_t)(c->end - c->p));
    return rc;
}

int chainfire_kv_restore(struct chainfire_kv *kv, const void *buf, size_t len, char err[UC_ERR_LEN])
{
    struct chainfire_kv fresh = {0};
    struct cursor c = {buf, (const uint8_t *)buf + len, err};
    if (len && *(const char *)buf == '{')
        return uc_err_set(err, UC_EINVAL,
                          "a JSON snapshot from an earlier chainfire, which this version no "
                          "longer reads: let the member rejoin with an empty data dir (the leader "
                          "sends it a current snapshot), or take a new backup");
    if (len < HDR_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0)
        return uc_err_set(err, UC_EINVAL, "not a chainfire snapshot (no '%s' magic)", MAGIC);
    c.p += MAGIC_LEN;
    int rc = restore_into(&fresh, &c);
    if (rc < 0) {
        chainfire_kv_clear(&fresh);
        return rc;
    }
    chainfire_kv_clear(kv); /* buffers a view shares go to the graveyard */
    fresh.pins = kv->pins;
    fresh.graveyard = kv->graveyard;
    *kv = fresh;
    return 0;
}
