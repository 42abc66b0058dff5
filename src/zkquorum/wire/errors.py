"""Decode errors of the wire codecs: one :class:`ProtocolError` subclass per port.

Every decoder in :mod:`zkquorum.wire` lets only these escape (h11's rule: the peer's bad
bytes are a ``ProtocolError``, nothing else).  Encoders reject bad *arguments* (our own
misuse) with a plain :class:`ValueError`.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """The peer sent bytes that the codec cannot accept.

    ``reason`` says what was wrong; ``offset`` is the byte offset in the stream (or in the
    buffer given to a one-shot decoder) where the problem was found, or ``None``.
    """

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        where = "" if offset is None else f" (at byte {offset})"
        super().__init__(f"{reason}{where}")


class ElectionProtocolError(ProtocolError):
    """Bad bytes on the election port: 3.8 would close the connection."""


class QuorumProtocolError(ProtocolError):
    """Bad bytes on the quorum port: 3.8 would drop the learner / leave the leader."""
