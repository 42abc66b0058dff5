"""Shared helpers of the quorum TLS tests: configs with certificates, log checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.interop.zkserver import free_ports
from tests.tls.certs import Pki
from zkquorum.config.zoocfg import QuorumConfig
from zkquorum.runtime.files import load_config


def configs(
    tmp_path: Path,
    pki: Pki | None,
    keystores: Mapping[int, str | None],
    *,
    sids: Sequence[int] = (1, 2, 3),
    tick_ms: int = 100,
    extra: Mapping[int, Mapping[str, str]] | None = None,
    common: Mapping[str, str] | None = None,
) -> dict[int, QuorumConfig]:
    """zoo.cfg (and myid) for each sid of ``keystores`` (``None``: no TLS for that one);
    every server on 127.0.0.1 with free ports."""
    ports = free_ports(3 * len(sids))
    lines = [
        f"server.{sid}=127.0.0.1:{ports[3 * i]}:{ports[3 * i + 1]}" for i, sid in enumerate(sids)
    ]
    out = {}
    for i, sid in enumerate(sids):
        if sid not in keystores:
            continue
        d = tmp_path / f"peer{sid}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "myid").write_text(str(sid))
        keys: dict[str, str] = {
            "tickTime": str(tick_ms),
            "initLimit": "10",
            "syncLimit": "5",
            "dataDir": str(d),
            "clientPort": str(ports[3 * i + 2]),
            "clientPortAddress": "127.0.0.1",
            "4lw.commands.whitelist": "*",
        }
        name = keystores[sid]
        if name is not None:
            assert pki is not None
            keys.update(pki.settings(name))
        keys.update(common or {})
        keys.update((extra or {}).get(sid, {}))
        text = "".join(f"{k}={v}\n" for k, v in keys.items()) + "\n".join(lines) + "\n"
        (d / "zoo.cfg").write_text(text)
        out[sid] = load_config(d / "zoo.cfg")
    return out


# Why each bad certificate is refused, as logged by the side that refuses it (server side:
# the acceptor; client side: the dialler).  One of them must show up.
REASONS: dict[str, tuple[str, ...]] = {
    "wrong-ca": (
        "unknown ca",
        "unable to get local issuer certificate",
        "self-signed certificate in certificate chain",
    ),
    "expired": ("certificate expired", "certificate has expired"),
    "wrong-host": (
        "is not valid for 127.0.0.1",
        "IP address mismatch",
        "is valid for no host of any server line",
    ),
}
