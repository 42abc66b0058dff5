"""The pure server core: handshake, pipelined writes, ordering, watches, sessions, errors."""

from __future__ import annotations

from zkquorum.core.database import Database
from zkquorum.core.datatree import DataTree
from zkquorum.core.server import (
    ClientClosed,
    ClientConnected,
    ClientMessage,
    ServerCore,
    ServerSettings,
    ServerTick,
    TxnsDurable,
)
from zkquorum.core.sessions import generate_password
from zkquorum.wire.client import ClientReply, ReplyStreamDecoder, decode_client_request, frame
from zkquorum.wire.client_records import (
    OPEN_ACL_UNSAFE,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    EventType,
    GetDataRequest,
    MultiOperationRecord,
    Op,
    RequestHeader,
    SetDataRequest,
    SyncRequest,
)
from zkquorum.wire.reader import Sentinel
from zkquorum.wire.txn import OpCode

SETTINGS = ServerSettings(tick_time_ms=100)


class Client:
    """One connection to a ServerCore, speaking the wire protocol."""

    def __init__(self, core: ServerCore, conn: int) -> None:
        self.core = core
        self.conn = conn
        self.decoder = ReplyStreamDecoder()
        self.xid = 0
        self.got: list[object] = []
        self.closed = False
        self.appended: list[object] = []
        core.step(ClientConnected(0.0, conn, "127.0.0.1"))

    def feed(self, out: object) -> None:
        for conn, data in out.sends:  # type: ignore[attr-defined]
            if conn == self.conn:
                self.decoder.receive_data(data)
        if self.conn in out.closes:  # type: ignore[attr-defined]
            self.closed = True
        self.appended.extend(out.append)  # type: ignore[attr-defined]
        while True:
            msg = self.decoder.next_message()
            if msg is Sentinel.NEED_DATA or msg is Sentinel.CLOSED:
                break
            self.got.append(msg)

    def connect(self, session_id: int = 0, passwd: bytes = bytes(16)) -> None:
        req = ConnectRequest(0, 0, 10_000, session_id, passwd, False)
        out = self.core.step(ClientMessage(0.0, self.conn, req))
        self.feed(out)

    def send(self, op: int, record: object, now: float = 0.0) -> int:
        self.xid += 1
        self.decoder.expect(self.xid, op)
        payload = RequestHeader(self.xid, op).encode() + (record.encode() if record else b"")  # type: ignore[attr-defined]
        req = decode_client_request(frame(payload)[4:])
        self.feed(self.core.step(ClientMessage(now, self.conn, req)))
        return self.xid


def durable(core: ServerCore, clients: list[Client], zxid: int = 1 << 62) -> None:
    out = core.step(TxnsDurable(0.0, zxid))
    for c in clients:
        c.feed(out)


def _core() -> ServerCore:
    return ServerCore(SETTINGS, Database(DataTree()), now=0.0, wall_ms=1_700_000_000_000)


def test_session_is_created_by_a_txn_then_answered() -> None:
    core = _core()
    c = Client(core, 1)
    c.connect()
    assert c.got == []  # the ConnectResponse waits for the createSession txn
    assert [t.header.type for t in c.appended] == [OpCode.CREATE_SESSION]  # type: ignore[attr-defined]
    durable(core, [c])
    resp = c.got[0]
    assert isinstance(resp, ConnectResponse)
    assert resp.timeout == 2_000  # clamped to 20 x tickTime
    assert resp.passwd == generate_password(resp.session_id)


def test_requests_pipelined_behind_the_connect_request_wait_for_the_session() -> None:
    # Java's Netty client sends its first requests with the ConnectRequest, before the
    # ConnectResponse: 3.8 stops reading (disableRecv) until the session is established.
    core = _core()
    c = Client(core, 1)
    c.connect()
    c.send(OpCode.CREATE, CreateRequest("/n", b"1", OPEN_ACL_UNSAFE, 0))
    c.send(OpCode.GET_DATA, GetDataRequest("/n", False))
    assert c.got == [] and not c.closed
    durable(core, [c], zxid=1)  # the session: ConnectResponse, then the create is prepared
    assert len(c.got) == 1 and isinstance(c.got[0], ConnectResponse)
    assert [t.header.type for t in c.appended] == [OpCode.CREATE_SESSION, OpCode.CREATE]  # type: ignore[attr-defined]
    durable(core, [c])
    assert [r.header.err for r in c.got[1:]] == [0, 0]  # type: ignore[attr-defined]
    assert c.got[2].response.data == b"1"  # type: ignore[attr-defined]


def test_a_client_that_sends_too_much_before_its_session_exists_is_closed() -> None:
    core = _core()
    c = Client(core, 1)
    c.connect()
    value = bytes(200_000)
    for i in range(5):  # about 1 MB held: still waiting
        c.send(OpCode.SET_DATA, SetDataRequest(f"/n{i}", value, -1))
    assert not c.closed and len(core.conns[1].held) == 5
    c.send(OpCode.SET_DATA, SetDataRequest("/n5", value, -1))  # past jute.maxbuffer
    assert c.closed and c.got == []


def test_writes_are_pipelined_and_replies_keep_request_order() -> None:
    core = _core()
    c = Client(core, 1)
    c.connect()
    durable(core, [c])
    c.got.clear()
    c.send(OpCode.CREATE, CreateRequest("/a", b"1", OPEN_ACL_UNSAFE, 0))
    # the second create sees /a although it is not applied yet (outstanding changes)
    c.send(OpCode.CREATE, CreateRequest("/a/b", b"2", OPEN_ACL_UNSAFE, 0))
    c.send(OpCode.GET_DATA, GetDataRequest("/a/b", False))  # waits behind the writes
    assert c.got == []
    durable(core, [c])
    errs = [r.header.err for r in c.got if isinstance(r, ClientReply)]
    assert errs == [0, 0, 0]
    assert c.got[2].response.data == b"2"  # type: ignore[attr-defined]


def test_a_failed_write_still_takes_a_zxid() -> None:
    core = _core()
    c = Client(core, 1)
    c.connect()
    durable(core, [c])
    c.got.clear()
    c.send(OpCode.DELETE, DeleteRequest("/nope", -1))
    c.send(OpCode.CREATE, CreateRequest("/x", b"", OPEN_ACL_UNSAFE, 0))
    durable(core, [c])
    replies = [r for r in c.got if isinstance(r, ClientReply)]
    assert replies[0].header.err == ErrorCode.NONODE
    assert replies[1].header.err == 0
    zxids = [t.header.zxid for t in c.appended]  # type: ignore[attr-defined]
    assert zxids == [1, 2, 3]  # createSession, the error txn, the create


def test_multi_failure_results_and_nothing_applied() -> None:
    core = _core()
    c = Client(core, 1)
    c.connect()
    durable(core, [c])
    c.got.clear()
    multi = MultiOperationRecord(
        (
            Op(OpCode.CREATE, CreateRequest("/m", b"", OPEN_ACL_UNSAFE, 0)),
            Op(OpCode.DELETE, DeleteRequest("/absent", -1)),
            Op(OpCode.SET_DATA, SetDataRequest("/m", b"", -1)),
        )
    )
    c.send(OpCode.MULTI, multi)
    durable(core, [c])
    reply = c.got[0]
    assert isinstance(reply, ClientReply) and reply.header.err == 0
    errs = [getattr(r, "err", None) for r in reply.response.results]  # type: ignore[union-attr]
    assert errs == [0, ErrorCode.NONODE, ErrorCode.RUNTIMEINCONSISTENCY]
    assert core.db.tree.get("/m") is None


def test_watch_fires_before_the_reply_that_follows_it() -> None:
    core = _core()
    a, b = Client(core, 1), Client(core, 2)
    a.connect()
    b.connect()
    durable(core, [a, b])
    a.send(OpCode.CREATE, CreateRequest("/w", b"", OPEN_ACL_UNSAFE, 0))
    durable(core, [a, b])
    b.got.clear()
    b.send(OpCode.GET_DATA, GetDataRequest("/w", True))
    a.send(OpCode.SET_DATA, SetDataRequest("/w", b"new", -1))
    durable(core, [a, b])
    events = [m for m in b.got if not isinstance(m, ClientReply) or m.header.xid == -1]
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, ClientReply)
    assert event.response.type == EventType.NODE_DATA_CHANGED  # type: ignore[union-attr]
    # one-shot: a second change fires nothing
    a.send(OpCode.SET_DATA, SetDataRequest("/w", b"again", -1))
    durable(core, [a, b])
    assert len([m for m in b.got if isinstance(m, ClientReply) and m.header.xid == -1]) == 1


def test_reconnect_with_the_password_and_expiry_deletes_ephemerals() -> None:
    core = _core()
    a = Client(core, 1)
    a.connect()
    durable(core, [a])
    resp = a.got[0]
    assert isinstance(resp, ConnectResponse)
    a.send(OpCode.CREATE, CreateRequest("/e", b"", OPEN_ACL_UNSAFE, 1))
    durable(core, [a])
    core.step(ClientClosed(0.0, 1))
    b = Client(core, 2)
    b.connect(resp.session_id, resp.passwd)
    assert isinstance(b.got[0], ConnectResponse) and b.got[0].session_id == resp.session_id
    bad = Client(core, 3)
    bad.connect(resp.session_id, bytes(16))
    assert isinstance(bad.got[0], ConnectResponse) and bad.got[0].timeout == 0 and bad.closed
    core.step(ClientClosed(0.0, 2))
    out = core.step(ServerTick(10_000.0))
    assert [t.header.type for t in out.append] == [OpCode.CLOSE_SESSION]
    durable(core, [])
    assert core.db.tree.get("/e") is None
    assert resp.session_id not in core.tracker


def test_a_client_that_has_seen_a_later_zxid_is_refused() -> None:
    core = _core()
    c = Client(core, 1)
    out = core.step(ClientMessage(0.0, 1, ConnectRequest(0, 99, 10_000, 0, bytes(16), False)))
    c.feed(out)
    assert c.closed and c.got == []


def test_statistics_count_packets_and_latency_of_reads_and_writes() -> None:
    core = _core()
    c = Client(core, 1)
    c.connect()
    out = core.step(TxnsDurable(4.0, 1 << 62))  # the session opens 4 ms after the request
    c.feed(out)
    assert out.latencies == [(True, 4.0)]
    c.send(OpCode.CREATE, CreateRequest("/a", b"1", OPEN_ACL_UNSAFE, 0), now=10.0)
    out = core.step(TxnsDurable(17.0, 1 << 62))
    c.feed(out)
    assert out.latencies == [(True, 7.0)]
    c.send(OpCode.GET_DATA, GetDataRequest("/a", True), now=20.0)
    assert core.packets_received == 3 and core.packets_sent == 3
    assert (core.latency.count, core.latency.low, core.latency.max) == (3, 0.0, 7.0)
    conn = core.conns[1]
    assert (conn.last_op, conn.last_cxid, conn.received, conn.sent) == ("GETD", 2, 3, 3)
    assert core.watches.paths_of(1) == ["/a"]
    assert core.outstanding == 0
    c.send(OpCode.SET_DATA, SetDataRequest("/a", b"2", -1), now=30.0)
    assert core.outstanding == 1  # not durable yet
    core.reset_stats()
    assert (core.packets_received, core.latency.count, core.latency.low) == (0, 0, 0.0)
    assert conn.received == 4  # srst leaves the connections' own counts
    core.reset_connection_stats()
    assert (conn.received, conn.last_op, conn.latency.count) == (0, "NA", 0)


def test_bytes_read_and_written_per_namespace_as_3_8_counts_them() -> None:
    """``DataTree#updateReadStat``/``updateWriteStat``: keyed by the top-level name; a read
    adds 68 bytes of Stat, a write counts the path and the data; "/" counts nowhere."""
    core = _core()
    c = Client(core, 1)
    c.connect()
    c.feed(core.step(TxnsDurable(0.0, 1 << 62)))
    c.send(OpCode.CREATE, CreateRequest("/app", b"", OPEN_ACL_UNSAFE, 0))
    c.send(OpCode.CREATE, CreateRequest("/app/cfg", b"12345", OPEN_ACL_UNSAFE, 0))
    out = core.step(TxnsDurable(0.0, 1 << 62))
    assert out.namespace_bytes == [(True, "app", 4), (True, "app", 8 + 5)]
    c.send(OpCode.SET_DATA, SetDataRequest("/app/cfg", b"xy", -1))
    c.send(OpCode.DELETE, DeleteRequest("/app/nothing", -1))  # fails: nothing counted
    out = core.step(TxnsDurable(0.0, 1 << 62))
    assert out.namespace_bytes == [(True, "app", 8 + 2)]
    xid = c.xid + 1
    c.decoder.expect(xid, OpCode.GET_DATA)
    payload = (
        RequestHeader(xid, OpCode.GET_DATA).encode() + GetDataRequest("/app/cfg", False).encode()
    )
    out = core.step(ClientMessage(0.0, 1, decode_client_request(frame(payload)[4:])))
    assert out.namespace_bytes == [(False, "app", 8 + 2 + 68)]
    c.xid = xid
    for path in ("/", "/missing"):
        c.xid += 1
        c.decoder.expect(c.xid, OpCode.GET_DATA)
        payload = (
            RequestHeader(c.xid, OpCode.GET_DATA).encode() + GetDataRequest(path, False).encode()
        )
        out = core.step(ClientMessage(0.0, 1, decode_client_request(frame(payload)[4:])))
        assert out.namespace_bytes == []


def _read_only_core() -> ServerCore:
    """A read-only server over a database in which /app holds b"v"."""
    writer = _core()
    c = Client(writer, 1)
    c.connect()
    durable(writer, [c])
    c.send(OpCode.CREATE, CreateRequest("/app", b"v", OPEN_ACL_UNSAFE, 0))
    durable(writer, [c])
    settings = ServerSettings(tick_time_ms=100, read_only=True)
    return ServerCore(settings, writer.db, now=0.0, wall_ms=1_700_000_000_000)


def test_read_only_refuses_a_client_that_did_not_ask_for_read_only() -> None:
    core = _read_only_core()
    for conn, flag in ((1, False), (2, None)):
        c = Client(core, conn)
        c.feed(
            core.step(ClientMessage(0.0, conn, ConnectRequest(0, 0, 10_000, 0, bytes(16), flag)))
        )
        assert c.closed and c.got == []


def test_read_only_serves_reads_refuses_changes_and_writes_nothing() -> None:
    core = _read_only_core()
    c = Client(core, 1)
    c.feed(core.step(ClientMessage(0.0, 1, ConnectRequest(0, 0, 10_000, 0, bytes(16), True))))
    (resp,) = c.got
    assert isinstance(resp, ConnectResponse) and resp.read_only is True and resp.session_id
    assert c.appended == []  # a session of this server alone: no createSession txn
    c.send(OpCode.GET_DATA, GetDataRequest("/app", False))
    c.send(OpCode.CREATE, CreateRequest("/x", b"", OPEN_ACL_UNSAFE, 0))
    c.send(OpCode.SET_DATA, SetDataRequest("/app", b"w", -1))
    c.send(OpCode.SYNC, SyncRequest("/app"))
    c.send(OpCode.MULTI, MultiOperationRecord((Op(OpCode.DELETE, DeleteRequest("/app", -1)),)))
    replies = [m for m in c.got[1:] if isinstance(m, ClientReply)]
    assert [r.header.err for r in replies] == [0] + [ErrorCode.NOTREADONLY] * 4
    assert core.db.tree.get("/app").data == b"v" and c.appended == []  # type: ignore[union-attr]
    # closeSession: answered and closed, the session gone, still nothing written
    c.send(OpCode.CLOSE_SESSION, None)
    assert c.closed and resp.session_id not in core.tracker and c.appended == []


def test_read_only_sessions_expire_here_without_a_txn() -> None:
    core = _read_only_core()
    c = Client(core, 1)
    c.feed(core.step(ClientMessage(0.0, 1, ConnectRequest(0, 0, 4_000, 0, bytes(16), True))))
    session = c.got[0].session_id  # type: ignore[attr-defined]
    out = core.step(ServerTick(60_000.0))
    c.feed(out)
    assert c.closed and session not in core.tracker and out.append == []
