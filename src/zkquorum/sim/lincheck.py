"""Linearizability checking of client histories (docs/spec/zk-server.md §3.5-3.7).

The search is Wing-Gong-Lowe's, with Lowe's memoisation of (linearized set, state)
and P-compositionality (each partition, e.g. one key, is checked on its own), in the
iterative form Porcupine uses: calls and returns form a doubly linked list, linearizing
a call lifts it and its return out of the list, and reaching a return whose call is not
yet linearized backtracks.  An operation whose outcome the client never learned is
open-ended: its return is put after every other event, so it may take effect at any
time after its call, or (equivalently for every observer) never.
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


ZnodeState = tuple[bytes, int] | None
"""A znode's (data, version), or None while it does not exist."""


@dataclass(frozen=True, slots=True)
class ZnodeOp:
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
class ZnodeModel:
    """Znodes that do not exist at first, with 3.8's versions (a create starts at 0, each
    setData adds one); partitioned by path."""

    def init(self) -> ZnodeState:
        return None

    def step(self, state: ZnodeState, input: Hashable, output: Hashable) -> tuple[bool, ZnodeState]:
        assert isinstance(input, ZnodeOp)
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
            assert isinstance(op.input, ZnodeOp)
            by_key.setdefault(op.input.key, []).append(op)
        return [by_key[k] for k in sorted(by_key)]

    def describe(self, op: Operation) -> str:
        i = op.input
        assert isinstance(i, ZnodeOp)
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


def _fails(model: Model[S], ops: Sequence[Operation]) -> bool:
    return _check_partition(model, ops, 0.0, _never) is Verdict.NOT_LINEARIZABLE


def minimal_failure(model: Model[S], part: Sequence[Operation]) -> tuple[Operation, ...]:
    """A small non-linearizable part of a failing partition, for a person to read.

    First the shortest prefix (operations ordered by call) that already fails, found by
    bisection and kept only if it truly fails, then greedily drop every operation whose
    removal keeps the rest non-linearizable.
    """
    ops = sorted(part, key=lambda o: o.call)
    lo, hi = 1, len(ops)
    while lo < hi:
        mid = (lo + hi) // 2
        if _fails(model, ops[:mid]):
            hi = mid
        else:
            lo = mid + 1
    if _fails(model, ops[:lo]):
        ops = ops[:lo]
    i = len(ops) - 1
    while i >= 0:
        rest = ops[:i] + ops[i + 1 :]
        if _fails(model, rest):
            ops = rest
        i -= 1
    return tuple(ops)


def describe_failure(model: Model[S], ops: Sequence[Operation]) -> str:
    """One line per operation: client, interval ([call, ret], "open" if never returned)."""
    lines = ["not linearizable:"]
    for op in sorted(ops, key=lambda o: o.call):
        ret = "open" if op.ret is None else str(op.ret)
        lines.append(f"  client {op.client:>4}  [{op.call}, {ret}]  {model.describe(op)}")
    return "\n".join(lines) + "\n"
