"""Every four-letter word 3.8 knows answers on the client port of a live zkquorum server
(standalone, and a follower of three peers) while a kazoo client holds a session with an
ephemeral node and a watch: the lists name that client."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from zkquorum.testing import Member, ZooKeeperEnsemble, ZooKeeperServer, four_letter_word

kazoo_client = pytest.importorskip("kazoo.client")


def _check_words(member: Member, mode: str) -> None:
    zk = kazoo_client.KazooClient(hosts=member.address, timeout=4)
    zk.start(timeout=15)
    try:
        zk.create("/w/eph", b"", ephemeral=True, makepath=True)
        zk.get("/w", watch=lambda _event: None)
        session = f"0x{zk.client_id[0]:x}"

        def word(w: str) -> str:
            return four_letter_word(member.client_port, w)

        assert f"Mode: {mode}" in word("srvr")
        stat = word("stat")
        assert "Clients:\n /127.0.0.1:" in stat and "Latency min/avg/max: " in stat
        assert f"zk_server_state\t{mode}" in word("mntr")
        assert "zk_ephemerals_count\t1" in word("mntr")
        assert f"sid={session}" in word("cons")
        assert session in word("dump") and "/w/eph" in word("dump")
        assert word("wchs").startswith("1 connections watching 1 paths")
        assert word("wchc") == f"{session}\n\t/w\n\n"
        assert word("wchp") == f"/w\n\t{session}\n\n"
        assert word("dirs").startswith("datadir_size: ")
        assert word("conf").startswith("clientPort=")
        assert word("envi").startswith("Environment:\n")
        assert (word("ruok"), word("isro")) == ("imok", "rw")
        assert word("srst") == "Server stats reset.\n"
        assert "Received: 0\n" in word("srvr")
        assert word("crst") == "Connection stats reset.\n"
        assert "recved=0" in word("cons")
        # stmk takes the 8 bytes after it (a big-endian long) as the new trace mask
        with socket.create_connection(("127.0.0.1", member.client_port), timeout=2) as s:
            s.sendall(b"stmk" + struct.pack(">q", 0x1F2))
            assert b"".join(iter(lambda: s.recv(100), b"")) == b"498"
        assert word("gtmk") == "498"
    finally:
        zk.stop()
        zk.close()


def test_words_of_a_standalone_server(tmp_path: Path) -> None:
    with ZooKeeperServer(tmp_path) as server:
        _check_words(server.server, "standalone")


@pytest.mark.slow
def test_words_of_a_follower(tmp_path: Path) -> None:
    with ZooKeeperEnsemble(tmp_path) as ens:
        leader = ens.leader()
        follower = next(m for m in ens.members if m.sid != leader)
        _check_words(follower, "follower")
