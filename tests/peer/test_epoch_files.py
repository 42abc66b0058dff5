"""Corrupt or missing epoch files: ``zkquorum run`` refuses to start as ZooKeeper 3.8 does.

Each case lays out a data dir (``snapshot.<zxid>`` + ``acceptedEpoch``/``currentEpoch``)
and runs ``zkquorum run`` on it: the same one-line error texts as ``QuorumPeer#loadDataBase``
(spec A4) and exit status 1 (QuorumPeerMain's "Unexpected exception, exiting abnormally").
The interop test runs the real QuorumPeerMain on the same data dirs and checks that its
log carries the same text and that it exits (or starts) the same way.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.interop.zk import ZooKeeperInstall, popen_group, run_quorum_peer_main
from tests.interop.zkserver import free_ports, wait_for
from zkquorum.core.datatree import DataTree
from zkquorum.runtime.storage import Storage


@dataclass(frozen=True)
class Case:
    files: dict[str, str]
    error: str | None  # {v2} = the version-2 directory; None: it starts
    snapshot_zxid: int = 0
    log: str | None = None  # a line it logs on the way


CASES = {
    "garbage-current": Case(
        {"currentEpoch": "garbage", "acceptedEpoch": "1"}, "Found garbage in {v2}/currentEpoch"
    ),
    "empty-current": Case(
        {"currentEpoch": "", "acceptedEpoch": "1"}, "Found null in {v2}/currentEpoch"
    ),
    "garbage-accepted": Case(
        {"currentEpoch": "1", "acceptedEpoch": "x1\n2"}, "Found x1 in {v2}/acceptedEpoch"
    ),
    "accepted-below-current": Case(
        {"currentEpoch": "2", "acceptedEpoch": "1"},
        "The accepted epoch, 1 is less than the current epoch, 2",
    ),
    "accepted-deleted": Case(
        {"currentEpoch": "2"},
        "The accepted epoch, 0 is less than the current epoch, 2",
        log="acceptedEpoch not found! Creating with a reasonable default of 0",
    ),
    "current-older-than-last-zxid": Case(
        {"currentEpoch": "1", "acceptedEpoch": "1"},
        "The current epoch, 1, is older than the last zxid, 8589934592",
        snapshot_zxid=0x2_0000_0000,
    ),
    # Recoverable: ZooKeeper recreates a missing currentEpoch from the last zxid, and
    # takes currentEpoch.tmp when the rename did not happen (ZOOKEEPER-4269's neighbour).
    "current-deleted": Case(
        {"acceptedEpoch": "3"},
        None,
        log="currentEpoch not found! Creating with a reasonable default of 0",
    ),
    "current-tmp-left": Case(
        {"currentEpoch": "1", "currentEpoch.tmp": "2", "acceptedEpoch": "2"},
        None,
        snapshot_zxid=0x2_0000_0000,
        log="currentEpoch.tmp found. Setting current epoch to 2.",
    ),
}


def lay_out(root: Path, case: Case) -> tuple[Path, Path]:
    """zoo.cfg of a 3-server ensemble (only sid 1 runs) and its version-2 directory."""
    data = root / "data"
    v2 = data / "version-2"
    v2.mkdir(parents=True)
    (data / "myid").write_text("1\n")
    Storage(data).take_snapshot(case.snapshot_zxid, DataTree("").to_snapshot())
    for name, text in case.files.items():
        (v2 / name).write_text(text)
    p = free_ports(7)
    cfg = root / "zoo.cfg"
    cfg.write_text(
        f"tickTime=100\ninitLimit=10\nsyncLimit=5\ndataDir={data}\n"
        f"clientPortAddress=127.0.0.1\nclientPort={p[0]}\n"
        + "".join(f"server.{i + 1}=127.0.0.1:{p[1 + 2 * i]}:{p[2 + 2 * i]}\n" for i in range(3))
    )
    return cfg, v2


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.error])
def test_corrupt_epoch_files_stop_the_start(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    cfg, v2 = lay_out(tmp_path, case)
    proc = subprocess.run(
        [sys.executable, "-m", "zkquorum", "run", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert case.error is not None
    error = case.error.format(v2=v2)
    lines = proc.stderr.splitlines()
    # One line says it all; an INFO line before it is ZooKeeper's own (files recreated).
    assert lines[-1] == f"zkquorum: {cfg}: Unable to load database on disk: {error}"
    assert "Traceback" not in proc.stderr
    if case.log:
        assert case.log in proc.stderr


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if not c.error])
def test_recoverable_epoch_files_are_repaired(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    cfg, v2 = lay_out(tmp_path, case)
    log_path = tmp_path / "zkquorum.log"
    with (
        log_path.open("wb") as out,
        popen_group(
            [sys.executable, "-m", "zkquorum", "run", str(cfg)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        ) as proc,
    ):
        wait_for(
            lambda: proc.poll() is not None or "New election." in log_path.read_text(),
            timeout=20,
            what="zkquorum run to start electing",
        )
        assert proc.poll() is None, log_path.read_text()
    text = log_path.read_text()
    assert case.log is not None and case.log in text
    expected = {"current-deleted": ("3", "0"), "current-tmp-left": ("2", "2")}[name]
    assert ((v2 / "acceptedEpoch").read_text(), (v2 / "currentEpoch").read_text()) == expected


@pytest.mark.interop
@pytest.mark.parametrize("name", list(CASES))
def test_zookeeper_says_the_same(tmp_path: Path, name: str, zookeeper: ZooKeeperInstall) -> None:
    case = CASES[name]
    cfg, v2 = lay_out(tmp_path, case)
    run = run_quorum_peer_main(zookeeper, cfg, tmp_path / "java", deadline=20)
    if case.error is None:
        assert run.started, run.log
    else:
        assert run.exit_status == 1, run.log
        assert "Unable to load database on disk" in run.log
        assert f"java.io.IOException: {case.error.format(v2=v2)}" in run.log
    if case.log:
        assert case.log in run.log
