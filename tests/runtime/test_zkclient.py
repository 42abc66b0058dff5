"""The small asyncio client (``zkquorum.runtime.zkclient``) against real servers: a
standalone one in-process, and three zkquorum processes whose leader is killed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.interop.zkserver import free_ports
from zkquorum.config.model import HostPort
from zkquorum.config.zoocfg import parse_zoo_cfg
from zkquorum.runtime.standalone import StandaloneServer
from zkquorum.runtime.zkclient import EPHEMERAL, SEQUENTIAL, Client, ClientError
from zkquorum.testing import ZooKeeperEnsemble
from zkquorum.wire.client_records import EventType

NODEEXISTS = -110


def test_operations_watches_and_close_on_a_standalone_server(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    text = (
        f"tickTime=200\ndataDir={tmp_path}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
    )
    config = parse_zoo_cfg(text, path=str(tmp_path / "zoo.cfg"))
    addr = [HostPort("127.0.0.1", port)]

    async def scenario() -> None:
        async with StandaloneServer(config):
            a, b = Client(addr), Client(addr)
            await a.start()
            await b.start()
            try:
                assert await a.create("/app", b"v1") == "/app"
                with pytest.raises(ClientError) as info:
                    await b.create("/app")
                assert info.value.code == NODEEXISTS
                seq = await a.create("/app/n-", b"", SEQUENTIAL)
                assert seq == "/app/n-0000000000"
                await a.create("/app/eph", b"", EPHEMERAL)
                data, stat = await b.get("/app", watch=True)
                assert (data, stat.version) == (b"v1", 0)
                assert (await a.set("/app", b"v2")).version == 1
                event = await asyncio.wait_for(b.events.get(), 10)
                assert (event.type, event.path) == (EventType.NODE_DATA_CHANGED, "/app")
                await a.close()
                assert not await b.exists("/app/eph")  # closeSession removed it
                await b.delete(seq)
                assert not await b.exists(seq)
            finally:
                await a.close()
                await b.close()

    asyncio.run(scenario())


@pytest.mark.slow
def test_the_session_and_its_watch_survive_a_leader_kill(tmp_path: Path) -> None:
    with ZooKeeperEnsemble(tmp_path) as ens:
        leader = ens.leader()
        servers = {m.sid: HostPort("127.0.0.1", m.client_port) for m in ens.members}
        first = [servers[leader]] + [a for s, a in servers.items() if s != leader]

        async def scenario() -> None:
            a = Client(first, timeout_ms=10_000)
            b = Client(list(servers.values()), timeout_ms=10_000)
            await a.start()
            try:
                assert a.server == servers[leader]
                session = a.session_id
                await a.create("/svc", b"before")
                await a.create("/svc/eph", b"", EPHEMERAL)
                await a.get("/svc", watch=True)
                ens.kill(leader)
                moved = await a.wait_connected(30, reconnects=1)
                assert moved != servers[leader] and a.session_id == session
                assert a.reconnects == 1
                await b.start()
                await b.set("/svc", b"after")  # fires the watch re-registered by setWatches
                event = await asyncio.wait_for(a.events.get(), 15)
                assert (event.type, event.path) == (EventType.NODE_DATA_CHANGED, "/svc")
                assert await b.exists("/svc/eph")  # the session lived on: so did its ephemeral
            finally:
                await a.close()
                await b.close()

        asyncio.run(scenario())
