"""Fixtures for the outside judges: real ZooKeeper from tests/interop, targets by spec.

* ``zookeeper`` / ``zookeeper_javac``: the Debian ZooKeeper 3.8 install (skip locally,
  fail in CI or with ``ZKQUORUM_REQUIRE_ZK=1``; tests/interop/conftest.py).
* ``judge_target(spec, system_properties=..., settings=...)``: a started
  :class:`~tests.judges.targets.RunningTarget`, stopped by pid at teardown; when the test
  fails every server's log is attached to the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import (  # noqa: F401  (fixtures and the log-attaching hook)
    pytest_runtest_makereport,
    zookeeper,
    zookeeper_javac,
)
from tests.interop.zk import ZooKeeperInstall, require_zookeeper
from tests.judges.targets import RunningTarget, TargetSpec, run_target


@pytest.fixture
def judge_target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., RunningTarget]]:
    with ExitStack() as stack:

        def factory(spec: TargetSpec, **kwargs: Any) -> RunningTarget:
            install: ZooKeeperInstall | None = require_zookeeper() if spec.java_sids else None
            base = tmp_path / f"target-{spec.name}-{len(sources)}"
            running = stack.enter_context(run_target(spec, base, install, wait=False, **kwargs))
            sources.append((f"server logs, {spec.name}", running.logs))
            running.wait_serving()
            return running

        sources: list[tuple[str, Callable[[], str]]] = getattr(request.node, "zk_log_sources", [])
        request.node.zk_log_sources = sources
        yield factory
