"""Issue 7, scenarios 1-3 (and 7): a zkquorum peer in any seat of a real ZooKeeper 3.8
ensemble, and a real ZooKeeper server in any seat of a zkquorum ensemble.

Each asserts that everyone agrees on one leader and one epoch (``currentEpoch`` files,
the leader's ``srvr`` Zxid, zkquorum's ``established`` line), that ``srvr`` reports the
right mode on every server, that the ensemble then stays put (no new election) through a
window of heartbeats (``ZKQUORUM_STABLE_SECONDS``; unset: 30 s for the representative
scenario, a zkquorum leader with two Java followers, and 10 s for the others -- see
:mod:`tests.interop.mixed`), and that no Java server adopted another membership.

Needs Debian's ``zookeeper`` package: skipped without it locally, failed in CI
(``CI=true`` or ``ZKQUORUM_REQUIRE_ZK=1``).
"""

from __future__ import annotations

import pytest

from tests.interop.mixed import (
    Mixed,
    MixedFactory,
    mixed_fixture,  # noqa: F401  (the ``mixed`` fixture)
    stable_seconds,
)

pytestmark = pytest.mark.interop


def _hold(
    m: Mixed, *, leader_in: list[int], observers: tuple[int, ...] = (), long: bool = False
) -> None:
    agreement = m.settle(leader_in=leader_in, observers=observers)
    m.assert_java_config_unchanged()
    m.assert_stable(agreement, stable_seconds(representative=long))
    m.assert_java_config_unchanged()
    print("\n".join(m.timings()))


# -- 1. two Java servers and one zkquorum peer ---------------------------------------------


def test_two_java_one_zkquorum_java_wins(mixed: MixedFactory) -> None:
    # zkquorum 1 < Java 2 < Java 3: a Java server leads, zkquorum 1 follows it.
    m = mixed(py_sids=[1], java_sids=[2, 3], start=False)
    m.start_java_first()
    _hold(m, leader_in=[2, 3])


def test_two_java_one_zkquorum_zkquorum_wins(mixed: MixedFactory) -> None:
    # Java 1 < Java 2 < zkquorum 3: both Java followers complete the whole handshake
    # (FOLLOWERINFO .. UPTODATE) against our leader, then take its PINGs for the window.
    # All start together: the zkquorum peer is up long before the JVMs, so that it takes
    # part in their first election (started later, it would find 1 and 2 settled).
    m = mixed(py_sids=[3], java_sids=[1, 2])
    _hold(m, leader_in=[3], long=True)


# -- 2. one Java server and two zkquorum peers ----------------------------------------------


def test_one_java_two_zkquorum_java_wins(mixed: MixedFactory) -> None:
    # zkquorum 1, 2 < Java 3, all in the first election: the Java server leads.
    m = mixed(py_sids=[1, 2], java_sids=[3], start=False)
    m.start_java_first()
    _hold(m, leader_in=[3])


def test_one_java_two_zkquorum_zkquorum_wins(mixed: MixedFactory) -> None:
    # Java 1 < zkquorum 2 < zkquorum 3: zkquorum 3 leads a zkquorum and a Java follower.
    # 3 starts first: on a loaded machine, 2 and Java 1 could elect 2 before 3 is up.
    m = mixed(py_sids=[2, 3], java_sids=[1], start=False)
    m.start([3])
    m.start([1, 2])
    _hold(m, leader_in=[3])


# -- 3. observers ----------------------------------------------------------------------------


def test_zkquorum_observer_beside_java_ensemble(mixed: MixedFactory) -> None:
    m = mixed(py_sids=[4], java_sids=[1, 2, 3], observers=[4], start=False)
    m.start_java_first()
    _hold(m, leader_in=[1, 2, 3], observers=(4,))


def test_java_observer_beside_zkquorum_ensemble(mixed: MixedFactory) -> None:
    m = mixed(py_sids=[1, 2, 3], java_sids=[4], observers=[4], start=False)
    m.start_java_first()
    _hold(m, leader_in=[1, 2, 3], observers=(4,))
