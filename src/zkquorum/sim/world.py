"""One simulated ensemble: the real peer cores over a seeded network and disk model.

Each node is one :class:`~zkquorum.core.peer.PeerCore` (FastLeaderElection, leader,
learner, database: the code the runtime runs), a simulated disk and simulated
connections.  Everything random comes from one ``random.Random(seed)``; events are
ordered by (virtual time, sequence number), so a seed gives the same run event for event.
Each :class:`~zkquorum.core.ready.Ready` is carried out as ``runtime/peer.py`` does it,
in its order: hard state, messages, io, append, snapshot, outcomes, wake_at.

The election network (a model of ``QuorumCnxManager`` over TCP)
    One connection per pair of peers, FIFO in each direction.  A message for a peer
    without a connection waits in a one-slot queue (the newest wins) and triggers a
    connection attempt; when a connection comes up each side sends its pending message or
    else resends the last message it sent on that link (``SendWorker`` start), and both
    cores get ``ElectionPeerUp``.  A connection that breaks (crash of a peer, or the
    ``loss`` fault: a reset) drops what is in flight and both live ends get
    ``ElectionPeerDown``.  A partition does not break connections (TCP keep-alive is off
    in 3.8): messages across it wait and arrive after the heal, new connections across it
    fail.

The quorum port
    ``OpenQuorumPort`` listens (``QuorumPortOpened``); ``ConnectToLeader`` tries every
    20 ms while the leader refuses (not listening, process down) and every 200 ms across
    a partition, until its deadline (``LeaderUnreachable``); a connection gives
    ``LearnerUp``/``LeaderUp``, then packets both ways (FIFO, link latency; SNAP as the
    packet, the snapshot and its signature); a close reaches the other end as
    ``LearnerDown``/``LeaderDown`` one latency later; a crash closes every connection of
    the process; a partition makes them silent (held until the heal; the cores' read
    timeouts notice).

The disk
    Epoch files and truncation are durable at once (``hard_state``); appended txns become
    durable at the simulated fsync (0.2-3 ms later, one in ten 5-60 ms; group commit), which answers
    ``LogSynced``; a truncation drains the log first; ``TakeSnapshot`` is written 1-10
    ms later (``SnapshotWritten``); ``ReadLog`` reads the log; ``ReloadDatabase`` and a
    restart load the newest durable snapshot plus the durable log after it.  A crash loses
    what was not durable.

Writes
    An established leader ``Propose``s a stream of setData txns on ``/h`` whose data is
    the whole history (the zxids) they extend, so each peer's history can be read from its
    data tree, SNAP included.

Clients (``Spec.clients``, :mod:`zkquorum.sim.clients`)
    An established peer serves clients with a :class:`~zkquorum.core.server.ServerCore`
    wired to its core as the runtime wires it (:mod:`zkquorum.core.seat`), dropped with
    every connection when the peer leaves broadcast or crashes.  Each client connects to
    a random peer (0.1-1 ms links, FIFO, outside the peers' partitions), opens a session,
    and issues creates, setData, deletes, getData and sync+getData on ``/k0``..``/k3``, two
    at a time at most; a lost connection (or 2/3 of the session timeout without an answer)
    makes it reconnect elsewhere with its session id, password and last zxid seen.  The
    clients draw from their own seeded generator; they stop when the ensemble is stable.

Membership changes (``Spec.reconfig``, :mod:`zkquorum.sim.reconfig`)
    Every server runs with ``reconfigEnabled=true`` at its own addresses (a majority
    config); ``Spec.joiners`` servers outside the initial config start with the members
    plus themselves.  The schedule's steps (remove a follower or the leader and add it
    back, an observer made a participant and back, joiners added and removed) go one
    after the other to whichever leader is established and may still commit: a
    ``createSession`` and a ``reconfig`` request of its own client side, as ``super``,
    through the real prep; a step is done when the config in force there is what it
    asked for, else it is asked again (every 60 ms, no reconfig in progress).  The
    schedule starts inside the fault window and goes on after it; the configs are on
    disk (``SaveConfig``: the one in force and the ``.next`` one, written at once), and a
    restart reads them.

Faults (``FAULT_KINDS``), all inside the fault window; at its end every partition heals
and every crashed peer is up again:
    ``delay`` slow links (1-40 ms instead of 0.5-2 ms) · ``reorder`` large per-message
    jitter (links stay FIFO, so messages of different links overtake each other) ·
    ``loss`` election connection resets · ``dup`` duplicates (a spurious reconnect resends
    the last message, the one duplicate 3.8 can produce) · ``partition`` random two-sided
    splits that heal · ``crash`` crash and restart of random peers (the durable state
    survives, the election starts afresh at round 1) · ``failover`` the established
    leader crashes.

Invariants (checked on every run; with reconfig, "quorum" is of the config the peer in
question had: the decider's, the leader's, the one in force at the zxid)
    1. Election.  (a) Every decision rests on a genuine quorum: votes that the voters
       really sent, of the decided round, for the decided vote (or, to join, FOLLOWING /
       LEADING votes really sent).  (b) In no round do two different leaders each get a
       quorum of deciders.  (c) Every voter that decided in the first round chose the same
       leader, when that round ended before the first fault.
    2. A LOOKING-path leader's (peer epoch, zxid) is at least that of every voter of the
       quorum that elected it (as the voter was when it sent its vote).
       (2 and 1(b) count only configs some server put in force: not the one a joiner
       starts with, by which it is a voter nobody else counts.)
    3. No observer or weight-0 server is ever chosen.
    4. Zab (:mod:`zkquorum.sim.checker`, over the recorded history): one established
       leader per epoch, NEWLEADER only after a quorum of ACKEPOCH, epochs only grow,
       synced learners hold a prefix of the leader's history, commits durable on a quorum
       and in zxid order, ACKs only for durable txns, no committed txn rolled back, and at
       the end every synced peer holds every committed txn in the same order.  With
       reconfig a commit is durable on a quorum of the config in force in its epoch (the
       leader's once established, then each reconfig it commits, read from the txn), of
       the newest config committed before it when that one is newer, for a reconfig of
       its new config too, and for a txn proposed while reconfigs of its epoch were
       pending of the config each of them took over from (old and new while pending).
    4'. Configs (reconfig): a config version has one membership wherever it is put in
       force; at the end every member of the final leader's config is synced with it,
       every synced peer has that config in force and the role it gives (a voter
       follows, an observer observes, a server it does not name follows without a vote:
       3.8's non-voting participant, as a removed follower stays).
    5. Clients (with ``Spec.clients``): writes and sync+reads linearizable with the final
       trees, no acknowledged write missing from a peer in broadcast at the end, replies
       in request order, no session seeing zxids or a key's versions go back.
    6. Liveness: once the fault window is over (all healed, all up), within
       ``Spec.liveness_bound_ms`` a leader is established and every voter is synced
       (with reconfig: every member of its config, after the whole schedule).
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import cast

from zkquorum.config.errors import ConfigError
from zkquorum.config.verifier import HierarchicalVerifier, MajorityVerifier, QuorumVerifier
from zkquorum.config.zoocfg import parse_config_string
from zkquorum.core import seat
from zkquorum.core.database import SNAPSHOT_SIZE_FACTOR, Database
from zkquorum.core.datatree import DataTree, Node
from zkquorum.core.election import Decided, FastLeaderElection, Via
from zkquorum.core.events import (
    ClientWrite,
    DatabaseReloaded,
    ElectionPeerDown,
    ElectionPeerUp,
    Event,
    LeaderDown,
    LeaderMessage,
    LeaderUnreachable,
    LeaderUp,
    LearnerDown,
    LearnerPacket,
    LearnerUp,
    LogRead,
    LogSynced,
    Propose,
    QuorumPortOpened,
    SnapshotWritten,
    Start,
    Tick,
    VoteReceived,
)
from zkquorum.core.peer import PeerCore, PeerSettings
from zkquorum.core.ready import (
    INF,
    CloseLeaderConnection,
    CloseLearner,
    CloseQuorumPort,
    ConnectToLeader,
    ElectionDecided,
    Established,
    LeadershipChanged,
    OpenQuorumPort,
    ReadLog,
    Ready,
    ReloadDatabase,
    SaveAcceptedEpoch,
    SaveConfig,
    SaveCurrentEpoch,
    SendSnapshotToLearner,
    SendToLeader,
    SendToLearner,
    SendVote,
    TakeSnapshot,
    TruncateLog,
)
from zkquorum.core.server import (
    ClientClosed,
    ClientConnected,
    ClientMessage,
    ServerCore,
    ServerEvent,
    ServerSettings,
)
from zkquorum.core.vote import Vote
from zkquorum.sim import checker as ck
from zkquorum.sim import reconfig as rc
from zkquorum.sim.clients import KEYS, MAX_OPS, PIPELINE, SimClient, check_clients
from zkquorum.sim.lincheck import Verdict
from zkquorum.wire.client import ClientRequest
from zkquorum.wire.client_records import ConnectRequest, ReconfigRequest
from zkquorum.wire.election import Notification, ServerState
from zkquorum.wire.jute import Id, StatPersisted
from zkquorum.wire.quorum import PacketType, QuorumMessage, QuorumPacket, decode_int_payload
from zkquorum.wire.reader import pack_int
from zkquorum.wire.snapshot import Snapshot, SnapshotSignature
from zkquorum.wire.txn import OpCode, SetDataTxn, Txn, TxnHeader
from zkquorum.wire.zxid import make_zxid, zxid_counter, zxid_epoch

FAULT_KINDS = ("delay", "reorder", "loss", "dup", "partition", "crash", "failover")

LOOKING = ServerState.LOOKING
FOLLOWING = ServerState.FOLLOWING
LEADING = ServerState.LEADING
OBSERVING = ServerState.OBSERVING
_LOOKING_VIA = (Via.FINALIZE, Via.ALL_VOTED, Via.FAILOVER)

TICK_MS = 100
WALL_OFFSET_MS = 1_700_000_000_000
HISTORY_PATH = "/h"
MAX_PROPOSALS = 60
DRAIN_MS = 400.0
WRITE_WINDOW_MS = 300.0
"""Writes go on at least this long (and through the fault window)."""

LINCHECK_BUDGET = 2000
"""Thousands of search steps the linearizability check of one run may take."""
OP_KINDS = ("create", "set", "delete", "get", "sget")
OP_WEIGHTS = (2, 3, 1, 2, 2)

# Event kinds, in the heap as (time, seq, kind, a, b, payload).
(
    _DELIVER, _TICK, _CONNECT, _START, _CRASH, _RESTART, _PARTITION, _HEAL, _RESET, _DUP,
    _END, _FAILOVER, _CORE, _QCONNECT, _QDELIVER, _FSYNC, _SNAPDONE, _PROPOSE, _CHECK, _STOP,
    _CLIENT, _CDELIVER, _RECONFIG,
) = range(23)  # fmt: skip
_KIND_NAMES = (
    "deliver", "tick", "connect", "start", "crash", "restart", "partition", "heal",
    "reset", "dup", "end", "failover", "core", "qconnect", "qdeliver", "fsync", "snapdone",
    "propose", "check", "stop", "client", "cdeliver", "reconfig",
)  # fmt: skip

RECONFIG_RETRY_MS = 60.0
"""How long the schedule waits before it asks an established leader again."""
RECONFIG_STEP_MS = 1000.0
"""What each membership change adds to the liveness bound (a leader removed by one is
replaced by an election)."""
ADMIN_SESSION = 0x7E00_0000_0000_0000
"""The first session id of the reconfig requests (one session per request)."""
SUPER = Id("super", "")


def history_of(tree: DataTree) -> tuple[int, ...]:
    """The zxids the tree went through (the data of ``/h``)."""
    node = tree.nodes.get(HISTORY_PATH)
    data = node.data if node is not None and node.data else b""
    return tuple(int.from_bytes(data[i : i + 8], "big") for i in range(0, len(data), 8))


def _encode_history(history: tuple[int, ...] | list[int]) -> bytes:
    return b"".join(z.to_bytes(8, "big") for z in history)


def history_txn(zxid: int, history: tuple[int, ...] | list[int], now: float) -> Txn:
    """The setData of ``/h`` whose data is ``history`` (ending with ``zxid``)."""
    header = TxnHeader(0, 0, zxid, int(WALL_OFFSET_MS + now), OpCode.SET_DATA)
    return Txn(header, SetDataTxn(HISTORY_PATH, _encode_history(history), len(history)))


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
    clients: int = 0
    """Simulated clients (each one session at a time, on any peer's client side)."""
    reconfig: bool = False
    """``reconfigEnabled=true`` on every server, each at its own addresses (a majority
    config: :mod:`zkquorum.sim.reconfig`)."""
    joiners: int = 0
    """Servers outside the initial config (sids after the observers), with reconfig."""
    schedule: tuple[str, ...] = ()
    """The membership changes, in order (:mod:`zkquorum.sim.reconfig` steps)."""
    log_sync: bool = True
    """A leader syncs a learner older than its committed window from its txn log files
    (``snapshotSizeFactor`` >= 0, 3.8's default); False: SNAP (``snapshotSizeFactor=-1``)."""

    @property
    def hierarchical(self) -> bool:
        return bool(self.groups)

    @property
    def servers(self) -> int:
        """Every server of the run: the initial members and the joiners."""
        return self.voters + self.observers + (self.joiners if self.reconfig else 0)

    @property
    def liveness_bound_ms(self) -> float:
        """Virtual ms after the fault window within which a leader must be established.

        A peer LOOKING through the whole window has a poll timeout of at most
        2*window + 200 ms when the window ends; after its next resend the election needs
        a few link delays and finalizeWait; one failed leader phase (a peer decided for a
        leader that cannot lead) costs init_limit, and a round started by its fallout
        once more 2*200 ms of back-off plus finalizeWait.
        """
        bound = 2 * self.fault_window_ms + 2 * self.init_limit_ms + self.sync_limit_ms + 2000
        return bound + RECONFIG_STEP_MS * len(self.schedule)

    def verifier(self) -> QuorumVerifier:
        """The initial config."""
        voters = range(1, self.voters + 1)
        observers = range(self.voters + 1, self.voters + self.observers + 1)
        if self.reconfig:
            return rc.majority(voters, observers)
        if self.groups:
            return HierarchicalVerifier.of(
                {g: list(m) for g, m in self.groups}, dict(self.weights), observers
            )
        return MajorityVerifier.of(voters, observers)

    def describe(self) -> str:
        kind = "hierarchical" if self.groups else "majority"
        faults = ",".join(sorted(self.faults)) or "none"
        text = f"{self.voters} voters + {self.observers} observers, {kind}, faults={faults}"
        if self.reconfig:
            text += f", {self.joiners} joiners, reconfig [{' '.join(self.schedule)}]"
        return text + (f", {self.clients} clients" if self.clients else "")


def random_spec(
    rng: random.Random,
    *,
    voters: tuple[int, int] = (1, 9),
    observers: tuple[int, int] = (0, 3),
    faults: frozenset[str] | None = None,
    shortcuts: bool = True,
    hierarchical: float = 0.3,
    reconfig: bool = False,
    joiners: tuple[int, int] = (0, 2),
) -> Spec:
    """A random ensemble: sizes, quorum system, weights (some 0) and a subset of faults;
    with ``reconfig``, a majority config, joiners and a schedule of membership changes."""
    if reconfig:
        return _random_reconfig_spec(rng, voters, observers, faults, shortcuts, joiners)
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


def _random_reconfig_spec(
    rng: random.Random,
    voters: tuple[int, int],
    observers: tuple[int, int],
    faults: frozenset[str] | None,
    shortcuts: bool,
    joiners: tuple[int, int],
) -> Spec:
    n = rng.randint(max(2, voters[0]), max(2, voters[1]))
    m = rng.randint(*observers)
    j = rng.randint(*joiners)
    if faults is None:
        faults = frozenset(k for k in FAULT_KINDS if rng.random() < 0.5)
    schedule = rc.random_schedule(rng, n, m, j)
    return Spec(
        n, m, faults=faults, shortcuts=shortcuts, reconfig=True, joiners=j, schedule=schedule
    )


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
    commits: int = 0
    proposals: int = 0
    client_ops: int = 0
    client_acked: int = 0
    client_open: int = 0
    lincheck_unknown: int = 0
    reconfigs: int = 0
    """Membership changes of the schedule carried out."""
    reconfig_requests: int = 0
    final_config: str = ""
    """With reconfig, the final leader's config: ``<version>: <sids>`` (``(o)``: observer)."""


class _Disk:
    """What survives a crash: epochs, the newest snapshot, the durable log, the configs
    (the one in force, and ``<zoo.cfg>.dynamic.next`` of a reconfig in progress)."""

    __slots__ = (
        "accepted", "config", "current", "durable", "log", "next", "pending", "snap",
        "snap_zxid",
    )  # fmt: skip

    def __init__(
        self,
        accepted: int,
        current: int,
        snap: Snapshot,
        log: list[Txn],
        config: QuorumVerifier,
    ) -> None:
        self.accepted = accepted
        self.current = current
        self.config = config
        self.next: QuorumVerifier | None = None
        self.snap = snap
        self.snap_zxid = 0
        self.log = log
        self.pending: list[Txn] = []
        self.durable = {t.header.zxid for t in log}

    def sync(self) -> int | None:
        """fsync: every pending txn is durable; the newest zxid, or None."""
        if not self.pending:
            return None
        self.log.extend(self.pending)
        self.durable.update(t.header.zxid for t in self.pending)
        last = max(t.header.zxid for t in self.pending)
        self.pending = []
        return last

    def truncate(self, zxid: int) -> None:
        self.log = [t for t in self.log if t.header.zxid <= zxid]
        self.durable = {t.header.zxid for t in self.log}

    def load(self, config_text: str) -> Database:
        """``FileTxnSnapLog#restore``: the snapshot, then the logged txns after it;
        /zookeeper/config shows ``config_text``."""
        tree = DataTree.from_snapshot(self.snap, self.snap_zxid)
        committed = []
        for txn in self.log:
            if txn.header.zxid > tree.last_processed_zxid:
                tree.apply(txn)
                committed.append(txn)
        tree.set_config(config_text)
        return Database(tree, committed)


class _QConn:
    """A learner's connection to a leader's quorum port."""

    __slots__ = ("cid", "fifo", "held", "leader", "leader_inc", "learner", "learner_inc", "open")

    def __init__(self, cid: int, leader: int, leader_inc: int, learner: int, inc: int) -> None:
        self.cid = cid
        self.leader = leader
        self.leader_inc = leader_inc
        self.learner = learner
        self.learner_inc = inc
        self.open = [True, True]  # [leader side, learner side]
        self.fifo = [0.0, 0.0]  # last delivery time towards [leader, learner]
        self.held: list[tuple[int, QuorumMessage | None]] = []


class _Node:
    __slots__ = (
        "alive",
        "chain",
        "committed_seen",
        "connect_gen",
        "core",
        "disk",
        "fsync_at",
        "hist",
        "inbox",
        "inc",
        "lead_config",
        "link",
        "listening",
        "phase_gen",
        "server",
        "sid",
        "side",
        "stepping",
        "wake_at",
    )  # fmt: skip

    def __init__(self, sid: int, disk: _Disk) -> None:
        self.sid = sid
        self.alive = False  # until its process starts
        self.core: PeerCore | None = None
        self.disk = disk
        self.inc = 0
        self.side = 0
        self.wake_at = INF
        self.fsync_at = INF
        self.listening = False
        self.link: int | None = None
        self.lead_config: QuorumVerifier | None = None
        self.connect_gen = 0
        self.phase_gen = 0
        self.chain: list[int] = []
        self.committed_seen = -1
        self.hist = b""
        self.server: ServerCore | None = None
        self.inbox: collections.deque[Event] = collections.deque()
        self.stepping = False


class _CConn:
    """A client's connection to a peer's client port."""

    __slots__ = ("cid", "client", "fifo", "inc", "open", "server", "sid")

    def __init__(self, cid: int, client: int, sid: int, inc: int) -> None:
        self.cid = cid
        self.client = client
        self.sid = sid
        self.inc = inc
        self.server: ServerCore | None = None
        """The server that took the connection (set by its first message)."""
        self.open = [True, True]  # [server side, client side]
        self.fifo = [0.0, 0.0]  # last delivery time towards [server, client]


def _base_tree(config_text: str) -> DataTree:
    tree = DataTree(config_text)
    tree.nodes[HISTORY_PATH] = Node(b"", None, StatPersisted())
    tree.nodes["/"].add_child(HISTORY_PATH)
    return tree


class World:
    """A run: ``World(spec, seed).run()``.  ``core_factory`` lets tests mutate the
    election; a test may monkeypatch the leader or learner classes."""

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
        """The initial config (every server's with reconfig off)."""
        self.voters = frozenset(self.verifier.voting_members)
        """The initial voters."""
        self.joiners = tuple(range(spec.voters + spec.observers + 1, spec.servers + 1))
        self.all = tuple(sorted(self.verifier.all_members)) + self.joiners
        self.config_text = self.verifier.to_zk_string()
        self.result = RunResult(seed, spec, trace=[] if trace else None)
        self.records: list[ck.Record] = []
        self.now = 0.0
        self._heap: list[tuple[float, int, int, int, int, object]] = []
        self._seq = 0
        faults = spec.faults
        self.lat_lo, self.lat_hi = (1.0, 40.0) if "delay" in faults else (0.5, 2.0)
        self.reorder = "reorder" in faults
        self.heal_time = spec.fault_window_ms if faults else 0.0
        self.deadline = self.heal_time + spec.liveness_bound_ms
        self.quiet_from = max(self.heal_time, WRITE_WINDOW_MS)
        self.first_fault = float("inf")
        tick = TICK_MS
        self.settings = {
            sid: PeerSettings(
                sid=sid,
                verifier=self.verifier,
                tick_time_ms=tick,
                init_limit=max(1, round(spec.init_limit_ms / tick)),
                sync_limit=max(1, round(spec.sync_limit_ms / tick)),
                connect_limit=max(1, round(spec.init_limit_ms / tick)),
                config_text=self.config_text,
                all_voted_shortcut=spec.shortcuts,
                failover_shortcut=spec.shortcuts,
                reconfig_enabled=spec.reconfig,
                snapshot_size_factor=SNAPSHOT_SIZE_FACTOR if spec.log_sync else -1.0,
            )
            for sid in self.all
        }
        self.nodes: dict[int, _Node] = {}
        self._initial_disks()
        # Election links, by ordered pair (a, b): connection state lives on (min, max).
        self.up: dict[tuple[int, int], int] = {}  # unordered pair -> generation if up
        self.gen: dict[tuple[int, int], int] = {}
        self.connecting: set[tuple[int, int]] = set()
        # A message travels with its sender's (epoch, zxid) at the time the core sent it.
        self.pending: dict[tuple[int, int], tuple[Notification, tuple[int, int]]] = {}
        self.last_sent: dict[tuple[int, int], tuple[Notification, tuple[int, int]]] = {}
        self.fifo: dict[tuple[int, int], float] = {}
        self.held: list[tuple[int, int, tuple[Notification, tuple[int, int]], int]] = []
        self.seen: dict[tuple[int, int, int, int, int, int, int], tuple[int, int]] = {}
        self.round_deciders: dict[tuple[int, int, str], dict[int, set[int]]] = {}
        """Deciders by (restarts, round, the config they counted by) and leader."""
        self.episode_deciders: dict[tuple[int, int], set[int]] = {}
        self.restarts = 0
        self.first_round: dict[int, int] = {}
        self.episodes: list[Episode] = []
        self.open_episode: Episode | None = None
        self.conns: dict[int, _QConn] = {}
        self._next_conn = 0
        self.held_conns: set[int] = set()
        self.proposals = 0
        self.commits = 0
        self.stable_at: float | None = None
        self.done = False
        self.crng = random.Random(seed * 1_000_003 + 7)
        self.clients = [SimClient(i + 1) for i in range(spec.clients)]
        self.cconns: dict[int, _CConn] = {}
        self._next_cconn = 0
        self.op_timer: set[int] = set()
        self.clients_stop = False
        self.final_trees: dict[int, DataTree] = {}
        # Membership changes.
        self.max_proposals = MAX_PROPOSALS + 20 * len(spec.schedule)
        self.schedule = [rc.parse_step(text) for text in spec.schedule]
        self.step_index = 0
        self.step_target: int | None = None
        self.removed_leader: int | None = None
        self.last_request = -INF
        self.admin_session = ADMIN_SESSION
        self.reconfig_txns: dict[int, QuorumVerifier] = {}
        """The config each reconfig txn proposes, by zxid (read from the logs)."""
        self.proposed_while: dict[int, tuple[int, ...]] = {}
        """The reconfigs pending when the leader proposed each zxid (those it may need)."""
        self.activated: dict[int, tuple[str, int]] = {}
        """Each config version put in force anywhere: its membership, and who first."""
        self.configs: dict[str, QuorumVerifier] = {}
        """The configs the election rounds were counted by (by their text)."""

    # ---------------------------------------------------------------- set-up

    def _initial_disks(self) -> None:
        """A common history of epoch ``base`` that each peer holds a prefix of; maybe one
        peer (the old leader) with one more txn nobody else logged."""
        rng = self.rng
        base = rng.randint(0, 3)
        chain = [make_zxid(base, i) for i in range(1, rng.randint(0, 4) + 1)]
        txns = [history_txn(z, chain[: i + 1], 0.0) for i, z in enumerate(chain)]
        snap = _base_tree(self.config_text).to_snapshot()
        old_leader = rng.choice(self.all) if rng.random() < 0.3 else None
        for sid in self.all:
            n = len(chain) if sid == old_leader else rng.randint(0, len(chain))
            log = list(txns[:n])
            if sid == old_leader:
                extra = make_zxid(base, len(chain) + 1)
                log.append(history_txn(extra, [*chain, extra], 0.0))
            # Every peer was synced in epoch ``base``; some already accepted the next one
            # (a leader's LEADERINFO reached them, the epoch never established).
            current = base
            accepted = current + rng.choice((0, 0, 1))
            disk = _Disk(accepted, current, snap, log, self.verifier)
            self.nodes[sid] = _Node(sid, disk)
        for sid in self.joiners:
            # A new server: empty, with the members it is told of plus itself.
            config = rc.with_member(self.verifier, sid)
            empty = _base_tree(config.to_zk_string()).to_snapshot()
            self.nodes[sid] = _Node(sid, _Disk(0, 0, empty, [], config))

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

    def _record(self, r: ck.Record) -> None:
        self.records.append(r)

    def _later(self, sid: int, at: float, make: Callable[[float], Event]) -> None:
        """Step ``sid``'s core with ``make(now)`` at ``at`` (dropped if it crashed)."""
        self._push(at, _CORE, sid, self.nodes[sid].inc, make)

    # ----------------------------------------------------------------- the run

    def run(self) -> RunResult:
        """Run to the end; the cores' log lines are muted meanwhile (thousands of runs)."""
        core_log = logging.getLogger("zkquorum.core")
        level = core_log.level
        core_log.setLevel(logging.CRITICAL + 1)
        try:
            return self._run()
        finally:
            core_log.setLevel(level)

    def _run(self) -> RunResult:
        spec, rng = self.spec, self.rng
        for sid in self.all:
            self._push(rng.uniform(0.0, spec.start_jitter_ms), _START, sid)
        self.episodes.append(Episode("initial", 0.0, 0))
        self.open_episode = self.episodes[0]
        self._schedule_faults()
        if self.heal_time:
            self._push(self.heal_time, _HEAL, 1)
        self._push(self.deadline, _END)
        self._push(self.quiet_from, _CHECK)
        for c in self.clients:
            self._push(self.crng.uniform(0.0, 100.0), _CLIENT, c.idx, 0, "connect")
        if self.schedule:
            self._push(rng.uniform(50.0, max(100.0, spec.fault_window_ms / 2)), _RECONFIG)
        handlers: tuple[Callable[[int, int, object], None], ...] = (
            self._ev_deliver, self._ev_tick, self._ev_connect, self._ev_start,
            self._ev_crash, self._ev_restart, self._ev_partition, self._ev_heal,
            self._ev_reset, self._ev_dup, self._ev_end, self._ev_failover, self._ev_core,
            self._ev_qconnect, self._ev_qdeliver, self._ev_fsync, self._ev_snapdone,
            self._ev_propose, self._ev_check, self._ev_stop, self._ev_client,
            self._ev_cdeliver, self._ev_reconfig,
        )  # fmt: skip
        heap = self._heap
        trace = self.result.trace
        events = 0
        while heap and not self.done:
            t, _, kind, a, b, payload = heapq.heappop(heap)
            self.now = t
            events += 1
            if trace is not None:
                shown = payload if kind not in (_CORE, _QDELIVER) else _describe(payload)
                trace.append(f"{t:.3f} {_KIND_NAMES[kind]} {a} {b} {shown!r}")
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

    # ------------------------------------------------------------------ election network

    def _reachable(self, a: int, b: int) -> bool:
        return self.nodes[a].side == self.nodes[b].side

    def _send(self, a: int, b: int, n: Notification) -> None:
        self.result.messages += 1
        key = (a, b) if a < b else (b, a)
        gen = self.up.get(key)
        core = self.nodes[a].core
        assert core is not None
        msg = (n, (core.current_epoch, core.db.last_txn_zxid))
        if gen is None:
            self.pending[(a, b)] = msg
            pb = self.nodes[b]
            if key not in self.connecting and pb.alive and self._reachable(a, b):
                self.connecting.add(key)
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
        pa, pb = self.nodes[a], self.nodes[b]
        if key in self.up or not (pa.alive and pb.alive and self._reachable(a, b)):
            return
        gen = self.gen.get(key, 0) + 1
        self.gen[key] = gen
        self.up[key] = gen
        for x, y in ((a, b), (b, a)):
            msg = self.pending.pop((x, y), None) or self.last_sent.get((x, y))
            if msg is not None:
                self._transmit(x, y, msg, gen)
        self._step(a, ElectionPeerUp(self.now, b))
        self._step(b, ElectionPeerUp(self.now, a))

    def _break(self, a: int, b: int) -> None:
        key = (a, b) if a < b else (b, a)
        if self.up.pop(key, None) is None:
            return
        for x, y in ((a, b), (b, a)):
            if self.nodes[x].alive:
                self._step(x, ElectionPeerDown(self.now, y))

    def _ev_deliver(self, a: int, b: int, payload: object) -> None:
        msg: tuple[tuple[Notification, tuple[int, int]], int] = payload  # type: ignore[assignment]
        (n, state), gen = msg
        key = (a, b) if a < b else (b, a)
        if self.up.get(key) != gen:
            return  # the connection it travelled on is gone
        if self.nodes[b].core is None:
            return
        self.seen[(b, a, n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.state)] = state
        self._step(b, VoteReceived(self.now, a, n))

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
        for sid, p in self.nodes.items():
            p.side = 1 if sid in cut else 0

    def _ev_heal(self, final: int, _b: int, _p: object) -> None:
        for p in self.nodes.values():
            p.side = 0
        held, self.held = self.held, []
        for a, b, msg, gen in held:
            key = (a, b) if a < b else (b, a)
            if self.up.get(key) == gen:
                self._transmit(a, b, msg, gen)
        conns, self.held_conns = self.held_conns, set()
        for cid in sorted(conns):
            c = self.conns[cid]
            items, c.held = c.held, []
            for direction, qmsg in items:
                self._qtransmit(c, direction, qmsg)
        if final:
            for p in self.nodes.values():
                if not p.alive:
                    self._ev_restart(p.sid, 0, None)

    # ------------------------------------------------------------------ quorum port

    def _qsend(self, c: _QConn, direction: int, msg: QuorumMessage | None) -> None:
        """``direction`` 0: towards the leader, 1: towards the learner; ``None``: a close."""
        if not self._reachable(c.leader, c.learner):
            c.held.append((direction, msg))
            self.held_conns.add(c.cid)
            return
        self._qtransmit(c, direction, msg)

    def _qtransmit(self, c: _QConn, direction: int, msg: QuorumMessage | None) -> None:
        at = max(self.now + self._latency(), c.fifo[direction] + 0.001)
        c.fifo[direction] = at
        self._push(at, _QDELIVER, c.cid, direction, msg)

    def _ev_qdeliver(self, cid: int, direction: int, payload: object) -> None:
        c = self.conns[cid]
        if not c.open[direction]:
            return
        msg: QuorumMessage | None = payload  # type: ignore[assignment]
        if direction == 0:
            n = self.nodes[c.leader]
            if not n.alive or n.inc != c.leader_inc:
                return
            if msg is None:
                c.open[0] = False
                self._step(n.sid, LearnerDown(self.now, cid))
                return
            if isinstance(msg, QuorumPacket) and msg.type == PacketType.ACKEPOCH:
                core = n.core
                leader = None if core is None else core.leader
                if leader is not None and decode_int_payload(msg.data) != -1:
                    self._record(ck.AckEpochReceived(self.now, n.sid, leader.epoch, c.learner))
            assert isinstance(msg, QuorumPacket)
            self._step(n.sid, LearnerPacket(self.now, cid, msg))
            return
        n = self.nodes[c.learner]
        if not n.alive or n.inc != c.learner_inc or n.link != cid:
            return
        if msg is None:
            c.open[1] = False
            n.link = None
            self._step(n.sid, LeaderDown(self.now, "EOF from the leader"))
            return
        self._step(n.sid, LeaderMessage(self.now, msg))

    def _close_side(self, c: _QConn, side: int) -> None:
        """Close ``c`` at one end (0 leader, 1 learner); the other end learns by EOF."""
        if not c.open[side]:
            return
        c.open[side] = False
        self._qsend(c, 1 - side, None)

    def _ev_qconnect(self, sid: int, gen: int, payload: object) -> None:
        n = self.nodes[sid]
        target, deadline = cast(tuple[int, float], payload)
        if not n.alive or n.connect_gen != gen:
            return
        if self.now >= deadline:
            self._step(sid, LeaderUnreachable(self.now))
            return
        t = self.nodes[target]
        if self._reachable(sid, target):
            if t.alive and t.listening:
                self._next_conn += 1
                c = _QConn(self._next_conn, target, t.inc, sid, n.inc)
                self.conns[c.cid] = c
                n.link = c.cid
                self._step(target, LearnerUp(self.now, c.cid))
                self._step(sid, LeaderUp(self.now))
                return
            retry = 20.0  # refused: the port is not open (yet), or the process is down
        else:
            retry = 200.0  # the SYN gets no answer
        self._push(min(self.now + retry, deadline), _QCONNECT, sid, gen, payload)

    # ------------------------------------------------------------------ the disk

    def _ev_fsync(self, sid: int, inc: int, _p: object) -> None:
        n = self.nodes[sid]
        if not n.alive or n.inc != inc:
            return
        n.fsync_at = INF
        zxid = n.disk.sync()
        if zxid is not None:
            self._step(sid, LogSynced(self.now, zxid))

    def _ev_snapdone(self, sid: int, inc: int, payload: object) -> None:
        n = self.nodes[sid]
        if not n.alive or n.inc != inc:
            return
        zxid, snap, sync = cast(tuple[int, Snapshot, bool], payload)
        if zxid >= n.disk.snap_zxid:
            n.disk.snap, n.disk.snap_zxid = snap, zxid
        if sync:
            self._step(sid, SnapshotWritten(self.now, zxid))

    # ------------------------------------------------------------------ peers, cores

    def _settings(self, n: _Node) -> PeerSettings:
        """The settings a start of ``n`` reads: with reconfig, its configs on disk."""
        settings = self.settings[n.sid]
        if not self.spec.reconfig:
            return settings
        disk = n.disk
        last_seen = disk.next if disk.next is not None else disk.config
        return dataclasses.replace(
            settings,
            verifier=disk.config,
            last_seen=disk.next,
            config_text=last_seen.to_zk_string(),
        )

    def _new_core(self, n: _Node) -> None:
        settings = self._settings(n)
        db = n.disk.load(n.disk.config.to_zk_string())
        core = PeerCore(settings, db, accepted_epoch=n.disk.accepted, current_epoch=n.disk.current)
        if self.core_factory is not FastLeaderElection:
            core.election = self.core_factory(
                n.sid,
                settings.verifier,
                min_notification_interval=settings.min_notification_interval,
                max_notification_interval=settings.max_notification_interval,
                all_voted_shortcut=self.spec.shortcuts,
                failover_shortcut=self.spec.shortcuts,
            )
        n.core = core
        n.hist = _encode_history(history_of(db.tree))
        n.wake_at = INF
        n.fsync_at = INF
        self._record(ck.NodeRestarted(self.now, n.sid, n.disk.accepted, n.disk.current))

    def _step(self, sid: int, event: Event) -> None:
        """Step ``sid``'s core with ``event`` once every earlier event's Ready is carried
        out (an event of the client side may arrive while one is)."""
        n = self.nodes[sid]
        if n.core is None or not n.alive:
            return
        n.inbox.append(event)
        if n.stepping:
            return
        n.stepping = True
        try:
            while n.inbox:
                core = n.core
                if core is None or not n.alive:
                    n.inbox.clear()
                    break
                ready = core.step(n.inbox.popleft())
                self._execute(n, core, ready)
                self._after(n, core)
        finally:
            n.stepping = False

    def _ev_core(self, sid: int, inc: int, payload: object) -> None:
        n = self.nodes[sid]
        if n.alive and n.inc == inc:
            make: Callable[[float], Event] = payload  # type: ignore[assignment]
            self._step(sid, make(self.now))

    def _ev_tick(self, sid: int, inc: int, payload: object) -> None:
        n = self.nodes[sid]
        if not n.alive or n.inc != inc or n.wake_at != payload:
            return
        n.wake_at = INF
        self._step(sid, Tick(self.now))

    def _execute(self, n: _Node, core: PeerCore, ready: Ready) -> None:
        sid, now, disk = n.sid, self.now, n.disk
        for h in ready.hard_state:
            match h:
                case SaveAcceptedEpoch(epoch):
                    disk.accepted = epoch
                    self._record(ck.EpochWritten(now, sid, "accepted", epoch))
                case SaveCurrentEpoch(epoch):
                    disk.current = epoch
                    self._record(ck.EpochWritten(now, sid, "current", epoch))
                case TruncateLog(zxid):
                    synced = disk.sync()  # the log drains first
                    if synced is not None:
                        self._later(sid, now, partial(LogSynced, zxid=synced))
                    disk.truncate(zxid)
                case SaveConfig(verifier, activated):
                    # The dynamic files are written atomically, at once.
                    if activated:
                        disk.config = verifier
                        if disk.next is not None and disk.next.version <= verifier.version:
                            disk.next = None
                        self._config_activated(n, verifier)
                    else:
                        disk.next = verifier
        for m in ready.messages:
            match m:
                case SendVote(to, notification):
                    self._send(sid, to, notification)
                case SendToLearner(cid, packet):
                    c = self.conns.get(cid)
                    if c is not None and c.open[0]:
                        if packet.type == PacketType.NEWLEADER:
                            epoch = zxid_epoch(packet.zxid)
                            self._record(
                                ck.NewLeaderSent(now, sid, epoch, c.learner, n.lead_config)
                            )
                        self._qsend(c, 1, packet)
                case SendSnapshotToLearner(cid, zxid, tree):
                    c = self.conns.get(cid)
                    if c is not None and c.open[0]:
                        self._qsend(c, 1, QuorumPacket(PacketType.SNAP, zxid))
                        self._qsend(c, 1, tree.to_snapshot())
                        self._qsend(c, 1, SnapshotSignature())
                case SendToLeader(packet):
                    if packet.type == PacketType.ACK:
                        self._check_ack(n, packet.zxid)
                    c = self.conns.get(n.link) if n.link is not None else None
                    if c is not None and c.open[1]:
                        self._qsend(c, 0, packet)
        for io in ready.io:
            match io:
                case OpenQuorumPort():
                    n.listening = True
                    self._later(sid, now, QuorumPortOpened)
                case CloseQuorumPort():
                    n.listening = False
                    for c in self.conns.values():
                        if c.leader == sid and c.leader_inc == n.inc:
                            self._close_side(c, 0)
                case ConnectToLeader(target, deadline):
                    n.connect_gen += 1
                    at = min(now + self._latency(), deadline)
                    self._push(at, _QCONNECT, sid, n.connect_gen, (target, deadline))
                case CloseLeaderConnection():
                    n.connect_gen += 1
                    if n.link is not None:
                        self._close_side(self.conns[n.link], 1)
                        n.link = None
                case CloseLearner(cid, _reason):
                    c = self.conns.get(cid)
                    if c is not None and c.open[0]:
                        self._close_side(c, 0)
                        self._later(sid, now, partial(LearnerDown, conn=cid))
                case ReadLog(cid, after, up_to, _factor):
                    logged = disk.log + disk.pending
                    txns: list[Txn] | None = [t for t in logged if after < t.header.zxid <= up_to]
                    if (
                        not logged
                        or logged[0].header.zxid > after + 1
                        or (logged[-1].header.zxid < up_to)
                    ):
                        txns = None
                    self._later(sid, now, partial(LogRead, conn=cid, txns=txns))
                case ReloadDatabase():
                    disk.sync()
                    db = disk.load(disk.config.to_zk_string())
                    reloaded = partial(
                        DatabaseReloaded,
                        database=db,
                        accepted_epoch=disk.accepted,
                        current_epoch=disk.current,
                    )
                    self._later(sid, now, reloaded)
        if ready.append:
            for txn in ready.append:
                if core.leader is not None and core.leader.established and self.reconfig_txns:
                    self._note_pending_reconfigs(n, txn.header.zxid)
                if txn.header.type == OpCode.RECONFIG:
                    self._reconfig_logged(txn)
            disk.pending.extend(ready.append)
            if n.fsync_at == INF:
                rng = self.rng
                slow = rng.random() < 0.1  # an fsync stall now and then
                n.fsync_at = now + (rng.uniform(5.0, 60.0) if slow else rng.uniform(0.2, 3.0))
                self._push(n.fsync_at, _FSYNC, sid, n.inc)
        for request in ready.snapshot:
            self._take_snapshot(n, core, request)
        for outcome in ready.outcomes:
            match outcome:
                case ElectionDecided(decided):
                    # The config the leader's discovery counts ACKEPOCHs by.
                    n.lead_config = core.membership.current
                    self._on_decided(n, decided)
                case Established(role, leader, epoch):
                    if self.clients:
                        settings = ServerSettings(server_id=sid, tick_time_ms=TICK_MS, quorum=True)
                        wall = int(WALL_OFFSET_MS + now)
                        n.server = ServerCore(settings, core.db, now=now, wall_ms=wall)
                    self._on_established(n, core, role, leader, epoch)
                case LeadershipChanged(value):
                    if not value.established and n.server is not None:
                        self._drop_server(n)
                case _:
                    if n.server is not None:
                        event = seat.server_event(outcome, now)
                        if event is not None:
                            self._server_step(n, event)
        at = ready.wake_at
        if at != n.wake_at:
            n.wake_at = at
            if at < INF:
                self._push(max(at, now), _TICK, sid, n.inc, at)

    def _take_snapshot(self, n: _Node, core: PeerCore, request: TakeSnapshot) -> None:
        snap = core.db.tree.to_snapshot()
        at = self.now + self.rng.uniform(1.0, 10.0)
        self._push(at, _SNAPDONE, n.sid, n.inc, (request.zxid, snap, request.sync))

    def _check_ack(self, n: _Node, zxid: int) -> None:
        disk = n.disk
        if zxid_counter(zxid) == 0:
            # A NEWLEADER ACK: every txn logged during the sync must be durable.
            durable = not any(t.header.zxid < zxid for t in disk.pending)
        else:
            durable = zxid in disk.durable
        self._record(ck.AckSent(self.now, n.sid, zxid, durable))

    def _after(self, n: _Node, core: PeerCore) -> None:
        """After a step: history rollbacks, the leader's commits."""
        node = core.db.tree.nodes.get(HISTORY_PATH)
        data = node.data if node is not None and node.data else b""
        if data != n.hist:
            if not data.startswith(n.hist):
                before = tuple(
                    int.from_bytes(n.hist[i : i + 8], "big") for i in range(0, len(n.hist), 8)
                )
                self._record(
                    ck.HistoryRolledBack(
                        self.now,
                        n.sid,
                        before,
                        history_of(core.db.tree),
                        "leader" if core.leader is not None else "learner",
                    )
                )
            n.hist = data
        leader = core.leader
        if leader is not None and leader.established and leader.last_committed > n.committed_seen:
            first = n.committed_seen
            n.committed_seen = leader.last_committed
            chain = set(n.chain)
            for z in range(first + 1, leader.last_committed + 1):
                durable = frozenset(s for s, x in self.nodes.items() if z in x.disk.durable)
                config = self.reconfig_txns.get(z)
                pending = self.proposed_while.get(z, ())
                self._record(
                    ck.Committed(
                        self.now, n.sid, leader.epoch, z, durable, z in chain, config, pending
                    )
                )
                self.commits += 1

    def _ev_start(self, sid: int, _b: int, _p: object) -> None:
        n = self.nodes[sid]
        if n.alive or n.inc:
            return  # crashed (and maybe restarted) before it first started
        n.alive = True
        self._new_core(n)
        self._step(sid, Start(self.now))

    def _ev_crash(self, sid: int, _b: int, _p: object) -> None:
        n = self.nodes[sid]
        if not n.alive and n.inc == 0:
            n.inc = 1  # killed before its first start: it starts at its restart
            return
        if not n.alive:
            return
        self._fault()
        self._drop_server(n)
        n.alive = False
        n.core = None
        n.inbox.clear()
        n.inc += 1
        n.listening = False
        n.link = None
        n.disk.pending = []  # not durable: lost
        for c in self.conns.values():
            if c.leader == sid and c.open[0]:
                self._close_side(c, 0)
            if c.learner == sid and c.open[1]:
                self._close_side(c, 1)
        for q in self.all:
            if q != sid:
                self._break(sid, q)
                self.pending.pop((sid, q), None)
                self.last_sent.pop((sid, q), None)

    def _ev_restart(self, sid: int, _b: int, _p: object) -> None:
        n = self.nodes[sid]
        if n.alive:
            return
        self._fault()
        self.restarts += 1
        n.alive = True
        n.inc += 1
        self._new_core(n)
        self._step(sid, Start(self.now))

    def _ev_failover(self, sid: int, gen: int, _p: object) -> None:
        n = self.nodes[sid]
        core = n.core
        if not n.alive or core is None or self.now >= self.heal_time or n.phase_gen != gen:
            return
        if core.leader is None or not core.leader.established:
            return
        self.episodes.append(Episode("failover", self.now, self.result.messages))
        self.open_episode = self.episodes[-1]
        self._ev_crash(sid, 0, None)

    # -------------------------------------------------------------- writes

    def _ev_propose(self, sid: int, gen: int, _p: object) -> None:
        n = self.nodes[sid]
        core = n.core
        if not n.alive or core is None or n.phase_gen != gen or self.stable_at is not None:
            return
        leader = core.leader
        if leader is None or not leader.established:
            return
        if self.proposals < self.max_proposals:
            self.proposals += 1
            zxid = leader.next_zxid()
            n.chain.append(zxid)
            self._step(sid, Propose(self.now, history_txn(zxid, n.chain, self.now)))
        self._push(self.now + self.rng.expovariate(1 / 25.0), _PROPOSE, sid, gen)

    # -------------------------------------------------------------- membership changes

    def _reconfig_leader(self) -> int | None:
        """An established leader that may still commit (the one to ask)."""
        for sid, n in self.nodes.items():
            core = n.core
            leader = None if core is None or not n.alive else core.leader
            if leader is not None and leader.established and leader.allowed_to_commit:
                return sid
        return None

    def _ev_reconfig(self, _a: int, _b: int, _p: object) -> None:
        """The schedule: ask the established leader for the next membership change, and
        move on once the config in force there is what the step asked for."""
        if self.done or self.step_index >= len(self.schedule):
            return
        sid = self._reconfig_leader()
        if sid is None:
            self._push(self.now + 20.0, _RECONFIG)
            return
        core = self.nodes[sid].core
        assert core is not None
        m = core.membership
        step = self.schedule[self.step_index]
        kind, arg = step
        target = self.step_target
        if target is not None and not m.in_progress and rc.step_done(step, target, m.current):
            self.result.reconfigs += 1
            if kind == "remove-leader":
                self.removed_leader = target
            self.step_index += 1
            self.step_target = None
            self.last_request = -INF
            if self.step_index < len(self.schedule):
                self._push(self.now + self.rng.uniform(0.0, 150.0), _RECONFIG)
            else:
                self._check_stable()
            return
        if kind == "remove-leader":
            if target is None or target in m.current.voting_members:
                target = sid  # the leader now (the one asked before may have crashed)
        elif kind == "add-back":
            target = self.removed_leader
        else:
            target = arg
        if target is None:  # add-back with no leader removed: nothing to do
            self.step_index += 1
            self._push(self.now, _RECONFIG)
            return
        self.step_target = target
        if not m.in_progress and self.now - self.last_request >= RECONFIG_RETRY_MS:
            self.last_request = self.now
            self._request_reconfig(sid, rc.request_for(step, target))
        self._push(self.now + 20.0, _RECONFIG)

    def _request_reconfig(self, sid: int, request: ReconfigRequest) -> None:
        """A reconfig request to leader ``sid``'s own client side, as ``super``, in a
        session of its own: createSession, then reconfig (the real prep decides)."""
        self.result.reconfig_requests += 1
        self.admin_session += 1
        session = self.admin_session
        now = self.now
        self._step(sid, ClientWrite(now, session, 0, OpCode.CREATE_SESSION, pack_int(30_000)))
        body = request.encode()
        self._step(sid, ClientWrite(now, session, 1, OpCode.RECONFIG, body, (SUPER,)))

    def _note_pending_reconfigs(self, n: _Node, zxid: int) -> None:
        """Leader ``n`` proposes ``zxid``: the reconfigs of its epoch it proposed before,
        not committed yet (as the commits it made tell), must be acked with it."""
        epoch = zxid_epoch(zxid)
        pending = tuple(
            r for r in self.reconfig_txns if zxid_epoch(r) == epoch and n.committed_seen < r < zxid
        )
        if pending:
            self.proposed_while[zxid] = pending

    def _reconfig_logged(self, txn: Txn) -> None:
        """A reconfig txn reached a log: remember the config it proposes, by zxid."""
        zxid = txn.header.zxid
        if zxid in self.reconfig_txns or not isinstance(txn.record, SetDataTxn):
            return
        try:
            config = parse_config_string((txn.record.data or b"").decode())
        except ConfigError:
            return
        self.reconfig_txns[zxid] = config

    def _config_activated(self, n: _Node, config: QuorumVerifier) -> None:
        """A config in force at ``n``: one version, one membership, everywhere."""
        text = config.to_zk_string()
        first = self.activated.setdefault(config.version, (text, n.sid))
        if first[0] != text:
            self._violation(
                f"peer {n.sid} put config version {config.version:x} in force with members "
                f"{sorted(config.all_members)}, peer {first[1]} with other ones"
            )

    # -------------------------------------------------------------- decisions

    def _on_established(
        self, n: _Node, core: PeerCore, role: ServerState, leader: int, epoch: int
    ) -> None:
        history = history_of(core.db.tree)
        n.phase_gen += 1
        if role is LEADING:
            config = core.membership.current
            self._record(ck.LeaderEstablished(self.now, n.sid, epoch, history, config))
            n.chain = list(history)
            assert core.leader is not None
            n.committed_seen = core.leader.last_committed
            self._push(self.now + self.rng.expovariate(1 / 25.0), _PROPOSE, n.sid, n.phase_gen)
            if (
                "failover" in self.spec.faults
                and self.now < self.heal_time * 0.7
                and not any(e.name == "failover" for e in self.episodes)
            ):
                self._push(self.now + self.rng.uniform(0, 50), _FAILOVER, n.sid, n.phase_gen)
        else:
            self._record(ck.LearnerSynced(self.now, n.sid, leader, epoch, history))
        self._check_stable()

    def _election_config(self, p: _Node) -> QuorumVerifier:
        """The config in force at ``p`` (its election must count by it)."""
        core = p.core
        assert core is not None
        return core.membership.current

    def _on_decided(self, p: _Node, d: Decided) -> None:
        now = self.now
        res = self.result
        res.decisions += 1
        res.via[d.via.value] = res.via.get(d.via.value, 0) + 1
        vote = d.vote
        leader = vote.leader
        rnd = vote.election_epoch
        config = self._election_config(p)
        text = config.to_zk_string()
        self.configs.setdefault(text, config)
        voter = p.sid in config.voting_members and self._in_force_somewhere(config, text)
        self._check_decision(p, d, config, voter)
        if (
            rnd == 1
            and voter
            and text == self.config_text
            and now < self.first_fault
            and p.sid not in self.first_round
        ):
            self.first_round[p.sid] = leader
        if voter and d.via in _LOOKING_VIA:
            by_leader = self.round_deciders.setdefault((self.restarts, rnd, text), {})
            deciders = by_leader.setdefault(leader, set())
            deciders.add(p.sid)
        if voter:
            deciders = self.episode_deciders.setdefault((rnd, leader), set())
            deciders.add(p.sid)
            ep = self.open_episode
            if ep is not None and now >= ep.start and config.contains_quorum(deciders):
                ep.decided_at = now - ep.start
                ep.messages = res.messages - ep.messages_at_start
                self.open_episode = None

    def _in_force_somewhere(self, config: QuorumVerifier, text: str) -> bool:
        """Whether ``config`` is the initial one or was put in force by some server: not
        the config a joiner starts with (the members and itself), by which it is a voter
        nobody else counts."""
        if text == self.config_text:
            return True
        first = self.activated.get(config.version)
        return first is not None and first[0] == text

    def _check_decision(self, p: _Node, d: Decided, config: QuorumVerifier, voter: bool) -> None:
        """Against ``config``: the one ``p`` had when it decided (``voter``: ``p`` is a
        voter of it, and it is a config some server put in force)."""
        vote = d.vote
        leader = vote.leader
        who = f"peer {p.sid} decided {d.state.name} {vote.short()} via {d.via.value}"
        if self.spec.reconfig:
            who += f" (config {config.version:x})"
        if leader not in config.voting_members or config.weight(leader) == 0:
            self._violation(f"{who}: leader {leader} is an observer or has weight 0")
        sids = [s for s, _ in d.quorum]
        if not config.contains_quorum(sids):
            self._violation(f"{who}: evidence {sids} is not a quorum")
        looking_path = d.via in _LOOKING_VIA
        elected = looking_path and voter
        core = p.core
        assert core is not None
        for s, v in d.quorum:
            if s == p.sid:
                state = (core.current_epoch, core.db.last_txn_zxid)
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
                if elected and v.state is LOOKING and (vote.peer_epoch, vote.zxid) < state:
                    self._violation(
                        f"{who}: voter {s} had (peer epoch, zxid) = ({state[0]}, "
                        f"{state[1]:#x}), newer than the leader's"
                    )

    # -------------------------------------------------------------- the end

    def _synced_with(self, leader: int) -> list[int]:
        out = []
        for sid, n in self.nodes.items():
            core = n.core
            if not n.alive or core is None or not core.leadership.established:
                continue
            if core.leadership.leader == leader or sid == leader:
                out.append(sid)
        return out

    def _stable_leader(self) -> int | None:
        """An established leader with every voter synced (with reconfig: every member of
        its config, no reconfig in progress, and still allowed to commit)."""
        for sid, n in self.nodes.items():
            core = n.core
            leader = None if core is None or not n.alive else core.leader
            if leader is not None and leader.established and core is not None:
                synced = set(self._synced_with(sid))
                members: Iterable[int] = self.voters
                if self.spec.reconfig:
                    m = core.membership
                    if m.in_progress or not leader.allowed_to_commit:
                        continue
                    members = m.current.all_members
                if core.leadership.is_leader and all(v in synced for v in members):
                    return sid
        return None

    def _check_stable(self) -> None:
        if self.now < self.quiet_from or self.stable_at is not None:
            return
        if self.step_index < len(self.schedule):
            return  # the membership changes are not over
        if self._stable_leader() is not None:
            self.stable_at = self.now  # no more proposals: let the last ones commit
            self.clients_stop = True
            self._push(self.now + DRAIN_MS, _STOP)

    def _ev_check(self, _a: int, _b: int, _p: object) -> None:
        self._check_stable()
        if self.stable_at is None:
            self._push(self.now + 50.0, _CHECK)

    def _ev_stop(self, _a: int, _b: int, _p: object) -> None:
        leader = self._stable_leader()
        if leader is None:
            self._stable_lost()
            return
        core = self.nodes[leader].core
        assert core is not None and core.leader is not None
        histories = {
            s: history_of(c.db.tree)
            for s in self._synced_with(leader)
            if (c := self.nodes[s].core) is not None
        }
        self._record(ck.Final(self.now, leader, core.leader.epoch, histories))
        self.final_trees = {
            s: c.db.tree for s in self._synced_with(leader) if (c := self.nodes[s].core) is not None
        }
        if self.spec.reconfig:
            self._check_final_configs(leader)
        self.done = True

    def _check_final_configs(self, leader: int) -> None:
        """Every peer synced with the final leader is in force with its config, in the
        role that config gives it: a voter follows, an observer observes, a server the
        config does not name follows without a vote (3.8's non-voting participant)."""
        core = self.nodes[leader].core
        assert core is not None
        final = core.membership.current
        members = " ".join(
            f"{s}{'' if s in final.voting_members else '(o)'}" for s in sorted(final.all_members)
        )
        self.result.final_config = f"{final.version:x}: {members}"
        for sid in self._synced_with(leader):
            c = self.nodes[sid].core
            assert c is not None
            mine = c.membership.current
            if mine.version != final.version or mine.to_zk_string() != final.to_zk_string():
                self._violation(
                    f"at the end, peer {sid} synced with leader {leader} has config "
                    f"{mine.version:x} ({mine.describe_quorum()}), the leader {final.version:x}"
                )
            role = c.leadership.role
            expected: tuple[ServerState, ...]
            if sid in final.observing_members:
                expected = (OBSERVING,)
            elif sid in final.voting_members:
                expected = (LEADING, FOLLOWING)
            else:
                expected = (FOLLOWING,)
            if role not in expected:
                kind = (
                    "an observer"
                    if sid in final.observing_members
                    else "a voter"
                    if sid in final.voting_members
                    else "not a member"
                )
                self._violation(
                    f"at the end, peer {sid} is {role.name} but {kind} of config {final.version:x}"
                )

    def _stable_lost(self) -> None:
        """The drain ended without a stable ensemble: look again until the deadline."""
        self.stable_at = None
        self._push(self.now + 50.0, _CHECK)

    def _ev_end(self, _a: int, _b: int, _p: object) -> None:
        states = ", ".join(
            f"{n.sid}:{n.core.leadership.role.name if n.core else 'DOWN'}"
            f"{'*' if n.core and n.core.leadership.established else ''}"
            for n in self.nodes.values()
        )
        todo = ""
        if self.step_index < len(self.schedule):
            todo = f"; membership changes left: {' '.join(self.spec.schedule[self.step_index :])}"
        self._violation(
            f"liveness: no established leader with every voter synced "
            f"{self.spec.liveness_bound_ms:.0f} ms after the fault window ({states}){todo}"
        )
        self.done = True

    # ------------------------------------------------------------------ checks

    def _final_checks(self) -> None:
        for (_, rnd, text), by_leader in self.round_deciders.items():
            config = self.configs[text]
            won = [ld for ld, s in by_leader.items() if config.contains_quorum(s)]
            if len(won) > 1:
                self._violation(f"round {rnd}: leaders {sorted(won)} each decided by a quorum")
        firsts = set(self.first_round.values())
        if len(firsts) > 1:
            self._violation(f"round 1 (before any fault): deciders chose {sorted(firsts)}")
        for text in ck.check_history(self.records, self.verifier):
            self.result.violations.append(f"zab: {text}")
        self.result.commits = self.commits
        self.result.proposals = self.proposals
        if self.clients:
            self._check_clients()

    def _check_clients(self) -> None:
        res = self.result
        violations, verdict = check_clients(
            self.clients, self.final_trees, self.now, LINCHECK_BUDGET
        )
        res.violations += violations
        res.lincheck_unknown += verdict is Verdict.UNKNOWN
        for c in self.clients:
            res.client_ops += len(c.history)
            for e in c.history:
                res.client_open += e.ret is None
                res.client_acked += e.is_write and e.ret is not None and e.err == 0

    # ------------------------------------------------------------------ clients

    def _clat(self) -> float:
        return self.crng.uniform(0.1, 1.0)

    def _cto_server(self, c: _CConn, msg: ConnectRequest | ClientRequest | None) -> None:
        at = max(self.now + self._clat(), c.fifo[0] + 0.001)
        c.fifo[0] = at
        self._push(at, _CDELIVER, c.cid, 0, msg)

    def _cto_client(self, c: _CConn, data: bytes | None) -> None:
        at = max(self.now + self._clat(), c.fifo[1] + 0.001)
        c.fifo[1] = at
        self._push(at, _CDELIVER, c.cid, 1, data)

    def _server_step(self, n: _Node, event: ServerEvent) -> None:
        """One step of ``n``'s client side, carried out as ``runtime/peer.py`` does."""
        server = n.server
        if server is None:
            return
        out = server.step(event)
        for conn, data in out.sends:
            c = self.cconns.get(conn)
            if c is not None and c.open[0]:
                self._cto_client(c, data)
        closed = []
        for conn in out.closes:
            c = self.cconns.get(conn)
            if c is not None and c.open[0]:
                c.open[0] = False
                self._cto_client(c, None)
                closed.append(conn)
        for core_event in seat.core_events(out, self.now):
            self._step(n.sid, core_event)
        for conn in closed:
            if n.server is server:
                self._server_step(n, ClientClosed(self.now, conn))

    def _drop_server(self, n: _Node) -> None:
        """Out of broadcast (or crashed): the client side is gone, every client dropped."""
        n.server = None
        for c in self.cconns.values():
            if c.sid == n.sid and c.open[0]:
                c.open[0] = False
                self._cto_client(c, None)

    def _ev_cdeliver(self, cid: int, direction: int, payload: object) -> None:
        c = self.cconns[cid]
        if not c.open[direction]:
            return
        if direction == 1:
            self._client_receive(c, cast(bytes | None, payload))
            return
        n = self.nodes[c.sid]
        msg = cast(ConnectRequest | ClientRequest | None, payload)
        if not n.alive or n.inc != c.inc:
            c.open[0] = False  # refused, or reset by the restarted process
            self._cto_client(c, None)
            return
        if msg is None:
            c.open[0] = False
            if c.server is not None and n.server is c.server:
                self._server_step(n, ClientClosed(self.now, cid))
            return
        server = n.server
        if server is None or (c.server is not None and c.server is not server):
            c.open[0] = False  # "ZooKeeperServer not running"
            self._cto_client(c, None)
            return
        if c.server is None:
            c.server = server
            self._server_step(n, ClientConnected(self.now, cid, f"10.0.1.{c.client}"))
        self._server_step(n, ClientMessage(self.now, cid, msg))

    def _ev_client(self, idx: int, cid: int, payload: object) -> None:
        cl = self.clients[idx - 1]
        match payload:
            case "connect":
                if cl.conn is None and not cl.done:
                    self._client_connect(cl)
            case "op":
                self.op_timer.discard(idx)
                self._client_op(cl)
            case "check":
                self._client_check(cl, cid)

    def _client_connect(self, cl: SimClient) -> None:
        if self.clients_stop:
            cl.done = True
            return
        rng = self.crng
        peers = [s for s in self.all if s != cl.last_peer] or list(self.all)
        sid = rng.choice(peers)
        self._next_cconn += 1
        c = _CConn(self._next_cconn, cl.idx, sid, self.nodes[sid].inc)
        self.cconns[c.cid] = c
        cl.reconnects += 1
        self._cto_server(c, cl.connect_request(self.now, c.cid, sid))
        self._push(self.now + cl.timeout * 2 / 3, _CLIENT, cl.idx, c.cid, "check")

    def _client_lost(self, cl: SimClient) -> None:
        cl.lost()
        self._push(self.now + self.crng.uniform(1.0, 30.0), _CLIENT, cl.idx, 0, "connect")

    def _client_receive(self, c: _CConn, data: bytes | None) -> None:
        cl = self.clients[c.client - 1]
        if data is None:
            c.open[1] = False
            if cl.conn == c.cid:
                self._client_lost(cl)
            return
        if cl.conn != c.cid:
            return
        was_open = cl.state == "open"
        if not cl.receive(self.now, data):
            c.open[1] = False
            self._cto_server(c, None)
            self._client_lost(cl)
            return
        if cl.state == "open" and not was_open:
            self._schedule_op(cl, 0.0)

    def _client_check(self, cl: SimClient, cid: int) -> None:
        """``ClientCnxn``'s read timeout: nothing heard for 2/3 of the session timeout
        while waiting for an answer drops the connection."""
        if cl.conn != cid:
            return
        limit = cl.timeout * 2 / 3
        waiting = cl.state == "connecting" or bool(cl.outstanding)
        if waiting and self.now - cl.last_recv >= limit:
            c = self.cconns[cid]
            c.open[1] = False
            self._cto_server(c, None)
            self._client_lost(cl)
            return
        at = cl.last_recv + limit if waiting else self.now + limit / 2
        self._push(max(at, self.now + 1.0), _CLIENT, cl.idx, cid, "check")

    def _schedule_op(self, cl: SimClient, mean: float) -> None:
        if cl.idx in self.op_timer:
            return
        self.op_timer.add(cl.idx)
        delay = self.crng.expovariate(1 / mean) if mean > 0 else 0.0
        self._push(self.now + delay, _CLIENT, cl.idx, 0, "op")

    def _client_op(self, cl: SimClient) -> None:
        if cl.state != "open" or cl.conn is None:
            return
        if self.clients_stop or cl.ops >= MAX_OPS:
            cl.done = True
            return
        if cl.busy < PIPELINE:
            rng = self.crng
            kind = rng.choices(OP_KINDS, OP_WEIGHTS)[0]
            key = rng.choice(KEYS)
            c = self.cconns[cl.conn]
            for req in cl.next_op(self.now, kind, key, rng.random() < 0.5):
                self._cto_server(c, req)
        self._schedule_op(cl, 20.0)


def _describe(payload: object) -> str:
    if isinstance(payload, QuorumPacket):
        return f"packet {payload.type} {payload.zxid:#x}"
    if payload is None:
        return "close"
    if callable(payload):
        return "event"
    return type(payload).__name__


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
    "history_of",
    "history_txn",
    "random_spec",
    "run_one",
]
