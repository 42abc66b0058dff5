"""``zkquorum cluster``: a local ensemble of real ``zkquorum run`` processes, watched live.

With no arguments: 5 peers on 127.0.0.1 from a generated zoo.cfg in a temporary directory
(free ports), each a real process; it prints who proposes whom, each decision, the leader
and its epoch, the establishment on the quorum port and each phase's time, then a summary.
``--kill-leader``/``--stop-leader`` add a fault after the establishment (``--rounds K``
times, with a table of medians); ``--trace FILE.svg`` draws the whole run as a sequence
diagram.  Ctrl-C ends every process it started (by pid) and exits 130.

A client (:mod:`zkquorum.runtime.zkclient`) takes part unless ``--no-client``: once the
leader is established it opens a session on the leader, creates a znode and an ephemeral
and sets a watch; after each fault it shows its session moving to another peer and a
write of its own firing the watch, the ephemeral still there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from zkquorum.cli.main import CliError
from zkquorum.config.model import HostPort
from zkquorum.runtime.admin import query_all
from zkquorum.runtime.cluster import LOOPBACK, LocalCluster
from zkquorum.runtime.zkclient import EPHEMERAL, Client, ClientError
from zkquorum.tools.events import Event, Narrator, Outcome, dump_lines, median, outcome
from zkquorum.tools.trace import render_svg

_MARKER = ".zkquorum-cluster"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "cluster",
        help="run a local ensemble of zkquorum peers on loopback and watch it elect",
        description="Start N zkquorum peers (real processes) on 127.0.0.1 and show the "
        "election as it happens: proposals, decisions, the leader and its epoch, the "
        "quorum-port establishment and each phase's time.",
    )
    p.add_argument("--size", type=int, default=5, metavar="N", help="voting peers (default 5)")
    p.add_argument(
        "--observers", type=int, default=0, metavar="M", help="observers besides (default 0)"
    )
    p.add_argument(
        "--dir",
        metavar="D",
        help="keep configs, data, logs and events in D (default: a temporary directory, "
        "removed at the end)",
    )
    fault = p.add_mutually_exclusive_group()
    fault.add_argument(
        "--kill-leader",
        action="store_true",
        help="after establishment, SIGKILL the leader and show the re-election",
    )
    fault.add_argument(
        "--stop-leader",
        action="store_true",
        help="after establishment, SIGSTOP the leader (a hung leader: noticed after "
        "syncLimit x tickTime); SIGCONT it at the end",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="K",
        help="repeat the fault K times (the faulted peer rejoins in between) and print a "
        "table of medians",
    )
    p.add_argument("--trace", metavar="FILE.svg", help="draw the run as a sequence diagram")
    p.add_argument(
        "--no-client",
        action="store_true",
        help="no client session (by default one writes and watches a znode throughout)",
    )
    p.add_argument(
        "--tick-time", type=int, default=2000, metavar="MS", help="tickTime (default 2000)"
    )
    p.add_argument("--sync-limit", type=int, default=5, metavar="TICKS", help="default 5")
    p.add_argument("--init-limit", type=int, default=10, metavar="TICKS", help="default 10")
    p.add_argument(
        "--no-shortcut",
        action="store_true",
        help="peers decide exactly as ZooKeeper 3.8 (always wait finalizeWait, 200 ms)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="give up a phase after S seconds (default: 30 s, more for large clusters)",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="print every notification sent/received"
    )
    p.set_defaults(func=run)


# ---------------------------------------------------------------- the watcher


class Failure(Exception):
    """The run cannot go on: printed as the reason, exit status 1."""


class _Interrupted(Exception):
    pass


@dataclasses.dataclass
class _Watch:
    """Prints the narration and progress while waiting for conditions on the events."""

    cluster: LocalCluster
    narrator: Narrator
    out: TextIO
    events: list[Event] = dataclasses.field(default_factory=list)
    _progress_shown: bool = False
    _last_output: float = 0.0

    def say(self, line: str = "") -> None:
        self._clear_progress()
        print(line, file=self.out, flush=True)
        self._last_output = time.monotonic()

    def _clear_progress(self) -> None:
        if self._progress_shown:
            self.out.write("\r\033[K")
            self._progress_shown = False

    def _progress(self, what: str, waited: float, note: str) -> None:
        text = f"  … waiting for {what}: {waited:.1f} s{note}"
        if self.out.isatty():
            self.out.write("\r\033[K" + text)
            self.out.flush()
            self._progress_shown = True
        elif time.monotonic() - self._last_output >= 2.0:
            self.say(text)

    def pump(self) -> list[Event]:
        new = self.cluster.poll_events()
        for e in new:
            self.events.append(e)
            for line in self.narrator.feed(e):
                self.say(line)
        for sid, status in self.cluster.unexpected_exits():
            tail = self.cluster.peers[sid].log_tail()
            raise Failure(
                f"peer {sid} exited unexpectedly with status {status}; the end of its log "
                f"({self.cluster.peers[sid].log_path}):\n{tail}"
            )
        return new

    def until(
        self,
        check: Callable[[], Outcome | None],
        *,
        what: str,
        timeout: float,
        note: Callable[[float], str] = lambda waited: "",
    ) -> Outcome:
        start = time.monotonic()
        self._last_output = start
        while True:
            self.pump()
            got = check()
            if got is not None:
                self._clear_progress()
                return got
            waited = time.monotonic() - start
            if waited > timeout:
                self._clear_progress()
                raise Failure(f"no {what} after {timeout:.0f} s")
            if time.monotonic() - self._last_output > 0.8:
                self._progress(what, waited, note(waited))
            time.sleep(0.02)  # the poll period of the event files


# ---------------------------------------------------------------- the command


def _check_args(args: argparse.Namespace) -> None:
    if args.size < 2:
        raise CliError("--size: a quorum needs at least 2 voting peers")
    if args.size + args.observers > 255:
        raise CliError("--size + --observers: at most 255 peers")
    if args.observers < 0:
        raise CliError("--observers: must be 0 or more")
    if args.rounds < 1:
        raise CliError("--rounds: must be 1 or more")
    if args.rounds > 1 and not (args.kill_leader or args.stop_leader):
        raise CliError("--rounds repeats a fault: add --kill-leader or --stop-leader")
    if args.tick_time <= 0 or args.sync_limit <= 0 or args.init_limit <= 0:
        raise CliError("--tick-time, --sync-limit and --init-limit must be positive")
    if args.trace and not args.trace.lower().endswith(".svg"):
        raise CliError(f"--trace {args.trace}: the file name must end in .svg")
    if args.size == 2 and (args.kill_leader or args.stop_leader):
        raise CliError("with --size 2 no quorum survives the loss of the leader: use --size 3+")


def _prepare_dir(arg: str | None) -> tuple[Path, bool]:
    """The cluster's directory and whether it is a temporary one."""
    if arg is None:
        return Path(tempfile.mkdtemp(prefix="zkquorum-cluster-")), True
    root = Path(arg)
    if root.exists() and not root.is_dir():
        raise CliError(f"--dir {arg}: not a directory")
    if root.is_dir() and any(root.iterdir()) and not (root / _MARKER).exists():
        raise CliError(f"--dir {arg}: not empty and not a zkquorum cluster directory")
    root.mkdir(parents=True, exist_ok=True)
    (root / _MARKER).write_text("written by zkquorum cluster\n")
    return root, False


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    root, temporary = _prepare_dir(args.dir)
    peer_args = ["--no-shortcut"] if args.no_shortcut else []
    cluster = LocalCluster(
        root,
        size=args.size,
        observers=args.observers,
        tick_time=args.tick_time,
        init_limit=args.init_limit,
        sync_limit=args.sync_limit,
        peer_args=peer_args,
    )
    cluster.write()
    out = sys.stdout
    total = args.size + args.observers
    timeout = args.timeout or max(30.0, 0.5 * total, args.init_limit * args.tick_time / 1000)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted()

    old_term = signal.signal(signal.SIGTERM, on_term)
    t0 = time.time()
    watch = _Watch(cluster, Narrator(t0, verbose=args.verbose), out)
    status = 1
    ok = False
    try:
        _header(watch, cluster, args, root)
        status = _main(watch, cluster, args, timeout)
        ok = status == 0
    except Failure as exc:
        watch.say(f"zkquorum cluster: FAILED: {exc}")
        status = 1
    except (KeyboardInterrupt, _Interrupted):
        watch._clear_progress()
        print("\ninterrupted: stopping every peer", file=out, flush=True)
        status = 130
    finally:
        # Nothing may interrupt the clean-up: a second Ctrl-C would leave processes behind.
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            ended = cluster.shutdown()
            with contextlib.suppress(Failure):
                watch.pump()
            print(
                f"stopped {len(ended)} peer process(es): pids "
                + (" ".join(str(p) for p in cluster.pids()) or "none"),
                file=out,
                flush=True,
            )
            (root / "events.jsonl").write_text(dump_lines(watch.events))
            if args.trace:
                _write_trace(args.trace, watch.events, cluster, t0, out)
            if temporary and ok:
                shutil.rmtree(root, ignore_errors=True)
            elif temporary:
                print(f"configs, logs and events kept in {root}", file=out, flush=True)
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)
    return status


def _header(watch: _Watch, cluster: LocalCluster, args: argparse.Namespace, root: Path) -> None:
    obs = f" and {args.observers} observer(s)" if args.observers else ""
    watch.say(
        f"zkquorum cluster: {args.size} voting peers{obs} on {LOOPBACK}, tickTime "
        f"{args.tick_time} ms, initLimit {args.init_limit}, syncLimit {args.sync_limit}"
        + (", no shortcuts (finalizeWait always)" if args.no_shortcut else "")
    )
    watch.say(f"directory {root}")
    for sid, p in cluster.peers.items():
        role = "" if p.role == "participant" else "  (observer)"
        watch.say(
            f"  peer {sid:<3} election {p.election_port:<5}  quorum {p.quorum_port:<5}  "
            f"client {p.client_port:<5}  {p.cfg_path}{role}"
        )
    watch.say()


def _main(watch: _Watch, cluster: LocalCluster, args: argparse.Namespace, timeout: float) -> int:
    voters = cluster.voters
    t_launch = time.time()
    watch.say(f"launching {len(cluster.peers)} processes ({sys.executable} -m zkquorum run …)")
    cluster.start()
    cold = watch.until(
        lambda: _done(watch.events, t_launch, voters, cluster.live()),
        what="a leader established with every peer",
        timeout=timeout,
    )
    watch.say()
    watch.say(_phase_line("cold start", cold, t_launch, "launch", "a quorum LOOKING"))
    rows: list[dict[str, float | None]] = []
    leader, epoch = cold.leader, cold.epoch
    assert leader is not None and epoch is not None
    with contextlib.ExitStack() as stack:
        demo = None if args.no_client else stack.enter_context(_DemoClient(cluster, leader))
        if demo is not None:
            watch.say()
            for line in demo.begin(timeout):
                watch.say(line)
        return _rounds(watch, cluster, args, timeout, demo, cold, t_launch, rows)
    raise AssertionError("unreachable")


def _rounds(
    watch: _Watch,
    cluster: LocalCluster,
    args: argparse.Namespace,
    timeout: float,
    demo: _DemoClient | None,
    cold: Outcome,
    t_launch: float,
    rows: list[dict[str, float | None]],
) -> int:
    leader, epoch = cold.leader, cold.epoch
    assert leader is not None and epoch is not None
    fault = "SIGKILL" if args.kill_leader else "SIGSTOP" if args.stop_leader else None
    if fault is not None:
        for r in range(1, args.rounds + 1):
            watch.say()
            watch.say(f"round {r}: {fault} the leader, peer {leader} (epoch {epoch})")
            got = _fault_round(watch, cluster, args, leader, epoch, timeout)
            rows.append(_row(got))
            watch.say()
            watch.say(_phase_line(f"round {r}", got, got.since, fault, "first survivor LOOKING"))
            if got.epoch is None or got.epoch <= epoch:
                raise Failure(f"the new epoch {got.epoch} is not above the old one {epoch}")
            old = leader
            leader, epoch = got.leader, got.epoch
            assert leader is not None and epoch is not None
            if demo is not None:
                for line in demo.after_fault(old, got.since, f"round {r}", timeout):
                    watch.say(line)
            if r < args.rounds or args.stop_leader:
                _rejoin(watch, cluster, old, leader, epoch, timeout)
    live = cluster.live()
    replies = asyncio.run(
        query_all([HostPort(LOOPBACK, cluster.peers[s].client_port) for s in live])
    )
    watch.say()
    watch.say(
        "srvr says: " + ", ".join(_srvr_text(s, r) for s, r in zip(live, replies, strict=True))
    )
    if len(rows) > 1:
        watch.say()
        for line in _table(rows):
            watch.say(line)
    watch.say()
    watch.say(
        f"SUMMARY: leader is peer {leader}, epoch {epoch}; "
        f"cold start to a leader established with a quorum in "
        f"{_ms(_sub(cold.leader_established, t_launch))}"
        + (
            f"; {len(rows)} × {fault} of the leader, median re-establishment "
            f"{median([x['total'] for x in rows if x['total'] is not None]):.0f} ms"
            if rows and all(x["total"] is not None for x in rows)
            else ""
        )
    )
    return 0


class _DemoClient:
    """One client session through the run, on a loop thread of its own (the watcher's
    loop is the main thread's)."""

    PATH = "/zkquorum-demo"

    def __init__(self, cluster: LocalCluster, leader: int) -> None:
        self.cluster = cluster
        self.sid_of = {HostPort(LOOPBACK, p.client_port): sid for sid, p in cluster.peers.items()}
        # The leader first: the fault rounds take the session's server away.
        order = sorted(cluster.peers, key=lambda sid: sid != leader)
        self.servers = [HostPort(LOOPBACK, cluster.peers[sid].client_port) for sid in order]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="demo-client")
        self.client: Client | None = None

    def __enter__(self) -> _DemoClient:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.client is not None:
                with contextlib.suppress(Exception):
                    self._run(self.client.close(), 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
            self.loop.close()

    def _run(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _where(self, client: Client) -> str:
        sid = self.sid_of.get(client.server) if client.server is not None else None
        return f"peer {sid}" if sid is not None else "no server"

    def begin(self, timeout: float) -> list[str]:
        async def go() -> list[str]:
            self.client = client = Client(self.servers, timeout_ms=10_000)
            await client.start(timeout)
            await client.create(self.PATH, b"hello")
            await client.create(f"{self.PATH}/alive", b"", EPHEMERAL)
            await client.get(self.PATH, watch=True)
            return [
                f"client: session 0x{client.session_id:x} on {self._where(client)} (the "
                f"leader): created {self.PATH} and the ephemeral {self.PATH}/alive, "
                f"watching {self.PATH}"
            ]

        return list(self._run(go(), timeout + 5))

    def after_fault(self, old: int, fault_at: float, label: str, timeout: float) -> list[str]:
        client = self.client
        assert client is not None

        async def go() -> list[str]:
            reconnects = client.reconnects
            if self.sid_of.get(client.server or HostPort("", 0)) == old:
                reconnects += 1  # not noticed yet: wait for the move
            await client.wait_connected(timeout, reconnects=reconnects)
            moved = (client.connected_at - fault_at) * 1000
            data = label.encode()
            stat = await client.set(self.PATH, data)
            event = await asyncio.wait_for(client.events.get(), timeout)
            alive = await client.exists(f"{self.PATH}/alive")
            await client.get(self.PATH, watch=True)
            return [
                f"client: session 0x{client.session_id:x} now on {self._where(client)} "
                f"({moved:.0f} ms after the fault; setWatches re-armed its watch)",
                f"client: set {self.PATH} = {label!r} (zxid 0x{stat.mzxid:x}): the watch "
                f"fired ({_event_name(event.type)} {event.path}); ephemeral "
                + ("still there" if alive else "GONE"),
            ]

        try:
            return list(self._run(go(), timeout + 5))
        except (TimeoutError, ClientError, OSError) as exc:
            raise Failure(f"the client did not carry on after the fault: {exc!r}") from exc


def _event_name(event_type: int) -> str:
    names = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged", 4: "NodeChildrenChanged"}
    return names.get(event_type, f"event {event_type}")


def _srvr_text(sid: int, reply: Any) -> str:
    zxid = "" if reply.zxid is None else f" 0x{reply.zxid:x}"
    return f"{sid}={reply.mode}{zxid}"


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _done(
    events: Sequence[Event],
    since: float,
    voters: Sequence[int],
    live: Sequence[int],
    exclude: int | None = None,
    above: int | None = None,
) -> Outcome | None:
    got = outcome(events, since, voters=voters, peers=live, exclude_leader=exclude)
    if not got.complete:
        return None
    if above is not None and (got.epoch is None or got.epoch <= above):
        return None
    return got


def _phase_line(name: str, o: Outcome, t0: float, start: str, first: str) -> str:
    began = o.quorum_looking if start == "launch" else o.first_looking
    took = f" (it logged {o.leader_took_ms} ms)" if o.leader_took_ms is not None else ""
    return "\n    ".join(
        [
            f"{name}: leader {o.leader}, epoch {o.epoch}, established "
            f"{_ms(_sub(o.leader_established, t0))} after {start} "
            f"(every live peer: {_ms(_sub(o.all_established, t0))}); phases:",
            f"{start} → {first}: {_ms(_sub(began, t0))}",
            f"election → leader decided: {_ms(_sub(o.leader_decided, began))}{took}",
            f"quorum-port handshake → leader established: "
            f"{_ms(_sub(o.leader_established, o.leader_decided))}",
            f"{o.messages} notifications sent",
        ]
    )


def _fault_round(
    watch: _Watch,
    cluster: LocalCluster,
    args: argparse.Namespace,
    leader: int,
    epoch: int,
    timeout: float,
) -> Outcome:
    t_fault = time.time()
    if args.kill_leader:
        cluster.kill(leader)

        def note(waited: float) -> str:
            return ""

        what = "a new leader established"
    else:
        cluster.stop(leader)
        limit = args.sync_limit * args.tick_time / 1000

        def note(waited: float) -> str:
            return f" (followers notice a silent leader after syncLimit × tickTime = {limit:g} s)"

        what = "the followers to notice the hung leader and elect another"
        timeout = timeout + limit
    return watch.until(
        lambda: _done(watch.events, t_fault, cluster.voters, cluster.live(), leader, epoch),
        what=what,
        timeout=timeout,
        note=note,
    )


def _rejoin(
    watch: _Watch, cluster: LocalCluster, old: int, leader: int, epoch: int, timeout: float
) -> None:
    t = time.time()
    if cluster.peers[old].stopped:
        watch.say(f"SIGCONT the old leader, peer {old}: it finds it lost its quorum and rejoins")
        cluster.cont(old)
    else:
        watch.say(f"restarting peer {old}: it rejoins as a learner")
        cluster.start([old])

    def rejoined() -> Outcome | None:
        got = outcome(watch.events, t, voters=cluster.voters, peers=[old])
        est = [
            e
            for e in watch.events
            if e.t >= t and e.sid == old and e.ev == "established" and e.get("epoch") == epoch
        ]
        return got if est else None

    watch.until(rejoined, what=f"peer {old} to rejoin leader {leader}", timeout=timeout)


def _row(o: Outcome) -> dict[str, float | None]:
    def ms(a: float | None, b: float | None) -> float | None:
        d = _sub(a, b)
        return None if d is None else d * 1000

    return {
        "detection": ms(o.first_looking, o.since),
        "election": ms(o.leader_decided, o.first_looking),
        "handshake": ms(o.leader_established, o.leader_decided),
        "total": ms(o.leader_established, o.since),
        "all": ms(o.all_established, o.since),
    }


def _table(rows: Sequence[dict[str, float | None]]) -> list[str]:
    cols = [
        ("detection", "fault → first LOOKING"),
        ("election", "→ leader decided"),
        ("handshake", "→ leader established"),
        ("total", "fault → established"),
        ("all", "fault → all established"),
    ]
    lines = [f"{len(rows)} rounds, ms: min / median / max", ""]
    lines.append(f"  {'phase':<26} {'min':>8} {'median':>8} {'max':>8}")
    for key, name in cols:
        vals = [r[key] for r in rows if r[key] is not None]
        values = [v for v in vals if v is not None]
        if not values:
            lines.append(f"  {name:<26} {'-':>8} {'-':>8} {'-':>8}")
            continue
        lines.append(f"  {name:<26} {min(values):8.1f} {median(values):8.1f} {max(values):8.1f}")
    return lines


def _write_trace(
    path: str, events: Sequence[Event], cluster: LocalCluster, t0: float, out: TextIO
) -> None:
    roles = {sid: "observer" for sid in cluster.observer_sids}
    leaders = [e for e in events if e.ev == "established" and e.get("state") == "LEADING"]
    title = f"zkquorum cluster: {len(cluster.voters)} voters"
    if roles:
        title += f" + {len(roles)} observer(s)"
    if leaders:
        last = leaders[-1]
        title += f"; last leader {last.sid}, epoch {last.get('epoch')}"
    svg = render_svg(events, title=title, t0=t0, roles=roles)
    try:
        Path(path).write_text(svg, encoding="utf-8")
    except OSError as exc:
        print(f"zkquorum cluster: cannot write {path}: {exc.strerror}", file=out, flush=True)
        return
    print(f"trace written to {path}", file=out, flush=True)
