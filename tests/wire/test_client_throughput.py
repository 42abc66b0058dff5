"""Pipelined client traffic through the codec; ``python -m`` prints its throughput.

``PYTHONPATH=src python -m tests.wire.test_client_throughput`` measures, best of 5, the
server decoding getData requests, the server encoding getData replies (100-byte data),
and a client decoding those replies, fed in 64 KiB reads.  The test only checks the
counts (timing assertions do not hold on a loaded machine).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from zkquorum.wire import client as wc
from zkquorum.wire import client_records as cr
from zkquorum.wire.reader import NEED_DATA
from zkquorum.wire.txn import OpCode

CONNECT = wc.encode_connect_request(cr.ConnectRequest(0, 0, 30_000, 0, bytes(16), False))
RESPONSE = cr.GetDataResponse(b"x" * 100, cr.Stat(1, 2, 3, 4, 5, 6, 7, 0, 100, 0, 2))
READ = 65536


def request_stream(n: int) -> bytes:
    return b"".join(
        wc.encode_request(
            i + 1, OpCode.GET_DATA, cr.GetDataRequest(f"/b/node-{i % 1000:04d}", False)
        )
        for i in range(n)
    )


def encode_replies(n: int) -> bytes:
    return b"".join(wc.encode_reply(cr.ReplyHeader(i + 1, 42, 0), RESPONSE) for i in range(n))


def decode_requests(stream: bytes) -> int:
    dec = wc.RequestStreamDecoder()
    dec.receive_data(CONNECT)
    count = -1  # the ConnectRequest
    for i in range(0, len(stream), READ):
        dec.receive_data(stream[i : i + READ])
        while dec.next_message() is not NEED_DATA:
            count += 1
    return count


def decode_replies(stream: bytes, n: int) -> int:
    dec = wc.ReplyStreamDecoder(connected=True)
    for i in range(n):
        dec.expect(i + 1, OpCode.GET_DATA)
    count = 0
    for i in range(0, len(stream), READ):
        dec.receive_data(stream[i : i + READ])
        while dec.next_message() is not NEED_DATA:
            count += 1
    assert dec.pending == 0
    return count


def test_pipelined_frames_in_64k_reads() -> None:
    n = 5000
    assert decode_requests(request_stream(n)) == n
    assert decode_replies(encode_replies(n), n) == n


def _best(f: Callable[[], object], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def main(n: int = 50_000) -> None:
    requests, replies = request_stream(n), encode_replies(n)
    for name, f in (
        ("server decodes getData requests", lambda: decode_requests(requests)),
        ("server encodes getData replies", lambda: encode_replies(n)),
        ("client decodes getData replies", lambda: decode_replies(replies, n)),
    ):
        t = _best(f)
        print(f"{name}: {n / t:,.0f}/s ({t / n * 1e6:.2f} us each)")


if __name__ == "__main__":
    main()
