"""Votes, their total order and their equality, as ZooKeeper 3.8 defines them.

Facts: ``docs/spec/election-protocol.md`` 6.2 (``totalOrderPredicate``) and 6.6
(``Vote.equals``).  Pure values; no state.
"""

from __future__ import annotations

from dataclasses import dataclass

from zkquorum.wire.election import Notification, ServerState

LOOKING = ServerState.LOOKING


@dataclass(frozen=True, slots=True)
class Vote:
    """``org.apache.zookeeper.server.quorum.Vote``.

    ``leader`` is Java's ``id``.  ``version`` is the notification format version the vote
    came with; ZooKeeper stores votes of the LOOKING path and same-round FOLLOWING/LEADING
    votes with version 0 and out-of-election votes with the sender's version, and the
    equality below depends on it (ZOOKEEPER-1732).
    """

    leader: int
    zxid: int
    election_epoch: int
    peer_epoch: int
    state: ServerState = LOOKING
    version: int = 0

    def matches(self, other: Vote) -> bool:
        """``Vote.equals`` (ZOOKEEPER-1805, ZOOKEEPER-1732).

        With a LOOKING vote on either side every field but state and version must agree.
        Otherwise (both out of election) zxid and electionEpoch are skipped because members
        report stale values, and peerEpoch is skipped too when exactly one side is a
        pre-1732 (version 0) vote.
        """
        if self.state is LOOKING or other.state is LOOKING:
            return (
                self.leader == other.leader
                and self.zxid == other.zxid
                and self.election_epoch == other.election_epoch
                and self.peer_epoch == other.peer_epoch
            )
        if (self.version > 0) != (other.version > 0):
            return self.leader == other.leader
        return self.leader == other.leader and self.peer_epoch == other.peer_epoch

    @classmethod
    def of(cls, n: Notification, *, keep_version: bool) -> Vote:
        """The vote a notification carries, stored as ``lookForLeader`` stores it."""
        return cls(
            n.leader,
            n.zxid,
            n.election_epoch,
            n.peer_epoch,
            n.state,
            n.version if keep_version else 0,
        )

    def short(self) -> str:
        """A compact rendering for traces and test output."""
        state = "" if self.state is LOOKING else f" {self.state.name}"
        return (
            f"(leader={self.leader} zxid={self.zxid:#x} round={self.election_epoch} "
            f"peer_epoch={self.peer_epoch}{state})"
        )


def total_order(
    new_leader: int,
    new_zxid: int,
    new_epoch: int,
    cur_leader: int,
    cur_zxid: int,
    cur_epoch: int,
    new_weight: int,
) -> bool:
    """``totalOrderPredicate``: does the new vote beat the current one?

    A leader of weight 0 never wins (ZOOKEEPER-491).  Otherwise the order is peer epoch,
    then zxid, then sid; the epoch comes first since ZOOKEEPER-1419 (a 5-node ensemble never
    settled when zxids were compared before epochs).  Comparisons are on signed 64-bit values,
    which Python ints already are.
    """
    if new_weight == 0:
        return False
    if new_epoch != cur_epoch:
        return new_epoch > cur_epoch
    if new_zxid != cur_zxid:
        return new_zxid > cur_zxid
    return new_leader > cur_leader
