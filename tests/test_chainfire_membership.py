"""chainfire membership through the API: a new member joins as a learner,
catches up, is promoted, takes the leadership by transfer, and the old
leader is removed while the cluster keeps serving (docs/api/chainfire.md)."""

import time

import pytest

from cfharness import API, Cluster, get, put, value_of
from ucharness import assert_error, expect, timeout_scale

pytestmark = pytest.mark.chainfire


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def wait_for(fn, timeout=15.0):
    deadline = time.monotonic() + timeout * timeout_scale()
    while True:
        try:
            if fn():
                return
        except (AssertionError, KeyError):
            pass
        assert time.monotonic() < deadline, "condition not met within %.0fs" % timeout
        time.sleep(0.05)


def roles(body):
    return {m["id"]: m["role"] for m in body["members"]}


def test_learner_add_promote_transfer_and_remove_the_leader(cluster):
    lead = cluster.leader()
    c = lead.client()
    expect(put(c, "before", "1"), 200)
    new = cluster.add_member()
    added = expect(c.post(API + "/cluster/members",
                          json={"id": new.id, "address": new.raft_address}), 201)
    assert roles(added)[new.id] == "learner"
    wait_for(lambda: value_of(get(new.client(), "before", serializable=True)) == b"1")

    promoted = expect(c.post(API + "/cluster/members/%d/promote" % new.id), 200)
    assert roles(promoted)[new.id] == "voter"
    assert_error(c.post(API + "/cluster/members",
                        json={"id": new.id, "address": new.raft_address}), 409)

    expect(c.post(API + "/cluster/leader", json={"id": new.id}), 200)
    assert cluster.leader().id == new.id

    nc = new.client()
    left = expect(nc.delete(API + "/cluster/members/%d" % lead.id), 200)
    assert lead.id not in roles(left) and len(left["members"]) == 3
    lead.daemon.stop()
    cluster.members.remove(lead)
    now = cluster.leader()
    expect(put(now.client(), "after", "2"), 200)
    assert value_of(get(now.client(), "before")) == b"1"


def test_membership_changes_need_the_leader_and_system_admin(cluster):
    lead = cluster.leader()
    f = cluster.followers()[0]
    assert_error(f.client().post(API + "/cluster/members/%d/promote" % lead.id), 503)
    assert_error(lead.client().delete(API + "/cluster/members/99"), 404)
    assert_error(lead.client().post(API + "/cluster/members", json={"id": 0, "address": "x:1"}),
                 400)
    user = cluster.iam.new_user("admin")
    assert_error(lead.client(token=user.token).post(API + "/cluster/leader", json={}), 403)
