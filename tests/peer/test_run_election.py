"""``zkquorum run`` as real processes on loopback: elections between zkquorum peers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.peer.cluster import Ensemble, wait_for

FAST = {"tickTime": "200", "initLimit": "10", "syncLimit": "5", "4lw.commands.whitelist": "*"}


@pytest.mark.parametrize("n", [3, 5, 7])
def test_peers_started_together_elect_one_leader(
    ensembles: Callable[..., Ensemble], n: int
) -> None:
    ens = ensembles(py_sids=range(1, n + 1), settings=FAST)
    leader = ens.wait_for_leader(timeout=30)
    # With equal zxids and epochs the largest sid wins (totalOrderPredicate) when every
    # peer is up before the round ends; under load a quorum may finish without it.
    assert leader in ens.servers
    modes = ens.modes()
    assert sorted(m or "" for m in modes.values()) == sorted(["leader"] + ["follower"] * (n - 1))
    for sid in ens.servers:
        times = ens.py(sid).election_times_ms()
        assert len(times) == 1, ens.py(sid).log()


def test_peers_started_one_by_one_in_any_order_elect(ensembles: Callable[..., Ensemble]) -> None:
    ens = ensembles(py_sids=range(1, 6), settings=FAST, start=False)
    order = [4, 1, 5, 2, 3]
    ens.start(order[:1])
    for k in range(2, 6):
        ens.start([order[k - 1]])
        if k >= 3:
            ens.wait_for_leader(order[:k], timeout=30)
    assert ens.wait_for_leader(timeout=30) in order


def test_restarted_peer_rejoins_without_a_new_election(ensembles: Callable[..., Ensemble]) -> None:
    ens = ensembles(py_sids=range(1, 4), settings=FAST)
    leader = ens.wait_for_leader(timeout=30)
    follower = next(s for s in ens.servers if s != leader)
    others = [s for s in ens.servers if s != follower]
    ens.servers[follower].stop()
    ens.start([follower])
    assert ens.wait_for_leader(timeout=30) == leader
    # The others answered the restarted peer from outside LOOKING (the out-of-election
    # path): neither of them ran a second election.
    for sid in others:
        assert len(ens.py(sid).election_times_ms()) == 1, ens.py(sid).log()
    assert ens.servers[follower].mode() == "follower"


def test_observer_learns_the_leader_and_never_votes(ensembles: Callable[..., Ensemble]) -> None:
    ens = ensembles(py_sids=[1, 2, 3, 9], observers=[9], settings=FAST)
    leader = ens.wait_for_leader(timeout=30)
    assert leader == 3  # sid 9 is the largest, but an observer never wins
    wait_for(lambda: ens.servers[9].mode() == "observer", timeout=20, what="observer mode")
    assert "OBSERVING - LEADER ELECTION TOOK" in ens.py(9).log()


def test_shutdown_on_sigterm_exits_zero(ensembles: Callable[..., Ensemble]) -> None:
    ens = ensembles(py_sids=range(1, 4), settings=FAST)
    ens.wait_for_leader(timeout=30)
    for sid in ens.servers:
        assert ens.servers[sid].stop() == 0, ens.py(sid).log()
