"""Snapshot files: ``snapshot.<zxid>``, written off the event loop from a fuzzy capture.

Facts: ZooKeeper 3.8.0 ``FileSnap#serialize``, ``SerializeUtils#serializeSnapshot``,
``DataTree#serialize``, ``SnapStream#isValidSnapshot``; the stream itself is
``docs/spec/quorum-config-and-zab.md`` A4 and :mod:`zkquorum.wire.snapshot`.

``FileHeader {"ZKSN", 2, 0}``, the snapshot stream (sessions, ACL cache, nodes, ``"/"``), a
seal ``long adler32-so-far; ustring "/"``, then ``ZxidDigest {long zxid; int version; long
digest}`` and a second seal.  The digest is the tree's (``core/digest.py``) at its last
processed zxid when the nodes are all written (``DataTree#serializeZxidDigest``): a reader
replays the log over the fuzzy nodes and, at that zxid, compares its tree's digest with
it (3.8: "Digests are not matching").  A snapshot written without a live tree carries an
empty digest (zxid 0), which 3.8 reads as "The digest value is empty in snapshot".  We
write to ``tmp.snapshot.<zxid>``, fsync, rename (3.8 writes in place and relies on the
trailing seal to spot a torn file; we check the seal too).

Fuzzy snapshots (``ZooKeeperServer#takeSnapshot`` runs beside the commit processor): the
zxid is the tree's last processed zxid when the capture starts; txns applied while the
file is written may or may not show in it, and loading replays every logged txn after
the zxid over it (the tree's replay rules make creates, deletes and sets idempotent).
The capture is a shallow copy of the tree's path -> node dict and of its sessions, taken
on the loop in one step (a C-level dict copy: ~20 ms for a million nodes); the encoder
then reads each node's ``data``/``acl``/``stat`` as it goes, between other work of the
loop, which replaces those fields rather than mutating them in place.  Nodes are written
in the dict's order: a node is inserted after its parent, so parents come first, as a
reader requires; a node whose parent was not written yet is held back until it is, and
one whose parent never comes is dropped.

Loading (``Storage.load_tree``): :func:`load_snapshot_file` reads a file straight into a
``DataTree`` in one pass (``DataTree.deserialize``), with the parser's checks, the CRCs
and the ZxidDigest; :func:`decode_snapshot_file` still gives the records (tools, tests).
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Protocol

from zkquorum.core.datatree import DataTree, Node
from zkquorum.runtime.txnlog import FILE_HEADER, StorageError, adler32, fsync_dir
from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.jute import (
    ACL,
    StatPersisted,
    encode_acl_list,
    encode_ustring_bytes,
    read_ustring,
)
from zkquorum.wire.quorum import PacketType, QuorumPacket, encode_packet
from zkquorum.wire.reader import NeedData, Reader, pack_int, pack_long
from zkquorum.wire.snapshot import (
    OPEN_UNSAFE_ACL_ID,
    SNAP_SIGNATURE_BYTES,
    Snapshot,
    SnapshotParser,
    encode_snapshot,
)
from zkquorum.wire.zxid import zxid_hex

log = logging.getLogger(__name__)

SNAP_MAGIC: Final = 0x5A4B534E  # "ZKSN"
FORMAT_VERSION: Final = 2
DIGEST_VERSION: Final = 2
SNAP_PREFIX: Final = "snapshot"
SEAL: Final = pack_int(1) + b"/"
_END_OF_NODES: Final = pack_int(1) + b"/"
_INT = struct.Struct(">i")
_NULL_BUFFER: Final = _INT.pack(-1)
# long aclId, then StatPersisted: czxid mzxid ctime mtime version cversion aversion
# ephemeralOwner pzxid.
_NODE_TAIL = struct.Struct(">qqqqqiiiqq")
_SESSION = struct.Struct(">qi")
_EMPTY_DIGEST: Final = pack_long(0) + pack_int(DIGEST_VERSION) + pack_long(0)


@dataclass(frozen=True, slots=True)
class ZxidDigest:
    """``ZxidDigest``: the tree's digest at ``zxid`` (zxid 0: none was written)."""

    zxid: int
    version: int
    digest: int

    def encode(self) -> bytes:
        return pack_long(self.zxid) + pack_int(self.version) + pack_long(self.digest)


def snapshot_name(zxid: int) -> str:
    """``Util#makeSnapshotName``."""
    return f"{SNAP_PREFIX}.{zxid_hex(zxid)}"


class SnapshotNode(Protocol):
    """What the writer reads of a tree's node (``core.datatree.Node``)."""

    data: bytes | None
    acl: tuple[ACL, ...] | None
    stat: StatPersisted


@dataclass(frozen=True, slots=True)
class TreeCapture:
    """The tree at the start of a fuzzy snapshot: its zxid, and shallow copies of its node
    dict (paths, root ``"/"``) and sessions (id -> timeout)."""

    zxid: int
    nodes: Mapping[str, SnapshotNode]
    sessions: Mapping[int, int]


# -- whole files (small trees, SNAP streams, tests) -----------------------------------------


def encode_snapshot_file(snap: Snapshot) -> bytes:
    body = FILE_HEADER.pack(SNAP_MAGIC, FORMAT_VERSION, 0) + encode_snapshot(snap)
    crc = adler32(body)
    body += pack_long(crc) + SEAL + _EMPTY_DIGEST
    crc = adler32(body)
    return body + pack_long(crc) + SEAL


def decode_snapshot_file(data: bytes, name: str = "snapshot") -> Snapshot:
    """Read a snapshot file of 3.8 (digest enabled or not) or of ours."""
    return decode_snapshot_file_and_digest(data, name)[0]


def decode_snapshot_file_and_digest(
    data: bytes, name: str = "snapshot"
) -> tuple[Snapshot, ZxidDigest | None]:
    """The snapshot and its ZxidDigest (``None``: the file has none, or an empty one)."""
    r = _file_reader(data, name)
    try:
        parser = SnapshotParser()
        while True:
            snap = parser.parse_item(r)
            if snap is not None:
                break
        digest = _read_trailer(data, r, name)
    except (NeedData, QuorumProtocolError) as exc:
        raise StorageError(f"problem reading snap file {name}: {exc}") from None
    return snap, digest


def load_snapshot_file(
    data: bytes, zxid: int, name: str = "snapshot"
) -> tuple[DataTree, ZxidDigest | None]:
    """The tree a snapshot file holds, at ``zxid`` (its name's), and its ZxidDigest: what
    :func:`decode_snapshot_file_and_digest` and ``DataTree.from_snapshot`` make, in one
    pass (``DataTree.deserialize``), with the same checks."""
    r = _file_reader(data, name)
    try:
        tree, r.pos = DataTree.deserialize(data, r.pos, zxid)
        digest = _read_trailer(data, r, name)
    except (NeedData, QuorumProtocolError) as exc:
        raise StorageError(f"problem reading snap file {name}: {exc}") from None
    return tree, digest


def _file_reader(data: bytes, name: str) -> Reader:
    """A reader past the file header (``FileSnap#deserialize``'s checks)."""
    if len(data) < 10 or data[-5:] != SEAL:
        raise StorageError(f"Invalid snapshot {name}")
    r = Reader(data, QuorumProtocolError)
    try:
        magic, _version, _dbid = r.int32(), r.int32(), r.int64()
    except NeedData:
        raise StorageError(f"problem reading snap file {name}: truncated header") from None
    if magic != SNAP_MAGIC:
        raise StorageError(f"mismatching magic headers {magic} !=  {SNAP_MAGIC}")
    return r


def _read_trailer(data: bytes, r: Reader, name: str) -> ZxidDigest | None:
    """After the nodes: the seal, then the ZxidDigest and its seal when the file has them.

    The second checksum goes on from the first (Adler-32 runs): the file is summed once,
    on a memoryview (no copy of what it covers)."""
    view = memoryview(data)
    covered = r.pos
    crc = zlib.adler32(view[:covered])
    if r.int64() & 0xFFFFFFFF != crc or read_ustring(r) != "/":
        raise StorageError(f"CRC corruption in {name}")
    digest: ZxidDigest | None = None
    if r.remaining:  # the ZxidDigest and its seal
        zxid, version = r.int64(), r.int32()
        if version < 2:
            read_ustring(r)
        else:
            value = r.int64()
            if zxid > 0:
                digest = ZxidDigest(zxid, version, value)
        crc = zlib.adler32(view[covered : r.pos], crc)
        if r.int64() & 0xFFFFFFFF != crc or read_ustring(r) != "/":
            raise StorageError(f"CRC corruption in {name}")
    return digest


def is_valid_snapshot(path: Path) -> bool:
    """``SnapStream#isValidSnapshot`` (uncompressed): long enough and sealed with ``"/"``;
    the full CRC check happens when the file is read."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < 10 + FILE_HEADER.size:
                return False
            f.seek(0)
            head = f.read(4)
            f.seek(size - 5)
            return head == b"ZKSN" and f.read(5) == SEAL
    except OSError:
        return False


# -- the fuzzy capture and the streaming writer --------------------------------------------


def encode_snap_sync_of(zxid: int, tree: DataTree) -> bytes:
    """What a leader writes for a SNAP sync of its live ``tree`` at ``zxid``: the SNAP
    packet, the serialized tree, the signature; the bytes of
    ``encode_snap_sync(zxid, tree.to_snapshot())``, made from the nodes as they are
    (their stats still packed) without a record per node: 1.8 s against 6.2 s with a
    million znodes, all of it on the leader's loop (``bench/snap_sync.py``).  Consistent
    because nothing steps the tree until it returns."""
    body = SnapshotEncoder(capture_tree(tree.nodes, tree.sessions, zxid), stream=True)
    return (
        encode_packet(QuorumPacket(PacketType.SNAP, zxid)) + b"".join(body) + SNAP_SIGNATURE_BYTES
    )


def capture_tree(
    nodes: Mapping[str, SnapshotNode], sessions: Mapping[int, int], zxid: int
) -> TreeCapture:
    """On the loop: O(n) but one C-level copy each, no Python per node."""
    return TreeCapture(zxid, dict(nodes), dict(sessions))


@dataclass(frozen=True, slots=True)
class SnapshotWritten:
    path: Path
    zxid: int
    size: int
    nodes: int
    ms: float


class SnapshotEncoder:
    """The file's bytes for a capture, as a sequence of chunks of about ``chunk_nodes``
    nodes each (empty chunks mark a pause while the ACL cache is computed), so that a
    caller can stop between any two: the event loop writes a snapshot in slices between
    its other work (:meth:`Storage.take_snapshot`), a thread or a tool in one go
    (:func:`write_snapshot`).  ``nodes`` is the count written, once the chunks are done.
    """

    def __init__(
        self,
        cap: TreeCapture,
        *,
        chunk_nodes: int = 512,
        progress: Callable[[int], None] | None = None,
        digest: Callable[[], ZxidDigest] | None = None,
        stream: bool = False,
    ) -> None:
        self.cap = cap
        self.stream = stream
        """Only the serialized tree (sessions, ACL cache, nodes, the ``"/"`` end marker),
        as a SNAP sync sends it: no file header, checksum or digest."""
        self.digest = digest
        """Asked once the nodes are written, on the thread that iterates (the loop's, for
        a live tree); ``None``: an empty digest."""
        self.chunk_nodes = max(1, chunk_nodes)
        self.progress = progress
        self.nodes = 0
        self._crc = 1

    def __iter__(self) -> Iterator[bytes]:
        if self.stream:
            yield from self._chunks()
            return
        for chunk in self._chunks():
            if chunk:
                self._crc = zlib.adler32(chunk, self._crc)
            yield chunk
        digest = self.digest().encode() if self.digest is not None else _EMPTY_DIGEST
        seal = pack_long(self._crc & 0xFFFFFFFF) + SEAL + digest
        self._crc = zlib.adler32(seal, self._crc)
        yield seal + pack_long(self._crc & 0xFFFFFFFF) + SEAL

    def _chunks(self) -> Iterator[bytes]:
        cap = self.cap
        # The ACL cache precedes the nodes: one pass for the ids, kept per node in order.
        by_value: dict[tuple[ACL, ...], int] = {}
        by_identity: dict[int, tuple[tuple[ACL, ...], int]] = {}
        ids: list[int] = []
        append = ids.append
        step = self.chunk_nodes * 4
        for i, node in enumerate(cap.nodes.values()):
            acl = node.acl
            if acl is None:
                append(OPEN_UNSAFE_ACL_ID)
            else:
                # Identity first: nodes that share one ACL tuple skip hashing it again.
                hit = by_identity.get(id(acl))
                if hit is not None and hit[0] is acl:
                    append(hit[1])
                else:
                    acl_id = by_value.setdefault(acl, len(by_value) + 1)
                    by_identity[id(acl)] = (acl, acl_id)  # holds acl: its id stays unique
                    append(acl_id)
            if i % step == step - 1:
                yield b""
        head = [] if self.stream else [FILE_HEADER.pack(SNAP_MAGIC, FORMAT_VERSION, 0)]
        head.append(_INT.pack(len(cap.sessions)))
        head.extend(_SESSION.pack(sid, timeout) for sid, timeout in cap.sessions.items())
        head.append(_INT.pack(len(by_value)))
        for acls, acl_id in by_value.items():
            head.append(pack_long(acl_id) + encode_acl_list(acls))
        yield b"".join(head)
        yield from self._node_chunks(ids)
        yield _END_OF_NODES

    def _node_chunks(self, acl_ids: list[int]) -> Iterator[bytes]:
        pack_tail = _NODE_TAIL.pack
        pack_len = _INT.pack
        emitted: set[str] = set()
        held: list[tuple[str, SnapshotNode, int]] = []
        parts: list[bytes] = []
        chunk_nodes = self.chunk_nodes
        count = 0

        def encode(path: str, node: SnapshotNode, acl_id: int) -> None:
            pb = path.encode("ascii") if path.isascii() else encode_ustring_bytes(path)
            data = node.data
            parts.append(pack_len(len(pb)))
            parts.append(pb)
            if data is None:
                parts.append(_NULL_BUFFER)
            else:
                parts.append(pack_len(len(data)))
                parts.append(data)
            if isinstance(node, Node):  # its stat may be packed still: keep it so
                parts.append(pack_long(acl_id))
                parts.append(node.stat_bytes())
                return
            s = node.stat
            parts.append(
                pack_tail(
                    acl_id,
                    s.czxid,
                    s.mzxid,
                    s.ctime,
                    s.mtime,
                    s.version,
                    s.cversion,
                    s.aversion,
                    s.ephemeral_owner,
                    s.pzxid,
                )
            )

        for (path, node), acl_id in zip(self.cap.nodes.items(), acl_ids, strict=True):
            if path == "/":
                encode("", node, acl_id)
            else:
                parent = path[: path.rfind("/")] or "/"
                if parent not in emitted:
                    held.append((path, node, acl_id))
                    continue
                encode(path, node, acl_id)
            emitted.add(path)
            count += 1
            if count % chunk_nodes == 0:
                self.nodes = count
                chunk = b"".join(parts)
                parts.clear()
                yield chunk
                if self.progress is not None:
                    self.progress(count)
        if held:
            held.sort(key=lambda item: item[0].count("/"))
            for path, node, acl_id in held:
                parent = path[: path.rfind("/")] or "/"
                if parent not in emitted:
                    log.warning("snapshot: %s has no parent in the tree; not written", path)
                    continue
                encode(path, node, acl_id)
                emitted.add(path)
                count += 1
        self.nodes = count
        if parts:
            yield b"".join(parts)


def tmp_snapshot_path(snap_dir: Path, zxid: int) -> Path:
    return snap_dir / f"tmp.{snapshot_name(zxid)}"


def finish_snapshot(
    f: BinaryIO, tmp: Path, path: Path, fsync: Callable[[int], None] | None = None
) -> int:
    """Blocking: flush, fsync, close, rename into place, fsync the directory; the size."""
    try:
        f.flush()
        (fsync or os.fsync)(f.fileno())
        size = f.tell()
    finally:
        f.close()
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return size


def write_snapshot(
    snap_dir: Path,
    cap: TreeCapture,
    *,
    fsync: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
    digest: Callable[[], ZxidDigest] | None = None,
) -> SnapshotWritten:
    """Blocking, in one go (a thread, a tool, a test): ``cap`` to ``snapshot.<zxid>``
    (tmp, fsync, rename)."""
    t0 = time.perf_counter()
    snap_dir.mkdir(parents=True, exist_ok=True)
    path = snap_dir / snapshot_name(cap.zxid)
    tmp = tmp_snapshot_path(snap_dir, cap.zxid)
    enc = SnapshotEncoder(cap, progress=progress, digest=digest)
    f = tmp.open("wb")
    try:
        for chunk in enc:
            f.write(chunk)
        size = finish_snapshot(f, tmp, path, fsync)
    except BaseException:
        f.close()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    ms = (time.perf_counter() - t0) * 1000.0
    log.info("Snapshot %s: %d nodes, %d bytes in %.0f ms", path.name, enc.nodes, size, ms)
    return SnapshotWritten(path, cap.zxid, size, enc.nodes, ms)
