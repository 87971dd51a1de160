"""flaredb's API on a real 3-member cluster (docs/api/flaredb.md): SQL and KV
through every member (followers forward to the leader), values keep their
SQLite types, refused statements get SQLite's message and their index and
never reach the log, determinism rules, atomic multi-statement requests
(one log entry), body and statement limits, serializable reads, and the
flaredb_* metrics. One cluster serves the whole module; every test uses its
own tables and namespaces."""

import time

import pytest

from fdbharness import (API, FdbCluster, b64, blob, fdb_error, kv_get, kv_put, kv_value, rows,
                        scalar, settle, sql, unb64)
from ucharness import expect, metric_sum, parse_metrics, raw_request, timeout_scale

pytestmark = pytest.mark.flaredb

MAX_VALUE = 65536
BODY_LIMIT = MAX_VALUE // 3 * 4 + 65536


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = FdbCluster(tmp_path_factory.mktemp("fdb-api"),
                   extra_args=("--statement-timeout-ms", "300", "--max-steps", "2000000",
                               "--max-value-bytes", str(MAX_VALUE)))
    try:
        c.start()
        c.leader()
        yield c
    finally:
        c.stop()


def last_index(member):
    return member.status()["last_index"]


def test_sql_through_every_member(cluster):
    lead = cluster.leader()
    expect(sql(lead.client(), "CREATE TABLE every(id INTEGER PRIMARY KEY, member INT, n INT)"), 200)
    for m in cluster.members:
        for n in range(5):
            r = sql(m.client(), ("INSERT INTO every(member, n) VALUES (?, ?)", [m.id, n]))
            body = expect(r, 200)
            assert body["results"][0]["rows_affected"] == 1 and body["index"] > 0
            forwarded = r.headers.get("X-Flaredb-Leader")
            assert forwarded == (None if m is lead else str(lead.id)), r.headers
    for m in cluster.members:
        assert scalar(m.client(), "SELECT count(*) FROM every") == 15
    count, _ = settle(cluster, "every")
    assert count == 15


def test_values_keep_their_types(cluster):
    c = cluster.members[1].client()
    expect(sql(c, "CREATE TABLE typed(id INTEGER PRIMARY KEY, v ANY) STRICT"), 200)
    every_byte = bytes(range(256))
    values = [0, -1, 2 ** 62, -(2 ** 63), 1.5, 1e300, -2.25, "", "plain", "unicode \u00e9\u4e2d\U0001f600",
              None, blob(every_byte), blob(b""), True, False]
    expect(sql(c, *[("INSERT INTO typed(id, v) VALUES (?, ?)", [i, v])
                    for i, v in enumerate(values)]), 200)
    want = [1 if v is True else 0 if v is False else v for v in values]
    for m in cluster.members:
        got = rows(sql(m.client(), "SELECT v, typeof(v) FROM typed ORDER BY id"))
        assert [g[0] for g in got] == want
        assert [g[1] for g in got] == ["integer"] * 4 + ["real"] * 3 + ["text"] * 3 + \
            ["null", "blob", "blob", "integer", "integer"]
    assert unb64(want[11]["blob"]) == every_byte
    settle(cluster, "typed")
    r = expect(sql(c, ("SELECT 1.0 AS one, 'x' || ? AS s, ? AS b", ["y", blob(b"\x01")])), 200)
    res = r["results"][0]
    assert res["columns"] == ["one", "s", "b"] and res["types"] == [None, None, None]
    assert res["rows"] == [[1.0, "xy", {"blob": "AQ"}]]
    assert isinstance(res["rows"][0][0], float)


def test_refused_statements_name_the_statement_and_change_nothing(cluster):
    lead = cluster.leader()
    c = lead.client()
    expect(sql(c, "CREATE TABLE refused(id INTEGER PRIMARY KEY, v TEXT NOT NULL)"), 200)
    expect(sql(c, ("INSERT INTO refused(v) VALUES (?)", ["kept"])), 200)
    before = last_index(lead)
    cases = [
        ([("INSERT INTO refused(v) VALUES (?)", ["a"]), "SELECT nope FROM refused"], 1,
         "no such column: nope"),
        (["INSERT INTO refused(v) VALUES ('a')", "INSERT INTO nowhere VALUES (1)"], 1,
         "no such table: nowhere"),
        (["INSERT INTO refused(v) VALUES ('a'", ], 0, "incomplete input"),
        (["INSERT INTO refused(v) VALUES ('a'); DELETE FROM refused"], 0, "more than one"),
        ([("INSERT INTO refused(v) VALUES (?)", [])], 0, "has 1 parameter, 0 given"),
        (["INSERT INTO _flaredb_kv(ns) VALUES ('x')"], 0, "flaredb's own"),
        (["ATTACH 'x.db' AS x"], 0, "ATTACH"),
        (["PRAGMA journal_mode=DELETE"], 0, "PRAGMA"),
        (["BEGIN"], 0, "transaction control"),
    ]
    for stmts, index, message in cases:
        r = sql(c, *stmts)
        status = 403 if "flaredb's own" in message else 400
        err = fdb_error(r, status)
        assert message in err["message"], err
        assert err["statement"] == index, err
    assert last_index(lead) == before, "a refused request reached the log"
    assert rows(sql(c, "SELECT v FROM refused")) == [["kept"]]


def test_non_deterministic_writes_are_refused_and_reads_may_use_them(cluster):
    c = cluster.leader().client()
    expect(sql(c, "CREATE TABLE nondet(id INTEGER PRIMARY KEY, v)"), 200)
    for expr in ("random()", "randomblob(4)", "datetime('now')", "CURRENT_TIMESTAMP",
                 "strftime('%s', 'now')"):
        err = fdb_error(sql(c, "INSERT INTO nondet(v) VALUES (%s)" % expr), 400)
        assert "not deterministic" in err["message"] and "parameter" in err["message"], err
    # A column default is compiled where the authorizer does not look: apply
    # refuses it on every member alike.
    err = fdb_error(sql(c, "CREATE TABLE stamped(id INTEGER, t DEFAULT CURRENT_TIMESTAMP)"), 400)
    assert "not deterministic" in err["message"]
    r = rows(sql(c, "SELECT typeof(random()), length(datetime('now')) > 0"))
    assert r == [["integer", 1]]
    assert rows(sql(c, "SELECT count(*) FROM nondet")) == [[0]]
    assert "stamped" not in [t["name"] for t in expect(c.get(API + "/tables"), 200)["tables"]]


def test_a_multi_statement_request_is_one_atomic_entry(cluster):
    lead = cluster.leader()
    c = cluster.followers()[0].client()
    expect(sql(c, "CREATE TABLE atomic(id INTEGER PRIMARY KEY, v TEXT)"), 200)
    before = last_index(lead)
    body = expect(sql(c, *[("INSERT INTO atomic(id, v) VALUES (?, ?)", [i, "v%d" % i])
                           for i in range(50)]), 200)
    assert len(body["results"]) == 50 and all(x["rows_affected"] == 1 for x in body["results"])
    assert last_index(lead) == before + 1, "50 statements took more than one log entry"
    # The default transaction: the duplicate key undoes the whole request.
    r = sql(c, ("INSERT INTO atomic(id, v) VALUES (?, ?)", [100, "new"]),
            ("UPDATE atomic SET v = 'changed' WHERE id = ?", [1]),
            ("INSERT INTO atomic(id, v) VALUES (?, ?)", [5, "dup"]))
    err = fdb_error(r, 409)
    assert err["statement"] == 2 and "UNIQUE constraint failed" in err["message"], err
    assert scalar(c, "SELECT count(*) FROM atomic") == 50
    assert scalar(c, "SELECT v FROM atomic WHERE id = 1") == "v1"
    # transaction false: what ran before the failure stays, the rest does not run.
    r = sql(c, ("INSERT INTO atomic(id, v) VALUES (?, ?)", [100, "new"]),
            ("INSERT INTO atomic(id, v) VALUES (?, ?)", [5, "dup"]),
            ("INSERT INTO atomic(id, v) VALUES (?, ?)", [101, "never"]), transaction=False)
    err = fdb_error(r, 409)
    assert err["statement"] == 1 and len(r.json()["results"]) == 1
    assert rows(sql(c, "SELECT id FROM atomic WHERE id >= 100")) == [[100]]
    assert settle(cluster, "atomic")[0] == 51


def test_oversized_requests_are_413(cluster):
    m = cluster.members[0]
    token = cluster.token
    big = b'{"statements":[{"sql":"SELECT ?","params":["' + b"x" * BODY_LIMIT + b'"]}]}'
    status, _, body = raw_request("127.0.0.1", m.daemon.port, "POST", API + "/sql",
                                  {"Authorization": "Bearer " + token,
                                   "Content-Type": "application/json"}, big)
    assert status == 413, body[:300]
    # Under the body limit but over the value limit: the check refuses it.
    r = kv_put(m.client(), "big", "k", b"v" * (MAX_VALUE + 1))
    fdb_error(r, 413)
    expect(kv_put(m.client(), "big", "k", b"v" * MAX_VALUE), 200)


def test_runaway_statements_are_stopped(cluster):
    c = cluster.leader().client()
    expect(sql(c, "CREATE TABLE runaway(n INTEGER)"), 200)
    forever = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
    t0 = time.monotonic()
    err = fdb_error(sql(c, forever + "SELECT count(*) FROM r"), 503, "deadline_exceeded")
    assert time.monotonic() - t0 < 3.0 * timeout_scale()
    assert "time limit" in err["message"] and err["statement"] == 0
    err = fdb_error(sql(c, forever + "INSERT INTO runaway SELECT n FROM r"), 413)
    assert "--max-steps" in err["message"] and err["statement"] == 0, err
    assert scalar(c, "SELECT count(*) FROM runaway") == 0
    # A bounded one of the same shape is fine.
    expect(sql(c, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r LIMIT 1000) "
                  "INSERT INTO runaway SELECT n FROM r"), 200)
    assert scalar(c, "SELECT count(*) FROM runaway") == 1000


def test_serializable_reads_answer_locally_and_linearizable_ones_at_the_leader(cluster):
    lead = cluster.leader()
    f = cluster.followers()[0]
    expect(sql(lead.client(), "CREATE TABLE levels(v)"), 200)
    expect(sql(lead.client(), "INSERT INTO levels VALUES (1)"), 200)
    r = sql(f.client(), "SELECT count(*) FROM levels")
    assert expect(r, 200)["results"][0]["rows"] == [[1]]
    assert r.headers.get("X-Flaredb-Leader") == str(lead.id)
    r = None
    for _ in range(100):
        r = sql(f.client(), "SELECT count(*) FROM levels", consistency="serializable")
        if r.status_code == 200 and rows(r) == [[1]]:
            break
        time.sleep(0.05)
    assert rows(r) == [[1]] and r.headers.get("X-Flaredb-Leader") is None
    err = fdb_error(sql(f.client(), "SELECT 1", consistency="eventual"), 400)
    assert "serializable" in err["message"]
    fdb_error(sql(f.client(), "SELECT 1", allow="ddl_destructive"), 400)
    fdb_error(f.client(token="").post(API + "/sql", json={"statements": [{"sql": "SELECT 1"}]}),
                 401)


def test_tables_are_listed_with_their_columns(cluster):
    c = cluster.members[2].client()
    expect(sql(c, "CREATE TABLE listed(id TEXT PRIMARY KEY, n INTEGER NOT NULL)"), 200)
    tables = {t["name"]: t for t in expect(c.get(API + "/tables"), 200)["tables"]}
    assert tables["listed"]["columns"] == [
        {"name": "id", "type": "TEXT", "notnull": False, "pk": 1},
        {"name": "n", "type": "INTEGER", "notnull": True, "pk": 0}]
    assert not [n for n in tables if n.startswith("_flaredb_") or n.startswith("sqlite_")]


def test_kv_through_every_member(cluster):
    ms = cluster.members
    revs = [expect(kv_put(m.client(), "app.cfg", "key-%d" % m.id, b"\x00v%d" % m.id), 200)["revision"]
            for m in ms]
    assert revs == [revs[0], revs[0] + 1, revs[0] + 2]
    for m in ms:
        for n in ms:
            assert kv_value(kv_get(m.client(), "app.cfg", "key-%d" % n.id)) == b"\x00v%d" % n.id
    c = ms[1].client()
    # compare-and-swap on the revision, named key in the conflict
    err = fdb_error(kv_put(c, "app.cfg", "key-1", b"x", expect_revision=revs[0] + 99), 409)
    assert err["key"] == b64("key-1")
    put = expect(kv_put(c, "app.cfg", "key-1", b"y", expect_revision=revs[0]), 200)
    assert put["version"] == 2
    fdb_error(kv_put(c, "app.cfg", "key-1", b"z", expect_revision=0), 409)
    # delete, then 404
    expect(c.delete(API + "/kv/app.cfg/%s?expect_revision=%d" % (b64("key-1"), put["revision"])),
           200)
    fdb_error(kv_get(c, "app.cfg", "key-1"), 404)
    fdb_error(c.delete(API + "/kv/app.cfg/%s" % b64("key-1")), 404)
    # scans page through in key order
    for i in range(7):
        expect(kv_put(c, "scan.ns", "p/%d" % i, b"%d" % i), 200)
    expect(kv_put(c, "scan.ns", "q", b"other"), 200)
    got, after = [], None
    while True:
        body = {"prefix": b64("p/"), "limit": 3}
        if after:
            body["after"] = after
        page = expect(ms[2].client().post(API + "/kv/scan.ns/scan", json=body), 200)
        got += [unb64(i["key"]).decode() for i in page["items"]]
        if not page["more"]:
            break
        after = page["items"][-1]["key"]
    assert got == ["p/%d" % i for i in range(7)]
    # a txn: checks first, then all writes at one revision, or nothing
    ops = [{"op": "check", "key": b64("q"), "expect_version": 1},
           {"op": "put", "key": b64("p/0"), "value": b64("new")},
           {"op": "delete", "key": b64("p/1")}]
    rev = expect(ms[0].client().post(API + "/kv/scan.ns/txn", json={"ops": ops}), 200)["revision"]
    assert expect(kv_get(c, "scan.ns", "p/0"), 200)["revision"] == rev
    ops[0]["expect_version"] = 7
    ops[1]["value"] = b64("never")
    err = fdb_error(ms[0].client().post(API + "/kv/scan.ns/txn", json={"ops": ops}), 409)
    assert err["key"] == b64("q")
    assert kv_value(kv_get(c, "scan.ns", "p/0")) == b"new"
    assert kv_value(kv_get(ms[2].client(), "scan.ns", "p/0", "serializable")) in (b"0", b"new")
    fdb_error(kv_get(c, "Bad NS", "k"), 400)
    fdb_error(c.get(API + "/kv/ok/a+b"), 400)


def test_metrics_count_statements_kv_and_leadership(cluster):
    total = {}
    leaders = 0
    for m in cluster.members:
        r = m.client(token="").get("/metrics")
        mt = parse_metrics(expect_text(r))
        leaders += metric_sum(mt, "flaredb_is_leader")
        assert metric_sum(mt, "flaredb_applied_index") > 0
        # applies run on the apply thread, in groups; none is stuck
        groups = metric_sum(mt, "flaredb_apply_groups_total")
        assert 0 < groups <= metric_sum(mt, "flaredb_applied_index")
        assert metric_sum(mt, "flaredb_apply_failing") == 0
        st = m.client().get("/api/v1/cluster/status").json()
        assert st["apply_error"] == "" and st["stats"]["apply_groups"] > 0
        assert m.client(token="").get("/readyz").status_code == 200
        for name in ("flaredb_statements_total", "flaredb_kv_ops_total",
                     "flaredb_sql_rejected_total"):
            total[name] = total.get(name, 0) + metric_sum(mt, name)
        assert metric_sum(mt, "flaredb_sql_requests_total", **{"class": "read"}) >= 0
    assert leaders == 1
    assert total["flaredb_statements_total"] > 0 and total["flaredb_kv_ops_total"] > 0
    assert total["flaredb_sql_rejected_total"] > 0


def expect_text(resp):
    assert resp.status_code == 200, resp.text[:300]
    return resp.text


def test_schema_changes_need_their_roles_and_destructive_ones_a_confirmation(cluster):
    lead = cluster.leader()
    f = cluster.followers()[0]
    iam = cluster.iam
    project = iam.create_project()["id"]
    member = f.client(token=iam.new_user("member", project).token)
    admin = f.client(token=iam.new_user("admin", project).token)
    expect(sql(lead.client(), "CREATE TABLE roles(id INTEGER PRIMARY KEY, v TEXT)"), 200)
    # any token reads and writes data
    expect(sql(member, ("INSERT INTO roles(v) VALUES (?)", ["by member"])), 200)
    assert scalar(member, "SELECT count(*) FROM roles") == 1
    # additive DDL needs admin in the token's project
    err = fdb_error(sql(member, "CREATE TABLE member_made(a)"), 403)
    assert "admin" in err["message"]
    fdb_error(sql(member, "ALTER TABLE roles ADD COLUMN w"), 403)
    expect(sql(admin, "CREATE TABLE admin_made(a)"), 200)
    expect(sql(admin, "ALTER TABLE roles ADD COLUMN w INTEGER"), 200)
    expect(sql(admin, "CREATE INDEX roles_v ON roles(v)"), 200)
    # destructive DDL: system-admin and an explicit confirmation, and a log line
    for stmt in ("DROP TABLE admin_made", "ALTER TABLE roles RENAME TO renamed",
                 "ALTER TABLE roles DROP COLUMN w", "DROP INDEX roles_v"):
        err = fdb_error(sql(admin, stmt, confirm_destructive=True), 403)
        assert "system-admin" in err["message"], err
        err = fdb_error(sql(f.client(), stmt), 400)
        assert "confirm_destructive" in err["message"], err
    before = lead.daemon.stderr_text().count("destructive DDL by")
    expect(sql(f.client(), "DROP TABLE admin_made", confirm_destructive=True), 200)
    assert "admin_made" not in [t["name"] for t in expect(f.client().get(API + "/tables"),
                                                          200)["tables"]]
    logged = lead.daemon.stderr_text()
    assert logged.count("destructive DDL by") == before + 1
    assert "DROP TABLE admin_made" in logged


def test_project_restrictions_hide_tables_and_namespaces(cluster):
    iam = cluster.iam
    pa, pb = iam.create_project()["id"], iam.create_project()["id"]
    m = cluster.members[1]
    a = m.client(token=iam.new_user("member", pa).token)
    b = m.client(token=iam.new_user("admin", pb).token)
    sysadm = m.client()
    expect(sql(sysadm, "CREATE TABLE owned(id INTEGER PRIMARY KEY, v TEXT)"), 200)
    expect(sql(sysadm, "INSERT INTO owned(v) VALUES ('secret')"), 200)
    expect(kv_put(sysadm, "owned.ns", "k", b"v"), 200)
    # only a system admin may restrict
    fdb_error(b.put(API + "/acl/tables/owned", json={"project": pb}), 403)
    expect(sysadm.put(API + "/acl/tables/Owned", json={"project": pa}), 200)
    expect(sysadm.put(API + "/acl/namespaces/owned.ns", json={"project": pa}), 200)
    fdb_error(sysadm.put(API + "/acl/buckets/x", json={"project": pa}), 404)
    fdb_error(sysadm.put(API + "/acl/tables/x", json={"project": "Not A Project"}), 400)
    acl = expect(cluster.members[2].client().get(API + "/acl"), 200)["items"]
    assert {"kind": "table", "name": "owned", "project": pa} in acl
    # the owning project reaches them, on every member
    for n in cluster.members:
        c = n.client(token=a.token)
        assert scalar(c, "SELECT v FROM owned") == "secret"
        assert kv_value(kv_get(c, "owned.ns", "k")) == b"v"
    expect(sql(a, ("INSERT INTO owned(v) VALUES (?)", ["from a"])), 200)
    expect(kv_put(a, "owned.ns", "k2", b"a"), 200)
    # another project sees nothing: 404, as if it did not exist
    for query in ("SELECT * FROM owned", "INSERT INTO owned(v) VALUES ('b')",
                  "SELECT * FROM roles JOIN owned", "PRAGMA table_info(owned)"):
        err = fdb_error(sql(b, query), 404)
        assert "no such table: owned" in err["message"], err
    fdb_error(sql(b, "SELECT name FROM sqlite_schema"), 403)
    names = [t["name"] for t in expect(b.get(API + "/tables"), 200)["tables"]]
    assert "owned" not in names and "roles" in names
    assert "owned" in [t["name"] for t in expect(a.get(API + "/tables"), 200)["tables"]]
    fdb_error(kv_get(b, "owned.ns", "k"), 404)
    fdb_error(kv_put(b, "owned.ns", "k", b"b"), 404)
    fdb_error(b.post(API + "/kv/owned.ns/scan", json={}), 404)
    fdb_error(b.delete(API + "/kv/owned.ns/" + b64("k")), 404)
    fdb_error(b.get(API + "/acl"), 403)
    # lifting the restriction opens it to everyone
    expect(sysadm.delete(API + "/acl/tables/owned"), 200)
    fdb_error(sysadm.delete(API + "/acl/tables/owned"), 404)
    assert scalar(b, "SELECT count(*) FROM owned") == 2
