"""Hypothesis strategies for every wire message type (shared by round-trip and fuzz)."""

from __future__ import annotations

from hypothesis import strategies as st

from zkquorum.wire import election as el
from zkquorum.wire import quorum as q
from zkquorum.wire import snapshot as sn
from zkquorum.wire import txn as tx
from zkquorum.wire.jute import ACL, Id, StatPersisted

ints = st.integers(-(2**31), 2**31 - 1)
longs = st.integers(-(2**63), 2**63 - 1)
texts = st.text(max_size=40)
blobs = st.binary(max_size=64)
maybe_blobs = st.none() | blobs
ids = st.builds(Id, texts, texts)
acls = st.builds(ACL, ints, ids)
acl_lists = st.none() | st.lists(acls, max_size=3).map(tuple)
stats = st.builds(StatPersisted, longs, longs, longs, longs, ints, ints, ints, longs, longs)

hosts = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
    st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
)
addresses = st.builds(lambda h, p: f"{h}:{p}", hosts, st.integers(0, 65535))
initial_messages = st.one_of(
    st.builds(
        el.InitialMessage,
        st.sampled_from([el.PROTOCOL_VERSION_V1, el.PROTOCOL_VERSION_V2]),
        longs,
        st.lists(addresses, min_size=1, max_size=4).map(tuple),
    ),
    st.builds(el.InitialMessage, st.none(), st.integers(0, 2**63 - 1), st.just(())),
)
notifications = st.builds(
    el.Notification,
    st.sampled_from(list(el.ServerState)),
    longs,
    longs,
    longs,
    longs,
    st.integers(2, 2**31 - 1),
    st.text(max_size=300),
)

packets = st.builds(
    q.QuorumPacket,
    st.one_of(st.sampled_from(list(q.PacketType)), ints.filter(lambda t: t != 15)),
    longs,
    maybe_blobs,
    st.none() | st.lists(ids, max_size=3).map(tuple),
)
learner_infos = st.builds(q.LearnerInfo, longs, ints, longs)
sessions = st.lists(st.builds(sn.Session, longs, ints), max_size=5).map(tuple)
requests = st.builds(q.RequestHeader, longs, ints, ints, blobs)

_paths = st.text(min_size=1, max_size=20)
_records_by_op: dict[int, st.SearchStrategy[tx.TxnRecord]] = {
    tx.OpCode.CREATE: st.builds(tx.CreateTxn, _paths, maybe_blobs, acl_lists, st.booleans(), ints),
    tx.OpCode.CREATE2: st.builds(tx.CreateTxn, _paths, maybe_blobs, acl_lists, st.booleans(), ints),
    tx.OpCode.CREATE_TTL: st.builds(tx.CreateTTLTxn, _paths, maybe_blobs, acl_lists, ints, longs),
    tx.OpCode.CREATE_CONTAINER: st.builds(
        tx.CreateContainerTxn, _paths, maybe_blobs, acl_lists, ints
    ),
    tx.OpCode.DELETE: st.builds(tx.DeleteTxn, _paths),
    tx.OpCode.DELETE_CONTAINER: st.builds(tx.DeleteTxn, _paths),
    tx.OpCode.SET_DATA: st.builds(tx.SetDataTxn, _paths, maybe_blobs, ints),
    tx.OpCode.RECONFIG: st.builds(tx.SetDataTxn, _paths, maybe_blobs, ints),
    tx.OpCode.SET_ACL: st.builds(tx.SetACLTxn, _paths, acl_lists, ints),
    tx.OpCode.CREATE_SESSION: st.builds(tx.CreateSessionTxn, ints),
    tx.OpCode.CLOSE_SESSION: st.builds(
        tx.CloseSessionTxn, st.none() | st.lists(_paths, max_size=3).map(tuple)
    ),
    tx.OpCode.ERROR: st.builds(tx.ErrorTxn, ints),
}
_multi_ops = [
    tx.OpCode.CREATE,
    tx.OpCode.CREATE_TTL,
    tx.OpCode.CREATE_CONTAINER,
    tx.OpCode.DELETE,
    tx.OpCode.SET_DATA,
    tx.OpCode.ERROR,
]


@st.composite
def multi_op(draw: st.DrawFn) -> tx.MultiOp:
    op = draw(st.sampled_from([*_multi_ops, tx.OpCode.CHECK, 777]))
    if op == tx.OpCode.CHECK:
        record: tx.TxnRecord | None = draw(st.builds(tx.CheckVersionTxn, _paths, ints))
    elif op == 777:
        record = tx.RawRecord(draw(blobs))
    else:
        record = draw(st.none() | _records_by_op[op])
    return tx.MultiOp(op, record)


@st.composite
def txns(draw: st.DrawFn) -> tx.Txn:
    kind = draw(st.sampled_from(["typed", "multi", "raw", "empty"]))
    h = {
        "client_id": draw(longs),
        "cxid": draw(ints),
        "zxid": draw(longs),
        "time": draw(longs),
    }
    digest = draw(st.none() | st.builds(tx.TxnDigest, ints, longs))
    trailing = draw(blobs) if digest is not None else b""
    if kind == "typed":
        op = draw(st.sampled_from(sorted(_records_by_op)))
        record: tx.TxnRecord | None = draw(_records_by_op[op])
    elif kind == "multi":
        op = tx.OpCode.MULTI
        record = tx.MultiTxn(draw(st.none() | st.lists(multi_op(), max_size=4).map(tuple)))
    else:
        op = draw(st.integers(200, 2**31 - 1))
        record = tx.RawRecord(draw(st.binary(min_size=1, max_size=64))) if kind == "raw" else None
        digest, trailing = None, b""
    return tx.Txn(
        tx.TxnHeader(h["client_id"], h["cxid"], h["zxid"], h["time"], op), record, digest, trailing
    )


@st.composite
def snapshots(draw: st.DrawFn) -> sn.Snapshot:
    names = draw(
        st.lists(st.text(min_size=1, max_size=8).filter(lambda s: "/" not in s), max_size=12)
    )
    paths = [""]
    for name in names:
        parent = draw(st.sampled_from(paths))
        paths.append(f"{parent}/{name}")
    nodes = tuple(sn.SnapshotNode(p, draw(maybe_blobs), draw(longs), draw(stats)) for p in paths)
    cache = draw(
        st.lists(
            st.builds(sn.AclCacheEntry, longs, st.lists(acls, max_size=3).map(tuple)), max_size=4
        ).map(tuple)
    )
    return sn.Snapshot(draw(sessions), cache, nodes)
