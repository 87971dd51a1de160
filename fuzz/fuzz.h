/* fuzz.h - what every fuzz target shares: the libFuzzer entry points and a
 * property check that aborts (so libFuzzer and regress.sh report a crash).
 * Each fuzz_<name>.c defines LLVMFuzzerTestOneInput and may define
 * LLVMFuzzerInitialize; regress_main.c calls them without libFuzzer. */
#ifndef UC_FUZZ_H
#define UC_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uc/alloc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property the code under test must keep: abort with `what` if not. */
static inline void fuzz_check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz property violated: %s\n", what);
        abort();
    }
}

/* A NUL-terminated copy of the input, for APIs that take C strings: the
 * copy is cut at the first NUL byte, as a C caller would see it. Never
 * NULL (aborts when out of memory, which only a harness bug causes). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = uc_malloc(size + 1);
    fuzz_check(s != NULL, "harness out of memory");
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif /* UC_FUZZ_H */
