/* records.c - shared helpers of the IAM resource modules: id checks,
 * timestamps, JSON records in the store, owning transaction builder and
 * list paging. */
#include <stdio.h>
#include <string.h>

#include "records.h"
#include "uc/alloc.h"
#include "uc/json.h"

#define ID_RANDOM_LEN 20
#define PAGE_TOKEN_MAX 64
#define ID_CHARS "abcdefghijklmnopqrstuvwxyz0123456789"

bool iam_id_is(const char *id, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (!id || strncmp(id, prefix, pl) != 0 || id[pl] != '-')
        return false;
    const char *r = id + pl + 1;
    return strlen(r) == ID_RANDOM_LEN && strspn(r, ID_CHARS) == ID_RANDOM_LEN;
}

int iam_id_check(const char *id, const char *prefix, char err[UC_ERR_LEN])
{
    if (iam_id_is(id, prefix))
        return 0;
    return uc_err_set(err, UC_EINVAL, "id must look like %s-<20 lowercase letters/digits>", prefix);
}

int64_t iam_now_ms(const struct iam_server *s) { return uc_clock_wall_ms(s->clock); }

int iam_set(json_t *obj, const char *name, json_t *value)
{
    /* json_object_set_new releases `value` even when it fails. */
    return json_object_set_new(obj, name, value) == 0 ? 0 : UC_ENOMEM;
}

int iam_wrap_items(json_t *items, json_t **out)
{
    json_t *o = json_object();
    if (!o) {
        json_decref(items);
        return UC_ENOMEM;
    }
    if (iam_set(o, "items", items) < 0) {
        json_decref(o);
        return UC_ENOMEM;
    }
    *out = o;
    return 0;
}

int iam_stamp(json_t *rec, int64_t now_ms, bool created)
{
    char ts[32];
    uc_json_time(now_ms, ts);
    if (created && iam_set(rec, "created_at", json_string(ts)) < 0)
        return UC_ENOMEM;
    return iam_set(rec, "updated_at", json_string(ts));
}

int iam_key(char key[IAM_KEY_LEN], const char *a, const char *b, const char *c,
            char err[UC_ERR_LEN])
{
    int n = c ? snprintf(key, IAM_KEY_LEN, "%s%s/%s", a, b, c)
              : snprintf(key, IAM_KEY_LEN, "%s%s", a, b ? b : "");
    if (n < 0 || n >= IAM_KEY_LEN)
        return uc_err_set(err, UC_EINVAL, "storage key too long");
    return 0;
}

int iam_record_parse(const struct uc_store_item *it, json_t **rec, char err[UC_ERR_LEN])
{
    json_t *v = NULL;
    int rc = uc_json_parse((const char *)it->val, it->len, &v, err);
    if (rc == UC_ENOMEM)
        return rc;
    if (rc < 0 || !json_is_object(v)) {
        json_decref(v);
        return uc_err_set(err, UC_EINTERNAL, "stored record %.64s is not a JSON object", it->key);
    }
    *rec = v;
    return 0;
}

int iam_record_load(struct uc_store *st, const char *key, const char *what, json_t **rec,
                    uint64_t *rev, char err[UC_ERR_LEN])
{
    struct uc_store_item it = {0};
    int rc = uc_store_get(st, key, &it, err);
    if (rc == UC_ENOENT)
        return uc_err_set(err, UC_ENOENT, "%s not found", what);
    if (rc < 0)
        return rc;
    rc = iam_record_parse(&it, rec, err);
    if (rc == 0 && rev)
        *rev = it.rev;
    uc_store_item_clear(&it);
    return rc;
}

json_t *iam_record_view(const json_t *rec, uint64_t rev)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    if (!out)
        return NULL;
    /* Iteration does not modify rec; jansson's macro wants a non-const pointer. */
    json_object_foreach((json_t *)rec, k, v)
    {
        if (k[0] != '_' && json_object_set(out, k, v) != 0)
            goto fail;
    }
    if (rev && iam_set(out, "revision", json_integer((json_int_t)rev)) < 0)
        goto fail;
    return out;
fail:
    json_decref(out);
    return NULL;
}

int iam_revision(struct uc_store *st, const char *key, uint64_t *rev, char err[UC_ERR_LEN])
{
    struct uc_store_item it = {0};
    int rc = uc_store_get(st, key, &it, err);
    if (rc < 0)
        return rc;
    *rev = it.rev;
    uc_store_item_clear(&it);
    return 0;
}

int iam_check_revision(const json_t *body, uint64_t current, char err[UC_ERR_LEN])
{
    int64_t want = uc_json_int(body, "revision", 0);
    if (want == 0 || (uint64_t)want == current)
        return 0;
    return uc_err_set(err, UC_ECONFLICT,
                      "revision %lld is stale: the resource is at revision %llu; read it again",
                      (long long)want, (unsigned long long)current);
}

static int ops_add(struct iam_ops *o, enum uc_store_op_type type, const char *key, const void *val,
                   size_t len, uint64_t expect_rev)
{
    if (o->n == UC_STORE_MAX_TXN_OPS)
        return UC_E2BIG;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        struct uc_store_op *p = uc_realloc(o->ops, cap * sizeof(*p));
        if (!p)
            return UC_ENOMEM;
        o->ops = p;
        o->cap = cap;
    }
    char *k = uc_strdup(key);
    char *v = val ? uc_malloc(len + 1) : NULL;
    if (!k || (val && !v)) {
        uc_free(k);
        uc_free(v);
        return UC_ENOMEM;
    }
    if (v) {
        memcpy(v, val, len);
        v[len] = '\0';
    }
    o->ops[o->n++] = (struct uc_store_op){type, k, v, len, expect_rev};
    return 0;
}

int iam_ops_put(struct iam_ops *o, const char *key, const void *val, size_t len,
                uint64_t expect_rev)
{
    return ops_add(o, UC_STORE_OP_PUT, key, val ? val : "", len, expect_rev);
}

int iam_ops_put_json(struct iam_ops *o, const char *key, const json_t *rec, uint64_t expect_rev)
{
    char *text = uc_json_dumps(rec);
    if (!text)
        return UC_ENOMEM;
    int rc = iam_ops_put(o, key, text, strlen(text), expect_rev);
    uc_free(text);
    return rc;
}

int iam_ops_del(struct iam_ops *o, const char *key, uint64_t expect_rev)
{
    return ops_add(o, UC_STORE_OP_DELETE, key, NULL, 0, expect_rev);
}

int iam_ops_check(struct iam_ops *o, const char *key, uint64_t expect_rev)
{
    return ops_add(o, UC_STORE_OP_CHECK, key, NULL, 0, expect_rev);
}

void iam_ops_clear(struct iam_ops *o)
{
    for (size_t i = 0; i < o->n; i++) {
        /* The builder allocated these copies; the op struct declares them const. */
        uc_free((void *)o->ops[i].key);
        uc_free((void *)o->ops[i].val);
    }
    uc_free(o->ops);
    *o = (struct iam_ops){0};
}

int iam_ops_commit(struct uc_store *st, const struct iam_ops *o, const char *unique_key,
                   const char *exists_msg, uint64_t *rev, char err[UC_ERR_LEN])
{
    int rc = uc_store_txn(st, o->ops, o->n, rev, err);
    if (rc != UC_ECONFLICT)
        return rc;
    if (unique_key) {
        uint64_t r;
        int got = iam_revision(st, unique_key, &r, NULL);
        if (got == 0)
            return uc_err_set(err, UC_EEXIST, "%s", exists_msg);
    }
    return uc_err_set(err, UC_ECONFLICT, "the data changed while this request ran; try again");
}

int iam_scan_all(struct uc_store *st, const char *prefix, size_t max, struct uc_store_item **items,
                 size_t *n, char err[UC_ERR_LEN])
{
    bool more = false;
    size_t limit = max + 1 < UC_STORE_MAX_SCAN ? max + 1 : UC_STORE_MAX_SCAN;
    int rc = uc_store_scan(st, prefix, NULL, limit, items, n, &more, err);
    if (rc < 0)
        return rc;
    if (*n > max || more) {
        uc_store_items_free(*items, *n);
        *items = NULL;
        *n = 0;
        return uc_err_set(err, UC_E2BIG, "more than %zu entries under %.64s", max, prefix);
    }
    return 0;
}

int iam_prefix_used(struct uc_store *st, const char *prefix, bool *used, char err[UC_ERR_LEN])
{
    struct uc_store_item *items = NULL;
    size_t n = 0;
    bool more = false;
    int rc = uc_store_scan(st, prefix, NULL, 1, &items, &n, &more, err);
    if (rc < 0)
        return rc;
    *used = n > 0;
    uc_store_items_free(items, n);
    return 0;
}

int iam_map_record(void *ctx, const struct uc_store_item *it, json_t **view, char err[UC_ERR_LEN])
{
    (void)ctx; /* the item holds the record: nothing else needed */
    json_t *rec = NULL;
    int rc = iam_record_parse(it, &rec, err);
    if (rc < 0)
        return rc;
    *view = iam_record_view(rec, it->rev);
    json_decref(rec);
    return *view ? 0 : UC_ENOMEM;
}

int iam_map_public(void *ctx, const struct uc_store_item *it, json_t **view, char err[UC_ERR_LEN])
{
    (void)ctx; /* the item holds the record: nothing else needed */
    json_t *rec = NULL;
    int rc = iam_record_parse(it, &rec, err);
    if (rc < 0)
        return rc;
    *view = iam_record_view(rec, 0);
    json_decref(rec);
    return *view ? 0 : UC_ENOMEM;
}

int iam_map_index(void *ctx, const struct uc_store_item *it, json_t **view, char err[UC_ERR_LEN])
{
    const struct iam_index_map *m = ctx;
    char key[IAM_KEY_LEN];
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = iam_key(key, m->prefix, (const char *)it->val, NULL, err);
    if (rc == 0)
        rc = iam_record_load(m->st, key, "record", &rec, &rev, err);
    if (rc == UC_ENOENT) {
        *view = NULL; /* the index outlived its record: skip it */
        return 0;
    }
    if (rc < 0)
        return rc;
    *view = iam_record_view(rec, rev);
    json_decref(rec);
    return *view ? 0 : UC_ENOMEM;
}

static int page_after(const char *prefix, const char *token, char after[IAM_KEY_LEN],
                      char err[UC_ERR_LEN])
{
    after[0] = '\0';
    if (!token)
        return 0;
    size_t n = strlen(token);
    if (n == 0 || n > PAGE_TOKEN_MAX || strspn(token, ID_CHARS "-") != n)
        return uc_err_set(err, UC_EINVAL, "page_token is not one this server handed out");
    return iam_key(after, prefix, token, NULL, err);
}

static int add_items(const struct uc_store_item *items, size_t n, iam_list_map map, void *mctx,
                     json_t *arr, char err[UC_ERR_LEN])
{
    for (size_t i = 0; i < n; i++) {
        json_t *view = NULL;
        int rc = map(mctx, &items[i], &view, err);
        if (rc < 0)
            return rc;
        if (view && json_array_append_new(arr, view) != 0)
            return UC_ENOMEM;
    }
    return 0;
}

static int page_token_out(json_t *out, const char *prefix, const struct uc_store_item *last)
{
    return iam_set(out, "next_page_token", json_string(last->key + strlen(prefix)));
}

int iam_list(struct uc_store *st, const char *prefix, const struct iam_page *pg, iam_list_map map,
             void *mctx, json_t **out, char err[UC_ERR_LEN])
{
    char after[IAM_KEY_LEN];
    struct uc_store_item *items = NULL;
    size_t n = 0;
    bool more = false;
    int rc = page_after(prefix, pg->token, after, err);
    if (rc < 0)
        return rc;
    rc = uc_store_scan(st, prefix, after, (size_t)pg->limit, &items, &n, &more, err);
    if (rc < 0)
        return rc;
    json_t *res = json_object(), *arr = json_array();
    if (!res || !arr || iam_set(res, "items", json_incref(arr)) < 0)
        rc = UC_ENOMEM;
    if (rc == 0)
        rc = add_items(items, n, map, mctx, arr, err);
    if (rc == 0 && more && n > 0 && page_token_out(res, prefix, &items[n - 1]) < 0)
        rc = UC_ENOMEM;
    uc_store_items_free(items, n);
    json_decref(arr);
    if (rc < 0) {
        json_decref(res);
        return rc;
    }
    *out = res;
    return 0;
}
