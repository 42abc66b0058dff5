"""Sessions as ZooKeeper 3.8 keeps them: ids, passwords, timeouts, expiry and owners.

Facts: ``docs/spec/zk-server.md`` §2.1 (session ids, passwords, timeout negotiation) and
§2.8 (expiry, the learners' touch tables, owners); ZooKeeper's ``ZooKeeperServer``,
``SessionTrackerImpl``, ``ExpiryQueue``, ``LearnerSessionTracker`` and ``Leader``.

* Passwords are ``java.util.Random(sessionId ^ 0xB3415C00).nextBytes(16)``
  (``ZooKeeperServer#generatePasswd``), bit for bit, so that a client can move a session
  between Java and zkquorum servers of one ensemble.
* Ids: the creating server's id in the high byte, a millisecond time below, then +1 per
  session (``SessionTrackerImpl#initializeNextSessionId``).
* :class:`SessionTracker` is the leader's (``SessionTrackerImpl`` with local sessions off):
  expiry in ``tickTime`` buckets, the closing flag, owners.
* :class:`LearnerSessionTracker` is a follower's or observer's: no expiry, a touch table
  shipped to the leader in every PING reply.

Time is the core's monotonic milliseconds (``docs/architecture.md``, "Time"); nothing here
reads a clock.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Final, Generic, TypeVar

from zkquorum.wire.records import fast_init
from zkquorum.wire.snapshot import Session as TouchedSession

__all__ = [
    "PASSWORD_LENGTH",
    "ExpiryQueue",
    "JavaRandom",
    "LearnerSessionTracker",
    "Session",
    "SessionCheck",
    "SessionIdGenerator",
    "SessionTimeouts",
    "SessionTracker",
    "TouchedSession",
    "check_password",
    "generate_password",
    "initialize_next_session_id",
    "server_id_of_session",
]

_MULTIPLIER: Final = 0x5DEECE66D
_ADDEND: Final = 0xB
_MASK48: Final = (1 << 48) - 1
_MASK64: Final = (1 << 64) - 1
_LONG_MIN: Final = -(1 << 63)

# ZooKeeperServer#superSecret: the XOR applied to a session id to seed its password.
_SUPER_SECRET: Final = 0xB3415C00
PASSWORD_LENGTH: Final = 16


def _to_int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _to_int64(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value >> 63 else value


class JavaRandom:
    """``java.util.Random``: the JDK's 48-bit linear congruential generator, exactly.

    The seed is scrambled with the multiplier once (``Random#initialScramble``); every
    ``next(bits)`` advances the state and returns its top ``bits`` bits as a signed int.
    """

    __slots__ = ("_seed",)

    def __init__(self, seed: int) -> None:
        self._seed = (seed ^ _MULTIPLIER) & _MASK48

    def next(self, bits: int) -> int:
        """``Random#next(bits)``: ``bits`` (1..32) pseudo-random bits, as a Java int."""
        self._seed = (self._seed * _MULTIPLIER + _ADDEND) & _MASK48
        return _to_int32(self._seed >> (48 - bits))

    def next_int(self, bound: int | None = None) -> int:
        """``Random#nextInt()`` or, with ``bound``, ``Random#nextInt(bound)``."""
        if bound is None:
            return self.next(32)
        if bound <= 0:
            raise ValueError("bound must be positive")
        r = self.next(31)
        m = bound - 1
        if bound & m == 0:  # a power of two: take the high bits
            return (bound * r) >> 31
        u = r
        while True:
            r = u % bound
            # The JDK rejects u values from the last, partial bucket (int overflow test).
            if _to_int32(u - r + m) >= 0:
                return r
            u = self.next(31)

    def next_long(self) -> int:
        """``Random#nextLong()``: two ints, high then low, summed as Java longs."""
        high = self.next(32)
        low = self.next(32)
        return _to_int64((high << 32) + low)

    def next_bytes(self, length: int) -> bytes:
        """``Random#nextBytes``: each ``nextInt()`` gives up to 4 bytes, low byte first."""
        out = bytearray(length)
        i = 0
        while i < length:
            rnd = self.next(32) & 0xFFFFFFFF
            for _ in range(min(length - i, 4)):
                out[i] = rnd & 0xFF
                rnd >>= 8
                i += 1
        return bytes(out)


def generate_password(session_id: int) -> bytes:
    """The 16-byte password of a session (``ZooKeeperServer#generatePasswd``).

    Any server of an ensemble, Java or zkquorum, computes the same bytes for the same id,
    which is what lets ``reopenSession`` accept a session created elsewhere.
    """
    return JavaRandom(session_id ^ _SUPER_SECRET).next_bytes(PASSWORD_LENGTH)


def check_password(session_id: int, password: bytes | None) -> bool:
    """``ZooKeeperServer#checkPasswd``: session 0 never matches; otherwise bytes equal."""
    return session_id != 0 and password is not None and password == generate_password(session_id)


def server_id_of_session(session_id: int) -> int:
    """The high byte of a session id (``LeaderSessionTracker#getServerIdFromSessionId``,
    an arithmetic shift: negative for server ids of 128 and above)."""
    return _to_int64(session_id) >> 56


def initialize_next_session_id(server_id: int, elapsed_ms: float) -> int:
    """The first session id a server hands out (``SessionTrackerImpl#initializeNextSessionId``).

    ``((elapsed << 24) >>> 8) | (sid << 56)`` in Java longs: 40 bits of the millisecond
    time in bits 16..55, the server id in the high byte (a logical shift keeps the time
    out of the sign).  ``Long.MIN_VALUE`` marks containers (``EphemeralType``), so it is
    skipped.
    """
    elapsed = int(elapsed_ms)
    next_sid = ((elapsed << 24) & _MASK64) >> 8
    next_sid = _to_int64(next_sid | (server_id << 56))
    if next_sid == _LONG_MIN:
        next_sid += 1
    return next_sid


class SessionIdGenerator:
    """Hands out session ids from :func:`initialize_next_session_id`, +1 each time
    (``nextSessionId.getAndIncrement()``, wrapping as a Java long)."""

    __slots__ = ("_next",)

    def __init__(self, server_id: int, elapsed_ms: float) -> None:
        self._next = initialize_next_session_id(server_id, elapsed_ms)

    def peek(self) -> int:
        return self._next

    def next(self) -> int:
        sid = self._next
        self._next = _to_int64(sid + 1)
        return sid


@fast_init
@dataclass(frozen=True, slots=True)
class SessionTimeouts:
    """The negotiable session timeout range (``ZooKeeperServer#setMin/MaxSessionTimeout``).

    zoo.cfg's ``minSessionTimeout``/``maxSessionTimeout``; ``-1`` (the default) means
    2 and 20 ticks.
    """

    min_ms: int
    max_ms: int

    @classmethod
    def from_config(
        cls, tick_time: int, min_session_timeout: int = -1, max_session_timeout: int = -1
    ) -> SessionTimeouts:
        lo = tick_time * 2 if min_session_timeout == -1 else min_session_timeout
        hi = tick_time * 20 if max_session_timeout == -1 else max_session_timeout
        return cls(lo, hi)

    def negotiate(self, requested: int) -> int:
        """``processConnectRequest``: raise to the minimum, then lower to the maximum."""
        timeout = requested
        if timeout < self.min_ms:
            timeout = self.min_ms
        if timeout > self.max_ms:
            timeout = self.max_ms
        return timeout


# --------------------------------------------------------------------------- expiry queue

E = TypeVar("E", bound=Hashable)


class ExpiryQueue(Generic[E]):
    """``ExpiryQueue``: elements expire in buckets, one per multiple of the interval.

    An element touched at ``now`` with ``timeout`` lands in the bucket at
    ``(now + timeout) // interval * interval + interval``: it expires at the first bucket
    boundary *after* its deadline, so one timer per interval serves every element.
    ``poll`` hands out one bucket per interval, in order; a bucket emptied by touches is
    simply skipped.
    """

    __slots__ = ("_buckets", "_elements", "_interval", "_next_expiration")

    def __init__(self, interval: int, now: float) -> None:
        if interval <= 0:
            raise ValueError("the expiration interval must be positive")
        self._interval = interval
        self._elements: dict[E, int] = {}
        self._buckets: dict[int, dict[E, None]] = {}
        self._next_expiration = self._round_up(int(now))

    def _round_up(self, time: int) -> int:
        return (time // self._interval + 1) * self._interval

    @property
    def interval(self) -> int:
        return self._interval

    @property
    def next_expiration_time(self) -> int:
        """The time of the next bucket :meth:`poll` will hand out."""
        return self._next_expiration

    def __len__(self) -> int:
        return len(self._elements)

    def __contains__(self, elem: object) -> bool:
        return elem in self._elements

    def expiry_time(self, elem: E) -> int | None:
        return self._elements.get(elem)

    def update(self, elem: E, timeout: int, now: float) -> int | None:
        """Move ``elem`` to the bucket for ``now + timeout``; that time, or ``None`` if
        it was already there."""
        new_time = self._round_up(int(now) + timeout)
        prev = self._elements.get(elem)
        if prev == new_time:
            return None
        self._buckets.setdefault(new_time, {})[elem] = None
        self._elements[elem] = new_time
        if prev is not None:
            bucket = self._buckets.get(prev)
            if bucket is not None:
                bucket.pop(elem, None)
                if not bucket:
                    del self._buckets[prev]
        return new_time

    def remove(self, elem: E) -> int | None:
        """Forget ``elem``; its expiry time, or ``None`` if it was not queued."""
        time = self._elements.pop(elem, None)
        if time is not None:
            bucket = self._buckets.get(time)
            if bucket is not None:
                bucket.pop(elem, None)
                if not bucket:
                    del self._buckets[time]
        return time

    def wait_time(self, now: float) -> float:
        """``getWaitTime``: ms until the next bucket is due (0 when due)."""
        return max(0.0, self._next_expiration - now)

    def poll(self, now: float) -> list[E]:
        """``poll``: if the next bucket is due, advance one interval and return its
        elements (removed from the queue); else nothing."""
        if now < self._next_expiration:
            return []
        time = self._next_expiration
        self._next_expiration = time + self._interval
        bucket = self._buckets.pop(time, None)
        if not bucket:
            return []
        for elem in bucket:
            del self._elements[elem]
        return list(bucket)

    def poll_all(self, now: float) -> list[E]:
        """Every element due at ``now``: ``poll`` until the next bucket is in the future
        (``SessionTrackerImpl#run``'s loop), skipping empty intervals in one step."""
        out: list[E] = []
        while now >= self._next_expiration:
            if self._next_expiration in self._buckets:
                out.extend(self.poll(now))
                continue
            # The bucket at hand is empty: go straight to the earliest non-empty one, or
            # past `now` (the bucket count is bounded by maxSessionTimeout / interval).
            earliest = min(self._buckets, default=None)
            if earliest is not None and earliest <= now:
                self._next_expiration = earliest
            else:
                self._next_expiration = self._round_up(int(now))
        return out

    def buckets(self) -> Iterator[tuple[int, tuple[E, ...]]]:
        """The non-empty buckets by time (for ``dump``/``cons``-style reports)."""
        for time in sorted(self._buckets):
            yield time, tuple(self._buckets[time])


# --------------------------------------------------------------------------- leader side


class SessionCheck(enum.Enum):
    """The outcome of ``SessionTrackerImpl#checkSession``."""

    OK = "ok"
    UNKNOWN = "unknown"  # UnknownSessionException
    EXPIRED = "expired"  # SessionExpiredException: closing
    MOVED = "moved"  # SessionMovedException: another owner


@fast_init
@dataclass(frozen=True, slots=True)
class Session:
    """One tracked session (``SessionTrackerImpl.SessionImpl``).

    ``owner`` is whichever connection the requests of this session currently arrive
    through: a learner connection on the leader, or the leader's own client port.  Owners
    are compared with ``==``; ``None`` means not yet known (the first request claims it).
    """

    session_id: int
    timeout: int
    closing: bool = False
    owner: Hashable | None = None


class SessionTracker:
    """The leader's session table (``SessionTrackerImpl``, local sessions off).

    Every request and every learner PING entry touches its session; :meth:`expired` hands
    out the sessions whose bucket is due, already marked closing, for the caller to
    submit a ``closeSession`` each.  ``wake_at`` is when the next bucket is due.
    """

    __slots__ = ("_committed", "_ids", "_queue", "_sessions")

    def __init__(
        self,
        server_id: int,
        tick_time: int,
        now: float,
        sessions: Mapping[int, int] | None = None,
    ) -> None:
        """A tracker for a new leader: ``sessions`` are the database's committed sessions
        and timeouts, each tracked as if just touched (the ``SessionTrackerImpl``
        constructor), so that a leader change gives every client a full timeout."""
        self._sessions: dict[int, Session] = {}
        self._queue: ExpiryQueue[int] = ExpiryQueue(tick_time, now)
        self._ids = SessionIdGenerator(server_id, now)
        self._committed: dict[int, int] = dict(sessions or {})
        for sid, timeout in self._committed.items():
            self.track_session(sid, timeout, now)

    # -- creation and lookup

    def create_session(self, timeout: int, now: float) -> int:
        """``createSession``: a new id from this server's generator, tracked."""
        sid = self._ids.next()
        self.track_session(sid, timeout, now)
        return sid

    def track_session(self, session_id: int, timeout: int, now: float) -> bool:
        """``trackSession``: add (True) or keep the existing session (False, same
        timeout as before); either way its expiry moves to ``now + timeout``.

        3.8 keeps the first timeout of a known session and uses the new one only for
        this expiry update.
        """
        s = self._sessions.get(session_id)
        added = s is None
        if s is None:
            s = Session(session_id, timeout)
            self._sessions[session_id] = s
        self._queue.update(session_id, timeout, now)
        return added

    def commit_session(self, session_id: int, timeout: int) -> bool:
        """``commitSession``: the createSession txn committed (``sessionsWithTimeout``)."""
        added = session_id not in self._committed
        self._committed[session_id] = timeout
        return added

    def get(self, session_id: int) -> Session | None:
        return self._sessions.get(session_id)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def sessions(self) -> Iterable[Session]:
        return self._sessions.values()

    def session_timeouts(self) -> dict[int, int]:
        """Committed sessions and their timeouts (what a snapshot stores)."""
        return dict(self._committed)

    def timeout_of(self, session_id: int) -> int | None:
        s = self._sessions.get(session_id)
        return None if s is None else s.timeout

    # -- liveness

    def touch_session(self, session_id: int, timeout: int, now: float) -> bool:
        """``touchSession``: False for an unknown or closing session (left alone)."""
        s = self._sessions.get(session_id)
        if s is None or s.closing:
            return False
        self._queue.update(session_id, timeout, now)
        return True

    def touch_from_learner(self, touches: Iterable[TouchedSession], now: float) -> None:
        """A learner's PING reply (``LearnerHandler`` case PING): touch each pair."""
        for t in touches:
            self.touch_session(t.session_id, t.timeout, now)

    def set_session_closing(self, session_id: int) -> None:
        s = self._sessions.get(session_id)
        if s is not None and not s.closing:
            self._sessions[session_id] = replace(s, closing=True)

    def is_closing(self, session_id: int) -> bool:
        s = self._sessions.get(session_id)
        return s is not None and s.closing

    def remove_session(self, session_id: int) -> None:
        """``removeSession``: the closeSession txn committed, or the session is gone."""
        self._sessions.pop(session_id, None)
        self._committed.pop(session_id, None)
        self._queue.remove(session_id)

    def expired(self, now: float) -> list[Session]:
        """Sessions whose bucket is due at ``now``, each marked closing (as
        ``SessionTrackerImpl#run`` does before ``expirer.expire``), in bucket order."""
        out: list[Session] = []
        for sid in self._queue.poll_all(now):
            s = self._sessions.get(sid)
            if s is None:
                continue
            s = replace(s, closing=True)
            self._sessions[sid] = s
            out.append(s)
        return out

    @property
    def wake_at(self) -> float:
        """When :meth:`expired` next has something to hand out (``inf`` when idle)."""
        if not len(self._queue):
            return math.inf
        return float(self._queue.next_expiration_time)

    def expiry_buckets(self) -> Iterator[tuple[int, tuple[int, ...]]]:
        """Session ids by the time their bucket expires (wall ms), oldest first (``dump``)."""
        return self._queue.buckets()

    def expiry_time(self, session_id: int) -> int | None:
        return self._queue.expiry_time(session_id)

    # -- owners

    def check_session(self, session_id: int, owner: Hashable) -> SessionCheck:
        """``checkSession``: unknown, closing, or owned by someone else; the first check
        of an ownerless session makes ``owner`` its owner."""
        s = self._sessions.get(session_id)
        if s is None:
            return SessionCheck.UNKNOWN
        if s.closing:
            return SessionCheck.EXPIRED
        if s.owner is None:
            self._sessions[session_id] = replace(s, owner=owner)
        elif s.owner != owner:
            return SessionCheck.MOVED
        return SessionCheck.OK

    def check_global_session(self, session_id: int, owner: Hashable) -> SessionCheck:
        """``checkGlobalSession``: an unknown session counts as expired."""
        result = self.check_session(session_id, owner)
        return SessionCheck.EXPIRED if result is SessionCheck.UNKNOWN else result

    def set_owner(self, session_id: int, owner: Hashable) -> bool:
        """``setOwner``; False (SessionExpiredException) for an unknown or closing one."""
        s = self._sessions.get(session_id)
        if s is None or s.closing:
            return False
        if s.owner != owner:
            self._sessions[session_id] = replace(s, owner=owner)
        return True

    def revalidate(self, session_id: int, timeout: int, owner: Hashable, now: float) -> bool:
        """``Leader#revalidateSession``: a touch decides validity; a valid session moves
        to ``owner`` (the learner connection the client reconnected through)."""
        valid = self.touch_session(session_id, timeout, now)
        if valid:
            self.set_owner(session_id, owner)
        return valid

    def next_session_id(self) -> int:
        """The id :meth:`create_session` would hand out next."""
        return self._ids.peek()


# --------------------------------------------------------------------------- learner side


class LearnerSessionTracker:
    """A learner's sessions (``LearnerSessionTracker``, local sessions off).

    It never expires anything: it remembers the committed global sessions and which of
    them were touched since the last PING reply, and hands that table to the PING reply
    (``Learner#ping``), emptying it.  Ids for sessions created here come from this
    server's own generator; the leader's prep makes them real.
    """

    __slots__ = ("_global", "_ids", "_touched")

    def __init__(
        self, server_id: int, now: float, sessions: Mapping[int, int] | None = None
    ) -> None:
        self._global: dict[int, int] = dict(sessions or {})
        self._touched: dict[int, int] = {}
        self._ids = SessionIdGenerator(server_id, now)

    def create_session(self) -> int:
        return self._ids.next()

    def commit_session(self, session_id: int, timeout: int) -> bool:
        """A committed createSession: now global, and touched (as 3.8 does)."""
        added = session_id not in self._global
        self._global[session_id] = timeout
        self._touched[session_id] = timeout
        return added

    def is_global_session(self, session_id: int) -> bool:
        return session_id in self._global

    def touch_session(self, session_id: int, timeout: int) -> bool:
        """Any request or ping of a local client connection; always True (3.8 records
        even sessions it does not know: the leader decides)."""
        self._touched[session_id] = timeout
        return True

    def remove_session(self, session_id: int) -> None:
        self._global.pop(session_id, None)
        self._touched.pop(session_id, None)

    def snapshot(self) -> tuple[TouchedSession, ...]:
        """The touch table for the next PING reply, then an empty one
        (``getAndSet(new map)``); encode it with ``wire.quorum.encode_ping_sessions``."""
        table = tuple(TouchedSession(sid, to) for sid, to in self._touched.items())
        self._touched = {}
        return table

    def session_timeouts(self) -> dict[int, int]:
        return dict(self._global)
