/* main.c - the iam daemon's start-up order: signals, options, log, secrets,
 * store, rate limiter, HTTP server, then the keyring (importing the file
 * key), retried while the store cannot be reached; then wait for SIGTERM,
 * drain and tear down in reverse. The server starts before the keyring
 * because on a flaredb store iam reads its keyring with a token it signs
 * itself, which flaredb checks against this daemon's JWKS: until the
 * keyring is loaded the API answers 503, except GET /api/v1/keys, which
 * serves the signing key file's key. All state lives in struct daemon on
 * main's stack. */
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "keyring.h"
#include "ratelimit.h"
#include "secrets.h"
#include "server.h"
#include "store_token.h"
#include "tokens.h"
#include "uc/alloc.h"
#include "uc/config.h"
#include "uc/daemon.h"
#include "uc/http.h"
#include "uc/jws.h"
#include "uc/log.h"

#define DRAIN_MS 10000
#define RATE_SLOTS 16384
#define RETRY_MS 1000       /* between attempts to reach the store at start-up */
#define AUTH_RETRY_MS 30000 /* how long a store refusing iam's token may be transient */
#define STOPPED 1           /* start-up ended by SIGTERM or SIGINT */

struct iam_config {
    char *listen;
    int64_t port;
    char *store;
    char *signing_key_file;
    char *bootstrap_token_file;
    char *cred_master_key_file;
    int64_t token_ttl;
    int64_t token_rate;
    int64_t threads;
    char *log_level;
    bool access_log;
    int64_t scrypt_log_n;
};

#define OPT(n, t, f, d, lo, hi, req, h)                                                            \
    {                                                                                              \
        n, t, offsetof(struct iam_config, f), d, lo, hi, req, h                                    \
    }
static const struct uc_config_opt options[] = {
    OPT("listen", UC_CFG_STRING, listen, "127.0.0.1", 0, 0, false, "bind address"),
    OPT("port", UC_CFG_INT, port, "7100", 1, 65535, false, "API port"),
    OPT("store", UC_CFG_STRING, store, "sqlite:/var/lib/ultracloud/iam/iam.db", 0, 0, false,
        "storage URL: sqlite:<path>, or flaredb:<member>,.../<namespace> (iam signs its own "
        "token for flaredb; see docs/operations.md)"),
    OPT("signing-key-file", UC_CFG_STRING, signing_key_file, NULL, 0, 0, true,
        "Ed25519 private key, PKCS#8 PEM (openssl genpkey -algorithm ed25519)"),
    OPT("bootstrap-token-file", UC_CFG_STRING, bootstrap_token_file, NULL, 0, 0, true,
        "file holding the bootstrap system-admin token (32+ characters)"),
    OPT("cred-master-key-file", UC_CFG_STRING, cred_master_key_file, NULL, 0, 0, false,
        "32 raw bytes or 64 hex digits sealing stored secrets (or env IAM_CRED_MASTER_KEY)"),
    OPT("token-ttl", UC_CFG_INT, token_ttl, "3600", 60, 86400, false,
        "default and longest token lifetime, seconds"),
    OPT("token-rate", UC_CFG_INT, token_rate, "30", 1, 100000, false,
        "token requests per username or access key per minute"),
    OPT("threads", UC_CFG_INT, threads, "2", 1, 64, false, "HTTP worker threads"),
    OPT("log-level", UC_CFG_STRING, log_level, "info", 0, 0, false, "debug, info, warn or error"),
    OPT("access-log", UC_CFG_BOOL, access_log, "false", 0, 0, false, "log one line per request"),
    OPT("scrypt-log-n", UC_CFG_INT, scrypt_log_n, "15", 10, 20, false,
        "for tests only: scrypt cost (log2 N) of new password hashes; below 15 is weak"),
    {NULL},
};

struct daemon {
    struct iam_config cfg;
    struct iam_server srv;
    char *bootstrap;
    struct uc_crypto_key *file_key;
    struct iam_store_token *store_token;
    struct uc_http_server *http;
    struct uc_http_opts http_opts;
    char err[UC_ERR_LEN];
};

/* Bootstrap token, master key and signing key; any failure is one line. */
static int load_secrets(struct daemon *d)
{
    int rc = iam_secrets_bootstrap(d->cfg.bootstrap_token_file, &d->bootstrap, d->err);
    if (rc == 0)
        rc = iam_secrets_master(d->cfg.cred_master_key_file, getenv("IAM_CRED_MASTER_KEY"),
                                d->srv.master_key, d->err);
    if (rc == 0)
        rc = iam_secrets_signing_key(d->cfg.signing_key_file, &d->file_key, d->err);
    if (rc < 0)
        uc_error("%s", d->err);
    return rc;
}

/* {"keys":[the file key]}: the JWKS served while the keyring loads. */
static int boot_jwks(struct daemon *d)
{
    char kid[IAM_KID_LEN];
    int rc = iam_keyring_kid(d->file_key, kid);
    json_t *jwk = rc == 0 ? uc_jws_jwk(d->file_key, kid) : NULL;
    d->srv.boot_jwks = jwk ? json_pack("{s:[o]}", "keys", jwk) : NULL;
    return d->srv.boot_jwks ? 0 : uc_err_set(d->err, UC_ENOMEM, "cannot build the start-up JWKS");
}

/* Store (with iam's own token for flaredb), rate limiter, hasher. */
static int open_state(struct daemon *d)
{
    struct iam_server *s = &d->srv;
    s->bootstrap_token = d->bootstrap;
    s->token_ttl_s = d->cfg.token_ttl;
    s->scrypt_log_n = (int)d->cfg.scrypt_log_n;
    atomic_store(&s->starting, true);
    int rc = iam_store_token_create(&d->store_token, d->file_key, NULL, d->err);
    if (rc == 0)
        rc = boot_jwks(d);
    if (rc == 0) {
        struct uc_store_opts so = {.token = iam_store_token_get, .token_ctx = d->store_token};
        if ((rc = uc_store_open_opts(&s->store, d->cfg.store, &so, d->err)) < 0)
            uc_err_prefix(d->err, rc, "--store %s", d->cfg.store);
    }
    if (rc == 0 &&
        (rc = iam_ratelimit_create(&s->ratelimit, d->cfg.token_rate, RATE_SLOTS, NULL)) < 0)
        uc_err_set(d->err, rc, "cannot create the rate limiter");
    if (rc == 0)
        rc = iam_tokens_init(s, d->err);
    if (rc < 0)
        uc_error("%s", d->err);
    return rc;
}

static int start_http(struct daemon *d)
{
    d->http_opts = (struct uc_http_opts){
        .service = "iam",
        .bind_addr = d->cfg.listen,
        .port = (uint16_t)d->cfg.port,
        .threads = (unsigned)d->cfg.threads,
        .access_log = d->cfg.access_log,
    };
    iam_api_opts(&d->srv, &d->http_opts);
    return uc_daemon_listen(&d->http, &d->http_opts);
}

/* Wait up to `ms` for SIGTERM or SIGINT (blocked since uc_daemon_init);
 * true when one came. */
static bool stop_requested(int ms)
{
    sigset_t set;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return sigtimedwait(&set, NULL, &ts) > 0;
}

/* Keyring from the store, then the file key imported. */
static int open_keyring(struct daemon *d, bool *imported, char kid[IAM_KID_LEN])
{
    struct iam_server *s = &d->srv;
    int rc = iam_keyring_create(&s->keyring, s->store, s->master_key, NULL, d->err);
    if (rc < 0)
        return uc_err_prefix(d->err, rc, "signing keys");
    rc = iam_keyring_import(s->keyring, d->file_key, imported, kid, d->err);
    if (rc < 0) {
        uc_err_prefix(d->err, rc, "--signing-key-file %s", d->cfg.signing_key_file);
        iam_keyring_destroy(s->keyring);
        s->keyring = NULL;
    }
    return rc;
}

static bool transient(int rc) { return rc == UC_EUNAVAIL || rc == UC_ETIMEDOUT; }

/* One try: ping the store, then load the keyring. A refused token counts
 * as transient for AUTH_RETRY_MS (flaredb may not have fetched our JWKS
 * yet); the keyring's own UC_EUNAUTH (wrong master key) never does. */
static int try_keyring(struct daemon *d, int64_t waited_ms, bool *retry)
{
    bool imported = false;
    char kid[IAM_KID_LEN];
    int rc = uc_store_ping(d->srv.store, d->err);
    *retry =
        transient(rc) || ((rc == UC_EUNAUTH || rc == UC_EFORBIDDEN) && waited_ms < AUTH_RETRY_MS);
    if (rc < 0)
        return uc_err_prefix(d->err, rc, "--store %s", d->cfg.store);
    rc = open_keyring(d, &imported, kid);
    *retry = transient(rc);
    if (rc == 0)
        uc_info("signing key %s %s", kid,
                imported ? "imported as the active key" : "already known");
    return rc;
}

/* Load the keyring, retrying while the store cannot serve, and open the
 * API. Returns 0, STOPPED, or the failure (logged). */
static int load_keyring(struct daemon *d)
{
    bool retry = false;
    for (int64_t waited = 0;; waited += RETRY_MS) {
        int rc = try_keyring(d, waited, &retry);
        if (rc == 0)
            break;
        if (!retry) {
            uc_error("%s", d->err);
            return rc;
        }
        uc_warn("store not usable yet, retrying every %d ms: %s", RETRY_MS, d->err);
        if (stop_requested(RETRY_MS))
            return STOPPED;
    }
    iam_store_token_use_keyring(d->store_token, d->srv.keyring);
    atomic_store(&d->srv.starting, false);
    uc_info("ready");
    return 0;
}

/* Everything before serving, the server itself included. A secret that
 * cannot be loaded is a bad option whatever the cause (exit 2); a server
 * that cannot start is not, whatever the cause (exit 1). Every failure is
 * logged here, so `err` stays empty. */
static int open_daemon(void *p, char err[UC_ERR_LEN])
{
    struct daemon *d = p;
    int rc;
    (void)err;
    if (load_secrets(d) < 0)
        return UC_EINVAL;
    if ((rc = open_state(d)) < 0)
        return rc;
    if (start_http(d) < 0)
        return UC_EIO;
    return load_keyring(d);
}

static int serve(void *p)
{
    struct daemon *d = p;
    uc_daemon_drain(d->http, DRAIN_MS);
    return 0;
}

/* Undo whatever was set up, in reverse; safe on a partly built daemon. */
static void teardown(void *p)
{
    struct daemon *d = p;
    uc_http_destroy(d->http);
    iam_tokens_deinit(&d->srv);
    if (d->store_token)
        iam_store_token_use_keyring(d->store_token, NULL);
    iam_keyring_destroy(d->srv.keyring);
    iam_ratelimit_destroy(d->srv.ratelimit);
    uc_store_close(d->srv.store);
    json_decref(d->srv.boot_jwks);
    iam_store_token_destroy(d->store_token);
    uc_crypto_key_destroy(d->file_key);
    if (d->bootstrap) {
        uc_crypto_wipe(d->bootstrap, strlen(d->bootstrap));
        uc_free(d->bootstrap);
    }
    uc_crypto_wipe(d->srv.master_key, sizeof(d->srv.master_key));
}

/* A bad option or secret: exit 2. */
static bool config_error(int rc) { return rc == UC_EINVAL || rc == UC_EUNAUTH; }

int main(int argc, char **argv)
{
    static const struct uc_daemon_spec spec = {
        .service = "iam",
        .opts = options,
        .cfg_offset = offsetof(struct daemon, cfg),
        .log_level_offset = offsetof(struct iam_config, log_level),
        .open = open_daemon,
        .serve = serve,
        .teardown = teardown,
        .config_error = config_error,
    };
    struct daemon d = {0};
    return uc_daemon_main(&spec, &d, argc, argv);
}
