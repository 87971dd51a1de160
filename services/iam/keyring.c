/* keyring.c - signing keys in the store (key/<kid>) and their in-memory
 * copy: import of the file key, rotation, retirement, JWKS, and signing
 * and verifying tokens under a read lock. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "keyring.h"
#include "uc/alloc.h"
#include "uc/json.h"
#include "uc/jws.h"

#define MAX_KEYS 1000
#define KID_HEX 16

struct entry {
    char kid[IAM_KID_LEN];
    bool active;
    struct uc_crypto_key *key; /* private when active, else public */
};

struct iam_keyring {
    struct uc_store *st;
    const uint8_t *master;
    const struct uc_clock *clock;
    pthread_mutex_t write_mu; /* one writer (write + reload) at a time */
    pthread_rwlock_t lock;    /* guards keys/n */
    struct entry *keys;
    size_t n;
};

int iam_keyring_kid(const struct uc_crypto_key *key, char kid[IAM_KID_LEN])
{
    uint8_t pub[UC_ED25519_PUB_LEN], digest[UC_SHA256_LEN];
    char hex[2 * UC_SHA256_LEN + 1];
    if (uc_crypto_ed25519_public(key, pub) < 0 || uc_crypto_sha256(pub, sizeof(pub), digest) < 0)
        return UC_ECRYPTO;
    uc_hex_encode(digest, KID_HEX / 2, hex);
    memcpy(kid, "k-", 2);
    memcpy(kid + 2, hex, KID_HEX + 1);
    return 0;
}

static bool kid_valid(const char *kid)
{
    return kid && strncmp(kid, "k-", 2) == 0 && strlen(kid) == 2 + KID_HEX &&
           strspn(kid + 2, "0123456789abcdef") == KID_HEX;
}

static void free_entries(struct entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        uc_crypto_key_destroy(e[i].key);
    uc_free(e);
}

/* The private key of an active record: open _sealed with the master key. */
static int open_private(const struct iam_keyring *kr, const json_t *rec, const char *kid,
                        struct uc_crypto_key **key, char err[UC_ERR_LEN])
{
    const char *b64 = uc_json_str(rec, "_sealed", NULL);
    uint8_t *sealed = NULL, *pem = NULL;
    size_t slen = 0, plen = 0;
    if (!b64 || uc_b64_decode(b64, strlen(b64), &sealed, &slen) < 0)
        return uc_err_set(err, UC_EINTERNAL, "signing key %s: no sealed private key", kid);
    int rc = uc_crypto_open(kr->master, kid, strlen(kid), sealed, slen, &pem, &plen);
    uc_free(sealed);
    if (rc < 0)
        return uc_err_set(err, rc, "signing key %s does not open with this master key", kid);
    rc = uc_crypto_ed25519_from_pem(key, (const char *)pem, plen, err);
    uc_crypto_wipe(pem, plen);
    uc_free(pem);
    return rc;
}

static int open_public(const json_t *rec, const char *kid, struct uc_crypto_key **key,
                       char err[UC_ERR_LEN])
{
    const char *x = uc_json_str(rec, "_x", NULL);
    uint8_t *pub = NULL;
    size_t n = 0;
    if (!x || uc_b64url_decode(x, strlen(x), &pub, &n) < 0 || n != UC_ED25519_PUB_LEN) {
        uc_free(pub);
        return uc_err_set(err, UC_EINTERNAL, "signing key %s: bad public key", kid);
    }
    int rc = uc_crypto_ed25519_from_public(key, pub, err);
    uc_free(pub);
    return rc;
}

/* Fill e from a stored record; *usable is false for retired keys. */
static int entry_from_record(const struct iam_keyring *kr, const json_t *rec, struct entry *e,
                             bool *usable, char err[UC_ERR_LEN])
{
    const char *kid = uc_json_str(rec, "kid", NULL);
    const char *status = uc_json_str(rec, "status", "");
    *usable = false;
    if (!kid_valid(kid))
        return uc_err_set(err, UC_EINTERNAL, "a stored signing key has a bad kid");
    if (strcmp(status, "retired") == 0)
        return 0;
    snprintf(e->kid, sizeof(e->kid), "%s", kid);
    e->active = strcmp(status, "active") == 0;
    int rc =
        e->active ? open_private(kr, rec, kid, &e->key, err) : open_public(rec, kid, &e->key, err);
    *usable = rc == 0;
    return rc;
}

static int load_items(const struct iam_keyring *kr, const struct uc_store_item *items, size_t n,
                      struct entry *keys, size_t *nkeys, char err[UC_ERR_LEN])
{
    size_t nactive = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *rec = NULL;
        bool usable = false;
        int rc = iam_record_parse(&items[i], &rec, err);
        if (rc == 0)
            rc = entry_from_record(kr, rec, &keys[*nkeys], &usable, err);
        json_decref(rec);
        if (rc < 0)
            return rc;
        if (usable)
            nactive += keys[(*nkeys)++].active;
    }
    if (nactive > 1)
        return uc_err_set(err, UC_EINTERNAL, "the store holds %zu active signing keys", nactive);
    return 0;
}

/* Rebuild the in-memory keys from the store and swap them in. */
static int reload(struct iam_keyring *kr, char err[UC_ERR_LEN])
{
    struct uc_store_item *items = NULL;
    size_t n = 0, nkeys = 0;
    int rc = iam_scan_all(kr->st, IAM_K_KEY, MAX_KEYS, &items, &n, err);
    if (rc < 0)
        return rc;
    struct entry *keys = uc_calloc(n ? n : 1, sizeof(*keys));
    rc = keys ? load_items(kr, items, n, keys, &nkeys, err) : UC_ENOMEM;
    uc_store_items_free(items, n);
    if (rc < 0) {
        free_entries(keys, nkeys);
        return rc;
    }
    pthread_rwlock_wrlock(&kr->lock);
    struct entry *old = kr->keys;
    size_t nold = kr->n;
    kr->keys = keys;
    kr->n = nkeys;
    pthread_rwlock_unlock(&kr->lock);
    free_entries(old, nold);
    return 0;
}

int iam_keyring_create(struct iam_keyring **out, struct uc_store *st, const uint8_t *master,
                       const struct uc_clock *clock, char err[UC_ERR_LEN])
{
    struct iam_keyring *kr = uc_calloc(1, sizeof(*kr));
    if (!kr)
        return UC_ENOMEM;
    kr->st = st;
    kr->master = master;
    kr->clock = clock;
    if (pthread_mutex_init(&kr->write_mu, NULL) != 0)
        goto fail_mutex;
    if (pthread_rwlock_init(&kr->lock, NULL) != 0)
        goto fail_rwlock;
    int rc = reload(kr, err);
    if (rc < 0) {
        iam_keyring_destroy(kr);
        return rc;
    }
    *out = kr;
    return 0;
fail_rwlock:
    /* The mutex was never locked; destroying it cannot fail in a way we can act on. */
    (void)pthread_mutex_destroy(&kr->write_mu);
fail_mutex:
    uc_free(kr);
    return uc_err_set(err, UC_ENOMEM, "cannot create keyring locks");
}

void iam_keyring_destroy(struct iam_keyring *kr)
{
    if (!kr)
        return;
    free_entries(kr->keys, kr->n);
    /* Neither lock is held at destroy time; failures here cannot be acted on. */
    (void)pthread_rwlock_destroy(&kr->lock);
    (void)pthread_mutex_destroy(&kr->write_mu);
    uc_free(kr);
}

/* "_sealed": base64 of the PEM sealed under the master key with AAD = kid. */
static int seal_private(const struct iam_keyring *kr, const struct uc_crypto_key *key,
                        const char *kid, json_t *rec, char err[UC_ERR_LEN])
{
    char *pem = NULL;
    uint8_t *sealed = NULL;
    size_t slen = 0;
    int rc = uc_crypto_ed25519_to_pem(key, &pem, err);
    if (rc < 0)
        return rc;
    size_t plen = strlen(pem);
    rc = uc_crypto_seal(kr->master, kid, strlen(kid), pem, plen, &sealed, &slen);
    uc_crypto_wipe(pem, plen);
    uc_free(pem);
    if (rc < 0)
        return uc_err_set(err, rc, "cannot seal the signing key");
    char *b64 = uc_b64_encode(sealed, slen);
    uc_free(sealed);
    if (!b64)
        return UC_ENOMEM;
    rc = iam_set(rec, "_sealed", json_string(b64));
    uc_free(b64);
    return rc;
}

static int public_fields(const struct iam_keyring *kr, const struct uc_crypto_key *key,
                         const char *kid, json_t *rec)
{
    uint8_t pub[UC_ED25519_PUB_LEN];
    if (uc_crypto_ed25519_public(key, pub) < 0)
        return UC_ECRYPTO;
    char *x = uc_b64url_encode(pub, sizeof(pub));
    if (!x)
        return UC_ENOMEM;
    int rc = iam_set(rec, "_x", json_string(x));
    uc_free(x);
    if (rc == 0)
        rc = iam_set(rec, "kid", json_string(kid));
    if (rc == 0)
        rc = iam_set(rec, "status", json_string("active"));
    if (rc == 0)
        rc = iam_stamp(rec, uc_clock_wall_ms(kr->clock), true);
    return rc;
}

/* A new active record for key: *rec new reference. */
static int new_record(const struct iam_keyring *kr, const struct uc_crypto_key *key,
                      const char *kid, json_t **rec, char err[UC_ERR_LEN])
{
    json_t *r = json_object();
    if (!r)
        return UC_ENOMEM;
    int rc = public_fields(kr, key, kid, r);
    if (rc == 0)
        rc = seal_private(kr, key, kid, r, err);
    if (rc < 0) {
        json_decref(r);
        return rc;
    }
    *rec = r;
    return 0;
}

/* Add ops demoting the stored active key (if any) to verifying; its sealed
 * private key is dropped, as a verifying key never signs again. */
static int demote_active(struct iam_keyring *kr, struct iam_ops *ops, char err[UC_ERR_LEN])
{
    struct uc_store_item *items = NULL;
    size_t n = 0;
    int rc = iam_scan_all(kr->st, IAM_K_KEY, MAX_KEYS, &items, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *rec = NULL;
        rc = iam_record_parse(&items[i], &rec, err);
        if (rc == 0 && strcmp(uc_json_str(rec, "status", ""), "active") == 0) {
            rc = iam_set(rec, "status", json_string("verifying"));
            if (rc == 0 && json_object_del(rec, "_sealed") != 0)
                rc = uc_err_set(err, UC_EINTERNAL, "active key without a sealed private key");
            if (rc == 0)
                rc = iam_stamp(rec, uc_clock_wall_ms(kr->clock), false);
            if (rc == 0)
                rc = iam_ops_put_json(ops, items[i].key, rec, items[i].rev);
        }
        json_decref(rec);
    }
    uc_store_items_free(items, n);
    return rc;
}

/* Store key as the new active key and reload. Caller holds write_mu. */
static int insert_active(struct iam_keyring *kr, const struct uc_crypto_key *key, const char *kid,
                         json_t **view, char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    struct iam_ops ops = {0};
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = iam_key(k, IAM_K_KEY, kid, NULL, err);
    if (rc == 0)
        rc = new_record(kr, key, kid, &rec, err);
    if (rc == 0)
        rc = demote_active(kr, &ops, err);
    if (rc == 0)
        rc = iam_ops_put_json(&ops, k, rec, UC_STORE_ABSENT);
    if (rc == 0)
        rc = iam_ops_commit(kr->st, &ops, k, "this signing key is already stored", &rev, err);
    if (rc == 0)
        rc = reload(kr, err);
    if (rc == 0 && view && !(*view = iam_record_view(rec, 0)))
        rc = UC_ENOMEM;
    iam_ops_clear(&ops);
    json_decref(rec);
    return rc;
}

int iam_keyring_import(struct iam_keyring *kr, const struct uc_crypto_key *key, bool *imported,
                       char kid[IAM_KID_LEN], char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    uint64_t rev = 0;
    if (!uc_crypto_key_is_private(key))
        return uc_err_set(err, UC_EINVAL, "a signing key must be a private key");
    int rc = iam_keyring_kid(key, kid);
    if (rc == 0)
        rc = iam_key(k, IAM_K_KEY, kid, NULL, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&kr->write_mu);
    rc = iam_revision(kr->st, k, &rev, err);
    *imported = rc == UC_ENOENT;
    if (rc == UC_ENOENT)
        rc = insert_active(kr, key, kid, NULL, err);
    pthread_mutex_unlock(&kr->write_mu);
    return rc;
}

int iam_keyring_rotate(struct iam_keyring *kr, json_t **view, char err[UC_ERR_LEN])
{
    struct uc_crypto_key *key = NULL;
    char kid[IAM_KID_LEN];
    int rc = uc_crypto_ed25519_generate(&key, err);
    if (rc == 0)
        rc = iam_keyring_kid(key, kid);
    if (rc == 0) {
        pthread_mutex_lock(&kr->write_mu);
        rc = insert_active(kr, key, kid, view, err);
        pthread_mutex_unlock(&kr->write_mu);
    }
    uc_crypto_key_destroy(key);
    return rc;
}

static int retire_locked(struct iam_keyring *kr, const char *k, const char *kid,
                         char err[UC_ERR_LEN])
{
    json_t *rec = NULL;
    uint64_t rev = 0;
    int rc = iam_record_load(kr->st, k, "signing key", &rec, &rev, err);
    if (rc < 0)
        return rc;
    const char *status = uc_json_str(rec, "status", "");
    if (strcmp(status, "active") == 0)
        rc = uc_err_set(err, UC_ECONFLICT,
                        "%s is the active signing key: rotate first, then retire it", kid);
    else if (strcmp(status, "retired") == 0)
        rc = uc_err_set(err, UC_ECONFLICT, "%s is already retired", kid);
    if (rc == 0)
        rc = iam_set(rec, "status", json_string("retired"));
    if (rc == 0)
        rc = iam_stamp(rec, uc_clock_wall_ms(kr->clock), false);
    /* Verifying keys carry no sealed private key: a miss is fine. */
    (void)json_object_del(rec, "_sealed");
    char *text = rc == 0 ? uc_json_dumps(rec) : NULL;
    if (rc == 0 && !text)
        rc = UC_ENOMEM;
    if (rc == 0)
        rc = uc_store_put(kr->st, k, text, strlen(text), rev, NULL, err);
    if (rc == 0)
        rc = reload(kr, err);
    uc_free(text);
    json_decref(rec);
    return rc;
}

int iam_keyring_retire(struct iam_keyring *kr, const char *kid, char err[UC_ERR_LEN])
{
    char k[IAM_KEY_LEN];
    if (!kid_valid(kid))
        return uc_err_set(err, UC_EINVAL, "kid must look like k-<16 hex digits>");
    int rc = iam_key(k, IAM_K_KEY, kid, NULL, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&kr->write_mu);
    rc = retire_locked(kr, k, kid, err);
    pthread_mutex_unlock(&kr->write_mu);
    return rc;
}

int iam_keyring_list(struct iam_keyring *kr, const struct iam_page *pg, json_t **out,
                     char err[UC_ERR_LEN])
{
    if (pg->token && !kid_valid(pg->token)) /* tokens are kids */
        return uc_err_set(err, UC_EINVAL, IAM_BAD_PAGE_TOKEN);
    return iam_list(kr->st, IAM_K_KEY, NULL, pg, iam_map_public, NULL, out, err);
}

static int add_jwks(const struct iam_keyring *kr, json_t *arr, bool active)
{
    for (size_t i = 0; i < kr->n; i++) {
        if (kr->keys[i].active != active)
            continue;
        json_t *jwk = uc_jws_jwk(kr->keys[i].key, kr->keys[i].kid);
        if (!jwk || json_array_append_new(arr, jwk) != 0)
            return UC_ENOMEM;
    }
    return 0;
}

int iam_keyring_jwks(struct iam_keyring *kr, json_t **out, char err[UC_ERR_LEN])
{
    json_t *doc = json_object(), *arr = json_array();
    int rc = doc && arr ? 0 : UC_ENOMEM;
    pthread_rwlock_rdlock(&kr->lock);
    if (rc == 0)
        rc = add_jwks(kr, arr, true);
    if (rc == 0)
        rc = add_jwks(kr, arr, false);
    pthread_rwlock_unlock(&kr->lock);
    if (rc == 0)
        rc = iam_set(doc, "keys", json_incref(arr));
    json_decref(arr);
    if (rc < 0) {
        json_decref(doc);
        return uc_err_set(err, rc, "cannot build the key set");
    }
    *out = doc;
    return 0;
}

static const struct entry *find_kid(const struct iam_keyring *kr, const char *kid)
{
    for (size_t i = 0; i < kr->n; i++)
        if (strcmp(kr->keys[i].kid, kid) == 0)
            return &kr->keys[i];
    return NULL;
}

static const struct entry *find_active(const struct iam_keyring *kr)
{
    for (size_t i = 0; i < kr->n; i++)
        if (kr->keys[i].active)
            return &kr->keys[i];
    return NULL;
}

bool iam_keyring_verifies(struct iam_keyring *kr, const char *kid)
{
    pthread_rwlock_rdlock(&kr->lock);
    bool found = find_kid(kr, kid) != NULL;
    pthread_rwlock_unlock(&kr->lock);
    return found;
}

int iam_keyring_sign(struct iam_keyring *kr, const json_t *payload, char **token,
                     char kid[IAM_KID_LEN], char err[UC_ERR_LEN])
{
    int rc;
    pthread_rwlock_rdlock(&kr->lock);
    const struct entry *e = find_active(kr);
    if (!e) {
        rc = uc_err_set(err, UC_EUNAVAIL, "no active signing key");
    } else {
        rc = uc_jws_sign(payload, e->key, e->kid, token);
        snprintf(kid, IAM_KID_LEN, "%s", e->kid);
    }
    pthread_rwlock_unlock(&kr->lock);
    if (rc < 0 && rc != UC_EUNAVAIL)
        uc_err_set(err, rc, "cannot sign the token: %s", uc_strerror(rc));
    return rc;
}

int iam_keyring_verify(struct iam_keyring *kr, const char *token, json_t **payload,
                       char kid[IAM_KID_LEN], char err[UC_ERR_LEN])
{
    json_t *hdr = NULL, *pl = NULL;
    const char *tkid = NULL;
    int rc = uc_jws_decode(token, &hdr, &pl, &tkid, err);
    if (rc < 0)
        return rc;
    pthread_rwlock_rdlock(&kr->lock);
    const struct entry *e = find_kid(kr, tkid);
    if (!e)
        rc = uc_err_set(err, UC_EUNAUTH, "token signed by an unknown or retired key");
    else
        rc = uc_jws_verify_sig(token, e->key, err);
    pthread_rwlock_unlock(&kr->lock);
    if (rc == 0) {
        snprintf(kid, IAM_KID_LEN, "%s", tkid);
        *payload = json_incref(pl);
    }
    json_decref(pl);
    json_decref(hdr);
    return rc;
}
