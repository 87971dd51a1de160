/* fuzz_config_json.c - uc_config_load reading a fuzzed JSON config file
 * (a memfd named by --config /proc/self/fd/N) against a daemon-like option
 * table, plus uc_config_read_file with a small size limit. */
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "uc/config.h"

struct conf {
    char *listen_addr, *data_dir, *admin_token;
    int64_t listen_port, workers, offset;
    bool access_log, tls;
};

#define O(f) offsetof(struct conf, f)
static const struct uc_config_opt opts[] = {
    {"listen-addr", UC_CFG_STRING, O(listen_addr), "127.0.0.1", 0, 0, false, "address"},
    {"listen-port", UC_CFG_INT, O(listen_port), "7100", 1, 65535, false, "port"},
    {"data-dir", UC_CFG_STRING, O(data_dir), NULL, 0, 0, true, "state directory"},
    {"admin-token", UC_CFG_STRING, O(admin_token), NULL, 0, 0, false, "bootstrap token"},
    {"workers", UC_CFG_INT, O(workers), "0", 0, 256, false, "threads"},
    {"offset", UC_CFG_INT, O(offset), NULL, 0, 0, false, "unbounded integer"},
    {"access-log", UC_CFG_BOOL, O(access_log), "false", 0, 0, false, "log requests"},
    {"tls", UC_CFG_BOOL, O(tls), NULL, 0, 0, false, "serve TLS"},
    {0},
};

static int memfd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memfd = memfd_create("fuzz-config", 0);
    fuzz_check(memfd >= 0, "memfd_create");
    int n = snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    fuzz_check(n > 0 && (size_t)n < sizeof(path), "path");
    return 0;
}

static void write_file(const uint8_t *data, size_t size)
{
    fuzz_check(ftruncate(memfd, 0) == 0, "ftruncate");
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(memfd, data + done, size - done, (off_t)done);
        fuzz_check(w > 0, "pwrite");
        done += (size_t)w;
    }
}

static void check_loaded(const struct conf *c)
{
    fuzz_check(c->data_dir != NULL, "required option missing after success");
    fuzz_check(c->listen_addr != NULL, "defaulted option missing");
    fuzz_check(c->listen_port >= 1 && c->listen_port <= 65535, "listen_port out of bounds");
    fuzz_check(c->workers >= 0 && c->workers <= 256, "workers out of bounds");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_file(data, size);
    char *argv[] = {"fuzz", "--config", path, NULL};
    struct conf c, before;
    memset(&c, 0x5a, sizeof(c));
    memcpy(&before, &c, sizeof(c));
    char err[UC_ERR_LEN] = "";
    int rc = uc_config_load(&c, opts, "fuzz-config", 3, argv, err);
    fuzz_check(rc == 0 || rc == UC_EINVAL || rc == UC_ENOMEM, "uc_config_load: unexpected code");
    fuzz_check(memchr(err, '\0', sizeof(err)) != NULL, "error message not terminated");
    if (rc == 0) {
        check_loaded(&c);
        uc_config_free(&c, opts);
    } else {
        fuzz_check(memcmp(&c, &before, sizeof(c)) == 0, "failed load touched the target");
    }
    char *text = NULL;
    size_t len = 0;
    rc = uc_config_read_file(path, 64, &text, &len, err);
    fuzz_check(rc == 0 || rc == UC_E2BIG, "uc_config_read_file: unexpected code");
    fuzz_check(rc != 0 || (len == size && len <= 64 && memcmp(text, data, len) == 0),
               "read_file returned other bytes");
    uc_free(text);
    return 0;
}
