"""Fixtures for tests that run zkquorum peers as processes (and real ZooKeeper beside them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.interop.zk import ZooKeeperInstall, require_zookeeper
from tests.peer.cluster import Ensemble, ensemble


@pytest.fixture(scope="session")
def zookeeper() -> ZooKeeperInstall:
    return require_zookeeper()


@pytest.fixture
def ensembles(tmp_path: Path) -> Iterator[Callable[..., Ensemble]]:
    """``ensembles(py_sids=..., java_sids=..., install=...)``: stopped at teardown."""
    with ExitStack() as stack:
        count = 0

        def factory(**kwargs: Any) -> Ensemble:
            nonlocal count
            count += 1
            return stack.enter_context(ensemble(tmp_path / f"ensemble{count}", **kwargs))

        yield factory
