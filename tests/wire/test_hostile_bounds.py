"""Bounds found in review: node paths in a SNAP stream, authinfo vectors."""

from __future__ import annotations

import struct

import pytest

from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.quorum import MAX_AUTHINFO, PacketType, decode_packet
from zkquorum.wire.snapshot import decode_snapshot


def ustring(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">i", len(raw)) + raw


def packet_with_authinfo(count: int) -> bytes:
    ident = ustring("digest") + ustring("u:p")
    head = struct.pack(">iqi", PacketType.PING, 0, -1) + struct.pack(">i", count)
    return head + ident * count


def test_authinfo_is_bounded() -> None:
    assert len(decode_packet(packet_with_authinfo(MAX_AUTHINFO)).authinfo or ()) == MAX_AUTHINFO
    with pytest.raises(QuorumProtocolError, match="vector of 65 elements"):
        decode_packet(packet_with_authinfo(MAX_AUTHINFO + 1))


def test_a_snapshot_node_path_must_be_absolute() -> None:
    # no sessions, no ACLs, then one node whose path has no '/': before the fix it slipped
    # through and crashed the data tree (a non-protocol exception) in the learner
    stat = struct.pack(">qqqqiiiqq", 0, 0, 0, 0, 0, 0, 0, 0, 0)
    node = ustring("abc") + struct.pack(">i", -1) + struct.pack(">q", -1) + stat
    stream = struct.pack(">i", 0) + struct.pack(">i", 0) + node + ustring("/")
    with pytest.raises(QuorumProtocolError, match="not absolute"):
        decode_snapshot(stream)
