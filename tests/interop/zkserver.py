"""Ensembles of real ZooKeeper 3.8 servers on loopback, for interop tests.

    with java_ensemble(install, tmp_path, sids=[1, 2, 3]) as ens:
        leader = ens.wait_for_leader(timeout=20)
        assert ens.modes() == {...}

Every server gets its own directory (``conf/zoo.cfg``, ``conf/log4j.properties``,
``data/myid``, ``logs/zookeeper.log``), free loopback ports, its own JVM flags (for example
``-Dzookeeper.multiAddress.enabled=true``), and is stopped by pid whatever happens. If the
``with`` block raises, every server's log is printed (pytest shows it with the failure).
The ``srvr`` four-letter word, over the client port, tells each server's mode.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from tests.interop.zk import (
    ZooKeeperInstall,
    server_command,
    stop_process,
    write_log4j_properties,
)
from zkquorum.testing import free_ports

T = TypeVar("T")

LOOPBACK = "127.0.0.1"


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_PORT_RNG = random.Random()


def four_letter_word(host: str, port: int, cmd: str, timeout: float = 2.0) -> str:
    """Send a four-letter word (``srvr``, ``conf``, ``stat``...) and read the whole answer."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(cmd.encode("ascii"))
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def parse_srvr(text: str) -> dict[str, str]:
    """``srvr`` output as a dict (``Mode``, ``Zxid``, ``Zookeeper version``...)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> T:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)  # poll interval, never used as synchronisation


@dataclasses.dataclass
class JavaServer:
    """One QuorumPeerMain: its ports, directory and process."""

    sid: int
    root: Path
    quorum_port: int
    election_port: int
    client_port: int
    role: str = "participant"
    host: str = LOOPBACK
    jvm_flags: tuple[str, ...] = ()
    # More (host, quorumPort, electionPort) addresses, joined with '|' (multiAddress).
    extra_addresses: tuple[tuple[str, int, int], ...] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def conf_dir(self) -> Path:
        return self.root / "conf"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def cfg_path(self) -> Path:
        return self.conf_dir / "zoo.cfg"

    def server_line(self) -> str:
        addrs = [(self.host, self.quorum_port, self.election_port), *self.extra_addresses]
        joined = "|".join(f"{h}:{q}:{e}" for h, q, e in addrs)
        return f"server.{self.sid}={joined}:{self.role}"

    def start(self, install: ZooKeeperInstall) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"server {self.sid} running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = (self.log_dir / "stdout.txt").open("ab")
        try:
            self.proc = subprocess.Popen(
                server_command(install, self.cfg_path, self.conf_dir, self.log_dir, self.jvm_flags),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            out.close()

    def stop(self) -> int | None:
        """Stop it by its pid (TERM, then KILL); return the exit status."""
        if self.proc is None:
            return None
        return stop_process(self.proc)

    def kill(self) -> None:
        """kill -9, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def srvr(self) -> dict[str, str] | None:
        """The ``srvr`` answer, or None when the server does not answer (yet)."""
        try:
            return parse_srvr(four_letter_word(self.host, self.client_port, "srvr"))
        except OSError:
            return None

    def mode(self) -> str | None:
        """``leader``/``follower``/``observer``/``standalone``, None while not serving."""
        info = self.srvr()
        return info.get("Mode") if info else None

    def log(self) -> str:
        parts = []
        for name in ("zookeeper.log", "stdout.txt"):
            path = self.log_dir / name
            if path.is_file():
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)


@dataclasses.dataclass
class JavaEnsemble:
    """Real ZooKeeper servers sharing one membership."""

    install: ZooKeeperInstall
    servers: dict[int, JavaServer]
    settings: dict[str, str]

    def config_text(self, server: JavaServer) -> str:
        lines = [f"{k}={v}" for k, v in self.settings.items()]
        lines.append(f"dataDir={server.data_dir}")
        lines.append(f"clientPort={server.client_port}")
        lines.append(f"clientPortAddress={server.host}")
        lines.extend(s.server_line() for s in self.servers.values())
        return "\n".join(lines) + "\n"

    def write_configs(self) -> None:
        for server in self.servers.values():
            server.data_dir.mkdir(parents=True, exist_ok=True)
            write_log4j_properties(server.conf_dir)
            server.cfg_path.write_text(self.config_text(server))
            (server.data_dir / "myid").write_text(f"{server.sid}\n")

    def start(self, sids: Iterable[int] | None = None) -> None:
        for sid in self.servers if sids is None else sids:
            self.servers[sid].start(self.install)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def modes(self) -> dict[int, str | None]:
        return {sid: s.mode() for sid, s in self.servers.items()}

    def check_alive(self) -> None:
        """Fail fast when a server died (a config or port problem), with its exit status."""
        for sid, s in self.servers.items():
            if s.proc is not None and s.proc.poll() is not None:
                raise RuntimeError(f"ZooKeeper server {sid} exited with {s.proc.returncode}")

    def wait_for_leader(self, timeout: float = 30.0) -> int:
        """Wait until every running server serves and exactly one is the leader."""

        def settled() -> int | None:
            self.check_alive()
            modes = {sid: s.mode() for sid, s in self.servers.items() if s.running()}
            if not modes or any(m is None for m in modes.values()):
                return None
            leaders = [sid for sid, m in modes.items() if m == "leader"]
            return leaders[0] if len(leaders) == 1 else None

        return wait_for(settled, timeout=timeout, what="one leader and every server serving")

    def logs(self) -> str:
        return "".join(
            f"\n===== ZooKeeper server {sid} ({s.root}) =====\n{s.log()}"
            for sid, s in self.servers.items()
        )


DEFAULT_SETTINGS = {
    "tickTime": "200",
    "initLimit": "10",
    "syncLimit": "5",
    "4lw.commands.whitelist": "*",
}


def make_ensemble(
    install: ZooKeeperInstall,
    base_dir: Path,
    sids: Sequence[int] = (1, 2, 3),
    *,
    observers: Sequence[int] = (),
    settings: Mapping[str, str] | None = None,
    jvm_flags: Mapping[int, Sequence[str]] | None = None,
    extra_hosts: Mapping[int, Sequence[str]] | None = None,
) -> JavaEnsemble:
    """Lay out (not start) an ensemble: ports, directories, zoo.cfg and myid per server.

    ``extra_hosts={sid: ["127.0.0.2"]}`` gives that server more addresses (joined with
    ``|``), each with its own free ports; its JVM then needs
    ``-Dzookeeper.multiAddress.enabled=true`` (see ``jvm_flags``).
    """
    all_sids = [*sids, *observers]
    ports = free_ports(3 * len(all_sids))
    servers: dict[int, JavaServer] = {}
    for i, sid in enumerate(all_sids):
        extra = []
        for host in (extra_hosts or {}).get(sid, ()):
            q, e = free_ports(2, host)
            extra.append((host, q, e))
        servers[sid] = JavaServer(
            sid=sid,
            root=base_dir / f"zk{sid}",
            quorum_port=ports[3 * i],
            election_port=ports[3 * i + 1],
            client_port=ports[3 * i + 2],
            role="observer" if sid in observers else "participant",
            jvm_flags=tuple((jvm_flags or {}).get(sid, ())),
            extra_addresses=tuple(extra),
        )
    merged = dict(DEFAULT_SETTINGS)
    merged.update(settings or {})
    ens = JavaEnsemble(install, servers, merged)
    ens.write_configs()
    return ens


@contextlib.contextmanager
def java_ensemble(
    install: ZooKeeperInstall,
    base_dir: Path,
    sids: Sequence[int] = (1, 2, 3),
    *,
    start: bool = True,
    **kwargs: object,
) -> Iterator[JavaEnsemble]:
    """An ensemble that is stopped (by pid) whatever happens; logs printed on failure."""
    ens = make_ensemble(install, base_dir, sids, **kwargs)  # type: ignore[arg-type]
    try:
        if start:
            ens.start()
        yield ens
    except BaseException:
        print(ens.logs(), file=sys.stderr)
        raise
    finally:
        ens.stop()
