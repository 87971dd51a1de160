"""chainfire membership through the API on real processes: a learner joins,
catches up, is promoted and takes the leadership; the current leader removes
itself and the rest elect a new one; the removed member comes back with an
empty data dir; the cluster shrinks back to three; a member's raft address
is replaced; changes run one at a time (409 busy); a member added later is
forwarded to without restarting anyone (docs/api/chainfire.md)."""

import threading
import time

import pytest

from cfharness import API, Cluster, get, put, value_of, wait_for
from ucharness import assert_error, expect

pytestmark = pytest.mark.chainfire


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def roles(body):
    return {m["id"]: m["role"] for m in body["members"]}


def join(cluster, via, node_id=None):
    """Start an empty member, add it as a learner through `via`, wait until
    it holds the data, promote it. Returns the new member."""
    new = cluster.add_member(node_id)
    c = via.client()
    added = expect(c.post(API + "/cluster/members",
                          json={"id": new.id, "address": new.raft_address}), 201)
    assert roles(added)[new.id] == "learner"
    wait_for(lambda: value_of(get(new.client(), "before", serializable=True)) == b"1")
    promoted = expect(c.post(API + "/cluster/members/%d/promote" % new.id), 200)
    assert roles(promoted)[new.id] == "voter"
    return new


def leave(cluster, m):
    m.daemon.stop()
    cluster.members.remove(m)


def test_grow_hand_over_remove_the_leader_readd_and_shrink_back_to_three(cluster):
    lead = cluster.leader()
    expect(put(lead.client(), "before", "1"), 200)
    four = join(cluster, lead)
    assert_error(lead.client().post(API + "/cluster/members",
                                    json={"id": four.id, "address": four.raft_address}), 409)

    expect(lead.client().post(API + "/cluster/leader", json={"id": four.id}), 200)
    assert cluster.leader().id == four.id

    # The current leader removes itself: the change commits, it steps down,
    # and the other three elect a new leader.
    left = expect(four.client().delete(API + "/cluster/members/%d" % four.id), 200)
    assert four.id not in roles(left) and len(left["members"]) == 3
    four.daemon.stop()
    now = cluster.leader(exclude=(four.id,))
    expect(put(now.client(), "after", "2"), 200)

    # The removed member comes back under its id with an empty data dir,
    # added through a follower (forwarded to the leader).
    four.wipe()
    four.start()
    via = next(m for m in cluster.running() if m.id not in (now.id, four.id))
    expect(via.client().post(API + "/cluster/members",
                             json={"id": four.id, "address": four.raft_address}), 201)
    wait_for(lambda: value_of(get(four.client(), "after", serializable=True)) == b"2")
    assert roles(expect(via.client().post(API + "/cluster/members/%d/promote" % four.id),
                        200))[four.id] == "voter"

    # Back to three: a follower leaves.
    gone = next(m for m in cluster.followers() if m.id != four.id)
    body = expect(now.client().delete(API + "/cluster/members/%d" % gone.id), 200)
    assert sorted(roles(body)) == sorted(m.id for m in cluster.members if m is not gone)
    assert set(roles(body).values()) == {"voter"}
    leave(cluster, gone)
    lead = cluster.leader()
    expect(put(lead.client(), "three", "3"), 200)
    for m in cluster.members:
        wait_for(lambda m=m: value_of(get(m.client(), "three", serializable=True)) == b"3")
        assert value_of(get(m.client(), "before")) == b"1"


def test_a_member_added_later_is_forwarded_to_without_restarts(cluster):
    lead = cluster.leader()
    expect(put(lead.client(), "before", "1"), 200)
    four = join(cluster, lead)
    r = put(four.client(), "from-four", "x")  # the new follower forwards
    expect(r, 200)
    assert r.headers.get("X-Chainfire-Leader") == str(lead.id)

    expect(lead.client().post(API + "/cluster/leader", json={"id": four.id}), 200)
    assert cluster.leader().id == four.id
    # Every other member learned the new leader's URL through the log.
    for m in cluster.members:
        if m is not four:
            r = put(m.client(), "to-four-%d" % m.id, "y")
            expect(r, 200)
            assert r.headers.get("X-Chainfire-Leader") == str(four.id)
    members = expect(lead.client().get(API + "/cluster/members"), 200)["members"]
    assert {m["id"]: m.get("api_url") for m in members}[four.id] == four.daemon.base_url
    st = lead.status()
    assert st["leader"]["api_url"] == four.daemon.base_url
    assert st["api_url"] == lead.daemon.base_url


def test_a_second_change_while_one_is_in_flight_gets_409_busy(tmp_path):
    # A long deadline keeps the doomed transfer below in flight for a while.
    cluster = Cluster(tmp_path, request_timeout_ms=6000)
    try:
        cluster.start()
        check_busy(cluster)
    finally:
        cluster.stop()


def check_busy(cluster):
    lead = cluster.leader()
    c = lead.client()
    # Leadership handed to a stopped voter: raft's attempt lapses and is
    # retried until the deadline, so the change stays in flight for seconds.
    gone = cluster.followers()[0]
    gone.daemon.stop()
    answers = []
    # A loaded machine can delay the transfer's arrival past our polling;
    # the 409 must show up in one of a few rounds, each bounded by the
    # transfer's own answer.
    for _ in range(3):
        slow = {}
        t = threading.Thread(target=lambda: slow.setdefault(
            "r", c.post(API + "/cluster/leader", json={"id": gone.id})))
        t.start()
        seen = None
        while t.is_alive() and seen is None:
            r = c.delete(API + "/cluster/members/77")  # 404 while nothing is in flight
            if r.status_code == 409:
                seen = r
            else:
                time.sleep(0.02)
        t.join(timeout=60)
        answers.append((seen.text if seen is not None else None, slow["r"].status_code,
                        slow["r"].text))
        if slow["r"].status_code == 409 and seen is None:
            # The last round's transfer outlived its answer (raft settles it
            # later) and this one was the second change: the same proof.
            seen = slow["r"]
        else:
            assert_error(slow["r"], 503)
        if seen is not None:
            break
    assert seen is not None, "no 409 while a transfer was in flight: %s" % answers
    err = assert_error(seen, 409, "busy")
    assert "in flight" in err["message"]
    assert cluster.leader().id == lead.id
    # Once settled the next change goes through: 404 for a member never seen.
    wait_for(lambda: c.delete(API + "/cluster/members/77").status_code == 404)


def test_replace_a_members_raft_address(cluster):
    lead = cluster.leader()
    c = lead.client()
    expect(put(c, "before", "1"), 200)
    f = cluster.followers()[0]
    old = f.raft_address
    assert_error(c.put(API + "/cluster/members/%d" % lead.id, json={"address": "127.0.0.1:1"}),
                 409)
    assert_error(c.put(API + "/cluster/members/77", json={"address": "127.0.0.1:1"}), 404)
    assert_error(c.put(API + "/cluster/members/%d" % f.id, json={"address": old}), 409)
    assert_error(c.put(API + "/cluster/members/%d" % f.id, json={"address": "nohost"}), 400)
    assert_error(c.put(API + "/cluster/members/%d" % f.id, json={}), 400)

    # The operator procedure: stop it, empty its data dir, start it at the
    # new address without bootstrapping, then tell the leader.
    f.daemon.stop()
    f.wipe()
    f.move()
    f.bootstrap = False
    f.start()
    body = expect(c.put(API + "/cluster/members/%d" % f.id, json={"address": f.raft_address}),
                  200)
    mine = next(m for m in body["members"] if m["id"] == f.id)
    assert mine["address"] == f.raft_address != old and mine["role"] == "voter"
    wait_for(lambda: value_of(get(f.client(), "before", serializable=True)) == b"1")
    expect(put(f.client(), "after", "2"), 200)
    assert value_of(get(c, "after")) == b"2"


def test_membership_changes_need_system_admin_and_go_to_the_leader(cluster):
    lead = cluster.leader()
    f = cluster.followers()[0]
    r = f.client().delete(API + "/cluster/members/99")  # the leader's answer, relayed
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    assert r.headers.get("X-Chainfire-Leader") == str(lead.id)
    assert_error(lead.client().post(API + "/cluster/members/%d/promote" % lead.id), 400)
    assert_error(lead.client().post(API + "/cluster/members", json={"id": 0, "address": "x:1"}),
                 400)
    assert_error(lead.client().post(API + "/cluster/members",
                                    json={"id": 5, "address": "x:1", "api_url": "ftp://x"}), 400)
    user = cluster.iam.new_user("admin")
    uc = lead.client(token=user.token)
    assert_error(uc.post(API + "/cluster/leader", json={}), 403)
    assert_error(uc.get(API + "/cluster/members"), 403)
    assert_error(uc.delete(API + "/cluster/members/%d" % f.id), 403)
