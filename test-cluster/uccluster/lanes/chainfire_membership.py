"""chainfire-live-membership-proof - the member set changes under a live
cluster and every member keeps serving the same data.

A temporary member 4 on node04 joins as a learner, catches up, is promoted
and takes the leadership, restarts and rejoins; then the current leader is
removed (re-election), re-added with an empty data dir, and member 4 leaves
again: the canonical three remain. After every step membership.json gets
each member's view and local-reads.json each member's local reads.
"""

import os
import shutil
import time

from .. import api, description
from ..artifacts import expect
from .common import wait_until

TEMP_NODE = "node04"
TEMP_ID = 4
STEPS = ["start", "seed", "add-learner", "learner-catch-up", "promote", "transfer-to-4",
         "restart-4", "remove-leader", "re-add-removed", "scale-back", "final-verify"]


def budget(opts):
    return 300


def run(ctx):
    cl, rec = ctx.cl, ctx.rec
    if not ctx.present("chainfire"):
        for s in STEPS:
            rec.skip(s, "chainfire is not built (%s/chainfire missing)" % cl.bin_dir)
        return
    lane = Membership(ctx)
    with rec.step("start"):
        cl.start()
    for name in STEPS[1:]:
        with rec.step(name):
            getattr(lane, name.replace("-", "_"))()
            lane.evidence(name)


class Membership:
    def __init__(self, ctx):
        self.ctx = ctx
        self.cl = ctx.cl
        self.g = ctx.group("chainfire")
        self.st = ctx.store("chainfire")
        self.data = {}  # key -> value every member must show
        self.n = 0
        self.config = {1, 2, 3}  # ids in the configuration, as the lane changed it

    # --- helpers ---------------------------------------------------------------

    def temp_config(self):
        """Member 4's options: node01's, moved to node04 (addresses, data
        dir), empty start, verifying tokens with node01's IAM."""
        first = self.cl.desc.members("chainfire")[0]
        node = self.cl.desc.node(TEMP_NODE)
        base = description.rewrite(first.services["chainfire"], {first.address: node.address})
        base.update(node_id=TEMP_ID, bootstrap=False,
                    iam_jwks_url=first.services["chainfire"]["iam_jwks_url"],
                    data_dir=base["data_dir"].replace("/%s/" % first.name, "/%s/" % node.name))
        return base

    def write(self, count=5, via=None):
        for _ in range(count):
            self.n += 1
            d = via or self.leader()
            k, v = "members/%04d" % self.n, "m%d" % self.n
            outcome, detail = self.st.put_outcome(d, k, v)
            expect(outcome == "ok", "write through %s: %s %s" % (d.label, outcome, detail))
            self.data[k] = v

    def caught_up(self, d, timeout=20):
        self.st.wait_has_all(d, self.data, "members/", self.ctx.t(timeout))

    def in_cluster(self):
        """Running members that are in the configuration."""
        return [d for d in self.g.running() if self.g.node_id(d) in self.config]

    def leader(self, **kw):
        return self.g.leader(among=self.in_cluster(), **kw)

    def voters_everywhere(self, want):
        want = sorted(want)
        for d in self.in_cluster():
            wait_until(lambda: self.g.voters(d) == want, self.ctx.t(15),
                       "%s lists voters %s" % (d.label, want))

    def call(self, what, r, ok=(200, 201)):
        expect(r.status_code in ok, "%s: %s" % (what, api.brief(r)))
        return r.json()

    def evidence(self, step):
        rec = self.ctx.rec
        rec.append("membership.json", self.g.snapshot(step))
        reads = {"step": step, "members": {}}
        for d in self.in_cluster():
            reads["members"][d.label] = {k: self.st.read(d, k, local=True)
                                         for k in sorted(self.data)[-5:]}
        rec.append("local-reads.json", reads)

    # --- steps -------------------------------------------------------------------

    def seed(self):
        self.leader(timeout=20)
        self.write(20)

    def add_learner(self):
        self.temp = self.cl.add_temp(TEMP_NODE, "chainfire", self.temp_config())
        self.temp.start()
        raw = self.temp.raw_config()
        body = self.call("add member 4", api.member_add(
            self.cl.http(self.leader()), TEMP_ID, raw["raft_address"], raw["advertise_url"]))
        roles = {m["id"]: m.get("role") for m in body.get("members", [])}
        expect(roles.get(TEMP_ID) == "learner", "member 4 after the add: %s" % roles)
        self.config.add(TEMP_ID)

    def learner_catch_up(self):
        self.write(5)
        t = time.monotonic()
        self.caught_up(self.temp)
        self.ctx.rec.figure("learner_catch_up_s", time.monotonic() - t)

    def promote(self):
        self.call("promote 4", api.member_promote(self.cl.http(self.leader()), TEMP_ID))
        self.voters_everywhere([1, 2, 3, TEMP_ID])

    def transfer_to_4(self):
        t = time.monotonic()
        self.call("transfer to 4", api.leader_transfer(self.cl.http(self.leader()), TEMP_ID))
        lead = self.leader()
        expect(self.g.node_id(lead) == TEMP_ID, "leader after the transfer is %s" % lead.label)
        self.ctx.rec.figure("transfer_s", time.monotonic() - t)
        self.write(5, via=self.temp)
        for d in self.in_cluster():
            self.caught_up(d)

    def restart_4(self):
        problem = self.temp.stop()
        expect(problem is None, problem or "")
        t = time.monotonic()
        lead = self.leader(timeout=20, exclude=(TEMP_ID,))
        self.ctx.rec.figure("reelection_after_4_stopped_s", time.monotonic() - t)
        self.write(5, via=lead)
        self.temp.start()
        self.leader(timeout=20)
        self.caught_up(self.temp)
        self.voters_everywhere([1, 2, 3, TEMP_ID])

    def remove_leader(self):
        lead = self.leader()
        if self.g.node_id(lead) == TEMP_ID:
            # remove a canonical member, so re-adding it is the real proof
            self.call("transfer to 1", api.leader_transfer(self.cl.http(lead), 1))
            lead = self.leader()
        lid = self.g.node_id(lead)
        t = time.monotonic()
        self.call("remove leader %d" % lid, api.member_remove(self.cl.http(lead), lid))
        self.config.discard(lid)
        self.removed = lead
        new = self.leader(timeout=20, exclude=(lid,))
        self.ctx.rec.figure("reelection_after_removal_s", time.monotonic() - t)
        self.ctx.rec.note("removed_leader", lead.label)
        problem = lead.stop()
        expect(problem is None, problem or "")
        want = sorted({1, 2, 3, TEMP_ID} - {lid})
        self.voters_everywhere(want)
        self.write(5, via=new)

    def re_add_removed(self):
        d = self.removed
        data = os.path.join(self.cl.repo, d.raw_config()["data_dir"])
        shutil.rmtree(data)
        d.overrides["bootstrap"] = False
        d.start()
        raw = d.raw_config()
        rid = self.g.node_id(d)
        body = self.call("re-add %d" % rid, api.member_add(
            self.cl.http(self.leader()), rid, raw["raft_address"], raw["advertise_url"]))
        roles = {m["id"]: m.get("role") for m in body.get("members", [])}
        expect(roles.get(rid) == "learner", "member %d after the re-add: %s" % (rid, roles))
        self.config.add(rid)
        self.caught_up(d)
        self.call("promote %d" % rid, api.member_promote(self.cl.http(self.leader()), rid))
        self.voters_everywhere([1, 2, 3, TEMP_ID])

    def scale_back(self):
        lead = self.leader()
        self.call("remove 4", api.member_remove(self.cl.http(lead), TEMP_ID))
        self.config.discard(TEMP_ID)
        self.leader(timeout=20)
        problem = self.temp.stop()
        expect(problem is None, problem or "")
        self.voters_everywhere([1, 2, 3])

    def final_verify(self):
        self.write(5)
        lead = self.leader()
        wrong = self.st.has_all(lead, self.data, "members/", local=False)
        expect(not wrong, "%s: keys missing or wrong: %s" % (lead.label, wrong[:10]))
        for d in self.in_cluster():
            self.caught_up(d)
