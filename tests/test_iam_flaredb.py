"""IAM on a 3-member flaredb cluster (--store flaredb:...): the bootstrap
cycle (iam reads its keyring with a token it signs itself, which flaredb
checks against this very iam's JWKS), either start order, and iam going on
working through a kill -9 of the flaredb leader with nothing it acknowledged
lost. docs/operations.md ("iam on flaredb") describes the set-up."""

import http.server
import threading
import time

import pytest
import requests

import ucharness
from fdbharness import API, FdbCluster, wait_for
from iamharness import Iam, token_claims, token_header, unique
from ucharness import (Client, Daemon, binary, daemon_env, expect, free_port, run_once,
                        timeout_scale)

pytestmark = [pytest.mark.iam, pytest.mark.flaredb]

NAMESPACE = "iam"


class FixedPortDaemon(Daemon):
    """A Daemon that always listens on one port: flaredb is told iam's JWKS
    URL before iam starts (and iam is told flaredb's, so one side must be
    fixed in advance)."""

    def __init__(self, port, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fixed_port = port

    def _spawn(self):
        real = ucharness.free_port
        ucharness.free_port = lambda host="127.0.0.1": self.fixed_port
        try:
            super()._spawn()
        finally:
            ucharness.free_port = real


class Setup:
    """flaredb x3 whose members trust the JWKS of an iam on a fixed port,
    and that iam, storing its data in the flaredb namespace "iam". Every
    port is picked up front, so either side can start first."""

    def __init__(self, tmp_path):
        self.iam_port = free_port()
        self.cluster = FdbCluster(tmp_path, iam=_JwksOnly(self.iam_port))
        self.cluster.own_iam = False
        for m in self.cluster.members:
            d = m.daemon
            m.daemon = FixedPortDaemon(free_port(), d.binary, d.args, d.workdir, name=d.name,
                                       env=d.env)
        iam_dir = tmp_path / "iam"
        iam_dir.mkdir()
        self.iam = Iam(iam_dir, extra_args=["--store", self.store_url()])

    def store_url(self):
        members = ",".join("http://127.0.0.1:%d" % m.daemon.fixed_port
                           for m in self.cluster.members)
        return "flaredb:%s/%s?timeout_ms=%d" % (members, NAMESPACE, int(10000 * timeout_scale()))

    def iam_daemon(self, wait_ready=True):
        """iam's Daemon on the fixed port; without wait_ready, start()
        returns once /healthz answers."""
        iam = self.iam
        iam.daemon = FixedPortDaemon(self.iam_port, binary("iam"), iam.args(), iam.dir,
                                     name="iam", env=daemon_env(("UC_", "IAM_")),
                                     ready_path="/readyz" if wait_ready else None)
        iam.admin = Client(iam.daemon, iam.bootstrap_token)
        iam.anon = Client(iam.daemon)
        return iam

    def start_flaredb(self):
        for m in self.cluster.members:
            m.start()

    def admin_token(self):
        """A system-admin JWT from iam, for the cluster's status calls."""
        admin = self.iam.create_user()
        self.iam.bind(admin.id, "system-admin")
        self.cluster.token = self.iam.token_for(admin)
        return self.cluster.token

    def stop(self):
        first = None
        try:
            self.iam.stop()
        except BaseException as e:  # noqa: B902 - pytest.fail raises a BaseException
            first = e
            self.iam.daemon.kill()
        try:
            self.cluster.stop()
        except BaseException as e:  # noqa: B902
            first = first or e
        if first is not None:
            raise first


class _JwksOnly:
    """What FdbCluster needs of an Iam before the real one runs: its URL."""

    def __init__(self, port):
        self.url = "http://127.0.0.1:%d" % port


@pytest.fixture
def setup(tmp_path):
    s = Setup(tmp_path)
    yield s
    s.stop()


def started(setup):
    """flaredb, then iam on it, then an admin token: the usual order."""
    setup.start_flaredb()
    setup.iam_daemon().start()
    setup.admin_token()
    return setup


def test_iam_serves_from_flaredb_and_its_data_lives_there(setup):
    s = started(setup)
    iam = s.iam
    project = iam.create_project()
    user = iam.new_user(role="member", project_id=project["id"])
    claims = token_claims(user.token)
    assert claims["project"] == project["id"] and claims["roles"] == ["member"]
    # The JWKS is the keyring's now, and names the key the token was signed with.
    keys = expect(iam.anon.get(API + "/keys"), 200)["keys"]
    assert token_header(user.token)["kid"] in [k["kid"] for k in keys]
    # The records are in flaredb's "iam" namespace, and every member has them.
    s.cluster.leader()
    counts = set()
    for m in s.cluster.members:
        def copied(m=m):
            r = m.client().post(API + "/kv/%s/scan" % NAMESPACE,
                                json={"limit": 10000, "consistency": "serializable"})
            n = len(expect(r, 200)["items"])
            return n if n > 5 else None
        counts.add(wait_for(copied, timeout=10))
    assert len(counts) == 1, counts
    # iam restarts on the same namespace: same data, its key "already known".
    iam.restart()
    expect(iam.admin.get(API + "/projects/" + project["id"]), 200)
    assert iam.token_for(user, project["id"])
    assert "already known" in iam.daemon.stderr_text()


def test_iam_started_before_flaredb_waits_for_it(setup):
    s = setup
    iam = s.iam_daemon(wait_ready=False).start()
    # Serving but not ready: the JWKS holds the signing key file's key only,
    # everything else answers 503 until the keyring is read from flaredb.
    keys = expect(iam.anon.get(API + "/keys"), 200)["keys"]
    assert len(keys) == 1
    r = iam.anon.post(API + "/tokens", json={"grant_type": "password", "username": "nobody",
                                             "password": "nothing"})
    assert r.status_code == 503, r.text
    assert iam.admin.get(API + "/projects").status_code == 503
    assert iam.anon.get("/readyz").status_code == 503
    wait_for(lambda: "store not usable yet" in iam.daemon.stderr_text(), timeout=20)
    s.start_flaredb()
    wait_for(lambda: iam.anon.get("/readyz").status_code == 200, timeout=30)
    assert expect(iam.anon.get(API + "/keys"), 200)["keys"][0]["kid"] == keys[0]["kid"]
    s.admin_token()
    project = iam.create_project()
    expect(iam.admin.get(API + "/projects/" + project["id"]), 200)


def test_iam_refuses_a_bad_flaredb_url(setup):
    iam = setup.iam
    cp = run_once(binary("iam"), iam.args()[:-2] + ["--store", "flaredb:http://x:1/Bad NS"])
    assert cp.returncode == 2, cp.stderr_text
    assert "namespace" in cp.stderr_text and "--store" in cp.stderr_text


class Writer(threading.Thread):
    """Creates projects one after another through iam until told to stop,
    noting every one iam acknowledged (201) and every other answer."""

    def __init__(self, iam):
        super().__init__(daemon=True)
        self.iam = iam
        self.acked = []
        self.other = []
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            name = unique("kp")
            try:
                r = self.iam.admin.post(API + "/projects", json={"name": name}, timeout=30)
            except Exception as e:  # noqa: BLE001 - a dropped connection counts as "not acked"
                self.other.append(repr(e))
                continue
            if r.status_code == 201:
                self.acked.append(r.json()["id"])
            else:
                self.other.append((r.status_code, r.text[:200]))
                time.sleep(0.05)


def test_iam_survives_a_flaredb_leader_kill(setup):
    s = started(setup)
    iam = s.iam
    project = iam.create_project()
    user = iam.new_user(role="admin", project_id=project["id"])
    writer = Writer(iam)
    writer.start()
    wait_for(lambda: len(writer.acked) >= 5, timeout=20)
    old = s.cluster.leader()
    old.daemon.kill()
    killed_at = time.monotonic()
    acked_at_kill = len(writer.acked)
    new = s.cluster.leader(timeout=20, exclude=(old.id,))
    assert new is not old
    # iam keeps working once a new leader is elected: token issue, reads, writes.
    wait_for(lambda: len(writer.acked) >= acked_at_kill + 5, timeout=30)
    print("writes acknowledged before the kill: %d; 5 more within %.2f s of it; "
          "other answers meanwhile: %s" % (acked_at_kill, time.monotonic() - killed_at,
                                           writer.other))
    token = iam.token_for(user, project["id"])
    client = iam.client(token)
    expect(client.get(API + "/projects/" + project["id"]), 200)
    sa = expect(client.post(API + "/service-accounts",
                            json={"name": unique("sa"), "project_id": project["id"]}), 201)
    expect(client.get(API + "/service-accounts/" + sa["id"]), 200)
    assert iam.anon.get("/readyz").status_code == 200
    writer.stop_flag.set()
    writer.join(timeout=60)
    # Only 503s (no leader yet, or a lost answer) are allowed in between.
    assert all(isinstance(o, tuple) and o[0] == 503 for o in writer.other), writer.other[:5]
    # Nothing iam acknowledged is lost, and nothing is there twice.
    listed = []
    token_page = None
    while True:
        q = "?limit=100" + ("&page_token=" + token_page if token_page else "")
        page = expect(iam.admin.get(API + "/projects" + q), 200)
        listed += [p["id"] for p in page["items"]]
        token_page = page.get("next_page_token")
        if not token_page:
            break
    assert len(listed) == len(set(listed))
    missing = set(writer.acked) - set(listed)
    assert not missing, "acknowledged projects lost: %s" % sorted(missing)[:5]
    # The killed member comes back and catches up; iam is unaffected.
    old.start()
    expect(iam.admin.get(API + "/projects/" + writer.acked[-1]), 200)


class LossyProxy:
    """An HTTP proxy in front of one flaredb member that forwards every
    request and relays the answer, except that it drops the answer to every
    `every`-th write (shared among proxies): the write is applied, but the
    client sees the connection close. That is the lost answer the flaredb
    store backend must neither apply twice nor report as failed."""

    writes = 0
    dropped = 0
    lock = threading.Lock()

    def __init__(self, upstream, every):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def relay(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "content-type", "accept")}
                r = requests.request(self.command, proxy.upstream() + self.path, data=body,
                                     headers=headers, timeout=30)
                if self.command != "GET" and not self.path.endswith("/scan") and \
                        proxy.drop_now():
                    self.close_connection = True
                    return
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("Content-Type", "text/plain"))
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_PUT = do_POST = do_DELETE = relay

        self.upstream = upstream
        self.every = every
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def drop_now(self):
        with LossyProxy.lock:
            LossyProxy.writes += 1
            drop = LossyProxy.writes % self.every == 0
            LossyProxy.dropped += drop
            return drop

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_iam_writes_survive_lost_answers_without_applying_twice(setup):
    """Every third write's answer is lost after flaredb applied it: iam's
    store backend re-sends fenced writes, reads the keys back when the
    re-sent one conflicts, and reports them applied, so every request
    succeeds once and no record exists twice."""
    s = setup
    s.start_flaredb()
    proxies = [LossyProxy(lambda m=m: m.daemon.base_url, every=3) for m in s.cluster.members]
    try:
        members = ",".join(p.url for p in proxies)
        s.iam.extra_args = ["--store", "flaredb:%s/%s" % (members, NAMESPACE)]
        iam = s.iam_daemon().start()
        s.admin_token()
        dropped_at_start = LossyProxy.dropped
        made = [iam.create_project()["id"] for _ in range(12)]
        user = iam.new_user(role="admin", project_id=made[0])
        for pid in made[1:4]:
            iam.bind(user.id, "member", pid)
        expect(iam.admin.delete(API + "/projects/" + made[-1]), 204)
        listed = [p["id"] for p in expect(iam.admin.get(API + "/projects?limit=100"), 200)["items"]]
        assert sorted(listed) == sorted(made[:-1])
        assert iam.token_for(user, made[2])
        print("answers dropped: %d (of %d writes)" % (LossyProxy.dropped - dropped_at_start,
                                                       LossyProxy.writes))
        assert LossyProxy.dropped - dropped_at_start >= 5
    finally:
        s.iam.stop()
        for p in proxies:
            p.close()
