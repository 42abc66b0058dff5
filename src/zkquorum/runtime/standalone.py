"""A standalone ZooKeeper server (zoo.cfg without server lines): the client port, the
server core, one database and the group-committed log.

The loop: a client frame -> :class:`~zkquorum.core.server.ServerCore` -> bytes back,
txns to the :class:`~zkquorum.runtime.txnlog.TxnLog` -> once durable, ``TxnsDurable`` ->
the core applies them and replies.  A snapshot is written every ``snapCount`` txns
(3.8's randomised rule, in the log), in slices of the loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.core.database import Database
from zkquorum.core.server import (
    ClientClosed,
    ClientConnected,
    ClientMessage,
    ServerCore,
    ServerEvent,
    ServerSettings,
    ServerTick,
    TxnsDurable,
)
from zkquorum.runtime.client_port import ClientPort, max_client_cnxns, secure_client_listener
from zkquorum.runtime.files import zoo_cfg_properties, zoo_cfg_text
from zkquorum.runtime.metrics import MetricsRegistry, observe_requests
from zkquorum.runtime.sasl_login import load_sasl
from zkquorum.runtime.storage import Storage, StorageError, StorageSettings
from zkquorum.runtime.tasks import TaskOwner
from zkquorum.runtime.txnlog import TxnLog
from zkquorum.wire.client import ClientRequest, FourLetterWord
from zkquorum.wire.client_records import ConnectRequest
from zkquorum.wire.zxid import zxid_hex

if TYPE_CHECKING:
    from zkquorum.runtime.commands import CommandContext

log = logging.getLogger("zkquorum.server")

INF = float("inf")


class StandaloneServer:
    def __init__(self, config: QuorumConfig, *, storage: Storage | None = None) -> None:
        self.config = config
        self.storage = storage or Storage(
            Path(config.data_dir),
            Path(config.data_log_dir or config.data_dir),
            settings=StorageSettings.from_config(config),
        )
        props = zoo_cfg_properties(config)
        self.settings = dataclasses.replace(
            ServerSettings.from_properties(
                props,
                server_id=0,
                tick_time_ms=config.tick_time,
                min_session_timeout_ms=config.min_session_timeout,
                max_session_timeout_ms=config.max_session_timeout,
            ),
            sasl=load_sasl(props),
        )
        self.core: ServerCore | None = None
        self.port: ClientPort | None = None
        self.metrics: MetricsRegistry | None = None
        """Where request latencies go (``readlatency``, ``updatelatency``) when set."""
        self._ops: CommandContext | None = None
        self._tasks = TaskOwner("zkquorum-server", on_crash=self._crashed)
        self._log: TxnLog | None = None
        self._wake: asyncio.TimerHandle | None = None
        self._wake_at = INF
        self._t0 = time.monotonic()
        self._closed = False
        self._failed = asyncio.Event()
        self._snapshotting = False

    def now(self) -> float:
        return (time.monotonic() - self._t0) * 1000.0

    @property
    def uptime_ms(self) -> int:
        return int(self.now())

    @property
    def closed(self) -> bool:
        return self._closed

    async def start(self) -> None:
        loaded = self.storage.load_tree()  # no epochs: 3.8's standalone server has none
        db = Database(loaded.tree, loaded.committed)
        self.core = ServerCore(self.settings, db, now=self.now(), wall_ms=int(time.time() * 1000))
        self._log = self.storage.txn_log(
            on_synced=lambda zxid: self._step(TxnsDurable(self.now(), zxid)),
            on_error=self._log_failed,
            on_snapshot_due=self._snapshot_due,
        )
        self._log.start()
        props = zoo_cfg_properties(self.config)
        secure = secure_client_listener(self.config, props)
        host = self.config.client_port_address or "0.0.0.0"
        port: int | None = self.config.client_port
        if port is None and secure is None:
            port = 2181
        self.port = ClientPort(
            host,
            port,  # None: secureClientPort only
            self,
            self._tasks,
            answer_word=self._word,
            max_per_ip=max_client_cnxns(props),
            secure=secure,
        )
        await self.port.open()
        if self.port.bound is not None:
            log.info(
                "serving clients on %s:%s, last zxid 0x%s",
                *self.port.bound,
                zxid_hex(db.last_processed_zxid),
            )
        if self.port.secure_bound is not None:
            log.info("serving TLS clients on %s:%s", *self.port.secure_bound)
        self._arm(self.core.next_deadline())

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._wake is not None:
            self._wake.cancel()
        if self.port is not None:
            await self.port.close()
        await self._tasks.close()
        if self._log is not None:
            try:
                await self._log.close()
            except StorageError as exc:
                log.error("closing the txn log: %s", exc)
        self.storage.close()

    async def __aenter__(self) -> StandaloneServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait_failed(self) -> None:
        await self._failed.wait()

    # -- the sink of the client port --------------------------------------------------------

    def client_connected(self, conn: int, remote_ip: str) -> None:
        self._step(ClientConnected(self.now(), conn, remote_ip))

    def client_message(self, conn: int, message: ConnectRequest | ClientRequest) -> None:
        self._step(ClientMessage(self.now(), conn, message))

    def client_closed(self, conn: int) -> None:
        self._step(ClientClosed(self.now(), conn))

    # -- stepping ---------------------------------------------------------------------------

    def _step(self, event: ServerEvent) -> None:
        core, port = self.core, self.port
        if self._closed or core is None or port is None:
            return
        out = core.step(event)
        port.deliver(out.sends, out.closes)
        if (out.latencies or out.namespace_bytes) and self.metrics is not None:
            observe_requests(self.metrics, out.latencies, out.namespace_bytes)
        if out.append and self._log is not None:
            self._log.append(out.append)
        self._arm(out.wake_at)

    def _arm(self, at: float) -> None:
        if at == self._wake_at or self._closed:
            return
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        self._wake_at = at
        if at < INF:
            delay = max(0.0, (at - self.now()) / 1000.0)
            self._wake = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._wake = None
        self._wake_at = INF
        self._step(ServerTick(self.now()))

    def _log_failed(self, exc: BaseException) -> None:
        log.error("the txn log failed: %s; no write can be acknowledged any more", exc)
        self._failed.set()

    def _crashed(self, name: str, exc: BaseException) -> None:
        self._failed.set()

    def _snapshot_due(self, zxid: int) -> None:
        self._tasks.spawn(self._snapshot(), "snapshot")

    async def _snapshot(self) -> None:
        if self._snapshotting or self.core is None:
            log.warning("Too busy to snap, skipping")
            return
        self._snapshotting = True
        try:
            await self.storage.take_snapshot(self.core.db.tree)
        finally:
            self._snapshotting = False

    # -- four-letter words --------------------------------------------------------------------

    def ops_context(self, config_text: str | None = None) -> CommandContext:
        """The registry, ops source (gauges bound) and trace mask, made once: shared by
        the AdminServer, ``/metrics`` and the four-letter words."""
        if self._ops is None:
            from zkquorum.runtime.commands import CommandContext, TraceMask
            from zkquorum.runtime.opsview import StandaloneOpsSource, bind_gauges

            if config_text is None:
                config_text = zoo_cfg_text(self.config)
            registry = self.metrics if self.metrics is not None else MetricsRegistry()
            self.metrics = registry
            source = StandaloneOpsSource(self, config_text=config_text)
            bind_gauges(registry, source)
            self._ops = CommandContext(source, registry, TraceMask())
        return self._ops

    def _word(self, msg: FourLetterWord) -> str | None:
        from zkquorum.runtime import fourletter

        ctx, whitelist = self.ops_context(), self.config.four_letter_words
        return fourletter.render(msg.word, ctx, whitelist, argument=msg.argument)
