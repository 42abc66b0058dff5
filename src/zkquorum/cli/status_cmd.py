"""``zkquorum status HOST:PORT [...] [--watch]``: who leads, as each server says.

Asks every server at once with the ``srvr`` four-letter word (zkquorum or Java
ZooKeeper: ``srvr`` is always whitelisted) and prints one row per server: mode, zxid,
epoch (``zxid >> 32``) and the round trip of the question.  Exit status: 0 when every
server answered, 1 otherwise.  ``--watch [SECONDS]`` refreshes until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from typing import Any

from zkquorum.cli.main import CliError
from zkquorum.config.model import HostPort
from zkquorum.runtime.admin import SrvrReply, query_all

DEFAULT_CLIENT_PORT = 2181


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "status",
        help="show each server's mode, zxid and epoch (srvr four-letter word)",
        description="Ask ZooKeeper or zkquorum servers for their state with 'srvr'.",
    )
    parser.add_argument(
        "servers",
        nargs="+",
        metavar="HOST:PORT",
        help=f"client address of a server (port defaults to "
        f"{DEFAULT_CLIENT_PORT}; IPv6 as [::1]:2181)",
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        const=1.0,
        type=float,
        metavar="SECONDS",
        help="refresh every SECONDS (default 1) until interrupted",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="give up on a server after SECONDS (default 2)",
    )
    parser.set_defaults(func=run)


def parse_server(text: str) -> HostPort:
    """``host:port``, ``host``, ``[v6]:port`` or ``[v6]`` -> HostPort."""
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise CliError(f"bad server address {text!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise CliError(f"bad server address {text!r}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host:
        raise CliError(f"bad server address {text!r}: no host")
    if not port_text:
        return HostPort(host, DEFAULT_CLIENT_PORT)
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        raise CliError(f"bad server address {text!r}: port must be 1..65535")
    return HostPort(host, int(port_text))


def format_table(replies: Sequence[SrvrReply]) -> str:
    headers = ("SERVER", "MODE", "ZXID", "EPOCH", "LATENCY")
    rows = [headers]
    for r in replies:
        mode = r.mode if r.error is None else f"{r.mode}: {r.error}"
        rows.append(
            (
                r.server,
                mode,
                "-" if r.zxid is None else f"0x{r.zxid & 0xFFFFFFFFFFFFFFFF:x}",
                "-" if r.epoch is None else str(r.epoch),
                "-" if r.latency_ms is None else f"{r.latency_ms:.1f} ms",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers) - 1)]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        + "\n"
        for row in rows
    )


def run(args: argparse.Namespace) -> int:
    servers = [parse_server(s) for s in args.servers]
    if args.timeout <= 0:
        raise CliError("--timeout must be positive")
    if args.watch is None:
        replies = asyncio.run(query_all(servers, args.timeout))
        sys.stdout.write(format_table(replies))
        return 0 if all(r.error is None for r in replies) else 1
    if args.watch <= 0:
        raise CliError("--watch interval must be positive")
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
    try:
        while True:
            replies = asyncio.run(query_all(servers, args.timeout))
            sys.stdout.write(f"{clear}{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            sys.stdout.write(format_table(replies) + ("" if clear else "\n"))
            sys.stdout.flush()
            time.sleep(args.watch)  # the refresh period of --watch
    except KeyboardInterrupt:
        return 0
