"""The connection manager between real sockets on loopback (spec sections 1 to 3, 7, 8)."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

import pytest

from tests.runtime.helpers import (
    blackhole,
    managers,
    notif,
    refused_address,
    run,
    wait_until,
    within,
)
from zkquorum.config.model import HostPort
from zkquorum.config.zoocfg import parse_zoo_cfg
from zkquorum.runtime.connections import (
    BindError,
    ConnectionManager,
    ManagerClosed,
    PeerConnected,
    PeerLost,
    Received,
    advertised_addresses,
    listen_addresses,
    tcp_dial,
)
from zkquorum.wire.election import (
    PROTOCOL_VERSION_V1,
    PROTOCOL_VERSION_V2,
    DroppedNotification,
    ElectionConnectionDecoder,
    InitialMessage,
    ServerState,
    decode_notification_frame,
    encode_initial_message,
    encode_notification_frame,
)


def _mirror(a: ConnectionManager, b: ConnectionManager) -> bool:
    """``a`` and ``b`` hold exactly the two ends of the same TCP connection."""
    sa, sb = a.connection_sockets(b.my_sid), b.connection_sockets(a.my_sid)
    return sa is not None and sb is not None and sa == (sb[1], sb[0])


# -- the larger-sid rule ----------------------------------------------------------------


def test_smaller_sid_dials_larger_connects_back_and_keeps_it() -> None:
    async def main() -> None:
        async with managers([1, 2]) as (cm, ev):
            cm[1].send(2, notif(1))  # 1 < 2: 1 dials, 2 drops it and connects back
            got = await within(cm[2].receive())
            assert got == Received(1, notif(1))
            await wait_until(lambda: _mirror(cm[1], cm[2]), what="one connection")
            assert ev[2].items == [PeerConnected(1, str(cm[1].listen_addresses[0]), True)]
            assert [type(e) for e in ev[1].items] == [PeerConnected]
            assert ev[1].items[0].outgoing is False  # type: ignore[union-attr]
            cm[2].send(1, notif(2))
            assert await within(cm[1].receive()) == Received(2, notif(2))
            assert cm[1].counters.connections_made == cm[2].counters.connections_made == 1
            assert cm[1].counters.notifications_sent == 1
            assert cm[1].counters.notifications_received == 1
            assert cm[1].counters.bad_connections_refused == 0

    run(main)


def test_larger_sid_connection_is_kept() -> None:
    async def main() -> None:
        async with managers([1, 2]) as (cm, _ev):
            cm[2].send(1, notif(2))
            assert await within(cm[1].receive()) == Received(2, notif(2))
            assert cm[2].connection_info(1) == PeerConnected(
                1, str(cm[1].listen_addresses[0]), True
            )
            assert cm[1].connection_info(2) is not None
            assert cm[1].connection_info(2).outgoing is False  # type: ignore[union-attr]
            assert cm[2].counters.connections_made == 1

    run(main)


@pytest.mark.parametrize("round_", range(4))
def test_both_sides_connect_at_once_converge_on_one_connection(round_: int) -> None:
    async def main() -> None:
        async with managers([1, 2, 3]) as (cm, _ev):
            for a in cm:
                for b in cm:
                    if a != b:
                        cm[a].send(b, notif(a))
            for sid in cm:
                # duplicates are allowed: a replaced connection resends lastMessageSent
                got: set[int] = set()
                while got != set(cm) - {sid}:
                    r = await within(cm[sid].receive())
                    assert r == Received(r.sid, notif(r.sid))
                    got.add(r.sid)
            for a, b in ((1, 2), (1, 3), (2, 3)):
                await wait_until(
                    lambda a=a, b=b: _mirror(cm[a], cm[b]), what=f"one connection {a}-{b}"
                )
                # the survivor is always the one the larger sid opened
                assert cm[b].connection_info(a).outgoing  # type: ignore[union-attr]

    run(main)


def test_incoming_from_smaller_sid_tears_down_existing_and_connects_back() -> None:
    async def main() -> None:
        async with managers([1, 2]) as (cm, ev):
            cm[2].send(1, notif(2))
            await within(cm[1].receive())
            first = cm[2].connection_sockets(1)
            # sid 1 "lost" its side (3.8: a handshake from it means it has no connection)
            reader, writer = await tcp_dial(cm[2].listen_addresses[0], 1)
            writer.write(
                encode_initial_message(
                    InitialMessage(PROTOCOL_VERSION_V1, 1, (str(cm[1].listen_addresses[0]),))
                )
            )
            assert await within(reader.read()) == b""  # 2 closes it without a word
            writer.close()
            await wait_until(
                lambda: cm[2].connection_sockets(1) not in (None, first),
                what="a new connection from 2",
            )
            await wait_until(lambda: _mirror(cm[1], cm[2]), what="one connection")
            assert any(isinstance(e, PeerLost) for e in ev[2].items)

    run(main)


# -- send slot and resend ---------------------------------------------------------------


def test_send_slot_keeps_only_the_newest_unsent_notification() -> None:
    gate = asyncio.Event()

    async def gated_dial(
        addr: HostPort, timeout: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        await gate.wait()
        return await tcp_dial(addr, timeout)

    async def main() -> None:
        async with managers([1, 2], dial=gated_dial) as (cm, _ev):
            for epoch in (1, 2, 3):
                cm[2].send(1, notif(2, epoch=epoch))
            assert not cm[2].have_delivered()
            gate.set()
            assert await within(cm[1].receive()) == Received(2, notif(2, epoch=3))
            await wait_until(cm[2].have_delivered, what="slot empty")
            cm[2].send(1, notif(2, epoch=4))
            assert await within(cm[1].receive()) == Received(2, notif(2, epoch=4))
            assert cm[2].counters.notifications_sent == 2

    run(main)


def test_last_message_resent_when_a_new_connection_comes_up() -> None:
    async def main() -> None:
        async with managers([1, 2]) as (cm, ev):
            cm[2].send(1, notif(2, epoch=7))
            assert await within(cm[1].receive()) == Received(2, notif(2, epoch=7))
            assert cm[1].drop(2)
            await wait_until(
                lambda: any(isinstance(e, PeerLost) for e in ev[2].items), what="2 sees the loss"
            )
            # Nothing new queued: the new connection resends lastMessageSent.
            cm[2].connect_one(1)
            assert await within(cm[1].receive()) == Received(2, notif(2, epoch=7))
            # Something queued: only that is sent, not the last one again (SendWorker.run).
            assert cm[1].drop(2)
            await wait_until(lambda: cm[2].connection_info(1) is None, what="loss")
            cm[2].send(1, notif(2, epoch=8))
            assert await within(cm[1].receive()) == Received(2, notif(2, epoch=8))
            await asyncio.sleep(0.05)  # room for a wrong extra frame to show up
            assert cm[1].receive_nowait() is None
            assert cm[2].counters.notifications_sent == 3

    run(main)


def test_sending_to_myself_loops_back_without_a_socket() -> None:
    async def main() -> None:
        async with managers([4]) as (cm, _ev):
            cm[4].send(4, notif(4))
            assert cm[4].receive_nowait() == Received(4, notif(4))
            assert cm[4].connected_peers() == frozenset()
            assert cm[4].counters.notifications_sent == 0

    run(main)


def test_receive_queue_keeps_the_newest_hundred() -> None:
    async def main() -> None:
        async with managers([1]) as (cm, _ev):
            for epoch in range(150):
                cm[1].send(1, notif(1, epoch=epoch))
            got = []
            while (r := cm[1].receive_nowait()) is not None:
                got.append(r.message.election_epoch)  # type: ignore[union-attr]
            assert got == list(range(50, 150))
            assert cm[1].counters.recv_queue_overflows == 50

    run(main)


# -- slow and dead peers ----------------------------------------------------------------


def test_blackholed_peer_does_not_delay_votes_to_others() -> None:
    async def main() -> None:
        with blackhole() as dead:
            async with managers([1, 2], extra_members={3: [dead]}, cnx_timeout=5.0) as (cm, _):
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                cm[2].send(3, notif(2))  # this connect hangs for cnx_timeout
                cm[2].send(1, notif(2))
                assert await within(cm[1].receive(), 2.0) == Received(2, notif(2))
                elapsed = loop.time() - t0
                assert elapsed < 0.5, f"vote to 1 took {elapsed:.3f} s"
                assert cm[2].connection_info(3) is None  # still connecting
            # closing with the connect to 3 still pending leaves nothing behind (run())

    run(main)


def test_connect_timeout_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        with blackhole() as dead:
            async with managers([2], extra_members={1: [dead]}, cnx_timeout=0.2) as (cm, _):
                cm[2].send(1, notif(2))
                await wait_until(lambda: cm[2].counters.connect_failures == 1, what="failure")

    with caplog.at_level(logging.WARNING, "zkquorum.runtime.connections"):
        run(main)
    assert any(
        "Cannot open channel to 1" in r.getMessage() and "timed out" in r.getMessage()
        for r in caplog.records
    )


# -- bad input --------------------------------------------------------------------------


async def _raw(addr: HostPort, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection and return what comes back before EOF."""
    reader, writer = await tcp_dial(addr, 1)
    try:
        writer.write(data)
        return await within(reader.read())
    finally:
        writer.close()
        await writer.wait_closed()


def test_garbage_closes_only_that_connection(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        # sids 5 and 9 are members (never dialled: larger), so their frames get decoded
        nowhere = [HostPort("127.0.0.1", 1)]
        async with managers([1, 2], extra_members={5: nowhere, 9: nowhere}) as (cm, _ev):
            listen = cm[1].listen_addresses[0]
            cm[2].send(1, notif(2, epoch=1))
            assert (await within(cm[1].receive())).message == notif(2, epoch=1)
            handshake = encode_initial_message(
                InitialMessage(PROTOCOL_VERSION_V1, 9, ("127.0.0.1:1",))
            )
            garbage = [
                struct.pack(">q", -1) + b"junk",  # unknown protocol version
                b"GET / HTTP/1.1\r\n\r\n",  # a positive long: an old-style sid! bad frame
                struct.pack(">qqi", PROTOCOL_VERSION_V1, 9, 2049),  # address too long
                encode_initial_message(InitialMessage(PROTOCOL_VERSION_V1, 9, ("127.0.0.1:1",)))[
                    :-1
                ]
                + b"x",  # port
                handshake + struct.pack(">i", 600_000),  # oversize frame
                handshake + struct.pack(">i", -20),  # CnxManagerTest testCnxManagerSpinLock
            ]
            for i, data in enumerate(garbage):
                assert await _raw(listen, data) == b""
                # the real exchange goes on between two pieces of garbage
                cm[2].send(1, notif(2, epoch=10 + i))
                assert (await within(cm[1].receive())).message == notif(2, epoch=10 + i)
            await wait_until(
                lambda: cm[1].counters.bad_connections_refused == len(garbage),
                what="every bad connection counted",
            )
            # 2 and the two sid-9 handshakes; the "GET / HT" sid is not a member: refused
            assert cm[1].counters.connections_made == 3
            assert cm[1].counters.unknown_sids_refused == 1
            # the listener still accepts: a new peer gets through
            _reader, writer = await tcp_dial(listen, 1)
            writer.write(
                encode_initial_message(InitialMessage(None, 5))
                + encode_notification_frame(notif(5))
            )
            assert await within(cm[1].receive()) == Received(5, notif(5))
            writer.close()
            await writer.wait_closed()

    with caplog.at_level(logging.WARNING, "zkquorum.runtime.connections"):
        run(main)
    bad = [m for r in caplog.records if "Closing election connection" in (m := r.getMessage())]
    assert len(bad) == 6
    assert "127.0.0.1:" in bad[0] and "unrecognized protocol version -1" in bad[0]
    assert "sid 5135603447292250196 is not in the configuration" in bad[1]
    assert "unreasonable address length 2049" in bad[2]
    assert "sid 9" in bad[4] and "unreasonable frame length 600000" in bad[4]


def test_short_notification_is_queued_as_dropped_and_keeps_the_connection() -> None:
    async def main() -> None:
        async with managers([1], extra_members={5: [HostPort("127.0.0.1", 1)]}) as (cm, _ev):
            _reader, writer = await tcp_dial(cm[1].listen_addresses[0], 1)
            writer.write(
                encode_initial_message(InitialMessage(None, 5))
                + struct.pack(">i", 12)
                + bytes(12)
                + encode_notification_frame(notif(5))
            )
            first = await within(cm[1].receive())
            assert first.sid == 5 and isinstance(first.message, DroppedNotification)
            assert await within(cm[1].receive()) == Received(5, notif(5))
            assert cm[1].counters.notifications_dropped == 1
            assert cm[1].counters.bad_connections_refused == 0
            writer.close()
            await writer.wait_closed()

    run(main)


def test_silent_client_is_closed_after_the_handshake_timeout() -> None:
    async def main() -> None:
        async with managers([1], handshake_timeout=0.2) as (cm, _ev):
            reader, writer = await tcp_dial(cm[1].listen_addresses[0], 1)
            assert await within(reader.read(), 2.0) == b""
            assert cm[1].counters.bad_connections_refused == 1
            writer.close()
            await writer.wait_closed()

    run(main)


# -- handshakes -------------------------------------------------------------------------


async def _capture_handshake(cm: ConnectionManager, fake_sid: int) -> tuple[InitialMessage, bytes]:
    """Play a peer with ``fake_sid`` that is smaller than ``cm``'s: ``cm`` dials it."""
    got: asyncio.Future[tuple[InitialMessage, bytes]] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read(4096)
        dec = ElectionConnectionDecoder(initial=True)
        dec.receive_data(data)
        msg = dec.next_message()
        assert isinstance(msg, InitialMessage)
        if not got.done():
            got.set_result((msg, data))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        cm.set_members({cm.my_sid: cm.listen_addresses, fake_sid: [HostPort("127.0.0.1", port)]})
        cm.send(fake_sid, notif(cm.my_sid))
        return await within(got)
    finally:
        server.close()
        await server.wait_closed()


def test_v1_handshake_in_one_write_with_the_advertised_address() -> None:
    async def main() -> None:
        async with managers([5]) as (cm, _ev):
            msg, data = await _capture_handshake(cm[5], 1)
            assert msg == InitialMessage(PROTOCOL_VERSION_V1, 5, (str(cm[5].listen_addresses[0]),))
            hs = encode_initial_message(msg)
            assert data[: len(hs)] == hs
            assert decode_notification_frame(data[len(hs) :]) == notif(5)  # sent right after

    run(main)


def test_v2_handshake_with_every_address_when_multi_address_is_enabled() -> None:
    async def main() -> None:
        async with managers([5], hosts={5: ["127.0.0.1", "127.0.0.2"]}, multi_address=True) as (
            cm,
            _ev,
        ):
            msg, _ = await _capture_handshake(cm[5], 1)
            assert msg.protocol_version == PROTOCOL_VERSION_V2
            assert msg.addresses == tuple(map(str, cm[5].listen_addresses))
            assert [a.host for a in cm[5].listen_addresses] == ["127.0.0.1", "127.0.0.2"]

    run(main)


def test_connect_back_goes_to_the_advertised_address() -> None:
    async def main() -> None:
        async with managers([5], extra_members={3: [HostPort("127.0.0.1", 1)]}) as (cm, _ev):
            got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                if not got.done():
                    got.set_result(await reader.read(4096))
                writer.close()

            server = await asyncio.start_server(handle, "127.0.0.2", 0)
            try:
                port = server.sockets[0].getsockname()[1]
                # sid 3 is smaller: 5 connects back where 3 says it listens, not to the
                # configured address
                assert (
                    await _raw(
                        cm[5].listen_addresses[0],
                        encode_initial_message(
                            InitialMessage(
                                PROTOCOL_VERSION_V2, 3, ("0.0.0.0:9", f"127.0.0.2:{port}")
                            )
                        ),
                    )
                    == b""
                )
                data = await within(got)
                assert data == encode_initial_message(
                    InitialMessage(PROTOCOL_VERSION_V1, 5, (str(cm[5].listen_addresses[0]),))
                )
            finally:
                server.close()
                await server.wait_closed()

    run(main)


def test_sid_not_in_the_configuration_is_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Who may vote (issue 9): 3.8 accepts any sid; we close, log and count a stranger,
    smaller (no connect-back to where it says it listens) or larger (no registration)."""

    async def main() -> None:
        async with managers([5]) as (cm, _ev):
            dialled: list[bytes] = []

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                dialled.append(await reader.read(4096))
                writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            try:
                port = server.sockets[0].getsockname()[1]
                for sid in (3, 7):
                    hs = InitialMessage(PROTOCOL_VERSION_V1, sid, (f"127.0.0.1:{port}",))
                    data = encode_initial_message(hs) + encode_notification_frame(notif(sid))
                    assert await _raw(cm[5].listen_addresses[0], data) == b""
                await wait_until(
                    lambda: cm[5].counters.unknown_sids_refused == 2, what="both refused"
                )
                assert cm[5].counters.bad_connections_refused == 2
                assert cm[5].counters.connections_made == 0
                assert cm[5].connected_peers() == frozenset()
                assert cm[5].receive_nowait() is None  # no vote reached the election
                assert set(cm[5]._peers) == {5}  # no table entry, no connect task
                assert dialled == []
            finally:
                server.close()
                await server.wait_closed()

    with caplog.at_level(logging.WARNING, "zkquorum.runtime.connections"):
        run(main)
    refused = [m for r in caplog.records if "not in the configuration" in (m := r.getMessage())]
    assert len(refused) == 2 and "(sid 3)" in refused[0] and "(sid 7)" in refused[1]


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="Linux only")
def test_election_sockets_give_up_on_a_dead_network_after_the_socket_timeout() -> None:
    """TCP_USER_TIMEOUT and keepalive = socketTimeout on both ends (issue 9): a network
    that fails silently ends the connection instead of holding it for ~15 minutes
    (tests/chaos/test_netns.py shows the failover this enables)."""

    async def main() -> None:
        async with managers([1, 2], handshake_timeout=0.7) as (cm, _ev):
            cm[1].send(2, notif(1))
            await within(cm[2].receive())
            for me, other in ((1, 2), (2, 1)):
                conn = cm[me]._peers[other].conn
                assert conn is not None
                sock = conn.writer.get_extra_info("socket")
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 700
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 1

    run(main)


def test_connection_claiming_our_own_sid_is_closed() -> None:
    async def main() -> None:
        async with managers([5]) as (cm, _ev):
            data = encode_initial_message(InitialMessage(PROTOCOL_VERSION_V1, 5, ("127.0.0.1:9",)))
            assert await _raw(cm[5].listen_addresses[0], data) == b""
            assert cm[5].connected_peers() == frozenset()

    run(main)


def test_advertised_addresses_never_contain_a_wildcard() -> None:
    own = (HostPort("0.0.0.0", 3888), HostPort("10.0.0.1", 3889))
    assert advertised_addresses(own, "127.0.0.5") == (
        HostPort("127.0.0.5", 3888),
        HostPort("10.0.0.1", 3889),
    )
    assert advertised_addresses(own, None) == (HostPort("10.0.0.1", 3889),)
    assert advertised_addresses((HostPort("::", 1),), "::1") == (HostPort("::1", 1),)


def test_listen_addresses_with_quorum_listen_on_all_ips() -> None:
    own = (HostPort("10.0.0.1", 3888), HostPort("10.0.1.1", 3888), HostPort("fe80::1", 3889))
    assert listen_addresses(own, False) == own
    assert listen_addresses(own, True) == (HostPort("0.0.0.0", 3888), HostPort("::", 3889))


# -- binding ----------------------------------------------------------------------------


def test_bind_failure_raises_a_clear_error_after_the_retries() -> None:
    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            addr = HostPort("127.0.0.1", taken.getsockname()[1])
            cm = ConnectionManager(1, [addr], {}, bind_retry=2, bind_retry_interval=0.01)
            with pytest.raises(BindError) as info:
                await cm.start()
            assert cm.closed
            assert info.value.attempts == 2
            assert str(info.value) == (
                f"cannot bind election address {addr}: Address already in use (2 attempts)"
            )

    run(main)


def test_bind_retries_until_the_port_is_free(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = HostPort("127.0.0.1", taken.getsockname()[1])
        try:
            cm = ConnectionManager(1, [addr], {}, bind_retry=0, bind_retry_interval=0.05)
            start = asyncio.ensure_future(cm.start())
            await wait_until(
                lambda: any("Cannot bind" in r.getMessage() for r in caplog.records),
                what="a failed bind attempt",
            )
            taken.close()
            await within(start)
            assert cm.listen_addresses == (addr,)
            await cm.close()
        finally:
            taken.close()

    with caplog.at_level(logging.WARNING, "zkquorum.runtime.connections"):
        run(main)


def test_from_config() -> None:
    cfg = parse_zoo_cfg(
        "tickTime=100\nsyncLimit=4\ncnxTimeout=1500\nelectionPortBindRetry=7\ndataDir=/nonexistent\n"
        "initLimit=10\n"
        "server.1=127.0.0.1:2001:3001\nserver.2=127.0.0.1:2002:3002\n"
        "server.3=127.0.0.1:2003:3003:observer\n",
        path="zoo.cfg",
        myid_text="2\n",
    )
    cm = ConnectionManager.from_config(cfg)
    assert cm.my_sid == 2
    assert cm.advertised_addresses == (HostPort("127.0.0.1", 3002),)
    assert cm._cnx_timeout == 1.5
    assert cm._handshake_timeout == 0.4
    assert cm._bind_retry == 7
    assert sorted(cm._peers) == [1, 2, 3]


# -- multi-address ----------------------------------------------------------------------


def test_multi_address_skips_a_dead_address_quickly() -> None:
    async def main() -> None:
        with blackhole("127.0.0.2") as dead:
            async with managers([1, 2], cnx_timeout=5.0, happy_eyeballs_delay=0.05) as (cm, ev):
                cm[2].set_members({1: [dead, cm[1].listen_addresses[0]], 2: cm[2].listen_addresses})
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                cm[2].send(1, notif(2))
                assert await within(cm[1].receive(), 2.0) == Received(2, notif(2))
                assert loop.time() - t0 < 1.0
                assert ev[2].items == [PeerConnected(1, str(cm[1].listen_addresses[0]), True)]

    run(main)


def test_multi_address_next_connection_prefers_another_address() -> None:
    async def main() -> None:
        async with managers([1, 2], hosts={1: ["127.0.0.1", "127.0.0.2"]}, multi_address=True) as (
            cm,
            ev,
        ):
            a1, a2 = cm[1].listen_addresses
            cm[2].send(1, notif(2))
            await within(cm[1].receive())
            assert cm[2].connection_info(1) == PeerConnected(1, str(a1), True)
            cm[1].drop(2)  # the connection over a1 dies
            await wait_until(lambda: cm[2].connection_info(1) is None, what="loss")
            cm[2].send(1, notif(2, epoch=2))
            await within(cm[1].receive())
            assert cm[2].connection_info(1) == PeerConnected(1, str(a2), True)
            assert [e.address for e in ev[2].items if isinstance(e, PeerConnected)] == [
                str(a1),
                str(a2),
            ]

    run(main)


def test_refused_address_is_demoted_for_the_next_connect() -> None:
    async def main() -> None:
        with refused_address("127.0.0.3") as gone:
            async with managers([1, 2]) as (cm, _ev):
                good = cm[1].listen_addresses[0]
                cm[2].set_members({1: [gone, good], 2: cm[2].listen_addresses})
                cm[2].send(1, notif(2))
                await within(cm[1].receive())
                assert cm[2].connection_info(1) == PeerConnected(1, str(good), True)
                assert cm[2]._peers[1].targets(False) == (good, gone)

    run(main)


# -- shutdown ---------------------------------------------------------------------------


def test_close_with_live_connections_and_pending_work_leaves_nothing() -> None:
    async def main() -> None:
        with blackhole() as dead:
            async with managers([1, 2, 3], extra_members={4: [dead]}) as (cm, _ev):
                for a in cm:
                    for b in (1, 2, 3, 4):
                        cm[a].send(b, notif(a))
                await wait_until(
                    lambda: all(len(m.connected_peers()) == 2 for m in cm.values()),
                    what="full mesh",
                )
        for m in cm.values():
            assert m.closed and m.connected_peers() == frozenset()
            while m.receive_nowait() is not None:
                pass
            with pytest.raises(ManagerClosed):
                await m.receive()

    run(main)


def test_decode_roundtrip_sanity() -> None:
    frame = encode_notification_frame(notif(3, state=ServerState.FOLLOWING))
    assert decode_notification_frame(frame) == notif(3, state=ServerState.FOLLOWING)


def test_the_leak_check_can_fail() -> None:
    kept: list[object] = []

    async def leaks_a_socket() -> None:
        kept.append(socket.socket())

    async def leaks_a_task() -> None:
        kept.append(asyncio.ensure_future(asyncio.sleep(10)))

    with pytest.raises(AssertionError, match="file descriptors leaked"):
        run(leaks_a_socket)
    with pytest.raises(AssertionError, match="tasks left running"):
        run(leaks_a_task)
    kept[0].close()  # type: ignore[attr-defined]
