"""netns - the nodes' network: one namespace per node on an island bridge.

The bridge lives in its own "hub" namespace and the harness's HTTP clients
in a "client" namespace on the same bridge, so nothing of the host's own
network (root namespace) is attached: there is no interface, route, NAT or
forwarding that could carry a node's packet off the island. Partitions are
nftables drop rules inside the nodes' namespaces. Without root or namespaces
the Loopback variant runs every node on 127.0.100.x and has no partitions.
"""

import ctypes
import ipaddress
import json
import os
import sys

from . import sh
from .errors import HarnessError, Unavailable

PREFIX = "uc-"
HUB = PREFIX + "hub"
CLIENT = PREFIX + "client"
CLONE_NEWNET = 0x40000000
NFT_TABLE = "uc_partition"


def ns_name(node):
    return PREFIX + node


def existing():
    """Names of the harness's namespaces that exist now."""
    cp = sh.run(["ip", "netns", "list"], check=False)
    names = [line.split()[0] for line in cp.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(PREFIX)]


def probe():
    """(True, "") when this process can build namespaces, else (False, why)."""
    if os.geteuid() != 0:
        return False, "not root (network namespaces need root)"
    for tool in ("ip", "nft"):
        if not sh.ok(["sh", "-c", "command -v %s" % tool]):
            return False, "'%s' is not installed (scripts/deps.sh installs it)" % tool
    name = "%sprobe-%d" % (PREFIX, os.getpid())
    if not sh.ok(["ip", "netns", "add", name]):
        return False, "'ip netns add' failed (no namespace support here)"
    sh.run(["ip", "netns", "del", name], check=False)
    return True, ""


def host_addresses():
    """The host's own IPv4 addresses outside loopback (root namespace)."""
    cp = sh.run(["ip", "-j", "-4", "addr", "show"])
    out = []
    for link in json.loads(cp.stdout or "[]"):
        for a in link.get("addr_info", []):
            if a.get("family") == "inet" and not a["local"].startswith("127."):
                out.append(a["local"])
    return out


class Netns:
    """The namespace network of a description."""

    mode = "netns"

    def __init__(self, desc, state_dir):
        self.desc = desc
        self.bridge = desc.network["bridge"]
        self.plen = desc.network["prefix_len"]
        self.client_addr = desc.client_address()
        self.state_file = os.path.join(state_dir, "partitions.json")
        self._root_fd = None

    # --- building and removing ---------------------------------------------

    def up(self):
        """Build hub, bridge, client and node namespaces (idempotent for a
        namespace that already exists with its link)."""
        have = set(existing())
        if HUB not in have:
            sh.run(["ip", "netns", "add", HUB])
            self._quiet_ns(HUB)
            sh.run(["ip", "-n", HUB, "link", "add", self.bridge, "type", "bridge"])
            sh.run(["ip", "-n", HUB, "link", "set", self.bridge, "up"])
        if CLIENT not in have:
            self._attach(CLIENT, "client", self.client_addr)
        for node in self.desc.nodes:
            if ns_name(node.name) not in have:
                self._attach(ns_name(node.name), node.name, node.address)

    def _quiet_ns(self, ns):
        """lo up, no forwarding, no IPv6 (no link-local routes either).
        /proc/sys/net shows the namespace of the process reading it."""
        sh.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        sh.run(["ip", "netns", "exec", ns, "sh", "-c",
                "echo 0 > /proc/sys/net/ipv4/ip_forward && "
                "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && "
                "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"])

    def _attach(self, ns, short, addr):
        sh.run(["ip", "netns", "add", ns])
        self._quiet_ns(ns)
        veth = "v-" + short
        sh.run(["ip", "-n", HUB, "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                "netns", ns])
        sh.run(["ip", "-n", HUB, "link", "set", veth, "master", self.bridge, "up"])
        sh.run(["ip", "-n", ns, "addr", "add", "%s/%d" % (addr, self.plen), "dev", "eth0"])
        sh.run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def down(self):
        """Delete every harness namespace (their veths go with them)."""
        self.leave_client()
        for ns in existing():
            sh.run(["ip", "netns", "del", ns], check=False)
        if os.path.exists(self.state_file):
            os.unlink(self.state_file)

    # --- where processes and the harness run -------------------------------

    def wrap(self, node_name, argv):
        """argv run inside the node's namespace."""
        return ["ip", "netns", "exec", ns_name(node_name)] + list(argv)

    def enter_client(self):
        """Move this process (its main thread, before any other thread
        exists) into the client namespace so its sockets reach the bridge."""
        if self._root_fd is not None:
            return
        path = "/run/netns/" + CLIENT
        if not os.path.exists(path):
            raise HarnessError("namespace %s does not exist: is the cluster up?" % CLIENT)
        libc = ctypes.CDLL(None, use_errno=True)
        root = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                os.close(root)
                raise HarnessError("setns(%s): %s" % (CLIENT, os.strerror(ctypes.get_errno())))
        finally:
            os.close(fd)
        self._root_fd = root
        self._libc = libc

    def leave_client(self):
        if self._root_fd is None:
            return
        if self._libc.setns(self._root_fd, CLONE_NEWNET) != 0:
            raise HarnessError("setns(root): %s" % os.strerror(ctypes.get_errno()))
        os.close(self._root_fd)
        self._root_fd = None

    # --- partitions ----------------------------------------------------------

    def partition(self, side_a, side_b):
        """Drop all traffic between the nodes of side_a and side_b (lists of
        Node), in both directions, on top of any earlier partition. The
        harness's client address is never dropped, so it can still see a
        cut-off node answer."""
        blocked = self._blocked()
        for a in side_a:
            for b in side_b:
                blocked.setdefault(a.name, set()).add(b.address)
                blocked.setdefault(b.name, set()).add(a.address)
        for name in {n.name for n in side_a + side_b}:
            self._apply(name, blocked[name])
        self._save(blocked)
        return {k: sorted(v) for k, v in blocked.items()}

    def heal(self):
        for name in self._blocked():
            self._apply(name, set())
        self._save({})

    def _blocked(self):
        try:
            with open(self.state_file) as f:
                return {k: set(v) for k, v in json.load(f).items()}
        except (OSError, ValueError):
            return {}

    def _save(self, blocked):
        with open(self.state_file, "w") as f:
            json.dump({k: sorted(v) for k, v in blocked.items() if v}, f)

    def _apply(self, node_name, addrs):
        """Replace the node's partition table in one nft transaction."""
        text = "table inet %s\ndelete table inet %s\n" % (NFT_TABLE, NFT_TABLE)
        if addrs:
            s = ", ".join(sorted(addrs))
            text += ("table inet %s {\n"
                     " chain input { type filter hook input priority -10; policy accept;"
                     " ip saddr { %s } drop; }\n"
                     " chain output { type filter hook output priority -10; policy accept;"
                     " ip daddr { %s } drop; }\n}\n") % (NFT_TABLE, s, s)
        sh.run(self.wrap(node_name, ["nft", "-f", "-"]), input_text=text)

    def rules(self, node_name):
        """The node's partition rules as nft prints them ('' when none)."""
        cp = sh.run(self.wrap(node_name, ["nft", "list", "table", "inet", NFT_TABLE]),
                    check=False)
        return cp.stdout if cp.returncode == 0 else ""

    # --- the island property -------------------------------------------------

    def island_check(self, host_addrs):
        """Evidence that nodes reach nothing but the bridge: each node has
        only its bridge route and cannot route nor connect to any of the
        host's addresses; the hub forwards nothing and holds no address; the
        host has no interface in the cluster's network. Raises HarnessError
        on the first breach."""
        net = ipaddress.ip_network(self.desc.network["cidr"])
        inside = [a for a in host_addrs if ipaddress.ip_address(a) in net]
        if inside:
            raise HarnessError("island breach: the host itself has %s in %s" % (inside, net))
        ev = {"host_addresses": host_addrs, "nodes": {}}
        for node in self.desc.nodes:
            ev["nodes"][node.name] = self._node_island(node, net, host_addrs)
        ev["hub"] = self._hub_island()
        return ev

    def _node_island(self, node, net, host_addrs):
        ns = ns_name(node.name)
        routes = json.loads(sh.run(["ip", "-n", ns, "-j", "-4", "route", "show"]).stdout or "[]")
        dsts = sorted(r.get("dst", "") for r in routes)
        if dsts != [str(net)]:
            raise HarnessError("island breach: %s has routes %s (want only %s)" % (ns, dsts, net))
        probes = {}
        for addr in host_addrs:
            rc = sh.run(["ip", "-n", ns, "route", "get", addr], check=False)
            if rc.returncode == 0:
                raise HarnessError("island breach: %s has a route to host address %s: %s" % (
                    ns, addr, rc.stdout.strip()))
            probes[addr] = self._connect_probe(node.name, addr)
        fwd = sh.run(self.wrap(node.name, ["cat", "/proc/sys/net/ipv4/ip_forward"])).stdout
        return {"routes": dsts, "host_probes": probes, "ip_forward": fwd.strip()}

    def _connect_probe(self, node_name, addr):
        """A real TCP connect from the node to a host address; must fail
        with 'unreachable' at once (no route), never connect."""
        code = ("import socket,sys\ns=socket.socket()\ns.settimeout(2)\n"
                "try:\n s.connect((sys.argv[1], 22)); print('connected')\n"
                "except OSError as e: print(e.strerror or e)\n")
        out = sh.run(self.wrap(node_name, [sys.executable, "-c", code, addr])).stdout.strip()
        if "unreachable" not in out.lower():
            raise HarnessError("island breach: %s connecting to host %s: %s" % (
                node_name, addr, out))
        return out

    def _hub_island(self):
        addrs = json.loads(sh.run(["ip", "-n", HUB, "-j", "-4", "addr", "show"]).stdout or "[]")
        held = [a["local"] for link in addrs for a in link.get("addr_info", [])
                if not a["local"].startswith("127.")]
        fwd = sh.run(["ip", "netns", "exec", HUB, "cat",
                      "/proc/sys/net/ipv4/ip_forward"]).stdout.strip()
        if held or fwd != "0":
            raise HarnessError("island breach: hub holds %s, ip_forward=%s" % (held, fwd))
        return {"addresses": held, "ip_forward": fwd}


class Loopback:
    """The fallback: every node on 127.0.100.x of the host, no isolation."""

    mode = "loopback"

    def __init__(self, desc, state_dir, reason):
        self.desc = desc
        self.reason = reason

    def up(self):
        pass

    def down(self):
        pass

    def wrap(self, node_name, argv):
        return list(argv)

    def enter_client(self):
        pass

    def leave_client(self):
        pass

    def partition(self, side_a, side_b):
        raise Unavailable("partitions need network namespaces; this run is in loopback mode (%s)"
                          % self.reason)

    def heal(self):
        raise Unavailable("heal: no partitions in loopback mode (%s)" % self.reason)

    def rules(self, node_name):
        return ""

    def island_check(self, host_addrs):
        raise Unavailable("no island in loopback mode (%s)" % self.reason)
