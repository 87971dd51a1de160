#!/bin/sh
# run.sh - the entry `nix run ./nix/test-cluster#cluster -- <args>` calls:
# `run.sh <lane>` runs that lane, anything else is a `cluster` command.
# Debian's python3 when present (UC_PYTHON overrides), else the one on PATH
# (a Nix shell brings its own).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PY=${UC_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
case "${1:-}" in
fresh-smoke | durability-proof | chainfire-live-membership-proof | consistency)
    exec "$PY" "$here/cluster" lane "$@" ;;
*)
    exec "$PY" "$here/cluster" "$@" ;;
esac
