"""Issue 7, scenario 5: a zkquorum peer joins a Java ensemble that has data.

Java 1 and 2 (a quorum of three) start alone and take writes from a real client (kazoo):
persistent, ephemeral and sequential nodes, setData, delete, multi.  zkquorum 3 then
joins late and is synced by SNAP; writes made while it follows reach it as PROPOSAL and
COMMIT (its ``srvr`` Zxid equals the leader's after every one); killed (-9) and
restarted after more writes, it is synced by DIFF.  Each time its database -- read back
from the snapshot and txn log it wrote, in ZooKeeper's formats -- holds exactly the nodes,
data and stats that the Java servers serve.

Needs Debian's ``zookeeper`` package: skipped without it locally, failed in CI.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl

from tests.interop.mixed import (
    FAST,
    NEW_ELECTION,
    Mixed,
    MixedFactory,
    mixed_fixture,  # noqa: F401  (the ``mixed`` fixture)
    stable_seconds,
)
from tests.interop.zkserver import four_letter_word, wait_for
from zkquorum.runtime.files import load_config
from zkquorum.runtime.storage import Storage

pytestmark = pytest.mark.interop

STAT_FIELDS = (
    ("czxid", "czxid"),
    ("mzxid", "mzxid"),
    ("ctime", "ctime"),
    ("mtime", "mtime"),
    ("version", "version"),
    ("cversion", "cversion"),
    ("aversion", "aversion"),
    ("ephemeral_owner", "ephemeralOwner"),
    ("pzxid", "pzxid"),
)


def java_tree(zk: KazooClient) -> dict[str, tuple[bytes, dict[str, int], set[str]]]:
    """Every node the Java servers serve: data, stat, children."""
    out: dict[str, tuple[bytes, dict[str, int], set[str]]] = {}
    todo = ["/"]
    while todo:
        path = todo.pop()
        data, stat = zk.get(path)
        children = set(zk.get_children(path))
        fields = {ours: getattr(stat, theirs) for ours, theirs in STAT_FIELDS}
        # A server reports cversion as 2 x (children created) - (children now)
        # (DataNode#copyStat); the database keeps the count of creates.
        fields["cversion"] = (stat.cversion + stat.numChildren) // 2
        out[path] = (data, fields, children)
        todo.extend((path.rstrip("/") + "/" + c) for c in children)
    return out


def zkquorum_tree(
    m: Mixed, sid: int, scratch: Path, java_config_mtime: int
) -> dict[str, tuple[bytes, dict[str, int], set[str]]]:
    """zkquorum ``sid``'s database as its files hold it (a copy is read, not the live dir)."""
    copy = scratch / f"zk{sid}-data-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(m.servers[sid].data_dir, copy)
    config = load_config(m.servers[sid].cfg_path)
    assert config.verifier is not None
    tree = Storage(copy, config_text=config.verifier.to_zk_string()).load_tree().tree
    out: dict[str, tuple[bytes, dict[str, int], set[str]]] = {}
    for path in tree.walk():
        node = tree.get(path)
        assert node is not None
        stat = {ours: getattr(node.stat, ours) for ours, _ in STAT_FIELDS}
        if path == "/zookeeper/config":
            # Every server stamps its own start time here (ZKDatabase#initConfigInZKDatabase).
            stat["mtime"] = java_config_mtime
        out[path] = (node.data or b"", stat, set(node.children))
    return out


def assert_same_tree(m: Mixed, zk: KazooClient, sid: int, scratch: Path) -> None:
    theirs = java_tree(zk)
    ours = zkquorum_tree(m, sid, scratch, theirs["/zookeeper/config"][1]["mtime"])
    assert sorted(ours) == sorted(theirs), "the node paths differ"
    diffs = [
        f"{path}: zkquorum {ours[path]!r} != Java {theirs[path]!r}"
        for path in sorted(theirs)
        if ours[path] != theirs[path]
    ]
    assert not diffs, "\n".join(diffs)


def write_history(zk: KazooClient, tag: str) -> list[str]:
    """Every kind of write; returns the paths that must exist afterwards."""
    base = f"/{tag}"
    zk.create(base, b"root of " + tag.encode())
    zk.create(f"{base}/persistent", b"p")
    zk.create(f"{base}/ephemeral", b"e", ephemeral=True)
    seq = [zk.create(f"{base}/seq-", str(i).encode(), sequence=True) for i in range(3)]
    zk.set(f"{base}/persistent", b"p2")
    zk.set(f"{base}/persistent", b"p3")
    zk.delete(seq[1])
    t = zk.transaction()
    t.create(f"{base}/multi-a", b"ma")
    t.create(f"{base}/multi-b", b"mb")
    t.set_data(f"{base}/persistent", b"p4")
    t.delete(seq[0])
    results = t.commit()
    assert all(not isinstance(r, Exception) for r in results), results
    return [f"{base}/persistent", f"{base}/ephemeral", seq[2], f"{base}/multi-a"]


def test_late_zkquorum_follower_snap_then_diff(mixed: MixedFactory, tmp_path: Path) -> None:
    m = mixed(py_sids=[3], java_sids=[1, 2], start=False)
    m.start([1, 2])
    first = m.settle(leader_in=[1, 2], sids=[1, 2])
    leader = first.leader
    all_sids = [1, 2, 3]

    with m.client([1, 2]) as zk:
        write_history(zk, "before-join")
        before = m.wait_zxids_equal([1, 2])

        # -- joins late: SNAP -------------------------------------------------------
        m.start([3])
        joined = m.settle(leader_in=[leader])
        assert joined.epoch == first.epoch
        assert m.sync_modes(leader, 3) == ["SNAP"], m.sync_modes(leader, 3)
        assert m.wait_zxids_equal(all_sids) == before

        # -- writes while it follows: PROPOSAL + COMMIT, its zxid always the leader's --
        for i in range(3):
            zk.create(f"/following-{i}", b"f", ephemeral=i == 1)
            assert m.wait_zxids_equal(all_sids) == m.zxid(leader)
        write_history(zk, "while-following")
        assert m.wait_zxids_equal(all_sids) == m.zxid(leader)
        assert_same_tree(m, zk, 3, tmp_path)

        # -- crash, more writes, restart: DIFF ----------------------------------------
        m.kill(3)
        write_history(zk, "while-down")
        zk.delete("/following-0")
        down_zxid = m.wait_zxids_equal([1, 2])
        m.start([3])
        rejoined = m.settle(leader_in=[leader])
        assert rejoined.epoch == first.epoch
        assert m.sync_modes(leader, 3) == ["SNAP", "DIFF"], m.sync_modes(leader, 3)
        assert m.wait_zxids_equal(all_sids) == down_zxid

        write_history(zk, "after-rejoin")
        assert m.wait_zxids_equal(all_sids) == m.zxid(leader)
        assert_same_tree(m, zk, 3, tmp_path)
        m.assert_stable(rejoined, stable_seconds())

    # The session's close removed its ephemerals everywhere.
    m.wait_zxids_equal(all_sids)
    with m.client([1, 2]) as zk:
        assert zk.exists("/before-join/ephemeral") is None
        m.wait_zxids_equal(all_sids)
        assert_same_tree(m, zk, 3, tmp_path)
    m.assert_java_config_unchanged()
    print("\n".join(m.timings()))


def test_late_java_follower_snap_from_a_zkquorum_leader(
    mixed: MixedFactory, tmp_path: Path
) -> None:
    """The mirror image: a zkquorum leader writes the SNAP stream (straight from its live
    tree's nodes) and a Java follower loads it: the same nodes and stats, served by Java,
    and the TxnDigests of later writes match on the Java side."""
    settings = {**FAST, "snapshotSizeFactor": "-1"}  # no sync from the log files: SNAP
    m = mixed(py_sids=[3], java_sids=[1, 2], start=False, settings=settings)
    m.start([1])
    wait_for(lambda: NEW_ELECTION in m.log(1), timeout=30, what="Java server 1's election")
    m.start([3])
    first = m.settle(leader_in=[3], sids=[1, 3])
    all_sids = [1, 2, 3]
    with m.client([3]) as zk:
        write_history(zk, "before-join")
        acl = [make_digest_acl("user", "pw", all=True), make_acl("world", "anyone", read=True)]
        zk.create("/acl", b"a", acl=acl)
        for i in range(200):
            zk.create(f"/bulk-{i}", bytes(i))
        before = m.wait_zxids_equal([1, 3])

        m.start([2])
        joined = m.settle(leader_in=[3])
        assert joined.epoch == first.epoch
        assert m.sync_modes(3, 2) == ["SNAP"], m.sync_modes(3, 2)
        assert m.wait_zxids_equal(all_sids) == before

        write_history(zk, "after-join")
        assert m.wait_zxids_equal(all_sids) == m.zxid(3)
    with m.client([2]) as java:
        assert_same_tree(m, java, 3, tmp_path)
        java.add_auth("digest", "user:pw")  # without ADMIN, 3.8 shows digests as 'x'
        assert java.get_acls("/acl")[0] == acl
    mntr = four_letter_word(m.servers[2].host, m.servers[2].client_port, "mntr")
    assert "zk_digest_mismatches_count\t0" in mntr, mntr
