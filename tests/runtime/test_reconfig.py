"""Dynamic reconfig between zkquorum processes (``reconfigEnabled=true``): a server joins
and becomes a voter, the leader is removed, a participant becomes an observer and back, and
a restarted server comes back with the config the files now hold.  After each step every
member's ``conf`` shows one membership and version, the client's session and ephemeral
survive, and a write is acknowledged.  (Against Java: ``tests/interop/test_reconfig_java.py``.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from zkquorum.testing import LOOPBACK, Member, ZooKeeperEnsemble, four_letter_word, free_ports

kazoo_client = pytest.importorskip("kazoo.client")
kazoo_exceptions = pytest.importorskip("kazoo.exceptions")

SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # password "test"
EXTRA = f"reconfigEnabled=true\nDigestAuthenticationProvider.superDigest={SUPER_DIGEST}\n"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def conf_membership(port: int) -> tuple[str, frozenset[str]] | None:
    """(version, server lines) from ``conf``; None while the server does not answer."""
    try:
        text = four_letter_word(port, "conf")
    except OSError:
        return None
    version = ""
    servers = set()
    for line in text.splitlines():
        if line.startswith("version="):
            version = line.removeprefix("version=")
        elif line.startswith("server."):
            key, _, value = line.partition("=")
            servers.add(f"{key}={value.split(';')[0]}")
    return (version, frozenset(servers)) if version else None


def agreed(members: list[Member]) -> tuple[str, frozenset[str]] | None:
    seen = {conf_membership(m.client_port) for m in members}
    if len(seen) == 1:
        (only,) = seen
        return only
    return None


def wait_agreed(members: list[Member], version: int, what: str) -> frozenset[str]:
    def check() -> bool:
        got = agreed(members)
        return got is not None and got[0] == f"{version:x}"

    try:
        wait_until(check, what)
    except AssertionError:
        states = {m.sid: conf_membership(m.client_port) for m in members}
        raise AssertionError(f"{what}: {states}") from None
    got = agreed(members)
    assert got is not None
    return got[1]


def version_of(data: bytes) -> int:
    last = data.decode().splitlines()[-1]
    assert last.startswith("version="), data
    return int(last.removeprefix("version="), 16)


def super_client(hosts: str) -> object:
    c = kazoo_client.KazooClient(hosts=hosts, timeout=6, auth_data=[("digest", "super:test")])
    c.start(timeout=20)
    return c


def joiner(ens: ZooKeeperEnsemble, sid: int, config: bytes) -> tuple[Member, str]:
    """A server that is not a member yet, started with the members of ``config`` (the
    ensemble's /zookeeper/config) plus itself, as 3.8's procedure asks; and its
    ``joining`` string."""
    q, e, c = free_ports(3)
    members = "".join(
        line + "\n" for line in config.decode().splitlines() if line.startswith("server.")
    )
    home = ens.directory / f"server{sid}"
    text = (
        f"tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={home / 'data'}\n"
        f"clientPortAddress={LOOPBACK}\nclientPort={c}\n4lw.commands.whitelist=*\n{EXTRA}"
        f"{members}server.{sid}={LOOPBACK}:{q}:{e}\n"
    )
    member = Member(home, text, c, sid)
    return member, f"server.{sid}={LOOPBACK}:{q}:{e}:participant;{LOOPBACK}:{c}"


def write_everywhere(client: object, members: list[Member], path: str, value: bytes) -> None:
    # A leader change drops connections (ConnectionLoss); the session lives on.
    client.retry(client.set, path, value)  # type: ignore[attr-defined]
    for m in members:
        c = kazoo_client.KazooClient(hosts=m.address, timeout=6)
        c.start(timeout=20)
        try:
            c.sync(path)
            assert c.get(path)[0] == value, f"server {m.sid} does not have {value!r}"
        finally:
            c.stop()
            c.close()


@pytest.mark.slow
def test_join_remove_the_leader_and_restart(tmp_path: Path) -> None:
    with ZooKeeperEnsemble(tmp_path, extra=EXTRA) as ens:
        client = super_client(ens.hosts)
        try:
            data, _ = client.get("/zookeeper/config")
            new, joining = joiner(ens, 4, data)
            ens.members.append(new)  # stopped with the ensemble, whatever happens
            first = version_of(data)
            assert first >> 32 >= 1 and first & 0xFFFFFFFF == 0  # ZOOKEEPER-1783's bump
            wait_agreed(ens.members[:3], first, "the first config on every member")
            client.create("/eph", b"mine", ephemeral=True)
            client.create("/w", b"0")
            session = client.client_id

            # A server outside the config syncs as a non-voting follower, then joins.
            new.start()
            wait_until(lambda: new.mode() == "follower", "server 4 following before it joins")
            data, _ = client.reconfig(joining=joining, leaving=None, new_members=None)
            v1 = version_of(data)
            assert v1 > first and joining.split(";")[0] in data.decode()
            servers = wait_agreed(ens.members, v1, "every member on the config with server 4")
            assert any(s.startswith("server.4=") for s in servers)
            write_everywhere(client, ens.members, "/w", b"1")

            # Remove the leader: another one is elected, the session and ephemeral survive.
            leader = ens.leader()
            data, _ = client.reconfig(joining=None, leaving=str(leader), new_members=None)
            v2 = version_of(data)
            others = [m for m in ens.members if m.sid != leader]
            wait_until(
                lambda: any(m.mode() == "leader" for m in others), "a leader among the others"
            )
            servers = wait_agreed(others, v2, "the remaining members on the config without it")
            assert not any(s.startswith(f"server.{leader}=") for s in servers)
            write_everywhere(client, others, "/w", b"2")
            assert client.client_id == session
            assert client.retry(client.exists, "/eph") is not None

            # A restart reads zoo.cfg as rewritten: dynamicConfigFile -> the newest config.
            restarted = next(m for m in others if m.mode() != "leader")
            cfg = restarted.cfg_path.read_text()
            assert "dynamicConfigFile=" in cfg and "server." not in cfg
            assert Path(f"{restarted.cfg_path}.dynamic.{v2:x}").is_file()
            ens.restart(restarted.sid)
            wait_agreed(others, v2, "the restarted member on the same config")
            write_everywhere(client, others, "/w", b"3")
        finally:
            client.stop()
            client.close()


@pytest.mark.slow
def test_participant_to_observer_and_back(tmp_path: Path) -> None:
    with ZooKeeperEnsemble(tmp_path, size=4, extra=EXTRA) as ens:
        client = super_client(ens.hosts)
        try:
            leader = ens.leader()
            target = next(m for m in ens.members if m.sid != leader)
            base = client.get("/zookeeper/config")[0].decode()
            line = next(x for x in base.splitlines() if x.startswith(f"server.{target.sid}="))
            address = line.split("=", 1)[1].split(";")[0].rsplit(":", 1)[0]
            client_part = f";{LOOPBACK}:{target.client_port}"
            client.create("/eph", b"mine", ephemeral=True)

            as_observer = f"server.{target.sid}={address}:observer{client_part}"
            data, _ = client.reconfig(joining=as_observer, leaving=None, new_members=None)
            wait_until(lambda: target.mode() == "observer", f"server {target.sid} observing")
            wait_agreed(ens.members, version_of(data), "every member on the observer config")
            write_everywhere(client, ens.members, "/eph", b"1")

            as_voter = f"server.{target.sid}={address}:participant{client_part}"
            data, _ = client.reconfig(joining=as_voter, leaving=None, new_members=None)
            wait_until(lambda: target.mode() == "follower", f"server {target.sid} following")
            wait_agreed(ens.members, version_of(data), "every member on the participant config")
            write_everywhere(client, ens.members, "/eph", b"2")

            # 3.8's errors: a stale fromConfig, a bad server string, no super.
            with pytest.raises(kazoo_exceptions.BadVersionError):
                client.reconfig(joining=as_observer, leaving=None, new_members=None, from_config=1)
            with pytest.raises(kazoo_exceptions.BadArgumentsError):
                client.reconfig(joining="server.9=nonsense", leaving=None, new_members=None)
            plain = kazoo_client.KazooClient(hosts=ens.hosts, timeout=6)
            plain.start(timeout=20)
            try:
                with pytest.raises(kazoo_exceptions.NoAuthError):
                    plain.reconfig(joining=as_observer, leaving=None, new_members=None)
            finally:
                plain.stop()
                plain.close()
        finally:
            client.stop()
            client.close()
