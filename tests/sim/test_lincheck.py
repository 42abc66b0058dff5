"""The checker returns the known verdict on every history with one."""

from __future__ import annotations

import json
import statistics
import time

import pytest

from tests.sim.histories import VECTORS, parse_jepsen, parse_kv
from zkquorum.sim.lincheck import KvModel, RegisterModel, Verdict, check

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
