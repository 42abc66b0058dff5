"""``zkquorum config check`` as a user runs it: a real process, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zkquorum", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_example_config_checks_clean() -> None:
    res = run("config", "check", "examples/zoo.cfg")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:5] == [
        "server.1=127.0.0.1:2888:3888:participant",
        "server.2=127.0.0.2:2888:3888:participant",
        "server.3=127.0.0.3:2888:3888:participant;127.0.0.3:2181",
        "server.4=127.0.0.4:2888:3888:observer",
        "version=0",
    ]
    assert lines[5] == ""
    assert "quorum: majority: 2 of 3 voters" in res.stdout


def test_error_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(
        f"tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={tmp_path}\n"
        "server.1=zoo1-net1:2888:3888,zoo1-net2:2888:3888\n"
    )
    res = run("config", "check", str(cfg))
    assert res.returncode == 2
    assert res.stdout == ""
    err = res.stderr.strip().splitlines()
    assert len(err) == 1, res.stderr
    assert err[0].startswith(f"zkquorum: {cfg}:5: server.1:")
    assert "'|'" in err[0]
    assert "Traceback" not in res.stderr


def test_missing_file_is_one_line() -> None:
    res = run("config", "check", "/nonexistent/zoo.cfg")
    assert res.returncode == 2
    assert res.stderr.strip() == "zkquorum: /nonexistent/zoo.cfg: file not found"
