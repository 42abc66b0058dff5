"""``zkquorum run CONFIG``: one quorum peer, as a process, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zkquorum.cli.main import CliError
from zkquorum.config.errors import ConfigError
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.runtime.files import load_config

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

    from zkquorum.runtime.opssettings import OpsSettings

LOG_FORMAT = "%(asctime)s [myid:%(myid)s] - %(levelname)s [%(name)s] - %(message)s"


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run one quorum peer from a zoo.cfg (myid from dataDir)")
    p.add_argument("config", help="path of zoo.cfg")
    p.add_argument(
        "--no-shortcut",
        action="store_true",
        help="decide exactly as ZooKeeper 3.8 does (always wait finalizeWait)",
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING")
    p.add_argument(
        "--loop",
        default=None,
        help="event loop: asyncio (default) or uvloop (pip install 'zkquorum[uvloop]'); "
        "the environment variable ZKQUORUM_LOOP sets the default",
    )
    p.add_argument(
        "--events",
        metavar="FILE",
        help="append one JSON line per election event (votes sent and received, decisions, "
        "establishment) to FILE, for `zkquorum cluster` and other tools",
    )
    p.set_defaults(func=run)


def setup_logging(myid: int | str, level: str) -> None:
    class _MyId(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.myid = myid
            return True

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_MyId())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    try:
        root.setLevel(level.upper())
    except ValueError:
        raise CliError(f"unknown log level '{level}'") from None


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        ops = _ops_settings(config.path)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    standalone = not config.is_distributed
    if not standalone and config.my_id is None:
        raise CliError(f"{args.config}: a quorum peer needs its myid file in dataDir")
    loop_factory = _loop_factory(args.loop or os.environ.get("ZKQUORUM_LOOP") or "asyncio")
    setup_logging(config.my_id or 0, args.log_level)
    if loop_factory is not None:
        logging.getLogger("zkquorum.run").info("event loop: uvloop")
    for line in ignored_keys(config.path, config.unused_keys):
        logging.getLogger("zkquorum.config").warning("%s", line)
    if (
        not config.ssl_quorum
        and not config.secure_client_port
        and "ssl" not in sys.modules
        and loop_factory is None
    ):
        # Without quorum TLS or a secure client port a peer never needs OpenSSL.  Blocking
        # the import (asyncio then runs as on a Python built without ssl) saves ~5 MiB
        # resident per peer process.
        sys.modules["ssl"] = None  # type: ignore[assignment]
    import asyncio

    from zkquorum.runtime.connections import BindError
    from zkquorum.runtime.sasl_login import SaslConfigError
    from zkquorum.runtime.storage import StorageError
    from zkquorum.runtime.tls import TlsConfigError

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            if standalone:
                return runner.run(_serve_standalone(config, ops))
            return runner.run(
                _serve(config, ops, shortcuts=not args.no_shortcut, events=args.events)
            )
    except (BindError, TlsConfigError, SaslConfigError) as exc:
        raise CliError(f"{args.config}: {exc}") from None
    except OSError as exc:
        # e.g. the client port is taken: one line, as every other start-up failure
        raise CliError(f"{args.config}: cannot start: {exc}") from None
    except StorageError as exc:
        # As QuorumPeerMain: "Unable to load database on disk", then "Unexpected exception,
        # exiting abnormally" with exit status 1 (not 2, which is a config error).
        print(f"zkquorum: {args.config}: Unable to load database on disk: {exc}", file=sys.stderr)
        return 1


def _loop_factory(name: str) -> Callable[[], AbstractEventLoop] | None:
    """The event loop ``zkquorum run`` runs on: ``None`` for asyncio's own, or uvloop's
    (libuv; it imports ``ssl``, so a peer on it keeps OpenSSL loaded)."""
    if name == "asyncio":
        return None
    if name != "uvloop":
        raise CliError(f"unknown event loop '{name}' (asyncio or uvloop)")
    try:
        import uvloop
    except ImportError:
        raise CliError("--loop uvloop: uvloop is not installed (pip install uvloop)") from None
    factory: Callable[[], AbstractEventLoop] = uvloop.new_event_loop
    return factory


@contextlib.contextmanager
def _startup_heap() -> Iterator[None]:
    """Start-up without cyclic collections, then everything it made is frozen
    (``gc.freeze``): later collections skip it.

    The database is most of a server's heap and lives as long as the process; a
    collection that walks it finds nothing to free.  Measured with 1,000,000 znodes: the
    first collections after the load took 1.0 s of CPU (the load's two million objects
    were all still young), and every full collection 0.36 s, against 0.03 s frozen.
    Frozen objects are still freed by reference counting, as a deleted znode is.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


async def _serve_standalone(config: QuorumConfig, ops: OpsSettings) -> int:
    """zoo.cfg without server lines: one standalone server, as ``ZooKeeperServerMain``."""
    import asyncio

    from zkquorum.runtime.standalone import StandaloneServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = StandaloneServer(config)
    endpoints = None
    try:
        with _startup_heap():
            await server.start()
        if ops.enabled:
            from zkquorum.runtime.http_admin import for_standalone

            endpoints = for_standalone(
                server, ops, config_text=Path(config.path).read_text(encoding="iso-8859-1")
            )
            await endpoints.start()
        failed = asyncio.ensure_future(server.wait_failed())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({failed, stopped}, return_when=asyncio.FIRST_COMPLETED)
        failed.cancel()
        stopped.cancel()
        logging.getLogger("zkquorum.server").info("shutting down")
    finally:
        if endpoints is not None:
            await endpoints.close()
        await server.close()
    return 0


_WHY_IGNORED = (
    ("ssl.", "the TLS client port's keys, and secureClientPort is not set"),
    ("serverCnxnFactory", "zkquorum has one client connection factory, on asyncio"),
    ("authProvider.", "zkquorum's providers are digest, ip, world, super and SASL's"),
    ("zookeeper.authProvider.", "zkquorum's providers are digest, ip, world, super and SASL's"),
)


def ignored_keys(path: str, unused: Sequence[tuple[str, int]]) -> list[str]:
    """One warning per zoo.cfg key zkquorum reads but does not act on (with why)."""
    out = []
    for key, line in unused:
        why = next((w for prefix, w in _WHY_IGNORED if key.startswith(prefix)), None)
        out.append(f"{path}:{line}: {key} ignored: {why or 'zkquorum does not use this key'}")
    return out


def _ops_settings(path: str) -> OpsSettings:
    """The AdminServer and Prometheus keys of zoo.cfg (``ConfigError`` with file:line)."""
    from zkquorum.runtime.opssettings import OpsSettings

    try:
        text = Path(path).read_bytes().decode("iso-8859-1")
    except OSError:
        return OpsSettings()
    return OpsSettings.from_zoo_cfg(text, path)


async def _serve(
    config: QuorumConfig, ops: OpsSettings, *, shortcuts: bool, events: str | None
) -> int:
    import asyncio

    from zkquorum.runtime.peer import PeerRuntime

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.ExitStack() as stack:
        trace = None
        if events:
            try:
                out = stack.enter_context(open(events, "a", encoding="utf-8"))
            except OSError as exc:
                raise CliError(f"{events}: cannot open: {exc.strerror}") from None

            def trace(record: dict[str, object]) -> None:
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
                out.flush()

        peer = PeerRuntime(
            config, all_voted_shortcut=shortcuts, failover_shortcut=shortcuts, trace=trace
        )
        log = logging.getLogger("zkquorum.peer")
        endpoints = None
        try:
            with _startup_heap():
                await peer.start()
            if ops.admin_enabled or ops.metrics_enabled:
                # Only when zoo.cfg asks: the HTTP modules stay unimported otherwise.
                from zkquorum.runtime.http_admin import for_peer

                endpoints = for_peer(
                    peer, ops, config_text=Path(config.path).read_text(encoding="iso-8859-1")
                )
                await endpoints.start()
            await stop.wait()
            log.info("shutting down")
        finally:
            if endpoints is not None:
                await endpoints.close()
            await peer.close()
    return 0
