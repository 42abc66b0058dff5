"""The connection manager against real ZooKeeper 3.8 servers, in both sid orders.

Servers 2, 3 and 4 are Java (``java_mixed`` in conftest.py); we play server 1 (smaller
than all of them: each Java server drops our connection and connects back) and server 5
(larger: our connections are kept).  We send a LOOKING notification and decode the
decided servers' replies (spec 5, step 6: FOLLOWING/LEADING with the decided vote).
"""

from __future__ import annotations

import pytest

from tests.interop.zkserver import JavaEnsemble
from tests.runtime.conftest import JAVA_SIDS
from tests.runtime.helpers import Events, run, within
from zkquorum.config.zoocfg import parse_config_string
from zkquorum.runtime.connections import ConnectionManager, PeerConnected
from zkquorum.runtime.files import load_config
from zkquorum.wire.election import Notification, ServerState

pytestmark = pytest.mark.interop


def _leader(ens: JavaEnsemble) -> int:
    modes = {sid: ens.servers[sid].mode() for sid in JAVA_SIDS}
    leaders = [sid for sid, mode in modes.items() if mode == "leader"]
    assert len(leaders) == 1, modes
    return leaders[0]


@pytest.mark.parametrize(
    ("our_sid", "we_dial"), [(1, False), (5, True)], ids=["our-sid-smaller", "our-sid-larger"]
)
def test_exchange_votes_with_java(java_mixed: JavaEnsemble, our_sid: int, we_dial: bool) -> None:
    leader = _leader(java_mixed)
    cfg = load_config(java_mixed.servers[our_sid].cfg_path)
    assert cfg.my_id == our_sid and cfg.verifier is not None
    events = Events()

    async def main() -> dict[int, Notification]:
        async with ConnectionManager.from_config(cfg, on_event=events) as cm:
            vote = Notification(
                ServerState.LOOKING, our_sid, 0, 1, 0, 2, cfg.verifier.to_zk_string()
            )  # type: ignore[union-attr]
            for sid in JAVA_SIDS:
                cm.send(sid, vote)
            decided: dict[int, Notification] = {}
            while len(decided) < len(JAVA_SIDS):
                # A Java server may first flush the LOOKING vote it queued for us during
                # its own election (SendWorker resends / drains its queue on connect).
                r = await within(cm.receive(), 20.0)
                assert isinstance(r.message, Notification), r
                if r.message.state is not ServerState.LOOKING:
                    decided[r.sid] = r.message
            for sid in JAVA_SIDS:
                info = cm.connection_info(sid)
                assert info is not None and info.outgoing is we_dial, (sid, info)
            assert cm.counters.bad_connections_refused == 0
            return decided

    decided = run(main)
    for sid, n in decided.items():
        assert n.state is (ServerState.LEADING if sid == leader else ServerState.FOLLOWING)
        assert n.leader == leader
        assert n.version == 2 and n.config is not None
        members = parse_config_string(n.config).all_members
        assert sorted(members) == [1, 2, 3, 4, 5]
        assert members[our_sid].election_addrs == cfg.me.election_addrs  # type: ignore[union-attr]
    connected = [e for e in events.items if isinstance(e, PeerConnected)]
    assert {e.sid for e in connected} == set(JAVA_SIDS)
    assert all(e.outgoing is we_dial for e in connected)
