"""Every four-letter word of ZooKeeper 3.8, rendered from one :class:`OpsSnapshot`.

Facts: ``docs/spec/quorum-config-and-zab.md`` B5, ``docs/spec/zk-server.md`` §5.3,
``server/command/*Command.java`` of 3.8.0, and Debian's 3.8.0 answers per seat in
``tests/testdata/adminserver/<seat>.4lw.json``.

* Known words (``FourLetterCommands``): conf cons crst dirs dump envi gtmk hash isro mntr
  ruok srst srvr stat stmk wchc wchp wchs.  An unknown word closes the connection without
  an answer (``None`` here).
* Whitelist (``FourLetterCommands#isEnabled``): the words of ``4lw.commands.whitelist``,
  all of them with ``*``; ``srvr`` always; ``isro`` too when read-only mode is on.  A known
  word that is not allowed answers ``<word> is not executed because it is not in the
  whitelist.`` and a newline, whatever the server's state.
* Not serving: most words answer ``This ZooKeeper instance is not currently serving
  requests`` with a newline (``hash``: without); ``ruok`` still answers ``imok``, ``envi``
  and ``gtmk`` answer, ``isro`` answers ``null``.
* ``stmk`` carries an 8-byte big-endian long after the word (the new mask); it answers
  the mask in decimal.  Without those bytes 3.8 closes the connection without an answer.

:func:`render` is what the client port's four-letter server calls (see the report for the
one-line hook in ``runtime/admin.py``).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from typing import Final

from zkquorum.config.model import LearnerType
from zkquorum.runtime import commands
from zkquorum.runtime.opsview import ConnectionInfo, OpsSnapshot, Seat, dir_size
from zkquorum.wire.client import FOUR_LETTER_WORDS, STMK_ARGUMENT_BYTES
from zkquorum.wire.zxid import zxid_hex

KNOWN_WORDS: Final = FOUR_LETTER_WORDS
NOT_SERVING: Final = commands.NOT_SERVING + "\n"


def whitelist_allows(word: str, whitelist: frozenset[str], *, read_only_mode: bool = False) -> bool:
    """``FourLetterCommands#isEnabled``."""
    if word == "srvr" or "*" in whitelist or word in whitelist:
        return True
    return read_only_mode and word == "isro"


def not_in_whitelist(word: str) -> str:
    """``NIOServerCnxn#checkFourLetterWord``'s refusal."""
    return f"{word} is not executed because it is not in the whitelist.\n"


def _java_date(epoch_ms: int) -> str:
    """``java.util.Date#toString`` (``EEE MMM dd HH:mm:ss zzz yyyy``, local time)."""
    return time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(epoch_ms / 1000.0))


def _connection_line(c: ConnectionInfo, *, brief: bool) -> str:
    """``ServerCnxn#dumpConnectionInfo``."""
    line = (
        f" /{c.remote_address}[{c.interest_ops}](queued={c.outstanding_requests},"
        f"recved={c.packets_received},sent={c.packets_sent}"
    )
    if not brief and c.session_id is not None:
        line += (
            f",sid=0x{zxid_hex(c.session_id)},lop={c.last_operation},est={c.established_ms},"
            f"to={c.session_timeout},lzxid=0x{zxid_hex(c.last_zxid)},"
            f"lresp={c.last_response_time},llat={c.last_latency},minlat={c.min_latency},"
            f"avglat={c.avg_latency},maxlat={c.max_latency}"
        )
    return line + ")\n"


def _srvr(snap: OpsSnapshot, own: Sequence[ConnectionInfo], *, stat: bool) -> str:
    """``StatCommand#commandRun`` (``ServerStats#toString``)."""
    c = snap.clients
    seat = snap.server.seat
    conns = (*c.connections, *c.secure_connections, *own)
    lines = [f"Zookeeper version: {commands.VERSION_STRING}"]
    if seat is Seat.READ_ONLY:
        lines.append("READ-ONLY mode; serving only read-only clients")
    text = "\n".join(lines) + "\n"
    if stat:
        text += "Clients:\n" + "".join(_connection_line(x, brief=True) for x in conns) + "\n"
    rows = [
        f"Latency min/avg/max: {c.min_latency}/{float(c.avg_latency)}/{c.max_latency}",
        f"Received: {c.packets_received}",
        f"Sent: {c.packets_sent}",
        f"Connections: {len(conns)}",
        f"Outstanding: {c.outstanding_requests}",
        f"Zxid: 0x{zxid_hex(snap.server.last_zxid)}",
        f"Mode: {seat.value if seat is not None else 'unknown'}",
        f"Node count: {snap.server.node_count}",
    ]
    if seat is Seat.LEADER:
        last, low, high = snap.server.proposal_sizes
        rows.append(f"Proposal sizes last/min/max: {last}/{low}/{high}")
    return text + "\n".join(rows) + "\n"


def _conf(snap: OpsSnapshot) -> str:
    """``ConfCommand``: ``ZooKeeperServerConf``, then a quorum peer's own keys."""
    conf = commands.configuration(snap)
    cfg = snap.server.config
    lines = [
        f"clientPort={conf['client_port']}",
        f"secureClientPort={(cfg.secure_client_port if cfg is not None else None) or -1}",
        f"dataDir={conf['data_dir']}",
        f"dataDirSize={dir_size(conf['data_dir']) if conf['data_dir'] else 0}",
        f"dataLogDir={conf['data_log_dir']}",
        f"dataLogSize={dir_size(conf['data_log_dir']) if conf['data_log_dir'] else 0}",
        f"tickTime={conf['tick_time']}",
        f"maxClientCnxns={conf['max_client_cnxns']}",
        f"minSessionTimeout={conf['min_session_timeout']}",
        f"maxSessionTimeout={conf['max_session_timeout']}",
        f"clientPortListenBacklog={conf['client_port_listen_backlog']}",
        f"serverId={conf['server_id']}",
    ]
    if snap.server.seat is Seat.STANDALONE or cfg is None or cfg.verifier is None:
        return "\n".join(lines) + "\n"
    lines += [
        f"initLimit={cfg.init_limit}",
        f"syncLimit={cfg.sync_limit}",
        f"electionAlg={cfg.election_alg}",
    ]
    me = cfg.me
    if me is not None:
        lines += [
            f"electionPort={me.election_addrs[0].port}",
            f"quorumPort={me.quorum_addrs[0].port}",
        ]
    lines.append(f"peerType={0 if cfg.learner_type is LearnerType.PARTICIPANT else 1}")
    lines.append("membership: ")
    lines.append(cfg.verifier.to_zk_string())
    return "\n".join(lines)


def _dump(snap: OpsSnapshot, own: Sequence[ConnectionInfo], now_ms: int) -> str:
    """``DumpCommand``: the session tracker, the ephemerals, the connections."""
    c = snap.clients
    out = ["SessionTracker dump:\n"]
    if snap.server.seat in (Seat.LEADER, Seat.STANDALONE):
        sessions = sum(len(ids) for ids in c.session_expiry.values())
        out.append(f"Session Sets ({len(c.session_expiry)})/({sessions}):\n")
        for expiry, ids in sorted(c.session_expiry.items()):
            out.append(f"{len(ids)} expire at {_java_date(expiry)}:\n")
            out.extend(f"\t0x{zxid_hex(sid)}\n" for sid in ids)
    else:
        out.append(f"Global Sessions({len(c.session_timeouts)}):\n")
        out.extend(
            f"0x{zxid_hex(sid)}\t{timeout}ms\n"
            for sid, timeout in sorted(c.session_timeouts.items())
        )
    out.append("ephemeral nodes dump:\n")
    out.append(f"Sessions with Ephemerals ({len(c.ephemerals)}):\n")
    for sid, paths in c.ephemerals.items():
        out.append(f"0x{zxid_hex(sid)}:\n")
        out.extend(f"\t{p}\n" for p in paths)
    conns = (*c.connections, *c.secure_connections, *own)
    out.append("Connections dump:\n")
    # The client port's expiry queue is not modelled: every connection in one set.
    out.append(f"Connections Sets ({1 if conns else 0})/({len(conns)}):\n")
    if conns:
        out.append(f"{len(conns)} expire at {_java_date(now_ms)}:\n")
        out.extend(
            f"\tip: /{x.remote_address} sessionId: 0x{zxid_hex(x.session_id or 0)}\n" for x in conns
        )
    return "".join(out)


def _wchc(snap: OpsSnapshot) -> str:
    out = []
    for sid, paths in snap.clients.watches.items():
        out.append(f"0x{zxid_hex(sid)}\n")
        out.extend(f"\t{p}\n" for p in paths)
    return "".join(out) + "\n"


def _wchp(snap: OpsSnapshot) -> str:
    out = []
    for path, sids in snap.clients.watches_by_path().items():
        out.append(f"{path}\n")
        out.extend(f"\t0x{zxid_hex(sid)}\n" for sid in sids)
    return "".join(out) + "\n"


def _wchs(snap: OpsSnapshot) -> str:
    watches = snap.clients.watches
    total = sum(len(p) for p in watches.values())
    paths = len(snap.clients.watches_by_path())
    return f"{len(watches)} connections watching {paths} paths\nTotal watches:{total}\n"


def _mntr(snap: OpsSnapshot, ctx: commands.CommandContext) -> str:
    return "".join(f"zk_{k}\t{v}\n" for k, v in commands.monitor_values(snap, ctx.registry))


def render(
    word: str,
    ctx: commands.CommandContext,
    whitelist: frozenset[str],
    *,
    argument: bytes | None = None,
    own: Sequence[ConnectionInfo] = (),
    read_only_mode: bool = False,
    snapshot: OpsSnapshot | None = None,
    now_ms: int | None = None,
) -> str | None:
    """The answer to ``word``; ``None``: close without an answer.

    ``argument`` is what followed ``stmk`` (:data:`STMK_ARGUMENT_BYTES` bytes); ``own``
    the four-letter connections the caller holds open (listed by ``cons``, ``stat`` and
    ``dump`` as 3.8 lists them: they are client-port connections too).
    """
    if word not in KNOWN_WORDS:
        return None
    if not whitelist_allows(word, whitelist, read_only_mode=read_only_mode):
        return not_in_whitelist(word)
    if word == "ruok":
        return "imok"
    if word == "envi":
        return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in commands.environment())
    if word == "gtmk":
        return str(ctx.trace_mask.value)
    if word == "stmk":
        if argument is None or len(argument) != STMK_ARGUMENT_BYTES:
            return None
        ctx.trace_mask.value = struct.unpack(">q", argument)[0]
        return str(ctx.trace_mask.value)
    snap = snapshot if snapshot is not None else ctx.source.snapshot()
    if word == "isro":
        if not snap.server.serving:
            return "null"
        return "ro" if snap.server.seat is Seat.READ_ONLY else "rw"
    if not snap.server.serving:
        return commands.NOT_SERVING if word == "hash" else NOT_SERVING
    if word in ("srvr", "stat"):
        return _srvr(snap, own, stat=word == "stat")
    if word == "mntr":
        return _mntr(snap, ctx)
    if word == "conf":
        return _conf(snap)
    if word == "cons":
        conns = (*snap.clients.connections, *snap.clients.secure_connections, *own)
        return "".join(_connection_line(c, brief=False) for c in conns) + "\n"
    if word == "crst":
        ctx.source.reset_connection_stats()
        return "Connection stats reset.\n"
    if word == "srst":
        ctx.source.reset_server_stats()
        return "Server stats reset.\n"
    if word == "dirs":
        conf = commands.configuration(snap)
        data = dir_size(conf["data_dir"]) if conf["data_dir"] else 0
        logs = dir_size(conf["data_log_dir"]) if conf["data_log_dir"] else 0
        return f"datadir_size: {data}\nlogdir_size: {logs}\n"
    if word == "dump":
        return _dump(snap, own, now_ms if now_ms is not None else int(time.time() * 1000))
    if word == "wchc":
        return _wchc(snap)
    if word == "wchp":
        return _wchp(snap)
    if word == "wchs":
        return _wchs(snap)
    # hash: the digest log (3.8 keeps one only with zookeeper.digest.enabled and a
    # digest-producing tree; zkquorum's tree keeps none yet): empty.
    return ""
