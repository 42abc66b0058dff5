"""ZooKeeper 3.8's AdminServer commands: names, aliases and the JSON each one answers.

Facts: ``docs/spec/zk-server.md`` §5.2, ``server/admin/Commands.java`` of 3.8.0, and the
answers of Debian's 3.8.0 recorded in ``tests/testdata/adminserver/`` (one file per seat:
standalone, leader, follower, observer, and a voter that is not serving).

* Every answer is a JSON object with ``command`` and ``error``; a command's own keys come
  first (``CommandResponse#toMap``), so a command that sets ``error`` itself (``leader`` on
  a standalone server) has it first.
* ``command`` is the primary name (``GET /commands/lead`` answers ``"command": "leader"``),
  except for an unknown name and the "not serving" refusal, which echo the name asked.
* Commands need a serving server (``Commands#runCommand``) except ``environment``,
  ``get_trace_mask``, ``monitor``, ``set_trace_mask``, ``system_properties`` and
  ``zabstate``.  While not serving, 3.8.0 answers ``monitor`` with HTTP 500 (its
  ``dumpMonitorValues`` dereferences the missing server); zkquorum answers the "not
  serving" error instead, as ``mntr`` does.
* Keys that only a JVM has: ``environment`` keeps 3.8's keys, with the Python runtime's
  counterparts in the ``java.*`` ones (``java.version`` is the Python version,
  ``java.home`` the interpreter's prefix, ``java.class.path`` ``sys.path``...);
  ``system_properties`` cannot match a JVM's property list, and answers the Python
  runtime's properties and ``zookeeper.<key>`` for every zoo.cfg key.

:func:`run` is pure but for the few commands that read the process or the disk
(``environment``, ``dirs``, ``last_snapshot``, ``system_properties``).
"""

from __future__ import annotations

import getpass
import os
import platform
import re
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from zkquorum import __version__
from zkquorum.config.model import HostPort, LearnerType, QuorumServer
from zkquorum.config.properties import load_properties
from zkquorum.runtime.client_port import max_client_cnxns
from zkquorum.runtime.files import zoo_cfg_properties
from zkquorum.runtime.metrics import MetricsRegistry
from zkquorum.runtime.opsview import (
    ConnectionInfo,
    OpsSnapshot,
    OpsSource,
    Seat,
    dir_size,
    version_dir,
)
from zkquorum.wire.zxid import zxid_hex

ZOOKEEPER_VERSION: Final = "3.8.0"
VERSION_STRING: Final = f"{ZOOKEEPER_VERSION}-zkquorum-{__version__}, built on n/a"
"""``Version#getFullVersion``'s shape: ``<version>-<revision>, built on <date>``."""
NOT_SERVING: Final = "This ZooKeeper instance is not currently serving requests"
DEFAULT_TRACE_MASK: Final = 306
"""``ZooTrace``'s initial text trace mask (``gtmk`` answers 306 on a fresh 3.8)."""

JsonMap = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    names: tuple[str, ...]
    """The primary name first, then the aliases."""
    server_required: bool = True

    @property
    def primary(self) -> str:
        return self.names[0]


COMMANDS: Final[tuple[CommandSpec, ...]] = (
    CommandSpec(("connection_stat_reset", "crst")),
    CommandSpec(("configuration", "conf", "config")),
    CommandSpec(("connections", "cons")),
    CommandSpec(("hash",)),
    CommandSpec(("dirs",)),
    CommandSpec(("dump",)),
    CommandSpec(("environment", "env", "envi"), server_required=False),
    CommandSpec(("get_trace_mask", "gtmk"), server_required=False),
    CommandSpec(("initial_configuration", "icfg")),
    CommandSpec(("is_read_only", "isro")),
    CommandSpec(("last_snapshot", "lsnp")),
    CommandSpec(("leader", "lead")),
    CommandSpec(("monitor", "mntr"), server_required=False),
    CommandSpec(("observer_connection_stat_reset", "orst")),
    CommandSpec(("ruok",)),
    CommandSpec(("set_trace_mask", "stmk"), server_required=False),
    CommandSpec(("server_stats", "srvr")),
    CommandSpec(("stats", "stat")),
    CommandSpec(("stat_reset", "srst")),
    CommandSpec(("observers", "obsr")),
    CommandSpec(("system_properties", "sysp"), server_required=False),
    CommandSpec(("voting_view",)),
    CommandSpec(("watches", "wchc")),
    CommandSpec(("watches_by_path", "wchp")),
    CommandSpec(("watch_summary", "wchs")),
    CommandSpec(("zabstate",), server_required=False),
)
"""``Commands`` of 3.8.0, as registered in its static block."""


class CommandTable:
    """Name or alias -> :class:`CommandSpec` (built once per server, never global)."""

    def __init__(self, commands: tuple[CommandSpec, ...] = COMMANDS) -> None:
        self._by_name = {name: spec for spec in commands for name in spec.names}
        self.primary_names = tuple(sorted(spec.primary for spec in commands))

    def get(self, name: str) -> CommandSpec | None:
        return self._by_name.get(name)


@dataclass
class TraceMask:
    """``ZooTrace``'s text trace mask: per server here (3.8 keeps one per JVM)."""

    value: int = DEFAULT_TRACE_MASK


def _response(
    name: str, data: Mapping[str, Any] | None = None, error: str | None = None
) -> JsonMap:
    """``CommandResponse#toMap``: the data, then ``command`` and ``error`` unless set."""
    out: JsonMap = dict(data or {})
    out.setdefault("command", name)
    out.setdefault("error", error)
    return out


# -- pieces --------------------------------------------------------------------------------


def _seat_name(snap: OpsSnapshot) -> str:
    seat = snap.server.seat
    return seat.value if seat is not None else "unknown"


def _data_dirs(snap: OpsSnapshot) -> tuple[str, str]:
    cfg = snap.server.config
    if cfg is None:
        return "", ""
    return version_dir(cfg.data_dir), version_dir(cfg.data_log_dir or cfg.data_dir)


def configuration(snap: OpsSnapshot) -> JsonMap:
    """``ZooKeeperServerConf#toMap``."""
    cfg = snap.server.config
    data_dir, log_dir = _data_dirs(snap)
    tick = cfg.tick_time if cfg is not None else 0
    client_port = cfg.client_port if cfg is not None and cfg.client_port else 0
    if not client_port and cfg is not None and cfg.me is not None and cfg.me.client_addr:
        client_port = cfg.me.client_addr.port
    standalone = snap.server.seat is Seat.STANDALONE
    return {
        "client_port": client_port,
        "data_dir": data_dir,
        "data_log_dir": log_dir,
        "tick_time": tick,
        "max_client_cnxns": max_client_cnxns(zoo_cfg_properties(cfg)) if cfg else 60,
        "min_session_timeout": cfg.min_session_timeout if cfg is not None else tick * 2,
        "max_session_timeout": cfg.max_session_timeout if cfg is not None else tick * 20,
        "server_id": 0 if standalone else snap.server.my_id,
        "client_port_listen_backlog": -1,
    }


def connection_brief(c: ConnectionInfo) -> JsonMap:
    """``ServerCnxn#getConnectionInfo(true)``: what ``stats`` lists."""
    return {
        "remote_socket_address": c.remote_address,
        "interest_ops": c.interest_ops,
        "outstanding_requests": c.outstanding_requests,
        "packets_received": c.packets_received,
        "packets_sent": c.packets_sent,
    }


def connection_full(c: ConnectionInfo) -> JsonMap:
    """``ServerCnxn#getConnectionInfo(false)``: what ``connections`` lists."""
    out = connection_brief(c)
    if c.session_id is not None:
        out.update(
            session_id=c.session_id,
            last_operation=c.last_operation,
            established=c.established_ms,
            session_timeout=c.session_timeout,
            last_cxid=c.last_cxid,
            last_zxid=c.last_zxid,
            last_response_time=c.last_response_time,
            last_latency=c.last_latency,
            min_latency=c.min_latency,
            avg_latency=c.avg_latency,
            max_latency=c.max_latency,
        )
    return out


def _buffer_stats(sizes: tuple[int, int, int]) -> JsonMap:
    return {"last_buffer_size": sizes[0], "min_buffer_size": sizes[1], "max_buffer_size": sizes[2]}


def _server_stats(snap: OpsSnapshot) -> JsonMap:
    """``srvr``/``server_stats`` (``ServerStats`` as Jackson writes it)."""
    c = snap.clients
    data_dir, log_dir = _data_dirs(snap)
    response = _buffer_stats(
        (c.last_client_response_size, c.min_client_response_size, c.max_client_response_size)
    )
    stats = {
        "packets_sent": c.packets_sent,
        "packets_received": c.packets_received,
        "fsync_threshold_exceed_count": 0,
        "client_response_stats": response,
        "provider_null": False,
        "server_state": _seat_name(snap),
        "outstanding_requests": c.outstanding_requests,
        "min_latency": c.min_latency,
        "avg_latency": float(c.avg_latency),
        "max_latency": c.max_latency,
        "data_dir_size": dir_size(data_dir) if data_dir else 0,
        "log_dir_size": dir_size(log_dir) if log_dir else 0,
        "last_processed_zxid": snap.server.last_zxid,
        "num_alive_client_connections": len(c.connections) + len(c.secure_connections),
        "auth_failed_count": c.auth_failed_count,
        "non_mtlsremote_conn_count": c.non_mtls_remote_conn_count,
        "non_mtlslocal_conn_count": c.non_mtls_local_conn_count,
        "uptime": snap.server.uptime_ms,
    }
    out: JsonMap = {
        "version": VERSION_STRING,
        "read_only": snap.server.seat is Seat.READ_ONLY,
        "server_stats": stats,
        "client_response": dict(response),
    }
    if snap.server.seat is Seat.LEADER:
        out["proposal_stats"] = _buffer_stats(snap.server.proposal_sizes)
    out["node_count"] = snap.server.node_count
    return out


def environment() -> list[tuple[str, str]]:
    """``Environment#list`` with the Python runtime in the ``java.*`` keys."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
    avail = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0
    rss = _rss_bytes()
    mb = 1024 * 1024
    return [
        ("zookeeper.version", VERSION_STRING),
        ("host.name", socket.gethostname()),
        ("java.version", platform.python_version()),
        ("java.vendor", platform.python_implementation()),
        ("java.home", sys.prefix),
        ("java.class.path", os.pathsep.join(sys.path)),
        ("java.library.path", ""),
        ("java.io.tmpdir", tempfile.gettempdir()),
        ("java.compiler", "<NA>"),
        ("os.name", platform.system()),
        ("os.arch", platform.machine()),
        ("os.version", platform.release()),
        ("user.name", user),
        ("user.home", os.path.expanduser("~")),
        ("user.dir", os.getcwd()),
        # A JVM reports its heap here; the nearest figures of a Python process: free and
        # total memory of the machine, and this process's resident size.
        ("os.memory.free", f"{avail * page_size // mb}MB"),
        ("os.memory.max", f"{pages * page_size // mb}MB"),
        ("os.memory.total", f"{rss // mb}MB"),
    ]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def system_properties(snap: OpsSnapshot) -> dict[str, str]:
    """The Python runtime's properties and ``zookeeper.<key>`` per zoo.cfg key, sorted."""
    props = {k: v for k, v in environment() if not k.startswith("zookeeper.")}
    props["python.executable"] = sys.executable
    props["zkquorum.version"] = __version__
    props["process.pid"] = str(os.getpid())
    text = snap.server.config_text
    if text is not None:
        for entry in load_properties(text, None):
            props[f"zookeeper.{entry.key}"] = entry.value.strip()
    return dict(sorted(props.items()))


_LONG_RE: Final = re.compile(r"^[+-]?[0-9]+$")
_SNAPSHOT_RE: Final = re.compile(r"^snapshot\.([0-9a-fA-F]+)$")


def last_snapshot(snap: OpsSnapshot) -> tuple[int, int] | None:
    """(zxid, mtime in s) of the newest ``snapshot.<zxid>`` in the data directory."""
    if snap.server.last_snapshot is not None:
        return snap.server.last_snapshot
    data_dir, _ = _data_dirs(snap)
    if not data_dir:
        return None
    best: tuple[int, int] | None = None
    try:
        entries = list(os.scandir(data_dir))
    except OSError:
        return None
    for entry in entries:
        m = _SNAPSHOT_RE.match(entry.name)
        if m is None:
            continue
        zxid = int(m.group(1), 16)
        if best is None or zxid > best[0]:
            try:
                best = (zxid, int(entry.stat().st_mtime))
            except OSError:
                continue
    return best


def _addresses(addrs: tuple[HostPort, ...]) -> JsonMap:
    """A ``MultipleAddresses`` as Jackson writes its getters (reachability not probed:
    every address counts as reachable, as 3.8 falls back to when none answers)."""
    shown = [f"{a.java_host()}:{a.port}" for a in addrs]
    return {
        "empty": not addrs,
        "all_addresses": shown,
        "all_reachable_addresses": shown,
        "one": shown[0] if shown else None,
        "reachable_address": shown[0] if shown else None,
        "wildcard_addresses": [f"0.0.0.0:{a.port}" for a in addrs],
        "all_ports": [a.port for a in addrs],
        "all_host_strings": [a.java_host() for a in addrs],
        "all_reachable_addresses_or_all": shown,
        "reachable_or_one": shown[0] if shown else None,
    }


def _client_address(snap: OpsSnapshot, member: QuorumServer | None) -> str:
    cfg = snap.server.config
    if member is None or cfg is None:
        return ""
    if member.client_addr is not None:
        return f"{member.client_addr.java_host()}:{member.client_addr.port}"
    if member.sid == snap.server.my_id and cfg.client_port:
        host = cfg.client_port_address or "0.0.0.0"
        return f"{HostPort(host, cfg.client_port)}"
    return ""


def _voting_view(snap: OpsSnapshot) -> JsonMap:
    cfg = snap.server.config
    if snap.server.seat is Seat.STANDALONE or cfg is None:
        return {}
    out: JsonMap = {}
    for sid, member in sorted(cfg.voting_members.items()):
        out[str(sid)] = {
            "server_addresses": [str(a) for a in member.quorum_addrs],
            "election_addresses": [str(a) for a in member.election_addrs],
            "client_address": _client_address(snap, member),
            "learner_type": "participant" if member.role is LearnerType.PARTICIPANT else "observer",
        }
    return out


def _zabstate(snap: OpsSnapshot) -> JsonMap:
    server = snap.server
    cfg = server.config
    if not server.serving or server.seat is Seat.STANDALONE or cfg is None or cfg.me is None:
        return {"voting": False, "zabstate": ""}
    me = cfg.me
    zab = server.peer_state.rpartition(" - ")[2]
    return {
        "myid": server.my_id,
        "is_leader": server.seat is Seat.LEADER,
        "quorum_address": _addresses(me.quorum_addrs),
        "election_address": _addresses(me.election_addrs),
        "client_address": _client_address(snap, me),
        "voting": me.sid in cfg.voting_members,
        "last_zxid": f"0x{zxid_hex(server.last_zxid)}",
        "zab_epoch": server.last_zxid >> 32,
        "zab_counter": server.last_zxid & 0xFFFFFFFF,
        "zabstate": zab,
    }


def _observers(snap: OpsSnapshot) -> JsonMap:
    if snap.server.seat is not Seat.LEADER:
        return {"synced_observers": 0, "observers": []}
    observers = [x for x in snap.server.learners if x.observer]
    return {
        "synced_observers": sum(1 for x in observers if x.synced),
        "observers": [
            {
                "remote_socket_address": x.remote_address,
                "sid": x.sid,
                "established": x.established_ms,
                "queued_packets": 0,
                "queued_packets_size": 0,
                "packets_received": 0,
                "packets_sent": 0,
                "requests": 0,
                "last_zxid": -1,
            }
            for x in observers
        ],
    }


def monitor_values(snap: OpsSnapshot, registry: MetricsRegistry) -> list[tuple[str, Any]]:
    """``dumpMonitorValues`` then the metrics' dump: ``mntr``'s lines without ``zk_``."""
    rows: list[tuple[str, Any]] = [
        ("version", VERSION_STRING),
        ("server_state", _seat_name(snap)),
    ]
    if snap.server.seat is not Seat.STANDALONE:
        rows.append(("peer_state", snap.server.peer_state))
    if snap.server.seat is Seat.OBSERVER:
        rows.append(("observer_master_id", snap.server.observer_master_id or snap.server.leader_id))
    rows.extend(registry.dump())
    return rows


# -- the commands ---------------------------------------------------------------------------


@dataclass
class CommandContext:
    """What commands read and change: the source, the metrics and the trace mask."""

    source: OpsSource
    registry: MetricsRegistry
    trace_mask: TraceMask


Handler = Callable[[CommandContext, OpsSnapshot, Mapping[str, str]], JsonMap]


def _set_trace_mask(ctx: CommandContext, _s: OpsSnapshot, kwargs: Mapping[str, str]) -> JsonMap:
    text = kwargs.get("traceMask")
    if text is None:
        return {"error": "setTraceMask requires long traceMask argument"}
    # Long#parseLong: an optional sign and decimal digits, within 64 bits.
    mask = int(text) if _LONG_RE.match(text) else None
    if mask is None or not -(1 << 63) <= mask < (1 << 63):
        return {"error": f"setTraceMask requires long traceMask argument, got {text}"}
    ctx.trace_mask.value = mask
    return {"tracemask": mask}


def _reset_server(ctx: CommandContext, _s: OpsSnapshot, _k: Mapping[str, str]) -> JsonMap:
    ctx.source.reset_server_stats()
    return {}


def _reset_connections(ctx: CommandContext, _s: OpsSnapshot, _k: Mapping[str, str]) -> JsonMap:
    ctx.source.reset_connection_stats()
    return {}


def _leader(_c: CommandContext, snap: OpsSnapshot, _k: Mapping[str, str]) -> JsonMap:
    if snap.server.seat is Seat.STANDALONE:
        return {"error": "server is not initialized"}
    return {
        "is_leader": snap.server.seat is Seat.LEADER,
        "leader_id": snap.server.leader_id if snap.server.leader_id is not None else -1,
        "leader_ip": snap.server.leader_host or "",
    }


def _stats(_c: CommandContext, snap: OpsSnapshot, _k: Mapping[str, str]) -> JsonMap:
    out = _server_stats(snap)
    out["connections"] = [connection_brief(c) for c in snap.clients.connections]
    out["secure_connections"] = [connection_brief(c) for c in snap.clients.secure_connections]
    return out


def _dirs(_c: CommandContext, snap: OpsSnapshot, _k: Mapping[str, str]) -> JsonMap:
    data_dir, log_dir = _data_dirs(snap)
    return {
        "datadir_size": dir_size(data_dir) if data_dir else 0,
        "logdir_size": dir_size(log_dir) if log_dir else 0,
    }


def _last_snapshot(_c: CommandContext, snap: OpsSnapshot, _k: Mapping[str, str]) -> JsonMap:
    info = last_snapshot(snap)
    if info is None:
        return {"zxid": zxid_hex(-1), "timestamp": -1}
    return {"zxid": zxid_hex(info[0]), "timestamp": info[1]}


def _watch_summary(_c: CommandContext, snap: OpsSnapshot, _k: Mapping[str, str]) -> JsonMap:
    watches = snap.clients.watches
    return {
        "num_connections": len(watches),
        "num_paths": len(snap.clients.watches_by_path()),
        "num_total_watches": sum(len(p) for p in watches.values()),
    }


def _initial_configuration(_c: CommandContext, snap: OpsSnapshot, _k: Mapping[str, str]) -> JsonMap:
    # 3.8 keeps the config text only on a standalone ZooKeeperServer (null on a peer).
    text = snap.server.config_text if snap.server.seat is Seat.STANDALONE else None
    return {"initial_configuration": text}


_HANDLERS: Final[Mapping[str, Handler]] = MappingProxyType(
    {
        "connection_stat_reset": _reset_connections,
        "configuration": lambda _c, s, _k: configuration(s),
        "connections": lambda _c, s, _k: {
            "connections": [connection_full(c) for c in s.clients.connections],
            "secure_connections": [connection_full(c) for c in s.clients.secure_connections],
        },
        "hash": lambda _c, _s, _k: {"digests": []},
        "dirs": _dirs,
        "dump": lambda _c, s, _k: {
            "expiry_time_to_session_ids": {
                str(t): list(ids) for t, ids in sorted(s.clients.session_expiry.items())
            },
            "session_id_to_ephemeral_paths": {
                str(sid): list(paths) for sid, paths in s.clients.ephemerals.items()
            },
        },
        "environment": lambda _c, _s, _k: dict(environment()),
        "get_trace_mask": lambda c, _s, _k: {"tracemask": c.trace_mask.value},
        "initial_configuration": _initial_configuration,
        "is_read_only": lambda _c, s, _k: {"read_only": s.server.seat is Seat.READ_ONLY},
        "last_snapshot": _last_snapshot,
        "leader": _leader,
        "monitor": lambda c, s, _k: dict(monitor_values(s, c.registry)),
        "observer_connection_stat_reset": lambda _c, _s, _k: {},
        "ruok": lambda _c, _s, _k: {},
        "set_trace_mask": _set_trace_mask,
        "server_stats": lambda _c, s, _k: _server_stats(s),
        "stats": _stats,
        "stat_reset": _reset_server,
        "observers": lambda _c, s, _k: _observers(s),
        "system_properties": lambda _c, s, _k: dict(system_properties(s)),
        "voting_view": lambda _c, s, _k: {"current_config": _voting_view(s)},
        "watches": lambda _c, s, _k: {
            "session_id_to_watched_paths": {
                str(sid): list(paths) for sid, paths in s.clients.watches.items()
            }
        },
        "watches_by_path": lambda _c, s, _k: {
            "path_to_session_ids": s.clients.watches_by_path(),
        },
        "watch_summary": _watch_summary,
        "zabstate": lambda _c, s, _k: _zabstate(s),
    }
)


def run(
    table: CommandTable,
    name: str,
    ctx: CommandContext,
    kwargs: Mapping[str, str] | None = None,
    snapshot: OpsSnapshot | None = None,
) -> JsonMap:
    """Run command ``name`` (``Commands#runCommand``); the JSON object to answer."""
    spec = table.get(name)
    if spec is None:
        return _response(name, error=f"Unknown command: {name}")
    snap = snapshot if snapshot is not None else ctx.source.snapshot()
    serving = snap.server.serving
    if not serving and (spec.server_required or spec.primary == "monitor"):
        return _response(name, error=NOT_SERVING)
    data = _HANDLERS[spec.primary](ctx, snap, kwargs or {})
    return _response(spec.primary, data)
