"""Where a snapshot load's CPU goes: DataTree.deserialize's loop rebuilt step by step.

    .venv/bin/python bench/load_steps.py                  # 1,000,000 znodes, best of 3
    .venv/bin/python bench/load_steps.py --znodes 200000 --repeat 5

Not part of the tests.  The snapshot is ``bench/restart.py``'s (100 bytes of data under
``/bench``).  Each line runs the node loop of ``DataTree.deserialize`` with one more of its
steps than the line before, the collector paused, each run in a fresh process (as a
restart is: no freed memory to reuse), and prints the best CPU time (user + system: page
faults are part of the cost of a tree this size) and what the step added; the last line
is the real ``load_snapshot_file`` for comparison.  The steps past "walk" are what a tree
in Python costs: an object per node, its key in the path dict and in its parent's set,
its digest.
"""

from __future__ import annotations

import argparse
import gc
import resource
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from restart import make_snapshot  # noqa: E402

from zkquorum.core.datatree import Node  # noqa: E402
from zkquorum.runtime.snapshots import load_snapshot_file  # noqa: E402

STEPS = (
    ("walk: slice path and data, unpack lengths and the tail", "walk"),
    ("+ decode the path", "decode"),
    ("+ the packed stat (one join)", "packed"),
    ("+ the digest (one join, one crc32, a sum)", "digest"),
    ("+ a Node per node (4 slots)", "node"),
    ("+ the path -> node dict", "dict"),
    ("+ linking: the parent found, the path in its set", "link"),
    ("+ owner check, node count (= deserialize)", "owner"),
)


def loop_source(upto: str) -> str:
    """The loop of ``DataTree.deserialize`` (error checks on lengths kept, since they run
    in the real one), cut after step ``upto``."""
    names = [key for _, key in STEPS]
    on = set(names[: names.index(upto) + 1])
    lines = [
        "def run(buf, pos):",
        "    nodes = {}; digest = 0; count = 0; parent_path = None; parent = None",
        "    new = object.__new__; crc = zlib.crc32; join = b''.join",
        "    int_at = INT_AT; tail = TAIL; no_owner = bytes(8)",
        "    (plen,) = int_at(buf, pos)",
        "    pos += 4",
        "    while True:",
        "        if not 0 <= plen <= 2097150: raise ValueError(plen)",
        "        end = pos + plen",
        "        pb = buf[pos:end]",
        "        if plen == 1 and pb == b'/': break",
    ]
    lines.append("        path = pb.decode()" if "decode" in on else "        path = pb")
    lines += [
        "        (dlen,) = int_at(buf, end)",
        "        pos = end + 4",
        "        if 0 <= dlen <= 2097150:",
        "            end = pos + dlen",
        "            data = chunk = buf[pos:end]",
        "        else: raise ValueError(dlen)",
        "        acl_id, zxids, times, owner, pzxid, plen = tail(buf, end)",
        "        pos = end + 72",
    ]
    if "packed" in on:
        lines.append("        packed = join((zxids, times, owner, pzxid))")
    if "digest" in on:
        lines.append("        digest += crc(join((pb, chunk, zxids, pzxid, times, owner)))")
    if "node" in on:
        lines += [
            "        node = new(Node)",
            "        node.data = data; node.acl = None; node._stat = packed; node._kids = None",
        ]
    if "link" in on:
        lines += [
            "        slash = path.rfind('/')",
            "        if slash >= 0:",
            "            head = path[:slash]",
            "            if head != parent_path:",
            "                parent = nodes.get(head or '/'); parent_path = head",
            "            kids = parent._kids",
            "            if kids is None: parent._kids = {path}",
            "            else: kids.add(path)",
            "            nodes[path] = node",
            "        else:",
            "            nodes['/'] = node; parent_path = None",
        ]
    elif "dict" in on:
        lines.append("        nodes[path or '/'] = node")
    if "owner" in on:
        lines += ["        if owner != no_owner: pass", "        count += 1"]
    lines.append("    return nodes")
    return "\n".join(lines)


def cpu() -> tuple[float, float]:
    """(user + system, system) seconds so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_stime


def since(t: tuple[float, float]) -> str:
    now = cpu()
    return f"{now[0] - t[0]} {now[1] - t[1]}"


def one_step(snapshot: Path, key: str) -> str:
    """In a fresh process (as at a restart: no memory to reuse), one run of a step."""
    raw = snapshot.read_bytes()
    gc.disable()
    if key == "real":
        zxid = int(snapshot.name.split(".")[1], 16)
        t = cpu()
        load_snapshot_file(raw, zxid, snapshot.name)
        return since(t)
    ns: dict[str, object] = {
        "zlib": zlib,
        "Node": Node,
        "INT_AT": struct.Struct(">i").unpack_from,
        "TAIL": struct.Struct(">q16s28s8s8si").unpack_from,
    }
    exec(loop_source(key), ns)
    run: Callable[[bytes, int], object] = ns["run"]  # type: ignore[assignment]
    t = cpu()
    run(raw, 16 + 8)  # the file header, no sessions, no ACL cache (make_snapshot's)
    return since(t)


def best(snapshot: Path, key: str, repeat: int) -> tuple[float, float]:
    """The run of least CPU: (user + system, system)."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--step", key, str(snapshot)],
            capture_output=True,
            text=True,
            check=True,
        )
        total, system = out.stdout.split()
        runs.append((float(total), float(system)))
    return min(runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--znodes", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("snapshot", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        print(one_step(args.snapshot, args.step))
        return 0
    with tempfile.TemporaryDirectory(prefix="zkq-steps-") as tmp:
        snapshot = make_snapshot(Path(tmp), args.znodes)
        size = snapshot.stat().st_size / 1e6
        print(
            f"{args.znodes} znodes, {size:.1f} MB; CPU s (user + system, and the system "
            f"part: page faults), best of {args.repeat} fresh processes"
        )
        before = 0.0
        for label, key in STEPS:
            took, system = best(snapshot, key, args.repeat)
            print(
                f"  {label:<56} {took:5.2f}  (+{took - before:.2f})  system {system:4.2f}",
                flush=True,
            )
            before = took
        took, system = best(snapshot, "real", args.repeat)
        print(
            f"  {'load_snapshot_file (checks, CRCs, the real loop)':<56} {took:5.2f}"
            f"           system {system:4.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
