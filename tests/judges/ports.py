"""Free loopback ports for servers that a judge's harness numbers itself."""

from __future__ import annotations

import socket

from tests.interop.zkserver import _PORT_RNG, LOOPBACK, _ephemeral_range


def free_port_block(span: int, host: str = LOOPBACK, attempts: int = 200) -> int:
    """A base port b such that b .. b+span-1 were all free on ``host`` a moment ago.

    For harnesses that derive every port from one offset (kazoo: ``offset + 10*i + k``).
    Chosen below the kernel's ephemeral range, as :func:`tests.interop.zkserver.free_ports`.
    """
    low, _ = _ephemeral_range()
    top = max(low - span - 1, 11000)
    for _ in range(attempts):
        base = _PORT_RNG.randrange(10000, top)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + span):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((host, port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError(f"no block of {span} free ports on {host} after {attempts} tries")
