"""The election port (3888): initial message, frames and notifications.

Facts: ``docs/spec/election-protocol.md`` sections 1 to 4.  Pure: no sockets, no clocks.

Byte layouts (all big-endian, Java ``DataOutputStream``):

* **Initial message** (connecting side only, once): ``long protocolVersion`` (V1 = -65536,
  V2 = -65535), ``long sid``, ``int n``, ``n`` bytes of ``host:port`` addresses joined by
  ``|``.  The pre-3.5 *old style* is one non-negative ``long``: the sid alone.
* **Frames** (both directions, after the initial message): ``int length`` then ``length``
  payload bytes, ``0 < length <= 524288``.
* **Notification** payload as 3.8 sends it (version 2): ``int state, long leader,
  long zxid, long electionEpoch, long peerEpoch, int version, int configLength`` and the
  config text (``QuorumVerifier#toString``, UTF-8 always: ZOOKEEPER-4787).

Decisions (documented here because the other helpers rely on them):

* A frame whose *length* is bad raises :class:`ElectionProtocolError`: 3.8 closes the
  connection.  A frame whose *payload* 3.8 would skip ("Got a short response", "partial /
  malformed", an unknown state) decodes to :class:`DroppedNotification`: 3.8 logs it and
  keeps the connection, so must we (ZOOKEEPER-3769: a bad notification must never kill
  the receiver).
* Every receiver check of ``InitialMessage.parse`` is applied to the address string and
  fails the handshake with :class:`ElectionProtocolError`; that includes a port outside
  0..65535, which in 3.8.0 escapes as an unchecked exception and stops the listener for
  good (spec 1.4) -- we close the connection instead.  Wildcard addresses are accepted
  and flagged (:attr:`ElectionAddress.wildcard`); :meth:`InitialMessage.connect_back`
  leaves them out, as 3.8 does.  Stricter than 3.8: invalid UTF-8 and empty ``|``
  elements are rejected (3.8 substitutes U+FFFD / drops trailing empty elements); the
  "single ``read()``" behaviour of 3.8 is timing, not bytes, and is not modelled.
* The notification config text is decoded with ``surrogateescape`` so that a byte
  sequence that is not UTF-8 neither drops the notification (3.8 decodes with
  replacement characters and keeps the vote) nor loses bytes on re-encoding.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from zkquorum.config.javatext import is_wildcard_host, java_int, java_split
from zkquorum.wire.errors import ElectionProtocolError
from zkquorum.wire.reader import (
    CLOSED,
    ClosedType,
    NeedData,
    NeedDataType,
    Reader,
    StreamDecoder,
    decode_exactly,
    pack_int,
    pack_long,
)

PROTOCOL_VERSION_V1: Final = -65536
"""``FF FF FF FF FF FF 00 00``: one address (3.5.0, ZOOKEEPER-107)."""
PROTOCOL_VERSION_V2: Final = -65535
"""``FF FF FF FF FF FF 00 01``: ``|``-joined addresses (3.6.0, ZOOKEEPER-3188)."""
MAX_ADDRESS_BYTES: Final = 2048
"""``QuorumCnxManager.maxBuffer``: longest address string a receiver accepts."""
PACKET_MAX_SIZE: Final = 512 * 1024
"""``QuorumCnxManager.PACKETMAXSIZE``: longest frame payload a receiver accepts."""
NOTIFICATION_VERSION: Final = 2
"""``FastLeaderElection.Notification.CURRENTVERSION`` in 3.8."""


class ServerState(enum.IntEnum):
    """``QuorumPeer.ServerState``; the value is the ordinal sent on the wire."""

    LOOKING = 0
    FOLLOWING = 1
    LEADING = 2
    OBSERVING = 3


@dataclass(frozen=True, slots=True)
class Notification:
    """One FLE notification, as sent by 3.8 (version 2) or decoded from any accepted length.

    ``config`` is the sender's committed config string (``QuorumVerifier#toString``), or
    ``None`` when the message carried none (version <= 1, or a short message).
    """

    state: ServerState
    leader: int
    zxid: int
    election_epoch: int
    peer_epoch: int
    version: int = 2
    config: str | None = None


@dataclass(frozen=True, slots=True)
class DroppedNotification:
    """A frame 3.8's ``WorkerReceiver`` skips without closing the connection.

    ``length`` is the payload length.  ``state`` is set only when the payload was
    otherwise well formed and the state value is unknown: 3.8 still answers such a
    message when it comes from a non-voter (it checks the state only for voters).
    """

    reason: str
    length: int
    state: int | None = None


@dataclass(frozen=True, slots=True)
class ElectionAddress:
    """One parsed element of the address string.  ``wildcard``: 0.0.0.0, :: and the like."""

    host: str
    port: int
    wildcard: bool


@dataclass(frozen=True, slots=True)
class InitialMessage:
    """The connecting side's first bytes.

    ``protocol_version`` is :data:`PROTOCOL_VERSION_V1`, :data:`PROTOCOL_VERSION_V2`, or
    ``None`` for the old style (a bare sid, then ``addresses`` is empty).  ``addresses``
    are the ``host:port`` strings exactly as sent (``[v6]:port`` for IPv6).
    """

    protocol_version: int | None
    sid: int
    addresses: tuple[str, ...] = ()

    def endpoints(self) -> tuple[ElectionAddress, ...]:
        """All addresses parsed with 3.8's rules (they were validated when decoded)."""
        return tuple(parse_election_address(a) for a in self.addresses)

    def connect_back(self) -> tuple[ElectionAddress, ...]:
        """The addresses 3.8 would connect back to: the non-wildcard ones.

        Empty means "use the configured address of this sid" (old style, or wildcards only).
        """
        return tuple(e for e in self.endpoints() if not e.wildcard)


ElectionMessage = InitialMessage | Notification | DroppedNotification

# -- addresses ------------------------------------------------------------------------


def _host_and_port(addr: str) -> list[str]:
    """``ConfigUtils#getHostAndPort`` of 3.8, quirks included."""
    if addr.startswith("["):
        i = addr.find("]")
        if i < 0:
            raise ValueError(f"{addr!r} starts with '[' but has no matching ']:'")
        if i + 2 == len(addr):
            raise ValueError(f"{addr!r} doesn't have a port after colon")
        if i + 2 < len(addr):
            return [addr[1:i], *java_split(addr[i + 2 :], ":")]
        return [addr.replace("[", "").replace("]", "")]
    return java_split(addr, ":")


def parse_election_address(addr: str) -> ElectionAddress:
    """Parse one ``host:port`` / ``[v6]:port`` element as ``InitialMessage.parse`` does.

    Raises ``ValueError`` for what 3.8 rejects ("Badly formed address", "Bad port
    number") and for a port outside 0..65535 (the listener-killing hazard of 3.8.0).
    """
    if addr == "":
        raise ValueError("empty address")
    parts = _host_and_port(addr)
    if len(parts) != 2:
        raise ValueError(f"badly formed address: {addr!r}")
    host, port_text = parts
    port = java_int(port_text)
    if port is None:
        raise ValueError(f"bad port number: {port_text!r}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return ElectionAddress(host, port, is_wildcard_host(host))


# -- initial message -------------------------------------------------------------------


def encode_initial_message(msg: InitialMessage) -> bytes:
    """Bytes of the initial message; send them in one write (spec 1.4, step 3)."""
    if msg.protocol_version is None:
        if msg.sid < 0 or msg.addresses:
            raise ValueError("old-style initial message: a non-negative sid and no addresses")
        return pack_long(msg.sid)
    if msg.protocol_version not in (PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2):
        raise ValueError(f"unknown protocol version {msg.protocol_version}")
    for a in msg.addresses:
        if "|" in a:
            raise ValueError(f"address contains '|': {a!r}")
        parse_election_address(a)
    raw = "|".join(msg.addresses).encode("utf-8")
    if not 0 < len(raw) <= MAX_ADDRESS_BYTES:
        raise ValueError(f"address string of {len(raw)} bytes (must be 1..2048)")
    return pack_long(msg.protocol_version) + pack_long(msg.sid) + pack_int(len(raw)) + raw


def _read_initial(r: Reader) -> InitialMessage:
    version = r.int64()
    if version >= 0:
        return InitialMessage(None, version, ())
    if version not in (PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2):
        r.fail(f"unrecognized protocol version {version}", r.pos - 8)
    sid = r.int64()
    at = r.pos
    n = r.int32()
    if n <= 0 or n > MAX_ADDRESS_BYTES:
        r.fail(f"unreasonable address length {n}", at)
    raw = r.take(n)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        r.fail(f"address string is not UTF-8: {exc.reason}", at + 4 + exc.start)
    addresses = tuple(text.split("|"))
    for a in addresses:
        try:
            parse_election_address(a)
        except ValueError as exc:
            r.fail(str(exc), at + 4)
    return InitialMessage(version, sid, addresses)


def decode_initial_message(data: bytes) -> InitialMessage:
    """One-shot: ``data`` must be exactly one initial message."""
    return decode_exactly(data, _read_initial, ElectionProtocolError, "initial message")


# -- notifications -------------------------------------------------------------------


def encode_notification(n: Notification) -> bytes:
    """The notification payload (no frame length), in the layout 3.8 sends.

    ``version > 1``: the 44+N layout with ``config`` (``None`` is sent as an empty text).
    ``version <= 1``: the 40-byte layout of 3.4.6+ (3.8 reads it as version 0).
    """
    head = b"".join(
        (
            pack_int(int(n.state)),
            pack_long(n.leader),
            pack_long(n.zxid),
            pack_long(n.election_epoch),
            pack_long(n.peer_epoch),
            pack_int(n.version),
        )
    )
    if n.version <= 1:
        return head
    config = (n.config or "").encode("utf-8", "surrogateescape")
    if 44 + len(config) > PACKET_MAX_SIZE:
        raise ValueError(f"config of {len(config)} bytes does not fit one frame")
    return head + pack_int(len(config)) + config


def decode_notification(payload: bytes) -> Notification | DroppedNotification:
    """3.8's reading of one frame payload (``WorkerReceiver#run``); never raises.

    ====== =======================================================================
    length meaning
    ====== =======================================================================
    < 28   dropped ("Got a short response")
    28     3.3 layout: peer_epoch = zxid >> 32, version 0, no config
    29..39 dropped: the version int underflows (this includes 3.4.0-3.4.5's 36 bytes)
    40     3.4.6 layout: the version int is ignored, version 0, no config
    > 40   version = int at 36; version <= 1: no config, rest ignored; version > 1:
           configLength at 40 must be 0..length and present, else dropped; bytes
           after the config are ignored
    ====== =======================================================================
    An unknown state value is dropped too (3.8 ``continue``\\ s for voters).
    """
    size = len(payload)
    if size < 28:
        return DroppedNotification(f"short notification ({size} bytes)", size)
    r = Reader(payload, ElectionProtocolError)
    state, leader, zxid, election_epoch = r.int32(), r.int64(), r.int64(), r.int64()
    version = 0
    config: str | None = None
    if size == 28:
        peer_epoch = zxid >> 32
    elif size < 40:
        return DroppedNotification(f"partial notification ({size} bytes)", size)
    else:
        peer_epoch = r.int64()
        if size > 40:
            version = r.int32()
            if version > 1:
                if size < 44:
                    return DroppedNotification(f"partial notification ({size} bytes)", size)
                config_length = r.int32()
                if config_length < 0 or config_length > r.remaining:
                    return DroppedNotification(f"invalid config length {config_length}", size)
                config = r.take(config_length).decode("utf-8", "surrogateescape")
    if state not in _STATES:
        return DroppedNotification(f"unknown state {state}", size, state)
    return Notification(_STATES[state], leader, zxid, election_epoch, peer_epoch, version, config)


_STATES: Final = {s.value: s for s in ServerState}


# -- frames ----------------------------------------------------------------------------


def encode_frame(payload: bytes) -> bytes:
    if not 0 < len(payload) <= PACKET_MAX_SIZE:
        raise ValueError(f"frame payload of {len(payload)} bytes (must be 1..524288)")
    return pack_int(len(payload)) + payload


def encode_notification_frame(n: Notification) -> bytes:
    """What a SendWorker writes for one notification: length, then payload."""
    return encode_frame(encode_notification(n))


def decode_notification_frame(data: bytes) -> Notification | DroppedNotification:
    """One-shot: ``data`` must be exactly one frame (length prefix included)."""
    dec = ElectionConnectionDecoder(initial=False)
    dec.receive_data(data)
    dec.receive_data(b"")
    msg = dec.next_message()
    if not isinstance(msg, Notification | DroppedNotification):
        raise ElectionProtocolError("no frame in the data", 0)
    if dec.next_message() is not CLOSED:  # pragma: no cover - a second frame
        raise ElectionProtocolError("more than one frame in the data", None)
    return msg


class ElectionConnectionDecoder(StreamDecoder[ElectionMessage]):
    """Incremental decoder of one direction of an election connection (h11 style).

    ``initial=True`` for the connecting side's bytes (an initial message, then frames);
    ``initial=False`` for the accepting side's bytes (frames only).  Feed bytes with
    :meth:`receive_data` in any chunking (``b""`` means end of stream) and call
    :meth:`next_message` until it returns ``NEED_DATA`` (or ``CLOSED``).  A bad frame
    length or handshake raises :class:`ElectionProtocolError`, then again on every call.
    """

    error = ElectionProtocolError

    def __init__(self, *, initial: bool = True) -> None:
        super().__init__()
        self._want_initial = initial

    def _next(self) -> ElectionMessage | NeedDataType | ClosedType:
        buf = self._buf
        if len(buf) < self._need or not buf:
            return self._starved()
        r = self._reader()
        try:
            msg: ElectionMessage
            if self._want_initial:
                msg = _read_initial(r)
                self._want_initial = False
            else:
                at = r.pos
                length = r.int32()
                if length <= 0 or length > PACKET_MAX_SIZE:
                    r.fail(f"unreasonable frame length {length}", at)
                msg = decode_notification(r.take(length))
        except NeedData as nd:
            self._need = nd.needed
            return self._starved()
        self._need = 0
        self._commit(r.pos)
        return msg
