"""``zkquorum config check FILE``: validate a zoo.cfg and print its quorum config string."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from zkquorum.cli.main import CliError
from zkquorum.config.errors import ConfigError
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.runtime.files import load_config


def register(sub: Any) -> None:
    parser = sub.add_parser("config", help="work with zoo.cfg files")
    inner = parser.add_subparsers(dest="config_command", metavar="ACTION")
    check = inner.add_parser(
        "check",
        help="validate a zoo.cfg as ZooKeeper 3.8 would, print the canonical config string",
    )
    check.add_argument("file", help="path of zoo.cfg")
    check.set_defaults(func=run_check)
    parser.set_defaults(func=lambda _args: (parser.print_help(sys.stderr), 2)[1])


def run_check(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    sys.stdout.write(render(cfg))
    return 0


def render(cfg: QuorumConfig) -> str:
    """The config string exactly as ZooKeeper's verifier writes it, then a summary."""
    out: list[str] = []
    if cfg.verifier is not None and cfg.verifier.all_members:
        out.append(cfg.verifier.to_zk_string())
        out.append("")
    v = cfg.verifier
    if v is None or not v.all_members:
        out.append("mode: standalone (no server lines)")
    elif not cfg.is_distributed:
        out.append("mode: standalone (one participant and standaloneEnabled=true)")
    else:
        role = cfg.learner_type.value
        out.append(f"mode: quorum peer; this server is sid {cfg.my_id} ({role})")
    if v is not None and v.all_members:
        out.append("voters: " + (", ".join(str(s) for s in sorted(v.voting_members)) or "none"))
        out.append(
            "observers: " + (", ".join(str(s) for s in sorted(v.observing_members)) or "none")
        )
        out.append("quorum: " + v.describe_quorum())
        out.append(f"version: {v.version:x}")
        if cfg.dynamic_config_file is not None:
            out.append(f"membership from: {cfg.dynamic_config_file} (dynamicConfigFile)")
        else:
            out.append("membership from: zoo.cfg's server lines")
        nxt = cfg.last_seen_verifier
        if nxt is not None and nxt.version > v.version:
            out.append(
                f"reconfig in progress: version {nxt.version:x} proposed "
                f"({nxt.describe_quorum()}), in {cfg.path}.dynamic.next"
            )
        out.append(f"reconfig: {'enabled' if cfg.reconfig_enabled else 'disabled'}")
    out.append(
        f"timing: tickTime={cfg.tick_time} ms, initLimit={cfg.init_limit}, "
        f"syncLimit={cfg.sync_limit}"
    )
    if cfg.unused_keys:
        keys = ", ".join(f"{k} (line {line})" for k, line in cfg.unused_keys)
        out.append(f"unused by zkquorum: {keys}")
    for w in cfg.warnings:
        out.append(f"warning: {w}")
    return "\n".join(out) + "\n"
