"""``/metrics`` of a running zkquorum ensemble, before and after the leader is killed.

Each peer is a process running a :class:`PeerRuntime` with its ops endpoints
(:func:`zkquorum.runtime.http_admin.for_peer`): :data:`LAUNCHER` is that wiring, the few
lines ``zkquorum run`` needs.  Every process is stopped by pid whatever happens
(``tests/peer/cluster.py``).  The client-workload half waits for the client port.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.interop.zkserver import free_ports
from tests.peer.cluster import Ensemble, PyServer, ensemble, wait_for
from tests.runtime.grafana_dashboard import DASHBOARD_10465
from tests.runtime.test_http_admin import metric_names
from zkquorum.runtime.opssettings import PROMETHEUS_PROVIDER

LAUNCHER = """
import asyncio, logging, signal, sys
from pathlib import Path
from zkquorum.runtime.files import load_config
from zkquorum.runtime.http_admin import for_peer
from zkquorum.runtime.opssettings import OpsSettings
from zkquorum.runtime.peer import PeerRuntime

path = sys.argv[1]
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
config = load_config(path)
text = Path(path).read_text(encoding="iso-8859-1")
settings = OpsSettings.from_zoo_cfg(text, path)

async def main() -> None:
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    peer = PeerRuntime(config)
    ops = for_peer(peer, settings, config_text=text)
    try:
        await peer.start()
        await ops.start()
        await stop.wait()
    finally:
        await ops.close()
        await peer.close()

asyncio.run(main())
"""

JVM_HOTSPOT = frozenset(
    {
        "jvm_classes_loaded",
        "jvm_gc_collection_seconds_sum",
        "jvm_memory_pool_bytes_used",
        "jvm_threads_current",
        "jvm_threads_deadlocked",
        "jvm_threads_state",
    }
)
"""What the dashboard reads from the Prometheus Java client's hotspot exports: a JVM's."""

SETTINGS = {
    "tickTime": "100",
    "initLimit": "20",
    "syncLimit": "5",
    "4lw.commands.whitelist": "*",
    "metricsProvider.className": PROMETHEUS_PROVIDER,
    "metricsProvider.httpHost": "127.0.0.1",
    "admin.serverAddress": "127.0.0.1",
    # ``ack_latency`` is measured on every ackLoggingFrequency-th zxid (3.8: 1000); every
    # one here, so that a short workload shows it.
    "leader.ackLoggingFrequency": "1",
}


@dataclasses.dataclass
class OpsPeer(PyServer):
    """A zkquorum peer with ``/metrics`` and the AdminServer on ports of its own."""

    metrics_port: int = 0
    admin_port: int = 0

    def command(self) -> list[str]:
        return [sys.executable, "-c", LAUNCHER, str(self.cfg_path)]

    def get(self, port: int, path: str) -> tuple[int, bytes] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            exc.close()
            return exc.code, body
        except OSError:
            return None

    def scrape(self) -> dict[str, float] | None:
        """Every sample of ``/metrics`` by name (labels folded in), or None: no answer."""
        got = self.get(self.metrics_port, "/metrics")
        if got is None or got[0] != 200:
            return None
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(got[1].decode()):
            for s in family.samples:
                name = s.name
                if family.type == "counter" and name == f"{family.name}_total":
                    name = family.name  # the parser's OpenMetrics habit; the wire has no _total
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[f"{name}{{{labels}}}" if labels else name] = s.value
        return out

    def ready(self) -> bool:
        got = self.get(self.admin_port, "/health/ready")
        return got is not None and got[0] == 200


@contextlib.contextmanager
def ops_peers(base: Path, observers: tuple[int, ...] = ()) -> Iterator[Ensemble]:
    py_sids = (1, 2, 3, *observers)
    with ensemble(
        base, py_sids=py_sids, observers=observers, settings=SETTINGS, start=False
    ) as ens:
        ports = iter(free_ports(2 * len(ens.servers)))
        for sid, server in list(ens.servers.items()):
            fields = {f.name: getattr(server, f.name) for f in dataclasses.fields(PyServer)}
            peer = OpsPeer(**fields, metrics_port=next(ports), admin_port=next(ports))
            with peer.cfg_path.open("a") as cfg:
                cfg.write(f"metricsProvider.httpPort={peer.metrics_port}\n")
                cfg.write(f"admin.serverPort={peer.admin_port}\n")
            ens.servers[sid] = peer
        ens.start()
        yield ens


@pytest.fixture
def ops_ensemble(tmp_path: Path) -> Iterator[Ensemble]:
    with ops_peers(tmp_path / "ens") as ens:
        yield ens


def peer(ens: Ensemble, sid: int) -> OpsPeer:
    server = ens.servers[sid]
    assert isinstance(server, OpsPeer)
    return server


def scrape_all(ens: Ensemble, sids: list[int]) -> dict[int, dict[str, float]]:
    def all_answer() -> dict[int, dict[str, float]] | None:
        ens.check_alive()
        got = {sid: peer(ens, sid).scrape() for sid in sids}
        if any(v is None or "znode_count" not in v for v in got.values()):
            return None  # not up yet, or not serving yet (the server's gauges are absent)
        return {sid: v for sid, v in got.items() if v is not None}

    return wait_for(all_answer, timeout=30, what=f"/metrics of {sids} while serving")


@pytest.mark.slow
def test_metrics_move_across_a_leader_kill(ops_ensemble: Ensemble) -> None:
    ens = ops_ensemble
    leader = ens.wait_for_leader(timeout=30)
    wait_for(lambda: all(peer(ens, s).ready() for s in ens.servers), timeout=30, what="ready")
    sids = sorted(ens.servers)
    before = scrape_all(ens, sids)
    for sid, m in before.items():
        assert m["quorum_size"] == 3
        assert m["election_time_count"] >= 1 and m["looking_count"] >= 1
        assert m["zkquorum_serving"] == 1
        assert m["uptime"] > 0
        assert m["election_time{quantile=0.5}"] >= 0
        assert ("learners" in m) == (sid == leader)
    assert before[leader]["learners"] == 2
    assert before[leader]["synced_followers"] == 2

    survivors = [s for s in sids if s != leader]
    t0 = time.monotonic()
    ens.servers[leader].kill()
    new_leader = ens.wait_for_leader(survivors, timeout=30)
    wait_for(lambda: all(peer(ens, s).ready() for s in survivors), timeout=30, what="ready")
    after = scrape_all(ens, survivors)
    assert new_leader != leader
    for sid in survivors:
        b, a = before[sid], after[sid]
        assert a["election_time_count"] >= b["election_time_count"] + 1, sid
        assert a["election_time_sum"] >= b["election_time_sum"], sid  # may take 0 ms
        assert a["looking_count"] >= b["looking_count"] + 1, sid
        assert a["uptime"] >= b["uptime"] + (time.monotonic() - t0) * 1000 * 0.5, sid
        assert ("learners" in a) == (sid == new_leader), sid
    assert after[new_leader]["learners"] == 1
    assert after[new_leader]["synced_followers"] == 1
    assert after[new_leader]["leader_uptime"] >= 0
    # The AdminServer agrees with the gauges.
    got = peer(ens, new_leader).get(peer(ens, new_leader).admin_port, "/commands/leader")
    assert got is not None
    assert json.loads(got[1])["is_leader"] is True


@pytest.mark.slow
def test_request_metrics_move_with_a_client_workload(ops_ensemble: Ensemble) -> None:
    from kazoo.client import KazooClient

    ens = ops_ensemble
    leader = ens.wait_for_leader(timeout=30)
    sids = sorted(ens.servers)
    before = scrape_all(ens, sids)
    hosts = ",".join(f"127.0.0.1:{s.client_port}" for s in ens.servers.values())
    zk = KazooClient(hosts=hosts, timeout=2)
    try:
        zk.start(timeout=3)
        for i in range(20):
            zk.create(f"/load{i}", b"x")
            zk.get(f"/load{i}")
    finally:
        zk.stop()
        zk.close()
    after = scrape_all(ens, sids)

    def moved(name: str) -> float:
        # Latencies and packets count where the client is connected (any seat); the
        # leader counts every proposal and commit.
        return sum(after[s][name] - before[s][name] for s in sids)

    assert after[leader]["commit_count"] >= before[leader]["commit_count"] + 20
    assert after[leader]["proposal_count"] >= before[leader]["proposal_count"] + 20
    assert moved("updatelatency_count") >= 20 + 1  # the creates and the new session
    assert moved("readlatency_count") >= 20  # the gets
    assert moved("packets_received") >= 41  # connect, 20 creates, 20 gets (and pings)
    assert moved("packets_sent") >= 41
    assert after[leader]["znode_count"] >= before[leader]["znode_count"] + 20
    for sid in sids:
        assert after[sid]["updatelatency_sum"] >= before[sid]["updatelatency_sum"]
        # DataTree#updateWriteStat on every seat: path length + data bytes per write.
        assert after[sid]["write_per_namespace_sum{key=load7}"] == len("/load7") + 1
        assert after[sid]["write_per_namespace_count{key=load7}"] == 1
    # updateReadStat where the client read: path + data + 68 bytes of Stat.
    reads = [after[s].get("read_per_namespace_sum{key=load7}") for s in sids]
    assert [r for r in reads if r is not None] == [len("/load7") + 1 + 68]
    # The leader measured its proposals' acks, keyed by voter: the acks that came before
    # the commit (a later one is dropped first, as Leader#processAck does), so at least
    # the quorum's two per proposal; and the quorum's.
    acks = sum(after[leader].get(f"ack_latency_count{{key={s}}}", 0) for s in sids)
    assert acks >= 2 * 20
    for follower in (s for s in sids if s != leader):
        assert after[leader][f"learner_handler_qp_size_count{{key={follower}}}"] >= 40
    assert (
        after[leader]["quorum_ack_latency_count"] >= before[leader]["quorum_ack_latency_count"] + 20
    )

    # Every query of Grafana's ZooKeeper dashboard finds its metrics in the ensemble's
    # /metrics (a dashboard shows all instances), but the JVM's own.
    exposed = {re.sub(r"\{.*\}$", "", name) for m in after.values() for name in m}
    for query in DASHBOARD_10465:
        missing = metric_names(query) - exposed
        if missing <= JVM_HOTSPOT:
            continue
        assert not missing, (query, missing)


@pytest.mark.slow
def test_admin_commands_of_a_serving_ensemble_answer_3_8_keys(tmp_path: Path) -> None:
    """Every AdminServer command, asked of a live zkquorum leader, follower and observer
    (3 + 1, as the 3.8.0 reference was recorded) while a client on each holds a session
    with an ephemeral node and watches, has the keys Debian's 3.8.0 answers on that seat."""
    with ops_peers(tmp_path / "ens", observers=(4,)) as ens:
        _admin_commands_answer_3_8_keys(ens)


def _admin_commands_answer_3_8_keys(ens: Ensemble) -> None:
    from kazoo.client import KazooClient

    from tests.runtime.test_http_admin import assert_answers_match
    from tests.runtime.test_http_admin_java import get_json

    leader = ens.wait_for_leader([1, 2, 3], timeout=30)
    wait_for(lambda: all(peer(ens, s).ready() for s in ens.servers), timeout=30, what="ready")
    clients = []
    try:
        for sid, server in ens.servers.items():
            zk = KazooClient(hosts=f"127.0.0.1:{server.client_port}", timeout=4)
            clients.append(zk)
            zk.start(timeout=10)
            zk.ensure_path("/ops")
            zk.create(f"/ops/eph{sid}", b"", ephemeral=True)
            zk.get_children("/ops", watch=lambda _e: None)
            zk.exists(f"/ops/missing{sid}", watch=lambda _e: None)
        for sid in ens.servers:
            seat = "leader" if sid == leader else "observer" if sid == 4 else "follower"
            port = peer(ens, sid).admin_port

            def answer(name: str, port: int = port) -> dict[str, object]:
                query = "?traceMask=306" if name == "set_trace_mask" else ""
                got = get_json("127.0.0.1", port, f"/commands/{name}{query}")
                assert isinstance(got, dict)
                return got

            # The lists the shapes cannot see into hold this server's client (before the
            # resets among the commands clear the counts).
            cons = answer("connections")["connections"]
            assert isinstance(cons, list) and len(cons) >= 1, cons
            assert any(c.get("session_id") for c in cons), cons
            assert answer("watches")["session_id_to_watched_paths"], seat
            dump = answer("dump")
            eph = dump["session_id_to_ephemeral_paths"]
            assert isinstance(eph, dict) and len(eph) == len(ens.servers), eph
            expiry = dump["expiry_time_to_session_ids"]
            assert isinstance(expiry, dict) and bool(expiry) == (sid == leader), expiry
            stats = answer("server_stats")["server_stats"]
            assert isinstance(stats, dict) and stats["packets_received"] >= 5, stats
            mntr = answer("monitor")
            # (a later client's create fired the child watch of the clients before it)
            assert mntr["num_alive_connections"] >= 1 and mntr["watch_count"] >= 1, mntr
            assert mntr["ephemerals_count"] == len(ens.servers), mntr
            assert_answers_match(seat, answer)
    finally:
        for zk in clients:
            zk.stop()
            zk.close()
