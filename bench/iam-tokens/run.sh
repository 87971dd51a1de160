#!/usr/bin/env bash
# iam-tokens/run.sh - token issue/s of a live iam (POST /api/v1/tokens via
# wrk + post.lua: password grant at the default scrypt cost logN=15, and an
# access-key grant, which has no KDF) and offline verify/s (verify.c:
# uc_auth_verify on one token, 1 and 2 threads, against a bare Ed25519
# check). ratio = uc_auth_verify / bare Ed25519, one thread each.
# Environment: BENCH_DURATION (s per wrk run, 10), BENCH_VERIFY_COUNT
# (verifications per run, 100000), BENCH_VERIFY_MAX_S (cap per run, 10).
set -euo pipefail
BENCH_NAME=iam-tokens
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/../lib.sh"
HERE=$BENCH_ROOT/bench/iam-tokens

DURATION=${BENCH_DURATION:-10}
VCOUNT=${BENCH_VERIFY_COUNT:-100000}
VMAX=${BENCH_VERIFY_MAX_S:-10}
CPUS=$(nproc)
need wrk curl openssl pkg-config "$PY"

cc_bench "$BENCH_TMP/verify" "$HERE/verify.c"
# Rate limit raised so the limiter never answers 429 during the run; the
# scrypt cost of the user's hash is iam's default (--scrypt-log-n 15).
iam_start tokens --threads "$CPUS" --token-rate 100000 --log-level warn

# A project with a user and a service account (with an access key), both
# members, so tokens carry a project and a role as in real use.
proj=$(api POST /api/v1/projects '{"name":"bench"}' | jget id)
pw=$(openssl rand -hex 16)
user=$(api POST /api/v1/users "{\"name\":\"bench\",\"password\":\"$pw\"}" | jget id)
sa=$(api POST /api/v1/service-accounts "{\"name\":\"bench-sa\",\"project_id\":\"$proj\"}" | jget id)
for p in "$user" "$sa"; do
    api POST /api/v1/role-bindings \
        "{\"principal_id\":\"$p\",\"project_id\":\"$proj\",\"role\":\"member\"}" >/dev/null
done
cred=$(api POST /api/v1/credentials "{\"principal_id\":\"$sa\"}")
ak=$(jget id <<<"$cred")
secret=$(jget secret <<<"$cred")
printf '{"grant_type":"password","username":"bench","password":"%s","project_id":"%s"}' \
    "$pw" "$proj" >"$BENCH_TMP/password.json"
printf '{"grant_type":"access_key","access_key_id":"%s","secret":"%s"}' \
    "$ak" "$secret" >"$BENCH_TMP/access_key.json"

# One of each by hand: both grants work, and the token is kept for verify.
for g in password access_key; do
    curl -sf --max-time 10 -H 'Content-Type: application/json' \
        --data-binary "@$BENCH_TMP/$g.json" "$IAM_URL/api/v1/tokens" >"$BENCH_TMP/$g.resp" ||
        die "POST /api/v1/tokens ($g grant) failed"
done
jget token <"$BENCH_TMP/access_key.resp" >"$BENCH_TMP/token"

# issue GRANT CONNS SECONDS: one wrk POST run; sets RPS and P99 (ms). Not
# for $(...): a subshell would not stop wrk on Ctrl-C.
issue()
{
    local out=$BENCH_TMP/wrk.$1.$3.out bad errs
    BENCH_BODY_FILE=$BENCH_TMP/$1.json bench_run "$out" timeout $(($3 + 30)) \
        wrk -t2 -c"$2" -d"$3"s --latency -s "$HERE/post.lua" "$IAM_URL/api/v1/tokens" ||
        die "wrk ($1 grant) failed: $(tail -n 3 "$out")"
    read -r RPS P99 bad errs <<<"$(wrk_parse "$out")"
    if [ "$bad" != 0 ] || [ "$errs" != 0 ]; then
        die "$1 grant: $bad non-2xx answers, $errs socket errors"
    fi
}

say "iam $IAM_URL (pid $IAM_PID, --threads $CPUS); wrk and iam share $CPUS CPUs"
say "password grant, scrypt logN=15: wrk -t2 -c4 -d${DURATION}s"
issue password 4 "$DURATION"
pw_rps=$RPS pw_p99=$P99
say "  $pw_rps tokens/s, p99 $pw_p99 ms"
say "access-key grant: wrk -t2 -c64 -d${DURATION}s (after a 2 s warm-up)"
issue access_key 64 2
issue access_key 64 "$DURATION"
ak_rps=$RPS ak_p99=$P99
say "  $ak_rps tokens/s, p99 $ak_p99 ms"
kill -0 "$IAM_PID" 2>/dev/null || die "iam died during the run (see its log)"

say "offline verify: $VCOUNT checks per run (at most ${VMAX}s), 1 and 2 threads"
bench_run "$BENCH_TMP/verify.out" "$BENCH_TMP/verify" "$IAM_URL/api/v1/keys" "$BENCH_TMP/token" \
    "$VCOUNT" "$VMAX" 2 || die "verify failed: $(tail -n 3 "$BENCH_TMP/verify.out")"
declare -A V=()
while read -r name t ops secs rate; do
    say "  $name, $t thread(s): $ops in ${secs}s = $rate/s"
    V[${name}_$t]=$rate
done < <(grep -E '^(ed25519_only|uc_auth_verify) [0-9]+ ' "$BENCH_TMP/verify.out")
[ ${#V[@]} = 4 ] || die "verify printed $(cat "$BENCH_TMP/verify.out")"
r=$(ratio "${V[uc_auth_verify_1]}" "${V[ed25519_only_1]}")
echo "iam-tokens: issue_password=${pw_rps}/s (scrypt logN=15, p99 ${pw_p99}ms)" \
    "issue_access_key=${ak_rps}/s (p99 ${ak_p99}ms) verify_1t=${V[uc_auth_verify_1]}/s" \
    "verify_2t=${V[uc_auth_verify_2]}/s ed25519_1t=${V[ed25519_only_1]}/s" \
    "ed25519_2t=${V[ed25519_only_2]}/s ratio=$r"
