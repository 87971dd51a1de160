#!/bin/sh
# deps.sh - install the Debian packages UltraCloud needs, only those missing.
#   deps.sh install [bench]  install (and say what), always checking
#   deps.sh ensure  [bench]  the same, silent when nothing is missing
# The bench group is separate because nginx-light and etcd-server start
# system daemons on install, which an operator running `make quickstart` does
# not want (the benches run private instances on their own ports).
set -eu
mode=${1:-install}
group=${2:-base}

BASE="build-essential pkg-config git ca-certificates
libmicrohttpd-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev libssl-dev
libraft-dev libuv1-dev check
python3 python3-pytest python3-requests python3-jwt python3-cryptography
cppcheck clang-format valgrind curl openssl iproute2 nftables e2fsprogs procps sqlite3
nix-bin"
BENCH="wrk nginx-light etcd-server etcd-client"

pkgs=$BASE
[ "$group" = bench ] && pkgs=$BENCH

missing=""
for p in $pkgs; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in *" installed") ;; *) missing="$missing $p" ;; esac
done

if [ -z "$missing" ]; then
    [ "$mode" = install ] && echo "deps: all $group packages are installed"
    exit 0
fi
echo "deps: installing$missing"
if [ "$(id -u)" != 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/uc-deps.XXXXXX)
# apt's progress is noise here; its log is shown only when it fails.
# shellcheck disable=SC2086
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
    tail -n 30 "$log"
    echo "deps: apt-get failed (full log: $log)" >&2
    exit 1
fi
rm -f "$log"
echo "deps: installed$missing"
