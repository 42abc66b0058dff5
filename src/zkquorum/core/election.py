"""Fast Leader Election (ZooKeeper 3.8 ``FastLeaderElection``) as a pure state machine.

Facts: ``docs/spec/election-protocol.md`` sections 5 (what ``WorkerReceiver`` does with a
notification) and 6 (``lookForLeader``).  The style is etcd raft's ``Step``: the runtime
feeds :class:`Event` values into :meth:`FastLeaderElection.step` and carries out the
:class:`Action` values it returns.  There are no sockets, no clock and no randomness here;
time arrives as a number (milliseconds) inside every event.

Lifetime
    One instance is one 3.8 ``FastLeaderElection`` object: it lives across rounds.  Each
    :class:`Start` is one call of ``lookForLeader``: the logical clock goes up by one, the
    round's vote tables are emptied and the initial vote is sent.  The runtime sends
    ``Start`` when the peer boots and again whenever the leader/learner phase ends ("go
    back to LOOKING"); :class:`EpochUpdated` is ``QuorumPeer.updateElectionVote`` (the
    synced peer reports the new epoch, ZOOKEEPER-1732).  A new instance (logical clock 0)
    is what 3.8 builds after a restart of the process or of the election.

Proposal and current vote
    ``proposal`` is the vote of the election in progress (``getVote``); ``current_vote``
    is ``QuorumPeer.getCurrentVote``: the start-up vote ``(sid, zxid, current epoch)``
    until the first decision, then the result of the last election, kept while LOOKING
    again.  Non-voters are always answered with the current vote and the logical clock;
    LOOKING voters of an older round with the proposal; when not LOOKING, LOOKING voters
    get the current vote with its own round and our state (1, 2 or 3).

Loopback
    3.8 sends its own vote to itself through the receive queue.  Here the loopback is
    internal: a voter records its own vote in the round's table the moment it sends a
    notification, so :class:`Send` never targets the own sid.  The runtime must not send
    notifications to itself.

Timers
    :class:`SetTimer` asks for one :class:`TimerFired` at or after ``at``; a later
    ``SetTimer`` with the same timer replaces the earlier one.  The core keeps its own
    deadlines and ignores early or stale fires, re-arming lazily, so a runtime that
    cannot cancel timers is still correct.  ``NOTIFY`` is the poll timeout of the main
    loop (200 ms doubling to 60 s, restarted by every notification, as ``poll`` is);
    ``FINALIZE`` is finalizeWait.  On a NOTIFY timeout 3.8 either resends or, when no send
    queue is empty, calls ``connectAll``; both put the newest vote on the way to every
    voter, so the core always resends and the connection layer keeps one pending message
    per peer and resends the last message on reconnect (``QuorumCnxManager``).

Configs inside notifications (see §5 step 2 and §8.3)
    The core sends the text of its committed config and never adopts one itself.  For a
    received version 2 notification whose config text differs from ours:

    * unparsable (no ``version=`` line): ignored, the vote is processed (as 3.8 does);
    * lower version: ignored, the vote is processed (as 3.8 does; our replies carry ours);
    * higher version: the vote is processed and :class:`ConfigMismatch` (with the text)
      is returned once per sender and text.  With ``reconfigEnabled`` the peer core then
      puts that config in force and starts the election again, as 3.8's WorkerReceiver
      does while LOOKING (``zkquorum.core.peer``); with reconfig disabled it only warns
      (3.8 would restart its election even then, and loop while the sender keeps its
      higher version);
    * same version, different membership (sids, roles, groups, weights): the vote is
      processed and :class:`ConfigMismatch` is returned once; 3.8 says nothing.

    Votes are always counted against our own committed verifier.  The next (last-seen)
    config of a reconfig in progress is not modelled.  With ``reconfigEnabled`` the peer
    core puts a newer config in force before the election sees such a notification, as
    3.8 does while looking (``PeerCore._adopt_newer``), and the election counts by it.

Shortcuts (both may be switched off; the wire bytes are those of 3.8 either way)
    See :meth:`FastLeaderElection._shortcut` for the two rules and their soundness.
    ``catch_up_reply`` (default: on exactly when ``failover_shortcut`` is) adds one
    message 3.8 does not send: our proposal, to a voter of our round whose worse vote
    shows it never processed ours (:meth:`FastLeaderElection._catch_up`).  With both
    shortcuts off (and ``catch_up_reply`` not forced on) the core sends exactly what
    3.8 sends, in the same order (``tests/core/test_replay_zk.py``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from zkquorum.config.verifier import QuorumVerifier
from zkquorum.core.vote import Vote, total_order
from zkquorum.wire.election import Notification, ServerState
from zkquorum.wire.zxid import LONG_MIN

LOOKING = ServerState.LOOKING
FOLLOWING = ServerState.FOLLOWING
LEADING = ServerState.LEADING
OBSERVING = ServerState.OBSERVING

FINALIZE_WAIT_MS = 200
MIN_NOTIFICATION_INTERVAL_MS = 200
MAX_NOTIFICATION_INTERVAL_MS = 60000


_HEX = re.compile(r"[+-]?[0-9a-fA-F]+")


class Timer(enum.Enum):
    NOTIFY = "notify"
    FINALIZE = "finalize"


class Via(enum.Enum):
    """How a round ended."""

    FINALIZE = "finalize"  # quorum + finalizeWait of silence, as 3.8
    ALL_VOTED = "all-voted"  # shortcut 1
    FAILOVER = "failover"  # shortcut 2
    JOIN_ROUND = "join-round"  # FOLLOWING/LEADING votes of my round (recvset)
    JOIN = "join"  # FOLLOWING/LEADING votes of any round (outofelection)


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Start:
    """Begin a round (``lookForLeader``) with the persisted state of the peer."""

    now: float
    last_zxid: int
    current_epoch: int


@dataclass(frozen=True, slots=True)
class NotificationReceived:
    """A decoded notification; ``from_sid`` is the connection's sid, never a field."""

    now: float
    from_sid: int
    notification: Notification


@dataclass(frozen=True, slots=True)
class TimerFired:
    now: float
    timer: Timer


@dataclass(frozen=True, slots=True)
class PeerConnected:
    now: float
    sid: int


@dataclass(frozen=True, slots=True)
class PeerLost:
    """The election connection to ``sid`` broke (EOF, reset, crash of the process)."""

    now: float
    sid: int


@dataclass(frozen=True, slots=True)
class EpochUpdated:
    """``updateElectionVote``: the peer synced with its leader and has a new epoch."""

    now: float
    peer_epoch: int


Event = Start | NotificationReceived | TimerFired | PeerConnected | PeerLost | EpochUpdated

# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Send:
    to: int
    notification: Notification


@dataclass(frozen=True, slots=True)
class SetTimer:
    timer: Timer
    at: float


@dataclass(frozen=True, slots=True)
class Decided:
    """The round ended: ``vote`` is what 3.8's ``lookForLeader`` returns.

    ``quorum`` is the evidence: the (sid, vote) pairs that formed the quorum, sorted by
    sid (3.8 keeps this set for the leader, ``leadingVoteSet``).
    """

    vote: Vote
    state: ServerState
    via: Via
    quorum: tuple[tuple[int, Vote], ...]


@dataclass(frozen=True, slots=True)
class ConfigMismatch:
    """A peer sent a config we do not share; see the module docstring.  The election
    does not adopt it; the peer core may (``reconfigEnabled``, while LOOKING)."""

    from_sid: int
    version: int
    reason: str
    text: str = ""


Action = Send | SetTimer | Decided | ConfigMismatch


# ----------------------------------------------------------------------------- config


def parse_config_text(text: str) -> tuple[int | None, frozenset[str]]:
    """The version and a membership digest of a ``QuorumVerifier#toString`` text.

    The digest holds ``server.N=<role>`` plus the ``group.``/``weight.`` lines: addresses
    are not membership.  The version is ``None`` when no valid ``version=`` line exists.
    """
    version: int | None = None
    members: set[str] = set()
    for raw in text.splitlines():
        line = raw.strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "version":
            # Long.parseLong(v, 16): no 0x, no underscores, no blanks (Python's int() allows them)
            version = int(value, 16) if _HEX.fullmatch(value) else None
        elif key.startswith("server."):
            entry = value.split(";", 1)[0]
            role = entry.rsplit(":", 1)[-1]
            role = role if role in ("participant", "observer") else "participant"
            members.add(f"{key}={role}")
        elif key.startswith(("group.", "weight.")):
            members.add(f"{key}={value}")
    return version, frozenset(members)


# ------------------------------------------------------------------------------- core


class FastLeaderElection:
    """One peer's election.  Feed events to :meth:`step`; carry out the actions."""

    def __init__(
        self,
        sid: int,
        verifier: QuorumVerifier,
        *,
        min_notification_interval: float = MIN_NOTIFICATION_INTERVAL_MS,
        max_notification_interval: float = MAX_NOTIFICATION_INTERVAL_MS,
        finalize_wait: float = FINALIZE_WAIT_MS,
        all_voted_shortcut: bool = True,
        failover_shortcut: bool = True,
        catch_up_reply: bool | None = None,
    ) -> None:
        self.sid = sid
        self.min_notification_interval = min_notification_interval
        self.max_notification_interval = max_notification_interval
        self.finalize_wait = finalize_wait
        self.all_voted_shortcut = all_voted_shortcut
        self.failover_shortcut = failover_shortcut
        # None: on exactly when the failover shortcut is (see _catch_up).
        self.catch_up_reply = failover_shortcut if catch_up_reply is None else catch_up_reply

        self._config_cache: dict[str, tuple[int | None, frozenset[str]]] = {}
        # The last mismatching config text reported per sid (bounded: one per sid).
        self._mismatch_reported: dict[int, str] = {}
        self.set_verifier(verifier)

        self.state = LOOKING
        self.started = False
        self.logical_clock = 0
        self.current_vote: Vote | None = None
        self._init = (LONG_MIN, LONG_MIN, LONG_MIN)  # leader, zxid, peer epoch
        self._p_leader = LONG_MIN
        self._p_zxid = LONG_MIN
        self._p_epoch = LONG_MIN
        self.recvset: dict[int, Vote] = {}
        self.outofelection: dict[int, Vote] = {}
        # The latest word of each voter in this lookForLeader call, including what 3.8
        # throws away during finalizeWait: its LOOKING vote of the current round, or its
        # FOLLOWING/LEADING vote (of any round); no entry when it has said nothing since
        # the round began or its latest LOOKING vote was of an older round.  Only the
        # shortcuts and the catch-up reply read it.
        self._round_votes: dict[int, Vote] = {}
        self.lost: set[int] = set()
        self.not_timeout = min_notification_interval
        self._notify_deadline: float | None = None
        self._finalize_deadline: float | None = None
        self._armed: dict[Timer, float] = {}
        self._out: list[Action] = []
        self._handlers: Mapping[type, Callable[..., None]] = {
            NotificationReceived: self._on_notification,
            TimerFired: self._on_timer,
            Start: self._on_start,
            PeerConnected: self._on_connected,
            PeerLost: self._on_lost,
            EpochUpdated: self._on_epoch_updated,
        }

    # ------------------------------------------------------------------ public API

    def step(self, event: Event) -> list[Action]:
        """Apply one event; return the actions to carry out, in order."""
        out: list[Action] = []
        self._out = out
        self._handlers[type(event)](event)
        return out

    @property
    def proposal(self) -> Vote:
        """``getVote``: the vote of the election in progress (round = logical clock)."""
        return Vote(self._p_leader, self._p_zxid, self.logical_clock, self._p_epoch)

    @property
    def finalizing(self) -> bool:
        return self._finalize_deadline is not None

    def describe(self) -> str:
        """One line of state, for traces and scenario tests."""
        cv = self.current_vote.short() if self.current_vote else "-"
        fin = " finalizing" if self.finalizing else ""
        return (
            f"{self.sid}: {self.state.name} round={self.logical_clock} "
            f"proposal={self.proposal.short()} current={cv}{fin}"
        )

    # -------------------------------------------------------------------- handlers

    def _on_start(self, ev: Start) -> None:
        if self.current_vote is None:
            # QuorumPeer.startLeaderElection: the start-up current vote (round -1).
            self.current_vote = Vote(self.sid, ev.last_zxid, -1, ev.current_epoch)
        self.started = True
        self.state = LOOKING
        self.logical_clock += 1
        # A config reported while we were not looking (the peer core adopts a newer one
        # only while looking, as 3.8's WorkerReceiver does) is reported again this round.
        self._mismatch_reported.clear()
        self.recvset = {}
        self.outofelection = {}
        self._round_votes = {}
        leader = self.sid if self.is_voter else LONG_MIN
        zxid = ev.last_zxid if self.is_participant else LONG_MIN
        epoch = ev.current_epoch if self.is_participant else LONG_MIN
        self._init = (leader, zxid, epoch)
        self._p_leader, self._p_zxid, self._p_epoch = self._init
        self.not_timeout = self.min_notification_interval
        self._finalize_deadline = None
        self._armed.clear()  # earlier timers are stale: their fires will be ignored
        self._send_notifications()
        self._restart_poll(ev.now)
        self._check_quorum(ev.now)

    def _on_epoch_updated(self, ev: EpochUpdated) -> None:
        if self.current_vote is not None:
            self.current_vote = replace(self.current_vote, peer_epoch=ev.peer_epoch)

    def set_verifier(self, verifier: QuorumVerifier) -> None:
        """Count votes against ``verifier`` from now on (a config put in force)."""
        self.verifier = verifier
        sid = self.sid
        self._voters: frozenset[int] = frozenset(verifier.voting_members)
        self._others: tuple[int, ...] = tuple(sorted(self._voters - {sid}))
        self.is_voter = sid in self._voters
        # Learner type (QuorumPeer#getLearnerType): an observer observes; any other sid,
        # a voter or one missing from the config (a server about to join, or removed),
        # is a participant: it follows, and only a voter votes.
        self.is_participant = sid not in verifier.observing_members
        self._config_text = verifier.to_zk_string()
        self._config_version = verifier.version
        self._membership = parse_config_text(self._config_text)[1]
        self._mismatch_reported.clear()
        self._contains_quorum: Callable[[Iterable[int]], bool] = verifier.contains_quorum
        self._weight: Callable[[int], int] = verifier.weight

    def _on_connected(self, ev: PeerConnected) -> None:
        self.lost.discard(ev.sid)

    def _on_lost(self, ev: PeerLost) -> None:
        self.lost.add(ev.sid)
        if self.state is LOOKING and self._finalize_deadline is not None:
            self._shortcut()

    def _on_notification(self, ev: NotificationReceived) -> None:
        if not self.started:
            return
        sid = ev.from_sid
        n = ev.notification
        if self.lost:
            self.lost.discard(sid)
        if n.config is not None and n.version > 1 and n.config != self._config_text:
            self._check_config(sid, n.config)
        cv = self.current_vote
        assert cv is not None
        if sid not in self._voters:
            # WorkerReceiver: a non-voter is answered at once, whatever it said.
            self._reply(sid, self.state, cv.leader, cv.zxid, self.logical_clock, cv.peer_epoch)
            return
        if self.state is LOOKING:
            if n.state is LOOKING and n.election_epoch < self.logical_clock:
                self._reply(
                    sid, LOOKING, self._p_leader, self._p_zxid, self.logical_clock, self._p_epoch
                )
            self._look(ev.now, sid, n)
        elif n.state is LOOKING:
            self._reply(sid, self.state, cv.leader, cv.zxid, cv.election_epoch, cv.peer_epoch)

    def _on_timer(self, ev: TimerFired) -> None:
        timer = ev.timer
        armed = self._armed.get(timer)
        if armed is None or ev.now < armed:
            return  # stale or early: a replaced timer
        del self._armed[timer]
        if self.state is not LOOKING:
            return
        now = ev.now
        if timer is Timer.FINALIZE:
            deadline = self._finalize_deadline
            if deadline is None:
                return
            if now < deadline:
                self._arm(Timer.FINALIZE, deadline)
                return
            self._decide(self.proposal, Via.FINALIZE, self._acks(self.recvset, self.proposal))
            return
        # NOTIFY: the poll of the main loop timed out.
        deadline = self._notify_deadline
        if deadline is None or self._finalize_deadline is not None:
            return
        if now < deadline:
            self._arm(Timer.NOTIFY, deadline)
            return
        self._send_notifications()
        self.not_timeout = min(self.not_timeout * 2, self.max_notification_interval)
        self._restart_poll(now)

    # ----------------------------------------------------------- lookForLeader body

    def _look(self, now: float, sid: int, n: Notification) -> None:
        """One notification taken from the queue by ``lookForLeader``."""
        previous = self._note(sid, n)
        if self.catch_up_reply and n.state is LOOKING:
            self._catch_up(sid, n, previous)
        if self._finalize_deadline is not None:
            # The finalizeWait loop: a better vote ends the wait and is processed; any
            # other notification is thrown away and the wait starts again.
            if not self._beats(n.leader, n.zxid, n.peer_epoch):
                self._finalize_deadline = now + self.finalize_wait
                self._shortcut()
                return
            self._finalize_deadline = None
        self._restart_poll(now)
        voters = self._voters
        if sid not in voters or n.leader not in voters:
            return  # "Ignoring notification for non-cluster member"
        state = n.state
        if state is LOOKING:
            if self._init[1] == -1 or n.zxid == -1:
                return  # ZOOKEEPER-261: an uninitialised database takes no part
            if n.election_epoch > self.logical_clock:
                self.logical_clock = n.election_epoch
                self.recvset = {}
                self._round_votes = {}
                il, iz, ie = self._init
                if total_order(n.leader, n.zxid, n.peer_epoch, il, iz, ie, self._weight(n.leader)):
                    self._p_leader, self._p_zxid, self._p_epoch = n.leader, n.zxid, n.peer_epoch
                else:
                    self._p_leader, self._p_zxid, self._p_epoch = self._init
                self._send_notifications()
            elif n.election_epoch < self.logical_clock:
                return  # an older round: ignored (WorkerReceiver already answered)
            elif self._beats(n.leader, n.zxid, n.peer_epoch):
                self._p_leader, self._p_zxid, self._p_epoch = n.leader, n.zxid, n.peer_epoch
                self._send_notifications()
            vote = Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch)
            self.recvset[sid] = vote
            self._round_votes[sid] = vote
            self._check_quorum(now)
        elif state is FOLLOWING or state is LEADING:
            self._received_following(sid, n)
        # OBSERVING: ignored.

    def _note(self, sid: int, n: Notification) -> Vote | None:
        """Record the latest word of voter ``sid`` for the shortcuts; return the one before."""
        votes = self._round_votes
        previous = votes.get(sid)
        state = n.state
        if state is LOOKING:
            if n.election_epoch == self.logical_clock:
                votes[sid] = Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch)
            elif n.election_epoch < self.logical_clock:
                # Behind: it will enter our round (we replied) with a vote not seen yet.
                votes.pop(sid, None)
            # A later round: the main loop jumps to it and starts the tables afresh.
        elif state is FOLLOWING or state is LEADING:
            votes[sid] = Vote.of(n, keep_version=True)
        return previous

    def _catch_up(self, sid: int, n: Notification, previous: Vote | None) -> None:
        """Answer a LOOKING vote of this round that our proposal beats (the sender's
        ``totalOrderPredicate`` would adopt ours), from a voter that
        evidently has not processed our proposal: its word before was FOLLOWING/LEADING
        (3.8 drops LOOKING notifications that arrive while it is not LOOKING) or this very
        vote (a resend on its poll timeout).  3.8 stays silent here and the voter learns
        our vote only at our next poll timeout, which its own resends keep pushing back
        (issue 4: about 1.4 s after a failover).  The reply is the notification
        ``sendNotifications`` would send it; off with ``catch_up_reply=False``.

        Only a voter answers: a voter answers every notification of a non-voter with its
        current vote (``WorkerReceiver``), the same one each time, so a non-voter that
        answered those would start a ping-pong at link speed for as long as both look."""
        if not self.is_voter:
            return
        if n.election_epoch != self.logical_clock or sid not in self._voters:
            return
        pl, pz, pe = self._p_leader, self._p_zxid, self._p_epoch
        if not total_order(pl, pz, pe, n.leader, n.zxid, n.peer_epoch, self._weight(pl)):
            # The sender would not adopt ours (equal, better, or ours has weight 0):
            # answering could only start a ping-pong between two such peers.
            return
        if previous is None:
            return
        if previous.state is LOOKING and not (
            previous.leader == n.leader
            and previous.zxid == n.zxid
            and previous.election_epoch == n.election_epoch
            and previous.peer_epoch == n.peer_epoch
        ):
            return
        self._reply(sid, LOOKING, self._p_leader, self._p_zxid, self.logical_clock, self._p_epoch)

    def _beats(self, leader: int, zxid: int, epoch: int) -> bool:
        return total_order(
            leader, zxid, epoch, self._p_leader, self._p_zxid, self._p_epoch, self._weight(leader)
        )

    def _check_quorum(self, now: float) -> None:
        if self._finalize_deadline is not None:
            return
        ref = self.proposal
        acks = [s for s, v in self.recvset.items() if ref.matches(v)]
        if not self._contains_quorum(acks):
            return
        self._finalize_deadline = now + self.finalize_wait
        if not self._shortcut():
            self._arm(Timer.FINALIZE, self._finalize_deadline)

    def _received_following(self, sid: int, n: Notification) -> None:
        """``receivedFollowingNotification`` (also LEADING; no oracle)."""
        ref = Vote.of(n, keep_version=True)
        if n.election_epoch == self.logical_clock:
            self.recvset[sid] = Vote.of(n, keep_version=False)
            acks = self._acks(self.recvset, ref)
            if self._contains_quorum(s for s, _ in acks) and self._check_leader(
                self.recvset, n.leader, n.election_epoch
            ):
                self._decide(ref, Via.JOIN_ROUND, acks)
                return
        # ZOOKEEPER-1732: out-of-election votes of every round, kept for the whole call.
        self.outofelection[sid] = ref
        acks = self._acks(self.outofelection, ref)
        if self._contains_quorum(s for s, _ in acks) and self._check_leader(
            self.outofelection, n.leader, n.election_epoch
        ):
            self.logical_clock = n.election_epoch
            self._decide(ref, Via.JOIN, acks)

    def _check_leader(self, votes: Mapping[int, Vote], leader: int, election_epoch: int) -> bool:
        """``checkLeader`` (ZOOKEEPER-480, ZOOKEEPER-1514): the leader must say LEADING
        itself; if the leader is me, the votes must be of my round."""
        if leader != self.sid:
            v = votes.get(leader)
            return v is not None and v.state is LEADING
        return self.logical_clock == election_epoch

    @staticmethod
    def _acks(votes: Mapping[int, Vote], ref: Vote) -> tuple[tuple[int, Vote], ...]:
        return tuple(sorted((s, v) for s, v in votes.items() if ref.matches(v)))

    # ------------------------------------------------------------------- shortcuts

    def _shortcut(self) -> bool:
        """Decide before finalizeWait ends when no better vote can arrive.  Called while
        finalizing (a quorum of this round's votes equals the proposal).  A voter's
        *latest word* is the last notification it sent us in this ``lookForLeader`` call
        (see ``_note``); the rules look at every voter, not just a quorum.

        1. All voted (``all_voted_shortcut``): every voter's latest word is either
           (a) a LOOKING vote of this round equal to the proposal, or
           (b) a FOLLOWING/LEADING vote of this round for the proposal's leader and zxid
               (with a peer epoch at least ours): that voter decided our vote in this
               round and has left it.
           A proposal only ever grows within a round, from the peer's initial vote
           ``(sid, last zxid, current epoch)`` upward, and those values do not change
           while a peer is LOOKING.  Every vote that can still appear in this round is
           some voter's proposal: for (a) voters the maximum of initial votes of voters
           whose proposals equal ours, and (b) voters send no LOOKING vote of this round
           any more (their next ``lookForLeader`` is a later round; their proposals in
           this round never exceeded the decision they report, and every vote of a round
           for leader L is L's initial vote, so leader and zxid identify it).  No vote
           can beat ours, so 3.8's wait would end with the same decision whatever it
           received.  3.3's "heard from everyone" rule (removed by ZOOKEEPER-975) counted
           any votes; this one counts only votes equal to ours, from every voter.
        2. Failover (``failover_shortcut``): as 1, but two kinds of voter may be missing:
           (c) a voter whose election connection is lost (``PeerLost`` and no sign of
               life since: typically the dead leader), and
           (d) a voter whose latest word is FOLLOWING/LEADING for a leader of kind (c):
               a follower that has not yet noticed its leader is gone.  In large
               ensembles some followers are still connecting to the leader (or have not
               yet timed out on it) when it dies, and without (d) the failover round
               always waited finalizeWait (issue 4: 205 ms at N = 25 either way).
           Soundness by refinement: a better vote could only come from a (c) voter, over
           a connection that does not exist, or from a (d) voter once it notices that
           its leader is gone and starts a round.  3.8 bounds neither by finalizeWait:
           reconnecting takes up to cnxTimeout (5 s) with back-off to 60 s; a follower
           leaves a dead leader after its connect retries (5 tries within initLimit
           ticks) or a read timeout (syncLimit ticks).  So every decision taken here is
           one 3.8 takes in a run where those take longer than finalizeWait (3.8 throws
           the (d) voters' replies away while it waits, and they stop when we stop
           sending): the shortcut adds no outcome, it only picks the fast timing.  A
           partitioned peer whose connection merely stalls is not "lost", so partitions
           fall back to finalizeWait.  Safety of the ensemble never rested on
           finalizeWait: it rests on Zab's epoch handshake (the elected leader's zxid is
           still at least that of every voter of the quorum that elected it).

        Caveat for 1: 3.8's out-of-election join sets the logical clock back
        (``logicalclock = n.electionEpoch``), and a restarted peer starts again at round
        1, so a peer may re-enter a round number with a newer initial vote; then rule 1
        also holds only by the refinement argument of 2 (the restart broke the
        connection; its first message, of an older round, erases its entry).
        """
        if not (self.all_voted_shortcut or self.failover_shortcut):
            return False
        ref = self.proposal
        votes = self._round_votes
        lost = self.lost if self.failover_shortcut else ()
        used_lost = False
        for s in self._voters:
            v = votes.get(s)
            if v is not None:
                if v.state is LOOKING:
                    if ref.matches(v):
                        continue  # (a)
                elif (
                    v.leader == ref.leader
                    and v.zxid == ref.zxid
                    and v.election_epoch == ref.election_epoch
                    and v.peer_epoch >= ref.peer_epoch
                ):
                    continue  # (b)
                elif v.leader in lost and v.leader != s:
                    used_lost = True  # (d)
                    continue
            if s in lost:
                used_lost = True  # (c)
                continue
            return False
        if used_lost:
            via = Via.FAILOVER
        elif self.all_voted_shortcut:
            via = Via.ALL_VOTED
        else:
            return False
        self._decide(ref, via, self._acks(self.recvset, ref))
        return True

    # --------------------------------------------------------------------- helpers

    def _decide(self, vote: Vote, via: Via, acks: tuple[tuple[int, Vote], ...]) -> None:
        if vote.leader == self.sid:
            state = LEADING
        else:
            state = FOLLOWING if self.is_participant else OBSERVING
        self.state = state
        result = Vote(vote.leader, vote.zxid, vote.election_epoch, vote.peer_epoch)
        self.current_vote = result
        self._finalize_deadline = None
        self._notify_deadline = None
        self._armed.clear()
        self._out.append(Decided(result, state, via, acks))

    def _restart_poll(self, now: float) -> None:
        deadline = now + self.not_timeout
        self._notify_deadline = deadline
        armed = self._armed.get(Timer.NOTIFY)
        if armed is None or armed > deadline:
            self._arm(Timer.NOTIFY, deadline)

    def _arm(self, timer: Timer, at: float) -> None:
        self._armed[timer] = at
        self._out.append(SetTimer(timer, at))

    def _send_notifications(self) -> None:
        n = Notification(
            LOOKING,
            self._p_leader,
            self._p_zxid,
            self.logical_clock,
            self._p_epoch,
            2,
            self._config_text,
        )
        out = self._out
        for to in self._others:
            out.append(Send(to, n))
        if self.is_voter:
            # The loopback, delivered at once (see the module docstring).
            vote = Vote(self._p_leader, self._p_zxid, self.logical_clock, self._p_epoch)
            self.recvset[self.sid] = vote
            self._round_votes[self.sid] = vote

    def _reply(
        self, to: int, state: ServerState, leader: int, zxid: int, rnd: int, epoch: int
    ) -> None:
        self._out.append(
            Send(to, Notification(state, leader, zxid, rnd, epoch, 2, self._config_text))
        )

    def _check_config(self, sid: int, text: str) -> None:
        info = self._config_cache.get(text)
        if info is None:
            info = parse_config_text(text)
            if len(self._config_cache) < 64:
                self._config_cache[text] = info
        version, membership = info
        if version is None or version < self._config_version:
            return
        if version > self._config_version:
            same = membership == self._membership
            reason = "newer version, " + ("same membership" if same else "different membership")
        elif membership != self._membership:
            reason = "same version, different membership"
        else:
            return
        if self._mismatch_reported.get(sid) == text:
            return
        self._mismatch_reported[sid] = text
        self._out.append(ConfigMismatch(sid, version, reason, text))
