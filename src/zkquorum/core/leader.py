"""The leader side of the quorum port, as a pure state machine (``Leader#lead`` and one
``LearnerHandler`` per connection, folded into one object).

Facts: ``docs/spec/quorum-config-and-zab.md`` B2 (handshake), B3 (heartbeats, failure
detection); 3.8.0 ``Leader#lead``, ``#getEpochToPropose``, ``#waitForEpochAck``,
``#waitForNewLeaderAck``, ``LearnerHandler#run``, ``#syncFollower``,
``#queueCommittedProposals``.

    leader = Leader(LeaderSettings(...), accepted_epoch=.., current_epoch=.., tree=.., history=..)
    actions = leader.start(now)
    actions = leader.connected(conn, now)          # a learner connected (conn: any int)
    actions = leader.receive(conn, packet, now)    # a packet from that learner
    actions = leader.disconnected(conn, now)
    actions = leader.poll(now)                     # when now >= leader.next_deadline()

Phases: DISCOVERY (collect FOLLOWERINFO/OBSERVERINFO until a quorum of participants, with
us, connected: epoch = max(acceptedEpoch) + 1, written as acceptedEpoch) -> WAIT_EPOCH_ACKS
(a quorum of ACKEPOCH; currentEpoch written) -> WAIT_NEWLEADER_ACKS (each learner synced
with DIFF/TRUNC/SNAP, then NEWLEADER; a quorum of ACKs) -> BROADCAST (``Established``,
UPTODATE to every learner, PING every tickTime/2, the synced check every tickTime) ->
STOPPED (``Failed``: the peer goes back to LOOKING).  Each wait is bounded by initLimit
ticks.  A learner read timeout is initLimit ticks until its NEWLEADER ACK, syncLimit
ticks after it.

Decision (issue 6): a learner whose sid is not in the configuration is refused with a log
line; 3.8 accepts and syncs it without counting it (spec A3).
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from zkquorum.config.verifier import QuorumVerifier
from zkquorum.core.datatree import DataTree
from zkquorum.core.zab import (
    Action,
    Close,
    Established,
    Failed,
    PersistAcceptedEpoch,
    PersistCurrentEpoch,
    Send,
    SendSnapshot,
)
from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.quorum import (
    ZAB_PROTOCOL_VERSION,
    PacketType,
    QuorumPacket,
    decode_int_payload,
    decode_learner_info,
    decode_ping_sessions,
    decode_revalidate_request,
    encode_config_payload,
    encode_int_payload,
    encode_revalidate_reply,
    packet_type_name,
)
from zkquorum.wire.txn import Txn, encode_txn
from zkquorum.wire.zxid import make_zxid, zxid_counter, zxid_epoch, zxid_hex

log = logging.getLogger(__name__)

INF = float("inf")


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


@dataclass(frozen=True, slots=True)
class LeaderSettings:
    sid: int
    tick_time_ms: int
    init_limit: int
    sync_limit: int
    verifier: QuorumVerifier
    config_text: str
    """NEWLEADER's data: the last-seen config string (``Leader#getQuorumVerifierBytes``)."""


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
    sync_mode: str = ""
    inbox: deque[QuorumPacket] = field(default_factory=deque)


@dataclass(frozen=True, slots=True)
class SyncPlan:
    mode: str  # "DIFF", "TRUNC" or "SNAP"
    packets: tuple[QuorumPacket, ...]


def plan_sync(peer_last_zxid: int, last_zxid: int, history: Sequence[Txn]) -> SyncPlan:
    """``LearnerHandler#syncFollower`` over the committed log ``history`` (zxid order)."""
    if history:
        min_c, max_c = history[0].header.zxid, history[-1].header.zxid
    else:
        min_c = max_c = last_zxid
    new_epoch_zxid = zxid_counter(peer_last_zxid) == 0
    if peer_last_zxid == last_zxid:
        return SyncPlan("DIFF", (QuorumPacket(PacketType.DIFF, peer_last_zxid),))
    if peer_last_zxid > max_c and not new_epoch_zxid:
        return SyncPlan("TRUNC", (QuorumPacket(PacketType.TRUNC, max_c),))
    if min_c <= peer_last_zxid <= max_c:
        mode, packets, need_op = _walk(history, peer_last_zxid, max_c)
        if not need_op:
            return SyncPlan(mode, tuple(packets))
        log.warning(
            "Unhandled scenario for peer zxid 0x%s; falling back to a snapshot",
            zxid_hex(peer_last_zxid),
        )
    return SyncPlan("SNAP", ())


def _walk(history: Sequence[Txn], peer: int, max_c: int) -> tuple[str, list[QuorumPacket], bool]:
    """``LearnerHandler#queueCommittedProposals``."""
    new_epoch_zxid = zxid_counter(peer) == 0
    need_op = True
    mode = "DIFF"
    queued = peer
    prev = -1
    out: list[QuorumPacket] = []
    for txn in history:
        z = txn.header.zxid
        if z < peer:
            prev = z
            continue
        if need_op:
            if z == peer:
                out.append(QuorumPacket(PacketType.DIFF, max_c))
                need_op = False
                continue
            if new_epoch_zxid:
                out.append(QuorumPacket(PacketType.DIFF, max_c))
                need_op = False
            elif z > peer:
                if zxid_epoch(z) != zxid_epoch(peer):
                    log.warning("Cannot send TRUNC to peer: peer zxid is from different epoch")
                    return mode, out, True
                out.append(QuorumPacket(PacketType.TRUNC, prev))
                mode = "TRUNC"
                need_op = False
        if z <= queued:
            continue
        out.append(QuorumPacket(PacketType.PROPOSAL, z, encode_txn(txn)))
        out.append(QuorumPacket(PacketType.COMMIT, z))
        queued = z
    if need_op and new_epoch_zxid:
        out.append(QuorumPacket(PacketType.DIFF, max_c))
        need_op = False
    return mode, out, need_op


class Leader:
    def __init__(
        self,
        settings: LeaderSettings,
        *,
        accepted_epoch: int,
        current_epoch: int,
        tree: DataTree,
        history: Sequence[Txn] = (),
    ) -> None:
        self.settings = settings
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.tree = tree
        self.history = list(history)
        self.phase = LeaderPhase.NEW
        self.epoch = -1
        self.handlers: dict[int, LearnerHandler] = {}
        self.connecting: set[int] = set()
        self.electing: set[int] = set()
        self.newleader_acks: set[int] = set()
        self.tick = 0
        self.failure: str | None = None
        self._summary = (current_epoch, tree.last_processed_zxid)
        self._phase_deadline = INF
        self._next_wake = INF
        self._tick_skip = True

    # -- helpers -----------------------------------------------------------------------

    @property
    def _tick_s(self) -> float:
        return self.settings.tick_time_ms / 1000.0

    @property
    def established(self) -> bool:
        return self.phase is LeaderPhase.BROADCAST

    @property
    def last_zxid(self) -> int:
        return self.tree.last_processed_zxid

    @property
    def newleader_zxid(self) -> int:
        return make_zxid(self.epoch, 0)

    def _is_participant(self, sid: int | None) -> bool:
        return sid is not None and sid in self.settings.verifier.voting_members

    def _quorum(self, sids: Iterable[int]) -> bool:
        sids = set(sids)
        return self.settings.sid in sids and self.settings.verifier.contains_quorum(sids)

    def synced_sids(self) -> list[int]:
        """Us and every live learner within its ack deadline (``LearnerHandler#synced``)."""
        sids = {self.settings.sid}
        for h in self.handlers.values():
            alive = h.sid is not None and h.state is not HandlerState.CLOSED
            if alive and h.sid is not None and self.tick <= h.tick_of_next_ack_deadline:
                sids.add(h.sid)
        return sorted(sids)

    def next_deadline(self) -> float:
        times = [self._phase_deadline, self._next_wake]
        times.extend(h.read_deadline for h in self.handlers.values())
        return min(times)

    def _fail(self, reason: str) -> list[Action]:
        if self.phase is LeaderPhase.STOPPED:
            return []
        log.warning("leader %d: shutdown: %s", self.settings.sid, reason)
        self.phase = LeaderPhase.STOPPED
        self.failure = reason
        self._phase_deadline = self._next_wake = INF
        actions: list[Action] = []
        for h in self.handlers.values():
            if h.state is not HandlerState.CLOSED:
                h.state = HandlerState.CLOSED
                actions.append(Close(h.conn, "leader shutdown"))
            h.read_deadline = INF
        actions.append(Failed(reason))
        return actions

    def _close(self, h: LearnerHandler, reason: str) -> list[Action]:
        if h.state is HandlerState.CLOSED:
            return []
        log.warning(
            "leader %d: closing learner connection %d (sid %s): %s",
            self.settings.sid,
            h.conn,
            h.sid,
            reason,
        )
        h.state = HandlerState.CLOSED
        h.read_deadline = INF
        h.inbox.clear()
        return [Close(h.conn, reason)]

    def _set_state(self, h: LearnerHandler, state: HandlerState, now: float) -> None:
        h.state = state
        if state in _READING:
            limit = (
                self.settings.sync_limit
                if state is HandlerState.BROADCAST
                else (self.settings.init_limit)
            )
            h.read_deadline = now + limit * self._tick_s
        else:
            h.read_deadline = INF

    # -- events ------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        if self.phase is not LeaderPhase.NEW:
            raise RuntimeError("Leader.start called twice")
        self.phase = LeaderPhase.DISCOVERY
        self._phase_deadline = now + self.settings.init_limit * self._tick_s
        return self._propose_epoch(self.settings.sid, self.accepted_epoch, now)

    def stop(self, reason: str = "closed") -> list[Action]:
        return self._fail(reason)

    def connected(self, conn: int, now: float) -> list[Action]:
        if self.phase is LeaderPhase.STOPPED:
            return [Close(conn, "leader shutdown")]
        h = LearnerHandler(conn)
        h.tick_of_next_ack_deadline = (
            self.tick + self.settings.init_limit + (self.settings.sync_limit)
        )
        self.handlers[conn] = h
        self._set_state(h, HandlerState.WAIT_INFO, now)
        return []

    def disconnected(self, conn: int, now: float) -> list[Action]:
        h = self.handlers.pop(conn, None)
        if h is not None and h.state is not HandlerState.CLOSED:
            log.info("leader %d: learner sid %s went away", self.settings.sid, h.sid)
        return []

    def receive(self, conn: int, packet: QuorumPacket, now: float) -> list[Action]:
        h = self.handlers.get(conn)
        if h is None or h.state is HandlerState.CLOSED or self.phase is LeaderPhase.STOPPED:
            return []
        h.inbox.append(packet)
        return self._pump(h, now)

    def _pump(self, h: LearnerHandler, now: float) -> list[Action]:
        actions: list[Action] = []
        while h.inbox and h.state in _READING and self.phase is not LeaderPhase.STOPPED:
            packet = h.inbox.popleft()
            if h.state is HandlerState.BROADCAST:
                h.tick_of_next_ack_deadline = self.tick + self.settings.sync_limit
            try:
                actions.extend(self._handle(h, packet, now))
            except QuorumProtocolError as exc:
                actions.extend(self._close(h, f"bad packet: {exc}"))
        return actions

    def _handle(self, h: LearnerHandler, p: QuorumPacket, now: float) -> list[Action]:
        if h.state is HandlerState.WAIT_INFO:
            return self._on_info(h, p, now)
        if h.state is HandlerState.WAIT_ACKEPOCH:
            return self._on_ackepoch(h, p, now)
        if h.state is HandlerState.WAIT_ACK:
            return self._on_newleader_ack(h, p, now)
        self._set_state(h, HandlerState.BROADCAST, now)
        return self._on_broadcast(h, p)

    # -- discovery ---------------------------------------------------------------------

    def _on_info(self, h: LearnerHandler, p: QuorumPacket, now: float) -> list[Action]:
        if p.type not in (PacketType.FOLLOWERINFO, PacketType.OBSERVERINFO):
            return self._close(
                h, f"First packet {packet_type_name(p.type)} is not FOLLOWERINFO or OBSERVERINFO!"
            )
        info = decode_learner_info(p.data)
        verifier = self.settings.verifier
        if info.server_id not in verifier.all_members:
            log.warning(
                "leader %d: refusing learner sid %d: it is not in the current config "
                "(ZooKeeper 3.8 would sync it without counting it)",
                self.settings.sid,
                info.server_id,
            )
            return self._close(h, f"sid {info.server_id} is not in the current config")
        if info.server_id == self.settings.sid:
            return self._close(h, f"a learner claims our own sid {info.server_id}")
        if info.protocol_version < ZAB_PROTOCOL_VERSION:
            return self._close(h, f"pre-ZAB-1.0 learner (protocol 0x{info.protocol_version:x})")
        if info.config_version > verifier.version:
            return self._close(
                h, "Follower is ahead of the leader (has a later activated configuration)"
            )
        h.sid = info.server_id
        h.observer = p.type == PacketType.OBSERVERINFO
        h.accepted_epoch = zxid_epoch(p.zxid)
        self._set_state(h, HandlerState.WAIT_EPOCH, now)
        return self._propose_epoch(h.sid, h.accepted_epoch, now)

    def _propose_epoch(self, sid: int, last_accepted: int, now: float) -> list[Action]:
        """``Leader#getEpochToPropose``."""
        if self.phase is not LeaderPhase.DISCOVERY:
            return self._release_epoch(now)  # already chosen: answer at once
        if last_accepted >= self.epoch:
            self.epoch = last_accepted + 1
        if self._is_participant(sid) or sid == self.settings.sid:
            self.connecting.add(sid)
        if not self._quorum(self.connecting):
            return []
        self.accepted_epoch = self.epoch
        self.phase = LeaderPhase.WAIT_EPOCH_ACKS
        self._phase_deadline = now + self.settings.init_limit * self._tick_s
        log.info("leader %d: new epoch %d", self.settings.sid, self.epoch)
        actions: list[Action] = [PersistAcceptedEpoch(self.epoch)]
        actions.extend(self._release_epoch(now))
        # The leader's own waitForEpochAck.
        actions.extend(self._epoch_ack(None, self.current_epoch, self.last_zxid, now))
        return actions

    def _release_epoch(self, now: float) -> list[Action]:
        actions: list[Action] = []
        data = encode_int_payload(ZAB_PROTOCOL_VERSION)
        for h in self.handlers.values():
            if h.state is HandlerState.WAIT_EPOCH:
                actions.append(
                    Send(QuorumPacket(PacketType.LEADERINFO, self.newleader_zxid, data), h.conn)
                )
                self._set_state(h, HandlerState.WAIT_ACKEPOCH, now)
        return actions

    def _on_ackepoch(self, h: LearnerHandler, p: QuorumPacket, now: float) -> list[Action]:
        if p.type != PacketType.ACKEPOCH:
            return self._close(h, f"First packet {packet_type_name(p.type)} is not ACKEPOCH")
        epoch = decode_int_payload(p.data)
        h.peer_last_zxid = p.zxid
        self._set_state(h, HandlerState.WAIT_EPOCH_QUORUM, now)
        return self._epoch_ack(h, epoch, p.zxid, now)

    def _epoch_ack(
        self, h: LearnerHandler | None, epoch: int, zxid: int, now: float
    ) -> list[Action]:
        """``Leader#waitForEpochAck`` for one caller (``h`` None: the leader itself)."""
        actions: list[Action] = []
        if self.phase is LeaderPhase.WAIT_EPOCH_ACKS:
            sid = self.settings.sid if h is None else h.sid
            if epoch != -1 and h is not None:
                leader_epoch, leader_zxid = self._summary
                if epoch > leader_epoch or (epoch == leader_epoch and zxid > leader_zxid):
                    return self._close(
                        h,
                        f"Follower is ahead of the leader, leader summary: {leader_epoch} "
                        f"(current epoch), {leader_zxid} (last zxid)",
                    )
            if (
                epoch != -1
                and zxid != -1
                and sid is not None
                and (self._is_participant(sid) or h is None)
            ):
                self.electing.add(sid)
            if not self._quorum(self.electing):
                return actions
            # The quorum acked: currentEpoch, then sync everyone who waits.
            self.current_epoch = self.epoch
            actions.append(PersistCurrentEpoch(self.epoch))
            self.phase = LeaderPhase.WAIT_NEWLEADER_ACKS
            self._phase_deadline = now + self.settings.init_limit * self._tick_s
            for other in list(self.handlers.values()):
                if other.state is HandlerState.WAIT_EPOCH_QUORUM:
                    actions.extend(self._sync(other, now))
            actions.extend(self._newleader_ack(self.settings.sid, self.newleader_zxid, now))
            return actions
        if h is not None and self.phase in (LeaderPhase.WAIT_NEWLEADER_ACKS, LeaderPhase.BROADCAST):
            return self._sync(h, now)
        return actions

    # -- synchronization ---------------------------------------------------------------

    def _sync(self, h: LearnerHandler, now: float) -> list[Action]:
        plan = plan_sync(h.peer_last_zxid, self.last_zxid, self.history)
        h.sync_mode = plan.mode
        log.info("leader %d: syncing sid %s with %s", self.settings.sid, h.sid, plan.mode)
        actions: list[Action] = []
        if plan.mode == "SNAP":
            actions.append(SendSnapshot(self.last_zxid, self.tree.to_snapshot(), h.conn))
        actions.extend(Send(p, h.conn) for p in plan.packets)
        config = encode_config_payload(self.settings.config_text)
        actions.append(
            Send(QuorumPacket(PacketType.NEWLEADER, self.newleader_zxid, config), h.conn)
        )
        h.sender_started = True
        self._set_state(h, HandlerState.WAIT_ACK, now)
        actions.extend(self._pump(h, now))
        return actions

    def _on_newleader_ack(self, h: LearnerHandler, p: QuorumPacket, now: float) -> list[Action]:
        if p.type != PacketType.ACK:
            return self._close(
                h,
                "Next packet was supposed to be an ACK, but received packet: "
                f"{packet_type_name(p.type)}",
            )
        self._set_state(h, HandlerState.WAIT_STARTUP, now)
        actions = self._newleader_ack(h.sid, p.zxid, now)
        if self.phase is LeaderPhase.BROADCAST and h.state is HandlerState.WAIT_STARTUP:
            actions.extend(self._uptodate(h, now))
        return actions

    def _newleader_ack(self, sid: int | None, zxid: int, now: float) -> list[Action]:
        """``Leader#waitForNewLeaderAck`` for one caller."""
        if self.phase is not LeaderPhase.WAIT_NEWLEADER_ACKS:
            return []
        if zxid != self.newleader_zxid:
            log.error(
                "NEWLEADER ACK from sid: %s is from a different epoch - current 0x%s received 0x%s",
                sid,
                zxid_hex(self.newleader_zxid),
                zxid_hex(zxid),
            )
            return []
        if sid is not None and (self._is_participant(sid) or sid == self.settings.sid):
            self.newleader_acks.add(sid)
        if not self._quorum(self.newleader_acks):
            return []
        return self._establish(now)

    def _establish(self, now: float) -> list[Action]:
        self.phase = LeaderPhase.BROADCAST
        self._phase_deadline = INF
        self.tree.last_processed_zxid = self.newleader_zxid  # Leader#startZkServer
        self._next_wake = now + self._tick_s / 2
        self._tick_skip = True
        log.info(
            "leader %d: established in epoch %d with %s",
            self.settings.sid,
            self.epoch,
            sorted(self.newleader_acks),
        )
        actions: list[Action] = [Established(self.epoch)]
        for h in list(self.handlers.values()):
            if h.state is HandlerState.WAIT_STARTUP:
                actions.extend(self._uptodate(h, now))
        return actions

    def _uptodate(self, h: LearnerHandler, now: float) -> list[Action]:
        self._set_state(h, HandlerState.BROADCAST, now)
        h.tick_of_next_ack_deadline = self.tick + self.settings.sync_limit
        actions: list[Action] = [Send(QuorumPacket(PacketType.UPTODATE, -1), h.conn)]
        actions.extend(self._pump(h, now))
        return actions

    # -- broadcast ---------------------------------------------------------------------

    def _on_broadcast(self, h: LearnerHandler, p: QuorumPacket) -> list[Action]:
        t = p.type
        if t == PacketType.ACK:
            return []  # no proposals of ours; counter-0 ACKs are ignored anyway
        if t == PacketType.PING:
            decode_ping_sessions(p.data)
            return []
        if t == PacketType.REVALIDATE:
            session_id, _timeout = decode_revalidate_request(p.data)
            reply = encode_revalidate_reply(session_id, False)
            return [Send(QuorumPacket(PacketType.REVALIDATE, p.zxid, reply), h.conn)]
        if t == PacketType.REQUEST:
            log.info(
                "leader %d: ignoring a client REQUEST from sid %s (we serve no clients)",
                self.settings.sid,
                h.sid,
            )
            return []
        log.warning(
            "leader %d: unexpected %s from sid %s", self.settings.sid, packet_type_name(t), h.sid
        )
        return []

    # -- time ----------------------------------------------------------------------------

    def poll(self, now: float) -> list[Action]:
        if self.phase is LeaderPhase.STOPPED:
            return []
        actions: list[Action] = []
        for h in list(self.handlers.values()):
            if now >= h.read_deadline:
                actions.extend(self._close(h, "Read timed out"))
        if now >= self._phase_deadline:
            if self.phase is LeaderPhase.DISCOVERY:
                return actions + self._fail("Timeout while waiting for epoch from quorum")
            if self.phase is LeaderPhase.WAIT_EPOCH_ACKS:
                return actions + self._fail("Timeout while waiting for epoch to be acked by quorum")
            if self.phase is LeaderPhase.WAIT_NEWLEADER_ACKS:
                return actions + self._fail(
                    "Waiting for a quorum of followers, only synced with sids: [ "
                    f"{sorted(self.newleader_acks)} ]"
                )
        if self.phase is LeaderPhase.BROADCAST and now >= self._next_wake:
            self._next_wake = max(self._next_wake + self._tick_s / 2, now)
            if not self._tick_skip:
                self.tick += 1
                synced = self.synced_sids()
                if not self.settings.verifier.contains_quorum(synced):
                    # 3.8 lists the voters only (SyncedLearnerTracker#addAck skips observers).
                    voters = [s for s in synced if s in self.settings.verifier.voting_members]
                    return actions + self._fail(
                        f"Not sufficient followers synced, only synced with sids: [ {voters} ]"
                    )
            self._tick_skip = not self._tick_skip
            ping = QuorumPacket(PacketType.PING, self.newleader_zxid)
            for h in self.handlers.values():
                if h.sender_started and h.state is not HandlerState.CLOSED:
                    actions.append(Send(ping, h.conn))
        return actions
