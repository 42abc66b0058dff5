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
        "zoo.cfg:4: secureClientPort ignored: zkquorum has no TLS client port",
        "zoo.cfg:7: serverCnxnFactory ignored: zkquorum has one client connection factory, "
        "on asyncio",
        "zoo.cfg:8: authProvider.1 ignored: zkquorum authenticates digest, ip, world and "
        "super, not SASL",
        "zoo.cfg:9: ssl.keyStore.location ignored: these are for the TLS client port, which "
        "zkquorum does not have",
    ]  # maxClientCnxns and admin.serverPort are honoured
