"""The quorum port's I/O pumps: bytes in and out for the peer core, nothing decided here.

* :class:`QuorumListener` (leading): binds our quorum address(es), numbers every accepted
  learner connection and reports ``LearnerUp`` / ``LearnerPacket`` / ``LearnerDown``.
* :class:`LeaderLink` (following, observing): connects to any quorum address of the
  leader within a deadline and reports ``LeaderUp`` / ``LeaderMessage`` / ``LeaderDown``,
  or ``LeaderUnreachable``.

Both hand every event to one callback (the runtime steps the core with it) and write the
bytes the core asks for.  Read timeouts, handshakes and every rule live in the core.
Tasks belong to the caller's :class:`~zkquorum.runtime.tasks.TaskOwner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence

from zkquorum.config.model import HostPort
from zkquorum.core.events import (
    Event,
    LeaderDown,
    LeaderMessage,
    LeaderUnreachable,
    LeaderUp,
    LearnerDown,
    LearnerPacket,
    LearnerUp,
)
from zkquorum.runtime.happy_eyeballs import AllAttemptsFailed, happy_eyeballs
from zkquorum.runtime.tasks import TaskOwner
from zkquorum.runtime.tls import QuorumTls, Stream, start_server
from zkquorum.runtime.tls import open_connection as tls_open_connection
from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.quorum import QuorumPacket, QuorumStreamDecoder, encode_packet
from zkquorum.wire.reader import Sentinel

log = logging.getLogger(__name__)

READ_SIZE = 65536

Emit = Callable[[Event], None]
Clock = Callable[[], float]


def _close_stream(stream: Stream) -> None:
    stream[1].close()


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class QuorumListener:
    """The leader's quorum port: one listener per bind address, one reader per learner."""

    def __init__(
        self,
        binds: Sequence[tuple[str, int]],
        tls: QuorumTls | None,
        emit: Emit,
        now: Clock,
        tasks: TaskOwner,
    ) -> None:
        self._binds = binds
        self._tls = tls
        self._emit = emit
        self._now = now
        self._tasks = tasks
        self._servers: list[asyncio.AbstractServer] = []
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self.bound: list[tuple[str, int]] = []
        self.bad_packets = 0
        """Learner connections closed on bytes that are no quorum packet."""

    async def open(self) -> None:
        """Bind every address; ``OSError`` (nothing left bound) when one cannot be."""
        try:
            for host, port in self._binds:
                server = await start_server(
                    self._tls, self._accept, host=host, port=port, port_name="quorum"
                )
                self._servers.append(server)
                self.bound.extend(s.getsockname()[:2] for s in server.sockets)
        except OSError:
            await self.close()
            raise

    def send(self, conn: int, data: bytes) -> None:
        w = self._writers.get(conn)
        if w is not None and not w.is_closing():
            w.write(data)

    def close_conn(self, conn: int) -> None:
        """Close one learner connection; its reader reports ``LearnerDown``."""
        w = self._writers.get(conn)
        if w is not None:
            w.close()

    @property
    def connections(self) -> int:
        return len(self._writers)

    async def close(self) -> None:
        """Stop listening and close every learner connection (no ``LearnerDown``)."""
        self._closed = True
        for s in self._servers:
            s.close()
        for w in list(self._writers.values()):
            w.close()
        self._writers.clear()
        for s in self._servers:
            with contextlib.suppress(Exception):
                await s.wait_closed()
        self._servers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closed or self._tasks.closed:
            writer.close()
            return
        self._tasks.adopt(asyncio.current_task())
        conn = next(self._ids)
        _nodelay(writer)
        self._writers[conn] = writer
        bad = False
        try:
            self._emit(LearnerUp(self._now(), conn))
            decoder = QuorumStreamDecoder(snapshots=False)
            while conn in self._writers:
                data = await reader.read(READ_SIZE)
                decoder.receive_data(data)
                while conn in self._writers:
                    msg = decoder.next_message()
                    if msg is Sentinel.NEED_DATA:
                        break
                    if msg is Sentinel.CLOSED:
                        return
                    if not isinstance(msg, QuorumPacket):
                        continue
                    if self._tls is not None and self._tls.learner_refusal(writer, msg):
                        return  # a certificate not valid for that sid (runtime/tls.py)
                    self._emit(LearnerPacket(self._now(), conn, msg))
        except QuorumProtocolError as exc:
            bad = True
            self.bad_packets += 1
            log.info("leader: learner connection %d sent bad bytes: %s", conn, exc)
        except OSError as exc:
            log.info("leader: learner connection %d ended: %s", conn, exc)
        except asyncio.CancelledError:
            # Closing.  End quietly: Python 3.11's StreamReaderProtocol calls exception()
            # on a cancelled handler task and reports that as an error.
            pass
        finally:
            w = self._writers.pop(conn, None)
            writer.close()
            if w is not None and not self._closed:
                self._emit(LearnerDown(self._now(), conn, bad))


class LeaderLink:
    """A learner's connection to its leader (``Learner#connectToLeader``)."""

    def __init__(
        self,
        addrs: Sequence[HostPort],
        tls: QuorumTls | None,
        emit: Emit,
        now: Clock,
        tasks: TaskOwner,
        *,
        retry_delay: float = 0.02,
        stagger: float = 0.05,
    ) -> None:
        self._addrs = addrs
        self._tls = tls
        self._emit = emit
        self._now = now
        self._tasks = tasks
        self.retry_delay = retry_delay
        self.stagger = stagger
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self, within_s: float) -> None:
        self._task = self._tasks.spawn(self._run(within_s), "leader-link")

    def send(self, packet: QuorumPacket) -> None:
        self.send_bytes(encode_packet(packet))

    def send_bytes(self, data: bytes) -> None:
        w = self._writer
        if w is not None and not w.is_closing():
            w.write(data)

    def close(self) -> None:
        """Close the connection (no ``LeaderDown``); idempotent."""
        self._closed = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _run(self, within_s: float) -> None:
        loop = asyncio.get_running_loop()
        conn = await self._connect(loop.time() + max(within_s, 0.0))
        if self._closed:
            if conn is not None:
                conn[1].close()
            return
        if conn is None:
            self._emit(LeaderUnreachable(self._now()))
            return
        reader, self._writer = conn
        detail = "EOF from the leader"
        try:
            self._emit(LeaderUp(self._now()))
            decoder = QuorumStreamDecoder()
            while not self._closed:
                data = await reader.read(READ_SIZE)
                decoder.receive_data(data)
                while not self._closed:
                    msg = decoder.next_message()
                    if msg is Sentinel.NEED_DATA:
                        break
                    if msg is Sentinel.CLOSED:
                        return
                    self._emit(LeaderMessage(self._now(), msg))
        except QuorumProtocolError as exc:
            detail = f"protocol error: {exc}"
        except OSError as exc:
            detail = f"connection error: {exc}"
        finally:
            w, self._writer = self._writer, None
            if w is not None:
                w.close()
            if not self._closed:
                self._closed = True
                self._emit(LeaderDown(self._now(), detail))

    async def _connect(
        self, deadline: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The first address to answer (:func:`happy_eyeballs`, ``stagger`` seconds apart),
        round after round until ``deadline``; ``None`` then.

        The new leader binds its quorum port a moment after the election: a new round
        starts soon at first (a refused connect on a live host costs microseconds), then
        backs off to ``retry_delay`` (3.8 always sleeps 100 ms here).  A connection made
        too late, or as this is cancelled, is closed by :func:`happy_eyeballs`; the
        deadline cancels attempts inside the connect, where asyncio closes a half-made
        connection."""
        pause = min(0.001, self.retry_delay)

        def attempt(addr: HostPort) -> Awaitable[Stream]:
            return tls_open_connection(self._tls, addr)

        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    try:
                        _, (reader, writer) = await happy_eyeballs(
                            self._addrs, attempt, delay=self.stagger, close=_close_stream
                        )
                    except AllAttemptsFailed as exc:
                        log.debug("learner: no leader address answered: %s", exc)
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, self.retry_delay)
                        continue
                    _nodelay(writer)
                    return reader, writer
        except TimeoutError:
            return None
