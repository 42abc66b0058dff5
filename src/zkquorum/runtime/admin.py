"""The client port: ZooKeeper's four-letter words, and a client to ask them.

Facts: ``docs/spec/quorum-config-and-zab.md`` B5, checked against Debian's 3.8.0:

* A word is the first four bytes a client sends on the client port; the server writes
  the answer and closes.  Anything else (client sessions are not part of zkquorum yet)
  is closed without a word, as 3.8 does for an unknown word.
* ``4lw.commands.whitelist``: ``srvr`` is always allowed, ``*`` allows all; a known word
  that is not allowed answers ``<word> is not executed because it is not in the
  whitelist.`` (then a newline), whatever the state.
* While the peer is LOOKING, ``srvr``, ``stat``, ``mntr`` and ``conf`` answer ``This
  ZooKeeper instance is not currently serving requests``; ``ruok`` still answers
  ``imok`` and ``envi`` still answers; ``isro`` answers ``null``.
* Until the quorum port exists a decided peer reports its decided role (``Mode:
  follower``...), its zxid and zero client statistics.

The peer driver plugs in with a :data:`StatusProvider`: a callable returning a frozen
:class:`PeerStatus`; it is called once per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import platform
import resource
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from zkquorum import __version__
from zkquorum.config.model import HostPort, LearnerType
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.runtime.connections import ConnectionCounters
from zkquorum.runtime.netfmt import format_peer
from zkquorum.runtime.tls import TlsCounters
from zkquorum.wire.client import FOUR_LETTER_WORDS
from zkquorum.wire.election import ServerState
from zkquorum.wire.zxid import zxid_hex

log = logging.getLogger(__name__)

ZOOKEEPER_VERSION: Final = "3.8.0"
VERSION_STRING: Final = f"{ZOOKEEPER_VERSION}-zkquorum-{__version__}, built on n/a"
"""What ``Zookeeper version:`` shows: 3.8's ``<version>-<commit>, built on <date>`` shape."""

NOT_SERVING: Final = "This ZooKeeper instance is not currently serving requests\n"
KNOWN_WORDS: Final = FOUR_LETTER_WORDS
"""``FourLetterCommands`` of 3.8: answered with the whitelist message when not allowed."""
IMPLEMENTED: Final = frozenset({"conf", "envi", "isro", "mntr", "ruok", "srvr", "stat"})
READ_TIMEOUT: Final = 10.0

_MODES: Final = {
    ServerState.LEADING: "leader",
    ServerState.FOLLOWING: "follower",
    ServerState.OBSERVING: "observer",
}


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """What the peer driver reports, at the moment a four-letter word is answered.

    Election times are in milliseconds, from entering LOOKING to the decision
    (ZOOKEEPER-3479's lesson); ``elections`` counts finished elections.
    """

    state: ServerState
    my_id: int
    leader: int | None = None
    """The decided leader's sid (``None`` while LOOKING)."""
    zxid: int = 0
    """Last logged zxid (``Zxid:`` of ``srvr``)."""
    peer_epoch: int = 0
    """``currentEpoch``."""
    election_epoch: int = 0
    """The logical clock (round) of the last election."""
    elections: int = 0
    election_time_last_ms: int | None = None
    election_time_min_ms: int = 0
    election_time_max_ms: int = 0
    election_time_total_ms: int = 0
    looking_count: int = 0
    """How many times the peer entered LOOKING (``zk_looking_count``)."""
    zab_state: str = "election"
    """``zk_peer_state`` is ``<state> - <zab_state>``; 3.8: election, discovery,
    synchronization, broadcast.  Without a quorum port a decided peer is in discovery."""
    connections: ConnectionCounters = field(default_factory=ConnectionCounters)
    connected_peers: frozenset[int] = frozenset()
    config: QuorumConfig | None = None
    uptime_ms: int = 0
    node_count: int = 0
    """As 3.8 counts them: the root is in its map twice (``""`` and ``"/"``)."""
    quorum_learners_dropped: int = 0
    """Learner connections this peer closed while leading (refused, silent, bad)."""
    quorum_bad_packets: int = 0
    """Of those, the ones closed on bytes that are no quorum packet."""
    tasks: int = 0
    tls: TlsCounters | None = None
    """The quorum TLS counters (``None`` without ``sslQuorum``)."""
    """asyncio tasks alive in the peer's loop (a leak shows here)."""


StatusProvider = Callable[[], PeerStatus]


# -- rendering (pure but for envi and the data directory size) ---------------------------


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """One open client-port connection, for ``stat`` and the counts of ``srvr``."""

    address: str
    received: int
    sent: int = 0
    queued: int = 0


@dataclass(frozen=True, slots=True)
class ServerCounts:
    received: int = 0
    sent: int = 0
    clients: tuple[ClientInfo, ...] = ()
    outstanding: int = 0
    min_latency: int = 0
    avg_latency: float = 0.0
    max_latency: int = 0
    watch_count: int = 0
    ephemerals_count: int = 0
    approximate_data_size: int = 0
    rejected: int = 0
    """Connections refused for ``maxClientCnxns``."""


def is_allowed(word: str, whitelist: frozenset[str]) -> bool:
    return word == "srvr" or "*" in whitelist or word in whitelist


def _srvr(status: PeerStatus, counts: ServerCounts, *, stat: bool) -> str:
    mode = _MODES[status.state]
    lines = [f"Zookeeper version: {VERSION_STRING}"]
    if stat:
        lines.append("Clients:")
        lines.extend(
            f" /{c.address}[1](queued={c.queued},recved={c.received},sent={c.sent})"
            for c in counts.clients
        )
        lines.append("")
    lines += [
        "Latency min/avg/max: "
        f"{counts.min_latency}/{float(counts.avg_latency)}/{counts.max_latency}",
        f"Received: {counts.received}",
        f"Sent: {counts.sent}",
        f"Connections: {len(counts.clients)}",
        f"Outstanding: {counts.outstanding}",
        f"Zxid: 0x{zxid_hex(status.zxid)}",
        f"Mode: {mode}",
        f"Node count: {status.node_count}",
    ]
    if status.state is ServerState.LEADING:
        lines.append("Proposal sizes last/min/max: -1/-1/-1")
    return "\n".join(lines) + "\n"


def _fd_counts() -> tuple[int, int]:
    try:
        open_fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_fds = -1
    return open_fds, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _mntr(status: PeerStatus, counts: ServerCounts) -> str:
    c = status.connections
    cfg = status.config
    avg = status.election_time_total_ms / status.elections if status.elections else 0.0
    open_fds, max_fds = _fd_counts()
    values: list[tuple[str, object]] = [
        ("version", VERSION_STRING),
        ("server_state", _MODES[status.state]),
        ("peer_state", f"{status.state.name.lower()} - {status.zab_state}"),
        ("uptime", status.uptime_ms),
        ("num_alive_connections", len(counts.clients)),
        ("outstanding_requests", counts.outstanding),
        ("packets_received", counts.received),
        ("packets_sent", counts.sent),
        ("avg_latency", float(counts.avg_latency)),
        ("min_latency", counts.min_latency),
        ("max_latency", counts.max_latency),
        ("znode_count", status.node_count),
        ("watch_count", counts.watch_count),
        ("ephemerals_count", counts.ephemerals_count),
        ("approximate_data_size", counts.approximate_data_size),
        ("connection_rejected", counts.rejected),
        ("open_file_descriptor_count", open_fds),
        ("max_file_descriptor_count", max_fds),
        ("quorum_size", len(cfg.voting_members) if cfg is not None else 0),
        ("looking_count", status.looking_count),
        ("avg_election_time", float(avg)),
        ("min_election_time", status.election_time_min_ms),
        ("max_election_time", status.election_time_max_ms),
        ("cnt_election_time", status.elections),
        ("sum_election_time", status.election_time_total_ms),
        # zkquorum's own election metrics (not in 3.8)
        (
            "last_election_time",
            status.election_time_last_ms if status.election_time_last_ms is not None else -1,
        ),
        ("election_epoch", status.election_epoch),
        ("election_notifications_sent", c.notifications_sent),
        ("election_notifications_received", c.notifications_received),
        ("election_notifications_dropped", c.notifications_dropped),
        ("election_recv_queue_overflows", c.recv_queue_overflows),
        ("election_bad_connections_refused", c.bad_connections_refused),
        ("election_connections_made", c.connections_made),
        ("election_connections_dropped", c.connections_dropped),
        ("election_connect_failures", c.connect_failures),
        ("election_peers_connected", len(status.connected_peers)),
        ("election_unknown_sids_refused", c.unknown_sids_refused),
        ("quorum_learners_dropped", status.quorum_learners_dropped),
        ("quorum_bad_packets", status.quorum_bad_packets),
        ("zkquorum_tasks", status.tasks),
    ]
    t = status.tls
    if t is not None:
        values += [
            ("quorum_tls_handshakes", t.handshakes),
            ("quorum_tls_handshake_failures", t.handshake_failures),
            ("quorum_tls_identity_refused", t.identity_refused),
            ("quorum_tls_plain_accepted", t.plain_accepted),
            ("quorum_tls_context_reloads", t.context_reloads),
        ]
    return "".join(f"zk_{k}\t{v}\n" for k, v in values)


def _dir_size(path: Path) -> int:
    total = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(path):
            with contextlib.suppress(OSError):
                if entry.is_file():
                    total += entry.stat().st_size
    return total


def _conf(status: PeerStatus) -> str:
    cfg = status.config
    if cfg is None:
        return ""
    me = cfg.me
    data_dir = Path(cfg.data_dir) / "version-2"
    log_dir = Path(cfg.data_log_dir or cfg.data_dir) / "version-2"
    lines = [
        f"clientPort={cfg.client_port if cfg.client_port is not None else 0}",
        f"secureClientPort={cfg.secure_client_port or -1}",
        f"dataDir={data_dir}",
        f"dataDirSize={_dir_size(data_dir)}",
        f"dataLogDir={log_dir}",
        f"dataLogSize={_dir_size(log_dir)}",
        f"tickTime={cfg.tick_time}",
        "maxClientCnxns=60",
        f"minSessionTimeout={cfg.tick_time * 2}",
        f"maxSessionTimeout={cfg.tick_time * 20}",
        "clientPortListenBacklog=-1",
        f"serverId={status.my_id}",
    ]
    if cfg.verifier is not None:
        lines += [
            f"initLimit={cfg.init_limit}",
            f"syncLimit={cfg.sync_limit}",
            f"electionAlg={cfg.election_alg}",
        ]
        if me is not None:
            lines += [
                f"electionPort={me.election_addrs[0].port}",
                f"quorumPort={me.quorum_addrs[0].port}",
            ]
        lines.append(f"peerType={0 if cfg.learner_type is LearnerType.PARTICIPANT else 1}")
        lines.append("membership: ")
        lines.append(cfg.verifier.to_zk_string())
        return "\n".join(lines)
    return "\n".join(lines) + "\n"


def envi() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    env = [
        ("zookeeper.version", VERSION_STRING),
        ("host.name", socket.gethostname()),
        ("python.version", platform.python_version()),
        ("python.implementation", platform.python_implementation()),
        ("python.executable", sys.executable),
        ("zkquorum.version", __version__),
        ("os.name", platform.system()),
        ("os.arch", platform.machine()),
        ("os.version", platform.release()),
        ("user.name", user),
        ("user.home", os.path.expanduser("~")),
        ("user.dir", os.getcwd()),
        ("process.pid", os.getpid()),
    ]
    return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in env)


OPS_WORDS: Final = frozenset(FOUR_LETTER_WORDS) - IMPLEMENTED - {"ruok", "envi", "isro"}
"""The words :func:`render` leaves to :func:`zkquorum.runtime.fourletter.render` (over the
ops source that also feeds the AdminServer): ``cons``, ``dump``, ``wchc``..."""


def render(
    word: str, status: PeerStatus, whitelist: frozenset[str], counts: ServerCounts = ServerCounts()
) -> str | None:
    """The answer to ``word``, or ``None``: close without a word."""
    if word not in KNOWN_WORDS:
        return None
    if not is_allowed(word, whitelist):
        return f"{word} is not executed because it is not in the whitelist.\n"
    serving = status.state is not ServerState.LOOKING
    if word == "ruok":
        return "imok"
    if word == "envi":
        return envi()
    if word == "isro":
        return "rw" if serving else "null"
    if word not in IMPLEMENTED:
        return None
    if not serving:
        return NOT_SERVING
    if word == "mntr":
        return _mntr(status, counts)
    if word == "conf":
        return _conf(status)
    return _srvr(status, counts, stat=word == "stat")


# -- the server --------------------------------------------------------------------------


class AdminServer:
    """Answers four-letter words on the client port.

    Args:
        provider: returns the current :class:`PeerStatus`.
        address: where to listen (``clientPortAddress`` or ``0.0.0.0``, ``clientPort``;
            port 0 picks a free one: see :attr:`address`).
        whitelist: ``4lw.commands.whitelist`` as parsed (``QuorumConfig.four_letter_words``).
        read_timeout: seconds a client has to send its four bytes.
    """

    def __init__(
        self,
        provider: StatusProvider,
        address: HostPort,
        whitelist: frozenset[str] = frozenset({"srvr"}),
        *,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self._provider = provider
        self._want = address
        self._whitelist = whitelist
        self._read_timeout = read_timeout
        self._server: asyncio.Server | None = None
        self._bound: HostPort | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._clients: dict[asyncio.StreamWriter, list[int]] = {}
        self._addresses: dict[asyncio.StreamWriter, str] = {}
        self._received = 0
        self._sent = 0
        self._closed = False

    @classmethod
    def from_config(cls, config: QuorumConfig, provider: StatusProvider) -> AdminServer | None:
        """The client-port server of ``config``, or ``None`` without a client port."""
        port = config.client_port
        if port is None and config.me is not None and config.me.client_addr is not None:
            port = config.me.client_addr.port
        if not port:
            return None
        host = config.client_port_address
        if host is None and config.me is not None and config.me.client_addr is not None:
            host = config.me.client_addr.host
        return cls(provider, HostPort(host or "0.0.0.0", port), config.four_letter_words)

    async def __aenter__(self) -> AdminServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_client, self._want.host, self._want.port, reuse_address=True
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self._bound = HostPort(str(host), int(port))

    @property
    def address(self) -> HostPort:
        if self._bound is None:
            raise RuntimeError("not started")
        return self._bound

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in list(self._clients):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        self._clients.clear()
        if self._server is not None:
            await self._server.wait_closed()

    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closed:
            writer.close()
            return
        self._clients[writer] = [0]
        self._addresses[writer] = format_peer(writer.get_extra_info("peername"))
        task = asyncio.ensure_future(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _counts(self) -> ServerCounts:
        return ServerCounts(
            self._received,
            self._sent,
            tuple(ClientInfo(self._addresses[w], n[0]) for w, n in self._clients.items()),
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self._read_timeout):
                raw = await reader.readexactly(4)
            word = raw.decode("ascii", "replace")
            self._received += 1
            self._clients[writer][0] += 1
            answer = render(word, self._provider(), self._whitelist, self._counts())
            if answer is not None:
                writer.write(answer.encode("utf-8"))
                await writer.drain()
                self._sent += 1
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("Four-letter word from %s failed", self._addresses.get(writer, "?"))
        finally:
            self._clients.pop(writer, None)
            self._addresses.pop(writer, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


# -- the client ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SrvrReply:
    """One server's ``srvr`` answer as ``zkquorum status`` shows it."""

    server: str
    mode: str
    """leader/follower/observer/standalone..., ``not serving`` or ``error``."""
    zxid: int | None
    latency_ms: float | None
    error: str | None = None
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def epoch(self) -> int | None:
        return None if self.zxid is None else self.zxid >> 32


def parse_srvr(text: str) -> dict[str, str]:
    """``Key: value`` lines of ``srvr``/``stat`` as a dict."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not line.startswith(" "):
            out[key.strip()] = value.strip()
    return out


async def ask(address: HostPort, word: str, timeout: float = 2.0) -> str:
    """Send a four-letter word and return the whole answer (until the server closes)."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(address.host, address.port)
        try:
            writer.write(word.encode("ascii"))
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    return data.decode("utf-8", "replace")


def _signed(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value & (1 << 63) else value


async def query_srvr(address: HostPort, timeout: float = 2.0) -> SrvrReply:
    """Ask ``address`` for ``srvr``; never raises for network errors (``mode='error'``)."""
    start = time.perf_counter()
    try:
        text = await ask(address, "srvr", timeout)
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, TimeoutError):
            reason = "timed out"
        elif exc.errno:
            reason = os.strerror(exc.errno)  # asyncio's strerror: "Connect call failed (...)"
        else:
            reason = exc.strerror or str(exc)
        return SrvrReply(str(address), "error", None, None, reason)
    latency = (time.perf_counter() - start) * 1000
    if text.startswith("This ZooKeeper instance is not currently serving requests"):
        return SrvrReply(str(address), "not serving", None, latency)
    fields = parse_srvr(text)
    if "Mode" not in fields:
        first = text.strip().splitlines()[0] if text.strip() else "empty answer"
        return SrvrReply(str(address), "error", None, latency, first[:80])
    zxid: int | None = None
    with contextlib.suppress(ValueError):
        zxid = _signed(int(fields.get("Zxid", ""), 16))
    return SrvrReply(str(address), fields["Mode"], zxid, latency, None, tuple(fields.items()))


async def query_all(addresses: Sequence[HostPort], timeout: float = 2.0) -> list[SrvrReply]:
    """:func:`query_srvr` on every address at once; results in the given order."""
    return list(await asyncio.gather(*(query_srvr(a, timeout) for a in addresses)))
