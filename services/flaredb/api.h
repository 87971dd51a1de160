/* api.h - flaredb's REST routes (docs/api/flaredb.md) over a
 * flaredb_server: SQL, tables, namespaced keys, project restrictions, and
 * the cluster routes of uc/replsvc.h. Thread-safe. */
#ifndef FLAREDB_API_H
#define FLAREDB_API_H
#include "server.h"
#include "uc/http.h"
#include "uc/replsvc.h"

/* Fill the routes and ctx (s, borrowed for the server's life) of opts; the
 * caller sets the rest (uc_replsvc_http_opts does most). */
void flaredb_api_opts(struct flaredb_server *s, struct uc_http_opts *opts);

/* Set the service's hooks in a module config: the query parameters a
 * forwarded request keeps, the status fields and the flaredb_* metrics. */
void flaredb_api_hooks(struct uc_replsvc_config *cfg);

#endif /* FLAREDB_API_H */
