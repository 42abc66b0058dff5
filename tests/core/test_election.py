"""Unit tests of the election core: timers, replies, rules that the scenarios do not show."""

from __future__ import annotations

from zkquorum.config.verifier import MajorityVerifier
from zkquorum.core.election import (
    Decided,
    EpochUpdated,
    FastLeaderElection,
    NotificationReceived,
    Send,
    SetTimer,
    Start,
    Timer,
    TimerFired,
    Via,
    parse_config_text,
)
from zkquorum.core.vote import Vote
from zkquorum.wire.election import Notification, ServerState

LOOKING = ServerState.LOOKING
V3 = MajorityVerifier.of([1, 2, 3], observers=[4])


def looking(leader: int, zxid: int = 0, rnd: int = 1, epoch: int = 0) -> Notification:
    return Notification(LOOKING, leader, zxid, rnd, epoch, 2, V3.to_zk_string())


def sends(actions: list[object]) -> list[tuple[int, Notification]]:
    return [(a.to, a.notification) for a in actions if isinstance(a, Send)]


def timers(actions: list[object]) -> list[tuple[Timer, float]]:
    return [(a.timer, a.at) for a in actions if isinstance(a, SetTimer)]


def test_start_sends_initial_vote_to_other_voters_only() -> None:
    core = FastLeaderElection(1, V3)
    out = core.step(Start(0, 0x100000002, 1))
    assert [to for to, _ in sends(out)] == [2, 3]
    n = sends(out)[0][1]
    assert (n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch) == (
        LOOKING,
        1,
        0x100000002,
        1,
        1,
    )
    assert n.version == 2 and n.config == V3.to_zk_string()
    assert timers(out) == [(Timer.NOTIFY, 200)]
    assert core.recvset == {1: Vote(1, 0x100000002, 1, 1)}


def test_notification_backoff_doubles_to_the_cap() -> None:
    core = FastLeaderElection(1, V3, max_notification_interval=1000)
    core.step(Start(0, 0, 0))
    t, seen = 200.0, []
    for _ in range(6):
        out = core.step(TimerFired(t, Timer.NOTIFY))
        assert [to for to, _ in sends(out)] == [2, 3]
        ((_timer, at),) = timers(out)
        seen.append(at - t)
        t = at
    assert seen == [400, 800, 1000, 1000, 1000, 1000]


def test_a_notification_restarts_the_poll_and_early_fires_rearm() -> None:
    core = FastLeaderElection(1, V3)
    core.step(Start(0, 5, 0))
    core.step(NotificationReceived(150, 2, looking(2)))  # worse than mine: no quorum
    assert not core.finalizing
    out = core.step(TimerFired(200, Timer.NOTIFY))
    assert sends(out) == []
    assert timers(out) == [(Timer.NOTIFY, 350)]
    assert core.step(TimerFired(199, Timer.NOTIFY)) == []  # stale/early: ignored
    assert core.not_timeout == 200


def test_non_voter_gets_current_vote_and_logical_clock() -> None:
    core = FastLeaderElection(1, V3, all_voted_shortcut=False, failover_shortcut=False)
    core.step(Start(0, 5, 0))
    core.step(NotificationReceived(1, 3, looking(3, 5)))  # proposal is now 3
    out = core.step(NotificationReceived(2, 4, looking(-1)))
    ((to, n),) = sends(out)
    assert to == 4
    assert (n.state, n.leader, n.zxid, n.election_epoch) == (LOOKING, 1, 5, 1)


def test_lower_round_looking_voter_gets_the_proposal() -> None:
    core = FastLeaderElection(1, V3)
    core.step(Start(0, 0, 0))
    core.step(Start(1, 0, 0))  # round 2
    out = core.step(NotificationReceived(2, 2, looking(2, rnd=1)))
    ((to, n),) = sends(out)
    assert (to, n.state, n.leader, n.election_epoch) == (2, LOOKING, 1, 2)
    assert 2 not in core.recvset


def test_after_deciding_looking_peers_get_the_current_vote() -> None:
    core = FastLeaderElection(3, V3)
    core.step(Start(0, 0, 0))
    out = core.step(NotificationReceived(1, 1, looking(3)))
    out += core.step(NotificationReceived(2, 2, looking(3)))
    decided = [a for a in out if isinstance(a, Decided)]
    assert decided and decided[0].state is ServerState.LEADING
    assert decided[0].via is Via.ALL_VOTED
    core.step(EpochUpdated(3, 7))
    ((to, n),) = sends(core.step(NotificationReceived(4, 2, looking(2, rnd=5))))
    assert (to, n.state, n.leader, n.election_epoch, n.peer_epoch) == (
        2,
        ServerState.LEADING,
        3,
        1,
        7,
    )
    following = Notification(ServerState.FOLLOWING, 3, 0, 1, 7, 2, None)
    assert core.step(NotificationReceived(5, 2, following)) == []


def test_minus_one_zxid_takes_no_part() -> None:
    core = FastLeaderElection(1, V3)
    core.step(Start(0, 0, 0))
    core.step(NotificationReceived(1, 3, looking(3, zxid=-1)))
    assert 3 not in core.recvset and core.proposal.leader == 1


def test_better_vote_ends_finalize_wait() -> None:
    core = FastLeaderElection(1, V3, all_voted_shortcut=False, failover_shortcut=False)
    core.step(Start(0, 0, 0))
    core.step(NotificationReceived(1, 2, looking(2)))
    assert core.finalizing and core.proposal.leader == 2
    out = core.step(NotificationReceived(50, 3, looking(3)))
    assert core.proposal.leader == 3
    assert [to for to, _ in sends(out)] == [2, 3]
    assert core.finalizing  # 3 and I agree: a new wait
    assert core.step(TimerFired(202, Timer.FINALIZE)) == []  # the old deadline is stale
    out = core.step(TimerFired(250, Timer.FINALIZE))
    assert isinstance(out[-1], Decided) and out[-1].vote.leader == 3


def test_parse_config_text() -> None:
    version, members = parse_config_text(V3.to_zk_string())
    assert version == 0
    assert members == frozenset(
        {"server.1=participant", "server.2=participant", "server.3=participant",
         "server.4=observer"}
    )  # fmt: skip
    assert parse_config_text("nonsense")[0] is None
