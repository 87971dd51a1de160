/* api.h - IAM's HTTP face: the route table, its handlers and the /readyz
 * and /metrics callbacks, wired into uc_http_opts for one struct
 * iam_server. Handlers are thin: they map a request onto the domain
 * modules and their answer onto a status. Thread-safe. */
#ifndef IAM_API_H
#define IAM_API_H
#include "server.h"
#include "uc/http.h"

/* Fill the routes, ctx (s, borrowed for the server's life), authn, ready
 * and metrics fields of opts; the caller sets the rest. */
void iam_api_opts(struct iam_server *s, struct uc_http_opts *opts);

/* The metric lines IAM adds to /metrics (ctx: the struct iam_server). */
void iam_api_metrics(void *ctx, FILE *out);

#endif /* IAM_API_H */
