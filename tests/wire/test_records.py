"""``fast_init`` gives a frozen record the ``__init__`` dataclasses would, only cheaper."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from zkquorum.wire.records import fast_init


def _twins(**kwargs: object) -> tuple[type, type]:
    def make() -> type:
        @dataclass(frozen=True, slots=True, **kwargs)  # type: ignore[call-overload]
        class Rec:
            a: int
            b: str = "b"
            c: list[int] = field(default_factory=list)
            d: int = field(default=4, init=False)
            e: tuple[int, ...] = field(default=(), kw_only=True)

            def __post_init__(self) -> None:
                if self.a < 0:
                    raise ValueError("negative")

        return Rec

    return make(), fast_init(make())


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, "x"), {}), ((1, "x", [2]), {"e": (5,)}), ((), {"a": 3, "c": [1]})],
)
def test_the_same_record_either_way(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    plain, fast = _twins()
    want, got = plain(*args, **kwargs), fast(*args, **kwargs)
    assert dataclasses.astuple(want) == dataclasses.astuple(got)
    assert repr(want).replace("Rec", "") == repr(got).replace("Rec", "")
    assert got == fast(*args, **kwargs)


def test_factories_make_a_new_value_each_time_and_post_init_runs() -> None:
    _, fast = _twins()
    assert fast(1).c is not fast(1).c
    with pytest.raises(ValueError, match="negative"):
        fast(-1)


def test_the_record_stays_frozen_and_its_arguments_checked() -> None:
    _, fast = _twins()
    rec = fast(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.a = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        fast()
    with pytest.raises(TypeError):
        fast(1, "b", [], 4)
    assert dataclasses.replace(rec, b="z").b == "z"


def _key() -> type:
    @dataclass(frozen=True, slots=True)
    class Key:
        a: int
        b: str = ""

    return Key


def test_a_hashable_record_hashes_the_same() -> None:
    plain, fast = _key(), fast_init(_key())
    assert hash(plain(1, "x")) == hash(fast(1, "x"))
    assert fast(1).b == ""


def test_only_frozen_slotted_dataclasses() -> None:
    @dataclass(slots=True)
    class Loose:
        a: int

    with pytest.raises(TypeError, match="not a frozen, slotted dataclass"):
        fast_init(Loose)
