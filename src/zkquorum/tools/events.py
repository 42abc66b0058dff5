"""Event records written by ``zkquorum run --events FILE``, and what can be read from them.

One JSON object per line: ``{"t": wall seconds, "sid": N, "ev": KIND, ...}`` with KIND one
of ``looking`` (round, zxid), ``send``/``recv`` (peer, state, leader, zxid, round,
peer_epoch), ``decided`` (state, leader, round, peer_epoch, via, took_ms), ``established``
(state, leader, epoch) and ``phase-over`` (state, reason).  ``zkquorum cluster`` adds its
own records for what it does to the processes: ``launched``, ``killed``, ``stopped``,
``continued``, ``exited``.

Everything here is pure: records in, values or text out.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: Kinds written by the peers themselves.
PEER_KINDS = frozenset({"looking", "send", "recv", "decided", "established", "phase-over"})
#: Kinds written by a supervisor (``zkquorum cluster``) about a peer's process.
PROCESS_KINDS = frozenset({"launched", "killed", "stopped", "continued", "exited"})


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One record: when (wall seconds), which peer, what, and the rest of the fields."""

    t: float
    sid: int
    ev: str
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "sid": self.sid, "ev": self.ev, **self.fields}


def event_from_dict(record: Mapping[str, Any]) -> Event:
    """An :class:`Event` from one decoded record; ValueError when it is not one."""
    try:
        t = float(record["t"])
        sid = int(record["sid"])
        ev = str(record["ev"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an event record: {record!r}") from exc
    rest = {k: v for k, v in record.items() if k not in ("t", "sid", "ev")}
    return Event(t, sid, ev, rest)


def parse_line(line: str) -> Event | None:
    """One line of an events file; None for a blank or cut-off (partly written) line."""
    text = line.strip()
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    try:
        return event_from_dict(record)
    except ValueError:
        return None


def parse_lines(lines: Iterable[str]) -> list[Event]:
    """Every event of some lines, in time order (stable for equal times)."""
    events = [e for e in map(parse_line, lines) if e is not None]
    events.sort(key=lambda e: e.t)
    return events


def dump_lines(events: Iterable[Event]) -> str:
    return "".join(json.dumps(e.to_dict(), separators=(",", ":")) + "\n" for e in events)


# ---------------------------------------------------------------- votes and messages


@dataclasses.dataclass(frozen=True, slots=True)
class Vote:
    """What a notification carries (the proposed leader and what it is ordered by)."""

    state: str
    leader: int
    zxid: int
    round: int
    peer_epoch: int

    @classmethod
    def of(cls, event: Event) -> Vote:
        return cls(
            str(event.get("state", "LOOKING")),
            int(event.get("leader", 0)),
            int(event.get("zxid", 0)),
            int(event.get("round", 0)),
            int(event.get("peer_epoch", 0)),
        )

    def label(self) -> str:
        """Short: ``3 r1`` while looking, ``F:3 r1`` / ``L:3 r1`` / ``O:3 r1`` otherwise."""
        prefix = "" if self.state == "LOOKING" else self.state[:1] + ":"
        return f"{prefix}{leader_name(self.leader)} r{self.round}"

    def describe(self) -> str:
        return (
            f"{self.state} leader={self.leader} zxid=0x{self.zxid:x} "
            f"round={self.round} peer_epoch={self.peer_epoch}"
        )


def leader_name(sid: int) -> str:
    """A proposed leader; observers propose no one (Long.MIN_VALUE on the wire)."""
    return str(sid) if sid >= 0 else "none"


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One notification from ``src`` to ``dst``: sent and/or received (wall seconds)."""

    src: int
    dst: int
    vote: Vote
    sent: float | None
    received: float | None


def pair_messages(events: Sequence[Event], *, skew: float = 0.005) -> list[Message]:
    """Match every ``send`` with the ``recv`` of the same notification on the same link.

    A link is FIFO, but the connection manager keeps one unsent message per peer (a newer
    one replaces it) and re-sends the last one when a connection comes back.  So a receipt
    is matched with the earliest unmatched send of the same vote on the link, not later than
    the receipt (``skew`` allows for the two processes' clocks); a send left over was never
    delivered (``received`` None), a receipt left over was a re-send (``sent`` None).
    """
    pending: dict[tuple[int, int], list[tuple[Event, Vote]]] = {}
    messages: list[Message] = []
    ordered = sorted(events, key=lambda e: e.t)
    for e in ordered:
        if e.ev == "send":
            pending.setdefault((e.sid, int(e.get("peer", 0))), []).append((e, Vote.of(e)))
        elif e.ev == "recv":
            src = int(e.get("peer", 0))
            vote = Vote.of(e)
            queue = pending.get((src, e.sid), [])
            match = None
            for i, (sent, sent_vote) in enumerate(queue):
                if sent_vote == vote and sent.t <= e.t + skew:
                    match = i
                    break
            if match is None:
                messages.append(Message(src, e.sid, vote, None, e.t))
                continue
            # Sends queued before the match were replaced or lost: never delivered.
            for lost, lost_vote in queue[:match]:
                messages.append(Message(src, e.sid, lost_vote, lost.t, None))
            sent, _ = queue[match]
            del queue[: match + 1]
            messages.append(Message(src, e.sid, vote, sent.t, e.t))
    for (src, dst), queue in pending.items():
        for sent, vote in queue:
            messages.append(Message(src, dst, vote, sent.t, None))
    messages.sort(key=lambda m: m.sent if m.sent is not None else m.received or 0.0)
    return messages


# ---------------------------------------------------------------- outcomes of one trial


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What a trial (a cold start, or the time after a fault) led to, from ``since`` on.

    Times are wall seconds (None: did not happen).  ``leader``/``epoch`` are those of the
    first leader established after ``since``.
    """

    since: float
    first_looking: float | None
    quorum_looking: float | None
    leader: int | None
    round: int | None
    leader_decided: float | None
    leader_took_ms: int | None
    epoch: int | None
    leader_established: float | None
    all_established: float | None
    decided: Mapping[int, float]
    established: Mapping[int, float]
    messages: int

    def ms(self, t: float | None) -> float | None:
        return None if t is None else (t - self.since) * 1000.0

    @property
    def complete(self) -> bool:
        return self.all_established is not None


def outcome(
    events: Sequence[Event],
    since: float,
    *,
    voters: Iterable[int],
    peers: Iterable[int],
    exclude_leader: int | None = None,
) -> Outcome:
    """Read a trial's outcome from events at or after ``since``.

    ``voters`` decide what a quorum of LOOKING peers is (a simple majority); ``peers`` are
    the peers expected to end up established (the live ones).  ``exclude_leader`` skips a
    leader that is known to be gone (the one just killed or stopped).
    """
    voter_set = set(voters)
    peer_set = set(peers)
    looking: dict[int, float] = {}
    decided: dict[int, float] = {}
    established: dict[int, tuple[float, int, int]] = {}
    leading: dict[int, tuple[float, int, int]] = {}
    leader: int | None = None
    epoch: int | None = None
    leader_est: float | None = None
    messages = 0
    for e in sorted(events, key=lambda e: e.t):
        if e.t < since:
            continue
        if e.ev == "looking":
            looking.setdefault(e.sid, e.t)
            decided.pop(e.sid, None)
            established.pop(e.sid, None)
        elif e.ev == "send":
            messages += 1
        elif e.ev == "decided":
            decided[e.sid] = e.t
            if e.get("state") == "LEADING":
                leading[e.sid] = (e.t, int(e.get("round", 0)), int(e.get("took_ms", 0)))
        elif e.ev == "established":
            est_leader = int(e.get("leader", -1))
            est_epoch = int(e.get("epoch", -1))
            established[e.sid] = (e.t, est_leader, est_epoch)
            if e.get("state") == "LEADING" and e.sid != exclude_leader and leader_est is None:
                leader, epoch, leader_est = e.sid, est_epoch, e.t
        elif e.ev == "phase-over":
            established.pop(e.sid, None)
    if leader is None:  # no leader established yet: the latest that decided to lead, if any
        candidates = [(v[0], sid) for sid, v in leading.items() if sid != exclude_leader]
        if candidates:
            leader = max(candidates)[1]
    leader_decided, leader_round, took = (
        leading.get(leader, (None, None, None)) if (leader is not None) else (None, None, None)
    )
    majority = len(voter_set) // 2 + 1
    looking_times = sorted(t for sid, t in looking.items() if sid in voter_set)
    quorum_looking = looking_times[majority - 1] if len(looking_times) >= majority else None
    all_est: float | None = None
    if leader_est is not None and peer_set:
        done = [
            established[sid][0]
            for sid in peer_set
            if sid in established and established[sid][1] == leader and established[sid][2] == epoch
        ]
        if len(done) == len(peer_set):
            all_est = max(done)
    return Outcome(
        since=since,
        first_looking=min(looking.values()) if looking else None,
        quorum_looking=quorum_looking,
        leader=leader,
        round=leader_round,
        leader_decided=leader_decided,
        leader_took_ms=took,
        epoch=epoch,
        leader_established=leader_est,
        all_established=all_est,
        decided=decided,
        established={sid: v[0] for sid, v in established.items()},
        messages=messages,
    )


# ---------------------------------------------------------------- narration


class Narrator:
    """Turns events into the lines ``zkquorum cluster`` prints as they happen.

    Not every notification is printed: a peer's proposal is shown when it changes (who
    proposes whom), answers from peers outside an election once per asker, and every
    decision, establishment, end of a phase and process event.  ``verbose`` prints every
    notification sent and received.
    """

    def __init__(self, t0: float, *, verbose: bool = False) -> None:
        self.t0 = t0
        self.verbose = verbose
        self._proposal: dict[int, tuple[int, int]] = {}
        self._answered: set[tuple[int, int, Vote]] = set()

    def stamp(self, t: float) -> str:
        return f"{t - self.t0:+9.3f} s"

    def feed(self, e: Event) -> list[str]:
        text = self._describe(e)
        return [f"{self.stamp(e.t)}  peer {e.sid:<3} {text}"] if text else []

    def _describe(self, e: Event) -> str | None:
        g = e.get
        if e.ev == "looking":
            self._proposal.pop(e.sid, None)
            return f"LOOKING: a new election, round {g('round')} (last zxid 0x{g('zxid', 0):x})"
        if e.ev == "send":
            vote = Vote.of(e)
            if self.verbose:
                return f"-> {g('peer')}: {vote.describe()}"
            if vote.state == "LOOKING":
                key = (vote.leader, vote.round)
                if self._proposal.get(e.sid) == key:
                    return None
                self._proposal[e.sid] = key
                whom = (
                    "itself"
                    if vote.leader == e.sid
                    else f"peer {vote.leader}"
                    if vote.leader >= 0
                    else "no one (an observer does not vote)"
                )
                return (
                    f"proposes {whom} (round {vote.round}, zxid 0x{vote.zxid:x}, "
                    f"peer epoch {vote.peer_epoch})"
                )
            answer = (e.sid, int(g("peer", 0)), vote)
            if answer in self._answered:
                return None
            self._answered.add(answer)
            return (
                f"is {vote.state}: tells peer {g('peer')} its leader is {vote.leader} "
                f"(peer epoch {vote.peer_epoch})"
            )
        if e.ev == "recv":
            if self.verbose:
                return f"<- {g('peer')}: {Vote.of(e).describe()}"
            return None
        if e.ev == "decided":
            return (
                f"decided: {g('state')}, leader {g('leader')} (round {g('round')}, "
                f"via {g('via')}, election took {g('took_ms')} ms)"
            )
        if e.ev == "established":
            what = (
                "a quorum of learners synced"
                if g("state") == "LEADING"
                else f"synced with leader {g('leader')}"
            )
            return f"ESTABLISHED {g('state')} epoch {g('epoch')} ({what})"
        if e.ev == "phase-over":
            return f"{g('state')} ended: {g('reason')}"
        if e.ev == "launched":
            return f"launched (pid {g('pid')})"
        if e.ev == "killed":
            return f"SIGKILL sent (pid {g('pid')})"
        if e.ev == "stopped":
            return f"SIGSTOP sent (pid {g('pid')}): the process hangs, its sockets stay open"
        if e.ev == "continued":
            return f"SIGCONT sent (pid {g('pid')})"
        if e.ev == "exited":
            return f"process exited with status {g('status')}"
        return None


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of nothing")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0
