/* secrets.c - read and check the bootstrap token, master key and signing
 * key files; wipe every buffer that held one. */
#include <string.h>

#include "secrets.h"
#include "uc/alloc.h"
#include "uc/config.h"

#define SMALL_MAX 4096
#define PEM_MAX 16384
#define HEX_KEY_LEN (2 * UC_AES_KEY_LEN)

static void wipe_free(char *buf, size_t len)
{
    if (!buf)
        return;
    uc_crypto_wipe(buf, len);
    uc_free(buf);
}

/* Read path; on failure the message names the option. */
static int read_secret(const char *opt, const char *path, size_t max, char **buf, size_t *len,
                       char err[UC_ERR_LEN])
{
    if (!path || !path[0])
        return uc_err_set(err, UC_EINVAL, "--%s is required", opt);
    int rc = uc_config_read_file(path, max, buf, len, err);
    if (rc < 0)
        return uc_err_prefix(err, rc, "--%s %s", opt, path);
    return 0;
}

/* Drop one trailing "\n" (or "\r\n"). */
static size_t chomp(const char *buf, size_t len)
{
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    return len;
}

int iam_secrets_bootstrap(const char *path, char **out, char err[UC_ERR_LEN])
{
    char *buf = NULL;
    size_t len = 0;
    int rc = read_secret("bootstrap-token-file", path, SMALL_MAX, &buf, &len, err);
    if (rc < 0)
        return rc;
    size_t n = chomp(buf, len);
    for (size_t i = 0; i < n && rc == 0; i++)
        if (buf[i] < 0x21 || buf[i] > 0x7e)
            rc = uc_err_set(err, UC_EINVAL,
                            "--bootstrap-token-file %s: the token must be one line of printable "
                            "ASCII without spaces",
                            path);
    if (rc == 0 && n < IAM_BOOTSTRAP_MIN)
        rc = uc_err_set(err, UC_EINVAL,
                        "--bootstrap-token-file %s: the token must be at least %d characters "
                        "(it has %zu)",
                        path, IAM_BOOTSTRAP_MIN, n);
    if (rc < 0) {
        wipe_free(buf, len);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode exactly 64 hex digits. */
static bool hex_key(const char *s, size_t n, uint8_t key[UC_AES_KEY_LEN])
{
    if (n != HEX_KEY_LEN)
        return false;
    for (size_t i = 0; i < UC_AES_KEY_LEN; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static int master_from_file(const char *path, uint8_t key[UC_AES_KEY_LEN], char err[UC_ERR_LEN])
{
    char *buf = NULL;
    size_t len = 0;
    int rc = read_secret("cred-master-key-file", path, SMALL_MAX, &buf, &len, err);
    if (rc < 0)
        return rc;
    size_t n = len == UC_AES_KEY_LEN ? len : chomp(buf, len);
    if (n == UC_AES_KEY_LEN)
        memcpy(key, buf, UC_AES_KEY_LEN);
    else if (!hex_key(buf, n, key))
        rc = uc_err_set(err, UC_EINVAL,
                        "--cred-master-key-file %s: the key must be exactly 32 raw bytes or 64 "
                        "hex digits (the file has %zu bytes)",
                        path, len);
    wipe_free(buf, len);
    return rc;
}

int iam_secrets_master(const char *path, const char *env_hex, uint8_t key[UC_AES_KEY_LEN],
                       char err[UC_ERR_LEN])
{
    int rc = 0;
    if (path && path[0])
        rc = master_from_file(path, key, err);
    else if (!env_hex)
        rc =
            uc_err_set(err, UC_EINVAL, "--cred-master-key-file or IAM_CRED_MASTER_KEY is required");
    else if (!hex_key(env_hex, strlen(env_hex), key))
        rc = uc_err_set(err, UC_EINVAL, "IAM_CRED_MASTER_KEY must be exactly 64 hex digits");
    if (rc < 0)
        uc_crypto_wipe(key, UC_AES_KEY_LEN);
    return rc;
}

int iam_secrets_signing_key(const char *path, struct uc_crypto_key **out, char err[UC_ERR_LEN])
{
    char *buf = NULL;
    size_t len = 0;
    char why[UC_ERR_LEN] = "";
    int rc = read_secret("signing-key-file", path, PEM_MAX, &buf, &len, err);
    if (rc < 0)
        return rc;
    rc = uc_crypto_ed25519_from_pem(out, buf, len, why);
    wipe_free(buf, len);
    if (rc == UC_ENOMEM)
        return uc_err_set(err, rc, "--signing-key-file %s: out of memory", path);
    if (rc < 0)
        return uc_err_set(err, UC_EINVAL,
                          "--signing-key-file %s: not an Ed25519 private key in PKCS#8 PEM "
                          "(openssl genpkey -algorithm ed25519): %s",
                          path, why);
    return 0;
}
