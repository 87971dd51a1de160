"""durability-proof - nothing acknowledged is ever lost.

1. Backup and restore: seed keys (chainfire) and rows (flaredb), take
   GET /api/v1/cluster/backup, destroy every node's state (disks and all),
   start a fresh cluster with --restore-from on one bootstrapping member,
   and find every key and row on every member.
2. Crashes under load: kill -9 members (leader, follower, then all of
   them at once) in the middle of write bursts; every acknowledged write
   must be readable afterwards, through the leader and on every member.
3. Disk faults (with loop-mounted node disks): a follower's filesystem
   full while the leader takes writes, then freed (it must catch up); the
   leader's disk throttled (writes must still succeed, only slower).
"""

import os
import random
import shutil
import time

from .. import api
from ..artifacts import expect
from .common import Abort, Writer, store_names, wait_until

SEED_KEYS = 200
ROUNDS = ("leader", "follower", "all")
STEPS = ["start"] + ["%s-%s" % (s, x) for s in ("chainfire", "flaredb")
                     for x in ("seed", "backup")] + ["destroy", "restart-restoring"] + [
    "%s-%s" % (s, x) for s in ("chainfire", "flaredb")
    for x in ("restore", "verify-restore", "kill-bursts", "disk-full-follower",
              "slow-leader-disk")]


def budget(opts):
    return 420


def run(ctx):
    cl, rec = ctx.cl, ctx.rec
    with rec.step("start"):
        cl.start()
    present, missing = store_names(ctx)
    for name, why in missing.items():
        for x in STEPS:
            if x.startswith(name + "-"):
                rec.skip(x, why)
    seeds, backups = {}, {}
    for name in present:
        seeds[name], backups[name] = seed_and_backup(ctx, name)
    with rec.step("destroy"):
        destroy(ctx)
    with rec.step("restart-restoring"):
        for name in present:
            d = ctx.group(name).members()[0]
            d.overrides["restore_from"] = os.path.relpath(backups[name], cl.repo)
        cl.start()
    for name in present:
        restore_and_verify(ctx, name, seeds[name])
    for name in present:
        with rec.step(name + "-kill-bursts"):
            kill_bursts(ctx, name)
        if not cl.disks.enabled:
            for x in ("disk-full-follower", "slow-leader-disk"):
                rec.skip("%s-%s" % (name, x), "no loop-mounted node disks (%s)" %
                         cl.disks.reason)
            continue
        with rec.step(name + "-disk-full-follower"):
            disk_full_follower(ctx, name)
        with rec.step(name + "-slow-leader-disk"):
            slow_leader_disk(ctx, name)


def seed_and_backup(ctx, name):
    g, st, rec = ctx.group(name), ctx.store(name), ctx.rec
    with rec.step(name + "-seed"):
        lead = g.leader(timeout=20)
        st.setup(lead)
        seed = {"durable/%s/%04d" % (name, i): "s%d-%d" % (i, random.randrange(1 << 30))
                for i in range(SEED_KEYS)}
        for k, v in seed.items():
            outcome, detail = st.put_outcome(lead, k, v)
            expect(outcome == "ok", "seed write %s: %s %s" % (k, outcome, detail))
        rec.evidence("%s-seed.json" % name, seed)
    with rec.step(name + "-backup"):
        t = time.monotonic()
        r = api.backup(ctx.cl.http(g.leader()))
        expect(r.status_code == 200, "backup: %s" % api.brief(r))
        expect(r.content[:8] == b"ucbackup", "the backup does not start with the "
                                             "'ucbackup' header")
        path = os.path.join(rec.dir, "%s-backup.bin" % name)
        with open(path, "wb") as f:
            f.write(r.content)
        rec.figure("%s_backup_s" % name, time.monotonic() - t)
        rec.figure("%s_backup_bytes" % name, len(r.content))
    return seed, path


def destroy(ctx):
    """Stop everything and delete all node state (disk images included);
    the shared secrets stay, as an operator's would."""
    cl = ctx.cl
    problems = cl.stop()
    expect(not problems, "stopping the cluster: %s" % problems)
    for node in cl.desc.nodes:
        shutil.rmtree(os.path.join(cl.state_dir, node.name), ignore_errors=True)
    shutil.rmtree(os.path.join(cl.state_dir, "disks"), ignore_errors=True)
    for d in cl.all_daemons():
        data = d.raw_config().get("data_dir")
        expect(not data or not os.path.exists(os.path.join(cl.repo, data)),
               "%s still exists after destroy" % data)
    cl._token = None  # IAM's store is gone too: the admin is made again


def restore_and_verify(ctx, name, seed):
    g, st, rec = ctx.group(name), ctx.store(name), ctx.rec
    restorer = g.members()[0]
    with rec.step(name + "-restore"):
        t = time.monotonic()
        lead = g.leader(timeout=20)
        if lead is not restorer:
            # the restore is proposed by its member only while it leads
            r = api.leader_transfer(ctx.cl.http(lead), g.node_id(restorer))
            expect(r.status_code == 200, "leader transfer to %s: %s" % (
                restorer.label, api.brief(r)))

        def done():
            state = g.status(restorer).get("restore") or {}
            if state.get("state") == "refused":
                raise Abort("%s refused the backup: %s" % (restorer.label,
                                                               state.get("message")))
            return state if state.get("state") == "done" else None
        state = wait_until(done, ctx.t(30), "%s reports the restore done" % restorer.label)
        rec.figure("%s_restore_s" % name, time.monotonic() - t)
        rec.evidence("%s-restore.json" % name, state)
        restorer.overrides.pop("restore_from", None)
    with rec.step(name + "-verify-restore"):
        lead = g.leader()
        prefix = "durable/%s/" % name
        missing = st.has_all(lead, seed, prefix, local=False)
        expect(not missing, "%d of %d keys missing or wrong after the restore: %s" % (
            len(missing), len(seed), missing[:5]))
        for d in g.members():
            st.wait_has_all(d, seed, prefix, ctx.t(20))
        rec.append("membership.json", g.snapshot("%s: restored" % name))


def kill_bursts(ctx, name):
    g, st, rec = ctx.group(name), ctx.store(name), ctx.rec
    rounds = list(ROUNDS)[:ctx.opts.get("rounds", len(ROUNDS))]
    acked, unknown, log = {}, 0, []
    for i, kind in enumerate(rounds):
        w = Writer(ctx, g, st, "durable/%s/burst%d" % (name, i))
        w.start()
        rec.threads = [w]
        time.sleep(1.5)
        lead = g.leader()
        victims = {"leader": [lead], "all": g.members(),
                   "follower": [random.choice([d for d in g.members() if d is not lead])]}[kind]
        for d in victims:
            d.kill()
        time.sleep(1.0)
        for d in victims:
            d.start()
        g.leader(timeout=20)
        time.sleep(1.0)
        w.stop.set()
        w.join(timeout=ctx.t(20))
        expect(not w.is_alive(), "writer did not stop")
        log.append({"round": kind, "killed": [d.label for d in victims],
                    "acked": len(w.acked), "unknown": len(w.unknown)})
        acked.update(w.acked)
        unknown += len(w.unknown)
    rec.figure("%s_burst_acked" % name, len(acked))
    rec.figure("%s_burst_unknown" % name, unknown)
    rec.evidence("%s-kill-bursts.json" % name, log)
    expect(acked, "no write was acknowledged in the bursts")
    lead = g.leader()
    prefix = "durable/%s/burst" % name
    lost = st.has_all(lead, acked, prefix, local=False)
    expect(not lost, "%d acknowledged writes lost: %s" % (len(lost), lost[:10]))
    for d in g.members():
        st.wait_has_all(d, acked, prefix, ctx.t(20))


def disk_full_follower(ctx, name):
    g, st, rec, cl = ctx.group(name), ctx.store(name), ctx.rec, ctx.cl
    lead = g.leader()
    victim = next(d for d in g.members() if d is not lead)
    filled = cl.disks.fill(victim.node)
    ev = {"follower": victim.label, "fill": filled}
    try:
        want = {"durable/%s/full/%03d" % (name, i): "f%d" % i for i in range(100)}
        for k, v in want.items():
            outcome, detail = st.put_outcome(lead, k, v)
            expect(outcome == "ok", "write with %s's disk full: %s %s" % (
                victim.label, outcome, detail))
        ev["follower_running_while_full"] = victim.running()
    finally:
        ev["unfill"] = cl.disks.unfill(victim.node)
    expect(ev["follower_running_while_full"], "%s died with its disk full" % victim.label)
    t = time.monotonic()
    st.wait_has_all(victim, want, "durable/%s/full/" % name, ctx.t(20))
    rec.figure("%s_full_follower_catchup_s" % name, time.monotonic() - t)
    rec.evidence("%s-disk-full.json" % name, ev)


def write_latency(st, d, prefix, n=20):
    """Median seconds of n writes through d."""
    took = []
    for i in range(n):
        t = time.monotonic()
        outcome, detail = st.put_outcome(d, "%s/%03d" % (prefix, i), "x")
        expect(outcome == "ok", "write through %s: %s %s" % (d.label, outcome, detail))
        took.append(time.monotonic() - t)
    return sorted(took)[n // 2]


def slow_leader_disk(ctx, name, iops=20):
    g, st, rec, cl = ctx.group(name), ctx.store(name), ctx.rec, ctx.cl
    lead = g.leader()
    base = write_latency(st, lead, "durable/%s/fast" % name)
    pids = [d.pid() for d in cl.all_daemons() if d.node is lead.node and d.pid()]
    cl.disks.slow(lead.node, iops, pids)
    try:
        slow = write_latency(st, lead, "durable/%s/slow" % name)
    finally:
        cl.disks.unslow(lead.node)
    rec.figure("%s_write_median_ms" % name, base * 1000)
    rec.figure("%s_write_median_ms_at_%d_iops" % (name, iops), slow * 1000)
    expect(slow > 2 * base, "throttling %s's disk to %d IOPS did not slow its writes "
                            "(%.1f ms -> %.1f ms): the fault did not bite" % (
                                lead.label, iops, base * 1000, slow * 1000))
