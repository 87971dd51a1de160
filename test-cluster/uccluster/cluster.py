"""cluster - the six nodes as one object: network, disks, secrets, daemons.

The state of a running cluster lives on disk (work/cluster: mode.json, pid
files, generated configs), so every `cluster` invocation, and every lane,
sees the same cluster. mode.json fixes netns or loopback mode for the
cluster's life: a later command never guesses differently.
"""

import fcntl
import json
import os
import secrets as pysecrets
import shutil
import signal
import time

import requests

from . import api, description, disks, netns, secrets, sh
from .compat import Compat
from .errors import HarnessError, UsageError
from .procs import Daemon, alive, cmdline

MODES = ("auto", "netns", "loopback")
ADMIN_USER = "harness-admin"


def repo_root():
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Cluster:
    def __init__(self, repo=None, desc_path=None, bin_dir=None, mode=None, fresh=False):
        """fresh: decide netns/loopback anew instead of reading the mode a
        previous start saved (a lane starts from a clean state anyway)."""
        self.repo = repo or repo_root()
        self.desc = description.load(desc_path or os.path.join(self.repo, "test-cluster",
                                                               "cluster.json"))
        self.state_dir = os.path.join(self.repo, self.desc.state_dir)
        self.bin_dir = os.path.abspath(bin_dir or os.environ.get("UC_CLUSTER_BIN") or
                                       os.path.join(self.repo, "build", "bin"))
        self.scale = 4.0 if "build-san" in self.bin_dir else 1.0
        self.compat = Compat()
        self.mode, self.mode_reason = self._decide_mode(
            mode or os.environ.get("UC_CLUSTER_MODE") or "auto", fresh)
        if self.mode == "loopback":
            self.desc.use_loopback()
            self.net = netns.Loopback(self.desc, self.state_dir, self.mode_reason)
        else:
            self.net = netns.Netns(self.desc, self.state_dir)
        self.disks = disks.Disks(self.desc, self.repo, self.state_dir, self._disk_reason())
        self.daemons = {(n.name, d): Daemon(self, n, d) for n in self.desc.nodes
                        for d in n.daemons()}
        self.temp = {}  # (node, daemon) -> Daemon not in the description (lanes add them)
        self._token = None

    # --- mode ---------------------------------------------------------------

    def _mode_file(self):
        return os.path.join(self.state_dir, "mode.json")

    def _decide_mode(self, requested, fresh):
        if requested not in MODES:
            raise UsageError("UC_CLUSTER_MODE='%s': must be one of %s" % (
                description.clip(requested), ", ".join(MODES)))
        try:
            with open(self._mode_file()) as f:
                saved = json.load(f)
            if not fresh:
                return saved["mode"], saved.get("reason", "")
        except (OSError, ValueError, KeyError):
            pass
        if requested == "loopback":
            return "loopback", "asked for with UC_CLUSTER_MODE=loopback"
        can, why = netns.probe()
        if can:
            return "netns", ""
        if requested == "netns":
            raise UsageError("UC_CLUSTER_MODE=netns but namespaces are unavailable: %s" % why)
        return "loopback", why

    def _disk_reason(self):
        if self.mode != "netns":
            return "loopback mode"
        if os.environ.get("UC_CLUSTER_DISKS", "1") == "0":
            return "turned off with UC_CLUSTER_DISKS=0"
        can, why = disks.probe()
        return "" if can else why

    def disks_join(self, node, pid):
        if self.disks.enabled:
            self.disks.join(node, pid)

    # --- daemons ------------------------------------------------------------

    def daemon(self, node_name, daemon):
        node = self.desc.node(node_name)
        d = self.daemons.get((node.name, daemon)) or self.temp.get((node.name, daemon))
        if d is None:
            known = [k[1] for k in list(self.daemons) + list(self.temp) if k[0] == node.name]
            raise UsageError("%s runs no daemon '%s' (it runs: %s)" % (
                node.name, description.clip(daemon), ", ".join(known) or "none"))
        return d

    def all_daemons(self, name=None):
        out = list(self.daemons.values()) + list(self.temp.values())
        return [d for d in out if name is None or d.name == name]

    def add_temp(self, node_name, daemon, base):
        d = Daemon(self, self.desc.node(node_name), daemon, base=base)
        self.temp[(node_name, daemon)] = d
        return d

    def missing(self):
        """Daemons of the description whose binary is not built."""
        return sorted({d.name for d in self.daemons.values() if not d.present()})

    def daemon_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("UC_", "IAM_"))}
        if self.scale > 1:
            env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
            env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        return env

    # --- lifecycle ------------------------------------------------------------

    def up(self):
        """Network, disks and secrets; then this process joins the client
        namespace so its HTTP calls reach the nodes."""
        os.makedirs(self.state_dir, exist_ok=True)
        with open(self._mode_file(), "w") as f:
            json.dump({"mode": self.mode, "reason": self.mode_reason}, f)
        self.net.up()
        self.disks.mount_all()
        secrets.ensure(self.desc, self.repo)
        self.net.enter_client()

    def attach(self):
        """For commands on a running cluster: join the client namespace."""
        if self.mode == "netns" and netns.CLIENT in netns.existing():
            self.net.enter_client()

    def start(self, nodes=None):
        self.up()
        for node in nodes or self.desc.nodes:
            self.start_node(node.name)

    def start_node(self, name):
        """Start the node's daemons in order (iam, chainfire, flaredb),
        each ready before the next; daemons without a binary are skipped
        (see missing())."""
        node = self.desc.node(name)
        started = []
        for dname in node.daemons():
            d = self.daemons[(node.name, dname)]
            if d.present():
                d.start()
                started.append(dname)
        for (n, _), d in self.temp.items():
            if n == node.name and not d.expected_down:
                d.start()
        return started

    def stop_node(self, name, kill=False):
        """Stop the node's daemons in reverse order; returns problems."""
        node = self.desc.node(name)
        problems = []
        ds = [d for (n, _), d in self.temp.items() if n == node.name]
        ds += [self.daemons[(node.name, d)] for d in reversed(node.daemons())]
        for d in ds:
            if kill:
                d.kill()
            else:
                p = d.stop()
                if p:
                    problems.append(p)
        return problems

    def stop(self):
        """Every daemon (SIGTERM), then disks and namespaces; state stays."""
        problems = []
        for node in reversed(self.desc.nodes):
            problems += self.stop_node(node.name)
        self.net.leave_client()
        self.disks.umount_all()
        self.net.down()
        return problems

    def clean(self):
        """Remove every trace: processes (kill -9, also ones whose pid file
        is lost), namespaces, mounts, cgroups and the state directory.
        Idempotent."""
        killed = self.kill_strays()
        self.net.leave_client()
        self.disks.umount_all()
        if self.mode == "netns":  # a loopback cluster owns no namespace
            for ns in netns.existing():
                sh.run(["ip", "netns", "del", ns], check=False)
        if os.path.isdir(self.state_dir):
            shutil.rmtree(self.state_dir)
        return killed

    def kill_strays(self):
        """kill -9 every process started with a config of this cluster."""
        mark = os.path.join(self.state_dir, "config") + "/"
        killed = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            if any(a.startswith(mark) for a in cmdline(int(entry))):
                try:
                    os.kill(int(entry), signal.SIGKILL)
                    killed.append(int(entry))
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        while any(alive(p) for p in killed) and time.monotonic() < deadline:
            time.sleep(0.05)
        return killed

    def leftovers(self):
        """What of a cluster is up now (namespaces, daemons, mounts)."""
        out = ["daemon %s (pid %d)" % (d.label, d.pid()) for d in self.all_daemons() if d.pid()]
        mark = os.path.join(self.state_dir, "config") + "/"
        known = {d.pid() for d in self.all_daemons()}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in known and \
                    any(a.startswith(mark) for a in cmdline(int(entry))):
                out.append("stray daemon pid %s" % entry)
        out += ["mounted disk of %s" % n.name for n in self.desc.nodes
                if self.disks.mountpoint(n) in disks.mountpoints()]
        if self.mode == "netns":
            out += ["namespace " + ns for ns in netns.existing()]
        return out

    def problems(self):
        """Daemons that should run but died, and sanitizer reports."""
        out = [p for p in (d.died() for d in self.all_daemons()) if p]
        out += [p for p in (d.sanitizer_report() for d in self.all_daemons()) if p]
        return out

    # --- admin token --------------------------------------------------------

    def iam_node(self):
        for n in self.desc.control_plane():
            if "iam" in n.services:
                return n
        raise HarnessError("the description has no control-plane node running iam")

    def admin_creds(self):
        path = os.path.join(self.repo, self.desc.secrets_dir, "harness-admin.json")
        if not os.path.exists(path):
            secrets.write_private(path, json.dumps({
                "username": ADMIN_USER, "password": pysecrets.token_urlsafe(24)}).encode())
        with open(path) as f:
            return json.load(f)

    def token(self, refresh=False):
        """A system-admin token issued by the first control-plane IAM
        (creating the admin user with the bootstrap token when needed)."""
        if self._token and not refresh:
            return self._token
        node = self.iam_node()
        d = self.daemons[(node.name, "iam")]
        http = api.Http(d.url(), timeout=15.0)
        creds = self.admin_creds()
        r = api.iam_login(http, creds["username"], creds["password"])
        if r.status_code == 401:
            boot = secrets.read_text(self.repo, node.services["iam"]["bootstrap_token_file"])
            b = api.iam_bootstrap_admin(http, boot, creds["username"], creds["password"])
            if b is not None and b.status_code != 201:
                raise HarnessError("cannot create the harness admin on %s: %s" % (
                    d.label, api.brief(b)))
            r = api.iam_login(http, creds["username"], creds["password"])
        if r.status_code != 201:
            raise HarnessError("cannot log in as the harness admin on %s: %s" % (
                d.label, api.brief(r)))
        self._token = r.json()["token"]
        return self._token

    def http(self, daemon, timeout=8.0, token=True, session=None):
        return api.Http(daemon.url(), self.token() if token else None, timeout, session)

    # --- status -------------------------------------------------------------

    def status(self):
        """{node: {...}} with each daemon's process, health and raft role."""
        up_ns = set(netns.existing())
        token_error = None
        try:
            if any(d.running() for d in self.all_daemons()):
                self.token()
        except (HarnessError, requests.RequestException) as e:
            token_error = str(e).splitlines()[0]
        out = {"mode": self.mode, "mode_reason": self.mode_reason, "bin_dir": self.bin_dir,
               "missing_binaries": self.missing(), "notes": sorted(self.compat.notes),
               "token_error": token_error, "nodes": {}}
        for node in self.desc.nodes:
            out["nodes"][node.name] = self._node_status(node, up_ns)
        out["notes"] = sorted(self.compat.notes)
        return out

    def _node_status(self, node, up_ns):
        st = {"address": node.address, "role": node.role,
              "namespace": (netns.ns_name(node.name) in up_ns) if self.mode == "netns" else None,
              "disk": self.disks.mounted(node) if self.disks.enabled and node.disks else None,
              "partition": self.net.rules(node.name) != "" if self.mode == "netns" else None,
              "daemons": {}}
        for d in [x for x in self.all_daemons() if x.node.name == node.name]:
            st["daemons"][d.name] = self._daemon_status(d)
        return st

    def _daemon_status(self, d):
        if not d.present():
            return {"state": "MISSING BINARY %s" % d.binary}
        pid = d.pid()
        if pid is None:
            return {"state": "stopped"}
        st = {"state": "running", "pid": pid}
        for path in ("/healthz", "/readyz"):
            try:
                st[path[1:]] = requests.get(d.url(path), timeout=2).status_code
            except requests.RequestException as e:
                st[path[1:]] = type(e).__name__
        if d.name in description.RAFT_DAEMONS and self._token:
            try:
                r = api.status(self.http(d, timeout=3))
                if r.status_code == 200:
                    j = r.json()
                    st.update(raft_role=j.get("role"), term=j.get("term"),
                              leader=(j.get("leader") or {}).get("id"),
                              commit_index=j.get("commit_index"))
                else:
                    st["raft"] = api.brief(r)
            except requests.RequestException as e:
                st["raft"] = type(e).__name__
        return st


class Lock:
    """One cluster-changing harness command at a time: per machine in netns
    mode (namespace names are global: one such cluster per machine), per
    state directory in loopback mode (<state_dir>.lock, beside the
    directory `clean` removes)."""

    GLOBAL = "/run/ultracloud-test-cluster.lock"

    def __init__(self, cluster):
        self.path = self.GLOBAL if cluster.mode == "netns" else \
            cluster.state_dir.rstrip("/") + ".lock"
        self.fd = None

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip()
            os.close(self.fd)
            raise UsageError("another cluster command holds %s (pid %s): wait for it or stop it"
                             % (self.path, holder or "?"))
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, ("%d\n" % os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        return False
