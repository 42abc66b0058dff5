"""A service that works only while it leads, and fences every write with its epoch.

Three parts, one file:

* ``store``: a toy key-value store on TCP.  Every write carries a fencing token; the store
  remembers the highest token it has seen and rejects lower ones (``STALE``).  That is
  what makes a deposed leader harmless: it may still believe it leads for a moment (a
  pause, a partition), but its writes now bounce.
* ``serve CONFIG``: one zkquorum peer (:class:`zkquorum.QuorumPeer`) plus a worker that
  runs only while this peer is the established leader, writing with
  ``peer.fencing_token``.  A write that comes back ``STALE`` stops the worker at once.
* ``demo``: everything in one process, on free loopback ports in a temporary directory:
  the store, three peers, a failover (the leader steps down), and a write from the old
  leader with its old token, which the store refuses.

Run (from the repository root, with zkquorum installed)::

    python examples/leader_service.py store &                     # 127.0.0.1:22390
    python examples/leader_service.py serve examples/cluster/zoo1.cfg &
    python examples/leader_service.py serve examples/cluster/zoo2.cfg &
    python examples/leader_service.py serve examples/cluster/zoo3.cfg &
    # kill the leader (kill -9, or kill -STOP) and watch another take over with a higher
    # token; kill -CONT the stopped one: its next write is refused, it stops working.

    python examples/leader_service.py demo                        # all of it, in one go
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
from pathlib import Path

from zkquorum import Leadership, QuorumPeer

log = logging.getLogger("leader_service")

STORE = ("127.0.0.1", 22390)


# ----------------------------------------------------------------------------- the store


class FencedStore:
    """Writes carry a token; a token lower than the highest seen is refused."""

    def __init__(self) -> None:
        self.highest = 0
        self.data: dict[str, str] = {}

    def write(self, token: int, key: str, value: str) -> str:
        if token < self.highest:
            log.warning(
                "store: refused %s=%s with stale token %d (< %d)", key, value, token, self.highest
            )
            return f"STALE {self.highest}"
        self.highest = token
        self.data[key] = value
        log.info("store: %s=%s (token %d)", key, value, token)
        return "OK"

    async def serve(self, host: str, port: int) -> asyncio.Server:
        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.closing(writer):
                while line := await reader.readline():
                    # WRITE <token> <key> <value...>
                    parts = line.decode().split(maxsplit=3)
                    if len(parts) == 4 and parts[0] == "WRITE" and parts[1].isdigit():
                        answer = self.write(int(parts[1]), parts[2], parts[3].rstrip("\n"))
                    else:
                        answer = "ERROR expected: WRITE <token> <key> <value>"
                    writer.write(answer.encode() + b"\n")
                    await writer.drain()

        return await asyncio.start_server(client, host, port, reuse_address=True)


async def store_write(addr: tuple[str, int], token: int, key: str, value: str) -> str:
    reader, writer = await asyncio.open_connection(*addr)
    with contextlib.closing(writer):
        writer.write(f"WRITE {token} {key} {value}\n".encode())
        await writer.drain()
        return (await reader.readline()).decode().strip()


# ---------------------------------------------------------------------------- the service


async def work(peer: QuorumPeer, token: int, store: tuple[str, int], interval: float) -> None:
    """The leader's job: one write per ``interval``, each fenced with ``token``."""
    n = 0
    while True:
        n += 1
        answer = await store_write(store, token, "owner", f"peer{peer.my_id}#{n}")
        if answer != "OK":
            log.warning(
                "peer %d: store says %s: a newer leader exists; stopping work", peer.my_id, answer
            )
            return
        await asyncio.sleep(interval)


async def run_service(peer: QuorumPeer, store: tuple[str, int], interval: float) -> None:
    """Work while established leader; stop the moment that ends."""
    worker: asyncio.Task[None] | None = None
    try:
        async for state in peer.changes():
            log.info("peer %d: %s", peer.my_id, describe(state))
            if state.is_leader and worker is None:
                assert state.fencing_token is not None
                worker = asyncio.create_task(work(peer, state.fencing_token, store, interval))
            elif not state.is_leader and worker is not None:
                worker.cancel()
                worker = None
    finally:
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker


def describe(s: Leadership) -> str:
    done = "established" if s.established else "syncing"
    if s.role.name == "LOOKING":
        return "LOOKING"
    return f"{s.role.name} leader={s.leader} epoch={s.epoch} ({done}) token={s.fencing_token}"


async def serve(config: str, store: tuple[str, int], interval: float) -> None:
    async with QuorumPeer(config) as peer:
        await run_service(peer, store, interval)


# ------------------------------------------------------------------------------- the demo


async def demo(interval: float) -> int:
    import socket

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    with tempfile.TemporaryDirectory(prefix="zkquorum-demo-") as tmp:
        fenced = FencedStore()
        server = await fenced.serve("127.0.0.1", 0)
        store = server.sockets[0].getsockname()[:2]
        lines = [f"server.{i}=127.0.0.1:{free_port()}:{free_port()}" for i in (1, 2, 3)]
        peers = []
        for i in (1, 2, 3):
            d = Path(tmp, f"data{i}")
            d.mkdir()
            (d / "myid").write_text(str(i))
            cfg = Path(tmp, f"zoo{i}.cfg")
            cfg.write_text(
                f"tickTime=100\ninitLimit=10\nsyncLimit=5\ndataDir={d}\n" + "\n".join(lines) + "\n"
            )
            peers.append(QuorumPeer(cfg))
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(server.wait_closed)
            stack.callback(server.close)
            for p in peers:
                await stack.enter_async_context(p)
                services = asyncio.create_task(run_service(p, store, interval))
                stack.push_async_callback(cancel, services)
            first = await any_leader(peers, above=0)
            old_token = first.fencing_token
            await asyncio.sleep(4 * interval)
            log.info("demo: leader %d steps down (as if it had failed)", first.my_id)
            first.step_down("demo: simulated failure")
            second = await any_leader(peers, above=old_token or 0)
            await asyncio.sleep(4 * interval)
            assert old_token is not None
            log.info("demo: a zombie write from the old leader, with its old token %d", old_token)
            answer = await store_write(store, old_token, "owner", "zombie")
            ok = answer.startswith("STALE") and fenced.highest == second.fencing_token
            print(
                f"old leader {first.my_id} (token {old_token}) -> new leader {second.my_id} "
                f"(token {second.fencing_token}); zombie write: {answer}; "
                f"store: {fenced.data}"
            )
            return 0 if ok else 1
    return 1


async def cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def any_leader(peers: list[QuorumPeer], above: int) -> QuorumPeer:
    """The first peer to be established leader with a token above ``above``."""

    def newer(s: Leadership) -> bool:
        return s.is_leader and (s.fencing_token or 0) > above

    waits = {asyncio.ensure_future(p.wait_for(newer, 20)): p for p in peers}
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
    return waits[done.pop()]


# ------------------------------------------------------------------------------- the CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_store = sub.add_parser("store", help="run the toy fenced store")
    p_store.add_argument("--port", type=int, default=STORE[1])
    p_serve = sub.add_parser("serve", help="run one peer that works while it leads")
    p_serve.add_argument("config")
    p_serve.add_argument("--store", default=f"{STORE[0]}:{STORE[1]}", help="host:port")
    p_demo = sub.add_parser("demo", help="store + 3 peers + a failover, in one process")
    for p in (p_serve, p_demo):
        p.add_argument("--interval", type=float, default=0.5, help="seconds between writes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("zkquorum").setLevel(logging.WARNING)
    try:
        if args.cmd == "store":
            return asyncio.run(run_store(args.port))
        if args.cmd == "serve":
            host, _, port = args.store.rpartition(":")
            asyncio.run(serve(args.config, (host, int(port)), args.interval))
            return 0
        return asyncio.run(demo(args.interval))
    except KeyboardInterrupt:
        return 130


async def run_store(port: int) -> int:
    server = await FencedStore().serve(STORE[0], port)
    async with server:
        log.info("store listening on %s:%d", STORE[0], port)
        await server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
