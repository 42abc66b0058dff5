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
from zkquorum.sim.lincheck import Operation, Verdict, check


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


# -- the membership as an object of the history (ConfigModel) --------------------------------

A, B, C, D = ((sid, f"127.0.0.1:{sid}1:{sid}2:participant;127.0.0.1:{sid}3") for sid in range(1, 5))


def _config(version: int, *members: tuple[int, str]) -> lin.Config:
    return lin.Config(frozenset(members), version)


def _op(client: int, call: int, ret: int | None, op: lin.ConfigOp, out: object) -> Operation:
    return Operation(client, call, ret, op, out)


def _verdict(ops: list[Operation]) -> Verdict:
    return check(lin.ConfigModel(), ops, timeout_s=10).verdict


INIT = _op(-1, 0, 1, lin.ConfigOp("init"), _config(0x100000000, A, B, C))
REMOVE_C = lin.ConfigOp("reconfig", leaving=frozenset({3}))
ADD_D = lin.ConfigOp("reconfig", joining=(D,))


def test_parse_config_reads_members_and_hex_version() -> None:
    text = b"server.1=127.0.0.1:11:12:participant;127.0.0.1:13\nversion=10000002a"
    assert lin.parse_config(text) == _config(0x10000002A, A)
    assert str(lin.parse_config(text)) == "[1] v10000002a"


def test_config_history_that_is_linearizable() -> None:
    ops = [
        INIT,
        _op(100, 2, 5, REMOVE_C, _config(0x100000007, A, B)),
        # a read concurrent with the reconfig may see either config
        _op(1, 3, 4, lin.ConfigOp("read"), _config(0x100000000, A, B, C)),
        _op(2, 3, 6, lin.ConfigOp("read"), _config(0x100000007, A, B)),
        # refused: no effect
        _op(100, 7, 8, ADD_D, "NewConfigNoQuorumError"),
        _op(1, 9, 10, lin.ConfigOp("read"), _config(0x100000007, A, B)),
        # no answer: D may have joined, at a version above the last one known
        _op(100, 11, None, ADD_D, lin.UNKNOWN),
        _op(2, 12, 13, lin.ConfigOp("read"), _config(0x200000003, A, B, D)),
    ]
    assert _verdict(ops) is Verdict.LINEARIZABLE


def test_config_histories_that_are_not_linearizable() -> None:
    removed = _op(100, 2, 3, REMOVE_C, _config(0x100000007, A, B))
    cases = {
        # the answer is not the config made from the one in force
        "wrong members": [INIT, _op(100, 2, 3, REMOVE_C, _config(0x100000007, A, B, C))],
        # versions are zxids: a later config has a larger one
        "version went back": [INIT, _op(100, 2, 3, REMOVE_C, _config(0xFF, A, B))],
        # a read after the reconfig's answer sees the old config
        "stale read": [INIT, removed, _op(1, 4, 5, lin.ConfigOp("read"), INIT.output)],
        # a refused reconfig took effect
        "refused took effect": [
            INIT,
            _op(100, 2, 3, ADD_D, "NewConfigNoQuorumError"),
            _op(1, 4, 5, lin.ConfigOp("read"), _config(0x100000009, A, B, C, D)),
        ],
        # a change without an answer has a new version: not the one read before it
        "unknown kept the version": [
            INIT,
            _op(100, 2, None, ADD_D, lin.UNKNOWN),
            _op(1, 4, 5, lin.ConfigOp("read"), _config(0x100000000, A, B, C, D)),
        ],
    }
    for name, ops in cases.items():
        assert _verdict(ops) is Verdict.NOT_LINEARIZABLE, name


def test_config_corruptions_are_made_and_caught() -> None:
    ops = [
        INIT,
        _op(100, 2, 3, REMOVE_C, _config(0x100000007, A, B)),
        _op(100, 4, 5, lin.ConfigOp("reconfig", joining=(C,)), _config(0x100000009, A, B, C)),
    ]
    final = lin.Final({}, frozenset(), 6, 7, _config(0x100000009, A, B, C))
    assert lin.check_run(ops, [], [], final).violations == []
    made = lin._corrupt_config(ops, [], final)
    names = [name for name, *_ in made]
    assert names == [
        "reconfig without effect",
        "config read went back",
        "two reconfigs, one version",
    ]
    for name, bad, reads, fin in made:
        verdicts = lin.check_run(bad, reads, [], fin, report=False)
        assert verdicts.violations and not verdicts.unknown, name
