"""What :meth:`zkquorum.core.peer.PeerCore.step` hands back: one :class:`Ready`.

In the shape of etcd raft's ``Ready``: typed buckets, executed by the runtime in this
order (``docs/architecture.md``):

1. ``hard_state``: epoch files and log truncation, durable before anything else of the
   same Ready happens (a message of this Ready may depend on them: ACKEPOCH on
   acceptedEpoch, the NEWLEADER ACK on currentEpoch).
2. ``messages``: election notifications, packets to learners or to the leader.
3. ``io``: open/close the quorum port, connect to a leader, close connections, read txns
   from the log files, reload the database.
4. ``append``: txns for the group-committed log; the runtime answers with ``LogSynced``.
   A message that needs them durable is not in this Ready: the core emits it on the
   ``LogSynced`` that covers it.
5. ``snapshot``: snapshot the database; the runtime answers with ``SnapshotWritten``.
6. ``outcomes``: leadership values, decisions, phase ends, warnings, trace records.
7. ``wake_at``: when the core wants the next ``Tick`` (``inf``: never).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from zkquorum.config.verifier import QuorumVerifier
from zkquorum.core.datatree import DataTree
from zkquorum.core.election import Decided
from zkquorum.wire.election import Notification, ServerState
from zkquorum.wire.quorum import QuorumPacket
from zkquorum.wire.records import fast_init
from zkquorum.wire.txn import Txn

INF = float("inf")


# -- hard state ---------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class SaveAcceptedEpoch:
    epoch: int


@fast_init
@dataclass(frozen=True, slots=True)
class SaveCurrentEpoch:
    epoch: int


@fast_init
@dataclass(frozen=True, slots=True)
class TruncateLog:
    """Drain the txn log, then cut it after ``zxid`` (``FileTxnLog#truncate``).  The
    database was already rolled back in place by the core."""

    zxid: int


@fast_init
@dataclass(frozen=True, slots=True)
class SaveConfig:
    """Write a config to disk (``QuorumPeer#setQuorumVerifier`` / ``#setLastSeenQuorumVerifier``
    with ``writeToDisk``): ``activated`` is the config in force (``<zoo.cfg>.dynamic.<version>``,
    zoo.cfg pointed at it, the ``.next`` file gone once nothing newer is pending); otherwise the
    last-seen config of a reconfig in progress (``<zoo.cfg>.dynamic.next``)."""

    verifier: QuorumVerifier
    activated: bool


HardState = SaveAcceptedEpoch | SaveCurrentEpoch | TruncateLog | SaveConfig


# -- messages -----------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class SendVote:
    to: int
    notification: Notification


@fast_init
@dataclass(frozen=True, slots=True)
class SendToLearner:
    conn: int
    packet: QuorumPacket


@fast_init
@dataclass(frozen=True, slots=True)
class SendSnapshotToLearner:
    """The SNAP packet (``zxid``), the snapshot stream and its signature, at once.

    ``tree`` is the leader's live tree: it must be serialized as it is now, before the
    core steps another event (``tree.to_snapshot()``, or the runtime's encoder straight
    from the nodes)."""

    conn: int
    zxid: int
    tree: DataTree


@fast_init
@dataclass(frozen=True, slots=True)
class SendToLeader:
    packet: QuorumPacket


Message = SendVote | SendToLearner | SendSnapshotToLearner | SendToLeader


# -- io -----------------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class OpenQuorumPort:
    """Bind our quorum address(es); answer ``QuorumPortOpened`` or ``QuorumPortFailed``."""


@fast_init
@dataclass(frozen=True, slots=True)
class CloseQuorumPort:
    """Stop listening and close every learner connection (no ``LearnerDown`` needed)."""


@fast_init
@dataclass(frozen=True, slots=True)
class ConnectToLeader:
    """Connect to any quorum address of ``sid`` within ``deadline`` (ms): ``LeaderUp``,
    then ``LeaderMessage``s and ``LeaderDown``; or ``LeaderUnreachable``."""

    sid: int
    deadline: float


@fast_init
@dataclass(frozen=True, slots=True)
class CloseLeaderConnection:
    pass


class CloseReason(enum.Enum):
    """Why the leader drops one learner connection."""

    SHUTDOWN = "leader shutdown"
    REFUSED = "refused"
    PROTOCOL = "out of protocol"
    READ_TIMEOUT = "read timed out"


@fast_init
@dataclass(frozen=True, slots=True)
class CloseLearner:
    conn: int
    reason: CloseReason
    detail: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class ReadLog:
    """Read the logged txns ``after < zxid <= up_to`` (``Storage.read_txns``) for a
    learner's sync, at most ``size_factor`` x the newest snapshot's size in bytes
    (``ZKDatabase#calculateTxnLogSizeLimit``); answer ``LogRead(conn, txns or None)``."""

    conn: int
    after: int
    up_to: int
    size_factor: float


@fast_init
@dataclass(frozen=True, slots=True)
class ReloadDatabase:
    """Load the database and epochs from the files again; answer ``DatabaseReloaded``."""


Io = (
    OpenQuorumPort
    | CloseQuorumPort
    | ConnectToLeader
    | CloseLeaderConnection
    | CloseLearner
    | ReadLog
    | ReloadDatabase
)


# -- snapshots ----------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class TakeSnapshot:
    """Snapshot the database as it is now (its last processed zxid is ``zxid``); answer
    ``SnapshotWritten``.  ``sync`` marks the snapshot of a SNAP/TRUNC sync, which the
    NEWLEADER ACK waits for."""

    zxid: int
    sync: bool = False


# -- outcomes -----------------------------------------------------------------------------


@fast_init
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


class PhaseEndReason(enum.Enum):
    """Why a LEADING/FOLLOWING/OBSERVING phase ended (the peer then looks again)."""

    DISCOVERY_TIMEOUT = "discovery timeout"
    NOT_SYNCED = "not sufficient followers synced"
    STEPPED_DOWN = "stepped down"
    PORT_FAILED = "cannot open the quorum port"
    CONNECT_FAILED = "could not connect to the leader"
    LEADER_GONE = "the leader went away"
    READ_TIMEOUT = "read timed out"
    PROTOCOL = "protocol error"
    REFUSED = "refused by the leader's rules"
    STORAGE = "storage failed"
    TRUNCATE_BEYOND_UNDO = "truncation beyond what can be undone in memory"
    CLOSED = "closed"
    RECONFIG = "changes proposed in reconfig"


@fast_init
@dataclass(frozen=True, slots=True)
class LeadershipChanged:
    value: Leadership


@fast_init
@dataclass(frozen=True, slots=True)
class ElectionDecided:
    decided: Decided
    took_ms: float
    re_elected_after: str | None = None
    """Set when we lead again right after stepping down (the detail of the step-down)."""


@fast_init
@dataclass(frozen=True, slots=True)
class Established:
    """The phase's epoch is established (leader: a quorum acked NEWLEADER; learner:
    UPTODATE): the fencing token."""

    role: ServerState
    leader: int
    epoch: int


@fast_init
@dataclass(frozen=True, slots=True)
class PhaseEnded:
    role: ServerState
    reason: PhaseEndReason
    detail: str


@fast_init
@dataclass(frozen=True, slots=True)
class SteppedDown:
    epoch: int | None
    detail: str


@fast_init
@dataclass(frozen=True, slots=True)
class LearnerDropped:
    """The leader closed a learner connection on its own (refused, silent, bad)."""

    conn: int
    reason: CloseReason


@fast_init
@dataclass(frozen=True, slots=True)
class ConfigMismatchSeen:
    from_sid: int
    version: int
    reason: str


@fast_init
@dataclass(frozen=True, slots=True)
class ConfigActivated:
    """A new membership is in force (a reconfig committed, a leader's NEWLEADER config, or
    a newer config adopted during the election): the runtime reaches the new members."""

    verifier: QuorumVerifier
    previous: QuorumVerifier


@fast_init
@dataclass(frozen=True, slots=True)
class Looking:
    """A new round of the election starts."""

    round: int
    zxid: int


@fast_init
@dataclass(frozen=True, slots=True)
class Applied:
    """A committed txn was applied to the database in broadcast (the client side answers
    and fires watches from ``effects``: ``core.final.Effects``)."""

    txn: Txn
    effects: object


@fast_init
@dataclass(frozen=True, slots=True)
class Revalidated:
    """The answer to ``RevalidateSession``: is the session valid (and now ours)?"""

    session_id: int
    valid: bool


@fast_init
@dataclass(frozen=True, slots=True)
class SyncAnswered:
    """A client ``sync`` forwarded to the leader came back: everything before it is
    committed here."""


class LatencyKind(enum.Enum):
    ACK = "ack_latency"
    """From a proposal's txn time to one voter's ACK (``Leader#processAck``, each
    ``ackLoggingFrequency``-th zxid)."""
    QUORUM_ACK = "quorum_ack_latency"
    """From a proposal's txn time to its quorum of ACKs (``Leader#tryToCommit``)."""


@fast_init
@dataclass(frozen=True, slots=True)
class ProposalLatency:
    """The leader measured a proposal's latency, in ms of wall time as 3.8 does."""

    kind: LatencyKind
    sid: int | None
    ms: float


Outcome = (
    Applied
    | ProposalLatency
    | Revalidated
    | SyncAnswered
    | LeadershipChanged
    | ElectionDecided
    | Established
    | PhaseEnded
    | SteppedDown
    | LearnerDropped
    | ConfigMismatchSeen
    | ConfigActivated
    | Looking
)


@fast_init
@dataclass(frozen=True, slots=True)
class Ready:
    hard_state: tuple[HardState, ...] = ()
    messages: tuple[Message, ...] = ()
    io: tuple[Io, ...] = ()
    append: tuple[Txn, ...] = ()
    snapshot: tuple[TakeSnapshot, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    wake_at: float = INF

    @property
    def empty(self) -> bool:
        return not (
            self.hard_state
            or self.messages
            or self.io
            or self.append
            or self.snapshot
            or self.outcomes
        )


class ReadyBuilder:
    """The mutable side of one step: the parts of the core add to it, ``build`` freezes."""

    __slots__ = ("append", "hard_state", "io", "messages", "outcomes", "snapshot")

    def __init__(self) -> None:
        self.hard_state: list[HardState] = []
        self.messages: list[Message] = []
        self.io: list[Io] = []
        self.append: list[Txn] = []
        self.snapshot: list[TakeSnapshot] = []
        self.outcomes: list[Outcome] = []

    def build(self, wake_at: float) -> Ready:
        return Ready(
            tuple(self.hard_state),
            tuple(self.messages),
            tuple(self.io),
            tuple(self.append),
            tuple(self.snapshot),
            tuple(self.outcomes),
            wake_at,
        )
