"""chainfire followers forward writes and linearizable reads to the leader at
the API URL it published through the log; serializable reads stay local, and
with no leader the client still gets 503 (docs/api/chainfire.md
"Consistency")."""

import pytest

from cfharness import API, Cluster, b64, get, put, value_of
from ucharness import expect

pytestmark = pytest.mark.chainfire


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cffwd"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def test_writes_and_reads_through_every_member(cluster):
    lead = cluster.leader()
    for m in cluster.members:
        c = m.client()
        r = put(c, "via-%d" % m.id, "from %d" % m.id)
        expect(r, 200)
        if m is not lead:
            assert r.headers.get("X-Chainfire-Leader") == str(lead.id)
        for other in cluster.members:
            assert value_of(get(other.client(), "via-%d" % m.id)) == b"from %d" % m.id


def test_txn_lease_and_delete_through_a_follower(cluster):
    f = cluster.followers()[0]
    c = f.client()
    lid = expect(c.post(API + "/leases", json={"ttl": 30}), 201)["id"]
    expect(put(c, "fl", "v", lease=lid), 200)
    assert expect(c.post(API + "/leases/%d/keepalive" % lid), 200)["keys"] == 1
    body = {"compare": [{"key": b64("fl"), "target": "version", "result": "=", "version": 1}],
            "success": [{"put": {"key": b64("fl"), "value": b64("w")}}]}
    assert expect(c.post(API + "/txn", json=body), 200)["succeeded"] is True
    assert expect(c.delete(API + "/kv/" + b64("f") + "?prefix=true"), 200)["deleted"] >= 1
    r = get(c, "fl")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert r.json()["error"]["request_id"] == r.headers["X-Request-Id"], \
        "the leader answered under another request id than the follower's"
    r = expect(c.post(API + "/kv/range", json={"key": b64("via-"), "prefix": True}), 200)
    assert r["count"] == 3


def test_no_leader_still_answers_503(cluster):
    alone = cluster.followers()[0]
    for m in cluster.members:
        if m is not alone:
            m.daemon.kill()
    r = put(alone.client(), "k", "v")
    assert r.status_code == 503
