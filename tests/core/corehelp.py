"""Drive one leader or learner phase of the pure :class:`PeerCore` as the quorum-port
tests see it: one call per event, a flat list of what happened, times in seconds.

:class:`LeaderDriver` and :class:`LearnerDriver` wrap a ``PeerCore`` with a fixed role and
answer its I/O requests as a runtime on an instant disk would: an append is durable at
once (``LogSynced``), a sync snapshot written at once (``SnapshotWritten``), the quorum
port opens and the connection to the leader comes up at once.  Each step's Ready becomes
a list of actions in the order the runtime carries it out: durable state first, then
messages, connection closes, appends, and the outcomes that matter here (``Established``,
``Failed``).  The follow-up steps (``LogSynced`` ...) append their actions after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zkquorum.config.verifier import MajorityVerifier
from zkquorum.core.database import Database
from zkquorum.core.datatree import DataTree
from zkquorum.core.events import (
    Event,
    LeaderDown,
    LeaderMessage,
    LeaderUp,
    LearnerDown,
    LearnerPacket,
    LearnerUp,
    LogRead,
    LogSynced,
    QuorumPortOpened,
    SnapshotWritten,
    Start,
    Tick,
)
from zkquorum.core.leader import Leader
from zkquorum.core.learner import Learner
from zkquorum.core.peer import FixedRole, PeerCore, PeerSettings
from zkquorum.core.ready import (
    CloseLearner,
    ConnectToLeader,
    OpenQuorumPort,
    PhaseEnded,
    ReadLog,
    Ready,
    SaveAcceptedEpoch,
    SaveCurrentEpoch,
    SendSnapshotToLearner,
    SendToLeader,
    SendToLearner,
    TruncateLog,
)
from zkquorum.core.ready import Established as EstablishedOutcome
from zkquorum.wire.election import ServerState
from zkquorum.wire.quorum import QuorumMessage, QuorumPacket
from zkquorum.wire.snapshot import Snapshot
from zkquorum.wire.txn import Txn


@dataclass(frozen=True, slots=True)
class Send:
    packet: QuorumPacket
    conn: int = 0


@dataclass(frozen=True, slots=True)
class SendSnapshot:
    zxid: int
    snapshot: Snapshot
    conn: int = 0


@dataclass(frozen=True, slots=True)
class Close:
    conn: int
    reason: str


@dataclass(frozen=True, slots=True)
class PersistAcceptedEpoch:
    epoch: int


@dataclass(frozen=True, slots=True)
class PersistCurrentEpoch:
    epoch: int


@dataclass(frozen=True, slots=True)
class AppendTxns:
    txns: tuple[Txn, ...]


@dataclass(frozen=True, slots=True)
class Truncate:
    zxid: int


@dataclass(frozen=True, slots=True)
class TakeSnapshot:
    zxid: int


@dataclass(frozen=True, slots=True)
class Established:
    """The phase's epoch is established."""

    epoch: int


@dataclass(frozen=True, slots=True)
class Failed:
    reason: str


Action = (
    Send
    | SendSnapshot
    | Close
    | PersistAcceptedEpoch
    | PersistCurrentEpoch
    | AppendTxns
    | Truncate
    | TakeSnapshot
    | Established
    | Failed
)

S = 1000.0
"""Milliseconds per second: the tests speak seconds, the core milliseconds."""


class _Phase:
    def __init__(self, settings: PeerSettings, tree: DataTree, accepted: int, current: int) -> None:
        self.db = Database(tree)
        self.core = PeerCore(settings, self.db, accepted_epoch=accepted, current_epoch=current)
        self.followups: list[Event] = []

    def _step(self, event: Event) -> list[Action]:
        out: list[Action] = []
        queue = [event]
        while queue:
            ready = self.core.step(queue.pop(0))
            out.extend(self._actions(ready, queue))
        return out

    def _actions(self, ready: Ready, queue: list[Event]) -> list[Action]:
        acts: list[Action] = []
        for h in ready.hard_state:
            match h:
                case SaveAcceptedEpoch(e):
                    acts.append(PersistAcceptedEpoch(e))
                case SaveCurrentEpoch(e):
                    acts.append(PersistCurrentEpoch(e))
                case TruncateLog(z):
                    acts.append(Truncate(z))
        for m in ready.messages:
            match m:
                case SendToLearner(conn, packet):
                    acts.append(Send(packet, conn))
                case SendSnapshotToLearner(conn, zxid, tree):
                    acts.append(SendSnapshot(zxid, tree.to_snapshot(), conn))
                case SendToLeader(packet):
                    acts.append(Send(packet))
        now = self._now
        for io in ready.io:
            match io:
                case CloseLearner(conn, _reason, detail):
                    acts.append(Close(conn, detail))
                case OpenQuorumPort():
                    queue.append(QuorumPortOpened(now))
                case ConnectToLeader():
                    queue.append(LeaderUp(now))
                case ReadLog(conn):
                    queue.append(LogRead(now, conn, None))
        if ready.append:
            acts.append(AppendTxns(ready.append))
            queue.append(LogSynced(now, ready.append[-1].header.zxid))
        for snap in ready.snapshot:
            acts.append(TakeSnapshot(snap.zxid))
            if snap.sync:
                queue.append(SnapshotWritten(now, snap.zxid))
        for o in ready.outcomes:
            match o:
                case EstablishedOutcome(_, _, epoch):
                    acts.append(Established(epoch))
                case PhaseEnded(_, _, detail):
                    acts.append(Failed(detail))
        return acts

    _now = 0.0

    def _at(self, now_s: float) -> float:
        self._now = now_s * S
        return self._now

    def poll(self, now_s: float) -> list[Action]:
        return self._step(Tick(self._at(now_s)))

    def next_deadline(self) -> float:
        return self.core.next_deadline() / S


def leader_settings(
    sid: int,
    verifier: MajorityVerifier,
    *,
    tick_time_ms: int = 1000,
    init_limit: int = 10,
    sync_limit: int = 5,
    config_text: str | None = None,
) -> PeerSettings:
    return PeerSettings(
        sid=sid,
        verifier=verifier,
        tick_time_ms=tick_time_ms,
        init_limit=init_limit,
        sync_limit=sync_limit,
        connect_limit=init_limit,
        config_text=verifier.to_zk_string() if config_text is None else config_text,
        fixed=FixedRole(ServerState.LEADING, sid),
    )


class LeaderDriver(_Phase):
    """A leader phase: ``start``, then learner connections and their packets."""

    def __init__(
        self, settings: PeerSettings, tree: DataTree, *, accepted: int = 0, current: int = 0
    ) -> None:
        super().__init__(settings, tree, accepted, current)
        self.leader: Leader | None = None

    @property
    def phase(self) -> object:
        assert self.leader is not None
        return self.leader.phase

    def __getattr__(self, name: str) -> object:
        """The leader's own state (``epoch``, ``electing``, ``newleader_acks`` ...)."""
        if name == "leader":
            raise AttributeError(name)
        return getattr(self.leader, name)

    @property
    def tree(self) -> DataTree:
        return self.db.tree

    def start(self, now_s: float) -> list[Action]:
        acts = self._step(Start(self._at(now_s)))
        self.leader = self.core.leader
        return acts

    def connected(self, conn: int, now_s: float) -> list[Action]:
        return self._step(LearnerUp(self._at(now_s), conn))

    def receive(self, conn: int, packet: QuorumPacket, now_s: float) -> list[Action]:
        return self._step(LearnerPacket(self._at(now_s), conn, packet))

    def disconnected(self, conn: int, now_s: float) -> list[Action]:
        return self._step(LearnerDown(self._at(now_s), conn))


def learner_settings(
    sid: int,
    *,
    leader: int = 1,
    observer: bool = False,
    tick_time_ms: int = 1000,
    init_limit: int = 10,
    sync_limit: int = 5,
    config_text: str = "",
    members: Sequence[int] = (1, 2, 3),
) -> PeerSettings:
    voters = [m for m in members if not (observer and m == sid)]
    verifier = MajorityVerifier.of(voters, observers=[sid] if observer else [])
    state = ServerState.OBSERVING if observer else ServerState.FOLLOWING
    return PeerSettings(
        sid=sid,
        verifier=verifier,
        tick_time_ms=tick_time_ms,
        init_limit=init_limit,
        sync_limit=sync_limit,
        connect_limit=init_limit,
        config_text=config_text,
        fixed=FixedRole(state, leader),
    )


class LearnerDriver(_Phase):
    """A learner phase: ``start`` (the connection is up), then the leader's messages."""

    def __init__(
        self, settings: PeerSettings, tree: DataTree, *, accepted: int = 0, current: int = 0
    ) -> None:
        super().__init__(settings, tree, accepted, current)
        self.learner: Learner | None = None

    @property
    def tree(self) -> DataTree:
        return self.db.tree

    @property
    def deadline(self) -> float:
        assert self.learner is not None
        return self.learner.deadline / S

    @property
    def last_logged_zxid(self) -> int:
        assert self.learner is not None
        return self.learner.last_logged_zxid

    def start(self, now_s: float) -> list[Action]:
        acts = self._step(Start(self._at(now_s)))
        self.learner = self.learner or self.core.learner
        return acts

    def receive(self, msg: QuorumMessage, now_s: float) -> list[Action]:
        return self._step(LeaderMessage(self._at(now_s), msg))

    def closed(self, now_s: float, detail: str = "EOF from the leader") -> list[Action]:
        return self._step(LeaderDown(self._at(now_s), detail))
