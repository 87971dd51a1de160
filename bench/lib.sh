# bench/lib.sh - shell helpers the benchmarks share (sourced, not run): a
# private temp dir and process list torn down on exit or Ctrl-C, free
# loopback ports, an iam daemon with fresh secrets, wrk output parsing.
# Needs: curl, openssl, python3, and `make` having built build/bin/iam.
# shellcheck shell=bash

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_BIN=${UC_BENCH_BIN_DIR:-$BENCH_ROOT/build/bin}
BENCH_LIB=${UC_BENCH_LIB:-$BENCH_ROOT/build/lib/libcommon.a}
PY=${UC_PYTHON:-/usr/bin/python3}
BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/uc-bench.XXXXXX")
BENCH_PIDS=()
BENCH_LOGS=() # daemon logs die() shows the end of, besides iam's

say() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die()
{
    local log
    say "error: $*"
    for log in ${IAM_DIR:+"$IAM_DIR/iam.log"} "${BENCH_LOGS[@]}"; do
        [ -s "$log" ] || continue
        say "last lines of $log:"
        tail -n 5 "$log" >&2
    done
    exit 1
}

# Stop every process we started (SIGTERM, then SIGKILL after 5 s) and
# remove the temp dir. Runs on exit; INT/TERM exit through it.
bench_cleanup()
{
    local pid _
    trap - EXIT INT TERM
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${BENCH_PIDS[@]}"; do
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BENCH_PIDS=()
    rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT
trap 'echo >&2; say "interrupted"; exit 130' INT TERM
say "$(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) (other load skews results)"

# bench_knobs PREFIX WORKLOADS VALUE_BYTES: the settings every bench takes
# from the environment: BENCH_<PREFIX>_DURATION (s per run, 5),
# _CLIENTS ("1 16 64"), _WORKLOADS (WORKLOADS), _KEYS (key space, 10000),
# _VALUE_BYTES (VALUE_BYTES), _ARGS (extra flags for every member),
# BENCH_ETCD_ARGS and BENCH_OUT (work/bench/$BENCH_NAME/<time>). Sets
# DURATION, CLIENTS, WORKLOADS, NKEYS, VALUE_BYTES, EXTRA, ETCD_EXTRA,
# MAX_ERROR_PCT (1: over that share of failed requests fails a run), STAMP
# and OUT.
# shellcheck disable=SC2034 # for the bench that sourced this file
bench_knobs()
{
    local p=BENCH_${1}_ v
    v=${p}DURATION && DURATION=${!v:-5}
    v=${p}CLIENTS && read -ra CLIENTS <<<"${!v:-1 16 64}"
    v=${p}WORKLOADS && read -ra WORKLOADS <<<"${!v:-$2}"
    v=${p}KEYS && NKEYS=${!v:-10000}
    v=${p}VALUE_BYTES && VALUE_BYTES=${!v:-$3}
    v=${p}ARGS && read -ra EXTRA <<<"${!v:-}"
    read -ra ETCD_EXTRA <<<"${BENCH_ETCD_ARGS:-}"
    MAX_ERROR_PCT=1
    STAMP=$(date -u +%Y%m%dT%H%M%SZ)
    OUT=${BENCH_OUT:-$BENCH_ROOT/work/bench/$BENCH_NAME/$STAMP}
}

# Remember a background process so bench_cleanup stops it, or forget it.
bench_track() { BENCH_PIDS+=("$1"); }
bench_untrack()
{
    local keep=() p
    for p in "${BENCH_PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    BENCH_PIDS=("${keep[@]}")
}

# bench_run OUT CMD...: run CMD to completion with stdout and stderr in the
# file OUT, in the background so that Ctrl-C runs our trap at once (bash
# defers a trap while a foreground child runs, and skips it when the child
# handles SIGINT itself, as wrk does).
bench_run()
{
    local out=$1 pid rc=0
    shift
    "$@" >"$out" 2>&1 &
    pid=$!
    bench_track "$pid"
    wait "$pid" || rc=$?
    bench_untrack "$pid"
    return $rc
}

need()
{
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || die "$c is not installed (make deps-bench, or make deps)"
    done
}

# A loopback port that was free a moment ago.
free_port()
{
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ok URL PID SECONDS: until URL answers 2xx; fail if PID dies first.
wait_ok()
{
    local url=$1 pid=$2 deadline=$((SECONDS + $3))
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$pid" 2>/dev/null || die "process $pid exited before $url answered"
        curl -sf --max-time 2 -o /dev/null "$url" && return 0
        sleep 0.1
    done
    die "$url did not answer within $3 s"
}

# bench_alive PID...: die unless every one of these members still runs.
bench_alive()
{
    local p
    for p in "$@"; do
        kill -0 "$p" 2>/dev/null || die "member pid $p died (logs in $OUT)"
    done
}

# bench_errors WHAT BAD ERRS N: a run whose BAD non-2xx answers and ERRS
# socket errors are over MAX_ERROR_PCT % of its N requests is reported and
# fails the bench at its end (FAILED=1).
bench_errors()
{
    if [ $((($2 + $3) * 100)) -gt $(($4 * MAX_ERROR_PCT)) ]; then
        say "FAILED: $1: $2 non-2xx and $3 socket errors in $4 requests"
        # shellcheck disable=SC2034 # read by the bench that sourced this file
        FAILED=1
    fi
}

# iam_start NAME [IAM ARGS...]: start build/bin/iam on a free port with a
# fresh store and secrets under $BENCH_TMP/NAME; sets IAM_PID, IAM_URL,
# IAM_BOOT (the bootstrap token) and IAM_DIR. Logs go to $IAM_DIR/iam.log.
iam_start()
{
    local name=$1 port
    shift
    [ -x "$BENCH_BIN/iam" ] || die "$BENCH_BIN/iam not found: run make first"
    IAM_DIR=$BENCH_TMP/$name
    mkdir -p "$IAM_DIR"
    openssl genpkey -algorithm ed25519 -out "$IAM_DIR/signing.pem" 2>/dev/null ||
        die "openssl genpkey failed"
    openssl rand -hex 32 >"$IAM_DIR/bootstrap.token"
    openssl rand -hex 32 >"$IAM_DIR/master.key"
    IAM_BOOT=$(cat "$IAM_DIR/bootstrap.token")
    port=$(free_port)
    env -u UC_IAM_THREADS -u UC_IAM_ACCESS_LOG -u UC_IAM_LOG_LEVEL \
        "$BENCH_BIN/iam" --listen 127.0.0.1 --port "$port" \
        --store "sqlite:$IAM_DIR/iam.db" \
        --signing-key-file "$IAM_DIR/signing.pem" \
        --bootstrap-token-file "$IAM_DIR/bootstrap.token" \
        --cred-master-key-file "$IAM_DIR/master.key" "$@" >"$IAM_DIR/iam.log" 2>&1 &
    IAM_PID=$!
    bench_track "$IAM_PID"
    IAM_URL=http://127.0.0.1:$port
    wait_ok "$IAM_URL/readyz" "$IAM_PID" 20
}

# api METHOD PATH [BODY-JSON]: call iam as the bootstrap admin; prints the
# body, fails unless the status is 2xx.
api()
{
    local args=(-sS --max-time 10 -X "$1" -H "Authorization: Bearer $IAM_BOOT"
        -w '\n%{http_code}')
    [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
    local out code
    out=$(curl "${args[@]}" "$IAM_URL$2") || die "curl $1 $2 failed"
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    case "$code" in 2??) printf '%s\n' "$out" ;; *) die "$1 $2 answered $code: $out" ;; esac
}

# jget FIELD: read JSON on stdin, print its top-level FIELD.
jget() { "$PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# rss_kib PID: VmRSS of PID in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# wrk_stats FILE: "<req/s> <p50 ms> <p99 ms> <requests> <non-2xx> <socket
# errors>" from wrk --latency output.
wrk_stats()
{
    awk '
    function ms(v) {
        if (v ~ /us$/) return v / 1000
        if (v ~ /ms$/) return v + 0
        if (v ~ /m$/) return v * 60000
        if (v ~ /s$/) return v * 1000
        return v + 0
    }
    / requests in / { n = $1 }
    /Requests\/sec:/ { rps = $2 }
    $1 == "50%" && !p50 { p50 = ms($2) }
    $1 == "99%" && !p99 { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    /Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
    END { printf "%.0f %.2f %.2f %d %d %d\n", rps, p50, p99, n, bad, err }' "$1"
}

# wrk_parse FILE: "<req/s> <p99 ms> <non-2xx> <socket errors>" from wrk
# --latency output (wrk_stats without p50 and the request count).
wrk_parse() { wrk_stats "$1" | awk '{ print $1, $3, $5, $6 }'; }

# ratio A B: A/B with two decimals ("n/a" when B is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# cc_bench OUT SRC...: build a bench program against libcommon with the
# Makefile's flags.
cc_bench()
{
    local out=$1
    shift
    [ -f "$BENCH_LIB" ] || die "$BENCH_LIB not found: run make first"
    # shellcheck disable=SC2046 # pkg-config output is meant to split
    ${CC:-cc} -std=c11 -Wall -Wextra -Werror -O2 -g -D_GNU_SOURCE -I"$BENCH_ROOT/lib/include" \
        $(pkg-config --cflags libmicrohttpd jansson sqlite3 libcurl openssl) "$@" \
        "$BENCH_LIB" $(pkg-config --libs libmicrohttpd jansson sqlite3 libcurl openssl) \
        -pthread -o "$out" || die "cannot build $out"
}

# iam_admin_token: start a fresh iam (iam_start iam) and set TOKEN to a
# password-grant token of a new user holding system-admin, which cluster
# status, DDL and every data call of chainfire and flaredb accept.
iam_admin_token()
{
    local pw user
    iam_start iam --log-level warn
    pw=$(openssl rand -hex 16)
    user=$(api POST /api/v1/users "{\"name\":\"bench\",\"password\":\"$pw\"}" | jget id)
    api POST /api/v1/role-bindings "{\"principal_id\":\"$user\",\"role\":\"system-admin\"}" >/dev/null
    # shellcheck disable=SC2034 # for the bench that sourced this file
    TOKEN=$(curl -sf --max-time 20 -H 'Content-Type: application/json' \
        --data-binary "{\"grant_type\":\"password\",\"username\":\"bench\",\"password\":\"$pw\"}" \
        "$IAM_URL/api/v1/tokens" | jget token) || die "cannot get a token from iam"
}

# etcd3_start LOGDIR [ETCD ARGS...]: three etcd members (Debian's
# etcd-server) on free loopback ports with default settings (fsync of the
# WAL before answering a write, snapshot-count 100000), data dirs under
# $BENCH_TMP, logs in LOGDIR/etcdN.log; waits for a leader all three agree
# on. Sets ETCD_PID[1..3], ETCD_URL[1..3] and ETCD_LEADER (its client URL).
etcd3_start()
{
    local logdir=$1 i peer=() initial="" unset_env=() v
    shift
    for v in $(compgen -e | grep '^ETCD' || true); do unset_env+=(-u "$v"); done
    for i in 1 2 3; do
        ETCD_URL[i]=http://127.0.0.1:$(free_port)
        peer[i]=http://127.0.0.1:$(free_port)
        initial+="${initial:+,}e$i=${peer[i]}"
    done
    for i in 1 2 3; do
        env "${unset_env[@]}" etcd --name "e$i" --data-dir "$BENCH_TMP/etcd$i" \
            --listen-client-urls "${ETCD_URL[i]}" --advertise-client-urls "${ETCD_URL[i]}" \
            --listen-peer-urls "${peer[i]}" --initial-advertise-peer-urls "${peer[i]}" \
            --initial-cluster "$initial" --initial-cluster-state new \
            --initial-cluster-token uc-bench --logger zap --log-level warn \
            "$@" >"$logdir/etcd$i.log" 2>&1 &
        ETCD_PID[i]=$!
        bench_track "${ETCD_PID[i]}"
        BENCH_LOGS+=("$logdir/etcd$i.log")
    done
    # /health is 200 once the member sees a leader.
    for i in 1 2 3; do wait_ok "${ETCD_URL[i]}/health" "${ETCD_PID[i]}" 30; done
    # shellcheck disable=SC2034 # for the bench that sourced this file
    ETCD_LEADER=$("$PY" -B "$BENCH_ROOT/bench/chainfire/kv.py" leader etcd "${ETCD_URL[@]:1}") ||
        die "etcd elected no leader"
}

# cpu_ms PID...: user + system CPU time the processes (all their threads)
# have used so far, in ms; take it before and after a run.
cpu_ms()
{
    local pid ticks=0 t
    for pid in "$@"; do
        # Drop "pid (comm) " first: comm may hold spaces; utime and stime follow.
        t=$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }') || return 1
        ticks=$((ticks + t))
    done
    echo $((ticks * 1000 / $(getconf CLK_TCK)))
}
