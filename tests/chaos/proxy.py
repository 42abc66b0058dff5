"""A small TCP proxy between every pair of peers, for link faults (issue 9).

One listener per (source peer, destination peer, port kind): peer ``src``'s zoo.cfg names
that listener as ``dst``'s quorum or election address, and the proxy forwards to ``dst``'s
real port.  A link is an unordered pair of sids; its mode applies to every connection
between the two, whoever opened it:

* ``ok``: bytes flow.
* ``delay``: every chunk is held ``delay_ms`` before it is written (order kept).
* ``cut``: one direction (``a -> b``) or both are silent: bytes are read and held, the
  connections stay open (a black hole that drops packets, with TCP's retransmission: what
  was held is delivered when the cut heals, unless a side gave up and closed first).
* ``drop``: every connection of the link is reset and new ones are reset at once (a
  partition that answers with RST).

Election connections need one rewrite: the connecting peer's initial message advertises
its own (real) election address, and the accepting peer connects back there when it wins
the larger-sid rule.  The proxy replaces those addresses with the listener for the
reverse direction, so that connect-backs go through the proxy too.

The proxy runs its own event loop in a daemon thread; the methods below are thread-safe
and may be called from the (synchronous) test.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

from zkquorum.wire.election import (
    MAX_ADDRESS_BYTES,
    PROTOCOL_VERSION_V1,
    PROTOCOL_VERSION_V2,
    InitialMessage,
    encode_initial_message,
)

T = TypeVar("T")
Kind = Literal["quorum", "election"]
HOST = "127.0.0.1"
_CHUNK = 65536


@dataclasses.dataclass
class LinkState:
    mode: str = "ok"  # ok | delay | cut | drop
    delay_ms: float = 0.0
    cut: frozenset[tuple[int, int]] = frozenset()  # silent directions (from, to)
    changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


@dataclasses.dataclass
class ProxyStats:
    connections: int = 0
    resets: int = 0
    bytes: int = 0
    rewrites: int = 0


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


class _Conn:
    def __init__(self, link: tuple[int, int]) -> None:
        self.link = link
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.closed = False

    def reset(self) -> None:
        if self.closed:
            return
        self.closed = True
        for w in self.writers:
            with contextlib.suppress(Exception):
                w.transport.abort()
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()


class ChaosProxy:
    """Listeners for every ordered pair of sids and both ports; link faults on pairs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._servers: list[asyncio.Server] = []
        self._links: dict[tuple[int, int], LinkState] = {}
        self._conns: set[_Conn] = set()
        # (src, dst, kind) -> listener port; (src, dst, kind) -> real target port
        self.ports: dict[tuple[int, int, Kind], int] = {}
        self.stats = ProxyStats()

    # -- thread-safe API -----------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def listen(self, src: int, dst: int, kind: Kind, target_port: int) -> int:
        """Open the listener for ``src``'s connections to ``dst``; return its port."""
        return self._call(self._listen(src, dst, kind, target_port))

    def set_link(
        self,
        a: int,
        b: int,
        mode: str,
        *,
        delay_ms: float = 0.0,
        cut: frozenset[tuple[int, int]] = frozenset(),
    ) -> None:
        """Change the link between ``a`` and ``b`` (``mode='ok'`` heals it)."""
        self._call(self._set_link(_pair(a, b), mode, delay_ms, cut))

    def heal_all(self) -> None:
        for a, b in list(self._links):
            self.set_link(a, b, "ok")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._close(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()

    # -- on the proxy's loop ---------------------------------------------------------------

    def _link(self, pair: tuple[int, int]) -> LinkState:
        state = self._links.get(pair)
        if state is None:
            state = self._links[pair] = LinkState()
        return state

    async def _listen(self, src: int, dst: int, kind: Kind, target_port: int) -> int:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await self._handle(src, dst, kind, target_port, r, w)

        server = await asyncio.start_server(handle, HOST, 0)
        self._servers.append(server)
        port: int = server.sockets[0].getsockname()[1]
        self.ports[(src, dst, kind)] = port
        self._link(_pair(src, dst))
        return port

    async def _set_link(
        self, pair: tuple[int, int], mode: str, delay_ms: float, cut: frozenset[tuple[int, int]]
    ) -> None:
        state = self._link(pair)
        state.mode, state.delay_ms, state.cut = mode, delay_ms, cut
        if mode == "drop":
            for c in [c for c in self._conns if c.link == pair]:
                c.reset()
                self.stats.resets += 1
        old, state.changed = state.changed, asyncio.Event()
        old.set()

    async def _close(self) -> None:
        for s in self._servers:
            s.close()
        for c in list(self._conns):
            c.reset()
        for s in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.wait_closed(), 5)

    async def _handle(
        self,
        src: int,
        dst: int,
        kind: Kind,
        target_port: int,
        cr: asyncio.StreamReader,
        cw: asyncio.StreamWriter,
    ) -> None:
        pair = _pair(src, dst)
        conn = _Conn(pair)
        conn.writers.append(cw)
        self._conns.add(conn)
        self.stats.connections += 1
        try:
            if self._link(pair).mode == "drop":
                conn.reset()
                self.stats.resets += 1
                return
            upstream = await self._connect(target_port, patience=1.5 if kind == "quorum" else 0)
            if upstream is None:
                conn.reset()
                return
            sr, sw = upstream
            conn.writers.append(sw)
            first = b""
            if kind == "election":
                try:
                    first = await self._rewrite_initial(cr, dst, src)
                except (OSError, asyncio.IncompleteReadError):
                    conn.reset()
                    return
            up = asyncio.ensure_future(self._pump(conn, cr, sw, src, dst, first))
            down = asyncio.ensure_future(self._pump(conn, sr, cw, dst, src, b""))
            conn.tasks += [up, down]
            await asyncio.gather(up, down, return_exceptions=True)
        finally:
            conn.reset()
            self._conns.discard(conn)

    async def _connect(
        self, port: int, patience: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Connect to the real port.  A refused connect is retried for ``patience`` s:
        the proxy has already accepted its client, which a direct connect would have
        seen refused (and retried) - a leader's quorum port opens only once it leads."""
        give_up = time.monotonic() + patience
        while True:
            try:
                async with asyncio.timeout(3):
                    return await asyncio.open_connection(HOST, port)
            except (OSError, TimeoutError):
                if time.monotonic() >= give_up:
                    return None
            await asyncio.sleep(0.05)

    async def _rewrite_initial(self, r: asyncio.StreamReader, dst: int, src: int) -> bytes:
        """Read the initial message and point its addresses at the reverse listener."""
        head = await r.readexactly(8)
        version = int.from_bytes(head, "big", signed=True)
        if version not in (PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2):
            return head  # old style (a bare sid) or garbage: passed on as it is
        rest = await r.readexactly(12)
        sid = int.from_bytes(rest[:8], "big", signed=True)
        n = int.from_bytes(rest[8:], "big", signed=True)
        if not 0 < n <= MAX_ADDRESS_BYTES:
            return head + rest
        await r.readexactly(n)
        back = self.ports.get((dst, src, "election"))
        if back is None:
            raise OSError("no reverse listener")
        self.stats.rewrites += 1
        return encode_initial_message(InitialMessage(version, sid, (f"{HOST}:{back}",)))

    async def _pump(
        self,
        conn: _Conn,
        r: asyncio.StreamReader,
        w: asyncio.StreamWriter,
        frm: int,
        to: int,
        first: bytes,
    ) -> None:
        """Copy one direction, obeying the link's mode; EOF closes both directions."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        if first:
            queue.put_nowait((time.monotonic(), first))

        async def read() -> None:
            while True:
                data = await r.read(_CHUNK)
                queue.put_nowait((time.monotonic(), data))
                if not data:
                    return

        reader = asyncio.ensure_future(read())
        try:
            while True:
                got_at, data = await queue.get()
                while True:
                    state = self._link(conn.link)
                    if state.mode == "cut" and (frm, to) in state.cut:
                        await state.changed.wait()
                        continue
                    if state.mode == "delay":
                        wait = got_at + state.delay_ms / 1000 - time.monotonic()
                        if wait > 0:
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(state.changed.wait(), wait)
                            continue
                    break
                if not data:
                    break
                w.write(data)
                self.stats.bytes += len(data)
                await w.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            conn.reset()
