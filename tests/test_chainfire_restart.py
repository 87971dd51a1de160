"""chainfire state on disk: a whole cluster restarted from its data dirs
keeps every key, revision and lease; a member that was down while the
others took snapshots catches up (docs/api/chainfire.md)."""

import pytest

from cfharness import API, Cluster, b64, get, put, unb64, value_of, wait_for
from ucharness import expect

pytestmark = [pytest.mark.chainfire, pytest.mark.restart]


@pytest.fixture
def cluster(tmp_path):
    # A low snapshot threshold so a few dozen writes take snapshots.
    c = Cluster(tmp_path, extra_args=("--snapshot-threshold", "16"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def test_full_cluster_restart_keeps_keys_revisions_and_leases(cluster):
    c = cluster.leader().client()
    for i in range(40):
        expect(put(c, "k%02d" % i, "v%d" % i), 200)
    lid = expect(c.post(API + "/leases", json={"ttl": 600}), 201)["id"]
    expect(put(c, "leased", "x", lease=lid), 200)
    rev = expect(get(c, "k39"), 200)["revision"]
    for m in cluster.members:
        m.daemon.stop()
    for m in cluster.members:
        m.start()
    c = cluster.leader().client()
    r = expect(c.post(API + "/kv/range", json={"key": b64("k"), "prefix": True}), 200)
    assert r["count"] == 40 and r["revision"] == rev
    assert unb64(r["kvs"][7]["value"]) == b"v7"
    assert expect(c.get(API + "/leases/%d" % lid), 200)["keys"] == 1
    assert cluster.leader().status()["snapshot_index"] > 0


def test_member_down_during_snapshots_catches_up(cluster):
    lead = cluster.leader()
    lagging = cluster.followers()[0]
    lagging.daemon.stop()
    c = lead.client()
    for i in range(60):
        expect(put(c, "late%02d" % i, "v%d" % i), 200)
    wait_for(lambda: lead.status()["snapshot_index"] > 0)
    lagging.start()
    wait_for(lambda: get(lagging.client(), "late59", serializable=True).status_code == 200)
    assert value_of(get(lagging.client(), "late59", serializable=True)) == b"v59"
    r = expect(lagging.client().post(API + "/kv/range", json={
        "key": b64("late"), "prefix": True, "count_only": True, "serializable": True}), 200)
    assert r["count"] == 60


def test_leader_compacts_history_beyond_the_retained_revisions(tmp_path):
    c = Cluster(tmp_path, extra_args=("--compact-retain", "10"))
    try:
        c.start()
        lead = c.leader()
        cl = lead.client()
        for i in range(30):
            expect(put(cl, "h", "v%d" % i), 200)

        def settled():
            st = lead.status()
            return st["compact_revision"] > 0 and st["revision"] - st["compact_revision"] <= 12

        wait_for(settled)  # nothing more to compact: the point no longer moves
        st = lead.status()
        assert st["compact_revision"] >= 18
        r = cl.post(API + "/kv/range", json={"key": b64("h"), "revision": 1})
        assert r.status_code == 400 and "compacted" in r.json()["error"]["message"]
        assert value_of(get(cl, "h")) == b"v29"
        for m in c.members:  # applied through the log: every member compacted
            wait_for(lambda m=m: m.status()["compact_revision"] == st["compact_revision"])
    finally:
        c.stop()
