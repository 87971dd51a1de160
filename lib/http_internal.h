/* http_internal.h - what the files of the HTTP server share: the server and
 * per-request state (http.c, http_request.c, http_reply.c), the compiled
 * route table (http_router.c) and the metrics (http_metrics.c). Internal to
 * libcommon and its tests; services use uc/http.h only. */
#ifndef UC_HTTP_INTERNAL_H
#define UC_HTTP_INTERNAL_H
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "uc/http.h"

#define HTTP_MAX_SEGS 32
/* Route flag for the built-in routes: public, and no token check at all. */
#define HTTP_ROUTE_BUILTIN (1u << 31)

/* --- router (http_router.c) ----------------------------------------------- */

/* One route of the table, its pattern split into segments. Segment i is a
 * literal when bit (31 - i) of exact_mask is set, else a parameter; so of
 * two routes matching one path, the larger exact_mask is more specific. */
struct http_route {
    struct uc_http_route def; /* copy; body_limit resolved to the default */
    unsigned nseg;
    uint32_t exact_mask;
    const char *seg[HTTP_MAX_SEGS]; /* literal text or parameter name */
    unsigned nparams;
    const char *names[UC_HTTP_MAX_PARAMS];
    uint8_t param_seg[UC_HTTP_MAX_PARAMS]; /* segment index of each parameter */
    char *text;                            /* owned: the split pattern */
};

struct http_router {
    struct http_route *routes; /* owned; user routes first, then built-ins */
    size_t n;
};

/* A request path split into percent-decoded, NUL-terminated segments. */
struct http_path {
    unsigned nseg;
    const char *seg[HTTP_MAX_SEGS];
};

/* Check and compile the user table (flags limited to UC_HTTP_PUBLIC and
 * UC_HTTP_JSON) followed by the built-in table. On failure r is left empty.
 * Errors: UC_EINVAL naming the bad route, UC_ENOMEM. */
UC_MUSTCHECK int http_router_init(struct http_router *r, const struct uc_http_route *user,
                                  size_t nuser, const struct uc_http_route *builtin,
                                  size_t nbuiltin, size_t default_limit, char err[UC_ERR_LEN]);
void http_router_deinit(struct http_router *r);

/* Split `raw` (len bytes, starting with '/') into out, decoding %XX; the
 * segments are written to `scratch`, which needs len + 1 bytes.
 * Errors: UC_EINVAL (no leading '/', bad escape, %00, a ".." segment),
 * UC_ENOENT (more than HTTP_MAX_SEGS segments: no route can match). */
UC_MUSTCHECK int http_router_split(const char *raw, size_t len, char *scratch,
                                   struct http_path *out);

/* The most specific route for method and path, or NULL. HEAD matches GET
 * routes when no HEAD route matches. */
const struct http_route *http_router_match(const struct http_router *r, const char *method,
                                           const struct http_path *p);

/* Write the methods of every route matching the path, as an Allow header
 * value ("GET, POST"), into allow (truncated to len). Returns false (and
 * writes "") when no route matches the path. */
bool http_router_allow(const struct http_router *r, const struct http_path *p, char *allow,
                       size_t len);

/* --- metrics (http_metrics.c) --------------------------------------------- */

#define HTTP_BUCKETS 13 /* 0.001 .. 10 seconds, plus +Inf */

/* Counters of one (route, method); updated with relaxed atomics. */
struct http_series {
    const char *route, *method;   /* borrowed labels */
    _Atomic uint64_t status[500]; /* requests by status - 100 */
    _Atomic uint64_t bucket[HTTP_BUCKETS + 1];
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t errors;
};

struct http_metrics {
    struct http_series *series; /* owned: one per route, then "unmatched" per method */
    size_t n, unmatched;        /* unmatched: index of the first unmatched series */
    _Atomic long in_flight;
    double start_time; /* process start, unix seconds */
    const char *service;
};

/* Errors: UC_ENOMEM. */
UC_MUSTCHECK int http_metrics_init(struct http_metrics *m, const struct http_router *r,
                                   const char *service);
void http_metrics_deinit(struct http_metrics *m);

/* Series index for a request that matched no route. */
size_t http_metrics_unmatched(const struct http_metrics *m, const char *method);

/* Count one finished request: status 0 when none was sent; failed when it
 * answered 5xx or ended without completing. */
void http_metrics_record(struct http_metrics *m, size_t series, unsigned status, uint64_t dur_ns,
                         bool failed);

/* Render the Prometheus text, then the service's lines. *buf is a libc
 * buffer (open_memstream) the caller frees with free(). Errors: UC_ENOMEM. */
UC_MUSTCHECK int http_metrics_render(struct http_metrics *m, void (*extra)(void *, FILE *),
                                     void *ctx, char **buf, size_t *len);

/* --- server and requests (http.c, http_request.c, http_reply.c) ------------ */

#define HTTP_JSON_TYPE "application/json"

/* Where a request is. PARKED: suspended until its ASYNC reply arrives;
 * ANSWERED: an error reply waits for the end of the request. */
enum http_phase {
    HTTP_PH_HEADERS,
    HTTP_PH_BODY,
    HTTP_PH_READY,
    HTTP_PH_ANSWERED,
    HTTP_PH_HANDLER,
    HTTP_PH_PARKED,
    HTTP_PH_RESUMED,
};

/* One request: allocated (with its path) when MHD reads the request line,
 * freed when MHD reports it complete. Only the MHD worker of the connection
 * touches it, except the reply fields, which any thread sets under `lock`. */
struct http_conn {
    struct uc_http_req req;
    struct uc_http_server *srv;
    struct MHD_Connection *mhd;
    const struct http_route *route;
    size_t series; /* metrics */
    uint64_t start_ns;
    enum http_phase phase;
    const char *params[UC_HTTP_MAX_PARAMS];
    char *body;
    size_t body_cap, discarded;
    unsigned long long announced; /* an over-limit Content-Length, for the 413 */
    bool too_big, body_oom;
    unsigned nhdr;
    char *hdr[UC_HTTP_MAX_HEADERS][2];
    /* The reply. resp is NULL after a reply that could not be built: the
     * connection is then closed. */
    pthread_mutex_t lock;
    bool replied, listed; /* listed: on srv->parked */
    struct MHD_Response *resp;
    unsigned status;
    uint64_t bytes;
    struct http_conn *prev, *next;
    size_t pathlen;
    char path[]; /* the raw path, NUL, then pathlen + 1 bytes of scratch */
};

struct http_stream; /* a streaming reply (http_reply.c) */

struct uc_http_server {
    struct uc_http_opts opts;
    struct http_router router;
    struct http_metrics metrics;
    struct MHD_Daemon *mhd;
    uint16_t port;
    int quiesced_fd;
    char rid_prefix[16]; /* 12 random hex digits and '-' */
    _Atomic uint64_t rid_next;
    atomic_bool draining, stopping;
    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t tick;
    bool starting;
    char start_err[UC_ERR_LEN];
    struct http_conn *parked;     /* ASYNC requests waiting for their reply */
    struct http_stream *sleeping; /* streams waiting for the next poll */
    pthread_t ticker;
};

static inline uint64_t http_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* MHD callbacks (http_request.c), registered by uc_http_start. */
void *http_on_uri(void *cls, const char *uri, struct MHD_Connection *mc);
enum MHD_Result http_on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **con_cls);
void http_on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                       enum MHD_RequestTerminationCode toe);

/* Replies (http_reply.c). */

/* Add X-Request-Id, Content-Type (if ctype) and the request's extra headers
 * to r, then give it to the request as its reply (r NULL: close instead).
 * Any thread. Returns 0, UC_ENOMEM (r was NULL or a header failed) or
 * UC_EINVAL (already answered; r is destroyed). */
int http_send_response(struct http_conn *c, struct MHD_Response *r, int status, const char *ctype,
                       uint64_t bytes);
/* Reply with the error envelope for code (< 0) and msg ("" = default). */
int http_reply_envelope(struct http_conn *c, int code, const char *msg);
/* MHD thread: queue the reply given to the request; MHD_NO closes. */
enum MHD_Result http_queue_reply(struct http_conn *c);
/* MHD thread, after a handler returned UC_HTTP_ASYNC: queue the reply if it
 * is already there, else suspend the connection until it comes. */
enum MHD_Result http_park(struct http_conn *c);
/* Answer every parked request 503 and resume it (uc_http_destroy). */
void http_answer_parked(struct uc_http_server *s);
/* Start and stop the thread that wakes sleeping streams. stop also sets
 * `stopping`, so nothing parks or sleeps afterwards. Errors: UC_ENOMEM,
 * UC_EIO. */
UC_MUSTCHECK int http_streams_start(struct uc_http_server *s, char err[UC_ERR_LEN]);
void http_streams_stop(struct uc_http_server *s);

#endif /* UC_HTTP_INTERNAL_H */
