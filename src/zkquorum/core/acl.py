"""ACLs and authentication as ZooKeeper 3.8's server checks them.

Facts: ``docs/spec/zk-server.md`` §2.6 (ACLs) and ZooKeeper's ``PrepRequestProcessor#fixupACL``,
``ZooKeeperServer#checkACL``, ``DigestAuthenticationProvider``, ``IPAuthenticationProvider``
and ``ProviderRegistry``.

The providers 3.8 registers by default: ``ip`` and ``digest`` (unless
``zookeeper.DigestAuthenticationProvider.enabled=false``).  ``world:anyone`` is built in;
``auth`` is a pseudo-scheme expanded by :func:`fixup_acl`; ``super`` is the id a digest
login equal to ``zookeeper.DigestAuthenticationProvider.superDigest`` adds, which passes
every check.  ``sasl`` exists when ``zookeeper.authProvider.N`` names
``SASLAuthenticationProvider`` (:attr:`AuthSettings.sasl`; the ids come from the sasl
request, :mod:`zkquorum.core.sasl`); x509 is not here.

3.8's ``IPAuthenticationProvider`` understands IPv4 only (its ``addr2Bytes`` has no IPv6
branch on the whole 3.8 line): an IPv6 address in an ``ip`` ACL is INVALIDACL, and a client
connected over IPv6 matches no ``ip`` ACL.  This module does the same, so that an ensemble
of Java and zkquorum servers accepts and grants the same things.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Final

from zkquorum.wire.client_records import (
    ANYONE_ID_UNSAFE,
    AUTH_IDS,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Perms,
    is_null,
)
from zkquorum.wire.jute import ACL, Id

__all__ = [
    "ANYONE_ID_UNSAFE",
    "AUTH_IDS",
    "CREATOR_ALL_ACL",
    "OPEN_ACL_UNSAFE",
    "READ_ACL_UNSAFE",
    "SUPER_ID",
    "AuthSettings",
    "InvalidACL",
    "MalformedACL",
    "Perms",
    "Scheme",
    "add_auth_info",
    "authenticate",
    "check_acl",
    "connection_ids",
    "digest_is_valid",
    "fixup_acl",
    "generate_digest",
    "ip_is_valid",
    "ip_matches",
    "java_host_address",
]


class Scheme(enum.StrEnum):
    """The schemes 3.8 knows without extra providers."""

    WORLD = "world"
    AUTH = "auth"
    DIGEST = "digest"
    IP = "ip"
    SUPER = "super"
    SASL = "sasl"


SUPER_ID: Final = Id(Scheme.SUPER.value, "")
"""What a login matching the super digest adds: every ACL check passes."""


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The JVM system properties 3.8 reads for authentication and ACL checks."""

    super_digest: str | None = None
    """``zookeeper.DigestAuthenticationProvider.superDigest`` (``user:base64sha1``)."""
    digest_enabled: bool = True
    """``zookeeper.DigestAuthenticationProvider.enabled``: off unregisters ``digest``."""
    skip_acl: bool = False
    """``zookeeper.skipACL=yes``: every check passes."""
    sasl: bool = False
    """``zookeeper.authProvider.N=...SASLAuthenticationProvider``: the ``sasl`` scheme."""

    def has_provider(self, scheme: str) -> bool:
        return (
            scheme == Scheme.IP
            or (scheme == Scheme.DIGEST and self.digest_enabled)
            or (scheme == Scheme.SASL and self.sasl)
        )


DEFAULT_AUTH_SETTINGS: Final = AuthSettings()


class InvalidACL(ValueError):
    """``KeeperException.InvalidACLException``: the request's ACL list is refused."""


class MalformedACL(ValueError):
    """A null string where 3.8's ``fixupACL`` dereferences it (a NullPointerException,
    which 3.8 answers MARSHALLINGERROR)."""


# --------------------------------------------------------------------------- Java text rules


def _java_parse_int(text: str) -> int | None:
    """``Integer.parseInt`` (decimal): an optional sign and at least one digit; anything
    else (spaces, underscores, empty) is a NumberFormatException, here ``None``."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits or not all(c.isdecimal() for c in digits):
        return None
    value = int(text)
    return value if -(1 << 31) <= value < (1 << 31) else None


def _java_split(text: str, sep: str) -> list[str]:
    """``String#split(sep)`` with limit 0: trailing empty strings removed (but a text
    without a separator is itself, even when empty)."""
    if sep not in text:
        return [text]
    parts = text.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


# --------------------------------------------------------------------------- providers


def generate_digest(id_password: str) -> str:
    """``DigestAuthenticationProvider#generateDigest``: ``user:base64(SHA1("user:password"))``.

    The hash covers the whole ``user:password`` text (UTF-8); the user is what precedes
    the first colon.
    """
    user = id_password.split(":", 1)[0]
    sha = hashlib.sha1(id_password.encode("utf-8", "surrogatepass")).digest()
    return f"{user}:{base64.b64encode(sha).decode('ascii')}"


def digest_is_valid(id_text: str) -> bool:
    """``DigestAuthenticationProvider#isValid``: exactly two parts around ``:`` (Java's
    split, so a trailing ``:`` is dropped first and ``user:`` is invalid)."""
    return len(_java_split(id_text, ":")) == 2


def _v4_bytes(addr: str) -> bytes | None:
    parts = addr.split(".")
    if len(parts) != 4:
        return None
    out = bytearray(4)
    for i, part in enumerate(parts):
        v = _java_parse_int(part)
        if v is None or not 0 <= v <= 255:
            return None
        out[i] = v
    return bytes(out)


def _prefix_bits(expr: str, width: int) -> int | None:
    bits = _java_parse_int(expr)
    if bits is None or not 0 <= bits <= width:
        return None
    return bits


def ip_is_valid(id_text: str) -> bool:
    """``IPAuthenticationProvider#isValid``: ``a.b.c.d`` or ``a.b.c.d/bits`` (IPv4 only)."""
    addr, slash, bits = id_text.partition("/")
    b = _v4_bytes(addr)
    if b is None:
        return False
    return not slash or _prefix_bits(bits, len(b) * 8) is not None


def ip_matches(id_text: str, acl_expr: str) -> bool:
    """``IPAuthenticationProvider#matches``: the client address ``id_text`` is inside
    ``acl_expr`` (an address, or a network with a prefix length)."""
    addr, slash, bits_text = acl_expr.partition("/")
    acl_addr = _v4_bytes(addr)
    if acl_addr is None:
        return False
    bits = len(acl_addr) * 8
    if slash:
        parsed = _prefix_bits(bits_text, bits)
        if parsed is None:
            return False
        bits = parsed
    remote = _v4_bytes(id_text)
    if remote is None:
        return False
    mask = ((1 << 32) - 1) ^ ((1 << (32 - bits)) - 1)
    return int.from_bytes(remote, "big") & mask == int.from_bytes(acl_addr, "big") & mask


def _is_valid(scheme: str, id_text: str, settings: AuthSettings) -> bool:
    if scheme == Scheme.IP:
        return ip_is_valid(id_text)
    if scheme == Scheme.DIGEST and settings.digest_enabled:
        return digest_is_valid(id_text)
    if scheme == Scheme.SASL and settings.sasl:
        return sasl_is_valid(id_text)
    return False


def sasl_is_valid(id_text: str) -> bool:
    """``SASLAuthenticationProvider#isValid``: ``new KerberosName(id)`` parses
    (``name[/host]@REALM``, or any name without ``@``)."""
    if "@" not in id_text:
        return True
    name, _, realm = id_text.partition("@")
    return "@" not in realm and "/" not in realm and name.count("/") <= 1


def _matches(scheme: str, id_text: str, acl_expr: str) -> bool:
    if scheme == Scheme.IP:
        return ip_matches(id_text, acl_expr)
    if scheme == Scheme.SASL:
        return id_text in ("super", acl_expr)  # SASLAuthenticationProvider#matches
    return id_text == acl_expr  # digest: the stored digest itself


def _is_authenticated(scheme: str, settings: AuthSettings) -> bool:
    """``AuthenticationProvider#isAuthenticated``: only ``digest`` and ``sasl`` ids name a
    user that an ``auth`` ACL can grant to (an ``ip`` id is a place, not a login)."""
    return (scheme == Scheme.DIGEST and settings.digest_enabled) or (
        scheme == Scheme.SASL and settings.sasl
    )


# --------------------------------------------------------------------------- ACLs


def fixup_acl(
    acls: Sequence[ACL] | None,
    auth_ids: Sequence[Id],
    settings: AuthSettings = DEFAULT_AUTH_SETTINGS,
) -> tuple[ACL, ...]:
    """``PrepRequestProcessor#fixupACL``: the ACL list a create or setACL stores.

    Duplicates are dropped first (order kept), then: ``world:anyone`` stays; ``auth``
    becomes one entry per authenticated ``digest`` id of the caller (INVALIDACL if there
    is none; the entries are *not* de-duplicated again, as in 3.8); any other scheme must
    have a provider that finds the id valid.  Raises :class:`InvalidACL`, or
    :class:`MalformedACL` where 3.8 trips over a null scheme or id (null strings are
    ``wire.client_records.NULL_STRING``).
    """
    unique: list[ACL] = []
    for acl in acls or ():
        if not any(_java_acl_equals(acl, seen) for seen in unique):
            unique.append(acl)
    if not unique:
        raise InvalidACL("empty ACL list")
    out: list[ACL] = []
    for acl in unique:
        ident = acl.id
        if is_null(ident.scheme):
            raise InvalidACL("null scheme")
        if ident.scheme == Scheme.WORLD:
            if is_null(ident.id):
                raise MalformedACL("world with a null id")
            if ident.id != "anyone":
                raise InvalidACL(f"invalid ACL id world:{ident.id}")
            out.append(acl)
        elif ident.scheme == Scheme.AUTH:
            granted = [
                ACL(acl.perms, cid) for cid in auth_ids if _is_authenticated(cid.scheme, settings)
            ]
            if not granted:
                raise InvalidACL("auth ACL without an authenticated id")
            out.extend(granted)
        elif not settings.has_provider(ident.scheme):
            raise InvalidACL(f"no provider for scheme {ident.scheme}")
        elif is_null(ident.id):
            raise MalformedACL(f"{ident.scheme} with a null id")
        elif _is_valid(ident.scheme, ident.id, settings):
            out.append(acl)
        else:
            raise InvalidACL(f"invalid ACL id {ident.scheme}:{ident.id}")
    return tuple(out)


def _java_acl_equals(new: ACL, old: ACL) -> bool:
    """``new.equals(old)`` as jute generates it (``ArrayList#contains`` in
    ``removeDuplicates``): field by field, ``String#equals`` on the new record's fields,
    so a null one that gets compared is a NullPointerException."""
    if new.perms != old.perms:
        return False
    if is_null(new.id.scheme):
        raise MalformedACL("null scheme compared")
    if is_null(old.id.scheme) or new.id.scheme != old.id.scheme:
        return False
    if is_null(new.id.id):
        raise MalformedACL("null id compared")
    return not is_null(old.id.id) and new.id.id == old.id.id


def check_acl(
    perm: int,
    acl: Sequence[ACL] | None,
    ids: Iterable[Id],
    settings: AuthSettings = DEFAULT_AUTH_SETTINGS,
) -> bool:
    """``ZooKeeperServer#checkACL``: may a caller with ``ids`` do ``perm`` under ``acl``?

    An empty ACL allows everything; a ``super`` id passes; otherwise some entry granting
    ``perm`` must be ``world:anyone`` or match one of the caller's ids of its scheme.
    """
    if settings.skip_acl or not acl:
        return True
    ids = tuple(ids)
    if any(i.scheme == Scheme.SUPER for i in ids):
        return True
    for entry in acl:
        if not entry.perms & perm:
            continue
        ident = entry.id
        if ident.scheme == Scheme.WORLD and ident.id == "anyone":
            return True
        if not settings.has_provider(ident.scheme):
            continue
        for caller in ids:
            if caller.scheme == ident.scheme and _matches(ident.scheme, caller.id, ident.id):
                return True
    return False


# --------------------------------------------------------------------------- authentication


def java_host_address(address: IPv4Address | IPv6Address) -> str:
    """``InetAddress#getHostAddress``: dotted IPv4, or eight uncompressed hex groups for
    IPv6 (``0:0:0:0:0:0:0:1``, never ``::1``), the text a client's ``ip`` id carries."""
    if isinstance(address, IPv4Address):
        return str(address)
    groups = address.packed
    text = ":".join(f"{int.from_bytes(groups[i : i + 2], 'big'):x}" for i in range(0, 16, 2))
    return f"{text}%{address.scope_id}" if address.scope_id else text


def connection_ids(host_address: str) -> tuple[Id, ...]:
    """The id every client connection starts with: ``ip:<its address>`` (``ServerCnxn``)."""
    return (Id(Scheme.IP.value, host_address),)


def authenticate(
    scheme: str,
    auth: bytes | None,
    host_address: str,
    settings: AuthSettings = DEFAULT_AUTH_SETTINGS,
) -> tuple[Id, ...] | None:
    """An AuthPacket (``ZooKeeperServer#processPacket``, the provider's
    ``handleAuthentication``): the ids to add, or ``None`` for AUTHFAILED.

    ``digest`` adds ``super:`` first when the login's digest is the super digest, then
    ``digest:user:hash``; ``ip`` adds the connection's address; unknown schemes fail.
    """
    if scheme == Scheme.DIGEST and settings.digest_enabled:
        digest = generate_digest((auth or b"").decode("utf-8", "replace"))
        ids: tuple[Id, ...] = (Id(Scheme.DIGEST.value, digest),)
        if settings.super_digest is not None and digest == settings.super_digest:
            ids = (SUPER_ID, *ids)
        return ids
    if scheme == Scheme.IP:
        return (Id(Scheme.IP.value, host_address),)
    return None


def add_auth_info(current: Sequence[Id], new: Iterable[Id]) -> tuple[Id, ...]:
    """``ServerCnxn#addAuthInfo``: append the ids not already there, in order."""
    out = list(current)
    for ident in new:
        if ident not in out:
            out.append(ident)
    return tuple(out)
