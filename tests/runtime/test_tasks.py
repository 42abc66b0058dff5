"""TaskOwner: the runtime's one way to own tasks."""

from __future__ import annotations

import asyncio
import inspect

from zkquorum.runtime.tasks import TaskOwner


def test_close_cancels_and_awaits_every_task_and_refuses_new_ones() -> None:
    async def main() -> None:
        owner = TaskOwner("t")
        forever = owner.spawn(asyncio.Event().wait(), "forever")
        assert forever is not None and len(owner) == 1
        await owner.close()
        assert forever.cancelled() and len(owner) == 0 and owner.closed

        async def late() -> None:
            pass

        coro = late()
        assert owner.spawn(coro, "late") is None  # and the coroutine is closed, not leaked
        assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED

    asyncio.run(main())


def test_cancel_keeps_the_owner_open_and_settle_waits_within_a_bound() -> None:
    async def main() -> None:
        owner = TaskOwner("t")
        first = owner.spawn(asyncio.Event().wait(), "first")
        await owner.cancel()
        assert first is not None and first.cancelled() and not owner.closed
        quick = owner.spawn(asyncio.sleep(0.01), "quick")
        slow = owner.spawn(asyncio.Event().wait(), "slow")
        loop = asyncio.get_running_loop()
        start = loop.time()
        await owner.settle(0.2)
        assert quick is not None and quick.done() and slow is not None and not slow.done()
        assert loop.time() - start >= 0.2
        await owner.close()
        assert slow.cancelled()

    asyncio.run(main())


def test_a_released_task_outlives_its_owner() -> None:
    async def main() -> None:
        owner = TaskOwner("t")
        go = asyncio.Event()

        async def handed_over() -> str:
            owner.release(asyncio.current_task())
            await go.wait()
            return "done"

        task = owner.spawn(handed_over(), "conn")
        await asyncio.sleep(0)
        owner.stop()
        await owner.close()
        assert task is not None and not task.done()
        go.set()
        assert await task == "done"

    asyncio.run(main())


def test_stop_cancels_at_once_and_a_crash_is_reported() -> None:
    crashes: list[tuple[str, BaseException]] = []

    async def main() -> None:
        owner = TaskOwner("t", on_crash=lambda name, exc: crashes.append((name, exc)))

        async def boom() -> None:
            raise ValueError("boom")

        owner.spawn(boom(), "boom")
        waiting = owner.spawn(asyncio.Event().wait(), "waiting")
        await asyncio.sleep(0)
        owner.stop()
        await asyncio.sleep(0)
        assert waiting is not None and waiting.cancelled()
        await owner.close()

    asyncio.run(main())
    assert [(name, str(exc)) for name, exc in crashes] == [("t:boom", "boom")]
