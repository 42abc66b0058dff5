"""The differential judge's own logic, without servers: the workload and the comparison."""

from __future__ import annotations

import dataclasses

from tests.judges.differential.workload import (
    Event,
    Op,
    Record,
    Result,
    compare,
    make_workload,
)


def test_a_seed_gives_one_workload_and_seeds_differ() -> None:
    assert make_workload(5) == make_workload(5)
    assert make_workload(5) != make_workload(6)


def test_every_operation_kind_is_in_every_workload() -> None:
    for seed in (1, 2, 3):
        assert {s.op for s in make_workload(seed, 50)} == set(Op)


def test_each_expiry_happens_once() -> None:
    steps = make_workload(9)
    assert sum(s.op is Op.VANISH_EXPIRE for s in steps) == 1
    assert sum(s.op is Op.EXPIRE_CONTAINER_TTL for s in steps) == 1
    vanish_create = next(i for i, s in enumerate(steps) if s.op is Op.VANISH_CREATE)
    vanish = next(i for i, s in enumerate(steps) if s.op is Op.VANISH_EXPIRE)
    assert vanish_create < vanish


RECORD = Record(
    target="a",
    seed=1,
    results=(Result(0, "c0 create /d", "'/d'"), Result(1, "c0 get /d", "data=b'' ...")),
    events=(Event(1, "c0", "CHANGED", "/d"),),
    tree=(("/", "data=b'' ..."), ("/d", "data=b'x' ...")),
)


def test_equal_records_have_no_difference() -> None:
    assert compare(RECORD, dataclasses.replace(RECORD, target="b")) == []


def test_an_altered_result_is_named_by_its_step() -> None:
    other = dataclasses.replace(
        RECORD, target="b", results=(RECORD.results[0], Result(1, "c0 get /d", "NoNodeError"))
    )
    (diff,) = compare(RECORD, other)
    assert diff.startswith("step 1 (c0 get /d)") and "NoNodeError" in diff


def test_a_missing_or_extra_event_is_a_difference() -> None:
    assert compare(RECORD, dataclasses.replace(RECORD, events=()))
    extra = (*RECORD.events, Event(1, "c2", "CHILD", "/"))
    assert compare(RECORD, dataclasses.replace(RECORD, events=extra))


def test_a_different_final_node_is_a_difference() -> None:
    tree = (("/", "data=b'' ..."), ("/d", "data=b'y' ..."))
    (diff,) = compare(RECORD, dataclasses.replace(RECORD, tree=tree))
    assert diff.startswith("final tree /d")
    (diff,) = compare(RECORD, dataclasses.replace(RECORD, tree=RECORD.tree[:1]))
    assert "missing" in diff
