"""The leader's request preparation: ZooKeeper 3.8's ``PrepRequestProcessor``.

Facts: ``docs/spec/zk-server.md`` §2.6 (znode rules, ACLs), §2.7 (failed writes, multi),
§2.8 (sessions), §2.10 (TxnDigest).  :meth:`Prep.prepare` turns one client request (from a
learner's REQUEST or the leader's own client port) into the txn the leader proposes, or
into nothing (reads, ping, sync only check the session).

What it reads and updates:

* the committed tree (:class:`PrepTree`, read only);
* :class:`OutstandingChanges`: 3.8's ``ChangeRecord`` queue of proposed but not yet
  applied changes, so that pipelined requests see the effects of earlier ones.  Prep adds
  to it; the leader calls :meth:`OutstandingChanges.applied` when a txn is applied
  (``ZooKeeperServer#processTxn`` drops every record up to that zxid);
* the leader's :class:`~zkquorum.core.sessions.SessionTracker` (session checks, owners,
  createSession tracking, closeSession's closing flag).

Everything else is an argument: the zxid to use (consumed when a txn comes back), the
txn time (wall-clock ms), the caller's auth ids and connection owner.  The same inputs
give the same txn; nothing here reads a clock.

Rules kept from 3.8.0, in its order (``pRequest2Txn`` and ``pRequest2TxnCreate``):

* a failed write is still a txn: ``TxnHeader{type=error}`` + ``ErrorTxn{code}``, without
  a TxnDigest, at the zxid it was given;
* a multi is one zxid; on the first failure its change records roll back, the failed op
  becomes ``ErrorTxn{code}``, the ops after it ``ErrorTxn{RUNTIMEINCONSISTENCY}``, and the
  ops before it keep their full txns; the multi's digest is the tree digest after what
  remains outstanding;
* a request whose body does not decode is MARSHALLINGERROR as an error txn for the ops
  that decode inside ``pRequest2Txn`` (a null path where 3.8 dereferences it, too);
* containers and TTL nodes, ``%010d`` sequential names from the parent's *stored*
  cversion, ``""`` as the root's name when it is a parent (3.8's DataTree alias);
* session checks as ``LeaderSessionTracker`` (unknown or closing: SESSIONEXPIRED; another
  owner: SESSIONMOVED, as an error txn like any other failure);
* closeSession lists the session's ephemerals, committed and outstanding, in the order
  of the ``HashSet`` 3.8 builds, and always carries the vector;
* sync, like every read, only checks the session here; the leader then answers it once
  nothing proposed before it is outstanding (``Leader#processSync``).

3.8's own inconsistencies are kept, because a Java follower computes the same thing: a
failed multi forgets its ops' parents' outstanding records (``getPendingChanges``), a
closeSession's parent records keep their child counts, a createContainer or createTTL
whose flags name another mode records that mode's owner.

``reconfig`` needs a :class:`ReconfigContext` (the leader's configs and its synced
followers); without one (standalone) it is RECONFIGDISABLED, or UNIMPLEMENTED with
``reconfigEnabled=true``, as on 3.8's standalone server.

Left out: quotas are not enforced (3.8's default, ``zookeeper.enforceQuota=false``); local
sessions (off by default) do not exist.
"""

from __future__ import annotations

import enum
import functools
import logging
import re
from collections import deque
from collections.abc import (
    Callable,
    Collection,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    Set,
)
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final, Protocol

from zkquorum.config.reconfig import BadReconfig, MalformedReconfig, next_config
from zkquorum.config.verifier import QuorumVerifier
from zkquorum.core.acl import (
    AuthSettings,
    InvalidACL,
    MalformedACL,
    Perms,
    check_acl,
    fixup_acl,
)
from zkquorum.core.javaorder import spread, string_hash
from zkquorum.core.sessions import SessionCheck, SessionTracker
from zkquorum.wire.client_records import (
    CONFIG_NODE,
    CheckVersionRequest,
    ClientProtocolError,
    CreateMode,
    CreateRequest,
    CreateSessionRequest,
    CreateTTLRequest,
    DeleteContainerRequest,
    DeleteRequest,
    ErrorCode,
    MultiOperationRecord,
    ReconfigRequest,
    RequestRecord,
    SetACLRequest,
    SetDataRequest,
    decode_request_body,
    is_null,
)
from zkquorum.wire.jute import ACL, Id, StatPersisted, restat
from zkquorum.wire.records import fast_init
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
    TxnDigest,
    TxnHeader,
    TxnRecord,
)

log = logging.getLogger(__name__)

__all__ = [
    "DIGEST_VERSION",
    "ChangeRecord",
    "Digests",
    "OutstandingChanges",
    "Prep",
    "PrepNode",
    "PrepRequest",
    "PrepResult",
    "PrepSettings",
    "PrepTree",
    "ReconfigContext",
    "ephemeral_type",
    "java_hash_set_order",
    "validate_path",
]

DIGEST_VERSION: Final = 2
"""``DigestCalculator.DIGEST_VERSION``: the version every TxnDigest carries."""

CONTAINER_EPHEMERAL_OWNER: Final = -(1 << 63)
_EXTENDED_MASK: Final = -(1 << 56)  # 0xff00000000000000 as a Java long
_RESERVED_BITS_MASK: Final = 0x00FFFF0000000000
TTL_MAX: Final = 0x000000FFFFFFFFFF
"""``EphemeralType.TTL.maxValue()``: the 40 low bits of an ephemeral owner."""

_BAD_PATH_CHAR: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\U0010ffff]")
"""``PathUtils.validatePath``'s refused characters (past the BMP: Java's surrogates)."""

_SPECIAL_PATHS: Final = frozenset({"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"})
"""``DataTree#isSpecialPath``: not deletable."""

_READ_OPS: Final = frozenset(
    {
        OpCode.SYNC,
        OpCode.EXISTS,
        OpCode.GET_DATA,
        OpCode.GET_ACL,
        OpCode.GET_CHILDREN,
        OpCode.GET_ALL_CHILDREN_NUMBER,
        OpCode.GET_CHILDREN2,
        OpCode.PING,
        OpCode.SET_WATCHES,
        OpCode.SET_WATCHES2,
        OpCode.CHECK_WATCHES,
        OpCode.REMOVE_WATCHES,
        OpCode.GET_EPHEMERALS,
        OpCode.MULTI_READ,
        OpCode.ADD_WATCH,
        OpCode.WHO_AM_I,
    }
)
"""Ops for which 3.8's prep only checks the session (no zxid, no txn)."""

_CREATE_OPS: Final = frozenset(
    {OpCode.CREATE, OpCode.CREATE2, OpCode.CREATE_CONTAINER, OpCode.CREATE_TTL}
)


# --------------------------------------------------------------------------- inputs


class PrepNode(Protocol):
    """What prep reads of a committed node."""

    @property
    def data(self) -> bytes | None: ...
    @property
    def acl(self) -> tuple[ACL, ...] | None: ...
    @property
    def stat(self) -> StatPersisted: ...
    @property
    def children(self) -> Collection[str]: ...


class PrepTree(Protocol):
    """What prep reads of the committed data tree (``core/datatree.py`` fits)."""

    def get(self, path: str) -> PrepNode | None: ...

    @property
    def ephemerals(self) -> Mapping[int, Set[str]]: ...


class Digests(Protocol):
    """The digest side of the tree (``DigestCalculator``, ``DataTree#getTreeDigest``)."""

    def node_digest(self, path: str, data: bytes | None, stat: StatPersisted) -> int: ...

    def tree_digest(self) -> int: ...


@fast_init
@dataclass(frozen=True, slots=True)
class PrepSettings:
    """The JVM flags 3.8's prep depends on."""

    extended_types_enabled: bool = False
    """``zookeeper.extendedTypesEnabled``: TTL nodes, and TTL-marked ephemeral owners."""
    close_session_txn_enabled: bool = True
    """``zookeeper.closeSessionTxn.enabled``: closeSession carries its paths."""
    auth: AuthSettings = field(default_factory=AuthSettings)
    reconfig_enabled: bool = False
    """``reconfigEnabled``: what a server with no :class:`ReconfigContext` answers."""


@fast_init
@dataclass(frozen=True, slots=True)
class ReconfigContext:
    """What ``pRequest2TxnReconfig`` asks of the leader (``LeaderZooKeeperServer``)."""

    enabled: bool
    standalone_enabled: bool
    current: QuorumVerifier
    last_seen: QuorumVerifier
    quorum_synced: Callable[[QuorumVerifier], bool]
    """``Leader#isQuorumSynced``: a quorum of the config is connected and synced."""


@fast_init
@dataclass(frozen=True, slots=True)
class PrepRequest:
    """One request as prep sees it (``Request``).

    ``record`` is the decoded body (``wire.client_records.decode_request_body``), ``None``
    for bodiless ops; ``malformed`` says the body did not decode (3.8: MARSHALLINGERROR).
    ``owner`` is the connection the request came through: a learner connection, or the
    leader's own client port (compared with ``==``, see ``SessionTracker``).
    """

    session_id: int
    cxid: int
    type: int
    record: RequestRecord | None = None
    auth_ids: tuple[Id, ...] = ()
    owner: Hashable = None
    malformed: bool = False
    internal: bool = False
    """Submitted by the leader itself: the ContainerManager's deleteContainer (the only
    one 3.8 can carry out) or the session expirer's closeSession."""

    @classmethod
    def decode(
        cls,
        session_id: int,
        cxid: int,
        op: int,
        body: bytes,
        auth_ids: tuple[Id, ...] = (),
        owner: Hashable = None,
    ) -> PrepRequest:
        """A request from its raw body: a learner's REQUEST packet (``sessionId | cxid |
        type | body``, its authinfo) or a frame of the leader's own client port."""
        try:
            record = decode_request_body(op, body)
        except ClientProtocolError:
            return cls(session_id, cxid, op, None, auth_ids, owner, malformed=True)
        return cls(session_id, cxid, op, record, auth_ids, owner)


@fast_init
@dataclass(frozen=True, slots=True)
class PrepResult:
    """A txn to propose (it used the given zxid), or ``None``; and the request's error
    (``Request#getException``: what a multi's first failure or a session check said)."""

    txn: Txn | None
    err: ErrorCode = ErrorCode.OK
    config: QuorumVerifier | None = None
    """A reconfig's new config (``Request#qv``)."""


# --------------------------------------------------------------------------- change records


class _Keep(enum.Enum):
    """ "Leave the field as it is" for :meth:`ChangeRecord.duplicate` (``None`` is data)."""

    KEEP = "keep"


_KEEP: Final = _Keep.KEEP


@fast_init
@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """``ZooKeeperServer.ChangeRecord``: a node as it will be once ``zxid`` is applied.

    ``stat is None`` is a deletion.  ``node_digest``/``tree_digest`` are 3.8's
    ``PrecalculatedDigest`` (``None`` when digests are off).
    """

    zxid: int
    path: str
    stat: StatPersisted | None
    child_count: int
    acl: tuple[ACL, ...] | None
    data: bytes | None = None
    node_digest: int | None = None
    tree_digest: int | None = None

    def duplicate(
        self,
        zxid: int,
        stat: StatPersisted,
        *,
        child_delta: int = 0,
        acl: tuple[ACL, ...] | None = None,
        data: bytes | _Keep | None = _KEEP,
    ) -> ChangeRecord:
        """``ChangeRecord#duplicate`` with the change applied: new zxid and ``stat``;
        ``acl``/``data`` replaced when given; a missing ACL becomes empty.  (Built
        directly: ``dataclasses.replace`` cost a third of a create.)"""
        if acl is None:
            acl = self.acl if self.acl is not None else ()
        return ChangeRecord(
            zxid,
            self.path,
            stat,
            self.child_count + child_delta,
            acl,
            self.data if isinstance(data, _Keep) else data,
            self.node_digest,
            self.tree_digest,
        )


class OutstandingChanges:
    """``outstandingChanges`` (zxid order) and ``outstandingChangesForPath`` (the newest
    record of each path)."""

    __slots__ = ("_by_path", "_queue")

    def __init__(self) -> None:
        self._queue: deque[ChangeRecord] = deque()
        self._by_path: dict[str, ChangeRecord] = {}

    def __len__(self) -> int:
        return len(self._queue)

    def __iter__(self) -> Iterator[ChangeRecord]:
        return iter(self._queue)

    def get(self, path: str) -> ChangeRecord | None:
        return self._by_path.get(path)

    def last(self) -> ChangeRecord | None:
        return self._queue[-1] if self._queue else None

    def add(self, record: ChangeRecord) -> None:
        self._queue.append(record)
        self._by_path[record.path] = record

    def applied(self, zxid: int) -> None:
        """The txn ``zxid`` was applied to the tree: its records (and older) are now in
        the tree (``ZooKeeperServer#processTxn``)."""
        queue, by_path = self._queue, self._by_path
        while queue and queue[0].zxid <= zxid:
            record = queue.popleft()
            if by_path.get(record.path) is record:
                del by_path[record.path]

    def clear(self) -> None:
        """Leadership ended: nothing proposed is outstanding any more."""
        self._queue.clear()
        self._by_path.clear()

    def pending_for(self, paths: Iterable[str]) -> dict[str, ChangeRecord]:
        """``getPendingChanges``: the current records of a multi's paths."""
        out: dict[str, ChangeRecord] = {}
        for path in paths:
            record = self._by_path.get(path)
            if record is not None:
                out[path] = record
        return out

    def rollback(self, zxid: int, pending: Mapping[str, ChangeRecord]) -> None:
        """``rollbackPendingChanges``: drop the records of ``zxid`` (the newest ones) and
        put back the multi's earlier records that are still outstanding."""
        queue, by_path = self._queue, self._by_path
        while queue and queue[-1].zxid == zxid:
            record = queue.pop()
            by_path.pop(record.path, None)
        if not queue:
            return
        first = queue[0].zxid
        for record in pending.values():
            if record.zxid >= first:
                by_path[record.path] = record


# --------------------------------------------------------------------------- path rules


@functools.lru_cache(maxsize=4096)
def validate_path(path: str | None) -> bool:
    """``PathUtils.validatePath``: absolute, no empty, ``.`` or ``..`` segments, no
    trailing ``/``, none of the characters 3.8 refuses.

    Java checks UTF-16 units: any character outside the BMP is a surrogate pair there,
    which the ``\\ud800-\\uf8ff`` rule refuses, so it is refused here as well.
    """
    if path is None or is_null(path) or not path or path[0] != "/":
        return False
    if len(path) == 1:
        return True
    if path[-1] == "/":
        return False
    for segment in path[1:].split("/"):
        if not segment or segment in (".", ".."):
            return False
    return _BAD_PATH_CHAR.search(path) is None


class EphemeralKind(enum.Enum):
    """``EphemeralType``."""

    VOID = "void"
    NORMAL = "normal"
    CONTAINER = "container"
    TTL = "ttl"


class _Marshalling(Exception):
    """3.8 would throw a non-KeeperException here: the request becomes MARSHALLINGERROR."""


def ephemeral_type(owner: int, extended_types_enabled: bool) -> EphemeralKind:
    """``EphemeralType.get``: with extended types, a ``0xff`` high byte marks a TTL owner
    (an unknown feature there is an error, which 3.8 turns into MARSHALLINGERROR)."""
    if extended_types_enabled and owner & _EXTENDED_MASK == _EXTENDED_MASK:
        if (owner & _RESERVED_BITS_MASK) >> 40 != 0:
            raise _Marshalling(f"invalid ephemeral owner {owner:#x}")
        return EphemeralKind.TTL
    if owner == CONTAINER_EPHEMERAL_OWNER:
        return EphemeralKind.CONTAINER
    return EphemeralKind.VOID if owner == 0 else EphemeralKind.NORMAL


def _ttl_owner(ttl: int) -> int:
    """``EphemeralType.TTL.toEphemeralOwner`` (the caller validated ``ttl``)."""
    return _EXTENDED_MASK | ttl


class _Fail(Exception):
    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code)
        self.code = code


_SESSION_ERRORS: Final[Mapping[SessionCheck, ErrorCode]] = MappingProxyType(
    {
        SessionCheck.UNKNOWN: ErrorCode.UNKNOWNSESSION,
        SessionCheck.EXPIRED: ErrorCode.SESSIONEXPIRED,
        SessionCheck.MOVED: ErrorCode.SESSIONMOVED,
    }
)


def _parent_for_create(path: str) -> str:
    """``validatePathForCreate``."""
    if is_null(path):
        raise _Marshalling("null path")
    slash = path.rfind("/")
    if slash < 0 or "\0" in path:
        raise _Fail(ErrorCode.BADARGUMENTS)
    return path[:slash]


def _parent_and_validate(path: str) -> str:
    """``getParentPathAndValidate``: also refuses the special paths."""
    if is_null(path):
        raise _Marshalling("null path")
    slash = path.rfind("/")
    if slash < 0 or "\0" in path or path in _SPECIAL_PATHS:
        raise _Fail(ErrorCode.BADARGUMENTS)
    return path[:slash]


def _fixup_acl(
    acl: tuple[ACL, ...] | None, request: PrepRequest, settings: PrepSettings
) -> tuple[ACL, ...]:
    try:
        return fixup_acl(acl, request.auth_ids, settings.auth)
    except InvalidACL:
        raise _Fail(ErrorCode.INVALIDACL) from None
    except MalformedACL:
        raise _Marshalling("null string in an ACL") from None


def _check_and_inc_version(current: int, expected: int) -> int:
    if expected != -1 and expected != current:
        raise _Fail(ErrorCode.BADVERSION)
    return current + 1


# --------------------------------------------------------------------------- the processor


class _Context:
    """One request's view: the tree, the outstanding records, the digest running sum."""

    __slots__ = ("changes", "digests", "now", "sessions", "settings", "tree")

    def __init__(
        self,
        tree: PrepTree,
        changes: OutstandingChanges,
        sessions: SessionTracker,
        digests: Digests | None,
        settings: PrepSettings,
        now: float,
    ) -> None:
        self.now = now
        self.tree = tree
        self.changes = changes
        self.sessions = sessions
        self.digests = digests
        self.settings = settings

    def record_for_path(self, path: str) -> ChangeRecord:
        """``getRecordForPath``: the outstanding record, else the committed node; NONODE
        for neither or a pending deletion."""
        record = self.changes.get(path)
        if record is None:
            node = self.tree.get(path or "/")
            if node is not None:
                node_digest = None
                if self.digests is not None:
                    node_digest = self.digests.node_digest(path, node.data, node.stat)
                record = ChangeRecord(
                    -1, path, node.stat, len(node.children), node.acl, node.data, node_digest
                )
        if record is None or record.stat is None:
            raise _Fail(ErrorCode.NONODE)
        return record

    def exists(self, path: str) -> bool:
        try:
            self.record_for_path(path)
        except _Fail:
            return False
        return True

    def current_tree_digest(self) -> int:
        assert self.digests is not None
        last = self.changes.last()
        if last is None or last.tree_digest is None:
            return self.digests.tree_digest()
        return last.tree_digest

    def with_digest(
        self, record: ChangeRecord, *, previous: int | None, removed: bool = False
    ) -> ChangeRecord:
        """``precalculateDigest``: ADD (``previous`` 0), UPDATE or REMOVE of one node."""
        if self.digests is None:
            return record
        new = 0
        if not removed:
            assert record.stat is not None
            new = self.digests.node_digest(record.path, record.data, record.stat)
        tree = self.current_tree_digest() - (previous or 0) + new
        tree = (tree + (1 << 63)) % (1 << 64) - (1 << 63)  # a Java long
        r = record
        return ChangeRecord(r.zxid, r.path, r.stat, r.child_count, r.acl, r.data, new, tree)

    def previous_digest(self, path: str) -> int | None:
        if self.digests is None:
            return None
        return self.record_for_path(path).node_digest

    def check_session(self, request: PrepRequest) -> None:
        """``LeaderSessionTracker#checkSession`` / ``#checkGlobalSession`` (local sessions
        off, so they agree): an unknown session is SESSIONEXPIRED, not UNKNOWNSESSION as
        on a standalone server; a closing one too; another owner is SESSIONMOVED."""
        result = self.sessions.check_global_session(request.session_id, request.owner)
        if result is not SessionCheck.OK:
            raise _Fail(_SESSION_ERRORS[result])

    def check_acl(self, perm: Perms, acl: tuple[ACL, ...] | None, request: PrepRequest) -> None:
        if not check_acl(perm, acl, request.auth_ids, self.settings.auth):
            raise _Fail(ErrorCode.NOAUTH)


class Prep:
    """``PrepRequestProcessor`` for one leader: settings, then :meth:`prepare` per request."""

    __slots__ = ("settings",)

    def __init__(self, settings: PrepSettings | None = None) -> None:
        self.settings = settings or PrepSettings()

    def prepare(
        self,
        request: PrepRequest,
        *,
        zxid: int,
        time: int,
        now: float,
        tree: PrepTree,
        changes: OutstandingChanges,
        sessions: SessionTracker,
        digests: Digests | None = None,
        reconfig: ReconfigContext | None = None,
    ) -> PrepResult:
        """``pRequest``: the txn for ``request`` at ``zxid`` (``None`` for ops that
        need none), updating ``changes`` and ``sessions`` as 3.8 does.

        ``time`` is the txn header's wall-clock ms; ``now`` the core's monotonic ms (for
        the session tracker).  ``digests`` ``None`` means ``zookeeper.digest.enabled=false``:
        no TxnDigest.  ``reconfig``: the leader's side of a reconfig request.
        """
        ctx = _Context(tree, changes, sessions, digests, self.settings, now)
        op = request.type
        header = TxnHeader(request.session_id, request.cxid, zxid, time, op)
        if op in _READ_OPS:
            try:
                ctx.check_session(request)
            except _Fail as f:
                return PrepResult(None, f.code)
            return PrepResult(None)
        if op == OpCode.MULTI:
            if request.malformed or not isinstance(request.record, MultiOperationRecord):
                return _error_txn(header, ErrorCode.MARSHALLINGERROR)
            return self._multi(ctx, request, header, request.record)
        if op == OpCode.RECONFIG:
            if request.malformed:
                # Decoded before a zxid is taken (pRequestHelper): no txn at all.
                return PrepResult(None, ErrorCode.MARSHALLINGERROR)
            try:
                return self._reconfig(ctx, request, header, request.record, reconfig)
            except _Fail as f:
                return _error_txn(header, f.code)
        if op not in _WRITE_OPS:
            return PrepResult(None)  # "unknown type": 3.8 logs and passes it on
        try:
            record, digest = self._one(ctx, request, header, op, request.record)
        except _Fail as f:
            return _error_txn(header, f.code)
        except _Marshalling:
            return _error_txn(header, ErrorCode.MARSHALLINGERROR)
        if digest is None and digests is not None:
            digest = TxnDigest(DIGEST_VERSION, ctx.current_tree_digest())
        return PrepResult(Txn(header, record, digest))

    # -- one op (pRequest2Txn)

    def _one(
        self,
        ctx: _Context,
        request: PrepRequest,
        header: TxnHeader,
        op: int,
        body: object,
    ) -> tuple[TxnRecord | None, TxnDigest | None]:
        """One op's txn record and, when it computed one, its TxnDigest."""
        malformed = request.malformed
        if op in _CREATE_OPS:
            if malformed:
                raise _Marshalling("create body")
            return self._create(ctx, request, header, op, body)
        if op == OpCode.DELETE_CONTAINER:
            if not request.internal:
                # 3.8 takes the path as `new String(request.request.array())`: for a
                # client's frame or a learner's REQUEST that array starts with the
                # header, whose op code (00 00 00 14) puts NULs in the "path".
                raise _Fail(ErrorCode.BADARGUMENTS)
            if malformed or not isinstance(body, DeleteContainerRequest):
                raise _Marshalling("deleteContainer body")
            return self._delete(ctx, request, header, body.path, -1, container=True)
        if op == OpCode.DELETE:
            ctx.check_session(request)
            if malformed or not isinstance(body, DeleteRequest):
                raise _Marshalling("delete body")
            return self._delete(ctx, request, header, body.path, body.version, container=False)
        if op == OpCode.SET_DATA:
            ctx.check_session(request)
            if malformed or not isinstance(body, SetDataRequest):
                raise _Marshalling("setData body")
            return self._set_data(ctx, request, header, body)
        if op == OpCode.SET_ACL:
            ctx.check_session(request)
            if malformed or not isinstance(body, SetACLRequest):
                raise _Marshalling("setACL body")
            return self._set_acl(ctx, request, header, body)
        if op == OpCode.CHECK:
            ctx.check_session(request)
            if malformed or not isinstance(body, CheckVersionRequest):
                raise _Marshalling("check body")
            if not validate_path(body.path):
                raise _Fail(ErrorCode.BADARGUMENTS)
            node = ctx.record_for_path(body.path)
            ctx.check_acl(Perms.READ, node.acl, request)
            assert node.stat is not None
            version = _check_and_inc_version(node.stat.version, body.version)
            return CheckVersionTxn(body.path, version), None
        if op == OpCode.CREATE_SESSION:
            if malformed or not isinstance(body, CreateSessionRequest):
                raise _Marshalling("createSession body")
            # ZooKeeperServer#setOwner after trackSession: a closing session is expired.
            ctx.sessions.track_session(request.session_id, body.timeout, ctx.now)
            if not ctx.sessions.set_owner(request.session_id, request.owner):
                raise _Fail(ErrorCode.SESSIONEXPIRED)
            return CreateSessionTxn(body.timeout), None
        if op == OpCode.CLOSE_SESSION:
            return self._close_session(ctx, request, header), None
        raise AssertionError(f"not a write op: {op}")  # pragma: no cover

    def _create(
        self,
        ctx: _Context,
        request: PrepRequest,
        header: TxnHeader,
        op: int,
        body: object,
    ) -> tuple[TxnRecord, TxnDigest | None]:
        """``pRequest2TxnCreate``."""
        ttl = -1
        if op == OpCode.CREATE_TTL:
            if not isinstance(body, CreateTTLRequest):
                raise _Marshalling("createTTL body")
            ttl = body.ttl
        elif not isinstance(body, CreateRequest):
            raise _Marshalling("create body")
        path, data, acl, flags = body.path, body.data, body.acl, body.flags
        mode = CreateMode.from_flag(flags)
        if mode is None:
            raise _Fail(ErrorCode.BADARGUMENTS)
        # validateCreateRequest
        if mode.is_ttl and not ctx.settings.extended_types_enabled:
            raise _Fail(ErrorCode.UNIMPLEMENTED)
        if mode.is_ttl:
            if ttl > TTL_MAX or ttl <= 0:
                raise _Fail(ErrorCode.BADARGUMENTS)
        elif ttl >= 0:
            raise _Fail(ErrorCode.BADARGUMENTS)
        ctx.check_session(request)
        parent_path = _parent_for_create(path)
        new_acl = _fixup_acl(acl, request, ctx.settings)
        parent = ctx.record_for_path(parent_path)
        ctx.check_acl(Perms.CREATE, parent.acl, request)
        assert parent.stat is not None
        parent_cversion = parent.stat.cversion
        if mode.is_sequential:
            path = f"{path}{parent_cversion:010d}"
        if not validate_path(path):
            raise _Fail(ErrorCode.BADARGUMENTS)
        if ctx.exists(path):
            raise _Fail(ErrorCode.NODEEXISTS)
        parent_kind = ephemeral_type(
            parent.stat.ephemeral_owner, ctx.settings.extended_types_enabled
        )
        if parent_kind is EphemeralKind.NORMAL:
            raise _Fail(ErrorCode.NOCHILDRENFOREPHEMERALS)
        new_cversion = parent_cversion + 1
        txn: TxnRecord
        if op == OpCode.CREATE_CONTAINER:
            txn = CreateContainerTxn(path, data, new_acl, new_cversion)
        elif op == OpCode.CREATE_TTL:
            txn = CreateTTLTxn(path, data, new_acl, new_cversion, ttl)
        else:
            txn = CreateTxn(path, data, new_acl, mode.is_ephemeral, new_cversion)
        owner = 0
        if mode.is_container:
            owner = CONTAINER_EPHEMERAL_OWNER
        elif mode.is_ttl:
            owner = _ttl_owner(ttl)
        elif mode.is_ephemeral:
            owner = request.session_id
        zxid = header.zxid
        stat = StatPersisted(
            czxid=zxid,
            mzxid=zxid,
            ctime=header.time,
            mtime=header.time,
            pzxid=zxid,
            ephemeral_owner=owner,
        )
        parent_prev = ctx.previous_digest(parent_path)
        new_parent = parent.duplicate(
            zxid, restat(parent.stat, cversion=new_cversion, pzxid=zxid), child_delta=1
        )
        ctx.changes.add(ctx.with_digest(new_parent, previous=parent_prev))
        node = ctx.with_digest(ChangeRecord(zxid, path, stat, 0, new_acl, data), previous=0)
        ctx.changes.add(node)
        return txn, _digest_of(node)

    def _delete(
        self,
        ctx: _Context,
        request: PrepRequest,
        header: TxnHeader,
        path: str,
        version: int,
        *,
        container: bool,
    ) -> tuple[TxnRecord, TxnDigest | None]:
        parent_path = _parent_and_validate(path)
        if container:
            node = ctx.record_for_path(path)
            if node.child_count > 0:
                raise _Fail(ErrorCode.NOTEMPTY)
            assert node.stat is not None
            kind = ephemeral_type(node.stat.ephemeral_owner, ctx.settings.extended_types_enabled)
            if kind is EphemeralKind.NORMAL:
                raise _Fail(ErrorCode.BADVERSION)
            parent = ctx.record_for_path(parent_path)
        else:
            parent = ctx.record_for_path(parent_path)
            ctx.check_acl(Perms.DELETE, parent.acl, request)
            node = ctx.record_for_path(path)
            assert node.stat is not None
            _check_and_inc_version(node.stat.version, version)
            if node.child_count > 0:
                raise _Fail(ErrorCode.NOTEMPTY)
        zxid = header.zxid
        parent_prev = ctx.previous_digest(parent_path)
        assert parent.stat is not None
        new_parent = parent.duplicate(zxid, restat(parent.stat, pzxid=zxid), child_delta=-1)
        ctx.changes.add(ctx.with_digest(new_parent, previous=parent_prev))
        node_prev = ctx.previous_digest(path)
        gone = ctx.with_digest(
            ChangeRecord(zxid, path, None, -1, None), previous=node_prev, removed=True
        )
        ctx.changes.add(gone)
        return DeleteTxn(path), _digest_of(gone)

    def _set_data(
        self, ctx: _Context, request: PrepRequest, header: TxnHeader, body: SetDataRequest
    ) -> tuple[TxnRecord, TxnDigest | None]:
        path = body.path
        if not validate_path(path):
            raise _Fail(ErrorCode.BADARGUMENTS)
        node = ctx.record_for_path(path)
        ctx.check_acl(Perms.WRITE, node.acl, request)
        assert node.stat is not None
        version = _check_and_inc_version(node.stat.version, body.version)
        zxid = header.zxid
        prev = node.node_digest
        stat = restat(node.stat, version=version, mtime=header.time, mzxid=zxid)
        updated = node.duplicate(zxid, stat, data=body.data)
        updated = ctx.with_digest(updated, previous=prev)
        ctx.changes.add(updated)
        return SetDataTxn(path, body.data, version), _digest_of(updated)

    def _reconfig(
        self,
        ctx: _Context,
        request: PrepRequest,
        header: TxnHeader,
        body: RequestRecord | None,
        reconfig: ReconfigContext | None,
    ) -> PrepResult:
        """``pRequest2TxnReconfig``, its checks in 3.8's order: enabled, session, a
        leader, no reconfig in progress, ``fromConfig``, the new config, at least two
        voters (one without ``standaloneEnabled``), a synced quorum of it, and WRITE on
        /zookeeper/config last.  The txn is a setData of /zookeeper/config to the new
        config's text, version -1, at a version that is the txn's zxid."""
        enabled = reconfig.enabled if reconfig is not None else self.settings.reconfig_enabled
        if not enabled:
            raise _Fail(ErrorCode.RECONFIGDISABLED)
        if not isinstance(body, ReconfigRequest):
            return PrepResult(None, ErrorCode.MARSHALLINGERROR)
        ctx.check_session(request)
        if reconfig is None:
            raise _Fail(ErrorCode.UNIMPLEMENTED)  # standalone
        last_seen = reconfig.last_seen
        if last_seen.version != reconfig.current.version:
            raise _Fail(ErrorCode.RECONFIGINPROGRESS)
        if body.cur_config_id != -1 and body.cur_config_id != last_seen.version:
            raise _Fail(ErrorCode.BADVERSION)
        try:
            qv = next_config(
                last_seen,
                joining=None if is_null(body.joining_servers) else body.joining_servers,
                leaving=None if is_null(body.leaving_servers) else body.leaving_servers,
                new_members=None if is_null(body.new_members) else body.new_members,
                version=header.zxid,
                standalone_enabled=reconfig.standalone_enabled,
            )
        except BadReconfig as exc:
            log.warning("reconfig refused: %s", exc)
            raise _Fail(ErrorCode.BADARGUMENTS) from exc
        except MalformedReconfig as exc:
            log.error("Failed to process reconfig: %s", exc)
            raise _Fail(ErrorCode.MARSHALLINGERROR) from exc
        if not reconfig.quorum_synced(qv):
            log.warning(
                "Reconfig failed - there must be a connected and synced quorum in new configuration"
            )
            raise _Fail(ErrorCode.NEWCONFIGNOQUORUM)
        node = ctx.record_for_path(CONFIG_NODE)
        ctx.check_acl(Perms.WRITE, node.acl, request)
        assert node.stat is not None
        data = qv.to_zk_string().encode()
        stat = restat(node.stat, version=-1, mtime=header.time, mzxid=header.zxid)
        # The config node is outside the digest: the tree digest does not move.
        updated = node.duplicate(header.zxid, stat, data=data)
        ctx.changes.add(updated)
        digest = None
        if ctx.digests is not None:
            digest = TxnDigest(DIGEST_VERSION, ctx.current_tree_digest())
        return PrepResult(Txn(header, SetDataTxn(CONFIG_NODE, data, -1), digest), config=qv)

    def _set_acl(
        self, ctx: _Context, request: PrepRequest, header: TxnHeader, body: SetACLRequest
    ) -> tuple[TxnRecord, TxnDigest | None]:
        path = body.path
        if not validate_path(path):
            raise _Fail(ErrorCode.BADARGUMENTS)
        new_acl = _fixup_acl(body.acl, request, ctx.settings)
        node = ctx.record_for_path(path)
        ctx.check_acl(Perms.ADMIN, node.acl, request)
        assert node.stat is not None
        version = _check_and_inc_version(node.stat.aversion, body.version)
        prev = node.node_digest
        updated = node.duplicate(header.zxid, restat(node.stat, aversion=version), acl=new_acl)
        updated = ctx.with_digest(updated, previous=prev)
        ctx.changes.add(updated)
        return SetACLTxn(path, new_acl, version), _digest_of(updated)

    def _close_session(
        self, ctx: _Context, request: PrepRequest, header: TxnHeader
    ) -> TxnRecord | None:
        """closeSession: the session's ephemerals, committed and outstanding, go.

        No session check (the expirer submits it without owning the session).  The paths
        come in the order 3.8's ``HashSet`` gives them (:func:`java_hash_set_order`), so
        that the txn is the Java leader's byte for byte.
        """
        sid = request.session_id
        committed = sorted(ctx.tree.ephemerals.get(sid, ()), key=_creation_key(ctx.tree))
        edits: list[tuple[str, bool]] = []
        for record in ctx.changes:
            if record.stat is None:
                edits.append((record.path, False))
            elif record.stat.ephemeral_owner == sid:
                edits.append((record.path, True))
        paths = java_hash_set_order(committed, edits)
        zxid = header.zxid
        for path in paths:
            if ctx.digests is not None:
                parent_path = _parent_and_validate(path)
                parent = ctx.record_for_path(parent_path)
                prev = parent.node_digest
                assert parent.stat is not None
                new_parent = parent.duplicate(zxid, restat(parent.stat, pzxid=zxid))
                ctx.changes.add(ctx.with_digest(new_parent, previous=prev))
            node_prev = ctx.previous_digest(path)
            gone = ChangeRecord(zxid, path, None, 0, None)
            ctx.changes.add(ctx.with_digest(gone, previous=node_prev, removed=True))
        ctx.sessions.set_session_closing(sid)
        if ctx.settings.close_session_txn_enabled:
            return CloseSessionTxn(tuple(paths))
        return None

    # -- multi

    def _multi(
        self,
        ctx: _Context,
        request: PrepRequest,
        header: TxnHeader,
        multi: MultiOperationRecord,
    ) -> PrepResult:
        """A multi: every op at ``header.zxid``, all or nothing."""
        zxid = header.zxid
        if any(op.type not in _MULTI_WRITE_OPS for op in multi.ops):
            # A multi of reads: pRequest2Txn knows no such op, the null txn fails to
            # serialize, and the whole request is MARSHALLINGERROR.
            return _error_txn(header, ErrorCode.MARSHALLINGERROR)
        pending = ctx.changes.pending_for([op.request.path for op in multi.ops])
        ops: list[MultiOp] = []
        failure: ErrorCode | None = None
        for op in multi.ops:
            if failure is not None:
                ops.append(MultiOp(OpCode.ERROR, ErrorTxn(ErrorCode.RUNTIMEINCONSISTENCY)))
                continue
            sub = replace(request, type=op.type, record=op.request)
            try:
                record, _ = self._one(ctx, sub, header, op.type, op.request)
            except _Fail as f:
                failure = f.code
                ops.append(MultiOp(OpCode.ERROR, ErrorTxn(failure)))
                ctx.changes.rollback(zxid, pending)
                continue
            except _Marshalling:
                # Not a KeeperException: it escapes the multi loop, so nothing is rolled
                # back (the records go when a later zxid is applied) and the whole
                # request is MARSHALLINGERROR.
                return _error_txn(header, ErrorCode.MARSHALLINGERROR)
            ops.append(MultiOp(op.type, record))
        digest = None
        if ctx.digests is not None:
            digest = TxnDigest(DIGEST_VERSION, ctx.current_tree_digest())
        return PrepResult(Txn(header, MultiTxn(tuple(ops)), digest), failure or ErrorCode.OK)


_WRITE_OPS: Final = frozenset(
    {
        *_CREATE_OPS,
        OpCode.DELETE,
        OpCode.DELETE_CONTAINER,
        OpCode.SET_DATA,
        OpCode.SET_ACL,
        OpCode.CHECK,
        OpCode.CREATE_SESSION,
        OpCode.CLOSE_SESSION,
    }
)


_MULTI_WRITE_OPS: Final = frozenset({*_CREATE_OPS, OpCode.DELETE, OpCode.SET_DATA, OpCode.CHECK})
"""The ops a multi's ``pRequest2Txn`` calls can turn into txns."""


def _digest_of(record: ChangeRecord) -> TxnDigest | None:
    if record.tree_digest is None:
        return None
    return TxnDigest(DIGEST_VERSION, record.tree_digest)


def _error_txn(header: TxnHeader, code: ErrorCode) -> PrepResult:
    """A failed write: ``hdr.type = error``, ``ErrorTxn{code}``, no digest."""
    return PrepResult(Txn(replace(header, type=OpCode.ERROR), ErrorTxn(code)), code)


def _java_string_hash(text: str) -> int:
    """``String#hashCode``, then ``HashMap#hash``'s spread."""
    return spread(string_hash(text))


class _JavaHashSet:
    """Where ``java.util.HashSet<String>`` puts its members: a power-of-two table,
    doubled when the size passes 3/4 of it, members of one bucket in insertion order
    (resizing keeps that order).  Long buckets that Java would turn into trees (8 or
    more colliding members in a table of 64 or more) are not modelled."""

    __slots__ = ("_capacity", "_members", "_seq", "_threshold")

    def __init__(self, presize: int = 0) -> None:
        self._members: dict[str, tuple[int, int]] = {}
        self._seq = 0
        self._capacity = 0
        # HashMap#putMapEntries on a clone: the table for `presize` members, made on the
        # first put.
        self._threshold = _table_size_for(int(presize / 0.75 + 1.0)) if presize else 0

    def add(self, member: str) -> None:
        if member in self._members:
            return
        if not self._capacity:
            self._capacity = self._threshold or 16
            self._threshold = int(self._capacity * 0.75)
        self._members[member] = (_java_string_hash(member), self._seq)
        self._seq += 1
        if len(self._members) > self._threshold:
            old = self._capacity
            self._capacity = old * 2
            self._threshold = self._threshold * 2 if old >= 16 else int(self._capacity * 0.75)

    def remove(self, member: str) -> None:
        self._members.pop(member, None)

    def __len__(self) -> int:
        return len(self._members)

    def order(self) -> list[str]:
        mask = self._capacity - 1
        return sorted(
            self._members, key=lambda m: (self._members[m][0] & mask, self._members[m][1])
        )


def _table_size_for(n: int) -> int:
    """``HashMap#tableSizeFor``: the power of two at or above ``n`` (at least 1)."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def java_hash_set_order(
    created: Sequence[str], edits: Iterable[tuple[str, bool]]
) -> tuple[str, ...]:
    """The iteration order of the set ``PrepRequestProcessor`` builds for a closeSession.

    ``DataTree#getEphemerals`` clones the session's ``HashSet`` (filled in creation
    order: ``created``), then the outstanding changes add (``True``) or remove paths.
    The original set's table size is taken as the one its current members need; a set
    that once held many more members (or was rebuilt from a snapshot) may iterate
    differently in Java.  Followers delete every path whatever the order.
    """
    original = _JavaHashSet()
    for path in created:
        original.add(path)
    clone = _JavaHashSet(len(original))
    for path in original.order():
        clone.add(path)
    for path, add in edits:
        if add:
            clone.add(path)
        else:
            clone.remove(path)
    return tuple(clone.order())


def _creation_key(tree: PrepTree) -> Callable[[str], tuple[int, str]]:
    def key(path: str) -> tuple[int, str]:
        node = tree.get(path)
        return (node.stat.czxid if node is not None else 0, path)

    return key
