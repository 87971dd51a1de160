/* replsvc_internal.h - what the replsvc files share: the state-machine
 * wrapper (replsvc_sm.c: tags, the URL table, snapshot framing, the restore
 * record; testable without a cluster) and struct uc_replsvc itself.
 * Internal to libcommon and its tests; services use uc/replsvc.h only. */
#ifndef UC_REPLSVC_INTERNAL_H
#define UC_REPLSVC_INTERNAL_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "uc/replsvc.h"

/* The first byte of every log command. */
enum replsvc_tag {
    REPLSVC_TAG_SVC = 1,     /* the service's command follows */
    REPLSVC_TAG_URL = 2,     /* id (u64) then a member's API URL ("" forgets it) */
    REPLSVC_TAG_RESTORE = 3, /* SHA-256 of the payload, then a service snapshot */
};

/* Members whose URL the table keeps; when full, the entry set longest ago
 * goes (every member does the same, so the tables stay equal). */
#define REPLSVC_MAX_URLS 32
/* A wrapper snapshot: magic, own-part length (u64), own part, service part. */
#define REPLSVC_SNAP_MAGIC "ucrsvc01"
#define REPLSVC_SNAP_HDR 16

struct replsvc_url {
    uint64_t id;
    uint64_t index; /* log index that set it */
    char url[UC_REPLSVC_URL_LEN];
};

/* The replicated part of the module, the same on every member. */
struct replsvc_state {
    struct replsvc_url urls[REPLSVC_MAX_URLS];
    size_t nurls;
    bool svc_data;           /* a service command or a restore was applied */
    uint64_t restored_index; /* the restore record that loaded a backup, 0: none */
    uint8_t restored_sha[UC_SHA256_LEN];
    uint64_t refused_index; /* the last restore record refused, 0: none */
};

/* The wrapper around the service's state machine. Its functions run on the
 * raft loop thread; readers on other threads copy under `mu`. */
struct replsvc_sm {
    struct uc_repl_sm svc;
    pthread_mutex_t mu;
    struct replsvc_state st; /* guarded by mu */
    uint64_t applied;        /* last entry applied or restored; guarded by mu */
};

/* Set up `w` around `svc` (copied). Errors: UC_ENOMEM (no mutex). */
UC_MUSTCHECK int replsvc_sm_init(struct replsvc_sm *w, const struct uc_repl_sm *svc);
void replsvc_sm_deinit(struct replsvc_sm *w);
/* The state machine to hand to uc_repl (ctx = w). */
struct uc_repl_sm replsvc_sm_wrap(struct replsvc_sm *w);

/* Encode a command as the wrapper expects it: *out is a new buffer of *olen
 * bytes freed with uc_free. Errors: UC_EINVAL (url too long), UC_ENOMEM. */
UC_MUSTCHECK int replsvc_cmd_svc(const void *cmd, size_t len, uint8_t **out, size_t *olen);
UC_MUSTCHECK int replsvc_cmd_url(uint64_t id, const char *url, uint8_t **out, size_t *olen);
UC_MUSTCHECK int replsvc_cmd_restore(const uint8_t sha[UC_SHA256_LEN], const void *payload,
                                     size_t len, uint8_t **out, size_t *olen);

/* Copies under mu: member `id`'s URL (false when unknown), the whole state,
 * and the last applied index. */
bool replsvc_sm_url(struct replsvc_sm *w, uint64_t id, char out[UC_REPLSVC_URL_LEN]);
void replsvc_sm_state(struct replsvc_sm *w, struct replsvc_state *out);
uint64_t replsvc_sm_applied(struct replsvc_sm *w);

/* Little-endian integers in the module's binary formats. */
static inline void replsvc_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t replsvc_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Where the --restore-from member stands (its own view, not replicated). */
enum replsvc_restore {
    RESTORE_NONE,     /* no --restore-from */
    RESTORE_PENDING,  /* waiting to lead */
    RESTORE_PROPOSED, /* the record is in flight */
    RESTORE_DONE,
    RESTORE_REFUSED, /* the cluster held data already */
};

struct uc_replsvc {
    /* Set at create, then read-only. */
    char service[UC_REPLSVC_SERVICE_LEN];
    char leader_hdr[UC_REPLSVC_SERVICE_LEN + 16]; /* "X-Chainfire-Leader" */
    uint64_t id;
    char url[UC_REPLSVC_URL_LEN]; /* this member's advertised API URL */
    char listen[64];
    uint16_t port;
    unsigned threads;
    bool access_log;
    int64_t timeout_ms;
    size_t max_cmd;       /* of a wrapped service command */
    size_t segment_bytes; /* uc_replsvc_config's */
    const char *const *forward_query;
    int (*status_hook)(void *ctx, json_t *out);
    void (*metrics_hook)(void *ctx, FILE *out);
    struct replsvc_sm sm;
    bool sm_ready;
    bool httpc_ready; /* holds one uc_httpc_global_init */
    struct uc_repl *repl;
    struct uc_auth_verifier *verifier;

    /* The publisher thread (replsvc.c). */
    pthread_t thread;
    bool thread_running;
    atomic_bool stopping;
    atomic_bool url_busy; /* a URL record is in flight */
    atomic_ulong forwarded;

    /* The restore (replsvc.c), under restore_mu. */
    pthread_mutex_t restore_mu;
    bool restore_mu_ready;
    enum replsvc_restore restore;
    char restore_msg[UC_ERR_LEN];
    uint8_t *backup; /* the --restore-from file, freed once settled */
    size_t backup_len;
    struct uc_replsvc_backup_info backup_info;
};

/* The module behind a handler's ctx (see uc/replsvc.h). */
static inline struct uc_replsvc *replsvc_of(void *ctx) { return *(struct uc_replsvc **)ctx; }

/* uc_replsvc_forward giving the leader `timeout_ms` to answer
 * (replsvc_forward.c). */
bool replsvc_forward_within(struct uc_replsvc *rs, struct uc_http_req *req, int64_t timeout_ms);

/* The restore as JSON for the status ("state", "message", "index"); NULL
 * when out of memory (replsvc.c). */
json_t *replsvc_restore_json(struct uc_replsvc *rs);

#endif /* UC_REPLSVC_INTERNAL_H */
