"""ZooKeeper 3.8's own tools read the files zkquorum writes (``SnapshotFormatter``,
``TxnLogToolkit``).  The other direction (we read a Java server's dataDir) is in
``test_quorum_port_zk.py``, which has a running Java ensemble."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.interop.zk import NOP_JAR, require_zookeeper
from tests.runtime.test_storage import vector_txns
from tests.runtime.test_storage_txnlog import asynctest, creates
from zkquorum.runtime.storage import Storage

pytestmark = pytest.mark.interop


def _java(cls: str, *args: str) -> str:
    install = require_zookeeper()
    cp = [str(install.jar), *(str(NOP_JAR) for _ in [0] if NOP_JAR.is_file())]
    proc = subprocess.run(
        [install.java, "-cp", ":".join(cp), cls, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_zookeeper_tools_read_our_files(tmp_path: Path) -> None:
    txns = vector_txns()
    s = Storage(tmp_path, config_text="server.1=127.0.0.1:2888:3888:participant\nversion=0")
    tree = s.load().tree
    s.append(txns[:12])
    for t in txns[:12]:
        tree.apply(t)
    snap = s.take_snapshot(tree.last_processed_zxid, tree.to_snapshot())
    s.append(txns[12:])
    s.close()
    v2 = tmp_path / "version-2"

    out = _java("org.apache.zookeeper.server.SnapshotFormatter", str(snap))
    # 3.8 keeps the root under both "" and "/", so its count is one more than ours.
    assert f"ZNode Details (count={tree.node_count + 1})" in out
    assert f"Last zxid: 0x{tree.last_processed_zxid:x}" in out
    for path in ("/vec/p1", "/vec/m1", "/zookeeper/config"):
        assert f"\n{path}\n" in out
    assert "Session Details (sid, timeout, ephemeralCount)" in out

    out = _java("org.apache.zookeeper.server.persistence.TxnLogToolkit", str(v2 / "log.10000000d"))
    assert "ZooKeeper Transactional Log File with dbid 0 txnlog format version 2" in out
    lines = [line for line in out.splitlines() if " zxid 0x" in line]
    assert [int(line.split(" zxid ")[1].split()[0], 16) for line in lines] == [
        t.header.zxid for t in txns[12:]
    ]
    assert "closeSession" in out and "CRC" not in out


@asynctest
async def test_zookeeper_tools_read_group_committed_logs_and_streamed_snapshots(
    tmp_path: Path,
) -> None:
    """What the new paths write: a pre-allocated log from the group-committed TxnLog,
    rolled for a snapshot, and a snapshot streamed from a live tree by the worker thread."""
    txns = vector_txns()
    s = Storage(tmp_path, config_text="server.1=127.0.0.1:2888:3888:participant\nversion=0")
    tree = s.load().tree
    synced: list[int] = []
    tl = s.txn_log(on_synced=synced.append, on_error=pytest.fail)
    tl.start()
    tl.append(txns[:20])
    for t in txns[:20]:
        tree.apply(t)
    tl.roll()
    snap = await s.take_snapshot(tree)
    assert snap is not None
    tl.append(txns[20:])
    await tl.close()
    v2 = tmp_path / "version-2"
    assert (v2 / "log.100000001").stat().st_size == 64 * 1024 * 1024  # pre-allocated
    out = _java("org.apache.zookeeper.server.SnapshotFormatter", str(snap))
    assert f"ZNode Details (count={tree.node_count + 1})" in out
    assert f"Last zxid: 0x{tree.last_processed_zxid:x}" in out
    for path in ("/vec/p1", "/zookeeper/config"):
        assert f"\n{path}\n" in out
    for name, expect in (("log.100000001", txns[:20]), ("log.100000015", txns[20:])):
        out = _java("org.apache.zookeeper.server.persistence.TxnLogToolkit", str(v2 / name))
        lines = [line for line in out.splitlines() if " zxid 0x" in line]
        got = [int(line.split(" zxid ")[1].split()[0], 16) for line in lines]
        assert got == [t.header.zxid for t in expect]
        assert "CRC" not in out


@asynctest
async def test_zookeeper_loads_our_fuzzy_snapshot_and_checks_its_digest(tmp_path: Path) -> None:
    """A Java 3.8 server started on a dataDir zkquorum wrote (a snapshot taken while txns
    were applied, then more txns in the log) reads the snapshot's digest and, replaying
    the log to its zxid, finds its own tree's digest equal: no "Digests are not matching"."""
    from tests.interop.zkserver import make_ensemble, wait_for

    install = require_zookeeper()
    ens = make_ensemble(install, tmp_path / "java", [1])
    server = ens.servers[1]
    data = server.data_dir
    s = Storage(data)
    tree = s.load().tree
    synced: list[int] = []
    tl = s.txn_log(on_synced=synced.append, on_error=pytest.fail)
    tl.start()
    first = creates(1, 3000)
    for t in first:
        tree.apply(t)
    tl.append(first)
    rest = creates(3001, 3200)
    during = iter(rest)

    def apply_some(_written: int) -> None:
        for t in (next(during, None) for _ in range(20)):
            if t is not None:
                tree.apply(t)
                tl.append([t])

    s.snapshot_progress = apply_some
    snap = await s.take_snapshot(tree)
    assert snap is not None
    for t in during:
        tree.apply(t)
        tl.append([t])
    await tl.close()
    s.close()
    ens.write_configs()
    try:
        ens.start()
        wait_for(lambda: server.mode() == "standalone", timeout=60, what="java serving")
    finally:
        ens.stop()
    log = server.log()
    assert "The digest in the snapshot has digest version of 2" in log, log[-3000:]
    assert "Digests are not matching" not in log
    # And the tree it replayed to the end has our tree's digest.
    assert f"highest zxid is 0x{tree.last_processed_zxid:x}, digest is {tree.digest}" in log


def test_we_load_a_java_snapshot_and_find_its_digest(tmp_path: Path) -> None:
    """The other way round: a Java 3.8 server writes fuzzy snapshots (snapCount 100) of a
    tree with ephemerals, ACLs, non-ASCII names (3.8 refuses astral ones); zkquorum's
    one-pass load finds the digest the snapshot carries at its zxid and replays the log;
    the snapshot it then writes of that tree is the one Java loads next, and the digest
    Java reports for it is ours."""
    import re

    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl

    from tests.interop.zkserver import make_ensemble, wait_for
    from zkquorum.runtime.snapshots import (
        ZxidDigest,
        capture_tree,
        load_snapshot_file,
        write_snapshot,
    )
    from zkquorum.runtime.txnlog import zxid_files

    install = require_zookeeper()
    ens = make_ensemble(install, tmp_path / "java", [1], settings={"snapCount": "100"})
    server = ens.servers[1]
    hosts = f"127.0.0.1:{server.client_port}"
    ens.start()
    try:
        wait_for(lambda: server.mode() == "standalone", timeout=60, what="java serving")
        zk, owner = KazooClient(hosts=hosts), KazooClient(hosts=hosts)
        zk.start(timeout=20)
        owner.start(timeout=20)
        try:
            zk.create("/j", b"root")
            zk.create("/j/acl", b"a", acl=[make_digest_acl("u", "p", all=True)])
            zk.create("/j/é☃", "✓".encode())
            zk.create("/j/box/in", b"", makepath=True)
            live: list[str] = []
            for i in range(400):
                live.append(zk.create(f"/j/n{i}", bytes(i % 50)))
                if i % 7 == 0:
                    owner.create(f"/j/e{i}", b"eph", ephemeral=True)
                if i % 11 == 0:
                    zk.set(live[len(live) // 2], b"changed")
                if i % 13 == 12:
                    zk.delete(live.pop(0))
            zk.create("/j/seq-", b"s", sequence=True)
        finally:
            zk.stop()
            zk.close()
        ens.stop()  # the owner's session is still open: its ephemerals stay
        owner.stop()
        owner.close()
        snaps = zxid_files(server.data_dir / "version-2", "snapshot")
        assert len(snaps) >= 2, snaps  # snapshots taken while txns went on
        _, digest = load_snapshot_file(snaps[-1][1].read_bytes(), snaps[-1][0])
        assert digest is not None  # 3.8 wrote one: the load compares it
        s = Storage(server.data_dir)
        loaded = s.load_tree()
        assert s.digest_mismatches == 0
        tree = loaded.tree
        assert tree.get("/j/é☃") is not None
        assert tree.ephemerals and all(
            p.startswith("/j/e") for ps in tree.ephemerals.values() for p in ps
        )
        # And back: our snapshot of the loaded tree (its stats written as they were read)
        # is the one Java loads next, with our digest.
        zxid = tree.last_processed_zxid
        ours = write_snapshot(
            s.snap_dir,
            capture_tree(tree.nodes, tree.sessions, zxid),
            digest=lambda: ZxidDigest(zxid, 2, tree.digest),
        )
        packed = sum(isinstance(n._stat, bytes) for n in tree.nodes.values())
        assert packed > len(tree.nodes) // 2  # all but those the replayed txns changed
        before = len(server.log())
        ens.start()
        wait_for(lambda: server.mode() == "standalone", timeout=60, what="java again")
    finally:
        ens.stop()
    log = server.log()[before:]
    assert f"Reading snapshot {ours.path}" in log, log[-3000:]
    assert "Digests are not matching" not in log
    said = re.findall(r"highest zxid is 0x([0-9a-f]+), digest is (-?\d+)", log)
    assert said, log[-3000:]
    assert (int(said[-1][0], 16), int(said[-1][1])) == (zxid, tree.digest)
