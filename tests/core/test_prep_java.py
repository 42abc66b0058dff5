"""core/prep.py's model of ``java.util.HashSet`` iteration (the order of a closeSession's
paths) against Java itself, through ``ServerRulesProbe.java``."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.core.test_sessions_java import ask_probe, hex_text
from zkquorum.core.prep import java_hash_set_order

NAMES = st.text(alphabet="abcz/-0123456789é", min_size=1, max_size=12).map(lambda s: "/" + s)


@settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.large_base_example, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.tuples(
            st.lists(NAMES, max_size=40, unique=True),
            st.lists(st.tuples(NAMES, st.booleans()), max_size=20),
        ),
        min_size=20,
        max_size=20,
    )
)
def test_hash_set_order_matches_java(cases: list[tuple[list[str], list[tuple[str, bool]]]]) -> None:
    questions = []
    for created, edits in cases:
        parts = ["hashset", str(len(created)), *map(hex_text, created), str(len(edits))]
        for path, add in edits:
            parts += ["+" if add else "-", hex_text(path)]
        questions.append(" ".join(parts))
    answers = ask_probe(questions)
    for (created, edits), answer in zip(cases, answers, strict=True):
        ours = " ".join(["ORDER", *map(hex_text, java_hash_set_order(created, edits))])
        assert ours == answer, (created, edits)


def test_hash_set_order_of_many_sizes() -> None:
    cases = [[f"/s/e-{i:010d}" for i in range(n)] for n in range(0, 60)]
    answers = ask_probe([" ".join(["hashset", str(len(c)), *map(hex_text, c), "0"]) for c in cases])
    for created, answer in zip(cases, answers, strict=True):
        assert " ".join(["ORDER", *map(hex_text, java_hash_set_order(created, []))]) == answer
