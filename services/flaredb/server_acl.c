/* server_acl.c - who may reach a restricted namespace or table: a cache of
 * the replicated restriction list, reloaded whenever the database says it
 * changed (flaredb_db_acl_generation), so a request costs no query. A
 * caller reaches an object restricted to project P when its token is for P
 * and holds a role there, or when it is a system admin. */
#include <string.h>
#include <strings.h>

#include "server.h"
#include "uc/alloc.h"

/* Reload the cache if the list moved. Caller holds acl_mu. The generation
 * is read before the list: a change landing in between only causes one more
 * reload later. */
static int refresh(struct flaredb_server *s, char *err)
{
    uint64_t gen = flaredb_db_acl_generation(s->db);
    if (s->acl && gen == s->acl_gen)
        return 0;
    json_t *list = NULL;
    int rc = flaredb_db_acl_list(s->db, &list, err);
    if (rc < 0)
        return rc;
    json_decref(s->acl);
    s->acl = json_incref(json_object_get(list, "items"));
    json_decref(list);
    s->acl_gen = gen;
    return 0;
}

static bool reaches(const struct uc_auth_claims *c, const char *project)
{
    return c->system_admin || (strcmp(c->project, project) == 0 && c->role >= UC_ROLE_READER);
}

/* The project `kind` `name` is restricted to (borrowed from the cache; the
 * caller holds acl_mu), or NULL. */
static const char *project_of(const struct flaredb_server *s, const char *kind, const char *name)
{
    size_t i;
    const json_t *item;
    json_array_foreach(s->acl, i, item)
    {
        const char *k = json_string_value(json_object_get(item, "kind"));
        const char *n = json_string_value(json_object_get(item, "name"));
        if (k && n && strcmp(k, kind) == 0 && strcasecmp(n, name) == 0)
            return json_string_value(json_object_get(item, "project"));
    }
    return NULL;
}

int flaredb_server_reach(struct flaredb_server *s, const struct uc_auth_claims *c, const char *kind,
                         const char *name, char err[UC_ERR_LEN])
{
    if (c->system_admin)
        return 0;
    pthread_mutex_lock(&s->acl_mu);
    int rc = refresh(s, err);
    const char *p = rc == 0 ? project_of(s, kind, name) : NULL;
    bool ok = !p || reaches(c, p);
    pthread_mutex_unlock(&s->acl_mu);
    if (rc < 0)
        return rc;
    if (!ok) {
        char shown[72];
        uc_err_sanitize(shown, sizeof(shown), name, 64);
        return uc_err_set(err, UC_ENOENT, "%s '%s' not found", kind, shown);
    }
    return 0;
}

/* Appends to `out` the restricted tables `c` does not reach. */
static int collect_hidden(const struct flaredb_server *s, const struct uc_auth_claims *c,
                          json_t *out)
{
    size_t i;
    const json_t *item;
    json_array_foreach(s->acl, i, item)
    {
        const char *kind = json_string_value(json_object_get(item, "kind"));
        const char *p = json_string_value(json_object_get(item, "project"));
        if (!kind || strcmp(kind, "table") != 0 || !p || reaches(c, p))
            continue;
        if (json_array_append(out, json_object_get(item, "name")) < 0)
            return UC_ENOMEM;
    }
    return 0;
}

int flaredb_server_hidden(struct flaredb_server *s, const struct uc_auth_claims *c, json_t **out,
                          char err[UC_ERR_LEN])
{
    if (c->system_admin) {
        *out = NULL;
        return 0;
    }
    json_t *names = json_array();
    if (!names)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    pthread_mutex_lock(&s->acl_mu);
    int rc = refresh(s, err);
    if (rc == 0 && collect_hidden(s, c, names) < 0)
        rc = uc_err_set(err, UC_ENOMEM, "out of memory");
    pthread_mutex_unlock(&s->acl_mu);
    if (rc < 0 || json_array_size(names) == 0) {
        json_decref(names);
        names = NULL;
    }
    if (rc == 0)
        *out = names;
    return rc;
}
