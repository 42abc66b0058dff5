"""A seeded workload of kazoo calls, recorded so that two targets can be compared call by call.

The ClickHouse back-to-back pattern (docs/spec/zk-server.md 3.2): the same calls on two
targets, compared for the same result or error, the same Stat fields (czxid, mzxid, pzxid
as their low 32 bits, so zxid deltas must be equal but the epoch may differ; version,
cversion, aversion, dataLength, numChildren; ephemeralOwner as the client that owns it;
times excluded), the same watch events, and the same data tree at the end, node by node.

:func:`make_workload` turns a seed into steps: a fixed prologue that covers every write kind
(create plain / ephemeral / sequential / container / TTL, setData and delete with right and
wrong versions, multi with a failing op and a good one, ACLs with digest auth and a NoAuth,
sync, reads, data / child / exists watches), then seeded random operations over a small
set of paths (so that NodeExists, NoNode, BadVersion and NotEmpty happen), with two
controlled expiries somewhere in the middle: a client that vanishes (a raw session whose
socket is closed without closeSession, so the server expires it and deletes its
ephemeral) and an emptied container plus a short-TTL node (deleted by the leader's
ContainerManager).  Each expiry step waits until the server has done it, so the zxids of
everything after it are deterministic.

:func:`run_workload` plays the steps with kazoo clients (c0 plain, c1 authenticated as
digest alice, c2 plain) against one ``host:port``; after every step each client does a
round trip and a fence on kazoo's callback queue, so that every watch event is attributed
to the step that caused it without sleeping.  kazoo has no container or TTL call, so those
two requests go through ``KazooClient._call`` with request records written here in
kazoo's style (:class:`CreateContainer`, :class:`CreateTTL`).

:func:`compare` lists the differences between two :class:`Record` s.
"""

from __future__ import annotations

import dataclasses
import enum
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.protocol.serialization import int_struct, read_string, stat_struct, write_buffer
from kazoo.protocol.serialization import write_string as kazoo_write_string
from kazoo.protocol.states import Callback, WatchedEvent, ZnodeStat
from kazoo.security import ACL, OPEN_ACL_UNSAFE, make_acl, make_digest_acl

WAIT_SECONDS = 20.0
ROOT = "/d"
POOL = tuple(f"{ROOT}/p{i}" for i in range(6))
KIDS = ("k0", "k1", "k2")
CLIENTS = ("c0", "c1", "c2")
ALICE = ("alice", "secret")
TTL_LONG_MS = 3_600_000
TTL_SHORT_MS = 300
# What the servers need: TTL nodes, and a ContainerManager quick enough for the expiry step.
SERVER_PROPERTIES = {
    "zookeeper.extendedTypesEnabled": "true",
    "znode.container.checkIntervalMs": "100",
}


class Op(enum.Enum):
    CREATE = "create"
    CREATE_EPHEMERAL = "create-ephemeral"
    CREATE_SEQUENTIAL = "create-sequential"
    CREATE_EPHEMERAL_SEQUENTIAL = "create-ephemeral-sequential"
    CREATE_CONTAINER = "create-container"
    CREATE_TTL = "create-ttl"
    CREATE_LOCKED = "create-locked"  # ACL: alice may do all, the world may read
    SET = "set"  # with the given version (-1: any)
    SET_RIGHT = "set-right-version"  # exists first, then set with its version
    DELETE = "delete"
    DELETE_RIGHT = "delete-right-version"
    GET = "get"
    GET_WATCH = "get-watch"
    CHILDREN = "children"
    CHILDREN_WATCH = "children-watch"
    EXISTS = "exists"
    EXISTS_WATCH = "exists-watch"
    GET_ACL = "get-acl"
    SET_ACL = "set-acl"  # world:anyone read+write, alice all, with the given version
    SYNC = "sync"
    MULTI_OK = "multi-ok"
    MULTI_FAIL = "multi-fail"
    VANISH_CREATE = "vanishing-client-creates-ephemeral"
    VANISH_EXPIRE = "vanishing-client-vanishes"
    EXPIRE_CONTAINER_TTL = "empty-container-and-short-ttl-expire"


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    client: str
    op: Op
    path: str
    data: bytes = b""
    version: int = -1

    def describe(self) -> str:
        extra = f" version={self.version}" if self.op in (Op.SET, Op.DELETE, Op.SET_ACL) else ""
        data = f" data={self.data!r}" if self.data else ""
        return f"{self.client} {self.op.value} {self.path}{extra}{data}"


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    step: int
    call: str
    outcome: str


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    step: int
    client: str
    type: str
    path: str


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """What one target answered."""

    target: str
    seed: int
    results: tuple[Result, ...]
    events: tuple[Event, ...]
    tree: tuple[tuple[str, str], ...]  # (path, "data stat acl"), sorted by path


# ------------------------------------------------------------------------- the workload


def make_workload(seed: int, random_ops: int = 200) -> tuple[Step, ...]:
    """The steps for ``seed``: the prologue, then ``random_ops`` seeded operations."""
    rng = random.Random(seed)
    steps = [
        Step("c0", Op.CREATE, ROOT, b"root"),
        Step("c0", Op.CREATE, f"{ROOT}/a", b"a0"),
        Step("c0", Op.GET, f"{ROOT}/a"),
        Step("c0", Op.SET, f"{ROOT}/a", b"a1", 0),
        Step("c0", Op.SET, f"{ROOT}/a", b"stale", 0),
        Step("c1", Op.SET_RIGHT, f"{ROOT}/a", b"a2"),
        Step("c0", Op.CREATE, f"{ROOT}/a", b"again"),
        Step("c0", Op.CREATE, f"{ROOT}/no/parent", b"x"),
        Step("c0", Op.CREATE_EPHEMERAL, f"{ROOT}/eph", b"e"),
        Step("c0", Op.CREATE, f"{ROOT}/eph/child", b"x"),
        Step("c0", Op.CREATE, f"{ROOT}/seq", b""),
        Step("c0", Op.CREATE_SEQUENTIAL, f"{ROOT}/seq/n-", b"1"),
        Step("c1", Op.CREATE_EPHEMERAL_SEQUENTIAL, f"{ROOT}/seq/n-", b"2"),
        Step("c0", Op.CREATE_CONTAINER, f"{ROOT}/box", b""),
        Step("c0", Op.CREATE, f"{ROOT}/box/in", b"i"),
        Step("c0", Op.CREATE_TTL, f"{ROOT}/ttl", b"t", TTL_LONG_MS),
        Step("c0", Op.EXISTS, f"{ROOT}/box"),
        Step("c0", Op.EXISTS, f"{ROOT}/ttl"),
        Step("c1", Op.CREATE_LOCKED, f"{ROOT}/locked", b"l"),
        Step("c1", Op.CREATE, f"{ROOT}/locked/kid", b"k"),
        Step("c2", Op.GET, f"{ROOT}/locked"),
        Step("c2", Op.SET, f"{ROOT}/locked", b"no", -1),
        Step("c2", Op.CREATE, f"{ROOT}/locked/mine", b"no"),
        Step("c2", Op.DELETE, f"{ROOT}/locked/kid", b"", -1),
        Step("c2", Op.SET_ACL, f"{ROOT}/locked", b"", 0),
        Step("c1", Op.GET_ACL, f"{ROOT}/locked"),
        Step("c1", Op.SET_ACL, f"{ROOT}/locked", b"", 5),
        Step("c1", Op.SET_ACL, f"{ROOT}/locked", b"", 0),
        Step("c2", Op.SET, f"{ROOT}/locked", b"now", -1),
        Step("c2", Op.GET_ACL, f"{ROOT}/locked"),
        Step("c0", Op.GET_WATCH, f"{ROOT}/a"),
        Step("c2", Op.CHILDREN_WATCH, ROOT),
        Step("c0", Op.EXISTS_WATCH, f"{ROOT}/later"),
        Step("c1", Op.SET, f"{ROOT}/a", b"a3", -1),
        Step("c1", Op.CREATE, f"{ROOT}/later", b"l"),
        Step("c0", Op.VANISH_CREATE, f"{ROOT}/vanishing"),
        Step("c2", Op.EXISTS_WATCH, f"{ROOT}/vanishing"),
        Step("c0", Op.CREATE, f"{ROOT}/m", b"m"),
        Step("c0", Op.MULTI_FAIL, f"{ROOT}/m"),
        Step("c0", Op.MULTI_OK, f"{ROOT}/m"),
        Step("c0", Op.DELETE, f"{ROOT}/a", b"", 9),
        Step("c0", Op.DELETE_RIGHT, f"{ROOT}/a"),
        Step("c0", Op.DELETE, ROOT, b"", -1),
        Step("c1", Op.SYNC, ROOT),
        Step("c0", Op.CHILDREN, ROOT),
    ]
    vanish_at = rng.randrange(random_ops)
    expire_at = rng.randrange(random_ops)
    menu = [
        (Op.CREATE, 6),
        (Op.CREATE_EPHEMERAL, 2),
        (Op.CREATE_SEQUENTIAL, 2),
        (Op.CREATE_TTL, 1),
        (Op.SET, 4),
        (Op.SET_RIGHT, 2),
        (Op.DELETE, 4),
        (Op.DELETE_RIGHT, 2),
        (Op.GET, 2),
        (Op.GET_WATCH, 2),
        (Op.CHILDREN_WATCH, 2),
        (Op.EXISTS_WATCH, 2),
        (Op.SET_ACL, 1),
        (Op.MULTI_FAIL, 1),
        (Op.MULTI_OK, 1),
        (Op.SYNC, 1),
    ]
    ops = [op for op, weight in menu for _ in range(weight)]
    for i in range(random_ops):
        if i == vanish_at:
            steps.append(Step("c0", Op.VANISH_EXPIRE, f"{ROOT}/vanishing"))
        if i == expire_at:
            steps.append(Step("c0", Op.EXPIRE_CONTAINER_TTL, f"{ROOT}/box"))
        op = rng.choice(ops)
        base = rng.choice(POOL)
        path = base if rng.random() < 0.6 else f"{base}/{rng.choice(KIDS)}"
        if op in (Op.MULTI_OK, Op.MULTI_FAIL):
            path = base
        version = rng.choice((-1, 0, 1, 2, 7)) if op in (Op.SET, Op.DELETE) else -1
        if op is Op.SET_ACL:
            version = rng.choice((0, 1, -1))
        if op is Op.CREATE_TTL:
            version = TTL_LONG_MS
        data = rng.randbytes(rng.randrange(0, 12)) if op in (Op.CREATE, Op.SET) else b""
        steps.append(Step(rng.choice(CLIENTS), op, path, data, version))
    return tuple(steps)


# --------------------------------------------------- container and TTL requests for kazoo


def _acl_bytes(acl: Sequence[ACL]) -> bytes:
    b = bytearray(int_struct.pack(len(acl)))
    for a in acl:
        b += int_struct.pack(a.perms) + kazoo_write_string(a.id.scheme)
        b += kazoo_write_string(a.id.id)
    return bytes(b)


def _create2_response(data: bytes, offset: int) -> tuple[str, ZnodeStat]:
    path, offset = read_string(data, offset)
    return path, ZnodeStat._make(stat_struct.unpack_from(data, offset))


class CreateContainer(NamedTuple):
    """createContainer (19): a CreateRequest with flags CONTAINER (4) -> Create2Response."""

    path: str
    data: bytes
    acl: Sequence[ACL]
    type = 19

    def serialize(self) -> bytearray:
        body = kazoo_write_string(self.path) + write_buffer(self.data) + _acl_bytes(self.acl)
        return bytearray(body + int_struct.pack(4))

    @classmethod
    def deserialize(cls, data: bytes, offset: int) -> tuple[str, ZnodeStat]:
        return _create2_response(data, offset)


class CreateTTL(NamedTuple):
    """createTTL (21): CreateTTLRequest{path, data, acl, flags=5, ttl} -> Create2Response."""

    path: str
    data: bytes
    acl: Sequence[ACL]
    ttl: int
    type = 21

    def serialize(self) -> bytearray:
        body = kazoo_write_string(self.path) + write_buffer(self.data) + _acl_bytes(self.acl)
        return bytearray(body + struct.pack(">iq", 5, self.ttl))

    @classmethod
    def deserialize(cls, data: bytes, offset: int) -> tuple[str, ZnodeStat]:
        return _create2_response(data, offset)


# ------------------------------------------------------------------ a vanishing session


class VanishingSession:
    """A raw session (spec zk-server.md 2.1): connect, create one ephemeral, then vanish.

    Closing the socket without closeSession leaves the server to expire the session after
    its timeout, deleting the ephemeral: the one way to see a session expire for real.
    """

    def __init__(self, host: str, port: int, timeout_ms: int = 1000) -> None:
        self.sock = socket.create_connection((host, port), timeout=WAIT_SECONDS)
        body = struct.pack(">iqiqi16s?", 0, 0, timeout_ms, 0, 16, b"\0" * 16, False)
        self.sock.sendall(struct.pack(">i", len(body)) + body)
        resp = self._frame()
        _, self.timeout_ms, self.session_id = struct.unpack(">iiq", resp[:16])
        if self.session_id == 0:
            raise ConnectionError("the server refused the session")

    def _frame(self) -> bytes:
        head = self._exactly(4)
        return self._exactly(struct.unpack(">i", head)[0])

    def _exactly(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        return buf

    def create_ephemeral(self, path: str) -> int:
        """create(path, b"v", OPEN_ACL_UNSAFE, EPHEMERAL): the reply's err code."""
        body = kazoo_write_string(path) + write_buffer(b"v") + _acl_bytes(OPEN_ACL_UNSAFE)
        request = struct.pack(">ii", 1, 1) + body + int_struct.pack(1)
        self.sock.sendall(struct.pack(">i", len(request)) + request)
        while True:
            reply = self._frame()
            xid, _, err = struct.unpack(">iqi", reply[:16])
            if xid == 1:
                return int(err)

    def vanish(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------------- playing


def _wait_until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {WAIT_SECONDS} s waiting for {what}")
        time.sleep(0.05)  # poll interval of a bounded wait


class Player:
    """Plays steps on one target and records what it answers."""

    def __init__(self, hosts: str) -> None:
        self.hosts = hosts
        host, _, port = hosts.partition(":")
        self.address = (host, int(port))
        alice_auth = ("digest", f"{ALICE[0]}:{ALICE[1]}")
        self.clients: dict[str, KazooClient] = {}
        for name in CLIENTS:
            auth = [alice_auth] if name == "c1" else None
            client = KazooClient(hosts=hosts, timeout=10.0, auth_data=auth)
            client.start(timeout=WAIT_SECONDS)
            self.clients[name] = client
        self.owners = {c.client_id[0]: name for name, c in self.clients.items()}
        self.vanishing: VanishingSession | None = None
        self.events: list[Event] = []
        self.step_index = 0
        self._lock = threading.Lock()
        alice = make_digest_acl(*ALICE, all=True)
        self.locked_acl = [alice, make_acl("world", "anyone", read=True)]
        self.open_acl = [make_acl("world", "anyone", read=True, write=True), alice]

    def close(self) -> None:
        for client in self.clients.values():
            try:
                client.stop()
                client.close()
            except KazooException:
                pass
        if self.vanishing is not None:
            self.vanishing.vanish()

    # -- normalisation

    def stat(self, s: ZnodeStat | None) -> str:
        if s is None:
            return "none"
        owner = "0" if s.ephemeralOwner == 0 else self.owners.get(s.ephemeralOwner, "other")
        return (
            f"czxid=+{s.czxid & 0xFFFFFFFF:#x} mzxid=+{s.mzxid & 0xFFFFFFFF:#x} "
            f"pzxid=+{s.pzxid & 0xFFFFFFFF:#x} version={s.version} cversion={s.cversion} "
            f"aversion={s.aversion} owner={owner} dataLength={s.dataLength} "
            f"numChildren={s.numChildren}"
        )

    @staticmethod
    def acl(acls: Sequence[ACL]) -> str:
        return "[" + ", ".join(f"{a.id.scheme}:{a.id.id}:{a.perms}" for a in acls) + "]"

    def value(self, v: Any) -> str:
        if isinstance(v, ZnodeStat):
            return self.stat(v)
        if isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], ZnodeStat):
            first = v[0]
            if isinstance(first, bytes):
                return f"data={first!r} {self.stat(v[1])}"
            if isinstance(first, list) and all(isinstance(a, ACL) for a in first):
                return f"acl={self.acl(first)} {self.stat(v[1])}"
            return f"{first} {self.stat(v[1])}"
        if isinstance(v, list):
            return "[" + ", ".join(self.value(x) for x in v) + "]"
        if isinstance(v, BaseException):
            return type(v).__name__
        if v is True:
            return "ok"
        return repr(v)

    # -- watches and fences

    def watcher(self, client: str) -> Callable[[WatchedEvent], None]:
        def record(event: WatchedEvent) -> None:
            with self._lock:
                self.events.append(Event(self.step_index, client, event.type, event.path))

        return record

    def fence(self) -> None:
        """Every event the servers sent before now has reached its watcher."""
        for client in self.clients.values():
            client.exists("/")  # a round trip: earlier notifications precede its reply
            done = threading.Event()
            client.handler.dispatch_callback(Callback("watch", done.set, ()))
            if not done.wait(WAIT_SECONDS):
                raise TimeoutError("kazoo's callback queue did not drain")

    # -- steps

    def play(self, steps: Sequence[Step]) -> tuple[list[Result], list[Event]]:
        results = []
        for index, step in enumerate(steps):
            self.step_index = index
            try:
                outcome = self.value(self.call(step))
            except KazooException as exc:
                outcome = type(exc).__name__
            results.append(Result(index, step.describe(), outcome))
            self.fence()
        # One client's events come in its connection's order; between clients the server
        # fans out in no defined order (WatchManager keeps a set of watchers).
        return results, sorted(self.events, key=lambda e: (e.step, e.client))

    def call(self, step: Step) -> Any:
        c = self.clients[step.client]
        op, path = step.op, step.path
        if op is Op.CREATE:
            return c.create(path, step.data)
        if op is Op.CREATE_EPHEMERAL:
            return c.create(path, step.data, ephemeral=True)
        if op is Op.CREATE_SEQUENTIAL:
            return c.create(path, step.data, sequence=True)
        if op is Op.CREATE_EPHEMERAL_SEQUENTIAL:
            return c.create(path, step.data, ephemeral=True, sequence=True)
        if op is Op.CREATE_LOCKED:
            return c.create(path, step.data, acl=self.locked_acl)
        if op is Op.CREATE_CONTAINER:
            return self._raw(c, CreateContainer(path, step.data, OPEN_ACL_UNSAFE))
        if op is Op.CREATE_TTL:
            return self._raw(c, CreateTTL(path, step.data, OPEN_ACL_UNSAFE, step.version))
        if op is Op.SET:
            return c.set(path, step.data, version=step.version)
        if op is Op.SET_RIGHT:
            stat = c.exists(path)
            return c.set(path, step.data, version=stat.version if stat else 0)
        if op is Op.DELETE:
            return c.delete(path, version=step.version)
        if op is Op.DELETE_RIGHT:
            stat = c.exists(path)
            return c.delete(path, version=stat.version if stat else 0)
        if op is Op.GET:
            return c.get(path)
        if op is Op.GET_WATCH:
            return c.get(path, watch=self.watcher(step.client))
        if op is Op.CHILDREN:
            return sorted(c.get_children(path))
        if op is Op.CHILDREN_WATCH:
            return sorted(c.get_children(path, watch=self.watcher(step.client)))
        if op is Op.EXISTS:
            return c.exists(path)
        if op is Op.EXISTS_WATCH:
            return c.exists(path, watch=self.watcher(step.client))
        if op is Op.GET_ACL:
            return c.get_acls(path)
        if op is Op.SET_ACL:
            return c.set_acls(path, self.open_acl, version=step.version)
        if op is Op.SYNC:
            return c.sync(path)
        if op is Op.MULTI_OK or op is Op.MULTI_FAIL:
            return self._multi(c, path, fail=op is Op.MULTI_FAIL)
        if op is Op.VANISH_CREATE:
            self.vanishing = VanishingSession(*self.address)
            self.owners[self.vanishing.session_id] = "vanishing"
            err = self.vanishing.create_ephemeral(path)
            return f"err={err} timeout={self.vanishing.timeout_ms}"
        if op is Op.VANISH_EXPIRE:
            assert self.vanishing is not None, "the workload creates the vanishing client first"
            self.vanishing.vanish()
            self.vanishing = None
            _wait_until(lambda: c.exists(path) is None, f"{path} to go with its session")
            return "expired"
        if op is Op.EXPIRE_CONTAINER_TTL:
            self._raw(c, CreateTTL(f"{ROOT}/ttl-short", b"", OPEN_ACL_UNSAFE, TTL_SHORT_MS))
            c.delete(f"{path}/in")
            _wait_until(
                lambda: c.exists(path) is None and c.exists(f"{ROOT}/ttl-short") is None,
                "the emptied container and the expired TTL node to be deleted",
            )
            return "deleted by the server"
        raise AssertionError(f"unknown op {op}")

    @staticmethod
    def _raw(c: KazooClient, request: Any) -> Any:
        result = c.handler.async_result()
        c._call(request, result)
        return result.get(timeout=WAIT_SECONDS)

    @staticmethod
    def _multi(c: KazooClient, path: str, *, fail: bool) -> Any:
        t = c.transaction()
        t.create(f"{path}/m", b"m")
        t.set_data(path, b"multi")
        t.check(path, 99 if fail else -1)
        t.delete(f"{path}/m")
        return t.commit()

    def tree(self) -> list[tuple[str, str]]:
        """Every node under /, /zookeeper excluded, with data, Stat and ACL."""
        c = self.clients["c1"]  # alice: may read everything the workload locks
        out: list[tuple[str, str]] = []
        todo = ["/"]
        while todo:
            path = todo.pop()
            data, stat = c.get(path)
            acls, _ = c.get_acls(path)
            out.append((path, f"data={data!r} {self.stat(stat)} acl={self.acl(acls)}"))
            for kid in c.get_children(path):
                child = f"{path.rstrip('/')}/{kid}"
                if child != "/zookeeper":
                    todo.append(child)
        return sorted(out)


def run_workload(target: str, hosts: str, steps: Sequence[Step], seed: int) -> Record:
    """Play ``steps`` against ``hosts`` (host:port) and record every answer."""
    player = Player(hosts)
    try:
        results, events = player.play(steps)
        tree = player.tree()
    finally:
        player.close()
    return Record(target, seed, tuple(results), tuple(events), tuple(tree))


# ---------------------------------------------------------------------------- comparing


def compare(a: Record, b: Record, limit: int = 30) -> list[str]:
    """Human-readable differences between two records (empty: the targets agree)."""
    diffs: list[str] = []
    if len(a.results) != len(b.results):
        diffs.append(f"{len(a.results)} results on {a.target}, {len(b.results)} on {b.target}")
    for ra, rb in zip(a.results, b.results, strict=False):
        if ra.call != rb.call:
            diffs.append(f"step {ra.step}: different calls: {ra.call!r} / {rb.call!r}")
        elif ra.outcome != rb.outcome:
            diffs.append(
                f"step {ra.step} ({ra.call}):\n    {a.target}: {ra.outcome}\n"
                f"    {b.target}: {rb.outcome}"
            )
    ea, eb = list(a.events), list(b.events)
    if ea != eb:
        first = next(
            (i for i, (x, y) in enumerate(zip(ea, eb, strict=False)) if x != y),
            min(len(ea), len(eb)),
        )
        diffs.append(
            f"watch events differ from #{first}: {a.target} {ea[first : first + 3]} / "
            f"{b.target} {eb[first : first + 3]} ({len(ea)} vs {len(eb)} events)"
        )
    ta, tb = dict(a.tree), dict(b.tree)
    for path in sorted(set(ta) | set(tb)):
        if ta.get(path) != tb.get(path):
            diffs.append(
                f"final tree {path}:\n    {a.target}: {ta.get(path, 'missing')}\n"
                f"    {b.target}: {tb.get(path, 'missing')}"
            )
    return diffs[:limit]
