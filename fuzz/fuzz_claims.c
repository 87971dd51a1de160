/* fuzz_claims.c - uc_auth_claims_from_json on any JSON payload (after a
 * token's signature checks out, its payload is still the issuer's bytes):
 * accepted claims must be terminated, bounded and self-consistent. */
#include <jansson.h>

#include "fuzz.h"
#include "uc/auth.h"

#define NOW_S 1767225600 /* 2026-01-01T00:00:00Z */

static int terminated(const char *s) { return memchr(s, '\0', UC_AUTH_ID_LEN) != NULL; }

static void check_claims(const struct uc_auth_claims *c, int64_t leeway)
{
    fuzz_check(terminated(c->sub) && c->sub[0] != '\0', "sub empty or unterminated");
    fuzz_check(terminated(c->name) && terminated(c->project) && terminated(c->jti),
               "claim string unterminated");
    fuzz_check(c->kid[0] == '\0', "kid filled from the payload");
    fuzz_check(c->role >= UC_ROLE_ANY && c->role < UC_ROLE_SYSTEM_ADMIN, "role out of range");
    fuzz_check(c->project[0] != '\0' || c->role == UC_ROLE_ANY, "role without a project");
    fuzz_check(c->exp > NOW_S - leeway, "expired token accepted");
}

static void run(const json_t *payload, int64_t leeway)
{
    struct uc_auth_claims c, before;
    memset(&c, 0xa5, sizeof(c));
    memcpy(&before, &c, sizeof(c));
    char err[UC_ERR_LEN] = "";
    int rc = uc_auth_claims_from_json(payload, NOW_S, leeway, &c, err);
    fuzz_check(rc == 0 || rc == UC_EUNAUTH, "uc_auth_claims_from_json: unexpected code");
    if (rc == 0)
        check_claims(&c, leeway);
    else
        fuzz_check(memcmp(&c, &before, sizeof(c)) == 0, "failed call touched its output");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    uc_alloc_install_jansson();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    /* Parsed as uc_jws_decode parses a payload. */
    json_t *v =
        json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!v)
        return 0;
    run(v, 0);
    run(v, 300);
    json_decref(v);
    return 0;
}
