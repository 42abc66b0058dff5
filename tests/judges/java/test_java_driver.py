"""ZooKeeper 3.8's Java client (tests/interop/java/ZkDriver.java) against a target.

The driver covers what kazoo never sends: setWatches after a reconnect, addWatch
PERSISTENT / PERSISTENT_RECURSIVE, checkWatches / removeWatches, TTL and container nodes,
multiRead, getEphemerals, getAllChildrenNumber, whoAmI.  Its output must equal
``golden-zookeeper-3.8.0.txt``, recorded from Java 3.8.0 standalone with
``ZKQUORUM_JUDGES_RECORD=1 pytest tests/judges/java -k java-standalone``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable

import pytest

from tests.interop.zk import ZooKeeperInstall
from tests.judges.java.driver import GOLDEN, SERVER_PROPERTIES, run_driver
from tests.judges.targets import (
    JAVA_ENSEMBLE,
    JAVA_STANDALONE,
    MIXED_ZKQUORUM_LEADER,
    ZKQUORUM_ENSEMBLE,
    ZKQUORUM_STANDALONE,
    RunningTarget,
    TargetSpec,
    target_params,
)

pytestmark = [pytest.mark.interop, pytest.mark.judge]

TARGETS = (
    JAVA_STANDALONE,
    JAVA_ENSEMBLE,
    ZKQUORUM_STANDALONE,
    MIXED_ZKQUORUM_LEADER,
    ZKQUORUM_ENSEMBLE,
)


@pytest.mark.parametrize("spec", target_params(*TARGETS))
def test_java_driver_matches_golden(
    spec: TargetSpec,
    zookeeper_javac: ZooKeeperInstall,
    judge_target: Callable[..., RunningTarget],
) -> None:
    running = judge_target(spec, system_properties=SERVER_PROPERTIES)
    result = run_driver(zookeeper_javac, running.hosts())
    if os.environ.get("ZKQUORUM_JUDGES_RECORD") == "1" and spec == JAVA_STANDALONE:
        assert result.returncode == 0, result.stdout + result.stderr
        GOLDEN.write_text(result.stdout)
    expected = _normalised(GOLDEN.read_text())
    got = _normalised(result.stdout)
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(True), got.splitlines(True), "golden (3.8.0)", spec.name
        )
    )
    assert (result.returncode, got) == (0, expected), (
        f"ZkDriver against {spec.name}: exit {result.returncode}\n{diff}\nstderr:\n{result.stderr}"
    )


_CLIENT_SIDE = "events (removals, then nothing for removed watches): ["


def _normalised(text: str) -> str:
    """The removal events are made by the Java client itself, from its own watcher sets
    (identity-hash order, which changes from one JVM run to the next whatever the server
    did): compare them as a set."""
    lines = []
    for line in text.splitlines(True):
        if line.startswith(_CLIENT_SIDE) and line.rstrip().endswith("]"):
            items = line.rstrip()[len(_CLIENT_SIDE) : -1].split(", ")
            line = _CLIENT_SIDE + ", ".join(sorted(items)) + "]\n"
        lines.append(line)
    return "".join(lines)
