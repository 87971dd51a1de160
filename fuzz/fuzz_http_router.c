/* fuzz_http_router.c - the HTTP router's request side (lib/http_router.c):
 * http_router_split on the raw path, then http_router_match and
 * http_router_allow against a service-like table, as route_request in
 * lib/http_request.c does. Input: "METHOD URI" (no space: a GET of it). */
#include "fuzz.h"
#include "http_internal.h"

static int handler(struct uc_http_req *req, void *ctx)
{
    (void)req;
    (void)ctx;
    return 0;
}

static const struct uc_http_route routes[] = {
    {"POST", "/api/v1/tokens", handler, 0, UC_ROLE_ANY, 0},
    {"POST", "/api/v1/tokens/introspect", handler, 0, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/projects", handler, 0, UC_ROLE_ANY, 0},
    {"POST", "/api/v1/projects", handler, 0, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/projects/{id}", handler, 0, UC_ROLE_ANY, 0},
    {"PATCH", "/api/v1/projects/{id}", handler, 0, UC_ROLE_ANY, 0},
    {"DELETE", "/api/v1/projects/{id}", handler, 0, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/projects/{id}/members", handler, 0, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/projects/{project}/users/{user}", handler, 0, UC_ROLE_ANY, 0},
    {"HEAD", "/api/v1/projects/{id}", handler, 0, UC_ROLE_ANY, 0},
    {"GET", "/api/v1/{collection}/{id}", handler, 0, UC_ROLE_ANY, 0},
    {"PUT", "/s3/{bucket}/{key}", handler, 0, UC_ROLE_ANY, 0},
    {"GET", "/s3/{bucket}", handler, 0, UC_ROLE_ANY, 0},
    {"GET", "/~user/a.b-c!$&'()*+,;=:@", handler, 0, UC_ROLE_ANY, 0},
    {"GET", "/", handler, 0, UC_ROLE_ANY, 0},
    {"GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/2/3/4/{last}", handler, 0,
     UC_ROLE_ANY, 0},
};
static const struct uc_http_route builtins[] = {
    {"GET", "/healthz", handler, UC_HTTP_PUBLIC | HTTP_ROUTE_BUILTIN, UC_ROLE_ANY, 0},
    {"GET", "/readyz", handler, UC_HTTP_PUBLIC | HTTP_ROUTE_BUILTIN, UC_ROLE_ANY, 0},
    {"GET", "/metrics", handler, UC_HTTP_PUBLIC | HTTP_ROUTE_BUILTIN, UC_ROLE_ANY, 0},
};

static struct http_router router;
static struct http_metrics metrics;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[UC_ERR_LEN] = "";
    int rc = http_router_init(&router, routes, sizeof(routes) / sizeof(routes[0]), builtins,
                              sizeof(builtins) / sizeof(builtins[0]), 1024, err);
    if (rc != 0)
        fprintf(stderr, "fuzz_http_router: %s\n", err);
    fuzz_check(rc == 0, "route table refused");
    fuzz_check(http_metrics_init(&metrics, &router, "fuzz") == 0, "metrics init");
    return 0;
}

/* What a match promises: the route fits the path segment by segment. */
static void check_match(const struct http_route *rt, const char *method, const struct http_path *p)
{
    fuzz_check(rt >= router.routes && rt < router.routes + router.n, "route outside the table");
    fuzz_check(strcmp(rt->def.method, method) == 0 ||
                   (strcmp(method, "HEAD") == 0 && strcmp(rt->def.method, "GET") == 0),
               "route of another method");
    fuzz_check(rt->nseg == p->nseg, "route with another segment count");
    for (unsigned i = 0; i < rt->nseg; i++) {
        if (rt->exact_mask & (1u << (31 - i)))
            fuzz_check(strcmp(rt->seg[i], p->seg[i]) == 0, "literal segment differs");
        else
            fuzz_check(p->seg[i][0] != '\0', "empty parameter");
    }
}

static void run(const char *method, const char *uri)
{
    size_t len = strcspn(uri, "?#");
    char *scratch = uc_malloc(len + 1);
    fuzz_check(scratch != NULL, "harness out of memory");
    struct http_path p;
    int rc = http_router_split(uri, len, scratch, &p);
    fuzz_check(rc == 0 || rc == UC_EINVAL || rc == UC_ENOENT, "split: unexpected code");
    fuzz_check(p.nseg <= HTTP_MAX_SEGS, "too many segments");
    size_t series = http_metrics_unmatched(&metrics, method);
    if (rc == 0) {
        for (unsigned i = 0; i < p.nseg; i++) {
            fuzz_check(p.seg[i] >= scratch && p.seg[i] + strlen(p.seg[i]) < scratch + len + 1,
                       "segment outside scratch");
            fuzz_check(strcmp(p.seg[i], "..") != 0, "'..' segment accepted");
        }
        const struct http_route *rt = http_router_match(&router, method, &p);
        char allow[128];
        bool any = http_router_allow(&router, &p, allow, sizeof(allow));
        fuzz_check(any == (allow[0] != '\0'), "allow result and text disagree");
        if (rt) {
            check_match(rt, method, &p);
            fuzz_check(any, "matched a route but allow lists nothing");
            series = (size_t)(rt - router.routes);
        }
    }
    fuzz_check(series < metrics.n, "metrics series out of range");
    http_metrics_record(&metrics, series, 200, 1000, false);
    uc_free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_cstr(data, size);
    char *sp = strchr(in, ' ');
    if (sp) {
        *sp = '\0';
        run(in, sp + 1);
    } else {
        run("GET", in);
    }
    uc_free(in);
    return 0;
}
