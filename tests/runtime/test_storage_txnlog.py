"""Group commit, pre-allocation and the snapshot roll of the txn log (``runtime/txnlog.py``).

Ordering tests hold a batch "on the disk" with a gated fsync instead of sleeping: the
writer thread blocks inside fsync until the test opens the gate.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.runtime.helpers import run
from zkquorum.runtime.storage import Storage, StorageSettings
from zkquorum.runtime.txnlog import (
    StorageError,
    TxnLog,
    iter_log_entries,
    padded_size,
    zxid_files,
)
from zkquorum.wire.jute import ACL, Id
from zkquorum.wire.txn import (
    CreateTxn,
    DeleteTxn,
    OpCode,
    SetDataTxn,
    Txn,
    TxnHeader,
)

OPEN_ACL = (ACL(31, Id("world", "anyone")),)
EPOCH = 1 << 32
DEADLINE = 30.0  # seconds: a bound for waits on a loaded machine, never a delay


def create(zxid: int, path: str, data: bytes = b"x", parent_cversion: int = 1) -> Txn:
    return Txn(
        TxnHeader(1, zxid & 0xFFFF, zxid, 1000 + zxid, OpCode.CREATE),
        CreateTxn(path, data, OPEN_ACL, False, parent_cversion),
    )


def set_data(zxid: int, path: str, data: bytes, version: int) -> Txn:
    return Txn(
        TxnHeader(1, zxid & 0xFFFF, zxid, 1000 + zxid, OpCode.SET_DATA),
        SetDataTxn(path, data, version),
    )


def delete(zxid: int, path: str) -> Txn:
    return Txn(TxnHeader(1, zxid & 0xFFFF, zxid, 1000 + zxid, OpCode.DELETE), DeleteTxn(path))


def creates(first: int, n: int) -> list[Txn]:
    """``n`` creates of ``/n<i>`` with zxids ``EPOCH + first`` ...; parent cversions as a
    leader would write them (the root starts at cversion 0, /zookeeper is its child)."""
    return [
        create(EPOCH + first + i, f"/n{first + i}", parent_cversion=first + i) for i in range(n)
    ]


def zxids(txns: list[Txn]) -> list[int]:
    return [t.header.zxid for t in txns]


def logged(log_dir: Path) -> list[int]:
    return [e.zxid for _, p in zxid_files(log_dir, "log") for e in iter_log_entries(p)]


@dataclass
class Gate:
    """An fsync that really syncs, but waits for the test when ``hold`` is set; records
    the zxids that were in the file at each fsync (what is durable)."""

    log_dir: Path
    hold: threading.Event = field(default_factory=threading.Event)
    opened: threading.Event = field(default_factory=threading.Event)
    entered: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    durable: set[int] = field(default_factory=set)
    calls: int = 0
    fail_on: int | None = None

    def __call__(self, fd: int) -> None:
        self.calls += 1
        self.entered.release()
        if self.hold.is_set():
            assert self.opened.wait(DEADLINE)
        if self.fail_on == self.calls:
            raise OSError(5, "Input/output error (injected)")
        os.fsync(fd)
        self.durable.update(logged(self.log_dir))

    async def wait_entered(self) -> None:
        ok = await asyncio.get_running_loop().run_in_executor(
            None, self.entered.acquire, True, DEADLINE
        )
        assert ok, "the writer thread never reached fsync"


@dataclass
class Recorder:
    synced: list[int] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    due: list[int] = field(default_factory=list)
    check: Callable[[int], None] | None = None

    def on_synced(self, zxid: int) -> None:
        if self.check is not None:
            self.check(zxid)
        self.synced.append(zxid)

    def on_error(self, exc: BaseException) -> None:
        self.errors.append(exc)


def make_log(tmp_path: Path, rec: Recorder, **kw: object) -> TxnLog:
    return TxnLog(
        tmp_path,
        on_synced=rec.on_synced,
        on_error=rec.on_error,
        on_snapshot_due=rec.due.append,
        **kw,  # type: ignore[arg-type]
    )


def asynctest(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run the test in a fresh loop that must end with no task or file descriptor left."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        run(lambda: fn(*args, **kwargs))

    return wrapper


# -- group commit --------------------------------------------------------------------------


@asynctest
async def test_group_commit_orders_batches_and_reports_only_durable_zxids(tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    rec = Recorder()
    rec.check = lambda z: _assert_durable(gate, z)
    tl = make_log(tmp_path, rec, fsync=gate, pre_alloc_size=64 * 1024)
    tl.start()
    gate.hold.set()
    txns = creates(1, 50)
    tl.append(txns[:1])
    await gate.wait_entered()  # the first batch is on the disk, its fsync held
    for t in txns[1:]:
        tl.append([t])  # queue behind it, one call each
    assert rec.synced == [] and tl.last_synced_zxid == -1
    assert tl.pending == 50
    gate.opened.set()
    await tl.drain()
    # Two batches: the held one, then everything that queued meanwhile, one fsync each.
    assert rec.synced == [EPOCH + 1, EPOCH + 50]
    assert tl.stats.fsync_count == gate.calls == 2
    assert (tl.stats.batch_count, tl.stats.batch_max, tl.stats.txn_count) == (2, 49, 50)
    assert logged(tmp_path) == zxids(txns)
    await tl.close()


def _assert_durable(gate: Gate, zxid: int) -> None:
    assert zxid in gate.durable, f"0x{zxid:x} reported before its fsync"


@asynctest
async def test_max_batch_splits_a_long_queue(tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    rec = Recorder()
    tl = make_log(tmp_path, rec, fsync=gate, max_batch=3, pre_alloc_size=64 * 1024)
    tl.start()
    gate.hold.set()
    txns = creates(1, 10)
    tl.append(txns[:1])
    await gate.wait_entered()
    tl.append(txns[1:])  # 9 queued at once: three batches of 3
    gate.opened.set()
    await tl.drain()
    assert rec.synced == [EPOCH + 1, EPOCH + 4, EPOCH + 7, EPOCH + 10]
    assert tl.stats.batch_max == 3 and tl.stats.fsync_count == 4
    await tl.close()


@asynctest
async def test_a_failed_fsync_reports_the_error_and_nothing_after_it(tmp_path: Path) -> None:
    gate = Gate(tmp_path, fail_on=2)
    rec = Recorder()
    tl = make_log(tmp_path, rec, fsync=gate, pre_alloc_size=64 * 1024)
    tl.start()
    gate.hold.set()
    txns = creates(1, 6)
    tl.append(txns[:2])
    await gate.wait_entered()
    tl.append(txns[2:4])  # the batch whose fsync fails
    gate.opened.set()
    with pytest.raises(StorageError, match="Input/output error"):
        await tl.drain()
    assert rec.synced == [EPOCH + 2]
    assert len(rec.errors) == 1 and isinstance(rec.errors[0], OSError)
    tl.append(txns[4:])  # ignored: the log is dead
    with pytest.raises(StorageError):
        await tl.drain()
    await tl.close()
    assert rec.synced == [EPOCH + 2] and tl.last_synced_zxid == EPOCH + 2


@asynctest
async def test_force_sync_no_skips_fsync(tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    rec = Recorder()
    tl = make_log(tmp_path, rec, fsync=gate, force_sync=False, pre_alloc_size=64 * 1024)
    tl.start()
    tl.append(creates(1, 5))
    await tl.drain()
    assert rec.synced == [EPOCH + 5] and gate.calls == 0 and tl.stats.fsync_count == 0
    await tl.close()


@asynctest
async def test_slow_fsync_is_counted_and_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    tl = make_log(tmp_path, rec, fsync_warning_threshold_ms=-1.0, pre_alloc_size=64 * 1024)
    tl.start()
    tl.append(creates(1, 3))
    await tl.drain()
    await tl.close()
    assert tl.stats.fsync_threshold_exceeded == 1
    assert "fsync-ing the write ahead log in SyncThread took" in caplog.text
    assert "See the ZooKeeper troubleshooting guide" in caplog.text


@asynctest
async def test_roll_opens_a_new_file_and_close_drains(tmp_path: Path) -> None:
    rec = Recorder()
    tl = make_log(tmp_path, rec, pre_alloc_size=64 * 1024)
    tl.start()
    tl.append(creates(1, 3))
    tl.roll()
    tl.append(creates(4, 2))
    await tl.close()  # drains first
    assert rec.synced[-1] == EPOCH + 5
    assert [p.name for _, p in zxid_files(tmp_path, "log")] == ["log.100000001", "log.100000004"]
    assert logged(tmp_path) == [EPOCH + i for i in range(1, 6)]
    with pytest.raises(StorageError, match="closed"):
        tl.append(creates(6, 1))


@asynctest
async def test_drain_with_nothing_pending_returns(tmp_path: Path) -> None:
    tl = make_log(tmp_path, Recorder())
    tl.start()
    await tl.drain()
    await tl.close()
    assert not any(tmp_path.iterdir())  # no txn, no file


# -- pre-allocation -------------------------------------------------------------------------


def test_padded_size_follows_file_padding() -> None:
    """The cases of 3.8's ``FileTxnLogTest#testCalculateFileSizeWithPadding``."""
    kb = 1024
    assert padded_size(7 * kb, 10 * kb, 0) == 10 * kb  # pre-allocation off
    assert padded_size(7 * kb, 10 * kb, -1) == 10 * kb
    assert padded_size(5 * kb, 10 * kb, 10 * kb) == 10 * kb  # far from the end: keep
    assert padded_size(7 * kb, 10 * kb, 10 * kb) == 20 * kb  # within 4 KiB: grow
    assert padded_size(31 * kb, 10 * kb, 10 * kb) == 40 * kb  # beyond the end: round up


@given(
    st.integers(0, 1 << 40),
    st.integers(0, 1 << 40),
    st.integers(1, 1 << 30),
)
def test_padded_size_always_leaves_room(position: int, size: int, prealloc: int) -> None:
    new = padded_size(position, size, prealloc)
    assert new >= size
    if position + 4096 >= size:
        assert new > position


@asynctest
async def test_log_files_grow_in_pre_alloc_steps_of_zeros(tmp_path: Path) -> None:
    rec = Recorder()
    tl = make_log(tmp_path, rec, pre_alloc_size=16 * 1024)
    tl.start()
    tl.append(creates(1, 1))
    await tl.drain()
    path = tmp_path / "log.100000001"
    assert path.stat().st_size == 16 * 1024
    big = [create(EPOCH + 2 + i, f"/b{i}", b"y" * 1000, 2 + i) for i in range(40)]
    tl.append(big)
    await tl.close()
    size = path.stat().st_size
    assert size % (16 * 1024) == 0 and size >= 48 * 1024
    end = [e.end for e in iter_log_entries(path)][-1]
    with path.open("rb") as f:
        f.seek(end)
        assert not any(f.read())  # zeros up to the allocated end
    assert logged(tmp_path) == [EPOCH + 1, *zxids(big)]


def test_settings_from_zoo_cfg_values() -> None:
    s = StorageSettings.from_properties(
        {
            "preAllocSize": "128",
            "snapCount": "1",
            "forceSync": "no",
            "autopurge.snapRetainCount": "1",
            "autopurge.purgeInterval": "6",
            "maxBatchSize": "junk",
            "snapSizeLimitInKb": "0",
            "commitLogCount": "10",
            "snapshotSizeFactor": "2.5",
        }
    )
    assert s.pre_alloc_size == 128 * 1024
    assert s.snap_count == 2 and not s.force_sync
    assert (s.snap_retain_count, s.purge_interval_hours) == (3, 6)
    assert s.max_batch == 1000 and s.snap_size_limit == 0
    assert s.commit_log_count == 500 and s.snapshot_size_factor == 0.33
    d = StorageSettings.from_properties({})
    assert (d.pre_alloc_size, d.snap_count, d.force_sync) == (64 << 20, 100_000, True)
    assert StorageSettings.from_properties({"forceSync": "yes "}).force_sync


def test_settings_from_config_reads_unknown_keys(tmp_path: Path) -> None:
    from zkquorum.runtime.files import load_config

    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(
        f"tickTime=2000\ndataDir={tmp_path}\nclientPort=2181\npreAllocSize=1024\n"
        "snapCount=5000\nautopurge.purgeInterval=1\n"
    )
    s = StorageSettings.from_config(load_config(cfg))
    assert (s.pre_alloc_size, s.snap_count, s.purge_interval_hours) == (1 << 20, 5000, 1)


# -- the snapshot roll ------------------------------------------------------------------------


async def _due_points(tmp_path: Path, seed: int, n: int = 200) -> tuple[list[int], list[str]]:
    rec = Recorder()
    tl = make_log(tmp_path, rec, snap_count=20, seed=seed, pre_alloc_size=16 * 1024)
    tl.start()
    for t in creates(1, n):
        tl.append([t])
    await tl.close()
    return rec.due, [p.name for _, p in zxid_files(tmp_path, "log")]


@asynctest
async def test_snapshot_due_with_the_randomised_roll(tmp_path: Path) -> None:
    due, names = await _due_points(tmp_path / "a", seed=7)
    # logCount > snapCount/2 + randRoll, randRoll in [0, 10): every 11 to 20 txns.
    gaps = [b - a for a, b in zip([EPOCH, *due], due, strict=False)]
    assert due and all(11 <= g <= 20 for g in gaps), gaps
    # The log was rolled right after each due txn.
    assert names == [f"log.{EPOCH + 1:x}", *(f"log.{z + 1:x}" for z in due)]
    assert logged(tmp_path / "a") == [EPOCH + i for i in range(1, 201)]
    again, _ = await _due_points(tmp_path / "b", seed=7)
    other, _ = await _due_points(tmp_path / "c", seed=8)
    assert again == due and other != due


@asynctest
async def test_storage_txn_log_uses_the_settings_and_loads_back(tmp_path: Path) -> None:
    s = Storage(tmp_path, settings=StorageSettings(pre_alloc_size=8192, snap_count=1000))
    s.load()
    rec = Recorder()
    tl = s.txn_log(on_synced=rec.on_synced, on_error=rec.on_error)
    tl.start()
    txns = creates(1, 30)
    tl.append(txns)
    await tl.close()
    assert (tmp_path / "version-2" / "log.100000001").stat().st_size == 8192
    st = Storage(tmp_path).load_tree()
    assert st.tree.last_processed_zxid == EPOCH + 30 and zxids(st.committed) == zxids(txns)


def iter_chunks(txns: list[Txn], size: int) -> Iterator[list[Txn]]:
    for i in range(0, len(txns), size):
        yield txns[i : i + size]
