"""Start-up failures of ``zkquorum run`` are one line on stderr, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.interop.zkserver import free_ports


def test_client_port_taken_is_one_line(tmp_path: Path) -> None:
    q1, e1, q2, e2 = free_ports(4)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        client_port = taken.getsockname()[1]
        (tmp_path / "myid").write_text("1\n")
        cfg = tmp_path / "zoo.cfg"
        cfg.write_text(
            f"tickTime=200\ninitLimit=5\nsyncLimit=2\ndataDir={tmp_path}\n"
            f"clientPort={client_port}\nclientPortAddress=127.0.0.1\n"
            f"server.1=127.0.0.1:{q1}:{e1}\nserver.2=127.0.0.1:{q2}:{e2}\n"
        )
        res = subprocess.run(
            [sys.executable, "-m", "zkquorum", "run", str(cfg), "--log-level", "ERROR"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"zkquorum: {cfg}: cannot start:")
    assert "address already in use" in lines[0]
