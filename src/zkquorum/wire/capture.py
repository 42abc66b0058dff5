"""Decode a whole capture: classify TCP connections, decode both directions, name sids.

Pure (bytes in, events out); ``zkquorum decode`` formats the events.  Each event is a
:class:`CaptureEvent` whose ``fields`` are JSON-ready, under the spec's names
(``protocol_version``, ``sid``, ``addresses``, ``state``, ``leader``, ``zxid``,
``election_epoch``, ``peer_epoch``, ``version``, ``config``, ...).  Zxids are hex strings
(``"0x100000000"``, as ZooKeeper logs them); other numbers are JSON numbers.

Connections are recognised by port when told (``election_ports`` / ``quorum_ports`` /
``client_ports``), else by the connecting side's first bytes (an initial message V1/V2 or
old style; a FOLLOWERINFO / OBSERVERINFO packet; a ConnectRequest or a four-letter word),
else by an acceptor port already recognised.  On a client connection the replies are
paired with the requests by xid, as a client does (:mod:`zkquorum.wire.client`).  Sids
come from initial messages, LearnerInfo, and the ``server.N=`` lines of config texts
seen in notifications and NEWLEADER.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
import itertools
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from zkquorum.wire.client import (
    FOUR_LETTER_WORDS,
    ClientReply,
    ClientRequest,
    FourLetterWord,
    MalformedRequest,
    ReplyStreamDecoder,
    RequestStreamDecoder,
)
from zkquorum.wire.client_records import (
    ConnectRequest,
    ConnectResponse,
    ErrorCode,
    Op,
    Stat,
    is_null,
)
from zkquorum.wire.election import (
    PROTOCOL_VERSION_V1,
    PROTOCOL_VERSION_V2,
    DroppedNotification,
    ElectionConnectionDecoder,
    InitialMessage,
    Notification,
)
from zkquorum.wire.errors import ProtocolError
from zkquorum.wire.pcap import (
    Chunk,
    Direction,
    Endpoint,
    TcpConnection,
    parse_pcap,
    reassemble,
    tcp_segments,
)
from zkquorum.wire.quorum import (
    PacketType,
    QuorumPacket,
    QuorumStreamDecoder,
    decode_config_payload,
    decode_inform_and_activate,
    decode_int_payload,
    decode_learner_info,
    decode_long_payload,
    decode_ping_sessions,
    decode_proposal,
    decode_request,
    decode_revalidate_reply,
    decode_revalidate_request,
    packet_type_name,
)
from zkquorum.wire.reader import CLOSED, NEED_DATA
from zkquorum.wire.snapshot import Snapshot, SnapshotSignature
from zkquorum.wire.txn import (
    CloseSessionTxn,
    CreateSessionTxn,
    ErrorTxn,
    MultiTxn,
    RawRecord,
    Txn,
    TxnRecord,
    op_name,
)
from zkquorum.wire.zxid import zxid_hex

ELECTION = "election"
QUORUM = "quorum"
CLIENT = "client"

_WORD_LENGTHS = frozenset(int.from_bytes(w.encode("ascii"), "big") for w in FOUR_LETTER_WORDS)

JsonValue = Any


def hexz(value: int) -> str:
    return "0x" + zxid_hex(value)


@dataclass(slots=True)
class CaptureEvent:
    t_ms: float
    conn: int
    port: str
    direction: str
    src: str
    dst: str
    kind: str
    stream_offset: int
    length: int
    fields: dict[str, JsonValue] = field(default_factory=dict)
    from_sid: int | None = None
    to_sid: int | None = None
    from_initiator: bool = True


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    index: int
    port: str | None
    initiator: str
    acceptor: str
    start_ms: float
    refused: bool
    bytes_to_acceptor: int
    bytes_to_initiator: int
    initiator_sid: int | None
    acceptor_sid: int | None


@dataclass(frozen=True, slots=True)
class CaptureReport:
    connections: tuple[ConnectionInfo, ...]
    events: tuple[CaptureEvent, ...]
    truncated_file: bool


def _ep(e: Endpoint) -> str:
    host, port = e
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _classify(first: bytes) -> str | None:
    if len(first) >= 8 and first[:6] == b"\xff" * 6:
        version = int.from_bytes(first[:8], "big", signed=True)
        if version in (PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2):
            return ELECTION
    if len(first) >= 4 and int.from_bytes(first[:4], "big") in (11, 16):
        return QUORUM
    if len(first) >= 4 and int.from_bytes(first[:4], "big") in _WORD_LENGTHS:
        return CLIENT
    if len(first) >= 8 and int.from_bytes(first[:4], "big") in (44, 45) and not any(first[4:8]):
        return CLIENT  # a ConnectRequest (protocolVersion 0), with or without readOnly
    if len(first) >= 12:
        sid = int.from_bytes(first[:8], "big", signed=True)
        frame = int.from_bytes(first[8:12], "big", signed=True)
        if 0 <= sid < 1 << 40 and 28 <= frame <= 512 * 1024:
            return ELECTION  # old-style initial message followed by a frame
    return None


_SERVER_LINE = re.compile(r"^server\.(\d+)=([^;\n]*)", re.MULTILINE)


def _learn_config(text: str, election: dict[Endpoint, int], quorum: dict[Endpoint, int]) -> None:
    for m in _SERVER_LINE.finditer(text):
        sid = int(m.group(1))
        for addr in m.group(2).split("|"):
            host, rest = addr, ""
            if addr.startswith("["):
                end = addr.find("]")
                host, rest = addr[1:end], addr[end + 2 :]
            else:
                host, _, rest = addr.partition(":")
            parts = rest.split(":")
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                quorum.setdefault((host, int(parts[0])), sid)
                election.setdefault((host, int(parts[1])), sid)


# -- field extraction --------------------------------------------------------------------


def _acl_json(acl: Any) -> list[dict[str, JsonValue]] | None:
    if acl is None:
        return None
    return [{"perms": a.perms, "scheme": a.id.scheme, "id": a.id.id} for a in acl]


def _data_json(data: bytes | None) -> JsonValue:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": data.hex()}


def _record_json(op: int, record: TxnRecord | None) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {"type": op_name(op)}
    if record is None:
        return out
    if isinstance(record, RawRecord):
        out["raw"] = record.data.hex()
    elif isinstance(record, MultiTxn):
        out["ops"] = (
            None if record.ops is None else [_record_json(o.type, o.record) for o in record.ops]
        )
    elif isinstance(record, CreateSessionTxn):
        out["timeout"] = record.timeout
    elif isinstance(record, CloseSessionTxn):
        out["paths_to_delete"] = (
            None if record.paths_to_delete is None else list(record.paths_to_delete)
        )
    elif isinstance(record, ErrorTxn):
        out["err"] = record.err
    else:
        for name in record.__slots__:
            value = getattr(record, name)
            if name == "data":
                value = _data_json(value)
            elif name == "acl":
                value = _acl_json(value)
            out[name] = value
    return out


def _txn_json(txn: Txn) -> dict[str, JsonValue]:
    h = txn.header
    out: dict[str, JsonValue] = {
        "client_id": hexz(h.client_id),
        "cxid": h.cxid,
        "zxid": hexz(h.zxid),
        "time": h.time,
    }
    out.update(_record_json(h.type, txn.record))
    if txn.digest is not None:
        out["digest"] = {"version": txn.digest.version, "tree_digest": hexz(txn.digest.tree_digest)}
    return out


def _packet_fields(p: QuorumPacket, to_leader: bool) -> dict[str, JsonValue]:
    f: dict[str, JsonValue] = {
        "type": packet_type_name(p.type),
        "zxid": hexz(p.zxid),
        "data_len": -1 if p.data is None else len(p.data),
    }
    if p.authinfo is not None:
        f["authinfo"] = [{"scheme": i.scheme, "id": i.id} for i in p.authinfo]
    t = p.type
    try:
        if t in (PacketType.FOLLOWERINFO, PacketType.OBSERVERINFO):
            info = decode_learner_info(p.data)
            f["learner_info"] = {
                "server_id": info.server_id,
                "protocol_version": info.protocol_version,
                "config_version": info.config_version,
            }
        elif t == PacketType.LEADERINFO:
            f["protocol_version"] = decode_int_payload(p.data)
        elif t == PacketType.ACKEPOCH:
            f["current_epoch"] = decode_int_payload(p.data)
        elif t == PacketType.NEWLEADER:
            f["config"] = decode_config_payload(p.data)
        elif t == PacketType.PING:
            sessions = decode_ping_sessions(p.data)
            if sessions is not None:
                f["sessions"] = [
                    {"session_id": hexz(s.session_id), "timeout": s.timeout} for s in sessions
                ]
        elif t == PacketType.REVALIDATE and p.data is not None:
            if to_leader:
                sid, timeout = decode_revalidate_request(p.data)
                f.update(session_id=hexz(sid), timeout=timeout)
            else:
                sid, valid = decode_revalidate_reply(p.data)
                f.update(session_id=hexz(sid), valid=valid)
        elif t in (PacketType.PROPOSAL, PacketType.INFORM):
            f["txn"] = _txn_json(decode_proposal(p.data))
        elif t == PacketType.COMMITANDACTIVATE:
            f["designated_leader"] = decode_long_payload(p.data)
        elif t == PacketType.INFORMANDACTIVATE:
            leader, txn = decode_inform_and_activate(p.data)
            f["designated_leader"] = leader
            f["txn"] = _txn_json(txn)
        elif t == PacketType.REQUEST:
            req = decode_request(p.data)
            f["request"] = {
                "session_id": hexz(req.session_id),
                "cxid": req.cxid,
                "type": op_name(req.type),
                "len": len(req.request),
            }
    except ProtocolError as exc:
        f["payload_error"] = str(exc)
    return f


def _snapshot_fields(s: Snapshot) -> dict[str, JsonValue]:
    return {
        "session_count": len(s.sessions),
        "node_count": len(s.nodes),
        "acl_count": len(s.acl_cache),
        "sessions": [{"session_id": hexz(x.session_id), "timeout": x.timeout} for x in s.sessions],
        "paths": [n.path or "/" for n in s.nodes],
    }


# -- decoding ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Ctx:
    t0: float
    election_sids: dict[Endpoint, int] = field(default_factory=dict)
    quorum_sids: dict[Endpoint, int] = field(default_factory=dict)
    learner_sid: dict[int, int] = field(default_factory=dict)
    initiator_sid: dict[int, int] = field(default_factory=dict)


Handler = Callable[[object], tuple[str, dict[str, JsonValue]] | None]
"""What a message becomes: an event's kind and fields (``None``: no event)."""
Decoder = (
    ElectionConnectionDecoder | QuorumStreamDecoder | RequestStreamDecoder | ReplyStreamDecoder
)


def _decode_direction(
    conn: TcpConnection, port: str, d: Direction, from_initiator: bool, ctx: _Ctx
) -> list[CaptureEvent]:
    dec: Decoder
    if port == ELECTION:
        direction = "initiator->acceptor" if from_initiator else "acceptor->initiator"
        dec = ElectionConnectionDecoder(initial=from_initiator)
    else:
        direction = "learner->leader" if from_initiator else "leader->learner"
        dec = QuorumStreamDecoder(snapshots=not from_initiator)
    handle = _peer_handler(conn, from_initiator, ctx)
    return _run_decoder(conn, port, d, from_initiator, direction, dec, handle, ctx)


def _peer_handler(conn: TcpConnection, from_initiator: bool, ctx: _Ctx) -> Handler:
    def handle(msg: object) -> tuple[str, dict[str, JsonValue]] | None:
        if isinstance(msg, InitialMessage):
            ctx.initiator_sid[conn.index] = msg.sid
            for e in msg.endpoints():
                if not e.wildcard:
                    ctx.election_sids.setdefault((e.host, e.port), msg.sid)
            return "initial", {
                "protocol_version": msg.protocol_version,
                "sid": msg.sid,
                "addresses": list(msg.addresses),
            }
        if isinstance(msg, Notification):
            if msg.config:
                _learn_config(msg.config, ctx.election_sids, ctx.quorum_sids)
            return "notification", {
                "state": msg.state.name,
                "leader": msg.leader,
                "zxid": hexz(msg.zxid),
                "election_epoch": msg.election_epoch,
                "peer_epoch": msg.peer_epoch,
                "version": msg.version,
                "config": msg.config,
            }
        if isinstance(msg, DroppedNotification):
            return "notification", {"dropped": msg.reason, "state": msg.state}
        if isinstance(msg, QuorumPacket):
            fields = _packet_fields(msg, from_initiator)
            info = fields.get("learner_info")
            if isinstance(info, dict):
                ctx.learner_sid[conn.index] = info["server_id"]
            if isinstance(fields.get("config"), str):
                _learn_config(fields["config"], ctx.election_sids, ctx.quorum_sids)
            return "packet", fields
        if isinstance(msg, Snapshot):
            return "snapshot", _snapshot_fields(msg)
        if isinstance(msg, SnapshotSignature):
            return "snapshot_signature", {"signature": msg.signature}
        return None

    return handle


def _run_decoder(
    conn: TcpConnection,
    port: str,
    d: Direction,
    from_initiator: bool,
    direction: str,
    dec: Decoder,
    handle: Handler,
    ctx: _Ctx,
) -> list[CaptureEvent]:
    """Feed one direction's chunks to ``dec``; an event per message, error or truncation."""
    chunks, hole = d.chunks()
    src, dst = (
        (conn.initiator, conn.acceptor) if from_initiator else (conn.acceptor, conn.initiator)
    )
    events: list[CaptureEvent] = []
    offsets = [c.offset for c in chunks]
    times = list(itertools.accumulate((c.timestamp for c in chunks), max))

    def event(kind: str, start: int, length: int, fields: dict[str, JsonValue]) -> None:
        # A message's time is when its first byte arrived (as in the annotated vectors).
        i = bisect.bisect_right(offsets, start) - 1
        ts = times[i] if i >= 0 else conn.start
        events.append(
            CaptureEvent(
                round((ts - ctx.t0) * 1000, 3),
                conn.index,
                port,
                direction,
                _ep(src),
                _ep(dst),
                kind,
                start,
                length,
                fields,
                from_initiator=from_initiator,
            )
        )

    def drain() -> bool:
        while True:
            start = dec.offset
            try:
                msg = dec.next_message()
            except ProtocolError as exc:
                event("error", exc.offset or start, dec.pending_bytes, {"reason": exc.reason})
                return False
            if msg is NEED_DATA or msg is CLOSED:
                return True
            described = handle(msg)
            if described is not None:
                event(described[0], start, dec.offset - start, described[1])

    ok = True
    for chunk in chunks:
        dec.receive_data(chunk.data)
        ok = drain()
        if not ok:
            break
    if ok:
        if hole is not None:
            event("error", hole, 0, {"reason": f"capture has a hole at stream offset {hole}"})
        elif dec.pending_bytes:
            event("truncated", dec.offset, dec.pending_bytes, {"bytes": dec.pending_bytes})
    return events


_ZXID_FIELDS = frozenset({"czxid", "mzxid", "pzxid", "last_zxid_seen", "relative_zxid"})
_ID_FIELDS = frozenset({"session_id", "ephemeral_owner"})


def _client_json(value: object, name: str = "") -> JsonValue:
    """A client record as JSON: fields by their Python names, zxids and session ids hex."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, str):
        return None if is_null(value) else str(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if name in _ZXID_FIELDS or name in _ID_FIELDS:
            return hexz(value)
        return value
    if isinstance(value, bytes):
        return {"hex": value.hex()} if name == "passwd" else _data_json(value)
    if isinstance(value, tuple):
        return [_client_json(v) for v in value]
    if isinstance(value, Op):
        return {"type": op_name(value.type), **_fields_json(value.request)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = _fields_json(value)
        if not isinstance(value, Stat) and name != "id":
            out = {"record": type(value).__name__, **out}
        return out
    return repr(value)


def _fields_json(record: Any) -> dict[str, JsonValue]:
    return {
        f.name: _client_json(getattr(record, f.name), f.name) for f in dataclasses.fields(record)
    }


def _client_fields(msg: object) -> tuple[str, dict[str, JsonValue]]:
    if isinstance(msg, FourLetterWord):
        return "four_letter_word", {"word": msg.word}
    if isinstance(msg, ConnectRequest | ConnectResponse):
        kind = "connect" if isinstance(msg, ConnectRequest) else "connect_response"
        return kind, _fields_json(msg)
    if isinstance(msg, ClientRequest):
        fields: dict[str, JsonValue] = {"xid": msg.xid, "op": op_name(msg.op)}
        if isinstance(msg.record, MalformedRequest):
            fields["malformed"] = msg.record.reason
        elif msg.record is not None:
            fields["request"] = _client_json(msg.record)
        return "request", fields
    assert isinstance(msg, ClientReply)
    fields = {"xid": msg.xid, "op": op_name(msg.op), "zxid": hexz(msg.zxid)}
    try:
        fields["err"] = ErrorCode(msg.err).name
    except ValueError:
        fields["err"] = msg.err
    if msg.response is not None:
        fields["response"] = _client_json(msg.response)
    if msg.raw:
        fields["raw"] = msg.raw.hex()
    return "reply", fields


def _decode_client(conn: TcpConnection, ctx: _Ctx) -> list[CaptureEvent]:
    """Both directions of a client connection: the requests first, to pair the replies."""
    replies = ReplyStreamDecoder()

    def request(msg: object) -> tuple[str, dict[str, JsonValue]] | None:
        if isinstance(msg, ClientRequest):
            replies.expect(msg.xid, msg.op)
        return _client_fields(msg)

    to_server = _run_decoder(
        conn, CLIENT, conn.to_acceptor, True, "client->server", RequestStreamDecoder(), request, ctx
    )
    to_client = _run_decoder(
        conn, CLIENT, conn.to_initiator, False, "server->client", replies, _client_fields, ctx
    )
    return to_server + to_client


def _first_bytes(chunks: Iterable[Chunk], n: int = 16) -> bytes:
    out = b""
    for c in chunks:
        out += c.data
        if len(out) >= n:
            break
    return out


def decode_capture(
    data: bytes,
    *,
    election_ports: Collection[int] = (),
    quorum_ports: Collection[int] = (),
    client_ports: Collection[int] = (),
) -> CaptureReport:
    """Decode a libpcap capture (raises :class:`~zkquorum.wire.pcap.PcapError`)."""
    capture = parse_pcap(data)
    conns = reassemble(tcp_segments(capture))
    t0 = min((c.start for c in conns), default=0.0)
    ctx = _Ctx(t0)
    kinds: dict[int, str | None] = {}
    for c in conns:
        port = c.acceptor[1]
        if port in election_ports:
            kinds[c.index] = ELECTION
        elif port in quorum_ports:
            kinds[c.index] = QUORUM
        elif port in client_ports:
            kinds[c.index] = CLIENT
        else:
            kinds[c.index] = _classify(_first_bytes(c.to_acceptor.chunks()[0]))
    by_port = {conns[i].acceptor: k for i, k in kinds.items() if k is not None}
    for c in conns:
        if kinds[c.index] is None:
            kinds[c.index] = by_port.get(c.acceptor)
    events: list[CaptureEvent] = []
    for final_pass in (False, True):
        for c in conns:
            if final_pass and kinds[c.index] is None:
                # Still unknown: maybe a port named by a config text seen meanwhile.
                if c.acceptor in ctx.election_sids:
                    kinds[c.index] = ELECTION
                elif c.acceptor in ctx.quorum_sids:
                    kinds[c.index] = QUORUM
                else:
                    continue
            elif final_pass or kinds[c.index] is None:
                continue
            kind = kinds[c.index]
            assert kind is not None
            if kind == CLIENT:
                events.extend(_decode_client(c, ctx))
                continue
            events.extend(_decode_direction(c, kind, c.to_acceptor, True, ctx))
            events.extend(_decode_direction(c, kind, c.to_initiator, False, ctx))
    infos = []
    for c in conns:
        kind = kinds[c.index]
        if kind == ELECTION:
            isid = ctx.initiator_sid.get(c.index)
            asid = ctx.election_sids.get(c.acceptor)
        elif kind == QUORUM:
            isid = ctx.learner_sid.get(c.index)
            asid = ctx.quorum_sids.get(c.acceptor)
        else:
            isid = asid = None
        infos.append(
            ConnectionInfo(
                c.index,
                kind,
                _ep(c.initiator),
                _ep(c.acceptor),
                round((c.start - t0) * 1000, 3),
                c.refused,
                sum(len(x.data) for x in c.to_acceptor.chunks()[0]),
                sum(len(x.data) for x in c.to_initiator.chunks()[0]),
                isid,
                asid,
            )
        )
    for e in events:
        info = infos[e.conn]
        a, b = info.initiator_sid, info.acceptor_sid
        e.from_sid, e.to_sid = (a, b) if e.from_initiator else (b, a)
    events.sort(key=lambda e: e.t_ms)
    return CaptureReport(tuple(infos), tuple(events), capture.truncated)
