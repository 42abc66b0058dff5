"""Failure detection and failover between ``zkquorum run`` processes on loopback.

tickTime is 100 ms, so syncLimit (5) x tickTime = 500 ms: a follower that hears nothing
from its leader for 500 ms gives it up.  Times come from the peers' ``--events`` records
(wall clock, the same clock as the test's).  Every peer's resident memory is checked
against 40 MiB, and the figures are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from tests.peer.cluster import Ensemble, wait_for

TICK_S = 0.1
SYNC_LIMIT = 5
FAST = {
    "tickTime": str(int(TICK_S * 1000)),
    "initLimit": "20",
    "syncLimit": str(SYNC_LIMIT),
    "4lw.commands.whitelist": "*",
}
# A follower's read timeout is syncLimit x tickTime after the last packet (a PING comes
# every tickTime / 2); the margin covers scheduling on a loaded 2-core machine.
DETECTION_LIMIT_S = SYNC_LIMIT * TICK_S + 0.4
RSS_LIMIT_KIB = 40 * 1024


def first_event(
    ens: Ensemble, sid: int, kind: str, since: float, **match: Any
) -> dict[str, Any] | None:
    for rec in ens.py(sid).events(kind, since=since):
        if all(rec.get(k) == v for k, v in match.items()):
            return rec
    return None


def leader_established(
    ens: Ensemble, sids: Sequence[int], since: float, above: int, timeout: float = 20
) -> tuple[int, dict[str, Any]]:
    """The sid and event of the first LEADING establishment with an epoch > ``above``."""

    def found() -> tuple[int, dict[str, Any]] | None:
        ens.check_alive()
        for sid in sids:
            for rec in ens.py(sid).events("established", since=since):
                if rec["state"] == "LEADING" and rec["epoch"] > above:
                    return sid, rec
        return None

    return wait_for(found, timeout=timeout, what=f"a leader with an epoch above {above}")


def check_rss(ens: Ensemble, label: str) -> dict[int, int]:
    rss = {sid: ens.py(sid).rss_kib() for sid in ens.servers if ens.servers[sid].running()}
    print(f"\nRSS KiB {label}: {rss}")
    for sid, kib in rss.items():
        assert kib is not None and kib < RSS_LIMIT_KIB, f"peer {sid}: {kib} KiB"
    return {sid: kib for sid, kib in rss.items() if kib is not None}


@pytest.mark.parametrize("n", [3, 5, 7])
def test_failover_after_sigkill_and_sigstop(ensembles: Callable[..., Ensemble], n: int) -> None:
    sids = list(range(1, n + 1))
    ens = ensembles(py_sids=sids, settings=FAST)
    t_start = time.time()
    leader = ens.wait_for_leader(timeout=30)
    modes = ens.modes()
    assert sorted(m or "" for m in modes.values()) == sorted(["leader"] + ["follower"] * (n - 1))
    assert ens.srvr_epoch(leader) == 1
    _, est = leader_established(ens, [leader], t_start, above=0)
    wait_for(
        lambda: all(ens.py(s).epoch_files() == (1, 1) for s in sids),
        timeout=10,
        what="acceptedEpoch = currentEpoch = 1 everywhere",
    )
    check_rss(ens, f"N={n} established")

    # SIGKILL of the leader: the others see the connection close at once.
    t_kill = time.time()
    ens.servers[leader].kill()
    survivors = [s for s in sids if s != leader]
    second, est = leader_established(ens, survivors, t_kill, above=1)
    assert est["epoch"] == 2
    assert ens.wait_for_leader(survivors, timeout=20) == second
    assert ens.srvr_epoch(second) == 2
    print(f"N={n} SIGKILL -> new leader {second} established after {est['t'] - t_kill:.3f} s")

    # The killed peer restarts with its epoch files as they were and rejoins as a follower.
    assert ens.py(leader).epoch_files() == (1, 1)
    ens.start([leader])
    wait_for(lambda: ens.servers[leader].mode() == "follower", timeout=20, what="rejoin")
    assert ens.py(leader).epoch_files() == (2, 2)
    assert ens.wait_for_leader(timeout=20) == second

    # SIGSTOP of the leader: only silence tells; the followers give up within syncLimit
    # ticks, then elect a new leader among themselves.
    rest = [s for s in sids if s != second]
    t_stop = time.time()
    ens.py(second).pause()
    try:
        third, est = leader_established(ens, rest, t_stop, above=2)
        assert est["epoch"] == 3
        detections = {}
        for sid in rest:
            # A quorum of them established the new leader; the others may still be
            # waiting out their own read timeout (on a loaded machine, a moment later).
            rec = wait_for(
                lambda sid=sid: first_event(ens, sid, "phase-over", t_stop, state="FOLLOWING"),
                timeout=DETECTION_LIMIT_S + 10,
                what=f"follower {sid} to give up on the stopped leader",
            )
            assert rec is not None, ens.py(sid).log()
            assert rec["reason"] == "Read timed out"
            detections[sid] = rec["t"] - t_stop
        assert max(detections.values()) <= DETECTION_LIMIT_S, detections
        print(
            f"N={n} SIGSTOP -> detected after {min(detections.values()):.3f}-"
            f"{max(detections.values()):.3f} s, new leader {third} established after "
            f"{est['t'] - t_stop:.3f} s"
        )
        assert ens.wait_for_leader(rest, timeout=20) == third
    finally:
        ens.py(second).resume()

    # SIGCONT: the old leader finds itself alone, gives up, and follows the new leader.
    wait_for(
        lambda: ens.servers[second].mode() == "follower", timeout=20, what="old leader follows"
    )
    gave_up = first_event(ens, second, "phase-over", t_stop, state="LEADING")
    assert gave_up is not None
    assert gave_up["reason"].startswith("Not sufficient followers synced"), gave_up
    assert ens.wait_for_leader(timeout=20) == third
    assert ens.py(second).epoch_files() == (3, 3)
    check_rss(ens, f"N={n} after failovers")


def test_losing_quorum_leader_steps_down_and_an_observer_never_counts(
    ensembles: Callable[..., Ensemble],
) -> None:
    ens = ensembles(py_sids=[1, 2, 3, 9], observers=[9], settings=FAST)
    leader = ens.wait_for_leader([1, 2, 3], timeout=30)  # 9 is the largest, but observes
    assert leader in (1, 2, 3)
    wait_for(lambda: ens.servers[9].mode() == "observer", timeout=20, what="observer mode")
    assert ens.py(9).epoch_files() == (1, 1)  # synced with the leader's epoch, no vote in it
    check_rss(ens, "with an observer")

    # Both followers die: the leader still has its observer, which never makes a quorum.
    followers = [s for s in (1, 2, 3) if s != leader]
    t_kill = time.time()
    for sid in followers:
        ens.servers[sid].kill()
    rec = wait_for(
        lambda: first_event(ens, leader, "phase-over", t_kill, state="LEADING"),
        timeout=10,
        what="the leader to step down",
    )
    # Only the leader itself is counted: the observer, still connected, is not a voter.
    assert (
        rec["reason"] == f"Not sufficient followers synced, only synced with sids: [ [{leader}] ]"
    )
    # The synced check runs once per tick: within two ticks of the connections closing.
    assert rec["t"] - t_kill <= 2 * TICK_S + 0.4, rec
    wait_for(lambda: ens.servers[leader].mode() != "leader", timeout=5, what="srvr drops it")
    wait_for(lambda: ens.servers[9].mode() is None, timeout=5, what="observer stops serving")
    assert ens.servers[leader].mode() is None and ens.servers[leader].running()

    # One follower back: a quorum again (2 of 3), the observer follows the new epoch.
    ens.start(followers[:1])
    second = ens.wait_for_leader([leader, followers[0]], timeout=20)
    wait_for(lambda: ens.servers[9].mode() == "observer", timeout=20, what="observer again")
    assert ens.srvr_epoch(second) == 2
    assert ens.py(9).epoch_files() == (2, 2)


def test_restarted_ensemble_continues_from_its_epoch_files(
    ensembles: Callable[..., Ensemble],
) -> None:
    sids = [1, 2, 3]
    ens = ensembles(py_sids=sids, settings=FAST)
    first = ens.wait_for_leader(timeout=30)
    t_kill = time.time()
    ens.servers[first].kill()
    second, _ = leader_established(ens, [s for s in sids if s != first], t_kill, above=1)
    ens.start([first])
    assert ens.wait_for_leader(timeout=20) == second
    wait_for(
        lambda: all(ens.py(s).epoch_files() == (2, 2) for s in sids), timeout=10, what="epoch 2"
    )
    # Stopped together: one at a time, the last two could elect each other (epoch 3)
    # between the stops.  Paused first, each gets SIGTERM while paused, then all resume.
    procs = {sid: ens.servers[sid].proc for sid in sids}
    for sid in sids:
        ens.py(sid).pause()
    for proc in procs.values():
        assert proc is not None
        os.kill(proc.pid, signal.SIGTERM)
    for sid in sids:
        ens.py(sid).resume()
    for sid, proc in procs.items():
        assert proc is not None
        assert proc.wait(timeout=30) == 0, ens.py(sid).log()
        assert ens.py(sid).epoch_files() == (2, 2)

    # Everyone restarts: the epochs come from the files, so the next one is 3, not 1.
    t_restart = time.time()
    ens.start()
    leader = ens.wait_for_leader(timeout=30)
    _, est = leader_established(ens, [leader], t_restart, above=2)
    assert est["epoch"] == 3
    assert ens.srvr_epoch(leader) == 3
    wait_for(
        lambda: all(ens.py(s).epoch_files() == (3, 3) for s in sids), timeout=10, what="epoch 3"
    )
    for sid in sids:
        assert "not found! Creating" not in ens.py(sid).log().split("shutting down")[-1]
