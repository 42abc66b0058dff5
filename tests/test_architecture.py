"""The direction of the arrows: pure layers import no I/O, and no layer imports upwards.

cli -> api -> runtime -> core -> wire -> config, and sim -> core (spec/architecture.md);
testing (the pytest plugin) runs servers as processes and imports no other layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "zkquorum"
PURE = ("config", "wire", "core", "sim", "tools")
FORBIDDEN_IN_PURE = {"asyncio", "socket", "time", "os", "subprocess", "threading", "selectors"}
# Each layer may import itself and those listed after it.
ORDER = ["cli", "api", "runtime", "sim", "tools", "core", "wire", "config"]
ALLOWED = {
    "cli": set(ORDER),
    "api": {"api", "runtime", "core", "wire", "config"},
    "runtime": {"runtime", "tools", "core", "wire", "config"},
    "sim": {"sim", "core", "wire", "config"},
    "tools": {"tools", "wire", "config"},
    "core": {"core", "wire", "config"},
    "wire": {"wire", "config"},
    "config": {"config"},
    "testing": {"testing"},
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def layer_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem


FILES = sorted(p for p in SRC.rglob("*.py") if layer_of(p) in ALLOWED)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_layering(path: Path) -> None:
    layer = layer_of(path)
    for name in imports(path):
        top = name.split(".")[0]
        if layer in PURE:
            assert top not in FORBIDDEN_IN_PURE, f"{path.name} ({layer}) imports {name}"
        if name.startswith("zkquorum."):
            target = name.split(".")[1]
            if target in ALLOWED:
                assert target in ALLOWED[layer], f"{path.name} ({layer}) imports {name}"


def test_the_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("import asyncio\nfrom zkquorum.runtime import peer\n")
    assert {"asyncio", "zkquorum.runtime"} <= imports(bad)
