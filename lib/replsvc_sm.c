/* replsvc_sm.c - the state machine replsvc hands to uc_repl: it reads the tag
 * in front of every command, passes service commands on, and applies its own
 * records (member URLs, the restore from a backup) to a small table that
 * travels in every snapshot ahead of the service's. Runs on the loop thread,
 * except the encoding of a split snapshot (a pool thread, on copies). */
#include <stdio.h>
#include <string.h>

#include "replsvc_internal.h"
#include "uc/alloc.h"
#include "uc/log.h"

int replsvc_sm_init(struct replsvc_sm *w, const struct uc_repl_sm *svc)
{
    memset(w, 0, sizeof(*w));
    w->svc = *svc;
    if (pthread_mutex_init(&w->mu, NULL) != 0)
        return UC_ENOMEM;
    return 0;
}

void replsvc_sm_deinit(struct replsvc_sm *w) { pthread_mutex_destroy(&w->mu); }

/* ---- commands ------------------------------------------------------------- */

static int cmd_new(uint8_t tag, size_t len, uint8_t **out, size_t *olen)
{
    if (len >= SIZE_MAX - 1)
        return UC_E2BIG;
    uint8_t *b = uc_malloc(len + 1);
    if (!b)
        return UC_ENOMEM;
    b[0] = tag;
    *out = b;
    *olen = len + 1;
    return 0;
}

int replsvc_cmd_svc(const void *cmd, size_t len, uint8_t **out, size_t *olen)
{
    int rc = cmd_new(REPLSVC_TAG_SVC, len, out, olen);
    if (rc == 0 && len)
        memcpy(*out + 1, cmd, len);
    return rc;
}

int replsvc_cmd_url(uint64_t id, const char *url, uint8_t **out, size_t *olen)
{
    size_t n = strlen(url);
    if (n >= UC_REPLSVC_URL_LEN)
        return UC_EINVAL;
    int rc = cmd_new(REPLSVC_TAG_URL, 8 + n, out, olen);
    if (rc == 0) {
        replsvc_put64(*out + 1, id);
        memcpy(*out + 9, url, n);
    }
    return rc;
}

int replsvc_cmd_restore(const uint8_t sha[UC_SHA256_LEN], const void *payload, size_t len,
                        uint8_t **out, size_t *olen)
{
    if (len > SIZE_MAX - UC_SHA256_LEN - 2)
        return UC_E2BIG;
    int rc = cmd_new(REPLSVC_TAG_RESTORE, UC_SHA256_LEN + len, out, olen);
    if (rc == 0) {
        memcpy(*out + 1, sha, UC_SHA256_LEN);
        if (len)
            memcpy(*out + 1 + UC_SHA256_LEN, payload, len);
    }
    return rc;
}

/* ---- the URL table ----------------------------------------------------------- */

/* Caller holds mu. Set (or with "" forget) member id's URL at `index`. */
static void url_set(struct replsvc_state *st, uint64_t id, const char *url, uint64_t index)
{
    size_t i = 0, oldest = 0;
    while (i < st->nurls && st->urls[i].id != id)
        i++;
    if (!url[0]) {
        if (i < st->nurls)
            st->urls[i] = st->urls[--st->nurls];
        return;
    }
    if (i == st->nurls && st->nurls == REPLSVC_MAX_URLS) {
        for (size_t j = 1; j < st->nurls; j++)
            if (st->urls[j].index < st->urls[oldest].index)
                oldest = j;
        i = oldest;
    } else if (i == st->nurls) {
        st->nurls++;
    }
    st->urls[i].id = id;
    st->urls[i].index = index;
    snprintf(st->urls[i].url, sizeof(st->urls[i].url), "%s", url);
}

bool replsvc_sm_url(struct replsvc_sm *w, uint64_t id, char out[UC_REPLSVC_URL_LEN])
{
    bool found = false;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->st.nurls && !found; i++) {
        if (w->st.urls[i].id == id) {
            memcpy(out, w->st.urls[i].url, UC_REPLSVC_URL_LEN);
            found = true;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return found;
}

void replsvc_sm_state(struct replsvc_sm *w, struct replsvc_state *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    pthread_mutex_unlock(&w->mu);
}

uint64_t replsvc_sm_applied(struct replsvc_sm *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t a = w->applied;
    pthread_mutex_unlock(&w->mu);
    return a;
}

/* ---- apply ------------------------------------------------------------------- */

static int apply_svc(struct replsvc_sm *w, const uint8_t *p, size_t len, uint64_t index,
                     void **result)
{
    int rc = w->svc.apply(w->svc.ctx, p, len, index, result);
    if (rc == 0) {
        pthread_mutex_lock(&w->mu);
        w->st.svc_data = true;
        pthread_mutex_unlock(&w->mu);
    }
    return rc;
}

static void apply_url(struct replsvc_sm *w, const uint8_t *p, size_t len, uint64_t index)
{
    char url[UC_REPLSVC_URL_LEN];
    if (len < 8 || len - 8 >= sizeof(url)) {
        uc_warn("replsvc: URL record at index %llu is malformed; skipped",
                (unsigned long long)index);
        return;
    }
    memcpy(url, p + 8, len - 8);
    url[len - 8] = '\0';
    pthread_mutex_lock(&w->mu);
    url_set(&w->st, replsvc_get64(p), url, index);
    pthread_mutex_unlock(&w->mu);
}

/* Load a backup into an empty store; refuse (on every member alike) once
 * the store holds anything. A payload the service cannot read is refused
 * too rather than wedging the log: the same bytes fail everywhere. */
static int apply_restore(struct replsvc_sm *w, const uint8_t *p, size_t len, uint64_t index)
{
    if (len < UC_SHA256_LEN) {
        uc_warn("replsvc: restore record at index %llu is malformed; skipped",
                (unsigned long long)index);
        return 0;
    }
    pthread_mutex_lock(&w->mu);
    bool again = w->st.restored_index == index; /* a group undone after it, applied anew */
    bool refuse = !again && w->st.svc_data;
    if (refuse)
        w->st.refused_index = index;
    pthread_mutex_unlock(&w->mu);
    if (again)
        return 0;
    if (refuse) {
        uc_error("restore record at index %llu refused: the cluster holds data already",
                 (unsigned long long)index);
        return 0;
    }
    /* A restore replaces the whole state: the group before it commits first,
     * and the entries after it start a new one. */
    int rc = w->svc.group_end ? w->svc.group_end(w->svc.ctx, true) : 0;
    if (rc < 0)
        return rc;
    rc = w->svc.restore(w->svc.ctx, p + UC_SHA256_LEN, len - UC_SHA256_LEN, index);
    int brc = w->svc.group_begin ? w->svc.group_begin(w->svc.ctx) : 0;
    if (rc == UC_ENOMEM)
        return rc; /* local: raft retries the entry */
    pthread_mutex_lock(&w->mu);
    if (rc < 0) {
        w->st.refused_index = index;
    } else {
        w->st.svc_data = true;
        w->st.restored_index = index;
        memcpy(w->st.restored_sha, p, UC_SHA256_LEN);
    }
    pthread_mutex_unlock(&w->mu);
    if (rc < 0)
        uc_error("restore record at index %llu refused: the service cannot load it: %s",
                 (unsigned long long)index, uc_strerror(rc));
    else
        uc_info("restored the backup at index %llu", (unsigned long long)index);
    return brc;
}

static int sm_apply(void *ctx, const void *cmd, size_t len, uint64_t index, void **result)
{
    struct replsvc_sm *w = ctx;
    const uint8_t *p = cmd;
    int rc = 0;
    if (len == 0)
        uc_warn("replsvc: empty command at index %llu; skipped", (unsigned long long)index);
    else if (p[0] == REPLSVC_TAG_SVC)
        rc = apply_svc(w, p + 1, len - 1, index, result);
    else if (p[0] == REPLSVC_TAG_URL)
        apply_url(w, p + 1, len - 1, index);
    else if (p[0] == REPLSVC_TAG_RESTORE)
        rc = apply_restore(w, p + 1, len - 1, index);
    else
        uc_warn("replsvc: unknown record %u at index %llu; skipped", p[0],
                (unsigned long long)index);
    if (rc == 0) {
        pthread_mutex_lock(&w->mu);
        w->applied = index;
        pthread_mutex_unlock(&w->mu);
    }
    return rc;
}

/* ---- snapshot and restore ------------------------------------------------------ */

/* The own part: flags, restored index and sha, refused index, URL count,
 * then per URL: id, index, length, bytes. */
static size_t state_size(const struct replsvc_state *st)
{
    size_t n = 1 + 8 + UC_SHA256_LEN + 8 + 8;
    for (size_t i = 0; i < st->nurls; i++)
        n += 24 + strlen(st->urls[i].url);
    return n;
}

static void state_encode(const struct replsvc_state *st, uint8_t *p)
{
    *p++ = st->svc_data ? 1 : 0;
    replsvc_put64(p, st->restored_index);
    memcpy(p + 8, st->restored_sha, UC_SHA256_LEN);
    p += 8 + UC_SHA256_LEN;
    replsvc_put64(p, st->refused_index);
    replsvc_put64(p + 8, st->nurls);
    p += 16;
    for (size_t i = 0; i < st->nurls; i++) {
        size_t n = strlen(st->urls[i].url);
        replsvc_put64(p, st->urls[i].id);
        replsvc_put64(p + 8, st->urls[i].index);
        replsvc_put64(p + 16, n);
        memcpy(p + 24, st->urls[i].url, n);
        p += 24 + n;
    }
}

static int state_decode(struct replsvc_state *st, const uint8_t *p, size_t len)
{
    const uint8_t *end = p + len;
    memset(st, 0, sizeof(*st));
    if (len < 1 + 8 + UC_SHA256_LEN + 16 || p[0] > 1)
        return UC_EINVAL;
    st->svc_data = p[0] == 1;
    st->restored_index = replsvc_get64(p + 1);
    memcpy(st->restored_sha, p + 9, UC_SHA256_LEN);
    p += 9 + UC_SHA256_LEN;
    st->refused_index = replsvc_get64(p);
    uint64_t n = replsvc_get64(p + 8);
    p += 16;
    if (n > REPLSVC_MAX_URLS)
        return UC_EINVAL;
    for (st->nurls = 0; st->nurls < n; st->nurls++) {
        struct replsvc_url *u = &st->urls[st->nurls];
        if (end - p < 24)
            return UC_EINVAL;
        uint64_t ulen = replsvc_get64(p + 16);
        if (ulen >= sizeof(u->url) || (uint64_t)(end - p - 24) < ulen)
            return UC_EINVAL;
        u->id = replsvc_get64(p);
        u->index = replsvc_get64(p + 8);
        memcpy(u->url, p + 24, ulen);
        u->url[ulen] = '\0';
        p += 24 + ulen;
    }
    return p == end ? 0 : UC_EINVAL;
}

/* Our header and own part, state_size(st) + REPLSVC_SNAP_HDR bytes at p. */
static void frame_put(const struct replsvc_state *st, uint8_t *p)
{
    memcpy(p, REPLSVC_SNAP_MAGIC, 8);
    replsvc_put64(p + 8, state_size(st));
    state_encode(st, p + REPLSVC_SNAP_HDR);
}

/* Our frame in front of the service's `slen` bytes at `sbuf` (borrowed):
 * *buf is new. Errors: UC_ENOMEM. */
static int frame(const struct replsvc_state *st, const void *sbuf, size_t slen, void **buf,
                 size_t *len)
{
    size_t own = REPLSVC_SNAP_HDR + state_size(st);
    uint8_t *out = slen <= SIZE_MAX - own ? uc_malloc(own + slen) : NULL;
    if (!out)
        return UC_ENOMEM;
    frame_put(st, out);
    if (slen)
        memcpy(out + own, sbuf, slen);
    *buf = out;
    *len = own + slen;
    return 0;
}

static int sm_snapshot(void *ctx, void **buf, size_t *len)
{
    struct replsvc_sm *w = ctx;
    struct replsvc_state st;
    void *sbuf = NULL;
    size_t slen = 0;
    replsvc_sm_state(w, &st);
    int rc = w->svc.snapshot(w->svc.ctx, &sbuf, &slen);
    if (rc < 0)
        return rc;
    rc = frame(&st, sbuf, slen, buf, len);
    uc_free(sbuf);
    return rc;
}

/* ---- split snapshots (only when the service has them) ------------------------------- */

/* Our table is small: the view holds a copy of it beside the service's view. */
struct split_view {
    struct replsvc_state st;
    void *svc_view;
};

static int sm_snapshot_begin(void *ctx, void **view)
{
    struct replsvc_sm *w = ctx;
    struct split_view *v = uc_malloc(sizeof(*v));
    if (!v)
        return UC_ENOMEM;
    replsvc_sm_state(w, &v->st);
    int rc = w->svc.snapshot_begin(w->svc.ctx, &v->svc_view);
    if (rc < 0) {
        uc_free(v);
        return rc;
    }
    *view = v;
    return 0;
}

/* The service leaves room for ours and the module's frames in front of
 * its bytes, so the snapshot is never copied. */
static int sm_snapshot_encode(void *ctx, void *view, size_t room, void **buf, size_t *len)
{
    struct replsvc_sm *w = ctx;
    struct split_view *v = view;
    size_t own = REPLSVC_SNAP_HDR + state_size(&v->st);
    if (room > SIZE_MAX - own)
        return UC_ENOMEM;
    void *out = NULL;
    size_t n = 0;
    int rc = w->svc.snapshot_encode(w->svc.ctx, v->svc_view, room + own, &out, &n);
    if (rc < 0)
        return rc;
    if (n < room + own) { /* a broken contract */
        uc_free(out);
        return UC_EINTERNAL;
    }
    frame_put(&v->st, (uint8_t *)out + room);
    *buf = out;
    *len = n;
    return 0;
}

static void sm_snapshot_end(void *ctx, void *view)
{
    struct replsvc_sm *w = ctx;
    struct split_view *v = view;
    w->svc.snapshot_end(w->svc.ctx, v->svc_view);
    uc_free(v);
}

static int sm_restore(void *ctx, const void *buf, size_t len, uint64_t index)
{
    struct replsvc_sm *w = ctx;
    const uint8_t *p = buf;
    struct replsvc_state st;
    if (len < REPLSVC_SNAP_HDR || memcmp(p, REPLSVC_SNAP_MAGIC, 8) != 0 ||
        replsvc_get64(p + 8) > len - REPLSVC_SNAP_HDR ||
        state_decode(&st, p + REPLSVC_SNAP_HDR, (size_t)replsvc_get64(p + 8)) < 0) {
        uc_error("replsvc: the snapshot at index %llu is not one of ours",
                 (unsigned long long)index);
        return UC_EINVAL;
    }
    size_t own = REPLSVC_SNAP_HDR + (size_t)replsvc_get64(p + 8);
    int rc = w->svc.restore(w->svc.ctx, p + own, len - own, index);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&w->mu);
    w->st = st;
    w->applied = index;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static int sm_group_begin(void *ctx)
{
    struct replsvc_sm *w = ctx;
    return w->svc.group_begin(w->svc.ctx);
}

static int sm_group_end(void *ctx, bool commit)
{
    struct replsvc_sm *w = ctx;
    return w->svc.group_end(w->svc.ctx, commit);
}

static void sm_free_result(void *ctx, void *result)
{
    struct replsvc_sm *w = ctx;
    /* Only service commands produce results. */
    if (w->svc.free_result)
        w->svc.free_result(w->svc.ctx, result);
}

struct uc_repl_sm replsvc_sm_wrap(struct replsvc_sm *w)
{
    struct uc_repl_sm sm = {
        .apply = sm_apply,
        .snapshot = sm_snapshot,
        .restore = sm_restore,
        .free_result = sm_free_result,
        .ctx = w,
    };
    if (w->svc.snapshot_begin && w->svc.snapshot_encode && w->svc.snapshot_end) {
        sm.snapshot_begin = sm_snapshot_begin;
        sm.snapshot_encode = sm_snapshot_encode;
        sm.snapshot_end = sm_snapshot_end;
    }
    if (w->svc.group_begin && w->svc.group_end) {
        sm.group_begin = sm_group_begin;
        sm.group_end = sm_group_end;
    }
    return sm;
}
