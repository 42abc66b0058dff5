"""A small datadriven test runner in the style of cockroachdb/datadriven (etcd raft).

A test file is a sequence of blocks::

    # comments and blank lines between blocks are kept as they are
    command key=value key=value
    optional input lines
    ----
    expected output lines
    (a blank line ends the block)

``run_file`` calls ``handler(command, args, input_lines)`` for every block and compares
what it returns with the expected output.  With ``rewrite=True`` (``pytest --rewrite`` or
``ZKQ_REWRITE=1``) the file is written back with the actual output instead: commit only
diffs you understand.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Block:
    line: int
    command: str
    args: dict[str, str]
    input: list[str]
    expected: list[str]


Handler = Callable[[str, dict[str, str], list[str]], str]


def parse(text: str) -> list[tuple[list[str], Block | None]]:
    """Split a file into (verbatim lines before the block, block) pairs."""
    lines = text.splitlines()
    out: list[tuple[list[str], Block | None]] = []
    i = 0
    pending: list[str] = []
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            pending.append(line)
            i += 1
            continue
        start = i
        head = shlex.split(line)
        i += 1
        inp: list[str] = []
        while i < len(lines) and lines[i] != "----":
            inp.append(lines[i])
            i += 1
        if i >= len(lines):
            raise ValueError(f"line {start + 1}: block without ----")
        i += 1
        exp: list[str] = []
        while i < len(lines) and lines[i].strip():
            exp.append(lines[i])
            i += 1
        args = {}
        for tok in head[1:]:
            k, _, v = tok.partition("=")
            args[k] = v
        out.append((pending, Block(start + 1, head[0], args, inp, exp)))
        pending = []
    if pending:
        out.append((pending, None))
    return out


def run_file(path: Path, handler: Handler, *, rewrite: bool = False) -> None:
    """Run every block of ``path``; raise AssertionError on the first mismatch."""
    parts = parse(path.read_text())
    new: list[str] = []
    failures: list[str] = []
    for verbatim, block in parts:
        new.extend(verbatim)
        if block is None:
            continue
        actual = handler(block.command, block.args, block.input).rstrip("\n").splitlines()
        head = path.read_text().splitlines()[block.line - 1]
        new.append(head)
        new.extend(block.input)
        new.append("----")
        new.extend(actual)
        if actual != block.expected and not rewrite:
            failures.append(
                f"{path.name}:{block.line}: {head}\n--- expected\n"
                + "\n".join(block.expected)
                + "\n--- actual\n"
                + "\n".join(actual)
            )
    if rewrite:
        path.write_text("\n".join(new) + "\n")
        return
    if failures:
        raise AssertionError("\n\n".join(failures))
