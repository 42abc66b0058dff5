"""core/acl.py against ZooKeeper 3.8.0's own classes (``ServerRulesProbe.java``):
``DigestAuthenticationProvider.generateDigest``, ``PrepRequestProcessor.fixupACL``,
``ZooKeeperServer#checkACL`` and ``IPAuthenticationProvider#matches``, for generated inputs
that lean on the edges (odd ids, duplicates, ``auth``, unknown schemes).
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.core.test_sessions_java import ask_probe, hex_text
from zkquorum.core.acl import InvalidACL, check_acl, fixup_acl, generate_digest, ip_matches
from zkquorum.wire.jute import ACL, Id

BATCHES = settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.large_base_example, HealthCheck.too_slow],
)
N = 40

OCTET = st.one_of(
    st.integers(0, 300).map(str), st.sampled_from(["", "+1", "-0", "01", " 1", "1_0", "x"])
)
IPV4ISH = st.builds(lambda parts: ".".join(parts), st.lists(OCTET, min_size=3, max_size=5))
PREFIXES = ["0", "8", "32", "33", "-1", "+8", "", "8/1"]
IP_TEXT = st.one_of(
    IPV4ISH,
    st.builds(lambda a, b: f"{a}/{b}", IPV4ISH, st.sampled_from(PREFIXES)),
    st.sampled_from(["::1", "0:0:0:0:0:0:0:1", "127.0.0.1", "10.0.0.0/8"]),
)  # fmt: skip
DIGEST_TEXT = st.one_of(
    st.sampled_from(["user:smGaoVKd/cQkjm7b88GyorAUz20=", "user:", ":x", "a:b:c", "a::b", "x", ""]),
    st.text(alphabet="ab:", max_size=6),
)
IDS = st.one_of(
    st.builds(Id, st.just("ip"), IP_TEXT),
    st.builds(Id, st.just("digest"), DIGEST_TEXT),
    st.builds(Id, st.just("world"), st.sampled_from(["anyone", "someone", ""])),
    st.builds(Id, st.just("auth"), st.sampled_from(["", "x"])),
    st.builds(Id, st.sampled_from(["super", "sasl", "x509", "IP", ""]), st.sampled_from(["", "u"])),
)
PERMS = st.one_of(st.integers(0, 31), st.sampled_from([-1, 64, 255]))
ACLS = st.lists(st.builds(ACL, PERMS, IDS), max_size=4).map(
    lambda acls: acls + acls[:1] if len(acls) % 2 else acls  # duplicates now and then
)
CALLER_IDS = st.lists(
    st.one_of(
        st.builds(Id, st.just("ip"), st.sampled_from(["127.0.0.1", "10.1.2.3", "0:0:0:0:0:0:0:1"])),
        st.builds(Id, st.just("digest"), DIGEST_TEXT),
        st.just(Id("super", "")),
        st.builds(Id, st.sampled_from(["world", "sasl"]), st.sampled_from(["anyone", "u"])),
    ),
    max_size=3,
)


def encode_ids(ids: Sequence[Id]) -> str:
    return " ".join([str(len(ids)), *(f"{hex_text(i.scheme)} {hex_text(i.id)}" for i in ids)])


def encode_acls(acls: Sequence[ACL]) -> str:
    items = (f"{a.perms} {hex_text(a.id.scheme)} {hex_text(a.id.id)}" for a in acls)
    return " ".join([str(len(acls)), *items])


def ours_fixup(acls: list[ACL], auth: list[Id]) -> str:
    try:
        fixed = fixup_acl(acls, auth)
    except InvalidACL:
        return "INVALIDACL"
    return " ".join(
        ["OK", *(f"{a.perms} {hex_text(a.id.scheme)} {hex_text(a.id.id)}" for a in fixed)]
    )


@BATCHES
@given(st.lists(st.tuples(ACLS, CALLER_IDS), min_size=N, max_size=N))
def test_fixup_acl_matches_java(cases: list[tuple[list[ACL], list[Id]]]) -> None:
    answers = ask_probe([f"fixup {encode_ids(auth)} {encode_acls(acls)}" for acls, auth in cases])
    for (acls, auth), answer in zip(cases, answers, strict=True):
        assert ours_fixup(acls, auth) == answer, (acls, auth)


@BATCHES
@given(
    st.lists(
        st.tuples(st.sampled_from([1, 2, 4, 8, 16, 3]), ACLS, CALLER_IDS), min_size=N, max_size=N
    )
)
def test_check_acl_matches_java(cases: list[tuple[int, list[ACL], list[Id]]]) -> None:
    answers = ask_probe(
        [f"check {perm} {encode_ids(ids)} {encode_acls(acls)}" for perm, acls, ids in cases]
    )
    for (perm, acls, ids), answer in zip(cases, answers, strict=True):
        assert ("OK" if check_acl(perm, acls, ids) else "NOAUTH") == answer, (perm, acls, ids)


@BATCHES
@given(st.lists(st.tuples(IP_TEXT, IP_TEXT), min_size=N, max_size=N))
def test_ip_matches_matches_java(cases: list[tuple[str, str]]) -> None:
    answers = ask_probe([f"ipmatch {hex_text(a)} {hex_text(b)}" for a, b in cases])
    for (client, expr), answer in zip(cases, answers, strict=True):
        assert str(ip_matches(client, expr)).lower() == answer, (client, expr)


@BATCHES
@given(st.lists(st.text(max_size=20), min_size=N, max_size=N))
def test_generate_digest_matches_java(texts: list[str]) -> None:
    texts = ["user:pass", "super:secret", "", ":", "a:b:c", *texts]
    # Lone surrogates cannot travel as UTF-8 to the probe; Java never decodes them either.
    texts = [t for t in texts if not any(0xD800 <= ord(c) <= 0xDFFF for c in t)]
    answers = ask_probe([f"digest {hex_text(t)}" for t in texts])
    for text, answer in zip(texts, answers, strict=True):
        assert hex_text(generate_digest(text)) == answer, text


def test_table_cases_match_java() -> None:
    """The hand-picked cases of test_acl.py, both outcomes of each rule, through Java."""
    digest = Id("digest", "user:smGaoVKd/cQkjm7b88GyorAUz20=")
    ip = Id("ip", "127.0.0.1")
    auth = [ip, digest]
    fixups: list[tuple[list[ACL], list[Id]]] = [
        ([], auth),
        ([ACL(31, Id("world", "anyone"))], []),
        ([ACL(31, Id("auth", ""))], auth),
        ([ACL(31, Id("auth", ""))], [ip]),
        ([ACL(31, Id("auth", "")), ACL(31, digest), ACL(31, digest)], auth),
        ([ACL(31, Id("ip", "::1"))], auth),
        ([ACL(31, Id("ip", "10.0.0.0/8")), ACL(0, Id("digest", "a:b"))], []),
        ([ACL(31, Id("digest", "user:"))], []),
        ([ACL(31, Id("super", ""))], auth),
    ]
    checks: list[tuple[int, list[ACL], list[Id]]] = [
        (2, [ACL(3, digest)], [digest]),
        (16, [ACL(3, digest)], [digest]),
        (16, [ACL(3, digest)], [Id("super", "")]),
        (1, [ACL(1, Id("ip", "10.0.0.0/8"))], [Id("ip", "10.9.9.9")]),
        (1, [ACL(1, Id("ip", "10.0.0.0/8"))], [ip]),
        (8, [], []),
        (1, [ACL(31, Id("world", "x"))], [Id("world", "x")]),
    ]
    questions = [f"fixup {encode_ids(auth)} {encode_acls(acls)}" for acls, auth in fixups]
    questions += [f"check {p} {encode_ids(ids)} {encode_acls(acls)}" for p, acls, ids in checks]
    answers = ask_probe(questions)
    ours = [ours_fixup(acls, auth) for acls, auth in fixups]
    ours += ["OK" if check_acl(p, acls, ids) else "NOAUTH" for p, acls, ids in checks]
    assert ours == answers
    assert {a for a in answers if not a.startswith("OK ")} == {"OK", "INVALIDACL", "NOAUTH"}
