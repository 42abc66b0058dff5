"""The one database of a peer (ZooKeeper's ``ZKDatabase``), and the leader's sync plan.

A :class:`Database` is loaded once at start-up (by the runtime, from the files) and kept
across elections: the data tree, its last processed zxid, and a bounded window of the
most recently committed txns (``commitLogCount``, 500) from which the leader syncs a
learner by DIFF.  Facts: ``docs/spec/quorum-config-and-zab.md`` B2/B4; 3.8.0
``ZKDatabase#addCommittedProposal``, ``#calculateTxnLogSizeLimit``,
``LearnerHandler#syncFollower``, ``#queueCommittedProposals``.

TRUNC rolls the database back in place: every txn applied through :meth:`Database.apply`
keeps the before-images of the nodes (and the session) it touched, for as long as it is
in the window; :meth:`Database.roll_back` undoes them newest first.  Txns that were
applied before this object existed (replayed from the log at start-up) have no
before-images: rolling back over them is refused, and the peer reloads the database
from the (truncated) files instead.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from zkquorum.core.datatree import (
    DataTree,
    Node,
)
from zkquorum.wire.jute import ACL, StatPersisted
from zkquorum.wire.quorum import PacketType, QuorumPacket
from zkquorum.wire.records import fast_init
from zkquorum.wire.txn import (
    CloseSessionTxn,
    CreateContainerTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    MultiTxn,
    OpCode,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnRecord,
    encode_txn,
)
from zkquorum.wire.zxid import zxid_counter, zxid_epoch, zxid_hex

log = logging.getLogger(__name__)

COMMIT_LOG_COUNT = 500
"""``ZKDatabase.DEFAULT_COMMIT_LOG_COUNT`` (``zookeeper.commitLogCount``)."""
SNAPSHOT_SIZE_FACTOR = 0.33
"""``ZKDatabase.DEFAULT_SNAPSHOT_SIZE_FACTOR``: sync from the log files only while their
txns are smaller than this fraction of the newest snapshot."""


# -- before-images --------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class _NodeImage:
    path: str
    node: Node | None
    """The node object as it was (None: it did not exist)."""
    data: bytes | None
    acl: tuple[ACL, ...] | None
    stat: StatPersisted | None


@fast_init
@dataclass(frozen=True, slots=True)
class _Undo:
    zxid: int
    last_processed_zxid: int
    nodes: tuple[_NodeImage, ...]
    session: tuple[int, int | None] | None
    """(client id, its timeout before the txn, None: no such session)."""


def _parent_of(path: str) -> str | None:
    slash = path.rfind("/")
    if slash < 0 or path == "/":
        return None
    return path[:slash] or "/"


def _paths_of(tree: DataTree, client_id: int, rec: TxnRecord | None, op: int) -> Iterator[str]:
    """The paths a txn may change: the node itself and its parent."""
    match rec:
        case CreateTxn(path) | CreateTTLTxn(path) | CreateContainerTxn(path) | DeleteTxn(path):
            yield path
            parent = _parent_of(path)
            if parent is not None:
                yield parent
        case SetDataTxn(path) | SetACLTxn(path):
            yield path
        case CloseSessionTxn(paths):
            targets = paths if paths is not None else tuple(tree.ephemerals.get(client_id, ()))
            for path in targets:
                yield path
                parent = _parent_of(path)
                if parent is not None:
                    yield parent
        case None if op == OpCode.CLOSE_SESSION:
            for path in tuple(tree.ephemerals.get(client_id, ())):
                yield path
                parent = _parent_of(path)
                if parent is not None:
                    yield parent
        case MultiTxn(ops):
            for sub in ops or ():
                yield from _paths_of(tree, client_id, sub.record, sub.type)
        case _:
            return


_SESSION_OPS: Final = frozenset((OpCode.CREATE_SESSION, OpCode.CLOSE_SESSION))


def _image(tree: DataTree, path: str) -> _NodeImage:
    node = tree.nodes.get(path)
    if node is None:
        return _NodeImage(path, None, None, None, None)
    return _NodeImage(path, node, node.data, node.acl, node.stat)


def _restore(tree: DataTree, img: _NodeImage) -> None:
    current = tree.nodes.get(img.path)
    parent_path = _parent_of(img.path)
    if current is not None and current is not img.node:
        # Created by the undone txn: remove it (and its ephemeral record).
        del tree.nodes[img.path]
        if parent_path is not None and parent_path in tree.nodes:
            tree.nodes[parent_path].remove_child(img.path)
        tree.untrack_owner(img.path, current.stat.ephemeral_owner)
    if img.node is None or img.stat is None:
        return
    node = img.node
    node.data, node.acl, node.stat = img.data, img.acl, img.stat
    if tree.nodes.get(img.path) is not node:
        tree.nodes[img.path] = node
        if parent_path is not None and parent_path in tree.nodes:
            tree.nodes[parent_path].add_child(img.path)
    tree.track_owner(img.path, img.stat.ephemeral_owner)


class Database:
    """The data tree, the last processed zxid, and the committed window."""

    def __init__(
        self,
        tree: DataTree,
        committed: Iterable[Txn] = (),
        *,
        commit_log_count: int = COMMIT_LOG_COUNT,
    ) -> None:
        self.tree = tree
        self.commit_log_count = max(1, commit_log_count)
        self.committed: deque[Txn] = deque(committed, maxlen=self.commit_log_count)
        """The newest committed txns, in zxid order (3.8's ``committedLog``)."""
        self._undo: deque[_Undo] = deque(maxlen=self.commit_log_count)
        self.last_txn_zxid = tree.last_processed_zxid
        """The newest txn applied (or the snapshot's zxid): what the files hold, whereas
        an established leader moves ``last_processed_zxid`` to its new epoch."""

    @property
    def last_processed_zxid(self) -> int:
        return self.tree.last_processed_zxid

    @property
    def min_committed_zxid(self) -> int:
        return self.committed[0].header.zxid if self.committed else self.last_processed_zxid

    @property
    def max_committed_zxid(self) -> int:
        return self.committed[-1].header.zxid if self.committed else self.last_processed_zxid

    def apply(self, txn: Txn, on_sub: Callable[[int], None] | None = None) -> int:
        """Apply a committed txn (``ZKDatabase#processTxn`` + ``#addCommittedProposal``);
        the error code, 0 = OK."""
        tree = self.tree
        h = txn.header
        record = txn.record
        images: list[_NodeImage] | tuple[_NodeImage, ...]
        if type(record) is SetDataTxn:
            images = (_image(tree, record.path),)  # most writes: one node, no parent
        else:
            seen: set[str] = set()
            images = []
            for path in _paths_of(tree, h.client_id, record, h.type):
                if path not in seen:
                    seen.add(path)
                    images.append(_image(tree, path))
        session: tuple[int, int | None] | None = None
        if h.type in _SESSION_OPS:
            session = (h.client_id, tree.sessions.get(h.client_id))
        before = tree.last_processed_zxid
        err = tree.apply(txn, on_sub)
        self.last_txn_zxid = max(self.last_txn_zxid, h.zxid)
        self._undo.append(_Undo(h.zxid, before, tuple(images), session))
        self.committed.append(txn)
        return err

    def set_last_processed_zxid(self, zxid: int) -> None:
        """The leader's ``startZkServer`` sets it to the new epoch's zxid."""
        self.tree.last_processed_zxid = zxid

    def end_phase(self) -> None:
        """A phase ended: the last processed zxid is the newest txn again, as after
        3.8's reload of the database from the files."""
        self.tree.last_processed_zxid = self.last_txn_zxid

    def can_roll_back(self, zxid: int) -> bool:
        """Whether :meth:`roll_back` to ``zxid`` can be done in memory."""
        if zxid >= self.last_processed_zxid:
            return True
        undone = [u for u in self._undo if u.zxid > zxid]
        if not undone:
            return False
        # Every applied txn above zxid must have its before-images.
        return undone[0].last_processed_zxid <= zxid

    def roll_back(self, zxid: int) -> bool:
        """Undo every applied txn above ``zxid`` (TRUNC); False (nothing changed) when
        some were applied without before-images (start-up replay)."""
        if not self.can_roll_back(zxid):
            return False
        tree = self.tree
        while self._undo and self._undo[-1].zxid > zxid:
            undo = self._undo.pop()
            for img in reversed(undo.nodes):
                _restore(tree, img)
            if undo.session is not None:
                sid, timeout = undo.session
                if timeout is None:
                    tree.sessions.pop(sid, None)
                else:
                    tree.sessions[sid] = timeout
            tree.last_processed_zxid = undo.last_processed_zxid
        while self.committed and self.committed[-1].header.zxid > zxid:
            self.committed.pop()
        if tree.last_processed_zxid > zxid:
            tree.last_processed_zxid = zxid
        self.last_txn_zxid = min(self.last_txn_zxid, zxid)
        tree.recompute_digest()
        return True

    def replace_tree(self, tree: DataTree) -> None:
        """After a SNAP: the leader's tree; the window and the before-images start over."""
        self.tree = tree
        self.committed.clear()
        self._undo.clear()
        self.last_txn_zxid = tree.last_processed_zxid


# -- the leader's sync plan ---------------------------------------------------------------


class SyncMode(enum.Enum):
    """How a leader syncs a learner (and how the learner was synced)."""

    NONE = "none"
    DIFF = "diff"
    TRUNC = "trunc"
    SNAP = "snap"


@fast_init
@dataclass(frozen=True, slots=True)
class SyncPlan:
    """``mode`` SNAP: send the tree; otherwise ``packets`` (DIFF or TRUNC first, then
    PROPOSAL/COMMIT pairs).  ``queued`` is the last zxid the packets bring the learner
    to: the leader forwards proposals after it (``Leader#startForwarding``)."""

    mode: SyncMode
    packets: tuple[QuorumPacket, ...]
    queued: int


@fast_init
@dataclass(frozen=True, slots=True)
class NeedLog:
    """The learner is older than the window: read ``after < zxid <= up_to`` from the
    log files, then call :func:`plan_sync` again with them."""

    after: int
    up_to: int


class _Queue:
    """``LearnerHandler#queueCommittedProposals``, across the log files and the window."""

    def __init__(self, peer: int, last_committed: int) -> None:
        self.peer = peer
        self.last_committed = last_committed
        self.new_epoch_zxid = zxid_counter(peer) == 0
        self.need_op = True
        self.mode = SyncMode.DIFF
        self.packets: list[QuorumPacket] = []
        self.failed = False

    def walk(self, txns: Iterable[Txn], queued: int, max_zxid: int | None) -> int:
        peer = self.peer
        prev = -1
        for txn in txns:
            z = txn.header.zxid
            if max_zxid is not None and z > max_zxid:
                break
            if z < peer:
                prev = z
                continue
            if self.need_op:
                if z == peer:
                    self.packets.append(QuorumPacket(PacketType.DIFF, self.last_committed))
                    self.need_op = False
                    continue
                if self.new_epoch_zxid:
                    self.packets.append(QuorumPacket(PacketType.DIFF, self.last_committed))
                    self.need_op = False
                elif z > peer:
                    if zxid_epoch(z) != zxid_epoch(peer):
                        log.warning("Cannot send TRUNC to peer: peer zxid is from different epoch")
                        self.failed = True
                        return queued
                    self.packets.append(QuorumPacket(PacketType.TRUNC, prev))
                    self.mode = SyncMode.TRUNC
                    self.need_op = False
            if z <= queued:
                continue
            self.packets.append(QuorumPacket(PacketType.PROPOSAL, z, encode_txn(txn)))
            self.packets.append(QuorumPacket(PacketType.COMMIT, z))
            queued = z
        return queued

    def finish(self) -> None:
        if self.need_op and self.new_epoch_zxid:
            self.packets.append(QuorumPacket(PacketType.DIFF, self.last_committed))
            self.need_op = False


def _snap(db: Database) -> SyncPlan:
    return SyncPlan(SyncMode.SNAP, (), db.last_processed_zxid)


def plan_sync(
    db: Database,
    peer_last_zxid: int,
    *,
    log_sync: bool = True,
    from_log: Sequence[Txn] | None = None,
) -> SyncPlan | NeedLog:
    """``LearnerHandler#syncFollower``: DIFF from the window, TRUNC a learner ahead of
    it, the log files (``NeedLog``, when ``log_sync``) for a learner older than the
    window, SNAP otherwise.  ``from_log``: the answer to a ``NeedLog`` (None: not read,
    or the files could not serve it)."""
    last = db.last_processed_zxid
    min_c, max_c = db.min_committed_zxid, db.max_committed_zxid
    peer = peer_last_zxid
    new_epoch_zxid = zxid_counter(peer) == 0
    if peer == last:
        return SyncPlan(SyncMode.DIFF, (QuorumPacket(PacketType.DIFF, peer),), peer)
    if peer > max_c and not new_epoch_zxid:
        return SyncPlan(SyncMode.TRUNC, (QuorumPacket(PacketType.TRUNC, max_c),), max_c)
    if min_c <= peer <= max_c:
        q = _Queue(peer, max_c)
        queued = q.walk(db.committed, peer, None)
        q.finish()
        if q.need_op or q.failed:
            log.warning(
                "Unhandled scenario for peer zxid 0x%s; falling back to a snapshot",
                zxid_hex(peer),
            )
            return _snap(db)
        return SyncPlan(q.mode, tuple(q.packets), queued)
    if peer < min_c and log_sync:
        if from_log is None:
            return NeedLog(peer - 1, min_c)
        if not from_log:
            return _snap(db)
        q = _Queue(peer, max_c)
        queued = q.walk(from_log, peer, min_c)
        if q.failed or (queued < min_c and min_c != queued + 1):
            log.warning("Detected a gap between the txn log and the committed log; using SNAP")
            return _snap(db)
        queued = q.walk(db.committed, queued, None)
        q.finish()
        if q.need_op or q.failed:
            return _snap(db)
        return SyncPlan(q.mode, tuple(q.packets), queued)
    return _snap(db)
