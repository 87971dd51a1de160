/* test_replsvc.c - the replicated-service module without a cluster: its
 * option rows and --initial-cluster parsing, the advertised URL, the state
 * machine wrapper (tags, URL table, snapshot framing, restore record) over a
 * toy state machine, and backup headers. Memberships over real processes
 * are tested by tests/test_chainfire_*.py. */
#include <check.h>

#include "uc_check.h"
#include <stdlib.h>
#include <string.h>

#include "../replsvc_internal.h"
#include "uc/alloc.h"

/* --- a toy state machine: a list of applied commands ---------------------------- */

#define TOY_MAX 64

struct toy {
    char cmds[TOY_MAX][32];
    size_t n;
    int restores;
    uint64_t restore_index;
    int fail_apply;   /* apply answers this code (0: works) */
    int fail_restore; /* restore answers this code */
    int frees;
};

static struct toy toy;
static struct replsvc_sm w;
static struct uc_repl_sm sm;
static char err[UC_ERR_LEN];

static int toy_apply(void *ctx, const void *cmd, size_t len, uint64_t index, void **result)
{
    struct toy *t = ctx;
    (void)index;
    if (t->fail_apply)
        return t->fail_apply;
    ck_assert_uint_lt(len, sizeof(t->cmds[0]));
    ck_assert_uint_lt(t->n, TOY_MAX);
    memcpy(t->cmds[t->n], cmd, len);
    t->cmds[t->n][len] = '\0';
    t->n++;
    *result = uc_strdup("result");
    return 0;
}

/* The snapshot is the commands joined by '\n'. */
static int toy_snapshot(void *ctx, void **buf, size_t *len)
{
    struct toy *t = ctx;
    char *b = uc_calloc(1, TOY_MAX * 33 + 1);
    if (!b)
        return UC_ENOMEM;
    for (size_t i = 0; i < t->n; i++) {
        strcat(b, t->cmds[i]);
        strcat(b, "\n");
    }
    *buf = b;
    *len = strlen(b);
    return 0;
}

static int toy_restore(void *ctx, const void *buf, size_t len, uint64_t index)
{
    struct toy *t = ctx;
    if (t->fail_restore)
        return t->fail_restore;
    const char *p = buf, *end = p + len;
    t->n = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return UC_EINVAL;
        memcpy(t->cmds[t->n], p, (size_t)(nl - p));
        t->cmds[t->n++][nl - p] = '\0';
        p = nl + 1;
    }
    t->restores++;
    t->restore_index = index;
    return 0;
}

/* The split: a view is the command count at begin (commands are only
 * appended); encode writes what toy_snapshot would have, after `room`. */
static int toy_begin(void *ctx, void **view)
{
    struct toy *t = ctx;
    size_t *v = uc_malloc(sizeof(*v));
    if (!v)
        return UC_ENOMEM;
    *v = t->n;
    *view = v;
    return 0;
}

static int toy_encode(void *ctx, void *view, size_t room, void **buf, size_t *len)
{
    struct toy *t = ctx;
    size_t n = t->n;
    t->n = *(size_t *)view;
    void *whole = NULL;
    size_t wlen = 0;
    int rc = toy_snapshot(t, &whole, &wlen);
    t->n = n;
    char *b = rc == 0 ? uc_malloc(room + wlen) : NULL;
    if (b) {
        memcpy(b + room, whole, wlen);
        *buf = b;
        *len = room + wlen;
    }
    uc_free(whole);
    return rc < 0 ? rc : b ? 0 : UC_ENOMEM;
}

static void toy_end(void *ctx, void *view)
{
    (void)ctx;
    uc_free(view);
}

static void toy_free_result(void *ctx, void *result)
{
    struct toy *t = ctx;
    t->frees++;
    uc_free(result);
}

static void setup(void)
{
    memset(&toy, 0, sizeof(toy));
    err[0] = '\0';
    struct uc_repl_sm svc = {.apply = toy_apply,
                             .snapshot = toy_snapshot,
                             .restore = toy_restore,
                             .free_result = toy_free_result,
                             .ctx = &toy};
    ck_assert_int_eq(replsvc_sm_init(&w, &svc), 0);
    sm = replsvc_sm_wrap(&w);
}

static void teardown(void)
{
    uc_alloc_fail_after(-1);
    replsvc_sm_deinit(&w);
}

/* Apply `cmd` (owned, freed here) at `index`; the apply's code. */
static int apply_owned(uint8_t *cmd, size_t len, uint64_t index)
{
    void *result = NULL;
    int rc = sm.apply(sm.ctx, cmd, len, index, &result);
    if (result)
        sm.free_result(sm.ctx, result);
    uc_free(cmd);
    return rc;
}

static int apply_svc(const char *text, uint64_t index)
{
    uint8_t *cmd;
    size_t len;
    ck_assert_int_eq(replsvc_cmd_svc(text, strlen(text), &cmd, &len), 0);
    return apply_owned(cmd, len, index);
}

static void apply_url(uint64_t id, const char *url, uint64_t index)
{
    uint8_t *cmd;
    size_t len;
    ck_assert_int_eq(replsvc_cmd_url(id, url, &cmd, &len), 0);
    ck_assert_int_eq(apply_owned(cmd, len, index), 0);
}

static int apply_restore(const char *payload, uint64_t index)
{
    uint8_t *cmd, sha[UC_SHA256_LEN];
    size_t len;
    ck_assert_int_eq(uc_crypto_sha256(payload, strlen(payload), sha), 0);
    ck_assert_int_eq(replsvc_cmd_restore(sha, payload, strlen(payload), &cmd, &len), 0);
    return apply_owned(cmd, len, index);
}

static bool has_url(uint64_t id, const char *want)
{
    char url[UC_REPLSVC_URL_LEN];
    return replsvc_sm_url(&w, id, url) && !strcmp(url, want);
}

/* --- options ----------------------------------------------------------------------- */

struct svc_config {
    int64_t before;
    struct uc_replsvc_opts repl;
    char *extra;
};

static const struct uc_config_opt rows[] = {
    UC_REPLSVC_CONFIG_OPTS(struct svc_config, repl, "flaredb", "7300", "7301", "10000"),
    {"extra", UC_CFG_STRING, offsetof(struct svc_config, extra), "x", 0, 0, false, "extra"},
    {NULL},
};

/* Calls uc_config_load on a fresh config; argv ends with NULL. */
static int load(struct svc_config *c, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    memset(c, 0, sizeof(*c));
    return uc_config_load(c, rows, "replsvc-test", argc, argv, err);
}

START_TEST(option_rows_carry_the_service_defaults)
{
    struct svc_config c;
    char *argv[] = {"t", "--node-id", "3", "--iam-jwks-url", "http://i/keys", NULL};
    ck_assert_int_eq(load(&c, argv), 0);
    ck_assert_int_eq(c.repl.node_id, 3);
    ck_assert_int_eq(c.repl.port, 7300);
    ck_assert_str_eq(c.repl.raft_address, "127.0.0.1:7301");
    ck_assert_str_eq(c.repl.data_dir, "/var/lib/ultracloud/flaredb");
    ck_assert_str_eq(c.repl.listen, "127.0.0.1");
    ck_assert(c.repl.bootstrap);
    ck_assert_ptr_null(c.repl.restore_from);
    ck_assert_ptr_null(c.repl.advertise_url);
    ck_assert_int_eq(c.repl.request_timeout_ms, 5000);
    ck_assert_int_eq(c.repl.election_timeout_ms, 1000);
    ck_assert_str_eq(c.repl.log_level, "info");
    ck_assert_str_eq(c.extra, "x");
    uc_config_free(&c, rows);
}
END_TEST

START_TEST(option_rows_parse_flags_and_need_node_id_and_jwks)
{
    struct svc_config c;
    char *argv[] = {"t",
                    "--node-id",
                    "2",
                    "--iam-jwks-url",
                    "u",
                    "--bootstrap=false",
                    "--restore-from",
                    "/b",
                    "--port",
                    "1",
                    "--advertise-url",
                    "http://h:1",
                    NULL};
    ck_assert_int_eq(load(&c, argv), 0);
    ck_assert(!c.repl.bootstrap);
    ck_assert_str_eq(c.repl.restore_from, "/b");
    ck_assert_str_eq(c.repl.advertise_url, "http://h:1");
    ck_assert_int_eq(c.repl.port, 1);
    uc_config_free(&c, rows);
    char *no_id[] = {"t", "--iam-jwks-url", "u", NULL};
    ck_assert_int_eq(load(&c, no_id), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--node-id is required"));
    char *no_jwks[] = {"t", "--node-id", "1", NULL};
    ck_assert_int_eq(load(&c, no_jwks), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--iam-jwks-url is required"));
    char *zero[] = {"t", "--node-id", "0", "--iam-jwks-url", "u", NULL};
    ck_assert_int_eq(load(&c, zero), UC_EINVAL);
}
END_TEST

START_TEST(initial_cluster_parses_voters)
{
    struct uc_repl_member m[UC_REPL_MAX_MEMBERS];
    size_t n = 0;
    ck_assert_int_eq(uc_replsvc_parse_cluster("1=a:1,22=10.0.0.2:7201,3=[::1]:9,", m,
                                              UC_REPL_MAX_MEMBERS, &n, err),
                     0);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(m[1].id, 22);
    ck_assert_str_eq(m[1].addr, "10.0.0.2:7201");
    ck_assert_str_eq(m[2].addr, "[::1]:9");
    ck_assert_int_eq(m[0].role, UC_REPL_VOTER);
}
END_TEST

START_TEST(initial_cluster_refuses_bad_lists_and_leaves_outputs)
{
    static const char *const bad[][2] = {
        {"1=a:1,,2=b:2", "is not id=host:port"},
        {"x=a:1", "is not id=host:port"},
        {"0=a:1", "is not id=host:port"},
        {"-1=a:1", "is not id=host:port"},
        {"1=a", "is not id=host:port"},
        {"1=a:99999", "is not id=host:port"},
        {"1=a:1,1=b:2", "member 1 is listed twice"},
        {"1=a:1,2=a:1", "address a:1 is listed twice"},
        {"", "no members"},
        {"1=a:1,2=b:2,3=c:3", "more than 2 members"},
    };
    struct uc_repl_member m[2] = {{.id = 77}};
    size_t n = 5;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(uc_replsvc_parse_cluster(bad[i][0], m, 2, &n, err), UC_EINVAL);
        ck_assert_msg(strstr(err, bad[i][1]) != NULL, "'%s': %s", bad[i][0], err);
        ck_assert_uint_eq(n, 5);
        ck_assert_uint_eq(m[0].id, 77);
    }
}
END_TEST

START_TEST(advertise_url_defaults_to_listen_and_port)
{
    char url[UC_REPLSVC_URL_LEN];
    struct uc_replsvc_opts o = {.listen = "10.1.2.3", .port = 7200};
    ck_assert_int_eq(uc_replsvc_advertise_url(&o, url, err), 0);
    ck_assert_str_eq(url, "http://10.1.2.3:7200");
    o.listen = "::1";
    ck_assert_int_eq(uc_replsvc_advertise_url(&o, url, err), 0);
    ck_assert_str_eq(url, "http://[::1]:7200");
    o.advertise_url = "https://cf.example:443//";
    ck_assert_int_eq(uc_replsvc_advertise_url(&o, url, err), 0);
    ck_assert_str_eq(url, "https://cf.example:443");
}
END_TEST

START_TEST(advertise_url_is_required_on_a_wildcard_listen_and_checked)
{
    char url[UC_REPLSVC_URL_LEN], longer[400];
    struct uc_replsvc_opts o = {.listen = "0.0.0.0", .port = 7200};
    ck_assert_int_eq(uc_replsvc_advertise_url(&o, url, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--advertise-url is required"));
    ck_assert_str_eq(url, "");
    o.listen = "::";
    ck_assert_int_eq(uc_replsvc_advertise_url(&o, url, err), UC_EINVAL);
    o.advertise_url = "ftp://x:1";
    ck_assert_int_eq(uc_replsvc_advertise_url(&o, url, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "http:// or https://"));
    o.advertise_url = "http://a b:1";
    ck_assert_int_eq(uc_replsvc_advertise_url(&o, url, err), UC_EINVAL);
    o.advertise_url = "http://";
    ck_assert_int_eq(uc_replsvc_advertise_url(&o, url, err), UC_EINVAL);
    memset(longer, 'a', sizeof(longer) - 1);
    memcpy(longer, "http://", 7);
    longer[sizeof(longer) - 1] = '\0';
    o.advertise_url = longer;
    ck_assert_int_eq(uc_replsvc_advertise_url(&o, url, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "longer than"));
}
END_TEST

/* --- the wrapper ---------------------------------------------------------------------- */

START_TEST(service_commands_reach_the_service_without_the_tag)
{
    void *result = NULL;
    uint8_t *cmd;
    size_t len;
    ck_assert_int_eq(replsvc_cmd_svc("put a", 5, &cmd, &len), 0);
    ck_assert_uint_eq(len, 6);
    ck_assert_uint_eq(cmd[0], REPLSVC_TAG_SVC);
    ck_assert_int_eq(sm.apply(sm.ctx, cmd, len, 4, &result), 0);
    uc_free(cmd);
    ck_assert_str_eq(toy.cmds[0], "put a");
    ck_assert_str_eq(result, "result"); /* the proposer gets the service's result */
    sm.free_result(sm.ctx, result);
    ck_assert_int_eq(toy.frees, 1);
    ck_assert_uint_eq(replsvc_sm_applied(&w), 4);
    struct replsvc_state st;
    replsvc_sm_state(&w, &st);
    ck_assert(st.svc_data);
}
END_TEST

START_TEST(a_failed_service_apply_changes_nothing_of_ours)
{
    toy.fail_apply = UC_EIO;
    ck_assert_int_eq(apply_svc("x", 9), UC_EIO);
    struct replsvc_state st;
    replsvc_sm_state(&w, &st);
    ck_assert(!st.svc_data);
    ck_assert_uint_eq(replsvc_sm_applied(&w), 0);
}
END_TEST

START_TEST(url_records_set_replace_and_forget)
{
    apply_url(1, "http://a:1", 1);
    apply_url(2, "http://b:2", 2);
    apply_url(1, "http://a:9", 3);
    ck_assert(has_url(1, "http://a:9"));
    ck_assert(has_url(2, "http://b:2"));
    apply_url(2, "", 4);
    char url[UC_REPLSVC_URL_LEN];
    ck_assert(!replsvc_sm_url(&w, 2, url));
    ck_assert_uint_eq(toy.n, 0); /* the service saw none of it */
    struct replsvc_state st;
    replsvc_sm_state(&w, &st);
    ck_assert(!st.svc_data); /* URLs are not data: a restore may still follow */
    ck_assert_uint_eq(replsvc_sm_applied(&w), 4);
}
END_TEST

START_TEST(a_full_url_table_drops_the_oldest_entry)
{
    char url[UC_REPLSVC_URL_LEN];
    for (uint64_t id = 1; id <= REPLSVC_MAX_URLS; id++) {
        snprintf(url, sizeof(url), "http://m%llu:1", (unsigned long long)id);
        apply_url(id, url, 100 - id); /* member 32 was set longest ago */
    }
    apply_url(99, "http://new:1", 200);
    ck_assert(has_url(99, "http://new:1"));
    ck_assert(!replsvc_sm_url(&w, REPLSVC_MAX_URLS, url));
    ck_assert(has_url(1, "http://m1:1"));
}
END_TEST

START_TEST(malformed_and_unknown_records_are_skipped)
{
    uint8_t junk[] = {REPLSVC_TAG_URL, 1, 2}, unknown[] = {42, 'x'}, restore[] = {3, 1};
    void *result = NULL;
    ck_assert_int_eq(sm.apply(sm.ctx, junk, sizeof(junk), 1, &result), 0);
    ck_assert_int_eq(sm.apply(sm.ctx, unknown, sizeof(unknown), 2, &result), 0);
    ck_assert_int_eq(sm.apply(sm.ctx, restore, sizeof(restore), 3, &result), 0);
    ck_assert_int_eq(sm.apply(sm.ctx, junk, 0, 4, &result), 0);
    ck_assert_ptr_null(result);
    ck_assert_uint_eq(toy.n, 0);
    ck_assert_int_eq(toy.restores, 0);
    ck_assert_uint_eq(replsvc_sm_applied(&w), 4);
}
END_TEST

START_TEST(long_urls_are_refused_when_encoding)
{
    char url[UC_REPLSVC_URL_LEN + 1];
    uint8_t *cmd = NULL;
    size_t len = 0;
    memset(url, 'a', sizeof(url) - 1);
    url[sizeof(url) - 1] = '\0';
    ck_assert_int_eq(replsvc_cmd_url(1, url, &cmd, &len), UC_EINVAL);
    ck_assert_ptr_null(cmd);
}
END_TEST

START_TEST(a_snapshot_carries_our_table_and_the_service_state)
{
    ck_assert_int_eq(apply_svc("one", 1), 0);
    apply_url(7, "http://seven:7", 2);
    ck_assert_int_eq(apply_svc("two", 3), 0);
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(sm.snapshot(sm.ctx, &buf, &len), 0);
    ck_assert_mem_eq(buf, REPLSVC_SNAP_MAGIC, 8);

    /* Into a fresh member. */
    teardown();
    setup();
    ck_assert_int_eq(sm.restore(sm.ctx, buf, len, 3), 0);
    ck_assert_uint_eq(toy.n, 2);
    ck_assert_str_eq(toy.cmds[1], "two");
    ck_assert_uint_eq(toy.restore_index, 3);
    ck_assert(has_url(7, "http://seven:7"));
    struct replsvc_state st;
    replsvc_sm_state(&w, &st);
    ck_assert(st.svc_data);
    ck_assert_uint_eq(replsvc_sm_applied(&w), 3);
    uc_free(buf);
}
END_TEST

/* With the service's split, the wrapper splits too: begin copies our table,
 * encode frames the service's bytes in the room it asked for (no copy),
 * and the result is byte for byte the one-go snapshot of the state at
 * begin, whatever was applied in between. */
START_TEST(a_split_snapshot_is_the_one_go_snapshot_of_its_begin)
{
    teardown();
    memset(&toy, 0, sizeof(toy));
    struct uc_repl_sm svc = {.apply = toy_apply,
                             .snapshot = toy_snapshot,
                             .restore = toy_restore,
                             .free_result = toy_free_result,
                             .ctx = &toy,
                             .snapshot_begin = toy_begin,
                             .snapshot_encode = toy_encode,
                             .snapshot_end = toy_end};
    ck_assert_int_eq(replsvc_sm_init(&w, &svc), 0);
    sm = replsvc_sm_wrap(&w);
    ck_assert_ptr_nonnull(sm.snapshot_begin);
    ck_assert_int_eq(apply_svc("one", 1), 0);
    apply_url(7, "http://seven:7", 2);
    void *whole = NULL, *view = NULL, *buf = NULL;
    size_t wlen = 0, len = 0;
    ck_assert_int_eq(sm.snapshot(sm.ctx, &whole, &wlen), 0);
    ck_assert_int_eq(sm.snapshot_begin(sm.ctx, &view), 0);
    ck_assert_int_eq(apply_svc("two", 3), 0);
    apply_url(7, "http://other:7", 4);
    ck_assert_int_eq(sm.snapshot_encode(sm.ctx, view, 16, &buf, &len), 0);
    sm.snapshot_end(sm.ctx, view);
    ck_assert_uint_eq(len, 16 + wlen);
    ck_assert_mem_eq((uint8_t *)buf + 16, whole, wlen);
    teardown();
    setup();
    ck_assert_int_eq(sm.restore(sm.ctx, (uint8_t *)buf + 16, len - 16, 2), 0);
    ck_assert_uint_eq(toy.n, 1);
    ck_assert(has_url(7, "http://seven:7"));
    uc_free(whole);
    uc_free(buf);
}
END_TEST

START_TEST(a_foreign_or_damaged_snapshot_changes_nothing)
{
    apply_url(5, "http://five:5", 1);
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(sm.snapshot(sm.ctx, &buf, &len), 0);
    uint8_t *b = buf;
    ck_assert_int_eq(sm.restore(sm.ctx, "{\"rev\":1}", 9, 9), UC_EINVAL); /* a bare service one */
    ck_assert_int_eq(sm.restore(sm.ctx, b, 12, 9), UC_EINVAL);            /* cut in the header */
    ck_assert_int_eq(sm.restore(sm.ctx, b, REPLSVC_SNAP_HDR + 20, 9), UC_EINVAL);
    b[REPLSVC_SNAP_HDR] = 7; /* bad flags byte */
    ck_assert_int_eq(sm.restore(sm.ctx, b, len, 9), UC_EINVAL);
    b[REPLSVC_SNAP_HDR] = 0;
    toy.fail_restore = UC_EINVAL; /* the service refuses its part */
    apply_url(6, "http://six:6", 2);
    ck_assert_int_eq(sm.restore(sm.ctx, b, len, 9), UC_EINVAL);
    ck_assert(has_url(6, "http://six:6"));
    ck_assert_int_eq(toy.restores, 0);
    ck_assert_uint_eq(replsvc_sm_applied(&w), 2);
    uc_free(buf);
}
END_TEST

START_TEST(a_restore_record_loads_an_empty_store)
{
    apply_url(1, "http://a:1", 1); /* URLs do not count as data */
    ck_assert_int_eq(apply_restore("x\ny\n", 2), 0);
    ck_assert_int_eq(toy.restores, 1);
    ck_assert_uint_eq(toy.restore_index, 2);
    ck_assert_uint_eq(toy.n, 2);
    ck_assert_str_eq(toy.cmds[1], "y");
    struct replsvc_state st;
    uint8_t sha[UC_SHA256_LEN];
    replsvc_sm_state(&w, &st);
    ck_assert_uint_eq(st.restored_index, 2);
    ck_assert_int_eq(uc_crypto_sha256("x\ny\n", 4, sha), 0);
    ck_assert_mem_eq(st.restored_sha, sha, UC_SHA256_LEN);
    ck_assert(st.svc_data);
    /* A second one is refused: the store holds data now. */
    ck_assert_int_eq(apply_restore("z\n", 3), 0);
    replsvc_sm_state(&w, &st);
    ck_assert_uint_eq(st.restored_index, 2);
    ck_assert_uint_eq(st.refused_index, 3);
    ck_assert_int_eq(toy.restores, 1);
    ck_assert_uint_eq(replsvc_sm_applied(&w), 3);
}
END_TEST

START_TEST(a_restore_record_is_refused_once_the_service_holds_data)
{
    ck_assert_int_eq(apply_svc("put", 1), 0);
    ck_assert_int_eq(apply_restore("x\n", 2), 0);
    ck_assert_int_eq(toy.restores, 0);
    ck_assert_str_eq(toy.cmds[0], "put");
    struct replsvc_state st;
    replsvc_sm_state(&w, &st);
    ck_assert_uint_eq(st.restored_index, 0);
    ck_assert_uint_eq(st.refused_index, 2);
}
END_TEST

START_TEST(a_payload_the_service_cannot_load_is_refused_everywhere_alike)
{
    toy.fail_restore = UC_EINVAL;
    ck_assert_int_eq(apply_restore("x\n", 2), 0); /* the log moves on */
    struct replsvc_state st;
    replsvc_sm_state(&w, &st);
    ck_assert_uint_eq(st.refused_index, 2);
    ck_assert(!st.svc_data);
    toy.fail_restore = UC_ENOMEM; /* local trouble: raft retries the entry */
    ck_assert_int_eq(apply_restore("x\n", 3), UC_ENOMEM);
    replsvc_sm_state(&w, &st);
    ck_assert_uint_eq(st.refused_index, 2);
    ck_assert_uint_eq(replsvc_sm_applied(&w), 2);
}
END_TEST

START_TEST(restored_state_survives_a_snapshot)
{
    ck_assert_int_eq(apply_restore("r\n", 5), 0);
    void *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(sm.snapshot(sm.ctx, &buf, &len), 0);
    teardown();
    setup();
    ck_assert_int_eq(sm.restore(sm.ctx, buf, len, 6), 0);
    struct replsvc_state st;
    replsvc_sm_state(&w, &st);
    ck_assert_uint_eq(st.restored_index, 5);
    ck_assert(st.svc_data);
    uc_free(buf);
}
END_TEST

START_TEST(out_of_memory_is_reported_and_clean)
{
    uint8_t *cmd = NULL, sha[UC_SHA256_LEN] = {0};
    size_t len = 0;
    void *buf = NULL;
    uc_alloc_fail_after(0);
    ck_assert_int_eq(replsvc_cmd_svc("x", 1, &cmd, &len), UC_ENOMEM);
    ck_assert_int_eq(replsvc_cmd_url(1, "http://a:1", &cmd, &len), UC_ENOMEM);
    ck_assert_int_eq(replsvc_cmd_restore(sha, "x", 1, &cmd, &len), UC_ENOMEM);
    ck_assert_int_eq(sm.snapshot(sm.ctx, &buf, &len), UC_ENOMEM);
    uc_alloc_fail_after(1); /* the service's copy works, ours does not */
    ck_assert_int_eq(sm.snapshot(sm.ctx, &buf, &len), UC_ENOMEM);
    uc_alloc_fail_after(-1);
    ck_assert_ptr_null(cmd);
    ck_assert_ptr_null(buf);
}
END_TEST

/* --- backups ---------------------------------------------------------------------------- */

static uint8_t image[UC_REPLSVC_BACKUP_HDR + 16];

static void make_image(const char *service)
{
    memcpy(image + UC_REPLSVC_BACKUP_HDR, "payload-16-bytes", 16);
    ck_assert_int_eq(
        uc_replsvc_backup_header(image, service, 42, image + UC_REPLSVC_BACKUP_HDR, 16), 0);
}

START_TEST(a_backup_header_round_trips)
{
    struct uc_replsvc_backup_info info;
    make_image("chainfire");
    ck_assert_mem_eq(image, "ucbackup", 8);
    ck_assert_int_eq(uc_replsvc_backup_verify(image, sizeof(image), "chainfire", &info, err), 0);
    ck_assert_str_eq(info.service, "chainfire");
    ck_assert_uint_eq(info.index, 42);
    ck_assert_uint_eq(info.len, 16);
    uint8_t sha[UC_SHA256_LEN];
    ck_assert_int_eq(uc_crypto_sha256("payload-16-bytes", 16, sha), 0);
    ck_assert_mem_eq(info.sha256, sha, UC_SHA256_LEN);
}
END_TEST

START_TEST(bad_backups_are_named)
{
    struct uc_replsvc_backup_info info = {.index = 5};
    make_image("flaredb");
    ck_assert_int_eq(uc_replsvc_backup_verify(image, sizeof(image), "chainfire", &info, err),
                     UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "a backup of 'flaredb', not of chainfire"));
    make_image("chainfire");
    ck_assert_int_eq(uc_replsvc_backup_verify(image, 5, "chainfire", &info, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a backup file"));
    ck_assert_int_eq(uc_replsvc_backup_verify(image, 40, "chainfire", &info, err), UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "truncated"));
    ck_assert_int_eq(uc_replsvc_backup_verify(image, sizeof(image) - 1, "chainfire", &info, err),
                     UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "announces 16 payload bytes"));
    image[sizeof(image) - 1] ^= 1;
    ck_assert_int_eq(uc_replsvc_backup_verify(image, sizeof(image), "chainfire", &info, err),
                     UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "checksum mismatch"));
    image[sizeof(image) - 1] ^= 1;
    image[8] = 2; /* format version */
    ck_assert_int_eq(uc_replsvc_backup_verify(image, sizeof(image), "chainfire", &info, err),
                     UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "version 2 is not supported"));
    image[0] = 'X';
    ck_assert_int_eq(uc_replsvc_backup_verify(image, sizeof(image), "chainfire", &info, err),
                     UC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "not a backup file"));
    ck_assert_uint_eq(info.index, 5); /* untouched on failure */
    ck_assert_int_eq(uc_replsvc_backup_header(image, "", 1, "", 0), UC_EINVAL);
    ck_assert_int_eq(
        uc_replsvc_backup_header(image, "a-service-name-longer-than-31-chars", 1, "", 0),
        UC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("replsvc");
    TCase *tc = uc_check_tcase("options", setup, teardown);
    tcase_add_test(tc, option_rows_carry_the_service_defaults);
    tcase_add_test(tc, option_rows_parse_flags_and_need_node_id_and_jwks);
    tcase_add_test(tc, initial_cluster_parses_voters);
    tcase_add_test(tc, initial_cluster_refuses_bad_lists_and_leaves_outputs);
    tcase_add_test(tc, advertise_url_defaults_to_listen_and_port);
    tcase_add_test(tc, advertise_url_is_required_on_a_wildcard_listen_and_checked);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("wrapper", setup, teardown);
    tcase_add_test(tc, service_commands_reach_the_service_without_the_tag);
    tcase_add_test(tc, a_failed_service_apply_changes_nothing_of_ours);
    tcase_add_test(tc, url_records_set_replace_and_forget);
    tcase_add_test(tc, a_full_url_table_drops_the_oldest_entry);
    tcase_add_test(tc, malformed_and_unknown_records_are_skipped);
    tcase_add_test(tc, long_urls_are_refused_when_encoding);
    tcase_add_test(tc, out_of_memory_is_reported_and_clean);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("snapshot", setup, teardown);
    tcase_add_test(tc, a_snapshot_carries_our_table_and_the_service_state);
    tcase_add_test(tc, a_split_snapshot_is_the_one_go_snapshot_of_its_begin);
    tcase_add_test(tc, a_foreign_or_damaged_snapshot_changes_nothing);
    tcase_add_test(tc, restored_state_survives_a_snapshot);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("restore_record", setup, teardown);
    tcase_add_test(tc, a_restore_record_loads_an_empty_store);
    tcase_add_test(tc, a_restore_record_is_refused_once_the_service_holds_data);
    tcase_add_test(tc, a_payload_the_service_cannot_load_is_refused_everywhere_alike);
    suite_add_tcase(s, tc);
    tc = uc_check_tcase("backup", setup, teardown);
    tcase_add_test(tc, a_backup_header_round_trips);
    tcase_add_test(tc, bad_backups_are_named);
    suite_add_tcase(s, tc);
    return uc_check_run(s);
}
