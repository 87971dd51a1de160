/* uc/config.h - daemon options from one table: command-line flags first,
 * then UC_<SERVICE>_<OPTION> environment variables, then an optional JSON
 * file (--config / UC_<SERVICE>_CONFIG), then the table's defaults. --help
 * is generated from the same table. Not thread-safe; call from main. */
#ifndef UC_CONFIG_H
#define UC_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uc/err.h"

enum uc_config_type {
    UC_CFG_STRING, /* char * in the target struct, owned by it (uc_config_free) */
    UC_CFG_INT,    /* int64_t, bounded by min/max */
    UC_CFG_BOOL,   /* bool; "true/false/1/0/yes/no"; a bare flag means true */
};

struct uc_config_opt {
    const char *name; /* flag "--listen-port", env UC_IAM_LISTEN_PORT, JSON "listen_port" */
    enum uc_config_type type;
    size_t offset;    /* offsetof(struct my_config, field) */
    const char *def;  /* default as text; NULL = no default */
    int64_t min, max; /* bounds for UC_CFG_INT */
    bool required;    /* missing and no default stops start-up */
    const char *help;
};

/* Fill `target` from argv, the environment and the file. `service` is the
 * name used for env vars ("iam" -> UC_IAM_*) and in --help. `opts` ends
 * with {NULL}. Strings in `target` are new allocations, freed by
 * uc_config_free. On any failure `target` holds nothing to free.
 * Errors: UC_EHELP (--help printed to stdout: exit 0), UC_EINVAL with one
 * line in err naming the option and the problem (exit 2), UC_ENOMEM. */
UC_MUSTCHECK int uc_config_load(void *target, const struct uc_config_opt *opts, const char *service,
                                int argc, char **argv, char err[UC_ERR_LEN]);

/* Free the strings uc_config_load stored in `target`. */
void uc_config_free(void *target, const struct uc_config_opt *opts);

/* Print the generated help for `opts` to `out` (a FILE *). */
void uc_config_usage(const struct uc_config_opt *opts, const char *service, void *out);

/* Read a whole small file (secrets, keys) into a new NUL-terminated buffer
 * freed with uc_free; *len gets its size. Refuses files over `max` bytes.
 * Errors: UC_ENOENT, UC_EIO, UC_E2BIG, UC_ENOMEM. */
UC_MUSTCHECK int uc_config_read_file(const char *path, size_t max, char **out, size_t *len,
                                     char err[UC_ERR_LEN]);

#endif /* UC_CONFIG_H */
