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
    /* Ignored when both are 0. min == max asks for exactly that many; for
     * strings and arrays min 0 reads as "at most max". */
    int64_t min, max;
    /* For UC_JSON_STRING only: if non-NULL, every byte must be in this set
     * (e.g. UC_JSON_CHARS_NAME); the message names the allowed set. */
    const char *charset;
};

#define UC_JSON_CHARS_NAME "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
#define UC_JSON_CHARS_ID "abcdefghijklmnopqrstuvwxyz0123456789-_"

/* Check `obj` (borrowed) against the table: it must be an object, with no
 * field outside the table, every required field present, and every present
 * field of the right type and bounds. Fields whose value is JSON null count
 * as absent. Unknown fields are reported first (a typo then reads "unknown
 * field 'nmae'" rather than "field 'name' is required"); a client's field
 * name is sanitized and cut to 64 characters before it is echoed. Strings
 * holding a NUL byte are refused. Messages look like
 *   "request body must be a JSON object"
 *   "unknown field 'nmae'"
 *   "field 'name' is required"
 *   "field 'name' must be a string of 1-63 characters"
 *   "field 'name' may only contain a-z A-Z 0-9 - _ ."
 *   "field 'ttl_seconds' must be an integer from 60 to 86400"
 *   "field 'enabled' must be true or false"
 * Errors: UC_EINVAL with the first problem in err; UC_EINTERNAL for a table
 * entry with an unknown type (a bug). */
UC_MUSTCHECK int uc_json_validate(const json_t *obj, const struct uc_json_field *fields,
                                  char err[UC_ERR_LEN]);

/* Accessors for fields already validated: return the value, or `def` when
 * the field is absent or null. Strings are borrowed from `obj`. */
const char *uc_json_str(const json_t *obj, const char *name, const char *def);
int64_t uc_json_int(const json_t *obj, const char *name, int64_t def);
bool uc_json_bool(const json_t *obj, const char *name, bool def);

/* Parse `len` bytes of JSON text (no NUL needed; bytes after `len` are not
 * read). Any JSON value is accepted at the top (uc_json_validate insists on
 * an object); duplicate object keys and "\u0000" in strings are refused. On
 * success *out is a new reference the caller releases with json_decref; on
 * failure *out is untouched.
 * Errors: UC_EINVAL ("invalid JSON at line L, column C: <reason>", or NULL
 * text), UC_ENOMEM. */
UC_MUSTCHECK int uc_json_parse(const char *text, size_t len, json_t **out, char err[UC_ERR_LEN]);

/* Serialize any JSON value compactly (`v` borrowed). Returns a new string
 * freed with uc_free, or NULL when v is NULL or memory runs out. */
UC_MUSTCHECK char *uc_json_dumps(const json_t *v);

/* A message (NUL-terminated, at most UC_ERR_LEN bytes used) as a new JSON
 * string; when it is not UTF-8 every byte past ASCII becomes '?', so an
 * error quoting raw bytes still has a message. NULL only on ENOMEM. */
json_t *uc_json_message(const char *msg);

/* Format a unix time in milliseconds as RFC 3339 UTC, always with three
 * fraction digits and "Z" ("2026-01-02T03:04:05.123Z"), into buf (at least
 * 32 bytes). Times outside years 0000-9999 are clamped to that range. */
void uc_json_time(int64_t unix_ms, char buf[32]);

/* Parse an RFC 3339 UTC time strictly: "YYYY-MM-DDTHH:MM:SS[.f]Z" with an
 * upper-case T and Z, no offset, a fraction of 1-9 digits (cut to
 * milliseconds), a real calendar date and no leap second (:60). On failure
 * *unix_ms is untouched. Errors: UC_EINVAL (also for NULL). */
UC_MUSTCHECK int uc_json_parse_time(const char *s, int64_t *unix_ms);

#endif /* UC_JSON_H */
