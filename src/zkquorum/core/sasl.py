"""SASL on the client port: the JAAS ``Server`` section and a DIGEST-MD5 server (RFC 2831).

What ZooKeeper 3.8 does (``ZooKeeperServer#processSasl``, ``SaslServerCallbackHandler``,
``SASLAuthenticationProvider``, ``ServerCnxnFactory#configureSaslLogin``):

* The server reads the JAAS file named by ``java.security.auth.login.config`` and its
  section ``Server`` (``zookeeper.sasl.serverconfig`` renames it).  No such section: SASL
  is off (a sasl request is then answered OK with no token).  Each ``user_<name>="pw"``
  option of the section is a DIGEST-MD5 login.  zkquorum understands only
  ``org.apache.zookeeper.server.auth.DigestLoginModule``: a section with another module
  (Kerberos) turns SASL off with one warning (:func:`server_logins`).
* A sasl request (op 102, ``GetSASLRequest{token}``) is answered at once, outside the
  request pipeline, with ``ReplyHeader(xid, 0, OK)`` + ``SetSASLResponse{token}``.  The
  mechanism is DIGEST-MD5 with the server name and realm ``zk-sasl-md5``, the service
  ``zookeeper``, qop ``auth`` only.  The exchange: an empty token -> the challenge; the
  client's digest response -> ``rspauth=...``; the server is then complete and the
  connection gets the id ``sasl:<user>`` (and ``super:`` when the user is one of
  ``zookeeper.superUser``).  The authorization id is the authenticated user's name
  whatever ``authzid`` the client asks for (the callback handler sets it from the
  authentication id).
* A failure (unknown user, wrong password, malformed response) is answered
  ``AUTHFAILED`` with an empty ``SetSASLResponse`` and the connection is closed, unless
  ``zookeeper.allowSaslFailedClients=true``, which answers OK with no token and keeps it.
* ACLs with the scheme ``sasl`` exist only when ``zookeeper.authProvider.N`` names
  ``SASLAuthenticationProvider``: then ``sasl:<id>`` matches the caller's id ``<id>``
  (:mod:`zkquorum.core.acl`).

The nonces come from a secret seed the runtime draws (the cores take randomness as a
seed), hashed with a counter: unpredictable without the seed, never repeated.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

REALM: Final = "zk-sasl-md5"
"""``SecurityUtils``: the DIGEST-MD5 server name, and so its realm."""
SERVICE: Final = "zookeeper"
DIGEST_LOGIN_MODULE: Final = "org.apache.zookeeper.server.auth.DigestLoginModule"
SASL_PROVIDER: Final = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
DEFAULT_SECTION: Final = "Server"


class SaslFailed(Exception):
    """The client failed to authenticate (``javax.security.sasl.SaslException``)."""


class JaasError(ValueError):
    """The JAAS file does not parse (Java's ``ConfigFile`` refuses it; the server does not
    start)."""


# -- settings ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class SaslSettings:
    """What the client port's SASL needs (``None`` in ``ServerSettings``: SASL off)."""

    logins: Mapping[str, str]
    """user -> password, the ``user_<name>`` options of the JAAS section."""
    seed: bytes
    """Secret bytes the nonces are made from (the runtime draws them)."""
    super_password: str | None = None
    """``zookeeper.SASLAuthenticationProvider.superPassword``: the password of ``super``."""
    super_users: frozenset[str] = frozenset()
    """``zookeeper.superUser`` (and ``zookeeper.superUser.*``): ids that also get ``super:``."""
    allow_failed_clients: bool = False
    """``zookeeper.allowSaslFailedClients``: a failed client keeps its connection."""

    def password(self, user: str) -> str | None:
        if user == "super" and self.super_password is not None:
            return self.super_password
        return self.logins.get(user)


def nonce(seed: bytes, *numbers: int) -> str:
    """A nonce: 28 base64 characters of SHA-256(seed, numbers), for numbers that never
    repeat together (a server core's start time and its count of exchanges)."""
    digest = hashlib.sha256(seed + b"".join(n.to_bytes(8, "big") for n in numbers)).digest()
    return base64.b64encode(digest[:21]).decode("ascii").replace("+", "-").replace("/", "_")


# -- JAAS ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class LoginModule:
    name: str
    flag: str
    options: Mapping[str, str]


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, value): ``word``, ``str`` (quoted, unescaped) or ``sym`` ({ } ; =)."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith("//", i) or ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise JaasError("unterminated /* comment")
            i = end + 2
        elif ch in "{};=":
            out.append(("sym", ch))
            i += 1
        elif ch in "\"'":
            quoted = _quoted(text, i)
            if quoted is None:
                raise JaasError("unterminated quoted string")
            value, i = quoted
            out.append(("str", value))
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};=\"'":
                j += 1
            out.append(("word", text[i:j]))
            i = j
    return out


def _quoted(text: str, start: int) -> tuple[str, int] | None:
    """The string quoted by ``text[start]``, backslash escapes undone, and the index after
    its closing quote; None when it is never closed."""
    quote, i, n, buf = text[start], start + 1, len(text), []
    while i < n and text[i] != quote:
        if text[i] == "\\" and i + 1 < n:
            i += 1
        buf.append(text[i])
        i += 1
    return None if i >= n else ("".join(buf), i + 1)


def parse_jaas(text: str) -> dict[str, tuple[LoginModule, ...]]:
    """A JAAS login configuration file (``sun.security.provider.ConfigFile``'s syntax):
    ``Name { module flag key=value ...; ... };`` per section.  Raises :class:`JaasError`."""
    toks = _tokens(text)
    pos = 0

    def take(kind: str | None = None, value: str | None = None) -> str:
        nonlocal pos
        if pos >= len(toks):
            raise JaasError(f"unexpected end of file (expected {value or kind})")
        k, v = toks[pos]
        if (kind is not None and k != kind) or (value is not None and v != value):
            raise JaasError(f"expected {value or kind}, found {v!r}")
        pos += 1
        return v

    sections: dict[str, tuple[LoginModule, ...]] = {}
    while pos < len(toks):
        name = take("word")
        take("sym", "{")
        modules: list[LoginModule] = []
        while toks[pos:] and toks[pos] != ("sym", "}"):
            module = take("word")
            flag = take("word")
            if flag.lower() not in ("required", "requisite", "sufficient", "optional"):
                raise JaasError(f"{module}: bad control flag {flag!r}")
            options: dict[str, str] = {}
            while toks[pos:] and toks[pos] != ("sym", ";"):
                key = take("word")
                take("sym", "=")
                if pos >= len(toks) or toks[pos][0] == "sym":
                    raise JaasError(f"{key}: no value")
                options[key] = toks[pos][1]
                pos += 1
            take("sym", ";")
            modules.append(LoginModule(module, flag, options))
        take("sym", "}")
        take("sym", ";")
        sections[name] = tuple(modules)  # a later section of the same name replaces
    return sections


def server_logins(
    text: str, section: str = DEFAULT_SECTION
) -> tuple[dict[str, str] | None, str | None]:
    """(user -> password, warning) from the JAAS file's server section: ``(None, None)``
    without the section (SASL off, as 3.8); ``(None, warning)`` when it names a login
    module other than DigestLoginModule.  Raises :class:`JaasError`."""
    modules = parse_jaas(text).get(section)
    if modules is None:
        return None, None
    others = [m.name for m in modules if m.name != DIGEST_LOGIN_MODULE]
    if others:
        return None, (
            f"JAAS section {section} uses {', '.join(others)}: zkquorum's SASL is "
            f"DIGEST-MD5 with {DIGEST_LOGIN_MODULE} only, so SASL is off"
        )
    logins: dict[str, str] = {}
    for m in modules:
        for key, value in m.options.items():
            if key.startswith("user_"):
                logins[key[len("user_") :]] = value
    return logins, None


# -- DIGEST-MD5 (RFC 2831) -----------------------------------------------------------------


def parse_directives(data: bytes) -> dict[str, str]:
    """``key=value`` or ``key="quoted"`` pairs separated by commas (RFC 2831 2.1)."""
    text = data.decode("utf-8")
    out: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise SaslFailed("DIGEST-MD5: malformed directive")
        key = text[i:eq].strip().lower()
        i = eq + 1
        while i < n and text[i].isspace():
            i += 1
        if i < n and text[i] == '"':
            quoted = _quoted(text, i)
            if quoted is None:
                raise SaslFailed("DIGEST-MD5: unterminated quoted value")
            value, i = quoted
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            value = text[i:end].strip()
            i = end
        if key in out:
            raise SaslFailed(f"DIGEST-MD5: {key} given twice")
        out[key] = value
    return out


def _h(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def _hex(data: bytes) -> bytes:
    return hashlib.md5(data).hexdigest().encode("ascii")


def _text_bytes(text: str, utf8: bool) -> bytes:
    """RFC 2831 2.1.2.1: with charset=utf-8, text that ISO 8859-1 can hold is hashed as
    ISO 8859-1; without it the text is ISO 8859-1."""
    try:
        return text.encode("iso-8859-1")
    except UnicodeEncodeError:
        if not utf8:
            raise SaslFailed("DIGEST-MD5: text outside ISO 8859-1 without charset") from None
        return text.encode("utf-8")


def digest_response(
    *,
    username: str,
    realm: str,
    password: str,
    nonce: str,
    cnonce: str,
    nc: str,
    qop: str,
    digest_uri: str,
    authzid: str | None = None,
    utf8: bool = True,
    for_server: bool = False,
) -> str:
    """The ``response`` value (``for_server``: the ``rspauth`` value) for qop auth."""
    urp = _h(
        _text_bytes(username, utf8)
        + b":"
        + _text_bytes(realm, utf8)
        + b":"
        + _text_bytes(password, utf8)
    )
    a1 = urp + b":" + nonce.encode() + b":" + cnonce.encode()
    if authzid:
        a1 += b":" + authzid.encode("utf-8")
    a2 = (b"" if for_server else b"AUTHENTICATE") + b":" + digest_uri.encode("utf-8")
    kd = _hex(a1) + b":" + ":".join((nonce, nc, cnonce, qop)).encode() + b":" + _hex(a2)
    return _hex(kd).decode("ascii")


class DigestMD5Server:
    """One connection's DIGEST-MD5 exchange (``com.sun.security.sasl.digest.DigestMD5Server``
    with ZooKeeper's callback handler).  :meth:`evaluate` each client token in turn; it
    raises :class:`SaslFailed` on any failure, after which the exchange is over."""

    def __init__(
        self,
        settings: SaslSettings,
        nonce: str,
        *,
        realm: str = REALM,
        service: str = SERVICE,
        server_name: str = REALM,
    ) -> None:
        self._settings = settings
        self._nonce = nonce
        self._realm = realm
        self._uri = f"{service}/{server_name}"
        self._step = 0
        self.complete = False
        self.authorization_id: str | None = None

    def challenge(self) -> bytes:
        return (
            f'realm="{self._realm}",nonce="{self._nonce}",qop="auth",'
            "charset=utf-8,algorithm=md5-sess"
        ).encode("ascii")

    def evaluate(self, token: bytes) -> bytes:
        """The server's answer to the client's ``token``."""
        if self.complete or self._step > 1:
            self._step = 2
            raise SaslFailed("DIGEST-MD5: authentication sequence is complete")
        if self._step == 0:
            # DIGEST-MD5 has no initial response: whatever the first token, the challenge
            self._step = 1
            return self.challenge()
        self._step = 2
        return self._verify(token)

    def _verify(self, token: bytes) -> bytes:
        try:
            d = parse_directives(token)
        except UnicodeDecodeError:
            raise SaslFailed("DIGEST-MD5: response is not UTF-8") from None
        for key in ("username", "nonce", "cnonce", "nc", "response"):
            if key not in d:
                raise SaslFailed(f"DIGEST-MD5: digest response format violation: no {key}")
        qop = d.get("qop", "auth")
        if qop != "auth":
            raise SaslFailed(f"DIGEST-MD5: qop {qop} was not offered")
        if d["nonce"] != self._nonce:
            raise SaslFailed("DIGEST-MD5: nonces do not match")
        if d["nc"] != "00000001":
            raise SaslFailed(f"DIGEST-MD5: nonce count {d['nc']} is not 00000001")
        realm = d.get("realm", "")
        if realm and realm != self._realm:
            raise SaslFailed(f"DIGEST-MD5: realm {realm} is not {self._realm}")
        uri = d.get("digest-uri", "")
        if uri.lower() != self._uri.lower():
            raise SaslFailed(f"DIGEST-MD5: mismatched URI {uri!r}, expected {self._uri!r}")
        utf8 = d.get("charset", "").lower() == "utf-8"
        user = d["username"]
        password = self._settings.password(user)
        if password is None:
            raise SaslFailed(f"DIGEST-MD5: cannot acquire password for {user} in realm")

        def answer(for_server: bool) -> str:
            return digest_response(
                username=user,
                realm=realm,
                password=password,
                nonce=self._nonce,
                cnonce=d["cnonce"],
                nc=d["nc"],
                qop=qop,
                digest_uri=uri,
                authzid=d.get("authzid"),
                utf8=utf8,
                for_server=for_server,
            )

        if not hmac.compare_digest(answer(False).encode(), d["response"].lower().encode()):
            raise SaslFailed("DIGEST-MD5: digest response format violation. Mismatched response")
        self.complete = True
        self.authorization_id = user
        return f"rspauth={answer(True)}".encode("ascii")


def sasl_settings(props: Mapping[str, str], logins: Mapping[str, str], seed: bytes) -> SaslSettings:
    """The rest of :class:`SaslSettings` from zoo.cfg (3.8 reads them as the system
    properties ``zookeeper.<key>``, which a zoo.cfg line ``<key>=...`` sets)."""

    def get(name: str) -> str | None:
        value = props.get(name)
        return value if value is not None else props.get(f"zookeeper.{name}")

    supers = {
        v.strip()
        for k, v in props.items()
        if k.removeprefix("zookeeper.") == "superUser"
        or k.removeprefix("zookeeper.").startswith("superUser.")
    }
    return SaslSettings(
        logins=dict(logins),
        seed=seed,
        super_password=get("SASLAuthenticationProvider.superPassword"),
        super_users=frozenset(s for s in supers if s),
        allow_failed_clients=(get("allowSaslFailedClients") or "").strip().lower() == "true",
    )


def sasl_provider_configured(props: Mapping[str, str]) -> bool:
    """Whether ``zookeeper.authProvider.N`` registers ``SASLAuthenticationProvider`` (the
    ``sasl`` ACL scheme)."""
    return any(
        k.removeprefix("zookeeper.").startswith("authProvider.") and v.strip() == SASL_PROVIDER
        for k, v in props.items()
    )


def section_name(props: Mapping[str, str]) -> str:
    """``zookeeper.sasl.serverconfig``: the JAAS section of the server (``Server``)."""
    value = props.get("sasl.serverconfig") or props.get("zookeeper.sasl.serverconfig")
    return value.strip() if value and value.strip() else DEFAULT_SECTION
