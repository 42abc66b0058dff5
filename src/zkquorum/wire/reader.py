"""A bounds-checked big-endian reader shared by the codecs, and the ``NEED_DATA`` sentinel.

Running out of bytes raises :class:`NeedData` (an internal signal: the incremental
decoders turn it into ``NEED_DATA``, the one-shot decoders into a ``ProtocolError``);
malformed values raise the port's :class:`~zkquorum.wire.errors.ProtocolError` through
:meth:`Reader.fail`.  Nothing is allocated before the bytes it describes are present.
"""

from __future__ import annotations

import enum
import struct
from typing import Final, Literal, NoReturn

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
