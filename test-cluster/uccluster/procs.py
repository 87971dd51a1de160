"""procs - one daemon process of one node: config file, start, stop, kill.

A daemon runs with cwd = the repository root (the description's paths are
relative to it), inside its node's namespace, with `--config` pointing at a
file written from the node's services object. Its pid file makes it
reachable from later `cluster` invocations; a pid counts only while
/proc/<pid>/cmdline still names that config file, so a recycled pid is
never signalled.
"""

import json
import os
import re
import signal
import subprocess
import time

import requests

from .errors import HarnessError, UsageError

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:")
_help_cache = {}
_children = {}  # pid -> Popen of daemons this process started (to reap them)


def binary_options(binary):
    """Option names (without --) that `binary --help` lists."""
    if binary not in _help_cache:
        try:
            cp = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10,
                                stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise HarnessError("%s --help: %s" % (binary, e))
        _help_cache[binary] = set(re.findall(r"^\s+--([a-z0-9-]+)", cp.stdout, re.M))
    return _help_cache[binary]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def tail(path, lines=30):
    try:
        with open(path, "r", errors="replace") as f:
            return "\n".join(f.read().splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Daemon:
    """`daemon` of node `node` in cluster `cl` (see cluster.Cluster)."""

    def __init__(self, cl, node, daemon, base=None):
        """`base`: the config of a daemon the description does not list on
        this node (a temporary member); default: the node's services entry."""
        self.cl = cl
        self.base = base
        self.node = node
        self.name = daemon
        self.dir = os.path.join(cl.state_dir, node.name)
        self.conf_dir = os.path.join(cl.state_dir, "config", node.name)
        self.config_path = os.path.join(self.conf_dir, daemon + ".json")
        self.log_path = os.path.join(self.dir, daemon + ".log")
        self.pid_path = os.path.join(cl.state_dir, "pids", "%s-%s.pid" % (node.name, daemon))
        self.binary = os.path.join(cl.bin_dir, daemon)
        self.overrides = {}  # options replacing the description's for the next starts
        self.expected_down = False

    @property
    def label(self):
        return "%s/%s" % (self.node.name, self.name)

    def present(self):
        return os.access(self.binary, os.X_OK)

    def raw_config(self):
        """Description (or base) + overrides, in loopback mode rewritten."""
        cfg = dict(self.base if self.base is not None else self.node.services.get(self.name, {}))
        cfg.update(self.overrides)
        return cfg

    def config(self):
        """What goes into the --config file: raw_config translated for the
        binary at hand (see compat.py)."""
        return self.cl.compat.translate(self, self.raw_config())

    def url(self, path=""):
        cfg = self.config()
        return "http://%s:%d%s" % (cfg.get("listen", self.node.address), cfg["port"], path)

    # --- pid --------------------------------------------------------------

    def pid(self):
        """The running daemon's pid, or None."""
        try:
            with open(self.pid_path) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        if alive(pid) and self.config_path in cmdline(pid):
            return pid
        return None

    def running(self):
        return self.pid() is not None

    # --- start ------------------------------------------------------------

    def write_config(self):
        cfg = self.config()
        os.makedirs(self.conf_dir, exist_ok=True)
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=1, sort_keys=True)
        for key in ("data_dir",):
            if isinstance(cfg.get(key), str):
                os.makedirs(os.path.join(self.cl.repo, cfg[key]), mode=0o700, exist_ok=True)
        store = cfg.get("store")
        if isinstance(store, str) and store.startswith("sqlite:"):
            path = os.path.join(self.cl.repo, store[len("sqlite:"):])
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        return cfg

    def check_config(self):
        """Ask the binary to check the config file (--check-config) when it can."""
        if "check-config" not in binary_options(self.binary):
            return None
        cp = subprocess.run([self.binary, "--config", self.config_path, "--check-config"],
                            capture_output=True, text=True, timeout=10, cwd=self.cl.repo,
                            stdin=subprocess.DEVNULL, env=self.cl.daemon_env())
        if cp.returncode != 0:
            raise UsageError("%s: %s rejects its config %s: %s" % (
                self.label, self.binary, self.config_path, (cp.stderr or cp.stdout).strip()))
        return True

    def start(self, extra_args=(), wait=True):
        """Start (if not running) and wait until /healthz and /readyz answer 200."""
        if not self.present():
            raise HarnessError("%s: %s is not built" % (self.label, self.binary))
        if self.running():
            return self.pid()
        self.write_config()
        self.check_config()
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(os.path.dirname(self.pid_path), exist_ok=True)
        argv = self.cl.net.wrap(self.node.name,
                                [self.binary, "--config", self.config_path] + list(extra_args))
        with open(self.log_path, "ab") as log:
            log.write(("=== harness: start %s: %s\n" % (
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), " ".join(argv))).encode())
            log.flush()
            proc = subprocess.Popen(argv, cwd=self.cl.repo, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log, env=self.cl.daemon_env(), start_new_session=True)
        _children[proc.pid] = proc
        with open(self.pid_path, "w") as f:
            f.write("%d\n" % proc.pid)
        self.expected_down = False
        self.cl.disks_join(self.node, proc.pid)
        if wait:
            self.wait_ready(proc)
        return proc.pid

    def wait_ready(self, proc=None, timeout=20.0):
        deadline = time.monotonic() + timeout * self.cl.scale
        path = "/healthz"
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise HarnessError("%s exited with code %s during start-up; log tail:\n%s" % (
                    self.label, proc.returncode, tail(self.log_path)))
            try:
                r = requests.get(self.url(path), timeout=1.0)
                if r.status_code == 200:
                    if path == "/readyz":
                        return True
                    path = "/readyz"
                    continue
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise HarnessError("%s not ready (%s) within %.0fs; log tail:\n%s" % (
            self.label, path, timeout * self.cl.scale, tail(self.log_path)))

    # --- stop -------------------------------------------------------------

    def _reap(self, pid, timeout):
        """Wait for `pid` to be gone; True when it is."""
        deadline = time.monotonic() + timeout
        proc = _children.get(pid)
        while time.monotonic() < deadline:
            if proc is not None:
                try:
                    proc.wait(timeout=0.05)
                    return True
                except subprocess.TimeoutExpired:
                    continue
            if not alive(pid):
                return True
            time.sleep(0.05)
        return False

    def exit_code(self, pid):
        proc = _children.pop(pid, None)
        return None if proc is None else proc.returncode

    def stop(self, timeout=10.0):
        """SIGTERM and wait; SIGKILL after `timeout`. Returns a problem
        string (no clean exit 0) or None."""
        pid = self.pid()
        self.expected_down = True
        if pid is None:
            return None
        os.kill(pid, signal.SIGTERM)
        if self._reap(pid, timeout * self.cl.scale):
            code = self.exit_code(pid)
            if code not in (0, None):
                return "%s exited with code %s after SIGTERM" % (self.label, code)
            return None
        os.kill(pid, signal.SIGKILL)
        self._reap(pid, 5.0)
        self.exit_code(pid)
        return "%s did not exit within %.0fs of SIGTERM (killed)" % (
            self.label, timeout * self.cl.scale)

    def kill(self):
        """kill -9; returns the pid killed, or None when it was not running."""
        pid = self.pid()
        self.expected_down = True
        if pid is None:
            return None
        os.kill(pid, signal.SIGKILL)
        if not self._reap(pid, 10.0):
            raise HarnessError("%s (pid %d) still there 10s after SIGKILL" % (self.label, pid))
        self.exit_code(pid)
        return pid

    def died(self):
        """A problem string when the daemon should run but does not."""
        if self.expected_down or not self.present() or self.running():
            return None
        for pid, proc in list(_children.items()):
            if proc.args and self.config_path in proc.args and proc.poll() is not None:
                _children.pop(pid)
                return "%s died (exit code %s); log tail:\n%s" % (
                    self.label, proc.returncode, tail(self.log_path))
        return "%s is not running; log tail:\n%s" % (self.label, tail(self.log_path))

    def sanitizer_report(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                text = f.read()
        except OSError:
            return None
        for marker in SANITIZER_MARKERS:
            if marker in text:
                return "%s: sanitizer report (%s) in %s" % (self.label, marker, self.log_path)
        return None
