/* db_sql_body.c - POST /api/v1/sql bodies of the usual shape read straight
 * into a flattened request. A batch of 100 inserts is ~17 KB of JSON; a
 * general parser builds ~800 objects for it and frees them again, which
 * cost more than SQLite's work on the batch. This reader builds nothing but
 * the flattened request.
 *
 * The one rule: it only accepts what it is sure the general path (jansson,
 * then the field rules) accepts the same way, and hands everything else back
 * (FLAREDB_SQL_GENERAL): unknown or repeated keys, blobs, surrogate escapes,
 * numbers jansson would refuse, any malformed input. So every error a client
 * sees still comes from the general path, with its wording. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"
#include "uc/alloc.h"
#include "uc/json.h"

#define MAX_SQL (1 << 20) /* as db_stmt.c's field rules */
#define MAX_PARAMS 32766
#define MAX_CONSISTENCY 32
#define MAX_NUMBER 64 /* longer number tokens go the general way */

struct rdr {
    const char *p, *end;
    char *out; /* next free byte of the arena */
    bool bail; /* not the usual shape */
};

static void skip_ws(struct rdr *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* Consume `c` after whitespace. */
static bool eat(struct rdr *r, char c)
{
    skip_ws(r);
    if (r->p < r->end && *r->p == c) {
        r->p++;
        return true;
    }
    return false;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* One escape after the backslash into the arena. */
static void unescape(struct rdr *r)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    char c = r->p < r->end ? *r->p++ : 0;
    const char *k = c ? strchr(from, c) : NULL;
    if (k) {
        *r->out++ = to[k - from];
        return;
    }
    int u = c == 'u' && r->end - r->p >= 4 ? hex4(r->p) : -1;
    /* NUL and surrogates: the general path decides */
    if (u <= 0 || (u >= 0xD800 && u <= 0xDFFF)) {
        r->bail = true;
        return;
    }
    r->p += 4;
    if (u < 0x80) {
        *r->out++ = (char)u;
    } else if (u < 0x800) {
        *r->out++ = (char)(0xC0 | (u >> 6));
        *r->out++ = (char)(0x80 | (u & 0x3F));
    } else {
        *r->out++ = (char)(0xE0 | (u >> 12));
        *r->out++ = (char)(0x80 | ((u >> 6) & 0x3F));
        *r->out++ = (char)(0x80 | (u & 0x3F));
    }
}

/* Bytes that end a plain run inside a string: quote, backslash, controls. */
static const bool stops[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1,
    [0x07] = 1, [0x08] = 1, [0x09] = 1, [0x0A] = 1, [0x0B] = 1, [0x0C] = 1, [0x0D] = 1,
    [0x0E] = 1, [0x0F] = 1, [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1,
    [0x15] = 1, [0x16] = 1, [0x17] = 1, [0x18] = 1, [0x19] = 1, [0x1A] = 1, [0x1B] = 1,
    [0x1C] = 1, [0x1D] = 1, [0x1E] = 1, [0x1F] = 1, ['"'] = 1,  ['\\'] = 1,
};

/* A string into the arena (NUL-terminated); the body was checked as UTF-8,
 * and a decoded string never outgrows its quoted form. */
static const char *get_str(struct rdr *r, size_t *len)
{
    if (!eat(r, '"')) {
        r->bail = true;
        return NULL;
    }
    char *start = r->out;
    while (!r->bail) {
        /* copy the plain run up to the next quote, backslash or control */
        const char *q = r->p;
        while (q < r->end && !stops[(unsigned char)*q])
            q++;
        memcpy(r->out, r->p, (size_t)(q - r->p));
        r->out += q - r->p;
        r->p = q;
        if (r->p == r->end || (unsigned char)*r->p < 0x20) {
            r->bail = true;
            break;
        }
        if (*r->p++ == '"')
            break;
        unescape(r);
    }
    if (r->bail)
        return NULL;
    *r->out++ = '\0';
    *len = (size_t)(r->out - 1 - start);
    return start;
}

/* A number as jansson reads it: an integer without fraction or exponent,
 * else a real; the ones it refuses (overflow, leading zeros) bail. */
static void get_number(struct rdr *r, struct sql_param *v)
{
    const char *s = r->p;
    bool real = false;
    if (r->p < r->end && *r->p == '-')
        r->p++;
    const char *digits = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    size_t nd = (size_t)(r->p - digits);
    if (nd == 0 || (nd > 1 && *digits == '0')) {
        r->bail = true;
        return;
    }
    if (r->p < r->end && *r->p == '.') {
        real = true;
        const char *f = ++r->p;
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
        r->bail |= r->p == f;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        real = true;
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        const char *e = r->p;
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
            r->p++;
        r->bail |= r->p == e;
    }
    size_t n = (size_t)(r->p - s);
    if (r->bail || n > MAX_NUMBER) {
        r->bail = true;
        return;
    }
    char tok[MAX_NUMBER + 1];
    memcpy(tok, s, n);
    tok[n] = '\0';
    errno = 0;
    if (real) {
        double d = strtod(tok, NULL);
        r->bail |= !isfinite(d);
        *v = (struct sql_param){.type = SQLITE_FLOAT, .d = d};
    } else {
        long long i = strtoll(tok, NULL, 10);
        r->bail |= errno == ERANGE;
        *v = (struct sql_param){.type = SQLITE_INTEGER, .i = i};
    }
}

static bool word(struct rdr *r, const char *w, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return false;
    r->p += n;
    return true;
}

/* A parameter: a string, number, true, false or null (a blob bails). */
static void get_param(struct rdr *r, struct sql_param *v)
{
    skip_ws(r);
    char c = r->p < r->end ? *r->p : 0;
    *v = (struct sql_param){.type = SQLITE_NULL};
    if (c == '"') {
        v->type = SQLITE_TEXT;
        v->p = get_str(r, &v->n);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        get_number(r, v);
    } else if (word(r, "true", 4)) {
        *v = (struct sql_param){.type = SQLITE_INTEGER, .i = 1};
    } else if (word(r, "false", 5)) {
        *v = (struct sql_param){.type = SQLITE_INTEGER, .i = 0};
    } else if (!word(r, "null", 4)) {
        r->bail = true;
    }
}

/* Growing arrays of the request being read. */
struct acc {
    struct sql_stmt *stmts;
    size_t n, cap;
    struct sql_param *params;
    size_t np, pcap;
    size_t *first; /* stmts[i]'s first param, fixed up at the end */
    bool oom;
};

static struct sql_param *new_param(struct acc *a)
{
    if (a->np == a->pcap) {
        size_t cap = a->pcap ? a->pcap * 2 : 64;
        struct sql_param *p = uc_realloc(a->params, cap * sizeof(*p));
        if (!p) {
            a->oom = true;
            return NULL;
        }
        a->params = p;
        a->pcap = cap;
    }
    return &a->params[a->np++];
}

static void get_params(struct rdr *r, struct acc *a, struct sql_stmt *st)
{
    if (!eat(r, '['))
        r->bail = true;
    if (r->bail || eat(r, ']'))
        return;
    do {
        struct sql_param *v = new_param(a);
        if (!v)
            return;
        get_param(r, v);
        st->np++;
    } while (!r->bail && eat(r, ','));
    r->bail |= !eat(r, ']') || st->np > MAX_PARAMS;
}

/* {"sql": "...", "params": [...]} in either order, each at most once. */
static void get_stmt(struct rdr *r, struct acc *a)
{
    if (a->n == FLAREDB_DB_MAX_STATEMENTS || !eat(r, '{')) {
        r->bail = true;
        return;
    }
    struct sql_stmt *st = &a->stmts[a->n];
    *st = (struct sql_stmt){0};
    a->first[a->n++] = a->np;
    bool seen_params = false;
    do {
        size_t klen;
        const char *k = get_str(r, &klen);
        if (!k || !eat(r, ':')) {
            r->bail = true;
        } else if (strcmp(k, "sql") == 0 && !st->sql) {
            st->sql = get_str(r, &st->len);
            r->bail |= !st->sql || st->len == 0 || st->len > MAX_SQL;
        } else if (strcmp(k, "params") == 0 && !seen_params) {
            seen_params = true;
            get_params(r, a, st);
        } else {
            r->bail = true;
        }
    } while (!r->bail && !a->oom && eat(r, ','));
    r->bail |= !eat(r, '}') || !st->sql;
}

static void get_stmts(struct rdr *r, struct acc *a)
{
    if (!eat(r, '[') || eat(r, ']')) { /* an empty list is refused by the general path */
        r->bail = true;
        return;
    }
    do
        get_stmt(r, a);
    while (!r->bail && !a->oom && eat(r, ','));
    r->bail |= !eat(r, ']');
}

static bool get_bool(struct rdr *r)
{
    skip_ws(r);
    if (word(r, "true", 4))
        return true;
    r->bail |= !word(r, "false", 5);
    return false;
}

/* The top-level object; `seen` guards against repeated keys. */
static void get_body(struct rdr *r, struct acc *a, struct flaredb_sql_body *top)
{
    unsigned seen = 0;
    if (!eat(r, '{')) {
        r->bail = true;
        return;
    }
    do {
        size_t klen;
        const char *k = get_str(r, &klen);
        static const char *const keys[] = {"statements", "transaction", "consistency",
                                           "confirm_destructive"};
        unsigned which = 0;
        while (k && which < 4 && strcmp(k, keys[which]) != 0)
            which++;
        if (!k || which == 4 || (seen & (1u << which)) || !eat(r, ':')) {
            r->bail = true;
            break;
        }
        seen |= 1u << which;
        if (which == 0) {
            get_stmts(r, a);
        } else if (which == 1) {
            top->transaction = get_bool(r);
        } else if (which == 2) {
            size_t n;
            top->consistency = get_str(r, &n);
            r->bail |= !top->consistency || n == 0 || n > MAX_CONSISTENCY;
        } else {
            top->confirm_destructive = get_bool(r);
        }
    } while (!r->bail && !a->oom && eat(r, ','));
    r->bail |= !eat(r, '}') || !(seen & 1u);
    skip_ws(r);
    r->bail |= r->p != r->end;
}

static void acc_free(struct acc *a)
{
    uc_free(a->stmts);
    uc_free(a->params);
    uc_free(a->first);
}

int flaredb_sql_parse_fast(const char *body, size_t len, struct flaredb_sql **out,
                           struct flaredb_sql_body *top)
{
    *top = (struct flaredb_sql_body){.transaction = true};
    if (!flaredb_db_utf8_ok((const unsigned char *)body, len))
        return FLAREDB_SQL_GENERAL;
    struct flaredb_sql *q = uc_calloc(1, sizeof(*q));
    struct acc a = {.stmts = uc_calloc(FLAREDB_DB_MAX_STATEMENTS, sizeof(*a.stmts)),
                    .first = uc_calloc(FLAREDB_DB_MAX_STATEMENTS, sizeof(*a.first))};
    char *arena = uc_malloc(len + 1);
    if (!q || !arena || !a.stmts || !a.first) {
        uc_free(q);
        uc_free(arena);
        acc_free(&a);
        return UC_ENOMEM;
    }
    struct rdr r = {.p = body, .end = body + len, .out = arena};
    get_body(&r, &a, top);
    if (r.bail || a.oom) {
        uc_free(q);
        uc_free(arena);
        acc_free(&a);
        *top = (struct flaredb_sql_body){.transaction = true};
        return a.oom ? UC_ENOMEM : FLAREDB_SQL_GENERAL;
    }
    for (size_t i = 0; i < a.n; i++)
        a.stmts[i].params = a.params ? a.params + a.first[i] : NULL;
    uc_free(a.first);
    q->arena = arena;
    q->req = (struct sql_req){.stmts = a.stmts,
                              .n = a.n,
                              .tx = top->transaction,
                              .allow = FLAREDB_DB_WRITE,
                              .max_steps = FLAREDB_DB_DEFAULT_STEPS,
                              .pool = a.params};
    *out = q;
    return 0;
}
