#!/usr/bin/env bash
# run.sh [SECONDS] [TARGET...] - build the libFuzzer targets with clang into
# build-fuzz/ and run each for SECONDS (default 30), one after another.
#
#   fuzz/run.sh                  every target, 30 s each
#   fuzz/run.sh 600 fuzz_b64     one target for ten minutes
#   UC_FUZZ_JOBS=2 fuzz/run.sh   two targets at a time
#
# Targets are fuzz/fuzz_*.c; lib/*.c is built with
# -fsanitize=fuzzer-no-link,address,undefined (see fuzz/fuzz.mk). Each run
# starts from the committed seeds in fuzz/corpus/<target>/ plus the corpus
# earlier runs grew in build-fuzz/corpus/<target>/ (new inputs go there,
# never into fuzz/), with fuzz/json.dict for the JSON-shaped targets.
# Crashes, leaks, UBSan reports, timeouts (>10 s per input) and harness
# property failures stop that target and leave the reproducer in
# build-fuzz/artifacts/<target>/; the script prints its path and exits 1
# when any target failed. Replay one with: build-fuzz/bin/<target> FILE.
# Logs: build-fuzz/logs/<target>.log.
set -u
cd "$(dirname "$0")/.."
secs=${1:-30}
case $secs in '' | *[!0-9]*)
    echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2
    exit 2 ;;
esac
[ $# -gt 0 ] && shift
jobs=${UC_FUZZ_JOBS:-1}

if [ $# -gt 0 ]; then
    targets=$*
else
    targets=$(for f in fuzz/fuzz_*.c; do basename "$f" .c; done)
fi

make --no-print-directory -s -f fuzz/fuzz.mk MODE=fuzz -j2 \
    $(for t in $targets; do printf 'build-fuzz/bin/%s ' "$t"; done) || {
    echo "fuzz: build failed" >&2
    exit 2
}

# max_len per target: room for what the parser accepts, and a bit beyond.
max_len()
{
    case $1 in
    fuzz_jws_decode) echo 9000 ;; # UC_JWS_MAX_LEN is 8192
    fuzz_b64) echo 512 ;;
    fuzz_password_verify) echo 400 ;; # encodings longer than PW_ENCODED_MAX are refused
    fuzz_http_router) echo 1024 ;;
    *) echo 4096 ;;
    esac
}

dict_for()
{
    case $1 in
    fuzz_json_validate | fuzz_claims | fuzz_config_json | fuzz_jws_decode)
        echo "-dict=fuzz/json.dict" ;;
    esac
}

# run_one TARGET: fuzz it; prints one line and returns non-zero on a finding.
run_one()
{
    t=$1
    work=build-fuzz/corpus/$t
    art=build-fuzz/artifacts/$t
    log=build-fuzz/logs/$t.log
    mkdir -p "$work" "$art" build-fuzz/logs fuzz/corpus/"$t"
    # shellcheck disable=SC2046 # dict_for prints one option or nothing
    build-fuzz/bin/"$t" -max_total_time="$secs" -max_len="$(max_len "$t")" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 $(dict_for "$t") \
        -artifact_prefix="$art/" "$work" fuzz/corpus/"$t" >"$log" 2>&1
    rc=$?
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    if [ $rc -ne 0 ]; then
        repro=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | cut -d' ' -f5)
        grep -E 'ERROR: |SUMMARY: |runtime error|fuzz property violated' "$log" | head -n 5
        echo "fuzz: $t FAILED (exit $rc) after ${execs:-?} runs; reproducer: ${repro:-none, see $log}"
        return 1
    fi
    echo "fuzz: $t ok, ${execs:-?} runs in ${secs}s, corpus $(ls "$work" | wc -l) files"
}

rm -f build-fuzz/logs/*.failed
for t in $targets; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n
    done
    # A target's verdict is a file, so parallel runs need no bookkeeping.
    (run_one "$t" || touch "build-fuzz/logs/$t.failed") &
done
wait
if ls build-fuzz/logs/*.failed >/dev/null 2>&1; then
    echo "fuzz: failing:" $(ls build-fuzz/logs/*.failed | xargs -n1 basename | sed 's/\.failed$//')
    exit 1
fi
echo "fuzz: all targets ran ${secs}s without a finding"
