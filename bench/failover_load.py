"""The longest stall a client sees when the leader of three servers dies under writes,
zkquorum beside ZooKeeper 3.8 in the same run.

    .venv/bin/python bench/failover_load.py                 # 3 rounds of each
    .venv/bin/python bench/failover_load.py --rounds 5 --clients 8

Not part of the tests.  Per round, Java and zkquorum alternately: three servers on
loopback (``bench/clients.py``'s zoo.cfg: tickTime 2000, fsync on), ``--clients`` kazoo
clients given all three addresses (each picks its server, as kazoo does), each writing
setData of 100 bytes to a node of its own in a loop, one request outstanding, and trying
again as soon as its connection is back after a ConnectionLoss.  After ``--warm`` seconds
the leader gets SIGKILL; the run goes on for ``--after`` seconds.  Printed per run:

* writes/s before the kill;
* the stall: the longest gap between two successful writes of any one client;
* from the kill to the first write that succeeds on some client, and on every client;
* writes that failed (ConnectionLoss and the like), and sessions that expired.

The clients connected to the leader lose their connection at once; those of the followers
lose it when their server leaves broadcast (3.8 closes its clients then) and reconnect to
whichever server serves again, with their session.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import clients as bench  # noqa: E402
from kazoo.client import KazooClient, KazooState  # noqa: E402
from kazoo.exceptions import KazooException, SessionExpiredError  # noqa: E402
from tests.interop.zk import require_zookeeper  # noqa: E402
from tests.judges.targets import JAVA_ENSEMBLE, ZKQUORUM_ENSEMBLE, TargetSpec, run_target  # noqa: E402
from tests.peer.cluster import wait_for  # noqa: E402

VALUE = b"v" * 100
logging.getLogger("kazoo").setLevel(logging.ERROR)  # one line per dropped connection


class Writer(threading.Thread):
    """One client writing its own node until told to stop; the time of every success."""

    def __init__(self, hosts: str, index: int, stop: threading.Event) -> None:
        super().__init__(name=f"writer-{index}", daemon=True)
        self.path = f"/failover/c{index}"
        self.stop = stop
        self.ok: list[float] = []
        self.failed = 0
        self.expired = 0
        self.connected = threading.Event()
        self.client = KazooClient(hosts=hosts, timeout=10.0)
        self.client.add_listener(self._state)

    def _state(self, state: KazooState) -> None:
        if state == KazooState.CONNECTED:
            self.connected.set()
        else:
            self.connected.clear()

    def start_session(self) -> None:
        self.client.start(timeout=30)
        self.connected.set()
        self.client.ensure_path(self.path)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.client.set(self.path, VALUE)
            except SessionExpiredError:
                self.expired += 1
                return
            except KazooException:
                self.failed += 1
                self.connected.wait(0.05)
                continue
            self.ok.append(time.monotonic())

    def close(self) -> None:
        try:
            self.client.stop()
            self.client.close()
        except KazooException:
            pass


def one_run(spec: TargetSpec, clients: int, warm: float, after: float) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        run_target(spec, Path(tmp), require_zookeeper(), settings=bench.SETTINGS) as t,
    ):
        hosts = ",".join(t.hosts(sid) for sid in spec.sids)
        stop = threading.Event()
        writers = [Writer(hosts, i, stop) for i in range(clients)]
        try:
            for w in writers:
                w.start_session()
            for w in writers:
                w.start()
            time.sleep(warm)
            modes = t.ens.modes()
            leader = next(sid for sid, mode in modes.items() if mode == "leader")
            proc = t.ens.servers[leader].proc
            assert proc is not None
            before = sum(len(w.ok) for w in writers)
            killed = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)
            time.sleep(after)
            stop.set()
            for w in writers:
                w.join(timeout=30)
        finally:
            stop.set()
            for w in writers:
                w.close()
        wait_for(lambda: not t.ens.servers[leader].running(), timeout=10, what="the kill")
    stalls = []
    firsts = []
    for w in writers:
        times = sorted(w.ok)
        gaps = [b - a for a, b in itertools.pairwise(times) if b > killed]
        stalls.append(max(gaps, default=after))
        later = [x for x in times if x > killed]
        firsts.append(later[0] - killed if later else after)
    return {
        "before_ops": before / warm,
        "stall_ms": max(stalls) * 1000,
        "first_ms": min(firsts) * 1000,
        "all_ms": max(firsts) * 1000,
        "failed": sum(w.failed for w in writers),
        "expired": sum(w.expired for w in writers),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--warm", type=float, default=4.0, help="seconds of writes before the kill")
    ap.add_argument("--after", type=float, default=20.0, help="seconds of writes after it")
    args = ap.parse_args()
    results: dict[str, list[dict[str, float]]] = {"java": [], "zkquorum": []}
    for _ in range(args.rounds):
        for name, spec in (("java", JAVA_ENSEMBLE), ("zkquorum", ZKQUORUM_ENSEMBLE)):
            r = one_run(spec, args.clients, args.warm, args.after)
            results[name].append(r)
            print(
                f"  {name:8s} before {r['before_ops']:7.0f} writes/s"
                f"   stall {r['stall_ms']:7.0f} ms   first write {r['first_ms']:6.0f} ms"
                f"   every client {r['all_ms']:6.0f} ms"
                f"   failed {r['failed']:4.0f}   expired {r['expired']:.0f}",
                flush=True,
            )
    print(f"\nmedians of {args.rounds} rounds, {args.clients} clients:")
    for key, label in (("stall_ms", "longest stall"), ("all_ms", "every client writing again")):
        java = statistics.median(r[key] for r in results["java"])
        ours = statistics.median(r[key] for r in results["zkquorum"])
        print(
            f"  {label:28s} zkquorum {ours:7.0f} ms   java {java:7.0f} ms   ratio {ours / java:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
