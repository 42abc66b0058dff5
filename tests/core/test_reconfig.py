"""Reconfig in the cores: 3.8's prep checks in their order, the next config, the membership,
and the leader's two-config quorum and activation (``docs``: /work/notes are 3.8's rules;
the real-process tests are in ``tests/runtime/test_reconfig.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.core.test_prep import Leader as PrepLeader
from zkquorum.config.reconfig import BadReconfig, MalformedReconfig, next_config
from zkquorum.config.verifier import MajorityVerifier, QuorumVerifier
from zkquorum.config.zoocfg import parse_config_string
from zkquorum.core.acl import OPEN_ACL_UNSAFE
from zkquorum.core.membership import Membership, same_membership
from zkquorum.core.prep import PrepRequest, PrepResult, ReconfigContext
from zkquorum.core.ready import ConfigActivated, ReadyBuilder, SaveConfig
from zkquorum.wire.client_records import ErrorCode, ReconfigRequest, SetACLRequest
from zkquorum.wire.jute import ACL, Id
from zkquorum.wire.txn import ErrorTxn, OpCode, SetDataTxn

E = ErrorCode
SUPER = (Id("super", ""),)
BASE = parse_config_string(
    "server.1=127.0.0.1:2001:3001:participant;127.0.0.1:4001\n"
    "server.2=127.0.0.1:2002:3002:participant;127.0.0.1:4002\n"
    "server.3=127.0.0.1:2003:3003:participant;127.0.0.1:4003\n"
    "version=100000000"
)
JOINER = "server.100=0.0.0.0:1234:2345:observer;0.0.0.0:3456"


# ----------------------------------------------------------------------------- next_config


def test_incremental_add_and_remove() -> None:
    added = next_config(BASE, joining=JOINER, leaving=None, new_members=None, version=7)
    assert added.version == 7
    assert JOINER in added.to_zk_string()
    assert added.to_zk_string().splitlines()[-1] == "version=7"
    assert set(added.observing_members) == {100}
    removed = next_config(added, joining=None, leaving=" 100 ,", new_members=None, version=8)
    assert set(removed.all_members) == {1, 2, 3}
    # A sid that leaves and joins again is present; an unknown leaving sid is ignored.
    both = next_config(
        BASE,
        joining="server.3=127.0.0.1:2003:3003:observer;127.0.0.1:4003",
        leaving="3,42",
        new_members=None,
        version=9,
    )
    assert set(both.observing_members) == {3}


def test_non_incremental_replaces_everything() -> None:
    members = (
        "server.1=127.0.0.1:2001:3001:participant;127.0.0.1:4001,"
        "server.4=127.0.0.1:2004:3004:participant;127.0.0.1:4004"
    )
    new = next_config(BASE, joining="ignored", leaving="1", new_members=members, version=5)
    assert set(new.voting_members) == {1, 4} and new.version == 5


@pytest.mark.parametrize(
    ("joining", "leaving", "error"),
    [
        ("some thing", None, BadReconfig),  # no '='
        ("server.9=127.0.0.1:2009:3009", None, BadReconfig),  # no client part
        ("server.9=nonsense", None, BadReconfig),
        ("server.x=127.0.0.1:2009:3009;4009", None, MalformedReconfig),
        (None, "two", MalformedReconfig),
        (None, "1,2", BadReconfig),  # one voter left with standaloneEnabled
    ],
)
def test_bad_reconfigs(joining: str | None, leaving: str | None, error: type) -> None:
    with pytest.raises(error):
        next_config(BASE, joining=joining, leaving=leaving, new_members=None, version=1)


def test_one_voter_needs_standalone_disabled() -> None:
    one = next_config(
        BASE, joining=None, leaving="1,2", new_members=None, version=1, standalone_enabled=False
    )
    assert set(one.voting_members) == {3}


# ----------------------------------------------------------------------------- prep


def _context(
    *, enabled: bool = True, synced: Callable[[QuorumVerifier], bool] = lambda v: True
) -> ReconfigContext:
    return ReconfigContext(enabled, True, BASE, BASE, synced)


def _reconfig(
    zk: PrepLeader,
    ctx: ReconfigContext | None,
    *,
    joining: str | None = JOINER,
    leaving: str | None = None,
    from_config: int = -1,
    ids: tuple[Id, ...] = SUPER,
) -> PrepResult:
    request = PrepRequest(
        zk.session,
        1,
        OpCode.RECONFIG,
        ReconfigRequest(joining, leaving, None, from_config),
        ids,
        owner="me",
    )
    return zk.prep.prepare(
        request,
        zxid=zk.zxid + 1,
        time=1_700_000_000_000,
        now=0,
        tree=zk.tree,
        changes=zk.changes,
        sessions=zk.sessions,
        digests=zk.digests,
        reconfig=ctx,
    )


def _err(result: PrepResult) -> int:
    assert result.txn is not None, "a failed reconfig still takes a zxid (an error txn)"
    assert result.txn.header.type == OpCode.ERROR and isinstance(result.txn.record, ErrorTxn)
    return result.txn.record.err


def test_reconfig_success_is_a_setdata_of_the_config_node() -> None:
    zk = PrepLeader()
    result = _reconfig(zk, _context())
    txn = result.txn
    assert txn is not None and txn.header.type == OpCode.RECONFIG
    assert isinstance(txn.record, SetDataTxn)
    assert txn.record.path == "/zookeeper/config" and txn.record.version == -1
    text = (txn.record.data or b"").decode()
    assert JOINER in text and text.endswith(f"version={txn.header.zxid:x}")
    assert result.config is not None and result.config.version == txn.header.zxid
    assert txn.digest is not None  # the config node is outside the digest, the txn is not
    zk.commit(result)
    node = zk.tree.get("/zookeeper/config")
    assert node is not None and node.data == txn.record.data and node.stat.version == -1


def test_reconfig_errors_in_3_8_order() -> None:
    zk = PrepLeader()
    # Disabled wins over everything, with or without a leader.
    assert _err(_reconfig(zk, _context(enabled=False), joining="bad", ids=())) == E.RECONFIGDISABLED
    # Standalone (no leader context) with reconfig enabled: UNIMPLEMENTED.
    zk.prep.settings = type(zk.prep.settings)(reconfig_enabled=True)
    assert _err(_reconfig(zk, None)) == E.UNIMPLEMENTED
    # fromConfig is compared with the last-seen version.
    assert _err(_reconfig(zk, _context(), from_config=BASE.version + 1)) == E.BADVERSION
    assert _reconfig(zk, _context(), from_config=BASE.version).txn is not None
    # Bad arguments before the quorum check, the quorum check before the ACL check.
    unsynced = _context(synced=lambda v: False)
    assert _err(_reconfig(zk, unsynced, joining="some thing", ids=())) == E.BADARGUMENTS
    assert _err(_reconfig(zk, unsynced, ids=())) == E.NEWCONFIGNOQUORUM
    assert _err(_reconfig(zk, _context(), ids=())) == E.NOAUTH
    assert _err(_reconfig(zk, _context(), joining="server.x=a:1:2;3")) == E.MARSHALLINGERROR


def test_reconfig_in_progress_and_acl() -> None:
    zk = PrepLeader()
    newer = next_config(BASE, joining=JOINER, leaving=None, new_members=None, version=99)
    pending = ReconfigContext(True, True, BASE, newer, lambda v: True)
    assert _err(_reconfig(zk, pending)) == E.RECONFIGINPROGRESS
    # An ACL granting WRITE on /zookeeper/config lets a non-super client reconfigure.
    user = Id("digest", "u:x")
    acl = (*OPEN_ACL_UNSAFE, ACL(2, user))
    zk.commit(
        zk.prepare(
            PrepRequest(
                zk.session,
                2,
                OpCode.SET_ACL,
                SetACLRequest("/zookeeper/config", acl, -1),
                SUPER,
                owner="me",
            )
        )
    )
    assert _reconfig(zk, _context(), ids=(user,)).txn is not None


# ----------------------------------------------------------------------------- membership


def test_membership_see_and_activate() -> None:
    m = Membership(1, BASE, reconfig_enabled=True)
    out = ReadyBuilder()
    new = next_config(BASE, joining=None, leaving="3", new_members=None, version=0x100000005)
    m.see(out, new)
    assert m.in_progress and m.verifiers() == (BASE, new)
    assert out.hard_state == [SaveConfig(new, activated=False)]
    out = ReadyBuilder()
    assert m.activate(out, new, leader=1) is False  # our leader stays a voter
    assert not m.in_progress and m.current is new
    assert SaveConfig(new, activated=True) in out.hard_state
    assert any(isinstance(o, ConfigActivated) for o in out.outcomes)
    # An older or equal config changes nothing.
    assert m.activate(ReadyBuilder(), BASE, leader=1) is False and m.current is new


def test_membership_reports_role_and_leader_changes() -> None:
    observer = next_config(
        BASE,
        joining="server.2=127.0.0.1:2002:3002:observer;127.0.0.1:4002",
        leaving=None,
        new_members=None,
        version=0x100000009,
    )
    m = Membership(2, BASE, reconfig_enabled=True)
    assert m.activate(ReadyBuilder(), observer, leader=1) is True  # participant -> observer
    m = Membership(3, BASE, reconfig_enabled=True)
    assert m.activate(ReadyBuilder(), observer, leader=1, designated=2) is True  # new leader
    gone = next_config(BASE, joining=None, leaving="1", new_members=None, version=0x10000000A)
    m = Membership(3, BASE, reconfig_enabled=True)
    assert m.activate(ReadyBuilder(), gone, leader=1) is True  # our leader left
    m = Membership(3, BASE, reconfig_enabled=False)
    assert m.activate(ReadyBuilder(), gone, leader=1) is False and m.current is BASE


def test_same_membership_ignores_the_version() -> None:
    bumped = MajorityVerifier(dict(BASE.all_members), 0x200000000)
    assert same_membership(BASE, bumped)
    other = next_config(BASE, joining=JOINER, leaving=None, new_members=None, version=3)
    assert not same_membership(BASE, other)
