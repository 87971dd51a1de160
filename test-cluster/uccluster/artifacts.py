"""artifacts - what a lane leaves behind: work/<lane>/<UTC timestamp>/.

result.json says whether the lane passed, when it ran, every step with its
outcome (passed, failed, skipped with the reason, not_run after a failure),
the figures measured and the problems seen; evidence files sit beside it,
per-node logs under nodes/. `latest` points at the newest run.
"""

import contextlib
import json
import os
import shutil
import time


def utc(ts=None):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class StepFailed(Exception):
    """A lane check that did not hold; the message says what was expected
    and what was seen."""


def expect(cond, message):
    if not cond:
        raise StepFailed(message)


class Recorder:
    def __init__(self, repo, lane, argv=None):
        self.lane = lane
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        base = os.path.join(repo, "work", lane)
        self.dir = os.path.join(base, stamp)
        n = 1
        while os.path.exists(self.dir):
            n += 1
            self.dir = os.path.join(base, "%s-%d" % (stamp, n))
        os.makedirs(self.dir)
        link = os.path.join(base, "latest")
        if os.path.islink(link) or os.path.exists(link):
            os.unlink(link)
        os.symlink(os.path.basename(self.dir), link)
        self.t0 = time.time()
        self.result = {"lane": lane, "success": False, "started_at": utc(self.t0),
                       "ended_at": None, "duration_s": None, "argv": argv or [],
                       "steps": [], "skipped": [], "figures": {}, "problems": [],
                       "evidence": [], "error": None}
        self._evidence = {}

    def note(self, key, value):
        self.result[key] = value

    def figure(self, key, value):
        self.result["figures"][key] = round(value, 3) if isinstance(value, float) else value
        print("    figure %s = %s" % (key, self.result["figures"][key]), flush=True)

    @contextlib.contextmanager
    def step(self, name):
        """Time a step; an exception marks it failed and propagates."""
        entry = {"name": name, "status": "running", "started_s": round(time.time() - self.t0, 3)}
        self.result["steps"].append(entry)
        print("--> %s" % name, flush=True)
        t = time.monotonic()
        try:
            yield entry
        except BaseException as e:
            entry["status"] = "failed"
            entry["error"] = "%s: %s" % (type(e).__name__, e) if not isinstance(
                e, StepFailed) else str(e)
            raise
        finally:
            entry["duration_s"] = round(time.monotonic() - t, 3)
            self.write()
        entry["status"] = "passed"
        print("    passed in %.1fs" % entry["duration_s"], flush=True)

    def skip(self, name, reason):
        """A step this run could not do: recorded, never counted as passed."""
        self.result["steps"].append({"name": name, "status": "skipped", "reason": reason})
        self.result["skipped"].append({"step": name, "reason": reason})
        print("--> %s: SKIPPED (%s)" % (name, reason), flush=True)

    def not_run(self, names):
        for name in names:
            if not any(s["name"] == name for s in self.result["steps"]):
                self.result["steps"].append({"name": name, "status": "not_run"})

    def evidence(self, name, obj):
        """Write (or replace) an evidence file; JSON for dicts and lists."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            if isinstance(obj, (dict, list)):
                json.dump(obj, f, indent=1, sort_keys=True)
                f.write("\n")
            else:
                f.write(str(obj))
        if name not in self.result["evidence"]:
            self.result["evidence"].append(name)
        return path

    def append(self, name, entry):
        """Add one entry to a list-shaped evidence file (e.g. membership.json
        gets one snapshot per step)."""
        self._evidence.setdefault(name, []).append(entry)
        self.evidence(name, self._evidence[name])

    def copy_logs(self, cluster):
        for d in cluster.all_daemons():
            if os.path.exists(d.log_path):
                dst = os.path.join(self.dir, "nodes", d.node.name)
                os.makedirs(dst, exist_ok=True)
                shutil.copy(d.log_path, os.path.join(dst, d.name + ".log"))
            if os.path.exists(d.config_path):
                dst = os.path.join(self.dir, "nodes", d.node.name)
                os.makedirs(dst, exist_ok=True)
                shutil.copy(d.config_path, os.path.join(dst, d.name + ".config.json"))

    def finish(self, success, error=None):
        t = time.time()
        self.result.update(success=bool(success), ended_at=utc(t),
                           duration_s=round(t - self.t0, 1), error=error)
        self.write()

    def write(self):
        tmp = os.path.join(self.dir, "result.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.result, f, indent=1)
            f.write("\n")
        os.rename(tmp, os.path.join(self.dir, "result.json"))
