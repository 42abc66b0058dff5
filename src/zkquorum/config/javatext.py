"""Java's text rules that ZooKeeper's parsers inherit, shared by config and wire.

``Integer.parseInt``/``Long.parseLong`` accept an optional sign and ASCII digits only (no
blanks, no underscores, unlike Python's ``int``); ``String#split`` drops trailing empty
strings.  A wildcard host is an unspecified IP literal (3.8 asks DNS; we never do here).
"""

from __future__ import annotations

import ipaddress
import re

_JAVA_INT = re.compile(r"[+-]?[0-9]+\Z")


def java_int(text: str, bits: int = 32) -> int | None:
    """``Integer.parseInt`` (``bits=32``) / ``Long.parseLong`` (64): value or ``None``."""
    if not _JAVA_INT.match(text):
        return None
    value = int(text)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return value if lo <= value <= hi else None


def java_split(text: str, sep: str) -> list[str]:
    """``String#split`` on a literal separator: trailing empty strings are dropped."""
    if sep not in text:
        return [text]
    parts = text.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def is_wildcard_host(host: str) -> bool:
    """0.0.0.0, :: and the like (IP literals only; a scope id is ignored)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_unspecified
    except ValueError:
        return False
