"""consistency - concurrent clients read, write and compare-and-swap a few
keys in chainfire and flaredb while members are killed, restarted and
partitioned at random; the recorded history must be linearizable.

Each client records every operation with its invocation and completion
time (monotonic clock of this one process, so all clients share it) and
its outcome; timeouts and 5xx answers are "unknown" (may or may not have
happened). After the faults stop, the history of every key goes through
the Wing-Gong checker (linearizability.py); a failure writes and prints the
shortest non-linearizable sub-history it found.
"""

import random
import threading
import time

import requests

from .. import linearizability as lin
from ..artifacts import StepFailed, expect
from .common import transport_outcome

KEYS = 3
OP_TIMEOUT = 6.0  # a client's patience per operation (the daemons' deadline is 5 s)
STEPS = ["start", "run", "recover"] + ["%s-linearizable" % s for s in ("chainfire", "flaredb")]
FAULTS = ("kill", "partition", "stop-node")


def budget(opts):
    return opts.get("duration", 60) + 240


def run(ctx):
    cl, rec = ctx.cl, ctx.rec
    duration = ctx.opts.get("duration", 60)
    seed = ctx.opts.get("seed", int(time.time()))
    rec.note("seed", seed)
    rec.note("duration_s", duration)
    rng = random.Random(seed)
    with rec.step("start"):
        cl.start()
    stores = [s for s in ("chainfire", "flaredb") if ctx.present(s)]
    for s in ("chainfire", "flaredb"):
        if s not in stores:
            rec.skip(s + "-linearizable", "%s is not built (%s/%s missing)" % (s, cl.bin_dir, s))
    if cl.mode != "netns":
        rec.skip("partition faults", "loopback mode: only kill and stop-node faults (%s)"
                 % cl.mode_reason)
    clients = []
    with rec.step("run"):
        for s in stores:
            g = ctx.group(s)
            g.leader(timeout=20)
            ctx.store(s).setup(g.leader())
        prefix = "lin/%d" % seed
        for s in stores:
            for i in range(ctx.opts.get("clients", 4)):
                clients.append(Client(ctx, s, len(clients) + 1, prefix, rng.randrange(1 << 30)))
        rec.threads = clients
        for c in clients:
            c.start()
        faults = Nemesis(ctx, rng, stores).run(duration)
        rec.evidence("faults.json", faults)
        rec.figure("faults", len(faults))
    with rec.step("recover"):
        recover(ctx, stores)
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(timeout=ctx.t(OP_TIMEOUT + 5))
        expect(not any(c.is_alive() for c in clients), "a client did not stop")
    for s in stores:
        with rec.step(s + "-linearizable"):
            verdict(ctx, s, [op for c in clients if c.store_name == s for op in c.history])


class Client(threading.Thread):
    """One process of the history: random read/write/cas on KEYS keys
    through random members, until told to stop (bounded by count too)."""

    MAX_OPS = 20000

    def __init__(self, ctx, store_name, process, prefix, seed):
        super().__init__(daemon=True)
        self.ctx, self.store_name, self.process = ctx, store_name, process
        self.st = ctx.store(store_name)
        self.g = ctx.group(store_name)
        self.members = self.g.members()
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.history = []
        self.stop = threading.Event()
        self.session = requests.Session()
        self.last_seen = {}

    def run(self):
        for n in range(self.MAX_OPS):
            if self.stop.is_set() or self.ctx.stop_event.is_set():
                return
            key = "%s/%d" % (self.prefix, self.rng.randrange(KEYS))
            d = self.rng.choice(self.members)
            f = self.rng.choice(("read", "read", "write", "cas"))
            value = "p%d-%d" % (self.process, n)
            op = {"process": self.process, "key": key, "f": f, "node": d.node.name,
                  "value": None, "result": None}
            if f == "write":
                op["value"] = value
            elif f == "cas":
                op["value"] = [self.last_seen.get(key), value]
            op["invoke"] = time.monotonic()
            self.do(op, d, key)
            op["complete"] = time.monotonic() if op["status"] == "ok" else None
            self.history.append(op)
            if op["status"] != "ok":
                time.sleep(0.05)  # a member is down or cut off: do not spin

    def do(self, op, d, key):
        http = self.st.http(d, OP_TIMEOUT, self.session)
        try:
            if op["f"] == "read":
                r = self.st.get(http, key)
                ok, val = self.st.parse_get(r)
                op["status"] = "ok" if ok else "unknown"
                if ok:
                    op["result"] = self.last_seen[key] = val
                else:
                    op["error"] = r.status_code
            elif op["f"] == "write":
                r = self.st.put(http, key, op["value"])
                op["status"] = self.st.classify(r)
                if op["status"] != "ok":
                    op["error"] = r.status_code
            else:
                op["status"], op["result"] = self.st.cas(http, key, *op["value"])
        except requests.RequestException as e:
            op["status"] = transport_outcome(e)
            op["error"] = type(e).__name__


class Nemesis:
    """Random faults, one at a time, for `duration` seconds: kill -9 a
    member and restart it, partition a node from the rest and heal, stop a
    whole node and start it. Every fault is undone before the next."""

    def __init__(self, ctx, rng, stores):
        self.ctx, self.cl, self.rng, self.stores = ctx, ctx.cl, rng, stores
        self.kinds = [k for k in FAULTS if k != "partition" or self.cl.mode == "netns"]
        self.log = []
        self.t0 = time.monotonic()

    def run(self, duration):
        end = time.monotonic() + duration
        while time.monotonic() < end:
            time.sleep(min(self.rng.uniform(1.0, 3.0), max(0.0, end - time.monotonic())))
            if time.monotonic() >= end:
                break
            kind = self.rng.choice(self.kinds)
            node = self.rng.choice(self.cl.desc.control_plane())
            hold = min(self.rng.uniform(1.0, 4.0), max(0.5, end - time.monotonic()))
            entry = {"fault": kind, "node": node.name, "at": round(time.monotonic() - self.t0, 3)}
            self.log.append(entry)
            print("    nemesis: %s %s for %.1fs" % (kind, node.name, hold), flush=True)
            getattr(self, kind.replace("-", "_"))(node, hold, entry)
            entry["healed_at"] = round(time.monotonic() - self.t0, 3)
        return self.log

    def kill(self, node, hold, entry):
        d = self.cl.daemon(node.name, self.rng.choice(self.stores))
        entry["daemon"] = d.name
        d.kill()
        time.sleep(hold)
        d.start()

    def partition(self, node, hold, entry):
        self.cl.net.partition([node], [n for n in self.cl.desc.nodes if n is not node])
        time.sleep(hold)
        self.cl.net.heal()

    def stop_node(self, node, hold, entry):
        entry["problems"] = self.cl.stop_node(node.name, kill=False)
        time.sleep(hold)
        self.cl.start_node(node.name)


def recover(ctx, stores):
    """Heal, start whatever is down, and wait for a leader in every store."""
    cl = ctx.cl
    if cl.mode == "netns":
        cl.net.heal()
    for d in cl.all_daemons():
        if d.present() and not d.running():
            d.start()
    for s in stores:
        ctx.group(s).leader(timeout=30)


def verdict(ctx, store, history):
    rec = ctx.rec
    t0 = min((op["invoke"] for op in history), default=0.0)
    rec.evidence("history-%s.json" % store, history)
    counts = {}
    for op in history:
        counts[op["status"]] = counts.get(op["status"], 0) + 1
    rec.figure("%s_ops" % store, len(history))
    for k, v in sorted(counts.items()):
        rec.figure("%s_ops_%s" % (store, k), v)
    expect(counts.get("ok", 0) > 0, "no operation completed: the history proves nothing")
    t = time.monotonic()
    result = lin.check(history)
    rec.figure("%s_check_s" % store, time.monotonic() - t)
    bad = []
    for key, res in result.items():
        if res["counterexample"]:
            lines = lin.describe(res["counterexample"], t0)
            rec.evidence("counterexample-%s-%s.txt" % (store, key.replace("/", "_")),
                         "\n".join(lines) + "\n")
            res["counterexample"] = lines
            print("    %s key %s is NOT linearizable; shortest sub-history (%d ops):\n      %s"
                  % (store, key, len(lines), "\n      ".join(lines)), flush=True)
            bad.append(key)
        elif res["inconclusive"]:
            bad.append(key)
    rec.evidence("linearizability-%s.json" % store, result)
    if bad:
        raise StepFailed("%s: keys %s not linearizable (or the check was inconclusive); see "
                         "linearizability-%s.json" % (store, bad, store))
