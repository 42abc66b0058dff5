"""Quorum verifiers: tables in the style of etcd raft's quorum/testdata, and a property test
against a naive reference implementation of ZooKeeper's rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkquorum.config import HierarchicalVerifier, MajorityVerifier, parse_config_string

# (voters, observers, votes, expected)
MAJORITY = [
    ([1], [], [], False),
    ([1], [], [1], True),
    ([1, 2], [], [1], False),
    ([1, 2], [], [1, 2], True),
    ([1, 2, 3], [], [1], False),
    ([1, 2, 3], [], [1, 3], True),
    ([1, 2, 3], [4, 5], [1, 4, 5], False),  # observers never count
    ([1, 2, 3], [4, 5], [1, 2, 4], True),
    ([1, 2, 3, 4], [], [1, 2], False),  # half of an even ensemble is not a quorum
    ([1, 2, 3, 4], [], [1, 2, 3], True),
    ([1, 2, 3, 4, 5], [], [2, 4, 5], True),
    ([1, 2, 3, 4, 5], [], [9, 8, 7], False),  # unknown sids never count
]


@pytest.mark.parametrize(("voters", "observers", "votes", "expected"), MAJORITY)
def test_majority(
    voters: list[int], observers: list[int], votes: list[int], expected: bool
) -> None:
    v = MajorityVerifier.of(voters, observers)
    assert v.contains_quorum(votes) is expected
    assert set(v.voting_members) == set(voters)
    assert set(v.observing_members) == set(observers)
    assert all(v.weight(s) == 1 for s in voters)


# (groups, weights, votes, expected): ZooKeeper's QuorumHierarchical rules.
HIERARCHICAL = [
    # three groups of three: a majority of groups, each won by a majority of its weight
    ({1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]}, {}, [1, 2, 4, 5], True),
    ({1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]}, {}, [1, 2, 4], False),
    ({1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]}, {}, [1, 2, 3, 4, 5, 6], True),
    ({1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]}, {}, [1, 4, 7, 2], False),
    ({1: [1, 2, 3], 2: [4, 5, 6], 3: [7, 8, 9]}, {}, [], False),
    # weights: server 1 alone outweighs 2 and 3 (group weight 4, needs > 2)
    ({1: [1, 2, 3], 2: [4, 5, 6]}, {1: 2}, [1, 2, 4, 5], True),
    ({1: [1, 2, 3], 2: [4, 5, 6]}, {1: 2}, [2, 3, 4, 5], False),
    # a group of weight 0 does not count towards the number of groups
    ({1: [1, 2], 2: [3]}, {3: 0}, [1, 2], True),
    ({1: [1, 2], 2: [3]}, {3: 0}, [3], False),
    # even number of groups: need more than half of them
    ({1: [1], 2: [2]}, {}, [1], False),
    ({1: [1], 2: [2]}, {}, [1, 2], True),
    # exactly half a group's weight does not win it
    ({1: [1, 2, 3, 4]}, {}, [1, 2], False),
    ({1: [1, 2, 3, 4]}, {}, [1, 2, 3], True),
]


@pytest.mark.parametrize(("groups", "weights", "votes", "expected"), HIERARCHICAL)
def test_hierarchical(
    groups: dict[int, list[int]], weights: dict[int, int], votes: list[int], expected: bool
) -> None:
    v = HierarchicalVerifier.of(groups, weights)
    assert v.contains_quorum(votes) is expected


def test_hierarchical_string_fills_in_weights() -> None:
    # Spec A2: group.1=1:2, group.2=3, weight.1=2, weight.3=0, server 4 an observer.
    v = HierarchicalVerifier.of({1: [1, 2], 2: [3]}, {1: 2, 3: 0}, observers=[4])
    assert v.to_zk_string().split("\n")[4:] == [
        "group.1=1:2",
        "group.2=3",
        "weight.1=2",
        "weight.2=1",
        "weight.3=0",
        "version=0",
    ]
    assert v.weight(3) == 0 and v.weight(2) == 1


def naive_majority(voters: set[int], votes: set[int]) -> bool:
    return 2 * len(votes & voters) > len(voters)


def naive_hierarchical(
    groups: dict[int, set[int]], weights: dict[int, int], votes: set[int]
) -> bool:
    if not votes & set().union(*groups.values()):
        return False
    counted = [g for g in groups.values() if sum(weights[s] for s in g) > 0]
    won = 0
    for members in counted:
        total = sum(weights[s] for s in members)
        got = sum(weights[s] for s in members & votes)
        won += 2 * got > total - (total % 2)  # "> total // 2" spelled differently
    return 2 * won > len(counted) - (len(counted) % 2)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 12),
    observers=st.sets(st.integers(20, 25), max_size=3),
    votes=st.sets(st.integers(0, 26), max_size=15),
)
def test_majority_matches_reference(n: int, observers: set[int], votes: set[int]) -> None:
    voters = set(range(1, n + 1))
    v = MajorityVerifier.of(voters, observers)
    assert v.contains_quorum(votes) is naive_majority(voters, votes)


@st.composite
def hierarchies(draw: st.DrawFn) -> tuple[dict[int, set[int]], dict[int, int]]:
    sids = list(range(1, draw(st.integers(1, 12)) + 1))
    ngroups = draw(st.integers(1, min(5, len(sids))))
    assignment = [draw(st.integers(1, ngroups)) for _ in sids]
    groups: dict[int, set[int]] = {}
    for sid, gid in zip(sids, assignment, strict=True):
        groups.setdefault(gid, set()).add(sid)
    weights = {s: draw(st.sampled_from([0, 1, 1, 1, 2, 3])) for s in sids}
    return groups, weights


@settings(max_examples=400, deadline=None)
@given(h=hierarchies(), votes=st.sets(st.integers(0, 13), max_size=13))
def test_hierarchical_matches_reference(
    h: tuple[dict[int, set[int]], dict[int, int]], votes: set[int]
) -> None:
    groups, weights = h
    v = HierarchicalVerifier.of(groups, weights)
    assert v.contains_quorum(votes) is naive_hierarchical(groups, weights, votes)


@settings(max_examples=100, deadline=None)
@given(h=hierarchies(), observers=st.sets(st.integers(20, 25), max_size=2))
def test_config_string_round_trips(
    h: tuple[dict[int, set[int]], dict[int, int]], observers: set[int]
) -> None:
    groups, weights = h
    v = HierarchicalVerifier.of(groups, weights, observers)
    back = parse_config_string(v.to_zk_string())
    assert isinstance(back, HierarchicalVerifier)
    assert back.all_members == v.all_members
    assert back.groups == v.groups and back.weights == v.weights
    m = MajorityVerifier.of(set().union(*groups.values()), observers, version=0x100000000)
    back_m = parse_config_string(m.to_zk_string())
    assert back_m.all_members == m.all_members and back_m.version == 0x100000000
