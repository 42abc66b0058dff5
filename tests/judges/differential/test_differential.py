"""The differential judge: one seeded kazoo workload on two targets, compared call by call.

Pairs: Java standalone against a 3-Java ensemble (both ZooKeeper 3.8.0: they must agree,
which proves the workload deterministic and the normalisation right), and the zkquorum
pairs, expected to fail until zkquorum serves clients.  ``ZKQUORUM_DIFF_SEED`` and
``ZKQUORUM_DIFF_OPS`` change the workload (default seed 2026, 200 random operations);
``python -m tests.judges.differential.run`` runs any pair by hand.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import pytest

from tests.interop.zkserver import four_letter_word
from tests.judges.differential.workload import (
    SERVER_PROPERTIES,
    Record,
    compare,
    make_workload,
    run_workload,
)
from tests.judges.targets import (
    JAVA_ENSEMBLE,
    JAVA_STANDALONE,
    MIXED_ZKQUORUM_FOLLOWER,
    MIXED_ZKQUORUM_LEADER,
    ZKQUORUM_ENSEMBLE,
    ZKQUORUM_STANDALONE,
    RunningTarget,
    TargetSpec,
)

pytestmark = [pytest.mark.interop, pytest.mark.judge]

SEED = int(os.environ.get("ZKQUORUM_DIFF_SEED", "2026"))
OPS = int(os.environ.get("ZKQUORUM_DIFF_OPS", "200"))

PAIRS = [
    pytest.param(JAVA_STANDALONE, JAVA_ENSEMBLE, id="java-standalone~java-3"),
    pytest.param(JAVA_STANDALONE, ZKQUORUM_STANDALONE, id="java~zkquorum"),
    pytest.param(JAVA_ENSEMBLE, MIXED_ZKQUORUM_LEADER, id="java-3~java-2+zkquorum-leader"),
    pytest.param(JAVA_ENSEMBLE, MIXED_ZKQUORUM_FOLLOWER, id="java-3~java-leader+zkquorum-follower"),
    pytest.param(JAVA_ENSEMBLE, ZKQUORUM_ENSEMBLE, id="java-3~zkquorum-3"),
]


def _record(spec: TargetSpec, judge_target: Callable[..., RunningTarget], seed: int) -> Record:
    running = judge_target(spec, system_properties=SERVER_PROPERTIES)
    record = run_workload(spec.name, running.hosts(), make_workload(seed, OPS), seed)
    if spec.java_sids and spec.py_sids:
        _java_servers_saw_nothing_wrong(running)
    return record


def _java_servers_saw_nothing_wrong(running: RunningTarget) -> None:
    """The Java servers of a mixed ensemble checked every txn's TxnDigest against their
    own trees (mntr counts no mismatch) and logged no error through the workload."""
    for sid in running.spec.java_sids:
        server = running.ens.servers[sid]
        mntr = four_letter_word("127.0.0.1", server.client_port, "mntr")
        assert "zk_digest_mismatches_count\t0\n" in mntr, (sid, mntr)
        log = server.log()  # type: ignore[attr-defined]
        assert " - INFO " in log, (sid, log[-500:])  # the log is read, at log4j's level format
        bad = [line for line in log.splitlines() if " - ERROR " in line or "igest mismatch" in line]
        assert not bad, (sid, bad[:5])


@pytest.mark.parametrize(("a", "b"), PAIRS)
def test_same_workload_same_answers(
    a: TargetSpec, b: TargetSpec, judge_target: Callable[..., RunningTarget]
) -> None:
    # The candidate first: when it cannot serve, fail before starting the reference.
    got = _record(b, judge_target, SEED)
    want = _record(a, judge_target, SEED)
    diffs = compare(want, got)
    assert not diffs, f"seed {SEED}, {OPS} ops: {a.name} and {b.name} differ:\n" + "\n".join(diffs)
    # The comparison must see one altered answer among them all.
    step = len(got.results) // 2
    altered = list(got.results)
    altered[step] = dataclasses.replace(altered[step], outcome=altered[step].outcome + "!")
    diffs = compare(want, dataclasses.replace(got, results=tuple(altered)))
    assert len(diffs) == 1 and diffs[0].startswith(f"step {step} "), diffs
