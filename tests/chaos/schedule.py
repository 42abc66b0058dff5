"""The seeded fault schedule of the chaos test: rounds of overlapping faults that heal.

Round ``i`` of seed ``s`` depends on ``(s, i)`` only, so a replay with the same seed
injects the same faults in the same order (the timing of the processes may differ).  A
target of :data:`LEADER` is resolved when the fault starts: the peer that is leader then.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

LEADER = -1

PROCESS_KINDS = ("kill", "stop")
LINK_KINDS = ("drop", "delay", "cut_one", "cut_both")
KINDS = PROCESS_KINDS + LINK_KINDS


@dataclasses.dataclass(frozen=True)
class Fault:
    """``kind`` on ``target`` from ``start`` s into the round, for ``duration`` s.

    ``target`` is ``(sid,)`` for a process fault and ``(a, b)`` for a link fault (for
    ``cut_one`` the silent direction is ``a -> b``); a sid may be :data:`LEADER`.
    """

    kind: str
    target: tuple[int, ...]
    start: float
    duration: float
    delay_ms: float = 0.0

    def describe(self) -> str:
        who = "->" if self.kind == "cut_one" else "<->"
        names = ["leader" if s == LEADER else str(s) for s in self.target]
        extra = f" {self.delay_ms:.0f} ms" if self.kind == "delay" else ""
        return (
            f"{self.kind}{extra} {who.join(names)} at +{self.start:.2f}s for {self.duration:.2f}s"
        )


def make_round(seed: int, index: int, sids: Sequence[int]) -> list[Fault]:
    """One round: one to three faults on distinct targets, each 0.3 to 4 s long."""
    rng = random.Random(f"zkquorum-chaos:{seed}:{index}")
    faults: list[Fault] = []
    used_procs: set[int] = set()
    used_links: set[frozenset[int]] = set()
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        kind = rng.choice(KINDS)
        start = round(rng.uniform(0.0, 1.5), 2)
        duration = round(rng.uniform(0.3, 4.0), 2)
        if kind in PROCESS_KINDS:
            sid = LEADER if rng.random() < 0.4 else rng.choice(list(sids))
            if sid in used_procs:
                continue
            used_procs.add(sid)
            faults.append(Fault(kind, (sid,), start, duration))
        else:
            a = LEADER if rng.random() < 0.4 else rng.choice(list(sids))
            b = rng.choice([s for s in sids if s != a])
            if rng.random() < 0.5:
                a, b = b, a
            if frozenset((a, b)) in used_links:
                continue
            used_links.add(frozenset((a, b)))
            delay = round(rng.uniform(50, 1500)) if kind == "delay" else 0.0
            faults.append(Fault(kind, (a, b), start, duration, delay))
    return faults
