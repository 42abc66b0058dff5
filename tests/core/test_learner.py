"""The pure Learner: timeouts, epochs, PINGs during sync, observers, TRUNC."""

from __future__ import annotations

from zkquorum.core.zab import Failed, PersistAcceptedEpoch, Send, TruncateLog

from zkquorum.core.datatree import DataTree
from zkquorum.core.learner import Learner, LearnerSettings
from zkquorum.wire.quorum import PacketType, QuorumPacket, encode_int_payload, encode_packet
from zkquorum.wire.zxid import make_zxid


def _learner(accepted: int = 0, current: int = 0, observer: bool = False) -> Learner:
    s = LearnerSettings(sid=3, tick_time_ms=1000, init_limit=10, sync_limit=5, observer=observer)
    return Learner(s, accepted_epoch=accepted, current_epoch=current, tree=DataTree())


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


def test_trunc_asks_for_a_truncated_log_and_a_reloaded_tree() -> None:
    lr = _learner(accepted=1, current=1)
    lr.tree.last_processed_zxid = make_zxid(1, 9)
    lr.last_logged_zxid = make_zxid(1, 9)
    lr.start(0.0)
    lr.receive(_leaderinfo(2), 0.0)
    assert lr.receive(QuorumPacket(PacketType.TRUNC, make_zxid(1, 6)), 0.0) == [
        TruncateLog(make_zxid(1, 6))
    ]
    lr.replace_tree(DataTree())
    assert lr.last_logged_zxid == make_zxid(1, 6)


def test_unexpected_sync_packet_fails() -> None:
    lr = _learner()
    lr.start(0.0)
    lr.receive(_leaderinfo(1), 0.0)
    (a,) = lr.receive(QuorumPacket(PacketType.UPTODATE, -1), 0.0)
    assert isinstance(a, Failed)
