"""Java's ZooKeeper 3.8 client (``ZooKeeperMain``, Debian package) over zkquorum's secure
client port: the Netty client socket with ``zookeeper.client.secure=true`` and PEM stores
creates and reads a znode through TLS with a client certificate."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.interop.zk import JAVA_DIR, require_zookeeper
from tests.tls.certs import Pki
from tests.tls.test_tls_client_port import _pem_keys, _standalone

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
