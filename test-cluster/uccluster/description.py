"""description - load and check the cluster description (cluster.json).

The description is data, not code: topology, roles and each daemon's config
exactly as its `--config FILE` reads it. Everything the harness does is
derived from it, so every mistake in it is caught here with one line naming
the node and field, before anything starts.
"""

import ipaddress
import json
import re

from .errors import UsageError

NODE_NAME = re.compile(r"^[a-z][a-z0-9]{0,10}$")  # netns "uc-<name>", veth "v-<name>" (15 max)
DAEMON_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
ROLES = ("control-plane", "worker")
RAFT_DAEMONS = ("chainfire", "flaredb")  # daemons that form a raft group
LOOPBACK_NET = "127.0.100."  # fallback: node x.y.z.N becomes 127.0.100.N


class Node:
    """One node: name, address, role and {daemon: config} in start order."""

    def __init__(self, obj):
        self.name = obj["name"]
        self.address = obj["address"]
        self.role = obj["role"]
        self.klass = obj.get("class")
        self.pool = obj.get("pool")
        self.disks = list(obj.get("disks", []))
        self.services = dict(obj.get("services", {}))

    def daemons(self):
        """Daemon names in start order: iam, chainfire, flaredb, then the rest."""
        order = {"iam": 0, "chainfire": 1, "flaredb": 2}
        return sorted(self.services, key=lambda d: (order.get(d, 3), d))

    def api_url(self, daemon):
        cfg = self.services[daemon]
        return "http://%s:%d" % (cfg.get("listen", self.address), cfg["port"])


class Description:
    """A checked description. `mode` is "netns" or "loopback"; in loopback
    mode every node address inside the daemons' configs is rewritten."""

    def __init__(self, obj, path="cluster.json"):
        check(obj, path)
        self.path = path
        self.raw = obj
        self.name = obj["name"]
        self.network = obj["network"]
        self.net = ipaddress.ip_network(obj["network"]["cidr"])
        self.state_dir = obj["state_dir"]
        self.secrets_dir = obj["secrets_dir"]
        self.nodes = [Node(n) for n in obj["nodes"]]
        self.mode = "netns"

    def node(self, name):
        for n in self.nodes:
            if n.name == name:
                return n
        raise UsageError("unknown node '%s' (the description has: %s)" %
                         (clip(name), ", ".join(n.name for n in self.nodes)))

    def control_plane(self):
        return [n for n in self.nodes if n.role == "control-plane"]

    def members(self, daemon):
        """Nodes that run `daemon`, in description order."""
        return [n for n in self.nodes if daemon in n.services]

    def client_address(self):
        """The harness's own address on the bridge: the highest host address
        of the network that no node uses."""
        used = {n.address for n in self.nodes}
        for host in reversed(list(self.net.hosts())):
            if str(host) not in used:
                return str(host)
        raise UsageError("%s: no free address for the harness in %s" % (self.path, self.net))

    def use_loopback(self):
        """Switch to loopback mode: node N's address becomes 127.0.100.<last
        octet> everywhere in the daemons' configs."""
        mapping = {n.address: LOOPBACK_NET + n.address.rsplit(".", 1)[1] for n in self.nodes}
        for n in self.nodes:
            n.services = {d: rewrite(cfg, mapping) for d, cfg in n.services.items()}
            n.address = mapping[n.address]
        self.mode = "loopback"
        return mapping


def clip(text, n=64):
    """Untrusted text for a message: bounded, one line."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    return text if len(text) <= n else text[:n] + "..."


def rewrite(cfg, mapping):
    """`cfg` with every whole-address occurrence of a mapping key replaced."""
    pattern = re.compile(r"(?<![0-9.])(%s)(?![0-9])" %
                         "|".join(re.escape(a) for a in sorted(mapping, key=len, reverse=True)))
    out = {}
    for k, v in cfg.items():
        out[k] = pattern.sub(lambda m: mapping[m.group(1)], v) if isinstance(v, str) else v
    return out


def load(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            obj = json.load(f)
    except OSError as e:
        raise UsageError("cannot read the cluster description %s: %s" % (path, e.strerror))
    except ValueError as e:
        raise UsageError("%s is not valid JSON: %s" % (path, e))
    return Description(obj, path)


# --- checks: each raises UsageError with "<file>: <where>: <problem>" -------


def need(cond, where, problem):
    if not cond:
        raise UsageError("%s: %s" % (where, problem))


def field(obj, key, types, where):
    need(isinstance(obj, dict), where, "must be an object")
    need(key in obj, where, "'%s' is missing" % key)
    val = obj[key]
    # bool is an int in Python: never accept it where a number is meant.
    ok = isinstance(val, types) and not (isinstance(val, bool) and bool not in _tuple(types))
    need(ok, "%s.%s" % (where, key), "must be %s" % _type_name(types))
    return val


def _tuple(types):
    return types if isinstance(types, tuple) else (types,)


def _type_name(types):
    names = {str: "a string", int: "an integer", list: "a list", dict: "an object",
             bool: "true or false"}
    return " or ".join(names[t] for t in _tuple(types))


def relative_path(path, where):
    need(path and not path.startswith("/") and ".." not in path.split("/"), where,
         "'%s' must be a path relative to the repository root, without '..'" % clip(path))


def check(obj, path):
    need(isinstance(obj, dict), path, "the description must be a JSON object")
    field(obj, "name", str, path)
    net = field(obj, "network", dict, path)
    field(net, "bridge", str, path + ": network")
    cidr = field(net, "cidr", str, path + ": network")
    try:
        network = ipaddress.IPv4Network(cidr)
    except ValueError:
        raise UsageError("%s: network.cidr: '%s' is not an IPv4 network" % (path, clip(cidr)))
    plen = field(net, "prefix_len", int, path + ": network")
    need(plen == network.prefixlen, path + ": network.prefix_len",
         "%d does not match cidr %s" % (plen, cidr))
    for key in ("state_dir", "secrets_dir"):
        relative_path(field(obj, key, str, path), "%s: %s" % (path, key))
    nodes = field(obj, "nodes", list, path)
    need(nodes, path + ": nodes", "must list at least one node")
    seen = {}
    for i, node in enumerate(nodes):
        check_node(node, "%s: nodes[%d]" % (path, i), network, obj["state_dir"], seen)
    check_raft_groups(nodes, path)


def check_node(node, where, network, state_dir, seen):
    name = field(node, "name", str, where)
    need(NODE_NAME.match(name), where + ".name",
         "'%s' must be 1-11 characters of a-z and 0-9, starting with a letter" % clip(name))
    where = "%s (%s)" % (where, name)
    need(name not in seen.setdefault("names", set()), where, "duplicate node name")
    seen["names"].add(name)
    addr = field(node, "address", str, where)
    try:
        ip = ipaddress.IPv4Address(addr)
    except ValueError:
        raise UsageError("%s.address: '%s' is not an IPv4 address" % (where, clip(addr)))
    need(ip in network and ip not in (network.network_address, network.broadcast_address),
         where + ".address", "%s is not a host address of %s" % (addr, network))
    need(addr not in seen.setdefault("addrs", set()), where + ".address",
         "%s is used by another node" % addr)
    seen["addrs"].add(addr)
    role = field(node, "role", str, where)
    need(role in ROLES, where + ".role", "'%s' must be one of %s" % (clip(role), ", ".join(ROLES)))
    for i, disk in enumerate(node.get("disks", [])):
        field(disk, "name", str, "%s.disks[%d]" % (where, i))
        size = field(disk, "size_mib", int, "%s.disks[%d]" % (where, i))
        need(16 <= size <= 65536, "%s.disks[%d].size_mib" % (where, i), "must be 16 to 65536")
    services = field(node, "services", dict, where)
    for daemon, cfg in services.items():
        check_service(daemon, cfg, "%s.services.%s" % (where, daemon), addr, state_dir, name)


def check_service(daemon, cfg, where, addr, state_dir, node):
    need(DAEMON_NAME.match(daemon), where, "'%s' is not a daemon name" % clip(daemon))
    need(isinstance(cfg, dict), where, "must be an object of options")
    for key, val in cfg.items():
        need(isinstance(val, (str, int, bool)) or val is None, "%s.%s" % (where, key),
             "option values are strings, integers or true/false")
    port = field(cfg, "port", int, where)
    need(1 <= port <= 65535, where + ".port", "must be 1 to 65535")
    listen = cfg.get("listen", addr)
    need(listen in (addr, "0.0.0.0"), where + ".listen",
         "'%s' must be the node's address %s (or 0.0.0.0)" % (clip(listen), addr))
    for key in ("data_dir", "signing_key_file", "bootstrap_token_file", "cred_master_key_file"):
        if isinstance(cfg.get(key), str):
            relative_path(cfg[key], "%s.%s" % (where, key))
    store = cfg.get("store")
    if isinstance(store, str) and store.startswith("sqlite:"):
        relative_path(store[len("sqlite:"):], where + ".store")
    if isinstance(cfg.get("data_dir"), str):
        need(cfg["data_dir"].startswith("%s/%s/" % (state_dir, node)), where + ".data_dir",
             "'%s' must lie under %s/%s/ (the node's state)" % (clip(cfg["data_dir"]), state_dir,
                                                                node))
    if daemon in RAFT_DAEMONS:
        nid = field(cfg, "node_id", int, where)
        need(nid > 0, where + ".node_id", "must be > 0")
        raft = field(cfg, "raft_address", str, where)
        need(raft.rsplit(":", 1)[0] == addr, where + ".raft_address",
             "'%s' must be on the node's address %s" % (clip(raft), addr))


def parse_members(text, where):
    """'1=host:port,2=host:port' -> {1: 'host:port', ...}."""
    out = {}
    for item in text.split(","):
        m = re.match(r"^(\d+)=([0-9.]+:\d+)$", item.strip())
        need(m, where, "'%s' is not id=host:port" % clip(item))
        out[int(m.group(1))] = m.group(2)
    return out


def check_raft_groups(nodes, path):
    """Per raft daemon: unique ids and addresses, and one initial_cluster
    that names exactly the members bootstrapping with it."""
    for daemon in RAFT_DAEMONS:
        members = [(n["name"], n["services"][daemon]) for n in nodes
                   if daemon in n.get("services", {})]
        if not members:
            continue
        ids = {}
        for name, cfg in members:
            need(cfg["node_id"] not in ids, "%s: %s.services.%s.node_id" % (path, name, daemon),
                 "%d is also %s's" % (cfg["node_id"], ids.get(cfg["node_id"])))
            ids[cfg["node_id"]] = name
        clusters = {cfg.get("initial_cluster") for _, cfg in members}
        where = "%s: %s initial_cluster" % (path, daemon)
        need(len(clusters) == 1 and None not in clusters, where,
             "every %s member must carry the same initial_cluster" % daemon)
        initial = parse_members(clusters.pop(), where)
        want = {cfg["node_id"]: cfg["raft_address"] for _, cfg in members}
        need(initial == want, where,
             "names %s but the members are %s" % (fmt_members(initial), fmt_members(want)))


def fmt_members(m):
    return ",".join("%d=%s" % (k, m[k]) for k in sorted(m))
