"""Quorum-port codec: packets, payloads, txns, the SNAP stream and the stream decoder."""

from __future__ import annotations

import struct

import pytest

from tests.wire.conftest import load_vectors
from zkquorum.wire import quorum as q
from zkquorum.wire import snapshot as sn
from zkquorum.wire import txn as tx
from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.jute import ACL, Id, StatPersisted, encode_ustring, read_ustring
from zkquorum.wire.reader import CLOSED, NEED_DATA, Reader

WORLD_READ = (ACL(1, Id("world", "anyone")),)
OPEN = (ACL(31, Id("world", "anyone")),)


def test_spec_hex_dumps() -> None:
    # quorum-config-and-zab.md B2/B3 [live]
    fi = bytes.fromhex(
        "0000000b0000000000000000000000140000000000000003000100000000000000000000ffffffff"
    )
    p = q.decode_packet(fi)
    assert p == q.QuorumPacket(q.PacketType.FOLLOWERINFO, 0, p.data, None)
    assert q.decode_learner_info(p.data) == q.LearnerInfo(3, 0x10000, 0)
    ack = bytes.fromhex("00000012000000010000000300000004ffffffffffffffff")
    p = q.decode_packet(ack)
    assert (p.type, p.zxid, q.decode_int_payload(p.data)) == (
        q.PacketType.ACKEPOCH,
        0x100000003,
        -1,
    )
    ping_reply = bytes.fromhex("00000005000000010000000600000000ffffffff")
    assert q.decode_ping_sessions(q.decode_packet(ping_reply).data) == ()
    assert q.encode_packet(q.QuorumPacket(q.PacketType.PING, 0x100000006, b"")) == ping_reply
    uptodate = bytes.fromhex("0000000cffffffffffffffffffffffffffffffff")
    assert q.decode_packet(uptodate) == q.QuorumPacket(q.PacketType.UPTODATE, -1, None, None)


def test_all_packet_types_have_their_names() -> None:
    assert [t.value for t in q.PacketType] == list(range(1, 20))
    assert q.packet_type_name(10) == "NEWLEADER" and q.packet_type_name(99) == "UNKNOWN99"
    p = q.decode_packet(q.encode_packet(q.QuorumPacket(99, 5)))
    assert p.type == 99


def test_payload_helpers() -> None:
    assert q.decode_revalidate_request(q.encode_revalidate_request(0x1234, 30000)) == (
        0x1234,
        30000,
    )
    assert q.decode_revalidate_reply(q.encode_revalidate_reply(0x1234, True)) == (0x1234, True)
    assert q.decode_long_payload(q.encode_long_payload(3)) == 3
    t = tx.Txn(tx.TxnHeader(1, 2, 3, 4, tx.OpCode.SET_DATA), tx.SetDataTxn("/a", b"x", 1))
    assert q.decode_inform_and_activate(q.encode_inform_and_activate(2, t)) == (2, t)
    with pytest.raises(QuorumProtocolError):
        q.decode_ping_sessions(b"\0" * 13)
    with pytest.raises(QuorumProtocolError):
        q.decode_learner_info(b"\0" * 12)
    with pytest.raises(QuorumProtocolError):
        q.decode_int_payload(None)
    with pytest.raises(QuorumProtocolError):
        q.decode_config_payload(b"\xff")


def test_unknown_and_malformed_txns_stay_raw() -> None:
    header = struct.pack(">qiqqi", 1, 2, 3, 4, 999)
    t = tx.decode_txn(header + b"abc")
    assert t.record == tx.RawRecord(b"abc") and tx.encode_txn(t) == header + b"abc"
    # A pre-3.5 CreateTxnV0 (no parentCVersion): not an error either.
    v0 = encode_ustring("/a") + struct.pack(">i", -1) + struct.pack(">i", -1) + b"\x00"
    t = tx.decode_txn(struct.pack(">qiqqi", 1, 2, 3, 4, 1) + v0)
    assert isinstance(t.record, tx.RawRecord) and t.record.data == v0
    with pytest.raises(QuorumProtocolError, match="32-byte header"):
        tx.decode_txn(b"\0" * 31)


def test_txn_digest_and_trailing_bytes() -> None:
    h = tx.TxnHeader(1, 2, 3, 4, tx.OpCode.DELETE)
    t = tx.Txn(h, tx.DeleteTxn("/x"), tx.TxnDigest(2, 0x51C6D660), b"\x01\x02")
    assert tx.decode_txn(tx.encode_txn(t)) == t
    assert tx.decode_txn(tx.encode_txn(tx.Txn(h, None))) == tx.Txn(h, None)


def test_ustring_cesu8_as_java_writes_it() -> None:
    raw = encode_ustring("a\U0001f600")
    assert raw == struct.pack(">i", 7) + b"a\xed\xa0\xbd\xed\xb8\x80"
    assert read_ustring(Reader(raw, QuorumProtocolError)) == "a\U0001f600"
    assert read_ustring(Reader(struct.pack(">i", 4) + "😀".encode(), QuorumProtocolError)) == "😀"


@pytest.mark.parametrize("length", [0x7FFFFFFF, 0x80000000, 2097151, -2])
def test_unreasonable_buffer_lengths_are_rejected_before_reading(length: int) -> None:
    dec = q.QuorumStreamDecoder()
    dec.receive_data(struct.pack(">iqI", 2, 1, length & 0xFFFFFFFF))
    with pytest.raises(QuorumProtocolError, match="unreasonable buffer length") as info:
        dec.next_message()
    assert info.value.offset == 12


def small_tree() -> dict[str, sn.TreeNode]:
    cfg = b"server.1=127.0.0.1:2888:3888:participant\nversion=0"
    return {
        "/": sn.TreeNode(b"", None, StatPersisted(cversion=1, pzxid=0x100000001)),
        "/zookeeper": sn.TreeNode(b""),
        "/zookeeper/config": sn.TreeNode(cfg, WORLD_READ, StatPersisted(version=-1, aversion=-1)),
        "/zookeeper/quota": sn.TreeNode(b""),
        "/app": sn.TreeNode(b"v", OPEN, StatPersisted(czxid=0x100000001, mzxid=0x100000001)),
        "/app/ü": sn.TreeNode(None, OPEN, StatPersisted(ephemeral_owner=0x1000)),
    }


def test_build_snapshot_orders_parents_first_and_caches_acls() -> None:
    snap = sn.build_snapshot(small_tree(), {0x1000: 30000})
    assert [n.path for n in snap.nodes] == [
        "",
        "/app",
        "/app/ü",
        "/zookeeper",
        "/zookeeper/config",
        "/zookeeper/quota",
    ]
    assert snap.acl_cache == (sn.AclCacheEntry(1, OPEN), sn.AclCacheEntry(2, WORLD_READ))
    assert [n.acl_id for n in snap.nodes] == [-1, 1, 1, -1, 2, -1]
    assert snap.sessions == (sn.Session(0x1000, 30000),)
    raw = sn.encode_snapshot(snap)
    assert sn.decode_snapshot(raw) == snap
    assert sn.snapshot_tree(snap) == small_tree()
    with pytest.raises(ValueError):
        sn.build_snapshot({"/": sn.TreeNode(), "/a/b": sn.TreeNode()})


def test_snap_sync_stream_as_a_java_leader_writes_it() -> None:
    vectors = load_vectors("snap-sync")
    msgs = [
        m for m in vectors["messages"] if m["conn"] == 9 and m["direction"] == "leader->learner"
    ]
    kinds = [m["kind"] for m in msgs]
    i = kinds.index("snapshot")
    captured = b"".join(bytes.fromhex(m["hex"]) for m in msgs[i - 1 : i + 2])
    snap = sn.decode_snapshot(bytes.fromhex(msgs[i]["hex"]))
    assert q.encode_snap_sync(0x100000000, snap) == captured
    # The fresh tree of a 3.8 leader, rebuilt from our own tree model: the same bytes.
    ours = sn.build_snapshot(sn.snapshot_tree(snap))
    assert q.encode_snap_sync(0x100000000, ours) == captured
    assert len(captured) == 20 + 533 + 14


def test_stream_decoder_snapshot_in_small_chunks() -> None:
    snap = sn.build_snapshot(small_tree())
    stream = (
        q.encode_packet(q.QuorumPacket(q.PacketType.DIFF, 0))
        + q.encode_snap_sync(0x100000001, snap)
        + q.encode_packet(q.QuorumPacket(q.PacketType.NEWLEADER, 1 << 32, b"cfg"))
    )
    dec = q.QuorumStreamDecoder()
    out: list[object] = []
    for i in range(0, len(stream), 5):
        dec.receive_data(stream[i : i + 5])
        while (m := dec.next_message()) is not NEED_DATA:
            out.append(m)
    dec.receive_data(b"")
    assert dec.next_message() is CLOSED
    assert out == [
        q.QuorumPacket(q.PacketType.DIFF, 0),
        q.QuorumPacket(q.PacketType.SNAP, 0x100000001),
        snap,
        sn.SnapshotSignature("BenWasHere"),
        q.QuorumPacket(q.PacketType.NEWLEADER, 1 << 32, b"cfg"),
    ]


def test_bad_signature_and_orphan_nodes() -> None:
    snap = sn.build_snapshot(small_tree())
    bad = q.encode_packet(q.QuorumPacket(15, 1)) + sn.encode_snapshot(snap) + encode_ustring("x")
    dec = q.QuorumStreamDecoder()
    dec.receive_data(bad)
    assert [type(dec.next_message()) for _ in range(2)] == [q.QuorumPacket, sn.Snapshot]
    with pytest.raises(QuorumProtocolError, match="missing signature"):
        dec.next_message()
    orphan = sn.Snapshot((), (), (sn.SnapshotNode("/a/b", b"", -1, StatPersisted()),))
    with pytest.raises(QuorumProtocolError, match="before its parent"):
        sn.decode_snapshot(sn.encode_snapshot(orphan))


def test_learner_direction_does_not_expect_snapshots() -> None:
    dec = q.QuorumStreamDecoder(snapshots=False)
    dec.receive_data(q.encode_packet(q.QuorumPacket(15, 1)) * 2)
    assert dec.next_message() == q.QuorumPacket(15, 1)
    assert dec.next_message() == q.QuorumPacket(15, 1)
