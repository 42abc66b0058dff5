"""The learner side of the quorum port (follower or observer), as a pure state machine.

Facts: ``docs/spec/quorum-config-and-zab.md`` B2 (handshake), B3 (heartbeats), B4 (the
other packets, 3.8.0 sync semantics); ``Learner#registerWithLeader``, ``#syncWithLeader``,
``Follower#processPacket``, ``Observer#processPacket`` of 3.8.0.

    learner = Learner(LearnerSettings(...), accepted_epoch=.., current_epoch=.., tree=tree)
    actions = learner.start(now)             # after the TCP connection is up
    actions = learner.receive(message, now)  # each decoded QuorumPacket/Snapshot/Signature
    actions = learner.poll(now)              # when now >= learner.deadline (read timeout)
    actions = learner.closed(now)            # the connection ended

Time is a float in seconds.  The read timeout is ``initLimit`` ticks until NEWLEADER and
``syncLimit`` ticks after it (``Learner#createSocket``, ``#syncWithLeader``); its expiry or a
closed connection means the leader is gone (``Failed``) and the peer goes back to LOOKING.

Wire rules that 3.8 enforces: ACKEPOCH carries 4 bytes (our currentEpoch, or -1 when the
epoch was already accepted); the NEWLEADER ACK is the first packet after ACKEPOCH, so PINGs
before UPTODATE are ignored; PING replies carry an empty (not null) session table.  ACKs of
txns received during the sync go out after the final UPTODATE ACK, as the 3.8.0 captures
show (``tests/testdata/vectors/diff-sync``).
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass

from zkquorum.core.datatree import DataTree
from zkquorum.core.zab import (
    Action,
    AppendTxns,
    Established,
    Failed,
    PersistAcceptedEpoch,
    PersistCurrentEpoch,
    Send,
    TakeSnapshot,
    TruncateLog,
)
from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.quorum import (
    LearnerInfo,
    PacketType,
    QuorumMessage,
    QuorumPacket,
    decode_inform_and_activate,
    decode_int_payload,
    decode_proposal,
    encode_int_payload,
    encode_learner_info,
    encode_ping_sessions,
)
from zkquorum.wire.snapshot import Snapshot, SnapshotSignature
from zkquorum.wire.txn import Txn
from zkquorum.wire.zxid import make_zxid, zxid_epoch, zxid_hex

log = logging.getLogger(__name__)


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


class SyncMode(enum.Enum):
    NONE = "none"
    DIFF = "diff"
    SNAP = "snap"
    TRUNC = "trunc"


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
    snap_count: int = 100_000
    """Take a snapshot after this many applied txns in broadcast (``zookeeper.snapCount``)."""


class Learner:
    def __init__(
        self,
        settings: LearnerSettings,
        *,
        accepted_epoch: int,
        current_epoch: int,
        tree: DataTree,
    ) -> None:
        self.settings = settings
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.tree = tree
        self.last_logged_zxid = tree.last_processed_zxid
        self.phase = LearnerPhase.NEW
        self.sync_mode = SyncMode.NONE
        self.last_sync_mode = SyncMode.NONE
        """How this session was synced (``sync_mode`` goes back to NONE at NEWLEADER)."""
        self.new_epoch = -1
        self.leader_config: str | None = None
        self.deadline = float("inf")
        self.failure: str | None = None
        self._snap_zxid = 0
        self._trunc_zxid: int | None = None
        self._write_to_txn_log = False
        self._snapshot_needed = True
        self._not_committed: deque[Txn] = deque()  # received during sync, not yet logged
        self._committed: deque[int] = deque()  # commits to apply after UPTODATE
        self._to_ack_after_uptodate: list[int] = []  # logged at NEWLEADER
        self._pending: deque[Txn] = deque()  # logged, waiting for their COMMIT
        self._since_snapshot = 0

    # -- helpers -----------------------------------------------------------------------

    @property
    def established(self) -> bool:
        return self.phase is LearnerPhase.BROADCAST

    @property
    def _tick(self) -> float:
        return self.settings.tick_time_ms / 1000.0

    def _arm(self, now: float) -> None:
        limit = (
            self.settings.sync_limit
            if self.phase in (LearnerPhase.WAIT_UPTODATE, LearnerPhase.BROADCAST)
            else self.settings.init_limit
        )
        self.deadline = now + limit * self._tick

    def _fail(self, reason: str) -> list[Action]:
        if self.phase is LearnerPhase.FAILED:
            return []
        log.info("learner %d: leaving the leader: %s", self.settings.sid, reason)
        self.phase = LearnerPhase.FAILED
        self.failure = reason
        self.deadline = float("inf")
        return [Failed(reason)]

    @staticmethod
    def _ack(zxid: int) -> Send:
        return Send(QuorumPacket(PacketType.ACK, zxid))

    # -- events ------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """The connection is up: FOLLOWERINFO / OBSERVERINFO (``Learner#registerWithLeader``)."""
        if self.phase is not LearnerPhase.NEW:
            raise RuntimeError("Learner.start called twice")
        s = self.settings
        ptype = PacketType.OBSERVERINFO if s.observer else PacketType.FOLLOWERINFO
        info = encode_learner_info(LearnerInfo(s.sid, config_version=s.config_version))
        self.phase = LearnerPhase.WAIT_LEADERINFO
        self._arm(now)
        return [Send(QuorumPacket(ptype, make_zxid(self.accepted_epoch, 0), info))]

    def closed(self, now: float, reason: str = "connection closed by the leader") -> list[Action]:
        return self._fail(reason)

    def poll(self, now: float) -> list[Action]:
        if now >= self.deadline:
            return self._fail("Read timed out")
        return []

    def replace_tree(self, tree: DataTree) -> None:
        """After ``TruncateLog``: the tree reloaded from disk up to the truncation zxid."""
        if self._trunc_zxid is not None:
            tree.last_processed_zxid = self._trunc_zxid
        self.tree = tree
        self.last_logged_zxid = tree.last_processed_zxid

    def receive(self, msg: QuorumMessage, now: float) -> list[Action]:
        if self.phase in (LearnerPhase.FAILED, LearnerPhase.NEW):
            return []
        try:
            actions = self._receive(msg)
        except QuorumProtocolError as exc:
            return self._fail(f"bad packet from the leader: {exc}")
        if self.failure is None:
            self._arm(now)
        return actions

    def _receive(self, msg: QuorumMessage) -> list[Action]:
        phase = self.phase
        if phase is LearnerPhase.WAIT_SNAPSHOT:
            if not isinstance(msg, Snapshot):
                return self._fail("expected the snapshot after SNAP")
            return self._on_snapshot(msg)
        if phase is LearnerPhase.WAIT_SIGNATURE:
            if not isinstance(msg, SnapshotSignature):
                return self._fail("Missing signature")
            self.phase = LearnerPhase.SYNCING
            return []
        if not isinstance(msg, QuorumPacket):
            return self._fail(f"unexpected {type(msg).__name__} from the leader")
        if phase is LearnerPhase.WAIT_LEADERINFO:
            return self._on_leaderinfo(msg)
        if phase is LearnerPhase.WAIT_SYNC:
            return self._on_sync_start(msg)
        if phase in (LearnerPhase.SYNCING, LearnerPhase.WAIT_UPTODATE):
            return self._on_sync_packet(msg)
        return self._on_broadcast(msg)

    # -- discovery ---------------------------------------------------------------------

    def _on_leaderinfo(self, p: QuorumPacket) -> list[Action]:
        if p.type != PacketType.LEADERINFO:
            # 3.8 (ZAB 1.0 learner) reads anything else as a pre-1.0 NEWLEADER; we only
            # speak ZAB 1.0.
            return self._fail(f"First packet should have been LEADERINFO, got {p.type}")
        decode_int_payload(p.data)  # the leader's protocol version; 3.8 only logs it
        epoch = zxid_epoch(p.zxid)
        actions: list[Action] = []
        if epoch > self.accepted_epoch:
            self.accepted_epoch = epoch
            actions.append(PersistAcceptedEpoch(epoch))
            reply = self.current_epoch
        elif epoch == self.accepted_epoch:
            reply = -1  # already acked this epoch: not a vote
        else:
            return self._fail(
                f"Leaders epoch, {epoch} is less than accepted epoch, {self.accepted_epoch}"
            )
        self.new_epoch = epoch
        self.phase = LearnerPhase.WAIT_SYNC
        ackepoch = QuorumPacket(
            PacketType.ACKEPOCH, self.last_logged_zxid, encode_int_payload(_int32(reply))
        )
        actions.append(Send(ackepoch))
        return actions

    # -- synchronization ---------------------------------------------------------------

    def _on_sync_start(self, p: QuorumPacket) -> list[Action]:
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
            return []
        if p.type == PacketType.SNAP:
            self.sync_mode = self.last_sync_mode = SyncMode.SNAP
            self._snap_zxid = p.zxid
            self.phase = LearnerPhase.WAIT_SNAPSHOT
            return []
        if p.type == PacketType.TRUNC:
            log.warning("learner %d: truncating log to 0x%s", self.settings.sid, zxid_hex(p.zxid))
            self.sync_mode = self.last_sync_mode = SyncMode.TRUNC
            self.phase = LearnerPhase.SYNCING
            self._pending.clear()
            self._trunc_zxid = p.zxid
            return [TruncateLog(p.zxid)]
        if p.type == PacketType.PING:
            return []
        # 3.8 exits with code 12 here (ExitCode.QUORUM_PACKET_ERROR); we leave the leader.
        return self._fail(f"Got unexpected packet from leader: {p.type}")

    def _on_snapshot(self, snap: Snapshot) -> list[Action]:
        tree = DataTree.from_snapshot(snap, self._snap_zxid)
        tree.set_config(self.settings.config_text)  # ZOOKEEPER-2819
        self.tree = tree
        self.last_logged_zxid = self._snap_zxid
        self._pending.clear()
        self.phase = LearnerPhase.WAIT_SIGNATURE
        return []

    def _on_sync_packet(self, p: QuorumPacket) -> list[Action]:
        t = p.type
        if t == PacketType.PROPOSAL:
            self._not_committed.append(decode_proposal(p.data))
            return []
        if t in (PacketType.COMMIT, PacketType.COMMITANDACTIVATE):
            if not self._not_committed:
                return self._fail(f"COMMIT 0x{zxid_hex(p.zxid)} without a proposal during sync")
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
            return []
        if t in (PacketType.INFORM, PacketType.INFORMANDACTIVATE):
            if t == PacketType.INFORM:
                txn = decode_proposal(p.data)
            else:
                txn = decode_inform_and_activate(p.data)[1]
            if not self._write_to_txn_log:
                self._apply(txn)
            else:
                self._not_committed.append(txn)
                self._committed.append(p.zxid)
            return []
        if t == PacketType.NEWLEADER:
            if self.phase is LearnerPhase.WAIT_UPTODATE:
                log.warning("learner %d: a second NEWLEADER", self.settings.sid)
            return self._on_newleader(p)
        if t == PacketType.UPTODATE:
            if self.phase is not LearnerPhase.WAIT_UPTODATE:
                return self._fail("UPTODATE before NEWLEADER (pre-ZAB-1.0 leader)")
            return self._on_uptodate()
        # PING and everything else: ignored until UPTODATE (B2 step 8).
        return []

    def _on_newleader(self, p: QuorumPacket) -> list[Action]:
        if p.data is not None and len(p.data) > 1:
            self.leader_config = p.data.decode("utf-8", "replace")
        actions: list[Action] = []
        if self._snapshot_needed:
            actions.append(TakeSnapshot(self.tree.last_processed_zxid, self.tree.to_snapshot()))
            self._since_snapshot = 0
        self.current_epoch = self.new_epoch
        actions.append(PersistCurrentEpoch(self.new_epoch))
        self._write_to_txn_log = True
        self.phase = LearnerPhase.WAIT_UPTODATE
        self.sync_mode = SyncMode.NONE
        if not self.settings.observer and self._not_committed:
            txns = tuple(self._not_committed)
            self._not_committed.clear()
            actions.append(self._log(txns))
            self._to_ack_after_uptodate.extend(t.header.zxid for t in txns)
        actions.append(self._ack(p.zxid))
        return actions

    def _on_uptodate(self) -> list[Action]:
        actions: list[Action] = [self._ack(make_zxid(self.new_epoch, 0))]
        self.phase = LearnerPhase.BROADCAST
        actions.append(Established(self.new_epoch))
        if not self.settings.observer:
            acks = list(self._to_ack_after_uptodate)
            self._to_ack_after_uptodate.clear()
            if self._not_committed:
                txns = tuple(self._not_committed)
                self._not_committed.clear()
                actions.append(self._log(txns))
                acks.extend(t.header.zxid for t in txns)
            actions.extend(self._ack(z) for z in acks)
            for zxid in list(self._committed):
                self._committed.popleft()
                failure = self._commit(zxid)
                if failure:
                    return actions + self._fail(failure)
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
                actions.append(self._log(tuple(applied), pend=False))
                for txn in applied:
                    self._apply(txn)
        actions.extend(self._maybe_snapshot())
        return actions

    # -- broadcast ---------------------------------------------------------------------

    def _on_broadcast(self, p: QuorumPacket) -> list[Action]:
        t = p.type
        if t == PacketType.PING:
            return [
                Send(QuorumPacket(PacketType.PING, p.zxid, encode_ping_sessions(()), p.authinfo))
            ]
        if self.settings.observer:
            if t in (PacketType.INFORM, PacketType.INFORMANDACTIVATE):
                if t == PacketType.INFORM:
                    txn = decode_proposal(p.data)
                else:
                    txn = decode_inform_and_activate(p.data)[1]
                actions: list[Action] = [self._log((txn,), pend=False)]
                self._apply(txn)
                return actions + self._maybe_snapshot()
            if t in (PacketType.PROPOSAL, PacketType.COMMIT):
                log.warning("observer %d: ignoring %s", self.settings.sid, t)
            return []
        if t == PacketType.PROPOSAL:
            txn = decode_proposal(p.data)
            return [self._log((txn,)), self._ack(txn.header.zxid)]
        if t in (PacketType.COMMIT, PacketType.COMMITANDACTIVATE):
            failure = self._commit(p.zxid)
            if failure:
                return self._fail(failure)
            return self._maybe_snapshot()
        if t == PacketType.UPTODATE:
            log.error("learner %d: received an unexpected UPTODATE", self.settings.sid)
        elif t not in (PacketType.SYNC, PacketType.REVALIDATE):
            log.warning("learner %d: unknown packet type %s", self.settings.sid, t)
        return []

    # -- the log and the tree ----------------------------------------------------------

    def _log(self, txns: tuple[Txn, ...], *, pend: bool = True) -> AppendTxns:
        if pend:
            self._pending.extend(txns)
        for txn in txns:
            self.last_logged_zxid = max(self.last_logged_zxid, txn.header.zxid)
        return AppendTxns(txns)

    def _commit(self, zxid: int) -> str | None:
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
        self._apply(head)
        return None

    def _apply(self, txn: Txn) -> None:
        self.tree.apply(txn)
        self.last_logged_zxid = max(self.last_logged_zxid, self.tree.last_processed_zxid)
        self._since_snapshot += 1

    def _maybe_snapshot(self) -> list[Action]:
        if self._since_snapshot < self.settings.snap_count or self._pending:
            return []
        self._since_snapshot = 0
        return [TakeSnapshot(self.tree.last_processed_zxid, self.tree.to_snapshot())]


def _int32(value: int) -> int:
    """3.8 writes the epoch into ACKEPOCH as a Java int."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value
