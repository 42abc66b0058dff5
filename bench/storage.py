"""Storage figures: group commit vs one fsync per txn on the loop; snapshot writes.

    PYTHONPATH=src .venv/bin/python bench/storage.py [--txns 10000] [--nodes 100000,1000000]
        [--dir /path/on/the/disk/to/measure] [--fsync-ms 0] [--skip-log] [--skip-snap]

Not part of the test suite.  Every figure comes with the event loop's longest stall,
measured by ``runtime/looplag.py`` (a 1 ms sleeper).

* Log burst: ``--txns`` small creates (one ``append`` per txn, the loop yielding after
  each, as txns arriving from the network would): through the group-committed
  :class:`TxnLog` (writer thread, one fsync per batch), then through the synchronous
  ``Storage.append`` (write + fsync inline on the loop, what the runtime did before).
  Throughput counts until everything is durable.  Then the same closed-loop: 100
  writers, each appending its next txn once its previous one is durable.  ``--fsync-ms``
  adds a fixed time to every log fsync, for a disk slower than the one measured.  Last,
  closed-loop again with the loop saturated by other Python work: a busy loop takes the
  GIL back after every ``select``, which starves helper threads unless the switch
  interval is short (``--switch-interval 0.0005``): the "fsync" times then include the
  writer thread's wait for the GIL.
* Snapshot: a tree of N small znodes (``/bench/n<i>``, 16 bytes of data, the open ACL)
  written by ``await Storage.take_snapshot(tree)`` (captured on the loop, serialised in a
  worker thread) with the loop idle, again with the loop busy (applying setData txns in
  1 ms slices), and by the old synchronous path (``to_snapshot`` + ``write_snapshot`` on
  the loop).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from zkquorum.core.datatree import DataTree, Node
from zkquorum.runtime.looplag import LoopLag, LoopLagMonitor
from zkquorum.runtime.storage import Storage, StorageSettings, TxnLog
from zkquorum.wire.jute import ACL, Id, StatPersisted
from zkquorum.wire.txn import CreateTxn, OpCode, SetDataTxn, Txn, TxnHeader

EPOCH = 1 << 32
FSYNC: Callable[[int], None] | None = None  # --fsync-ms: a slower disk
SWITCH: list[float] = []  # --switch-interval, re-applied after TxnLog.start() lowers it


def start(tl: TxnLog) -> None:
    tl.start()
    for interval in SWITCH:
        sys.setswitchinterval(interval)


OPEN_ACL = (ACL(31, Id("world", "anyone")),)


def creates(n: int) -> list[Txn]:
    return [
        Txn(
            TxnHeader(0x100, i, EPOCH + i, 1_700_000_000_000 + i, OpCode.CREATE),
            CreateTxn(f"/bench/t{i:07d}", b"0123456789abcdef", OPEN_ACL, False, i),
        )
        for i in range(1, n + 1)
    ]


async def measured(
    fn: Callable[[], Coroutine[Any, Any, object]],
) -> tuple[float, LoopLag, object]:
    async with LoopLagMonitor(interval_ms=1.0) as mon:
        await asyncio.sleep(0.01)
        mon.reset()
        t0 = time.perf_counter()
        result = await fn()
        elapsed = time.perf_counter() - t0
        await asyncio.sleep(0.005)  # one more sample after the last stall
    return elapsed, mon.lag(), result


# -- log burst ----------------------------------------------------------------------------


async def group_commit(base: Path, txns: list[Txn]) -> tuple[float, LoopLag, object]:
    s = Storage(base / "gc", fsync=FSYNC)
    s.load_tree()
    tl = s.txn_log(on_synced=lambda z: None, on_error=lambda e: None)
    start(tl)

    async def burst() -> object:
        for t in txns:
            tl.append([t])
            await asyncio.sleep(0)
        await tl.drain()
        return tl.stats

    out = await measured(burst)
    await tl.close()
    return out


async def inline_fsync(base: Path, txns: list[Txn]) -> tuple[float, LoopLag, object]:
    s = Storage(base / "inline", fsync=FSYNC)
    s.load_tree()

    async def burst() -> object:
        for t in txns:
            s.append([t])
            await asyncio.sleep(0)
        return len(txns)

    out = await measured(burst)
    s.close()
    return out


async def closed_loop(
    base: Path, txns: list[Txn], clients: int, inline: bool, busy: bool = False
) -> tuple[float, LoopLag, object]:
    """``clients`` writers, each appending its next txn once its previous one is durable
    (how ZooKeeper clients wait for replies): what a peer's loop sees under write load."""
    s = Storage(base / ("cl-inline" if inline else "cl-gc"), fsync=FSYNC)
    s.load_tree()
    waiting: dict[int, asyncio.Future[None]] = {}

    def synced(zxid: int) -> None:
        for z in [z for z in waiting if z <= zxid]:
            waiting.pop(z).set_result(None)

    tl = s.txn_log(on_synced=synced, on_error=lambda e: None)
    start(tl)
    loop = asyncio.get_running_loop()
    per = len(txns) // clients

    async def client(k: int) -> None:
        for t in txns[k * per : (k + 1) * per]:
            if inline:
                s.append([t])
                await asyncio.sleep(0)
            else:
                fut = loop.create_future()
                waiting[t.header.zxid] = fut
                tl.append([t])
                await fut

    async def run() -> object:
        done = False

        async def spin() -> None:
            # Other work saturating the loop: 1 ms of Python, then one loop iteration.
            while not done:
                end = time.perf_counter() + 0.001
                while time.perf_counter() < end:
                    pass
                await asyncio.sleep(0)

        spinner = asyncio.ensure_future(spin()) if busy else None
        await asyncio.gather(*(client(k) for k in range(clients)))
        done = True
        if spinner is not None:
            await spinner
        return tl.stats

    out = await measured(run)
    await tl.close()
    s.close()
    return out


def lag_text(lag: LoopLag) -> str:
    return f"loop max stall {lag.max_ms:8.1f} ms, stalls >10 ms: {lag.over(10.0)}"


async def log_bench(base: Path, n: int) -> None:
    txns = creates(n)
    print(f"log burst: {n} txns of {len(txns[0].record.path) + 16} B payload")  # type: ignore[union-attr]
    elapsed, lag, stats = await group_commit(base, txns)
    st = stats
    print(
        f"  group commit   {n / elapsed:9.0f} txn/s  {elapsed:7.2f} s  "
        f"fsyncs {st.fsync_count:5d} (mean {st.fsync_mean_ms:.2f} ms, max "  # type: ignore[attr-defined]
        f"{st.fsync_max_ms:.1f} ms)  batches mean {st.batch_mean:.1f} max {st.batch_max}  "  # type: ignore[attr-defined]
        f"{lag_text(lag)}"
    )
    elapsed, lag, _ = await inline_fsync(base, txns)
    print(
        f"  fsync per txn  {n / elapsed:9.0f} txn/s  {elapsed:7.2f} s  fsyncs {n:5d}  "
        f"{' ' * 44}{lag_text(lag)}"
    )
    clients = 100
    print(f"closed loop: {clients} writers, each waiting for its txn to be durable")
    elapsed, lag, stats = await closed_loop(base, txns, clients, inline=False)
    st = stats
    print(
        f"  group commit   {n / elapsed:9.0f} txn/s  {elapsed:7.2f} s  "
        f"fsyncs {st.fsync_count:5d} (mean {st.fsync_mean_ms:.2f} ms, max "  # type: ignore[attr-defined]
        f"{st.fsync_max_ms:.1f} ms)  batches mean {st.batch_mean:.1f} max {st.batch_max}  "  # type: ignore[attr-defined]
        f"{lag_text(lag)}"
    )
    elapsed, lag, _ = await closed_loop(base, txns, clients, inline=True)
    print(
        f"  fsync per txn  {n / elapsed:9.0f} txn/s  {elapsed:7.2f} s  fsyncs {n:5d}  "
        f"{' ' * 44}{lag_text(lag)}"
    )
    m = min(n, 2000)
    print(f"closed loop, {m} txns, the loop saturated by other work (1 ms slices)")
    elapsed, lag, stats = await closed_loop(base, txns[:m], clients, inline=False, busy=True)
    st = stats
    print(
        f"  group commit   {m / elapsed:9.0f} txn/s  {elapsed:7.2f} s  "
        f"fsyncs {st.fsync_count:5d} (mean {st.fsync_mean_ms:.2f} ms, max "  # type: ignore[attr-defined]
        f"{st.fsync_max_ms:.1f} ms)  batches mean {st.batch_mean:.1f} max {st.batch_max}  "  # type: ignore[attr-defined]
        f"{lag_text(lag)}"
    )


# -- snapshots ----------------------------------------------------------------------------


def build_tree(n: int) -> DataTree:
    tree = DataTree("server.1=127.0.0.1:2888:3888:participant\nversion=0")
    tree.nodes["/"].children.add("bench")
    bench = Node(b"", OPEN_ACL, StatPersisted(czxid=1, mzxid=1, pzxid=1))
    tree.nodes["/bench"] = bench
    for i in range(n):
        name = f"n{i:07d}"
        z = EPOCH + 2 + i
        bench.children.add(name)
        tree.nodes[f"/bench/{name}"] = Node(
            b"0123456789abcdef",
            OPEN_ACL,
            StatPersisted(czxid=z, mzxid=z, ctime=z, mtime=z, pzxid=z),
        )
    tree.last_processed_zxid = EPOCH + 1 + n
    return tree


async def snap_bench(base: Path, n: int) -> None:
    tree = build_tree(n)
    print(f"snapshot: {n} znodes")
    s = Storage(base / f"snap{n}", settings=StorageSettings())
    s.snap_dir.mkdir(parents=True, exist_ok=True)

    elapsed, lag, path = await measured(lambda: s.take_snapshot(tree))
    size = Path(str(path)).stat().st_size
    print(
        f"  slices, loop idle   {elapsed:7.2f} s  {size / 1e6:7.1f} MB  {lag_text(lag)}  "
        f"(capture on the loop included)"
    )

    async def busy() -> object:
        task = asyncio.ensure_future(s.take_snapshot(tree))
        applied = 0
        version = 0
        while not task.done():
            t_end = time.perf_counter() + 0.001
            while time.perf_counter() < t_end:
                version += 1
                applied += 1
                tree.apply(
                    Txn(
                        TxnHeader(1, 1, tree.last_processed_zxid + 1, 0, OpCode.SET_DATA),
                        SetDataTxn("/bench/n0000000", b"x", version),
                    )
                )
            await asyncio.sleep(0)
        await task
        return applied

    elapsed, lag, applied = await measured(busy)
    print(
        f"  slices, loop busy   {elapsed:7.2f} s  {applied} setData applied meanwhile  "
        f"{lag_text(lag)}"
    )

    async def inline() -> object:
        return s.write_snapshot(tree.last_processed_zxid, tree.to_snapshot())

    elapsed, lag, _ = await measured(inline)
    print(f"  on the loop (old)   {elapsed:7.2f} s  {' ' * 10}{lag_text(lag)}")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--txns", type=int, default=10_000)
    p.add_argument("--nodes", default="100000,1000000")
    p.add_argument("--dir", default=None, help="where to write (default: a temporary dir)")
    p.add_argument("--fsync-ms", type=float, default=0.0, help="add this much to every log fsync")
    p.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval (s) for the whole run, even after TxnLog.start() "
        "lowers it to 0.0005 (0.005, Python's default, shows the starvation)",
    )
    p.add_argument("--skip-log", action="store_true")
    p.add_argument("--skip-snap", action="store_true")
    args = p.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
        SWITCH.append(args.switch_interval)
    print(f"GIL switch interval {sys.getswitchinterval() * 1000:.1f} ms")
    if args.fsync_ms > 0:
        global FSYNC

        def slow_fsync(fd: int) -> None:
            os.fdatasync(fd)
            time.sleep(args.fsync_ms / 1000.0)  # the simulated device, not a wait

        FSYNC = slow_fsync
    base = Path(tempfile.mkdtemp(prefix="zkq-bench-", dir=args.dir))
    try:
        if not args.skip_log:
            await log_bench(base, args.txns)
        if not args.skip_snap:
            for n in (int(x) for x in args.nodes.split(",") if x):
                await snap_bench(base, n)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
