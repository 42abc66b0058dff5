"""Linearizability of real zkquorum processes under faults, seen by kazoo clients.

An all-zkquorum ensemble (:class:`~tests.chaos.harness.ChaosCluster`: processes, every
peer link through the fault proxy, clients straight to each peer's clientPort) serves
several kazoo clients in threads (:mod:`tests.chaos.lin`: compare-and-set loops on
versioned registers, sequential creates, sync + read).  Meanwhile a seeded schedule
(:mod:`tests.chaos.schedule`) runs rounds of SIGKILL + restart, SIGSTOP + SIGCONT (of the
leader or a follower) and link faults; after each round heals, every client must be
answered again within ``RECOVERY_BOUND_S`` (the longest such time is reported).  Then
the recorded history must be linearizable, no acknowledged write lost, no session's
reads gone back; and the same checks must catch corruptions of that very history.

    ZKQUORUM_LIN_SECONDS=600 ZKQUORUM_LIN_SEED=7 \\
        .venv/bin/python -m pytest tests/chaos/test_linearizable.py -q -s

``ZKQUORUM_LIN_SECONDS`` is the fault time per ensemble (default: short, for CI); without
``ZKQUORUM_LIN_SEED`` each run draws a seed.  A failure prints the seed and the command
that replays it.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.chaos import lin
from tests.chaos.harness import ChaosCluster, start_fault
from tests.chaos.schedule import Fault, make_round
from tests.interop.zkserver import wait_for
from zkquorum.sim.lincheck import OK, Operation, ZnodeOp

pytest.importorskip("kazoo.client")

RECOVERY_BOUND_S = 30.0
"""After the last fault of a round heals, every client is answered within this bound."""
KEYS = 3

CASES = {
    "3p": ([1, 2, 3], 4, 6.0),
    "5p": ([1, 2, 3, 4, 5], 5, 6.0),
}
"""participants, clients, default fault seconds."""


def _seed() -> int:
    env = os.environ.get("ZKQUORUM_LIN_SEED")
    return int(env) if env else random.SystemRandom().randrange(1, 2**31)


def _seconds(default: float) -> float:
    env = os.environ.get("ZKQUORUM_LIN_SECONDS")
    return float(env) if env else default


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[[list[int]], ChaosCluster]]:
    made: list[ChaosCluster] = []

    def make(participants: list[int]) -> ChaosCluster:
        c = ChaosCluster(tmp_path / "chaos", participants)
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            c.stop()


def _hosts(c: ChaosCluster, first: int) -> str:
    servers = list(c.servers.values())
    order = servers[first % len(servers) :] + servers[: first % len(servers)]
    return ",".join(f"{s.host}:{s.client_port}" for s in order)


class _Faults:
    """Applies the seeded rounds; keeps the books."""

    def __init__(self, c: ChaosCluster, seed: int) -> None:
        self.c = c
        self.seed = seed
        self.leader: int | None = None
        self.injected: collections.Counter[str] = collections.Counter()
        self.log: list[str] = []

    def apply(self, f: Fault, busy: set[int]) -> Callable[[], None] | None:
        """Start ``f``; return what heals it (None: skipped, its target was taken)."""
        heal = start_fault(self.c, f, self.leader, busy)
        if heal is not None:
            self.injected[f.kind] += 1
        return heal

    def round(self, index: int) -> None:
        """Inject round ``index`` and heal it (the schedule's own clock times both)."""
        faults = sorted(make_round(self.seed, index, self.c.sids), key=lambda f: f.start)
        heals: list[tuple[float, Callable[[], None]]] = []
        busy: set[int] = set()
        t0 = time.monotonic()
        for f in faults:
            _sleep_until(t0 + f.start)
            heal = self.apply(f, busy)
            note = f"round {index}: {f.describe()} [leader was {self.leader}]"
            self.log.append(note + (" (skipped)" if heal is None else ""))
            if heal is not None:
                heals.append((t0 + f.start + f.duration, heal))
        for at, heal in sorted(heals, key=lambda h: h[0]):
            _sleep_until(at)
            heal()


def _sleep_until(at: float) -> None:
    # The schedule's own clock: faults start and heal at their planned times.
    delay = at - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _setup(c: ChaosCluster) -> list[Operation]:
    """Create the registers and the queue parent; their creates open the history."""
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=_hosts(c, 0), timeout=4.0)
    zk.start(timeout=30)
    try:
        zk.ensure_path(lin.ROOT)
        zk.create(lin.QUEUE, b"")
        ops = []
        for i in range(KEYS):
            call = time.monotonic_ns()
            zk.create(lin.key_path(i), b"init")
            ops.append(
                Operation(
                    -1, call, time.monotonic_ns(), ZnodeOp("create", lin.key_path(i), b"init"), OK
                )
            )
        return ops
    finally:
        zk.stop()
        zk.close()


def _final(c: ChaosCluster) -> lin.Final:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=_hosts(c, 0), timeout=4.0)
    zk.start(timeout=30)
    try:
        call = time.monotonic_ns()
        regs = {}
        for i in range(KEYS):
            path = lin.key_path(i)
            zk.sync(path)
            data, stat = zk.get(path)
            regs[path] = (data, stat.version)
        zk.sync(lin.QUEUE)
        children = frozenset(int(n[-10:]) for n in zk.get_children(lin.QUEUE))
        return lin.Final(regs, children, call, time.monotonic_ns())
    finally:
        zk.stop()
        zk.close()


@pytest.mark.parametrize("case", list(CASES))
def test_linearizable_under_faults(
    case: str, cluster_factory: Callable[[list[int]], ChaosCluster], tmp_path: Path
) -> None:
    participants, clients, default_seconds = CASES[case]
    seed, seconds = _seed(), _seconds(default_seconds)
    replay = (
        f"ZKQUORUM_LIN_SEED={seed} ZKQUORUM_LIN_SECONDS={seconds:g} .venv/bin/python -m "
        f"pytest 'tests/chaos/test_linearizable.py::test_linearizable_under_faults[{case}]' -q -s"
    )
    print(f"\nlinearizable {case}: seed {seed}, {seconds:g} s of faults; replay: {replay}")
    started = time.monotonic()
    c = cluster_factory(participants)
    faults = _Faults(c, seed)

    def fail(what: str) -> None:
        tail = "\n".join(faults.log[-30:])
        pytest.fail(
            f"linearizable {case} (seed {seed}): {what}\nreplay: {replay}\n"
            f"schedule so far:\n{tail}\n{c.logs()}",
            pytrace=False,
        )

    c.start()
    faults.leader, _ = c.wait_settled(60)
    setup_ops = _setup(c)
    book = lin.Book(ops=list(setup_ops))
    stop = threading.Event()
    workers = [lin.Worker(i, _hosts(c, i), KEYS, seed, book, stop) for i in range(clients)]
    recoveries: list[float] = []
    rounds = 0
    try:
        for w in workers:
            w.zk.start(timeout=30)
        for w in workers:
            w.start()

        def all_served(since: int) -> bool:
            dead = [w.client for w in workers if not w.is_alive()]
            if dead:
                raise AssertionError(f"worker(s) {dead} stopped: {[w.failure for w in workers]}")
            with book.lock:
                return all(book.served.get(w.client, 0) > since for w in workers)

        begin = time.monotonic_ns()
        wait_for(lambda: all_served(begin), timeout=30, what="every client answered once")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            faults.round(rounds)
            rounds += 1
            healed = time.monotonic_ns()
            try:
                wait_for(
                    lambda h=healed: all_served(h),  # type: ignore[misc]
                    timeout=RECOVERY_BOUND_S,
                    what="every client answered after the heal",
                    interval=0.01,
                )
            except (TimeoutError, AssertionError) as exc:
                fail(f"round {rounds - 1}: {exc}")
            recoveries.append((time.monotonic_ns() - healed) / 1e9)
            try:
                faults.leader, _ = c.wait_settled(RECOVERY_BOUND_S)
            except (TimeoutError, AssertionError) as exc:
                fail(f"round {rounds - 1}: not settled after the heal: {exc}")
            faults.log.append(f"round {rounds - 1}: clients served in {recoveries[-1]:.2f} s")
    finally:
        stop.set()
        end = time.monotonic() + 2 * lin.OP_TIMEOUT_S + 5
        for w in workers:
            w.join(timeout=max(0.0, end - time.monotonic()))
        for w in workers:
            w.zk.stop()
            w.zk.close()
    stuck = [w.client for w in workers if w.is_alive()]
    if stuck:
        fail(f"worker(s) {stuck} did not stop")
    failures = [(w.client, w.failure) for w in workers if w.failure is not None]
    if failures:
        fail(f"worker(s) raised: {failures}")

    final = _final(c)
    check_start = time.monotonic()
    verdicts = lin.check_run(book.ops, book.reads, book.acked, final)
    check_s = time.monotonic() - check_start
    if verdicts.violations:
        report = tmp_path / "violations.txt"
        report.write_text("\n\n".join(verdicts.violations))
        fail(
            f"{len(verdicts.violations)} violation(s), see {report}:\n"
            + "\n".join(verdicts.violations)[:8000]
        )

    # The same checks catch corruptions of this very history.
    caught = 0
    corruptions = lin.corrupt(book.ops, book.reads, final)
    for name, ops, reads, fin in corruptions:
        bad = lin.check_run(ops, reads, book.acked, fin)
        assert bad.violations, f"corruption {name!r} of the recorded history was not caught"
        caught += 1

    kinds = collections.Counter(type(o.input).__name__ for o in book.ops)
    print(
        f"linearizable {case}: seed {seed}: {rounds} rounds, faults {dict(faults.injected)} "
        f"(total {sum(faults.injected.values())}), restarts "
        f"{sum(s.restarts for s in c.servers.values())}; {verdicts.operations} operations "
        f"({dict(kinds)}, {verdicts.open_ended} open-ended, {len(book.acked)} acknowledged "
        f"sets, {len(book.reads)} session reads), client errors {book.errors}; "
        f"{verdicts.histories} histories checked in {check_s:.2f} s, 0 violations; "
        f"{caught}/{len(corruptions)} corruptions caught; clients served after a heal: "
        f"max {max(recoveries, default=0.0):.2f} s over {len(recoveries)} rounds; "
        f"wall {time.monotonic() - started:.1f} s"
    )
    assert rounds >= 1 and sum(faults.injected.values()) >= 1
    assert caught == len(corruptions) >= 3
    assert {"ZnodeOp", "SeqOp"} <= set(kinds)
