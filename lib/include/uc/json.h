/* uc/json.h - typed, table-driven validation of JSON request bodies on
 * jansson, with messages a client can act on ("field 'name' must be a string
 * of 1-63 characters"). Stateless and thread-safe. */
#ifndef UC_JSON_H
#define UC_JSON_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uc/err.h"

enum uc_json_type {
    UC_JSON_STRING, /* min/max bound the length in bytes */
    UC_JSON_INT,    /* min/max bound the value */
    UC_JSON_BOOL,
    UC_JSON_OBJECT,
    UC_JSON_ARRAY, /* min/max bound the number of elements */
    UC_JSON_ANY,
};

/* One expected field of an object. A table of these ends with {NULL}. */
struct uc_json_field {
    const char *name;
    enum uc_json_type type;
    bool required;
    int64_t min, max; /* ignored when both are 0 */
    /* For UC_JSON_STRING only: if non-NULL, every byte must be in this set
     * (e.g. UC_JSON_CHARS_NAME); the message names the allowed set. */
    const char *charset;
};

#define UC_JSON_CHARS_NAME "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
#define UC_JSON_CHARS_ID "abcdefghijklmnopqrstuvwxyz0123456789-_"

/* Check `obj` against the table: it must be an object, every required field
 * present, every present field of the right type and bounds, and no field
 * outside the table. Fields whose value is JSON null count as absent.
 * Errors: UC_EINVAL with the first problem in err. */
UC_MUSTCHECK int uc_json_validate(const json_t *obj, const struct uc_json_field *fields,
                                  char err[UC_ERR_LEN]);

/* Accessors for fields already validated: return the value, or `def` when
 * the field is absent or null. Strings are borrowed from `obj`. */
const char *uc_json_str(const json_t *obj, const char *name, const char *def);
int64_t uc_json_int(const json_t *obj, const char *name, int64_t def);
bool uc_json_bool(const json_t *obj, const char *name, bool def);

/* Parse `len` bytes of JSON text. On success *out is a new reference the
 * caller releases with json_decref. Errors: UC_EINVAL with line/column. */
UC_MUSTCHECK int uc_json_parse(const char *text, size_t len, json_t **out, char err[UC_ERR_LEN]);

/* Serialize compactly. Returns a string freed with uc_free, or NULL. */
UC_MUSTCHECK char *uc_json_dumps(const json_t *v);

/* Format a unix time in milliseconds as RFC 3339 UTC ("...T12:00:00.123Z")
 * into buf (at least 32 bytes). */
void uc_json_time(int64_t unix_ms, char buf[32]);

/* Parse an RFC 3339 UTC time ("2026-01-02T03:04:05Z", optional fraction).
 * Errors: UC_EINVAL. */
UC_MUSTCHECK int uc_json_parse_time(const char *s, int64_t *unix_ms);

#endif /* UC_JSON_H */
