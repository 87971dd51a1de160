/* api.h - chainfire's REST routes (docs/api/chainfire.md) over a
 * chainfire_server: writes are proposed to raft and answered after commit,
 * linearizable reads wait for a read barrier. Thread-safe. */
#ifndef CHAINFIRE_API_H
#define CHAINFIRE_API_H
#include "server.h"
#include "uc/http.h"
#include "uc/replsvc.h"

/* Fill the routes and ctx (s, borrowed for the server's life) of opts; the
 * caller sets the rest (uc_replsvc_http_opts does most). */
void chainfire_api_opts(struct chainfire_server *s, struct uc_http_opts *opts);

/* Set the service's hooks in a module config: the query parameters a
 * forwarded request keeps, the status fields (revision, compact_revision)
 * and the chainfire_* metrics. */
void chainfire_api_hooks(struct uc_replsvc_config *cfg);

#endif /* CHAINFIRE_API_H */
