"""Dynamic reconfiguration between real ZooKeeper 3.8 servers and zkquorum peers.

``reconfigEnabled=true`` on every server, requests made with kazoo's ``reconfig``
authenticated as super (``DigestAuthenticationProvider.superDigest``), 200 ms ticks:

1. a zkquorum server joins a Java ensemble, and a Java server a zkquorum ensemble: each
   starts with the current members plus itself, adopts the ensemble's config in the
   election, follows without being counted, and a ``joining=server.3=...`` request made
   through it (a follower: forwarded across implementations) makes it a voter; then a
   zkquorum server restarts from the zoo.cfg and dynamic file it rewrote;
2. the leader is removed (``leaving=``) -- a zkquorum leader with Java followers, a Java
   leader with zkquorum followers, a Java leader that designates a zkquorum successor
   (3.8's followers go straight to the designated leader; zkquorum re-elects);
3. an observer becomes a participant (incremental) and an observer again
   (non-incremental) -- a zkquorum observer under a Java leader, a Java observer under a
   zkquorum leader;
4. a follower of either kind, down while the config changes, is synced by DIFF from a
   leader of the other kind and puts the new config in force;
5. a Java leader and a zkquorum leader answer the same bad and odd requests alike (error
   codes in 3.8's order of checks, one zxid each, loopback addresses never in conflict).

After each change (:meth:`tests.interop.reconfig.Cluster.check_step`): every server's
``conf`` and ``/zookeeper/config`` (after ``sync``) show the new membership and version
(the same bytes everywhere), every server wrote ``zoo.cfg.dynamic.<version>`` and pointed
its zoo.cfg at it, the long-lived session is the same one (id, never LOST) with its
ephemeral node seen from every server, and a write made after the change is acknowledged
and read back from every server.  Around each change of 1-3, a data watch on
``/zookeeper/config`` set through every server fires NodeDataChanged, once.

Needs Debian's ``zookeeper`` package: skipped without it locally, failed in CI.
"""

from __future__ import annotations

from typing import Any

import pytest
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    KazooException,
    MarshallingError,
    NoAuthError,
)

from tests.interop.reconfig import (
    Cluster,
    ClusterFactory,
    Config,
    parse_config,
    reconfig_cluster_fixture,  # noqa: F401  (the ``reconfig_cluster`` fixture)
)
from zkquorum.testing import free_ports

pytestmark = pytest.mark.interop


# -- 1. a server joins ---------------------------------------------------------------------


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
        # Through the joiner, a follower: it forwards the request to the leader, while
        # writes stream through Java 1 (acked by quorums of both configs meanwhile).
        with c.config_watches([1, 2, 3]) as watches, c.writer(1) as writer:
            writer.wait_for(5)
            new = c.reconfig([3], joining=c.spec(3))
            writer.wait_for(len(writer.acked) + 5)
            acked = writer.stop()
            assert set(new.members) == {1, 2, 3}
            assert new.voters() == {1, 2, 3}
            assert new.version > initial.version
            c.check_step(new, session, "add-3")
            watches.wait([1, 2, 3])
            c.check_writes(writer.base, acked, [1, 2, 3])
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
        # Through the joiner, a follower: it forwards the request to the leader, while
        # writes stream through zkquorum 1 (acked by quorums of both configs meanwhile).
        with c.config_watches([1, 2, 3]) as watches, c.writer(1) as writer:
            writer.wait_for(5)
            new = c.reconfig([3], joining=c.spec(3))
            writer.wait_for(len(writer.acked) + 5)
            acked = writer.stop()
            assert set(new.members) == {1, 2, 3}
            assert new.voters() == {1, 2, 3}
            assert new.version > initial.version
            c.check_step(new, session, "add-3")
            watches.wait([1, 2, 3])
            c.check_writes(writer.base, acked, [1, 2, 3])
        # Restarted, zkquorum 1 reads the zoo.cfg it rewrote (clientPort kept: its
        # dynamic entry has no client address) and the dynamic file it wrote.
        assert "clientPort=" in c.servers[1].cfg_path.read_text()
        c.restart(1)
        c.wait_modes({1: {"leader", "follower"}, 2: {"leader", "follower"}, 3: "follower"})
        c.check_step(new, session, "restart-1")


# -- 2. the leader leaves ------------------------------------------------------------------


def test_remove_zkquorum_leader(reconfig_cluster: ClusterFactory) -> None:
    c = reconfig_cluster(java_sids=[1, 2], py_sids=[3])
    for sid in (1, 2, 3):
        c.write_config(sid, [1, 2, 3])
    # zkquorum 3 first, in its election before the JVMs start: it is in their first
    # election, and, with the highest sid at zxid 0, leads it.
    c.start_py_first([1, 2, 3])
    c.wait_modes({1: "follower", 2: "follower", 3: "leader"})
    initial = c.conf(3)
    with c.session([1, 2, 3]) as session, c.config_watches([1, 2, 3]) as watches:
        # Through the leader: a follower whose leader changes restarts its server and
        # drops its clients (3.8 too), the reply with them.
        new = c.reconfig([3], leaving="3")
        assert new.voters() == {1, 2} and not new.observers()
        assert new.version > initial.version
        # Java 1 and 2 go straight to the leader zkquorum 3 designated in COMMITANDACTIVATE
        # -- 1, the first new voter that acked, as 3.8 picks it (HashSet order) -- and
        # zkquorum 3, out of the config, re-elects and follows it without being counted
        # ("a non-voting participant").
        c.wait_modes({1: "leader", 2: "follower", 3: "follower"})
        for sid in (1, 2):
            assert "Suggested leader: 1" in c.log(sid), f"Java {sid} was not sent to 1"
        c.check_step(new, session, "remove-3")
        watches.wait([1, 2, 3])


def test_remove_java_leader(reconfig_cluster: ClusterFactory) -> None:
    c = reconfig_cluster(java_sids=[3], py_sids=[1, 2])
    for sid in (1, 2, 3):
        c.write_config(sid, [1, 2, 3])
    c.start_java_first([1, 2, 3])
    c.wait_modes({1: "follower", 2: "follower", 3: "leader"})
    initial = c.conf(3)
    with c.session([1, 2, 3]) as session, c.config_watches([1, 2, 3]) as watches:
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
        watches.wait([1, 2, 3])


def test_remove_java_leader_designating_zkquorum(reconfig_cluster: ClusterFactory) -> None:
    # Java 2 or 3 leads (zkquorum 1 cannot: both prefer themselves at zxid 0).  Removed,
    # it designates zkquorum 1 (the first of the new voters that acked, in HashSet
    # order): the Java follower goes straight to following zkquorum 1, which re-elects
    # instead; the Java follower's connects fail, it looks, and the two elect a leader.
    c = reconfig_cluster(java_sids=[2, 3], py_sids=[1])
    for sid in (1, 2, 3):
        c.write_config(sid, [1, 2, 3])
    c.start_java_first([1, 2, 3])
    c.wait_modes({1: "follower", 2: {"leader", "follower"}, 3: {"leader", "follower"}})
    leader = c.leader([2, 3])
    other = 5 - leader
    with c.session([1, 2, 3]) as session, c.config_watches([1, 2, 3]) as watches:
        new = c.reconfig([leader], leaving=str(leader))
        assert new.voters() == {1, other} and not new.observers()
        c.wait_modes({1: {"leader", "follower"}, other: {"leader", "follower"}, leader: "follower"})
        c.check_step(new, session, f"remove-{leader}")
        watches.wait([1, 2, 3])
    assert "Suggested leader: 1" in c.log(other), f"Java {other} was not sent to zkquorum 1"


# -- 3. an observer participates, and observes again ---------------------------------------


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
        with c.config_watches([1, 2, 3, 4]) as watches:
            up = c.reconfig([via], joining=c.spec(4, "participant"))
            assert up.voters() == {1, 2, 3, 4} and not up.observers()
            c.wait_modes({**others, 4: "follower"})
            c.check_step(up, session, "observer-4-participates")
            watches.wait([1, 2, 3, 4])
        with c.config_watches([1, 2, 3, 4]) as watches:
            # Back by a non-incremental reconfig: the whole membership, 1-3 as they are.
            members = [f"server.{sid}={up.members[sid]}" for sid in (1, 2, 3)]
            down = c.reconfig([via], new_members=",".join([*members, c.spec(4, "observer")]))
            assert down.voters() == {1, 2, 3} and down.observers() == {4}
            assert down.version > up.version
            c.wait_modes({**others, 4: "observer"})
            c.check_step(down, session, "participant-4-observes")
            watches.wait([1, 2, 3, 4])


def test_zkquorum_observer_to_participant_and_back(reconfig_cluster: ClusterFactory) -> None:
    # Java 2 or 3 leads (zkquorum 1 cannot: both prefer themselves at zxid 0); the
    # requests go through zkquorum 1, a follower that the changes leave as it is.
    c = reconfig_cluster(java_sids=[2, 3], py_sids=[1, 4])
    _observer_to_participant_and_back(c, leaders={2, 3}, via=1)


def test_java_observer_to_participant_and_back(reconfig_cluster: ClusterFactory) -> None:
    # zkquorum 2 or 3 leads; the requests go through Java 1, a follower.
    c = reconfig_cluster(java_sids=[1, 4], py_sids=[2, 3])
    _observer_to_participant_and_back(c, leaders={2, 3}, via=1)


# -- 4. a server down during a reconfig catches up -----------------------------------------


@pytest.mark.parametrize("leader_kind", ["Java", "zkquorum"])
def test_server_down_during_reconfig_catches_up(
    reconfig_cluster: ClusterFactory, leader_kind: str
) -> None:
    """Follower 1 (the other kind) is down while an observer is added; restarted with the
    config it had, it is synced by the leader (the reconfig txn as PROPOSAL + COMMIT,
    NEWLEADER carrying the new config) and puts the new config in force at UPTODATE."""
    if leader_kind == "Java":
        c = reconfig_cluster(java_sids=[2, 3], py_sids=[1])
    else:
        c = reconfig_cluster(java_sids=[1], py_sids=[2, 3])
    for sid in (1, 2, 3):
        c.write_config(sid, [1, 2, 3])
    c.start_java_first([1, 2, 3])
    c.wait_modes({1: "follower", 2: {"leader", "follower"}, 3: {"leader", "follower"}})
    leader = c.leader([2, 3])
    assert c.kind(leader) == leader_kind
    before = c.conf(1)
    with c.session([2, 3]) as session:
        c.stop(1)
        # An observer nobody runs: observers count in no quorum.
        quorum_port, election_port, client_port = free_ports(3)
        ghost = f"server.4=127.0.0.1:{quorum_port}:{election_port}:observer;127.0.0.1:{client_port}"
        new = c.reconfig([leader], joining=ghost)
        assert set(new.members) == {1, 2, 3, 4} and new.observers() == {4}
        c.wait_config(new, [2, 3])
        session.write("/while-1-is-down", b"x")
        assert c.conf_text(2)  # the others serve
        diffs = c.diffs_sent(leader, 1)
        c.start([1])
        c.wait_modes({1: "follower", 2: {"leader", "follower"}, 3: {"leader", "follower"}})
        assert c.diffs_sent(leader, 1) == diffs + 1, "server 1 was not synced by DIFF"
        c.check_step(new, session, "1-caught-up")
    assert new.version > before.version


# -- 5. the leader's answers: a Java leader and a zkquorum leader alike --------------------

_GHOST = "127.0.0.1:1:2"  # ports nobody listens on (never committed below)


def _requests(c: Cluster) -> list[tuple[str, bool, dict[str, Any], type[Exception] | None]]:
    """(what, as super, reconfig arguments, the error 3.8 answers or None)."""
    s1 = c.servers[1]
    spare_election, spare_client = free_ports(2)
    return [
        ("not super", False, {"leaving": "1"}, NoAuthError),
        (
            "no client address",
            True,
            {"joining": f"server.4={_GHOST}:participant"},
            BadArgumentsError,
        ),
        # The ACL is checked last: a bad request from anyone is BADARGUMENTS.
        ("ACL last", False, {"joining": f"server.4={_GHOST}:participant"}, BadArgumentsError),
        ("stale fromConfig", True, {"leaving": "1", "from_config": 12345}, BadVersionError),
        ("one voter left", True, {"leaving": "1,2"}, BadArgumentsError),
        ("no '='", True, {"joining": "server.4"}, BadArgumentsError),
        # NumberFormatException / IllegalArgumentException escape every handler.
        ("leaving a non-number", True, {"leaving": "x"}, MarshallingError),
        ("unknown key", True, {"new_members": "foo=bar"}, BadArgumentsError),
        ("one voter", True, {"new_members": f"server.1={_GHOST}:participant;3"}, BadArgumentsError),
        (
            "observers only",
            True,
            {"new_members": f"server.1={_GHOST}:observer;3"},
            MarshallingError,
        ),
        (
            "observers and one voter",
            True,
            {"new_members": f"server.1={_GHOST}:participant;3,server.2=127.0.0.1:4:5:observer;6"},
            MarshallingError,
        ),
        (
            "a client address taken",
            True,
            {
                "joining": "server.6=10.1.1.1:7:8:observer;10.1.1.1:9,"
                "server.7=10.1.1.1:9:11:observer;10.1.1.2:12"
            },
            BadArgumentsError,
        ),
        # Loopback (and wildcard) addresses are never in conflict: an observer on server
        # 1's quorum address is accepted.
        (
            "loopback never conflicts",
            True,
            {
                "joining": f"server.4={s1.host}:{s1.quorum_port}:{spare_election}:observer;"
                f"{s1.host}:{spare_client}"
            },
            None,
        ),
        ("no change", True, {}, None),
    ]


@pytest.mark.parametrize("leader_kind", ["Java", "zkquorum"])
def test_reconfig_answers_alike(reconfig_cluster: ClusterFactory, leader_kind: str) -> None:
    """The same requests, through follower 1 of the other kind, to a leader of each kind:
    the same answers, and each request takes one zxid (a failed one commits an error
    txn)."""
    if leader_kind == "Java":
        c = reconfig_cluster(java_sids=[2, 3], py_sids=[1])
    else:
        c = reconfig_cluster(java_sids=[1], py_sids=[2, 3])
    for sid in (1, 2, 3):
        c.write_config(sid, [1, 2, 3])
    c.start_java_first([1, 2, 3])
    c.wait_modes({1: "follower", 2: {"leader", "follower"}, 3: {"leader", "follower"}})
    assert c.kind(c.leader([2, 3])) == leader_kind
    requests = _requests(c)
    outcomes: dict[str, str] = {}
    last: Config | None = None
    with c.client([1], admin=True) as admin, c.client([1]) as anyone:
        for what, as_super, kwargs, _ in requests:
            zk = admin if as_super else anyone
            before = c.zxid(1)
            args: dict[str, Any] = {"joining": None, "leaving": None, "new_members": None}
            try:
                data, stat = zk.reconfig(**{**args, **kwargs})
            except KazooException as exc:
                outcomes[what] = type(exc).__name__
            else:
                outcomes[what] = "ok"
                last = parse_config(data.decode())
                assert last.version == stat.mzxid == c.zxid(1), (what, str(last))
            assert c.zxid(1) == before + 1, f"{what}: zxid {before:x} -> {c.zxid(1):x}"
    expected = {what: error.__name__ if error else "ok" for what, _, _, error in requests}
    assert outcomes == expected
    assert last is not None and set(last.members) == {1, 2, 3, 4}
    c.wait_config(last)
