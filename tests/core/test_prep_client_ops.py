"""Differential: core/prep.py's outcomes against what a standalone 3.8.0 answered in
``tests/testdata/vectors/client-ops.pcap`` (``CLIENT-README.md``).

A standalone server proposes nothing on the wire, but every write it took answers with
the zxid of its txn (error txns included), the error code, the created path, the multi's
per-op results.  Replaying the capture's writes in zxid order through prep (each
committed before the next, with the caller's auth ids from its auth packets) must give
the same code, path and results for every one.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.core.test_prep_quorum_writes import TreeDigests
from tests.wire.test_client_golden import conversations, decode
from zkquorum.core.acl import add_auth_info, authenticate, connection_ids
from zkquorum.core.datatree import DataTree
from zkquorum.core.prep import OutstandingChanges, Prep, PrepRequest, PrepSettings
from zkquorum.core.sessions import SessionTracker
from zkquorum.wire import client as wc
from zkquorum.wire.client_records import (
    AuthPacket,
    ConnectResponse,
    Create2Response,
    CreateResponse,
    ErrorResult,
    MultiResponse,
)
from zkquorum.wire.jute import Id
from zkquorum.wire.txn import (
    CreateContainerTxn,
    CreateTTLTxn,
    CreateTxn,
    ErrorTxn,
    MultiTxn,
    OpCode,
)

WRITES = frozenset(
    {
        OpCode.CREATE,
        OpCode.CREATE2,
        OpCode.CREATE_CONTAINER,
        OpCode.CREATE_TTL,
        OpCode.DELETE,
        OpCode.SET_DATA,
        OpCode.SET_ACL,
        OpCode.CHECK,
        OpCode.MULTI,
        OpCode.CLOSE_SESSION,
    }
)


@dataclass(frozen=True)
class Write:
    session_id: int
    auth_ids: tuple[Id, ...]
    request: wc.ClientRequest
    reply: wc.ClientReply


def writes() -> tuple[list[Write], dict[int, int]]:
    """Every answered write of the capture, in zxid order; the sessions' timeouts."""
    out: list[Write] = []
    sessions: dict[int, int] = {}
    for conv in conversations("client-ops"):
        decoded = decode(conv)
        replies = [m for m, _ in decoded.replies]
        connect = replies[0]
        assert isinstance(connect, ConnectResponse)
        sessions[connect.session_id] = connect.timeout
        by_xid = {r.xid: r for r in replies if isinstance(r, wc.ClientReply)}
        ids = connection_ids("127.0.0.1")
        for msg, _ in decoded.requests:
            if not isinstance(msg, wc.ClientRequest):
                continue
            if isinstance(msg.record, AuthPacket):
                new = authenticate(msg.record.scheme, msg.record.auth, "127.0.0.1")
                assert new is not None
                ids = add_auth_info(ids, new)
            elif msg.op in WRITES and msg.xid in by_xid:
                out.append(Write(connect.session_id, ids, msg, by_xid[msg.xid]))
    out.sort(key=lambda w: w.reply.zxid)
    return out, sessions


def outcome_of_reply(w: Write) -> object:
    r = w.reply
    if w.request.op == OpCode.MULTI:
        assert isinstance(r.response, MultiResponse)
        return [x.err if isinstance(x, ErrorResult) else 0 for x in r.response.results]
    if r.err == 0 and isinstance(r.response, (CreateResponse, Create2Response)):
        return (0, r.response.path)
    return r.err


def outcome_of_txn(op: int, record: object) -> object:
    if op == OpCode.MULTI:
        assert isinstance(record, MultiTxn) and record.ops is not None
        return [o.record.err if isinstance(o.record, ErrorTxn) else 0 for o in record.ops]
    if isinstance(record, ErrorTxn):
        return record.err
    if isinstance(record, (CreateTxn, CreateContainerTxn, CreateTTLTxn)):
        return (0, record.path)
    return 0


def test_prep_gives_the_answers_of_the_standalone_server() -> None:
    ws, timeouts = writes()
    assert len(ws) >= 40
    tree = DataTree()
    changes = OutstandingChanges()
    sessions = SessionTracker(server_id=1, tick_time=2000, now=0)
    for sid, timeout in timeouts.items():
        sessions.track_session(sid, timeout, now=0)
    prep = Prep(PrepSettings(extended_types_enabled=True))
    seen: set[object] = set()
    for w in ws:
        record = None if isinstance(w.request.record, wc.MalformedRequest) else w.request.record
        request = PrepRequest(
            w.session_id,
            w.request.xid,
            w.request.op,
            record,
            w.auth_ids,
            owner=w.session_id,
            malformed=isinstance(w.request.record, wc.MalformedRequest),
        )
        result = prep.prepare(
            request,
            zxid=w.reply.zxid,
            time=0,
            now=0,
            tree=tree,
            changes=changes,
            sessions=sessions,
            digests=TreeDigests(tree),
        )
        assert result.txn is not None, w
        expected = outcome_of_reply(w)
        assert outcome_of_txn(w.request.op, result.txn.record) == expected, (w.request, w.reply)
        seen.add(expected if isinstance(expected, int) else type(expected).__name__)
        tree.apply(result.txn)
        changes.applied(w.reply.zxid)
        if w.request.op == OpCode.CLOSE_SESSION:
            sessions.remove_session(w.session_id)
    # Success and the failures the capture exercises all took part.
    assert {"tuple", "list", 0, -101, -110, -108, -103, -102} <= seen
