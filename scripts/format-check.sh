#!/bin/sh
# format-check.sh - every .c/.h file under lib/ services/ fuzz/ bench/
# (tracked or new, not ignored) must already match .clang-format. Fix with
# `make format` or `clang-format -i FILE`.
set -eu
cd "$(dirname "$0")/.."
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files --cached --others --exclude-standard -- \
        'lib/*.[ch]' 'services/*.[ch]' 'fuzz/*.[ch]' 'bench/*.[ch]' | sort)
else
    # A tarball without .git: every file is ours.
    files=$(find lib services fuzz bench -name '*.[ch]' 2>/dev/null | sort)
fi
[ -n "$files" ] || { echo "format: no C files"; exit 0; }
n=0
bad=0
for f in $files; do
    [ -f "$f" ] || continue # listed by git but deleted in the tree
    n=$((n + 1))
    if ! clang-format --dry-run --Werror "$f" 2>/dev/null; then
        echo "format: $f differs (see: clang-format --dry-run $f)"
        bad=$((bad + 1))
    fi
done
echo "format: $n files, $bad not formatted"
[ "$bad" -eq 0 ] || { echo "format: run 'make format' or clang-format -i on them"; exit 1; }
