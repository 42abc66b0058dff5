"""The SNAP sync stream: what a 3.8 leader writes right after a SNAP quorum packet.

Checked against 3.8.0's ``LearnerHandler#run``, ``ZKDatabase#serializeSnapshot``,
``SerializeUtils#serializeSnapshot``, ``DataTree#serialize`` / ``#serializeNode``,
``ReferenceCountedACLCache#serialize``, ``DataNode#serialize`` and the reading side in
``Learner#syncWithLeader``::

    int   sessionCount;   sessionCount x (long sessionId, int timeoutMs)
    int   aclMapSize;     aclMapSize x (long aclId, vector<ACL>)
    repeat { ustring path; if path == "/": stop;
             buffer data; long aclId; StatPersisted }      depth first, root path ""
    ustring "BenWasHere"                                    the signature

Unlike a snapshot *file* (``FileSnap``) there is no file header, no checksum and no
digest in the stream: ``DataTree#serializeZxidDigest`` is only called by ``FileSnap``.
The learner checks that every node's parent came before it, and the signature.

:func:`encode_snapshot` writes through the ``"/"`` end marker; the signature is
:data:`SNAP_SIGNATURE_BYTES`.  Decision: negative counts and a null ACL vector (which
3.8 reads as empty / crashes on) are rejected as :class:`QuorumProtocolError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.jute import (
    ACL,
    MAX_BUFFER,
    StatPersisted,
    encode_acl_list,
    encode_buffer,
    encode_stat_persisted,
    encode_ustring,
    read_acl_list,
    read_buffer,
    read_stat_persisted,
    read_ustring,
)
from zkquorum.wire.reader import NeedData, Reader, pack_int, pack_long

SNAP_SIGNATURE: Final = "BenWasHere"
SNAP_SIGNATURE_BYTES: Final = encode_ustring(SNAP_SIGNATURE)
END_OF_NODES: Final = "/"
OPEN_UNSAFE_ACL_ID: Final = -1
"""``ReferenceCountedACLCache.OPEN_UNSAFE_ACL_ID``: the id of a null ACL list."""


@dataclass(frozen=True, slots=True)
class Session:
    session_id: int
    timeout: int


@dataclass(frozen=True, slots=True)
class AclCacheEntry:
    acl_id: int
    acls: tuple[ACL, ...]


@dataclass(frozen=True, slots=True)
class SnapshotNode:
    """One node as serialized: ``path`` is ``""`` for the root."""

    path: str
    data: bytes | None
    acl_id: int
    stat: StatPersisted


@dataclass(frozen=True, slots=True)
class Snapshot:
    sessions: tuple[Session, ...]
    acl_cache: tuple[AclCacheEntry, ...]
    nodes: tuple[SnapshotNode, ...]


@dataclass(frozen=True, slots=True)
class SnapshotSignature:
    """The ustring after the snapshot; always ``"BenWasHere"`` once decoded."""

    signature: str = SNAP_SIGNATURE


@dataclass(frozen=True, slots=True)
class TreeNode:
    """A node of a data tree of ours: ``acl`` ``None`` is the open ACL (id -1)."""

    data: bytes | None = b""
    acl: tuple[ACL, ...] | None = None
    stat: StatPersisted = field(default_factory=StatPersisted)


# -- encoding -----------------------------------------------------------------------------


def encode_snapshot(snap: Snapshot) -> bytes:
    """The stream through the ``"/"`` end marker (the signature is not included)."""
    parts = [pack_int(len(snap.sessions))]
    for s in snap.sessions:
        parts.append(pack_long(s.session_id) + pack_int(s.timeout))
    parts.append(pack_int(len(snap.acl_cache)))
    for entry in snap.acl_cache:
        parts.append(pack_long(entry.acl_id) + encode_acl_list(entry.acls))
    for node in snap.nodes:
        if node.path == END_OF_NODES:
            raise ValueError("a node path of '/' is the end marker; the root's path is ''")
        parts.append(encode_ustring(node.path))
        parts.append(encode_buffer(node.data))
        parts.append(pack_long(node.acl_id))
        parts.append(encode_stat_persisted(node.stat))
    parts.append(encode_ustring(END_OF_NODES))
    return b"".join(parts)


def build_snapshot(
    tree: Mapping[str, TreeNode], sessions: Iterable[Session] | Mapping[int, int] = ()
) -> Snapshot:
    """A snapshot of a tree keyed by ZooKeeper paths (``"/"`` is the root, required).

    Nodes come depth first from the root, children in sorted order (3.8 uses hash order;
    a learner only needs parents first).  Distinct ACL lists get ids 1, 2, ... in the order
    they are first met; ``None`` gets -1, as in ZooKeeper's ACL cache.
    """
    if "/" not in tree:
        raise ValueError("the tree has no root '/'")
    children: dict[str, list[str]] = {p: [] for p in tree}
    for path in tree:
        if path == "/":
            continue
        if not path.startswith("/") or path.endswith("/"):
            raise ValueError(f"bad path {path!r}")
        parent = path.rsplit("/", 1)[0] or "/"
        if parent not in children:
            raise ValueError(f"{path!r} has no parent {parent!r} in the tree")
        children[parent].append(path)
    acl_ids: dict[tuple[ACL, ...], int] = {}
    nodes: list[SnapshotNode] = []
    stack = ["/"]
    while stack:
        path = stack.pop()
        node = tree[path]
        if node.acl is None:
            acl_id = OPEN_UNSAFE_ACL_ID
        else:
            acl_id = acl_ids.setdefault(node.acl, len(acl_ids) + 1)
        nodes.append(SnapshotNode("" if path == "/" else path, node.data, acl_id, node.stat))
        stack.extend(sorted(children[path], reverse=True))
    if isinstance(sessions, Mapping):
        session_list = tuple(Session(k, v) for k, v in sessions.items())
    else:
        session_list = tuple(sessions)
    cache = tuple(AclCacheEntry(i, acls) for acls, i in acl_ids.items())
    return Snapshot(session_list, cache, tuple(nodes))


def snapshot_tree(snap: Snapshot) -> dict[str, TreeNode]:
    """The inverse of :func:`build_snapshot`: paths (root ``"/"``) to nodes, ACLs resolved.

    An ACL id missing from the cache resolves to ``None`` (3.8 logs and ignores it).
    """
    cache = {e.acl_id: e.acls for e in snap.acl_cache}
    return {(n.path or "/"): TreeNode(n.data, cache.get(n.acl_id), n.stat) for n in snap.nodes}


# -- decoding -----------------------------------------------------------------------------


def read_snapshot_head(r: Reader) -> tuple[tuple[Session, ...], dict[int, tuple[ACL, ...]]]:
    """The sessions and the ACL cache (id -> list) that precede the nodes, whole (raises
    :class:`NeedData` if they are cut short): what a one-pass reader of the nodes
    (``DataTree.deserialize``) needs first."""
    at = r.pos
    n = r.int32()
    if n < 0:
        r.fail(f"negative session count {n}", at)
    sessions = []
    for _ in range(n):
        session_id = r.int64()
        sessions.append(Session(session_id, r.int32()))
    at = r.pos
    n = r.int32()
    if n < 0:
        r.fail(f"negative ACL cache size {n}", at)
    cache: dict[int, tuple[ACL, ...]] = {}
    for _ in range(n):
        acl_id = r.int64()
        at = r.pos
        acls = read_acl_list(r)
        if acls is None:
            r.fail("null ACL list in the ACL cache", at)
        cache[acl_id] = acls
    return tuple(sessions), cache


class SnapshotParser:
    """Reads a snapshot one item (session, ACL entry, node) at a time.

    :meth:`parse` consumes whole items from the reader and returns the snapshot once the
    end marker is read, else ``None`` after raising :class:`NeedData` internally is caught
    by the caller; state only changes when an item is complete, so a caller may retry
    the same item from its first byte when more bytes arrive.
    """

    def __init__(self) -> None:
        self._sessions_left: int | None = None
        self._acls_left: int | None = None
        self._sessions: list[Session] = []
        self._acls: list[AclCacheEntry] = []
        self._nodes: list[SnapshotNode] = []
        self._paths: set[str] = set()

    def parse_item(self, r: Reader) -> Snapshot | None:
        """Parse exactly one item; raises NeedData (state unchanged) if it is incomplete."""
        if self._sessions_left is None:
            at = r.pos
            n = r.int32()
            if n < 0:
                r.fail(f"negative session count {n}", at)
            self._sessions_left = n
            return None
        if self._sessions_left > 0:
            session_id = r.int64()
            self._sessions.append(Session(session_id, r.int32()))
            self._sessions_left -= 1
            return None
        if self._acls_left is None:
            at = r.pos
            n = r.int32()
            if n < 0:
                r.fail(f"negative ACL cache size {n}", at)
            self._acls_left = n
            return None
        if self._acls_left > 0:
            acl_id = r.int64()
            at = r.pos
            acls = read_acl_list(r)
            if acls is None:
                r.fail("null ACL list in the ACL cache", at)
            self._acls.append(AclCacheEntry(acl_id, acls))
            self._acls_left -= 1
            return None
        at = r.pos
        node = _read_node(r)
        if node is None:
            path = read_ustring(r)
            if path is None:
                r.fail("null node path", at)
            if path == END_OF_NODES:
                return Snapshot(tuple(self._sessions), tuple(self._acls), tuple(self._nodes))
            data = read_buffer(r)
            acl_id = r.int64()
            stat = read_stat_persisted(r)
        else:
            path, data, acl_id, stat = node
        slash = path.rfind("/")
        if path and slash < 0:
            r.fail(f"node path {path!r} is not absolute", at)
        if slash >= 0 and path[:slash] not in self._paths:
            r.fail(f"node {path!r} comes before its parent", at)
        self._paths.add(path)
        self._nodes.append(SnapshotNode(path, data, acl_id, stat))
        return None


_INT_AT = struct.Struct(">i").unpack_from
_NODE_TAIL_AT = struct.Struct(">qqqqqiiiqq").unpack_from
_NODE_TAIL_SIZE: Final = 68


def _read_node(r: Reader) -> tuple[str, bytes | None, int, StatPersisted] | None:
    """A node whose path is ASCII, whole in the buffer, read in a few steps (the bulk of
    every snapshot); ``None`` (nothing consumed) for anything else: the end marker, a
    non-ASCII path, odd lengths, a node cut short; the general path handles those."""
    buf, pos = r.buf, r.pos
    end = r.end
    if pos + 4 > end:
        return None
    (plen,) = _INT_AT(buf, pos)
    start = pos + 4
    if plen < 0 or start + plen + 4 > end:
        return None
    raw = bytes(buf[start : start + plen])
    if not raw.isascii() or raw == b"/":
        return None
    at = start + plen
    (dlen,) = _INT_AT(buf, at)
    at += 4
    if dlen < -1 or dlen > MAX_BUFFER or at + max(dlen, 0) + _NODE_TAIL_SIZE > end:
        return None
    if dlen == -1:
        data = None
    else:
        data = bytes(buf[at : at + dlen])
        at += dlen
    acl_id, *stat = _NODE_TAIL_AT(buf, at)
    r.pos = at + _NODE_TAIL_SIZE
    return raw.decode("ascii"), data, acl_id, StatPersisted(*stat)


def decode_snapshot(data: bytes) -> Snapshot:
    """One-shot: ``data`` is the stream through the end marker (no signature)."""
    r = Reader(data, QuorumProtocolError)
    parser = SnapshotParser()
    try:
        while True:
            snap = parser.parse_item(r)
            if snap is not None:
                break
    except NeedData:
        raise QuorumProtocolError("truncated snapshot", len(data)) from None
    if r.remaining:
        r.fail(f"{r.remaining} bytes after the snapshot end marker")
    return snap
