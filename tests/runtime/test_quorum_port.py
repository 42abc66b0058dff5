"""Our LeaderServer with two of our LearnerClients on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.interop.zkserver import free_ports
from tests.runtime.test_storage import vector_txns
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.core.learner import SyncMode
from zkquorum.runtime.files import load_config
from zkquorum.runtime.quorum_port import LeaderServer, LearnerClient, QuorumOutcome
from zkquorum.runtime.storage import Storage

TICK_MS = 100
SYNC_LIMIT = 3


def _configs(tmp_path: Path) -> dict[int, QuorumConfig]:
    ports = free_ports(6)
    lines = [
        f"server.{sid}=127.0.0.1:{ports[2 * i]}:{ports[2 * i + 1]}"
        for i, sid in enumerate((1, 2, 3))
    ]
    out = {}
    for sid in (1, 2, 3):
        d = tmp_path / f"peer{sid}"
        d.mkdir()
        (d / "myid").write_text(str(sid))
        cfg = d / "zoo.cfg"
        cfg.write_text(
            f"tickTime={TICK_MS}\ninitLimit=10\nsyncLimit={SYNC_LIMIT}\n"
            f"dataDir={d}\n" + "\n".join(lines) + "\n"
        )
        out[sid] = load_config(cfg)
    return out


async def _next(q: asyncio.Queue[QuorumOutcome], timeout: float = 10) -> QuorumOutcome:
    return await asyncio.wait_for(q.get(), timeout)


def test_leader_and_two_learners(tmp_path: Path) -> None:
    cfgs = _configs(tmp_path)
    txns = vector_txns()
    # The leader has history (epoch 1, 32 txns); peer 3 has the first 20; peer 2 nothing.
    for sid, n in ((1, 32), (3, 20)):
        s = Storage(cfgs[sid].data_dir)
        s.load()
        s.append(txns[:n])
        s.write_accepted_epoch(1)
        s.write_current_epoch(1)
        s.close()

    async def scenario() -> None:
        async with LeaderServer(cfgs[1], Storage(cfgs[1].data_dir)) as leader:
            l2 = LearnerClient(cfgs[2], Storage(cfgs[2].data_dir), 1)
            l3 = LearnerClient(cfgs[3], Storage(cfgs[3].data_dir), 1)
            async with l2, l3:
                assert await leader.wait_established(10) == 2
                assert await l2.wait_established(10) == 2
                assert await l3.wait_established(10) == 2
                assert l2.learner is not None and l3.learner is not None
                assert l2.learner.last_sync_mode is SyncMode.SNAP
                assert l3.learner is not None and l3.learner.last_sync_mode is SyncMode.DIFF
                assert l2.last_zxid == l3.last_zxid == 0x100000020
                assert set(l2.learner.db.tree.nodes) == set(l3.learner.db.tree.nodes)
                # Heartbeats keep everyone together for well over syncLimit ticks.
                await asyncio.sleep(SYNC_LIMIT * TICK_MS / 1000 * 3)  # observation window
                assert leader.failure is None and l2.failure is None and l3.failure is None
                # One learner goes: 2 of 3 remain, the leader stays.
                await l2.close()
                await asyncio.sleep(SYNC_LIMIT * TICK_MS / 1000 * 2)  # observation window
                assert leader.failure is None
                # The other goes: quorum lost, the leader steps down.
                start = time.monotonic()
                await l3.close()
                assert await _next(leader.outcomes) == QuorumOutcome("established", 2)
                out = await _next(leader.outcomes, 5)
                assert out.kind == "failed"
                assert out.reason == (
                    "Not sufficient followers synced, only synced with sids: [ [1] ]"
                )
                assert time.monotonic() - start < (SYNC_LIMIT + 2) * TICK_MS / 1000
        # Nothing left running.
        assert not leader._tasks and not l2._tasks and not l3._tasks
        # The epoch files: everybody accepted and is current in epoch 2.
        for sid in (1, 2, 3):
            st = Storage(cfgs[sid].data_dir).load()
            assert (st.accepted_epoch, st.current_epoch) == (2, 2), sid
            assert st.tree.last_processed_zxid == 0x100000020, sid

    asyncio.run(scenario())


def test_learner_notices_a_dead_leader_and_retries_connect(tmp_path: Path) -> None:
    cfgs = _configs(tmp_path)

    async def scenario() -> None:
        # The learner starts first: it retries until the leader listens.
        l2 = LearnerClient(cfgs[2], Storage(cfgs[2].data_dir), 1)
        l2.start()
        await asyncio.sleep(0.2)  # let it fail a few connects first
        leader = LeaderServer(cfgs[1], Storage(cfgs[1].data_dir))
        await leader.start()
        try:
            assert await l2.wait_established(10) == 1
            start = time.monotonic()
            await leader.close()
            assert await l2.wait_closed() is not None
            assert time.monotonic() - start < 1.0  # EOF: at once
        finally:
            await leader.close()
            await l2.close()

    asyncio.run(scenario())
