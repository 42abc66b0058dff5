"""``zkquorum decode CAPTURE.pcap``: print the election, quorum and client messages of a capture.

One line per message in time order: time (ms from the first connection), connection,
port, direction, sids where known, message type and key fields.  ``--json`` prints one
JSON object per line instead: first one ``"kind": "connection"`` object per TCP
connection, then the messages with ``port``, ``kind`` (``initial``, ``notification``,
``packet``, ``snapshot``, ``snapshot_signature``; on the client port ``connect``,
``connect_response``, ``request``, ``reply``, ``four_letter_word``; ``truncated``,
``error``), ``type`` (packet type name) and the decoded fields (see
:mod:`zkquorum.wire.capture`).  A damaged
or truncated stream is reported as an ``error`` / ``truncated`` line and decoding goes
on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from zkquorum.cli.main import CliError
from zkquorum.wire.capture import CaptureEvent, CaptureReport, ConnectionInfo, decode_capture
from zkquorum.wire.pcap import PcapError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "decode",
        help="decode election and quorum traffic in a libpcap capture",
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
    )
    p.add_argument("capture", metavar="CAPTURE.pcap", help="a classic libpcap file (tcpdump -w)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--election-port",
        type=_port,
        action="append",
        default=[],
        metavar="P",
        help="treat connections to port P as election connections (repeatable)",
    )
    p.add_argument(
        "--quorum-port",
        type=_port,
        action="append",
        default=[],
        metavar="P",
        help="treat connections to port P as quorum connections (repeatable)",
    )
    p.add_argument(
        "--client-port",
        type=_port,
        action="append",
        default=[],
        metavar="P",
        help="treat connections to port P as client connections (repeatable)",
    )
    p.set_defaults(func=run)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        with open(args.capture, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise CliError(f"cannot read {args.capture}: {exc.strerror or exc}") from None
    try:
        report = decode_capture(
            data,
            election_ports=args.election_port,
            quorum_ports=args.quorum_port,
            client_ports=args.client_port,
        )
    except PcapError as exc:
        raise CliError(f"{args.capture}: {exc}") from None
    try:
        _print(report, args)
    except BrokenPipeError:  # e.g. piped into head: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep the interpreter quiet
        return 0
    return 0


def _print(report: CaptureReport, args: argparse.Namespace) -> None:
    out = sys.stdout
    if args.json:
        for c in report.connections:
            out.write(json.dumps(connection_json(c), ensure_ascii=False) + "\n")
        for e in report.events:
            out.write(json.dumps(event_json(e), ensure_ascii=False) + "\n")
    else:
        out.write(
            f"# {args.capture}: {len(report.connections)} TCP connections, "
            f"{len(report.events)} messages; times in ms from the first connection\n"
        )
        for c in report.connections:
            out.write(connection_line(c) + "\n")
        for e in report.events:
            out.write(event_line(e) + "\n")
    if report.truncated_file:
        print("zkquorum: the capture file ends inside a record", file=sys.stderr)


def connection_json(c: ConnectionInfo) -> dict[str, Any]:
    return {
        "kind": "connection",
        "conn": c.index,
        "port": c.port,
        "initiator": c.initiator,
        "acceptor": c.acceptor,
        "t_ms": c.start_ms,
        "refused": c.refused,
        "bytes": [c.bytes_to_acceptor, c.bytes_to_initiator],
        "initiator_sid": c.initiator_sid,
        "acceptor_sid": c.acceptor_sid,
    }


def event_json(e: CaptureEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "t_ms": e.t_ms,
        "conn": e.conn,
        "port": e.port,
        "direction": e.direction,
        "src": e.src,
        "dst": e.dst,
        "from_sid": e.from_sid,
        "to_sid": e.to_sid,
        "kind": e.kind,
        "stream_offset": e.stream_offset,
        "len": e.length,
    }
    out.update(e.fields)
    return out


def connection_line(c: ConnectionInfo) -> str:
    sids = ""
    if c.initiator_sid is not None or c.acceptor_sid is not None:
        sids = f" sid {_sid(c.initiator_sid)}->{_sid(c.acceptor_sid)}"
    state = "REFUSED" if c.refused else f"bytes {c.bytes_to_acceptor}/{c.bytes_to_initiator}"
    return (
        f"conn#{c.index:<3} {c.port or 'other':<8} {c.initiator} -> {c.acceptor}{sids}"
        f"  at {c.start_ms:.1f} ms  {state}"
    )


def _sid(sid: int | None) -> str:
    return "?" if sid is None else str(sid)


def event_line(e: CaptureEvent) -> str:
    sids = f"sid {_sid(e.from_sid)}->{_sid(e.to_sid)}"
    return (
        f"{e.t_ms:10.3f} ms  conn#{e.conn:<3} {e.port:<8} {e.direction:<19} {sids:<10} {summary(e)}"
    )


def summary(e: CaptureEvent) -> str:
    f = e.fields
    if e.kind == "initial":
        version = {-65536: "V1", -65535: "V2", None: "old-style"}.get(
            f["protocol_version"], str(f["protocol_version"])
        )
        return f"INITIAL {version} sid={f['sid']} addresses={'|'.join(f['addresses'])}"
    if e.kind == "notification":
        if "dropped" in f:
            return f"NOTIFICATION dropped: {f['dropped']}"
        cfg = f["config"]
        cfg_text = "" if cfg is None else f" config={len(cfg.encode('utf-8', 'surrogateescape'))}B"
        return (
            f"NOTIFICATION {f['state']:<9} leader={f['leader']} zxid={f['zxid']} "
            f"round={hex(f['election_epoch'])} peerEpoch={hex(f['peer_epoch'])} "
            f"version={f['version']}{cfg_text}"
        )
    if e.kind == "packet":
        text = f"{f['type']:<12} zxid={f['zxid']} len={f['data_len']}"
        return text + _packet_detail(f)
    if e.kind == "snapshot":
        return (
            f"SNAPSHOT sessions={f['session_count']} nodes={f['node_count']} "
            f"acls={f['acl_count']} ({e.length} bytes)"
        )
    if e.kind == "snapshot_signature":
        return f"SIGNATURE {f['signature']!r}"
    if e.kind in _CLIENT_KINDS:
        return _client_summary(e.kind, f)
    if e.kind == "truncated":
        return f"TRUNCATED: the stream ends inside a message ({f['bytes']} bytes)"
    return f"ERROR at stream offset {e.stream_offset}: {f.get('reason')}"


def _packet_detail(f: dict[str, Any]) -> str:
    if "payload_error" in f:
        return f" (bad payload: {f['payload_error']})"
    if "learner_info" in f:
        li = f["learner_info"]
        return (
            f" sid={li['server_id']} protocol={hex(li['protocol_version'])}"
            f" configVersion={hex(li['config_version'])}"
        )
    if "protocol_version" in f:
        return f" protocol={hex(f['protocol_version'])}"
    if "current_epoch" in f:
        return f" currentEpoch={f['current_epoch']}"
    if "sessions" in f:
        return f" sessions={len(f['sessions'])}"
    if "txn" in f:
        t = f["txn"]
        path = f" path={t['path']}" if "path" in t else ""
        return f" txn={t['type']} cxid={t['cxid']}{path}"
    if "request" in f:
        r = f["request"]
        return f" session={r['session_id']} cxid={r['cxid']} op={r['type']}"
    if "designated_leader" in f:
        return f" designatedLeader={f['designated_leader']}"
    if "session_id" in f:
        extra = f"valid={f['valid']}" if "valid" in f else f"timeout={f.get('timeout')}"
        return f" session={f['session_id']} {extra}"
    return ""


_CLIENT_KINDS = frozenset({"connect", "connect_response", "request", "reply", "four_letter_word"})


def _client_summary(kind: str, f: dict[str, Any]) -> str:
    if kind == "four_letter_word":
        return f"4LW {f['word']}"
    if kind == "connect":
        return (
            f"CONNECT session={f['session_id']} lastZxidSeen={f['last_zxid_seen']} "
            f"timeout={f['timeout']} readOnly={f['read_only']}"
        )
    if kind == "connect_response":
        return f"CONNECTED session={f['session_id']} timeout={f['timeout']}"
    head = f"{kind.upper():<7} xid={f['xid']:<4} {f['op']}"
    if kind == "request":
        body = f.get("request")
        path = f" {body['path']}" if isinstance(body, dict) and "path" in body else ""
        bad = f" (malformed: {f['malformed']})" if "malformed" in f else ""
        return head + path + bad
    response = f.get("response")
    path = f" {response['path']}" if isinstance(response, dict) and "path" in response else ""
    return f"{head} zxid={f['zxid']} err={f['err']}{path}"
