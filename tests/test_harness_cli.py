"""The test-cluster harness's command line on a small real cluster in
loopback mode (no root needed): start, status, kill, stop-node/start-node,
stop, clean; and every kind of bad input: unknown commands, nodes,
daemons, lanes and options (exit 2), faults this mode cannot do (exit 3),
and a lane refused over a half-started cluster (exit 2, nothing touched).

Each test cluster gets its own description: its own state directory under
work/ and node addresses 127.0.100.111-114, apart from the real harness's."""

import json
import os
import shutil
import subprocess
import time

import pytest

from ucharness import REPO, build_dir, timeout_scale

CLI = os.path.join(REPO, "test-cluster", "cluster")
PY = "/usr/bin/python3"


def small_description(tag):
    """node01-03 with iam and chainfire, node04 a worker, all renumbered to
    .111-.114 and living under work/<tag>/."""
    with open(os.path.join(REPO, "test-cluster", "cluster.json")) as f:
        text = f.read()
    for i in range(11, 17):
        text = text.replace("10.100.0.%d" % i, "10.100.0.1%d" % i)
    text = text.replace("work/cluster", "work/%s/cluster" % tag)
    obj = json.loads(text)
    obj["nodes"] = obj["nodes"][:4]
    for n in obj["nodes"]:
        n["services"].pop("flaredb", None)
    return obj


@pytest.fixture
def harness(tmp_path):
    """run(*args) -> CompletedProcess of the CLI against a private loopback
    cluster; the cluster is cleaned (and its directory removed) afterwards."""
    tag = "pytest-harness-%d" % os.getpid()
    desc = tmp_path / "cluster.json"
    desc.write_text(json.dumps(small_description(tag)))
    env = dict(os.environ, UC_CLUSTER_DESCRIPTION=str(desc), UC_CLUSTER_MODE="loopback",
               UC_CLUSTER_BIN=os.path.join(build_dir(), "bin"))

    def run(*args, timeout=120):
        return subprocess.run([PY, CLI] + list(args), capture_output=True, text=True, env=env,
                              timeout=timeout * timeout_scale(), cwd=REPO)
    run.tag = tag
    yield run
    cp = run("clean")
    shutil.rmtree(os.path.join(REPO, "work", tag), ignore_errors=True)
    assert cp.returncode == 0, cp.stderr


def check_built():
    for d in ("iam", "chainfire"):
        path = os.path.join(build_dir(), "bin", d)
        if not os.access(path, os.X_OK):
            pytest.fail("%s not built (run make)" % path, pytrace=False)


def status(run):
    cp = run("status", "--json")
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)


def leader_everywhere(run, timeout=20.0, exclude=None):
    """The chainfire leader every running member names (not `exclude`)."""
    deadline = time.monotonic() + timeout * timeout_scale()
    while time.monotonic() < deadline:
        st = status(run)
        leaders = {n["daemons"]["chainfire"].get("leader")
                   for n in st["nodes"].values() if "chainfire" in n["daemons"] and
                   n["daemons"]["chainfire"]["state"] == "running"}
        if len(leaders) == 1 and None not in leaders and exclude not in leaders:
            return leaders.pop(), st
        time.sleep(0.2)
    raise AssertionError("no agreed chainfire leader: %s" % st)


@pytest.mark.parametrize("args,message", [
    (["bogus"], "unknown command 'bogus'"),
    (["kill", "node99", "chainfire"], "unknown node 'node99'"),
    (["kill", "node01", "nosuchd"], "node01 runs no daemon 'nosuchd'"),
    (["kill", "node04", "chainfire"], "node04 runs no daemon 'chainfire'"),
    (["logs", "node42"], "unknown node 'node42'"),
    (["ssh", "nodeX"], "unknown node 'nodeX'"),
    (["partition", "node01", "--", "node01"], "no node may be on both"),
    (["partition", "node01", "--", "node77"], "unknown node 'node77'"),
    (["lane", "fresh-smok"], "unknown lane 'fresh-smok'"),
    (["lane", "consistency", "--duration", "-1"], "--duration must be 5 to 3600"),
    (["lane", "consistency", "--frobnicate", "1"], "unknown option '--frobnicate'"),
    (["slow-disk", "node01", "fast"], "IOPS must be 1 to 100000 or 'off'"),
    (["status", "--yaml"], "unknown option '--yaml'"),
    (["start", "now"], "usage: test-cluster/cluster start"),
])
def test_bad_input_exits_2_with_a_clear_message(harness, args, message):
    cp = harness(*args)
    assert cp.returncode == 2, cp
    assert message in cp.stderr
    assert "Traceback" not in cp.stderr


@pytest.mark.parametrize("args", [["partition", "node01"], ["heal"], ["fill-disk", "node01"],
                                  ["slow-disk", "node01", "10"]])
def test_faults_loopback_cannot_do_exit_3_saying_why(harness, args):
    cp = harness(*args)
    assert cp.returncode == 3, cp
    assert "loopback" in cp.stderr and "Traceback" not in cp.stderr


def test_no_arguments_prints_usage_and_exits_2(harness):
    cp = harness()
    assert cp.returncode == 2 and "usage: test-cluster/cluster" in cp.stdout


def test_start_kill_restart_stop_clean(harness):
    check_built()
    cp = harness("start")
    assert cp.returncode == 0, cp.stderr
    assert "loopback mode" in cp.stderr
    lid, st = leader_everywhere(harness)
    assert st["mode"] == "loopback"
    assert st["nodes"]["node01"]["address"] == "127.0.100.111"
    assert st["nodes"]["node04"]["daemons"] == {}
    for n in ("node01", "node02", "node03"):
        assert st["nodes"][n]["daemons"]["iam"]["readyz"] == 200
    victim = "node0%d" % lid
    cp = harness("kill", victim, "chainfire")
    assert cp.returncode == 0 and "killed pid" in cp.stdout, cp
    assert status(harness)["nodes"][victim]["daemons"]["chainfire"]["state"] == "stopped"
    leader_everywhere(harness, exclude=lid)
    cp = harness("stop-node", "node02")
    assert cp.returncode == 0, cp.stderr
    assert {d["state"] for d in status(harness)["nodes"]["node02"]["daemons"].values()} == \
        {"stopped"}
    assert harness("start-node", "node02").returncode == 0
    assert harness("start-node", victim).returncode == 0
    leader_everywhere(harness)
    cp = harness("logs", victim, "chainfire", "-n", "5")
    assert cp.returncode == 0 and "=== harness: start" in harness("logs", victim).stdout
    cp = harness("stop")
    assert cp.returncode == 0, cp.stderr  # every daemon exited 0 on SIGTERM
    assert all(d["state"] == "stopped" for n in status(harness)["nodes"].values()
               for d in n["daemons"].values())
    cp = harness("clean")
    assert cp.returncode == 0
    assert not os.path.exists(os.path.join(REPO, "work", harness.tag, "cluster"))
    assert harness("clean").returncode == 0  # idempotent


def test_lane_over_a_half_started_cluster_is_refused(harness):
    check_built()
    assert harness("start").returncode == 0
    assert harness("stop-node", "node03").returncode == 0
    cp = harness("lane", "fresh-smoke")
    assert cp.returncode == 2, cp
    assert "already (partly) up" in cp.stderr and "node01/chainfire" in cp.stderr
    st = status(harness)  # the lane touched nothing
    assert st["nodes"]["node01"]["daemons"]["chainfire"]["state"] == "running"
    assert st["nodes"]["node03"]["daemons"]["chainfire"]["state"] == "stopped"
