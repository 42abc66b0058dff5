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

The ``-reconfig`` cases run with dynamic reconfiguration on (one config shared by every
peer, peer links still through the fault proxy) and, during the same fault window, change
the membership (:mod:`tests.chaos.membership`): remove a voter (the leader too), add a
removed server back (still running as a non-voting follower, or restarted with a zoo.cfg
naming the members plus itself), add a spare that was in no config.  The reconfig calls
and reads of /zookeeper/config are part of the history (the membership is one more
object); the fault window is extended (up to ``COVERAGE_BOUND_S``) until a removal of
the leader, a re-add and a spare's add have taken effect.  At the end every live server
must show one config (``conf``, and the dynamic file its zoo.cfg points at), the one
/zookeeper/config holds on each of them (read there, and by the final read).

    ZKQUORUM_LIN_SECONDS=600 ZKQUORUM_LIN_SEED=7 \\
        .venv/bin/python -m pytest tests/chaos/test_linearizable.py -q -s

``ZKQUORUM_LIN_SECONDS`` is the fault time per ensemble (default: short, for CI); without
``ZKQUORUM_LIN_SEED`` each run draws a seed.  A failure prints the seed and the command
that replays it.

Nothing waits without a deadline: every kazoo call has one (a worker's call without an
answer is recorded open-ended; in the setup and the final read it fails the test, naming
the call), kazoo clients are stopped in a helper thread with one, and a watchdog names
the phase that outlasted its bound (setup, a fault round, stopping the workers, the
final read, the checks), writes every thread's stack to ``stacks.txt`` and fails the test.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pickle
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import lin
from tests.chaos.harness import ChaosCluster, start_fault
from tests.chaos.membership import ADMIN_CLIENT, Reconfigurer, agreed_config, read_each
from tests.chaos.schedule import Fault, make_round
from tests.interop.zkserver import wait_for
from zkquorum.sim.lincheck import OK, Operation, ZnodeOp

pytest.importorskip("kazoo.client")

RECOVERY_BOUND_S = 30.0
"""After the last fault of a round heals, every client is answered within this bound."""
KEYS = 3
FINAL_BOUND_S = 90.0
"""The final reads (fresh sessions, retried after a connection loss) end within this."""
CHECK_BUDGET_S = 60.0
"""The checker's budget per search (at least the fault time of the campaign)."""
CORRUPTION_BUDGET_S = 30.0
"""The budget per search when checking a corrupted copy of the history."""

COVERAGE_BOUND_S = 90.0
"""A reconfig campaign's fault window is extended until its membership changes are
covered (see the module docstring), for at most this long."""
AGREEMENT_BOUND_S = 30.0
"""At the end, every live server shows the same config within this bound."""


@dataclasses.dataclass(frozen=True)
class Case:
    participants: list[int]
    clients: int
    seconds: float
    """Default fault seconds (``ZKQUORUM_LIN_SECONDS`` overrides)."""
    spares: list[int] = dataclasses.field(default_factory=list)
    reconfig: bool = False


CASES = {
    "3p": Case([1, 2, 3], 4, 6.0),
    "5p": Case([1, 2, 3, 4, 5], 5, 6.0),
    "3p-reconfig": Case([1, 2, 3], 4, 6.0, spares=[4], reconfig=True),
    "5p-reconfig": Case([1, 2, 3, 4, 5], 5, 6.0, spares=[6], reconfig=True),
}


def _seed() -> int:
    env = os.environ.get("ZKQUORUM_LIN_SEED")
    return int(env) if env else random.SystemRandom().randrange(1, 2**31)


def _seconds(default: float) -> float:
    env = os.environ.get("ZKQUORUM_LIN_SECONDS")
    return float(env) if env else default


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[[Case], ChaosCluster]]:
    made: list[ChaosCluster] = []

    def make(case: Case) -> ChaosCluster:
        c = ChaosCluster(
            tmp_path / "chaos", case.participants, reconfig=case.reconfig, spares=case.spares
        )
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


def _client(c: ChaosCluster, what: str, timeout: float = 30.0) -> Any:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=_hosts(c, 0), timeout=4.0)
    try:
        zk.start(timeout=timeout)
    except Exception as exc:
        raise lin.NoAnswer(
            f"{what}: no session within {timeout:g} s ({type(exc).__name__})"
        ) from exc
    return zk


def _setup(c: ChaosCluster) -> list[Operation]:
    """Create the registers and the queue parent; their creates open the history (and,
    with reconfig, a read of the config)."""
    zk = _client(c, "setup")
    try:
        lin.answer(zk.create_async(lin.ROOT, b""), f"setup: create {lin.ROOT}")
        lin.answer(zk.create_async(lin.QUEUE, b""), f"setup: create {lin.QUEUE}")
        ops = []
        if c.reconfig:
            call = time.monotonic_ns()
            lin.answer(zk.sync_async(lin.CONFIG), f"setup: sync {lin.CONFIG}")
            data, _ = lin.answer(zk.get_async(lin.CONFIG), f"setup: get {lin.CONFIG}")
            ret = time.monotonic_ns()
            ops.append(Operation(-1, call, ret, lin.ConfigOp("init"), lin.parse_config(data)))
        for i in range(KEYS):
            path = lin.key_path(i)
            call = time.monotonic_ns()
            lin.answer(zk.create_async(path, b"init"), f"setup: create {path}")
            ret = time.monotonic_ns()
            ops.append(Operation(-1, call, ret, ZnodeOp("create", path, b"init"), OK))
        return ops
    finally:
        problem = lin.close_client(zk)
        if problem:
            raise lin.NoAnswer(f"setup: closing its client: {problem}")


def _final(c: ChaosCluster, within_s: float = FINAL_BOUND_S) -> lin.Final:
    """Sync, then read every register and the queue, from a fresh session.

    The reads are idempotent: after a connection loss or a call without an answer they are
    made again (the interval of the final reads just grows), until ``within_s``.
    """
    from kazoo.exceptions import ConnectionLoss, SessionExpiredError

    deadline = time.monotonic() + within_s

    def left(most: float) -> float:
        return max(0.5, min(most, deadline - time.monotonic()))

    call = time.monotonic_ns()
    errors: list[str] = []
    while time.monotonic() < deadline:
        try:
            zk = _client(c, "final read", left(30))
        except lin.NoAnswer as exc:
            errors.append(str(exc))
            continue
        try:
            regs = {}
            for i in range(KEYS):
                path = lin.key_path(i)
                lin.answer(zk.sync_async(path), f"final read: sync {path}", left(lin.OP_TIMEOUT_S))
                data, stat = lin.answer(
                    zk.get_async(path), f"final read: get {path}", left(lin.OP_TIMEOUT_S)
                )
                regs[path] = (data, stat.version)
            lin.answer(
                zk.sync_async(lin.QUEUE), f"final read: sync {lin.QUEUE}", left(lin.OP_TIMEOUT_S)
            )
            names = lin.answer(
                zk.get_children_async(lin.QUEUE),
                f"final read: children {lin.QUEUE}",
                left(lin.OP_TIMEOUT_S),
            )
            children = frozenset(int(n[-10:]) for n in names)
            config = None
            if c.reconfig:
                lin.answer(
                    zk.sync_async(lin.CONFIG),
                    f"final read: sync {lin.CONFIG}",
                    left(lin.OP_TIMEOUT_S),
                )
                data, _ = lin.answer(
                    zk.get_async(lin.CONFIG),
                    f"final read: get {lin.CONFIG}",
                    left(lin.OP_TIMEOUT_S),
                )
                config = lin.parse_config(data)
            return lin.Final(regs, children, call, time.monotonic_ns(), config)
        except (ConnectionLoss, SessionExpiredError, lin.NoAnswer) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            problem = lin.close_client(zk, left(lin.CLOSE_TIMEOUT_S))
            if problem:
                errors.append(f"closing the client: {problem}")
    raise lin.NoAnswer(f"final read: not done within {within_s:g} s; errors: {errors[-5:]}")


@pytest.mark.parametrize("case", list(CASES))
def test_linearizable_under_faults(
    case: str, cluster_factory: Callable[[Case], ChaosCluster], tmp_path: Path
) -> None:
    spec = CASES[case]
    clients = spec.clients
    seed, seconds = _seed(), _seconds(spec.seconds)
    replay = (
        f"ZKQUORUM_LIN_SEED={seed} ZKQUORUM_LIN_SECONDS={seconds:g} .venv/bin/python -m "
        f"pytest 'tests/chaos/test_linearizable.py::test_linearizable_under_faults[{case}]' -q -s"
    )
    print(f"\nlinearizable {case}: seed {seed}, {seconds:g} s of faults; replay: {replay}")
    started = time.monotonic()
    c = cluster_factory(spec)
    faults = _Faults(c, seed)
    watchdog = lin.Watchdog(tmp_path / "stacks.txt")
    budget = max(CHECK_BUDGET_S, seconds)  # per search of the checker

    def fail(what: str) -> None:
        tail = "\n".join(faults.log[-30:])
        pytest.fail(
            f"linearizable {case} (seed {seed}): {what}\nreplay: {replay}\n"
            f"schedule so far:\n{tail}\n{c.logs()}",
            pytrace=False,
        )

    try:
        _campaign(case, c, faults, watchdog, seconds, budget, clients, fail, started, tmp_path)
    except KeyboardInterrupt:
        if watchdog.fired is None:
            raise
        fail(f"stuck: {watchdog.fired}; every thread's stack is in {watchdog.stacks}")
    except lin.NoAnswer as exc:
        fail(str(exc))
    finally:
        watchdog.close()
        (tmp_path / "schedule.txt").write_text("\n".join(faults.log) + "\n")


def _keep(tmp_path: Path, book: lin.Book, final: lin.Final) -> None:
    """The recorded history as ``history.pickle``, to check it again offline
    (``lin.check_run(ops, reads, acked, final)``)."""
    with (tmp_path / "history.pickle").open("wb") as f:
        pickle.dump((book.ops, book.reads, book.acked, final), f)


def _campaign(
    case: str,
    c: ChaosCluster,
    faults: _Faults,
    watchdog: lin.Watchdog,
    seconds: float,
    budget: float,
    clients: int,
    fail: Callable[[str], None],
    started: float,
    tmp_path: Path,
) -> None:
    seed = faults.seed
    setup_bound = 60 + 30 + 5 * lin.OP_TIMEOUT_S + lin.CLOSE_TIMEOUT_S  # their own deadlines
    with watchdog.phase("start and setup", setup_bound + 30):
        c.start()
        faults.leader, _ = c.wait_settled(60)
        setup_ops = _setup(c)
    book = lin.Book(ops=list(setup_ops))
    stop = threading.Event()
    workers = [
        lin.Worker(i, _hosts(c, i), KEYS, seed, book, stop, config_reads=c.reconfig)
        for i in range(clients)
    ]
    reconf: Reconfigurer | None = None
    if c.reconfig:
        (init,) = [o.output for o in setup_ops if isinstance(o.input, lin.ConfigOp)]
        assert isinstance(init, lin.Config)
        reconf = Reconfigurer(c, book, seed, stop, init, started, faults.log)
    recoveries: list[float] = []
    rounds = 0
    # A round: faults for at most ~5.5 s, then the recovery and settle bounds.
    round_bound = 10 + 2 * RECOVERY_BOUND_S
    try:
        with watchdog.phase("workload start", 60 + 30 * (clients + 1)):
            for w in workers:
                w.zk.start(timeout=30)
            if reconf is not None:
                reconf.zk.start(timeout=30)
            for w in workers:
                w.start()

        def all_served(since: int) -> bool:
            dead = [w.client for w in workers if not w.is_alive()]
            if dead:
                raise AssertionError(f"worker(s) {dead} stopped: {[w.failure for w in workers]}")
            with book.lock:
                return all(book.served.get(w.client, 0) > since for w in workers)

        begin = time.monotonic_ns()
        with watchdog.phase("every client answered once", 60):
            wait_for(lambda: all_served(begin), timeout=30, what="every client answered once")
        deadline = time.monotonic() + seconds
        if reconf is not None:
            reconf.start()

        def more() -> bool:
            """Another round: the fault window is not over, or (extended by at most
            COVERAGE_BOUND_S) the membership changes are not covered yet."""
            if reconf is not None and not reconf.is_alive():
                fail(f"the reconfigurer stopped: {reconf.failure!r}")
            now = time.monotonic()
            if now < deadline:
                return True
            return reconf is not None and not reconf.covered() and now < deadline + COVERAGE_BOUND_S

        while more():
            with watchdog.phase(f"fault round {rounds}", round_bound + 30):
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
                    where = "; ".join(w.describe() for w in workers)
                    fail(f"round {rounds - 1}: {exc}; workers: {where}")
                recoveries.append((time.monotonic_ns() - healed) / 1e9)
                try:
                    faults.leader, _ = c.wait_settled(RECOVERY_BOUND_S)
                except (TimeoutError, AssertionError) as exc:
                    fail(f"round {rounds - 1}: not settled after the heal: {exc}")
            faults.log.append(f"round {rounds - 1}: clients served in {recoveries[-1]:.2f} s")
    finally:
        stop.set()
        # The reconfigurer's last step: a reconfig call, then a sync and a read.
        join_s = 3 * lin.OP_TIMEOUT_S + 5
        closers = clients + 1
        with watchdog.phase("stopping the workers", join_s + closers * lin.CLOSE_TIMEOUT_S + 30):
            end = time.monotonic() + join_s
            for w in workers:
                w.join(timeout=max(0.0, end - time.monotonic()))
            stuck = [w.describe() for w in workers if w.is_alive()]
            closing = {w.client: lin.close_client(w.zk) for w in workers}
            if reconf is not None and reconf.ident is not None:
                reconf.join(timeout=max(0.0, end - time.monotonic()))
                if reconf.is_alive():
                    stuck.append(reconf.describe())
            if reconf is not None:
                closing[ADMIN_CLIENT] = lin.close_client(reconf.zk)
    if stuck:
        fail(f"worker(s) did not stop within {join_s:g} s: {stuck}")
    unclosed = {k: v for k, v in closing.items() if v}
    if unclosed:
        fail(f"client(s) did not close: {unclosed}")
    failures = [(w.client, w.failure) for w in workers if w.failure is not None]
    if reconf is not None and reconf.failure is not None:
        failures.append((ADMIN_CLIENT, reconf.failure))
    if failures:
        fail(f"worker(s) raised: {failures}")

    agreed: lin.Config | None = None
    if reconf is not None:
        if not reconf.covered():
            fail(
                f"membership changes not covered within {COVERAGE_BOUND_S:g} s after the "
                f"fault window (a leader removed, a server re-added, a spare added): "
                f"{reconf.summary()}"
            )
        with watchdog.phase("agreeing on the config", RECOVERY_BOUND_S + AGREEMENT_BOUND_S + 60):
            try:
                faults.leader, _ = c.wait_settled(RECOVERY_BOUND_S)
                agreed = agreed_config(c, AGREEMENT_BOUND_S)
            except (TimeoutError, AssertionError) as exc:
                fail(f"after the campaign: {exc}")
        with watchdog.phase("reading the config on every server", len(c.sids) * 120 + 60):
            each = read_each(c, book)
        differ = {sid: str(v) for sid, v in each.items() if v != agreed}
        if differ:
            fail(f"{lin.CONFIG} differs from the config {agreed} the servers show: {differ}")
    with watchdog.phase("final read", FINAL_BOUND_S + 60):
        final = _final(c)
    if agreed is not None and final.config != agreed:
        fail(f"the final read of {lin.CONFIG} gave {final.config}, the servers show {agreed}")
    check_start = time.monotonic()
    with watchdog.phase("checking the history", 4 * budget + 60):
        verdicts = lin.check_run(book.ops, book.reads, book.acked, final, timeout_s=budget)
    check_s = time.monotonic() - check_start
    if verdicts.violations:
        report = tmp_path / "violations.txt"
        report.write_text("\n\n".join(verdicts.violations))
        history = tmp_path / "history.txt"
        every = [*book.ops, *lin.final_ops(final)]
        history.write_text(lin.describe_ops(every, limit=len(every)) + "\n")
        _keep(tmp_path, book, final)
        fail(
            f"{len(verdicts.violations)} violation(s), see {report} (whole history: "
            f"{history}):\n" + "\n".join(verdicts.violations)[:8000]
        )

    # The same checks catch corruptions of this very history (their verdicts only: no
    # report, whose shrinking is a search per operation).
    # A corruption is caught when some check says so for certain: a search that ran out of
    # its budget does not count (it is noted).  Refuting a change near the end of a long
    # history can take the search longer than any budget (the rolled-back final state of a
    # 120 s campaign did), so the corruptions get a shorter one: the lost-write, session
    # and early-conflict checks catch them at once.
    caught, ran_out = 0, []
    corruptions = lin.corrupt(book.ops, book.reads, final)
    corrupt_budget = min(budget, CORRUPTION_BUDGET_S)
    corrupt_start = time.monotonic()
    with watchdog.phase("checking the corruptions", len(corruptions) * 2 * corrupt_budget + 60):
        for name, ops, reads, fin in corruptions:
            bad = lin.check_run(ops, reads, book.acked, fin, timeout_s=corrupt_budget, report=False)
            if len(bad.violations) <= len(bad.unknown):
                _keep(tmp_path, book, final)
            assert len(bad.violations) > len(bad.unknown), (
                f"corruption {name!r} of the recorded history was not caught"
                + (f" (the search of {bad.unknown} ran out of its budget)" if bad.unknown else "")
                + f"; the history is in {tmp_path / 'history.pickle'}"
            )
            caught += 1
            ran_out += [f"{name}: {m}" for m in bad.unknown]
    corrupt_s = time.monotonic() - corrupt_start

    kinds = collections.Counter(type(o.input).__name__ for o in book.ops)
    if reconf is not None:
        print(
            f"linearizable {case}: membership: {reconf.summary()}; config ops "
            f"{kinds['ConfigOp']}; live servers {c.live()} agree on {agreed}"
        )
    print(
        f"linearizable {case}: {len(c.sids)} peers, {seconds:g} s of faults, seed {seed}: "
        f"{rounds} rounds, faults {dict(faults.injected)} "
        f"(total {sum(faults.injected.values())}), restarts "
        f"{sum(s.restarts for s in c.servers.values())}, peer connections through the proxy "
        f"{c.proxy.stats.connections}; {verdicts.operations} operations "
        f"({dict(kinds)}, {verdicts.open_ended} open-ended, {len(book.acked)} acknowledged "
        f"sets, {len(book.reads)} session reads), client errors {book.errors}; "
        f"{verdicts.histories} histories checked in {check_s:.2f} s, 0 violations; "
        f"{caught}/{len(corruptions)} corruptions caught in {corrupt_s:.2f} s "
        f"(searches out of budget: {ran_out or 'none'}); "
        f"clients served after a heal: "
        f"max {max(recoveries, default=0.0):.2f} s over {len(recoveries)} rounds; "
        f"wall {time.monotonic() - started:.1f} s"
    )
    assert rounds >= 1 and sum(faults.injected.values()) >= 1
    assert c.proxy.stats.connections >= len(c.participants), "the peers bypassed the proxy"
    assert caught == len(corruptions) >= 3
    assert {"ZnodeOp", "SeqOp"} <= set(kinds)
    if reconf is not None:
        assert reconf.covered() and kinds["ConfigOp"] > 0
