"""chainfire on a real 3-member cluster on loopback (docs/api/chainfire.md):
election, replicated writes and reads, transactions, leases, leader crash
under writes, minority behaviour and bad input."""

import threading
import time

import pytest

from cfharness import API, Cluster, b64, get, put, unb64, value_of, wait_for
from ucharness import assert_error, binary, expect, run_once, timeout_scale

pytestmark = pytest.mark.chainfire


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def test_a_leader_is_elected_and_every_member_is_a_voter(cluster):
    lead = cluster.leader()
    st = lead.status()
    assert st["role"] == "leader" and st["id"] == lead.id and st["term"] >= 1
    members = expect(lead.client().get(API + "/cluster/members"), 200)["members"]
    assert sorted(m["id"] for m in members) == [1, 2, 3]
    assert {m["role"] for m in members} == {"voter"}
    for f in cluster.followers():
        assert f.status()["role"] == "follower"


def test_put_on_leader_is_read_on_every_member(cluster):
    lead = cluster.leader()
    body = expect(put(lead.client(), "greeting", b"hello \x00\xff"), 200)
    rev = body["revision"]
    assert rev >= 1
    got = expect(get(lead.client(), "greeting"), 200)
    assert unb64(got["kv"]["value"]) == b"hello \x00\xff"
    assert got["kv"]["mod_revision"] == rev and got["kv"]["version"] == 1
    for m in cluster.members:
        wait_for(lambda m=m: value_of(get(m.client(), "greeting", serializable=True))
                   == b"hello \x00\xff")
    # A linearizable read on a follower is served by the leader.
    f = cluster.followers()[0]
    r = get(f.client(), "greeting")
    assert value_of(r) == b"hello \x00\xff"
    assert r.headers.get("X-Chainfire-Leader") == str(lead.id)


def test_a_forwarded_request_is_never_forwarded_again(cluster):
    """A request that already took its one hop and lands on a follower gets
    503 naming the leader, and nothing is written."""
    lead = cluster.leader()
    f = cluster.followers()[0]
    r = f.client().put(API + "/kv/" + b64("k") + "?forwarded=1", json={"value": b64("v")})
    err = assert_error(r, 503, "unavailable")
    assert "leader is %d" % lead.id in err["message"]
    assert r.headers.get("X-Chainfire-Leader") == str(lead.id)
    assert_error(get(lead.client(), "k"), 404, "not_found")


def cas(client, key, old, new):
    body = {"compare": [{"key": b64(key), "target": "value", "result": "=", "value": b64(old)}],
            "success": [{"put": {"key": b64(key), "value": b64(new)}}],
            "failure": [{"range": {"key": b64(key)}}]}
    return expect(client.post(API + "/txn", json=body), 200)


def test_txn_compare_and_swap(cluster):
    c = cluster.leader().client()
    expect(put(c, "lock", "free"), 200)
    assert cas(c, "lock", "free", "owner-a")["succeeded"] is True
    lost = cas(c, "lock", "free", "owner-b")
    assert lost["succeeded"] is False
    current = lost["responses"][0]["range"]["kvs"][0]
    assert unb64(current["value"]) == b"owner-a" and current["version"] == 2
    assert value_of(get(c, "lock")) == b"owner-a"
    # create-if-absent: version = 0
    body = {"compare": [{"key": b64("new"), "target": "version", "result": "=", "version": 0}],
            "success": [{"put": {"key": b64("new"), "value": b64("1")}}]}
    assert expect(c.post(API + "/txn", json=body), 200)["succeeded"] is True
    assert expect(c.post(API + "/txn", json=body), 200)["succeeded"] is False


def test_range_prefix_limit_and_delete(cluster):
    c = cluster.leader().client()
    for k in ("app/a", "app/b", "app/c", "apq"):
        expect(put(c, k, "x"), 200)
    r = expect(c.post(API + "/kv/range", json={"key": b64("app/"), "prefix": True, "limit": 2}),
               200)
    assert r["count"] == 3 and r["more"] is True and len(r["kvs"]) == 2
    assert [unb64(kv["key"]) for kv in r["kvs"]] == [b"app/a", b"app/b"]
    d = expect(c.delete(API + "/kv/" + b64("app/") + "?prefix=true"), 200)
    assert d["deleted"] == 3
    r = expect(c.post(API + "/kv/range", json={"key": b64("ap"), "prefix": True,
                                               "count_only": True}), 200)
    assert r["count"] == 1


def test_lease_expiry_deletes_its_key_on_every_member(cluster):
    lead = cluster.leader()
    c = lead.client()
    lease = expect(c.post(API + "/leases", json={"ttl": 1}), 201)
    lid = lease["id"]
    assert lease["ttl"] == 1 and lid > 0
    expect(put(c, "session", "alive", lease=lid), 200)
    expect(put(c, "plain", "stays"), 200)
    assert expect(c.get(API + "/leases/%d" % lid), 200)["keys"] == 1
    for m in cluster.members:
        wait_for(lambda m=m: get(m.client(), "session", serializable=True).status_code == 404)
    assert value_of(get(c, "plain")) == b"stays"
    assert_error(c.get(API + "/leases/%d" % lid), 404, "not_found")
    assert_error(put(c, "late", "x", lease=lid), 404, "not_found")


def test_keepalive_holds_a_lease_and_revoke_ends_it(cluster):
    c = cluster.leader().client()
    lid = expect(c.post(API + "/leases", json={"ttl": 2, "id": 4242}), 201)["id"]
    assert lid == 4242
    expect(put(c, "held", "v", lease=lid), 200)
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        ka = expect(c.post(API + "/leases/%d/keepalive" % lid), 200)
        assert ka["ttl"] == 2
        time.sleep(0.5)
    assert value_of(get(c, "held")) == b"v"
    assert expect(c.delete(API + "/leases/%d" % lid), 200)["deleted"] == 1
    assert_error(get(c, "held"), 404, "not_found")


class Writer(threading.Thread):
    """Puts w0, w1, ... to whoever leads, recording every acknowledged key."""

    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.acked = []
        self.stop = threading.Event()
        self.target = cluster.leader()

    def run(self):
        i = 0
        while not self.stop.is_set():
            key = "w%d" % i
            try:
                r = put(self.target.client(), key, "v%d" % i)
                ok = r.status_code == 200
            except Exception:  # noqa: BLE001 - the target may have been killed
                ok = False
            if ok:
                self.acked.append(key)
                i += 1
            else:
                try:
                    self.target = self.cluster.leader(timeout=1.0)
                except AssertionError:
                    time.sleep(0.05)


def test_kill_leader_under_writes_keeps_every_acknowledged_write(cluster):
    old = cluster.leader()
    w = Writer(cluster)
    w.start()
    wait_for(lambda: len(w.acked) >= 20)
    old.daemon.kill()  # SIGKILL
    t0 = time.monotonic()
    new = cluster.leader(timeout=10.0, exclude=(old.id,))
    elected_in = time.monotonic() - t0
    assert new.id != old.id
    before = len(w.acked)
    wait_for(lambda: len(w.acked) >= before + 20)
    w.stop.set()
    w.join(timeout=10)
    assert elected_in < 5.0 * timeout_scale(), "new leader took %.1fs" % elected_in
    r = expect(new.client().post(API + "/kv/range", json={"key": b64("w"), "prefix": True}), 200)
    present = {unb64(kv["key"]).decode() for kv in r["kvs"]}
    missing = [k for k in w.acked if k not in present]
    assert not missing, "acknowledged writes lost: %s" % missing[:10]


def test_minority_member_answers_503_within_the_deadline(cluster):
    lead = cluster.leader()
    alone = cluster.followers()[0]
    for m in cluster.members:
        if m is not alone:
            m.daemon.kill()
    limit = cluster.request_timeout_ms / 1000.0 + 2.0 * timeout_scale()
    for attempt in range(3):
        t0 = time.monotonic()
        r = put(alone.client(), "k%d" % attempt, "v")
        took = time.monotonic() - t0
        assert_error(r, 503)
        assert took < limit, "503 after %.1fs" % took
        t0 = time.monotonic()
        r = get(alone.client(), "k")
        assert_error(r, 503)
        assert time.monotonic() - t0 < limit
    assert lead.id != alone.id


def test_leader_left_alone_answers_503_within_the_deadline(cluster):
    lead = cluster.leader()
    for m in cluster.followers():
        m.daemon.kill()
    limit = cluster.request_timeout_ms / 1000.0 + 2.0 * timeout_scale()
    t0 = time.monotonic()
    r = put(lead.client(), "k", "v")
    assert_error(r, 503)
    assert time.monotonic() - t0 < limit


def test_bad_input_and_auth(cluster):
    lead = cluster.leader()
    c = lead.client()
    assert_error(c.put(API + "/kv/not=base64", json={"value": b64("v")}), 400, "invalid_argument")
    assert_error(c.put(API + "/kv/" + b64("k"), json={"value": "!!"}), 400, "invalid_argument")
    assert_error(c.put(API + "/kv/" + b64("x" * 1537), json={"value": b64("v")}), 413,
                 "too_large")
    assert_error(c.put(API + "/kv/" + b64("k"), json={"value": b64("v"), "bogus": 1}), 400)
    assert_error(c.post(API + "/txn", json={"compare": [{"key": b64("k"), "target": "nope",
                                                         "result": "="}]}), 400)
    assert_error(lead.client(token="").get(API + "/kv/" + b64("k")), 401, "unauthenticated")
    user = cluster.iam.new_user("admin")
    uc = lead.client(token=user.token)
    assert_error(uc.get(API + "/cluster/status"), 403, "permission_denied")
    expect(put(uc, "by-user", "v"), 200)  # any valid token may use the KV API
    assert expect(c.post(API + "/kv/range", json={"key": b64("k"), "prefix": True}),
                  200)["count"] == 0


def test_value_size_limit_is_exact(cluster):
    c = cluster.leader().client()
    big = b"\xab" * (1024 * 1024)
    expect(put(c, "big", big), 200)
    assert value_of(get(c, "big")) == big
    assert_error(put(c, "big", big + b"x"), 413, "too_large")
    assert value_of(get(c, "big")) == big


@pytest.mark.startup
@pytest.mark.parametrize("args,message", [
    (["--listen", "0.0.0.0"], "--advertise-url is required"),
    (["--advertise-url", "ftp://x:1"], "--advertise-url must start with http://"),
    (["--initial-cluster", "2=127.0.0.1:1,3=127.0.0.1:2"], "does not list this member"),
    (["--initial-cluster", "1=127.0.0.1:1,1=127.0.0.1:2"], "member 1 is listed twice"),
    (["--initial-cluster", "1=nowhere"], "'1=nowhere' is not id=host:port"),
])
def test_bad_cluster_options_stop_start_up(tmp_path, args, message):
    cp = run_once(binary("chainfire"), ["--node-id", "1", "--data-dir", str(tmp_path / "d"),
                                        "--iam-jwks-url", "http://127.0.0.1:9/keys"] + args)
    assert cp.returncode == 2, cp.stderr_text
    assert message in cp.stderr_text and len(cp.stderr_text.strip().splitlines()) == 1, \
        cp.stderr_text
