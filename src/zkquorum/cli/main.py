"""``zkquorum`` entry point.

Each sub-command lives in its own module under :mod:`zkquorum.cli` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed namespace and returning the exit status.  A user error is raised as
:class:`CliError`; ``main`` prints it as one line on stderr and exits 2: never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from zkquorum import __version__

# Sub-command modules, in the order ``zkquorum --help`` lists them.
_COMMANDS = ("cluster_cmd", "run_cmd", "status_cmd", "config_cmd", "decode_cmd", "sim_cmd")


class CliError(Exception):
    """A user error: printed as one line on stderr, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zkquorum",
        description="Apache ZooKeeper 3.8's quorum peer in pure Python.",
    )
    parser.add_argument("--version", action="version", version=f"zkquorum {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"zkquorum.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"zkquorum.cli.{name}":
                continue  # a command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = func(args)
    except CliError as exc:
        print(f"zkquorum: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
