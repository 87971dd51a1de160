"""linearizability - Wing & Gong search (with Lowe's memoisation) over a
history of register operations, one key at a time.

An operation is a dict: {"process", "key", "f": "read"|"write"|"cas",
"value", "result", "invoke", "complete", "status"}. read: `result` is the
value seen (None: absent). write: `value`. cas: `value` is [expected, new],
`result` true/false (the compare held or not). status "ok" completed with
that result; "fail" certainly took no effect (dropped); "unknown" may or
may not have taken effect (a timeout): it never returns (complete = +inf),
so the search may place it anywhere after its invocation, or nowhere.

Linearizability is local, so checking each key alone is exact. The one
idea to keep in mind when reading the search: a history is linearizable iff
we can repeatedly pick a not-yet-placed operation whose call comes before
every pending return, apply it to the register, and reach the end with all
completed operations placed; (placed set, register value) pairs already
explored are cached so the search does not revisit them.
"""

import math
import time

FAIL = object()  # the model refuses the step (None is a real value: absent)
UNSEEN = object()  # any written value no operation ever compares against
ANY = object()  # an unknown starting value (a suffix of a history; see shortest)
INF = math.inf


class Inconclusive(Exception):
    """The search exceeded its step budget."""


def step(state, op, canon):
    """The register after `op`, or FAIL when `op` cannot happen in `state`.
    `canon` maps a written value to UNSEEN when nobody could tell it apart."""
    f = op["f"]
    if f == "read":
        if state is ANY:
            return op["result"]
        return state if op["result"] == state else FAIL
    if f == "write":
        return canon(op["value"])
    expected, new = op["value"]
    took_effect = op["status"] != "ok" or op["result"]  # an unknown cas placed took effect
    if state is ANY:
        # ANY stays ANY after a failed cas: "anything but expected" is less
        # precise, which can only hide a violation, never invent one
        return canon(new) if took_effect else ANY
    if took_effect:
        return canon(new) if state == expected else FAIL
    return state if state != expected else FAIL


class _Entry:
    __slots__ = ("op", "call", "match", "prev", "next")

    def __init__(self, op, call):
        self.op, self.call = op, call
        self.match = self.prev = self.next = None


def _entries(ops):
    """The call/return list, sorted by time; at equal times calls come
    first (treating touching operations as concurrent is the permissive
    choice, so it never invents a violation)."""
    events = []
    for i, op in enumerate(ops):
        events.append((op["invoke"], 0, i))
        done = op["complete"] if op["status"] == "ok" else INF
        events.append((done, 1, i))
    events.sort()
    head = _Entry(None, False)
    calls = {}
    prev = head
    for _, kind, i in events:
        e = _Entry(i, kind == 0)
        if e.call:
            calls[i] = e
        else:
            calls[i].match = e
            e.match = calls[i]
        prev.next, e.prev = e, prev
        prev = e
    return head


def _lift(e):
    for x in (e, e.match):
        x.prev.next = x.next
        if x.next is not None:
            x.next.prev = x.prev


def _unlift(e):
    for x in (e.match, e):
        x.prev.next = x
        if x.next is not None:
            x.next.prev = x


def _classes(ops, seen):
    """Per operation: None, or for an unknown write or cas whose written
    value nobody observed, its class. Operations of one class are
    interchangeable (they never return, and they all leave the register
    holding an UNSEEN value), so the search counts how many of each class
    it placed instead of remembering which: that keeps the cache from
    growing with 2^(unknown operations)."""
    out = []
    for op in ops:
        if op["status"] == "ok" or written(op) in seen:
            out.append(None)
        else:
            out.append("w" if op["f"] == "write" else ("cas", op["value"][0]))
    return out


def linearizable(ops, initial=None, budget=2_000_000):
    """True or False for one key's operations (without "fail" ones);
    Inconclusive after `budget` search steps."""
    seen = observed(ops)
    canon = (lambda v: v if v is None or v in seen else UNSEEN)
    cls = _classes(ops, seen)
    head = _entries(ops)
    state, placed, counts = initial, 0, frozenset()
    stack, cache = [], set()
    e = head.next
    steps = 0
    while e is not None:
        steps += 1
        if steps > budget:
            raise Inconclusive("more than %d search steps" % budget)
        if e.call:
            new = step(state, ops[e.op], canon)
            c = cls[e.op]
            # Placing an optional (unknown) operation is pointless when it
            # cannot widen what may follow: onto an equal value, or while
            # the register is still ANY (ANY already allows whatever any
            # state allows, and the operation stays available for later).
            pointless = ops[e.op]["status"] != "ok" and (state is ANY or new == state)
            if new is not FAIL and not pointless:
                if c is None:
                    key = (placed | (1 << e.op), new, counts)
                else:
                    n = dict(counts)
                    n[c] = n.get(c, 0) + 1
                    key = (placed, new, frozenset(n.items()))
                if key not in cache:
                    cache.add(key)
                    stack.append((e, state, placed, counts))
                    state, placed, counts = new, key[0], key[2]
                    _lift(e)
                    e = head.next
                    continue
            e = e.next
        else:
            if ops[e.op]["status"] != "ok":
                return True  # only never-returning (unknown) operations are left
            if not stack:
                return False
            e, state, placed, counts = stack.pop()
            _unlift(e)
            e = e.next
    return True


def prepare(ops):
    """Drop what cannot matter: certain failures and reads without an answer."""
    out = []
    for op in ops:
        if op["status"] == "fail" or (op["f"] == "read" and op["status"] != "ok"):
            continue
        out.append(op)
    return out


def observed(ops):
    """Values some operation tells apart: the results of completed reads,
    the expected value of every completed compare-and-swap, and the
    expected value of an unknown compare-and-swap whose new value is itself
    told apart (only then can its taking effect matter). Any other written
    value can never be told apart from another one."""
    seen = set()
    for op in ops:
        if op["f"] == "read" and op["status"] == "ok":
            seen.add(op["result"])
        elif op["f"] == "cas" and op["status"] == "ok":
            seen.add(op["value"][0])
    pending = [op for op in ops if op["f"] == "cas" and op["status"] != "ok"]
    grew = True
    while grew:
        grew = False
        for op in pending:
            if op["value"][1] in seen and op["value"][0] not in seen:
                seen.add(op["value"][0])
                grew = True
    return seen


def written(op):
    return op["value"] if op["f"] == "write" else op["value"][1]


def check_key(ops, budget=2_000_000):
    """(True, None) or (False, shortest non-linearizable sub-history);
    Inconclusive when neither could be shown within the budget.

    First without the unknown writes whose value nobody observed (if that is
    linearizable, so is the whole: let them not take effect), which keeps
    the search small; then with everything. When the whole is too big to
    search, the lean history still says where the trouble starts, and a
    window of the whole history there is searched instead (see suffix)."""
    ops = prepare(ops)
    seen = observed(ops)
    lean = [op for op in ops if op["status"] == "ok" or written(op) in seen]
    if linearizable(lean, budget=budget):
        return True, None
    try:
        if linearizable(ops, budget=budget):
            return True, None
        return False, shortest(cut(ops, earliest_bad_cut(ops, budget)), budget)
    except Inconclusive:
        sub = cut(ops, earliest_bad_cut(lean, budget))
        found = window(sub, budget, time.monotonic() + 30.0)
        if found is None:
            raise Inconclusive("the whole history needs more than %d search steps, and no "
                               "short window of it was shown non-linearizable" % budget)
        return False, drop_reads(found[0], found[1], budget, time.monotonic() + 20.0)


def cut(ops, t):
    """The history as it stood at time t: operations invoked by then, those
    still running become unknown (reads still running are dropped)."""
    out = []
    for op in ops:
        if op["invoke"] > t:
            continue
        if op["status"] == "ok" and op["complete"] > t:
            if op["f"] == "read":
                continue
            op = dict(op, status="unknown", complete=None)
        out.append(op)
    return out


def suffix(ops, q):
    """The history from time q on, starting from ANY value. Completed
    operations invoked from q on stay as they are; ones running across q
    become optional (status "unknown": they may have taken effect before q,
    inside ANY, or after it; a read across q is dropped); unknown ones all
    stay. Every operation dropped had completed by q, so it precedes every
    operation kept in any linearization: if this suffix cannot be
    linearized from any value at all, neither can the whole history."""
    out = []
    for op in ops:
        if op["status"] != "ok" or op["invoke"] >= q:
            out.append(op)
        elif op["complete"] > q and op["f"] != "read":
            out.append(dict(op, status="unknown", complete=None, result=None,
                            was=("ok", op["complete"], op["result"])))
    return out


def _nonlin(ops, budget, initial=None):
    try:
        return not linearizable(ops, initial=initial, budget=budget)
    except Inconclusive:
        return False


def earliest_bad_cut(ops, budget):
    """The earliest completion time t whose cut is non-linearizable (binary
    search: once a cut is non-linearizable, every later cut is)."""
    ends = sorted({op["complete"] for op in ops if op["status"] == "ok"})
    if not ends:
        return INF
    lo, hi = 0, len(ends) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _nonlin(cut(ops, ends[mid]), budget):
            hi = mid
        else:
            lo = mid + 1
    return ends[lo]


def window(sub, budget, deadline):
    """(suffix, ANY) for the latest invocation time q from which `sub`,
    starting from ANY value, is non-linearizable (scanned backwards: a
    violation usually needs only the last few operations), or None."""
    small = min(budget, 200_000)
    points = sorted({op["invoke"] for op in sub if op["status"] == "ok"})
    for q in reversed(points[1:]):
        if time.monotonic() > deadline:
            return None
        trial = suffix(sub, q)
        if _nonlin(trial, small, ANY):
            return trial, ANY
    return None


def drop_reads(sub, initial, budget, deadline):
    """Drop, one at a time, operations that change nothing (reads, failed
    compare-and-swaps) while `sub` stays non-linearizable: if a history
    without a read is non-linearizable, so is the history with it, so what
    remains is still a proof."""
    small = min(budget, 200_000)
    for op in sorted(sub, key=lambda o: -o["invoke"]):
        if time.monotonic() > deadline:
            break
        readonly = op["f"] == "read" or (op["f"] == "cas" and op["status"] == "ok" and
                                         not op["result"])
        trial = [o for o in sub if o is not op]
        if readonly and _nonlin(trial, small, initial):
            sub = trial
    return sorted(sub, key=lambda o: o["invoke"])


def shortest(sub, budget, time_limit=20.0):
    """A short non-linearizable sub-history of the non-linearizable `sub`
    (the earliest bad cut): a window of it (see window), then without the
    operations that change nothing (see drop_reads). Searches get a small
    budget; one that runs out counts as "not shown non-linearizable", so
    every answer stays a proof."""
    deadline = time.monotonic() + time_limit
    found = window(sub, budget, deadline)
    sub, initial = found if found is not None else (sub, None)
    return drop_reads(sub, initial, budget, deadline)


def check(history, budget=2_000_000):
    """{key: {"ok": bool, "ops": n, "unknown": n, "seconds": s,
    "counterexample": [...] or None, "inconclusive": reason or None}}."""
    by_key = {}
    for op in history:
        by_key.setdefault(op["key"], []).append(op)
    out = {}
    for key, ops in sorted(by_key.items()):
        t = time.monotonic()
        res = {"ops": len(ops), "unknown": sum(op["status"] == "unknown" for op in ops),
               "failed": sum(op["status"] == "fail" for op in ops), "ok": None,
               "counterexample": None, "inconclusive": None}
        try:
            res["ok"], res["counterexample"] = check_key(ops, budget)
        except Inconclusive as e:
            res["inconclusive"] = str(e)
        res["seconds"] = round(time.monotonic() - t, 3)
        out[key] = res
    return out


def describe(ops, t0=None):
    """Operations as readable lines, times relative to t0."""
    if t0 is None:
        t0 = min((op["invoke"] for op in ops), default=0.0)
    lines = []
    for op in sorted(ops, key=lambda o: o["invoke"]):
        done = op.get("complete")
        end = "%.3f" % (done - t0) if done is not None and op["status"] == "ok" else "?"
        status = op["status"]
        if "was" in op:  # ran across the suffix's start: optional there
            end, status = "%.3f" % (op["was"][1] - t0), "ok/opt"
        if op["f"] == "read":
            what = "read -> %r" % (op["result"],)
        elif op["f"] == "write":
            what = "write %r" % (op["value"],)
        else:
            what = "cas %r -> %r%s" % (op["value"][0], op["value"][1],
                                       "" if op["status"] != "ok" else
                                       (" (succeeded)" if op["result"] else " (failed)"))
        lines.append("p%-3s [%8.3f .. %8s] %-7s %s" % (op["process"], op["invoke"] - t0, end,
                                                      status, what))
    return lines
