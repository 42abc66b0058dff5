"""Fuzzy snapshots written off the loop, loading with a bounded window, reading txns back
for a learner's sync, purging, the loop-lag monitor."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from pathlib import Path

import pytest

from tests.runtime.helpers import wait_until
from tests.runtime.test_storage_txnlog import (
    EPOCH,
    OPEN_ACL,
    Recorder,
    asynctest,
    create,
    creates,
    delete,
    set_data,
    zxids,
)
from zkquorum.core.datatree import DataTree
from zkquorum.runtime.looplag import LAG_BUCKETS_MS, LoopLagMonitor
from zkquorum.runtime.snapshots import (
    TreeCapture,
    ZxidDigest,
    capture_tree,
    decode_snapshot_file,
    decode_snapshot_file_and_digest,
    write_snapshot,
)
from zkquorum.runtime.storage import Storage, StorageSettings
from zkquorum.runtime.txnlog import zxid_files
from zkquorum.wire.jute import StatPersisted
from zkquorum.wire.snapshot import TreeNode
from zkquorum.wire.txn import Txn

V2 = "version-2"


def same_tree(a: DataTree, b: DataTree) -> None:
    assert set(a.nodes) == set(b.nodes)
    for path, node in a.nodes.items():
        other = b.nodes[path]
        assert (node.data, node.acl, node.stat) == (other.data, other.acl, other.stat), path
        assert node.children == other.children, path
    assert a.sessions == b.sessions
    assert a.last_processed_zxid == b.last_processed_zxid


class Workload:
    """Creates, setData and deletes as a leader would write them against ``tree``."""

    def __init__(self, tree: DataTree, seed: int, first_zxid: int) -> None:
        self.tree = tree
        self.rng = random.Random(seed)
        self.zxid = first_zxid - 1
        self.paths = [p for p in tree.nodes if p.startswith("/w")]
        self.serial = 0

    def next(self) -> Txn:
        self.zxid += 1
        rng, tree = self.rng, self.tree
        roll = rng.random()
        if roll < 0.5 or len(self.paths) < 10:
            parent = rng.choice(self.paths) if self.paths and rng.random() < 0.3 else "/"
            self.serial += 1
            path = f"{parent.rstrip('/')}/w{self.serial}"
            cv = tree.nodes[parent].stat.cversion + 1
            self.paths.append(path)
            return create(self.zxid, path, b"d%d" % self.serial, cv)
        path = rng.choice(self.paths)
        node = tree.nodes[path]
        if roll < 0.8 or node.children:
            return set_data(self.zxid, path, b"s%d" % self.zxid, node.stat.version + 1)
        self.paths.remove(path)
        return delete(self.zxid, path)


# -- fuzzy snapshots ---------------------------------------------------------------------


@asynctest
async def test_snapshot_of_a_live_tree_round_trips(tmp_path: Path) -> None:
    cfg = "server.1=a:1:2\nversion=0"
    s = Storage(tmp_path, config_text=cfg)
    tree = s.load().tree
    tree.sessions[0x1234] = 30000
    for t in creates(1, 200):
        tree.apply(t)
    tree.apply(set_data(EPOCH + 201, "/n5", None, 3))  # type: ignore[arg-type]
    path = await s.take_snapshot(tree)
    assert path is not None and path.name == f"snapshot.{EPOCH + 201:x}"
    back = DataTree.from_snapshot(decode_snapshot_file(path.read_bytes()), EPOCH + 201)
    same_tree(tree, back)
    assert s.last_snapshot is not None and s.last_snapshot.nodes == len(tree.nodes)
    assert s.snapshot_size() == path.stat().st_size == s.last_snapshot.size
    assert s.txn_log_size_limit() == int(path.stat().st_size * 0.33)
    st = Storage(tmp_path, config_text=cfg).load_tree()
    assert st.snapshot_zxid == EPOCH + 201
    same_tree(tree, st.tree)


@asynctest
async def test_too_busy_to_snap(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = Storage(tmp_path)
    tree = s.load().tree
    for t in creates(1, 2000):
        tree.apply(t)
    first = asyncio.ensure_future(s.take_snapshot(tree))
    await asyncio.sleep(0)  # one loop step: the first snapshot has captured and started
    assert s.snapshot_in_progress
    assert await s.take_snapshot(tree) is None
    assert "Too busy to snap, skipping" in caplog.text
    assert (await first) is not None
    assert not s.snapshot_in_progress
    assert await s.take_snapshot(tree) is not None  # free again


@asynctest
async def test_fuzzy_snapshot_while_the_tree_changes_recovers_exactly(tmp_path: Path) -> None:
    """The tree changes between the writer's chunks; snapshot + log replay must give back
    exactly the final tree (3.8's fuzzy snapshot contract).  The changes run in the
    writer's progress hook, so they land between chunks every time."""
    s = Storage(tmp_path, settings=StorageSettings(pre_alloc_size=1 << 20))
    tree = s.load().tree
    rec = Recorder()
    tl = s.txn_log(on_synced=rec.on_synced, on_error=rec.on_error)
    tl.start()
    work = Workload(tree, seed=11, first_zxid=EPOCH + 1)
    during: list[Txn] = []

    def apply(n: int, into: list[Txn]) -> None:
        for _ in range(n):
            t = work.next()
            tree.apply(t)
            into.append(t)

    before: list[Txn] = []
    apply(30_000, before)
    tl.append(before)
    chunks = []
    s.snapshot_progress = lambda written: (chunks.append(written), apply(40, during))
    path = await s.take_snapshot(tree)
    assert path is not None and len(chunks) >= 10
    tl.append(during)  # logged in the order applied
    after: list[Txn] = []
    apply(100, after)
    tl.append(after)
    await tl.close()
    # The file's digest is the tree's at the zxid it had when the last node was written,
    # after the changes the writer saw: replaying the log to that zxid reproduces it.
    _, digest = decode_snapshot_file_and_digest(path.read_bytes())
    assert digest is not None and digest.zxid == during[-1].header.zxid
    loaded = Storage(tmp_path)
    st = loaded.load_tree()
    assert st.snapshot_zxid == before[-1].header.zxid == int(path.name.split(".")[1], 16)
    same_tree(tree, st.tree)
    assert loaded.digest_mismatches == 0


@asynctest
async def test_a_snapshot_whose_digest_does_not_match_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = Storage(tmp_path)
    tree = s.load().tree
    for t in creates(1, 50):
        tree.apply(t)
    path = await s.take_snapshot(tree)
    assert path is not None
    _, digest = decode_snapshot_file_and_digest(path.read_bytes())
    assert digest is not None and digest.digest == tree.digest
    # Rewrite the file with another digest value (and its seals), as a corrupt tree would.
    write_snapshot(
        s.snap_dir,
        capture_tree(tree.nodes, tree.sessions, tree.last_processed_zxid),
        digest=lambda: ZxidDigest(digest.zxid, digest.version, digest.digest ^ 1),
    )
    loaded = Storage(tmp_path)
    loaded.load_tree()
    assert loaded.digest_mismatches == 1
    assert "Digests are not matching" in caplog.text


def test_a_child_before_its_parent_is_held_back(tmp_path: Path) -> None:
    """Dict order is parents first in a real tree; if it is not, the writer still is."""
    root = TreeNode(b"", None, StatPersisted())
    nodes = {
        "/": root,
        "/a/b/c": TreeNode(b"c", OPEN_ACL, StatPersisted(czxid=3)),
        "/a/b": TreeNode(b"b", None, StatPersisted(czxid=2)),
        "/a": TreeNode(b"a", OPEN_ACL, StatPersisted(czxid=1)),
        "/x/orphan": TreeNode(b"o", None, StatPersisted()),
    }
    out = write_snapshot(tmp_path, TreeCapture(7, nodes, {5: 1000}))  # type: ignore[arg-type]
    snap = decode_snapshot_file(out.path.read_bytes())
    assert [n.path for n in snap.nodes] == ["", "/a", "/a/b", "/a/b/c"]
    assert [n.acl_id for n in snap.nodes] == [-1, 1, -1, 1]
    assert out.nodes == 4 and snap.sessions[0].session_id == 5


def test_cut_short_snapshot_and_leftover_tmp_fall_back(tmp_path: Path) -> None:
    s = Storage(tmp_path)
    tree = s.load().tree
    txns = creates(1, 4)
    s.append(txns)
    for t in txns:
        tree.apply(t)
    path = s.write_snapshot(EPOCH + 4, tree.to_snapshot())
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # the machine died mid-write
    (tmp_path / V2 / f"tmp.snapshot.{EPOCH + 9:x}").write_bytes(whole[:40])
    st = Storage(tmp_path).load_tree()
    assert st.snapshot_zxid == 0 and st.tree.last_processed_zxid == EPOCH + 4
    assert not (tmp_path / V2 / f"tmp.snapshot.{EPOCH + 9:x}").exists()
    assert Storage(tmp_path).snapshot_size() == (tmp_path / V2 / "snapshot.0").stat().st_size


# -- loading, reading back ---------------------------------------------------------------------


def _logged_store(
    tmp_path: Path, n: int, snapshot_at: int | None = None, roll_at: int | None = None
) -> list[Txn]:
    s = Storage(tmp_path, settings=StorageSettings(pre_alloc_size=64 * 1024))
    tree = s.load().tree
    txns = creates(1, n)
    for i in range(0, n, 100):
        chunk = txns[i : i + 100]
        s.append(chunk)
        for t in chunk:
            tree.apply(t)
        if snapshot_at is not None and tree.last_processed_zxid == EPOCH + snapshot_at:
            s.write_snapshot(tree.last_processed_zxid, tree.to_snapshot())
        if roll_at is not None and tree.last_processed_zxid == EPOCH + roll_at:
            s.close()
    s.close()
    return txns


def test_load_keeps_only_the_newest_committed_window(tmp_path: Path) -> None:
    txns = _logged_store(tmp_path, 1200)
    st = Storage(tmp_path).load_tree()
    assert st.tree.last_processed_zxid == EPOCH + 1200
    assert zxids(st.committed) == zxids(txns[-500:])
    assert st.history is st.committed
    big = Storage(tmp_path, settings=StorageSettings(commit_log_count=800)).load_tree()
    assert len(big.committed) == 800


def test_load_skips_logs_before_the_snapshot(tmp_path: Path) -> None:
    _logged_store(tmp_path, 1000, snapshot_at=600, roll_at=300)
    names = [p.name for _, p in zxid_files(tmp_path / V2, "log")]
    assert names == ["log.100000001", "log.10000012d", "log.100000259"]
    first = tmp_path / V2 / "log.100000001"
    raw = bytearray(first.read_bytes())
    raw[30] ^= 0xFF  # damage a log the snapshot made unnecessary
    first.write_bytes(bytes(raw))
    st = Storage(tmp_path).load_tree()
    assert st.snapshot_zxid == EPOCH + 600 and st.tree.last_processed_zxid == EPOCH + 1000
    assert zxids(st.committed) == [EPOCH + i for i in range(601, 1001)]


def test_read_txns_from_the_log_files(tmp_path: Path) -> None:
    txns = _logged_store(tmp_path, 1000, snapshot_at=600)
    s = Storage(tmp_path)
    got = s.read_txns(EPOCH + 250, EPOCH + 900, -1)
    assert got is not None and zxids(got) == zxids(txns[250:900])
    assert got[0] == txns[250]  # decoded back to the same txn
    assert s.read_txns(EPOCH + 999, EPOCH + 1000, 1 << 20) == txns[999:]
    assert s.read_txns(EPOCH + 1000, EPOCH + 1000, 0) == []
    assert s.read_txns(0, EPOCH + 10, -1) is None  # no log starts at or before zxid 0
    assert s.read_txns(EPOCH + 10, EPOCH + 2000, -1) is None  # the logs end before
    assert s.read_txns(EPOCH + 10, EPOCH + 900, 2000) is None  # more bytes than allowed
    one = s.read_txns(EPOCH + 10, EPOCH + 11, -1)
    assert one is not None
    exact = s.read_txns(EPOCH + 10, EPOCH + 12, 2 * _entry_size(txns[10]))
    assert exact is not None and len(exact) == 2


def _entry_size(txn: Txn) -> int:
    from zkquorum.wire.txn import encode_txn

    return len(encode_txn(txn)) + 13


# -- purge -------------------------------------------------------------------------------


def test_purge_keeps_n_snapshots_and_the_logs_they_need(tmp_path: Path) -> None:
    s = Storage(tmp_path, settings=StorageSettings(pre_alloc_size=16 * 1024))
    tree = s.load().tree  # snapshot.0
    zx = EPOCH
    for _round in range(5):
        txns = creates(zx - EPOCH + 1, 10)
        s.append(txns[:5])
        s.close()  # a roll: the second half goes to its own file
        s.append(txns[5:])
        for t in txns:
            tree.apply(t)
        zx = tree.last_processed_zxid
        s.write_snapshot(zx, tree.to_snapshot())
    s.append(creates(51, 3))
    s.close()
    v2 = tmp_path / V2
    with pytest.raises(ValueError, match="count should be greater than or equal to 3"):
        s.purge(2)
    before = Storage(tmp_path).load_tree()
    removed = s.purge(3)
    snaps = [z - EPOCH for z, _ in zxid_files(v2, "snapshot")]
    logs = [z - EPOCH for z, _ in zxid_files(v2, "log")]
    assert snaps == [30, 40, 50]
    # The log holding zxid 30 (log.1a starts at 26) and every later one stay.
    assert logs == [26, 31, 36, 41, 46, 51]
    assert {p.name for p in removed} >= {"snapshot.0", "log.100000001", "log.100000015"}
    after = Storage(tmp_path).load_tree()
    same_tree(before.tree, after.tree)
    assert s.purge(3) == []  # nothing more to do


@asynctest
async def test_autopurge_off_returns_at_once(tmp_path: Path) -> None:
    from zkquorum.runtime.storage import autopurge

    await asyncio.wait_for(autopurge(Storage(tmp_path), 3, 0), 5)


# -- loop lag ------------------------------------------------------------------------------


@asynctest
async def test_loop_lag_monitor_sees_a_stall() -> None:
    async with LoopLagMonitor(interval_ms=1) as mon:
        await wait_until(lambda: mon.lag().samples >= 3, what="first samples")
        before = mon.lag().samples
        time.sleep(0.06)  # the stall being measured, not a synchronisation
        await wait_until(lambda: mon.lag().samples > before, what="a sample after the stall")
    lag = mon.lag()
    assert lag.max_ms >= 50.0
    assert lag.over(20.0) >= 1
    assert len(lag.histogram) == len(LAG_BUCKETS_MS) + 1


@asynctest
async def test_the_loop_keeps_running_while_a_snapshot_is_written(tmp_path: Path) -> None:
    s = Storage(tmp_path)
    tree = s.load().tree
    for t in creates(1, 5000):
        tree.apply(t)
    s.snapshot_slice_ms = 0.0  # yield after every chunk
    ticks = 0

    async def other_work() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    side = asyncio.ensure_future(other_work())
    try:
        path = await s.take_snapshot(tree)
    finally:
        side.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await side
    assert path is not None
    assert ticks >= 5000 // 512  # the other task ran between the chunks
