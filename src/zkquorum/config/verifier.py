"""Quorum verifiers: ``QuorumMaj`` and ``QuorumHierarchical`` as ZooKeeper 3.8 defines them.

Both are immutable and answer the same questions (``docs/spec/quorum-config-and-zab.md``
A3): the weight of a sid, whether a set of sids contains a quorum, the voting and observing
members, the version, and the canonical config string (``QuorumVerifier#toString``).

Observers are excluded by membership, never by weight: ``contains_quorum`` ignores every
sid that is not a voting member (ZooKeeper's callers filter; we filter inside, so that no
caller can forget).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from zkquorum.config.model import LearnerType, QuorumServer


class QuorumVerifier(Protocol):
    """What every verifier answers."""

    @property
    def version(self) -> int: ...

    @property
    def all_members(self) -> Mapping[int, QuorumServer]: ...

    @property
    def voting_members(self) -> Mapping[int, QuorumServer]: ...

    @property
    def observing_members(self) -> Mapping[int, QuorumServer]: ...

    def weight(self, sid: int) -> int: ...

    def contains_quorum(self, sids: Iterable[int]) -> bool: ...

    def to_zk_string(self) -> str: ...

    def describe_quorum(self) -> str: ...


def _member_lines(members: Mapping[int, QuorumServer]) -> list[str]:
    # ZooKeeper prints HashMap order; the string is a Properties document, so order carries
    # no meaning.  We print members sorted by sid.
    return [f"server.{sid}={members[sid].to_zk_string()}" for sid in sorted(members)]


def _split(servers: Mapping[int, QuorumServer]) -> tuple[dict[int, QuorumServer], ...]:
    voting = {s: q for s, q in servers.items() if q.role is LearnerType.PARTICIPANT}
    observing = {s: q for s, q in servers.items() if q.role is LearnerType.OBSERVER}
    return voting, observing


@dataclass(frozen=True)
class MajorityVerifier:
    """``QuorumMaj``: a quorum is more than half of the participants."""

    servers: Mapping[int, QuorumServer]
    version: int = 0
    voting_members: Mapping[int, QuorumServer] = field(init=False, repr=False)
    observing_members: Mapping[int, QuorumServer] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        voting, observing = _split(self.servers)
        object.__setattr__(self, "servers", dict(sorted(self.servers.items())))
        object.__setattr__(self, "voting_members", voting)
        object.__setattr__(self, "observing_members", observing)

    @classmethod
    def of(
        cls, voters: Iterable[int], observers: Iterable[int] = (), version: int = 0
    ) -> MajorityVerifier:
        """A verifier over placeholder loopback addresses, for tests and the simulator."""
        servers = {s: QuorumServer.simple(s) for s in voters}
        servers |= {s: QuorumServer.simple(s, role=LearnerType.OBSERVER) for s in observers}
        return cls(servers, version)

    @property
    def all_members(self) -> Mapping[int, QuorumServer]:
        return self.servers

    @property
    def half(self) -> int:
        return len(self.voting_members) // 2

    def weight(self, sid: int) -> int:
        return 1

    def contains_quorum(self, sids: Iterable[int]) -> bool:
        voters = self.voting_members
        return len({s for s in sids if s in voters}) > len(voters) // 2

    def to_zk_string(self) -> str:
        return "\n".join([*_member_lines(self.servers), f"version={self.version:x}"])

    def describe_quorum(self) -> str:
        n = len(self.voting_members)
        return f"majority: {self.half + 1} of {n} voter{'s' if n != 1 else ''}"


@dataclass(frozen=True)
class HierarchicalVerifier:
    """``QuorumHierarchical``: a majority of groups, each won by more than half its weight.

    ``groups`` maps a group id to its member sids; ``weights`` gives every participant a
    weight (1 unless ``weight.N`` says otherwise).  A group of total weight 0 does not
    count towards the number of groups.  A server of weight 0 can never be elected
    (``FastLeaderElection#totalOrderPredicate``).
    """

    servers: Mapping[int, QuorumServer]
    groups: Mapping[int, frozenset[int]]
    weights: Mapping[int, int]
    version: int = 0
    voting_members: Mapping[int, QuorumServer] = field(init=False, repr=False)
    observing_members: Mapping[int, QuorumServer] = field(init=False, repr=False)
    group_of: Mapping[int, int] = field(init=False, repr=False)
    group_weight: Mapping[int, int] = field(init=False, repr=False)
    num_groups: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        voting, observing = _split(self.servers)
        object.__setattr__(self, "servers", dict(sorted(self.servers.items())))
        object.__setattr__(self, "voting_members", voting)
        object.__setattr__(self, "observing_members", observing)
        groups = {g: frozenset(m) for g, m in sorted(self.groups.items())}
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "weights", dict(sorted(self.weights.items())))
        group_of = {sid: gid for gid, members in groups.items() for sid in members}
        object.__setattr__(self, "group_of", group_of)
        gw = {gid: sum(self.weights.get(s, 0) for s in members) for gid, members in groups.items()}
        object.__setattr__(self, "group_weight", gw)
        object.__setattr__(self, "num_groups", sum(1 for w in gw.values() if w != 0))

    @classmethod
    def of(
        cls,
        groups: Mapping[int, Iterable[int]],
        weights: Mapping[int, int] | None = None,
        observers: Iterable[int] = (),
        version: int = 0,
    ) -> HierarchicalVerifier:
        """A verifier over placeholder addresses: every grouped sid is a participant."""
        voters = sorted({s for members in groups.values() for s in members})
        servers = {s: QuorumServer.simple(s) for s in voters}
        servers |= {s: QuorumServer.simple(s, role=LearnerType.OBSERVER) for s in observers}
        w = {s: 1 for s in voters} | dict(weights or {})
        return cls(servers, {g: frozenset(m) for g, m in groups.items()}, w, version)

    @property
    def all_members(self) -> Mapping[int, QuorumServer]:
        return self.servers

    def weight(self, sid: int) -> int:
        return self.weights.get(sid, 0)

    def contains_quorum(self, sids: Iterable[int]) -> bool:
        chosen = {s for s in sids if s in self.voting_members}
        if not chosen:
            return False
        per_group: dict[int, int] = {}
        for sid in chosen:
            gid = self.group_of.get(sid)
            if gid is not None:
                per_group[gid] = per_group.get(gid, 0) + self.weight(sid)
        winning = sum(1 for gid, total in per_group.items() if total > self.group_weight[gid] // 2)
        return winning > self.num_groups // 2

    def to_zk_string(self) -> str:
        lines = _member_lines(self.servers)
        for gid, members in self.groups.items():
            lines.append(f"group.{gid}=" + ":".join(str(s) for s in sorted(members)))
        for sid, w in self.weights.items():
            lines.append(f"weight.{sid}={w}")
        lines.append(f"version={self.version:x}")
        return "\n".join(lines)

    def describe_quorum(self) -> str:
        need = self.num_groups // 2 + 1
        parts = []
        for gid, members in self.groups.items():
            gw = self.group_weight[gid]
            state = f"weight {gw}, needs > {gw // 2}" if gw else "weight 0, not counted"
            parts.append(f"group {gid} ({':'.join(map(str, sorted(members)))}; {state})")
        return f"hierarchical: {need} of {self.num_groups} groups win; " + ", ".join(parts)
