/* db_entry.c - the binary form of an "sql" log entry. Every member decodes
 * and applies every entry, so the entry is made cheap to read: each distinct
 * statement text appears once (a batch of one INSERT repeated is one text),
 * parameters carry their SQLite type, and decoding allocates two arrays and
 * copies nothing. JSON entries stay valid; the first byte (0xF5, which can
 * start no JSON text) tells the two apart.
 *
 *   F5 01 'S' flags                      magic, version, op; flags bit 0 =
 *                                        transaction, bits 1-2 = allow class
 *   uv max_steps
 *   uv nhidden { uv len, bytes }         table names out of reach
 *   uv ntexts  { uv len, bytes, 00 }     distinct statement texts
 *   uv nstmts  { uv text, uv nparams { tag, value } }
 *   tag 0 null | 1 int (zigzag uv) | 2 real (8 bytes, little-endian IEEE
 *   754) | 3 text (uv len, bytes) | 4 blob (uv len, bytes)
 *
 * uv is an unsigned LEB128 varint. A decoder that meets anything else
 * (a short entry, trailing bytes, an index out of range, a limit passed)
 * refuses the entry the same way on every member. */
#include <string.h>

#include "db_internal.h"
#include "uc/alloc.h"
#include "uc/json.h"

#define MAGIC 0xF5
#define VERSION 1
#define OP_SQL 'S'
#define MAX_SQL (1 << 20) /* as a JSON request's statement text */
#define MAX_PARAMS 32766
#define MAX_HIDDEN 100000

enum tag { T_NULL, T_INT, T_REAL, T_TEXT, T_BLOB };

bool flaredb_db_entry_binary(const void *p, size_t n)
{
    return n > 0 && *(const unsigned char *)p == MAGIC;
}

/* ---- encode ---------------------------------------------------------------------- */

/* Appends fail stickily (b->failed), checked once when the entry is done. */
static void put_raw(struct uc_buf *b, const void *p, size_t n) { (void)uc_buf_append(b, p, n); }

static void put_byte(struct uc_buf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put_raw(b, &c, 1);
}

static void put_uv(struct uc_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (unsigned char)(v & 0x7F);
        v >>= 7;
        tmp[n] |= v ? 0x80 : 0;
        n++;
    } while (v);
    put_raw(b, tmp, n);
}

static void put_bytes(struct uc_buf *b, const void *p, size_t n)
{
    put_uv(b, n);
    put_raw(b, p, n);
}

static int put_param(struct uc_buf *b, const struct sql_param *v, size_t si, size_t k, char *err)
{
    unsigned char le[8];
    uint64_t bits;
    switch (v->type) {
    case SQLITE_NULL:
        put_byte(b, T_NULL);
        return 0;
    case SQLITE_INTEGER:
        put_byte(b, T_INT);
        put_uv(b, ((uint64_t)v->i << 1) ^ (v->i < 0 ? UINT64_MAX : 0)); /* zigzag */
        return 0;
    case SQLITE_FLOAT:
        memcpy(&bits, &v->d, sizeof(bits));
        for (int i = 0; i < 8; i++)
            le[i] = (unsigned char)(bits >> (8 * i));
        put_byte(b, T_REAL);
        put_raw(b, le, sizeof(le));
        return 0;
    case SQLITE_TEXT:
    case SQLITE_BLOB:
        put_byte(b, v->type == SQLITE_TEXT ? T_TEXT : T_BLOB);
        put_bytes(b, v->p, v->n);
        return 0;
    default:
        return uc_err_set(err, UC_EINVAL, "statements[%zu]: parameter %zu has no SQL type", si,
                          k + 1);
    }
}

/* Index of statement si's text among those before it with the same bytes
 * (text[] maps each distinct text to its first statement). */
static size_t text_index(const struct sql_req *req, const size_t *first, size_t ntexts, size_t si)
{
    const struct sql_stmt *s = &req->stmts[si];
    for (size_t t = 0; t < ntexts; t++) {
        const struct sql_stmt *o = &req->stmts[first[t]];
        if (o->len == s->len && memcmp(o->sql, s->sql, s->len) == 0)
            return t;
    }
    return ntexts;
}

static void put_header(struct uc_buf *b, const struct sql_req *req)
{
    size_t i;
    const json_t *h;
    put_byte(b, MAGIC);
    put_byte(b, VERSION);
    put_byte(b, OP_SQL);
    put_byte(b, (req->tx ? 1u : 0u) | ((unsigned)req->allow << 1));
    put_uv(b, (uint64_t)req->max_steps);
    put_uv(b, json_array_size(req->hidden));
    json_array_foreach(req->hidden, i, h)
    {
        put_bytes(b, json_string_value(h), json_string_length(h));
    }
}

int flaredb_db_entry_encode(const struct sql_req *req, void **buf, size_t *len, char *err)
{
    struct uc_buf b = {0};
    size_t *first = uc_calloc(req->n ? req->n : 1, sizeof(*first));
    size_t *which = uc_calloc(req->n ? req->n : 1, sizeof(*which));
    size_t ntexts = 0;
    int rc = first && which ? 0 : uc_err_set(err, UC_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < req->n; i++) {
        which[i] = text_index(req, first, ntexts, i);
        if (which[i] == ntexts)
            first[ntexts++] = i;
    }
    if (rc == 0) {
        put_header(&b, req);
        put_uv(&b, ntexts);
        for (size_t t = 0; t < ntexts; t++) {
            put_bytes(&b, req->stmts[first[t]].sql, req->stmts[first[t]].len);
            put_byte(&b, 0);
        }
        put_uv(&b, req->n);
    }
    for (size_t i = 0; rc == 0 && i < req->n; i++) {
        put_uv(&b, which[i]);
        put_uv(&b, req->stmts[i].np);
        for (size_t k = 0; rc == 0 && k < req->stmts[i].np; k++)
            rc = put_param(&b, &req->stmts[i].params[k], i, k, err);
    }
    uc_free(first);
    uc_free(which);
    if (rc == 0 && b.failed)
        rc = uc_err_set(err, UC_ENOMEM, "out of memory");
    if (rc < 0) {
        uc_free(b.data);
        return rc;
    }
    *buf = b.data;
    *len = b.len;
    return 0;
}

int flaredb_db_encode(const json_t *cmd, void **buf, size_t *len, char err[UC_ERR_LEN])
{
    const char *op = json_string_value(json_object_get(cmd, "op"));
    if (!op || strcmp(op, "sql") != 0) {
        char *text = uc_json_dumps(cmd);
        if (!text)
            return uc_err_set(err, UC_ENOMEM, "out of memory");
        *buf = text;
        *len = strlen(text);
        return 0;
    }
    struct sql_req req;
    int rc = flaredb_db_sql_parse(cmd, &req, err);
    if (rc == 0)
        rc = flaredb_db_entry_encode(&req, buf, len, err);
    flaredb_db_sql_clear(&req);
    return rc;
}

int flaredb_sql_encode(const struct flaredb_sql *q, enum flaredb_db_class allow, int64_t max_steps,
                       void **buf, size_t *len, char err[UC_ERR_LEN])
{
    struct sql_req req = q->req; /* a shallow copy: only the two fields differ */
    req.allow = allow < FLAREDB_DB_WRITE ? FLAREDB_DB_WRITE : allow;
    req.max_steps = max_steps;
    return flaredb_db_entry_encode(&req, buf, len, err);
}

/* ---- decode ---------------------------------------------------------------------- */

/* A cursor over the entry; `bad` names the first thing found wrong. */
struct rd {
    const unsigned char *p, *end;
    const char *bad;
};

static uint64_t get_uv(struct rd *r, uint64_t max, const char *what)
{
    uint64_t v = 0;
    for (unsigned shift = 0; !r->bad; shift += 7) {
        if (r->p == r->end || shift > 63) {
            r->bad = what;
            break;
        }
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80))
            break;
    }
    if (!r->bad && v > max)
        r->bad = what;
    return r->bad ? 0 : v;
}

static const unsigned char *get_raw(struct rd *r, size_t n, const char *what)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = r->bad ? r->bad : what;
        return NULL;
    }
    const unsigned char *at = r->p;
    r->p += n;
    return at;
}

/* A length-prefixed byte string of at most `max` bytes. */
static const unsigned char *get_bytes(struct rd *r, size_t max, size_t *n, const char *what)
{
    *n = (size_t)get_uv(r, max, what);
    return get_raw(r, *n, what);
}

static void get_param(struct rd *r, struct sql_param *v)
{
    const unsigned char *p = get_raw(r, 1, "a parameter");
    uint64_t u;
    *v = (struct sql_param){.type = SQLITE_NULL};
    switch (p ? *p : 0xFF) {
    case T_NULL:
        return;
    case T_INT:
        u = get_uv(r, UINT64_MAX, "an integer");
        *v = (struct sql_param){.type = SQLITE_INTEGER, .i = (int64_t)(u >> 1) ^ -(int64_t)(u & 1)};
        return;
    case T_REAL:
        if ((p = get_raw(r, 8, "a real"))) {
            u = 0;
            for (int i = 0; i < 8; i++)
                u |= (uint64_t)p[i] << (8 * i);
            v->type = SQLITE_FLOAT;
            memcpy(&v->d, &u, sizeof(v->d));
        }
        return;
    case T_TEXT:
    case T_BLOB:
        v->type = *p == T_TEXT ? SQLITE_TEXT : SQLITE_BLOB;
        v->p = get_bytes(r, SIZE_MAX, &v->n, "a text or blob");
        return;
    default:
        r->bad = r->bad ? r->bad : "a parameter's type";
    }
}

/* The header: flags, limits and the hidden list (into req->own_hidden). */
static int get_header(struct rd *r, struct sql_req *req, char *err)
{
    const unsigned char *h = get_raw(r, 4, "the header");
    if (!h || h[0] != MAGIC || h[1] != VERSION || h[2] != OP_SQL || (h[3] & ~7u) ||
        (h[3] >> 1) < FLAREDB_DB_WRITE) {
        r->bad = r->bad ? r->bad : "the header";
        return 0;
    }
    req->tx = h[3] & 1;
    req->allow = (enum flaredb_db_class)(h[3] >> 1);
    req->max_steps = (int64_t)get_uv(r, FLAREDB_DB_MAX_STEPS, "max_steps");
    if (!r->bad && req->max_steps < 1)
        r->bad = "max_steps";
    size_t nh = (size_t)get_uv(r, MAX_HIDDEN, "the hidden list");
    if (nh && !r->bad && !(req->own_hidden = json_array()))
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    for (size_t i = 0; i < nh && !r->bad; i++) {
        size_t n;
        const unsigned char *name = get_bytes(r, FLAREDB_DB_MAX_TABLE_NAME, &n, "a hidden name");
        if (name && n == 0)
            r->bad = "a hidden name";
        if (!r->bad &&
            json_array_append_new(req->own_hidden, json_stringn_nocheck((const char *)name, n)) < 0)
            return uc_err_set(err, UC_ENOMEM, "out of memory");
    }
    req->hidden = req->own_hidden;
    return 0;
}

/* The statements, once to count their params (fill false) and once to
 * fill req (fill true), from the same start. */
static void get_stmts(struct rd *r, struct sql_req *req, const unsigned char **texts,
                      const size_t *tlen, size_t ntexts, bool fill, size_t *nparams)
{
    size_t n = (size_t)get_uv(r, FLAREDB_DB_MAX_STATEMENTS, "the statement count"), at = 0;
    if (!r->bad && n == 0)
        r->bad = "the statement count";
    for (size_t i = 0; i < n && !r->bad; i++) {
        size_t t = (size_t)get_uv(r, ntexts ? ntexts - 1 : 0, "a text index");
        size_t np = (size_t)get_uv(r, MAX_PARAMS, "a parameter count");
        if (!ntexts)
            r->bad = "a text index";
        if (fill && !r->bad)
            req->stmts[i] = (struct sql_stmt){
                .sql = (const char *)texts[t], .len = tlen[t], .np = np, .params = req->pool + at};
        for (size_t k = 0; k < np && !r->bad; k++) {
            struct sql_param v;
            get_param(r, &v);
            if (fill)
                req->pool[at] = v;
            at++;
        }
    }
    if (!r->bad && r->p != r->end)
        r->bad = "trailing bytes";
    req->n = n;
    *nparams = at;
}

int flaredb_db_entry_decode(const void *p, size_t n, struct sql_req *req, char *err)
{
    struct rd r = {.p = p, .end = (const unsigned char *)p + n};
    *req = (struct sql_req){0};
    int rc = get_header(&r, req, err);
    size_t ntexts = (size_t)get_uv(&r, FLAREDB_DB_MAX_STATEMENTS, "the text count");
    const unsigned char *texts[FLAREDB_DB_MAX_STATEMENTS];
    size_t tlen[FLAREDB_DB_MAX_STATEMENTS];
    for (size_t t = 0; rc == 0 && t < ntexts && !r.bad; t++) {
        texts[t] = get_bytes(&r, MAX_SQL, &tlen[t], "a statement text");
        const unsigned char *nul = get_raw(&r, 1, "a statement text");
        if (nul && (*nul || tlen[t] == 0))
            r.bad = "a statement text";
    }
    struct rd body = r;
    size_t np = 0;
    if (rc == 0)
        get_stmts(&r, req, texts, tlen, ntexts, false, &np);
    if (rc == 0 && !r.bad) {
        req->stmts = uc_calloc(req->n, sizeof(*req->stmts));
        req->pool = uc_calloc(np ? np : 1, sizeof(*req->pool));
        if (!req->stmts || !req->pool)
            rc = uc_err_set(err, UC_ENOMEM, "out of memory");
        else
            get_stmts(&body, req, texts, tlen, ntexts, true, &np);
    }
    if (rc == 0 && r.bad)
        rc = uc_err_set(err, UC_EINVAL, "malformed binary entry: bad %s", r.bad);
    return rc;
}
