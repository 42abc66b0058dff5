"""The pure Learner: timeouts, epochs, PINGs during sync, observers, TRUNC."""

from __future__ import annotations

from tests.core.corehelp import (
    AppendTxns,
    Failed,
    LearnerDriver,
    PersistAcceptedEpoch,
    PersistCurrentEpoch,
    Send,
    TakeSnapshot,
    Truncate,
    learner_settings,
)
from zkquorum.core.datatree import DataTree
from zkquorum.core.peer import Role
from zkquorum.wire.quorum import PacketType, QuorumPacket, encode_int_payload, encode_packet
from zkquorum.wire.txn import CreateTxn, OpCode, Txn, TxnHeader, encode_txn
from zkquorum.wire.zxid import make_zxid


def _learner(
    accepted: int = 0, current: int = 0, observer: bool = False, tree: DataTree | None = None
) -> LearnerDriver:
    s = learner_settings(3, observer=observer)
    return LearnerDriver(s, tree or DataTree(), accepted=accepted, current=current)


def _leaderinfo(epoch: int) -> QuorumPacket:
    return QuorumPacket(PacketType.LEADERINFO, make_zxid(epoch, 0), encode_int_payload(0x10000))


def test_followerinfo_and_observerinfo_bytes() -> None:
    (a,) = _learner(accepted=1).start(0.0)
    assert isinstance(a, Send)
    assert encode_packet(a.packet).hex() == (
        "0000000b0000000100000000000000140000000000000003000100000000000000000000ffffffff"
    )
    (b,) = _learner(observer=True).start(0.0)
    assert isinstance(b, Send) and b.packet.type == PacketType.OBSERVERINFO


def test_read_timeout_is_init_limit_then_sync_limit() -> None:
    lr = _learner()
    lr.start(0.0)
    assert lr.deadline == 10.0
    assert lr.poll(9.9) == []
    lr.receive(_leaderinfo(1), 1.0)
    lr.receive(QuorumPacket(PacketType.DIFF, 0), 2.0)
    assert lr.deadline == 12.0
    lr.receive(QuorumPacket(PacketType.NEWLEADER, make_zxid(1, 0), b"cfg"), 3.0)
    assert lr.deadline == 8.0
    assert lr.poll(8.0) == [Failed("Read timed out")]


def test_epoch_rules() -> None:
    lr = _learner(accepted=2, current=2)
    lr.start(0.0)
    acts = lr.receive(_leaderinfo(2), 0.0)  # same epoch: -1, no file written
    assert [type(a) for a in acts] == [Send]
    assert acts[0].packet.data == b"\xff\xff\xff\xff"  # type: ignore[union-attr]
    lr = _learner(accepted=2, current=1)
    lr.start(0.0)
    acts = lr.receive(_leaderinfo(3), 0.0)
    assert acts[0] == PersistAcceptedEpoch(3)
    assert acts[1].packet.data == b"\x00\x00\x00\x01"  # type: ignore[union-attr]
    lr = _learner(accepted=4, current=4)
    lr.start(0.0)
    assert lr.receive(_leaderinfo(3), 0.0) == [
        Failed("Leaders epoch, 3 is less than accepted epoch, 4")
    ]
    assert lr.closed(1.0) == []  # already failed: reported once


def test_no_ping_reply_before_uptodate_and_empty_table_after() -> None:
    lr = _learner()
    lr.start(0.0)
    lr.receive(_leaderinfo(1), 0.0)
    ping = QuorumPacket(PacketType.PING, make_zxid(1, 0))
    assert lr.receive(ping, 0.0) == []
    lr.receive(QuorumPacket(PacketType.DIFF, 0), 0.0)
    assert lr.receive(ping, 0.0) == []
    lr.receive(QuorumPacket(PacketType.NEWLEADER, make_zxid(1, 0), b"cfg"), 0.0)
    assert lr.receive(ping, 0.0) == []
    lr.receive(QuorumPacket(PacketType.UPTODATE, -1), 0.0)
    (reply,) = lr.receive(ping, 0.0)
    assert isinstance(reply, Send)
    assert encode_packet(reply.packet).hex() == "00000005000000010000000000000000ffffffff"


def _creates(n: int) -> list[Txn]:
    return [
        Txn(
            TxnHeader(1, c, make_zxid(1, c), 0, OpCode.CREATE),
            CreateTxn(f"/n{c}", b"", None, False, c),
        )
        for c in range(1, n + 1)
    ]


def test_trunc_truncates_the_log_and_rolls_back_in_place() -> None:
    lr = _learner(accepted=1, current=1)
    for txn in _creates(9):
        lr.db.apply(txn)  # applied by this database: undoable
    lr.start(0.0)
    lr.receive(_leaderinfo(2), 0.0)
    assert lr.receive(QuorumPacket(PacketType.TRUNC, make_zxid(1, 6)), 0.0) == [
        Truncate(make_zxid(1, 6))
    ]
    assert lr.last_logged_zxid == make_zxid(1, 6)
    assert lr.tree.last_processed_zxid == make_zxid(1, 6)
    assert lr.tree.get("/n6") is not None and lr.tree.get("/n7") is None


def test_trunc_beyond_what_memory_can_undo_asks_for_a_reload() -> None:
    tree = DataTree()
    for txn in _creates(9):
        tree.apply(txn)  # replayed before the database existed (start-up): no undo
    lr = _learner(accepted=1, current=1, tree=tree)
    lr.start(0.0)
    lr.receive(_leaderinfo(2), 0.0)
    acts = lr.receive(QuorumPacket(PacketType.TRUNC, make_zxid(1, 6)), 0.0)
    assert acts[0] == Truncate(make_zxid(1, 6))
    assert acts[-1] == Failed(f"cannot roll back to 0x{make_zxid(1, 6):x} in memory; reloading")
    assert lr.core.role is Role.RELOADING


def test_unexpected_sync_packet_fails() -> None:
    lr = _learner()
    lr.start(0.0)
    lr.receive(_leaderinfo(1), 0.0)
    (a,) = lr.receive(QuorumPacket(PacketType.UPTODATE, -1), 0.0)
    assert isinstance(a, Failed)


def test_proposals_before_newleader_are_logged_after_the_snapshot_and_current_epoch() -> None:
    # 3.8 (Learner#syncWithLeader at NEWLEADER): takeSnapshot, setCurrentEpoch, then log
    # the proposals received during the sync.  Logged before currentEpoch is written, a
    # proposal of the new epoch makes a learner stopped in between fail its next start
    # ("The current epoch, 1, is older than the last zxid, 0x200000001").
    lr = _learner(accepted=1, current=1)
    for txn in _creates(9):
        lr.db.apply(txn)
    lr.start(0.0)
    lr.receive(_leaderinfo(2), 0.0)
    lr.receive(QuorumPacket(PacketType.TRUNC, make_zxid(1, 6)), 0.0)  # a snapshot follows
    header = TxnHeader(1, 7, make_zxid(2, 1), 0, OpCode.CREATE)
    proposal = Txn(header, CreateTxn("/e2", b"", (), False, 7))
    packet = QuorumPacket(PacketType.PROPOSAL, make_zxid(2, 1), encode_txn(proposal))
    assert lr.receive(packet, 0.0) == []
    acts = lr.receive(QuorumPacket(PacketType.NEWLEADER, make_zxid(2, 0), b"cfg"), 0.0)
    snap = acts.index(TakeSnapshot(make_zxid(1, 6)))
    epoch = acts.index(PersistCurrentEpoch(2))
    logged = acts.index(AppendTxns((proposal,)))
    assert snap < epoch < logged
    assert acts[-1] == Send(QuorumPacket(PacketType.ACK, make_zxid(2, 0)))
