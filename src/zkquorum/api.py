"""The library API: run a ZooKeeper quorum peer inside your asyncio program.

::

    async with QuorumPeer("zoo.cfg") as peer:        # or QuorumPeer(config_object)
        async for state in peer.changes():           # leadership is a state you watch
            if state.is_leader:
                ...  # lead, passing state.fencing_token with every write

* :attr:`QuorumPeer.current` is the :class:`Leadership` now (role LOOKING / FOLLOWING /
  LEADING / OBSERVING, leader sid, epoch, established or not).
* :meth:`QuorumPeer.changes` is an async iterator of changes: each subscriber starts with
  the current value, then gets every later value in order.  Memory is bounded: a
  subscriber keeps at most ``backlog`` unread values (256 by default); one that falls
  further behind loses the *oldest* unread values, never the newest, and
  :attr:`Subscription.dropped` counts them (leadership is a state: the latest value is
  the one that matters, and its epoch tells whether leadership changed in between).
* :meth:`QuorumPeer.wait_for_leadership` returns the epoch once this peer is the
  established leader; :meth:`QuorumPeer.wait_for` waits for any predicate on the state.
* Callbacks (``on_change=`` or :meth:`QuorumPeer.add_listener`) run on the loop with each
  new value; one that returns an awaitable is awaited in a task the peer owns.  A
  callback that raises (or whose awaitable raises) while this peer is LEADING makes it
  step down: the error is logged, the leader closes its quorum port and goes back to
  LOOKING, and its followers elect again (this peer may win again if it is still the best
  candidate; that is logged too).

**The fencing token.**  :attr:`QuorumPeer.fencing_token` is the established epoch while
this peer is the established leader, else None.  A leader is established once a quorum of
participants has accepted its epoch (ACKEPOCH, stored in their ``acceptedEpoch`` files)
and synced with it (NEWLEADER acks, ``currentEpoch``).  What it guarantees: at most one
peer is ever the established leader of a given epoch, and epochs only grow (each new
leader's epoch is greater than any epoch a quorum accepted before; the files survive
restarts).  What it does not guarantee: that no older leader still *believes* it leads.
A leader that was paused, partitioned or slow keeps running with its old token until it
notices (within ``syncLimit`` ticks of hearing nothing, when it next runs), so
leadership is one leader per epoch, not one leader per instant.  Fence with the token:
pass it with every write to the resources the leader controls, and have them reject a
token lower than the highest they have seen (``examples/leader_service.py``).

Threads: none of ours.  :class:`QuorumPeer` runs on the caller's loop, with its file I/O
(small epoch-file writes, fsync) inline; asyncio itself may use its default executor for
host-name look-ups (``getaddrinfo``).  :class:`BlockingQuorumPeer` is for programs without
asyncio: it owns exactly one thread, which runs the event loop of one :class:`QuorumPeer`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.runtime.admin import PeerStatus
from zkquorum.runtime.files import load_config
from zkquorum.runtime.peer import Leadership, PeerRuntime
from zkquorum.runtime.tasks import TaskOwner
from zkquorum.wire.election import ServerState

__all__ = [
    "BlockingQuorumPeer",
    "Leadership",
    "PeerClosed",
    "QuorumPeer",
    "ServerState",
    "Subscription",
]

log = logging.getLogger("zkquorum.api")

T = TypeVar("T")

Listener = Callable[[Leadership], Awaitable[None] | None]

DEFAULT_BACKLOG = 256


class PeerClosed(Exception):
    """The peer was closed while you waited for it."""


def _key(value: Leadership) -> tuple[ServerState, int | None, int]:
    """Which leadership term a value belongs to (a term spans not-established -> established)."""
    return value.role, value.leader, value.election_epoch


class Subscription:
    """One subscriber's view of the changes: an async iterator of :class:`Leadership`.

    Starts with the value current when it was created; ends (``StopAsyncIteration``) once
    the peer is closed and every unread value was read, or after :meth:`close`.
    """

    def __init__(self, first: Leadership, backlog: int) -> None:
        if backlog < 1:
            raise ValueError("backlog must be at least 1")
        self._values: collections.deque[Leadership] = collections.deque([first], maxlen=backlog)
        self._wakeup: asyncio.Event | None = None
        self._ended = False
        self.dropped = 0
        """Values this subscriber lost because it fell more than ``backlog`` behind."""

    def _push(self, value: Leadership) -> None:
        if self._ended:
            return
        if len(self._values) == self._values.maxlen:
            if self.dropped == 0:
                log.warning(
                    "a leadership subscriber fell %d values behind: dropping its oldest",
                    self._values.maxlen,
                )
            self.dropped += 1
        self._values.append(value)
        if self._wakeup is not None:
            self._wakeup.set()

    def _end(self) -> None:
        self._ended = True
        if self._wakeup is not None:
            self._wakeup.set()

    def close(self) -> None:
        """Stop receiving; unread values are discarded."""
        self._values.clear()
        self._end()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Leadership:
        while not self._values:
            if self._ended:
                raise StopAsyncIteration
            if self._wakeup is None:
                self._wakeup = asyncio.Event()
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._values.popleft()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class QuorumPeer:
    """One ZooKeeper quorum peer on the running asyncio loop.

    ``config`` is a zoo.cfg path (its ``dataDir/myid`` names this peer) or a
    :class:`~zkquorum.config.zoocfg.QuorumConfig`.  ``async with`` (or :meth:`start` /
    :meth:`close`) starts and stops every task, socket and file of the peer.
    ``shortcuts=False`` decides elections exactly as ZooKeeper 3.8 does (always waiting
    finalizeWait).  ``trace`` receives one dict per election event (see ``zkquorum run
    --events``).  See the module documentation for the semantics of every method.
    """

    LISTENER_GRACE_S = 5.0
    """How long :meth:`close` lets async listeners handle the last value before cancelling."""

    def __init__(
        self,
        config: QuorumConfig | str | os.PathLike[str],
        *,
        on_change: Listener | None = None,
        backlog: int = DEFAULT_BACKLOG,
        shortcuts: bool = True,
        trace: Callable[[dict[str, object]], None] | None = None,
    ) -> None:
        if not isinstance(config, QuorumConfig):
            config = load_config(config)
        if not config.is_distributed or config.my_id is None:
            raise ValueError(
                f"{config.path or 'config'}: not a quorum configuration (standalone or no myid)"
            )
        self.config = config
        self._backlog = backlog
        self._listeners: list[Listener] = [] if on_change is None else [on_change]
        self._subs: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._tasks = TaskOwner("leadership-listeners")
        self._changed: asyncio.Future[None] | None = None
        self._started = False
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._runtime = PeerRuntime(
            config,
            all_voted_shortcut=shortcuts,
            failover_shortcut=shortcuts,
            on_change=self._on_change,
            trace=trace,
        )
        self._current = self._runtime.leadership

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load the database and epochs, bind the ports, start electing.

        Raises :class:`~zkquorum.runtime.storage.StorageError` (ZooKeeper's start-up texts:
        corrupt epoch files...) or :class:`~zkquorum.runtime.connections.BindError`; then
        everything already opened is closed again.
        """
        if self._started:
            raise RuntimeError("QuorumPeer.start called twice")
        self._started = True
        try:
            await self._runtime.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Stop: a leader stops leading first; every task, socket and file is closed.

        Subscribers and listeners see a last LOOKING value (async listeners get
        :attr:`LISTENER_GRACE_S` seconds for it; older ones still running are cancelled);
        subscriptions then end.  Idempotent.
        """
        if self._closing is not None:  # a second caller waits for the first close
            await asyncio.shield(self._closing)
            return
        self._closing = asyncio.get_running_loop().create_future()
        try:
            await self._tasks.cancel()  # listeners still busy with older values
            await self._runtime.close()  # -> listeners get the last (LOOKING) value
            self._closed = True
            await self._tasks.settle(self.LISTENER_GRACE_S)  # let them see it, within a bound
            await self._tasks.close()
            for sub in list(self._subs):
                sub._end()
            self._wake()
        finally:
            self._closing.set_result(None)

    async def __aenter__(self) -> QuorumPeer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ state

    @property
    def my_id(self) -> int:
        return self._runtime.my_id

    @property
    def current(self) -> Leadership:
        """Leadership now."""
        return self._current

    @property
    def is_leader(self) -> bool:
        """This peer is the established leader."""
        return self._current.is_leader

    @property
    def fencing_token(self) -> int | None:
        """The established epoch while this peer is the established leader, else None.

        A leader is established once a quorum of participants accepted its epoch and
        synced with it.  Guaranteed: at most one peer is ever the established leader of a
        given epoch, and epochs only grow (across restarts too: they live in the
        ``acceptedEpoch``/``currentEpoch`` files).  Not guaranteed: that no older leader
        still believes it leads (a paused or partitioned one keeps its token until it
        notices, within syncLimit ticks of running again).  One leader per epoch, not per
        instant: pass the token with every write, and have the other side reject tokens
        lower than the highest it has seen.
        """
        return self._current.fencing_token

    def status(self) -> PeerStatus:
        """What ``srvr``/``mntr`` report (election times, zxid, connections...)."""
        return self._runtime.status()

    def changes(self, *, backlog: int | None = None) -> Subscription:
        """An async iterator of every leadership change, starting with the current value."""
        sub = Subscription(self._current, backlog or self._backlog)
        if self._closed:
            sub._end()
        else:
            self._subs.add(sub)
        return sub

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with each new value (on the loop); returns the remover."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    async def wait_for(
        self, predicate: Callable[[Leadership], bool], timeout: float | None = None
    ) -> Leadership:
        """The current value once ``predicate`` holds for it (checked now and at each change).

        ``TimeoutError`` after ``timeout`` seconds; :class:`PeerClosed` if the peer closes.
        """
        async with asyncio.timeout(timeout):
            while True:
                value = self._current
                if predicate(value):
                    return value
                if self._closed:
                    raise PeerClosed(f"peer {self.my_id} is closed")
                if self._changed is None or self._changed.done():
                    self._changed = asyncio.get_running_loop().create_future()
                await asyncio.shield(self._changed)

    async def wait_for_leadership(self, timeout: float | None = None) -> int:
        """Return the fencing token (the epoch) once this peer is the established leader."""
        value = await self.wait_for(lambda v: v.is_leader, timeout)
        assert value.epoch is not None
        return value.epoch

    def step_down(self, reason: str = "asked by the application") -> bool:
        """Stop leading (the peer goes back to LOOKING); False unless LEADING."""
        return self._runtime.step_down(reason)

    # ------------------------------------------------------------------ plumbing

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    def _on_change(self, value: Leadership) -> None:
        """From the runtime, on the loop.  Raises the first listener error (-> step down)."""
        self._current = value
        for sub in list(self._subs):
            sub._push(value)
        self._wake()
        first: Exception | None = None
        for listener in list(self._listeners):
            try:
                result = listener(value)
            except Exception as exc:
                first = first or exc
                continue
            if inspect.isawaitable(result):
                self._spawn_listener(result, value)
        if first is not None:
            raise first

    def _spawn_listener(self, awaitable: Awaitable[None], value: Leadership) -> None:
        async def run() -> None:
            try:
                await awaitable
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("leadership listener failed on %s", value)
                if self._current.role is ServerState.LEADING and _key(self._current) == _key(value):
                    self._runtime.step_down(
                        f"a leadership listener raised {type(exc).__name__}: {exc}"
                    )

        self._tasks.spawn(run(), "listener")


class BlockingQuorumPeer:
    """A :class:`QuorumPeer` for programs without asyncio.

    It owns one thread, ``zkquorum-peer-<sid>``, which runs a private event loop with the
    peer on it; :meth:`start` creates it, :meth:`close` (or leaving ``with``) stops the
    peer, then the loop, and joins the thread.  Listeners (``on_change``) run on that
    thread: keep them short, and hand work to your own threads.  The methods below are
    safe to call from any other thread.
    """

    def __init__(
        self,
        config: QuorumConfig | str | os.PathLike[str],
        *,
        on_change: Callable[[Leadership], None] | None = None,
        backlog: int = DEFAULT_BACKLOG,
        shortcuts: bool = True,
    ) -> None:
        if not isinstance(config, QuorumConfig):
            config = load_config(config)
        self.config = config
        self._kwargs: dict[str, Any] = {
            "on_change": on_change,
            "backlog": backlog,
            "shortcuts": shortcuts,
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._peer: QuorumPeer | None = None

    def start(self, timeout: float | None = 30.0) -> None:
        """Start the thread and the peer; errors of :meth:`QuorumPeer.start` are raised here."""
        if self._thread is not None:
            raise RuntimeError("BlockingQuorumPeer.start called twice")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, name=f"zkquorum-peer-{self.config.my_id}", daemon=True
        )
        self._thread.start()

        async def make() -> QuorumPeer:
            peer = QuorumPeer(self.config, **self._kwargs)
            await peer.start()
            return peer

        try:
            self._peer = self._call(make(), timeout)
        except BaseException:
            self._stop_loop(timeout)
            raise

    def _run_loop(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        if self._loop is None or self._thread is None:
            coro.close()
            raise PeerClosed("the peer is not running")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def _stop_loop(self, timeout: float | None) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()
        self._thread = None

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the peer (listeners see a last LOOKING value), the loop and the thread."""
        if self._peer is not None:
            peer, self._peer = self._peer, None
            self._call(peer.close(), timeout)
        if self._loop is not None and self._thread is not None:
            # asyncio's executor thread, if a host-name look-up started one.
            self._call(self._loop.shutdown_default_executor(), timeout)
        self._stop_loop(timeout)

    def __enter__(self) -> BlockingQuorumPeer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require(self) -> QuorumPeer:
        if self._peer is None:
            raise PeerClosed("the peer is not running")
        return self._peer

    @property
    def current(self) -> Leadership:
        """Leadership now (an immutable value; reading it from any thread is safe)."""
        return self._require().current

    @property
    def is_leader(self) -> bool:
        return self._require().is_leader

    @property
    def fencing_token(self) -> int | None:
        """See :attr:`QuorumPeer.fencing_token`."""
        return self._require().fencing_token

    def wait_for(
        self, predicate: Callable[[Leadership], bool], timeout: float | None = None
    ) -> Leadership:
        """See :meth:`QuorumPeer.wait_for` (``predicate`` runs on the peer's thread)."""
        peer = self._require()
        return self._call(peer.wait_for(predicate, timeout), None)

    def wait_for_leadership(self, timeout: float | None = None) -> int:
        """Block until this peer is the established leader; return the fencing token."""
        peer = self._require()
        return self._call(peer.wait_for_leadership(timeout), None)

    def step_down(self, reason: str = "asked by the application") -> bool:
        peer = self._require()

        async def do() -> bool:
            return peer.step_down(reason)

        return self._call(do(), 30.0)

    def changes(self, timeout: float | None = None) -> Iterator[Leadership]:
        """Every change, as :meth:`QuorumPeer.changes`; ``TimeoutError`` when none comes
        within ``timeout`` seconds; ends when the peer closes."""
        peer = self._require()

        async def subscribe() -> Subscription:
            return peer.changes()

        sub = self._call(subscribe(), 30.0)

        async def next_value() -> Leadership | None:
            try:
                return await asyncio.wait_for(sub.__anext__(), timeout)
            except StopAsyncIteration:
                return None

        try:
            while self._peer is not None:
                value = self._call(next_value(), None)
                if value is None:
                    return
                yield value
        finally:
            if self._loop is not None and self._thread is not None:
                self._loop.call_soon_threadsafe(sub.close)
