"""Election-port codec: the receiver rules of spec sections 1.3, 1.4, 2 and 4."""

from __future__ import annotations

import struct

import pytest

from zkquorum.wire.election import (
    PROTOCOL_VERSION_V1,
    PROTOCOL_VERSION_V2,
    DroppedNotification,
    ElectionAddress,
    ElectionConnectionDecoder,
    InitialMessage,
    Notification,
    ServerState,
    decode_initial_message,
    decode_notification,
    decode_notification_frame,
    encode_frame,
    encode_initial_message,
    encode_notification,
    encode_notification_frame,
    parse_election_address,
)
from zkquorum.wire.errors import ElectionProtocolError, ProtocolError
from zkquorum.wire.reader import CLOSED, NEED_DATA

CONFIG = "server.1=127.0.0.1:28881:38881:participant\nversion=0"


def initial_bytes(version: int, sid: int, text: bytes) -> bytes:
    return struct.pack(">qqi", version, sid, len(text)) + text


# -- initial message -------------------------------------------------------------------


def test_observed_v1_handshake_bytes() -> None:
    # spec 1.3 [observed]: sid 2 at 127.0.0.1:16002, 35 bytes.
    raw = bytes.fromhex("ffffffffffff000000000000000000020000000f") + b"127.0.0.1:16002"
    msg = decode_initial_message(raw)
    assert msg == InitialMessage(PROTOCOL_VERSION_V1, 2, ("127.0.0.1:16002",))
    assert encode_initial_message(msg) == raw
    assert msg.connect_back() == (ElectionAddress("127.0.0.1", 16002, False),)


def test_v2_multi_address_and_v1_with_a_list() -> None:
    text = b"127.0.0.2:16032|127.0.0.1:16002"
    for version in (PROTOCOL_VERSION_V2, PROTOCOL_VERSION_V1):  # 3.8 parses both alike
        msg = decode_initial_message(initial_bytes(version, 3, text))
        assert msg.addresses == ("127.0.0.2:16032", "127.0.0.1:16002")
        assert encode_initial_message(msg) == initial_bytes(version, 3, text)


def test_old_style_initial_message_is_a_bare_sid() -> None:
    msg = decode_initial_message(struct.pack(">q", 7))
    assert msg == InitialMessage(None, 7, ())
    assert encode_initial_message(msg) == struct.pack(">q", 7)
    assert msg.connect_back() == ()


def test_wildcards_are_flagged_and_left_out_of_connect_back() -> None:
    msg = decode_initial_message(
        initial_bytes(PROTOCOL_VERSION_V2, 4, b"0.0.0.0:3888|[::]:3889|[::1]:3890")
    )
    assert [e.wildcard for e in msg.endpoints()] == [True, True, False]
    assert msg.connect_back() == (ElectionAddress("::1", 3890, False),)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (struct.pack(">q", -5) + b"\0" * 12, "unrecognized protocol version"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b""), "unreasonable address length 0"),
        (struct.pack(">qqi", PROTOCOL_VERSION_V1, 1, 2049), "unreasonable address length 2049"),
        (struct.pack(">qqi", PROTOCOL_VERSION_V1, 1, -1), "unreasonable address length -1"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"127.0.0.1"), "badly formed"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"a:1:2"), "badly formed"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"127.0.0.1:x"), "bad port number"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"127.0.0.1:70000"), "port out of range"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"[::1"), "no matching"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"[::1]:"), "doesn't have a port"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"a:1||b:2"), "empty address"),
        (initial_bytes(PROTOCOL_VERSION_V1, 1, b"\xff:1"), "not UTF-8"),
    ],
)
def test_initial_message_receiver_checks(raw: bytes, reason: str) -> None:
    with pytest.raises(ElectionProtocolError, match=reason) as info:
        decode_initial_message(raw)
    assert info.value.offset is not None


def test_address_length_2048_is_accepted() -> None:
    host = "h" * (2048 - len(":1"))
    msg = decode_initial_message(initial_bytes(PROTOCOL_VERSION_V1, 1, f"{host}:1".encode()))
    assert msg.endpoints() == (ElectionAddress(host, 1, False),)


def test_java_quirks_of_get_host_and_port() -> None:
    # String#split drops trailing empty parts, so "host:80:" is host:80 in 3.8.
    assert parse_election_address("h:80:") == ElectionAddress("h", 80, False)
    assert parse_election_address("[fe80::1%eth0]:9") == ElectionAddress("fe80::1%eth0", 9, False)
    assert parse_election_address("h:+80").port == 80


def test_encoder_rejects_what_a_receiver_would() -> None:
    with pytest.raises(ValueError):
        encode_initial_message(InitialMessage(PROTOCOL_VERSION_V1, 1, ()))
    with pytest.raises(ValueError):
        encode_initial_message(InitialMessage(PROTOCOL_VERSION_V1, 1, ("h:99999",)))
    with pytest.raises(ValueError):
        encode_initial_message(InitialMessage(None, -1, ()))


# -- notifications ---------------------------------------------------------------------


def payload(state: int, leader: int, zxid: int, epoch: int, *rest: bytes) -> bytes:
    return struct.pack(">iqqq", state, leader, zxid, epoch) + b"".join(rest)


def test_version_2_layout_round_trip() -> None:
    n = Notification(ServerState.LOOKING, 2, 0x100000005, 1, 1, 2, CONFIG)
    raw = encode_notification(n)
    assert raw[:44] == payload(0, 2, 0x100000005, 1, struct.pack(">qii", 1, 2, len(CONFIG)))
    assert raw[44:] == CONFIG.encode()
    assert decode_notification(raw) == n


def test_28_bytes_derives_peer_epoch_from_zxid() -> None:
    assert decode_notification(payload(1, 3, 0x500000007, 9)) == Notification(
        ServerState.FOLLOWING, 3, 0x500000007, 9, 5, 0, None
    )


def test_negative_zxid_peer_epoch_is_an_arithmetic_shift() -> None:
    n = decode_notification(payload(0, 3, -(1 << 63), 1))
    assert isinstance(n, Notification) and n.peer_epoch == -(1 << 31)


def test_40_bytes_ignores_the_version_field() -> None:
    raw = payload(2, 3, 7, 1, struct.pack(">qi", 4, 1))
    assert decode_notification(raw) == Notification(ServerState.LEADING, 3, 7, 1, 4, 0, None)


@pytest.mark.parametrize("size", [0, 12, 27, 29, 36, 39])
def test_lengths_3_8_drops(size: int) -> None:
    raw = (payload(0, 1, 0, 1) + b"\0" * 20)[:size]
    out = decode_notification(raw)
    assert isinstance(out, DroppedNotification) and out.length == size and out.state is None


def test_version_1_with_trailing_bytes_has_no_config() -> None:
    raw = payload(0, 1, 0, 1, struct.pack(">qi", 0, 1), b"junk")
    assert decode_notification(raw) == Notification(ServerState.LOOKING, 1, 0, 1, 0, 1, None)
    # 41..43 bytes are fine while version <= 1 ...
    assert isinstance(decode_notification(raw[:41]), Notification)
    # ... but a version 2 message needs its configLength int.
    v2 = payload(0, 1, 0, 1, struct.pack(">qi", 0, 2), b"\0\0")
    assert isinstance(decode_notification(v2), DroppedNotification)


@pytest.mark.parametrize("length", [-1, 5, 1 << 30])
def test_bad_config_length_is_dropped(length: int) -> None:
    raw = payload(0, 1, 0, 1, struct.pack(">qii", 0, 2, length), b"abcd")
    out = decode_notification(raw)
    assert isinstance(out, DroppedNotification) and "config length" in out.reason


def test_empty_config_and_trailing_bytes_after_config() -> None:
    raw = payload(0, 1, 0, 1, struct.pack(">qii", 0, 2, 0), b"xyz")
    assert decode_notification(raw) == Notification(ServerState.LOOKING, 1, 0, 1, 0, 2, "")


def test_unknown_state_is_dropped_but_flagged() -> None:
    raw = payload(7, 1, 0, 1, struct.pack(">qii", 0, 2, 0))
    assert decode_notification(raw) == DroppedNotification("unknown state 7", 44, 7)


def test_config_that_is_not_utf8_keeps_the_vote_and_its_bytes() -> None:
    raw = payload(0, 1, 0, 1, struct.pack(">qii", 0, 2, 2), b"\xff\xfe")
    n = decode_notification(raw)
    assert isinstance(n, Notification) and n.leader == 1
    assert encode_notification(n) == raw


# -- frames and the incremental decoder ------------------------------------------------


@pytest.mark.parametrize("length", [0, -20, 524289, 0x7FFFFFFF, -(1 << 31)])
def test_bad_frame_lengths_close_the_connection(length: int) -> None:
    dec = ElectionConnectionDecoder(initial=False)
    dec.receive_data(struct.pack(">i", length))  # nothing after the length: no waiting
    with pytest.raises(ElectionProtocolError, match="unreasonable frame length") as info:
        dec.next_message()
    assert info.value.offset == 0
    with pytest.raises(ElectionProtocolError):  # sticky
        dec.next_message()


def test_two_gigabyte_frame_is_rejected_without_allocating() -> None:
    import tracemalloc

    dec = ElectionConnectionDecoder(initial=False)
    tracemalloc.start()
    try:
        dec.receive_data(b"\x7f\xff\xff\xff")
        with pytest.raises(ElectionProtocolError):
            dec.next_message()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_max_frame_is_accepted() -> None:
    n = Notification(ServerState.LOOKING, 1, 0, 1, 0, 2, "x" * (524288 - 44))
    frame = encode_notification_frame(n)
    assert decode_notification_frame(frame) == n
    with pytest.raises(ValueError):
        encode_frame(b"")


def test_connection_decoder_handshake_then_frames_in_one_write() -> None:
    n1 = Notification(ServerState.LOOKING, 3, 0, 1, 0, 2, CONFIG)
    n2 = Notification(ServerState.LEADING, 3, 1 << 32, 1, 1, 2, CONFIG)
    init = InitialMessage(PROTOCOL_VERSION_V1, 3, ("127.0.0.1:3888",))
    data = encode_initial_message(init) + encode_notification_frame(n1) + encode_frame(b"\0" * 12)
    data += encode_notification_frame(n2)
    for step in (1, 3, 7, len(data)):
        dec = ElectionConnectionDecoder()
        got: list[object] = []
        for i in range(0, len(data), step):
            dec.receive_data(data[i : i + step])
            while (m := dec.next_message()) is not NEED_DATA:
                got.append(m)
        dec.receive_data(b"")
        assert dec.next_message() is CLOSED
        assert got == [init, n1, DroppedNotification("short notification (12 bytes)", 12), n2]
        assert dec.offset == len(data)


def test_end_of_stream_inside_a_message_is_an_error() -> None:
    dec = ElectionConnectionDecoder(initial=False)
    dec.receive_data(b"\0\0\0\x2c" + b"\0" * 10)
    assert dec.next_message() is NEED_DATA
    dec.receive_data(b"")
    with pytest.raises(ProtocolError, match="ended inside"):
        dec.next_message()
