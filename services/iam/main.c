/* main.c - the iam daemon's start-up order: signals, options, log, secrets,
 * store, rate limiter, keyring (importing the file key), HTTP server; then
 * wait for SIGTERM, drain and tear down in reverse. All state lives in
 * struct daemon on main's stack. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "keyring.h"
#include "ratelimit.h"
#include "secrets.h"
#include "server.h"
#include "tokens.h"
#include "uc/alloc.h"
#include "uc/config.h"
#include "uc/daemon.h"
#include "uc/http.h"
#include "uc/log.h"

#define EXIT_CONFIG 2
#define DRAIN_MS 10000
#define RATE_SLOTS 16384

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
        "storage URL"),
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
    struct uc_http_server *http;
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

/* Store, rate limiter, keyring (with the file key imported), hasher. */
static int open_state(struct daemon *d)
{
    struct iam_server *s = &d->srv;
    char kid[IAM_KID_LEN];
    bool imported = false;
    s->bootstrap_token = d->bootstrap;
    s->token_ttl_s = d->cfg.token_ttl;
    s->scrypt_log_n = (int)d->cfg.scrypt_log_n;
    int rc = uc_store_open(&s->store, d->cfg.store, d->err);
    if (rc < 0)
        uc_err_prefix(d->err, rc, "--store %s", d->cfg.store);
    if (rc == 0 &&
        (rc = iam_ratelimit_create(&s->ratelimit, d->cfg.token_rate, RATE_SLOTS, NULL)) < 0)
        uc_err_set(d->err, rc, "cannot create the rate limiter");
    if (rc == 0 &&
        (rc = iam_keyring_create(&s->keyring, s->store, s->master_key, NULL, d->err)) < 0)
        uc_err_prefix(d->err, rc, "signing keys");
    if (rc == 0 && (rc = iam_keyring_import(s->keyring, d->file_key, &imported, kid, d->err)) < 0)
        uc_err_prefix(d->err, rc, "--signing-key-file %s", d->cfg.signing_key_file);
    if (rc == 0)
        rc = iam_tokens_init(s, d->err);
    if (rc < 0) {
        uc_error("%s", d->err);
        return rc;
    }
    uc_info("signing key %s %s", kid, imported ? "imported as the active key" : "already known");
    return 0;
}

static int serve(struct daemon *d)
{
    struct uc_http_opts opts = {
        .service = "iam",
        .bind_addr = d->cfg.listen,
        .port = (uint16_t)d->cfg.port,
        .threads = (unsigned)d->cfg.threads,
        .access_log = d->cfg.access_log,
    };
    iam_api_opts(&d->srv, &opts);
    return uc_daemon_serve(&d->http, &opts, DRAIN_MS);
}

/* Undo whatever was set up, in reverse; safe on a partly built daemon. */
static void teardown(struct daemon *d)
{
    uc_http_destroy(d->http);
    iam_tokens_deinit(&d->srv);
    iam_keyring_destroy(d->srv.keyring);
    iam_ratelimit_destroy(d->srv.ratelimit);
    uc_store_close(d->srv.store);
    uc_crypto_key_destroy(d->file_key);
    if (d->bootstrap) {
        uc_crypto_wipe(d->bootstrap, strlen(d->bootstrap));
        uc_free(d->bootstrap);
    }
    uc_crypto_wipe(d->srv.master_key, sizeof(d->srv.master_key));
    uc_config_free(&d->cfg, options);
}

/* Exit code for a start-up failure: 2 when an option or secret is bad. */
static int exit_code(int rc) { return rc == UC_EINVAL || rc == UC_EUNAUTH ? EXIT_CONFIG : 1; }

int main(int argc, char **argv)
{
    struct daemon d = {0};
    int code = 0, rc;
    if (uc_daemon_init() < 0) {
        fprintf(stderr, "iam: cannot set up signal handling\n");
        return 1;
    }
    uc_alloc_install_jansson();
    rc = uc_daemon_config(&d.cfg, options, "iam", offsetof(struct iam_config, log_level), argc,
                          argv);
    if (rc == UC_EHELP)
        return 0;
    if (rc < 0)
        return EXIT_CONFIG; /* uc_config_load left nothing to free */
    if (load_secrets(&d) < 0)
        code = EXIT_CONFIG;
    else if ((rc = open_state(&d)) < 0)
        code = exit_code(rc);
    else if (serve(&d) < 0)
        code = 1;
    teardown(&d);
    return code;
}
