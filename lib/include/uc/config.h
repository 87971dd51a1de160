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
    UC_CFG_INT,    /* int64_t, base 10, bounded by min/max (no bounds when both are 0) */
    UC_CFG_BOOL,   /* bool; true/false/1/0/yes/no in any case; a bare flag means true */
};

/* One option. "config", "check-config" and "help" are taken by the built-in
 * flags. */
struct uc_config_opt {
    const char *name; /* flag "--listen-port", env UC_IAM_LISTEN_PORT, JSON "listen_port" */
    enum uc_config_type type;
    size_t offset;    /* offsetof(struct my_config, field) */
    const char *def;  /* default as text; NULL = no default */
    int64_t min, max; /* bounds for UC_CFG_INT */
    bool required;    /* missing and no default stops start-up */
    const char *help;
};

/* Fill `target` from argv, the environment and the file; for each option
 * the first source that has it wins: flag, UC_<SERVICE>_<NAME> (set counts,
 * even when empty), the JSON file, the default. `service` is the name used
 * for env vars ("fleet-scheduler" -> UC_FLEET_SCHEDULER_*) and in --help.
 * `opts` ends with {NULL}; `argv` and `opts` are borrowed for the call.
 *
 * Flags are "--name value" or "--name=value"; booleans take "--name" or
 * "--name=value" only; a repeated flag's last value wins; anything not
 * starting with "--" is refused. The file comes from "--config FILE", else
 * UC_<SERVICE>_CONFIG; it holds one JSON object (at most 1 MiB) whose keys
 * are option names with - as _ and whose values have the option's JSON
 * type (string, integer, true/false; null means unset). "--help" or "-h"
 * anywhere prints uc_config_usage to stdout and stops. "--check-config"
 * (no value) runs every check below, then prints "config ok" to stdout and
 * stops without writing `target`: a daemon's --check-config thus checks
 * its option table (types, bounds, required options, file keys), not what
 * it does with the values later (reading secrets, parsing peer lists).
 *
 * On success every option is written to `target` (strings as new
 * allocations freed by uc_config_free; an unset option without default is
 * NULL, 0 or false). On any failure `target` is not touched at all.
 * Errors: UC_EHELP (help or "config ok" printed, `target` untouched: exit
 * 0); UC_EINVAL with one line in err naming the option and the problem,
 * e.g. "--listen-port: must be an integer from 1 to 65535 (got 'abc')",
 * "unknown option '--prot' (see --help)", "--check-config: takes no
 * value", "--admin-token is required (or set UC_IAM_ADMIN_TOKEN, or
 * \"admin_token\" in the config file)", "<file>: unknown key 'x'" (exit 2);
 * UC_ENOENT, UC_EIO, UC_E2BIG for a config file that cannot be read (as
 * uc_config_read_file); UC_ENOMEM. */
UC_MUSTCHECK int uc_config_load(void *target, const struct uc_config_opt *opts, const char *service,
                                int argc, char **argv, char err[UC_ERR_LEN]);

/* Free the strings uc_config_load stored in `target` and set them to NULL
 * (so a second call is harmless). */
void uc_config_free(void *target, const struct uc_config_opt *opts);

/* Print the generated help for `opts` to `out` (a FILE *): per option its
 * flag, environment variable, default (or "required"), help text and
 * bounds, then --config and --help. */
void uc_config_usage(const struct uc_config_opt *opts, const char *service, void *out);

/* Read a whole small file (secrets, keys) into a new NUL-terminated buffer
 * freed with uc_free; *len gets its size. Refuses files over `max` bytes
 * (also pipes and devices that keep going). On failure *out and *len are
 * untouched and a partly read buffer is wiped before it is freed.
 * Errors: UC_ENOENT ("cannot read 'x': no such file"), UC_EIO (permission,
 * a directory, read error), UC_E2BIG, UC_ENOMEM. */
UC_MUSTCHECK int uc_config_read_file(const char *path, size_t max, char **out, size_t *len,
                                     char err[UC_ERR_LEN]);

#endif /* UC_CONFIG_H */
