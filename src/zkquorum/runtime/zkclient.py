"""A small asyncio ZooKeeper client: one session over a list of servers.

It is what ``zkquorum cluster`` uses to show a client writing and a watch firing across a
leader kill, and what a script can use without kazoo: connect, create, get (with a data
watch), set, delete, and a reconnect that keeps the session, as ``ClientCnxn`` does (the
next server in the list, the session id and password, the last zxid seen, then
``setWatches`` so that a change missed while disconnected still fires).  The codec is
:mod:`zkquorum.wire.client`.  It is not kazoo: no retries of writes (a write whose
connection broke raises :class:`ConnectionLoss`, its outcome unknown), no recipes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Final

from zkquorum.config.model import HostPort
from zkquorum.runtime.tasks import TaskOwner
from zkquorum.wire.client import (
    ClientReply,
    ReplyStreamDecoder,
    encode_connect_request,
    encode_request,
)
from zkquorum.wire.client_records import (
    OPEN_ACL_UNSAFE,
    PING_XID,
    SET_WATCHES_XID,
    ClientProtocolError,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    GetDataRequest,
    GetDataResponse,
    Record,
    SetDataRequest,
    SetDataResponse,
    SetWatches,
    Stat,
    SyncRequest,
    WatcherEvent,
)
from zkquorum.wire.txn import OpCode

log = logging.getLogger(__name__)

EPHEMERAL: Final = 1
SEQUENTIAL: Final = 2
_READ_SIZE: Final = 65536


class ClientError(Exception):
    """The server answered with an error code (``KeeperException.Code``)."""

    def __init__(self, code: int, path: str) -> None:
        super().__init__(f"error {code} on {path}")
        self.code = code


class ConnectionLoss(Exception):
    """The connection broke before the answer came: the outcome is unknown."""


class SessionExpired(Exception):
    """The servers no longer know the session (ephemerals gone, watches lost)."""


class Client:
    """One session; ``await start()``, then the operations; ``await close()`` ends it."""

    def __init__(self, servers: Sequence[HostPort], *, timeout_ms: int = 10_000) -> None:
        if not servers:
            raise ValueError("no server to connect to")
        self.servers = list(servers)
        self.timeout_ms = timeout_ms
        self.session_id = 0
        self.passwd = bytes(16)
        self.last_zxid = 0
        self.server: HostPort | None = None
        """The server the session is connected to now (``None`` while disconnected)."""
        self.events: asyncio.Queue[WatcherEvent] = asyncio.Queue()
        self.reconnects = 0
        self.connected_at = 0.0
        """Wall-clock time (``time.time()``) of the last (re)connection."""
        self._next = 0
        self._xid = 0
        self._data_watches: set[str] = set()
        self._writer: asyncio.StreamWriter | None = None
        self._decoder = ReplyStreamDecoder()
        self._waiting: collections.deque[asyncio.Future[ClientReply]] = collections.deque()
        self._change = asyncio.Condition()
        self._expired = False
        self._tasks = TaskOwner("zkclient")

    # -- the session -------------------------------------------------------------------

    async def start(self, within_s: float = 15.0) -> None:
        """Create the session on the first server that answers, trying each in turn."""
        async with asyncio.timeout(within_s):
            await self._connect_any()

    async def wait_connected(self, within_s: float, *, reconnects: int = 0) -> HostPort:
        """The server, once the session is connected after at least ``reconnects``
        reconnections (``reconnects=1``: after the first lost connection)."""
        async with asyncio.timeout(within_s), self._change:
            while True:
                if self._expired:
                    raise SessionExpired(f"session 0x{self.session_id:x} expired")
                if self.server is not None and self.reconnects >= reconnects:
                    return self.server
                await self._change.wait()

    async def move(self, to: HostPort, within_s: float = 15.0) -> None:
        """Leave this server for ``to``, keeping the session (its watches re-armed by
        setWatches), as a client does when its server goes away."""
        await self._drop()
        self.reconnects += 1
        async with asyncio.timeout(within_s):
            await self._open(to)

    async def _changed(self) -> None:
        async with self._change:
            self._change.notify_all()

    async def close(self) -> None:
        """closeSession, then close the connection (the ephemerals go at once)."""
        if self._writer is not None and self.server is not None:
            with contextlib.suppress(ConnectionLoss, ClientError, TimeoutError):
                async with asyncio.timeout(5):
                    await self._call(OpCode.CLOSE_SESSION, None, "")
        await self._drop()
        await self._tasks.close()

    async def _connect_any(self) -> None:
        pause = 0.01
        while True:
            addr = self.servers[self._next % len(self.servers)]
            self._next += 1
            try:
                await self._open(addr)
                return
            except (OSError, ConnectionLoss, ClientProtocolError) as exc:
                log.debug("client: %s: %s", addr, exc)
            if self._next % len(self.servers) == 0:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.5)

    async def _open(self, addr: HostPort) -> None:
        reader, writer = await asyncio.open_connection(addr.host, addr.port)
        try:
            request = ConnectRequest(
                0, self.last_zxid, self.timeout_ms, self.session_id, self.passwd, False
            )
            writer.write(encode_connect_request(request))
            decoder = ReplyStreamDecoder()
            response: object = None
            async with asyncio.timeout(self.timeout_ms / 1000):
                while not isinstance(response, ConnectResponse):
                    data = await reader.read(_READ_SIZE)
                    if not data:
                        raise ConnectionLoss(f"{addr} closed the connection")
                    decoder.receive_data(data)
                    response = decoder.next_message()
        except BaseException:
            writer.close()
            raise
        if response.session_id == 0:
            writer.close()
            self._expired = True
            raise SessionExpired(f"session 0x{self.session_id:x} expired")
        self.session_id, self.passwd = response.session_id, response.passwd or bytes(16)
        self.timeout_ms = response.timeout
        self._writer, self._decoder, self.server = writer, decoder, addr
        self.connected_at = time.time()
        await self._changed()
        self._tasks.spawn(self._read(reader, writer), "read")
        self._tasks.spawn(self._ping(writer), "ping")
        if self._data_watches:
            watches = SetWatches(self.last_zxid, tuple(sorted(self._data_watches)), (), ())
            self._decoder.expect(SET_WATCHES_XID, OpCode.SET_WATCHES)
            fut: asyncio.Future[ClientReply] = asyncio.get_running_loop().create_future()
            fut.add_done_callback(_ignore)  # nobody waits: a failure shows as a lost connection
            self._waiting.append(fut)
            writer.write(encode_request(SET_WATCHES_XID, OpCode.SET_WATCHES, watches))

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            # ClientCnxn's read timeout: two thirds of the session timeout without a byte
            # (the pings make sure a live server sends some) and the server is given up.
            quiet = self.timeout_ms * 2 / 3000
            while True:
                try:
                    async with asyncio.timeout(quiet):
                        data = await reader.read(_READ_SIZE)
                except TimeoutError:
                    log.debug("client: %s silent for %.1f s", self.server, quiet)
                    break
                if not data:
                    break
                self._decoder.receive_data(data)
                while isinstance(msg := self._decoder.next_message(), ClientReply):
                    self._dispatch(msg)
        except (OSError, ClientProtocolError) as exc:
            log.debug("client: connection error: %s", exc)
        if writer is self._writer:
            await self._lost()

    def _dispatch(self, reply: ClientReply) -> None:
        if reply.zxid > 0:
            self.last_zxid = max(self.last_zxid, reply.zxid)
        if reply.op == OpCode.NOTIFICATION:
            event = reply.response
            if isinstance(event, WatcherEvent):
                self._data_watches.discard(event.path)
                self.events.put_nowait(event)
            return
        if reply.op in (OpCode.PING, OpCode.AUTH):
            return
        if self._waiting:
            fut = self._waiting.popleft()
            if not fut.done():
                fut.set_result(reply)

    async def _ping(self, writer: asyncio.StreamWriter) -> None:
        interval = self.timeout_ms / 3000
        while writer is self._writer and not writer.is_closing():
            await asyncio.sleep(interval)
            writer.write(encode_request(PING_XID, OpCode.PING))

    async def _lost(self) -> None:
        await self._drop()
        self.reconnects += 1
        try:
            await self._connect_any()
        except SessionExpired:
            await self._changed()  # waiters see the expiry

    async def _drop(self) -> None:
        writer, self._writer, self.server = self._writer, None, None
        if writer is not None:
            writer.close()
        waiting, self._waiting = self._waiting, collections.deque()
        for fut in waiting:
            if not fut.done():
                fut.set_exception(ConnectionLoss("the connection to the server was lost"))

    # -- operations ----------------------------------------------------------------------

    async def _call(self, op: int, record: Record | None, path: str) -> ClientReply:
        if self._expired:
            raise SessionExpired(f"session 0x{self.session_id:x} expired")
        writer = self._writer
        if writer is None or writer.is_closing():
            raise ConnectionLoss("not connected")
        self._xid += 1
        fut: asyncio.Future[ClientReply] = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        self._decoder.expect(self._xid, op)
        writer.write(encode_request(self._xid, op, record))
        reply = await fut
        if reply.err:
            raise ClientError(reply.err, path)
        return reply

    async def create(self, path: str, data: bytes = b"", flags: int = 0) -> str:
        reply = await self._call(
            OpCode.CREATE, CreateRequest(path, data, OPEN_ACL_UNSAFE, flags), path
        )
        assert isinstance(reply.response, CreateResponse)
        return reply.response.path

    async def get(self, path: str, *, watch: bool = False) -> tuple[bytes, Stat]:
        reply = await self._call(OpCode.GET_DATA, GetDataRequest(path, watch), path)
        assert isinstance(reply.response, GetDataResponse)
        if watch:
            self._data_watches.add(path)
        return reply.response.data or b"", reply.response.stat

    async def set(self, path: str, data: bytes, version: int = -1) -> Stat:
        reply = await self._call(OpCode.SET_DATA, SetDataRequest(path, data, version), path)
        assert isinstance(reply.response, SetDataResponse)
        return reply.response.stat

    async def delete(self, path: str, version: int = -1) -> None:
        await self._call(OpCode.DELETE, DeleteRequest(path, version), path)

    async def sync(self, path: str = "/") -> None:
        """Once this server has applied every write the leader committed before it: a
        read after it sees them (reads alone may lag behind other servers' writes)."""
        await self._call(OpCode.SYNC, SyncRequest(path), path)

    async def exists(self, path: str) -> bool:
        try:
            await self.get(path)
        except ClientError as exc:
            if exc.code == -101:  # NONODE
                return False
            raise
        return True


def _ignore(fut: asyncio.Future[ClientReply]) -> None:
    if not fut.cancelled():
        fut.exception()
