#!/bin/sh
# regress.sh - replay every committed fuzz input once, cheaply, for
# `make test`: builds each fuzz/fuzz_*.c as a plain binary (no libFuzzer;
# ASan+UBSan unless UC_FUZZ_SAN=0) with fuzz/regress_main.c into
# build-fuzz/regress/bin/, runs it on fuzz/corpus/<target>/, and prints one
# "fuzz-regress: N targets, M inputs, F failed" line. Exits 1 when any input
# crashes or breaks a harness property, 2 when the build fails. No clang or
# libFuzzer needed: CC (default cc) builds it.
set -u
cd "$(dirname "$0")/.."
san=${UC_FUZZ_SAN:-1}
make --no-print-directory -s -f fuzz/fuzz.mk MODE=regress SAN="$san" -j2 || {
    echo "fuzz-regress: build failed" >&2
    exit 2
}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
ntargets=0
ninputs=0
failed=""
for src in fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    ntargets=$((ntargets + 1))
    mkdir -p "fuzz/corpus/$t"
    if out=$("build-fuzz/regress/bin/$t" "fuzz/corpus/$t" 2>&1); then
        n=$(printf '%s\n' "$out" | tail -n 1 | sed -nE 's/.*: ([0-9]+) inputs ran$/\1/p')
        ninputs=$((ninputs + ${n:-0}))
    else
        printf '%s\n' "$out" | tail -n 30
        # Name the inputs that fail: rerun them one by one (only on failure).
        for f in "fuzz/corpus/$t"/*; do
            "build-fuzz/regress/bin/$t" "$f" >/dev/null 2>&1 || echo "fuzz-regress: $t fails on $f"
        done
        echo "fuzz-regress: replay with build-fuzz/regress/bin/$t FILE"
        failed="$failed $t"
    fi
done
nfail=$(echo "$failed" | wc -w)
echo "fuzz-regress: $ntargets targets, $ninputs inputs, $nfail failed"
[ -z "$failed" ] || exit 1
