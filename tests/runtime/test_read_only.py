"""Read-only mode (``readonlymode.enabled=true``): a peer cut off from its quorum serves
the clients that ask for read-only sessions, refuses writes with NOTREADONLY, and goes
back to read-write service once a quorum is back (3.8's ReadOnlyZooKeeperServer)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from zkquorum.testing import ZooKeeperEnsemble, four_letter_word

kazoo_client = pytest.importorskip("kazoo.client")
kazoo_exceptions = pytest.importorskip("kazoo.exceptions")
kazoo_states = pytest.importorskip("kazoo.protocol.states")


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def word(port: int, w: str) -> str:
    try:
        return four_letter_word(port, w)
    except OSError:
        return ""


@pytest.mark.slow
def test_a_peer_alone_serves_reads_only_until_its_quorum_is_back(tmp_path: Path) -> None:
    with ZooKeeperEnsemble(tmp_path, extra="readonlymode.enabled=true\n") as ens:
        leader = ens.leader()
        survivor = next(m for m in ens.members if m.sid != leader)
        writer = kazoo_client.KazooClient(hosts=survivor.address, timeout=4)
        writer.start(timeout=15)
        try:
            writer.create("/kept", b"v1")
            writer.sync("/kept")
        finally:
            writer.stop()
            writer.close()
        assert word(survivor.client_port, "isro") == "rw"
        for m in ens.members:
            if m is not survivor:
                ens.kill(m.sid)
        start = time.monotonic()
        wait_until(lambda: word(survivor.client_port, "isro") == "ro", "read-only service")
        assert time.monotonic() - start >= 1.5  # 3.8 waits max(2 s, tickTime) in LOOKING
        assert "Mode: read-only" in word(survivor.client_port, "srvr")

        # A client that did not ask for read-only is refused.
        rw = kazoo_client.KazooClient(hosts=survivor.address, timeout=2, connection_retry=None)
        with pytest.raises(rw.handler.timeout_exception):
            rw.start(timeout=3)
        rw.stop()
        rw.close()

        ro = kazoo_client.KazooClient(hosts=survivor.address, timeout=4, read_only=True)
        ro.start(timeout=15)
        try:
            assert ro.client_state == kazoo_states.KeeperState.CONNECTED_RO
            assert ro.get("/kept")[0] == b"v1"
            with pytest.raises(kazoo_exceptions.NotReadOnlyCallError):
                ro.create("/fred")
            with pytest.raises(kazoo_exceptions.NotReadOnlyCallError):
                ro.set("/kept", b"v2")
            # The quorum comes back: the survivor leaves read-only service.
            ens.restart_all()
            wait_until(
                lambda: word(survivor.client_port, "isro") == "rw", "read-write service again"
            )
            assert survivor.mode() in ("leader", "follower")
            rw = kazoo_client.KazooClient(hosts=survivor.address, timeout=4)
            rw.start(timeout=15)
            try:
                assert rw.get("/kept")[0] == b"v1"
                rw.set("/kept", b"v2")
            finally:
                rw.stop()
                rw.close()
        finally:
            ro.stop()
            ro.close()
