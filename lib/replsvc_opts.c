/* replsvc_opts.c - the replicated services' start-up options that need more
 * than the config table: the --initial-cluster list and the API URL a member
 * advertises to the others. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_internal.h"
#include "uc/replsvc.h"

/* One "id=host:port" item of `len` bytes at `item` into *m. */
static int parse_member(const char *item, size_t len, struct uc_repl_member *m, char *err)
{
    char buf[UC_REPL_ADDR_LEN + 32], shown[64], *end;
    uc_err_sanitize(shown, sizeof(shown), item, len < 48 ? len : 48);
    if (len >= sizeof(buf))
        return uc_err_set(err, UC_EINVAL, "--initial-cluster: '%s' is too long", shown);
    memcpy(buf, item, len);
    buf[len] = '\0';
    char *eq = strchr(buf, '=');
    unsigned long long id = eq && buf[0] >= '0' && buf[0] <= '9' ? strtoull(buf, &end, 10) : 0;
    if (!eq || end != eq || id == 0 || !repl_valid_addr(eq + 1))
        return uc_err_set(err, UC_EINVAL, "--initial-cluster: '%s' is not id=host:port", shown);
    *m = (struct uc_repl_member){.id = id, .role = UC_REPL_VOTER};
    snprintf(m->addr, sizeof(m->addr), "%s", eq + 1);
    return 0;
}

/* 0 when `m` repeats neither an id nor an address of list[0..n). */
static int check_unique(const struct uc_repl_member *list, size_t n, const struct uc_repl_member *m,
                        char *err)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i].id == m->id)
            return uc_err_set(err, UC_EINVAL, "--initial-cluster: member %llu is listed twice",
                              (unsigned long long)m->id);
        if (!strcmp(list[i].addr, m->addr))
            return uc_err_set(err, UC_EINVAL, "--initial-cluster: address %s is listed twice",
                              m->addr);
    }
    return 0;
}

int uc_replsvc_parse_cluster(const char *spec, struct uc_repl_member *out, size_t max, size_t *n,
                             char err[UC_ERR_LEN])
{
    struct uc_repl_member tmp[UC_REPL_MAX_MEMBERS];
    size_t count = 0;
    const char *s = spec ? spec : "";
    if (max > UC_REPL_MAX_MEMBERS)
        max = UC_REPL_MAX_MEMBERS;
    while (*s) {
        size_t len = strcspn(s, ",");
        if (count == max)
            return uc_err_set(err, UC_EINVAL, "--initial-cluster: more than %zu members", max);
        int rc = parse_member(s, len, &tmp[count], err);
        if (rc == 0)
            rc = check_unique(tmp, count, &tmp[count], err);
        if (rc < 0)
            return rc;
        count++;
        s += len + (s[len] == ',');
    }
    if (count == 0)
        return uc_err_set(err, UC_EINVAL, "--initial-cluster: no members listed");
    memcpy(out, tmp, count * sizeof(tmp[0]));
    *n = count;
    return 0;
}

/* An --advertise-url as given: http(s)://, printable, no spaces. */
static int check_url(const char *u, char *err)
{
    if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
        return uc_err_set(err, UC_EINVAL, "--advertise-url must start with http:// or https://");
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return uc_err_set(err, UC_EINVAL, "--advertise-url holds a space or control character");
    if (strlen(u) >= UC_REPLSVC_URL_LEN - 1)
        return uc_err_set(err, UC_EINVAL, "--advertise-url is longer than %d characters",
                          UC_REPLSVC_URL_LEN - 2);
    if (!strchr(u, ':') || strlen(strchr(u, ':')) <= 3)
        return uc_err_set(err, UC_EINVAL, "--advertise-url names no host");
    return 0;
}

int uc_replsvc_advertise_url(const struct uc_replsvc_opts *o, char out[UC_REPLSVC_URL_LEN],
                             char err[UC_ERR_LEN])
{
    const char *l = o->listen ? o->listen : "";
    out[0] = '\0';
    if (o->advertise_url && o->advertise_url[0]) {
        int rc = check_url(o->advertise_url, err);
        if (rc < 0)
            return rc;
        snprintf(out, UC_REPLSVC_URL_LEN, "%s", o->advertise_url);
        size_t n = strlen(out);
        while (n > 0 && out[n - 1] == '/')
            out[--n] = '\0';
        return 0;
    }
    if (!l[0] || !strcmp(l, "0.0.0.0") || !strcmp(l, "::") || !strcmp(l, "[::]"))
        return uc_err_set(err, UC_EINVAL,
                          "--advertise-url is required when --listen is '%s' (the other members "
                          "need an address they can reach)",
                          l);
    if (strlen(l) > 64)
        return uc_err_set(err, UC_EINVAL, "--listen is too long");
    if (strchr(l, ':') && l[0] != '[')
        snprintf(out, UC_REPLSVC_URL_LEN, "http://[%s]:%lld", l, (long long)o->port);
    else
        snprintf(out, UC_REPLSVC_URL_LEN, "http://%s:%lld", l, (long long)o->port);
    return 0;
}
