"""cfharness - a chainfire cluster for integration tests (docs/api/chainfire.md).

Cluster starts one IAM (for tokens) and N chainfire members on loopback, each
with its own data dir and raft port, and offers helpers that speak the API:
keys are base64url (unpadded) in paths and bodies.
"""

import base64
import os
import subprocess
import time

from iamharness import Iam
from ucharness import Client, Daemon, binary, daemon_env, free_port, timeout_scale

API = "/api/v1"


def b64(data):
    """Unpadded base64url of bytes or str."""
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FixedPortDaemon(Daemon):
    """A Daemon on a port chosen in advance, so the other members can be
    told its URL (--peer-urls) before it starts. Mirrors Daemon._spawn."""

    def __init__(self, *args, fixed_port, **kw):
        super().__init__(*args, **kw)
        self.fixed_port = fixed_port

    def _spawn(self):
        self.starts += 1
        self.port = self.fixed_port
        self.stderr_path = os.path.join(self.workdir, "%s.%d.stderr" % (self.name, self.starts))
        self._stderr = open(self.stderr_path, "wb")
        argv = [self.binary] + self.args + [self.listen_flag, self.host, self.port_flag,
                                            str(self.port)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr, env=self.env, cwd=self.workdir)


class Member:
    """One chainfire member; its raft port is fixed for its life."""

    def __init__(self, cluster, node_id, raft_port, workdir, bootstrap=True):
        self.id = node_id
        self.bootstrap = bootstrap
        self.raft_port = raft_port
        self.dir = workdir
        self.cluster = cluster
        name = "chainfire-%d" % node_id
        if cluster.forward:
            self.daemon = FixedPortDaemon(binary("chainfire"), [], workdir, name=name,
                                          env=daemon_env(), fixed_port=free_port())
        else:
            self.daemon = Daemon(binary("chainfire"), [], workdir, name=name, env=daemon_env())

    def args(self):
        c = self.cluster
        return ["--node-id", str(self.id), "--raft-address", "127.0.0.1:%d" % self.raft_port,
                "--data-dir", os.path.join(self.dir, "data"),
                "--initial-cluster", c.initial_cluster(),
                "--iam-jwks-url", c.iam.url + API + "/keys",
                "--election-timeout-ms", "300", "--heartbeat-ms", "50",
                "--request-timeout-ms", str(c.request_timeout_ms),
                "--bootstrap=%s" % ("true" if self.bootstrap else "false")] + c.peer_args() + \
            list(c.extra_args)

    @property
    def raft_address(self):
        return "127.0.0.1:%d" % self.raft_port

    def start(self):
        self.daemon.args = self.args()
        self.daemon.start()
        return self

    def client(self, token=None):
        return Client(self.daemon, token if token is not None else self.cluster.token)

    def status(self):
        r = self.client().get(API + "/cluster/status")
        assert r.status_code == 200, r.text
        return r.json()


class Cluster:
    def __init__(self, tmp_path, size=3, request_timeout_ms=3000, extra_args=(), forward=False):
        """forward: members get each other's API URLs (--peer-urls) and
        forward to the leader; else followers answer 503."""
        self.forward = forward
        self.tmp = tmp_path
        self.request_timeout_ms = request_timeout_ms
        self.extra_args = extra_args
        iam_dir = tmp_path / "iam"
        iam_dir.mkdir()
        self.iam = Iam(iam_dir)
        self.members = []
        for i in range(1, size + 1):
            d = tmp_path / ("cf%d" % i)
            d.mkdir()
            self.members.append(Member(self, i, free_port(), str(d)))
        self.token = None

    def initial_cluster(self):
        return ",".join("%d=127.0.0.1:%d" % (m.id, m.raft_port) for m in self.members
                        if m.bootstrap)

    def peer_args(self):
        if not self.forward:
            return []
        urls = ",".join("%d=http://127.0.0.1:%d" % (m.id, m.daemon.fixed_port)
                        for m in self.members)
        return ["--peer-urls", urls]

    def add_member(self):
        """Start a new empty member (--bootstrap=false) that waits to be added."""
        node_id = max(m.id for m in self.members) + 1
        d = self.tmp / ("cf%d" % node_id)
        d.mkdir()
        m = Member(self, node_id, free_port(), str(d), bootstrap=False)
        self.members.append(m)
        return m.start()

    def start(self):
        self.iam.start()
        admin = self.iam.create_user()
        self.iam.bind(admin.id, "system-admin")
        self.token = self.iam.token_for(admin)
        for m in self.members:
            m.start()
        return self

    def stop(self):
        first = None
        for m in self.members:
            try:
                m.daemon.stop()
            except BaseException as e:  # noqa: B902 - pytest.fail raises a BaseException
                first = first or e
                m.daemon.kill()
        try:
            self.iam.stop()
        except BaseException as e:  # noqa: B902
            first = first or e
        if first is not None:
            raise first

    def member(self, node_id):
        return next(m for m in self.members if m.id == node_id)

    def running(self):
        return [m for m in self.members if m.daemon.running()]

    def leader(self, timeout=10.0, exclude=()):
        """The member every running member agrees leads, waiting for one."""
        deadline = time.monotonic() + timeout * timeout_scale()
        while time.monotonic() < deadline:
            seen = set()
            for m in self.running():
                try:
                    st = m.status()
                except Exception:  # noqa: BLE001 - a member may be starting
                    seen.add(None)
                    continue
                seen.add((st.get("leader") or {}).get("id"))
            if len(seen) == 1:
                lid = seen.pop()
                if lid is not None and lid not in exclude:
                    return self.member(lid)
            time.sleep(0.05)
        raise AssertionError("no agreed leader within %.0fs" % timeout)

    def followers(self):
        lead = self.leader()
        return [m for m in self.running() if m is not lead]


def put(client, key, value, lease=None):
    body = {"value": b64(value)}
    if lease is not None:
        body["lease"] = lease
    return client.put(API + "/kv/" + b64(key), json=body)


def get(client, key, serializable=False):
    q = "?serializable=true" if serializable else ""
    return client.get(API + "/kv/" + b64(key) + q)


def value_of(resp):
    """The value (bytes) of a 200 GET answer."""
    assert resp.status_code == 200, resp.text
    return unb64(resp.json()["kv"]["value"])
