/* replsvc_backup.c - the header in front of a backup (GET
 * /api/v1/cluster/backup) and its check before --restore-from loads it: the
 * payload is the service's own snapshot, so only the header is ours. */
#include <stdio.h>
#include <string.h>

#include "replsvc_internal.h"

#define MAGIC "ucbackup"
#define VERSION 1u
/* Offsets in the header. */
#define OFF_VERSION 8
#define OFF_HDRLEN 12
#define OFF_SERVICE 16
#define OFF_INDEX 48
#define OFF_LEN 56
#define OFF_SHA 64

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int uc_replsvc_backup_header(uint8_t hdr[UC_REPLSVC_BACKUP_HDR], const char *service,
                             uint64_t index, const void *payload, size_t len)
{
    size_t n = service ? strlen(service) : 0;
    if (n == 0 || n >= UC_REPLSVC_SERVICE_LEN)
        return UC_EINVAL;
    memset(hdr, 0, UC_REPLSVC_BACKUP_HDR);
    memcpy(hdr, MAGIC, 8);
    put32(hdr + OFF_VERSION, VERSION);
    put32(hdr + OFF_HDRLEN, UC_REPLSVC_BACKUP_HDR);
    memcpy(hdr + OFF_SERVICE, service, n);
    replsvc_put64(hdr + OFF_INDEX, index);
    replsvc_put64(hdr + OFF_LEN, len);
    return uc_crypto_sha256(payload, len, hdr + OFF_SHA);
}

/* The header's own fields: magic, version, size and service. */
static int check_header(const uint8_t *p, size_t len, const char *service, char *err)
{
    char name[UC_REPLSVC_SERVICE_LEN], shown[UC_REPLSVC_SERVICE_LEN + 8];
    if (len < 8 || memcmp(p, MAGIC, 8) != 0)
        return uc_err_set(err, UC_EINVAL, "not a backup file (no 'ucbackup' magic)");
    if (len < UC_REPLSVC_BACKUP_HDR)
        return uc_err_set(err, UC_EINVAL, "truncated: %zu bytes, shorter than the %d-byte header",
                          len, UC_REPLSVC_BACKUP_HDR);
    if (get32(p + OFF_VERSION) != VERSION || get32(p + OFF_HDRLEN) != UC_REPLSVC_BACKUP_HDR)
        return uc_err_set(err, UC_EINVAL,
                          "backup format version %u is not supported (this build "
                          "reads version %u)",
                          get32(p + OFF_VERSION), VERSION);
    memcpy(name, p + OFF_SERVICE, sizeof(name));
    name[sizeof(name) - 1] = '\0';
    if (strcmp(name, service) != 0) {
        uc_err_sanitize(shown, sizeof(shown), name, sizeof(name));
        return uc_err_set(err, UC_EINVAL, "a backup of '%s', not of %s", shown, service);
    }
    return 0;
}

int uc_replsvc_backup_verify(const void *buf, size_t len, const char *service,
                             struct uc_replsvc_backup_info *info, char err[UC_ERR_LEN])
{
    const uint8_t *p = buf;
    uint8_t sha[UC_SHA256_LEN];
    int rc = check_header(p, len, service, err);
    if (rc < 0)
        return rc;
    uint64_t plen = replsvc_get64(p + OFF_LEN);
    if (plen != len - UC_REPLSVC_BACKUP_HDR)
        return uc_err_set(err, UC_EINVAL,
                          "truncated or padded: the header announces %llu payload bytes, the "
                          "file holds %zu",
                          (unsigned long long)plen, len - UC_REPLSVC_BACKUP_HDR);
    if (plen > UC_REPLSVC_MAX_BACKUP)
        return uc_err_set(err, UC_E2BIG, "a payload of %llu bytes is above the limit of %u",
                          (unsigned long long)plen, (unsigned)UC_REPLSVC_MAX_BACKUP);
    if ((rc = uc_crypto_sha256(p + UC_REPLSVC_BACKUP_HDR, (size_t)plen, sha)) < 0)
        return uc_err_set(err, rc, "cannot compute a SHA-256");
    if (!uc_crypto_memeq(sha, p + OFF_SHA, UC_SHA256_LEN))
        return uc_err_set(err, UC_EINVAL, "checksum mismatch: the payload is corrupt");
    memset(info, 0, sizeof(*info));
    snprintf(info->service, sizeof(info->service), "%s", service);
    info->index = replsvc_get64(p + OFF_INDEX);
    info->len = plen;
    memcpy(info->sha256, sha, UC_SHA256_LEN);
    return 0;
}
