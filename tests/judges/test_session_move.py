"""A client moves its session between a Java server and a zkquorum server of one ensemble
and keeps it: the session id, its ephemeral, and its watch (re-armed by setWatches on the
new server, fired by a change made through a third server).

Both mixed targets: Java followers of a zkquorum leader (the zkquorum leader answers the
Java follower's REVALIDATE), and a zkquorum follower of a Java leader (the zkquorum
follower asks the Java leader).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.judges.targets import (
    MIXED_ZKQUORUM_FOLLOWER,
    MIXED_ZKQUORUM_LEADER,
    RunningTarget,
    TargetSpec,
)
from zkquorum.config.model import HostPort
from zkquorum.runtime.zkclient import EPHEMERAL, Client, ConnectionLoss
from zkquorum.wire.client_records import EventType

pytestmark = [pytest.mark.interop, pytest.mark.judge]


@pytest.mark.parametrize(
    "spec", [MIXED_ZKQUORUM_LEADER, MIXED_ZKQUORUM_FOLLOWER], ids=lambda s: s.name
)
def test_a_session_moves_between_java_and_zkquorum_and_keeps_everything(
    judge_target: Callable[..., RunningTarget], spec: TargetSpec
) -> None:
    target = judge_target(spec)
    (zk_sid,) = spec.py_sids
    java_a, java_b = spec.java_sids
    addr = {sid: HostPort(*target.address(sid)) for sid in spec.sids}

    async def move(client: Client, to: HostPort) -> None:
        # A server that has not yet applied the last zxid the client saw refuses it (3.8:
        # "client must try another server"); it catches up within moments.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while True:
            try:
                await client.move(to)
                return
            except ConnectionLoss:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.02)

    async def scenario() -> None:
        client = Client([addr[java_a]], timeout_ms=6_000)
        other = Client([addr[java_b]], timeout_ms=6_000)
        await client.start()
        await other.start()
        try:
            session = client.session_id
            await client.create("/moving", b"0")
            await client.create("/moving/eph", b"", EPHEMERAL)
            # Java -> zkquorum -> Java -> zkquorum; each time a change through a third
            # server fires the watch the session set before it moved.
            for hop, to in enumerate([zk_sid, java_a, zk_sid], start=1):
                await client.get("/moving", watch=True)
                await move(client, addr[to])
                assert client.session_id == session and client.server == addr[to]
                await other.set("/moving", str(hop).encode())
                event = await asyncio.wait_for(client.events.get(), 15)
                assert (event.type, event.path) == (EventType.NODE_DATA_CHANGED, "/moving")
                data, stat = await client.get("/moving")
                assert (data, stat.version) == (str(hop).encode(), hop)
                assert await other.exists("/moving/eph"), f"ephemeral gone after hop {hop}"
            await client.close()
            await other.sync("/moving")  # other's server may not have applied it yet
            assert not await other.exists("/moving/eph")  # closeSession, wherever it is now
        finally:
            await client.close()
            await other.close()

    asyncio.run(scenario())
