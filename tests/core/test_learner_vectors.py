"""Replay a real 3.8.0 leader's side of a capture into our Learner: it must answer with
exactly the bytes the Java learner sent (``tests/testdata/vectors/{diff,snap}-sync``)."""

from __future__ import annotations

import json
from typing import Any

from tests.core.corehelp import (
    AppendTxns,
    Established,
    LearnerDriver,
    PersistAcceptedEpoch,
    PersistCurrentEpoch,
    Send,
    TakeSnapshot,
    learner_settings,
)
from tests.vectors import VECTORS
from zkquorum.core.datatree import DataTree
from zkquorum.core.learner import LearnerPhase
from zkquorum.wire.quorum import PacketType, QuorumPacket, QuorumStreamDecoder, encode_packet
from zkquorum.wire.reader import Sentinel
from zkquorum.wire.txn import decode_txn

CONFIG = (
    "server.1=127.0.0.1:28881:38881:participant\nserver.2=127.0.0.1:28882:38882:participant\n"
    "server.3=127.0.0.1:28883:38883:participant\nversion=0"
)


def _load(name: str) -> dict[str, Any]:
    path = VECTORS / f"{name}.vectors.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _quorum_conns(d: dict[str, Any], sid: int) -> list[int]:
    return [
        c["conn"]
        for c in d["connections"]
        if c["port_kind"] == "quorum" and c["learner_sid"] == sid
    ]


def _stream(d: dict[str, Any], conn: int, direction: str) -> bytes:
    return b"".join(
        bytes.fromhex(m["hex"])
        for m in d["messages"]
        if m["conn"] == conn and m["direction"] == direction
    )


def _replay(learner: LearnerDriver, leader_bytes: bytes) -> tuple[bytes, list[object]]:
    dec = QuorumStreamDecoder()
    dec.receive_data(leader_bytes)
    out = bytearray()
    actions: list[object] = []
    for a in learner.start(0.0):
        assert isinstance(a, Send)
        out += encode_packet(a.packet)
    now = 0.0
    while True:
        msg = dec.next_message()
        if msg is Sentinel.NEED_DATA:
            break
        now += 0.001
        for a in learner.receive(msg, now):  # type: ignore[arg-type]
            actions.append(a)
            if isinstance(a, Send):
                out += encode_packet(a.packet)
    return bytes(out), actions


def _learner(tree: DataTree, epoch: int) -> LearnerDriver:
    settings = learner_settings(1, leader=2, tick_time_ms=2000, config_text=CONFIG)
    return LearnerDriver(settings, tree, accepted=epoch, current=epoch)


def _tree_before_diff(d: dict[str, Any], last: int) -> DataTree:
    """sid 1's tree before it stopped: every proposal of its first session up to ``last``."""
    first = _quorum_conns(d, 1)[0]
    tree = DataTree(CONFIG)
    for m in d["messages"]:
        if m["conn"] == first and m["direction"] == "leader->learner":
            raw = bytes.fromhex(m["hex"])
            dec = QuorumStreamDecoder()
            dec.receive_data(raw)
            p = dec.next_message()
            if isinstance(p, QuorumPacket) and p.type == PacketType.PROPOSAL:
                txn = decode_txn(p.data or b"")
                if txn.header.zxid <= last:
                    tree.apply(txn)
    assert tree.last_processed_zxid == last
    return tree


def test_snap_sync_replay_is_byte_exact() -> None:
    d = _load("snap-sync")
    conn = _quorum_conns(d, 1)[-1]
    learner = _learner(DataTree(CONFIG), 0)
    ours, actions = _replay(learner, _stream(d, conn, "leader->learner"))
    assert ours.hex() == _stream(d, conn, "learner->leader").hex()
    # Files in 3.8's order: acceptedEpoch at LEADERINFO, snapshot then currentEpoch at NEWLEADER.
    kinds = [type(a).__name__ for a in actions if not isinstance(a, Send)]
    assert kinds[:4] == [
        "PersistAcceptedEpoch",
        "TakeSnapshot",
        "PersistCurrentEpoch",
        "Established",
    ]
    assert PersistAcceptedEpoch(1) in actions and PersistCurrentEpoch(1) in actions
    snap = next(a for a in actions if isinstance(a, TakeSnapshot))
    assert snap.zxid == 0x10000001D
    assert learner.learner is not None and learner.learner.phase is LearnerPhase.BROADCAST
    assert learner.tree.last_processed_zxid == 0x100000020
    assert learner.last_logged_zxid == 0x100000020
    assert learner.tree.get("/vec/after-rejoin") is not None
    assert learner.tree.get("/zookeeper/config") is not None
    assert (learner.tree.get("/zookeeper/config").data or b"").decode() == CONFIG  # type: ignore[union-attr]
    assert not learner.tree.sessions  # the kazoo session closed


def test_diff_sync_replay_is_byte_exact() -> None:
    d = _load("diff-sync")
    conn = _quorum_conns(d, 1)[-1]
    tree = _tree_before_diff(d, 0x100000018)
    learner = _learner(tree, 1)
    ours, actions = _replay(learner, _stream(d, conn, "leader->learner"))
    assert ours.hex() == _stream(d, conn, "learner->leader").hex()
    # No acceptedEpoch write (same epoch), no snapshot after a DIFF; the five txns are
    # logged at NEWLEADER, before its ACK.
    assert not any(isinstance(a, (PersistAcceptedEpoch, TakeSnapshot)) for a in actions)
    i_log = next(i for i, a in enumerate(actions) if isinstance(a, AppendTxns))
    logged = actions[i_log]
    assert isinstance(logged, AppendTxns)
    assert [t.header.zxid for t in logged.txns] == list(range(0x100000019, 0x10000001E))
    i_ack = next(
        i for i, a in enumerate(actions) if isinstance(a, Send) and a.packet.type == PacketType.ACK
    )
    assert i_log < i_ack
    assert Established(1) in actions
    assert learner.tree.last_processed_zxid == 0x100000020


def test_diff_and_snap_sync_end_with_the_same_tree() -> None:
    """Two runs of the same workload: one learner rebuilt by DIFF, the other by SNAP."""
    diff, snap = _load("diff-sync"), _load("snap-sync")
    a = _learner(_tree_before_diff(diff, 0x100000018), 1)
    _replay(a, _stream(diff, _quorum_conns(diff, 1)[-1], "leader->learner"))
    b = _learner(DataTree(CONFIG), 0)
    _replay(b, _stream(snap, _quorum_conns(snap, 1)[-1], "leader->learner"))
    paths_a, paths_b = set(a.tree.nodes), set(b.tree.nodes)
    assert paths_a == paths_b
    assert len(paths_a) > 15
    for path in paths_a:
        na, nb = a.tree.nodes[path], b.tree.nodes[path]
        assert (na.data, na.acl, sorted(na.children)) == (nb.data, nb.acl, sorted(nb.children))
        assert (na.stat.version, na.stat.cversion, na.stat.aversion) == (
            nb.stat.version,
            nb.stat.cversion,
            nb.stat.aversion,
        ), path
        assert (na.stat.czxid, na.stat.mzxid, na.stat.pzxid) == (
            nb.stat.czxid,
            nb.stat.mzxid,
            nb.stat.pzxid,
        ), path
