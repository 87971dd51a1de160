#!/usr/bin/env bash
# bench/run.sh - run every UltraCloud benchmark and print their figures and
# ratios; `make bench` installs wrk, nginx-light and etcd, builds, then calls
# this.
#
#   bench/run.sh [NAME...]   all of http-baseline iam-tokens iam-rss chainfire
#                            flaredb, or those named
#
#   http-baseline  GET /healthz: libcommon server (iam, --threads = CPUs, no
#                  access log) vs a private nginx `return 200`, wrk -t2 -c64
#                  -d10s --latency, 2 alternating rounds each, best round
#                  kept; ratio = libcommon req/s / nginx req/s (goal >= 0.7)
#   iam-tokens     POST /api/v1/tokens issue/s (password grant at scrypt
#                  logN=15; access-key grant) with wrk + post.lua, and offline
#                  uc_auth_verify/s on 1 and 2 threads (verify.c); ratio =
#                  uc_auth_verify / bare Ed25519 verify, one thread each
#   iam-rss        iam VmRSS idle 2 s after start on a fresh store and after
#                  1000 requests; ratio = idle / 8 MiB (goal < 1)
#   chainfire      3-member chainfire vs 3-member etcd on loopback, both
#                  fsyncing: puts, linearizable and serializable gets of
#                  random 16-byte keys (100-byte values) at 1, 16 and 64 wrk
#                  clients against each leader, 5 s per run (~2 min in all);
#                  table in work/bench/chainfire/<time>/result.json; ratio =
#                  lowest chainfire/etcd puts/s over the client counts (goal >= 1)
#   flaredb        3-member flaredb vs the same SQL on a local SQLite file
#                  (WAL, synchronous=FULL; sqlite_load.c) and the same KV
#                  puts on a 3-member etcd: single-row inserts, point
#                  selects (linearizable, serializable), batches of 100
#                  inserts per request/transaction and KV puts at 1, 16 and
#                  64 clients, 5 s per run (~3 min in all); table in
#                  work/bench/flaredb/<time>/result.json; ratio = lowest
#                  flaredb/SQLite batch rows/s (goal >= 0.5; the KV goal,
#                  >= 1 x etcd's puts/s, is printed beside it)
#
# Each benchmark is bench/<name>/run.sh, runnable alone; progress goes to
# stderr and its last stdout line is "<name>: <figures> ratio=<x>".
# Everything runs on 127.0.0.1 with free ports and a private temp dir, and
# every process is stopped on exit or Ctrl-C. Load generator and servers
# share the machine, so results depend on its CPUs and on other load.
# Knobs (environment): BENCH_DURATION (s per wrk run, 10), BENCH_ROUNDS (2),
# BENCH_CONNS (64), BENCH_VERIFY_COUNT (100000), BENCH_REQUESTS (1000);
# chainfire's own BENCH_CF_* and flaredb's BENCH_FDB_* (see their run.sh:
# BENCH_DURATION would make their many runs too long); UC_BENCH_BIN_DIR
# (default build/bin).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

ALL=(http-baseline iam-tokens iam-rss chainfire flaredb)
if [ $# -gt 0 ]; then
    names=("$@")
else
    names=("${ALL[@]}")
fi
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

results=()
failed=()
echo "bench: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for n in "${names[@]}"; do
    if [ ! -x "bench/$n/run.sh" ]; then
        echo "bench: no benchmark '$n' (have: ${ALL[*]})" >&2
        exit 2
    fi
    echo "=== $n" >&2
    out=$("bench/$n/run.sh")
    rc=$?
    [ $rc = 130 ] && exit 130
    last=$(printf '%s\n' "$out" | tail -n 1)
    if [ $rc = 0 ] && [ -n "$last" ]; then
        results+=("$last")
    else
        failed+=("$n")
        results+=("$n: FAILED (exit $rc)")
    fi
done

echo
echo "=== results"
printf '%s\n' "${results[@]}"
[ ${#failed[@]} = 0 ] || {
    echo "bench: failed: ${failed[*]}" >&2
    exit 1
}
