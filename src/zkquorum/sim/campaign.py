"""Campaigns: many seeded runs, a summary, and a replay command for every violation.

Run ``i`` of a campaign with seed ``S`` uses seed ``S + i`` both for its ensemble (sizes,
quorum system, initial epochs and zxids, fault subset) and for its run, so
``zkquorum sim --seed S+i --runs 1`` with the same options replays it exactly.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from zkquorum.core.election import FastLeaderElection
from zkquorum.sim.world import FAULT_KINDS, RunResult, Spec, random_spec, run_one

DEFAULT_CLIENTS = 3


@dataclass(frozen=True, slots=True)
class Plan:
    """How to draw each run's ensemble.  ``None`` means: random per run."""

    voters: int | None = None
    observers: int | None = None
    faults: frozenset[str] | None = None
    quorum: str = "mixed"  # majority | hierarchical | mixed
    shortcuts: bool = True
    max_voters: int = 9
    max_observers: int = 3
    clients: int = DEFAULT_CLIENTS
    reconfig: bool = False
    """Membership changes: a majority config, reconfigEnabled, 0-2 joiners (``joiners``
    fixes the number) and a random schedule per run (:mod:`zkquorum.sim.reconfig`)."""
    joiners: int | None = None
    log_sync: bool | None = None
    """Txn-log sync (snapshotSizeFactor >= 0).  ``None``: on (3.8's default) without
    reconfig, off with it: syncing from the txn log files is ZOOKEEPER-2846 (a leader that
    was itself synced by SNAP sends a DIFF with holes and uncommitted txns), which the
    leader changes of a reconfig schedule bring about in about 1 run in 300."""

    @property
    def uses_log_sync(self) -> bool:
        return self.log_sync if self.log_sync is not None else not self.reconfig

    def spec_for(self, seed: int) -> Spec:
        rng = random.Random(seed)
        n = (self.voters, self.voters) if self.voters is not None else (1, self.max_voters)
        m = (
            (self.observers, self.observers)
            if self.observers is not None
            else (0, self.max_observers)
        )
        hier = {"majority": 0.0, "hierarchical": 1.0}.get(self.quorum, 0.3)
        j = (self.joiners, self.joiners) if self.joiners is not None else (0, 2)
        spec = random_spec(
            rng, voters=n, observers=m, faults=self.faults, shortcuts=self.shortcuts,
            hierarchical=hier, reconfig=self.reconfig, joiners=j,
        )  # fmt: skip
        return dataclasses.replace(spec, clients=self.clients, log_sync=self.uses_log_sync)

    def replay_args(self, seed: int) -> str:
        args = [f"--seed {seed}", "--runs 1"]
        if self.voters is not None:
            args.append(f"--peers {self.voters}")
        if self.observers is not None:
            args.append(f"--observers {self.observers}")
        if self.faults is not None:
            args.append(f"--faults {','.join(sorted(self.faults)) or 'none'}")
        if self.quorum != "mixed":
            args.append(f"--quorum {self.quorum}")
        if not self.shortcuts:
            args.append("--no-shortcut")
        if self.clients != DEFAULT_CLIENTS:
            args.append(f"--clients {self.clients}")
        if self.reconfig:
            args.append("--reconfig")
        if self.joiners is not None:
            args.append(f"--joiners {self.joiners}")
        if self.log_sync is not None:
            args.append("--log-sync" if self.log_sync else "--no-log-sync")
        return "zkquorum sim " + " ".join(args)


@dataclass(slots=True)
class Summary:
    runs: int = 0
    decisions: int = 0
    events: int = 0
    proposals: int = 0
    commits: int = 0
    client_ops: int = 0
    client_acked: int = 0
    client_open: int = 0
    lincheck_unknown: int = 0
    reconfigs: int = 0
    reconfig_requests: int = 0
    schedules: int = 0
    """Runs with a membership-change schedule (each carried out to its end, else the run
    reports a liveness violation)."""
    violations: list[tuple[int, str, str]] = field(default_factory=list)  # seed, spec, text
    times: dict[str, list[float]] = field(default_factory=dict)  # episode -> ms to decide
    messages: dict[str, list[int]] = field(default_factory=dict)
    undecided: dict[str, int] = field(default_factory=dict)
    via: dict[str, int] = field(default_factory=dict)

    def add(self, r: RunResult) -> None:
        self.runs += 1
        self.decisions += r.decisions
        self.events += r.events
        self.proposals += r.proposals
        self.commits += r.commits
        self.client_ops += r.client_ops
        self.client_acked += r.client_acked
        self.client_open += r.client_open
        self.lincheck_unknown += r.lincheck_unknown
        self.reconfigs += r.reconfigs
        self.reconfig_requests += r.reconfig_requests
        self.schedules += bool(r.spec.schedule)
        for text in r.violations:
            self.violations.append((r.seed, r.spec.describe(), text))
        for ep in r.episodes:
            if ep.decided_at is None:
                self.undecided[ep.name] = self.undecided.get(ep.name, 0) + 1
            else:
                self.times.setdefault(ep.name, []).append(ep.decided_at)
                self.messages.setdefault(ep.name, []).append(ep.messages)
        for k, v in r.via.items():
            self.via[k] = self.via.get(k, 0) + v

    @property
    def violating_seeds(self) -> list[int]:
        return sorted({s for s, _, _ in self.violations})

    def report(self, plan: Plan) -> list[str]:
        lines = [
            f"runs: {self.runs}  decisions: {self.decisions}  "
            f"invariant violations: {len(self.violations)} "
            f"(in {len(self.violating_seeds)} runs)  events: {self.events}",
            f"writes: {self.proposals} proposed, {self.commits} committed (Zab checked: one "
            "leader per epoch, epochs grow, synced prefixes, durable quorum commits, "
            "no committed txn lost)",
        ]
        if self.client_ops:
            lines.append(
                f"clients: {self.client_ops} operations, {self.client_acked} writes answered, "
                f"{self.client_open} open-ended (linearizable, no acknowledged write lost, "
                f"replies in order, sessions never go back; {self.lincheck_unknown} runs "
                "beyond the search budget)"
            )
        if self.schedules:
            lines.append(
                f"membership changes: {self.reconfigs} carried out in {self.schedules} runs "
                f"with a schedule ({self.reconfig_requests} reconfig requests; Zab checked "
                "against the config in force at each zxid, configs agreed at the end)"
            )
        for name in ("initial", "failover"):
            times = self.times.get(name, [])
            msgs = self.messages.get(name, [])
            und = self.undecided.get(name, 0)
            if not times and not und:
                continue
            if times:
                lines.append(
                    f"{name} election: {len(times)} decided, {und} not timed; virtual time to "
                    f"decide median {statistics.median(times):.1f} ms, max {max(times):.1f} ms; "
                    f"messages median {statistics.median(msgs):.0f}, "
                    f"mean {statistics.fmean(msgs):.1f}"
                )
            else:
                lines.append(f"{name} election: 0 decided, {und} not timed")
        if self.via:
            lines.append(
                "decided via: " + ", ".join(f"{k} {v}" for k, v in sorted(self.via.items()))
            )
        for seed, spec, text in self.violations[:20]:
            lines.append(f"VIOLATION seed={seed} [{spec}] {text}")
            lines.append(f"  replay: {plan.replay_args(seed)}")
        if len(self.violations) > 20:
            lines.append(f"... and {len(self.violations) - 20} more violations")
        return lines


def run_campaign(
    plan: Plan,
    seed: int,
    runs: int,
    *,
    core_factory: Callable[..., FastLeaderElection] = FastLeaderElection,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Run ``runs`` simulations with seeds ``seed``, ``seed + 1``, ..."""
    summary = Summary()
    for i in range(runs):
        s = seed + i
        summary.add(run_one(plan.spec_for(s), s, core_factory=core_factory))
        if progress is not None:
            progress(i + 1)
    return summary


def parse_faults(text: str | None) -> frozenset[str] | None:
    """``all``, ``none``, ``random`` (None) or a comma list of :data:`FAULT_KINDS`."""
    if text is None or text == "random":
        return None
    if text == "all":
        return frozenset(FAULT_KINDS)
    if text in ("none", ""):
        return frozenset()
    kinds = frozenset(k.strip() for k in text.split(",") if k.strip())
    unknown = sorted(kinds - set(FAULT_KINDS))
    if unknown:
        raise ValueError(
            f"unknown fault kind(s) {', '.join(unknown)}; known: {', '.join(FAULT_KINDS)}"
        )
    return kinds


def plans_covering_all_kinds(shortcuts: bool = True) -> Iterable[Plan]:
    """One plan per fault kind alone, plus the random mixture (used by the test suite)."""
    for kind in FAULT_KINDS:
        yield Plan(faults=frozenset({kind}), shortcuts=shortcuts)
    yield Plan(shortcuts=shortcuts)
