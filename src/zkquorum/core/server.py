"""A ZooKeeper server's client side as a pure state machine: sessions, the request
pipeline, watches and replies (``ZooKeeperServer`` with its Prep, Sync and Final request
processors; standalone, or one seat of a quorum).

``ServerCore.step(event) -> ServerOut``: events are client connections and their decoded
frames (:mod:`zkquorum.wire.client`), ticks, and ``TxnsDurable`` from the
group-committed log; the output is bytes per connection (in order), connections to
close, and txns to append.  Facts: ``docs/spec/zk-server.md`` §2.

The pipeline, as 3.8's processors chain it:

* **prep** (:mod:`zkquorum.core.prep`): a write becomes a txn with the next zxid, or an
  error txn (a failed write still takes a zxid, as in 3.8), checked against the tree
  *plus* the outstanding changes of txns prepared but not yet applied, so that writes
  are pipelined and a request sees the effect of the ones before it;
* **sync**: the txn goes to the log (``ServerOut.append``); many become durable together;
* **final**: once durable, the txn is applied to the database, watches fire, and the
  reply goes out.  Replies leave each connection in request order: a read waits behind
  the same connection's writes (3.8's CommitProcessor), reads of other connections do
  not.

Sessions: created by a ``createSession`` txn (the ConnectResponse follows its commit),
touched by every packet, expired by the tracker (``closeSession`` txn, ephemerals
deleted).  A reconnect with a session id and the right password (``java.util.Random``
passwords, as 3.8 makes them) moves the session to the new connection.

In a quorum (``ServerSettings.quorum``) the same connections, reads and watches, but
prep, the log and expiry belong to the peer core: writes, session changes and syncs leave
as ``ServerOut.forward`` (the leader prepares and proposes them, a learner forwards them
to its leader), a reconnecting session is revalidated by the leader
(``ServerOut.revalidate``), touched sessions are reported (``ServerOut.touches``), and
every txn the peer core applies comes back as ``TxnApplied``: watches fire, and the
client that sent it gets its reply (matched by session id and xid, as 3.8's
CommitProcessor matches them).
"""

from __future__ import annotations

import collections
import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from zkquorum.core.acl import AuthSettings, add_auth_info, authenticate, check_acl
from zkquorum.core.database import Database
from zkquorum.core.datatree import DataTree
from zkquorum.core.digest import TreeDigests
from zkquorum.core.final import Effects, apply_txn, client_stat
from zkquorum.core.javaorder import auth_order
from zkquorum.core.prep import (
    OutstandingChanges,
    Prep,
    PrepRequest,
    PrepResult,
    PrepSettings,
    java_hash_set_order,
)
from zkquorum.core.sasl import (
    DigestMD5Server,
    SaslFailed,
    SaslSettings,
    nonce,
    sasl_provider_configured,
)
from zkquorum.core.sessions import SessionIdGenerator, SessionTracker, generate_password
from zkquorum.core.watch_manager import WatchManager
from zkquorum.wire.client import (
    DEFAULT_MAX_BUFFER,
    ClientRequest,
    MalformedRequest,
    encode_connect_response,
    encode_notification,
    encode_reply,
)
from zkquorum.wire.client_records import (
    AUTHPACKET_XID,
    AddWatchRequest,
    AuthPacket,
    CheckResult,
    CheckWatchesRequest,
    ClientInfo,
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    CreateResponse,
    CreateResult,
    CreateSessionRequest,
    DeleteContainerRequest,
    DeleteResult,
    ErrorCode,
    ErrorResponse,
    ErrorResult,
    EventType,
    ExistsRequest,
    ExistsResponse,
    GetACLRequest,
    GetACLResponse,
    GetAllChildrenNumberRequest,
    GetAllChildrenNumberResponse,
    GetChildren2Request,
    GetChildren2Response,
    GetChildrenRequest,
    GetChildrenResponse,
    GetChildrenResult,
    GetDataRequest,
    GetDataResponse,
    GetDataResult,
    GetEphemeralsRequest,
    GetEphemeralsResponse,
    GetSASLRequest,
    KeeperState,
    MultiOperationRecord,
    MultiResponse,
    OpResult,
    Perms,
    Record,
    RemoveWatchesRequest,
    ReplyHeader,
    SetACLResponse,
    SetDataResponse,
    SetDataResult,
    SetSASLResponse,
    SetWatches,
    SetWatches2,
    Stat,
    SyncRequest,
    SyncResponse,
    WatcherEvent,
    WhoAmIResponse,
)
from zkquorum.wire.jute import ACL, Id
from zkquorum.wire.reader import pack_int
from zkquorum.wire.records import fast_init
from zkquorum.wire.txn import CreateSessionTxn, OpCode, Txn
from zkquorum.wire.zxid import zxid_hex

log = logging.getLogger(__name__)

INF = float("inf")
_NO_PASSWORD = bytes(16)
_AWAITING = -1
"""A pending write's zxid while the quorum has not committed it (its zxid is not ours)."""


# -- settings, events, output --------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class ServerSettings:
    server_id: int = 0
    tick_time_ms: int = 2000
    min_session_timeout_ms: int = -1
    max_session_timeout_ms: int = -1
    extended_types: bool = False
    """``zookeeper.extendedTypesEnabled``: TTL nodes."""
    super_digest: str | None = None
    """``zookeeper.DigestAuthenticationProvider.superDigest``."""
    watch_read_filter: bool = True
    """Deliver a watch event only to a watcher that may READ the node (3.8.4+)."""
    container_check_interval_ms: int = 60_000
    """``znode.container.checkIntervalMs``: how often empty containers and expired TTL
    nodes are looked for."""
    container_max_never_used_ms: int = 0
    """``znode.container.maxNeverUsedIntervalMs``: 0 keeps never-used containers."""
    ack_logging_frequency: int = 1000
    """``zookeeper.leader.ackLoggingFrequency``, for the leader's ``ack_latency``."""
    read_only: bool = False
    """3.8's ``ReadOnlyZooKeeperServer``: a peer cut off from its quorum serves the
    clients that ask for read-only sessions (the others are refused), from its database
    as it is; sessions are its own, writes and syncs answer NOTREADONLY, nothing is
    logged."""
    read_only_enabled: bool = False
    """``readonlymode.enabled``: serve read-only while looking for a quorum."""
    quorum: bool = False
    """A seat of a quorum: writes, session changes and syncs go to the peer core (which
    prepares them if it leads, or forwards them to the leader), and come back applied
    (``TxnApplied``); the leader, not this server, expires sessions and containers."""
    sasl: SaslSettings | None = None
    """SASL logins (the JAAS ``Server`` section, which the runtime reads); ``None``: off."""
    sasl_acl: bool = False
    """``zookeeper.authProvider.N`` registers SASLAuthenticationProvider: ``sasl`` ACLs."""
    reconfig_enabled: bool = False
    """``reconfigEnabled``: a standalone server answers reconfig UNIMPLEMENTED instead of
    RECONFIGDISABLED (a quorum's leader decides for itself)."""

    @classmethod
    def from_properties(
        cls,
        props: Mapping[str, str],
        *,
        server_id: int,
        tick_time_ms: int,
        min_session_timeout_ms: int,
        max_session_timeout_ms: int,
    ) -> ServerSettings:
        """From zoo.cfg's values; 3.8 reads these as system properties, and a zoo.cfg
        line ``name=value`` is ``-Dzookeeper.name=value`` (``QuorumPeerConfig``)."""

        def get(name: str) -> str | None:
            value = props.get(name)
            return value if value is not None else props.get(f"zookeeper.{name}")

        def num(name: str, default: int) -> int:
            try:
                return int(get(name) or default)
            except ValueError:
                return default

        return cls(
            server_id=server_id,
            tick_time_ms=tick_time_ms,
            min_session_timeout_ms=min_session_timeout_ms,
            max_session_timeout_ms=max_session_timeout_ms,
            extended_types=(get("extendedTypesEnabled") or "").lower() == "true",
            super_digest=get("DigestAuthenticationProvider.superDigest"),
            container_check_interval_ms=num("znode.container.checkIntervalMs", 60_000),
            container_max_never_used_ms=num("znode.container.maxNeverUsedIntervalMs", 0),
            ack_logging_frequency=num("leader.ackLoggingFrequency", 1000),
            read_only_enabled=(get("readonlymode.enabled") or "").lower() == "true",
            sasl_acl=sasl_provider_configured(props),
            reconfig_enabled=(props.get("reconfigEnabled") or "").strip().lower() == "true",
        )

    @property
    def min_timeout(self) -> int:
        m = self.min_session_timeout_ms
        return 2 * self.tick_time_ms if m == -1 else m

    @property
    def max_timeout(self) -> int:
        m = self.max_session_timeout_ms
        return 20 * self.tick_time_ms if m == -1 else m


@fast_init
@dataclass(frozen=True, slots=True)
class ClientConnected:
    now: float
    conn: int
    remote_ip: str


@fast_init
@dataclass(frozen=True, slots=True)
class ClientMessage:
    now: float
    conn: int
    message: ConnectRequest | ClientRequest


@fast_init
@dataclass(frozen=True, slots=True)
class ClientClosed:
    now: float
    conn: int


@fast_init
@dataclass(frozen=True, slots=True)
class ServerTick:
    now: float


@fast_init
@dataclass(frozen=True, slots=True)
class TxnsDurable:
    """Every txn appended up to ``zxid`` is on disk."""

    now: float
    zxid: int


@fast_init
@dataclass(frozen=True, slots=True)
class TxnApplied:
    """Quorum: the peer core applied a committed txn; ``effects`` is its ``Effects``."""

    now: float
    txn: Txn
    effects: Effects


@fast_init
@dataclass(frozen=True, slots=True)
class SessionRevalidated:
    now: float
    session_id: int
    valid: bool


@fast_init
@dataclass(frozen=True, slots=True)
class SyncDone:
    """Quorum: the oldest forwarded sync is answered."""

    now: float


ServerEvent = (
    ClientConnected
    | ClientMessage
    | ClientClosed
    | ServerTick
    | TxnsDurable
    | TxnApplied
    | SessionRevalidated
    | SyncDone
)


@fast_init
@dataclass(frozen=True, slots=True)
class Forward:
    """Quorum: a request for the peer core (``core.events.ClientWrite``)."""

    session_id: int
    cxid: int
    op: int
    body: bytes
    auth: tuple[Id, ...]


class ServerOut:
    """What one step of the server asks for."""

    __slots__ = (
        "append",
        "closes",
        "forward",
        "latencies",
        "namespace_bytes",
        "revalidate",
        "sends",
        "touches",
        "wake_at",
    )

    def __init__(self) -> None:
        self.sends: list[tuple[int, bytes]] = []
        """Bytes per connection, in the order they must be written."""
        self.closes: list[int] = []
        """Connections to close once their bytes above are written."""
        self.append: list[Txn] = []
        self.wake_at: float = INF
        self.forward: list[Forward] = []
        self.revalidate: list[tuple[int, int]] = []
        """Quorum: (session id, timeout) of clients that reconnect with a session."""
        self.touches: list[tuple[int, int]] = []
        """Quorum: sessions our clients used, for the leader's session tracker."""
        self.latencies: list[tuple[bool, float]] = []
        """(a write?, ms) of each request answered: 3.8's ``updatelatency`` for writes
        and new sessions, ``readlatency`` for the rest."""
        self.namespace_bytes: list[tuple[bool, str, int]] = []
        """(a write?, top-level namespace, bytes) of each node read or written, as
        3.8's ``DataTree`` counts them for ``read_per_namespace`` and
        ``write_per_namespace``."""


@dataclass(slots=True)
class LatencyStats:
    """Request latency in ms, as ``ServerStats`` and each ``ServerCnxn`` keep it."""

    count: int = 0
    total: float = 0.0
    min: float = INF
    max: float = 0.0
    last: float = 0.0

    def add(self, ms: float) -> None:
        self.count += 1
        self.total += ms
        self.last = ms
        if ms < self.min:
            self.min = ms
        if ms > self.max:
            self.max = ms

    @property
    def low(self) -> float:
        """The minimum, 0 before the first request (3.8 prints 0, not its sentinel)."""
        return 0.0 if self.count == 0 else self.min

    @property
    def avg(self) -> float:
        return self.total / self.count if self.count else 0.0

    def reset(self) -> None:
        self.count, self.total, self.min, self.max, self.last = 0, 0.0, INF, 0.0, 0.0


# -- per connection ------------------------------------------------------------------------


class ConnState(enum.Enum):
    HANDSHAKE = "handshake"
    CONNECTING = "connecting"
    """A createSession txn is on its way; the ConnectResponse follows its commit."""
    REVALIDATING = "revalidating"
    """Quorum: the leader is asked whether the session may move here."""
    OPEN = "open"
    CLOSING = "closing"


@dataclass(slots=True)
class _Pending:
    xid: int
    op: int
    record: object
    zxid: int | None = None
    """A write's zxid (``None`` for a read)."""
    reply: bytes | None = None
    close_after: bool = False
    at: float = 0.0
    """When the request arrived (ms)."""


@dataclass(slots=True)
class Connection:
    conn: int
    remote_ip: str
    state: ConnState = ConnState.HANDSHAKE
    session_id: int = 0
    timeout: int = 0
    old_client: bool = False
    """No readOnly byte in the ConnectRequest: none in the response either."""
    auth: list[Id] = field(default_factory=list)
    auth_ordered: tuple[Id, ...] = ()
    """``auth`` in Java's iteration order (kept up to date with it)."""
    queue: collections.deque[_Pending] = field(default_factory=collections.deque)
    held: list[ClientRequest] = field(default_factory=list)
    """Requests that came behind the ConnectRequest before the session was established
    (the Netty client pipelines them); handled once it is, as 3.8's ``disableRecv`` until
    ``finishSessionInit``."""
    held_bytes: int = 0
    sasl: DigestMD5Server | None = None
    """The connection's SASL exchange, made at its first sasl request."""
    received: int = 0
    sent: int = 0
    connected_at: float = 0.0
    latency: LatencyStats = field(default_factory=LatencyStats)
    last_op: str = "NA"
    last_cxid: int = -1
    last_zxid: int = -1
    last_response_at: float = 0.0


_READ_OPS = frozenset(
    {
        OpCode.EXISTS,
        OpCode.GET_DATA,
        OpCode.GET_ACL,
        OpCode.GET_CHILDREN,
        OpCode.GET_CHILDREN2,
        OpCode.SYNC,
        OpCode.PING,
        OpCode.MULTI_READ,
        OpCode.SET_WATCHES,
        OpCode.SET_WATCHES2,
        OpCode.ADD_WATCH,
        OpCode.CHECK_WATCHES,
        OpCode.REMOVE_WATCHES,
        OpCode.GET_EPHEMERALS,
        OpCode.GET_ALL_CHILDREN_NUMBER,
        OpCode.WHO_AM_I,
    }
)
_WRITE_OPS = frozenset(
    {
        OpCode.CREATE,
        OpCode.CREATE2,
        OpCode.CREATE_CONTAINER,
        OpCode.CREATE_TTL,
        OpCode.DELETE,
        OpCode.SET_DATA,
        OpCode.SET_ACL,
        OpCode.MULTI,
        OpCode.CHECK,
        OpCode.CLOSE_SESSION,
        OpCode.RECONFIG,
    }
)

HELD_LIMIT_BYTES: Final = DEFAULT_MAX_BUFFER
"""The most a connection may send behind its ConnectRequest before its session is
established (``jute.maxbuffer``'s default: one largest request)."""

_NOT_READ_ONLY = (_WRITE_OPS - {OpCode.CLOSE_SESSION}) | {OpCode.SYNC}
"""What ``ReadOnlyRequestProcessor`` answers NOTREADONLY."""


_LAST_OP: Final[Mapping[int, str]] = {
    OpCode.PING: "PING",
    OpCode.CREATE_SESSION: "SESS",
    OpCode.CLOSE_SESSION: "CLOS",
    OpCode.SYNC: "SYNC",
    OpCode.CHECK: "CHEC",
    OpCode.MULTI: "MULT",
    OpCode.MULTI_READ: "MLTR",
    OpCode.CREATE: "CREA",
    OpCode.CREATE2: "CREA",
    OpCode.CREATE_TTL: "CREA",
    OpCode.CREATE_CONTAINER: "CREA",
    OpCode.DELETE: "DELE",
    OpCode.SET_DATA: "SETD",
    OpCode.SET_ACL: "SETA",
    OpCode.EXISTS: "EXIS",
    OpCode.GET_DATA: "GETD",
    OpCode.SET_WATCHES: "SETW",
    OpCode.SET_WATCHES2: "STW2",
    OpCode.ADD_WATCH: "ADDW",
    OpCode.GET_ACL: "GACL",
    OpCode.GET_CHILDREN: "GETC",
    OpCode.GET_CHILDREN2: "GETC",
    OpCode.GET_ALL_CHILDREN_NUMBER: "GETACN",
    OpCode.GET_EPHEMERALS: "GETE",
    OpCode.CHECK_WATCHES: "CHKW",
    OpCode.REMOVE_WATCHES: "REMW",
    OpCode.WHO_AM_I: "HOMI",
}
"""``lastOp`` of each request kind, as ``cons`` prints it."""


LOCAL = "local"
"""The owner of every session of this server's own clients (3.8: ``ServerCnxn.me``)."""


class ServerCore:
    """One server's clients, sessions and request pipeline (standalone)."""

    def __init__(self, settings: ServerSettings, db: Database, *, now: float, wall_ms: int) -> None:
        self.settings = settings
        self.db = db
        self._wall_offset = wall_ms - now
        self.conns: dict[int, Connection] = {}
        self.auth = AuthSettings(super_digest=settings.super_digest, sasl=settings.sasl_acl)
        self._sasl_exchanges = 0
        self._started_wall_ms = wall_ms
        self.prep = Prep(
            PrepSettings(
                extended_types_enabled=settings.extended_types,
                auth=self.auth,
                reconfig_enabled=settings.reconfig_enabled,
            )
        )
        self.changes = OutstandingChanges()
        self._digests = TreeDigests(db)
        # The tracker's clock is the wall clock's value at start plus monotonic time: its
        # session ids carry the time as 3.8's do, and expiry never jumps with the wall.
        self.tracker = SessionTracker(
            settings.server_id, settings.tick_time_ms, self.wall(now), dict(db.tree.sessions)
        )
        self.session_conn: dict[int, int] = {}
        """Which connection holds each session now."""
        self.watches = WatchManager()
        self._last_zxid = db.last_processed_zxid
        self._inflight: collections.deque[tuple[Txn, int | None, _Pending | None]] = (
            collections.deque()
        )
        """Prepared txns not yet applied: (txn, connection, its pending entry)."""
        self.requests = 0
        self._next_container_check = (
            INF
            if settings.quorum or settings.read_only
            else now + settings.container_check_interval_ms
        )
        self._ids = SessionIdGenerator(settings.server_id, self.wall(now))
        self._touched: dict[int, int] = {}
        self._revalidating: dict[int, int] = {}
        self._syncs: collections.deque[tuple[int, _Pending]] = collections.deque()
        self.packets_received = 0
        self.packets_sent = 0
        self.latency = LatencyStats()
        self._now = now

    # -- queries -------------------------------------------------------------------------

    @property
    def last_zxid(self) -> int:
        return self.db.last_processed_zxid

    @property
    def session_count(self) -> int:
        return len(self.tracker)

    def wall(self, now: float) -> int:
        return int(now + self._wall_offset)

    def next_deadline(self) -> float:
        if self.settings.quorum:
            return INF
        return min(self.tracker.wake_at - self._wall_offset, self._next_container_check)

    # -- the entry point -------------------------------------------------------------------

    def step(self, event: ServerEvent) -> ServerOut:
        out = ServerOut()
        self._now = event.now
        match event:
            case ClientMessage(now, conn, message):
                c = self.conns.get(conn)
                if c is not None and c.state is not ConnState.CLOSING:
                    c.received += 1
                    self.packets_received += 1
                    if isinstance(message, ConnectRequest):
                        self._connect(out, c, message, now)
                    else:
                        self._request(out, c, message, now)
            case TxnApplied(now, txn, effects):
                self._applied(out, txn, effects, now)
            case ClientConnected(now, conn, ip):
                ident = Id("ip", ip)
                self.conns[conn] = Connection(
                    conn, ip, auth=[ident], auth_ordered=(ident,), connected_at=now
                )
            case ClientClosed(_, conn):
                self._closed(conn)
            case ServerTick(now) if not self.settings.quorum:
                self._expire(out, now)
                if now >= self._next_container_check:
                    self._next_container_check = now + self.settings.container_check_interval_ms
                    self._delete_containers(out, now)
            case TxnsDurable(now, zxid):
                self._durable(out, zxid, now)
            case SessionRevalidated(_, session_id, valid):
                self._revalidated(out, session_id, valid)
            case SyncDone():
                self._sync_done(out)
        if self._touched:
            out.touches = list(self._touched.items())
            self._touched.clear()
        out.wake_at = self.next_deadline()
        return out

    # -- connections and sessions ----------------------------------------------------------

    def _send(self, out: ServerOut, c: Connection, data: bytes) -> None:
        c.sent += 1
        self.packets_sent += 1
        out.sends.append((c.conn, data))

    def _answered(self, out: ServerOut, c: Connection, op: int, xid: int, at: float) -> None:
        """``ServerStats#updateLatency`` and the connection's own statistics."""
        ms = self._now - at
        self.latency.add(ms)
        c.latency.add(ms)
        c.last_op = _LAST_OP.get(op, "NA")
        c.last_cxid = xid
        c.last_zxid = self.last_zxid
        c.last_response_at = self._now
        out.latencies.append((op in _WRITE_OPS or op == OpCode.CREATE_SESSION, ms))

    def reset_stats(self) -> None:
        """``srst``: the server's packet counts and latencies."""
        self.packets_received = self.packets_sent = 0
        self.latency.reset()

    def reset_connection_stats(self) -> None:
        """``crst``: each connection's packet counts, latencies and last operation."""
        for c in self.conns.values():
            c.received = c.sent = 0
            c.latency.reset()
            c.last_op, c.last_cxid, c.last_zxid, c.last_response_at = "NA", -1, -1, 0.0

    @property
    def outstanding(self) -> int:
        """Requests received and not answered yet (``outstanding_requests``)."""
        return sum(len(c.queue) for c in self.conns.values())

    def _close(self, out: ServerOut, c: Connection) -> None:
        c.state = ConnState.CLOSING
        out.closes.append(c.conn)

    def _closed(self, conn: int) -> None:
        c = self.conns.pop(conn, None)
        if c is None:
            return
        self.watches.remove_watcher(conn)
        if self.session_conn.get(c.session_id) == conn:
            del self.session_conn[c.session_id]

    def _negotiate(self, timeout: int) -> int:
        return max(self.settings.min_timeout, min(timeout, self.settings.max_timeout))

    def _touch(self, c: Connection, now: float) -> None:
        if c.session_id and self.settings.quorum:
            self._touched[c.session_id] = c.timeout
        elif c.session_id:
            self.tracker.touch_session(c.session_id, c.timeout, self.wall(now))

    def _connect(self, out: ServerOut, c: Connection, req: ConnectRequest, now: float) -> None:
        if c.state is not ConnState.HANDSHAKE:
            self._close(out, c)
            return
        c.old_client = req.read_only is None
        c.connected_at = now
        if self.settings.read_only and not req.read_only:
            log.info("Refusing session request for not-read-only client")
            self._close(out, c)
            return
        if req.last_zxid_seen > self.last_zxid:
            log.info(
                "Refusing session request for client as it has seen zxid 0x%s our last "
                "zxid is 0x%s client must try another server",
                zxid_hex(req.last_zxid_seen),
                zxid_hex(self.last_zxid),
            )
            self._close(out, c)
            return
        timeout = self._negotiate(req.timeout)
        if req.session_id == 0 and self.settings.read_only:
            # A session of this server alone: no txn (nothing may be written).
            sid = self.tracker.create_session(timeout, self.wall(now))
            c.session_id, c.timeout = sid, timeout
            self.session_conn[sid] = c.conn
            c.state = ConnState.OPEN
            self._send(out, c, self._connect_response(c))
            self._answered(out, c, OpCode.CREATE_SESSION, 0, now)
            return
        if req.session_id == 0 and self.settings.quorum:
            sid = self._ids.next()
            c.session_id, c.timeout = sid, timeout
            c.state = ConnState.CONNECTING
            self.session_conn[sid] = c.conn
            out.forward.append(Forward(sid, 0, OpCode.CREATE_SESSION, pack_int(timeout), ()))
            return
        if req.session_id == 0:
            sid = self.tracker.create_session(timeout, self.wall(now))
            c.session_id, c.timeout = sid, timeout
            c.state = ConnState.CONNECTING
            self.session_conn[sid] = c.conn
            request = PrepRequest(
                sid, 0, OpCode.CREATE_SESSION, CreateSessionRequest(timeout), owner=LOCAL
            )
            self._prepare(out, request, now, c.conn, _Pending(0, OpCode.CREATE_SESSION, None))
            return
        if self.settings.quorum:
            if req.passwd != generate_password(req.session_id):
                self._refuse(out, c)
                return
            c.session_id, c.timeout = req.session_id, timeout
            c.state = ConnState.REVALIDATING
            self._revalidating[req.session_id] = c.conn
            out.revalidate.append((req.session_id, timeout))
            return
        s = self.tracker.get(req.session_id)
        if s is None or s.closing or req.passwd != generate_password(req.session_id):
            self._send(
                out,
                c,
                encode_connect_response(
                    ConnectResponse(0, 0, 0, _NO_PASSWORD, None if c.old_client else False)
                ),
            )
            self._close(out, c)
            return
        old = self.conns.get(self.session_conn.get(s.session_id, -1))
        if old is not None and old is not c:
            self._close(out, old)
        self.session_conn[s.session_id] = c.conn
        c.session_id, c.timeout = s.session_id, timeout
        self.tracker.touch_session(s.session_id, timeout, self.wall(now))
        c.state = ConnState.OPEN
        self._send(out, c, self._connect_response(c))

    def _release(self, out: ServerOut, c: Connection, now: float) -> None:
        """The session is established: handle what came behind its ConnectRequest."""
        held, c.held = c.held, []
        c.held_bytes = 0
        for req in held:
            if c.state is not ConnState.OPEN:
                break
            self._request(out, c, req, now)

    def _refuse(self, out: ServerOut, c: Connection) -> None:
        """An expired or unknown session: timeout 0, session 0, no password; close."""
        response = ConnectResponse(0, 0, 0, _NO_PASSWORD, None if c.old_client else False)
        self._send(out, c, encode_connect_response(response))
        self._close(out, c)

    def _revalidated(self, out: ServerOut, session_id: int, valid: bool) -> None:
        c = self.conns.get(self._revalidating.pop(session_id, -1))
        if c is None or c.state is not ConnState.REVALIDATING:
            return
        if not valid:
            self._refuse(out, c)
            return
        old = self.conns.get(self.session_conn.get(session_id, -1))
        if old is not None and old is not c:
            self._close(out, old)
        self.session_conn[session_id] = c.conn
        c.state = ConnState.OPEN
        self._touched[session_id] = c.timeout
        self._send(out, c, self._connect_response(c))
        self._release(out, c, self._now)

    def _sync_done(self, out: ServerOut) -> None:
        if not self._syncs:
            return
        conn, pending = self._syncs.popleft()
        c = self.conns.get(conn)
        if c is None:
            return
        path = pending.record.path if isinstance(pending.record, SyncRequest) else "/"
        pending.reply = encode_reply(
            ReplyHeader(pending.xid, self.last_zxid, 0), SyncResponse(path)
        )
        self._flush(out, c)

    def _applied(self, out: ServerOut, txn: Txn, result: Effects, now: float) -> None:
        """Quorum: a committed txn is in the database; fire, and answer its client here."""
        h = txn.header
        _count_writes(out, result)
        for event_type, path in result.events:
            self._fire(out, event_type, path)
        holder = self.conns.get(self.session_conn.get(h.client_id, -1))
        if h.type == OpCode.CLOSE_SESSION:
            self.session_conn.pop(h.client_id, None)
        if holder is None:
            return
        if h.type == OpCode.CREATE_SESSION:
            if holder.state is ConnState.CONNECTING:
                holder.state = ConnState.OPEN
                self._touched[h.client_id] = holder.timeout
                self._send(out, holder, self._connect_response(holder))
                self._answered(out, holder, OpCode.CREATE_SESSION, 0, holder.connected_at)
                self._release(out, holder, now)
            return
        for p in holder.queue:
            if p.zxid == _AWAITING and p.reply is None and p.xid == h.cxid:
                p.reply = self._write_reply(p, result, h.zxid)
                if p.op == OpCode.CLOSE_SESSION:
                    p.close_after = True
                self._flush(out, holder)
                return
        if h.type == OpCode.CLOSE_SESSION:
            self._close(out, holder)  # expired by the leader, or closed elsewhere

    def _connect_response(self, c: Connection) -> bytes:
        return encode_connect_response(
            ConnectResponse(
                0,
                c.timeout,
                c.session_id,
                generate_password(c.session_id),
                None if c.old_client else self.settings.read_only,
            )
        )

    def _expire(self, out: ServerOut, now: float) -> None:
        for s in self.tracker.expired(self.wall(now)):
            log.info("Expiring session 0x%x, timeout of %dms exceeded", s.session_id, s.timeout)
            if self.settings.read_only:
                self._end_session(out, s.session_id)
                continue
            request = PrepRequest(s.session_id, 0, OpCode.CLOSE_SESSION, owner=LOCAL, internal=True)
            self._prepare(out, request, now, None, None)

    def _delete_containers(self, out: ServerOut, now: float) -> None:
        """``ContainerManager#checkContainers``: empty containers that had children, and
        childless TTL nodes older than their TTL, are deleted by ``deleteContainer``."""
        never_used = self.settings.container_max_never_used_ms
        for path in self.db.tree.container_candidates(self.wall(now), never_used):
            request = PrepRequest(
                0, 0, OpCode.DELETE_CONTAINER, DeleteContainerRequest(path), internal=True
            )
            self._prepare(out, request, now, None, None)

    # -- requests --------------------------------------------------------------------------

    def _prepare(
        self,
        out: ServerOut,
        request: PrepRequest,
        now: float,
        conn: int | None,
        pending: _Pending | None,
    ) -> PrepResult:
        """Prep ``request`` with the next zxid; a txn goes to the log."""
        zxid = self._last_zxid + 1
        result = self.prep.prepare(
            request,
            zxid=zxid,
            time=self.wall(now),
            now=self.wall(now),
            tree=self.db.tree,
            changes=self.changes,
            sessions=self.tracker,
            digests=self._digests,
        )
        if result.txn is not None:
            self._last_zxid = zxid
            if pending is not None:
                pending.zxid = zxid
            self._inflight.append((result.txn, conn, pending))
            out.append.append(result.txn)
        return result

    def _request(self, out: ServerOut, c: Connection, req: ClientRequest, now: float) -> None:
        if c.state is ConnState.HANDSHAKE:
            self._close(out, c)  # a request before the ConnectRequest
            return
        if c.state in (ConnState.CONNECTING, ConnState.REVALIDATING):
            c.held_bytes += len(req.body)
            if c.held_bytes > HELD_LIMIT_BYTES:
                # 3.8 stops reading such a connection until then; a core cannot, so a
                # client that sends this much before its session exists is closed.
                log.warning(
                    "Closing client %s: %d bytes of requests before its session was established",
                    c.remote_ip,
                    c.held_bytes,
                )
                self._close(out, c)
                return
            c.held.append(req)
            return
        self._touch(c, now)
        self.requests += 1
        op, rec = req.op, req.record
        if req.xid == AUTHPACKET_XID or op == OpCode.AUTH:
            self._auth(out, c, req)
            return
        if op == OpCode.SASL:
            self._sasl(out, c, req)
            return
        if isinstance(rec, MalformedRequest):
            c.queue.append(
                _Pending(
                    req.xid,
                    op,
                    None,
                    reply=self._error(req.xid, ErrorCode.MARSHALLINGERROR),
                    at=now,
                )
            )
            self._flush(out, c)
            return
        if self.settings.read_only and op in _NOT_READ_ONLY:
            # ReadOnlyRequestProcessor: every change, and sync, is refused here.
            refused = self._error(req.xid, ErrorCode.NOTREADONLY)
            c.queue.append(_Pending(req.xid, op, None, reply=refused, at=now))
            self._flush(out, c)
            return
        if self.settings.read_only and op == OpCode.CLOSE_SESSION:
            closed = encode_reply(ReplyHeader(req.xid, self.last_zxid, 0))
            pending = _Pending(req.xid, op, None, reply=closed, close_after=True, at=now)
            c.queue.append(pending)
            self._end_session(out, c.session_id, keep=c)
            self._flush(out, c)
            return
        if op == OpCode.SYNC and self.settings.quorum:
            # Learner: the leader answers once everything before it is committed here.
            pending = _Pending(req.xid, op, rec, zxid=_AWAITING, at=now)
            c.queue.append(pending)
            self._syncs.append((c.conn, pending))
            out.forward.append(Forward(c.session_id, req.xid, op, req.body, c.auth_ordered))
            return
        if op in _READ_OPS:
            c.queue.append(_Pending(req.xid, op, rec, at=now))
            self._flush(out, c)
            return
        if op not in _WRITE_OPS or (op != OpCode.CLOSE_SESSION and rec is None):
            code = ErrorCode.UNIMPLEMENTED
            pending = _Pending(req.xid, op, None, reply=self._error(req.xid, code), at=now)
            pending.close_after = True
            c.queue.append(pending)
            self._flush(out, c)
            return
        pending = _Pending(req.xid, op, rec, at=now)
        c.queue.append(pending)
        if self.settings.quorum:
            pending.zxid = _AWAITING
            out.forward.append(Forward(c.session_id, req.xid, op, req.body, c.auth_ordered))
            return
        request = PrepRequest(c.session_id, req.xid, op, rec, c.auth_ordered, owner=LOCAL)
        result = self._prepare(out, request, now, c.conn, pending)
        if result.txn is None:
            pending.reply = self._error(req.xid, result.err or ErrorCode.SYSTEMERROR)
            self._flush(out, c)

    def _end_session(self, out: ServerOut, session_id: int, keep: Connection | None = None) -> None:
        """Read-only: a session ends here alone (it owns nothing: it could write nothing)."""
        self.tracker.remove_session(session_id)
        holder = self.conns.get(self.session_conn.pop(session_id, -1))
        if holder is not None and holder is not keep:
            self._close(out, holder)

    def _auth(self, out: ServerOut, c: Connection, req: ClientRequest) -> None:
        rec = req.record
        ids = None
        if isinstance(rec, AuthPacket):
            ids = authenticate(rec.scheme, rec.auth, c.remote_ip, self.auth)
        if ids is None:
            self._send(out, c, encode_reply(ReplyHeader(AUTHPACKET_XID, 0, ErrorCode.AUTHFAILED)))
            self._close(out, c)
            return
        c.auth = list(add_auth_info(c.auth, ids))
        c.auth_ordered = tuple(auth_order(c.auth))
        self._send(out, c, encode_reply(ReplyHeader(AUTHPACKET_XID, 0, 0)))

    def _sasl(self, out: ServerOut, c: Connection, req: ClientRequest) -> None:
        """``ZooKeeperServer#processSasl``: answered at once, zxid 0 (core/sasl.py)."""
        settings = self.settings.sasl
        rec = req.record
        token = rec.token if isinstance(rec, GetSASLRequest) else None
        response: bytes | None = None
        if settings is None:
            # 3.8 without a JAAS Server section: no SASL server, answered OK with no token
            log.error("SASL request, but SASL is not configured (no JAAS Server section)")
        else:
            if c.sasl is None:
                self._sasl_exchanges += 1
                c.sasl = DigestMD5Server(
                    settings, nonce(settings.seed, self._started_wall_ms, self._sasl_exchanges)
                )
            try:
                response = c.sasl.evaluate(token or b"")
            except SaslFailed as exc:
                log.warning("Client %s failed to SASL authenticate: %s", c.remote_ip, exc)
                if not settings.allow_failed_clients:
                    log.warning("Closing client connection due to SASL authentication failure.")
                    reply = ReplyHeader(req.xid, 0, ErrorCode.AUTHFAILED)
                    self._send(out, c, encode_reply(reply, SetSASLResponse(None)))
                    self._close(out, c)
                    return
                log.warning("Maintaining client connection despite SASL authentication failure.")
            if c.sasl.complete and c.sasl.authorization_id is not None:
                user = c.sasl.authorization_id
                ids = [Id("sasl", user)]
                if user in settings.super_users:
                    ids.append(Id("super", ""))
                log.info(
                    "Session 0x%x: adding SASL authorization for authorizationID: %s",
                    c.session_id,
                    user,
                )
                c.auth = list(add_auth_info(c.auth, ids))
                c.auth_ordered = tuple(auth_order(c.auth))
        self._send(out, c, encode_reply(ReplyHeader(req.xid, 0, 0), SetSASLResponse(response)))

    # -- final: apply, watches, replies ------------------------------------------------------

    def _durable(self, out: ServerOut, zxid: int, now: float) -> None:
        while self._inflight and self._inflight[0][0].header.zxid <= zxid:
            txn, conn, pending = self._inflight.popleft()
            self._apply(out, txn, conn, pending, now)

    def _apply(
        self, out: ServerOut, txn: Txn, conn: int | None, pending: _Pending | None, now: float
    ) -> None:
        h = txn.header
        result = apply_txn(self.db.tree, txn, self.db.apply)
        self.changes.applied(h.zxid)
        _count_writes(out, result)
        for event_type, path in result.events:
            self._fire(out, event_type, path)
        if h.type == OpCode.CREATE_SESSION and isinstance(txn.record, CreateSessionTxn):
            self.tracker.commit_session(h.client_id, txn.record.timeout)
        if h.type == OpCode.CLOSE_SESSION:
            self.tracker.remove_session(h.client_id)
            holder = self.conns.get(self.session_conn.pop(h.client_id, -1))
            if holder is not None and holder.conn != conn:
                self._close(out, holder)
        c = self.conns.get(conn) if conn is not None else None
        if c is None or pending is None:
            return
        if h.type == OpCode.CREATE_SESSION:
            c.queue.clear()
            if c.state is ConnState.CONNECTING:
                c.state = ConnState.OPEN
                self._touch(c, now)
                self._send(out, c, self._connect_response(c))
                self._answered(out, c, OpCode.CREATE_SESSION, 0, c.connected_at)
                self._release(out, c, now)
            return
        pending.reply = self._write_reply(pending, result, h.zxid)
        if pending.op == OpCode.CLOSE_SESSION:
            pending.close_after = True
        self._flush(out, c)

    def _write_reply(self, p: _Pending, result: Effects, zxid: int) -> bytes:
        """The reply to the write applied as ``zxid``: its body is the txn's
        ``ProcessTxnResult`` (in a quorum the tree may have moved on since: the peer core
        applies a batch of commits before this server hears of them), its header the
        server's last processed zxid, which never goes back on a connection."""
        hdr_zxid = self.last_zxid
        if p.op == OpCode.MULTI:
            return encode_reply(
                ReplyHeader(p.xid, hdr_zxid, 0), MultiResponse(self._multi_results(result))
            )
        if result.err:
            return self._error(p.xid, result.err)
        body: Record | None = None
        stat = result.stat or Stat()
        if p.op == OpCode.CREATE:
            body = CreateResponse(result.path or "")
        elif p.op in (OpCode.CREATE2, OpCode.CREATE_CONTAINER, OpCode.CREATE_TTL):
            body = Create2Response(result.path or "", stat)
        elif p.op == OpCode.SET_DATA:
            body = SetDataResponse(stat)
        elif p.op == OpCode.SET_ACL:
            body = SetACLResponse(stat)
        elif p.op == OpCode.RECONFIG:
            body = GetDataResponse(result.config, stat)
        return encode_reply(ReplyHeader(p.xid, hdr_zxid, 0), body)

    def _multi_results(self, result: Effects) -> tuple[OpResult, ...]:
        out: list[OpResult] = []
        for sub in result.subs:
            if sub.err or result.err:
                out.append(ErrorResult(sub.err))
                continue
            stat = sub.stat or Stat()
            match sub.op:
                case OpCode.CREATE:
                    out.append(CreateResult(sub.path or ""))
                case OpCode.CREATE2 | OpCode.CREATE_CONTAINER | OpCode.CREATE_TTL:
                    out.append(CreateResult(sub.path or "", stat))
                case OpCode.DELETE:
                    out.append(DeleteResult())
                case OpCode.SET_DATA:
                    out.append(SetDataResult(stat))
                case _:
                    out.append(CheckResult())
        return tuple(out)

    def _fire(self, out: ServerOut, event_type: EventType, path: str) -> None:
        watchers = self.watches.trigger(path, event_type)
        if not watchers:
            return
        node = self.db.tree.get(path)
        for conn in watchers:
            c = self.conns.get(conn)
            if c is None or c.state is ConnState.CLOSING:
                continue
            if (
                self.settings.watch_read_filter
                and node is not None
                and not check_acl(Perms.READ, node.acl, c.auth, self.auth)
            ):
                continue
            self._notify(out, c, event_type, path)

    def _notify(self, out: ServerOut, c: Connection, event_type: EventType, path: str) -> None:
        event = WatcherEvent(event_type, KeeperState.SYNC_CONNECTED, path)
        self._send(out, c, encode_notification(event))

    def _error(self, xid: int, err: int) -> bytes:
        return encode_reply(ReplyHeader(xid, self.last_zxid, err))

    def _flush(self, out: ServerOut, c: Connection) -> None:
        """Send every reply at the head of the queue that is ready, in order."""
        while c.queue:
            p = c.queue[0]
            if p.reply is None:
                if p.zxid is not None:
                    return  # a write not yet applied: everything behind it waits
                p.reply = self._read(out, c, p)
            c.queue.popleft()
            self._send(out, c, p.reply)
            self._answered(out, c, p.op, p.xid, p.at)
            if p.close_after:
                self._close(out, c)
                return

    # -- reads -----------------------------------------------------------------------------

    def _read(self, out: ServerOut, c: Connection, p: _Pending) -> bytes:
        tree = self.db.tree
        zxid = self.last_zxid
        rec = p.record
        ok = ReplyHeader(p.xid, zxid, 0)
        match rec:
            case None if p.op == OpCode.PING:
                return encode_reply(ReplyHeader(p.xid, zxid, 0))
            case None if p.op == OpCode.WHO_AM_I:
                infos = tuple(
                    ClientInfo(i.scheme, i.id.split(":", 1)[0] if i.scheme == "digest" else i.id)
                    for i in c.auth_ordered
                )
                return encode_reply(ok, WhoAmIResponse(infos))
            case ExistsRequest(path, watch):
                node = tree.get(path)
                if watch:
                    self.watches.add_data(path, c.conn)
                if node is None:
                    return self._error(p.xid, ErrorCode.NONODE)
                _count_read(out, path, 0)
                return encode_reply(ok, ExistsResponse(client_stat(node)))
            case GetDataRequest(path, watch):
                node = tree.get(path)
                if node is None:
                    return self._error(p.xid, ErrorCode.NONODE)
                if not check_acl(Perms.READ, node.acl, c.auth, self.auth):
                    return self._error(p.xid, ErrorCode.NOAUTH)
                if watch:
                    self.watches.add_data(path, c.conn)
                _count_read(out, path, len(node.data or b""))
                return encode_reply(ok, GetDataResponse(node.data, client_stat(node)))
            case GetChildrenRequest(path, watch) | GetChildren2Request(path, watch):
                node = tree.get(path)
                if node is None:
                    return self._error(p.xid, ErrorCode.NONODE)
                if not check_acl(Perms.READ, node.acl, c.auth, self.auth):
                    return self._error(p.xid, ErrorCode.NOAUTH)
                if watch:
                    self.watches.add_child(path, c.conn)
                children = tuple(sorted(node.children))
                _count_read(out, path, sum(map(len, children)))
                if isinstance(rec, GetChildren2Request):
                    return encode_reply(ok, GetChildren2Response(children, client_stat(node)))
                return encode_reply(ok, GetChildrenResponse(children))
            case GetACLRequest(path):
                node = tree.get(path)
                if node is None:
                    return self._error(p.xid, ErrorCode.NONODE)
                if not check_acl(Perms.READ | Perms.ADMIN, node.acl, c.auth, self.auth):
                    return self._error(p.xid, ErrorCode.NOAUTH)
                acl = node.acl if node.acl is not None else acls_open()
                if not check_acl(Perms.ADMIN, node.acl, c.auth, self.auth):
                    # FinalRequestProcessor: without ADMIN the digests are hidden
                    acl = tuple(
                        ACL(a.perms, Id(a.id.scheme, a.id.id.split(":", 1)[0] + ":x"))
                        if a.id.scheme == "digest"
                        else a
                        for a in acl
                    )
                return encode_reply(ok, GetACLResponse(acl, client_stat(node)))
            case SyncRequest(path):
                return encode_reply(ok, SyncResponse(path))
            case GetEphemeralsRequest(prefix):
                owned = tree.ephemerals.get(c.session_id, ())
                created = sorted(owned, key=lambda q: _czxid(tree, q))
                every = java_hash_set_order(created, ())
                mine = [path for path in every if prefix == "/" or path.startswith(prefix)]
                return encode_reply(ok, GetEphemeralsResponse(tuple(mine)))
            case GetAllChildrenNumberRequest(path):
                node = tree.get(path)
                if node is None:
                    return self._error(p.xid, ErrorCode.NONODE)
                prefix = path.rstrip("/") + "/"
                total = sum(1 for q in tree.nodes if q.startswith(prefix))
                return encode_reply(ok, GetAllChildrenNumberResponse(total))
            case SetWatches() | SetWatches2():
                for event_type, path in self._set_watches(c, rec):
                    self._notify(out, c, event_type, path)
                return encode_reply(ok)
            case AddWatchRequest(path, mode):
                self.watches.add_persistent(path, c.conn, recursive=mode == 1)
                return encode_reply(ok, ErrorResponse(0))
            case CheckWatchesRequest(path, wtype) | RemoveWatchesRequest(path, wtype):
                remove = isinstance(rec, RemoveWatchesRequest)
                if not self.watches.has_or_remove(path, c.conn, wtype, remove=remove):
                    return self._error(p.xid, ErrorCode.NOWATCHER)
                return encode_reply(ok)
            case MultiOperationRecord(ops):
                results: list[OpResult] = []
                for op in ops:
                    r = op.request
                    node = tree.get(r.path)
                    if node is None:
                        results.append(ErrorResult(ErrorCode.NONODE))
                    elif not check_acl(Perms.READ, node.acl, c.auth, self.auth):
                        results.append(ErrorResult(ErrorCode.NOAUTH))
                    elif op.type == OpCode.GET_DATA:
                        _count_read(out, r.path, len(node.data or b""))
                        results.append(GetDataResult(node.data, client_stat(node)))
                    else:
                        children = tuple(sorted(node.children))
                        _count_read(out, r.path, sum(map(len, children)))
                        results.append(GetChildrenResult(children))
                return encode_reply(ok, MultiResponse(tuple(results)))
        return self._error(p.xid, ErrorCode.UNIMPLEMENTED)

    def _set_watches(
        self, c: Connection, rec: SetWatches | SetWatches2
    ) -> list[tuple[EventType, str]]:
        """``DataTree#setWatches``: missed events fire at once, the others are re-armed."""
        tree = self.db.tree
        rel = rec.relative_zxid
        fire: list[tuple[EventType, str]] = []
        for path in rec.data_watches:
            node = tree.get(path)
            if node is None:
                fire.append((EventType.NODE_DELETED, path))
            elif node.stat.mzxid > rel:
                fire.append((EventType.NODE_DATA_CHANGED, path))
            else:
                self.watches.add_data(path, c.conn)
        for path in rec.exist_watches:
            if tree.get(path) is not None:
                fire.append((EventType.NODE_CREATED, path))
            else:
                self.watches.add_data(path, c.conn)
        for path in rec.child_watches:
            node = tree.get(path)
            if node is None:
                fire.append((EventType.NODE_DELETED, path))
            elif node.stat.pzxid > rel:
                fire.append((EventType.NODE_CHILDREN_CHANGED, path))
            else:
                self.watches.add_child(path, c.conn)
        if isinstance(rec, SetWatches2):
            for path in rec.persistent_watches:
                self.watches.add_persistent(path, c.conn, recursive=False)
            for path in rec.persistent_recursive_watches:
                self.watches.add_persistent(path, c.conn, recursive=True)
        return fire


def acls_open() -> tuple[ACL, ...]:
    return (ACL(Perms.ALL, Id("world", "anyone")),)


def _czxid(tree: DataTree, path: str) -> int:
    node = tree.get(path)
    return node.stat.czxid if node is not None else 0


STAT_OVERHEAD_BYTES: Final = 6 * 8 + 5 * 4
"""What 3.8 adds to every read's bytes for its Stat (``DataTree.STAT_OVERHEAD_BYTES``)."""


def top_namespace(path: str) -> str | None:
    """``PathUtils#getTopNamespace``: the first component of ``path`` (None for "/")."""
    parts = path.split("/")
    return parts[1] if len(parts) > 1 and parts[1] else None


def _count_read(out: ServerOut, path: str, data_bytes: int) -> None:
    """``DataTree#updateReadStat``."""
    namespace = top_namespace(path)
    if namespace is not None:
        out.namespace_bytes.append((False, namespace, len(path) + data_bytes + STAT_OVERHEAD_BYTES))


def _count_writes(out: ServerOut, result: Effects) -> None:
    """``DataTree#updateWriteStat`` for each node the txn created, changed or deleted."""
    for path, data_bytes in result.writes:
        namespace = top_namespace(path)
        if namespace is not None:
            out.namespace_bytes.append((True, namespace, len(path) + data_bytes))
