"""The secure client port (``secureClientPort`` with zoo.cfg's ``ssl.*`` keys).

Real TLS connections to in-process servers: a session opens over TLS with a client
certificate; ``ssl.clientAuth`` need (the default) refuses a client without one, want and
none serve it; JKS stores (as kazoo's harness writes them, made here with pyjks) and PEM
stores both load; every seat of a three-peer ensemble serves it, and a write made through
one seat's secure port is read through another's.  The JKS decoder is checked against
pyjks, an independent implementation."""

from __future__ import annotations

import asyncio
import ssl
import struct
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.runtime.helpers import wait_until
from tests.tls.certs import Pki
from tests.tls.helpers import configs
from zkquorum.config.zoocfg import parse_zoo_cfg
from zkquorum.runtime import keystore
from zkquorum.runtime.files import load_config
from zkquorum.runtime.peer import PeerRuntime
from zkquorum.runtime.standalone import StandaloneServer
from zkquorum.runtime.tls import TlsConfigError, client_settings
from zkquorum.testing import free_ports
from zkquorum.wire.client import encode_connect_request
from zkquorum.wire.client_records import ConnectRequest, ConnectResponse


def _pem_keys(pki: Pki, **extra: str) -> dict[str, str]:
    return {
        "ssl.keyStore.location": str(pki.keystore("good")),
        "ssl.trustStore.location": str(pki.truststore),
        **extra,
    }


def _standalone(
    tmp_path: Path, keys: dict[str, str], *, plain_port: bool = True
) -> tuple[StandaloneServer, int, int]:
    plain, secure = free_ports(2)
    lines = {
        "tickTime": "200",
        "dataDir": str(tmp_path / "data"),
        **({"clientPort": str(plain), "clientPortAddress": "127.0.0.1"} if plain_port else {}),
        "secureClientPort": str(secure),
        "secureClientPortAddress": "127.0.0.1",
        "4lw.commands.whitelist": "*",
        **keys,
    }
    text = "".join(f"{k}={v}\n" for k, v in lines.items())
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(text)
    config = parse_zoo_cfg(text, path=str(cfg))
    assert not [k for k, _ in config.unused_keys if k.startswith("ssl.")]
    return StandaloneServer(config), plain, secure


def _client_context(pki: Pki, cert: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(pki.truststore))
    if cert is not None:
        ctx.load_cert_chain(str(pki.keystore(cert)))
    return ctx


async def _open_session(port: int, ctx: ssl.SSLContext) -> ConnectResponse:
    """A TLS connection and a ConnectRequest; the ConnectResponse (``ConnectionError``
    when the server closes instead)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1"), 10
    )
    try:
        writer.write(encode_connect_request(ConnectRequest(0, 0, 10_000, 0, bytes(16), False)))
        await writer.drain()
        head = await asyncio.wait_for(reader.readexactly(4), 10)
        (n,) = struct.unpack(">i", head)
        body = await asyncio.wait_for(reader.readexactly(n), 10)
        return ConnectResponse.decode(body)
    except (asyncio.IncompleteReadError, ssl.SSLError) as exc:
        raise ConnectionError(str(exc)) from exc
    finally:
        writer.close()


async def _refused(port: int, ctx: ssl.SSLContext) -> bool:
    try:
        await _open_session(port, ctx)
    except (ConnectionError, ssl.SSLError):
        return True
    return False


def test_session_over_tls_and_refusal_without_a_client_certificate(
    tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    server, plain, secure = _standalone(tmp_path, _pem_keys(pki))

    async def scenario() -> None:
        async with server:
            assert server.port is not None and server.port.secure_bound is not None
            resp = await _open_session(secure, _client_context(pki, "good"))
            assert resp.session_id != 0 and resp.timeout == 4000
            # clientAuth=need (the default): no certificate, no session
            assert await _refused(secure, _client_context(pki, None))
            # a certificate from another CA: refused too
            assert await _refused(secure, _client_context(pki, "wrong-ca"))
            port = server.port
            await wait_until(lambda: port.tls_refused == 2, timeout=10, what="two refusals")
            # the plain port still serves, without TLS; conf names the secure port
            r, w = await asyncio.open_connection("127.0.0.1", plain)
            w.write(b"conf")
            conf = (await asyncio.wait_for(r.read(), 10)).decode()
            w.close()
            assert f"secureClientPort={secure}\n" in conf

    asyncio.run(scenario())
    assert "TLS handshake failed: PEER_DID_NOT_RETURN_A_CERTIFICATE" in caplog.text
    assert "TLS handshake failed: CERTIFICATE_VERIFY_FAILED" in caplog.text


def test_secure_client_port_alone(tmp_path: Path, pki: Pki) -> None:
    server, _, secure = _standalone(tmp_path, _pem_keys(pki), plain_port=False)

    async def scenario() -> None:
        async with server:
            assert server.port is not None and server.port.bound is None  # no 2181
            resp = await _open_session(secure, _client_context(pki, "good"))
            assert resp.session_id != 0

    asyncio.run(scenario())


@pytest.mark.parametrize("auth", ["want", "none"])
def test_client_auth_want_and_none_serve_a_client_without_certificate(
    tmp_path: Path, pki: Pki, auth: str
) -> None:
    server, _, secure = _standalone(tmp_path, _pem_keys(pki, **{"ssl.clientAuth": auth}))

    async def scenario() -> None:
        async with server:
            resp = await _open_session(secure, _client_context(pki, None))
            assert resp.session_id != 0
            resp = await _open_session(secure, _client_context(pki, "good"))
            assert resp.session_id != 0

    asyncio.run(scenario())


# -- JKS --------------------------------------------------------------------------------

jks = pytest.importorskip("jks")


def _der(path: Path, kind: str) -> list[bytes]:
    """The DER blocks of one kind in a PEM file."""
    text = path.read_text()
    out = []
    begin, end = f"-----BEGIN {kind}-----", f"-----END {kind}-----"
    while begin in text:
        body = text.split(begin, 1)[1].split(end, 1)[0]
        out.append(ssl.PEM_cert_to_DER_cert(f"{begin}{body}{end}\n") if kind == "CERTIFICATE"
                   else _b64(body))  # fmt: skip
        text = text.split(end, 1)[1]
    return out


def _b64(body: str) -> bytes:
    import base64

    return base64.b64decode("".join(body.split()))


def _jks_stores(pki: Pki, root: Path, password: str = "apassword") -> tuple[Path, Path]:
    """keystore.jks (the good key and its chain) and truststore.jks (the CA), as kazoo's
    harness makes them."""
    key = _der(pki.keystore("good"), "PRIVATE KEY")[0]
    chain = _der(pki.keystore("good"), "CERTIFICATE")
    entry = jks.PrivateKeyEntry.new("server cert", chain, key, "pkcs8")
    ks = root / "keystore.jks"
    jks.KeyStore.new("jks", [entry]).save(str(ks), password)
    ca = _der(pki.truststore, "CERTIFICATE")[0]
    ts = root / "truststore.jks"
    jks.KeyStore.new("jks", [jks.TrustedCertEntry.new("ca", ca)]).save(str(ts), password)
    return ks, ts


def test_jks_decoder_agrees_with_pyjks(tmp_path: Path, pki: Pki) -> None:
    ks, ts = _jks_stores(pki, tmp_path)
    store = keystore.parse_jks(ks.read_bytes(), "apassword")
    theirs = jks.KeyStore.load(str(ks), "apassword").private_keys["server cert"]
    assert store.keys[0].pkcs8 == theirs.pkey_pkcs8
    assert list(store.keys[0].chain) == [c[1] for c in theirs.cert_chain]
    trust = keystore.parse_jks(ts.read_bytes(), "apassword")
    assert trust.trusted == tuple(_der(pki.truststore, "CERTIFICATE"))
    # no password: the integrity digest is not checked, trusted certificates still read
    assert keystore.parse_jks(ts.read_bytes(), None).trusted == trust.trusted
    with pytest.raises(keystore.KeyStoreError, match="password was incorrect"):
        keystore.parse_jks(ks.read_bytes(), "wrong")
    with pytest.raises(keystore.KeyStoreError, match="cannot recover the key"):
        keystore.parse_jks(ks.read_bytes(), None)  # the key needs its password
    with pytest.raises(keystore.KeyStoreError, match="not a JKS file"):
        keystore.parse_jks(pki.truststore.read_bytes(), None)
    with pytest.raises(keystore.KeyStoreError, match="truncated"):
        keystore.parse_jks(ks.read_bytes()[:100], None)


def test_client_settings(tmp_path: Path, pki: Pki) -> None:
    ks, ts = _jks_stores(pki, tmp_path)
    s = client_settings(
        {
            "ssl.keyStore.location": str(ks),
            "zookeeper.ssl.keyStore.password": "apassword",  # the system-property spelling
            "ssl.trustStore.location": str(ts),
            "ssl.quorum.clientAuth": "none",  # the quorum's, not ours
        }
    )
    assert (s.key_store_type, s.trust_store_type, s.client_auth) == ("JKS", "JKS", "NEED")
    assert s.key_store_password == "apassword" and s.trust_store_password is None
    with pytest.raises(TlsConfigError, match=r"secureClientPort needs ssl\.keyStore\.location"):
        client_settings({})
    with pytest.raises(TlsConfigError, match="only PEM and JKS"):
        client_settings({"ssl.keyStore.location": "k.p12"})


def test_jks_stores_serve_kazoo(tmp_path: Path, pki: Pki) -> None:
    kazoo_client = pytest.importorskip("kazoo.client")
    ks, ts = _jks_stores(pki, tmp_path)
    keys = {
        "ssl.keyStore.location": str(ks),
        "ssl.keyStore.password": "apassword",
        "ssl.trustStore.location": str(ts),
        "ssl.trustStore.password": "apassword",
    }
    server, _, secure = _standalone(tmp_path, keys)
    client_key = tmp_path / "client.pem"
    client_key.write_text(pki.keystore("good").read_text())

    def kazoo_round() -> bytes:
        zk = kazoo_client.KazooClient(
            hosts=f"127.0.0.1:{secure}",
            use_ssl=True,
            keyfile=str(client_key),
            certfile=str(client_key),
            ca=str(pki.truststore),
            timeout=5,
        )
        zk.start(timeout=10)
        try:
            zk.create("/over-tls", b"yes")
            return bytes(zk.get("/over-tls")[0])
        finally:
            zk.stop()
            zk.close()

    async def scenario() -> None:
        async with server:
            assert await asyncio.to_thread(kazoo_round) == b"yes"

    asyncio.run(scenario())


def test_a_bad_store_stops_start_up(tmp_path: Path, pki: Pki) -> None:
    ks, _ = _jks_stores(pki, tmp_path)
    keys = {"ssl.keyStore.location": str(ks), "ssl.keyStore.password": "nope"}
    server, _, _ = _standalone(tmp_path, keys)

    async def scenario() -> None:
        with pytest.raises(TlsConfigError, match="password was incorrect"):
            await server.start()
        await server.close()

    asyncio.run(scenario())


# -- every seat of an ensemble ----------------------------------------------------------


def test_every_seat_serves_tls_clients(tmp_path: Path, pki: Pki) -> None:
    ports = free_ports(3)
    extra = {
        sid: {"secureClientPort": str(ports[sid - 1]), "secureClientPortAddress": "127.0.0.1"}
        for sid in (1, 2, 3)
    }
    cfgs = configs(tmp_path, None, {1: None, 2: None, 3: None}, extra=extra, common=_pem_keys(pki))
    # seat 3 serves the secure port only
    cfg3 = Path(cfgs[3].path)
    cfg3.write_text(
        "".join(
            line
            for line in cfg3.read_text().splitlines(keepends=True)
            if not line.startswith(("clientPort=", "clientPortAddress="))
        )
    )
    cfgs[3] = load_config(cfg3)
    assert cfgs[3].client_port is None
    ctx = _client_context(pki, "good")

    async def scenario() -> None:
        async with AsyncExitStack() as stack:
            peers = [await stack.enter_async_context(PeerRuntime(cfgs[s])) for s in (1, 2, 3)]
            await wait_until(
                lambda: all(p.server is not None for p in peers), timeout=20, what="serving"
            )
            ids = {(await _open_session(port, ctx)).session_id for port in ports}
            assert len(ids) == 3 and 0 not in ids
            assert all(p.client_port and p.client_port.secure_bound for p in peers)
            assert peers[2].client_port is not None and peers[2].client_port.bound is None

    asyncio.run(scenario())
