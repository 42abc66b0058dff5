"""Whole zkquorum peers with quorum TLS: election and quorum port, good and bad certificates.

In-process :class:`PeerRuntime` s (one event loop), so that the refusals can be read from
the counters instead of waited out."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.runtime.helpers import wait_until
from tests.tls.certs import Pki
from tests.tls.helpers import REASONS, configs
from zkquorum.runtime.peer import PeerRuntime
from zkquorum.wire.election import ServerState


def _refusals(peer: PeerRuntime) -> int:
    assert peer.tls is not None
    c = peer.tls.counters
    return c.handshake_failures + c.identity_refused


@pytest.mark.parametrize("bad", ["wrong-ca", "expired", "wrong-host"])
def test_bad_peer_gets_no_vote_counted(
    tmp_path: Path, pki: Pki, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    cfgs = configs(tmp_path, pki, {1: "good", 2: "good2", 3: bad})

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            one = await stack.enter_async_context(PeerRuntime(cfgs[1]))
            three = await stack.enter_async_context(PeerRuntime(cfgs[3]))
            # 1 and 3 are a quorum of 3, if 3's votes counted.  Wait until 1 refused 3
            # in both directions (each side dialled the other), then look.
            await wait_until(lambda: _refusals(one) >= 2, timeout=15, what="refusals")
            assert one.leadership.role is ServerState.LOOKING
            assert three.leadership.role is ServerState.LOOKING
            assert one.cm.counters.notifications_received == 0
            assert one.cm.counters.connections_made == 0
            # A good peer arrives: 1 and 2 elect and establish over TLS, 3 stays out.
            two = await stack.enter_async_context(PeerRuntime(cfgs[2]))
            await wait_until(
                lambda: one.leadership.established and two.leadership.established,
                timeout=20,
                what="1 and 2 established",
            )
            assert {one.leadership.leader, two.leadership.leader} == {2}
            assert 3 not in one.cm.connected_peers() and 3 not in two.cm.connected_peers()
            assert three.leadership.role is ServerState.LOOKING
            assert two.tls is not None and two.tls.counters.handshakes >= 2  # both ports
            assert two.cm is not None and two.cm._tls is two.tls  # one instance per peer

    asyncio.run(scenario())
    assert any(r in caplog.text for r in REASONS[bad]), caplog.text
