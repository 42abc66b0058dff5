"""A peer's files in ``dataDir/version-2`` (and ``dataLogDir/version-2``), ZooKeeper's formats.

Facts: ``docs/spec/quorum-config-and-zab.md`` A4; ZooKeeper 3.8.0 ``QuorumPeer#loadDataBase``,
``#readLongFromFile``, ``#writeLongToFile``, ``FileTxnSnapLog#restore``, ``ZKDatabase``,
``PurgeTxnLog``, ``DatadirCleanupManager``.  The txn log and its group commit are in
:mod:`zkquorum.runtime.txnlog`, snapshot files in :mod:`zkquorum.runtime.snapshots`.

* ``acceptedEpoch``, ``currentEpoch``: the decimal number, no newline; written as
  ``<name>.tmp`` + fsync + rename.  Read: the first line as a Java long, else
  ``Found <line> in <file>``.

Start-up (``load``): the newest valid snapshot, then the logged txns after it, of which
only the newest ``commitLogCount`` (500) stay in memory (``ZKDatabase#committedLog``); an
empty directory gets ``snapshot.0``; logs without any snapshot are fatal, as in 3.8
(``No snapshot found, but there are log entries. Something is broken!``).  Then the epoch
rules of ``QuorumPeer#loadDataBase`` with ZooKeeper's error texts.  A learner's sync
beyond the in-memory window reads the log files again (``read_txns``,
``ZKDatabase#getProposalsFromTxnLog``).

Settings come from zoo.cfg as 3.8 takes them: ``autopurge.*`` are its own keys; the others
are keys 3.8 does not know, which ``QuorumPeerConfig#parse`` turns into ``zookeeper.<key>``
system properties (``preAllocSize`` in KiB, ``snapCount``, ``forceSync``, ...).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import logging
import os
import re
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, overload

from zkquorum.config.javatext import java_int
from zkquorum.config.properties import load_properties
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.core.datatree import DataTree
from zkquorum.runtime.snapshots import (
    DIGEST_VERSION,
    SNAP_MAGIC,
    SNAP_PREFIX,
    SnapshotEncoder,
    SnapshotWritten,
    ZxidDigest,
    capture_tree,
    decode_snapshot_file,
    encode_snapshot_file,
    finish_snapshot,
    is_valid_snapshot,
    load_snapshot_file,
    snapshot_name,
    tmp_snapshot_path,
)
from zkquorum.runtime.txnlog import (
    DEFAULT_FSYNC_WARNING_MS,
    DEFAULT_MAX_BATCH,
    DEFAULT_PRE_ALLOC_SIZE,
    DEFAULT_SNAP_COUNT,
    DEFAULT_SNAP_SIZE_LIMIT,
    EOR,
    FILE_HEADER,
    FORMAT_VERSION,
    LOG_PREFIX,
    TXNLOG_MAGIC,
    LogFileWriter,
    LogStats,
    StorageError,
    TxnLog,
    adler32,
    encode_log_entry,
    fsync_dir,
    iter_log_entries,
    log_file_header,
    logs_from,
    read_log_file,
    zxid_files,
)
from zkquorum.wire.snapshot import Snapshot
from zkquorum.wire.txn import Txn, encode_txn
from zkquorum.wire.zxid import zxid_epoch, zxid_hex

__all__ = [
    "ACCEPTED_EPOCH",
    "CURRENT_EPOCH",
    "EOR",
    "FORMAT_VERSION",
    "SNAP_MAGIC",
    "TXNLOG_MAGIC",
    "LoadedState",
    "LogStats",
    "Storage",
    "StorageError",
    "StorageSettings",
    "TxnLog",
    "adler32",
    "autopurge",
    "decode_snapshot_file",
    "encode_log_entry",
    "encode_snapshot_file",
    "log_file_header",
    "read_log_file",
    "read_long",
    "write_long_atomically",
]

log = logging.getLogger(__name__)

VERSION_DIR: Final = "version-2"
ACCEPTED_EPOCH: Final = "acceptedEpoch"
CURRENT_EPOCH: Final = "currentEpoch"
TMP_EXTENSION: Final = ".tmp"
DEFAULT_COMMIT_LOG_COUNT: Final = 500
DEFAULT_SNAPSHOT_SIZE_FACTOR: Final = 0.33
MIN_SNAP_RETAIN_COUNT: Final = 3
COUNT_ERR_MSG: Final = "count should be greater than or equal to 3"

_JAVA_LONG = re.compile(r"[+-]?[0-9]+\Z")
_HEADER_SIZE: Final = FILE_HEADER.size


# -- settings -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """The storage knobs of 3.8, with its defaults and its corrections of bad values."""

    pre_alloc_size: int = DEFAULT_PRE_ALLOC_SIZE
    """Bytes (zoo.cfg ``preAllocSize`` is in KiB, ``FilePadding``)."""
    force_sync: bool = True
    max_batch: int = DEFAULT_MAX_BATCH
    snap_count: int = DEFAULT_SNAP_COUNT
    snap_size_limit: int = DEFAULT_SNAP_SIZE_LIMIT
    """Bytes (``snapSizeLimitInKb``); 0 or less turns the size rule off."""
    fsync_warning_threshold_ms: float = DEFAULT_FSYNC_WARNING_MS
    commit_log_count: int = DEFAULT_COMMIT_LOG_COUNT
    snapshot_size_factor: float = DEFAULT_SNAPSHOT_SIZE_FACTOR
    """Negative: never sync a learner from the log files (``ZKDatabase``)."""
    snap_retain_count: int = MIN_SNAP_RETAIN_COUNT
    purge_interval_hours: int = 0

    @classmethod
    def from_properties(cls, values: Mapping[str, str]) -> StorageSettings:
        """From trimmed zoo.cfg values, as 3.8 reads each one (bad numbers fall back to
        the default, as ``Integer.getInteger``/``Long.getLong`` do)."""
        d = cls()

        def num(key: str, default: int, bits: int = 32) -> int:
            raw = values.get(key)
            if raw is None:
                return default
            value = java_int(raw.strip(), bits)
            return default if value is None else value

        pre_alloc = d.pre_alloc_size
        if "preAllocSize" in values:
            kib = java_int(values["preAllocSize"].strip(), 64)
            if kib is None:
                log.warning("%s is not a valid value for preAllocSize", values["preAllocSize"])
            else:
                pre_alloc = kib * 1024
        snap_count = num("snapCount", DEFAULT_SNAP_COUNT)
        if snap_count < 2:
            log.warning("SnapCount should be 2 or more. Now, snapCount is reset to 2")
            snap_count = 2
        snap_kib = num("snapSizeLimitInKb", DEFAULT_SNAP_SIZE_LIMIT // 1024, 64)
        commit_log_count = num("commitLogCount", DEFAULT_COMMIT_LOG_COUNT)
        if commit_log_count < DEFAULT_COMMIT_LOG_COUNT:
            log.warning(
                "The configured commitLogCount %d is less than the recommended %d, going to "
                "use the recommended one",
                commit_log_count,
                DEFAULT_COMMIT_LOG_COUNT,
            )
            commit_log_count = DEFAULT_COMMIT_LOG_COUNT
        factor = DEFAULT_SNAPSHOT_SIZE_FACTOR
        if "snapshotSizeFactor" in values:
            try:
                factor = float(values["snapshotSizeFactor"].strip())
            except ValueError:
                factor = DEFAULT_SNAPSHOT_SIZE_FACTOR
            if factor > 1:
                factor = DEFAULT_SNAPSHOT_SIZE_FACTOR
        retain = num("autopurge.snapRetainCount", MIN_SNAP_RETAIN_COUNT)
        if retain < MIN_SNAP_RETAIN_COUNT:
            log.warning(
                "Invalid autopurge.snapRetainCount: %d. Defaulting to %d",
                retain,
                MIN_SNAP_RETAIN_COUNT,
            )
            retain = MIN_SNAP_RETAIN_COUNT
        return cls(
            pre_alloc_size=pre_alloc,
            force_sync=values.get("forceSync", "yes").strip() != "no",
            max_batch=num("maxBatchSize", DEFAULT_MAX_BATCH),
            snap_count=snap_count,
            snap_size_limit=snap_kib * 1024,
            fsync_warning_threshold_ms=float(
                num("fsync.warningthresholdms", int(DEFAULT_FSYNC_WARNING_MS), 64)
            ),
            commit_log_count=commit_log_count,
            snapshot_size_factor=factor,
            snap_retain_count=retain,
            purge_interval_hours=num("autopurge.purgeInterval", 0),
        )

    @classmethod
    def from_config(cls, config: QuorumConfig) -> StorageSettings:
        """Read ``config.path`` again for the values (``QuorumConfig`` keeps the names of
        the keys it does not use, not their values)."""
        try:
            text = Path(config.path).read_bytes().decode("iso-8859-1")
        except OSError:
            return cls()
        props = load_properties(text, config.path)
        return cls.from_properties({e.key.strip(): e.value.strip() for e in props})


# -- epoch files --------------------------------------------------------------------------


def write_long_atomically(path: Path, value: int) -> None:
    """``AtomicFileWritingIdiom``: ``<name>.tmp``, flush, fsync, rename."""
    tmp = path.with_name(path.name + TMP_EXTENSION)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, str(value).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_long(path: Path) -> int:
    """``QuorumPeer#readLongFromFile``: FileNotFoundError propagates; garbage is an error."""
    raw = path.read_bytes()
    text = raw.decode("utf-8", "replace")
    line: str | None = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0] if text else None
    if line is not None and _JAVA_LONG.match(line):
        value = int(line)
        if -(1 << 63) <= value < (1 << 63):
            return value
    raise StorageError(f"Found {'null' if line is None else line} in {path}")


# -- the store ----------------------------------------------------------------------------


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (the previous state comes back after).

    A load makes a million objects that all live on; with the collector on, each young
    collection and every full one walks all of them so far: measured on a 1,000,000-node
    snapshot, 3.5 s of the 10.3 s CPU of :meth:`Storage.load_tree`.  Nothing a load makes
    is cyclic garbage, so pausing frees nothing later than it would have been.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(slots=True)
class LoadedState:
    tree: DataTree
    committed: list[Txn]
    """The newest txns replayed after the snapshot, at most ``commit_log_count`` (3.8's
    in-memory ``committedLog``); older ones are read from the files (``read_txns``)."""
    snapshot_zxid: int
    accepted_epoch: int = 0
    current_epoch: int = 0

    @property
    def history(self) -> list[Txn]:
        """The former name of :attr:`committed` (now the bounded window, not every txn)."""
        return self.committed


class Storage:
    """One peer's persistent state.

    The synchronous methods block (small writes: epochs, truncation, the legacy
    ``append``); the txn log's group commit runs in its own thread (:meth:`txn_log`); a
    snapshot of a live tree is written in short slices of the loop, its fsync in a worker
    thread (``await take_snapshot(tree)``).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        data_log_dir: str | os.PathLike[str] | None = None,
        *,
        config_text: str = "",
        settings: StorageSettings | None = None,
        fsync: Callable[[int], None] | None = None,
    ) -> None:
        """``fsync`` replaces the txn log's fsync call (tests, a simulated slow disk)."""
        self._fsync = fsync
        self.snap_dir = Path(data_dir) / VERSION_DIR
        self.log_dir = Path(data_log_dir or data_dir) / VERSION_DIR
        self.config_text = config_text
        self.settings = settings or StorageSettings()
        self._writer: LogFileWriter | None = None
        self._txn_log: TxnLog | None = None
        self._snapshot_busy = False
        self.last_snapshot: SnapshotWritten | None = None
        self.digest_mismatches = 0
        """Snapshots whose digest the replayed tree did not match (``digest_mismatches``)."""
        self.snapshot_progress: Callable[[int], None] | None = None
        """Called between chunks of a snapshot being written (tests change the tree there
        to interleave with the writer deterministically)."""
        self.snapshot_slice_ms = 2.0
        """The longest the snapshot writer keeps the loop before yielding to it."""
        self.last_logged_zxid = -1

    # epochs

    def write_accepted_epoch(self, epoch: int) -> None:
        write_long_atomically(self.snap_dir / ACCEPTED_EPOCH, epoch)

    def write_current_epoch(self, epoch: int) -> None:
        write_long_atomically(self.snap_dir / CURRENT_EPOCH, epoch)

    def read_epochs(self, last_zxid: int) -> tuple[int, int]:
        """``QuorumPeer#loadDataBase``: (acceptedEpoch, currentEpoch) with 3.8's rules."""
        epoch_of_zxid = zxid_epoch(last_zxid)
        try:
            current = read_long(self.snap_dir / CURRENT_EPOCH)
        except FileNotFoundError:
            current = epoch_of_zxid
            log.info(
                "%s not found! Creating with a reasonable default of %d. This should only "
                "happen when you are upgrading your installation",
                CURRENT_EPOCH,
                current,
            )
            self.write_current_epoch(current)
        if epoch_of_zxid > current:
            tmp = self.snap_dir / (CURRENT_EPOCH + TMP_EXTENSION)
            if tmp.exists():
                current = read_long(tmp)
                log.info("%s found. Setting current epoch to %d.", tmp, current)
                self.write_current_epoch(current)
            else:
                raise StorageError(
                    f"The current epoch, {zxid_hex(current)}, is older than the last zxid, "
                    f"{last_zxid}"
                )
        try:
            accepted = read_long(self.snap_dir / ACCEPTED_EPOCH)
        except FileNotFoundError:
            accepted = epoch_of_zxid
            log.info(
                "%s not found! Creating with a reasonable default of %d. This should only "
                "happen when you are upgrading your installation",
                ACCEPTED_EPOCH,
                accepted,
            )
            self.write_accepted_epoch(accepted)
        if accepted < current:
            raise StorageError(
                f"The accepted epoch, {zxid_hex(accepted)} is less than the current epoch, "
                f"{zxid_hex(current)}"
            )
        return accepted, current

    # the database

    def load(self) -> LoadedState:
        """Restore the tree and the epochs (``QuorumPeer#loadDataBase``)."""
        state = self.load_tree()
        state.accepted_epoch, state.current_epoch = self.read_epochs(state.tree.last_processed_zxid)
        return state

    def load_tree(self) -> LoadedState:
        """``FileTxnSnapLog#restore``: newest valid snapshot, then the logged txns after it
        (with the cyclic garbage collector paused, :func:`gc_paused`)."""
        with gc_paused():
            return self._load_tree()

    def _load_tree(self) -> LoadedState:
        t0 = time.perf_counter()
        self.close()
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.snap_dir.glob(f"tmp.{SNAP_PREFIX}.*"):
            stale.unlink(missing_ok=True)  # a snapshot write cut short; never renamed
        tree: DataTree | None = None
        snap_zxid = -1
        expect: ZxidDigest | None = None
        for zxid, path in reversed(zxid_files(self.snap_dir, SNAP_PREFIX)):
            try:
                tree, expect = load_snapshot_file(path.read_bytes(), zxid, path.name)
            except (StorageError, OSError) as exc:
                log.warning("problem reading snap file %s: %s", path, exc)
                continue
            snap_zxid = zxid
            break
        if tree is None:
            logs = zxid_files(self.log_dir, LOG_PREFIX)
            if any(True for _, p in logs for _ in iter_log_entries(p)):
                raise StorageError(
                    "No snapshot found, but there are log entries. Something is broken!"
                )
            tree = DataTree(self.config_text)
            snap_zxid = 0
            self.write_snapshot(0, tree.to_snapshot())
        committed: collections.deque[Txn] = collections.deque(maxlen=self.settings.commit_log_count)
        if expect is not None and expect.version != DIGEST_VERSION:
            expect = None  # another digest function: nothing to compare with
        self._compare_digest(tree, expect)
        last_start = -1
        for start, path in logs_from(self.log_dir, snap_zxid):
            if start <= last_start:
                log.warning("%s overlaps the log before it", path)
            for entry in iter_log_entries(path):
                last_start = max(last_start, entry.zxid)
                if entry.zxid > tree.last_processed_zxid:
                    txn = entry.txn(path)
                    tree.apply(txn)
                    committed.append(txn)
                    if expect is not None and entry.zxid >= expect.zxid:
                        self._compare_digest(tree, expect)
                        expect = None
        tree.set_config(self.config_text)
        self.last_logged_zxid = tree.last_processed_zxid
        log.info(
            "Snapshot loaded in %d ms, highest zxid is 0x%x, digest is %d",
            (time.perf_counter() - t0) * 1000,
            tree.last_processed_zxid,
            tree.digest,
        )
        return LoadedState(tree, list(committed), snap_zxid)

    def _compare_digest(self, tree: DataTree, expect: ZxidDigest | None) -> None:
        """``DataTree#compareSnapshotDigests``: at the snapshot digest's zxid, the tree
        replayed to it must have that digest (a mismatch is logged and counted)."""
        if expect is None or tree.last_processed_zxid != expect.zxid:
            return
        if tree.digest != expect.digest:
            self.digest_mismatches += 1
            log.error(
                "Digests are not matching. Value in snapshot: %d, in memory: %d (zxid 0x%s)",
                expect.digest,
                tree.digest,
                zxid_hex(expect.zxid),
            )

    def read_txns(self, after_zxid: int, up_to_zxid: int, max_bytes: int) -> list[Txn] | None:
        """The logged txns with ``after < zxid <= up_to``, read from the log files
        (``ZKDatabase#getProposalsFromTxnLog``).

        ``None`` when the files don't cover the range (no log starts at or before
        ``after``, as "Unable to find proposals from txnlog", or the logs end before
        ``up_to``), or when the txns' bytes exceed ``max_bytes`` (negative: no limit).  3.8
        compares the limit with the log files' sizes, pre-allocation included; we count
        the entries themselves.
        """
        files = logs_from(self.log_dir, after_zxid)
        if not files or files[0][0] > after_zxid:
            return None
        out: list[Txn] = []
        size = 0
        last = after_zxid
        for _, path in files:
            for entry in iter_log_entries(path):
                if entry.zxid <= after_zxid:
                    continue
                if entry.zxid > up_to_zxid:
                    break
                size += entry.size
                if 0 <= max_bytes < size:
                    log.info("Txnlog size: %d exceeds sizeLimit: %d", size, max_bytes)
                    return None
                out.append(entry.txn(path))
                last = entry.zxid
            if last >= up_to_zxid:
                break
        return out if last >= up_to_zxid else None

    def txn_log_size_limit(self) -> int:
        """``ZKDatabase#calculateTxnLogSizeLimit``: the newest snapshot's size x
        ``snapshotSizeFactor``; -1 when syncing from the log files is off."""
        factor = self.settings.snapshot_size_factor
        if factor < 0:
            return -1
        return int(self.snapshot_size() * factor)

    def snapshot_size(self) -> int:
        """Bytes of the newest valid snapshot (0 when there is none)."""
        for _, path in reversed(zxid_files(self.snap_dir, SNAP_PREFIX)):
            if is_valid_snapshot(path):
                try:
                    return path.stat().st_size
                except OSError:
                    continue
        return 0

    # writing

    def txn_log(
        self,
        *,
        on_synced: Callable[[int], None],
        on_error: Callable[[BaseException], None],
        on_snapshot_due: Callable[[int], None] | None = None,
        seed: int | None = None,
        fsync: Callable[[int], None] | None = None,
    ) -> TxnLog:
        """The group-committed log of this data log dir, with the settings' knobs.

        Call ``start()`` on the loop.  :meth:`truncate` rolls it, so only one at a time.
        """
        self.close()
        s = self.settings
        tl = TxnLog(
            self.log_dir,
            on_synced=on_synced,
            on_error=on_error,
            pre_alloc_size=s.pre_alloc_size,
            force_sync=s.force_sync,
            max_batch=s.max_batch,
            snap_count=s.snap_count,
            snap_size_limit=s.snap_size_limit,
            fsync_warning_threshold_ms=s.fsync_warning_threshold_ms,
            seed=seed,
            on_snapshot_due=on_snapshot_due,
            fsync=fsync or self._fsync,
        )
        self._txn_log = tl
        return tl

    def append(self, txns: Sequence[Txn]) -> None:
        """Synchronous ``FileTxnLog#append`` + ``#commit`` (write, fsync) on the caller's
        thread; the group-committed :meth:`txn_log` replaces it."""
        if not txns:
            return
        if self._writer is None:
            self._writer = LogFileWriter(
                self.log_dir, pre_alloc_size=self.settings.pre_alloc_size, fsync=self._fsync
            )
        self._writer.write(
            txns[0].header.zxid, b"".join(encode_log_entry(encode_txn(t)) for t in txns)
        )
        self._writer.sync()
        self.last_logged_zxid = max(self.last_logged_zxid, *(t.header.zxid for t in txns))

    def write_snapshot(self, zxid: int, snap: Snapshot) -> Path:
        """Write ``snapshot.<hex zxid>`` atomically from a built snapshot (small trees, the
        empty ``snapshot.0``), then roll the synchronous log."""
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        path = self.snap_dir / snapshot_name(zxid)
        tmp = self.snap_dir / f"tmp.{path.name}"
        with tmp.open("wb") as f:
            f.write(encode_snapshot_file(snap))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(self.snap_dir)
        self.close()
        return path

    @overload
    def take_snapshot(self, tree: DataTree, /) -> Coroutine[Any, Any, Path | None]: ...

    @overload
    def take_snapshot(self, zxid: int, snap: Snapshot, /) -> Path: ...

    def take_snapshot(
        self, tree_or_zxid: DataTree | int, snap: Snapshot | None = None, /
    ) -> Path | Coroutine[Any, Any, Path | None]:
        """``await take_snapshot(tree)``: a fuzzy snapshot of a live tree, written in slices
        of the loop (``None``: "Too busy to snap", one is still being written).

        ``take_snapshot(zxid, snap)``: the former synchronous form (:meth:`write_snapshot`),
        kept until every caller has moved.
        """
        if isinstance(tree_or_zxid, DataTree):
            return self._snapshot(tree_or_zxid)
        if snap is None:
            raise TypeError("take_snapshot(zxid, snap) needs the snapshot")
        return self.write_snapshot(tree_or_zxid, snap)

    @property
    def snapshot_in_progress(self) -> bool:
        return self._snapshot_busy

    async def _snapshot(self, tree: DataTree) -> Path | None:
        if self._snapshot_busy:
            log.warning("Too busy to snap, skipping")
            return None
        self._snapshot_busy = True
        try:
            written = await self._write_in_slices(tree)
        finally:
            self._snapshot_busy = False
        self.last_snapshot = written
        log.info(
            "Snapshot %s: %d nodes, %d bytes in %.0f ms",
            written.path.name,
            written.nodes,
            written.size,
            written.ms,
        )
        return written.path

    async def _write_in_slices(self, tree: DataTree) -> SnapshotWritten:
        """Capture the tree (one C-level copy), then encode and write it in slices of
        ``snapshot_slice_ms`` between which the loop serves everything else; the fsync
        and rename run in a worker thread.

        Not a thread for the encoding: Python code holds the GIL, so a thread runs no
        faster, and a busy loop (one that releases the GIL in every ``select`` and takes
        it straight back) starves it: measured, a 100,000-node snapshot made no progress
        in ten minutes beside a saturated loop.  Slices give the snapshot a fair share.
        """
        t0 = time.perf_counter()
        zxid = tree.last_processed_zxid
        cap = capture_tree(tree.nodes, tree.sessions, zxid)
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        path = self.snap_dir / snapshot_name(zxid)
        tmp = tmp_snapshot_path(self.snap_dir, zxid)
        enc = SnapshotEncoder(
            cap,
            progress=self.snapshot_progress,
            digest=lambda: ZxidDigest(tree.last_processed_zxid, DIGEST_VERSION, tree.digest),
        )
        slice_s = self.snapshot_slice_ms / 1000.0
        f = tmp.open("wb")
        try:
            until = time.perf_counter() + slice_s
            for chunk in enc:
                if chunk:
                    f.write(chunk)
                if time.perf_counter() >= until:
                    await asyncio.sleep(0)
                    until = time.perf_counter() + slice_s
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        loop = asyncio.get_running_loop()
        # A cancelled caller does not stop the thread: the file is finished either way.
        size = await asyncio.shield(loop.run_in_executor(None, finish_snapshot, f, tmp, path))
        return SnapshotWritten(path, zxid, size, enc.nodes, (time.perf_counter() - t0) * 1000.0)

    def truncate(self, zxid: int) -> bool:
        """``FileTxnLog#truncate``: drop every logged txn after ``zxid`` (and newer
        snapshots).  Only while the txn log is drained; it is rolled, so the next txn
        opens a new file."""
        self.close()
        if self._txn_log is not None:
            if self._txn_log.pending:
                raise StorageError("truncate() while the txn log still has txns to write")
            self._txn_log.roll()
        for start, path in zxid_files(self.log_dir, LOG_PREFIX):
            if start > zxid:
                path.unlink()
                continue
            keep = _HEADER_SIZE
            for entry in iter_log_entries(path):
                if entry.zxid > zxid:
                    break
                keep = entry.end
            with path.open("r+b") as f:
                f.truncate(keep)
                os.fsync(f.fileno())
        for snap_zxid, path in zxid_files(self.snap_dir, SNAP_PREFIX):
            if snap_zxid > zxid:
                path.unlink()
        return True

    def purge(self, snap_retain_count: int) -> list[Path]:
        """``PurgeTxnLog#purge``: keep the newest ``snap_retain_count`` (3 or more) valid
        snapshots and every log file they need (the log holding the oldest kept
        snapshot's zxid, and all later ones); remove older snapshots and logs.  Returns
        the removed files."""
        if snap_retain_count < MIN_SNAP_RETAIN_COUNT:
            raise ValueError(COUNT_ERR_MSG)
        valid = [
            (z, p)
            for z, p in reversed(zxid_files(self.snap_dir, SNAP_PREFIX))
            if is_valid_snapshot(p)
        ][:snap_retain_count]
        if not valid:
            return []
        least = valid[-1][0]
        retained = {p for _, p in logs_from(self.log_dir, least)}
        doomed = [
            p for z, p in zxid_files(self.log_dir, LOG_PREFIX) if z < least and p not in retained
        ]
        doomed += [p for z, p in zxid_files(self.snap_dir, SNAP_PREFIX) if z < least]
        removed = []
        for path in doomed:
            log.info("Removing file: %s", path)
            try:
                path.unlink()
            except OSError as exc:
                log.warning("Failed to remove %s: %s", path, exc)
            else:
                removed.append(path)
        return removed

    def close(self) -> None:
        """Close the synchronous log (``append``); the :class:`TxnLog` closes itself."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def files(self) -> Iterable[Path]:
        yield from sorted(self.snap_dir.glob("*"))
        if self.log_dir != self.snap_dir:
            yield from sorted(self.log_dir.glob("*"))


async def autopurge(storage: Storage, snap_retain_count: int, purge_interval_hours: int) -> None:
    """``DatadirCleanupManager``: purge now and every ``purge_interval_hours``, in a worker
    thread; returns at once when the interval is 0 or less ("Purge task is not
    scheduled.").  Run it as a task; cancel it to stop."""
    log.info("autopurge.snapRetainCount set to %d", snap_retain_count)
    log.info("autopurge.purgeInterval set to %d", purge_interval_hours)
    if purge_interval_hours <= 0:
        log.info("Purge task is not scheduled.")
        return
    loop = asyncio.get_running_loop()
    count = max(snap_retain_count, MIN_SNAP_RETAIN_COUNT)
    while True:
        try:
            await loop.run_in_executor(None, storage.purge, count)
        except OSError as exc:
            log.error("Error occurred while purging: %s", exc)
        await asyncio.sleep(purge_interval_hours * 3600.0)
