"""Clients on an observer: a zkquorum observer of zkquorum or Java participants, and a
Java observer of a zkquorum leader.  The observer forwards its clients' writes and new
sessions to the leader, applies what the leader INFORMs it of, answers reads itself, and
fires its clients' watches on changes made through other servers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.interop.zk import require_zookeeper
from tests.interop.zkserver import four_letter_word, wait_for
from tests.judges.targets import JUDGE_SETTINGS
from tests.peer.cluster import ensemble
from zkquorum.config.model import HostPort
from zkquorum.runtime.zkclient import EPHEMERAL, Client
from zkquorum.wire.client_records import EventType

pytestmark = [pytest.mark.interop, pytest.mark.judge]

CASES = {
    "zkquorum-3+zkquorum-observer": ((1, 2, 3, 4), ()),
    "java-3+zkquorum-observer": ((4,), (1, 2, 3)),
    "zkquorum-3+java-observer": ((1, 2, 3), (4,)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_client_of_an_observer_writes_reads_and_is_notified(tmp_path: Path, case: str) -> None:
    py_sids, java_sids = CASES[case]
    install = require_zookeeper() if java_sids else None
    with ensemble(
        tmp_path / "ens",
        py_sids=py_sids,
        java_sids=java_sids,
        observers=(4,),
        install=install,
        settings=JUDGE_SETTINGS,
    ) as ens:
        ens.wait_for_leader([1, 2, 3], timeout=60)
        port = {sid: s.client_port for sid, s in ens.servers.items()}

        def observing() -> bool:
            try:
                return "Mode: observer" in four_letter_word("127.0.0.1", port[4], "srvr")
            except OSError:
                return False

        wait_for(observing, timeout=60, what="server 4 serving as an observer")

        async def scenario() -> None:
            on_observer = Client([HostPort("127.0.0.1", port[4])], timeout_ms=4_000)
            on_voter = Client([HostPort("127.0.0.1", port[1])], timeout_ms=4_000)
            await on_observer.start()
            await on_voter.start()
            try:
                await on_observer.create("/obs", b"one")
                await on_observer.create("/obs/eph", b"", EPHEMERAL)
                await on_voter.sync("/obs")
                assert (await on_voter.get("/obs"))[0] == b"one"
                data, _ = await on_observer.get("/obs", watch=True)
                assert data == b"one"
                await on_voter.set("/obs", b"two")
                event = await asyncio.wait_for(on_observer.events.get(), 15)
                assert (event.type, event.path) == (EventType.NODE_DATA_CHANGED, "/obs")
                assert (await on_observer.get("/obs"))[0] == b"two"
                await on_observer.set("/obs", b"three")  # forwarded, committed, answered
                await on_voter.sync("/obs")
                assert (await on_voter.get("/obs"))[0] == b"three"
                await on_observer.close()
                await on_voter.sync("/obs")
                assert not await on_voter.exists("/obs/eph")
            finally:
                await on_observer.close()
                await on_voter.close()

        asyncio.run(scenario())
