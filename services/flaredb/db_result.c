/* db_result.c - an applied command's answer, built on every member but
 * read only where the write was proposed. So it is kept in the form that is
 * cheapest to build: a statement that returns no rows (an INSERT, UPDATE or
 * DELETE) is two numbers, and JSON is made only for the one member that
 * answers, written as text straight into the reply. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db_internal.h"
#include "uc/alloc.h"
#include "uc/json.h"

struct flaredb_result *flaredb_result_new(void)
{
    return uc_calloc(1, sizeof(struct flaredb_result));
}

void flaredb_result_reset(struct flaredb_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        json_decref(r->r[i].full);
    r->n = 0;
}

void flaredb_result_free(struct flaredb_result *r)
{
    if (!r)
        return;
    flaredb_result_reset(r);
    uc_free(r->r);
    json_decref(r->json);
    uc_free(r);
}

int flaredb_result_add(struct flaredb_result *r, json_t *full, int64_t changes, int64_t last_id)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        struct res_stmt *grown = uc_realloc(r->r, cap * sizeof(*grown));
        if (!grown) {
            json_decref(full);
            return UC_ENOMEM;
        }
        r->r = grown;
        r->cap = cap;
    }
    r->r[r->n++] = (struct res_stmt){.full = full, .changes = changes, .last_id = last_id};
    return 0;
}

static json_t *stmt_json(const struct res_stmt *s)
{
    if (s->full)
        return json_incref(s->full);
    return json_pack("{s[]s[]s[]sIsI}", "columns", "types", "rows", "rows_affected",
                     (json_int_t)s->changes, "last_insert_id", (json_int_t)s->last_id);
}

json_t *flaredb_result_array(const struct flaredb_result *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n; i++) {
        if (json_array_append_new(a, stmt_json(&r->r[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

const json_t *flaredb_result_error(const struct flaredb_result *r)
{
    return json_object_get(r->json, "error");
}

json_t *flaredb_result_json(const struct flaredb_result *r)
{
    if (r->json)
        return json_incref(r->json);
    json_t *a = flaredb_result_array(r);
    return a ? json_pack("{so}", "results", a) : NULL;
}

/* A failed append sticks in t->failed, which the caller checks once. */
static void put(struct uc_buf *t, const char *s, size_t n) { (void)uc_buf_append(t, s, n); }

static void put_json(struct uc_buf *t, const json_t *v)
{
    char *s = uc_json_dumps(v);
    if (!s)
        t->failed = true;
    else
        put(t, s, strlen(s));
    uc_free(s);
}

/* Decimal digits of v into buf (at least 21 bytes); returns their count.
 * Not snprintf: a batch answer holds 200 numbers. */
static size_t fmt_i64(char *buf, int64_t v)
{
    char tmp[21];
    size_t n = 0, len = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    return len;
}

/* The answer of a statement without columns. */
static void put_counts(struct uc_buf *t, const struct res_stmt *s)
{
    static const char head[] = "{\"columns\":[],\"types\":[],\"rows\":[],\"rows_affected\":";
    static const char mid[] = ",\"last_insert_id\":";
    char num[24];
    put(t, head, sizeof(head) - 1);
    put(t, num, fmt_i64(num, s->changes));
    put(t, mid, sizeof(mid) - 1);
    put(t, num, fmt_i64(num, s->last_id));
    put(t, "}", 1);
}

/* {"results":[...],"index":N}, or the JSON answer with "index" added. */
static void put_answer(struct uc_buf *t, const struct flaredb_result *r, uint64_t index,
                       bool with_index)
{
    char num[160];
    if (r->json) {
        json_t *copy = json_copy(r->json);
        if (!copy ||
            (with_index && json_object_set_new(copy, "index", json_integer((json_int_t)index)) < 0))
            t->failed = true;
        else
            put_json(t, copy);
        json_decref(copy);
        return;
    }
    put(t, "{\"results\":[", 12);
    for (size_t i = 0; i < r->n; i++) {
        if (i)
            put(t, ",", 1);
        if (r->r[i].full) {
            put_json(t, r->r[i].full);
            continue;
        }
        put_counts(t, &r->r[i]);
    }
    put(t, "]", 1);
    if (with_index) {
        int n = snprintf(num, sizeof(num), ",\"index\":%" PRIu64, index);
        put(t, num, (size_t)n);
    }
    put(t, "}", 1);
}

char *flaredb_result_text(const struct flaredb_result *r, uint64_t index, bool with_index,
                          size_t *len)
{
    struct uc_buf t = {0};
    put_answer(&t, r, index, with_index);
    if (t.failed) {
        uc_free(t.data);
        return NULL;
    }
    *len = t.len;
    return t.data;
}
