/* api_kv.c - the namespaced key-value routes under /api/v1/kv/{ns}: keys
 * travel base64url in the path and JSON and are handed to the database as
 * such (it decodes and bounds them, the same way in check and apply).
 * Writes are forwarded to the leader and proposed; reads are linearizable
 * unless ?consistency=serializable. A namespace restricted to a project
 * answers 404 to everyone outside it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "uc/alloc.h"
#include "uc/crypto.h"
#include "uc/json.h"

static const struct uc_json_field put_fields[] = {
    {"value", UC_JSON_STRING, true, 0, 0, NULL},
    {"expect_revision", UC_JSON_INT, false, 0, INT64_MAX, NULL},
    {"expect_version", UC_JSON_INT, false, 0, INT64_MAX, NULL},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};

static const struct uc_json_field txn_fields[] = {
    {"ops", UC_JSON_ARRAY, true, 1, FLAREDB_DB_MAX_TXN_OPS, NULL},
    {NULL, UC_JSON_ANY, false, 0, 0, NULL},
};

/* The namespace of the path, once the caller may reach it. */
static int reach_ns(struct flaredb_server *s, struct uc_http_req *req, const char **ns)
{
    *ns = uc_http_param(req, "ns");
    return flaredb_server_reach(s, &req->auth, "namespace", *ns, req->err);
}

/* Query parameter `name` as an integer >= 0 into the command, if given. */
static int query_expect(struct uc_http_req *req, json_t *cmd, const char *name)
{
    const char *v = uc_http_query(req, name);
    char *end;
    if (!v)
        return 0;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!v[0] || *end || n < 0 || errno == ERANGE)
        return uc_err_set(req->err, UC_EINVAL, "%s must be an integer >= 0", name);
    if (json_object_set_new(cmd, name, json_integer(n)) < 0)
        return uc_err_set(req->err, UC_ENOMEM, "out of memory");
    return 0;
}

/* Common start of a read: the consistency asked for (`consistency`, NULL
 * when absent), forwarding, the namespace. Returns 1 when the request went
 * to the leader, 0 to go on, or an error. */
static int read_start(struct flaredb_server *s, struct uc_http_req *req, const char *consistency,
                      bool *lin, const char **ns)
{
    int rc = flaredb_api_consistency(req, consistency, lin);
    if (rc < 0)
        return rc;
    if (*lin && uc_replsvc_forward(s->rs, req))
        return 1;
    return reach_ns(s, req, ns);
}

/* ---- reads ---------------------------------------------------------------------- */

/* `arg` is {"ns", "key" (base64url)}. */
static void do_get(struct flaredb_server *s, struct uc_http_req *req, void *varg, uint64_t index)
{
    const json_t *arg = varg;
    const char *key = uc_json_str(arg, "key", "");
    uint8_t *k = NULL;
    size_t klen = 0;
    json_t *out = NULL;
    (void)index; /* a record carries its own revision */
    int rc = uc_b64url_decode(key, strlen(key), &k, &klen);
    if (rc == UC_EINVAL)
        uc_err_set(req->err, rc,
                   "the key in the path must be base64url (RFC 4648 section 5, no "
                   "padding)");
    else if (rc < 0)
        uc_err_set(req->err, rc, "out of memory");
    else
        rc = flaredb_db_kv_get(s->db, uc_json_str(arg, "ns", ""), k, klen, &out, req->err);
    uc_free(k);
    if (rc < 0)
        uc_http_error(req, rc, "%s", req->err);
    else
        flaredb_api_reply(req, 200, out);
}

int flaredb_api_h_kv_get(struct uc_http_req *req, void *ctx)
{
    struct flaredb_server *s = ctx;
    const char *ns;
    bool lin;
    int rc = read_start(s, req, uc_http_query(req, "consistency"), &lin, &ns);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    atomic_fetch_add(&s->kv_ops[FLAREDB_KV_GET], 1);
    json_t *arg = json_pack("{ssss}", "ns", ns, "key", uc_http_param(req, "key"));
    return flaredb_server_read(s, req, do_get, arg, flaredb_server_release_json, lin);
}

/* `arg` is {"ns", "req": the scan request}. */
static void do_scan(struct flaredb_server *s, struct uc_http_req *req, void *varg, uint64_t index)
{
    const json_t *arg = varg;
    json_t *out = NULL;
    (void)index; /* the answer carries the namespace's revision */
    int rc = flaredb_db_kv_scan(s->db, uc_json_str(arg, "ns", ""), json_object_get(arg, "req"),
                                &out, req->err);
    if (rc < 0)
        uc_http_error(req, rc, "%s", req->err);
    else
        flaredb_api_reply(req, 200, out);
}

int flaredb_api_h_kv_scan(struct uc_http_req *req, void *ctx)
{
    struct flaredb_server *s = ctx;
    const char *ns;
    bool lin;
    const json_t *c = json_object_get(req->body, "consistency");
    if (c && !json_is_string(c))
        return uc_err_set(req->err, UC_EINVAL, "field 'consistency' must be a string");
    int rc =
        read_start(s, req, c ? json_string_value(c) : uc_http_query(req, "consistency"), &lin, &ns);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    json_t *scan = json_deep_copy(req->body);
    if (scan)
        json_object_del(scan, "consistency");
    atomic_fetch_add(&s->kv_ops[FLAREDB_KV_SCAN], 1);
    return flaredb_server_read(s, req, do_scan, json_pack("{ssso}", "ns", ns, "req", scan),
                               flaredb_server_release_json, lin);
}

/* ---- writes --------------------------------------------------------------------------- */

/* Forward to the leader, or check the namespace. 1: forwarded. */
static int write_start(struct flaredb_server *s, struct uc_http_req *req, const char **ns)
{
    if (uc_replsvc_forward(s->rs, req))
        return 1;
    return reach_ns(s, req, ns);
}

int flaredb_api_h_kv_put(struct uc_http_req *req, void *ctx)
{
    struct flaredb_server *s = ctx;
    const char *ns;
    int rc = uc_json_validate(req->body, put_fields, req->err);
    if (rc == 0)
        rc = write_start(s, req, &ns);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    json_t *cmd = json_deep_copy(req->body);
    if (!cmd || json_object_set_new(cmd, "op", json_string("kv_put")) < 0 ||
        json_object_set_new(cmd, "ns", json_string(ns)) < 0 ||
        json_object_set_new(cmd, "key", json_string(uc_http_param(req, "key"))) < 0) {
        json_decref(cmd);
        return uc_err_set(req->err, UC_ENOMEM, "out of memory");
    }
    atomic_fetch_add(&s->kv_ops[FLAREDB_KV_PUT], 1);
    return flaredb_api_submit(s, req, cmd);
}

int flaredb_api_h_kv_delete(struct uc_http_req *req, void *ctx)
{
    struct flaredb_server *s = ctx;
    const char *ns;
    int rc = write_start(s, req, &ns);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    json_t *cmd =
        json_pack("{ssssss}", "op", "kv_delete", "ns", ns, "key", uc_http_param(req, "key"));
    if (!cmd)
        return uc_err_set(req->err, UC_ENOMEM, "out of memory");
    if ((rc = query_expect(req, cmd, "expect_revision")) < 0 ||
        (rc = query_expect(req, cmd, "expect_version")) < 0) {
        json_decref(cmd);
        return rc;
    }
    atomic_fetch_add(&s->kv_ops[FLAREDB_KV_DELETE], 1);
    return flaredb_api_submit(s, req, cmd);
}

int flaredb_api_h_kv_txn(struct uc_http_req *req, void *ctx)
{
    struct flaredb_server *s = ctx;
    const char *ns;
    int rc = uc_json_validate(req->body, txn_fields, req->err);
    if (rc == 0)
        rc = write_start(s, req, &ns);
    if (rc != 0)
        return rc > 0 ? 0 : rc;
    json_t *cmd =
        json_pack("{sssssO}", "op", "kv_txn", "ns", ns, "ops", json_object_get(req->body, "ops"));
    atomic_fetch_add(&s->kv_ops[FLAREDB_KV_TXN], 1);
    return flaredb_api_submit(s, req, cmd);
}
