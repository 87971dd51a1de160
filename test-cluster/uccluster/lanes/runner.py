"""runner - run one lane from a clean state to a clean teardown.

A lane refuses to start over a cluster that is (partly) up, runs under a
time budget (SIGALRM), and always tears down - on success, on a failed
check, on Ctrl-C or SIGTERM - before writing result.json. A second signal
during teardown is ignored so cleanup cannot be cut short; teardown itself
is bounded (every stop has a deadline).
"""

import signal
import traceback

import requests

from ..artifacts import Recorder, StepFailed
from ..cluster import Cluster, Lock
from ..errors import HarnessError, UsageError
from . import chainfire_membership, consistency, durability, fresh_smoke
from .common import Ctx

LANES = {
    "fresh-smoke": fresh_smoke,
    "durability-proof": durability,
    "chainfire-live-membership-proof": chainfire_membership,
    "consistency": consistency,
}


class Interrupted(BaseException):
    """SIGTERM/SIGINT or the lane's time budget ran out."""


def _raise(signum, frame):
    name = {signal.SIGALRM: "the lane's time budget ran out"}.get(
        signum, "interrupted by signal %d" % signum)
    raise Interrupted(name)


def lane_module(name):
    if name not in LANES:
        raise UsageError("unknown lane '%s' (lanes: %s)" % (name[:64], ", ".join(LANES)))
    return LANES[name]


def run(name, opts, repo=None, desc_path=None, argv=None):
    mod = lane_module(name)
    cl = Cluster(repo, desc_path, fresh=True)
    with Lock(cl):
        left = cl.leftovers()
        if left:
            raise UsageError("a cluster is already (partly) up: %s. A lane starts from a clean "
                             "state: run `test-cluster/cluster stop` (keeps its state) or "
                             "`test-cluster/cluster clean`, then the lane again." %
                             "; ".join(left[:6]))
        rec = Recorder(cl.repo, name, argv)
        return _run(mod, cl, rec, opts)


def _run(mod, cl, rec, opts):
    budget = int(mod.budget(opts) * cl.scale)
    rec.note("mode", cl.mode)
    rec.note("mode_reason", cl.mode_reason)
    rec.note("bin_dir", cl.bin_dir)
    rec.note("budget_s", budget)
    rec.note("missing_daemons", cl.missing())
    if cl.missing():
        print("!!! MISSING BINARIES: %s are in the description but not built in %s: their "
              "steps are skipped" % (", ".join(cl.missing()), cl.bin_dir), flush=True)
    if cl.mode == "loopback":
        print("!!! loopback mode (%s): no namespaces, no partitions; those steps are skipped"
              % cl.mode_reason, flush=True)
    old = {s: signal.signal(s, _raise) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    signal.alarm(budget)
    ok, error, interrupted = False, None, False
    ctx = Ctx(cl, rec, opts)
    try:
        cl.clean()
        mod.run(ctx)
        problems = cl.problems()
        if problems:
            raise StepFailed("daemon problems: " + " | ".join(problems))
        ok = True
    except StepFailed as e:
        error = str(e)
    except (HarnessError, Interrupted, requests.RequestException) as e:
        error = "%s: %s" % (type(e).__name__, e)
        interrupted = isinstance(e, Interrupted) and "signal" in str(e)
    except Exception as e:  # noqa: BLE001 - a harness bug still tears down and reports
        error = "harness error: %s\n%s" % (e, traceback.format_exc())
    finally:
        signal.alarm(0)
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, signal.SIG_IGN)
        ctx.stop_event.set()
        ok, error = _teardown(cl, rec, ok, error)
        rec.not_run(mod.STEPS)
        rec.note("notes", sorted(cl.compat.notes))
        rec.finish(ok, error)
        for s, h in old.items():
            signal.signal(s, h)
    _summary(rec)
    return 0 if ok else (130 if interrupted else 1)


def _teardown(cl, rec, ok, error):
    try:
        for t in getattr(rec, "threads", []):
            t.join(timeout=30)
        rec.copy_logs(cl)
        reports = [p for p in (d.sanitizer_report() for d in cl.all_daemons()) if p]
        problems = cl.stop() + reports
    except Exception as e:  # noqa: BLE001 - teardown must finish; say what failed
        problems = ["teardown: %s" % e]
        cl.clean()
    rec.result["problems"] += problems
    if problems and ok:
        return False, "teardown problems: " + " | ".join(problems)
    return ok, error


def _summary(rec):
    r = rec.result
    counts = {}
    for s in r["steps"]:
        counts[s["status"]] = counts.get(s["status"], 0) + 1
    print("\n%s: %s in %ss (%s)" % (r["lane"], "PASSED" if r["success"] else "FAILED",
                                    r["duration_s"],
                                    ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items()))))
    for s in r["skipped"]:
        print("  skipped %s: %s" % (s["step"], s["reason"]))
    if r["error"]:
        print("  error: %s" % r["error"])
    print("  artifacts: %s" % rec.dir)
