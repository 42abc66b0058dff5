"""Election and failover times with quorum TLS off and on, side by side (issue 10).

    .venv/bin/python bench/tls.py                 # 3 zkquorum peers, 5 runs per mode
    .venv/bin/python bench/tls.py --runs 10 --mixed   # Java 1, 2 + zkquorum 3 (needs zookeeper)

Per run, per mode: start the ensemble; **election** = the longest "LEADER ELECTION TOOK"
of the first election (LOOKING to decision, as each server logs it) and **serving** = wall
time from starting the processes to every server answering srvr with one leader.  Then
kill -9 the leader: **failover** = wall time until the survivors serve with a new leader,
and the new election's own figure.  Same machine, same tickTime (200 ms), modes
interleaved run by run so that load drifts hit both alike.  Prints medians (and min-max).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

TOOK = re.compile(r"LEADER ELECTION TOOK - (\d+) MS")


def _took(log: str) -> list[int]:
    return [int(x) for x in TOOK.findall(log)]


def one_run(base: Path, tls: bool, mixed: bool, pki: object, install: object) -> dict[str, float]:
    from tests.interop.zk import ZooKeeperInstall
    from tests.peer.cluster import ensemble
    from tests.tls.certs import Pki
    from tests.tls.java import FAST, tls_ensemble

    py_sids, java_sids = ([3], [1, 2]) if mixed else ([1, 2, 3], [])
    if mixed:
        assert isinstance(install, ZooKeeperInstall)
        cm = tls_ensemble(
            base,
            pki if tls else None,  # type: ignore[arg-type]
            install,
            py_sids=py_sids,
            java_sids=java_sids,
            start=False,
        )
    else:
        settings = dict(FAST)
        if tls:
            assert isinstance(pki, Pki)
            settings.update(pki.settings("s1"))
        cm = ensemble(base, py_sids=py_sids, settings=settings, start=False)
    with cm as ens:
        t0 = time.monotonic()
        ens.start()
        leader = ens.wait_for_leader(timeout=60)
        serving = time.monotonic() - t0
        first = max(max(_took(s.log()), default=0) for s in ens.servers.values())
        counts = {sid: len(_took(s.log())) for sid, s in ens.servers.items()}
        t1 = time.monotonic()
        ens.servers[leader].kill()
        rest = [s for s in ens.servers if s != leader]
        ens.wait_for_leader(rest, timeout=60)
        failover = time.monotonic() - t1
        second = max(max(_took(ens.servers[s].log())[counts[s] :], default=0) for s in rest)
    return {
        "election_ms": first,
        "serving_s": serving,
        "failover_s": failover,
        "failover_election_ms": second,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mixed", action="store_true", help="Java 1, 2 + zkquorum 3")
    args = parser.parse_args()
    from tests.interop.zk import zookeeper_status
    from tests.tls.certs import make_pki

    install = None
    if args.mixed:
        install, reason = zookeeper_status()
        if install is None:
            print(f"no ZooKeeper: {reason}", file=sys.stderr)
            return 2
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="zkq-bench-tls-") as tmp:
        base = Path(tmp)
        pki = make_pki(base / "pki")
        for i in range(args.runs):
            for tls in (False, True):
                r = one_run(
                    base / f"run{i}-{'tls' if tls else 'plain'}", tls, args.mixed, pki, install
                )
                results[tls].append(r)
                print(f"run {i} {'TLS  ' if tls else 'plain'} {r}", flush=True)
    kind = "Java 1,2 + zkquorum 3" if args.mixed else "3 zkquorum peers"
    print(f"\n{kind}, tickTime=200, {args.runs} runs per mode: median (min-max)")
    print(f"{'':24}{'TLS off':>26}{'TLS on':>26}")
    for key in ("election_ms", "serving_s", "failover_s", "failover_election_ms"):
        cells = []
        for tls in (False, True):
            vals = [r[key] for r in results[tls]]
            cells.append(f"{statistics.median(vals):.2f} ({min(vals):.2f}-{max(vals):.2f})")
        print(f"{key:24}{cells[0]:>26}{cells[1]:>26}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
