#!/bin/sh
# run-unit.sh BUILD - run every Check test binary under BUILD/tests and print
# one "unit: N passed, N failed" line. Exits non-zero when any check fails.
# Optional environment:
#   UC_UNIT_WRAPPER  command put in front of each binary (e.g. valgrind ...)
#   UC_UNIT_SKIP     space-separated test names (test_x) not to run
set -u
build=${1:-build}
passed=0
failed=0
bad=""
wrap=${UC_UNIT_WRAPPER:-}
# First line of an ASan/LSan/UBSan or valgrind report.
REPORT='ERROR: (Address|Leak)Sanitizer|runtime error:|==[0-9]+== [^ ]|^==[0-9]+==$'
for t in $(find "$build/tests" -type f -perm -u+x -name 'test_*' | sort); do
    case " ${UC_UNIT_SKIP:-} " in *" $(basename "$t") "*)
        echo "  $(basename "$t"): skipped (UC_UNIT_SKIP)"
        continue ;;
    esac
    # shellcheck disable=SC2086 # the wrapper is a command line: split it
    out=$(CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-30} $wrap "$t" 2>&1)
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
        # A sanitizer or valgrind report says where: show its start.
        first=$(printf '%s\n' "$out" | grep -nE "$REPORT" | head -n 1 | cut -d: -f1)
        [ -n "$first" ] && printf '%s\n' "$out" | sed -n "${first},$((first + 39))p"
        if [ "$f" -eq 0 ]; then
            # Every check passed yet the process failed: a leak or memory
            # error reported at exit (sanitizer, valgrind).
            [ -n "$first" ] || printf '%s\n' "$out" | tail -n 30
            echo "unit: $(basename "$t") exited $rc after its checks passed"
            failed=$((failed + 1))
        fi
        bad="$bad $t"
    fi
    echo "  $(basename "$t"): $line"
done
echo "unit: $passed passed, $failed failed"
[ -z "$bad" ] || { echo "unit: failing:$bad"; exit 1; }
