"""3.8's TxnDigest: ``DigestCalculator`` version 2 and the tree's ``AdHash`` sum.

A node's digest is ``CRC32(path ‖ data ‖ StatPersisted)`` with the stat as 3.8 writes it
for the digest (czxid, mzxid, pzxid, ctime, mtime as longs; version, cversion, aversion as
ints; ephemeralOwner as a long, big-endian); the root hashes as ``""``; nodes under
``/zookeeper/`` count 0 (``/zookeeper`` itself counts).  The tree's digest is the sum of
its nodes' digests as a wrapping Java long, updated on every change (remove the old
digest, add the new).  Facts: ``docs/spec/zk-server.md`` §2.10; ``DigestCalculator``,
``NodeHashMapImpl``, ``AdHash`` of 3.8.  A leader sends the tree's digest after each txn
in its PROPOSAL; a Java follower compares it with its own and logs a mismatch.
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING, Final, Protocol

from zkquorum.wire.jute import StatPersisted

if TYPE_CHECKING:
    from zkquorum.core.datatree import DataTree


class HasTree(Protocol):
    @property
    def tree(self) -> DataTree: ...


DIGEST_VERSION: Final = 2
_STAT: Final = struct.Struct(">qqqqqiiiq")
_MASK: Final = (1 << 64) - 1


def node_digest(path: str, data: bytes | None, stat: StatPersisted | bytes) -> int:
    """``DigestCalculator#calculateDigest`` (an unsigned 32-bit CRC).

    ``stat`` may be the 60 bytes a snapshot stores (jute order: czxid mzxid ctime mtime
    version cversion aversion ephemeralOwner pzxid), as a loaded node keeps it.
    """
    if path.startswith("/zookeeper/"):
        return 0
    return crc_of(b"" if path == "/" else path.encode(), data, stat)


def crc_of(key: bytes, data: bytes | None, stat: StatPersisted | bytes) -> int:
    """:func:`node_digest` of any path (``key`` its UTF-8, ``b""`` for the root)."""
    if isinstance(stat, bytes):
        packed = stat[:16] + stat[52:] + stat[16:52]
    else:
        packed = _STAT.pack(
            stat.czxid,
            stat.mzxid,
            stat.pzxid,
            stat.ctime,
            stat.mtime,
            stat.version,
            stat.cversion,
            stat.aversion,
            stat.ephemeral_owner,
        )
    return zlib.crc32(packed, zlib.crc32(data or b"", zlib.crc32(key)))


def as_long(value: int) -> int:
    """A sum as the Java long 3.8 keeps it."""
    value &= _MASK
    return value - (1 << 64) if value >= 1 << 63 else value


class TreeDigests:
    """What the request pipeline reads to precalculate a txn's digest (``core/prep.py``'s
    ``Digests``): node digests, and the digest of the database's tree as it is now."""

    def __init__(self, db: HasTree) -> None:
        self._db = db

    def node_digest(self, path: str, data: bytes | None, stat: StatPersisted) -> int:
        return node_digest(path, data, stat)

    def tree_digest(self) -> int:
        return self._db.tree.digest
