"""``zkquorum decode`` and the capture pipeline (pcap parsing, TCP reassembly)."""

from __future__ import annotations

import json
import re
import struct
from collections import Counter
from pathlib import Path

import pytest

from tests.wire.conftest import VECTOR_SETS, VECTORS, load_vectors
from zkquorum.cli.main import main
from zkquorum.wire.capture import decode_capture
from zkquorum.wire.pcap import PcapError, parse_pcap


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["decode", "--json", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("name", VECTOR_SETS)
def test_decode_prints_every_annotated_message(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    vectors = load_vectors(name)
    lines = run_json(capsys, str(VECTORS / f"{name}.pcap"))
    conns = [x for x in lines if x["kind"] == "connection"]
    assert [(c["conn"], c["port"], c["refused"]) for c in conns] == [
        (c["conn"], c["port_kind"], c["refused"]) for c in vectors["connections"]
    ]
    msgs = {(x["conn"], x["direction"], x["stream_offset"]): x for x in lines if "direction" in x}
    assert len(msgs) == len(vectors["messages"])
    for m in vectors["messages"]:
        got = msgs[(m["conn"], m["direction"], m["stream_offset"])]
        assert (got["kind"], got["len"], got["port"]) == (m["kind"], m["len"], m["port_kind"])
        assert (got["from_sid"], got["to_sid"]) == (m["from_sid"], m["to_sid"])
        assert got["t_ms"] == pytest.approx(m["t_ms"], abs=0.002)
        dec = m["decoded"]
        if m["kind"] == "packet":
            assert got["type"] == dec["type_name"] and got["zxid"] == dec["zxid"]
            assert got["data_len"] == dec["data_len"]
        elif m["kind"] == "notification":
            assert got["state"] == dec["state_name"] and got["zxid"] == dec["zxid"]
            assert (got["leader"], got["version"], got["config"]) == (
                dec["leader"],
                dec["version"],
                dec["config"],
            )
            assert hex(got["election_epoch"]) == dec["election_epoch"]  # type: ignore[arg-type]
            assert hex(got["peer_epoch"]) == dec["peer_epoch"]  # type: ignore[arg-type]
        elif m["kind"] == "initial":
            assert (got["protocol_version"], got["sid"], got["addresses"]) == (
                dec["protocol_version"],
                dec["sid"],
                dec["addresses"],
            )
        elif m["kind"] == "snapshot":
            assert (got["session_count"], got["node_count"]) == (
                dec["session_count"],
                dec["node_count"],
            )


_TIMELINE = re.compile(r"^\s+([\d.]+) ms\s+conn#(\d+)\s+(election|quorum)\s+(.*?)\s{2,}(\S+)")


def test_decode_text_lists_the_annotated_timeline(capsys: pytest.CaptureFixture[str]) -> None:
    txt = VECTORS / "zk-n3-tick200.txt"
    section = txt.read_text(encoding="utf-8").split("## Timeline", 1)[1].split("\n## ", 1)[0]
    names = {"HANDSHAKE": "INITIAL", "NOTIFY": "NOTIFICATION"}
    expected = Counter()
    for line in section.splitlines():
        m = _TIMELINE.match(line)
        if m:
            t, conn, port, _who, what = m.groups()
            expected[(conn, port, names.get(what, what), t)] += 1
    assert sum(expected.values()) == 72
    assert main(["decode", str(VECTORS / "zk-n3-tick200.pcap")]) == 0
    got = Counter()
    for line in capsys.readouterr().out.splitlines():
        m = re.match(
            r"^\s+([\d.]+) ms\s+conn#(\d+)\s+(election|quorum)\s+\S+\s+sid \S+\s+(\S+)", line
        )
        if m:
            t, conn, port, what = m.groups()
            got[(conn, port, what, f"{float(t):.1f}")] += 1
    assert got == expected


def _ip_packets(name: str) -> list[tuple[float, bytes]]:
    capture = parse_pcap((VECTORS / f"{name}.pcap").read_bytes())
    assert capture.link_type == 1
    return [(r.timestamp, r.data[14:]) for r in capture.records]


def _pcap(link_type: int, frames: list[tuple[float, bytes]], *, big: bool = False) -> bytes:
    e = ">" if big else "<"
    out = [struct.pack(e + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, link_type)]
    for ts, frame in frames:
        sec = int(ts)
        out.append(struct.pack(e + "IIII", sec, round((ts - sec) * 1e6), len(frame), len(frame)))
        out.append(frame)
    return b"".join(out)


def _events(data: bytes) -> list[tuple[object, ...]]:
    rep = decode_capture(data)
    return [(e.conn, e.direction, e.stream_offset, e.kind, e.length, e.t_ms) for e in rep.events]


@pytest.mark.parametrize(
    ("link_type", "header"),
    [
        (0, struct.pack("<I", 2)),  # BSD loopback (NULL)
        (108, struct.pack(">I", 2)),  # OpenBSD LOOP
        (113, b"\0\0\x03\x04\0\x06" + b"\0" * 8 + b"\x08\x00"),  # Linux cooked
        (276, b"\x08\x00" + b"\0" * 18),  # Linux cooked v2
        (101, b""),  # raw IP
    ],
)
def test_other_link_types_give_the_same_messages(link_type: int, header: bytes) -> None:
    packets = _ip_packets("multiaddr-v2")
    reference = _events((VECTORS / "multiaddr-v2.pcap").read_bytes())
    frames = [(ts, header + ip) for ts, ip in packets]
    assert _events(_pcap(link_type, frames, big=link_type == 108)) == reference


def test_retransmits_and_reordering_are_reassembled() -> None:
    packets = _ip_packets("snap-sync")
    reference = _events((VECTORS / "snap-sync.pcap").read_bytes())
    shuffled: list[tuple[float, bytes]] = []
    for i, (ts, ip) in enumerate(packets):
        shuffled.append((ts, ip))
        if i % 3 == 0:
            shuffled.append((ts, ip))  # an exact retransmit

    # swap neighbouring data segments (out-of-order arrival; SYNs stay in place)
    def is_data(ip: bytes) -> bool:
        ihl = (ip[0] & 15) * 4
        return not ip[ihl + 13] & 0x03 and len(ip) > ihl + (ip[ihl + 12] >> 4) * 4

    swaps = 0
    for i in range(5, len(shuffled) - 1, 7):
        if is_data(shuffled[i][1]) and is_data(shuffled[i + 1][1]):
            shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
            swaps += 1
    assert swaps > 10
    eth = b"\0" * 12 + b"\x08\x00"
    got = _events(_pcap(1, [(ts, eth + ip) for ts, ip in shuffled]))
    assert [e[:5] for e in got] == [e[:5] for e in reference]


def test_a_damaged_stream_is_reported_and_decoding_goes_on(tmp_path: Path) -> None:
    packets = _ip_packets("zk-n3-tick200")
    damaged = []
    for ts, ip in packets:
        ihl = (ip[0] & 15) * 4
        doff = (ip[ihl + 12] >> 4) * 4
        payload = ip[ihl + doff :]
        if payload[:8] == b"\xff\xff\xff\xff\xff\xff\x00\x00":  # break every handshake
            ip = ip[: ihl + doff] + b"\x00\x00\x00\x00\x00\x00\x00\x05" + payload[8:]
        damaged.append((ts, b"\0" * 12 + b"\x08\x00" + ip))
    path = tmp_path / "damaged.pcap"
    path.write_bytes(_pcap(1, damaged))
    rep = decode_capture(path.read_bytes(), election_ports={38881, 38882, 38883})
    kinds = Counter(e.kind for e in rep.events)
    assert kinds["error"] >= 5
    clean = decode_capture((VECTORS / "zk-n3-tick200.pcap").read_bytes())
    assert kinds["packet"] == Counter(e.kind for e in clean.events)["packet"] > 40
    # each damaged direction stopped at its error; the other direction still decodes
    notes = [e for e in rep.events if e.kind == "notification"]
    assert notes and {e.direction for e in notes} == {"acceptor->initiator"}


def test_bad_files_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PcapError):
        parse_pcap(b"\x0a\x0d\x0d\x0a" + b"\0" * 40)
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"not a capture at all....")
    assert main(["decode", str(bad)]) == 2
    assert main(["decode", str(tmp_path / "missing.pcap")]) == 2
    err = capsys.readouterr().err
    assert "not a pcap file" in err and "cannot read" in err
    truncated = (VECTORS / "zk-n3-tick200.pcap").read_bytes()[:-10]
    assert parse_pcap(truncated).truncated
