"""Drive Debian's ``zkCli.sh`` through one scripted session and normalise what it prints.

Debian's zkCli.sh runs ``ZooKeeperMain`` without JLine on the classpath, so it reads
commands from stdin with no prompt and no echo (``ZooKeeperMain#run``), and prints results
on stdout and errors on stderr from the main thread, and watch events from the client's
event thread.  To know which command printed what, :func:`compose` sends ``printwatches``
after every command: it prints ``printwatches is on`` synchronously, a marker to cut the
merged output on.  Watch events are printed asynchronously, so they are taken out of the
blocks and listed, in the order they came, after the commands (``state:Closed`` events are
dropped: the event thread may or may not print them before the next command or the exit).

Normalised: the server address, ctime/mtime, session ids (``ephemeralOwner``, numbered by
first appearance), and the epoch half of zxids (``0x100000005`` -> ``e+0x5``), so that a
standalone server (epoch 0) and an ensemble (epoch 1) compare equal when their counters
do.  Everything else (data, versions, cversion, sequence numbers, error texts) must match.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.interop.zk import popen_group

ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
HERE = Path(__file__).resolve().parent
SESSION = HERE / "session.zk"
GOLDEN = HERE / "golden-zookeeper-3.8.0.txt"

MARKER_COMMAND = "printwatches"
MARKER = "printwatches is on"

_ZXID_LINE = re.compile(r"^(cZxid|mZxid|pZxid) = 0x([0-9a-f]+)$")
_TIME_LINE = re.compile(r"^(ctime|mtime) = .*$")
_OWNER_LINE = re.compile(r"^ephemeralOwner = 0x([0-9a-f]+)$")
_EVENT_LINE = re.compile(r"^WatchedEvent state:(\S+) type:(\S+) path:(.*)$")
_NOISE = re.compile(r"^SLF4J: |^WATCHER::$")


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    commands: tuple[str, ...]
    output: str  # stdout and stderr, merged as they came
    returncode: int | None
    seconds: float


def commands(script: str, server: str) -> tuple[str, ...]:
    out = []
    for raw in script.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append(line.replace("{server}", server))
    return tuple(out)


def compose(cmds: Sequence[str]) -> str:
    """The stdin: a marker first (ends the banner), then each command and a marker."""
    lines = [MARKER_COMMAND]
    for cmd in cmds:
        lines += [cmd, MARKER_COMMAND]
    return "\n".join(lines) + "\n"


def run_session(server: str, script: str, *, timeout: float = 120.0) -> Session:
    """Run zkCli.sh against ``server`` (host:port) on ``script``; stopped by pid if it hangs."""
    cmds = commands(script, server)
    start = time.monotonic()
    with popen_group(
        [str(ZKCLI), "-server", server],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    ) as proc:
        try:
            out, _ = proc.communicate(compose(cmds).encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            out = b"<zkCli.sh timed out>"
    return Session(cmds, out.decode("utf-8", "replace"), proc.returncode, time.monotonic() - start)


def normalise(session: Session, server: str) -> str:
    """The transcript: ``> command`` then its normalised output; then the watch events."""
    sessions: dict[str, str] = {}
    events: list[str] = []
    blocks: list[list[str]] = [[]]
    for raw in session.output.splitlines():
        line = raw.rstrip()
        if line == MARKER:
            blocks.append([])
            continue
        if not line or _NOISE.search(line):
            continue
        m = _EVENT_LINE.match(line)
        if m:
            if m.group(1) != "Closed":
                events.append(line)
            continue
        line = line.replace(server, "{server}")
        if m := _ZXID_LINE.match(line):
            value = int(m.group(2), 16)
            line = f"{m.group(1)} = e+{value & 0xFFFFFFFF:#x}"
        elif m := _TIME_LINE.match(line):
            line = f"{m.group(1)} = <time>"
        elif (m := _OWNER_LINE.match(line)) and int(m.group(1), 16) != 0:
            label = sessions.setdefault(m.group(1), f"<session {len(sessions) + 1}>")
            line = f"ephemeralOwner = {label}"
        blocks[-1].append(line)
    out = ["# zkCli.sh session (tests/judges/zkcli/session.zk), normalised", "== banner =="]
    out += blocks[0]
    for i, cmd in enumerate(session.commands):
        out.append(f"> {cmd.replace(server, '{server}')}")
        out += blocks[i + 1] if i + 1 < len(blocks) else ["<no output: the session ended>"]
    trailing = [line for extra in blocks[len(session.commands) + 1 :] for line in extra]
    if trailing:
        out.append("== after the last command ==")
        out += trailing
    out.append("== watch events, in order ==")
    out += events
    out.append(f"== exit status {session.returncode} ==")
    return "\n".join(out) + "\n"
