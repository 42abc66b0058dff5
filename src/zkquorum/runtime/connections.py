"""The election-port connection manager: ZooKeeper's ``QuorumCnxManager`` on asyncio.

Facts: ``docs/spec/election-protocol.md`` sections 1 to 3, 7 and 8.  The byte layouts
live in :mod:`zkquorum.wire.election`; this module owns sockets, tasks and timers.

Design (one asyncio task per job, every task owned by the manager):

* **Listeners.**  One per own election address (or one wildcard per distinct port with
  ``quorumListenOnAllIPs``).  Binding is retried ``electionPortBindRetry`` times, 1 s
  apart (0 = forever, negative = 3), re-resolving the host each time (ZOOKEEPER-3320,
  -4728).  When it finally fails, :meth:`ConnectionManager.start` raises
  :class:`BindError`: never a deaf peer (ZOOKEEPER-3084).  Every accepted connection gets
  its own task, so unlike 3.8 a client that never sends its handshake stalls nobody.
* **Handshake.**  The connecting side sends the initial message in one write: V2 with
  all own addresses when multi-address is enabled, V1 otherwise (ZOOKEEPER-3720).  V1,
  V2 and the old bare-sid form are all accepted.  A wildcard is never advertised: an own
  address configured as ``0.0.0.0`` is replaced by the local IP of that very socket
  (ZOOKEEPER-2164).
* **Larger sid keeps the connection.**  An incoming handshake from a smaller sid closes
  that socket, tears down any connection we hold for that sid (3.8 does the same: the
  peer evidently lost it) and connects back.  To reach a larger sid we connect, send the
  handshake, close, and wait (up to ``cnxTimeout``) for its connect-back before dialling
  it again.  An incoming connection from a larger sid replaces any existing one.  So
  whatever the race, each pair converges on one connection, opened by the larger sid.
* **Connects never block sends** (ZOOKEEPER-2930).  :meth:`ConnectionManager.send` only
  fills the peer's slot and, if there is no connection, starts a connect task (at most
  one per peer), which has its own ``cnxTimeout``.  Several addresses are dialled
  staggered (:mod:`zkquorum.runtime.happy_eyeballs`, ZOOKEEPER-3188); an address whose
  connection failed or died goes to the back of that peer's preference order.
* **Send slot** (``SEND_CAPACITY = 1``): the newest notification replaces one not yet
  sent.  The per-connection sender, on start, resends ``lastMessageSent`` when the slot
  is empty (``SendWorker.run``); the slot and ``lastMessageSent`` outlive connections.
* **Receive queue**: every decoded frame, with the sid of the *connection*, goes into one
  queue of ``RECV_CAPACITY = 100`` that drops its oldest entry when full.  Frames whose
  payload 3.8 would skip arrive as :class:`~zkquorum.wire.election.DroppedNotification`
  (the driver still answers non-voters).  ``send`` to our own sid is looped back into
  the queue without a socket, so the own vote takes the same path as everyone else's.
* **Bad input** (:class:`~zkquorum.wire.errors.ElectionProtocolError`: bad handshake,
  frame length <= 0 or > 512 KiB, a handshake not sent within ``socketTimeout``) closes
  that one connection, increments ``bad_connections_refused`` and logs one line with the
  peer's address, sid and the reason (ZOOKEEPER-3769, -2186).  Nothing else is affected.
* **Dead networks** (issue 9): every election socket gets ``TCP_USER_TIMEOUT`` (and TCP
  keepalive) of ``socketTimeout``: a connection whose data stays unacknowledged that long
  (its network silently fails, the peer's host vanishes) ends with "timed out" instead of
  hanging for TCP's ~15 minutes of retransmissions.  The peer is then lost, its address
  demoted, and the next send dials again - over another address when there are several
  (multi-address).  3.8 has no such bound: its election stalls on a dead network.
* **Who may connect**: with ``reconfigEnabled=false`` an initial message claiming a sid
  that is not a member of the configuration (participant or observer) is refused: the
  connection is closed, logged with the peer's address, and counted in
  ``unknown_sids_refused`` (and in ``bad_connections_refused``).  With reconfig enabled
  (``accept_unknown``) it is accepted as 3.8 accepts it: a server about to join by
  reconfig must hear the election's outcome; its votes are answered, never counted.
* **Events** for the driver: an optional ``on_event`` callback receives
  :class:`PeerConnected` (each newly registered connection, also a replacement) and
  :class:`PeerLost` (the sid has no connection any more).  It is called synchronously
  from the manager's tasks: it must not block; what it raises is logged and ignored.
* **Shutdown**: :meth:`ConnectionManager.close` (or leaving ``async with``) closes the
  listeners and every connection and cancels and awaits every task it started.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from zkquorum.config.javatext import is_wildcard_host
from zkquorum.config.model import HostPort
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.runtime.happy_eyeballs import DEFAULT_DELAY, AllAttemptsFailed, happy_eyeballs
from zkquorum.runtime.netfmt import describe_error, format_peer
from zkquorum.runtime.tasks import TaskOwner
from zkquorum.runtime.tls import QuorumTls, Stream, TlsServer, start_server
from zkquorum.wire.election import (
    PROTOCOL_VERSION_V1,
    PROTOCOL_VERSION_V2,
    DroppedNotification,
    ElectionConnectionDecoder,
    InitialMessage,
    Notification,
    decode_notification,
    encode_initial_message,
    encode_notification,
    encode_notification_frame,
)
from zkquorum.wire.errors import ElectionProtocolError
from zkquorum.wire.reader import CLOSED, NEED_DATA

log = logging.getLogger(__name__)

SEND_CAPACITY: Final = 1
"""``QuorumCnxManager.SEND_CAPACITY``: one pending notification per peer (the newest)."""
RECV_CAPACITY: Final = 100
"""``QuorumCnxManager.RECV_CAPACITY``: the shared receive queue drops its oldest entry."""
BIND_RETRY_INTERVAL: Final = 1.0
"""Seconds between two attempts to bind an election address (``Listener.run``)."""
DEFAULT_BIND_RETRY: Final = 3
_READ_SIZE: Final = 65536

Dialer = Callable[[HostPort, float], Awaitable[Stream]]
"""Opens one TCP connection to an address within a timeout (seconds), or raises."""


async def tcp_dial(addr: HostPort, timeout: float) -> Stream:
    """The default :data:`Dialer`: ``asyncio.open_connection`` with its own timeout."""
    async with asyncio.timeout(timeout):
        return await asyncio.open_connection(addr.host, addr.port)


# -- public values ---------------------------------------------------------------------


class BindError(OSError):
    """An election address could not be bound, even after the retries.

    3.8 exits with status 14 (``UNABLE_TO_BIND_QUORUM_PORT``) in this case; the driver
    should do the same rather than run deaf (ZOOKEEPER-3084).
    """

    def __init__(self, address: HostPort, cause: OSError, attempts: int) -> None:
        self.address = address
        self.cause = cause
        self.attempts = attempts
        reason = cause.strerror or str(cause)
        if isinstance(cause, socket.gaierror):
            reason = f"cannot resolve host: {reason}"
        super().__init__(
            cause.errno,
            f"cannot bind election address {address}: {reason} "
            f"({attempts} attempt{'s' if attempts != 1 else ''})",
        )

    def __str__(self) -> str:
        return str(self.strerror)


class ManagerClosed(RuntimeError):
    """:meth:`ConnectionManager.receive` on a closed manager with an empty queue."""


@dataclass(frozen=True, slots=True)
class Received:
    """One decoded frame; ``sid`` is the sid of the connection it came from."""

    sid: int
    message: Notification | DroppedNotification


@dataclass(frozen=True, slots=True)
class PeerConnected:
    """A connection to ``sid`` is registered (``replaced``: it took over an older one).

    ``address`` is the remote ``host:port``; ``outgoing`` says which side opened it.
    """

    sid: int
    address: str
    outgoing: bool
    replaced: bool = False


@dataclass(frozen=True, slots=True)
class PeerLost:
    """There is no connection to ``sid`` any more; ``reason`` says why."""

    sid: int
    reason: str


PeerEvent = PeerConnected | PeerLost


@dataclass(frozen=True, slots=True)
class ConnectionCounters:
    """Totals since the manager was created (for ``mntr``).  Loopback is not counted."""

    notifications_sent: int = 0
    """Frames written to peers (resends of ``lastMessageSent`` included)."""
    notifications_received: int = 0
    """Notifications decoded from peers."""
    notifications_dropped: int = 0
    """Frames whose payload 3.8 would skip (short, partial, unknown state)."""
    recv_queue_overflows: int = 0
    """Received entries dropped because the queue held ``RECV_CAPACITY`` already."""
    bad_connections_refused: int = 0
    """Connections closed for bad input: handshake, frame length, handshake timeout,
    a sid not in the configuration."""
    unknown_sids_refused: int = 0
    """Connections whose initial message claimed a sid not in the configuration."""
    connections_made: int = 0
    """Connections registered (either direction)."""
    connections_dropped: int = 0
    """Registered connections that ended (closed, failed or replaced)."""
    connect_failures: int = 0
    """Outgoing connects where every address failed or timed out."""


# -- helpers ---------------------------------------------------------------------------


def listen_addresses(own: Sequence[HostPort], listen_on_all_ips: bool) -> tuple[HostPort, ...]:
    """What to bind: the own addresses, or a wildcard per distinct port.

    ``MultipleAddresses#getWildcardAddresses`` with ``quorumListenOnAllIPs``.
    """
    if not listen_on_all_ips:
        return tuple(own)
    ports: dict[int, bool] = {}
    for a in own:
        ports[a.port] = ports.get(a.port, False) or a.is_ipv6
    return tuple(HostPort("::" if v6 else "0.0.0.0", port) for port, v6 in ports.items())


def advertised_addresses(own: Sequence[HostPort], local_host: str | None) -> tuple[HostPort, ...]:
    """The own addresses to put in a handshake; a wildcard becomes ``local_host``.

    ``local_host`` is the local IP of the connection the handshake goes over: we listen
    on it (a wildcard address binds every interface), and the peer could reach it.
    Without it, a wildcard is left out, and if nothing is left the wildcard stays (the
    receiver then connects back to its configured address for us, as 3.8 does).
    """
    out = []
    for a in own:
        if is_wildcard_host(a.host):
            if local_host is None:
                continue
            out.append(HostPort(local_host, a.port))
        else:
            out.append(a)
    return tuple(dict.fromkeys(out)) or tuple(own)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ElectionProtocolError):
        return exc.reason
    return describe_error(exc)


class _Conn:
    """One registered (or being registered) connection."""

    __slots__ = (
        "closed",
        "decoder",
        "outgoing",
        "reader",
        "remote",
        "sid",
        "tasks",
        "via",
        "writer",
    )

    def __init__(
        self,
        sid: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        decoder: ElectionConnectionDecoder,
        *,
        outgoing: bool,
        via: HostPort | None,
    ) -> None:
        self.sid = sid
        self.reader = reader
        self.writer = writer
        self.decoder = decoder
        self.outgoing = outgoing
        self.via = via
        self.remote = (
            str(via) if via is not None else format_peer(writer.get_extra_info("peername"))
        )
        self.tasks: list[asyncio.Task[None]] = []
        self.closed = False


class _Peer:
    """Everything kept per sid; outlives connections (3.8 never removes a send queue)."""

    __slots__ = (
        "addrs",
        "conn",
        "connected",
        "demoted",
        "dialing",
        "last_sent",
        "learned",
        "sid",
        "slot",
        "wake",
    )

    def __init__(self, sid: int, addrs: tuple[HostPort, ...]) -> None:
        self.sid = sid
        self.addrs = addrs
        self.learned: tuple[HostPort, ...] = ()
        self.demoted: list[HostPort] = []
        self.slot: bytes | None = None
        self.last_sent: bytes | None = None
        self.conn: _Conn | None = None
        self.dialing: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()
        self.connected = asyncio.Event()

    def targets(self, connect_back: bool) -> tuple[HostPort, ...]:
        first, second = (self.learned, self.addrs) if connect_back else (self.addrs, self.learned)
        chosen = first or second
        rank = {a: i for i, a in enumerate(self.demoted)}
        return tuple(sorted(chosen, key=lambda a: rank.get(a, -1)))

    def demote(self, addr: HostPort) -> None:
        with contextlib.suppress(ValueError):
            self.demoted.remove(addr)
        self.demoted.append(addr)


# -- the manager -----------------------------------------------------------------------


class ConnectionManager:
    """All election connections of one peer (``QuorumCnxManager``).

    Args:
        my_sid: our ``myid``.
        my_addrs: our own election addresses (bound, and advertised in handshakes).
            Port 0 binds a free port; the bound port is then advertised.
        members: sid -> election addresses of every known member (ours may be included).
        cnx_timeout: seconds for one TCP connect (``cnxTimeout``, 3.8: 5 s).
        handshake_timeout: seconds an accepted connection has to send its initial
            message (``socketTimeout``: ``quorumCnxnTimeoutMs`` or ``tickTime*syncLimit``).
        bind_retry: ``electionPortBindRetry`` (0 = forever, negative = 3).
        bind_retry_interval: seconds between bind attempts (3.8: 1 s).
        listen_on_all_ips: ``quorumListenOnAllIPs``.
        multi_address: ``multiAddress.enabled``: send V2 handshakes.
        happy_eyeballs_delay: seconds before the next address of a peer is also tried.
        recv_capacity: bound of the receive queue.
        dial: opens a TCP connection (injectable for tests).
        on_event: receives :data:`PeerEvent` values (see the module docstring).
        tls: quorum TLS (:mod:`zkquorum.runtime.tls`): listeners, dialling, identity.
        user_timeout: seconds unacknowledged data may stay in flight before TCP gives up
            on a connection (``TCP_USER_TIMEOUT``); default ``handshake_timeout``; 0: off.
    """

    def __init__(
        self,
        my_sid: int,
        my_addrs: Sequence[HostPort],
        members: Mapping[int, Sequence[HostPort]],
        *,
        cnx_timeout: float = 5.0,
        handshake_timeout: float = 10.0,
        bind_retry: int = DEFAULT_BIND_RETRY,
        bind_retry_interval: float = BIND_RETRY_INTERVAL,
        listen_on_all_ips: bool = False,
        multi_address: bool = False,
        happy_eyeballs_delay: float = DEFAULT_DELAY,
        recv_capacity: int = RECV_CAPACITY,
        dial: Dialer = tcp_dial,
        on_event: Callable[[PeerEvent], None] | None = None,
        tls: QuorumTls | None = None,
        user_timeout: float | None = None,
        accept_unknown: bool = False,
    ) -> None:
        if not my_addrs:
            raise ValueError("no own election address")
        self.my_sid = my_sid
        self._my_addrs = tuple(my_addrs)
        self._advertise = self._my_addrs
        self._cnx_timeout = cnx_timeout
        self._handshake_timeout = handshake_timeout
        self._bind_retry = bind_retry if bind_retry >= 0 else DEFAULT_BIND_RETRY
        self._bind_retry_interval = bind_retry_interval
        self._listen_on_all_ips = listen_on_all_ips
        self._multi_address = multi_address
        self._he_delay = happy_eyeballs_delay
        self._tls = tls  # quorum TLS: see zkquorum.runtime.tls
        self._dial = tls.wrap_dialer(dial, direct=dial is tcp_dial) if tls else dial
        self._on_event = on_event
        self._accept_unknown = accept_unknown
        self._user_timeout = handshake_timeout if user_timeout is None else user_timeout
        self._peers: dict[int, _Peer] = {}
        self._members: frozenset[int] = frozenset()
        self.set_members(members)
        self._recv: collections.deque[Received] = collections.deque()
        self._recv_capacity = recv_capacity
        self._recv_ready = asyncio.Event()
        self._counts: dict[str, int] = {f.name: 0 for f in dataclasses.fields(ConnectionCounters)}
        self._servers: list[asyncio.Server | TlsServer] = []
        self._bound: list[HostPort] = []
        self._tasks = TaskOwner("election-port")
        self._writers: set[asyncio.StreamWriter] = set()
        self._started = False
        self._closed = False

    @classmethod
    def from_config(
        cls,
        config: QuorumConfig,
        *,
        on_event: Callable[[PeerEvent], None] | None = None,
        dial: Dialer = tcp_dial,
        happy_eyeballs_delay: float = DEFAULT_DELAY,
        tls: QuorumTls | Literal["from config"] | None = "from config",
    ) -> ConnectionManager:
        """A manager for ``config``'s own server (``my_id`` and its server line).  ``tls``:
        the peer's own, to share it with the quorum port; by default a new one from
        ``config`` (``None`` without ``sslQuorum``)."""
        if tls == "from config":
            tls = QuorumTls.for_config(config)
        me = config.me
        if me is None or config.verifier is None or config.my_id is None:
            raise ValueError("the config has no server line for this server's myid")
        if config.quorum_cnxn_timeout_ms > 0:
            handshake_ms = config.quorum_cnxn_timeout_ms
        else:
            handshake_ms = config.tick_time * config.sync_limit
        return cls(
            config.my_id,
            me.election_addrs,
            {sid: s.election_addrs for sid, s in config.verifier.all_members.items()},
            cnx_timeout=config.cnx_timeout_ms / 1000,
            handshake_timeout=(handshake_ms or 10000) / 1000,
            bind_retry=config.election_port_bind_retry,
            listen_on_all_ips=config.quorum_listen_on_all_ips,
            multi_address=config.multi_address_enabled,
            happy_eyeballs_delay=happy_eyeballs_delay,
            dial=dial,
            on_event=on_event,
            tls=tls,
            accept_unknown=config.reconfig_enabled,
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> ConnectionManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Bind every listener (with retries); raise :class:`BindError` when one fails."""
        if self._started:
            raise RuntimeError("already started")
        self._started = True
        try:
            for addr in listen_addresses(self._my_addrs, self._listen_on_all_ips):
                sock = await self._bind(addr)
                server = await start_server(self._tls, self._on_accept, sock=sock)
                self._servers.append(server)
                host, port = sock.getsockname()[:2]
                self._bound.append(HostPort(str(host), int(port)))
                log.info("Election listener on %s", self._bound[-1])
        except BaseException:
            await self.close()
            raise
        bound_port = {
            a.port: b.port
            for a, b in zip(
                listen_addresses(self._my_addrs, self._listen_on_all_ips), self._bound, strict=False
            )
        }
        if self._listen_on_all_ips:
            self._advertise = tuple(
                HostPort(a.host, bound_port.get(a.port, a.port)) for a in self._my_addrs
            )
        else:
            self._advertise = tuple(
                HostPort(a.host, b.port) for a, b in zip(self._my_addrs, self._bound, strict=True)
            )

    async def _bind(self, addr: HostPort) -> socket.socket:
        attempts = 0
        loop = asyncio.get_running_loop()
        while True:
            attempts += 1
            sock: socket.socket | None = None
            try:
                infos = await loop.getaddrinfo(
                    addr.host, addr.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
                )
                family, type_, proto, _, sockaddr = infos[0]
                sock = socket.socket(family, type_, proto)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind(sockaddr)
                sock.listen(socket.SOMAXCONN)
                sock.setblocking(False)
                return sock
            except OSError as exc:
                if sock is not None:
                    sock.close()
                if self._bind_retry and attempts >= self._bind_retry:
                    raise BindError(addr, exc, attempts) from exc
                log.warning(
                    "Cannot bind election address %s (attempt %d): %s; retrying in %.0f ms",
                    addr,
                    attempts,
                    _describe(exc),
                    self._bind_retry_interval * 1000,
                )
                await asyncio.sleep(self._bind_retry_interval)

    async def close(self) -> None:
        """Close listeners and connections; cancel and await every task (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._recv_ready.set()
        for server in self._servers:
            server.close()
        await self._tasks.close()
        for peer in list(self._peers.values()):
            if peer.conn is not None:
                self._drop(peer.conn, "shutting down")
        writers = list(self._writers)
        self._writers.clear()
        for w in writers:
            w.close()
        for w in writers:
            await _wait_closed(w)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        # Tasks spawned while dropping connections above (reapers) were cancelled with
        # the rest or never started: _spawn refuses once closed.

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def listen_addresses(self) -> tuple[HostPort, ...]:
        """The addresses actually bound (after :meth:`start`)."""
        return tuple(self._bound)

    @property
    def advertised_addresses(self) -> tuple[HostPort, ...]:
        """The own addresses sent in handshakes (wildcards still to be substituted)."""
        return self._advertise

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None] | None:
        if self._closed:
            coro.close()
            return None
        return self._tasks.spawn(coro, name)

    # -- membership --------------------------------------------------------------------

    def set_members(self, members: Mapping[int, Sequence[HostPort]]) -> None:
        """Replace the known members' election addresses (e.g. after a reconfig).

        Existing connections and pending messages are kept; new connects use the new
        addresses.  Sids not listed keep what their handshakes advertised.
        """
        self._members = frozenset(members)
        for sid, addrs in members.items():
            peer = self._peers.get(sid)
            if peer is None:
                self._peers[sid] = _Peer(sid, tuple(addrs))
            elif peer.addrs != tuple(addrs):
                peer.addrs = tuple(addrs)
                peer.demoted.clear()

    def _peer(self, sid: int) -> _Peer:
        peer = self._peers.get(sid)
        if peer is None:
            peer = self._peers[sid] = _Peer(sid, ())
        return peer

    # -- sending -----------------------------------------------------------------------

    def send(self, sid: int, notification: Notification) -> None:
        """Queue ``notification`` for ``sid`` (``toSend``); never blocks, never raises on I/O.

        To our own sid it goes straight into the receive queue.  Otherwise it replaces
        whatever was still unsent for that sid, and a connect starts if needed.
        """
        if self._closed:
            return
        if sid == self.my_sid:
            self._deliver(sid, decode_notification(encode_notification(notification)))
            return
        peer = self._peer(sid)
        peer.slot = encode_notification_frame(notification)
        peer.wake.set()
        self.connect_one(sid)

    def connect_one(self, sid: int) -> None:
        """Start a connect to ``sid`` unless connected or already connecting."""
        self._connect(self._peer(sid), connect_back=False)

    def connect_all(self) -> None:
        """``connectAll``: :meth:`connect_one` for every member but us."""
        for sid in sorted(self._members):
            if sid != self.my_sid:
                self.connect_one(sid)

    def have_delivered(self) -> bool:
        """``haveDelivered``: some peer's send slot is empty (false if there are none)."""
        return any(p.slot is None for s, p in self._peers.items() if s != self.my_sid)

    def drop(self, sid: int, reason: str = "dropped by the peer driver") -> bool:
        """Close the connection to ``sid``, if there is one; return whether there was."""
        peer = self._peers.get(sid)
        if peer is None or peer.conn is None:
            return False
        self._drop(peer.conn, reason)
        return True

    def _connect(self, peer: _Peer, *, connect_back: bool) -> None:
        if self._closed or peer.sid == self.my_sid:
            return
        if peer.conn is not None or peer.dialing is not None:
            return
        targets = peer.targets(connect_back)
        if not targets:
            log.warning("Invalid server id %d: no election address known", peer.sid)
            return
        peer.dialing = self._spawn(self._dial_peer(peer, targets), f"zkquorum-connect-{peer.sid}")

    async def _dial_peer(self, peer: _Peer, targets: tuple[HostPort, ...]) -> None:
        try:
            try:
                addr, (reader, writer) = await happy_eyeballs(
                    targets,
                    lambda a: self._dial(a, self._cnx_timeout),
                    delay=self._he_delay,
                    close=lambda rw: rw[1].close(),
                    on_error=lambda a, _exc: peer.demote(a),
                )
            except AllAttemptsFailed as exc:
                self._count("connect_failures")
                log.warning(
                    "Cannot open channel to %d at election address %s: %s",
                    peer.sid,
                    "|".join(map(str, targets)),
                    exc,
                )
                return
            self._writers.add(writer)
            self._tune(writer)
            try:
                local = writer.get_extra_info("sockname")
                local_host = str(local[0]) if isinstance(local, tuple) else None
                addrs = advertised_addresses(self._advertise, local_host)
                if self._multi_address:
                    msg = InitialMessage(PROTOCOL_VERSION_V2, self.my_sid, tuple(map(str, addrs)))
                else:
                    msg = InitialMessage(PROTOCOL_VERSION_V1, self.my_sid, (str(addrs[0]),))
                writer.write(encode_initial_message(msg))  # one write (spec 1.4, step 3)
                async with asyncio.timeout(self._cnx_timeout):
                    await writer.drain()
            except (OSError, TimeoutError) as exc:
                log.warning("Handshake to %d at %s failed: %s", peer.sid, addr, _describe(exc))
                peer.demote(addr)
                self._close_writer(writer)
                return
            if peer.sid > self.my_sid:
                # "Have smaller server identifier, so dropping the connection": the
                # larger sid connects back.  Wait for that before dialling it again.
                log.debug(
                    "Connected to larger sid %d at %s to make it connect back", peer.sid, addr
                )
                self._close_writer(writer)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._cnx_timeout):
                        await peer.connected.wait()
                return
            conn = _Conn(
                peer.sid,
                reader,
                writer,
                ElectionConnectionDecoder(initial=False),
                outgoing=True,
                via=addr,
            )
            self._register(conn)
        finally:
            if peer.dialing is asyncio.current_task():
                peer.dialing = None

    # -- accepting ---------------------------------------------------------------------

    def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain callback, so that the handshake runs in a task we own (asyncio would
        # otherwise wrap a coroutine callback in a task of its own).
        self._writers.add(writer)
        self._tune(writer)
        if self._spawn(self._handle_accept(reader, writer), "zkquorum-accept") is None:
            writer.close()

    async def _handle_accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        remote = format_peer(writer.get_extra_info("peername"))
        decoder = ElectionConnectionDecoder(initial=True)
        msg: InitialMessage | None = None
        try:
            async with asyncio.timeout(self._handshake_timeout):
                while msg is None:
                    got = decoder.next_message()
                    if isinstance(got, InitialMessage):
                        msg = got
                    elif got is CLOSED:
                        break
                    else:
                        decoder.receive_data(await reader.read(_READ_SIZE))
        except ElectionProtocolError as exc:
            self._bad(remote, None, exc.reason)
            self._close_writer(writer)
            return
        except TimeoutError:
            self._bad(
                remote, None, f"no initial message within {self._handshake_timeout * 1000:.0f} ms"
            )
            self._close_writer(writer)
            return
        except OSError as exc:
            log.info(
                "Election connection from %s failed before its handshake: %s",
                remote,
                _describe(exc),
            )
            self._close_writer(writer)
            return
        if msg is None:
            self._close_writer(writer)
            return
        sid = msg.sid
        if sid == self.my_sid:
            # ZOOKEEPER-2164: someone uses our sid (or a wildcard made us dial ourselves).
            log.warning("Connection request from %s with our own id %d: closing", remote, sid)
            self._close_writer(writer)
            return
        if sid not in self._members and self._accept_unknown:
            log.info(
                "Election connection from sid %d at %s, not in the configuration: "
                "accepted (reconfigEnabled)",
                sid,
                remote,
            )
        elif sid not in self._members:
            # Who may vote: 3.8 accepts any sid; with reconfig disabled we refuse a stranger
            # outright, before it can make us connect back anywhere or answer its votes.
            self._count("unknown_sids_refused")
            self._bad(remote, sid, f"sid {sid} is not in the configuration")
            self._close_writer(writer)
            return
        if self._tls is not None:
            hosts = [a.host for a in self._peer(sid).addrs]
            refusal = self._tls.peer_refusal(writer, sid, hosts, "election")
            if refusal is not None:  # the certificate is not that sid's (see runtime/tls.py)
                self._bad(remote, sid, refusal)
                self._close_writer(writer)
                return
        peer = self._peer(sid)
        learned = tuple(HostPort(e.host, e.port) for e in msg.connect_back())
        if learned:
            peer.learned = learned
        if sid < self.my_sid:
            self._close_writer(writer)
            if peer.conn is not None:
                # 3.8 finishes the SendWorker too: the smaller sid evidently lost it.
                self._drop(peer.conn, f"sid {sid} connected again")
            log.debug("Connection from smaller sid %d at %s: connecting back", sid, remote)
            self._connect(peer, connect_back=True)
            return
        self._register(_Conn(sid, reader, writer, decoder, outgoing=False, via=None))

    # -- registered connections ----------------------------------------------------------

    def _register(self, conn: _Conn) -> None:
        if self._closed:
            self._close_writer(conn.writer)
            return
        peer = self._peer(conn.sid)
        old = peer.conn
        peer.conn = conn
        if old is not None:
            self._drop(old, "replaced by a new connection")
        self._count("connections_made")
        peer.connected.set()
        for coro, kind in ((self._send_loop(conn, peer), "send"), (self._recv_loop(conn), "recv")):
            task = self._spawn(coro, f"zkquorum-{kind}-{conn.sid}")
            if task is not None:
                conn.tasks.append(task)
        log.info(
            "Election connection to %d (%s, %s) up",
            conn.sid,
            conn.remote,
            "outgoing" if conn.outgoing else "incoming",
        )
        self._emit(PeerConnected(conn.sid, conn.remote, conn.outgoing, old is not None))

    def _drop(self, conn: _Conn, reason: str) -> None:
        if conn.closed:
            return
        conn.closed = True
        me = asyncio.current_task()
        for task in conn.tasks:
            if task is not me:
                task.cancel()
        self._close_writer(conn.writer)
        self._count("connections_dropped")
        peer = self._peers.get(conn.sid)
        if conn.via is not None and peer is not None and reason != "shutting down":
            peer.demote(conn.via)
        if peer is not None and peer.conn is conn:
            peer.conn = None
            peer.connected.clear()
            log.info("Election connection to %d (%s) lost: %s", conn.sid, conn.remote, reason)
            self._emit(PeerLost(conn.sid, reason))
            if (
                conn.sid not in self._members
                and peer.slot is None
                and peer.last_sent is None
                and peer.dialing is None
            ):
                # an unknown sid we never wrote to (garbage, a port scan): forget it, so
                # that made-up sids cannot grow the table
                del self._peers[conn.sid]

    def _tune(self, writer: asyncio.StreamWriter) -> None:
        """Bound how long a dead network can hold this connection (see the docstring)."""
        sock = writer.get_extra_info("socket")
        if sock is None or self._user_timeout <= 0 or sock.family == socket.AF_UNIX:
            return
        secs = max(1, int(self._user_timeout))
        with contextlib.suppress(OSError, AttributeError):  # AttributeError: not Linux
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, secs)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, secs // 3))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
            sock.setsockopt(
                socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, max(1, int(self._user_timeout * 1000))
            )

    def _close_writer(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        self._spawn(self._reap(writer), "zkquorum-reap")  # once closed, close() awaits it

    async def _reap(self, writer: asyncio.StreamWriter) -> None:
        await _wait_closed(writer)
        self._writers.discard(writer)

    async def _send_loop(self, conn: _Conn, peer: _Peer) -> None:
        try:
            if peer.slot is None and peer.last_sent is not None:
                await self._write(conn, peer.last_sent)  # SendWorker.run: resend on start
            while True:
                while peer.slot is None:
                    peer.wake.clear()
                    await peer.wake.wait()
                frame, peer.slot = peer.slot, None
                peer.last_sent = frame
                await self._write(conn, frame)
        except OSError as exc:
            self._drop(conn, f"send failed: {_describe(exc)}")

    async def _write(self, conn: _Conn, frame: bytes) -> None:
        conn.writer.write(frame)
        await conn.writer.drain()
        self._count("notifications_sent")

    async def _recv_loop(self, conn: _Conn) -> None:
        reason = "closed by the peer"
        try:
            while True:
                msg = conn.decoder.next_message()
                if msg is NEED_DATA:
                    conn.decoder.receive_data(await conn.reader.read(_READ_SIZE))
                elif msg is CLOSED:
                    break
                elif isinstance(msg, Notification | DroppedNotification):
                    self._count(
                        "notifications_received"
                        if isinstance(msg, Notification)
                        else "notifications_dropped"
                    )
                    self._deliver(conn.sid, msg)
        except ElectionProtocolError as exc:
            reason = f"bad input: {exc.reason}"
            self._bad(conn.remote, conn.sid, exc.reason)
        except OSError as exc:
            reason = _describe(exc)
        except Exception as exc:  # a bug must cost one connection, never a zombie one
            log.exception("election connection to %s failed", conn.sid)
            reason = f"internal error: {exc!r}"
        self._drop(conn, reason)

    # -- receiving ---------------------------------------------------------------------

    def _deliver(self, sid: int, message: Notification | DroppedNotification) -> None:
        if len(self._recv) >= self._recv_capacity:
            self._recv.popleft()
            self._count("recv_queue_overflows")
        self._recv.append(Received(sid, message))
        self._recv_ready.set()

    async def receive(self) -> Received:
        """The oldest received entry; waits for one.  Raises :class:`ManagerClosed`."""
        while not self._recv:
            if self._closed:
                raise ManagerClosed("the connection manager is closed")
            self._recv_ready.clear()
            await self._recv_ready.wait()
        return self._recv.popleft()

    def receive_nowait(self) -> Received | None:
        """The oldest received entry, or ``None``."""
        return self._recv.popleft() if self._recv else None

    # -- observation -------------------------------------------------------------------

    @property
    def counters(self) -> ConnectionCounters:
        return ConnectionCounters(**self._counts)

    def connected_peers(self) -> frozenset[int]:
        return frozenset(sid for sid, p in self._peers.items() if p.conn is not None)

    def connection_info(self, sid: int) -> PeerConnected | None:
        """The live connection to ``sid`` as a :class:`PeerConnected`, or ``None``."""
        peer = self._peers.get(sid)
        if peer is None or peer.conn is None:
            return None
        c = peer.conn
        return PeerConnected(c.sid, c.remote, c.outgoing)

    def connection_sockets(self, sid: int) -> tuple[str, str] | None:
        """(local, remote) ``host:port`` of the live connection to ``sid`` (for tests/logs)."""
        peer = self._peers.get(sid)
        if peer is None or peer.conn is None:
            return None
        w = peer.conn.writer
        return (
            format_peer(w.get_extra_info("sockname")),
            format_peer(w.get_extra_info("peername")),
        )

    def _count(self, name: str, n: int = 1) -> None:
        self._counts[name] += n

    def _bad(self, remote: str, sid: int | None, reason: str) -> None:
        self._count("bad_connections_refused")
        who = f"sid {sid}" if sid is not None else "sid unknown"
        log.warning("Closing election connection from %s (%s): %s", remote, who, reason)

    def _emit(self, event: PeerEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("on_event callback failed for %s", event)


__all__ = [
    "BIND_RETRY_INTERVAL",
    "RECV_CAPACITY",
    "SEND_CAPACITY",
    "BindError",
    "ConnectionCounters",
    "ConnectionManager",
    "Dialer",
    "ManagerClosed",
    "PeerConnected",
    "PeerEvent",
    "PeerLost",
    "Received",
    "advertised_addresses",
    "listen_addresses",
    "tcp_dial",
]


async def _wait_closed(writer: asyncio.StreamWriter) -> None:
    """``writer.wait_closed()``, whatever the connection's end was.  An aborted TLS
    connection's close waiter can come back cancelled (Python 3.11's sslproto) though
    nobody cancelled us: only a cancellation of our own task is passed on."""
    try:
        await writer.wait_closed()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
    except Exception:
        pass
