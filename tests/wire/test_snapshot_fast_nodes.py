"""The snapshot parser's fast path for nodes gives the same snapshot as the general one,
whole or fed in pieces (a SNAP stream arrives in pieces): ASCII and non-ASCII paths,
null and empty data, the end marker, a node cut anywhere."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.jute import ACL, Id, StatPersisted
from zkquorum.wire.reader import NeedData, Reader
from zkquorum.wire.snapshot import (
    Snapshot,
    SnapshotParser,
    TreeNode,
    build_snapshot,
    encode_snapshot,
)

names = st.text(alphabet=st.sampled_from("abz09-_é☃\U0001f600"), min_size=1, max_size=6)
stats = st.builds(
    StatPersisted,
    czxid=st.integers(0, 1 << 40),
    mzxid=st.integers(0, 1 << 40),
    version=st.integers(-1, 5),
    ephemeral_owner=st.integers(0, 1 << 62),
)
nodes = st.builds(
    TreeNode,
    data=st.one_of(st.none(), st.binary(max_size=40)),
    acl=st.one_of(st.none(), st.just((ACL(31, Id("world", "anyone")),))),
    stat=stats,
)


@st.composite
def trees(draw: st.DrawFn) -> dict[str, TreeNode]:
    tree = {"/": draw(nodes)}
    paths = ["/"]
    for _ in range(draw(st.integers(0, 25))):
        parent = draw(st.sampled_from(paths))
        path = (parent.rstrip("/") or "") + "/" + draw(names)
        if path not in tree:
            tree[path] = draw(nodes)
            paths.append(path)
    return tree


def parse_in_pieces(raw: bytes, cuts: list[int]) -> Snapshot:
    parser = SnapshotParser()
    buf = b""
    fed = 0
    for cut in [*sorted(cuts), len(raw)]:
        buf, fed = buf + raw[fed:cut], cut
        r = Reader(buf, QuorumProtocolError)
        while True:
            start = r.pos
            try:
                snap = parser.parse_item(r)
            except NeedData:
                buf = buf[start:]
                break
            if snap is not None:
                return snap
    raise AssertionError("no end marker")


@settings(max_examples=150)
@given(trees(), st.lists(st.integers(0, 2000), max_size=8))
def test_whole_and_in_pieces_the_same(tree: dict[str, TreeNode], cuts: list[int]) -> None:
    snap = build_snapshot(tree, {7: 4000})
    raw = encode_snapshot(snap)
    assert parse_in_pieces(raw, []) == snap
    assert parse_in_pieces(raw, [c % (len(raw) + 1) for c in cuts]) == snap
