"""``zkquorum run`` names each zoo.cfg key it reads but does not act on, once, with why."""

from __future__ import annotations

from zkquorum.cli.run_cmd import ignored_keys
from zkquorum.config.zoocfg import parse_zoo_cfg

KAZOO_CFG = """tickTime=2000
dataDir=/tmp/x
clientPort=2181
secureClientPort=2281
maxClientCnxns=0
admin.serverPort=8081
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider
ssl.keyStore.location=/k
"""


def test_kazoos_zoo_cfg_gets_one_warning_per_ignored_key() -> None:
    cfg = parse_zoo_cfg(KAZOO_CFG, path="zoo.cfg")
    lines = ignored_keys("zoo.cfg", cfg.unused_keys)
    assert lines == [
        "zoo.cfg:7: serverCnxnFactory ignored: zkquorum has one client connection factory, "
        "on asyncio",
    ]  # maxClientCnxns, admin.serverPort, secureClientPort and its ssl.* keys, and the
    # SASL provider are honoured


def test_other_auth_providers_are_named() -> None:
    text = (
        KAZOO_CFG + "authProvider.2=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n"
    )
    cfg = parse_zoo_cfg(text, path="zoo.cfg")
    assert ignored_keys("zoo.cfg", cfg.unused_keys)[-1] == (
        "zoo.cfg:10: authProvider.2 ignored: zkquorum's providers are digest, ip, world, "
        "super and SASL's"
    )


def test_ssl_keys_without_a_secure_client_port_are_named() -> None:
    text = KAZOO_CFG.replace("secureClientPort=2281\n", "")
    cfg = parse_zoo_cfg(text, path="zoo.cfg")
    assert ignored_keys("zoo.cfg", cfg.unused_keys)[-1] == (
        "zoo.cfg:8: ssl.keyStore.location ignored: the TLS client port's keys, and "
        "secureClientPort is not set"
    )
