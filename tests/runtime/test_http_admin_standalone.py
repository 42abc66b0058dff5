"""The AdminServer and ``/metrics`` of a live standalone server (``zkquorum run`` with a
zoo.cfg that lists no servers): every command has 3.8.0's keys for a standalone seat
while a client holds a session with an ephemeral and watches, and the request metrics
move with the client's requests."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.interop.zkserver import free_ports
from tests.runtime.test_http_admin import assert_answers_match
from tests.runtime.test_http_admin_java import get_json
from zkquorum.config.zoocfg import parse_zoo_cfg
from zkquorum.runtime.http_admin import for_standalone
from zkquorum.runtime.opssettings import OpsSettings
from zkquorum.runtime.standalone import StandaloneServer

kazoo_client = pytest.importorskip("kazoo.client")


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.labels
    }


def test_standalone_admin_commands_and_metrics(tmp_path: Path) -> None:
    client_port, admin_port, metrics_port = free_ports(3)
    text = (
        f"tickTime=200\ndataDir={tmp_path}/data\nclientPort={client_port}\n"
        "clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n"
        f"admin.serverAddress=127.0.0.1\nadmin.serverPort={admin_port}\n"
        "metricsProvider.className="
        "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n"
        f"metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={metrics_port}\n"
    )
    cfg_path = tmp_path / "zoo.cfg"
    cfg_path.write_text(text)
    config = parse_zoo_cfg(text, path=str(cfg_path))
    settings = OpsSettings.from_zoo_cfg(text, str(cfg_path))

    def with_a_client() -> None:
        before = _metrics(metrics_port)
        zk = kazoo_client.KazooClient(hosts=f"127.0.0.1:{client_port}", timeout=4)
        zk.start(timeout=10)
        try:
            zk.create("/ops/eph0", b"", ephemeral=True, makepath=True)
            zk.get_children("/ops", watch=lambda _e: None)
            zk.exists("/ops/missing0", watch=lambda _e: None)
            for i in range(10):
                zk.set("/ops/eph0", str(i).encode())
                zk.get("/ops/eph0")

            def answer(name: str) -> dict[str, Any]:
                query = "?traceMask=306" if name == "set_trace_mask" else ""
                got = get_json("127.0.0.1", admin_port, f"/commands/{name}{query}")
                assert isinstance(got, dict)
                return got

            after = _metrics(metrics_port)
            assert after["updatelatency_count"] >= before.get("updatelatency_count", 0) + 12
            assert after["readlatency_count"] >= before.get("readlatency_count", 0) + 10
            cons = answer("connections")["connections"]
            assert len(cons) == 1 and cons[0]["session_id"] == zk.client_id[0], cons
            assert answer("dump")["expiry_time_to_session_ids"], "no session expiry buckets"
            assert answer("watches")["session_id_to_watched_paths"]
            stats = answer("server_stats")["server_stats"]
            assert stats["packets_received"] >= 24 and stats["server_state"] == "standalone"
            assert_answers_match("standalone", answer)
        finally:
            zk.stop()
            zk.close()

    async def scenario() -> None:
        async with StandaloneServer(config) as server:
            ops = for_standalone(server, settings, config_text=text)
            await ops.start()
            try:
                await asyncio.to_thread(with_a_client)
                mntr = json.loads(
                    await asyncio.to_thread(
                        lambda: urllib.request.urlopen(
                            f"http://127.0.0.1:{admin_port}/commands/mntr", timeout=5
                        ).read()
                    )
                )
                assert mntr["server_state"] == "standalone"
            finally:
                await ops.close()

    asyncio.run(scenario())
