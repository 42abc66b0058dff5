"""The container manager's check with many znodes: the tree's container and TTL sets
against a walk of every node (the check as it was before the sets), in one run.

    .venv/bin/python bench/containers.py                  # 1,000,000 znodes, 100 containers
    .venv/bin/python bench/containers.py --znodes 100000

Not part of the tests.  The tree is built in memory by applying create txns; each check
(``DataTree.container_candidates``, what the leader and a standalone server run every
``znode.container.checkIntervalMs`` on the event loop) is timed 5 times, median printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from zkquorum.core.datatree import CONTAINER_EPHEMERAL_OWNER, DataTree, is_ttl_owner  # noqa: E402
from zkquorum.wire.txn import (  # noqa: E402
    CreateContainerTxn,
    CreateTxn,
    OpCode,
    Txn,
    TxnHeader,
)


def walk_candidates(tree: DataTree, now_wall: int, max_never_used_ms: int) -> list[str]:
    """Every node looked at: the reference."""
    out = []
    for path, node in tree.nodes.items():
        if node._kids:
            continue
        owner = node.ephemeral_owner
        if owner == CONTAINER_EPHEMERAL_OWNER:
            if node.stat.cversion > 0 or now_wall - node.stat.mtime > max_never_used_ms:
                out.append(path)
        elif (
            owner
            and is_ttl_owner(owner)
            and now_wall - node.stat.mtime > (owner & 0x00FFFFFFFFFFFFFF)
        ):
            out.append(path)
    return out


def _median_s(fn: object, *args: object) -> float:
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        fn(*args)  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def build_tree(znodes: int) -> DataTree:
    """``znodes`` persistent nodes of 100 bytes under the root, by applying create txns."""
    tree = DataTree()
    for i in range(znodes):
        rec = CreateTxn(f"/n{i}", b"x" * 100, None, False, -1)
        tree.apply(Txn(TxnHeader(1, i + 1, i + 1, 1000, OpCode.CREATE), rec))
    return tree


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--znodes", type=int, default=1_000_000)
    ap.add_argument("--containers", type=int, default=100)
    args = ap.parse_args()
    tree = build_tree(args.znodes)
    zxid = args.znodes
    for i in range(args.containers):
        zxid += 1
        rec2 = CreateContainerTxn(f"/c{i}", b"", None, -1)
        tree.apply(Txn(TxnHeader(1, zxid, zxid, 1000, OpCode.CREATE_CONTAINER), rec2))
    now, never_used = 10**13, 1000
    assert sorted(walk_candidates(tree, now, never_used)) == tree.container_candidates(
        now, never_used
    )
    walk = _median_s(walk_candidates, tree, now, never_used)
    sets = _median_s(tree.container_candidates, now, never_used)
    print(
        f"{args.znodes:,} znodes, {args.containers} containers: a check takes "
        f"{sets * 1e3:.3f} ms from the sets, {walk * 1e3:.1f} ms by a walk "
        f"(ratio {sets / walk:.5f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
