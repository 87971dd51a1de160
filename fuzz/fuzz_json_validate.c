/* fuzz_json_validate.c - request bodies: uc_json_parse, uc_json_validate
 * against a table like a service's, the accessors, a dump/parse round trip
 * and uc_json_parse_time (on the whole input and on every string field). */
#include <jansson.h>

#include "fuzz.h"
#include "uc/json.h"

/* Shaped like a real create request: every type, bounds and charsets. */
static const struct uc_json_field fields[] = {
    {"name", UC_JSON_STRING, true, 1, 63, UC_JSON_CHARS_NAME},
    {"id", UC_JSON_STRING, false, 0, 48, UC_JSON_CHARS_ID},
    {"description", UC_JSON_STRING, false, 0, 256, NULL},
    {"key", UC_JSON_STRING, false, 8, 8, NULL},
    {"ttl_seconds", UC_JSON_INT, false, 60, 86400, NULL},
    {"revision", UC_JSON_INT, false, 0, 0, NULL},
    {"offset", UC_JSON_INT, false, INT64_MIN, INT64_MAX, NULL},
    {"enabled", UC_JSON_BOOL, false, 0, 0, NULL},
    {"labels", UC_JSON_OBJECT, false, 0, 0, NULL},
    {"ports", UC_JSON_ARRAY, false, 0, 16, NULL},
    {"members", UC_JSON_ARRAY, false, 1, 3, NULL},
    {"spec", UC_JSON_ANY, false, 0, 0, NULL},
    {"created_at", UC_JSON_STRING, false, 0, 0, NULL},
    {0},
};

/* A time that parses must print and parse back to the same instant. */
static void check_time(const char *s)
{
    int64_t ms = 0, again = 0;
    if (uc_json_parse_time(s, &ms) != 0)
        return;
    char buf[32];
    uc_json_time(ms, buf);
    fuzz_check(uc_json_parse_time(buf, &again) == 0, "uc_json_time output does not parse");
    fuzz_check(again == ms, "uc_json_time/parse_time round trip changed the time");
}

/* Serialize, reparse, compare: what we answer must be what we read. */
static void check_round_trip(const json_t *v)
{
    char *text = uc_json_dumps(v);
    fuzz_check(text != NULL, "uc_json_dumps failed on a parsed value");
    json_t *back = NULL;
    char err[UC_ERR_LEN];
    fuzz_check(uc_json_parse(text, strlen(text), &back, err) == 0, "dumped JSON does not parse");
    fuzz_check(json_equal(v, back), "JSON changed through dump and parse");
    json_decref(back);
    uc_free(text);
}

static void check_validated(const json_t *v)
{
    const char *name = uc_json_str(v, "name", NULL);
    fuzz_check(name && strlen(name) >= 1 && strlen(name) <= 63, "validated name out of bounds");
    int64_t ttl = uc_json_int(v, "ttl_seconds", 60);
    fuzz_check(ttl >= 60 && ttl <= 86400, "validated ttl out of bounds");
    (void)uc_json_bool(v, "enabled", false); /* any value is fine: it must not crash */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    uc_alloc_install_jansson(); /* as the daemons do */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[UC_ERR_LEN] = "";
    json_t *v = NULL;
    if (size <= 64) {
        char *s = fuzz_cstr(data, size);
        check_time(s);
        uc_free(s);
    }
    int rc = uc_json_parse((const char *)data, size, &v, err);
    fuzz_check(rc == 0 || rc == UC_EINVAL || rc == UC_ENOMEM, "uc_json_parse: unexpected code");
    fuzz_check(memchr(err, '\0', sizeof(err)) != NULL, "error message not terminated");
    if (rc != 0)
        return 0;
    check_round_trip(v);
    rc = uc_json_validate(v, fields, err);
    fuzz_check(rc == 0 || rc == UC_EINVAL, "uc_json_validate: unexpected code");
    if (rc == 0)
        check_validated(v);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val)
    {
        if (json_is_string(val))
            check_time(json_string_value(val));
    }
    json_decref(v);
    return 0;
}
