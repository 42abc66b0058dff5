"""An asyncio event loop with a virtual clock that jumps (trio's ``MockClock`` autojump).

``loop.time()`` starts at 0 and only moves when every task is blocked: the selector,
instead of sleeping until the next timer, advances the clock to it.  Sleeps and timeouts
therefore take no real time and the order of events is reproducible.  Real I/O still
works (ready file descriptors are polled without waiting), but a test that waits on a
socket would see the clock jump past its timeouts: use it for socket-free scenarios.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self, loop: VirtualClockLoop) -> None:
        super().__init__()
        self._vloop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        if ready or timeout is None or timeout <= 0:
            if not ready and timeout is None:
                raise RuntimeError("virtual clock: every task waits and no timer is set")
            return ready
        self._vloop.now += timeout
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a :class:`VirtualClockLoop`."""
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
