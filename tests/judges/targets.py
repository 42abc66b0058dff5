"""What a judge runs against: a small spec of servers, started and stopped by pid.

    JAVA_STANDALONE        one Debian ZooKeeper 3.8.0 server (the baseline of every judge)
    JAVA_ENSEMBLE          3 Java servers, clients through server 1
    ZKQUORUM_STANDALONE    one ``zkquorum run``
    ZKQUORUM_ENSEMBLE      3 zkquorum peers, clients through server 1
    MIXED_ZKQUORUM_LEADER  2 Java followers + a zkquorum leader (sid 3), clients through
                           Java server 1
    MIXED_ZKQUORUM_FOLLOWER  a zkquorum follower (sid 1) of a Java leader (sid 3), clients
                           through the zkquorum follower

A judge is parametrized by :data:`JUDGE_TARGETS` (:func:`target_params`): the Java targets
are the baseline; a zkquorum target not in :data:`ZKQUORUM_SERVES_CLIENTS` would be marked
``xfail(strict=True)`` (every one serves clients today).
``ZKQUORUM_JUDGE_TARGETS=name,name`` restricts a
run to some targets (e.g. ``zkquorum-standalone`` alone while building the client port).

Server-side switches are given as JVM system properties (``{"zookeeper.extendedTypesEnabled":
"true"}``): a Java server gets them as ``-D`` flags, a zkquorum peer as zoo.cfg lines under
the name :func:`tests.judges.javashim.config_key` gives (the translation kazoo's shim uses).

:meth:`RunningTarget.wait_serving` waits until every server answers ``srvr`` with a
serving mode (and the expected leader leads), then opens and closes one session through
each client server with a raw ConnectRequest / closeSession: that proves the client port
serves, fails fast (and clearly) when it does not, and costs the same two zxids on every
target, so zxids stay comparable between targets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tests.interop.zk import ZooKeeperInstall
from tests.interop.zkserver import wait_for
from tests.judges.javashim import config_key
from tests.peer.cluster import Ensemble, ensemble

# The zkquorum targets that serve clients: all of them.
ZKQUORUM_SERVES_CLIENTS: frozenset[str] = frozenset(
    {"zkquorum-standalone", "java-2+zkquorum-leader", "zkquorum-3", "java-leader+zkquorum-follower"}
)
NOT_YET = "this zkquorum target does not serve clients"


# The settings every judge's servers share: a short tick keeps session expiry (2 x tick to
# 20 x tick) quick; the whitelist lets srvr answer.
JUDGE_SETTINGS: Mapping[str, str] = {
    "tickTime": "200",
    "initLimit": "10",
    "syncLimit": "5",
    "4lw.commands.whitelist": "*",
}


@dataclasses.dataclass(frozen=True, slots=True)
class TargetSpec:
    """Which sids run Java, which run zkquorum, and where clients connect."""

    name: str
    java_sids: tuple[int, ...] = ()
    py_sids: tuple[int, ...] = ()
    client_sids: tuple[int, ...] = (1,)
    leader: int | None = None  # the sid that must lead (None: any)

    @property
    def sids(self) -> tuple[int, ...]:
        return tuple(sorted({*self.java_sids, *self.py_sids}))

    @property
    def uses_zkquorum(self) -> bool:
        return bool(self.py_sids)

    @property
    def standalone(self) -> bool:
        return len(self.sids) == 1


JAVA_STANDALONE = TargetSpec("java-standalone", java_sids=(1,))
JAVA_ENSEMBLE = TargetSpec("java-3", java_sids=(1, 2, 3))
ZKQUORUM_STANDALONE = TargetSpec("zkquorum-standalone", py_sids=(1,))
ZKQUORUM_ENSEMBLE = TargetSpec("zkquorum-3", py_sids=(1, 2, 3))
MIXED_ZKQUORUM_LEADER = TargetSpec(
    "java-2+zkquorum-leader", java_sids=(1, 2), py_sids=(3,), leader=3
)
MIXED_ZKQUORUM_FOLLOWER = TargetSpec(
    "java-leader+zkquorum-follower", java_sids=(2, 3), py_sids=(1,), client_sids=(1,), leader=3
)
"""Clients on a zkquorum follower (sid 1) of a Java leader (sid 3)."""
ALL_TARGETS = (
    JAVA_STANDALONE,
    JAVA_ENSEMBLE,
    ZKQUORUM_STANDALONE,
    ZKQUORUM_ENSEMBLE,
    MIXED_ZKQUORUM_LEADER,
    MIXED_ZKQUORUM_FOLLOWER,
)
BY_NAME = {t.name: t for t in ALL_TARGETS}


def target_params(*targets: TargetSpec) -> list[object]:
    """pytest params for ``targets``: zkquorum ones xfail(strict) until they serve clients."""
    chosen = os.environ.get("ZKQUORUM_JUDGE_TARGETS", "").strip()
    wanted = {n.strip() for n in chosen.split(",") if n.strip()} if chosen else None
    unknown = (wanted or set()) - set(BY_NAME)
    if unknown:
        raise ValueError(f"ZKQUORUM_JUDGE_TARGETS: unknown {sorted(unknown)}; know {list(BY_NAME)}")
    params: list[object] = []
    for t in targets:
        if wanted is not None and t.name not in wanted:
            continue
        marks = []
        if t.uses_zkquorum and t.name not in ZKQUORUM_SERVES_CLIENTS:
            marks.append(pytest.mark.xfail(strict=True, reason=NOT_YET))
        params.append(pytest.param(t, id=t.name, marks=marks))
    return params


# ------------------------------------------------------------------- a session, by hand


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"server closed the connection after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def _frame(sock: socket.socket) -> bytes:
    (length,) = struct.unpack(">i", _recv_exactly(sock, 4))
    if not 0 <= length <= 0xFFFFF:
        raise ConnectionError(f"bad frame length {length}")
    return _recv_exactly(sock, length)


def open_and_close_session(host: str, port: int, timeout: float = 5.0) -> int:
    """One ConnectRequest, then closeSession; the session id (spec zk-server.md 2.1, 2.3)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        # protocolVersion, lastZxidSeen, timeOut, sessionId, passwd (16 zero bytes), readOnly
        body = struct.pack(">iqiqi16s?", 0, 0, 30000, 0, 16, b"\0" * 16, False)
        sock.sendall(struct.pack(">i", len(body)) + body)
        resp = _frame(sock)
        if len(resp) < 20:
            raise ConnectionError(f"short ConnectResponse ({len(resp)} bytes)")
        _, timeout_ms, session = struct.unpack(">iiq", resp[:16])
        if session == 0 or timeout_ms <= 0:
            raise ConnectionError("the server refused the session (timeOut 0, sessionId 0)")
        sock.sendall(struct.pack(">iii", 8, 1, -11))  # closeSession, xid 1
        while True:
            reply = _frame(sock)
            xid, _, err = struct.unpack(">iqi", reply[:16])
            if xid == 1:
                if err != 0:
                    raise ConnectionError(f"closeSession answered err {err}")
                return session


@dataclasses.dataclass
class RunningTarget:
    """A started target: where clients connect, logs, restart by sid."""

    spec: TargetSpec
    ens: Ensemble

    def address(self, sid: int | None = None) -> tuple[str, int]:
        server = self.ens.servers[self.spec.client_sids[0] if sid is None else sid]
        return server.host, server.client_port

    def hosts(self, sid: int | None = None) -> str:
        host, port = self.address(sid)
        return f"{host}:{port}"

    def wait_serving(self, timeout: float = 60.0, session_timeout: float = 10.0) -> None:
        def settled() -> bool:
            self.ens.check_alive()
            modes = self.ens.modes()
            if any(m is None for m in modes.values()):
                return False
            if self.spec.standalone:
                return True
            leaders = [sid for sid, m in modes.items() if m == "leader"]
            return len(leaders) == 1

        wait_for(settled, timeout=timeout, what=f"{self.spec.name}: every server serving")
        if self.spec.leader is not None:
            modes = self.ens.modes()
            if modes.get(self.spec.leader) != "leader":
                raise AssertionError(
                    f"{self.spec.name}: server {self.spec.leader} should lead, modes {modes}"
                )
        for sid in self.spec.client_sids:
            self._wait_session(sid, session_timeout)

    def _wait_session(self, sid: int, timeout: float) -> None:
        host, port = self.address(sid)
        last: list[BaseException] = []

        def session_ok() -> bool:
            try:
                open_and_close_session(host, port)
                return True
            except OSError as exc:
                last[:] = [exc]
                return False

        try:
            wait_for(session_ok, timeout=timeout, what="a client session")
        except TimeoutError:
            kind = "zkquorum" if sid in self.spec.py_sids else "Java"
            raise AssertionError(
                f"{self.spec.name}: server {sid} ({kind}) at {host}:{port} opened no "
                f"client session within {timeout} s: {last[0] if last else '?'}"
            ) from None

    def restart(self, sid: int) -> None:
        server = self.ens.servers[sid]
        server.stop()
        server.proc = None
        self.ens.start([sid])

    def logs(self) -> str:
        return self.ens.logs()


@contextlib.contextmanager
def run_target(
    spec: TargetSpec,
    base_dir: Path,
    install: ZooKeeperInstall | None,
    *,
    system_properties: Mapping[str, str] | None = None,
    settings: Mapping[str, str] | None = None,
    wait: bool = True,
) -> Iterator[RunningTarget]:
    """Start ``spec``'s servers; stop every one by pid whatever happens.

    ``system_properties``: JVM -D flags for Java servers, zoo.cfg lines for zkquorum peers.
    """
    if spec.java_sids and install is None:
        raise ValueError(f"{spec.name} needs ZooKeeper installed")
    props = dict(system_properties or {})
    merged = dict(JUDGE_SETTINGS)
    merged.update(settings or {})
    if spec.py_sids:
        # zkquorum reads them from zoo.cfg; Java reads the zookeeper.* ones there too, same
        # value, so a shared zoo.cfg stays consistent (tests/judges/javashim.py).
        merged.update({config_key(k): v for k, v in props.items()})
    flags = [f"-D{k}={v}" for k, v in props.items()]
    with ensemble(
        base_dir,
        py_sids=spec.py_sids,
        java_sids=spec.java_sids,
        install=install,
        settings=merged,
        jvm_flags={sid: flags for sid in spec.java_sids},
        py_args=(),
        start=False,
    ) as ens:
        if spec.leader is not None:
            # The leader the spec names (the highest sid) starts first and listens on its
            # election port before the others start: started together on a loaded
            # machine, two others could elect each other before it is up.
            first = ens.servers[spec.leader]
            ens.start([spec.leader])
            wait_for(
                lambda: _listening(first.election_port) or not first.running(),
                timeout=60,
                what=f"{spec.name}: server {spec.leader}'s election port",
            )
            ens.start([sid for sid in ens.servers if sid != spec.leader])
        else:
            ens.start()
        running = RunningTarget(spec, ens)
        if wait:
            running.wait_serving()
        yield running


def _listening(port: int) -> bool:
    """Whether something listens on TCP ``port`` (IPv4 or IPv6), from /proc/net."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def hosts_of(running: RunningTarget, sids: Sequence[int]) -> str:
    return ",".join(running.hosts(s) for s in sids)
