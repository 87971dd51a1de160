/* tokens.h - token grants (password and access key), the claims IAM signs,
 * introspection, whoami, and the router's authentication callback (the
 * bootstrap token, or a token verified against IAM's own keyring).
 * Thread-safe once iam_tokens_init has run. */
#ifndef IAM_TOKENS_H
#define IAM_TOKENS_H
#include <jansson.h>
#include <stdint.h>

#include "server.h"
#include "uc/auth.h"

/* Prepare s->dummy_hash (checked when a username is unknown, so that case
 * takes as long as a wrong password). Errors: UC_ECRYPTO, UC_ENOMEM. */
UC_MUSTCHECK int iam_tokens_init(struct iam_server *s, char err[UC_ERR_LEN]);
void iam_tokens_deinit(struct iam_server *s);

/* POST /tokens body (borrowed). *out (new reference) is the token answer.
 * Errors: UC_EINVAL (body), UC_ERATE (*retry_after_s set), UC_EUNAUTH
 * ("invalid credentials" for every bad login), UC_EFORBIDDEN (no role in
 * the requested project), UC_ENOENT, UC_EUNAVAIL (no signing key) and the
 * store's. */
UC_MUSTCHECK int iam_tokens_issue(struct iam_server *s, const json_t *body, json_t **out,
                                  int64_t *retry_after_s, char err[UC_ERR_LEN]);

/* Verify a token IAM issued: signature by the active or a verifying key,
 * then iss, aud and expiry. Does not look at the principal.
 * Errors: UC_EUNAUTH, UC_ENOMEM. */
UC_MUSTCHECK int iam_tokens_verify(struct iam_server *s, const char *token,
                                   struct uc_auth_claims *out, char err[UC_ERR_LEN]);

/* POST /tokens/introspect {"token"}: *out is {"active": false} or the
 * token's claims when it verifies and its principal still exists and is not
 * disabled. Errors: UC_EINVAL (body), UC_ENOMEM and the store's. */
UC_MUSTCHECK int iam_tokens_introspect(struct iam_server *s, const json_t *body, json_t **out,
                                       char err[UC_ERR_LEN]);

/* The caller's claims as JSON (*out new reference). Errors: UC_ENOMEM. */
UC_MUSTCHECK int iam_tokens_whoami(const struct uc_auth_claims *c, json_t **out);

/* uc_http_authn_fn: ctx is the struct iam_server. The bootstrap token
 * yields system-admin claims with subject "bootstrap". */
int iam_tokens_authn(void *ctx, const char *token, struct uc_auth_claims *out,
                     char err[UC_ERR_LEN]);

#endif /* IAM_TOKENS_H */
