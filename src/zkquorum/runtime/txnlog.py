"""The txn log: ``log.<zxid>`` files, their pre-allocation, and group commit.

Facts: ``docs/spec/quorum-config-and-zab.md`` A4; ZooKeeper 3.8.0 ``FileTxnLog``,
``FilePadding``, ``SyncRequestProcessor``, ``persistence/Util``.

* ``log.<hex zxid of its first txn>``: ``FileHeader {int magic "ZKLG"; int version 2;
  long dbid 0}``, then per txn ``long adler32(bytes); buffer bytes; byte 'B'``, where bytes
  is the serialized txn (header, record, digest: exactly a PROPOSAL's data).  A zero
  length or the end of the file ends the log: files are pre-allocated with zeros.
* Pre-allocation (``FilePadding#calculateFileSizeWithPadding``): whenever a write would
  come within 4 KiB of the allocated end, the file grows by ``preAllocSize`` (64 MiB);
  3.8 writes one byte at the new end (a sparse file), we ask the file system for the
  blocks (``posix_fallocate``) and fall back to extending the size when it can't.
* Group commit (``SyncRequestProcessor#run`` / ``#flush``): one writer thread takes
  whatever is queued (at most ``maxBatchSize`` txns, 1000), writes it, fsyncs once, and
  only then reports the batch's last zxid as durable.  ``forceSync=no`` skips the fsync.
* Snapshots (``SyncRequestProcessor#shouldSnapshot``): after a txn, when the txns logged
  since the last roll exceed ``snapCount/2 + randRoll`` (or their bytes
  ``snapSizeLimitInKb/2 + randSize``), the log is rolled and a snapshot is due; the
  random parts are drawn again at each roll, so peers don't snapshot in step.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import os
import random
import re
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.txn import Txn, decode_txn, encode_txn
from zkquorum.wire.zxid import zxid_hex

log = logging.getLogger(__name__)

TXNLOG_MAGIC: Final = 0x5A4B4C47  # "ZKLG"
FORMAT_VERSION: Final = 2
EOR: Final = 0x42  # 'B'
LOG_PREFIX: Final = "log"
DEFAULT_PRE_ALLOC_SIZE: Final = 64 * 1024 * 1024
DEFAULT_MAX_BATCH: Final = 1000
DEFAULT_SNAP_COUNT: Final = 100_000
DEFAULT_SNAP_SIZE_LIMIT: Final = 4 * 1024 * 1024 * 1024
DEFAULT_FSYNC_WARNING_MS: Final = 1000.0
PAD_MARGIN: Final = 4096
"""``FilePadding``: grow the file once a write comes this close to its allocated end."""

FILE_HEADER: Final = struct.Struct(">iiq")
_ENTRY_HEAD = struct.Struct(">qi")
_LONG_INT = struct.Struct(">qi")
_ZXID_IN_TXN = struct.Struct(">q")
_ZXID_OFFSET = 12  # TxnHeader {long clientId; int cxid; long zxid; ...}
_READ_CHUNK = 1 << 20
GIL_SWITCH_INTERVAL_S: Final = 0.0005
"""The longest a thread waiting for the GIL lets the holder run before asking for it.

Python's default (5 ms) only forces a switch when no thread took the GIL during the whole
interval; a busy event loop drops and retakes it in every ``select``, so a waiting thread
may never be given its turn: measured with the loop saturated by 1 ms slices of work, the
writer thread's batches took seconds to report (8 durable txn/s instead of 16,000)."""
_NAME = re.compile(r"(log|snapshot)\.([0-9a-fA-F]+)\Z")


class StorageError(Exception):
    """A start-up or I/O problem, with ZooKeeper's text where it has one."""


# -- the format ---------------------------------------------------------------------------


def adler32(data: bytes, value: int = 1) -> int:
    return zlib.adler32(data, value) & 0xFFFFFFFF


def encode_log_entry(txn_bytes: bytes) -> bytes:
    return _LONG_INT.pack(adler32(txn_bytes), len(txn_bytes)) + txn_bytes + b"B"


def log_file_header() -> bytes:
    return FILE_HEADER.pack(TXNLOG_MAGIC, FORMAT_VERSION, 0)


def log_name(zxid: int) -> str:
    """``Util#makeLogName``."""
    return f"{LOG_PREFIX}.{zxid_hex(zxid)}"


def zxid_files(directory: Path, prefix: str) -> list[tuple[int, Path]]:
    """``Util#sortDataDir``: ``<prefix>.<hex>`` files, oldest first."""
    found = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(directory):
            m = _NAME.match(entry.name)
            if m and m.group(1) == prefix:
                found.append((int(m.group(2), 16), Path(entry.path)))
    found.sort()
    return found


def logs_from(directory: Path, zxid: int) -> list[tuple[int, Path]]:
    """``FileTxnLog#getLogFiles``: the newest log starting at or before ``zxid``, and every
    later one (the files that can hold txns after ``zxid``)."""
    files = zxid_files(directory, LOG_PREFIX)
    start = 0
    for fzxid, _ in files:
        if fzxid > zxid:
            break
        start = max(start, fzxid)
    return [(z, p) for z, p in files if z >= start]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One complete entry of a log file: its zxid, serialized txn and where it ends."""

    zxid: int
    data: bytes
    end: int

    def txn(self, path: Path) -> Txn:
        try:
            return decode_txn(self.data)
        except QuorumProtocolError as exc:
            raise StorageError(f"bad txn in {path} before offset {self.end}: {exc}") from None

    @property
    def size(self) -> int:
        """Bytes on disk: crc, length, txn, end-of-record."""
        return len(self.data) + 13


def iter_log_entries(path: Path) -> Iterator[LogEntry]:
    """Every complete entry of ``path``, read in chunks (a pre-allocated file is mostly
    zeros: never read it whole).

    The end is the end of the file, a zero length (pre-allocated space) or a torn last
    entry (``FileTxnIterator#next``: "Last transaction was partial"); a CRC mismatch in a
    complete entry is fatal, as in 3.8.
    """
    with path.open("rb", buffering=0) as f:
        head = f.read(FILE_HEADER.size)
        if len(head) < FILE_HEADER.size:
            return
        magic, _version, _dbid = FILE_HEADER.unpack(head)
        if magic != TXNLOG_MAGIC:
            raise StorageError(
                f"Transaction log: {path} has invalid magic number {magic} != {TXNLOG_MAGIC}"
            )
        buf = b""
        pos = 0  # in buf
        base = FILE_HEADER.size  # file offset of buf[0]
        eof = False

        def fill(need: int) -> bool:
            nonlocal buf, pos, base, eof
            while len(buf) - pos < need and not eof:
                chunk = f.read(max(_READ_CHUNK, need))
                if not chunk:
                    eof = True
                    break
                base += pos
                buf = buf[pos:] + chunk
                pos = 0
            return len(buf) - pos >= need

        while fill(_ENTRY_HEAD.size):
            crc, length = _ENTRY_HEAD.unpack_from(buf, pos)
            if length <= 0:
                return  # pre-allocated zeros: the end
            if not fill(_ENTRY_HEAD.size + length + 1):
                log.warning("%s: the last transaction was partial", path)
                return
            start = pos + _ENTRY_HEAD.size
            end = start + length
            if buf[end] != EOR:
                log.warning("%s: the last transaction was partial", path)
                return
            body = buf[start:end]
            if adler32(body) != crc & 0xFFFFFFFF:
                raise StorageError(f"CRC check failed in {path} at offset {base + pos}")
            if length < _ZXID_OFFSET + 8:
                raise StorageError(f"bad txn in {path} at offset {base + pos}: too short")
            (zxid,) = _ZXID_IN_TXN.unpack_from(body, _ZXID_OFFSET)
            pos = end + 1
            yield LogEntry(zxid, body, base + pos)


def read_log_file(path: Path) -> Iterator[tuple[int, Txn]]:
    """(offset after the entry, txn) for every complete entry; raises on a CRC mismatch."""
    for entry in iter_log_entries(path):
        yield entry.end, entry.txn(path)


def padded_size(position: int, file_size: int, pre_alloc_size: int) -> int:
    """``FilePadding#calculateFileSizeWithPadding``: the size to allocate before writing up
    to ``position``."""
    if pre_alloc_size > 0 and position + PAD_MARGIN >= file_size:
        if position > file_size:
            file_size = position + pre_alloc_size
            file_size -= file_size % pre_alloc_size
        else:
            file_size += pre_alloc_size
    return file_size


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def default_fsync() -> Callable[[int], None]:
    """``FileChannel#force(false)``: the data, not the metadata, where the OS can."""
    return getattr(os, "fdatasync", os.fsync)


# -- one writer ---------------------------------------------------------------------------


class LogFileWriter:
    """The open ``log.<zxid>`` and the files rolled since the last sync (blocking I/O).

    ``write`` appends bytes, growing the file in ``pre_alloc_size`` steps; ``sync`` makes
    everything written so far durable (every file written since the last sync, and the
    directory when a file was created), closes rolled files and returns each fsync's ms.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        pre_alloc_size: int = DEFAULT_PRE_ALLOC_SIZE,
        fsync: Callable[[int], None] | None = None,
        force_sync: bool = True,
    ) -> None:
        self.log_dir = log_dir
        self.pre_alloc_size = pre_alloc_size
        self.force_sync = force_sync
        self._fsync = fsync or default_fsync()
        self._fd = -1
        self._pos = 0
        self._allocated = 0
        self.path: Path | None = None
        self._unsynced: list[int] = []  # fds written since the last sync, oldest first
        self._rolled: list[int] = []  # fds to close after the next sync
        self._new_file = False

    @property
    def is_open(self) -> bool:
        return self._fd >= 0

    @property
    def position(self) -> int:
        return self._pos

    def write(self, first_zxid: int, data: bytes) -> None:
        """Append ``data`` (whole entries); ``first_zxid`` names a file this opens."""
        if not data:
            return
        if self._fd < 0:
            self._open(first_zxid)
        end = self._pos + len(data)
        size = padded_size(end, self._allocated, self.pre_alloc_size)
        if size > self._allocated:
            self._extend(size)
        self._pwrite(data, self._pos)
        self._pos = end
        if not self._unsynced or self._unsynced[-1] != self._fd:
            self._unsynced.append(self._fd)

    def roll(self) -> None:
        """``FileTxnLog#rollLog``: the next write opens a new file."""
        if self._fd < 0:
            return
        if self._unsynced and self._unsynced[-1] == self._fd:
            self._rolled.append(self._fd)
        else:
            os.close(self._fd)
        self._fd = -1
        self.path = None

    def sync(self) -> list[float]:
        """``FileTxnLog#commit``: fsync what was written; the ms of each fsync."""
        times = []
        try:
            if self.force_sync:
                for fd in self._unsynced:
                    t0 = time.perf_counter()
                    self._fsync(fd)
                    times.append((time.perf_counter() - t0) * 1000.0)
                if self._new_file:
                    fsync_dir(self.log_dir)
            self._new_file = False
            self._unsynced.clear()
        finally:
            if not self._unsynced:
                for fd in self._rolled:
                    os.close(fd)
                self._rolled.clear()
        return times

    def file_size(self) -> int:
        return self._allocated

    def close(self) -> None:
        """Close every file (what was not synced may be lost, as after a crash)."""
        for fd in {*self._unsynced, *self._rolled, self._fd}:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._unsynced.clear()
        self._rolled.clear()
        self._fd = -1
        self.path = None

    def _open(self, first_zxid: int) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / log_name(first_zxid)
        log.info("Creating new log file: %s", path.name)
        # As 3.8 (a new FileOutputStream): a file of that name holds nothing we still need;
        # truncate() removed every log starting after the last zxid we keep.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._fd = fd
        self.path = path
        self._pos = 0
        self._allocated = 0
        self._new_file = True
        header = log_file_header()
        self._pwrite(header, 0)
        self._pos = self._allocated = len(header)

    def _extend(self, size: int) -> None:
        try:
            os.posix_fallocate(self._fd, self._allocated, size - self._allocated)
        except (AttributeError, OSError):
            os.ftruncate(self._fd, size)  # a sparse file, as 3.8's one-byte write
        self._allocated = size

    def _pwrite(self, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd, view, offset)
            view = view[n:]
            offset += n


# -- group commit -------------------------------------------------------------------------


class _Marker(enum.Enum):
    ROLL = "roll"


@dataclass(frozen=True, slots=True)
class LogStats:
    """Group-commit figures for ``mntr`` / metrics (``ServerMetrics`` FSYNC_TIME,
    BATCH_SIZE, ``fsync_threshold_exceed_count``)."""

    fsync_count: int = 0
    fsync_total_ms: float = 0.0
    fsync_max_ms: float = 0.0
    fsync_threshold_exceeded: int = 0
    batch_count: int = 0
    txn_count: int = 0
    batch_max: int = 0
    batch_last: int = 0

    @property
    def batch_mean(self) -> float:
        return self.txn_count / self.batch_count if self.batch_count else 0.0

    @property
    def fsync_mean_ms(self) -> float:
        return self.fsync_total_ms / self.fsync_count if self.fsync_count else 0.0


@dataclass(frozen=True, slots=True)
class _BatchDone:
    seq: int
    last_zxid: int | None
    txns: int
    fsync_ms: tuple[float, ...]
    snapshot_due: tuple[int, ...]


class TxnLog:
    """Group commit (ZooKeeper's SyncRequestProcessor + FileTxnLog): ``append()`` queues
    txns; one writer thread writes and fsyncs them a batch at a time (a batch ends when
    the queue momentarily drains or at ``max_batch`` txns), then reports on the loop.

    ``on_synced(zxid)`` runs on the loop once every txn appended up to ``zxid`` is durable,
    in append order.  After a failed write or fsync the thread stops: ``on_error`` runs
    once, nothing later is reported durable, and ``drain()`` raises :class:`StorageError`.
    ``on_snapshot_due(zxid)`` runs (after the ``on_synced`` that covers ``zxid``) when 3.8's
    rule asks for a snapshot; the log was already rolled after ``zxid``.

    ``fsync`` replaces the fsync call (tests use it to hold a batch on the disk).
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        on_synced: Callable[[int], None],
        on_error: Callable[[BaseException], None],
        pre_alloc_size: int = DEFAULT_PRE_ALLOC_SIZE,
        force_sync: bool = True,
        max_batch: int = DEFAULT_MAX_BATCH,
        snap_count: int = DEFAULT_SNAP_COUNT,
        seed: int | None = None,
        on_snapshot_due: Callable[[int], None] | None = None,
        snap_size_limit: int = DEFAULT_SNAP_SIZE_LIMIT,
        fsync_warning_threshold_ms: float = DEFAULT_FSYNC_WARNING_MS,
        fsync: Callable[[int], None] | None = None,
    ) -> None:
        if snap_count < 2:
            log.warning("SnapCount should be 2 or more. Now, snapCount is reset to 2")
            snap_count = 2
        self.log_dir = log_dir
        self._on_synced = on_synced
        self._on_error = on_error
        self._on_snapshot_due = on_snapshot_due
        self.max_batch = max(1, max_batch)
        self.snap_count = snap_count
        self.snap_size_limit = snap_size_limit
        self.fsync_warning_threshold_ms = fsync_warning_threshold_ms
        self._writer = LogFileWriter(
            log_dir, pre_alloc_size=pre_alloc_size, fsync=fsync, force_sync=force_sync
        )
        self._rng = random.Random(seed)
        self._rand_roll = 0
        self._rand_size = 0
        self._reset_snapshot_stats()
        # Shared with the writer thread, under _cond.
        self._cond = threading.Condition()
        self._queue: collections.deque[Txn | _Marker] = collections.deque()
        self._closing = False
        # Writer thread only.
        self._log_count = 0
        self._log_bytes = 0
        # Loop only.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._appended_seq = 0
        self._synced_seq = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._error: BaseException | None = None
        self._closed = False
        self.last_synced_zxid = -1
        self.stats = LogStats()

    # -- the loop's side -------------------------------------------------------------------

    def start(self) -> None:
        """Bind the running loop and start the writer thread (``SyncThread``).

        Shortens the interpreter's GIL switch interval to :data:`GIL_SWITCH_INTERVAL_S`
        when it is longer (process-wide): without it a busy loop starves the thread.
        """
        if self._thread is not None:
            return
        if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
            log.info("GIL switch interval set to %.1f ms", GIL_SWITCH_INTERVAL_S * 1000)
            sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="SyncThread", daemon=True)
        self._thread.start()

    def append(self, txns: Sequence[Txn]) -> None:
        """Queue ``txns`` (FIFO); never blocks.  Ignored after a failure (already reported)."""
        if not txns or self._error is not None:
            return
        if self._closed:
            raise StorageError("append to a closed txn log")
        with self._cond:
            self._queue.extend(txns)
            self._cond.notify()
        self._appended_seq += len(txns)

    def roll(self) -> None:
        """The next txn appended opens a new ``log.<its zxid>`` (``FileTxnLog#rollLog``)."""
        if self._error is not None or self._closed:
            return
        with self._cond:
            self._queue.append(_Marker.ROLL)
            self._cond.notify()
        self._appended_seq += 1

    @property
    def pending(self) -> int:
        """Txns and rolls appended but not yet reported durable."""
        return self._appended_seq - self._synced_seq

    async def drain(self) -> None:
        """Return once everything appended so far is durable; raise if the log failed."""
        if self._error is not None:
            raise StorageError(f"the txn log failed: {self._error}") from self._error
        target = self._appended_seq
        if self._synced_seq >= target:
            return
        if self._thread is None:
            raise StorageError("drain() before start(): nothing writes the log")
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((target, fut))
        await fut

    async def close(self) -> None:
        """Drain (unless the log failed), stop the thread, close the file."""
        if self._closed:
            return
        try:
            if self._error is None and self._thread is not None:
                await self.drain()
        finally:
            self._closed = True
            with self._cond:
                self._closing = True
                self._cond.notify()
            thread = self._thread
            if thread is not None:
                await asyncio.get_running_loop().run_in_executor(None, thread.join)
            self._writer.close()

    def close_sync(self) -> None:
        """Stop without a loop (tests, shutdown paths): the thread finishes what is queued."""
        self._closed = True
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        self._writer.close()

    def _batch_done(self, done: _BatchDone) -> None:
        s = self.stats
        slow = sum(1 for ms in done.fsync_ms if ms > self.fsync_warning_threshold_ms)
        self.stats = LogStats(
            fsync_count=s.fsync_count + len(done.fsync_ms),
            fsync_total_ms=s.fsync_total_ms + sum(done.fsync_ms),
            fsync_max_ms=max(s.fsync_max_ms, *done.fsync_ms, 0.0),
            fsync_threshold_exceeded=s.fsync_threshold_exceeded + slow,
            batch_count=s.batch_count + (1 if done.txns else 0),
            txn_count=s.txn_count + done.txns,
            batch_max=max(s.batch_max, done.txns),
            batch_last=done.txns if done.txns else s.batch_last,
        )
        self._synced_seq = done.seq
        try:
            if done.last_zxid is not None:
                self.last_synced_zxid = done.last_zxid
                self._on_synced(done.last_zxid)
        finally:
            while self._waiters and self._waiters[0][0] <= done.seq:
                _, fut = self._waiters.popleft()
                if not fut.done():
                    fut.set_result(None)
        if self._on_snapshot_due is not None:
            for zxid in done.snapshot_due:
                self._on_snapshot_due(zxid)

    def _failed(self, exc: BaseException) -> None:
        if self._error is not None:
            return
        self._error = exc
        err = StorageError(f"the txn log failed: {exc}")
        while self._waiters:
            _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(err)
        self._on_error(exc)

    def _post(self, callback: Callable[..., object], *args: object) -> bool:
        loop = self._loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            return False
        return True

    # -- the writer thread -----------------------------------------------------------------

    def _reset_snapshot_stats(self) -> None:
        """``SyncRequestProcessor#resetSnapshotStats``."""
        self._rand_roll = self._rng.randrange(self.snap_count // 2)
        half_size = self.snap_size_limit // 2
        self._rand_size = self._rng.randrange(half_size) if half_size > 0 else 0

    def _should_snapshot(self) -> bool:
        """``SyncRequestProcessor#shouldSnapshot``."""
        return self._log_count > self.snap_count // 2 + self._rand_roll or (
            self.snap_size_limit > 0
            and self._log_bytes > self.snap_size_limit // 2 + self._rand_size
        )

    def _take(self) -> list[Txn | _Marker] | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            q = self._queue
            if not q:
                return None
            if len(q) <= self.max_batch:
                batch = list(q)
                q.clear()
                return batch
            out: list[Txn | _Marker] = []
            txns = 0
            while q and txns < self.max_batch:
                item = q.popleft()
                out.append(item)
                if not isinstance(item, _Marker):
                    txns += 1
            return out

    def _run(self) -> None:
        seq = 0
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                done = self._write_batch(batch, seq)
            except BaseException as exc:
                log.error("Severe unrecoverable error, writing the txn log: %s", exc)
                with contextlib.suppress(OSError):
                    self._writer.close()
                with self._cond:
                    self._closing = True
                    self._queue.clear()
                self._post(self._failed, exc)
                return
            seq = done.seq
            self._post(self._batch_done, done)

    def _write_batch(self, batch: list[Txn | _Marker], seq: int) -> _BatchDone:
        writer = self._writer
        parts: list[bytes] = []
        first = 0
        last: int | None = None
        txns = 0
        due: list[int] = []
        for item in batch:
            if isinstance(item, _Marker):
                if parts:
                    writer.write(first, b"".join(parts))
                    parts = []
                writer.roll()
                self._log_count = self._log_bytes = 0
                continue
            data = encode_txn(item)
            zxid = item.header.zxid
            if not parts:
                first = zxid
            parts.append(encode_log_entry(data))
            last = zxid
            txns += 1
            self._log_count += 1
            self._log_bytes += len(data) + 13
            if self._should_snapshot():
                self._reset_snapshot_stats()
                writer.write(first, b"".join(parts))
                parts = []
                writer.roll()
                self._log_count = self._log_bytes = 0
                due.append(zxid)
        if parts:
            writer.write(first, b"".join(parts))
        size = writer.file_size()
        fsync_ms = writer.sync()
        for ms in fsync_ms:
            if ms > self.fsync_warning_threshold_ms:
                log.warning(
                    "fsync-ing the write ahead log in %s took %dms which will adversely effect "
                    "operation latency.File size is %d bytes. See the ZooKeeper troubleshooting "
                    "guide",
                    threading.current_thread().name,
                    int(ms),
                    size,
                )
        return _BatchDone(seq + len(batch), last, txns, tuple(fsync_ms), tuple(due))
