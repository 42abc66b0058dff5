"""``mntr`` (and ``/metrics``) show the quorum TLS counters when sslQuorum is on, and
nothing of them when off."""

from __future__ import annotations

from dataclasses import dataclass

from zkquorum.config import parse_zoo_cfg
from zkquorum.runtime import fourletter
from zkquorum.runtime.admin import PeerStatus
from zkquorum.runtime.commands import CommandContext, TraceMask
from zkquorum.runtime.metrics import MetricsRegistry
from zkquorum.runtime.opsview import PeerOpsSource, bind_gauges
from zkquorum.runtime.tls import TlsCounters
from zkquorum.wire.election import ServerState

BASE = (
    "tickTime=200\ninitLimit=5\nsyncLimit=2\ndataDir=/nonexistent\nclientPort=2181\n"
    "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\nserver.3=127.0.0.3:2888:3888\n"
)


@dataclass
class _Peer:
    """What the ops source reads of a :class:`PeerRuntime` that serves no client yet."""

    status_now: PeerStatus
    core: None = None
    server: None = None
    leader: None = None
    client_port: None = None
    read_only_serving: bool = False

    def status(self) -> PeerStatus:
        return self.status_now


def mntr(extra: str) -> dict[str, str]:
    cfg = parse_zoo_cfg(BASE + extra, myid_text="1")
    # The peer reports its QuorumTls's counters when it has one (sslQuorum on).
    tls = TlsCounters(handshakes=3) if cfg.ssl_quorum else None
    status = PeerStatus(state=ServerState.FOLLOWING, my_id=1, leader=3, config=cfg, tls=tls)
    registry = MetricsRegistry()
    source = PeerOpsSource(_Peer(status), registry)  # type: ignore[arg-type]
    bind_gauges(registry, source)
    text = fourletter.render("mntr", CommandContext(source, registry, TraceMask()), frozenset("*"))
    assert text is not None
    return dict(line.split("\t", 1) for line in text.splitlines())


def test_tls_counters_in_mntr_only_with_ssl_quorum() -> None:
    on = mntr("sslQuorum=true\n")
    assert on["zk_zkquorum_quorum_tls_handshakes"] == "3"
    for key in (
        "zk_zkquorum_quorum_tls_handshake_failures",
        "zk_zkquorum_quorum_tls_identity_refused",
        "zk_zkquorum_quorum_tls_plain_accepted",
        "zk_zkquorum_quorum_tls_context_reloads",
    ):
        assert on[key] == "0"
    off = mntr("")
    assert not any(k.startswith("zk_zkquorum_quorum_tls_") for k in off)
    assert off["zk_server_state"] == "follower"
