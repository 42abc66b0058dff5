"""How long the event loop is late: a task that sleeps a fixed interval and records how
much later than asked it woke up.

A stall of the loop (a blocking call, a long computation, a thread holding the GIL) shows
up as lag in the next sample; the maximum is the longest stall seen, within one interval.
The monitor keeps counters and a fixed histogram, never the samples, so it can run for
the life of a peer (``mntr``-style figures) as well as around a benchmark.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from dataclasses import dataclass
from typing import Final

LAG_BUCKETS_MS: Final = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
"""Upper bounds of the histogram's buckets; the last bucket counts the rest."""


@dataclass(frozen=True, slots=True)
class LoopLag:
    """Figures since the monitor started (or was reset)."""

    samples: int
    max_ms: float
    mean_ms: float
    histogram: tuple[int, ...]
    """Counts per bucket of :data:`LAG_BUCKETS_MS`, plus one for lags above the last."""

    def over(self, ms: float) -> int:
        """Samples whose lag was more than the bucket bound ``ms`` (one of the bounds)."""
        i = LAG_BUCKETS_MS.index(ms)
        return sum(self.histogram[i + 1 :])


class LoopLagMonitor:
    """``async with LoopLagMonitor(interval_ms=5) as mon: ...; mon.lag()``.

    Or ``start()`` on the running loop and ``await stop()``.
    """

    def __init__(self, interval_ms: float = 5.0) -> None:
        self.interval_ms = interval_ms
        self._task: asyncio.Task[None] | None = None
        self.reset()

    def reset(self) -> None:
        self._samples = 0
        self._max = 0.0
        self._total = 0.0
        self._hist = [0] * (len(LAG_BUCKETS_MS) + 1)

    def record(self, lag_ms: float) -> None:
        """One observation (the task calls it; tests may too)."""
        lag_ms = max(lag_ms, 0.0)
        self._samples += 1
        self._total += lag_ms
        self._max = max(self._max, lag_ms)
        self._hist[bisect.bisect_left(LAG_BUCKETS_MS, lag_ms)] += 1

    def lag(self) -> LoopLag:
        mean = self._total / self._samples if self._samples else 0.0
        return LoopLag(self._samples, self._max, mean, tuple(self._hist))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> LoopLag:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return self.lag()

    async def __aenter__(self) -> LoopLagMonitor:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.interval_ms / 1000.0
        while True:
            t0 = loop.time()
            await asyncio.sleep(interval)
            self.record((loop.time() - t0 - interval) * 1000.0)
