/* store.c - the storage interface: picks the backend named by a URL's scheme
 * and checks every argument once, before any backend sees it. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "store_backend.h"
#include "uc/alloc.h"

struct uc_store {
    const struct uc_store_backend *be;
    void *b; /* the backend's handle */
};

static const struct uc_store_backend *const backends[] = {
    &uc_store_sqlite_backend,
    &uc_store_flaredb_backend,
};

static const struct uc_store_backend *find_backend(const char *url, const char **rest)
{
    const char *colon = strchr(url, ':');
    if (!colon)
        return NULL;
    size_t n = (size_t)(colon - url);
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        const char *s = backends[i]->scheme;
        if (strlen(s) == n && memcmp(s, url, n) == 0) {
            *rest = colon + 1;
            return backends[i];
        }
    }
    return NULL;
}

int uc_store_open(struct uc_store **out, const char *url, char err[UC_ERR_LEN])
{
    return uc_store_open_opts(out, url, NULL, err);
}

int uc_store_open_opts(struct uc_store **out, const char *url, const struct uc_store_opts *opts,
                       char err[UC_ERR_LEN])
{
    assert(out);
    if (!url)
        return uc_err_set(err, UC_EINVAL, "store: no URL given");
    const char *rest = NULL;
    const struct uc_store_backend *be = find_backend(url, &rest);
    if (!be) {
        char shown[64];
        uc_err_sanitize(shown, sizeof(shown), url, 40);
        return uc_err_set(err, UC_EINVAL,
                          "store: unknown URL '%s' (expected sqlite:<path> or "
                          "flaredb:<members>/<namespace>)",
                          shown);
    }
    if (!rest[0])
        return uc_err_set(err, UC_EINVAL, "store: URL '%s:' names no location", be->scheme);
    struct uc_store *st = uc_calloc(1, sizeof(*st));
    if (!st)
        return uc_err_set(err, UC_ENOMEM, "store: out of memory");
    int rc = be->open_opts ? be->open_opts(&st->b, rest, opts, err) : be->open(&st->b, rest, err);
    if (rc < 0) {
        uc_free(st);
        return rc;
    }
    st->be = be;
    *out = st;
    return 0;
}

void uc_store_close(struct uc_store *st)
{
    if (!st)
        return;
    st->be->close(st->b);
    uc_free(st);
}

/* Checks the key rules every backend relies on. `what` names the argument. */
static int check_key(const char *key, const char *what, char *err)
{
    if (!key)
        return uc_err_set(err, UC_EINVAL, "store: %s is NULL", what);
    size_t len = strnlen(key, UC_STORE_MAX_KEY + 1);
    if (len == 0)
        return uc_err_set(err, UC_EINVAL, "store: %s is empty", what);
    if (len > UC_STORE_MAX_KEY)
        return uc_err_set(err, UC_EINVAL, "store: %s is longer than %d bytes", what,
                          UC_STORE_MAX_KEY);
    return 0;
}

static int check_val(const void *val, size_t len, char *err)
{
    if (!val && len > 0)
        return uc_err_set(err, UC_EINVAL, "store: value is NULL but its length is %zu", len);
    return 0;
}

int uc_store_get(struct uc_store *st, const char *key, struct uc_store_item *out,
                 char err[UC_ERR_LEN])
{
    assert(st && out);
    int rc = check_key(key, "key", err);
    return rc < 0 ? rc : st->be->get(st->b, key, out, err);
}

int uc_store_put(struct uc_store *st, const char *key, const void *val, size_t len,
                 uint64_t expect_rev, uint64_t *new_rev, char err[UC_ERR_LEN])
{
    assert(st);
    int rc = check_key(key, "key", err);
    if (rc == 0)
        rc = check_val(val, len, err);
    return rc < 0 ? rc : st->be->put(st->b, key, val, len, expect_rev, new_rev, err);
}

int uc_store_delete(struct uc_store *st, const char *key, uint64_t expect_rev, char err[UC_ERR_LEN])
{
    assert(st);
    int rc = check_key(key, "key", err);
    return rc < 0 ? rc : st->be->del(st->b, key, expect_rev, err);
}

int uc_store_scan(struct uc_store *st, const char *prefix, const char *after, size_t limit,
                  struct uc_store_item **items, size_t *n, bool *more, char err[UC_ERR_LEN])
{
    assert(st && items && n && more);
    if (limit < 1 || limit > UC_STORE_MAX_SCAN)
        return uc_err_set(err, UC_EINVAL, "store: scan limit %zu is outside 1..%d", limit,
                          UC_STORE_MAX_SCAN);
    prefix = prefix ? prefix : "";
    after = after ? after : "";
    if (strnlen(prefix, UC_STORE_MAX_KEY + 1) > UC_STORE_MAX_KEY)
        return uc_err_set(err, UC_EINVAL, "store: scan prefix is longer than %d bytes",
                          UC_STORE_MAX_KEY);
    if (strnlen(after, UC_STORE_MAX_KEY + 1) > UC_STORE_MAX_KEY)
        return uc_err_set(err, UC_EINVAL, "store: scan 'after' is longer than %d bytes",
                          UC_STORE_MAX_KEY);
    return st->be->scan(st->b, prefix, after, limit, items, n, more, err);
}

static int check_op(const struct uc_store_op *op, size_t i, char *err)
{
    char what[32];
    snprintf(what, sizeof(what), "op %zu key", i);
    if (op->type != UC_STORE_OP_PUT && op->type != UC_STORE_OP_DELETE &&
        op->type != UC_STORE_OP_CHECK)
        return uc_err_set(err, UC_EINVAL, "store: op %zu has unknown type %d", i, (int)op->type);
    int rc = check_key(op->key, what, err);
    if (rc == 0 && op->type == UC_STORE_OP_PUT)
        rc = check_val(op->val, op->len, err);
    return rc;
}

int uc_store_txn(struct uc_store *st, const struct uc_store_op *ops, size_t nops, uint64_t *rev,
                 char err[UC_ERR_LEN])
{
    assert(st);
    if (!ops || nops < 1 || nops > UC_STORE_MAX_TXN_OPS)
        return uc_err_set(err, UC_EINVAL, "store: a transaction needs 1..%d ops, got %zu",
                          UC_STORE_MAX_TXN_OPS, ops ? nops : 0);
    for (size_t i = 0; i < nops; i++) {
        int rc = check_op(&ops[i], i, err);
        if (rc < 0)
            return rc;
    }
    return st->be->txn(st->b, ops, nops, rev, err);
}

int uc_store_ping(struct uc_store *st, char err[UC_ERR_LEN])
{
    assert(st);
    return st->be->ping(st->b, err);
}

void uc_store_item_clear(struct uc_store_item *it)
{
    if (!it)
        return;
    uc_free(it->key);
    uc_free(it->val);
    memset(it, 0, sizeof(*it));
}

void uc_store_items_free(struct uc_store_item *items, size_t n)
{
    if (!items)
        return;
    for (size_t i = 0; i < n; i++)
        uc_store_item_clear(&items[i]);
    uc_free(items);
}
