"""The datadriven election scenarios (ports of ZooKeeper's FLE tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.core.scenario import Env
from tests.datadriven import run_file

FILES = sorted((Path(__file__).parent.parent / "testdata" / "election").glob("*.txt"))


@pytest.fixture
def rewrite(request: pytest.FixtureRequest) -> bool:
    try:
        opt = bool(request.config.getoption("--rewrite"))
    except ValueError:
        opt = False
    return opt or os.environ.get("ZKQ_REWRITE") == "1"


def test_there_are_scenarios() -> None:
    names = {f.stem for f in FILES}
    assert {"predicate", "out_of_election", "backward_election_round", "lost_message"} <= names
    assert {"zero_weight", "observer"} <= names


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario(path: Path, rewrite: bool) -> None:
    env = Env()
    run_file(path, env.handle, rewrite=rewrite)
