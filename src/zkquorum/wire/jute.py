"""Jute binary encoding (``BinaryOutputArchive`` / ``BinaryInputArchive`` of ZooKeeper 3.8).

=========  ==============================================================================
int        4 bytes big-endian signed
long       8 bytes big-endian signed
boolean    1 byte (0/1; the reader takes any non-zero byte as true)
buffer     int length + bytes; ``None`` is length -1
ustring    int byte length + UTF-8; ``None`` is length -1 (see :func:`encode_ustring`)
vector     int count + elements; ``None`` is count -1
record     fields in declaration order, no header, no padding
=========  ==============================================================================

A reader rejects lengths below -1 or above ``jute.maxbuffer + extrasize`` (0xfffff twice,
``BinaryInputArchive#checkLength``) *before* waiting for or allocating the bytes.  Vector
counts get the same bound here (3.8 reads them unchecked, element by element).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from zkquorum.wire.reader import Reader, pack_int, pack_long
from zkquorum.wire.records import fast_init

T = TypeVar("T")

MAX_BUFFER: Final = 0xFFFFF + 0xFFFFF
"""``jute.maxbuffer`` + ``zookeeper.jute.maxbuffer.extrasize`` with their defaults."""


# -- reading -------------------------------------------------------------------------


def read_bool(r: Reader) -> bool:
    return r.byte() != 0


def _length(r: Reader, what: str) -> int:
    at = r.pos
    n = r.int32()
    if n < -1 or n > MAX_BUFFER:
        r.fail(f"unreasonable {what} length {n}", at)
    return n


def read_buffer(r: Reader) -> bytes | None:
    n = _length(r, "buffer")
    return None if n == -1 else r.take(n)


def decode_ustring_bytes(raw: bytes) -> str:
    """Standard UTF-8, plus the 3-byte surrogate forms Java's writer emits (CESU-8)."""
    if b"\xed" not in raw:
        # A surrogate's 3-byte form starts with 0xED: without one, plain UTF-8 is the same.
        return raw.decode("utf-8")
    text = raw.decode("utf-8", "surrogatepass")
    if any("\ud800" <= c <= "\udfff" for c in text):
        # Re-pair surrogate halves into real characters; lone halves stay as they are.
        text = text.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "surrogatepass")
    return text


def read_ustring(r: Reader) -> str | None:
    at = r.pos
    n = _length(r, "ustring")
    if n == -1:
        return None
    raw = r.take(n)
    try:
        return decode_ustring_bytes(raw)
    except UnicodeDecodeError as exc:
        r.fail(f"ustring is not UTF-8: {exc.reason}", at + 4 + exc.start)


def read_string(r: Reader, what: str) -> str:
    """A ustring that must not be null."""
    at = r.pos
    s = read_ustring(r)
    if s is None:
        r.fail(f"{what} is null", at)
    return s


def read_vector(
    r: Reader, element: Callable[[Reader], T], *, max_items: int | None = None
) -> tuple[T, ...] | None:
    at = r.pos
    n = _length(r, "vector")
    if n == -1:
        return None
    if max_items is not None and n > max_items:
        r.fail(f"vector of {n} elements (at most {max_items} expected)", at)
    return tuple(element(r) for _ in range(n))


# -- writing -------------------------------------------------------------------------


def encode_bool(value: bool) -> bytes:
    return b"\x01" if value else b"\x00"


def encode_buffer(value: bytes | None) -> bytes:
    if value is None:
        return pack_int(-1)
    if len(value) > MAX_BUFFER:
        raise ValueError(f"buffer of {len(value)} bytes is more than a 3.8 reader accepts")
    return pack_int(len(value)) + bytes(value)


def encode_ustring_bytes(value: str) -> bytes:
    """Java's writer: each UTF-16 unit on its own, so astral characters become CESU-8."""
    if value.isascii():
        return value.encode("ascii")
    if all(c < "\U00010000" for c in value):
        return value.encode("utf-8", "surrogatepass")
    units = value.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "surrogatepass")
    # decode() re-pairs; split astral characters into their surrogate halves by hand.
    out = []
    for c in units:
        cp = ord(c)
        if cp >= 0x10000:
            cp -= 0x10000
            out.append(chr(0xD800 + (cp >> 10)))
            out.append(chr(0xDC00 + (cp & 0x3FF)))
        else:
            out.append(c)
    return "".join(out).encode("utf-8", "surrogatepass")


def encode_ustring(value: str | None) -> bytes:
    if value is None:
        return pack_int(-1)
    raw = encode_ustring_bytes(value)
    if len(raw) > MAX_BUFFER:
        raise ValueError(f"string of {len(raw)} bytes is more than a 3.8 reader accepts")
    return pack_int(len(raw)) + raw


def encode_vector(items: Sequence[T] | None, element: Callable[[T], bytes]) -> bytes:
    if items is None:
        return pack_int(-1)
    return pack_int(len(items)) + b"".join(element(x) for x in items)


def join(parts: Iterable[bytes]) -> bytes:
    return b"".join(parts)


# -- shared records (module org.apache.zookeeper.data) --------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class Id:
    """``Id { ustring scheme; ustring id }`` (e.g. ``world:anyone``, ``ip:127.0.0.1``)."""

    scheme: str
    id: str


@fast_init
@dataclass(frozen=True, slots=True)
class ACL:
    """``ACL { int perms; Id id }``; perms bits READ=1 WRITE=2 CREATE=4 DELETE=8 ADMIN=16."""

    perms: int
    id: Id


@fast_init
@dataclass(frozen=True, slots=True)
class StatPersisted:
    """``StatPersisted``: what a snapshot stores of a node's stat, in jute order."""

    czxid: int = 0
    mzxid: int = 0
    ctime: int = 0
    mtime: int = 0
    version: int = 0
    cversion: int = 0
    aversion: int = 0
    ephemeral_owner: int = 0
    pzxid: int = 0


def restat(
    s: StatPersisted,
    *,
    mzxid: int | None = None,
    mtime: int | None = None,
    version: int | None = None,
    cversion: int | None = None,
    aversion: int | None = None,
    pzxid: int | None = None,
) -> StatPersisted:
    """``s`` with some fields changed (the copy ``DataTree.copyStatPersisted`` makes),
    built directly: ``dataclasses.replace`` costs several times as much."""
    return StatPersisted(
        s.czxid,
        s.mzxid if mzxid is None else mzxid,
        s.ctime,
        s.mtime if mtime is None else mtime,
        s.version if version is None else version,
        s.cversion if cversion is None else cversion,
        s.aversion if aversion is None else aversion,
        s.ephemeral_owner,
        s.pzxid if pzxid is None else pzxid,
    )


def read_id(r: Reader) -> Id:
    return Id(read_string(r, "Id.scheme"), read_string(r, "Id.id"))


def encode_id(value: Id) -> bytes:
    return encode_ustring(value.scheme) + encode_ustring(value.id)


def read_acl(r: Reader) -> ACL:
    perms = r.int32()
    return ACL(perms, read_id(r))


def encode_acl(value: ACL) -> bytes:
    return pack_int(value.perms) + encode_id(value.id)


_OPEN_ACL: Final = (ACL(31, Id("world", "anyone")),)
_OPEN_ACL_BYTES: Final = (
    pack_int(1) + pack_int(31) + pack_int(5) + b"world" + pack_int(6) + b"anyone"
)


def read_acl_list(r: Reader) -> tuple[ACL, ...] | None:
    # Nearly every node of most trees is world:anyone with every permission: that list,
    # byte for byte, needs no parsing.
    if r.startswith(_OPEN_ACL_BYTES):
        r.pos += len(_OPEN_ACL_BYTES)
        return _OPEN_ACL
    return read_vector(r, read_acl)


def encode_acl_list(value: Sequence[ACL] | None) -> bytes:
    return encode_vector(value, encode_acl)


_STAT_PERSISTED = struct.Struct(">qqqqiiiqq")


def read_stat_persisted(r: Reader) -> StatPersisted:
    return StatPersisted(*r.unpack(_STAT_PERSISTED))


def encode_stat_persisted(s: StatPersisted) -> bytes:
    return b"".join(
        (
            pack_long(s.czxid),
            pack_long(s.mzxid),
            pack_long(s.ctime),
            pack_long(s.mtime),
            pack_int(s.version),
            pack_int(s.cversion),
            pack_int(s.aversion),
            pack_long(s.ephemeral_owner),
            pack_long(s.pzxid),
        )
    )
