"""The election port (3888): initial message, frames and notifications.

Facts: ``shared/spec/election-protocol.md`` sections 1 to 4.  Pure: no sockets, no clocks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ServerState(enum.IntEnum):
    """``QuorumPeer.ServerState``; the value is the ordinal sent on the wire."""

    LOOKING = 0
    FOLLOWING = 1
    LEADING = 2
    OBSERVING = 3


@dataclass(frozen=True, slots=True)
class Notification:
    """One FLE notification, as sent by 3.8 (version 2) or decoded from any accepted length.

    ``config`` is the sender's committed config string (``QuorumVerifier#toString``), or
    ``None`` when the message carried none (version <= 1, or a short message).
    """

    state: ServerState
    leader: int
    zxid: int
    election_epoch: int
    peer_epoch: int
    version: int = 2
    config: str | None = None
