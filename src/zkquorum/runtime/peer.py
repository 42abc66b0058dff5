"""The running peer: real sockets, timers and files for the pure :class:`PeerCore`.

Every decision is the core's (:mod:`zkquorum.core.peer`): this module turns what happens
on the wire and on disk into events, steps the core with them one at a time, and carries
out each :class:`~zkquorum.core.ready.Ready` in its order (``docs/architecture.md``):

1. ``hard_state``: epoch files written and fsynced before anything else of the Ready; a
   log truncation first waits until the group-committed log has drained (events that
   arrive meanwhile queue behind it);
2. ``messages``: votes through the election port's connection manager, packets to the
   learners or to the leader;
3. ``io``: the quorum port's listener or the link to the leader
   (:mod:`zkquorum.runtime.quorum_io`), reads of old txns for a learner's sync, a reload
   of the database;
4. ``append``: the group-committed :class:`~zkquorum.runtime.txnlog.TxnLog`; its
   ``on_synced`` becomes ``LogSynced``;
5. ``snapshot``: written in slices of the loop (``Storage.take_snapshot``), answered with
   ``SnapshotWritten``;
6. ``outcomes``: leadership values for the application, trace records, logs;
7. ``wake_at``: one timer for the next ``Tick``.

The client port (:mod:`zkquorum.runtime.client_port`) serves while the peer is
established: a :class:`~zkquorum.core.server.ServerCore` in quorum mode answers reads and
watches from the database, hands writes to the core (``ClientWrite``) and answers them
when the core reports them applied (``Applied``); leaving broadcast drops every client, as
3.8 does.  Four-letter words are answered on the same port.

Time is milliseconds on the monotonic clock since the peer was made.  Tasks belong to one
:class:`~zkquorum.runtime.tasks.TaskOwner`; :meth:`PeerRuntime.close` ends them all and
closes every socket and file.  ``fixed`` runs one leader or learner phase with no
election port (:mod:`zkquorum.runtime.quorum_port`'s ``LeaderServer``/``LearnerClient``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from zkquorum.config.model import HostPort
from zkquorum.config.verifier import HierarchicalVerifier, MajorityVerifier, QuorumVerifier
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.core import seat
from zkquorum.core.acl import AuthSettings
from zkquorum.core.database import Database
from zkquorum.core.events import (
    DatabaseReloaded,
    ElectionPeerDown,
    ElectionPeerUp,
    Event,
    LeaderDown,
    LeaderMessage,
    LeaderUnreachable,
    LeaderUp,
    LearnerDown,
    LearnerPacket,
    LearnerUp,
    LogRead,
    LogSynced,
    QuorumPortFailed,
    QuorumPortOpened,
    SessionsTouched,
    SnapshotWritten,
    Start,
    StepDown,
    StepDownReason,
    StorageFailed,
    Tick,
    VoteReceived,
)
from zkquorum.core.leader import Leader
from zkquorum.core.learner import Learner
from zkquorum.core.peer import FixedRole, PeerCore, PeerSettings
from zkquorum.core.prep import PrepSettings
from zkquorum.core.ready import (
    INF,
    Applied,
    CloseLeaderConnection,
    CloseLearner,
    CloseQuorumPort,
    CloseReason,
    ConfigMismatchSeen,
    ConnectToLeader,
    ElectionDecided,
    Established,
    Leadership,
    LeadershipChanged,
    LearnerDropped,
    Looking,
    Message,
    OpenQuorumPort,
    PhaseEnded,
    ProposalLatency,
    ReadLog,
    Ready,
    ReloadDatabase,
    Revalidated,
    SaveAcceptedEpoch,
    SaveConfig,
    SaveCurrentEpoch,
    SendSnapshotToLearner,
    SendToLeader,
    SendToLearner,
    SendVote,
    SteppedDown,
    SyncAnswered,
    TakeSnapshot,
    TruncateLog,
)
from zkquorum.core.server import (
    ClientClosed,
    ClientConnected,
    ClientMessage,
    ServerCore,
    ServerEvent,
    ServerSettings,
    ServerTick,
)
from zkquorum.runtime import connections as cnx
from zkquorum.runtime.admin import PeerStatus
from zkquorum.runtime.client_port import ClientPort, max_client_cnxns, secure_client_listener
from zkquorum.runtime.files import write_dynamic_config, zoo_cfg_properties, zoo_cfg_text
from zkquorum.runtime.metrics import DetailLevel, MetricsRegistry, observe_requests
from zkquorum.runtime.quorum_io import LeaderLink, QuorumListener
from zkquorum.runtime.sasl_login import load_sasl
from zkquorum.runtime.snapshots import encode_snap_sync_of
from zkquorum.runtime.storage import Storage, StorageError, StorageSettings
from zkquorum.runtime.tasks import TaskOwner
from zkquorum.runtime.tls import QuorumTls
from zkquorum.runtime.txnlog import TxnLog

if TYPE_CHECKING:
    from zkquorum.runtime.commands import CommandContext
from zkquorum.wire.client import ClientRequest, FourLetterWord
from zkquorum.wire.client_records import ConnectRequest
from zkquorum.wire.election import Notification, ServerState
from zkquorum.wire.quorum import QuorumPacket, encode_packet
from zkquorum.wire.txn import Txn

log = logging.getLogger("zkquorum.peer")

__all__ = ["FixedRole", "Leadership", "PeerRuntime"]

SYNC_SNAPSHOT_CLOSE_S = 30.0
"""How long ``close`` waits for a sync's snapshot to be written and answered."""

_ZAB_STATES = {
    ServerState.LOOKING: "election",
    ServerState.LEADING: "discovery",
    ServerState.FOLLOWING: "discovery",
    ServerState.OBSERVING: "discovery",
}


def _client_address(config: QuorumConfig) -> HostPort | None:
    """Where the client port listens: ``clientPortAddress:clientPort``, or the client
    address of our server line; None without a client port."""
    port = config.client_port
    me = config.me
    if port is None and me is not None and me.client_addr is not None:
        port = me.client_addr.port
    if not port:
        return None
    host = config.client_port_address
    if host is None and me is not None and me.client_addr is not None:
        host = me.client_addr.host
    return HostPort(host or "0.0.0.0", port)


def _task_count() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no running loop: asked from outside the peer's loop
        return 0


class PeerRuntime:
    """One quorum peer: election, quorum port, storage, four-letter words.

    ``on_change`` is called (synchronously, on the loop) with every new
    :class:`Leadership`; it must not block.  If it raises while the new value is LEADING,
    the error is logged and the peer steps down (:meth:`step_down`); in any other role
    the error is only logged.
    """

    def __init__(
        self,
        config: QuorumConfig,
        *,
        all_voted_shortcut: bool = True,
        failover_shortcut: bool = True,
        on_change: Callable[[Leadership], None] | None = None,
        quorum_port: bool = True,
        trace: Callable[[dict[str, object]], None] | None = None,
        fixed: FixedRole | None = None,
        storage: Storage | None = None,
    ) -> None:
        if config.my_id is None or config.verifier is None or config.me is None:
            raise ValueError("config has no server line for this server's myid")
        self.config = config
        self.my_id = config.my_id
        self._on_change = on_change
        self._trace = trace
        self._quorum_port = quorum_port
        self._fixed = fixed
        self.storage = storage or Storage(
            Path(config.data_dir),
            Path(config.data_log_dir),
            config_text=config.verifier.to_zk_string(),
            settings=StorageSettings.from_config(config),
        )
        self.settings = PeerSettings.from_config(
            config,
            all_voted_shortcut=all_voted_shortcut,
            failover_shortcut=failover_shortcut,
            quorum_port=quorum_port,
            commit_log_count=self.storage.settings.commit_log_count,
            snapshot_size_factor=self.storage.settings.snapshot_size_factor,
            fixed=fixed,
        )
        # Txn times and session ids need the wall clock; the core only counts ms from here.
        server = ServerSettings.from_properties(
            zoo_cfg_properties(config),
            server_id=config.my_id,
            tick_time_ms=config.tick_time,
            min_session_timeout_ms=config.min_session_timeout,
            max_session_timeout_ms=config.max_session_timeout,
        )
        prep = PrepSettings(
            extended_types_enabled=server.extended_types,
            auth=AuthSettings(super_digest=server.super_digest, sasl=server.sasl_acl),
        )
        self.settings = replace(
            self.settings,
            wall_offset_ms=time.time() * 1000.0,
            prep=prep,
            container_check_interval_ms=server.container_check_interval_ms,
            container_max_never_used_ms=server.container_max_never_used_ms,
            ack_logging_frequency=server.ack_logging_frequency,
        )
        self.tls = QuorumTls.for_config(config)  # None without sslQuorum/portUnification
        self.cm: cnx.ConnectionManager | None = None
        self.client_port: ClientPort | None = None
        self._client_address: HostPort | None = None
        self.server: ServerCore | None = None
        """The client side while this peer serves (established, or read-only while it
        looks for a quorum), else None."""
        self.read_only_serving = False
        """``self.server`` is the read-only server (``readonlymode.enabled``)."""
        self._read_only_timer: asyncio.TimerHandle | None = None
        self._server_wake: asyncio.TimerHandle | None = None
        self.metrics: MetricsRegistry | None = None
        """Where request latencies go (``readlatency``, ``updatelatency``) when set."""
        self._ops: CommandContext | None = None
        self.server_settings = replace(
            server, quorum=True, sasl=load_sasl(zoo_cfg_properties(config))
        )
        if fixed is None:
            self.cm = cnx.ConnectionManager.from_config(
                config, on_event=self._on_cnx_event, tls=self.tls
            )
            self._client_address = _client_address(config)
        self.core: PeerCore | None = None
        self._tasks = TaskOwner(f"zkquorum-{self.my_id}", on_crash=self._crashed)
        self._inbox: collections.deque[Event] = collections.deque()
        self._touches: dict[int, int] = {}
        """Sessions our clients used, gathered over the server steps of a turn of the
        loop: stepped as one ``SessionsTouched`` where :attr:`_touch_mark` is queued."""
        self._touch_mark = SessionsTouched(0.0, ())
        self._stepping = False
        self._blocked = False
        self._post_scheduled = False
        self._out_learners: dict[int, list[bytes]] = {}
        self._out_leader: list[bytes] = []
        self._out_clients: list[tuple[int, bytes]] = []
        self._appends: list[Txn] = []
        """The txns of a pump's steps, handed to the log's thread in one go at its end
        (or before anything that waits on the log)."""
        self._wake: asyncio.TimerHandle | None = None
        self._wake_at = INF
        self._txn_log: TxnLog | None = None
        self._log_generation = 0
        self._snapshot_lock = asyncio.Lock()
        self._sync_snapshots: set[asyncio.Task[None]] = set()
        """A SNAP or TRUNC sync's snapshot being written (see ``close``)."""
        self.listener: QuorumListener | None = None
        self._link: LeaderLink | None = None
        self._dropped = 0
        self._bad_packets = 0
        self._closed = False
        self._t0 = time.monotonic()
        self.leadership = Leadership(ServerState.LOOKING, None, None, False, 0, self.my_id)
        self.phase_failure: str | None = None
        """Why the last phase ended (``None`` while none has)."""
        self._waiters: list[asyncio.Future[None]] = []
        self.established_epochs: list[int] = []

    # ---------------------------------------------------------------- lifecycle

    def now(self) -> float:
        """Milliseconds since the peer was made: the core's time."""
        return (time.monotonic() - self._t0) * 1000.0

    async def start(self) -> None:
        """Load the database and epochs (``StorageError`` with ZooKeeper's text when they
        are corrupt), bind the election and client ports, start."""
        if self._fixed is not None:
            self.start_fixed()
            return
        self._load_core()
        if self.cm is not None:
            await self.cm.start()
            self._tasks.spawn(self._receive_loop(), "election-receive")
        address = self._client_address
        props = zoo_cfg_properties(self.config)
        secure = secure_client_listener(self.config, props)
        if address is not None or secure is not None:
            self.client_port = ClientPort(
                address.host if address is not None else "0.0.0.0",
                address.port if address is not None else None,  # secureClientPort only
                self,
                self._tasks,
                answer_word=self._word,
                max_per_ip=max_client_cnxns(props),
                secure=secure,
            )
            await self.client_port.open()
            if self.client_port.secure_bound is not None:
                log.info("serving TLS clients on %s:%s", *self.client_port.secure_bound)
        self._step(Start(self.now()))
        if self.leadership.role is ServerState.LOOKING:
            self._arm_read_only()

    def start_fixed(self) -> None:
        """Start a ``fixed`` phase (no ports to bind first); on the running loop."""
        if self._fixed is None:
            raise RuntimeError("start_fixed() is for a peer with a fixed role")
        self._load_core()
        self._step(Start(self.now()))

    def _load_core(self) -> None:
        if self.core is not None:
            raise RuntimeError("PeerRuntime started twice")
        db, accepted, current = self._load()
        self.core = PeerCore(self.settings, db, accepted_epoch=accepted, current_epoch=current)
        self._open_log()

    def _load(self) -> tuple[Database, int, int]:
        loaded = self.storage.load()
        db = Database(
            loaded.tree, loaded.committed, commit_log_count=self.settings.commit_log_count
        )
        return db, loaded.accepted_epoch, loaded.current_epoch

    def _open_log(self) -> None:
        self._log_generation += 1
        gen = self._log_generation
        self._txn_log = self.storage.txn_log(
            on_synced=lambda zxid: self._synced(gen, zxid),
            on_error=lambda exc: self._log_failed(gen, exc),
            on_snapshot_due=lambda zxid: self._snapshot_due(gen, zxid),
        )
        self._txn_log.start()

    async def close(self) -> None:
        if self._closed:
            return
        # A sync's snapshot is answered by the core with currentEpoch (3.8 writes it right
        # after the snapshot).  Cancelled, the snapshot would still be finished (its write
        # is shielded) with no currentEpoch after it: a snapshot of the new epoch beside
        # an older currentEpoch, which the next start refuses.  Let it end and be answered.
        syncing = [t for t in self._sync_snapshots if not t.done()]
        if syncing:
            await asyncio.wait(syncing, timeout=SYNC_SNAPSHOT_CLOSE_S)
        self._closed = True
        if self._wake is not None:
            self._wake.cancel()
        for timer in (self._read_only_timer, self._server_wake):
            if timer is not None:
                timer.cancel()
        if self._link is not None:
            self._link.close()
        if self.listener is not None:
            await self.listener.close()
        await self._tasks.close()
        if self.cm is not None:
            await self.cm.close()
        if self.client_port is not None:
            self._flush_clients()
            await self.client_port.close()
        if self._txn_log is not None:
            try:
                await self._txn_log.close()
            except StorageError as exc:
                log.error("closing the txn log: %s", exc)
        self.storage.close()
        # Whoever watches learns that this peer no longer leads (or follows).
        self._set_leadership(Leadership(ServerState.LOOKING, None, None, False, 0, self.my_id))
        self._wake_waiters()

    async def __aenter__(self) -> PeerRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _crashed(self, name: str, exc: BaseException) -> None:
        """A task died of a bug: end the phase rather than hang."""
        self._step(StorageFailed(self.now(), f"internal error in {name}: {exc!r}"))

    # ---------------------------------------------------------------- stepping

    def _step(self, event: Event) -> None:
        """Step the core with ``event`` once every earlier event's Ready is carried out."""
        if self._closed or self.core is None:
            return
        self._inbox.append(event)
        self._pump()

    def _pump(self) -> None:
        if self._stepping or self._blocked:
            return
        core = self.core
        assert core is not None
        self._stepping = True
        try:
            while self._inbox and not self._blocked and not self._closed:
                event = self._inbox.popleft()
                if event is self._touch_mark:
                    event = SessionsTouched(self.now(), tuple(self._touches.items()))
                    self._touches.clear()
                ready = core.step(event, deadline=False)  # armed below
                self._execute(ready)
        finally:
            self._stepping = False
        self._flush()
        self._arm(core.next_deadline())

    def _flush(self) -> None:
        """The packets of the steps just taken, one write per connection."""
        self._push_appends()
        self._flush_clients()
        if self._out_learners:
            out, self._out_learners = self._out_learners, {}
            if self.listener is not None:
                for conn, chunks in out.items():
                    if self.metrics is not None:
                        self._observe_queue(conn, len(chunks))
                    self.listener.send(conn, b"".join(chunks))
        if self._out_leader:
            data, self._out_leader = b"".join(self._out_leader), []
            if self._link is not None:
                self._link.send_bytes(data)

    def _push_appends(self) -> None:
        if self._appends:
            txns, self._appends = self._appends, []
            if self._txn_log is not None:
                self._txn_log.append(txns)

    def _flush_clients(self) -> None:
        """The client replies held during a pump: written before anything closes a
        client connection (a phase that ends drops the server), and at the pump's end."""
        if self._out_clients:
            sends, self._out_clients = self._out_clients, []
            if self.client_port is not None:
                self.client_port.deliver(sends, ())

    def _post(self, event: Event) -> None:
        """An event from the quorum port: stepped with every other event that arrives in
        the same turn of the loop (the packets of one read), then one write each."""
        if self._closed or self.core is None:
            return
        self._inbox.append(event)
        if not self._post_scheduled:
            self._post_scheduled = True
            asyncio.get_running_loop().call_soon(self._posted)

    def _posted(self) -> None:
        self._post_scheduled = False
        if not self._closed:
            self._pump()

    def _drop_queued(self, *kinds: type) -> None:
        """Forget queued events of a connection just closed: a later phase opens new ones
        (a new leader link, a new listener whose connection numbers start again at 1), and
        a packet read from the old one must not be stepped into it."""
        if any(isinstance(e, kinds) for e in self._inbox):
            kept = [e for e in self._inbox if not isinstance(e, kinds)]
            self._inbox.clear()
            self._inbox.extend(kept)

    def _arm(self, at: float) -> None:
        if at == self._wake_at or self._closed:
            return
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        self._wake_at = at
        if at < INF:
            delay = max(0.0, (at - self.now()) / 1000.0)
            self._wake = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._wake = None
        self._wake_at = INF
        self._step(Tick(self.now()))
        if self.core is not None and not self._stepping:
            self._arm(self.core.next_deadline())

    def _execute(self, ready: Ready) -> None:
        if not ready.hard_state:
            self._rest(ready)
            return
        self._push_appends()  # the log gets the earlier steps' txns before it is drained
        if any(isinstance(h, TruncateLog) for h in ready.hard_state):
            # The log must be drained before it is cut: finish this Ready in a task and
            # hold every later event until then.
            self._blocked = True
            self._tasks.spawn(self._execute_after_drain(ready), "truncate")
            return
        if self._hard_state(ready):
            self._rest(ready)

    async def _execute_after_drain(self, ready: Ready) -> None:
        try:
            if self._txn_log is not None:
                try:
                    await self._txn_log.drain()
                except StorageError as exc:
                    self._inbox.appendleft(StorageFailed(self.now(), str(exc)))
                    return
            if self._hard_state(ready):
                self._rest(ready)
                self._push_appends()
        finally:
            self._blocked = False
            if not self._closed:
                self._pump()

    def _hard_state(self, ready: Ready) -> bool:
        """Epoch files and truncation, durable before the rest; False when one failed."""
        try:
            for h in ready.hard_state:
                match h:
                    case SaveAcceptedEpoch(epoch):
                        self.storage.write_accepted_epoch(epoch)
                    case SaveCurrentEpoch(epoch):
                        self.storage.write_current_epoch(epoch)
                    case TruncateLog(zxid):
                        self.storage.truncate(zxid)
                    case SaveConfig(verifier, activated):
                        self._save_config(verifier, activated)
        except (OSError, StorageError) as exc:
            log.error("cannot persist: %s", exc)
            self._inbox.appendleft(StorageFailed(self.now(), str(exc)))
            return False
        return True

    def _save_config(self, verifier: QuorumVerifier, activated: bool) -> None:
        """A config to disk (the dynamic files), and into what the runtime reads: the
        members it connects to, ``conf``, the leader's address."""
        path = Path(self.config.path)
        if path.is_file():
            written = write_dynamic_config(path, verifier, activated=activated, sid=self.my_id)
            log.info("config version %x written to %s", verifier.version, written)
        else:
            log.warning("config version %x not written: %s is not a file", verifier.version, path)
        if not isinstance(verifier, MajorityVerifier | HierarchicalVerifier):
            raise TypeError(f"unknown verifier {type(verifier).__name__}")
        if activated:
            self.config = replace(self.config, verifier=verifier)
            last = self.config.last_seen_verifier
            if last is not None and last.version <= verifier.version:
                self.config = replace(self.config, last_seen_verifier=None)
        else:
            self.config = replace(self.config, last_seen_verifier=verifier)
        members = dict(self.config.verifier.all_members) if self.config.verifier else {}
        if self.config.last_seen_verifier is not None:
            members |= self.config.last_seen_verifier.all_members
        if self.tls is not None:
            self.tls.learn_members(members.values())
        if self.cm is not None:
            self.cm.set_members(
                {sid: s.election_addrs for sid, s in members.items() if sid != self.my_id}
            )

    def _rest(self, ready: Ready) -> None:
        # Written once the pump has stepped every queued event: one socket write per
        # connection, its packets in order (see _flush).
        if ready.messages:
            self._messages(ready.messages)
        for io in ready.io:
            self._io(io)
        if ready.append and self._txn_log is not None:
            self._appends.extend(ready.append)
        for request in ready.snapshot:
            task = self._tasks.spawn(self._snapshot(request), "snapshot")
            if request.sync and task is not None:
                self._sync_snapshots.add(task)
                task.add_done_callback(self._sync_snapshots.discard)
        for outcome in ready.outcomes:
            self._outcome(outcome)
        if ready.outcomes and self._waiters:
            self._wake_waiters()

    def _messages(self, messages: tuple[Message, ...]) -> None:
        to_learners = self._out_learners
        last: QuorumPacket | None = None
        encoded = b""
        for m in messages:
            if type(m) is SendToLearner:
                # A proposal or commit goes to every learner in a row: encoded once.
                if m.packet is not last:
                    last = m.packet
                    encoded = encode_packet(last)
                queue = to_learners.get(m.conn)
                if queue is None:
                    to_learners[m.conn] = [encoded]
                else:
                    queue.append(encoded)
                continue
            match m:
                case SendToLeader(packet):
                    self._out_leader.append(encode_packet(packet))
                case SendVote(to, notification):
                    self._emit_vote("send", to, notification)
                    if self.cm is not None:
                        self.cm.send(to, notification)
                case SendSnapshotToLearner(conn, zxid, tree):
                    to_learners.setdefault(conn, []).append(encode_snap_sync_of(zxid, tree))

    def _observe_queue(self, conn: int, queued: int) -> None:
        """``learner_handler_qp_size``: the learner's queue length as each packet joined
        it (1 to ``queued``: the packets of one pump, written in one go at its end)."""
        core = self.core
        handler = core.leader.handlers.get(conn) if core and core.leader else None
        if handler is None or handler.sid is None or self.metrics is None:
            return
        summary = self.metrics.summary_set("learner_handler_qp_size", str(handler.sid))
        summary.observe_range(1, queued + 1)

    def _io(self, io: object) -> None:
        match io:
            case OpenQuorumPort():
                self._tasks.spawn(self._open_quorum_port(), "quorum-port")
            case CloseQuorumPort():
                listener, self.listener = self.listener, None
                if listener is not None:
                    self._bad_packets += listener.bad_packets
                    self._tasks.spawn(listener.close(), "quorum-port-close")
                self._drop_queued(LearnerUp, LearnerPacket, LearnerDown)
            case ConnectToLeader(sid, deadline):
                assert self.config.verifier is not None
                member = self.config.verifier.all_members.get(sid)
                if member is None and self.config.last_seen_verifier is not None:
                    member = self.config.last_seen_verifier.all_members.get(sid)
                if member is None:
                    self._inbox.append(LeaderUnreachable(self.now()))
                    return
                addrs = member.quorum_addrs
                self._link = LeaderLink(addrs, self.tls, self._post, self.now, self._tasks)
                self._link.start((deadline - self.now()) / 1000.0)
            case CloseLeaderConnection():
                link, self._link = self._link, None
                if link is not None:
                    link.close()
                self._drop_queued(LeaderUp, LeaderMessage, LeaderDown, LeaderUnreachable)
            case CloseLearner(conn, reason):
                if reason is not CloseReason.SHUTDOWN:
                    self._dropped += 1
                if self.listener is not None:
                    self.listener.close_conn(conn)
            case ReadLog(conn, after, up_to, factor):
                limit = int(self.storage.snapshot_size() * factor)
                try:
                    txns = self.storage.read_txns(after, up_to, limit)
                except (OSError, StorageError) as exc:
                    log.warning("cannot read the txn log for a learner's sync: %s", exc)
                    txns = None
                self._inbox.append(LogRead(self.now(), conn, txns))
            case ReloadDatabase():
                self._blocked = True
                self._tasks.spawn(self._reload(), "reload")

    async def _open_quorum_port(self) -> None:
        me = self.config.me
        assert me is not None
        everywhere = self.config.quorum_listen_on_all_ips
        binds = sorted(
            {
                (("::" if a.is_ipv6 else "0.0.0.0") if everywhere else a.host, a.port)
                for a in me.quorum_addrs
            }
        )
        listener = QuorumListener(binds, self.tls, self._post, self.now, self._tasks)
        try:
            await listener.open()
        except OSError as exc:
            self._step(QuorumPortFailed(self.now(), str(exc)))
            return
        core = self.core
        if self._closed or core is None or core.leader is None:
            await listener.close()
            return
        self.listener = listener
        self._step(QuorumPortOpened(self.now()))
        self._wake_waiters()

    async def _reload(self) -> None:
        """``ReloadDatabase``: the files' database, after the log has drained."""
        try:
            if self._txn_log is not None:
                try:
                    await self._txn_log.close()
                except StorageError as exc:
                    log.error("closing the txn log before a reload: %s", exc)
            try:
                db, accepted, current = self._load()
            except (OSError, StorageError) as exc:
                log.error("cannot reload the database: %s", exc)
                raise
            self._open_log()
            self._inbox.appendleft(DatabaseReloaded(self.now(), db, accepted, current))
        finally:
            self._blocked = False
            if not self._closed:
                self._pump()

    # ---------------------------------------------------------------- storage

    def _synced(self, generation: int, zxid: int) -> None:
        if generation == self._log_generation:
            # With the ACKs read in the same turn of the loop: their commits go out in
            # one write per learner.
            self._post(LogSynced(self.now(), zxid))

    def _log_failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._log_generation:
            self._step(StorageFailed(self.now(), f"the txn log failed: {exc}"))

    def _snapshot_due(self, generation: int, zxid: int) -> None:
        """3.8's snapCount rule: a background snapshot, skipped when one is running."""
        if generation != self._log_generation or self._snapshot_lock.locked():
            if self._snapshot_lock.locked():
                log.warning("Too busy to snap, skipping")
            return
        self._tasks.spawn(self._snapshot(TakeSnapshot(zxid)), "snapshot")

    async def _snapshot(self, request: TakeSnapshot) -> None:
        ok = True
        async with self._snapshot_lock:
            core = self.core
            if core is None or self._closed:
                return
            try:
                path = await self.storage.take_snapshot(core.db.tree)
            except (OSError, StorageError) as exc:
                log.error("cannot write the snapshot 0x%x: %s", request.zxid, exc)
                path = None
            ok = path is not None
        if request.sync:
            self._step(SnapshotWritten(self.now(), request.zxid, ok))

    # ---------------------------------------------------------------- outcomes

    def _outcome(self, outcome: object) -> None:
        match outcome:
            case Applied() | Revalidated() | SyncAnswered():  # Applied: one per write
                event = seat.server_event(outcome, self.now())
                if self.server is not None and event is not None:
                    self._server_step(event)
            case ProposalLatency(kind, sid, ms):
                if self.metrics is not None:
                    if sid is None:
                        self.metrics.summary(kind.value, DetailLevel.ADVANCED).observe(ms)
                    else:
                        self.metrics.summary_set(
                            kind.value, str(sid), DetailLevel.ADVANCED
                        ).observe(ms)
            case LeadershipChanged(value):
                self._set_leadership(value)
            case Looking(round_, zxid):
                self.phase_failure = None if self._fixed is None else self.phase_failure
                self._emit("looking", round=round_, zxid=zxid)
            case ElectionDecided(d, took, again):
                log.info("%s - LEADER ELECTION TOOK - %d MS", d.state.name, took)
                if again is not None:
                    self._emit("re-elected", reason=again)
                log.info(
                    "decided: leader=%d zxid=0x%x round=%d peer_epoch=%d via %s",
                    d.vote.leader,
                    d.vote.zxid,
                    d.vote.election_epoch,
                    d.vote.peer_epoch,
                    d.via.value,
                )
                self._emit(
                    "decided",
                    state=d.state.name,
                    leader=d.vote.leader,
                    round=d.vote.election_epoch,
                    peer_epoch=d.vote.peer_epoch,
                    via=d.via.value,
                    took_ms=int(took),
                )
            case Established(role, leader, epoch):
                core = self.core
                if self.read_only_serving:
                    self._drop_server()
                if core is not None and self.client_port is not None:
                    self.server = ServerCore(
                        self.server_settings,
                        core.db,
                        now=self.now(),
                        wall_ms=int(time.time() * 1000),
                    )
                self.established_epochs.append(epoch)
                self._emit("established", state=role.name, leader=leader, epoch=epoch)
            case PhaseEnded(role, _reason, detail):
                self.phase_failure = detail
                self._emit("phase-over", state=role.name, reason=detail)
            case SteppedDown(epoch, detail):
                self._emit("step-down", epoch=epoch, reason=detail)
            case LearnerDropped():
                pass
            case ConfigMismatchSeen():
                pass

    def _wake_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Return once ``predicate()`` holds, checked after every step with outcomes and
        at close; ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                if self._closed:
                    raise RuntimeError("the peer is closed")
                fut = asyncio.get_running_loop().create_future()
                self._waiters.append(fut)
                await fut

    def step_down(self, reason: str) -> bool:
        """Stop leading: close the quorum port and go back to LOOKING.

        The learners see their connection close and elect again; this peer takes part and
        may win again if it is still the best candidate.  Returns False (and does nothing)
        unless this peer is LEADING, established or not.
        """
        return self._request_step_down(StepDownReason.REQUESTED, reason)

    def _request_step_down(self, why: StepDownReason, detail: str) -> bool:
        if self._closed or self.leadership.role is not ServerState.LEADING:
            return False
        self._step(StepDown(self.now(), why, detail))
        return True

    def _set_leadership(self, value: Leadership) -> None:
        if value == self.leadership:
            return
        self.leadership = value
        looking = value.role is ServerState.LOOKING
        read_only_goes_on = self.read_only_serving and looking
        if not value.established and self.server is not None and not read_only_goes_on:
            # Out of broadcast (or of read-only service): 3.8 shuts its ZooKeeperServer
            # down and drops every client.
            self._drop_server()
        if looking:
            self._arm_read_only()
        elif self._read_only_timer is not None:
            self._read_only_timer.cancel()
            self._read_only_timer = None
        if self._on_change is not None:
            try:
                self._on_change(value)
            except Exception as exc:
                log.exception("leadership change handler failed on %s", value)
                if value.role is ServerState.LEADING:
                    self._request_step_down(
                        StepDownReason.CALLBACK_RAISED, f"{type(exc).__name__}: {exc}"
                    )

    def _drop_server(self) -> None:
        self._flush_clients()
        self.server = None
        self.read_only_serving = False
        if self._server_wake is not None:
            self._server_wake.cancel()
            self._server_wake = None
        if self.client_port is not None:
            self.client_port.close_all()

    def _arm_read_only(self) -> None:
        """``readonlymode.enabled``: serve read-only once LOOKING has lasted
        max(2 s, tickTime) (3.8's QuorumPeer waits as long before it starts its
        ReadOnlyZooKeeperServer)."""
        if (
            self._closed
            or not self.server_settings.read_only_enabled
            or self.client_port is None
            or self._read_only_timer is not None
            or self.server is not None
        ):
            return
        delay = max(2.0, self.config.tick_time / 1000.0)
        loop = asyncio.get_running_loop()
        self._read_only_timer = loop.call_later(delay, self._start_read_only)

    def _start_read_only(self) -> None:
        self._read_only_timer = None
        core = self.core
        if self._closed or core is None or self.server is not None:
            return
        if self.leadership.role is not ServerState.LOOKING:
            return
        settings = replace(self.server_settings, quorum=False, read_only=True)
        now = self.now()
        self.server = ServerCore(settings, core.db, now=now, wall_ms=int(time.time() * 1000))
        self.read_only_serving = True
        log.info(
            "Read-only server started (looking for a quorum), zxid 0x%x", self.server.last_zxid
        )
        self._arm_server(self.server.next_deadline())

    def _arm_server(self, at: float) -> None:
        """The read-only server's own timer (its sessions expire here)."""
        if self._server_wake is not None:
            self._server_wake.cancel()
            self._server_wake = None
        if at < INF and not self._closed:
            delay = max(0.0, (at - self.now()) / 1000.0)
            loop = asyncio.get_running_loop()
            self._server_wake = loop.call_later(delay, self._server_tick)

    def _server_tick(self) -> None:
        self._server_wake = None
        if self.read_only_serving:
            self._server_step(ServerTick(self.now()))

    # ---------------------------------------------------------------- client port

    def client_connected(self, conn: int, remote_ip: str) -> None:
        if self.server is None:
            if self.client_port is not None:
                self.client_port.close_conn(conn)  # not serving: "ZooKeeperServer not running"
            return
        self._server_step(ClientConnected(self.now(), conn, remote_ip))

    def client_message(self, conn: int, message: ConnectRequest | ClientRequest) -> None:
        if self.server is not None:
            self._server_step(ClientMessage(self.now(), conn, message))

    def client_closed(self, conn: int) -> None:
        if self.server is not None:
            self._server_step(ClientClosed(self.now(), conn))

    def _server_step(self, event: ServerEvent) -> None:
        server, port = self.server, self.client_port
        if server is None or port is None or self._closed:
            return
        out = server.step(event)
        if self._stepping and not out.closes:
            # Replies of the txns a pump applies: one write per connection at its end.
            self._out_clients.extend(out.sends)
        else:
            self._flush_clients()
            port.deliver(out.sends, out.closes)
        if (out.latencies or out.namespace_bytes) and self.metrics is not None:
            observe_requests(self.metrics, out.latencies, out.namespace_bytes)
        if self.read_only_serving:
            self._arm_server(out.wake_at)
        if out.touches and not self._closed and self.core is not None:
            # One SessionsTouched for every request read in this turn of the loop (queued
            # where the first one was: _touches is empty exactly when no mark is queued).
            if not self._touches:
                self._post(self._touch_mark)
            self._touches.update(out.touches)
            out.touches = []
        if not (out.revalidate or out.forward):
            return
        for core_event in seat.core_events(out, self.now()):
            # Stepped with whatever else arrives in this turn of the loop (the requests
            # of every client connection read in it): their proposals go out in one write
            # per follower.
            self._post(core_event)

    def _word(self, msg: FourLetterWord) -> str | None:
        from zkquorum.runtime import fourletter

        ctx, whitelist = self.ops_context(), self.config.four_letter_words
        read_only = self.server_settings.read_only_enabled  # isro is then always allowed
        return fourletter.render(
            msg.word, ctx, whitelist, argument=msg.argument, read_only_mode=read_only
        )

    def ops_context(self, config_text: str | None = None) -> CommandContext:
        """This peer's metrics registry, its ops source (gauges bound) and trace mask, made
        once: the AdminServer, ``/metrics`` and the four-letter words share them."""
        if self._ops is None:
            from zkquorum.runtime.commands import CommandContext, TraceMask
            from zkquorum.runtime.opsview import PeerOpsSource, bind_gauges

            if config_text is None:
                config_text = zoo_cfg_text(self.config)
            registry = self.metrics if self.metrics is not None else MetricsRegistry()
            self.metrics = registry
            source = PeerOpsSource(self, registry, config_text=config_text)
            bind_gauges(registry, source)
            self._ops = CommandContext(source, registry, TraceMask())
        return self._ops

    # ---------------------------------------------------------------- election port

    def _emit(self, kind: str, **fields: object) -> None:
        """One trace record (wall-clock seconds, so that peers' records line up)."""
        if self._trace is not None:
            self._trace({"t": time.time(), "sid": self.my_id, "ev": kind, **fields})

    def _emit_vote(self, kind: str, peer: int, n: Notification) -> None:
        if self._trace is not None:
            self._emit(
                kind,
                peer=peer,
                state=n.state.name,
                leader=n.leader,
                zxid=n.zxid,
                round=n.election_epoch,
                peer_epoch=n.peer_epoch,
            )

    async def _receive_loop(self) -> None:
        assert self.cm is not None
        while True:
            try:
                got = await self.cm.receive()
            except cnx.ManagerClosed:
                return
            if isinstance(got.message, Notification):
                self._emit_vote("recv", got.sid, got.message)
                self._step(VoteReceived(self.now(), got.sid, got.message))

    def _on_cnx_event(self, event: cnx.PeerEvent) -> None:
        if isinstance(event, cnx.PeerConnected):
            self._step(ElectionPeerUp(self.now(), event.sid))
        else:
            self._step(ElectionPeerDown(self.now(), event.sid))

    # ---------------------------------------------------------------- status

    @property
    def leader(self) -> Leader | None:
        return None if self.core is None else self.core.leader

    @property
    def learner(self) -> Learner | None:
        return None if self.core is None else self.core.learner

    @property
    def last_zxid(self) -> int:
        """The newest logged zxid (our vote's)."""
        return 0 if self.core is None else self.core.last_logged_zxid

    def status(self) -> PeerStatus:
        core = self.core
        live = self.listener.bad_packets if self.listener is not None else 0
        state = self.leadership.role
        zab = _ZAB_STATES[state]
        if self.leadership.established:
            zab = "broadcast"
        elif self._quorum_port:
            # 3.8 serves (srvr, mntr, conf) only once the quorum-port phase has finished.
            state = ServerState.LOOKING
        db = core.db if core is not None else None
        dropped = self._dropped
        return PeerStatus(
            state=state,
            my_id=self.my_id,
            leader=self.leadership.leader,
            zxid=db.last_processed_zxid if db is not None else 0,
            peer_epoch=core.current_epoch if core is not None else 0,
            election_epoch=core.election.logical_clock if core is not None else 0,
            elections=core.elections if core is not None else 0,
            election_time_last_ms=core.election_time_last_ms if core is not None else None,
            election_time_min_ms=core.election_time_min_ms if core is not None else 0,
            election_time_max_ms=core.election_time_max_ms if core is not None else 0,
            election_time_total_ms=core.election_time_total_ms if core is not None else 0,
            looking_count=core.looking_count if core is not None else 0,
            zab_state=zab,
            connections=self.cm.counters if self.cm is not None else cnx.ConnectionCounters(),
            connected_peers=self.cm.connected_peers() if self.cm is not None else frozenset(),
            config=self.config,
            uptime_ms=int((time.monotonic() - self._t0) * 1000),
            node_count=db.tree.node_count + 1 if db is not None and self.core_in_phase else 0,
            quorum_learners_dropped=dropped,
            quorum_bad_packets=self._bad_packets + live,
            tasks=_task_count(),
            tls=self.tls.counters if self.tls is not None else None,
        )

    @property
    def core_in_phase(self) -> bool:
        return self.core is not None and self.core.in_phase
