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
from zkquorum.core.datatree import DataTree, Node
from zkquorum.core.election import FastLeaderElection
from zkquorum.core.leader import Leader, LeaderPhase
from zkquorum.core.learner import Learner
from zkquorum.core.ready import ReadyBuilder, SendToLeader
from zkquorum.core.server import Connection, ServerCore, ServerOut
from zkquorum.core.vote import total_order
from zkquorum.sim import checker as ck
from zkquorum.sim.campaign import Plan, Summary, plans_covering_all_kinds, run_campaign
from zkquorum.sim.clients import ClientOp, SimClient, check_clients
from zkquorum.sim.lincheck import Verdict
from zkquorum.sim.world import FAULT_KINDS, Spec, run_one
from zkquorum.wire.election import Notification, ServerState
from zkquorum.wire.jute import StatPersisted
from zkquorum.wire.quorum import PacketType, QuorumPacket
from zkquorum.wire.txn import Txn

ALL = frozenset(FAULT_KINDS)
RUNS = int(os.environ.get("ZKQUORUM_SIM_RUNS", "300"))


def test_same_seed_same_trace_event_for_event() -> None:
    spec = Spec(voters=5, observers=2, faults=ALL, clients=3)
    a = run_one(spec, 42, trace=True)
    b = run_one(spec, 42, trace=True)
    c = run_one(spec, 43, trace=True)
    assert a.trace is not None and b.trace is not None and c.trace is not None
    assert len(a.trace) > 100
    assert a.trace == b.trace
    assert a.trace != c.trace
    assert a.client_ops > 20 and any(" cdeliver " in line for line in a.trace)


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
        total.client_ops += s.client_ops
        total.client_acked += s.client_acked
        total.client_open += s.client_open
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
    assert total.client_ops > 30 * total.runs  # and the clients' operations are answered
    assert total.client_acked > 5 * total.runs
    assert total.client_open < total.client_ops // 20
    assert {"finalize", "all-voted", "failover", "join"} <= set(total.via)
    assert len(total.times["failover"]) > total.runs // 20
    if total.runs >= 10_000:
        assert set(total.via) == {"finalize", "all-voted", "failover", "join", "join-round"}
    print(
        f"{total.runs} runs in {elapsed:.1f} s ({1000 * elapsed / total.runs:.1f} ms per run), "
        f"{total.client_ops} client operations"
    )


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
    plan = Plan(faults=frozenset({"crash", "failover", "loss"}), clients=0)
    s = run_campaign(plan, 7, 400, core_factory=mutant)
    assert s.violations, "the invariant checker let a broken election through"
    assert any(needle in text for _, _, text in s.violations)
    report = "\n".join(s.report(plan))
    assert f"replay: zkquorum sim --seed {s.violations[0][0]} --runs 1" in report
    assert report.count("--clients 0") == report.count("replay: ")
    # The same seeds are clean with the real core.
    assert run_campaign(plan, 7, 400).violations == []


# -- broken leaders -----------------------------------------------------------------------


def _commits_before_durable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The leader counts its own ACK when it proposes, before its log is durable."""
    propose = Leader.propose

    def broken(self: Leader, out: ReadyBuilder, txn: Txn, now: float) -> None:
        propose(self, out, txn, now)
        self._process_ack(out, self.settings.sid, txn.header.zxid, now)

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


# -- clients ----------------------------------------------------------------------------------


def _follower_acks_before_durable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A follower ACKs a PROPOSAL as soon as it has it, before its log is durable."""
    on_broadcast = Learner._on_broadcast

    def broken(self: Learner, out: ReadyBuilder, p: QuorumPacket) -> None:
        on_broadcast(self, out, p)
        if p.type == PacketType.PROPOSAL:
            out.messages.append(SendToLeader(QuorumPacket(PacketType.ACK, p.zxid)))

    monkeypatch.setattr(Learner, "_on_broadcast", broken)


def _reads_overtake_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server answers a read before the same session's earlier write is applied."""
    flush = ServerCore._flush

    def broken(self: ServerCore, out: ServerOut, c: Connection) -> None:
        for p in list(c.queue):
            if p.reply is None and p.zxid is None:
                c.queue.remove(p)
                self._send(out, c, self._read(out, c, p))
        flush(self, out, c)

    monkeypatch.setattr(ServerCore, "_flush", broken)


def _leader_commits_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The leader commits (and answers the client) once its own ACK is in."""
    try_to_commit = Leader._try_to_commit

    def broken(self: Leader, out: ReadyBuilder, zxid: int, now: float) -> bool:
        p = self.outstanding.get(zxid)
        if p is not None and self.settings.sid in p.acks:
            p.acks.update(self.settings.verifier.voting_members)
        return try_to_commit(self, out, zxid, now)

    monkeypatch.setattr(Leader, "_try_to_commit", broken)


@pytest.mark.parametrize(
    ("breakage", "plan", "runs", "needle"),
    [
        (
            _follower_acks_before_durable,
            Plan(voters=3, observers=0, faults=frozenset({"crash", "delay"})),
            10,
            "before it was durable",
        ),
        (
            _reads_overtake_writes,
            Plan(voters=3, observers=0, faults=frozenset({"crash", "delay"})),
            10,
            "reply out of request order",
        ),
        (
            _leader_commits_alone,
            Plan(voters=5, observers=0, faults=frozenset({"partition"})),
            40,
            "clients: ",
        ),
    ],
)
def test_the_client_checks_catch_a_broken_seat(
    monkeypatch: pytest.MonkeyPatch, breakage: object, plan: Plan, runs: int, needle: str
) -> None:
    """Each breakage is reported within a few seeds (the same seeds are clean without it);
    an acknowledged write the leader committed alone is lost by the clients' checks, not
    only by Zab's."""
    assert run_campaign(plan, 11, runs).violations == []
    breakage(monkeypatch)  # type: ignore[operator]
    s = run_campaign(plan, 11, runs)
    assert any(needle in text for _, _, text in s.violations), s.violations[:3]
    seed = next(seed for seed, _, text in s.violations if needle in text)
    assert plan.replay_args(seed).startswith(f"zkquorum sim --seed {seed} --runs 1 ")
    replayed = run_one(plan.spec_for(seed), seed)
    assert any(needle in text for text in replayed.violations)


def _op(kind: str, call: float, ret: float | None, output: object, **kw: object) -> ClientOp:
    op = ClientOp(1, 0x100, kind, "/k0", kw.pop("value", b""), -1, call, ret, output)  # type: ignore[arg-type]
    for name, value in kw.items():
        setattr(op, name, value)
    return op


def test_client_checks_on_hand_made_histories() -> None:
    tree = DataTree()
    tree.nodes["/k0"] = Node(b"a", None, StatPersisted(version=0, mzxid=5))
    tree.last_processed_zxid = 7
    client = SimClient(1)
    client.history = [
        _op("create", 1.0, 2.0, "ok", value=b"a", zxid=5, mzxid=5),
        _op("get", 3.0, 4.0, (b"a", 0), zxid=6, mzxid=5),
        _op("sget", 5.0, 6.0, (b"a", 0), zxid=7, mzxid=5),
    ]
    ok, verdict = check_clients([client], {1: tree, 2: tree}, 10.0, 100)
    assert ok == [] and verdict is Verdict.LINEARIZABLE
    lost = [*client.history, _op("set", 7.0, 8.0, ("ok", 1), value=b"b", zxid=9, mzxid=9)]
    client.history = lost
    text = " ".join(check_clients([client], {1: tree}, 10.0, 100)[0])
    assert "peer 1 ends at zxid 0x7 without the acknowledged" in text
    assert "not linearizable" in text and "client   -1" in text
    client.history = [*lost, _op("get", 9.0, 9.5, (b"a", 0), zxid=9, mzxid=5)]
    assert "stale read" in " ".join(check_clients([client], {}, 10.0, 100)[0])


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
    plan = Plan(voters=5, observers=0, faults=frozenset(), quorum="majority", clients=0)
    fast = run_campaign(plan, 1, 20)
    slow = run_campaign(dataclasses.replace(plan, shortcuts=False), 1, 20)
    assert max(fast.times["initial"]) < 100 <= 200 <= min(slow.times["initial"])
    assert "finalize" not in fast.via and set(slow.via) <= {"finalize", "join-round", "join"}


def test_failover_shortcut_decides_fast_in_large_ensembles() -> None:
    """Issue 4: at N = 25 some followers are still connecting to the leader when it dies;
    rule 2(d) counts them as missing, so the failover round does not wait finalizeWait."""
    plan = Plan(
        voters=25, observers=0, faults=frozenset({"failover"}), quorum="majority", clients=0
    )
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
    plan = Plan(voters=3, observers=0, faults=frozenset({"failover"}), quorum="majority", clients=0)
    fast = run_campaign(plan, 1, 200)
    slow = run_campaign(dataclasses.replace(plan, shortcuts=False), 1, 200)
    assert fast.violations == [] and slow.violations == []
    connect_deadline = Spec().init_limit_ms
    assert max(fast.times["failover"]) < connect_deadline
    assert statistics.median(fast.times["failover"]) < 50
    assert max(slow.times["failover"]) > connect_deadline + 200
    assert statistics.median(slow.times["failover"]) >= 200
