#!/bin/sh
# store-conformance.sh BUILD - the storage conformance suite
# (BUILD/tests/lib/test_store, from lib/tests/test_store.c) against a real
# 3-member flaredb cluster: starts an IAM (for a token) and the cluster on
# loopback with tests/fdbharness.py, writes the token to a file and runs the
# suite with UC_STORE_TEST_URL=flaredb:<members>/<namespace>?token_file=...
# Prints run-unit.sh's "unit: N passed, N failed" line; exits non-zero on
# any failure. The same binary against SQLite runs in run-unit.sh.
# Optional environment: UC_PYTHON (default /usr/bin/python3, for pytest's
# harness modules from Debian), UC_UNIT_WRAPPER (as in run-unit.sh).
set -u
build=${1:-build}
PY=${UC_PYTHON:-/usr/bin/python3}
cd "$(dirname "$0")/.." || exit 1
UC_BUILD_DIR=$(cd "$build" && pwd) || exit 1
export UC_BUILD_DIR
exec "$PY" - <<'EOF'
import os
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile

sys.path.insert(0, "tests")
from fdbharness import FdbCluster  # noqa: E402
from ucharness import sanitized, timeout_scale  # noqa: E402

suite = os.path.join(os.environ["UC_BUILD_DIR"], "tests", "lib", "test_store")
wrap = shlex.split(os.environ.get("UC_UNIT_WRAPPER", ""))


def run_suite(cluster, workdir):
    token_file = workdir / "store.token"
    token_file.write_text(cluster.token + "\n")
    token_file.chmod(0o600)
    members = ",".join(m.daemon.base_url for m in cluster.members)
    url = "flaredb:%s/conformance?token_file=%s" % (members, token_file)
    env = dict(os.environ, UC_STORE_TEST_URL=url,
               CK_DEFAULT_TIMEOUT=str(int(60 * timeout_scale())))
    if sanitized():
        env["ASAN_OPTIONS"] = "detect_leaks=1"
    print("store-conformance: UC_STORE_TEST_URL=%s" % url, flush=True)
    return subprocess.run(wrap + [suite], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def main():
    if not os.access(suite, os.X_OK):
        print("unit: %s not built (run make)" % suite)
        return 1
    with tempfile.TemporaryDirectory(prefix="uc-store-conf-") as d:
        cluster = FdbCluster(pathlib.Path(d))
        try:
            cluster.start()
            cluster.leader()
            out = run_suite(cluster, pathlib.Path(d))
        finally:
            cluster.stop()
    print(out.stdout, end="")
    m = re.search(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)", out.stdout)
    if not m:
        print("unit: test_store crashed or printed no Check summary (exit %d)" % out.returncode)
        print("unit: 0 passed, 1 failed")
        return 1
    checks, bad = int(m.group(1)), int(m.group(2)) + int(m.group(3))
    extra = 1 if out.returncode != 0 and bad == 0 else 0  # e.g. a leak reported at exit
    print("unit: %d passed, %d failed" % (checks - bad, bad + extra))
    return 0 if out.returncode == 0 and bad == 0 else 1


sys.exit(main())
EOF
