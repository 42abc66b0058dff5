"""zkquorum.runtime.tls without a network: settings, contexts, names, reload."""

from __future__ import annotations

import os
import shutil
import ssl
from pathlib import Path

import pytest

from tests.tls.certs import Pki
from tests.tls.helpers import configs
from zkquorum.runtime.tls import (
    DEFAULT_CIPHER_SUITES,
    QuorumTls,
    TlsConfigError,
    build_contexts,
    certificate_names,
    host_matches,
    openssl_cipher_name,
    settings_from_config,
)


def _settings(tmp_path: Path, pki: Pki, name: str = "good", **extra: str):  # type: ignore[no-untyped-def]
    cfg = configs(tmp_path, pki, {1: name}, sids=(1, 2), extra={1: extra})[1]
    return settings_from_config(cfg)


def test_off_by_default(tmp_path: Path) -> None:
    cfg = configs(tmp_path, None, {1: None}, sids=(1, 2))[1]
    assert settings_from_config(cfg) is None
    assert QuorumTls.for_config(cfg) is None


def test_defaults_are_zookeepers(tmp_path: Path, pki: Pki) -> None:
    s = _settings(tmp_path, pki)
    assert s is not None
    assert s.ssl_quorum and not s.port_unification and not s.reload
    assert s.protocols == ("TLSv1.2",)
    assert s.cipher_suites == DEFAULT_CIPHER_SUITES
    assert s.client_auth == "NEED"
    assert s.hostname_verification is True
    assert s.handshake_timeout == 5.0
    server, client = build_contexts(s)
    assert server.verify_mode == ssl.CERT_REQUIRED  # client authentication required
    assert client.verify_mode == ssl.CERT_REQUIRED and client.check_hostname
    for ctx in (server, client):
        assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_2
        names = {c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"}
        assert names == {openssl_cipher_name(n) for n in DEFAULT_CIPHER_SUITES}


@pytest.mark.parametrize(
    ("iana", "openssl"),
    [
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
        ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384"),
        ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"),
        ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"),
        ("TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"),
        ("TLS_AES_128_GCM_SHA256", None),
        ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    ],
)
def test_cipher_names(iana: str, openssl: str | None) -> None:
    assert openssl_cipher_name(iana) == openssl


def test_keys_from_zoo_cfg(tmp_path: Path, pki: Pki) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    s = _settings(
        tmp_path,
        pki,
        "encrypted",
        **{
            "ssl.quorum.keyStore.password": "wrong",
            "ssl.quorum.keyStore.passwordPath": str(pw),  # the file wins, as in X509Util
            "ssl.quorum.enabledProtocols": "TLSv1.2,TLSv1.3",
            "ssl.quorum.ciphersuites": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "ssl.quorum.clientAuth": "want",
            "ssl.quorum.hostnameVerification": "False",
            "ssl.quorum.handshakeDetectionTimeoutMillis": "250",
            "portUnification": "true",
            "sslQuorumReloadCertFiles": "true",
        },
    )
    assert s is not None
    assert s.key_store_password == "secret"
    assert s.protocols == ("TLSv1.2", "TLSv1.3")
    assert s.client_auth == "WANT" and not s.hostname_verification
    assert s.handshake_timeout == 0.25 and s.port_unification and s.reload
    server, client = build_contexts(s)  # the encrypted key opens with the password
    assert server.verify_mode == ssl.CERT_OPTIONAL and not client.check_hostname
    assert server.maximum_version == ssl.TLSVersion.TLSv1_3
    assert [c["name"] for c in server.get_ciphers() if c["protocol"] == "TLSv1.2"] == [
        "ECDHE-ECDSA-AES128-GCM-SHA256"
    ]


def test_handshake_timeout_zero_is_the_default(tmp_path: Path, pki: Pki) -> None:
    s = _settings(tmp_path, pki, **{"ssl.quorum.handshakeDetectionTimeoutMillis": "0"})
    assert s is not None and s.handshake_timeout == 5.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ssl.quorum.keyStore.type": "BCFKS"}, "only PEM and JKS stores"),
        ({"ssl.quorum.trustStore.type": "PKCS12"}, "only PEM and JKS stores"),
        ({"ssl.quorum.keyStore.location": ""}, "need ssl.quorum.keyStore.location"),
        ({"ssl.quorum.clientAuth": "MAYBE"}, "NEED, WANT or NONE"),
        ({"ssl.quorum.crl": "true"}, "not supported"),
        ({"ssl.quorum.protocol": "SSLv3"}, "unknown TLS protocol"),
    ],
)
def test_bad_settings(tmp_path: Path, pki: Pki, extra: dict[str, str], message: str) -> None:
    with pytest.raises(TlsConfigError, match=message):
        _settings(tmp_path, pki, **extra)


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("encrypted", {"ssl.quorum.keyStore.password": ""}, "keyStore.password"),  # no prompt
        ("encrypted", {"ssl.quorum.keyStore.password": "nope"}, "keyStore.password"),
        ("good", {"ssl.quorum.keyStore.location": "/nonexistent.pem"}, "no such file"),
        ("good", {"ssl.quorum.trustStore.location": "/nonexistent.pem"}, "no such file"),
        ("good", {"ssl.quorum.ciphersuites": "TLS_NULL_WITH_NULL_NULL"}, "none usable"),
    ],
)
def test_unusable_stores(
    tmp_path: Path, pki: Pki, name: str, extra: dict[str, str], message: str
) -> None:
    s = _settings(tmp_path, pki, name, **extra)
    assert s is not None
    with pytest.raises(TlsConfigError, match=message):
        build_contexts(s)


CERT = {
    "subject": ((("commonName", "node1"),),),
    "subjectAltName": (("DNS", "*.zk.example"), ("IP Address", "2001:DB8:0:0:0:0:0:1\n")),
}


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("a.zk.example", True),
        ("A.ZK.example.", True),
        ("a.b.zk.example", False),  # a wildcard covers one label
        ("zk.example", False),
        ("2001:db8::1", True),
        ("2001:db8::2", False),
        ("node1", False),  # the CN does not count when there is a DNS SAN
        ("localhost", False),  # never reverse DNS
    ],
)
def test_host_matches(host: str, ok: bool) -> None:
    assert host_matches(CERT, host) is ok


def test_cn_counts_without_dns_san() -> None:
    cert = {"subject": ((("commonName", "zk1.example"),),)}
    assert certificate_names(cert) == (["zk1.example"], [])
    assert host_matches(cert, "zk1.example")
    assert not host_matches(cert, "127.0.0.1")  # never an IP from the CN


def _serial(ctx: ssl.SSLContext) -> object:
    return ctx.get_ca_certs()[0]["serialNumber"]


def test_reload_picks_up_new_files(tmp_path: Path, pki: Pki) -> None:
    ks = tmp_path / "ks.pem"
    ts = tmp_path / "ts.pem"
    shutil.copy(pki.keystore("good"), ks)
    shutil.copy(pki.truststore, ts)
    extra = {
        "ssl.quorum.keyStore.location": str(ks),
        "ssl.quorum.trustStore.location": str(ts),
    }
    fixed = QuorumTls(_settings(tmp_path / "a", pki, **extra))  # type: ignore[arg-type]
    s = _settings(tmp_path / "b", pki, sslQuorumReloadCertFiles="true", **extra)
    tls = QuorumTls(s)  # type: ignore[arg-type]
    first_server, first_client = tls.server_context(), tls.client_context()
    assert tls.server_context() is first_server  # unchanged files: same context
    # A new trust store (another CA) and key store land: picked up, no restart.
    ts.write_text((pki.root / "otherca.pem").read_text())
    shutil.copy(pki.keystore("wrong-ca"), ks)
    os.utime(ts, ns=(1, 1))  # a different mtime even within the clock's resolution
    assert tls.server_context() is not first_server
    assert tls.client_context() is not first_client
    assert _serial(tls.client_context()) != _serial(first_client)
    assert tls.counters.context_reloads == 1
    assert fixed.client_context() is fixed.client_context()  # without the flag: never
    assert fixed.counters.context_reloads == 0
    # A half-written file: the old contexts stay, and the next look tries again.
    current = tls.server_context()
    ks.write_text("-----BEGIN PRIVATE KEY-----\n")
    assert tls.server_context() is current
    shutil.copy(pki.keystore("good"), ks)
    os.utime(ks, ns=(2, 2))
    assert tls.server_context() is not current
    assert tls.counters.context_reloads == 2
