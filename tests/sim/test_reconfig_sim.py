"""Membership changes in the simulator: reconfig schedules under faults, the invariants
by the config in force, and broken cores the checks catch.

CI runs a handful of seeds; the long campaign is ``ZKQUORUM_SIM_RECONFIG_RUNS=3000`` (or
``zkquorum sim --reconfig --runs 3000``)."""

from __future__ import annotations

import os
import random

import pytest

from zkquorum.config.verifier import QuorumVerifier
from zkquorum.core import election as fle
from zkquorum.sim import checker as ck
from zkquorum.sim import reconfig as rc
from zkquorum.sim.campaign import Plan, run_campaign
from zkquorum.sim.world import Spec, World
from zkquorum.wire.election import Notification, ServerState

RUNS = int(os.environ.get("ZKQUORUM_SIM_RECONFIG_RUNS", "10"))
LOOKING = ServerState.LOOKING
RECONFIG = Plan(reconfig=True)


def test_random_schedules_are_changes_3_8_accepts() -> None:
    rng = random.Random(1)
    kinds = set()
    for _ in range(300):
        voters, observers, joiners = rng.randint(2, 7), rng.randint(0, 3), rng.randint(0, 2)
        steps = [rc.parse_step(t) for t in rc.random_schedule(rng, voters, observers, joiners)]
        kinds |= {k for k, _ in steps}
        count = voters
        for kind, _ in steps:  # never fewer than two voters
            count += {"remove": -1, "remove-leader": -1, "add": 1, "add-back": 1}.get(kind, 0)
            count += {"to-participant": 1, "to-observer": -1}.get(kind, 0)
            assert count >= 2
    assert kinds == set(rc.STEP_KINDS)
    with pytest.raises(ValueError, match="unknown reconfig step"):
        rc.parse_step("explode:3")


# -- broken cores ----------------------------------------------------------------------


def _non_members_observe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The learner type before the fix: a server the config does not name observes (3.8
    makes it a non-voting participant), so a server added back follows as an observer."""
    set_verifier = fle.FastLeaderElection.set_verifier

    def broken(self: fle.FastLeaderElection, verifier: QuorumVerifier) -> None:
        set_verifier(self, verifier)
        self.is_participant = self.is_voter

    monkeypatch.setattr(fle.FastLeaderElection, "set_verifier", broken)


@pytest.mark.parametrize(
    ("breakage", "seed", "runs", "needle"),
    [
        (_non_members_observe, 34, 3, "is OBSERVING but a voter"),
    ],
)
def test_the_checks_catch_a_broken_reconfig(
    monkeypatch: pytest.MonkeyPatch, breakage: object, seed: int, runs: int, needle: str
) -> None:
    """Each breakage is reported within a few seeds that are clean without it."""
    plan = Plan(voters=5, observers=1, joiners=1, reconfig=True, faults=frozenset({"crash"}))
    assert run_campaign(plan, seed, runs).violations == []
    breakage(monkeypatch)  # type: ignore[operator]
    s = run_campaign(plan, seed, runs)
    assert any(needle in text for _, _, text in s.violations), s.violations[:3]
    caught = next(seed for seed, _, text in s.violations if needle in text)
    assert plan.replay_args(caught) == (
        f"zkquorum sim --seed {caught} --runs 1 --peers 5 --observers 1 --faults crash "
        "--reconfig --joiners 1"
    )


def test_a_non_voter_sends_no_catch_up_reply() -> None:
    """A voter answers each notification of a non-voter with its current vote, the same
    each time; a looking non-voter took a repeated one for a voter that missed its
    proposal and sent the catch-up reply (not a 3.8 message), each answered again: a
    ping-pong at link speed for as long as both looked (22,313 notifications instead
    of 9,292 in seed 1029 of the reconfig campaign).  Voters still send it."""
    v = rc.majority([1, 2, 3], [4])
    text = v.to_zk_string()
    better = Notification(LOOKING, 3, 0x300000001, 1, 3, 2, text)
    stale = Notification(LOOKING, 1, 0x100000001, 1, 1, 2, text)  # 1's current vote
    for sid, replies in ((4, 0), (2, 1)):
        core = fle.FastLeaderElection(sid, v)
        core.step(fle.Start(0, 0, 0))
        core.step(fle.NotificationReceived(1, 3, better))
        core.step(fle.NotificationReceived(2, 1, stale))
        out = core.step(fle.NotificationReceived(3, 1, stale))
        assert len([a for a in out if isinstance(a, fle.Send) and a.to == 1]) == replies


# -- checks by the config in force -----------------------------------------------------


def test_commits_need_quorums_of_the_configs_in_force() -> None:
    old = rc.majority([1, 2, 3], version=0x100000000)
    new = rc.majority([1, 2, 3, 4, 5], version=0x100000002)
    z = [0x100000001, 0x100000002, 0x100000003]
    start: list[ck.Record] = [
        ck.AckEpochReceived(1, 1, 1, 2),
        ck.NewLeaderSent(2, 1, 1, 2, old),
        ck.LeaderEstablished(3, 1, 1, (), old),
        ck.Committed(4, 1, 1, z[0], frozenset({1, 2})),
    ]
    good = [
        *start,
        ck.Committed(5, 1, 1, z[1], frozenset({1, 2, 4}), False, new),
        ck.Committed(6, 1, 1, z[2], frozenset({1, 4, 5})),
    ]
    assert ck.check_history(good, old) == []
    # The reconfig durable on a quorum of the old config only.
    bad = ck.check_history(
        [*start, ck.Committed(5, 1, 1, z[1], frozenset({1, 2}), False, new)], old
    )
    assert any("not a quorum of config 100000002 (its new config)" in v for v in bad)
    # After it, a quorum of the old config is not enough.
    bad = ck.check_history([*good[:-1], ck.Committed(6, 1, 1, z[2], frozenset({1, 2}))], old)
    assert any("not a quorum of config 100000002 (in force)" in v for v in bad)
    # A later epoch led by a config older than a committed one.
    later = [
        *good,
        ck.LeaderEstablished(7, 2, 2, (z[0],), old),
        ck.Committed(8, 2, 2, 0x200000001, frozenset({2, 3})),
    ]
    assert any("(committed before)" in v for v in ck.check_history(later, old))
    # NEWLEADER before a quorum of the elected leader's config acked the epoch.
    early = ck.NewLeaderSent(2, 1, 1, 2, new)
    assert "before a quorum acked" in ck.check_history([start[0], early], old)[0]


def test_a_config_version_has_one_membership() -> None:
    world = World(Spec(voters=3, reconfig=True), 1)
    n1, n2 = world.nodes[1], world.nodes[2]
    world._config_activated(n1, rc.majority([1, 2, 3], version=5))
    world._config_activated(n2, rc.majority([1, 2, 3], version=5))
    assert world.result.violations == []
    world._config_activated(n2, rc.majority([1, 2], version=5))
    assert "put config version 5 in force" in world.result.violations[0]
