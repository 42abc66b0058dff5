"""Mixed ensembles (Java ZooKeeper 3.8 and zkquorum processes) with sslQuorum on.

Debian's ``zookeeper.jar`` manifest leaves out netty-codec, which Java's quorum TLS needs
(spec/quorum-tls.md): :func:`tls_install` adds it to the servers' classpath.  Each server
gets its own key store (``s<sid>-keystore.pem``) unless ``keystores`` says otherwise.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tests.interop.zk import JAVA_DIR, ZooKeeperInstall
from tests.peer.cluster import Ensemble, ensemble
from tests.tls.certs import Pki

NETTY_CODEC = JAVA_DIR / "netty-codec.jar"

FAST = {"tickTime": "200", "initLimit": "10", "syncLimit": "5", "4lw.commands.whitelist": "*"}


def tls_install(install: ZooKeeperInstall) -> ZooKeeperInstall:
    if not NETTY_CODEC.is_file():
        pytest.skip(f"{NETTY_CODEC} is missing (Debian package libnetty-java)")
    return dataclasses.replace(install, log_jars=(*install.log_jars, NETTY_CODEC))


@contextlib.contextmanager
def tls_ensemble(
    base_dir: Path,
    pki: Pki | None,
    install: ZooKeeperInstall,
    *,
    py_sids: Sequence[int],
    java_sids: Sequence[int],
    keystores: Mapping[int, str] | None = None,
    settings: Mapping[str, str] | None = None,
    start: bool = True,
) -> Iterator[Ensemble]:
    """Like :func:`tests.peer.cluster.ensemble`, with quorum TLS everywhere (``pki=None``:
    plaintext, for side-by-side measurements)."""
    common = dict(FAST)
    if pki is not None:
        common.update(pki.settings("s1"))
        del common["ssl.quorum.keyStore.location"]
    common.update(settings or {})
    with ensemble(
        base_dir,
        py_sids=py_sids,
        java_sids=java_sids,
        install=tls_install(install),
        settings=common,
        start=False,
    ) as ens:
        if pki is not None:
            for sid, server in ens.servers.items():
                name = (keystores or {}).get(sid, f"s{sid}")
                with server.cfg_path.open("a") as f:
                    f.write(f"ssl.quorum.keyStore.location={pki.keystore(name)}\n")
        if start:
            ens.start()
        yield ens
