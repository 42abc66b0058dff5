"""Quorum TLS on the election port: ConnectionManagers on loopback, good and bad certificates."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.runtime.helpers import notif, run, wait_until
from tests.tls.certs import Pki
from tests.tls.helpers import REASONS, configs
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.runtime.connections import ConnectionManager
from zkquorum.runtime.tls import QuorumTls


def _tls(cm: ConnectionManager) -> QuorumTls:
    tls = cm._tls
    assert tls is not None
    return tls


def _refusals(cm: ConnectionManager) -> int:
    c = _tls(cm).counters
    return c.handshake_failures + c.identity_refused


async def _managers(
    stack: AsyncExitStack, cfgs: dict[int, QuorumConfig]
) -> list[ConnectionManager]:
    out = []
    for cfg in cfgs.values():
        out.append(await stack.enter_async_context(ConnectionManager.from_config(cfg)))
    return out


async def _exchange(cms: Sequence[ConnectionManager]) -> None:
    """Everybody sends to everybody; wait until each got a vote from each other."""
    for cm in cms:
        for other in cms:
            if other is not cm:
                cm.send(other.my_sid, notif(cm.my_sid))
    for cm in cms:
        want = {o.my_sid for o in cms if o is not cm}
        got: set[int] = set()
        async with asyncio.timeout(10):
            while got != want:
                got.add((await cm.receive()).sid)


def test_three_peers_over_tls(tmp_path: Path, pki: Pki) -> None:
    cfgs = configs(tmp_path, pki, {1: "good", 2: "good2", 3: "encrypted"})

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            cms = await _managers(stack, cfgs)
            await _exchange(cms)
            for cm in cms:
                assert len(cm.connected_peers()) == 2
                for sid in cm.connected_peers():
                    w = cm._peers[sid].conn.writer  # type: ignore[union-attr]
                    sslobj = w.get_extra_info("ssl_object")
                    assert sslobj is not None and sslobj.version() == "TLSv1.2"
                    assert sslobj.getpeercert()["subjectAltName"][0] == ("IP Address", "127.0.0.1")
                assert _refusals(cm) == 0 and _tls(cm).counters.handshakes >= 2

    run(scenario)


@pytest.mark.parametrize("bad", ["wrong-ca", "expired", "wrong-host"])
def test_bad_certificate_never_gets_a_vote_in(
    tmp_path: Path, pki: Pki, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    # sid 1 good, sid 2 bad: 1 dials 2 (to make it connect back) and 2 dials 1, so both
    # directions are tried; the good peer must count nothing from 2.
    caplog.set_level(logging.INFO)
    cfgs = configs(tmp_path, pki, {1: "good", 2: bad}, sids=(1, 2, 3))

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            good, evil = await _managers(stack, cfgs)
            good.send(2, notif(1))
            evil.send(1, notif(2))
            # Both directions failed at least once: the dial of each side was refused.
            await wait_until(lambda: _refusals(good) >= 2, timeout=10, what="two refusals")
            await wait_until(lambda: _refusals(evil) >= 1, timeout=10, what="evil's refusal")
            assert good.counters.notifications_received == 0
            assert good.counters.connections_made == 0
            assert good.receive_nowait() is None
            assert 2 not in good.connected_peers()

    run(scenario)
    text = caplog.text
    assert "Quorum TLS: refused" in text
    assert any(r in text for r in REASONS[bad]), text


def test_plain_peer_is_refused_by_a_tls_listener(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    fast = {"ssl.quorum.handshakeDetectionTimeoutMillis": "500"}
    cfgs = configs(tmp_path, pki, {1: "good", 2: None}, sids=(1, 2), extra={1: fast})

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            tls_cm, plain = await _managers(stack, cfgs)
            plain.send(1, notif(2))
            await wait_until(lambda: _refusals(tls_cm) >= 1, timeout=10, what="a refusal")
            assert tls_cm.counters.notifications_received == 0
            assert tls_cm.receive_nowait() is None

    run(scenario)
    assert "refused election connection from 127.0.0.1" in caplog.text


def test_port_unification_accepts_plain_and_tls(tmp_path: Path, pki: Pki) -> None:
    # The rolling switch-over, midway: 1 accepts both (and still dials in plaintext),
    # 2 has not started TLS yet, 3 has.
    cfgs = configs(
        tmp_path,
        pki,
        {1: "good", 2: None, 3: "good2"},
        extra={1: {"sslQuorum": "false", "portUnification": "true"}},
    )

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            one, two, three = await _managers(stack, cfgs)
            two.send(1, notif(2))
            three.send(1, notif(3))
            got: set[int] = set()
            async with asyncio.timeout(10):
                while got != {2, 3}:
                    got.add((await one.receive()).sid)
            c = _tls(one).counters
            assert c.plain_accepted >= 1 and c.handshakes >= 1
            tls_of = {
                sid: one._peers[sid].conn.writer.get_extra_info("ssl_object")  # type: ignore[union-attr]
                for sid in (2, 3)
            }
            assert tls_of[2] is None and tls_of[3] is not None

    run(scenario)


def test_silent_client_does_not_hold_the_listener(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    fast = {"ssl.quorum.handshakeDetectionTimeoutMillis": "300"}
    cfgs = configs(tmp_path, pki, {1: "good", 2: "good2"}, sids=(1, 2), extra={1: fast})

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            one, two = await _managers(stack, cfgs)
            addr = one.listen_addresses[0]
            silent = socket.create_connection((addr.host, addr.port))
            try:
                silent.setblocking(False)
                loop = asyncio.get_running_loop()
                start = loop.time()
                two.send(1, notif(2))  # gets through while the silent one waits
                async with asyncio.timeout(5):
                    assert (await one.receive()).sid == 2
                async with asyncio.timeout(5):
                    data = await loop.sock_recv(silent, 10)  # closed by the listener
                assert data == b""
                assert 0.25 < loop.time() - start < 3
                assert _tls(one).counters.handshake_failures == 1
            finally:
                silent.close()

    run(scenario)
    assert "handshake timed out" in caplog.text


def test_reloaded_certificate_used_without_restart(tmp_path: Path, pki: Pki) -> None:
    ks = tmp_path / "ks1.pem"
    shutil.copy(pki.keystore("expired"), ks)
    extra = {
        1: {"sslQuorumReloadCertFiles": "true", "ssl.quorum.keyStore.location": str(ks)},
    }
    cfgs = configs(tmp_path, pki, {1: "good", 2: "good2"}, sids=(1, 2), extra=extra)

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            one, two = await _managers(stack, cfgs)
            two.send(1, notif(2))
            await wait_until(lambda: _refusals(two) >= 1, timeout=10, what="expired refused")
            assert one.counters.notifications_received == 0
            shutil.copy(pki.keystore("good"), ks)  # new certificate, same file
            await wait_until(
                lambda: two.send(1, notif(2)) or one.counters.notifications_received > 0,
                timeout=15,
                what="a vote over the new certificate",
            )
            assert _tls(one).counters.context_reloads == 1

    run(scenario)


def test_close_during_a_handshake_leaves_nothing_behind(tmp_path: Path, pki: Pki) -> None:
    cfgs = configs(tmp_path, pki, {1: "good"}, sids=(1, 2))

    async def scenario() -> None:
        cm = ConnectionManager.from_config(cfgs[1])
        await cm.start()
        addr = cm.listen_addresses[0]
        silent = socket.create_connection((addr.host, addr.port))
        try:
            await wait_until(
                # the accept loop and the handshake
                lambda: any(len(s._tasks) >= 2 for s in cm._servers),  # type: ignore[union-attr]
                what="the handshake task",
            )
            start = asyncio.get_running_loop().time()
            await cm.close()  # run() checks that no task or descriptor is left
            assert asyncio.get_running_loop().time() - start < 1
        finally:
            silent.close()

    run(scenario)
