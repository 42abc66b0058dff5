"""Pipelining: requests prepared against outstanding change records give the same txns
as the same requests prepared one at a time, each committed before the next.

This is what 3.8's ChangeRecords are for: a leader proposes request N+1 before N is
committed.  3.8 itself is not pipeline-consistent in three places, which the test steers
around: closeSession (its parent records keep their child count, so a pipelined delete
of the parent is NOTEMPTY) and writes to ``/`` itself (the root is ``""`` as a parent and
``"/"`` as a path: two records for one node) are not generated; and a multi whose ops'
parents have outstanding records is prepared only after everything before it committed,
because a failing multi's rollback forgets those parent records (``getPendingChanges``
saves the records of the ops' own paths only), which prep reproduces.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.test_prep import Leader
from zkquorum.core.acl import OPEN_ACL_UNSAFE, generate_digest
from zkquorum.wire.client_records import (
    CheckVersionRequest,
    CreateRequest,
    DeleteContainerRequest,
    DeleteRequest,
    MultiOperationRecord,
    Op,
    RequestRecord,
    SetACLRequest,
    SetDataRequest,
)
from zkquorum.wire.jute import ACL, Id
from zkquorum.wire.txn import OpCode, Txn

USER = Id("digest", generate_digest("user:pass"))
PATHS = st.sampled_from(["/a", "/a/b", "/a/b/c", "/x", "/x/y", "/a/s-"])
VERSIONS = st.sampled_from([-1, 0, 1, 2])
ACLS = st.sampled_from([OPEN_ACL_UNSAFE, (ACL(31, USER),), (ACL(1, Id("world", "anyone")),)])

CREATE = st.builds(
    lambda p, f, a: Op(OpCode.CREATE, CreateRequest(p, b"x", a, f)),
    PATHS,
    st.sampled_from([0, 1, 2, 3]),
    ACLS,
)
SUB_OPS = st.one_of(
    CREATE,
    st.builds(lambda p, v: Op(OpCode.DELETE, DeleteRequest(p, v)), PATHS, VERSIONS),
    st.builds(lambda p, v: Op(OpCode.SET_DATA, SetDataRequest(p, b"y", v)), PATHS, VERSIONS),
    st.builds(lambda p, v: Op(OpCode.CHECK, CheckVersionRequest(p, v)), PATHS, VERSIONS),
)
REQUESTS = st.one_of(
    SUB_OPS.map(lambda op: (op.type, op.request)),
    st.builds(lambda p, a, v: (OpCode.SET_ACL, SetACLRequest(p, a, v)), PATHS, ACLS, VERSIONS),
    st.builds(
        lambda p: (OpCode.CREATE_CONTAINER, CreateRequest(p, b"", OPEN_ACL_UNSAFE, 4)), PATHS
    ),
    st.builds(lambda p: (OpCode.DELETE_CONTAINER, DeleteContainerRequest(p)), PATHS),
    st.lists(SUB_OPS, max_size=3).map(lambda ops: (OpCode.MULTI, MultiOperationRecord(tuple(ops)))),
)
CALLERS = st.sampled_from([(), (USER,)])


def run_one_at_a_time(requests: list[tuple[int, RequestRecord, tuple[Id, ...]]]) -> Leader:
    zk = Leader()
    for op, record, ids in requests:
        zk.run(op, record, ids=ids, internal=op == OpCode.DELETE_CONTAINER)
    return zk


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(REQUESTS, CALLERS), min_size=1, max_size=25),
    st.lists(st.integers(0, 3), min_size=25, max_size=25),
)
def test_pipelined_equals_one_at_a_time(
    drawn: list[tuple[tuple[int, RequestRecord], tuple[Id, ...]]], commits: list[int]
) -> None:
    requests = [(op, record, ids) for (op, record), ids in drawn]
    serial = run_one_at_a_time(requests)
    serial_txns = _txns(serial)

    zk = Leader()
    pending: list[Txn] = []
    for i, (op, record, ids) in enumerate(requests):
        if isinstance(record, MultiOperationRecord) and any(
            zk.changes.get(o.request.path[: o.request.path.rfind("/")]) for o in record.ops
        ):
            while pending:
                _commit(zk, pending.pop(0))
        internal = op == OpCode.DELETE_CONTAINER  # as the leader's ContainerManager
        result = zk.prepare(zk.request(op, record, ids=ids, internal=internal))
        assert result.txn is not None
        pending.append(result.txn)
        # Commit a drawn number of the oldest proposals (possibly none) before the next.
        for _ in range(min(commits[i], len(pending))):
            _commit(zk, pending.pop(0))
    for txn in pending:
        _commit(zk, txn)
    assert _txns(zk) == serial_txns
    assert len(zk.changes) == 0
    assert zk.digests is not None and serial.digests is not None
    assert zk.digests.tree_digest() == serial.digests.tree_digest()


def _commit(zk: Leader, txn: Txn) -> None:
    zk.commit_txn(txn)


def _txns(zk: Leader) -> list[Txn]:
    return list(zk.log)
