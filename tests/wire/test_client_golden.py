"""Every client-port frame of the 3.8.0 captures decodes and re-encodes to the same bytes.

``tests/testdata/vectors/CLIENT-README.md`` describes the captures (``client-ops``: one
standalone server, 8 connections; ``quorum-writes``: a 3-server ensemble, kazoo on a
follower and on the leader).  Replies are paired with requests by xid per connection, as a
client does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TypeVar

import pytest

from tests.vectors import VECTORS
from zkquorum.wire import client as wc
from zkquorum.wire import client_records as cr
from zkquorum.wire.pcap import Direction, parse_pcap, reassemble, tcp_segments
from zkquorum.wire.quorum import (
    PacketType,
    QuorumMessage,
    QuorumPacket,
    QuorumStreamDecoder,
    decode_request,
)
from zkquorum.wire.reader import CLOSED, NEED_DATA, StreamDecoder
from zkquorum.wire.txn import OpCode

CLIENT_PORTS = (21811, 21812, 21813)
QUORUM_PORTS = (28881, 28882, 28883)
CAPTURES = ("client-ops", "quorum-writes")
OVERSIZE = 1_048_633
"""client-ops step 75: the length field of the create of 1 048 576 bytes."""

# kazoo writes an empty string as null: the id of make_acl("auth", "")
NULL_AUTH_ID = b"\0\0\0\x04auth\xff\xff\xff\xff"

M = TypeVar("M")


@dataclass(frozen=True)
class Conversation:
    capture: str
    index: int
    to_server: bytes
    to_client: bytes


@dataclass(frozen=True)
class Decoded:
    requests: tuple[tuple[wc.RequestMessage, bytes], ...]
    """Each message with the bytes of its frame."""
    replies: tuple[tuple[wc.ReplyMessage, bytes], ...]
    request_error: wc.ClientProtocolError | None


def _stream(direction: Direction) -> bytes:
    chunks, hole = direction.chunks()
    assert hole is None
    return b"".join(c.data for c in chunks)


@functools.cache
def conversations(capture: str, ports: tuple[int, ...] = CLIENT_PORTS) -> tuple[Conversation, ...]:
    pcap = parse_pcap((VECTORS / f"{capture}.pcap").read_bytes())
    return tuple(
        Conversation(capture, c.index, _stream(c.to_acceptor), _stream(c.to_initiator))
        for c in reassemble(tcp_segments(pcap))
        if c.acceptor[1] in ports
    )


def _drain(dec: StreamDecoder[M], data: bytes, out: list[tuple[M, bytes]]) -> None:
    """Decode all of ``data`` into ``out``; a protocol error propagates."""
    dec.receive_data(data)
    dec.receive_data(b"")
    while True:
        start = dec.offset
        msg = dec.next_message()
        if msg is NEED_DATA or msg is CLOSED:
            return
        out.append((msg, data[start : dec.offset]))


@functools.cache
def decode(conv: Conversation) -> Decoded:
    requests: list[tuple[wc.RequestMessage, bytes]] = []
    error = None
    try:
        _drain(wc.RequestStreamDecoder(), conv.to_server, requests)
    except wc.ClientProtocolError as exc:
        error = exc
    pd = wc.ReplyStreamDecoder()
    for msg, _ in requests:
        if isinstance(msg, wc.ClientRequest):
            pd.expect(msg.xid, msg.op)
    replies: list[tuple[wc.ReplyMessage, bytes]] = []
    _drain(pd, conv.to_client, replies)
    assert pd.pending == 0
    return Decoded(tuple(requests), tuple(replies), error)


def all_conversations() -> list[Conversation]:
    return [conv for name in CAPTURES for conv in conversations(name)]


def requests_of(capture: str) -> list[wc.ClientRequest]:
    return [
        m
        for conv in conversations(capture)
        for m, _ in decode(conv).requests
        if isinstance(m, wc.ClientRequest)
    ]


def replies_of(capture: str) -> list[wc.ClientReply]:
    return [
        m
        for conv in conversations(capture)
        for m, _ in decode(conv).replies
        if isinstance(m, wc.ClientReply)
    ]


def test_the_captures_hold_the_expected_connections() -> None:
    assert len(conversations("client-ops")) == 8
    assert len(conversations("quorum-writes")) == 2


@pytest.mark.parametrize("conv", all_conversations(), ids=lambda c: f"{c.capture}#{c.index}")
def test_every_request_frame_decodes_and_re_encodes(conv: Conversation) -> None:
    decoded = decode(conv)
    # the only error is the oversize request that closed client-ops' first connection
    if conv.capture == "client-ops" and conv.index == 0:
        assert decoded.request_error is not None
    else:
        assert decoded.request_error is None
    first, *rest = decoded.requests
    assert isinstance(first[0], cr.ConnectRequest)
    assert len(first[1]) == 4 + 45 and wc.encode_connect_request(first[0]) == first[1]
    assert first[0].read_only is False
    assert rest
    for msg, raw in rest:
        assert isinstance(msg, wc.ClientRequest)
        assert wc.encode_client_request(msg) == raw
        assert msg.record is not None or msg.op in (
            OpCode.PING,
            OpCode.CLOSE_SESSION,
            OpCode.WHO_AM_I,
        ), msg
        assert not isinstance(msg.record, wc.MalformedRequest), msg
        if msg.record is not None:
            record: cr.Record = msg.record
            again = wc.encode_request(msg.xid, msg.op, record)
            assert again == raw


@pytest.mark.parametrize("conv", all_conversations(), ids=lambda c: f"{c.capture}#{c.index}")
def test_every_reply_frame_decodes_and_re_encodes(conv: Conversation) -> None:
    first, *rest = decode(conv).replies
    assert isinstance(first[0], cr.ConnectResponse)
    assert len(first[1]) == 4 + 37 and wc.encode_connect_response(first[0]) == first[1]
    for msg, raw in rest:
        assert isinstance(msg, wc.ClientReply)
        assert msg.raw == b"", msg
        assert wc.encode_client_reply(msg) == raw
        if msg.err != cr.ErrorCode.OK and msg.xid != cr.NOTIFICATION_XID:
            assert len(raw) == 4 + 16


def test_a_null_string_reads_as_null_and_re_encodes_as_null() -> None:
    found = [
        (msg, raw)
        for name in CAPTURES
        for conv in conversations(name)
        for msg, raw in decode(conv).requests
        if NULL_AUTH_ID in raw
    ]
    assert len(found) == 1  # client-ops step 12
    msg, raw = found[0]
    assert isinstance(msg, wc.ClientRequest) and isinstance(msg.record, cr.CreateRequest)
    assert msg.record.acl is not None
    (acl,) = msg.record.acl
    assert acl.id.scheme == "auth" and acl.id.id == "" and cr.is_null(acl.id.id)
    assert wc.encode_request(msg.xid, msg.op, msg.record) == raw


def test_the_oversize_request_is_a_len_error_at_its_length() -> None:
    conv = conversations("client-ops")[0]
    decoded = decode(conv)
    error = decoded.request_error
    assert error is not None and "Len error" in error.reason and str(OVERSIZE) in error.reason
    frames_end = sum(len(raw) for _, raw in decoded.requests)
    assert error.offset == frames_end
    assert conv.to_server[frames_end : frames_end + 4] == OVERSIZE.to_bytes(4, "big")
    # the create of 1 048 000 bytes just below the limit decoded
    big = [
        m for m in requests_of("client-ops") if m.op == OpCode.CREATE and len(m.body) > 1_000_000
    ]
    assert len(big) == 1 and len(big[0].body) == 1_048_054 - 8
    # a larger jute.maxbuffer takes the frame
    dec = wc.RequestStreamDecoder(max_buffer=OVERSIZE)
    out: list[tuple[wc.RequestMessage, bytes]] = []
    _drain(dec, conv.to_server[: frames_end + 4 + OVERSIZE], out)
    last = out[-1][0]
    assert isinstance(last, wc.ClientRequest) and isinstance(last.record, cr.CreateRequest)
    assert last.record.data is not None and len(last.record.data) == 1_048_576


def test_the_failing_multi_reply() -> None:
    failed = [
        m
        for m in replies_of("client-ops")
        if isinstance(m.response, cr.MultiResponse)
        and any(isinstance(r, cr.ErrorResult) for r in m.response.results)
        and m.op == OpCode.MULTI
    ]
    assert len(failed) == 1
    reply = failed[0]
    assert reply.err == 0
    assert reply.response == cr.MultiResponse(
        (cr.ErrorResult(0), cr.ErrorResult(-103), cr.ErrorResult(-2))
    )


def test_add_watch_replies_are_a_4_byte_error_response() -> None:
    replies = [m for m in replies_of("client-ops") if m.op == OpCode.ADD_WATCH]
    assert len(replies) == 2
    for reply in replies:
        assert reply.response == cr.ErrorResponse(0)
        assert len(wc.encode_client_reply(reply)) == 4 + 16 + 4


def test_multi_read_who_am_i_and_the_rest() -> None:
    replies = replies_of("client-ops")
    (multi_read,) = [m for m in replies if m.op == OpCode.MULTI_READ]
    assert isinstance(multi_read.response, cr.MultiResponse)
    assert cr.ErrorResult(-101) in multi_read.response.results
    who = [m.response for m in replies if m.op == OpCode.WHO_AM_I]
    assert (
        cr.WhoAmIResponse((cr.ClientInfo("ip", "127.0.0.1"), cr.ClientInfo("digest", "user")))
        in who
    )
    ops = {m.op for m in requests_of("client-ops")}
    for op in (
        OpCode.CREATE_CONTAINER,
        OpCode.CREATE_TTL,
        OpCode.CHECK_WATCHES,
        OpCode.REMOVE_WATCHES,
        OpCode.GET_EPHEMERALS,
        OpCode.GET_ALL_CHILDREN_NUMBER,
        OpCode.SET_WATCHES,
        OpCode.AUTH,
        OpCode.SYNC,
        OpCode.GET_CHILDREN2,
        OpCode.SET_ACL,
    ):
        assert op in ops, op


def test_set_watches_on_re_attach() -> None:
    conv = conversations("client-ops")[5]
    decoded = decode(conv)
    (set_watches,) = [
        m
        for m, _ in decoded.requests
        if isinstance(m, wc.ClientRequest) and m.op == OpCode.SET_WATCHES
    ]
    assert set_watches.xid == cr.SET_WATCHES_XID
    assert isinstance(set_watches.record, cr.SetWatches)
    assert set_watches.record.relative_zxid == 0x2F
    kinds = [
        (m.xid, m.response.type if isinstance(m.response, cr.WatcherEvent) else None)
        for m, _ in decoded.replies
        if isinstance(m, wc.ClientReply)
    ]
    changed = [
        cr.EventType.NODE_DATA_CHANGED,
        cr.EventType.NODE_CREATED,
        cr.EventType.NODE_CHILDREN_CHANGED,
    ]
    at = kinds.index((cr.SET_WATCHES_XID, None))
    assert [t for _, t in kinds[at - 3 : at]] == changed


def test_every_request_packet_of_the_quorum_decodes() -> None:
    bodies = []
    for conv in conversations("quorum-writes", QUORUM_PORTS):
        packets: list[tuple[QuorumMessage, bytes]] = []
        _drain(QuorumStreamDecoder(snapshots=False), conv.to_server, packets)
        for packet, _ in packets:
            if isinstance(packet, QuorumPacket) and packet.type == PacketType.REQUEST:
                bodies.append(decode_request(packet.data))
    assert len(bodies) == 19
    ops = set()
    for request in bodies:
        record = cr.decode_request_body(request.type, request.request)
        assert record is not None or request.type == OpCode.CLOSE_SESSION
        if record is not None:
            assert record.encode() == request.request
        ops.add(request.type)
    assert {OpCode.CREATE_SESSION, OpCode.MULTI, OpCode.CREATE_TTL, OpCode.CLOSE_SESSION} <= ops
