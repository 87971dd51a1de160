/* fuzz_password_verify.c - uc_crypto_password_verify on malformed stored
 * hashes. Input: "<password>\n<encoded>". Encodings whose cost fields would
 * be accepted above the minimum (logN > 10, or r * p > 8) are skipped: the
 * parser is what is fuzzed here, and scrypt at real costs takes seconds. */
#include "fuzz.h"
#include "uc/crypto.h"

/* Mirror of parse_param in lib/crypto.c, loose: up to 3 digits ending at
 * '$'. Returns the value, or -1 when the field does not look numeric. */
static int cost_field(const char **p)
{
    int v = 0, n = 0;
    const char *s = *p;
    for (; *s >= '0' && *s <= '9' && n < 3; s++, n++)
        v = v * 10 + (*s - '0');
    if (n == 0 || *s != '$')
        return -1;
    *p = s + 1;
    return v;
}

/* True when verify could reach scrypt with more work than logN 10, r 8, p 1. */
static int too_costly(const char *enc)
{
    if (strncmp(enc, "scrypt$", 7) != 0)
        return 0;
    const char *s = enc + 7;
    int logn = cost_field(&s);
    int r = logn < 0 ? -1 : cost_field(&s);
    int p = r < 0 ? -1 : cost_field(&s);
    return logn > 10 || (r > 0 && p > 0 && r * p > 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_cstr(data, size);
    char *nl = strchr(in, '\n');
    const char *password = in, *encoded = "";
    if (nl) {
        *nl = '\0';
        encoded = nl + 1;
    }
    if (!too_costly(encoded)) {
        int rc = uc_crypto_password_verify(password, encoded);
        fuzz_check(rc == 0 || rc == UC_EUNAUTH || rc == UC_EINVAL || rc == UC_ENOMEM,
                   "uc_crypto_password_verify: unexpected code");
    }
    uc_free(in);
    return 0;
}
