"""The JAAS file at start-up (runtime/sasl_login.py) and SASL DIGEST-MD5 end to end: kazoo
with pure-sasl against an in-process standalone server, as kazoo's test_sasl.py does."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.test_sasl import KAZOO_JAAS
from zkquorum.config.zoocfg import parse_zoo_cfg
from zkquorum.runtime.sasl_login import SaslConfigError, load_sasl
from zkquorum.runtime.standalone import StandaloneServer
from zkquorum.testing import free_ports

KEY = "java.security.auth.login.config"


def test_load_sasl(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    jaas = tmp_path / "jaas.conf"
    assert load_sasl({}) is None
    jaas.write_text("")
    assert load_sasl({KEY: str(jaas)}) is None  # no Server section: off, as 3.8
    jaas.write_text(KAZOO_JAAS)
    s = load_sasl({KEY: str(jaas), "superUser": "jaasuser"})
    assert s is not None and s.logins["jaasuser"] == "jaas_password"
    assert s.super_users == {"jaasuser"} and len(s.seed) == 32
    other = load_sasl({KEY: str(jaas)})
    assert other is not None and other.seed != s.seed
    jaas.write_text("Server { com.sun.security.auth.module.Krb5LoginModule required; };")
    caplog.set_level(logging.WARNING)
    assert load_sasl({KEY: str(jaas)}) is None
    assert "SASL is off" in caplog.text
    with pytest.raises(SaslConfigError, match="cannot read"):
        load_sasl({KEY: str(tmp_path / "missing.conf")})
    jaas.write_text("Server {")
    with pytest.raises(SaslConfigError, match="not a JAAS login configuration"):
        load_sasl({KEY: str(jaas)})


def test_a_bad_jaas_file_is_one_line_at_start_up(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(
        f"tickTime=2000\ndataDir={tmp_path}/data\nclientPort={port}\n"
        f"clientPortAddress=127.0.0.1\n{KEY}={tmp_path}/missing.conf\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "zkquorum", "run", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1].startswith(f"zkquorum: {cfg}: {KEY}=")


def test_kazoo_sasl_digest_login(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    kazoo_client = pytest.importorskip("kazoo.client")
    pytest.importorskip("puresasl")
    from kazoo.exceptions import AuthFailedError, NoAuthError
    from kazoo.handlers.threading import KazooTimeoutError
    from kazoo.security import make_acl

    (port,) = free_ports(1)
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(KAZOO_JAAS)
    text = (
        f"tickTime=200\ndataDir={tmp_path}/data\nclientPort={port}\n"
        "clientPortAddress=127.0.0.1\n"
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
        f"{KEY}={jaas}\n"
    )
    (tmp_path / "zoo.cfg").write_text(text)
    config = parse_zoo_cfg(text, path=str(tmp_path / "zoo.cfg"))
    assert config.unused_keys == ()

    def client(user: str, password: str):  # type: ignore[no-untyped-def]
        opts = {"mechanism": "DIGEST-MD5", "username": user, "password": password}
        return kazoo_client.KazooClient(
            hosts=f"127.0.0.1:{port}", timeout=5, sasl_options=opts, connection_retry=None
        )

    def scenario_sync() -> None:
        zk = client("jaasuser", "jaas_password")
        zk.start(timeout=10)
        plain = kazoo_client.KazooClient(hosts=f"127.0.0.1:{port}", timeout=5)
        plain.start(timeout=10)
        try:
            zk.create("/1", acl=(make_acl("sasl", credential="jaasuser", all=True),))
            assert zk.get("/1")[0] == b""
            with pytest.raises(NoAuthError):
                plain.get("/1")
            bad = client("baduser", "badpassword")
            # kazoo reports CONNECTED before its SASL exchange, so start() returns (then a
            # request fails) or, when AUTH_FAILED came first, times out at once
            with pytest.raises((AuthFailedError, KazooTimeoutError)):
                bad.start(timeout=10)
                bad.exists("/")
            bad.stop()
            bad.close()
        finally:
            for c in (zk, plain):
                c.stop()
                c.close()

    async def scenario() -> None:
        async with StandaloneServer(config):
            await asyncio.to_thread(scenario_sync)

    caplog.set_level(logging.INFO)
    asyncio.run(scenario())
    assert "adding SASL authorization for authorizationID: jaasuser" in caplog.text
    assert "failed to SASL authenticate: DIGEST-MD5: cannot acquire password for baduser" in (
        caplog.text
    )
