"""Quorum TLS (``sslQuorum``): mutual TLS on the election and quorum ports.

Facts: ``docs/spec/quorum-tls.md`` and ``docs/spec/users.md`` section 1.4.  The keys are
ZooKeeper's (``X509Util``/``QuorumX509Util`` of 3.8, zoo.cfg prefix ``ssl.quorum.``):
``keyStore.location/type/password/passwordPath``, ``trustStore.location/type``,
``protocol`` (default ``TLSv1.2``), ``enabledProtocols`` (default: ``protocol``),
``ciphersuites`` (Java/IANA names, default ZooKeeper's ECDHE AES-GCM/CBC list),
``clientAuth`` (``NEED`` by default), ``hostnameVerification`` (default true) and
``handshakeDetectionTimeoutMillis`` (default 5000).  PEM and JKS stores are supported
(JKS decoded by :mod:`zkquorum.runtime.keystore`; PKCS#12 needs ciphers the standard
library lacks); a PEM key may be encrypted (then ``keyStore.password``).

The secure client port (``secureClientPort``) reads the same keys under ``ssl.``
(``ClientX509Util``): :func:`client_settings`, :func:`secure_listener`; it accepts only
(no dialling, no identity check beyond the chain: 3.8 does no hostname verification of
client certificates on the client port).

Design:

* **One** :class:`QuorumTls` **per peer** (:meth:`QuorumTls.for_config` shares it between the
  connection manager and every quorum-port session), holding the server and client
  ``SSLContext`` s and the counters (:func:`counters`, for ``mntr``).
* **Identity is the** ``server.N`` **line, never reverse DNS** (ZOOKEEPER-4986, the
  Kubernetes complaint in users.md 1.4).  Dialling, the client context checks the peer's
  certificate against the host we dialled, which is the host of that sid's server line
  (IP literals against IP SANs, names against DNS SANs).  Accepting, the chain is verified
  in the handshake (client certificate required), and the certificate is tied to a sid once
  the sid is known: on the election port after the initial message
  (:meth:`QuorumTls.peer_refusal`, called by the connection manager), on the quorum port at
  the learner's FOLLOWERINFO/OBSERVERINFO (:meth:`QuorumTls.learner_refusal`).  The
  certificate must match a host of *that* sid's server line; an unknown sid is refused.
  Java checks the remote IP instead and falls back to reverse DNS: a certificate naming
  only ``localhost`` is accepted by Java for 127.0.0.1 and refused here.
* **Handshakes never hold a listener**: every accepted socket gets its own task; the
  first byte (port unification) and the whole handshake must arrive within
  ``handshakeDetectionTimeoutMillis``.  A failed handshake closes the socket, is counted
  (``handshake_failures``) and logged with the reason (rate-limited per address).
* **portUnification** (ZOOKEEPER-3172): the listener peeks at the first byte; ``0x16`` (a
  TLS handshake record) starts TLS, anything else is served in plaintext (counted in
  ``plain_accepted``).  As in Java, a client silent for the detection timeout is taken as
  plaintext.  Outgoing connections use TLS only with ``sslQuorum=true``, so the rolling
  switch is: portUnification on everywhere, then sslQuorum on, then portUnification off.
* **sslQuorumReloadCertFiles** (ZOOKEEPER-3174): before each handshake the key and trust
  store files are stat'ed; when one changed the contexts are rebuilt (a failed rebuild,
  e.g. a half-written file, keeps the old contexts and is retried next time).  Without it
  the files are read once.
* TLS close is asynchronous with a short ``ssl_shutdown_timeout`` (ZOOKEEPER-3574): a
  silent peer cannot stall a close for asyncio's default 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

try:
    import ssl
except ImportError:  # pragma: no cover - `zkquorum run` blocks it when sslQuorum is off
    ssl = None  # type: ignore[assignment]

from zkquorum.config.model import HostPort, QuorumServer
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.runtime import keystore
from zkquorum.runtime.client_port import SecureListener
from zkquorum.runtime.netfmt import format_peer
from zkquorum.runtime.tasks import TaskOwner
from zkquorum.wire.quorum import PacketType, QuorumPacket, decode_learner_info

log = logging.getLogger(__name__)

PREFIX: Final = "ssl.quorum."
DEFAULT_PROTOCOL: Final = "TLSv1.2"
DEFAULT_HANDSHAKE_TIMEOUT_MS: Final = 5000
"""``X509Util.DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MILLIS``."""
SHUTDOWN_TIMEOUT: Final = 2.0
"""Seconds a TLS close waits for the peer's close_notify before aborting."""
LOG_INTERVAL: Final = 10.0
"""The same refusal (address, reason) is logged at WARNING at most this often."""
TLS_HANDSHAKE_BYTE: Final = 0x16

# ZooKeeper 3.8's default suites (Java 9+ order: GCM first), as IANA names.
DEFAULT_CIPHER_SUITES: Final = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
)

_TLS13_SUITES: Final = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)
_KX: Final = {
    "ECDHE_ECDSA": "ECDHE-ECDSA-",
    "ECDHE_RSA": "ECDHE-RSA-",
    "DHE_RSA": "DHE-RSA-",
    "RSA": "",
}
_PROTOCOL_NAMES: Final = {
    "TLSv1": "TLSv1",
    "TLSv1.1": "TLSv1_1",
    "TLSv1.2": "TLSv1_2",
    "TLSv1.3": "TLSv1_3",
}

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Dial = Callable[[HostPort, float], Awaitable[Stream]]
AcceptCallback = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]
Port = Literal["election", "quorum"]


class TlsConfigError(ValueError):
    """The ``ssl.quorum.*`` settings cannot be used (bad value, unreadable store)."""


class TlsRefused(ConnectionError):
    """An outgoing TLS handshake failed; ``str()`` says with whom and why."""


# -- settings --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The quorum TLS settings of one peer, validated (no file is read here)."""

    ssl_quorum: bool
    port_unification: bool
    key_store: str
    key_store_password: str | None
    trust_store: str | None
    protocols: tuple[str, ...] = (DEFAULT_PROTOCOL,)
    cipher_suites: tuple[str, ...] = DEFAULT_CIPHER_SUITES
    client_auth: Literal["NEED", "WANT", "NONE"] = "NEED"
    hostname_verification: bool = True
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT_MS / 1000
    reload: bool = False
    key_store_type: Literal["PEM", "JKS"] = "PEM"
    trust_store_type: Literal["PEM", "JKS"] = "PEM"
    trust_store_password: str | None = None
    prefix: str = "ssl.quorum."
    """Where the keys came from, for messages."""


def _java_bool(value: str | None, default: bool) -> bool:
    """``ZKConfig#getBoolean``: ``Boolean.parseBoolean(value.trim())``."""
    return default if value is None else value.strip().lower() == "true"


StoreType = Literal["PEM", "JKS"]


def _store_type(raw: Mapping[str, str], prefix: str, which: str, location: str) -> StoreType:
    """``KeyStoreFileType.fromPropertyValueOrFileName``: the ``.type`` key, else the file
    name's extension; PEM and JKS are readable here (:mod:`zkquorum.runtime.keystore`)."""
    kind = raw.get(f"{prefix}{which}.type", "").strip().upper()
    if not kind:
        lower = location.lower()
        if lower.endswith(".jks"):
            kind = "JKS"
        elif lower.endswith((".p12", ".pfx")):
            kind = "PKCS12"
        elif lower.endswith(".bcfks"):
            kind = "BCFKS"
        else:
            return "PEM"
    if kind == "PEM":
        return "PEM"
    if kind == "JKS":
        return "JKS"
    raise TlsConfigError(
        f"{prefix}{which}.type={kind}: only PEM and JKS stores are supported "
        "(convert with openssl; the key must be PKCS#8 for Java)"
    )


def _password(raw: Mapping[str, str], prefix: str, which: str) -> str | None:
    path = raw.get(f"{prefix}{which}.passwordPath", "").strip()
    if path:  # X509Util: the file wins over the property
        try:
            return Path(path).read_text().rstrip("\r\n")
        except OSError as exc:
            raise TlsConfigError(
                f"{prefix}{which}.passwordPath: cannot read {path}: {exc.strerror}"
            ) from None
    value = raw.get(f"{prefix}{which}.password", "")
    return value or None


def settings_from_config(config: QuorumConfig) -> TlsSettings | None:
    """The TLS settings of ``config``, or ``None`` when neither sslQuorum nor
    portUnification is on.  Raises :class:`TlsConfigError`."""
    if not config.ssl_quorum and not config.port_unification:
        return None
    return parse_settings(
        config.ssl_quorum_settings,
        PREFIX,
        ssl_quorum=config.ssl_quorum,
        port_unification=config.port_unification,
        reload=config.ssl_quorum_reload_cert_files,
        needed_by="sslQuorum/portUnification need",
    )


CLIENT_PREFIX: Final = "ssl."
"""The client port's keys (``ClientX509Util``): ``ssl.keyStore.location`` and so on."""


def client_settings(props: Mapping[str, str]) -> TlsSettings:
    """The secure client port's settings from zoo.cfg's ``ssl.*`` keys (not
    ``ssl.quorum.*``).  3.8 reads them as the system properties ``zookeeper.ssl.*``, which
    a zoo.cfg line sets too.  Raises :class:`TlsConfigError`."""
    raw: dict[str, str] = {}
    for key, value in props.items():
        name = key.removeprefix("zookeeper.")
        if name.startswith(CLIENT_PREFIX) and not name.startswith(PREFIX):
            raw.setdefault(name, value.strip())
    return parse_settings(raw, CLIENT_PREFIX, needed_by="secureClientPort needs")


def parse_settings(
    raw: Mapping[str, str],
    prefix: str,
    *,
    ssl_quorum: bool = False,
    port_unification: bool = False,
    reload: bool = False,
    needed_by: str,
) -> TlsSettings:
    """One ``X509Util``'s keys under ``prefix`` (``ssl.quorum.`` or ``ssl.``)."""
    for key in ("context.supplier.class", "crl", "ocsp"):
        value = raw.get(prefix + key)
        if value and (key == "context.supplier.class" or _java_bool(value, False)):
            raise TlsConfigError(f"{prefix}{key}={value} is not supported by zkquorum")
    key_store = raw.get(prefix + "keyStore.location", "").strip()
    if not key_store:
        raise TlsConfigError(f"{needed_by} {prefix}keyStore.location")
    key_store_type = _store_type(raw, prefix, "keyStore", key_store)
    trust_store = raw.get(prefix + "trustStore.location", "").strip() or None
    trust_store_type: StoreType = "PEM"
    if trust_store is not None:
        trust_store_type = _store_type(raw, prefix, "trustStore", trust_store)
    protocol = raw.get(prefix + "protocol", "").strip() or DEFAULT_PROTOCOL
    enabled = raw.get(prefix + "enabledProtocols")
    protocols = tuple(p.strip() for p in enabled.split(",")) if enabled is not None else ()
    protocols = tuple(p for p in protocols if p) or (protocol,)
    for p in protocols:
        if p not in _PROTOCOL_NAMES and p != "TLS":
            raise TlsConfigError(f"unknown TLS protocol {p!r} (TLSv1.2, TLSv1.3...)")
    suites_raw = raw.get(prefix + "ciphersuites")
    suites = (
        tuple(s.strip() for s in suites_raw.split(",") if s.strip())
        if suites_raw is not None
        else DEFAULT_CIPHER_SUITES
    )
    auth_raw = (raw.get(prefix + "clientAuth") or "NEED").strip().upper() or "NEED"
    auth: Literal["NEED", "WANT", "NONE"]
    if auth_raw == "NEED":
        auth = "NEED"
    elif auth_raw == "WANT":
        auth = "WANT"
    elif auth_raw == "NONE":
        auth = "NONE"
    else:
        raise TlsConfigError(f"{prefix}clientAuth={auth_raw}: NEED, WANT or NONE")
    timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS
    t_raw = raw.get(prefix + "handshakeDetectionTimeoutMillis")
    if t_raw is not None:
        try:
            timeout_ms = int(t_raw.strip())
        except ValueError:
            log.error("%shandshakeDetectionTimeoutMillis=%s: not a number", prefix, t_raw)
            timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS
        if timeout_ms < 1:  # 0 would let a silent client hold a handshake forever
            timeout_ms = DEFAULT_HANDSHAKE_TIMEOUT_MS
    return TlsSettings(
        ssl_quorum=ssl_quorum,
        port_unification=port_unification,
        key_store=key_store,
        key_store_password=_password(raw, prefix, "keyStore"),
        trust_store=trust_store,
        key_store_type=key_store_type,
        trust_store_type=trust_store_type,
        trust_store_password=_password(raw, prefix, "trustStore"),
        prefix=prefix,
        protocols=protocols,
        cipher_suites=suites,
        client_auth=auth,
        hostname_verification=_java_bool(raw.get(prefix + "hostnameVerification"), True),
        handshake_timeout=timeout_ms / 1000,
        reload=reload,
    )


# -- contexts --------------------------------------------------------------------------


def openssl_cipher_name(name: str) -> str | None:
    """A Java/IANA TLS 1.2 suite name as OpenSSL spells it (``None`` for TLS 1.3 suites,
    which OpenSSL does not let one restrict here).  OpenSSL names pass through."""
    if name in _TLS13_SUITES:
        return None
    if not name.startswith("TLS_") or "_WITH_" not in name:
        return name
    kx, _, rest = name[4:].partition("_WITH_")
    if kx not in _KX:
        return name
    parts = rest.split("_")
    if len(parts) == 4 and parts[0] == "AES" and parts[2] == "GCM":  # AES_128_GCM_SHA256
        body = f"AES{parts[1]}-GCM-{parts[3]}"
    elif len(parts) == 4 and parts[0] == "AES" and parts[2] == "CBC":  # AES_128_CBC_SHA
        body = f"AES{parts[1]}-{parts[3]}"
    elif rest == "CHACHA20_POLY1305_SHA256":
        body = "CHACHA20-POLY1305"
    else:
        return name
    if kx == "RSA" and parts[2] == "GCM":
        return body
    return _KX[kx] + body


def _versions(protocols: Iterable[str]) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    versions: list[ssl.TLSVersion] = []
    for p in protocols:
        if p == "TLS":
            versions += [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
        else:
            versions.append(ssl.TLSVersion[_PROTOCOL_NAMES[p]])
    return min(versions), max(versions)


def build_contexts(settings: TlsSettings) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts: reads the stores.  Raises :class:`TlsConfigError`."""
    stores = _read_stores(settings)
    return (
        _context(settings, ssl.PROTOCOL_TLS_SERVER, stores),
        _context(settings, ssl.PROTOCOL_TLS_CLIENT, stores),
    )


def build_server_context(settings: TlsSettings) -> ssl.SSLContext:
    """The accepting side's context only (the secure client port)."""
    return _context(settings, ssl.PROTOCOL_TLS_SERVER, _read_stores(settings))


def _read_stores(settings: TlsSettings) -> tuple[str | None, str | None]:
    """The JKS stores decoded to PEM text (``None`` for a PEM store, read by path)."""
    key_pem = trust_pem = None
    if settings.key_store_type == "JKS":
        key_pem = keystore.key_store_pem(
            _jks(settings.key_store, settings.key_store_password, "key")
        )
    if settings.trust_store is not None and settings.trust_store_type == "JKS":
        trust_pem = keystore.trust_store_pem(
            _jks(settings.trust_store, settings.trust_store_password, "trust")
        )
    return key_pem, trust_pem


def _jks(path: str, password: str | None, which: str) -> keystore.JavaKeyStore:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise TlsConfigError(f"{which} store {path}: no such file") from None
    except OSError as exc:
        raise TlsConfigError(f"{which} store {path}: {exc.strerror}") from None
    try:
        return keystore.parse_jks(data, password)
    except keystore.KeyStoreError as exc:
        raise TlsConfigError(f"{which} store {path}: {exc}") from None


def _load_chain_text(ctx: ssl.SSLContext, text: str) -> None:
    """``load_cert_chain`` reads files only: hand it the decoded key through an anonymous
    memory file where there is one (Linux), else a private temporary file."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("zkquorum-keystore", os.MFD_CLOEXEC)
        try:
            os.write(fd, text.encode("ascii"))
            ctx.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    import tempfile

    fd, name = tempfile.mkstemp(prefix="zkquorum-keystore-", suffix=".pem")
    try:
        os.write(fd, text.encode("ascii"))
        os.close(fd)
        ctx.load_cert_chain(name)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _context(
    settings: TlsSettings, purpose: ssl._SSLMethod, stores: tuple[str | None, str | None]
) -> ssl.SSLContext:
    prefix = settings.prefix
    key_pem, trust_pem = stores
    low, high = _versions(settings.protocols)
    openssl_suites = [n for n in map(openssl_cipher_name, settings.cipher_suites) if n]
    password = settings.key_store_password or ""
    ctx = ssl.SSLContext(purpose)
    try:
        ctx.minimum_version = low
        ctx.maximum_version = high
    except (ValueError, ssl.SSLError) as exc:
        raise TlsConfigError(f"TLS protocols {settings.protocols}: {exc}") from None
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    if low <= ssl.TLSVersion.TLSv1_2:
        if not openssl_suites:
            raise TlsConfigError(f"{prefix}ciphersuites: no TLS 1.2 suite left")
        try:
            ctx.set_ciphers(":".join(openssl_suites))
        except ssl.SSLError:
            raise TlsConfigError(
                f"{prefix}ciphersuites: none usable of {','.join(settings.cipher_suites)}"
            ) from None
    try:
        if key_pem is not None:
            _load_chain_text(ctx, key_pem)
        else:
            # the key and the chain in one PEM file, as Java's PEM key store; a callable
            # password, so that an encrypted key never prompts on a terminal
            ctx.load_cert_chain(settings.key_store, password=lambda: password)
    except FileNotFoundError:
        raise TlsConfigError(f"key store {settings.key_store}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(
            f"key store {settings.key_store}: cannot load the key and certificate "
            f"({_reason(exc)}; wrong or missing {prefix}keyStore.password?)"
        ) from None
    try:
        if trust_pem is not None:
            ctx.load_verify_locations(cadata=trust_pem)
        elif settings.trust_store is not None:
            ctx.load_verify_locations(cafile=settings.trust_store)
        else:  # Java: no trust store = the JDK's default trust
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    except FileNotFoundError:
        raise TlsConfigError(f"trust store {settings.trust_store}: no such file") from None
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"trust store {settings.trust_store}: {_reason(exc)}") from None
    if purpose == ssl.PROTOCOL_TLS_SERVER:
        ctx.verify_mode = {
            "NEED": ssl.CERT_REQUIRED,
            "WANT": ssl.CERT_OPTIONAL,
            "NONE": ssl.CERT_NONE,
        }[settings.client_auth]
    else:
        ctx.check_hostname = settings.hostname_verification
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _reason(exc: BaseException) -> str:
    """One line saying why a handshake (or a load) failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        if exc.reason:
            return str(exc.reason).lower().replace("_", " ")
        return exc.strerror or str(exc)
    if isinstance(exc, TimeoutError | ConnectionAbortedError):
        return "handshake timed out"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | EOFError) and not exc.args:
        # asyncio aborts a failed handshake without flushing OpenSSL's alert: the peer
        # refused our certificate (or is not speaking TLS)
        return "connection reset during the TLS handshake (the peer refused it)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# -- identity --------------------------------------------------------------------------


def certificate_names(cert: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) a peer certificate (``getpeercert()``) is valid for.

    Subject alternative names; the subject CN counts as a DNS name only when there is no
    DNS SAN (RFC 6125, as Java's ``ZKHostnameVerifier``)."""
    dns: list[str] = []
    ips: list[str] = []
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "DNS":
            dns.append(str(value))
        elif kind == "IP Address":
            ips.append(str(value).strip())
    if not dns:
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    dns.append(str(value))
    return dns, ips


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if pattern.startswith("*.") and "." in host:  # a wildcard covers one left-most label
        return host.split(".", 1)[1] == pattern[2:] and "*" not in pattern[2:]
    return False


def host_matches(cert: Mapping[str, Any], host: str) -> bool:
    """Whether ``cert`` is valid for ``host`` (an IP literal or a DNS name); no DNS lookup."""
    dns, ips = certificate_names(cert)
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return any(_dns_match(p, host) for p in dns)
    for value in ips:
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(value) == ip:
                return True
    return False


def describe_certificate(cert: Mapping[str, Any]) -> str:
    dns, ips = certificate_names(cert)
    names = [f"IP:{i}" for i in ips] + [f"DNS:{d}" for d in dns]
    return ", ".join(names) or "no names"


# -- counters --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsCounters:
    """Totals since start (for ``mntr``), both ports, both directions."""

    handshakes: int = 0
    """TLS handshakes completed."""
    handshake_failures: int = 0
    """Handshakes that failed or timed out (bad certificate, not TLS, silence)."""
    identity_refused: int = 0
    """Verified certificates that are not valid for the host of the sid's server line."""
    plain_accepted: int = 0
    """Plaintext connections accepted (portUnification)."""
    context_reloads: int = 0
    """Contexts rebuilt because the key or trust store changed."""


def _signature(path: str | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


# -- the per-peer object ---------------------------------------------------------------


class QuorumTls:
    """TLS for one peer: contexts (reloaded when asked), listeners, dialling, identity.

    Args:
        settings: see :func:`settings_from_config`.
        members: sid -> hosts of that sid's server line (quorum and election addresses),
            for the quorum port's identity check.
    """

    def __init__(
        self, settings: TlsSettings, members: Mapping[int, Iterable[str]] | None = None
    ) -> None:
        self.settings = settings
        self.members: dict[int, tuple[str, ...]] = {s: tuple(h) for s, h in (members or {}).items()}
        self._counts: dict[str, int] = {f.name: 0 for f in dataclasses.fields(TlsCounters)}
        self._sigs = self._signatures()
        self._server_ctx, self._client_ctx = build_contexts(settings)
        self._logged: dict[tuple[str, str, str], float] = {}

    @classmethod
    def for_config(cls, config: QuorumConfig) -> QuorumTls | None:
        """A new instance for ``config``'s peer, or ``None`` without TLS.  The peer owns
        it and hands it to both of its ports (one set of contexts and counters)."""
        settings = settings_from_config(config)
        if settings is None:
            return None
        tls = cls(settings)
        for verifier in (config.verifier, config.last_seen_verifier):
            if verifier is not None:
                tls.learn_members(verifier.all_members.values())
        return tls

    def learn_members(self, servers: Iterable[QuorumServer]) -> None:
        """The hosts a member's certificate may name: those of every server line seen
        (a reconfig adds lines; a host once valid for a sid stays valid)."""
        for server in servers:
            hosts = [a.host for a in (*server.quorum_addrs, *server.election_addrs)]
            known = self.members.get(server.sid, ())
            self.members[server.sid] = tuple(dict.fromkeys([*known, *hosts]))

    # -- contexts ----------------------------------------------------------------------

    def _signatures(self) -> tuple[object, ...]:
        return (_signature(self.settings.key_store), _signature(self.settings.trust_store))

    def _maybe_reload(self) -> None:
        if not self.settings.reload:
            return
        sigs = self._signatures()
        if sigs == self._sigs:
            return
        try:
            self._server_ctx, self._client_ctx = build_contexts(self.settings)
        except TlsConfigError as exc:
            log.error("Quorum TLS: new certificate files not loaded, keeping the old: %s", exc)
            return
        self._sigs = sigs
        self._count("context_reloads")
        log.info("Quorum TLS: reloaded the key and trust stores")

    def server_context(self) -> ssl.SSLContext:
        self._maybe_reload()
        return self._server_ctx

    def client_context(self) -> ssl.SSLContext:
        self._maybe_reload()
        return self._client_ctx

    # -- observation -------------------------------------------------------------------

    @property
    def counters(self) -> TlsCounters:
        return TlsCounters(**self._counts)

    def _count(self, name: str) -> None:
        self._counts[name] += 1

    def _refused(self, what: str, remote: str, reason: str) -> None:
        now = time.monotonic()
        key = (what, remote.rsplit(":", 1)[0], reason)
        level = logging.WARNING
        if now - self._logged.get(key, -LOG_INTERVAL) < LOG_INTERVAL:
            level = logging.DEBUG
        else:
            self._logged[key] = now
            if len(self._logged) > 1000:
                self._logged.clear()
        log.log(level, "Quorum TLS: refused %s %s: %s", what, remote, reason)

    # -- identity ----------------------------------------------------------------------

    def peer_refusal(
        self, writer: asyncio.StreamWriter, sid: int, hosts: Iterable[str], port: Port
    ) -> str | None:
        """Why the TLS peer on ``writer``, claiming ``sid`` whose server line lists
        ``hosts``, must be refused (``None``: accept).  Plaintext connections (port
        unification) and connections without a client certificate (clientAuth
        WANT/NONE) are not checked.  Counts and logs a refusal."""
        if not self.settings.hostname_verification:
            return None
        sslobj = writer.get_extra_info("ssl_object")
        if sslobj is None:
            return None
        cert = sslobj.getpeercert()
        if not cert:
            return None
        hosts = tuple(hosts)
        if any(host_matches(cert, h) for h in hosts):
            return None
        if hosts:
            reason = (
                f"certificate ({describe_certificate(cert)}) is not valid for "
                f"{'/'.join(dict.fromkeys(hosts))}, the host of server.{sid}"
            )
        else:
            reason = f"sid {sid} has no server line to check its certificate against"
        self._count("identity_refused")
        self._refused(f"{port} connection from", _peer(writer), reason)
        return reason

    def stranger_refusal(self, writer: asyncio.StreamWriter, port: Port) -> str | None:
        """Why a TLS peer whose certificate names no host of any server line must be
        refused at once, before it says which sid it is (``None``: it may belong to some
        sid; the check against that sid's line follows).  Counts and logs a refusal."""
        if not self.settings.hostname_verification or not self.members:
            return None
        sslobj = writer.get_extra_info("ssl_object")
        cert = sslobj.getpeercert() if sslobj is not None else None
        if not cert:
            return None
        hosts = dict.fromkeys(h for line in self.members.values() for h in line)
        if any(host_matches(cert, h) for h in hosts):
            return None
        reason = (
            f"certificate ({describe_certificate(cert)}) is valid for no host of any server line"
        )
        self._count("identity_refused")
        self._refused(f"{port} connection from", _peer(writer), reason)
        return reason

    def learner_refusal(self, writer: asyncio.StreamWriter, packet: QuorumPacket) -> str | None:
        """The quorum port's check, at the learner's FOLLOWERINFO/OBSERVERINFO."""
        if packet.type not in (PacketType.FOLLOWERINFO, PacketType.OBSERVERINFO):
            return None
        if writer.get_extra_info("ssl_object") is None:
            return None
        try:
            sid = decode_learner_info(packet.data).server_id
        except Exception:  # the leader core refuses malformed packets itself
            return None
        return self.peer_refusal(writer, sid, self.members.get(sid, ()), "quorum")

    # -- dialling ----------------------------------------------------------------------

    def _hostname(self, host: str) -> str | None:
        return host.split("%", 1)[0] if self.settings.hostname_verification else None

    async def open_connection(self, addr: HostPort, timeout: float | None = None) -> Stream:
        """A TCP connection to ``addr``, with TLS when ``sslQuorum`` is on.

        Raises ``OSError``/``TimeoutError``; :class:`TlsRefused` when the handshake fails
        (the certificate is checked against ``addr.host``)."""
        if not self.settings.ssl_quorum:
            async with asyncio.timeout(timeout):
                return await asyncio.open_connection(addr.host, addr.port)
        ctx = self.client_context()
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    addr.host,
                    addr.port,
                    ssl=ctx,
                    server_hostname=self._hostname(addr.host),
                    ssl_handshake_timeout=self.settings.handshake_timeout,
                    ssl_shutdown_timeout=SHUTDOWN_TIMEOUT,
                )
        except (ssl.SSLError, ConnectionAbortedError, ConnectionResetError) as exc:
            # aborted: asyncio's handshake timeout; reset: the peer refused us
            raise self._outgoing_failed(addr, exc) from None
        self._count("handshakes")
        return reader, writer

    def _outgoing_failed(self, addr: HostPort, exc: BaseException) -> TlsRefused:
        self._count("handshake_failures")
        reason = _reason(exc)
        self._refused("TLS connection to", str(addr), reason)
        return TlsRefused(f"TLS handshake with {addr} failed: {reason}")

    def wrap_dialer(self, dial: Dial, *, direct: bool = False) -> Dial:
        """A dialer for the election port: TLS over ``dial`` when ``sslQuorum`` is on.

        ``direct``: ``dial`` is a plain ``open_connection``; then the TLS connection is
        opened in one go (with a short TLS close timeout) instead of upgrading ``dial``'s.
        """
        if not self.settings.ssl_quorum:
            return dial
        if direct:
            return self.open_connection

        async def tls_dial(addr: HostPort, timeout: float) -> Stream:
            reader, writer = await dial(addr, timeout)
            try:
                await writer.start_tls(
                    self.client_context(),
                    server_hostname=self._hostname(addr.host),
                    ssl_handshake_timeout=self.settings.handshake_timeout,
                )
            except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
                writer.close()
                raise self._outgoing_failed(addr, exc) from None
            except BaseException:
                writer.close()
                raise
            self._count("handshakes")
            return reader, writer

        return tls_dial

    # -- listening ---------------------------------------------------------------------

    async def start_server(
        self,
        callback: AcceptCallback,
        *,
        sock: socket.socket | None = None,
        host: str | None = None,
        port: int | None = None,
        port_name: Port = "election",
    ) -> TlsServer:
        """Listen on ``sock`` (bound and listening) or on ``host:port``; every accepted
        connection is handed to ``callback(reader, writer)`` after its TLS handshake (or
        as plaintext, with port unification)."""
        if sock is None:
            if host is None or port is None:
                raise ValueError("start_server needs sock, or host and port")
            sock = await _bind(host, port)
        sock.setblocking(False)
        server = TlsServer(self, sock, callback, port_name)
        server.start()
        return server

    async def _handshake(
        self, sock: socket.socket, port: Port
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """TLS (or plaintext) on an accepted socket; ``None`` when refused (closed)."""
        loop = asyncio.get_running_loop()
        remote = _fmt(sock)
        timeout = self.settings.handshake_timeout
        deadline = loop.time() + timeout
        use_tls = True
        if self.settings.port_unification:
            first = await _peek(sock, timeout)
            if first == b"":
                sock.close()  # closed before saying anything
                return None
            use_tls = first is not None and first[0] == TLS_HANDSHAKE_BYTE
        reader = asyncio.StreamReader(limit=2**16, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            if use_tls:
                async with asyncio.timeout_at(deadline + 0.5):
                    transport, _ = await loop.connect_accepted_socket(
                        lambda: protocol,
                        sock,
                        ssl=self.server_context(),
                        ssl_handshake_timeout=max(deadline - loop.time(), 0.001),
                        ssl_shutdown_timeout=SHUTDOWN_TIMEOUT,
                    )
            else:
                transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
        except (OSError, TimeoutError) as exc:
            sock.close()
            self._count("handshake_failures")
            self._refused(f"{port} connection from", remote, _reason(exc))
            return None
        except BaseException:
            sock.close()
            raise
        self._count("handshakes" if use_tls else "plain_accepted")
        if not use_tls:
            log.info("Quorum TLS: accepted a plaintext %s connection from %s", port, remote)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        if use_tls and self.stranger_refusal(writer, port) is not None:
            writer.close()
            return None
        return reader, writer


class TlsServer(asyncio.AbstractServer):
    """A listener whose connections are handed over after their own TLS handshake.

    Like ``asyncio.Server``: :meth:`close` stops accepting (handshakes in progress are
    cancelled; connections already handed over are the callback's), ``sockets``."""

    def __init__(
        self, tls: QuorumTls, sock: socket.socket, callback: AcceptCallback, port: Port
    ) -> None:
        self._tls = tls
        self._sock = sock
        self._callback = callback
        self._port: Port = port
        self._tasks = TaskOwner(f"tls-{port}")
        """The accept loop and the handshakes in progress (a connection handed over is
        the callback's)."""
        self._closed = asyncio.Event()
        self._started = False

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._sock.fileno() < 0 else (self._sock,)

    def start(self) -> None:
        self._started = True
        self._tasks.spawn(self._accept_loop(), "accept")

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self._sock)
            except OSError as exc:  # EMFILE and the like: back off, keep listening
                log.warning("Quorum TLS: accept on the %s port failed: %s", self._port, exc)
                await asyncio.sleep(0.1)
                continue
            if self._tasks.spawn(self._serve(conn), "handshake") is None:
                conn.close()

    async def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            stream = await self._tls._handshake(conn, self._port)
        except BaseException:  # cancelled by close(): the socket is still ours
            conn.close()
            raise
        if stream is None:
            return
        self._tasks.release(asyncio.current_task())  # handed over: the callback owns it now
        result = self._callback(*stream)
        if inspect.isawaitable(result):
            await result

    def close(self) -> None:
        self._tasks.stop()
        with contextlib.suppress(OSError):
            self._sock.close()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()
        await self._tasks.close()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def is_serving(self) -> bool:
        return self._started and not self._closed.is_set()

    async def start_serving(self) -> None:
        return None

    async def serve_forever(self) -> None:
        await self._closed.wait()


# -- plumbing --------------------------------------------------------------------------


async def start_server(
    tls: QuorumTls | None,
    callback: AcceptCallback,
    *,
    sock: socket.socket | None = None,
    host: str | None = None,
    port: int | None = None,
    port_name: Port = "election",
) -> asyncio.Server | TlsServer:
    """``asyncio.start_server`` without TLS, :meth:`QuorumTls.start_server` with it."""
    if tls is None:
        if sock is not None:
            return await asyncio.start_server(callback, sock=sock)  # type: ignore[arg-type]
        return await asyncio.start_server(
            callback,  # type: ignore[arg-type]
            host,
            port,
            reuse_address=True,
        )
    return await tls.start_server(callback, sock=sock, host=host, port=port, port_name=port_name)


async def open_connection(tls: QuorumTls | None, addr: HostPort) -> Stream:
    """``asyncio.open_connection`` without TLS, :meth:`QuorumTls.open_connection` with it."""
    if tls is None:
        return await asyncio.open_connection(addr.host, addr.port)
    return await tls.open_connection(addr)


async def _bind(host: str, port: int) -> socket.socket:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, type_, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(sockaddr)
        sock.listen(socket.SOMAXCONN)
    except BaseException:
        sock.close()
        raise
    return sock


async def _peek(sock: socket.socket, timeout: float) -> bytes | None:
    """The first byte, left in the socket; ``b""`` at EOF, ``None`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    deadline = loop.time() + timeout
    while True:
        loop.add_reader(fd, wake)
        try:
            async with asyncio.timeout_at(deadline):
                await ready
        except TimeoutError:
            log.warning(
                "Quorum TLS: no byte within %.0f ms from %s: assuming plaintext (as ZooKeeper)",
                timeout * 1000,
                _fmt(sock),
            )
            return None
        finally:
            loop.remove_reader(fd)
        try:
            return sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:  # a spurious wake-up
            ready = loop.create_future()
        except OSError:
            return b""


def _fmt(sock: socket.socket) -> str:
    try:
        peer = sock.getpeername()
    except OSError:
        return "?"
    return format_peer(peer)


def _peer(writer: asyncio.StreamWriter) -> str:
    return format_peer(writer.get_extra_info("peername"))


__all__ = [
    "DEFAULT_CIPHER_SUITES",
    "QuorumTls",
    "TlsConfigError",
    "TlsCounters",
    "TlsRefused",
    "TlsServer",
    "TlsSettings",
    "build_contexts",
    "certificate_names",
    "host_matches",
    "open_connection",
    "openssl_cipher_name",
    "settings_from_config",
    "start_server",
]


# -- the secure client port ------------------------------------------------------------


def secure_listener(config: QuorumConfig, props: Mapping[str, str]) -> SecureListener | None:
    """``secureClientPort`` as a :class:`~zkquorum.runtime.client_port.SecureListener`
    (``None`` without one): its address (``secureClientPortAddress``, else every
    interface, as 3.8) and a server context from zoo.cfg's ``ssl.*`` keys
    (``props``).  Raises :class:`TlsConfigError`."""
    if not config.secure_client_port:
        return None
    settings = client_settings(props)
    return SecureListener(
        host=config.secure_client_port_address or "0.0.0.0",
        port=config.secure_client_port,
        context=build_server_context(settings),
        handshake_timeout_s=settings.handshake_timeout,
    )
