"""HTTP for operators: Prometheus ``/metrics``, the AdminServer's ``/commands``, health probes.

Facts: ``docs/spec/zk-server.md`` §5.1-5.2; ``examples/kubernetes/README.md`` documents the
endpoints for operators.

* ``/metrics`` on ``metricsProvider.httpHost``:``metricsProvider.httpPort`` (0.0.0.0:7000)
  when zoo.cfg names ``metricsProvider.className=org.apache.zookeeper.metrics.prometheus.
  PrometheusMetricsProvider``: the Prometheus text of the peer's :class:`MetricsRegistry`.
* The AdminServer on ``admin.serverAddress``:``admin.serverPort`` under
  ``admin.commandURL`` (``/commands``): ``GET <url>`` lists the commands as 3.8 does (HTML
  links, no content type), ``GET <url>/<name>?k=v`` answers the command's JSON with status
  200, also for an unknown name (``{"command": name, "error": "Unknown command: name"}``).
  3.8 enables it on 8080 by default; zkquorum runs it only when zoo.cfg asks
  (``admin.enableServer=true``, or an ``admin.serverPort``), since binding 8080 unasked
  collides as soon as two peers share a host.  ``admin.enableServer=false`` always wins.
* ``/health/live`` and ``/health/ready`` on the AdminServer port (and on the metrics port
  when it is the same): live answers 200 whenever the peer's event loop runs; ready answers
  200 while the server serves read-write and 503 with the reason otherwise, read-only
  service included (JSON both).

The HTTP/1.1 side is the standard library's asyncio streams, deliberately: a handful of
GET routes need no framework, and ``aiohttp`` 3.14 would add 90-130 ms of import and about
17 MiB of resident memory to every peer process (this module and its helpers: about 30 ms
and 1.2 MiB, imported only when zoo.cfg asks for an endpoint).  Requests are read
with strict limits (request line, header count and size, an idle timeout); a malformed
request gets a 400 and its connection is closed, never the server; ``GET`` and ``HEAD`` are
the only methods (405 with ``Allow`` otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, unquote

from zkquorum.config.model import HostPort
from zkquorum.runtime import commands
from zkquorum.runtime.metrics import PROMETHEUS_CONTENT_TYPE, MetricsRegistry
from zkquorum.runtime.opssettings import OpsSettings
from zkquorum.runtime.opsview import OpsSource, Seat
from zkquorum.runtime.tasks import TaskOwner

if TYPE_CHECKING:
    from zkquorum.runtime.peer import PeerRuntime
    from zkquorum.runtime.standalone import StandaloneServer

log = logging.getLogger(__name__)

LIVE_PATH: Final = "/health/live"
READY_PATH: Final = "/health/ready"
METRICS_PATH: Final = "/metrics"

MAX_REQUEST_LINE: Final = 8192
MAX_HEADER_BYTES: Final = 16384
MAX_HEADERS: Final = 100
MAX_CONNECTIONS: Final = 64
JSON_TYPE: Final = "application/json"


@dataclass(frozen=True, slots=True)
class Response:
    status: HTTPStatus
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: HTTPStatus, data: Mapping[str, Any]) -> Response:
    # Jackson's INDENT_OUTPUT writes `"key" : value` with two spaces of indentation.
    text = json.dumps(data, indent=2, separators=(",", " : "), ensure_ascii=False)
    return Response(status, text.encode("utf-8"), JSON_TYPE)


def _text(status: HTTPStatus, text: str) -> Response:
    return Response(status, text.encode("utf-8"), "text/plain; charset=utf-8")


class BadRequest(Exception):
    """The bytes are no HTTP request we accept; the connection is answered 400 and closed."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    version: str
    keep_alive: bool


class OpsApp:
    """The routes: pure request -> response over a source, a registry and settings."""

    def __init__(
        self,
        settings: OpsSettings,
        source: OpsSource,
        registry: MetricsRegistry,
        *,
        trace_mask: commands.TraceMask | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.source = source
        self.registry = registry
        self.table = commands.CommandTable()
        self.ctx = commands.CommandContext(source, registry, trace_mask or commands.TraceMask())
        self._clock = clock
        self._started = clock()

    def handle(self, req: Request, *, admin: bool, metrics: bool) -> Response:
        if req.method not in ("GET", "HEAD"):
            return Response(HTTPStatus.METHOD_NOT_ALLOWED, headers=(("Allow", "GET, HEAD"),))
        path = req.path
        if metrics and path == METRICS_PATH:
            return Response(
                HTTPStatus.OK, self.registry.exposition().encode("utf-8"), PROMETHEUS_CONTENT_TYPE
            )
        if path == LIVE_PATH:
            return _json(
                HTTPStatus.OK,
                {"live": True, "uptime_ms": int((self._clock() - self._started) * 1000)},
            )
        if path == READY_PATH:
            return self.readiness()
        if admin:
            url = self.settings.command_url
            if path in (url, url + "/"):
                links = "".join(
                    f'<a href="{url}/{name}">{name}</a>\n<br/>\n'
                    for name in self.table.primary_names
                )
                return Response(HTTPStatus.OK, links.encode("utf-8"))
            prefix = url + "/"
            if path.startswith(prefix):
                answer = commands.run(self.table, path[len(prefix) :], self.ctx, req.query)
                return _json(HTTPStatus.OK, answer)
        return _text(HTTPStatus.NOT_FOUND, f"no such resource: {path}\n")

    def readiness(self) -> Response:
        server = self.source.snapshot().server
        state = server.seat.value if server.serving and server.seat else "not serving"
        # A read-only server refuses every client that did not ask for read-only: not
        # ready for a Service that sends it everyone.
        read_only = server.seat is Seat.READ_ONLY
        ready = server.serving and not read_only
        reason = "read-only: looking for a quorum" if read_only else server.reason
        body = {
            "ready": ready,
            "state": state,
            "peer_state": server.peer_state,
            "reason": "" if ready else reason,
        }
        return _json(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE, body)


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One request's head; ``None`` at a clean end of stream.  Raises :class:`BadRequest`."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest("request line cut short") from None
    except asyncio.LimitOverrunError:
        raise BadRequest("request line too long") from None
    if len(line) > MAX_REQUEST_LINE:
        raise BadRequest("request line too long")
    parts = line.decode("latin-1").strip().split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("not an HTTP/1.x request line")
    method, target, version = parts
    if not method.isalpha() or not method.isupper():
        raise BadRequest("bad method")
    if not target.startswith("/"):
        raise BadRequest("the target must be an absolute path")
    headers: dict[str, str] = {}
    total = count = 0
    while True:
        try:
            raw = await reader.readuntil(b"\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            raise BadRequest("headers cut short or too long") from None
        total += len(raw)
        count += 1
        if total > MAX_HEADER_BYTES or count > MAX_HEADERS:
            raise BadRequest("headers too large")
        text = raw.decode("latin-1").rstrip("\r\n")
        if not text:
            break
        name, sep, value = text.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest("malformed header line")
        headers[name.lower()] = value.strip()
    if "transfer-encoding" in headers or headers.get("content-length", "0") not in ("", "0"):
        # No route takes a body; refusing it keeps the connection's framing simple.
        raise BadRequest("a request body is not accepted")
    raw_path, _, raw_query = target.partition("?")
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(key, value)  # getParameterMap()[key][0]: the first value
    connection = headers.get("connection", "").lower()
    keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    return Request(method, unquote(raw_path), query, version, keep)


def encode_response(resp: Response, *, head: bool, keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {resp.status.value} {resp.status.phrase}"]
    if resp.content_type is not None:
        lines.append(f"Content-Type: {resp.content_type}")
    lines.append(f"Content-Length: {len(resp.body)}")
    lines.append("Server: zkquorum")
    lines.extend(f"{k}: {v}" for k, v in resp.headers)
    if not keep_alive:
        lines.append("Connection: close")
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head_bytes if head else head_bytes + resp.body


class _Listener:
    """One listening socket serving some of the routes."""

    def __init__(
        self, app: OpsApp, want: HostPort, *, admin: bool, metrics: bool, idle_s: float
    ) -> None:
        self.app = app
        self.want = want
        self.admin = admin
        self.metrics = metrics
        self.idle_s = idle_s
        self.server: asyncio.Server | None = None
        self.bound: HostPort | None = None
        self.tasks = TaskOwner("ops-http")
        self.writers: set[asyncio.StreamWriter] = set()
        self.bad_requests = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._on_client,
            self.want.host,
            self.want.port,
            reuse_address=True,
            limit=MAX_HEADER_BYTES,
        )
        host, port = self.server.sockets[0].getsockname()[:2]
        self.bound = HostPort(str(host), int(port))

    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.writers) >= MAX_CONNECTIONS:
            writer.close()
            return
        self.writers.add(writer)
        if self.tasks.spawn(self._serve(reader, writer), "request") is None:
            self.writers.discard(writer)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_s):
                        req = await read_request(reader)
                except BadRequest as exc:
                    self.bad_requests += 1
                    resp = _text(HTTPStatus.BAD_REQUEST, f"bad request: {exc}\n")
                    writer.write(encode_response(resp, head=False, keep_alive=False))
                    await writer.drain()
                    return
                if req is None:
                    return
                try:
                    resp = self.app.handle(req, admin=self.admin, metrics=self.metrics)
                except Exception:
                    log.exception("ops request %s %s failed", req.method, req.path)
                    resp = _text(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error\n")
                writer.write(
                    encode_response(resp, head=req.method == "HEAD", keep_alive=req.keep_alive)
                )
                await writer.drain()
                if not req.keep_alive:
                    return
        except (OSError, TimeoutError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        await self.tasks.close()
        for writer in list(self.writers):
            writer.close()
        if self.server is not None:
            await self.server.wait_closed()


class OpsServer:
    """``/metrics``, the AdminServer and the health probes of one peer.

    ``async with OpsServer(settings, source, registry) as ops: ...``; the bound addresses
    are :attr:`admin_address` and :attr:`metrics_address` (port 0 picks a free one).  When
    both are asked on the same host and port, one listener serves everything.
    """

    def __init__(
        self,
        settings: OpsSettings,
        source: OpsSource,
        registry: MetricsRegistry,
        *,
        trace_mask: commands.TraceMask | None = None,
    ) -> None:
        self.settings = settings
        self.app = OpsApp(settings, source, registry, trace_mask=trace_mask)
        idle = settings.idle_timeout_ms / 1000.0 if settings.idle_timeout_ms > 0 else None
        self._listeners: list[_Listener] = []
        self._admin: _Listener | None = None
        self._metrics: _Listener | None = None
        admin_hp = HostPort(settings.admin_address, settings.admin_port)
        metrics_hp = HostPort(settings.metrics_host, settings.metrics_port)
        idle_s = idle if idle is not None else 1e9
        shared = (
            settings.admin_enabled
            and settings.metrics_enabled
            and admin_hp == metrics_hp
            and admin_hp.port != 0
        )
        if settings.admin_enabled:
            self._admin = _Listener(self.app, admin_hp, admin=True, metrics=shared, idle_s=idle_s)
            self._listeners.append(self._admin)
        if settings.metrics_enabled:
            if shared:
                self._metrics = self._admin
            else:
                self._metrics = _Listener(
                    self.app, metrics_hp, admin=False, metrics=True, idle_s=idle_s
                )
                self._listeners.append(self._metrics)
        self._closed = False

    @property
    def enabled(self) -> bool:
        return bool(self._listeners)

    async def start(self) -> None:
        try:
            for listener in self._listeners:
                await listener.start()
        except BaseException:
            await self.close()
            raise
        if self._admin is not None:
            log.info(
                "Started AdminServer on address %s, port %d and command URL %s",
                self.settings.admin_address,
                self.admin_address.port,
                self.settings.command_url,
            )
        if self._metrics is not None:
            log.info("Started /metrics HTTP endpoint at %s", self.metrics_address)

    @property
    def admin_address(self) -> HostPort:
        if self._admin is None or self._admin.bound is None:
            raise RuntimeError("the AdminServer is not running")
        return self._admin.bound

    @property
    def metrics_address(self) -> HostPort:
        if self._metrics is None or self._metrics.bound is None:
            raise RuntimeError("/metrics is not served")
        return self._metrics.bound

    @property
    def bad_requests(self) -> int:
        return sum(listener.bad_requests for listener in self._listeners)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for listener in self._listeners:
            await listener.close()

    async def __aenter__(self) -> OpsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def for_peer(
    peer: PeerRuntime, settings: OpsSettings, *, config_text: str | None = None
) -> OpsServer:
    """The ops endpoints of a running :class:`PeerRuntime` (the wiring ``zkquorum run``
    needs), over the peer's own registry and ops source (its four-letter words use them)."""
    ctx = peer.ops_context(config_text)
    return OpsServer(settings, ctx.source, ctx.registry, trace_mask=ctx.trace_mask)


def for_standalone(
    server: StandaloneServer, settings: OpsSettings, *, config_text: str | None = None
) -> OpsServer:
    """The ops endpoints of a :class:`StandaloneServer`, over its registry and source."""
    ctx = server.ops_context(config_text)
    return OpsServer(settings, ctx.source, ctx.registry, trace_mask=ctx.trace_mask)
