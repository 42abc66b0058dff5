"""Who may vote (issue 9): a peer never counts a vote or an ack it should not.

Only the participants of the configuration count: an observer's or a stranger's
(a sid not in the configuration) election vote, FOLLOWING/LEADING word, epoch ack,
NEWLEADER ack or heartbeat never helps to make a quorum.  Pure cores, no sockets; the
runtime side (a stranger's connection is refused on the election port) is in
tests/runtime/test_connections.py, the quorum-port side in tests/core/test_leader.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.core.corehelp import Action, Close, Established, Failed, LeaderDriver, leader_settings
from zkquorum.config.verifier import MajorityVerifier
from zkquorum.core.database import Database
from zkquorum.core.datatree import DataTree
from zkquorum.core.election import (
    ConfigMismatch,
    Decided,
    FastLeaderElection,
    NotificationReceived,
    Send,
    Start,
    Timer,
    TimerFired,
)
from zkquorum.core.events import Start as CoreStart
from zkquorum.core.events import VoteReceived
from zkquorum.core.leader import LeaderPhase
from zkquorum.core.peer import PeerCore, PeerSettings, Role
from zkquorum.wire.election import Notification, ServerState
from zkquorum.wire.quorum import (
    LearnerInfo,
    PacketType,
    QuorumPacket,
    encode_int_payload,
    encode_learner_info,
)
from zkquorum.wire.zxid import LONG_MIN, make_zxid

LOOKING = ServerState.LOOKING
FOLLOWING = ServerState.FOLLOWING
LEADING = ServerState.LEADING
OBSERVING = ServerState.OBSERVING

# voters 1, 2, 3 (a quorum is two of them); 4 observes; 9 is not in the configuration
V = MajorityVerifier.of([1, 2, 3], observers=[4])
OBSERVER, STRANGER = 4, 9


def note(state: ServerState, leader: int, rnd: int = 1, zxid: int = 0) -> Notification:
    return Notification(state, leader, zxid, rnd, 0, 2, V.to_zk_string())


def decided(actions: Sequence[object]) -> list[Decided]:
    return [a for a in actions if isinstance(a, Decided)]


def started(sid: int = 1) -> FastLeaderElection:
    core = FastLeaderElection(sid, V)
    core.step(Start(0, 0, 0))
    return core


# -- election votes ---------------------------------------------------------------------


def test_looking_votes_of_an_observer_or_a_stranger_are_not_counted() -> None:
    core = started(3)  # proposes itself: the largest voter
    for sid in (OBSERVER, STRANGER):
        out = core.step(NotificationReceived(1, sid, note(LOOKING, 3)))
        assert decided(out) == []
        # answered at once (WorkerReceiver), but never put in the tally
        assert [a.to for a in out if isinstance(a, Send)] == [sid]
    assert set(core.recvset) == {3}
    assert not core.finalizing
    # a voter's equal vote makes the quorum {2, 3}: the count starts only now
    core.step(NotificationReceived(2, 2, note(LOOKING, 3)))
    assert set(core.recvset) == {2, 3} and core.finalizing
    out = core.step(TimerFired(1000, Timer.FINALIZE))
    assert [(d.state, d.vote.leader, [s for s, _ in d.quorum]) for d in decided(out)] == [
        (LEADING, 3, [2, 3])
    ]


def test_following_and_leading_words_of_non_voters_never_complete_a_join() -> None:
    core = started(1)
    # A "leader" 3 backed only by an observer and a stranger: 2 of 4 claimants, but
    # only one voter (3 itself) among them.
    for sid in (OBSERVER, STRANGER):
        assert decided(core.step(NotificationReceived(1, sid, note(FOLLOWING, 3)))) == []
    assert decided(core.step(NotificationReceived(2, 3, note(LEADING, 3)))) == []
    assert set(core.outofelection) <= {3}
    assert OBSERVER not in core.recvset and STRANGER not in core.recvset
    # the second voter's word completes the join
    out = core.step(NotificationReceived(3, 2, note(FOLLOWING, 3)))
    assert [(d.state, d.vote.leader, d.via.value) for d in decided(out)] == [
        (FOLLOWING, 3, "join-round")
    ]


def test_a_stranger_cannot_be_elected_even_by_voters() -> None:
    # Votes (from voters) for an observer or a stranger are ignored: "non-cluster member".
    core = started(1)
    for t, (sid, leader) in enumerate([(2, STRANGER), (3, STRANGER), (2, OBSERVER)], 1):
        core.step(NotificationReceived(t, sid, note(LOOKING, leader)))
        assert core.proposal.leader == 1
    assert set(core.recvset) == {1}
    assert not core.finalizing


def test_a_stranger_claiming_leadership_is_not_followed() -> None:
    core = started(1)
    out = core.step(NotificationReceived(1, STRANGER, note(LEADING, STRANGER)))
    out += core.step(NotificationReceived(2, 2, note(FOLLOWING, STRANGER)))
    out += core.step(NotificationReceived(3, 3, note(FOLLOWING, STRANGER)))
    assert decided(out) == []
    assert core.state is LOOKING


def test_an_observer_never_proposes_itself_and_decides_observing() -> None:
    core = FastLeaderElection(OBSERVER, V)
    out = core.step(Start(0, 0, 0))
    sent = [a.notification for a in out if isinstance(a, Send)]
    assert sent and all(n.leader == LONG_MIN for n in sent)
    assert not core.is_voter
    out = core.step(NotificationReceived(1, 3, note(LEADING, 3)))
    out += core.step(NotificationReceived(2, 2, note(FOLLOWING, 3)))
    assert [(d.state, d.vote.leader) for d in decided(out)] == [(OBSERVING, 3)]


def test_a_server_missing_from_the_config_follows_as_a_non_voting_participant() -> None:
    # QuorumPeer#updateLearnerType: a sid in neither list (removed by a reconfig, or about
    # to join) keeps the PARTICIPANT type: it never proposes itself, but decides FOLLOWING
    # (it syncs as a follower, as 3.8's removed followers and joiners do), not OBSERVING.
    core = FastLeaderElection(STRANGER, V)
    out = core.step(Start(0, 0, 0))
    sent = [a.notification for a in out if isinstance(a, Send)]
    assert sent and all(n.leader == LONG_MIN for n in sent)
    assert not core.is_voter and core.is_participant
    out = core.step(NotificationReceived(1, 3, note(LEADING, 3)))
    out += core.step(NotificationReceived(2, 2, note(FOLLOWING, 3)))
    assert [(d.state, d.vote.leader) for d in decided(out)] == [(FOLLOWING, 3)]


def test_a_newer_config_heard_while_not_looking_is_reported_again_when_looking() -> None:
    # The peer core adopts a newer config only while looking (3.8's WorkerReceiver
    # processes every notification).  Heard first while following (a reconfig that
    # removed our leader committed without us), it must be reported again once we look,
    # or the election can make us the leader of a config the others have left behind.
    newer = MajorityVerifier.of([1, 2], version=0x700000009)

    def from_2() -> NotificationReceived:
        return NotificationReceived(
            1, 2, Notification(FOLLOWING, 2, 0, 1, 0, 2, newer.to_zk_string())
        )

    core = started(1)
    seen = [a for a in core.step(from_2()) if isinstance(a, ConfigMismatch)]
    assert [(a.from_sid, a.version) for a in seen] == [(2, 0x700000009)]
    assert not [a for a in core.step(from_2()) if isinstance(a, ConfigMismatch)]  # said once
    core.step(Start(2, 0, 0))  # a new round of the election
    seen = [a for a in core.step(from_2()) if isinstance(a, ConfigMismatch)]
    assert [(a.from_sid, a.version) for a in seen] == [(2, 0x700000009)]


# -- epoch acks, NEWLEADER acks, heartbeats -----------------------------------------------


def _leader() -> LeaderDriver:
    return LeaderDriver(leader_settings(1, V), DataTree("cfg"))


def _info(sid: int, observer: bool = False) -> QuorumPacket:
    t = PacketType.OBSERVERINFO if observer else PacketType.FOLLOWERINFO
    return QuorumPacket(t, 0, encode_learner_info(LearnerInfo(sid)))


def _ackepoch() -> QuorumPacket:
    return QuorumPacket(PacketType.ACKEPOCH, 0, encode_int_payload(0))


def _ack(epoch: int) -> QuorumPacket:
    return QuorumPacket(PacketType.ACK, make_zxid(epoch, 0))


def _kinds(actions: list[Action]) -> list[type]:
    return [type(a) for a in actions]


def test_a_stranger_learner_is_refused_whatever_it_claims_to_be() -> None:
    for observer in (False, True):
        leader = _leader()
        leader.start(0.0)
        leader.connected(1, 0.0)
        assert leader.receive(1, _info(STRANGER, observer), 0.0) == [
            Close(1, f"sid {STRANGER} is not in the current config")
        ]
        assert leader.phase is LeaderPhase.DISCOVERY


def test_an_observers_epoch_and_newleader_acks_are_not_counted() -> None:
    leader = _leader()
    leader.start(0.0)
    obs, fol = 7, 8
    leader.connected(obs, 0.0)
    leader.connected(fol, 0.0)
    # the observer's LEARNERINFO does not make {1, 4} a quorum for the new epoch
    assert leader.receive(obs, _info(OBSERVER, observer=True), 0.0) == []
    assert leader.phase is LeaderPhase.DISCOVERY
    leader.receive(fol, _info(2), 0.1)
    assert leader.phase is LeaderPhase.WAIT_EPOCH_ACKS
    epoch = leader.epoch
    # the observer's epoch ack: still waiting for a voter's
    leader.receive(obs, _ackepoch(), 0.2)
    assert leader.phase is LeaderPhase.WAIT_EPOCH_ACKS
    assert leader.electing == {1}
    leader.receive(fol, _ackepoch(), 0.3)
    assert leader.phase is LeaderPhase.WAIT_NEWLEADER_ACKS
    # the observer acks NEWLEADER first: not established on {1, 4}
    acts = leader.receive(obs, _ack(epoch), 0.4)
    assert Established(epoch) not in acts and not leader.established
    assert leader.newleader_acks == {1}
    acts = leader.receive(fol, _ack(epoch), 0.5)
    assert Established(epoch) in acts
    assert leader.newleader_acks == {1, 2}


def test_an_observers_heartbeats_do_not_keep_a_leader_without_followers() -> None:
    leader = _leader()
    leader.start(0.0)
    obs, fol = 7, 8
    leader.connected(fol, 0.0)
    leader.connected(obs, 0.0)
    leader.receive(fol, _info(2), 0.0)
    leader.receive(obs, _info(OBSERVER, observer=True), 0.0)
    leader.receive(fol, _ackepoch(), 0.0)
    leader.receive(obs, _ackepoch(), 0.0)
    epoch = leader.epoch
    assert Established(epoch) in leader.receive(fol, _ack(epoch), 0.0)
    leader.receive(obs, _ack(epoch), 0.0)
    ping = QuorumPacket(PacketType.PING, make_zxid(epoch, 0), b"")
    now, failed = 0.0, None
    while now < 30 and failed is None:
        now = leader.next_deadline()
        for a in leader.poll(now):
            if isinstance(a, Failed):
                failed = a.reason
        leader.receive(obs, ping, now)  # the observer answers every ping, forever
        if now < 2.0:
            leader.receive(fol, ping, now)  # the follower stops after 2 s
    # steps down once the follower's syncLimit (5 ticks) ran out, the observer's pings
    # notwithstanding
    assert failed is not None and failed.startswith("Not sufficient followers synced")
    assert 7.0 <= now <= 9.0


def test_no_decision_on_a_notification_that_carries_a_newer_config() -> None:
    # 3.8's WorkerReceiver puts a newer config heard while looking in force and, when its
    # members differ (``QuorumMaj#equals``), restarts the election; the notification that
    # carried it is not counted.  Here it would complete an all-voted decision: the peer
    # must look again, under the newer config.
    old = MajorityVerifier.of([1, 2, 3], version=0x100000000)
    newer = MajorityVerifier.of([1, 2, 3, 4], version=0x100000007)
    settings = PeerSettings(
        sid=1,
        verifier=old,
        tick_time_ms=200,
        init_limit=10,
        sync_limit=5,
        connect_limit=10,
        config_text=old.to_zk_string(),
        quorum_port=False,
        reconfig_enabled=True,
    )
    core = PeerCore(settings, Database(DataTree()), accepted_epoch=1, current_epoch=1)
    core.step(CoreStart(0.0))

    def vote(sid: int, config: MajorityVerifier) -> VoteReceived:
        n = Notification(LOOKING, 3, make_zxid(1, 5), 1, 1, 2, config.to_zk_string())
        return VoteReceived(1.0, sid, n)

    core.step(vote(2, old))
    core.step(vote(3, newer))  # with 2's, every voter named 3
    assert core.role is Role.LOOKING
    assert core.membership.current.version == 0x100000007
    assert core.election.verifier.version == 0x100000007
