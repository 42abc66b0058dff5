"""The quorum port (2888): ``QuorumPacket`` records back to back, no outer length prefix.

Facts: ``docs/spec/quorum-config-and-zab.md`` part B.  ``QuorumPacket { int type;
long zxid; buffer data; vector<Id> authinfo }``; the payload of ``data`` depends on the
type (helpers below).  After a SNAP packet the leader writes the snapshot stream and the
signature (:mod:`zkquorum.wire.snapshot`), which :class:`QuorumStreamDecoder` returns as
:class:`~zkquorum.wire.snapshot.Snapshot` and
:class:`~zkquorum.wire.snapshot.SnapshotSignature` messages.

Decisions: packet types outside 1..19 decode (3.8 reads them and complains later); the
payload helpers raise :class:`QuorumProtocolError` where 3.8 would fail to read the
payload (e.g. a PING touch table that is not a multiple of 12 bytes).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.jute import (
    MAX_BUFFER,
    Id,
    decode_ustring_bytes,
    encode_buffer,
    encode_id,
    encode_vector,
    read_buffer,
    read_id,
    read_ustring,
    read_vector,
)
from zkquorum.wire.reader import (
    ClosedType,
    NeedData,
    NeedDataType,
    Reader,
    StreamDecoder,
    decode_exactly,
    pack_int,
    pack_long,
)
from zkquorum.wire.records import fast_init
from zkquorum.wire.snapshot import (
    SNAP_SIGNATURE,
    SNAP_SIGNATURE_BYTES,
    Session,
    Snapshot,
    SnapshotParser,
    SnapshotSignature,
    encode_snapshot,
)
from zkquorum.wire.txn import Txn, decode_txn, encode_txn

ZAB_PROTOCOL_VERSION: Final = 0x10000
"""LearnerInfo.protocolVersion / LEADERINFO payload of ZAB 1.0 peers."""


class PacketType(enum.IntEnum):
    """``Leader`` packet constants; names as ``Leader#getPacketType`` prints them."""

    REQUEST = 1
    PROPOSAL = 2
    ACK = 3
    COMMIT = 4
    PING = 5
    REVALIDATE = 6
    SYNC = 7
    INFORM = 8
    COMMITANDACTIVATE = 9
    NEWLEADER = 10
    FOLLOWERINFO = 11
    UPTODATE = 12
    DIFF = 13
    TRUNC = 14
    SNAP = 15
    OBSERVERINFO = 16
    LEADERINFO = 17
    ACKEPOCH = 18
    INFORMANDACTIVATE = 19


def packet_type_name(packet_type: int) -> str:
    try:
        return PacketType(packet_type).name
    except ValueError:
        return f"UNKNOWN{packet_type}"


@fast_init
@dataclass(frozen=True, slots=True)
class QuorumPacket:
    type: int
    zxid: int
    data: bytes | None = None
    authinfo: tuple[Id, ...] | None = None


QuorumMessage = QuorumPacket | Snapshot | SnapshotSignature


def encode_packet(p: QuorumPacket) -> bytes:
    if not p.authinfo:
        # Every packet in broadcast: no ids (null or empty), so no per-field encoders.
        count = -1 if p.authinfo is None else 0
        data = p.data
        if data is None:
            return _PLAIN_EMPTY.pack(int(p.type), p.zxid, -1, count)
        if len(data) <= MAX_BUFFER:
            return b"".join((_HEAD.pack(int(p.type), p.zxid, len(data)), data, _COUNT.pack(count)))
    return b"".join(
        (
            pack_int(int(p.type)),
            pack_long(p.zxid),
            encode_buffer(p.data),
            encode_vector(p.authinfo, encode_id),
        )
    )


MAX_AUTHINFO: Final = 64
"""Most ``Id`` records accepted in a QuorumPacket's authinfo."""


_HEAD: Final = struct.Struct(">iqi")
"""A packet's type, zxid and data length."""

_COUNT: Final = struct.Struct(">i")
_PLAIN_EMPTY: Final = struct.Struct(">iqii")
"""A packet without data or ids: type, zxid, -1 (null data), the id count."""


def _read_plain_packet(buf: bytearray) -> tuple[QuorumPacket, int] | None:
    """The packet at the start of ``buf`` and its length when it is whole and well
    formed (every packet in broadcast); None for anything else, which
    :func:`_read_packet` then reads (or rejects) field by field."""
    if len(buf) < 20:
        return None
    ptype, zxid, size = _HEAD.unpack_from(buf)
    if size < -1 or size > MAX_BUFFER:
        return None
    end = 16 + max(size, 0)
    if len(buf) < end + 4:
        return None
    (count,) = _COUNT.unpack_from(buf, end)
    pos = end + 4
    authinfo: tuple[Id, ...] | None = None
    if count > 0:
        # A learner's REQUEST carries its client's ids (``ip:...`` at least).
        if count > MAX_AUTHINFO:
            return None
        ids = []
        for _ in range(count):
            scheme, pos = _plain_text(buf, pos)
            ident, pos = _plain_text(buf, pos)
            if scheme is None or ident is None:
                return None
            ids.append(Id(scheme, ident))
        authinfo = tuple(ids)
    elif count == 0:
        authinfo = ()
    elif count != -1:
        return None
    data = None if size == -1 else bytes(buf[16:end])
    return QuorumPacket(_TYPES.get(ptype, ptype), zxid, data, authinfo), pos


def _plain_text(buf: bytearray, pos: int) -> tuple[str | None, int]:
    """A non-null ustring at ``pos`` and the position after it; None where the field
    reader would say more (short, null, too long, not UTF-8)."""
    if len(buf) < pos + 4:
        return None, pos
    (n,) = _COUNT.unpack_from(buf, pos)
    start = pos + 4
    if n < 0 or n > MAX_BUFFER or len(buf) < start + n:
        return None, pos
    try:
        return decode_ustring_bytes(bytes(buf[start : start + n])), start + n
    except UnicodeDecodeError:
        return None, pos


def _read_packet(r: Reader) -> QuorumPacket:
    ptype = r.int32()
    zxid = r.int64()
    data = read_buffer(r)
    # 3.8 peers send authinfo null or empty.  A bound keeps a hostile peer from declaring
    # millions of ids and drip-feeding them: an incomplete packet is re-parsed from its
    # start on every read, which would cost quadratic time.
    authinfo = read_vector(r, read_id, max_items=MAX_AUTHINFO)
    if ptype in _KNOWN_TYPES:
        ptype = PacketType(ptype)
    return QuorumPacket(ptype, zxid, data, authinfo)


_KNOWN_TYPES: Final = frozenset(t.value for t in PacketType)
_TYPES: Final[dict[int, int]] = {t.value: t for t in PacketType}


def decode_packet(data: bytes) -> QuorumPacket:
    """One-shot: ``data`` must be exactly one QuorumPacket."""
    return decode_exactly(data, _read_packet, QuorumProtocolError, "packet")


def encode_snap_sync(zxid: int, snapshot: Snapshot) -> bytes:
    """What a leader writes for a SNAP sync: SNAP packet, snapshot stream, signature."""
    return (
        encode_packet(QuorumPacket(PacketType.SNAP, zxid))
        + encode_snapshot(snapshot)
        + SNAP_SIGNATURE_BYTES
    )


# -- payloads ----------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class LearnerInfo:
    """FOLLOWERINFO / OBSERVERINFO payload (20 bytes)."""

    server_id: int
    protocol_version: int = ZAB_PROTOCOL_VERSION
    config_version: int = 0


@fast_init
@dataclass(frozen=True, slots=True)
class RequestHeader:
    """REQUEST payload: ``long sessionId, int cxid, int type`` then the request record."""

    session_id: int
    cxid: int
    type: int
    request: bytes = b""


def _reader(data: bytes | None, what: str) -> Reader:
    if data is None:
        raise QuorumProtocolError(f"{what}: data is null", None)
    return Reader(data, QuorumProtocolError)


def _exact(r: Reader, what: str, *, tolerate_trailing: bool = False) -> None:
    if r.remaining and not tolerate_trailing:
        r.fail(f"{what}: {r.remaining} unexpected bytes")


def _short(what: str, data: bytes) -> QuorumProtocolError:
    return QuorumProtocolError(f"{what}: payload of {len(data)} bytes is too short", len(data))


def encode_learner_info(info: LearnerInfo) -> bytes:
    return (
        pack_long(info.server_id) + pack_int(info.protocol_version) + pack_long(info.config_version)
    )


def decode_learner_info(data: bytes | None) -> LearnerInfo:
    r = _reader(data, "LearnerInfo")
    try:
        info = LearnerInfo(r.int64(), r.int32(), r.int64())
    except NeedData:
        raise _short("LearnerInfo", data or b"") from None
    _exact(r, "LearnerInfo")
    return info


def encode_int_payload(value: int) -> bytes:
    """LEADERINFO (protocol version) and ACKEPOCH (current epoch, -1 = already acked)."""
    return pack_int(value)


def decode_int_payload(data: bytes | None) -> int:
    """LEADERINFO / ACKEPOCH: 3.8 reads one int and ignores anything after it."""
    r = _reader(data, "int payload")
    try:
        return r.int32()
    except NeedData:
        raise _short("int payload", data or b"") from None


def encode_long_payload(value: int) -> bytes:
    """COMMITANDACTIVATE: the designated leader's sid."""
    return pack_long(value)


def decode_long_payload(data: bytes | None) -> int:
    r = _reader(data, "long payload")
    try:
        return r.int64()
    except NeedData:
        raise _short("long payload", data or b"") from None


def encode_config_payload(config: str) -> bytes:
    """NEWLEADER: the leader's last-seen config text, UTF-8 (ZOOKEEPER-4787)."""
    return config.encode("utf-8")


def decode_config_payload(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QuorumProtocolError(f"config is not UTF-8: {exc.reason}", exc.start) from None


def encode_ping_sessions(sessions: Sequence[Session]) -> bytes:
    """A learner's PING reply: its touched sessions; none is an *empty* buffer, not null."""
    return b"".join(pack_long(s.session_id) + pack_int(s.timeout) for s in sessions)


def decode_ping_sessions(data: bytes | None) -> tuple[Session, ...] | None:
    """PING data: ``None`` from the leader, the touch table from a learner."""
    if data is None:
        return None
    if len(data) % 12:
        raise QuorumProtocolError(f"PING touch table of {len(data)} bytes", len(data))
    r = Reader(data, QuorumProtocolError)
    return tuple(Session(r.int64(), r.int32()) for _ in range(len(data) // 12))


def encode_revalidate_request(session_id: int, timeout: int) -> bytes:
    """REVALIDATE learner -> leader: ``long sessionId, int timeout``."""
    return pack_long(session_id) + pack_int(timeout)


def decode_revalidate_request(data: bytes | None) -> tuple[int, int]:
    r = _reader(data, "REVALIDATE")
    try:
        session_id, timeout = r.int64(), r.int32()
    except NeedData:
        raise _short("REVALIDATE", data or b"") from None
    _exact(r, "REVALIDATE")
    return session_id, timeout


def encode_revalidate_reply(session_id: int, valid: bool) -> bytes:
    """REVALIDATE leader -> learner: ``long sessionId, boolean valid``."""
    return pack_long(session_id) + (b"\x01" if valid else b"\x00")


def decode_revalidate_reply(data: bytes | None) -> tuple[int, bool]:
    r = _reader(data, "REVALIDATE")
    try:
        session_id, valid = r.int64(), r.byte() != 0
    except NeedData:
        raise _short("REVALIDATE", data or b"") from None
    _exact(r, "REVALIDATE")
    return session_id, valid


def encode_request(req: RequestHeader) -> bytes:
    return pack_long(req.session_id) + pack_int(req.cxid) + pack_int(req.type) + req.request


def decode_request(data: bytes | None) -> RequestHeader:
    r = _reader(data, "REQUEST")
    try:
        session_id, cxid, op = r.int64(), r.int32(), r.int32()
    except NeedData:
        raise _short("REQUEST", data or b"") from None
    return RequestHeader(session_id, cxid, op, (data or b"")[16:])


def decode_proposal(data: bytes | None) -> Txn:
    """PROPOSAL / INFORM: a whole serialized txn."""
    if data is None:
        raise QuorumProtocolError("txn: data is null", None)
    return decode_txn(data)


def encode_inform_and_activate(designated_leader: int, txn: Txn) -> bytes:
    return pack_long(designated_leader) + encode_txn(txn)


def decode_inform_and_activate(data: bytes | None) -> tuple[int, Txn]:
    sid = decode_long_payload(data)
    return sid, decode_txn((data or b"")[8:])


# -- the stream --------------------------------------------------------------------------


class QuorumStreamDecoder(StreamDecoder[QuorumMessage]):
    """Incremental decoder of one direction of a quorum connection (h11 style).

    Packet boundaries are found by parsing (there is no length prefix).  With
    ``snapshots=True`` (the leader -> learner direction) a SNAP packet is followed by a
    :class:`Snapshot` and a :class:`SnapshotSignature`; the snapshot is parsed item by
    item, so a large one fed in small chunks costs linear time.  ``receive_data(b"")``
    marks the end of the stream.  Errors raise :class:`QuorumProtocolError`, then again
    on every call.
    """

    error = QuorumProtocolError

    def __init__(self, *, snapshots: bool = True) -> None:
        super().__init__()
        self._snapshots = snapshots
        self._snap: SnapshotParser | None = None
        self._want_signature = False

    def _next(self) -> QuorumMessage | NeedDataType | ClosedType:
        buf = self._buf
        if len(buf) < self._need or not buf:
            return self._starved()
        if self._snap is None and not self._want_signature:
            plain = _read_plain_packet(buf)
            if plain is not None and (plain[0].type != PacketType.SNAP or not self._snapshots):
                self._need = 0
                self._commit(plain[1])
                return plain[0]
        r = self._reader()
        committed = 0
        try:
            if self._snap is not None:
                while True:
                    snap = self._snap.parse_item(r)
                    committed = r.pos
                    if snap is not None:
                        self._snap = None
                        self._want_signature = True
                        self._need = 0
                        self._commit(committed)
                        return snap
            if self._want_signature:
                at = r.pos
                signature = read_ustring(r)
                if signature != SNAP_SIGNATURE:
                    r.fail(f"missing signature: got {signature!r}", at)
                self._want_signature = False
                msg: QuorumMessage = SnapshotSignature(signature)
            else:
                msg = _read_packet(r)
                if msg.type == PacketType.SNAP and self._snapshots:
                    self._snap = SnapshotParser()
        except NeedData as nd:
            self._commit(committed)
            self._need = nd.needed - committed
            return self._starved()
        self._need = 0
        self._commit(r.pos)
        return msg

    def _mid_message(self) -> bool:
        return bool(self._buf) or self._snap is not None or self._want_signature


__all__ = [
    "MAX_BUFFER",
    "ZAB_PROTOCOL_VERSION",
    "LearnerInfo",
    "PacketType",
    "QuorumPacket",
    "QuorumStreamDecoder",
    "RequestHeader",
]
