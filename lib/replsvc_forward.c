/* replsvc_forward.c - a follower hands writes, linearizable reads and cluster
 * changes to the leader at the API URL the leader published through the log
 * (one hop at most: the hop carries forwarded=1), and failed raft requests
 * are answered with a 503 that names the leader. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "replsvc_internal.h"
#include "uc/alloc.h"
#include "uc/httpc.h"
#include "uc/log.h"

#define FORWARD_SLACK_MS 1000 /* the leader answers within its deadline; then a little */

/* Append `v` percent-encoded (RFC 3986 unreserved characters kept). */
static char *encode_into(char *p, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~", ch)) {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    return p;
}

/* base + path + "?forwarded=1" + the forward_query parameters present.
 * A new string freed with uc_free, or NULL when out of memory. */
static char *leader_url(const struct uc_replsvc *rs, struct uc_http_req *req, const char *base)
{
    size_t n = strlen(base) + strlen(req->path) + sizeof("?forwarded=1");
    for (const char *const *q = rs->forward_query; q && *q; q++) {
        const char *v = uc_http_query(req, *q);
        if (v)
            n += strlen(*q) + 2 + 3 * strlen(v);
    }
    char *url = uc_malloc(n), *p = url;
    if (!url)
        return NULL;
    p += sprintf(p, "%s%s?forwarded=1", base, req->path);
    for (const char *const *q = rs->forward_query; q && *q; q++) {
        const char *v = uc_http_query(req, *q);
        if (v) {
            p += sprintf(p, "&%s=", *q);
            p = encode_into(p, v);
        }
    }
    *p = '\0';
    return url;
}

/* Send the request to the leader and relay its answer. */
static void forward_to(struct uc_replsvc *rs, struct uc_http_req *req, uint64_t leader,
                       const char *base, int64_t timeout_ms)
{
    char hdr[24];
    struct uc_httpc_resp resp = {0};
    const char *auth = uc_http_header(req, "Authorization");
    /* The leader answers under the follower's request id, so the relayed
     * body, the X-Request-Id header and both nodes' logs agree. */
    struct uc_httpc_opts o = {.bearer = auth && !strncmp(auth, "Bearer ", 7) ? auth + 7 : NULL,
                              .timeout_ms = (int)timeout_ms,
                              .content_type = "application/json",
                              .request_id = req->request_id};
    char *url = leader_url(rs, req, base);
    int rc = url ? uc_httpc_raw(req->method, url, req->raw_len ? req->raw_body : NULL, req->raw_len,
                                &o, &resp, req->err)
                 : UC_ENOMEM;
    uc_free(url);
    if (rc < 0) {
        uc_http_error(req, rc == UC_ETIMEDOUT || rc == UC_ENOMEM ? rc : UC_EUNAVAIL,
                      "forwarding to the leader (%" PRIu64 " at %s) failed: %s", leader, base,
                      req->err);
        return;
    }
    snprintf(hdr, sizeof(hdr), "%" PRIu64, leader);
    /* The answer is complete without it; the header only tells who served it. */
    (void)uc_http_add_header(req, rs->leader_hdr, hdr);
    const char *ctype = !resp.len   ? NULL
                        : resp.json ? "application/json"
                                    : "application/octet-stream";
    if (uc_http_reply_data(req, (int)resp.status, ctype, resp.body, resp.len) < 0)
        uc_warn("cannot relay the leader's answer");
    uc_httpc_resp_clear(&resp);
}

/* uc_replsvc_forward with the leader given `timeout_ms` to answer. */
bool replsvc_forward_within(struct uc_replsvc *rs, struct uc_http_req *req, int64_t timeout_ms)
{
    uint64_t leader;
    char base[UC_REPLSVC_URL_LEN];
    if (uc_http_query(req, "forwarded") || uc_repl_leader(rs->repl, &leader, NULL) < 0 ||
        leader == rs->id || !replsvc_sm_url(&rs->sm, leader, base))
        return false;
    atomic_fetch_add(&rs->forwarded, 1);
    forward_to(rs, req, leader, base, timeout_ms);
    return true;
}

bool uc_replsvc_forward(struct uc_replsvc *rs, struct uc_http_req *req)
{
    return replsvc_forward_within(rs, req, rs->timeout_ms + FORWARD_SLACK_MS);
}

void uc_replsvc_reply_error(struct uc_replsvc *rs, struct uc_http_req *req,
                            const struct uc_repl_done *d)
{
    uint64_t id;
    char hdr[24];
    if (d->status == UC_EUNAVAIL && uc_repl_leader(rs->repl, &id, NULL) == 0) {
        snprintf(hdr, sizeof(hdr), "%" PRIu64, id);
        /* The message names the leader too; the header only saves parsing. */
        (void)uc_http_add_header(req, rs->leader_hdr, hdr);
    }
    uc_http_error(req, d->status, "%s%s", d->msg,
                  d->unknown ? " (the write may still be applied)" : "");
}
