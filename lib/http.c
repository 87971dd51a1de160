/* http.c - the HTTP server on libmicrohttpd: start (address, route table,
 * thread pool), drain and destroy; the request accessors and the built-in
 * /healthz, /readyz and /metrics routes. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_internal.h"
#include "uc/alloc.h"
#include "uc/log.h"

/* Per-connection pool: room for request headers with an 8 KiB token, and
 * far below MHD's 32 KiB default, which it clears after every request
 * (measured as ~9% of server time under wrk). Bodies stream through it. */
#define CONN_MEMORY (20 * 1024)

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define DESTROY_WAIT_MS 1000 /* for the 503s of pending requests to go out */

static void make_rid_prefix(struct uc_http_server *s)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[6];
    if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        uint64_t x = http_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
        memcpy(r, &x, sizeof(r));
    }
    for (size_t i = 0; i < sizeof(r); i++) {
        s->rid_prefix[2 * i] = hex[r[i] >> 4];
        s->rid_prefix[2 * i + 1] = hex[r[i] & 15];
    }
    s->rid_prefix[12] = '-';
    s->rid_prefix[13] = '\0';
}

const char *uc_http_param(const struct uc_http_req *req, const char *name)
{
    const struct http_conn *c = req->priv;
    for (unsigned i = 0; c->route && i < c->route->nparams; i++)
        if (strcmp(c->route->names[i], name) == 0)
            return c->params[i];
    return NULL;
}

const char *uc_http_query(const struct uc_http_req *req, const char *name)
{
    const struct http_conn *c = req->priv;
    return MHD_lookup_connection_value(c->mhd, MHD_GET_ARGUMENT_KIND, name);
}

const char *uc_http_header(const struct uc_http_req *req, const char *name)
{
    const struct http_conn *c = req->priv;
    return MHD_lookup_connection_value(c->mhd, MHD_HEADER_KIND, name);
}

int uc_http_list_params(struct uc_http_req *req, int def, int max, int *limit,
                        const char **page_token)
{
    const char *l = uc_http_query(req, "limit");
    long v = def;
    if (l) {
        char *end = NULL;
        bool digits = l[0] >= '0' && l[0] <= '9' && strlen(l) <= 9;
        v = digits ? strtol(l, &end, 10) : 0;
        if (!digits || *end || v < 1 || v > max)
            return uc_err_set(req->err, UC_EINVAL, "limit must be an integer from 1 to %d", max);
    }
    const char *t = uc_http_query(req, "page_token");
    *limit = (int)v;
    *page_token = t && t[0] ? t : NULL;
    return 0;
}

static int reply_static(struct uc_http_req *req, int status, const char *text)
{
    size_t len = strlen(text);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_PERSISTENT);
    return http_send_response(req->priv, r, status, HTTP_JSON_TYPE, len);
}

static int builtin_healthz(struct uc_http_req *req, void *ctx)
{
    (void)ctx;
    return reply_static(req, 200, "{\"status\":\"ok\"}");
}

static int builtin_readyz(struct uc_http_req *req, void *ctx)
{
    struct uc_http_server *s = ((struct http_conn *)req->priv)->srv;
    char e[UC_ERR_LEN] = "";
    if (atomic_load(&s->draining))
        return uc_http_error(req, UC_EUNAVAIL, "server is draining");
    if (s->opts.ready && s->opts.ready(ctx, e) != 0)
        return uc_http_error(req, UC_EUNAVAIL, "%s", e[0] ? e : "not ready");
    return reply_static(req, 200, "{\"status\":\"ready\"}");
}

static int builtin_metrics(struct uc_http_req *req, void *ctx)
{
    struct uc_http_server *s = ((struct http_conn *)req->priv)->srv;
    char *buf = NULL;
    size_t len = 0;
    int rc = http_metrics_render(&s->metrics, s->opts.metrics, ctx, &buf, &len);
    if (rc != 0)
        return rc;
    struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(len, buf, free);
    if (!r)
        free(buf);
    return http_send_response(req->priv, r, 200, METRICS_TYPE, len);
}

static const struct uc_http_route builtins[] = {
    {"GET", "/healthz", builtin_healthz, UC_HTTP_PUBLIC | HTTP_ROUTE_BUILTIN, UC_ROLE_ANY, 0},
    {"GET", "/readyz", builtin_readyz, UC_HTTP_PUBLIC | HTTP_ROUTE_BUILTIN, UC_ROLE_ANY, 0},
    {"GET", "/metrics", builtin_metrics, UC_HTTP_PUBLIC | HTTP_ROUTE_BUILTIN, UC_ROLE_ANY, 0},
};

UC_PRINTF(2, 0)
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct uc_http_server *s = cls;
    char msg[UC_ERR_LEN];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    pthread_mutex_lock(&s->lock);
    if (s->starting)
        memcpy(s->start_err, msg, sizeof(msg));
    pthread_mutex_unlock(&s->lock);
    uc_log(UC_LOG_WARN, NULL, "http: %s", msg);
}

static int parse_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss, unsigned *flags,
                      char *err)
{
    char host[INET6_ADDRSTRLEN + 2];
    size_t n = addr ? strlen(addr) : 0;
    if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']')
        addr++, n -= 2; /* "[::1]" */
    if (n == 0 || n >= sizeof(host))
        return uc_err_set(err, UC_EINVAL, "bind address must be a numeric IPv4 or IPv6 address");
    memcpy(host, addr, n);
    host[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *flags |= IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr) ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    } else {
        return uc_err_set(err, UC_EINVAL, "bind address '%s' is not a numeric IPv4 or IPv6 address",
                          host);
    }
    return 0;
}

static int start_daemon(struct uc_http_server *s, const struct sockaddr_storage *ss, unsigned flags,
                        char *err)
{
    const struct uc_http_opts *o = &s->opts;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = o->threads ? o->threads : (cpus > 0 ? (unsigned)cpus : 1);
    pthread_mutex_lock(&s->lock);
    s->starting = true;
    pthread_mutex_unlock(&s->lock);
    s->mhd = MHD_start_daemon(
        flags, o->port, NULL, NULL, http_on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss, MHD_OPTION_THREAD_POOL_SIZE,
        threads > 1 ? threads : 0u, MHD_OPTION_CONNECTION_LIMIT,
        o->max_conns ? o->max_conns : 1024u, MHD_OPTION_CONNECTION_TIMEOUT,
        o->conn_timeout_s ? o->conn_timeout_s : 30u, MHD_OPTION_URI_LOG_CALLBACK, http_on_uri, s,
        MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONN_MEMORY, MHD_OPTION_END);
    pthread_mutex_lock(&s->lock);
    s->starting = false;
    pthread_mutex_unlock(&s->lock);
    if (!s->mhd)
        return uc_err_set(err, UC_EIO, "cannot serve HTTP on %s port %u: %s", o->bind_addr,
                          (unsigned)o->port,
                          s->start_err[0] ? s->start_err : "MHD failed to start");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info && info->port ? info->port : o->port;
    return 0;
}

int uc_http_start(struct uc_http_server **out, const struct uc_http_opts *opts,
                  char err[UC_ERR_LEN])
{
    struct sockaddr_storage ss;
    /* poll(), not epoll: with epoll and worker threads, MHD_quiesce_daemon
     * (our drain) races a worker removing the listen socket from its epoll
     * set, and the loser's epoll_ctl fails and MHD aborts the process
     * ("Failed to remove listen FD from epoll set", an open MHD defect; seen
     * in a SIGTERM right after start). Each worker polls its own few
     * connections, so poll() costs little here. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_POLL;
    if (!out || !opts)
        return uc_err_set(err, UC_EINVAL, "no options");
    int rc = parse_addr(opts->bind_addr, opts->port, &ss, &flags, err);
    if (rc != 0)
        return rc;
    struct uc_http_server *s = uc_calloc(1, sizeof(*s));
    if (!s)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    s->opts = *opts;
    s->quiesced_fd = -1;
    make_rid_prefix(s);
    size_t limit = opts->body_limit ? opts->body_limit : UC_HTTP_DEFAULT_BODY_LIMIT;
    rc = http_router_init(&s->router, opts->routes, opts->nroutes, builtins,
                          sizeof(builtins) / sizeof(builtins[0]), limit, err);
    if (rc != 0)
        goto free_server;
    rc = http_metrics_init(&s->metrics, &s->router, opts->service);
    if (rc != 0) {
        uc_err_set(err, rc, "out of memory for the metrics");
        goto deinit_router;
    }
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        rc = uc_err_set(err, UC_ENOMEM, "cannot create a mutex");
        goto deinit_metrics;
    }
    rc = http_streams_start(s, err);
    if (rc != 0)
        goto destroy_lock;
    rc = start_daemon(s, &ss, flags, err);
    if (rc != 0)
        goto stop_streams;
    *out = s;
    return 0;
stop_streams:
    http_streams_stop(s);
destroy_lock:
    pthread_mutex_destroy(&s->lock);
deinit_metrics:
    http_metrics_deinit(&s->metrics);
deinit_router:
    http_router_deinit(&s->router);
free_server:
    uc_free(s);
    return rc;
}

uint16_t uc_http_port(const struct uc_http_server *s) { return s ? s->port : 0; }

static int wait_idle(struct uc_http_server *s, int timeout_ms)
{
    uint64_t deadline = http_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;
    for (;;) {
        long n = atomic_load(&s->metrics.in_flight);
        if (n <= 0 || http_now_ns() >= deadline)
            return n > 0 ? (int)n : 0;
        struct timespec ts = {0, 2000000};
        (void)nanosleep(&ts, NULL); /* an interrupted nap just loops sooner */
    }
}

int uc_http_drain(struct uc_http_server *s, int timeout_ms)
{
    if (!s)
        return 0;
    if (!atomic_exchange(&s->draining, true)) {
        MHD_socket fd = MHD_quiesce_daemon(s->mhd);
        /* MHD no longer accepts on fd; shutting it down makes the kernel
         * refuse new connections now instead of queueing them unanswered. */
        if (fd != MHD_INVALID_SOCKET) {
            s->quiesced_fd = fd;
            if (shutdown(fd, SHUT_RDWR) != 0)
                uc_log(UC_LOG_WARN, NULL, "http: shutting down the listen socket: %s",
                       strerror(errno));
        }
    }
    return wait_idle(s, timeout_ms);
}

void uc_http_destroy(struct uc_http_server *s)
{
    if (!s)
        return;
    http_streams_stop(s); /* sets stopping: no request parks or sleeps from now on */
    http_answer_parked(s);
    (void)wait_idle(s, DESTROY_WAIT_MS); /* what is still open gets closed below */
    MHD_stop_daemon(s->mhd);
    if (s->quiesced_fd >= 0 && close(s->quiesced_fd) != 0)
        uc_log(UC_LOG_WARN, NULL, "http: closing the listen socket: %s", strerror(errno));
    pthread_mutex_destroy(&s->lock);
    http_metrics_deinit(&s->metrics);
    http_router_deinit(&s->router);
    uc_free(s);
}
