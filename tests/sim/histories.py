"""Parsers for the test-data formats of tests/testdata/vectors/linearizability."""

from __future__ import annotations

import re
from collections.abc import Hashable
from pathlib import Path

from zkquorum.sim.lincheck import UNKNOWN, KvOp, Operation, RegisterOp

VECTORS = Path(__file__).resolve().parents[1] / "testdata" / "vectors" / "linearizability"

_JEPSEN = re.compile(
    r"jepsen\.util - (\S+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.*?)\s*$"
)


def _value(text: str) -> Hashable:
    if text == "nil":
        return None
    return int(text)


def _client(proc: str) -> int:
    return int(proc) if proc.isdigit() else -1


def parse_jepsen(path: Path) -> list[Operation]:
    pending: dict[str, tuple[int, RegisterOp]] = {}
    done: list[Operation] = []
    t = 0
    for line in path.read_text().splitlines():
        m = _JEPSEN.search(line)
        if m is None:
            continue
        proc, kind, f, arg = m.groups()
        t += 1
        if kind == "invoke":
            if f == "cas":
                a, b = arg.strip("[]").split()
                value: Hashable = (_value(a), _value(b))
            elif f == "write":
                value = _value(arg)
            else:
                value = None
            pending[proc] = (t, RegisterOp(f, value))
            continue
        if kind == "info" or proc not in pending:
            continue
        call, op = pending.pop(proc)
        if f == "read":
            out: Hashable = UNKNOWN if kind == "fail" else _value(arg)
        elif f == "cas":
            out = kind == "ok"
        else:
            out = None
        done.append(Operation(_client(proc), call, t, op, out))
    for proc, (call, op) in pending.items():
        done.append(Operation(_client(proc), call, None, op, UNKNOWN))
    return done


_EDN = re.compile(r':process (\d+), :type :(\w+), :f :(\w+), :key "([^"]*)", :value (nil|"[^"]*")')


def parse_kv(path: Path) -> list[Operation]:
    pending: dict[int, tuple[int, str, str, str]] = {}
    done: list[Operation] = []
    for t, line in enumerate(path.read_text().splitlines()):
        m = _EDN.search(line)
        if m is None:
            continue
        proc, kind, f, key, raw = m.groups()
        value = "" if raw == "nil" else raw[1:-1]
        p = int(proc)
        if kind == "invoke":
            pending[p] = (t, f, key, value)
            continue
        call, f0, key0, v0 = pending.pop(p)
        out: Hashable = value if f0 == "get" else None
        done.append(Operation(p, call, t, KvOp(f0, key0, v0), out))
    for p, (call, f0, key0, v0) in pending.items():
        done.append(Operation(p, call, None, KvOp(f0, key0, v0), UNKNOWN))
    return done
