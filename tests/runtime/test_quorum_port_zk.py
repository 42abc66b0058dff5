"""A zkquorum LearnerClient (sid 3) follows a real ZooKeeper 3.8 leader.

Java servers 1 and 2 of a three-server ensemble elect a leader among themselves; we are the
configured third server.  With znodes written through kazoo first, our fresh learner gets a
SNAP, stays synced through heartbeats (``ZKQUORUM_FOLLOW_SECONDS``, default 5 s; the issue
asks for 30 s) and through proposals, and its last zxid equals the leader's ``srvr`` Zxid.
Then the Java follower is stopped: the leader keeps its quorum only because it counts us.
A second session on the same data dir gets a DIFF.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.zk import require_zookeeper
from tests.interop.zkserver import JavaEnsemble, java_ensemble, wait_for
from zkquorum.core.learner import SyncMode
from zkquorum.runtime.files import load_config
from zkquorum.runtime.quorum_port import LearnerClient
from zkquorum.runtime.storage import Storage

pytestmark = pytest.mark.interop

FOLLOW_SECONDS = float(os.environ.get("ZKQUORUM_FOLLOW_SECONDS", "5"))
SETTINGS = {
    "tickTime": "200",
    "initLimit": "10",
    "syncLimit": "5",
    "4lw.commands.whitelist": "*",
    "cnxTimeout": "1000",
}


@pytest.fixture
def java_pair(tmp_path: Path) -> Iterator[JavaEnsemble]:
    install = require_zookeeper()
    with java_ensemble(install, tmp_path, (1, 2, 3), start=False, settings=SETTINGS) as ens:
        ens.start([1, 2])
        ens.wait_for_leader(timeout=60)
        yield ens


def _zxid(ens: JavaEnsemble, sid: int) -> int:
    info = ens.servers[sid].srvr()
    assert info is not None, f"server {sid} does not answer srvr"
    return int(info["Zxid"], 16)


def _kazoo(ens: JavaEnsemble, sid: int):  # type: ignore[no-untyped-def]
    kazoo_client = pytest.importorskip("kazoo.client")
    zk = kazoo_client.KazooClient(hosts=f"127.0.0.1:{ens.servers[sid].client_port}", timeout=10)
    zk.start(timeout=20)
    return zk


def _leader_sid(ens: JavaEnsemble) -> int:
    modes = {sid: ens.servers[sid].mode() for sid in (1, 2)}
    return next(sid for sid, m in modes.items() if m == "leader")


async def _follow(
    ens: JavaEnsemble,
    leader: int,
    storage: Storage,
    seconds: float,
    writer_zk: object | None = None,
) -> tuple[int, SyncMode, int]:
    cfg = load_config(ens.servers[3].cfg_path)
    assert cfg.my_id == 3
    async with LearnerClient(cfg, storage, leader) as client:
        epoch = await client.wait_established(timeout=20)
        assert client.learner is not None
        mode = client.learner.last_sync_mode
        # Synced: our last zxid is the leader's (srvr answers in a thread: no blocking).
        await _until(lambda: client.last_zxid == _zxid(ens, leader), 10, "zxid equal")
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            if writer_zk is not None:
                await asyncio.to_thread(writer_zk.create, f"/zkq/live-{n}", b"x")  # type: ignore[attr-defined]
                n += 1
            await asyncio.sleep(0.5)  # pacing of the workload, not synchronisation
            assert not client._done.is_set(), client.failure
        await _until(lambda: client.last_zxid == _zxid(ens, leader), 10, "zxid equal")
        assert client.established and client.failure is None
        last = client.last_zxid
        assert last is not None
    return epoch, mode, last


async def _until(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(cond):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


def test_learner_follows_java_leader_snap_then_diff(java_pair: JavaEnsemble) -> None:
    ens = java_pair
    leader = _leader_sid(ens)
    zk = _kazoo(ens, leader)
    try:
        zk.create("/zkq", b"root")
        for i in range(5):
            zk.create(f"/zkq/n{i}", str(i).encode())
        zk.set("/zkq/n1", b"changed")
        zk.delete("/zkq/n2")
        storage = Storage(ens.servers[3].data_dir, config_text="")
        epoch, mode, last = asyncio.run(_follow(ens, leader, storage, FOLLOW_SECONDS, zk))
        assert mode is SyncMode.SNAP  # fresh data dir
        assert epoch == _zxid(ens, leader) >> 32
        assert last == _zxid(ens, leader)
        # The epoch files and the txn log survive: a restart reads the same last zxid.
        state = Storage(ens.servers[3].data_dir).load()
        assert state.tree.last_processed_zxid == last
        assert state.current_epoch == state.accepted_epoch == epoch
        assert state.tree.get("/zkq/n1") is not None
        assert state.tree.get("/zkq/n2") is None
        # And we read what the Java leader wrote (snapshot.0 + its pre-allocated log).
        java = Storage(ens.servers[leader].data_dir).load_tree()
        assert java.tree.last_processed_zxid == last
        assert set(java.tree.nodes) == set(state.tree.nodes)

        # More writes while we are away, then a DIFF.
        zk.create("/zkq/while-away", b"1")
        zk.set("/zkq/n3", b"again")
        storage = Storage(ens.servers[3].data_dir)
        epoch2, mode2, last2 = asyncio.run(_follow(ens, leader, storage, 1.0))
        assert (epoch2, mode2) == (epoch, SyncMode.DIFF)
        assert last2 == _zxid(ens, leader) > last
    finally:
        zk.stop()
        zk.close()


def test_leader_counts_us_when_its_java_follower_dies(java_pair: JavaEnsemble) -> None:
    ens = java_pair
    leader = _leader_sid(ens)
    other = 3 - leader
    storage = Storage(ens.servers[3].data_dir)

    async def scenario() -> None:
        cfg = load_config(ens.servers[3].cfg_path)
        async with LearnerClient(cfg, storage, leader) as client:
            await client.wait_established(timeout=20)
            await asyncio.to_thread(ens.servers[other].stop)
            # 3.8 drops a silent learner after syncLimit ticks (1 s) and then checks the
            # quorum every tick: give it 3 s, then it must still lead, with us.
            await asyncio.sleep(3.0)  # the observation window itself, not synchronisation
            assert client.failure is None
            assert await asyncio.to_thread(ens.servers[leader].mode) == "leader"

    asyncio.run(scenario())
    # Once we go too, the leader loses its quorum and stops serving.
    wait_for(
        lambda: ens.servers[leader].mode() != "leader", timeout=10, what="the leader to step down"
    )
