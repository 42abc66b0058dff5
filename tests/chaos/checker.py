"""Invariants over the peers' leadership histories (the ``--events`` files) and logs.

A history is the ``established`` records (role, leader, epoch, wall-clock time) a peer
wrote, across all its restarts (the file is appended to).  Checked:

1. never two peers established as leader of the same epoch;
2. a peer's established epochs never go down (across restarts too), and a peer never
   leads the same epoch twice;
3. every follower/observer established in (leader L, epoch e) followed a real leader:
   L itself established LEADING in epoch e;
4. no crash: no traceback and no ERROR line in any log.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Established:
    t: float
    sid: int
    state: str
    leader: int
    epoch: int


@dataclasses.dataclass
class History:
    by_sid: dict[int, list[Established]]
    records: int
    bad_lines: int

    def all(self) -> list[Established]:
        return sorted((e for es in self.by_sid.values() for e in es), key=lambda e: e.t)


def read_history(files: Mapping[int, Path]) -> History:
    by_sid: dict[int, list[Established]] = {}
    records = bad = 0
    for sid, path in files.items():
        out = by_sid.setdefault(sid, [])
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                bad += 1  # a line cut short by SIGKILL
                continue
            records += 1
            if rec.get("ev") == "established":
                out.append(
                    Established(
                        float(rec["t"]),
                        int(rec["sid"]),
                        str(rec["state"]),
                        int(rec["leader"]),
                        int(rec["epoch"]),
                    )
                )
    return History(by_sid, records, bad)


@dataclasses.dataclass
class Report:
    violations: list[str]
    checks: int
    leaderships: int
    establishments: int


def check_history(history: History) -> Report:
    violations: list[str] = []
    checks = 0
    leaders_of: dict[int, set[int]] = {}
    for sid, events in history.by_sid.items():
        last: Established | None = None
        led: set[int] = set()
        for e in events:
            checks += 1
            if e.sid != sid:
                violations.append(f"peer {sid}'s history holds a record of sid {e.sid}")
            if last is not None and e.epoch < last.epoch:
                violations.append(
                    f"peer {sid}: epoch went down from {last.epoch} ({last.state}) to "
                    f"{e.epoch} ({e.state}) at t={e.t:.3f}"
                )
            if e.state == "LEADING":
                if e.leader != sid:
                    violations.append(f"peer {sid} LEADING but names leader {e.leader}")
                if e.epoch in led:
                    violations.append(f"peer {sid} established as leader of epoch {e.epoch} twice")
                led.add(e.epoch)
                leaders_of.setdefault(e.epoch, set()).add(sid)
            last = e
    for epoch, sids in sorted(leaders_of.items()):
        checks += 1
        if len(sids) > 1:
            violations.append(f"two leaders established in epoch {epoch}: {sorted(sids)}")
    for e in history.all():
        if e.state in ("FOLLOWING", "OBSERVING"):
            checks += 1
            if e.leader not in leaders_of.get(e.epoch, set()):
                violations.append(
                    f"peer {e.sid} {e.state} leader {e.leader} in epoch {e.epoch}, but that "
                    "peer never established itself as leader of that epoch"
                )
    return Report(
        violations,
        checks,
        sum(len(v) for v in leaders_of.values()),
        sum(len(v) for v in history.by_sid.values()),
    )


_ERROR = re.compile(r"^.* - (ERROR|CRITICAL) \[.*$", re.M)


def check_logs(logs: Mapping[int, str], allowed: Iterable[str] = ()) -> list[str]:
    """Tracebacks and ERROR lines (but those matching an ``allowed`` pattern)."""
    patterns = [re.compile(p) for p in allowed]
    problems = []
    for sid, text in logs.items():
        if "Traceback (most recent call last)" in text:
            i = text.index("Traceback (most recent call last)")
            problems.append(f"peer {sid}: traceback:\n{text[max(0, i - 300) : i + 2000]}")
        for m in _ERROR.finditer(text):
            if not any(p.search(m.group(0)) for p in patterns):
                problems.append(f"peer {sid}: {m.group(0)}")
    return problems
