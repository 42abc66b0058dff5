"""SASL DIGEST-MD5 on the client port (core/sasl.py): RFC 2831's example, the exchange
against pure-sasl's client (kazoo's), the JAAS file, and the sasl request in the server
core (the ``sasl`` id and ACLs, AUTHFAILED and the close, allowSaslFailedClients, SASL off).
"""

from __future__ import annotations

import pytest

from tests.core.test_server import Client, _core, durable
from zkquorum.core.acl import AuthSettings, InvalidACL, check_acl, fixup_acl, sasl_is_valid
from zkquorum.core.database import Database
from zkquorum.core.datatree import DataTree
from zkquorum.core.sasl import (
    REALM,
    DigestMD5Server,
    JaasError,
    SaslFailed,
    SaslSettings,
    digest_response,
    nonce,
    parse_directives,
    parse_jaas,
    sasl_provider_configured,
    sasl_settings,
    server_logins,
)
from zkquorum.core.server import ServerCore, ServerSettings
from zkquorum.wire.client import ClientReply
from zkquorum.wire.client_records import (
    CreateRequest,
    ErrorCode,
    GetDataRequest,
    GetSASLRequest,
    Perms,
)
from zkquorum.wire.jute import ACL, Id
from zkquorum.wire.txn import OpCode

puresasl_client = pytest.importorskip("puresasl.client")

LOGINS = {"jaasuser": "jaas_password", "super": "super_secret"}
SETTINGS = SaslSettings(LOGINS, seed=b"test seed")


# -- RFC 2831 --------------------------------------------------------------------------


def test_rfc_2831_example() -> None:
    # RFC 2831 section 4: chris/secret at elwood.innosoft.com, IMAP
    example = {
        "username": "chris",
        "realm": "elwood.innosoft.com",
        "password": "secret",
        "nonce": "OA6MG9tEQGm2hh",
        "cnonce": "OA6MHXh6VqTrRk",
        "nc": "00000001",
        "qop": "auth",
        "digest_uri": "imap/elwood.innosoft.com",
    }
    assert digest_response(**example) == "d388dad90d4bbd760a152321f2143af7"  # type: ignore[arg-type]
    rspauth = digest_response(**example, for_server=True)  # type: ignore[arg-type]
    assert rspauth == "ea40f60335c427b5527b84dbabcdfffd"
    server = DigestMD5Server(
        SaslSettings({"chris": "secret"}, b""),
        "OA6MG9tEQGm2hh",
        realm="elwood.innosoft.com",
        service="imap",
        server_name="elwood.innosoft.com",
    )
    challenge = server.evaluate(b"")
    assert challenge.startswith(b'realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh"')
    response = (
        b'charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",'
        b'nc=00000001,cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",'
        b"response=d388dad90d4bbd760a152321f2143af7,qop=auth"
    )
    assert server.evaluate(response) == b"rspauth=ea40f60335c427b5527b84dbabcdfffd"
    assert server.complete and server.authorization_id == "chris"


def test_directives() -> None:
    assert parse_directives(b'a=1, b="x,\\"y" ,c=z') == {"a": "1", "b": 'x,"y', "c": "z"}
    with pytest.raises(SaslFailed, match="twice"):
        parse_directives(b"a=1,a=2")
    with pytest.raises(SaslFailed, match="unterminated"):
        parse_directives(b'a="1')


# -- against pure-sasl -------------------------------------------------------------------


def _exchange(user: str, password: str, server: DigestMD5Server) -> bytes:
    """kazoo's loop (``_authenticate_with_sasl``): the client's tokens until complete."""
    cli = puresasl_client.SASLClient(
        REALM, service="zookeeper", mechanism="DIGEST-MD5", username=user, password=password
    )
    challenge = None
    answer = b""
    while not cli.complete:
        token = cli.process(challenge=challenge)
        if cli.complete and not token:
            break
        answer = server.evaluate(token or b"")
        challenge = answer
    return answer


def test_pure_sasl_client_authenticates() -> None:
    server = DigestMD5Server(SETTINGS, nonce(b"s", 1))
    last = _exchange("jaasuser", "jaas_password", server)
    assert last.startswith(b"rspauth=")  # and pure-sasl checked it (it raises if wrong)
    assert server.complete and server.authorization_id == "jaasuser"
    with pytest.raises(SaslFailed, match="complete"):
        server.evaluate(b"more")


@pytest.mark.parametrize(
    ("user", "password", "why"),
    [
        ("jaasuser", "wrong", "Mismatched response"),
        ("baduser", "badpassword", "cannot acquire password"),
    ],
)
def test_pure_sasl_client_refused(user: str, password: str, why: str) -> None:
    server = DigestMD5Server(SETTINGS, nonce(b"s", 2))
    with pytest.raises(SaslFailed, match=why):
        _exchange(user, password, server)
    assert not server.complete and server.authorization_id is None


def test_super_password_and_response_checks() -> None:
    settings = SaslSettings(LOGINS, b"s", super_password="other")
    assert settings.password("super") == "other" and SETTINGS.password("super") == "super_secret"
    server = DigestMD5Server(SETTINGS, "N")
    server.evaluate(b"")
    good = {
        "username": "jaasuser",
        "realm": REALM,
        "password": "jaas_password",
        "nonce": "N",
        "cnonce": "C",
        "nc": "00000001",
        "qop": "auth",
        "digest_uri": "zookeeper/zk-sasl-md5",
    }

    def token(**changes: str) -> bytes:
        d = {**good, **changes}
        resp = digest_response(**{k: v for k, v in d.items() if k != "sent_uri"})  # type: ignore[arg-type]
        uri = d.get("sent_uri", d["digest_uri"])
        return (
            f'username="{d["username"]}",realm="{d["realm"]}",nonce="{d["nonce"]}",'
            f'cnonce="C",nc={d["nc"]},qop=auth,digest-uri="{uri}",response={resp}'
        ).encode()

    for bad, why in (
        ({"nonce": "other"}, "nonces do not match"),
        ({"nc": "00000002"}, "nonce count"),
        ({"realm": "elsewhere"}, "realm elsewhere"),
        ({"digest_uri": "http/zk-sasl-md5"}, "mismatched URI"),
    ):
        fresh = DigestMD5Server(SETTINGS, "N")
        fresh.evaluate(b"")
        with pytest.raises(SaslFailed, match=why):
            fresh.evaluate(token(**bad))
    assert server.evaluate(token()).startswith(b"rspauth=")


def test_utf8_names_are_hashed_as_latin1_when_they_fit() -> None:
    # RFC 2831 2.1.2.1: "é" fits ISO 8859-1, so both spellings of the hash agree
    kw = {
        "realm": REALM,
        "nonce": "N",
        "cnonce": "C",
        "nc": "00000001",
        "qop": "auth",
        "digest_uri": "zookeeper/zk-sasl-md5",
    }
    a = digest_response(username="josé", password="pw", utf8=True, **kw)
    b = digest_response(username="josé", password="pw", utf8=False, **kw)
    assert a == b
    digest_response(username="юзер", password="pw", utf8=True, **kw)  # UTF-8 then
    with pytest.raises(SaslFailed, match="outside ISO 8859-1"):
        digest_response(username="юзер", password="pw", utf8=False, **kw)


def test_nonces_differ() -> None:
    assert len({nonce(b"s", 1, i) for i in range(100)} | {nonce(b"t", 1, 0)}) == 101


# -- JAAS -----------------------------------------------------------------------------------

KAZOO_JAAS = """
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_jaasuser="jaas_password";
};"""


def test_jaas_server_section() -> None:
    assert server_logins(KAZOO_JAAS) == (LOGINS, None)
    assert server_logins("") == (None, None)  # kazoo's file without ZOOKEEPER_JAAS_AUTH
    text = (
        "// a comment\nClient { org.x.Mod optional a=b; };\n/* more */\n"
        "Other {\n org.apache.zookeeper.server.auth.DigestLoginModule required\n"
        "  user_a = 'x\\'y' ;\n};\n"
    )
    assert server_logins(text) == (None, None)
    assert server_logins(text, "Other") == ({"a": "x'y"}, None)
    assert set(parse_jaas(text)) == {"Client", "Other"}


def test_jaas_other_login_modules_turn_sasl_off_with_a_warning() -> None:
    kerberos = (
        "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true "
        'principal="zookeeper/127.0.0.1@KAZOOTEST.ORG"; };'
    )
    logins, warning = server_logins(kerberos)
    assert logins is None and warning is not None
    assert "Krb5LoginModule" in warning and "SASL is off" in warning


@pytest.mark.parametrize(
    "text",
    [
        "Server {",
        "Server { m required a=b }",
        "Server { m maybe; };",
        "Server { m required a=; };",
        'Server { m required a="never closed; };',
    ],
)
def test_jaas_syntax_errors(text: str) -> None:
    with pytest.raises(JaasError):
        parse_jaas(text)


def test_zoo_cfg_keys() -> None:
    props = {
        "authProvider.1": "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        "zookeeper.superUser": "jaasuser",
        "allowSaslFailedClients": "true",
        "SASLAuthenticationProvider.superPassword": "p",
    }
    assert sasl_provider_configured(props) and not sasl_provider_configured({})
    s = sasl_settings(props, LOGINS, b"x")
    assert s.super_users == {"jaasuser"} and s.allow_failed_clients and s.super_password == "p"


# -- ACLs --------------------------------------------------------------------------------------


def test_sasl_acls_need_the_provider() -> None:
    acl = [ACL(Perms.ALL, Id("sasl", "jaasuser"))]
    with pytest.raises(InvalidACL):
        fixup_acl(acl, ())
    on = AuthSettings(sasl=True)
    assert fixup_acl(acl, (), on) == tuple(acl)
    assert check_acl(Perms.READ, acl, [Id("sasl", "jaasuser")], on)
    assert check_acl(Perms.READ, acl, [Id("sasl", "super")], on)  # SASLAuthenticationProvider
    assert not check_acl(Perms.READ, acl, [Id("sasl", "other")], on)
    assert not check_acl(Perms.READ, acl, [Id("sasl", "jaasuser")])
    # an auth ACL grants to the caller's sasl id
    auth = [ACL(Perms.ALL, Id("auth", ""))]
    assert fixup_acl(auth, [Id("ip", "127.0.0.1"), Id("sasl", "u")], on) == (
        ACL(Perms.ALL, Id("sasl", "u")),
    )


def test_kerberos_names() -> None:
    assert sasl_is_valid("jaasuser") and sasl_is_valid("zk/host@REALM") and sasl_is_valid("u@R")
    assert not sasl_is_valid("a@b@c") and not sasl_is_valid("a/b/c@R")


# -- the server core ---------------------------------------------------------------------------


def _sasl_core(**extra: object) -> ServerCore:
    settings = ServerSettings(tick_time_ms=100, sasl=SETTINGS, sasl_acl=True)
    if extra:
        import dataclasses

        settings = dataclasses.replace(settings, **extra)  # type: ignore[arg-type]
    return ServerCore(settings, Database(DataTree()), now=0.0, wall_ms=1_700_000_000_000)


def _login(client: Client, user: str, password: str) -> list[ClientReply]:
    """The sasl requests kazoo sends (xids 1, 2...), the server's replies."""
    cli = puresasl_client.SASLClient(
        REALM, service="zookeeper", mechanism="DIGEST-MD5", username=user, password=password
    )
    challenge = None
    replies: list[ClientReply] = []
    while not cli.complete and not client.closed:
        token = cli.process(challenge=challenge)
        if cli.complete and not token:
            break
        before = len(client.got)
        client.send(OpCode.SASL, GetSASLRequest(token or b""))
        reply = client.got[before]
        assert isinstance(reply, ClientReply)
        replies.append(reply)
        if reply.header.err:
            break
        challenge = reply.response.token  # type: ignore[union-attr]
    return replies


def _connected(core: ServerCore, conn: int = 1) -> Client:
    c = Client(core, conn)
    c.connect()
    durable(core, [c])
    c.got.clear()
    return c


def test_sasl_login_gives_the_sasl_id_for_acls() -> None:
    core = _sasl_core()
    c = _connected(core)
    replies = _login(c, "jaasuser", "jaas_password")
    assert [r.header.err for r in replies] == [0, 0]
    assert all(r.header.zxid == 0 for r in replies)
    assert Id("sasl", "jaasuser") in core.conns[1].auth
    c.got.clear()
    acl = (ACL(Perms.ALL, Id("sasl", "jaasuser")),)
    c.send(OpCode.CREATE, CreateRequest("/s", b"x", acl, 0))
    durable(core, [c])
    assert c.got[-1].header.err == 0  # type: ignore[union-attr]
    other = _connected(core, 2)
    other.send(OpCode.GET_DATA, GetDataRequest("/s", False))
    assert other.got[-1].header.err == ErrorCode.NOAUTH  # type: ignore[union-attr]


def test_super_user() -> None:
    core = _sasl_core(sasl=SaslSettings(LOGINS, b"s", super_users=frozenset({"jaasuser"})))
    c = _connected(core)
    _login(c, "jaasuser", "jaas_password")
    assert Id("super", "") in core.conns[1].auth


def test_failed_login_is_authfailed_and_closed() -> None:
    core = _sasl_core()
    c = _connected(core)
    replies = _login(c, "baduser", "badpassword")
    assert [r.header.err for r in replies] == [0, ErrorCode.AUTHFAILED]
    assert c.closed


def test_allow_sasl_failed_clients_keeps_the_connection() -> None:
    core = _sasl_core(sasl=SaslSettings(LOGINS, b"s", allow_failed_clients=True))
    c = _connected(core)
    c.send(OpCode.SASL, GetSASLRequest(b""))
    c.send(OpCode.SASL, GetSASLRequest(b"username=nobody"))
    assert [r.header.err for r in c.got] == [0, 0]  # type: ignore[union-attr]
    assert c.got[-1].response.token is None  # type: ignore[union-attr]
    assert not c.closed and not any(i.scheme == "sasl" for i in core.conns[1].auth)


def test_sasl_off_answers_ok_without_a_token() -> None:
    core = _core()
    c = _connected(core)
    c.send(OpCode.SASL, GetSASLRequest(b""))
    assert c.got[-1].header.err == 0 and c.got[-1].response.token is None  # type: ignore[union-attr]
    assert not c.closed
