"""core/acl.py: digests, the ip provider, fixup_acl and check_acl as 3.8.0 has them.

``test_acl_java.py`` asks ZooKeeper's own classes the same questions for many generated
ACL lists; the tables here pin the rules that matter and were checked there too.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zkquorum.core.acl import (
    ANYONE_ID_UNSAFE,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    SUPER_ID,
    AuthSettings,
    InvalidACL,
    Perms,
    add_auth_info,
    authenticate,
    check_acl,
    connection_ids,
    digest_is_valid,
    fixup_acl,
    generate_digest,
    ip_is_valid,
    ip_matches,
    java_host_address,
)
from zkquorum.wire.jute import ACL, Id

USER_DIGEST = "user:smGaoVKd/cQkjm7b88GyorAUz20="  # captured: add_auth('digest', 'user:pass')
DIGEST_USER = Id("digest", USER_DIGEST)
IP_LOCAL = Id("ip", "127.0.0.1")


def test_perm_values() -> None:
    assert [int(p) for p in Perms.__members__.values()] == [1, 2, 4, 8, 16, 31]


def test_digest_of_the_captured_login() -> None:
    # quorum-writes: F's REQUEST authinfo after add_auth('digest', 'user:pass').
    assert generate_digest("user:pass") == USER_DIGEST
    # The user is everything before the first colon; the hash covers the whole text.
    assert generate_digest("a:b:c").startswith("a:")
    assert generate_digest("nocolon").startswith("nocolon:")


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("user:abc", True),
        (":abc", True),
        ("user:", False),  # Java's split drops the trailing empty part
        ("user:abc:", True),
        ("a:b:c", False),
        ("a::b", False),
        ("nocolon", False),
        ("", False),
        ("::", False),
    ],
)
def test_digest_is_valid(text: str, valid: bool) -> None:
    assert digest_is_valid(text) is valid


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("127.0.0.1", True),
        ("10.0.0.0/8", True),
        ("10.0.0.0/0", True),
        ("10.0.0.0/32", True),
        ("10.0.0.0/33", False),
        ("10.0.0.0/-1", False),
        ("10.0.0.0/+8", True),  # Integer.parseInt takes a sign
        ("10.0.0.0/", False),
        ("10.0.0.0/8/9", False),
        ("256.0.0.1", False),
        ("1.2.3", False),
        ("1.2.3.4.", False),
        ("01.2.3.4", True),
        ("+1.2.3.4", True),
        (" 1.2.3.4", False),
        ("1_0.2.3.4", False),
        ("::1", False),  # 3.8's provider has no IPv6
        ("0:0:0:0:0:0:0:1", False),
        ("", False),
    ],
)
def test_ip_is_valid(text: str, valid: bool) -> None:
    assert ip_is_valid(text) is valid


@pytest.mark.parametrize(
    ("client", "expr", "match"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.2", "127.0.0.1", False),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("11.1.2.3", "10.0.0.0/8", False),
        ("192.168.1.77", "192.168.1.64/26", True),
        ("192.168.1.128", "192.168.1.64/26", False),
        ("1.2.3.4", "9.9.9.9/0", True),
        ("1.2.3.4", "9.9.9.9/40", False),
        ("0:0:0:0:0:0:0:1", "127.0.0.1", False),
        ("127.0.0.1", "::1", False),
    ],
)
def test_ip_matches(client: str, expr: str, match: bool) -> None:
    assert ip_matches(client, expr) is match


def test_fixup_acl_rules() -> None:
    auth = (IP_LOCAL, DIGEST_USER)
    with pytest.raises(InvalidACL):
        fixup_acl([], auth)
    with pytest.raises(InvalidACL):
        fixup_acl(None, auth)
    assert fixup_acl(OPEN_ACL_UNSAFE, ()) == OPEN_ACL_UNSAFE
    # auth: the caller's digest ids only (ip is not an authenticated user).
    assert fixup_acl(CREATOR_ALL_ACL, auth) == (ACL(31, DIGEST_USER),)
    with pytest.raises(InvalidACL):
        fixup_acl(CREATOR_ALL_ACL, (IP_LOCAL,))
    with pytest.raises(InvalidACL):
        fixup_acl([ACL(31, Id("world", "someone"))], auth)
    with pytest.raises(InvalidACL):
        fixup_acl([ACL(31, Id("super", ""))], auth)
    with pytest.raises(InvalidACL):
        fixup_acl([ACL(31, Id("sasl", "bob"))], auth)
    with pytest.raises(InvalidACL):
        fixup_acl([ACL(1, Id("ip", "::1"))], auth)
    # Duplicates go before the expansion, so the expansion can bring them back.
    twice = [ACL(31, Id("auth", "")), ACL(31, DIGEST_USER), ACL(31, DIGEST_USER)]
    assert fixup_acl(twice, auth) == (ACL(31, DIGEST_USER), ACL(31, DIGEST_USER))
    # Perms are not checked: 0 and bits beyond ALL are stored as given.
    assert fixup_acl([ACL(0, ANYONE_ID_UNSAFE), ACL(255, IP_LOCAL)], ()) == (
        ACL(0, ANYONE_ID_UNSAFE),
        ACL(255, IP_LOCAL),
    )


def test_fixup_acl_without_the_digest_provider() -> None:
    off = AuthSettings(digest_enabled=False)
    with pytest.raises(InvalidACL):
        fixup_acl([ACL(31, DIGEST_USER)], (), off)
    with pytest.raises(InvalidACL):
        fixup_acl(CREATOR_ALL_ACL, (DIGEST_USER,), off)


def test_check_acl_rules() -> None:
    acl = (ACL(Perms.READ | Perms.WRITE, DIGEST_USER), ACL(Perms.READ, Id("ip", "10.0.0.0/8")))
    assert check_acl(Perms.WRITE, acl, [DIGEST_USER])
    assert not check_acl(Perms.ADMIN, acl, [DIGEST_USER])
    assert not check_acl(Perms.WRITE, acl, [IP_LOCAL])
    assert check_acl(Perms.READ, acl, [Id("ip", "10.9.9.9")])
    assert not check_acl(Perms.READ, acl, [Id("digest", "user:other")])
    assert check_acl(Perms.ADMIN, acl, [SUPER_ID])
    assert check_acl(Perms.ADMIN, (), [])  # an empty ACL allows all
    assert check_acl(Perms.ADMIN, acl, [], AuthSettings(skip_acl=True))
    assert check_acl(Perms.DELETE, OPEN_ACL_UNSAFE, [])
    assert not check_acl(Perms.DELETE, (ACL(Perms.READ, ANYONE_ID_UNSAFE),), [])
    # The scheme must match: a digest-looking ip id grants nothing.
    assert not check_acl(Perms.READ, acl, [Id("ip", USER_DIGEST)])
    # Without the digest provider, digest entries grant nothing.
    assert not check_acl(Perms.READ, acl, [DIGEST_USER], AuthSettings(digest_enabled=False))
    # Stored entries no provider knows are skipped.
    assert not check_acl(Perms.READ, (ACL(31, Id("world", "x")),), [Id("world", "x")])


def test_authenticate() -> None:
    assert authenticate("digest", b"user:pass", "127.0.0.1") == (DIGEST_USER,)
    sup = AuthSettings(super_digest=USER_DIGEST)
    assert authenticate("digest", b"user:pass", "127.0.0.1", sup) == (SUPER_ID, DIGEST_USER)
    assert authenticate("ip", b"", "10.0.0.1") == (Id("ip", "10.0.0.1"),)
    assert authenticate("sasl", b"x", "127.0.0.1") is None
    assert authenticate("digest", b"user:pass", "h", AuthSettings(digest_enabled=False)) is None
    ids = add_auth_info(connection_ids("127.0.0.1"), [DIGEST_USER])
    assert add_auth_info(ids, [DIGEST_USER, IP_LOCAL]) == (IP_LOCAL, DIGEST_USER)


def test_java_host_address() -> None:
    assert java_host_address(IPv4Address("127.0.0.1")) == "127.0.0.1"
    assert java_host_address(IPv6Address("::1")) == "0:0:0:0:0:0:0:1"
    assert java_host_address(IPv6Address("fe80::1%3")) == "fe80:0:0:0:0:0:0:1%3"


@given(st.ip_addresses(v=4), st.ip_addresses(v=4), st.integers(0, 32))
def test_ip_matches_is_network_membership(client: IPv4Address, net: IPv4Address, bits: int) -> None:
    from ipaddress import ip_network

    inside = client in ip_network(f"{net}/{bits}", strict=False)
    assert ip_matches(str(client), f"{net}/{bits}") is inside
