"""One PySyncObj node for bench/election.py (runs in the bench's own venv).

    pso_node.py SELF PARTNER... [--tuned]

Prints one JSON line ``{"t": wall seconds, "leader": "host:port" | null}`` whenever the
node's view of the leader changes, from PySyncObj's own tick thread (no extra polling).
"""

from __future__ import annotations

import json
import sys
import time

from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.batteries import ReplCounter


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    tuned = "--tuned" in sys.argv
    self_addr, partners = args[0], args[1:]
    if tuned:  # etcd's 10 ms / 50 ms regime (peer-reference.md, variant B)
        conf = SyncObjConf(
            appendEntriesPeriod=0.01,
            raftMinTimeout=0.05,
            raftMaxTimeout=0.1,
            autoTickPeriod=0.005,
            connectionTimeout=3600,
        )
    else:
        conf = SyncObjConf()
    counter = ReplCounter()
    last: list[object] = [object()]
    node: list[SyncObj] = []

    def on_tick() -> None:
        if not node:
            return
        leader = node[0]._getLeader()
        text = None if leader is None else str(getattr(leader, "address", leader))
        if text != last[0]:
            last[0] = text
            sys.stdout.write(json.dumps({"t": time.time(), "leader": text}) + "\n")
            sys.stdout.flush()

    obj = SyncObj(self_addr, partners, conf=conf, consumers=[counter])
    node.append(obj)
    obj.addOnTickCallback(on_tick)
    print(json.dumps({"t": time.time(), "ready": self_addr}), flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
