#!/bin/sh
# nix-check.sh - every .nix file in the repository must parse
# (nix-instantiate --parse). Evaluating the flake needs nixpkgs and the
# network; parsing needs neither, so this runs anywhere nix-bin is installed.
set -u
cd "$(dirname "$0")/.."
command -v nix-instantiate >/dev/null 2>&1 || { echo "nix-check: nix-instantiate not installed"; exit 2; }
n=0
bad=0
for f in $(find . -name '*.nix' -not -path './work/*' -not -path './build*' | sort); do
    n=$((n + 1))
    if ! out=$(nix-instantiate --parse "$f" 2>&1 >/dev/null); then
        echo "$f: $out"
        bad=$((bad + 1))
    fi
done
echo "nix-check: $n files, $bad failed to parse"
[ "$bad" -eq 0 ]
