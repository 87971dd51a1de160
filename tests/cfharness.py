"""cfharness - a chainfire cluster for integration tests (docs/api/chainfire.md).

Cluster starts one IAM (for tokens) and N chainfire members on loopback, each
with its own data dir and raft port, and offers helpers that speak the API:
keys are base64url (unpadded) in paths and bodies. Followers forward to the
leader at the URL it published, so members need no list of each other's URLs.
"""

import base64
import os
import shutil
import time

from iamharness import Iam
from ucharness import (Client, Daemon, binary, daemon_env, free_port, sanitized, timeout_scale,
                       wait_for)  # noqa: F401 - wait_for is re-exported to the tests

API = "/api/v1"
# Short elections keep the suite fast; sanitized members are slower, and a
# leader that misses heartbeats under load would flap.
ELECTION_MS = 1000 if sanitized() else 300


def b64(data):
    """Unpadded base64url of bytes or str."""
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Member:
    """One chainfire member; its raft port is fixed for its life (move() picks
    a new one). Its API port is new at every start: the member publishes its
    URL through the log when it leads, so nobody needs to be told. A
    subclass names another binary that takes the same cluster options."""

    BINARY = "chainfire"

    def __init__(self, cluster, node_id, raft_port, workdir, bootstrap=True, restore_from=None):
        self.id = node_id
        self.bootstrap = bootstrap
        self.restore_from = restore_from
        self.raft_port = raft_port
        self.dir = workdir
        self.cluster = cluster
        self.daemon = Daemon(binary(self.BINARY), [], workdir,
                             name="%s-%d" % (self.BINARY, node_id), env=daemon_env())

    @property
    def data_dir(self):
        return os.path.join(self.dir, "data")

    def args(self):
        c = self.cluster
        extra = ["--restore-from", self.restore_from] if self.restore_from else []
        return ["--node-id", str(self.id), "--raft-address", "127.0.0.1:%d" % self.raft_port,
                "--data-dir", self.data_dir,
                "--initial-cluster", c.initial_cluster(),
                "--iam-jwks-url", c.iam.url + API + "/keys",
                "--election-timeout-ms", str(ELECTION_MS),
                "--heartbeat-ms", str(ELECTION_MS // 6),
                "--request-timeout-ms", str(c.request_timeout_ms),
                "--bootstrap=%s" % ("true" if self.bootstrap else "false")] + extra + \
            list(c.extra_args)

    @property
    def raft_address(self):
        return "127.0.0.1:%d" % self.raft_port

    def start(self):
        self.daemon.args = self.args()
        self.daemon.start()
        return self

    def wipe(self):
        """Empty the data dir (the member must be stopped)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def move(self):
        """A new raft port; takes effect at the next start (with an empty data dir)."""
        self.raft_port = free_port()

    def client(self, token=None):
        return Client(self.daemon, token if token is not None else self.cluster.token)

    def status(self):
        r = self.client().get(API + "/cluster/status")
        assert r.status_code == 200, r.text
        return r.json()


class Cluster:
    """N members (of class MEMBER, in dirs <tmp>/<DIR_PREFIX><id>) and an IAM."""

    MEMBER = Member
    DIR_PREFIX = "cf"

    def __init__(self, tmp_path, size=3, request_timeout_ms=3000, extra_args=(), iam=None,
                 restore_from=None):
        """iam: share a running Iam (another cluster's) instead of starting one.
        restore_from: a backup file every member loads when it leads."""
        self.tmp = tmp_path
        self.request_timeout_ms = request_timeout_ms
        self.extra_args = extra_args
        self.own_iam = iam is None
        if iam is None:
            iam_dir = tmp_path / "iam"
            iam_dir.mkdir()
            iam = Iam(iam_dir)
        self.iam = iam
        self.members = []
        for i in range(1, size + 1):
            d = tmp_path / ("%s%d" % (self.DIR_PREFIX, i))
            d.mkdir()
            self.members.append(self.MEMBER(self, i, free_port(), str(d),
                                            restore_from=restore_from))
        self.token = None

    def initial_cluster(self):
        return ",".join("%d=127.0.0.1:%d" % (m.id, m.raft_port) for m in self.members
                        if m.bootstrap)

    def add_member(self, node_id=None):
        """Start a new empty member (--bootstrap=false) that waits to be added."""
        node_id = node_id or max(m.id for m in self.members) + 1
        d = self.tmp / ("%s%d-%d" % (self.DIR_PREFIX, node_id, len(self.members)))
        d.mkdir()
        m = self.MEMBER(self, node_id, free_port(), str(d), bootstrap=False)
        self.members.append(m)
        return m.start()

    def start(self):
        if self.own_iam:
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
            if self.own_iam:
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
        """The member every running member agrees leads, waiting for one and
        for its API URL to reach them all (so followers can forward to it)."""
        deadline = time.monotonic() + timeout * timeout_scale()
        while time.monotonic() < deadline:
            seen = set()
            for m in self.running():
                try:
                    st = m.status()
                except Exception:  # noqa: BLE001 - a member may be starting
                    seen.add(None)
                    continue
                lead = st.get("leader") or {}
                seen.add(lead.get("id") if lead.get("api_url") else None)
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
