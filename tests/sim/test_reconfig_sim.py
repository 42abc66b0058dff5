"""Membership changes in the simulator: reconfig schedules under faults, the invariants
by the config in force, and broken cores the checks catch.

CI runs a handful of seeds; the long campaign is ``ZKQUORUM_SIM_RECONFIG_RUNS=3000`` (or
``zkquorum sim --reconfig --runs 3000``)."""

from __future__ import annotations

import dataclasses
import os
import random

import pytest

from tests.core.corehelp import (
    Established,
    LeaderDriver,
    LearnerDriver,
    Send,
    SendSnapshot,
    leader_settings,
    learner_settings,
)
from zkquorum.cli.main import main
from zkquorum.config.verifier import QuorumVerifier
from zkquorum.core import election as fle
from zkquorum.core.database import Database
from zkquorum.core.datatree import DataTree
from zkquorum.core.events import ClientWrite, LeaderUnreachable, Start, VoteReceived
from zkquorum.core.leader import Leader
from zkquorum.core.learner import Learner
from zkquorum.core.peer import PeerCore, PeerSettings, Role
from zkquorum.core.ready import ReadyBuilder
from zkquorum.sim import checker as ck
from zkquorum.sim import reconfig as rc
from zkquorum.sim.campaign import Plan, run_campaign
from zkquorum.sim.world import ADMIN_SESSION, FAULT_KINDS, SUPER, Spec, World, random_spec, run_one
from zkquorum.wire.client_records import ReconfigRequest
from zkquorum.wire.election import Notification, ServerState
from zkquorum.wire.quorum import (
    LearnerInfo,
    PacketType,
    QuorumMessage,
    QuorumPacket,
    encode_int_payload,
    encode_learner_info,
)
from zkquorum.wire.reader import pack_int
from zkquorum.wire.snapshot import SnapshotSignature
from zkquorum.wire.txn import OpCode, Txn

RUNS = int(os.environ.get("ZKQUORUM_SIM_RECONFIG_RUNS", "10"))
LOOKING = ServerState.LOOKING
FOLLOWING = ServerState.FOLLOWING
RECONFIG = Plan(reconfig=True)


def _info(sid: int) -> QuorumPacket:
    return QuorumPacket(PacketType.FOLLOWERINFO, 0, encode_learner_info(LearnerInfo(sid)))


def test_a_schedule_is_carried_out_under_faults() -> None:
    """Every kind of change, on an ensemble with an observer and a joiner, under every
    fault: the schedule ends, the final config is the one it asked for, every member
    is synced in its role, and the same seed gives the same run."""
    schedule = (
        "remove:2", "add:2", "remove-leader", "add-back", "to-participant:6",
        "to-observer:6", "add:7", "remove:7",
    )  # fmt: skip
    spec = Spec(
        voters=5, observers=1, faults=frozenset(FAULT_KINDS), clients=3, reconfig=True,
        joiners=1, schedule=schedule, log_sync=False,
    )  # fmt: skip
    a = run_one(spec, 3, trace=True)
    assert a.violations == []
    assert a.reconfigs == len(schedule) and a.reconfig_requests >= len(schedule)
    members = a.final_config.split(": ", 1)[1]
    assert members == "1 2 3 4 5 6(o)"
    b = run_one(spec, 3, trace=True)
    assert a.trace == b.trace
    assert any(" reconfig " in line for line in a.trace or ())


def test_reconfig_campaign_without_violation() -> None:
    """Random schedules (a follower out and back, the leader out and back, an observer
    made a participant and back, joiners added and maybe removed) under random faults:
    the real cores keep every invariant.  ``ZKQUORUM_SIM_RECONFIG_RUNS`` runs."""
    s = run_campaign(RECONFIG, 500_000, RUNS)
    assert s.violations == [], "\n".join(s.report(RECONFIG)[:20])
    assert s.schedules >= RUNS // 2
    assert s.reconfigs >= 2 * s.schedules
    assert s.commits > 20 * s.runs


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


def _leader_ignores_the_new_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The leader counts every proposal's ACKs by the config in force only, even the
    reconfig's own and those made while it is pending."""
    propose = Leader.propose

    def broken(self: Leader, out: ReadyBuilder, txn: Txn, now: float) -> None:
        propose(self, out, txn, now)
        p = self.outstanding.get(txn.header.zxid)
        if p is not None:
            p.verifiers = p.verifiers[:1]

    monkeypatch.setattr(Leader, "propose", broken)


def _leader_drops_the_old_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a reconfig commits, the proposals made while it was pending need only the
    new config's quorum (3.8 keeps both pairs in ``Proposal.qvAcksetPairs``)."""
    try_to_commit = Leader._try_to_commit

    def broken(self: Leader, out: ReadyBuilder, zxid: int, now: float) -> bool:
        p = self.outstanding.get(zxid)
        done = try_to_commit(self, out, zxid, now)
        if done and p is not None and p.config is not None:
            for q in self.outstanding.values():
                q.verifiers = q.verifiers[-1:]
        return done

    monkeypatch.setattr(Leader, "_try_to_commit", broken)


def _non_members_observe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The learner type before the fix: a server the config does not name observes (3.8
    makes it a non-voting participant), so a server added back follows as an observer."""
    set_verifier = fle.FastLeaderElection.set_verifier

    def broken(self: fle.FastLeaderElection, verifier: QuorumVerifier) -> None:
        set_verifier(self, verifier)
        self.is_participant = self.is_voter

    monkeypatch.setattr(fle.FastLeaderElection, "set_verifier", broken)


def _followers_never_activate(monkeypatch: pytest.MonkeyPatch) -> None:
    """COMMITANDACTIVATE commits the reconfig but leaves the old config in force."""

    def broken(self: Learner, out: ReadyBuilder, txn: Txn | None, data: bytes | None) -> bool:
        return True

    monkeypatch.setattr(Learner, "_activate", broken)


@pytest.mark.parametrize(
    ("breakage", "seed", "runs", "needle"),
    [
        (_leader_ignores_the_new_config, 24, 2, "(its new config)"),
        (_leader_drops_the_old_config, 21, 1, "(in force when it was proposed)"),
        (_non_members_observe, 34, 3, "is OBSERVING but a voter"),
        (_followers_never_activate, 21, 2, "at the end, peer"),
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


# -- NEWLEADER while a reconfig is in progress -------------------------------------------


def _newleader_while_removing_3() -> tuple[list[QuorumMessage], QuorumVerifier, QuorumVerifier]:
    """Leader 1 of {1, 2, 3} established with 2, proposes the removal of 3 (pending: 2 has
    not acked it), then syncs 3: what it sends 3, the config in force, the proposed one."""
    v = rc.majority([1, 2, 3])
    leader = LeaderDriver(
        dataclasses.replace(leader_settings(1, v), reconfig_enabled=True), DataTree("")
    )
    leader.start(0.0)
    leader.connected(7, 0.0)
    leader.receive(7, _info(2), 0.0)
    leader.receive(7, QuorumPacket(PacketType.ACKEPOCH, 0, encode_int_payload(0)), 0.0)
    assert Established(1) in leader.receive(7, QuorumPacket(PacketType.ACK, 1 << 32), 0.0)
    m = leader.core.membership
    session, now = ADMIN_SESSION, 100.0
    leader._step(ClientWrite(now, session, 0, OpCode.CREATE_SESSION, pack_int(30_000)))
    body = ReconfigRequest(None, "3", None, -1).encode()
    leader._step(ClientWrite(now, session, 1, OpCode.RECONFIG, body, (SUPER,)))
    assert m.in_progress and sorted(m.last_seen.voting_members) == [1, 2]
    leader.connected(8, 0.2)
    leader.receive(8, _info(3), 0.2)
    acts = leader.receive(8, QuorumPacket(PacketType.ACKEPOCH, 0, encode_int_payload(0)), 0.2)
    sent: list[QuorumMessage] = []
    for a in acts:
        if isinstance(a, Send) and a.conn == 8:
            sent.append(a.packet)
        elif isinstance(a, SendSnapshot) and a.conn == 8:
            sent += [QuorumPacket(PacketType.SNAP, a.zxid), a.snapshot, SnapshotSignature()]
    return sent, m.current, m.last_seen


def _learner_3(sent: list[QuorumMessage], current: QuorumVerifier) -> LearnerDriver:
    """Server 3 (of ``current``) synced with ``sent``, then UPTODATE."""
    settings = dataclasses.replace(
        learner_settings(3), verifier=rc.majority([1, 2, 3]), reconfig_enabled=True
    )
    learner = LearnerDriver(settings, DataTree(""))
    learner.start(0.0)
    leaderinfo = QuorumPacket(PacketType.LEADERINFO, 1 << 32, encode_int_payload(0x10000))
    for msg in [leaderinfo, *sent, QuorumPacket(PacketType.UPTODATE, -1)]:
        learner.receive(msg, 0.1)
    assert learner.core.leadership.established
    return learner


def test_a_learner_synced_during_a_reconfig_keeps_the_config_in_force() -> None:
    """3.8's NEWLEADER carries the last-seen config, which the learner puts in force at
    UPTODATE: synced while a reconfig is in progress, it runs by a config nobody
    committed, and when that reconfig fails the leader refuses it for ever ("Follower is
    ahead of the leader (has a later activated configuration)"; the simulator's
    liveness check, seed 5488 of the reconfig campaign).  An established leader's
    NEWLEADER carries the config in force; the forwarded PROPOSAL keeps the proposed
    one the learner's last seen (so that its quorum is still needed if it comes to lead)."""
    sent, current, proposed = _newleader_while_removing_3()
    packets = [p for p in sent if isinstance(p, QuorumPacket)]
    types = [p.type for p in packets]
    assert types[0] == PacketType.SNAP and types[-1] == PacketType.NEWLEADER
    assert PacketType.PROPOSAL in types
    assert (packets[-1].data or b"").decode() == current.to_zk_string()
    m = _learner_3(sent, current).core.membership
    assert m.current.version == current.version == 1 << 32
    assert m.last_seen.version == proposed.version and m.in_progress
    # What 3.8's NEWLEADER would have done: the uncommitted removal in force at 3.
    java = QuorumPacket(PacketType.NEWLEADER, 1 << 32, proposed.to_zk_string().encode())
    m = _learner_3([*sent[:-1], java], current).core.membership
    assert m.current.version == proposed.version


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
    # Proposed while the reconfig was pending: the old config's quorum too.
    pending = ck.Committed(6, 1, 1, z[2], frozenset({1, 4, 5}), True, None, (z[1],))
    bad = ck.check_history([*good[:-1], pending], old)
    assert any("not a quorum of config 100000000 (in force when it was proposed)" in v for v in bad)
    ok = ck.Committed(6, 1, 1, z[2], frozenset({1, 2, 4}), True, None, (z[1],))
    assert ck.check_history([*good[:-1], ok], old) == []
    # ... acked by it: a member since dropped may have cut the txn in a re-sync.
    acked = ck.AckSent(5.5, 2, z[2], True)
    assert ck.check_history([*good[:-1], acked, pending], old) == []
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


# -- a known 3.8 bug the schedules bring about --------------------------------------------


def test_txn_log_sync_after_a_snap_is_caught() -> None:
    """ZOOKEEPER-2846, reproduced: peer 6 was synced by SNAP (its log kept an uncommitted
    txn of its own failed epoch, and lacks what the snapshot brought), then led and
    synced peer 7 (down since 68 ms) from that log: a DIFF with holes.  Peer 7 ends
    without acknowledged writes.  3.8's workaround, snapshotSizeFactor=-1, is what the
    reconfig campaign runs with (``Plan.log_sync``)."""
    spec = dataclasses.replace(random_spec(random.Random(36), reconfig=True), clients=3)
    assert spec.log_sync is True
    res = run_one(spec, 36)
    assert any("the peers end with different keys" in v for v in res.violations)
    assert run_one(dataclasses.replace(spec, log_sync=False), 36).violations == []


def test_cli_reconfig(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--reconfig", "--runs", "3", "--seed", "40", "--peers", "4"]) == 0
    out = capsys.readouterr().out
    assert "invariant violations: 0" in out and "membership changes: " in out
    assert main(["sim", "--joiners", "2"]) == 2
    assert "--joiners needs --reconfig" in capsys.readouterr().err


# -- core fixes found by the long campaign ------------------------------------------------


def test_a_newer_config_heard_while_looking_is_adopted_every_time() -> None:
    """The election reports a sender's mismatching config once; 3.8's WorkerReceiver
    adopts a newer one from every notification heard while looking.  Observer 6 heard
    the newer config first while observing (not adoptable then), and after its phase
    ended never again: by its old config the new leader 3 is no voter, so it ignored
    every FOLLOWING vote for 3 and looked for ever (seed 1544 of the campaign)."""
    old = rc.majority([1, 2, 4, 5], [6], version=0x400000000)
    new = rc.majority([1, 2, 3, 4, 5], [6], version=0x500000002)
    settings = PeerSettings(
        sid=6, verifier=old, tick_time_ms=100, init_limit=10, sync_limit=5, connect_limit=10,
        config_text=old.to_zk_string(), reconfig_enabled=True,
    )  # fmt: skip
    core = PeerCore(
        settings, Database(DataTree(old.to_zk_string())), accepted_epoch=4, current_epoch=4
    )
    core.step(Start(0.0))
    for sid, state in ((1, ServerState.LEADING), (2, FOLLOWING), (4, FOLLOWING)):
        n = Notification(state, 1, 0x400000001, 1, 4, 2, old.to_zk_string())
        core.step(VoteReceived(1.0, sid, n))
    assert core.role is Role.OBSERVING
    late = Notification(FOLLOWING, 3, 0x500000001, 2, 5, 2, new.to_zk_string())
    core.step(VoteReceived(2.0, 2, late))
    assert core.membership.current is old  # not while observing
    core.step(LeaderUnreachable(3.0))
    assert core.role is Role.LOOKING
    core.step(VoteReceived(4.0, 2, late))
    assert core.membership.current.version == new.version


def test_a_snap_synced_learner_logs_after_its_snapshot() -> None:
    """The txns a SNAP sync forwards are logged at NEWLEADER; they went to the log in the
    same Ready as the sync snapshot, and the log is written first: a crash between the
    two left them on the old snapshot, a history with a hole that claimed the newest
    zxid (a joiner, seed 1154 of the campaign: it later took a DIFF from there and ended
    without acknowledged writes).  3.8 takes the snapshot synchronously first."""
    v = rc.majority([1, 2, 3])
    sent, _, _ = _newleader_while_removing_3()
    settings = dataclasses.replace(learner_settings(3), verifier=v, reconfig_enabled=True)
    learner = LearnerDriver(settings, DataTree(""))
    learner.start(0.0)
    learner.receive(QuorumPacket(PacketType.LEADERINFO, 1 << 32, encode_int_payload(0x10000)), 0)
    acts: list[object] = []
    for msg in sent:
        acts += learner.receive(msg, 0.1)
    kinds = [type(a).__name__ for a in acts]
    assert kinds.index("TakeSnapshot") < kinds.index("AppendTxns")


@pytest.mark.parametrize("seed", [20017, 20077, 20390])
def test_a_reconfig_committed_during_a_snap_sync_is_put_in_force(seed: int) -> None:
    """Seeds where a learner synced by SNAP got the reconfig's COMMITANDACTIVATE while the
    proposals it carried were held for the sync snapshot: it must find the reconfig txn
    there and put its config in force (it once kept the old config, synced with a leader
    of the new one)."""
    assert run_campaign(RECONFIG, seed, 1).violations == []
