"""Client workload and checks for :mod:`tests.chaos.test_linearizable`.

Workers are kazoo clients in threads.  Each records every operation with monotonic call
and return times (ns): compare-and-set loops on versioned registers (getData, then
setData with the version read), creates of sequential children, and linearizable reads
(sync, then getData or getChildren).  An operation whose outcome the client never
learned (connection loss, session expiry, no answer in time) is open-ended.  Plain
getData results are not linearizable in ZooKeeper and only feed the session checks.

Checks over what was recorded (:func:`check_run`):

* the history is linearizable for :class:`~zkquorum.sim.lincheck.ZnodeModel` and
  :class:`~zkquorum.sim.lincheck.SeqModel`;
* no acknowledged write is lost: each register's final version is at least the newest
  acknowledged one (and holds that write's data if equal), every acknowledged sequence
  number is among the final children;
* a session's reads never go back: per path, versions and mzxids never decrease; and
  once a session has seen zxid z (a read's mzxid, or its own write's), a read of any
  register returns at least the newest acknowledged write with mzxid <= z.

With dynamic reconfiguration the membership is one more object of the history
(:class:`ConfigModel`): ``reconfig`` calls (incremental: leaving sids, joining servers)
and linearizable reads of /zookeeper/config (sync, then getData), checked as any other.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import faulthandler
import itertools
import random
import signal
import threading
import time
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

from zkquorum.sim.lincheck import (
    BADVERSION,
    UNKNOWN,
    Model,
    Operation,
    SeqModel,
    SeqOp,
    Verdict,
    ZnodeModel,
    ZnodeOp,
    check,
    describe_failure,
    shrink_failure,
)

CONFIG = "/zookeeper/config"
ROOT = "/lin"
QUEUE = f"{ROOT}/q"
OP_TIMEOUT_S = 20.0
"""An operation without an answer after this long is recorded as open-ended."""
CLOSE_TIMEOUT_S = 30.0
"""Bound on stopping and closing one kazoo client (kazoo joins its threads unbounded)."""


class NoAnswer(AssertionError):
    """A kazoo call of the setup or the final read got no answer in time."""


def answer(result: Any, what: str, timeout: float = OP_TIMEOUT_S) -> Any:
    """The outcome of a kazoo async call, waited for at most ``timeout`` s."""
    from kazoo.handlers.threading import KazooTimeoutError

    try:
        return result.get(timeout=timeout)
    except KazooTimeoutError as exc:
        raise NoAnswer(f"{what}: no answer in {timeout:g} s") from exc


def close_client(zk: Any, timeout: float = CLOSE_TIMEOUT_S) -> str | None:
    """Stop and close a kazoo client within ``timeout`` s; None, or what went wrong.

    ``KazooClient.stop`` joins kazoo's own threads with no deadline, so it runs in a
    helper thread that this waits for with one.
    """
    problem: list[str] = []

    def run() -> None:
        try:
            zk.stop()
            zk.close()
        except Exception as exc:
            problem.append(f"{type(exc).__name__}: {exc}")

    t = threading.Thread(target=run, name="lin-close", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return f"stop/close still running after {timeout:g} s"
    return problem[0] if problem else None


class Watchdog:
    """Names the phase a campaign is in; a phase that outlasts its bound is reported.

    Every blocking call of the campaign has its own deadline; this is the backstop for
    what was missed.  When a phase runs past its bound, the watchdog writes every
    thread's stack to ``stacks`` and sends SIGINT to the main thread (KeyboardInterrupt
    there, also out of a blocking wait);
    ``fired`` then says which phase and bound, for the test to fail with.
    """

    def __init__(self, stacks: Path) -> None:
        self.stacks = stacks
        self.fired: str | None = None
        self._name = ""
        self._deadline: float | None = None
        self._bound = 0.0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="lin-watchdog", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def phase(self, name: str, bound_s: float) -> Iterator[None]:
        with self._cond:
            outer = (self._name, self._deadline, self._bound)
            self._name, self._deadline, self._bound = name, time.monotonic() + bound_s, bound_s
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._name, self._deadline, self._bound = outer
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(5)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self.fired = f"{self._name!r} still running after its bound of {self._bound:g} s"
                with self.stacks.open("w") as f:
                    f.write(f"watchdog: {self.fired}\n")
                    f.flush()
                    faulthandler.dump_traceback(file=f, all_threads=True)
                # A real SIGINT to the main thread: unlike _thread.interrupt_main it also
                # breaks a blocking wait (sleep, lock, join), and Python raises there.
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                return


def key_path(i: int) -> str:
    return f"{ROOT}/k{i}"


@dataclasses.dataclass(frozen=True)
class Read:
    """One observation of a register by a session, in the session's order."""

    client: int
    session: int
    path: str
    version: int
    mzxid: int
    own_write: bool  # the stat of the session's own acknowledged setData


@dataclasses.dataclass
class Book:
    """Everything the workers recorded; appended to under a lock."""

    ops: list[Operation] = dataclasses.field(default_factory=list)
    reads: list[Read] = dataclasses.field(default_factory=list)
    acked: list[tuple[str, bytes, int, int]] = dataclasses.field(default_factory=list)
    """(path, data, version, mzxid) of every acknowledged setData."""
    served: dict[int, int] = dataclasses.field(default_factory=dict)
    """client -> monotonic ns of the return of its newest answered operation."""
    errors: dict[str, int] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def add(self, op: Operation) -> None:
        with self.lock:
            self.ops.append(op)

    def answered(self, client: int, ret: int) -> None:
        with self.lock:
            self.served[client] = max(self.served.get(client, 0), ret)

    def error(self, name: str) -> None:
        with self.lock:
            self.errors[name] = self.errors.get(name, 0) + 1


class Worker(threading.Thread):
    """One kazoo client doing a seeded mix of operations until ``stop`` is set."""

    def __init__(
        self,
        client: int,
        hosts: str,
        keys: int,
        seed: int,
        book: Book,
        stop: threading.Event,
        *,
        config_reads: bool = False,
    ) -> None:
        """``config_reads``: a few of the operations are linearizable reads of
        /zookeeper/config (reconfig campaigns)."""
        super().__init__(name=f"lin-worker-{client}", daemon=True)
        from kazoo.client import KazooClient
        from kazoo.retry import KazooRetry

        self.client = client
        self.keys = keys
        self.rng = random.Random(f"zkquorum-lin:{seed}:{client}")
        self.book = book
        self.stop_event = stop
        self.failure: BaseException | None = None
        self.doing = ""
        """The kazoo call the worker waits on now ("" between calls), and since when."""
        self.since = 0.0
        self.zk = KazooClient(
            hosts=hosts,
            timeout=4.0,
            connection_retry=KazooRetry(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5),
            command_retry=None,
        )
        self.values = 0
        self.config_reads = config_reads

    # -- kazoo calls that answer or raise -----------------------------------------------

    def _wait(self, result: Any, what: str) -> Any:
        self.doing, self.since = what, time.monotonic()
        try:
            return result.get(timeout=OP_TIMEOUT_S)
        finally:
            self.doing = ""

    def describe(self) -> str:
        """Where the worker is, for a report about a worker that did not stop."""
        if not self.doing:
            return f"client {self.client}: between kazoo calls"
        waited = time.monotonic() - self.since
        return f"client {self.client}: waiting {waited:.1f} s on {self.doing}"

    def _session(self) -> int:
        sid = self.zk.client_id
        return int(sid[0]) if sid else 0

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                choice = self.rng.random()
                if self.config_reads and choice >= 0.97:
                    self.config_read()
                elif choice < 0.45:
                    self.cas()
                elif choice < 0.7:
                    self.linearizable_get()
                elif choice < 0.92:
                    self.seq_create()
                else:
                    self.children()
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def _lost(self, exc: BaseException) -> bool:
        """True for the errors after which the outcome is unknown."""
        from kazoo.exceptions import ConnectionLoss, SessionExpiredError
        from kazoo.handlers.threading import KazooTimeoutError

        if isinstance(exc, ConnectionLoss | SessionExpiredError | KazooTimeoutError):
            self.book.error(type(exc).__name__)
            return True
        return False

    def cas(self) -> None:
        from kazoo.exceptions import BadVersionError

        path = key_path(self.rng.randrange(self.keys))
        session = self._session()
        try:
            _data, stat = self._wait(self.zk.get_async(path), f"get {path}")
        except Exception as exc:
            if self._lost(exc):
                return
            raise
        if session and self._session() == session:
            self.book.reads.append(
                Read(self.client, session, path, stat.version, stat.mzxid, False)
            )
        self.values += 1
        value = f"{self.client}:{self.values}".encode()
        op = ZnodeOp("set", path, value, stat.version)
        session = self._session()
        call = time.monotonic_ns()
        try:
            new = self._wait(
                self.zk.set_async(path, value, stat.version), f"set {path} v{stat.version}"
            )
        except BadVersionError:
            ret = time.monotonic_ns()
            self.book.add(Operation(self.client, call, ret, op, BADVERSION))
            self.book.answered(self.client, ret)
            return
        except Exception as exc:
            if self._lost(exc):
                self.book.add(Operation(self.client, call, None, op, UNKNOWN))
                return
            raise
        ret = time.monotonic_ns()
        self.book.add(Operation(self.client, call, ret, op, new.version))
        self.book.answered(self.client, ret)
        with self.book.lock:
            self.book.acked.append((path, value, new.version, new.mzxid))
        if session and self._session() == session:
            self.book.reads.append(Read(self.client, session, path, new.version, new.mzxid, True))

    def linearizable_get(self) -> None:
        path = key_path(self.rng.randrange(self.keys))
        session = self._session()
        call = time.monotonic_ns()
        try:
            self._wait(self.zk.sync_async(path), f"sync {path}")
            data, stat = self._wait(self.zk.get_async(path), f"get {path} after sync")
        except Exception as exc:
            if self._lost(exc):
                return  # a read whose answer never came constrains nothing
            raise
        ret = time.monotonic_ns()
        self.book.add(Operation(self.client, call, ret, ZnodeOp("get", path), (data, stat.version)))
        self.book.answered(self.client, ret)
        if session and self._session() == session:
            self.book.reads.append(
                Read(self.client, session, path, stat.version, stat.mzxid, False)
            )

    def seq_create(self) -> None:
        op = SeqOp("create", QUEUE)
        call = time.monotonic_ns()
        try:
            name = self._wait(
                self.zk.create_async(f"{QUEUE}/n", b"", sequence=True), f"create {QUEUE}/n"
            )
        except Exception as exc:
            if self._lost(exc):
                self.book.add(Operation(self.client, call, None, op, UNKNOWN))
                return
            raise
        ret = time.monotonic_ns()
        self.book.add(Operation(self.client, call, ret, op, int(name[-10:])))
        self.book.answered(self.client, ret)

    def children(self) -> None:
        call = time.monotonic_ns()
        try:
            self._wait(self.zk.sync_async(QUEUE), f"sync {QUEUE}")
            names = self._wait(self.zk.get_children_async(QUEUE), f"children {QUEUE}")
        except Exception as exc:
            if self._lost(exc):
                return
            raise
        ret = time.monotonic_ns()
        out = frozenset(int(n[-10:]) for n in names)
        self.book.add(Operation(self.client, call, ret, SeqOp("children", QUEUE), out))
        self.book.answered(self.client, ret)

    def config_read(self) -> None:
        call = time.monotonic_ns()
        try:
            self._wait(self.zk.sync_async(CONFIG), f"sync {CONFIG}")
            data, _stat = self._wait(self.zk.get_async(CONFIG), f"get {CONFIG}")
        except Exception as exc:
            if self._lost(exc):
                return
            raise
        ret = time.monotonic_ns()
        self.book.add(Operation(self.client, call, ret, ConfigOp("read"), parse_config(data)))
        self.book.answered(self.client, ret)


# -- the membership as an object of the history ----------------------------------------------


@dataclasses.dataclass(frozen=True)
class Config:
    """A config as /zookeeper/config (or a reconfig's answer) shows it."""

    members: frozenset[tuple[int, str]]
    """(sid, ``host:quorum:election:role;client``) of every server line."""
    version: int

    def sids(self) -> list[int]:
        return sorted(sid for sid, _ in self.members)

    def __str__(self) -> str:
        return f"{self.sids()} v{self.version:x}"


def parse_config(data: bytes) -> Config:
    members, version = set(), -1
    for line in data.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("=")
        if key.startswith("server."):
            members.add((int(key[len("server.") :]), value.strip()))
        elif key == "version":
            version = int(value, 16)
    return Config(frozenset(members), version)


@dataclasses.dataclass(frozen=True)
class ConfigOp:
    """An operation on the membership: ``init`` (the config read before the workload;
    its output is the first state), ``read`` (sync, then getData of /zookeeper/config) or
    ``reconfig`` (incremental: ``leaving`` sids, ``joining`` (sid, spec) servers).

    Outputs: a :class:`Config` for init, read and an acknowledged reconfig; the error's
    name for a refused reconfig (NEWCONFIGNOQUORUM, RECONFIGINPROGRESS...: no effect);
    ``UNKNOWN``.
    """

    kind: str
    leaving: frozenset[int] = frozenset()
    joining: tuple[tuple[int, str], ...] = ()

    def apply(self, members: frozenset[tuple[int, str]]) -> frozenset[tuple[int, str]]:
        """``PrepRequestProcessor``'s incremental reconfig: leaving first, then joining
        (a joining sid replaces the server of that sid)."""
        gone = self.leaving | {sid for sid, _ in self.joining}
        return frozenset({m for m in members if m[0] not in gone} | set(self.joining))

    def __str__(self) -> str:
        if self.kind != "reconfig":
            return self.kind
        parts = [f"-{sid}" for sid in sorted(self.leaving)]
        parts += [f"+{sid}" for sid, _ in self.joining]
        return f"reconfig {' '.join(parts)}"


ConfigState = tuple[frozenset[tuple[int, str]], int, bool] | None
"""(members, version, exact): ``exact`` False when the version is only known to be
above ``version`` (a reconfig whose outcome was never learned took effect)."""


@dataclasses.dataclass(frozen=True)
class ConfigModel:
    """The membership as one register: reads give the config in force, an acknowledged
    reconfig gives the config made from it (and a version above it: the versions are the
    reconfigs' zxids), a refused one changes nothing."""

    def init(self) -> ConfigState:
        return None

    def step(
        self, state: ConfigState, input: Hashable, output: Hashable
    ) -> tuple[bool, ConfigState]:
        assert isinstance(input, ConfigOp)
        if input.kind == "init":
            assert isinstance(output, Config)
            return state is None, (output.members, output.version, True)
        if state is None:
            return False, state  # nothing happens to the config before it was first read
        members, version, exact = state
        if input.kind == "read":
            if output is UNKNOWN:
                return True, state
            assert isinstance(output, Config)
            if output.members != members:
                return False, state
            fits = output.version == version if exact else output.version > version
            if not fits:
                return False, state
            return True, (members, output.version, True)
        after = input.apply(members)
        if output is UNKNOWN:
            return True, (after, version, False)
        if isinstance(output, Config):
            ok = output.members == after and output.version > version
            return ok, (after, output.version, True)
        return True, state  # refused: no effect

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        return [list(history)]

    def describe(self, op: Operation) -> str:
        out = op.output
        shown = str(out) if isinstance(out, Config | str) else repr(out)
        return f"{op.input} -> {shown}"


@dataclasses.dataclass
class Final:
    """The state read (sync, then read) after the workload, from a fresh session."""

    registers: dict[str, tuple[bytes, int]]
    children: frozenset[int]
    call: int
    ret: int
    config: Config | None = None
    """/zookeeper/config (reconfig campaigns)."""


def final_ops(final: Final) -> list[Operation]:
    ops = [
        Operation(-1, final.call, final.ret, ZnodeOp("get", p), v)
        for p, v in final.registers.items()
    ]
    ops.append(Operation(-1, final.call, final.ret, SeqOp("children", QUEUE), final.children))
    if final.config is not None:
        ops.append(Operation(-1, final.call, final.ret, ConfigOp("read"), final.config))
    return ops


@dataclasses.dataclass
class Verdicts:
    histories: int = 0
    operations: int = 0
    open_ended: int = 0
    violations: list[str] = dataclasses.field(default_factory=list)
    unknown: list[str] = dataclasses.field(default_factory=list)
    """Models whose search ran out of its budget (each also has a violation text)."""


def _split(ops: Sequence[Operation]) -> tuple[list[Operation], list[Operation]]:
    znode = [o for o in ops if isinstance(o.input, ZnodeOp)]
    seq = [o for o in ops if isinstance(o.input, SeqOp)]
    return znode, seq


def config_ops(ops: Sequence[Operation]) -> list[Operation]:
    return [o for o in ops if isinstance(o.input, ConfigOp)]


def check_run(
    ops: Sequence[Operation],
    reads: Sequence[Read],
    acked: Sequence[tuple[str, bytes, int, int]],
    final: Final,
    timeout_s: float = 60.0,
    report: bool = True,
) -> Verdicts:
    """Every check of the module docstring; ``violations`` holds one text per failure.

    Each model's search has ``timeout_s`` (an UNKNOWN verdict is a violation too).  With
    ``report``, a non-linearizable partition is shrunk to a part a person can read (within
    ``timeout_s`` more); without, only the verdict is given (for the corruption checks,
    which need no report: shrinking one is a search per operation).
    """
    out = Verdicts()
    history = [*ops, *final_ops(final)]
    out.operations = len(history)
    out.open_ended = sum(1 for o in history if o.ret is None)
    znode, seq = _split(history)
    models: list[tuple[Model[Any], list[Operation]]] = [(ZnodeModel(), znode), (SeqModel(), seq)]
    config = config_ops(history)
    if config:
        models.append((ConfigModel(), config))
    for model, part in models:
        out.histories += len(model.partition(part))
        result = check(model, part, timeout_s=timeout_s, clock=time.monotonic)
        if result.verdict is Verdict.LINEARIZABLE:
            continue
        text = f"{type(model).__name__}: {result.verdict.value}"
        if result.verdict is Verdict.UNKNOWN:
            text += f" (the search ran out of its {timeout_s:g} s budget)"
            out.unknown.append(type(model).__name__)
        elif report:
            failing = result.failing_partition
            small = shrink_failure(model, failing, timeout_s=timeout_s, clock=time.monotonic)
            what = (
                "a minimal failing part"
                if small.complete
                else "a failing part (shrinking cut short)"
            )
            text += (
                f"\n{len(failing)} operations in the failing partition; {what} of "
                f"{len(small.ops)}:\n" + describe_failure(model, small.ops)
            )
        out.violations.append(text)
    # No acknowledged write lost.
    newest: dict[str, tuple[int, bytes]] = {}
    for path, data, version, _mzxid in acked:
        if version > newest.get(path, (-1, b""))[0]:
            newest[path] = (version, data)
    for path, (version, data) in sorted(newest.items()):
        got = final.registers.get(path)
        if got is None or got[1] < version or (got[1] == version and got[0] != data):
            out.violations.append(
                f"acknowledged write lost: {path} version {version} data {data!r} was "
                f"acknowledged, the final state is {got!r}"
            )
    acked_seq = {o.output for o in seq if o.input == SeqOp("create", QUEUE) and o.ret is not None}
    missing = sorted(n for n in acked_seq if isinstance(n, int) and n not in final.children)
    if missing:
        out.violations.append(f"acknowledged sequential children missing: {missing[:10]}")
    out.violations.extend(check_sessions(reads, acked))
    return out


def check_sessions(
    reads: Sequence[Read], acked: Sequence[tuple[str, bytes, int, int]]
) -> list[str]:
    """Per session: no read goes back (per path, and against the zxid already seen)."""
    writes: dict[str, list[tuple[int, int]]] = {}
    for path, _data, version, mzxid in acked:
        writes.setdefault(path, []).append((mzxid, version))
    # Per path: the writes' mzxids in order, and the newest version among those up to each
    # (a read's floor is then one bisection, not a scan of every write).
    zxids: dict[str, list[int]] = {}
    newest: dict[str, list[int]] = {}
    for path, w in writes.items():
        w.sort()
        zxids[path] = [m for m, _v in w]
        newest[path] = list(itertools.accumulate((v for _m, v in w), max))
    problems: list[str] = []
    last: dict[tuple[int, str], Read] = {}
    seen: dict[int, int] = {}
    for r in reads:
        prev = last.get((r.session, r.path))
        if prev is not None and (r.version < prev.version or r.mzxid < prev.mzxid):
            problems.append(
                f"session {r.session:#x} (client {r.client}) went back on {r.path}: "
                f"version {prev.version} mzxid {prev.mzxid:#x} then version {r.version} "
                f"mzxid {r.mzxid:#x}"
            )
        z = seen.get(r.session, 0)
        k = bisect.bisect_right(zxids.get(r.path, []), z)
        floor = newest[r.path][k - 1] if k else -1
        if not r.own_write and r.version < floor:
            problems.append(
                f"session {r.session:#x} (client {r.client}) had seen zxid {z:#x}, then read "
                f"{r.path} at version {r.version}, older than the acknowledged version "
                f"{floor} written at or before that zxid"
            )
        last[(r.session, r.path)] = r
        seen[r.session] = max(z, r.mzxid)
    return problems


def describe_ops(ops: Sequence[Operation], limit: int = 40) -> str:
    lines = []
    for o in sorted(ops, key=lambda o: o.call)[:limit]:
        ret = "open" if o.ret is None else str(o.ret)
        lines.append(f"client {o.client} [{o.call}, {ret}] {o.input!r} -> {o.output!r}")
    return "\n".join(lines)


def corrupt(
    ops: list[Operation], reads: list[Read], final: Final
) -> list[tuple[str, list[Operation], list[Read], Final]]:
    """Recorded-history corruptions the checks must catch (each may be absent)."""
    out: list[tuple[str, list[Operation], list[Read], Final]] = []
    acked_sets = [
        o
        for o in ops
        if isinstance(o.input, ZnodeOp) and o.input.kind == "set" and isinstance(o.output, int)
    ]
    if acked_sets:
        # A second client's compare-and-set with the same expected version also won.
        o = _lost_update_target(ops, acked_sets)
        assert isinstance(o.input, ZnodeOp)
        twin = dataclasses.replace(o, client=-2, input=dataclasses.replace(o.input, value=b"twin"))
        out.append(("lost update", [*ops, twin], reads, final))
        # The final state lost the newest acknowledged write of a register.
        path = o.input.path
        data, version = final.registers[path]
        regs = dict(final.registers, **{path: (data, max(0, version - 1))})
        out.append(
            ("final state rolled back", ops, reads, dataclasses.replace(final, registers=regs))
        )
    later = [r for r in reads if r.version > 0]
    if later:
        # A session's later read returns a version older than one it already read.
        r = later[-1]
        stale = dataclasses.replace(r, version=r.version - 1, mzxid=r.mzxid - 1, own_write=False)
        out.append(("session read went back", ops, [*reads, stale], final))
    creates = [o for o in ops if o.input == SeqOp("create", QUEUE) and isinstance(o.output, int)]
    if len(creates) >= 2:
        # Two acknowledged sequential creates under one parent got the same number.  The
        # first two: near the end of a long history (with open-ended creates before it)
        # the search needs many seconds to prove it impossible (12 s for a 60 s campaign).
        a, b = sorted(creates, key=lambda o: o.call)[:2]
        dup = dataclasses.replace(b, output=a.output)
        out.append(
            ("duplicate sequence number", [*(o for o in ops if o is not b), dup], reads, final)
        )
    out += _corrupt_config(ops, reads, final)
    return out


LOST_UPDATE_OPEN_BEFORE = 6
"""The most open-ended operations on its path that may be called before the target of the
"lost update" corruption (see :func:`_lost_update_target`)."""


def _lost_update_target(ops: Sequence[Operation], acked_sets: Sequence[Operation]) -> Operation:
    """The acknowledged set to duplicate: the middle one, or the latest one before it with
    at most ``LOST_UPDATE_OPEN_BEFORE`` open-ended operations on its path called before it.

    Refuting the twin means trying every subset of those open-ended operations (each may
    have taken effect or not): 21 of them took a search more than 60 s (a 120 s campaign
    with membership changes, whose leader changes leave many calls without an answer).
    """
    open_calls: dict[str, list[int]] = {}
    for op in ops:
        if op.ret is None and isinstance(op.input, ZnodeOp):
            open_calls.setdefault(op.input.path, []).append(op.call)
    for calls in open_calls.values():
        calls.sort()
    middle = len(acked_sets) // 2
    for o in reversed(acked_sets[: middle + 1]):
        assert isinstance(o.input, ZnodeOp)
        before = bisect.bisect_left(open_calls.get(o.input.path, []), o.call)
        if before <= LOST_UPDATE_OPEN_BEFORE:
            return o
    return acked_sets[0]


def _corrupt_config(
    ops: list[Operation], reads: list[Read], final: Final
) -> list[tuple[str, list[Operation], list[Read], Final]]:
    """Corruptions of the membership's history, each impossible whatever the order."""
    out: list[tuple[str, list[Operation], list[Read], Final]] = []
    done = sorted(
        (o for o in config_ops(ops) if o.input.kind == "reconfig" and isinstance(o.output, Config)),
        key=lambda o: o.call,
    )
    init = [o for o in config_ops(ops) if o.input.kind == "init"]
    if not done or not init:
        return out
    first = done[0]
    assert isinstance(first.input, ConfigOp) and isinstance(first.output, Config)
    # An acknowledged reconfig whose answer is the config without its change.
    forged = set(first.output.members)
    forged |= {(sid, "forged") for sid in first.input.leaving}
    forged -= set(first.input.joining)
    bad = dataclasses.replace(first, output=Config(frozenset(forged), first.output.version))
    out.append(
        ("reconfig without effect", [*(o for o in ops if o is not first), bad], reads, final)
    )
    # A read after that reconfig's answer returns the config from before it.
    assert first.ret is not None
    start = init[0].output
    stale = Operation(-3, first.ret + 1, first.ret + 2, ConfigOp("read"), start)
    out.append(("config read went back", [*ops, stale], reads, final))
    later = [o for o in done[1:] if o.call > first.ret]
    if later:
        # Two acknowledged reconfigs, one after the other, with one version.
        second = later[0]
        assert isinstance(second.output, Config)
        twin = Config(second.output.members, first.output.version)
        dup = dataclasses.replace(second, output=twin)
        out.append(
            (
                "two reconfigs, one version",
                [*(o for o in ops if o is not second), dup],
                reads,
                final,
            )
        )
    return out
