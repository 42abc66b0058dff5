"""What goes into :meth:`zkquorum.core.peer.PeerCore.step`: one frozen event at a time.

Every event carries ``now``: milliseconds on the runtime's monotonic clock (the simulator's
virtual clock).  The core never reads a clock; ``docs/architecture.md`` lists the events
and the order the runtime executes what comes back.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from zkquorum.core.database import Database
from zkquorum.wire.election import Notification
from zkquorum.wire.jute import Id
from zkquorum.wire.quorum import QuorumMessage, QuorumPacket
from zkquorum.wire.records import fast_init
from zkquorum.wire.txn import Txn


class StepDownReason(enum.Enum):
    """Why a leader gives up on purpose (``StepDown``)."""

    REQUESTED = "requested"
    """The application asked (``QuorumPeer.step_down``)."""
    CALLBACK_RAISED = "the leadership callback raised"
    """The leadership callback raised while the peer was LEADING."""


# -- life ---------------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class Start:
    """The runtime is up (election port bound): enter LOOKING, or the fixed phase."""

    now: float


@fast_init
@dataclass(frozen=True, slots=True)
class Tick:
    """``now >= ready.wake_at``: deadlines (election timers, read timeouts, PINGs)."""

    now: float


@fast_init
@dataclass(frozen=True, slots=True)
class StepDown:
    """Stop leading; ignored unless LEADING.  ``detail`` is for the log only."""

    now: float
    reason: StepDownReason
    detail: str = ""


@fast_init
@dataclass(frozen=True, slots=True)
class Propose:
    """The leader's request pipeline has a txn (its zxid from ``Leader.next_zxid``):
    ``Leader#propose``.  Raises ``XidRolloverError`` at counter 0xffffffff (the phase
    ended) and ``NotLeadingError`` outside broadcast."""

    now: float
    txn: Txn


# -- the election port ------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class VoteReceived:
    now: float
    sid: int
    notification: Notification


@fast_init
@dataclass(frozen=True, slots=True)
class ElectionPeerUp:
    now: float
    sid: int


@fast_init
@dataclass(frozen=True, slots=True)
class ElectionPeerDown:
    now: float
    sid: int


# -- the quorum port, leading -------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class QuorumPortOpened:
    """The listener(s) of ``OpenQuorumPort`` are bound; the leader starts discovery."""

    now: float


@fast_init
@dataclass(frozen=True, slots=True)
class QuorumPortFailed:
    """``OpenQuorumPort`` could not bind: the phase ends."""

    now: float
    detail: str


@fast_init
@dataclass(frozen=True, slots=True)
class LearnerUp:
    """A learner connected to our quorum port; ``conn`` names it until ``LearnerDown``."""

    now: float
    conn: int


@fast_init
@dataclass(frozen=True, slots=True)
class LearnerPacket:
    now: float
    conn: int
    packet: QuorumPacket


@fast_init
@dataclass(frozen=True, slots=True)
class LearnerDown:
    """The connection ended (EOF, error, bad bytes, or our own ``CloseLearner``)."""

    now: float
    conn: int
    bad_packet: bool = False


# -- the quorum port, learning ------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class LeaderUp:
    """``ConnectToLeader`` succeeded."""

    now: float


@fast_init
@dataclass(frozen=True, slots=True)
class LeaderMessage:
    now: float
    message: QuorumMessage


@fast_init
@dataclass(frozen=True, slots=True)
class LeaderDown:
    """The connection to the leader ended (EOF, error, bad bytes)."""

    now: float
    detail: str


@fast_init
@dataclass(frozen=True, slots=True)
class LeaderUnreachable:
    """``ConnectToLeader`` gave up: no address answered in time."""

    now: float


# -- storage ------------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class LogSynced:
    """Every txn of ``Ready.append`` up to ``zxid`` is durable (group commit)."""

    now: float
    zxid: int


@fast_init
@dataclass(frozen=True, slots=True)
class SnapshotWritten:
    """A ``TakeSnapshot`` is on disk (``zxid``), or could not be written (``ok`` false)."""

    now: float
    zxid: int
    ok: bool = True


@fast_init
@dataclass(frozen=True, slots=True)
class LogRead:
    """The answer to ``ReadLog``: the txns, or None when the files could not serve them."""

    now: float
    conn: int
    txns: Sequence[Txn] | None


@fast_init
@dataclass(frozen=True, slots=True)
class StorageFailed:
    """A write, fsync, truncation or epoch file failed: the phase ends (3.8 exits)."""

    now: float
    detail: str


@fast_init
@dataclass(frozen=True, slots=True)
class DatabaseReloaded:
    """The answer to ``ReloadDatabase``: the database as the files now say."""

    now: float
    database: Database
    accepted_epoch: int
    current_epoch: int


# -- the client side --------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class ClientWrite:
    """A client's write, session or sync request for the quorum: the leader prepares it,
    a learner forwards it as a REQUEST (``sessionId | cxid | type | body``, auth ids)."""

    now: float
    session_id: int
    cxid: int
    op: int
    body: bytes
    auth: tuple[Id, ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)
class RevalidateSession:
    """A client reconnects with ``session_id``: is it still valid, and may it move here?"""

    now: float
    session_id: int
    timeout: int


@fast_init
@dataclass(frozen=True, slots=True)
class SessionsTouched:
    """Sessions our clients used since the last report (a learner's PING reply table)."""

    now: float
    touches: tuple[tuple[int, int], ...]


Event = (
    ClientWrite
    | RevalidateSession
    | SessionsTouched
    | Start
    | Tick
    | StepDown
    | Propose
    | VoteReceived
    | ElectionPeerUp
    | ElectionPeerDown
    | QuorumPortOpened
    | QuorumPortFailed
    | LearnerUp
    | LearnerPacket
    | LearnerDown
    | LeaderUp
    | LeaderMessage
    | LeaderDown
    | LeaderUnreachable
    | LogSynced
    | SnapshotWritten
    | LogRead
    | StorageFailed
    | DatabaseReloaded
)
