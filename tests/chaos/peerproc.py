"""``zkquorum run`` with test hooks: a SIGUSR1 task-count dump, and dials redirected.

The chaos tests start peers as ``python tests/chaos/peerproc.py run zoo.cfg --events F``
instead of ``python -m zkquorum run ...``: the same CLI, plus a SIGUSR1 handler (installed
on the peer's loop when the peer starts) that writes ``{"t", "tasks", "names"}`` as JSON
to ``$ZKQ_CHAOS_TASKS_FILE`` (write then rename: a reader never sees half a file).  The
peer itself offers no task count (see the report: ``zk_zkquorum_tasks`` in ``mntr``).

``$ZKQ_CHAOS_DIAL`` (JSON, ``{"<port>": <port>}``): an outgoing connection of the peer to
``127.0.0.1:<port>`` goes to the other port instead (what a DNAT rule would do).  The
chaos harness uses it when every peer must share one configuration (dynamic reconfig:
the committed config text is the same on every server), yet each peer's connections to
another must pass through that pair's listener of the fault proxy: the config names the
peers' real ports, and the redirection sends them through the proxy.  Only
``asyncio.open_connection`` is wrapped, which every quorum and election dial uses.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import signal
import sys
import time
from typing import Any

from zkquorum.cli.main import main
from zkquorum.runtime import peer as peer_module

_original_start = peer_module.PeerRuntime.start


def _dump() -> None:
    path = os.environ.get("ZKQ_CHAOS_TASKS_FILE")
    if not path:
        return
    tasks = asyncio.all_tasks()
    names = collections.Counter(re.sub(r"[-_]?\d+$", "", t.get_name()) for t in tasks)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"t": time.time(), "tasks": len(tasks), "names": dict(names)}, f)
    os.replace(tmp, path)


async def _start(self: peer_module.PeerRuntime) -> None:
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump)
    await _original_start(self)


peer_module.PeerRuntime.start = _start  # type: ignore[method-assign]

_REDIRECT = {int(k): int(v) for k, v in json.loads(os.environ.get("ZKQ_CHAOS_DIAL", "{}")).items()}
if _REDIRECT:
    _open_connection = asyncio.open_connection

    async def _redirected(host: Any = None, port: Any = None, **kwargs: Any) -> Any:
        if host == "127.0.0.1" and port in _REDIRECT:
            port = _REDIRECT[port]
        return await _open_connection(host, port, **kwargs)

    asyncio.open_connection = _redirected

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
