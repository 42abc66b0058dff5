"""The client port's stream decoders: four-letter words, framing limits, odd ops, pairing."""

from __future__ import annotations

import struct

import pytest

from zkquorum.runtime import fourletter
from zkquorum.wire import client as wc
from zkquorum.wire import client_records as cr
from zkquorum.wire.reader import CLOSED, NEED_DATA
from zkquorum.wire.txn import OpCode

CONNECT = wc.encode_connect_request(cr.ConnectRequest(0, 0, 30_000, 0, bytes(16), False))


def messages(dec: wc.RequestStreamDecoder | wc.ReplyStreamDecoder, *pieces: bytes) -> list[object]:
    out: list[object] = []
    for piece in pieces:
        dec.receive_data(piece)
        while (m := dec.next_message()) is not NEED_DATA and m is not CLOSED:
            out.append(m)
    return out


def server(*pieces: bytes, max_buffer: int = wc.DEFAULT_MAX_BUFFER) -> list[object]:
    return messages(wc.RequestStreamDecoder(max_buffer=max_buffer), *pieces)


@pytest.mark.parametrize("word", sorted(wc.FOUR_LETTER_WORDS))
def test_a_four_letter_word_before_the_handshake(word: str) -> None:
    dec = wc.RequestStreamDecoder()
    want = wc.FourLetterWord(word, b"trailing" if word == "stmk" else None)
    assert messages(dec, word.encode(), b"trailing bytes", b"") == [want]
    assert dec.next_message() is CLOSED


def test_stmk_waits_for_its_8_byte_argument() -> None:
    dec = wc.RequestStreamDecoder()
    mask = (0x1F2).to_bytes(8, "big")
    assert messages(dec, b"stmk", mask[:3]) == []
    assert messages(dec, mask[3:]) == [wc.FourLetterWord("stmk", mask)]
    # a connection that ends before the 8 bytes gets no word (3.8's read fails)
    with pytest.raises(wc.ClientProtocolError, match="stream ended inside a message"):
        server(b"stmk", mask[:7], b"")


def test_the_words_are_those_the_server_answers() -> None:
    assert wc.FOUR_LETTER_WORDS == fourletter.KNOWN_WORDS


def test_telnet_close_and_unknown_words() -> None:
    assert server(bytes.fromhex("fff4fffd")) == [wc.FourLetterWord(wc.TELNET_CLOSE)]
    # an unknown word is a length far above jute.maxbuffer
    with pytest.raises(wc.ClientProtocolError, match="Len error: frame length 1633837924"):
        server(b"abcd")


def test_words_are_lengths_after_the_handshake() -> None:
    with pytest.raises(wc.ClientProtocolError, match="Len error") as info:
        server(CONNECT, b"ruok")
    assert info.value.offset == len(CONNECT)


def test_the_handshake_with_and_without_read_only() -> None:
    old = cr.ConnectRequest(0, 7, 4000, 0, bytes(16))
    (msg,) = server(wc.encode_connect_request(old))
    assert msg == old and len(wc.encode_connect_request(old)) == 4 + 44
    with pytest.raises(wc.ClientProtocolError, match="truncated ConnectRequest"):
        server(wc.frame(old.encode()[:30]))


@pytest.mark.parametrize("length", [-1, -(2**31), wc.DEFAULT_MAX_BUFFER + 1, 2**31 - 1])
def test_a_bad_length_closes_as_soon_as_its_four_bytes_are_in(length: int) -> None:
    head = struct.pack(">i", length)
    with pytest.raises(wc.ClientProtocolError, match="Len error"):
        server(CONNECT, head)
    with pytest.raises(wc.ClientProtocolError, match="Len error"):
        server(head + b"x")  # also as the first frame (unless it spells a word)
    with pytest.raises(wc.ClientProtocolError, match="Len error"):
        messages(wc.ReplyStreamDecoder(connected=True), head)


def test_the_limit_itself_is_accepted_and_configurable() -> None:
    dec = wc.RequestStreamDecoder()
    assert messages(dec, CONNECT, struct.pack(">iii", wc.DEFAULT_MAX_BUFFER, 1, OpCode.SET_DATA))
    assert dec.next_message() is NEED_DATA  # waiting for the rest of the frame
    # the limit holds for every frame, the ConnectRequest's (45 bytes) included
    big = wc.frame(struct.pack(">ii", 1, OpCode.SYNC) + bytes(37))
    assert len(server(CONNECT, big, max_buffer=45)) == 2
    with pytest.raises(wc.ClientProtocolError, match=r"jute\.maxbuffer is 44") as info:
        server(CONNECT, big, max_buffer=44)
    assert info.value.offset == 0


def test_requests_keep_their_raw_body() -> None:
    record = cr.SetDataRequest("/a", b"data", -1)
    frame = wc.encode_request(5, OpCode.SET_DATA, record)
    _, request = server(CONNECT, frame)
    assert request == wc.ClientRequest(5, OpCode.SET_DATA, record.encode(), record)
    assert wc.encode_client_request(request) == frame
    assert wc.decode_client_request(frame[4:]) == request


def test_bodyless_and_unknown_ops() -> None:
    _, ping, close, who, check, unknown, notification = server(
        CONNECT,
        wc.encode_request(-2, OpCode.PING),
        wc.encode_request(1, OpCode.CLOSE_SESSION),
        wc.encode_request(2, OpCode.WHO_AM_I),
        wc.encode_request(3, OpCode.CHECK, cr.CheckVersionRequest("/a", 1)),
        wc.frame(struct.pack(">ii", 4, 999) + b"whatever"),
        wc.encode_request(5, OpCode.NOTIFICATION),
    )
    for msg in (ping, close, who):
        assert isinstance(msg, wc.ClientRequest) and msg.record is None
        assert cr.is_valid_request_op(msg.op)
    assert isinstance(check, wc.ClientRequest)
    assert check.record == cr.CheckVersionRequest("/a", 1)
    # 3.8 answers these UNIMPLEMENTED and closes; the decoder only reports them
    for msg in (unknown, notification):
        assert isinstance(msg, wc.ClientRequest) and msg.record is None
        assert not cr.is_valid_request_op(msg.op)
    assert (
        isinstance(unknown, wc.ClientRequest) and unknown.op == 999 and unknown.body == b"whatever"
    )


def test_a_body_that_does_not_parse() -> None:
    _, request = server(CONNECT, wc.frame(struct.pack(">ii", 1, OpCode.GET_DATA) + b"\0\0\0\x09/a"))
    assert isinstance(request, wc.ClientRequest)
    assert isinstance(request.record, wc.MalformedRequest)  # 3.8: MARSHALLINGERROR
    assert "truncated GetDataRequest" in request.record.reason
    # auth is read by processPacket itself: a bad one closes the connection
    with pytest.raises(wc.ClientProtocolError, match="auth packet: truncated") as info:
        server(CONNECT, wc.frame(struct.pack(">ii", -4, OpCode.AUTH) + b"\0\0"))
    assert info.value.offset is not None and info.value.offset > len(CONNECT)
    with pytest.raises(wc.ClientProtocolError, match="shorter than its 8-byte header"):
        server(CONNECT, wc.frame(b"\0\0\0\x01"))


def test_the_stream_may_only_end_between_frames() -> None:
    dec = wc.RequestStreamDecoder()
    assert messages(dec, CONNECT, b"") == [cr.ConnectRequest(0, 0, 30_000, 0, bytes(16), False)]
    assert dec.next_message() is CLOSED
    with pytest.raises(wc.ClientProtocolError, match="stream ended inside a message"):
        server(CONNECT[:10], b"")


def test_byte_by_byte_is_the_same() -> None:
    stream = (
        CONNECT
        + wc.encode_request(1, OpCode.CREATE, cr.CreateRequest("/a", b"x", cr.OPEN_ACL_UNSAFE, 1))
        + wc.encode_request(-2, OpCode.PING)
    )
    assert server(*(stream[i : i + 1] for i in range(len(stream)))) == server(stream)


# -- the client side ---------------------------------------------------------------------

RESPONSE = cr.ConnectResponse(0, 4000, 0x100, bytes(16), False)
STAT = cr.Stat(1, 2, 3, 4, 5, 6, 7, 0, 3, 0, 2)


def test_replies_are_decoded_by_the_pending_op() -> None:
    dec = wc.ReplyStreamDecoder()
    dec.expect(1, OpCode.GET_DATA)
    dec.expect(2, OpCode.DELETE)
    dec.expect(cr.SET_WATCHES_XID, OpCode.SET_WATCHES)
    dec.expect(-2, OpCode.PING)  # ClientCnxn keeps no pending entry for pings and auth
    dec.expect(-4, OpCode.AUTH)
    assert dec.pending == 3
    event = cr.WatcherEvent(cr.EventType.NODE_CREATED, cr.KeeperState.SYNC_CONNECTED, "/a")
    got = messages(
        dec,
        wc.encode_connect_response(RESPONSE),
        wc.encode_notification(event),
        wc.encode_reply(cr.ReplyHeader(1, 9, 0), cr.GetDataResponse(b"abc", STAT)),
        wc.encode_ping_reply(9),
        wc.encode_reply(cr.ReplyHeader(-4, 0, 0)),
        wc.encode_reply(cr.ReplyHeader(2, 10, cr.ErrorCode.NONODE)),
        wc.encode_reply(cr.ReplyHeader(cr.SET_WATCHES_XID, 10, 0)),
    )
    assert got == [
        RESPONSE,
        wc.ClientReply(cr.ReplyHeader(-1, -1, 0), OpCode.NOTIFICATION, event),
        wc.ClientReply(cr.ReplyHeader(1, 9, 0), OpCode.GET_DATA, cr.GetDataResponse(b"abc", STAT)),
        wc.ClientReply(cr.ReplyHeader(-2, 9, 0), OpCode.PING, None),
        wc.ClientReply(cr.ReplyHeader(-4, 0, 0), OpCode.AUTH, None),
        wc.ClientReply(cr.ReplyHeader(2, 10, -101), OpCode.DELETE, None),
        wc.ClientReply(cr.ReplyHeader(-8, 10, 0), OpCode.SET_WATCHES, None),
    ]
    assert dec.pending == 0


def test_replies_out_of_order_or_unexpected() -> None:
    dec = wc.ReplyStreamDecoder(connected=True)
    dec.expect(1, OpCode.EXISTS)
    with pytest.raises(wc.ClientProtocolError, match=r"Xid out of order\. Got Xid 2"):
        messages(dec, wc.encode_reply(cr.ReplyHeader(2, 1, 0)))
    with pytest.raises(wc.ClientProtocolError, match="Nothing in the queue, but got 3"):
        messages(wc.ReplyStreamDecoder(connected=True), wc.encode_reply(cr.ReplyHeader(3, 1, 0)))
    with pytest.raises(wc.ClientProtocolError, match="shorter than its 16-byte header"):
        messages(wc.ReplyStreamDecoder(connected=True), wc.frame(bytes(12)))


def test_a_reply_body_that_does_not_parse() -> None:
    dec = wc.ReplyStreamDecoder(connected=True)
    dec.expect(1, OpCode.EXISTS)
    with pytest.raises(
        wc.ClientProtocolError, match="reply to exists: truncated ExistsResponse"
    ) as info:
        messages(dec, wc.encode_reply(cr.ReplyHeader(1, 1, 0), raw=bytes(20)))
    assert info.value.offset == 4 + 16 + 20
    dec = wc.ReplyStreamDecoder(connected=True)
    dec.expect(1, OpCode.DELETE)
    with pytest.raises(wc.ClientProtocolError, match="after a header-only reply"):
        messages(dec, wc.encode_reply(cr.ReplyHeader(1, 1, 0), raw=b"x"))


def test_an_unknown_op_keeps_its_reply_body() -> None:
    dec = wc.ReplyStreamDecoder(connected=True)
    dec.expect(1, 999)
    (reply,) = messages(dec, wc.encode_reply(cr.ReplyHeader(1, 1, 0), raw=b"abc"))
    assert reply == wc.ClientReply(cr.ReplyHeader(1, 1, 0), 999, None, b"abc")
    assert wc.encode_client_reply(reply) == wc.encode_reply(cr.ReplyHeader(1, 1, 0), raw=b"abc")
