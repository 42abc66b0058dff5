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


def test_dynamic_files_written_by_a_reconfig_are_read_back(tmp_path: Path) -> None:
    """What a reconfig leaves (``write_dynamic_config``) is what ``config check`` reads."""
    from zkquorum.config.zoocfg import parse_config_string
    from zkquorum.runtime.files import load_config, write_dynamic_config

    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(
        "# a comment\ntickTime=2000\ninitLimit=5\nsyncLimit=2\n"
        f"dataDir={tmp_path}\nclientPort=2181\nreconfigEnabled=true\n"
        "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\n"
        "server.3=127.0.0.3:2888:3888\n"
    )
    (tmp_path / "myid").write_text("1\n")
    in_force = parse_config_string(
        "server.1=127.0.0.1:2888:3888:participant\nserver.10=127.0.0.2:2888:3888:participant\n"
        "server.2=127.0.0.3:2888:3888:participant;127.0.0.3:2181\nversion=100000003"
    )
    proposed = parse_config_string(
        "server.1=127.0.0.1:2888:3888:participant\nserver.2=127.0.0.3:2888:3888:observer\n"
        "server.10=127.0.0.2:2888:3888:participant\nversion=100000007"
    )
    written = write_dynamic_config(cfg, in_force, activated=True, sid=1)
    assert written.name == "zoo.cfg.dynamic.100000003"
    # Sorted as strings ("server.10=" before "server.1="), no version line, no trailing
    # newline (writeDynamicConfig).
    assert written.read_text() == (
        "server.10=127.0.0.2:2888:3888:participant\n"
        "server.1=127.0.0.1:2888:3888:participant\n"
        "server.2=127.0.0.3:2888:3888:participant;127.0.0.3:2181"
    )
    text = cfg.read_text()
    assert "server." not in text and "# a comment" not in text
    assert "clientPort=2181\n" in text  # our entry has no client address of its own
    assert f"dynamicConfigFile={written.resolve()}\n" in text
    assert not list(tmp_path.glob("*.tmp"))
    nxt = write_dynamic_config(cfg, proposed, activated=False, sid=1)
    assert nxt.read_text().endswith("version=100000007")
    loaded = load_config(cfg)
    assert loaded.verifier is not None and loaded.verifier.version == 0x100000003
    assert set(loaded.verifier.voting_members) == {1, 2, 10}
    assert loaded.last_seen_verifier is not None
    assert loaded.last_seen_verifier.version == 0x100000007
    res = run("config", "check", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "membership from: " + str(written.resolve()) in res.stdout
    assert "reconfig in progress: version 100000007 proposed" in res.stdout
    # Activating the proposed config removes the .next file.
    write_dynamic_config(cfg, proposed, activated=True, sid=1)
    assert not nxt.exists()
    assert load_config(cfg).verifier.version == 0x100000007  # type: ignore[union-attr]
