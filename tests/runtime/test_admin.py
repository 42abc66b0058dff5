"""``zkquorum status``: the four-letter-word client, against answers of our own and of
Java 3.8 (the answers themselves are checked in ``test_fourletter.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest

from tests.interop.zkserver import JavaEnsemble
from tests.runtime.conftest import JAVA_SIDS
from tests.runtime.helpers import refused_address, run
from tests.runtime.test_http_admin import context
from zkquorum.cli.main import CliError, main
from zkquorum.cli.status_cmd import format_table, parse_server
from zkquorum.config.model import HostPort
from zkquorum.runtime import fourletter
from zkquorum.runtime.admin import SrvrReply, query_srvr
from zkquorum.runtime.commands import CommandContext
from zkquorum.runtime.opsview import Seat

ALL = frozenset({"*"})


@contextlib.contextmanager
def words_in_thread(ctx: CommandContext) -> Iterator[HostPort]:
    """A four-letter-word server answering from ``ctx`` on its own loop in a thread (the
    CLI runs its own asyncio.run)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    bound: list[HostPort] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        word = (await reader.readexactly(4)).decode()
        writer.write((fourletter.render(word, ctx, ALL) or "").encode())
        writer.close()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
        bound.append(HostPort("127.0.0.1", server.sockets[0].getsockname()[1]))
        ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        yield bound[0]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


# -- zkquorum status --------------------------------------------------------------------


def test_parse_server() -> None:
    assert parse_server("127.0.0.1:2181") == HostPort("127.0.0.1", 2181)
    assert parse_server("zk1") == HostPort("zk1", 2181)
    assert parse_server("[::1]:2182") == HostPort("::1", 2182)
    assert parse_server("[::1]") == HostPort("::1", 2181)
    for bad in ("h:0", "h:x", "[::1", ":2181", "h:70000"):
        with pytest.raises(CliError):
            parse_server(bad)


def test_format_table() -> None:
    table = format_table(
        [
            SrvrReply("127.0.0.1:2181", "leader", 0x300000002, 1.234),
            SrvrReply("127.0.0.1:2182", "error", None, None, "Connection refused"),
        ]
    )
    assert table.splitlines() == [
        "SERVER          MODE                       ZXID         EPOCH  LATENCY",
        "127.0.0.1:2181  leader                     0x300000002  3      1.2 ms",
        "127.0.0.1:2182  error: Connection refused  -            -      -",
    ]


def test_status_cli_against_our_answers(capsys: pytest.CaptureFixture[str]) -> None:
    with (
        words_in_thread(context(Seat.LEADER)) as addr,
        words_in_thread(context(None)) as addr2,
        refused_address() as gone,
    ):
        assert main(["status", str(addr), str(addr2), str(gone)]) == 1
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[1][:2] == [str(addr), "leader"] and rows[1][2].startswith("0x")
    assert rows[2][:3] == [str(addr2), "not", "serving"]
    assert rows[3][:4] == [str(gone), "error:", "Connection", "refused"]


# -- against real ZooKeeper 3.8 -----------------------------------------------------------


@pytest.mark.interop
def test_status_cli_against_java(
    java_mixed: JavaEnsemble, capsys: pytest.CaptureFixture[str]
) -> None:
    addrs = [f"127.0.0.1:{java_mixed.servers[sid].client_port}" for sid in JAVA_SIDS]
    assert main(["status", *addrs]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["SERVER", "MODE", "ZXID", "EPOCH", "LATENCY"]
    assert sorted(r[1] for r in rows[1:]) == ["follower", "follower", "leader"]
    for r in rows[1:]:
        zxid = int(r[2], 16)
        assert int(r[3]) == zxid >> 32
        assert r[5] == "ms" and float(r[4]) > 0


def test_query_srvr_on_garbage_answer() -> None:
    async def main_() -> SrvrReply:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readexactly(4)
            writer.write(b"hello\n")
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            return await query_srvr(HostPort("127.0.0.1", port))
        finally:
            server.close()
            await server.wait_closed()

    reply = run(main_)
    assert (reply.mode, reply.error) == ("error", "hello")
