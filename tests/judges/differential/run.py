"""Run the differential workload on two targets by hand and print what differs.

    python -m tests.judges.differential.run --a java-standalone --b zkquorum-standalone \\
        [--seed 7] [--ops 500] [--show]

Targets are the names in tests/judges/targets.py (java-standalone, java-3,
zkquorum-standalone, zkquorum-3, java-2+zkquorum-leader).  Exit status 1 when they differ.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.interop.zk import require_zookeeper
from tests.judges.differential.workload import (
    SERVER_PROPERTIES,
    Record,
    compare,
    make_workload,
    run_workload,
)
from tests.judges.targets import BY_NAME, run_target


def record(name: str, seed: int, ops: int, base: Path) -> Record:
    spec = BY_NAME[name]
    install = require_zookeeper() if spec.java_sids else None
    with run_target(spec, base / name, install, system_properties=SERVER_PROPERTIES) as t:
        start = time.monotonic()
        rec = run_workload(name, t.hosts(), make_workload(seed, ops), seed)
        print(
            f"{name}: {len(rec.results)} calls, {len(rec.events)} watch events, "
            f"{len(rec.tree)} nodes in {time.monotonic() - start:.1f} s"
        )
        return rec


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.judges.differential.run")
    parser.add_argument("--a", default="java-standalone", choices=sorted(BY_NAME))
    parser.add_argument("--b", default="java-3", choices=sorted(BY_NAME))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--show", action="store_true", help="print A's calls and results")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="differential-"))
    a = record(args.a, args.seed, args.ops, base)
    b = record(args.b, args.seed, args.ops, base)
    if args.show:
        for r in a.results:
            print(f"{r.step:4} {r.call} -> {r.outcome}")
    diffs = compare(a, b, limit=100)
    print("\n".join(diffs) if diffs else f"{args.a} and {args.b} agree (seed {args.seed})")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
