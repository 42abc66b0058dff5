"""``zkquorum run`` with a debug hook: on SIGUSR1 the peer writes its asyncio task count.

The chaos tests start peers as ``python tests/chaos/peerproc.py run zoo.cfg --events F``
instead of ``python -m zkquorum run ...``: the same CLI, plus a SIGUSR1 handler (installed
on the peer's loop when the peer starts) that writes ``{"t", "tasks", "names"}`` as JSON
to ``$ZKQ_CHAOS_TASKS_FILE`` (write then rename: a reader never sees half a file).  The
peer itself offers no task count (see the report: ``zk_zkquorum_tasks`` in ``mntr``).
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

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
