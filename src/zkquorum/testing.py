"""ZooKeeper servers for test suites: a standalone server or a three-peer ensemble of
zkquorum processes on free loopback ports, with no JVM.

As a pytest plugin (installed with zkquorum; nothing to configure), two fixtures, each a
fresh server or ensemble for one test, stopped and removed afterwards whatever happens::

    def test_lock(zkquorum_server):
        zk = KazooClient(hosts=zkquorum_server.hosts)
        zk.start()
        ...

    def test_failover(zkquorum_ensemble):
        zk = KazooClient(hosts=zkquorum_ensemble.hosts)
        zk.start()
        zkquorum_ensemble.kill(zkquorum_ensemble.leader())  # SIGKILL
        ...                                              # the client fails over
        zkquorum_ensemble.restart_all()

Without pytest, :class:`ZooKeeperServer` and :class:`ZooKeeperEnsemble` are context
managers.  Each member is a ``python -m zkquorum run zoo.cfg`` process (a real server on
real sockets and files); its log is ``<dir>/server.log``.  Only processes started here are
ever signalled, by their pid.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

LOOPBACK: Final = "127.0.0.1"
START_TIMEOUT_S: Final = 30.0
"""How long a server may take to serve clients after its process starts."""
STOP_TIMEOUT_S: Final = 10.0


class ServerError(RuntimeError):
    """A server did not start or serve in time; the message ends with its log's tail."""


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct ports of ``host`` that were free a moment ago, below the kernel's
    ephemeral range (so that no outgoing connection takes one before a server binds it,
    which for a JVM can take a second or more)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.SystemRandom()
    chosen: list[int] = []
    held: list[socket.socket] = []
    try:
        while len(chosen) < count:
            port = rng.randrange(10000, max(low - 1, 11000))
            if port in chosen:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                s.close()
                continue
            held.append(s)
            chosen.append(port)
        return chosen
    finally:
        for s in held:
            s.close()


def four_letter_word(port: int, word: str, timeout: float = 2.0) -> str:
    """The answer to a four-letter word on the client port (``srvr``, ``mntr``...)."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(word.encode("ascii"))
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


class Member:
    """One server process: its directory, zoo.cfg and client port."""

    def __init__(self, directory: Path, config: str, client_port: int, sid: int = 0) -> None:
        self.sid = sid
        self.directory = directory
        self.client_port = client_port
        self.cfg_path = directory / "zoo.cfg"
        self.log_path = directory / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "data").mkdir(exist_ok=True)
        self.cfg_path.write_text(config)
        if sid:
            (directory / "data" / "myid").write_text(f"{sid}\n")

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.client_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "zkquorum", "run", str(self.cfg_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.directory,
            )

    def mode(self) -> str | None:
        """``srvr``'s ``Mode:`` (standalone, leader, follower, observer), or ``None`` while
        the server does not serve clients."""
        try:
            answer = four_letter_word(self.client_port, "srvr")
        except OSError:
            return None
        for line in answer.splitlines():
            if line.startswith("Mode: "):
                return line.removeprefix("Mode: ").strip()
        return None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed or closed by the server."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def pause(self) -> None:
        """SIGSTOP: the process stays, its sockets stay open, it answers nothing."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM (the server closes cleanly), SIGKILL if it has not ended in time."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait(members: Sequence[Member], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        for m in members:
            if m.proc is not None and m.proc.poll() is not None:
                raise ServerError(
                    f"server {m.address} exited with status {m.proc.returncode} "
                    f"before {what}:\n{m.log_tail()}"
                )
        if all(m.mode() is not None for m in members):
            return
        if time.monotonic() >= deadline:
            late = [m for m in members if m.mode() is None]
            tails = "\n".join(f"--- {m.address}:\n{m.log_tail()}" for m in late)
            raise ServerError(f"{what}: not serving after {timeout:.0f} s\n{tails}")
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


class _Group:
    """Members in a directory of their own (removed at close unless it was given)."""

    members: list[Member]

    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self._own = directory is None
        self.directory = (
            Path(tempfile.mkdtemp(prefix="zkquorum-")) if directory is None else Path(directory)
        )
        self.members = []

    @property
    def hosts(self) -> str:
        """The connect string of every member: ``127.0.0.1:p1,127.0.0.1:p2,...``."""
        return ",".join(m.address for m in self.members)

    def close(self) -> None:
        try:
            for m in self.members:
                m.stop()
        finally:
            if self._own:
                shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ZooKeeperServer(_Group):
    """One standalone server (``ZooKeeperServerMain``), serving once the constructor returns."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        tick_time: int = 200,
        extra: str = "",
        timeout: float = START_TIMEOUT_S,
    ) -> None:
        super().__init__(directory)
        try:
            (port,) = free_ports(1)
            config = (
                f"tickTime={tick_time}\ndataDir={self.directory / 'server' / 'data'}\n"
                f"clientPortAddress={LOOPBACK}\nclientPort={port}\n"
                f"4lw.commands.whitelist=*\n{extra}"
            )
            self.server = Member(self.directory / "server", config, port)
            self.members.append(self.server)
            self.server.start()
            _wait(self.members, timeout, "the standalone server")
        except BaseException:
            self.close()
            raise

    @property
    def port(self) -> int:
        return self.server.client_port

    def restart(self, timeout: float = START_TIMEOUT_S) -> None:
        """Stop (SIGTERM) and start again on the same data; returns once serving."""
        self.server.stop()
        self.server.start()
        _wait(self.members, timeout, "the restarted server")


class ZooKeeperEnsemble(_Group):
    """``size`` zkquorum peers (three by default) electing a leader and serving clients."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        size: int = 3,
        tick_time: int = 200,
        extra: str = "",
        timeout: float = START_TIMEOUT_S,
    ) -> None:
        super().__init__(directory)
        try:
            ports = free_ports(3 * size)
            servers = "".join(
                f"server.{i + 1}={LOOPBACK}:{ports[3 * i]}:{ports[3 * i + 1]}\n"
                for i in range(size)
            )
            for i in range(size):
                sid, client_port = i + 1, ports[3 * i + 2]
                home = self.directory / f"server{sid}"
                config = (
                    f"tickTime={tick_time}\ninitLimit=10\nsyncLimit=5\n"
                    f"dataDir={home / 'data'}\nclientPortAddress={LOOPBACK}\n"
                    f"clientPort={client_port}\n4lw.commands.whitelist=*\n{extra}{servers}"
                )
                self.members.append(Member(home, config, client_port, sid))
            for m in self.members:
                m.start()
            _wait(self.members, timeout, "the ensemble")
        except BaseException:
            self.close()
            raise

    @property
    def servers(self) -> dict[int, Member]:
        return {m.sid: m for m in self.members}

    def leader(self, timeout: float = START_TIMEOUT_S) -> int:
        """The sid of the member that leads now (waits for one while there is none)."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.members:
                if m.running and m.mode() == "leader":
                    return m.sid
            if time.monotonic() >= deadline:
                raise ServerError(f"no leader after {timeout:.0f} s")
            time.sleep(0.05)

    def kill(self, sid: int) -> None:
        """SIGKILL one member."""
        self.servers[sid].kill()

    def restart(self, sid: int, timeout: float = START_TIMEOUT_S) -> None:
        """Start a stopped or killed member again on its data; returns once it serves."""
        m = self.servers[sid]
        m.stop()
        m.start()
        _wait([m], timeout, f"server {sid} after its restart")

    def restart_all(self, timeout: float = START_TIMEOUT_S) -> None:
        for m in self.members:
            if not m.running:
                m.start()
        _wait(self.members, timeout, "the ensemble after restarts")


with contextlib.suppress(ImportError):
    import pytest

    @pytest.fixture
    def zkquorum_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
        """A standalone zkquorum server for this test (``.hosts``, ``.port``, ``.restart()``)."""
        with ZooKeeperServer(tmp_path_factory.mktemp("zkquorum")) as server:
            yield server

    @pytest.fixture
    def zkquorum_ensemble(
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[ZooKeeperEnsemble]:
        """Three zkquorum peers for this test (``.hosts``, ``.leader()``, ``.kill(sid)``,
        ``.restart(sid)``, ``.servers``)."""
        with ZooKeeperEnsemble(tmp_path_factory.mktemp("zkquorum")) as ensemble:
            yield ensemble
