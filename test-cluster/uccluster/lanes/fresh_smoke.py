"""fresh-smoke - a clean six-node cluster comes up and survives the basic
faults: leaders and membership, IAM tokens across nodes, writes and reads
through every member, kill -9 of the leader (no acknowledged write lost),
a partitioned member (503 while the majority serves) and its catch-up.
"""

import random
import time

import requests

from .. import api, netns
from ..artifacts import expect
from .common import Writer, store_names, wait_until

STEPS = ["start", "island", "iam-token"] + [
    "%s-%s" % (s, x) for s in ("chainfire", "flaredb")
    for x in ("leader-membership", "write-read-every-member", "kill-leader", "partition",
              "heal")]


def budget(opts):
    return 170  # the target is under 3 minutes


def run(ctx):
    cl, rec = ctx.cl, ctx.rec
    with rec.step("start"):
        t = time.monotonic()
        cl.start()
        rec.figure("start_s", time.monotonic() - t)
    island(ctx)
    iam_token(ctx)
    _, missing = store_names(ctx)
    for name in ("chainfire", "flaredb"):
        if name in missing:
            for x in STEPS:
                if x.startswith(name + "-"):
                    rec.skip(x, missing[name])
            continue
        store_lane(ctx, name)


def island(ctx):
    cl, rec = ctx.cl, ctx.rec
    if cl.mode != "netns":
        rec.skip("island", "loopback mode (%s): nodes share the host network" % cl.mode_reason)
        return
    with rec.step("island"):
        cl.net.leave_client()
        hosts = netns.host_addresses()  # the root namespace's, hence the dance
        cl.net.enter_client()
        # with no host address to probe, the routes and the hub still prove it
        rec.evidence("island.json", cl.net.island_check(hosts))


def iam_token(ctx):
    """A token issued by node01's IAM is accepted by chainfire on node02,
    which verifies it with node02's IAM key set; a forged one is not."""
    cl, rec = ctx.cl, ctx.rec
    with rec.step("iam-token"):
        token = cl.token()
        issuer = cl.iam_node()
        kid = api.token_kid(token)
        ev = {"issuer": issuer.name, "kid": kid, "nodes": {}}
        for node in cl.desc.control_plane():
            iam = cl.daemon(node.name, "iam")
            r = api.Http(iam.url()).call("GET", api.API + "/keys")
            kids = [k.get("kid") for k in r.json().get("keys", [])]
            expect(kid in kids, "%s's JWKS lacks the token's kid %s (has %s)" % (
                iam.label, kid, kids))
            ev["nodes"][node.name] = {"jwks_kids": kids}
            for other in node.daemons():
                if other == "iam" or not cl.daemon(node.name, other).present():
                    continue
                d = cl.daemon(node.name, other)
                good = api.status(cl.http(d))
                bad = api.status(api.Http(d.url(), api.forge(token)))
                ev["nodes"][node.name][other] = {"token": good.status_code,
                                                 "forged": bad.status_code}
                expect(good.status_code == 200, "%s refuses %s's token: %s" % (
                    d.label, issuer.name, api.brief(good)))
                expect(bad.status_code == 401, "%s accepts a forged token: %s" % (
                    d.label, api.brief(bad)))
        rec.evidence("token.json", ev)


def store_lane(ctx, name):
    g, st = ctx.group(name), ctx.store(name)
    rec = ctx.rec
    with rec.step(name + "-leader-membership"):
        lead = g.leader(timeout=20)
        st.setup(lead)
        want = sorted(g.node_id(d) for d in g.members())
        for d in g.members():
            expect(g.voters(d) == want, "%s: voters %s, want %s" % (d.label, g.voters(d), want))
        rec.append("membership.json", g.snapshot(name + ": after start"))
    with rec.step(name + "-write-read-every-member"):
        every_member(ctx, g, st)
    with rec.step(name + "-kill-leader"):
        kill_leader(ctx, g, st)
    if ctx.cl.mode != "netns":
        for x in ("partition", "heal"):
            rec.skip("%s-%s" % (name, x), "loopback mode: partitions need namespaces (%s)"
                     % ctx.cl.mode_reason)
        return
    partition_and_heal(ctx, g, st)


def every_member(ctx, g, st):
    """Write through each member, then read every key through each member:
    linearizable (the leader's answer) and, once applied, locally."""
    keys = {}
    for d in g.members():
        key, val = "smoke/%s/via-%s" % (g.name, d.node.name), "v-%d" % random.randrange(1 << 30)
        outcome, detail = st.put_outcome(d, key, val)
        expect(outcome == "ok", "write through %s: %s %s" % (d.label, outcome, detail))
        keys[key] = val
    for d in g.members():
        for key, val in keys.items():
            got = st.read(d, key)
            expect(got == val, "%s: linearizable read of %s gave %r, want %r" % (
                d.label, key, got, val))
            wait_until(lambda: st.read(d, key, local=True) == val, ctx.t(10),
                       "%s: local read of %s shows %r" % (d.label, key, val))
    ctx.rec.evidence("%s-every-member.json" % g.name, keys)


def kill_leader(ctx, g, st):
    rec = ctx.rec
    old = g.leader()
    w = Writer(ctx, g, st, "smoke/%s/burst" % g.name)
    w.start()
    time.sleep(1.0)
    killed_at = time.monotonic()
    old.kill()
    new = g.leader(timeout=20, exclude=(g.node_id(old),))
    rec.figure("%s_failover_s" % g.name, time.monotonic() - killed_at)
    time.sleep(1.0)
    w.stop.set()
    w.join(timeout=ctx.t(20))
    expect(not w.is_alive(), "writer did not stop")
    expect(w.acked, "no write was acknowledged during the leader kill")
    rec.figure("%s_burst_acked" % g.name, len(w.acked))
    rec.figure("%s_burst_unknown" % g.name, len(w.unknown))
    lost = st.has_all(new, w.acked, w.prefix, local=False)
    expect(not lost, "acknowledged writes lost after killing leader %s: %s" % (
        old.label, lost[:10]))
    t = time.monotonic()
    old.start()
    st.wait_has_all(old, w.acked, w.prefix, ctx.t(20))
    rec.figure("%s_rejoin_s" % g.name, time.monotonic() - t)
    rec.append("membership.json", g.snapshot("%s: leader %s killed, %s leads, %s rejoined" % (
        g.name, old.label, new.label, old.label)))
    rec.evidence("%s-kill-leader.json" % g.name, {
        "old_leader": old.label, "new_leader": new.label, "acked": len(w.acked),
        "unknown": sorted(w.unknown), "failed": w.failed})


def partition_and_heal(ctx, g, st):
    cl, rec = ctx.cl, ctx.rec
    name = g.name
    with rec.step(name + "-partition"):
        lead = g.leader()
        cut = next(d for d in g.members() if d is not lead)
        rest = [d for d in g.members() if d is not cut]
        cl.net.partition([cut.node], [n for n in cl.desc.nodes if n is not cut.node])
        ev = {"cut_off": cut.label, "rules": cl.net.rules(cut.node.name), "answers": {}}
        # the member's own deadline (--request-timeout-ms, 5 s by default) + 3 s
        deadline = ctx.t(cut.raw_config().get("request_timeout_ms", 5000) / 1000.0 + 3.0)
        for what, call in (("write", lambda h: st.put(h, "smoke/%s/cut" % name, "x")),
                           ("read", lambda h: st.get(h, "smoke/%s/cut" % name))):
            t = time.monotonic()
            try:
                r = call(st.http(cut, timeout=deadline + 5))
                answer = api.brief(r)
                status = r.status_code
            except requests.RequestException as e:
                answer, status = type(e).__name__, None
            took = time.monotonic() - t
            ev["answers"][what] = {"answer": answer, "seconds": round(took, 3)}
            rec.figure("%s_partitioned_%s_answer_s" % (name, what), took)
            expect(status == 503, "partitioned %s answered the %s with %s, want 503" % (
                cut.label, what, answer))
            expect(took <= deadline, "partitioned %s took %.1fs to answer, limit %.1fs" % (
                cut.label, took, deadline))
        majority = {}
        for i, d in enumerate(rest * 3):
            key, val = "smoke/%s/during-partition/%d" % (name, i), "p%d" % i
            outcome, detail = st.put_outcome(d, key, val)
            expect(outcome == "ok", "majority write through %s: %s %s" % (d.label, outcome,
                                                                           detail))
            majority[key] = val
        ev["majority_writes"] = majority
        rec.evidence("%s-partition.json" % name, ev)
        rec.append("membership.json", g.snapshot("%s: %s partitioned" % (name, cut.label)))
    with rec.step(name + "-heal"):
        cl.net.heal()
        t = time.monotonic()
        st.wait_has_all(cut, majority, "smoke/%s/during-partition/" % name, ctx.t(20))
        rec.figure("%s_catchup_s" % name, time.monotonic() - t)
        got = st.read(cut, next(iter(majority)))
        expect(got is not None, "linearizable read through healed %s failed" % cut.label)
        rec.append("membership.json", g.snapshot("%s: healed" % name))

