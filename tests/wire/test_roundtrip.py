"""Hypothesis round trips: decode(encode(x)) == x for every message type, and the
incremental decoders give the same messages in any chunking."""

from __future__ import annotations

import dataclasses
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.wire.strategies import (
    initial_messages,
    ints,
    learner_infos,
    longs,
    notifications,
    packets,
    requests,
    sessions,
    snapshots,
    txns,
)
from zkquorum.wire import election as el
from zkquorum.wire import quorum as q
from zkquorum.wire import snapshot as sn
from zkquorum.wire import txn as tx
from zkquorum.wire.reader import CLOSED, NEED_DATA


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(initial_messages)
def test_initial_message(msg: el.InitialMessage) -> None:
    raw = el.encode_initial_message(msg)
    assert el.decode_initial_message(raw) == msg


@given(notifications)
def test_notification(n: el.Notification) -> None:
    assert el.decode_notification(el.encode_notification(n)) == n
    assert el.decode_notification_frame(el.encode_notification_frame(n)) == n


@given(packets)
def test_quorum_packet(p: q.QuorumPacket) -> None:
    assert q.decode_packet(q.encode_packet(p)) == p


@given(learner_infos)
def test_learner_info(info: q.LearnerInfo) -> None:
    assert q.decode_learner_info(q.encode_learner_info(info)) == info


@given(ints, longs, st.booleans(), st.text(max_size=200), sessions, requests)
def test_small_payloads(
    i: int, n: int, valid: bool, config: str, table: tuple[sn.Session, ...], req: q.RequestHeader
) -> None:
    assert q.decode_int_payload(q.encode_int_payload(i)) == i  # LEADERINFO, ACKEPOCH
    assert q.decode_long_payload(q.encode_long_payload(n)) == n  # COMMITANDACTIVATE
    assert q.decode_config_payload(q.encode_config_payload(config)) == config  # NEWLEADER
    assert q.decode_ping_sessions(q.encode_ping_sessions(table)) == table  # PING
    assert q.decode_revalidate_request(q.encode_revalidate_request(n, i)) == (n, i)
    assert q.decode_revalidate_reply(q.encode_revalidate_reply(n, valid)) == (n, valid)
    assert q.decode_request(q.encode_request(req)) == req


@given(txns())
def test_txn(t: tx.Txn) -> None:
    raw = tx.encode_txn(t)
    decoded = tx.decode_txn(raw)
    assert decoded == t
    assert decoded.raw == raw  # kept: re-encoding it (a log append, a DIFF) costs nothing
    assert tx.encode_txn(decoded) is decoded.raw
    assert tx.encode_txn(dataclasses.replace(decoded, raw=None)) == raw
    assert q.decode_inform_and_activate(q.encode_inform_and_activate(7, t)) == (7, t)


@given(snapshots())
@settings(max_examples=50)
def test_snapshot(s: sn.Snapshot) -> None:
    assert sn.decode_snapshot(sn.encode_snapshot(s)) == s


@given(
    st.booleans(),
    initial_messages,
    st.lists(notifications | st.binary(min_size=1, max_size=50), max_size=5),
    st.lists(st.integers(0, 10_000), max_size=20),
)
def test_election_stream_any_chunking(
    with_initial: bool,
    init: el.InitialMessage,
    frames: list[el.Notification | bytes],
    cuts: list[int],
) -> None:
    data = el.encode_initial_message(init) if with_initial else b""
    expected: list[object] = [init] if with_initial else []
    for f in frames:
        if isinstance(f, bytes):
            data += el.encode_frame(f)
            expected.append(el.decode_notification(f))
        else:
            data += el.encode_notification_frame(f)
            expected.append(f)
    dec = el.ElectionConnectionDecoder(initial=with_initial)
    got: list[object] = []
    for piece in chunked(data, cuts):
        dec.receive_data(piece)
        while (m := dec.next_message()) is not NEED_DATA:
            got.append(m)
    dec.receive_data(b"")
    assert dec.next_message() is CLOSED
    assert got == expected


@given(
    st.lists(packets.filter(lambda p: p.type != q.PacketType.SNAP) | snapshots(), max_size=6),
    st.lists(st.integers(0, 100_000), max_size=30),
)
@settings(max_examples=60)
def test_quorum_stream_any_chunking(
    items: list[q.QuorumPacket | sn.Snapshot], cuts: list[int]
) -> None:
    data = b""
    expected: list[object] = []
    for item in items:
        if isinstance(item, sn.Snapshot):
            data += q.encode_snap_sync(5, item)
            expected += [q.QuorumPacket(q.PacketType.SNAP, 5), item, sn.SnapshotSignature()]
        else:
            data += q.encode_packet(item)
            expected.append(item)
    dec = q.QuorumStreamDecoder()
    got: list[object] = []
    for piece in chunked(data, cuts):
        dec.receive_data(piece)
        while (m := dec.next_message()) is not NEED_DATA:
            got.append(m)
    dec.receive_data(b"")
    assert dec.next_message() is CLOSED
    assert got == expected
