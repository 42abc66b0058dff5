"""One way for the runtime to own its tasks: :class:`TaskOwner`.

Every long-lived task of a runtime object (a read loop, a connect attempt, a listener's
handler) is spawned through its owner; ``await owner.close()`` cancels and awaits them
all, including tasks spawned while closing.  A task that dies of an exception is logged
and reported to ``on_crash`` (a peer ends the phase there: never a silent hang).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskOwner:
    def __init__(
        self, name: str, on_crash: Callable[[str, BaseException], None] | None = None
    ) -> None:
        self.name = name
        self._on_crash = on_crash
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        return self._closed

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any] | None:
        """Start ``coro`` as an owned task; None (and the coroutine closed) once closed."""
        if self._closed:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def adopt(self, task: asyncio.Task[Any] | None) -> None:
        """Own a task someone else created (``asyncio.start_server``'s handlers)."""
        if task is None or task.done():
            return
        if self._closed:
            task.cancel()
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task %s failed", task.get_name(), exc_info=exc)
            if self._on_crash is not None:
                self._on_crash(task.get_name(), exc)

    def release(self, task: asyncio.Task[Any] | None) -> None:
        """Hand ``task`` over: it runs on, but closing no longer cancels it."""
        if task is not None:
            self._tasks.discard(task)

    def stop(self) -> None:
        """Refuse new tasks and cancel the owned ones now; :meth:`close` awaits them."""
        self._closed = True
        current = asyncio.current_task()
        for t in self._tasks:
            if t is not current:
                t.cancel()

    async def settle(self, timeout: float) -> None:
        """Give the owned tasks up to ``timeout`` seconds to finish by themselves."""
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def cancel(self) -> None:
        """Cancel and await the owned tasks but the caller's own; new ones may follow."""
        current = asyncio.current_task()
        while True:
            tasks = [t for t in self._tasks if t is not current and not t.done()]
            if not tasks:
                break
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)

    async def close(self) -> None:
        """Cancel and await every owned task but the caller's own, including any spawned
        meanwhile, and refuse new ones (idempotent)."""
        self._closed = True
        await self.cancel()
