"""ucharness - start real UltraCloud daemons for integration tests.

Generic for every service: Daemon runs one binary on a free port, waits for
/healthz and /readyz, captures stderr, stops it with SIGTERM (exit 0 or the
test fails) and checks sanitizer output. Client wraps requests with a bearer
token; assert_error checks the error envelope from docs/api/conventions.md.
"""

import json
import os
import random
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Markers in a sanitizer build's stderr that fail the test.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:")

# Error codes allowed per status by conventions.md.
CODES_BY_STATUS = {
    400: {"invalid_argument"},
    401: {"unauthenticated"},
    403: {"permission_denied"},
    404: {"not_found"},
    405: {"method_not_allowed"},
    409: {"conflict", "already_exists", "busy"},
    413: {"too_large"},
    429: {"rate_limited"},
    503: {"unavailable", "deadline_exceeded"},
}

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def build_dir():
    """The build directory under test: $UC_BUILD_DIR, else <repo>/build."""
    return os.path.abspath(os.environ.get("UC_BUILD_DIR") or os.path.join(REPO, "build"))


def sanitized():
    """True when the binaries under test were built with ASan+UBSan."""
    return os.path.basename(build_dir().rstrip("/")).endswith("build-san")


def binary(name):
    """Path of build/bin/<name>; fails the test when it has not been built
    (a skip would let a broken build pass)."""
    path = os.path.join(build_dir(), "bin", name)
    if not os.access(path, os.X_OK):
        pytest.fail("%s not built (run make)" % path, pytrace=False)
    return path


def timeout_scale():
    """Sanitized binaries are several times slower: stretch every deadline."""
    return 4.0 if sanitized() else 1.0


_handed_out = set()


def free_port(host="127.0.0.1"):
    """A port that is free now, that this process has not handed out before,
    and that lies below the kernel's ephemeral range (32768 and up by
    default): a port the kernel picks for bind(0) can be taken a moment
    later by an outgoing connection's source port, and a member given a
    taken or repeated port fails to start."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    while True:
        port = rng.randrange(20000, 32000)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


def wait_for(fn, timeout=15.0, step=0.05):
    """Poll fn() until it returns a true value, which is returned; an
    AssertionError or KeyError counts as "not yet" until the deadline
    (stretched for sanitizer builds), when the last one is raised."""
    deadline = time.monotonic() + timeout * timeout_scale()
    while True:
        try:
            result = fn()
            if result:
                return result
        except (AssertionError, KeyError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %.0fs" % timeout)
        time.sleep(step)


def daemon_env(scrub_prefixes=("UC_",), extra=None):
    """The environment for a daemon: ours minus variables that would configure
    it behind the test's back, plus sanitizer options and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(scrub_prefixes))}
    if sanitized():
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    env.update(extra or {})
    return env


def sanitizer_report(text):
    """The first sanitizer marker found in `text`, or None."""
    for marker in SANITIZER_MARKERS:
        if marker in text:
            return marker
    return None


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


class Daemon:
    """One daemon process. `args` are its flags without --listen/--port,
    which the harness adds so each start gets a free port. State lives
    wherever `args` point, so restart() brings it back on the same state."""

    def __init__(self, binary_path, args, workdir, name=None, env=None, host="127.0.0.1",
                 listen_flag="--listen", port_flag="--port", health_path="/healthz",
                 ready_path="/readyz", start_timeout=10.0, stop_timeout=10.0):
        self.binary = binary_path
        self.args = list(args)
        self.workdir = str(workdir)
        self.name = name or os.path.basename(binary_path)
        self.env = env if env is not None else daemon_env()
        self.host = host
        self.listen_flag = listen_flag
        self.port_flag = port_flag
        self.health_path = health_path
        self.ready_path = ready_path
        self.start_timeout = start_timeout * timeout_scale()
        self.stop_timeout = stop_timeout * timeout_scale()
        self.port = None
        self.proc = None
        self.starts = 0
        self.stderr_path = None
        self._stderr = None

    @property
    def base_url(self):
        return "http://%s:%d" % (self.host, self.port)

    def url(self, path):
        return self.base_url + path

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self):
        if not self.stderr_path or not os.path.exists(self.stderr_path):
            return ""
        with open(self.stderr_path, "r", errors="replace") as f:
            return f.read()

    def start(self, attempts=5):
        """Start on a free port and wait until ready; retries when the port
        was taken in between, fails the test on any other early exit."""
        for attempt in range(attempts):
            self._spawn()
            outcome = self._wait_ready()
            if outcome == "ready":
                return self
            if outcome == "bind" and attempt + 1 < attempts:
                continue
            self._fail_start(outcome)
        pytest.fail("%s: could not bind a free port in %d attempts" % (self.name, attempts))

    def _spawn(self):
        self.starts += 1
        self.port = free_port(self.host)
        self.stderr_path = os.path.join(self.workdir, "%s.%d.stderr" % (self.name, self.starts))
        self._stderr = open(self.stderr_path, "wb")
        argv = [self.binary] + self.args + [self.listen_flag, self.host, self.port_flag,
                                            str(self.port)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr, env=self.env, cwd=self.workdir)

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        path = self.health_path
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._close_stderr()
                text = self.stderr_text()
                if re.search(r"address already in use|EADDRINUSE|cannot bind|bind\(", text, re.I):
                    return "bind"
                return "exited"
            try:
                r = requests.get(self.url(path), timeout=1.0)
                if r.status_code == 200:
                    if path == self.ready_path or self.ready_path is None:
                        return "ready"
                    path = self.ready_path
                    continue
            except requests.RequestException:
                pass
            time.sleep(0.02)
        return "timeout"

    def _fail_start(self, outcome):
        if outcome == "timeout":
            self.kill()
            why = "not ready within %.0fs" % self.start_timeout
        else:
            why = "exited with code %s during start-up" % self.proc.returncode
        pytest.fail("%s %s\nargv: %s\nstderr tail:\n%s" % (
            self.name, why, " ".join(self.proc.args), tail(self.stderr_text())))

    def _close_stderr(self):
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stop(self, expect_code=0):
        """SIGTERM, wait for exit, then check the exit code and (in a
        sanitizer build) stderr. SIGKILL and fail when it does not exit."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self._close_stderr()
                pytest.fail("%s did not exit within %.0fs of SIGTERM\nstderr tail:\n%s" % (
                    self.name, self.stop_timeout, tail(self.stderr_text())))
        self._close_stderr()
        self.check_sanitizers()
        if expect_code is not None and proc.returncode != expect_code:
            pytest.fail("%s exited with code %s after SIGTERM, expected %s\nstderr tail:\n%s" % (
                self.name, proc.returncode, expect_code, tail(self.stderr_text())))
        return proc.returncode

    def kill(self):
        """SIGKILL without checks (crash simulation or cleanup)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None
        self._close_stderr()

    def restart(self):
        self.stop()
        return self.start()

    def check_sanitizers(self):
        if not sanitized():
            return
        marker = sanitizer_report(self.stderr_text())
        if marker:
            pytest.fail("%s: sanitizer report (%s) in %s\n%s" % (
                self.name, marker, self.stderr_path, tail(self.stderr_text(), 80)))


def run_once(binary_path, args, env=None, timeout=10.0):
    """Run a binary that is expected to exit on its own (--help, refused
    start-up). Returns CompletedProcess; fails the test if it keeps running,
    and on a sanitizer report."""
    timeout *= timeout_scale()
    try:
        cp = subprocess.run([binary_path] + list(args), stdin=subprocess.DEVNULL,
                            capture_output=True, env=env if env is not None else daemon_env(),
                            timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail("%s %s still running after %.0fs (expected it to exit)\nstderr:\n%s" % (
            binary_path, " ".join(args), timeout, (e.stderr or b"").decode(errors="replace")))
    cp.stdout_text = cp.stdout.decode(errors="replace")
    cp.stderr_text = cp.stderr.decode(errors="replace")
    if sanitized():
        marker = sanitizer_report(cp.stderr_text)
        if marker:
            pytest.fail("sanitizer report (%s):\n%s" % (marker, tail(cp.stderr_text, 80)))
    return cp


class Client:
    """HTTP client against a Daemon (follows it across restarts) with an
    optional bearer token. Methods return the requests.Response."""

    def __init__(self, daemon, token=None, timeout=10.0):
        self.daemon = daemon
        self.token = token
        self.timeout = timeout * timeout_scale()
        self.session = requests.Session()

    def with_token(self, token):
        return Client(self.daemon, token)

    def request(self, method, path, headers=None, **kw):
        h = {}
        if self.token is not None:
            h["Authorization"] = "Bearer " + self.token
        h.update(headers or {})
        kw.setdefault("timeout", self.timeout)
        return self.session.request(method, self.daemon.url(path), headers=h, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def close(self):
        self.session.close()


def describe(resp):
    return "%s %s -> %d %s" % (resp.request.method, resp.request.url, resp.status_code,
                               resp.text[:600])


def expect(resp, *statuses):
    """Assert the status is one of `statuses`; return the JSON body (None
    when empty)."""
    assert resp.status_code in statuses, "expected %s: %s" % (statuses, describe(resp))
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        pytest.fail("body is not JSON: %s" % describe(resp))


def expect_deleted(resp):
    """DELETE succeeded (the docs leave 200 vs 204 open)."""
    return expect(resp, 200, 204)


def assert_error(resp, status, code=None, request_id=None):
    """Assert the conventions.md error envelope: status, error.code (one
    code, a set of codes, or by default any code allowed for the status),
    a non-empty message and a request_id that matches X-Request-Id.
    Returns the `error` object."""
    assert resp.status_code == status, "expected %d: %s" % (status, describe(resp))
    ctype = resp.headers.get("Content-Type", "")
    assert "application/json" in ctype, "error Content-Type %r: %s" % (ctype, describe(resp))
    try:
        body = resp.json()
    except ValueError:
        pytest.fail("error body is not JSON: %s" % describe(resp))
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        "no error object: %s" % describe(resp)
    err = body["error"]
    allowed = {code} if isinstance(code, str) else set(code or CODES_BY_STATUS.get(status, ()))
    if allowed:
        assert err.get("code") in allowed, "error.code %r not in %s: %s" % (
            err.get("code"), sorted(allowed), describe(resp))
    assert isinstance(err.get("message"), str) and err["message"].strip(), \
        "empty error.message: %s" % describe(resp)
    rid = err.get("request_id")
    assert isinstance(rid, str) and rid, "missing error.request_id: %s" % describe(resp)
    assert resp.headers.get("X-Request-Id") == rid, \
        "X-Request-Id header %r != body request_id %r" % (resp.headers.get("X-Request-Id"), rid)
    if request_id is not None:
        assert rid == request_id
    return err


def assert_resource(obj, prefix):
    """Common fields from conventions.md: typed id, timestamps, revision."""
    assert re.fullmatch(prefix + r"-[a-z0-9]{20}", obj.get("id", "")), "bad id in %s" % obj
    for field in ("created_at", "updated_at"):
        assert RFC3339_MS.match(str(obj.get(field))), "bad %s in %s" % (field, obj)
    assert isinstance(obj.get("revision"), int) and not isinstance(obj["revision"], bool), \
        "bad revision in %s" % obj


def parse_metrics(text):
    """Prometheus text -> {(name, ((label, value), ...)): float}."""
    out = {}
    line_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$")
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = line_re.match(line.strip())
        assert m, "unparsable metrics line: %r" % line
        labels = tuple(sorted(label_re.findall(m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def metric_sum(metrics, name, **labels):
    """Sum of samples of `name` whose labels include `labels` (a value may
    be a callable predicate)."""
    total = 0.0
    for (n, lbls), value in metrics.items():
        if n != name:
            continue
        d = dict(lbls)
        ok = True
        for k, want in labels.items():
            have = d.get(k)
            if callable(want):
                ok = have is not None and want(have)
            else:
                ok = have == want
            if not ok:
                break
        if ok:
            total += value
    return total


def raw_request(host, port, method, path, headers, body, timeout=10.0):
    """Send one HTTP/1.1 request over a plain socket and return
    (status, headers, body). Survives a server that answers early and
    stops reading (413 on a large body)."""
    head = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n" % (method, path, host, port)
    for k, v in headers.items():
        head += "%s: %s\r\n" % (k, v)
    head += "Content-Length: %d\r\n\r\n" % len(body)
    data = b""
    with socket.create_connection((host, port), timeout=timeout * timeout_scale()) as s:
        try:
            s.sendall(head.encode() + body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            if not data:
                raise
    head_b, _, rest = data.partition(b"\r\n\r\n")
    lines = head_b.decode(errors="replace").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1."), "no HTTP response: %r" % data[:200]
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if "chunked" in hdrs.get("transfer-encoding", ""):
        rest = dechunk(rest)
    return status, hdrs, rest


def dechunk(data):
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


def dumps(obj):
    return json.dumps(obj, sort_keys=True)
