"""The leader side of the quorum port, as a pure state machine (``Leader#lead`` and one
``LearnerHandler`` per connection, folded into one object), with ZAB's broadcast.

Facts: ``docs/spec/quorum-config-and-zab.md`` B2 (handshake), B3 (heartbeats, failure
detection), B4; 3.8.0 ``Leader#lead``, ``#getEpochToPropose``, ``#waitForEpochAck``,
``#waitForNewLeaderAck``, ``#propose``, ``#processAck``, ``#tryToCommit``,
``#processSync``, ``#startForwarding``, ``LearnerHandler#run``, ``#syncFollower``.

Driven by :class:`zkquorum.core.peer.PeerCore`: each ``on_*`` method takes the step's
:class:`~zkquorum.core.ready.ReadyBuilder` and ``now`` (ms).  Phases: DISCOVERY (collect
FOLLOWERINFO/OBSERVERINFO until a quorum of participants, with us, connected: epoch =
max(acceptedEpoch) + 1, written as acceptedEpoch) -> WAIT_EPOCH_ACKS (a quorum of
ACKEPOCH; currentEpoch written) -> WAIT_NEWLEADER_ACKS (each learner synced with
DIFF/TRUNC/SNAP, then NEWLEADER; a quorum of ACKs) -> BROADCAST (UPTODATE to every
learner, PING every tickTime/2, the synced check every tickTime, proposals) -> STOPPED
(``failure`` set: the peer goes back to LOOKING).  Each wait is bounded by initLimit
ticks.  A learner's read timeout is initLimit ticks until its NEWLEADER ACK, syncLimit
ticks after it.

Broadcast: :meth:`Leader.propose` logs a txn (``Ready.append``) and sends PROPOSAL to
every synced follower; ACKs are counted by the quorum verifier (observers never count;
our own ACK only after ``LogSynced`` covers the txn); proposals commit strictly in zxid
order, are applied to the database, and go out as COMMIT to followers and INFORM to
observers.  A learner's SYNC request is answered once every proposal made before it
has committed.

Reconfig (``reconfigEnabled``): a proposal made while a reconfig is in progress needs a
quorum of the config in force and of the proposed one (``Membership.verifiers``); the
reconfig's commit puts the new config in force, goes to followers as COMMITANDACTIVATE and
to observers as INFORMANDACTIVATE (both with the designated leader: us when we are a voter
of the new config, else the new voter that acked the most), and a leader that is no longer
the designated one commits nothing more and ends its phase at its next tick.  A config
of version 0 gets the NEWLEADER zxid as its version once the phase is established, as
3.8 does (ZOOKEEPER-1783).

A learner whose sid is in no config we know is refused with a log line when reconfig is
disabled; with reconfig enabled it is synced without being counted, as 3.8 does, so that a
server can join before the reconfig that adds it.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from zkquorum.config.reconfig import with_version
from zkquorum.config.verifier import QuorumVerifier
from zkquorum.core.database import Database, NeedLog, SyncMode, SyncPlan, plan_sync
from zkquorum.core.digest import TreeDigests
from zkquorum.core.final import apply_txn
from zkquorum.core.membership import Membership, config_from_text
from zkquorum.core.prep import (
    OutstandingChanges,
    Prep,
    PrepRequest,
    PrepSettings,
    ReconfigContext,
)
from zkquorum.core.ready import (
    Applied,
    CloseLearner,
    CloseReason,
    LatencyKind,
    LearnerDropped,
    PhaseEndReason,
    ProposalLatency,
    ReadLog,
    ReadyBuilder,
    Revalidated,
    SaveAcceptedEpoch,
    SaveCurrentEpoch,
    SendSnapshotToLearner,
    SendToLearner,
    SyncAnswered,
)
from zkquorum.core.sessions import SessionTracker
from zkquorum.wire.client_records import DeleteContainerRequest
from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.jute import Id
from zkquorum.wire.quorum import (
    ZAB_PROTOCOL_VERSION,
    PacketType,
    QuorumPacket,
    RequestHeader,
    decode_int_payload,
    decode_learner_info,
    decode_ping_sessions,
    decode_request,
    decode_revalidate_request,
    encode_config_payload,
    encode_int_payload,
    encode_revalidate_reply,
    packet_type_name,
)
from zkquorum.wire.reader import pack_long
from zkquorum.wire.txn import CreateSessionTxn, OpCode, SetDataTxn, Txn, encode_txn
from zkquorum.wire.zxid import make_zxid, zxid_counter, zxid_epoch, zxid_hex

log = logging.getLogger(__name__)

INF = float("inf")
MAX_COUNTER = 0xFFFFFFFF


@dataclass(slots=True)
class BroadcastCounts:
    """3.8's ``proposal_count`` and ``commit_count``: what this server broadcast as leader."""

    proposals: int = 0
    commits: int = 0


class LeaderPhase(enum.Enum):
    NEW = "new"
    DISCOVERY = "discovery"
    WAIT_EPOCH_ACKS = "discovery - epoch acks"
    WAIT_NEWLEADER_ACKS = "synchronization"
    BROADCAST = "broadcast"
    STOPPED = "stopped"


class HandlerState(enum.Enum):
    WAIT_INFO = "wait info"
    WAIT_EPOCH = "wait epoch"
    WAIT_ACKEPOCH = "wait ackepoch"
    WAIT_EPOCH_QUORUM = "wait epoch quorum"
    WAIT_LOG = "wait for the log files"
    WAIT_ACK = "wait newleader ack"
    WAIT_STARTUP = "wait startup"
    BROADCAST = "broadcast"
    CLOSED = "closed"


_READING = frozenset(
    {
        HandlerState.WAIT_INFO,
        HandlerState.WAIT_ACKEPOCH,
        HandlerState.WAIT_ACK,
        HandlerState.BROADCAST,
    }
)


LOCAL_CONN = -1
"""``pending_syncs``' name for a sync of our own clients."""
LOCAL_OWNER = "local"
"""The owner of sessions of our own clients (3.8: ``ServerCnxn.me``)."""


class XidRolloverError(Exception):
    """``XidRolloverException``: the zxid counter would roll over; the leader gave up."""


class NotLeadingError(Exception):
    """A proposal while the leader is not in broadcast."""


@dataclass(frozen=True, slots=True)
class LeaderSettings:
    sid: int
    tick_time_ms: int
    init_limit: int
    sync_limit: int
    verifier: QuorumVerifier
    config_text: str
    """NEWLEADER's data: the last-seen config string (``Leader#getQuorumVerifierBytes``)."""
    log_sync: bool = True
    """Sync a learner older than the window from the log files (snapshotSizeFactor >= 0)."""
    snapshot_size_factor: float = 0.33
    wall_offset_ms: float = 0.0
    """Wall-clock ms minus the core's ms: txn times and the session tracker's clock."""
    prep: PrepSettings = field(default_factory=PrepSettings)
    container_check_interval_ms: int = 60_000
    """``znode.container.checkIntervalMs`` (``ContainerManager``)."""
    container_max_never_used_ms: int = 0
    ack_logging_frequency: int = 1000
    """``zookeeper.leader.ackLoggingFrequency``: every how many zxids one voter's ACK
    latency is measured (0: never)."""


@dataclass(slots=True)
class LearnerHandler:
    conn: int
    state: HandlerState = HandlerState.WAIT_INFO
    sid: int | None = None
    observer: bool = False
    accepted_epoch: int = -1
    peer_last_zxid: int = -1
    read_deadline: float = INF
    tick_of_next_ack_deadline: int = 0
    sender_started: bool = False
    forwarding: bool = False
    sync_mode: SyncMode = SyncMode.NONE
    inbox: deque[QuorumPacket] = field(default_factory=deque)


class Proposal:
    """A txn proposed and not yet committed (one per write: a plain slotted class)."""

    __slots__ = ("acks", "config", "txn", "verifiers")

    def __init__(self, txn: Txn, verifiers: tuple[QuorumVerifier, ...] = ()) -> None:
        self.txn = txn
        self.verifiers = verifiers
        """Whose quorums must ack it: the config in force, and the proposed one while a
        reconfig is in progress."""
        self.acks: set[int] = set()
        self.config: QuorumVerifier | None = None
        """A reconfig's new config."""


class Leader:
    def __init__(
        self,
        settings: LeaderSettings,
        database: Database,
        *,
        accepted_epoch: int,
        current_epoch: int,
        counts: BroadcastCounts | None = None,
        membership: Membership | None = None,
    ) -> None:
        self.settings = settings
        if membership is None:
            membership = Membership(settings.sid, settings.verifier)
        self.m = membership
        """The configs, shared with the peer core."""
        self.allowed_to_commit = True
        """False once a committed reconfig designated another leader."""
        self.counts = counts if counts is not None else BroadcastCounts()
        """Proposals and commits, kept across phases by whoever passes them in."""
        self.db = database
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.phase = LeaderPhase.NEW
        self.epoch = -1
        self.handlers: dict[int, LearnerHandler] = {}
        self.connecting: set[int] = set()
        self.electing: set[int] = set()
        self.newleader_acks: set[int] = set()
        self.tick = 0
        self.failure: tuple[PhaseEndReason, str] | None = None
        self.outstanding: dict[int, Proposal] = {}
        """Proposals not yet committed, by zxid (``outstandingProposals``)."""
        self.last_proposed = -1
        self.last_committed = -1
        self.last_synced = -1
        """Our own log: every txn up to here is durable (our own ACK)."""
        self.prior_log_zxid = -1
        """The newest txn an earlier phase appended to our log that was not durable when
        this phase began: our own NEWLEADER ACK waits for it (3.8 flushes the log when a
        phase shuts down)."""
        self._own_newleader_ack = False
        self.pending_syncs: dict[int, list[int]] = {}
        """conn of each learner whose SYNC waits for the commit of a zxid."""
        self.learners_dropped = 0
        self._summary = (current_epoch, database.last_processed_zxid)
        self._phase_deadline = INF
        self._next_wake = INF
        self._tick_skip = True
        # The request pipeline (PrepRequestProcessor, the session tracker), once in broadcast.
        self.prep = Prep(settings.prep)
        self.changes = OutstandingChanges()
        self.sessions: SessionTracker | None = None
        self._digests = TreeDigests(database)
        self._next_container_check = INF

    # -- helpers -----------------------------------------------------------------------

    def _clock(self, now: float) -> float:
        """The session tracker's and the txn headers' clock: wall-clock ms."""
        return now + self.settings.wall_offset_ms

    @property
    def _tick_ms(self) -> float:
        return float(self.settings.tick_time_ms)

    @property
    def established(self) -> bool:
        return self.phase is LeaderPhase.BROADCAST

    @property
    def last_zxid(self) -> int:
        return self.db.last_processed_zxid

    @property
    def newleader_zxid(self) -> int:
        return make_zxid(self.epoch, 0)

    @property
    def verifier(self) -> QuorumVerifier:
        """The config in force."""
        return self.m.current

    def _is_participant(self, sid: int | None) -> bool:
        return sid is not None and any(sid in v.voting_members for v in self.m.verifiers())

    def _quorum(self, sids: Iterable[int]) -> bool:
        """Us and a quorum of the config in force (the discovery phase's rule)."""
        sids = set(sids)
        return self.settings.sid in sids and self.verifier.contains_quorum(sids)

    def _all_quorums(self, verifiers: Sequence[QuorumVerifier], sids: Iterable[int]) -> bool:
        """A quorum of each config; our own ack among them wherever we vote (our log
        holds the txn)."""
        me = self.settings.sid
        if len(verifiers) == 1 and isinstance(sids, set):
            v = verifiers[0]
            return v.contains_quorum(sids) and (me in sids or me not in v.voting_members)
        sids = set(sids)
        for v in verifiers:
            if not v.contains_quorum(sids):
                return False
            if me in v.voting_members and me not in sids:
                return False
        return True

    def is_quorum_synced(self, verifier: QuorumVerifier) -> bool:
        """``Leader#isQuorumSynced``: us (when a voter of it) and the synced followers
        contain a quorum of ``verifier``."""
        sids = {self.settings.sid} if self.settings.sid in verifier.voting_members else set()
        for h in self.handlers.values():
            if (
                h.forwarding
                and not h.observer
                and h.sid is not None
                and h.state is not HandlerState.CLOSED
                and self.tick <= h.tick_of_next_ack_deadline
            ):
                sids.add(h.sid)
        return verifier.contains_quorum(sids)

    def synced_sids(self) -> list[int]:
        """Us and every live learner within its ack deadline (``LearnerHandler#synced``)."""
        sids = {self.settings.sid}
        for h in self.handlers.values():
            alive = h.sid is not None and h.state is not HandlerState.CLOSED
            if alive and h.sid is not None and self.tick <= h.tick_of_next_ack_deadline:
                sids.add(h.sid)
        return sorted(sids)

    def next_deadline(self) -> float:
        at = min(self._phase_deadline, self._next_wake, self._next_container_check)
        for h in self.handlers.values():
            if h.read_deadline < at:
                at = h.read_deadline
        if self.sessions is not None:
            at = min(at, self.sessions.wake_at - self.settings.wall_offset_ms)
        return at

    def _send(self, out: ReadyBuilder, h: LearnerHandler, packet: QuorumPacket) -> None:
        out.messages.append(SendToLearner(h.conn, packet))

    def fail(self, out: ReadyBuilder, reason: PhaseEndReason, detail: str) -> None:
        """End the phase: close every learner; the peer core sees ``failure``."""
        if self.phase is LeaderPhase.STOPPED:
            return
        log.warning("leader %d: shutdown: %s", self.settings.sid, detail)
        self.phase = LeaderPhase.STOPPED
        self.failure = (reason, detail)
        self._phase_deadline = self._next_wake = INF
        for h in self.handlers.values():
            if h.state is not HandlerState.CLOSED:
                h.state = HandlerState.CLOSED
                out.io.append(CloseLearner(h.conn, CloseReason.SHUTDOWN))
            h.read_deadline = INF

    def _close(
        self, out: ReadyBuilder, h: LearnerHandler, reason: CloseReason, detail: str
    ) -> None:
        if h.state is HandlerState.CLOSED:
            return
        log.warning(
            "leader %d: closing learner connection %d (sid %s): %s",
            self.settings.sid,
            h.conn,
            h.sid,
            detail,
        )
        h.state = HandlerState.CLOSED
        h.read_deadline = INF
        h.forwarding = False
        h.inbox.clear()
        self.learners_dropped += 1
        out.io.append(CloseLearner(h.conn, reason, detail))
        out.outcomes.append(LearnerDropped(h.conn, reason))

    def _set_state(self, h: LearnerHandler, state: HandlerState, now: float) -> None:
        h.state = state
        if state in _READING:
            limit = (
                self.settings.sync_limit
                if state is HandlerState.BROADCAST
                else self.settings.init_limit
            )
            h.read_deadline = now + limit * self._tick_ms
        else:
            h.read_deadline = INF

    # -- events ------------------------------------------------------------------------

    def start(self, out: ReadyBuilder, now: float) -> None:
        if self.phase is not LeaderPhase.NEW:
            raise RuntimeError("Leader.start called twice")
        self.phase = LeaderPhase.DISCOVERY
        self._phase_deadline = now + self.settings.init_limit * self._tick_ms
        self._propose_epoch(out, self.settings.sid, self.accepted_epoch, now)

    def on_learner_up(self, out: ReadyBuilder, conn: int, now: float) -> None:
        if self.phase is LeaderPhase.STOPPED:
            out.io.append(CloseLearner(conn, CloseReason.SHUTDOWN))
            return
        h = LearnerHandler(conn)
        h.tick_of_next_ack_deadline = (
            self.tick + self.settings.init_limit + self.settings.sync_limit
        )
        self.handlers[conn] = h
        self._set_state(h, HandlerState.WAIT_INFO, now)

    def on_learner_down(self, out: ReadyBuilder, conn: int, now: float) -> None:
        h = self.handlers.pop(conn, None)
        if h is not None and h.state is not HandlerState.CLOSED:
            log.info("leader %d: learner sid %s went away", self.settings.sid, h.sid)
        for conns in self.pending_syncs.values():
            while conn in conns:
                conns.remove(conn)

    def on_learner_packet(
        self, out: ReadyBuilder, conn: int, packet: QuorumPacket, now: float
    ) -> None:
        h = self.handlers.get(conn)
        if h is None or h.state is HandlerState.CLOSED or self.phase is LeaderPhase.STOPPED:
            return
        if h.state is HandlerState.BROADCAST and not h.inbox:
            # The packets of every write (ACK, REQUEST): _pump's turn without its queue.
            h.tick_of_next_ack_deadline = self.tick + self.settings.sync_limit
            try:
                self._handle(out, h, packet, now)
            except QuorumProtocolError as exc:
                self._close(out, h, CloseReason.PROTOCOL, f"bad packet: {exc}")
            return
        h.inbox.append(packet)
        self._pump(out, h, now)

    def _pump(self, out: ReadyBuilder, h: LearnerHandler, now: float) -> None:
        while h.inbox and h.state in _READING and self.phase is not LeaderPhase.STOPPED:
            packet = h.inbox.popleft()
            if h.state is HandlerState.BROADCAST:
                h.tick_of_next_ack_deadline = self.tick + self.settings.sync_limit
            try:
                self._handle(out, h, packet, now)
            except QuorumProtocolError as exc:
                self._close(out, h, CloseReason.PROTOCOL, f"bad packet: {exc}")

    def _handle(self, out: ReadyBuilder, h: LearnerHandler, p: QuorumPacket, now: float) -> None:
        if h.state is HandlerState.WAIT_INFO:
            self._on_info(out, h, p, now)
        elif h.state is HandlerState.WAIT_ACKEPOCH:
            self._on_ackepoch(out, h, p, now)
        elif h.state is HandlerState.WAIT_ACK:
            self._on_newleader_ack(out, h, p, now)
        else:
            h.state = HandlerState.BROADCAST  # _set_state's, for the packet of every write
            h.read_deadline = now + self.settings.sync_limit * self.settings.tick_time_ms
            self._on_broadcast(out, h, p, now)

    # -- discovery ---------------------------------------------------------------------

    def _on_info(self, out: ReadyBuilder, h: LearnerHandler, p: QuorumPacket, now: float) -> None:
        if p.type not in (PacketType.FOLLOWERINFO, PacketType.OBSERVERINFO):
            self._close(
                out,
                h,
                CloseReason.PROTOCOL,
                f"First packet {packet_type_name(p.type)} is not FOLLOWERINFO or OBSERVERINFO!",
            )
            return
        info = decode_learner_info(p.data)
        verifier = self.verifier
        known = any(info.server_id in v.all_members for v in self.m.verifiers())
        if not known and not self.m.reconfig_enabled:
            log.warning(
                "leader %d: refusing learner sid %d: it is not in the current config "
                "(with reconfigEnabled=true it would be synced without being counted)",
                self.settings.sid,
                info.server_id,
            )
            self._close(
                out, h, CloseReason.REFUSED, f"sid {info.server_id} is not in the current config"
            )
            return
        if not known:
            log.info(
                "leader %d: learner sid %d is not in the current config (version %x): "
                "synced, not counted until a reconfig adds it",
                self.settings.sid,
                info.server_id,
                verifier.version,
            )
        if info.server_id == self.settings.sid:
            self._close(
                out, h, CloseReason.REFUSED, f"a learner claims our own sid {info.server_id}"
            )
            return
        if info.protocol_version < ZAB_PROTOCOL_VERSION:
            self._close(
                out,
                h,
                CloseReason.REFUSED,
                f"pre-ZAB-1.0 learner (protocol 0x{info.protocol_version:x})",
            )
            return
        if info.config_version > verifier.version:
            self._close(
                out,
                h,
                CloseReason.REFUSED,
                "Follower is ahead of the leader (has a later activated configuration)",
            )
            return
        h.sid = info.server_id
        h.observer = p.type == PacketType.OBSERVERINFO
        h.accepted_epoch = zxid_epoch(p.zxid)
        self._set_state(h, HandlerState.WAIT_EPOCH, now)
        self._propose_epoch(out, h.sid, h.accepted_epoch, now)

    def _propose_epoch(self, out: ReadyBuilder, sid: int, last_accepted: int, now: float) -> None:
        """``Leader#getEpochToPropose``."""
        if self.phase is not LeaderPhase.DISCOVERY:
            self._release_epoch(out, now)  # already chosen: answer at once
            return
        if last_accepted >= self.epoch:
            self.epoch = last_accepted + 1
        if self._is_participant(sid) or sid == self.settings.sid:
            self.connecting.add(sid)
        if not self._quorum(self.connecting):
            return
        self.accepted_epoch = self.epoch
        m = self.m
        if m.reconfig_enabled and m.current.version == 0 and m.last_seen.version == 0:
            # ZOOKEEPER-1783: an initial config gets a version once it is established,
            # so that it outranks the partial configs of servers still joining.
            m.see(out, with_version(m.current, self.newleader_zxid))
        self.phase = LeaderPhase.WAIT_EPOCH_ACKS
        self._phase_deadline = now + self.settings.init_limit * self._tick_ms
        log.info("leader %d: new epoch %d", self.settings.sid, self.epoch)
        out.hard_state.append(SaveAcceptedEpoch(self.epoch))
        self._release_epoch(out, now)
        # The leader's own waitForEpochAck.
        self._epoch_ack(out, None, self.current_epoch, self.last_zxid, now)

    def _release_epoch(self, out: ReadyBuilder, now: float) -> None:
        data = encode_int_payload(ZAB_PROTOCOL_VERSION)
        for h in self.handlers.values():
            if h.state is HandlerState.WAIT_EPOCH:
                self._send(out, h, QuorumPacket(PacketType.LEADERINFO, self.newleader_zxid, data))
                self._set_state(h, HandlerState.WAIT_ACKEPOCH, now)

    def _on_ackepoch(
        self, out: ReadyBuilder, h: LearnerHandler, p: QuorumPacket, now: float
    ) -> None:
        if p.type != PacketType.ACKEPOCH:
            self._close(
                out,
                h,
                CloseReason.PROTOCOL,
                f"First packet {packet_type_name(p.type)} is not ACKEPOCH",
            )
            return
        epoch = decode_int_payload(p.data)
        h.peer_last_zxid = p.zxid
        self._set_state(h, HandlerState.WAIT_EPOCH_QUORUM, now)
        self._epoch_ack(out, h, epoch, p.zxid, now)

    def _epoch_ack(
        self, out: ReadyBuilder, h: LearnerHandler | None, epoch: int, zxid: int, now: float
    ) -> None:
        """``Leader#waitForEpochAck`` for one caller (``h`` None: the leader itself)."""
        if self.phase is LeaderPhase.WAIT_EPOCH_ACKS:
            sid = self.settings.sid if h is None else h.sid
            if epoch != -1 and h is not None:
                leader_epoch, leader_zxid = self._summary
                if epoch > leader_epoch or (epoch == leader_epoch and zxid > leader_zxid):
                    self._close(
                        out,
                        h,
                        CloseReason.REFUSED,
                        f"Follower is ahead of the leader, leader summary: {leader_epoch} "
                        f"(current epoch), {leader_zxid} (last zxid)",
                    )
                    return
            if (
                epoch != -1
                and zxid != -1
                and sid is not None
                and (self._is_participant(sid) or h is None)
            ):
                self.electing.add(sid)
            if not self._quorum(self.electing):
                return
            # The quorum acked: currentEpoch, then sync everyone who waits.
            self.current_epoch = self.epoch
            out.hard_state.append(SaveCurrentEpoch(self.epoch))
            self.phase = LeaderPhase.WAIT_NEWLEADER_ACKS
            self._phase_deadline = now + self.settings.init_limit * self._tick_ms
            for other in list(self.handlers.values()):
                if other.state is HandlerState.WAIT_EPOCH_QUORUM:
                    self._sync(out, other, now)
            if self.last_synced >= self.prior_log_zxid:
                self._newleader_ack(out, self.settings.sid, self.newleader_zxid, now)
            else:
                self._own_newleader_ack = True
            return
        if h is not None and self.phase in (LeaderPhase.WAIT_NEWLEADER_ACKS, LeaderPhase.BROADCAST):
            self._sync(out, h, now)

    # -- synchronization ---------------------------------------------------------------

    def _sync(
        self,
        out: ReadyBuilder,
        h: LearnerHandler,
        now: float,
        from_log: Sequence[Txn] | None = None,
    ) -> None:
        s = self.settings
        plan = plan_sync(self.db, h.peer_last_zxid, log_sync=s.log_sync, from_log=from_log)
        if isinstance(plan, NeedLog):
            # Read the older txns from the files first (LearnerHandler#syncFollower).
            h.state = HandlerState.WAIT_LOG
            h.read_deadline = INF
            out.io.append(ReadLog(h.conn, plan.after, plan.up_to, s.snapshot_size_factor))
            return
        self._send_plan(out, h, plan, now)

    def on_log_read(
        self, out: ReadyBuilder, conn: int, txns: Sequence[Txn] | None, now: float
    ) -> None:
        h = self.handlers.get(conn)
        if h is None or h.state is not HandlerState.WAIT_LOG or self.phase is LeaderPhase.STOPPED:
            return
        self._sync(out, h, now, from_log=txns if txns is not None else ())

    def _send_plan(self, out: ReadyBuilder, h: LearnerHandler, plan: SyncPlan, now: float) -> None:
        h.sync_mode = plan.mode
        log.info("leader %d: syncing sid %s with %s", self.settings.sid, h.sid, plan.mode.name)
        queued = plan.queued
        if plan.mode is SyncMode.SNAP:
            out.messages.append(SendSnapshotToLearner(h.conn, self.last_zxid, self.db.tree))
            queued = self.last_zxid
        for p in plan.packets:
            self._send(out, h, p)
        self._start_forwarding(out, h, queued)
        # NEWLEADER's config, which the learner puts in force at UPTODATE: the last seen
        # while the epoch is being established (its NEWLEADER quorums commit it); once
        # established, the one in force.  3.8 sends the last seen one always, so that a
        # learner synced while a reconfig is in progress puts the uncommitted config in
        # force, and is refused ever after when it does not commit ("Follower is ahead
        # of the leader (has a later activated configuration)").
        established = self.phase is LeaderPhase.BROADCAST
        text = self.m.current_text if established else self.m.config_text
        config = encode_config_payload(text)
        self._send(out, h, QuorumPacket(PacketType.NEWLEADER, self.newleader_zxid, config))
        h.sender_started = True
        self._set_state(h, HandlerState.WAIT_ACK, now)
        self._pump(out, h, now)

    def _start_forwarding(self, out: ReadyBuilder, h: LearnerHandler, queued: int) -> None:
        """``Leader#startForwarding``: the proposals in flight after what the sync
        brought the learner to (followers only: observers learn them by INFORM)."""
        if not h.observer:
            for zxid in sorted(self.outstanding):
                if zxid > queued:
                    txn = self.outstanding[zxid].txn
                    self._send(out, h, QuorumPacket(PacketType.PROPOSAL, zxid, encode_txn(txn)))
        h.forwarding = True

    def _on_newleader_ack(
        self, out: ReadyBuilder, h: LearnerHandler, p: QuorumPacket, now: float
    ) -> None:
        if p.type != PacketType.ACK:
            self._close(
                out,
                h,
                CloseReason.PROTOCOL,
                "Next packet was supposed to be an ACK, but received packet: "
                f"{packet_type_name(p.type)}",
            )
            return
        self._set_state(h, HandlerState.WAIT_STARTUP, now)
        self._newleader_ack(out, h.sid, p.zxid, now)
        if self.phase is LeaderPhase.BROADCAST and h.state is HandlerState.WAIT_STARTUP:
            self._uptodate(out, h, now)

    def _newleader_ack(self, out: ReadyBuilder, sid: int | None, zxid: int, now: float) -> None:
        """``Leader#waitForNewLeaderAck`` for one caller."""
        if self.phase is not LeaderPhase.WAIT_NEWLEADER_ACKS:
            return
        if zxid != self.newleader_zxid:
            log.error(
                "NEWLEADER ACK from sid: %s is from a different epoch - current 0x%s received 0x%s",
                sid,
                zxid_hex(self.newleader_zxid),
                zxid_hex(zxid),
            )
            return
        if sid is not None and (self._is_participant(sid) or sid == self.settings.sid):
            self.newleader_acks.add(sid)
        if self.settings.sid in self.newleader_acks and self._all_quorums(
            self.m.verifiers(), self.newleader_acks
        ):
            self._establish(out, now)

    def _establish(self, out: ReadyBuilder, now: float) -> None:
        self.phase = LeaderPhase.BROADCAST
        self._phase_deadline = INF
        self.db.set_last_processed_zxid(self.newleader_zxid)  # Leader#startZkServer
        self.last_proposed = self.last_committed = self.newleader_zxid
        self.last_synced = max(self.last_synced, self.newleader_zxid)
        self._next_wake = now + self._tick_ms / 2
        self._tick_skip = True
        self._next_container_check = now + self.settings.container_check_interval_ms
        # SessionTrackerImpl: the database's sessions, each given a full timeout.
        self.sessions = SessionTracker(
            self.settings.sid,
            self.settings.tick_time_ms,
            self._clock(now),
            dict(self.db.tree.sessions),
        )
        log.info(
            "leader %d: established in epoch %d with %s",
            self.settings.sid,
            self.epoch,
            sorted(self.newleader_acks),
        )
        for h in list(self.handlers.values()):
            if h.state is HandlerState.WAIT_STARTUP:
                self._uptodate(out, h, now)
        if self.m.in_progress:
            # The config NEWLEADER carried is in force now (Leader#lead after startZkServer).
            new = self.m.last_seen
            designated = self._designated_leader(new, self.newleader_acks, None)
            self.m.activate(out, new, leader=self.settings.sid, designated=designated)
            if designated != self.settings.sid:
                log.warning(
                    "leader %d: not the designated leader (%d) of config %x: committing nothing",
                    self.settings.sid,
                    designated,
                    new.version,
                )
                self.allowed_to_commit = False

    def _designated_leader(
        self, new: QuorumVerifier, acks: Iterable[int], after_zxid: int | None
    ) -> int:
        """``Leader#getDesignatedLeader``: us when we are a voter of ``new`` at the same
        quorum address, else the voter of ``new`` among ``acks`` that acked the longest
        run of the proposals after ``after_zxid`` (the smallest sid among equals)."""
        me = self.settings.sid
        mine = self.verifier.all_members.get(me)
        ours = new.voting_members.get(me)
        if ours is not None and (mine is None or ours.quorum_addrs == mine.quorum_addrs):
            return me
        candidates = {s for s in acks if s in new.voting_members} - {me}
        if not candidates:
            return me
        best = min(candidates)
        if after_zxid is not None:
            zxid = after_zxid + 1
            while zxid in self.outstanding and candidates:
                candidates &= self.outstanding[zxid].acks
                if not candidates:
                    break
                best = min(candidates)
                zxid += 1
        return best

    def _uptodate(self, out: ReadyBuilder, h: LearnerHandler, now: float) -> None:
        self._set_state(h, HandlerState.BROADCAST, now)
        h.tick_of_next_ack_deadline = self.tick + self.settings.sync_limit
        self._send(out, h, QuorumPacket(PacketType.UPTODATE, -1))
        self._pump(out, h, now)

    # -- broadcast ---------------------------------------------------------------------

    def next_zxid(self) -> int:
        """The zxid the next proposal must carry."""
        return self.last_proposed + 1

    def propose(self, out: ReadyBuilder, txn: Txn, now: float) -> None:
        """``Leader#propose``: log ``txn`` and send PROPOSAL to the synced followers.

        ``txn.header.zxid`` must be :meth:`next_zxid`.  At counter 0xffffffff the leader
        gives up instead (a new epoch restarts the counter) and raises
        :class:`XidRolloverError`.
        """
        if self.phase is not LeaderPhase.BROADCAST:
            raise NotLeadingError(f"the leader is in {self.phase.value}, not broadcast")
        zxid = txn.header.zxid
        if zxid_counter(zxid) == MAX_COUNTER:
            detail = (
                "zxid lower 32 bits have rolled over, forcing re-election, and therefore "
                "new epoch start"
            )
            self.fail(out, PhaseEndReason.PROTOCOL, detail)
            raise XidRolloverError(detail)
        if zxid != self.next_zxid():
            raise ValueError(
                f"proposal 0x{zxid_hex(zxid)} is not the next zxid 0x{zxid_hex(self.next_zxid())}"
            )
        data = encode_txn(txn)  # first: a txn that cannot be encoded changes nothing
        self.last_proposed = zxid
        if txn.raw is None:
            # Encoded once: the log's thread writes these bytes too.
            txn = Txn(txn.header, txn.record, txn.digest, txn.trailing, data)
        proposal = Proposal(txn)
        if txn.header.type == OpCode.RECONFIG and isinstance(txn.record, SetDataTxn):
            proposal.config = config_from_text((txn.record.data or b"").decode())
            if proposal.config is not None:
                self.m.see(out, proposal.config)
        proposal.verifiers = self.m.verifiers()  # after see(): the proposed one included
        self.outstanding[zxid] = proposal
        self.counts.proposals += 1
        out.append.append(txn)
        packet = QuorumPacket(PacketType.PROPOSAL, zxid, data)
        for h in self.handlers.values():
            if h.forwarding and not h.observer and h.state is not HandlerState.CLOSED:
                self._send(out, h, packet)

    def on_log_synced(self, out: ReadyBuilder, zxid: int, now: float) -> None:
        """Our own log is durable up to ``zxid``: our ACK of those proposals
        (``AckRequestProcessor``)."""
        if zxid <= self.last_synced:
            return
        first = self.last_synced
        self.last_synced = zxid
        if self._own_newleader_ack and zxid >= self.prior_log_zxid:
            self._own_newleader_ack = False
            self._newleader_ack(out, self.settings.sid, self.newleader_zxid, now)
        if self.phase is not LeaderPhase.BROADCAST:
            return
        for z in sorted(z for z in self.outstanding if first < z <= zxid):
            self._process_ack(out, self.settings.sid, z, now)

    def _process_ack(self, out: ReadyBuilder, sid: int, zxid: int, now: float) -> None:
        """``Leader#processAck``."""
        if not self.allowed_to_commit:
            return  # the last commit was a leader change: the new leader commits
        if zxid_counter(zxid) == 0:
            return  # a NEWLEADER ACK arriving in broadcast
        if not self.outstanding or zxid <= self.last_committed:
            return
        p = self.outstanding.get(zxid)
        if p is None:
            log.warning(
                "Trying to commit future proposal: zxid 0x%s from sid %s", zxid_hex(zxid), sid
            )
            return
        every = self.settings.ack_logging_frequency
        if every > 0 and zxid % every == 0:
            self._latency(out, LatencyKind.ACK, sid, p.txn, now)
        verifiers = p.verifiers
        if len(verifiers) == 1:
            if sid in verifiers[0].voting_members:
                p.acks.add(sid)
        elif any(sid in v.voting_members for v in verifiers):
            p.acks.add(sid)
        while self.allowed_to_commit and self._try_to_commit(out, zxid, now):
            zxid += 1
            if zxid not in self.outstanding:
                break

    def _latency(
        self, out: ReadyBuilder, kind: LatencyKind, sid: int | None, txn: Txn, now: float
    ) -> None:
        """``Request#logLatency``: wall ms since the txn's header time, when not negative."""
        ms = self._clock(now) - txn.header.time
        if ms >= 0:
            out.outcomes.append(ProposalLatency(kind, sid, ms))

    def _try_to_commit(self, out: ReadyBuilder, zxid: int, now: float) -> bool:
        """``Leader#tryToCommit``: strictly in zxid order, once a quorum (with us) acked."""
        if zxid - 1 in self.outstanding:
            return False
        p = self.outstanding[zxid]
        if not self._all_quorums(p.verifiers, p.acks):
            return False
        if zxid != self.last_committed + 1:
            log.warning(
                "Commiting zxid 0x%s from sid %s not first!",
                zxid_hex(zxid),
                self.settings.sid,
            )
        del self.outstanding[zxid]
        self.last_committed = zxid
        self.counts.commits += 1
        commit = QuorumPacket(PacketType.COMMIT, zxid)
        inform_type, inform_prefix = PacketType.INFORM, b""
        if p.config is not None:
            designated = self._designated_leader(p.config, p.acks, zxid)
            self.m.activate(out, p.config, leader=self.settings.sid, designated=designated)
            if designated != self.settings.sid:
                log.info(
                    "leader %d: committing a reconfiguration; leader %d is designated, "
                    "this one commits nothing more",
                    self.settings.sid,
                    designated,
                )
                self.allowed_to_commit = False
            commit = QuorumPacket(PacketType.COMMITANDACTIVATE, zxid, pack_long(designated))
            inform_type, inform_prefix = PacketType.INFORMANDACTIVATE, pack_long(designated)
        else:
            self._latency(out, LatencyKind.QUORUM_ACK, None, p.txn, now)
        inform: QuorumPacket | None = None
        for h in self.handlers.values():
            if not h.forwarding or h.state is HandlerState.CLOSED:
                continue
            if h.observer:
                if inform is None:
                    data = inform_prefix + encode_txn(p.txn)
                    inform = QuorumPacket(inform_type, zxid, data)
                self._send(out, h, inform)
            else:
                self._send(out, h, commit)
        effects = apply_txn(self.db.tree, p.txn, self.db.apply)
        out.outcomes.append(Applied(p.txn, effects))
        self.changes.applied(zxid)
        self._committed_session_change(p.txn)
        for conn in self.pending_syncs.pop(zxid, ()):
            if conn == LOCAL_CONN:
                out.outcomes.append(SyncAnswered())
                continue
            waiting = self.handlers.get(conn)
            if waiting is not None and waiting.state is not HandlerState.CLOSED:
                self._send(out, waiting, QuorumPacket(PacketType.SYNC, 0))
        return True

    def _committed_session_change(self, txn: Txn) -> None:
        """``SessionTracker#commitSession`` / ``removeSession`` as the txn commits."""
        h, sessions = txn.header, self.sessions
        if sessions is None:
            return
        if h.type == OpCode.CREATE_SESSION and isinstance(txn.record, CreateSessionTxn):
            sessions.commit_session(h.client_id, txn.record.timeout)
        elif h.type == OpCode.CLOSE_SESSION:
            sessions.remove_session(h.client_id)

    def submit(self, out: ReadyBuilder, request: PrepRequest, now: float) -> bool:
        """``PrepRequestProcessor``: ``request`` becomes a txn (or an error txn, which
        takes its zxid too) and is proposed; False when it needs none (a read) or the
        leader cannot propose (not in broadcast, or the zxid counter would roll over)."""
        if self.phase is not LeaderPhase.BROADCAST or self.sessions is None:
            return False
        clock = self._clock(now)
        reconfig = None
        if request.type == OpCode.RECONFIG:
            m = self.m
            reconfig = ReconfigContext(
                m.reconfig_enabled,
                m.standalone_enabled,
                m.current,
                m.last_seen,
                self.is_quorum_synced,
            )
        result = self.prep.prepare(
            request,
            zxid=self.next_zxid(),
            time=int(clock),
            now=clock,
            tree=self.db.tree,
            changes=self.changes,
            sessions=self.sessions,
            digests=self._digests,
            reconfig=reconfig,
        )
        if result.txn is None:
            return False
        try:
            self.propose(out, result.txn, now)
        except XidRolloverError:
            return False
        return True

    def _check_containers(self, out: ReadyBuilder, now: float) -> None:
        """``ContainerManager#checkContainers``: a ``deleteContainer`` for every empty
        container that had children and every expired TTL node without children."""
        self._next_container_check = now + self.settings.container_check_interval_ms
        wall = int(self._clock(now))
        never_used = self.settings.container_max_never_used_ms
        for path in self.db.tree.container_candidates(wall, never_used):
            request = PrepRequest(
                0, 0, OpCode.DELETE_CONTAINER, DeleteContainerRequest(path), internal=True
            )
            self.submit(out, request, now)

    def _on_request(
        self, out: ReadyBuilder, h: LearnerHandler, p: QuorumPacket, r: RequestHeader, now: float
    ) -> None:
        """A learner forwards a client's write or session request (``Leader.REQUEST``),
        ``r`` its decoded header."""
        request = PrepRequest.decode(
            r.session_id, r.cxid, r.type, r.request, tuple(p.authinfo or ()), owner=h.conn
        )
        self.submit(out, request, now)

    # -- our own clients (core/server.py through the peer core)

    def client_write(
        self,
        out: ReadyBuilder,
        session_id: int,
        cxid: int,
        op: int,
        body: bytes,
        auth: tuple[Id, ...],
        now: float,
    ) -> None:
        """A request of one of our own clients (``owner`` is this server)."""
        if op == OpCode.SYNC:
            if not self.outstanding:
                out.outcomes.append(SyncAnswered())
            else:
                self.pending_syncs.setdefault(self.last_proposed, []).append(LOCAL_CONN)
            return
        request = PrepRequest.decode(session_id, cxid, op, body, auth, owner=LOCAL_OWNER)
        self.submit(out, request, now)

    def revalidate_local(
        self, out: ReadyBuilder, session_id: int, timeout: int, now: float
    ) -> None:
        valid = self.sessions is not None and self.sessions.revalidate(
            session_id, timeout, LOCAL_OWNER, self._clock(now)
        )
        out.outcomes.append(Revalidated(session_id, valid))

    def touch_local(self, touches: Iterable[tuple[int, int]], now: float) -> None:
        if self.sessions is not None:
            for session_id, timeout in touches:
                self.sessions.touch_session(session_id, timeout, self._clock(now))

    def _on_sync_request(self, out: ReadyBuilder, h: LearnerHandler) -> None:
        """``Leader#processSync``: answer once every proposal made so far committed."""
        if not self.outstanding:
            self._send(out, h, QuorumPacket(PacketType.SYNC, 0))
        else:
            self.pending_syncs.setdefault(self.last_proposed, []).append(h.conn)

    def _on_broadcast(
        self, out: ReadyBuilder, h: LearnerHandler, p: QuorumPacket, now: float
    ) -> None:
        t = p.type
        if t == PacketType.ACK:
            if h.sid is not None and not h.observer:
                self._process_ack(out, h.sid, p.zxid, now)
            return
        if t == PacketType.PING:
            touches = decode_ping_sessions(p.data)
            if touches and self.sessions is not None:
                self.sessions.touch_from_learner(touches, self._clock(now))
            return
        if t == PacketType.REVALIDATE:
            session_id, timeout = decode_revalidate_request(p.data)
            valid = self.sessions is not None and self.sessions.revalidate(
                session_id, timeout, h.conn, self._clock(now)
            )
            reply = encode_revalidate_reply(session_id, valid)
            self._send(out, h, QuorumPacket(PacketType.REVALIDATE, p.zxid, reply))
            return
        if t == PacketType.REQUEST:
            request = decode_request(p.data)
            if request.type == OpCode.SYNC:
                self._on_sync_request(out, h)
                return
            self._on_request(out, h, p, request, now)
            return
        log.warning(
            "leader %d: unexpected %s from sid %s", self.settings.sid, packet_type_name(t), h.sid
        )

    # -- time ----------------------------------------------------------------------------

    def on_tick(self, out: ReadyBuilder, now: float) -> None:
        if self.phase is LeaderPhase.STOPPED:
            return
        for h in list(self.handlers.values()):
            if now >= h.read_deadline:
                self._close(out, h, CloseReason.READ_TIMEOUT, "Read timed out")
        if now >= self._phase_deadline:
            if self.phase is LeaderPhase.DISCOVERY:
                self.fail(
                    out,
                    PhaseEndReason.DISCOVERY_TIMEOUT,
                    "Timeout while waiting for epoch from quorum",
                )
                return
            if self.phase is LeaderPhase.WAIT_EPOCH_ACKS:
                self.fail(
                    out,
                    PhaseEndReason.DISCOVERY_TIMEOUT,
                    "Timeout while waiting for epoch to be acked by quorum",
                )
                return
            if self.phase is LeaderPhase.WAIT_NEWLEADER_ACKS:
                self.fail(
                    out,
                    PhaseEndReason.DISCOVERY_TIMEOUT,
                    "Waiting for a quorum of followers, only synced with sids: [ "
                    f"{sorted(self.newleader_acks)} ]",
                )
                return
        if self.phase is LeaderPhase.BROADCAST and self.sessions is not None:
            for session in self.sessions.expired(self._clock(now)):
                log.info(
                    "Expiring session 0x%x, timeout of %dms exceeded",
                    session.session_id,
                    session.timeout,
                )
                closing = PrepRequest(session.session_id, 0, OpCode.CLOSE_SESSION, internal=True)
                self.submit(out, closing, now)
            if now >= self._next_container_check:
                self._check_containers(out, now)
        if self.phase is LeaderPhase.BROADCAST and not self.allowed_to_commit:
            self.fail(
                out,
                PhaseEndReason.RECONFIG,
                "a reconfig designated another leader; this one leads no more",
            )
            return
        if self.phase is LeaderPhase.BROADCAST and now >= self._next_wake:
            self._next_wake = max(self._next_wake + self._tick_ms / 2, now)
            if not self._tick_skip:
                self.tick += 1
                synced = self.synced_sids()
                if not all(v.contains_quorum(synced) for v in self.m.verifiers()):
                    # 3.8 lists the voters only (SyncedLearnerTracker#addAck skips observers).
                    voters = [s for s in synced if s in self.verifier.voting_members]
                    self.fail(
                        out,
                        PhaseEndReason.NOT_SYNCED,
                        f"Not sufficient followers synced, only synced with sids: [ {voters} ]",
                    )
                    return
            self._tick_skip = not self._tick_skip
            ping = QuorumPacket(PacketType.PING, self.last_proposed)
            for h in self.handlers.values():
                if h.sender_started and h.state is not HandlerState.CLOSED:
                    self._send(out, h, ping)
