"""The glue between a peer core and its client side (a quorum seat's ``ServerCore``).

What the peer core reports in broadcast (``Applied``, ``Revalidated``, ``SyncAnswered``)
becomes an event of the :class:`~zkquorum.core.server.ServerCore`, and what the server
hands on (touched sessions, reconnects to revalidate, writes, session changes and syncs
for the quorum) becomes events of the peer core.  The runtime and the simulator carry
them out the same way: a server while the peer is established, dropped (every client
disconnected) when it leaves broadcast.
"""

from __future__ import annotations

from zkquorum.core.events import ClientWrite, Event, RevalidateSession, SessionsTouched
from zkquorum.core.final import Effects
from zkquorum.core.ready import Applied, Revalidated, SyncAnswered
from zkquorum.core.server import (
    ServerEvent,
    ServerOut,
    SessionRevalidated,
    SyncDone,
    TxnApplied,
)


def server_event(outcome: object, now: float) -> ServerEvent | None:
    """The server's event for a peer core outcome, or None if it is none of its business."""
    match outcome:
        case Applied(txn, effects) if isinstance(effects, Effects):
            return TxnApplied(now, txn, effects)
        case Revalidated(session_id, valid):
            return SessionRevalidated(now, session_id, valid)
        case SyncAnswered():
            return SyncDone(now)
    return None


def core_events(out: ServerOut, now: float) -> list[Event]:
    """The peer core's events for what the server hands on, in the order to step them."""
    events: list[Event] = []
    if out.touches:
        events.append(SessionsTouched(now, tuple(out.touches)))
    for session_id, timeout in out.revalidate:
        events.append(RevalidateSession(now, session_id, timeout))
    for f in out.forward:
        events.append(ClientWrite(now, f.session_id, f.cxid, f.op, f.body, f.auth))
    return events


__all__ = ["core_events", "server_event"]
