"""Long fuzz campaign for the wire codecs (not part of the test suite).

    .venv/bin/python bench/fuzz_wire.py atheris -max_total_time=600   # needs `pip install atheris`
    .venv/bin/python bench/fuzz_wire.py hypothesis 20000             # N examples per target

Each input picks a decoder (election initiator/acceptor, quorum leader/learner stream),
gives it bytes (raw fuzz bytes, or a mutated captured message) in a fuzz-chosen
chunking, and checks: only ProtocolError escapes, and the outcome is identical to feeding
the same bytes in one piece.  Every one-shot decoder runs on the same bytes too.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

COUNT = 0


def check(kind_index: int, data: bytes, cuts: list[int]) -> None:
    from tests.wire.fuzzing import DECODERS, run_one_shot, run_stream

    global COUNT
    COUNT += 1
    kinds = sorted(DECODERS)
    make = DECODERS[kinds[kind_index % len(kinds)]]
    whole = run_stream(make, data, [])
    assert run_stream(make, data, cuts) == whole, (data.hex(), cuts)
    run_one_shot(data)


def seeds() -> list[bytes]:
    from tests.wire.conftest import captured_bytes

    out: list[bytes] = []
    for kind in ("initial", "notification", "packet", "snapshot"):
        out += captured_bytes(kind)
    return out


def main_atheris(argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports():
        import zkquorum.wire.election
        import zkquorum.wire.jute
        import zkquorum.wire.quorum
        import zkquorum.wire.reader
        import zkquorum.wire.snapshot
        import zkquorum.wire.txn  # noqa: F401

    corpus = Path(tempfile.gettempdir()) / "zkquorum-fuzz-corpus"
    corpus.mkdir(exist_ok=True)
    for i, seed in enumerate(seeds()):
        for k in range(4):
            (corpus / f"seed-{i}-{k}").write_bytes(bytes([k, 0]) + seed)

    def one(buf: bytes) -> None:
        if len(buf) < 2:
            return
        kind, ncuts = buf[0], buf[1] % 8
        cuts = list(buf[2 : 2 + ncuts])
        check(kind, buf[2 + ncuts :], [c * 3 for c in cuts])

    start = time.monotonic()
    try:
        atheris.Setup([argv[0], str(corpus), *argv[1:]], one)
        atheris.Fuzz()
    finally:
        print(f"inputs run: {COUNT} in {time.monotonic() - start:.0f} s")


def main_hypothesis(n: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from tests.wire.fuzzing import mutate

    pool = seeds()
    edits = st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 2**16), st.integers(0, 255)), max_size=8
    )

    @given(
        st.integers(0, 3),
        st.binary(max_size=600) | st.builds(mutate, st.sampled_from(pool), edits),
        st.lists(st.integers(0, 10_000), max_size=16),
    )
    @settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck))
    def run(kind: int, data: bytes, cuts: list[int]) -> None:
        check(kind, data, cuts)

    start = time.monotonic()
    run()
    print(f"inputs run: {COUNT} in {time.monotonic() - start:.0f} s, no failure")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "hypothesis":
        main_hypothesis(int(sys.argv[2]) if len(sys.argv) > 2 else 10_000)
    elif len(sys.argv) > 1 and sys.argv[1] == "atheris":
        main_atheris([sys.argv[0], *sys.argv[2:]])
    else:
        print(__doc__)
        sys.exit(2)
