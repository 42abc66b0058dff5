"""Epoch files, txn log and snapshots in ZooKeeper's formats; 3.8's start-up rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.vectors import VECTORS
from zkquorum.core.datatree import DataTree
from zkquorum.runtime.storage import (
    Storage,
    StorageError,
    decode_snapshot_file,
    encode_snapshot_file,
    read_long,
    write_long_atomically,
)
from zkquorum.runtime.txnlog import iter_log_entries
from zkquorum.wire.quorum import PacketType, QuorumPacket, QuorumStreamDecoder
from zkquorum.wire.txn import Txn, decode_txn

SNAP_SYNC = VECTORS / "snap-sync.vectors.json"


def vector_txns() -> list[Txn]:
    """The 32 txns a 3.8.0 leader proposed in the snap-sync capture."""
    d = json.loads(SNAP_SYNC.read_text())
    conn = next(
        c["conn"] for c in d["connections"] if c["port_kind"] == "quorum" and c["learner_sid"] == 2
    )
    txns = []
    for m in d["messages"]:
        if m["conn"] == conn and m["direction"] == "leader->learner" and m["kind"] == "packet":
            dec = QuorumStreamDecoder()
            dec.receive_data(bytes.fromhex(m["hex"]))
            p = dec.next_message()
            if isinstance(p, QuorumPacket) and p.type == PacketType.PROPOSAL:
                txns.append(decode_txn(p.data or b""))
    assert len(txns) == 32
    return txns


def test_epoch_file_format_and_atomic_write(tmp_path: Path) -> None:
    path = tmp_path / "currentEpoch"
    write_long_atomically(path, 17)
    assert path.read_bytes() == b"17"  # decimal, no newline
    assert not (tmp_path / "currentEpoch.tmp").exists()
    assert read_long(path) == 17
    path.write_bytes(b"42\ngarbage")
    assert read_long(path) == 42  # the first line only
    path.write_bytes(b"x1")
    with pytest.raises(StorageError, match=rf"^Found x1 in {path}$"):
        read_long(path)
    path.write_bytes(b"")
    with pytest.raises(StorageError, match=r"^Found null in "):
        read_long(path)
    path.write_bytes(b"99999999999999999999")
    with pytest.raises(StorageError, match="Found 99999999999999999999"):
        read_long(path)


def test_fresh_dir_gets_snapshot_0_and_epochs(tmp_path: Path) -> None:
    st = Storage(tmp_path, config_text="server.1=a:1:2\nversion=0").load()
    v2 = tmp_path / "version-2"
    assert sorted(p.name for p in v2.iterdir()) == ["acceptedEpoch", "currentEpoch", "snapshot.0"]
    assert (v2 / "acceptedEpoch").read_bytes() == b"0"
    assert (st.accepted_epoch, st.current_epoch, st.tree.last_processed_zxid) == (0, 0, 0)


def test_last_zxid_survives_restart_through_log_and_snapshot(tmp_path: Path) -> None:
    txns = vector_txns()
    s = Storage(tmp_path)
    tree = s.load().tree
    s.append(txns[:10])
    for t in txns[:10]:
        tree.apply(t)
    s.take_snapshot(tree.last_processed_zxid, tree.to_snapshot())
    s.append(txns[10:20])
    s.append(txns[20:])
    s.write_accepted_epoch(1)
    s.write_current_epoch(1)
    s.close()
    st = Storage(tmp_path).load()
    assert st.snapshot_zxid == 0x10000000A
    assert st.tree.last_processed_zxid == txns[-1].header.zxid == 0x100000020
    assert [t.header.zxid for t in st.history] == [t.header.zxid for t in txns[10:]]
    # The same tree as applying everything in memory.
    ref = DataTree()
    for t in txns:
        ref.apply(t)
    assert set(ref.nodes) == set(st.tree.nodes)
    names = sorted(p.name for p in (tmp_path / "version-2").iterdir())
    assert names == [
        "acceptedEpoch",
        "currentEpoch",
        "log.100000001",
        "log.10000000b",
        "snapshot.0",
        "snapshot.10000000a",
    ]


def test_truncate_drops_later_txns_and_snapshots(tmp_path: Path) -> None:
    txns = vector_txns()
    s = Storage(tmp_path)
    tree = s.load().tree
    s.append(txns[:20])
    for t in txns[:20]:
        tree.apply(t)
    s.take_snapshot(tree.last_processed_zxid, tree.to_snapshot())
    s.append(txns[20:])
    assert s.truncate(0x100000005)
    st = s.load_tree()
    assert st.tree.last_processed_zxid == 0x100000005
    assert not (tmp_path / "version-2" / "snapshot.100000014").exists()
    s.append(txns[5:7])  # logging goes on after the truncation point
    assert Storage(tmp_path).load_tree().tree.last_processed_zxid == 0x100000007


def test_torn_tail_is_ignored_but_crc_mismatch_is_fatal(tmp_path: Path) -> None:
    txns = vector_txns()
    s = Storage(tmp_path)
    s.load()
    s.append(txns[:3])
    s.close()
    log = tmp_path / "version-2" / "log.100000001"
    whole = log.read_bytes()
    assert len(whole) == 64 * 1024 * 1024  # pre-allocated, zero-filled
    end = [e.end for e in iter_log_entries(log)][-1]
    assert not any(whole[end:])
    log.write_bytes(whole[: end - 7])  # a crash in the middle of the last entry
    assert Storage(tmp_path).load_tree().tree.last_processed_zxid == 0x100000002
    bad = bytearray(whole)
    bad[40] ^= 0xFF  # inside the first entry's txn bytes
    log.write_bytes(bytes(bad))
    with pytest.raises(StorageError, match="CRC check failed"):
        Storage(tmp_path).load_tree()


def test_log_without_snapshot_is_fatal(tmp_path: Path) -> None:
    s = Storage(tmp_path)
    s.load()
    s.append(vector_txns()[:2])
    s.close()
    (tmp_path / "version-2" / "snapshot.0").unlink()
    with pytest.raises(
        StorageError,
        match=r"^No snapshot found, but there are log entries\. "
        r"Something is broken!$",
    ):
        Storage(tmp_path).load()


def test_torn_snapshot_falls_back_to_an_older_one(tmp_path: Path) -> None:
    s = Storage(tmp_path)
    s.load()
    tree = DataTree()
    for t in vector_txns()[:4]:
        tree.apply(t)
    path = s.take_snapshot(0x100000004, tree.to_snapshot())
    path.write_bytes(path.read_bytes()[:-9])
    s.append(vector_txns()[:4])
    assert Storage(tmp_path).load_tree().snapshot_zxid == 0


def test_snapshot_file_round_trip() -> None:
    tree = DataTree("cfg")
    for t in vector_txns():
        tree.apply(t)
    raw = encode_snapshot_file(tree.to_snapshot())
    assert raw[:4] == b"ZKSN" and raw[-5:] == b"\x00\x00\x00\x01/"
    back = DataTree.from_snapshot(decode_snapshot_file(raw), 7)
    assert set(back.nodes) == set(tree.nodes)
    assert back.sessions == tree.sessions
    with pytest.raises(StorageError, match="CRC corruption"):
        decode_snapshot_file(raw[:30] + bytes([raw[30] ^ 1]) + raw[31:])


def _epochs(
    tmp_path: Path, accepted: bytes | None, current: bytes | None, zxid_epoch: int
) -> Storage:
    s = Storage(tmp_path)
    s.load()
    if zxid_epoch:
        s.append([t for t in vector_txns()[:1]])  # zxid 0x100000001: epoch 1
    s.close()
    v2 = tmp_path / "version-2"
    for name, value in (("acceptedEpoch", accepted), ("currentEpoch", current)):
        if value is None:
            (v2 / name).unlink()
        else:
            (v2 / name).write_bytes(value)
    return Storage(tmp_path)


def test_missing_epochs_come_from_the_last_zxid(tmp_path: Path) -> None:
    st = _epochs(tmp_path, None, None, 1).load()
    assert (st.accepted_epoch, st.current_epoch) == (1, 1)
    assert (tmp_path / "version-2" / "currentEpoch").read_bytes() == b"1"


def test_current_epoch_older_than_last_zxid(tmp_path: Path) -> None:
    s = _epochs(tmp_path, b"0", b"0", 1)
    with pytest.raises(
        StorageError,
        match=r"^The current epoch, 0, is older than the last "
        r"zxid, 4294967297$",
    ):
        s.load()
    (tmp_path / "version-2" / "currentEpoch.tmp").write_bytes(b"1")
    (tmp_path / "version-2" / "acceptedEpoch").write_bytes(b"1")
    st = Storage(tmp_path).load()  # currentEpoch.tmp rescues it, as in 3.8
    assert st.current_epoch == 1
    assert (tmp_path / "version-2" / "currentEpoch").read_bytes() == b"1"


def test_accepted_epoch_less_than_current(tmp_path: Path) -> None:
    s = _epochs(tmp_path, b"10", b"26", 0)
    with pytest.raises(
        StorageError,
        match=r"^The accepted epoch, a is less than the current "
        r"epoch, 1a$",
    ):
        s.load()


def test_garbage_epoch_file(tmp_path: Path) -> None:
    s = _epochs(tmp_path, b"1", b"one", 0)
    with pytest.raises(StorageError, match=r"^Found one in .*version-2/currentEpoch$"):
        s.load()
