"""A local cluster of ``zkquorum run`` processes on loopback, for ``zkquorum cluster``.

:class:`LocalCluster` lays out one membership in a directory (``peerN/zoo.cfg``,
``peerN/data/myid``, free ports on 127.0.0.1), starts each peer as its own process
(``python -m zkquorum run zoo.cfg --events peerN/events.jsonl``) in its own session, so
that a Ctrl-C at the terminal reaches only the supervisor, tails the peers' event files,
and sends the faults (SIGKILL, SIGSTOP, SIGCONT).  It records what it does to the
processes as events of its own (``launched``, ``killed``, ``stopped``, ``continued``,
``exited``) so that a timeline shows them next to the peers' events.

Processes are only ever signalled by the pid this object started; :meth:`shutdown`
ends every one of them whatever state it is in (a stopped one is continued first).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from zkquorum.tools.events import Event, parse_line

LOOPBACK = "127.0.0.1"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports that were free on ``host`` a moment ago."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclasses.dataclass
class PeerProcess:
    """One peer: its ports, its directory and (while it runs) its process."""

    sid: int
    role: str  # participant | observer
    root: Path
    quorum_port: int
    election_port: int
    client_port: int
    proc: subprocess.Popen[bytes] | None = None
    stopped: bool = False
    _offset: int = 0
    _partial: str = ""

    @property
    def cfg_path(self) -> Path:
        return self.root / "zoo.cfg"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def log_path(self) -> Path:
        return self.root / "zkquorum.log"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def server_line(self) -> str:
        return (
            f"server.{self.sid}={LOOPBACK}:{self.quorum_port}:{self.election_port}:{self.role}"
            f";{LOOPBACK}:{self.client_port}"
        )

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def read_events(self) -> list[Event]:
        """Events appended to this peer's file since the last call (whole lines only)."""
        try:
            with self.events_path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        if not data:
            return []
        self._offset += len(data)
        text = self._partial + data.decode("utf-8", "replace")
        lines = text.split("\n")
        self._partial = lines.pop()  # "" after a complete last line
        return [e for e in map(parse_line, lines) if e is not None]


class LocalCluster:
    """``size`` participants (sids 1..size) and ``observers`` observers after them."""

    def __init__(
        self,
        root: Path,
        *,
        size: int,
        observers: int = 0,
        tick_time: int = 2000,
        init_limit: int = 10,
        sync_limit: int = 5,
        settings: Mapping[str, str] | None = None,
        peer_args: Sequence[str] = (),
        python: str = sys.executable,
    ) -> None:
        self.root = root
        self.tick_time = tick_time
        self.init_limit = init_limit
        self.sync_limit = sync_limit
        self.settings = dict(settings or {})
        self.peer_args = tuple(peer_args)
        self.python = python
        self.marks: list[Event] = []
        self._reported_exits: set[tuple[int, int]] = set()
        ports = free_ports(3 * (size + observers))
        self.peers: dict[int, PeerProcess] = {}
        for i in range(size + observers):
            sid = i + 1
            self.peers[sid] = PeerProcess(
                sid=sid,
                role="participant" if sid <= size else "observer",
                root=root / f"peer{sid}",
                quorum_port=ports[3 * i],
                election_port=ports[3 * i + 1],
                client_port=ports[3 * i + 2],
            )

    # ------------------------------------------------------------- layout

    @property
    def voters(self) -> list[int]:
        return [sid for sid, p in self.peers.items() if p.role == "participant"]

    @property
    def observer_sids(self) -> list[int]:
        return [sid for sid, p in self.peers.items() if p.role == "observer"]

    def config_text(self, peer: PeerProcess) -> str:
        lines = [
            "# written by zkquorum cluster",
            f"tickTime={self.tick_time}",
            f"initLimit={self.init_limit}",
            f"syncLimit={self.sync_limit}",
            f"dataDir={peer.data_dir}",
            f"clientPort={peer.client_port}",
            f"clientPortAddress={LOOPBACK}",
            "4lw.commands.whitelist=*",
        ]
        if peer.role == "observer":
            lines.append("peerType=observer")
        lines.extend(f"{k}={v}" for k, v in self.settings.items())
        lines.extend(p.server_line() for p in self.peers.values())
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        """Write every peer's zoo.cfg and myid (keeping any data already there)."""
        for peer in self.peers.values():
            peer.data_dir.mkdir(parents=True, exist_ok=True)
            (peer.data_dir / "myid").write_text(f"{peer.sid}\n")
            peer.cfg_path.write_text(self.config_text(peer))
            peer.events_path.write_text("")
            peer._offset = 0
            peer._partial = ""

    # ------------------------------------------------------------- processes

    def _mark(self, sid: int, ev: str, **fields: object) -> None:
        self.marks.append(Event(time.time(), sid, ev, fields))

    def start(self, sids: Iterable[int] | None = None) -> None:
        """Launch peers (all by default), each as its own process in its own session."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        for sid in list(self.peers) if sids is None else list(sids):
            peer = self.peers[sid]
            if peer.running():
                continue
            with peer.log_path.open("ab") as log:
                peer.proc = subprocess.Popen(
                    [
                        self.python,
                        "-m",
                        "zkquorum",
                        "run",
                        str(peer.cfg_path),
                        "--events",
                        str(peer.events_path),
                        *self.peer_args,
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env=env,
                )
            peer.stopped = False
            self._mark(sid, "launched", pid=peer.proc.pid)

    def kill(self, sid: int) -> None:
        """SIGKILL, as in a crash; waits until the process is gone."""
        peer = self.peers[sid]
        if peer.proc is None or not peer.running():
            return
        self._mark(sid, "killed", pid=peer.proc.pid)
        peer.proc.send_signal(signal.SIGKILL)
        peer.proc.wait(timeout=10)
        self._reported_exits.add((sid, peer.proc.pid))
        peer.stopped = False

    def stop(self, sid: int) -> None:
        """SIGSTOP: the process hangs with its sockets open (a hung leader)."""
        peer = self.peers[sid]
        if peer.proc is None or not peer.running():
            return
        self._mark(sid, "stopped", pid=peer.proc.pid)
        peer.proc.send_signal(signal.SIGSTOP)
        peer.stopped = True

    def cont(self, sid: int) -> None:
        peer = self.peers[sid]
        if peer.proc is None or not peer.running() or not peer.stopped:
            return
        peer.proc.send_signal(signal.SIGCONT)
        peer.stopped = False
        self._mark(sid, "continued", pid=peer.proc.pid)

    def live(self) -> list[int]:
        """Peers whose process runs and is not stopped."""
        return [sid for sid, p in self.peers.items() if p.running() and not p.stopped]

    def pids(self) -> list[int]:
        """Every pid this cluster has started (running or not)."""
        return [p.proc.pid for p in self.peers.values() if p.proc is not None]

    def unexpected_exits(self) -> list[tuple[int, int]]:
        """(sid, status) of peers that exited on their own since the last call."""
        out = []
        for sid, peer in self.peers.items():
            if peer.proc is None:
                continue
            status = peer.proc.poll()
            key = (sid, peer.proc.pid)
            if status is not None and key not in self._reported_exits:
                self._reported_exits.add(key)
                self._mark(sid, "exited", pid=peer.proc.pid, status=status)
                out.append((sid, status))
        return out

    def poll_events(self) -> list[Event]:
        """New events from every peer's file and from this supervisor, in time order."""
        new: list[Event] = []
        for peer in self.peers.values():
            new.extend(peer.read_events())
        new.extend(self.marks)
        self.marks = []
        new.sort(key=lambda e: e.t)
        return new

    def shutdown(self, timeout: float = 5.0) -> list[int]:
        """End every process this cluster started, by pid: TERM (after CONT), then KILL.

        Returns the pids that were still running and have been ended.
        """
        ended: list[int] = []
        for peer in self.peers.values():
            proc = peer.proc
            if proc is None or proc.poll() is not None:
                continue
            ended.append(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
                proc.send_signal(signal.SIGCONT)
            peer.stopped = False
        deadline = time.monotonic() + timeout
        for peer in self.peers.values():
            proc = peer.proc
            if proc is None:
                continue
            remaining = max(0.05, deadline - time.monotonic())
            try:
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=10)
            self._reported_exits.add((peer.sid, proc.pid))
        return ended

    def rss_kib(self, sid: int, field: str = "VmHWM") -> int | None:
        """``VmHWM`` (peak) or ``VmRSS`` of a running peer, in KiB."""
        pid = self.peers[sid].pid
        if pid is None:
            return None
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return None
