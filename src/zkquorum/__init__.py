"""zkquorum: Apache ZooKeeper 3.8's quorum peer in pure Python.

Layers, with imports pointing down only::

    cli -> api -> runtime -> core -> wire -> config
                          sim -> core

``config``, ``wire``, ``core`` and ``sim`` are pure: no sockets, no clocks, no files.

The library API (:mod:`zkquorum.api`) is importable from here; it is loaded on first use,
so ``import zkquorum`` stays cheap::

    from zkquorum import QuorumPeer
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from zkquorum.api import (
        BlockingQuorumPeer,
        Leadership,
        PeerClosed,
        QuorumPeer,
        ServerState,
        Subscription,
    )

__all__ = [
    "BlockingQuorumPeer",
    "Leadership",
    "PeerClosed",
    "QuorumPeer",
    "ServerState",
    "Subscription",
    "__version__",
]

_LAZY = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module("zkquorum.api"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zkquorum' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
