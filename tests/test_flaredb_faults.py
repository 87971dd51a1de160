"""flaredb under faults, on real processes: the leader killed (SIGKILL) while
several clients insert uniquely numbered rows (afterwards every member holds
every acknowledged row exactly once, and the same rows: count and checksum
of each member's own copy); a minority member answers 503 within the
request deadline and still serves serializable reads; every member
restarted from its data dir, cleanly and after SIGKILL
(docs/api/flaredb.md, docs/operations.md)."""

import threading
import time

import pytest
import requests

from fdbharness import FdbCluster, expect, fdb_error, kv_get, kv_put, kv_value, rows, scalar
from fdbharness import settle, sql, wait_for
from ucharness import timeout_scale

pytestmark = pytest.mark.flaredb


@pytest.fixture
def cluster(tmp_path):
    c = FdbCluster(tmp_path, request_timeout_ms=1500, extra_args=("--snapshot-threshold", "64"))
    try:
        c.start()
        c.leader()
        yield c
    finally:
        c.stop()


class Writers:
    """`n` threads inserting rows numbered writer * 10^6 + seq through the
    running members in turn. A 200 is acknowledged; anything else (an error,
    a 503 that may hide an applied write, a refused connection) is
    "unknown": the row may or may not be there, but never twice."""

    def __init__(self, cluster, n=6):
        self.cluster = cluster
        self.acked, self.unknown = set(), set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(w,), daemon=True)
                        for w in range(1, n + 1)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
            assert not t.is_alive()

    def count(self):
        with self.lock:
            return len(self.acked)

    def run(self, w):
        clients = {m.id: m.client() for m in self.cluster.members}
        seq = 0
        while not self.stop.is_set():
            seq += 1
            row = w * 1000000 + seq
            running = [m for m in self.cluster.members if m.daemon.running()]
            m = running[seq % len(running)]
            try:
                r = sql(clients[m.id], ("INSERT INTO log(id, writer) VALUES (?, ?)", [row, w]))
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
            with self.lock:
                (self.acked if ok else self.unknown).add(row)
            if not ok:
                time.sleep(0.02)


def test_leader_kill_under_concurrent_writes_loses_nothing_and_repeats_nothing(cluster):
    old = cluster.leader()
    # No key: a row applied twice would show up as a duplicate id.
    expect(sql(old.client(), "CREATE TABLE log(id INTEGER NOT NULL, writer INTEGER)"), 200)
    w = Writers(cluster)
    w.start()
    try:
        wait_for(lambda: w.count() >= 100)
        old.daemon.kill()
        t0 = time.monotonic()
        new = cluster.leader(timeout=10.0, exclude=(old.id,))
        elected_in = time.monotonic() - t0
        before = w.count()
        wait_for(lambda: w.count() >= before + 100)
    finally:
        w.join()
    assert new.id != old.id and elected_in < 5.0 * timeout_scale()
    old.start()  # it catches up from the others
    count, digest = settle(cluster, "log")
    for m in cluster.members:
        ids = [r[0] for r in rows(sql(m.client(), "SELECT id FROM log ORDER BY id",
                                      consistency="serializable"))]
        assert len(ids) == count and len(set(ids)) == len(ids), "member %d: a row twice" % m.id
        missing = w.acked - set(ids)
        assert not missing, "member %d lost acknowledged rows %s" % (m.id, sorted(missing)[:10])
        assert set(ids) <= w.acked | w.unknown, "member %d holds rows nobody wrote" % m.id
    assert count >= 200


def test_a_minority_answers_503_in_time_and_serves_serializable_reads(cluster):
    lead = cluster.leader()
    c = lead.client()
    expect(sql(c, "CREATE TABLE part(id INTEGER PRIMARY KEY, v TEXT)"), 200)
    expect(sql(c, ("INSERT INTO part(v) VALUES (?)", ["before"])), 200)
    expect(kv_put(c, "part", "k", b"before"), 200)
    alone = cluster.followers()[0]
    wait_for(lambda: kv_get(alone.client(), "part", "k", "serializable").status_code == 200 and
             rows(sql(alone.client(), "SELECT v FROM part",
                      consistency="serializable")) == [["before"]])
    gone = [m for m in cluster.members if m is not alone]
    for m in gone:
        m.daemon.stop()
    limit = cluster.request_timeout_ms / 1000.0 + 2.0 * timeout_scale()
    a = alone.client()
    for attempt, request in enumerate([
            lambda: sql(a, ("INSERT INTO part(v) VALUES (?)", ["lost"])),
            lambda: sql(a, "SELECT count(*) FROM part"),
            lambda: kv_put(a, "part", "k", b"lost"),
            lambda: kv_get(a, "part", "k"),
            lambda: sql(a, "CREATE TABLE never(a)"),
            # It cannot know whether the leader created this table since.
            lambda: sql(a, "SELECT * FROM created_elsewhere")]):
        t0 = time.monotonic()
        r = request()
        took = time.monotonic() - t0
        fdb_error(r, 503)
        assert took < limit, "request %d: 503 after %.1fs" % (attempt, took)
    assert rows(sql(a, "SELECT v FROM part", consistency="serializable")) == [["before"]]
    assert kv_value(kv_get(a, "part", "k", consistency="serializable")) == b"before"
    for m in gone:
        m.start()
    lead = cluster.leader()
    expect(sql(alone.client(), ("INSERT INTO part(v) VALUES (?)", ["after"])), 200)
    count, _ = settle(cluster, "part")
    assert count == 2  # the refused writes were never applied


def test_every_member_restarts_from_its_data_dir(cluster):
    c = cluster.leader().client()
    expect(sql(c, "CREATE TABLE kept(id INTEGER PRIMARY KEY, v BLOB)"), 200)
    for i in range(100):  # past the snapshot threshold: snapshot plus log
        expect(sql(c, ("INSERT INTO kept(id, v) VALUES (?, ?)", [i, {"blob": "AP8"}])), 200)
    expect(kv_put(c, "kept", "k", b"v"), 200)
    project = cluster.iam.create_project()["id"]
    expect(c.put("/api/v1/acl/namespaces/kept", json={"project": project}), 200)
    want = settle(cluster, "kept")
    assert cluster.leader().status()["snapshot_index"] > 0
    for how in ("stop", "kill"):
        for m in cluster.members:
            m.daemon.stop() if how == "stop" else m.daemon.kill()
        for m in cluster.members:
            m.start()
        lead = cluster.leader()
        assert settle(cluster, "kept") == want, "after %s" % how
        c = lead.client()
        assert kv_value(kv_get(c, "kept", "k")) == b"v"
        user = cluster.iam.new_user("member", cluster.iam.create_project()["id"])
        fdb_error(kv_get(lead.client(token=user.token), "kept", "k"), 404)
    expect(sql(c, ("INSERT INTO kept(id, v) VALUES (?, ?)", [1000, None])), 200)
    assert scalar(c, "SELECT count(*) FROM kept") == 101
