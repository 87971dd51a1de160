"""flaredb membership and backups on real processes: a learner joins and
catches up from a snapshot (the others' logs no longer reach back to the
start), is promoted and
takes the leadership, then a member is removed and the rest go on; a backup
taken through a follower restores into a brand-new cluster with every row,
blob, key and restriction; bad start-up options stop the daemon with exit
code 2 (docs/api/flaredb.md, docs/operations.md)."""

import pytest

from fdbharness import (API, FdbCluster, expect, fdb_error, kv_get, kv_put, kv_value, rows,
                        settle, sql, wait_for)
from ucharness import binary, run_once

pytestmark = pytest.mark.flaredb


def roles(body):
    return {m["id"]: m["role"] for m in body["members"]}


def test_learner_joins_is_promoted_leads_and_a_member_leaves(tmp_path):
    cluster = FdbCluster(tmp_path, extra_args=("--snapshot-threshold", "16"))
    try:
        cluster.start()
        lead = cluster.leader()
        c = lead.client()
        expect(sql(c, "CREATE TABLE grow(id INTEGER PRIMARY KEY, v TEXT)"), 200)
        for i in range(200):  # past what the logs keep: the learner starts from a snapshot
            expect(sql(c, ("INSERT INTO grow(v) VALUES (?)", ["v%d" % i])), 200)
        via = cluster.followers()[0]  # before the new member runs (it knows no leader yet)
        four = cluster.add_member()
        added = expect(via.client().post(API + "/cluster/members",
                                         json={"id": four.id, "address": four.raft_address}), 201)
        assert roles(added)[four.id] == "learner"
        wait_for(lambda: rows(sql(four.client(), "SELECT count(*) FROM grow",
                                  consistency="serializable")) == [[200]])
        assert "restored the snapshot" in four.daemon.stderr_text()
        # a learner forwards writes like any follower
        expect(sql(four.client(), ("INSERT INTO grow(v) VALUES (?)", ["from the learner"])), 200)
        promoted = expect(c.post(API + "/cluster/members/%d/promote" % four.id), 200)
        assert roles(promoted)[four.id] == "voter"
        expect(c.post(API + "/cluster/leader", json={"id": four.id}), 200)
        assert cluster.leader().id == four.id
        # one of the first three leaves; four members become three
        gone = cluster.member(1)
        left = expect(four.client().delete(API + "/cluster/members/%d" % gone.id), 200)
        assert gone.id not in roles(left) and len(left["members"]) == 3
        gone.daemon.stop()
        cluster.members.remove(gone)
        expect(sql(cluster.leader().client(), ("INSERT INTO grow(v) VALUES (?)", ["after"])), 200)
        count, _ = settle(cluster, "grow")
        assert count == 202
    finally:
        cluster.stop()


def test_a_backup_restores_into_a_new_cluster(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = FdbCluster(tmp_path / "a")
    b = None
    try:
        a.start()
        c = a.leader().client()
        expect(sql(c, "CREATE TABLE saved(id INTEGER PRIMARY KEY, v TEXT, b BLOB)"), 200)
        expect(sql(c, *[("INSERT INTO saved(v, b) VALUES (?, ?)", ["v%d" % i,
                                                                  {"blob": "AP8"}])
                        for i in range(40)]), 200)
        expect(sql(c, "CREATE INDEX saved_v ON saved(v)"), 200)
        expect(kv_put(c, "saved", "k", b"\x00\xff"), 200)
        project = a.iam.create_project()["id"]
        expect(c.put(API + "/acl/tables/saved", json={"project": project}), 200)
        want = settle(a, "saved")
        r = a.followers()[0].client().get(API + "/cluster/backup")  # forwarded to the leader
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/octet-stream"
        assert r.content[:8] == b"ucbackup"
        path = tmp_path / "flaredb.backup"
        path.write_bytes(r.content)
        user = a.iam.new_user("admin", project)
        fdb_error(a.leader().client(token=user.token).get(API + "/cluster/backup"), 403)

        b = FdbCluster(tmp_path / "b", iam=a.iam, restore_from=str(path))
        b.start()
        lead = b.leader()
        wait_for(lambda: lead.status()["restore"]["state"] == "done")
        assert settle(b, "saved") == want
        assert kv_value(kv_get(lead.client(), "saved", "k")) == b"\x00\xff"
        acl = expect(lead.client().get(API + "/acl"), 200)["items"]
        assert acl == [{"kind": "table", "name": "saved", "project": project}]
        names = [t["name"] for t in expect(lead.client().get(API + "/tables"), 200)["tables"]]
        assert names == ["saved"]
        expect(sql(lead.client(), ("INSERT INTO saved(v) VALUES (?)", ["new"])), 200)
        assert settle(b, "saved")[0] == 41
    finally:
        if b is not None:
            b.stop()
        a.stop()


@pytest.mark.startup
@pytest.mark.parametrize("args,message", [
    (["--statement-timeout-ms", "5"], "--statement-timeout-ms"),
    (["--max-steps", "10"], "--max-steps"),
    (["--readers", "0"], "--readers"),
    (["--max-value-bytes", "abc"], "--max-value-bytes"),
    (["--initial-cluster", "1=127.0.0.1:7301,1=127.0.0.1:7302"], "listed twice"),
    (["--restore-from", "/nonexistent/flaredb.backup"], "--restore-from"),
])
def test_bad_options_stop_start_up(tmp_path, args, message):
    cp = run_once(binary("flaredb"), [
        "--node-id", "1", "--data-dir", str(tmp_path / "data"),
        "--iam-jwks-url", "http://127.0.0.1:9/api/v1/keys"] + args)
    assert cp.returncode == 2, cp.stderr_text
    assert message in cp.stderr_text, cp.stderr_text
