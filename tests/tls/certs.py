"""Test certificates, made at test time with the ``openssl`` command (never committed).

:func:`make_pki` writes, under one directory: a CA (``truststore.pem``), and for each name a
key store ``<name>-keystore.pem`` as ZooKeeper 3.8's PEM key store wants it: the PKCS#8
key, then the leaf certificate, then the CA's.  Leaf certificates are valid for both TLS
server and client use.  The bad ones: ``wrong-ca`` (another CA), ``expired`` (notAfter in
the past), ``wrong-host`` (IP 127.0.0.2 and ``wrong.example``, never 127.0.0.1 nor
``localhost``, so that even Java's reverse-DNS fallback refuses it), and ``encrypted`` (the
good certificate with a key encrypted as Java 17 can read it, password ``secret``).
EC P-256 keys: quick to make, and Java reads them.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

PASSWORD = "secret"


def require_openssl() -> str:
    exe = shutil.which("openssl")
    if exe is None:
        pytest.skip("the openssl command is missing (Debian package openssl)")
    return exe


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclasses.dataclass(frozen=True)
class Pki:
    root: Path

    @property
    def truststore(self) -> Path:
        return self.root / "truststore.pem"

    def keystore(self, name: str) -> Path:
        return self.root / f"{name}-keystore.pem"

    def settings(self, name: str = "good", **extra: str) -> dict[str, str]:
        """zoo.cfg keys for a server using key store ``name``."""
        out = {
            "sslQuorum": "true",
            "ssl.quorum.keyStore.location": str(self.keystore(name)),
            "ssl.quorum.keyStore.type": "PEM",
            "ssl.quorum.trustStore.location": str(self.truststore),
            "ssl.quorum.trustStore.type": "PEM",
        }
        if name == "encrypted":
            out["ssl.quorum.keyStore.password"] = PASSWORD
        out.update(extra)
        return out


def _ca(root: Path, name: str) -> None:
    _run(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN=zkquorum test {name}",
        "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=root,
    )  # fmt: skip


def _leaf(root: Path, name: str, ca: str, san: str, days: int) -> None:
    ext = root / f"{name}.ext"
    ext.write_text(
        f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )
    _run(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=root,
    )  # fmt: skip
    _run(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", str(days), "-extfile", ext.name, "-out", f"{name}.crt",
        cwd=root,
    )  # fmt: skip


def _keystore(root: Path, name: str, key: str, ca: str) -> None:
    parts = [(root / key).read_text(), (root / f"{name}.crt").read_text()]
    parts.append((root / f"{ca}.pem").read_text())
    (root / f"{name}-keystore.pem").write_text("".join(parts))


def make_pki(root: Path) -> Pki:
    """Every certificate of the module docstring, under ``root``."""
    require_openssl()
    root.mkdir(parents=True, exist_ok=True)
    _ca(root, "ca")
    _ca(root, "otherca")
    (root / "truststore.pem").write_text((root / "ca.pem").read_text())
    good_san = "IP:127.0.0.1,DNS:zk.test"
    for name, ca, san, days in (
        ("good", "ca", good_san, 30),
        ("good2", "ca", good_san, 30),
        ("wrong-ca", "otherca", good_san, 30),
        ("expired", "ca", good_san, -1),
        ("wrong-host", "ca", "IP:127.0.0.2,DNS:wrong.example", 30),
        *((f"s{sid}", "ca", good_san, 30) for sid in range(1, 6)),  # one per server
    ):
        _leaf(root, name, ca, san, days)
        _keystore(root, name, f"{name}.key", ca)
    _run(
        "pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", "good.key", "-out", "encrypted.key",
        "-passout", f"pass:{PASSWORD}",
        cwd=root,
    )  # fmt: skip
    (root / "encrypted.crt").write_text((root / "good.crt").read_text())
    _keystore(root, "encrypted", "encrypted.key", "ca")
    return Pki(root)
