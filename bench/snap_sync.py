"""What a leader's loop spends on one SNAP sync of a big tree: the stream encoded from
the live nodes (``encode_snap_sync_of``) against the old way (``to_snapshot`` records,
then ``encode_snap_sync``), in one run; and the learner's side (parse, build the tree).

    .venv/bin/python bench/snap_sync.py                   # 1,000,000 znodes of 100 bytes
    .venv/bin/python bench/snap_sync.py --znodes 100000

Not part of the tests.  In process: the tree is built by applying create txns, the
collector paused as ``zkquorum run`` pauses it while it loads.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from containers import build_tree  # noqa: E402

from zkquorum.core.datatree import DataTree  # noqa: E402
from zkquorum.runtime.snapshots import encode_snap_sync_of  # noqa: E402
from zkquorum.wire.quorum import QuorumStreamDecoder, encode_snap_sync  # noqa: E402
from zkquorum.wire.snapshot import Snapshot  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--znodes", type=int, default=1_000_000)
    args = ap.parse_args()
    gc.disable()
    tree = build_tree(args.znodes)
    zxid = tree.last_processed_zxid
    t0 = time.perf_counter()
    old = encode_snap_sync(zxid, tree.to_snapshot())
    t1 = time.perf_counter()
    new = encode_snap_sync_of(zxid, tree)
    t2 = time.perf_counter()
    print(
        f"leader, {args.znodes:,} znodes: {len(new) / 1e6:.0f} MB stream in "
        f"{t2 - t1:.2f} s from the live nodes, {t1 - t0:.2f} s through records "
        f"(ratio {(t2 - t1) / (t1 - t0):.2f}); {len(old) / 1e6:.0f} MB the old way"
    )
    d = QuorumStreamDecoder()
    d.receive_data(new)
    t3 = time.perf_counter()
    snap = None
    while snap is None:
        msg = d.next_message()
        if isinstance(msg, Snapshot):
            snap = msg
    t4 = time.perf_counter()
    back = DataTree.from_snapshot(snap, zxid)
    t5 = time.perf_counter()
    assert back.digest == tree.digest and len(back.nodes) == len(tree.nodes)
    print(f"learner: parse {t4 - t3:.2f} s, build the tree {t5 - t4:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
