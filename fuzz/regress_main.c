/* regress_main.c - main() for the plain (non-libFuzzer) build of a fuzz
 * target: runs LLVMFuzzerTestOneInput once on every file named on the
 * command line (directories: every regular file in them, sorted). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Targets without set-up define no LLVMFuzzerInitialize. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Read `path` into an exactly sized heap buffer, so ASan sees overreads. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "regress: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got = 0;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        uint8_t *more = n == cap ? realloc(buf, cap *= 2) : buf;
        if (!more)
            free(buf);
        buf = more;
    }
    int bad = !buf || ferror(f);
    if (fclose(f) != 0)
        bad = 1;
    uint8_t *exact = bad ? NULL : malloc(n ? n : 1);
    if (exact) {
        memcpy(exact, buf, n);
        /* The target's result is always 0; failures abort. */
        (void)LLVMFuzzerTestOneInput(exact, n);
    }
    free(exact);
    free(buf);
    if (bad || !exact)
        fprintf(stderr, "regress: cannot read %s\n", path);
    return bad || !exact ? -1 : 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Run every regular file in dir; returns the count, or -1 on an error. */
static long run_dir(const char *dir)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "regress: cannot list %s\n", dir);
        return -1;
    }
    long count = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        int w = snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
        if (count >= 0 && w > 0 && (size_t)w < sizeof(path) && stat(path, &st) == 0 &&
            S_ISREG(st.st_mode))
            count = run_file(path) == 0 ? count + 1 : -1;
        free(ents[i]);
    }
    free(ents);
    return count;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize && LLVMFuzzerInitialize(&argc, &argv) != 0)
        return 2;
    long total = 0;
    for (int i = 1; i < argc && total >= 0; i++) {
        struct stat st;
        long n = -1;
        if (stat(argv[i], &st) != 0)
            fprintf(stderr, "regress: no such file %s\n", argv[i]);
        else if (S_ISDIR(st.st_mode))
            n = run_dir(argv[i]);
        else
            n = run_file(argv[i]) == 0 ? 1 : -1;
        total = n < 0 ? -1 : total + n;
    }
    if (total < 0)
        return 2;
    printf("%s: %ld inputs ran\n", argv[0], total);
    return 0;
}
