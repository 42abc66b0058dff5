"""One simulated ensemble: virtual clock, seeded faulty network, abstract Zab, invariants.

Everything random comes from one ``random.Random(seed)``, and events are ordered by
(virtual time, sequence number), so a seed gives the same run event for event.

The network (a model of ``QuorumCnxManager`` over TCP)
    One connection per pair of peers, FIFO in each direction.  A message for a peer
    without a connection waits in a one-slot queue (the newest wins) and triggers a
    connection attempt; when a connection comes up each side sends its pending message or
    else resends the last message it sent on that link (``SendWorker`` start), and both
    cores get ``PeerConnected``.  A connection that breaks (crash of a peer, or the
    ``loss`` fault: a reset) drops what is in flight and both live ends get ``PeerLost``.
    A partition does not break connections (TCP keep-alive is off in 3.8): messages
    across it wait and arrive after the heal, new connections across it fail.

Faults (``FAULT_KINDS``), all inside the fault window; at its end every partition heals
and every crashed peer is up again:
    ``delay`` slow links (1-40 ms instead of 0.5-2 ms) · ``reorder`` large per-message
    jitter (links stay FIFO, so messages of different links overtake each other) ·
    ``loss`` connection resets · ``dup`` duplicates (a spurious reconnect resends the last
    message, the one duplicate 3.8 can produce) · ``partition`` random two-sided splits
    that heal · ``crash`` crash and restart of random peers (epoch and zxid persist, the
    election starts afresh at round 1) · ``failover`` the established leader crashes.

Abstract Zab
    A peer that decided FOLLOWING/OBSERVING connects to its leader as 3.8's
    ``Learner.connectToLeader`` does: a refused attempt (leader down, or not leading yet)
    is retried after 100 ms (``leaderConnectDelayDuringRetryMs``), and the fifth refusal
    sends it back to LOOKING; an unreachable leader (partition) is retried until
    ``init_limit_ms``, the connect timeout.  A leader with a quorum of voters connected
    becomes *established*: new epoch = max(epochs of that quorum) + 1, a few
    transactions, learners synced (some lag one transaction), ``EpochUpdated`` to each
    core.  A leader that is not established
    within ``init_limit_ms`` goes back to LOOKING with its learners.  Learners of a leader
    that crashes go back to LOOKING after one link delay; across a partition after
    ``sync_limit_ms``; a leader that lost its quorum likewise.

Invariants (checked on every run)
    1. Agreement.  (a) Every decision rests on a genuine quorum: votes that the voters
       really sent, of the decided round, for the decided vote (or, to join, FOLLOWING /
       LEADING votes really sent).  (b) In no round do two different leaders each get a
       quorum of deciders.  (c) Every voter that decided in the first round chose the same
       leader, when that round ended before the first fault (observers only get replies,
       never a voter's change of mind, so 3.8 lets them settle on a dropped proposal).
       Strict agreement of every round is *not* a property of 3.8: a peer that joins a
       round late (restart, failover detection, heal) can move peers that are still
       finalizing while others have already decided; Zab's epoch handshake sorts it out.
    2. A LOOKING-path leader's (peer epoch, zxid) is at least that of every voter of the
       quorum that elected it (as the voter was when it sent its vote).
    3. No observer or weight-0 server is ever chosen.
    4. Liveness: once the fault window is over (all healed, all up), within
       ``Spec.liveness_bound_ms`` (2*window + 2*init_limit + sync_limit + 2000 ms; 7600 ms
       with the defaults) a leader is established and every voter is synced with it.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from zkquorum.config.verifier import HierarchicalVerifier, MajorityVerifier, QuorumVerifier
from zkquorum.core.election import (
    Action,
    ConfigMismatch,
    Decided,
    EpochUpdated,
    FastLeaderElection,
    NotificationReceived,
    PeerConnected,
    PeerLost,
    Send,
    SetTimer,
    Start,
    Timer,
    TimerFired,
    Via,
)
from zkquorum.core.vote import Vote
from zkquorum.wire.election import Notification, ServerState
from zkquorum.wire.zxid import make_zxid

FAULT_KINDS = ("delay", "reorder", "loss", "dup", "partition", "crash", "failover")

LOOKING = ServerState.LOOKING
FOLLOWING = ServerState.FOLLOWING
LEADING = ServerState.LEADING
OBSERVING = ServerState.OBSERVING
_LOOKING_VIA = (Via.FINALIZE, Via.ALL_VOTED, Via.FAILOVER)

# Event kinds, in the heap as (time, seq, kind, a, b, payload).
_DELIVER, _TIMER, _CONNECT, _START, _CRASH, _RESTART = range(6)
_PARTITION, _HEAL, _RESET, _DUP, _ATTACH, _LEADER_DEADLINE = range(6, 12)
_ZAB_CHECK, _LOOK, _END, _FAILOVER = range(12, 16)
_KIND_NAMES = (
    "deliver", "timer", "connect", "start", "crash", "restart", "partition", "heal",
    "reset", "dup", "attach", "leader-deadline", "zab-check", "look", "end", "failover",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Spec:
    """What to simulate.  ``groups`` (hierarchical) maps gid -> sids; ``weights`` sid -> w."""

    voters: int = 3
    observers: int = 0
    groups: tuple[tuple[int, tuple[int, ...]], ...] = ()
    weights: tuple[tuple[int, int], ...] = ()
    faults: frozenset[str] = frozenset()
    shortcuts: bool = True
    fault_window_ms: float = 1500.0
    init_limit_ms: float = 1000.0
    sync_limit_ms: float = 600.0
    start_jitter_ms: float = 20.0

    @property
    def hierarchical(self) -> bool:
        return bool(self.groups)

    @property
    def liveness_bound_ms(self) -> float:
        """Virtual ms after the fault window within which a leader must be established.

        A peer LOOKING through the whole window has a poll timeout of at most
        2*window + 200 ms when the window ends; after its next resend the election needs
        a few link delays and finalizeWait; one failed leader phase (a peer decided for a
        leader that cannot lead) costs init_limit, and a round started by its fallout
        once more 2*200 ms of back-off plus finalizeWait.
        """
        return 2 * self.fault_window_ms + 2 * self.init_limit_ms + self.sync_limit_ms + 2000

    def verifier(self) -> QuorumVerifier:
        voters = range(1, self.voters + 1)
        observers = range(self.voters + 1, self.voters + self.observers + 1)
        if self.groups:
            return HierarchicalVerifier.of(
                {g: list(m) for g, m in self.groups}, dict(self.weights), observers
            )
        return MajorityVerifier.of(voters, observers)

    def describe(self) -> str:
        kind = "hierarchical" if self.groups else "majority"
        faults = ",".join(sorted(self.faults)) or "none"
        return f"{self.voters} voters + {self.observers} observers, {kind}, faults={faults}"


def random_spec(
    rng: random.Random,
    *,
    voters: tuple[int, int] = (1, 9),
    observers: tuple[int, int] = (0, 3),
    faults: frozenset[str] | None = None,
    shortcuts: bool = True,
    hierarchical: float = 0.3,
) -> Spec:
    """A random ensemble: sizes, quorum system, weights (some 0) and a subset of faults."""
    n = rng.randint(*voters)
    m = rng.randint(*observers)
    groups: tuple[tuple[int, tuple[int, ...]], ...] = ()
    weights: tuple[tuple[int, int], ...] = ()
    if n >= 1 and rng.random() < hierarchical:
        g = rng.randint(1, min(3, n))
        sids = list(range(1, n + 1))
        rng.shuffle(sids)
        cut = sorted(rng.sample(range(1, n), g - 1)) if g > 1 else []
        parts = [sids[i:j] for i, j in zip([0, *cut], [*cut, n], strict=True)]
        groups = tuple((i + 1, tuple(sorted(p))) for i, p in enumerate(parts))
        w = {s: rng.choice((1, 1, 1, 2, 0)) for s in range(1, n + 1)}
        for _, members in groups:  # every group keeps a voter of non-zero weight
            if all(w[s] == 0 for s in members):
                w[members[0]] = 1
        weights = tuple(sorted(w.items()))
    if faults is None:
        faults = frozenset(k for k in FAULT_KINDS if rng.random() < 0.5)
    return Spec(n, m, groups, weights, faults, shortcuts)


@dataclass(slots=True)
class Episode:
    """An election to time: the initial one, or the one after the leader crashed."""

    name: str
    start: float
    messages_at_start: int
    decided_at: float | None = None
    messages: int = 0


@dataclass(slots=True)
class RunResult:
    seed: int
    spec: Spec
    violations: list[str] = field(default_factory=list)
    decisions: int = 0
    messages: int = 0
    episodes: list[Episode] = field(default_factory=list)
    end_time: float = 0.0
    events: int = 0
    via: dict[str, int] = field(default_factory=dict)
    trace: list[str] | None = None


class _Peer:
    __slots__ = (
        "alive",
        "attached",
        "core",
        "decided_at",
        "epoch",
        "established",
        "gen",
        "inc",
        "leader",
        "learners",
        "sid",
        "side",
        "voter",
        "zab",
        "zxid",
    )  # fmt: skip

    def __init__(self, sid: int, voter: bool, epoch: int, zxid: int) -> None:
        self.sid = sid
        self.voter = voter
        self.alive = False  # until its process starts
        self.core: FastLeaderElection | None = None
        self.epoch = epoch
        self.zxid = zxid
        self.inc = 0
        self.zab = LOOKING
        self.gen = 0
        self.leader = 0
        self.learners: set[int] = set()
        self.established = False
        self.attached = False
        self.decided_at = 0.0
        self.side = 0


class World:
    """A run: ``World(spec, seed).run()``.  ``core_factory`` lets tests mutate the core."""

    def __init__(
        self,
        spec: Spec,
        seed: int,
        *,
        trace: bool = False,
        core_factory: Callable[..., FastLeaderElection] = FastLeaderElection,
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.rng = random.Random(seed)
        self.core_factory = core_factory
        self.verifier = spec.verifier()
        self.voters = frozenset(self.verifier.voting_members)
        self.all = tuple(sorted(self.verifier.all_members))
        self.result = RunResult(seed, spec, trace=[] if trace else None)
        self.now = 0.0
        self._heap: list[tuple[float, int, int, int, int, object]] = []
        self._seq = 0
        faults = spec.faults
        self.lat_lo, self.lat_hi = (1.0, 40.0) if "delay" in faults else (0.5, 2.0)
        self.reorder = "reorder" in faults
        self.heal_time = spec.fault_window_ms if faults else 0.0
        self.deadline = self.heal_time + spec.liveness_bound_ms
        self.first_fault = float("inf")
        self.peers: dict[int, _Peer] = {}
        rng = self.rng
        base = rng.randint(0, 3)
        for sid in self.all:
            epoch = base + rng.choice((0, 0, 1))
            zepoch = rng.choice((epoch, max(0, epoch - 1)))
            self.peers[sid] = _Peer(
                sid, sid in self.voters, epoch, make_zxid(zepoch, rng.randint(0, 4))
            )
        # Links, by ordered pair (a, b): connection state lives on (min, max).
        self.up: dict[tuple[int, int], int] = {}  # unordered pair -> generation if up
        self.gen: dict[tuple[int, int], int] = {}
        self.connecting: set[tuple[int, int]] = set()
        # A message travels with its sender's (epoch, zxid) at the time the core sent it.
        self.pending: dict[tuple[int, int], tuple[Notification, tuple[int, int]]] = {}
        self.last_sent: dict[tuple[int, int], tuple[Notification, tuple[int, int]]] = {}
        self.fifo: dict[tuple[int, int], float] = {}
        self.held: list[tuple[int, int, tuple[Notification, tuple[int, int]], int]] = []
        # What each peer received: (dst, src, vote fields + state) -> sender (epoch, zxid).
        self.seen: dict[tuple[int, int, int, int, int, int, int], tuple[int, int]] = {}
        self.round_deciders: dict[tuple[int, int], dict[int, set[int]]] = {}
        self.episode_deciders: dict[tuple[int, int], set[int]] = {}
        self.restarts = 0
        self.first_round: dict[int, int] = {}  # sid -> leader, round-1 decisions pre-fault
        self.established: dict[int, int] = {}  # epoch -> leader sid
        self.episodes: list[Episode] = []
        self.open_episode: Episode | None = None
        self.stable = False

    # ---------------------------------------------------------------- scheduling

    def _push(self, t: float, kind: int, a: int = 0, b: int = 0, payload: object = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, a, b, payload))

    def _latency(self) -> float:
        rng = self.rng
        lat = rng.uniform(self.lat_lo, self.lat_hi)
        if self.reorder and rng.random() < 0.3:
            lat += rng.uniform(0.0, 60.0)
        return lat

    def _violation(self, text: str) -> None:
        self.result.violations.append(f"t={self.now:.3f}ms: {text}")

    # ----------------------------------------------------------------- the run

    def run(self) -> RunResult:
        spec, rng = self.spec, self.rng
        for sid in self.all:
            self._push(rng.uniform(0.0, spec.start_jitter_ms), _START, sid)
        self.episodes.append(Episode("initial", 0.0, 0))
        self.open_episode = self.episodes[0]
        self._schedule_faults()
        if self.heal_time:
            self._push(self.heal_time, _HEAL, 1)
        self._push(self.deadline, _END)
        handlers = (
            self._ev_deliver, self._ev_timer, self._ev_connect, self._ev_start,
            self._ev_crash, self._ev_restart, self._ev_partition, self._ev_heal,
            self._ev_reset, self._ev_dup, self._ev_attach, self._ev_leader_deadline,
            self._ev_zab_check, self._ev_look, self._ev_end, self._ev_failover,
        )  # fmt: skip
        heap = self._heap
        trace = self.result.trace
        events = 0
        while heap and not self.stable:
            t, _, kind, a, b, payload = heapq.heappop(heap)
            self.now = t
            events += 1
            if trace is not None:
                trace.append(f"{t:.3f} {_KIND_NAMES[kind]} {a} {b} {payload!r}")
            handlers[kind](a, b, payload)
        self._final_checks()
        self.result.events = events
        self.result.end_time = self.now
        self.result.episodes = self.episodes
        return self.result

    def _schedule_faults(self) -> None:
        spec, rng = self.spec, self.rng
        w = spec.fault_window_ms
        sids = self.all
        faults = spec.faults
        if "crash" in faults:
            for _ in range(rng.randint(1, 2)):
                sid = rng.choice(sids)
                t = rng.uniform(0, w * 0.8)
                self._push(t, _CRASH, sid)
                self._push(min(w, t + rng.uniform(50, 800)), _RESTART, sid)
        if "partition" in faults and len(sids) > 1:
            t = rng.uniform(0, w * 0.6)
            for _ in range(rng.randint(1, 2)):
                cut = frozenset(rng.sample(sids, rng.randint(1, len(sids) - 1)))
                self._push(t, _PARTITION, 0, 0, cut)
                t = min(w, t + rng.uniform(100, 700))
                self._push(t, _HEAL)
                t = min(w, t + rng.uniform(0, 200))
        if "loss" in faults and len(sids) > 1:
            for _ in range(rng.randint(1, 2 * len(sids))):
                a, b = rng.sample(sids, 2)
                self._push(rng.uniform(0, w), _RESET, a, b)
        if "dup" in faults and len(sids) > 1:
            for _ in range(rng.randint(1, 2 * len(sids))):
                a, b = rng.sample(sids, 2)
                self._push(rng.uniform(0, w), _DUP, a, b)

    def _fault(self) -> None:
        if self.now < self.first_fault:
            self.first_fault = self.now

    # ------------------------------------------------------------------ network

    def _reachable(self, a: int, b: int) -> bool:
        return self.peers[a].side == self.peers[b].side

    def _send(self, a: int, b: int, n: Notification) -> None:
        self.result.messages += 1
        key = (a, b) if a < b else (b, a)
        gen = self.up.get(key)
        pa = self.peers[a]
        msg = (n, (pa.epoch, pa.zxid))
        if gen is None:
            self.pending[(a, b)] = msg
            pb = self.peers[b]
            if key not in self.connecting and pb.alive and self._reachable(a, b):
                self.connecting.add(key)
                # Connect (and connect back when the initiator has the smaller sid).
                d = self._latency() * (3 if a < b else 2)
                self._push(self.now + d, _CONNECT, key[0], key[1])
            return
        self._transmit(a, b, msg, gen)

    def _transmit(
        self, a: int, b: int, msg: tuple[Notification, tuple[int, int]], gen: int
    ) -> None:
        self.last_sent[(a, b)] = msg
        if not self._reachable(a, b):
            self.held.append((a, b, msg, gen))
            return
        at = self.now + self._latency()
        last = self.fifo.get((a, b), 0.0)
        if at <= last:
            at = last + 0.001
        self.fifo[(a, b)] = at
        self._push(at, _DELIVER, a, b, (msg, gen))

    def _ev_connect(self, a: int, b: int, _: object) -> None:
        key = (a, b)
        self.connecting.discard(key)
        pa, pb = self.peers[a], self.peers[b]
        if key in self.up or not (pa.alive and pb.alive and self._reachable(a, b)):
            return
        gen = self.gen.get(key, 0) + 1
        self.gen[key] = gen
        self.up[key] = gen
        for x, y in ((a, b), (b, a)):
            msg = self.pending.pop((x, y), None) or self.last_sent.get((x, y))
            if msg is not None:
                self._transmit(x, y, msg, gen)
        self._step(a, PeerConnected(self.now, b))
        self._step(b, PeerConnected(self.now, a))

    def _break(self, a: int, b: int) -> None:
        key = (a, b) if a < b else (b, a)
        if self.up.pop(key, None) is None:
            return
        for x, y in ((a, b), (b, a)):
            if self.peers[x].alive:
                self._step(x, PeerLost(self.now, y))

    def _ev_deliver(self, a: int, b: int, payload: object) -> None:
        msg: tuple[tuple[Notification, tuple[int, int]], int] = payload  # type: ignore[assignment]
        (n, state), gen = msg
        key = (a, b) if a < b else (b, a)
        if self.up.get(key) != gen:
            return  # the connection it travelled on is gone
        pb = self.peers[b]
        if pb.core is None:
            return
        if a in self.voters:
            self.seen[(b, a, n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.state)] = state
        self._step(b, NotificationReceived(self.now, a, n))

    def _ev_reset(self, a: int, b: int, _: object) -> None:
        self._fault()
        self._break(a, b)

    def _ev_dup(self, a: int, b: int, _: object) -> None:
        key = (a, b) if a < b else (b, a)
        gen = self.up.get(key)
        if gen is None:
            return
        self._fault()
        for x, y in ((a, b), (b, a)):
            msg = self.last_sent.get((x, y))
            if msg is not None:
                self._transmit(x, y, msg, gen)

    def _ev_partition(self, _a: int, _b: int, payload: object) -> None:
        self._fault()
        cut: frozenset[int] = payload  # type: ignore[assignment]
        for sid, p in self.peers.items():
            p.side = 1 if sid in cut else 0
        for p in self.peers.values():
            if p.zab is not LOOKING:
                self._push(self.now + self.spec.sync_limit_ms, _ZAB_CHECK, p.sid, p.gen)

    def _ev_heal(self, final: int, _b: int, _p: object) -> None:
        for p in self.peers.values():
            p.side = 0
        held, self.held = self.held, []
        for a, b, msg, gen in held:
            key = (a, b) if a < b else (b, a)
            if self.up.get(key) == gen:
                self._transmit(a, b, msg, gen)
        if final:
            for p in self.peers.values():
                if not p.alive:
                    self._ev_restart(p.sid, 0, None)
            self._check_stable()

    # -------------------------------------------------------------- peers, cores

    def _step(self, sid: int, event: object) -> None:
        p = self.peers[sid]
        core = p.core
        if core is None:
            return
        actions = core.step(event)  # type: ignore[arg-type]
        if actions:
            self._apply(p, actions)

    def _apply(self, p: _Peer, actions: list[Action]) -> None:
        sid = p.sid
        for act in actions:
            if isinstance(act, Send):
                self._send(sid, act.to, act.notification)
            elif isinstance(act, SetTimer):
                self._push(act.at, _TIMER, sid, p.inc, act.timer)
            elif isinstance(act, Decided):
                self._on_decided(p, act)
            elif isinstance(act, ConfigMismatch):  # pragma: no cover - one config here
                self._violation(f"peer {sid}: unexpected config mismatch {act}")

    def _ev_timer(self, sid: int, inc: int, timer: object) -> None:
        p = self.peers[sid]
        if p.inc == inc and p.core is not None:
            assert isinstance(timer, Timer)
            self._step(sid, TimerFired(self.now, timer))

    def _new_core(self, p: _Peer) -> None:
        p.core = self.core_factory(
            p.sid,
            self.verifier,
            all_voted_shortcut=self.spec.shortcuts,
            failover_shortcut=self.spec.shortcuts,
        )

    def _ev_start(self, sid: int, _b: int, _p: object) -> None:
        p = self.peers[sid]
        if p.alive or p.inc:
            return  # crashed (and maybe restarted) before it first started
        p.alive = True
        self._new_core(p)
        self._look(p)

    def _look(self, p: _Peer) -> None:
        """Back to LOOKING: leave the Zab phase, start a round."""
        self._leave_zab(p)
        self._step(p.sid, Start(self.now, p.zxid, p.epoch))

    def _ev_crash(self, sid: int, _b: int, _p: object) -> None:
        p = self.peers[sid]
        if not p.alive and p.inc == 0:
            p.inc = 1  # killed before its first start: it starts at its restart
            return
        if not p.alive:
            return
        self._fault()
        self._leave_zab(p)
        p.alive = False
        p.core = None
        p.inc += 1
        for q in self.all:
            if q != sid:
                self._break(sid, q)
                self.pending.pop((sid, q), None)
                self.last_sent.pop((sid, q), None)

    def _ev_restart(self, sid: int, _b: int, _p: object) -> None:
        p = self.peers[sid]
        if p.alive:
            return
        self._fault()
        self.restarts += 1
        p.alive = True
        p.inc += 1
        self._new_core(p)
        self._look(p)

    def _ev_failover(self, sid: int, _b: int, _p: object) -> None:
        p = self.peers[sid]
        if not p.alive or not p.established or self.now >= self.heal_time:
            return
        self.episodes.append(Episode("failover", self.now, self.result.messages))
        self.open_episode = self.episodes[-1]
        self._ev_crash(sid, 0, None)

    # -------------------------------------------------------------- decisions

    def _on_decided(self, p: _Peer, d: Decided) -> None:
        now = self.now
        res = self.result
        res.decisions += 1
        res.via[d.via.value] = res.via.get(d.via.value, 0) + 1
        vote = d.vote
        leader = vote.leader
        rnd = vote.election_epoch
        self._check_decision(p, d)
        # Observers are left out: voters never send them their changes of mind, only
        # replies, so an observer can settle on a proposal a heavy voter later dropped.
        if rnd == 1 and p.voter and now < self.first_fault and p.sid not in self.first_round:
            self.first_round[p.sid] = leader
        if p.voter and d.via in _LOOKING_VIA:
            # A restart starts the logical clock afresh: rounds compare between restarts.
            by_leader = self.round_deciders.setdefault((self.restarts, rnd), {})
            deciders = by_leader.setdefault(leader, set())
            deciders.add(p.sid)
        if p.voter:
            deciders = self.episode_deciders.setdefault((rnd, leader), set())
            deciders.add(p.sid)
            ep = self.open_episode
            if ep is not None and now >= ep.start and self.verifier.contains_quorum(deciders):
                ep.decided_at = now - ep.start
                ep.messages = res.messages - ep.messages_at_start
                self.open_episode = None
        # Enter the abstract Zab phase.
        p.gen += 1
        p.zab = d.state
        p.leader = leader
        p.decided_at = now
        p.attached = False
        if d.state is LEADING:
            p.learners = set()
            p.established = False
            self._push(now + self.spec.init_limit_ms, _LEADER_DEADLINE, p.sid, p.gen)
            self._try_establish(p)
        else:
            self._push(now + 2 * self._latency(), _ATTACH, p.sid, p.gen)

    def _check_decision(self, p: _Peer, d: Decided) -> None:
        vote = d.vote
        leader = vote.leader
        who = f"peer {p.sid} decided {d.state.name} {vote.short()} via {d.via.value}"
        # Invariant 3.
        if leader not in self.voters or self.verifier.weight(leader) == 0:
            self._violation(f"{who}: leader {leader} is an observer or has weight 0")
        # Invariant 1a: a genuine quorum.
        sids = [s for s, _ in d.quorum]
        if not self.verifier.contains_quorum(sids):
            self._violation(f"{who}: evidence {sids} is not a quorum")
        looking_path = d.via in _LOOKING_VIA
        # A non-voter's LOOKING-path "decision" rests on the current votes voters answer
        # non-voters with (stale zxid, ZOOKEEPER-1805): not an election, no invariant 2.
        elected = looking_path and p.voter
        for s, v in d.quorum:
            if s == p.sid:
                state = (p.epoch, p.zxid)
            else:
                key = (p.sid, s, v.leader, v.zxid, v.election_epoch, v.peer_epoch, v.state)
                got = self.seen.get(key)
                if got is None:
                    self._violation(f"{who}: vote {v.short()} of {s} was never received")
                    continue
                state = got
            if looking_path:
                if v.election_epoch != vote.election_epoch or v.leader != leader:
                    self._violation(f"{who}: evidence {v.short()} of {s} is another vote")
                # Invariant 2, for votes cast in the election (FOLLOWING/LEADING reports
                # carry the stale zxid of their own election, ZOOKEEPER-1805).
                if elected and v.state is LOOKING and (vote.peer_epoch, vote.zxid) < state:
                    self._violation(
                        f"{who}: voter {s} had (peer epoch, zxid) = ({state[0]}, "
                        f"{state[1]:#x}), newer than the leader's"
                    )

    # -------------------------------------------------------------- abstract Zab

    def _ev_attach(self, sid: int, gen: int, payload: object) -> None:
        p = self.peers[sid]
        if p.gen != gen or p.zab is LOOKING or not p.alive:
            return
        lp = self.peers[p.leader]
        if (
            lp.alive
            and lp.zab is LEADING
            and lp.leader == lp.sid
            and self._reachable(sid, lp.sid)
            and p.sid != lp.sid
        ):
            lp.learners.add(sid)
            p.attached = True
            if lp.established:
                self._sync(p, lp)
                self._check_stable()
            else:
                self._try_establish(lp)
            return
        refused = payload if isinstance(payload, int) else 0  # refusals so far
        if not self._reachable(sid, lp.sid):
            pass  # the SYN gets no answer: only the connect timeout (initLimit) ends it
        elif refused >= 4:
            self._look(p)  # Learner.connectToLeader: "retries exceeded" after 5 tries
            return
        else:
            refused += 1
        if self.now + 100 < p.decided_at + self.spec.init_limit_ms:
            self._push(self.now + 100, _ATTACH, sid, gen, refused)
        else:
            self._look(p)

    def _quorum_of(self, lp: _Peer) -> list[int]:
        members = [lp.sid]
        for s in lp.learners:
            q = self.peers[s]
            if q.alive and q.attached and q.leader == lp.sid and self._reachable(s, lp.sid):
                members.append(s)
        return members

    def _try_establish(self, lp: _Peer) -> None:
        if lp.established:
            return
        members = [s for s in self._quorum_of(lp) if s in self.voters]
        if not self.verifier.contains_quorum(members):
            return
        epoch = max(self.peers[s].epoch for s in members) + 1
        if epoch in self.established:
            self._violation(
                f"leader {lp.sid} and leader {self.established[epoch]} both established epoch "
                f"{epoch}"
            )
        self.established[epoch] = lp.sid
        lp.established = True
        lp.epoch = epoch
        lp.zxid = make_zxid(epoch, self.rng.randint(0, 3))
        self._step(lp.sid, EpochUpdated(self.now, epoch))
        for s in list(lp.learners):
            self._sync(self.peers[s], lp)
        if (
            "failover" in self.spec.faults
            and self.now < self.heal_time * 0.7
            and not any(e.name == "failover" for e in self.episodes)
        ):
            self._push(self.now + self.rng.uniform(0, 50), _FAILOVER, lp.sid)
        self._check_stable()

    def _sync(self, p: _Peer, lp: _Peer) -> None:
        p.epoch = lp.epoch
        counter = lp.zxid & 0xFFFFFFFF
        lag = self.rng.choice((0, 0, 1)) if counter else 0
        p.zxid = make_zxid(lp.epoch, counter - lag)
        self._step(p.sid, EpochUpdated(self.now, lp.epoch))

    def _leave_zab(self, p: _Peer) -> None:
        """``p`` stops leading or following (crash or back to LOOKING)."""
        was = p.zab
        p.gen += 1
        p.zab = LOOKING
        p.attached = False
        if was is LEADING:
            p.established = False
            for s in p.learners:
                q = self.peers[s]
                if q.zab is not LOOKING and q.leader == p.sid:
                    # The learner's socket to the leader closes: it notices at once.
                    self._push(self.now + self._latency(), _LOOK, s, q.gen)
            p.learners = set()
        elif was is not LOOKING:
            lp = self.peers[p.leader]
            if p.sid in lp.learners:
                lp.learners.discard(p.sid)
                if lp.zab is LEADING and lp.sid != p.sid:
                    self._push(self.now + self.spec.sync_limit_ms / 2, _ZAB_CHECK, lp.sid, lp.gen)

    def _ev_look(self, sid: int, gen: int, _p: object) -> None:
        p = self.peers[sid]
        if p.gen == gen and p.alive and p.zab is not LOOKING:
            self._look(p)

    def _ev_leader_deadline(self, sid: int, gen: int, _p: object) -> None:
        p = self.peers[sid]
        if p.gen == gen and p.alive and p.zab is LEADING and not p.established:
            self._look(p)

    def _ev_zab_check(self, sid: int, gen: int, _p: object) -> None:
        p = self.peers[sid]
        if p.gen != gen or not p.alive or p.zab is LOOKING:
            return
        if p.zab is LEADING:
            if not p.established:
                return  # the init-limit deadline handles it
            for s in [s for s in p.learners if not self._reachable(s, sid)]:
                # The leader drops the learner; the learner sees its socket close.
                p.learners.discard(s)
                q = self.peers[s]
                if q.zab is not LOOKING and q.leader == sid:
                    self._push(self.now + self._latency(), _LOOK, s, q.gen)
            members = [s for s in self._quorum_of(p) if s in self.voters]
            if not self.verifier.contains_quorum(members):
                self._look(p)
            return
        lp = self.peers[p.leader]
        if not (lp.alive and lp.zab is LEADING and self._reachable(sid, lp.sid)):
            self._look(p)

    def _ev_end(self, _a: int, _b: int, _p: object) -> None:
        self._check_stable()
        if not self.stable:
            states = ", ".join(
                f"{p.sid}:{p.zab.name}{'*' if p.established else ''}" for p in self.peers.values()
            )
            self._violation(
                f"liveness: no established leader with every voter synced "
                f"{self.spec.liveness_bound_ms:.0f} ms after the fault window ({states})"
            )
        self._heap.clear()

    def _check_stable(self) -> None:
        if self.now < self.heal_time or self.stable:
            return
        for p in self.peers.values():
            if p.zab is LEADING and p.established and p.alive:
                members = set(self._quorum_of(p))
                if all(s in members for s in self.voters):
                    self.stable = True
                return

    # ------------------------------------------------------------------ checks

    def _final_checks(self) -> None:
        for (_, rnd), by_leader in self.round_deciders.items():
            won = [ld for ld, s in by_leader.items() if self.verifier.contains_quorum(s)]
            if len(won) > 1:
                self._violation(f"round {rnd}: leaders {sorted(won)} each decided by a quorum")
        firsts = set(self.first_round.values())
        if len(firsts) > 1:
            self._violation(f"round 1 (before any fault): deciders chose {sorted(firsts)}")


def run_one(
    spec: Spec,
    seed: int,
    *,
    trace: bool = False,
    core_factory: Callable[..., FastLeaderElection] = FastLeaderElection,
) -> RunResult:
    """Simulate one run of ``spec`` with ``seed``."""
    return World(spec, seed, trace=trace, core_factory=core_factory).run()


__all__ = [
    "FAULT_KINDS",
    "Episode",
    "RunResult",
    "Spec",
    "Vote",
    "World",
    "random_spec",
    "run_one",
]
