"""The client port's records and constants (``org.apache.zookeeper.proto`` of 3.8's jute file).

Facts: ``docs/spec/zk-server.md`` §2.1-2.7 (the op table is §2.2).  Every record is a frozen
slotted dataclass with ``encode()`` (its jute bytes, no frame) and the class methods
``read(reader)`` and ``decode(data)`` (exactly one record, nothing after it).  Which record
a request or a reply body holds depends on the op code: :func:`decode_request_body` and
:func:`decode_response_body` pick it (the tables :data:`REQUEST_RECORDS` and
:data:`RESPONSE_RECORDS`).  Framing and the connection state machines are in
:mod:`zkquorum.wire.client`.

Decisions, where 3.8 is looser than a Python type:

* Paths, schemes, ids and other strings are ``str``; a null one reads as
  :data:`NULL_STRING` (a ``str`` equal to ``""`` that :func:`is_null` recognises and that
  encodes as null again), because 3.8 answers a null path differently from an empty
  one and kazoo writes every empty string as null (``make_acl("auth", "")`` arrives as
  ``Id("auth", null)``).  What ZooKeeper 3.8.0 answered to a null path, measured
  (``tests/wire/test_client_interop.py``): MARSHALLINGERROR for create, delete, exists,
  getData, getChildren(2), getACL, getAllChildrenNumber, checkWatches and a create in a
  multi; BADARGUMENTS for setData and setACL; NOWATCHER for removeWatches; success for
  sync (the reply echoes the null), addWatch and getEphemerals.
* Watch and child lists are ``tuple[str, ...]``; a null list does not decode
  (:class:`ClientProtocolError`).  ACL lists, data and tokens keep ``None``, because
  3.8 gives a null ACL list its own meaning (INVALIDACL,
  ``PrepRequestProcessor#fixupACL``).
* Strings that are not UTF-8 decode with U+FFFD replacements, as Java's ``new String(b,
  UTF_8)`` in ``BinaryInputArchive#readString`` does, so that such a path gets the same
  answer as from 3.8 rather than a marshalling error.
* :func:`decode_request_body` ignores bytes after the record, as
  ``ByteBufferInputStream#byteBuffer2Record`` does; the one-shot ``decode`` class methods
  reject them.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Final, Self, TypeVar

from zkquorum.wire.errors import ProtocolError
from zkquorum.wire.jute import (
    ACL,
    MAX_BUFFER,
    Id,
    decode_ustring_bytes,
    encode_bool,
    encode_buffer,
    encode_ustring,
    encode_vector,
    read_bool,
    read_buffer,
    read_vector,
)
from zkquorum.wire.reader import NeedData, Reader, decode_exactly, pack_int, pack_long
from zkquorum.wire.records import fast_init
from zkquorum.wire.txn import OpCode

T = TypeVar("T")


class ClientProtocolError(ProtocolError):
    """Bad bytes on the client port: 3.8 closes that one connection."""


# -- constants ---------------------------------------------------------------------------

NOTIFICATION_XID: Final = -1
"""A watch notification (server -> client): ``ReplyHeader{-1, -1, 0}`` + WatcherEvent."""
PING_XID: Final = -2
"""A ping and its reply (``ClientCnxn.PING_XID``)."""
AUTHPACKET_XID: Final = -4
"""An ``auth`` request and its reply."""
SET_WATCHES_XID: Final = -8
"""setWatches / setWatches2 sent by ``ClientCnxn#primeConnection`` on reconnect."""

CONFIG_NODE: Final = "/zookeeper/config"
"""``ZooDefs.CONFIG_NODE``: what ``getConfig`` reads and ``reconfig`` writes."""
CONTAINER_EPHEMERAL_OWNER: Final = -0x8000000000000000
"""``EphemeralType.CONTAINER_EPHEMERAL_OWNER``: a container node's stored ephemeralOwner."""


class ErrorCode(enum.IntEnum):
    """``KeeperException.Code`` of 3.8, every value (the ``err`` of a ReplyHeader)."""

    OK = 0
    SYSTEMERROR = -1
    RUNTIMEINCONSISTENCY = -2
    DATAINCONSISTENCY = -3
    CONNECTIONLOSS = -4
    MARSHALLINGERROR = -5
    UNIMPLEMENTED = -6
    OPERATIONTIMEOUT = -7
    BADARGUMENTS = -8
    UNKNOWNSESSION = -12
    NEWCONFIGNOQUORUM = -13
    RECONFIGINPROGRESS = -14
    APIERROR = -100
    NONODE = -101
    NOAUTH = -102
    BADVERSION = -103
    NOCHILDRENFOREPHEMERALS = -108
    NODEEXISTS = -110
    NOTEMPTY = -111
    SESSIONEXPIRED = -112
    INVALIDCALLBACK = -113
    INVALIDACL = -114
    AUTHFAILED = -115
    SESSIONMOVED = -118
    NOTREADONLY = -119
    EPHEMERALONLOCALSESSION = -120
    NOWATCHER = -121
    REQUESTTIMEOUT = -122
    RECONFIGDISABLED = -123
    SESSIONCLOSEDREQUIRESASLAUTH = -124
    QUOTAEXCEEDED = -125
    THROTTLEDOP = -127


class EventType(enum.IntEnum):
    """``Watcher.Event.EventType``."""

    NONE = -1
    NODE_CREATED = 1
    NODE_DELETED = 2
    NODE_DATA_CHANGED = 3
    NODE_CHILDREN_CHANGED = 4
    DATA_WATCH_REMOVED = 5
    CHILD_WATCH_REMOVED = 6
    PERSISTENT_WATCH_REMOVED = 7


class KeeperState(enum.IntEnum):
    """``Watcher.Event.KeeperState`` (a server sends SYNC_CONNECTED in notifications)."""

    UNKNOWN = -1
    DISCONNECTED = 0
    NO_SYNC_CONNECTED = 1
    SYNC_CONNECTED = 3
    AUTH_FAILED = 4
    CONNECTED_READ_ONLY = 5
    SASL_AUTHENTICATED = 6
    EXPIRED = -112
    CLOSED = 7


class WatcherType(enum.IntEnum):
    """``Watcher.WatcherType``: the ``type`` of checkWatches and removeWatches."""

    CHILDREN = 1
    DATA = 2
    ANY = 3


class AddWatchMode(enum.IntEnum):
    """``AddWatchMode`` / ``ZooDefs.AddWatchModes``: the ``mode`` of addWatch."""

    PERSISTENT = 0
    PERSISTENT_RECURSIVE = 1


class CreateMode(enum.IntEnum):
    """``CreateMode``: the ``flags`` of a create request.

    ``CreateMode.fromFlag`` rejects any other value with BADARGUMENTS; see
    :meth:`from_flag`.
    """

    PERSISTENT = 0
    EPHEMERAL = 1
    PERSISTENT_SEQUENTIAL = 2
    EPHEMERAL_SEQUENTIAL = 3
    CONTAINER = 4
    PERSISTENT_WITH_TTL = 5
    PERSISTENT_SEQUENTIAL_WITH_TTL = 6

    @classmethod
    def from_flag(cls, flag: int) -> CreateMode | None:
        """The mode of a request's flags, or ``None`` (3.8 answers BADARGUMENTS)."""
        return _CREATE_MODES.get(flag)

    @property
    def is_ephemeral(self) -> bool:
        return self in (CreateMode.EPHEMERAL, CreateMode.EPHEMERAL_SEQUENTIAL)

    @property
    def is_sequential(self) -> bool:
        return self in (
            CreateMode.PERSISTENT_SEQUENTIAL,
            CreateMode.EPHEMERAL_SEQUENTIAL,
            CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL,
        )

    @property
    def is_container(self) -> bool:
        return self is CreateMode.CONTAINER

    @property
    def is_ttl(self) -> bool:
        return self in (CreateMode.PERSISTENT_WITH_TTL, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)


_CREATE_MODES: Final = MappingProxyType({m.value: m for m in CreateMode})


class Perms(enum.IntFlag):
    """``ZooDefs.Perms``: the bits of ``ACL.perms``."""

    READ = 1
    WRITE = 2
    CREATE = 4
    DELETE = 8
    ADMIN = 16
    ALL = 31


ANYONE_ID_UNSAFE: Final = Id("world", "anyone")
AUTH_IDS: Final = Id("auth", "")
"""``ZooDefs.Ids.AUTH_IDS``: in an ACL, stands for the creator's authenticated ids."""
OPEN_ACL_UNSAFE: Final = (ACL(int(Perms.ALL), ANYONE_ID_UNSAFE),)
CREATOR_ALL_ACL: Final = (ACL(int(Perms.ALL), AUTH_IDS),)
READ_ACL_UNSAFE: Final = (ACL(int(Perms.READ), ANYONE_ID_UNSAFE),)


# -- reading helpers ---------------------------------------------------------------------

_STAT: Final = struct.Struct(">qqqqiiiqiiq")
_REPLY_HEADER: Final = struct.Struct(">iqi")
_REQUEST_HEADER: Final = struct.Struct(">ii")


def _opt_text(r: Reader, what: str) -> str | None:
    at = r.pos
    n = r.int32()
    if n == -1:
        return None
    if n < -1 or n > MAX_BUFFER:
        r.fail(f"unreasonable {what} length {n}", at)
    raw = r.take(n)
    if raw.isascii():
        return raw.decode("ascii")
    try:
        return decode_ustring_bytes(raw)
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace")


class NullString(str):
    """A jute string that was null on the wire: equal to ``""``, but encodes as null.

    3.8 tells a null path from an empty one (``docs/spec/zk-server.md`` §2.2; e.g. getData
    of ``""`` reads ``/``, of null answers MARSHALLINGERROR; sync of null echoes it), and
    kazoo writes every empty string as null.  Keeping the difference in a ``str`` lets the
    server answer as 3.8 does and every record re-encode to the bytes it came from.  Test
    with :func:`is_null`.
    """

    __slots__ = ()


NULL_STRING: Final = NullString()
_NULL_LENGTH: Final = b"\xff\xff\xff\xff"


def is_null(value: str | None) -> bool:
    """Whether ``value`` was (or will be encoded as) a null jute string."""
    return value is None or value.__class__ is NullString


def _encode_text(value: str | None) -> bytes:
    return _NULL_LENGTH if is_null(value) else encode_ustring(value)


def _text(r: Reader, what: str) -> str:
    """A ustring field; null reads as :data:`NULL_STRING`."""
    s = _opt_text(r, what)
    return NULL_STRING if s is None else s


def _vector(r: Reader, what: str, element: Callable[[Reader], T]) -> tuple[T, ...]:
    """A vector that must not be null."""
    at = r.pos
    n = r.int32()
    if n == -1:
        r.fail(f"{what} is null", at)
    if n < -1 or n > MAX_BUFFER:
        r.fail(f"unreasonable {what} length {n}", at)
    return tuple([element(r) for _ in range(n)])


def _text_list(r: Reader, what: str) -> tuple[str, ...]:
    return _vector(r, what, lambda r: _text(r, what))


def _read_id(r: Reader) -> Id:
    # kazoo writes the id of make_acl("auth", "") as null; 3.8 ignores an auth id.
    scheme = _text(r, "Id.scheme")
    return Id(scheme, _text(r, "Id.id"))


def _read_acl(r: Reader) -> ACL:
    perms = r.int32()
    return ACL(perms, _read_id(r))


def _read_acl_list(r: Reader) -> tuple[ACL, ...] | None:
    return read_vector(r, _read_acl)


def _encode_text_list(items: tuple[str, ...]) -> bytes:
    return encode_vector(items, _encode_text)


def _encode_acl(acl: ACL) -> bytes:
    return pack_int(acl.perms) + _encode_text(acl.id.scheme) + _encode_text(acl.id.id)


def _encode_acl_list(acl: tuple[ACL, ...] | None) -> bytes:
    return encode_vector(acl, _encode_acl)


def _pack(s: struct.Struct, *values: int) -> bytes:
    try:
        return s.pack(*values)
    except struct.error as exc:
        raise ValueError(f"a field does not fit its Java type: {exc}") from None


class Record:
    """What every client record has: ``encode()``, ``read(r)``, ``decode(data)``."""

    __slots__ = ()

    def encode(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def read(cls, r: Reader) -> Self:
        raise NotImplementedError

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Exactly one record: trailing bytes are an error here."""
        return decode_exactly(data, cls.read, ClientProtocolError, cls.__name__)


R = TypeVar("R", bound=Record)


# -- session establishment ---------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class ConnectRequest(Record):
    """The first frame of a client: 44 bytes with a 16-byte password, 45 with ``readOnly``.

    In 3.8 ``readOnly`` is not a jute field: ``ZooKeeperServer#processConnectRequest``
    tries to read one more boolean and treats its absence as an old client, which then
    gets a ConnectResponse without the byte.  ``read_only is None`` records that absence.
    """

    protocol_version: int
    last_zxid_seen: int
    timeout: int
    session_id: int
    passwd: bytes | None
    read_only: bool | None = None

    def encode(self) -> bytes:
        out = (
            pack_int(self.protocol_version)
            + pack_long(self.last_zxid_seen)
            + pack_int(self.timeout)
            + pack_long(self.session_id)
            + encode_buffer(self.passwd)
        )
        return out if self.read_only is None else out + encode_bool(self.read_only)

    @classmethod
    def read(cls, r: Reader) -> Self:
        version, last_zxid, timeout = r.int32(), r.int64(), r.int32()
        session_id, passwd = r.int64(), read_buffer(r)
        read_only = read_bool(r) if r.remaining else None
        return cls(version, last_zxid, timeout, session_id, passwd, read_only)


@fast_init
@dataclass(frozen=True, slots=True)
class ConnectResponse(Record):
    """The server's answer: 36 bytes, 37 with ``readOnly`` (absent for an old client).

    A refused re-attach (unknown or expired session, wrong password) is ``timeOut 0,
    sessionId 0`` and 16 zero bytes (``ZooKeeperServer#finishSessionInit``): see
    :meth:`expired`.
    """

    protocol_version: int
    timeout: int
    session_id: int
    passwd: bytes | None
    read_only: bool | None = None

    @classmethod
    def expired(cls, read_only: bool | None) -> ConnectResponse:
        """What a client reads as "session expired" before the server closes."""
        return cls(0, 0, 0, bytes(16), read_only)

    def encode(self) -> bytes:
        out = (
            pack_int(self.protocol_version)
            + pack_int(self.timeout)
            + pack_long(self.session_id)
            + encode_buffer(self.passwd)
        )
        return out if self.read_only is None else out + encode_bool(self.read_only)

    @classmethod
    def read(cls, r: Reader) -> Self:
        version, timeout, session_id = r.int32(), r.int32(), r.int64()
        passwd = read_buffer(r)
        read_only = read_bool(r) if r.remaining else None
        return cls(version, timeout, session_id, passwd, read_only)


# -- headers -----------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class RequestHeader(Record):
    """``RequestHeader{int xid; int type}``: the first 8 bytes of every request frame."""

    xid: int
    type: int

    def encode(self) -> bytes:
        return _pack(_REQUEST_HEADER, self.xid, self.type)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.int32(), r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class ReplyHeader(Record):
    """``ReplyHeader{int xid; long zxid; int err}``: the first 16 bytes of every reply.

    ``zxid`` is the server's last processed zxid when it answered (-1 in notifications).
    """

    xid: int
    zxid: int
    err: int

    def encode(self) -> bytes:
        return _pack(_REPLY_HEADER, self.xid, self.zxid, self.err)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.int32(), r.int64(), r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class MultiHeader(Record):
    """``MultiHeader{int type; boolean done; int err}``: before each op of a multi."""

    type: int
    done: bool
    err: int

    def encode(self) -> bytes:
        return pack_int(self.type) + encode_bool(self.done) + pack_int(self.err)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.int32(), read_bool(r), r.int32())


MULTI_DONE: Final = MultiHeader(-1, True, -1)
"""The terminator of a MultiOperationRecord and of a MultiResponse."""


# -- data records ------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class Stat(Record):
    """The client's ``Stat`` (68 bytes), in jute order.

    ``cversion`` is the client-visible value (``DataNode#copyStat``: stored creates x 2
    minus children) and ``ephemeral_owner`` is 0 for containers and TTL nodes; see
    ``docs/spec/zk-server.md`` §2.6.
    """

    czxid: int = 0
    mzxid: int = 0
    ctime: int = 0
    mtime: int = 0
    version: int = 0
    cversion: int = 0
    aversion: int = 0
    ephemeral_owner: int = 0
    data_length: int = 0
    num_children: int = 0
    pzxid: int = 0

    SIZE: ClassVar[int] = 68

    def encode(self) -> bytes:
        return _pack(
            _STAT,
            self.czxid,
            self.mzxid,
            self.ctime,
            self.mtime,
            self.version,
            self.cversion,
            self.aversion,
            self.ephemeral_owner,
            self.data_length,
            self.num_children,
            self.pzxid,
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(*_STAT.unpack(r.take(68)))


@fast_init
@dataclass(frozen=True, slots=True)
class ClientInfo(Record):
    """``ClientInfo{authScheme, user}``: one entry of a whoAmI reply."""

    auth_scheme: str
    user: str

    def encode(self) -> bytes:
        return _encode_text(self.auth_scheme) + _encode_text(self.user)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "authScheme"), _text(r, "user"))


@fast_init
@dataclass(frozen=True, slots=True)
class WatcherEvent(Record):
    """``WatcherEvent{int type; int state; ustring path}``: a notification's body."""

    type: int
    state: int
    path: str

    def encode(self) -> bytes:
        return pack_int(self.type) + pack_int(self.state) + _encode_text(self.path)

    @classmethod
    def read(cls, r: Reader) -> Self:
        etype, state = r.int32(), r.int32()
        return cls(etype, state, _text(r, "path"))


# -- requests ----------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class CreateRequest(Record):
    """create (1), create2 (15), createContainer (19); ``flags`` is a :class:`CreateMode`."""

    path: str
    data: bytes | None
    acl: tuple[ACL, ...] | None
    flags: int

    def encode(self) -> bytes:
        return (
            _encode_text(self.path)
            + encode_buffer(self.data)
            + _encode_acl_list(self.acl)
            + pack_int(self.flags)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        path, data, acl = _text(r, "path"), read_buffer(r), _read_acl_list(r)
        return cls(path, data, acl, r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class CreateTTLRequest(Record):
    """createTTL (21): a CreateRequest with ``long ttl`` (ms) after the flags."""

    path: str
    data: bytes | None
    acl: tuple[ACL, ...] | None
    flags: int
    ttl: int

    def encode(self) -> bytes:
        return (
            _encode_text(self.path)
            + encode_buffer(self.data)
            + _encode_acl_list(self.acl)
            + pack_int(self.flags)
            + pack_long(self.ttl)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        path, data, acl = _text(r, "path"), read_buffer(r), _read_acl_list(r)
        flags = r.int32()
        return cls(path, data, acl, flags, r.int64())


@fast_init
@dataclass(frozen=True, slots=True)
class DeleteRequest(Record):
    """delete (2); ``version`` -1 matches any."""

    path: str
    version: int

    def encode(self) -> bytes:
        return _encode_text(self.path) + pack_int(self.version)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"), r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class DeleteContainerRequest(Record):
    """deleteContainer (20): the body is the path's UTF-8 bytes, no length prefix.

    The leader's ContainerManager submits it (``PrepRequestProcessor`` reads
    ``new String(request.request.array())``); ``Request#isValid`` also lets a client send
    it.
    """

    path: str

    def encode(self) -> bytes:
        return self.path.encode("utf-8", "surrogatepass")

    @classmethod
    def read(cls, r: Reader) -> Self:
        raw = r.take(r.remaining)
        return cls(raw.decode("utf-8", "replace"))


@fast_init
@dataclass(frozen=True, slots=True)
class ExistsRequest(Record):
    """exists (3)."""

    path: str
    watch: bool

    def encode(self) -> bytes:
        return _encode_text(self.path) + encode_bool(self.watch)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"), read_bool(r))


@fast_init
@dataclass(frozen=True, slots=True)
class GetDataRequest(Record):
    """getData (4), and inside multiRead."""

    path: str
    watch: bool

    def encode(self) -> bytes:
        return _encode_text(self.path) + encode_bool(self.watch)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"), read_bool(r))


@fast_init
@dataclass(frozen=True, slots=True)
class SetDataRequest(Record):
    """setData (5); ``version`` -1 matches any."""

    path: str
    data: bytes | None
    version: int

    def encode(self) -> bytes:
        return _encode_text(self.path) + encode_buffer(self.data) + pack_int(self.version)

    @classmethod
    def read(cls, r: Reader) -> Self:
        path, data = _text(r, "path"), read_buffer(r)
        return cls(path, data, r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class GetACLRequest(Record):
    """getACL (6)."""

    path: str

    def encode(self) -> bytes:
        return _encode_text(self.path)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"))


@fast_init
@dataclass(frozen=True, slots=True)
class SetACLRequest(Record):
    """setACL (7); ``version`` is the expected aversion, -1 matches any."""

    path: str
    acl: tuple[ACL, ...] | None
    version: int

    def encode(self) -> bytes:
        return _encode_text(self.path) + _encode_acl_list(self.acl) + pack_int(self.version)

    @classmethod
    def read(cls, r: Reader) -> Self:
        path, acl = _text(r, "path"), _read_acl_list(r)
        return cls(path, acl, r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class GetChildrenRequest(Record):
    """getChildren (8), and inside multiRead."""

    path: str
    watch: bool

    def encode(self) -> bytes:
        return _encode_text(self.path) + encode_bool(self.watch)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"), read_bool(r))


@fast_init
@dataclass(frozen=True, slots=True)
class GetChildren2Request(Record):
    """getChildren2 (12): the reply adds the parent's Stat."""

    path: str
    watch: bool

    def encode(self) -> bytes:
        return _encode_text(self.path) + encode_bool(self.watch)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"), read_bool(r))


@fast_init
@dataclass(frozen=True, slots=True)
class SyncRequest(Record):
    """sync (9)."""

    path: str

    def encode(self) -> bytes:
        return _encode_text(self.path)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"))


@fast_init
@dataclass(frozen=True, slots=True)
class CheckVersionRequest(Record):
    """check (13): in practice only inside a multi."""

    path: str
    version: int

    def encode(self) -> bytes:
        return _encode_text(self.path) + pack_int(self.version)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"), r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class ReconfigRequest(Record):
    """reconfig (16): incremental (joining/leaving) or bulk (newMembers); nulls allowed."""

    joining_servers: str | None
    leaving_servers: str | None
    new_members: str | None
    cur_config_id: int

    def encode(self) -> bytes:
        return (
            _encode_text(self.joining_servers)
            + _encode_text(self.leaving_servers)
            + _encode_text(self.new_members)
            + pack_long(self.cur_config_id)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        joining = _opt_text(r, "joiningServers")
        leaving = _opt_text(r, "leavingServers")
        members = _opt_text(r, "newMembers")
        return cls(joining, leaving, members, r.int64())


@fast_init
@dataclass(frozen=True, slots=True)
class CheckWatchesRequest(Record):
    """checkWatches (17); ``type`` is a :class:`WatcherType`."""

    path: str
    type: int

    def encode(self) -> bytes:
        return _encode_text(self.path) + pack_int(self.type)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"), r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class RemoveWatchesRequest(Record):
    """removeWatches (18); ``type`` is a :class:`WatcherType`."""

    path: str
    type: int

    def encode(self) -> bytes:
        return _encode_text(self.path) + pack_int(self.type)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"), r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class AuthPacket(Record):
    """auth (100, xid -4): ``type`` is always 0 from the Java client and kazoo."""

    type: int
    scheme: str
    auth: bytes | None

    def encode(self) -> bytes:
        return pack_int(self.type) + _encode_text(self.scheme) + encode_buffer(self.auth)

    @classmethod
    def read(cls, r: Reader) -> Self:
        atype = r.int32()
        return cls(atype, _text(r, "scheme"), read_buffer(r))


@fast_init
@dataclass(frozen=True, slots=True)
class SetWatches(Record):
    """setWatches (101, xid -8): the watches a reconnecting client had, and its last zxid."""

    relative_zxid: int
    data_watches: tuple[str, ...]
    exist_watches: tuple[str, ...]
    child_watches: tuple[str, ...]

    def encode(self) -> bytes:
        return (
            pack_long(self.relative_zxid)
            + _encode_text_list(self.data_watches)
            + _encode_text_list(self.exist_watches)
            + _encode_text_list(self.child_watches)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        zxid = r.int64()
        data = _text_list(r, "dataWatches")
        exist = _text_list(r, "existWatches")
        return cls(zxid, data, exist, _text_list(r, "childWatches"))


@fast_init
@dataclass(frozen=True, slots=True)
class SetWatches2(Record):
    """setWatches2 (105, xid -8): SetWatches plus the persistent (recursive) watches."""

    relative_zxid: int
    data_watches: tuple[str, ...]
    exist_watches: tuple[str, ...]
    child_watches: tuple[str, ...]
    persistent_watches: tuple[str, ...]
    persistent_recursive_watches: tuple[str, ...]

    def encode(self) -> bytes:
        return (
            pack_long(self.relative_zxid)
            + _encode_text_list(self.data_watches)
            + _encode_text_list(self.exist_watches)
            + _encode_text_list(self.child_watches)
            + _encode_text_list(self.persistent_watches)
            + _encode_text_list(self.persistent_recursive_watches)
        )

    @classmethod
    def read(cls, r: Reader) -> Self:
        zxid = r.int64()
        data = _text_list(r, "dataWatches")
        exist = _text_list(r, "existWatches")
        child = _text_list(r, "childWatches")
        persistent = _text_list(r, "persistentWatches")
        return cls(
            zxid, data, exist, child, persistent, _text_list(r, "persistentRecursiveWatches")
        )


@fast_init
@dataclass(frozen=True, slots=True)
class GetSASLRequest(Record):
    """sasl (102), client -> server token (records only: zkquorum has no SASL)."""

    token: bytes | None

    def encode(self) -> bytes:
        return encode_buffer(self.token)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(read_buffer(r))


@fast_init
@dataclass(frozen=True, slots=True)
class GetEphemeralsRequest(Record):
    """getEphemerals (103): the session's ephemerals under ``prefix_path``."""

    prefix_path: str

    def encode(self) -> bytes:
        return _encode_text(self.prefix_path)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "prefixPath"))


@fast_init
@dataclass(frozen=True, slots=True)
class GetAllChildrenNumberRequest(Record):
    """getAllChildrenNumber (104)."""

    path: str

    def encode(self) -> bytes:
        return _encode_text(self.path)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"))


@fast_init
@dataclass(frozen=True, slots=True)
class AddWatchRequest(Record):
    """addWatch (106); ``mode`` is an :class:`AddWatchMode`."""

    path: str
    mode: int

    def encode(self) -> bytes:
        return _encode_text(self.path) + pack_int(self.mode)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"), r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class CreateSessionRequest(Record):
    """createSession (-10): a 4-byte timeout, not a jute record.

    Only a follower sends it (inside a REQUEST packet, ``docs/spec/zk-server.md`` §2.8);
    ``PrepRequestProcessor`` reads it with ``request.request.getInt()``.
    """

    timeout: int

    def encode(self) -> bytes:
        return pack_int(self.timeout)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.int32())


MultiOpRequest = (
    CreateRequest
    | CreateTTLRequest
    | DeleteRequest
    | SetDataRequest
    | CheckVersionRequest
    | GetChildrenRequest
    | GetDataRequest
)


@fast_init
@dataclass(frozen=True, slots=True)
class Op:
    """One op of a multi or multiRead: its op code and its request record.

    ``type`` tells create (1), create2 (15) and createContainer (19) apart, which share
    CreateRequest.
    """

    type: OpCode
    request: MultiOpRequest


_MULTI_OP_RECORDS: Final[Mapping[int, type[MultiOpRequest]]] = MappingProxyType(
    {
        OpCode.CREATE: CreateRequest,
        OpCode.CREATE2: CreateRequest,
        OpCode.CREATE_CONTAINER: CreateRequest,
        OpCode.CREATE_TTL: CreateTTLRequest,
        OpCode.DELETE: DeleteRequest,
        OpCode.SET_DATA: SetDataRequest,
        OpCode.CHECK: CheckVersionRequest,
        OpCode.GET_CHILDREN: GetChildrenRequest,
        OpCode.GET_DATA: GetDataRequest,
    }
)
"""``MultiOperationRecord#deserialize``: any other op type is "Invalid type of op"."""
_MULTI_READ_OPS: Final = frozenset({OpCode.GET_CHILDREN, OpCode.GET_DATA})
"""``Op.OpKind.READ``; every other op of a multi is ``TRANSACTION``."""


@fast_init
@dataclass(frozen=True, slots=True)
class MultiOperationRecord(Record):
    """multi (14) and multiRead (22): ``(MultiHeader{type, false, -1} request)*`` then
    ``MultiHeader{-1, true, -1}``.

    Reading stops at the first header whose ``done`` is set, whatever its type and err,
    and read ops (getChildren, getData) mixed with write ops do not decode ("Mixing
    different kind of ops"), both as ``MultiOperationRecord#deserialize`` does (3.8.0
    then answers MARSHALLINGERROR).  Measured against 3.8.0 and left to the server: a
    multi (14) of read ops and a multiRead (22) of write ops are MARSHALLINGERROR too; an
    invalid create flag inside a multi is that op's BADARGUMENTS.
    """

    ops: tuple[Op, ...]

    def encode(self) -> bytes:
        parts = []
        for op in self.ops:
            parts.append(MultiHeader(op.type, False, -1).encode())
            parts.append(op.request.encode())
        parts.append(MULTI_DONE.encode())
        return b"".join(parts)

    @classmethod
    def read(cls, r: Reader) -> Self:
        ops: list[Op] = []
        while True:
            at = r.pos
            header = MultiHeader.read(r)
            if header.done:
                return cls(tuple(ops))
            record = _MULTI_OP_RECORDS.get(header.type)
            if record is None:
                r.fail(f"invalid type of op {header.type} in a multi", at)
            if ops and (header.type in _MULTI_READ_OPS) != (ops[0].type in _MULTI_READ_OPS):
                r.fail("Mixing different kind of ops", at)
            ops.append(Op(OpCode(header.type), record.read(r)))


# -- responses ---------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class CreateResponse(Record):
    """Reply to create (1): the created path (with a sequential suffix if any)."""

    path: str

    def encode(self) -> bytes:
        return _encode_text(self.path)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"))


@fast_init
@dataclass(frozen=True, slots=True)
class Create2Response(Record):
    """Reply to create2 (15), createContainer (19) and createTTL (21)."""

    path: str
    stat: Stat

    def encode(self) -> bytes:
        return _encode_text(self.path) + self.stat.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"), Stat.read(r))


@fast_init
@dataclass(frozen=True, slots=True)
class ExistsResponse(Record):
    """Reply to exists (3) when the node exists (a missing node is err NONODE, no body)."""

    stat: Stat

    def encode(self) -> bytes:
        return self.stat.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(Stat.read(r))


@fast_init
@dataclass(frozen=True, slots=True)
class GetDataResponse(Record):
    """Reply to getData (4), and to reconfig (16) with the new config's text."""

    data: bytes | None
    stat: Stat

    def encode(self) -> bytes:
        return encode_buffer(self.data) + self.stat.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        data = read_buffer(r)
        return cls(data, Stat.read(r))


@fast_init
@dataclass(frozen=True, slots=True)
class SetDataResponse(Record):
    """Reply to setData (5) (and what ``FinalRequestProcessor`` builds for check)."""

    stat: Stat

    def encode(self) -> bytes:
        return self.stat.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(Stat.read(r))


@fast_init
@dataclass(frozen=True, slots=True)
class GetACLResponse(Record):
    """Reply to getACL (6)."""

    acl: tuple[ACL, ...] | None
    stat: Stat

    def encode(self) -> bytes:
        return _encode_acl_list(self.acl) + self.stat.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        acl = _read_acl_list(r)
        return cls(acl, Stat.read(r))


@fast_init
@dataclass(frozen=True, slots=True)
class SetACLResponse(Record):
    """Reply to setACL (7)."""

    stat: Stat

    def encode(self) -> bytes:
        return self.stat.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(Stat.read(r))


@fast_init
@dataclass(frozen=True, slots=True)
class GetChildrenResponse(Record):
    """Reply to getChildren (8): child names, not paths."""

    children: tuple[str, ...]

    def encode(self) -> bytes:
        return _encode_text_list(self.children)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text_list(r, "children"))


@fast_init
@dataclass(frozen=True, slots=True)
class GetChildren2Response(Record):
    """Reply to getChildren2 (12): child names and the parent's Stat."""

    children: tuple[str, ...]
    stat: Stat

    def encode(self) -> bytes:
        return _encode_text_list(self.children) + self.stat.encode()

    @classmethod
    def read(cls, r: Reader) -> Self:
        children = _text_list(r, "children")
        return cls(children, Stat.read(r))


@fast_init
@dataclass(frozen=True, slots=True)
class SyncResponse(Record):
    """Reply to sync (9): the request's path."""

    path: str

    def encode(self) -> bytes:
        return _encode_text(self.path)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text(r, "path"))


@fast_init
@dataclass(frozen=True, slots=True)
class ErrorResponse(Record):
    """``ErrorResponse{int err}``: addWatch's 4-byte reply body, and a failed multi op."""

    err: int

    def encode(self) -> bytes:
        return pack_int(self.err)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class GetEphemeralsResponse(Record):
    """Reply to getEphemerals (103): full paths."""

    ephemerals: tuple[str, ...]

    def encode(self) -> bytes:
        return _encode_text_list(self.ephemerals)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_text_list(r, "ephemerals"))


@fast_init
@dataclass(frozen=True, slots=True)
class GetAllChildrenNumberResponse(Record):
    """Reply to getAllChildrenNumber (104): descendants, the node itself excluded."""

    total_number: int

    def encode(self) -> bytes:
        return pack_int(self.total_number)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.int32())


@fast_init
@dataclass(frozen=True, slots=True)
class WhoAmIResponse(Record):
    """Reply to whoAmI (107): the connection's authenticated ids."""

    client_info: tuple[ClientInfo, ...]

    def encode(self) -> bytes:
        return encode_vector(self.client_info, ClientInfo.encode)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(_vector(r, "clientInfo", ClientInfo.read))


@fast_init
@dataclass(frozen=True, slots=True)
class SetSASLResponse(Record):
    """Reply to sasl (102) (records only: zkquorum has no SASL)."""

    token: bytes | None

    def encode(self) -> bytes:
        return encode_buffer(self.token)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(read_buffer(r))


# -- multi results -----------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class CreateResult:
    """A create in a multi: type create (1) without a Stat, create2 (15) with one.

    3.8 answers create2, createContainer and createTTL ops with create2 results
    (``OpResult.CreateResult(path, stat)``).
    """

    path: str
    stat: Stat | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class DeleteResult:
    """A delete in a multi (type 2, no body)."""


@fast_init
@dataclass(frozen=True, slots=True)
class SetDataResult:
    """A setData in a multi (type 5)."""

    stat: Stat


@fast_init
@dataclass(frozen=True, slots=True)
class CheckResult:
    """A check in a multi (type 13, no body)."""


@fast_init
@dataclass(frozen=True, slots=True)
class GetChildrenResult:
    """A getChildren in a multiRead (type 8)."""

    children: tuple[str, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class GetDataResult:
    """A getData in a multiRead (type 4)."""

    data: bytes | None
    stat: Stat


@fast_init
@dataclass(frozen=True, slots=True)
class ErrorResult:
    """A failed op (type -1): header err and ErrorResponse both carry ``err``.

    In a failed multi the ops before the failing one are ``ErrorResult(0)``, the failing
    one has its code and the ones after it RUNTIMEINCONSISTENCY (§2.7).
    """

    err: int


OpResult = (
    CreateResult
    | DeleteResult
    | SetDataResult
    | CheckResult
    | GetChildrenResult
    | GetDataResult
    | ErrorResult
)


def _encode_result(result: OpResult) -> bytes:
    match result:
        case CreateResult(path, None):
            return MultiHeader(OpCode.CREATE, False, 0).encode() + _encode_text(path)
        case CreateResult(path, Stat() as stat):
            head = MultiHeader(OpCode.CREATE2, False, 0).encode()
            return head + _encode_text(path) + stat.encode()
        case DeleteResult():
            return MultiHeader(OpCode.DELETE, False, 0).encode()
        case SetDataResult(stat):
            return MultiHeader(OpCode.SET_DATA, False, 0).encode() + stat.encode()
        case CheckResult():
            return MultiHeader(OpCode.CHECK, False, 0).encode()
        case GetChildrenResult(children):
            head = MultiHeader(OpCode.GET_CHILDREN, False, 0).encode()
            return head + _encode_text_list(children)
        case GetDataResult(data, stat):
            head = MultiHeader(OpCode.GET_DATA, False, 0).encode()
            return head + encode_buffer(data) + stat.encode()
        case ErrorResult(err):
            return MultiHeader(OpCode.ERROR, False, err).encode() + pack_int(err)
    raise ValueError(f"not a multi result: {result!r}")  # pragma: no cover


def _read_result(r: Reader, header: MultiHeader, at: int) -> OpResult:
    match header.type:
        case OpCode.CREATE:
            return CreateResult(_text(r, "path"))
        case OpCode.CREATE2:
            path = _text(r, "path")
            return CreateResult(path, Stat.read(r))
        case OpCode.DELETE:
            return DeleteResult()
        case OpCode.SET_DATA:
            return SetDataResult(Stat.read(r))
        case OpCode.CHECK:
            return CheckResult()
        case OpCode.GET_CHILDREN:
            return GetChildrenResult(_text_list(r, "children"))
        case OpCode.GET_DATA:
            data = read_buffer(r)
            return GetDataResult(data, Stat.read(r))
        case OpCode.ERROR:
            return ErrorResult(r.int32())
    r.fail(f"invalid type {header.type} in a MultiResponse", at)


@fast_init
@dataclass(frozen=True, slots=True)
class MultiResponse(Record):
    """Reply to multi (14) and multiRead (22): one result per op, then the terminator.

    The ReplyHeader's err is 0 even when an op failed: the failure is in the results.
    """

    results: tuple[OpResult, ...]

    def encode(self) -> bytes:
        return b"".join([*map(_encode_result, self.results), MULTI_DONE.encode()])

    @classmethod
    def read(cls, r: Reader) -> Self:
        results: list[OpResult] = []
        while True:
            at = r.pos
            header = MultiHeader.read(r)
            if header.done:
                return cls(tuple(results))
            results.append(_read_result(r, header, at))


# -- records by op code ------------------------------------------------------------------

RequestRecord = (
    ConnectRequest
    | CreateRequest
    | CreateTTLRequest
    | DeleteRequest
    | DeleteContainerRequest
    | ExistsRequest
    | GetDataRequest
    | SetDataRequest
    | GetACLRequest
    | SetACLRequest
    | GetChildrenRequest
    | GetChildren2Request
    | SyncRequest
    | CheckVersionRequest
    | MultiOperationRecord
    | ReconfigRequest
    | CheckWatchesRequest
    | RemoveWatchesRequest
    | AuthPacket
    | SetWatches
    | SetWatches2
    | GetSASLRequest
    | GetEphemeralsRequest
    | GetAllChildrenNumberRequest
    | AddWatchRequest
    | CreateSessionRequest
)

ResponseRecord = (
    CreateResponse
    | Create2Response
    | ExistsResponse
    | GetDataResponse
    | SetDataResponse
    | GetACLResponse
    | SetACLResponse
    | GetChildrenResponse
    | GetChildren2Response
    | SyncResponse
    | MultiResponse
    | ErrorResponse
    | GetEphemeralsResponse
    | GetAllChildrenNumberResponse
    | WhoAmIResponse
    | SetSASLResponse
    | WatcherEvent
)

REQUEST_RECORDS: Final[Mapping[int, type[RequestRecord] | None]] = MappingProxyType(
    {
        OpCode.CREATE: CreateRequest,
        OpCode.DELETE: DeleteRequest,
        OpCode.EXISTS: ExistsRequest,
        OpCode.GET_DATA: GetDataRequest,
        OpCode.SET_DATA: SetDataRequest,
        OpCode.GET_ACL: GetACLRequest,
        OpCode.SET_ACL: SetACLRequest,
        OpCode.GET_CHILDREN: GetChildrenRequest,
        OpCode.SYNC: SyncRequest,
        OpCode.PING: None,
        OpCode.GET_CHILDREN2: GetChildren2Request,
        OpCode.CHECK: CheckVersionRequest,
        OpCode.MULTI: MultiOperationRecord,
        OpCode.CREATE2: CreateRequest,
        OpCode.RECONFIG: ReconfigRequest,
        OpCode.CHECK_WATCHES: CheckWatchesRequest,
        OpCode.REMOVE_WATCHES: RemoveWatchesRequest,
        OpCode.CREATE_CONTAINER: CreateRequest,
        OpCode.DELETE_CONTAINER: DeleteContainerRequest,
        OpCode.CREATE_TTL: CreateTTLRequest,
        OpCode.MULTI_READ: MultiOperationRecord,
        OpCode.AUTH: AuthPacket,
        OpCode.SET_WATCHES: SetWatches,
        OpCode.SASL: GetSASLRequest,
        OpCode.GET_EPHEMERALS: GetEphemeralsRequest,
        OpCode.GET_ALL_CHILDREN_NUMBER: GetAllChildrenNumberRequest,
        OpCode.SET_WATCHES2: SetWatches2,
        OpCode.ADD_WATCH: AddWatchRequest,
        OpCode.WHO_AM_I: None,
        OpCode.CREATE_SESSION: CreateSessionRequest,
        OpCode.CLOSE_SESSION: None,
    }
)
"""The request record of each op code that has one in 3.8; ``None``: the request has no
body.  Every op here is one a 3.8.0 server takes from a client (see
:func:`is_valid_request_op`)."""

RESPONSE_RECORDS: Final[Mapping[int, type[ResponseRecord] | None]] = MappingProxyType(
    {
        OpCode.NOTIFICATION: WatcherEvent,
        OpCode.CREATE: CreateResponse,
        OpCode.DELETE: None,
        OpCode.EXISTS: ExistsResponse,
        OpCode.GET_DATA: GetDataResponse,
        OpCode.SET_DATA: SetDataResponse,
        OpCode.GET_ACL: GetACLResponse,
        OpCode.SET_ACL: SetACLResponse,
        OpCode.GET_CHILDREN: GetChildrenResponse,
        OpCode.SYNC: SyncResponse,
        OpCode.PING: None,
        OpCode.GET_CHILDREN2: GetChildren2Response,
        OpCode.CHECK: SetDataResponse,
        OpCode.MULTI: MultiResponse,
        OpCode.CREATE2: Create2Response,
        OpCode.RECONFIG: GetDataResponse,
        OpCode.CHECK_WATCHES: None,
        OpCode.REMOVE_WATCHES: None,
        OpCode.CREATE_CONTAINER: Create2Response,
        OpCode.DELETE_CONTAINER: None,
        OpCode.CREATE_TTL: Create2Response,
        OpCode.MULTI_READ: MultiResponse,
        OpCode.AUTH: None,
        OpCode.SET_WATCHES: None,
        OpCode.SASL: SetSASLResponse,
        OpCode.GET_EPHEMERALS: GetEphemeralsResponse,
        OpCode.GET_ALL_CHILDREN_NUMBER: GetAllChildrenNumberResponse,
        OpCode.SET_WATCHES2: None,
        OpCode.ADD_WATCH: ErrorResponse,
        OpCode.WHO_AM_I: WhoAmIResponse,
        OpCode.CREATE_SESSION: None,
        OpCode.CLOSE_SESSION: None,
    }
)
"""The body of a successful (err 0) reply to each op (``FinalRequestProcessor``); ``None``:
header only.  A reply with err != 0 has no body."""


def request_record_type(op: int) -> type[RequestRecord] | None:
    """The record class of ``op``'s request body (``None``: no body or an unknown op)."""
    return REQUEST_RECORDS.get(op)


def is_valid_request_op(op: int) -> bool:
    """Whether a 3.8.0 server takes ``op`` from a client: ``Request#isValid``, plus auth
    and sasl, which ``ZooKeeperServer#processPacket`` handles before it asks.

    Any other op (notification 0, error -1, unknown numbers) is answered
    ``ReplyHeader{xid, -1, UNIMPLEMENTED}`` and the connection closed
    (``ZooKeeperServer#submitRequestNow`` -> ``UnimplementedRequestProcessor``).  check
    (13) on its own is taken by 3.8.0 and runs as a write: a failure is answered (NONODE,
    BADVERSION, NOAUTH, with a new zxid), a success is not answered at all (the
    ``SetDataResponse`` with a null stat fails to serialize in ``FinalRequestProcessor``)
    and the connection stays open.  ZOOKEEPER-2623 (after 3.8.0) makes it UNIMPLEMENTED.
    """
    return op in REQUEST_RECORDS


def _decode_body(record: type[R], body: bytes, *, exact: bool) -> R:
    r = Reader(body, ClientProtocolError)
    try:
        value = record.read(r)
    except NeedData as nd:
        raise ClientProtocolError(
            f"truncated {record.__name__}: {nd.needed - len(body)} more bytes needed", len(body)
        ) from None
    if exact and r.remaining:
        r.fail(f"{r.remaining} bytes after the {record.__name__}")
    return value


def decode_request_body(op: int, body: bytes) -> RequestRecord | None:
    """The request record of ``op`` in ``body``, as a 3.8 server reads it.

    Bytes after the record are ignored (``byteBuffer2Record``).  Returns ``None`` for ops
    without a body and for ops 3.8 does not accept (see :func:`is_valid_request_op`);
    raises :class:`ClientProtocolError` when the body does not parse (3.8 answers
    MARSHALLINGERROR, or for auth and sasl closes the connection).
    """
    record = request_record_type(op)
    if record is None:
        return None
    return _decode_body(record, body, exact=False)


def decode_response_body(op: int, body: bytes) -> ResponseRecord | None:
    """The body of a successful reply to ``op`` (``None`` for header-only replies).

    Strict: bytes after the record are an error (a 3.8 server never sends any).
    """
    record = RESPONSE_RECORDS.get(op)
    if record is None:
        if body:
            raise ClientProtocolError(f"{len(body)} bytes after a header-only reply", 0)
        return None
    return _decode_body(record, body, exact=True)
