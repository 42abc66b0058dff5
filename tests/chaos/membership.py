"""Membership changes by dynamic reconfiguration during a linearizability campaign.

A :class:`Reconfigurer` (a thread with its own kazoo client, authenticated as the super
user) changes the membership of a :class:`~tests.chaos.harness.ChaosCluster` while the
faults run: it removes a voter (the leader, or another), adds back a server that was
removed, and adds a spare that was in no config.  A removed server keeps running as a
non-voting follower (3.8 keeps it connected); before some re-adds it is restarted with a
zoo.cfg naming the members plus itself, as an operator would.  A spare is started with
such a zoo.cfg just before the reconfig that adds it.

Every ``reconfig`` call, and the read of /zookeeper/config (sync, then getData) after
it, is an operation of the campaign's history (:class:`~tests.chaos.lin.ConfigOp`): an
answer is the new config, a refusal (NEWCONFIGNOQUORUM, RECONFIGINPROGRESS...) changes
nothing, a call without an answer is open-ended.  The steps are seeded; the first ones
are chosen so that a campaign covers a removal of the leader, a re-add and (with a
spare) a spare's add: :meth:`Reconfigurer.covered`.

:func:`agreed_config` is the end of the campaign: every live server (member or not)
shows one config in ``conf`` and names the same members in the dynamic file its zoo.cfg
points at (what a restart would read); :func:`read_each` then reads /zookeeper/config on
each of them.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from typing import Any

from tests.chaos import lin
from tests.chaos.harness import SUPER_PASSWORD, ChaosCluster
from tests.interop.zkserver import four_letter_word, wait_for
from zkquorum.sim.lincheck import UNKNOWN, Operation

ADMIN_CLIENT = 100
"""The client id of the reconfig calls (and of their config reads) in the history."""


def conf_config(text: str) -> lin.Config | None:
    """The membership section of a ``conf`` answer."""
    _head, sep, tail = text.partition("membership: \n")
    return lin.parse_config(tail.encode()) if sep else None


class Reconfigurer(threading.Thread):
    """Seeded membership changes until ``stop`` is set (see the module docstring)."""

    def __init__(
        self,
        c: ChaosCluster,
        book: lin.Book,
        seed: int,
        stop: threading.Event,
        start: lin.Config,
        started: float,
        log: list[str],
    ) -> None:
        """``log``: where each call and its outcome is noted (the campaign's own log)."""
        super().__init__(name="lin-reconfigurer", daemon=True)
        from kazoo.client import KazooClient
        from kazoo.retry import KazooRetry

        self.c = c
        self.book = book
        self.rng = random.Random(f"zkquorum-reconfig:{seed}")
        self.stop_event = stop
        self.config = start
        self.started = started
        base = len(start.members)
        self.min_voters = max(2, base - 1)
        self.max_voters = base + 1
        self.ever_members = {sid for sid, _ in start.members}
        self.failure: BaseException | None = None
        self.log = log
        self.outcomes: collections.Counter[str] = collections.Counter()
        """Answers to the reconfig calls: ok, an error's name, or no answer."""
        self.changes: collections.Counter[str] = collections.Counter()
        """Changes that took effect (seen in the config read after the call)."""
        self.restarted = 0
        """Removed servers restarted (with the members plus themselves) before a re-add."""
        self.doing = ""
        hosts = ",".join(f"{s.host}:{s.client_port}" for s in c.servers.values())
        self.zk = KazooClient(
            hosts=hosts,
            timeout=4.0,
            auth_data=[("digest", f"super:{SUPER_PASSWORD}")],
            connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5),
            command_retry=None,
        )

    # -- books ---------------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.log.append(f"+{time.monotonic() - self.started:7.2f}s reconfig: {text}")

    def covered(self) -> bool:
        """A leader removed, a removed server added back, every spare added."""
        spares = not self.c.spares or self.changes["add spare"] > 0
        return self.changes["remove leader"] > 0 and self.changes["re-add"] > 0 and spares

    def describe(self) -> str:
        return f"reconfigurer: {self.doing or 'between calls'}"

    # -- the thread ----------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.stop_event.wait(self.rng.uniform(0.2, 1.2)):
                self.step()
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def step(self) -> None:
        members = {sid for sid, _ in self.config.members}
        out = [sid for sid in self.c.sids if sid not in members]
        can_add = bool(out) and len(members) < self.max_voters
        can_remove = len(members) > self.min_voters
        removed = [sid for sid in out if sid in self.ever_members]
        spares = [sid for sid in out if sid not in self.ever_members]
        leader = self._leader()
        if self.changes["remove leader"] == 0 and can_remove and leader in members:
            self.remove(leader, "remove leader")
        elif self.changes["re-add"] == 0 and removed and can_add:
            self.add(self.rng.choice(removed))
        elif self.changes["add spare"] == 0 and spares and can_add:
            self.add(self.rng.choice(spares))
        elif can_add and (not can_remove or self.rng.random() < 0.5):
            self.add(self.rng.choice(out))
        elif can_remove:
            if leader in members and self.rng.random() < 0.4:
                self.remove(leader, "remove leader")
            else:
                sid = self.rng.choice(sorted(members))
                self.remove(sid, "remove leader" if sid == leader else "remove follower")

    def _leader(self) -> int | None:
        for sid in self.c.live():
            info = self.c.servers[sid].srvr()
            if info and info.get("Mode") == "leader":
                return sid
        return None

    def remove(self, sid: int, what: str) -> None:
        self.call(lin.ConfigOp("reconfig", leaving=frozenset({sid})), what, f"remove {sid}")

    def add(self, sid: int) -> None:
        server = self.c.servers[sid]
        if sid not in self.ever_members:
            what = "add spare"
            if sid in self.c.dormant:
                self.note(f"starting spare {sid}: its zoo.cfg names {self.config} and itself")
                members = dict(self.config.members)
                server.cfg_path.write_text(self.c.join_config_text(sid, members))
                self.c.start([sid])
        else:
            what = "re-add"
            if self.rng.random() < 0.5 and self.c.claim(sid):
                # The operator's way: stop it, give it the members plus itself, start it.
                try:
                    server.stop()
                    rewritten = self.c.rejoin_config(sid)
                    self.c.restart(sid)
                    self.restarted += 1
                    self.note(f"restarted {sid} (zoo.cfg rewritten: {rewritten})")
                finally:
                    self.c.release(sid)
        op = lin.ConfigOp("reconfig", joining=((sid, server.spec()),))
        if self.call(op, what, f"add {sid}") is not None:
            self.ever_members.add(sid)

    def call(self, op: lin.ConfigOp, what: str, text: str) -> lin.Config | None:
        """Make the reconfig call, record it, then read the config; the config read when
        the change took effect (counted under ``what``), else None."""
        from kazoo.exceptions import ConnectionLoss, KazooException, SessionExpiredError
        from kazoo.handlers.threading import KazooTimeoutError

        before = self.config
        joining = ",".join(f"server.{sid}={spec}" for sid, spec in op.joining) or None
        leaving = ",".join(str(sid) for sid in sorted(op.leaving)) or None
        self.doing = f"{text} (since +{time.monotonic() - self.started:.2f} s)"
        call = time.monotonic_ns()
        output: Any
        try:
            data, _stat = self.zk.reconfig_async(joining, leaving, None, -1).get(
                timeout=lin.OP_TIMEOUT_S
            )
            output = lin.parse_config(data)
            self.config = output
            answer = "ok"
        except (ConnectionLoss, SessionExpiredError, KazooTimeoutError) as exc:
            output, answer = UNKNOWN, f"no answer ({type(exc).__name__})"
        except KazooException as exc:
            output = answer = type(exc).__name__
        finally:
            self.doing = ""
        ret = None if output is UNKNOWN else time.monotonic_ns()
        self.book.add(Operation(ADMIN_CLIENT, call, ret, op, output))
        self.outcomes[answer] += 1
        self.note(f"{text} [{what}] from {before}: {output if answer == 'ok' else answer}")
        after = self.read()
        took = after is not None and after.members == op.apply(before.members)
        if after is not None and took and after.members != before.members:
            self.changes[what] += 1
            return after
        return None

    def read(self) -> lin.Config | None:
        """Sync and read /zookeeper/config (recorded), again after a connection loss,
        until it is read or the thread is told to stop."""
        from kazoo.exceptions import ConnectionLoss, SessionExpiredError
        from kazoo.handlers.threading import KazooTimeoutError

        while True:
            call = time.monotonic_ns()
            try:
                self.doing = "sync /zookeeper/config"
                self.zk.sync_async(lin.CONFIG).get(timeout=lin.OP_TIMEOUT_S)
                self.doing = "get /zookeeper/config"
                data, _stat = self.zk.get_async(lin.CONFIG).get(timeout=lin.OP_TIMEOUT_S)
            except (ConnectionLoss, SessionExpiredError, KazooTimeoutError):
                if self.stop_event.wait(0.1):
                    return None
                continue
            finally:
                self.doing = ""
            config = lin.parse_config(data)
            ret = time.monotonic_ns()
            self.book.add(Operation(ADMIN_CLIENT, call, ret, lin.ConfigOp("read"), config))
            self.config = config
            return config

    def summary(self) -> str:
        return (
            f"calls {dict(self.outcomes)}, changes {dict(self.changes)}, "
            f"{self.restarted} removed server(s) restarted before a re-add"
        )


def read_each(c: ChaosCluster, book: lin.Book, client: int = -4) -> dict[int, lin.Config]:
    """Sync and read /zookeeper/config on every live server, each from a session of its
    own (recorded in ``book`` as reads of ``client``); raises :class:`lin.NoAnswer`."""
    from kazoo.client import KazooClient

    out: dict[int, lin.Config] = {}
    for sid in c.live():
        server = c.servers[sid]
        zk = KazooClient(hosts=f"{server.host}:{server.client_port}", timeout=4.0)
        try:
            try:
                zk.start(timeout=30)
            except Exception as exc:
                raise lin.NoAnswer(f"server {sid}: no session ({type(exc).__name__})") from exc
            call = time.monotonic_ns()
            lin.answer(zk.sync_async(lin.CONFIG), f"server {sid}: sync {lin.CONFIG}")
            data, _ = lin.answer(zk.get_async(lin.CONFIG), f"server {sid}: get {lin.CONFIG}")
            config = lin.parse_config(data)
            book.add(Operation(client, call, time.monotonic_ns(), lin.ConfigOp("read"), config))
            out[sid] = config
        finally:
            problem = lin.close_client(zk)
            if problem:
                raise lin.NoAnswer(f"server {sid}: closing its client: {problem}")
    return out


def agreed_config(c: ChaosCluster, timeout: float) -> lin.Config:
    """Wait until every live server shows one config (``conf``), and the dynamic file
    its zoo.cfg points at names the same members (what it would restart with, for a
    member; a removed server's names the others); that config."""
    last: dict[int, lin.Config | str | None] = {}

    def check() -> lin.Config | None:
        seen: dict[int, lin.Config | None] = {}
        for sid in c.live():
            server = c.servers[sid]
            try:
                seen[sid] = conf_config(four_letter_word(server.host, server.client_port, "conf"))
            except OSError:
                seen[sid] = None
        last.clear()
        last.update(seen)
        configs = set(seen.values())
        if len(configs) != 1 or None in configs:
            return None
        (config,) = configs
        assert config is not None
        members = dict(config.members)
        for sid in seen:
            disk = c.disk_config(sid)
            if disk != members:
                last[sid] = f"{seen[sid]}, but its zoo.cfg leads to {sorted(disk)}"
                return None
        return config

    try:
        return wait_for(check, timeout=timeout, what="one config on every live server")
    except TimeoutError as exc:
        shown = {sid: str(v) for sid, v in last.items()}
        raise AssertionError(f"{exc}: {shown}") from exc
