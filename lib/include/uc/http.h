/* uc/http.h - the HTTP/JSON server every daemon uses, on libmicrohttpd
 * (thread pool + epoll). One static route table per service; before a
 * handler runs the router has matched the path (404/405), authenticated the
 * bearer token (401), checked the route's role (403), enforced the body
 * limit (413) and parsed a JSON body (400). Also serves /healthz, /readyz
 * and /metrics. Handlers run on MHD worker threads and may answer later from
 * any thread (UC_HTTP_ASYNC), e.g. after a Raft commit. Thread-safety: the
 * reply and accessor calls may come from any thread while the request is
 * open; start, drain and destroy belong to one thread (main). */
#ifndef UC_HTTP_H
#define UC_HTTP_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "uc/auth.h"
#include "uc/err.h"

#define UC_HTTP_DEFAULT_BODY_LIMIT (1024 * 1024)
#define UC_HTTP_MAX_PARAMS 8
#define UC_HTTP_MAX_HEADERS 8 /* uc_http_add_header calls per request */
/* A request id is 1-64 characters of [A-Za-z0-9-_.]; +1 for the NUL. */
#define UC_HTTP_RID_LEN 65

/* A handler returns 0 after replying, UC_HTTP_ASYNC when it will reply
 * later (the request stays valid until then), or a negative UC_E* code
 * without replying: the router then answers with the error envelope, using
 * the message the handler put in req->err (or uc_strerror). */
#define UC_HTTP_ASYNC 1

struct uc_http_req {
    const char *method;
    const char *path;  /* as sent, still percent-encoded, without the query */
    const char *route; /* the matched pattern, e.g. "/api/v1/users/{id}" */
    /* The client's X-Request-Id when it is valid, else a generated one. */
    char request_id[UC_HTTP_RID_LEN];
    json_t *body;         /* parsed body on UC_HTTP_JSON routes; borrowed */
    const char *raw_body; /* the raw body (NUL-terminated, "" if none); borrowed */
    size_t raw_len;
    /* The caller; zeroed on UC_HTTP_PUBLIC routes without a token. */
    struct uc_auth_claims auth;
    bool authenticated;
    char err[UC_ERR_LEN]; /* message for a negative handler result */
    void *priv;           /* the server's per-request state */
};

typedef int (*uc_http_handler)(struct uc_http_req *req, void *ctx);

enum uc_http_route_flags {
    UC_HTTP_PUBLIC = 1u << 0, /* no token needed (a token, if sent, is still checked) */
    UC_HTTP_JSON = 1u << 1,   /* body must be a JSON object (400 otherwise) */
};

/* One row of the route table. Patterns are checked at uc_http_start: they
 * start with '/', have no empty, "." or ".." segment and no '%', at most 32
 * segments and UC_HTTP_MAX_PARAMS parameters. At one position an exact
 * segment wins over a {param}. HEAD is served by the GET route. */
struct uc_http_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/api/v1/users/{id}": {name} matches one non-empty segment */
    uc_http_handler handler;
    unsigned flags;
    enum uc_role role; /* least role needed; ignored on public routes */
    size_t body_limit; /* 0 = the server default */
};

/* Authenticate a bearer token (without "Bearer "). Fill *out and return 0,
 * or UC_EUNAUTH / UC_EUNAVAIL with a message. Called from many threads. */
typedef int (*uc_http_authn_fn)(void *ctx, const char *token, struct uc_auth_claims *out,
                                char err[UC_ERR_LEN]);

struct uc_http_opts {
    const char *service;     /* for logs and the uc_http_server_info metric */
    const char *bind_addr;   /* numeric: "127.0.0.1", "0.0.0.0", "::1", "::" (dual stack) */
    uint16_t port;           /* 0 = pick a free port (see uc_http_port) */
    unsigned threads;        /* worker threads; 0 = number of CPUs */
    unsigned max_conns;      /* 0 = 1024 */
    unsigned conn_timeout_s; /* idle keep-alive timeout; 0 = 30 */
    size_t body_limit;       /* 0 = UC_HTTP_DEFAULT_BODY_LIMIT */
    bool access_log;         /* one info line per request */
    const struct uc_http_route *routes;
    size_t nroutes;
    void *ctx;              /* passed to handlers, ready and metrics */
    uc_http_authn_fn authn; /* NULL: every non-public route answers 401 */
    void *authn_ctx;
    /* /readyz: 0 = ready, else 503 with the message. NULL = always ready. */
    int (*ready)(void *ctx, char err[UC_ERR_LEN]);
    /* /metrics: append the service's own Prometheus lines. May be NULL. */
    void (*metrics)(void *ctx, FILE *out);
};

struct uc_http_server;

/* Bind and start serving. `opts` and the route table are borrowed until
 * uc_http_destroy. The built-in routes GET /healthz, /readyz and /metrics
 * are public and ignore any token; the table must not define them again.
 * On success *out owns the server (free with uc_http_destroy); on failure
 * *out is untouched. Errors: UC_EINVAL (bad address, bad or duplicate route
 * pattern), UC_EIO (cannot bind or start threads: the message says why),
 * UC_ENOMEM. */
UC_MUSTCHECK int uc_http_start(struct uc_http_server **out, const struct uc_http_opts *opts,
                               char err[UC_ERR_LEN]);

/* The bound port (useful with port 0). */
uint16_t uc_http_port(const struct uc_http_server *s);

/* Stop accepting new connections (new ones are refused), make /readyz
 * answer 503, end open streams at their next poll, and wait up to timeout_ms
 * for requests in flight (including ASYNC ones) to finish. Returns the
 * number still open. May be called again to wait longer. */
int uc_http_drain(struct uc_http_server *s, int timeout_ms);

/* Stop and free; NULL is a no-op. ASYNC requests still pending are answered
 * 503 (waiting up to a second for those answers to go out), then every
 * connection is closed. No thread may touch a request after this starts:
 * stop the threads that own ASYNC requests first. */
void uc_http_destroy(struct uc_http_server *s);

/* Path parameter {name} (percent-decoded), query parameter (decoded) and
 * request header (case-insensitive), borrowed until the reply is sent; NULL
 * when absent. Callable from any thread while the request is open. */
const char *uc_http_param(const struct uc_http_req *req, const char *name);
const char *uc_http_query(const struct uc_http_req *req, const char *name);
const char *uc_http_header(const struct uc_http_req *req, const char *name);

/* Parse the body as UC_HTTP_JSON routes do, for a route that reads its raw
 * body first and falls back to JSON: on success req->body is set (owned by
 * the request); already parsed is success. Errors: UC_EINVAL with the same
 * message a UC_HTTP_JSON route answers, in req->err. */
UC_MUSTCHECK int uc_http_json_body(struct uc_http_req *req);

/* Reply exactly once per request, from any thread. Each returns 0, or
 * UC_ENOMEM (the connection is then closed), or UC_EINVAL when the request
 * was already answered (the second reply is dropped and logged). A status
 * outside 100-599 is sent as 500. */
/* JSON body; steals the reference to `body` (NULL means no body). */
int uc_http_reply_json(struct uc_http_req *req, int status, json_t *body);
/* Error envelope {"error":{"code","message","request_id"}} with the status
 * and code from `code` (a negative UC_E*; anything else counts as
 * UC_EINTERNAL). An empty message becomes uc_strerror(code). Returns 0 so
 * handlers can `return uc_http_error(...)`. */
UC_PRINTF(3, 4) int uc_http_error(struct uc_http_req *req, int code, const char *fmt, ...);
/* Any bytes (copied). `content_type` may be NULL (no Content-Type). */
int uc_http_reply_data(struct uc_http_req *req, int status, const char *content_type,
                       const void *data, size_t len);
/* Add a header to the reply about to be sent (copied). Call before the
 * reply, from the thread that will reply. Errors: UC_E2BIG (more than
 * UC_HTTP_MAX_HEADERS), UC_EINVAL (empty name, or CR/LF in name or value),
 * UC_ENOMEM. */
int uc_http_add_header(struct uc_http_req *req, const char *name, const char *value);

/* Streaming reply of unknown length (chunked), e.g. a watch. `next` is called
 * from a server thread whenever the client can take more: it copies up to
 * max bytes into buf and returns the count, 0 when it has nothing now, or -1
 * at the end of the stream. After a 0 the connection is suspended and `next`
 * is polled again about 20 ms later, so an idle stream costs no CPU and
 * blocks no worker. Streams end (as if `next` returned -1) once the server
 * drains or stops. `done` (may be NULL) runs exactly once when the stream
 * ends or the client goes away, also when this call fails; after it no
 * other call touches sctx. Errors: as the other replies. */
typedef long (*uc_http_stream_next)(void *sctx, char *buf, size_t max);
int uc_http_reply_stream(struct uc_http_req *req, int status, const char *content_type,
                         uc_http_stream_next next, void (*done)(void *sctx), void *sctx);

/* Parse the `limit` and `page_token` query parameters: limit is def when
 * absent, else an integer in 1..max; *page_token is borrowed like
 * uc_http_query (NULL when absent or empty). On error the outputs are
 * untouched. Errors: UC_EINVAL with "limit must be an integer from 1 to
 * <max>" in req->err (so a handler can just return the code). */
UC_MUSTCHECK int uc_http_list_params(struct uc_http_req *req, int def, int max, int *limit,
                                     const char **page_token);

#endif /* UC_HTTP_H */
