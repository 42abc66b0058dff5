"""Fuzzing: random bytes, and mutations / truncations of captured messages, fed in random
chunkings, give messages or ProtocolError and nothing else -- and the same outcome in
every chunking."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.wire.conftest import VECTORS, captured_bytes
from tests.wire.fuzzing import DECODERS, mutate, run_one_shot, run_stream
from zkquorum.wire.capture import decode_capture
from zkquorum.wire.pcap import PcapError

SEEDS = {
    "election-initiator": captured_bytes("initial") or [b"\0" * 8],
    "election-acceptor": captured_bytes("notification") or [b"\0\0\0\x1c" + b"\0" * 28],
    "quorum-from-leader": captured_bytes("packet") or [b"\0" * 20],
    "quorum-from-learner": captured_bytes("packet") or [b"\0" * 20],
}
# A whole SNAP sync as captured (packet, snapshot, signature), for the leader direction.
SNAP_SEEDS = [
    bytes.fromhex("0000000f0000000100000000ffffffffffffffff")
    + s
    + bytes.fromhex("0000000a42656e57617348657265")
    for s in captured_bytes("snapshot")
]
edits = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 2**16), st.integers(0, 255)), max_size=6
)
cuts = st.lists(st.integers(0, 10_000), max_size=12)
kinds = st.sampled_from(sorted(DECODERS))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(kinds, st.binary(max_size=400), cuts)
@FUZZ
def test_random_bytes(kind: str, data: bytes, chunks: list[int]) -> None:
    whole = run_stream(DECODERS[kind], data, [])
    assert run_stream(DECODERS[kind], data, chunks) == whole


@given(kinds, st.data(), edits, cuts)
@FUZZ
def test_mutated_captured_messages(
    kind: str, data: st.DataObject, ops: list[tuple[int, int, int]], chunks: list[int]
) -> None:
    seeds = SEEDS[kind] + (SNAP_SEEDS if kind == "quorum-from-leader" else [])
    # a few messages back to back, then edits
    count = data.draw(st.integers(1, 3))
    stream = b"".join(data.draw(st.sampled_from(seeds)) for _ in range(count))
    fuzzed = mutate(stream, ops)
    whole = run_stream(DECODERS[kind], fuzzed, [])
    assert run_stream(DECODERS[kind], fuzzed, chunks) == whole


@given(st.binary(max_size=300) | st.sampled_from(captured_bytes("packet")[:40] or [b""]), edits)
@FUZZ
def test_one_shot_decoders(data: bytes, ops: list[tuple[int, int, int]]) -> None:
    run_one_shot(mutate(data, ops))


def test_every_truncation_of_the_snap_sync() -> None:
    for seed in SNAP_SEEDS[:1]:
        for end in range(1, len(seed)):
            out = run_stream(DECODERS["quorum-from-leader"], seed[:end], [])
            assert out and isinstance(out[-1], tuple) and out[-1][0] == "error"


def test_huge_declared_lengths_are_rejected_without_waiting() -> None:
    two_gb = struct.pack(">i", 0x7FFFFFFF)
    # notification frame, buffer in a packet, authinfo vector, snapshot path, address string
    assert run_stream(DECODERS["election-acceptor"], two_gb, [])[0][0] == "error"  # type: ignore[index]
    for data in (
        struct.pack(">iq", 2, 0) + two_gb,
        struct.pack(">iqi", 2, 0, -1) + two_gb,
        bytes.fromhex("0000000f0000000000000000ffffffffffffffff") + b"\0" * 8 + two_gb,
    ):
        dec = DECODERS["quorum-from-leader"]()
        dec.receive_data(data)
        out = run_stream(DECODERS["quorum-from-leader"], data, [])
        assert out[-1][0] == "error" and "unreasonable" in out[-1][3]  # type: ignore[index]
    dec2 = DECODERS["election-initiator"]()
    dec2.receive_data(struct.pack(">qq", -65536, 1) + two_gb)
    out = run_stream(DECODERS["election-initiator"], struct.pack(">qq", -65536, 1) + two_gb, [])
    assert "unreasonable address length" in out[-1][3]  # type: ignore[index]


PCAP = VECTORS / "zk-n3-tick200.pcap"


@given(edits)
@settings(max_examples=25, deadline=None)
def test_mutated_capture_files(ops: list[tuple[int, int, int]]) -> None:
    if not PCAP.exists():
        return
    data = mutate(PCAP.read_bytes(), [(k, p * 7, v) for k, p, v in ops])
    with contextlib.suppress(PcapError):
        decode_capture(data)
