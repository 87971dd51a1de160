#!/usr/bin/env bash
# chainfire/run.sh - a 3-member chainfire and a 3-member etcd (Debian's
# etcd-server) on loopback, both up at once, driven by the same wrk + kv.lua
# load against each one's leader: puts, linearizable gets and serializable
# gets of random keys from one fixed key space, at 1, 16 and 64 clients.
# Both sync their log to disk before answering a write (etcd: fdatasync of
# its WAL, its default; chainfire: raft_uv's synced appends), and both keep
# their data dirs in the same temp dir, so on the same disk. Prints a table
# and writes it with every run's figures to work/bench/chainfire/<time>/
# (result.json, the wrk outputs and the members' logs).
# ratio = the lowest chainfire/etcd puts/s ratio over the client counts
# (goal >= 1: chainfire puts at least at etcd's rate).
# Environment: BENCH_CF_DURATION (s per run, 5), BENCH_CF_CLIENTS ("1 16 64"),
# BENCH_CF_WORKLOADS ("put get sget"), BENCH_CF_KEYS (key space, 10000),
# BENCH_CF_VALUE_BYTES (256), BENCH_CF_ARGS / BENCH_ETCD_ARGS (extra flags
# for every member), BENCH_OUT (output dir).
set -euo pipefail
BENCH_NAME=chainfire
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
HERE=$BENCH_ROOT/bench/chainfire

bench_knobs CF "put get sget" 256
need wrk etcd curl openssl "$PY"
[ -x "$BENCH_BIN/chainfire" ] || die "$BENCH_BIN/chainfire not found: run make first"
mkdir -p "$OUT"
KV=("$PY" "$HERE/kv.py")

# How members learn each other's API URLs changes between chainfire
# versions: --advertise-url (each member's own) or --peer-urls (all of them).
# The bench talks to the leader only, so this matters just for a leader change.
cf_peer_flags()
{
    local i=$1 help
    help=$("$BENCH_BIN/chainfire" --help)
    if grep -q -- '--advertise-url' <<<"$help"; then
        echo "--advertise-url http://127.0.0.1:${CF_PORT[$i]}"
    elif grep -q -- '--peer-urls' <<<"$help"; then
        echo "--peer-urls 1=http://127.0.0.1:${CF_PORT[1]},2=http://127.0.0.1:${CF_PORT[2]},3=http://127.0.0.1:${CF_PORT[3]}"
    fi
}

# Three chainfire members with default raft timing, snapshot and
# compaction settings; sets CF_PID[i], CF_URL[i] and CF_LEADER.
cf_start()
{
    local i raft=() initial="" unset_env=() v peer
    for v in $(compgen -e | grep '^UC_CHAINFIRE_' || true); do unset_env+=(-u "$v"); done
    for i in 1 2 3; do
        CF_PORT[i]=$(free_port)
        raft[i]=$(free_port)
        initial+="${initial:+,}$i=127.0.0.1:${raft[i]}"
    done
    for i in 1 2 3; do
        read -ra peer <<<"$(cf_peer_flags "$i")"
        mkdir -p "$BENCH_TMP/cf$i"
        env "${unset_env[@]}" "$BENCH_BIN/chainfire" --node-id "$i" --listen 127.0.0.1 \
            --port "${CF_PORT[i]}" --raft-address "127.0.0.1:${raft[i]}" \
            --data-dir "$BENCH_TMP/cf$i/data" --initial-cluster "$initial" \
            --iam-jwks-url "$IAM_URL/api/v1/keys" --log-level warn \
            "${peer[@]}" "${EXTRA[@]}" >"$OUT/chainfire$i.log" 2>&1 &
        CF_PID[i]=$!
        bench_track "${CF_PID[i]}"
        BENCH_LOGS+=("$OUT/chainfire$i.log")
        CF_URL[i]=http://127.0.0.1:${CF_PORT[i]}
    done
    for i in 1 2 3; do wait_ok "${CF_URL[i]}/readyz" "${CF_PID[i]}" 20; done
    CF_LEADER=$("${KV[@]}" leader chainfire "$TOKEN" "${CF_URL[@]:1}") ||
        die "chainfire elected no leader"
}

alive() { bench_alive "${CF_PID[@]:1}" "${ETCD_PID[@]:1}"; }

# wrk_kv SYSTEM OP CLIENTS SECONDS OUT: one wrk run against SYSTEM's leader.
wrk_kv()
{
    local url=$CF_LEADER threads=2
    [ "$1" = etcd ] && url=$ETCD_LEADER
    [ "$3" -lt 2 ] && threads=1
    BENCH_SYSTEM=$1 BENCH_OP=$2 BENCH_KEYS=$BENCH_TMP/keys BENCH_TOKEN=$TOKEN \
        bench_run "$5" timeout $(($4 + 30)) wrk -t"$threads" -c"$3" -d"$4"s --timeout 5s \
        --latency -s "$HERE/kv.lua" "$url" || die "wrk $1 $2 failed: $(tail -n 3 "$5")"
}

# measure SYSTEM OP CLIENTS: one counted run, appended to runs.tsv; a run
# with more than MAX_ERROR_PCT % errors is marked failed (FAILED=1).
measure()
{
    local out=$OUT/wrk.$2.$3.$1.txt rps p50 p99 n bad errs before="" after=""
    [ "$1" = chainfire ] && before=$("${KV[@]}" cfstats "$CF_LEADER" "$TOKEN")
    wrk_kv "$1" "$2" "$3" "$DURATION" "$out"
    [ "$1" = chainfire ] && after=$("${KV[@]}" cfstats "$CF_LEADER" "$TOKEN")
    read -r rps p50 p99 n bad errs <<<"$(wrk_stats "$out")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s%s\n' "$2" "$3" "$1" "$rps" "$p50" "$p99" "$n" \
        $((bad + errs)) "${before:+$'\t'$before$'\t'$after}" >>"$OUT/runs.tsv"
    say "$(printf '%-4s c=%-3s %-9s %7s ops/s  p50 %6s ms  p99 %7s ms  %s errors' \
        "$2" "$3" "$1" "$rps" "$p50" "$p99" $((bad + errs)))"
    bench_errors "$1 $2 c=$3" "$bad" "$errs" "$n"
    alive
}

# meta: what was run, where, for result.json.
meta()
{
    local rss=() i
    for i in 1 2 3; do rss+=("\"chainfire$i\": $(rss_kib "${CF_PID[i]}")"); done
    for i in 1 2 3; do rss+=("\"etcd$i\": $(rss_kib "${ETCD_PID[i]}")"); done
    cat <<EOF
{"bench": "chainfire", "time": "$STAMP", "cpus": $(nproc),
 "cpu": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')",
 "load_average_start": "$LOAD0", "duration_s": $DURATION, "keys": $NKEYS,
 "key_bytes": 16, "value_bytes": $VALUE_BYTES, "max_error_pct": $MAX_ERROR_PCT,
 "etcd_version": "$(etcd --version | awk '/^etcd Version/ { print $3 }')",
 "chainfire_commit": "$(git -C "$BENCH_ROOT" describe --always --dirty 2>/dev/null || echo unknown)",
 "chainfire_args": "$(cf_peer_flags 1 | sed 's/ .*//')${EXTRA[*]:+ ${EXTRA[*]}}",
 "etcd_args": "${ETCD_EXTRA[*]}",
 "durability": "both fsync before acknowledging a write; data dirs on the same disk ($(df -T "$BENCH_TMP" | awk 'NR == 2 { print $2 }'))",
 "leaders": {"chainfire": "$CF_LEADER", "etcd": "$ETCD_LEADER"},
 "rss_kib_after": {$(IFS=,; echo "${rss[*]}")}}
EOF
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
declare -a CF_PORT CF_PID CF_URL ETCD_PID ETCD_URL
FAILED=0
"${KV[@]}" keys "$BENCH_TMP/keys" "$NKEYS" "$VALUE_BYTES" || die "cannot write the key file"
iam_admin_token
cf_start
etcd3_start "$OUT" "${ETCD_EXTRA[@]}"
say "chainfire leader $CF_LEADER, etcd leader $ETCD_LEADER; output in $OUT"
say "filling $NKEYS keys of 16 bytes with $VALUE_BYTES-byte values in both stores"
"${KV[@]}" fill chainfire "$CF_LEADER" "$TOKEN" "$BENCH_TMP/keys" || die "chainfire fill failed"
"${KV[@]}" fill etcd "$ETCD_LEADER" "$BENCH_TMP/keys" || die "etcd fill failed"
for system in chainfire etcd; do # warm-up, not counted
    wrk_kv "$system" put 16 1 "$OUT/warmup.$system.txt"
done
say "${DURATION}s per run, alternating chainfire and etcd; wrk and 6 members share $(nproc) CPUs"
for w in "${WORKLOADS[@]}"; do
    for c in "${CLIENTS[@]}"; do
        for system in chainfire etcd; do measure "$system" "$w" "$c"; done
    done
done
meta >"$OUT/meta.json"
"${KV[@]}" report "$OUT/runs.tsv" "$OUT/meta.json" "$OUT/result.json" >"$OUT/table.txt" ||
    die "report failed"
rm -f "$OUT/meta.json"
cat "$OUT/table.txt" >&2
say "result: $OUT/result.json"
r=$(awk -F'\t' '$1 == "put" { rps[$2, $3] = $4; c[$2] = 1 }
    END { min = -1; for (k in c) if (rps[k, "etcd"] > 0) {
              x = rps[k, "chainfire"] / rps[k, "etcd"]; if (min < 0 || x < min) min = x }
          if (min < 0) print "n/a"; else printf "%.2f", min }' "$OUT/runs.tsv")
puts=""
for c in "${CLIENTS[@]}"; do
    puts+=$(awk -F'\t' -v c="$c" '$1 == "put" && $2 == c { v = v (v ? "/" : "") $4 }
        END { if (v) printf " put_c%s=%s", c, v }' "$OUT/runs.tsv")
done
[ "$FAILED" = 0 ] || die "a run had more than $MAX_ERROR_PCT% errors (see above)"
echo "chainfire:${puts} ops/s (chainfire/etcd, ${DURATION}s, $(nproc) CPUs shared) ratio=$r"
