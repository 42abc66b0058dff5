"""Fuzzing the client port: random and mutated bytes give messages or ClientProtocolError,
nothing else, the same in every chunking, and never make a decoder hold more than a frame.
"""

from __future__ import annotations

import contextlib
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.wire import client_strategies as cs
from tests.wire.fuzzing import mutate, split
from tests.wire.strategies import ints, longs
from tests.wire.test_client_golden import CAPTURES, conversations, decode
from zkquorum.wire import client as wc
from zkquorum.wire import client_records as cr
from zkquorum.wire.jute import MAX_BUFFER
from zkquorum.wire.reader import CLOSED, NEED_DATA
from zkquorum.wire.txn import OpCode

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
edits = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 2**16), st.integers(0, 255)), max_size=6
)
cuts = st.lists(st.integers(0, 10_000), max_size=12)
max_buffers = st.sampled_from([wc.DEFAULT_MAX_BUFFER, 64, 1000])

Expect = tuple[tuple[int, int], ...]


def _frames(kind: str) -> list[tuple[object, bytes]]:
    out: list[tuple[object, bytes]] = []
    for name in CAPTURES:
        for conv in conversations(name):
            decoded = decode(conv)
            msgs = decoded.requests if kind == "requests" else decoded.replies
            out.extend((m, raw) for m, raw in msgs if len(raw) < 4096)
    return out


REQUEST_FRAMES = [raw for m, raw in _frames("requests") if isinstance(m, wc.ClientRequest)]
CONNECT_FRAMES = [raw for m, raw in _frames("requests") if isinstance(m, cr.ConnectRequest)]
REPLY_FRAMES = [
    (m.op if m.xid not in (-1, -2, -4) else None, m.xid, raw)
    for m, raw in _frames("replies")
    if isinstance(m, wc.ClientReply)
]


def drive(
    dec: wc.RequestStreamDecoder | wc.ReplyStreamDecoder, data: bytes, chunks: list[int]
) -> list[object]:
    out: list[object] = []
    try:
        for piece in [*split(data, chunks), b""]:
            dec.receive_data(piece)
            while (m := dec.next_message()) is not NEED_DATA and m is not CLOSED:
                out.append(m)
            # nothing but the frame being read is ever held
            assert dec.pending_bytes <= len(piece) + 4 + wc.DEFAULT_MAX_BUFFER
    except wc.ClientProtocolError as exc:
        out.append(("error", exc.offset, exc.reason))
    return out


def server(data: bytes, chunks: list[int], max_buffer: int = wc.DEFAULT_MAX_BUFFER) -> list[object]:
    return drive(wc.RequestStreamDecoder(max_buffer=max_buffer), data, chunks)


def client(data: bytes, chunks: list[int], expect: Expect) -> list[object]:
    dec = wc.ReplyStreamDecoder(connected=True)
    for xid, op in expect:
        dec.expect(xid, op)
    return drive(dec, data, chunks)


@given(max_buffers, st.binary(max_size=400), cuts)
@FUZZ
def test_random_bytes_to_the_server(max_buffer: int, data: bytes, chunks: list[int]) -> None:
    assert server(data, chunks, max_buffer) == server(data, [], max_buffer)
    stream = CONNECT_FRAMES[0] + data
    assert server(stream, chunks, max_buffer) == server(stream, [], max_buffer)


@given(
    st.binary(max_size=400),
    cuts,
    st.lists(st.tuples(st.integers(-8, 5), st.sampled_from(list(OpCode))), max_size=4),
)
@FUZZ
def test_random_bytes_to_the_client(
    data: bytes, chunks: list[int], expect: list[tuple[int, int]]
) -> None:
    assert client(data, chunks, tuple(expect)) == client(data, [], tuple(expect))


@given(st.data(), edits, cuts)
@FUZZ
def test_mutated_captured_requests(
    data: st.DataObject, ops: list[tuple[int, int, int]], chunks: list[int]
) -> None:
    count = data.draw(st.integers(1, 4))
    stream = data.draw(st.sampled_from(CONNECT_FRAMES)) + b"".join(
        data.draw(st.sampled_from(REQUEST_FRAMES)) for _ in range(count)
    )
    fuzzed = mutate(stream, ops)
    assert server(fuzzed, chunks) == server(fuzzed, [])


@given(st.data(), edits, cuts)
@FUZZ
def test_mutated_captured_replies(
    data: st.DataObject, ops: list[tuple[int, int, int]], chunks: list[int]
) -> None:
    start = data.draw(st.integers(0, len(REPLY_FRAMES) - 1))
    picked = REPLY_FRAMES[start : start + data.draw(st.integers(1, 4))]
    expect = tuple((xid, op) for op, xid, _ in picked if op is not None)
    fuzzed = mutate(b"".join(raw for _, _, raw in picked), ops)
    assert client(fuzzed, chunks, expect) == client(fuzzed, [], expect)


@st.composite
def generated_requests(draw: st.DrawFn) -> bytes:
    op = draw(st.sampled_from(sorted(cs.REQUESTS)))
    return wc.encode_request(draw(ints), op, draw(cs.REQUESTS[op]))


@given(st.lists(generated_requests(), min_size=1, max_size=3), edits, cuts)
@FUZZ
def test_mutated_generated_requests(
    frames: list[bytes], ops: list[tuple[int, int, int]], chunks: list[int]
) -> None:
    fuzzed = mutate(b"".join(frames), ops)
    stream = CONNECT_FRAMES[0] + fuzzed
    assert server(stream, chunks) == server(stream, [])


@given(st.data(), edits, cuts)
@FUZZ
def test_mutated_generated_replies(
    data: st.DataObject, ops: list[tuple[int, int, int]], chunks: list[int]
) -> None:
    expect: list[tuple[int, int]] = []
    frames = []
    for xid in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(sorted(cs.RESPONSES)))
        header = cr.ReplyHeader(-1 if op == OpCode.NOTIFICATION else xid, data.draw(longs), 0)
        frames.append(wc.encode_reply(header, data.draw(cs.RESPONSES[op])))
        if op != OpCode.NOTIFICATION:
            expect.append((xid, op))
    fuzzed = mutate(b"".join(frames), ops)
    assert client(fuzzed, chunks, tuple(expect)) == client(fuzzed, [], tuple(expect))


@given(
    st.sampled_from(sorted({*cr.REQUEST_RECORDS, *cr.RESPONSE_RECORDS})),
    st.binary(max_size=200) | st.sampled_from(REQUEST_FRAMES).map(lambda f: f[12:]),
    edits,
)
@FUZZ
def test_one_shot_body_decoders(op: int, body: bytes, ops: list[tuple[int, int, int]]) -> None:
    fuzzed = mutate(body, ops)
    for decode_body in (cr.decode_request_body, cr.decode_response_body):
        with contextlib.suppress(cr.ClientProtocolError):
            decode_body(op, fuzzed)


def test_huge_counts_in_a_small_frame_allocate_nothing_big() -> None:
    count = struct.pack(">i", MAX_BUFFER)  # the largest count a reader lets through
    bodies = {
        OpCode.SET_WATCHES: struct.pack(">q", 0) + count,
        OpCode.CREATE: struct.pack(">i", 2) + b"/a" + struct.pack(">i", -1) + count,
        OpCode.MULTI: cr.MultiHeader(OpCode.CREATE, False, -1).encode()
        + struct.pack(">i", 0x7FFFFFFF),
    }
    tracemalloc.start()
    try:
        for op, body in bodies.items():
            frame = wc.frame(struct.pack(">ii", 1, op) + body)
            _, request = server(CONNECT_FRAMES[0] + frame, [])
            assert isinstance(request, wc.ClientRequest)
            assert isinstance(request.record, wc.MalformedRequest), request
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


def test_a_declared_length_is_judged_before_its_bytes_arrive() -> None:
    dec = wc.RequestStreamDecoder()
    dec.receive_data(CONNECT_FRAMES[0] + struct.pack(">i", wc.DEFAULT_MAX_BUFFER + 1))
    assert isinstance(dec.next_message(), cr.ConnectRequest)
    with pytest.raises(wc.ClientProtocolError, match="Len error"):
        dec.next_message()
    with pytest.raises(wc.ClientProtocolError, match="Len error"):
        dec.next_message()  # sticky: the connection is done
