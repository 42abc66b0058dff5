"""The simulator: determinism, a 10,000-run campaign, and mutations the checker catches."""

from __future__ import annotations

import dataclasses
import time

import pytest

from zkquorum.cli.main import main
from zkquorum.core.election import FastLeaderElection
from zkquorum.core.vote import total_order
from zkquorum.sim.campaign import Plan, Summary, plans_covering_all_kinds, run_campaign
from zkquorum.sim.world import FAULT_KINDS, Spec, run_one
from zkquorum.wire.election import Notification, ServerState

ALL = frozenset(FAULT_KINDS)


def test_same_seed_same_trace_event_for_event() -> None:
    spec = Spec(voters=5, observers=2, faults=ALL)
    a = run_one(spec, 42, trace=True)
    b = run_one(spec, 42, trace=True)
    c = run_one(spec, 43, trace=True)
    assert a.trace is not None and b.trace is not None and c.trace is not None
    assert len(a.trace) > 100
    assert a.trace == b.trace
    assert a.trace != c.trace


def test_ten_thousand_runs_without_violation() -> None:
    """N 1..9, majority and hierarchical, observers, each fault kind alone and mixed."""
    plans = list(plans_covering_all_kinds())
    per_plan = 10_000 // len(plans) + 1
    total = Summary()
    started = time.monotonic()
    for i, plan in enumerate(plans):
        s = run_campaign(plan, 1_000_000 * (i + 1), per_plan)
        total.runs += s.runs
        total.decisions += s.decisions
        total.violations += s.violations
        for k, v in s.via.items():
            total.via[k] = total.via.get(k, 0) + v
        for k, t in s.times.items():
            total.times.setdefault(k, []).extend(t)
            total.messages.setdefault(k, []).extend(s.messages[k])
    elapsed = time.monotonic() - started
    assert total.runs >= 10_000
    assert total.violations == [], "\n".join(Summary.report(total, Plan())[:12])
    # Every way of deciding was exercised.
    assert set(total.via) == {"finalize", "all-voted", "failover", "join", "join-round"}
    assert len(total.times["failover"]) > 500
    print(f"{total.runs} runs in {elapsed:.1f} s")


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


def test_cli_summary_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--runs", "20", "--seed", "5", "--peers", "5", "--faults", "all"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("runs: 20  decisions: ")
    assert "invariant violations: 0" in out
    assert "initial election: 20 decided" in out and "median" in out and "messages" in out
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
    """Issue 4: a follower still connecting to the dead leader gives up after 5 refused
    tries (~400 ms, Learner.connectToLeader); then, with the shortcuts, the catch-up reply
    answers its worse vote at once.  3.8 (no shortcuts) answers only at its next poll
    timeout, which the follower's resends keep pushing back: up to the end of the fault
    window, when the old leader restarts."""
    plan = Plan(voters=3, observers=0, faults=frozenset({"failover"}), quorum="majority")
    fast = run_campaign(plan, 1, 200)
    slow = run_campaign(dataclasses.replace(plan, shortcuts=False), 1, 200)
    assert fast.violations == [] and slow.violations == []
    assert max(fast.times["failover"]) < 450
    assert max(slow.times["failover"]) > 1000
