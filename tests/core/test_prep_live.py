"""Differential, live: the order of 3.8.0's checks, against a running Java server.

One standalone ZooKeeper 3.8.0 (Debian package, ``-Dzookeeper.extendedTypesEnabled=true``)
takes a script of writes built to hit two rules at once (an invalid ACL under a missing
parent, a wrong version on a non-empty node, a TTL on an ephemeral mode...), through one
raw session that authenticates halfway.  Prep, replaying the same requests at the zxids
the server answered with, must give the same code, created path and multi results for
each.  Skips locally without ZooKeeper; fails under ``ZKQUORUM_REQUIRE_ZK=1``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.test_prep_client_ops import outcome_of_txn
from tests.interop.zk import require_zookeeper
from tests.interop.zkserver import JavaEnsemble, java_ensemble, wait_for
from tests.wire.test_client_interop import Session
from zkquorum.core.acl import add_auth_info, authenticate, connection_ids
from zkquorum.core.datatree import DataTree
from zkquorum.core.prep import OutstandingChanges, Prep, PrepRequest, PrepSettings
from zkquorum.core.sessions import SessionTracker
from zkquorum.wire import client as wc
from zkquorum.wire import client_records as cr
from zkquorum.wire.jute import ACL, Id
from zkquorum.wire.txn import OpCode

pytestmark = pytest.mark.interop

OPEN = cr.OPEN_ACL_UNSAFE
NO_ACL: tuple[ACL, ...] = ()
USER_ONLY = (ACL(31, Id("digest", "user:smGaoVKd/cQkjm7b88GyorAUz20=")),)
AUTH = "AUTH"  # marks where the script logs in as digest user:pass
NULL = cr.NULL_STRING


def C(
    path: str, flags: int = 0, acl: tuple[ACL, ...] | None = OPEN
) -> tuple[int, cr.RequestRecord]:
    return OpCode.CREATE, cr.CreateRequest(path, b"d", acl, flags)


def TTL(path: str, flags: int, ttl: int) -> tuple[int, cr.RequestRecord]:
    return OpCode.CREATE_TTL, cr.CreateTTLRequest(path, b"", OPEN, flags, ttl)


def D(path: str, version: int = -1) -> tuple[int, cr.RequestRecord]:
    return OpCode.DELETE, cr.DeleteRequest(path, version)


def S(path: str, version: int = -1) -> tuple[int, cr.RequestRecord]:
    return OpCode.SET_DATA, cr.SetDataRequest(path, b"x", version)


def A(path: str, acl: tuple[ACL, ...], version: int = -1) -> tuple[int, cr.RequestRecord]:
    return OpCode.SET_ACL, cr.SetACLRequest(path, acl, version)


def K(path: str, version: int) -> tuple[int, cr.RequestRecord]:
    return OpCode.CHECK, cr.CheckVersionRequest(path, version)


def M(*ops: tuple[int, cr.RequestRecord]) -> tuple[int, cr.RequestRecord]:
    return OpCode.MULTI, cr.MultiOperationRecord(tuple(cr.Op(o, r) for o, r in ops))  # type: ignore[arg-type]


SCRIPT: list[tuple[int, cr.RequestRecord] | str] = [
    C("/t"),
    C("/t/e", 1),
    C("/t/e/x", 0, NO_ACL),  # INVALIDACL before NOCHILDRENFOREPHEMERALS
    C("/missing/x", 0, NO_ACL),  # INVALIDACL before NONODE
    C("/missing/x", 7),  # BADARGUMENTS (flags) first
    C("/missing/x", 0, None),  # null ACL list
    C("/t/"),
    C("/t//x"),
    C("/t/e/x"),  # NOCHILDRENFOREPHEMERALS
    C("/t/e"),  # NODEEXISTS before the parent's kind
    C("/"),
    C("/zookeeper/mine"),  # creates under /zookeeper are not refused
    C("/t/u", 0, USER_ONLY),
    C("/t/u/x"),  # NOAUTH: CREATE on the parent
    C("/t/u/x", 0, ((ACL(31, Id("auth", ""))),)),  # INVALIDACL: no digest login yet
    C("/t/ip", 0, (ACL(31, Id("ip", "::1")),)),  # 3.8's ip provider: IPv4 only
    C("/t/ip", 0, (ACL(31, Id("ip", "127.0.0.0/8")),)),
    C("/t/s-", 2),
    D("/t/s-0000000008"),
    C("/t/s-", 3),  # the stored cversion, not the client-visible one
    D("/t", 5),  # BADVERSION before NOTEMPTY
    D("/t"),
    D("/t/none"),
    D("/zookeeper/quota"),
    D("/zookeeper/config"),
    D("/t/u", 0),
    S("/t/u", 7),  # NOAUTH before BADVERSION
    S("/zookeeper/config"),
    S("/t/none/"),
    A("/t/none", NO_ACL),  # INVALIDACL before NONODE
    A("/t", OPEN, 3),
    A("/t/u", OPEN),  # NOAUTH (ADMIN)
    K("/t/none", 0),
    K("/t", 9),
    TTL("/t/ttl", 5, 0),
    TTL("/t/ttl", 5, 1 << 40),
    TTL("/t/ttl", 1, 100),  # an ephemeral with a TTL
    TTL("/t/ttl", 0, 100),
    TTL("/none/ttl", 5, 100),
    TTL("/t/ttl", 6, 100),
    (OpCode.CREATE_CONTAINER, cr.CreateRequest("/t/c", b"", OPEN, 4)),
    C("/t/c/x"),
    (OpCode.DELETE_CONTAINER, cr.DeleteContainerRequest("/t/c")),  # NOTEMPTY
    (OpCode.DELETE_CONTAINER, cr.DeleteContainerRequest("/t/e")),  # BADVERSION
    D("/t/c/x"),
    (OpCode.DELETE_CONTAINER, cr.DeleteContainerRequest("/t/c")),
    M(C("/t/m"), S("/t/m", 0), K("/t/m", 1), D("/t/m", 1)),
    M(C("/t/m"), K("/t/none", -1), D("/t")),
    M(C("/t/m", 1), C("/t/m/x")),
    M(),
    C(cr.NULL_STRING),
    S(cr.NULL_STRING),
    # Null strings in ACLs, where 3.8's fixupACL trips (or not) over them.
    C("/t/n1", 0, (ACL(31, Id("world", NULL)),)),
    C("/t/n2", 0, (ACL(31, Id("x", "y")), ACL(31, Id("world", NULL)))),
    C("/t/n3", 0, (ACL(31, Id("digest", NULL)),)),
    C("/t/n4", 0, (ACL(31, Id("auth", NULL)), ACL(31, Id("auth", NULL)))),
    C("/t/n5", 0, (ACL(31, Id(NULL, "x")),)),
    C("/t/n6", 0, (ACL(1, Id("world", "anyone")), ACL(31, Id(NULL, "x")))),
    C("/t/n7", 0, (ACL(31, Id("world", "anyone")), ACL(31, Id(NULL, "x")))),
    C("/t/n8", 0, (ACL(31, Id("auth", "")), ACL(31, Id("auth", NULL)))),
    C("/t/n9", 0, (ACL(31, Id("world", "anyone")), ACL(31, Id("world", "anyone")))),
    A("/t", (ACL(31, Id("ip", NULL)),)),
    AUTH,
    C("/t/u/x"),
    C("/t/u/y", 0, ((ACL(31, Id("auth", ""))),)),
    S("/t/u", 0),
    A("/t/u", OPEN, 0),
    D("/t/u/y", 0),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    install = require_zookeeper()
    base: Path = tmp_path_factory.mktemp("zk-prep-live")
    with java_ensemble(
        install,
        base,
        (1,),
        settings={"tickTime": "2000"},
        jvm_flags={1: ["-Dzookeeper.extendedTypesEnabled=true"]},
    ) as ens:
        _wait_serving(ens)
        zk = ens.servers[1]
        yield zk.host, zk.client_port


def _wait_serving(ens: JavaEnsemble) -> None:
    def serving() -> bool:
        ens.check_alive()
        return ens.servers[1].mode() is not None

    wait_for(serving, timeout=60.0, what="ZooKeeper 3.8 serving clients")


def outcome_of_reply(op: int, reply: wc.ClientReply) -> object:
    if op == OpCode.MULTI and reply.err == 0:
        assert isinstance(reply.response, cr.MultiResponse)
        return [x.err if isinstance(x, cr.ErrorResult) else 0 for x in reply.response.results]
    if reply.err == 0 and isinstance(reply.response, (cr.CreateResponse, cr.Create2Response)):
        return (0, reply.response.path)
    return reply.err


def test_prep_checks_in_the_order_of_the_java_server(server: tuple[str, int]) -> None:
    session = Session(server)
    try:
        connected = session.connect()
        sid = connected.session_id
        answers: list[wc.ClientReply] = []
        for xid, step in enumerate(SCRIPT, start=1):
            if step == AUTH:
                session.send(
                    wc.encode_request(-4, OpCode.AUTH, cr.AuthPacket(0, "digest", b"user:pass"))
                )
                auth = session.next()
                assert isinstance(auth, wc.ClientReply) and auth.err == 0
                continue
            assert not isinstance(step, str)
            op, record = step
            session.request(xid, op, record.encode())
            reply = session.next()
            assert isinstance(reply, wc.ClientReply), (step, reply)
            answers.append(reply)
    finally:
        session.close()

    tree = DataTree()
    sessions = SessionTracker(server_id=1, tick_time=2000, now=0)
    sessions.track_session(sid, connected.timeout, now=0)
    changes = OutstandingChanges()
    prep = Prep(PrepSettings(extended_types_enabled=True))
    ids = connection_ids("127.0.0.1")
    replies = iter(answers)
    codes: set[object] = set()
    for xid, step in enumerate(SCRIPT, start=1):
        if step == AUTH:
            new = authenticate("digest", b"user:pass", "127.0.0.1")
            assert new is not None
            ids = add_auth_info(ids, new)
            continue
        assert not isinstance(step, str)
        op, record = step
        reply = next(replies)
        result = prep.prepare(
            PrepRequest(sid, xid, op, record, ids, owner="the connection"),
            zxid=reply.zxid,
            time=0,
            now=0,
            tree=tree,
            changes=changes,
            sessions=sessions,
        )
        assert result.txn is not None, step
        expected = outcome_of_reply(op, reply)
        assert outcome_of_txn(op, result.txn.record) == expected, (xid, step, reply)
        codes.add(expected if isinstance(expected, int) else type(expected).__name__)
        tree.apply(result.txn)
        changes.applied(reply.zxid)
    assert len(codes) >= 10
