"""kv.py - the Python half of bench/chainfire (stdlib only, Debian python3).

The bench drives both stores with the same keys: `keys` writes them once
(both encodings on each line) for kv.lua, `fill` writes every key into both
stores through their transaction APIs so that point reads never miss, and
`leader` finds the member every member agrees leads. `report` turns the wrk
outputs into the table and result.json.

    kv.py keys FILE COUNT VALUE_BYTES
    kv.py fill chainfire URL TOKEN FILE | kv.py fill etcd URL FILE
    kv.py leader chainfire TOKEN URL... | kv.py leader etcd URL...
    kv.py cfstats URL TOKEN
    kv.py report RUNS_TSV META_JSON OUT_JSON
"""

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

# Both stores cap a transaction at 128 operations by default.
TXN_OPS = 128
LEADER_WAIT_S = 30


def b64std(b):
    return base64.b64encode(b).decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def call(method, url, body=None, token=None, timeout=10):
    """(status, parsed JSON or None) of one request; connection errors raise."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read()[:300].decode(errors="replace")


def keys(path, count, value_bytes):
    """Line 1: "value <std> <url>" (one random value); then "<std> <url>"
    per 16-byte key bench/key/NNNNNN."""
    if count > 1000000:
        sys.exit("kv.py: at most 1000000 keys (6 digits)")
    value = os.urandom(value_bytes)
    with open(path, "w") as f:
        f.write("value %s %s\n" % (b64std(value), b64url(value)))
        for i in range(count):
            k = b"bench/key/%06d" % i
            f.write("%s %s\n" % (b64std(k), b64url(k)))


def read_keys(path):
    with open(path) as f:
        lines = [ln.split() for ln in f]
    return lines[0][1:], lines[1:]


def expect_ok(what, status, body):
    if status // 100 != 2:
        sys.exit("kv.py: %s answered %s: %s" % (what, status, body))
    return body


def fill_chainfire(url, token, path):
    value, ks = read_keys(path)
    for i in range(0, len(ks), TXN_OPS):
        ops = [{"put": {"key": k[1], "value": value[1]}} for k in ks[i:i + TXN_OPS]]
        st, body = call("POST", url + "/api/v1/txn", {"compare": [], "success": ops}, token)
        expect_ok("chainfire POST /api/v1/txn", st, body)
    st, body = call("GET", "%s/api/v1/kv/%s" % (url, ks[-1][1]), token=token)
    expect_ok("chainfire GET of the last key", st, body)
    if body["kv"]["value"] != value[1]:
        sys.exit("kv.py: chainfire read back a different value")


def fill_etcd(url, path):
    value, ks = read_keys(path)
    for i in range(0, len(ks), TXN_OPS):
        ops = [{"request_put": {"key": k[0], "value": value[0]}} for k in ks[i:i + TXN_OPS]]
        st, body = call("POST", url + "/v3/kv/txn", {"success": ops})
        expect_ok("etcd POST /v3/kv/txn", st, body)
    st, body = call("POST", url + "/v3/kv/range", {"key": ks[-1][0]})
    expect_ok("etcd range of the last key", st, body)
    if body.get("kvs", [{}])[0].get("value") != value[0]:
        sys.exit("kv.py: etcd read back a different value")


def leader_of(system, url, token):
    """The leader as each member sees it: a chainfire node id or an etcd
    member id, plus this member's own id; (None, None) when unreachable."""
    try:
        if system == "chainfire":
            st, b = call("GET", url + "/api/v1/cluster/status", token=token, timeout=2)
            if st != 200:
                return None, None
            return (b.get("leader") or {}).get("id"), b["id"]
        st, b = call("POST", url + "/v3/maintenance/status", {}, timeout=2)
        if st != 200:
            return None, None
        return b.get("leader"), b["header"]["member_id"]
    except (OSError, ValueError, KeyError):
        return None, None


def leader(system, token, urls):
    """Print the URL of the member all members name as leader."""
    deadline = time.monotonic() + LEADER_WAIT_S
    while time.monotonic() < deadline:
        seen = [leader_of(system, u, token) for u in urls]
        leaders = {lid for lid, _ in seen}
        if len(leaders) == 1 and None not in leaders:
            lid = leaders.pop()
            for u, (_, own) in zip(urls, seen):
                if own == lid:
                    print(u)
                    return
        time.sleep(0.1)
    sys.exit("kv.py: %s: no agreed leader within %d s (last seen: %s)"
             % (system, LEADER_WAIT_S, seen))


def cfstats(url, token):
    st, body = call("GET", url + "/api/v1/cluster/status", token=token)
    expect_ok("chainfire GET /api/v1/cluster/status", st, body)
    print(json.dumps(body.get("stats", {})))


def ratio(a, b):
    return round(a / b, 2) if b else None


def report(runs_path, meta_path, out_path):
    """runs: TSV of workload clients system rps p50 p99 requests errors
    [stats_before stats_after]. Prints the table, writes result.json."""
    cells = {}
    with open(runs_path) as f:
        for line in f:
            w, c, system, rps, p50, p99, n, errs, *stats = line.rstrip("\n").split("\t")
            run = {"ops_per_s": float(rps), "p50_ms": float(p50), "p99_ms": float(p99),
                   "requests": int(n), "errors": int(errs)}
            if stats:
                before, after = json.loads(stats[0]), json.loads(stats[1])
                run["repl_stats"] = {k: after[k] - before.get(k, 0) for k in after}
            cells.setdefault((w, int(c)), {})[system] = run
    with open(meta_path) as f:
        meta = json.load(f)
    rows = []
    hdr = "%-9s %7s %12s %12s %6s %10s %10s %10s %10s" % (
        "workload", "clients", "chainfire/s", "etcd/s", "ratio", "cf p50ms", "etcd p50",
        "cf p99ms", "etcd p99")
    print(hdr)
    for (w, c), sys_runs in cells.items():
        cf, et = sys_runs.get("chainfire"), sys_runs.get("etcd")
        row = {"workload": w, "clients": c, "chainfire": cf, "etcd": et,
               "ratio": ratio(cf["ops_per_s"], et["ops_per_s"]) if cf and et else None}
        rows.append(row)
        print("%-9s %7d %12.0f %12.0f %6s %10.2f %10.2f %10.2f %10.2f" % (
            w, c, cf["ops_per_s"], et["ops_per_s"],
            "n/a" if row["ratio"] is None else "%.2f" % row["ratio"], cf["p50_ms"],
            et["p50_ms"], cf["p99_ms"], et["p99_ms"]))
    meta["results"] = rows
    with open(out_path, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "keys":
        keys(args[0], int(args[1]), int(args[2]))
    elif cmd == "fill" and args[0] == "chainfire":
        fill_chainfire(*args[1:4])
    elif cmd == "fill" and args[0] == "etcd":
        fill_etcd(*args[1:3])
    elif cmd == "leader" and args[0] == "chainfire":
        leader("chainfire", args[1], args[2:])
    elif cmd == "leader" and args[0] == "etcd":
        leader("etcd", None, args[1:])
    elif cmd == "cfstats":
        cfstats(*args[:2])
    elif cmd == "report":
        report(*args[:3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
