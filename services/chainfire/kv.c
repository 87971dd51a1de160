/* kv.c - chainfire's MVCC store core: the sorted key array with each key's
 * revision history (oldest first, a tombstone marking a delete), raw puts
 * and deletes, the lease table, compaction, change lists for watches and
 * the JSON helpers the command and snapshot code share. See kv.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_internal.h"
#include "uc/alloc.h"
#include "uc/crypto.h"
#include "uc/json.h"

void chainfire_kv_bytes_free(struct bytes *b)
{
    uc_free(b->p);
    b->p = NULL;
    b->n = 0;
}

void chainfire_kv_span_free(struct span *s)
{
    chainfire_kv_bytes_free(&s->key);
    chainfire_kv_bytes_free(&s->end);
}

int chainfire_kv_keycmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return al < bl ? -1 : al > bl;
}

/* Index of the first entry >= key; *found when it equals key. */
size_t chainfire_kv_lower_bound(const struct chainfire_kv *kv, const uint8_t *k, size_t kl,
                                bool *found)
{
    size_t lo = 0, hi = kv->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (chainfire_kv_keycmp(kv->ents[mid].key, kv->ents[mid].klen, k, kl) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (found)
        *found = lo < kv->n && chainfire_kv_keycmp(kv->ents[lo].key, kv->ents[lo].klen, k, kl) == 0;
    return lo;
}

bool chainfire_kv_in_span(const struct span *s, const struct entry *e)
{
    if (s->single)
        return chainfire_kv_keycmp(e->key, e->klen, s->key.p, s->key.n) == 0;
    return s->open || chainfire_kv_keycmp(e->key, e->klen, s->end.p, s->end.n) < 0;
}

/* The revision of `e` visible at revision `at`, NULL when absent then. */
const struct rev *chainfire_kv_visible(const struct entry *e, int64_t at)
{
    for (size_t i = e->n; i > 0; i--) {
        const struct rev *r = &e->revs[i - 1];
        if (r->mod <= at)
            return r->tomb ? NULL : r;
    }
    return NULL;
}

static struct rev *latest(struct entry *e) { return e->n ? &e->revs[e->n - 1] : NULL; }

const struct rev *chainfire_kv_live(const struct entry *e)
{
    const struct rev *r = e->n ? &e->revs[e->n - 1] : NULL;
    return r && !r->tomb ? r : NULL;
}

/* The hidden word in front of every key and value buffer: the graveyard's
 * link while the buffer is buried. */
#define BUF_HDR sizeof(void *)

uint8_t *chainfire_kv_buf_new(size_t n)
{
    uint8_t *b = n <= SIZE_MAX - BUF_HDR ? uc_malloc(BUF_HDR + n) : NULL;
    return b ? b + BUF_HDR : NULL;
}

void chainfire_kv_buf_drop(void *p)
{
    if (p)
        uc_free((uint8_t *)p - BUF_HDR);
}

void chainfire_kv_buf_free(struct chainfire_kv *kv, void *p)
{
    if (!p || kv->pins == 0) {
        chainfire_kv_buf_drop(p);
        return;
    }
    memcpy((uint8_t *)p - BUF_HDR, &kv->graveyard, sizeof(void *));
    kv->graveyard = p;
}

void chainfire_kv_bury(struct chainfire_kv *kv)
{
    void *p = kv->graveyard, *next;
    while (p) {
        memcpy(&next, (uint8_t *)p - BUF_HDR, sizeof(void *));
        chainfire_kv_buf_drop(p);
        p = next;
    }
    kv->graveyard = NULL;
}

static void entry_free(struct chainfire_kv *kv, struct entry *e)
{
    for (size_t i = 0; i < e->n; i++)
        chainfire_kv_buf_free(kv, e->revs[i].val);
    uc_free(e->revs);
    chainfire_kv_buf_free(kv, e->key);
}

int chainfire_kv_create(struct chainfire_kv **out)
{
    struct chainfire_kv *kv = uc_calloc(1, sizeof(*kv));
    if (!kv)
        return UC_ENOMEM;
    *out = kv;
    return 0;
}

void chainfire_kv_clear(struct chainfire_kv *kv)
{
    for (size_t i = 0; i < kv->n; i++)
        entry_free(kv, &kv->ents[i]);
    uc_free(kv->ents);
    uc_free(kv->leases);
    *kv = (struct chainfire_kv){.pins = kv->pins, .graveyard = kv->graveyard};
}

void chainfire_kv_destroy(struct chainfire_kv *kv)
{
    if (!kv)
        return;
    kv->pins = 0; /* views must be released first: nothing may share a buffer now */
    chainfire_kv_clear(kv);
    chainfire_kv_bury(kv);
    uc_free(kv);
}

int64_t chainfire_kv_revision(const struct chainfire_kv *kv) { return kv->rev; }
int64_t chainfire_kv_compacted(const struct chainfire_kv *kv) { return kv->compact_rev; }

int chainfire_kv_grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = uc_realloc(*arr, ncap * size);
    if (!p)
        return UC_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* The entry for key, inserted (empty) when missing. */
int chainfire_kv_entry_get(struct chainfire_kv *kv, const struct bytes *k, struct entry **out)
{
    bool found;
    size_t i = chainfire_kv_lower_bound(kv, k->p, k->n, &found);
    if (!found) {
        if (chainfire_kv_grow((void **)&kv->ents, &kv->cap, kv->n + 1, sizeof(*kv->ents)) < 0)
            return UC_ENOMEM;
        uint8_t *key = chainfire_kv_buf_new(k->n);
        if (!key)
            return UC_ENOMEM;
        memcpy(key, k->p, k->n);
        memmove(&kv->ents[i + 1], &kv->ents[i], (kv->n - i) * sizeof(*kv->ents));
        kv->ents[i] = (struct entry){.key = key, .klen = k->n};
        kv->n++;
        /* A sweep keeps its place; a key new to the part still to visit
         * costs it one more visit. */
        if (kv->sweep_left > 0 && i < kv->sweep_at)
            kv->sweep_at++;
        else if (kv->sweep_left > 0)
            kv->sweep_left++;
    }
    *out = &kv->ents[i];
    return 0;
}

/* Append `r` to e's history, or replace the newest revision when it was
 * written at the same store revision (two writes in one txn). */
static int push_rev(struct chainfire_kv *kv, struct entry *e, const struct rev *r)
{
    struct rev *last = latest(e);
    if (last && last->mod == r->mod) {
        chainfire_kv_buf_free(kv, last->val);
        *last = *r;
        return 0;
    }
    if (chainfire_kv_grow((void **)&e->revs, &e->cap, e->n + 1, sizeof(*e->revs)) < 0)
        return UC_ENOMEM;
    e->revs[e->n++] = *r;
    return 0;
}

int chainfire_kv_put_raw(struct chainfire_kv *kv, const struct bytes *k, const struct bytes *v,
                         int64_t lease, int64_t rev)
{
    struct entry *e;
    int rc = chainfire_kv_entry_get(kv, k, &e);
    if (rc < 0)
        return rc;
    const struct rev *cur = chainfire_kv_live(e);
    struct rev r = {.create = cur ? cur->create : rev,
                    .mod = rev,
                    .version = cur ? cur->version + 1 : 1,
                    .lease = lease,
                    .len = v->n};
    r.val = chainfire_kv_buf_new(v->n);
    if (!r.val)
        return UC_ENOMEM;
    if (v->n)
        memcpy(r.val, v->p, v->n);
    rc = push_rev(kv, e, &r);
    if (rc < 0)
        chainfire_kv_buf_drop(r.val); /* never stored */
    return rc;
}

/* Tombstone every live key in `s` (or attached to `lease` when > 0) at
 * `rev`; *deleted counts them. */
int chainfire_kv_delete_raw(struct chainfire_kv *kv, const struct span *s, int64_t lease,
                            int64_t rev, int64_t *deleted)
{
    size_t i = s ? chainfire_kv_lower_bound(kv, s->key.p, s->key.n, NULL) : 0;
    for (; i < kv->n; i++) {
        struct entry *e = &kv->ents[i];
        if (s && !chainfire_kv_in_span(s, e))
            break;
        const struct rev *cur = chainfire_kv_live(e);
        if (!cur || (lease > 0 && cur->lease != lease))
            continue;
        struct rev r = {.mod = rev, .tomb = true};
        if (push_rev(kv, e, &r) < 0)
            return UC_ENOMEM;
        (*deleted)++;
    }
    return 0;
}

/* ---- leases ------------------------------------------------------------ */

struct chainfire_kv_lease *chainfire_kv_lease_find(const struct chainfire_kv *kv, int64_t id)
{
    for (size_t i = 0; i < kv->nleases; i++)
        if (kv->leases[i].id == id)
            return &kv->leases[i];
    return NULL;
}

int chainfire_kv_lease_get(const struct chainfire_kv *kv, int64_t id, int64_t *ttl_s, size_t *keys)
{
    const struct chainfire_kv_lease *l = chainfire_kv_lease_find(kv, id);
    if (!l)
        return UC_ENOENT;
    size_t n = 0;
    for (size_t i = 0; i < kv->n; i++) {
        const struct rev *r = chainfire_kv_live(&kv->ents[i]);
        n += r && r->lease == id;
    }
    *ttl_s = l->ttl_s;
    *keys = n;
    return 0;
}

int chainfire_kv_lease_list(const struct chainfire_kv *kv, struct chainfire_kv_lease **out,
                            size_t *n)
{
    struct chainfire_kv_lease *arr = NULL;
    if (kv->nleases) {
        arr = uc_malloc(kv->nleases * sizeof(*arr));
        if (!arr)
            return UC_ENOMEM;
        memcpy(arr, kv->leases, kv->nleases * sizeof(*arr));
    }
    *out = arr;
    *n = kv->nleases;
    return 0;
}

/* Insert keeping id order (snapshots and lists come out sorted). */
int chainfire_kv_lease_add(struct chainfire_kv *kv, int64_t id, int64_t ttl)
{
    if (chainfire_kv_grow((void **)&kv->leases, &kv->lcap, kv->nleases + 1, sizeof(*kv->leases)) <
        0)
        return UC_ENOMEM;
    size_t i = 0;
    while (i < kv->nleases && kv->leases[i].id < id)
        i++;
    memmove(&kv->leases[i + 1], &kv->leases[i], (kv->nleases - i) * sizeof(*kv->leases));
    kv->leases[i] = (struct chainfire_kv_lease){id, ttl};
    kv->nleases++;
    return 0;
}

void chainfire_kv_lease_drop(struct chainfire_kv *kv, struct chainfire_kv_lease *l)
{
    size_t i = (size_t)(l - kv->leases);
    memmove(&kv->leases[i], &kv->leases[i + 1], (kv->nleases - i - 1) * sizeof(*kv->leases));
    kv->nleases--;
}

/* ---- compaction -------------------------------------------------------- */

size_t chainfire_kv_compact_drop(const struct entry *e, int64_t at)
{
    size_t i = e->n; /* becomes the number of revisions written at or before `at` */
    while (i > 0 && e->revs[i - 1].mod > at)
        i--;
    if (i == 0)
        return 0;
    return e->revs[i - 1].tomb ? i : i - 1;
}

/* Drop e's history older than what revision `at` sees; false when nothing
 * is left (the entry becomes a hole). */
static bool compact_entry(struct chainfire_kv *kv, struct entry *e, int64_t at)
{
    size_t drop = chainfire_kv_compact_drop(e, at);
    for (size_t i = 0; i < drop; i++)
        chainfire_kv_buf_free(kv, e->revs[i].val);
    memmove(e->revs, &e->revs[drop], (e->n - drop) * sizeof(*e->revs));
    e->n -= drop;
    return e->n > 0;
}

void chainfire_kv_compact_raw(struct chainfire_kv *kv, int64_t at)
{
    kv->compact_rev = at;
    kv->sweep_left = kv->n;
}

/* Remove the entries left empty, keeping the order (one pass of struct
 * moves, no lookups). */
static void drop_holes(struct chainfire_kv *kv)
{
    size_t w = 0;
    for (size_t i = 0; i < kv->n; i++) {
        if (kv->ents[i].n > 0)
            kv->ents[w++] = kv->ents[i];
        else
            entry_free(kv, &kv->ents[i]);
    }
    kv->n = w;
    kv->sweep_at = 0;
    kv->holes = 0;
}

void chainfire_kv_sweep(struct chainfire_kv *kv, size_t max)
{
    if (kv->n == 0)
        kv->sweep_left = 0;
    for (; max > 0 && kv->sweep_left > 0; max--) {
        if (kv->sweep_at >= kv->n)
            kv->sweep_at = 0;
        kv->sweep_left--;
        if (!compact_entry(kv, &kv->ents[kv->sweep_at++], kv->compact_rev))
            kv->holes++;
    }
    if (kv->sweep_left == 0 && kv->holes > 0)
        drop_holes(kv);
}

bool chainfire_kv_sweeping(const struct chainfire_kv *kv) { return kv->sweep_left > 0; }

/* ---- JSON helpers ------------------------------------------------------ */

/* Decode field `name` of obj (a base64url string) into *out; absent gives
 * an empty string when !required. */
int chainfire_kv_get_bytes(const json_t *obj, const char *name, bool required, struct bytes *out,
                           char *err)
{
    const char *s = uc_json_str(obj, name, NULL);
    if (!s) {
        if (required)
            return uc_err_set(err, UC_EINVAL, "field '%s' is required", name);
        out->p = NULL;
        out->n = 0;
        return 0;
    }
    if (!s[0]) {
        out->p = NULL;
        out->n = 0;
        return 0;
    }
    int rc = uc_b64url_decode(s, strlen(s), &out->p, &out->n);
    if (rc == UC_ENOMEM)
        return uc_err_set(err, rc, "out of memory");
    if (rc < 0)
        return uc_err_set(err, UC_EINVAL, "field '%s' must be unpadded base64url", name);
    return 0;
}

/* The end of the range of keys starting with `k`: open when none. */
static int prefix_end(const struct bytes *k, struct span *s)
{
    size_t n = k->n;
    while (n > 0 && k->p[n - 1] == 0xff)
        n--;
    if (n == 0) {
        s->open = true;
        return 0;
    }
    s->end.p = uc_malloc(n);
    if (!s->end.p)
        return UC_ENOMEM;
    memcpy(s->end.p, k->p, n);
    s->end.p[n - 1]++;
    s->end.n = n;
    return 0;
}

/* key, range_end and prefix of a request into *s. */
int chainfire_kv_get_span(const json_t *obj, struct span *s, char *err)
{
    memset(s, 0, sizeof(*s));
    int rc = chainfire_kv_get_bytes(obj, "key", true, &s->key, err);
    if (rc < 0)
        return rc;
    if (s->key.n == 0)
        rc = uc_err_set(err, UC_EINVAL, "field 'key' must not be empty");
    else if (uc_json_bool(obj, "prefix", false)) {
        if (uc_json_str(obj, "range_end", NULL))
            rc = uc_err_set(err, UC_EINVAL, "give either 'prefix' or 'range_end', not both");
        else if ((rc = prefix_end(&s->key, s)) < 0)
            uc_err_set(err, rc, "out of memory");
    } else if (uc_json_str(obj, "range_end", NULL)) {
        rc = chainfire_kv_get_bytes(obj, "range_end", true, &s->end, err);
        if (rc == 0 && s->end.n == 1 && s->end.p[0] == 0)
            s->open = true;
        else if (rc == 0 && s->end.n == 0)
            rc = uc_err_set(err, UC_EINVAL, "field 'range_end' must not be empty");
    } else {
        s->single = true;
    }
    if (rc < 0)
        chainfire_kv_span_free(s);
    return rc;
}

json_t *chainfire_kv_b64_json(const uint8_t *p, size_t n)
{
    char *s = uc_b64url_encode(p, n);
    if (!s)
        return NULL;
    json_t *j = json_string(s);
    uc_free(s);
    return j;
}

int chainfire_kv_set_new(json_t *obj, const char *name, json_t *v)
{
    return v && json_object_set_new(obj, name, v) == 0 ? 0 : UC_ENOMEM;
}

json_t *chainfire_kv_record_json(const struct entry *e, const struct rev *r, bool keys_only)
{
    json_t *o = json_object();
    int rc = o ? 0 : UC_ENOMEM;
    if (rc == 0)
        rc = chainfire_kv_set_new(o, "key", chainfire_kv_b64_json(e->key, e->klen));
    if (rc == 0 && !keys_only)
        rc = chainfire_kv_set_new(o, "value", chainfire_kv_b64_json(r->val, r->len));
    if (rc == 0)
        rc = chainfire_kv_set_new(o, "create_revision", json_integer(r->create));
    if (rc == 0)
        rc = chainfire_kv_set_new(o, "mod_revision", json_integer(r->mod));
    if (rc == 0)
        rc = chainfire_kv_set_new(o, "version", json_integer(r->version));
    if (rc == 0)
        rc = chainfire_kv_set_new(o, "lease", json_integer(r->lease));
    if (rc < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- changes (watch) --------------------------------------------------- */

struct change {
    int64_t mod;
    size_t ent, rev;
};

static int change_cmp(const void *a, const void *b)
{
    const struct change *x = a, *y = b;
    if (x->mod != y->mod)
        return x->mod < y->mod ? -1 : 1;
    return x->ent < y->ent ? -1 : x->ent > y->ent;
}

static json_t *event_json(const struct entry *e, const struct rev *r)
{
    if (!r->tomb)
        return json_pack("{ssso}", "type", "put", "kv", chainfire_kv_record_json(e, r, false));
    return json_pack("{ss s{sosI}}", "type", "delete", "kv", "key",
                     chainfire_kv_b64_json(e->key, e->klen), "mod_revision", (json_int_t)r->mod);
}

/* Every revision in `s` written at `from` or later, in (revision, key) order. */
static int collect(const struct chainfire_kv *kv, const struct span *s, int64_t from,
                   struct change **out, size_t *n)
{
    struct change *arr = NULL;
    size_t cnt = 0, cap = 0;
    for (size_t i = chainfire_kv_lower_bound(kv, s->key.p, s->key.n, NULL); i < kv->n; i++) {
        const struct entry *e = &kv->ents[i];
        if (!chainfire_kv_in_span(s, e))
            break;
        for (size_t j = e->n; j > 0 && e->revs[j - 1].mod >= from; j--) {
            if (chainfire_kv_grow((void **)&arr, &cap, cnt + 1, sizeof(*arr)) < 0) {
                uc_free(arr);
                return UC_ENOMEM;
            }
            arr[cnt++] = (struct change){e->revs[j - 1].mod, i, j - 1};
        }
    }
    if (cnt)
        qsort(arr, cnt, sizeof(*arr), change_cmp);
    *out = arr;
    *n = cnt;
    return 0;
}

int chainfire_kv_changes(const struct chainfire_kv *kv, const json_t *req, int64_t from,
                         json_t **events, int64_t *upto, char err[UC_ERR_LEN])
{
    struct span s;
    struct change *ch = NULL;
    size_t n = 0;
    if (from <= kv->compact_rev)
        return uc_err_set(err, UC_EINVAL,
                          "revision %lld is compacted; the oldest available is %lld",
                          (long long)from, (long long)kv->compact_rev + 1);
    int rc = chainfire_kv_get_span(req, &s, err);
    if (rc < 0)
        return rc;
    rc = collect(kv, &s, from, &ch, &n);
    chainfire_kv_span_free(&s);
    json_t *arr = rc == 0 ? json_array() : NULL;
    for (size_t i = 0; arr && i < n; i++) {
        const struct entry *e = &kv->ents[ch[i].ent];
        json_t *ev = event_json(e, &e->revs[ch[i].rev]);
        if (!ev || json_array_append_new(arr, ev) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    uc_free(ch);
    if (!arr)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    *events = arr;
    *upto = kv->rev;
    return 0;
}
