"""``zkquorum sim``: a campaign of simulated ensembles (and their clients) under faults.

Exit status 0 only when no invariant was violated (1 otherwise, 2 for a usage error).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from zkquorum.sim.campaign import DEFAULT_CLIENTS, Plan, parse_faults, run_campaign
from zkquorum.sim.world import FAULT_KINDS


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sim",
        help="simulate the peer cores (election and Zab) under faults and check invariants",
        description=(
            "Run seeded simulations of an ensemble of real peer cores (election, leader, "
            "learner, database, client side) writing txns and serving simulated clients "
            "under network faults, crashes and failovers; check the election's and Zab's "
            "invariants and the clients' histories; print a summary.  Run i uses "
            "seed S+i, so a violation is replayed with --seed S+i --runs 1."
        ),
    )
    p.add_argument("--peers", type=int, default=None, help="voters per run (default: 1-9)")
    p.add_argument("--observers", type=int, default=None, help="observers per run (default: 0-3)")
    p.add_argument("--runs", type=int, default=100, help="number of runs (default 100)")
    p.add_argument("--seed", type=int, default=1, help="seed of the first run (default 1)")
    p.add_argument(
        "--faults",
        default="random",
        help=(
            "comma list of fault kinds, or all, none, random (a random subset per run, "
            f"the default); kinds: {','.join(FAULT_KINDS)}"
        ),
    )
    p.add_argument(
        "--quorum",
        choices=("majority", "hierarchical", "mixed"),
        default="mixed",
        help="quorum system (default: mixed, 30%% hierarchical)",
    )
    p.add_argument(
        "--clients",
        type=int,
        default=DEFAULT_CLIENTS,
        help=(
            f"simulated clients per run (default {DEFAULT_CLIENTS}; 0: no client traffic): "
            "sessions on any peer, creates, setData, deletes, reads and sync+reads of a few "
            "znodes, checked for linearizability and lost acknowledged writes"
        ),
    )
    p.add_argument(
        "--no-shortcut",
        action="store_true",
        help="always wait finalizeWait, as ZooKeeper 3.8 does",
    )
    p.add_argument(
        "--reconfig",
        action="store_true",
        help=(
            "membership changes under the faults: reconfigEnabled, a majority config, "
            "joiners, and a random schedule per run (remove a follower and add it back, "
            "remove the leader and add it back, an observer made a participant and back, "
            "joiners added) asked of the established leader; Zab checked against the "
            "config in force at each zxid"
        ),
    )
    p.add_argument(
        "--joiners",
        type=int,
        default=None,
        help="with --reconfig: servers outside the initial config (default: 0-2 per run)",
    )
    p.add_argument(
        "--log-sync",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=(
            "sync learners older than the leader's committed window from its txn log "
            "(snapshotSizeFactor >= 0; default: on, off with --reconfig: ZOOKEEPER-2846)"
        ),
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from zkquorum.cli.main import CliError

    if args.runs < 1:
        raise CliError("--runs must be at least 1")
    if args.peers is not None and not 1 <= args.peers <= 255:
        raise CliError("--peers must be between 1 and 255")
    if args.observers is not None and not 0 <= args.observers <= 255:
        raise CliError("--observers must be between 0 and 255")
    if not 0 <= args.clients <= 64:
        raise CliError("--clients must be between 0 and 64")
    if args.joiners is not None and not (args.reconfig and 0 <= args.joiners <= 16):
        raise CliError("--joiners needs --reconfig and must be between 0 and 16")
    if args.reconfig and args.quorum == "hierarchical":
        raise CliError("--reconfig changes majority configs only")
    try:
        faults = parse_faults(args.faults)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    plan = Plan(
        voters=args.peers,
        observers=args.observers,
        faults=faults,
        quorum=args.quorum,
        shortcuts=not args.no_shortcut,
        clients=args.clients,
        reconfig=args.reconfig,
        joiners=args.joiners,
        log_sync=args.log_sync,
    )
    started = time.perf_counter()
    summary = run_campaign(plan, args.seed, args.runs)
    elapsed = time.perf_counter() - started
    for line in summary.report(plan):
        print(line)
    print(f"wall time: {elapsed:.1f} s, {1000 * elapsed / args.runs:.1f} ms per run")
    sys.stdout.flush()
    return 1 if summary.violations else 0
