"""``zkquorum decode`` on the client-port captures: every frame, paired replies, the Len error."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.vectors import VECTORS
from tests.wire.test_client_golden import conversations, decode
from zkquorum.cli.main import main
from zkquorum.wire.capture import CLIENT, decode_capture


@pytest.mark.parametrize("name", ["client-ops", "quorum-writes"])
def test_every_client_frame_is_an_event(name: str) -> None:
    report = decode_capture((VECTORS / f"{name}.pcap").read_bytes())
    events = [e for e in report.events if e.port == CLIENT]
    expected = sum(
        len(decode(conv).requests) + len(decode(conv).replies) for conv in conversations(name)
    )
    errors = [e for e in events if e.kind in ("error", "truncated")]
    assert len(events) - len(errors) == expected
    if name == "client-ops":
        # the oversize create closed the first connection
        (error,) = errors
        assert error.conn == 0 and "Len error: frame length 1048633" in error.fields["reason"]
    else:
        assert errors == []
    kinds = Counter(e.kind for e in events)
    clients = [c for c in report.connections if c.port == CLIENT]
    assert kinds["connect"] == kinds["connect_response"] == len(clients)


def test_the_quorum_part_of_quorum_writes_is_still_decoded() -> None:
    report = decode_capture((VECTORS / "quorum-writes.pcap").read_bytes())
    kinds = Counter(c.port for c in report.connections)
    assert kinds == {"quorum": 2, CLIENT: 2}
    requests = [
        e for e in report.events if e.kind == "packet" and e.fields.get("type") == "REQUEST"
    ]
    assert len(requests) == 19


def test_json_lines_pair_replies_with_their_requests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "--json", str(VECTORS / "client-ops.pcap")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    replies = [x for x in lines if x["kind"] == "reply"]
    (failed_multi,) = [
        x
        for x in replies
        if x["op"] == "multi"
        and any(r["record"] == "ErrorResult" for r in x["response"]["results"])
    ]
    assert [r["err"] for r in failed_multi["response"]["results"]] == [0, -103, -2]
    (who_am_i, *_) = [x for x in replies if x["op"] == "whoAmI"]
    assert who_am_i["response"]["client_info"][0] == {
        "record": "ClientInfo",
        "auth_scheme": "ip",
        "user": "127.0.0.1",
    }
    acl_auth = next(
        x
        for x in lines
        if x["kind"] == "request" and x["op"] == "create" and x["request"]["path"] == "/co/acl-auth"
    )
    # kazoo's make_acl("auth", "") sends a null id: JSON null, not ""
    assert acl_auth["request"]["acl"][0]["id"] == {"scheme": "auth", "id": None}
    connect = next(x for x in lines if x["kind"] == "connect")
    assert connect["passwd"] == {"hex": "00" * 16} and connect["last_zxid_seen"] == "0x0"
    errors = [x for x in replies if x["err"] not in ("OK",)]
    assert {x["err"] for x in errors} >= {"NODEEXISTS", "NONODE", "BADVERSION", "NOAUTH"}


def test_text_lines_and_a_forced_client_port(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(VECTORS / "quorum-writes.pcap")
    assert main(["decode", path, "--client-port", "21811"]) == 0
    out = capsys.readouterr().out
    assert "CONNECT session=0x0 lastZxidSeen=0x0 timeout=4000 readOnly=False" in out
    assert "REPLY   xid=-1   notification zxid=" in out
    assert "REQUEST xid=" in out and "closeSession" in out
