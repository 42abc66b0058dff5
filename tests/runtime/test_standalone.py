"""The standalone server in-process: kazoo works, bad bytes close one connection only, an
acknowledged write survives a restart, four-letter words answer on the client port."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.interop.zkserver import free_ports
from zkquorum.config.zoocfg import parse_zoo_cfg
from zkquorum.runtime.standalone import StandaloneServer

kazoo_client = pytest.importorskip("kazoo.client")


def _config(tmp_path: Path, port: int) -> object:
    text = (
        f"tickTime=200\ndataDir={tmp_path}/data\nclientPort={port}\n"
        "clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n"
    )
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(text)
    return parse_zoo_cfg(text, path=str(cfg))


def _kazoo(port: int):  # type: ignore[no-untyped-def]
    zk = kazoo_client.KazooClient(hosts=f"127.0.0.1:{port}", timeout=5)
    zk.start(timeout=10)
    return zk


def _word(port: int, word: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(word)
        chunks = []
        while chunk := s.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def test_kazoo_bad_bytes_restart_and_words(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    config = _config(tmp_path, port)

    async def first_life() -> None:
        async with StandaloneServer(config) as server:  # type: ignore[arg-type]
            zk = await asyncio.to_thread(_kazoo, port)
            try:
                await asyncio.to_thread(zk.create, "/kept", b"v1")
                # A frame far above jute.maxbuffer closes that connection only.
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(b"\x7f\xff\xff\xff")
                await w.drain()
                await asyncio.to_thread(zk.set, "/kept", b"v2")
                assert (await asyncio.to_thread(zk.get, "/kept"))[0] == b"v2"
                assert server.port is not None and server.port.bad_frames == 1
                w.close()
                assert await asyncio.to_thread(_word, port, b"ruok") == b"imok"
                srvr = (await asyncio.to_thread(_word, port, b"srvr")).decode()
                assert "Mode: standalone" in srvr
            finally:
                await asyncio.to_thread(zk.stop)
                await asyncio.to_thread(zk.close)

    async def second_life() -> None:
        async with StandaloneServer(config):  # type: ignore[arg-type]
            zk = await asyncio.to_thread(_kazoo, port)
            try:
                data, stat = await asyncio.to_thread(zk.get, "/kept")
                assert data == b"v2" and stat.version == 1
            finally:
                await asyncio.to_thread(zk.stop)
                await asyncio.to_thread(zk.close)

    asyncio.run(first_life())
    asyncio.run(second_life())
    # As 3.8's standalone server: a snapshot and a log, no epoch files.
    files = sorted(p.name.split(".")[0] for p in (tmp_path / "data" / "version-2").iterdir())
    assert set(files) == {"log", "snapshot"}, files


def test_a_connection_without_a_session_is_closed_and_a_client_is_not(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    config = _config(tmp_path, port)

    async def scenario() -> None:
        async with StandaloneServer(config) as server:  # type: ignore[arg-type]
            assert server.port is not None
            server.port.sessionless_timeout_s = 0.5
            zk = await asyncio.to_thread(_kazoo, port)
            try:
                silent_r, silent_w = await asyncio.open_connection("127.0.0.1", port)
                half_r, half_w = await asyncio.open_connection("127.0.0.1", port)
                half_w.write(b"\x00\x00\x00\x2c\x00")  # the start of a ConnectRequest frame
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                # Both are closed by the server (EOF), within the timeout and a margin.
                assert await asyncio.wait_for(silent_r.read(), 10) == b""
                assert await asyncio.wait_for(half_r.read(), 10) == b""
                assert loop.time() - t0 >= 0.4
                assert server.port.sessionless_expired == 2
                silent_w.close()
                half_w.close()
                # The client with a session, connected for longer than that, still works.
                await asyncio.to_thread(zk.create, "/still", b"here")
                assert zk.connected
            finally:
                await asyncio.to_thread(zk.stop)
                await asyncio.to_thread(zk.close)

    asyncio.run(scenario())


def test_max_client_cnxns_per_address(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    text = (
        f"tickTime=200\ndataDir={tmp_path}/data\nclientPort={port}\n"
        "clientPortAddress=127.0.0.1\nmaxClientCnxns=2\n"
    )
    (tmp_path / "zoo.cfg").write_text(text)
    config = parse_zoo_cfg(text, path=str(tmp_path / "zoo.cfg"))

    async def scenario() -> None:
        async with StandaloneServer(config) as server:  # type: ignore[arg-type]
            assert server.port is not None and server.port.max_per_ip == 2
            first = await asyncio.open_connection("127.0.0.1", port)
            second = await asyncio.open_connection("127.0.0.1", port)
            third_r, third_w = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(third_r.read(), 10) == b""  # refused: closed
            assert server.port.rejected == 1
            third_w.close()
            first[1].close()
            await asyncio.wait_for(first[0].read(), 10)
            # One slot is free again once the server has seen the first one close.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while server.port.connections > 1 and loop.time() < deadline:
                await asyncio.sleep(0.01)
            again_r, again_w = await asyncio.open_connection("127.0.0.1", port)
            again_w.write(b"srvr")
            assert b"Mode: standalone" in await asyncio.wait_for(again_r.read(), 10)
            assert server.port.rejected == 1
            again_w.close()
            second[1].close()

    asyncio.run(scenario())
