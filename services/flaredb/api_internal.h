/* api_internal.h - what flaredb's api*.c files share: the handlers the
 * route table in api.c names, and the helpers every handler answers
 * through. Private to services/flaredb/api*.c. */
#ifndef FLAREDB_API_INTERNAL_H
#define FLAREDB_API_INTERNAL_H
#include <jansson.h>
#include <stdbool.h>

#include "api.h"

/* ---- handlers (ctx is the struct flaredb_server) ------------------------- */

int flaredb_api_h_sql(struct uc_http_req *req, void *ctx);    /* api_sql.c */
int flaredb_api_h_tables(struct uc_http_req *req, void *ctx); /* api_sql.c */
int flaredb_api_h_kv_get(struct uc_http_req *req, void *ctx); /* api_kv.c */
int flaredb_api_h_kv_put(struct uc_http_req *req, void *ctx);
int flaredb_api_h_kv_delete(struct uc_http_req *req, void *ctx);
int flaredb_api_h_kv_scan(struct uc_http_req *req, void *ctx);
int flaredb_api_h_kv_txn(struct uc_http_req *req, void *ctx);
int flaredb_api_h_acl_list(struct uc_http_req *req, void *ctx); /* api_acl.c */
int flaredb_api_h_acl_put(struct uc_http_req *req, void *ctx);
int flaredb_api_h_acl_delete(struct uc_http_req *req, void *ctx);

/* ---- answers (api.c) ------------------------------------------------------- */

/* Send `body` (stolen) with `status`; a failed send is logged. */
void flaredb_api_reply(struct uc_http_req *req, int status, json_t *body);

/* The error envelope of conventions.md for `code` and `msg`, plus the
 * fields of `extra` inside "error" (e.g. "statement", "key") and, when
 * `results` is set, a top-level "results" (both stolen, may be NULL). */
void flaredb_api_fail(struct uc_http_req *req, int code, const char *msg, json_t *extra,
                      json_t *results);

/* Answer a refusal whose message is in req->err, naming the statement
 * ("statement": i) when the message starts with "statements[i]". Counts it
 * in flaredb_sql_rejected_total when `s` is set. Returns 0 (answered). */
int flaredb_api_refuse(struct flaredb_server *s, struct uc_http_req *req, int code);

/* "consistency" (`v`, NULL when absent): *linearizable is true for
 * "linearizable" or NULL, false for "serializable".
 * Errors: UC_EINVAL with the message in req->err. */
UC_MUSTCHECK int flaredb_api_consistency(struct uc_http_req *req, const char *v,
                                         bool *linearizable);

/* Propose `cmd` (stolen; already checked) and answer from the commit: the
 * command's result, with "index" added when `with_index`, or its error.
 * Returns UC_HTTP_ASYNC, or an error for the router (nothing answered). */
UC_MUSTCHECK int flaredb_api_propose(struct flaredb_server *s, struct uc_http_req *req, json_t *cmd,
                                     bool with_index);

/* Propose a log entry (`len` bytes at `entry`, stolen) and answer as
 * flaredb_api_propose does. */
UC_MUSTCHECK int flaredb_api_propose_entry(struct flaredb_server *s, struct uc_http_req *req,
                                           void *entry, size_t len, bool with_index);

/* flaredb_db_check `cmd` (stolen), then flaredb_api_propose it; a refused
 * command is answered at once (0). For KV and restriction commands. */
UC_MUSTCHECK int flaredb_api_submit(struct flaredb_server *s, struct uc_http_req *req, json_t *cmd);

#endif /* FLAREDB_API_INTERNAL_H */
