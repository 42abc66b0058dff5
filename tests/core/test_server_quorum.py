"""The server core in a quorum seat: writes leave as forwards and are answered when the
peer core reports them applied, possibly several at once."""

from __future__ import annotations

from zkquorum.core.database import Database
from zkquorum.core.datatree import DataTree
from zkquorum.core.final import Effects, apply_txn
from zkquorum.core.server import ServerCore, ServerSettings, TxnApplied
from zkquorum.wire.client import ClientReply
from zkquorum.wire.client_records import (
    OPEN_ACL_UNSAFE,
    Create2Response,
    CreateRequest,
    SetDataRequest,
    SetDataResponse,
)
from zkquorum.wire.txn import CreateSessionTxn, CreateTxn, OpCode, SetDataTxn, Txn, TxnHeader

from .test_server import Client

WALL = 1_700_000_000_000


def _txn(session: int, cxid: int, zxid: int, op: int, record: object) -> Txn:
    return Txn(TxnHeader(session, cxid, zxid, WALL, op), record)  # type: ignore[arg-type]


def test_replies_carry_the_stat_of_their_own_txn_when_applied_in_a_batch() -> None:
    """The leader commits (applies) several txns in one step before its server hears of
    them: each reply's Stat is the txn's ``ProcessTxnResult``, not the tree's state at
    the end; the header has the server's last processed zxid."""
    db = Database(DataTree())
    core = ServerCore(
        ServerSettings(server_id=1, tick_time_ms=100, quorum=True), db, now=0.0, wall_ms=WALL
    )
    c = Client(core, 1)
    c.connect()
    sid = core.conns[1].session_id
    applied: list[tuple[Txn, Effects]] = []

    def apply(txn: Txn) -> None:
        applied.append((txn, apply_txn(db.tree, txn, db.apply)))

    apply(_txn(sid, 0, 1, OpCode.CREATE_SESSION, CreateSessionTxn(2000)))
    c.feed(core.step(TxnApplied(0.0, *applied.pop())))
    c.got.clear()
    c.send(OpCode.CREATE2, CreateRequest("/a", b"0", OPEN_ACL_UNSAFE, 0))
    c.send(OpCode.SET_DATA, SetDataRequest("/a", b"1", 0))
    apply(_txn(sid, 1, 2, OpCode.CREATE2, CreateTxn("/a", b"0", OPEN_ACL_UNSAFE, False, 1)))
    apply(_txn(sid, 2, 3, OpCode.SET_DATA, SetDataTxn("/a", b"1", 1)))
    apply(_txn(sid + 1, 1, 4, OpCode.SET_DATA, SetDataTxn("/a", b"2", 2)))  # another server's
    for txn, effects in applied:
        c.feed(core.step(TxnApplied(0.0, txn, effects)))
    replies = [r for r in c.got if isinstance(r, ClientReply)]
    assert [r.header.err for r in replies] == [0, 0]
    created, set_data = replies
    assert isinstance(created.response, Create2Response)
    stat = created.response.stat
    assert (stat.version, stat.czxid, stat.mzxid, created.zxid) == (0, 2, 2, 4)
    assert isinstance(set_data.response, SetDataResponse)
    stat = set_data.response.stat
    assert (stat.version, stat.mzxid, set_data.zxid) == (1, 3, 4)


def test_requests_behind_a_moving_session_wait_for_the_leaders_answer() -> None:
    """A session moving here is REVALIDATING until the leader answers; a read pipelined
    behind its ConnectRequest (Java's Netty client) is answered after the ConnectResponse."""
    from zkquorum.core.server import SessionRevalidated
    from zkquorum.core.sessions import generate_password
    from zkquorum.wire.client_records import ConnectResponse, GetDataRequest

    core = ServerCore(
        ServerSettings(server_id=1, tick_time_ms=100, quorum=True),
        Database(DataTree()),
        now=0.0,
        wall_ms=WALL,
    )
    sid = (2 << 56) | 5  # a session another server made
    c = Client(core, 1)
    c.connect(sid, generate_password(sid))
    c.send(OpCode.GET_DATA, GetDataRequest("/", False))
    assert c.got == [] and not c.closed
    c.feed(core.step(SessionRevalidated(0.0, sid, True)))
    assert isinstance(c.got[0], ConnectResponse) and c.got[0].session_id == sid
    assert isinstance(c.got[1], ClientReply) and c.got[1].header.err == 0
