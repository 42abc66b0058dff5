"""Histories generated from a sequential execution with random overlap are linearizable."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zkquorum.sim.lincheck import KvModel, KvOp, Operation, Verdict, check

_OP = st.tuples(
    st.sampled_from(["get", "put", "append"]), st.sampled_from("ab"), st.sampled_from("xyz")
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_OP, st.integers(0, 400), st.integers(0, 400)), max_size=30))
def test_sequential_execution_with_concurrency_is_linearizable(
    steps: list[tuple[tuple[str, str, str], int, int]],
) -> None:
    model = KvModel()
    state: dict[str, str] = {}
    history = []
    for i, ((kind, key, value), before, after) in enumerate(steps):
        point = 100 * i + 50
        cur = state.get(key, model.init())
        ok, new = model.step(cur, KvOp(kind, key, value), cur)
        assert ok
        state[key] = new
        out = cur if kind == "get" else None
        # The interval contains the linearization point: the sequential order is a witness.
        history.append(Operation(i, point - before, point + after, KvOp(kind, key, value), out))
    assert check(model, history).verdict is Verdict.LINEARIZABLE
