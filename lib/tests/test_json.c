/* test_json.c - request body validation, strict parsing, serialisation and
 * RFC 3339 timestamps. */
#include <check.h>

#include "uc_check.h"
#include <stdlib.h>
#include <string.h>

#include "uc/alloc.h"
#include "uc/json.h"

static const struct uc_json_field zone_fields[] = {
    {"name", UC_JSON_STRING, true, 1, 63, UC_JSON_CHARS_NAME},
    {"ttl_seconds", UC_JSON_INT, false, 60, 86400, NULL},
    {"enabled", UC_JSON_BOOL, false, 0, 0, NULL},
    {"labels", UC_JSON_OBJECT, false, 0, 0, NULL},
    {"records", UC_JSON_ARRAY, false, 1, 3, NULL},
    {"note", UC_JSON_STRING, false, 0, 10, NULL},
    {"id", UC_JSON_STRING, false, 0, 0, UC_JSON_CHARS_ID},
    {"extra", UC_JSON_ANY, false, 0, 0, NULL},
    {NULL},
};

/* Parse `text`, validate it against zone_fields, return the code; the
 * message lands in err. */
static int validate_text(const char *text, char err[UC_ERR_LEN])
{
    json_t *v = NULL;
    ck_assert_int_eq(uc_json_parse(text, strlen(text), &v, err), 0);
    err[0] = '\0';
    int rc = uc_json_validate(v, zone_fields, err);
    json_decref(v);
    return rc;
}

static void assert_rejects(const char *text, const char *msg)
{
    char err[UC_ERR_LEN];
    ck_assert_int_eq(validate_text(text, err), UC_EINVAL);
    ck_assert_str_eq(err, msg);
}

START_TEST(validate_accepts_a_good_body)
{
    char err[UC_ERR_LEN] = "";
    ck_assert_int_eq(validate_text("{\"name\":\"web-1.example_a\",\"ttl_seconds\":300,"
                                   "\"enabled\":true,\"labels\":{},\"records\":[1],"
                                   "\"note\":\"\",\"id\":\"zone-abc_1\",\"extra\":[null]}",
                                   err),
                     0);
    ck_assert_str_eq(err, "");
}
END_TEST

START_TEST(validate_requires_an_object)
{
    assert_rejects("[1,2]", "request body must be a JSON object");
    assert_rejects("\"x\"", "request body must be a JSON object");
    char err[UC_ERR_LEN];
    ck_assert_int_eq(uc_json_validate(NULL, zone_fields, err), UC_EINVAL);
    ck_assert_str_eq(err, "request body must be a JSON object");
}
END_TEST

START_TEST(validate_names_missing_required_field)
{
    assert_rejects("{}", "field 'name' is required");
    assert_rejects("{\"name\":null}", "field 'name' is required");
}
END_TEST

START_TEST(validate_rejects_unknown_field)
{
    assert_rejects("{\"nmae\":\"x\"}", "unknown field 'nmae'");
}
END_TEST

START_TEST(validate_sanitizes_and_truncates_echoed_field_names)
{
    char text[400], err[UC_ERR_LEN];
    char longname[201];
    memset(longname, 'k', 200);
    longname[200] = '\0';
    snprintf(text, sizeof(text), "{\"%s\":1}", longname);
    ck_assert_int_eq(validate_text(text, err), UC_EINVAL);
    char expect[128];
    snprintf(expect, sizeof(expect), "unknown field '%.64s...'", longname);
    ck_assert_str_eq(err, expect);
    assert_rejects("{\"a\\r\\nb\":1}", "unknown field 'a  b'");
}
END_TEST

START_TEST(validate_checks_string_length)
{
    assert_rejects("{\"name\":\"\"}", "field 'name' must be a string of 1-63 characters");
    assert_rejects("{\"name\":42}", "field 'name' must be a string of 1-63 characters");
    char text[128];
    snprintf(text, sizeof(text), "{\"name\":\"%064d\"}", 0);
    assert_rejects(text, "field 'name' must be a string of 1-63 characters");
    snprintf(text, sizeof(text), "{\"name\":\"%063d\"}", 0);
    char err[UC_ERR_LEN];
    ck_assert_int_eq(validate_text(text, err), 0);
    assert_rejects("{\"name\":\"a\",\"note\":\"12345678901\"}",
                   "field 'note' must be a string of at most 10 characters");
}
END_TEST

START_TEST(validate_names_the_charset_readably)
{
    assert_rejects("{\"name\":\"a b\"}", "field 'name' may only contain a-z A-Z 0-9 - _ .");
    assert_rejects("{\"name\":\"a\",\"id\":\"Zone\"}", "field 'id' may only contain a-z 0-9 - _");
}
END_TEST

START_TEST(validate_checks_integer_type_and_bounds)
{
    const char *msg = "field 'ttl_seconds' must be an integer from 60 to 86400";
    assert_rejects("{\"name\":\"a\",\"ttl_seconds\":59}", msg);
    assert_rejects("{\"name\":\"a\",\"ttl_seconds\":86401}", msg);
    assert_rejects("{\"name\":\"a\",\"ttl_seconds\":300.5}", msg);
    assert_rejects("{\"name\":\"a\",\"ttl_seconds\":\"300\"}", msg);
    char err[UC_ERR_LEN];
    ck_assert_int_eq(validate_text("{\"name\":\"a\",\"ttl_seconds\":60}", err), 0);
    ck_assert_int_eq(validate_text("{\"name\":\"a\",\"ttl_seconds\":86400}", err), 0);
}
END_TEST

START_TEST(validate_checks_bool_object_and_array)
{
    assert_rejects("{\"name\":\"a\",\"enabled\":1}", "field 'enabled' must be true or false");
    assert_rejects("{\"name\":\"a\",\"labels\":[]}", "field 'labels' must be an object");
    assert_rejects("{\"name\":\"a\",\"records\":{}}",
                   "field 'records' must be an array of 1-3 elements");
    assert_rejects("{\"name\":\"a\",\"records\":[]}",
                   "field 'records' must be an array of 1-3 elements");
    assert_rejects("{\"name\":\"a\",\"records\":[1,2,3,4]}",
                   "field 'records' must be an array of 1-3 elements");
}
END_TEST

START_TEST(validate_rejects_embedded_nul_in_constructed_strings)
{
    json_t *o = json_object();
    ck_assert_int_eq(json_object_set_new(o, "name", json_stringn("a\0b", 3)), 0);
    char err[UC_ERR_LEN];
    ck_assert_int_eq(uc_json_validate(o, zone_fields, err), UC_EINVAL);
    ck_assert_str_eq(err, "field 'name' must not contain NUL characters");
    json_decref(o);
}
END_TEST

START_TEST(accessors_return_values_or_defaults)
{
    json_t *v = NULL;
    const char *text = "{\"s\":\"x\",\"i\":7,\"b\":false,\"n\":null}";
    ck_assert_int_eq(uc_json_parse(text, strlen(text), &v, NULL), 0);
    ck_assert_str_eq(uc_json_str(v, "s", "d"), "x");
    ck_assert_str_eq(uc_json_str(v, "n", "d"), "d");
    ck_assert_str_eq(uc_json_str(v, "missing", "d"), "d");
    ck_assert_ptr_null(uc_json_str(v, "i", NULL));
    ck_assert_int_eq(uc_json_int(v, "i", -1), 7);
    ck_assert_int_eq(uc_json_int(v, "s", -1), -1);
    ck_assert(!uc_json_bool(v, "b", true));
    ck_assert(uc_json_bool(v, "missing", true));
    json_decref(v);
}
END_TEST

START_TEST(parse_reports_line_and_column)
{
    json_t *v = NULL;
    char err[UC_ERR_LEN];
    const char *text = "{\n  \"a\": 1,\n  \"b\": }";
    ck_assert_int_eq(uc_json_parse(text, strlen(text), &v, err), UC_EINVAL);
    ck_assert_ptr_null(v);
    ck_assert_msg(strncmp(err, "invalid JSON at line 3, column ", 31) == 0, "got: %s", err);
}
END_TEST

START_TEST(parse_rejects_duplicate_keys)
{
    json_t *v = NULL;
    char err[UC_ERR_LEN];
    const char *text = "{\"a\":1,\"a\":2}";
    ck_assert_int_eq(uc_json_parse(text, strlen(text), &v, err), UC_EINVAL);
    ck_assert_msg(strstr(err, "duplicate") != NULL, "got: %s", err);
}
END_TEST

START_TEST(parse_uses_only_len_bytes)
{
    json_t *v = NULL;
    ck_assert_int_eq(uc_json_parse("[1]garbage", 3, &v, NULL), 0);
    ck_assert(json_is_array(v));
    json_decref(v);
    ck_assert_int_eq(uc_json_parse("", 0, &v, NULL), UC_EINVAL);
}
END_TEST

START_TEST(parse_sanitizes_the_parser_message)
{
    json_t *v = NULL;
    char err[UC_ERR_LEN];
    const char *text = "\x01\r\n";
    ck_assert_int_eq(uc_json_parse(text, strlen(text), &v, err), UC_EINVAL);
    ck_assert_ptr_null(strchr(err, '\r'));
    ck_assert_ptr_null(strchr(err, '\x01'));
}
END_TEST

/* jansson gives up before parsing when it cannot allocate its lexer and
 * leaves its error code byte unset (valgrind saw it read): that is out of
 * memory, not bad input. Later failures must never crash, leak or yield a
 * value; jansson reports some of them (a string token it could not copy)
 * as the syntax error they cause, which the caller sees as UC_EINVAL. */
START_TEST(parse_reports_a_failed_lexer_allocation_as_enomem)
{
    const char *text = "{\"name\":\"zone\",\"records\":[1,2,{\"a\":\"b\"}],\"x\":null}";
    char err[UC_ERR_LEN];
    json_t *v = NULL;
    uc_alloc_fail_after(0);
    ck_assert_int_eq(uc_json_parse(text, strlen(text), &v, err), UC_ENOMEM);
    uc_alloc_fail_after(-1);
    ck_assert_str_eq(err, "out of memory parsing JSON");
    ck_assert_ptr_null(v);
    int rc = -1;
    long n;
    for (n = 1; rc != 0 && n < 1000; n++) {
        uc_alloc_fail_after(n);
        rc = uc_json_parse(text, strlen(text), &v, err);
        uc_alloc_fail_after(-1);
        ck_assert_msg(rc == 0 || rc == UC_ENOMEM || rc == UC_EINVAL, "allocation %ld: %d", n, rc);
        ck_assert(rc == 0 || v == NULL);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_str_eq(uc_json_str(v, "name", NULL), "zone");
    json_decref(v);
}
END_TEST

START_TEST(dumps_is_compact)
{
    json_t *v = json_pack("{s:i,s:[s,b]}", "a", 1, "b", "x", 1);
    char *s = uc_json_dumps(v);
    ck_assert_str_eq(s, "{\"a\":1,\"b\":[\"x\",true]}");
    uc_free(s);
    json_decref(v);
    json_t *n = json_integer(5);
    s = uc_json_dumps(n);
    ck_assert_str_eq(s, "5");
    uc_free(s);
    json_decref(n);
}
END_TEST

START_TEST(dumps_returns_null_when_allocation_fails)
{
    json_t *v = json_pack("{s:s}", "a", "b");
    uc_alloc_fail_after(0);
    char *s = uc_json_dumps(v);
    uc_alloc_fail_after(-1);
    ck_assert_ptr_null(s);
    json_decref(v);
}
END_TEST

START_TEST(time_formats_milliseconds_and_z)
{
    char buf[32];
    uc_json_time(0, buf);
    ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
    uc_json_time(1767323045123LL, buf);
    ck_assert_str_eq(buf, "2026-01-02T03:04:05.123Z");
    uc_json_time(951782400000LL, buf); /* leap day 2000 */
    ck_assert_str_eq(buf, "2000-02-29T00:00:00.000Z");
    uc_json_time(-1, buf);
    ck_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
}
END_TEST

START_TEST(time_clamps_to_four_digit_years)
{
    char buf[32];
    uc_json_time(INT64_MAX, buf);
    ck_assert_str_eq(buf, "9999-12-31T23:59:59.999Z");
    uc_json_time(INT64_MIN, buf);
    ck_assert_str_eq(buf, "0000-01-01T00:00:00.000Z");
}
END_TEST

START_TEST(time_parses_strict_utc)
{
    int64_t ms = -1;
    ck_assert_int_eq(uc_json_parse_time("2026-01-02T03:04:05Z", &ms), 0);
    ck_assert_int_eq(ms, 1767323045000LL);
    ck_assert_int_eq(uc_json_parse_time("2026-01-02T03:04:05.123Z", &ms), 0);
    ck_assert_int_eq(ms, 1767323045123LL);
    ck_assert_int_eq(uc_json_parse_time("2026-01-02T03:04:05.1Z", &ms), 0);
    ck_assert_int_eq(ms, 1767323045100LL);
    ck_assert_int_eq(uc_json_parse_time("2026-01-02T03:04:05.123456789Z", &ms), 0);
    ck_assert_int_eq(ms, 1767323045123LL);
    ck_assert_int_eq(uc_json_parse_time("2000-02-29T00:00:00Z", &ms), 0);
    ck_assert_int_eq(ms, 951782400000LL);
    ck_assert_int_eq(uc_json_parse_time("1970-01-01T00:00:00Z", &ms), 0);
    ck_assert_int_eq(ms, 0);
}
END_TEST

START_TEST(time_round_trips)
{
    char buf[32];
    int64_t ms = 0;
    for (int64_t t = 0; t < 4102444800000LL; t += 123456789123LL) {
        uc_json_time(t, buf);
        ck_assert_int_eq(uc_json_parse_time(buf, &ms), 0);
        ck_assert_int_eq(ms, t);
    }
}
END_TEST

START_TEST(time_rejects_anything_loose)
{
    static const char *bad[] = {
        "2026-01-02T03:04:05+00:00",
        "2026-01-02t03:04:05Z",
        "2026-01-02T03:04:05z",
        "2026-01-02 03:04:05Z",
        "2026-01-02T03:04:05",
        "2026-1-02T03:04:05Z",
        "2026-13-02T03:04:05Z",
        "2026-00-02T03:04:05Z",
        "2026-02-29T03:04:05Z",
        "2026-01-32T03:04:05Z",
        "2026-01-02T24:00:00Z",
        "2026-01-02T03:60:05Z",
        "2026-01-02T03:04:60Z",
        "2026-01-02T03:04:05.Z",
        "2026-01-02T03:04:05.1234567890Z",
        "2026-01-02T03:04:05Zx",
        "",
        " 2026-01-02T03:04:05Z",
        "1900-02-29T00:00:00Z",
    };
    int64_t ms = 42;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(uc_json_parse_time(bad[i], &ms) == UC_EINVAL, "accepted '%s'", bad[i]);
    ck_assert_int_eq(ms, 42);
    ck_assert_int_eq(uc_json_parse_time(NULL, &ms), UC_EINVAL);
}
END_TEST

START_TEST(a_buffer_grows_stays_terminated_and_fails_stickily)
{
    struct uc_buf b = {0};
    char chunk[300];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(uc_buf_append(&b, chunk, sizeof(chunk)), 0);
    ck_assert_uint_eq(b.len, 3000);
    ck_assert_uint_eq(strlen(b.data), 3000);
    ck_assert_int_eq(uc_buf_append(&b, "", 0), 0);
    ck_assert_uint_eq(b.len, 3000);
    /* the next growth fails: it sticks, and the bytes so far stay */
    uc_alloc_fail_after(0);
    ck_assert_int_eq(uc_buf_append(&b, chunk, b.cap), UC_ENOMEM);
    uc_alloc_fail_after(-1);
    ck_assert(b.failed);
    ck_assert_int_eq(uc_buf_append(&b, "y", 1), UC_ENOMEM);
    ck_assert_uint_eq(b.len, 3000);
    ck_assert_uint_eq(strlen(b.data), 3000);
    uc_free(b.data);
}
END_TEST

int main(void)
{
    uc_alloc_install_jansson(); /* so uc_alloc_fail_after reaches jansson */
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("validate");
    tcase_add_test(tc, validate_accepts_a_good_body);
    tcase_add_test(tc, validate_requires_an_object);
    tcase_add_test(tc, validate_names_missing_required_field);
    tcase_add_test(tc, validate_rejects_unknown_field);
    tcase_add_test(tc, validate_sanitizes_and_truncates_echoed_field_names);
    tcase_add_test(tc, validate_checks_string_length);
    tcase_add_test(tc, validate_names_the_charset_readably);
    tcase_add_test(tc, validate_checks_integer_type_and_bounds);
    tcase_add_test(tc, validate_checks_bool_object_and_array);
    tcase_add_test(tc, validate_rejects_embedded_nul_in_constructed_strings);
    suite_add_tcase(s, tc);
    tc = tcase_create("accessors");
    tcase_add_test(tc, accessors_return_values_or_defaults);
    suite_add_tcase(s, tc);
    tc = tcase_create("parse");
    tcase_add_test(tc, parse_reports_line_and_column);
    tcase_add_test(tc, parse_rejects_duplicate_keys);
    tcase_add_test(tc, parse_uses_only_len_bytes);
    tcase_add_test(tc, parse_sanitizes_the_parser_message);
    tcase_add_test(tc, parse_reports_a_failed_lexer_allocation_as_enomem);
    suite_add_tcase(s, tc);
    tc = tcase_create("dumps");
    tcase_add_test(tc, dumps_is_compact);
    tcase_add_test(tc, dumps_returns_null_when_allocation_fails);
    tcase_add_test(tc, a_buffer_grows_stays_terminated_and_fails_stickily);
    suite_add_tcase(s, tc);
    tc = tcase_create("time");
    tcase_add_test(tc, time_formats_milliseconds_and_z);
    tcase_add_test(tc, time_clamps_to_four_digit_years);
    tcase_add_test(tc, time_parses_strict_utc);
    tcase_add_test(tc, time_round_trips);
    tcase_add_test(tc, time_rejects_anything_loose);
    suite_add_tcase(s, tc);
    return uc_check_run(s);
}
