/* kv_snapshot.c - chainfire's snapshots: the whole store (history and
 * leases) as JSON for raft, and its restore. See kv.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_internal.h"
#include "uc/alloc.h"
#include "uc/crypto.h"
#include "uc/json.h"

/* ---- snapshots --------------------------------------------------------- */
/* {"v":1,"revision":R,"compacted":C,"leases":[[id,ttl],...],
 *  "keys":[[key,[[create,mod,version,lease,value|null],...]],...]} with
 * keys and values in base64url; a null value is a tombstone. */

static json_t *entry_snap(const struct entry *e)
{
    json_t *revs = json_array();
    for (size_t i = 0; revs && i < e->n; i++) {
        const struct rev *r = &e->revs[i];
        json_t *val = r->tomb ? json_null() : chainfire_kv_b64_json(r->val, r->len);
        json_t *j = val ? json_pack("[IIIIo]", (json_int_t)r->create, (json_int_t)r->mod,
                                    (json_int_t)r->version, (json_int_t)r->lease, val)
                        : NULL;
        if (!j || json_array_append_new(revs, j) < 0) {
            json_decref(revs);
            return NULL;
        }
    }
    json_t *key = revs ? chainfire_kv_b64_json(e->key, e->klen) : NULL;
    if (!key) {
        json_decref(revs);
        return NULL;
    }
    return json_pack("[oo]", key, revs);
}

static json_t *snap_json(const struct chainfire_kv *kv)
{
    json_t *keys = json_array(), *leases = json_array();
    int rc = keys && leases ? 0 : UC_ENOMEM;
    for (size_t i = 0; rc == 0 && i < kv->nleases; i++) {
        json_t *l =
            json_pack("[II]", (json_int_t)kv->leases[i].id, (json_int_t)kv->leases[i].ttl_s);
        if (!l || json_array_append_new(leases, l) < 0)
            rc = UC_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < kv->n; i++) {
        json_t *e = entry_snap(&kv->ents[i]);
        if (!e || json_array_append_new(keys, e) < 0)
            rc = UC_ENOMEM;
    }
    if (rc < 0) {
        json_decref(keys);
        json_decref(leases);
        return NULL;
    }
    return json_pack("{sisIsIsoso}", "v", 1, "revision", (json_int_t)kv->rev, "compacted",
                     (json_int_t)kv->compact_rev, "leases", leases, "keys", keys);
}

int chainfire_kv_snapshot(const struct chainfire_kv *kv, char **buf, size_t *len)
{
    json_t *j = snap_json(kv);
    char *s = j ? uc_json_dumps(j) : NULL;
    json_decref(j);
    if (!s)
        return UC_ENOMEM;
    *buf = s;
    *len = strlen(s);
    return 0;
}

static int restore_rev(struct entry *e, json_t *j, char *err)
{
    json_int_t c, m, v, l;
    json_t *val;
    struct rev r = {0};
    struct bytes b = {0};
    if (json_unpack(j, "[IIIIo!]", &c, &m, &v, &l, &val) < 0)
        return uc_err_set(err, UC_EINVAL, "snapshot: bad revision");
    r = (struct rev){.create = c, .mod = m, .version = v, .lease = l, .tomb = json_is_null(val)};
    if (!r.tomb) {
        json_t *o = json_pack("{sO}", "value", val);
        int rc = o ? chainfire_kv_get_bytes(o, "value", true, &b, err) : UC_ENOMEM;
        json_decref(o);
        if (rc < 0)
            return rc;
        r.val = b.p ? b.p : uc_malloc(1);
        r.len = b.n;
        if (!r.val)
            return UC_ENOMEM;
    }
    if (chainfire_kv_grow((void **)&e->revs, &e->cap, e->n + 1, sizeof(*e->revs)) < 0) {
        uc_free(r.val);
        return UC_ENOMEM;
    }
    e->revs[e->n++] = r;
    return 0;
}

static int restore_entry(struct chainfire_kv *kv, json_t *j, char *err)
{
    const char *k;
    json_t *revs, *r;
    size_t i;
    struct bytes key;
    struct entry *e;
    if (json_unpack(j, "[so!]", &k, &revs) < 0 || !json_is_array(revs) || !k[0])
        return uc_err_set(err, UC_EINVAL, "snapshot: bad key entry");
    json_t *o = json_pack("{ss}", "key", k);
    int rc = o ? chainfire_kv_get_bytes(o, "key", true, &key, err) : UC_ENOMEM;
    json_decref(o);
    if (rc < 0)
        return rc;
    bool found;
    size_t at = chainfire_kv_lower_bound(kv, key.p, key.n, &found);
    if (found || at != kv->n) {
        chainfire_kv_bytes_free(&key);
        return uc_err_set(err, UC_EINVAL, "snapshot: keys out of order");
    }
    rc = chainfire_kv_entry_get(kv, &key, &e);
    chainfire_kv_bytes_free(&key);
    json_array_foreach(revs, i, r)
    {
        if (rc == 0)
            rc = restore_rev(e, r, err);
    }
    return rc;
}

static int restore_into(struct chainfire_kv *kv, json_t *j, char *err)
{
    json_int_t rev, comp;
    json_t *leases, *keys, *v;
    size_t i;
    int ver, rc = 0;
    if (json_unpack(j, "{si,sI,sI,so,so!}", "v", &ver, "revision", &rev, "compacted", &comp,
                    "leases", &leases, "keys", &keys) < 0 ||
        ver != 1 || !json_is_array(leases) || !json_is_array(keys))
        return uc_err_set(err, UC_EINVAL, "not a chainfire snapshot");
    kv->rev = rev;
    kv->compact_rev = comp;
    json_array_foreach(leases, i, v)
    {
        json_int_t id, ttl;
        if (rc == 0 && json_unpack(v, "[II!]", &id, &ttl) < 0)
            rc = uc_err_set(err, UC_EINVAL, "snapshot: bad lease");
        if (rc == 0 && (rc = chainfire_kv_lease_add(kv, id, ttl)) < 0)
            uc_err_set(err, rc, "out of memory");
    }
    json_array_foreach(keys, i, v)
    {
        if (rc == 0)
            rc = restore_entry(kv, v, err);
    }
    return rc;
}

int chainfire_kv_restore(struct chainfire_kv *kv, const void *buf, size_t len, char err[UC_ERR_LEN])
{
    struct chainfire_kv fresh = {0};
    json_t *j = NULL;
    int rc = uc_json_parse(buf, len, &j, err);
    if (rc < 0)
        return rc;
    rc = restore_into(&fresh, j, err);
    json_decref(j);
    if (rc < 0) {
        chainfire_kv_clear(&fresh);
        return rc;
    }
    chainfire_kv_clear(kv);
    *kv = fresh;
    return 0;
}
