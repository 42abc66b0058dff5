"""A bounds-checked big-endian reader shared by the codecs, and the ``NEED_DATA`` sentinel.

Running out of bytes raises :class:`NeedData` (an internal signal: the incremental
decoders turn it into ``NEED_DATA``, the one-shot decoders into a ``ProtocolError``);
malformed values raise the port's :class:`~zkquorum.wire.errors.ProtocolError` through
:meth:`Reader.fail`.  Nothing is allocated before the bytes it describes are present.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import Any, Final, Generic, Literal, NoReturn, TypeVar

from zkquorum.wire.errors import ProtocolError

_INT: Final = struct.Struct(">i")
_LONG: Final = struct.Struct(">q")


class Sentinel(enum.Enum):
    """Values returned by ``next_message`` instead of a message (h11 style)."""

    NEED_DATA = "NEED_DATA"
    CLOSED = "CLOSED"

    def __repr__(self) -> str:
        return self.value


NEED_DATA: Final = Sentinel.NEED_DATA
"""More bytes are needed before the next message is complete."""
CLOSED: Final = Sentinel.CLOSED
"""The stream ended (``receive_data(b"")``) cleanly, on a message boundary."""

NeedDataType = Literal[Sentinel.NEED_DATA]
ClosedType = Literal[Sentinel.CLOSED]


class NeedData(Exception):
    """Internal: the buffer ends before ``needed`` bytes (counted from its start)."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class Reader:
    """Reads big-endian primitives from ``buf[pos:]``; ``base`` is added to error offsets."""

    __slots__ = ("_buf", "_end", "base", "error", "pos")

    def __init__(
        self,
        buf: bytes | bytearray | memoryview,
        error: type[ProtocolError],
        *,
        pos: int = 0,
        base: int = 0,
    ) -> None:
        self._buf = buf
        self._end = len(buf)
        self.pos = pos
        self.base = base
        self.error = error

    @property
    def remaining(self) -> int:
        return self._end - self.pos

    @property
    def buf(self) -> bytes | bytearray | memoryview:
        """The buffer read (for decoders that read fixed layouts with ``struct``)."""
        return self._buf

    @property
    def end(self) -> int:
        return self._end

    def fail(self, reason: str, at: int | None = None) -> NoReturn:
        raise self.error(reason, self.base + (self.pos if at is None else at))

    def need(self, n: int) -> None:
        if self.pos + n > self._end:
            raise NeedData(self.pos + n)

    def take(self, n: int) -> bytes:
        self.need(n)
        start = self.pos
        self.pos = start + n
        return bytes(self._buf[start : start + n])

    def startswith(self, prefix: bytes) -> bool:
        """The bytes from here on begin with ``prefix`` (nothing is consumed)."""
        n = len(prefix)
        return self.pos + n <= self._end and self._buf[self.pos : self.pos + n] == prefix

    def unpack(self, layout: struct.Struct) -> tuple[Any, ...]:
        """Fixed-size fields in one go (``layout`` of big-endian ints)."""
        self.need(layout.size)
        values = layout.unpack_from(self._buf, self.pos)
        self.pos += layout.size
        return values

    def int32(self) -> int:
        self.need(4)
        (value,) = _INT.unpack_from(self._buf, self.pos)
        self.pos += 4
        return int(value)

    def int64(self) -> int:
        self.need(8)
        (value,) = _LONG.unpack_from(self._buf, self.pos)
        self.pos += 8
        return int(value)

    def byte(self) -> int:
        self.need(1)
        value = self._buf[self.pos]
        self.pos += 1
        return value


INT_MIN: Final = -(1 << 31)
INT_MAX: Final = (1 << 31) - 1
LONG_MIN: Final = -(1 << 63)
LONG_MAX: Final = (1 << 63) - 1


def pack_int(value: int) -> bytes:
    """A Java ``int``; out of range is our own misuse: ``ValueError``."""
    if not INT_MIN <= value <= INT_MAX:
        raise ValueError(f"{value} does not fit a Java int")
    return _INT.pack(value)


def pack_long(value: int) -> bytes:
    """A Java ``long``; out of range is our own misuse: ``ValueError``."""
    if not LONG_MIN <= value <= LONG_MAX:
        raise ValueError(f"{value} does not fit a Java long")
    return _LONG.pack(value)


M = TypeVar("M")


def decode_exactly(
    data: bytes, read: Callable[[Reader], M], error: type[ProtocolError], what: str
) -> M:
    """One-shot decoding: ``data`` must hold exactly one ``what``, read by ``read``."""
    r = Reader(data, error)
    try:
        msg = read(r)
    except NeedData as nd:
        raise error(
            f"truncated {what}: {nd.needed - len(data)} more bytes needed", len(data)
        ) from None
    if r.remaining:
        r.fail(f"{r.remaining} bytes after the {what}")
    return msg


class StreamDecoder(Generic[M]):
    """The h11-style shell shared by both ports' incremental decoders.

    Feed bytes with :meth:`receive_data` in any chunking (``b""`` means end of stream) and
    call :meth:`next_message` until it returns ``NEED_DATA`` (or ``CLOSED``).  An error is
    sticky: once raised, every later call raises it again.  Subclasses implement
    :meth:`_next` (parse one message from ``self._buf``, calling :meth:`_commit` for the
    bytes it used) and may extend :meth:`_mid_message`.
    """

    error: type[ProtocolError] = ProtocolError

    def __init__(self) -> None:
        self._buf = bytearray()
        self._consumed = 0
        self._need = 0
        self._eof = False
        self._error: ProtocolError | None = None

    @property
    def offset(self) -> int:
        """Stream offset of the first byte not yet returned as part of a message."""
        return self._consumed

    @property
    def pending_bytes(self) -> int:
        """Bytes received but not yet part of a returned message."""
        return len(self._buf)

    def receive_data(self, data: bytes) -> None:
        if self._eof and data:
            raise ValueError("receive_data after end of stream")
        if not data:
            self._eof = True
        self._buf += data

    def next_message(self) -> M | NeedDataType | ClosedType:
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except ProtocolError as exc:
            self._error = exc
            raise

    def _next(self) -> M | NeedDataType | ClosedType:
        raise NotImplementedError

    def _reader(self) -> Reader:
        return Reader(self._buf, self.error, base=self._consumed)

    def _commit(self, n: int) -> None:
        if n:
            del self._buf[:n]
            self._consumed += n

    def _mid_message(self) -> bool:
        """Whether the stream may not end here (bytes or a multi-part message pending)."""
        return bool(self._buf)

    def _starved(self) -> NeedDataType | ClosedType:
        if not self._eof:
            return NEED_DATA
        if self._mid_message():
            raise self.error(
                f"stream ended inside a message ({len(self._buf)} bytes left)", self._consumed
            )
        return CLOSED
