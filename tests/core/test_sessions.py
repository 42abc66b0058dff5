"""core/sessions.py: passwords, ids, timeouts, the expiry queue, the trackers.

The passwords are checked against the (session id, password) pairs a real 3.8.0 sent in the
ConnectResponses of ``tests/testdata/vectors/*.pcap``; ``test_sessions_java.py`` asks the
Java classes themselves about many more ids.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from zkquorum.core.sessions import (
    ExpiryQueue,
    JavaRandom,
    LearnerSessionTracker,
    SessionCheck,
    SessionIdGenerator,
    SessionTimeouts,
    SessionTracker,
    TouchedSession,
    check_password,
    generate_password,
    initialize_next_session_id,
    server_id_of_session,
)
from zkquorum.wire.pcap import parse_pcap, reassemble, tcp_segments
from zkquorum.wire.quorum import decode_ping_sessions, encode_ping_sessions

VECTORS = Path(__file__).resolve().parents[1] / "testdata" / "vectors"
CLIENT_PORTS = {21811, 21812, 21813}


def connect_responses(name: str) -> list[tuple[int, int, bytes]]:
    """(timeout, session id, password) of every ConnectResponse in a capture."""
    capture = parse_pcap((VECTORS / f"{name}.pcap").read_bytes())
    out = []
    for conn in reassemble(tcp_segments(capture)):
        if conn.acceptor[1] not in CLIENT_PORTS:
            continue
        chunks, _ = conn.to_initiator.chunks()
        data = b"".join(c.data for c in chunks)
        (length,) = struct.unpack_from(">i", data)
        body = data[4 : 4 + length]
        # ConnectResponse: int protocolVersion, int timeOut, long sessionId, buffer passwd.
        _, timeout, session_id, plen = struct.unpack_from(">iiqi", body)
        out.append((timeout, session_id, body[20 : 20 + plen]))
    return out


@pytest.mark.parametrize("name", ["client-ops", "quorum-writes"])
def test_passwords_of_captured_sessions(name: str) -> None:
    responses = connect_responses(name)
    assert len(responses) >= 2
    for _, session_id, password in responses:
        assert session_id != 0
        assert generate_password(session_id) == password, hex(session_id)
        assert check_password(session_id, password)
        assert not check_password(session_id, bytes(16))
        assert not check_password(session_id ^ 1, password)


def test_check_password_rejects_session_zero() -> None:
    assert not check_password(0, generate_password(0))
    assert not check_password(5, None)


def test_java_random_known_values() -> None:
    # new Random(42): nextInt() x3 (the JDK's documented algorithm; the Java probe test
    # checks thousands more).
    r = JavaRandom(42)
    assert [r.next_int(), r.next_int(), r.next_int()] == [-1170105035, 234785527, -1360544799]
    assert generate_password(72058846487986176).hex() == "d6d1b3414607afd13e025310992ae169"
    assert generate_password(-5).hex() == "d47144b5e45e45c49c3b7fdcd66257ba"


@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1), st.integers(0, 40))
def test_next_bytes_is_little_endian_next_ints(seed: int, n: int) -> None:
    a, b = JavaRandom(seed), JavaRandom(seed)
    expected = b"".join(struct.pack("<i", b.next_int()) for _ in range((n + 3) // 4))[:n]
    assert a.next_bytes(n) == expected


def test_next_int_bound_rejects_non_positive() -> None:
    with pytest.raises(ValueError):
        JavaRandom(1).next_int(0)


def test_captured_session_ids_have_the_server_id_in_the_high_byte() -> None:
    ids = {sid for _, sid, _ in connect_responses("quorum-writes")}
    # F was created through follower sid 1, G on the leader sid 3.
    assert {server_id_of_session(s) for s in ids} == {1, 3}


def test_initialize_next_session_id_layout() -> None:
    sid = initialize_next_session_id(1, 0x3AE6E0)
    assert sid == 0x100003AE6E00000  # client-ops' first session: time 0x3ae6e0 ms
    assert server_id_of_session(initialize_next_session_id(255, 123)) == -1
    assert initialize_next_session_id(255, 123) < 0
    # The time loses its top 24 bits (shifted out of the long), never reaching the sid.
    assert initialize_next_session_id(1, (1 << 40) | 5) == initialize_next_session_id(1, 5)
    assert server_id_of_session(initialize_next_session_id(7, (1 << 60) - 1)) == 7


def test_initialize_next_session_id_skips_long_min() -> None:
    # sid 128 and time 0 would give exactly Long.MIN_VALUE, the container marker.
    assert initialize_next_session_id(128, 0) == -(1 << 63) + 1
    assert initialize_next_session_id(128, 1) == -(1 << 63) + (1 << 16)


def test_session_id_generator_increments_and_wraps() -> None:
    gen = SessionIdGenerator(1, 7)
    first = gen.next()
    assert gen.next() == first + 1
    gen2 = SessionIdGenerator(0x7F, (1 << 40) - 1)
    gen2._next = (1 << 63) - 1  # the last positive long
    assert gen2.next() == (1 << 63) - 1
    assert gen2.next() == -(1 << 63)


@pytest.mark.parametrize(
    ("tick", "lo", "hi", "requested", "expected"),
    [
        (2000, -1, -1, 2000, 4000),  # client-ops: B asked 2000, got 4000
        (2000, -1, -1, 10000, 10000),
        (2000, -1, -1, 100000, 40000),
        (200, -1, -1, 1000, 1000),  # quorum-writes: G asked 1000, got 1000
        (200, -1, -1, 4000, 4000),
        (200, -1, -1, 5000, 4000),
        (2000, 1000, -1, 1500, 1500),
        (2000, -1, 5000, 9000, 5000),
        (2000, -1, -1, -5, 4000),
    ],
)
def test_timeout_negotiation(tick: int, lo: int, hi: int, requested: int, expected: int) -> None:
    assert SessionTimeouts.from_config(tick, lo, hi).negotiate(requested) == expected


def test_timeout_defaults() -> None:
    assert SessionTimeouts.from_config(2000) == SessionTimeouts(4000, 40000)


# --------------------------------------------------------------------------- ExpiryQueue


def test_expiry_queue_rounds_up_to_the_next_interval() -> None:
    q: ExpiryQueue[str] = ExpiryQueue(2000, now=1000)
    assert q.next_expiration_time == 2000
    assert q.update("a", 4000, now=1000) == 6000
    assert q.update("a", 4000, now=1500) is None  # same bucket: nothing to do
    assert q.update("a", 4000, now=2000) == 8000
    assert q.expiry_time("a") == 8000
    assert q.poll(1999) == []
    assert q.poll(2000) == []  # bucket 2000 is empty; the queue moves on
    assert q.next_expiration_time == 4000
    assert q.wait_time(3000) == 1000
    assert q.poll_all(7999) == []
    assert q.poll_all(8000) == ["a"]
    assert "a" not in q
    assert q.next_expiration_time == 10000


def test_expiry_queue_exact_multiple_goes_one_interval_further() -> None:
    q: ExpiryQueue[int] = ExpiryQueue(200, now=0)
    assert q.update(1, 1000, now=0) == 1200  # (0 + 1000) / 200 + 1 intervals
    assert q.remove(1) == 1200
    assert q.remove(1) is None


def test_expiry_queue_long_idle_gap_is_cheap() -> None:
    q: ExpiryQueue[int] = ExpiryQueue(1, now=0)
    q.update(1, 10, now=0)
    # A loop of one poll per interval would take 10^12 steps here.
    assert q.poll_all(1e12) == [1]
    assert q.next_expiration_time == 10**12 + 1


class ExpiryQueueModel(RuleBasedStateMachine):
    """The queue against a plain model: an element is due once its rounded-up time <= now."""

    @initialize(interval=st.integers(1, 50), start=st.integers(0, 1000))
    def start(self, interval: int, start: int) -> None:
        self.interval = interval
        self.now = start
        self.queue: ExpiryQueue[int] = ExpiryQueue(interval, start)
        self.model: dict[int, int] = {}

    @rule(elem=st.integers(0, 8), timeout=st.integers(0, 300))
    def update(self, elem: int, timeout: int) -> None:
        self.queue.update(elem, timeout, self.now)
        self.model[elem] = ((self.now + timeout) // self.interval + 1) * self.interval

    @rule(elem=st.integers(0, 8))
    def remove(self, elem: int) -> None:
        assert self.queue.remove(elem) == self.model.pop(elem, None)

    @rule(step=st.integers(0, 400))
    def advance(self, step: int) -> None:
        self.now += step
        due = sorted(e for e, t in self.model.items() if t <= self.now)
        got = self.queue.poll_all(self.now)
        assert sorted(got) == due
        for e in due:
            del self.model[e]

    @invariant()
    def same_members(self) -> None:
        if hasattr(self, "model"):
            assert {e: self.queue.expiry_time(e) for e in self.model} == self.model
            assert len(self.queue) == len(self.model)


TestExpiryQueueModel = ExpiryQueueModel.TestCase
TestExpiryQueueModel.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


# --------------------------------------------------------------------------- trackers


def test_tracker_expires_an_untouched_session_and_marks_it_closing() -> None:
    t = SessionTracker(server_id=3, tick_time=200, now=0)
    assert t.wake_at == math.inf
    sid = t.create_session(1000, now=0)
    assert server_id_of_session(sid) == 3
    assert t.expiry_time(sid) == 1200
    assert t.wake_at == 200
    assert t.expired(1000) == []
    assert t.touch_session(sid, 1000, now=1100)  # -> 2200
    assert t.expired(2199) == []
    [s] = t.expired(2200)
    assert s.session_id == sid and s.closing and s.timeout == 1000
    assert t.is_closing(sid)
    # A closing session can no longer be touched or used.
    assert not t.touch_session(sid, 1000, now=2300)
    assert t.check_session(sid, "conn") is SessionCheck.EXPIRED
    t.remove_session(sid)
    assert sid not in t
    assert t.check_session(sid, "conn") is SessionCheck.UNKNOWN
    assert t.check_global_session(sid, "conn") is SessionCheck.EXPIRED


def test_tracker_owners_and_revalidate() -> None:
    t = SessionTracker(server_id=1, tick_time=2000, now=0)
    sid = t.create_session(4000, now=0)
    assert t.check_session(sid, "learner-2") is SessionCheck.OK  # the first claims it
    assert t.check_session(sid, "learner-2") is SessionCheck.OK
    assert t.check_session(sid, "local") is SessionCheck.MOVED
    # The client reconnects through the leader's own port: REVALIDATE moves the owner.
    assert t.revalidate(sid, 4000, "local", now=100)
    assert t.check_session(sid, "learner-2") is SessionCheck.MOVED
    assert t.check_session(sid, "local") is SessionCheck.OK
    assert not t.revalidate(sid + 1, 4000, "local", now=100)
    t.set_session_closing(sid)
    assert not t.set_owner(sid, "learner-2")
    assert not t.revalidate(sid, 4000, "learner-2", now=200)


def test_tracker_learner_ping_touches() -> None:
    t = SessionTracker(server_id=3, tick_time=200, now=0)
    a = t.create_session(1000, now=0)
    touches = decode_ping_sessions(
        encode_ping_sessions([TouchedSession(a, 1000), TouchedSession(12345, 4000)])
    )
    assert touches is not None
    t.touch_from_learner(touches, now=900)  # unknown 12345 is ignored
    assert t.expiry_time(a) == 2000
    assert 12345 not in t


def test_tracker_track_keeps_first_timeout_and_commit() -> None:
    t = SessionTracker(server_id=1, tick_time=100, now=0)
    assert t.track_session(77, 1000, now=0)
    assert not t.track_session(77, 3000, now=0)
    assert t.timeout_of(77) == 1000
    assert t.expiry_time(77) == 3100
    assert t.commit_session(77, 1000)
    assert not t.commit_session(77, 1000)
    assert t.session_timeouts() == {77: 1000}
    t.remove_session(77)
    assert t.session_timeouts() == {}
    assert t.wake_at == math.inf


def test_tracker_many_sessions_expire_in_bucket_order() -> None:
    t = SessionTracker(server_id=1, tick_time=10, now=0)
    ids = [t.create_session(100 + 10 * i, now=0) for i in range(50)]
    got = [s.session_id for s in t.expired(10_000)]
    assert got == ids
    assert len(t) == 50 and all(t.is_closing(i) for i in ids)


def test_learner_tracker_touch_table() -> None:
    lt = LearnerSessionTracker(server_id=2, now=5)
    sid = lt.create_session()
    assert server_id_of_session(sid) == 2
    assert lt.snapshot() == ()
    assert lt.commit_session(sid, 4000)
    assert lt.is_global_session(sid)
    assert lt.snapshot() == (TouchedSession(sid, 4000),)  # commit counts as a touch
    assert lt.snapshot() == ()  # the table is handed out once
    lt.touch_session(sid, 4000)
    lt.touch_session(99, 1000)  # unknown here: still reported, the leader decides
    assert set(lt.snapshot()) == {TouchedSession(sid, 4000), TouchedSession(99, 1000)}
    lt.touch_session(sid, 4000)
    lt.remove_session(sid)
    assert lt.snapshot() == ()
    assert lt.session_timeouts() == {}


def test_a_new_leader_tracks_the_database_sessions() -> None:
    t = SessionTracker(server_id=2, tick_time=100, now=5000, sessions={11: 1000, 12: 3000})
    assert t.session_timeouts() == {11: 1000, 12: 3000}
    assert t.expiry_time(11) == 6100 and t.expiry_time(12) == 8100
    assert [s.session_id for s in t.expired(6100)] == [11]
    lt = LearnerSessionTracker(server_id=2, now=0, sessions={11: 1000})
    assert lt.is_global_session(11) and lt.snapshot() == ()
