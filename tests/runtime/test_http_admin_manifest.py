"""``examples/kubernetes/statefulset.yaml``: it parses, its zoo.cfg is one zkquorum reads, and
its probes and ports name endpoints that zkquorum serves with that zoo.cfg."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from tests.runtime.helpers import run
from tests.runtime.test_http_admin import Source, exchange, get, view
from zkquorum.config.zoocfg import parse_zoo_cfg
from zkquorum.runtime.http_admin import OpsServer
from zkquorum.runtime.metrics import MetricsRegistry
from zkquorum.runtime.opssettings import OpsSettings
from zkquorum.runtime.opsview import OpsSnapshot, Seat, bind_gauges

MANIFEST = Path(__file__).resolve().parents[2] / "examples" / "kubernetes" / "statefulset.yaml"


def documents() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def test_manifest_parses_into_the_expected_objects() -> None:
    docs = documents()
    assert set(docs) == {
        "ConfigMap/zkquorum-config",
        "Service/zkquorum-hs",
        "Service/zkquorum-cs",
        "PodDisruptionBudget/zkquorum-pdb",
        "StatefulSet/zkquorum",
    }
    sts = docs["StatefulSet/zkquorum"]["spec"]
    assert sts["replicas"] == 3
    assert sts["serviceName"] == "zkquorum-hs"
    assert sts["podManagementPolicy"] == "Parallel"
    headless = docs["Service/zkquorum-hs"]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True


def _container() -> dict[str, Any]:
    sts = documents()["StatefulSet/zkquorum"]["spec"]
    (container,) = sts["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _zoo_cfg() -> str:
    text = documents()["ConfigMap/zkquorum-config"]["data"]["zoo.cfg"]
    assert isinstance(text, str)
    return text


def test_zoo_cfg_is_a_three_peer_ensemble_of_the_statefulset() -> None:
    text = _zoo_cfg()
    cfg = parse_zoo_cfg(text, path="zoo.cfg", myid_text="2")
    assert cfg.is_distributed and sorted(cfg.voting_members) == [1, 2, 3]
    docs = documents()
    sts = docs["StatefulSet/zkquorum"]
    for sid, member in cfg.voting_members.items():
        # server.N is pod N-1 behind the headless service (the init container's myid).
        host = member.quorum_addrs[0].host
        assert host.startswith(f"{sts['metadata']['name']}-{sid - 1}.zkquorum-hs."), host
    init = sts["spec"]["template"]["spec"]["initContainers"][0]
    assert "/data/myid" in init["command"][-1] and cfg.data_dir == "/data"
    assert _container()["command"] == ["zkquorum", "run", "/conf/zoo.cfg"]


def test_probes_and_ports_are_endpoints_zkquorum_serves() -> None:
    settings = OpsSettings.from_zoo_cfg(_zoo_cfg(), "zoo.cfg")
    assert settings.admin_enabled and settings.metrics_enabled
    container = _container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["admin"] == settings.admin_port
    assert ports["metrics"] == settings.metrics_port
    probes = {kind: container[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    for probe in probes.values():
        assert ports[probe["port"]] == settings.admin_port
    annotations = documents()["StatefulSet/zkquorum"]["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == settings.metrics_port

    # Serve exactly these routes (on loopback, free ports) and ask them.
    local = dataclasses.replace(
        settings, admin_address="127.0.0.1", admin_port=0, metrics_host="127.0.0.1", metrics_port=0
    )

    async def main() -> None:
        source = Source(OpsSnapshot(view(Seat.FOLLOWER)))
        registry = MetricsRegistry()
        bind_gauges(registry, source)
        async with OpsServer(local, source, registry) as ops:
            live, _, _ = await exchange(ops.admin_address, get(probes["livenessProbe"]["path"]))
            ready, _, _ = await exchange(ops.admin_address, get(probes["readinessProbe"]["path"]))
            assert (live, ready) == (200, 200)
            source.snap = OpsSnapshot(view(None))
            ready, _, _ = await exchange(ops.admin_address, get(probes["readinessProbe"]["path"]))
            assert ready == 503
            scraped, _, body = await exchange(
                ops.metrics_address, get(annotations["prometheus.io/path"])
            )
            assert scraped == 200 and re.search(rb"^election_time_count ", body, re.M)

    run(main)
