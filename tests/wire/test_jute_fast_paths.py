"""The decoders' fast paths give what the general ones give: the open ACL list read
without parsing, UTF-8 without surrogates, a StatPersisted in one unpack."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.wire.strategies import packets
from zkquorum.wire.errors import ProtocolError
from zkquorum.wire.jute import (
    ACL,
    Id,
    StatPersisted,
    decode_ustring_bytes,
    encode_acl_list,
    encode_stat_persisted,
    read_acl,
    read_acl_list,
    read_stat_persisted,
    read_vector,
)
from zkquorum.wire.quorum import (
    PacketType,
    QuorumPacket,
    _read_packet,
    _read_plain_packet,
    encode_packet,
)
from zkquorum.wire.reader import Reader

ids = st.builds(Id, st.text(max_size=8), st.text(max_size=8))
acls = st.builds(ACL, st.integers(0, 31), ids)


@given(st.lists(acls, max_size=3), st.binary(max_size=4))
def test_acl_lists_read_the_same_either_way(acl: list[ACL], tail: bytes) -> None:
    raw = encode_acl_list(acl) + tail
    fast = Reader(raw, error=ProtocolError)
    slow = Reader(raw, error=ProtocolError)
    assert read_acl_list(fast) == read_vector(slow, read_acl) == tuple(acl)
    assert fast.pos == slow.pos == len(raw) - len(tail)


def test_the_open_acl_list_is_the_shared_constant() -> None:
    raw = encode_acl_list([ACL(31, Id("world", "anyone"))])
    first = read_acl_list(Reader(raw, error=ProtocolError))
    assert first is read_acl_list(Reader(raw, error=ProtocolError))
    assert first == (ACL(31, Id("world", "anyone")),)


@given(st.text())
def test_ustrings_decode_as_java_writes_them(text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    assert decode_ustring_bytes(raw) == raw.decode("utf-8", "surrogatepass").encode(
        "utf-16-be", "surrogatepass"
    ).decode("utf-16-be", "surrogatepass")


def test_a_cesu8_surrogate_pair_is_one_character() -> None:
    # U+1F600 as Java's writer may emit it: two 3-byte surrogate halves.
    assert decode_ustring_bytes(b"\xed\xa0\xbd\xed\xb8\x80") == "\U0001f600"


@given(
    st.lists(st.integers(-(1 << 63), (1 << 63) - 1), min_size=6, max_size=6),
    st.lists(st.integers(-(1 << 31), (1 << 31) - 1), min_size=3, max_size=3),
)
def test_stat_persisted_round_trips(longs: list[int], ints: list[int]) -> None:
    stat = StatPersisted(*longs[:4], *ints, *longs[4:])
    assert read_stat_persisted(Reader(encode_stat_persisted(stat), error=ProtocolError)) == stat


@given(packets, st.binary(max_size=24))
def test_quorum_packets_read_the_same_either_way(packet: QuorumPacket, tail: bytes) -> None:
    raw = encode_packet(packet) + tail
    slow = _read_packet(Reader(raw, error=ProtocolError))
    fast = _read_plain_packet(bytearray(raw))
    assert fast is not None
    assert fast == (slow, len(raw) - len(tail))
    assert type(fast[0].type) is type(slow.type)


def test_a_partial_or_hostile_packet_is_left_to_the_field_reader() -> None:
    raw = encode_packet(QuorumPacket(PacketType.ACK, 7))
    assert _read_plain_packet(bytearray(raw[:-1])) is None
    assert _read_plain_packet(bytearray(raw[:12] + b"\xff\xff\xff\xfe" + raw[16:])) is None
    with_ids = encode_packet(QuorumPacket(PacketType.REQUEST, -1, b"r", (Id("ip", "1.2.3.4"),)))
    for cut in range(len(with_ids)):
        assert _read_plain_packet(bytearray(with_ids[:cut])) is None
    hostile = bytearray(with_ids)
    hostile[17:21] = b"\x00\x00\x00\x41"  # 65 ids declared (the bound is 64)
    assert _read_plain_packet(hostile) is None
    bad_utf8 = with_ids.replace(b"1.2.3.4", b"1.2.3\xff4")
    assert _read_plain_packet(bytearray(bad_utf8)) is None
