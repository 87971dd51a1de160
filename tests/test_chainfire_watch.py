"""chainfire watches: a newline-delimited JSON stream of every change to a
key or prefix, in order, from a revision; a compacted start revision is
refused with the oldest available one (docs/api/chainfire.md "Watch")."""

import json

import pytest

from cfharness import API, Cluster, b64, put, unb64
from ucharness import assert_error, expect

pytestmark = pytest.mark.chainfire


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cfwatch"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def open_watch(member, body):
    r = member.client().post(API + "/watch", json=body, stream=True)
    assert r.status_code == 200, r.text
    assert r.headers.get("Content-Type", "").startswith("application/x-ndjson")
    lines = r.iter_lines()
    first = json.loads(next(lines))
    assert first["watching"] is True
    return r, lines, first


def read_events(lines, n):
    """The next n events as (type, key, mod_revision); a stream that stalls
    fails on the client's read timeout."""
    out = []
    for line in lines:
        if not line:
            continue
        ev = json.loads(line)
        assert "error" not in ev, ev
        out.append((ev["type"], unb64(ev["kv"]["key"]).decode(), ev["kv"]["mod_revision"]))
        if len(out) == n:
            break
    assert len(out) == n, "stream ended after %d events" % len(out)
    return out


def test_watch_on_a_prefix_streams_changes_in_order(cluster):
    lead = cluster.leader()
    c = lead.client()
    resp, lines, first = open_watch(lead, {"key": b64("jobs/"), "prefix": True})
    try:
        r1 = expect(put(c, "jobs/1", "a"), 200)["revision"]
        expect(put(c, "other", "x"), 200)
        r2 = expect(put(c, "jobs/2", "b"), 200)["revision"]
        r3 = expect(c.delete(API + "/kv/" + b64("jobs/1")), 200)["revision"]
        assert r1 > first["revision"]
        assert read_events(lines, 3) == [("put", "jobs/1", r1), ("put", "jobs/2", r2),
                                         ("delete", "jobs/1", r3)]
    finally:
        resp.close()


def test_watch_from_a_past_revision_replays_history_on_a_follower(cluster):
    c = cluster.leader().client()
    r1 = expect(put(c, "cfg", "v1"), 200)["revision"]
    r2 = expect(put(c, "cfg", "v2"), 200)["revision"]
    follower = cluster.followers()[0]
    resp, lines, _ = open_watch(follower, {"key": b64("cfg"), "start_revision": r1})
    try:
        assert read_events(lines, 2) == [("put", "cfg", r1), ("put", "cfg", r2)]
    finally:
        resp.close()


def test_watch_from_a_compacted_revision_names_the_oldest(cluster):
    c = cluster.leader().client()
    expect(put(c, "old", "1"), 200)
    rev = expect(put(c, "old", "2"), 200)["revision"]
    expect(c.post(API + "/compaction", json={"revision": rev}), 200)
    r = c.post(API + "/watch", json={"key": b64("old"), "start_revision": rev - 1})
    err = assert_error(r, 400, "invalid_argument")
    assert "oldest available is %d" % (rev + 1) in err["message"]
    assert_error(c.post(API + "/watch", json={"key": "=="}), 400, "invalid_argument")
