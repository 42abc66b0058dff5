"""Shared helpers for the runtime tests: leak-checked runs, waits with deadlines, sockets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from zkquorum.config.model import HostPort
from zkquorum.runtime.connections import ConnectionManager, PeerEvent
from zkquorum.wire.election import Notification, ServerState

T = TypeVar("T")

CONFIG_TEXT = "server.1=127.0.0.1:2888:3888:participant\nversion=0"


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``coro_fn()`` in a fresh loop; fail if it leaves a task or a file descriptor."""

    problems: list[dict[str, Any]] = []

    async def checked() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: problems.append(ctx))
        await asyncio.sleep(0)
        before = open_fds()
        result = await coro_fn()
        for _ in range(3):  # closed transports release their fd on the next iteration
            await asyncio.sleep(0)
        left = asyncio.all_tasks() - {asyncio.current_task()}
        assert not left, f"tasks left running: {left}"
        leaked = open_fds() - before
        assert not leaked, f"file descriptors leaked: {sorted(leaked)}"
        return result

    result = asyncio.run(checked())
    assert not problems, f"asyncio reported: {problems}"
    return result


async def wait_until(
    cond: Callable[[], T | None], *, timeout: float = 5.0, what: str = "condition"
) -> T:
    """Poll ``cond`` until it is truthy; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = cond()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.002)  # poll interval, not synchronisation


async def within(aw: Awaitable[T], timeout: float = 5.0) -> T:
    async with asyncio.timeout(timeout):
        return await aw


def notif(
    leader: int, epoch: int = 1, state: ServerState = ServerState.LOOKING, zxid: int = 0
) -> Notification:
    return Notification(state, leader, zxid, epoch, 0, 2, CONFIG_TEXT)


@contextlib.contextmanager
def blackhole(host: str = "127.0.0.1") -> Iterator[HostPort]:
    """An address whose TCP connects hang: a listener with a full backlog (SYNs dropped)."""
    listener = socket.socket()
    filler = socket.socket()
    try:
        listener.bind((host, 0))
        listener.listen(0)
        filler.connect(listener.getsockname())  # fills the backlog of 1 (Linux: backlog+1)
        yield HostPort(host, listener.getsockname()[1])
    finally:
        filler.close()
        listener.close()


@contextlib.contextmanager
def refused_address(host: str = "127.0.0.1") -> Iterator[HostPort]:
    """An address where connects are refused at once (a port nobody listens on)."""
    s = socket.socket()
    try:
        s.bind((host, 0))
        yield HostPort(host, s.getsockname()[1])
    finally:
        s.close()


class Events:
    """Collects a manager's events."""

    def __init__(self) -> None:
        self.items: list[PeerEvent] = []

    def __call__(self, event: PeerEvent) -> None:
        self.items.append(event)


@contextlib.asynccontextmanager
async def managers(
    sids: Sequence[int],
    *,
    hosts: dict[int, Sequence[str]] | None = None,
    extra_members: dict[int, Sequence[HostPort]] | None = None,
    **kwargs: Any,
) -> AsyncIterator[tuple[dict[int, ConnectionManager], dict[int, Events]]]:
    """Started managers on free loopback ports, each knowing every other one."""
    cms: dict[int, ConnectionManager] = {}
    events: dict[int, Events] = {}
    try:
        for sid in sids:
            events[sid] = Events()
            addrs = [HostPort(h, 0) for h in (hosts or {}).get(sid, ["127.0.0.1"])]
            cms[sid] = ConnectionManager(sid, addrs, {}, on_event=events[sid], **kwargs)
            await cms[sid].start()
        members: dict[int, Sequence[HostPort]] = {
            sid: cm.listen_addresses for sid, cm in cms.items()
        }
        members.update(extra_members or {})
        for cm in cms.values():
            cm.set_members(members)
        yield cms, events
    finally:
        for cm in cms.values():
            await cm.close()
