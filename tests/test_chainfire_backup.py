"""chainfire backup and restore on real processes: GET /api/v1/cluster/backup
of a 3-member cluster (through a follower), loaded with --restore-from into a
brand-new 3-member cluster with its own data dirs, where every key, value
and revision is back; a cluster that holds data refuses a restore and stays
up; a bad backup file stops start-up with exit code 2
(docs/operations.md "Backup and restore")."""

import hashlib
import struct

import pytest

from cfharness import API, Cluster, b64, get, put, unb64, value_of, wait_for
from ucharness import assert_error, binary, expect, run_once

pytestmark = pytest.mark.chainfire

HDR = 96


def parse_backup(data):
    """(service, index, payload) of a backup, checking its header."""
    magic, version, hdr_len, service, index, length, sha = struct.unpack(
        "<8sII32sQQ32s", data[:HDR])
    assert magic == b"ucbackup" and version == 1 and hdr_len == HDR
    payload = data[HDR:]
    assert length == len(payload) and hashlib.sha256(payload).digest() == sha
    return service.rstrip(b"\0").decode(), index, payload


def make_backup(payload, service=b"chainfire", index=7):
    head = struct.pack("<8sII32sQQ32s", b"ucbackup", 1, HDR, service, index, len(payload),
                       hashlib.sha256(payload).digest())
    return head + payload


def everything(member):
    """Every key with its record, as the member's leader sees it."""
    r = expect(member.client().post(API + "/kv/range", json={"key": "AA", "range_end": "AA"}),
               200)
    return r["revision"], r["kvs"]


def restore_state(member):
    return member.status()["restore"]


def test_backup_restores_into_a_new_cluster(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Cluster(tmp_path / "a")
    b = None
    try:
        a.start()
        c = a.leader().client()
        for i in range(50):
            expect(put(c, "k%02d" % i, b"\x00\xffv%d" % i), 200)
        expect(put(c, "k07", "changed"), 200)
        expect(c.delete(API + "/kv/" + b64("k13")), 200)
        lid = expect(c.post(API + "/leases", json={"ttl": 600}), 201)["id"]
        expect(put(c, "leased", "x", lease=lid), 200)
        rev, kvs = everything(a.leader())

        f = a.followers()[0]
        r = f.client().get(API + "/cluster/backup")  # forwarded to the leader
        assert r.status_code == 200, r.text[:300]
        assert r.headers["Content-Type"] == "application/octet-stream"
        service, index, _ = parse_backup(r.content)
        assert service == "chainfire" and index > 0
        user = a.iam.new_user("admin")
        assert_error(a.leader().client(token=user.token).get(API + "/cluster/backup"), 403)
        path = tmp_path / "chainfire.backup"
        path.write_bytes(r.content)

        # A brand-new cluster; every member may be given the file, whichever
        # leads first loads it.
        b = Cluster(tmp_path / "b", iam=a.iam, restore_from=str(path))
        b.start()
        lead = b.leader()
        wait_for(lambda: restore_state(lead)["state"] == "done")
        assert everything(lead) == (rev, kvs)
        assert unb64(kvs[0]["value"]) == b"\x00\xffv0"
        assert expect(lead.client().get(API + "/leases/%d" % lid), 200)["keys"] == 1
        for m in b.members:
            wait_for(lambda m=m: restore_state(m)["index"] > 0)
            assert value_of(get(m.client(), "k07")) == b"changed"
        assert_error(get(lead.client(), "k13"), 404)
        expect(put(lead.client(), "new", "1"), 200)

        # A member restarted with the flag still set knows it is done.
        m = b.followers()[0]
        m.daemon.restart()
        st = wait_for(lambda: restore_state(m)["state"] == "done" and restore_state(m))
        assert st["index"] > 0 and "already" in st["message"]
        assert value_of(get(m.client(), "new")) == b"1"
    finally:
        if b is not None:
            b.stop()
        a.stop()


def test_a_cluster_with_data_refuses_a_restore_and_stays_up(tmp_path):
    c = Cluster(tmp_path, size=1)
    try:
        c.start()
        m = c.members[0]
        expect(put(m.client(), "first", "1"), 200)
        data = m.client().get(API + "/cluster/backup").content
        parse_backup(data)
        expect(put(m.client(), "second", "2"), 200)
        path = tmp_path / "b.backup"
        path.write_bytes(data)
        m.daemon.stop()
        m.restore_from = str(path)
        m.start()
        st = wait_for(lambda: restore_state(m)["state"] == "refused" and restore_state(m))
        assert "holds data already" in st["message"] and st["from_file"] is True
        assert value_of(get(m.client(), "second")) == b"2"
        assert "refused" in m.daemon.stderr_text() or "ignored" in m.daemon.stderr_text()
    finally:
        c.stop()


@pytest.mark.startup
@pytest.mark.parametrize("name,content,message", [
    ("missing", None, "no such file"),
    ("garbage", b"not a backup at all", "not a backup file"),
    ("short", b"ucbackup\x01\x00", "truncated"),
    ("flaredb", make_backup(b"{}", service=b"flaredb"), "a backup of 'flaredb', not of chainfire"),
    ("truncated", make_backup(b"{\"revision\": 1}")[:-3], "truncated"),
    ("corrupt", make_backup(b"{\"revision\": 1}")[:-1] + b"!", "checksum mismatch"),
])
def test_a_bad_backup_file_stops_start_up(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    cp = run_once(binary("chainfire"), [
        "--node-id", "1", "--data-dir", str(tmp_path / "data"), "--restore-from", str(path),
        "--iam-jwks-url", "http://127.0.0.1:9/api/v1/keys"])
    assert cp.returncode == 2, cp.stderr_text
    assert message in cp.stderr_text and "--restore-from" in cp.stderr_text, cp.stderr_text
    assert not (tmp_path / "data").exists()
