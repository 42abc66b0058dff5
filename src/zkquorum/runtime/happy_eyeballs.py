"""Staggered connection attempts over several addresses ("Happy Eyeballs", RFC 8305 style).

Why (ZOOKEEPER-3188 and its follow-ups): a peer may list several election addresses
(``server.N=a:2888:3888|b:2889:3889``).  3.8 picks one with ``InetAddress.isReachable``
(ICMP echo or TCP port 7), which Python cannot do without privileges and which networks
often filter (ZOOKEEPER-3698).  Dialling every address at once was tried and rejected in
the review of apache/zookeeper#1048: the dead address timed out and took the good
connection down with it.  Dialling one address after the other waits a whole connect
timeout on every dead one.

So, like trio's ``open_tcp_stream``: try the addresses in order, one at a time, but do
not wait for an attempt to fail before starting the next one: after ``delay`` seconds
without an answer, start the next attempt while the earlier ones keep running.  A
failure starts the next attempt at once.  The first attempt that succeeds wins; every
other attempt is cancelled, and a late success is closed.  Each attempt carries its own
timeout (the caller's ``attempt`` enforces it: ``cnxTimeout``).

Pure asyncio and generic in the address and connection types, so that tests drive it
with fake attempts and a virtual clock (``tests/runtime/vclock.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from zkquorum.runtime.netfmt import describe_error

A = TypeVar("A")
C = TypeVar("C")

DEFAULT_DELAY = 0.25
"""Seconds between the starts of two attempts (trio's and aiohttp's default)."""


class AllAttemptsFailed(OSError, Generic[A]):
    """Every address failed; ``errors`` holds each address and its exception, in order."""

    def __init__(self, errors: Sequence[tuple[A, BaseException]]) -> None:
        self.errors: tuple[tuple[A, BaseException], ...] = tuple(errors)
        text = "; ".join(f"{addr}: {describe_error(exc)}" for addr, exc in self.errors)
        super().__init__(text or "no address to connect to")


async def happy_eyeballs(
    addresses: Sequence[A],
    attempt: Callable[[A], Awaitable[C]],
    *,
    delay: float = DEFAULT_DELAY,
    close: Callable[[C], None] = lambda _c: None,
    on_error: Callable[[A, BaseException], None] = lambda _a, _e: None,
) -> tuple[A, C]:
    """Connect to the first address that answers; return it and its connection.

    Args:
        addresses: in order of preference.
        attempt: opens one connection (and raises on failure or timeout).
        delay: seconds to wait for an attempt before also starting the next one.
        close: disposes of a connection that succeeded too late.
        on_error: told about each failed attempt as it fails (even if another wins).

    Raises:
        AllAttemptsFailed: every attempt raised (``errors`` says why, per address).
    """
    pending: dict[asyncio.Task[C], A] = {}
    errors: list[tuple[A, BaseException]] = []
    started = 0
    winner: tuple[A, C] | None = None
    try:
        while winner is None:
            if started < len(addresses):
                addr = addresses[started]
                started += 1
                pending[asyncio.ensure_future(attempt(addr))] = addr
            if not pending:
                raise AllAttemptsFailed(errors)
            more = started < len(addresses)
            done, _ = await asyncio.wait(
                pending, timeout=delay if more else None, return_when=asyncio.FIRST_COMPLETED
            )
            # Earlier addresses first, so that the result does not depend on the order
            # asyncio happened to report simultaneous completions in.
            for task in sorted(done, key=lambda t: addresses.index(pending[t])):
                addr = pending.pop(task)
                exc = task.exception()
                if exc is not None:
                    errors.append((addr, exc))
                    on_error(addr, exc)
                elif winner is None:
                    winner = (addr, task.result())
                else:
                    close(task.result())
        return winner
    finally:
        for task in pending:
            task.cancel()
        try:
            if pending:
                await asyncio.wait(pending)
        finally:
            for task in pending:
                if task.done() and not task.cancelled() and task.exception() is None:
                    close(task.result())
