"""The bounds of :mod:`tests.chaos.lin`: what keeps a campaign from waiting forever.

No processes and no servers: a kazoo client whose ``stop`` never returns is a stand-in,
and the watchdog is made to fire on a phase that waits on an event nobody sets.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.chaos import lin


class _StuckClient:
    """A kazoo client whose ``stop`` blocks until released (as kazoo's joins can)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.closed = False

    def stop(self) -> None:
        self.release.wait(30)

    def close(self) -> None:
        self.closed = True


def test_close_client_gives_up_at_its_deadline() -> None:
    zk = _StuckClient()
    t0 = time.monotonic()
    problem = lin.close_client(zk, timeout=0.3)
    assert problem is not None and "still running after 0.3 s" in problem
    assert time.monotonic() - t0 < 5
    zk.release.set()
    ok = _StuckClient()
    ok.release.set()
    assert lin.close_client(ok, timeout=5) is None and ok.closed


def test_answer_names_the_call_without_an_answer() -> None:
    from kazoo.handlers.threading import SequentialThreadingHandler

    never = SequentialThreadingHandler().async_result()  # nobody sets it
    with pytest.raises(lin.NoAnswer, match=r"final read: sync /lin/k0: no answer in 0.2 s"):
        lin.answer(never, "final read: sync /lin/k0", timeout=0.2)


def test_watchdog_names_the_phase_that_outlasts_its_bound(tmp_path: Path) -> None:
    dog = lin.Watchdog(tmp_path / "stacks.txt")
    never = threading.Event()
    try:
        with dog.phase("whole campaign", 60), dog.phase("final read", 0.3):
            t0 = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                never.wait(20)  # the watchdog interrupts this wait
            assert time.monotonic() - t0 < 10
    finally:
        dog.close()
    assert dog.fired == "'final read' still running after its bound of 0.3 s"
    stacks = (tmp_path / "stacks.txt").read_text()
    assert stacks.startswith("watchdog: 'final read' still running")
    assert "test_watchdog_names_the_phase_that_outlasts_its_bound" in stacks


def test_watchdog_quiet_when_phases_end_in_time(tmp_path: Path) -> None:
    dog = lin.Watchdog(tmp_path / "stacks.txt")
    try:
        for i in range(3):
            with dog.phase(f"round {i}", 5):
                pass
    finally:
        dog.close()
    assert dog.fired is None and not (tmp_path / "stacks.txt").exists()
