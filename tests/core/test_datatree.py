"""DataTree: 3.8.0's processTxn rules on small hand-made txns."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zkquorum.core.database import Database
from zkquorum.core.datatree import (
    CONTAINER_EPHEMERAL_OWNER,
    NO_NODE,
    NODE_EXISTS,
    DataTree,
    is_ttl_owner,
)
from zkquorum.wire.txn import (
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
    SetDataTxn,
    Txn,
    TxnHeader,
    TxnRecord,
)

S = 0x1000


def _t(zxid: int, op: int, rec: TxnRecord | None, session: int = S) -> Txn:
    return Txn(TxnHeader(session, zxid, zxid, 1000 + zxid, op), rec)


def test_create_set_delete_and_stats() -> None:
    t = DataTree()
    assert t.apply(_t(1, OpCode.CREATE, CreateTxn("/a", b"x", None, False, -1))) == 0
    assert t.apply(_t(2, OpCode.CREATE2, CreateTxn("/a/b", b"y", None, False, 1))) == 0
    assert t.apply(_t(3, OpCode.SET_DATA, SetDataTxn("/a", b"z", 1))) == 0
    a = t.get("/a")
    assert a is not None and a.data == b"z"
    assert (a.stat.czxid, a.stat.mzxid, a.stat.version, a.stat.cversion, a.stat.pzxid) == (
        1,
        3,
        1,
        1,
        2,
    )
    assert t.apply(_t(4, OpCode.DELETE, DeleteTxn("/a/b"))) == 0
    assert t.get("/a/b") is None and t.get("/a").stat.pzxid == 4  # type: ignore[union-attr]
    assert t.apply(_t(5, OpCode.DELETE, DeleteTxn("/nope"))) == NO_NODE
    assert t.apply(_t(6, OpCode.CREATE, CreateTxn("/a", b"", None, False, 5))) == NODE_EXISTS
    # NODEEXISTS on create still moves the parent's cversion (fuzzy snapshot replays).
    assert t.get("/").stat.cversion == 5  # type: ignore[union-attr]
    assert t.last_processed_zxid == 6


def test_sessions_ephemerals_container_ttl() -> None:
    t = DataTree()
    t.apply(_t(1, OpCode.CREATE_SESSION, CreateSessionTxn(30000)))
    t.apply(_t(2, OpCode.CREATE, CreateTxn("/e", b"", None, True, -1)))
    t.apply(_t(3, OpCode.CREATE_CONTAINER, CreateContainerTxn("/c", b"", None, -1)))
    t.apply(_t(4, OpCode.CREATE_TTL, CreateTTLTxn("/t", b"", None, -1, 3600000)))
    assert t.sessions == {S: 30000}
    assert t.ephemerals == {S: {"/e"}}
    assert t.get("/c").stat.ephemeral_owner == CONTAINER_EPHEMERAL_OWNER  # type: ignore[union-attr]
    assert is_ttl_owner(t.get("/t").stat.ephemeral_owner)  # type: ignore[union-attr]
    t.apply(_t(5, OpCode.CLOSE_SESSION, CloseSessionTxn(("/e",))))
    assert t.get("/e") is None and not t.sessions and not t.ephemerals
    assert t.get("/c") is not None and t.get("/t") is not None
    back = DataTree.from_snapshot(t.to_snapshot(), 5)
    assert set(back.nodes) == set(t.nodes)


def test_multi_with_an_error_applies_nothing() -> None:
    t = DataTree()
    ok = MultiTxn(
        (
            MultiOp(OpCode.CREATE, CreateTxn("/m1", b"", None, False, -1)),
            MultiOp(OpCode.CREATE, CreateTxn("/m1/x", b"", None, False, -1)),
        )
    )
    assert t.apply(_t(1, OpCode.MULTI, ok)) == 0
    assert t.get("/m1/x") is not None
    bad = MultiTxn(
        (
            MultiOp(OpCode.ERROR, ErrorTxn(-103)),
            MultiOp(OpCode.CREATE, CreateTxn("/m2", b"", None, False, -1)),
        )
    )
    t.apply(_t(2, OpCode.MULTI, bad))
    assert t.get("/m2") is None and t.last_processed_zxid == 2


def test_children_are_kept_as_paths_and_seen_as_names() -> None:
    """A node keeps its children's paths (the tree's own key strings); ``children`` is a
    set of their names: contains, iterates, counts, compares with a set as names."""
    t = DataTree()
    for zxid, path in enumerate(("/a", "/a/x", "/a/y", "/b"), start=1):
        assert t.apply(_t(zxid, OpCode.CREATE, CreateTxn(path, b"", None, False, -1))) == 0
    a = t.nodes["/a"]
    assert a.children == {"x", "y"} and {"x", "y"} == a.children
    assert sorted(a.children) == ["x", "y"] == t.children("/a")
    assert "x" in a.children and "z" not in a.children and "/a/x" not in a.children
    assert len(a.children) == a.child_count == 2 and a.has_child("/a/x")
    assert a.child_paths == {"/a/x", "/a/y"}
    assert next(p for p in a.child_paths if p == "/a/x") is next(k for k in t.nodes if k == "/a/x")
    assert t.nodes["/"].children == {"a", "b", "zookeeper"}
    assert not t.nodes["/b"].children and t.nodes["/b"].child_count == 0
    assert "x" not in t.nodes["/b"].children
    assert t.apply(_t(5, OpCode.CREATE, CreateTxn("/a/x", b"", None, False, -1))) == NODE_EXISTS
    assert t.apply(_t(6, OpCode.DELETE, DeleteTxn("/a/x"))) == 0
    assert a.children == {"y"}
    assert t.apply(_t(7, OpCode.DELETE, DeleteTxn("/a/y"))) == 0
    assert a.children == set() and a._kids is None  # a leaf again: no set of its own


def _walked(t: DataTree) -> tuple[set[str], set[str], dict[int, set[str]]]:
    """The containers, TTL nodes and ephemerals by a walk of every node."""
    containers: set[str] = set()
    ttls: set[str] = set()
    ephemerals: dict[int, set[str]] = {}
    for path, node in t.nodes.items():
        owner = node.stat.ephemeral_owner
        if owner == CONTAINER_EPHEMERAL_OWNER:
            containers.add(path)
        elif is_ttl_owner(owner):
            ttls.add(path)
        elif owner:
            ephemerals.setdefault(owner, set()).add(path)
    return containers, ttls, ephemerals


_PATH = st.sampled_from(["/a", "/b", "/a/x", "/b/y", "/a/x/z"])
_TXN = st.one_of(
    st.builds(lambda p, e: (OpCode.CREATE, CreateTxn(p, b"", None, e, -1)), _PATH, st.booleans()),
    st.builds(lambda p: (OpCode.CREATE_CONTAINER, CreateContainerTxn(p, b"", None, -1)), _PATH),
    st.builds(lambda p: (OpCode.CREATE_TTL, CreateTTLTxn(p, b"", None, -1, 100)), _PATH),
    st.builds(lambda p: (OpCode.DELETE, DeleteTxn(p)), _PATH),
    st.just((OpCode.CLOSE_SESSION, CloseSessionTxn(None))),
    st.just((OpCode.CREATE_SESSION, CreateSessionTxn(30000))),
    st.just(("roll back", None)),
    st.just(("snapshot", None)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_TXN, st.sampled_from([S, S + 1])), max_size=40))
def test_owner_sets_match_a_walk_through_applies_roll_backs_and_snapshots(
    steps: list[tuple[tuple[object, TxnRecord | None], int]],
) -> None:
    """The sets the container manager and closeSession read (``containers``, ``ttls``,
    ``ephemerals``) are kept as nodes come and go, not found by a walk: they must equal
    one after every applied txn, every in-memory roll-back (TRUNC) and every reload."""
    db = Database(DataTree())
    zxid = 0
    for (op, record), session in steps:
        if op == "roll back":
            if zxid and db.can_roll_back(zxid - 1):
                db.roll_back(zxid - 1)
                zxid -= 1
        elif op == "snapshot":
            db.replace_tree(DataTree.from_snapshot(db.tree.to_snapshot(), zxid))
        else:
            assert isinstance(op, int)
            # Histories prep can make: it refuses a delete with children (NOTEMPTY) and a
            # child of an ephemeral (NOCHILDRENFOREPHEMERALS).
            if isinstance(record, DeleteTxn):
                node = db.tree.nodes.get(record.path)
                if node is not None and node._kids:
                    continue
            if isinstance(record, CreateTxn | CreateContainerTxn | CreateTTLTxn):
                parent = db.tree.nodes.get(record.path.rsplit("/", 1)[0] or "/")
                owner = parent.stat.ephemeral_owner if parent is not None else 0
                if owner and owner != CONTAINER_EPHEMERAL_OWNER and not is_ttl_owner(owner):
                    continue
            zxid += 1
            db.apply(_t(zxid, op, record, session))
        t = db.tree
        assert (t.containers, t.ttls, t.ephemerals) == _walked(t)
        candidates = set(t.container_candidates(10**15, 1))
        assert candidates == {p for p in t.containers | t.ttls if not t.nodes[p]._kids}
