"""The real-ZooKeeper harness itself: the config probe, QuorumPeerMain runs, an ensemble."""

from __future__ import annotations

import collections
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.interop.zk import (
    ProbeRequest,
    ZooKeeperInstall,
    probe_configs,
    run_quorum_peer_main,
)
from tests.interop.zkserver import JavaEnsemble, free_ports

pytestmark = pytest.mark.interop

BASE = "tickTime=200\ninitLimit=10\nsyncLimit=5\n"


def _cfg(root: Path, name: str, body: str, myid: str | None = None) -> Path:
    d = root / name
    (d / "data").mkdir(parents=True)
    if myid is not None:
        (d / "data" / "myid").write_text(myid)
    path = d / "zoo.cfg"
    path.write_text(BASE + f"dataDir={d / 'data'}\n" + body)
    return path


def test_probe_reports_members_and_errors(
    zookeeper_javac: ZooKeeperInstall, tmp_path: Path
) -> None:
    good = _cfg(
        tmp_path,
        "good",
        "clientPort=2181\n"
        "server.1=127.0.0.1:2888:3888\nserver.2=[::1]:2889:3889;127.0.0.1:2182\n"
        "server.3=localhost:2890:3890:observer\n",
        myid="1\n",
    )
    bad = _cfg(tmp_path, "bad", "server.1=zoo1-net1:2888:3888,zoo1-net2:2888:3888\n")
    ok, err = probe_configs(zookeeper_javac, [ProbeRequest(good), ProbeRequest(bad)])

    assert ok["ok"] is True and ok["myid"] == 1 and ok["distributed"] is True
    servers = ok["verifier"]["servers"]
    assert servers["1"]["addresses"] == [["127.0.0.1", 2888, 3888]]
    assert servers["1"]["client"] == ["0.0.0.0", 2181]  # from clientPort, for myid only
    assert servers["1"]["client_from_static"] is True
    assert servers["2"]["addresses"] == [["0:0:0:0:0:0:0:1", 2889, 3889]]
    assert servers["2"]["client"] == ["127.0.0.1", 2182]
    assert servers["3"]["type"] == "OBSERVER" and servers["3"]["client"] is None
    assert ok["verifier"]["voting"] == [1, 2]

    assert err["ok"] is False and err["exit_status"] == 2
    assert err["exception"].endswith("QuorumPeerConfig$ConfigException")
    assert "does not have the form server_config" in err["message"]


def test_probe_isolates_one_config_from_the_next(
    zookeeper_javac: ZooKeeperInstall, tmp_path: Path
) -> None:
    lines = "server.1=127.0.0.1:2888:3888\n"
    first = _cfg(tmp_path, "first", "standaloneEnabled=false\nsomeUnknownKey=7\n" + lines, myid="1")
    second = _cfg(tmp_path, "second", lines, myid="1")
    multi = _cfg(
        tmp_path,
        "multi",
        "server.1=127.0.0.1:2888:3888|127.0.0.2:2888:3888\nserver.2=127.0.0.1:2889:3889\n",
        myid="1",
    )
    a, b, m_on, m_off = probe_configs(
        zookeeper_javac,
        [
            ProbeRequest(first),
            ProbeRequest(second),
            ProbeRequest(multi, {"zookeeper.multiAddress.enabled": "true"}),
            ProbeRequest(multi),
        ],
    )
    assert a["distributed"] is True  # one voter, standaloneEnabled=false
    assert a["unknown_keys_as_properties"]["zookeeper.someUnknownKey"] == "7"
    assert b["distributed"] is False  # the static flag was reset between configs
    assert "zookeeper.someUnknownKey" not in b["unknown_keys_as_properties"]
    assert m_on["ok"] is True
    assert m_on["verifier"]["servers"]["1"]["addresses"] == [
        ["127.0.0.1", 2888, 3888],
        ["127.0.0.2", 2888, 3888],
    ]
    assert m_off["ok"] is False
    assert "Multiple address feature is disabled" in m_off["message"]


def test_quorum_peer_main_exit_status(zookeeper: ZooKeeperInstall, tmp_path: Path) -> None:
    """A config error exits 2 within seconds; myid not in the list exits 1; a good one runs."""
    p = free_ports(6)
    servers = f"server.1=127.0.0.1:{p[0]}:{p[1]}\nserver.2=127.0.0.1:{p[2]}:{p[3]}\n"
    comma = _cfg(
        tmp_path,
        "comma",
        "server.1=zoo1-net1:2888:3888,zoo1-net2:2888:3888\nserver.2=127.0.0.1:2889:3889\n",
        myid="1",
    )
    not_listed = _cfg(tmp_path, "nine", servers, myid="9")
    good = _cfg(
        tmp_path, "good", f"clientPort={p[4]}\nclientPortAddress=127.0.0.1\n" + servers, myid="1"
    )

    run = run_quorum_peer_main(zookeeper, comma, tmp_path / "run-comma")
    assert run.exit_status == 2, run.log
    assert "Invalid config, exiting abnormally" in run.log
    assert run.seconds < 10

    run = run_quorum_peer_main(zookeeper, not_listed, tmp_path / "run-nine")
    assert run.exit_status == 1, run.log
    assert "My id 9 not in the peer list" in run.log

    run = run_quorum_peer_main(zookeeper, good, tmp_path / "run-good")
    assert run.exit_status is None and run.started, run.log


def test_three_java_servers_elect_exactly_one_leader(
    java_ensembles: Callable[..., JavaEnsemble],
) -> None:
    ens = java_ensembles((1, 2, 3))
    leader = ens.wait_for_leader(timeout=30)
    modes = ens.modes()
    assert collections.Counter(modes.values()) == {"leader": 1, "follower": 2}, modes
    assert modes[leader] == "leader"
    # With equal (empty) histories FLE picks the highest sid among the servers up when the
    # round ends; a JVM that starts late under load may miss it and follow instead.
    assert leader in (2, 3)
    for sid, server in ens.servers.items():
        info = server.srvr()
        assert info is not None and info["Zookeeper version"].startswith("3.8."), (sid, info)
    # The new leader stamps epoch 1 (followers keep 0x0 until the first transaction).
    leader_info = ens.servers[leader].srvr()
    assert leader_info is not None and leader_info["Zxid"] == "0x100000000", leader_info


def test_multi_address_java_ensemble_elects_a_leader(
    java_ensembles: Callable[..., JavaEnsemble],
) -> None:
    """Two loopback addresses per server, '|' lists, the JVM flag on every server."""
    flag = ["-Dzookeeper.multiAddress.enabled=true"]
    ens = java_ensembles(
        (1, 2, 3),
        settings={"multiAddress.enabled": "true"},
        jvm_flags={sid: flag for sid in (1, 2, 3)},
        extra_hosts={sid: [f"127.0.{sid}.2"] for sid in (1, 2, 3)},
    )
    assert "|127.0.1.2:" in ens.servers[1].server_line()
    leader = ens.wait_for_leader(timeout=30)
    modes = ens.modes()
    assert collections.Counter(modes.values()) == {"leader": 1, "follower": 2}, modes
    assert leader in (2, 3)  # see above: a late JVM may miss the first round
    log = ens.servers[leader].log()
    assert "multiAddress.enabled set to true" in log
    # The leader knows its followers by their '|' lists.
    assert "Follower sid: 1 : info : 127.0.0.1:" in log and "|127.0.1.2:" in log
