/* uc/alloc.h - the one allocator lib/ uses, with fault injection for tests.
 * uc_alloc_fail_after(n) makes the (n+1)th allocation from now fail, so
 * tests can walk every out-of-memory path. Thread-safe (atomic counter). */
#ifndef UC_ALLOC_H
#define UC_ALLOC_H
#include <stdbool.h>
#include <stddef.h>
#include "uc/err.h"

/* malloc/calloc/realloc/strdup that may be made to fail. Free with uc_free.
 * uc_realloc leaves `p` valid and unchanged when it returns NULL. */
UC_MUSTCHECK void *uc_malloc(size_t n);
UC_MUSTCHECK void *uc_calloc(size_t nmemb, size_t n);
UC_MUSTCHECK void *uc_realloc(void *p, size_t n);
UC_MUSTCHECK char *uc_strdup(const char *s);
UC_MUSTCHECK char *uc_strndup(const char *s, size_t n);
/* Returns a new string formatted like printf, or NULL on failure. */
UC_MUSTCHECK UC_PRINTF(1, 2) char *uc_asprintf(const char *fmt, ...);
void uc_free(void *p);

/* A growing byte buffer, kept NUL-terminated: zero it to start, then
 * append; `data` (uc_free) holds `len` bytes. Once memory runs out `failed`
 * stays set and later appends are no-ops that fail too. */
struct uc_buf {
    char *data;
    size_t len, cap;
    bool failed;
};
/* Append n bytes of p. Returns 0, or UC_ENOMEM (b->failed set). */
int uc_buf_append(struct uc_buf *b, const void *p, size_t n);

/* Fail every allocation after `n` more succeed; n < 0 turns failures off. */
void uc_alloc_fail_after(long n);

/* Route jansson's allocations through uc_malloc/uc_free. Call once at
 * start-up, before any json_t exists. */
void uc_alloc_install_jansson(void);

#endif /* UC_ALLOC_H */
