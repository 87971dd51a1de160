/* uc/err.h - error codes shared by every module, and their messages.
 * 0 is success; errno codes map directly (UC_ENOMEM = -ENOMEM); our own codes
 * start at -1000. One table maps each code to a message, an HTTP status and
 * the API's snake_case error code. Thread-safe: everything here is const. */
#ifndef UC_ERR_H
#define UC_ERR_H
#include <errno.h>

#define UC_ERR_LEN 256
#define UC_MUSTCHECK __attribute__((warn_unused_result))
#define UC_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum uc_err {
    UC_OK = 0,
    UC_ENOMEM = -ENOMEM,       /* 500 out of memory */
    UC_EINVAL = -EINVAL,       /* 400 bad input */
    UC_ENOENT = -ENOENT,       /* 404 not found */
    UC_EEXIST = -EEXIST,       /* 409 already exists */
    UC_EIO = -EIO,             /* 500 storage or system I/O failed */
    UC_E2BIG = -E2BIG,         /* 413 body or value too large */
    UC_ETIMEDOUT = -ETIMEDOUT, /* 503 deadline passed */
    UC_EBUSY = -EBUSY,         /* 409 another change is in flight */
    UC_ECONFLICT = -1000,      /* 409 stale revision or failed compare */
    UC_EUNAUTH = -1001,        /* 401 no token, or a bad one */
    UC_EFORBIDDEN = -1002,     /* 403 authenticated but not allowed */
    UC_EUNAVAIL = -1003,       /* 503 not ready, no quorum, peer down */
    UC_ERATE = -1004,          /* 429 rate limited */
    UC_ECRYPTO = -1005,        /* 500 crypto library failure */
    UC_EPROTO = -1006,         /* 502 a peer answered something unexpected */
    UC_EMETHOD = -1007,        /* 405 method not allowed on this path */
    UC_EHELP = -1008,          /* not an error: --help was printed */
    UC_EINTERNAL = -1009,      /* 500 a bug; the message says where */
};

/* Human message for `code`; never NULL. */
const char *uc_strerror(int code);

/* HTTP status for `code` (500 for unknown codes). */
int uc_err_http_status(int code);

/* snake_case API error code for `code`, e.g. "invalid_argument". */
const char *uc_err_api_code(int code);

/* Format into err (which may be NULL: then nothing happens). Returns `code`
 * unchanged so a caller can write `return uc_err_set(err, UC_EINVAL, ...)`. */
UC_PRINTF(3, 4) int uc_err_set(char *err, int code, const char *fmt, ...);

/* Prepend "prefix: " to the message already in err (NULL allowed). Returns
 * `code` unchanged. */
UC_PRINTF(3, 4) int uc_err_prefix(char *err, int code, const char *fmt, ...);

/* Copy at most `max` bytes of untrusted `s` into dst (size dstlen), turning
 * control characters into spaces and marking truncation with "...". Use it
 * before echoing client text in an error or a log line. */
void uc_err_sanitize(char *dst, size_t dstlen, const char *s, size_t max);

#endif /* UC_ERR_H */
