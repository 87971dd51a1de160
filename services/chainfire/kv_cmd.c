/* kv_cmd.c - chainfire's commands: validation of command and request JSON,
 * range reads, and apply (put, delete, txn, leases, compaction), each
 * command writing at most one new revision. See kv.h. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_internal.h"
#include "uc/alloc.h"
#include "uc/crypto.h"
#include "uc/json.h"

/* ---- validation -------------------------------------------------------- */

#define I64 INT64_MAX
static const struct uc_json_field put_fields[] = {
    {"op", UC_JSON_STRING, false, 0, 0, NULL},    {"key", UC_JSON_STRING, true, 0, 0, NULL},
    {"value", UC_JSON_STRING, false, 0, 0, NULL}, {"lease", UC_JSON_INT, false, 0, I64, NULL},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};
static const struct uc_json_field delete_fields[] = {
    {"op", UC_JSON_STRING, false, 0, 0, NULL},        {"key", UC_JSON_STRING, true, 0, 0, NULL},
    {"range_end", UC_JSON_STRING, false, 0, 0, NULL}, {"prefix", UC_JSON_BOOL, false, 0, 0, NULL},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};
static const struct uc_json_field range_fields[] = {
    {"key", UC_JSON_STRING, true, 0, 0, NULL},
    {"range_end", UC_JSON_STRING, false, 0, 0, NULL},
    {"prefix", UC_JSON_BOOL, false, 0, 0, NULL},
    {"limit", UC_JSON_INT, false, 0, I64, NULL},
    {"keys_only", UC_JSON_BOOL, false, 0, 0, NULL},
    {"count_only", UC_JSON_BOOL, false, 0, 0, NULL},
    {"revision", UC_JSON_INT, false, 0, I64, NULL},
    {"serializable", UC_JSON_BOOL, false, 0, 0, NULL},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};
static const struct uc_json_field txn_fields[] = {
    {"op", UC_JSON_STRING, false, 0, 0, NULL},
    {"compare", UC_JSON_ARRAY, false, 0, CHAINFIRE_KV_MAX_TXN_OPS, NULL},
    {"success", UC_JSON_ARRAY, false, 0, CHAINFIRE_KV_MAX_TXN_OPS, NULL},
    {"failure", UC_JSON_ARRAY, false, 0, CHAINFIRE_KV_MAX_TXN_OPS, NULL},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};
static const struct uc_json_field compare_fields[] = {
    {"key", UC_JSON_STRING, true, 0, 0, NULL},
    {"target", UC_JSON_STRING, true, 0, 0, NULL},
    {"result", UC_JSON_STRING, true, 0, 0, NULL},
    {"value", UC_JSON_STRING, false, 0, 0, NULL},
    {"version", UC_JSON_INT, false, 0, I64, NULL},
    {"create_revision", UC_JSON_INT, false, 0, I64, NULL},
    {"mod_revision", UC_JSON_INT, false, 0, I64, NULL},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};
static const struct uc_json_field grant_fields[] = {
    {"op", UC_JSON_STRING, true, 0, 0, NULL},
    {"id", UC_JSON_INT, true, 1, I64, NULL},
    {"ttl", UC_JSON_INT, true, 1, 365 * 86400, NULL},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};
static const struct uc_json_field revoke_fields[] = {
    {"op", UC_JSON_STRING, true, 0, 0, NULL},
    {"id", UC_JSON_INT, true, 1, I64, NULL},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};
static const struct uc_json_field compact_fields[] = {
    {"op", UC_JSON_STRING, true, 0, 0, NULL},
    {"revision", UC_JSON_INT, true, 1, I64, NULL},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};

/* Decoded size of field `name` (unpadded base64url) against `max`. */
static int check_size(const json_t *obj, const char *name, size_t max, char *err)
{
    const char *s = uc_json_str(obj, name, NULL);
    if (s && strlen(s) / 4 * 3 + (strlen(s) % 4 ? strlen(s) % 4 - 1 : 0) > max)
        return uc_err_set(err, UC_E2BIG, "field '%s' is over the limit of %zu bytes", name, max);
    return 0;
}

/* Validate `obj` against `fields`, decode its byte fields once (to catch
 * bad base64url) and check their sizes. */
static int check_obj(const json_t *obj, const struct uc_json_field *fields,
                     const struct chainfire_kv_limits *lim, char *err)
{
    int rc = uc_json_validate(obj, fields, err);
    if (rc < 0)
        return rc;
    static const char *const names[] = {"key", "range_end", "value"};
    for (size_t i = 0; i < 3; i++) {
        struct bytes b;
        if ((rc = chainfire_kv_get_bytes(obj, names[i], false, &b, err)) < 0)
            return rc;
        chainfire_kv_bytes_free(&b);
        if (lim && (rc = check_size(obj, names[i], i < 2 ? lim->max_key : lim->max_value, err)) < 0)
            return rc;
    }
    if (!uc_json_str(obj, "key", "")[0])
        return uc_err_set(err, UC_EINVAL, "field 'key' must not be empty");
    if (fields != put_fields && fields != compare_fields) {
        struct span s;
        if ((rc = chainfire_kv_get_span(obj, &s, err)) < 0)
            return rc;
        chainfire_kv_span_free(&s);
    }
    return 0;
}

static int check_compare(const json_t *c, const struct chainfire_kv_limits *lim, char *err)
{
    int rc = check_obj(c, compare_fields, lim, err);
    if (rc < 0)
        return rc;
    const char *t = uc_json_str(c, "target", ""), *r = uc_json_str(c, "result", "");
    if (strcmp(t, "value") && strcmp(t, "version") && strcmp(t, "create_revision") &&
        strcmp(t, "mod_revision"))
        return uc_err_set(err, UC_EINVAL,
                          "compare 'target' must be value, version, create_revision or "
                          "mod_revision");
    if (strcmp(r, "=") && strcmp(r, "!=") && strcmp(r, "<") && strcmp(r, ">"))
        return uc_err_set(err, UC_EINVAL, "compare 'result' must be =, !=, < or >");
    json_t *v = json_object_get(c, t);
    if (!v || json_is_null(v))
        return uc_err_set(err, UC_EINVAL, "compare on %s needs the field '%s'", t, t);
    return 0;
}

/* One txn op: an object with exactly one of put, delete, range. */
static int check_op(const json_t *op, const struct chainfire_kv_limits *lim, char *err)
{
    if (!json_is_object(op) || json_object_size(op) != 1)
        return uc_err_set(err, UC_EINVAL,
                          "each txn op must be {\"put\"|\"delete\"|\"range\":{...}}");
    json_t *v;
    if ((v = json_object_get(op, "put")))
        return check_obj(v, put_fields, lim, err);
    if ((v = json_object_get(op, "delete")))
        return check_obj(v, delete_fields, lim, err);
    if ((v = json_object_get(op, "range"))) {
        if (json_object_get(v, "revision"))
            return uc_err_set(err, UC_EINVAL, "a range in a txn reads the current revision");
        return check_obj(v, range_fields, lim, err);
    }
    return uc_err_set(err, UC_EINVAL, "each txn op must be {\"put\"|\"delete\"|\"range\":{...}}");
}

static int check_txn(const json_t *cmd, const struct chainfire_kv_limits *lim, char *err)
{
    int rc = uc_json_validate(cmd, txn_fields, err);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(cmd, "compare"), i, v)
    {
        if (rc == 0 && (rc = check_compare(v, lim, err)) < 0)
            uc_err_prefix(err, rc, "compare[%zu]", i);
    }
    static const char *const branches[] = {"success", "failure"};
    for (size_t b = 0; b < 2 && rc == 0; b++) {
        json_array_foreach(json_object_get(cmd, branches[b]), i, v)
        {
            if (rc == 0 && (rc = check_op(v, lim, err)) < 0)
                uc_err_prefix(err, rc, "%s[%zu]", branches[b], i);
        }
    }
    return rc;
}

int chainfire_kv_check(const json_t *cmd, const struct chainfire_kv_limits *lim,
                       char err[UC_ERR_LEN])
{
    const char *op = json_is_object(cmd) ? uc_json_str(cmd, "op", NULL) : NULL;
    if (!op)
        return uc_err_set(err, UC_EINVAL, "command must be an object with an 'op'");
    if (!strcmp(op, "put"))
        return check_obj(cmd, put_fields, lim, err);
    if (!strcmp(op, "delete"))
        return check_obj(cmd, delete_fields, lim, err);
    if (!strcmp(op, "txn"))
        return check_txn(cmd, lim, err);
    if (!strcmp(op, "lease_grant"))
        return uc_json_validate(cmd, grant_fields, err);
    if (!strcmp(op, "lease_revoke"))
        return uc_json_validate(cmd, revoke_fields, err);
    if (!strcmp(op, "compact"))
        return uc_json_validate(cmd, compact_fields, err);
    return uc_err_set(err, UC_EINVAL, "unknown op");
}

/* ---- reads ------------------------------------------------------------- */

struct range_opts {
    int64_t limit, at;
    bool keys_only, count_only;
};

static int range_at(const struct chainfire_kv *kv, const struct span *s, const struct range_opts *o,
                    json_t **out)
{
    json_t *res = json_object(), *kvs = json_array();
    int64_t count = 0;
    int rc = res && kvs ? 0 : UC_ENOMEM;
    for (size_t i = chainfire_kv_lower_bound(kv, s->key.p, s->key.n, NULL); rc == 0 && i < kv->n;
         i++) {
        const struct entry *e = &kv->ents[i];
        if (!chainfire_kv_in_span(s, e))
            break;
        const struct rev *r = chainfire_kv_visible(e, o->at);
        if (!r)
            continue;
        count++;
        if (o->count_only || (o->limit > 0 && count > o->limit))
            continue;
        json_t *j = chainfire_kv_record_json(e, r, o->keys_only);
        if (!j || json_array_append_new(kvs, j) < 0)
            rc = UC_ENOMEM;
    }
    if (rc == 0)
        rc = chainfire_kv_set_new(res, "count", json_integer(count));
    if (rc == 0)
        rc = chainfire_kv_set_new(res, "more", json_boolean(o->limit > 0 && count > o->limit));
    if (rc == 0)
        rc = chainfire_kv_set_new(res, "revision", json_integer(o->at));
    if (rc == 0) {
        rc = json_object_set(res, "kvs", kvs) == 0 ? 0 : UC_ENOMEM;
    }
    json_decref(kvs);
    if (rc < 0) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return 0;
}

/* Range options of request `req`, reading at `at` unless it names one. */
static int range_opts_get(const struct chainfire_kv *kv, const json_t *req, int64_t at,
                          struct range_opts *o, char *err)
{
    o->limit = uc_json_int(req, "limit", 0);
    o->keys_only = uc_json_bool(req, "keys_only", false);
    o->count_only = uc_json_bool(req, "count_only", false);
    o->at = uc_json_int(req, "revision", 0);
    if (o->at == 0)
        o->at = at;
    if (o->at > kv->rev)
        return uc_err_set(err, UC_EINVAL, "revision %lld is in the future (current is %lld)",
                          (long long)o->at, (long long)kv->rev);
    if (o->at < kv->compact_rev)
        return uc_err_set(err, UC_EINVAL,
                          "revision %lld is compacted; the oldest available is %lld",
                          (long long)o->at, (long long)kv->compact_rev);
    return 0;
}

int chainfire_kv_range(const struct chainfire_kv *kv, const json_t *req, json_t **out,
                       char err[UC_ERR_LEN])
{
    struct range_opts o;
    struct span s;
    int rc = check_obj(req, range_fields, NULL, err);
    if (rc == 0)
        rc = range_opts_get(kv, req, kv->rev, &o, err);
    if (rc < 0)
        return rc;
    if ((rc = chainfire_kv_get_span(req, &s, err)) < 0)
        return rc;
    rc = range_at(kv, &s, &o, out);
    chainfire_kv_span_free(&s);
    if (rc < 0)
        uc_err_set(err, rc, "out of memory");
    return rc;
}

/* ---- writes ------------------------------------------------------------ */

/* Per-command state: the revision writes get and whether any happened. */
struct wctx {
    struct chainfire_kv *kv;
    int64_t next;
    bool changed;
    char err[UC_ERR_LEN];
    int code; /* a domain failure found before changing anything */
};

static int put_op(struct wctx *w, const json_t *o, json_t **res)
{
    struct bytes k, v = {0};
    int rc = chainfire_kv_get_bytes(o, "key", true, &k, w->err);
    if (rc == 0)
        rc = chainfire_kv_get_bytes(o, "value", false, &v, w->err);
    if (rc == 0)
        rc = chainfire_kv_put_raw(w->kv, &k, &v, uc_json_int(o, "lease", 0), w->next);
    chainfire_kv_bytes_free(&k);
    chainfire_kv_bytes_free(&v);
    if (rc < 0)
        return rc;
    w->changed = true;
    *res = json_object();
    return *res ? 0 : UC_ENOMEM;
}

static int delete_op(struct wctx *w, const json_t *o, json_t **res)
{
    struct span s;
    int64_t n = 0;
    int rc = chainfire_kv_get_span(o, &s, w->err);
    if (rc < 0)
        return rc;
    rc = chainfire_kv_delete_raw(w->kv, &s, 0, w->next, &n);
    chainfire_kv_span_free(&s);
    if (rc < 0)
        return rc;
    w->changed |= n > 0;
    *res = json_pack("{sI}", "deleted", (json_int_t)n);
    return *res ? 0 : UC_ENOMEM;
}

static int range_op(struct wctx *w, const json_t *o, json_t **res)
{
    struct range_opts ro;
    struct span s;
    int rc = chainfire_kv_get_span(o, &s, w->err);
    if (rc < 0)
        return rc;
    /* A txn's reads see its own earlier writes: they read at `next`, which
     * holds nothing more than the current revision when nothing was written. */
    ro.limit = uc_json_int(o, "limit", 0);
    ro.keys_only = uc_json_bool(o, "keys_only", false);
    ro.count_only = uc_json_bool(o, "count_only", false);
    ro.at = w->next;
    rc = range_at(w->kv, &s, &ro, res);
    chainfire_kv_span_free(&s);
    if (rc == 0) /* the txn's answer carries the revision; absent is fine */
        (void)json_object_del(*res, "revision");
    return rc;
}

/* A put naming a lease that does not exist fails before anything changes. */
static int lease_known(struct wctx *w, const json_t *put)
{
    int64_t lease = uc_json_int(put, "lease", 0);
    if (lease != 0 && !chainfire_kv_lease_find(w->kv, lease)) {
        w->code = UC_ENOENT;
        return uc_err_set(w->err, UC_ENOENT, "lease %lld not found", (long long)lease);
    }
    return 0;
}

/* The integer a compare target names, or -1 for "value". */
static int64_t target_num(const struct rev *r, const char *t)
{
    if (!strcmp(t, "version"))
        return r ? r->version : 0;
    if (!strcmp(t, "create_revision"))
        return r ? r->create : 0;
    return r ? r->mod : 0;
}

static bool cmp_result(int c, const char *res)
{
    if (!strcmp(res, "="))
        return c == 0;
    if (!strcmp(res, "!="))
        return c != 0;
    if (!strcmp(res, "<"))
        return c < 0;
    return c > 0;
}

/* One compare against the current state. A value compare on a missing key
 * is false whatever the operator. */
static int compare(struct wctx *w, const json_t *c, bool *ok)
{
    struct bytes k, v = {0};
    const char *t = uc_json_str(c, "target", ""), *res = uc_json_str(c, "result", "");
    int rc = chainfire_kv_get_bytes(c, "key", true, &k, w->err);
    if (rc < 0)
        return rc;
    bool found;
    size_t i = chainfire_kv_lower_bound(w->kv, k.p, k.n, &found);
    const struct rev *r = found ? chainfire_kv_live(&w->kv->ents[i]) : NULL;
    chainfire_kv_bytes_free(&k);
    if (!strcmp(t, "value")) {
        if ((rc = chainfire_kv_get_bytes(c, "value", true, &v, w->err)) < 0)
            return rc;
        *ok = r && cmp_result(chainfire_kv_keycmp(r->val, r->len, v.p, v.n), res);
        chainfire_kv_bytes_free(&v);
        return 0;
    }
    int64_t have = target_num(r, t), want = uc_json_int(c, t, 0);
    *ok = cmp_result(have < want ? -1 : have > want, res);
    return 0;
}

static int txn_op(struct wctx *w, const json_t *op, json_t **res)
{
    json_t *v, *r = NULL;
    const char *name = "range";
    int rc;
    if ((v = json_object_get(op, "put"))) {
        name = "put";
        rc = put_op(w, v, &r);
    } else if ((v = json_object_get(op, "delete"))) {
        name = "delete";
        rc = delete_op(w, v, &r);
    } else {
        rc = range_op(w, json_object_get(op, "range"), &r);
    }
    if (rc < 0)
        return rc;
    *res = json_pack("{so}", name, r);
    return *res ? 0 : UC_ENOMEM;
}

static int txn(struct wctx *w, const json_t *cmd, json_t **out)
{
    bool ok = true, one;
    size_t i;
    json_t *c, *resps, *r;
    json_array_foreach(json_object_get(cmd, "compare"), i, c)
    {
        int rc = compare(w, c, &one);
        if (rc < 0)
            return rc;
        ok = ok && one;
    }
    const json_t *ops = json_object_get(cmd, ok ? "success" : "failure");
    json_array_foreach(ops, i, c)
    {
        const json_t *put = json_object_get(c, "put");
        if (put && lease_known(w, put) < 0)
            return w->code;
    }
    if (!(resps = json_array()))
        return UC_ENOMEM;
    json_array_foreach(ops, i, c)
    {
        int rc = txn_op(w, c, &r);
        if (rc == 0 && json_array_append_new(resps, r) < 0)
            rc = UC_ENOMEM;
        if (rc < 0) {
            json_decref(resps);
            return rc;
        }
    }
    *out = json_pack("{sbso}", "succeeded", ok, "responses", resps);
    return *out ? 0 : UC_ENOMEM;
}

static int lease_grant(struct wctx *w, const json_t *cmd, json_t **out)
{
    int64_t id = uc_json_int(cmd, "id", 0), ttl = uc_json_int(cmd, "ttl", 0);
    if (chainfire_kv_lease_find(w->kv, id)) {
        w->code = UC_EEXIST;
        return uc_err_set(w->err, UC_EEXIST, "lease %lld already exists", (long long)id);
    }
    if (chainfire_kv_lease_add(w->kv, id, ttl) < 0)
        return UC_ENOMEM;
    *out = json_pack("{sIsI}", "id", (json_int_t)id, "ttl", (json_int_t)ttl);
    return *out ? 0 : UC_ENOMEM;
}

static int lease_revoke(struct wctx *w, const json_t *cmd, json_t **out)
{
    int64_t id = uc_json_int(cmd, "id", 0), n = 0;
    struct chainfire_kv_lease *l = chainfire_kv_lease_find(w->kv, id);
    if (!l) {
        w->code = UC_ENOENT;
        return uc_err_set(w->err, UC_ENOENT, "lease %lld not found", (long long)id);
    }
    if (chainfire_kv_delete_raw(w->kv, NULL, id, w->next, &n) < 0)
        return UC_ENOMEM;
    chainfire_kv_lease_drop(w->kv, l);
    w->changed |= n > 0;
    *out = json_pack("{sI}", "deleted", (json_int_t)n);
    return *out ? 0 : UC_ENOMEM;
}

static int compact(struct wctx *w, const json_t *cmd, json_t **out)
{
    int64_t at = uc_json_int(cmd, "revision", 0);
    if (at > w->kv->rev || at <= w->kv->compact_rev) {
        w->code = UC_EINVAL;
        return uc_err_set(w->err, UC_EINVAL,
                          "compaction revision must be above %lld and at most %lld",
                          (long long)w->kv->compact_rev, (long long)w->kv->rev);
    }
    chainfire_kv_compact_raw(w->kv, at);
    *out = json_pack("{sI}", "compacted", (json_int_t)at);
    return *out ? 0 : UC_ENOMEM;
}

static int dispatch(struct wctx *w, const json_t *cmd, json_t **out)
{
    const char *op = uc_json_str(cmd, "op", "");
    json_t *res = NULL;
    int rc;
    if (!strcmp(op, "put")) {
        rc = lease_known(w, cmd);
        if (rc == 0)
            rc = put_op(w, cmd, &res);
    } else if (!strcmp(op, "delete"))
        rc = delete_op(w, cmd, &res);
    else if (!strcmp(op, "txn"))
        rc = txn(w, cmd, &res);
    else if (!strcmp(op, "lease_grant"))
        rc = lease_grant(w, cmd, &res);
    else if (!strcmp(op, "lease_revoke"))
        rc = lease_revoke(w, cmd, &res);
    else
        rc = compact(w, cmd, &res);
    if (rc < 0)
        return rc;
    *out = res;
    return 0;
}

/* The answer to a command refused for a domain reason. */
static int refusal(int code, const char *msg, json_t **result)
{
    *result = json_pack("{s{siss}}", "error", "code", code, "message", msg);
    return *result ? 0 : UC_ENOMEM;
}

int chainfire_kv_apply(struct chainfire_kv *kv, const void *cmd, size_t len, json_t **result)
{
    struct wctx w = {.kv = kv, .next = kv->rev + 1};
    json_t *c = NULL, *res = NULL;
    chainfire_kv_sweep(kv, CHAINFIRE_KV_SWEEP_STEP); /* before anything can fail */
    int rc = uc_json_parse(cmd, len, &c, w.err);
    if (rc == UC_ENOMEM)
        return rc;
    if (rc == 0 && (rc = chainfire_kv_check(c, NULL, w.err)) == UC_ENOMEM) {
        json_decref(c);
        return rc;
    }
    if (rc < 0) {
        json_decref(c);
        return refusal(rc, w.err, result);
    }
    rc = dispatch(&w, c, &res);
    json_decref(c);
    if (rc < 0)
        return w.code ? refusal(w.code, w.err, result) : UC_ENOMEM;
    if (w.changed)
        kv->rev = w.next;
    if (json_object_set_new(res, "revision", json_integer(kv->rev)) < 0) {
        json_decref(res);
        return UC_ENOMEM;
    }
    *result = res;
    return 0;
}
