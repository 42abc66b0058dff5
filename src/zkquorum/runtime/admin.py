"""The peer's status as one frozen value (:class:`PeerStatus`), and a client of the
four-letter words (``zkquorum status``, ``zkquorum cluster``).

Every seat answers the words themselves on its client port through
:mod:`zkquorum.runtime.fourletter`, over the same ops source as ``/metrics`` and the
AdminServer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from zkquorum.config.model import HostPort
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.runtime.connections import ConnectionCounters
from zkquorum.runtime.tls import TlsCounters
from zkquorum.wire.election import ServerState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """What the peer reports about itself at one moment (``PeerRuntime.status``).

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
    synchronization, broadcast."""
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
    """asyncio tasks alive in the peer's loop (a leak shows here)."""
    tls: TlsCounters | None = None
    """The quorum TLS counters (``None`` without ``sslQuorum``)."""


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
