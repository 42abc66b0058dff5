"""The running peer: drives the pure cores with real sockets, timers and files.

One vote's path, end to end: bytes on a socket (:mod:`zkquorum.runtime.connections`) ->
:mod:`zkquorum.wire.election` decodes a notification -> :meth:`FastLeaderElection.step`
(``NotificationReceived``) -> actions ``Send``/``SetTimer``/``Decided`` -> carried out here.

After a decision the quorum-port phase runs (:mod:`zkquorum.runtime.quorum_port`): the
leader accepts its learners and establishes the new epoch; a follower or observer
connects to the leader and syncs.  When that phase ends (the leader gives up, the learner
loses its leader), the peer goes back to LOOKING with a new round, as 3.8's
``QuorumPeer#run`` does.  :meth:`PeerRuntime.step_down` ends a leader's phase on purpose
(the application asked, or its leadership callback raised): the leader closes its quorum
port, its learners see the connection close, and everyone elects again.  The same peer
may win again when it is still the best candidate (highest epoch, zxid, sid): that is
logged.

Everything runs on one asyncio loop, with no threads: the cores are stepped synchronously
from callbacks (a step is pure and short) and the file I/O (epoch files, the txn log,
snapshots: small writes and an fsync) runs inline, as 3.8's ``QuorumPeer`` thread does it.
:meth:`PeerRuntime.close` cancels every task it started and closes every socket and file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.core.election import Action as ElectionAction
from zkquorum.core.election import (
    ConfigMismatch,
    Decided,
    EpochUpdated,
    FastLeaderElection,
    NotificationReceived,
    PeerConnected,
    PeerLost,
    Send,
    SetTimer,
    Start,
    Timer,
    TimerFired,
)
from zkquorum.runtime import connections as cnx
from zkquorum.runtime.admin import AdminServer, PeerStatus
from zkquorum.runtime.quorum_port import LeaderServer, LearnerClient, QuorumOutcome
from zkquorum.runtime.storage import Storage, StorageError
from zkquorum.wire.election import Notification, ServerState

log = logging.getLogger("zkquorum.peer")

_ZAB_STATES = {
    ServerState.LOOKING: "election",
    ServerState.LEADING: "discovery",
    ServerState.FOLLOWING: "discovery",
    ServerState.OBSERVING: "discovery",
}


@dataclass(frozen=True, slots=True)
class Leadership:
    """What the peer knows about leadership right now; each change is a new value.

    ``epoch`` is the established epoch (the fencing token) when ``established`` is true:
    no other peer can be the established leader of the same epoch.
    """

    role: ServerState
    leader: int | None
    epoch: int | None
    established: bool
    election_epoch: int
    my_id: int

    @property
    def is_leader(self) -> bool:
        """This peer leads, and its quorum acknowledged the epoch (NEWLEADER acks)."""
        return self.role is ServerState.LEADING and self.established

    @property
    def fencing_token(self) -> int | None:
        """The established epoch while this peer is the established leader, else None."""
        return self.epoch if self.is_leader else None


def _task_count() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no running loop: asked from outside the peer's loop
        return 0


class PeerRuntime:
    """One quorum peer: election, quorum port, four-letter words.

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
    ) -> None:
        if config.my_id is None or config.verifier is None or config.me is None:
            raise ValueError("config has no server line for this server's myid")
        self.config = config
        self.my_id = config.my_id
        self._on_change = on_change
        self._trace = trace
        self._quorum_port = quorum_port
        self.election = FastLeaderElection(
            config.my_id,
            config.verifier,
            min_notification_interval=config.min_notification_interval,
            max_notification_interval=config.max_notification_interval,
            all_voted_shortcut=all_voted_shortcut,
            failover_shortcut=failover_shortcut,
        )
        self.storage = Storage(
            Path(config.data_dir),
            Path(config.data_log_dir),
            config_text=config.verifier.to_zk_string(),
        )
        self.cm = cnx.ConnectionManager.from_config(config, on_event=self._on_cnx_event)
        self.admin = AdminServer.from_config(config, self.status)
        self._timers: dict[Timer, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._phase: asyncio.Task[None] | None = None
        self._driver: LeaderServer | LearnerClient | None = None
        self._dropped = 0  # learner connections closed while leading, finished phases
        self._bad_packets = 0
        self._closed = False
        self._t0 = time.monotonic()
        self._looking_since = self._t0
        self.last_zxid = 0
        self.current_epoch = 0
        self.accepted_epoch = 0
        self.elections = 0
        self.looking_count = 0
        # Election times (ms): last, min, max, total; ``elections`` counts them.
        self._time_last: int | None = None
        self._time_min = self._time_max = self._time_total = 0
        self.leadership = Leadership(ServerState.LOOKING, None, None, False, 0, self.my_id)
        self.decided: Decided | None = None
        self._step_down_reason: str | None = None
        self._stepped_down: str | None = None  # why we last stepped down, until decided

    # ---------------------------------------------------------------- lifecycle

    def now(self) -> float:
        """Milliseconds since the peer started: the cores' time."""
        return (time.monotonic() - self._t0) * 1000.0

    async def start(self) -> None:
        """Load the database and epochs (``StorageError`` with ZooKeeper's text when they
        are corrupt), bind the election and client ports, start LOOKING."""
        loaded = self.storage.load()
        self.last_zxid = loaded.tree.last_processed_zxid
        self.current_epoch = loaded.current_epoch
        self.accepted_epoch = loaded.accepted_epoch
        await self.cm.start()
        if self.admin is not None:
            await self.admin.start()
        self._spawn(self._receive_loop(), "election-receive")
        self._look()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.cm.close()
        if self.admin is not None:
            await self.admin.close()
        self.storage.close()
        # Whoever watches learns that this peer no longer leads (or follows).
        self._set_leadership(Leadership(ServerState.LOOKING, None, None, False, 0, self.my_id))

    async def __aenter__(self) -> PeerRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _spawn(self, coro: object, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    # ---------------------------------------------------------------- election

    def step_down(self, reason: str) -> bool:
        """Stop leading: close the quorum port and go back to LOOKING.

        The learners see their connection close and elect again; this peer takes part and
        may win again if it is still the best candidate.  Returns False (and does nothing)
        unless this peer is LEADING, established or not.
        """
        if self._closed or self.leadership.role is not ServerState.LEADING:
            return False
        log.warning("stepping down as leader (epoch %s): %s", self.leadership.epoch, reason)
        self._emit("step-down", epoch=self.leadership.epoch, reason=reason)
        self._step_down_reason = reason
        self._stepped_down = reason
        driver = self._driver
        if driver is not None:
            driver.outcomes.put_nowait(
                QuorumOutcome("failed", driver.epoch, f"stepped down: {reason}")
            )
        elif not self._quorum_port:
            asyncio.get_running_loop().call_soon(self._after_phase, f"stepped down: {reason}")
        # else: the phase is starting; _run_phase sees the reason once its driver is up.
        # From now on nobody may take this peer for the leader (the quorum port closes
        # next, on the loop).
        self._set_leadership(Leadership(ServerState.LOOKING, None, None, False, 0, self.my_id))
        return True

    def _look(self) -> None:
        """Enter LOOKING: a new round (``lookForLeader``)."""
        self._step_down_reason = None
        self.looking_count += 1
        self._looking_since = time.monotonic()
        self.decided = None
        self._set_leadership(Leadership(ServerState.LOOKING, None, None, False, 0, self.my_id))
        log.info("New election. My id = %d, proposed zxid=0x%x", self.my_id, self.last_zxid)
        self._emit("looking", round=self.election.logical_clock + 1, zxid=self.last_zxid)
        self._step(Start(self.now(), self.last_zxid, self.current_epoch))

    def _step(self, event: object) -> None:
        if self._closed:
            return
        actions = self.election.step(event)  # type: ignore[arg-type]
        for action in actions:
            self._execute(action)

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

    def _execute(self, action: ElectionAction) -> None:
        if isinstance(action, Send):
            self._emit_vote("send", action.to, action.notification)
            self.cm.send(action.to, action.notification)
        elif isinstance(action, SetTimer):
            self._set_timer(action.timer, action.at)
        elif isinstance(action, Decided):
            self._decided(action)
        elif isinstance(action, ConfigMismatch):
            log.warning(
                "sid %d sent a config we do not share (version %x): %s; not adopted",
                action.from_sid,
                action.version,
                action.reason,
            )

    def _set_timer(self, timer: Timer, at_ms: float) -> None:
        old = self._timers.pop(timer, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, (at_ms - self.now()) / 1000.0)
        self._timers[timer] = loop.call_later(delay, self._fire, timer)

    def _fire(self, timer: Timer) -> None:
        self._timers.pop(timer, None)
        self._step(TimerFired(self.now(), timer))

    async def _receive_loop(self) -> None:
        while True:
            try:
                got = await self.cm.receive()
            except cnx.ManagerClosed:
                return
            if isinstance(got.message, Notification):
                self._emit_vote("recv", got.sid, got.message)
                self._step(NotificationReceived(self.now(), got.sid, got.message))

    def _on_cnx_event(self, event: cnx.PeerEvent) -> None:
        if isinstance(event, cnx.PeerConnected):
            self._step(PeerConnected(self.now(), event.sid))
        else:
            self._step(PeerLost(self.now(), event.sid))

    def _decided(self, d: Decided) -> None:
        took = int((time.monotonic() - self._looking_since) * 1000)
        self.elections += 1
        self._time_min = took if self._time_last is None else min(self._time_min, took)
        self._time_max = max(self._time_max, took)
        self._time_total += took
        self._time_last = took
        self.decided = d
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        log.info("%s - LEADER ELECTION TOOK - %d MS", d.state.name, took)
        if self._stepped_down is not None and d.state is ServerState.LEADING:
            log.warning(
                "elected leader again after stepping down (%s): this peer is still the best "
                "candidate (highest epoch, zxid, sid)",
                self._stepped_down,
            )
            self._emit("re-elected", reason=self._stepped_down)
        self._stepped_down = None
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
            took_ms=took,
        )
        self._set_leadership(
            Leadership(d.state, d.vote.leader, None, False, d.vote.election_epoch, self.my_id)
        )
        if self._quorum_port:
            self._phase = self._spawn(self._run_phase(d), f"{d.state.name.lower()}-phase")

    async def _run_phase(self, d: Decided) -> None:
        """The quorum-port phase: lead, or follow/observe the decided leader.

        Ends when the driver reports failure (leader gone, quorum lost, handshake failed);
        then the peer goes back to LOOKING (``QuorumPeer#run``).
        """
        driver: LeaderServer | LearnerClient
        if d.state is ServerState.LEADING:
            driver = LeaderServer(self.config, self.storage)
            try:
                await driver.start()
            except (OSError, StorageError) as exc:
                log.error("cannot start leading: %s", exc)
                await driver.close()
                self._after_phase(f"cannot start leading: {exc}")
                return
        else:
            driver = LearnerClient(
                self.config,
                self.storage,
                d.vote.leader,
                observer=d.state is ServerState.OBSERVING,
            )
            driver.start()
        self._driver = driver
        reason = "closed"
        if self._step_down_reason is not None:
            driver.outcomes.put_nowait(
                QuorumOutcome("failed", None, f"stepped down: {self._step_down_reason}")
            )
        try:
            while True:
                outcome = await driver.outcomes.get()
                if outcome.kind == "established" and outcome.epoch is not None:
                    self._establish(outcome.epoch, driver)
                else:
                    reason = outcome.reason or "failed"
                    # From this moment nobody may take this peer for the leader (or for a
                    # synced follower), even while the driver closes.
                    self._set_leadership(
                        Leadership(ServerState.LOOKING, None, None, False, 0, self.my_id)
                    )
                    break
        finally:
            self._driver = None
            await driver.close()
            if isinstance(driver, LeaderServer):
                self._dropped += driver.learners_dropped
                self._bad_packets += driver.bad_packets
        await self._reload()
        if isinstance(driver, LearnerClient) and not self._closed:
            # The leader is gone (EOF, read timeout, refused): for the failover shortcut it
            # is as good as a lost election connection, even while that connection (to a
            # hung process) stays open.  Sound for the same reason: its vote could always
            # have arrived after finalizeWait (see FastLeaderElection._shortcut).
            self._step(PeerLost(self.now(), d.vote.leader))
        self._after_phase(reason)

    async def _reload(self) -> None:
        """Our last zxid and epochs as the files say, for the next election's vote."""
        try:
            loaded = self.storage.load()
        except (OSError, StorageError) as exc:
            log.error("cannot reload the database after the phase: %s", exc)
            return
        self.last_zxid = loaded.tree.last_processed_zxid
        self.current_epoch = loaded.current_epoch
        self.accepted_epoch = loaded.accepted_epoch

    def _establish(self, epoch: int, driver: LeaderServer | LearnerClient) -> None:
        """The quorum-port handshake finished: ``epoch`` is ours (the fencing token)."""
        if self._step_down_reason is not None:
            return  # stepping down: the phase ends with the next outcome
        self.current_epoch = epoch
        self.last_zxid = self._driver_zxid(driver)
        role = self.leadership.role.name
        log.info("%s established: leader=%s epoch=%d", role, self.leadership.leader, epoch)
        self._emit("established", state=role, leader=self.leadership.leader, epoch=epoch)
        self._step(EpochUpdated(self.now(), epoch))
        self._set_leadership(replace(self.leadership, epoch=epoch, established=True))

    def _node_count(self) -> int:
        """``srvr``'s Node count, as 3.8 counts (the root is in its map as "" and "/")."""
        driver = self._driver
        tree = None
        if isinstance(driver, LearnerClient) and driver.learner is not None:
            tree = driver.learner.tree
        elif isinstance(driver, LeaderServer) and driver.leader is not None:
            tree = driver.leader.tree
        return tree.node_count + 1 if tree is not None else 0

    def _served_zxid(self) -> int:
        """``srvr``'s Zxid: the last *processed* zxid (3.8's ``getDataTreeLastProcessedZxid``).

        A follower logs and ACKs a PROPOSAL before its COMMIT is applied; the election vote
        uses the last *logged* zxid (``_driver_zxid``), ``srvr`` the applied one.
        """
        driver = self._driver
        if isinstance(driver, LearnerClient) and driver.learner is not None:
            return driver.learner.tree.last_processed_zxid
        return self._driver_zxid(driver)

    def _driver_zxid(self, driver: LeaderServer | LearnerClient | None) -> int:
        if isinstance(driver, LearnerClient) and driver.last_zxid is not None:
            return driver.last_zxid
        if isinstance(driver, LeaderServer) and driver.leader is not None:
            return driver.leader.last_zxid
        return self.last_zxid

    def _after_phase(self, reason: str) -> None:
        """The leader gave up or the learner lost its leader: back to LOOKING."""
        role = (self.decided.state if self.decided is not None else self.leadership.role).name
        log.info("%s ended: %s", role, reason)
        self._emit("phase-over", state=role, reason=reason)
        if not self._closed:
            self._look()

    def _set_leadership(self, value: Leadership) -> None:
        if value == self.leadership:
            return
        self.leadership = value
        if self._on_change is not None:
            try:
                self._on_change(value)
            except Exception as exc:
                log.exception("leadership change handler failed on %s", value)
                if value.role is ServerState.LEADING:
                    self.step_down(f"the leadership callback raised {type(exc).__name__}: {exc}")

    # ---------------------------------------------------------------- status

    def status(self) -> PeerStatus:
        live_dropped = live_bad = 0
        if isinstance(self._driver, LeaderServer):
            live_dropped, live_bad = self._driver.learners_dropped, self._driver.bad_packets
        state = self.leadership.role
        zab = _ZAB_STATES[state]
        if self.leadership.established:
            zab = "broadcast"
        elif self._quorum_port:
            # 3.8 serves (srvr, mntr, conf) only once the quorum-port phase has finished.
            state = ServerState.LOOKING
        return PeerStatus(
            state=state,
            my_id=self.my_id,
            leader=self.leadership.leader,
            zxid=self._served_zxid(),
            peer_epoch=self.current_epoch,
            election_epoch=self.election.logical_clock,
            elections=self.elections,
            election_time_last_ms=self._time_last,
            election_time_min_ms=self._time_min,
            election_time_max_ms=self._time_max,
            election_time_total_ms=self._time_total,
            looking_count=self.looking_count,
            zab_state=zab,
            connections=self.cm.counters,
            connected_peers=self.cm.connected_peers(),
            config=self.config,
            uptime_ms=int((time.monotonic() - self._t0) * 1000),
            node_count=self._node_count(),
            quorum_learners_dropped=self._dropped + live_dropped,
            quorum_bad_packets=self._bad_packets + live_bad,
            tasks=_task_count(),
        )
