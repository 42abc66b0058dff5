"""Dynamic reconfiguration between real ZooKeeper 3.8 servers and zkquorum peers.

``reconfigEnabled=true`` on every server, requests made with kazoo's ``reconfig``
authenticated as super (``DigestAuthenticationProvider.superDigest``), 200 ms ticks:

1. a zkquorum server joins a Java ensemble, and a Java server a zkquorum ensemble: each
   starts with the current members plus itself, adopts the ensemble's config in the
   election, follows without being counted, and a ``joining=server.3=...`` request made
   through it (a follower: forwarded across implementations) makes it a voter; then a
   zkquorum server restarts from the zoo.cfg and dynamic file it rewrote;
2. the leader is removed (``leaving=``) -- a zkquorum leader with Java followers, a Java
   leader with zkquorum followers;
3. an observer becomes a participant and an observer again -- a zkquorum observer
   under a Java leader, a Java observer under a zkquorum leader.

After each change (:meth:`tests.interop.reconfig.Cluster.check_step`): every server's
``conf`` and ``/zookeeper/config`` (after ``sync``) show the new membership and version
(the same bytes everywhere), every server wrote ``zoo.cfg.dynamic.<version>`` and pointed
its zoo.cfg at it, the long-lived session is the same one (id, never LOST) with its
ephemeral node seen from every server, and a write made after the change is acknowledged
and read back from every server.

Needs Debian's ``zookeeper`` package: skipped without it locally, failed in CI.
"""

from __future__ import annotations

import pytest

from tests.interop.reconfig import (
    Cluster,
    ClusterFactory,
    reconfig_cluster_fixture,  # noqa: F401  (the ``reconfig_cluster`` fixture)
)

pytestmark = pytest.mark.interop


def test_add_zkquorum_server_to_java_ensemble(reconfig_cluster: ClusterFactory) -> None:
    c = reconfig_cluster(java_sids=[1, 2], py_sids=[3])
    for sid in (1, 2):
        c.write_config(sid, [1, 2])
    c.start([1, 2])
    c.wait_modes({1: {"leader", "follower"}, 2: {"leader", "follower"}})
    initial = c.conf(1)
    assert set(initial.members) == {1, 2}
    with c.session([1, 2]) as session:
        c.write_config(3, [1, 2], joiners=[3])
        c.start([3])
        c.wait_modes({1: {"leader", "follower"}, 2: {"leader", "follower"}, 3: "follower"})
        # Through the joiner, a follower: it forwards the request to the leader.
        new = c.reconfig([3], joining=c.spec(3))
        assert set(new.members) == {1, 2, 3}
        assert new.voters() == {1, 2, 3}
        assert new.version > initial.version
        c.check_step(new, session, "add-3")
        # Restarted, zkquorum 3 reads the zoo.cfg it rewrote (no clientPort: its dynamic
        # entry has its client address) and the dynamic file it wrote.
        assert "clientPort" not in c.servers[3].cfg_path.read_text()
        c.restart(3)
        c.wait_modes({1: {"leader", "follower"}, 2: {"leader", "follower"}, 3: "follower"})
        c.check_step(new, session, "restart-3")


def test_add_java_server_to_zkquorum_ensemble(reconfig_cluster: ClusterFactory) -> None:
    c = reconfig_cluster(java_sids=[3], py_sids=[1, 2])
    for sid in (1, 2):
        c.write_config(sid, [1, 2])
    c.start([1, 2])
    c.wait_modes({1: {"leader", "follower"}, 2: {"leader", "follower"}})
    initial = c.conf(1)
    assert set(initial.members) == {1, 2}
    with c.session([1, 2]) as session:
        c.write_config(3, [1, 2], joiners=[3])
        c.start([3])
        c.wait_modes({1: {"leader", "follower"}, 2: {"leader", "follower"}, 3: "follower"})
        # Through the joiner, a follower: it forwards the request to the leader.
        new = c.reconfig([3], joining=c.spec(3))
        assert set(new.members) == {1, 2, 3}
        assert new.voters() == {1, 2, 3}
        assert new.version > initial.version
        c.check_step(new, session, "add-3")
        # Restarted, zkquorum 1 reads the zoo.cfg it rewrote (clientPort kept: its
        # dynamic entry has no client address) and the dynamic file it wrote.
        assert "clientPort=" in c.servers[1].cfg_path.read_text()
        c.restart(1)
        c.wait_modes({1: {"leader", "follower"}, 2: {"leader", "follower"}, 3: "follower"})
        c.check_step(new, session, "restart-1")


def test_remove_zkquorum_leader(reconfig_cluster: ClusterFactory) -> None:
    c = reconfig_cluster(java_sids=[1, 2], py_sids=[3])
    for sid in (1, 2, 3):
        c.write_config(sid, [1, 2, 3])
    # zkquorum 3 first, in its election before the JVMs start: it is in their first
    # election, and, with the highest sid at zxid 0, leads it.
    c.start_py_first([1, 2, 3])
    c.wait_modes({1: "follower", 2: "follower", 3: "leader"})
    initial = c.conf(3)
    with c.session([1, 2, 3]) as session:
        # Through the leader: a follower whose leader changes restarts its server and
        # drops its clients (3.8 too), the reply with them.
        new = c.reconfig([3], leaving="3")
        assert new.voters() == {1, 2} and not new.observers()
        assert new.version > initial.version
        # Java 1 and 2 go straight to the leader zkquorum 3 designated (3.8's
        # COMMITANDACTIVATE); zkquorum 3, out of the config, re-elects and follows it
        # without being counted ("a non-voting participant").
        c.wait_modes({1: {"leader", "follower"}, 2: {"leader", "follower"}, 3: "follower"})
        c.check_step(new, session, "remove-3")


def test_remove_java_leader(reconfig_cluster: ClusterFactory) -> None:
    c = reconfig_cluster(java_sids=[3], py_sids=[1, 2])
    for sid in (1, 2, 3):
        c.write_config(sid, [1, 2, 3])
    c.start_java_first([1, 2, 3])
    c.wait_modes({1: "follower", 2: "follower", 3: "leader"})
    initial = c.conf(3)
    with c.session([1, 2, 3]) as session:
        # Through the leader, as above.
        new = c.reconfig([3], leaving="3")
        assert new.voters() == {1, 2} and not new.observers()
        assert new.version > initial.version
        # zkquorum 1 and 2 re-elect (3.8 would go straight to the designated leader);
        # Java 3, no longer designated, stops leading at its next tick and goes to
        # the leader it designated -- if that is not the one we elected, its connect
        # attempts fail and it joins the elected one through the election.
        c.wait_modes({1: {"leader", "follower"}, 2: {"leader", "follower"}, 3: "follower"})
        c.check_step(new, session, "remove-3")


def _observer_to_participant_and_back(c: Cluster, *, leaders: set[int], via: int) -> None:
    """Observer 4 becomes a participant (an incremental reconfig re-adding it with
    another role), then an observer again (a non-incremental one: the whole new
    membership), through follower ``via``."""
    c.roles[4] = "observer"
    for sid in (1, 2, 3, 4):
        c.write_config(sid, [1, 2, 3, 4])
    # The observer last, once the participants are settled: a JVM that looks for a
    # leader before the others are up backs off (up to seconds between rounds).
    c.start_java_first([1, 2, 3])
    others = {sid: {"leader", "follower"} for sid in (1, 2, 3)}
    c.wait_modes(others)
    c.start([4])
    modes = c.wait_modes({**others, 4: "observer"})
    assert c.leader([1, 2, 3]) in leaders, modes
    assert modes[via] == "follower", modes
    with c.session([1, 2, 3, 4]) as session:
        up = c.reconfig([via], joining=c.spec(4, "participant"))
        assert up.voters() == {1, 2, 3, 4} and not up.observers()
        c.wait_modes({**others, 4: "follower"})
        c.check_step(up, session, "observer-4-participates")
        # Back by a non-incremental reconfig: the whole membership, 1-3 as they are.
        members = [f"server.{sid}={up.members[sid]}" for sid in (1, 2, 3)]
        down = c.reconfig([via], new_members=",".join([*members, c.spec(4, "observer")]))
        assert down.voters() == {1, 2, 3} and down.observers() == {4}
        assert down.version > up.version
        c.wait_modes({**others, 4: "observer"})
        c.check_step(down, session, "participant-4-observes")


def test_zkquorum_observer_to_participant_and_back(reconfig_cluster: ClusterFactory) -> None:
    # Java 2 or 3 leads (zkquorum 1 cannot: both prefer themselves at zxid 0); the
    # requests go through zkquorum 1, a follower that the changes leave as it is.
    c = reconfig_cluster(java_sids=[2, 3], py_sids=[1, 4])
    _observer_to_participant_and_back(c, leaders={2, 3}, via=1)


def test_java_observer_to_participant_and_back(reconfig_cluster: ClusterFactory) -> None:
    # zkquorum 2 or 3 leads; the requests go through Java 1, a follower.
    c = reconfig_cluster(java_sids=[1, 4], py_sids=[2, 3])
    _observer_to_participant_and_back(c, leaders={2, 3}, via=1)
