"""Zab's invariants over a recorded history: a checker fed one record at a time.

The simulator (:mod:`zkquorum.sim.world`) records what the real peer cores did, in the
order it happened (virtual time); :class:`ZabChecker` reads those records and reports
every violation of:

1. **One established leader per epoch** (``LeaderEstablished``; an older epoch's leader
   may establish late, after a newer one, when its NEWLEADER ACKs were delayed: it must
   still hold every txn the epochs before its own committed), and NEWLEADER is sent
   only once a quorum (the leader with the learners whose ACKEPOCH it received, each a
   vote, not -1) acknowledged the epoch (``AckEpochReceived``, ``NewLeaderSent``).
2. **Epochs only grow**: each peer's acceptedEpoch and currentEpoch files never go back,
   currentEpoch never passes acceptedEpoch, and a restart reads what was last written.
3. **After sync a learner's history is a prefix-consistent copy of the leader's**
   (``LearnerSynced``: a prefix of the leader's history at establishment followed by
   what it committed since).
4. **A committed txn is never rolled back and is eventually in every synced peer in the
   same order**: commits (``Committed``) go in zxid order within an epoch; a commit of
   an older epoch is in the history every newer epoch's leader began with; each is
   durable on a quorum when the leader commits it (a commit applied before it is
   durable is a violation); every ACK is sent for a durable txn (``AckSent``); a live
   rollback (TRUNC, SNAP, reload; ``HistoryRolledBack``) may drop a committed txn only
   on a syncing learner, which must hold it again when synced (3.8's leader plans a
   TRUNC to its newest commit and forwards the proposals after it, which may commit
   meanwhile), never on a leader; every new leader holds every txn the epochs before
   its own committed; at the end (``Final``) every synced peer holds every committed
   txn, in commit order, and the same history as the leader.

A history is the tuple of zxids a peer's data tree went through (the simulator's txn
stream makes it readable from the tree), strictly increasing.  Client txns are not in it:
their commits are checked for order and durability here, and their outcomes by the
client checks (:mod:`zkquorum.sim.clients`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from zkquorum.config.verifier import QuorumVerifier
from zkquorum.wire.zxid import zxid_epoch, zxid_hex

History = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class EpochWritten:
    t: float
    sid: int
    kind: str  # "accepted" | "current"
    epoch: int


@dataclass(frozen=True, slots=True)
class NodeRestarted:
    t: float
    sid: int
    accepted: int
    current: int


@dataclass(frozen=True, slots=True)
class AckEpochReceived:
    t: float
    leader: int
    epoch: int
    sid: int


@dataclass(frozen=True, slots=True)
class NewLeaderSent:
    t: float
    leader: int
    epoch: int
    to: int
    config: QuorumVerifier | None = None
    """The config the leader counted ACKEPOCHs by (its config in force when elected)."""


@dataclass(frozen=True, slots=True)
class LeaderEstablished:
    t: float
    leader: int
    epoch: int
    history: History
    config: QuorumVerifier | None = None
    """The config in force at the leader once established (with reconfig: a config
    proposed in an earlier epoch and acked by NEWLEADER's quorums is in force now)."""


@dataclass(frozen=True, slots=True)
class LearnerSynced:
    t: float
    sid: int
    leader: int
    epoch: int
    history: History


@dataclass(frozen=True, slots=True)
class Committed:
    t: float
    leader: int
    epoch: int
    zxid: int
    durable_on: frozenset[int]
    history: bool = True
    """A txn of the history stream; other txns (the clients') are not in the histories,
    and are checked for order and durability only."""
    config: QuorumVerifier | None = None
    """A reconfig's new config (read from the txn): from this commit on it is in force."""
    proposed_while: tuple[int, ...] = ()
    """The reconfigs of its epoch that were proposed and not committed when it was
    proposed: it needs a quorum of the config in force before each, too."""


@dataclass(frozen=True, slots=True)
class AckSent:
    t: float
    sid: int
    zxid: int
    durable: bool


@dataclass(frozen=True, slots=True)
class HistoryRolledBack:
    t: float
    sid: int
    before: History
    after: History
    why: str


@dataclass(frozen=True, slots=True)
class Final:
    t: float
    leader: int
    epoch: int
    histories: Mapping[int, History]
    """The final leader's and every peer synced with it."""


Record = (
    EpochWritten
    | NodeRestarted
    | AckEpochReceived
    | NewLeaderSent
    | LeaderEstablished
    | LearnerSynced
    | Committed
    | AckSent
    | HistoryRolledBack
    | Final
)


def _is_prefix(a: History, b: History) -> bool:
    return len(a) <= len(b) and b[: len(a)] == a


def _subsequence(sub: Iterable[int], seq: History) -> bool:
    it = iter(seq)
    return all(any(x == y for y in it) for x in sub)


def _hexes(zxids: Iterable[int]) -> str:
    return "[" + ", ".join(zxid_hex(z) for z in zxids) + "]"


class ZabChecker:
    """Feed records in the order they happened (:meth:`feed`), then :meth:`finish`."""

    def __init__(self, verifier: QuorumVerifier) -> None:
        self.verifier = verifier
        self.violations: list[str] = []
        self.leaders: dict[int, int] = {}  # epoch -> established leader
        self.chains: dict[int, list[int]] = {}  # epoch -> the leader's history + commits
        self.ackepochs: dict[tuple[int, int], set[int]] = {}
        self.epochs: dict[tuple[int, str], int] = {}
        self.committed: list[int] = []
        self.committed_set: set[int] = set()
        self.finals = 0
        self.initial: dict[int, frozenset[int]] = {}  # epoch -> its leader's history then
        self.last_commit: dict[int, int] = {}  # epoch -> its newest commit
        self.owed: dict[int, set[int]] = {}
        """Committed txns a peer rolled back: it must hold them again once synced."""
        self.epoch_config: dict[int, QuorumVerifier] = {}
        """The config in force in each epoch: its leader's when established, then each
        reconfig it commits."""
        self.config_commits: list[tuple[int, QuorumVerifier]] = []
        """Every committed reconfig: (zxid, new config), in commit order."""
        self.config_before: dict[int, QuorumVerifier] = {}
        """The config each committed reconfig took over from, by its zxid."""
        self.acked: dict[int, set[int]] = {}
        """Who sent a durable ACK of each zxid not committed yet."""

    def _bad(self, t: float, text: str) -> None:
        self.violations.append(f"t={t:.3f}ms: {text}")

    def check(self, records: Iterable[Record]) -> list[str]:
        for r in records:
            self.feed(r)
        return self.finish()

    def finish(self) -> list[str]:
        return self.violations

    def feed(self, r: Record) -> None:
        match r:
            case EpochWritten():
                self._epoch(r)
            case NodeRestarted(t, sid, accepted, current):
                for kind, value in (("accepted", accepted), ("current", current)):
                    last = self.epochs.get((sid, kind))
                    if last is not None and value != last:
                        self._bad(t, f"peer {sid} restarted with {kind}Epoch {value}, "
                                     f"but {last} was written")  # fmt: skip
            case AckEpochReceived(_, leader, epoch, sid):
                self.ackepochs.setdefault((leader, epoch), set()).add(sid)
            case NewLeaderSent(t, leader, epoch, to, config):
                acked = self.ackepochs.get((leader, epoch), set()) | {leader}
                if not (config or self.verifier).contains_quorum(acked):
                    self._bad(t, f"leader {leader} sent NEWLEADER of epoch {epoch} to {to} "
                                 f"before a quorum acked the epoch (ACKEPOCH from "
                                 f"{sorted(acked - {leader})})")  # fmt: skip
            case LeaderEstablished():
                self._established(r)
            case LearnerSynced(t, sid, leader, epoch, history):
                self._ordered(t, sid, history)
                owed = sorted(z for z in self.owed.pop(sid, set()) if z not in history)
                if owed:
                    self._bad(t, f"peer {sid} rolled back committed {_hexes(owed)} and synced "
                                 "without them")  # fmt: skip
                chain = self.chains.get(epoch)
                if self.leaders.get(epoch) != leader or chain is None:
                    self._bad(t, f"peer {sid} synced with leader {leader} in epoch {epoch}, "
                                 "which that leader never established")  # fmt: skip
                elif not _is_prefix(history, tuple(chain)):
                    self._bad(t, f"peer {sid} synced with leader {leader} (epoch {epoch}) "
                                 f"holds {_hexes(history)}, not a prefix of the leader's "
                                 f"{_hexes(chain)}")  # fmt: skip
            case Committed():
                self._committed(r)
            case AckSent(t, sid, zxid, durable):
                if not durable:
                    self._bad(t, f"peer {sid} acked {zxid_hex(zxid)} before it was durable")
                else:
                    self.acked.setdefault(zxid, set()).add(sid)
            case HistoryRolledBack(t, sid, before, after, why):
                self._ordered(t, sid, after)
                lost = [z for z in before if z in self.committed_set and z not in after]
                if lost and sid in self.leaders.values() and why == "leader":
                    self._bad(t, f"leader {sid} rolled back committed {_hexes(lost)}")
                elif lost:
                    # A TRUNC planned before the commit, with the proposal forwarded right
                    # after it (3.8 does the same): the peer must hold it again when synced.
                    self.owed.setdefault(sid, set()).update(lost)
            case Final():
                self._final(r)

    def _epoch(self, r: EpochWritten) -> None:
        key = (r.sid, r.kind)
        last = self.epochs.get(key)
        if last is not None and r.epoch < last:
            self._bad(r.t, f"peer {r.sid}: {r.kind}Epoch went back from {last} to {r.epoch}")
        self.epochs[key] = r.epoch
        accepted = self.epochs.get((r.sid, "accepted"))
        if r.kind == "current" and accepted is not None and r.epoch > accepted:
            self._bad(r.t, f"peer {r.sid}: currentEpoch {r.epoch} > acceptedEpoch {accepted}")

    def _ordered(self, t: float, sid: int, history: History) -> None:
        if any(a >= b for a, b in itertools.pairwise(history)):
            self._bad(t, f"peer {sid}: history out of zxid order {_hexes(history)}")

    def _established(self, r: LeaderEstablished) -> None:
        other = self.leaders.get(r.epoch)
        if other is not None:
            self._bad(r.t, f"leaders {other} and {r.leader} both established epoch {r.epoch}")
            return
        # A leader of an older epoch may still establish after a newer one did (its
        # NEWLEADER ACKs were late); it must hold what the older epochs committed.
        self._ordered(r.t, r.leader, r.history)
        older = sorted(z for z in self.committed if zxid_epoch(z) < r.epoch)
        missing = [z for z in older if z not in r.history]
        if missing:
            self._bad(r.t, f"leader {r.leader} of epoch {r.epoch} lacks committed txns "
                           f"{_hexes(missing)} (its history {_hexes(r.history)})")  # fmt: skip
        self.leaders[r.epoch] = r.leader
        self.chains[r.epoch] = list(r.history)
        self.initial[r.epoch] = frozenset(r.history)
        self.epoch_config[r.epoch] = r.config or self.verifier

    def _committed(self, r: Committed) -> None:
        if self.leaders.get(r.epoch) != r.leader:
            self._bad(r.t, f"{r.leader} committed {zxid_hex(r.zxid)} without being the "
                           f"established leader of epoch {r.epoch}")  # fmt: skip
        last = self.last_commit.get(r.epoch)
        if last is not None and r.zxid <= last:
            self._bad(r.t, f"commit {zxid_hex(r.zxid)} after {zxid_hex(last)}")
        self.last_commit[r.epoch] = r.zxid
        for epoch, initial in self.initial.items():
            if r.history and epoch > r.epoch and r.zxid not in initial:
                self._bad(r.t, f"leader {r.leader} committed {zxid_hex(r.zxid)} of epoch "
                               f"{r.epoch}, which epoch {epoch}'s leader lacked")  # fmt: skip
        acked = self.acked.pop(r.zxid, set())
        for why, config, by_ack in self._configs_for(r):
            on = r.durable_on | acked if by_ack else r.durable_on
            if not config.contains_quorum(on):
                self._bad(r.t, f"leader {r.leader} committed {zxid_hex(r.zxid)} durable only "
                               f"on {sorted(on)}, not a quorum{why}")  # fmt: skip
        if r.config is not None:
            self.config_before[r.zxid] = self.epoch_config.get(r.epoch, self.verifier)
            self.epoch_config[r.epoch] = r.config
            self.config_commits.append((r.zxid, r.config))
        if not r.history:
            return
        self.committed.append(r.zxid)
        self.committed_set.add(r.zxid)
        chain = self.chains.get(r.epoch)
        if chain is not None:
            chain.append(r.zxid)

    def _configs_for(self, r: Committed) -> list[tuple[str, QuorumVerifier, bool]]:
        """Whose quorums a commit needs: the config in force in its epoch; the newest
        config committed before it, when that one is newer still (a leader must not lead
        by a config older than a committed one; a newer one in force is a reconfig that
        the epoch's NEWLEADER quorums committed); a reconfig's own new config; and for a
        txn proposed while reconfigs were pending, the config each took over from (the
        old and the new config while a reconfig is pending).  Without reconfig: the one
        config.  The flag says whether a durable ACK sent before the commit counts: only
        for the config a txn was proposed under, which only had to ack it (a member the
        reconfig dropped may since have cut the txn from its log in a re-sync, TRUNC to
        the leader's newest commit; as an observer it gets no PROPOSAL again); every
        other quorum counts durability at the commit."""
        in_force = self.epoch_config.get(r.epoch, self.verifier)
        if (
            not self.config_commits
            and r.config is None
            and not r.proposed_while
            and in_force is self.verifier
        ):
            return [("", self.verifier, False)]
        out = [(f" of config {in_force.version:x} (in force)", in_force, False)]
        older = [(z, c) for z, c in self.config_commits if z < r.zxid]
        if older:
            newest = max(older, key=lambda zc: zc[0])[1]
            if newest.version > in_force.version:
                out.append((f" of config {newest.version:x} (committed before)", newest, False))
        if r.config is not None:
            out.append((f" of config {r.config.version:x} (its new config)", r.config, False))
        for z in r.proposed_while:
            before = self.config_before.get(z)
            if before is not None:
                why = f" of config {before.version:x} (in force when it was proposed)"
                out.append((why, before, True))
        return out

    def _final(self, r: Final) -> None:
        self.finals += 1
        lead = r.histories.get(r.leader, ())
        committed = sorted(self.committed)
        for sid, h in sorted(r.histories.items()):
            self._ordered(r.t, sid, h)
            missing = [z for z in committed if z not in h]
            if missing:
                self._bad(r.t, f"at the end, synced peer {sid} lacks committed "
                               f"{_hexes(missing[:5])}")  # fmt: skip
            elif not _subsequence(committed, h):
                self._bad(r.t, f"at the end, synced peer {sid} holds the commits in another "
                               "order")  # fmt: skip
            if h != lead:
                self._bad(r.t, f"at the end, synced peer {sid} holds {_hexes(h[-4:])}... "
                               f"but leader {r.leader} {_hexes(lead[-4:])}...")  # fmt: skip


def check_history(records: Iterable[Record], verifier: QuorumVerifier) -> list[str]:
    """Every violation of Zab's invariants in ``records`` (in the order they happened)."""
    return ZabChecker(verifier).check(records)


__all__ = [
    "AckEpochReceived",
    "AckSent",
    "Committed",
    "EpochWritten",
    "Final",
    "History",
    "HistoryRolledBack",
    "LeaderEstablished",
    "LearnerSynced",
    "NewLeaderSent",
    "NodeRestarted",
    "Record",
    "ZabChecker",
    "check_history",
]
