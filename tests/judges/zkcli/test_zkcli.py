"""Debian's zkCli.sh, one scripted session, compared with ZooKeeper 3.8.0's golden transcript.

Record the golden file again (from Java 3.8.0 standalone) with
``ZKQUORUM_JUDGES_RECORD=1 pytest tests/judges/zkcli -k java-standalone``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable

import pytest

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
from tests.judges.zkcli.zkcli import GOLDEN, SESSION, ZKCLI, normalise, run_session

pytestmark = [pytest.mark.interop, pytest.mark.judge]

SERVER_PROPERTIES = {"zookeeper.extendedTypesEnabled": "true"}


def _diff(expected: str, actual: str) -> str:
    return "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            "golden (ZooKeeper 3.8.0)",
            "this target",
        )
    )


@pytest.mark.parametrize(
    "spec",
    target_params(
        JAVA_STANDALONE,
        JAVA_ENSEMBLE,
        ZKQUORUM_STANDALONE,
        MIXED_ZKQUORUM_LEADER,
        ZKQUORUM_ENSEMBLE,
    ),
)
def test_zkcli_session_matches_golden(
    spec: TargetSpec, judge_target: Callable[..., RunningTarget]
) -> None:
    if not ZKCLI.is_file():
        pytest.fail(f"{ZKCLI} missing (Debian package zookeeper)")
    running = judge_target(spec, system_properties=SERVER_PROPERTIES)
    server = running.hosts()
    session = run_session(server, SESSION.read_text())
    transcript = normalise(session, server)
    if os.environ.get("ZKQUORUM_JUDGES_RECORD") == "1" and spec == JAVA_STANDALONE:
        GOLDEN.write_text(transcript)
    expected = GOLDEN.read_text()
    assert transcript == expected, (
        f"zkCli.sh against {spec.name} differs from ZooKeeper 3.8.0:\n"
        f"{_diff(expected, transcript)}\nraw output:\n{session.output}"
    )
