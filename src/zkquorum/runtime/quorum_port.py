"""asyncio drivers of the quorum port: :class:`LeaderServer` and :class:`LearnerClient`.

Both run a pure machine (:mod:`zkquorum.core.leader`, :mod:`zkquorum.core.learner`), execute
its actions in order (files through :class:`~zkquorum.runtime.storage.Storage`, blocking and
short, before the next packet is written), and report outcomes on :attr:`outcomes`:

* ``QuorumOutcome("established", epoch)`` once (the epoch is the fencing token);
* ``QuorumOutcome("failed", epoch, reason)`` once, at the end: leader gone, handshake failed,
  quorum lost, closed.  The peer then goes back to LOOKING.

Each driver owns its tasks and sockets; ``await close()`` (or leaving ``async with``) ends
them all and closes the txn log's append handle of the :class:`Storage` it was given (the
peer's; it reopens on the next append).  A driver task that dies of a bug, and a disk error
while persisting, end the phase with a "failed" outcome: never a hang.  No threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from zkquorum.config.model import HostPort
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.core.leader import Leader, LeaderSettings
from zkquorum.core.learner import Learner, LearnerSettings
from zkquorum.core.zab import (
    Action,
    AppendTxns,
    Close,
    Established,
    Failed,
    PersistAcceptedEpoch,
    PersistCurrentEpoch,
    Send,
    SendSnapshot,
    TakeSnapshot,
    TruncateLog,
)
from zkquorum.runtime.storage import LoadedState, Storage, StorageError
from zkquorum.runtime.tls import QuorumTls, start_server
from zkquorum.runtime.tls import open_connection as tls_open_connection
from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.quorum import (
    QuorumPacket,
    QuorumStreamDecoder,
    encode_packet,
    encode_snap_sync,
)
from zkquorum.wire.reader import Sentinel

log = logging.getLogger(__name__)

READ_SIZE = 65536


@dataclass(frozen=True, slots=True)
class QuorumOutcome:
    kind: Literal["established", "failed"]
    epoch: int | None = None
    reason: str | None = None


def _config_text(config: QuorumConfig) -> str:
    verifier = config.last_seen_verifier or config.verifier
    return verifier.to_zk_string() if verifier is not None else ""


def _require(config: QuorumConfig) -> tuple[int, int]:
    if config.verifier is None or config.my_id is None:
        raise ValueError("a quorum peer needs server lines and a myid")
    return config.my_id, config.tick_time


class _Driver:
    """Shared: the outcome queue, the storage actions, task bookkeeping."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.outcomes: asyncio.Queue[QuorumOutcome] = asyncio.Queue()
        self.epoch: int | None = None
        self.established = False
        self.failure: str | None = None
        self._done = asyncio.Event()
        self._established = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A driver task that dies of a bug must end the phase, never leave it hanging."""
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("quorum-port task %s failed", task.get_name(), exc_info=exc)
            self._report(QuorumOutcome("failed", self.epoch, f"internal error: {exc!r}"))

    def _persist_or_fail(self, action: Action) -> bool | None:
        """:meth:`_persist`, but a disk error ends the phase (3.8 exits the process there):
        ``None`` means stop executing this action list."""
        try:
            return self._persist(action)
        except (OSError, StorageError) as exc:
            log.error("cannot persist %s: %s", type(action).__name__, exc)
            self._report(QuorumOutcome("failed", self.epoch, f"cannot persist: {exc}"))
            return None

    def _report(self, outcome: QuorumOutcome) -> None:
        if self._done.is_set():
            return
        if outcome.kind == "established":
            self.established = True
            self._established.set()
        else:
            self.failure = outcome.reason
            self._done.set()
        self.outcomes.put_nowait(outcome)

    def _persist(self, action: Action) -> bool:
        """Execute a storage action; False when it was not one."""
        match action:
            case PersistAcceptedEpoch(epoch):
                self.storage.write_accepted_epoch(epoch)
            case PersistCurrentEpoch(epoch):
                self.storage.write_current_epoch(epoch)
            case AppendTxns(txns):
                self.storage.append(txns)
            case TakeSnapshot(zxid, snap):
                self.storage.take_snapshot(zxid, snap)
            case _:
                return False
        return True

    async def wait_established(self, timeout: float | None = None) -> int:
        """The epoch, once established; ``RuntimeError`` if the driver failed first."""
        est = asyncio.ensure_future(self._established.wait())
        done = asyncio.ensure_future(self._done.wait())
        try:
            await asyncio.wait_for(
                asyncio.wait({est, done}, return_when=asyncio.FIRST_COMPLETED), timeout
            )
        finally:
            est.cancel()
            done.cancel()
        if not self.established or self.epoch is None:
            raise RuntimeError(f"quorum port failed: {self.failure}")
        return self.epoch

    async def wait_closed(self) -> str | None:
        """Until the driver failed or was closed; the reason."""
        await self._done.wait()
        return self.failure

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


# ------------------------------------------------------------------------------ learner


class LearnerClient(_Driver):
    """Follow (or observe) the leader ``leader_sid`` of ``config``: one session.

    Connects to every quorum address of the leader, staggered by ``stagger`` seconds,
    retrying every ``retry_delay`` seconds within initLimit (or
    connectToLearnerMasterLimit) ticks; then runs the handshake and follows until the
    leader goes away (read timeout, EOF, protocol error) or :meth:`close`.
    """

    def __init__(
        self,
        config: QuorumConfig,
        storage: Storage,
        leader_sid: int,
        *,
        observer: bool | None = None,
        retry_delay: float = 0.02,
        stagger: float = 0.05,
        snap_count: int = 100_000,
    ) -> None:
        super().__init__(storage)
        sid, tick = _require(config)
        assert config.verifier is not None
        if leader_sid not in config.verifier.all_members:
            raise ValueError(f"leader sid {leader_sid} is not in the config")
        self.config = config
        self._tls = QuorumTls.for_config(config)  # None without sslQuorum/portUnification
        self.leader_sid = leader_sid
        self.retry_delay = retry_delay
        self.stagger = stagger
        if observer is None:
            observer = sid in config.verifier.observing_members
        self.settings = LearnerSettings(
            sid=sid,
            tick_time_ms=tick,
            init_limit=config.init_limit,
            sync_limit=config.sync_limit,
            observer=observer,
            config_version=config.verifier.version,
            config_text=_config_text(config),
            snap_count=snap_count,
        )
        self.learner: Learner | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def last_zxid(self) -> int | None:
        return None if self.learner is None else self.learner.last_logged_zxid

    async def __aenter__(self) -> LearnerClient:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        self._spawn(self._run(), f"zkquorum-learner-{self.settings.sid}")

    async def close(self) -> None:
        self._report(QuorumOutcome("failed", self.epoch, "closed"))
        await self._cancel_tasks()
        self._close_writer()
        self.storage.close()

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            state = self.storage.load()
        except (StorageError, OSError) as exc:
            self._report(QuorumOutcome("failed", None, f"cannot load the database: {exc}"))
            return
        self.learner = Learner(
            self.settings,
            accepted_epoch=state.accepted_epoch,
            current_epoch=state.current_epoch,
            tree=state.tree,
        )
        limit = self.config.connect_to_learner_master_limit or self.config.init_limit
        deadline = loop.time() + limit * self.settings.tick_time_ms / 1000.0
        assert self.config.verifier is not None
        addrs = self.config.verifier.all_members[self.leader_sid].quorum_addrs
        conn = await self._connect(addrs, deadline)
        if conn is None:
            self._report(
                QuorumOutcome("failed", None, f"could not connect to the leader {self.leader_sid}")
            )
            return
        reader, self._writer = conn
        try:
            await self._session(reader)
        except (OSError, StorageError) as exc:
            self._report(QuorumOutcome("failed", self.epoch, f"{type(exc).__name__}: {exc}"))
        finally:
            self._close_writer()

    async def _connect(
        self, addrs: Sequence[HostPort], deadline: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """First successful connection to any address (``Learner#connectToLeader``)."""
        loop = asyncio.get_running_loop()
        winner: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            loop.create_future()
        )

        async def attempt(addr: HostPort, delay: float) -> None:
            await asyncio.sleep(delay)
            # The new leader binds its quorum port a moment after the election: retry soon
            # at first (a refused connect on a live host costs microseconds), then back off
            # to ``retry_delay`` (3.8 always sleeps 100 ms here).
            pause = min(0.001, self.retry_delay)
            while not winner.done() and loop.time() < deadline:
                try:
                    remaining = max(deadline - loop.time(), 0.001)
                    r, w = await asyncio.wait_for(tls_open_connection(self._tls, addr), remaining)
                except (TimeoutError, OSError) as exc:
                    log.debug("learner: connect to %s failed: %s", addr, exc)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, self.retry_delay)
                    continue
                sock = w.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if winner.done():
                    w.close()
                else:
                    winner.set_result((r, w))
                return

        tasks = [asyncio.ensure_future(attempt(a, i * self.stagger)) for i, a in enumerate(addrs)]
        try:
            done_all: asyncio.Future[object] = asyncio.ensure_future(
                asyncio.gather(*tasks, return_exceptions=True)
            )
            waits: set[asyncio.Future[object]] = {winner, done_all}  # type: ignore[arg-type]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            # Cancelled (the peer is closing): a connection that won meanwhile is closed.
            if winner.done() and not winner.cancelled():
                winner.result()[1].close()
            raise
        finally:
            for t in tasks:
                t.cancel()
            # Await the attempts, so that none outlives the driver (close() awaits us).
            await asyncio.gather(*tasks, return_exceptions=True)
        return winner.result() if winner.done() else None

    async def _session(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        learner = self.learner
        assert learner is not None
        decoder = QuorumStreamDecoder()
        await self._execute(learner.start(loop.time()))
        while not self._done.is_set():
            timeout = learner.deadline - loop.time()
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), max(timeout, 0))
            except TimeoutError:
                await self._execute(learner.poll(loop.time()))
                continue
            except OSError as exc:
                await self._execute(learner.closed(loop.time(), f"connection error: {exc}"))
                return
            decoder.receive_data(data)
            while not self._done.is_set():
                try:
                    msg = decoder.next_message()
                except QuorumProtocolError as exc:
                    await self._execute(learner.closed(loop.time(), f"protocol error: {exc}"))
                    return
                if msg is Sentinel.NEED_DATA:
                    break
                if msg is Sentinel.CLOSED:
                    await self._execute(learner.closed(loop.time()))
                    return
                await self._execute(learner.receive(msg, loop.time()))

    async def _execute(self, actions: list[Action]) -> None:
        learner = self.learner
        assert learner is not None
        wrote = False
        for action in actions:
            done = self._persist_or_fail(action)
            if done is None:
                self._close_writer()
                return
            if done:
                continue
            match action:
                case Send(packet):
                    if self._writer is not None:
                        self._writer.write(encode_packet(packet))
                        wrote = True
                case TruncateLog(zxid):
                    self.storage.truncate(zxid)
                    learner.replace_tree(self.storage.load_tree().tree)
                case Established(epoch):
                    self.epoch = epoch
                    self._report(QuorumOutcome("established", epoch))
                case Failed(reason):
                    self._report(QuorumOutcome("failed", self.epoch, reason))
                    self._close_writer()
                case _:
                    log.warning("learner: unexpected action %r", action)
        if wrote and self._writer is not None:
            await self._writer.drain()


# ------------------------------------------------------------------------------- leader


class LeaderServer(_Driver):
    """Lead: listen on our quorum address(es) (wildcard with quorumListenOnAllIPs)."""

    def __init__(
        self,
        config: QuorumConfig,
        storage: Storage,
        *,
        state: LoadedState | None = None,
    ) -> None:
        super().__init__(storage)
        sid, tick = _require(config)
        assert config.verifier is not None
        self.config = config
        self._tls = QuorumTls.for_config(config)  # None without sslQuorum/portUnification
        self.settings = LeaderSettings(
            sid=sid,
            tick_time_ms=tick,
            init_limit=config.init_limit,
            sync_limit=config.sync_limit,
            verifier=config.verifier,
            config_text=_config_text(config),
        )
        self._state = state
        self.leader: Leader | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._conn_ids = itertools.count(1)
        self._wakeup = asyncio.Event()
        self.bound: list[tuple[str, int]] = []
        self.learners_dropped = 0
        """Learner connections the leader closed (refused, silent, out of protocol)."""
        self.bad_packets = 0
        """Learner connections closed on bytes that are no quorum packet."""

    async def __aenter__(self) -> LeaderServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Load the database, bind the listener(s), start leading."""
        loop = asyncio.get_running_loop()
        state = self._state or self.storage.load()
        self.leader = Leader(
            self.settings,
            accepted_epoch=state.accepted_epoch,
            current_epoch=state.current_epoch,
            tree=state.tree,
            history=state.history,
        )
        me = self.config.me
        assert me is not None
        binds = {
            (
                ("0.0.0.0" if not a.is_ipv6 else "::")
                if self.config.quorum_listen_on_all_ips
                else a.host,
                a.port,
            )
            for a in me.quorum_addrs
        }
        try:
            for host, port in sorted(binds):
                server = await start_server(
                    self._tls, self._accept, host=host, port=port, port_name="quorum"
                )
                self._servers.append(server)
                self.bound.extend(s.getsockname()[:2] for s in server.sockets)
        except OSError:
            await self._stop_servers()
            raise
        self._execute(self.leader.start(loop.time()))
        self._spawn(self._ticker(), f"zkquorum-leader-{self.settings.sid}-ticks")

    async def close(self) -> None:
        if self.leader is not None:
            self._execute(self.leader.stop("closed"))
        self._report(QuorumOutcome("failed", self.epoch, "closed"))
        await self._shutdown()

    async def _shutdown(self) -> None:
        await self._shutdown_soon()
        await self._cancel_tasks()
        self.storage.close()

    async def _stop_servers(self) -> None:
        for s in self._servers:
            s.close()
        for s in self._servers:
            with contextlib.suppress(Exception):
                await s.wait_closed()
        self._servers.clear()

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        leader = self.leader
        assert leader is not None
        while not self._done.is_set():
            delay = leader.next_deadline() - loop.time()
            if delay > 0:
                self._wakeup.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), min(delay, 3600))
                continue
            self._execute(leader.poll(loop.time()))
        await self._shutdown_soon()

    async def _shutdown_soon(self) -> None:
        await self._stop_servers()
        for w in list(self._writers.values()):
            w.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve_learner(reader, writer)
        except asyncio.CancelledError:
            # close() cancels us.  End quietly: Python 3.11's StreamReaderProtocol calls
            # exception() on a cancelled handler task and reports that as an error.
            writer.close()

    async def _serve_learner(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        leader = self.leader
        if leader is None or self._done.is_set():
            writer.close()
            return
        conn = next(self._conn_ids)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writers[conn] = writer
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._execute(leader.connected(conn, loop.time()))
        decoder = QuorumStreamDecoder(snapshots=False)
        try:
            while conn in self._writers:
                data = await reader.read(READ_SIZE)
                decoder.receive_data(data)
                while conn in self._writers:
                    msg = decoder.next_message()
                    if msg is Sentinel.NEED_DATA:
                        break
                    if msg is Sentinel.CLOSED:
                        return
                    if isinstance(msg, QuorumPacket):
                        if self._tls is not None and self._tls.learner_refusal(writer, msg):
                            return  # a certificate not valid for that sid (runtime/tls.py)
                        self._execute(leader.receive(conn, msg, loop.time()))
                w = self._writers.get(conn)
                if w is not None:
                    await w.drain()
        except (OSError, QuorumProtocolError) as exc:
            if isinstance(exc, QuorumProtocolError):
                self.bad_packets += 1
            log.info("leader: learner connection %d ended: %s", conn, exc)
        finally:
            self._execute(leader.disconnected(conn, loop.time()))
            w = self._writers.pop(conn, None)
            if w is not None:
                w.close()

    def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            done = self._persist_or_fail(action)
            if done is None:
                self._wakeup.set()  # the ticker sees the failure and shuts the port
                return
            if done:
                continue
            match action:
                case Send(packet, conn):
                    w = self._writers.get(conn)
                    if w is not None:
                        w.write(encode_packet(packet))
                case SendSnapshot(zxid, snap, conn):
                    w = self._writers.get(conn)
                    if w is not None:
                        w.write(encode_snap_sync(zxid, snap))
                case Close(conn, reason):
                    if reason != "leader shutdown":
                        self.learners_dropped += 1
                    w = self._writers.pop(conn, None)
                    if w is not None:
                        w.close()
                case Established(epoch):
                    self.epoch = epoch
                    self._report(QuorumOutcome("established", epoch))
                case Failed(reason):
                    self._report(QuorumOutcome("failed", self.epoch, reason))
                case _:
                    log.warning("leader: unexpected action %r", action)
        self._wakeup.set()
