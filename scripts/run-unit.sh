#!/bin/sh
# run-unit.sh BUILD - run every Check test binary under BUILD/tests and print
# one "unit: N passed, N failed" line. Exits non-zero when any check fails.
set -u
build=${1:-build}
passed=0
failed=0
bad=""
for t in $(find "$build/tests" -type f -perm -u+x -name 'test_*' | sort); do
    out=$(CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-30} "$t" 2>&1)
    rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
    if [ -z "$line" ]; then
        printf '%s\n' "$out" | tail -n 20
        echo "unit: $t crashed or printed no Check summary (exit $rc)"
        failed=$((failed + 1))
        bad="$bad $t"
        continue
    fi
    checks=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
    fails=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
    errs=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
    f=$((fails + errs))
    passed=$((passed + checks - f))
    failed=$((failed + f))
    if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out" | grep -vE '^[0-9]+%: Checks' | grep -E ':(F|E):' | head -n 20
        [ "$f" -eq 0 ] && failed=$((failed + 1))
        bad="$bad $t"
    fi
    echo "  $(basename "$t"): $line"
done
echo "unit: $passed passed, $failed failed"
[ -z "$bad" ] || { echo "unit: failing:$bad"; exit 1; }
