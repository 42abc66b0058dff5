"""Differential: core/prep.py against the txns a real 3.8.0 leader proposed.

``tests/testdata/vectors/quorum-writes.pcap`` (``CLIENT-README.md``) holds every REQUEST
follower sid 1 forwarded to leader sid 3, every client request the leader got on its own
client port, and every PROPOSAL the leader then sent.  Replaying those requests through
:class:`~zkquorum.core.prep.Prep` on the same tree (the proposals before applied with
``core/datatree.py``) must give each PROPOSAL byte for byte: header (the capture's txn
time is passed in), record, and TxnDigest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TypeVar

from zkquorum.core import digest
from zkquorum.core.datatree import DataTree
from zkquorum.core.prep import OutstandingChanges, Prep, PrepRequest, PrepSettings
from zkquorum.core.sessions import SessionTimeouts, SessionTracker
from zkquorum.wire.client import ClientRequest, MalformedRequest, RequestStreamDecoder
from zkquorum.wire.client_records import (
    ConnectRequest,
    CreateSessionRequest,
)
from zkquorum.wire.jute import Id
from zkquorum.wire.pcap import TcpConnection, parse_pcap, reassemble, tcp_segments
from zkquorum.wire.quorum import (
    PacketType,
    QuorumPacket,
    QuorumStreamDecoder,
    decode_proposal,
    decode_request,
)
from zkquorum.wire.reader import StreamDecoder
from zkquorum.wire.txn import OpCode, Txn, encode_txn

VECTORS = Path(__file__).resolve().parents[1] / "testdata" / "vectors"
LEADER_QUORUM_PORT = 28883
LEADER_CLIENT_PORT = 21813
TICK = 200


class TreeDigests(digest.TreeDigests):
    """zkquorum's digests (``core/digest.py``: the tree keeps its sum as it changes) over a
    bare tree, checked against a sum recomputed from every node at each read."""

    def __init__(self, tree: DataTree) -> None:
        super().__init__(SimpleNamespace(tree=tree))
        self.tree = tree

    def tree_digest(self) -> int:
        kept = super().tree_digest()
        recomputed = digest.as_long(
            sum(digest.node_digest(p, n.data, n.stat) for p, n in self.tree.nodes.items())
        )
        assert kept == recomputed, "the digest kept as the tree changed is not the sum"
        return kept


M = TypeVar("M")


@dataclass(frozen=True)
class Timed:
    time: float
    message: object


def _messages(conn: TcpConnection, to_acceptor: bool, decoder: StreamDecoder[M]) -> Iterator[Timed]:
    direction = conn.to_acceptor if to_acceptor else conn.to_initiator
    chunks, _ = direction.chunks()
    for chunk in chunks:
        decoder.receive_data(chunk.data)
        while True:
            msg = decoder.next_message()
            if not isinstance(msg, (QuorumPacket, ClientRequest, ConnectRequest)):
                break
            yield Timed(chunk.timestamp, msg)


def capture() -> tuple[list[Txn], dict[tuple[int, int], PrepRequest], dict[int, int]]:
    """The leader's proposals (zxid order), the requests by (session, cxid), and the
    leader-local sessions' requested timeouts."""
    cap = parse_pcap((VECTORS / "quorum-writes.pcap").read_bytes())
    proposals: dict[int, Txn] = {}
    requests: dict[tuple[int, int], PrepRequest] = {}
    local_timeouts: dict[int, int] = {}
    for conn in reassemble(tcp_segments(cap)):
        if conn.acceptor[1] == LEADER_QUORUM_PORT:
            owner = ("learner", conn.initiator)
            for t in _messages(conn, True, QuorumStreamDecoder(snapshots=False)):
                p = t.message
                assert isinstance(p, QuorumPacket)
                if p.type == PacketType.REQUEST:
                    req = decode_request(p.data)
                    requests[(req.session_id, req.cxid)] = PrepRequest.decode(
                        req.session_id, req.cxid, req.type, req.request, p.authinfo or (), owner
                    )
            for t in _messages(conn, False, QuorumStreamDecoder(snapshots=True)):
                p = t.message
                if isinstance(p, QuorumPacket) and p.type == PacketType.PROPOSAL:
                    txn = decode_proposal(p.data)
                    proposals[txn.header.zxid] = txn
        elif conn.acceptor[1] == LEADER_CLIENT_PORT:
            session_id = _connect_response_session(conn)
            ip = ("ip", conn.initiator[0])
            for t in _messages(conn, True, RequestStreamDecoder()):
                m = t.message
                if isinstance(m, ConnectRequest):
                    local_timeouts[session_id] = m.timeout
                elif isinstance(m, ClientRequest) and not isinstance(m.record, MalformedRequest):
                    requests[(session_id, m.xid)] = PrepRequest(
                        session_id, m.xid, m.op, m.record, (Id(*ip),), "local"
                    )
    return [proposals[z] for z in sorted(proposals)], requests, local_timeouts


def _connect_response_session(conn: TcpConnection) -> int:
    chunks, _ = conn.to_initiator.chunks()
    data = b"".join(c.data for c in chunks)
    return int.from_bytes(data[12:20], "big", signed=True)


def test_prep_reproduces_every_proposal_of_the_java_leader() -> None:
    proposals, requests, local_timeouts = capture()
    assert len(proposals) == 21
    tree = DataTree()
    digests = TreeDigests(tree)
    changes = OutstandingChanges()
    sessions = SessionTracker(server_id=3, tick_time=TICK, now=0)
    timeouts = SessionTimeouts.from_config(TICK)
    prep = Prep(PrepSettings(extended_types_enabled=True))
    kinds: set[int] = set()
    for java in proposals:
        h = java.header
        key = (h.client_id, h.cxid)
        if key in requests:
            request = requests[key]
        elif h.type == OpCode.CREATE_SESSION and h.client_id in local_timeouts:
            # The leader's own client port: processConnectRequest submits createSession.
            timeout = timeouts.negotiate(local_timeouts[h.client_id])
            request = PrepRequest(
                h.client_id,
                h.cxid,
                OpCode.CREATE_SESSION,
                CreateSessionRequest(timeout),
                (),
                "local",
            )
        else:
            # The leader's session expirer: closeSession with cxid 0, no owner check.
            assert h.type == OpCode.CLOSE_SESSION and h.cxid == 0, h
            request = PrepRequest(h.client_id, 0, OpCode.CLOSE_SESSION)
        result = prep.prepare(
            request,
            zxid=h.zxid,
            time=h.time,
            now=0,
            tree=tree,
            changes=changes,
            sessions=sessions,
            digests=digests,
        )
        assert result.txn is not None, (hex(h.zxid), request)
        assert result.txn == java, hex(h.zxid)
        assert encode_txn(result.txn) == encode_txn(java)
        kinds.add(h.type)
        tree.apply(java)
        changes.applied(h.zxid)
        if h.type == OpCode.CLOSE_SESSION:
            sessions.remove_session(h.client_id)
    assert len(changes) == 0
    # create, setData, delete, multi, error, setACL, create2, createContainer, createTTL,
    # createSession, closeSession all occurred.
    assert {1, 2, 5, 7, 14, 15, 19, 21, -1, -10, -11} <= kinds
