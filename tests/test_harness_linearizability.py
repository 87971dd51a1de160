"""The test-cluster harness's linearizability checker
(test-cluster/uccluster/linearizability.py): known-good and known-bad
register histories, unknown outcomes, random histories built from a real
sequential register, and the shortest counterexample it prints."""

import os
import random
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "test-cluster"))

from uccluster import linearizability as lin  # noqa: E402


def op(p, f, invoke, complete, value=None, result=None, status="ok", key="k"):
    return {"process": p, "key": key, "f": f, "value": value, "result": result,
            "invoke": invoke, "complete": complete if status == "ok" else None,
            "status": status}


def w(p, t0, t1, v, **kw):
    return op(p, "write", t0, t1, value=v, **kw)


def r(p, t0, t1, v, **kw):
    return op(p, "read", t0, t1, result=v, **kw)


def cas(p, t0, t1, expected, new, ok=True, **kw):
    return op(p, "cas", t0, t1, value=[expected, new], result=ok, **kw)


def verdict(ops):
    res = lin.check(ops)["k"]
    assert res["inconclusive"] is None
    return res["ok"]


GOOD = {
    "sequential": [w(1, 0, 1, "a"), r(2, 2, 3, "a"), w(1, 4, 5, "b"), r(2, 6, 7, "b")],
    "empty register reads None": [r(1, 0, 1, None), w(2, 2, 3, "a"), r(1, 4, 5, "a")],
    "overlapping read may see the old value": [w(1, 0, 1, "a"), w(1, 2, 5, "b"),
                                               r(2, 3, 4, "a")],
    "overlapping read may see the new value": [w(1, 0, 1, "a"), w(1, 2, 5, "b"),
                                               r(2, 3, 4, "b")],
    "concurrent writes in either order": [w(1, 0, 3, "a"), w(2, 0, 3, "b"), r(3, 4, 5, "a"),
                                          r(3, 6, 7, "a")],
    "cas succeeds on the expected value": [w(1, 0, 1, "a"), cas(2, 2, 3, "a", "b"),
                                           r(1, 4, 5, "b")],
    "cas on absent creates": [cas(1, 0, 1, None, "a"), r(2, 2, 3, "a"),
                              cas(2, 4, 5, None, "x", ok=False)],
    "failed cas changes nothing": [w(1, 0, 1, "a"), cas(2, 2, 3, "z", "b", ok=False),
                                   r(1, 4, 5, "a")],
    "unknown write seen later took effect": [w(1, 0, 0, "a", status="unknown"),
                                             r(2, 5, 6, "a"), r(2, 7, 8, "a")],
    "unknown write never seen did not": [w(1, 0, 0, "a", status="unknown"),
                                         r(2, 5, 6, None)],
    "unknown write may land late": [w(1, 0, 1, "a"), w(2, 1.5, 0, "b", status="unknown"),
                                    r(3, 2, 3, "a"), r(3, 9, 10, "b")],
    "unknown cas explains a failed cas": [w(1, 0, 1, "a"),
                                          cas(2, 1.5, 0, "a", "q", status="unknown"),
                                          cas(3, 2, 3, "a", "c", ok=False)],
    "failed ops are ignored": [w(1, 0, 1, "a"), w(2, 2, 3, "zzz", status="fail"),
                               r(1, 4, 5, "a")],
}

BAD = {
    "stale read": [w(1, 0, 1, "a"), w(1, 2, 3, "b"), r(2, 4, 5, "a")],
    "read of a value never written": [w(1, 0, 1, "a"), r(2, 2, 3, "x")],
    "lost acknowledged write": [w(1, 0, 1, "a"), r(2, 2, 3, None)],
    "read goes back in time": [w(1, 0, 10, "a"), r(2, 1, 2, "a"), r(3, 3, 4, None)],
    "two cas win on one value": [w(1, 0, 1, "a"), cas(2, 2, 3, "a", "b"),
                                 cas(3, 4, 5, "a", "c")],
    "cas fails on the expected value": [w(1, 0, 1, "a"), cas(2, 2, 3, "a", "b", ok=False),
                                        r(1, 4, 5, "a")],
    "cas result invisible": [cas(1, 0, 1, None, "a"), r(2, 2, 3, None)],
    "unknown write cannot undo itself": [w(1, 0, 0, "a", status="unknown"), r(2, 1, 2, "a"),
                                         w(3, 3, 4, "b"), r(2, 5, 6, "b"), r(2, 7, 8, "a")],
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_known_good_history_is_linearizable(name):
    assert verdict(GOOD[name]) is True


@pytest.mark.parametrize("name", sorted(BAD))
def test_known_bad_history_is_not_linearizable(name):
    assert verdict(BAD[name]) is False


@pytest.mark.parametrize("name", sorted(BAD))
def test_counterexample_is_itself_a_proof(name):
    """What the checker prints must be non-linearizable on its own, made of
    the history's operations (reads may be left out, never invented)."""
    res = lin.check(BAD[name])["k"]
    ce = res["counterexample"]
    assert ce and all(any(c["f"] == o["f"] and c["value"] == o["value"] and
                          c["invoke"] == o["invoke"] for o in BAD[name]) for c in ce)
    assert lin.linearizable(ce) is False


def random_history(seed, n=400, procs=5, unknown_rate=0.05):
    """A linearizable history: each op takes effect on a real register at a
    random instant inside its own interval; some outcomes are then lost
    (unknown), and some unknown ops never took effect at all."""
    rng = random.Random(seed)
    events, ops, t = [], [], 0.0
    for i in range(n):
        inv = t + rng.random() * 0.02
        point = inv + rng.random() * 0.05
        done = point + rng.random() * 0.05
        t += 0.01  # ~5 operations in flight at a time
        f = rng.choice(("read", "read", "write", "cas"))
        events.append((point, i, f, done, inv, rng.random()))
    events.sort()
    state = None
    for point, i, f, done, inv, u in events:
        p = i % procs
        if f == "read":
            o = r(p, inv, done, state)
        elif f == "write":
            if u < unknown_rate / 2:  # sent, never applied, no answer
                o = w(p, inv, 0, "never-%d" % i, status="unknown")
            else:
                state = "v%d" % i
                o = w(p, inv, done, state)
        else:
            expected = state if u < 0.5 else "v%d" % max(0, i - 3)
            succeeded = state == expected
            if succeeded:
                state = "v%d" % i
            o = cas(p, inv, done, expected, "v%d" % i, ok=succeeded)
        if o["status"] == "ok" and f != "read" and u > 1 - unknown_rate:
            o = dict(o, status="unknown", complete=None, result=None)  # answer lost
        ops.append(o)
    return ops


@pytest.mark.parametrize("seed", range(8))
def test_random_linearizable_histories_pass(seed):
    assert verdict(random_history(seed)) is True


@pytest.mark.parametrize("seed", range(4))
def test_random_history_with_a_stale_read_fails_with_a_short_counterexample(seed):
    ops = random_history(seed)
    writes = [o for o in ops if o["f"] == "write" and o["status"] == "ok"]
    mid = writes[len(writes) // 2]["complete"]
    late = [o for o in ops if o["f"] == "read" and o["invoke"] > mid + 1]
    assert late, "history too short for the test"
    late[0]["result"] = writes[0]["value"]  # long overwritten
    res = lin.check(ops)["k"]
    assert res["ok"] is False
    done = [o for o in res["counterexample"] if o["status"] == "ok"]
    assert late[0]["invoke"] in [o["invoke"] for o in done]
    assert len(done) <= 12, lin.describe(res["counterexample"])


def test_keys_are_checked_apart():
    ops = [w(1, 0, 1, "a", key="x"), w(1, 0, 1, "b", key="y"), r(2, 2, 3, "a", key="x"),
           r(2, 2, 3, "a", key="y")]
    res = lin.check(ops)
    assert res["x"]["ok"] is True and res["y"]["ok"] is False


def test_describe_marks_unknown_ops():
    lines = lin.describe([w(1, 0, 0, "a", status="unknown"), r(2, 1, 2, "a")])
    assert "unknown write 'a'" in lines[0] and "?" in lines[0]
    assert "read -> 'a'" in lines[1]


def test_budget_makes_the_check_inconclusive_not_wrong():
    ops = random_history(1, n=200)
    res = lin.check(ops, budget=10)["k"]
    assert res["ok"] is None and "search steps" in res["inconclusive"]


def test_stale_read_is_found_among_many_unknown_operations():
    """Too many lost answers for a search of the whole history: the checker
    still finds and proves the violation in a window of it."""
    ops = random_history(11, n=1500, unknown_rate=0.3)
    writes = [o for o in ops if o["f"] == "write" and o["status"] == "ok"]
    mid = writes[len(writes) // 2]["complete"]
    late = [o for o in ops if o["f"] == "read" and o["invoke"] > mid + 1]
    late[0]["result"] = writes[0]["value"]
    res = lin.check(ops, budget=200_000)["k"]
    assert res["ok"] is False, res["inconclusive"]
    assert lin.linearizable(res["counterexample"], initial=lin.ANY) is False
