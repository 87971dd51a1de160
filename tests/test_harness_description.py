"""The test-cluster harness's cluster description (test-cluster/cluster.json):
the committed file has the agreed six-node shape and fits the real daemons'
options; broken descriptions are refused with one line naming the node and
field; loopback mode rewrites exactly the node addresses."""

import copy
import json
import os
import subprocess
import sys

import pytest

from ucharness import REPO, build_dir

sys.path.insert(0, os.path.join(REPO, "test-cluster"))

from uccluster import description  # noqa: E402
from uccluster.cluster import Cluster  # noqa: E402
from uccluster.errors import UsageError  # noqa: E402

CLUSTER_JSON = os.path.join(REPO, "test-cluster", "cluster.json")
CLI = os.path.join(REPO, "test-cluster", "cluster")


def committed():
    with open(CLUSTER_JSON) as f:
        return json.load(f)


def test_committed_description_has_the_agreed_shape():
    d = description.load(CLUSTER_JSON)
    assert d.name == "ultracloud-harness"
    assert d.network == {"bridge": "ucbr0", "cidr": "10.100.0.0/24", "prefix_len": 24}
    assert (d.state_dir, d.secrets_dir) == ("work/cluster", "work/cluster/secrets")
    assert [n.name for n in d.nodes] == ["node%02d" % i for i in range(1, 7)]
    assert [n.address for n in d.nodes] == ["10.100.0.%d" % i for i in range(11, 17)]
    assert [n.name for n in d.control_plane()] == ["node01", "node02", "node03"]
    for n in d.control_plane():
        assert n.daemons() == ["iam", "chainfire", "flaredb"]
        assert n.services["chainfire"]["advertise_url"] == "http://%s:7200" % n.address
        assert n.services["flaredb"]["port"] == 7300
    for n in d.nodes[3:]:
        assert (n.role, n.pool, n.services) == ("worker", "general", {})


@pytest.mark.parametrize("daemon", ["iam", "chainfire"])
def test_every_option_of_the_description_is_one_the_built_daemon_knows(daemon):
    """Each services entry must load with the real binary's --config (the
    daemon checks it with --check-config; unknown keys are refused)."""
    cl = Cluster(bin_dir=os.path.join(build_dir(), "bin"), mode="loopback")
    for node in cl.desc.members(daemon):
        d = cl.daemon(node.name, daemon)
        if not d.present():
            pytest.fail("%s not built (run make)" % d.binary, pytrace=False)
        cfg = cl.compat.translate(d, d.raw_config())
        assert set(cfg) == set(d.raw_config()), "the binary lacks options: %s" % cl.compat.notes


def mutate(fn):
    obj = copy.deepcopy(committed())
    fn(obj)
    return obj


def set_(path, value):
    def fn(obj):
        cur = obj
        for p in path[:-1]:
            cur = cur[p]
        cur[path[-1]] = value
    return fn


BROKEN = [
    ("duplicate node name", set_(["nodes", 1, "name"], "node01"), "duplicate node name"),
    ("address outside the network", set_(["nodes", 0, "address"], "10.9.0.11"),
     "not a host address of 10.100.0.0/24"),
    ("address used twice", set_(["nodes", 4, "address"], "10.100.0.14"), "used by another node"),
    ("node name too long", set_(["nodes", 5, "name"], "averyveryverylongname"),
     "1-11 characters"),
    ("unknown role", set_(["nodes", 3, "role"], "master"), "must be one of"),
    ("prefix does not match", set_(["network", "prefix_len"], 16), "does not match cidr"),
    ("listen on another node", set_(["nodes", 0, "services", "iam", "listen"], "10.100.0.12"),
     "must be the node's address 10.100.0.11"),
    ("absolute data dir", set_(["nodes", 0, "services", "chainfire", "data_dir"], "/var/lib/x"),
     "relative to the repository root"),
    ("data dir of another node",
     set_(["nodes", 0, "services", "chainfire", "data_dir"], "work/cluster/node02/chainfire"),
     "must lie under work/cluster/node01/"),
    ("escaping state dir", set_(["state_dir"], "../elsewhere"), "without '..'"),
    ("duplicate raft id", set_(["nodes", 1, "services", "chainfire", "node_id"], 1),
     "1 is also node01's"),
    ("initial cluster disagrees",
     set_(["nodes", 2, "services", "chainfire", "initial_cluster"], "1=10.100.0.11:7201"),
     "same initial_cluster"),
    ("raft address off the node", set_(["nodes", 1, "services", "flaredb", "raft_address"],
                                       "10.100.0.13:7301"), "on the node's address"),
    ("port is text", set_(["nodes", 0, "services", "iam", "port"], "7100"), "must be an integer"),
    ("port is a boolean", set_(["nodes", 0, "services", "iam", "port"], True),
     "must be an integer"),
    ("nested option value", set_(["nodes", 0, "services", "iam", "store"], {"x": 1}),
     "strings, integers or true/false"),
    ("no nodes", set_(["nodes"], []), "at least one node"),
    ("disk too small", set_(["nodes", 0, "disks"], [{"name": "data", "size_mib": 1}]),
     "16 to 65536"),
]


@pytest.mark.parametrize("name,fn,message", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_description_is_refused_with_a_precise_message(name, fn, message):
    with pytest.raises(UsageError) as e:
        description.Description(mutate(fn), "x.json")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_cli_refuses_a_broken_description_with_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(mutate(set_(["nodes", 1, "name"], "node01"))))
    env = dict(os.environ, UC_CLUSTER_DESCRIPTION=str(bad), UC_CLUSTER_MODE="loopback")
    cp = subprocess.run([CLI, "status"], capture_output=True, text=True, env=env, timeout=30)
    assert cp.returncode == 2
    assert "duplicate node name" in cp.stderr and str(bad) in cp.stderr


def test_cli_refuses_a_description_that_is_not_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nodes: ")
    env = dict(os.environ, UC_CLUSTER_DESCRIPTION=str(bad))
    cp = subprocess.run([CLI, "status"], capture_output=True, text=True, env=env, timeout=30)
    assert cp.returncode == 2 and "is not valid JSON" in cp.stderr


def test_loopback_mode_rewrites_whole_addresses_only():
    d = description.load(CLUSTER_JSON)
    d.use_loopback()
    n1 = d.node("node01")
    assert n1.address == "127.0.100.11"
    cf = n1.services["chainfire"]
    assert cf["listen"] == "127.0.100.11"
    assert cf["initial_cluster"] == ("1=127.0.100.11:7201,2=127.0.100.12:7201,"
                                     "3=127.0.100.13:7201")
    assert cf["iam_jwks_url"] == "http://127.0.100.11:7100/api/v1/keys"
    assert cf["data_dir"] == "work/cluster/node01/chainfire"  # paths untouched
    assert description.rewrite({"a": "10.100.0.1,10.100.0.11"},
                               {"10.100.0.1": "X", "10.100.0.11": "Y"}) == {"a": "X,Y"}
