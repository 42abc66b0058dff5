"""Restart to serving and resident memory with many znodes: zkquorum beside ZooKeeper 3.8.

    .venv/bin/python bench/restart.py                    # 1,000,000 znodes, 3 rounds
    .venv/bin/python bench/restart.py --znodes 200000 --rounds 1

Not part of the tests.  One snapshot file of ``--znodes`` znodes (100 bytes of data each,
under ``/bench``; written by zkquorum's snapshot writer, which ZooKeeper 3.8 reads, see
``tests/runtime/test_storage_zk.py``) is copied into a fresh dataDir for each server, and
each is started as a standalone server on it (``zkquorum run`` / Debian's
``QuorumPeerMain``), alternately, ``--rounds`` times.  Figures: the time from the process's
start to its first answered session (``ConnectResponse``), the CPU the process used by
then (user + system, all its threads: on a machine shared with other work the steadier
figure), and its resident memory then (``VmRSS``).  Ratios are zkquorum / ZooKeeper,
medians.

zkquorum runs from byte code compiled before the first round (into a cache directory of
this run, ``PYTHONPYCACHEPREFIX``), as an installed package does (pip compiles it at
install; ZooKeeper's classes come compiled in its jar), whatever
``PYTHONDONTWRITEBYTECODE`` says in this environment: compiling the sources at every start
is 0.1 s of CPU no deployment pays.

Then the floor of a Python load, measured in this process on the same file: reading its
bytes, unpacking every node's fixed fields with ``struct`` (no objects), and making one
small object per node in a dict: what any pure-Python server pays before doing anything
of its own; and, beside it, zkquorum's own load of the file (``load_snapshot_file``, the
collector paused as ``Storage.load_tree`` does).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.interop.zk import require_zookeeper, server_command, write_log4j_properties  # noqa: E402
from tests.interop.zkserver import free_ports  # noqa: E402

from zkquorum.runtime.snapshots import (  # noqa: E402
    TreeCapture,
    load_snapshot_file,
    write_snapshot,
)
from zkquorum.wire.client import encode_connect_request  # noqa: E402
from zkquorum.wire.client_records import ConnectRequest  # noqa: E402
from zkquorum.wire.jute import StatPersisted  # noqa: E402
from zkquorum.wire.snapshot import TreeNode  # noqa: E402

VALUE = b"v" * 100


def make_snapshot(snap_dir: Path, n: int) -> Path:
    """A tree of ``n`` znodes under /bench, as ``n`` creates would leave it."""
    nodes: dict[str, TreeNode] = {
        "/": TreeNode(b"", None, StatPersisted(cversion=2, pzxid=1)),
        "/zookeeper": TreeNode(b"", None, StatPersisted()),
        "/zookeeper/quota": TreeNode(b"", None, StatPersisted()),
        "/zookeeper/config": TreeNode(b"", None, StatPersisted(version=-1, aversion=-1)),
        "/bench": TreeNode(b"", None, StatPersisted(czxid=1, mzxid=1, cversion=n, pzxid=n + 1)),
    }
    for i in range(n):
        z = i + 2
        nodes[f"/bench/m{i}"] = TreeNode(
            VALUE, None, StatPersisted(czxid=z, mzxid=z, ctime=1, mtime=1, pzxid=z)
        )
    written = write_snapshot(snap_dir, TreeCapture(n + 1, nodes, {}))
    return written.path


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system time of the process, all its threads (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def first_session(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with asyncio.timeout(2):  # a server still loading may hold a connection
                r, w = await asyncio.open_connection("127.0.0.1", port)
                try:
                    w.write(
                        encode_connect_request(ConnectRequest(0, 0, 30_000, 0, bytes(16), False))
                    )
                    n = struct.unpack(">i", await r.readexactly(4))[0]
                    await r.readexactly(n)
                finally:
                    w.close()
            return
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.005)


def one_start(
    kind: str, snapshot: Path, work: Path, install: object, pycache: Path
) -> tuple[float, float, int]:
    """Start a server of ``kind`` on a copy of ``snapshot``; (seconds to a session, CPU
    seconds by then, RSS)."""
    if work.exists():
        shutil.rmtree(work)
    data = work / "data"
    (data / "version-2").mkdir(parents=True)
    shutil.copy(snapshot, data / "version-2" / snapshot.name)
    (port,) = free_ports(1)
    cfg = work / "zoo.cfg"
    cfg.write_text(
        f"tickTime=2000\ndataDir={data}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
    )
    if kind == "zkquorum":
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONPYCACHEPREFIX=str(pycache))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cmd = [sys.executable, "-m", "zkquorum", "run", str(cfg)]
    else:
        env = dict(os.environ)
        write_log4j_properties(work / "conf")
        cmd = server_command(install, cfg, work / "conf", work)  # type: ignore[arg-type]
    with (work / "out.log").open("wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            asyncio.run(first_session(port, 900))
            took = time.monotonic() - t0
            rss = rss_kib(proc.pid)
            cpu = cpu_seconds(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return took, cpu, rss


def python_floor(snapshot: Path, n: int) -> dict[str, float]:
    """The least a Python load of this file costs (CPU seconds), step by step."""
    out: dict[str, float] = {}
    t = time.process_time()
    raw = snapshot.read_bytes()
    out["read the file"] = time.process_time() - t
    # Every node: path (len + bytes), data (len + bytes), acl id + stat (fixed 76 bytes).
    tail = struct.Struct(">qqqqqiiiqq")
    intf = struct.Struct(">i")
    # Skip the header, sessions and ACL cache: the first node is the root, written with
    # an empty path, empty data and the open ACL's id -1.
    pos = raw.index(b"\x00" * 8 + b"\xff" * 8, 16)
    t = time.process_time()
    paths: list[bytes] = []
    p = pos
    for _ in range(n + 5):  # the root, /zookeeper (and its two), /bench, the n
        (plen,) = intf.unpack_from(raw, p)
        path = raw[p + 4 : p + 4 + plen]
        p += 4 + plen
        (dlen,) = intf.unpack_from(raw, p)
        p += 4 + max(dlen, 0)
        tail.unpack_from(raw, p)
        p += tail.size
        paths.append(path)
    out["unpack every node's fields (no objects)"] = time.process_time() - t
    t = time.process_time()
    tree = {
        path.decode(): (VALUE, None, (i, i, 1, 1, 0, 0, 0, 0, i)) for i, path in enumerate(paths)
    }
    out["one tuple per node in a dict"] = time.process_time() - t
    del tree
    zxid = int(snapshot.name.split(".")[1], 16)
    enabled = gc.isenabled()
    gc.disable()
    t = time.process_time()
    load_snapshot_file(snapshot.read_bytes(), zxid, snapshot.name)
    out["zkquorum's load (read, check, deserialize)"] = time.process_time() - t
    if enabled:
        gc.enable()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--znodes", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    install = require_zookeeper()
    with tempfile.TemporaryDirectory(prefix="zkq-restart-") as tmp:
        base = Path(tmp)
        t = time.monotonic()
        snapshot = make_snapshot(base / "snap", args.znodes)
        print(
            f"snapshot of {args.znodes} znodes: {snapshot.stat().st_size / 1e6:.1f} MB, "
            f"written in {time.monotonic() - t:.1f} s",
            flush=True,
        )
        pycache = base / "pycache"
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "zkquorum")],
            env=dict(os.environ, PYTHONPYCACHEPREFIX=str(pycache)),
            check=True,
        )
        got: dict[str, list[tuple[float, float, int]]] = {"java": [], "zkquorum": []}
        for r in range(args.rounds):
            for kind in ("java", "zkquorum"):
                took, cpu, rss = one_start(kind, snapshot, base / kind, install, pycache)
                got[kind].append((took, cpu, rss))
                print(
                    f"  round {r + 1} {kind:<8} to the first session {took:6.2f} s, "
                    f"CPU {cpu:6.2f} s, RSS {rss / 1024:7.1f} MiB",
                    flush=True,
                )
        med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in got.items()}
        (zt, zc, zr), (jt, jc, jr) = med["zkquorum"], med["java"]
        print(
            f"\nmedians: zkquorum {zt:.2f} s, CPU {zc:.2f} s, {zr / 1024:.0f} MiB; "
            f"java {jt:.2f} s, CPU {jc:.2f} s, {jr / 1024:.0f} MiB"
        )
        print(
            f"ratios zkquorum / ZooKeeper: restart to serving {zt / jt:.2f}, "
            f"CPU {zc / jc:.2f}, RSS {zr / jr:.2f}"
        )
        print("\nfloor of a Python load of this file (CPU s, this process):")
        for what, s in python_floor(snapshot, args.znodes).items():
            print(f"  {what:<42} {s:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
