"""Fixtures for tests that need real ZooKeeper 3.8 (Debian package ``zookeeper``).

* ``zookeeper``: the install; skips with the reason when it is missing, except in CI
  (``CI=true``) or with ``ZKQUORUM_REQUIRE_ZK=1``, where the test fails instead.
* ``zookeeper_javac``: the same, also needing ``javac`` (for the config probe).
* ``java_ensembles``: a factory ``java_ensembles(sids=[1, 2, 3], observers=..., settings=...,
  jvm_flags={sid: [...]}, start=True)``; every ensemble made is stopped at teardown and,
  when the test failed, every server's log is attached to the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.zk import ZooKeeperInstall, require_zookeeper
from tests.interop.zkserver import JavaEnsemble, make_ensemble


@pytest.fixture(scope="session")
def zookeeper() -> ZooKeeperInstall:
    return require_zookeeper()


@pytest.fixture(scope="session")
def zookeeper_javac() -> ZooKeeperInstall:
    return require_zookeeper(javac=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for name, get_text in getattr(item, "zk_log_sources", []):
            report.sections.append((f"{name} ({report.when})", get_text()))


@pytest.fixture
def java_ensembles(
    request: pytest.FixtureRequest, zookeeper: ZooKeeperInstall, tmp_path: Path
) -> Iterator[Callable[..., JavaEnsemble]]:
    made: list[JavaEnsemble] = []

    def factory(
        sids: tuple[int, ...] = (1, 2, 3), *, start: bool = True, **kwargs: Any
    ) -> JavaEnsemble:
        ens = make_ensemble(zookeeper, tmp_path / f"ensemble{len(made)}", sids, **kwargs)
        made.append(ens)
        sources = getattr(request.node, "zk_log_sources", [])
        sources.append((f"ZooKeeper logs, ensemble {len(made) - 1}", ens.logs))
        request.node.zk_log_sources = sources
        if start:
            ens.start()
        return ens

    try:
        yield factory
    finally:
        for ens in made:
            ens.stop()
