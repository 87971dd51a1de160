#!/bin/sh
# nix-check.sh [BUILD] - the Nix checks that need no nixpkgs and no network,
# so they run wherever Debian's nix-bin is installed (docs/nix.md lists the
# ones that need a Nix machine with network):
#   parse       every .nix file parses (nix-instantiate --parse)
#   examples    the cluster schema evaluates for every example cluster
#   invalid     every description under nix/examples/invalid fails with the
#               message its "# expect:" line gives
#   cluster.json  test-cluster/cluster.json equals test-cluster/cluster.nix's
#               evaluation (same JSON value; layout may differ)
#   configs     every daemon config the examples generate passes that
#               daemon's --check-config (daemons from BUILD/bin, default build)
#   units       systemd-analyze verify accepts packaging/systemd/*.service
#               (ExecStart pointed at BUILD/bin) and prints nothing
# A check whose tool or daemon is missing is skipped and named. Ends with
# "nix-check: N passed, M failed, K skipped"; exit 1 when any failed, 2
# when nix-instantiate is not installed.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${1:-build}
PY=${UC_PYTHON:-/usr/bin/python3}
command -v nix-instantiate >/dev/null 2>&1 || { echo "nix-check: nix-instantiate not installed"; exit 2; }
# Debian's nix.conf names a build group that does not exist; evaluation
# needs none, and the warning would bury the messages checked below.
export NIX_CONFIG="build-users-group ="

passed=0
failed=0
skipped=0
pass() { passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
skip() { echo "skip $*"; skipped=$((skipped + 1)); }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# --- parse -----------------------------------------------------------------
n=0
for f in $(find . -name '*.nix' -not -path './work/*' -not -path './build*' | sort); do
    n=$((n + 1))
    if out=$(nix-instantiate --parse "$f" 2>&1 >/dev/null); then pass; else fail "parse $f: $out"; fi
done
echo "parse: $n files"

# --- examples --------------------------------------------------------------
# name -> file; each evaluates to a bootstrap document.
examples="single-node:nix/examples/single-node.nix three-node-ha:nix/examples/three-node-ha.nix harness:test-cluster/cluster.nix"
for e in $examples; do
    name=${e%%:*}
    file=${e#*:}
    if out=$(nix-instantiate --eval --strict --json "$file" 2>&1 >"$TMP/$name.json"); then
        pass
    else
        fail "example $file does not evaluate: $out"
        rm -f "$TMP/$name.json"
    fi
done

# --- invalid examples --------------------------------------------------------
for f in nix/examples/invalid/*.nix; do
    expect=$(sed -n 's/^# expect: //p' "$f")
    if [ -z "$expect" ]; then
        fail "invalid example $f has no '# expect: <message>' line"
    elif out=$(nix-instantiate --eval --strict --json "$f" 2>&1); then
        fail "invalid example $f evaluated; expected: $expect"
    elif printf '%s\n' "$out" | grep -qF -- "$expect"; then
        pass
    else
        fail "invalid example $f: expected '$expect', got: $out"
    fi
done

# --- cluster.json ----------------------------------------------------------
if [ ! -f "$TMP/harness.json" ]; then
    fail "cluster.json: test-cluster/cluster.nix did not evaluate"
elif out=$("$PY" - test-cluster/cluster.json "$TMP/harness.json" 2>&1 <<'EOF'
import difflib, json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
if a != b:
    show = lambda v: json.dumps(v, indent=1, sort_keys=True).splitlines()
    print("\n".join(difflib.unified_diff(show(a), show(b), "committed", "generated", lineterm="")))
    sys.exit(1)
EOF
); then
    pass
else
    fail "test-cluster/cluster.json differs from test-cluster/cluster.nix (regenerate it, see that file):"
    printf '%s\n' "$out" | head -n 40
fi

# --- configs -----------------------------------------------------------------
# Split every document into one file per (node, service): lines "svc file".
for e in $examples; do
    name=${e%%:*}
    [ -f "$TMP/$name.json" ] || continue
    "$PY" - "$TMP/$name.json" "$TMP/cfg-$name" <<'EOF' >>"$TMP/configs" || fail "configs: cannot split $name"
import json, os, sys
doc = json.load(open(sys.argv[1]))
for node in doc["nodes"]:
    for svc, cfg in sorted(node["services"].items()):
        path = "%s-%s-%s.json" % (sys.argv[2], node["name"], svc)
        with open(path, "w") as f:
            json.dump(cfg, f)
        print(svc, path)
EOF
done
missing=""
while read -r svc file; do
    bin=$BUILD/bin/$svc
    if [ ! -x "$bin" ]; then
        case " $missing " in *" $svc "*) ;; *) missing="$missing $svc" ;; esac
        continue
    fi
    # A clean environment: UC_* variables would override the file.
    out=$(env -i PATH="$PATH" "$bin" --config "$file" --check-config 2>&1)
    rc=$?
    if [ $rc -eq 0 ] && [ "$out" = "config ok" ]; then
        pass
    else
        fail "config $(basename "$file"): $svc --check-config exited $rc: $out"
    fi
done <"$TMP/configs"
for svc in $missing; do skip "configs of $svc: $BUILD/bin/$svc is not built"; done

# --- units -------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null 2>&1; then
    skip "units: systemd-analyze not installed"
else
    mkdir -p "$TMP/units"
    for u in packaging/systemd/*.service; do
        svc=$(basename "$u" .service)
        svc=${svc#ultracloud-}
        if [ ! -x "$BUILD/bin/$svc" ]; then
            skip "unit $u: $BUILD/bin/$svc is not built (verify checks ExecStart's binary)"
            continue
        fi
        sed "s|/usr/local/bin/|$PWD/$BUILD/bin/|g" "$u" >"$TMP/units/$(basename "$u")"
        # Any output is a finding: verify only warns on unknown keys.
        if out=$(cd "$TMP/units" && systemd-analyze verify "./$(basename "$u")" 2>&1) && [ -z "$out" ]; then
            pass
        else
            fail "unit $u: $out"
        fi
    done
fi

echo "nix-check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
