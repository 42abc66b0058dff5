"""Quorum TLS on the quorum port: our LeaderServer and LearnerClients on loopback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.tls.certs import Pki
from tests.tls.helpers import REASONS, configs
from zkquorum.runtime.quorum_port import LeaderServer, LearnerClient
from zkquorum.runtime.storage import Storage
from zkquorum.runtime.tls import QuorumTls


def _tls(driver: LeaderServer | LearnerClient) -> QuorumTls:
    assert driver._tls is not None
    return driver._tls


def test_leader_and_learners_over_tls(tmp_path: Path, pki: Pki) -> None:
    cfgs = configs(tmp_path, pki, {1: "good", 2: "good2", 3: "encrypted"})

    async def scenario() -> None:
        async with LeaderServer(cfgs[1], Storage(cfgs[1].data_dir)) as leader:
            l2 = LearnerClient(cfgs[2], Storage(cfgs[2].data_dir), 1)
            l3 = LearnerClient(cfgs[3], Storage(cfgs[3].data_dir), 1)
            async with l2, l3:
                assert await leader.wait_established(10) == 1
                assert await l2.wait_established(10) == 1
                assert await l3.wait_established(10) == 1
                for learner in (l2, l3):
                    assert learner._writer is not None
                    sslobj = learner._writer.get_extra_info("ssl_object")
                    assert sslobj is not None and sslobj.version() == "TLSv1.2"
                assert _tls(leader).counters.handshakes >= 2
                assert _tls(leader).counters.handshake_failures == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("bad", ["wrong-ca", "expired", "wrong-host"])
def test_bad_learner_is_refused(
    tmp_path: Path, pki: Pki, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    cfgs = configs(tmp_path, pki, {1: "good", 2: "good2", 3: bad})

    async def scenario() -> None:
        async with LeaderServer(cfgs[1], Storage(cfgs[1].data_dir)) as leader:
            l2 = LearnerClient(cfgs[2], Storage(cfgs[2].data_dir), 1)
            l3 = LearnerClient(cfgs[3], Storage(cfgs[3].data_dir), 1)
            async with l2, l3:
                assert await leader.wait_established(10) == 1
                with pytest.raises(RuntimeError):
                    await l3.wait_established(10)
                assert not l3.established
                c = _tls(leader).counters
                assert c.handshake_failures + c.identity_refused >= 1
                # the leader only ever saw learner 2 get through the handshake
                assert leader.leader is not None
                assert l2.established

    asyncio.run(scenario())
    assert any(r in caplog.text for r in REASONS[bad]), caplog.text
    if bad == "wrong-host":
        # A certificate for no host of any server line is refused in the handshake,
        # before the learner could name a sid in FOLLOWERINFO.
        assert "is valid for no host of any server line" in caplog.text
        assert "the host of server.3" not in caplog.text


@pytest.mark.parametrize("bad", ["wrong-ca", "expired", "wrong-host"])
def test_learner_refuses_a_bad_leader(
    tmp_path: Path, pki: Pki, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    cfgs = configs(tmp_path, pki, {1: bad, 2: "good"})

    async def scenario() -> None:
        async with (
            LeaderServer(cfgs[1], Storage(cfgs[1].data_dir)) as leader,
            LearnerClient(cfgs[2], Storage(cfgs[2].data_dir), 1) as l2,
        ):
            with pytest.raises(RuntimeError, match="could not connect"):
                await l2.wait_established(10)
            assert _tls(l2).counters.handshake_failures >= 1
            assert not leader.established

    asyncio.run(scenario())
    assert any(r in caplog.text for r in REASONS[bad]), caplog.text


def test_port_unification_on_the_quorum_port(tmp_path: Path, pki: Pki) -> None:
    unified = {"portUnification": "true"}
    cfgs = configs(tmp_path, pki, {1: "good", 2: None, 3: "good2"}, extra={1: unified})

    async def scenario() -> None:
        async with LeaderServer(cfgs[1], Storage(cfgs[1].data_dir)) as leader:
            l2 = LearnerClient(cfgs[2], Storage(cfgs[2].data_dir), 1)  # plaintext
            l3 = LearnerClient(cfgs[3], Storage(cfgs[3].data_dir), 1)  # TLS
            async with l2, l3:
                assert await l2.wait_established(10) == 1
                assert await l3.wait_established(10) == 1
                assert l2._writer is not None and l3._writer is not None
                assert l2._writer.get_extra_info("ssl_object") is None
                assert l3._writer.get_extra_info("ssl_object") is not None
                c = _tls(leader).counters
                assert c.plain_accepted == 1 and c.handshakes == 1

    asyncio.run(scenario())
