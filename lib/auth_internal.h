/* auth_internal.h - what auth.c (the verifier) needs from auth_claims.c. */
#ifndef UC_AUTH_INTERNAL_H
#define UC_AUTH_INTERNAL_H
#include <jansson.h>
#include <stdint.h>

#include "uc/auth.h"

/* uc_auth_claims_from_json with the audience as a parameter: the verifier
 * checks the audience it was configured with. Errors: UC_EUNAUTH. */
int auth_claims_check(const json_t *p, const char *audience, int64_t now, int64_t leeway,
                      struct uc_auth_claims *out, char *err);

#endif /* UC_AUTH_INTERNAL_H */
