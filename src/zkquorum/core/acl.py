"""ACLs and authentication as 3.8 checks them: providers, ``fixupACL``, ``checkACL``.

Facts: ``docs/spec/zk-server.md`` §2.6; 3.8.0 ``PrepRequestProcessor#fixupACL``,
``ZooKeeperServer#checkACL``, ``DigestAuthenticationProvider``, ``IPAuthenticationProvider``.

* digest: an authenticated id is ``user:base64(SHA1("user:password"))``; an ACL id must
  have the form ``user:hash``; the ``zookeeper.DigestAuthenticationProvider.superDigest``
  setting names one digest that also authenticates as ``super``;
* ip: an ACL id is an address or ``address/bits`` (IPv4 or IPv6), matched against the
  client's address;
* world: only ``anyone``;
* ``auth`` in an ACL stands for every authenticated id of the caller (not ``ip``).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence

from zkquorum.wire.jute import ACL, Id

READ = 1
WRITE = 2
CREATE = 4
DELETE = 8
ADMIN = 16
ALL = 31

SUPER = "super"
_PROVIDERS = frozenset({"digest", "ip", "world"})
"""Schemes with a provider in 3.8's default ``ProviderRegistry`` (``sasl`` and ``x509``
are not enabled by default)."""


class AclError(Exception):
    """``fixupACL`` refused the list: INVALIDACL."""


def digest(user_password: str) -> str:
    """``DigestAuthenticationProvider#generateDigest``: ``user:base64(sha1(user:pw))``."""
    user = user_password.split(":", 1)[0]
    sha = hashlib.sha1(user_password.encode()).digest()
    return f"{user}:{base64.b64encode(sha).decode()}"


def authenticate(
    scheme: str, auth: bytes | None, super_digest: str | None = None
) -> list[Id] | None:
    """The ids an ``auth`` packet adds, or None when the scheme is unknown (AUTHFAILED)."""
    if scheme != "digest":
        return None
    text = (auth or b"").decode("utf-8", errors="replace")
    ident = digest(text)
    ids = [Id("digest", ident)]
    if super_digest is not None and ident == super_digest:
        ids.append(Id(SUPER, ""))
    return ids


def _ip_matches(pattern: str, address: str) -> bool:
    try:
        net = ipaddress.ip_network(pattern, strict=False)
        addr = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return addr.version == net.version and addr in net


def _valid_id(scheme: str, ident: str) -> bool:
    if scheme == "world":
        return ident == "anyone"
    if scheme == "digest":
        return len(ident.split(":")) == 2
    if scheme == "ip":
        try:
            ipaddress.ip_network(ident, strict=False)
        except ValueError:
            return False
        return True
    return False


def _matches(scheme: str, acl_id: str, ident: Id) -> bool:
    if scheme == "ip":
        return _ip_matches(acl_id, ident.id)
    return acl_id == ident.id


def check_acl(perm: int, acl: Sequence[ACL] | None, ids: Iterable[Id]) -> bool:
    """``ZooKeeperServer#checkACL``: may ``ids`` do ``perm`` under ``acl``?"""
    ids = list(ids)
    if any(i.scheme == SUPER for i in ids):
        return True
    if not acl:
        return True
    for a in acl:
        if not a.perms & perm:
            continue
        scheme = a.id.scheme
        if scheme == "world" and a.id.id == "anyone":
            return True
        for ident in ids:
            if ident.scheme == scheme and _matches(scheme, a.id.id, ident):
                return True
    return False


def fixup_acl(acl: Sequence[ACL] | None, ids: Iterable[Id]) -> tuple[ACL, ...]:
    """``PrepRequestProcessor#fixupACL``: ``auth`` expanded, every id validated,
    duplicates removed (first kept); ``AclError`` for INVALIDACL."""
    if not acl:
        raise AclError("empty ACL")
    out: list[ACL] = []
    for a in acl:
        scheme = a.id.scheme
        if scheme == "auth":
            added = False
            for ident in ids:
                if ident.scheme in ("digest",):
                    out.append(ACL(a.perms, ident))
                    added = True
            if not added:
                raise AclError("auth ACL without an authenticated id")
        elif scheme in _PROVIDERS and _valid_id(scheme, a.id.id):
            out.append(a)
        else:
            raise AclError(f"invalid ACL id {scheme}:{a.id.id}")
    unique: list[ACL] = []
    for a in out:
        if a not in unique:
            unique.append(a)
    return tuple(unique)
