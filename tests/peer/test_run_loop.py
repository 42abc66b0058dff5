"""``zkquorum run --loop uvloop``: the same peer on libuv's event loop.

Three processes on uvloop elect a leader; a client writes through a follower (forwarded
to the leader, proposed, acknowledged, committed) and reads the write back from every
server; each process says in its log which loop it runs and has uvloop's extension
mapped.  An unknown loop name is a one-line error.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.peer.cluster import Ensemble

kazoo_client = pytest.importorskip("kazoo.client")

SETTINGS = {"tickTime": "100", "initLimit": "20", "syncLimit": "5", "4lw.commands.whitelist": "*"}


def _client(port: int):  # type: ignore[no-untyped-def]
    zk = kazoo_client.KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
    zk.start(timeout=20)
    return zk


def test_an_ensemble_on_uvloop_serves_writes_through_a_follower(
    ensembles: Callable[..., Ensemble],
) -> None:
    ens = ensembles(py_sids=(1, 2, 3), settings=SETTINGS, py_args=("--loop", "uvloop"))
    leader = ens.wait_for_leader()
    follower = next(sid for sid in ens.servers if sid != leader)
    zk = _client(ens.servers[follower].client_port)
    try:
        for i in range(50):
            zk.create(f"/loop-{i}", str(i).encode())
        zk.set("/loop-0", b"again")
    finally:
        zk.stop()
        zk.close()
    for sid, server in ens.servers.items():
        reader = _client(server.client_port)
        try:
            reader.sync("/")
            assert reader.get("/loop-0")[0] == b"again", sid
            assert len([c for c in reader.get_children("/") if c.startswith("loop-")]) == 50
        finally:
            reader.stop()
            reader.close()
        pid = server.proc.pid if server.proc is not None else None
        assert pid is not None
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "uvloop" in maps, f"peer {sid} has no uvloop extension mapped"
        assert "event loop: uvloop" in server.log(), sid


def test_an_unknown_loop_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"tickTime=2000\ndataDir={tmp_path}\nclientPort=2181\n")
    res = subprocess.run(
        [sys.executable, "-m", "zkquorum", "run", "--loop", "trio", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "zkquorum: unknown event loop 'trio' (asyncio or uvloop)"
    ]
