"""Where the tests find the captures and vectors they replay.

``tests/testdata/vectors`` holds copies of the project's reference captures of real
ZooKeeper 3.8.0 traffic (``docs/spec`` describes how they were taken; ``CLIENT-README.md``
there describes the client-port ones) and, under ``linearizability/``, histories with known
verdicts (from the Porcupine checker's test data).  They are part of the repository, so a
fresh clone replays them instead of skipping.
"""

from __future__ import annotations

from pathlib import Path

VECTORS = Path(__file__).resolve().parent / "testdata" / "vectors"
