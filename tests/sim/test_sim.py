"""The simulator: the real peer cores under faults, determinism, a campaign (300 seeded
runs in CI, ``ZKQUORUM_SIM_RUNS=10000`` for the full one), and broken rules the checkers
catch (election mutants, broken leaders, hand-made histories)."""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

import pytest

from zkquorum.cli.main import main
from zkquorum.config.verifier import MajorityVerifier
from zkquorum.core.election import FastLeaderElection
from zkquorum.core.leader import Leader, LeaderPhase
from zkquorum.core.ready import ReadyBuilder
from zkquorum.core.vote import total_order
from zkquorum.sim import checker as ck
from zkquorum.sim.campaign import Plan, Summary, plans_covering_all_kinds, run_campaign
from zkquorum.sim.world import FAULT_KINDS, Spec, run_one
from zkquorum.wire.election import Notification, ServerState
from zkquorum.wire.txn import Txn

ALL = frozenset(FAULT_KINDS)
RUNS = int(os.environ.get("ZKQUORUM_SIM_RUNS", "300"))


def test_same_seed_same_trace_event_for_event() -> None:
    spec = Spec(voters=5, observers=2, faults=ALL)
    a = run_one(spec, 42, trace=True)
    b = run_one(spec, 42, trace=True)
    c = run_one(spec, 43, trace=True)
    assert a.trace is not None and b.trace is not None and c.trace is not None
    assert len(a.trace) > 100
    assert a.trace == b.trace
    assert a.trace != c.trace


def test_campaign_without_violation() -> None:
    """N 1..9, majority and hierarchical, observers, each fault kind alone and mixed; the
    real cores elect, sync and commit writes.  ``ZKQUORUM_SIM_RUNS`` runs (300 in CI;
    10,000 for the full campaign)."""
    plans = list(plans_covering_all_kinds())
    per_plan = max(1, -(-RUNS // len(plans)))
    total = Summary()
    reports: list[str] = []  # each with its own plan's replay command
    started = time.monotonic()
    for i, plan in enumerate(plans):
        s = run_campaign(plan, 1_000_000 * (i + 1), per_plan)
        if s.violations:
            reports += s.report(plan)[:14]
        total.runs += s.runs
        total.decisions += s.decisions
        total.commits += s.commits
        total.violations += s.violations
        for k, v in s.via.items():
            total.via[k] = total.via.get(k, 0) + v
        for k, t in s.times.items():
            total.times.setdefault(k, []).extend(t)
            total.messages.setdefault(k, []).extend(s.messages[k])
    elapsed = time.monotonic() - started
    assert total.runs >= RUNS
    assert total.violations == [], "\n".join(reports)
    assert total.commits > 20 * total.runs  # the writes really commit
    assert {"finalize", "all-voted", "failover", "join"} <= set(total.via)
    assert len(total.times["failover"]) > total.runs // 20
    if total.runs >= 10_000:
        assert set(total.via) == {"finalize", "all-voted", "failover", "join", "join-round"}
    print(f"{total.runs} runs in {elapsed:.1f} s ({1000 * elapsed / total.runs:.1f} ms per run)")


def test_spec_variety_covers_the_space() -> None:
    plan = Plan()
    specs = [plan.spec_for(s) for s in range(400)]
    assert {s.voters for s in specs} == set(range(1, 10))
    assert {s.observers for s in specs} == {0, 1, 2, 3}
    assert any(s.hierarchical for s in specs) and any(not s.hierarchical for s in specs)
    assert any(w == 0 for s in specs for _, w in s.weights)
    assert set().union(*(s.faults for s in specs)) == ALL


class _IgnoresPeerEpoch(FastLeaderElection):
    """Mutation: the total order skips the peer epoch (the pre-ZOOKEEPER-1419 mistake)."""

    def _beats(self, leader: int, zxid: int, epoch: int) -> bool:
        return total_order(leader, zxid, 0, self._p_leader, self._p_zxid, 0, self._weight(leader))


class _SkipsLogicalClock(FastLeaderElection):
    """Mutation: a vote of an older round is taken as a vote of this round."""

    def _look(self, now: float, sid: int, n: Notification) -> None:
        if n.state is ServerState.LOOKING and n.election_epoch < self.logical_clock:
            n = dataclasses.replace(n, election_epoch=self.logical_clock)
        super()._look(now, sid, n)


@pytest.mark.parametrize(
    ("mutant", "needle"),
    [(_IgnoresPeerEpoch, "newer than the leader's"), (_SkipsLogicalClock, "never received")],
)
def test_the_checker_catches_a_broken_rule(mutant: type[FastLeaderElection], needle: str) -> None:
    plan = Plan(faults=frozenset({"crash", "failover", "loss"}))
    s = run_campaign(plan, 7, 400, core_factory=mutant)
    assert s.violations, "the invariant checker let a broken election through"
    assert any(needle in text for _, _, text in s.violations)
    report = "\n".join(s.report(plan))
    assert f"replay: zkquorum sim --seed {s.violations[0][0]} --runs 1" in report
    # The same seeds are clean with the real core.
    assert run_campaign(plan, 7, 400).violations == []


# -- broken leaders -----------------------------------------------------------------------


def _commits_before_durable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The leader counts its own ACK when it proposes, before its log is durable."""
    propose = Leader.propose

    def broken(self: Leader, out: ReadyBuilder, txn: Txn, now: float) -> None:
        propose(self, out, txn, now)
        self._process_ack(out, self.settings.sid, txn.header.zxid)

    monkeypatch.setattr(Leader, "propose", broken)


def _newleader_before_ackepoch_quorum(monkeypatch: pytest.MonkeyPatch) -> None:
    """The leader goes on to sync and NEWLEADER once it acked the epoch itself."""
    epoch_ack = Leader._epoch_ack

    def broken(self: Leader, out: ReadyBuilder, h: object, *args: object) -> None:
        if self.phase is LeaderPhase.WAIT_EPOCH_ACKS:
            self.electing.update(self.settings.verifier.voting_members)
        epoch_ack(self, out, h, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Leader, "_epoch_ack", broken)


@pytest.mark.parametrize(
    ("breakage", "needle"),
    [
        (_commits_before_durable, "not a quorum"),
        (_newleader_before_ackepoch_quorum, "before a quorum acked the epoch"),
    ],
)
def test_the_zab_checker_catches_a_broken_leader(
    monkeypatch: pytest.MonkeyPatch, breakage: object, needle: str
) -> None:
    plan = Plan(voters=5, observers=0, faults=frozenset({"crash", "delay"}))
    assert run_campaign(plan, 11, 30).violations == []
    breakage(monkeypatch)  # type: ignore[operator]
    s = run_campaign(plan, 11, 30)
    assert s.violations, "the Zab checker let a broken leader through"
    assert any(needle in text for _, _, text in s.violations), s.violations[:3]


# -- the checker on hand-made histories ----------------------------------------------------


def test_checker_on_recorded_histories() -> None:
    v = MajorityVerifier.of(range(1, 4), ())
    z = [0x100000001, 0x100000002, 0x100000003]
    good: list[ck.Record] = [
        ck.EpochWritten(1, 1, "accepted", 1),
        ck.EpochWritten(1, 1, "current", 1),
        ck.AckEpochReceived(2, 1, 1, 2),
        ck.NewLeaderSent(3, 1, 1, 2),
        ck.LeaderEstablished(4, 1, 1, ()),
        ck.Committed(5, 1, 1, z[0], frozenset({1, 2})),
        ck.LearnerSynced(6, 2, 1, 1, (z[0],)),
        ck.Committed(7, 1, 1, z[1], frozenset({1, 3})),
        ck.Final(9, 1, 1, {1: (z[0], z[1]), 2: (z[0], z[1])}),
    ]
    assert ck.check_history(good, v) == []

    def bad(*records: ck.Record) -> list[str]:
        return ck.check_history([*good[:-1], *records], v)

    assert "both established epoch 1" in bad(ck.LeaderEstablished(8, 2, 1, (z[0], z[1])))[0]
    assert "went back" in bad(ck.EpochWritten(8, 1, "accepted", 0))[0]
    assert "before a quorum acked" in bad(ck.NewLeaderSent(8, 2, 2, 3))[0]
    assert "not a prefix" in bad(ck.LearnerSynced(8, 3, 1, 1, (z[2],)))[0]
    assert "not a quorum" in bad(ck.Committed(8, 1, 1, z[2], frozenset({1})))[0]
    assert "before it was durable" in bad(ck.AckSent(8, 2, z[2], False))[0]
    assert "lacks committed" in bad(ck.LeaderEstablished(8, 3, 2, (z[0],)))[0]
    lost = bad(
        ck.HistoryRolledBack(8, 2, (z[0],), (), "learner"),
        ck.LearnerSynced(9, 2, 1, 1, ()),
    )
    assert "rolled back committed" in lost[0]
    assert "lacks committed" in bad(ck.Final(9, 1, 1, {1: (z[0], z[1]), 2: (z[0],)}))[0]


# -- the CLI and the election's figures ------------------------------------------------------


def test_cli_summary_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--runs", "20", "--seed", "5", "--peers", "5", "--faults", "all"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("runs: 20  decisions: ")
    assert "invariant violations: 0" in out
    assert "initial election: 20 decided" in out and "median" in out and "messages" in out
    assert "committed" in out and "ms per run" in out
    assert main(["sim", "--faults", "meteor"]) == 2
    assert "unknown fault kind(s) meteor" in capsys.readouterr().err


def test_no_shortcut_waits_finalize_wait() -> None:
    fast = run_campaign(Plan(voters=5, observers=0, faults=frozenset(), quorum="majority"), 1, 20)
    slow = run_campaign(
        Plan(voters=5, observers=0, faults=frozenset(), quorum="majority", shortcuts=False), 1, 20
    )
    assert max(fast.times["initial"]) < 100 <= 200 <= min(slow.times["initial"])
    assert "finalize" not in fast.via and set(slow.via) <= {"finalize", "join-round", "join"}


def test_failover_shortcut_decides_fast_in_large_ensembles() -> None:
    """Issue 4: at N = 25 some followers are still connecting to the leader when it dies;
    rule 2(d) counts them as missing, so the failover round does not wait finalizeWait."""
    plan = Plan(voters=25, observers=0, faults=frozenset({"failover"}), quorum="majority")
    fast = run_campaign(plan, 1, 8)
    slow = run_campaign(dataclasses.replace(plan, shortcuts=False), 1, 8)
    assert fast.violations == [] and slow.violations == []
    assert len(fast.times["failover"]) == 8
    assert max(fast.times["failover"]) < 50 <= 200 <= min(slow.times["failover"])
    assert fast.via.get("failover", 0) > 8 * 12


def test_failover_at_n3_is_not_stuck_behind_the_restart_of_the_old_leader() -> None:
    """Issue 4: a follower still connecting to the dead leader gives up at its connect
    deadline; then, with the shortcuts, the catch-up reply answers its worse vote at once.
    3.8 (no shortcuts) answers only at its next poll timeout, which the follower's resends
    keep pushing back: up to the end of the fault window, when the old leader restarts.

    The abstract model gave up after 5 refused tries (~400 ms, 3.8's
    Learner.connectToLeader); the real core's ConnectToLeader retries until its deadline,
    connectToLearnerMasterLimit (else initLimit) ticks, 1000 ms here, as the runtime's
    LeaderLink does: that is the bound now."""
    plan = Plan(voters=3, observers=0, faults=frozenset({"failover"}), quorum="majority")
    fast = run_campaign(plan, 1, 200)
    slow = run_campaign(dataclasses.replace(plan, shortcuts=False), 1, 200)
    assert fast.violations == [] and slow.violations == []
    connect_deadline = Spec().init_limit_ms
    assert max(fast.times["failover"]) < connect_deadline
    assert statistics.median(fast.times["failover"]) < 50
    assert max(slow.times["failover"]) > connect_deadline + 200
    assert statistics.median(slow.times["failover"]) >= 200
