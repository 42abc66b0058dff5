"""The command handler of the election scenario files (tests/testdata/election/*.txt).

Commands (``key=value`` arguments; numbers may be hex, ``MIN`` is Java's Long.MIN_VALUE):

* ``config voters=1,2,3 observers=4 group.1=1,2 weight.2=0 version=0``: the ensemble.
* ``peer sid=1 [shortcuts=on|off|all-voted|failover]``: a core under test.
* ``start sid t zxid epoch`` / ``recv sid from t state leader zxid round epoch [version]
  [config=mine|TEXT]`` (TEXT with ``/`` for line breaks) / ``fire sid t timer`` /
  ``lost sid peer t`` / ``connected sid peer t`` / ``synced sid t epoch``: one event;
  prints the actions.
* ``state sid``: one line of core state.
* ``predicate new=leader,zxid,epoch cur=leader,zxid,epoch``: totalOrderPredicate.
* ``tracker ref=VOTE`` with input lines ``sid: VOTE`` (VOTE = leader,zxid,round,epoch,STATE
  [,version]): the vote tracker of ``getVoteTracker`` over majority of ``config``.
* ``checkleader sid clock leader round`` with the same input lines: ``checkLeader``.
* ``elect [zxid.N=..] [epoch.N=..] [down=..] [until=..]``: run every peer to a decision over
  a lossless network with 1 ms links, in a fixed order; print each peer's outcome.
"""

from __future__ import annotations

import heapq

from zkquorum.config.verifier import HierarchicalVerifier, MajorityVerifier, QuorumVerifier
from zkquorum.core.election import (
    Action,
    ConfigMismatch,
    Decided,
    EpochUpdated,
    Event,
    FastLeaderElection,
    NotificationReceived,
    PeerConnected,
    PeerLost,
    Send,
    SetTimer,
    Start,
    Timer,
    TimerFired,
)
from zkquorum.core.vote import Vote, total_order
from zkquorum.wire.election import Notification, ServerState
from zkquorum.wire.zxid import LONG_MIN


def num(text: str) -> int:
    if text == "MIN":
        return LONG_MIN
    return int(text, 0)


def show(value: int) -> str:
    return "MIN" if value == LONG_MIN else (hex(value) if value > 9 else str(value))


def show_n(n: Notification) -> str:
    return (
        f"{n.state.name} leader={show(n.leader)} zxid={show(n.zxid)} "
        f"round={n.election_epoch} epoch={show(n.peer_epoch)}"
    )


def show_vote(v: Vote) -> str:
    return (
        f"leader={show(v.leader)} zxid={show(v.zxid)} round={v.election_epoch} "
        f"epoch={show(v.peer_epoch)}"
    )


def parse_vote(text: str) -> Vote:
    f = [x.strip() for x in text.split(",")]
    state = ServerState[f[4]] if len(f) > 4 else ServerState.LOOKING
    version = num(f[5]) if len(f) > 5 else 0
    return Vote(num(f[0]), num(f[1]), num(f[2]), num(f[3]), state, version)


def format_actions(actions: list[Action]) -> str:
    lines: list[str] = []
    i = 0
    while i < len(actions):
        a = actions[i]
        if isinstance(a, Send):
            to = [a.to]
            while (
                i + 1 < len(actions)
                and isinstance(actions[i + 1], Send)
                and actions[i + 1].notification == a.notification  # type: ignore[union-attr]
            ):
                i += 1
                to.append(actions[i].to)  # type: ignore[union-attr]
            lines.append(f"send {','.join(map(str, to))}: {show_n(a.notification)}")
        elif isinstance(a, SetTimer):
            lines.append(f"timer {a.timer.value} at={a.at:g}")
        elif isinstance(a, Decided):
            q = ",".join(str(s) for s, _ in a.quorum)
            lines.append(f"decided {a.state.name} {show_vote(a.vote)} via={a.via.value} quorum={q}")
        elif isinstance(a, ConfigMismatch):
            lines.append(f"config-mismatch from={a.from_sid} version={a.version:#x}: {a.reason}")
        i += 1
    return "\n".join(lines) if lines else "(no actions)"


class Env:
    def __init__(self) -> None:
        self.verifier: QuorumVerifier = MajorityVerifier.of([1, 2, 3])
        self.peers: dict[int, FastLeaderElection] = {}

    def handle(self, cmd: str, args: dict[str, str], inp: list[str]) -> str:
        return getattr(self, "cmd_" + cmd.replace("-", "_"))(args, inp)  # type: ignore[no-any-return]

    # ----------------------------------------------------------------- setup

    def cmd_config(self, args: dict[str, str], _inp: list[str]) -> str:
        voters = [num(x) for x in args.get("voters", "").split(",") if x]
        observers = [num(x) for x in args.get("observers", "").split(",") if x]
        version = num(args.get("version", "0"))
        groups = {
            num(k[6:]): [num(x) for x in v.split(",")]
            for k, v in args.items()
            if k.startswith("group.")
        }
        if groups:
            weights = {num(k[7:]): num(v) for k, v in args.items() if k.startswith("weight.")}
            self.verifier = HierarchicalVerifier.of(groups, weights, observers, version)
        else:
            self.verifier = MajorityVerifier.of(voters, observers, version)
        self.peers = {}
        return self.verifier.describe_quorum()

    def cmd_peer(self, args: dict[str, str], _inp: list[str]) -> str:
        sid = num(args["sid"])
        sc = args.get("shortcuts", "on")
        self.peers[sid] = FastLeaderElection(
            sid,
            self.verifier,
            all_voted_shortcut=sc in ("on", "all-voted"),
            failover_shortcut=sc in ("on", "failover"),
        )
        core = self.peers[sid]
        role = "voter" if core.is_voter else "non-voter"
        return f"peer {sid}: {role}, shortcuts {sc}"

    # ---------------------------------------------------------------- events

    def _step(self, args: dict[str, str], event: Event) -> str:
        return format_actions(self.peers[num(args["sid"])].step(event))

    def cmd_start(self, args: dict[str, str], _inp: list[str]) -> str:
        ev = Start(
            float(args.get("t", "0")), num(args.get("zxid", "0")), num(args.get("epoch", "0"))
        )
        return self._step(args, ev)

    def cmd_recv(self, args: dict[str, str], _inp: list[str]) -> str:
        version = num(args.get("version", "2"))
        cfg = args.get("config", "mine")
        if version <= 1:
            text = None
        elif cfg == "mine":
            text = self.verifier.to_zk_string()
        else:
            text = cfg.replace("/", "\n")
        n = Notification(
            ServerState[args.get("state", "LOOKING")],
            num(args["leader"]),
            num(args.get("zxid", "0")),
            num(args.get("round", "1")),
            num(args.get("epoch", "0")),
            version,
            text,
        )
        return self._step(
            args, NotificationReceived(float(args.get("t", "0")), num(args["from"]), n)
        )

    def cmd_fire(self, args: dict[str, str], _inp: list[str]) -> str:
        ev = TimerFired(float(args["t"]), Timer(args.get("timer", "notify")))
        return self._step(args, ev)

    def cmd_lost(self, args: dict[str, str], _inp: list[str]) -> str:
        return self._step(args, PeerLost(float(args.get("t", "0")), num(args["peer"])))

    def cmd_connected(self, args: dict[str, str], _inp: list[str]) -> str:
        return self._step(args, PeerConnected(float(args.get("t", "0")), num(args["peer"])))

    def cmd_synced(self, args: dict[str, str], _inp: list[str]) -> str:
        return self._step(args, EpochUpdated(float(args.get("t", "0")), num(args["epoch"])))

    def cmd_state(self, args: dict[str, str], _inp: list[str]) -> str:
        return self.peers[num(args["sid"])].describe()

    # ------------------------------------------------------------ pure rules

    def cmd_predicate(self, args: dict[str, str], _inp: list[str]) -> str:
        nl, nz, ne = (num(x) for x in args["new"].split(","))
        cl, cz, ce = (num(x) for x in args["cur"].split(","))
        return str(total_order(nl, nz, ne, cl, cz, ce, self.verifier.weight(nl))).lower()

    def _votes(self, inp: list[str]) -> dict[int, Vote]:
        votes = {}
        for line in inp:
            sid, _, v = line.partition(":")
            votes[num(sid.strip())] = parse_vote(v)
        return votes

    def cmd_tracker(self, args: dict[str, str], inp: list[str]) -> str:
        ref = parse_vote(args["ref"])
        acks = sorted(s for s, v in self._votes(inp).items() if ref.matches(v))
        quorum = self.verifier.contains_quorum(acks)
        return f"acks={','.join(map(str, acks)) or '-'} quorum={str(quorum).lower()}"

    def cmd_checkleader(self, args: dict[str, str], inp: list[str]) -> str:
        core = self.peers[num(args["sid"])]
        core.logical_clock = num(args["clock"])
        ok = core._check_leader(self._votes(inp), num(args["leader"]), num(args["round"]))
        return str(ok).lower()

    # ------------------------------------------------------------------ elect

    def cmd_elect(self, args: dict[str, str], _inp: list[str]) -> str:
        down = {num(x) for x in args.get("down", "").split(",") if x}
        until = float(args.get("until", "60000"))
        heap: list[tuple[float, int, int, Event]] = []
        seq = 0
        decided: dict[int, str] = {}

        def apply(sid: int, now: float, actions: list[Action]) -> None:
            nonlocal seq
            for a in actions:
                seq += 1
                if isinstance(a, Send):
                    if a.to in self.peers and a.to not in down:
                        ev: Event = NotificationReceived(now + 1, sid, a.notification)
                        heapq.heappush(heap, (now + 1, seq, a.to, ev))
                elif isinstance(a, SetTimer):
                    heapq.heappush(heap, (a.at, seq, sid, TimerFired(a.at, a.timer)))
                elif isinstance(a, Decided):
                    decided[sid] = (
                        f"{a.state.name} leader={a.vote.leader} round={a.vote.election_epoch} "
                        f"via={a.via.value} at={now:g}"
                    )

        for sid in sorted(self.peers):
            if sid in down:
                continue
            ev = Start(0, num(args.get(f"zxid.{sid}", "0")), num(args.get(f"epoch.{sid}", "0")))
            apply(sid, 0, self.peers[sid].step(ev))
        while heap and heap[0][0] <= until:
            now, _, sid, ev = heapq.heappop(heap)
            apply(sid, now, self.peers[sid].step(ev))
        lines = []
        for sid in sorted(self.peers):
            if sid in down:
                lines.append(f"{sid}: down")
            else:
                lines.append(f"{sid}: {decided.get(sid, 'LOOKING (no decision)')}")
        return "\n".join(lines)
