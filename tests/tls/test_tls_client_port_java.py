"""Java against zkquorum's secure client port: ZooKeeper 3.8's client (``ZooKeeperMain``,
Debian package; the Netty client socket with ``zookeeper.client.secure=true`` and PEM
stores) creates and reads a znode through TLS with a client certificate, and JKS stores
written by the JDK's keytool load."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from tests.interop.zk import JAVA_DIR, require_zookeeper
from tests.tls.certs import Pki
from tests.tls.test_tls_client_port import _open_session, _pem_keys, _standalone
from zkquorum.runtime import keystore

pytestmark = pytest.mark.interop

# the Netty client socket needs these beside what zookeeper.jar's manifest brings
NETTY_JARS = ("netty-codec", "netty-resolver", "netty-transport-native-unix-common")


def test_java_client_over_tls(tmp_path: Path, pki: Pki) -> None:
    zk = require_zookeeper()
    classpath = os.pathsep.join(
        [str(zk.jar), *map(str, zk.log_jars), *(str(JAVA_DIR / f"{j}.jar") for j in NETTY_JARS)]
    )
    server, _, secure = _standalone(tmp_path, _pem_keys(pki))

    async def cli(*command: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            zk.java,
            "-cp",
            classpath,
            "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
            "-Dzookeeper.client.secure=true",
            f"-Dzookeeper.ssl.keyStore.location={pki.keystore('good')}",
            "-Dzookeeper.ssl.keyStore.type=PEM",
            f"-Dzookeeper.ssl.trustStore.location={pki.truststore}",
            "-Dzookeeper.ssl.trustStore.type=PEM",
            "org.apache.zookeeper.ZooKeeperMain",
            "-server",
            f"127.0.0.1:{secure}",
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        return out.decode(errors="replace")

    async def scenario() -> None:
        async with server:
            await cli("create", "/java-over-tls", "hello")
            out = await cli("get", "/java-over-tls")
            assert out.rstrip().splitlines()[-1] == "hello", out
            assert server.port is not None and server.port.secure_conns == set()

    asyncio.run(scenario())


def test_stores_made_by_javas_keytool(tmp_path: Path) -> None:
    """A JKS key store and trust store written by the JDK's keytool (Java's own JKS code)
    serve a session: the server's key from one, the trusted client certificate from the
    other (here the same self-signed pair, clientAuth need)."""
    keytool = shutil.which("keytool")
    if keytool is None:
        pytest.skip("no keytool (a JDK)")

    def run(*args: str) -> None:
        subprocess.run([keytool, *args], check=True, capture_output=True, timeout=120)

    ks, ts, pem = tmp_path / "ks.jks", tmp_path / "ts.jks", tmp_path / "cert.pem"
    run(
        "-genkeypair", "-storetype", "JKS", "-keystore", str(ks), "-storepass", "apassword",
        "-keypass", "apassword", "-alias", "server", "-keyalg", "EC", "-groupname", "secp256r1",
        "-dname", "CN=localhost", "-validity", "2", "-ext", "san=ip:127.0.0.1",
    )  # fmt: skip
    run("-exportcert", "-rfc", "-keystore", str(ks), "-storepass", "apassword",
        "-alias", "server", "-file", str(pem))  # fmt: skip
    run("-importcert", "-noprompt", "-storetype", "JKS", "-keystore", str(ts),
        "-storepass", "apassword", "-alias", "ca", "-file", str(pem))  # fmt: skip
    keys = {
        "ssl.keyStore.location": str(ks),
        "ssl.keyStore.password": "apassword",
        "ssl.trustStore.location": str(ts),
        "ssl.trustStore.password": "apassword",
    }
    server, _, secure = _standalone(tmp_path, keys)
    (tmp_path / "client.pem").write_text(
        keystore.key_store_pem(keystore.parse_jks(ks.read_bytes(), "apassword"))
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(pem))
    ctx.load_cert_chain(str(tmp_path / "client.pem"))

    async def scenario() -> None:
        async with server:
            assert (await _open_session(secure, ctx)).session_id != 0

    asyncio.run(scenario())
