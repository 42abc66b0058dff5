"""A zkquorum peer and real ZooKeeper 3.8 servers in one ensemble: votes cross both ways.

These tests need Debian's ``zookeeper`` package: they skip without it, except in CI
(``CI=true``) or with ``ZKQUORUM_REQUIRE_ZK=1``, where they fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.interop.zk import ZooKeeperInstall
from tests.peer.cluster import Ensemble, wait_for

FAST = {"tickTime": "200", "initLimit": "10", "syncLimit": "5", "4lw.commands.whitelist": "*"}


def decided_leader(log: str) -> int | None:
    """The leader of the peer's latest decision (an early one may have been superseded:
    a JVM that starts late can miss the first round, which then fails and re-runs)."""
    found = re.findall(r"decided: leader=(\d+)", log)
    return int(found[-1]) if found else None


def test_java_leader_zkquorum_follower(
    ensembles: Callable[..., Ensemble], zookeeper: ZooKeeperInstall
) -> None:
    # sid order: zkquorum 1 < Java 2 < Java 3: a Java server wins (which one depends on
    # when each JVM is up) and the Java servers connect back to us.
    ens = ensembles(py_sids=[1], java_sids=[2, 3], install=zookeeper, settings=FAST)
    leader = ens.wait_for_leader([2, 3], timeout=40)
    py = ens.py(1)
    wait_for(lambda: py.mode() == "follower", timeout=20, what="zkquorum following")
    assert decided_leader(py.log()) == leader
    assert "FOLLOWING - LEADER ELECTION TOOK" in py.log()


def test_zkquorum_leader_java_followers(
    ensembles: Callable[..., Ensemble], zookeeper: ZooKeeperInstall
) -> None:
    # sid order: Java 1 < Java 2 < zkquorum 3: both Java servers must vote for us.
    ens = ensembles(py_sids=[3], java_sids=[1, 2], install=zookeeper, settings=FAST)
    py = ens.py(3)
    wait_for(lambda: decided_leader(py.log()), timeout=40, what="zkquorum's decision")
    assert decided_leader(py.log()) == 3
    assert "LEADING - LEADER ELECTION TOOK" in py.log()
    for sid in (1, 2):
        wait_for(
            lambda sid=sid: "FOLLOWING - LEADER ELECTION TOOK" in ens.servers[sid].log(),
            timeout=30,
            what=f"Java server {sid} to decide to follow",
        )


def test_mixed_ensemble_establishes_both_ways(
    ensembles: Callable[..., Ensemble], zookeeper: ZooKeeperInstall
) -> None:
    """The full seat: the Java followers complete the quorum-port handshake with our
    leader, and we complete it with a Java leader; srvr reports the modes everywhere."""
    ours = ensembles(py_sids=[3], java_sids=[1, 2], install=zookeeper, settings=FAST)
    assert ours.wait_for_leader(timeout=40) == 3
    assert ours.modes() == {1: "follower", 2: "follower", 3: "leader"}
    # srvr's Node count as 3.8 counts it (the root twice): the same on every server.
    counts = {sid: (s.srvr() or {}).get("Node count") for sid, s in ours.servers.items()}
    assert set(counts.values()) == {"5"}, counts
    theirs = ensembles(py_sids=[1], java_sids=[2, 3], install=zookeeper, settings=FAST)
    leader = theirs.wait_for_leader(timeout=40)
    assert leader in (2, 3)
    assert theirs.servers[1].mode() == "follower"
