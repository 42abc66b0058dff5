"""Membership changes for the simulator: addresses, schedules and the reconfig requests.

A run with ``Spec.reconfig`` gives every server ``reconfigEnabled=true`` and its own
addresses (``10.0.H.L:2888:3888``, client port ``10.0.H.L:2181``: an incremental reconfig
refuses a joiner whose addresses another member already has, and one without a client
address).  Spare servers (``Spec.joiners``) are not in the initial config; each starts
with the initial members plus itself, as 3.8's procedure for adding a server asks.

A schedule is a tuple of steps, carried out one after the other by whichever leader is
established (``Leader.submit`` of a ``reconfig`` request through the real prep, in a
session of its own, authenticated as ``super``):

``remove:N``          N leaves (``leavingServers``)
``add:N``             N joins as a participant (``joiningServers``)
``remove-leader``     the established leader leaves (resolved when the request is made)
``add-back``          the server the last ``remove-leader`` removed joins again
``to-participant:N``  observer N becomes a participant (joins again with the new role)
``to-observer:N``     participant N becomes an observer

A step is done when the config in force at an established leader says so; until then it
is tried again (a request may fail: a reconfig in progress, no synced quorum of the new
config, a leader that went away).  Only majority configs change: 3.8 refuses incremental
changes of a hierarchical config.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from zkquorum.config.model import HostPort, LearnerType, QuorumServer
from zkquorum.config.verifier import MajorityVerifier, QuorumVerifier
from zkquorum.wire.client_records import ReconfigRequest

__all__ = [
    "STEP_KINDS",
    "Step",
    "host_of",
    "majority",
    "parse_step",
    "random_schedule",
    "request_for",
    "server",
    "step_done",
    "with_member",
]

STEP_KINDS = ("remove", "add", "remove-leader", "add-back", "to-participant", "to-observer")

Step = tuple[str, int | None]


def host_of(sid: int) -> str:
    return f"10.0.{(sid >> 8) & 0xFF}.{sid & 0xFF}"


def server(sid: int, role: LearnerType = LearnerType.PARTICIPANT) -> QuorumServer:
    """Server ``sid`` at its own addresses, with a client address."""
    host = host_of(sid)
    return QuorumServer(
        sid, (HostPort(host, 2888),), (HostPort(host, 3888),), role, HostPort(host, 2181)
    )


def majority(
    voters: Iterable[int], observers: Iterable[int] = (), version: int = 0
) -> MajorityVerifier:
    servers = {s: server(s) for s in voters}
    servers |= {s: server(s, LearnerType.OBSERVER) for s in observers}
    return MajorityVerifier(servers, version)


def with_member(verifier: QuorumVerifier, sid: int) -> MajorityVerifier:
    """``verifier``'s members plus ``sid`` as a participant, version 0: the config a
    joining server starts with."""
    servers = dict(verifier.all_members)
    servers[sid] = server(sid)
    return MajorityVerifier(servers, 0)


def parse_step(text: str) -> Step:
    kind, _, arg = text.partition(":")
    if kind not in STEP_KINDS:
        raise ValueError(f"unknown reconfig step {text!r}; kinds: {', '.join(STEP_KINDS)}")
    needs_sid = kind not in ("remove-leader", "add-back")
    if needs_sid != bool(arg):
        raise ValueError(f"reconfig step {text!r}: {kind} takes {'a sid' if needs_sid else 'none'}")
    return kind, int(arg) if arg else None


def random_schedule(
    rng: random.Random, voters: int, observers: int, joiners: int
) -> tuple[str, ...]:
    """A few membership changes for an ensemble of ``voters`` (sids 1..), ``observers``
    and ``joiners`` (the sids after them): pairs that take a server out and bring it back
    (a follower, the leader, an observer promoted and demoted), and joiners added (one
    maybe removed again), in a random order.  Never fewer than two voters, so that every
    step is a change 3.8 accepts."""
    pairs: list[list[str]] = []
    if voters >= 3:
        x = rng.randint(1, voters)
        pairs.append([f"remove:{x}", f"add:{x}"])
        if rng.random() < 0.7:
            pairs.append(["remove-leader", "add-back"])
    if observers and voters >= 2:
        y = rng.randint(voters + 1, voters + observers)
        pairs.append([f"to-participant:{y}", f"to-observer:{y}"])
    first_joiner = voters + observers + 1
    for j in range(first_joiner, first_joiner + joiners):
        group = [f"add:{j}"]
        if rng.random() < 0.3:
            group.append(f"remove:{j}")
        pairs.append(group)
    rng.shuffle(pairs)
    if rng.random() < 0.5 and len(pairs) > 1:
        pairs = pairs[: rng.randint(1, len(pairs))]
    return tuple(step for group in pairs for step in group)


def request_for(step: Step, target: int) -> ReconfigRequest:
    """The incremental reconfig request of ``step`` (``target``: its resolved sid)."""
    kind, _ = step
    if kind in ("remove", "remove-leader"):
        return ReconfigRequest(None, str(target), None, -1)
    role = LearnerType.OBSERVER if kind == "to-observer" else LearnerType.PARTICIPANT
    line = f"server.{target}={server(target, role).to_zk_string()}"
    return ReconfigRequest(line, None, None, -1)


def step_done(step: Step, target: int, config: QuorumVerifier) -> bool:
    """Whether ``config`` is what ``step`` (on ``target``) asked for."""
    kind, _ = step
    if kind in ("remove", "remove-leader"):
        return target not in config.all_members
    if kind == "to-observer":
        return target in config.observing_members
    return target in config.voting_members
