"""Staggered multi-address connects, as a scenario table on a virtual clock (trio style).

Each scenario maps an address to ``(seconds, outcome)``: the fake attempt to that address
takes that long and then succeeds, is refused, or times out.  We check which address won,
when every attempt started, when the call returned, and which attempts were cancelled or
closed.  The virtual clock makes every figure exact.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from tests.runtime.vclock import run_virtual
from zkquorum.runtime.happy_eyeballs import AllAttemptsFailed, happy_eyeballs

DELAY = 0.25


@dataclass
class Scenario:
    name: str
    table: dict[str, tuple[float, str]]
    winner: str | None  # None: every attempt fails
    starts: dict[str, float]
    end: float
    cancelled: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    errors: tuple[str, ...] = field(default=())


SCENARIOS = [
    Scenario("one address, success", {"a": (0.1, "ok")}, "a", {"a": 0.0}, 0.1),
    Scenario(
        "one address, refused", {"a": (0.01, "refused")}, None, {"a": 0.0}, 0.01, errors=("a",)
    ),
    Scenario(
        "first refused at once: next starts without waiting",
        {"a": (0.1, "refused"), "b": (0.1, "ok")},
        "b",
        {"a": 0.0, "b": 0.1},
        0.2,
    ),
    Scenario(
        "first blackholed: next starts after the delay, first is cancelled",
        {"a": (5.0, "timeout"), "b": (0.1, "ok")},
        "b",
        {"a": 0.0, "b": 0.25},
        0.35,
        cancelled=("a",),
    ),
    Scenario(
        "first slow but answers before the second",
        {"a": (0.3, "ok"), "b": (0.1, "ok")},
        "a",
        {"a": 0.0, "b": 0.25},
        0.3,
        cancelled=("b",),
    ),
    Scenario(
        "second overtakes the slow first",
        {"a": (0.4, "ok"), "b": (0.05, "ok")},
        "b",
        {"a": 0.0, "b": 0.25},
        0.3,
        cancelled=("a",),
    ),
    Scenario(
        "two dead, third answers",
        {"a": (5.0, "timeout"), "b": (5.0, "timeout"), "c": (0.1, "ok")},
        "c",
        {"a": 0.0, "b": 0.25, "c": 0.5},
        0.6,
        cancelled=("a", "b"),
    ),
    Scenario(
        "all fail: the call ends with the last failure",
        {"a": (5.0, "timeout"), "b": (0.01, "refused")},
        None,
        {"a": 0.0, "b": 0.25},
        5.0,
        errors=("b", "a"),
    ),
    Scenario(
        "tie: the earlier address wins, the later connection is closed",
        {"a": (0.5, "ok"), "b": (0.25, "ok")},
        "a",
        {"a": 0.0, "b": 0.25},
        0.5,
        closed=("b",),
    ),
    Scenario("no address", {}, None, {}, 0.0),
]


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(sc: Scenario) -> None:
    starts: dict[str, float] = {}
    cancelled: list[str] = []
    closed: list[str] = []

    async def attempt(addr: str) -> str:
        loop = asyncio.get_running_loop()
        starts[addr] = loop.time()
        seconds, outcome = sc.table[addr]
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            cancelled.append(addr)
            raise
        if outcome == "refused":
            raise ConnectionRefusedError(111, "Connection refused")
        if outcome == "timeout":
            raise TimeoutError()
        return f"conn-{addr}"

    async def main() -> tuple[str | None, float, tuple[str, ...]]:
        loop = asyncio.get_running_loop()
        try:
            addr, conn = await happy_eyeballs(
                list(sc.table), attempt, delay=DELAY, close=lambda c: closed.append(c[5:])
            )
        except AllAttemptsFailed as exc:
            return None, loop.time(), tuple(a for a, _ in exc.errors)
        assert conn == f"conn-{addr}"
        return addr, loop.time(), ()

    winner, end, errors = run_virtual(main())
    assert winner == sc.winner
    assert starts == pytest.approx(sc.starts)
    assert end == pytest.approx(sc.end)
    assert tuple(cancelled) == sc.cancelled
    assert tuple(closed) == sc.closed
    assert errors == sc.errors


def test_error_message_names_every_address() -> None:
    async def attempt(addr: str) -> str:
        if addr == "x":
            raise TimeoutError()
        raise ConnectionRefusedError(111, "Connection refused")

    async def main() -> str:
        try:
            await happy_eyeballs(["x", "y"], attempt, delay=DELAY)
        except AllAttemptsFailed as exc:
            return str(exc)
        raise AssertionError("no error")

    assert run_virtual(main()) == "x: timed out; y: Connection refused"


def test_outer_cancel_cancels_attempts_and_closes_late_successes() -> None:
    cancelled: list[str] = []

    async def attempt(addr: str) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(addr)
            raise
        return addr

    async def main() -> None:
        task = asyncio.ensure_future(happy_eyeballs(["a", "b"], attempt, delay=DELAY))
        await asyncio.sleep(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run_virtual(main())
    assert sorted(cancelled) == ["a", "b"]
