"""Simulated ZooKeeper clients: what they do, what they saw, and the checks of it.

Each client (:class:`SimClient`) holds one session at a time and talks to one peer's
client side (a :class:`~zkquorum.core.server.ServerCore`) over a virtual connection, in
bytes: requests are encoded frames decoded as the server's port decodes them, replies
are decoded by :class:`~zkquorum.wire.client.ReplyStreamDecoder`.  The simulator
(:mod:`zkquorum.sim.world`) moves the bytes; this module keeps the client's state, makes
its requests, reads its replies and records the history.

An operation (:class:`ClientOp`) is create (create2, for its Stat), setData (with or
without an expected version), delete, getData, or sync followed by getData, on one of
:data:`KEYS`.  Its call is when the client sent it, its return when the reply arrived
(virtual ms); a lost connection leaves it open-ended (3.8's CONNECTIONLOSS: the client
cannot tell whether it happened).

Checks (:func:`check_clients`), after the run:

1. **Linearizable**: every write and every sync-then-read, together with one read of each
   key from the final tree of every peer in broadcast at the end, is linearizable
   (:class:`~zkquorum.sim.lincheck.SimZnodeModel`).  A plain getData may be stale in
   ZooKeeper and is left out.
2. **No acknowledged write lost**: every peer in broadcast at the end has applied every
   acknowledged write (up to the reply's zxid), and the peers hold the same keys.
3. **Per session**: replies come in request order (xids ascending); the zxids a session
   sees (reply headers) never go back, even across reconnects; and a read never returns
   a version of a key older (by mzxid) than one the session already read, created or
   set.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field

from zkquorum.core.datatree import DataTree
from zkquorum.core.sessions import generate_password
from zkquorum.sim.lincheck import (
    UNKNOWN,
    Operation,
    SimZnodeModel,
    SimZnodeOp,
    Verdict,
    check,
    describe_failure,
    minimal_failure,
)
from zkquorum.wire.client import (
    ClientReply,
    ClientRequest,
    ReplyStreamDecoder,
    decode_client_request,
)
from zkquorum.wire.client_records import (
    OPEN_ACL_UNSAFE,
    ClientProtocolError,
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    CreateRequest,
    DeleteRequest,
    ErrorCode,
    GetDataRequest,
    GetDataResponse,
    Record,
    RequestHeader,
    SetDataRequest,
    SetDataResponse,
    SyncRequest,
)
from zkquorum.wire.reader import Sentinel
from zkquorum.wire.txn import OpCode

KEYS = ("/k0", "/k1", "/k2", "/k3")
SESSION_TIMEOUT_MS = 2000
MAX_OPS = 40
"""Operations per client and run."""
PIPELINE = 2
"""Operations a client keeps outstanding at most."""

_NO_PASSWORD = bytes(16)
_WRITE_OUTPUTS = {
    ErrorCode.NONODE: "nonode",
    ErrorCode.NODEEXISTS: "exists",
    ErrorCode.BADVERSION: "badversion",
}


@dataclass(slots=True)
class ClientOp:
    """One operation of a client's history; ``ret`` None: open-ended."""

    client: int
    session: int
    kind: str  # create | set | delete | get | sget (sync, then getData)
    key: str
    value: bytes
    version: int
    call: float
    ret: float | None = None
    output: Hashable = UNKNOWN
    zxid: int = -1
    """The reply header's zxid: the server had applied every txn up to it."""
    mzxid: int = -1
    """The node's mzxid in the reply (getData, setData, create2)."""
    err: int = 0

    @property
    def is_write(self) -> bool:
        return self.kind in ("create", "set", "delete")

    def describe(self) -> str:
        ret = "open" if self.ret is None else f"{self.ret:.3f}"
        return (
            f"client {self.client} session {self.session:#x} {self.kind}({self.key}"
            f"{', ' + repr(self.value) if self.value else ''}"
            f"{', version=' + str(self.version) if self.version != -1 else ''}) "
            f"[{self.call:.3f}, {ret}] -> {self.output!r} zxid {self.zxid:#x}"
        )


@dataclass(slots=True)
class _Outstanding:
    xid: int
    op: int
    entry: ClientOp | None
    """The history entry this request answers (None: the sync of a sync-then-read)."""


@dataclass(slots=True)
class SimClient:
    """One client: its session, its connection's decoder, its outstanding requests."""

    idx: int
    session_id: int = 0
    passwd: bytes = _NO_PASSWORD
    timeout: int = SESSION_TIMEOUT_MS
    last_zxid: int = 0
    """The newest zxid seen (sent as lastZxidSeen when connecting)."""
    conn: int | None = None
    state: str = "down"  # down | connecting | open
    decoder: ReplyStreamDecoder = field(default_factory=ReplyStreamDecoder)
    outstanding: collections.deque[_Outstanding] = field(default_factory=collections.deque)
    xid: int = 0
    last_reply_xid: int = 0
    last_recv: float = 0.0
    last_peer: int = 0
    ops: int = 0
    done: bool = False
    counter: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    history: list[ClientOp] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    sessions: int = 0
    expired: int = 0
    reconnects: int = 0

    # -- the connection -----------------------------------------------------------------

    def connect_request(self, now: float, conn: int, peer: int) -> ConnectRequest:
        """A new connection: the ConnectRequest that opens (or moves) the session."""
        self.conn = conn
        self.state = "connecting"
        self.decoder = ReplyStreamDecoder()
        self.last_recv = now
        self.last_peer = peer
        return ConnectRequest(
            0, self.last_zxid, SESSION_TIMEOUT_MS, self.session_id, self.passwd, False
        )

    def lost(self) -> None:
        """The connection is gone: what was not answered stays open-ended."""
        self.conn = None
        self.state = "down"
        self.outstanding.clear()

    @property
    def busy(self) -> int:
        return sum(1 for o in self.outstanding if o.entry is not None)

    # -- requests -------------------------------------------------------------------------

    def _request(self, op: int, record: Record) -> ClientRequest:
        self.xid += 1
        self.decoder.expect(self.xid, op)
        payload = RequestHeader(self.xid, op).encode() + record.encode()
        return decode_client_request(payload)

    def next_op(self, now: float, kind: str, key: str, conditional: bool) -> list[ClientRequest]:
        """The requests of a new operation (recorded as called now)."""
        self.ops += 1
        self.counter += 1
        value = b""
        version = -1
        if kind in ("create", "set"):
            value = f"c{self.idx}.{self.counter}".encode()
        if kind in ("set", "delete") and conditional:
            version = self.versions.get(key, 0)
        entry = ClientOp(self.idx, self.session_id, kind, key, value, version, now)
        self.history.append(entry)
        requests: list[ClientRequest] = []
        record: Record
        if kind == "sget":
            req = self._request(OpCode.SYNC, SyncRequest(key))
            self.outstanding.append(_Outstanding(req.xid, OpCode.SYNC, None))
            requests.append(req)
        match kind:
            case "create":
                op, record = OpCode.CREATE2, CreateRequest(key, value, OPEN_ACL_UNSAFE, 0)
            case "set":
                op, record = OpCode.SET_DATA, SetDataRequest(key, value, version)
            case "delete":
                op, record = OpCode.DELETE, DeleteRequest(key, version)
            case _:
                op, record = OpCode.GET_DATA, GetDataRequest(key, False)
        req = self._request(op, record)
        self.outstanding.append(_Outstanding(req.xid, op, entry))
        requests.append(req)
        return requests

    # -- replies --------------------------------------------------------------------------

    def receive(self, now: float, data: bytes) -> bool:
        """Bytes from the server; False when the client must drop the connection (a
        protocol error, or a refused session)."""
        self.last_recv = now
        self.decoder.receive_data(data)
        while True:
            try:
                msg = self.decoder.next_message()
            except ClientProtocolError as exc:
                self.violations.append(
                    f"t={now:.3f}ms: client {self.idx} session {self.session_id:#x}: "
                    f"reply out of request order: {exc.reason}"
                )
                return False
            if msg is Sentinel.NEED_DATA or msg is Sentinel.CLOSED:
                return True
            if isinstance(msg, ConnectResponse):
                if msg.timeout <= 0 or msg.session_id == 0:
                    self.expired += 1
                    self.session_id, self.passwd = 0, _NO_PASSWORD
                    return False
                if msg.session_id != self.session_id:
                    self.sessions += 1
                    self.last_reply_xid = 0
                self.session_id = msg.session_id
                self.passwd = msg.passwd if msg.passwd is not None else _NO_PASSWORD
                if self.passwd != generate_password(self.session_id):
                    self.violations.append(
                        f"t={now:.3f}ms: client {self.idx}: the password of session "
                        f"{self.session_id:#x} is not the session's"
                    )
                self.timeout = msg.timeout
                self.state = "open"
                continue
            if msg.xid < 0:
                continue  # a notification or a ping
            self._reply(now, msg)

    def _reply(self, now: float, reply: ClientReply) -> None:
        head = self.outstanding.popleft()
        who = f"t={now:.3f}ms: client {self.idx} session {self.session_id:#x}"
        if reply.xid <= self.last_reply_xid:
            self.violations.append(f"{who}: reply xid {reply.xid} after {self.last_reply_xid}")
        self.last_reply_xid = reply.xid
        if reply.zxid < self.last_zxid:
            self.violations.append(
                f"{who}: reply zxid {reply.zxid:#x} older than {self.last_zxid:#x} seen before"
            )
        self.last_zxid = max(self.last_zxid, reply.zxid)
        e = head.entry
        if e is None:
            return
        e.ret = now
        e.zxid = reply.zxid
        e.err = reply.err
        body = reply.response
        if e.kind in ("get", "sget"):
            if reply.err == ErrorCode.OK and isinstance(body, GetDataResponse):
                e.output = (body.data or b"", body.stat.version)
                e.mzxid = body.stat.mzxid
                self.versions[e.key] = body.stat.version
            elif reply.err == ErrorCode.NONODE:
                e.output = None
            else:
                e.ret = None  # a failed read says nothing
            return
        if reply.err == ErrorCode.OK:
            if isinstance(body, SetDataResponse):
                e.output = ("ok", body.stat.version)
                e.mzxid = body.stat.mzxid
                self.versions[e.key] = body.stat.version
            else:
                e.output = "ok"
                if isinstance(body, Create2Response):
                    e.mzxid = body.stat.mzxid
                    self.versions[e.key] = 0
        elif reply.err in _WRITE_OUTPUTS:
            e.output = _WRITE_OUTPUTS[ErrorCode(reply.err)]
        else:
            e.output = ("err", reply.err)


# -- checks ---------------------------------------------------------------------------------


def _us(t: float) -> int:
    return round(t * 1000)


def _key_state(tree: DataTree, key: str) -> tuple[bytes, int] | None:
    node = tree.nodes.get(key)
    if node is None:
        return None
    return (node.data or b"", node.stat.version)


def _acked(e: ClientOp) -> bool:
    if e.ret is None or not e.is_write:
        return False
    return e.output == "ok" or (isinstance(e.output, tuple) and e.output[0] == "ok")


def check_clients(
    clients: list[SimClient], finals: Mapping[int, DataTree], end: float, budget: int
) -> tuple[list[str], Verdict]:
    """The violations in the clients' histories, given the final trees of the peers in
    broadcast; and the linearizability verdict (UNKNOWN when ``budget`` search steps,
    in thousands, ran out)."""
    violations: list[str] = []
    for c in clients:
        violations += c.violations
        violations += _session_reads(c)
    ops = [e for c in clients for e in c.history]
    violations += _lost(ops, finals, end)
    history: list[Operation] = []
    for e in ops:
        if e.kind == "get" or (e.kind == "sget" and e.ret is None):
            continue
        inp = SimZnodeOp("get" if e.kind == "sget" else e.kind, e.key, e.value, e.version)
        ret = None if e.ret is None else _us(e.ret)
        history.append(Operation(e.client, _us(e.call), ret, inp, e.output))
    t = _us(end) + 1
    for sid, tree in sorted(finals.items()):
        for key in KEYS:
            history.append(Operation(-sid, t, t, SimZnodeOp("get", key), _key_state(tree, key)))
        t += 1
    steps = itertools.count()
    result = check(SimZnodeModel(), history, timeout_s=budget, clock=lambda: next(steps))
    if result.verdict is Verdict.NOT_LINEARIZABLE:
        small = minimal_failure(SimZnodeModel(), result.failing_partition)
        text = describe_failure(SimZnodeModel(), small).rstrip().replace("\n", " |")
        if any(op.client < 0 for op in small):
            text += " (client -N: peer N's final tree)"
        violations.append(f"t={end:.3f}ms: clients: {text}")
    return violations, result.verdict


def _lost(ops: list[ClientOp], finals: Mapping[int, DataTree], end: float) -> list[str]:
    out: list[str] = []
    acked = [e for e in ops if _acked(e)]
    for sid, tree in sorted(finals.items()):
        behind = [e for e in acked if e.zxid > tree.last_processed_zxid]
        if behind:
            out.append(
                f"t={end:.3f}ms: clients: peer {sid} ends at zxid "
                f"{tree.last_processed_zxid:#x} without the acknowledged "
                f"{behind[0].describe()}"
            )
    states = {sid: tuple(_key_state(t, k) for k in KEYS) for sid, t in finals.items()}
    if len(set(states.values())) > 1:
        shown = ", ".join(f"{sid}: {s}" for sid, s in sorted(states.items()))
        out.append(f"t={end:.3f}ms: clients: the peers end with different keys ({shown})")
    return out


def _session_reads(c: SimClient) -> Iterator[str]:
    """Per session and key: no read older (mzxid) than what the session saw or wrote."""
    floor: dict[tuple[int, str], tuple[int, ClientOp]] = {}
    answered = sorted((e for e in c.history if e.ret is not None), key=lambda e: e.ret or 0.0)
    for e in answered:
        key = (e.session, e.key)
        seen = floor.get(key)
        read = e.kind in ("get", "sget") and e.output is not None
        if read and seen is not None and e.mzxid < seen[0]:
            yield (
                f"t={e.ret:.3f}ms: clients: stale read {e.describe()} (mzxid "
                f"{e.mzxid:#x}) after {seen[1].describe()}"
            )
        z = e.mzxid
        if (_acked(e) or e.kind in ("get", "sget")) and z >= 0 and (seen is None or z > seen[0]):
            floor[key] = (z, e)


__all__ = ["KEYS", "ClientOp", "SimClient", "check_clients"]
