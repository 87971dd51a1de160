/* uc/httpc.h - the HTTP client daemons use to talk to each other, on
 * libcurl: JSON in and out, bearer tokens, a deadline on every request, and
 * retries with backoff for idempotent methods only. Thread-safe after
 * uc_httpc_global_init (each call uses its own easy handle). */
#ifndef UC_HTTPC_H
#define UC_HTTPC_H
#include <jansson.h>
#include <stddef.h>

#include "uc/err.h"

#define UC_HTTPC_RID_MAX 64 /* longest X-Request-Id (uc_http's UC_HTTP_RID_LEN - 1) */

/* Per-call options; a NULL opts pointer means all defaults. Borrowed for
 * the call. */
struct uc_httpc_opts {
    const char *bearer;       /* token without "Bearer "; NULL = none; no CR/LF */
    int timeout_ms;           /* one deadline for all attempts and backoffs; 0 = 5000 */
    int retries;              /* extra attempts for GET/HEAD/PUT/DELETE; 0 = none */
    int backoff_ms;           /* first retry delay, doubled each time; 0 = 100 */
    const char *content_type; /* for raw bodies (default application/octet-stream) */
    /* Sent as X-Request-Id, so the peer logs and answers under the caller's
     * id; NULL = none. 1 to UC_HTTPC_RID_MAX characters of [A-Za-z0-9-_.],
     * as docs/api/conventions.md allows; anything else is UC_EINVAL. */
    const char *request_id;
};

struct uc_httpc_resp {
    long status;
    char *body; /* NUL-terminated ("" when empty), freed by uc_httpc_resp_clear */
    size_t len;
    /* The parsed body when the Content-Type is JSON or the body starts with
     * '{' or '[' and parses; else NULL. Owned by resp. */
    json_t *json;
};

/* Call once before threads start. Errors: UC_EIO. */
UC_MUSTCHECK int uc_httpc_global_init(void);

/* Release what uc_httpc_global_init set up; call once after the last
 * request, when no other thread is running. */
void uc_httpc_global_cleanup(void);

/* Send `method` (upper case) to `url` (http or https; redirects are not
 * followed) with an optional JSON `body` (borrowed), sent compact with
 * Content-Type: application/json, and Accept: application/json. POST, PUT
 * and PATCH without a body send an empty one. Any HTTP status is a success
 * at this level: look at out->status.
 *
 * Retries (opts->retries) are for GET, HEAD, PUT and DELETE only, never
 * POST or PATCH, and only after a failed or timed-out connect or a
 * 502/503/504 answer. Each attempt gets the time left before the deadline;
 * a connect gets a share of it so another attempt can follow. When the next
 * backoff would not fit before the deadline the last outcome is returned
 * (for a 503 that is the 503 answer itself).
 *
 * `out` is overwritten (clear it first if it held an answer); on error it
 * is zeroed. Errors: UC_EINVAL (bad method or url, CR/LF in the bearer, a
 * malformed request id), UC_EUNAVAIL (could not connect), UC_ETIMEDOUT
 * (deadline passed), UC_E2BIG (answer over 64 MiB), UC_EIO (other transfer
 * failures), UC_ENOMEM. */
UC_MUSTCHECK int uc_httpc_json(const char *method, const char *url, const json_t *body,
                               const struct uc_httpc_opts *opts, struct uc_httpc_resp *out,
                               char err[UC_ERR_LEN]);

/* The same with a raw body of len bytes (borrowed; NULL for none) sent with
 * opts->content_type. No Accept header is added. */
UC_MUSTCHECK int uc_httpc_raw(const char *method, const char *url, const void *body, size_t len,
                              const struct uc_httpc_opts *opts, struct uc_httpc_resp *out,
                              char err[UC_ERR_LEN]);

/* Free what a response holds and zero it; safe on a zeroed struct. */
void uc_httpc_resp_clear(struct uc_httpc_resp *r);

#endif /* UC_HTTPC_H */
