/* json.c - table-driven validation of JSON request bodies with messages a
 * client can act on, strict parsing (duplicate keys rejected, line/column on
 * error), compact serialisation and RFC 3339 UTC timestamps. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "uc/alloc.h"
#include "uc/json.h"

#define NAME_ECHO_MAX 64 /* client-supplied field names are cut to this */

static bool has_bounds(const struct uc_json_field *f) { return f->min != 0 || f->max != 0; }

/* "of 1-63 characters", "of at most 63 characters", "of exactly 8 characters". */
static void describe_range(char *buf, size_t len, const struct uc_json_field *f, const char *unit)
{
    if (!has_bounds(f))
        buf[0] = '\0';
    else if (f->min == f->max)
        snprintf(buf, len, " of exactly %lld %s", (long long)f->min, unit);
    else if (f->min <= 0)
        snprintf(buf, len, " of at most %lld %s", (long long)f->max, unit);
    else
        snprintf(buf, len, " of %lld-%lld %s", (long long)f->min, (long long)f->max, unit);
}

/* Name a charset readably: runs of 3+ consecutive characters become "a-z",
 * the rest are listed one by one, all separated by spaces. */
static void describe_charset(char *buf, size_t len, const char *set)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; set[i] && n + 8 < len; i++) {
        size_t j = i;
        while (set[j + 1] && (unsigned char)set[j + 1] == (unsigned char)set[j] + 1)
            j++;
        if (n > 0)
            buf[n++] = ' ';
        buf[n++] = set[i];
        if (j - i >= 2) {
            buf[n++] = '-';
            buf[n++] = set[j];
            i = j;
        }
        buf[n] = '\0';
    }
}

static int check_string(const json_t *v, const struct uc_json_field *f, char *err)
{
    char range[64];
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    describe_range(range, sizeof(range), f, "characters");
    if (!json_is_string(v) || (has_bounds(f) && ((int64_t)len < f->min || (int64_t)len > f->max)))
        return uc_err_set(err, UC_EINVAL, "field '%s' must be a string%s", f->name, range);
    if (strlen(s) != len)
        return uc_err_set(err, UC_EINVAL, "field '%s' must not contain NUL characters", f->name);
    if (f->charset && strspn(s, f->charset) != len) {
        char set[128];
        describe_charset(set, sizeof(set), f->charset);
        return uc_err_set(err, UC_EINVAL, "field '%s' may only contain %s", f->name, set);
    }
    return 0;
}

static int check_int(const json_t *v, const struct uc_json_field *f, char *err)
{
    if (!json_is_integer(v))
        goto bad;
    json_int_t i = json_integer_value(v);
    if (has_bounds(f) && (i < f->min || i > f->max))
        goto bad;
    return 0;
bad:
    if (has_bounds(f))
        return uc_err_set(err, UC_EINVAL, "field '%s' must be an integer from %lld to %lld",
                          f->name, (long long)f->min, (long long)f->max);
    return uc_err_set(err, UC_EINVAL, "field '%s' must be an integer", f->name);
}

static int check_array(const json_t *v, const struct uc_json_field *f, char *err)
{
    char range[64];
    describe_range(range, sizeof(range), f, "elements");
    if (!json_is_array(v))
        return uc_err_set(err, UC_EINVAL, "field '%s' must be an array%s", f->name, range);
    size_t n = json_array_size(v);
    if (has_bounds(f) && ((int64_t)n < f->min || (int64_t)n > f->max))
        return uc_err_set(err, UC_EINVAL, "field '%s' must be an array%s", f->name, range);
    return 0;
}

static int check_field(const json_t *v, const struct uc_json_field *f, char *err)
{
    switch (f->type) {
    case UC_JSON_STRING:
        return check_string(v, f, err);
    case UC_JSON_INT:
        return check_int(v, f, err);
    case UC_JSON_BOOL:
        if (!json_is_boolean(v))
            return uc_err_set(err, UC_EINVAL, "field '%s' must be true or false", f->name);
        return 0;
    case UC_JSON_OBJECT:
        if (!json_is_object(v))
            return uc_err_set(err, UC_EINVAL, "field '%s' must be an object", f->name);
        return 0;
    case UC_JSON_ARRAY:
        return check_array(v, f, err);
    case UC_JSON_ANY:
        return 0;
    }
    return uc_err_set(err, UC_EINTERNAL, "field '%s' has an unknown type in its table", f->name);
}

static const struct uc_json_field *find_field(const struct uc_json_field *fields, const char *k)
{
    for (const struct uc_json_field *f = fields; f->name; f++)
        if (strcmp(f->name, k) == 0)
            return f;
    return NULL;
}

int uc_json_validate(const json_t *obj, const struct uc_json_field *fields, char err[UC_ERR_LEN])
{
    if (!json_is_object(obj))
        return uc_err_set(err, UC_EINVAL, "request body must be a JSON object");
    const char *key;
    json_t *val;
    /* json_object_foreach takes a non-const object; iteration does not modify it. */
    json_t *o = (json_t *)obj;
    json_object_foreach(o, key, val)
    {
        if (!find_field(fields, key)) {
            char shown[NAME_ECHO_MAX + 4];
            uc_err_sanitize(shown, sizeof(shown), key, NAME_ECHO_MAX);
            return uc_err_set(err, UC_EINVAL, "unknown field '%s'", shown);
        }
    }
    for (const struct uc_json_field *f = fields; f->name; f++) {
        const json_t *v = json_object_get(obj, f->name);
        if (!v || json_is_null(v)) {
            if (f->required)
                return uc_err_set(err, UC_EINVAL, "field '%s' is required", f->name);
            continue;
        }
        int rc = check_field(v, f, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

const char *uc_json_str(const json_t *obj, const char *name, const char *def)
{
    const json_t *v = json_object_get(obj, name);
    return json_is_string(v) ? json_string_value(v) : def;
}

int64_t uc_json_int(const json_t *obj, const char *name, int64_t def)
{
    const json_t *v = json_object_get(obj, name);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

bool uc_json_bool(const json_t *obj, const char *name, bool def)
{
    const json_t *v = json_object_get(obj, name);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

int uc_json_parse(const char *text, size_t len, json_t **out, char err[UC_ERR_LEN])
{
    /* Zeroed: when jansson cannot allocate its lexer it returns before
     * filling in anything but an empty text, leaving the error code byte
     * as it was. */
    json_error_t jerr;
    memset(&jerr, 0, sizeof(jerr));
    if (!text)
        return uc_err_set(err, UC_EINVAL, "invalid JSON: no text");
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!v) {
        char why[JSON_ERROR_TEXT_LENGTH];
        /* Every parse error has a text; only a failed allocation has none.
         * (jansson reports a string token it could not copy as the syntax
         * error that follows, so some failed allocations still read as
         * UC_EINVAL: nothing here can tell them apart.) */
        if (json_error_code(&jerr) == json_error_out_of_memory || !jerr.text[0])
            return uc_err_set(err, UC_ENOMEM, "out of memory parsing JSON");
        uc_err_sanitize(why, sizeof(why), jerr.text, sizeof(why) - 4);
        return uc_err_set(err, UC_EINVAL, "invalid JSON at line %d, column %d: %s", jerr.line,
                          jerr.column, why);
    }
    *out = v;
    return 0;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    return uc_buf_append(data, buf, size) < 0 ? -1 : 0;
}

char *uc_json_dumps(const json_t *v)
{
    struct uc_buf b = {0};
    if (!v)
        return NULL;
    int rc = json_dump_callback(v, dump_cb, &b, JSON_COMPACT | JSON_ENCODE_ANY);
    if (rc != 0 || b.failed) {
        uc_free(b.data);
        return NULL;
    }
    return b.data ? b.data : uc_strdup("");
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

#define TIME_MIN_MS (-62167219200000LL) /* 0000-01-01T00:00:00.000Z */
#define TIME_MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z */

void uc_json_time(int64_t unix_ms, char buf[32])
{
    /* RFC 3339 has four-digit years: clamp to them. */
    if (unix_ms < TIME_MIN_MS)
        unix_ms = TIME_MIN_MS;
    if (unix_ms > TIME_MAX_MS)
        unix_ms = TIME_MAX_MS;
    int64_t secs = unix_ms / 1000, ms = unix_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, 32, "1970-01-01T00:00:00.000Z");
        return;
    }
    /* The modulos change nothing after the clamp; they bound the fields for the compiler. */
    snprintf(buf, 32, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
             (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
             (unsigned)ms % 1000u);
}

/* Read exactly n digits at *p into *out and advance. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, char c)
{
    if (**p != c)
        return false;
    (*p)++;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Optional ".ddd..." (1-9 digits): milliseconds from the first three. */
static bool fraction(const char **p, int *ms)
{
    *ms = 0;
    if (**p != '.')
        return true;
    (*p)++;
    int n = 0, scale = 100;
    for (; **p >= '0' && **p <= '9'; (*p)++, n++) {
        if (n < 3)
            *ms += (**p - '0') * scale;
        scale /= 10;
    }
    return n >= 1 && n <= 9;
}

int uc_json_parse_time(const char *s, int64_t *unix_ms)
{
    int y, mo, d, h, mi, sec, ms;
    const char *p = s;
    if (!p)
        return UC_EINVAL;
    if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
        !digits(&p, 2, &d) || !expect(&p, 'T') || !digits(&p, 2, &h) || !expect(&p, ':') ||
        !digits(&p, 2, &mi) || !expect(&p, ':') || !digits(&p, 2, &sec) || !fraction(&p, &ms) ||
        !expect(&p, 'Z') || *p != '\0')
        return UC_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return UC_EINVAL;
    int64_t days = days_from_civil(y, mo, d);
    *unix_ms = ((days * 24 + h) * 60 + mi) * 60 * 1000 + (int64_t)sec * 1000 + ms;
    return 0;
}

json_t *uc_json_message(const char *msg)
{
    json_t *j = json_string(msg);
    if (j)
        return j;
    char ascii[UC_ERR_LEN];
    size_t i = 0;
    for (; msg[i] && i + 1 < sizeof(ascii); i++)
        ascii[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
    ascii[i] = '\0';
    return json_string(ascii);
}
