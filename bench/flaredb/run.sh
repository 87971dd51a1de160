#!/usr/bin/env bash
# flaredb/run.sh - a 3-member flaredb beside its two yardsticks, all in one
# run: the same SQL on a local SQLite file (WAL, synchronous=FULL: the limit
# a replicated store can approach; sqlite_load.c, one thread and connection
# per client) and the same KV puts on a 3-member etcd (Debian's etcd-server).
# Workloads, each at 1, 16 and 64 clients:
#   insert  one single-row INSERT per request / per local transaction
#   get     point SELECT by primary key, linearizable (flaredb's default)
#   sget    the same, "consistency": "serializable"; both compare with the
#           local point select
#   batch   BATCH inserts as one statement list (one log entry) per request
#           vs BATCH inserts per local transaction; compared in rows/s
#   kvput   PUT /api/v1/kv/{ns}/{key} vs etcd's put, random 16-byte keys of
#           one key space with 100-byte values (bench/chainfire's key file)
# flaredb syncs its raft log before it answers a write (raft_uv) and etcd
# its WAL; every data dir and the SQLite file sit in one temp dir, so on the
# same disk. Prints the table (ratios, p50/p99, log entries per append) and
# writes it with every run's figures to work/bench/flaredb/<time>/.
# The goal lines give each goal's ratio per client count and the counts
# that miss it (batch: flaredb/SQLite rows/s >= 0.5; kvput: >= 1 x etcd);
# the summary's ratio= is the lowest batch ratio.
# Environment: BENCH_FDB_DURATION (s per run, 5), BENCH_FDB_CLIENTS
# ("1 16 64"), BENCH_FDB_WORKLOADS ("insert get sget batch kvput"),
# BENCH_FDB_BATCH (inserts per batch, 100, at most 100), BENCH_FDB_ROWS (rows
# point selects read, 10000), BENCH_FDB_KEYS (KV key space, 10000),
# BENCH_FDB_VALUE_BYTES (100), BENCH_FDB_ARGS / BENCH_ETCD_ARGS (extra flags
# for every member), BENCH_FDB_PERF ("batch:64 kvput:16": perf record the
# flaredb leader during those runs, report in the output dir),
# BENCH_FDB_PERF_ARGS (perf record flags, "-g"; "--call-graph dwarf" gives
# callers where frame pointers are missing), BENCH_OUT.
set -euo pipefail
BENCH_NAME=flaredb
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
HERE=$BENCH_ROOT/bench/flaredb

bench_knobs FDB "insert get sget batch kvput" 100
BATCH=${BENCH_FDB_BATCH:-100}
ROWS=${BENCH_FDB_ROWS:-10000}
read -ra PERF <<<"${BENCH_FDB_PERF:-}"
NS=bench
need wrk etcd curl openssl pkg-config "$PY"
[ ${#PERF[@]} = 0 ] || need perf
[ -x "$BENCH_BIN/flaredb" ] || die "$BENCH_BIN/flaredb not found: run make first"
if ! [[ "$BATCH" =~ ^[0-9]+$ ]] || [ "$BATCH" -lt 1 ] || [ "$BATCH" -gt 100 ]; then
    die "BENCH_FDB_BATCH: 1..100 (flaredb's statements per request)"
fi
for w in "${WORKLOADS[@]}"; do
    case "$w" in insert | get | sget | batch | kvput) ;; *) die "unknown workload '$w'" ;; esac
done
mkdir -p "$OUT"
FDB=("$PY" -B "$HERE/fdb.py")
KVPY=("$PY" -B "$BENCH_ROOT/bench/chainfire/kv.py")
LOCAL_DB=$BENCH_TMP/local.db
SQLITE_LOAD=$BENCH_TMP/sqlite_load

# Three flaredb members with default raft timing, snapshots and a synced
# log; sets FDB_PID[i], FDB_URL[i], FDB_LEADER and LEADER_PID.
fdb_start()
{
    local i port raft=() initial="" unset_env=() v
    for v in $(compgen -e | grep '^UC_FLAREDB_' || true); do unset_env+=(-u "$v"); done
    for i in 1 2 3; do
        raft[i]=$(free_port)
        initial+="${initial:+,}$i=127.0.0.1:${raft[i]}"
    done
    for i in 1 2 3; do
        port=$(free_port)
        FDB_URL[i]=http://127.0.0.1:$port
        mkdir -p "$BENCH_TMP/fdb$i"
        env "${unset_env[@]}" "$BENCH_BIN/flaredb" --node-id "$i" --listen 127.0.0.1 \
            --port "$port" --advertise-url "${FDB_URL[i]}" \
            --raft-address "127.0.0.1:${raft[i]}" --data-dir "$BENCH_TMP/fdb$i/data" \
            --initial-cluster "$initial" --iam-jwks-url "$IAM_URL/api/v1/keys" \
            --log-level warn "${EXTRA[@]}" >"$OUT/flaredb$i.log" 2>&1 &
        FDB_PID[i]=$!
        bench_track "${FDB_PID[i]}"
        BENCH_LOGS+=("$OUT/flaredb$i.log")
    done
    for i in 1 2 3; do wait_ok "${FDB_URL[i]}/readyz" "${FDB_PID[i]}" 20; done
    FDB_LEADER=$("${FDB[@]}" leader "$TOKEN" "${FDB_URL[@]:1}") || die "flaredb elected no leader"
    for i in 1 2 3; do
        if [ "${FDB_URL[i]}" = "$FDB_LEADER" ]; then LEADER_PID=${FDB_PID[i]}; fi
    done
}

alive() { bench_alive "${FDB_PID[@]:1}" "${ETCD_PID[@]:1}"; }

# wrk_run SYSTEM OP CLIENTS SECONDS OUT: one wrk run against SYSTEM's leader
# (flaredb: fdb.lua; etcd: bench/chainfire/kv.lua's put).
wrk_run()
{
    local threads=2 script=$HERE/fdb.lua url=$FDB_LEADER
    [ "$3" -lt 2 ] && threads=1
    [ "$1" = etcd ] && script=$BENCH_ROOT/bench/chainfire/kv.lua url=$ETCD_LEADER
    BENCH_SYSTEM=$1 BENCH_OP=$2 BENCH_TOKEN=$TOKEN BENCH_VALUE=$VALUE BENCH_ROWS=$ROWS \
        BENCH_BATCH=$BATCH BENCH_KEYS=$BENCH_TMP/keys BENCH_NS=$NS \
        bench_run "$5" timeout $(($4 + 30)) wrk -t"$threads" -c"$3" -d"$4"s --timeout 5s \
        --latency -s "$script" "$url" || die "wrk $1 $2 failed: $(tail -n 3 "$5")"
}

# sqlite_run OP CLIENTS OUT: the same statements on the local file.
sqlite_run()
{
    bench_run "$3" timeout $((DURATION + 60)) "$SQLITE_LOAD" "$LOCAL_DB" "$1" "$2" \
        "$DURATION" "$VALUE" "$ROWS" "$BATCH" || die "sqlite_load $1 failed: $(tail -n 3 "$3")"
}

# perf_start WORKLOAD CLIENTS: perf record the leader during this run when
# BENCH_FDB_PERF names it; sets PERF_PID ("" when not recording).
perf_start()
{
    PERF_PID=""
    [[ " ${PERF[*]} " == *" $1:$2 "* ]] || return 0
    # shellcheck disable=SC2086 # BENCH_FDB_PERF_ARGS is a list of flags
    perf record -F 499 ${BENCH_FDB_PERF_ARGS:--g} -p "$LEADER_PID" -o "$OUT/perf.$1.$2.data" -- sleep "$DURATION" \
        >"$OUT/perf.$1.$2.log" 2>&1 &
    PERF_PID=$!
    bench_track "$PERF_PID"
}

perf_finish()
{
    [ -n "$PERF_PID" ] || return 0
    wait "$PERF_PID" || say "perf record failed: $(tail -n 2 "$OUT/perf.$1.$2.log")"
    bench_untrack "$PERF_PID"
    perf report -i "$OUT/perf.$1.$2.data" --no-children --percent-limit 1 --stdio -g none \
        >"$OUT/perf.$1.$2.txt" 2>/dev/null || say "perf report failed"
    say "perf profile of the leader: $OUT/perf.$1.$2.txt"
}

# measure SYSTEM OP WORKLOAD CLIENTS: one counted run appended to runs.tsv
# under WORKLOAD (the flaredb workload name it is compared as); over
# MAX_ERROR_PCT % errors marks the run failed (FAILED=1).
measure()
{
    local sys=$1 op=$2 w=$3 c=$4 out=$OUT/run.$3.$4.$1.txt rps p50 p99 n bad errs cpu
    local before="" after="" cpu0
    if [ "$sys" = flaredb ]; then
        before=$("${FDB[@]}" stats "$FDB_LEADER" "$TOKEN")
        cpu0=$(cpu_ms "${FDB_PID[@]:1}")
        perf_start "$w" "$c"
        wrk_run flaredb "$op" "$c" "$DURATION" "$out"
        cpu=$(($(cpu_ms "${FDB_PID[@]:1}") - cpu0))
        perf_finish "$w" "$c"
        after=$("${FDB[@]}" stats "$FDB_LEADER" "$TOKEN")
        read -r rps p50 p99 n bad errs <<<"$(wrk_stats "$out")"
    elif [ "$sys" = etcd ]; then
        cpu0=$(cpu_ms "${ETCD_PID[@]:1}")
        wrk_run etcd put "$c" "$DURATION" "$out"
        cpu=$(($(cpu_ms "${ETCD_PID[@]:1}") - cpu0))
        read -r rps p50 p99 n bad errs <<<"$(wrk_stats "$out")"
    else
        sqlite_run "$op" "$c" "$out"
        read -r rps p50 p99 n bad errs cpu <"$out"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s%s\n' "$w" "$c" "$sys" "$rps" "$p50" "$p99" "$n" \
        $((bad + errs)) "$cpu" "${before:+$'\t'$before$'\t'$after}" >>"$OUT/runs.tsv"
    say "$(printf '%-6s c=%-3s %-7s %8s ops/s  p50 %7s ms  p99 %8s ms  %s errors' \
        "$w" "$c" "$sys" "$rps" "$p50" "$p99" $((bad + errs)))"
    bench_errors "$sys $w c=$c" "$bad" "$errs" "$n"
    alive
}

# The baseline run a flaredb workload is compared with; serializable gets
# share the local point-select run (there is one kind of local read).
baseline()
{
    local w=$1 c=$2
    case "$w" in
    kvput) measure etcd put kvput "$c" ;;
    sget) grep -q "^get	$c	sqlite	" "$OUT/runs.tsv" 2>/dev/null || measure sqlite get get "$c" ;;
    *) measure sqlite "$w" "$w" "$c" ;;
    esac
}

# db_bytes FILE: the size of a SQLite file with its WAL.
db_bytes() { cat "$1" "$1-wal" 2>/dev/null | wc -c; }

# meta: what was run, where, for result.json.
meta()
{
    local rss=() i
    for i in 1 2 3; do rss+=("\"flaredb$i\": $(rss_kib "${FDB_PID[i]}")"); done
    for i in 1 2 3; do rss+=("\"etcd$i\": $(rss_kib "${ETCD_PID[i]}")"); done
    cat <<EOF
{"bench": "flaredb", "time": "$STAMP", "cpus": $(nproc),
 "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')",
 "load_average_start": "$LOAD0", "duration_s": $DURATION, "batch": $BATCH,
 "rows": $ROWS, "kv_keys": $NKEYS, "value_bytes": $VALUE_BYTES, "max_error_pct": $MAX_ERROR_PCT,
 "sqlite_version": "$(pkg-config --modversion sqlite3)",
 "etcd_version": "$(etcd --version | awk '/^etcd Version/ { print $3 }')",
 "flaredb_commit": "$(git -C "$BENCH_ROOT" describe --always --dirty 2>/dev/null || echo unknown)",
 "flaredb_args": "${EXTRA[*]}", "etcd_args": "${ETCD_EXTRA[*]}",
 "durability": "flaredb syncs its raft log, etcd its WAL, SQLite (WAL, synchronous=FULL) its WAL before a write is answered; all on one disk ($(df -T "$BENCH_TMP" | awk 'NR == 2 { print $2 }'))",
 "leaders": {"flaredb": "$FDB_LEADER", "etcd": "$ETCD_LEADER"},
 "db_bytes_after": {"flaredb1": $(db_bytes "$BENCH_TMP/fdb1/data/flaredb.db"), "local": $(db_bytes "$LOCAL_DB")},
 "rss_kib_after": {$(IFS=,; echo "${rss[*]}")}}
EOF
}

# The last line: both goals' figures per client count, ratio = batch's.
summary()
{
    local r figures="" w c
    r=$(awk -F'\t' '$1 == "batch" { rps[$2, $3] = $4; c[$2] = 1 }
        END { min = -1; for (k in c) if (rps[k, "sqlite"] > 0) {
                  x = rps[k, "flaredb"] / rps[k, "sqlite"]; if (min < 0 || x < min) min = x }
              if (min < 0) print "n/a"; else printf "%.2f", min }' "$OUT/runs.tsv")
    for w in batch kvput; do
        for c in "${CLIENTS[@]}"; do
            figures+=$(awk -F'\t' -v w="$w" -v c="$c" -v b="$BATCH" \
                '$1 == w && $2 == c { v[$3] = $4 * (w == "batch" ? b : 1) }
                 END { base = (w == "batch") ? "sqlite" : "etcd"
                       if (v["flaredb"] != "" && v[base] != "")
                           printf " %s_c%s=%.0f/%.0f", w, c, v["flaredb"], v[base] }' "$OUT/runs.tsv")
        done
    done
    echo "flaredb:${figures} (batch rows/s flaredb/sqlite, kvput ops/s flaredb/etcd, ${DURATION}s, $(nproc) CPUs shared) ratio=$r"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -a FDB_PID FDB_URL ETCD_PID ETCD_URL
FAILED=0
VALUE=$(openssl rand -hex "$VALUE_BYTES" | cut -c1-"$VALUE_BYTES")
cc_bench "$SQLITE_LOAD" "$HERE/sqlite_load.c"
"${KVPY[@]}" keys "$BENCH_TMP/keys" "$NKEYS" "$VALUE_BYTES" || die "cannot write the key file"
iam_admin_token
fdb_start
etcd3_start "$OUT" "${ETCD_EXTRA[@]}"
say "flaredb leader $FDB_LEADER (pid $LEADER_PID), etcd leader $ETCD_LEADER; output in $OUT"
say "filling $ROWS rows (flaredb and local SQLite) and $NKEYS keys (flaredb and etcd)"
"${FDB[@]}" setup "$FDB_LEADER" "$TOKEN" "$ROWS" "$VALUE" || die "flaredb fill failed"
bench_run "$BENCH_TMP/fill.txt" "$SQLITE_LOAD" "$LOCAL_DB" fill "$ROWS" "$VALUE" ||
    die "local fill failed: $(cat "$BENCH_TMP/fill.txt")"
"${FDB[@]}" kvfill "$FDB_LEADER" "$TOKEN" "$NS" "$BENCH_TMP/keys" || die "flaredb KV fill failed"
"${KVPY[@]}" fill etcd "$ETCD_LEADER" "$BENCH_TMP/keys" || die "etcd fill failed"
wrk_run flaredb insert 16 1 "$OUT/warmup.flaredb.txt" # not counted
wrk_run etcd put 16 1 "$OUT/warmup.etcd.txt"
say "${DURATION}s per run, flaredb then its baseline; wrk, 6 members and sqlite_load share $(nproc) CPUs"
for w in "${WORKLOADS[@]}"; do
    for c in "${CLIENTS[@]}"; do
        measure flaredb "$w" "$w" "$c"
        baseline "$w" "$c"
    done
done
meta >"$OUT/meta.json"
"${FDB[@]}" report "$OUT/runs.tsv" "$OUT/meta.json" "$OUT/result.json" "$BATCH" \
    >"$OUT/table.txt" || die "report failed"
rm -f "$OUT/meta.json"
cat "$OUT/table.txt" >&2
say "result: $OUT/result.json"
[ "$FAILED" = 0 ] || die "a run had more than $MAX_ERROR_PCT% errors (see above)"
summary
