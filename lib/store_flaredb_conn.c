/* store_flaredb_conn.c - how the flaredb storage backend reaches its
 * cluster: the URL (members, namespace, parameters), the bearer token (a
 * file re-read when it changes, or the caller's provider), and one request
 * tried on member after member until a definitive answer or the deadline.
 * A refused connection means the request never left; a timeout, a broken
 * transfer or a 502/503/504 may hide an applied write, and is recorded as
 * such so the caller never re-sends a write that could apply twice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store_flaredb_internal.h"
#include "uc/alloc.h"
#include "uc/clock.h"
#include "uc/config.h"
#include "uc/crypto.h"
#include "uc/httpc.h"

#define DEFAULT_TIMEOUT_MS 10000
#define MIN_TIMEOUT_MS 100
#define MAX_TIMEOUT_MS 600000
#define MEMBER_MAX 255 /* characters of one member URL */
#define FIRST_BACKOFF_MS 50
#define MAX_BACKOFF_MS 1000
#define SPLIT_MS 2000 /* above this much time left, one member gets at most half */
#define SHOWN 80      /* characters of URL text quoted in a message */
#define NS_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_.-"

/* ---- the URL ---------------------------------------------------------------------- */

static int bad_url(char *err, const char *what, const char *text)
{
    char shown[SHOWN + 4];
    uc_err_sanitize(shown, sizeof(shown), text, SHOWN);
    return uc_err_set(err, UC_EINVAL, "store: flaredb URL: %s '%s'", what, shown);
}

static bool member_ok(const char *m)
{
    size_t skip = strncmp(m, "http://", 7) == 0 ? 7 : strncmp(m, "https://", 8) == 0 ? 8 : 0;
    size_t n = strlen(m);
    if (!skip || n == skip || n > MEMBER_MAX)
        return false;
    for (const char *p = m + skip; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("/?#@\\", *p))
            return false;
    return true;
}

/* Split the comma-separated member list `list` (modified) into f->members. */
static int parse_members(struct fdb *f, char *list, char *err)
{
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    if (n > UC_STORE_MAX_MEMBERS)
        return uc_err_set(err, UC_EINVAL, "store: flaredb URL lists %zu members (at most %d)", n,
                          UC_STORE_MAX_MEMBERS);
    f->members = uc_calloc(n, sizeof(*f->members));
    if (!f->members)
        return uc_err_set(err, UC_ENOMEM, "store: out of memory");
    char *save = NULL;
    for (char *m = strtok_r(list, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        if (!member_ok(m))
            return bad_url(err, "a member must be http://host:port or https://host:port, not", m);
        if (!(f->members[f->nmembers++] = uc_strdup(m)))
            return uc_err_set(err, UC_ENOMEM, "store: out of memory");
    }
    if (f->nmembers != n)
        return bad_url(err, "empty member in", list);
    return 0;
}

static int parse_param(struct fdb *f, const char *name, const char *val, char *err)
{
    if (strcmp(name, "token_file") == 0) {
        if (!val[0])
            return bad_url(err, "token_file needs a path, got", val);
        uc_free(f->token_file);
        f->token_file = uc_strdup(val);
        return f->token_file ? 0 : uc_err_set(err, UC_ENOMEM, "store: out of memory");
    }
    if (strcmp(name, "timeout_ms") == 0) {
        char *end = NULL;
        long v = strtol(val, &end, 10);
        if (!val[0] || *end || v < MIN_TIMEOUT_MS || v > MAX_TIMEOUT_MS)
            return uc_err_set(err, UC_EINVAL,
                              "store: flaredb URL: timeout_ms must be an integer from %d to %d",
                              MIN_TIMEOUT_MS, MAX_TIMEOUT_MS);
        f->timeout_ms = (int)v;
        return 0;
    }
    return bad_url(err, "unknown parameter (known: token_file, timeout_ms)", name);
}

/* "a=1&b=2" (modified) into the handle. */
static int parse_query(struct fdb *f, char *q, char *err)
{
    char *save = NULL;
    for (char *kv = strtok_r(q, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return bad_url(err, "a parameter must be name=value, not", kv);
        *eq = '\0';
        int rc = parse_param(f, kv, eq + 1, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* "<members>/<ns>[?<query>]" (modified) into the handle. */
static int parse_url(struct fdb *f, char *s, char *err)
{
    char *q = strchr(s, '?');
    if (q) {
        *q++ = '\0';
        int rc = parse_query(f, q, err);
        if (rc < 0)
            return rc;
    }
    char *slash = strrchr(s, '/');
    if (!slash || slash == s || slash[-1] == '/')
        return bad_url(err, "expected <members>/<namespace>, got", s);
    *slash = '\0';
    const char *ns = slash + 1;
    size_t nlen = strlen(ns);
    if (nlen == 0 || nlen > FDB_NS_MAX || strspn(ns, NS_CHARS) != nlen)
        return bad_url(err, "the namespace must be 1-64 characters of a-z 0-9 _ . -, not", ns);
    memcpy(f->ns, ns, nlen + 1);
    return parse_members(f, s, err);
}

/* ---- the token -------------------------------------------------------------------- */

static int64_t mtime_ns(const struct stat *st)
{
    return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static bool same_file(const struct fdb *f, const struct stat *st)
{
    return f->token && f->tdev == st->st_dev && f->tino == st->st_ino && f->tsize == st->st_size &&
           f->tmtime_ns == mtime_ns(st);
}

/* The token in `text` (modified): white space around it is dropped, and
 * what is left must be printable ASCII without spaces. */
static int trim_token(char *text, char **tok, char *err)
{
    char *p = text + strspn(text, " \t\r\n");
    size_t n = strlen(p);
    while (n > 0 && strchr(" \t\r\n", p[n - 1]))
        n--;
    p[n] = '\0';
    if (n == 0)
        return uc_err_set(err, UC_EINVAL, "holds no token");
    for (size_t i = 0; i < n; i++)
        if (p[i] <= ' ' || p[i] >= 0x7f)
            return uc_err_set(err, UC_EINVAL, "holds a character a token cannot have");
    *tok = p;
    return 0;
}

/* Read the token file into f->token when it changed since the last read.
 * Caller holds token_mu. A failed re-read keeps the previous token. */
static int refresh_token(struct fdb *f, char *err)
{
    struct stat st;
    if (stat(f->token_file, &st) == 0 && same_file(f, &st))
        return 0;
    char *text = NULL, *tok = NULL;
    size_t len = 0;
    int rc = uc_config_read_file(f->token_file, UC_STORE_TOKEN_LEN - 1, &text, &len, err);
    if (rc == 0)
        rc = trim_token(text, &tok, err);
    char *copy = rc == 0 ? uc_strdup(tok) : NULL;
    if (rc == 0 && !copy)
        rc = uc_err_set(err, UC_ENOMEM, "out of memory");
    if (text) {
        uc_crypto_wipe(text, len);
        uc_free(text);
    }
    if (rc < 0)
        return f->token ? 0 : uc_err_prefix(err, rc, "store: flaredb token_file %s", f->token_file);
    if (f->token) {
        uc_crypto_wipe(f->token, strlen(f->token));
        uc_free(f->token);
    }
    f->token = copy;
    f->tdev = st.st_dev;
    f->tino = st.st_ino;
    f->tsize = st.st_size;
    f->tmtime_ns = mtime_ns(&st);
    return 0;
}

/* The bearer token for the next request. */
static int get_token(struct fdb *f, char tok[UC_STORE_TOKEN_LEN], char *err)
{
    if (!f->token_file) {
        tok[0] = '\0';
        int rc = f->token_fn(f->token_ctx, tok, err);
        if (rc == 0 && (!tok[0] || memchr(tok, '\0', UC_STORE_TOKEN_LEN) == NULL))
            rc = uc_err_set(err, UC_EINTERNAL, "the token provider gave no token");
        return rc < 0 ? uc_err_prefix(err, rc, "store: flaredb token") : 0;
    }
    pthread_mutex_lock(&f->token_mu);
    int rc = refresh_token(f, err);
    if (rc == 0)
        snprintf(tok, UC_STORE_TOKEN_LEN, "%s", f->token);
    pthread_mutex_unlock(&f->token_mu);
    return rc;
}

/* ---- the handle ------------------------------------------------------------------- */

int fdb_create(struct fdb **out, const char *rest, const struct uc_store_opts *opts, char *err)
{
    struct fdb *f = uc_calloc(1, sizeof(*f));
    if (!f)
        return uc_err_set(err, UC_ENOMEM, "store: out of memory");
    f->timeout_ms = DEFAULT_TIMEOUT_MS;
    if (pthread_mutex_init(&f->token_mu, NULL) != 0) {
        uc_free(f);
        return uc_err_set(err, UC_ENOMEM, "store: cannot create a mutex");
    }
    char *copy = uc_strdup(rest);
    int rc = copy ? parse_url(f, copy, err) : uc_err_set(err, UC_ENOMEM, "store: out of memory");
    uc_free(copy);
    if (rc == 0 && !f->token_file && !(opts && opts->token))
        rc = uc_err_set(err, UC_EINVAL,
                        "store: flaredb needs a token: add ?token_file=<path> to the URL");
    if (rc == 0 && !f->token_file) {
        f->token_fn = opts->token;
        f->token_ctx = opts->token_ctx;
    }
    if (rc == 0 && f->token_file)
        rc = refresh_token(f, err);
    if (rc == 0 && uc_httpc_global_init() < 0)
        rc = uc_err_set(err, UC_EIO, "store: cannot initialise libcurl");
    f->curl_ready = rc == 0;
    if (rc < 0) {
        fdb_destroy(f);
        return rc;
    }
    *out = f;
    return 0;
}

void fdb_destroy(struct fdb *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nmembers; i++)
        uc_free(f->members[i]);
    uc_free(f->members);
    uc_free(f->token_file);
    if (f->token) {
        uc_crypto_wipe(f->token, strlen(f->token));
        uc_free(f->token);
    }
    /* Never locked at this point; a failure could not be acted on. */
    (void)pthread_mutex_destroy(&f->token_mu);
    if (f->curl_ready)
        uc_httpc_global_cleanup(); /* libcurl counts inits: only the last one cleans up */
    uc_free(f);
}

/* ---- requests --------------------------------------------------------------------- */

void fdb_call_start(const struct fdb *f, struct fdb_call *c)
{
    c->deadline = uc_clock_mono_ms(NULL) + f->timeout_ms;
    c->unknown = false;
}

void fdb_answer_clear(struct fdb_answer *a)
{
    json_decref(a->json);
    a->json = NULL;
    a->status = 0;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        continue; /* EINTR: sleep the rest */
}

/* The message of an error answer (borrowed), or "". */
static const char *answer_message(const json_t *j)
{
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    return m ? m : "";
}

/* One attempt at member m with token `tok`, given `ms` to answer. */
static int attempt(struct fdb *f, size_t m, const char *tok, const char *method, const char *path,
                   const json_t *body, int64_t ms, struct uc_httpc_resp *resp, char *err)
{
    char *url = uc_asprintf("%s/api/v1/kv/%s%s", f->members[m], f->ns, path);
    if (!url)
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    struct uc_httpc_opts o = {.bearer = tok, .timeout_ms = (int)ms};
    int rc = uc_httpc_json(method, url, body, &o, resp, err);
    uc_free(url);
    return rc;
}

/* Time the next attempt gets: all that is left, but at most half of it
 * while there is much left and another member could answer instead. */
static int64_t attempt_ms(const struct fdb *f, int64_t left)
{
    return f->nmembers > 1 && left > SPLIT_MS ? left / 2 : left;
}

enum verdict { V_ANSWER, V_NOT_SENT, V_LOST };

/* What an attempt came to; negative codes end the request. A refused
 * connection never reached a member; a timeout, a broken transfer or a
 * 502/503/504 may hide a write the member proposed (or forwarded to a
 * leader that did) before failing. */
static int judge(int rc, const struct uc_httpc_resp *resp, enum verdict *v, char *msg)
{
    if (rc == UC_EUNAVAIL || rc == UC_ETIMEDOUT || rc == UC_EIO) {
        *v = rc == UC_EUNAVAIL ? V_NOT_SENT : V_LOST;
        return 0;
    }
    if (rc < 0)
        return rc;
    long s = resp->status;
    *v = s == 502 || s == 503 || s == 504 ? V_LOST : V_ANSWER;
    if (*v == V_LOST)
        snprintf(msg, UC_ERR_LEN, "%ld %s", s, answer_message(resp->json));
    return 0;
}

/* Wait before the next round of members, within the deadline. */
static void back_off(const struct fdb_call *c, int64_t *backoff)
{
    int64_t left = c->deadline - uc_clock_mono_ms(NULL);
    sleep_ms(*backoff < left ? *backoff : (left > 0 ? left : 0));
    *backoff = *backoff * 2 < MAX_BACKOFF_MS ? *backoff * 2 : MAX_BACKOFF_MS;
}

static int give_up(const struct fdb *f, const struct fdb_call *c, const char *msg, char *err)
{
    char shown[UC_ERR_LEN / 2];
    uc_err_sanitize(shown, sizeof(shown), msg, 120);
    return uc_err_set(err, c->unknown ? UC_ETIMEDOUT : UC_EUNAVAIL,
                      "store: flaredb: no member answered within %d ms%s (last: %s)", f->timeout_ms,
                      c->unknown ? "; the write may have been applied" : "", shown);
}

int fdb_request(struct fdb *f, struct fdb_call *c, enum fdb_kind kind, const char *method,
                const char *path, const json_t *body, struct fdb_answer *a, char *err)
{
    char tok[UC_STORE_TOKEN_LEN], msg[UC_ERR_LEN] = "none";
    size_t n = f->nmembers, first = atomic_load(&f->preferred) % n;
    int64_t backoff = FIRST_BACKOFF_MS, left;
    int rc = 0;
    for (size_t i = 0; rc == 0 && (left = c->deadline - uc_clock_mono_ms(NULL)) > 0; i++) {
        size_t m = (first + i) % n;
        struct uc_httpc_resp resp = {0};
        enum verdict v = V_NOT_SENT;
        if ((rc = get_token(f, tok, err)) < 0)
            break;
        rc = attempt(f, m, tok, method, path, body, attempt_ms(f, left), &resp, msg);
        uc_crypto_wipe(tok, strlen(tok));
        if ((rc = judge(rc, &resp, &v, msg)) < 0)
            uc_err_set(err, rc, "store: flaredb: %s", msg);
        if (rc == 0 && v == V_ANSWER) {
            atomic_store(&f->preferred, m);
            a->status = resp.status;
            a->json = json_incref(resp.json);
        }
        uc_httpc_resp_clear(&resp);
        if (rc < 0 || v == V_ANSWER)
            return rc;
        c->unknown |= v == V_LOST && kind != FDB_READ;
        if (v == V_LOST && kind == FDB_WRITE_ONCE)
            return uc_err_set(err, UC_ETIMEDOUT,
                              "store: flaredb: outcome unknown: the answer was lost (%s) and a "
                              "write without a fence is not re-sent",
                              msg);
        if ((i + 1) % n == 0)
            back_off(c, &backoff);
    }
    return rc < 0 ? rc : give_up(f, c, msg, err);
}

int fdb_answer_error(const struct fdb_answer *a, const char *what, char *err)
{
    char shown[200];
    int code;
    switch (a->status) {
    case 400:
        code = UC_EINVAL;
        break;
    case 401:
        code = UC_EUNAUTH;
        break;
    case 403:
        code = UC_EFORBIDDEN;
        break;
    case 404:
        code = UC_ENOENT;
        break;
    case 409:
        code = UC_ECONFLICT;
        break;
    case 413:
        code = UC_E2BIG;
        break;
    case 429:
        code = UC_ERATE;
        break;
    case 500:
        code = UC_EIO;
        break;
    default:
        code = UC_EPROTO;
        break;
    }
    uc_err_sanitize(shown, sizeof(shown), answer_message(a->json), 160);
    return uc_err_set(err, code, "%s: flaredb answered %ld%s%s", what, a->status,
                      shown[0] ? ": " : "", shown);
}
