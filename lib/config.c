/* config.c - daemon options from one table: command-line flags, then
 * UC_<SERVICE>_<OPTION> environment variables, then a JSON file, then the
 * table's defaults; the generated --help; and reading small files. */
#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "uc/alloc.h"
#include "uc/config.h"
#include "uc/json.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define ECHO_MAX 64   /* offending values are cut to this in messages */
#define NAME_BUF 128  /* env var and JSON key names */
#define LABEL_BUF 200 /* "--name", "UC_SVC_NAME" or "file: key" */

/* One option's value while loading; committed to the target only at the end. */
struct slot {
    const char *flag; /* value from argv (borrowed), or NULL */
    bool set;
    char *s; /* UC_CFG_STRING: owned until committed */
    int64_t i;
    bool b;
};

struct load {
    const struct uc_config_opt *opts;
    const char *service;
    size_t n;
    struct slot *slots;
    const char *config_path; /* borrowed from argv or the environment */
    json_t *file;            /* the parsed config file, or NULL */
    bool check_only;         /* --check-config: validate, report, commit nothing */
};

/* "UC_" + service + "_" + suffix, upper-cased with '-' as '_'. */
static void env_name(char *buf, size_t len, const char *service, const char *suffix)
{
    snprintf(buf, len, "UC_%s_%s", service, suffix);
    for (char *p = buf; *p; p++)
        *p = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
}

/* The JSON file key of an option: its name with '-' as '_'. */
static void json_key(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s", name);
    for (char *p = buf; *p; p++)
        if (*p == '-')
            *p = '_';
}

static size_t count_opts(const struct uc_config_opt *opts)
{
    size_t n = 0;
    while (opts[n].name)
        n++;
    return n;
}

/* "must be an integer from 1 to 65535", "must be true or false", ... */
static const char *expectation(const struct uc_config_opt *o, char *buf, size_t len)
{
    if (o->type == UC_CFG_BOOL)
        return "must be true or false";
    if (o->type == UC_CFG_STRING)
        return "must be a string";
    if (o->min == 0 && o->max == 0)
        return "must be an integer";
    snprintf(buf, len, "must be an integer from %lld to %lld", (long long)o->min,
             (long long)o->max);
    return buf;
}

static int bad_value(char *err, const char *label, const struct uc_config_opt *o, const char *got)
{
    char exp[96], shown[ECHO_MAX + 4];
    uc_err_sanitize(shown, sizeof(shown), got, ECHO_MAX);
    return uc_err_set(err, UC_EINVAL, "%s: %s (got '%s')", label, expectation(o, exp, sizeof(exp)),
                      shown);
}

/* Strict base-10 integer: optional '-', digits only, no overflow. */
static bool parse_i64(const char *s, int64_t *out)
{
    const char *d = s[0] == '-' ? s + 1 : s;
    if (!isdigit((unsigned char)d[0]))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool in_bounds(const struct uc_config_opt *o, int64_t v)
{
    return (o->min == 0 && o->max == 0) || (v >= o->min && v <= o->max);
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes"}, *const no[] = {"false", "0", "no"};
    for (size_t k = 0; k < 3; k++) {
        if (strcasecmp(s, yes[k]) == 0 || strcasecmp(s, no[k]) == 0) {
            *out = strcasecmp(s, yes[k]) == 0;
            return true;
        }
    }
    return false;
}

/* Parse a textual value (flag, env or default) into `sl`. */
static int set_from_text(struct slot *sl, const struct uc_config_opt *o, const char *text,
                         const char *label, char *err)
{
    switch (o->type) {
    case UC_CFG_STRING:
        sl->s = uc_strdup(text);
        if (!sl->s)
            return uc_err_set(err, UC_ENOMEM, "%s: out of memory", label);
        break;
    case UC_CFG_INT:
        if (!parse_i64(text, &sl->i) || !in_bounds(o, sl->i))
            return bad_value(err, label, o, text);
        break;
    case UC_CFG_BOOL:
        if (!parse_bool(text, &sl->b))
            return bad_value(err, label, o, text);
        break;
    }
    sl->set = true;
    return 0;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        break;
    }
    return "null";
}

/* Take a value from the JSON file: its JSON type must match the option's. */
static int set_from_json(struct slot *sl, const struct uc_config_opt *o, const json_t *v,
                         const char *label, char *err)
{
    char exp[96];
    if (o->type == UC_CFG_STRING && json_is_string(v))
        return set_from_text(sl, o, json_string_value(v), label, err);
    if (o->type == UC_CFG_BOOL && json_is_boolean(v)) {
        sl->b = json_is_true(v);
        sl->set = true;
        return 0;
    }
    if (o->type == UC_CFG_INT && json_is_integer(v)) {
        sl->i = json_integer_value(v);
        if (!in_bounds(o, sl->i))
            return uc_err_set(err, UC_EINVAL, "%s: %s (got %lld)", label,
                              expectation(o, exp, sizeof(exp)), (long long)sl->i);
        sl->set = true;
        return 0;
    }
    return uc_err_set(err, UC_EINVAL, "%s: %s (got %s)", label, expectation(o, exp, sizeof(exp)),
                      json_kind(v));
}

static bool is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

/* Index of the option called `name` (first `len` bytes), or -1. */
static long find_opt(const struct load *ld, const char *name, size_t len)
{
    for (size_t k = 0; k < ld->n; k++)
        if (strncmp(ld->opts[k].name, name, len) == 0 && ld->opts[k].name[len] == '\0')
            return (long)k;
    return -1;
}

/* Record every flag's value (borrowed from argv); last one wins. */
static int parse_argv(struct load *ld, int argc, char **argv, char *err)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char shown[ECHO_MAX + 4];
        uc_err_sanitize(shown, sizeof(shown), a, ECHO_MAX);
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
            return uc_err_set(err, UC_EINVAL, "unexpected argument '%s' (options start with --)",
                              shown);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (eq && (size_t)(eq - a) < strlen(shown))
            shown[eq - a] = '\0'; /* name the flag, not its value */
        if (len == 12 && strncmp(name, "check-config", 12) == 0) {
            if (eq)
                return uc_err_set(err, UC_EINVAL, "--check-config: takes no value");
            ld->check_only = true;
            continue;
        }
        bool is_config = len == 6 && strncmp(name, "config", 6) == 0;
        long k = is_config ? -1 : find_opt(ld, name, len);
        if (!is_config && k < 0)
            return uc_err_set(err, UC_EINVAL, "unknown option '%s' (see --help)", shown);
        const char *val = eq ? eq + 1 : NULL;
        if (!val && !is_config && ld->opts[k].type == UC_CFG_BOOL)
            val = "true";
        if (!val && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
            val = argv[++i];
        if (!val)
            return uc_err_set(err, UC_EINVAL, "--%.*s: needs a value", (int)len, name);
        if (is_config)
            ld->config_path = val;
        else
            ld->slots[k].flag = val;
    }
    return 0;
}

/* Every key of the file must name an option. */
static int check_file_keys(const struct load *ld, char *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(ld->file, key, val)
    {
        bool known = false;
        for (size_t k = 0; k < ld->n && !known; k++) {
            char jk[NAME_BUF];
            json_key(jk, sizeof(jk), ld->opts[k].name);
            known = strcmp(jk, key) == 0;
        }
        if (!known) {
            char shown[ECHO_MAX + 4];
            uc_err_sanitize(shown, sizeof(shown), key, ECHO_MAX);
            return uc_err_set(err, UC_EINVAL, "%s: unknown key '%s'", ld->config_path, shown);
        }
    }
    return 0;
}

static int load_file(struct load *ld, char *err)
{
    char env[NAME_BUF];
    env_name(env, sizeof(env), ld->service, "config");
    if (!ld->config_path)
        ld->config_path = getenv(env);
    if (!ld->config_path)
        return 0;
    char *text = NULL;
    size_t len = 0;
    int rc = uc_config_read_file(ld->config_path, CONFIG_FILE_MAX, &text, &len, err);
    if (rc < 0)
        return rc;
    rc = uc_json_parse(text, len, &ld->file, err);
    uc_free(text);
    if (rc < 0)
        return uc_err_prefix(err, rc, "%s", ld->config_path);
    if (!json_is_object(ld->file))
        return uc_err_set(err, UC_EINVAL, "%s: must hold a JSON object", ld->config_path);
    return check_file_keys(ld, err);
}

/* Fill one slot from the first source that has a value. */
static int resolve(struct load *ld, size_t k, char *err)
{
    const struct uc_config_opt *o = &ld->opts[k];
    struct slot *sl = &ld->slots[k];
    char label[LABEL_BUF], env[NAME_BUF], key[NAME_BUF];
    env_name(env, sizeof(env), ld->service, o->name);
    json_key(key, sizeof(key), o->name);
    const char *ev = getenv(env);
    const json_t *fv = ld->file ? json_object_get(ld->file, key) : NULL;
    if (sl->flag) {
        snprintf(label, sizeof(label), "--%s", o->name);
        return set_from_text(sl, o, sl->flag, label, err);
    }
    if (ev)
        return set_from_text(sl, o, ev, env, err);
    if (fv && !json_is_null(fv)) {
        snprintf(label, sizeof(label), "%s: %s", ld->config_path, key);
        return set_from_json(sl, o, fv, label, err);
    }
    if (o->def) {
        snprintf(label, sizeof(label), "default of --%s", o->name);
        return set_from_text(sl, o, o->def, label, err);
    }
    if (o->required)
        return uc_err_set(err, UC_EINVAL,
                          "--%s is required (or set %s, or \"%s\" in the config file)", o->name,
                          env, key);
    return 0;
}

static void commit(const struct load *ld, void *target)
{
    for (size_t k = 0; k < ld->n; k++) {
        const struct uc_config_opt *o = &ld->opts[k];
        struct slot *sl = &ld->slots[k];
        void *field = (char *)target + o->offset; /* offsetof keeps it aligned */
        if (o->type == UC_CFG_STRING) {
            *(char **)field = sl->s;
            sl->s = NULL; /* now owned by target */
        } else if (o->type == UC_CFG_INT) {
            *(int64_t *)field = sl->i;
        } else {
            *(bool *)field = sl->b;
        }
    }
}

/* --check-config succeeded: say so where --help would print; the caller
 * exits 0 as it does after --help, so no daemon needs code of its own. */
static int report_ok(void)
{
    fputs("config ok\n", stdout);
    return UC_EHELP;
}

int uc_config_load(void *target, const struct uc_config_opt *opts, const char *service, int argc,
                   char **argv, char err[UC_ERR_LEN])
{
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            uc_config_usage(opts, service, stdout);
            return UC_EHELP;
        }
    }
    struct load ld = {.opts = opts, .service = service, .n = count_opts(opts)};
    ld.slots = uc_calloc(ld.n ? ld.n : 1, sizeof(*ld.slots));
    if (!ld.slots)
        return uc_err_set(err, UC_ENOMEM, "out of memory loading options");
    int rc = parse_argv(&ld, argc, argv, err);
    if (rc == 0)
        rc = load_file(&ld, err);
    for (size_t k = 0; rc == 0 && k < ld.n; k++)
        rc = resolve(&ld, k, err);
    if (rc == 0 && ld.check_only)
        rc = report_ok();
    else if (rc == 0)
        commit(&ld, target);
    for (size_t k = 0; k < ld.n; k++)
        uc_free(ld.slots[k].s);
    uc_free(ld.slots);
    json_decref(ld.file);
    return rc;
}

void uc_config_free(void *target, const struct uc_config_opt *opts)
{
    for (const struct uc_config_opt *o = opts; o->name; o++) {
        if (o->type != UC_CFG_STRING)
            continue;
        char **field = (char **)(void *)((char *)target + o->offset);
        uc_free(*field);
        *field = NULL;
    }
}

static void usage_line(FILE *f, const struct uc_config_opt *o, const char *service)
{
    static const char *const metavar[] = {
        [UC_CFG_STRING] = " TEXT", [UC_CFG_INT] = " N", [UC_CFG_BOOL] = "[=BOOL]"};
    char flag[NAME_BUF + 16], env[NAME_BUF], bounds[96] = "";
    snprintf(flag, sizeof(flag), "--%s%s", o->name, metavar[o->type]);
    env_name(env, sizeof(env), service, o->name);
    fprintf(f, "  %-30s env %s", flag, env);
    if (o->def)
        fprintf(f, ", default %s", o->def[0] ? o->def : "\"\"");
    else if (o->required)
        fprintf(f, ", required");
    if (o->type == UC_CFG_INT && (o->min != 0 || o->max != 0))
        snprintf(bounds, sizeof(bounds), " (%lld to %lld)", (long long)o->min, (long long)o->max);
    fprintf(f, "\n      %s%s\n", o->help ? o->help : "", bounds);
}

void uc_config_usage(const struct uc_config_opt *opts, const char *service, void *out)
{
    FILE *f = out;
    char env[NAME_BUF];
    env_name(env, sizeof(env), service, "config");
    fprintf(f, "Usage: %s [OPTIONS]\n\n", service);
    fprintf(f, "Each option is taken from its flag, else its environment variable, else\n"
               "the JSON config file (keys are option names with - as _), else its default.\n\n"
               "Options:\n");
    for (const struct uc_config_opt *o = opts; o->name; o++)
        usage_line(f, o, service);
    fprintf(f, "  %-30s env %s\n      JSON file with options.\n", "--config FILE", env);
    fprintf(f, "  --check-config\n      Check the options, print \"config ok\" and exit 0, or the "
               "error and exit 2.\n");
    fprintf(f, "  -h, --help\n      Print this help and exit.\n");
}

/* Read fd to EOF into a growing buffer, refusing more than max bytes. */
static int read_all(int fd, const char *path, size_t hint, size_t max, char **out, size_t *len,
                    char *err)
{
    size_t cap = (hint < max ? hint : max) + 2, n = 0;
    char *buf = uc_malloc(cap);
    int rc = 0;
    while (buf) {
        if (n + 1 == cap) {
            size_t ncap = cap > max / 2 ? max + 2 : cap * 2;
            char *p = n > max ? NULL : uc_realloc(buf, ncap);
            if (!p) {
                rc = n > max ? uc_err_set(err, UC_E2BIG, "%s: larger than %zu bytes", path, max)
                             : UC_ENOMEM;
                break;
            }
            buf = p;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = uc_err_set(err, UC_EIO, "cannot read '%s': %s", path, strerror(errno));
            break;
        }
        if (r == 0) {
            buf[n] = '\0';
            *out = buf;
            *len = n;
            return 0;
        }
        n += (size_t)r;
    }
    if (buf)
        explicit_bzero(buf, n); /* it may hold part of a secret */
    uc_free(buf);
    return rc ? rc : uc_err_set(err, UC_ENOMEM, "cannot read '%s': out of memory", path);
}

int uc_config_read_file(const char *path, size_t max, char **out, size_t *len, char err[UC_ERR_LEN])
{
    if (max > CONFIG_FILE_MAX * (size_t)4096)
        max = CONFIG_FILE_MAX * (size_t)4096; /* keeps max + 2 from overflowing */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return uc_err_set(err, UC_ENOENT, "cannot read '%s': no such file", path);
    if (fd < 0)
        return uc_err_set(err, UC_EIO, "cannot read '%s': %s", path, strerror(errno));
    struct stat st;
    int rc;
    if (fstat(fd, &st) != 0)
        rc = uc_err_set(err, UC_EIO, "cannot read '%s': %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = uc_err_set(err, UC_EIO, "cannot read '%s': is a directory", path);
    else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
        rc = uc_err_set(err, UC_E2BIG, "%s: larger than %zu bytes", path, max);
    else
        rc =
            read_all(fd, path, S_ISREG(st.st_mode) ? (size_t)st.st_size : 4096, max, out, len, err);
    (void)close(fd); /* read-only descriptor: a failing close loses nothing */
    return rc;
}
