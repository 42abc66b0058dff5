"""Prep on arbitrary requests: it always answers (a txn or nothing, never an exception),
every txn it proposes applies to the tree without error, and with digests on every
TxnDigest is the tree digest after applying it.

Not generated: createContainer (19) with flags other than CONTAINER, and createTTL (21)
with a mode without TTL and a negative ttl.  3.8 takes both and records the owner of the
create mode while the txn type makes the follower store a container or TTL owner, so its
own TxnDigest disagrees with the tree; prep does the same (``test_prep.py`` pins it).
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.test_prep import Leader
from zkquorum.core.acl import generate_digest
from zkquorum.wire.client_records import (
    NULL_STRING,
    CheckVersionRequest,
    CreateRequest,
    CreateSessionRequest,
    CreateTTLRequest,
    DeleteContainerRequest,
    DeleteRequest,
    ErrorCode,
    GetDataRequest,
    MultiOperationRecord,
    Op,
    RequestRecord,
    SetACLRequest,
    SetDataRequest,
    SyncRequest,
)
from zkquorum.wire.jute import ACL, Id
from zkquorum.wire.txn import (
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

USER = Id("digest", generate_digest("user:pass"))
SEGMENTS = st.sampled_from(["a", "b", "zookeeper", "config", "quota", ".", "..", "", "\0", "é"])
PATHS = st.one_of(
    st.lists(SEGMENTS, min_size=1, max_size=3).map(lambda s: "/" + "/".join(s)),
    st.sampled_from(["/", "", "a", "//", "/a/", NULL_STRING, "/zookeeper/config"]),
)
ACLS = st.one_of(
    st.none(),
    st.lists(
        st.builds(
            ACL,
            st.sampled_from([0, 1, 4, 8, 31, 2]),
            st.sampled_from(
                [
                    Id("world", "anyone"),
                    Id("auth", ""),
                    USER,
                    Id("ip", "127.0.0.1"),
                    Id("ip", "::1"),
                    Id("digest", NULL_STRING),
                    Id("x", "y"),
                ]
            ),
        ),
        max_size=3,
    ).map(tuple),
)
VERSIONS = st.sampled_from([-1, 0, 1, 5])
FLAGS = st.integers(-1, 7)
DATA = st.sampled_from([None, b"", b"x"])


def _not_the_ttl_quirk(op: Op) -> bool:
    r = op.request
    assert isinstance(r, CreateTTLRequest)
    return r.flags in (5, 6) or r.ttl >= 0


SUB = st.one_of(
    st.builds(
        lambda o, p, d, a, f: Op(o, CreateRequest(p, d, a, f)),
        st.sampled_from([OpCode.CREATE, OpCode.CREATE2]),
        PATHS,
        DATA,
        ACLS,
        FLAGS,
    ),
    st.builds(lambda p, a: Op(OpCode.CREATE_CONTAINER, CreateRequest(p, b"", a, 4)), PATHS, ACLS),
    st.builds(
        lambda p, a, f, t: Op(OpCode.CREATE_TTL, CreateTTLRequest(p, b"", a, f, t)),
        PATHS,
        ACLS,
        FLAGS,
        st.sampled_from([-1, 0, 1, 1 << 40]),
    ).filter(_not_the_ttl_quirk),
    st.builds(lambda p, v: Op(OpCode.DELETE, DeleteRequest(p, v)), PATHS, VERSIONS),
    st.builds(lambda p, v: Op(OpCode.SET_DATA, SetDataRequest(p, b"", v)), PATHS, VERSIONS),
    st.builds(lambda p, v: Op(OpCode.CHECK, CheckVersionRequest(p, v)), PATHS, VERSIONS),
)
REQUEST = st.one_of(
    SUB.map(lambda op: (int(op.type), op.request, False)),
    st.builds(
        lambda p, a, v: (OpCode.SET_ACL, SetACLRequest(p, a, v), False), PATHS, ACLS, VERSIONS
    ),
    st.builds(lambda p: (OpCode.DELETE_CONTAINER, DeleteContainerRequest(p), False), PATHS),
    st.lists(SUB, max_size=4).map(
        lambda ops: (OpCode.MULTI, MultiOperationRecord(tuple(ops)), False)
    ),
    st.just(
        (
            OpCode.MULTI,
            MultiOperationRecord((Op(OpCode.GET_DATA, GetDataRequest("/", False)),)),
            False,
        )
    ),
    st.just((OpCode.CLOSE_SESSION, None, False)),
    st.builds(
        lambda t: (OpCode.CREATE_SESSION, CreateSessionRequest(t), False), st.integers(0, 5000)
    ),
    st.builds(lambda p: (OpCode.SYNC, SyncRequest(p), False), PATHS),
    st.sampled_from([OpCode.CREATE, OpCode.SET_DATA, OpCode.MULTI, OpCode.RECONFIG, 99]).map(
        lambda op: (int(op), None, True)
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(REQUEST, st.sampled_from([(), (USER,), (Id("super", ""),)]), st.integers(0, 2)),
        max_size=30,
    ),
    st.booleans(),
    st.booleans(),
)
def test_prep_always_answers_and_its_txns_apply(
    requests: list[tuple[tuple[int, RequestRecord | None, bool], tuple[Id, ...], int]],
    extended: bool,
    pipelined: bool,
) -> None:
    zk = Leader(extended=extended)
    sessions = [zk.session, zk.new_session(), 0x0500000000000042]
    pending: list[Txn] = []
    quirks: list[int] = []
    root_touched: set[str] = set()
    for (op, record, malformed), ids, who in requests:
        internal = op == OpCode.DELETE_CONTAINER and who != 1  # mostly the ContainerManager
        request = zk.request(op, record, ids=ids, session=sessions[who], internal=internal)
        if malformed:
            request = replace(request, record=None, malformed=True)
        result = zk.prepare(request)
        if result.txn is None:
            continue
        if _mode_disagrees(op, record):
            quirks.append(result.txn.header.zxid)
        if pipelined:
            root_touched |= _root_changes(result.txn.record)
            if len(root_touched) == 2:
                quirks.append(result.txn.header.zxid)
        pending.append(result.txn)
        if not pipelined:
            _apply(zk, pending.pop(), check_digest=not quirks)
    for txn in pending:
        _apply(zk, txn, check_digest=not quirks)


def _mode_disagrees(op: int, record: object) -> bool:
    """A create whose flags name another kind of node than its op: 3.8 logs a plain node
    but precalculates the digest with the flags' owner (a container's, a TTL's), so the
    TxnDigest disagrees with the tree from there on, in Java as here (``core/prep.py``)."""
    if not isinstance(record, CreateRequest | CreateTTLRequest):
        return False
    container, ttl = record.flags == 4, record.flags in (5, 6)
    if op in (OpCode.CREATE, OpCode.CREATE2):
        return container or ttl
    if op == OpCode.CREATE_CONTAINER:
        return not container
    if op == OpCode.CREATE_TTL:
        return not ttl
    return False


def _root_changes(record: TxnRecord | None) -> set[str]:
    """How a txn changes the root: ``"/"`` when it writes the root itself, ``""`` when it
    adds or removes one of its children.  3.8 keys the outstanding change records of the
    root under both names (a child's parent path is ``""``), so once both are outstanding
    at the same time, the later one's TxnDigest starts from the root's committed stat and
    disagrees with the tree, in Java as here (3.8.0 standalone, a create of ``/a`` and a
    setData of ``/`` pipelined: ``digest_mismatches_count`` 1)."""
    match record:
        case SetDataTxn(path=path) | SetACLTxn(path=path):
            return {"/"} if path == "/" else set()
        case (
            CreateTxn(path=path)
            | CreateContainerTxn(path=path)
            | CreateTTLTxn(path=path)
            | DeleteTxn(path=path)
        ):
            return {""} if path.rfind("/") == 0 else set()
        case CloseSessionTxn(paths_to_delete=paths):
            return {""} if any(p.rfind("/") == 0 for p in paths or ()) else set()
        case MultiTxn(ops=ops):
            return set().union(*(_root_changes(o.record) for o in ops or ()))
        case _:
            return set()


def _apply(zk: Leader, txn: Txn, *, check_digest: bool = True) -> None:
    code = zk.tree.apply(txn)
    zk.changes.applied(txn.header.zxid)
    zk.log.append(txn)
    record = txn.record
    failed = isinstance(record, ErrorTxn) or (
        isinstance(record, MultiTxn)
        and any(isinstance(o.record, ErrorTxn) for o in record.ops or ())
    )
    if not failed:
        assert code == ErrorCode.OK, txn
        if check_digest and txn.digest is not None and zk.digests is not None:
            assert txn.digest.tree_digest == zk.digests.tree_digest(), txn
