"""The pure Leader: handshake, epochs, sync decisions (spec B2 table), heartbeats, step-down."""

from __future__ import annotations

from tests.core.corehelp import (
    Action,
    Close,
    Established,
    Failed,
    LeaderDriver,
    PersistAcceptedEpoch,
    PersistCurrentEpoch,
    Send,
    SendSnapshot,
    leader_settings,
)
from zkquorum.config.verifier import MajorityVerifier
from zkquorum.core.database import Database, SyncPlan, plan_sync
from zkquorum.core.datatree import DataTree
from zkquorum.core.leader import LeaderPhase
from zkquorum.wire.quorum import (
    LearnerInfo,
    PacketType,
    QuorumPacket,
    encode_int_payload,
    encode_learner_info,
    encode_packet,
)
from zkquorum.wire.txn import Txn, TxnHeader
from zkquorum.wire.zxid import make_zxid

VERIFIER = MajorityVerifier.of([1, 2, 3], observers=[4])


def _leader(accepted: int = 0, current: int = 0, zxid: int = 0) -> LeaderDriver:
    tree = DataTree("cfg")
    tree.last_processed_zxid = zxid
    return LeaderDriver(leader_settings(1, VERIFIER), tree, accepted=accepted, current=current)


def _info(sid: int, accepted: int = 0, observer: bool = False) -> QuorumPacket:
    t = PacketType.OBSERVERINFO if observer else PacketType.FOLLOWERINFO
    return QuorumPacket(t, make_zxid(accepted, 0), encode_learner_info(LearnerInfo(sid)))


def _ackepoch(zxid: int, epoch: int) -> QuorumPacket:
    return QuorumPacket(PacketType.ACKEPOCH, zxid, encode_int_payload(epoch))


def _sent(actions: list[Action], conn: int) -> list[QuorumPacket]:
    return [a.packet for a in actions if isinstance(a, Send) and a.conn == conn]


def test_handshake_bytes_and_file_order() -> None:
    leader = _leader(accepted=3, current=3)
    assert leader.start(0.0) == []
    assert leader.connected(7, 0.1) == []
    acts = leader.receive(7, _info(2, accepted=5), 0.2)
    # epoch = max(3, 5) + 1 = 6, written as acceptedEpoch before LEADERINFO goes out.
    assert acts[0] == PersistAcceptedEpoch(6)
    assert encode_packet(_sent(acts, 7)[0]).hex() == (
        "0000001100000006000000000000000400010000ffffffff"
    )
    acts = leader.receive(7, _ackepoch(0, 3), 0.3)
    assert acts[0] == PersistCurrentEpoch(6)
    sent = _sent(acts, 7)
    assert [p.type for p in sent] == [PacketType.DIFF, PacketType.NEWLEADER]
    assert sent[0].zxid == 0 and sent[1].zxid == make_zxid(6, 0)
    assert (sent[1].data or b"").decode() == VERIFIER.to_zk_string()
    acts = leader.receive(7, QuorumPacket(PacketType.ACK, make_zxid(6, 0)), 0.4)
    # Established by the quorum's NEWLEADER ACK (an outcome, reported after the packets
    # of the same step), and UPTODATE goes out.
    assert acts[-1] == Established(6)
    assert encode_packet(_sent(acts, 7)[0]).hex() == "0000000c" + "ff" * 16
    assert leader.phase is LeaderPhase.BROADCAST
    assert leader.tree.last_processed_zxid == make_zxid(6, 0)
    # PING every half tick, with zxid = lastProposed = newEpoch << 32.
    acts = leader.poll(0.9)
    assert [encode_packet(p).hex() for p in _sent(acts, 7)] == [
        "000000050000000600000000ffffffffffffffff"
    ]
    assert leader.poll(1.0) == []


def test_silent_learner_is_dropped_and_leader_steps_down() -> None:
    leader = _leader()
    leader.start(0.0)
    leader.connected(1, 0.0)
    leader.receive(1, _info(2), 0.0)
    leader.receive(1, _ackepoch(0, 0), 0.0)
    acts = leader.receive(1, QuorumPacket(PacketType.ACK, make_zxid(1, 0)), 0.0)
    assert Established(1) in acts
    now, failed = 0.0, None
    ping_reply = QuorumPacket(PacketType.PING, make_zxid(1, 0), b"")
    while now < 20 and failed is None:
        now = leader.next_deadline()
        for a in leader.poll(now):
            if isinstance(a, Failed):
                failed = (now, a.reason)
        if now < 4.0:  # answers pings for 4 s, then goes silent
            leader.receive(1, ping_reply, now)
    assert failed is not None
    # Read timeout after syncLimit (5) ticks of silence, then the next tick check.
    assert 9.0 <= failed[0] <= 10.5
    assert failed[1] == "Not sufficient followers synced, only synced with sids: [ [1] ]"


def test_epoch_needs_a_quorum_within_init_limit() -> None:
    leader = _leader()
    leader.start(0.0)
    leader.connected(1, 0.0)
    # An observer never makes the quorum.
    assert leader.receive(1, _info(4, observer=True), 0.0) == []
    acts = leader.poll(10.0)
    assert Failed("Timeout while waiting for epoch from quorum") in acts


def test_unknown_sid_is_refused() -> None:
    leader = _leader()
    leader.start(0.0)
    leader.connected(1, 0.0)
    acts = leader.receive(1, _info(9), 0.0)
    assert acts == [Close(1, "sid 9 is not in the current config")]


def test_learner_ahead_is_dropped() -> None:
    leader = _leader(accepted=1, current=1, zxid=make_zxid(1, 5))
    leader.start(0.0)
    leader.connected(1, 0.0)
    leader.receive(1, _info(2, accepted=1), 0.0)
    acts = leader.receive(1, _ackepoch(make_zxid(1, 9), 1), 0.0)
    assert [type(a) for a in acts] == [Close]
    assert "Follower is ahead of the leader" in acts[0].reason  # type: ignore[union-attr]
    acts = leader.poll(20.0)
    assert Failed("Timeout while waiting for epoch to be acked by quorum") in acts


def test_first_packet_must_be_info_and_next_an_ack() -> None:
    leader = _leader()
    leader.start(0.0)
    leader.connected(1, 0.0)
    acts = leader.receive(1, QuorumPacket(PacketType.PING, 0, b""), 0.0)
    assert acts == [Close(1, "First packet PING is not FOLLOWERINFO or OBSERVERINFO!")]
    leader.connected(2, 0.0)
    leader.receive(2, _info(2), 0.0)
    leader.receive(2, _ackepoch(0, 0), 0.0)
    acts = leader.receive(2, QuorumPacket(PacketType.PING, 0, b""), 0.0)
    assert acts == [Close(2, "Next packet was supposed to be an ACK, but received packet: PING")]


def _txn(epoch: int, counter: int) -> Txn:
    return Txn(TxnHeader(1, counter, make_zxid(epoch, counter), 0, 1), None)


def _plan(peer: int, last: int, history: list[Txn]) -> SyncPlan:
    """The leader's plan from its committed window alone (no log files to read)."""
    tree = DataTree("cfg")
    for txn in history:
        tree.last_processed_zxid = txn.header.zxid
    tree.last_processed_zxid = last
    db = Database(tree, history)
    plan = plan_sync(db, peer, log_sync=False)
    assert isinstance(plan, SyncPlan)
    return plan


def test_plan_sync_matches_the_live_table() -> None:
    z = make_zxid
    history = [_txn(1, c) for c in range(1, 7)]
    assert _plan(0, 0, []).packets == (QuorumPacket(PacketType.DIFF, 0),)
    assert _plan(0, z(1, 0), []).mode.name == "SNAP"
    assert _plan(z(1, 0), z(1, 0), []).packets == (QuorumPacket(PacketType.DIFF, z(1, 0)),)
    plan = _plan(z(1, 3), z(1, 6), history)
    assert plan.mode.name == "DIFF"
    assert [(p.type, p.zxid) for p in plan.packets] == [
        (PacketType.DIFF, z(1, 6)),
        (PacketType.PROPOSAL, z(1, 4)),
        (PacketType.COMMIT, z(1, 4)),
        (PacketType.PROPOSAL, z(1, 5)),
        (PacketType.COMMIT, z(1, 5)),
        (PacketType.PROPOSAL, z(1, 6)),
        (PacketType.COMMIT, z(1, 6)),
    ]
    assert _plan(z(1, 0), z(1, 6), history).mode.name == "SNAP"
    assert _plan(z(1, 9), z(1, 6), history).packets == (QuorumPacket(PacketType.TRUNC, z(1, 6)),)
    # A peer with a txn the leader lacks, same epoch: TRUNC to the txn before, then the rest.
    gap = [_txn(1, 1), _txn(1, 2), _txn(1, 4)]
    plan = _plan(z(1, 3), z(1, 4), gap)
    assert [(p.type, p.zxid) for p in plan.packets] == [
        (PacketType.TRUNC, z(1, 2)),
        (PacketType.PROPOSAL, z(1, 4)),
        (PacketType.COMMIT, z(1, 4)),
    ]
    # ... different epoch: SNAP.
    assert _plan(z(1, 3), z(2, 1), [_txn(1, 1), _txn(2, 1)]).mode.name == "SNAP"


def test_snap_sync_sends_the_tree() -> None:
    leader = _leader(accepted=1, current=1, zxid=make_zxid(1, 6))
    leader.start(0.0)
    leader.connected(1, 0.0)
    leader.receive(1, _info(2), 0.0)
    acts = leader.receive(1, _ackepoch(0, 0), 0.0)
    snap = [a for a in acts if isinstance(a, SendSnapshot)]
    assert len(snap) == 1 and snap[0].zxid == make_zxid(1, 6)
    assert {n.path for n in snap[0].snapshot.nodes} >= {"", "/zookeeper", "/zookeeper/config"}
