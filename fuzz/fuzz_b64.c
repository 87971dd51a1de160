/* fuzz_b64.c - the strict base64 and base64url decoders: whatever decodes
 * must encode back to exactly the input (one encoding per byte string), and
 * encoding the input bytes must decode back to them. */
#include "fuzz.h"
#include "uc/crypto.h"

typedef int (*decode_fn)(const char *s, size_t slen, uint8_t **out, size_t *outlen);
typedef char *(*encode_fn)(const void *data, size_t n);

static void round_trip(decode_fn dec, encode_fn enc, const uint8_t *data, size_t size)
{
    uint8_t *out = NULL;
    size_t outlen = 0;
    int rc = dec((const char *)data, size, &out, &outlen);
    fuzz_check(rc == 0 || rc == UC_EINVAL || rc == UC_ENOMEM, "decode: unexpected code");
    if (rc == 0) {
        fuzz_check(out[outlen] == '\0', "decoded buffer not NUL-terminated");
        fuzz_check(outlen <= size / 4 * 3 + 2, "decoded more bytes than the input holds");
        char *again = enc(out, outlen);
        fuzz_check(again != NULL, "encode failed");
        fuzz_check(strlen(again) == size && memcmp(again, data, size) == 0,
                   "decode then encode differs from the input");
        uc_free(again);
        uc_free(out);
    } else {
        fuzz_check(out == NULL && outlen == 0, "failed decode touched its outputs");
    }
    /* The other way: any bytes encode to text that decodes to them. */
    char *text = enc(data, size);
    fuzz_check(text != NULL, "encode failed");
    rc = dec(text, strlen(text), &out, &outlen);
    fuzz_check(rc == 0, "encoder output does not decode");
    fuzz_check(outlen == size && memcmp(out, data, size) == 0, "encode then decode differs");
    uc_free(out);
    uc_free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    round_trip(uc_b64url_decode, uc_b64url_encode, data, size);
    round_trip(uc_b64_decode, uc_b64_encode, data, size);
    return 0;
}
