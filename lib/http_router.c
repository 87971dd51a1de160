/* http_router.c - the route table of lib/http.c: checks and compiles the
 * patterns at start-up, splits and decodes request paths, and picks the
 * most specific route (exact segments beat {params}) or the Allow list. */
#include <string.h>

#include "http_internal.h"
#include "uc/alloc.h"

static bool is_token_char(char ch) { return ch >= 'A' && ch <= 'Z'; }

static bool is_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

/* RFC 3986 pchar without '%': literals need no decoding and no escaping in
 * metric labels. */
static bool is_literal_char(char ch)
{
    return is_name_char(ch) || (ch != '\0' && strchr("-.~!$&'()*+,;=:@", ch) != NULL);
}

static int check_method(const char *m, char *why)
{
    size_t n = m ? strlen(m) : 0;
    if (n == 0 || n > 16)
        return uc_err_set(why, UC_EINVAL, "method must be 1-16 upper-case letters");
    for (size_t i = 0; i < n; i++)
        if (!is_token_char(m[i]))
            return uc_err_set(why, UC_EINVAL, "method must be 1-16 upper-case letters");
    return 0;
}

/* Classify one segment of the split pattern text (already NUL-terminated). */
static int compile_segment(struct http_route *rt, char *seg, char *why)
{
    unsigned i = rt->nseg;
    size_t n = strlen(seg);
    if (n == 0 || strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0)
        return uc_err_set(why, UC_EINVAL, "empty, '.' or '..' segment");
    if (seg[0] == '{') {
        if (n < 3 || seg[n - 1] != '}')
            return uc_err_set(why, UC_EINVAL, "a parameter is a whole segment '{name}'");
        seg[n - 1] = '\0';
        for (const char *p = seg + 1; *p; p++)
            if (!is_name_char(*p))
                return uc_err_set(why, UC_EINVAL, "parameter names use [A-Za-z0-9_]");
        for (unsigned k = 0; k < rt->nparams; k++)
            if (strcmp(rt->names[k], seg + 1) == 0)
                return uc_err_set(why, UC_EINVAL, "parameter {%s} appears twice", seg + 1);
        if (rt->nparams == UC_HTTP_MAX_PARAMS)
            return uc_err_set(why, UC_EINVAL, "more than %d parameters", UC_HTTP_MAX_PARAMS);
        rt->names[rt->nparams] = seg + 1;
        rt->param_seg[rt->nparams++] = (uint8_t)i;
        rt->seg[i] = seg + 1;
    } else {
        for (const char *p = seg; *p; p++)
            if (!is_literal_char(*p))
                return uc_err_set(why, UC_EINVAL, "character '%c' not allowed in a literal", *p);
        rt->exact_mask |= 1u << (31 - i);
        rt->seg[i] = seg;
    }
    rt->nseg++;
    return 0;
}

static int compile_pattern(struct http_route *rt, char *why)
{
    const char *pat = rt->def.pattern;
    if (!pat || pat[0] != '/')
        return uc_err_set(why, UC_EINVAL, "pattern must start with '/'");
    rt->text = uc_strdup(pat);
    if (!rt->text)
        return uc_err_set(why, UC_ENOMEM, "out of memory");
    if (pat[1] == '\0')
        return 0; /* "/" has no segments */
    char *seg = rt->text + 1;
    for (;;) {
        char *slash = strchr(seg, '/');
        if (slash)
            *slash = '\0';
        if (rt->nseg == HTTP_MAX_SEGS)
            return uc_err_set(why, UC_EINVAL, "more than %d segments", HTTP_MAX_SEGS);
        int rc = compile_segment(rt, seg, why);
        if (rc != 0 || !slash)
            return rc;
        seg = slash + 1;
    }
}

/* Two routes with one method and the same literals at the same positions
 * would match the same requests with the same specificity. */
static bool same_shape(const struct http_route *a, const struct http_route *b)
{
    if (strcmp(a->def.method, b->def.method) != 0 || a->nseg != b->nseg ||
        a->exact_mask != b->exact_mask)
        return false;
    for (unsigned i = 0; i < a->nseg; i++)
        if ((a->exact_mask & (1u << (31 - i))) && strcmp(a->seg[i], b->seg[i]) != 0)
            return false;
    return true;
}

static int compile_route(struct http_router *r, const struct uc_http_route *def, bool builtin,
                         size_t default_limit, char *why)
{
    struct http_route *rt = &r->routes[r->n];
    memset(rt, 0, sizeof(*rt));
    rt->def = *def;
    if (rt->def.body_limit == 0)
        rt->def.body_limit = default_limit;
    unsigned allowed = UC_HTTP_PUBLIC | UC_HTTP_JSON | (builtin ? HTTP_ROUTE_BUILTIN : 0);
    int rc = check_method(def->method, why);
    if (rc == 0 && !def->handler)
        rc = uc_err_set(why, UC_EINVAL, "no handler");
    if (rc == 0 && (def->flags & ~allowed))
        rc = uc_err_set(why, UC_EINVAL, "unknown flags 0x%x", def->flags & ~allowed);
    if (rc == 0 && (def->role < UC_ROLE_ANY || def->role > UC_ROLE_SYSTEM_ADMIN))
        rc = uc_err_set(why, UC_EINVAL, "unknown role %d", (int)def->role);
    if (rc == 0)
        rc = compile_pattern(rt, why);
    for (size_t i = 0; rc == 0 && i < r->n; i++)
        if (same_shape(&r->routes[i], rt))
            rc = uc_err_set(why, UC_EINVAL, "same requests as %s %s%s", r->routes[i].def.method,
                            r->routes[i].def.pattern,
                            builtin ? " (/healthz, /readyz and /metrics are built in)" : "");
    if (rc != 0) {
        uc_free(rt->text);
        return rc;
    }
    r->n++;
    return 0;
}

int http_router_init(struct http_router *r, const struct uc_http_route *user, size_t nuser,
                     const struct uc_http_route *builtin, size_t nbuiltin, size_t default_limit,
                     char err[UC_ERR_LEN])
{
    memset(r, 0, sizeof(*r));
    if (nuser > 0 && !user)
        return uc_err_set(err, UC_EINVAL, "route table is NULL but nroutes is %zu", nuser);
    r->routes = uc_calloc(nuser + nbuiltin, sizeof(*r->routes));
    if (!r->routes)
        return uc_err_set(err, UC_ENOMEM, "out of memory for the route table");
    for (size_t i = 0; i < nuser + nbuiltin; i++) {
        bool is_builtin = i >= nuser;
        const struct uc_http_route *def = is_builtin ? &builtin[i - nuser] : &user[i];
        char why[UC_ERR_LEN] = "";
        int rc = compile_route(r, def, is_builtin, default_limit, why);
        if (rc != 0) {
            http_router_deinit(r);
            return uc_err_set(err, rc, "route %zu (%s %s): %s", i, def->method ? def->method : "-",
                              def->pattern ? def->pattern : "-", why);
        }
    }
    return 0;
}

void http_router_deinit(struct http_router *r)
{
    for (size_t i = 0; i < r->n; i++)
        uc_free(r->routes[i].text);
    uc_free(r->routes);
    memset(r, 0, sizeof(*r));
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decode raw[*i] (advancing *i) into *out. */
static int decode_char(const char *raw, size_t len, size_t *i, char *out)
{
    if (raw[*i] != '%') {
        *out = raw[(*i)++];
        return 0;
    }
    int hi = *i + 2 < len ? hex_value(raw[*i + 1]) : -1;
    int lo = hi >= 0 ? hex_value(raw[*i + 2]) : -1;
    if (lo < 0 || (hi == 0 && lo == 0))
        return UC_EINVAL;
    *out = (char)(hi * 16 + lo);
    *i += 3;
    return 0;
}

int http_router_split(const char *raw, size_t len, char *scratch, struct http_path *out)
{
    out->nseg = 0;
    if (len == 0 || raw[0] != '/')
        return UC_EINVAL;
    if (len == 1)
        return 0;
    size_t i = 1;
    char *w = scratch;
    for (;;) {
        if (out->nseg == HTTP_MAX_SEGS)
            return UC_ENOENT;
        const char *seg = w;
        out->seg[out->nseg++] = seg;
        while (i < len && raw[i] != '/')
            if (decode_char(raw, len, &i, w++) != 0)
                return UC_EINVAL;
        *w++ = '\0';
        if (strcmp(seg, "..") == 0)
            return UC_EINVAL;
        if (i >= len)
            return 0;
        i++; /* the '/' */
    }
}

static bool path_matches(const struct http_route *rt, const struct http_path *p)
{
    if (rt->nseg != p->nseg)
        return false;
    for (unsigned i = 0; i < rt->nseg; i++) {
        if (rt->exact_mask & (1u << (31 - i))) {
            if (strcmp(rt->seg[i], p->seg[i]) != 0)
                return false;
        } else if (p->seg[i][0] == '\0') {
            return false;
        }
    }
    return true;
}

/* 2: the route's method, 1: HEAD served by a GET route, 0: no. */
static unsigned method_rank(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return 2;
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

const struct http_route *http_router_match(const struct http_router *r, const char *method,
                                           const struct http_path *p)
{
    const struct http_route *best = NULL;
    uint64_t best_score = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct http_route *rt = &r->routes[i];
        unsigned rank = method_rank(rt->def.method, method);
        if (rank == 0 || !path_matches(rt, p))
            continue;
        uint64_t score = ((uint64_t)rt->exact_mask << 2) | rank;
        if (!best || score > best_score) {
            best = rt;
            best_score = score;
        }
    }
    return best;
}

bool http_router_allow(const struct http_router *r, const struct http_path *p, char *allow,
                       size_t len)
{
    size_t used = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        const struct http_route *rt = &r->routes[i];
        if (!path_matches(rt, p))
            continue;
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = path_matches(&r->routes[k], p) &&
                   strcmp(r->routes[k].def.method, rt->def.method) == 0;
        size_t mlen = strlen(rt->def.method);
        if (seen || used + mlen + 3 > len)
            continue;
        if (used > 0) {
            memcpy(allow + used, ", ", 2);
            used += 2;
        }
        memcpy(allow + used, rt->def.method, mlen + 1);
        used += mlen;
    }
    return used > 0;
}
