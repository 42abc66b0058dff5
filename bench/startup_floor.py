"""How long N Python processes take just to start and import a zkquorum peer's code.

    .venv/bin/python bench/startup_floor.py [N]        # default 51

Not part of the test suite.  It bounds the cold start of an N-peer ensemble with one
process per peer (``zkquorum cluster``, ``bench/election.py``) from below: nothing is
bound or sent; each process imports what ``zkquorum run`` imports (OpenSSL blocked, as
``zkquorum run`` does without sslQuorum) and exits.  Compared with bare ``import asyncio``
and an empty interpreter, started the same way at the same time.
"""

from __future__ import annotations

import subprocess
import sys
import time

PEER = (
    "import sys; sys.modules['ssl'] = None; "
    "import asyncio, zkquorum.cli.main, zkquorum.cli.run_cmd, zkquorum.runtime.peer"
)
ASYNCIO = "import sys; sys.modules['ssl'] = None; import asyncio"
EMPTY = "pass"


def wall(n: int, code: str) -> float:
    t0 = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a process failed: {code}")
    return time.monotonic() - t0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 51
    for label, code in (
        ("zkquorum peer imports", PEER),
        ("import asyncio", ASYNCIO),
        ("empty interpreter", EMPTY),
    ):
        print(f"{n} processes, {label}: {wall(n, code):.2f} s wall")


if __name__ == "__main__":
    main()
