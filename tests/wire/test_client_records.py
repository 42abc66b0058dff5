"""Client-port records: every one round-trips, byte counts and enum values are 3.8's."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.wire import client_strategies as cs
from zkquorum.wire import client_records as cr
from zkquorum.wire.jute import ACL, Id
from zkquorum.wire.txn import OpCode

ROUND_TRIP = settings(max_examples=60, deadline=None)


def test_every_record_has_a_strategy() -> None:
    assert set(cs.REQUESTS) == {op for op, t in cr.REQUEST_RECORDS.items() if t is not None}
    assert set(cs.RESPONSES) == {op for op, t in cr.RESPONSE_RECORDS.items() if t is not None}


@pytest.mark.parametrize("op", sorted(cs.REQUESTS), ids=lambda op: OpCode(op).name)
@given(data=st.data())
@ROUND_TRIP
def test_request_bodies_round_trip(op: int, data: st.DataObject) -> None:
    record = data.draw(cs.REQUESTS[op])
    raw = record.encode()
    assert cr.decode_request_body(op, raw) == record
    assert type(record).decode(raw) == record
    assert type(record).decode(raw).encode() == raw  # null strings stay null
    # a server reads the record and ignores what follows (ByteBufferInputStream)
    if op != OpCode.DELETE_CONTAINER:
        assert cr.decode_request_body(op, raw + b"\x07") == record


@pytest.mark.parametrize("op", sorted(cs.RESPONSES), ids=lambda op: OpCode(op).name)
@given(data=st.data())
@ROUND_TRIP
def test_response_bodies_round_trip(op: int, data: st.DataObject) -> None:
    record = data.draw(cs.RESPONSES[op])
    raw = record.encode()
    assert cr.decode_response_body(op, raw) == record
    again = cr.decode_response_body(op, raw)
    assert again is not None and again.encode() == raw
    with pytest.raises(cr.ClientProtocolError, match="1 bytes after"):
        cr.decode_response_body(op, raw + b"\x07")


@given(
    st.one_of(
        cs.stats,
        cs.connect_requests,
        cs.connect_responses,
        cs.request_headers,
        cs.reply_headers,
        cs.watcher_events,
    )
)
@ROUND_TRIP
def test_fixed_records_round_trip(record: cr.Record) -> None:
    assert type(record).decode(record.encode()) == record


@given(cs.stats)
@ROUND_TRIP
def test_stat_is_68_bytes_in_jute_order(stat: cr.Stat) -> None:
    raw = stat.encode()
    assert len(raw) == cr.Stat.SIZE == 68
    assert int.from_bytes(raw[:8], "big", signed=True) == stat.czxid
    assert int.from_bytes(raw[40:44], "big", signed=True) == stat.aversion
    assert int.from_bytes(raw[44:52], "big", signed=True) == stat.ephemeral_owner
    assert int.from_bytes(raw[52:56], "big", signed=True) == stat.data_length
    assert int.from_bytes(raw[60:], "big", signed=True) == stat.pzxid


def test_handshake_sizes() -> None:
    old = cr.ConnectRequest(0, 0, 30_000, 0, bytes(16))
    assert len(old.encode()) == 44 and cr.ConnectRequest.decode(old.encode()).read_only is None
    new = cr.ConnectRequest(0, 5, 30_000, 7, bytes(16), True)
    assert len(new.encode()) == 45 and cr.ConnectRequest.decode(new.encode()) == new
    assert len(cr.ConnectResponse(0, 4000, 1, bytes(16)).encode()) == 36
    assert len(cr.ConnectResponse(0, 4000, 1, bytes(16), False).encode()) == 37
    expired = cr.ConnectResponse.expired(False)
    assert expired.encode() == bytes(4 + 4 + 8) + b"\0\0\0\x10" + bytes(16) + b"\0"


def test_multi_layouts() -> None:
    multi = cr.MultiOperationRecord(
        (
            cr.Op(OpCode.CREATE, cr.CreateRequest("/a", b"x", cr.OPEN_ACL_UNSAFE, 0)),
            cr.Op(OpCode.CHECK, cr.CheckVersionRequest("/a", 3)),
        )
    )
    raw = multi.encode()
    # each op: MultiHeader{type, false, -1}; then the terminator {-1, true, -1}
    assert raw[:9] == bytes.fromhex("00000001 00 ffffffff")
    assert raw[-9:] == bytes.fromhex("ffffffff 01 ffffffff")
    failed = cr.MultiResponse((cr.ErrorResult(0), cr.ErrorResult(-103), cr.ErrorResult(-2)))
    assert failed.encode() == bytes.fromhex(
        "ffffffff00 00000000 00000000"
        "ffffffff00 ffffff99 ffffff99"
        "ffffffff00 fffffffe fffffffe"
        "ffffffff01 ffffffff"
    )


def test_multi_rejects_an_op_3_8_does_not_take() -> None:
    bad = cr.MultiHeader(OpCode.EXISTS, False, -1).encode() + cr.ExistsRequest("/a", True).encode()
    with pytest.raises(cr.ClientProtocolError, match="invalid type of op 3"):
        cr.MultiOperationRecord.decode(bad + cr.MULTI_DONE.encode())
    with pytest.raises(cr.ClientProtocolError, match="invalid type 3 in a MultiResponse"):
        cr.MultiResponse.decode(bad)


def test_a_multi_does_not_mix_reads_and_writes() -> None:
    mixed = cr.MultiOperationRecord(
        (
            cr.Op(OpCode.DELETE, cr.DeleteRequest("/a", -1)),
            cr.Op(OpCode.GET_DATA, cr.GetDataRequest("/a", False)),
        )
    )
    with pytest.raises(cr.ClientProtocolError, match="Mixing different kind of ops"):
        cr.MultiOperationRecord.decode(mixed.encode())
    with pytest.raises(cr.ClientProtocolError, match="Mixing"):
        cr.decode_request_body(OpCode.MULTI_READ, mixed.encode())


def test_null_fields_where_3_8_allows_them() -> None:
    create = cr.CreateRequest("/a", None, None, 0)
    assert cr.CreateRequest.decode(create.encode()) == create
    # a null path is not an empty one (3.8 answers them differently)
    null_path = b"\xff\xff\xff\xff\x00\x00\x00\x00"
    delete = cr.DeleteRequest.decode(null_path)
    assert cr.is_null(delete.path) and delete.path == "" and delete.encode() == null_path
    empty = cr.DeleteRequest("", 0)
    assert not cr.is_null(empty.path) and empty.encode() == bytes(8)
    # kazoo writes the empty id of an ``auth`` ACL as null
    acl = b"\0\0\0\x01" + b"\0\0\0\x1f" + b"\0\0\0\x04auth" + b"\xff\xff\xff\xff"
    raw = b"\0\0\0\x02/a" + acl + b"\0\0\0\0"
    set_acl = cr.SetACLRequest.decode(raw)
    assert set_acl.acl == (ACL(31, Id("auth", "")),) and set_acl.encode() == raw
    # null elements of a list too; a null list does not decode
    children = b"\0\0\0\x02" + b"\0\0\0\x01a" + b"\xff\xff\xff\xff"
    reply = cr.GetChildrenResponse.decode(children)
    assert [cr.is_null(c) for c in reply.children] == [False, True]
    assert reply.encode() == children
    with pytest.raises(cr.ClientProtocolError, match="children is null"):
        cr.GetChildrenResponse.decode(b"\xff\xff\xff\xff")
    assert cr.is_null(None) and not cr.is_null("")


def test_strings_that_are_not_utf8_decode_as_java_does() -> None:
    assert cr.GetDataRequest.decode(b"\0\0\0\x03/\xff\xfe\x00").path == "/\ufffd\ufffd"


def test_error_codes_are_keeper_exception_codes() -> None:
    assert len(cr.ErrorCode) == 32
    assert cr.ErrorCode.NONODE == -101 and cr.ErrorCode.THROTTLEDOP == -127
    assert cr.ErrorCode.SESSIONEXPIRED == cr.KeeperState.EXPIRED == -112


def test_create_mode_helpers() -> None:
    table = {
        # mode: (ephemeral, sequential, container, ttl)
        0: (False, False, False, False),
        1: (True, False, False, False),
        2: (False, True, False, False),
        3: (True, True, False, False),
        4: (False, False, True, False),
        5: (False, False, False, True),
        6: (False, True, False, True),
    }
    for flag, expected in table.items():
        mode = cr.CreateMode.from_flag(flag)
        assert mode is not None
        assert (mode.is_ephemeral, mode.is_sequential, mode.is_container, mode.is_ttl) == expected
    assert cr.CreateMode.from_flag(7) is None and cr.CreateMode.from_flag(-1) is None


def test_other_enums_and_xids() -> None:
    assert (
        cr.Perms.ALL
        == 31
        == cr.Perms.READ | cr.Perms.WRITE | cr.Perms.CREATE | cr.Perms.DELETE | cr.Perms.ADMIN
    )
    assert (cr.WatcherType.CHILDREN, cr.WatcherType.DATA, cr.WatcherType.ANY) == (1, 2, 3)
    assert (cr.AddWatchMode.PERSISTENT, cr.AddWatchMode.PERSISTENT_RECURSIVE) == (0, 1)
    assert cr.EventType.PERSISTENT_WATCH_REMOVED == 7 and cr.EventType.NONE == -1
    assert cr.KeeperState.SYNC_CONNECTED == 3 and cr.KeeperState.CLOSED == 7
    xids = (cr.NOTIFICATION_XID, cr.PING_XID, cr.AUTHPACKET_XID, cr.SET_WATCHES_XID)
    assert xids == (-1, -2, -4, -8)


def test_ops_a_client_may_send() -> None:
    assert cr.is_valid_request_op(OpCode.CREATE) and cr.is_valid_request_op(OpCode.AUTH)
    assert cr.is_valid_request_op(OpCode.WHO_AM_I) and cr.is_valid_request_op(OpCode.PING)
    assert cr.is_valid_request_op(OpCode.CHECK)  # in 3.8.0 (see test_client_interop)
    # Request#isValid says no to these: UNIMPLEMENTED, then the connection is closed
    for op in (OpCode.NOTIFICATION, OpCode.ERROR, 10, 23, 999):
        assert not cr.is_valid_request_op(op)
    assert cr.decode_request_body(999, b"junk") is None


def test_encoding_a_value_that_does_not_fit_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Java"):
        cr.Stat(version=2**31).encode()
    with pytest.raises(ValueError, match="Java"):
        cr.ReplyHeader(1, 2**63, 0).encode()
