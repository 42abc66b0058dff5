"""The AdminServer's JSON against 3.8.0's (recorded per seat), the HTTP side (errors, methods,
bad input), the health probes, the settings, and the dashboards' metric names."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.runtime.helpers import run
from tests.runtime.test_http_admin_java import (
    COMMAND_NAMES,
    SEATS,
    is_set_member,
    load_reference,
    same_keys,
    shape,
)
from zkquorum.config.errors import ConfigError
from zkquorum.config.model import HostPort
from zkquorum.config.zoocfg import parse_zoo_cfg
from zkquorum.runtime import commands
from zkquorum.runtime.http_admin import OpsServer
from zkquorum.runtime.metrics import MetricsRegistry
from zkquorum.runtime.opssettings import PROMETHEUS_PROVIDER, OpsSettings
from zkquorum.runtime.opsview import (
    ClientStats,
    ConnectionInfo,
    LearnerInfo,
    OpsSnapshot,
    Seat,
    ServerView,
    bind_gauges,
)

ZOO_CFG = (
    "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=/nonexistent/zk3\nclientPort=2183\n"
    "clientPortAddress=127.0.0.1\n"
    "server.1=127.0.0.1:2001:3001\nserver.2=127.0.0.1:2002:3002\n"
    "server.3=127.0.0.1:2003:3003\nserver.4=127.0.0.1:2004:3004:observer\n"
)
CFG = parse_zoo_cfg(ZOO_CFG, path="zoo.cfg", myid_text="3")
REFERENCE_SESSION = 0x30000B10AED0000
CLIENTS = ClientStats(
    connections=(ConnectionInfo("127.0.0.1:50000", session_id=REFERENCE_SESSION),),
    session_expiry={11748400: (REFERENCE_SESSION,)},
    session_timeouts={REFERENCE_SESSION: 4000},
    ephemerals={REFERENCE_SESSION: ("/ops/eph3",)},
    watches={REFERENCE_SESSION: ("/ops", "/ops/missing3")},
)
SEAT_OF = {
    "standalone": Seat.STANDALONE,
    "leader": Seat.LEADER,
    "follower": Seat.FOLLOWER,
    "observer": Seat.OBSERVER,
    "looking": None,
}


class Source:
    """A fixed snapshot, and counts of the resets asked."""

    def __init__(self, snap: OpsSnapshot) -> None:
        self.snap = snap
        self.server_resets = 0
        self.connection_resets = 0

    def snapshot(self) -> OpsSnapshot:
        return self.snap

    def reset_server_stats(self) -> None:
        self.server_resets += 1

    def reset_connection_stats(self) -> None:
        self.connection_resets += 1


def view(seat: Seat | None, **kw: Any) -> ServerView:
    base: dict[str, Any] = dict(
        my_id=3,
        serving=seat is not None,
        seat=seat,
        reason="" if seat is not None else "looking for a leader (election round 2)",
        peer_state="leading - broadcast" if seat is Seat.LEADER else "looking - election",
        leader_id=3,
        leader_host="127.0.0.1",
        last_zxid=0x100000009,
        node_count=10,
        config=CFG,
        config_text=ZOO_CFG,
        learners=(LearnerInfo(1, "127.0.0.1:1", False, True), LearnerInfo(4, "", True, True)),
    )
    base.update(kw)
    return ServerView(**base)


def context(seat: Seat | None, clients: ClientStats = CLIENTS) -> commands.CommandContext:
    source = Source(OpsSnapshot(view(seat), clients))
    registry = MetricsRegistry()
    bind_gauges(registry, source)
    return commands.CommandContext(source, registry, commands.TraceMask())


# -- JSON keys against 3.8.0 -----------------------------------------------------------


def assert_answers_match(seat: str, answer: Callable[[str], dict[str, Any]]) -> None:
    """Every command's answer (``answer(name)``) has 3.8.0's keys on this kind of seat."""
    ref = load_reference(seat)
    for name in COMMAND_NAMES:
        got = answer(name)
        want = ref["commands"][name]
        if "http_status" not in want:
            assert list(got)[-2:] == ref["keys"][name][-2:] or "error" in list(got)[:1], name
        if name == "system_properties":
            # A JVM's properties have no Python counterpart (see runtime/commands.py).
            assert {"command", "error"} <= set(got), name
            continue
        if name == "monitor":
            if seat == "looking":
                # 3.8.0 fails with HTTP 500 here; zkquorum answers the not-serving error.
                assert want == {"http_status": "int"}
                assert got == {"command": "monitor", "error": commands.NOT_SERVING}
                continue
            ref_keys = {k for k in want if not is_set_member(k)}
            ours = {k for k in got if k.startswith("zkquorum_") or is_set_member(k)}
            assert set(got) - ours == ref_keys, name
            continue
        assert same_keys(shape(got), want), (name, shape(got), want)
        assert got["error"] == ref["errors"][name], name


@pytest.mark.parametrize("seat", SEATS)
def test_every_command_answers_3_8_keys(seat: str) -> None:
    ctx = context(SEAT_OF[seat])
    table = commands.CommandTable()
    assert sorted(load_reference(seat)["commands"]) == list(table.primary_names)

    def answer(name: str) -> dict[str, Any]:
        kwargs = {"traceMask": "306"} if name == "set_trace_mask" else {}
        return dict(commands.run(table, name, ctx, kwargs))

    assert_answers_match(seat, answer)


@pytest.mark.parametrize("seat", ["leader", "follower", "observer", "standalone"])
def test_leaf_types_match_where_3_8_has_a_value(seat: str) -> None:
    ref = load_reference(seat)
    ctx = context(SEAT_OF[seat])
    table = commands.CommandTable()

    def leaves(s: Any, prefix: str = "") -> dict[str, str]:
        out: dict[str, str] = {}
        if isinstance(s, dict):
            for k, v in s.items():
                out |= leaves(v, f"{prefix}.{k}")
        elif isinstance(s, str):
            out[prefix] = s
        return out

    for name in ("server_stats", "stats", "zabstate", "leader", "configuration", "dirs"):
        got = leaves(shape(commands.run(table, name, ctx)))
        for path, kind in leaves(ref["commands"][name]).items():
            if kind != "null":
                assert got[path] == kind, (name, path)


def test_aliases_answer_with_the_primary_name() -> None:
    ctx = context(Seat.FOLLOWER)
    table = commands.CommandTable()
    for primary, aliases in COMMAND_NAMES.items():
        for alias in aliases:
            got = commands.run(table, alias, ctx, {"traceMask": "1"})
            assert got["command"] == primary


def test_unknown_and_not_serving_echo_the_name_asked() -> None:
    table = commands.CommandTable()
    assert commands.run(table, "nope", context(Seat.LEADER)) == {
        "command": "nope",
        "error": "Unknown command: nope",
    }
    assert commands.run(table, "lead", context(None)) == {
        "command": "lead",
        "error": commands.NOT_SERVING,
    }
    # zabstate needs no serving server (3.8: voting false, empty state).
    assert commands.run(table, "zabstate", context(None)) == {
        "voting": False,
        "zabstate": "",
        "command": "zabstate",
        "error": None,
    }


def test_leader_on_a_standalone_server_puts_its_error_first() -> None:
    got = commands.run(commands.CommandTable(), "leader", context(Seat.STANDALONE))
    assert list(got.items()) == [("error", "server is not initialized"), ("command", "leader")]


def test_trace_mask_set_and_get() -> None:
    table = commands.CommandTable()
    ctx = context(Seat.LEADER)
    assert commands.run(table, "stmk", ctx, {"traceMask": "-12"})["tracemask"] == -12
    assert commands.run(table, "gtmk", ctx)["tracemask"] == -12
    assert commands.run(table, "stmk", ctx)["error"] == (
        "setTraceMask requires long traceMask argument"
    )
    for bad in ("x", "1.5", "99999999999999999999", " 1"):
        got = commands.run(table, "stmk", ctx, {"traceMask": bad})
        assert got["error"] == f"setTraceMask requires long traceMask argument, got {bad}"
    assert commands.run(table, "gtmk", ctx)["tracemask"] == -12


def test_resets_reach_the_source() -> None:
    table = commands.CommandTable()
    ctx = context(Seat.LEADER)
    commands.run(table, "srst", ctx)
    commands.run(table, "crst", ctx)
    source = ctx.source
    assert isinstance(source, Source)
    assert (source.server_resets, source.connection_resets) == (1, 1)


def test_zabstate_and_voting_view_values() -> None:
    table = commands.CommandTable()
    zab = commands.run(table, "zabstate", context(Seat.LEADER))
    assert zab["last_zxid"] == "0x100000009"
    assert (zab["zab_epoch"], zab["zab_counter"], zab["zabstate"]) == (1, 9, "broadcast")
    assert zab["quorum_address"]["all_addresses"] == ["127.0.0.1:2003"]
    assert zab["client_address"] == "127.0.0.1:2183"
    assert zab["voting"] is True
    view_ = commands.run(table, "voting_view", context(Seat.FOLLOWER))["current_config"]
    assert sorted(view_) == ["1", "2", "3"]  # voters only
    assert view_["3"]["client_address"] == "127.0.0.1:2183"
    assert view_["1"] == {
        "server_addresses": ["127.0.0.1:2001"],
        "election_addresses": ["127.0.0.1:3001"],
        "client_address": "",
        "learner_type": "participant",
    }


def test_last_snapshot_without_a_snapshot() -> None:
    got = commands.run(commands.CommandTable(), "lsnp", context(Seat.LEADER))
    assert (got["zxid"], got["timestamp"]) == ("ffffffffffffffff", -1)


# -- HTTP ----------------------------------------------------------------------------


async def exchange(addr: HostPort, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one response (to the end of its body)."""
    reader, writer = await asyncio.open_connection(addr.host, addr.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await read_response(reader)
    finally:
        writer.close()
        await writer.wait_closed()


async def read_response(
    reader: asyncio.StreamReader, *, head: bool = False
) -> tuple[int, dict[str, str], bytes]:
    async with asyncio.timeout(5):
        status_line = (await reader.readuntil(b"\r\n")).decode()
        headers: dict[str, str] = {}
        while True:
            line = (await reader.readuntil(b"\r\n")).decode().strip()
            if not line:
                break
            k, _, v = line.partition(":")
            headers[k.lower()] = v.strip()
        length = int(headers.get("content-length", "0"))
        body = b"" if head else await reader.readexactly(length)
    return int(status_line.split()[1]), headers, body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


SETTINGS = OpsSettings(
    admin_enabled=True,
    admin_address="127.0.0.1",
    admin_port=0,
    metrics_enabled=True,
    metrics_host="127.0.0.1",
    metrics_port=0,
)


def serve(seat: Seat | None, body: Callable[[OpsServer, Source], Awaitable[None]]) -> None:
    async def main() -> None:
        source = Source(OpsSnapshot(view(seat), ClientStats()))
        registry = MetricsRegistry()
        bind_gauges(registry, source)
        async with OpsServer(SETTINGS, source, registry) as ops:
            await body(ops, source)

    run(main)


def test_commands_over_http_and_the_command_list() -> None:
    async def body(ops: OpsServer, _s: Source) -> None:
        status, headers, data = await exchange(ops.admin_address, get("/commands/lead"))
        assert status == 200 and headers["content-type"] == "application/json"
        assert json.loads(data) == {
            "is_leader": True,
            "leader_id": 3,
            "leader_ip": "127.0.0.1",
            "command": "leader",
            "error": None,
        }
        status, _, data = await exchange(ops.admin_address, get("/commands/nope"))
        assert status == 200  # 3.8 answers an unknown command with 200 and an error
        assert json.loads(data) == {"command": "nope", "error": "Unknown command: nope"}
        status, _, data = await exchange(ops.admin_address, get("/commands/stmk?traceMask=5"))
        assert json.loads(data)["tracemask"] == 5
        for path in ("/commands", "/commands/"):
            status, headers, data = await exchange(ops.admin_address, get(path))
            assert status == 200 and "content-type" not in headers  # as 3.8's servlet
            names = re.findall(r'<a href="/commands/(\w+)">\1</a>', data.decode())
            assert names == sorted(COMMAND_NAMES)
        status, _, _ = await exchange(ops.admin_address, get("/nothing"))
        assert status == 404
        # /metrics lives on its own port unless both are the same.
        status, _, _ = await exchange(ops.admin_address, get("/metrics"))
        assert status == 404

    serve(Seat.LEADER, body)


def test_methods_other_than_get_and_head_are_refused() -> None:
    async def body(ops: OpsServer, _s: Source) -> None:
        for method in ("POST", "PUT", "DELETE", "TRACE", "OPTIONS"):
            raw = f"{method} /commands/ruok HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            status, headers, _ = await exchange(ops.admin_address, raw)
            assert status == 405, method
            assert headers["allow"] == "GET, HEAD"
        raw = b"HEAD /commands/ruok HTTP/1.1\r\nHost: x\r\n\r\n"
        reader, writer = await asyncio.open_connection(
            ops.admin_address.host, ops.admin_address.port
        )
        writer.write(raw)
        status, headers, _ = await read_response(reader, head=True)
        assert status == 200 and int(headers["content-length"]) > 0
        writer.close()
        await writer.wait_closed()

    serve(Seat.LEADER, body)


def test_bad_requests_close_that_connection_only() -> None:
    async def body(ops: OpsServer, _s: Source) -> None:
        bad = [
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello
            b"GET\r\n\r\n",
            b"GET commands HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
            b"POST /commands/ruok HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n",
        ]
        for raw in bad:
            status, headers, _ = await exchange(ops.admin_address, raw)
            assert status == 400, raw[:40]
            assert headers.get("connection") == "close"
        assert ops.bad_requests == len(bad)
        # A request cut short, then EOF: a 400, the connection ends, nothing else happens.
        reader, writer = await asyncio.open_connection(
            ops.admin_address.host, ops.admin_address.port
        )
        writer.write(b"GET /commands/ruok HT")
        writer.write_eof()
        assert (await reader.read()).startswith(b"HTTP/1.1 400 Bad Request\r\n")
        writer.close()
        await writer.wait_closed()
        status, _, _ = await exchange(ops.admin_address, get("/commands/ruok"))
        assert status == 200

    serve(Seat.LEADER, body)


def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async def body(ops: OpsServer, _s: Source) -> None:
        reader, writer = await asyncio.open_connection(
            ops.admin_address.host, ops.admin_address.port
        )
        writer.write(get("/commands/ruok") + get("/health/live") + get("/commands/isro"))
        await writer.drain()
        answers = [await read_response(reader) for _ in range(3)]
        assert [a[0] for a in answers] == [200, 200, 200]
        assert json.loads(answers[2][2])["read_only"] is False
        writer.write(b"GET /commands/ruok HTTP/1.1\r\nConnection: close\r\n\r\n")
        status, headers, _ = await read_response(reader)
        assert status == 200 and headers["connection"] == "close"
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()

    serve(Seat.LEADER, body)


def test_health_probes() -> None:
    async def serving(ops: OpsServer, source: Source) -> None:
        status, _, data = await exchange(ops.admin_address, get("/health/ready"))
        assert status == 200
        assert json.loads(data) == {
            "ready": True,
            "state": "follower",
            "peer_state": "looking - election",
            "reason": "",
        }
        source.snap = OpsSnapshot(view(None))
        status, _, data = await exchange(ops.admin_address, get("/health/ready"))
        assert status == 503
        answer = json.loads(data)
        assert answer["ready"] is False
        assert answer["reason"] == "looking for a leader (election round 2)"
        # Read-only service (readonlymode.enabled) is not ready for every client.
        source.snap = OpsSnapshot(view(Seat.READ_ONLY))
        status, _, data = await exchange(ops.admin_address, get("/health/ready"))
        answer = json.loads(data)
        assert status == 503 and answer["ready"] is False and answer["state"] == "read-only"
        assert answer["reason"] == "read-only: looking for a quorum"
        status, _, data = await exchange(ops.admin_address, get("/health/live"))
        assert status == 200 and json.loads(data)["live"] is True
        # The metrics port answers the probes too.
        status, _, _ = await exchange(ops.metrics_address, get("/health/live"))
        assert status == 200

    serve(Seat.FOLLOWER, serving)


def test_metrics_endpoint_parses_and_follows_the_role() -> None:
    async def body(ops: OpsServer, source: Source) -> None:
        status, headers, data = await exchange(ops.metrics_address, get("/metrics"))
        assert status == 200
        assert headers["content-type"].startswith("text/plain; version=0.0.4")
        fams = {f.name: f for f in text_string_to_metric_families(data.decode())}
        assert fams["learners"].samples[0].value == 2
        assert fams["quorum_size"].samples[0].value == 3
        assert fams["synced_observers"].samples[0].value == 1
        # A follower has no leader gauges (3.8 unregisters them with the role).
        source.snap = OpsSnapshot(view(Seat.FOLLOWER))
        _, _, data = await exchange(ops.metrics_address, get("/metrics"))
        fams = {f.name: f for f in text_string_to_metric_families(data.decode())}
        assert "learners" not in fams and "quorum_size" in fams
        # Not serving: the server's gauges are gone, ServerMetrics stay.
        source.snap = OpsSnapshot(view(None))
        _, _, data = await exchange(ops.metrics_address, get("/metrics"))
        fams = {f.name: f for f in text_string_to_metric_families(data.decode())}
        assert "znode_count" not in fams and "election_time" in fams
        status, _, _ = await exchange(ops.metrics_address, get("/commands/ruok"))
        assert status == 404

    serve(Seat.LEADER, body)


def test_one_listener_when_both_share_a_port() -> None:
    async def main() -> None:
        source = Source(OpsSnapshot(view(Seat.LEADER)))
        registry = MetricsRegistry()
        bind_gauges(registry, source)
        first = OpsServer(
            OpsSettings(admin_enabled=True, admin_address="127.0.0.1", admin_port=0),
            source,
            registry,
        )
        async with first:
            port = first.admin_address.port
        shared = OpsSettings(
            admin_enabled=True,
            admin_address="127.0.0.1",
            admin_port=port,
            metrics_enabled=True,
            metrics_host="127.0.0.1",
            metrics_port=port,
        )
        async with OpsServer(shared, source, registry) as ops:
            assert ops.admin_address == ops.metrics_address
            assert (await exchange(ops.admin_address, get("/metrics")))[0] == 200
            assert (await exchange(ops.admin_address, get("/commands/ruok")))[0] == 200

    run(main)


def test_nothing_is_served_unless_asked() -> None:
    ops = OpsServer(OpsSettings(), Source(OpsSnapshot(view(None))), MetricsRegistry())
    assert not ops.enabled
    run(ops.start)
    run(ops.close)


# -- settings ------------------------------------------------------------------------


def test_settings_from_zoo_cfg() -> None:
    assert OpsSettings.from_zoo_cfg(ZOO_CFG) == OpsSettings()
    assert not OpsSettings().enabled
    s = OpsSettings.from_zoo_cfg(
        f"metricsProvider.className={PROMETHEUS_PROVIDER}\nmetricsProvider.httpPort=7001\n"
        "metricsProvider.httpHost=127.0.0.1\nmetricsProvider.exportJvmInfo=false\n"
        "admin.serverPort=9090\nadmin.serverAddress=127.0.0.1\nadmin.commandURL=/cmds/\n"
    )
    assert (s.metrics_enabled, s.metrics_host, s.metrics_port) == (True, "127.0.0.1", 7001)
    assert (s.admin_enabled, s.admin_address, s.admin_port) == (True, "127.0.0.1", 9090)
    assert s.command_url == "/cmds"
    # 3.8's default is on at 8080; zkquorum asks for it explicitly (see http_admin.py).
    on = OpsSettings.from_zoo_cfg("admin.enableServer=true\n")
    assert (on.admin_enabled, on.admin_port) == (True, 8080)
    off = OpsSettings.from_zoo_cfg("admin.enableServer=false\nadmin.serverPort=9090\n")
    assert not off.admin_enabled
    default = OpsSettings.from_zoo_cfg(
        "metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider\n"
    )
    assert not default.metrics_enabled


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("admin.serverPort=http\n", "admin.serverPort=http: not a port number"),
        ("admin.serverPort=70000\n", "not a port number"),
        ("metricsProvider.httpPort=-1\n", "metricsProvider.httpPort=-1: not a port number"),
        ("metricsProvider.className=com.example.Mine\n", "zkquorum serves the Prometheus"),
        ("admin.forceHttps=true\n", "plain HTTP only"),
        ("admin.commandURL=commands\n", "must start with '/'"),
        ("admin.idleTimeout=soon\n", "not a whole number"),
    ],
)
def test_bad_settings_are_refused_with_their_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        OpsSettings.from_zoo_cfg("tickTime=200\n" + text, "zoo.cfg")
    assert err.value.line == 2


# -- dashboards ------------------------------------------------------------------------

# The alert examples of 3.8's zookeeperMonitor.md, plus the panels most ZooKeeper
# dashboards draw, against the gauges alone.  Grafana dashboard 10465's own 138 queries
# are checked against a live ensemble's /metrics (tests/runtime/test_metrics_ensemble.py).
DASHBOARD_QUERIES = (
    "znode_count > 1000000",
    "num_alive_connections > 50",
    "approximate_data_size /1024 /1024 > 1 * 1024",
    "watch_count > 10000",
    "increase(election_time_count[5m]) > 0",
    "open_file_descriptor_count > 300",
    "rate(fsynctime_sum[1m]) > 100",
    "rate(snapshottime_sum[5m]) > 100",
    "avg_latency > 100",
    "max(quorum_size)",
    "leader_uptime",
    "outstanding_requests",
    "max_latency",
    "min_latency",
    "global_sessions",
    "local_sessions",
    "ephemerals_count",
    "packets_received",
    "packets_sent",
    "connection_rejected",
    "connection_drop_count",
    "unrecoverable_error_count",
    "digest_mismatches_count",
    "irate(election_time_sum[1m])",
    "max(learners)",
    "max(synced_observers)",
    "commit_count",
    "snap_count",
    "proposal_count",
    "looking_count",
    'readlatency{quantile="0.99"}',
    'updatelatency{quantile="0.99"}',
)
# Only a JVM has these (``exportJvmInfo``): no Python counterpart is pretended.
JVM_ONLY = ('jvm_memory_bytes_used / jvm_memory_bytes_max{area="heap"} > 0.8',)
_FUNCTIONS = {"rate", "irate", "increase", "max", "min", "sum", "avg", "by", "area", "quantile"}


def metric_names(query: str) -> set[str]:
    """Identifiers of a PromQL expression that name metrics (not functions, labels,
    numbers or durations)."""
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", query)
    return {w for w in re.findall(r"[a-zA-Z_][a-zA-Z0-9_]*", stripped) if w not in _FUNCTIONS}


def test_dashboard_queries_find_their_metrics_on_a_leader() -> None:
    source = Source(OpsSnapshot(view(Seat.LEADER)))
    registry = MetricsRegistry()
    bind_gauges(registry, source)
    exposed: set[str] = set()
    for family in text_string_to_metric_families(registry.exposition()):
        exposed |= {s.name for s in family.samples} | {family.name}
    for query in DASHBOARD_QUERIES:
        missing = metric_names(query) - exposed
        assert not missing, (query, missing)
    for query in JVM_ONLY:
        assert metric_names(query) - exposed == {"jvm_memory_bytes_used", "jvm_memory_bytes_max"}
