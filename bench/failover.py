"""Election and failover times of ``zkquorum run`` ensembles, and each peer's memory.

    .venv/bin/python bench/failover.py                  # N = 3, 5, 7; 3 rounds each
    .venv/bin/python bench/failover.py --sizes 5 --rounds 10 --tick 200

Not part of the test suite.  For each N and round: start N peers on loopback (fresh data
dirs, tickTime ``--tick`` ms, syncLimit 5, initLimit 20), then

* **start**: from the start of the processes to the leader's establishment (the epoch
  handshake done), and the election proper (``LEADER ELECTION TOOK``, per peer, max);
* **SIGKILL** of the leader: until a survivor is the established leader of a higher epoch
  (the followers see the TCP connection close at once);
* **SIGSTOP** of the new leader: until the first and the last follower give it up (read
  timeout, syncLimit x tickTime after the last PING), and until a new leader is
  established; then SIGCONT and the old leader must come back as a follower;
* **RSS**: VmRSS of every peer after all that.

Times come from the peers' ``--events`` records (wall clock) minus the wall-clock time at
which the signal was sent.  The processes are those of ``tests/peer/cluster.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.peer.cluster import Ensemble, ensemble, wait_for  # noqa: E402


def established(ens: Ensemble, sids: list[int], since: float, above: int) -> tuple[int, dict]:
    def found() -> tuple[int, dict] | None:
        ens.check_alive()
        for sid in sids:
            for rec in ens.py(sid).events("established", since=since):
                if rec["state"] == "LEADING" and rec["epoch"] > above:
                    return sid, rec
        return None

    return wait_for(found, timeout=30, what=f"a leader above epoch {above}")


def one_round(base: Path, n: int, tick_ms: int) -> dict[str, float]:
    sids = list(range(1, n + 1))
    settings = {"tickTime": str(tick_ms), "initLimit": "20", "syncLimit": "5"}
    settings["4lw.commands.whitelist"] = "*"
    out: dict[str, float] = {}
    with ensemble(base, py_sids=sids, settings=settings, start=False) as ens:
        t0 = time.time()
        ens.start()
        leader, rec = established(ens, sids, t0, above=0)
        out["start_to_established_ms"] = (rec["t"] - t0) * 1000
        ens.wait_for_leader(timeout=30)
        out["election_ms"] = max(
            r["took_ms"] for s in sids for r in ens.py(s).events("decided", since=t0)
        )

        t_kill = time.time()
        ens.servers[leader].kill()
        survivors = [s for s in sids if s != leader]
        second, rec = established(ens, survivors, t_kill, above=1)
        out["sigkill_failover_ms"] = (rec["t"] - t_kill) * 1000
        ens.start([leader])
        wait_for(lambda: ens.servers[leader].mode() == "follower", timeout=30, what="rejoin")

        rest = [s for s in sids if s != second]
        t_stop = time.time()
        ens.py(second).pause()
        try:
            _, rec = established(ens, rest, t_stop, above=2)
            out["sigstop_failover_ms"] = (rec["t"] - t_stop) * 1000

            def detections() -> list[float] | None:
                times = []
                for s in rest:
                    got = [
                        r["t"]
                        for r in ens.py(s).events("phase-over", since=t_stop)
                        if r["state"] == "FOLLOWING"
                    ]
                    if not got:
                        return None
                    times.append((got[0] - t_stop) * 1000)
                return times

            det = wait_for(detections, timeout=10, what="every follower to give up")
            out["sigstop_detect_first_ms"] = min(det)
            out["sigstop_detect_last_ms"] = max(det)
        finally:
            ens.py(second).resume()
        wait_for(lambda: ens.servers[second].mode() == "follower", timeout=30, what="SIGCONT")
        rss = [ens.py(s).rss_kib() or 0 for s in sids]
        out["rss_max_kib"] = max(rss)
        out["rss_mean_kib"] = statistics.fmean(rss)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 7])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tick", type=int, default=100, help="tickTime, ms")
    parser.add_argument("--keep", metavar="DIR", help="keep the peers' dirs and logs in DIR")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every round")
    args = parser.parse_args()
    print(f"tickTime={args.tick} ms, syncLimit=5 (read timeout {5 * args.tick} ms), initLimit=20")
    cols = [
        "start_to_established_ms",
        "election_ms",
        "sigkill_failover_ms",
        "sigstop_detect_first_ms",
        "sigstop_detect_last_ms",
        "sigstop_failover_ms",
        "rss_max_kib",
        "rss_mean_kib",
    ]
    print("N  " + "  ".join(f"{c:>24}" for c in cols) + "   (median [min-max] of rounds)")
    with tempfile.TemporaryDirectory(prefix="zkquorum-bench-") as tmp:
        for n in args.sizes:
            rounds = []
            for r in range(args.rounds):
                rounds.append(one_round(Path(args.keep or tmp, f"n{n}-r{r}"), n, args.tick))
                if args.verbose:
                    got = ", ".join(f"{k}={v:.0f}" for k, v in rounds[-1].items())
                    print(f"   N={n} round {r}: {got}", flush=True)
            cells = []
            for c in cols:
                vals = [r[c] for r in rounds]
                cells.append(
                    f"{statistics.median(vals):8.0f} [{min(vals):5.0f}-{max(vals):5.0f}]".rjust(24)
                )
            print(f"{n:<2} " + "  ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
