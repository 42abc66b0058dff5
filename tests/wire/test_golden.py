"""Every message captured from real 3.8 servers decodes to the annotated values and
re-encodes to the same bytes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.wire.conftest import all_messages
from zkquorum.wire import election as el
from zkquorum.wire import quorum as q
from zkquorum.wire import snapshot as sn
from zkquorum.wire import txn as tx
from zkquorum.wire.errors import ProtocolError
from zkquorum.wire.jute import ACL
from zkquorum.wire.reader import NEED_DATA
from zkquorum.wire.zxid import zxid_hex

MESSAGES = all_messages()
IDS = [f"{name}#{m['i']}-{m['kind']}" for name, m in MESSAGES]


def hx(value: int) -> str:
    return "0x" + zxid_hex(value)


def data_json(data: bytes | None) -> Any:
    if data is None:
        return None
    return {"len": len(data), "hex": data.hex()}


def acl_json(acl: tuple[ACL, ...] | None) -> Any:
    if acl is None:
        return None
    return [{"perms": a.perms, "scheme": a.id.scheme, "id": a.id.id} for a in acl]


def strip_text(value: Any) -> Any:
    """The annotations add a "text" rendering to data blobs; compare len + hex."""
    if isinstance(value, dict):
        return {k: strip_text(v) for k, v in value.items() if k != "text"}
    if isinstance(value, list):
        return [strip_text(v) for v in value]
    return value


RECORD_NAMES = {
    tx.CreateTxn: "CreateTxn",
    tx.CreateTTLTxn: "CreateTTLTxn",
    tx.CreateContainerTxn: "CreateContainerTxn",
    tx.DeleteTxn: "DeleteTxn",
    tx.SetDataTxn: "SetDataTxn",
    tx.CheckVersionTxn: "CheckVersionTxn",
    tx.SetACLTxn: "SetACLTxn",
    tx.CreateSessionTxn: "CreateSessionTxn",
    tx.CloseSessionTxn: "CloseSessionTxn",
    tx.ErrorTxn: "ErrorTxn",
    tx.MultiTxn: "MultiTxn",
}


def record_json(record: tx.TxnRecord | None) -> dict[str, Any]:
    assert record is not None and not isinstance(record, tx.RawRecord), record
    out: dict[str, Any] = {"record": RECORD_NAMES[type(record)]}
    match record:
        case tx.CreateTxn(path, data, acl, ephemeral, pcv):
            out.update(path=path, data=data_json(data), acl=acl_json(acl), ephemeral=ephemeral)
            out["parentCVersion"] = pcv
        case tx.CreateTTLTxn(path, data, acl, pcv, ttl):
            out.update(path=path, data=data_json(data), acl=acl_json(acl), ttl=ttl)
            out["parentCVersion"] = pcv
        case tx.CreateContainerTxn(path, data, acl, pcv):
            out.update(path=path, data=data_json(data), acl=acl_json(acl))
            out["parentCVersion"] = pcv
        case tx.DeleteTxn(path):
            out.update(path=path)
        case tx.SetDataTxn(path, data, version):
            out.update(path=path, data=data_json(data), version=version)
        case tx.CheckVersionTxn(path, version):
            out.update(path=path, version=version)
        case tx.SetACLTxn(path, acl, version):
            out.update(path=path, acl=acl_json(acl), version=version)
        case tx.CreateSessionTxn(timeout):
            out["timeOut"] = timeout
        case tx.CloseSessionTxn(paths):
            out["paths2Delete"] = list(paths or ())
        case tx.ErrorTxn(err):
            out["err"] = err
        case tx.MultiTxn(ops):
            out["txns"] = [{"type": o.type, "txn": record_json(o.record)} for o in (ops or ())]
    return out


def expected_record(annotated: dict[str, Any]) -> dict[str, Any]:
    out = strip_text(annotated)
    out.pop("err_name", None)
    if "txns" in out:
        out["txns"] = [
            {"type": t["type"], "txn": expected_record(t["txn"])} for t in annotated["txns"]
        ]
    return dict(out)


def check_packet(p: q.QuorumPacket, dec: dict[str, Any], direction: str) -> None:
    assert p.type == dec["type"]
    assert q.packet_type_name(p.type) == dec["type_name"]
    assert hx(p.zxid) == dec["zxid"]
    assert (-1 if p.data is None else len(p.data)) == dec["data_len"]
    assert (None if p.data is None else p.data.hex()) == dec["data_hex"]
    expected_auth = dec["authinfo"]
    got_auth = (
        None if p.authinfo is None else [{"scheme": i.scheme, "id": i.id} for i in p.authinfo]
    )
    assert got_auth == expected_auth
    if "learner_info" in dec:
        info = q.decode_learner_info(p.data)
        li = dec["learner_info"]
        assert info.server_id == li["serverid"]
        assert hex(info.protocol_version) == li["protocolVersion"]
        assert hex(info.config_version) == li["configVersion"]
        assert q.encode_learner_info(info) == p.data
    if "leader_protocol_version" in dec:
        assert hex(q.decode_int_payload(p.data)) == dec["leader_protocol_version"]
    if "current_epoch" in dec:
        assert q.decode_int_payload(p.data) == dec["current_epoch"]
        assert q.encode_int_payload(dec["current_epoch"]) == p.data
    if p.type == q.PacketType.NEWLEADER:
        assert q.decode_config_payload(p.data) == dec["config"]
        assert q.encode_config_payload(dec["config"]) == p.data
    if p.type == q.PacketType.PING:
        sessions = q.decode_ping_sessions(p.data)
        if direction == "leader->learner":
            assert sessions is None
        else:
            assert sessions is not None
            assert [{"id": hx(s.session_id), "timeout": s.timeout} for s in sessions] == dec.get(
                "sessions", []
            )
            assert q.encode_ping_sessions(sessions) == p.data
    if p.type == q.PacketType.REQUEST:
        req = q.decode_request(p.data)
        r = dec["request"]
        assert (hx(req.session_id), req.cxid, req.type) == (r["sessionId"], r["cxid"], r["type"])
        assert tx.op_name(req.type) == r["type_name"]
        assert q.encode_request(req) == p.data
    if p.type in (q.PacketType.PROPOSAL, q.PacketType.INFORM):
        t = q.decode_proposal(p.data)
        h, ann = t.header, dec["txn"]
        assert (hx(h.client_id), h.cxid, hx(h.zxid), h.time, h.type) == (
            ann["hdr"]["clientId"],
            ann["hdr"]["cxid"],
            ann["hdr"]["zxid"],
            ann["hdr"]["time"],
            ann["hdr"]["type"],
        )
        assert tx.op_name(h.type) == ann["hdr"]["type_name"]
        assert record_json(t.record) == expected_record(ann["txn"])
        if ann["digest"] is None:
            assert t.digest is None
        else:
            assert t.digest is not None
            assert t.digest.version == ann["digest"]["version"]
            assert hx(t.digest.tree_digest) == ann["digest"]["treeDigest"]
        assert t.trailing == b""
        assert t.raw == p.data
        assert tx.encode_txn(dataclasses.replace(t, raw=None)) == p.data  # from the fields


def check_snapshot(s: sn.Snapshot, dec: dict[str, Any]) -> None:
    assert len(s.sessions) == dec["session_count"]
    assert len(s.nodes) == dec["node_count"]
    assert [{"id": hx(x.session_id), "timeout": x.timeout} for x in s.sessions] == dec["sessions"]
    assert [{"aclId": e.acl_id, "acls": acl_json(e.acls)} for e in s.acl_cache] == dec["acl_cache"]
    for node, ann in zip(s.nodes, dec["nodes"], strict=True):
        assert node.path == ann["path"]
        assert node.acl_id == ann["aclId"]
        assert data_json(node.data) == strip_text(ann["data"])
        st = node.stat
        assert {
            "czxid": hx(st.czxid),
            "mzxid": hx(st.mzxid),
            "ctime": st.ctime,
            "mtime": st.mtime,
            "version": st.version,
            "cversion": st.cversion,
            "aversion": st.aversion,
            "ephemeralOwner": hx(st.ephemeral_owner),
            "pzxid": hx(st.pzxid),
        } == ann["stat"]
    assert dec["end_marker"] == "/"


@pytest.mark.parametrize(("name", "m"), MESSAGES, ids=IDS)
def test_captured_message_decodes_and_reencodes(name: str, m: dict[str, Any]) -> None:
    raw = bytes.fromhex(m["hex"])
    dec = m["decoded"]
    kind = m["kind"]
    assert len(raw) == m["len"]
    if kind == "initial":
        msg = el.decode_initial_message(raw)
        assert msg.protocol_version == dec["protocol_version"]
        assert msg.sid == dec["sid"]
        assert list(msg.addresses) == dec["addresses"]
        assert el.encode_initial_message(msg) == raw
    elif kind == "notification":
        n = el.decode_notification_frame(raw)
        assert isinstance(n, el.Notification)
        assert int(n.state) == dec["state"] and n.state.name == dec["state_name"]
        assert n.leader == dec["leader"]
        assert hx(n.zxid) == dec["zxid"]
        assert hx(n.election_epoch) == dec["election_epoch"]
        assert hx(n.peer_epoch) == dec["peer_epoch"]
        assert n.version == dec["version"]
        assert n.config == dec["config"]
        assert len(raw) - 4 == dec["msg_len"]
        assert el.encode_notification_frame(n) == raw
    elif kind == "packet":
        p = q.decode_packet(raw)
        check_packet(p, dec, m["direction"])
        assert q.encode_packet(p) == raw
    elif kind == "snapshot":
        s = sn.decode_snapshot(raw)
        check_snapshot(s, dec)
        assert sn.encode_snapshot(s) == raw
    elif kind == "snapshot_signature":
        assert dec == {"signature": "BenWasHere", "ok": True}
        assert raw == sn.SNAP_SIGNATURE_BYTES
    elif kind == "truncated":
        # The direction ended mid-message: a decoder must report it, not invent a message.
        dec_ = (
            el.ElectionConnectionDecoder(initial=m["direction"] == "initiator->acceptor")
            if m["port_kind"] == "election"
            else q.QuorumStreamDecoder()
        )
        dec_.receive_data(raw)
        assert dec_.next_message() is NEED_DATA
        dec_.receive_data(b"")
        with pytest.raises(ProtocolError, match="stream ended inside a message"):
            dec_.next_message()
    else:  # pragma: no cover
        pytest.fail(f"unexpected kind {kind}")


def test_every_kind_is_covered() -> None:
    kinds = {m["kind"] for _, m in MESSAGES}
    assert {"initial", "notification", "packet", "snapshot", "snapshot_signature"} <= kinds
    types = {m["decoded"]["type"] for _, m in MESSAGES if m["kind"] == "packet"}
    assert {1, 2, 3, 4, 5, 10, 11, 12, 13, 15, 17, 18} <= types
