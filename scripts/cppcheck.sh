#!/bin/sh
# cppcheck.sh - static analysis of every C file under lib/ and services/;
# any finding fails. Silence a justified finding in place with
# "// cppcheck-suppress <id>" on the line above, and say why.
set -eu
cd "$(dirname "$0")/.."
dirs=""
for d in lib services; do
    [ -d "$d" ] && dirs="$dirs $d"
done
[ -n "$dirs" ] || { echo "cppcheck: nothing to check"; exit 0; }
# shellcheck disable=SC2086 # $dirs is a list of directories
exec cppcheck -q -j "${UC_TEST_JOBS:-2}" --std=c11 --language=c \
    --enable=warning,performance,portability --error-exitcode=1 --inline-suppr \
    --suppress=missingIncludeSystem -D_GNU_SOURCE -Ilib/include $dirs
