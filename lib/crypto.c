/* crypto.c - UltraCloud's crypto on OpenSSL 3: random ids, SHA-256, HMAC,
 * strict base64/base64url, Ed25519 keys, AES-256-GCM and scrypt password
 * hashes. Owns struct uc_crypto_key (a wrapped EVP_PKEY). */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "uc/alloc.h"
#include "uc/crypto.h"

struct uc_crypto_key {
    EVP_PKEY *pkey;
    bool priv;
};

#define PEM_MAX_LEN (16 * 1024)
#define SEAL_MAX_LEN (1024u * 1024u * 1024u)
#define SCRYPT_OUT_MAX 1024
#define PW_SALT_LEN 16
#define PW_HASH_LEN 32
#define PW_ENCODED_MAX 256

/* Put OpenSSL's oldest queued reason after `what` in err, and empty this
 * thread's error queue so failures do not pile up. Returns code. */
static int ossl_fail(char *err, int code, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[128] = "no detail";
    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    return uc_err_set(err, code, "%s: %s", what, reason);
}

/* ---- random ------------------------------------------------------------ */

int uc_crypto_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        if (RAND_bytes(p, chunk) != 1) {
            ERR_clear_error();
            OPENSSL_cleanse(buf, (size_t)(p - (unsigned char *)buf) + n);
            return UC_ECRYPTO;
        }
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

static bool prefix_ok(const char *prefix)
{
    if (!prefix)
        return false;
    size_t len = strnlen(prefix, UC_ID_PREFIX_MAX + 1);
    if (len == 0 || len > UC_ID_PREFIX_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = prefix[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

int uc_crypto_random_id(const char *prefix, char out[UC_ID_LEN])
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    uint8_t rnd[13];
    out[0] = '\0';
    if (!prefix_ok(prefix))
        return UC_EINVAL;
    if (uc_crypto_random(rnd, sizeof(rnd)) != 0)
        return UC_ECRYPTO;
    size_t plen = strlen(prefix);
    memcpy(out, prefix, plen);
    out[plen] = '-';
    char *r = out + plen + 1;
    uint32_t acc = 0;
    int bits = 0;
    size_t in = 0;
    for (int i = 0; i < UC_ID_RANDOM_LEN; i++) {
        if (bits < 5) {
            acc = (acc << 8) | rnd[in++];
            bits += 8;
        }
        bits -= 5;
        r[i] = b32[(acc >> bits) & 31];
    }
    r[UC_ID_RANDOM_LEN] = '\0';
    return 0;
}

/* ---- digests and MACs -------------------------------------------------- */

/* SHA-256 and an HMAC-SHA256 template context, fetched from the default
 * provider once per process. EVP_sha256() and EVP_Q_mac fetch by name on
 * every call, through the method store's lock: that was ~14% of a token
 * cache hit. Set once under pthread_once and read-only after, so they are
 * the one process-wide state here; kept for the process lifetime and never
 * freed, so a thread still hashing while the process exits cannot meet a
 * freed implementation (leak checkers see them as still reachable). */
static pthread_once_t impls_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;
static EVP_MAC_CTX *hmac_tpl; /* HMAC with digest SHA256 and no key: dup it, never use it */

static void fetch_impls(void)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *tpl = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (tpl && EVP_MAC_CTX_set_params(tpl, params) != 1) {
        EVP_MAC_CTX_free(tpl);
        tpl = NULL;
    }
    hmac_tpl = tpl;
    ERR_clear_error();
}

/* A fetch fails only when OpenSSL is out of memory at first use, and
 * pthread_once only on a bad argument; either way the callers fall back to
 * fetching per call: slower, still correct. */
static bool impls_ready(void) { return pthread_once(&impls_once, fetch_impls) == 0; }

int uc_crypto_sha256(const void *data, size_t n, uint8_t out[UC_SHA256_LEN])
{
    const EVP_MD *md = impls_ready() && sha256_md ? sha256_md : EVP_sha256();
    if (EVP_Digest(n ? data : "", n, out, NULL, md, NULL) != 1) {
        ERR_clear_error();
        memset(out, 0, UC_SHA256_LEN);
        return UC_ECRYPTO;
    }
    return 0;
}

/* HMAC on a copy of the template: the copy shares its digest by reference,
 * so nothing is fetched. */
static bool hmac_from_template(const unsigned char *key, size_t klen, const unsigned char *data,
                               size_t n, uint8_t out[UC_SHA256_LEN])
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(hmac_tpl);
    size_t outlen = 0;
    bool ok = ctx && EVP_MAC_init(ctx, key, klen, NULL) == 1 && EVP_MAC_update(ctx, data, n) == 1 &&
              EVP_MAC_final(ctx, out, &outlen, UC_SHA256_LEN) == 1 && outlen == UC_SHA256_LEN;
    EVP_MAC_CTX_free(ctx);
    return ok;
}

/* The fallback: HMAC and SHA256 fetched by name for this call. */
static bool hmac_fetching(const unsigned char *key, size_t klen, const unsigned char *data,
                          size_t n, uint8_t out[UC_SHA256_LEN])
{
    size_t outlen = 0;
    return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, data, n, out, UC_SHA256_LEN,
                     &outlen) != NULL &&
           outlen == UC_SHA256_LEN;
}

int uc_crypto_hmac_sha256(const void *key, size_t klen, const void *data, size_t n,
                          uint8_t out[UC_SHA256_LEN])
{
    /* EVP_MAC_init treats a NULL key as "keep the previous one", so an empty
     * key must still be a real pointer. */
    static const unsigned char empty[1];
    const unsigned char *k = klen ? key : empty, *d = n ? data : empty;
    bool ok = impls_ready() && hmac_tpl ? hmac_from_template(k, klen, d, n, out)
                                        : hmac_fetching(k, klen, d, n, out);
    if (!ok) {
        ERR_clear_error();
        memset(out, 0, UC_SHA256_LEN);
        return UC_ECRYPTO;
    }
    return 0;
}

bool uc_crypto_memeq(const void *a, const void *b, size_t n)
{
    return n == 0 || CRYPTO_memcmp(a, b, n) == 0;
}

bool uc_crypto_streq(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    size_t la = strlen(a), lb = strlen(b);
    return la == lb && uc_crypto_memeq(a, b, la);
}

void uc_crypto_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

/* ---- base64 ------------------------------------------------------------ */

static const char B64_STD[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64_URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const unsigned char *in, size_t n, const char *alpha, bool pad)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    size_t rem = n % 3;
    size_t len = n / 3 * 4 + (rem ? (pad ? 4 : rem + 1) : 0);
    char *out = uc_malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        size_t chars = i + 2 < n ? 4 : (n - i) + 1;
        for (size_t c = 0; c < chars; c++)
            out[o++] = alpha[(v >> (18 - 6 * c)) & 63];
    }
    while (pad && o < len)
        out[o++] = '=';
    out[o] = '\0';
    return out;
}

char *uc_b64url_encode(const void *data, size_t n) { return b64_encode(data, n, B64_URL, false); }

char *uc_b64_encode(const void *data, size_t n) { return b64_encode(data, n, B64_STD, true); }

static int b64_value(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* Decode body chars of s into out (room for body*3/4 bytes); returns the
 * byte count, or -1 on a bad character or non-zero unused trailing bits. */
static long b64_decode_body(const char *s, size_t body, bool url, uint8_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    long o = 0;
    for (size_t i = 0; i < body; i++) {
        int v = b64_value((unsigned char)s[i], url);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return acc == 0 ? o : -1;
}

static int b64_decode(const char *s, size_t slen, bool url, uint8_t **out, size_t *outlen)
{
    size_t body = slen;
    if (!url) {
        if (slen % 4 != 0)
            return UC_EINVAL;
        for (int i = 0; i < 2 && body > 0 && s[body - 1] == '='; i++)
            body--;
    }
    if (body % 4 == 1 || slen > (size_t)LONG_MAX)
        return UC_EINVAL;
    size_t n = body / 4 * 3 + (body % 4 ? body % 4 - 1 : 0);
    uint8_t *buf = uc_malloc(n + 1);
    if (!buf)
        return UC_ENOMEM;
    long got = b64_decode_body(s, body, url, buf);
    if (got < 0) {
        uc_free(buf);
        return UC_EINVAL;
    }
    buf[got] = '\0';
    *out = buf;
    *outlen = (size_t)got;
    return 0;
}

int uc_b64url_decode(const char *s, size_t slen, uint8_t **out, size_t *outlen)
{
    return b64_decode(s, slen, true, out, outlen);
}

int uc_b64_decode(const char *s, size_t slen, uint8_t **out, size_t *outlen)
{
    return b64_decode(s, slen, false, out, outlen);
}

void uc_hex_encode(const void *data, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- Ed25519 keys ------------------------------------------------------ */

/* Take ownership of pkey (freed on failure too) into a new key object. */
static int key_wrap(EVP_PKEY *pkey, bool priv, struct uc_crypto_key **out, char *err)
{
    struct uc_crypto_key *k = uc_malloc(sizeof(*k));
    if (!k) {
        EVP_PKEY_free(pkey);
        return uc_err_set(err, UC_ENOMEM, "ed25519 key: out of memory");
    }
    k->pkey = pkey;
    k->priv = priv;
    *out = k;
    return 0;
}

int uc_crypto_ed25519_generate(struct uc_crypto_key **out, char err[UC_ERR_LEN])
{
    *out = NULL;
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!pkey)
        return ossl_fail(err, UC_ECRYPTO, "ed25519 keygen");
    return key_wrap(pkey, true, out, err);
}

int uc_crypto_ed25519_from_seed(struct uc_crypto_key **out, const uint8_t seed[UC_ED25519_SEED_LEN],
                                char err[UC_ERR_LEN])
{
    *out = NULL;
    EVP_PKEY *pkey =
        EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, UC_ED25519_SEED_LEN);
    if (!pkey)
        return ossl_fail(err, UC_ECRYPTO, "ed25519 from seed");
    return key_wrap(pkey, true, out, err);
}

int uc_crypto_ed25519_from_public(struct uc_crypto_key **out, const uint8_t pub[UC_ED25519_PUB_LEN],
                                  char err[UC_ERR_LEN])
{
    *out = NULL;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, UC_ED25519_PUB_LEN);
    if (!pkey)
        return ossl_fail(err, UC_ECRYPTO, "ed25519 public key");
    return key_wrap(pkey, false, out, err);
}

/* Passphrase callback that refuses, so an encrypted PEM fails instead of
 * prompting on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    /* The signature is fixed by OpenSSL; none of the arguments is needed. */
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int uc_crypto_ed25519_from_pem(struct uc_crypto_key **out, const char *pem, size_t len,
                               char err[UC_ERR_LEN])
{
    *out = NULL;
    if (!pem || len == 0 || len > PEM_MAX_LEN)
        return uc_err_set(err, UC_EINVAL, "ed25519 pem: empty or larger than %d bytes",
                          PEM_MAX_LEN);
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio)
        return ossl_fail(err, UC_ENOMEM, "ed25519 pem");
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (!pkey)
        return ossl_fail(err, UC_EINVAL, "ed25519 pem: no readable private key");
    int id = EVP_PKEY_get_base_id(pkey);
    if (id != EVP_PKEY_ED25519) {
        EVP_PKEY_free(pkey);
        const char *name = OBJ_nid2sn(id);
        return uc_err_set(err, UC_EINVAL, "ed25519 pem: key is %s, not ED25519",
                          name ? name : "unknown");
    }
    return key_wrap(pkey, true, out, err);
}

/* Copy a BIO's contents into a new NUL-terminated uc_malloc'd string. */
static int bio_to_string(BIO *bio, char **out)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || !data)
        return UC_ECRYPTO;
    char *s = uc_malloc((size_t)n + 1);
    if (!s)
        return UC_ENOMEM;
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    *out = s;
    return 0;
}

int uc_crypto_ed25519_to_pem(const struct uc_crypto_key *k, char **pem, char err[UC_ERR_LEN])
{
    if (!k->priv)
        return uc_err_set(err, UC_EINVAL, "ed25519 to pem: not a private key");
    /* secmem: the BIO's buffer is wiped when freed. */
    BIO *bio = BIO_new(BIO_s_secmem());
    if (!bio)
        return ossl_fail(err, UC_ENOMEM, "ed25519 to pem");
    int rc = 0;
    if (PEM_write_bio_PKCS8PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1)
        rc = ossl_fail(err, UC_ECRYPTO, "ed25519 to pem");
    else if ((rc = bio_to_string(bio, pem)) != 0)
        rc = uc_err_set(err, rc, "ed25519 to pem: %s", uc_strerror(rc));
    BIO_free(bio);
    return rc;
}

int uc_crypto_ed25519_public(const struct uc_crypto_key *k, uint8_t out[UC_ED25519_PUB_LEN])
{
    size_t len = UC_ED25519_PUB_LEN;
    if (EVP_PKEY_get_raw_public_key(k->pkey, out, &len) != 1 || len != UC_ED25519_PUB_LEN) {
        ERR_clear_error();
        return UC_ECRYPTO;
    }
    return 0;
}

bool uc_crypto_key_is_private(const struct uc_crypto_key *k) { return k && k->priv; }

int uc_crypto_ed25519_sign(const struct uc_crypto_key *k, const void *msg, size_t n,
                           uint8_t sig[UC_ED25519_SIG_LEN])
{
    if (!k->priv)
        return UC_EINVAL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return UC_ECRYPTO;
    size_t siglen = UC_ED25519_SIG_LEN;
    int rc = 0;
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, n ? msg : (const void *)"", n) != 1 ||
        siglen != UC_ED25519_SIG_LEN) {
        ERR_clear_error();
        rc = UC_ECRYPTO;
    }
    EVP_MD_CTX_free(ctx);
    return rc;
}

int uc_crypto_ed25519_verify(const struct uc_crypto_key *k, const void *msg, size_t n,
                             const uint8_t sig[UC_ED25519_SIG_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return UC_ECRYPTO;
    int rc = UC_ECRYPTO;
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1) {
        int v = EVP_DigestVerify(ctx, sig, UC_ED25519_SIG_LEN, n ? msg : (const void *)"", n);
        rc = v == 1 ? 0 : v == 0 ? UC_EUNAUTH : UC_ECRYPTO;
    }
    ERR_clear_error();
    EVP_MD_CTX_free(ctx);
    return rc;
}

void uc_crypto_key_destroy(struct uc_crypto_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    uc_free(k);
}

/* ---- AES-256-GCM ------------------------------------------------------- */

/* Run one GCM pass over in (n bytes) into dst. On decrypt, tag is checked;
 * on encrypt it is written. Returns 0, UC_EUNAUTH or UC_ECRYPTO. */
static int gcm_run(bool enc, const uint8_t *key, const uint8_t *nonce, const void *aad,
                   size_t aadlen, const uint8_t *in, size_t n, uint8_t *dst, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return UC_ECRYPTO;
    int rc = UC_ECRYPTO, len = 0;
    if (EVP_CipherInit_ex2(ctx, EVP_aes_256_gcm(), key, nonce, enc ? 1 : 0, NULL) != 1)
        goto done;
    if (aadlen && EVP_CipherUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1)
        goto done;
    if (n && EVP_CipherUpdate(ctx, dst, &len, in, (int)n) != 1)
        goto done;
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, UC_AES_TAG_LEN, tag) != 1)
        goto done;
    if (EVP_CipherFinal_ex(ctx, dst + n, &len) != 1) {
        rc = enc ? UC_ECRYPTO : UC_EUNAUTH;
        goto done;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, UC_AES_TAG_LEN, tag) != 1)
        goto done;
    rc = 0;
done:
    ERR_clear_error();
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int uc_crypto_seal(const uint8_t key[UC_AES_KEY_LEN], const void *aad, size_t aadlen,
                   const void *plain, size_t n, uint8_t **out, size_t *outlen)
{
    if (n > SEAL_MAX_LEN || aadlen > SEAL_MAX_LEN)
        return UC_EINVAL;
    size_t total = UC_AES_NONCE_LEN + n + UC_AES_TAG_LEN;
    uint8_t *buf = uc_malloc(total);
    if (!buf)
        return UC_ENOMEM;
    int rc = uc_crypto_random(buf, UC_AES_NONCE_LEN);
    if (rc == 0)
        rc = gcm_run(true, key, buf, aad, aadlen, plain, n, buf + UC_AES_NONCE_LEN,
                     buf + UC_AES_NONCE_LEN + n);
    if (rc != 0) {
        uc_crypto_wipe(buf, total);
        uc_free(buf);
        return rc;
    }
    *out = buf;
    *outlen = total;
    return 0;
}

int uc_crypto_open(const uint8_t key[UC_AES_KEY_LEN], const void *aad, size_t aadlen,
                   const void *sealed, size_t n, uint8_t **out, size_t *outlen)
{
    if (n < UC_AES_NONCE_LEN + UC_AES_TAG_LEN)
        return UC_EUNAUTH;
    if (n > SEAL_MAX_LEN + UC_AES_NONCE_LEN + UC_AES_TAG_LEN || aadlen > SEAL_MAX_LEN)
        return UC_EINVAL;
    const uint8_t *in = sealed;
    size_t ptlen = n - UC_AES_NONCE_LEN - UC_AES_TAG_LEN;
    uint8_t tag[UC_AES_TAG_LEN];
    memcpy(tag, in + n - UC_AES_TAG_LEN, UC_AES_TAG_LEN);
    uint8_t *buf = uc_malloc(ptlen + 1);
    if (!buf)
        return UC_ENOMEM;
    int rc = gcm_run(false, key, in, aad, aadlen, in + UC_AES_NONCE_LEN, ptlen, buf, tag);
    if (rc != 0) {
        uc_crypto_wipe(buf, ptlen + 1);
        uc_free(buf);
        return rc;
    }
    buf[ptlen] = '\0';
    *out = buf;
    *outlen = ptlen;
    return 0;
}

/* ---- scrypt ------------------------------------------------------------ */

int uc_crypto_scrypt(const void *pw, size_t pwlen, const void *salt, size_t saltlen, int logN,
                     int r, int p, uint8_t *out, size_t outlen)
{
    if (logN < 1 || logN > 20 || r < 1 || r > 16 || p < 1 || p > 16 || outlen < 1 ||
        outlen > SCRYPT_OUT_MAX || (pwlen && !pw) || (saltlen && !salt))
        return UC_EINVAL;
    uint64_t N = (uint64_t)1 << logN;
    /* What OpenSSL allocates (B and V plus slack), so its 32 MiB default
     * cap does not refuse the parameters our bounds allow. */
    uint64_t maxmem = 128 * (uint64_t)r * (N + (uint64_t)p + 2) + 4096;
    if (EVP_PBE_scrypt(pwlen ? pw : "", pwlen, saltlen ? salt : (const void *)"", saltlen, N,
                       (uint64_t)r, (uint64_t)p, maxmem, out, outlen) != 1) {
        ERR_clear_error();
        OPENSSL_cleanse(out, outlen);
        return UC_ECRYPTO;
    }
    return 0;
}

int uc_crypto_password_hash(const char *password, int logN, char **encoded)
{
    if (!password || logN < 0 || (logN != 0 && (logN < 10 || logN > 20)))
        return UC_EINVAL;
    if (logN == 0)
        logN = 15;
    uint8_t salt[PW_SALT_LEN], hash[PW_HASH_LEN];
    char *s64 = NULL, *h64 = NULL, *enc = NULL;
    int rc = uc_crypto_random(salt, sizeof(salt));
    if (rc == 0)
        rc = uc_crypto_scrypt(password, strlen(password), salt, sizeof(salt), logN, 8, 1, hash,
                              sizeof(hash));
    if (rc != 0)
        goto out;
    rc = UC_ENOMEM;
    if (!(s64 = uc_b64url_encode(salt, sizeof(salt))) ||
        !(h64 = uc_b64url_encode(hash, sizeof(hash))) ||
        !(enc = uc_asprintf("scrypt$%d$8$1$%s$%s", logN, s64, h64)))
        goto out;
    *encoded = enc;
    rc = 0;
out:
    uc_crypto_wipe(hash, sizeof(hash));
    uc_free(s64);
    uc_free(h64);
    return rc;
}

/* Parse a decimal in lo..hi ending at '$': digits only, no sign, no leading
 * zero. Advances *p past the '$'. */
static bool parse_param(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    int v = 0, digits = 0;
    if (*s == '0')
        return false;
    for (; *s >= '0' && *s <= '9' && digits < 3; s++, digits++)
        v = v * 10 + (*s - '0');
    if (digits == 0 || *s != '$' || v < lo || v > hi)
        return false;
    *p = s + 1;
    *out = v;
    return true;
}

struct pw_params {
    int logN, r, p;
    uint8_t *salt, *hash;
    size_t saltlen, hashlen;
};

static int parse_encoded(const char *enc, struct pw_params *pp)
{
    if (strnlen(enc, PW_ENCODED_MAX + 1) > PW_ENCODED_MAX || strncmp(enc, "scrypt$", 7) != 0)
        return UC_EINVAL;
    const char *s = enc + 7;
    if (!parse_param(&s, 10, 20, &pp->logN) || !parse_param(&s, 1, 16, &pp->r) ||
        !parse_param(&s, 1, 4, &pp->p))
        return UC_EINVAL;
    const char *dollar = strchr(s, '$');
    if (!dollar)
        return UC_EINVAL;
    int rc = uc_b64url_decode(s, (size_t)(dollar - s), &pp->salt, &pp->saltlen);
    if (rc != 0)
        return rc;
    rc = uc_b64url_decode(dollar + 1, strlen(dollar + 1), &pp->hash, &pp->hashlen);
    if (rc != 0)
        return rc;
    if (pp->saltlen < 8 || pp->saltlen > 64 || pp->hashlen < 16 || pp->hashlen > 64)
        return UC_EINVAL;
    return 0;
}

int uc_crypto_password_verify(const char *password, const char *encoded)
{
    if (!password || !encoded)
        return UC_EINVAL;
    struct pw_params pp = {0};
    uint8_t derived[64];
    int rc = parse_encoded(encoded, &pp);
    if (rc == 0)
        rc = uc_crypto_scrypt(password, strlen(password), pp.salt, pp.saltlen, pp.logN, pp.r, pp.p,
                              derived, pp.hashlen);
    if (rc == 0 && CRYPTO_memcmp(derived, pp.hash, pp.hashlen) != 0)
        rc = UC_EUNAUTH;
    uc_crypto_wipe(derived, sizeof(derived));
    uc_free(pp.salt);
    uc_free(pp.hash);
    return rc;
}
