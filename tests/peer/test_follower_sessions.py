"""A session held on a follower stays alive while its client works: the follower reports
the sessions its clients touched (gathered over each turn of its loop) in every PING
reply, and the leader, which expires sessions, extends them.  Lose those reports and the
leader expires the session within its timeout."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.peer.cluster import Ensemble

kazoo_client = pytest.importorskip("kazoo.client")

SETTINGS = {"tickTime": "100", "initLimit": "20", "syncLimit": "5"}
"""Sessions of 200 ms to 2 s (2 and 20 ticks)."""


def test_a_busy_session_on_a_follower_outlives_its_timeout(
    ensembles: Callable[..., Ensemble],
) -> None:
    ens = ensembles(py_sids=(1, 2, 3), settings=SETTINGS)
    leader = ens.wait_for_leader()
    follower = next(sid for sid in ens.servers if sid != leader)
    zk = kazoo_client.KazooClient(
        hosts=f"127.0.0.1:{ens.servers[follower].client_port}", timeout=0.6
    )
    states: list[str] = []
    zk.add_listener(lambda state: states.append(str(state)))
    zk.start(timeout=20)
    try:
        session = zk.client_id[0]
        zk.create("/busy", b"")
        until = time.monotonic() + 3.0  # five session timeouts of work
        while time.monotonic() < until:
            zk.set("/busy", b"x")
            zk.exists("/busy")
        assert "LOST" not in states, states
        assert zk.client_id[0] == session
        assert zk.exists("/busy") is not None
    finally:
        zk.stop()
        zk.close()
