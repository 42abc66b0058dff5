"""Client-path figures of a zkquorum standalone server beside Debian's ZooKeeper 3.8.

    .venv/bin/python bench/clients.py                      # every workload, 5 s each
    .venv/bin/python bench/clients.py --seconds 3 --depths 1 256 --workloads get set
    .venv/bin/python bench/clients.py --znodes 100000      # resident memory per znode

Not part of the tests.  Both servers run alternately in the same run, on loopback, with the
same zoo.cfg settings (fsync on, as users run them), driven by the same load generator:
raw ZooKeeper protocol over asyncio (:mod:`zkquorum.wire.client`), requests encoded once
up front, replies matched per connection in order (a server answers each connection in
request order), ``--depth`` requests outstanding in total over up to 16 connections.
The generator's own limit is measured first against a stub that answers every request
at once without parsing it (``stub`` row): a server figure near it is the generator's
bound, not the server's.

Figures per workload and depth: operations per second; latency p50, p99, p99.9 (ms);
server CPU per operation (µs, from /proc/<pid>/stat); then the resident memory of each
server holding ``--znodes`` znodes of 100 bytes.  Ratios are zkquorum / ZooKeeper.

``--restart``: after the memory phase, each standalone server is stopped (SIGTERM) and
started again on its data (the snapshot and log of ``--znodes`` more znodes): the time
from the new process's start to its first answered session (``ConnectResponse``).

``--half-java-peak``: per workload, one more run of each server, open loop (requests sent
on a fixed schedule over 16 connections, each latency counted from when its request was
due), at half of the best ops/s ZooKeeper reached over ``--depths`` in this run: the p99
a user sees below saturation.

``--ensemble``: three servers of each kind, the connections spread over all of them (reads
served locally, writes through the leader), CPU per operation summed over the three; the
memory figure is then server 1's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
)

from tests.interop.zk import require_zookeeper  # noqa: E402
from tests.judges.targets import (  # noqa: E402
    JAVA_ENSEMBLE,
    JAVA_STANDALONE,
    ZKQUORUM_ENSEMBLE,
    ZKQUORUM_STANDALONE,
    run_target,
)

from zkquorum.wire.client import encode_connect_request, encode_request  # noqa: E402
from zkquorum.wire.client_records import (  # noqa: E402
    OPEN_ACL_UNSAFE,
    ConnectRequest,
    CreateRequest,
    GetDataRequest,
    SetDataRequest,
)
from zkquorum.wire.txn import OpCode  # noqa: E402

VALUE = b"v" * 100
KEYS = 1000
POOL = 1000
SETTINGS = {"tickTime": "2000", "maxSessionTimeout": "60000"}
CLK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- requests ------------------------------------------------------------------------------


def _requests(kind: str, conn: int) -> Callable[[int], bytes]:
    """The i-th request of connection ``conn``: reads and updates cycle over a pool
    encoded once; creates are encoded as they go (each needs a new path)."""
    if kind == "create":
        stamp = time.monotonic_ns()

        def create(i: int) -> bytes:
            req = CreateRequest(f"/bench/c{conn}-{stamp}-{i}", VALUE, OPEN_ACL_UNSAFE, 0)
            return encode_request(i + 1, OpCode.CREATE, req)

        return create
    pool = []
    for i in range(POOL):
        key = f"/bench/k{(conn * 7919 + i) % KEYS}"
        op = kind
        if kind == "mix":  # 90 % reads, 10 % writes
            op = "set" if i % 10 == 0 else "get"
        if op == "get":
            pool.append(encode_request(i + 1, OpCode.GET_DATA, GetDataRequest(key, False)))
        elif op == "set":
            pool.append(encode_request(i + 1, OpCode.SET_DATA, SetDataRequest(key, VALUE, -1)))
        else:
            raise ValueError(kind)
    return lambda i: pool[i % POOL]


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection(host, port)
    w.write(encode_connect_request(ConnectRequest(0, 0, 30_000, 0, bytes(16), False)))
    n = struct.unpack(">i", await r.readexactly(4))[0]
    await r.readexactly(n)
    return r, w


async def _conn_load(
    host: str, port: int, kind: str, index: int, depth: int, until: float, lat: list[float]
) -> int:
    r, w = await _connect(host, port)
    request = _requests(kind, index)
    sent: deque[float] = deque()
    done = 0
    nxt = 0
    try:
        while nxt < depth:
            sent.append(time.perf_counter())
            w.write(request(nxt))
            nxt += 1
        while True:
            head = await r.readexactly(4)
            n = struct.unpack(">i", head)[0]
            body = await r.readexactly(n)
            if body[:4] == b"\xff\xff\xff\xff":
                continue  # a notification
            now = time.perf_counter()
            lat.append(now - sent.popleft())
            done += 1
            if now < until:
                sent.append(now)
                w.write(request(nxt))
                nxt += 1
            elif not sent:
                break
    finally:
        w.close()
    return done


async def _conn_rate(
    host: str, port: int, kind: str, index: int, rate: float, until: float, lat: list[float]
) -> int:
    """Open loop: the i-th request is due at ``start + i / rate`` whatever came back, and
    its latency counts from when it was due (a server that falls behind is charged for the
    wait, not excused by a slower sender)."""
    r, w = await _connect(host, port)
    request = _requests(kind, index)
    due: deque[float] = deque()
    finished = asyncio.Event()
    done = 0

    async def send() -> None:
        start = time.perf_counter()
        i = 0
        while True:
            at = start + i / rate
            if at >= until:
                break
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            due.append(at)
            w.write(request(i))
            i += 1
        finished.set()

    sender = asyncio.ensure_future(send())
    try:
        while not (finished.is_set() and not due):
            try:
                head = await asyncio.wait_for(r.readexactly(4), timeout=30)
            except TimeoutError:
                break
            body = await r.readexactly(struct.unpack(">i", head)[0])
            if body[:4] == b"\xff\xff\xff\xff":
                continue  # a notification
            lat.append(time.perf_counter() - due.popleft())
            done += 1
    finally:
        sender.cancel()
        w.close()
    return done


async def _rate_load(
    addresses: list[Address], kind: str, rate: float, seconds: float, conns: int = 16
) -> tuple[int, list[float], float]:
    """``rate`` requests per second in total, open loop, over ``conns`` connections."""
    lat: list[float] = []
    start = time.perf_counter()
    until = start + seconds
    done = await asyncio.gather(
        *(
            _conn_rate(*addresses[i % len(addresses)], kind, i, rate / conns, until, lat)
            for i in range(conns)
        )
    )
    return sum(done), lat, time.perf_counter() - start


Address = tuple[str, int]


async def _load(
    addresses: list[Address], kind: str, depth: int, seconds: float
) -> tuple[int, list[float], float]:
    """``depth`` requests outstanding over up to 16 connections, spread over the servers."""
    conns = min(depth, 16)
    per = [depth // conns + (1 if i < depth % conns else 0) for i in range(conns)]
    lat: list[float] = []
    start = time.perf_counter()
    until = start + seconds
    done = await asyncio.gather(
        *(
            _conn_load(*addresses[i % len(addresses)], kind, i, per[i], until, lat)
            for i in range(conns)
        )
    )
    return sum(done), lat, time.perf_counter() - start


async def _prepare(host: str, port: int, znodes: int) -> None:
    """/bench and its KEYS children (plus ``znodes`` more), pipelined."""
    r, w = await _connect(host, port)
    paths = ["/bench"] + [f"/bench/k{i}" for i in range(KEYS)]
    paths += [f"/bench/z{i}" for i in range(znodes)]
    window = 512
    inflight = 0
    i = 0
    while i < len(paths) or inflight:
        while i < len(paths) and inflight < window:
            req = CreateRequest(paths[i], VALUE, OPEN_ACL_UNSAFE, 0)
            w.write(encode_request(i + 1, OpCode.CREATE, req))
            i += 1
            inflight += 1
        n = struct.unpack(">i", await r.readexactly(4))[0]
        await r.readexactly(n)
        inflight -= 1
    w.close()


# -- the stub --------------------------------------------------------------------------------


async def _stub_server() -> tuple[asyncio.AbstractServer, int]:
    reply = struct.pack(">iiqi", 16, 0, 1, 0)  # xid unused by the generator

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            n = struct.unpack(">i", await r.readexactly(4))[0]
            await r.readexactly(n)
            w.write(struct.pack(">i", 36) + bytes(36))
            while True:
                n = struct.unpack(">i", await r.readexactly(4))[0]
                await r.readexactly(n)
                w.write(reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


# -- running ---------------------------------------------------------------------------------


def _row(
    name: str, done: int, lat: list[float], took: float, cpu: float | None
) -> dict[str, float]:
    lat.sort()
    ms = [x * 1000 for x in lat]

    def q(p: float) -> float:
        return ms[min(len(ms) - 1, int(len(ms) * p))] if ms else float("nan")

    row = {
        "ops/s": done / took,
        "p50 ms": q(0.5),
        "p99 ms": q(0.99),
        "p99.9 ms": q(0.999),
        "cpu us/op": (cpu / done * 1e6) if cpu is not None and done else float("nan"),
    }
    print(f"  {name:<32} " + "  ".join(f"{k} {v:10.2f}" for k, v in row.items()), flush=True)
    return row


def _measure(
    name: str,
    addresses: list[Address],
    pids: list[int],
    kind: str,
    seconds: float,
    *,
    depth: int = 0,
    rate: float = 0.0,
) -> dict[str, float]:
    """One run, closed loop at ``depth`` outstanding or open loop at ``rate`` per second;
    CPU per op summed over every server of the target."""
    cpu0 = sum(_cpu_seconds(p) for p in pids)
    if rate:
        load, label = _rate_load(addresses, kind, rate, seconds), f"at {rate:,.0f}/s"
    else:
        load, label = _load(addresses, kind, depth, seconds), f"depth={depth}"
    done, lat, took = asyncio.run(load)
    cpu = sum(_cpu_seconds(p) for p in pids) - cpu0 if pids else None
    return _row(f"{name} {kind} {label}", done, lat, took, cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--depths", type=int, nargs="+", default=[1, 16, 256])
    ap.add_argument("--workloads", nargs="+", default=["create", "set", "get", "mix"])
    ap.add_argument("--znodes", type=int, default=100_000)
    ap.add_argument(
        "--ensemble", action="store_true", help="3 servers each, clients spread over all of them"
    )
    ap.add_argument(
        "--restart",
        action="store_true",
        help="time a restart to serving on the --znodes data (standalone only)",
    )
    ap.add_argument(
        "--half-java-peak",
        action="store_true",
        help="per workload, also an open-loop run at half of ZooKeeper's best ops/s, both",
    )
    ap.add_argument(
        "--loops",
        nargs="+",
        default=["asyncio"],
        choices=["asyncio", "uvloop"],
        help="run zkquorum once on each event loop (zkquorum run --loop), in this run",
    )
    args = ap.parse_args()
    install = require_zookeeper()
    results: dict[tuple[str, str, int], dict[str, float]] = {}

    async def stub_rows() -> None:
        server, port = await _stub_server()
        for depth in args.depths:
            done, lat, took = await _load([("127.0.0.1", port)], "get", depth, args.seconds)
            results[("stub", "get", depth)] = _row(f"stub get depth={depth}", done, lat, took, None)
        server.close()

    print("load generator against a stub that answers at once:")
    asyncio.run(stub_rows())
    memory: dict[str, tuple[int, int]] = {}
    half_rate: dict[str, float] = {}
    restart: dict[str, float] = {}
    java_spec, zkq_spec = (JAVA_ENSEMBLE, ZKQUORUM_ENSEMBLE)
    if not args.ensemble:
        java_spec, zkq_spec = JAVA_STANDALONE, ZKQUORUM_STANDALONE
    zkq_names = [_zkq_name(loop) for loop in args.loops]
    specs = [("java", java_spec, "asyncio")]
    specs += [(_zkq_name(loop), zkq_spec, loop) for loop in args.loops]
    for name, spec, loop in specs:
        os.environ["ZKQUORUM_LOOP"] = loop
        with (
            tempfile.TemporaryDirectory(prefix="zkq-clients-") as tmp,
            run_target(spec, Path(tmp), install, settings=SETTINGS) as t,
        ):
            addresses = [t.address(sid) for sid in spec.sids]
            host, port = addresses[0]
            procs = [t.ens.servers[sid].proc for sid in spec.sids]  # type: ignore[union-attr]
            pids = [p.pid for p in procs if p is not None]
            pid = pids[0] if pids else None
            print(f"{name} (pids {pids}):", flush=True)
            asyncio.run(_prepare(host, port, 0))
            for kind in args.workloads:
                for depth in args.depths:
                    results[(name, kind, depth)] = _measure(
                        name, addresses, pids, kind, args.seconds, depth=depth
                    )
                if args.half_java_peak:
                    if name == "java":
                        peak = max(results[("java", kind, d)]["ops/s"] for d in args.depths)
                        half_rate[kind] = peak / 2
                    results[(name, kind, -1)] = _measure(
                        name, addresses, pids, kind, args.seconds, rate=half_rate[kind]
                    )
            if args.znodes and pid:
                before = _rss_kib(pid)
                asyncio.run(_prepare_more(host, port, args.znodes))
                after = _rss_kib(pid)
                memory[name] = (before, after)
                print(
                    f"  RSS {before} KiB -> {after} KiB with {args.znodes} more znodes: "
                    f"{(after - before) * 1024 / args.znodes:.0f} bytes/znode",
                    flush=True,
                )
            if args.restart and not args.ensemble:
                server = t.ens.servers[spec.sids[0]]
                server.stop()
                t0 = time.monotonic()
                server.start(install)
                asyncio.run(_first_session(host, port, timeout=600))
                restart[name] = time.monotonic() - t0
                print(f"  restart to the first session: {restart[name]:.2f} s", flush=True)
    for zname in zkq_names:
        _print_ratios(
            zname, args.workloads, args.depths, results, half_rate, restart, memory, args.znodes
        )
    return 0


def _zkq_name(loop: str) -> str:
    return "zkquorum" if loop == "asyncio" else f"zkquorum-{loop}"


def _print_ratios(
    zname: str,
    workloads: list[str],
    depths: list[int],
    results: dict[tuple[str, str, int], dict[str, float]],
    half_rate: dict[str, float],
    restart: dict[str, float],
    memory: dict[str, tuple[int, int]],
    znodes: int,
) -> None:
    print(f"\nratios {zname} / ZooKeeper (ops/s, p99; >1 is better for ops/s, <1 for p99):")
    for kind in workloads:
        for depth in depths:
            z, j = results.get((zname, kind, depth)), results.get(("java", kind, depth))
            if z and j:
                print(
                    f"  {kind:<7} depth={depth:<4} ops/s {z['ops/s'] / j['ops/s']:5.2f}   "
                    f"p99 {z['p99 ms'] / j['p99 ms']:5.2f}   "
                    f"cpu/op {z['cpu us/op'] / j['cpu us/op']:5.2f}"
                )
        z, j = results.get((zname, kind, -1)), results.get(("java", kind, -1))
        if z and j:
            print(
                f"  {kind:<7} at half Java's peak ({half_rate[kind]:,.0f}/s): "
                f"p99 {z['p99 ms'] / j['p99 ms']:5.2f} ({zname} {z['p99 ms']:.1f} ms, "
                f"java {j['p99 ms']:.1f} ms)   p99.9 {z['p99.9 ms'] / j['p99.9 ms']:5.2f}"
            )
    if zname in restart and "java" in restart:
        zt, jt = restart[zname], restart["java"]
        print(f"  restart to serving: {zt / jt:5.2f} ({zname} {zt:.2f} s, java {jt:.2f} s)")
    if zname in memory and "java" in memory:
        _, z1 = memory[zname]
        _, j1 = memory["java"]
        print(f"  RSS with {znodes} znodes: {z1 / j1:5.2f} ({zname} {z1} KiB, java {j1} KiB)")


async def _first_session(host: str, port: int, timeout: float) -> None:
    """Once a session opens on the server (it has loaded its data and serves)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, w = await _connect(host, port)
            w.close()
            return
        except (OSError, asyncio.IncompleteReadError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.01)


async def _prepare_more(host: str, port: int, n: int) -> None:
    r, w = await _connect(host, port)
    window = 512
    inflight = i = 0
    while i < n or inflight:
        while i < n and inflight < window:
            req = CreateRequest(f"/bench/m{i}", VALUE, OPEN_ACL_UNSAFE, 0)
            w.write(encode_request(i + 1, OpCode.CREATE, req))
            i += 1
            inflight += 1
        m = struct.unpack(">i", await r.readexactly(4))[0]
        await r.readexactly(m)
        inflight -= 1
    w.close()


if __name__ == "__main__":
    sys.exit(main())
