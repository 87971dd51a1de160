/* auth_claims.c - roles, role and project checks, and the validation of a
 * token's claims. Kept apart from the verifier (auth.c) so a daemon that
 * only checks claims does not link the HTTP client and libcurl. */
#include <assert.h>
#include <string.h>

#include "uc/alloc.h"
#include "auth_internal.h"
#include "uc/auth.h"

static const char *const role_names[] = {
    [UC_ROLE_ANY] = "none",
    [UC_ROLE_READER] = "reader",
    [UC_ROLE_MEMBER] = "member",
    [UC_ROLE_ADMIN] = "admin",
    [UC_ROLE_SYSTEM_ADMIN] = "system-admin",
};

const char *uc_role_name(enum uc_role r)
{
    return r >= UC_ROLE_ANY && r <= UC_ROLE_SYSTEM_ADMIN ? role_names[r] : "unknown";
}

int uc_role_parse(const char *name, enum uc_role *out)
{
    for (int r = UC_ROLE_READER; name && r <= UC_ROLE_SYSTEM_ADMIN; r++) {
        if (strcmp(name, role_names[r]) == 0) {
            *out = (enum uc_role)r;
            return 0;
        }
    }
    return UC_EINVAL;
}

int uc_auth_require(const struct uc_auth_claims *c, enum uc_role need, char err[UC_ERR_LEN])
{
    if (c->system_admin || need == UC_ROLE_ANY)
        return 0;
    if (need == UC_ROLE_SYSTEM_ADMIN)
        return uc_err_set(err, UC_EFORBIDDEN, "this call needs the 'system-admin' role");
    if (c->role >= need)
        return 0;
    if (c->role == UC_ROLE_ANY)
        return uc_err_set(err, UC_EFORBIDDEN,
                          "this call needs the '%s' role in the project; the token has no role",
                          uc_role_name(need));
    return uc_err_set(err, UC_EFORBIDDEN,
                      "this call needs the '%s' role in the project; the token has '%s'",
                      uc_role_name(need), uc_role_name(c->role));
}

int uc_auth_check_project(const struct uc_auth_claims *c, const char *project_id, enum uc_role need,
                          char err[UC_ERR_LEN])
{
    if (c->system_admin)
        return 0;
    if (!project_id || !c->project[0] || strcmp(c->project, project_id) != 0)
        return uc_err_set(err, UC_ENOENT, "not found");
    return uc_auth_require(c, need, err);
}

/* --- claims ------------------------------------------------------------ */

/* Copy string claim `name` into dst (cap bytes). Absent or null gives ""
 * unless required; too long, not a string or (if required) empty fails. */
static int claim_str(const json_t *p, const char *name, bool required, char *dst, size_t cap,
                     char *err)
{
    const json_t *v = json_object_get(p, name);
    dst[0] = '\0';
    if (!v || json_is_null(v))
        return required ? uc_err_set(err, UC_EUNAUTH, "token has no '%s' claim", name) : 0;
    if (!json_is_string(v))
        return uc_err_set(err, UC_EUNAUTH, "token claim '%s' must be a string", name);
    size_t len = json_string_length(v);
    if (len >= cap || strlen(json_string_value(v)) != len)
        return uc_err_set(err, UC_EUNAUTH, "token claim '%s' is too long", name);
    if (required && len == 0)
        return uc_err_set(err, UC_EUNAUTH, "token claim '%s' is empty", name);
    memcpy(dst, json_string_value(v), len + 1);
    return 0;
}

/* Read integer claim `name`; *present tells whether it was there. */
static int claim_time(const json_t *p, const char *name, int64_t *out, bool *present, char *err)
{
    const json_t *v = json_object_get(p, name);
    *present = v && !json_is_null(v);
    *out = 0;
    if (!*present)
        return 0;
    if (!json_is_integer(v))
        return uc_err_set(err, UC_EUNAUTH, "token claim '%s' must be an integer", name);
    *out = json_integer_value(v);
    return 0;
}

int auth_times_check(const struct auth_times *t, int64_t now, int64_t leeway, char *err)
{
    if (t->exp <= now - leeway)
        return uc_err_set(err, UC_EUNAUTH, "token expired");
    if (t->has_nbf && t->nbf > now + leeway)
        return uc_err_set(err, UC_EUNAUTH, "token not valid yet");
    if (t->has_iat && t->iat > now + leeway)
        return uc_err_set(err, UC_EUNAUTH, "token issued in the future");
    return 0;
}

static int check_times(const json_t *p, int64_t now, int64_t leeway, struct auth_times *t,
                       char *err)
{
    bool has_exp;
    int rc = claim_time(p, "exp", &t->exp, &has_exp, err);
    if (rc == 0)
        rc = claim_time(p, "iat", &t->iat, &t->has_iat, err);
    if (rc == 0)
        rc = claim_time(p, "nbf", &t->nbf, &t->has_nbf, err);
    if (rc < 0)
        return rc;
    if (!has_exp)
        return uc_err_set(err, UC_EUNAUTH, "token has no 'exp' claim");
    return auth_times_check(t, now, leeway, err);
}

static int check_audience(const json_t *p, const char *audience, char *err)
{
    const json_t *aud = json_object_get(p, "aud");
    if (json_is_string(aud) && strcmp(json_string_value(aud), audience) == 0)
        return 0;
    for (size_t i = 0; json_is_array(aud) && i < json_array_size(aud); i++) {
        const json_t *a = json_array_get(aud, i);
        if (json_is_string(a) && strcmp(json_string_value(a), audience) == 0)
            return 0;
    }
    return uc_err_set(err, UC_EUNAUTH, "token audience does not include '%s'", audience);
}

/* The highest known project role in "roles"; unknown names are ignored. */
static int check_roles(const json_t *p, struct uc_auth_claims *c, char *err)
{
    const json_t *roles = json_object_get(p, "roles");
    c->role = UC_ROLE_ANY;
    if (!roles || json_is_null(roles))
        return 0;
    if (!json_is_array(roles))
        return uc_err_set(err, UC_EUNAUTH, "token claim 'roles' must be an array");
    for (size_t i = 0; i < json_array_size(roles); i++) {
        const json_t *r = json_array_get(roles, i);
        enum uc_role role;
        if (!json_is_string(r))
            return uc_err_set(err, UC_EUNAUTH, "token claim 'roles' must hold strings");
        if (uc_role_parse(json_string_value(r), &role) == 0 && role < UC_ROLE_SYSTEM_ADMIN &&
            role > c->role)
            c->role = role;
    }
    if (!c->project[0])
        c->role = UC_ROLE_ANY; /* project roles mean nothing without a project */
    return 0;
}

int auth_claims_check(const json_t *p, const char *audience, int64_t now, int64_t leeway,
                      struct uc_auth_claims *out, struct auth_times *times, char *err)
{
    struct uc_auth_claims c;
    struct auth_times t;
    memset(&c, 0, sizeof(c));
    memset(&t, 0, sizeof(t));
    if (!json_is_object(p))
        return uc_err_set(err, UC_EUNAUTH, "token payload is not a JSON object");
    const json_t *iss = json_object_get(p, "iss");
    if (!json_is_string(iss) || strcmp(json_string_value(iss), UC_AUTH_ISSUER) != 0)
        return uc_err_set(err, UC_EUNAUTH, "token issuer is not '%s'", UC_AUTH_ISSUER);
    int rc = check_audience(p, audience, err);
    if (rc == 0)
        rc = check_times(p, now, leeway, &t, err);
    if (rc == 0)
        rc = claim_str(p, "sub", true, c.sub, sizeof(c.sub), err);
    if (rc == 0)
        rc = claim_str(p, "name", false, c.name, sizeof(c.name), err);
    if (rc == 0)
        rc = claim_str(p, "project", false, c.project, sizeof(c.project), err);
    if (rc == 0)
        rc = claim_str(p, "jti", false, c.jti, sizeof(c.jti), err);
    if (rc == 0)
        rc = check_roles(p, &c, err);
    const json_t *sys = json_object_get(p, "sys");
    if (rc == 0 && sys && !json_is_null(sys) && !json_is_boolean(sys))
        rc = uc_err_set(err, UC_EUNAUTH, "token claim 'sys' must be true or false");
    if (rc < 0)
        return rc;
    c.system_admin = json_is_true(sys);
    c.iat = t.iat;
    c.exp = t.exp;
    *out = c;
    if (times)
        *times = t;
    return 0;
}

int uc_auth_claims_from_json(const json_t *payload, int64_t now_s, int64_t leeway_s,
                             struct uc_auth_claims *out, char err[UC_ERR_LEN])
{
    return auth_claims_check(payload, UC_AUTH_AUDIENCE, now_s, leeway_s, out, NULL, err);
}
