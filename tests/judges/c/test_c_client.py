"""The C client (Debian libzookeeper-mt 3.8.0) against a target.

* ``judge.c``, built here with gcc against ``libzookeeper_mt``, prints one normalised line
  per step; the lines must equal ``golden-zookeeper-3.8.0.txt`` (recorded from Java 3.8.0
  standalone: ``ZKQUORUM_JUDGES_RECORD=1 pytest tests/judges/c -k java-standalone``).
* Debian's ``cli_mt`` (package zookeeper-bin) in batch mode (``cmd:...``, one session per
  command): create, set, get, ls2, delete, each checked for its rc and result.  (cli_mt's
  ``exists`` never exits in batch mode, so it is not used.)

Packages: ``libzookeeper-mt-dev`` and ``zookeeper-bin``, installed by ``scripts/test``.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.interop.zk import _cache_root, popen_group
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

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "judge.c"
GOLDEN = HERE / "golden-zookeeper-3.8.0.txt"
HEADER = Path("/usr/include/zookeeper/zookeeper.h")
LIBRARY = Path("/usr/lib/x86_64-linux-gnu/libzookeeper_mt.so")
CLI_MT = Path("/usr/lib/zookeeper/bin/cli_mt")
TARGETS = (
    JAVA_STANDALONE,
    JAVA_ENSEMBLE,
    ZKQUORUM_STANDALONE,
    MIXED_ZKQUORUM_LEADER,
    ZKQUORUM_ENSEMBLE,
)
SERVER_PROPERTIES = {"zookeeper.extendedTypesEnabled": "true"}


def _require(path: Path, package: str) -> None:
    if not path.exists():
        pytest.fail(f"{path} missing: Debian package {package} (scripts/test installs it)")


def build_judge() -> Path:
    """gcc judge.c once per (source, header, library, gcc); the binary's path."""
    _require(HEADER, "libzookeeper-mt-dev")
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc missing: Debian package gcc")
    lib = LIBRARY.resolve() if LIBRARY.exists() else LIBRARY
    key = hashlib.sha256(
        SOURCE.read_bytes() + HEADER.read_bytes() + f"|{lib}|{Path(gcc).resolve()}".encode()
    ).hexdigest()[:16]
    out = _cache_root() / f"cjudge-{key}" / "judge"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="cjudge-build-", dir=out.parent.parent))
    try:
        proc = subprocess.run(
            [
                gcc,
                "-DTHREADED",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-O1",
                "-o",
                str(tmp / "judge"),
                str(SOURCE),
                "-lzookeeper_mt",
                "-lpthread",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"gcc judge.c failed:\n{proc.stdout}{proc.stderr}"
        os.replace(tmp / "judge", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def run(cmd: list[str], timeout: float = 60.0) -> tuple[int | None, str, str]:
    """Run a client by pid in its own group; stopped if it outlives ``timeout``."""
    with popen_group(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, "", f"{cmd} timed out after {timeout} s"
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


@pytest.mark.parametrize("spec", target_params(*TARGETS))
def test_c_client_steps_match_golden(
    spec: TargetSpec, judge_target: Callable[..., RunningTarget]
) -> None:
    binary = build_judge()
    running = judge_target(spec, system_properties=SERVER_PROPERTIES)
    code, out, err = run([str(binary), running.hosts()])
    if os.environ.get("ZKQUORUM_JUDGES_RECORD") == "1" and spec == JAVA_STANDALONE:
        GOLDEN.write_text(out)
    expected = GOLDEN.read_text()
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(True), out.splitlines(True), "golden (3.8.0)", spec.name
        )
    )
    assert (code, out) == (0, expected), f"exit {code}\n{diff}\nstderr:\n{err}"


def _cli_mt(hosts: str, command: str) -> str:
    code, out, err = run([str(CLI_MT), hosts, f"cmd:{command}"], timeout=30.0)
    assert code == 0, f"cli_mt {command!r}: exit {code}\n{out}{err}"
    return out + err  # cli_mt reports on stderr


@pytest.mark.parametrize("spec", target_params(*TARGETS))
def test_cli_mt_batch_commands(
    spec: TargetSpec, judge_target: Callable[..., RunningTarget]
) -> None:
    _require(CLI_MT, "zookeeper-bin")
    hosts = judge_target(spec).hosts()
    assert "[/climt]: rc = 0\n\tname = /climt" in _cli_mt(hosts, "create /climt")
    text = _cli_mt(hosts, "set /climt hello")
    assert re.search(r"/climt: rc = 0 Stat:.*?version=1\taversion=0", text, re.S), text
    text = _cli_mt(hosts, "get /climt")
    assert re.search(r"/climt: rc = 0\n value_len = 5\nhello\n", text), text
    text = _cli_mt(hosts, "ls2 /")
    assert re.search(r"/: rc = 0\n\tclimt\n\tzookeeper\n", text), text
    assert "/climt: rc = 0" in _cli_mt(hosts, "delete /climt")
    text = _cli_mt(hosts, "get /climt")
    assert "/climt: rc = -101" in text, text
