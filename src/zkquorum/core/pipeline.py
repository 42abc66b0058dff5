"""Requests to txns (3.8's ``PrepRequestProcessor``) and what an applied txn changed.

:class:`Prep` turns one write request into the txn 3.8 would log for it: checks in
3.8's order (path, parent, ACL, sequential name from the parent's *stored* cversion,
existence, ephemeral parent, versions, ``NOTEMPTY``), or an error txn (``OpCode.ERROR``
with ``ErrorTxn{err}``; a failed write still takes its zxid).  It reads the tree through
:class:`OutstandingChanges`, 3.8's ``outstandingChanges``: the state of every node that
a prepared but not yet applied txn touches, so that pipelined requests see the effects of
the ones before them.  Facts: ``docs/spec/zk-server.md`` §2.6-2.7.

:func:`effects` says what an applied txn did for the server's final stage: the path,
the watch events in the order 3.8 fires them, and per-op results of a multi.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from zkquorum.core import acl as acls
from zkquorum.core.datatree import CONTAINER_EPHEMERAL_OWNER, DataTree, Node, is_ttl_owner
from zkquorum.wire.client_records import (
    CheckVersionRequest,
    CreateMode,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    ErrorCode,
    EventType,
    MultiOperationRecord,
    SetACLRequest,
    SetDataRequest,
    Stat,
)
from zkquorum.wire.jute import ACL, Id, StatPersisted
from zkquorum.wire.txn import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiOp,
    MultiTxn,
    OpCode,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
    TxnRecord,
)

MAX_TTL = 0x00FFFFFFFFFFFFFF
"""``EphemeralType.TTL.maxValue`` (the low 56 bits)."""


class PrepError(Exception):
    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


def validate_path(path: str) -> None:
    """``PathUtils#validatePath``: BADARGUMENTS for what 3.8 refuses."""
    if not path or path[0] != "/":
        raise PrepError(ErrorCode.BADARGUMENTS)
    if len(path) == 1:
        return
    if path[-1] == "/":
        raise PrepError(ErrorCode.BADARGUMENTS)
    for part in path[1:].split("/"):
        if part in ("", ".", ".."):
            raise PrepError(ErrorCode.BADARGUMENTS)
    for ch in path:
        c = ord(ch)
        if 0 <= c <= 0x1F or 0x7F <= c <= 0x9F or 0xD800 <= c <= 0xF8FF or 0xFFF0 <= c <= 0xFFFF:
            raise PrepError(ErrorCode.BADARGUMENTS)


def _parent_of(path: str) -> str:
    slash = path.rfind("/")
    if slash <= 0:
        return "/"
    return path[:slash]


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """3.8's ``ChangeRecord``: a node as the txns prepared so far leave it (``stat``
    None: deleted)."""

    zxid: int
    path: str
    stat: StatPersisted | None
    child_count: int
    acl: tuple[ACL, ...] | None


class OutstandingChanges:
    """The tree seen through the changes of prepared, not yet applied txns."""

    def __init__(self, tree: DataTree) -> None:
        self.tree = tree
        self.changes: dict[str, ChangeRecord] = {}
        self._order: deque[tuple[int, str]] = deque()
        """(zxid, path) as records were put: what ``applied`` may drop, oldest first."""

    def get(self, path: str) -> ChangeRecord:
        rec = self.changes.get(path)
        if rec is None:
            node = self.tree.get(path)
            if node is None:
                raise PrepError(ErrorCode.NONODE)
            return ChangeRecord(-1, path, node.stat, len(node.children), node.acl)
        if rec.stat is None:
            raise PrepError(ErrorCode.NONODE)
        return rec

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except PrepError:
            return False
        return True

    def put(self, rec: ChangeRecord) -> None:
        self.changes[rec.path] = rec
        self._order.append((rec.zxid, rec.path))

    def applied(self, zxid: int) -> None:
        """Txns up to ``zxid`` are in the tree: their records are no longer needed (a
        record a later txn replaced stays, as 3.8's ``outstandingChangesForPath``)."""
        order, changes = self._order, self.changes
        while order and order[0][0] <= zxid:
            _, path = order.popleft()
            rec = changes.get(path)
            if rec is not None and rec.zxid <= zxid:
                del changes[path]


@dataclass(frozen=True, slots=True)
class PrepRequest:
    session_id: int
    cxid: int
    op: int
    record: object
    auth: tuple[Id, ...]
    zxid: int
    time: int


class Prep:
    def __init__(self, changes: OutstandingChanges, *, extended_types: bool = False) -> None:
        self.changes = changes
        self.extended_types = extended_types

    def applied(self, zxid: int) -> None:
        self.changes.applied(zxid)

    # -- sessions ---------------------------------------------------------------------------

    def create_session(self, session_id: int, timeout: int, zxid: int, time: int) -> Txn:
        header = TxnHeader(session_id, 0, zxid, time, OpCode.CREATE_SESSION)
        return Txn(header, CreateSessionTxn(timeout))

    def close_session(self, session_id: int, zxid: int, time: int) -> Txn:
        """``closeSession``: the session's ephemerals, outstanding ones included, deleted."""
        tree = self.changes.tree
        paths = set(tree.ephemerals.get(session_id, ()))
        for rec in self.changes.changes.values():
            if rec.stat is None:
                paths.discard(rec.path)
            elif rec.stat.ephemeral_owner == session_id:
                paths.add(rec.path)
        ordered = sorted(paths)
        for path in ordered:
            self._delete_record(path, zxid)
        header = TxnHeader(session_id, 0, zxid, time, OpCode.CLOSE_SESSION)
        return Txn(header, CloseSessionTxn(tuple(ordered)))

    def delete_container(self, path: str, zxid: int, time: int) -> Txn | None:
        """``deleteContainer`` from the container manager: None when the node changed
        meanwhile (gone, or children again)."""
        try:
            node = self.changes.get(path)
        except PrepError:
            return None
        if node.child_count > 0 or node.stat is None:
            return None
        self._delete_record(path, zxid)
        return Txn(TxnHeader(0, 0, zxid, time, OpCode.DELETE_CONTAINER), DeleteTxn(path))

    # -- writes -----------------------------------------------------------------------------

    def prepare(self, req: PrepRequest) -> Txn:
        header = TxnHeader(req.session_id, req.cxid, req.zxid, req.time, req.op)
        if req.op == OpCode.MULTI:
            assert isinstance(req.record, MultiOperationRecord)
            return Txn(header, self._multi(req, req.record))
        try:
            op, record = self._one(req.op, req.record, req)
        except PrepError as e:
            return Txn(replace(header, type=OpCode.ERROR), ErrorTxn(e.code))
        return Txn(replace(header, type=op), record)

    def _multi(self, req: PrepRequest, multi: MultiOperationRecord) -> MultiTxn:
        saved = dict(self.changes.changes)
        ops: list[MultiOp] = []
        failed = False
        for op in multi.ops:
            if failed:
                ops.append(MultiOp(OpCode.ERROR, ErrorTxn(ErrorCode.RUNTIMEINCONSISTENCY)))
                continue
            try:
                t, record = self._one(op.type, op.request, req)
            except PrepError as e:
                failed = True
                self.changes.changes = saved
                ops.append(MultiOp(OpCode.ERROR, ErrorTxn(e.code)))
                continue
            ops.append(MultiOp(t, record))
        return MultiTxn(tuple(ops))

    def _check_acl(self, perm: int, acl: Sequence[ACL] | None, req: PrepRequest) -> None:
        if not acls.check_acl(perm, acl, req.auth):
            raise PrepError(ErrorCode.NOAUTH)

    def _fixup(self, acl: Sequence[ACL] | None, req: PrepRequest) -> tuple[ACL, ...]:
        try:
            return acls.fixup_acl(acl, req.auth)
        except acls.AclError:
            raise PrepError(ErrorCode.INVALIDACL) from None

    @staticmethod
    def _version(current: int, expected: int) -> int:
        """``checkAndIncVersion``."""
        if expected != -1 and expected != current:
            raise PrepError(ErrorCode.BADVERSION)
        return current + 1

    def _one(self, op: int, rec: object, req: PrepRequest) -> tuple[int, TxnRecord]:
        ch = self.changes
        zxid = req.zxid
        match rec:
            case CreateRequest() | CreateTTLRequest():
                return self._create(op, rec, req)
            case DeleteRequest(path, version):
                validate_path(path)
                parent = ch.get(_parent_of(path)) if path != "/" else None
                if parent is None:
                    raise PrepError(ErrorCode.BADARGUMENTS)
                self._check_acl(acls.DELETE, parent.acl, req)
                node = ch.get(path)
                assert node.stat is not None
                self._version(node.stat.version, version)
                if node.child_count > 0:
                    raise PrepError(ErrorCode.NOTEMPTY)
                self._delete_record(path, zxid)
                return OpCode.DELETE, DeleteTxn(path)
            case SetDataRequest(path, data, version):
                validate_path(path)
                node = ch.get(path)
                assert node.stat is not None
                self._check_acl(acls.WRITE, node.acl, req)
                new_version = self._version(node.stat.version, version)
                stat = replace(node.stat, version=new_version, mzxid=zxid)
                ch.put(replace(node, zxid=zxid, stat=stat))
                return OpCode.SET_DATA, SetDataTxn(path, data, new_version)
            case SetACLRequest(path, acl, version):
                validate_path(path)
                fixed = self._fixup(acl, req)
                node = ch.get(path)
                assert node.stat is not None
                self._check_acl(acls.ADMIN, node.acl, req)
                new_version = self._version(node.stat.aversion, version)
                ch.put(
                    replace(
                        node, zxid=zxid, stat=replace(node.stat, aversion=new_version), acl=fixed
                    )
                )
                return OpCode.SET_ACL, SetACLTxn(path, fixed, new_version)
            case CheckVersionRequest(path, version):
                validate_path(path)
                node = ch.get(path)
                assert node.stat is not None
                self._check_acl(acls.READ, node.acl, req)
                self._version(node.stat.version, version)
                return OpCode.CHECK, CheckVersionTxn(path, version)
        raise PrepError(ErrorCode.UNIMPLEMENTED)

    def _create(
        self, op: int, rec: CreateRequest | CreateTTLRequest, req: PrepRequest
    ) -> tuple[int, TxnRecord]:
        ch = self.changes
        zxid = req.zxid
        try:
            mode = CreateMode(rec.flags)
        except ValueError:
            raise PrepError(ErrorCode.BADARGUMENTS) from None
        ttl = rec.ttl if isinstance(rec, CreateTTLRequest) else -1
        # validateCreateRequest
        if mode.is_ttl or op == OpCode.CREATE_TTL:
            if not self.extended_types or not mode.is_ttl:
                raise PrepError(
                    ErrorCode.UNIMPLEMENTED if not self.extended_types else ErrorCode.BADARGUMENTS
                )
            if ttl <= 0 or ttl > MAX_TTL:
                raise PrepError(ErrorCode.BADARGUMENTS)
        if mode.is_container and op != OpCode.CREATE_CONTAINER:
            raise PrepError(ErrorCode.BADARGUMENTS)
        if op == OpCode.CREATE_CONTAINER and not mode.is_container:
            raise PrepError(ErrorCode.BADARGUMENTS)
        path = rec.path
        validate_path(path + ("1" if mode.is_sequential else ""))
        if path == "/":
            raise PrepError(ErrorCode.BADARGUMENTS)
        parent_path = _parent_of(path)
        fixed = self._fixup(rec.acl, req)
        parent = ch.get(parent_path)
        assert parent.stat is not None
        self._check_acl(acls.CREATE, parent.acl, req)
        cversion = parent.stat.cversion
        if mode.is_sequential:
            path = f"{path}{cversion:010d}"
        validate_path(path)
        if ch.exists(path):
            raise PrepError(ErrorCode.NODEEXISTS)
        owner = parent.stat.ephemeral_owner
        if owner != 0 and owner != CONTAINER_EPHEMERAL_OWNER and not is_ttl_owner(owner):
            raise PrepError(ErrorCode.NOCHILDRENFOREPHEMERALS)
        new_cversion = cversion + 1
        ch.put(
            replace(
                parent,
                zxid=zxid,
                stat=replace(parent.stat, cversion=new_cversion, pzxid=zxid),
                child_count=parent.child_count + 1,
            )
        )
        if mode.is_container:
            node_owner = CONTAINER_EPHEMERAL_OWNER
        elif mode.is_ttl:
            node_owner = (0xFF << 56) | ttl
        elif mode.is_ephemeral:
            node_owner = req.session_id
        else:
            node_owner = 0
        stat = StatPersisted(
            czxid=zxid,
            mzxid=zxid,
            ctime=req.time,
            mtime=req.time,
            pzxid=zxid,
            ephemeral_owner=_signed64(node_owner),
        )
        ch.put(ChangeRecord(zxid, path, stat, 0, fixed))
        if mode.is_container:
            return OpCode.CREATE_CONTAINER, CreateContainerTxn(path, rec.data, fixed, new_cversion)
        if mode.is_ttl:
            return OpCode.CREATE_TTL, CreateTTLTxn(path, rec.data, fixed, new_cversion, ttl)
        txn_op = OpCode.CREATE2 if op == OpCode.CREATE2 else OpCode.CREATE
        return txn_op, CreateTxn(path, rec.data, fixed, mode.is_ephemeral, new_cversion)

    def _delete_record(self, path: str, zxid: int) -> None:
        ch = self.changes
        parent_path = _parent_of(path)
        try:
            parent = ch.get(parent_path)
        except PrepError:
            parent = None
        if parent is not None and parent.stat is not None:
            ch.put(
                replace(
                    parent,
                    zxid=zxid,
                    stat=replace(parent.stat, pzxid=zxid),
                    child_count=max(0, parent.child_count - 1),
                )
            )
        ch.put(ChangeRecord(zxid, path, None, 0, None))


def _signed64(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


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
    s = node.stat
    n = len(node.children)
    owner = s.ephemeral_owner
    if owner == CONTAINER_EPHEMERAL_OWNER or is_ttl_owner(owner):
        owner = 0
    return Stat(
        s.czxid,
        s.mzxid,
        s.ctime,
        s.mtime,
        s.version,
        s.cversion * 2 - n,
        s.aversion,
        owner,
        len(node.data or b""),
        n,
        s.pzxid,
    )


@dataclass(slots=True)
class Effects:
    """``ProcessTxnResult`` plus the watch events to fire."""

    err: int = 0
    path: str | None = None
    subs: list[SubResult] = field(default_factory=list)
    events: list[tuple[EventType, str]] = field(default_factory=list)


def _record_effects(op: int, rec: TxnRecord | None, tree: DataTree, fx: Effects) -> str | None:
    match rec:
        case CreateTxn(path) | CreateContainerTxn(path) | CreateTTLTxn(path):
            fx.events.append((EventType.NODE_CREATED, path))
            fx.events.append((EventType.NODE_CHILDREN_CHANGED, _parent_of(path)))
            return path
        case DeleteTxn(path):
            fx.events.append((EventType.NODE_DELETED, path))
            fx.events.append((EventType.NODE_CHILDREN_CHANGED, _parent_of(path)))
            return path
        case SetDataTxn(path):
            fx.events.append((EventType.NODE_DATA_CHANGED, path))
            return path
        case SetACLTxn(path) | CheckVersionTxn(path):
            return path
        case CloseSessionTxn(paths):
            for path in paths or ():
                if tree.get(path) is not None:
                    fx.events.append((EventType.NODE_DELETED, path))
                    fx.events.append((EventType.NODE_CHILDREN_CHANGED, _parent_of(path)))
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
    return fx
