"""Chaos with real processes on loopback (issue 9).

Peers run as processes; every peer-to-peer connection (both ports) goes through the
test's own proxy (:mod:`tests.chaos.proxy`).  A seeded schedule (:mod:`tests.chaos.
schedule`) injects rounds of SIGKILL + restart, SIGSTOP + SIGCONT, and link faults (drop,
delay, cut one direction, cut both); after each round heals, the ensemble must settle
(one established leader, every peer serving, one epoch) within ``RECOVERY_BOUND_S``.  At
the end the histories and logs are checked (:mod:`tests.chaos.checker`), and file
descriptors and asyncio tasks are compared with their count before the faults.

    ZKQUORUM_CHAOS_SECONDS=600 ZKQUORUM_CHAOS_SEED=42 \\
        .venv/bin/python -m pytest tests/chaos/test_chaos.py -q -s

``ZKQUORUM_CHAOS_SECONDS`` is the fault time per ensemble (default 40: about two
minutes for both ensembles); without ``ZKQUORUM_CHAOS_SEED`` each run draws a seed.  A
violation prints the seed and the command that replays it.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.chaos.checker import check_history, check_logs, read_history
from tests.chaos.harness import ChaosCluster, start_fault
from tests.chaos.schedule import Fault, make_round
from tests.interop.zkserver import wait_for

RECOVERY_BOUND_S = 30.0
"""After the last fault of a round heals, the ensemble settles within this bound."""
FD_SLACK = 4
TASK_SLACK = 6
DEFAULT_SECONDS = 40.0

CASES = {
    "5p": ([1, 2, 3, 4, 5], []),
    "7p2o": ([1, 2, 3, 4, 5, 6, 7], [8, 9]),
}

# ERROR lines a peer may log legitimately under faults: none so far.
ALLOWED_ERRORS: tuple[str, ...] = ()


def _seconds() -> float:
    return float(os.environ.get("ZKQUORUM_CHAOS_SECONDS", DEFAULT_SECONDS))


def _seed() -> int:
    env = os.environ.get("ZKQUORUM_CHAOS_SEED")
    return int(env) if env else random.SystemRandom().randrange(1, 2**31)


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., ChaosCluster]]:
    made: list[ChaosCluster] = []

    def make(participants: list[int], observers: list[int]) -> ChaosCluster:
        c = ChaosCluster(tmp_path / "chaos", participants, observers)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop()


class _Run:
    """One chaos run: applies faults, keeps the books."""

    def __init__(self, cluster: ChaosCluster, seed: int, case: str, seconds: float) -> None:
        self.c = cluster
        self.seed = seed
        self.case = case
        self.seconds = seconds
        self.injected: collections.Counter[str] = collections.Counter()
        self.recoveries: list[float] = []
        # rounds whose faults made a new leader or epoch: first fault -> settled again
        self.failovers: list[float] = []
        self.epoch: int | None = None
        self.log: list[str] = []
        self.leader: int | None = None

    def replay(self) -> str:
        return (
            f"ZKQUORUM_CHAOS_SEED={self.seed} ZKQUORUM_CHAOS_SECONDS={self.seconds:g} "
            f".venv/bin/python -m pytest 'tests/chaos/test_chaos.py::test_chaos[{self.case}]' -q"
        )

    def fail(self, what: str) -> None:
        tail = "\n".join(self.log[-30:])
        pytest.fail(
            f"chaos violation (seed {self.seed}, case {self.case}): {what}\n"
            f"replay: {self.replay()}\nschedule so far:\n{tail}\n{self.c.logs()}",
            pytrace=False,
        )

    def apply(self, f: Fault, busy: set[int]) -> Callable[[], None] | None:
        """Start ``f``; return what heals it (None: skipped, its target was taken)."""
        heal = start_fault(self.c, f, self.leader, busy)
        if heal is not None:
            self.injected[f.kind] += 1
        return heal

    def round(self, index: int) -> None:
        faults = make_round(self.seed, index, self.c.sids)
        timeline: list[tuple[float, int, Fault]] = []
        for i, f in enumerate(faults):
            timeline.append((f.start, i, f))
        timeline.sort(key=lambda x: x[0])
        heals: list[tuple[float, Callable[[], None], str]] = []
        busy: set[int] = set()
        t0 = time.monotonic()
        for start, _i, f in timeline:
            _sleep_until(t0 + start)
            heal = self.apply(f, busy)
            note = f"round {index}: {f.describe()}"
            if heal is None:
                self.log.append(note + " (skipped: target taken)")
                continue
            self.log.append(note + f" [leader was {self.leader}]")
            heals.append((t0 + start + f.duration, heal, f.kind))
        for at, heal, _kind in sorted(heals, key=lambda h: h[0]):
            _sleep_until(at)
            heal()
        healed = time.monotonic()
        try:
            leader, epoch = self.c.wait_settled(RECOVERY_BOUND_S)
        except (TimeoutError, AssertionError) as exc:
            self.fail(f"round {index}: not settled {RECOVERY_BOUND_S} s after the heal: {exc}")
        took = time.monotonic() - healed
        self.recoveries.append(took)
        if self.epoch is not None and epoch < self.epoch:
            self.fail(f"round {index}: the settled epoch went down: {self.epoch} -> {epoch}")
        if epoch != self.epoch and heals:
            self.failovers.append(time.monotonic() - t0 - min(f.start for f in faults))
        self.log.append(f"round {index}: settled in {took:.2f} s: leader {leader}, epoch {epoch}")
        self.leader, self.epoch = leader, epoch


def _sleep_until(at: float) -> None:
    # The schedule's own clock: faults start and heal at their planned times.
    delay = at - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _resources(c: ChaosCluster, role_of: dict[int, str]) -> dict[int, tuple[str, int, int]]:
    out = {}
    for sid, s in c.servers.items():
        fds = s.fd_count()
        tasks = s.task_count()["tasks"]
        assert fds is not None and isinstance(tasks, int)
        out[sid] = (role_of[sid], fds, tasks)
    return out


def _roles(c: ChaosCluster) -> dict[int, str]:
    roles = {}
    for sid, s in c.servers.items():
        info = s.srvr() or {}
        roles[sid] = info.get("Mode", "?")
    return roles


@pytest.mark.parametrize("case", list(CASES))
def test_chaos(case: str, cluster_factory: Callable[..., ChaosCluster]) -> None:
    participants, observers = CASES[case]
    seed, seconds = _seed(), _seconds()
    c = cluster_factory(participants, observers)
    run = _Run(c, seed, case, seconds)
    print(f"\nchaos {case}: seed {seed}, {seconds:g} s of faults; replay: {run.replay()}")
    c.start()
    try:
        run.leader, run.epoch = c.wait_settled(60)
    except (TimeoutError, AssertionError) as exc:
        run.fail(f"the ensemble never settled before the faults: {exc}")
    before = _resources(c, _roles(c))

    deadline = time.monotonic() + seconds
    index = 0
    while time.monotonic() < deadline:
        run.round(index)
        index += 1

    # After the last heal: the ensemble is settled (checked by the last round); no
    # descriptors or tasks leaked.  Compared per role with the most any peer of that role
    # used before the faults.
    roles = _roles(c)
    base: dict[str, tuple[int, int]] = {}
    for role, fds, tasks in before.values():
        f0, t0 = base.get(role, (0, 0))
        base[role] = (max(f0, fds), max(t0, tasks))

    def no_leak() -> dict[int, tuple[str, int, int]] | None:
        now = _resources(c, roles)
        for _sid, (role, fds, tasks) in now.items():
            f0, t0 = base.get(role, (10**9, 10**9))
            if fds > f0 + FD_SLACK or tasks > t0 + TASK_SLACK:
                return None
        return now

    try:
        after = wait_for(no_leak, timeout=15, what="fd and task counts back to the baseline")
    except TimeoutError:
        run.fail(
            f"leak: before {before}, now {_resources(c, roles)} (slack fd {FD_SLACK}, "
            f"tasks {TASK_SLACK})"
        )

    codes = {sid: s.stop() for sid, s in c.servers.items()}
    crashed = {sid: code for sid, code in codes.items() if code != 0}
    if crashed:
        run.fail(f"exit codes after SIGTERM: {crashed} (0 expected)")
    problems = check_logs({sid: s.log() for sid, s in c.servers.items()}, ALLOWED_ERRORS)
    if problems:
        run.fail("crash signs in logs:\n" + "\n".join(problems[:10]))
    history = read_history({sid: s.events_path for sid, s in c.servers.items()})
    report = check_history(history)
    if report.violations:
        run.fail("history:\n" + "\n".join(report.violations[:20]))

    rec, fo = run.recoveries, run.failovers or [0.0]
    print(
        f"chaos {case}: seed {seed}: {index} rounds, faults {dict(run.injected)} "
        f"(total {sum(run.injected.values())}), restarts "
        f"{sum(s.restarts for s in c.servers.values())}; invariant checks passed: "
        f"{report.checks} over {report.establishments} establishments, "
        f"{report.leaderships} leaderships; settle after the last heal: median "
        f"{statistics.median(rec):.2f} s, max {max(rec):.2f} s over {len(rec)} rounds; "
        f"{len(run.failovers)} rounds made a new epoch: first fault -> settled median "
        f"{statistics.median(fo):.2f} s, max {max(fo):.2f} s; "
        f"fds/tasks before {before} after {after}; proxy {c.proxy.stats}"
    )
    assert index >= 1 and sum(run.injected.values()) >= 1
    assert max(rec) <= RECOVERY_BOUND_S
    assert signal.SIGKILL  # (kills are restarts; their -9 status is not a crash)
