/* jws.c - compact JWS tokens signed with EdDSA (Ed25519): signing, strict
 * decoding, signature checks and the JWK form of a public key. */
#include <string.h>

#include "uc/alloc.h"
#include "uc/jws.h"

/* The three dot-separated parts of a compact token, borrowed from it. */
struct parts {
    const char *s[3];
    size_t len[3];
};

static bool kid_ok(const char *kid)
{
    if (!kid)
        return false;
    size_t len = strnlen(kid, UC_JWS_KID_MAX + 1);
    if (len == 0 || len > UC_JWS_KID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)kid[i] < 0x21 || (unsigned char)kid[i] > 0x7e)
            return false;
    return true;
}

/* Serialize j with flags and base64url-encode it into *out. */
static int encode_part(const json_t *j, size_t flags, char **out)
{
    char *text = json_dumps(j, flags);
    if (!text)
        return UC_ENOMEM;
    *out = uc_b64url_encode(text, strlen(text));
    /* json_dumps allocates with jansson's allocator: free it with jansson's. */
    json_free_t jfree = NULL;
    json_get_alloc_funcs(NULL, &jfree);
    jfree(text);
    return *out ? 0 : UC_ENOMEM;
}

/* Build "<header>.<payload>" for kid and payload into *input. */
static int signing_input(const json_t *payload, const char *kid, char **input)
{
    char *h64 = NULL, *p64 = NULL;
    json_t *header = json_pack("{s:s,s:s,s:s}", "alg", "EdDSA", "typ", "JWT", "kid", kid);
    if (!header)
        return UC_ENOMEM;
    int rc = encode_part(header, JSON_COMPACT | JSON_SORT_KEYS, &h64);
    json_decref(header);
    if (rc == 0)
        rc = encode_part(payload, JSON_COMPACT, &p64);
    if (rc == 0 && !(*input = uc_asprintf("%s.%s", h64, p64)))
        rc = UC_ENOMEM;
    uc_free(h64);
    uc_free(p64);
    return rc;
}

int uc_jws_sign(const json_t *payload, const struct uc_crypto_key *key, const char *kid,
                char **token)
{
    if (!json_is_object(payload) || !uc_crypto_key_is_private(key) || !kid_ok(kid))
        return UC_EINVAL;
    char *input = NULL, *s64 = NULL, *tok = NULL;
    uint8_t sig[UC_ED25519_SIG_LEN];
    int rc = signing_input(payload, kid, &input);
    if (rc != 0)
        return rc;
    rc = uc_crypto_ed25519_sign(key, input, strlen(input), sig);
    if (rc != 0)
        goto out;
    rc = UC_ENOMEM;
    if (!(s64 = uc_b64url_encode(sig, sizeof(sig))) || !(tok = uc_asprintf("%s.%s", input, s64)))
        goto out;
    if (strlen(tok) > UC_JWS_MAX_LEN) {
        uc_free(tok);
        rc = UC_E2BIG;
        goto out;
    }
    *token = tok;
    rc = 0;
out:
    uc_free(s64);
    uc_free(input);
    return rc;
}

/* Split token into exactly three non-empty parts. */
static int split(const char *token, struct parts *p, char *err)
{
    if (!token)
        return uc_err_set(err, UC_EUNAUTH, "token: missing");
    size_t len = strnlen(token, UC_JWS_MAX_LEN + 1);
    if (len > UC_JWS_MAX_LEN)
        return uc_err_set(err, UC_EUNAUTH, "token: longer than %d bytes", UC_JWS_MAX_LEN);
    const char *s = token, *end = token + len;
    for (int i = 0; i < 3; i++) {
        const char *dot = memchr(s, '.', (size_t)(end - s));
        if ((i < 2) != (dot != NULL))
            return uc_err_set(err, UC_EUNAUTH, "token: not three dot-separated parts");
        p->s[i] = s;
        p->len[i] = (size_t)((dot ? dot : end) - s);
        if (p->len[i] == 0)
            return uc_err_set(err, UC_EUNAUTH, "token: empty part");
        s = dot ? dot + 1 : end;
    }
    return 0;
}

/* Decode one base64url part into a new buffer. */
static int decode_part(const struct parts *p, int i, uint8_t **buf, size_t *len, char *err)
{
    static const char *const names[] = {"header", "payload", "signature"};
    int rc = uc_b64url_decode(p->s[i], p->len[i], buf, len);
    if (rc == UC_ENOMEM)
        return uc_err_set(err, rc, "token: out of memory");
    if (rc != 0)
        return uc_err_set(err, UC_EUNAUTH, "token: %s is not base64url", names[i]);
    return 0;
}

/* Decode part i as a JSON object (duplicate keys refused) into *out. */
static int load_object(const struct parts *p, int i, json_t **out, char *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = decode_part(p, i, &buf, &len, err);
    if (rc != 0)
        return rc;
    json_error_t jerr;
    memset(&jerr, 0, sizeof(jerr)); /* jansson skips it on some early failures */
    json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
    uc_free(buf);
    const char *what = i == 0 ? "header" : "payload";
    if (!j && json_error_code(&jerr) == json_error_out_of_memory)
        return uc_err_set(err, UC_ENOMEM, "token: out of memory");
    if (!j)
        return uc_err_set(err, UC_EUNAUTH, "token: %s is not valid JSON", what);
    if (!json_is_object(j)) {
        json_decref(j);
        return uc_err_set(err, UC_EUNAUTH, "token: %s is not a JSON object", what);
    }
    *out = j;
    return 0;
}

/* The header must name EdDSA exactly, carry a usable kid and no "crit". */
static int check_header(const json_t *h, const char **kid, char *err)
{
    const json_t *alg = json_object_get(h, "alg");
    if (!json_is_string(alg) || json_string_length(alg) != 5 ||
        strcmp(json_string_value(alg), "EdDSA") != 0)
        return uc_err_set(err, UC_EUNAUTH, "token: alg must be EdDSA");
    if (json_object_get(h, "crit"))
        return uc_err_set(err, UC_EUNAUTH, "token: crit header not supported");
    const json_t *k = json_object_get(h, "kid");
    if (!json_is_string(k) || json_string_length(k) != strlen(json_string_value(k)) ||
        !kid_ok(json_string_value(k)))
        return uc_err_set(err, UC_EUNAUTH, "token: kid missing or malformed");
    *kid = json_string_value(k);
    return 0;
}

/* Decode the signature part, which must be exactly 64 bytes. */
static int load_sig(const struct parts *p, uint8_t sig[UC_ED25519_SIG_LEN], char *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = decode_part(p, 2, &buf, &len, err);
    if (rc != 0)
        return rc;
    if (len == UC_ED25519_SIG_LEN)
        memcpy(sig, buf, len);
    else
        rc = uc_err_set(err, UC_EUNAUTH, "token: signature is not %d bytes", UC_ED25519_SIG_LEN);
    uc_free(buf);
    return rc;
}

int uc_jws_decode(const char *token, json_t **header, json_t **payload, const char **kid,
                  char err[UC_ERR_LEN])
{
    struct parts p;
    uint8_t sig[UC_ED25519_SIG_LEN];
    json_t *h = NULL, *pl = NULL;
    const char *k = NULL;
    int rc = split(token, &p, err);
    if (rc == 0)
        rc = load_object(&p, 0, &h, err);
    if (rc == 0)
        rc = check_header(h, &k, err);
    if (rc == 0)
        rc = load_object(&p, 1, &pl, err);
    if (rc == 0)
        rc = load_sig(&p, sig, err);
    if (rc != 0) {
        json_decref(h);
        json_decref(pl);
        return rc;
    }
    *header = h;
    *payload = pl;
    *kid = k;
    return 0;
}

int uc_jws_verify_sig(const char *token, const struct uc_crypto_key *key, char err[UC_ERR_LEN])
{
    struct parts p;
    uint8_t sig[UC_ED25519_SIG_LEN];
    int rc = split(token, &p, err);
    if (rc == 0)
        rc = load_sig(&p, sig, err);
    if (rc != 0)
        return rc;
    size_t input_len = p.len[0] + 1 + p.len[1];
    rc = uc_crypto_ed25519_verify(key, token, input_len, sig);
    if (rc == UC_EUNAUTH)
        return uc_err_set(err, rc, "token: bad signature");
    if (rc != 0)
        return uc_err_set(err, rc, "token: signature check failed: %s", uc_strerror(rc));
    return 0;
}

json_t *uc_jws_jwk(const struct uc_crypto_key *key, const char *kid)
{
    uint8_t pub[UC_ED25519_PUB_LEN];
    if (!kid_ok(kid) || uc_crypto_ed25519_public(key, pub) != 0)
        return NULL;
    char *x = uc_b64url_encode(pub, sizeof(pub));
    if (!x)
        return NULL;
    json_t *jwk = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "kty", "OKP", "crv", "Ed25519", "x", x,
                            "kid", kid, "alg", "EdDSA", "use", "sig");
    uc_free(x);
    return jwk;
}

/* True when member `name` of o is absent (and optional) or exactly `want`. */
static bool member_is(const json_t *o, const char *name, const char *want, bool optional)
{
    const json_t *v = json_object_get(o, name);
    if (!v)
        return optional;
    return json_is_string(v) && json_string_length(v) == strlen(want) &&
           strcmp(json_string_value(v), want) == 0;
}

int uc_jws_key_from_jwk(const json_t *jwk, struct uc_crypto_key **out, char err[UC_ERR_LEN])
{
    *out = NULL;
    if (!json_is_object(jwk))
        return uc_err_set(err, UC_EINVAL, "jwk: not a JSON object");
    if (!member_is(jwk, "kty", "OKP", false) || !member_is(jwk, "crv", "Ed25519", false))
        return uc_err_set(err, UC_EINVAL, "jwk: not an OKP Ed25519 key");
    if (!member_is(jwk, "alg", "EdDSA", true) || !member_is(jwk, "use", "sig", true))
        return uc_err_set(err, UC_EINVAL, "jwk: alg must be EdDSA and use sig");
    const json_t *x = json_object_get(jwk, "x");
    if (!json_is_string(x))
        return uc_err_set(err, UC_EINVAL, "jwk: x missing");
    uint8_t *pub = NULL;
    size_t len = 0;
    int rc = uc_b64url_decode(json_string_value(x), json_string_length(x), &pub, &len);
    if (rc == UC_ENOMEM)
        return uc_err_set(err, rc, "jwk: out of memory");
    if (rc != 0 || len != UC_ED25519_PUB_LEN) {
        uc_free(pub);
        return uc_err_set(err, UC_EINVAL, "jwk: x is not base64url of %d bytes",
                          UC_ED25519_PUB_LEN);
    }
    rc = uc_crypto_ed25519_from_public(out, pub, err);
    uc_free(pub);
    return rc == 0 ? 0 : uc_err_prefix(err, rc, "jwk");
}
