/* records.c - shared helpers of the IAM resource modules: resource kinds,
 * id checks, timestamps, JSON records in the store, owning transaction
 * builder, named-record create and delete, and list paging. */
#include <stdio.h>
#include <string.h>

#include "records.h"
#include "uc/alloc.h"
#include "uc/json.h"

#define ID_RANDOM_LEN 20
#define PAGE_TOKEN_MAX 64
#define ID_CHARS "abcdefghijklmnopqrstuvwxyz0123456789"

const struct iam_kind iam_kind_project = {"proj", IAM_K_PROJECT, IAM_K_PROJECT_NAME, "project"};
const struct iam_kind iam_kind_user = {"user", IAM_K_USER, IAM_K_USER_NAME, "user"};
const struct iam_kind iam_kind_sa = {"sa", IAM_K_SA, IAM_K_SA_NAME, "service account"};
const struct iam_kind iam_kind_binding = {"rb", IAM_K_BINDING, NULL, "role binding"};
const struct iam_kind iam_kind_cred = {"ak", IAM_K_CRED, NULL, "credential"};

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

int iam_load(struct uc_store *st, const struct iam_kind *k, const char *id, json_t **rec,
             uint64_t *rev, char err[UC_ERR_LEN])
{
    char key[IAM_KEY_LEN], what[96];
    int rc = iam_id_check(id, k->id_prefix, err);
    if (rc == 0)
        rc = iam_key(key, k->key, id, NULL, err);
    if (rc < 0)
        return rc;
    snprintf(what, sizeof(what), "%s %s", k->noun, id);
    return iam_record_load(st, key, what, rec, rev, err);
}

int iam_check_project(const struct uc_auth_claims *c, const char *project, enum uc_role need,
                      const char *noun, const char *id, char err[UC_ERR_LEN])
{
    int rc = uc_auth_check_project(c, project, need, err);
    if (rc == UC_ENOENT)
        return uc_err_set(err, UC_ENOENT, "%s %s not found", noun, id);
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

int iam_ops_touch_parent(struct iam_ops *o, const char *key, uint64_t rev, const char *parent_id,
                         char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    int rc = iam_ops_check(o, key, rev);
    if (rc == 0 && (rc = iam_key(k, IAM_K_GEN, parent_id, NULL, err)) == 0)
        rc = iam_ops_put(o, k, "", 0, UC_STORE_ANY);
    return rc;
}

/* k->name_key + [scope/]name */
static int name_key(char key[IAM_KEY_LEN], const struct iam_kind *k, const char *scope,
                    const char *name, char err[UC_ERR_LEN])
{
    return scope ? iam_key(key, k->name_key, scope, name, err)
                 : iam_key(key, k->name_key, name, NULL, err);
}

int iam_ops_del_named(struct uc_store *st, const struct iam_kind *k, const char *scope,
                      const json_t *rec, uint64_t rev, struct iam_ops *o, char err[UC_ERR_LEN])
{
    char key[IAM_KEY_LEN];
    uint64_t gen_rev = 0;
    const char *id = uc_json_str(rec, "id", "");
    int rc = iam_key(key, IAM_K_GEN, id, NULL, err);
    if (rc == 0)
        rc = iam_revision(st, key, &gen_rev, err);
    if (rc == 0)
        rc = iam_ops_del(o, key, gen_rev);
    if (rc == 0 && (rc = iam_key(key, k->key, id, NULL, err)) == 0)
        rc = iam_ops_del(o, key, rev);
    if (rc == 0 && (rc = name_key(key, k, scope, uc_json_str(rec, "name", ""), err)) == 0)
        rc = iam_ops_del(o, key, UC_STORE_ANY);
    return rc;
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

/* The record, its unique name and its generation, each only if absent. */
static int named_ops(const struct iam_kind *k, const json_t *rec, const char *name_key,
                     struct iam_ops *o, char err[UC_ERR_LEN])
{
    char key[IAM_KEY_LEN];
    const char *id = uc_json_str(rec, "id", "");
    int rc = iam_key(key, k->key, id, NULL, err);
    if (rc == 0)
        rc = iam_ops_put_json(o, key, rec, UC_STORE_ABSENT);
    if (rc == 0)
        rc = iam_ops_put(o, name_key, id, strlen(id), UC_STORE_ABSENT);
    if (rc == 0 && (rc = iam_key(key, IAM_K_GEN, id, NULL, err)) == 0)
        rc = iam_ops_put(o, key, "", 0, UC_STORE_ABSENT);
    return rc;
}

int iam_create_named(struct uc_store *st, const struct iam_kind *k, const char *scope,
                     const json_t *rec, struct iam_ops *o, json_t **out, char err[UC_ERR_LEN])
{
    char nk[IAM_KEY_LEN], exists[160];
    const char *name = uc_json_str(rec, "name", "");
    struct iam_ops none = {0};
    uint64_t rev = 0;
    o = o ? o : &none;
    int rc = name_key(nk, k, scope, name, err);
    if (rc == 0)
        rc = named_ops(k, rec, nk, o, err);
    if (rc == 0) {
        if (scope)
            snprintf(exists, sizeof(exists), "%s '%s' already exists in project %s", k->noun, name,
                     scope);
        else
            snprintf(exists, sizeof(exists), "%s name '%s' already exists", k->noun, name);
        rc = iam_ops_commit(st, o, nk, exists, &rev, err);
    }
    if (rc == 0 && !(*out = iam_record_view(rec, rev)))
        rc = UC_ENOMEM;
    iam_ops_clear(o);
    return rc;
}

int iam_record_update(struct uc_store *st, const struct iam_kind *k, const char *id,
                      const json_t *rec, uint64_t *rev, char err[UC_ERR_LEN])
{
    char key[IAM_KEY_LEN];
    struct iam_ops ops = {0};
    int rc = iam_key(key, k->key, id, NULL, err);
    if (rc == 0)
        rc = iam_ops_put_json(&ops, key, rec, *rev);
    if (rc == 0)
        rc = iam_ops_commit(st, &ops, NULL, NULL, rev, err);
    iam_ops_clear(&ops);
    return rc;
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

/* The view of the record an item holds; with its revision or without. */
static int map_item(const struct uc_store_item *it, bool with_rev, json_t **view,
                    char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    int rc = iam_record_parse(it, &rec, err);
    if (rc < 0)
        return rc;
    *view = iam_record_view(rec, with_rev ? it->rev : 0);
    json_decref(rec);
    return *view ? 0 : UC_ENOMEM;
}

int iam_map_record(void *ctx, const struct uc_store_item *it, json_t **view, char err[UC_ERR_LEN])
{
    (void)ctx; /* the item holds the record: nothing else needed */
    return map_item(it, true, view, err);
}

int iam_map_public(void *ctx, const struct uc_store_item *it, json_t **view, char err[UC_ERR_LEN])
{
    (void)ctx; /* the item holds the record: nothing else needed */
    return map_item(it, false, view, err);
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

int iam_page_check(const struct iam_page *pg, const struct iam_kind *k, char err[UC_ERR_LEN])
{
    const char *t = pg->token;
    if (!t)
        return 0;
    size_t n = strlen(t);
    bool ok = k ? iam_id_is(t, k->id_prefix)
                : n > 0 && n <= PAGE_TOKEN_MAX && strspn(t, ID_CHARS "-") == n;
    return ok ? 0 : uc_err_set(err, UC_EINVAL, IAM_BAD_PAGE_TOKEN);
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

int iam_list(struct uc_store *st, const char *prefix, const struct iam_kind *token_kind,
             const struct iam_page *pg, iam_list_map map, void *mctx, json_t **out,
             char err[UC_ERR_LEN])
{
    char after[IAM_KEY_LEN] = "";
    struct uc_store_item *items = NULL;
    size_t n = 0;
    bool more = false;
    int rc = iam_page_check(pg, token_kind, err);
    if (rc == 0 && pg->token)
        rc = iam_key(after, prefix, pg->token, NULL, err);
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
