"""Four-letter words (spec B5) and ``zkquorum status``, checked against real 3.8 output."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest

from tests.interop.zkserver import JavaEnsemble, four_letter_word
from tests.runtime.conftest import JAVA_SIDS
from tests.runtime.helpers import refused_address, run, within
from zkquorum.cli.main import CliError, main
from zkquorum.cli.status_cmd import format_table, parse_server
from zkquorum.config.model import HostPort
from zkquorum.config.zoocfg import parse_zoo_cfg
from zkquorum.runtime.admin import (
    NOT_SERVING,
    AdminServer,
    PeerStatus,
    SrvrReply,
    ask,
    parse_srvr,
    query_srvr,
    render,
)
from zkquorum.runtime.connections import ConnectionCounters
from zkquorum.runtime.files import load_config
from zkquorum.wire.election import ServerState

CFG = parse_zoo_cfg(
    "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=/nonexistent/zk2\nclientPort=2182\n"
    "server.1=127.0.0.1:2001:3001\nserver.2=127.0.0.1:2002:3002\nserver.3=127.0.0.1:2003:3003\n",
    path="zoo.cfg",
    myid_text="2",
)
ALL = frozenset({"*"})


def status(state: ServerState = ServerState.FOLLOWING, **kw: object) -> PeerStatus:
    base: dict[str, object] = dict(
        my_id=2,
        leader=3,
        zxid=0x100000005,
        peer_epoch=1,
        election_epoch=1,
        elections=2,
        election_time_last_ms=230,
        election_time_min_ms=210,
        election_time_max_ms=230,
        election_time_total_ms=440,
        looking_count=2,
        zab_state="discovery",
        connections=ConnectionCounters(
            notifications_sent=7, notifications_received=9, bad_connections_refused=1
        ),
        connected_peers=frozenset({1, 3}),
        config=CFG,
        uptime_ms=1234,
    )
    base.update(kw)
    return PeerStatus(state, **base)  # type: ignore[arg-type]


# -- rendering --------------------------------------------------------------------------


def test_srvr_follower_and_leader() -> None:
    assert render("srvr", status(), ALL) == (
        "Zookeeper version: 3.8.0-zkquorum-0.1.0, built on n/a\n"
        "Latency min/avg/max: 0/0.0/0\nReceived: 0\nSent: 0\nConnections: 0\n"
        "Outstanding: 0\nZxid: 0x100000005\nMode: follower\nNode count: 0\n"
    )
    leader = render("srvr", status(ServerState.LEADING), ALL)
    assert leader is not None
    assert leader.endswith("Mode: leader\nNode count: 0\nProposal sizes last/min/max: -1/-1/-1\n")
    assert "Mode: observer\n" in (render("srvr", status(ServerState.OBSERVING), ALL) or "")


def test_looking_is_not_serving_but_ruok_envi_isro_answer() -> None:
    looking = status(ServerState.LOOKING, leader=None)
    for word in ("srvr", "stat", "mntr", "conf"):
        assert render(word, looking, ALL) == NOT_SERVING
    assert NOT_SERVING == "This ZooKeeper instance is not currently serving requests\n"
    assert render("ruok", looking, ALL) == "imok"
    assert render("isro", looking, ALL) == "null"
    assert render("isro", status(), ALL) == "rw"
    envi = render("envi", looking, ALL)
    assert envi is not None and envi.startswith("Environment:\nzookeeper.version=3.8.0-")


def test_whitelist_as_38() -> None:
    only_srvr = frozenset({"srvr"})
    for word in ("ruok", "stat", "mntr", "conf", "envi", "dump"):
        assert render(word, status(), only_srvr) == (
            f"{word} is not executed because it is not in the whitelist.\n"
        )
    assert render("srvr", status(), frozenset()) is not None  # srvr is always allowed
    assert render("ruok", status(), frozenset({"ruok", "conf"})) == "imok"
    assert render("xxxx", status(), ALL) is None  # unknown: closed without a word
    assert render("dump", status(), ALL) is None  # known, allowed, not implemented


def test_mntr_election_metrics() -> None:
    text = render("mntr", status(), ALL)
    assert text is not None
    values = dict(line.split("\t") for line in text.splitlines())
    assert text.splitlines()[0].startswith("zk_version\t3.8.0-")
    assert values["zk_server_state"] == "follower"
    assert values["zk_peer_state"] == "following - discovery"
    assert values["zk_quorum_size"] == "3"
    assert values["zk_cnt_election_time"] == "2"
    assert values["zk_avg_election_time"] == "220.0"
    assert values["zk_last_election_time"] == "230"
    assert values["zk_election_notifications_sent"] == "7"
    assert values["zk_election_notifications_received"] == "9"
    assert values["zk_election_bad_connections_refused"] == "1"
    assert values["zk_election_peers_connected"] == "2"


def test_conf() -> None:
    text = render("conf", status(), ALL)
    assert text is not None
    head, _, membership = text.partition("membership: \n")
    assert head.splitlines()[:3] == [
        "clientPort=2182",
        "secureClientPort=-1",
        "dataDir=/nonexistent/zk2/version-2",
    ]
    assert "serverId=2" in head and "electionPort=3002" in head and "quorumPort=2002" in head
    assert membership == CFG.verifier.to_zk_string()  # type: ignore[union-attr]
    assert membership.endswith("version=0")


# -- the server -------------------------------------------------------------------------


def test_admin_server_answers_and_closes_other_traffic() -> None:
    current = [status(ServerState.LOOKING, leader=None)]

    async def main_() -> None:
        async with AdminServer(
            lambda: current[0],
            HostPort("127.0.0.1", 0),
            frozenset({"ruok", "stat"}),
            read_timeout=0.3,
        ) as srv:
            addr = srv.address
            assert await ask(addr, "srvr") == NOT_SERVING
            assert await ask(addr, "ruok") == "imok"
            assert await ask(addr, "mntr") == (
                "mntr is not executed because it is not in the whitelist.\n"
            )
            current[0] = status()
            srvr = parse_srvr(await ask(addr, "srvr"))
            assert srvr["Mode"] == "follower" and srvr["Zxid"] == "0x100000005"
            assert srvr["Connections"] == "1"
            stat = await ask(addr, "stat")
            assert "Clients:\n /127.0.0.1:" in stat and "(queued=0,recved=1,sent=0)\n\n" in stat
            # a client session request (ConnectRequest length prefix): closed, no answer
            assert await ask(addr, "\x00\x00\x00\x2c") == ""
            # the word may arrive in pieces
            reader, writer = await asyncio.open_connection(addr.host, addr.port)
            writer.write(b"ru")
            await writer.drain()
            await asyncio.sleep(0.05)  # let the first two bytes travel alone
            writer.write(b"ok")
            assert await within(reader.read()) == b"imok"
            writer.close()
            await writer.wait_closed()
            # a silent client is closed after the read timeout
            reader, writer = await asyncio.open_connection(addr.host, addr.port)
            assert await within(reader.read(), 2.0) == b""
            writer.close()
            await writer.wait_closed()

    run(main_)


def test_admin_server_from_config() -> None:
    srv = AdminServer.from_config(CFG, status)
    assert srv is not None and srv._want == HostPort("0.0.0.0", 2182)
    no_client = parse_zoo_cfg(
        "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir=/x\n"
        "server.1=127.0.0.1:2001:3001\nserver.2=127.0.0.1:2002:3002\n",
        path="zoo.cfg",
        myid_text="2",
    )
    assert AdminServer.from_config(no_client, status) is None


@contextlib.contextmanager
def admin_in_thread(provider: object) -> Iterator[HostPort]:
    """An AdminServer on its own loop in a thread (the CLI runs its own asyncio.run)."""
    loop = asyncio.new_event_loop()
    srv = AdminServer(provider, HostPort("127.0.0.1", 0), ALL)  # type: ignore[arg-type]
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(srv.start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(srv.close())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        yield srv.address
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


def test_status_cli_against_our_admin_server(capsys: pytest.CaptureFixture[str]) -> None:
    with (
        admin_in_thread(lambda: status(ServerState.LEADING)) as addr,
        admin_in_thread(lambda: status(ServerState.LOOKING)) as addr2,
        refused_address() as gone,
    ):
        assert main(["status", str(addr), str(addr2), str(gone)]) == 1
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[1][:4] == [str(addr), "leader", "0x100000005", "1"]
    assert rows[2][:3] == [str(addr2), "not", "serving"]
    assert rows[3][:4] == [str(gone), "error:", "Connection", "refused"]


# -- against real ZooKeeper 3.8 -----------------------------------------------------------


def _keys(text: str) -> list[str]:
    return [
        line.partition(":")[0] if ": " in line or line.endswith(":") else line.partition("=")[0]
        for line in text.splitlines()
    ]


@pytest.mark.interop
def test_same_shape_as_java(java_mixed: JavaEnsemble) -> None:
    modes = {sid: java_mixed.servers[sid].mode() for sid in JAVA_SIDS}
    leader = next(sid for sid, m in modes.items() if m == "leader")
    follower = next(sid for sid, m in modes.items() if m == "follower")
    java = {sid: java_mixed.servers[sid] for sid in (leader, follower)}
    for sid, state in ((leader, ServerState.LEADING), (follower, ServerState.FOLLOWING)):
        theirs = four_letter_word("127.0.0.1", java[sid].client_port, "srvr")
        ours = render("srvr", status(state), ALL) or ""
        assert _keys(ours) == _keys(theirs)
        assert ours.endswith("\n") and theirs.endswith("\n")
    # conf, for our server 1 of the same ensemble, against Java's server `follower`
    cfg1 = load_config(java_mixed.servers[1].cfg_path)
    theirs = four_letter_word("127.0.0.1", java[follower].client_port, "conf")
    ours = render("conf", status(config=cfg1, my_id=1), ALL) or ""
    t_head, _, t_members = theirs.partition("membership: \n")
    o_head, _, o_members = ours.partition("membership: \n")
    assert _keys(o_head) == _keys(t_head)
    assert sorted(o_members.split("\n")) == sorted(t_members.split("\n"))
    assert not ours.endswith("\n") and not theirs.endswith("\n")
    # mntr: the keys 3.8 leads with, in the same order
    theirs = four_letter_word("127.0.0.1", java[follower].client_port, "mntr")
    ours = render("mntr", status(), ALL) or ""
    assert [line.split("\t")[0] for line in ours.splitlines()[:3]] == [
        line.split("\t")[0] for line in theirs.splitlines()[:3]
    ]


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


def test_node_count_in_srvr_and_mntr() -> None:
    # 3.8 keeps the root twice in its map: a fresh tree shows "Node count: 5" (live).
    assert "Node count: 5\n" in (render("srvr", status(node_count=5), ALL) or "")
    assert "zk_znode_count\t5\n" in (render("mntr", status(node_count=5), ALL) or "")
