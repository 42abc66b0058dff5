"""Classic libpcap files and TCP reassembly, from bytes (no file I/O: the caller reads).

Supported: the libpcap format (not pcapng) in either byte order, microsecond or
nanosecond timestamps; link types NULL (0), Ethernet (1, with 802.1Q tags), raw IP
(12, 14, 101), LOOP (108), Linux cooked SLL (113) and SLL2 (276); IPv4 (unfragmented)
and IPv6 (TCP as the first next header).  :func:`reassemble` rebuilds the two byte
streams of each TCP connection by sequence number: retransmitted and overlapping
segments are merged, out-of-order ones put in place; a hole stops that direction and is
reported.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Final

LINKTYPE_NULL: Final = 0
LINKTYPE_ETHERNET: Final = 1
LINKTYPE_RAW: Final = 101
LINKTYPE_LOOP: Final = 108
LINKTYPE_LINUX_SLL: Final = 113
LINKTYPE_LINUX_SLL2: Final = 276

_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10


class PcapError(ValueError):
    """The bytes are not a capture this module can read."""


@dataclass(frozen=True, slots=True)
class PcapRecord:
    timestamp: float
    data: bytes
    orig_len: int


@dataclass(frozen=True, slots=True)
class PcapFile:
    link_type: int
    records: tuple[PcapRecord, ...]
    truncated: bool = False
    """The file ends inside a record (the partial record is left out)."""


def parse_pcap(data: bytes) -> PcapFile:
    if len(data) < 24:
        raise PcapError("not a pcap file: shorter than the 24-byte header")
    magic = data[:4]
    if magic == b"\x0a\x0d\x0d\x0a":
        raise PcapError("pcapng is not supported: convert with 'editcap -F pcap'")
    formats = {
        b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
        b"\xa1\xb2\xc3\xd4": (">", 1e-6),
        b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
        b"\xa1\xb2\x3c\x4d": (">", 1e-9),
    }
    if magic not in formats:
        raise PcapError(f"not a pcap file (magic {magic.hex()})")
    endian, unit = formats[magic]
    link_type = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    rec = struct.Struct(endian + "IIII")
    records: list[PcapRecord] = []
    pos = 24
    truncated = False
    while pos < len(data):
        if pos + 16 > len(data):
            truncated = True
            break
        sec, frac, incl, orig = rec.unpack_from(data, pos)
        pos += 16
        if pos + incl > len(data):
            truncated = True
            break
        records.append(PcapRecord(sec + frac * unit, data[pos : pos + incl], orig))
        pos += incl
    return PcapFile(link_type, tuple(records), truncated)


@dataclass(frozen=True, slots=True)
class TcpSegment:
    timestamp: float
    src: str
    sport: int
    dst: str
    dport: int
    seq: int
    ack: int
    flags: int
    payload: bytes

    @property
    def syn(self) -> bool:
        return bool(self.flags & _SYN)

    @property
    def fin(self) -> bool:
        return bool(self.flags & _FIN)

    @property
    def rst(self) -> bool:
        return bool(self.flags & _RST)

    @property
    def has_ack(self) -> bool:
        return bool(self.flags & _ACK)


def _ip_payload(link_type: int, frame: bytes) -> tuple[int, bytes] | None:
    """(IP version, IP packet) of a link-layer frame, or None."""
    ethertype: int | None = None
    if link_type == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        off, ethertype = 14, int.from_bytes(frame[12:14], "big")
        while ethertype in (0x8100, 0x88A8) and len(frame) >= off + 4:
            ethertype = int.from_bytes(frame[off + 2 : off + 4], "big")
            off += 4
        body = frame[off:]
    elif link_type in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(frame) < 4:
            return None
        big = int.from_bytes(frame[:4], "big")
        little = int.from_bytes(frame[:4], "little")
        family = big if link_type == LINKTYPE_LOOP else little
        if family > 0xFFFF:  # NULL written by a host of the other byte order
            family = little if family == big else big
        ethertype = 0x0800 if family == 2 else 0x86DD if family in (10, 24, 28, 30) else None
        body = frame[4:]
    elif link_type == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return None
        ethertype, body = int.from_bytes(frame[14:16], "big"), frame[16:]
    elif link_type == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            return None
        ethertype, body = int.from_bytes(frame[0:2], "big"), frame[20:]
    elif link_type in (LINKTYPE_RAW, 12, 14):
        body = frame
        ethertype = 0x0800 if body[:1] and body[0] >> 4 == 4 else 0x86DD
    else:
        return None
    if ethertype == 0x0800:
        return 4, body
    if ethertype == 0x86DD:
        return 6, body
    return None


def _tcp_segment(timestamp: float, version: int, ip: bytes) -> TcpSegment | None:
    if version == 4:
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            return None
        ihl = (ip[0] & 0x0F) * 4
        total = int.from_bytes(ip[2:4], "big")
        frag = int.from_bytes(ip[6:8], "big")
        if frag & 0x3FFF or ihl < 20:  # a fragment (MF or offset): not reassembled
            return None
        tcp = ip[ihl : total if ihl <= total <= len(ip) else len(ip)]
        src, dst = str(IPv4Address(ip[12:16])), str(IPv4Address(ip[16:20]))
    else:
        if len(ip) < 40 or ip[0] >> 4 != 6 or ip[6] != 6:
            return None
        plen = int.from_bytes(ip[4:6], "big")
        tcp = ip[40 : 40 + plen] if plen else ip[40:]
        src, dst = str(IPv6Address(ip[8:24])), str(IPv6Address(ip[24:40]))
    if len(tcp) < 20:
        return None
    sport, dport, seq, ack = struct.unpack_from(">HHII", tcp, 0)
    doff = (tcp[12] >> 4) * 4
    if doff < 20 or doff > len(tcp):
        return None
    return TcpSegment(timestamp, src, sport, dst, dport, seq, ack, tcp[13], tcp[doff:])


def tcp_segments(capture: PcapFile) -> Iterator[TcpSegment]:
    """The TCP segments of a capture, in file order; everything else is skipped."""
    for record in capture.records:
        ip = _ip_payload(capture.link_type, record.data)
        if ip is None:
            continue
        seg = _tcp_segment(record.timestamp, ip[0], ip[1])
        if seg is not None:
            yield seg


Endpoint = tuple[str, int]


@dataclass(slots=True)
class Chunk:
    """New bytes of one direction, in stream order, with the capture time they arrived."""

    offset: int
    timestamp: float
    data: bytes


@dataclass(slots=True)
class Direction:
    isn: int | None = None
    segments: list[tuple[int, float, bytes]] = field(default_factory=list)
    fin_time: float | None = None
    rst_time: float | None = None

    def chunks(self) -> tuple[list[Chunk], int | None]:
        """Reassembled chunks, and the stream offset of the first hole (None if none)."""
        ordered = sorted(self.segments, key=lambda s: (s[0], s[1]))
        out: list[Chunk] = []
        pos = 0
        for rel, ts, payload in ordered:
            if rel > pos:
                return out, pos
            if rel + len(payload) <= pos:
                continue
            new = payload[pos - rel :]
            out.append(Chunk(pos, ts, new))
            pos += len(new)
        return out, None


@dataclass(slots=True)
class TcpConnection:
    index: int
    initiator: Endpoint
    acceptor: Endpoint
    start: float
    saw_syn: bool
    to_acceptor: Direction = field(default_factory=Direction)
    to_initiator: Direction = field(default_factory=Direction)
    refused: bool = False
    closed: bool = False

    def direction(self, src: Endpoint) -> Direction:
        return self.to_acceptor if src == self.initiator else self.to_initiator


def reassemble(segments: Iterable[TcpSegment]) -> list[TcpConnection]:
    """Group segments into connections (numbered by first appearance) and directions."""
    conns: list[TcpConnection] = []
    current: dict[frozenset[Endpoint], TcpConnection] = {}
    for seg in segments:
        src: Endpoint = (seg.src, seg.sport)
        dst: Endpoint = (seg.dst, seg.dport)
        key = frozenset((src, dst))
        conn = current.get(key)
        if seg.syn and not seg.has_ack:
            if (
                conn is None
                or conn.initiator != src
                or (
                    conn.to_acceptor.isn is not None
                    and conn.to_acceptor.isn != (seg.seq + 1) & 0xFFFFFFFF
                )
                or conn.closed
            ):
                conn = TcpConnection(len(conns), src, dst, seg.timestamp, True)
                conns.append(conn)
                current[key] = conn
        elif conn is None:
            # Joined mid-stream: guess the side with the higher port dialled.
            initiator, acceptor = (src, dst) if seg.sport >= seg.dport else (dst, src)
            conn = TcpConnection(len(conns), initiator, acceptor, seg.timestamp, False)
            conns.append(conn)
            current[key] = conn
        d = conn.direction(src)
        if seg.rst:
            d.rst_time = seg.timestamp
            if src == conn.acceptor and conn.to_initiator.isn is None:
                conn.refused = True  # RST answering the SYN: nothing listening
            conn.closed = True
        if seg.syn:
            if d.isn is None:
                d.isn = (seg.seq + 1) & 0xFFFFFFFF
        elif d.isn is None:
            d.isn = seg.seq
        rel = (seg.seq - d.isn - (1 if seg.syn else 0)) & 0xFFFFFFFF
        if seg.syn:
            rel = 0
        if seg.payload and rel < 0x80000000:
            d.segments.append((rel, seg.timestamp, seg.payload))
        if seg.fin:
            d.fin_time = seg.timestamp
            if conn.to_acceptor.fin_time is not None and conn.to_initiator.fin_time is not None:
                conn.closed = True
    return conns
