"""What the operations endpoints see of a server: one snapshot per request.

The AdminServer commands (:mod:`zkquorum.runtime.commands`), the four-letter words
(:mod:`zkquorum.runtime.fourletter`), the health probes and the metric gauges
(:mod:`zkquorum.runtime.metrics`) all read an :class:`OpsSnapshot`: a :class:`ServerView`
(role, zxid, quorum figures) and a :class:`ClientStats` (connections, sessions, watches,
request latencies).  An :class:`OpsSource` makes one; :class:`PeerOpsSource` adapts
today's :class:`~zkquorum.runtime.peer.PeerRuntime`.  Until the client port exists
:class:`ClientStats` is empty (``NO_CLIENTS``): the commands that list connections,
sessions and watches answer empty lists and maps with 3.8's keys.

Gauges follow 3.8's registration: every server registers ``ZooKeeperServer``'s gauges, a
quorum server adds ``quorum_size``, a leader ``learners``, ``synced_followers``...
(``LeaderZooKeeperServer#registerMetrics``), and a role's gauges leave with the role
(:func:`bind_gauges`).
"""

from __future__ import annotations

import enum
import os
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.runtime.metrics import Kind, MetricsRegistry, Number

if TYPE_CHECKING:
    from zkquorum.core.server import ServerCore
    from zkquorum.core.sessions import SessionTracker
    from zkquorum.runtime.peer import PeerRuntime
    from zkquorum.runtime.standalone import StandaloneServer


class Seat(enum.Enum):
    """What ``srvr`` prints after ``Mode:`` (``ZooKeeperServer#getState`` of each class)."""

    STANDALONE = "standalone"
    LEADER = "leader"
    FOLLOWER = "follower"
    OBSERVER = "observer"
    READ_ONLY = "read-only"


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One client connection (``ServerCnxn#getConnectionInfo``)."""

    remote_address: str
    """``host:port`` (3.8 prints it without the leading slash in JSON)."""
    interest_ops: int = 1
    outstanding_requests: int = 0
    packets_received: int = 0
    packets_sent: int = 0
    session_id: int | None = None
    """``None`` before the session is established (then the brief form only)."""
    last_operation: str = "NA"
    established_ms: int = 0
    session_timeout: int = 0
    last_cxid: int = -1
    last_zxid: int = -1
    last_response_time: int = 0
    last_latency: int = 0
    min_latency: int = 0
    avg_latency: int = 0
    max_latency: int = 0


@dataclass(frozen=True, slots=True)
class ClientStats:
    """The client side of the server (``ServerStats``, the session tracker, the watch
    manager): all zero and empty until the client port lands."""

    packets_received: int = 0
    packets_sent: int = 0
    outstanding_requests: int = 0
    min_latency: int = 0
    avg_latency: float = 0.0
    max_latency: int = 0
    connections: tuple[ConnectionInfo, ...] = ()
    secure_connections: tuple[ConnectionInfo, ...] = ()
    session_expiry: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    """Expiry time bucket (ms) -> session ids (``dump``)."""
    session_timeouts: Mapping[int, int] = field(default_factory=dict)
    """Session id -> timeout (ms), as a learner knows its global sessions (``dump``)."""
    ephemerals: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    """Session id -> its ephemeral paths."""
    watches: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    """Session id -> watched paths (``wchc``)."""
    watch_count: int = 0
    ephemerals_count: int = 0
    approximate_data_size: int = 0
    global_sessions: int = 0
    local_sessions: int = 0
    last_client_response_size: int = -1
    min_client_response_size: int = -1
    max_client_response_size: int = -1
    auth_failed_count: int = 0
    non_mtls_remote_conn_count: int = 0
    non_mtls_local_conn_count: int = 0
    outstanding_tls_handshake: int = 0
    connection_drop_probability: float = 0.0

    def watches_by_path(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for session, paths in self.watches.items():
            for path in paths:
                out.setdefault(path, []).append(session)
        return out


NO_CLIENTS: Final = ClientStats()


@dataclass(frozen=True, slots=True)
class LearnerInfo:
    """One learner connected to this leader (``LearnerHandler``)."""

    sid: int
    remote_address: str
    observer: bool
    synced: bool
    established_ms: int = 0


@dataclass(frozen=True, slots=True)
class ServerView:
    """The server's side at one moment.

    ``serving`` is 3.8's ``zkServer.isRunning()``: true once the role's ZooKeeperServer
    runs (for a quorum peer, after the leader/learner handshake); ``reason`` says why not.
    """

    my_id: int
    serving: bool
    seat: Seat | None
    reason: str = ""
    peer_state: str = "looking - election"
    """``QuorumPeer#getDetailedPeerState``: ``<state> - <zab state>``."""
    leader_id: int | None = None
    leader_host: str | None = None
    last_zxid: int = 0
    """Last processed zxid (``srvr``'s Zxid, ``zabstate``'s last_zxid)."""
    node_count: int = 0
    uptime_ms: int = 0
    leader_uptime_ms: int = 0
    config: QuorumConfig | None = None
    config_text: str | None = None
    """The zoo.cfg text as read (``initial_configuration``)."""
    learners: tuple[LearnerInfo, ...] = ()
    pending_syncs: int = 0
    last_snapshot: tuple[int, int] | None = None
    """(zxid, timestamp in s) of the newest snapshot, or ``None``."""
    proposal_sizes: tuple[int, int, int] = (-1, -1, -1)
    observer_master_id: int | None = None
    extra: tuple[tuple[str, Number, Kind], ...] = ()
    """zkquorum's own figures (``zkquorum_`` names): value and counter/gauge."""


@dataclass(frozen=True, slots=True)
class OpsSnapshot:
    server: ServerView
    clients: ClientStats = NO_CLIENTS


class OpsSource(Protocol):
    """Where the endpoints get their snapshots (and the two resets 3.8 has)."""

    def snapshot(self) -> OpsSnapshot: ...

    def reset_server_stats(self) -> None:
        """``srst``: latency and packet counts."""

    def reset_connection_stats(self) -> None:
        """``crst``: every connection's statistics."""


# -- files and the process ----------------------------------------------------------------


def dir_size(path: str | os.PathLike[str]) -> int:
    """Bytes of the regular files directly in ``path`` (``ZooKeeperServer#getDirSize``)."""
    total = 0
    try:
        entries = list(os.scandir(path))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            continue
    return total


def fd_counts() -> tuple[int, int]:
    """(open, max) file descriptors of this process (``UnixOperatingSystemMXBean``)."""
    try:
        open_fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_fds = -1
    return open_fds, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def version_dir(base: str) -> str:
    return os.path.join(base, "version-2")


# -- gauges ------------------------------------------------------------------------------

_SERVER_GAUGES: Final[tuple[tuple[str, Callable[[OpsSnapshot], Number]], ...]] = (
    ("avg_latency", lambda s: s.clients.avg_latency),
    ("max_latency", lambda s: s.clients.max_latency),
    ("min_latency", lambda s: s.clients.min_latency),
    ("packets_received", lambda s: s.clients.packets_received),
    ("packets_sent", lambda s: s.clients.packets_sent),
    (
        "num_alive_connections",
        lambda s: len(s.clients.connections) + len(s.clients.secure_connections),
    ),
    ("outstanding_requests", lambda s: s.clients.outstanding_requests),
    ("uptime", lambda s: s.server.uptime_ms),
    ("znode_count", lambda s: s.server.node_count),
    ("watch_count", lambda s: s.clients.watch_count),
    ("ephemerals_count", lambda s: s.clients.ephemerals_count),
    ("approximate_data_size", lambda s: s.clients.approximate_data_size),
    ("global_sessions", lambda s: s.clients.global_sessions),
    ("local_sessions", lambda s: s.clients.local_sessions),
    ("connection_drop_probability", lambda s: s.clients.connection_drop_probability),
    ("last_client_response_size", lambda s: s.clients.last_client_response_size),
    ("max_client_response_size", lambda s: s.clients.max_client_response_size),
    ("min_client_response_size", lambda s: s.clients.min_client_response_size),
    ("outstanding_tls_handshake", lambda s: s.clients.outstanding_tls_handshake),
    ("auth_failed_count", lambda s: s.clients.auth_failed_count),
    ("non_mtls_remote_conn_count", lambda s: s.clients.non_mtls_remote_conn_count),
    ("non_mtls_local_conn_count", lambda s: s.clients.non_mtls_local_conn_count),
)
"""``ZooKeeperServer#registerMetrics`` (the file descriptor gauges are read apart)."""


def _voters(s: OpsSnapshot) -> int:
    cfg = s.server.config
    return len(cfg.voting_members) if cfg is not None else 0


_LEADER_GAUGES: Final[tuple[tuple[str, Callable[[OpsSnapshot], Number]], ...]] = (
    ("learners", lambda s: len(s.server.learners)),
    (
        "synced_followers",
        lambda s: sum(1 for x in s.server.learners if x.synced and not x.observer),
    ),
    ("synced_non_voting_followers", lambda s: 0),
    ("synced_observers", lambda s: sum(1 for x in s.server.learners if x.synced and x.observer)),
    ("pending_syncs", lambda s: s.server.pending_syncs),
    ("leader_uptime", lambda s: s.server.leader_uptime_ms),
    ("last_proposal_size", lambda s: s.server.proposal_sizes[0]),
    ("min_proposal_size", lambda s: s.server.proposal_sizes[1]),
    ("max_proposal_size", lambda s: s.server.proposal_sizes[2]),
)
"""``LeaderZooKeeperServer#registerMetrics``."""


def gauge_names(seat: Seat | None) -> frozenset[str]:
    """The ZooKeeper gauges a server registers in ``seat`` (``None``: not serving)."""
    if seat is None:
        return frozenset()
    names = {n for n, _ in _SERVER_GAUGES} | {
        "open_file_descriptor_count",
        "max_file_descriptor_count",
    }
    if seat is not Seat.STANDALONE:
        names.add("quorum_size")
    if seat is Seat.LEADER:
        names |= {n for n, _ in _LEADER_GAUGES}
    return frozenset(names)


class _Gauges:
    """The gauges of one registry, fed from one snapshot per scrape."""

    def __init__(self, registry: MetricsRegistry, source: OpsSource) -> None:
        self.registry = registry
        self.source = source
        self.current: OpsSnapshot | None = None
        self._fds: tuple[int, int] = (0, 0)
        self._seat: Seat | None = None
        self._registered: set[str] = set()
        self._extra: set[str] = set()

    def refresh(self) -> None:
        snap = self.source.snapshot()
        self.current = snap
        self._fds = fd_counts()
        seat = snap.server.seat if snap.server.serving else None
        if seat != self._seat:
            self._register(seat)
        names = {name for name, _, _ in snap.server.extra}
        for name, _, kind in snap.server.extra:
            if name not in self._extra:
                self.registry.register_gauge(name, self._reader_extra(name), kind=kind)
        for name in self._extra - names:
            self.registry.unregister_gauge(name)
        self._extra = names

    def _register(self, seat: Seat | None) -> None:
        want = gauge_names(seat)
        for name in self._registered - want:
            self.registry.unregister_gauge(name)
        readers: dict[str, Callable[[OpsSnapshot], Number]] = dict(_SERVER_GAUGES)
        readers.update(_LEADER_GAUGES)
        readers["quorum_size"] = _voters
        readers["open_file_descriptor_count"] = lambda _s: self._fds[0]
        readers["max_file_descriptor_count"] = lambda _s: self._fds[1]
        for name in want - self._registered:
            self.registry.register_gauge(name, self._reader(readers[name]))
        self._registered = set(want)
        self._seat = seat

    def _reader(self, read: Callable[[OpsSnapshot], Number]) -> Callable[[], Number | None]:
        def gauge() -> Number | None:
            return read(self.current) if self.current is not None else None

        return gauge

    def _reader_extra(self, name: str) -> Callable[[], Number | None]:
        def gauge() -> Number | None:
            if self.current is None:
                return None
            for n, value, _ in self.current.server.extra:
                if n == name:
                    return value
            return None

        return gauge


def bind_gauges(registry: MetricsRegistry, source: OpsSource) -> Callable[[], OpsSnapshot | None]:
    """Register 3.8's gauges (and the source's ``zkquorum_`` figures) on ``registry``,
    read from one snapshot of ``source`` per scrape; returns the last snapshot's getter."""
    gauges = _Gauges(registry, source)
    registry.before_scrape(gauges.refresh)
    return lambda: gauges.current


# -- today's peer --------------------------------------------------------------------------


class PeerOpsSource:
    """An :class:`OpsSource` over today's :class:`PeerRuntime` (``PeerStatus``).

    It also keeps ``looking_count`` and ``election_time`` of ``registry`` in step with the
    peer's own counts (each new election observed once, with its duration in ms).  When
    the peer feeds the registry itself (see the report: ``registry.counter("looking_count")
    .inc()`` where it enters LOOKING, ``registry.summary("election_time").observe(ms)``
    where it decides), pass ``sync_elections=False``.
    """

    def __init__(
        self,
        peer: PeerRuntime,
        registry: MetricsRegistry,
        *,
        config_text: str | None = None,
        sync_elections: bool = True,
    ) -> None:
        self.peer = peer
        self.registry = registry
        self.config_text = config_text
        self._sync = sync_elections
        self._elections = 0
        self._election_total = 0
        self._looking = 0
        self._seen: dict[str, int] = {}
        self._leading_since: float | None = None

    def reset_server_stats(self) -> None:
        if self.peer.server is not None:
            self.peer.server.reset_stats()

    def reset_connection_stats(self) -> None:
        if self.peer.server is not None:
            self.peer.server.reset_connection_stats()

    def _sync_counts(self, **counts: int) -> None:
        """Registry counters that follow counts the peer keeps itself (by metric name)."""
        for name, value in counts.items():
            seen = self._seen.get(name, 0)
            if value > seen:
                self.registry.counter(name).inc(value - seen)
            self._seen[name] = value

    def _sync_elections(self, elections: int, total_ms: int, last_ms: int | None) -> None:
        summary = self.registry.summary("election_time")
        new = elections - self._elections
        if new > 0 and last_ms is not None:
            rest = total_ms - self._election_total - last_ms
            for _ in range(new - 1):
                summary.observe(rest / (new - 1))
            summary.observe(last_ms)
        self._elections = elections
        self._election_total = total_ms

    def snapshot(self) -> OpsSnapshot:
        from zkquorum.core.leader import HandlerState
        from zkquorum.wire.election import ServerState

        peer = self.peer
        status = peer.status()
        if peer.core is not None:
            self._sync_counts(
                proposal_count=peer.core.broadcast.proposals,
                commit_count=peer.core.broadcast.commits,
                connection_rejected=peer.client_port.rejected if peer.client_port else 0,
                digest_mismatches_count=peer.storage.digest_mismatches,
            )
        if self._sync:
            self._sync_elections(
                status.elections, status.election_time_total_ms, status.election_time_last_ms
            )
            looking = self.registry.counter("looking_count")
            if status.looking_count > self._looking:
                looking.inc(status.looking_count - self._looking)
            self._looking = status.looking_count
        seats = {
            ServerState.LEADING: Seat.LEADER,
            ServerState.FOLLOWING: Seat.FOLLOWER,
            ServerState.OBSERVING: Seat.OBSERVER,
        }
        read_only = peer.read_only_serving
        serving = status.state is not ServerState.LOOKING or read_only
        seat = Seat.READ_ONLY if read_only else seats.get(status.state)
        now = time.monotonic()
        learners: list[LearnerInfo] = []
        leader = peer.leader
        if serving and leader is not None:
            synced = set(leader.synced_sids())
            for handler in list(leader.handlers.values()):
                if handler.sid is None or handler.state is HandlerState.CLOSED:
                    continue
                learners.append(
                    LearnerInfo(
                        sid=handler.sid,
                        remote_address="",
                        observer=handler.observer,
                        synced=handler.sid in synced,
                    )
                )
        if seat is Seat.LEADER:
            if self._leading_since is None:
                self._leading_since = now
        else:
            self._leading_since = None
        cfg = status.config
        leader_host = None
        if status.leader is not None and cfg is not None:
            member = cfg.verifier.all_members.get(status.leader) if cfg.verifier else None
            if member is not None:
                leader_host = member.quorum_addrs[0].host
        zab = status.zab_state
        c = status.connections
        extra: list[tuple[str, Number, Kind]] = [
            ("zkquorum_election_epoch", status.election_epoch, Kind.GAUGE),
            ("zkquorum_elections", status.elections, Kind.COUNTER),
            ("zkquorum_election_notifications_sent", c.notifications_sent, Kind.COUNTER),
            ("zkquorum_election_notifications_received", c.notifications_received, Kind.COUNTER),
            ("zkquorum_election_notifications_dropped", c.notifications_dropped, Kind.COUNTER),
            ("zkquorum_election_recv_queue_overflows", c.recv_queue_overflows, Kind.COUNTER),
            ("zkquorum_election_connections_refused", c.bad_connections_refused, Kind.COUNTER),
            ("zkquorum_election_connections_made", c.connections_made, Kind.COUNTER),
            ("zkquorum_election_connections_dropped", c.connections_dropped, Kind.COUNTER),
            ("zkquorum_election_connect_failures", c.connect_failures, Kind.COUNTER),
            ("zkquorum_election_unknown_sids_refused", c.unknown_sids_refused, Kind.COUNTER),
            ("zkquorum_election_peers_connected", len(status.connected_peers), Kind.GAUGE),
            ("zkquorum_quorum_learners_dropped", status.quorum_learners_dropped, Kind.COUNTER),
            ("zkquorum_quorum_bad_packets", status.quorum_bad_packets, Kind.COUNTER),
            ("zkquorum_tasks", status.tasks, Kind.GAUGE),
            ("zkquorum_serving", int(serving), Kind.GAUGE),
        ]
        t = status.tls
        if t is not None:  # sslQuorum
            extra += [
                ("zkquorum_quorum_tls_handshakes", t.handshakes, Kind.COUNTER),
                ("zkquorum_quorum_tls_handshake_failures", t.handshake_failures, Kind.COUNTER),
                ("zkquorum_quorum_tls_identity_refused", t.identity_refused, Kind.COUNTER),
                ("zkquorum_quorum_tls_plain_accepted", t.plain_accepted, Kind.COUNTER),
                ("zkquorum_quorum_tls_context_reloads", t.context_reloads, Kind.COUNTER),
            ]
        if serving:
            reason = ""
        elif status.leader is None:
            reason = f"looking for a leader (election round {status.election_epoch})"
        else:
            reason = f"synchronizing with leader {status.leader} ({zab})"
        server = ServerView(
            my_id=status.my_id,
            serving=serving,
            seat=seat,
            reason=reason,
            peer_state=f"{status.state.name.lower()} - {zab}",
            leader_id=status.leader if serving else None,
            leader_host=leader_host if serving else None,
            last_zxid=status.zxid,
            node_count=status.node_count,
            uptime_ms=status.uptime_ms,
            leader_uptime_ms=(
                int((now - self._leading_since) * 1000) if self._leading_since is not None else 0
            ),
            config=cfg,
            config_text=self.config_text,
            learners=tuple(learners),
            extra=tuple(extra),
        )
        return OpsSnapshot(server, peer_client_stats(peer) if serving else NO_CLIENTS)


def peer_client_stats(peer: PeerRuntime) -> ClientStats:
    """The client side of a serving peer (the leader tracks the sessions' expiry)."""
    if peer.server is None:
        return NO_CLIENTS
    leader = peer.leader
    return client_stats(
        peer.server,
        peer.client_port.addresses if peer.client_port is not None else {},
        leader.sessions if leader is not None else None,
    )


def client_stats(
    server: ServerCore, addresses: Mapping[int, str], tracker: SessionTracker | None
) -> ClientStats:
    """The client side of a server: its :class:`ServerCore`, the client port's remote
    addresses, and the session tracker that expires sessions (the leader's, or the
    standalone server's own; ``None`` on a learner)."""
    tree = server.db.tree
    connections = []
    watches: dict[int, tuple[str, ...]] = {}
    for c in list(server.conns.values()):
        lat = c.latency
        opened = c.session_id != 0
        connections.append(
            ConnectionInfo(
                remote_address=addresses.get(c.conn, c.remote_ip),
                outstanding_requests=len(c.queue),
                packets_received=c.received,
                packets_sent=c.sent,
                session_id=c.session_id if opened else None,
                last_operation=c.last_op,
                established_ms=server.wall(c.connected_at),
                session_timeout=c.timeout,
                last_cxid=c.last_cxid,
                last_zxid=c.last_zxid,
                last_response_time=server.wall(c.last_response_at) if lat.count else 0,
                last_latency=int(lat.last),
                min_latency=int(lat.low),
                avg_latency=int(lat.avg),
                max_latency=int(lat.max),
            )
        )
        paths = server.watches.paths_of(c.conn)
        if paths and opened:
            watches[c.session_id] = tuple(paths)
    lat = server.latency
    expiry = dict(tracker.expiry_buckets()) if tracker is not None else {}
    return ClientStats(
        packets_received=server.packets_received,
        packets_sent=server.packets_sent,
        outstanding_requests=server.outstanding,
        min_latency=int(lat.low),
        avg_latency=round(lat.avg, 4),
        max_latency=int(lat.max),
        connections=tuple(connections),
        session_expiry=expiry,
        session_timeouts=dict(tree.sessions),
        ephemerals={sid: tuple(sorted(paths)) for sid, paths in tree.ephemerals.items()},
        watches=watches,
        watch_count=server.watches.count(),
        ephemerals_count=sum(len(v) for v in tree.ephemerals.values()),
        approximate_data_size=tree.approximate_data_size(),
        global_sessions=len(tree.sessions),
    )


class StandaloneOpsSource:
    """An :class:`OpsSource` over a :class:`StandaloneServer` (``ZooKeeperServerMain``)."""

    def __init__(self, server: StandaloneServer, *, config_text: str | None = None) -> None:
        self.server = server
        self.config_text = config_text

    def reset_server_stats(self) -> None:
        if self.server.core is not None:
            self.server.core.reset_stats()

    def reset_connection_stats(self) -> None:
        if self.server.core is not None:
            self.server.core.reset_connection_stats()

    def snapshot(self) -> OpsSnapshot:
        server = self.server
        core = server.core
        serving = core is not None and not server.closed
        tree = core.db.tree if core is not None else None
        view = ServerView(
            my_id=0,
            serving=serving,
            seat=Seat.STANDALONE if serving else None,
            reason="" if serving else "starting or stopped",
            peer_state="standalone",
            last_zxid=core.last_zxid if core is not None else 0,
            node_count=tree.node_count + 1 if tree is not None else 0,
            uptime_ms=server.uptime_ms,
            config=server.config,
            config_text=self.config_text,
            extra=(("zkquorum_serving", int(serving), Kind.GAUGE),),
        )
        if core is None or not serving:
            return OpsSnapshot(view)
        port = server.port
        return OpsSnapshot(
            view, client_stats(core, port.addresses if port is not None else {}, core.tracker)
        )
