"""What the leader and learner state machines ask their runtime to do (their "Ready").

The machines are sans-IO: events go in (a packet, a connection, the time), a list of
actions comes out, and the runtime executes them **in order** before it feeds the next
event.  Order matters where ZooKeeper's does: an epoch file or a txn is on disk before the
packet that depends on it is sent (``PersistAcceptedEpoch`` before ACKEPOCH,
``PersistCurrentEpoch`` and ``AppendTxns`` before the NEWLEADER ACK, ``AppendTxns`` before
a PROPOSAL's ACK).
"""

from __future__ import annotations

from dataclasses import dataclass

from zkquorum.wire.quorum import QuorumPacket
from zkquorum.wire.snapshot import Snapshot
from zkquorum.wire.txn import Txn


@dataclass(frozen=True, slots=True)
class Send:
    """Write one packet; ``conn`` names the learner connection on the leader (0 on a learner)."""

    packet: QuorumPacket
    conn: int = 0


@dataclass(frozen=True, slots=True)
class SendSnapshot:
    """Leader: the SNAP packet (``zxid``), the snapshot stream and the signature, at once."""

    zxid: int
    snapshot: Snapshot
    conn: int = 0


@dataclass(frozen=True, slots=True)
class Close:
    """Leader: drop one learner connection (``LearnerHandler`` ends)."""

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
    """Append to the txn log and fsync before the next action."""

    txns: tuple[Txn, ...]


@dataclass(frozen=True, slots=True)
class TakeSnapshot:
    """Write ``snapshot.<zxid>`` (the tree as it is now)."""

    zxid: int
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class TruncateLog:
    """Learner on TRUNC: cut the txn log after ``zxid``, then hand back the reloaded tree
    (``Learner.replace_tree``) before the next event."""

    zxid: int


@dataclass(frozen=True, slots=True)
class Established:
    """Leadership (or following) is established in ``epoch``: the fencing token."""

    epoch: int


@dataclass(frozen=True, slots=True)
class Failed:
    """The machine is finished: the peer goes back to LOOKING."""

    reason: str


Action = (
    Send
    | SendSnapshot
    | Close
    | PersistAcceptedEpoch
    | PersistCurrentEpoch
    | AppendTxns
    | TakeSnapshot
    | TruncateLog
    | Established
    | Failed
)
