"""What ``zkquorum run --loop uvloop`` costs and brings beside asyncio's own loop.

    .venv/bin/python bench/loops.py                 # start-up and memory, 5 starts each
    .venv/bin/python bench/clients.py --ensemble --depths 256 --workloads set get \\
        --znodes 0 --loops asyncio uvloop           # throughput on both loops, Java beside

Not part of the tests.  Each start is a standalone ``zkquorum run`` on an empty data
directory, timed from the process's start to its first answered session
(``ConnectResponse``), and its resident memory read from /proc once it serves; the two
loops alternate.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.interop.zkserver import free_ports  # noqa: E402
from tests.judges.targets import open_and_close_session  # noqa: E402

STARTS = 5


def _first_session(port: int, deadline: float) -> None:
    while True:
        try:
            open_and_close_session("127.0.0.1", port, timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _rss_kib(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if "VmRSS" in x)
    return int(line.split()[1])


def main() -> int:
    out: dict[str, list[tuple[float, int]]] = {}
    for loop in ["asyncio", "uvloop"] * STARTS:
        with tempfile.TemporaryDirectory(prefix="zkq-loops-") as tmp:
            (port,) = free_ports(1)
            (Path(tmp) / "data").mkdir()
            cfg = Path(tmp) / "zoo.cfg"
            cfg.write_text(
                f"tickTime=2000\ndataDir={tmp}/data\nclientPort={port}\n"
                "clientPortAddress=127.0.0.1\n"
            )
            t0 = time.monotonic()
            cmd = [sys.executable, "-m", "zkquorum", "run", "--loop", loop, str(cfg)]
            proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
            try:
                _first_session(port, t0 + 30)
                took = time.monotonic() - t0
                rss = _rss_kib(proc.pid)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            out.setdefault(loop, []).append((took, rss))
    base_t = statistics.median(t for t, _ in out["asyncio"])
    base_r = statistics.median(r for _, r in out["asyncio"])
    for loop, runs in out.items():
        t = statistics.median(x for x, _ in runs)
        r = statistics.median(x for _, x in runs)
        print(
            f"{loop:<8} start to first session {t * 1000:5.0f} ms ({t / base_t:4.2f}), "
            f"RSS {r / 1024:5.1f} MiB ({r / base_r:4.2f}), medians of {len(runs)} starts"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
