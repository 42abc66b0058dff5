"""What :meth:`PeerRuntime.close` leaves on disk.

In-process: one peer of a three-server config (the others never run), so it stays in
its election; the snapshot of a SNAP or TRUNC sync is asked for directly, as the core
asks for it, with a snapshot writer the test holds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.interop.zkserver import free_ports
from zkquorum.core.datatree import DataTree
from zkquorum.core.events import Event, SnapshotWritten
from zkquorum.core.ready import Ready, TakeSnapshot
from zkquorum.runtime.files import load_config
from zkquorum.runtime.peer import PeerRuntime


def _config(tmp_path: Path) -> Path:
    ports = free_ports(7)
    data = tmp_path / "data"
    data.mkdir()
    (data / "myid").write_text("1\n")
    lines = [
        "tickTime=200",
        "initLimit=10",
        "syncLimit=5",
        f"dataDir={data}",
        f"clientPort={ports[6]}",
        "clientPortAddress=127.0.0.1",
    ]
    for sid in (1, 2, 3):
        q, e = ports[2 * (sid - 1)], ports[2 * (sid - 1) + 1]
        lines.append(f"server.{sid}=127.0.0.1:{q}:{e}:participant")
    path = tmp_path / "zoo.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_close_lets_a_sync_snapshot_finish_and_be_answered(tmp_path: Path) -> None:
    # The core answers a sync's SnapshotWritten with currentEpoch.  A close that cancelled
    # the snapshot would leave it finished (its write is shielded) but unanswered: a
    # snapshot of the new epoch beside an older currentEpoch, which the next start refuses
    # ("The current epoch, ..., is older than the last zxid").
    config = load_config(_config(tmp_path))

    async def scenario() -> list[int]:
        peer = PeerRuntime(config)
        await peer.start()
        entered, release = asyncio.Event(), asyncio.Event()
        answered: list[int] = []

        async def held_snapshot(tree: DataTree) -> Path:
            entered.set()
            await release.wait()
            return tmp_path / "snapshot.500000007"

        step = peer._step

        def recording_step(event: Event) -> None:
            if isinstance(event, SnapshotWritten):
                answered.append(event.zxid)
                return
            step(event)

        peer.storage.take_snapshot = held_snapshot  # type: ignore[assignment,method-assign]
        peer._step = recording_step  # type: ignore[method-assign]
        try:
            peer._rest(Ready(snapshot=(TakeSnapshot(0x500000007, sync=True),)))
            await asyncio.wait_for(entered.wait(), 10)
            closing = asyncio.ensure_future(peer.close())
            for _ in range(5):
                await asyncio.sleep(0)  # let close run up to where it waits
            assert not closing.done(), "close did not wait for the sync's snapshot"
            release.set()
            await asyncio.wait_for(closing, 10)
        finally:
            release.set()
            await peer.close()
        return answered

    assert asyncio.run(scenario()) == [0x500000007]
