"""core/prep.py, op by op and error by error (3.8.0's PrepRequestProcessor rules).

A :class:`Leader` here runs prep, applies each txn to a ``core/datatree.py`` tree and
drops the applied change records, as the leader's commit path will.  The byte-level
agreement with Java is in ``test_prep_quorum_writes.py``; pipelining in
``test_prep_pipeline.py``.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

import pytest

from tests.core.test_prep_quorum_writes import TreeDigests
from zkquorum.core.acl import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, generate_digest
from zkquorum.core.datatree import DataTree
from zkquorum.core.prep import (
    TTL_MAX,
    OutstandingChanges,
    Prep,
    PrepRequest,
    PrepResult,
    PrepSettings,
    validate_path,
)
from zkquorum.core.sessions import SessionTracker
from zkquorum.wire.client_records import (
    NULL_STRING,
    CheckVersionRequest,
    CreateRequest,
    CreateSessionRequest,
    CreateTTLRequest,
    DeleteContainerRequest,
    DeleteRequest,
    ErrorCode,
    ExistsRequest,
    GetDataRequest,
    MultiOperationRecord,
    Op,
    RequestRecord,
    SetACLRequest,
    SetDataRequest,
)
from zkquorum.wire.jute import ACL, Id
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
)

E = ErrorCode
USER = Id("digest", generate_digest("user:pass"))
OTHER = Id("digest", generate_digest("other:pass"))


class Leader:
    """Prep + tree + outstanding changes + sessions, one zxid after another."""

    def __init__(self, *, extended: bool = False, digest: bool = True) -> None:
        self.tree = DataTree()
        self.digests = TreeDigests(self.tree) if digest else None
        self.changes = OutstandingChanges()
        self.sessions = SessionTracker(server_id=1, tick_time=100, now=0)
        self.prep = Prep(PrepSettings(extended_types_enabled=extended))
        self.zxid = 0x100000000
        self.cxid = 0
        self.log: list[Txn] = []
        self.session = self.new_session()

    def new_session(self, owner: object = "me") -> int:
        sid = self.sessions.create_session(4000, now=0)
        res = self.prepare(
            PrepRequest(sid, 0, OpCode.CREATE_SESSION, CreateSessionRequest(4000), owner=owner)
        )
        self.commit(res)
        return sid

    def prepare(self, request: PrepRequest) -> PrepResult:
        result = self.prep.prepare(
            request,
            zxid=self.zxid + 1,
            time=1_700_000_000_000 + self.zxid,
            now=0,
            tree=self.tree,
            changes=self.changes,
            sessions=self.sessions,
            digests=self.digests,
        )
        if result.txn is not None:
            self.zxid += 1
        return result

    def request(
        self,
        op: int,
        record: RequestRecord | None,
        *,
        ids: tuple[Id, ...] = (),
        session: int | None = None,
        owner: object = "me",
        internal: bool = False,
    ) -> PrepRequest:
        self.cxid += 1
        sid = self.session if session is None else session
        return PrepRequest(sid, self.cxid, op, record, ids, owner, internal=internal)

    def commit(self, result: PrepResult) -> Txn:
        assert result.txn is not None
        return self.commit_txn(result.txn)

    def commit_txn(self, txn: Txn) -> Txn:
        """Apply a proposed txn, as the leader does on COMMIT."""
        self.tree.apply(txn)
        self.changes.applied(txn.header.zxid)
        if txn.header.type == OpCode.CLOSE_SESSION:
            self.sessions.remove_session(txn.header.client_id)
        self.log.append(txn)
        return txn

    def run(
        self,
        op: int,
        record: RequestRecord | None,
        *,
        ids: tuple[Id, ...] = (),
        session: int | None = None,
        owner: object = "me",
        internal: bool = False,
    ) -> Txn:
        """Prepare and commit one request; its txn."""
        request = self.request(op, record, ids=ids, session=session, owner=owner, internal=internal)
        return self.commit(self.prepare(request))

    def create(
        self,
        path: str,
        flags: int = 0,
        acl: tuple[ACL, ...] = OPEN_ACL_UNSAFE,
        *,
        ids: tuple[Id, ...] = (),
        session: int | None = None,
        owner: object = "me",
    ) -> Txn:
        request = CreateRequest(path, b"d", acl, flags)
        return self.run(OpCode.CREATE, request, ids=ids, session=session, owner=owner)


def err(txn: Txn) -> int:
    assert txn.header.type == OpCode.ERROR
    assert isinstance(txn.record, ErrorTxn)
    assert txn.digest is None  # failed writes carry no TxnDigest
    return txn.record.err


@pytest.fixture
def zk() -> Leader:
    return Leader()


# --------------------------------------------------------------------------- create


def test_create_and_its_digest(zk: Leader) -> None:
    txn = zk.create("/a")
    assert txn.header.type == OpCode.CREATE
    assert txn.record == CreateTxn("/a", b"d", OPEN_ACL_UNSAFE, False, 1)
    assert txn.digest is not None and txn.digest.version == 2
    assert zk.digests is not None
    assert txn.digest.tree_digest == zk.digests.tree_digest()  # the tree after applying it


@pytest.mark.parametrize(
    ("path", "flags", "code"),
    [
        ("/a", 7, E.BADARGUMENTS),  # CreateMode.fromFlag
        ("a", 0, E.BADARGUMENTS),  # no slash: validatePathForCreate
        ("", 0, E.BADARGUMENTS),
        ("/a\0b", 0, E.BADARGUMENTS),
        ("/a/", 0, E.NONODE),  # parent "/a" first; the path itself is checked after
        ("/x/", 0, E.NONODE),
        ("/exists/", 0, E.BADARGUMENTS),  # parent there, then validatePath
        ("/exists/.", 0, E.BADARGUMENTS),
        ("/exists//b", 0, E.NONODE),
        ("/missing/b", 0, E.NONODE),
        ("/exists", 0, E.NODEEXISTS),
        ("/", 0, E.NODEEXISTS),
        ("/eph/child", 0, E.NOCHILDRENFOREPHEMERALS),
        ("/exists/b", 5, E.UNIMPLEMENTED),  # TTL without extended types
        ("/exists/b", 6, E.UNIMPLEMENTED),
        (NULL_STRING, 0, E.MARSHALLINGERROR),  # 3.8 dereferences the null path
    ],
)
def test_create_errors(zk: Leader, path: str, flags: int, code: ErrorCode) -> None:
    zk.create("/exists")
    zk.create("/eph", flags=1)
    before = zk.zxid
    txn = zk.create(path, flags=flags)
    assert err(txn) == code
    assert txn.header.zxid == before + 1  # the failure used a zxid
    assert len(zk.changes) == 0


def test_create_acl_rules(zk: Leader) -> None:
    assert err(zk.create("/a", acl=())) == E.INVALIDACL
    assert err(zk.create("/a", acl=(ACL(31, Id("auth", "")),))) == E.INVALIDACL
    txn = zk.create("/a", acl=(ACL(31, Id("auth", "")),), ids=(Id("ip", "127.0.0.1"), USER))
    assert isinstance(txn.record, CreateTxn) and txn.record.acl == (ACL(31, USER),)
    # CREATE on the parent is needed: USER only has it on /a.
    assert err(zk.create("/a/b")) == E.NOAUTH
    assert zk.create("/a/b", ids=(USER,)).header.type == OpCode.CREATE
    assert zk.create("/a/c", ids=(Id("super", ""),)).header.type == OpCode.CREATE
    # A null digest id is an NPE in fixupACL: MARSHALLINGERROR.
    assert err(zk.create("/n", acl=(ACL(31, Id("digest", NULL_STRING)),))) == E.MARSHALLINGERROR


def test_sequential_names_use_the_stored_cversion(zk: Leader) -> None:
    zk.create("/p")
    assert zk.create("/p/s-", flags=2).record == CreateTxn(
        "/p/s-0000000000", b"d", OPEN_ACL_UNSAFE, False, 1
    )
    zk.run(OpCode.DELETE, DeleteRequest("/p/s-0000000000", -1))
    # Deletes do not bump the stored cversion: the next name is ...1 (the client-visible
    # cversion would be 2).
    txn = zk.create("/p/s-", flags=3)
    assert txn.record == CreateTxn("/p/s-0000000001", b"d", OPEN_ACL_UNSAFE, True, 2)
    # A failed create does not bump it either.
    assert err(zk.create("/p/s-0000000001")) == E.NODEEXISTS
    assert isinstance(zk.create("/p/s-", flags=2).record, CreateTxn)
    node = zk.tree.get("/p/s-0000000002")
    assert node is not None and node.stat.ephemeral_owner == 0


def test_ephemeral_owner_and_session_checks(zk: Leader) -> None:
    zk.create("/e", flags=1)
    node = zk.tree.get("/e")
    assert node is not None and node.stat.ephemeral_owner == zk.session
    # Unknown sessions are expired on a leader (LeaderSessionTracker), for any op.
    assert err(zk.create("/x", session=12345)) == E.SESSIONEXPIRED
    assert err(zk.create("/x", flags=1, session=12345)) == E.SESSIONEXPIRED
    assert err(zk.create("/x", owner="another learner")) == E.SESSIONMOVED
    zk.sessions.set_session_closing(zk.session)
    assert err(zk.create("/x")) == E.SESSIONEXPIRED


def test_containers_and_ttl() -> None:
    zk = Leader(extended=True)
    txn = zk.run(OpCode.CREATE_CONTAINER, CreateRequest("/c", b"", OPEN_ACL_UNSAFE, 4))
    assert txn.record == CreateContainerTxn("/c", b"", OPEN_ACL_UNSAFE, 1)
    node = zk.tree.get("/c")
    assert node is not None and node.stat.ephemeral_owner == -(1 << 63)
    txn = zk.run(OpCode.CREATE_TTL, CreateTTLRequest("/t", b"", OPEN_ACL_UNSAFE, 5, 500))
    assert txn.record == CreateTTLTxn("/t", b"", OPEN_ACL_UNSAFE, 2, 500)
    node = zk.tree.get("/t")
    assert node is not None and node.stat.ephemeral_owner == -(1 << 56) | 500
    for flags, ttl in [(5, 0), (5, -1), (5, TTL_MAX + 1), (1, 500), (0, 0)]:
        # TTL out of range, or a TTL on a mode without one (an ephemeral TTL included).
        txn = zk.run(OpCode.CREATE_TTL, CreateTTLRequest("/t2", b"", OPEN_ACL_UNSAFE, flags, ttl))
        assert err(txn) == E.BADARGUMENTS, (flags, ttl)
    ok = zk.run(OpCode.CREATE_TTL, CreateTTLRequest("/t3", b"", OPEN_ACL_UNSAFE, 6, TTL_MAX))
    assert isinstance(ok.record, CreateTTLTxn) and ok.record.path == "/t30000000002"
    # Children of containers and TTL nodes are fine; of an ephemeral, not.
    assert zk.create("/c/x").header.type == OpCode.CREATE
    assert zk.create("/t/x").header.type == OpCode.CREATE


# --------------------------------------------------------------------------- other writes


def test_delete_rules(zk: Leader) -> None:
    zk.create("/a")
    zk.create("/a/b")
    assert err(zk.run(OpCode.DELETE, DeleteRequest("/a", -1))) == E.NOTEMPTY
    assert err(zk.run(OpCode.DELETE, DeleteRequest("/a/b", 3))) == E.BADVERSION
    assert err(zk.run(OpCode.DELETE, DeleteRequest("/a/x", -1))) == E.NONODE
    assert err(zk.run(OpCode.DELETE, DeleteRequest("/zookeeper", -1))) == E.BADARGUMENTS
    assert err(zk.run(OpCode.DELETE, DeleteRequest("/", -1))) == E.BADARGUMENTS
    assert err(zk.run(OpCode.DELETE, DeleteRequest("nope", -1))) == E.BADARGUMENTS
    assert err(zk.run(OpCode.DELETE, DeleteRequest(NULL_STRING, -1))) == E.MARSHALLINGERROR
    assert zk.run(OpCode.DELETE, DeleteRequest("/a/b", 0)).record == DeleteTxn("/a/b")
    parent = zk.tree.get("/a")
    assert parent is not None and parent.stat.pzxid == zk.zxid
    # DELETE is checked on the parent's ACL.
    zk.create("/r", acl=(*READ_ACL_UNSAFE, ACL(31, USER)))
    zk.create("/r/x", ids=(USER,))
    assert err(zk.run(OpCode.DELETE, DeleteRequest("/r/x", -1))) == E.NOAUTH
    assert zk.run(OpCode.DELETE, DeleteRequest("/r/x", -1), ids=(USER,)).record == DeleteTxn("/r/x")


def test_set_data_and_acl(zk: Leader) -> None:
    zk.create("/a", acl=(ACL(1 | 16, Id("world", "anyone")), ACL(2, USER)))
    assert err(zk.run(OpCode.SET_DATA, SetDataRequest("/a", b"x", -1))) == E.NOAUTH
    txn = zk.run(OpCode.SET_DATA, SetDataRequest("/a", b"x", -1), ids=(USER,))
    assert txn.record == SetDataTxn("/a", b"x", 1)
    assert err(zk.run(OpCode.SET_DATA, SetDataRequest("/a", b"y", 0), ids=(USER,))) == E.BADVERSION
    assert err(zk.run(OpCode.SET_DATA, SetDataRequest("/a/", b"y", -1))) == E.BADARGUMENTS
    assert err(zk.run(OpCode.SET_DATA, SetDataRequest(NULL_STRING, b"y", -1))) == E.BADARGUMENTS
    assert err(zk.run(OpCode.SET_DATA, SetDataRequest("/b", b"y", -1))) == E.NONODE
    # setACL: ADMIN, the aversion, fixupACL first.
    assert err(zk.run(OpCode.SET_ACL, SetACLRequest("/a", (), -1))) == E.INVALIDACL
    assert err(zk.run(OpCode.SET_ACL, SetACLRequest("/a", OPEN_ACL_UNSAFE, 4))) == E.BADVERSION
    txn = zk.run(OpCode.SET_ACL, SetACLRequest("/a", (ACL(31, Id("auth", "")),), 0), ids=(OTHER,))
    assert txn.record == SetACLTxn("/a", (ACL(31, OTHER),), 1)
    assert err(zk.run(OpCode.SET_ACL, SetACLRequest("/a", OPEN_ACL_UNSAFE, -1))) == E.NOAUTH
    node = zk.tree.get("/a")
    assert node is not None and node.stat.aversion == 1 and node.stat.version == 1


def test_check_alone(zk: Leader) -> None:
    zk.create("/a")
    txn = zk.run(OpCode.CHECK, CheckVersionRequest("/a", 0))
    assert txn.record == CheckVersionTxn("/a", 1)  # the txn carries version + 1
    assert txn.digest is not None
    assert err(zk.run(OpCode.CHECK, CheckVersionRequest("/a", 5))) == E.BADVERSION
    assert err(zk.run(OpCode.CHECK, CheckVersionRequest("/b", -1))) == E.NONODE


def test_delete_container(zk: Leader) -> None:
    zk.run(OpCode.CREATE_CONTAINER, CreateRequest("/c", b"", OPEN_ACL_UNSAFE, 4))
    zk.create("/c/x")
    zk.create("/e", flags=1)
    zk.create("/p")

    def delete_container(path: str) -> Txn:
        return zk.run(
            OpCode.DELETE_CONTAINER, DeleteContainerRequest(path), session=0, internal=True
        )

    # From a client or a learner's REQUEST, 3.8 reads the header into the path.
    assert err(zk.run(OpCode.DELETE_CONTAINER, DeleteContainerRequest("/p"))) == E.BADARGUMENTS

    assert err(delete_container("/c")) == E.NOTEMPTY
    assert err(delete_container("/e")) == E.BADVERSION  # an ephemeral is not removable here
    assert err(delete_container("/zookeeper")) == E.BADARGUMENTS
    zk.run(OpCode.DELETE, DeleteRequest("/c/x", -1))
    assert delete_container("/c").record == DeleteTxn("/c")
    # 3.8 also removes an empty persistent node this way (only NORMAL is refused).
    assert delete_container("/p").record == DeleteTxn("/p")


# --------------------------------------------------------------------------- sessions


def test_create_and_close_session(zk: Leader) -> None:
    sid = 0x0200000000000001
    res = zk.prepare(
        PrepRequest(sid, 0, OpCode.CREATE_SESSION, CreateSessionRequest(3000), owner="learner-2")
    )
    assert res.txn is not None and res.txn.record == CreateSessionTxn(3000)
    assert res.txn.digest is not None  # the unchanged tree digest
    zk.commit(res)
    assert zk.sessions.timeout_of(sid) == 3000
    zk.create("/e1", flags=1, session=sid, owner="learner-2")
    zk.create("/e2", flags=1, session=sid, owner="learner-2")
    # One more, still outstanding (not committed) when the session closes.
    pending = zk.prepare(
        zk.request(
            OpCode.CREATE,
            CreateRequest("/e3", b"", OPEN_ACL_UNSAFE, 1),
            session=sid,
            owner="learner-2",
        )
    )
    close = zk.prepare(PrepRequest(sid, 9, OpCode.CLOSE_SESSION))  # no owner check
    assert close.txn is not None
    # In the order of 3.8's HashSet (test_prep_java.py checks that model against Java).
    assert close.txn.record == CloseSessionTxn(("/e2", "/e3", "/e1"))
    assert zk.sessions.is_closing(sid)
    zk.commit(pending)
    zk.commit(close)
    assert zk.tree.get("/e1") is None and zk.tree.get("/e3") is None
    assert close.txn.digest is not None and zk.digests is not None
    assert close.txn.digest.tree_digest == zk.digests.tree_digest()
    # An empty session still sends its (empty) vector.
    other = zk.new_session()
    close2 = zk.prepare(PrepRequest(other, 1, OpCode.CLOSE_SESSION))
    assert close2.txn is not None and close2.txn.record == CloseSessionTxn(())


def test_create_session_of_a_closing_session_is_expired(zk: Leader) -> None:
    zk.sessions.set_session_closing(zk.session)
    res = zk.prepare(PrepRequest(zk.session, 0, OpCode.CREATE_SESSION, CreateSessionRequest(4000)))
    assert res.txn is not None and err(res.txn) == E.SESSIONEXPIRED


def test_reads_only_check_the_session(zk: Leader) -> None:
    before = zk.zxid
    assert zk.prepare(zk.request(OpCode.SYNC, None)) == PrepResult(None)
    assert zk.prepare(zk.request(OpCode.EXISTS, ExistsRequest("/", False))) == PrepResult(None)
    assert zk.prepare(zk.request(OpCode.PING, None, session=99)) == PrepResult(
        None, E.SESSIONEXPIRED
    )
    assert zk.prepare(zk.request(OpCode.SYNC, None, owner="elsewhere")) == PrepResult(
        None, E.SESSIONMOVED
    )
    assert zk.zxid == before


def test_malformed_and_reconfig(zk: Leader) -> None:
    bad = PrepRequest(zk.session, 1, OpCode.SET_DATA, None, (), "me", malformed=True)
    res = zk.prepare(bad)
    assert res.txn is not None and err(res.txn) == E.MARSHALLINGERROR
    # setData checks the session before it decodes: an expired session wins.
    res = zk.prepare(PrepRequest(7, 1, OpCode.SET_DATA, None, (), "me", malformed=True))
    assert res.txn is not None and err(res.txn) == E.SESSIONEXPIRED
    res = zk.prepare(PrepRequest(zk.session, 2, OpCode.RECONFIG, None))
    assert res.txn is not None and err(res.txn) == E.RECONFIGDISABLED
    # A reconfig body that does not decode fails before a zxid is taken.
    before = zk.zxid
    assert zk.prepare(
        PrepRequest(zk.session, 3, OpCode.RECONFIG, None, malformed=True)
    ) == PrepResult(None, E.MARSHALLINGERROR)
    assert zk.zxid == before


def test_without_digests() -> None:
    zk = Leader(digest=False)
    txn = zk.create("/a")
    assert txn.digest is None
    assert (
        zk.run(
            OpCode.MULTI, MultiOperationRecord((Op(OpCode.CHECK, CheckVersionRequest("/a", 0)),))
        ).digest
        is None
    )


# --------------------------------------------------------------------------- multi


def test_multi_success_one_zxid(zk: Leader) -> None:
    zk.create("/m")
    multi = MultiOperationRecord(
        (
            Op(OpCode.CREATE, CreateRequest("/m/a", b"1", OPEN_ACL_UNSAFE, 0)),
            Op(OpCode.SET_DATA, SetDataRequest("/m/a", b"2", 0)),  # sees the create
            Op(OpCode.CHECK, CheckVersionRequest("/m/a", 1)),
            Op(OpCode.DELETE, DeleteRequest("/m/a", 1)),
            Op(OpCode.CREATE2, CreateRequest("/m/s-", b"", OPEN_ACL_UNSAFE, 2)),
        )
    )
    before = zk.zxid
    txn = zk.run(OpCode.MULTI, multi)
    assert txn.header.zxid == before + 1 and txn.header.type == OpCode.MULTI
    assert txn.record == MultiTxn(
        (
            MultiOp(OpCode.CREATE, CreateTxn("/m/a", b"1", OPEN_ACL_UNSAFE, False, 1)),
            MultiOp(OpCode.SET_DATA, SetDataTxn("/m/a", b"2", 1)),
            MultiOp(OpCode.CHECK, CheckVersionTxn("/m/a", 2)),
            MultiOp(OpCode.DELETE, DeleteTxn("/m/a")),
            MultiOp(OpCode.CREATE2, CreateTxn("/m/s-0000000001", b"", OPEN_ACL_UNSAFE, False, 2)),
        )
    )
    assert zk.digests is not None and txn.digest is not None
    assert txn.digest.tree_digest == zk.digests.tree_digest()


def test_multi_failure_rolls_back(zk: Leader) -> None:
    zk.create("/m")
    digest_before = zk.digests.tree_digest() if zk.digests else 0
    multi = MultiOperationRecord(
        (
            Op(OpCode.CREATE, CreateRequest("/m/a", b"", OPEN_ACL_UNSAFE, 0)),
            Op(OpCode.CHECK, CheckVersionRequest("/m", 99)),
            Op(OpCode.DELETE, DeleteRequest("/m/a", -1)),
        )
    )
    res = zk.prepare(zk.request(OpCode.MULTI, multi))
    assert res.err == E.BADVERSION
    assert res.txn is not None and res.txn.header.type == OpCode.MULTI
    assert res.txn.record == MultiTxn(
        (
            MultiOp(OpCode.CREATE, CreateTxn("/m/a", b"", OPEN_ACL_UNSAFE, False, 1)),
            MultiOp(OpCode.ERROR, ErrorTxn(E.BADVERSION)),
            MultiOp(OpCode.ERROR, ErrorTxn(E.RUNTIMEINCONSISTENCY)),
        )
    )
    assert res.txn.digest is not None and res.txn.digest.tree_digest == digest_before
    assert len(zk.changes) == 0  # rolled back
    zk.commit(res)
    assert zk.tree.get("/m/a") is None
    # A later create does not see the rolled-back one.
    assert zk.create("/m/a").record == CreateTxn("/m/a", b"d", OPEN_ACL_UNSAFE, False, 1)


def test_multi_rollback_restores_earlier_outstanding_records(zk: Leader) -> None:
    zk.create("/m")
    first = zk.prepare(zk.request(OpCode.SET_DATA, SetDataRequest("/m", b"v1", -1)))
    multi = MultiOperationRecord(
        (
            Op(OpCode.SET_DATA, SetDataRequest("/m", b"v2", 1)),  # sees the pending v1
            Op(OpCode.CHECK, CheckVersionRequest("/nope", -1)),
        )
    )
    failed = zk.prepare(zk.request(OpCode.MULTI, multi))
    assert failed.err == E.NONODE
    # The pending setData is what a next request sees again.
    after = zk.prepare(zk.request(OpCode.SET_DATA, SetDataRequest("/m", b"v3", 1)))
    assert after.txn is not None and after.txn.record == SetDataTxn("/m", b"v3", 2)
    for res in (first, failed, after):
        zk.commit(res)
    node = zk.tree.get("/m")
    assert node is not None and node.data == b"v3"


def test_multi_marshalling_cases(zk: Leader) -> None:
    reads = MultiOperationRecord((Op(OpCode.GET_DATA, GetDataRequest("/", False)),))
    assert err(zk.run(OpCode.MULTI, reads)) == E.MARSHALLINGERROR
    null_create = MultiOperationRecord(
        (Op(OpCode.CREATE, CreateRequest(NULL_STRING, b"", OPEN_ACL_UNSAFE, 0)),)
    )
    assert err(zk.run(OpCode.MULTI, null_create)) == E.MARSHALLINGERROR
    assert (
        err(zk.commit(zk.prepare(PrepRequest(zk.session, 5, OpCode.MULTI, None, malformed=True))))
        == E.MARSHALLINGERROR
    )


def test_empty_multi(zk: Leader) -> None:
    txn = zk.run(OpCode.MULTI, MultiOperationRecord(()))
    assert txn.record == MultiTxn(())


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("/", True),
        ("/a/b", True),
        ("/a/...", True),
        ("/a/.b", True),
        ("/é", True),
        ("/a/", False),
        ("//a", False),
        ("/a/./b", False),
        ("/a/..", False),
        ("/a\x00", False),
        ("/a\x1f", False),
        ("/a\x7f", False),
        ("/a\u009f", False),
        ("/a\ue000", False),
        ("/a\ufff0", False),
        ("/a\U0001f600", False),  # a surrogate pair in Java
        ("a", False),
        ("", False),
        (NULL_STRING, False),
    ],
)
def test_validate_path(path: str, ok: bool) -> None:
    assert validate_path(path) is ok


def test_failed_multi_forgets_parent_records_as_38_does(zk: Leader) -> None:
    """getPendingChanges saves the ops' own paths only: after the rollback the parent's
    earlier outstanding record is no longer the path's current one (the tree is)."""
    pending = zk.prepare(zk.request(OpCode.CREATE, CreateRequest("/p", b"", OPEN_ACL_UNSAFE, 0)))
    assert zk.changes.get("") is not None
    multi = MultiOperationRecord(
        (
            Op(OpCode.CREATE, CreateRequest("/q", b"", OPEN_ACL_UNSAFE, 0)),
            Op(OpCode.CHECK, CheckVersionRequest("/none", -1)),
        )
    )
    assert zk.prepare(zk.request(OpCode.MULTI, multi)).err == E.NONODE
    assert zk.changes.get("") is None
    assert zk.changes.get("/p") is not None
    zk.commit(pending)


def test_container_op_with_other_flags_as_38(zk: Leader) -> None:
    """createContainer with flags 0: a CreateContainerTxn, but the change record (and so
    the TxnDigest) has the create mode's owner, 0, as in 3.8."""
    res = zk.prepare(
        zk.request(OpCode.CREATE_CONTAINER, CreateRequest("/c", b"", OPEN_ACL_UNSAFE, 0))
    )
    assert res.txn is not None and isinstance(res.txn.record, CreateContainerTxn)
    record = zk.changes.get("/c")
    assert record is not None and record.stat is not None
    assert record.stat.ephemeral_owner == 0


def test_prep_request_decode() -> None:
    body = SetDataRequest("/a", b"x", 3).encode()
    req = PrepRequest.decode(5, 1, OpCode.SET_DATA, body, (USER,), "learner-1")
    assert req == PrepRequest(
        5, 1, OpCode.SET_DATA, SetDataRequest("/a", b"x", 3), (USER,), "learner-1"
    )
    bad = PrepRequest.decode(5, 2, OpCode.SET_DATA, body[:3])
    assert bad.malformed and bad.record is None
    closing = PrepRequest.decode(5, 3, OpCode.CLOSE_SESSION, b"")
    assert closing.record is None and not closing.malformed


def _timed(label: str, n: int, body: Callable[[], object]) -> None:  # pragma: no cover
    start = time.perf_counter()
    body()
    print(f"{label:<52} {n / (time.perf_counter() - start):>10,.0f} /s")


class _NodeDigestsOnly:  # pragma: no cover
    """Node digests as DigestCalculator (CRC32); the tree's sum is not recomputed."""

    def node_digest(self, path: str, data: bytes | None, stat: object) -> int:
        return zlib.crc32(path.encode() + (data or b"") + repr(stat).encode())

    def tree_digest(self) -> int:
        return 0


def _bench_prep(digest: bool, n: int = 20_000) -> None:  # pragma: no cover
    zk = Leader(digest=False)
    if digest:
        zk.digests = _NodeDigestsOnly()  # type: ignore[assignment]
    for i in range(100):
        zk.create(f"/d{i}")
    for i in range(100_000):
        zk.create(f"/d{i % 100}/n{i}")
    tag = "with node digests" if digest else "no digests"
    _timed(f"create + apply ({tag})", n, lambda: [zk.create(f"/d7/x{i}") for i in range(n)])
    sets = [zk.request(OpCode.SET_DATA, SetDataRequest(f"/d3/n{i}03", b"v", -1)) for i in range(n)]
    _timed(f"setData, pipelined, prep only ({tag})", n, lambda: [zk.prepare(r) for r in sets])
    _timed(f"create NODEEXISTS + apply ({tag})", n, lambda: [zk.create("/d7/x1") for _ in range(n)])


def _throughput() -> None:  # pragma: no cover - `python -m tests.core.test_prep`
    """Prep's throughput on one core, on a tree of 100 000 nodes; sessions and passwords."""
    from zkquorum.core.sessions import generate_password

    _bench_prep(False)
    _bench_prep(True)
    _timed("generate_password", 100_000, lambda: [generate_password(i) for i in range(100_000)])
    tracker = SessionTracker(server_id=1, tick_time=2000, now=0)
    ids = [tracker.create_session(10_000, now=0) for _ in range(10_000)]
    _timed(
        "touch_session (10 000 sessions, 1 ms apart)",
        200_000,
        lambda: [tracker.touch_session(ids[i % 10_000], 10_000, now=i) for i in range(200_000)],
    )


if __name__ == "__main__":  # pragma: no cover
    _throughput()
