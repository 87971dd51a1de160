/* alloc.c - the allocator lib/ goes through, with a countdown that makes the
 * Nth allocation fail so tests reach every out-of-memory path. */
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uc/alloc.h"

static atomic_long fail_after = -1;

static int should_fail(void)
{
    long n = atomic_load(&fail_after);
    while (n >= 0) {
        if (n == 0)
            return 1;
        if (atomic_compare_exchange_weak(&fail_after, &n, n - 1))
            return 0;
    }
    return 0;
}

void uc_alloc_fail_after(long n) { atomic_store(&fail_after, n < 0 ? -1 : n); }

void *uc_malloc(size_t n) { return should_fail() ? NULL : malloc(n ? n : 1); }

void *uc_calloc(size_t nmemb, size_t n)
{
    return should_fail() ? NULL : calloc(nmemb ? nmemb : 1, n ? n : 1);
}

void *uc_realloc(void *p, size_t n) { return should_fail() ? NULL : realloc(p, n ? n : 1); }

void uc_free(void *p) { free(p); }

char *uc_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = uc_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *uc_strdup(const char *s) { return uc_strndup(s, strlen(s)); }

char *uc_asprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : uc_malloc((size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return s;
}

static void *jansson_malloc(size_t n) { return uc_malloc(n); }

void uc_alloc_install_jansson(void) { json_set_alloc_funcs(jansson_malloc, uc_free); }

int uc_buf_append(struct uc_buf *b, const void *p, size_t n)
{
    if (b->failed)
        return UC_ENOMEM;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = uc_realloc(b->data, cap);
        if (!grown) {
            b->failed = true;
            return UC_ENOMEM;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}
