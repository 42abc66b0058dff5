"""Snapshot files: ``snapshot.<zxid>``, written off the event loop from a fuzzy capture.

Facts: ZooKeeper 3.8.0 ``FileSnap#serialize``, ``SerializeUtils#serializeSnapshot``,
``DataTree#serialize``, ``SnapStream#isValidSnapshot``; the stream itself is
``docs/spec/quorum-config-and-zab.md`` A4 and :mod:`zkquorum.wire.snapshot`.

``FileHeader {"ZKSN", 2, 0}``, the snapshot stream (sessions, ACL cache, nodes, ``"/"``), a
seal ``long adler32-so-far; ustring "/"``, then ``ZxidDigest {long zxid; int version; long
digest}`` and a second seal.  We write an empty digest (zxid 0), which 3.8 reads as "The
digest value is empty in snapshot".  We write to ``tmp.snapshot.<zxid>``, fsync, rename
(3.8 writes in place and relies on the trailing seal to spot a torn file; we check the
seal too).

Fuzzy snapshots (``ZooKeeperServer#takeSnapshot`` runs beside the commit processor): the
zxid is the tree's last processed zxid when the capture starts; txns applied while the
file is written may or may not show in it, and loading replays every logged txn after
the zxid over it (the tree's replay rules make creates, deletes and sets idempotent).
The capture is a shallow copy of the tree's path -> node dict and of its sessions, taken
on the loop in one step (a C-level dict copy: ~20 ms for a million nodes); the writer
thread then reads each node's ``data``/``acl``/``stat``, which the tree replaces rather
than mutates in place.  Nodes are written in the dict's order: a node is inserted after
its parent, so parents come first, as a reader requires; a node whose parent was not
written yet is held back until it is, and one whose parent never comes is dropped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from zkquorum.runtime.txnlog import FILE_HEADER, StorageError, adler32, fsync_dir
from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.jute import (
    ACL,
    StatPersisted,
    encode_acl_list,
    encode_ustring_bytes,
    read_ustring,
)
from zkquorum.wire.reader import NeedData, Reader, pack_int, pack_long
from zkquorum.wire.snapshot import OPEN_UNSAFE_ACL_ID, Snapshot, SnapshotParser, encode_snapshot
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
    if len(data) < 10 or data[-5:] != SEAL:
        raise StorageError(f"Invalid snapshot {name}")
    r = Reader(data, QuorumProtocolError)
    try:
        magic, _version, _dbid = r.int32(), r.int32(), r.int64()
        if magic != SNAP_MAGIC:
            raise StorageError(f"mismatching magic headers {magic} !=  {SNAP_MAGIC}")
        parser = SnapshotParser()
        while True:
            snap = parser.parse_item(r)
            if snap is not None:
                break
        crc = adler32(data[: r.pos])
        if r.int64() & 0xFFFFFFFF != crc or read_ustring(r) != "/":
            raise StorageError(f"CRC corruption in {name}")
        if r.remaining:  # the ZxidDigest and its seal
            r.int64()
            if r.int32() < 2:
                read_ustring(r)
            else:
                r.int64()
            crc = adler32(data[: r.pos])
            if r.int64() & 0xFFFFFFFF != crc or read_ustring(r) != "/":
                raise StorageError(f"CRC corruption in {name}")
    except (NeedData, QuorumProtocolError) as exc:
        raise StorageError(f"problem reading snap file {name}: {exc}") from None
    return snap


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


def write_snapshot(
    snap_dir: Path,
    cap: TreeCapture,
    *,
    fsync: Callable[[int], None] | None = None,
    yield_every: int = 512,
    progress: Callable[[int], None] | None = None,
) -> SnapshotWritten:
    """In a worker thread: stream ``cap`` to ``snapshot.<zxid>`` (tmp, fsync, rename).

    Every ``yield_every`` nodes the thread writes what it has and briefly drops the GIL,
    so the event loop waits at most about that much Python work for it; ``progress``
    (nodes written so far) runs there too, in this thread.
    """
    t0 = time.perf_counter()
    snap_dir.mkdir(parents=True, exist_ok=True)
    name = snapshot_name(cap.zxid)
    path = snap_dir / name
    tmp = snap_dir / f"tmp.{name}"
    sync = fsync or os.fsync
    written = 0
    try:
        with tmp.open("wb") as f:
            crc = 1

            def out(chunk: bytes) -> None:
                nonlocal crc
                crc = zlib.adler32(chunk, crc)
                f.write(chunk)

            nodes = cap.nodes
            # Pass 1: the ACL cache (it precedes the nodes), one id per node, kept in order.
            acl_ids, per_node = _acl_ids(nodes.values(), yield_every)
            head = [FILE_HEADER.pack(SNAP_MAGIC, FORMAT_VERSION, 0), _INT.pack(len(cap.sessions))]
            head.extend(_SESSION.pack(sid, timeout) for sid, timeout in cap.sessions.items())
            head.append(_INT.pack(len(acl_ids)))
            for acls, acl_id in acl_ids.items():
                head.append(pack_long(acl_id) + encode_acl_list(acls))
            out(b"".join(head))
            # Pass 2: the nodes, parents first.
            written = _write_nodes(nodes, per_node, out, yield_every, progress)
            out(_END_OF_NODES)
            out(pack_long(crc & 0xFFFFFFFF) + SEAL + _EMPTY_DIGEST)
            out(pack_long(crc & 0xFFFFFFFF) + SEAL)
            f.flush()
            sync(f.fileno())
            size = f.tell()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(snap_dir)
    ms = (time.perf_counter() - t0) * 1000.0
    log.info("Snapshot %s: %d nodes, %d bytes in %.0f ms", path.name, written, size, ms)
    return SnapshotWritten(path, cap.zxid, size, written, ms)


def _acl_ids(
    nodes: Iterable[SnapshotNode], yield_every: int
) -> tuple[dict[tuple[ACL, ...], int], list[int]]:
    """Distinct ACL lists get ids 1, 2, ... as first met; ``None`` (open) is -1, as in
    ``ReferenceCountedACLCache``.  An identity cache in front of the value lookup skips
    hashing the ACL tuple again when nodes share one object."""
    by_value: dict[tuple[ACL, ...], int] = {}
    by_identity: dict[int, tuple[tuple[ACL, ...], int]] = {}
    ids: list[int] = []
    append = ids.append
    for i, node in enumerate(nodes):
        acl = node.acl
        if acl is None:
            append(OPEN_UNSAFE_ACL_ID)
        else:
            hit = by_identity.get(id(acl))
            if hit is not None and hit[0] is acl:
                append(hit[1])
            else:
                acl_id = by_value.setdefault(acl, len(by_value) + 1)
                by_identity[id(acl)] = (acl, acl_id)  # holds acl: its id is not reused
                append(acl_id)
        if i % yield_every == 0:
            time.sleep(0)
    return by_value, ids


def _write_nodes(
    nodes: Mapping[str, SnapshotNode],
    acl_ids: list[int],
    out: Callable[[bytes], None],
    yield_every: int,
    progress: Callable[[int], None] | None,
) -> int:
    pack_tail = _NODE_TAIL.pack
    pack_len = _INT.pack
    emitted: set[str] = set()
    held: list[tuple[str, SnapshotNode, int]] = []
    parts: list[bytes] = []
    count = 0

    def encode(path: str, node: SnapshotNode, acl_id: int) -> None:
        pb = path.encode("ascii") if path.isascii() else encode_ustring_bytes(path)
        data = node.data
        s = node.stat
        parts.append(pack_len(len(pb)))
        parts.append(pb)
        if data is None:
            parts.append(_NULL_BUFFER)
        else:
            parts.append(pack_len(len(data)))
            parts.append(data)
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

    for (path, node), acl_id in zip(nodes.items(), acl_ids, strict=True):
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
        if count % yield_every == 0:
            out(b"".join(parts))
            parts.clear()
            if progress is not None:
                progress(count)
            time.sleep(0)
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
    if parts:
        out(b"".join(parts))
    return count
