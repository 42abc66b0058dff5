"""Where a zkquorum leader's time goes under writes at N = 3, and the ceiling it implies.

    .venv/bin/pip install py-spy
    .venv/bin/python bench/leader_floor.py                  # set@256 for 15 s
    .venv/bin/python bench/leader_floor.py --seconds 30 --depth 64

Not part of the tests.  Three zkquorum peers on loopback (the zoo.cfg of
``bench/clients.py``: fsync on), the load generator of ``bench/clients.py`` writing
(setData, 100 bytes) with ``--depth`` requests outstanding spread over all three, and
py-spy sampling the leader at 200 Hz for the whole run.  Printed: writes per second; how
busy the leader's event loop was (its samples over the run's length); the loop's time per
write by where it was spent (the pure cores, the codecs, the runtime, asyncio and the
sockets, dataclass constructors); and the ceiling of a leader whose loop did nothing but
the cores and codecs for each write: the floor of this design in this language, however
the I/O around it is tuned.  The followers and the log's thread run on other cores.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import clients as bench  # noqa: E402
from tests.interop.zk import require_zookeeper  # noqa: E402
from tests.judges.targets import ZKQUORUM_ENSEMBLE, run_target  # noqa: E402

RATE_HZ = 200
CATEGORIES = (
    ("zkquorum/core", "cores"),
    ("zkquorum/wire", "codecs"),
    ("zkquorum/runtime", "runtime"),
    ("asyncio", "asyncio and sockets"),
    ("selectors", "asyncio and sockets"),
    ("socket", "asyncio and sockets"),
    ("<string>", "dataclass constructors"),
)


def categorise(raw: Path) -> tuple[collections.Counter[str], int]:
    """Samples of the event loop's thread by the category of their innermost frame."""
    by: collections.Counter[str] = collections.Counter()
    loop_samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        if not any("run_forever" in f for f in frames):
            continue  # the log's writer thread and the executor
        n = int(count)
        loop_samples += n
        leaf = frames[-1]
        where = next((name for key, name in CATEGORIES if key in leaf), "other")
        by[where] += n
    return by, loop_samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--depth", type=int, default=256)
    ap.add_argument(
        "--peer", choices=["leader", "follower"], default="leader", help="which peer to sample"
    )
    ap.add_argument("--raw", type=Path, help="keep py-spy's raw stacks of the leader here")
    ap.add_argument("--top", type=int, default=0, help="print the N functions most often on top")
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("bench/leader_floor.py: py-spy not found (pip install py-spy)", file=sys.stderr)
        return 2
    install = require_zookeeper()
    spec = ZKQUORUM_ENSEMBLE
    with (
        tempfile.TemporaryDirectory(prefix="zkq-floor-") as tmp,
        run_target(spec, Path(tmp), install, settings=bench.SETTINGS) as t,
    ):
        addresses = [t.address(sid) for sid in spec.sids]
        modes = t.ens.modes()
        leader = next(sid for sid, mode in modes.items() if mode == args.peer)
        pids = [t.ens.servers[sid].proc.pid for sid in spec.sids]  # type: ignore[union-attr]
        leader_pid = t.ens.servers[leader].proc.pid  # type: ignore[union-attr]
        asyncio.run(bench._prepare(*addresses[0], 0))
        raw = Path(tmp) / "leader.txt"
        record = subprocess.Popen(
            [
                spy,
                "record",
                "-p",
                str(leader_pid),
                "-d",
                str(int(args.seconds)),
                "-r",
                str(RATE_HZ),
                "-f",
                "raw",
                "-o",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        row = bench._measure("zkquorum", addresses, pids, "set", args.seconds, depth=args.depth)
        record.wait()
        by, loop_samples = categorise(raw)
        if args.raw:
            shutil.copyfile(raw, args.raw)
        top = _top_frames(raw, args.top)
    writes = row["ops/s"] * args.seconds
    busy = loop_samples / (RATE_HZ * args.seconds)
    print(f"{args.peer} (sid {leader}): event loop busy {100 * busy:.0f}% of the run")
    print(f"the {args.peer} loop's time per write, by where it went:")
    per_write = {k: v / RATE_HZ / writes * 1e6 for k, v in by.items()}
    for name, us in sorted(per_write.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<24} {us:7.1f} us  ({100 * by[name] / loop_samples:4.1f}%)")
    floor = per_write.get("cores", 0.0) + per_write.get("codecs", 0.0)
    print(f"  {'total':<24} {sum(per_write.values()):7.1f} us")
    if floor:
        print(
            f"cores + codecs alone: {floor:.1f} us per write at the {args.peer}: a ceiling of "
            f"{1e6 / floor:,.0f} writes/s for its loop"
        )
    for frame, n in top:
        print(f"  {100 * n / loop_samples:5.1f}%  {frame}")
    return 0


def _top_frames(raw: Path, n: int) -> list[tuple[str, int]]:
    """The ``n`` innermost frames of the event loop's thread sampled most often."""
    if n <= 0:
        return []
    by: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if stack and any("run_forever" in f for f in frames):
            by[frames[-1]] += int(count)
    return by.most_common(n)


if __name__ == "__main__":
    sys.exit(main())
