"""The client port (2181): length-prefixed jute frames, both directions, as 3.8 reads them.

Facts: ``docs/spec/zk-server.md`` §2.1-2.3; records: :mod:`zkquorum.wire.client_records`.

* Every frame is ``int length`` + payload.  A length below 0 or above ``jute.maxbuffer``
  (default 0xfffff) is "Len error" (``NIOServerCnxn#readLength``, and
  ``ClientCnxnSocket#readLength`` on the client side): the connection is closed, the
  session is not.  The decoders raise :class:`ClientProtocolError` as soon as the four
  length bytes are in, without waiting for or allocating the payload.
* A server's first frame from a client is a ConnectRequest; before it, four bytes that
  spell one of 3.8's four-letter words (``FourLetterCommands#isKnown``) are that command,
  whitelisted or not.  Any other first four bytes are a length (a word like ``abcd`` is
  then far above maxbuffer: closed).  Bytes after a ConnectRequest's readOnly byte are
  ignored, as ``ZooKeeperServer#processConnectRequest`` does (so they do not re-encode).
* Then requests: :class:`ClientRequest` keeps the raw body, which a follower forwards to
  the leader inside a REQUEST packet (``sessionId | cxid | type | body``), next to the
  decoded record.  A body that does not parse is not a connection error: 3.8 answers
  MARSHALLINGERROR (``FinalRequestProcessor`` / ``PrepRequestProcessor``), so the request
  carries a :class:`MalformedRequest`.  Two exceptions, because ``ZooKeeperServer#
  processPacket`` reads them itself and lets the IOException close the connection: a
  frame shorter than its 8-byte header, and an auth or sasl body that does not parse.
* An op 3.8 does not accept (notification 0, error -1, an unknown number) decodes with
  ``record=None``; 3.8 answers ``ReplyHeader{xid, -1, UNIMPLEMENTED}`` and closes
  (``ZooKeeperServer#submitRequestNow`` -> ``UnimplementedRequestProcessor``).
* A client reads a ConnectResponse, then replies.  Replies to xid -1 (notifications),
  -2 (pings) and -4 (auth) stand alone; every other reply answers the oldest pending
  request, which must have the same xid (``ClientCnxn#readResponse``: "Xid out of
  order"), and its body is that request's response record when err is 0.
"""

from __future__ import annotations

import collections
import struct
from dataclasses import dataclass
from typing import Final, TypeVar

from zkquorum.wire.client_records import (
    AUTHPACKET_XID,
    NOTIFICATION_XID,
    PING_XID,
    SET_WATCHES_XID,
    ClientProtocolError,
    ConnectRequest,
    ConnectResponse,
    ErrorCode,
    Record,
    ReplyHeader,
    RequestHeader,
    RequestRecord,
    ResponseRecord,
    WatcherEvent,
    decode_request_body,
    decode_response_body,
    is_valid_request_op,
)
from zkquorum.wire.reader import ClosedType, NeedData, NeedDataType, Reader, StreamDecoder
from zkquorum.wire.records import fast_init
from zkquorum.wire.txn import OpCode, op_name

DEFAULT_MAX_BUFFER: Final = 0xFFFFF
"""``jute.maxbuffer``'s default: the largest frame payload 3.8 accepts (1,048,575)."""

FOUR_LETTER_WORDS: Final = frozenset(
    {
        "conf",
        "cons",
        "crst",
        "dirs",
        "dump",
        "envi",
        "gtmk",
        "hash",
        "isro",
        "mntr",
        "ruok",
        "srst",
        "srvr",
        "stat",
        "stmk",
        "wchc",
        "wchp",
        "wchs",
    }
)
"""``FourLetterCommands`` of 3.8: the words recognised whether or not they are allowed."""

TELNET_CLOSE: Final = "telnet close"
"""``FourLetterCommands.telnetCloseCmd`` (0xfff4fffd): known to 3.8, answered by no command."""

STMK_ARGUMENT_BYTES: Final = 8
"""What follows ``stmk``: the new trace mask, a big-endian long."""

_TELNET_CLOSE_BYTES: Final = bytes.fromhex("fff4fffd")
_WORDS: Final = frozenset(w.encode("ascii") for w in FOUR_LETTER_WORDS)


# -- messages ----------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class FourLetterWord:
    """A four-letter word instead of a first frame: ``word`` as 3.8 names it.

    ``word`` is one of :data:`FOUR_LETTER_WORDS`, or :data:`TELNET_CLOSE`.  3.8 answers
    a word that is not whitelisted with ``<word> is not executed because it is not in
    the whitelist.``, so the whitelist is the answering side's business.  The decoder
    reads nothing after the word but ``stmk``'s argument: the 8-byte trace mask that
    follows it (``argument``; a connection that closes before all 8 arrived gets no
    answer, as 3.8's read of them fails).
    """

    word: str
    argument: bytes | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class MalformedRequest:
    """A request body that does not parse as its op's record (3.8: MARSHALLINGERROR)."""

    reason: str
    offset: int | None


@fast_init
@dataclass(frozen=True, slots=True)
class ClientRequest:
    """One request frame after the handshake.

    ``op`` is an :class:`~zkquorum.wire.txn.OpCode` when known, else the raw number.
    ``body`` is every byte after the 8-byte header, unchanged.  ``record`` is the decoded
    body; ``None`` for ops without one (ping, closeSession, whoAmI) and for ops 3.8 does
    not take (:func:`~zkquorum.wire.client_records.is_valid_request_op`).
    """

    xid: int
    op: int
    body: bytes
    record: RequestRecord | MalformedRequest | None


@fast_init
@dataclass(frozen=True, slots=True)
class ClientReply:
    """One reply frame as a client reads it.

    ``op`` is the op the reply answers (NOTIFICATION for xid -1, PING for -2, AUTH for -4,
    else the pending request's op).  ``response`` is the decoded body (``None`` for an
    error reply and for header-only replies); ``raw`` holds body bytes the codec did not
    decode (an error reply's body, the body of a reply to an op the codec does not know),
    so that ``encode_reply`` gives back the frame's bytes.
    """

    header: ReplyHeader
    op: int
    response: ResponseRecord | None
    raw: bytes = b""

    @property
    def xid(self) -> int:
        return self.header.xid

    @property
    def zxid(self) -> int:
        return self.header.zxid

    @property
    def err(self) -> int:
        return self.header.err


RequestMessage = FourLetterWord | ConnectRequest | ClientRequest
ReplyMessage = ConnectResponse | ClientReply


# -- encoding ----------------------------------------------------------------------------


def frame(payload: bytes) -> bytes:
    """``int length`` + ``payload``."""
    return len(payload).to_bytes(4, "big") + payload


def encode_connect_request(request: ConnectRequest) -> bytes:
    """The framed ConnectRequest (49 bytes with readOnly and a 16-byte password)."""
    return frame(request.encode())


def encode_connect_response(response: ConnectResponse) -> bytes:
    """The framed ConnectResponse (41 bytes with readOnly and a 16-byte password)."""
    return frame(response.encode())


def encode_request(xid: int, op: int, record: Record | None = None) -> bytes:
    """A framed request: header, then ``record`` (``None``: no body)."""
    payload = RequestHeader(xid, op).encode()
    if record is not None:
        payload += record.encode()
    return frame(payload)


def encode_client_request(request: ClientRequest) -> bytes:
    """The frame of a decoded request, byte for byte (its raw body is reused)."""
    return frame(RequestHeader(request.xid, request.op).encode() + request.body)


def encode_reply(header: ReplyHeader, response: Record | None = None, raw: bytes = b"") -> bytes:
    """A framed reply: header, then ``response`` (if any), then ``raw``.

    A 3.8 server sends a body only with err 0 (``FinalRequestProcessor`` builds no
    response record after a failure); that is the caller's rule to keep.
    """
    payload = header.encode()
    if response is not None:
        payload += response.encode()
    return frame(payload + raw)


def encode_client_reply(reply: ClientReply) -> bytes:
    return encode_reply(reply.header, reply.response, reply.raw)


def encode_notification(event: WatcherEvent) -> bytes:
    """A framed watch notification: ``ReplyHeader{-1, -1, 0}`` + ``event``."""
    return encode_reply(ReplyHeader(NOTIFICATION_XID, -1, 0), event)


def encode_ping_reply(zxid: int) -> bytes:
    """``ReplyHeader{-2, lastProcessedZxid, 0}``, no body."""
    return encode_reply(ReplyHeader(PING_XID, zxid, 0))


# -- decoding ----------------------------------------------------------------------------


def _frame_length(buf: bytearray, max_buffer: int, base: int) -> int:
    n = int.from_bytes(buf[:4], "big", signed=True)
    if n < 0 or n > max_buffer:
        raise ClientProtocolError(
            f"Len error: frame length {n} (jute.maxbuffer is {max_buffer})", base
        )
    return n


def _payload(buf: bytearray, start: int, end: int) -> bytes:
    with memoryview(buf) as view:
        return bytes(view[start:end])


def decode_client_request(payload: bytes) -> ClientRequest:
    """A request frame's payload (after the length), as the server reads it.

    Raises :class:`ClientProtocolError` where 3.8 closes the connection (a payload
    shorter than the header; an auth or sasl body that does not parse).
    """
    if len(payload) < 8:
        raise ClientProtocolError(
            f"request of {len(payload)} bytes is shorter than its 8-byte header", 0
        )
    xid, op = _REQUEST_HEADER.unpack_from(payload)
    return _request(xid, op, payload[8:], 8)


def _request(xid: int, op: int, body: bytes, base: int) -> ClientRequest:
    """``base``: the stream offset of ``body``, for errors."""
    if op in _KNOWN_OPS:
        op = OpCode(op)
    record: RequestRecord | MalformedRequest | None
    if not is_valid_request_op(op):
        # 3.8 answers UNIMPLEMENTED without reading the body.
        return ClientRequest(xid, op, body, None)
    try:
        record = decode_request_body(op, body)
    except ClientProtocolError as exc:
        if op in (OpCode.AUTH, OpCode.SASL):
            offset = None if exc.offset is None else base + exc.offset
            raise ClientProtocolError(f"{op_name(op)} packet: {exc.reason}", offset) from None
        record = MalformedRequest(exc.reason, exc.offset)
    return ClientRequest(xid, op, body, record)


_KNOWN_OPS: Final = frozenset(o.value for o in OpCode)
_REQUEST_HEADER: Final = struct.Struct(">ii")
_REPLY_HEADER: Final = struct.Struct(">iqi")


class RequestStreamDecoder(StreamDecoder[RequestMessage]):
    """What a server reads from one client connection (h11 style, see :class:`StreamDecoder`).

    Messages: a :class:`FourLetterWord` (then nothing more: the server answers and
    closes) or a :class:`ConnectRequest`, then :class:`ClientRequest` values.
    ``max_buffer`` is ``jute.maxbuffer``.  Errors raise :class:`ClientProtocolError`,
    then again on every call: close the connection.
    """

    error = ClientProtocolError

    def __init__(self, *, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        super().__init__()
        self._max_buffer = max_buffer
        self._connected = False
        self._finished = False

    @property
    def connected(self) -> bool:
        """Whether the ConnectRequest has been returned."""
        return self._connected

    def _next(self) -> RequestMessage | NeedDataType | ClosedType:
        buf = self._buf
        if self._finished:
            self._commit(len(buf))
            return self._starved()
        if len(buf) < 4 or len(buf) < self._need:
            return self._starved()
        if not self._connected and self._need == 0:
            head = bytes(buf[:4])
            if head == b"stmk":
                if len(buf) < 4 + STMK_ARGUMENT_BYTES:
                    return self._starved()
                self._finished = True
                argument = bytes(buf[4 : 4 + STMK_ARGUMENT_BYTES])
                self._commit(4 + STMK_ARGUMENT_BYTES)
                return FourLetterWord("stmk", argument)
            if head in _WORDS or head == _TELNET_CLOSE_BYTES:
                self._finished = True
                self._commit(4)
                word = TELNET_CLOSE if head == _TELNET_CLOSE_BYTES else head.decode("ascii")
                return FourLetterWord(word)
        n = _frame_length(buf, self._max_buffer, self._consumed)
        if len(buf) < 4 + n:
            self._need = 4 + n
            return self._starved()
        self._need = 0
        base = self._consumed + 4
        msg: RequestMessage
        if self._connected:
            if n < 8:
                raise ClientProtocolError(
                    f"request of {n} bytes is shorter than its 8-byte header", base
                )
            xid, op = _REQUEST_HEADER.unpack_from(buf, 4)
            msg = _request(xid, op, _payload(buf, 12, 4 + n), base + 8)
        else:
            msg = _decode_connect(_payload(buf, 4, 4 + n), ConnectRequest, base)
            self._connected = True
        self._commit(4 + n)
        return msg

    def _mid_message(self) -> bool:
        return bool(self._buf) and not self._finished


_C = TypeVar("_C", ConnectRequest, ConnectResponse)


def _decode_connect(payload: bytes, record: type[_C], base: int) -> _C:
    r = Reader(payload, ClientProtocolError, base=base)
    try:
        value = record.read(r)
    except NeedData as nd:
        raise ClientProtocolError(
            f"truncated {record.__name__}: {nd.needed - len(payload)} more bytes needed",
            base + len(payload),
        ) from None
    return value


@fast_init
@dataclass(frozen=True, slots=True)
class _Pending:
    xid: int
    op: int


class ReplyStreamDecoder(StreamDecoder[ReplyMessage]):
    """What a client reads from its server (for tests, load generators and proxies).

    Tell it each request sent with :meth:`expect` (in sending order); ping and auth
    requests need not be told, as in ``ClientCnxn`` (their replies are recognised by
    xid).  Messages: a :class:`ConnectResponse`, then :class:`ClientReply` values.
    ``max_buffer`` is the client's ``jute.maxbuffer``.  Errors (a bad length, a body that
    does not parse, a reply nobody waits for or out of xid order) raise
    :class:`ClientProtocolError`, then again on every call.
    """

    error = ClientProtocolError

    def __init__(self, *, max_buffer: int = DEFAULT_MAX_BUFFER, connected: bool = False) -> None:
        super().__init__()
        self._max_buffer = max_buffer
        self._connected = connected
        self._pending: collections.deque[_Pending] = collections.deque()

    @property
    def pending(self) -> int:
        """Requests told with :meth:`expect` and not answered yet."""
        return len(self._pending)

    def expect(self, xid: int, op: int) -> None:
        """A request with ``xid`` and ``op`` was sent; its reply will come in this order."""
        if op in (OpCode.PING, OpCode.AUTH):
            return
        self._pending.append(_Pending(xid, op))

    def _next(self) -> ReplyMessage | NeedDataType | ClosedType:
        buf = self._buf
        if len(buf) < 4 or len(buf) < self._need:
            return self._starved()
        n = _frame_length(buf, self._max_buffer, self._consumed)
        if len(buf) < 4 + n:
            self._need = 4 + n
            return self._starved()
        self._need = 0
        base = self._consumed + 4
        msg: ReplyMessage
        if self._connected:
            if n < 16:
                raise ClientProtocolError(
                    f"reply of {n} bytes is shorter than its 16-byte header", base
                )
            header = ReplyHeader(*_REPLY_HEADER.unpack_from(buf, 4))
            msg = self._reply(header, _payload(buf, 20, 4 + n), base)
        else:
            msg = _decode_connect(_payload(buf, 4, 4 + n), ConnectResponse, base)
            self._connected = True
        self._commit(4 + n)
        return msg

    def _reply(self, header: ReplyHeader, body: bytes, base: int) -> ClientReply:
        xid = header.xid
        op: int
        if xid == NOTIFICATION_XID:
            op = OpCode.NOTIFICATION
        elif xid == PING_XID:
            op = OpCode.PING
        elif xid == AUTHPACKET_XID:
            op = OpCode.AUTH
        else:
            if not self._pending:
                raise ClientProtocolError(f"Nothing in the queue, but got {xid}", base)
            pending = self._pending.popleft()
            if pending.xid != xid:
                raise ClientProtocolError(
                    f"Xid out of order. Got Xid {xid} with err {header.err} "
                    f"expected Xid {pending.xid}",
                    base,
                )
            op = pending.op
        # ClientCnxn#readResponse reads a body only when err is 0, and notifications always.
        if header.err != ErrorCode.OK and xid != NOTIFICATION_XID:
            return ClientReply(header, op, None, body)
        if op not in _KNOWN_OPS:
            return ClientReply(header, op, None, body)
        try:
            response = decode_response_body(op, body)
        except ClientProtocolError as exc:
            offset = None if exc.offset is None else base + 16 + exc.offset
            raise ClientProtocolError(f"reply to {op_name(op)}: {exc.reason}", offset) from None
        return ClientReply(header, op, response)


__all__ = [
    "AUTHPACKET_XID",
    "DEFAULT_MAX_BUFFER",
    "FOUR_LETTER_WORDS",
    "NOTIFICATION_XID",
    "PING_XID",
    "SET_WATCHES_XID",
    "TELNET_CLOSE",
    "ClientProtocolError",
    "ClientReply",
    "ClientRequest",
    "FourLetterWord",
    "MalformedRequest",
    "ReplyStreamDecoder",
    "RequestStreamDecoder",
    "decode_client_request",
    "encode_client_reply",
    "encode_client_request",
    "encode_connect_request",
    "encode_connect_response",
    "encode_notification",
    "encode_ping_reply",
    "encode_reply",
    "encode_request",
    "frame",
]
