"""Shared fixtures: the golden captures in tests/testdata/vectors."""

from __future__ import annotations

import json
from typing import Any

from tests.vectors import VECTORS

VECTOR_SETS = ("snap-sync", "diff-sync", "multiaddr-v2")
CAPTURES = (*VECTOR_SETS, "zk-n3-tick200")


def load_vectors(name: str) -> dict[str, Any]:
    path = VECTORS / f"{name}.vectors.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def all_messages() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name in VECTOR_SETS:
        path = VECTORS / f"{name}.vectors.json"
        for m in json.loads(path.read_text(encoding="utf-8"))["messages"]:
            out.append((name, m))
    return out


def captured_bytes(kind: str) -> list[bytes]:
    """Raw bytes of every captured message of one kind (for fuzz seeds)."""
    return [bytes.fromhex(m["hex"]) for _, m in all_messages() if m["kind"] == kind]
