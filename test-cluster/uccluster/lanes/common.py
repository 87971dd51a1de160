"""common - what every lane uses: the raft groups (chainfire, flaredb), one
small store interface over both, and waiting with a deadline.

Store puts classify each write the way the linearizability checker needs:
"ok" (acknowledged), "fail" (a 4xx, or never reached a daemon: certainly
not applied) or "unknown" (anything else: a timeout, a reset, a 5xx; it
may or may not have taken effect). Only acknowledged writes are ever
required to be present.
"""

import itertools
import threading
import time

import requests

from .. import api
from ..artifacts import StepFailed, expect

READ_TIMEOUT = 12.0  # a client's patience; chainfire's own deadline is 5 s


def transport_outcome(e):
    """A request that never reached the daemon (refused, no route, connect
    timeout) certainly did nothing: "fail". Anything later: "unknown"."""
    if isinstance(e, requests.ConnectTimeout):
        return "fail"
    text = repr(e)
    if isinstance(e, requests.ConnectionError) and (
            "NewConnectionError" in text or "Connection refused" in text):
        return "fail"
    return "unknown"


class Abort(StepFailed):
    """A failure that waiting longer cannot fix (wait_until passes it on)."""


def wait_until(fn, timeout, what, interval=0.1):
    """Call fn until it returns something truthy; StepFailed after `timeout`
    seconds naming `what` and the last value or error seen. Errors on the
    way (a member still starting) are retried, except Abort."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            val = fn()
            if val:
                return val
            last = val
        except Abort:
            raise
        except (StepFailed, requests.RequestException, ValueError, KeyError) as e:
            last = "%s: %s" % (type(e).__name__, e)
        if time.monotonic() >= deadline:
            raise StepFailed("%s: not within %.0fs (last: %s)" % (what, timeout, last))
        time.sleep(interval)


class Ctx:
    """A lane run: the cluster, the recorder and the options."""

    def __init__(self, cluster, rec, opts):
        self.cl = cluster
        self.rec = rec
        self.opts = opts
        self.scale = cluster.scale
        self.stop_event = threading.Event()

    def t(self, seconds):
        """A deadline stretched for sanitizer builds."""
        return seconds * self.scale

    def group(self, name):
        return Group(self, name)

    def store(self, name):
        return (ChainfireStore if name == "chainfire" else FlaredbStore)(self)

    def present(self, daemon):
        return any(d.present() for d in self.cl.all_daemons(daemon))


class Group:
    """The members of one raft daemon (description members + temporary)."""

    def __init__(self, ctx, name):
        self.ctx = ctx
        self.name = name

    def members(self):
        return [d for d in self.ctx.cl.all_daemons(self.name) if d.present()]

    def running(self):
        return [d for d in self.members() if d.running()]

    @staticmethod
    def node_id(d):
        return d.raw_config()["node_id"]

    def by_id(self, node_id):
        for d in self.members():
            if self.node_id(d) == node_id:
                return d
        raise StepFailed("%s has no member with id %s" % (self.name, node_id))

    def status(self, d, timeout=3.0):
        r = api.status(self.ctx.cl.http(d, timeout=timeout))
        if r.status_code != 200:
            raise StepFailed("%s status: %s" % (d.label, api.brief(r)))
        return r.json()

    def agreed_leader(self, among=None):
        """The member every member in `among` (default: running) names as
        leader and can forward to (it knows the leader's published api_url,
        on builds that publish one), or None."""
        seen = set()
        for d in among or self.running():
            try:
                st = self.status(d)
            except (StepFailed, requests.RequestException):
                return None
            lead = st.get("leader") or {}
            if "api_url" in st and not lead.get("api_url"):
                return None
            seen.add(lead.get("id"))
        if len(seen) != 1:
            return None
        lid = seen.pop()
        return self.by_id(lid) if lid is not None else None

    def leader(self, timeout=15.0, exclude=(), among=None):
        def check():
            d = self.agreed_leader(among)
            return d if d is not None and self.node_id(d) not in exclude else None
        return wait_until(check, self.ctx.t(timeout),
                          "%s: one leader agreed by every running member" % self.name)

    def snapshot(self, label):
        """Every member's view (status or the error), for evidence files."""
        out = {"step": label, "at": round(time.time(), 3), "members": {}}
        for d in self.members():
            if not d.running():
                out["members"][d.label] = {"state": "stopped"}
                continue
            try:
                st = self.status(d)
                out["members"][d.label] = {k: st.get(k) for k in (
                    "id", "role", "term", "leader", "members", "commit_index", "applied_index",
                    "revision")}
            except (StepFailed, requests.RequestException) as e:
                out["members"][d.label] = {"error": str(e)}
        return out

    def voters(self, d):
        return sorted(m["id"] for m in self.status(d).get("members", [])
                      if m.get("role") == "voter")


class Store:
    """put/get/cas over one raft daemon; see the module comment."""

    name = None

    def __init__(self, ctx):
        self.ctx = ctx

    def http(self, d, timeout=READ_TIMEOUT, session=None):
        return self.ctx.cl.http(d, timeout=timeout, session=session)

    @staticmethod
    def classify(r):
        if r.status_code == 200:
            return "ok"
        if 400 <= r.status_code < 500:
            return "fail"
        return "unknown"

    def put_outcome(self, d, key, value, session=None, timeout=READ_TIMEOUT):
        """(outcome, detail) of one put; never raises on transport errors."""
        try:
            r = self.put(self.http(d, timeout, session), key, value)
        except requests.RequestException as e:
            return transport_outcome(e), type(e).__name__
        return self.classify(r), ("" if r.status_code == 200 else api.brief(r))

    def read(self, d, key, local=False):
        """The value (None when absent); StepFailed on any other answer."""
        r = self.get(self.http(d), key, local)
        ok, val = self.parse_get(r)
        expect(ok, "%s: read %s: %s" % (d.label, key, api.brief(r)))
        return val

    def setup(self, d):
        pass

    def has_all(self, d, want, prefix, local):
        """Keys of `want` (key -> value) that `d` does not show with that
        value, from one prefix read."""
        got = self.dump(d, prefix, local)
        return sorted(k for k, v in want.items() if got.get(k) != v)

    def wait_has_all(self, d, want, prefix, timeout):
        """Wait until `d` shows all of `want` locally (it caught up)."""
        missing = []

        def check():
            missing[:] = self.has_all(d, want, prefix, True)
            return not missing
        try:
            wait_until(check, timeout, "%s shows all %d keys under %s" % (
                d.label, len(want), prefix))
        except StepFailed as e:
            raise StepFailed("%s; %d missing, e.g. %s" % (e, len(missing), missing[:5]))


class ChainfireStore(Store):
    name = "chainfire"

    def put(self, http, key, value):
        return api.cf_put(http, key, value)

    def get(self, http, key, local=False):
        return api.cf_get(http, key, serializable=local)

    @staticmethod
    def parse_get(r):
        if r.status_code in (200, 404):
            return True, api.cf_value(r)
        return False, None

    def dump(self, d, prefix, local=False):
        r = api.cf_prefix(self.http(d), prefix, serializable=local)
        expect(r.status_code == 200, "%s: range %s: %s" % (d.label, prefix, api.brief(r)))
        return {api.unb64(kv["key"]).decode(): api.unb64(kv["value"]).decode()
                for kv in r.json().get("kvs", [])}

    def cas(self, http, key, expected, new):
        """(outcome, succeeded)."""
        r = api.cf_cas(http, key, expected, new)
        if r.status_code == 200:
            return "ok", bool(r.json().get("succeeded"))
        return self.classify(r), None


TABLE = "uc_harness"


class FlaredbStore(Store):
    name = "flaredb"

    def setup(self, d):
        r = api.sql(self.http(d), [("CREATE TABLE IF NOT EXISTS %s (k TEXT PRIMARY KEY, v TEXT)"
                                    % TABLE, [])])
        expect(r.status_code == 200, "%s: create table: %s" % (d.label, api.brief(r)))

    def dump(self, d, prefix, local=False):
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        r = api.sql(self.http(d), [("SELECT k, v FROM %s WHERE k LIKE ? ESCAPE '\\'" % TABLE,
                                    [like])], consistency="serializable" if local else None)
        expect(r.status_code == 200, "%s: select %s: %s" % (d.label, prefix, api.brief(r)))
        return {k: v for k, v in r.json()["results"][0].get("rows") or []}

    def put(self, http, key, value):
        return api.sql(http, [("INSERT INTO %s(k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE "
                               "SET v = excluded.v" % TABLE, [key, value])])

    def get(self, http, key, local=False):
        return api.sql(http, [("SELECT v FROM %s WHERE k = ?" % TABLE, [key])],
                       consistency="serializable" if local else None)

    @staticmethod
    def parse_get(r):
        if r.status_code != 200:
            return False, None
        rows = r.json()["results"][0].get("rows") or []
        return True, (rows[0][0] if rows else None)

    def cas(self, http, key, expected, new):
        if expected is None:
            stmt = ("INSERT INTO %s(k, v) VALUES (?, ?) ON CONFLICT(k) DO NOTHING" % TABLE,
                    [key, new])
        else:
            stmt = ("UPDATE %s SET v = ? WHERE k = ? AND v = ?" % TABLE, [new, key, expected])
        r = api.sql(http, [stmt])
        if r.status_code == 200:
            return "ok", r.json()["results"][0].get("rows_affected") == 1
        return self.classify(r), None


def store_names(ctx):
    """The raft stores this run can test, and skip reasons for the others."""
    present, missing = [], {}
    for name in ("chainfire", "flaredb"):
        if ctx.present(name):
            present.append(name)
        else:
            missing[name] = "%s is not built (%s/%s missing)" % (name, ctx.cl.bin_dir, name)
    return present, missing


class Writer(threading.Thread):
    """Writes unique keys through the running members until stopped;
    remembers acknowledged and unknown writes."""

    def __init__(self, ctx, g, st, prefix):
        super().__init__(daemon=True)
        self.ctx, self.g, self.st, self.prefix = ctx, g, st, prefix
        self.acked, self.unknown, self.failed = {}, {}, {}
        self.stop = threading.Event()
        self.session = requests.Session()

    def run(self):
        for i in itertools.count():
            if self.stop.is_set() or self.ctx.stop_event.is_set() or i > 5000:
                return
            running = self.g.running()
            if not running:
                time.sleep(0.05)
                continue
            d = running[i % len(running)]
            key, val = "%s/%05d" % (self.prefix, i), "w%d" % i
            outcome, detail = self.st.put_outcome(d, key, val, self.session, timeout=6.0)
            {"ok": self.acked, "fail": self.failed, "unknown": self.unknown}[outcome][key] = val
