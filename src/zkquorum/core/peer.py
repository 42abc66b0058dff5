"""The pure peer core: one quorum peer's decisions, stepped one event at a time.

``PeerCore.step(event) -> Ready`` is the only entry point (``docs/architecture.md``): it
holds FastLeaderElection (:mod:`zkquorum.core.election`), the leader
(:mod:`zkquorum.core.leader`) or learner (:mod:`zkquorum.core.learner`) of the current
phase, and the one :class:`~zkquorum.core.database.Database`.  Role transitions happen
here and nowhere else, as ``QuorumPeer#run`` does them::

    LOOKING --decided--> LEADING | FOLLOWING | OBSERVING --phase ends--> LOOKING

A phase ends when its machine gives up (quorum lost, leader gone, handshake refused,
storage failed) or on ``StepDown`` (the application asked, or its leadership callback
raised).  A learner whose phase ends tells the election the leader is lost (the
failover shortcut, ``FastLeaderElection._shortcut``).  A TRUNC beyond what the database
can undo ends the phase too; the core then asks the runtime to ``ReloadDatabase`` and
looks again once ``DatabaseReloaded`` arrives.

Driving it without asyncio (tests, the simulator)::

    core = PeerCore(PeerSettings.from_config(cfg), database, accepted_epoch=0, current_epoch=0)
    ready = core.step(Start(now=0.0))
    # execute ready: hard_state, messages, io, append, snapshot, outcomes; then feed
    # Tick(now) once now >= ready.wake_at, and every answer (LogSynced, LeaderUp, ...).

``fixed`` settings run one phase without an election (a leader or a learner of a given
leader; the quorum-port tests and tools): the core stops when that phase ends.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field, replace

from zkquorum.config.verifier import QuorumVerifier
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.core import election as fle
from zkquorum.core.database import COMMIT_LOG_COUNT, SNAPSHOT_SIZE_FACTOR, Database
from zkquorum.core.events import (
    ClientWrite,
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
    Propose,
    QuorumPortFailed,
    QuorumPortOpened,
    RevalidateSession,
    SessionsTouched,
    SnapshotWritten,
    Start,
    StepDown,
    StorageFailed,
    Tick,
    VoteReceived,
)
from zkquorum.core.leader import BroadcastCounts, Leader, LeaderSettings
from zkquorum.core.learner import Learner, LearnerSettings
from zkquorum.core.membership import Membership, config_from_text, same_membership
from zkquorum.core.prep import PrepSettings
from zkquorum.core.ready import (
    INF,
    CloseLeaderConnection,
    CloseQuorumPort,
    ConfigMismatchSeen,
    ConnectToLeader,
    ElectionDecided,
    Established,
    Leadership,
    LeadershipChanged,
    Looking,
    OpenQuorumPort,
    PhaseEnded,
    PhaseEndReason,
    Ready,
    ReadyBuilder,
    ReloadDatabase,
    SendVote,
    SteppedDown,
    TruncateLog,
)
from zkquorum.wire.election import Notification, ServerState

log = logging.getLogger(__name__)

__all__ = ["FixedRole", "PeerCore", "PeerSettings", "Role"]


class Role(enum.Enum):
    """Where the core is in ``QuorumPeer#run``'s loop."""

    NEW = "new"
    LOOKING = "looking"
    LEADING = "leading"
    FOLLOWING = "following"
    OBSERVING = "observing"
    RELOADING = "reloading"
    """Waiting for ``DatabaseReloaded`` before looking again."""
    STOPPED = "stopped"
    """A fixed phase ended."""


@dataclass(frozen=True, slots=True)
class FixedRole:
    """Run one phase with no election: lead (``leader`` is our sid) or learn from
    ``leader``."""

    state: ServerState
    leader: int


@dataclass(frozen=True, slots=True)
class PeerSettings:
    sid: int
    verifier: QuorumVerifier
    tick_time_ms: int
    init_limit: int
    sync_limit: int
    connect_limit: int
    """Ticks a learner tries to connect (connectToLearnerMasterLimit, else initLimit)."""
    config_text: str
    """The last-seen config string: NEWLEADER's data and /zookeeper/config."""
    min_notification_interval: int = 200
    max_notification_interval: int = 60_000
    all_voted_shortcut: bool = True
    failover_shortcut: bool = True
    quorum_port: bool = True
    """False: elect only (no leader/learner phase after a decision)."""
    commit_log_count: int = COMMIT_LOG_COUNT
    snapshot_size_factor: float = SNAPSHOT_SIZE_FACTOR
    fixed: FixedRole | None = None
    wall_offset_ms: float = 0.0
    """Wall-clock ms minus the core's ms (txn header times, session ids)."""
    prep: PrepSettings = field(default_factory=PrepSettings)
    container_check_interval_ms: int = 60_000
    container_max_never_used_ms: int = 0
    ack_logging_frequency: int = 1000
    reconfig_enabled: bool = False
    """``reconfigEnabled``: the membership may change (see :mod:`zkquorum.core.membership`)."""
    standalone_enabled: bool = True
    last_seen: QuorumVerifier | None = None
    """A reconfig in progress when the peer stopped (``<zoo.cfg>.dynamic.next``)."""

    @classmethod
    def from_config(
        cls,
        config: QuorumConfig,
        *,
        all_voted_shortcut: bool = True,
        failover_shortcut: bool = True,
        quorum_port: bool = True,
        commit_log_count: int = COMMIT_LOG_COUNT,
        snapshot_size_factor: float = SNAPSHOT_SIZE_FACTOR,
        fixed: FixedRole | None = None,
    ) -> PeerSettings:
        if config.my_id is None or config.verifier is None:
            raise ValueError("a quorum peer needs server lines and a myid")
        last_seen = config.last_seen_verifier or config.verifier
        return cls(
            sid=config.my_id,
            verifier=config.verifier,
            tick_time_ms=config.tick_time,
            init_limit=config.init_limit,
            sync_limit=config.sync_limit,
            connect_limit=config.connect_to_learner_master_limit or config.init_limit,
            config_text=last_seen.to_zk_string(),
            min_notification_interval=config.min_notification_interval,
            max_notification_interval=config.max_notification_interval,
            all_voted_shortcut=all_voted_shortcut,
            failover_shortcut=failover_shortcut,
            quorum_port=quorum_port,
            commit_log_count=commit_log_count,
            snapshot_size_factor=snapshot_size_factor,
            fixed=fixed,
            reconfig_enabled=config.reconfig_enabled,
            standalone_enabled=config.standalone_enabled,
            last_seen=config.last_seen_verifier,
        )


_ROLE_OF = {
    ServerState.LEADING: Role.LEADING,
    ServerState.FOLLOWING: Role.FOLLOWING,
    ServerState.OBSERVING: Role.OBSERVING,
}


class PeerCore:
    def __init__(
        self,
        settings: PeerSettings,
        database: Database,
        *,
        accepted_epoch: int,
        current_epoch: int,
    ) -> None:
        self.settings = settings
        self.db = database
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.membership = Membership(
            settings.sid,
            settings.verifier,
            settings.last_seen,
            reconfig_enabled=settings.reconfig_enabled,
            standalone_enabled=settings.standalone_enabled,
            config_text=settings.config_text,
        )
        """The config in force and the last seen (shared with the leader or learner)."""
        self.election = fle.FastLeaderElection(
            settings.sid,
            settings.verifier,
            min_notification_interval=settings.min_notification_interval,
            max_notification_interval=settings.max_notification_interval,
            all_voted_shortcut=settings.all_voted_shortcut,
            failover_shortcut=settings.failover_shortcut,
        )
        self.role = Role.NEW
        self.leader: Leader | None = None
        self.learner: Learner | None = None
        self.decided: fle.Decided | None = None
        self.leadership = Leadership(ServerState.LOOKING, None, None, False, 0, settings.sid)
        self._timers: dict[fle.Timer, float] = {}
        self._looking_since = 0.0
        self._stepped_down: str | None = None
        self._phase_leader: int | None = None
        self._announced = False
        # Figures for srvr/mntr.
        self.elections = 0
        self.looking_count = 0
        self.broadcast = BroadcastCounts()
        self.election_time_last_ms: int | None = None
        self.election_time_min_ms = 0
        self.election_time_max_ms = 0
        self.election_time_total_ms = 0
        self.learners_dropped = 0
        self.log_appended = -1
        """The newest txn handed to the log (``Ready.append``), in any phase."""
        self.log_synced = -1
        """The newest ``LogSynced``: the log is durable up to here."""
        self._stale_synced: int | None = None
        """After a ``TruncateLog`` that had to drain the log: the drain's ``LogSynced``
        (up to this zxid) speaks of txns the cut removed, and must not count for the same
        zxids logged again."""
        self._heard_configs: dict[str, QuorumVerifier | None] = {}
        """Configs heard in notifications, parsed (bounded)."""
        self._own_text: tuple[QuorumVerifier | None, str] = (None, "")

    # -- queries -------------------------------------------------------------------------

    @property
    def last_logged_zxid(self) -> int:
        """Our vote's zxid: the newest txn we logged (``QuorumPeer#getLastLoggedZxid``)."""
        if self.learner is not None:
            return max(self.learner.last_logged_zxid, self.db.last_txn_zxid)
        if self.leader is not None:
            return max(self.leader.last_proposed, self.db.last_txn_zxid)
        return self.db.last_txn_zxid

    @property
    def in_phase(self) -> bool:
        return self.role in (Role.LEADING, Role.FOLLOWING, Role.OBSERVING)

    def next_deadline(self) -> float:
        at = min(self._timers.values(), default=INF)
        if self.leader is not None:
            at = min(at, self.leader.next_deadline())
        if self.learner is not None:
            at = min(at, self.learner.deadline)
        return at

    # -- the one entry point -------------------------------------------------------------

    def step(self, event: Event, *, deadline: bool = True) -> Ready:
        """Take ``event``; what to carry out.  ``deadline=False`` leaves the Ready's
        ``wake_at`` at ``inf``: for a caller that steps several events in a row and then
        asks :meth:`next_deadline` once."""
        out = ReadyBuilder()
        now = event.now
        # The events of every write come first (a match tries its cases in order).
        match event:
            case LearnerPacket(_, conn, packet):
                if self.leader is not None:
                    self.leader.on_learner_packet(out, conn, packet, now)
            case LeaderMessage(_, message):
                if self.learner is not None:
                    self.learner.on_message(out, message, now)
            case ClientWrite(_, session_id, cxid, op, body, auth):
                if self.leader is not None:
                    self.leader.client_write(out, session_id, cxid, op, body, auth, now)
                elif self.learner is not None:
                    self.learner.forward(out, session_id, cxid, op, body, auth)
            case SessionsTouched(_, touches):
                if self.leader is not None:
                    self.leader.touch_local(touches, now)
                elif self.learner is not None:
                    self.learner.touched.update(touches)
            case LogSynced(_, zxid):
                stale = self._stale_synced
                if stale is not None and zxid <= stale:
                    if zxid == stale:
                        self._stale_synced = None  # the drain is over
                else:
                    self._stale_synced = None  # the log is FIFO: the drain is over
                    self.log_synced = max(self.log_synced, zxid)
                    if self.leader is not None:
                        self.leader.on_log_synced(out, zxid, now)
                    if self.learner is not None:
                        self.learner.on_log_synced(out, zxid, now)
            case Tick():
                self._on_tick(out, now)
            case VoteReceived(_, sid, n):
                if not self._adopt_newer(out, now, sid, n):
                    self._election(out, fle.NotificationReceived(now, sid, n))
            case ElectionPeerUp(_, sid):
                self._election(out, fle.PeerConnected(now, sid))
            case ElectionPeerDown(_, sid):
                self._election(out, fle.PeerLost(now, sid))
            case Propose(_, txn):
                if self.leader is None:
                    raise RuntimeError("a proposal while not leading")
                self.leader.propose(out, txn, now)
            case LearnerUp(_, conn):
                if self.leader is not None:
                    self.leader.on_learner_up(out, conn, now)
            case LearnerDown(_, conn):
                if self.leader is not None:
                    self.leader.on_learner_down(out, conn, now)
            case LeaderUp():
                if self.learner is not None:
                    self.learner.start(out, now)
            case LeaderDown(_, detail):
                if self.learner is not None:
                    self.learner.fail(PhaseEndReason.LEADER_GONE, detail)
            case LeaderUnreachable():
                if self.learner is not None:
                    self.learner.fail(
                        PhaseEndReason.CONNECT_FAILED,
                        f"could not connect to the leader {self._phase_leader}",
                    )
            case QuorumPortOpened():
                if self.leader is not None:
                    self.leader.start(out, now)
            case QuorumPortFailed(_, detail):
                if self.leader is not None:
                    self.leader.fail(
                        out, PhaseEndReason.PORT_FAILED, f"cannot start leading: {detail}"
                    )
            case SnapshotWritten(_, zxid, ok):
                if self.learner is not None:
                    self.learner.on_snapshot_written(out, zxid, ok, now)
            case LogRead(_, conn, txns):
                if self.leader is not None:
                    self.leader.on_log_read(out, conn, txns, now)
            case StorageFailed(_, detail):
                self._storage_failed(out, detail)
            case RevalidateSession(_, session_id, timeout):
                if self.leader is not None:
                    self.leader.revalidate_local(out, session_id, timeout, now)
                elif self.learner is not None:
                    self.learner.revalidate(out, session_id, timeout)
            case StepDown(_, reason, detail):
                self._step_down(out, now, f"{reason.value}: {detail}" if detail else reason.value)
            case DatabaseReloaded(_, db, accepted, current):
                self._reloaded(out, now, db, accepted, current)
            case Start():
                self._start(out, now)
        sub: Leader | Learner | None = self.leader or self.learner
        if sub is not None and (sub.failure is not None or not self._announced):
            self._check_phase(out, now)  # (nothing to do once announced and still sound)
        self._follow_config()
        if out.hard_state:
            for h in out.hard_state:
                if isinstance(h, TruncateLog):
                    if self.log_appended > self.log_synced:
                        self._stale_synced = self.log_appended
                    self.log_appended = min(self.log_appended, h.zxid)
                    self.log_synced = h.zxid
        if out.append:
            top = self.log_appended
            for txn in out.append:
                if txn.header.zxid > top:
                    top = txn.header.zxid
            self.log_appended = top
        return out.build(self.next_deadline() if deadline else INF)

    def _follow_config(self) -> None:
        """A config put in force this step: the election counts by it, and
        /zookeeper/config shows it (``initConfigInZKDatabase``)."""
        current = self.membership.current
        if self.election.verifier is not current:
            self.election.set_verifier(current)
            self.db.tree.set_config(self.membership.current_text, mzxid=current.version)

    # -- life ----------------------------------------------------------------------------

    def _start(self, out: ReadyBuilder, now: float) -> None:
        if self.role is not Role.NEW:
            raise RuntimeError("PeerCore started twice")
        fixed = self.settings.fixed
        if fixed is None:
            self._look(out, now)
            return
        self._set_leadership(
            out, Leadership(fixed.state, fixed.leader, None, False, 0, self.settings.sid)
        )
        self._enter_phase(out, now, fixed.state, fixed.leader)

    def _on_tick(self, out: ReadyBuilder, now: float) -> None:
        for timer, at in list(self._timers.items()):
            if now >= at and self._timers.get(timer) == at:
                del self._timers[timer]
                self._election(out, fle.TimerFired(now, timer))
        if self.leader is not None:
            self.leader.on_tick(out, now)
        if self.learner is not None:
            self.learner.on_tick(out, now)

    def _set_leadership(self, out: ReadyBuilder, value: Leadership) -> None:
        if value != self.leadership:
            self.leadership = value
            out.outcomes.append(LeadershipChanged(value))

    def _looking(self) -> Leadership:
        return Leadership(ServerState.LOOKING, None, None, False, 0, self.settings.sid)

    # -- the election --------------------------------------------------------------------

    def _look(self, out: ReadyBuilder, now: float) -> None:
        """Enter LOOKING: a new round (``lookForLeader``)."""
        self.role = Role.LOOKING
        self.looking_count += 1
        self._looking_since = now
        self.decided = None
        self._set_leadership(out, self._looking())
        zxid = self.db.last_txn_zxid
        log.info("New election. My id = %d, proposed zxid=0x%x", self.settings.sid, zxid)
        out.outcomes.append(Looking(self.election.logical_clock + 1, zxid))
        self._election(out, fle.Start(now, zxid, self.current_epoch))

    def _election(self, out: ReadyBuilder, event: fle.Event) -> None:
        for action in self.election.step(event):
            match action:
                case fle.Send(to, notification):
                    out.messages.append(SendVote(to, notification))
                case fle.SetTimer(timer, at):
                    self._timers[timer] = at
                case fle.Decided():
                    self._decided(out, action, event.now)
                case fle.ConfigMismatch(from_sid, version, reason):
                    # A newer config is adopted before the election sees it
                    # (_adopt_newer); what is left here is not adoptable.
                    log.warning(
                        "sid %d sent a config we do not share (version %x): %s; not adopted",
                        from_sid,
                        version,
                        reason,
                    )
                    out.outcomes.append(ConfigMismatchSeen(from_sid, version, reason))

    def _adopt_newer(self, out: ReadyBuilder, now: float, sid: int, n: Notification) -> bool:
        """``FastLeaderElection.WorkerReceiver``: a config newer than ours in a notification
        heard while looking is put in force before the vote is counted, every time (not
        once per sender, as the election reports a mismatch); when its members differ the
        notification is dropped and the election starts again under it.  True: dropped.

        Counting first, the vote could decide the round by the old config, and the
        config was then never adopted: a peer elected by an old config whose learners
        all ran a newer one, refused as "ahead" for ever; an observer of an old config
        ignoring every FOLLOWING vote for a leader the old config does not name."""
        text = n.config
        if not self.membership.reconfig_enabled or self.role is not Role.LOOKING:
            return False
        if text is None or n.version <= 1 or text == self._own_config_text():
            return False
        if text not in self._heard_configs:
            if len(self._heard_configs) >= 64:
                self._heard_configs.clear()
            self._heard_configs[text] = config_from_text(text)
        heard = self._heard_configs[text]
        if heard is None or not self._adoptable(heard.version):
            return False
        current = self.membership.current
        self.membership.activate(out, heard, leader=None)
        self._follow_config()
        if same_membership(heard, current):
            return False  # the same members at a newer version: count the vote
        log.info(
            "sid %d sent config version %x (ours was %x): in force now; restarting leader election",
            sid,
            heard.version,
            current.version,
        )
        self._look(out, now)
        return True

    def _own_config_text(self) -> str:
        """The text of the config in force, as notifications carry it."""
        current = self.membership.current
        if self._own_text[0] is not current:
            self._own_text = (current, current.to_zk_string())
        return self._own_text[1]

    def _adoptable(self, version: int) -> bool:
        return (
            self.membership.reconfig_enabled
            and self.role is Role.LOOKING
            and self.decided is None
            and version > self.membership.current.version
        )

    def _decided(self, out: ReadyBuilder, d: fle.Decided, now: float) -> None:
        took = int(now - self._looking_since)
        self.elections += 1
        if self.election_time_last_ms is None:
            self.election_time_min_ms = took
        else:
            self.election_time_min_ms = min(self.election_time_min_ms, took)
        self.election_time_max_ms = max(self.election_time_max_ms, took)
        self.election_time_total_ms += took
        self.election_time_last_ms = took
        self.decided = d
        self._timers.clear()
        again = self._stepped_down if d.state is ServerState.LEADING else None
        if again is not None:
            log.warning(
                "elected leader again after stepping down (%s): this peer is still the best "
                "candidate (highest epoch, zxid, sid)",
                again,
            )
        self._stepped_down = None
        out.outcomes.append(ElectionDecided(d, took, again))
        self._set_leadership(
            out,
            Leadership(
                d.state, d.vote.leader, None, False, d.vote.election_epoch, self.settings.sid
            ),
        )
        if self.settings.quorum_port:
            self._enter_phase(out, now, d.state, d.vote.leader)
        else:
            self.role = _ROLE_OF[d.state]

    # -- phases --------------------------------------------------------------------------

    def _enter_phase(self, out: ReadyBuilder, now: float, state: ServerState, leader: int) -> None:
        s = self.settings
        self.role = _ROLE_OF[state]
        self._phase_leader = leader
        self._announced = False
        if state is ServerState.LEADING:
            self.leader = Leader(
                LeaderSettings(
                    sid=s.sid,
                    tick_time_ms=s.tick_time_ms,
                    init_limit=s.init_limit,
                    sync_limit=s.sync_limit,
                    verifier=self.membership.current,
                    config_text=self.membership.config_text,
                    log_sync=s.snapshot_size_factor >= 0,
                    snapshot_size_factor=s.snapshot_size_factor,
                    wall_offset_ms=s.wall_offset_ms,
                    prep=s.prep,
                    container_check_interval_ms=s.container_check_interval_ms,
                    container_max_never_used_ms=s.container_max_never_used_ms,
                    ack_logging_frequency=s.ack_logging_frequency,
                ),
                self.db,
                accepted_epoch=self.accepted_epoch,
                current_epoch=self.current_epoch,
                counts=self.broadcast,
                membership=self.membership,
            )
            self.leader.last_synced = self.log_synced
            self.leader.prior_log_zxid = self._unsynced()
            out.io.append(OpenQuorumPort())
            return
        observer = state is ServerState.OBSERVING
        self.learner = Learner(
            LearnerSettings(
                sid=s.sid,
                tick_time_ms=s.tick_time_ms,
                init_limit=s.init_limit,
                sync_limit=s.sync_limit,
                observer=observer,
                config_version=self.membership.current.version,
                config_text=self.membership.current_text,
            ),
            self.db,
            accepted_epoch=self.accepted_epoch,
            current_epoch=self.current_epoch,
            membership=self.membership,
            leader=leader,
        )
        self.learner.last_synced_zxid = self.log_synced
        self.learner.prior_log_zxid = self._unsynced()
        out.io.append(ConnectToLeader(leader, now + s.connect_limit * s.tick_time_ms))

    def _unsynced(self) -> int:
        """The newest appended txn not known durable yet (-1: none): a new phase's
        NEWLEADER ACK waits for it."""
        return self.log_appended if self.log_appended > self.log_synced else -1

    def _check_phase(self, out: ReadyBuilder, now: float) -> None:
        """After every step: announce an established epoch, or end a failed phase."""
        sub: Leader | Learner | None = self.leader or self.learner
        if sub is None:
            return
        if sub.failure is not None:
            reason, detail = sub.failure
            self._end_phase(out, now, reason, detail)
            return
        if sub.established and not self._announced:
            self._announced = True
            epoch = sub.epoch if isinstance(sub, Leader) else sub.new_epoch
            self.current_epoch = sub.current_epoch
            self.accepted_epoch = sub.accepted_epoch
            role = self.leadership.role
            leader = self._phase_leader if self._phase_leader is not None else self.settings.sid
            log.info("%s established: leader=%s epoch=%d", role.name, leader, epoch)
            out.outcomes.append(Established(role, leader, epoch))
            if self.settings.fixed is None:
                self._election(out, fle.EpochUpdated(now, epoch))
            self._set_leadership(out, replace(self.leadership, epoch=epoch, established=True))

    def _end_phase(
        self, out: ReadyBuilder, now: float, reason: PhaseEndReason, detail: str
    ) -> None:
        role = self.leadership.role if self.decided is None else self.decided.state
        if self.settings.fixed is not None:
            role = self.settings.fixed.state
        # From this moment nobody may take this peer for the leader (or a synced learner).
        self._set_leadership(out, self._looking())
        reload = False
        lost_leader: int | None = None
        if self.leader is not None:
            self.learners_dropped += self.leader.learners_dropped
            self._finish_leader(self.leader)
            out.io.append(CloseQuorumPort())
            self.leader = None
        if self.learner is not None:
            learner = self.learner
            reload = learner.truncate_failed
            learner.finish()
            self.accepted_epoch = max(self.accepted_epoch, learner.accepted_epoch)
            self.current_epoch = max(self.current_epoch, learner.current_epoch)
            out.io.append(CloseLeaderConnection())
            self.learner = None
            lost_leader = self._phase_leader
        self.db.end_phase()
        log.info("%s ended: %s", role.name, detail)
        out.outcomes.append(PhaseEnded(role, reason, detail))
        self._phase_leader = None
        if reload:
            self.role = Role.RELOADING
            out.io.append(ReloadDatabase())
            return
        if self.settings.fixed is not None:
            self.role = Role.STOPPED
            return
        if lost_leader is not None and reason is not PhaseEndReason.RECONFIG:
            # The leader is gone (EOF, read timeout, refused): for the failover shortcut
            # it is as good as a lost election connection, even while that connection (to
            # a hung process) stays open.  Sound for the same reason: its vote could
            # always have arrived after finalizeWait (see FastLeaderElection._shortcut).
            self._election(out, fle.PeerLost(now, lost_leader))
        self._look(out, now)

    def _finish_leader(self, leader: Leader) -> None:
        self.accepted_epoch = max(self.accepted_epoch, leader.accepted_epoch)
        self.current_epoch = max(self.current_epoch, leader.current_epoch)
        # Proposals we logged but never committed stay in our log: as after 3.8's reload
        # of the database, they count (the next leader may TRUNC them).
        for zxid in sorted(leader.outstanding):
            if zxid > self.db.last_txn_zxid:
                self.db.apply(leader.outstanding[zxid].txn)
        leader.outstanding.clear()

    def _step_down(self, out: ReadyBuilder, now: float, detail: str) -> None:
        if self.leadership.role is not ServerState.LEADING and self.role is not Role.LEADING:
            return
        log.warning("stepping down as leader (epoch %s): %s", self.leadership.epoch, detail)
        out.outcomes.append(SteppedDown(self.leadership.epoch, detail))
        self._stepped_down = detail
        if self.leader is not None:
            self.leader.fail(out, PhaseEndReason.STEPPED_DOWN, f"stepped down: {detail}")
            return
        # Electing only (no quorum port): back to LOOKING at once.
        self._set_leadership(out, self._looking())
        out.outcomes.append(
            PhaseEnded(ServerState.LEADING, PhaseEndReason.STEPPED_DOWN, f"stepped down: {detail}")
        )
        self._look(out, now)

    def _storage_failed(self, out: ReadyBuilder, detail: str) -> None:
        log.error("storage failed: %s", detail)
        if self.leader is not None:
            self.leader.fail(out, PhaseEndReason.STORAGE, f"cannot persist: {detail}")
        elif self.learner is not None:
            self.learner.fail(PhaseEndReason.STORAGE, f"cannot persist: {detail}")

    def _reloaded(
        self, out: ReadyBuilder, now: float, db: Database, accepted: int, current: int
    ) -> None:
        if self.role is not Role.RELOADING:
            return
        self.db = db
        self.accepted_epoch, self.current_epoch = accepted, current
        # The runtime closed (drained) the log before it read the files again.
        self.log_synced = max(self.log_synced, self.log_appended)
        self._stale_synced = None
        if self.settings.fixed is not None:
            self.role = Role.STOPPED
            return
        self._look(out, now)
