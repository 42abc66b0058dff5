"""Loading a snapshot file in one pass (``DataTree.deserialize``, ``load_snapshot_file``)
makes the very tree the parser and ``DataTree.from_snapshot`` make: nodes, data, ACLs,
stats, children, ephemerals, sessions, the digest, parents before children; it rejects
what the parser rejects; nodes keep their stats packed until read, and writing a loaded
tree leaves them packed and writes the same bytes."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.runtime.test_storage_txnlog import create, delete, set_data
from zkquorum.core.datatree import (
    CONTAINER_EPHEMERAL_OWNER,
    DataTree,
    Node,
    ttl_owner,
)
from zkquorum.core.digest import node_digest
from zkquorum.core.final import client_stat
from zkquorum.runtime.snapshots import (
    TreeCapture,
    ZxidDigest,
    decode_snapshot_file_and_digest,
    encode_snapshot_file,
    load_snapshot_file,
    write_snapshot,
)
from zkquorum.runtime.storage import StorageError
from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.jute import ACL, Id, StatPersisted, encode_acl_list, encode_stat_persisted
from zkquorum.wire.snapshot import (
    TreeNode,
    build_snapshot,
    decode_snapshot,
    encode_snapshot,
)

OPEN = (ACL(31, Id("world", "anyone")),)
READ = (ACL(1, Id("world", "anyone")),)
DIGEST_ACL = (ACL(31, Id("digest", "u:x")), ACL(1, Id("ip", "10.0.0.1")))

names = st.text(alphabet=st.sampled_from("abz09-_é☃\U0001f600"), min_size=1, max_size=6)
owners = st.sampled_from([0, 0, 0, 0x1234, 0x1235, CONTAINER_EPHEMERAL_OWNER, ttl_owner(500)])
longs = st.integers(-(2**63), 2**63 - 1)
ints = st.integers(-(2**31), 2**31 - 1)
stats = st.builds(StatPersisted, longs, longs, longs, longs, ints, ints, ints, owners, longs)
nodes = st.builds(
    TreeNode,
    data=st.one_of(st.none(), st.binary(max_size=40)),
    acl=st.sampled_from([None, OPEN, READ, DIGEST_ACL]),
    stat=stats,
)


@st.composite
def trees(draw: st.DrawFn) -> dict[str, TreeNode]:
    tree = {"/": draw(nodes)}
    paths = ["/"]
    if draw(st.booleans()):  # the digest leaves out what is under /zookeeper/
        for path in ("/zookeeper", "/zookeeper/quota", "/zookeeper/config"):
            tree[path] = draw(nodes)
            paths.append(path)
    for _ in range(draw(st.integers(0, 30))):
        parent = draw(st.sampled_from(paths))
        path = (parent.rstrip("/") or "") + "/" + draw(names)
        if path not in tree:
            tree[path] = draw(nodes)
            paths.append(path)
    return tree


def same(a: DataTree, b: DataTree) -> None:
    assert list(a.nodes) == list(b.nodes)  # the same order: parents first
    for path, node in a.nodes.items():
        other = b.nodes[path]
        assert (node.data, node.acl, node.stat) == (other.data, other.acl, other.stat), path
        assert node.children == other.children, path
    assert a.sessions == b.sessions
    assert a.ephemerals == b.ephemerals
    assert a.last_processed_zxid == b.last_processed_zxid
    assert a.digest == b.digest


def parsed(raw: bytes, zxid: int = 9) -> DataTree:
    """The former way: the parser's records, then ``from_snapshot``."""
    return DataTree.from_snapshot(decode_snapshot(raw), zxid)


@settings(max_examples=200)
@given(trees(), st.dictionaries(st.integers(1, 2**63 - 1), ints, max_size=3))
def test_one_pass_load_is_the_parsed_tree(tree: dict[str, TreeNode], sess: dict[int, int]) -> None:
    raw = encode_snapshot(build_snapshot(tree, sess))
    loaded, end = DataTree.deserialize(raw + b"tail", 0, 9)
    assert end == len(raw)
    same(loaded, parsed(raw))
    expect = DataTree.from_snapshot(decode_snapshot(raw), 9)
    expect.recompute_digest()
    assert loaded.digest == expect.digest


@settings(max_examples=50)
@given(trees())
def test_a_file_loads_as_it_decodes(tree: dict[str, TreeNode]) -> None:
    raw = encode_snapshot_file(build_snapshot(tree, {5: 3000}))
    loaded, digest = load_snapshot_file(raw, 9)
    snap, digest2 = decode_snapshot_file_and_digest(raw)
    same(loaded, DataTree.from_snapshot(snap, 9))
    assert digest == digest2


def test_packed_stats_until_read() -> None:
    stat = StatPersisted(1 << 40, 2, 3, 4, 5, 6, 7, 0x1234, 1 << 41)
    tree = {"/": TreeNode(b"", None, StatPersisted()), "/e": TreeNode(b"x", OPEN, stat)}
    loaded, _ = DataTree.deserialize(encode_snapshot(build_snapshot(tree)), 0, 1)
    node = loaded.nodes["/e"]
    assert node._stat == encode_stat_persisted(stat) == node.stat_bytes()
    assert node.ephemeral_owner == 0x1234 and isinstance(node._stat, bytes)
    assert node.peek_stat() == stat and isinstance(node._stat, bytes)
    assert node.digest("/e") == node_digest("/e", b"x", stat)
    assert node == Node(b"x", OPEN, stat)
    assert repr(node) == repr(Node(b"x", OPEN, stat))
    assert client_stat(node).czxid == 1 << 40 and isinstance(node._stat, bytes)  # a read
    assert node.stat_fields() == Node(b"x", OPEN, stat).stat_fields()
    assert node.stat == stat and node._stat is node.stat  # unpacked once, then kept
    assert loaded.ephemerals == {0x1234: {"/e"}}


def test_writing_a_loaded_tree_keeps_stats_packed_and_the_bytes_the_same(
    tmp_path: Path,
) -> None:
    tree = {
        "/": TreeNode(b"", None, StatPersisted(cversion=2, pzxid=1 << 33)),
        "/a": TreeNode(None, DIGEST_ACL, StatPersisted(1, 2, 3, 4, -1, 5, 6, 0, 7)),
        "/a/é": TreeNode(b"v", OPEN, StatPersisted(8, 9, 10, 11, 1, 0, 0, 0x77, 12)),
    }
    loaded, _ = DataTree.deserialize(encode_snapshot(build_snapshot(tree, {0x77: 4000})), 0, 12)
    eager = DataTree.from_snapshot(
        decode_snapshot(encode_snapshot(build_snapshot(tree, {0x77: 4000}))), 12
    )
    a = write_snapshot(tmp_path / "a", TreeCapture(12, loaded.nodes, loaded.sessions))
    b = write_snapshot(tmp_path / "b", TreeCapture(12, eager.nodes, loaded.sessions))
    assert a.path.read_bytes() == b.path.read_bytes()
    assert all(isinstance(n._stat, bytes) for n in loaded.nodes.values())
    assert loaded.to_snapshot() == eager.to_snapshot()
    assert all(isinstance(n._stat, bytes) for n in loaded.nodes.values())


def test_txns_on_a_loaded_tree_keep_its_digest() -> None:
    """Applied txns change a loaded tree's digest as they change a parsed one's (their
    nodes' packed stats are unhashed as packed, hashed again unpacked)."""
    tree = {
        "/": TreeNode(b"", None, StatPersisted(cversion=2, pzxid=2)),
        "/a": TreeNode(b"1", OPEN, StatPersisted(czxid=1, mzxid=1, pzxid=2, cversion=1)),
        "/a/b": TreeNode(b"2", OPEN, StatPersisted(czxid=2, mzxid=2, pzxid=2)),
        "/c": TreeNode(b"3", OPEN, StatPersisted(czxid=2, mzxid=2, pzxid=2)),
    }
    raw = encode_snapshot(build_snapshot(tree))
    loaded, _ = DataTree.deserialize(raw, 0, 2)
    other = parsed(raw, 2)
    txns = [
        create(3, "/a/new", b"n", -1),
        set_data(4, "/c", b"changed", 1),
        delete(5, "/a/b"),
        create(6, "/c/d", b"d", -1),
    ]
    for txn in txns:
        assert loaded.apply(txn) == other.apply(txn)
        assert loaded.digest == other.digest
    same(loaded, other)
    before = loaded.digest
    loaded.recompute_digest()
    assert loaded.digest == before


# -- what both readers reject ------------------------------------------------------------


def _node(path: bytes | None, data: bytes | None = b"", acl_id: int = -1) -> bytes:
    out = struct.pack(">i", -1) if path is None else struct.pack(">i", len(path)) + path
    out += struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data
    return out + struct.pack(">qqqqqiiiqq", acl_id, 1, 2, 3, 4, 5, 6, 7, 0, 8)


END = struct.pack(">i", 1) + b"/"
HEAD = struct.pack(">ii", 0, 0)
ROOT = _node(b"")

BAD_STREAMS = {
    "child before parent": HEAD + ROOT + _node(b"/a/b") + END,
    "relative path": HEAD + ROOT + _node(b"a") + END,
    "null path": HEAD + ROOT + _node(None) + END,
    "parent //": HEAD + ROOT + _node(b"//x") + END,
    "bad utf-8": HEAD + ROOT + _node(b"/\xff") + END,
    "negative sessions": struct.pack(">i", -1) + struct.pack(">i", 0) + ROOT + END,
    "negative acl cache": struct.pack(">ii", 0, -2) + ROOT + END,
    "null acl list": struct.pack(">iiqi", 0, 1, 1, -1) + ROOT + END,
    "data length -2": HEAD + ROOT + _node(b"/a")[:6] + struct.pack(">i", -2) + END,
    "huge path length": HEAD + ROOT + struct.pack(">i", 1 << 30) + END,
    "no end marker": HEAD + ROOT + _node(b"/a"),
    "cut in a node": HEAD + ROOT + _node(b"/a", b"data")[:-9],
    "cut in the head": struct.pack(">iiq", 0, 1, 1),
}


@pytest.mark.parametrize("case", sorted(BAD_STREAMS))
def test_both_readers_reject(case: str) -> None:
    raw = BAD_STREAMS[case]
    with pytest.raises(QuorumProtocolError):
        decode_snapshot(raw)
    with pytest.raises(QuorumProtocolError):
        DataTree.deserialize(raw, 0, 1)


def test_odd_but_accepted_streams_load_alike() -> None:
    """What the parser takes, deserialize takes the same way: a path twice (the last
    stays, children linked before are kept by the first node only), a trailing slash, no
    root, null data, an ACL id missing from the cache, CESU-8 (Java's astral chars)."""
    cache = struct.pack(">iiq", 0, 1, 3) + encode_acl_list(DIGEST_ACL)
    streams = [
        cache + ROOT + _node(b"/a", b"1", 3) + _node(b"/a/x") + _node(b"/a", b"2") + END,
        HEAD + ROOT + _node(b"/a") + _node(b"/a/") + END,
        HEAD + _node(b"") + _node(b"/n", None, 77) + _node(b"", b"root again") + END,
        HEAD + ROOT + _node("/\ud83d\ude00".encode("utf-8", "surrogatepass")) + END,
        HEAD + ROOT + _node("/é☃".encode()) + END,
    ]
    for raw in streams:
        loaded, end = DataTree.deserialize(raw, 0, 5)
        assert end == len(raw)
        same(loaded, parsed(raw, 5))
    no_root = HEAD + END
    loaded, _ = DataTree.deserialize(no_root, 0, 5)
    same(loaded, parsed(no_root, 5))


def test_a_bad_file_is_a_storage_error() -> None:
    tree = {"/": TreeNode(b"", None, StatPersisted()), "/a": TreeNode(b"x", None, StatPersisted())}
    raw = encode_snapshot_file(build_snapshot(tree))
    with pytest.raises(StorageError, match="CRC corruption"):
        load_snapshot_file(raw.replace(b"\x00\x01x", b"\x00\x01y"), 1)
    with pytest.raises(StorageError, match="problem reading snap file"):
        load_snapshot_file(raw[:40] + raw[-5:], 1)
    with pytest.raises(StorageError, match="Invalid snapshot"):
        load_snapshot_file(raw[:-1], 1)
    with pytest.raises(StorageError, match="mismatching magic"):
        load_snapshot_file(b"XXXX" + raw[4:], 1)


def test_a_corrupt_zxid_digest_is_caught_by_the_second_seal(tmp_path: Path) -> None:
    tree = {"/": TreeNode(b"", None, StatPersisted()), "/a": TreeNode(b"x", None, StatPersisted())}
    out = write_snapshot(tmp_path, TreeCapture(4, tree, {}), digest=lambda: ZxidDigest(4, 2, 9))
    raw = bytearray(out.path.read_bytes())
    raw[-14] ^= 1  # in the digest's value, before the last seal
    for read in (lambda b: load_snapshot_file(b, 4), decode_snapshot_file_and_digest):
        with pytest.raises(StorageError, match="CRC corruption"):
            read(bytes(raw))


def test_the_digest_of_a_file_is_read(tmp_path: Path) -> None:
    tree = {"/": TreeNode(b"", None, StatPersisted()), "/a": TreeNode(b"x", None, StatPersisted())}
    out = write_snapshot(tmp_path, TreeCapture(4, tree, {}), digest=lambda: ZxidDigest(4, 2, -5))
    loaded, digest = load_snapshot_file(out.path.read_bytes(), 4)
    assert digest == ZxidDigest(4, 2, -5)
    assert loaded.last_processed_zxid == 4 and set(loaded.nodes) == {"/", "/a"}
