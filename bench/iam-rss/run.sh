#!/usr/bin/env bash
# iam-rss/run.sh - resident memory of the iam daemon (VmRSS from
# /proc/<pid>/status): idle 2 s after it is ready on a fresh store, then
# after 1000 requests (wrk GET /api/v1/keys and /healthz, keep-alive) and
# 2 s idle again. Goal: idle under 8 MiB; ratio = idle / 8 MiB.
# iam runs with its defaults (--threads 2), as an operator would start it.
# Environment: BENCH_REQUESTS (1000).
set -euo pipefail
BENCH_NAME=iam-rss
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"

REQUESTS=${BENCH_REQUESTS:-1000}
GOAL_KIB=$((8 * 1024))
need wrk curl openssl "$PY"

mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }

# breakdown PID: where the resident pages are. RssAnon is the daemon's own
# memory (heap, stacks, relocated library data); RssFile is shared-library
# code and read-only data, shared with every other process mapping them.
# Sets IDLE_ANON and IDLE_PSS (KiB) for the summary line.
breakdown()
{
    local st=/proc/$1/status anon file pss libs top
    anon=$(awk '/^RssAnon:/ {print $2}' "$st")
    file=$(awk '/^RssFile:/ {print $2}' "$st")
    pss=$(awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup")
    IDLE_ANON=$anon IDLE_PSS=$pss
    libs=$(awk '$6 ~ /\.so/ {print $6}' "/proc/$1/maps" | sort -u | wc -l)
    top=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { n = $6 == "" ? "[anon]" : $6; sub(/.*\//, "", n) }
               /^Rss:/ { r[n] += $2 }
               END { for (n in r) printf "%d %s\n", r[n], n }' "/proc/$1/smaps" |
        sort -rn | head -n 8 | awk '{ printf "%s%s %.2f", (NR > 1 ? ", " : ""), $2, $1 / 1024 }')
    say "  RssAnon $(mib "$anon") MiB (its own: heap, stacks, library data)," \
        "RssFile $(mib "$file") MiB (pages of $libs shared libraries), Pss $(mib "$pss") MiB"
    say "  largest mappings (MiB): $top"
}

iam_start rss --log-level warn
sleep 2
idle=$(rss_kib "$IAM_PID")
say "iam pid $IAM_PID ready on a fresh store; idle 2 s: VmRSS $(mib "$idle") MiB"
breakdown "$IAM_PID"

# wrk has no request count: a Lua script stops each of its 2 threads (one
# connection each) after its share of responses. Requests alternate between
# the JWKS and /healthz.
cat >"$BENCH_TMP/count.lua" <<EOF
local share = math.ceil($REQUESTS / 2)
local sent, answered = 0, 0
local paths = {"/api/v1/keys", "/healthz"}
request = function()
    sent = sent + 1
    return wrk.format("GET", paths[sent % 2 + 1])
end
response = function(status)
    answered = answered + 1
    if answered >= share then wrk.thread:stop() end
end
EOF
bench_run "$BENCH_TMP/wrk.out" timeout 60 wrk -t2 -c2 -d30s -s "$BENCH_TMP/count.lua" "$IAM_URL" ||
    die "wrk failed: $(tail -n 3 "$BENCH_TMP/wrk.out")"
done_reqs=$(awk '/requests in/ {print $1}' "$BENCH_TMP/wrk.out")
loaded=$(rss_kib "$IAM_PID")
sleep 2
after=$(rss_kib "$IAM_PID")
peak=$(awk '/^VmHWM:/ {print $2}' "/proc/$IAM_PID/status")
say "after $done_reqs requests: VmRSS $(mib "$loaded") MiB; 2 s later $(mib "$after") MiB;" \
    "peak (VmHWM) $(mib "$peak") MiB"
r=$(ratio "$idle" "$GOAL_KIB")
verdict=$(awk -v i="$idle" -v g="$GOAL_KIB" 'BEGIN { print (i < g) ? "meets" : "ABOVE" }')
say "idle $(mib "$idle") MiB $verdict the 8 MiB goal"
say "(the peak is iam's start-up: it hashes a dummy password with scrypt logN=15, 32 MiB," \
    "so failed logins of unknown users cost as much as real ones; each password login costs" \
    "the same 32 MiB while it runs)"
echo "iam-rss: idle=$(mib "$idle")MiB (anon $(mib "$IDLE_ANON")MiB, pss $(mib "$IDLE_PSS")MiB)" \
    "after_${done_reqs}_requests=$(mib "$after")MiB peak=$(mib "$peak")MiB goal=8MiB ratio=$r"
