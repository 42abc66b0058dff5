"""Transactions as a learner reads them in PROPOSAL, INFORM and DIFF (``SerializeUtils``).

A serialized txn is ``TxnHeader {long clientId; int cxid; long zxid; long time; int type}``
(32 bytes), then the record for ``type`` (module ``org.apache.zookeeper.txn`` of
``zookeeper.jute``), then, when the leader computes digests (the default), ``TxnDigest
{int version; long treeDigest}``.  ErrorTxn proposals carry no digest.

Decisions: a record that does not parse (an unknown type, a pre-3.5 ``CreateTxnV0``, an
old ``closeSession`` without body, a null path...) becomes :class:`RawRecord` with every
byte after the header, never an error; bytes left after the digest are kept in
``Txn.trailing`` (3.8 ignores them) so that every txn re-encodes to the same bytes.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from zkquorum.wire.errors import QuorumProtocolError
from zkquorum.wire.jute import (
    ACL,
    encode_acl_list,
    encode_bool,
    encode_buffer,
    encode_ustring,
    encode_vector,
    read_acl_list,
    read_bool,
    read_buffer,
    read_string,
    read_vector,
)
from zkquorum.wire.reader import NeedData, Reader, pack_int, pack_long
from zkquorum.wire.records import fast_init


class OpCode(enum.IntEnum):
    """``ZooDefs.OpCode`` (the values that occur as request and txn types)."""

    NOTIFICATION = 0
    CREATE = 1
    DELETE = 2
    EXISTS = 3
    GET_DATA = 4
    SET_DATA = 5
    GET_ACL = 6
    SET_ACL = 7
    GET_CHILDREN = 8
    SYNC = 9
    PING = 11
    GET_CHILDREN2 = 12
    CHECK = 13
    MULTI = 14
    CREATE2 = 15
    RECONFIG = 16
    CHECK_WATCHES = 17
    REMOVE_WATCHES = 18
    CREATE_CONTAINER = 19
    DELETE_CONTAINER = 20
    CREATE_TTL = 21
    MULTI_READ = 22
    AUTH = 100
    SET_WATCHES = 101
    SASL = 102
    GET_EPHEMERALS = 103
    GET_ALL_CHILDREN_NUMBER = 104
    SET_WATCHES2 = 105
    ADD_WATCH = 106
    WHO_AM_I = 107
    CREATE_SESSION = -10
    CLOSE_SESSION = -11
    ERROR = -1


_JAVA_NAMES: Final = {
    OpCode.GET_DATA: "getData",
    OpCode.SET_DATA: "setData",
    OpCode.GET_ACL: "getACL",
    OpCode.SET_ACL: "setACL",
    OpCode.GET_CHILDREN: "getChildren",
    OpCode.GET_CHILDREN2: "getChildren2",
    OpCode.CREATE2: "create2",
    OpCode.CHECK_WATCHES: "checkWatches",
    OpCode.REMOVE_WATCHES: "removeWatches",
    OpCode.CREATE_CONTAINER: "createContainer",
    OpCode.DELETE_CONTAINER: "deleteContainer",
    OpCode.CREATE_TTL: "createTTL",
    OpCode.MULTI_READ: "multiRead",
    OpCode.SET_WATCHES: "setWatches",
    OpCode.GET_EPHEMERALS: "getEphemerals",
    OpCode.GET_ALL_CHILDREN_NUMBER: "getAllChildrenNumber",
    OpCode.SET_WATCHES2: "setWatches2",
    OpCode.ADD_WATCH: "addWatch",
    OpCode.WHO_AM_I: "whoAmI",
    OpCode.CREATE_SESSION: "createSession",
    OpCode.CLOSE_SESSION: "closeSession",
}


def op_name(op: int) -> str:
    """ZooKeeper's camelCase name of an opcode (``createSession``), or the number."""
    try:
        code = OpCode(op)
    except ValueError:
        return str(op)
    return _JAVA_NAMES.get(code, code.name.lower())


@fast_init
@dataclass(frozen=True, slots=True)
class TxnHeader:
    client_id: int
    cxid: int
    zxid: int
    time: int
    type: int


@fast_init
@dataclass(frozen=True, slots=True)
class TxnDigest:
    version: int
    tree_digest: int


@fast_init
@dataclass(frozen=True, slots=True)
class CreateTxn:
    """create and create2 (``ephemeral`` is the old flag; sequential is in the path)."""

    path: str
    data: bytes | None
    acl: tuple[ACL, ...] | None
    ephemeral: bool
    parent_cversion: int


@fast_init
@dataclass(frozen=True, slots=True)
class CreateTTLTxn:
    path: str
    data: bytes | None
    acl: tuple[ACL, ...] | None
    parent_cversion: int
    ttl: int


@fast_init
@dataclass(frozen=True, slots=True)
class CreateContainerTxn:
    path: str
    data: bytes | None
    acl: tuple[ACL, ...] | None
    parent_cversion: int


@fast_init
@dataclass(frozen=True, slots=True)
class DeleteTxn:
    """delete and deleteContainer."""

    path: str


@fast_init
@dataclass(frozen=True, slots=True)
class SetDataTxn:
    """setData, and reconfig (whose data is the new config text)."""

    path: str
    data: bytes | None
    version: int


@fast_init
@dataclass(frozen=True, slots=True)
class CheckVersionTxn:
    path: str
    version: int


@fast_init
@dataclass(frozen=True, slots=True)
class SetACLTxn:
    path: str
    acl: tuple[ACL, ...] | None
    version: int


@fast_init
@dataclass(frozen=True, slots=True)
class CreateSessionTxn:
    timeout: int


@fast_init
@dataclass(frozen=True, slots=True)
class CloseSessionTxn:
    paths_to_delete: tuple[str, ...] | None


@fast_init
@dataclass(frozen=True, slots=True)
class ErrorTxn:
    err: int


@fast_init
@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record this codec does not interpret: its bytes, unchanged."""

    data: bytes


@fast_init
@dataclass(frozen=True, slots=True)
class MultiOp:
    """One ``Txn {int type; buffer data}`` of a MultiTxn, ``data`` decoded by type.

    ``record`` is ``None`` when the buffer was null.
    """

    type: int
    record: TxnRecord | None


@fast_init
@dataclass(frozen=True, slots=True)
class MultiTxn:
    ops: tuple[MultiOp, ...] | None


TxnRecord = (
    CreateTxn
    | CreateTTLTxn
    | CreateContainerTxn
    | DeleteTxn
    | SetDataTxn
    | CheckVersionTxn
    | SetACLTxn
    | CreateSessionTxn
    | CloseSessionTxn
    | ErrorTxn
    | MultiTxn
    | RawRecord
)


@fast_init
@dataclass(frozen=True, slots=True)
class Txn:
    """A whole serialized txn.  ``record`` is ``None`` only for an empty body."""

    header: TxnHeader
    record: TxnRecord | None
    digest: TxnDigest | None = None
    trailing: bytes = b""
    raw: bytes | None = field(default=None, compare=False, repr=False)
    """The txn's bytes when they are known (read from a packet or a log, or encoded
    once): :func:`encode_txn` returns them instead of encoding the fields again.  Not
    part of equality; a txn made with other fields must not carry them."""


# -- records by type ---------------------------------------------------------------------


def _read_paths(r: Reader) -> str:
    return read_string(r, "path")


def _r_create(r: Reader) -> CreateTxn:
    path = read_string(r, "path")
    data = read_buffer(r)
    acl = read_acl_list(r)
    return CreateTxn(path, data, acl, read_bool(r), r.int32())


def _r_create_ttl(r: Reader) -> CreateTTLTxn:
    path = read_string(r, "path")
    data = read_buffer(r)
    acl = read_acl_list(r)
    parent_cversion = r.int32()
    return CreateTTLTxn(path, data, acl, parent_cversion, r.int64())


def _r_create_container(r: Reader) -> CreateContainerTxn:
    path = read_string(r, "path")
    data = read_buffer(r)
    return CreateContainerTxn(path, data, read_acl_list(r), r.int32())


def _r_delete(r: Reader) -> DeleteTxn:
    return DeleteTxn(read_string(r, "path"))


def _r_set_data(r: Reader) -> SetDataTxn:
    path = read_string(r, "path")
    data = read_buffer(r)
    return SetDataTxn(path, data, r.int32())


def _r_check(r: Reader) -> CheckVersionTxn:
    path = read_string(r, "path")
    return CheckVersionTxn(path, r.int32())


def _r_set_acl(r: Reader) -> SetACLTxn:
    path = read_string(r, "path")
    acl = read_acl_list(r)
    return SetACLTxn(path, acl, r.int32())


def _r_create_session(r: Reader) -> CreateSessionTxn:
    return CreateSessionTxn(r.int32())


def _r_close_session(r: Reader) -> CloseSessionTxn:
    return CloseSessionTxn(read_vector(r, _read_paths))


def _r_error(r: Reader) -> ErrorTxn:
    return ErrorTxn(r.int32())


def _r_multi_op(r: Reader) -> MultiOp:
    op = r.int32()
    data = read_buffer(r)
    if data is None:
        return MultiOp(op, None)
    return MultiOp(op, _decode_body(op, data, _MULTI_READERS))


def _r_multi(r: Reader) -> MultiTxn:
    return MultiTxn(read_vector(r, _r_multi_op))


_READERS: Final[dict[int, Callable[[Reader], TxnRecord]]] = {
    OpCode.CREATE_SESSION: _r_create_session,
    OpCode.CLOSE_SESSION: _r_close_session,
    OpCode.CREATE: _r_create,
    OpCode.CREATE2: _r_create,
    OpCode.CREATE_TTL: _r_create_ttl,
    OpCode.CREATE_CONTAINER: _r_create_container,
    OpCode.DELETE: _r_delete,
    OpCode.DELETE_CONTAINER: _r_delete,
    OpCode.RECONFIG: _r_set_data,
    OpCode.SET_DATA: _r_set_data,
    OpCode.SET_ACL: _r_set_acl,
    OpCode.ERROR: _r_error,
    OpCode.MULTI: _r_multi,
}
# Inside a MultiTxn (DataTree#processTxn): check appears, multi/session types do not.
_MULTI_READERS: Final[dict[int, Callable[[Reader], TxnRecord]]] = {
    OpCode.CREATE: _r_create,
    OpCode.CREATE2: _r_create,
    OpCode.CREATE_TTL: _r_create_ttl,
    OpCode.CREATE_CONTAINER: _r_create_container,
    OpCode.DELETE: _r_delete,
    OpCode.DELETE_CONTAINER: _r_delete,
    OpCode.SET_DATA: _r_set_data,
    OpCode.CHECK: _r_check,
    OpCode.ERROR: _r_error,
}


_Readers = dict[int, Callable[[Reader], "TxnRecord"]]


def _decode_body(op: int, body: bytes, readers: _Readers) -> TxnRecord:
    """A multi-op body: the whole buffer must be the record, else it stays raw."""
    reader = readers.get(op)
    if reader is not None:
        r = Reader(body, QuorumProtocolError)
        try:
            record = reader(r)
        except (NeedData, QuorumProtocolError):
            pass
        else:
            if r.remaining == 0:
                return record
    return RawRecord(body)


def decode_txn(data: bytes) -> Txn:
    """Decode a PROPOSAL / INFORM payload.  Only a header shorter than 32 bytes fails."""
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) < _HEADER.size:
        raise QuorumProtocolError(
            f"txn of {len(data)} bytes is shorter than its 32-byte header", len(data)
        )
    header = TxnHeader(*_HEADER.unpack_from(data))
    r = Reader(data, QuorumProtocolError, pos=_HEADER.size)
    if r.remaining == 0:
        return Txn(header, None, raw=data)
    start = r.pos
    record: TxnRecord
    reader = _READERS.get(header.type)
    try:
        if reader is None:
            raise NeedData(0)
        record = reader(r)
    except (NeedData, QuorumProtocolError):
        return Txn(header, RawRecord(data[start:]), raw=data)
    digest = None
    if r.remaining >= 12:
        digest = TxnDigest(*_DIGEST.unpack_from(data, r.pos))
        r.pos += 12
    return Txn(header, record, digest, data[r.pos :], data)


_HEADER: Final = struct.Struct(">qiqqi")
"""``TxnHeader``: clientId, cxid, zxid, time, type."""
_DIGEST: Final = struct.Struct(">iq")


# -- encoding ----------------------------------------------------------------------------


def encode_txn_record(record: TxnRecord) -> bytes:
    match record:
        case CreateTxn(path, data, acl, ephemeral, parent_cversion):
            return b"".join(
                (
                    encode_ustring(path),
                    encode_buffer(data),
                    encode_acl_list(acl),
                    encode_bool(ephemeral),
                    pack_int(parent_cversion),
                )
            )
        case CreateTTLTxn(path, data, acl, parent_cversion, ttl):
            return b"".join(
                (
                    encode_ustring(path),
                    encode_buffer(data),
                    encode_acl_list(acl),
                    pack_int(parent_cversion),
                    pack_long(ttl),
                )
            )
        case CreateContainerTxn(path, data, acl, parent_cversion):
            return b"".join(
                (
                    encode_ustring(path),
                    encode_buffer(data),
                    encode_acl_list(acl),
                    pack_int(parent_cversion),
                )
            )
        case DeleteTxn(path):
            return encode_ustring(path)
        case SetDataTxn(path, data, version):
            return encode_ustring(path) + encode_buffer(data) + pack_int(version)
        case CheckVersionTxn(path, version):
            return encode_ustring(path) + pack_int(version)
        case SetACLTxn(path, acl, version):
            return encode_ustring(path) + encode_acl_list(acl) + pack_int(version)
        case CreateSessionTxn(timeout):
            return pack_int(timeout)
        case CloseSessionTxn(paths):
            return encode_vector(paths, encode_ustring)
        case ErrorTxn(err):
            return pack_int(err)
        case MultiTxn(ops):
            return encode_vector(ops, _encode_multi_op)
        case RawRecord(data):
            return bytes(data)
    raise ValueError(f"not a txn record: {record!r}")  # pragma: no cover


def _encode_multi_op(op: MultiOp) -> bytes:
    body = None if op.record is None else encode_txn_record(op.record)
    return pack_int(op.type) + encode_buffer(body)


def encode_txn(txn: Txn) -> bytes:
    if txn.raw is not None:
        return txn.raw
    h = txn.header
    parts = [
        pack_long(h.client_id),
        pack_int(h.cxid),
        pack_long(h.zxid),
        pack_long(h.time),
        pack_int(h.type),
    ]
    if txn.record is not None:
        parts.append(encode_txn_record(txn.record))
    if txn.digest is not None:
        parts.append(pack_int(txn.digest.version) + pack_long(txn.digest.tree_digest))
    parts.append(txn.trailing)
    return b"".join(parts)
