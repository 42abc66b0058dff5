"""The client port's I/O pump: accept connections, decode frames, write what the core says.

Every decision is the server core's (:mod:`zkquorum.core.server`); this module numbers
connections, turns bytes into decoded messages (:mod:`zkquorum.wire.client`) and hands
them to a :class:`ClientSink`, and writes bytes and closes connections on request.  A
four-letter word is answered by ``answer_word`` and the connection closed, as 3.8 does.
A malformed frame closes that connection only, and so does silence: a connection that
has not sent its ConnectRequest (or a four-letter word) within ``sessionless_timeout_s``
is closed, as 3.8 expires sessionless connections (``zookeeper.nio.sessionlessCnxnTimeout``,
10 s).

``secureClientPort`` is a second listener of the same :class:`ClientPort`
(:class:`SecureListener`), or the only one when zoo.cfg sets no ``clientPort``: the accept
task does the TLS handshake (``ssl.*`` keys, read by
:func:`zkquorum.runtime.tls.client_settings`), then the connection is numbered and served
exactly as a plain one; only this module knows which listener a connection came through.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from zkquorum.runtime.tasks import TaskOwner
from zkquorum.wire.client import (
    DEFAULT_MAX_BUFFER,
    ClientRequest,
    FourLetterWord,
    RequestStreamDecoder,
)
from zkquorum.wire.client_records import ClientProtocolError, ConnectRequest
from zkquorum.wire.reader import Sentinel

if TYPE_CHECKING:
    import ssl

    from zkquorum.config.zoocfg import QuorumConfig

log = logging.getLogger(__name__)

READ_SIZE = 65536
SESSIONLESS_TIMEOUT_S = 10.0
MAX_CLIENT_CNXNS = 60
"""``maxClientCnxns``: connections one IP address may hold (0: no limit)."""


def max_client_cnxns(props: Mapping[str, str]) -> int:
    """zoo.cfg's ``maxClientCnxns`` (3.8: an int, default 60; a bad value: the default)."""
    try:
        return int(props.get("maxClientCnxns", MAX_CLIENT_CNXNS))
    except ValueError:
        return MAX_CLIENT_CNXNS


@dataclasses.dataclass(frozen=True, slots=True)
class SecureListener:
    """``secureClientPortAddress:secureClientPort`` and the server context to accept with."""

    host: str
    port: int
    context: ssl.SSLContext
    handshake_timeout_s: float = 5.0
    """``ssl.handshakeDetectionTimeoutMillis``: a client that has not finished its
    handshake by then is closed."""


def secure_client_listener(config: QuorumConfig, props: Mapping[str, str]) -> SecureListener | None:
    """The ``secureClientPort`` listener of ``config`` (``None`` without one).  The TLS
    module (and OpenSSL) is imported only when there is one.  Raises
    :class:`~zkquorum.runtime.tls.TlsConfigError`."""
    if not config.secure_client_port:
        return None
    from zkquorum.runtime.tls import secure_listener

    return secure_listener(config, props)


class ClientSink(Protocol):
    def client_connected(self, conn: int, remote_ip: str) -> None: ...

    def client_message(self, conn: int, message: ConnectRequest | ClientRequest) -> None: ...

    def client_closed(self, conn: int) -> None: ...


class ClientPort:
    def __init__(
        self,
        host: str,
        port: int | None,
        sink: ClientSink,
        tasks: TaskOwner,
        *,
        answer_word: Callable[[FourLetterWord], str | None],
        max_buffer: int = DEFAULT_MAX_BUFFER,
        sessionless_timeout_s: float = SESSIONLESS_TIMEOUT_S,
        max_per_ip: int = MAX_CLIENT_CNXNS,
        secure: SecureListener | None = None,
    ) -> None:
        self.host = host
        if port is None and secure is None:
            raise ValueError("a client port needs a port or a secure listener")
        self.secure = secure
        self.secure_bound: tuple[str, int] | None = None
        self._secure_server: asyncio.AbstractServer | None = None
        self.secure_conns: set[int] = set()
        """Connections that came through the secure listener."""
        self.tls_refused = 0
        """Secure-port connections whose TLS handshake failed (no or a bad certificate,
        not TLS, too slow)."""
        self.max_per_ip = max_per_ip
        self.rejected = 0
        """Connections refused for ``max_per_ip`` (3.8's ``connection_rejected``)."""
        self._per_ip: collections.Counter[str] = collections.Counter()
        self.sessionless_timeout_s = sessionless_timeout_s
        self.sessionless_expired = 0
        self.port = port
        self._sink = sink
        self._tasks = tasks
        self._answer_word = answer_word
        self._max_buffer = max_buffer
        self._server: asyncio.AbstractServer | None = None
        self._writers: dict[int, asyncio.StreamWriter] = {}
        self.addresses: dict[int, str] = {}
        """``host:port`` of each open connection's client."""
        self._ids = itertools.count(1)
        self._closed = False
        self.bound: tuple[str, int] | None = None
        self.bad_frames = 0

    async def open(self) -> None:
        if self.port is not None:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.port, reuse_address=True, limit=READ_SIZE
            )
            self.bound = self._server.sockets[0].getsockname()[:2]
        if self.secure is not None:
            sec = self.secure

            async def accept_secure(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter
            ) -> None:
                await self._accept(reader, writer, secure=True)

            self._secure_server = await asyncio.start_server(
                accept_secure,
                sec.host,
                sec.port,
                reuse_address=True,
                limit=READ_SIZE,
            )
            self.secure_bound = self._secure_server.sockets[0].getsockname()[:2]

    @property
    def connections(self) -> int:
        return len(self._writers)

    def send(self, conn: int, data: bytes) -> None:
        w = self._writers.get(conn)
        if w is not None and not w.is_closing():
            w.write(data)

    def deliver(self, sends: Sequence[tuple[int, bytes]], closes: Sequence[int]) -> None:
        """A server step's output: one write per connection (its bytes in order), then
        the closes (each after what was written to it)."""
        if len(sends) == 1:
            self.send(*sends[0])
        elif sends:
            per: dict[int, list[bytes]] = {}
            for conn, data in sends:
                per.setdefault(conn, []).append(data)
            for conn, chunks in per.items():
                self.send(conn, b"".join(chunks))
        for conn in closes:
            self.close_conn(conn)

    def close_conn(self, conn: int) -> None:
        """Close after what was written (``StreamWriter.close`` flushes the buffer)."""
        w = self._writers.pop(conn, None)
        if w is not None:
            w.close()

    def close_all(self) -> None:
        """Close every client connection (the server stopped serving); keep listening."""
        for conn in list(self._writers):
            self.close_conn(conn)

    async def close(self) -> None:
        self._closed = True
        servers = [s for s in (self._server, self._secure_server) if s is not None]
        for server in servers:
            server.close()
        for w in list(self._writers.values()):
            w.close()
        self._writers.clear()
        for server in servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _handshake(self, writer: asyncio.StreamWriter, ip: str) -> bool:
        """TLS on an accepted connection (here rather than in ``start_server``, so that a
        refused client is counted and logged, as 3.8 logs an unsuccessful handshake)."""
        assert self.secure is not None
        try:
            await writer.start_tls(
                self.secure.context, ssl_handshake_timeout=self.secure.handshake_timeout_s
            )
        except (OSError, EOFError, TimeoutError) as exc:
            self.tls_refused += 1
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            log.warning("client %s: TLS handshake failed: %s", ip, reason)
            writer.close()
            return False
        return True

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, secure: bool = False
    ) -> None:
        if self._closed or self._tasks.closed:
            writer.close()
            return
        self._tasks.adopt(asyncio.current_task())
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if peer else ""
        if secure and not await self._handshake(writer, ip):
            return
        if 0 < self.max_per_ip <= self._per_ip[ip]:
            self.rejected += 1
            log.warning("Too many connections from /%s - max is %d", ip, self.max_per_ip)
            writer.close()
            return
        self._per_ip[ip] += 1
        conn = next(self._ids)
        self._writers[conn] = writer
        if secure:
            self.secure_conns.add(conn)
        self.addresses[conn] = f"{ip}:{peer[1]}" if peer else ip
        decoder = RequestStreamDecoder(max_buffer=self._max_buffer)
        told = False
        quiet_until = asyncio.get_running_loop().time() + self.sessionless_timeout_s
        try:
            while conn in self._writers:
                if told:
                    data = await reader.read(READ_SIZE)
                else:
                    try:
                        async with asyncio.timeout_at(quiet_until):
                            data = await reader.read(READ_SIZE)
                    except TimeoutError:
                        self.sessionless_expired += 1
                        log.info(
                            "client %s: no session after %.0f s, closing",
                            ip,
                            self.sessionless_timeout_s,
                        )
                        return
                decoder.receive_data(data)
                while conn in self._writers:
                    msg = decoder.next_message()
                    if msg is Sentinel.NEED_DATA:
                        break
                    if msg is Sentinel.CLOSED:
                        return
                    if isinstance(msg, FourLetterWord):
                        answer = self._answer_word(msg)
                        if answer is not None:
                            writer.write(answer.encode())
                        return
                    if not told:
                        told = True
                        self._sink.client_connected(conn, ip)
                    self._sink.client_message(conn, msg)
                w = self._writers.get(conn)
                if w is not None:
                    await w.drain()
        except ClientProtocolError as exc:
            self.bad_frames += 1
            log.info("client %s: closing the connection: %s", ip, exc)
        except (OSError, asyncio.IncompleteReadError) as exc:
            log.debug("client %s: connection ended: %s", ip, exc)
        except asyncio.CancelledError:
            pass
        finally:
            self._writers.pop(conn, None)
            self.secure_conns.discard(conn)
            self.addresses.pop(conn, None)
            self._per_ip[ip] -= 1
            if not self._per_ip[ip]:
                del self._per_ip[ip]
            writer.close()
            if told and not self._closed:
                self._sink.client_closed(conn)
