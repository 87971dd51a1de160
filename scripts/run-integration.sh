#!/bin/sh
# run-integration.sh BUILD - the pytest integration tests against the real
# binaries in BUILD/bin. Debian's python3 is used on purpose: pytest comes
# from Debian packages, never from pip (UC_PYTHON overrides it, as the Nix
# dev shell does with its own pytest).
set -u
build=${1:-build}
PY=${UC_PYTHON:-/usr/bin/python3}
UC_BUILD_DIR=$(cd "$build" && pwd)
export UC_BUILD_DIR
shift 2>/dev/null || true
$PY -m pytest -q -p no:cacheprovider tests "$@"
rc=$?
# pytest exits 5 when it collected nothing: that is a failure here.
[ $rc -eq 5 ] && { echo "integration: no tests collected"; exit 1; }
exit $rc
