"""The client codec against a running ZooKeeper 3.8.0 (Debian package): what 3.8 answers.

One standalone server for the module.  Each test opens raw sockets, speaks through
:mod:`zkquorum.wire.client` and checks the answers the codec's docstrings claim: an op
3.8 does not take (an unknown number) gets UNIMPLEMENTED and a close, check (13) on its
own runs as a write and is answered only when it fails, a body
that does not parse gets MARSHALLINGERROR on a live connection, a length above
jute.maxbuffer closes without a reply, a four-letter word is answered before any
handshake.  Skips locally without ZooKeeper; fails under ``ZKQUORUM_REQUIRE_ZK=1``.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.zk import require_zookeeper
from tests.interop.zkserver import JavaEnsemble, java_ensemble, wait_for
from zkquorum.wire import client as wc
from zkquorum.wire import client_records as cr
from zkquorum.wire.reader import CLOSED, NEED_DATA
from zkquorum.wire.txn import OpCode

pytestmark = pytest.mark.interop
DEADLINE = 20.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    install = require_zookeeper()
    base: Path = tmp_path_factory.mktemp("zk-client-codec")
    with java_ensemble(install, base, (1,), settings={"tickTime": "2000"}) as ens:
        _wait_serving(ens)
        zk = ens.servers[1]
        yield zk.host, zk.client_port


def _wait_serving(ens: JavaEnsemble) -> None:
    def serving() -> bool:
        ens.check_alive()
        return ens.servers[1].mode() is not None

    wait_for(serving, timeout=60.0, what="ZooKeeper 3.8 serving clients")


class Session:
    """A raw client connection: frames out, :class:`ReplyStreamDecoder` in."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=DEADLINE)
        self.replies = wc.ReplyStreamDecoder()
        self.closed = False

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def connect(self) -> cr.ConnectResponse:
        self.send(wc.encode_connect_request(cr.ConnectRequest(0, 0, 10_000, 0, bytes(16), False)))
        response = self.next()
        assert isinstance(response, cr.ConnectResponse)
        return response

    def request(self, xid: int, op: int, payload: bytes) -> None:
        self.replies.expect(xid, op)
        self.send(wc.frame(struct.pack(">ii", xid, op) + payload))

    def next(self) -> wc.ReplyMessage | None:
        """The next reply, or ``None`` when the server closed the connection."""
        deadline = time.monotonic() + DEADLINE
        while True:
            msg = self.replies.next_message()
            if msg is CLOSED:
                return None
            if msg is not NEED_DATA:
                return msg
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            self.replies.receive_data(data)
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from ZooKeeper")


@pytest.fixture
def session(server: tuple[str, int]) -> Iterator[Session]:
    s = Session(server)
    try:
        assert s.connect().timeout == 10_000
        yield s
    finally:
        s.close()


@pytest.mark.parametrize(
    ("op", "body"),
    [(999, b""), (OpCode.NOTIFICATION, b""), (OpCode.ERROR, b"")],
    ids=["unknown", "notification", "error"],
)
def test_an_op_3_8_does_not_take_is_unimplemented_then_closed(
    session: Session, op: int, body: bytes
) -> None:
    assert not cr.is_valid_request_op(op)
    session.request(1, op, body)
    reply = session.next()
    assert isinstance(reply, wc.ClientReply)
    assert (reply.xid, reply.zxid, reply.err) == (1, -1, cr.ErrorCode.UNIMPLEMENTED)
    assert session.next() is None


def test_check_on_its_own_is_a_write_whose_success_3_8_0_never_answers(
    session: Session,
) -> None:
    assert cr.is_valid_request_op(OpCode.CHECK)
    session.request(1, OpCode.CHECK, cr.CheckVersionRequest("/missing", -1).encode())
    missing = session.next()
    assert isinstance(missing, wc.ClientReply) and missing.err == cr.ErrorCode.NONODE
    assert missing.zxid > 0  # an error txn
    # a check that holds gets no reply at all; the next request's reply comes instead
    session.send(wc.encode_request(2, OpCode.CHECK, cr.CheckVersionRequest("/", -1)))
    session.request(3, OpCode.EXISTS, cr.ExistsRequest("/", False).encode())
    exists = session.next()
    assert isinstance(exists, wc.ClientReply) and exists.xid == 3
    assert isinstance(exists.response, cr.ExistsResponse)


def test_a_body_that_does_not_parse_is_a_marshalling_error(session: Session) -> None:
    session.request(1, OpCode.GET_DATA, b"\0\0\0\x09/a")
    decoded = wc.decode_client_request(struct.pack(">ii", 1, OpCode.GET_DATA) + b"\0\0\0\x09/a")
    assert isinstance(decoded.record, wc.MalformedRequest)
    reply = session.next()
    assert isinstance(reply, wc.ClientReply) and reply.err == cr.ErrorCode.MARSHALLINGERROR
    # a multi mixing writes and reads does not decode either
    mixed = cr.MultiOperationRecord(
        (
            cr.Op(OpCode.DELETE, cr.DeleteRequest("/nope", -1)),
            cr.Op(OpCode.GET_DATA, cr.GetDataRequest("/", False)),
        )
    ).encode()
    header = struct.pack(">ii", 2, OpCode.MULTI)
    assert isinstance(wc.decode_client_request(header + mixed).record, wc.MalformedRequest)
    session.request(2, OpCode.MULTI, mixed)
    reply = session.next()
    assert isinstance(reply, wc.ClientReply) and reply.err == cr.ErrorCode.MARSHALLINGERROR
    # the connection goes on
    session.request(3, OpCode.EXISTS, cr.ExistsRequest("/zookeeper", False).encode())
    reply = session.next()
    assert isinstance(reply, wc.ClientReply) and isinstance(reply.response, cr.ExistsResponse)


def test_a_null_path_is_not_an_empty_one(session: Session) -> None:
    null = cr.NULL_STRING
    session.request(1, OpCode.GET_DATA, cr.GetDataRequest(null, False).encode())
    session.request(2, OpCode.GET_DATA, cr.GetDataRequest("", False).encode())
    session.request(3, OpCode.SET_DATA, cr.SetDataRequest(null, b"x", -1).encode())
    session.request(4, OpCode.SYNC, cr.SyncRequest(null).encode())
    replies = [session.next() for _ in range(4)]
    assert all(isinstance(r, wc.ClientReply) for r in replies)
    null_read, empty_read, null_write, null_sync = (
        r for r in replies if isinstance(r, wc.ClientReply)
    )
    assert null_read.err == cr.ErrorCode.MARSHALLINGERROR
    assert empty_read.err == cr.ErrorCode.OK  # "" reads the root
    assert null_write.err == cr.ErrorCode.BADARGUMENTS
    assert null_sync.err == cr.ErrorCode.OK
    assert isinstance(null_sync.response, cr.SyncResponse)
    assert cr.is_null(null_sync.response.path)


def test_a_length_above_jute_maxbuffer_closes_without_a_reply(session: Session) -> None:
    session.send(struct.pack(">i", wc.DEFAULT_MAX_BUFFER + 1) + b"\0" * 64)
    assert session.next() is None


def test_replies_decode_and_re_encode(session: Session) -> None:
    path = f"/codec-{time.monotonic_ns()}"
    create = cr.CreateRequest(path, b"v1", cr.OPEN_ACL_UNSAFE, cr.CreateMode.EPHEMERAL)
    session.request(1, OpCode.CREATE2, create.encode())
    multi = cr.MultiOperationRecord(
        (
            cr.Op(OpCode.CHECK, cr.CheckVersionRequest(path, 0)),
            cr.Op(OpCode.SET_DATA, cr.SetDataRequest(path, b"v2", 5)),
            cr.Op(OpCode.DELETE, cr.DeleteRequest(path, -1)),
        )
    )
    session.request(2, OpCode.MULTI, multi.encode())
    session.request(3, OpCode.WHO_AM_I, b"")
    session.request(4, OpCode.ADD_WATCH, cr.AddWatchRequest(path, 1).encode())
    created, failed, who, watch = (session.next() for _ in range(4))
    assert isinstance(created, wc.ClientReply)
    assert isinstance(created.response, cr.Create2Response)
    assert created.response.path == path and created.response.stat.data_length == 2
    assert created.response.stat.ephemeral_owner != 0
    assert isinstance(failed, wc.ClientReply) and failed.err == 0
    assert failed.response == cr.MultiResponse(
        (cr.ErrorResult(0), cr.ErrorResult(cr.ErrorCode.BADVERSION), cr.ErrorResult(-2))
    )
    assert isinstance(who, wc.ClientReply)
    assert who.response == cr.WhoAmIResponse((cr.ClientInfo("ip", "127.0.0.1"),))
    assert isinstance(watch, wc.ClientReply) and watch.response == cr.ErrorResponse(0)
    for reply in (created, failed, who, watch):
        again = wc.ReplyStreamDecoder(connected=True)
        again.expect(reply.xid, reply.op)
        again.receive_data(wc.encode_client_reply(reply))
        assert again.next_message() == reply


def test_a_four_letter_word_before_the_handshake(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=DEADLINE) as sock:
        sock.sendall(b"ruok")
        dec = wc.RequestStreamDecoder()
        dec.receive_data(b"ruok")
        assert dec.next_message() == wc.FourLetterWord("ruok")
        answer = b""
        while chunk := sock.recv(1024):
            answer += chunk
    assert answer == b"imok"
