"""Linearizability checking of client histories (docs/spec/zk-server.md §3.5-3.7).

The search is Wing-Gong-Lowe's, with Lowe's memoisation of (linearized set, state)
and P-compositionality (each partition, e.g. one key, is checked on its own), in the
iterative form Porcupine uses: calls and returns form a doubly linked list, linearizing
a call lifts it and its return out of the list, and reaching a return whose call is not
yet linearized backtracks.  An operation whose outcome the client never learned is
open-ended: its return is put after every other event, so it may take effect at any
time after its call, or (equivalently for every observer) never.  Open-ended operations
with the same input and output are interchangeable: they are linearized in call order.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

S = TypeVar("S", bound=Hashable)


class Unknown(enum.Enum):
    """The output of an operation whose outcome the client never learned."""

    UNKNOWN = "unknown"


UNKNOWN = Unknown.UNKNOWN


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation: ``ret`` is None when open-ended (Jepsen's ``:info``)."""

    client: int
    call: int
    ret: int | None
    input: Hashable
    output: Hashable


class Verdict(enum.Enum):
    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown"


class Model(Protocol[S]):
    def init(self) -> S: ...

    def step(self, state: S, input: Hashable, output: Hashable) -> tuple[bool, S]: ...

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]: ...

    def describe(self, op: Operation) -> str: ...


@dataclass(frozen=True, slots=True)
class RegisterOp:
    """Jepsen etcd register: kind is "read", "write" or "cas"; cas value is (from, to)."""

    kind: str
    value: Hashable


@dataclass(frozen=True, slots=True)
class RegisterModel:
    """One register, initially None; cas output is True/False for ok/fail."""

    def init(self) -> Hashable:
        return None

    def step(self, state: Hashable, input: Hashable, output: Hashable) -> tuple[bool, Hashable]:
        assert isinstance(input, RegisterOp)
        if input.kind == "write":
            return True, input.value
        if input.kind == "read":
            return output is UNKNOWN or output == state, state
        assert isinstance(input.value, tuple)
        frm: Hashable = input.value[0]
        to: Hashable = input.value[1]
        if output is UNKNOWN:
            return True, (to if state == frm else state)
        if output:
            return state == frm, to
        return state != frm, state

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        return [list(history)]

    def describe(self, op: Operation) -> str:
        assert isinstance(op.input, RegisterOp)
        return f"{op.input.kind}({op.input.value!r}) -> {op.output!r}"


@dataclass(frozen=True, slots=True)
class KvOp:
    """Key-value map op: kind is "get", "put" or "append"; get's output is the value."""

    kind: str
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class KvModel:
    """Map of string keys to strings, each initially ""; partitioned by key."""

    def init(self) -> str:
        return ""

    def step(self, state: str, input: Hashable, output: Hashable) -> tuple[bool, str]:
        assert isinstance(input, KvOp)
        if input.kind == "get":
            return output is UNKNOWN or output == state, state
        if input.kind == "put":
            return True, input.value
        return True, state + input.value

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        by_key: dict[str, list[Operation]] = {}
        for op in history:
            assert isinstance(op.input, KvOp)
            by_key.setdefault(op.input.key, []).append(op)
        return list(by_key.values())

    def describe(self, op: Operation) -> str:
        assert isinstance(op.input, KvOp)
        return f"{op.input.kind}({op.input.key!r}, {op.input.value!r}) -> {op.output!r}"


NONODE = "NONODE"
NODEEXISTS = "NODEEXISTS"
BADVERSION = "BADVERSION"
OK = "ok"

Znode = tuple[bytes, int] | None
"""A znode's state: None while absent, else (data, version)."""


@dataclass(frozen=True, slots=True)
class ZnodeOp:
    """One ZooKeeper operation on one path.

    ``kind`` is "create", "set", "delete", "get" or "check"; ``value`` is the data of
    create and set, ``version`` the expected version of set, delete and check (-1: any).
    Outputs: create, delete and check give :data:`OK`; set gives the new version (an int);
    get gives ``(data, version)``; any may give :data:`NONODE`, :data:`NODEEXISTS` or
    :data:`BADVERSION` as ZooKeeper would; :data:`UNKNOWN` when the client never learned.
    A get must be a linearizable read (sync, then getData, in one session).
    """

    kind: str
    path: str
    value: bytes = b""
    version: int = -1


def znode_effect(state: Znode, op: ZnodeOp) -> tuple[Hashable, Znode]:
    """What ZooKeeper answers to ``op`` in ``state``, and the state after it."""
    if op.kind == "create":
        return (NODEEXISTS, state) if state is not None else (OK, (op.value, 0))
    if state is None:
        return NONODE, None
    version = state[1]
    if op.kind == "get":
        return state, state
    if op.version not in (-1, version):
        return BADVERSION, state
    if op.kind == "set":
        return version + 1, (op.value, version + 1)
    if op.kind == "delete":
        return OK, None
    assert op.kind == "check", op.kind
    return OK, state


@dataclass(frozen=True, slots=True)
class ZnodeModel:
    """Versioned znodes, each initially absent; partitioned by path."""

    def init(self) -> Znode:
        return None

    def step(self, state: Znode, input: Hashable, output: Hashable) -> tuple[bool, Znode]:
        assert isinstance(input, ZnodeOp)
        expected, after = znode_effect(state, input)
        if output is UNKNOWN:
            return True, after
        return output == expected, after

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        by_path: dict[str, list[Operation]] = {}
        for op in history:
            assert isinstance(op.input, ZnodeOp)
            by_path.setdefault(op.input.path, []).append(op)
        return list(by_path.values())

    def describe(self, op: Operation) -> str:
        z = op.input
        assert isinstance(z, ZnodeOp)
        args = [repr(z.path)]
        if z.kind in ("create", "set"):
            args.append(repr(z.value))
        if z.kind in ("set", "delete", "check"):
            args.append(f"version={z.version}")
        return f"{z.kind}({', '.join(args)}) -> {op.output!r}"


@dataclass(frozen=True, slots=True)
class SeqOp:
    """Sequential children of one parent: kind "create" or "children".

    A create's output is the sequence number in the returned name; "children" gives the
    frozenset of the sequence numbers of the children it listed (read after a sync).
    """

    kind: str
    parent: str


@dataclass(frozen=True, slots=True)
class SeqModel:
    """The parent's counter: the n-th linearized sequential create is named n (from 0).

    Children are only created (never deleted), so after n creates the children are
    exactly 0..n-1 and the counter is the whole state.  Partitioned by parent.
    """

    def init(self) -> int:
        return 0

    def step(self, state: int, input: Hashable, output: Hashable) -> tuple[bool, int]:
        assert isinstance(input, SeqOp)
        if input.kind == "create":
            return output is UNKNOWN or output == state, state + 1
        assert input.kind == "children", input.kind
        return output is UNKNOWN or output == frozenset(range(state)), state

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        by_parent: dict[str, list[Operation]] = {}
        for op in history:
            assert isinstance(op.input, SeqOp)
            by_parent.setdefault(op.input.parent, []).append(op)
        return list(by_parent.values())

    def describe(self, op: Operation) -> str:
        q = op.input
        assert isinstance(q, SeqOp)
        out = repr(sorted(op.output)) if isinstance(op.output, frozenset) else repr(op.output)
        return f"{q.kind}({q.parent!r}) -> {out}"


@dataclass(frozen=True, slots=True)
class LockOp:
    """The lock recipe seen from one client: "acquire" or "release" of lock ``name``.

    ``attempt`` numbers the client's acquisitions (each its own ephemeral sequential
    node); a release names the attempt whose node it deletes, so a late release never
    frees a later hold of the same client.  An acquire's output is True when the client
    came to hold the lock (its node was the smallest), False when it gave up; a
    release's is True.  The lock is held from the acquire's linearization to the
    release's.
    """

    kind: str
    name: str
    client: int
    attempt: int = 0


Holder = tuple[int, int] | None
"""The (client, attempt) holding a lock; None while it is free."""


@dataclass(frozen=True, slots=True)
class LockModel:
    """Mutual exclusion: the state is the holder; partitioned by lock."""

    def init(self) -> Holder:
        return None

    def step(self, state: Holder, input: Hashable, output: Hashable) -> tuple[bool, Holder]:
        assert isinstance(input, LockOp)
        me = (input.client, input.attempt)
        if input.kind == "acquire":
            if output is UNKNOWN:
                return True, me if state is None else state
            if output:
                return state is None, me
            return True, state
        assert input.kind == "release", input.kind
        if output is UNKNOWN:
            return True, None if state == me else state
        return state == me, None

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        by_name: dict[str, list[Operation]] = {}
        for op in history:
            assert isinstance(op.input, LockOp)
            by_name.setdefault(op.input.name, []).append(op)
        return list(by_name.values())

    def describe(self, op: Operation) -> str:
        lk = op.input
        assert isinstance(lk, LockOp)
        return f"{lk.kind}({lk.name!r}) by {lk.client}#{lk.attempt} -> {op.output!r}"


SimZnodeState = tuple[bytes, int] | None
"""A znode's (data, version), or None while it does not exist."""


@dataclass(frozen=True, slots=True)
class SimZnodeOp:
    """A ZooKeeper operation on one znode (``key`` is its path).

    ``kind`` and its output:

    * ``create`` (``value``): ``"ok"`` or ``"exists"`` (NODEEXISTS);
    * ``set`` (``value``, ``version``, -1 for any): ``("ok", new version)``, ``"nonode"``
      or ``"badversion"``;
    * ``delete`` (``version``): ``"ok"``, ``"nonode"`` or ``"badversion"``;
    * ``get``: ``(data, version)``, or None (NONODE).

    A write that failed for another reason (``("err", code)``: a moved or expired
    session) had no effect.
    """

    kind: str
    key: str
    value: bytes = b""
    version: int = -1


@dataclass(frozen=True, slots=True)
class SimZnodeModel:
    """Znodes that do not exist at first, with 3.8's versions (a create starts at 0, each
    setData adds one); partitioned by path."""

    def init(self) -> SimZnodeState:
        return None

    def step(
        self, state: SimZnodeState, input: Hashable, output: Hashable
    ) -> tuple[bool, SimZnodeState]:
        assert isinstance(input, SimZnodeOp)
        kind = input.kind
        if kind == "get":
            return output is UNKNOWN or output == state, state
        if isinstance(output, tuple) and output and output[0] == "err":
            return True, state
        unknown = output is UNKNOWN
        if kind == "create":
            if state is None:
                return unknown or output == "ok", (input.value, 0)
            return unknown or output == "exists", state
        if state is None:
            return unknown or output == "nonode", state
        if input.version not in (-1, state[1]):
            return unknown or output == "badversion", state
        if kind == "set":
            return unknown or output == ("ok", state[1] + 1), (input.value, state[1] + 1)
        return unknown or output == "ok", None

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        by_key: dict[str, list[Operation]] = {}
        for op in history:
            assert isinstance(op.input, SimZnodeOp)
            by_key.setdefault(op.input.key, []).append(op)
        return [by_key[k] for k in sorted(by_key)]

    def describe(self, op: Operation) -> str:
        i = op.input
        assert isinstance(i, SimZnodeOp)
        args = {
            "create": f"{i.value!r}",
            "set": f"{i.value!r}, version={i.version}",
            "delete": f"version={i.version}",
        }.get(i.kind, "")
        return f"{i.kind}({i.key}{', ' + args if args else ''}) -> {op.output!r}"


@dataclass(frozen=True, slots=True)
class CheckResult(Generic[S]):
    verdict: Verdict
    failing_partition: tuple[Operation, ...] = ()


def _check_partition(
    model: Model[S], ops: Sequence[Operation], deadline: float, clock: Callable[[], float]
) -> Verdict:
    n = len(ops)
    if n == 0:
        return Verdict.LINEARIZABLE
    end = max(max(o.call, o.ret if o.ret is not None else o.call) for o in ops) + 1
    events = sorted(
        [(o.call, 0, i) for i, o in enumerate(ops)]
        + [(o.ret if o.ret is not None else end, 1, i) for i, o in enumerate(ops)]
    )
    # Node 0 is the head; node k+1 is events[k].
    size = 2 * n + 1
    nxt = list(range(1, size + 1))
    nxt[-1] = -1
    prv = list(range(-1, size - 1))
    op_of = [-1] * size
    is_call = [False] * size
    match = [-1] * size
    call_node = [-1] * n
    for k, (_, kind, i) in enumerate(events):
        node = k + 1
        op_of[node] = i
        if kind == 0:
            is_call[node] = True
            call_node[i] = node
        else:
            match[call_node[i]] = node
    # Twins: open-ended operations with the same input and output.  Of two twins, the one
    # called first can always take the other's place in a linearization (both may take
    # effect any time after their calls), so a twin is linearized only after the twin
    # called before it: otherwise the search would try every subset of them (2^k states
    # for k open-ended sequential creates pending together).
    twin_before = [-1] * n
    last_twin: dict[tuple[Hashable, Hashable], int] = {}
    for i in sorted((i for i, o in enumerate(ops) if o.ret is None), key=lambda i: ops[i].call):
        key = (ops[i].input, ops[i].output)
        twin_before[i] = last_twin.get(key, -1)
        last_twin[key] = i
    state = model.init()
    linearized = 0
    cache: set[tuple[int, S]] = set()
    stack: list[tuple[int, S]] = []
    entry = nxt[0]
    steps = 0
    while nxt[0] != -1:
        steps += 1
        if steps & 0x3FF == 0 and clock() > deadline:
            return Verdict.UNKNOWN
        if is_call[entry]:
            twin = twin_before[op_of[entry]]
            if twin >= 0 and not (linearized >> twin) & 1:
                entry = nxt[entry]
                continue
            op = ops[op_of[entry]]
            ok, new_state = model.step(state, op.input, op.output)
            if ok:
                bits = linearized | (1 << op_of[entry])
                key = (bits, new_state)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state = new_state
                    linearized = bits
                    ret = match[entry]
                    for node in (entry, ret):
                        p, q = prv[node], nxt[node]
                        nxt[p] = q
                        if q != -1:
                            prv[q] = p
                    entry = nxt[0]
                    continue
            entry = nxt[entry]
        else:
            if not stack:
                return Verdict.NOT_LINEARIZABLE
            entry, state = stack.pop()
            linearized &= ~(1 << op_of[entry])
            ret = match[entry]
            for node in (ret, entry):
                p, q = prv[node], nxt[node]
                nxt[p] = node
                if q != -1:
                    prv[q] = node
            entry = nxt[entry]
    return Verdict.LINEARIZABLE


def _never() -> float:
    return 0.0


def check(
    model: Model[S],
    history: Sequence[Operation],
    timeout_s: float = 60.0,
    clock: Callable[[], float] | None = None,
) -> CheckResult[S]:
    """Check a history partition by partition; UNKNOWN if the budget runs out.

    The clock is the caller's (this module is pure); without one there is no budget.
    """
    if clock is None:
        clock = _never
    deadline = clock() + timeout_s
    unknown = False
    for part in model.partition(history):
        verdict = _check_partition(model, part, deadline, clock)
        if verdict is Verdict.NOT_LINEARIZABLE:
            return CheckResult(Verdict.NOT_LINEARIZABLE, tuple(part))
        unknown |= verdict is Verdict.UNKNOWN
    return CheckResult(Verdict.UNKNOWN if unknown else Verdict.LINEARIZABLE)


def _fails(
    model: Model[S],
    ops: Sequence[Operation],
    deadline: float = 0.0,
    clock: Callable[[], float] = _never,
) -> bool | None:
    """True if ``ops`` is not linearizable; None if the budget ran out first."""
    if clock() > deadline:
        return None
    verdict = _check_partition(model, ops, deadline, clock)
    return None if verdict is Verdict.UNKNOWN else verdict is Verdict.NOT_LINEARIZABLE


@dataclass(frozen=True, slots=True)
class Shrunk:
    """What :func:`shrink_failure` found: a failing part, and whether it is minimal."""

    ops: tuple[Operation, ...]
    complete: bool


def shrink_failure(
    model: Model[S],
    part: Sequence[Operation],
    timeout_s: float = 60.0,
    clock: Callable[[], float] | None = None,
) -> Shrunk:
    """A small non-linearizable part of a failing partition, for a person to read.

    First the shortest prefix (operations ordered by call) that already fails, found by
    bisection and kept only if it truly fails, then greedily drop every operation whose
    removal keeps the rest non-linearizable.  Each step is a full search of what is left,
    so on a long history this takes long (thousands of searches): past ``timeout_s`` (by
    ``clock``; without one there is no budget) it stops and returns the smallest failing
    part found so far, with ``complete`` False.
    """
    if clock is None:
        clock = _never
    deadline = clock() + timeout_s
    ops = sorted(part, key=lambda o: o.call)
    lo, hi = 1, len(ops)
    while lo < hi:
        mid = (lo + hi) // 2
        fails = _fails(model, ops[:mid], deadline, clock)
        if fails is None:
            return Shrunk(tuple(ops), False)
        if fails:
            hi = mid
        else:
            lo = mid + 1
    fails = _fails(model, ops[:lo], deadline, clock)
    if fails is None:
        return Shrunk(tuple(ops), False)
    if fails:
        ops = ops[:lo]
    i = len(ops) - 1
    while i >= 0:
        rest = ops[:i] + ops[i + 1 :]
        fails = _fails(model, rest, deadline, clock)
        if fails is None:
            return Shrunk(tuple(ops), False)
        if fails:
            ops = rest
        i -= 1
    return Shrunk(tuple(ops), True)


def minimal_failure(model: Model[S], part: Sequence[Operation]) -> tuple[Operation, ...]:
    """:func:`shrink_failure` without a budget: a minimal failing part."""
    return shrink_failure(model, part, clock=None).ops


def describe_failure(model: Model[S], ops: Sequence[Operation]) -> str:
    """One line per operation: client, interval ([call, ret], "open" if never returned)."""
    lines = ["not linearizable:"]
    for op in sorted(ops, key=lambda o: o.call):
        ret = "open" if op.ret is None else str(op.ret)
        lines.append(f"  client {op.client:>4}  [{op.call}, {ret}]  {model.describe(op)}")
    return "\n".join(lines) + "\n"


def failure_report(
    model: Model[S],
    history: Sequence[Operation],
    timeout_s: float = 60.0,
    clock: Callable[[], float] | None = None,
) -> str:
    """Empty when the history is linearizable; else the verdict and a minimal failing part.

    Written to a file by the tests (and named in their assertion message); the text is
    also what an UNKNOWN verdict (budget exhausted) reports.  The check and the shrinking
    each have ``timeout_s`` (by ``clock``; without one, no budget).
    """
    result = check(model, history, timeout_s, clock)
    if result.verdict is Verdict.LINEARIZABLE:
        return ""
    if result.verdict is Verdict.UNKNOWN:
        return f"unknown: the check ran out of its {timeout_s:g} s budget\n"
    part = result.failing_partition
    small = shrink_failure(model, part, timeout_s, clock)
    what = (
        "a minimal failing part"
        if small.complete
        else f"shrinking stopped at its {timeout_s:g} s budget; a failing part"
    )
    return (
        f"{len(part)} operations in the failing partition; {what} of {len(small.ops)}:\n"
        + describe_failure(model, small.ops)
    )
