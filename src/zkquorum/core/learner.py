"""The learner side of the quorum port (follower or observer), as a pure state machine.

Facts: ``docs/spec/quorum-config-and-zab.md`` B2 (handshake), B3 (heartbeats), B4 (the
other packets, 3.8.0 sync semantics); ``Learner#registerWithLeader``, ``#syncWithLeader``,
``Follower#processPacket``, ``Observer#processPacket``, ``SendAckRequestProcessor`` of 3.8.0.

Driven by :class:`zkquorum.core.peer.PeerCore` once the connection to the leader is up:
each ``on_*`` method takes the step's :class:`~zkquorum.core.ready.ReadyBuilder` and
``now`` (ms).  The read timeout is ``initLimit`` ticks until NEWLEADER and ``syncLimit``
ticks after it (``Learner#createSocket``, ``#syncWithLeader``); its expiry, a closed
connection or a protocol error sets ``failure`` and the peer goes back to LOOKING.

Durability lives here: a PROPOSAL's ACK goes out only on the ``LogSynced`` that covers
it; the NEWLEADER ACK waits for the txns logged at NEWLEADER and, after a SNAP or TRUNC,
for the snapshot (``SnapshotWritten``).  Wire rules that 3.8 enforces: ACKEPOCH carries 4
bytes (our currentEpoch, or -1 when the epoch was already accepted); the NEWLEADER ACK
is the first packet after ACKEPOCH, so PINGs before UPTODATE are ignored; PING replies
carry an empty (not null) session table.  ACKs of txns received during the sync go out
after the UPTODATE ACK, as the 3.8.0 captures show (``tests/testdata/vectors/diff-sync``).
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass

from zkquorum.config.verifier import QuorumVerifier
from zkquorum.core.database import Database, SyncMode
from zkquorum.core.datatree import DataTree
from zkquorum.core.final import apply_txn
from zkquorum.core.membership import Membership, config_from_text
from zkquorum.core.ready import (
    Applied,
    PhaseEndReason,
    ReadyBuilder,
    Revalidated,
    SaveAcceptedEpoch,
    SaveCurrentEpoch,
    SendToLeader,
    SyncAnswered,
    TakeSnapshot,
    TruncateLog,
)
from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.jute import Id
from zkquorum.wire.quorum import (
    LearnerInfo,
    PacketType,
    QuorumMessage,
    QuorumPacket,
    decode_inform_and_activate,
    decode_int_payload,
    decode_proposal,
    decode_revalidate_reply,
    encode_int_payload,
    encode_learner_info,
    encode_ping_sessions,
    encode_revalidate_request,
)
from zkquorum.wire.reader import pack_int, pack_long
from zkquorum.wire.snapshot import Session as TouchedSession
from zkquorum.wire.snapshot import Snapshot, SnapshotSignature
from zkquorum.wire.txn import OpCode, SetDataTxn, Txn
from zkquorum.wire.zxid import make_zxid, zxid_epoch, zxid_hex

log = logging.getLogger(__name__)

INF = float("inf")

__all__ = ["Learner", "LearnerPhase", "LearnerSettings", "SyncMode"]


class LearnerPhase(enum.Enum):
    NEW = "new"
    WAIT_LEADERINFO = "discovery"
    WAIT_SYNC = "synchronization"
    WAIT_SNAPSHOT = "synchronization - snap"
    WAIT_SIGNATURE = "synchronization - signature"
    SYNCING = "synchronization - sync"
    WAIT_UPTODATE = "synchronization - newleader"
    BROADCAST = "broadcast"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LearnerSettings:
    sid: int
    tick_time_ms: int
    init_limit: int
    sync_limit: int
    observer: bool = False
    config_version: int = 0
    config_text: str = ""
    """Our own config string: /zookeeper/config after a SNAP (ZOOKEEPER-2819)."""


@dataclass(slots=True)
class _NewLeaderAck:
    """The NEWLEADER ACK, held until what it depends on is durable."""

    zxid: int
    log_up_to: int
    snapshot_zxid: int | None
    held: tuple[Txn, ...] = ()
    """The proposals received before NEWLEADER, logged once the snapshot is written."""


class Learner:
    def __init__(
        self,
        settings: LearnerSettings,
        database: Database,
        *,
        accepted_epoch: int,
        current_epoch: int,
        membership: Membership | None = None,
        leader: int | None = None,
    ) -> None:
        self.settings = settings
        self.db = database
        self.m = membership
        """The configs, shared with the peer core (``None``: no reconfig handling)."""
        self.leader = leader
        self._newleader_config: QuorumVerifier | None = None
        self._proposed_in_sync: QuorumVerifier | None = None
        """The newest config a reconfig PROPOSAL of this leader brought during the sync."""
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.last_logged_zxid = database.last_processed_zxid
        self.last_synced_zxid = -1
        self.prior_log_zxid = -1
        """The newest txn an earlier phase appended to our log that was not durable when
        this phase began: the NEWLEADER ACK waits for it too."""
        self.phase = LearnerPhase.NEW
        self.sync_mode = SyncMode.NONE
        self.last_sync_mode = SyncMode.NONE
        """How this session was synced (``sync_mode`` goes back to NONE at NEWLEADER)."""
        self.new_epoch = -1
        self.leader_config: str | None = None
        self.deadline = INF
        self.failure: tuple[PhaseEndReason, str] | None = None
        self.truncate_failed = False
        """A TRUNC went beyond what the database can undo: reload it from the files."""
        self._snap_zxid = 0
        self._write_to_txn_log = False
        self._snapshot_needed = True
        self._not_committed: deque[Txn] = deque()  # received during sync, not yet logged
        self._committed: deque[int] = deque()  # commits to apply after UPTODATE
        self._ack_after_uptodate: list[int] = []  # logged at NEWLEADER
        self._pending: deque[Txn] = deque()  # logged, waiting for their COMMIT
        self._unacked: deque[int] = deque()  # logged, their ACK waits for LogSynced
        self._newleader_ack: _NewLeaderAck | None = None
        self.touched: dict[int, int] = {}
        """Sessions our clients touched since the last PING reply (``LearnerSessionTracker``)."""

    # -- helpers -----------------------------------------------------------------------

    @property
    def established(self) -> bool:
        return self.phase is LearnerPhase.BROADCAST

    @property
    def pending(self) -> tuple[Txn, ...]:
        """Logged txns not committed yet (``FollowerZooKeeperServer.pendingTxns``)."""
        return tuple(self._pending)

    def _arm(self, now: float) -> None:
        limit = (
            self.settings.sync_limit
            if self.phase in (LearnerPhase.WAIT_UPTODATE, LearnerPhase.BROADCAST)
            else self.settings.init_limit
        )
        self.deadline = now + limit * self.settings.tick_time_ms

    def fail(self, reason: PhaseEndReason, detail: str) -> None:
        if self.phase is LearnerPhase.FAILED:
            return
        log.info("learner %d: leaving the leader: %s", self.settings.sid, detail)
        self.phase = LearnerPhase.FAILED
        self.failure = (reason, detail)
        self.deadline = INF

    @staticmethod
    def _ack(out: ReadyBuilder, zxid: int) -> None:
        out.messages.append(SendToLeader(QuorumPacket(PacketType.ACK, zxid)))

    # -- events ------------------------------------------------------------------------

    def start(self, out: ReadyBuilder, now: float) -> None:
        """The connection is up: FOLLOWERINFO / OBSERVERINFO (``Learner#registerWithLeader``)."""
        if self.phase is not LearnerPhase.NEW:
            raise RuntimeError("Learner.start called twice")
        s = self.settings
        ptype = PacketType.OBSERVERINFO if s.observer else PacketType.FOLLOWERINFO
        version = s.config_version if self.m is None else self.m.current.version
        info = encode_learner_info(LearnerInfo(s.sid, config_version=version))
        self.phase = LearnerPhase.WAIT_LEADERINFO
        self._arm(now)
        out.messages.append(
            SendToLeader(QuorumPacket(ptype, make_zxid(self.accepted_epoch, 0), info))
        )

    def on_tick(self, out: ReadyBuilder, now: float) -> None:
        if now >= self.deadline:
            self.fail(PhaseEndReason.READ_TIMEOUT, "Read timed out")

    def on_message(self, out: ReadyBuilder, msg: QuorumMessage, now: float) -> None:
        if self.phase in (LearnerPhase.FAILED, LearnerPhase.NEW):
            return
        try:
            self._receive(out, msg)
        except QuorumProtocolError as exc:
            self.fail(PhaseEndReason.PROTOCOL, f"bad packet from the leader: {exc}")
            return
        if self.failure is None:
            self._arm(now)

    def on_log_synced(self, out: ReadyBuilder, zxid: int, now: float) -> None:
        """Our log is durable up to ``zxid``: the ACKs that waited for it."""
        self.last_synced_zxid = max(self.last_synced_zxid, zxid)
        if self.phase is LearnerPhase.FAILED:
            return
        self._maybe_ack_newleader(out)
        while self._unacked and self._unacked[0] <= self.last_synced_zxid:
            self._ack(out, self._unacked.popleft())

    def on_snapshot_written(self, out: ReadyBuilder, zxid: int, ok: bool, now: float) -> None:
        ack = self._newleader_ack
        if ack is None or ack.snapshot_zxid != zxid or self.phase is LearnerPhase.FAILED:
            return
        if not ok:
            self.fail(PhaseEndReason.STORAGE, f"cannot write the snapshot 0x{zxid_hex(zxid)}")
            return
        ack.snapshot_zxid = None
        self._save_current_epoch(out)
        if ack.held:
            # Logged in the Ready that saves currentEpoch: the epoch file is written first.
            self._log(out, ack.held)
            self._ack_after_uptodate.extend(t.header.zxid for t in ack.held)
            ack.log_up_to = ack.held[-1].header.zxid
            ack.held = ()
        self._maybe_ack_newleader(out)

    def _save_current_epoch(self, out: ReadyBuilder) -> None:
        self.current_epoch = self.new_epoch
        out.hard_state.append(SaveCurrentEpoch(self.new_epoch))

    def _maybe_ack_newleader(self, out: ReadyBuilder) -> None:
        ack = self._newleader_ack
        if ack is None or ack.snapshot_zxid is not None:
            return
        if ack.log_up_to > self.last_synced_zxid:
            return
        self._newleader_ack = None
        self._ack(out, ack.zxid)

    def _receive(self, out: ReadyBuilder, msg: QuorumMessage) -> None:
        phase = self.phase
        if phase is LearnerPhase.WAIT_SNAPSHOT:
            if not isinstance(msg, Snapshot):
                self.fail(PhaseEndReason.PROTOCOL, "expected the snapshot after SNAP")
                return
            self._on_snapshot(msg)
            return
        if phase is LearnerPhase.WAIT_SIGNATURE:
            if not isinstance(msg, SnapshotSignature):
                self.fail(PhaseEndReason.PROTOCOL, "Missing signature")
                return
            self.phase = LearnerPhase.SYNCING
            return
        if not isinstance(msg, QuorumPacket):
            self.fail(PhaseEndReason.PROTOCOL, f"unexpected {type(msg).__name__} from the leader")
            return
        if phase is LearnerPhase.WAIT_LEADERINFO:
            self._on_leaderinfo(out, msg)
        elif phase is LearnerPhase.WAIT_SYNC:
            self._on_sync_start(out, msg)
        elif phase in (LearnerPhase.SYNCING, LearnerPhase.WAIT_UPTODATE):
            self._on_sync_packet(out, msg)
        else:
            self._on_broadcast(out, msg)

    # -- discovery ---------------------------------------------------------------------

    def _on_leaderinfo(self, out: ReadyBuilder, p: QuorumPacket) -> None:
        if p.type != PacketType.LEADERINFO:
            # 3.8 (ZAB 1.0 learner) reads anything else as a pre-1.0 NEWLEADER; we only
            # speak ZAB 1.0.
            self.fail(
                PhaseEndReason.PROTOCOL, f"First packet should have been LEADERINFO, got {p.type}"
            )
            return
        decode_int_payload(p.data)  # the leader's protocol version; 3.8 only logs it
        epoch = zxid_epoch(p.zxid)
        if epoch > self.accepted_epoch:
            self.accepted_epoch = epoch
            out.hard_state.append(SaveAcceptedEpoch(epoch))
            reply = self.current_epoch
        elif epoch == self.accepted_epoch:
            reply = -1  # already acked this epoch: not a vote
        else:
            self.fail(
                PhaseEndReason.REFUSED,
                f"Leaders epoch, {epoch} is less than accepted epoch, {self.accepted_epoch}",
            )
            return
        self.new_epoch = epoch
        self.phase = LearnerPhase.WAIT_SYNC
        ackepoch = QuorumPacket(
            PacketType.ACKEPOCH, self.last_logged_zxid, encode_int_payload(_int32(reply))
        )
        out.messages.append(SendToLeader(ackepoch))

    # -- synchronization ---------------------------------------------------------------

    def _on_sync_start(self, out: ReadyBuilder, p: QuorumPacket) -> None:
        if p.type == PacketType.DIFF:
            log.info(
                "learner %d: getting a diff from the leader 0x%s",
                self.settings.sid,
                zxid_hex(p.zxid),
            )
            self.sync_mode = self.last_sync_mode = SyncMode.DIFF
            self._snapshot_needed = False
            self._write_to_txn_log = True
            self.phase = LearnerPhase.SYNCING
        elif p.type == PacketType.SNAP:
            self.sync_mode = self.last_sync_mode = SyncMode.SNAP
            self._snap_zxid = p.zxid
            self.phase = LearnerPhase.WAIT_SNAPSHOT
        elif p.type == PacketType.TRUNC:
            log.warning("learner %d: truncating log to 0x%s", self.settings.sid, zxid_hex(p.zxid))
            self.sync_mode = self.last_sync_mode = SyncMode.TRUNC
            self.phase = LearnerPhase.SYNCING
            self._pending.clear()
            self._unacked.clear()
            out.hard_state.append(TruncateLog(p.zxid))
            # The log is drained, then cut: durable up to the cut and nothing above it
            # (txns logged again later are durable only at their own LogSynced).
            self.last_synced_zxid = p.zxid
            if not self.db.roll_back(p.zxid):
                # ZKDatabase#truncateLog reloads from the files; we undo in memory when
                # every txn above the target has its before-images, else the same.
                self.truncate_failed = True
                self.fail(
                    PhaseEndReason.TRUNCATE_BEYOND_UNDO,
                    f"cannot roll back to 0x{zxid_hex(p.zxid)} in memory; reloading",
                )
                return
            self.last_logged_zxid = p.zxid
        elif p.type != PacketType.PING:
            # 3.8 exits with code 12 here (ExitCode.QUORUM_PACKET_ERROR); we leave the leader.
            self.fail(PhaseEndReason.PROTOCOL, f"Got unexpected packet from leader: {p.type}")

    def _on_snapshot(self, snap: Snapshot) -> None:
        tree = DataTree.from_snapshot(snap, self._snap_zxid)
        text = self.settings.config_text if self.m is None else self.m.current_text
        tree.set_config(text)  # ZOOKEEPER-2819
        self.db.replace_tree(tree)
        self.last_logged_zxid = self._snap_zxid
        self._pending.clear()
        self._unacked.clear()
        self.phase = LearnerPhase.WAIT_SIGNATURE

    def _on_sync_packet(self, out: ReadyBuilder, p: QuorumPacket) -> None:
        t = p.type
        if t == PacketType.PROPOSAL:
            txn = decode_proposal(p.data)
            self._see(out, txn)
            self._not_committed.append(txn)
        elif t in (PacketType.COMMIT, PacketType.COMMITANDACTIVATE):
            if t == PacketType.COMMITANDACTIVATE and not self._activate(
                out, self._find(p.zxid), p.data
            ):
                return
            if self.phase is LearnerPhase.WAIT_UPTODATE:
                # Between NEWLEADER and UPTODATE: the proposals were logged at NEWLEADER;
                # the commit waits for UPTODATE (3.8's packetsCommitted; 3.8.0 dies of a
                # NullPointerException here instead, ZOOKEEPER-4394).
                self._committed.append(p.zxid)
                return
            if not self._not_committed:
                self.fail(
                    PhaseEndReason.PROTOCOL,
                    f"COMMIT 0x{zxid_hex(p.zxid)} without a proposal during sync",
                )
                return
            if not self._write_to_txn_log:
                head = self._not_committed[0]
                if head.header.zxid != p.zxid:
                    log.warning(
                        "Committing 0x%s, but next proposal is 0x%s",
                        zxid_hex(p.zxid),
                        zxid_hex(head.header.zxid),
                    )
                else:
                    self._apply(self._not_committed.popleft())
            else:
                self._committed.append(p.zxid)
        elif t in (PacketType.INFORM, PacketType.INFORMANDACTIVATE):
            if t == PacketType.INFORM:
                txn = decode_proposal(p.data)
            else:
                designated, txn = decode_inform_and_activate(p.data)
                if not self._activate(out, txn, pack_long(designated)):
                    return
            if not self._write_to_txn_log:
                self._apply(txn)
            else:
                self._not_committed.append(txn)
                self._committed.append(p.zxid)
        elif t == PacketType.NEWLEADER:
            if self.phase is LearnerPhase.WAIT_UPTODATE:
                log.warning("learner %d: a second NEWLEADER", self.settings.sid)
            self._on_newleader(out, p)
        elif t == PacketType.UPTODATE:
            if self.phase is not LearnerPhase.WAIT_UPTODATE:
                self.fail(PhaseEndReason.PROTOCOL, "UPTODATE before NEWLEADER (pre-ZAB-1.0 leader)")
                return
            self._on_uptodate(out)
        # PING and everything else: ignored until UPTODATE (B2 step 8).

    def _on_newleader(self, out: ReadyBuilder, p: QuorumPacket) -> None:
        if p.data is not None and len(p.data) > 1:
            self.leader_config = p.data.decode("utf-8", "replace")
            if self.m is not None and self.m.reconfig_enabled:
                self._newleader_config = config_from_text(self.leader_config)
                proposed = self._proposed_in_sync
                config = self._newleader_config
                if config is not None and (proposed is None or config.version >= proposed.version):
                    # An established leader's NEWLEADER carries the config in force there;
                    # a reconfig it proposed since (forwarded to us just before) stays the
                    # last seen, so that its quorum is still needed if we come to lead.
                    self.m.see(out, config)
        snapshot_zxid: int | None = None
        if self._snapshot_needed:
            snapshot_zxid = self.db.last_processed_zxid
            out.snapshot.append(TakeSnapshot(snapshot_zxid, sync=True))
            self._snapshot_needed = False
        if snapshot_zxid is None:
            self._save_current_epoch(out)
        # else 3.8's order (Learner#syncWithLeader): the snapshot is on disk before
        # currentEpoch says we are in the new epoch (on_snapshot_written).
        self._write_to_txn_log = True
        self.phase = LearnerPhase.WAIT_UPTODATE
        self.sync_mode = SyncMode.NONE
        log_up_to = self.prior_log_zxid
        held: tuple[Txn, ...] = ()
        if not self.settings.observer and self._not_committed:
            txns = tuple(self._not_committed)
            self._not_committed.clear()
            if snapshot_zxid is not None:
                # 3.8 logs them after the snapshot and currentEpoch: proposals of the new
                # epoch in the log while currentEpoch still names an older one make the
                # next start fail ("The current epoch, ..., is older than the last zxid").
                held = txns
            else:
                self._log(out, txns)
                self._ack_after_uptodate.extend(t.header.zxid for t in txns)
                log_up_to = txns[-1].header.zxid
        self._newleader_ack = _NewLeaderAck(p.zxid, log_up_to, snapshot_zxid, held)
        self._maybe_ack_newleader(out)

    def _on_uptodate(self, out: ReadyBuilder) -> None:
        config = self._newleader_config
        if (
            config is not None
            and self.m is not None
            and self.m.activate(out, config, leader=self.leader)
        ):
            self.fail(PhaseEndReason.RECONFIG, "changes proposed in reconfig")
            return
        self._ack(out, make_zxid(self.new_epoch, 0))
        self.phase = LearnerPhase.BROADCAST
        if not self.settings.observer:
            for z in self._ack_after_uptodate:
                self._ack(out, z)  # durable before the NEWLEADER ACK went out
            self._ack_after_uptodate.clear()
            if self._not_committed:
                txns = tuple(self._not_committed)
                self._not_committed.clear()
                self._log(out, txns)
                self._unacked.extend(t.header.zxid for t in txns)
                self.on_log_synced(out, self.last_synced_zxid, 0.0)
            while self._committed:
                failure = self._commit(self._committed.popleft(), out)
                if failure:
                    self.fail(PhaseEndReason.PROTOCOL, failure)
                    return
        else:
            applied: list[Txn] = []
            for txn in self._not_committed:
                if self._committed and self._committed[0] == txn.header.zxid:
                    self._committed.popleft()
                    applied.append(txn)
                else:
                    log.warning(
                        "Committing 0x%s, but next proposal is 0x%s",
                        zxid_hex(self._committed[0]) if self._committed else "-",
                        zxid_hex(txn.header.zxid),
                    )
            self._not_committed.clear()
            if applied:
                self._log(out, tuple(applied), pend=False)
                for txn in applied:
                    self._apply(txn)

    # -- broadcast ---------------------------------------------------------------------

    def _on_broadcast(self, out: ReadyBuilder, p: QuorumPacket) -> None:
        t = p.type
        if t == PacketType.PING:
            # Learner#ping: the sessions our clients touched since the last PING.
            table = tuple(TouchedSession(sid, timeout) for sid, timeout in self.touched.items())
            self.touched.clear()
            reply = QuorumPacket(PacketType.PING, p.zxid, encode_ping_sessions(table), p.authinfo)
            out.messages.append(SendToLeader(reply))
            return
        if t == PacketType.REVALIDATE:
            session_id, valid = decode_revalidate_reply(p.data)
            out.outcomes.append(Revalidated(session_id, valid))
            return
        if t == PacketType.SYNC:
            out.outcomes.append(SyncAnswered())
            return
        if self.settings.observer:
            if t in (PacketType.INFORM, PacketType.INFORMANDACTIVATE):
                designated: int | None = None
                if t == PacketType.INFORM:
                    txn = decode_proposal(p.data)
                else:
                    designated, txn = decode_inform_and_activate(p.data)
                self._log(out, (txn,), pend=False)
                self._apply(txn, out)
                if designated is not None:
                    self._activate(out, txn, pack_long(designated))
            elif t in (PacketType.PROPOSAL, PacketType.COMMIT):
                log.warning("observer %d: ignoring %s", self.settings.sid, t)
            return
        if t == PacketType.PROPOSAL:
            txn = decode_proposal(p.data)
            self._see(out, txn)
            self._log(out, (txn,))
            self._unacked.append(txn.header.zxid)
        elif t in (PacketType.COMMIT, PacketType.COMMITANDACTIVATE):
            head = self._pending[0] if self._pending else None
            failure = self._commit(p.zxid, out)
            if failure:
                self.fail(PhaseEndReason.PROTOCOL, failure)
            elif t == PacketType.COMMITANDACTIVATE:
                self._activate(out, head, p.data)
        elif t == PacketType.UPTODATE:
            log.error("learner %d: received an unexpected UPTODATE", self.settings.sid)
        else:
            log.warning("learner %d: unknown packet type %s", self.settings.sid, t)

    # -- reconfig ----------------------------------------------------------------------

    def _see(self, out: ReadyBuilder, txn: Txn) -> None:
        """A proposed reconfig: its config is the last seen."""
        if self.m is not None:
            config = _config_of(txn)
            if config is not None:
                self.m.see(out, config)
                if self.phase is not LearnerPhase.BROADCAST:
                    self._proposed_in_sync = config

    def _activate(self, out: ReadyBuilder, txn: Txn | None, data: bytes | None) -> bool:
        """COMMITANDACTIVATE / INFORMANDACTIVATE of ``txn``: its config in force, with the
        designated leader of ``data``.  False (and the phase failed) when our role or
        our leader changed."""
        if self.m is None or txn is None:
            return True
        config = _config_of(txn)
        if config is None:
            return True
        designated = decode_long_payload(data)
        if self.m.activate(out, config, leader=self.leader, designated=designated):
            self.fail(PhaseEndReason.RECONFIG, "changes proposed in reconfig")
            return False
        return True

    def _find(self, zxid: int) -> Txn | None:
        held = self._newleader_ack.held if self._newleader_ack is not None else ()
        for queue in (self._not_committed, held, self._pending):
            for txn in queue:
                if txn.header.zxid == zxid:
                    return txn
        return None

    # -- the log and the tree ----------------------------------------------------------

    def _log(self, out: ReadyBuilder, txns: tuple[Txn, ...], *, pend: bool = True) -> None:
        if pend:
            self._pending.extend(txns)
        for txn in txns:
            self.last_logged_zxid = max(self.last_logged_zxid, txn.header.zxid)
        out.append.extend(txns)

    def _commit(self, zxid: int, out: ReadyBuilder) -> str | None:
        if not self._pending:
            return f"Committing zxid 0x{zxid_hex(zxid)} but no txn is pending"
        head = self._pending[0]
        if head.header.zxid != zxid:
            # FollowerZooKeeperServer#commit: 3.8 exits with code 12.
            return (
                f"Committing zxid 0x{zxid_hex(zxid)} but next pending txn "
                f"0x{zxid_hex(head.header.zxid)}"
            )
        self._pending.popleft()
        self._apply(head, out)
        return None

    def _apply(self, txn: Txn, out: ReadyBuilder | None = None) -> None:
        """Apply a committed txn; in broadcast (``out``) the client side hears of it."""
        effects = apply_txn(self.db.tree, txn, self.db.apply)
        self.last_logged_zxid = max(self.last_logged_zxid, self.db.last_processed_zxid)
        if out is not None:
            out.outcomes.append(Applied(txn, effects))

    # -- the client side -----------------------------------------------------------------

    def forward(
        self,
        out: ReadyBuilder,
        session_id: int,
        cxid: int,
        op: int,
        body: bytes,
        auth: tuple[Id, ...],
    ) -> bool:
        """``Learner#request``: a client's write goes to the leader as a REQUEST."""
        if self.phase is not LearnerPhase.BROADCAST:
            return False
        data = pack_long(session_id) + pack_int(cxid) + pack_int(op) + body
        out.messages.append(SendToLeader(QuorumPacket(PacketType.REQUEST, -1, data, auth)))
        return True

    def revalidate(self, out: ReadyBuilder, session_id: int, timeout: int) -> bool:
        """``Learner#validateSession``: ask the leader whether a moving session is valid."""
        if self.phase is not LearnerPhase.BROADCAST:
            return False
        data = encode_revalidate_request(session_id, timeout)
        out.messages.append(SendToLeader(QuorumPacket(PacketType.REVALIDATE, -1, data)))
        return True

    def finish(self) -> None:
        """The phase is over: what we logged but never saw committed is applied, as 3.8's
        reload of the database from the log would (the next leader may TRUNC it)."""
        if self.truncate_failed:
            return
        while self._pending:
            txn = self._pending.popleft()
            if txn.header.zxid > self.db.last_processed_zxid:
                self.db.apply(txn)


def _config_of(txn: Txn) -> QuorumVerifier | None:
    if txn.header.type != OpCode.RECONFIG or not isinstance(txn.record, SetDataTxn):
        return None
    return config_from_text((txn.record.data or b"").decode("utf-8", "replace"))


def decode_long_payload(data: bytes | None) -> int | None:
    """COMMITANDACTIVATE's data: the designated leader (a long); ``None`` without one."""
    if data is None or len(data) < 8:
        return None
    return int.from_bytes(data[:8], "big", signed=True)


def _int32(value: int) -> int:
    """3.8 writes the epoch into ACKEPOCH as a Java int."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value
