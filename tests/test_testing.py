"""``zkquorum.testing``: the pytest plugin's fixtures, as a user's test suite gets them
(installed with the package: no conftest, no import), and the classes without pytest."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from zkquorum.testing import ServerError, ZooKeeperEnsemble, ZooKeeperServer, four_letter_word

kazoo_client = pytest.importorskip("kazoo.client")


def _client(hosts: str):  # type: ignore[no-untyped-def]
    zk = kazoo_client.KazooClient(hosts=hosts, timeout=4)
    zk.start(timeout=15)
    return zk


def test_the_server_fixture_serves_kazoo_and_keeps_data_across_a_restart(
    zkquorum_server: ZooKeeperServer,
) -> None:
    assert zkquorum_server.server.mode() == "standalone"
    zk = _client(zkquorum_server.hosts)
    try:
        zk.create("/app/config", b"v1", makepath=True)
    finally:
        zk.stop()
        zk.close()
    zkquorum_server.restart()
    zk = _client(zkquorum_server.hosts)
    try:
        assert zk.get("/app/config")[0] == b"v1"
    finally:
        zk.stop()
        zk.close()


@pytest.mark.slow
def test_the_ensemble_fixture_survives_a_leader_kill(
    zkquorum_ensemble: ZooKeeperEnsemble,
) -> None:
    ens = zkquorum_ensemble
    leader = ens.leader()
    assert sorted(m.mode() or "" for m in ens.members) == ["follower", "follower", "leader"]
    zk = _client(ens.hosts)
    fired = threading.Event()
    try:
        zk.create("/svc", b"before")
        zk.get("/svc", watch=lambda _event: fired.set())
        ens.kill(leader)
        assert not ens.servers[leader].running
        new_leader = ens.leader()
        assert new_leader != leader
        zk.retry(zk.set, "/svc", b"after")
        assert fired.wait(15), "the watch did not fire across the leader kill"
        assert zk.retry(zk.get, "/svc")[0] == b"after"
        ens.restart(leader)
        assert ens.servers[leader].mode() == "follower"
    finally:
        zk.stop()
        zk.close()


def test_classes_clean_up_their_processes_and_directory() -> None:
    with ZooKeeperServer() as server:
        proc = server.server.proc
        directory = server.directory
        assert proc is not None and proc.poll() is None
        assert "zk_server_state\tstandalone" in four_letter_word(server.port, "mntr")
    assert proc.poll() is not None
    assert not directory.exists()


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    with pytest.raises(ServerError, match="exited with status") as info:
        ZooKeeperServer(tmp_path, extra="maxSessionTimeout=1\nminSessionTimeout=5\n")
    assert "minSessionTimeout" in str(info.value)  # the log's tail names the bad key
