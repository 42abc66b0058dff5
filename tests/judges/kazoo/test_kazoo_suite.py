"""kazoo's own test suite (2.11.0, run unpatched from the installed package) against a target.

kazoo's harness starts the servers itself through ``java`` on PATH, which is
``tests/judges/bin/java``: the Debian ZooKeeper 3.8.0 JVM (the baseline) or ``zkquorum run``
(tests/judges/javashim.py translates the JVM flags).  See tests/judges/README.md.

* By default (CI): the subset :data:`~tests.judges.kazoo.runner.CI_SUBSET` against one
  server (``ZOOKEEPER_CLUSTER_SIZE=1``), the tests that need three servers deselected.
* ``ZKQUORUM_KAZOO_SUITE=full``: every test; ``ZKQUORUM_KAZOO_CLUSTER_SIZE=3`` (default 1)
  for kazoo's default 3-server cluster, which runs the ensemble-only tests too.

Every test run must pass (skips are kazoo's own: Kerberos, its CI-only build test).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.interop.zk import ZooKeeperInstall
from tests.judges.kazoo.runner import CI_SUBSET, run_suite

pytestmark = [pytest.mark.interop, pytest.mark.judge]

FULL = os.environ.get("ZKQUORUM_KAZOO_SUITE", "") == "full"
SIZE = int(os.environ.get("ZKQUORUM_KAZOO_CLUSTER_SIZE", "1"))


@pytest.mark.parametrize("target", ["java", "zkquorum"])
def test_kazoo_suite_passes(
    target: str, zookeeper: ZooKeeperInstall, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    result = run_suite(
        target,
        SIZE,
        tmp_path / "kazoo",
        selection=() if FULL else CI_SUBSET,
        per_test_timeout=180.0,
    )
    request.node.zk_log_sources = [("kazoo's pytest output (tail)", result.tail)]
    print(result.report())
    assert result.outcomes, f"kazoo's suite ran no test:\n{result.tail()}"
    assert result.returncode == 0 and not result.not_passed, result.report()


@pytest.mark.parametrize("target", ["java", "zkquorum"])
def test_kazoo_reconfig_tests_pass_on_three_servers(
    target: str, zookeeper: ZooKeeperInstall, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """kazoo's ``TestReconfig`` (its cluster run only: a reconfig needs a quorum), in CI."""
    result = run_suite(
        target,
        3,
        tmp_path / "kazoo",
        selection=("test_client.py::TestReconfig",),
        per_test_timeout=120.0,
    )
    request.node.zk_log_sources = [("kazoo's pytest output (tail)", result.tail)]
    print(result.report())
    assert len(result.outcomes) == 3, f"expected kazoo's 3 reconfig tests:\n{result.tail()}"
    assert result.returncode == 0 and not result.not_passed, result.report()
