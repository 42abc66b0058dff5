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
    KvModel,
    RegisterModel,
    RegisterOp,
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
