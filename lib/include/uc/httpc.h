/* uc/httpc.h - the HTTP client daemons use to talk to each other, on
 * libcurl: JSON in and out, bearer tokens, a deadline on every request, and
 * retries with backoff for idempotent methods only. Thread-safe after
 * uc_httpc_global_init (each call uses its own easy handle). */
#ifndef UC_HTTPC_H
#define UC_HTTPC_H
#include <jansson.h>
#include <stddef.h>

#include "uc/err.h"

struct uc_httpc_opts {
    const char *bearer;   /* token without "Bearer "; NULL = none */
    int timeout_ms;       /* whole-request deadline; 0 = 5000 */
    int retries;          /* extra attempts for GET/HEAD/PUT/DELETE; 0 = none */
    int backoff_ms;       /* first retry delay, doubled each time; 0 = 100 */
    const char *content_type; /* for raw bodies; JSON bodies set their own */
};

struct uc_httpc_resp {
    long status;
    char *body; /* NUL-terminated, freed by uc_httpc_resp_clear */
    size_t len;
    json_t *json; /* parsed body when it is JSON, else NULL; owned by resp */
};

/* Call once before threads start. Errors: UC_EIO. */
UC_MUSTCHECK int uc_httpc_global_init(void);

/* Send `method` to `url` with an optional JSON `body` (borrowed). Any HTTP
 * status is a success at this level: look at out->status. Retries happen on
 * connection failures and 502/503/504, for idempotent methods only.
 * Errors: UC_EUNAVAIL (could not connect), UC_ETIMEDOUT (deadline),
 * UC_E2BIG (answer over 64 MiB), UC_EIO, UC_ENOMEM; out is then empty. */
UC_MUSTCHECK int uc_httpc_json(const char *method, const char *url, const json_t *body,
                               const struct uc_httpc_opts *opts, struct uc_httpc_resp *out,
                               char err[UC_ERR_LEN]);

/* The same with a raw body (may be NULL/0). */
UC_MUSTCHECK int uc_httpc_raw(const char *method, const char *url, const void *body, size_t len,
                              const struct uc_httpc_opts *opts, struct uc_httpc_resp *out,
                              char err[UC_ERR_LEN]);

/* Free what a response holds and zero it; safe on a zeroed struct. */
void uc_httpc_resp_clear(struct uc_httpc_resp *r);

#endif /* UC_HTTPC_H */
