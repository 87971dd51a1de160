"""fdb.py - the Python half of bench/flaredb (stdlib only, Debian python3).

`setup` creates the bench table on flaredb and fills the rows point
selects read (sqlite_load.c fills the local file the same way), `kvfill`
writes every key of the KV workload so puts overwrite as etcd's do,
`leader` finds the member every member names as leader, `stats` prints the
leader's replication counters, and `report` turns runs.tsv into the table
and result.json. flaredb's cluster routes are chainfire's (the shared
replicated-service module), so leader discovery is bench/chainfire/kv.py's.

    fdb.py setup URL TOKEN ROWS VALUE
    fdb.py kvfill URL TOKEN NS KEYFILE
    fdb.py leader TOKEN URL...
    fdb.py stats URL TOKEN
    fdb.py report RUNS_TSV META_JSON OUT_JSON BATCH
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chainfire"))
import kv  # noqa: E402 - bench/chainfire/kv.py, found through the path above

SCHEMA = ("CREATE TABLE IF NOT EXISTS item(id INTEGER PRIMARY KEY, "
          "name TEXT NOT NULL, value TEXT NOT NULL)")
INSERT = "INSERT INTO item(name, value) VALUES (?, ?)"
SQL_MAX_STATEMENTS = 100  # flaredb's limit per request
KV_TXN_OPS = 1024  # flaredb's limit per KV transaction

# What each flaredb workload is compared with: (system, its workload).
BASELINE = {"insert": ("sqlite", "insert"), "get": ("sqlite", "get"),
            "sget": ("sqlite", "get"), "batch": ("sqlite", "batch"),
            "kvput": ("etcd", "kvput")}
GOALS = {"batch": 0.5, "kvput": 1.0}


def sql(url, token, stmts, what):
    st, body = kv.call("POST", url + "/api/v1/sql", {"statements": stmts}, token, timeout=30)
    return kv.expect_ok(what, st, body)


def setup(url, token, rows, value):
    """The table and rows 1..ROWS, named as sqlite_load names them."""
    rows = int(rows)
    sql(url, token, [{"sql": SCHEMA}], "flaredb CREATE TABLE")
    for start in range(0, rows, SQL_MAX_STATEMENTS):
        stmts = [{"sql": INSERT, "params": ["c0-%d" % i, value]}
                 for i in range(start, min(rows, start + SQL_MAX_STATEMENTS))]
        sql(url, token, stmts, "flaredb fill")
    got = sql(url, token, [{"sql": "SELECT min(id), max(id), count(*) FROM item"}],
              "flaredb count")["results"][0]["rows"][0]
    if got != [1, rows, rows]:
        sys.exit("fdb.py: flaredb's table holds ids %s..%s (%s rows), not 1..%d"
                 % (got[0], got[1], got[2], rows))


def kvfill(url, token, ns, path):
    value, ks = kv.read_keys(path)
    for i in range(0, len(ks), KV_TXN_OPS):
        ops = [{"op": "put", "key": k[1], "value": value[1]} for k in ks[i:i + KV_TXN_OPS]]
        st, body = kv.call("POST", "%s/api/v1/kv/%s/txn" % (url, ns), {"ops": ops}, token)
        kv.expect_ok("flaredb POST /api/v1/kv/%s/txn" % ns, st, body)
    st, body = kv.call("GET", "%s/api/v1/kv/%s/%s" % (url, ns, ks[-1][1]), token=token)
    kv.expect_ok("flaredb GET of the last key", st, body)
    if body["value"] != value[1]:
        sys.exit("fdb.py: flaredb read back a different value")


def stats(url, token):
    """The replication counters, plus the indexes: their deltas over a run
    give the entries committed and how far snapshots moved (one per
    --snapshot-threshold entries, each a copy of the whole database)."""
    st, body = kv.call("GET", url + "/api/v1/cluster/status", token=token)
    kv.expect_ok("flaredb GET /api/v1/cluster/status", st, body)
    out = dict(body.get("stats", {}))
    for k in ("commit_index", "snapshot_index"):
        out[k] = body.get(k, 0)
    print(json.dumps(out))


def read_runs(path):
    """{(workload, clients, system): run} from runs.tsv: workload clients
    system rps p50 p99 requests errors cpu_ms [stats_before stats_after].
    cpu_ms is what the servers (every member) or sqlite_load used."""
    runs = {}
    with open(path) as f:
        for line in f:
            w, c, system, rps, p50, p99, n, errs, cpu, *st = line.rstrip("\n").split("\t")
            run = {"ops_per_s": float(rps), "p50_ms": float(p50), "p99_ms": float(p99),
                   "requests": int(n), "errors": int(errs), "cpu_ms": int(cpu),
                   "cpu_ms_per_op": round(int(cpu) / int(n), 4) if int(n) else None}
            if st:
                before, after = json.loads(st[0]), json.loads(st[1])
                run["repl_stats"] = {k: after[k] - before.get(k, 0) for k in after}
            runs[(w, int(c), system)] = run
    return runs


def rows_of(run, batch):
    """Rows per second of a batch run, kept beside its requests/s."""
    run["rows_per_s"] = run["ops_per_s"] * batch
    return run["rows_per_s"]


def result_rows(runs, batch):
    out = []
    for (w, c, system), fdb in runs.items():
        if system != "flaredb":
            continue
        bsys, bw = BASELINE[w]
        base = runs.get((bw, c, bsys))
        a, b = fdb["ops_per_s"], base["ops_per_s"] if base else 0
        if w == "batch":
            a, b = rows_of(fdb, batch), rows_of(base, batch) if base else 0
        out.append({"workload": w, "clients": c, "unit": "rows/s" if w == "batch" else "ops/s",
                    "flaredb": fdb, "baseline_system": bsys, "baseline": base,
                    "ratio": kv.ratio(a, b)})
    return out


def cpu_per_op(run):
    v = run.get("cpu_ms_per_op")
    return "-" if v is None else "%.3f" % v


def print_table(rows):
    """Rates are rows/s for batch, else ops/s; latencies in ms; cpu/op is
    the CPU ms all members (or sqlite_load) spent per request; ent/app is
    log entries per disk append on the leader."""
    print("%-7s %7s %11s %11s %-6s %6s %8s %8s %8s %8s %8s %8s %7s" % (
        "work", "clients", "flaredb", "baseline", "(of)", "ratio", "fdb p50", "base p50",
        "fdb p99", "base p99", "fdb cpu", "base cpu", "ent/app"))
    for r in rows:
        f, b = r["flaredb"], r["baseline"] or {}
        rate = "rows_per_s" if r["workload"] == "batch" else "ops_per_s"
        st = f.get("repl_stats", {})
        per_append = ("%.1f" % (st["proposals"] / st["appends"])
                      if st.get("appends") and st.get("proposals") else "-")
        print("%-7s %7d %11.0f %11.0f %-6s %6s %8.2f %8.2f %8.2f %8.2f %8s %8s %7s" % (
            r["workload"], r["clients"], f[rate], b.get(rate, 0), r["baseline_system"],
            "n/a" if r["ratio"] is None else "%.2f" % r["ratio"], f["p50_ms"],
            b.get("p50_ms", 0), f["p99_ms"], b.get("p99_ms", 0), cpu_per_op(f), cpu_per_op(b),
            per_append))


def goals(rows):
    """Per goal: the lowest ratio over the client counts and whether it holds."""
    out = {}
    for w, goal in GOALS.items():
        got = [(r["clients"], r["ratio"]) for r in rows
               if r["workload"] == w and r["ratio"] is not None]
        if got:
            ratios = [x for _, x in got]
            out[w] = {"goal": goal, "min_ratio": min(ratios), "met": min(ratios) >= goal,
                      "ratios": {str(c): x for c, x in got},
                      "missed_at": [c for c, x in got if x < goal]}
    return out


def report(runs_path, meta_path, out_path, batch):
    batch = int(batch)
    rows = result_rows(read_runs(runs_path), batch)
    with open(meta_path) as f:
        meta = json.load(f)
    print_table(rows)
    meta["results"] = rows
    meta["goals"] = goals(rows)
    for w, g in meta["goals"].items():
        per = " / ".join("%.2f" % x for x in g["ratios"].values())
        clients = " / ".join(g["ratios"])
        print("goal %s: ratio %s at %s clients, goal %.2f: %s"
              % (w, per, clients, g["goal"], "met" if g["met"] else
                 "MISSED with %s clients" % ", ".join(str(c) for c in g["missed_at"])))
    with open(out_path, "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


def main(argv):
    cmd, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if cmd == "setup" and len(args) == 4:
        setup(*args)
    elif cmd == "kvfill" and len(args) == 4:
        kvfill(*args)
    elif cmd == "leader" and len(args) >= 2:
        kv.leader("chainfire", args[0], args[1:])
    elif cmd == "stats" and len(args) == 2:
        stats(*args)
    elif cmd == "report" and len(args) == 4:
        report(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
