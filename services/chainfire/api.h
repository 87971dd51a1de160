/* api.h - chainfire's REST routes (docs/api/chainfire.md) over a
 * chainfire_server: writes are proposed to raft and answered after commit,
 * linearizable reads wait for a read barrier. Thread-safe. */
#ifndef CHAINFIRE_API_H
#define CHAINFIRE_API_H
#include "server.h"
#include "uc/http.h"

/* Fill the routes, ctx (s, borrowed for the server's life), ready and
 * metrics fields of opts; the caller sets the rest (authn included). */
void chainfire_api_opts(struct chainfire_server *s, struct uc_http_opts *opts);

#endif /* CHAINFIRE_API_H */
