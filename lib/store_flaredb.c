/* store_flaredb.c - the "flaredb:<members>/<namespace>" storage backend:
 * uc_store calls as requests on flaredb's key-value API (docs/api/flaredb.md),
 * keys and values base64url-encoded. The one idea: a write is only re-sent
 * when it cannot apply twice, so every write is given a "fence" before it
 * leaves (an expected revision on a key it writes; for a caller that
 * expects nothing, the revision just read) and a write whose answer was
 * lost is judged by reading its keys back (uc/store.h, "Writes and lost
 * answers"). The connection half is store_flaredb_conn.c. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store_backend.h"
#include "store_flaredb_internal.h"
#include "uc/alloc.h"
#include "uc/crypto.h"

#define KEY_SHOWN 96     /* bytes of a key quoted in an error message */
#define MAX_REFENCES 100 /* re-reads when our own fence keeps conflicting */
#define PING_PATH "/AA"  /* the key "\0": no uc_store key can be it */

/* ---- small helpers ---------------------------------------------------------------- */

static const char *shown_key(const char *key, char buf[KEY_SHOWN + 4])
{
    uc_err_sanitize(buf, KEY_SHOWN + 4, key, KEY_SHOWN);
    return buf;
}

static int nomem(char *err) { return uc_err_set(err, UC_ENOMEM, "store: out of memory"); }

static int proto(char *err, const char *what)
{
    return uc_err_set(err, UC_EPROTO, "store: flaredb answered %s", what);
}

/* "/<base64url key>" for the request path: a new string, NULL on ENOMEM. */
static char *key_path(const char *key)
{
    char *b = uc_b64url_encode(key, strlen(key));
    char *p = b ? uc_asprintf("/%s", b) : NULL;
    uc_free(b);
    return p;
}

/* Set obj[name] to the base64url of n bytes; 0 or UC_ENOMEM. */
static int set_b64(json_t *obj, const char *name, const void *p, size_t n)
{
    char *b = uc_b64url_encode(p ? p : "", n);
    int rc = b && json_object_set_new(obj, name, json_string(b)) == 0 ? 0 : UC_ENOMEM;
    uc_free(b);
    return rc;
}

static int set_int(json_t *obj, const char *name, uint64_t v)
{
    return json_object_set_new(obj, name, json_integer((json_int_t)v)) == 0 ? 0 : UC_ENOMEM;
}

/* A revision field of an answer: an integer >= 1, else 0. */
static uint64_t revision_of(const json_t *j)
{
    json_t *r = json_object_get(j, "revision");
    return json_is_integer(r) && json_integer_value(r) > 0 ? (uint64_t)json_integer_value(r) : 0;
}

/* ---- records ---------------------------------------------------------------------- */

/* Decode base64url field `name` of rec; *p is NUL-terminated. */
static int decode_field(const json_t *rec, const char *name, uint8_t **p, size_t *n, char *err)
{
    const char *s = json_string_value(json_object_get(rec, name));
    int rc = s ? uc_b64url_decode(s, strlen(s), p, n) : UC_EINVAL;
    if (rc == UC_ENOMEM)
        return nomem(err);
    return rc < 0 ? proto(err, "a record with a malformed key or value") : 0;
}

/* Fill *it from {"key","value","revision"}; *it is untouched on failure. */
static int item_from_json(const json_t *rec, struct uc_store_item *it, char *err)
{
    uint8_t *k = NULL, *v = NULL;
    size_t kn = 0, vn = 0;
    uint64_t rev = revision_of(rec);
    int rc = rev ? decode_field(rec, "key", &k, &kn, err) : proto(err, "a record without revision");
    if (rc == 0)
        rc = decode_field(rec, "value", &v, &vn, err);
    if (rc == 0 && (kn == 0 || kn > UC_STORE_MAX_KEY || memchr(k, '\0', kn)))
        rc = uc_err_set(err, UC_EIO,
                        "store: the flaredb namespace holds a key that is not a uc_store key "
                        "(empty, over %d bytes or with a NUL byte)",
                        UC_STORE_MAX_KEY);
    if (rc < 0) {
        uc_free(k);
        uc_free(v);
        return rc;
    }
    *it = (struct uc_store_item){.key = (char *)k, .val = v, .len = vn, .rev = rev};
    return 0;
}

/* ---- reads ------------------------------------------------------------------------ */

/* Linearizable get of `key` within call c. UC_ENOENT when missing. */
static int get_in(struct fdb *f, struct fdb_call *c, const char *key, struct uc_store_item *out,
                  char *err)
{
    char shown[KEY_SHOWN + 4];
    struct fdb_answer a = {0};
    char *path = key_path(key);
    int rc = path ? fdb_request(f, c, FDB_READ, "GET", path, NULL, &a, err) : nomem(err);
    uc_free(path);
    if (rc == 0 && a.status == 200)
        rc = item_from_json(a.json, out, err);
    else if (rc == 0 && a.status == 404)
        rc = uc_err_set(err, UC_ENOENT, "store: key '%s' not found", shown_key(key, shown));
    else if (rc == 0)
        rc = fdb_answer_error(&a, "store: get", err);
    fdb_answer_clear(&a);
    return rc;
}

static int fdb_get(void *b, const char *key, struct uc_store_item *out, char *err)
{
    struct fdb_call c;
    fdb_call_start(b, &c);
    return get_in(b, &c, key, out, err);
}

static int scan_body(const char *prefix, const char *after, size_t limit, json_t **out)
{
    json_t *body = json_object();
    int rc = body ? set_int(body, "limit", limit) : UC_ENOMEM;
    if (rc == 0 && prefix[0])
        rc = set_b64(body, "prefix", prefix, strlen(prefix));
    if (rc == 0 && after[0])
        rc = set_b64(body, "after", after, strlen(after));
    if (rc < 0)
        json_decref(body);
    else
        *out = body;
    return rc;
}

/* The items of a scan answer into a new array of *n. */
static int scan_items(const json_t *ans, size_t limit, struct uc_store_item **items, size_t *n,
                      char *err)
{
    const json_t *arr = json_object_get(ans, "items");
    if (!json_is_array(arr) || json_array_size(arr) > limit ||
        !json_is_boolean(json_object_get(ans, "more")))
        return proto(err, "a scan without items and more, or with too many items");
    size_t cnt = json_array_size(arr);
    struct uc_store_item *v = cnt ? uc_calloc(cnt, sizeof(*v)) : NULL;
    if (cnt && !v)
        return nomem(err);
    for (size_t i = 0; i < cnt; i++) {
        int rc = item_from_json(json_array_get(arr, i), &v[i], err);
        if (rc < 0) {
            uc_store_items_free(v, i);
            return rc;
        }
    }
    *items = v;
    *n = cnt;
    return 0;
}

static int fdb_scan(void *b, const char *prefix, const char *after, size_t limit,
                    struct uc_store_item **items, size_t *n, bool *more, char *err)
{
    struct fdb_call c;
    struct fdb_answer a = {0};
    json_t *body = NULL;
    fdb_call_start(b, &c);
    int rc = scan_body(prefix, after, limit, &body) < 0 ? nomem(err) : 0;
    if (rc == 0)
        rc = fdb_request(b, &c, FDB_READ, "POST", "/scan", body, &a, err);
    json_decref(body);
    if (rc == 0 && a.status != 200)
        rc = fdb_answer_error(&a, "store: scan", err);
    if (rc == 0 && (rc = scan_items(a.json, limit, items, n, err)) == 0)
        *more = json_is_true(json_object_get(a.json, "more"));
    fdb_answer_clear(&a);
    return rc;
}

static int fdb_ping(void *b, char *err)
{
    struct fdb_call c;
    struct fdb_answer a = {0};
    fdb_call_start(b, &c);
    int rc = fdb_request(b, &c, FDB_READ, "GET", PING_PATH, NULL, &a, err);
    if (rc == 0 && a.status != 200 && a.status != 404)
        rc = fdb_answer_error(&a, "store: ping", err);
    fdb_answer_clear(&a);
    return rc;
}

/* ---- write plans ------------------------------------------------------------------ */

/* A write on its way: the caller's ops (borrowed) and the copy we send,
 * whose expect_rev may carry fences we added. */
struct plan {
    const struct uc_store_op *orig;
    struct uc_store_op *ops;
    bool *added; /* ops[i].expect_rev was set by us */
    size_t n;
    bool single;   /* uc_store_put or uc_store_delete rather than a transaction */
    bool want_rev; /* the caller asked for the revision */
};

static bool is_write(const struct uc_store_op *op) { return op->type != UC_STORE_OP_CHECK; }

/* Index of the last write op on `key`, or -1. */
static long last_write(const struct plan *p, const char *key)
{
    for (size_t i = p->n; i-- > 0;)
        if (is_write(&p->ops[i]) && strcmp(p->ops[i].key, key) == 0)
            return (long)i;
    return -1;
}

/* True when applying the plan makes one of its expectations false for
 * ever: a written key expected at a revision (gone once written), or a
 * key expected absent that the plan leaves present. */
static bool fenced(const struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        uint64_t e = p->ops[i].expect_rev;
        long last = e == UC_STORE_ANY ? -1 : last_write(p, p->ops[i].key);
        if (last >= 0 && (e != UC_STORE_ABSENT || p->ops[last].type == UC_STORE_OP_PUT))
            return true;
    }
    return false;
}

/* True when some op on key carries an expectation (the caller's or ours). */
static bool has_expectation(const struct plan *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->ops[i].expect_rev != UC_STORE_ANY && strcmp(p->ops[i].key, key) == 0)
            return true;
    return false;
}

static void plan_reset(struct plan *p)
{
    memcpy(p->ops, p->orig, p->n * sizeof(*p->ops));
    memset(p->added, 0, p->n * sizeof(*p->added));
}

static int plan_init(struct plan *p, const struct uc_store_op *ops, size_t n, bool single,
                     char *err)
{
    *p = (struct plan){.orig = ops, .n = n, .single = single};
    p->ops = uc_malloc(n * sizeof(*p->ops));
    p->added = uc_malloc(n * sizeof(*p->added));
    if (!p->ops || !p->added) {
        uc_free(p->ops);
        uc_free(p->added);
        return nomem(err);
    }
    plan_reset(p);
    return 0;
}

static void plan_clear(struct plan *p)
{
    uc_free(p->ops);
    uc_free(p->added);
}

/* Give the plan a fence when it has none: read the revision of the keys it
 * writes without expecting anything, one at a time until one fences it.
 * *missing tells a single delete that its key is gone. */
static int add_fence(struct fdb *f, struct fdb_call *c, struct plan *p, bool *missing, char *err)
{
    *missing = false;
    for (size_t i = 0; i < p->n && !fenced(p); i++) {
        if (!is_write(&p->ops[i]) || has_expectation(p, p->ops[i].key))
            continue;
        struct uc_store_item it = {0};
        int rc = get_in(f, c, p->ops[i].key, &it, err);
        if (rc < 0 && rc != UC_ENOENT)
            return rc;
        p->ops[i].expect_rev = rc == 0 ? it.rev : UC_STORE_ABSENT;
        p->added[i] = true;
        *missing = rc == UC_ENOENT;
        uc_store_item_clear(&it);
    }
    return 0;
}

/* ---- sending ---------------------------------------------------------------------- */

/* "value" (a put's) and "expect_revision" (when set) into o. */
static int set_write(json_t *o, const struct uc_store_op *op)
{
    int rc = op->type == UC_STORE_OP_PUT ? set_b64(o, "value", op->val, op->len) : 0;
    if (rc == 0 && op->expect_rev != UC_STORE_ANY)
        rc = set_int(o, "expect_revision", op->expect_rev);
    return rc;
}

/* o when rc is 0; else NULL, o released. */
static json_t *built(json_t *o, int rc)
{
    if (rc < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *op_json(const struct uc_store_op *op)
{
    static const char *const names[] = {"put", "delete", "check"};
    json_t *o = json_pack("{ss}", "op", names[op->type]);
    int rc = o ? set_b64(o, "key", op->key, strlen(op->key)) : UC_ENOMEM;
    return built(o, rc == 0 ? set_write(o, op) : rc);
}

/* The body of a single put: the key is in the path. */
static json_t *put_json(const struct uc_store_op *op)
{
    json_t *o = json_object();
    return built(o, o ? set_write(o, op) : UC_ENOMEM);
}

static json_t *txn_json(const struct plan *p)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < p->n; i++) {
        if (json_array_append_new(arr, op_json(&p->ops[i])) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr ? json_pack("{so}", "ops", arr) : NULL;
}

/* Send the plan once (with member failover) and leave the answer in *a. */
static int send_plan(struct fdb *f, struct fdb_call *c, const struct plan *p, enum fdb_kind kind,
                     struct fdb_answer *a, char *err)
{
    const struct uc_store_op *op = &p->ops[0];
    json_t *body = NULL;
    char *path = NULL;
    const char *method = "POST";
    if (!p->single) {
        body = txn_json(p);
        path = body ? uc_strdup("/txn") : NULL;
    } else if (op->type == UC_STORE_OP_PUT) {
        method = "PUT";
        body = put_json(op);
        path = body ? key_path(op->key) : NULL;
    } else {
        method = "DELETE";
        char *k = key_path(op->key);
        path = !k || op->expect_rev == UC_STORE_ANY
                   ? k
                   : uc_asprintf("%s?expect_revision=%" PRIu64, k, op->expect_rev);
        if (path != k)
            uc_free(k);
    }
    int rc = path ? fdb_request(f, c, kind, method, path, body, a, err) : nomem(err);
    json_decref(body);
    uc_free(path);
    return rc;
}

/* ---- answers to writes ------------------------------------------------------------ */

/* The op of the plan whose check failed: from the 409's error.key when it
 * has one, else by reading the expected keys in order (the first whose
 * state differs). -1 when neither tells. */
static long failed_op(struct fdb *f, struct fdb_call *c, const struct plan *p,
                      const struct fdb_answer *a)
{
    const char *b = json_string_value(json_object_get(json_object_get(a->json, "error"), "key"));
    uint8_t *k = NULL;
    size_t kn = 0;
    if (b && uc_b64url_decode(b, strlen(b), &k, &kn) == 0) {
        for (size_t i = 0; i < p->n; i++) {
            if (strlen(p->ops[i].key) == kn && memcmp(p->ops[i].key, k, kn) == 0) {
                uc_free(k);
                return (long)i;
            }
        }
    }
    uc_free(k);
    for (size_t i = 0; i < p->n; i++) {
        uint64_t e = p->ops[i].expect_rev;
        struct uc_store_item it = {0};
        if (e == UC_STORE_ANY)
            continue;
        int rc = get_in(f, c, p->ops[i].key, &it, NULL);
        bool holds = (rc == UC_ENOENT && e == UC_STORE_ABSENT) || (rc == 0 && it.rev == e);
        uc_store_item_clear(&it);
        if (rc == 0 || rc == UC_ENOENT) {
            if (!holds)
                return (long)i;
        } else {
            return -1;
        }
    }
    return -1;
}

/* True when some op on the key of ops[i] got its expectation from us. */
static bool fence_is_ours(const struct plan *p, long i)
{
    for (size_t j = 0; i >= 0 && j < p->n; j++)
        if (p->added[j] && strcmp(p->ops[j].key, p->ops[i].key) == 0)
            return true;
    return false;
}

/* Does key's current state match what op (its last write) leaves? For a
 * put, *rev gets the key's revision. Returns 1, 0, or a negative code. */
static int matches(struct fdb *f, struct fdb_call *c, const struct uc_store_op *op, uint64_t *rev,
                   char *err)
{
    struct uc_store_item it = {0};
    int rc = get_in(f, c, op->key, &it, err);
    if (rc == UC_ENOENT)
        return op->type == UC_STORE_OP_DELETE;
    if (rc < 0)
        return rc;
    bool same = op->type == UC_STORE_OP_PUT && it.len == op->len &&
                (op->len == 0 || memcmp(it.val, op->val, op->len) == 0);
    *rev = it.rev;
    uc_store_item_clear(&it);
    return same;
}

/* After a lost answer and then a conflict: read the keys back. 0 with *rev
 * when they hold what the plan writes (puts at one shared revision);
 * UC_ETIMEDOUT when that cannot be shown. */
static int read_back(struct fdb *f, struct fdb_call *c, const struct plan *p, uint64_t *rev,
                     char *err)
{
    uint64_t shared = 0;
    bool all = true;
    for (size_t i = 0; all && i < p->n; i++) {
        uint64_t r = 0;
        if (!is_write(&p->ops[i]) || last_write(p, p->ops[i].key) != (long)i)
            continue;
        int m = matches(f, c, &p->ops[i], &r, err);
        if (m < 0)
            return uc_err_prefix(err, UC_ETIMEDOUT,
                                 "store: flaredb: outcome unknown (an answer was lost and "
                                 "reading the keys back failed)");
        all = m == 1 && (p->ops[i].type == UC_STORE_OP_DELETE || !shared || r == shared);
        if (p->ops[i].type == UC_STORE_OP_PUT)
            shared = r;
    }
    /* Deletes only: gone is gone, but which revision removed them is lost. */
    if (all && (shared || p->single || !p->want_rev)) {
        *rev = shared;
        return 0;
    }
    return uc_err_set(err, UC_ETIMEDOUT,
                      "store: flaredb: outcome unknown: an answer was lost, the write was re-sent "
                      "and conflicted, and the keys do not show it applied (it may have been "
                      "applied and overwritten since); read them to find out");
}

#define REFENCE 1 /* conflict() result: our own fence went stale, plan again */

static int conflict(struct fdb *f, struct fdb_call *c, const struct plan *p,
                    const struct fdb_answer *a, uint64_t *rev, char *err)
{
    char shown[KEY_SHOWN + 4];
    if (c->unknown)
        return read_back(f, c, p, rev, err);
    long i = failed_op(f, c, p, a);
    if (fence_is_ours(p, i))
        return REFENCE;
    if (i < 0)
        return fdb_answer_error(a, "store: revision check failed", err);
    return uc_err_set(err, UC_ECONFLICT, "store: key '%s' is not at the expected revision",
                      shown_key(p->ops[i].key, shown));
}

/* A plan of only checks, or a delete that expects its key absent (it can
 * only fail), changes nothing: it may be sent again freely. */
static bool never_writes(const struct plan *p)
{
    if (p->single)
        return p->ops[0].type == UC_STORE_OP_DELETE && p->ops[0].expect_rev == UC_STORE_ABSENT;
    for (size_t i = 0; i < p->n; i++)
        if (is_write(&p->ops[i]))
            return false;
    return true;
}

/* Turn the answer to a sent plan into the call's result. */
static int judge_answer(struct fdb *f, struct fdb_call *c, const struct plan *p,
                        const struct fdb_answer *a, uint64_t *rev, char *err)
{
    char shown[KEY_SHOWN + 4];
    bool del = p->single && p->ops[0].type == UC_STORE_OP_DELETE;
    if (a->status == 200 || a->status == 201) {
        json_t *r = json_object_get(a->json, "revision");
        *rev = revision_of(a->json);
        /* checks alone answer the current revision, 0 in an empty namespace */
        bool ok = *rev || (never_writes(p) && json_is_integer(r) && json_integer_value(r) == 0);
        return ok ? 0 : proto(err, "a write without its revision");
    }
    if (a->status == 409)
        return conflict(f, c, p, a, rev, err);
    if (a->status == 404 && del && c->unknown)
        return 0; /* the lost attempt, or another delete of that revision: gone either way */
    if (a->status == 404 && del)
        return uc_err_set(err, UC_ENOENT, "store: key '%s' not found",
                          shown_key(p->ops[0].key, shown));
    int rc = fdb_answer_error(a, "store: write", err);
    if (c->unknown)
        return uc_err_prefix(err, UC_ETIMEDOUT, "store: outcome unknown (an answer was lost)");
    return rc == UC_ENOENT ? proto(err, "404 to a write (a wrong URL, or a namespace restricted "
                                        "to another project)")
                           : rc;
}

/* Fence, send, judge; plan again while our own fence goes stale. */
static int run_plan(struct fdb *f, struct plan *p, uint64_t *rev, char *err)
{
    char shown[KEY_SHOWN + 4];
    struct fdb_call c;
    fdb_call_start(f, &c);
    for (int tries = 0; tries < MAX_REFENCES; tries++) {
        bool missing = false;
        struct fdb_answer a = {0};
        plan_reset(p);
        int rc = add_fence(f, &c, p, &missing, err);
        if (rc == 0 && missing && p->single && p->ops[0].type == UC_STORE_OP_DELETE)
            return uc_err_set(err, UC_ENOENT, "store: key '%s' not found",
                              shown_key(p->ops[0].key, shown));
        enum fdb_kind kind = never_writes(p) ? FDB_READ : fenced(p) ? FDB_WRITE : FDB_WRITE_ONCE;
        if (rc == 0)
            rc = send_plan(f, &c, p, kind, &a, err);
        if (rc == 0)
            rc = judge_answer(f, &c, p, &a, rev, err);
        fdb_answer_clear(&a);
        if (rc != REFENCE)
            return rc;
    }
    return uc_err_set(err, UC_EUNAVAIL,
                      "store: the keys changed under every one of %d attempts to write them",
                      MAX_REFENCES);
}

static int write_ops(void *b, const struct uc_store_op *ops, size_t n, bool single, uint64_t *rev,
                     char *err)
{
    struct plan p;
    uint64_t got = 0;
    int rc = plan_init(&p, ops, n, single, err);
    if (rc < 0)
        return rc;
    p.want_rev = rev != NULL;
    rc = run_plan(b, &p, &got, err);
    plan_clear(&p);
    if (rc == 0 && rev)
        *rev = got;
    return rc;
}

/* ---- the backend ------------------------------------------------------------------ */

static int fdb_put(void *b, const char *key, const void *val, size_t len, uint64_t expect_rev,
                   uint64_t *new_rev, char *err)
{
    struct uc_store_op op = {UC_STORE_OP_PUT, key, val, len, expect_rev};
    return write_ops(b, &op, 1, true, new_rev, err);
}

static int fdb_del(void *b, const char *key, uint64_t expect_rev, char *err)
{
    struct uc_store_op op = {UC_STORE_OP_DELETE, key, NULL, 0, expect_rev};
    return write_ops(b, &op, 1, true, NULL, err);
}

static int fdb_txn(void *b, const struct uc_store_op *ops, size_t nops, uint64_t *rev, char *err)
{
    return write_ops(b, ops, nops, false, rev, err);
}

static int fdb_open(void **b, const char *rest, const struct uc_store_opts *opts, char *err)
{
    struct fdb *f = NULL;
    int rc = fdb_create(&f, rest, opts, err);
    if (rc == 0)
        *b = f;
    return rc;
}

static void fdb_close(void *b) { fdb_destroy(b); }

const struct uc_store_backend uc_store_flaredb_backend = {
    .scheme = "flaredb",
    .open_opts = fdb_open,
    .close = fdb_close,
    .get = fdb_get,
    .put = fdb_put,
    .del = fdb_del,
    .scan = fdb_scan,
    .txn = fdb_txn,
    .ping = fdb_ping,
};
