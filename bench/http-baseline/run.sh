#!/usr/bin/env bash
# http-baseline/run.sh - GET /healthz on the libcommon HTTP server (the iam
# daemon: MHD thread pool, full router, metrics; access log off) against a
# private nginx answering `return 200` with the same body, same wrk load.
# Environment: BENCH_DURATION (s per run, 10), BENCH_ROUNDS (2),
# BENCH_CONNS (64), BENCH_THREADS (wrk threads, 2).
set -euo pipefail
BENCH_NAME=http-baseline
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"

DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-2}
CONNS=${BENCH_CONNS:-64}
WRK_THREADS=${BENCH_THREADS:-2}
CPUS=$(nproc)
need wrk nginx curl openssl "$PY"

# A private nginx: its own prefix, config, pid and logs under $BENCH_TMP,
# in the foreground so it is our child (the system nginx is not touched).
nginx_start()
{
    local dir=$BENCH_TMP/nginx port
    mkdir -p "$dir/logs"
    port=$(free_port)
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_timeout 30s;
    keepalive_requests 1000000;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port;
        default_type application/json;
        location /healthz { return 200 '{"status":"ok"}'; }
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" >"$dir/logs/stderr.log" 2>&1 &
    NGINX_PID=$!
    bench_track "$NGINX_PID"
    NGINX_URL=http://127.0.0.1:$port
    wait_ok "$NGINX_URL/healthz" "$NGINX_PID" 10
}

# run_wrk URL SECONDS OUT: one wrk run, output kept in OUT.
run_wrk()
{
    bench_run "$3" timeout $(($2 + 30)) wrk -t"$WRK_THREADS" -c"$CONNS" -d"$2"s --latency "$1" ||
        die "wrk against $1 failed: $(tail -n 3 "$3")"
}

# best NAME: "<req/s> <p99>" of NAME's best round (highest req/s).
best() { sort -k1,1nr "$BENCH_TMP/$1.results" | head -n 1 | cut -d' ' -f1,2; }

nginx_start
iam_start iam --threads "$CPUS" --log-level warn
UC_URL=$IAM_URL
body=$(curl -sf "$UC_URL/healthz") || die "libcommon /healthz failed"
[ "$body" = "$(curl -sf "$NGINX_URL/healthz")" ] || die "the two bodies differ"

say "nginx $NGINX_URL (pid $NGINX_PID, worker_processes auto), libcommon $UC_URL" \
    "(iam pid $IAM_PID, --threads $CPUS)"
say "wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s --latency; $ROUNDS rounds each, alternating;" \
    "wrk and both servers share this machine's $CPUS CPUs"
for target in nginx libcommon; do
    url=$NGINX_URL/healthz
    [ $target = libcommon ] && url=$UC_URL/healthz
    run_wrk "$url" 2 "$BENCH_TMP/warmup.out" # warm-up, not counted
done
for round in $(seq 1 "$ROUNDS"); do
    for target in nginx libcommon; do
        url=$NGINX_URL/healthz
        [ $target = libcommon ] && url=$UC_URL/healthz
        out=$BENCH_TMP/$target.$round.out
        run_wrk "$url" "$DURATION" "$out"
        read -r rps p99 bad errs <<<"$(wrk_parse "$out")"
        if [ "$bad" != 0 ] || [ "$errs" != 0 ]; then
            say "warning: $target round $round had $bad non-2xx answers and $errs socket errors"
        fi
        echo "$rps $p99" >>"$BENCH_TMP/$target.results"
        say "round $round $target: $rps req/s, p99 $p99 ms"
    done
done
kill -0 "$IAM_PID" 2>/dev/null || die "iam died during the run (see its log)"
read -r n_rps n_p99 <<<"$(best nginx)"
read -r u_rps u_p99 <<<"$(best libcommon)"
r=$(ratio "$u_rps" "$n_rps")
rounds=$(paste -d' ' "$BENCH_TMP/libcommon.results" "$BENCH_TMP/nginx.results" |
    awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), ($3 > 0 ? $1 / $3 : 0) }')
say "ratio per round (libcommon/nginx): $rounds"
verdict=$(awk -v r="$r" 'BEGIN { print (r >= 0.7) ? "meets" : "BELOW" }')
say "best of $ROUNDS rounds: nginx $n_rps req/s p99 ${n_p99}ms;" \
    "libcommon $u_rps req/s p99 ${u_p99}ms; ratio $r ($verdict the 0.7 goal)"
echo "http-baseline: nginx=${n_rps}req/s p99=${n_p99}ms libcommon=${u_rps}req/s" \
    "p99=${u_p99}ms (best of $ROUNDS, ${CPUS} CPUs shared with wrk) ratio=$r"
