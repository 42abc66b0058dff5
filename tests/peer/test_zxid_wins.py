"""The most up-to-date peer wins, not the largest sid (totalOrderPredicate: epoch, zxid, sid).

Peers 1 and 2 start with a transaction in their logs (zxid 0x100000003); peer 3 — the
largest sid — starts empty. Whatever the order they come up in, 3 must not lead.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.peer.cluster import Ensemble
from zkquorum.runtime.storage import Storage
from zkquorum.wire.jute import ACL, Id
from zkquorum.wire.txn import CreateTxn, OpCode, Txn, TxnHeader
from zkquorum.wire.zxid import make_zxid

FAST = {"tickTime": "100", "initLimit": "10", "syncLimit": "5", "4lw.commands.whitelist": "*"}
OPEN = (ACL(0x1F, Id("world", "anyone")),)


def seed_log(data_dir: object, upto: int) -> None:
    storage = Storage(data_dir)  # type: ignore[arg-type]
    storage.load()  # lays out version-2/ with an empty snapshot, as a fresh peer would
    txns = [
        Txn(
            TxnHeader(0, c, make_zxid(1, c), 0, OpCode.CREATE),
            CreateTxn(f"/n{c}", b"x", OPEN, False, c),
        )
        for c in range(1, upto + 1)
    ]
    storage.append(txns)
    storage.write_accepted_epoch(1)
    storage.write_current_epoch(1)
    storage.close()


def test_a_larger_sid_with_a_lower_zxid_does_not_win(
    ensembles: Callable[..., Ensemble],
) -> None:
    ens = ensembles(py_sids=[1, 2, 3], settings=FAST, start=False)
    seed_log(ens.servers[1].data_dir, 3)
    seed_log(ens.servers[2].data_dir, 3)
    ens.start([3, 1, 2])  # the empty peer first: it must still not win
    leader = ens.wait_for_leader(timeout=30)
    assert leader == 2  # the largest sid among the most up-to-date
    assert ens.servers[3].mode() == "follower"
    info = ens.servers[3].srvr() or {}
    # peer 3 synced up to the others' history (DIFF/SNAP), so its zxid is at least theirs
    assert int(info["Zxid"], 16) >= make_zxid(1, 3), info
