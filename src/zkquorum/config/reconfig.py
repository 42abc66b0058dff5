"""The config a ``reconfig`` request asks for (``PrepRequestProcessor#pRequest2TxnReconfig``).

Incremental: the last-seen config's members, minus ``leaving`` (comma-separated sids),
plus or replacing ``joining`` (comma-separated ``server.N=host:quorum:election[:role];client``
strings); only for a majority config.  Non-incremental: ``new_members`` (server, group
and weight lines, separated by commas or newlines) is the whole new membership.

Errors are 3.8's: :class:`BadReconfig` is BADARGUMENTS (a malformed server string, a
client address missing, an address already in use -- loopback and wildcard addresses
excepted, as 3.8 excepts them --, too few voters left), and :class:`MalformedReconfig` is
what 3.8 answers MARSHALLINGERROR for (a sid that is not a number: its
``NumberFormatException`` escapes every handler; a non-incremental membership of
observers without participants, or of observers and one participant: the
``IllegalArgumentException`` of ``parseDynamicConfig``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from zkquorum.config.errors import ConfigError
from zkquorum.config.javatext import java_int
from zkquorum.config.model import HostPort, QuorumServer
from zkquorum.config.properties import load_properties
from zkquorum.config.verifier import HierarchicalVerifier, MajorityVerifier, QuorumVerifier
from zkquorum.config.zoocfg import build_verifier, parse_server_line

__all__ = ["BadReconfig", "MalformedReconfig", "next_config", "with_version"]


class BadReconfig(ValueError):
    """BADARGUMENTS, with 3.8's message."""


class MalformedReconfig(ValueError):
    """3.8 fails with an unchecked exception: MARSHALLINGERROR."""


def with_version(verifier: QuorumVerifier, version: int) -> MajorityVerifier | HierarchicalVerifier:
    """The same membership at another version (``QuorumVerifier#setVersion``)."""
    if isinstance(verifier, HierarchicalVerifier):
        return replace(verifier, version=version)
    if isinstance(verifier, MajorityVerifier):
        return replace(verifier, version=version)
    raise TypeError(f"unknown verifier {type(verifier).__name__}")


def _split(text: str, sep: str) -> list[str]:
    """ZooKeeper's ``StringUtils#split``: trimmed pieces, empty ones dropped."""
    return [p.strip() for p in text.split(sep) if p.strip()]


def _sid(text: str) -> int:
    sid = java_int(text, 64)
    if sid is None:
        raise MalformedReconfig(f'For input string: "{text}"')
    return sid


def _address_key(addr: HostPort) -> tuple[str, int] | None:
    """What ``QuorumServer#checkAddressDuplicate`` compares, ``None`` for the addresses it
    skips (``excludedSpecialAddresses``: wildcard and loopback).  3.8 compares resolved
    addresses; a core resolves nothing, so IP literals compare by value and names by
    name, ``localhost`` being loopback."""
    host = addr.host.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            return None
        return name, addr.port
    if ip.is_loopback or ip.is_unspecified:
        return None
    return str(ip), addr.port


def _addresses(server: QuorumServer) -> dict[tuple[str, int], HostPort]:
    """Its quorum, election and client addresses (``QuorumServer#myAddrs``)."""
    addrs = [*server.quorum_addrs, *server.election_addrs]
    if server.client_addr is not None:
        addrs.append(server.client_addr)
    out: dict[tuple[str, int], HostPort] = {}
    for addr in addrs:
        key = _address_key(addr)
        if key is not None:
            out.setdefault(key, addr)
    return out


def _check_dynamic(
    verifier: MajorityVerifier | HierarchicalVerifier, standalone_enabled: bool
) -> None:
    """``QuorumPeerConfig#parseDynamicConfig``'s checks of a non-incremental membership;
    their ``IllegalArgumentException`` escapes every handler: MARSHALLINGERROR."""
    voters = len(verifier.voting_members)
    observers = len(verifier.observing_members)
    if voters == 0:
        if not standalone_enabled:
            raise MalformedReconfig(
                "standaloneEnabled = false then number of participants should be >0"
            )
        if observers > 0:
            raise MalformedReconfig("Observers w/o participants is an invalid configuration")
    elif voters == 1 and standalone_enabled and observers > 0:
        raise MalformedReconfig("Observers w/o quorum is an invalid configuration")


def next_config(
    last_seen: QuorumVerifier,
    *,
    joining: str | None,
    leaving: str | None,
    new_members: str | None,
    version: int,
    standalone_enabled: bool = True,
) -> MajorityVerifier | HierarchicalVerifier:
    """The new config at ``version`` (the reconfig txn's zxid); see the module docstring."""
    verifier: MajorityVerifier | HierarchicalVerifier
    if new_members is not None:
        try:
            props = load_properties(new_members.replace(",", "\n"), None)
            verifier = build_verifier(props, path=None, multi_address=False, dynamic=True)
        except ConfigError as exc:
            raise BadReconfig(exc.message) from exc
        _check_dynamic(verifier, standalone_enabled)
        verifier = with_version(verifier, version)
    else:
        if not isinstance(last_seen, MajorityVerifier):
            raise BadReconfig(
                "Incremental reconfiguration requested but last configuration seen has a "
                "non-majority quorum system"
            )
        servers = dict(last_seen.all_members)
        for text in _split(leaving or "", ","):
            servers.pop(_sid(text), None)
        for joiner in _split(joining or "", ","):
            parts = _split(joiner, "=")
            if len(parts) != 2:
                raise BadReconfig("Wrong format of server string")
            sid = _sid(parts[0][parts[0].rfind(".") + 1 :])
            try:
                server = parse_server_line(sid, parts[1], multi_address=False, where=(None, None))
            except ConfigError as exc:
                raise BadReconfig("Reconfiguration failed") from exc
            if server.client_addr is None:
                raise BadReconfig(
                    "Wrong format of server string - each server should have 3 ports specified"
                )
            mine = _addresses(server)
            for other in servers.values():
                if other.sid == sid:
                    continue
                theirs = _addresses(other)
                for key, addr in mine.items():
                    if key in theirs:
                        raise BadReconfig(
                            f"{addr} of server.{sid} conflicts {theirs[key]} of server.{other.sid}"
                        )
            servers[sid] = server
        verifier = MajorityVerifier(servers, version)
    voters = len(verifier.voting_members)
    if standalone_enabled and voters < 2:
        raise BadReconfig("Reconfig failed - new configuration must include at least 2 followers")
    if voters < 1:
        raise BadReconfig("Reconfig failed - new configuration must include at least 1 follower")
    return verifier
