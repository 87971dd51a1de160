/* http_metrics.c - request counters and latency histograms of lib/http.c,
 * one series per route (plus "unmatched" per method), lock-free to update,
 * and their Prometheus text rendering for GET /metrics. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http_internal.h"
#include "uc/alloc.h"

static const char *const methods[] = {"GET",   "HEAD",   "POST",    "PUT",
                                      "PATCH", "DELETE", "OPTIONS", "OTHER"};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

/* Upper bounds of the buckets, in nanoseconds and as printed. */
static const uint64_t bucket_ns[HTTP_BUCKETS] = {
    1000000,   2500000,   5000000,    10000000,   25000000,   50000000,   100000000,
    250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000};
static const char *const bucket_le[HTTP_BUCKETS] = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                                    "0.05",  "0.1",    "0.25",  "0.5",  "1",
                                                    "2.5",   "5",      "10"};

/* Process start from /proc (boot time + start ticks); now when unknown. */
static double process_start_time(void)
{
    double now = (double)time(NULL);
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return now;
    char line[256];
    long long btime = -1;
    while (btime < 0 && fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %lld", &btime) != 1)
            btime = -1;
    fclose(f);
    f = fopen("/proc/self/stat", "r");
    if (!f)
        return now;
    unsigned long long ticks = 0;
    /* Field 22 (starttime) follows the command name, which may hold spaces:
     * skip to the last ')' and then 19 fields. */
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    long hz = sysconf(_SC_CLK_TCK);
    if (btime < 0 || !p || hz <= 0 ||
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
               "%*d %*d %llu",
               &ticks) != 1)
        return now;
    return (double)btime + (double)ticks / (double)hz;
}

int http_metrics_init(struct http_metrics *m, const struct http_router *r, const char *service)
{
    memset(m, 0, sizeof(*m));
    m->n = r->n + NMETHODS;
    m->series = uc_calloc(m->n, sizeof(*m->series));
    if (!m->series)
        return UC_ENOMEM;
    for (size_t i = 0; i < r->n; i++) {
        m->series[i].route = r->routes[i].def.pattern;
        m->series[i].method = r->routes[i].def.method;
    }
    m->unmatched = r->n;
    for (size_t i = 0; i < NMETHODS; i++) {
        m->series[r->n + i].route = "unmatched";
        m->series[r->n + i].method = methods[i];
    }
    m->start_time = process_start_time();
    m->service = service ? service : "uc";
    return 0;
}

void http_metrics_deinit(struct http_metrics *m)
{
    uc_free(m->series);
    m->series = NULL;
    m->n = 0;
}

size_t http_metrics_unmatched(const struct http_metrics *m, const char *method)
{
    for (size_t i = 0; method && i < NMETHODS - 1; i++)
        if (strcmp(method, methods[i]) == 0)
            return m->unmatched + i;
    return m->unmatched + NMETHODS - 1;
}

void http_metrics_record(struct http_metrics *m, size_t series, unsigned status, uint64_t dur_ns,
                         bool failed)
{
    struct http_series *s = &m->series[series < m->n ? series : m->n - 1];
    if (status >= 100 && status <= 599)
        atomic_fetch_add_explicit(&s->status[status - 100], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < HTTP_BUCKETS && dur_ns > bucket_ns[b])
        b++;
    atomic_fetch_add_explicit(&s->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_ns, dur_ns, memory_order_relaxed);
    if (failed || status >= 500)
        atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
}

static uint64_t load(_Atomic uint64_t *v) { return atomic_load_explicit(v, memory_order_relaxed); }

/* Labels need no escaping: patterns are checked to hold no '"' or '\'. */
static void render_counters(struct http_metrics *m, FILE *out)
{
    fputs("# HELP uc_http_requests_total HTTP requests answered, by route, method and status.\n"
          "# TYPE uc_http_requests_total counter\n",
          out);
    for (size_t i = 0; i < m->n; i++) {
        struct http_series *s = &m->series[i];
        for (unsigned st = 0; st < 500; st++) {
            uint64_t v = load(&s->status[st]);
            if (v)
                fprintf(out,
                        "uc_http_requests_total{route=\"%s\",method=\"%s\",status=\"%u\"} %llu\n",
                        s->route, s->method, st + 100, (unsigned long long)v);
        }
    }
    fputs("# HELP uc_http_request_errors_total Requests answered 5xx or ended before completing.\n"
          "# TYPE uc_http_request_errors_total counter\n",
          out);
    for (size_t i = 0; i < m->n; i++) {
        struct http_series *s = &m->series[i];
        uint64_t v = load(&s->errors);
        if (v)
            fprintf(out, "uc_http_request_errors_total{route=\"%s\",method=\"%s\"} %llu\n",
                    s->route, s->method, (unsigned long long)v);
    }
}

static void render_histogram(struct http_series *s, FILE *out)
{
    uint64_t cum = 0;
    for (size_t b = 0; b <= HTTP_BUCKETS; b++) {
        cum += load(&s->bucket[b]);
        fprintf(out,
                "uc_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",le=\"%s\"} "
                "%llu\n",
                s->route, s->method, b < HTTP_BUCKETS ? bucket_le[b] : "+Inf",
                (unsigned long long)cum);
    }
    fprintf(out, "uc_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\"} %.6f\n",
            s->route, s->method, (double)load(&s->sum_ns) / 1e9);
    fprintf(out, "uc_http_request_duration_seconds_count{route=\"%s\",method=\"%s\"} %llu\n",
            s->route, s->method, (unsigned long long)cum);
}

static void render_histograms(struct http_metrics *m, FILE *out)
{
    fputs("# HELP uc_http_request_duration_seconds Time from request line to last byte sent.\n"
          "# TYPE uc_http_request_duration_seconds histogram\n",
          out);
    for (size_t i = 0; i < m->n; i++) {
        struct http_series *s = &m->series[i];
        uint64_t count = 0;
        for (size_t b = 0; b <= HTTP_BUCKETS; b++)
            count += load(&s->bucket[b]);
        if (count)
            render_histogram(s, out);
    }
}

static long long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, rss = 0;
    if (!f)
        return 0;
    int n = fscanf(f, "%lld %lld", &size, &rss);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? rss * page : 0;
}

static void render_process(struct http_metrics *m, FILE *out)
{
    fprintf(out,
            "# HELP uc_http_requests_in_flight Requests received and not yet answered.\n"
            "# TYPE uc_http_requests_in_flight gauge\n"
            "uc_http_requests_in_flight %ld\n"
            "# HELP uc_http_server_info The service behind this endpoint.\n"
            "# TYPE uc_http_server_info gauge\n"
            "uc_http_server_info{service=\"%s\"} 1\n"
            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
            "# TYPE process_resident_memory_bytes gauge\n"
            "process_resident_memory_bytes %lld\n"
            "# HELP process_start_time_seconds Start time of the process since unix epoch.\n"
            "# TYPE process_start_time_seconds gauge\n"
            "process_start_time_seconds %.2f\n",
            atomic_load(&m->in_flight), m->service, resident_bytes(), m->start_time);
}

int http_metrics_render(struct http_metrics *m, void (*extra)(void *, FILE *), void *ctx,
                        char **buf, size_t *len)
{
    /* open_memstream allocates with libc malloc (the service's callback
     * takes a FILE *), so this buffer bypasses uc_malloc. */
    char *b = NULL;
    size_t n = 0;
    FILE *out = open_memstream(&b, &n);
    if (!out)
        return UC_ENOMEM;
    render_counters(m, out);
    render_histograms(m, out);
    render_process(m, out);
    if (extra)
        extra(ctx, out);
    bool failed = ferror(out) != 0;
    if (fclose(out) != 0 || failed) {
        free(b);
        return UC_ENOMEM;
    }
    *buf = b;
    *len = n;
    return 0;
}
