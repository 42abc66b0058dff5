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
# Sub-command name -> module, in the order ``zkquorum --help`` lists them.
_COMMANDS = {
    "cluster": "cluster_cmd",
    "run": "run_cmd",
    "status": "status_cmd",
    "config": "config_cmd",
    "decode": "decode_cmd",
    "sim": "sim_cmd",
}


class CliError(Exception):
    """A user error: printed as one line on stderr, exit status 2."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that sub-command's module is imported.

    Importing every command (the simulator, the pcap decoder, the cluster driver...) costs a
    ``zkquorum run`` process several MiB of resident memory it never uses.
    """
    parser = argparse.ArgumentParser(
        prog="zkquorum",
        description="Apache ZooKeeper 3.8's quorum peer in pure Python.",
    )
    parser.add_argument("--version", action="version", version=f"zkquorum {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in _COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(f"zkquorum.cli.{module_name}")
        module.register(sub)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line, if it is one we know."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in _COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(args_list))
    args = parser.parse_args(args_list)
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
