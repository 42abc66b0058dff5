"""Fixtures of the runtime tests.

``java_mixed``: real ZooKeeper 3.8 servers 2, 3 and 4 of a five-server ensemble whose
servers 1 and 5 are left to zkquorum (their zoo.cfg, myid and ports exist; nothing runs
there).  Started once per session, stopped by pid at the end; the three Java servers elect
a leader among themselves (3 of 5).  Skips (locally) or fails (CI=true,
ZKQUORUM_REQUIRE_ZK=1) when ZooKeeper is missing: ``tests/interop/zk.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.interop.zk import require_zookeeper
from tests.interop.zkserver import JavaEnsemble, make_ensemble

JAVA_SIDS = (2, 3, 4)
OUR_SIDS = (1, 5)


@pytest.fixture(scope="session")
def java_mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JavaEnsemble]:
    install = require_zookeeper()
    ens = make_ensemble(
        install,
        tmp_path_factory.mktemp("java-mixed"),
        (1, 2, 3, 4, 5),
        settings={"4lw.commands.whitelist": "*", "cnxTimeout": "1000"},
    )
    try:
        ens.start(JAVA_SIDS)
        ens.wait_for_leader(timeout=60)
        yield ens
    except BaseException:
        print(ens.logs(), file=sys.stderr)
        raise
    finally:
        ens.stop()
