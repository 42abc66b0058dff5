"""A zkquorum follower of a Java 3.8 leader under 10,000 kazoo writes: ACK latency and the
event loop's longest stall.

    .venv/bin/python bench/follower_java.py                    # 10,000 writes, every mode
    .venv/bin/python bench/follower_java.py --writes 2000 --modes group

Java servers 1 and 2 (Debian's ZooKeeper 3.8) elect a leader; sid 3 is zkquorum's
``LearnerClient`` (the same runtime as ``zkquorum run``, with no election port), which
syncs and then follows while a kazoo client writes through the Java follower, up to
``--inflight`` creates outstanding.  The quorum of the writes is the two Java servers, so
our follower's speed does not pace the clients: it must keep up on its own.

Per PROPOSAL: the time from the moment our follower decoded it to the moment its ACK was
written to the socket (the ACK waits for the txn to be durable).  Loop stall: the longest
lateness of a 5 ms ticker on the follower's loop (``runtime/looplag.py``).  Modes:

* ``group``: the group-committed log (one write and one fsync per batch, on the log's
  thread; ``maxBatchSize`` 1000);
* ``one``: the same log with batches of one txn (one fsync per txn, off the loop);
* ``inline``: run this script from a checkout before the group commit (one fsync per txn
  on the loop); ``--label`` names that run.

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.interop.zk import require_zookeeper  # noqa: E402
from tests.interop.zkserver import java_ensemble  # noqa: E402

from zkquorum.runtime.files import load_config  # noqa: E402
from zkquorum.runtime.looplag import LoopLagMonitor  # noqa: E402
from zkquorum.runtime.quorum_port import LearnerClient  # noqa: E402
from zkquorum.runtime.storage import Storage, StorageSettings  # noqa: E402
from zkquorum.wire.quorum import PacketType, QuorumPacket  # noqa: E402

SETTINGS = {"tickTime": "200", "initLimit": "10", "syncLimit": "5", "4lw.commands.whitelist": "*"}


def _instrument() -> tuple[dict[int, float], dict[int, float]]:
    """Record when each PROPOSAL is decoded and when its ACK is encoded, in whichever
    modules carry the learner's socket and encode its packets (``runtime.quorum_io`` and
    ``runtime.peer``, or the older ``runtime.quorum_port``)."""
    try:
        mod: Any = importlib.import_module("zkquorum.runtime.quorum_io")
    except ImportError:
        mod = importlib.import_module("zkquorum.runtime.quorum_port")
    encoders = [mod]
    with contextlib.suppress(ImportError):
        peer_mod = importlib.import_module("zkquorum.runtime.peer")
        if hasattr(peer_mod, "encode_packet"):
            encoders.append(peer_mod)
    proposed: dict[int, float] = {}
    acked: dict[int, float] = {}
    encode = mod.encode_packet
    decoder = mod.QuorumStreamDecoder

    def encode_packet(p: QuorumPacket) -> bytes:
        if p.type is PacketType.ACK and p.zxid not in acked:
            acked[p.zxid] = time.perf_counter()
        return encode(p)  # type: ignore[no-any-return]

    class Decoder(decoder):  # type: ignore[misc, valid-type]
        def next_message(self) -> object:
            msg = super().next_message()
            if isinstance(msg, QuorumPacket) and msg.type is PacketType.PROPOSAL:
                proposed.setdefault(msg.zxid, time.perf_counter())
            return msg

    for m in encoders:
        m.encode_packet = encode_packet
    mod.QuorumStreamDecoder = Decoder
    return proposed, acked


def _write(port: int, n: int, inflight: int) -> float:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=20)
    zk.start(timeout=30)
    try:
        zk.ensure_path("/bench")
        t0 = time.perf_counter()
        pending = []
        for i in range(n):
            pending.append(zk.create_async(f"/bench/n{i}", b"x" * 100))
            if len(pending) >= inflight:
                for p in pending:
                    p.get(timeout=60)
                pending.clear()
        for p in pending:
            p.get(timeout=60)
        return time.perf_counter() - t0
    finally:
        zk.stop()
        zk.close()


async def _run(mode: str, writes: int, inflight: int) -> dict[str, float]:
    failure: str | None = None
    proposed, acked = _instrument()
    install = require_zookeeper()
    with (
        tempfile.TemporaryDirectory(prefix="zkq-bench-") as tmp,
        java_ensemble(install, Path(tmp), (1, 2, 3), start=False, settings=SETTINGS) as ens,
    ):
        ens.start([1, 2])
        leader = await asyncio.to_thread(ens.wait_for_leader, 60)
        follower = 2 if leader == 1 else 1
        cfg = load_config(ens.servers[3].cfg_path)
        settings = StorageSettings(max_batch=1) if mode == "one" else StorageSettings()
        try:
            storage = Storage(ens.servers[3].data_dir, config_text="", settings=settings)
        except TypeError:  # a checkout before StorageSettings
            storage = Storage(ens.servers[3].data_dir, config_text="")
        async with LearnerClient(cfg, storage, leader) as client:
            await client.wait_established(timeout=30)
            async with LoopLagMonitor(interval_ms=5) as mon:
                took = await asyncio.to_thread(
                    _write, ens.servers[follower].client_port, writes, inflight
                )
                deadline = time.monotonic() + 60
                while len(acked) < writes and time.monotonic() < deadline and not client.failure:
                    await asyncio.sleep(0.05)  # polling the figures, not synchronising
                lag = mon.lag()
            failure = client.failure
    lat = sorted((acked[z] - t) * 1000 for z, t in proposed.items() if z in acked)
    if not lat:
        raise SystemExit("no ACK measured")
    if failure is not None:
        print(f"  the follower lost its leader after {len(lat)} ACKs: {failure}", flush=True)
    return {
        "writes/s": writes / took,
        "acks": len(lat),
        "ack p50 ms": statistics.median(lat),
        "ack p99 ms": lat[int(len(lat) * 0.99) - 1],
        "ack max ms": lat[-1],
        "loop max stall ms": lag.max_ms,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--writes", type=int, default=10_000)
    ap.add_argument("--inflight", type=int, default=200)
    ap.add_argument("--modes", nargs="+", default=["group", "one"])
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    for mode in args.modes:
        r = asyncio.run(_run(mode, args.writes, args.inflight))
        figures = "  ".join(f"{k} {v:.1f}" for k, v in r.items())
        print(f"{args.label or mode:>8}: {figures}", flush=True)


if __name__ == "__main__":
    main()
