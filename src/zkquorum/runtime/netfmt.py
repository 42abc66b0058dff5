"""How the runtime names a socket address and a network error in its logs."""

from __future__ import annotations

import os


def format_peer(peer: object) -> str:
    """``host:port`` of a socket address tuple (IPv6 in brackets), ``?`` otherwise."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return "?"


def describe_error(exc: BaseException) -> str:
    """A short reason for a failed connect or read: "Connection refused", "timed out"..."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's strerror: "Connect call failed (...)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
