/* err.c - the one table from error code to message, HTTP status and API
 * code, plus the helpers that fill a caller's 256-byte message buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "uc/err.h"

struct err_entry {
    int code;
    int status;
    const char *api;
    const char *msg;
};

static const struct err_entry table[] = {
    {UC_OK, 200, "ok", "success"},
    {UC_ENOMEM, 500, "internal", "out of memory"},
    {UC_EINVAL, 400, "invalid_argument", "invalid argument"},
    {UC_ENOENT, 404, "not_found", "not found"},
    {UC_EEXIST, 409, "already_exists", "already exists"},
    {UC_EIO, 500, "internal", "I/O error"},
    {UC_E2BIG, 413, "too_large", "too large"},
    {UC_ETIMEDOUT, 503, "deadline_exceeded", "deadline exceeded"},
    {UC_EBUSY, 409, "busy", "another change is in flight"},
    {UC_ECONFLICT, 409, "conflict", "stale revision or failed compare"},
    {UC_EUNAUTH, 401, "unauthenticated", "missing or invalid token"},
    {UC_EFORBIDDEN, 403, "permission_denied", "permission denied"},
    {UC_EUNAVAIL, 503, "unavailable", "service unavailable"},
    {UC_ERATE, 429, "rate_limited", "too many requests"},
    {UC_ECRYPTO, 500, "internal", "crypto failure"},
    {UC_EPROTO, 502, "bad_gateway", "unexpected answer from a peer"},
    {UC_EMETHOD, 405, "method_not_allowed", "method not allowed"},
    {UC_EHELP, 200, "ok", "help printed"},
    {UC_EINTERNAL, 500, "internal", "internal error"},
};

static const struct err_entry *lookup(int code)
{
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i].code == code)
            return &table[i];
    return NULL;
}

const char *uc_strerror(int code)
{
    const struct err_entry *e = lookup(code);
    if (e)
        return e->msg;
    return code < 0 && code > -1000 ? strerror(-code) : "unknown error";
}

int uc_err_http_status(int code)
{
    const struct err_entry *e = lookup(code);
    return e ? e->status : 500;
}

const char *uc_err_api_code(int code)
{
    const struct err_entry *e = lookup(code);
    return e ? e->api : "internal";
}

int uc_err_set(char *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, UC_ERR_LEN, fmt, ap);
    va_end(ap);
    return code;
}

int uc_err_prefix(char *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    char prefix[UC_ERR_LEN], old[UC_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err, UC_ERR_LEN);
    old[UC_ERR_LEN - 1] = '\0';
    const char *rest = old[0] ? old : uc_strerror(code);
    size_t plen = strlen(prefix), rlen = strlen(rest);
    if (plen > UC_ERR_LEN - 3)
        plen = UC_ERR_LEN - 3;
    if (rlen > UC_ERR_LEN - 3 - plen)
        rlen = UC_ERR_LEN - 3 - plen; /* keep the prefix, cut the tail */
    memcpy(err, prefix, plen);
    memcpy(err + plen, ": ", 2);
    memcpy(err + plen + 2, rest, rlen);
    err[plen + 2 + rlen] = '\0';
    return code;
}

void uc_err_sanitize(char *dst, size_t dstlen, const char *s, size_t max)
{
    if (dstlen == 0)
        return;
    size_t n = 0, i = 0;
    for (; s && s[i] && i < max && n + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    dst[n] = '\0';
    if (s && s[i] && dstlen > 4) {
        size_t at = n + 3 < dstlen ? n : dstlen - 4;
        memcpy(dst + at, "...", 4);
    }
}
