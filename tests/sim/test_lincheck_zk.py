"""The ZooKeeper models of the checker: versioned znodes, sequential children, the lock.

Hand-made histories with a known verdict, then hypothesis histories: a sequential
execution whose operations get random intervals around their linearization point (and
some never return) must pass; the same execution with one guaranteed-impossible answer
must fail, and its failure report names the corrupted operation.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkquorum.sim.lincheck import (
    BADVERSION,
    NODEEXISTS,
    NONODE,
    OK,
    UNKNOWN,
    LockModel,
    LockOp,
    Model,
    Operation,
    SeqModel,
    SeqOp,
    Verdict,
    Znode,
    ZnodeModel,
    ZnodeOp,
    check,
    describe_failure,
    failure_report,
    minimal_failure,
    shrink_failure,
    znode_effect,
)


def op(client: int, call: int, ret: int | None, input: Hashable, output: Hashable) -> Operation:
    return Operation(client, call, ret, input, output)


def report_to(path: Path, model: Model[Any], history: Sequence[Operation]) -> str:
    text = failure_report(model, history)
    path.write_text(text)
    return text


def assert_linearizable(tmp_path: Path, model: Model[Any], history: list[Operation]) -> None:
    path = tmp_path / "failure.txt"
    text = report_to(path, model, history)
    assert not text, f"not linearizable, see {path}:\n{text}"


def assert_caught(tmp_path: Path, model: Model[Any], history: list[Operation]) -> str:
    path = tmp_path / "failure.txt"
    text = report_to(path, model, history)
    assert text.startswith(tuple("0123456789")), f"expected a violation, got {text!r} ({path})"
    assert check(model, history).verdict is Verdict.NOT_LINEARIZABLE
    return text


def assert_reported(model: Model[Any], history: list[Operation]) -> None:
    """Caught, and the report shows a part that fails on its own."""
    result = check(model, history)
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    small = minimal_failure(model, result.failing_partition)
    assert small and check(model, small).verdict is Verdict.NOT_LINEARIZABLE
    assert failure_report(model, history).endswith(describe_failure(model, small))


def create(p: str, v: bytes) -> ZnodeOp:
    return ZnodeOp("create", p, v)


def set_(p: str, v: bytes, version: int = -1) -> ZnodeOp:
    return ZnodeOp("set", p, v, version)


def get(p: str) -> ZnodeOp:
    return ZnodeOp("get", p)


def delete(p: str, version: int = -1) -> ZnodeOp:
    return ZnodeOp("delete", p, version=version)


ZNODE_GOOD = {
    "read-overlaps-create": [
        op(0, 0, 10, create("/a", b"x"), OK),
        op(1, 5, 15, get("/a"), (b"x", 0)),
        op(1, 16, 18, get("/b"), NONODE),
    ],
    "concurrent-cas-one-wins": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(1, 10, 30, set_("/a", b"p", 0), 1),
        op(2, 12, 28, set_("/a", b"q", 0), BADVERSION),
        op(3, 40, 50, get("/a"), (b"p", 1)),
    ],
    "stale-read-while-concurrent": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(1, 10, 30, set_("/a", b"y"), 1),
        op(2, 20, 40, get("/a"), (b"x", 0)),
        op(2, 41, 45, get("/a"), (b"y", 1)),
    ],
    "open-ended-write-seen-later": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(1, 10, None, set_("/a", b"y", 0), UNKNOWN),
        op(2, 50, 60, get("/a"), (b"x", 0)),
        op(2, 70, 80, get("/a"), (b"y", 1)),
        op(3, 90, 95, set_("/a", b"z", 1), 2),
    ],
    "open-ended-write-never-seen": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(1, 10, None, set_("/a", b"y", 7), UNKNOWN),
        op(2, 50, 60, get("/a"), (b"x", 0)),
    ],
    "delete-and-recreate": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(0, 2, 3, set_("/a", b"y", 0), 1),
        op(1, 4, 5, delete("/a", 0), BADVERSION),
        op(1, 6, 7, delete("/a", 1), OK),
        op(2, 8, 9, get("/a"), NONODE),
        op(2, 10, 11, set_("/a", b"z"), NONODE),
        op(0, 12, 13, create("/a", b"w"), OK),
        op(1, 14, 15, create("/a", b"v"), NODEEXISTS),
        op(2, 16, 17, ZnodeOp("check", "/a", version=0), OK),
        op(2, 18, 19, get("/a"), (b"w", 0)),
    ],
}

ZNODE_BAD = {
    "lost-update-two-cas-win": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(1, 10, 30, set_("/a", b"p", 0), 1),
        op(2, 12, 28, set_("/a", b"q", 0), 1),
    ],
    "stale-read-after-ack": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(1, 10, 20, set_("/a", b"y"), 1),
        op(2, 30, 40, get("/a"), (b"x", 0)),
    ],
    "read-goes-back": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(1, 10, 100, set_("/a", b"y"), 1),
        op(2, 20, 30, get("/a"), (b"y", 1)),
        op(3, 40, 50, get("/a"), (b"x", 0)),
    ],
    "wrong-new-version": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(1, 10, 20, set_("/a", b"y"), 2),
    ],
    "created-twice": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(1, 10, 20, create("/a", b"y"), OK),
    ],
    "badversion-on-match": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(1, 10, 20, set_("/a", b"y", 0), BADVERSION),
    ],
    "never-written-value": [
        op(0, 0, 1, create("/a", b"x"), OK),
        op(1, 10, None, set_("/a", b"y"), UNKNOWN),
        op(2, 30, 40, get("/a"), (b"z", 1)),
    ],
}


@pytest.mark.parametrize("name", sorted(ZNODE_GOOD))
def test_znode_good(name: str, tmp_path: Path) -> None:
    assert_linearizable(tmp_path, ZnodeModel(), ZNODE_GOOD[name])


@pytest.mark.parametrize("name", sorted(ZNODE_BAD))
def test_znode_bad(name: str, tmp_path: Path) -> None:
    assert_caught(tmp_path, ZnodeModel(), ZNODE_BAD[name])


def test_znode_partitions_by_path(tmp_path: Path) -> None:
    history = [
        *ZNODE_GOOD["concurrent-cas-one-wins"],
        op(0, 0, 1, create("/b", b"x"), OK),
        op(1, 10, 20, create("/b", b"y"), OK),
    ]
    text = assert_caught(tmp_path, ZnodeModel(), history)
    assert "'/b'" in text and "'/a'" not in text


def sc(parent: str = "/q") -> SeqOp:
    return SeqOp("create", parent)


def ls(parent: str = "/q") -> SeqOp:
    return SeqOp("children", parent)


SEQ_GOOD = {
    "concurrent-any-order": [
        op(0, 0, 30, sc(), 2),
        op(1, 5, 25, sc(), 0),
        op(2, 10, 20, sc(), 1),
        op(3, 40, 50, ls(), frozenset({0, 1, 2})),
    ],
    "open-ended-create-takes-a-number": [
        op(0, 0, None, sc(), UNKNOWN),
        op(1, 10, 20, sc(), 1),
        op(2, 30, 40, ls(), frozenset({0, 1})),
    ],
    "open-ended-create-never-happened": [
        op(0, 0, None, sc(), UNKNOWN),
        op(1, 10, 20, sc(), 0),
        op(1, 30, 40, sc(), 1),
    ],
    "parents-are-independent": [
        op(0, 0, 10, sc("/q"), 0),
        op(0, 20, 30, sc("/r"), 0),
        op(0, 40, 50, sc("/q"), 1),
    ],
}

SEQ_BAD = {
    "later-create-smaller-number": [
        op(0, 0, 10, sc(), 1),
        op(1, 20, 30, sc(), 0),
    ],
    "duplicate-number": [
        op(0, 0, 10, sc(), 0),
        op(1, 5, 30, sc(), 0),
    ],
    "number-skipped": [
        op(0, 0, 10, sc(), 0),
        op(1, 20, 30, sc(), 2),
    ],
    "acked-child-missing": [
        op(0, 0, 10, sc(), 0),
        op(1, 20, 30, ls(), frozenset()),
    ],
}


@pytest.mark.parametrize("name", sorted(SEQ_GOOD))
def test_seq_good(name: str, tmp_path: Path) -> None:
    assert_linearizable(tmp_path, SeqModel(), SEQ_GOOD[name])


@pytest.mark.parametrize("name", sorted(SEQ_BAD))
def test_seq_bad(name: str, tmp_path: Path) -> None:
    assert_caught(tmp_path, SeqModel(), SEQ_BAD[name])


def acq(c: int, name: str = "/lock", attempt: int = 0) -> LockOp:
    return LockOp("acquire", name, c, attempt)


def rel(c: int, name: str = "/lock", attempt: int = 0) -> LockOp:
    return LockOp("release", name, c, attempt)


LOCK_GOOD = {
    "waiter-gets-it-after-release": [
        op(0, 0, 10, acq(0), True),
        op(1, 5, 40, acq(1), True),
        op(0, 20, 30, rel(0), True),
        op(1, 50, 60, rel(1), True),
    ],
    "gave-up-while-held": [
        op(0, 0, 10, acq(0), True),
        op(1, 15, 20, acq(1), False),
        op(0, 30, 40, rel(0), True),
    ],
    "session-lost-releases": [
        op(0, 0, 10, acq(0), True),
        op(0, 20, None, rel(0), UNKNOWN),
        op(1, 30, 40, acq(1), True),
    ],
    "late-release-frees-only-its-own-hold": [
        op(0, 0, 10, acq(0, attempt=1), True),
        op(0, 20, None, rel(0, attempt=1), UNKNOWN),
        op(1, 30, 40, acq(1, attempt=1), True),
        op(1, 50, 60, rel(1, attempt=1), True),
        op(0, 70, 80, acq(0, attempt=2), True),
        op(2, 90, 100, acq(2, attempt=1), False),
    ],
    "locks-are-independent": [
        op(0, 0, 10, acq(0, "/l1"), True),
        op(1, 5, 15, acq(1, "/l2"), True),
    ],
}

LOCK_BAD = {
    "two-holders": [
        op(0, 0, 10, acq(0), True),
        op(1, 5, 15, acq(1), True),
        op(0, 20, 30, rel(0), True),
        op(1, 25, 35, rel(1), True),
    ],
    "acquired-before-release-was-called": [
        op(0, 0, 10, acq(0), True),
        op(1, 12, 18, acq(1), True),
        op(0, 20, 30, rel(0), True),
    ],
    "release-without-holding": [
        op(0, 0, 10, rel(0), True),
    ],
    "late-release-frees-a-later-hold": [
        op(0, 0, 10, acq(0, attempt=1), True),
        op(0, 20, None, rel(0, attempt=1), UNKNOWN),
        op(0, 30, 40, acq(0, attempt=2), True),
        op(1, 50, 60, acq(1, attempt=1), True),
    ],
}


@pytest.mark.parametrize("name", sorted(LOCK_GOOD))
def test_lock_good(name: str, tmp_path: Path) -> None:
    assert_linearizable(tmp_path, LockModel(), LOCK_GOOD[name])


@pytest.mark.parametrize("name", sorted(LOCK_BAD))
def test_lock_bad(name: str, tmp_path: Path) -> None:
    assert_caught(tmp_path, LockModel(), LOCK_BAD[name])


# -- generated: sequential executions with overlapping intervals ---------------------------

_SPAN = st.tuples(st.integers(0, 400), st.integers(0, 400), st.booleans())


def _interval(i: int, span: tuple[int, int, bool]) -> tuple[int, int | None, int]:
    """The interval of the i-th operation (its point is 100 i + 50); ret None if open."""
    before, after, open_ended = span
    point = 100 * i + 50
    return point - before, None if open_ended else point + after, point


_ZNODE_STEP = st.tuples(
    st.sampled_from(["create", "set", "set", "delete", "get", "get", "check"]),
    st.sampled_from(["/a", "/b"]),
    st.sampled_from([b"x", b"y", b"z"]),
    st.sampled_from(["any", "current", "current", "other"]),
)


def _znode_history(
    steps: list[tuple[tuple[str, str, bytes, str], tuple[int, int, bool]]],
) -> list[Operation]:
    state: dict[str, Znode] = {}
    history = []
    for i, ((kind, path, value, which), span) in enumerate(steps):
        cur = state.get(path)
        version = -1
        if which == "current":
            version = cur[1] if cur is not None else 0
        elif which == "other":
            version = (cur[1] if cur is not None else 0) + 1
        zop = ZnodeOp(kind, path, value, version)
        out, state[path] = znode_effect(cur, zop)
        call, ret, _ = _interval(i, span)
        history.append(Operation(i % 4, call, ret, zop, UNKNOWN if ret is None else out))
    return history


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_ZNODE_STEP, _SPAN), max_size=24))
def test_generated_znode_histories_are_linearizable(
    steps: list[tuple[tuple[str, str, bytes, str], tuple[int, int, bool]]],
) -> None:
    assert check(ZnodeModel(), _znode_history(steps)).verdict is Verdict.LINEARIZABLE


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_ZNODE_STEP, _SPAN), min_size=1, max_size=24), st.data())
def test_generated_znode_corruption_is_caught(
    steps: list[tuple[tuple[str, str, bytes, str], tuple[int, int, bool]]],
    data: st.DataObject,
) -> None:
    """A get or set answers a version no execution of these few ops can reach."""
    history = _znode_history(steps)
    history.append(Operation(9, 0, 1, create("/c", b"x"), OK))
    history.append(Operation(9, 2, 3, ZnodeOp("get", "/c"), (b"x", 0)))
    candidates = [
        i
        for i, o in enumerate(history)
        if isinstance(o.output, int) or (isinstance(o.output, tuple) and o.ret is not None)
    ]
    i = data.draw(st.sampled_from(candidates))
    out = history[i].output
    if isinstance(out, int):
        bad: Hashable = out + 1000
    else:
        assert isinstance(out, tuple)
        bad = (out[0], out[1] + 1000)
    history[i] = replace(history[i], output=bad)
    assert_reported(ZnodeModel(), history)


_SEQ_STEP = st.tuples(st.sampled_from(["create", "create", "children"]), st.sampled_from("qr"))


def _seq_history(steps: list[tuple[tuple[str, str], tuple[int, int, bool]]]) -> list[Operation]:
    counters: dict[str, int] = {}
    history = []
    for i, ((kind, parent), span) in enumerate(steps):
        n = counters.get(parent, 0)
        out: Hashable = n if kind == "create" else frozenset(range(n))
        if kind == "create":
            counters[parent] = n + 1
        call, ret, _ = _interval(i, span)
        history.append(
            Operation(i % 4, call, ret, SeqOp(kind, parent), UNKNOWN if ret is None else out)
        )
    return history


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_SEQ_STEP, _SPAN), max_size=24))
def test_generated_seq_histories_are_linearizable(
    steps: list[tuple[tuple[str, str], tuple[int, int, bool]]],
) -> None:
    assert check(SeqModel(), _seq_history(steps)).verdict is Verdict.LINEARIZABLE


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_SEQ_STEP, _SPAN), max_size=24), st.data())
def test_generated_seq_duplicate_is_caught(
    steps: list[tuple[tuple[str, str], tuple[int, int, bool]]], data: st.DataObject
) -> None:
    """Two creates under one parent answer the same number."""
    history = _seq_history(steps)
    history.append(Operation(9, -10, -5, SeqOp("create", "q"), 0))
    known = [
        i
        for i, o in enumerate(history[:-1])
        if o.input == SeqOp("create", "q") and o.ret is not None
    ]
    if known:
        i = data.draw(st.sampled_from(known))
        history[-1] = replace(
            history[-1], call=history[i].call, ret=history[i].ret, output=history[i].output
        )
    else:
        history.append(Operation(9, 0, 1, SeqOp("create", "q"), 0))
    assert_reported(SeqModel(), history)


def _lock_history(
    steps: list[tuple[int, tuple[int, int, bool]]],
) -> tuple[list[Operation], list[tuple[int, int]]]:
    """The history, and the (acquire, release) index pairs of every completed hold."""
    holder: int | None = None
    since = -1
    attempts = [0, 0, 0]
    history: list[Operation] = []
    holds: list[tuple[int, int]] = []
    for i, (client, span) in enumerate(steps):
        if holder is None:
            attempts[client] += 1
            lop, out, holder, since = acq(client, attempt=attempts[client]), True, client, i
        elif holder == client:
            lop, out, holder = rel(client, attempt=attempts[client]), True, None
            holds.append((since, i))
        else:
            attempts[client] += 1
            lop, out = acq(client, attempt=attempts[client]), False
        call, ret, _ = _interval(i, span)
        history.append(Operation(client, call, ret, lop, UNKNOWN if ret is None else out))
    return history, holds


_LOCK_STEPS = st.lists(st.tuples(st.integers(0, 2), _SPAN), max_size=24)


@settings(max_examples=150, deadline=None)
@given(_LOCK_STEPS)
def test_generated_lock_histories_are_linearizable(
    steps: list[tuple[int, tuple[int, int, bool]]],
) -> None:
    history, _ = _lock_history(steps)
    assert check(LockModel(), history).verdict is Verdict.LINEARIZABLE


@settings(max_examples=150, deadline=None)
@given(_LOCK_STEPS, st.data())
def test_generated_lock_intruder_is_caught(
    steps: list[tuple[int, tuple[int, int, bool]]], data: st.DataObject
) -> None:
    """A client acquires and releases the lock strictly inside another client's hold."""
    history, holds = _lock_history([(0, (0, 0, False)), (0, (0, 0, False)), *steps])
    a, r = data.draw(st.sampled_from(holds))
    # The hold's ends are pinned to their points: every linearization holds it in between.
    for k in (a, r):
        point = 100 * k + 50
        history[k] = replace(history[k], call=point, ret=point, output=True)
    start = 100 * a + 50
    history.append(Operation(99, start + 10, start + 20, acq(99, attempt=1), True))
    history.append(Operation(99, start + 30, start + 40, rel(99, attempt=1), True))
    assert_reported(LockModel(), history)


def _rolled_back(n: int) -> list[Operation]:
    """``n`` compare-and-sets one after another, then a read that lost the last one."""
    history = [op(0, 0, 1, create("/r", b"0"), OK)]
    for k in range(n):
        history.append(
            op(k % 4, 10 * k + 10, 10 * k + 15, ZnodeOp("set", "/r", b"%d" % k, k), k + 1)
        )
    last = 10 * n + 10
    history.append(op(9, last, last + 5, ZnodeOp("get", "/r"), (b"%d" % (n - 2), n - 1)))
    return history


def test_failure_report_keeps_to_its_budget() -> None:
    """Shrinking a failure searches what is left once per operation: on a long history
    (a chaos campaign's: thousands of operations per register) that took many minutes
    with no budget.  With a clock, the report stops at ``timeout_s`` and says so."""
    history = _rolled_back(400)
    reads = 0

    def clock() -> float:  # one second per look: the budget is spent after 50 looks
        nonlocal reads
        reads += 1
        return float(reads)

    text = failure_report(ZnodeModel(), history, timeout_s=50, clock=clock)
    assert text.startswith("402 operations in the failing partition; shrinking stopped at its 50 s")
    assert reads < 120, reads
    cut = shrink_failure(ZnodeModel(), history, timeout_s=5, clock=clock)
    assert not cut.complete
    assert check(ZnodeModel(), cut.ops).verdict is Verdict.NOT_LINEARIZABLE
    # Without a clock there is no budget: a minimal failing part.
    whole = shrink_failure(ZnodeModel(), _rolled_back(40))
    assert whole.complete and len(whole.ops) < 42
    assert check(ZnodeModel(), whole.ops).verdict is Verdict.NOT_LINEARIZABLE
    assert whole.ops == minimal_failure(ZnodeModel(), _rolled_back(40))


def _open_creates(k: int, taken: int) -> list[Operation]:
    """``k`` sequential creates that never returned, then reads that saw ``taken`` of them."""
    q = "/q"
    history = [op(c, c, None, SeqOp("create", q), UNKNOWN) for c in range(k)]
    history.append(op(100, 1000, 1001, SeqOp("children", q), frozenset(range(taken))))
    history.append(op(101, 1002, 1003, SeqOp("create", q), taken))
    history.append(op(100, 1004, 1005, SeqOp("children", q), frozenset(range(taken + 1))))
    return history


def test_interchangeable_open_ended_operations_are_not_tried_in_every_subset() -> None:
    """A long chaos campaign leaves tens of sequential creates open-ended, all pending
    together until the end: trying every subset of them that took effect (C(24, 12) here)
    made the check run out of its budget; in call order it is immediate."""
    import time

    t0 = time.monotonic()
    result = check(SeqModel(), _open_creates(24, 12), timeout_s=20, clock=time.monotonic)
    assert result.verdict is Verdict.LINEARIZABLE
    assert time.monotonic() - t0 < 5
    # Still caught: a read that no number of them taking effect explains.
    bad = _open_creates(24, 12)
    bad[-1] = replace(bad[-1], output=frozenset({*range(12), 14}))
    assert check(SeqModel(), bad, timeout_s=20, clock=time.monotonic).verdict is (
        Verdict.NOT_LINEARIZABLE
    )
    # Open-ended twins of different outputs or inputs are not merged.
    mixed = _open_creates(3, 2)
    mixed[0] = replace(mixed[0], output=0)  # this one must be the first
    assert check(SeqModel(), mixed).verdict is Verdict.LINEARIZABLE
    mixed[1] = replace(mixed[1], output=0)  # two creates named 0
    assert check(SeqModel(), mixed).verdict is Verdict.NOT_LINEARIZABLE
