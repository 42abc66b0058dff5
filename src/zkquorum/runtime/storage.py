"""A peer's files in ``dataDir/version-2`` (and ``dataLogDir/version-2``), ZooKeeper's formats.

Facts: ``docs/spec/quorum-config-and-zab.md`` A4; ZooKeeper 3.8.0 ``QuorumPeer#loadDataBase``,
``#readLongFromFile``, ``#writeLongToFile``, ``FileTxnSnapLog#restore``, ``FileTxnLog``,
``FileSnap``, ``SnapStream``, ``persistence/Util``.

* ``acceptedEpoch``, ``currentEpoch``: the decimal number, no newline; written as
  ``<name>.tmp`` + fsync + rename.  Read: the first line as a Java long, else
  ``Found <line> in <file>``.
* ``log.<hex zxid of its first txn>``: ``FileHeader {int magic "ZKLG"; int version 2;
  long dbid 0}``, then per txn ``long adler32(bytes); buffer bytes; byte 'B'``, where bytes
  is the serialized txn (header, record, digest: exactly a PROPOSAL's data).  A zero
  length or the end of the file ends the log (Java pre-allocates with zeros).
* ``snapshot.<hex zxid>``: ``FileHeader {"ZKSN", 2, 0}``, the snapshot stream (sessions,
  ACL cache, nodes, ``"/"``), a seal ``long adler32-so-far; ustring "/"``, then
  ``ZxidDigest {long zxid; int version; long digest}`` and a second seal.  We write an empty
  digest (zxid 0), which 3.8 reads as "The digest value is empty in snapshot".  We write
  snapshots to a temporary name, fsync, then rename (3.8 writes in place and relies on
  the trailing seal to spot a torn file; we check the seal too).

Start-up (``load``): the newest valid snapshot, then every logged txn after it; an empty
directory gets ``snapshot.0``; logs without any snapshot are fatal, as in 3.8
(``No snapshot found, but there are log entries. Something is broken!``).  Then the epoch
rules of ``QuorumPeer#loadDataBase`` with ZooKeeper's error texts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from zkquorum.core.datatree import DataTree
from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.jute import encode_ustring, read_ustring
from zkquorum.wire.reader import NeedData, Reader, pack_int, pack_long
from zkquorum.wire.snapshot import Snapshot, SnapshotParser, encode_snapshot
from zkquorum.wire.txn import Txn, decode_txn, encode_txn
from zkquorum.wire.zxid import zxid_epoch, zxid_hex

log = logging.getLogger(__name__)

VERSION_DIR: Final = "version-2"
ACCEPTED_EPOCH: Final = "acceptedEpoch"
CURRENT_EPOCH: Final = "currentEpoch"
TMP_EXTENSION: Final = ".tmp"
TXNLOG_MAGIC: Final = 0x5A4B4C47  # "ZKLG"
SNAP_MAGIC: Final = 0x5A4B534E  # "ZKSN"
FORMAT_VERSION: Final = 2
DIGEST_VERSION: Final = 2
EOR: Final = 0x42  # 'B'
SEAL: Final = encode_ustring("/")

_HEADER = struct.Struct(">iiq")
_LONG = struct.Struct(">q")
_JAVA_LONG = re.compile(r"[+-]?[0-9]+\Z")
_NAME = re.compile(r"(log|snapshot)\.([0-9a-fA-F]+)\Z")


class StorageError(Exception):
    """A start-up or I/O problem, with ZooKeeper's text where it has one."""


@dataclass
class LoadedState:
    tree: DataTree
    history: list[Txn]
    """The txns replayed after the snapshot (3.8's in-memory ``committedLog``)."""
    snapshot_zxid: int
    accepted_epoch: int = 0
    current_epoch: int = 0


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
    _fsync_dir(path.parent)


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


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- file formats -------------------------------------------------------------------------


def adler32(data: bytes, value: int = 1) -> int:
    return zlib.adler32(data, value) & 0xFFFFFFFF


def encode_log_entry(txn_bytes: bytes) -> bytes:
    return pack_long(adler32(txn_bytes)) + pack_int(len(txn_bytes)) + txn_bytes + bytes([EOR])


def log_file_header() -> bytes:
    return _HEADER.pack(TXNLOG_MAGIC, FORMAT_VERSION, 0)


def read_log_file(path: Path) -> Iterator[tuple[int, Txn]]:
    """(offset after the entry, txn) for every complete entry; raises on a CRC mismatch."""
    data = path.read_bytes()
    if len(data) < _HEADER.size:
        return
    magic, _version, _dbid = _HEADER.unpack_from(data)
    if magic != TXNLOG_MAGIC:
        raise StorageError(
            f"Transaction log: {path} has invalid magic number {magic} != {TXNLOG_MAGIC}"
        )
    pos = _HEADER.size
    while pos + 12 <= len(data):
        (crc,) = _LONG.unpack_from(data, pos)
        (length,) = struct.unpack_from(">i", data, pos + 8)
        if length <= 0:
            return  # pre-allocated zeros: the end
        end = pos + 12 + length
        if end + 1 > len(data) or data[end] != EOR:
            log.warning("%s: the last transaction was partial", path)
            return
        body = data[pos + 12 : end]
        if adler32(body) != crc & 0xFFFFFFFF:
            raise StorageError(f"CRC check failed in {path} at offset {pos}")
        try:
            txn = decode_txn(body)
        except QuorumProtocolError as exc:
            raise StorageError(f"bad txn in {path} at offset {pos}: {exc}") from None
        pos = end + 1
        yield pos, txn


def encode_snapshot_file(snap: Snapshot) -> bytes:
    body = _HEADER.pack(SNAP_MAGIC, FORMAT_VERSION, 0) + encode_snapshot(snap)
    crc = adler32(body)
    body += pack_long(crc) + SEAL
    body += pack_long(0) + pack_int(DIGEST_VERSION) + pack_long(0)  # empty ZxidDigest
    crc = adler32(body)
    return body + pack_long(crc) + SEAL


def decode_snapshot_file(data: bytes, name: str = "snapshot") -> Snapshot:
    """Read a snapshot file of 3.8 (digest enabled or not) or of ours."""
    if len(data) < 10 or data[-5:] != SEAL:
        raise StorageError(f"Invalid snapshot {name}")
    r = Reader(data, QuorumProtocolError)
    try:
        magic, _version, _dbid = r.int32(), r.int32(), r.int64()
        if magic != SNAP_MAGIC:
            raise StorageError(f"mismatching magic headers {magic} !=  {SNAP_MAGIC}")
        parser = SnapshotParser()
        while True:
            snap = parser.parse_item(r)
            if snap is not None:
                break
        crc = adler32(data[: r.pos])
        if r.int64() & 0xFFFFFFFF != crc or read_ustring(r) != "/":
            raise StorageError(f"CRC corruption in {name}")
        if r.remaining:  # the ZxidDigest and its seal
            r.int64()
            if r.int32() < 2:
                read_ustring(r)
            else:
                r.int64()
            crc = adler32(data[: r.pos])
            if r.int64() & 0xFFFFFFFF != crc or read_ustring(r) != "/":
                raise StorageError(f"CRC corruption in {name}")
    except (NeedData, QuorumProtocolError) as exc:
        raise StorageError(f"problem reading snap file {name}: {exc}") from None
    return snap


def _zxid_files(directory: Path, prefix: str) -> list[tuple[int, Path]]:
    found = []
    if directory.is_dir():
        for p in directory.iterdir():
            m = _NAME.match(p.name)
            if m and m.group(1) == prefix:
                found.append((int(m.group(2), 16), p))
    return sorted(found)


# -- the store ----------------------------------------------------------------------------


class Storage:
    """One peer's persistent state.  Not thread-safe; blocking file I/O (small writes)."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        data_log_dir: str | os.PathLike[str] | None = None,
        *,
        config_text: str = "",
    ) -> None:
        self.snap_dir = Path(data_dir) / VERSION_DIR
        self.log_dir = Path(data_log_dir or data_dir) / VERSION_DIR
        self.config_text = config_text
        self._log: BinaryIO | None = None
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
        """``FileTxnSnapLog#restore``: newest valid snapshot, then the logged txns after it."""
        self.close()
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        tree: DataTree | None = None
        snap_zxid = -1
        for zxid, path in reversed(_zxid_files(self.snap_dir, "snapshot")):
            try:
                snap = decode_snapshot_file(path.read_bytes(), path.name)
            except (StorageError, OSError) as exc:
                log.warning("problem reading snap file %s: %s", path, exc)
                continue
            tree = DataTree.from_snapshot(snap, zxid)
            snap_zxid = zxid
            break
        logs = _zxid_files(self.log_dir, "log")
        if tree is None:
            if any(True for p in logs for _ in read_log_file(p[1])):
                raise StorageError(
                    "No snapshot found, but there are log entries. Something is broken!"
                )
            tree = DataTree(self.config_text)
            snap_zxid = 0
            self.take_snapshot(0, tree.to_snapshot())
        history: list[Txn] = []
        for start, path in logs:
            if history and start <= history[-1].header.zxid:
                log.warning("%s overlaps the log before it", path)
            for _, txn in read_log_file(path):
                if txn.header.zxid > tree.last_processed_zxid:
                    tree.apply(txn)
                    history.append(txn)
        tree.set_config(self.config_text)
        self.last_logged_zxid = tree.last_processed_zxid
        return LoadedState(tree, history, snap_zxid)

    def append(self, txns: Sequence[Txn]) -> None:
        """``FileTxnLog#append`` + ``#commit``: write, flush, fsync."""
        if not txns:
            return
        if self._log is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            path = self.log_dir / f"log.{zxid_hex(txns[0].header.zxid)}"
            self._log = path.open("ab")
            if self._log.tell() == 0:
                self._log.write(log_file_header())
            _fsync_dir(self.log_dir)
        self._log.write(b"".join(encode_log_entry(encode_txn(t)) for t in txns))
        self._log.flush()
        os.fsync(self._log.fileno())
        self.last_logged_zxid = max(self.last_logged_zxid, *(t.header.zxid for t in txns))

    def take_snapshot(self, zxid: int, snap: Snapshot) -> Path:
        """Write ``snapshot.<hex zxid>`` atomically, then start a new log file (rollLog)."""
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        path = self.snap_dir / f"snapshot.{zxid_hex(zxid)}"
        tmp = self.snap_dir / f"tmp.{path.name}"
        with tmp.open("wb") as f:
            f.write(encode_snapshot_file(snap))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.snap_dir)
        self.close()
        return path

    def truncate(self, zxid: int) -> bool:
        """``FileTxnLog#truncate``: drop every logged txn after ``zxid`` (and newer snapshots)."""
        self.close()
        for start, path in _zxid_files(self.log_dir, "log"):
            if start > zxid:
                path.unlink()
                continue
            keep = _HEADER.size
            for end, txn in read_log_file(path):
                if txn.header.zxid > zxid:
                    break
                keep = end
            with path.open("r+b") as f:
                f.truncate(keep)
                os.fsync(f.fileno())
        for snap_zxid, path in _zxid_files(self.snap_dir, "snapshot"):
            if snap_zxid > zxid:
                path.unlink()
        return True

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def files(self) -> Iterable[Path]:
        yield from sorted(self.snap_dir.glob("*"))
        if self.log_dir != self.snap_dir:
            yield from sorted(self.log_dir.glob("*"))
