"""SIGKILL of a zkquorum leader in the middle of a write workload, Java followers around it.

Java servers 1 and 2 follow the zkquorum peer 3; a kazoo client writes through Java
server 1 (sequential creates, one after another, each acknowledged or not).  The zkquorum
leader is killed mid-way: the Java servers elect a leader among themselves, the client
reconnects to server 1 and goes on.  Then every create the client saw acknowledged is in
the tree, nothing else is (no node the client never got an answer for, except the one
whose answer the kill may have cut off), and the zkquorum peer, restarted on its data
dir, rejoins as a follower with the same tree.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.interop.zkserver import four_letter_word, wait_for
from tests.judges.targets import MIXED_ZKQUORUM_LEADER, RunningTarget

pytestmark = [pytest.mark.interop, pytest.mark.judge]

kazoo_client = pytest.importorskip("kazoo.client")
kazoo_exceptions = pytest.importorskip("kazoo.exceptions")


def test_writes_survive_a_sigkill_of_the_zkquorum_leader(
    judge_target: Callable[..., RunningTarget],
) -> None:
    target = judge_target(MIXED_ZKQUORUM_LEADER)
    ens = target.ens
    zk = kazoo_client.KazooClient(hosts=target.hosts(1), timeout=10, connection_retry=None)
    zk.start(timeout=20)
    acked: list[str] = []
    unknown: list[str] = []
    try:
        zk.create("/w", b"")
        killed_at = None
        deadline = time.monotonic() + 60
        i = 0
        while time.monotonic() < deadline and len(acked) < 400:
            path = f"/w/n{i:05d}"
            i += 1
            try:
                zk.create(path, b"x")
                acked.append(path)
            except (kazoo_exceptions.ConnectionLoss, kazoo_exceptions.SessionExpiredError):
                unknown.append(path)  # the kill cut this one off: it may or may not exist
                wait_for(lambda: zk.connected, timeout=30, what="the client reconnected")
            if len(acked) == 150 and killed_at is None:
                # The Java followers checked every proposal's TxnDigest against their own
                # trees: their mntr counts no mismatch.
                for sid in (1, 2):
                    mntr = four_letter_word("127.0.0.1", ens.servers[sid].client_port, "mntr")
                    assert "zk_digest_mismatches_count\t0\n" in mntr, (sid, mntr)
                killed_at = len(acked)
                ens.servers[3].kill()
        assert killed_at is not None and len(acked) >= 300, (len(acked), unknown)
        new_leader = ens.wait_for_leader([1, 2], timeout=30)
        assert new_leader in (1, 2)
        children = set(zk.get_children("/w"))
        present = {f"/w/{c}" for c in children}
        assert set(acked) <= present, sorted(set(acked) - present)[:5]
        assert present - set(acked) <= set(unknown), sorted(present - set(acked))[:5]
        # The zkquorum peer comes back on its data dir and follows, with the same tree.
        ens.start([3])
        wait_for(lambda: ens.servers[3].mode() == "follower", timeout=30, what="sid 3 follows")
        zxid1 = (ens.servers[1].srvr() or {}).get("Zxid")
        wait_for(
            lambda: (ens.servers[3].srvr() or {}).get("Zxid") == zxid1,
            timeout=20,
            what="sid 3 caught up with the new leader",
        )
    finally:
        zk.stop()
        zk.close()
