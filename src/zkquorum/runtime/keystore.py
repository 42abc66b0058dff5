"""Java key stores for TLS: read a JKS file into PEM text that :mod:`ssl` loads.

ZooKeeper's ``X509Util`` reads its key and trust stores as JKS (the default, and what
kazoo's test harness writes), PEM or PKCS#12.  Python's :mod:`ssl` reads PEM only, so a
JKS store is decoded here with the standard library alone:

* the file (``sun.security.provider.JavaKeyStore``): magic ``0xFEEDFEED``, version 1 or
  2, the entries (a private key with its certificate chain, tag 1; a trusted certificate,
  tag 2), then a SHA-1 over the password (UTF-16BE), the text ``"Mighty Aphrodite"`` and
  everything before it.  With a password that digest is checked (a wrong password is an
  error, as in Java); without one it is not (Java's ``KeyStore.load(in, null)``).
* a private key is an ``EncryptedPrivateKeyInfo`` under Sun's proprietary "key protector"
  (OID 1.3.6.1.4.1.42.2.17.1.1, ``sun.security.provider.KeyProtector``): a 20-byte salt,
  the key XORed with a SHA-1 chain over the password and the salt, and a SHA-1 of the
  password and the plain key to check it.  The plain key is a PKCS#8 ``PrivateKeyInfo``.

JCEKS (3DES) and PKCS#12 (3DES, RC2 or AES) stores need ciphers the standard library does
not have; they are refused with a message saying how to convert them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import struct
from typing import Final

JKS_MAGIC: Final = 0xFEEDFEED
JCEKS_MAGIC: Final = 0xCECECECE
_INTEGRITY_WHITENER: Final = b"Mighty Aphrodite"
_KEY_PROTECTOR_OID: Final = "1.3.6.1.4.1.42.2.17.1.1"
_SHA1_LEN: Final = 20


class KeyStoreError(ValueError):
    """The store cannot be read (format, password, unsupported kind)."""


@dataclasses.dataclass(frozen=True, slots=True)
class PrivateKeyEntry:
    alias: str
    pkcs8: bytes
    """The decrypted key, a DER ``PrivateKeyInfo``."""
    chain: tuple[bytes, ...]
    """DER certificates, the key's own first."""


@dataclasses.dataclass(frozen=True, slots=True)
class JavaKeyStore:
    keys: tuple[PrivateKeyEntry, ...]
    trusted: tuple[bytes, ...]
    """DER certificates of the trusted-certificate entries."""


def _password_bytes(password: str) -> bytes:
    return password.encode("utf-16-be")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise KeyStoreError("truncated JKS file")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        value: int = struct.unpack(">H", self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def utf(self) -> str:
        # Java's modified UTF-8; aliases and "X.509" are plain ASCII in practice
        return self.take(self.u16()).decode("utf-8", errors="replace")

    def blob(self) -> bytes:
        return self.take(self.u32())


def parse_jks(data: bytes, password: str | None) -> JavaKeyStore:
    """Decode a JKS store; private keys are decrypted with ``password`` (``""`` when
    ``None``).  Raises :class:`KeyStoreError`."""
    r = _Reader(data)
    magic = r.u32()
    if magic == JCEKS_MAGIC:
        raise KeyStoreError("JCEKS stores are not supported (convert to JKS or PEM)")
    if magic != JKS_MAGIC:
        raise KeyStoreError("not a JKS file (convert PKCS#12 stores to PEM with openssl)")
    version = r.u32()
    if version not in (1, 2):
        raise KeyStoreError(f"unknown JKS version {version}")
    protected_keys: list[tuple[str, bytes, tuple[bytes, ...]]] = []
    trusted: list[bytes] = []
    for _ in range(r.u32()):
        tag = r.u32()
        alias = r.utf()
        r.take(8)  # creation time
        if tag == 1:
            protected = r.blob()
            chain = []
            for _ in range(r.u32()):
                if version == 2:
                    kind = r.utf()
                    if kind != "X.509":
                        raise KeyStoreError(f"{alias}: certificate type {kind} is not X.509")
                chain.append(r.blob())
            protected_keys.append((alias, protected, tuple(chain)))
        elif tag == 2:
            if version == 2:
                kind = r.utf()
                if kind != "X.509":
                    raise KeyStoreError(f"{alias}: certificate type {kind} is not X.509")
            trusted.append(r.blob())
        else:
            raise KeyStoreError(f"unknown JKS entry tag {tag}")
    body_end = r.pos
    digest = r.take(_SHA1_LEN)
    if password is not None:
        expected = hashlib.sha1(
            _password_bytes(password) + _INTEGRITY_WHITENER + data[:body_end]
        ).digest()
        if not hmac.compare_digest(digest, expected):
            raise KeyStoreError("keystore password was incorrect (integrity check failed)")
    keys = tuple(
        PrivateKeyEntry(alias, _recover_key(alias, protected, password), chain)
        for alias, protected, chain in protected_keys
    )
    return JavaKeyStore(keys, tuple(trusted))


def _recover_key(alias: str, protected: bytes, password: str | None) -> bytes:
    """``KeyProtector#recover``: the PKCS#8 key inside an ``EncryptedPrivateKeyInfo``."""
    oid, encrypted = _encrypted_private_key_info(protected)
    if oid != _KEY_PROTECTOR_OID:
        raise KeyStoreError(f"{alias}: key protected with {oid}, not JKS's key protector")
    if len(encrypted) < 2 * _SHA1_LEN:
        raise KeyStoreError(f"{alias}: protected key too short")
    salt, body, check = (
        encrypted[:_SHA1_LEN],
        encrypted[_SHA1_LEN:-_SHA1_LEN],
        encrypted[-_SHA1_LEN:],
    )
    pw = _password_bytes(password or "")
    stream = bytearray()
    digest = salt
    while len(stream) < len(body):
        digest = hashlib.sha1(pw + digest).digest()
        stream += digest
    plain = bytes(a ^ b for a, b in zip(body, stream, strict=False))
    if not hmac.compare_digest(hashlib.sha1(pw + plain).digest(), check):
        raise KeyStoreError(f"{alias}: cannot recover the key (wrong keyStore.password?)")
    return plain


# -- minimal DER ---------------------------------------------------------------------------


def _der(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise KeyStoreError("truncated DER")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > len(data):
            raise KeyStoreError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    if pos + length > len(data):
        raise KeyStoreError("truncated DER")
    return tag, pos, pos + length


def _oid(content: bytes) -> str:
    if not content:
        raise KeyStoreError("empty OID")
    parts = [content[0] // 40, content[0] % 40]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(map(str, parts))


def _encrypted_private_key_info(data: bytes) -> tuple[str, bytes]:
    """``SEQUENCE { SEQUENCE { OID, params }, OCTET STRING }`` -> (OID, the octets)."""
    tag, start, _ = _der(data, 0)
    if tag != 0x30:
        raise KeyStoreError("protected key is not a DER SEQUENCE")
    tag, alg_start, alg_end = _der(data, start)
    if tag != 0x30:
        raise KeyStoreError("protected key has no AlgorithmIdentifier")
    tag, oid_start, oid_end = _der(data, alg_start)
    if tag != 0x06:
        raise KeyStoreError("protected key has no algorithm OID")
    tag, octets_start, octets_end = _der(data, alg_end)
    if tag != 0x04:
        raise KeyStoreError("protected key has no OCTET STRING")
    return _oid(data[oid_start:oid_end]), data[octets_start:octets_end]


# -- PEM -------------------------------------------------------------------------------------


def pem(kind: str, der: bytes) -> str:
    body = base64.encodebytes(der).decode("ascii").replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n"


def key_store_pem(store: JavaKeyStore) -> str:
    """The first private key and its chain as one PEM text (``load_cert_chain``'s)."""
    if not store.keys:
        raise KeyStoreError("the key store holds no private key entry")
    entry = store.keys[0]
    if not entry.chain:
        raise KeyStoreError(f"{entry.alias}: the private key has no certificate")
    return pem("PRIVATE KEY", entry.pkcs8) + "".join(pem("CERTIFICATE", c) for c in entry.chain)


def trust_store_pem(store: JavaKeyStore) -> str:
    """The trusted certificates as PEM text (``load_verify_locations(cadata=...)``)."""
    if not store.trusted:
        raise KeyStoreError("the trust store holds no trusted certificate entry")
    return "".join(pem("CERTIFICATE", c) for c in store.trusted)
