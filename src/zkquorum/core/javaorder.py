"""The iteration order of Java's hash sets of ``Id``, where 3.8 lets it reach the client.

3.8 answers ``whoAmI`` and expands an ``auth`` ACL from the connection's ``authInfo``, a
``ConcurrentHashMap`` key set of ``Id``; clients print that order (``zkCli.sh``).  So that
a zkquorum server answers as Java does, :func:`auth_order` reproduces it: buckets in
index order (``(h ^ h >>> 16) & (capacity - 1)``), insertion order within a bucket.
Sets of strings: ``core.prep.java_hash_set_order``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from zkquorum.wire.jute import Id

T = TypeVar("T")

_INT = 1 << 32


def _int32(value: int) -> int:
    value &= _INT - 1
    return value - _INT if value >= 1 << 31 else value


def string_hash(s: str) -> int:
    """``String#hashCode`` over UTF-16 code units."""
    h = 0
    data = s.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & (_INT - 1)
    return _int32(h)


def id_hash(ident: Id) -> int:
    """``Id#hashCode`` as jute generates it: ``37 * (37 * 17 + scheme) + id``."""
    result = 17
    result = _int32(37 * result + string_hash(ident.scheme))
    return _int32(37 * result + string_hash(ident.id))


def spread(h: int) -> int:
    """``HashMap#hash``: the high half folded into the low one (unsigned)."""
    u = h & (_INT - 1)
    return u ^ (u >> 16)


def _capacity(size: int, initial: int = 16) -> int:
    cap = initial
    while size > cap * 3 // 4:
        cap *= 2
    return cap


def hash_order(items: Sequence[T], key: Callable[[T], int], capacity: int) -> list[T]:
    """``items`` (in insertion order) as a hash table of ``capacity`` iterates them."""
    mask = capacity - 1
    return [
        item
        for _, _, item in sorted(
            ((spread(key(item)) & mask, i, item) for i, item in enumerate(items)),
            key=lambda t: (t[0], t[1]),
        )
    ]


def auth_order(ids: Iterable[Id]) -> list[Id]:
    """A connection's ``authInfo`` (a ``ConcurrentHashMap`` key set) as iterated."""
    items = list(ids)
    return hash_order(items, id_hash, _capacity(len(items)))
