"""``zkquorum cluster``: real local clusters, faults, Ctrl-C, and the SVG trace."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from zkquorum.tools.events import Event, pair_messages, parse_lines
from zkquorum.tools.trace import render_svg

SVG = "{http://www.w3.org/2000/svg}"
FAST = ["--tick-time", "200"]


def _alive(pid: int) -> bool:
    """The pid runs a process that is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextlib.contextmanager
def cluster(tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``zkquorum cluster --dir tmp/c ARGS`` as a process; its peers are stopped whatever
    happens (by the pids it reports, and only if they run from our directory)."""
    root = tmp_path / "c"
    proc = subprocess.Popen(
        [sys.executable, "-m", "zkquorum", "cluster", "--dir", str(root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for peer in root.glob("peer*"):
            _kill_leftover(peer)


def _kill_leftover(peer_dir: Path) -> None:
    events = peer_dir.parent / "events.jsonl"
    for pid in _pids(events.read_text() if events.exists() else ""):
        with contextlib.suppress(OSError):
            if str(peer_dir) in Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGKILL)


def _pids(text: str) -> list[int]:
    return [int(p) for p in re.findall(r"launched \(pid (\d+)\)", text)] + [
        int(p) for p in re.findall(r'"ev":"launched","pid":(\d+)', text)
    ]


def _finish(proc: subprocess.Popen[str], timeout: float = 40) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out


def test_three_peers_elect_and_the_summary_names_leader_and_epoch(tmp_path: Path) -> None:
    svg_path = tmp_path / "run.svg"
    with cluster(tmp_path, "--size", "3", *FAST, "--trace", str(svg_path)) as proc:
        out = _finish(proc)
    assert proc.returncode == 0, out
    # Equal zxids and epochs: the largest sid wins, in the first epoch.
    assert "SUMMARY: leader is peer 3, epoch 1;" in out, out
    assert re.search(r"peer 3\s+decided: LEADING, leader 3", out), out
    for sid in (1, 2):
        assert re.search(rf"peer {sid}\s+ESTABLISHED FOLLOWING epoch 1", out), out
    assert "srvr says: 1=follower" in out and "3=leader" in out, out
    pids = _pids(out)
    assert len(pids) == 3
    assert not any(_alive(p) for p in pids)

    # The trace of this real run: well-formed, every peer, every notification.
    events = parse_lines((tmp_path / "c" / "events.jsonl").read_text().splitlines())
    sends = [e for e in events if e.ev == "send"]
    recvs = [e for e in events if e.ev == "recv"]
    assert sends and recvs
    root = ET.parse(svg_path).getroot()
    peers = {g.get("data-sid") for g in root.iter(f"{SVG}g") if g.get("class") == "peer"}
    assert peers == {"1", "2", "3"}
    msgs = [g for g in root.iter(f"{SVG}g") if g.get("class") == "msg"]
    messages = pair_messages(events)
    assert len(msgs) == len(messages)
    # Every send and every receipt is drawn by exactly one arrow.
    assert sum(m.sent is not None for m in messages) == len(sends)
    assert sum(m.received is not None for m in messages) == len(recvs)
    marks = {(g.get("data-ev"), g.get("data-sid")) for g in root.iter(f"{SVG}g")}
    for sid in ("1", "2", "3"):
        assert ("decided", sid) in marks and ("established", sid) in marks


def test_kill_leader_shows_a_new_leader_with_a_higher_epoch(tmp_path: Path) -> None:
    with cluster(tmp_path, "--size", "3", *FAST, "--kill-leader") as proc:
        out = _finish(proc)
    assert proc.returncode == 0, out
    assert "round 1: SIGKILL the leader, peer 3 (epoch 1)" in out, out
    m = re.search(r"round 1: leader (\d+), epoch (\d+), established", out)
    assert m, out
    assert int(m.group(1)) in (1, 2) and int(m.group(2)) == 2
    assert f"SUMMARY: leader is peer {m.group(1)}, epoch 2;" in out
    assert not any(_alive(p) for p in _pids(out))
    # The client's session began on the leader, moved, and its own write fired its watch.
    c = re.search(r"client: session (0x[0-9a-f]+) on peer 3 \(the leader\)", out)
    assert c, out
    moved = re.search(rf"client: session {c.group(1)} now on peer (\d+) \(\d+ ms after", out)
    assert moved and int(moved.group(1)) in (1, 2), out
    assert "the watch fired (NodeDataChanged /zkquorum-demo); ephemeral still there" in out


def test_sigint_leaves_no_process_behind(tmp_path: Path) -> None:
    # A hung leader at tickTime 2000 is noticed only after 10 s: interrupt the wait.
    with cluster(tmp_path, "--size", "3", "--stop-leader") as proc:
        assert proc.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 30
        for line in proc.stdout:
            seen.append(line)
            if "SIGSTOP sent" in line or time.monotonic() > deadline:
                break
        assert any("SIGSTOP sent" in line for line in seen), "".join(seen)
        pids = _pids("".join(seen))
        assert len(pids) == 3 and all(_alive(p) for p in pids)
        proc.send_signal(signal.SIGINT)
        rest = _finish(proc, timeout=20)
    out = "".join(seen) + rest
    assert proc.returncode == 130, out
    assert "interrupted: stopping every peer" in out
    assert "stopped 3 peer process(es)" in out, out
    assert not any(_alive(p) for p in pids), out


def test_svg_of_a_synthetic_election_shows_every_peer_and_message() -> None:
    def ev(t: float, sid: int, kind: str, **fields: object) -> Event:
        return Event(100.0 + t / 1000, sid, kind, fields)

    def vote(t: float, sid: int, kind: str, peer: int, leader: int) -> Event:
        return ev(
            t, sid, kind, peer=peer, state="LOOKING", leader=leader, zxid=0, round=1, peer_epoch=0
        )

    events = [
        ev(0, 1, "launched", pid=11),
        ev(0, 2, "launched", pid=12),
        ev(5, 1, "looking", round=1, zxid=0),
        ev(6, 2, "looking", round=1, zxid=0),
        vote(6.1, 1, "send", 2, 1),
        vote(6.2, 2, "send", 1, 2),
        vote(6.4, 2, "recv", 1, 1),
        vote(6.5, 1, "recv", 2, 2),
        vote(6.6, 1, "send", 2, 3),  # replaced before it went out: never delivered
        vote(6.7, 1, "send", 2, 2),
        vote(6.9, 2, "recv", 1, 2),
        vote(7.0, 2, "recv", 1, 2),  # a re-send after a reconnect: no send recorded
        ev(7.2, 2, "decided", state="LEADING", leader=2, round=1, peer_epoch=0, via="x", took_ms=1),
        ev(
            7.3,
            1,
            "decided",
            state="FOLLOWING",
            leader=2,
            round=1,
            peer_epoch=0,
            via="x",
            took_ms=2,
        ),
        ev(30, 2, "established", state="LEADING", leader=2, epoch=1),
        ev(31, 1, "established", state="FOLLOWING", leader=2, epoch=1),
        ev(5000, 2, "killed", pid=12),  # after a long quiet stretch: drawn as a cut
    ]
    text = render_svg(events, title="two <peers> & a kill")
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    groups = list(root.iter(f"{SVG}g"))
    assert {g.get("data-sid") for g in groups if g.get("class") == "peer"} == {"1", "2"}
    msgs = [
        (g.get("data-from"), g.get("data-to"), g.get("data-vote"))
        for g in groups
        if g.get("class") == "msg"
    ]
    assert sorted(msgs) == sorted(
        [
            ("1", "2", "1 r1"),
            ("2", "1", "2 r1"),
            ("1", "2", "3 r1"),
            ("1", "2", "2 r1"),
            ("1", "2", "2 r1"),
        ]
    )
    titles = [
        "".join(t.itertext())
        for g in groups
        if g.get("class") == "msg"
        for t in g.iter(f"{SVG}title")
    ]
    assert sum("never delivered" in t for t in titles) == 1
    assert sum("(re-sent)" in t for t in titles) == 1
    all_text = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))
    assert "two <peers> & a kill" in all_text
    assert "without events cut" in all_text  # the 5 s of nothing
    assert "SIGKILL" in all_text and "ESTABLISHED epoch 1" in all_text
    marks = {(g.get("data-ev"), g.get("data-sid")) for g in groups if g.get("class") == "mark"}
    assert {("decided", "1"), ("decided", "2"), ("established", "1"), ("killed", "2")} <= marks


@pytest.mark.parametrize("args", [["--size", "1"], ["--rounds", "2"], ["--trace", "x.png"]])
def test_bad_arguments_are_one_line_errors(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "zkquorum", "cluster", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("zkquorum: --") and proc.stderr.count("\n") == 1
