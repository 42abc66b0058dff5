"""One quorum-port phase without an election: :class:`LeaderServer` and :class:`LearnerClient`.

Both are a :class:`~zkquorum.runtime.peer.PeerRuntime` with a fixed role (the same core,
storage and I/O pumps as a full peer; no election port), for tools and tests that drive
the quorum port alone, against our own peers or a real ZooKeeper.  They report outcomes on
:attr:`outcomes`:

* ``QuorumOutcome("established", epoch)`` once (the epoch is the fencing token);
* ``QuorumOutcome("failed", epoch, reason)`` once, at the end: leader gone, handshake
  failed, quorum lost, closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.core.leader import Leader
from zkquorum.core.learner import Learner
from zkquorum.core.peer import FixedRole
from zkquorum.runtime.peer import PeerRuntime
from zkquorum.runtime.storage import Storage
from zkquorum.runtime.tasks import TaskOwner
from zkquorum.runtime.tls import QuorumTls
from zkquorum.wire.election import ServerState


@dataclass(frozen=True, slots=True)
class QuorumOutcome:
    kind: Literal["established", "failed"]
    epoch: int | None = None
    reason: str | None = None


class _Phase:
    def __init__(self, config: QuorumConfig, storage: Storage, role: FixedRole) -> None:
        self.config = config
        self.outcomes: asyncio.Queue[QuorumOutcome] = asyncio.Queue()
        self.epoch: int | None = None
        self.established = False
        self.failure: str | None = None
        self._done = asyncio.Event()
        self._established = asyncio.Event()
        self.runtime = PeerRuntime(config, fixed=role, storage=storage, trace=self._on_trace)

    def _on_trace(self, record: dict[str, object]) -> None:
        kind = record["ev"]
        if kind == "established" and not self._done.is_set():
            epoch = record["epoch"]
            assert isinstance(epoch, int)
            self.epoch = epoch
            self.established = True
            self._established.set()
            self.outcomes.put_nowait(QuorumOutcome("established", epoch))
        elif kind == "phase-over":
            self._fail(str(record["reason"]))

    def _fail(self, reason: str) -> None:
        if self._done.is_set():
            return
        self.failure = reason
        self._done.set()
        self.outcomes.put_nowait(QuorumOutcome("failed", self.epoch, reason))

    @property
    def _tls(self) -> QuorumTls | None:
        return self.runtime.tls

    @property
    def _tasks(self) -> TaskOwner:
        return self.runtime._tasks

    @property
    def last_zxid(self) -> int:
        return self.runtime.last_zxid

    async def close(self) -> None:
        await self.runtime.close()
        self._fail("closed")

    async def wait_established(self, timeout: float | None = None) -> int:
        """The epoch, once established; ``RuntimeError`` if the phase failed first."""
        est = asyncio.ensure_future(self._established.wait())
        done = asyncio.ensure_future(self._done.wait())
        try:
            await asyncio.wait_for(
                asyncio.wait({est, done}, return_when=asyncio.FIRST_COMPLETED), timeout
            )
        finally:
            est.cancel()
            done.cancel()
        if not self.established or self.epoch is None:
            raise RuntimeError(f"quorum port failed: {self.failure}")
        return self.epoch

    async def wait_closed(self) -> str | None:
        """Until the phase failed or was closed; the reason."""
        await self._done.wait()
        return self.failure


class LearnerClient(_Phase):
    """Follow (or observe) the leader ``leader_sid`` of ``config``: one phase."""

    def __init__(
        self,
        config: QuorumConfig,
        storage: Storage,
        leader_sid: int,
        *,
        observer: bool | None = None,
    ) -> None:
        if config.verifier is None or config.my_id is None:
            raise ValueError("a quorum peer needs server lines and a myid")
        if leader_sid not in config.verifier.all_members:
            raise ValueError(f"leader sid {leader_sid} is not in the config")
        if observer is None:
            observer = config.my_id in config.verifier.observing_members
        state = ServerState.OBSERVING if observer else ServerState.FOLLOWING
        super().__init__(config, storage, FixedRole(state, leader_sid))
        self.leader_sid = leader_sid

    @property
    def learner(self) -> Learner | None:
        return self.runtime.learner

    @property
    def _writer(self) -> asyncio.StreamWriter | None:
        link = self.runtime._link
        return None if link is None else link._writer

    def start(self) -> None:
        self.runtime.start_fixed()

    async def __aenter__(self) -> LearnerClient:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class LeaderServer(_Phase):
    """Lead: listen on our quorum address(es) (wildcard with quorumListenOnAllIPs)."""

    def __init__(self, config: QuorumConfig, storage: Storage) -> None:
        if config.my_id is None:
            raise ValueError("a quorum peer needs server lines and a myid")
        super().__init__(config, storage, FixedRole(ServerState.LEADING, config.my_id))

    @property
    def leader(self) -> Leader | None:
        return self.runtime.leader

    @property
    def learners_dropped(self) -> int:
        return self.runtime._dropped

    async def start(self) -> None:
        """Load the database, bind the listener(s), start leading; ``OSError`` when the
        quorum port cannot be bound."""
        self.runtime.start_fixed()
        await self.runtime.wait_for(
            lambda: self.runtime.listener is not None or self._done.is_set(), None
        )
        if self.runtime.listener is None:
            reason = self.failure
            await self.close()
            raise OSError(f"cannot start leading: {reason}")

    async def __aenter__(self) -> LeaderServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
