"""What an applied txn changed (3.8's ``ProcessTxnResult``), for the server's final stage.

:func:`apply_txn` applies a txn to the database and says what it did: the path, the
watch events in the order 3.8 fires them, and the per-op results of a multi with each
op's Stat taken right after that op.  :func:`client_stat` is ``DataNode#copyStat``.
Requests become txns in :mod:`zkquorum.core.prep`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from zkquorum.core.datatree import CONTAINER_EPHEMERAL_OWNER, DataTree, Node, is_ttl_owner
from zkquorum.wire.client_records import (
    ErrorCode,
    EventType,
    Stat,
)
from zkquorum.wire.txn import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    OpCode,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnRecord,
)


def _parent_of(path: str) -> str:
    slash = path.rfind("/")
    if slash <= 0:
        return "/"
    return path[:slash]


# -- what an applied txn changed ----------------------------------------------------------


@dataclass(slots=True)
class SubResult:
    op: int
    path: str | None
    err: int
    stat: Stat | None = None
    """The op's node right after the op (``ProcessTxnResult.stat``)."""


def client_stat(node: Node) -> Stat:
    """``DataNode#copyStat``: the client-visible cversion and ephemeral owner."""
    czxid, mzxid, ctime, mtime, version, cversion, aversion, owner, pzxid = node.stat_fields()
    n = node.child_count
    if owner == CONTAINER_EPHEMERAL_OWNER or is_ttl_owner(owner):
        owner = 0
    return Stat(
        czxid,
        mzxid,
        ctime,
        mtime,
        version,
        cversion * 2 - n,
        aversion,
        owner,
        len(node.data or b""),
        n,
        pzxid,
    )


class Effects:
    """``ProcessTxnResult`` plus the watch events to fire."""

    __slots__ = ("config", "err", "events", "path", "stat", "subs", "writes")

    def __init__(self) -> None:
        self.err = 0
        self.path: str | None = None
        self.subs: list[SubResult] = []
        self.events: list[tuple[EventType, str]] = []
        self.stat: Stat | None = None
        """The node right after the txn (``ProcessTxnResult.stat``), when it exists."""
        self.writes: list[tuple[str, int]] = []
        """(path, data bytes) of each node created, changed or deleted, for 3.8's
        ``write_per_namespace`` (``DataTree#updateWriteStat``)."""
        self.config: bytes | None = None
        """A reconfig's new config text: its reply's data."""

    def __repr__(self) -> str:
        return f"Effects(err={self.err}, path={self.path!r}, events={self.events!r})"


def _record_effects(op: int, rec: TxnRecord | None, tree: DataTree, fx: Effects) -> str | None:
    match rec:
        case CreateTxn(path, data) | CreateContainerTxn(path, data) | CreateTTLTxn(path, data):
            fx.events.append((EventType.NODE_CREATED, path))
            fx.events.append((EventType.NODE_CHILDREN_CHANGED, _parent_of(path)))
            fx.writes.append((path, len(data or b"")))
            return path
        case DeleteTxn(path):
            fx.events.append((EventType.NODE_DELETED, path))
            fx.events.append((EventType.NODE_CHILDREN_CHANGED, _parent_of(path)))
            fx.writes.append((path, 0))
            return path
        case SetDataTxn(path, data):
            fx.events.append((EventType.NODE_DATA_CHANGED, path))
            fx.writes.append((path, len(data or b"")))
            if op == OpCode.RECONFIG:
                fx.config = data or b""
            return path
        case SetACLTxn(path) | CheckVersionTxn(path):
            return path
        case CloseSessionTxn(paths):
            for path in paths or ():
                if tree.get(path) is not None:
                    fx.events.append((EventType.NODE_DELETED, path))
                    fx.events.append((EventType.NODE_CHILDREN_CHANGED, _parent_of(path)))
                    fx.writes.append((path, 0))
    return None


Apply = Callable[[Txn, Callable[[int], None] | None], int]


def apply_txn(tree: DataTree, txn: Txn, apply: Apply) -> Effects:
    """Apply ``txn`` to the database holding ``tree`` (through ``apply``) and say what
    it did."""
    fx = Effects()
    rec = txn.record
    if isinstance(rec, MultiTxn):
        ops = rec.ops or ()
        failed = next(
            (
                o
                for o in ops
                if o.type == OpCode.ERROR
                and isinstance(o.record, ErrorTxn)
                and o.record.err not in (0, ErrorCode.RUNTIMEINCONSISTENCY)
            ),
            None,
        )
        if any(o.type == OpCode.ERROR for o in ops):
            fx.err = (
                failed.record.err
                if failed and isinstance(failed.record, ErrorTxn)
                else ErrorCode.RUNTIMEINCONSISTENCY
            )
            seen_failure = False
            for o in ops:
                if o.type == OpCode.ERROR and isinstance(o.record, ErrorTxn):
                    fx.subs.append(SubResult(o.type, None, o.record.err))
                    seen_failure = True
                else:
                    fx.subs.append(
                        SubResult(
                            o.type, None, 0 if not seen_failure else ErrorCode.RUNTIMEINCONSISTENCY
                        )
                    )
            apply(txn, None)
            return fx
        for o in ops:
            path = _record_effects(o.type, o.record, tree, fx)
            fx.subs.append(SubResult(o.type, path, 0))

        def capture(i: int) -> None:
            sub = fx.subs[i]
            node = tree.get(sub.path) if sub.path is not None else None
            if node is not None:
                sub.stat = client_stat(node)

        fx.err = apply(txn, capture)
        return fx
    if isinstance(rec, ErrorTxn):
        fx.err = rec.err
        apply(txn, None)
        return fx
    fx.path = _record_effects(txn.header.type, rec, tree, fx)
    fx.err = apply(txn, None)
    if fx.err:
        fx.events.clear()
        fx.writes.clear()
    elif fx.path is not None:
        node = tree.get(fx.path)
        if node is not None:
            fx.stat = client_stat(node)
    return fx
