"""The checker returns the known verdict on every history with one."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.sim.histories import VECTORS, parse_jepsen, parse_kv
from zkquorum.sim.lincheck import (
    UNKNOWN,
    KvModel,
    Operation,
    RegisterModel,
    RegisterOp,
    SimZnodeModel,
    SimZnodeOp,
    Verdict,
    check,
    describe_failure,
    minimal_failure,
)

VERDICTS = json.loads((VECTORS / "verdicts.json").read_text())
TIMES: dict[str, float] = {}


@pytest.mark.parametrize("name", sorted(VERDICTS["jepsen-etcd"]))
def test_jepsen_etcd(name: str) -> None:
    history = parse_jepsen(VECTORS / "jepsen-etcd" / name)
    start = time.monotonic()
    result = check(RegisterModel(), history, timeout_s=30.0, clock=time.monotonic)
    TIMES[name] = time.monotonic() - start
    expected = Verdict.LINEARIZABLE if VERDICTS["jepsen-etcd"][name] else Verdict.NOT_LINEARIZABLE
    assert result.verdict is expected


@pytest.mark.parametrize("name", sorted(VERDICTS["kv"]))
def test_kv(name: str) -> None:
    history = parse_kv(VECTORS / "kv" / name)
    start = time.monotonic()
    result = check(KvModel(), history, timeout_s=30.0, clock=time.monotonic)
    TIMES[name] = time.monotonic() - start
    expected = Verdict.LINEARIZABLE if VERDICTS["kv"][name] else Verdict.NOT_LINEARIZABLE
    assert result.verdict is expected


def test_report_times() -> None:
    if TIMES:
        slowest = max(TIMES, key=TIMES.__getitem__)
        print(
            f"\nlincheck: {len(TIMES)} histories, median {statistics.median(TIMES.values()):.3f}s,"
            f" slowest {slowest} {TIMES[slowest]:.3f}s"
        )


def test_corrupted_read_is_caught_and_shrunk(tmp_path: Path) -> None:
    history = parse_jepsen(VECTORS / "jepsen-etcd" / "etcd_002.log")
    assert check(RegisterModel(), history).verdict is Verdict.LINEARIZABLE
    idx = next(
        i
        for i, op in enumerate(history)
        if isinstance(op.input, RegisterOp) and op.input.kind == "read" and op.output == 0
    )
    bad = list(history)
    bad[idx] = replace(history[idx], output=99)
    result = check(RegisterModel(), bad)
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    small = minimal_failure(RegisterModel(), result.failing_partition)
    assert len(small) <= 3
    text = describe_failure(RegisterModel(), small)
    (tmp_path / "failure.txt").write_text(text)
    assert "99" in text
    print("\n" + text)


def _z(client: int, call: int, ret: int | None, op: SimZnodeOp, output: object) -> Operation:
    return Operation(client, call, ret, op, output)


def test_znode_model_versions_create_set_delete() -> None:
    create = SimZnodeOp("create", "/k", b"a")
    set_any = SimZnodeOp("set", "/k", b"b")
    set_v1 = SimZnodeOp("set", "/k", b"c", 1)
    ok = [
        _z(1, 0, 1, create, "ok"),
        _z(2, 2, 3, SimZnodeOp("create", "/k", b"x"), "exists"),
        _z(1, 4, 5, set_any, ("ok", 1)),
        _z(2, 6, 7, SimZnodeOp("set", "/k", b"y", 0), "badversion"),
        _z(1, 8, 9, set_v1, ("ok", 2)),
        _z(2, 10, 11, SimZnodeOp("get", "/k"), (b"c", 2)),
        _z(1, 12, 13, SimZnodeOp("delete", "/k", version=1), "badversion"),
        _z(1, 14, 15, SimZnodeOp("delete", "/k", version=2), "ok"),
        _z(2, 16, 17, SimZnodeOp("get", "/k"), None),
        _z(2, 18, 19, SimZnodeOp("set", "/k", b"z"), "nonode"),
        _z(1, 20, 21, SimZnodeOp("create", "/k", b"d"), "ok"),
        _z(2, 22, 23, SimZnodeOp("get", "/k"), (b"d", 0)),
    ]
    assert check(SimZnodeModel(), ok).verdict is Verdict.LINEARIZABLE
    stale = [*ok, _z(3, 24, 25, SimZnodeOp("get", "/k"), (b"c", 2))]
    result = check(SimZnodeModel(), stale)
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    assert "get(/k) -> (b'c', 2)" in describe_failure(SimZnodeModel(), result.failing_partition)
    wrong_version = [*ok[:3], _z(3, 24, 25, SimZnodeOp("set", "/k", b"q"), ("ok", 1))]
    assert check(SimZnodeModel(), wrong_version).verdict is Verdict.NOT_LINEARIZABLE


def test_znode_model_open_and_failed_writes() -> None:
    open_create = _z(1, 0, None, SimZnodeOp("create", "/k", b"a"), UNKNOWN)
    seen = _z(2, 5, 6, SimZnodeOp("get", "/k"), (b"a", 0))
    not_seen = _z(2, 1, 2, SimZnodeOp("get", "/k"), None)
    assert check(SimZnodeModel(), [open_create, not_seen, seen]).verdict is Verdict.LINEARIZABLE
    moved = _z(1, 0, 1, SimZnodeOp("create", "/k", b"a"), ("err", -118))
    assert check(SimZnodeModel(), [moved, not_seen]).verdict is Verdict.LINEARIZABLE
    assert check(SimZnodeModel(), [moved, seen]).verdict is Verdict.NOT_LINEARIZABLE
    other_key = _z(3, 0, 1, SimZnodeOp("get", "/j"), (b"a", 0))
    assert check(SimZnodeModel(), [open_create, other_key]).verdict is Verdict.NOT_LINEARIZABLE
