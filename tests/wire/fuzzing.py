"""Fuzz drivers shared by tests/wire/test_fuzz.py and bench/fuzz_wire.py.

Each driver feeds bytes to a decoder in the given chunking and returns what came out:
the messages, then ``("error", type, offset, reason)`` if a ``ProtocolError`` ended it.
Any other exception propagates (and fails the caller).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Sequence

from zkquorum.wire import election as el
from zkquorum.wire import quorum as q
from zkquorum.wire import snapshot as sn
from zkquorum.wire import txn as tx
from zkquorum.wire.errors import ProtocolError
from zkquorum.wire.reader import CLOSED, NEED_DATA

Outcome = list[object]


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def run_stream(
    make: Callable[[], el.ElectionConnectionDecoder | q.QuorumStreamDecoder],
    data: bytes,
    cuts: Sequence[int],
) -> Outcome:
    dec = make()
    out: Outcome = []
    try:
        for piece in [*split(data, cuts), b""]:
            dec.receive_data(piece)
            while True:
                m = dec.next_message()
                if m is NEED_DATA or m is CLOSED:
                    break
                out.append(m)
    except ProtocolError as exc:
        out.append(("error", type(exc).__name__, exc.offset, exc.reason))
    return out


DECODERS: dict[str, Callable[[], el.ElectionConnectionDecoder | q.QuorumStreamDecoder]] = {
    "election-initiator": lambda: el.ElectionConnectionDecoder(initial=True),
    "election-acceptor": lambda: el.ElectionConnectionDecoder(initial=False),
    "quorum-from-leader": lambda: q.QuorumStreamDecoder(snapshots=True),
    "quorum-from-learner": lambda: q.QuorumStreamDecoder(snapshots=False),
}

ONE_SHOT: tuple[Callable[[bytes], object], ...] = (
    el.decode_initial_message,
    el.decode_notification,
    el.decode_notification_frame,
    q.decode_packet,
    q.decode_learner_info,
    q.decode_int_payload,
    q.decode_long_payload,
    q.decode_config_payload,
    q.decode_ping_sessions,
    q.decode_revalidate_request,
    q.decode_revalidate_reply,
    q.decode_request,
    q.decode_proposal,
    q.decode_inform_and_activate,
    tx.decode_txn,
    sn.decode_snapshot,
)


def run_one_shot(data: bytes) -> None:
    """Every one-shot decoder on the same bytes: results or ProtocolError only."""
    for decode in ONE_SHOT:
        with contextlib.suppress(ProtocolError):
            decode(data)


def mutate(seed: bytes, ops: Sequence[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: flip, set, insert, delete, truncate, dup."""
    data = bytearray(seed)
    for kind, pos, value in ops:
        at = pos % (len(data) + 1)
        match kind % 6:
            case 0 if data:
                data[at % len(data)] ^= 1 << (value % 8)
            case 1 if data:
                data[at % len(data)] = value & 0xFF
            case 2:
                data[at:at] = bytes([value & 0xFF]) * (1 + value % 4)
            case 3:
                del data[at : at + 1 + value % 8]
            case 4:
                del data[at:]
            case 5:
                data[at:at] = data[at : at + 1 + value % 32]
    return bytes(data)
