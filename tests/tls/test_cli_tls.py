"""A bad TLS setting is a one-line error from ``zkquorum run``, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_unsupported_key_store_type_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "myid").write_text("1\n")
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(
        f"tickTime=200\ninitLimit=5\nsyncLimit=2\ndataDir={tmp_path}\nsslQuorum=true\n"
        "ssl.quorum.keyStore.location=/nonexistent.p12\nssl.quorum.keyStore.type=PKCS12\n"
        "server.1=127.0.0.1:0:1\nserver.2=127.0.0.1:2:3\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "zkquorum", "run", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"zkquorum: {cfg}: ssl.quorum.keyStore.type=PKCS12")
