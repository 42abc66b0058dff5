"""zkquorum peers as processes whose peer-to-peer traffic goes through :class:`ChaosProxy`.

Each peer gets its own zoo.cfg: its own server line has its real ports, every other
server's line names the proxy listener for that (me -> them) direction.  Peers run
``tests/chaos/peerproc.py`` (``zkquorum run`` plus a SIGUSR1 task-count dump) with
``--events``; the client port (four-letter words) is reached directly.

With ``reconfig`` (dynamic reconfiguration on, a super user for the ``reconfig`` calls)
every peer must share one configuration: a committed config is one text on every server.
Then every zoo.cfg names the real ports (``server.N=host:quorum:election:role;host:client``)
and each peer's outgoing connections to another peer are redirected to that pair's proxy
listener by ``peerproc.py`` (``$ZKQ_CHAOS_DIAL``), so that link faults apply as before.
``spares`` are laid out (ports, proxy listeners, data) but in no initial config: they are
started when a test adds them, with a zoo.cfg naming the ensemble plus themselves, as an
operator would.  A peer restarted while its own config does not name it (a removed
server) gets such a zoo.cfg too: 3.8 refuses to start without its own server line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from tests.chaos.proxy import ChaosProxy
from tests.chaos.schedule import LEADER, Fault
from tests.interop.zkserver import free_ports, wait_for
from tests.peer.cluster import PyServer

PEERPROC = Path(__file__).with_name("peerproc.py")

SETTINGS = {
    "tickTime": "200",
    "initLimit": "10",
    "syncLimit": "5",
    "cnxTimeout": "1000",
    "4lw.commands.whitelist": "*",
}

SUPER_PASSWORD = "test"
"""``super:test``: kazoo's ``auth_data=[("digest", "super:test")]`` may call reconfig."""
RECONFIG_SETTINGS = {
    "reconfigEnabled": "true",
    "DigestAuthenticationProvider.superDigest": "super:D/InIHSb7yEEbrWz8b9l71RjZJU=",
}


@dataclasses.dataclass
class ChaosServer(PyServer):
    """One peer process; ``events.jsonl`` and ``tasks.json`` live in its root."""

    restarts: int = 0
    paused: bool = False
    prefix: tuple[str, ...] = ()  # e.g. ("ip", "netns", "exec", NAME)
    redirect: dict[int, int] = dataclasses.field(default_factory=dict)
    """Outgoing connections to 127.0.0.1:<key> go to the value's port (``peerproc.py``)."""

    def spec(self) -> str:
        """This server as a dynamic config names it (``host:quorum:election:role;client``)."""
        return (
            f"{self.host}:{self.quorum_port}:{self.election_port}:{self.role};"
            f"{self.host}:{self.client_port}"
        )

    @property
    def events_path(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def tasks_path(self) -> Path:
        return self.root / "tasks.json"

    def command(self) -> list[str]:
        cmd = [*self.prefix, sys.executable, str(PEERPROC), "run", str(self.cfg_path)]
        return [*cmd, "--events", str(self.events_path), *self.extra_args]

    def environment(self) -> dict[str, str]:
        env = dict(super().environment(), ZKQ_CHAOS_TASKS_FILE=str(self.tasks_path))
        if self.redirect:
            env["ZKQ_CHAOS_DIAL"] = json.dumps({str(k): v for k, v in self.redirect.items()})
        return env

    def start(self, install: object = None) -> None:
        super().start()
        self.paused = False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if self.paused:
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.start()
        self.restarts += 1

    def pause(self) -> None:
        super().pause()
        self.paused = True

    def resume(self) -> None:
        super().resume()
        self.paused = False

    def stop(self) -> int | None:
        """SIGTERM (after SIGCONT if paused), then SIGKILL; the exit status."""
        if self.proc is not None and self.paused and self.proc.poll() is None:
            self.resume()
        return super().stop()

    def fd_count(self) -> int | None:
        if not self.running():
            return None
        assert self.proc is not None
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return None

    def task_count(self, timeout: float = 5.0) -> dict[str, object]:
        """Ask the peer (SIGUSR1) for its asyncio tasks; wait for the fresh dump."""
        assert self.proc is not None and self.running()
        asked = time.time()
        os.kill(self.proc.pid, signal.SIGUSR1)

        def fresh() -> dict[str, object] | None:
            try:
                data: dict[str, object] = json.loads(self.tasks_path.read_text())
            except (OSError, ValueError):
                return None
            t = data.get("t")
            return data if isinstance(t, float) and t >= asked else None

        return wait_for(fresh, timeout=timeout, what=f"task dump of peer {self.sid}")


def fixed_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` free ports below the ephemeral range.

    The peers' own ports must stay free while a peer is down (killed, restarting): a port
    from the ephemeral range could meanwhile become the source port of one of the many
    outgoing connections (the proxy's, the peers'), and the restart would fail to bind.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return free_ports(count, host)
    start = max(1024, low - 12000)
    rng = random.Random()
    chosen: list[int] = []
    while len(chosen) < count:
        port = rng.randrange(start, low)
        if port in chosen:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        chosen.append(port)
    return chosen


class EventTail:
    """The newest ``established`` record of one peer's events file, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.last: dict[str, object] | None = None
        self.state = ""

    def poll(self) -> dict[str, object] | None:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return self.last
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if b'"ev":"send"' in line or b'"ev":"recv"' in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            self.state = str(rec.get("ev"))
            if rec.get("ev") == "established":
                self.last = rec
        return self.last

    def serving(self) -> dict[str, object] | None:
        """The newest ``established`` record if nothing (looking, decided...) came after."""
        last = self.poll()
        return last if self.state == "established" else None


class ChaosCluster:
    """Participants and observers whose peer links all go through one proxy."""

    def __init__(
        self,
        base: Path,
        participants: Sequence[int],
        observers: Sequence[int] = (),
        *,
        settings: Mapping[str, str] | None = None,
        direct: bool = False,
        absent: Sequence[int] = (),
        reconfig: bool = False,
        spares: Sequence[int] = (),
    ) -> None:
        """``direct``: no proxy, every zoo.cfg names the real ports.  ``absent``: sids
        that are in the configuration but never run (their ports stay unbound).
        ``reconfig`` and ``spares``: see the module docstring."""
        if spares and not reconfig:
            raise ValueError("spares join by reconfig: they need reconfig=True")
        self.participants = list(participants)
        self.direct = direct
        self.absent = list(absent)
        self.observers = list(observers)
        self.reconfig = reconfig
        self.spares = list(spares)
        self.sids = [*self.participants, *self.observers, *self.spares]
        self.proxy = ChaosProxy()
        self.settings = dict(SETTINGS, **(RECONFIG_SETTINGS if reconfig else {}))
        self.settings.update(settings or {})
        self.lock = threading.Lock()
        self.dormant: set[int] = set(self.spares)
        """Spares not started yet: no fault may touch them, ``settled`` skips them."""
        self.held: set[int] = set()
        """Processes a fault (or a membership change) holds: nobody else may touch them."""
        ports = fixed_ports(3 * len(self.sids))
        self.servers: dict[int, ChaosServer] = {}
        for i, sid in enumerate(self.sids):
            self.servers[sid] = ChaosServer(
                sid=sid,
                root=base / f"peer{sid}",
                quorum_port=ports[3 * i],
                election_port=ports[3 * i + 1],
                client_port=ports[3 * i + 2],
                role="observer" if sid in self.observers else "participant",
            )
        for src in [] if direct else self.sids:
            for dst in self.sids:
                if src != dst:
                    d = self.servers[dst]
                    q = self.proxy.listen(src, dst, "quorum", d.quorum_port)
                    e = self.proxy.listen(src, dst, "election", d.election_port)
                    if reconfig:
                        self.servers[src].redirect.update({d.quorum_port: q, d.election_port: e})
        self.tails = {
            sid: EventTail(s.events_path) for sid, s in self.servers.items() if sid not in absent
        }
        members = [*self.participants, *self.observers]
        for s in self.servers.values():
            s.data_dir.mkdir(parents=True, exist_ok=True)
            s.cfg_path.parent.mkdir(parents=True, exist_ok=True)
            (s.data_dir / "myid").write_text(f"{s.sid}\n")
            if s.sid in self.spares:
                s.cfg_path.write_text(self.join_config_text(s.sid, self.specs(members)))
            else:
                s.cfg_path.write_text(self.config_text(s.sid))

    def config_text(self, me: int) -> str:
        if self.reconfig:
            members = [*self.participants, *self.observers]
            return self.join_config_text(me, self.specs(members))
        s = self.servers[me]
        lines = [f"{k}={v}" for k, v in self.settings.items()]
        lines += [
            f"dataDir={s.data_dir}",
            f"clientPort={s.client_port}",
            f"clientPortAddress={s.host}",
        ]
        for sid, other in self.servers.items():
            if sid == me or self.direct:
                q, e = other.quorum_port, other.election_port
            else:
                q = self.proxy.ports[(me, sid, "quorum")]
                e = self.proxy.ports[(me, sid, "election")]
            lines.append(f"server.{sid}={other.host}:{q}:{e}:{other.role}")
        return "\n".join(lines) + "\n"

    def specs(self, sids: Iterable[int]) -> dict[int, str]:
        return {sid: self.servers[sid].spec() for sid in sids}

    def join_config_text(self, me: int, members: Mapping[int, str]) -> str:
        """A static zoo.cfg (reconfig mode) naming ``members`` (sid -> spec) and ``me``."""
        s = self.servers[me]
        lines = [f"{k}={v}" for k, v in self.settings.items()]
        lines.append(f"dataDir={s.data_dir}")
        every = dict(members)
        every.setdefault(me, s.spec())
        lines += [f"server.{sid}={spec}" for sid, spec in sorted(every.items())]
        return "\n".join(lines) + "\n"

    def disk_config(self, sid: int) -> dict[int, str]:
        """The members (sid -> spec) of the config ``sid`` would start with: zoo.cfg's
        ``dynamicConfigFile``, else zoo.cfg's own server lines."""
        cfg = self.servers[sid].cfg_path
        text = cfg.read_text()
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "dynamicConfigFile":
                text = Path(value.strip()).read_text()
                break
        return parse_members(text)

    def rejoin_config(self, sid: int) -> bool:
        """Before ``sid`` starts again (reconfig mode): when the config it would start with
        does not name it (removed), a zoo.cfg naming that config's members plus itself.
        True when it was rewritten."""
        if not self.reconfig:
            return False
        members = self.disk_config(sid)
        if sid in members:
            return False
        s = self.servers[sid]
        s.cfg_path.write_text(self.join_config_text(sid, members))
        return True

    # -- processes -------------------------------------------------------------------------

    def start(self, sids: Iterable[int] | None = None) -> None:
        """Start ``sids`` (default: every peer but the absent ones and the spares)."""
        chosen = [s for s in self.sids if s not in self.spares] if sids is None else sids
        for sid in chosen:
            if sid not in self.absent:
                with self.lock:
                    self.dormant.discard(sid)
                    self.servers[sid].start()

    def restart(self, sid: int) -> None:
        """Start ``sid`` again after a kill (see :meth:`rejoin_config`)."""
        self.rejoin_config(sid)
        self.servers[sid].restart()

    def claim(self, sid: int) -> bool:
        """Hold the process ``sid`` (for a fault, a membership change); False when it is
        dormant or already held."""
        with self.lock:
            if sid in self.dormant or sid in self.held:
                return False
            self.held.add(sid)
            return True

    def release(self, sid: int) -> None:
        with self.lock:
            self.held.discard(sid)

    def live(self) -> list[int]:
        """The peers meant to run now: not absent, not dormant spares."""
        with self.lock:
            return [s for s in self.sids if s not in self.absent and s not in self.dormant]

    def stop(self) -> None:
        for s in self.servers.values():
            s.stop()
        self.proxy.close()

    def running(self) -> list[int]:
        return [sid for sid, s in self.servers.items() if s.running() and not s.paused]

    def crashed(self) -> dict[int, int]:
        """Peers that exited by themselves (not killed or stopped by the test: a process
        that is held may be down on purpose)."""
        with self.lock:
            held = set(self.held)
        return {
            sid: s.proc.returncode
            for sid, s in self.servers.items()
            if s.proc is not None
            and sid not in held
            and s.proc.poll() is not None
            and s.proc.returncode is not None
        }

    def settled(self) -> tuple[int, int] | None:
        """(leader, epoch) when every peer serves, in agreement; else None.

        Every peer runs, exactly one says ``leader`` (``srvr``), participants say
        ``follower``, observers ``observer``, and the newest ``established`` record of every
        peer names that leader and one epoch.
        """
        leader, epochs = None, set()
        live = self.live()
        for sid in live:
            rec = self.tails[sid].poll()
            if rec is None:
                return None
            epochs.add((rec.get("leader"), rec.get("epoch")))
        if len(epochs) != 1:
            return None
        for sid in live:
            s = self.servers[sid]
            if not s.running() or s.paused:
                return None
            info = s.srvr()
            if not info or "Mode" not in info:
                return None
            mode = info["Mode"]
            want = "observer" if sid in self.observers else ("leader", "follower")
            if mode not in want:
                return None
            if mode == "leader":
                if leader is not None:
                    return None
                leader = sid
        named, epoch = epochs.pop()
        if leader is None or named != leader or not isinstance(epoch, int):
            return None
        return leader, epoch

    def wait_settled(self, timeout: float) -> tuple[int, int]:
        def check() -> tuple[int, int] | None:
            dead = self.crashed()
            if dead:
                raise AssertionError(f"peer(s) exited by themselves: {dead}")
            return self.settled()

        return wait_for(check, timeout=timeout, what="one established leader, all peers serving")

    def logs(self) -> str:
        return "".join(
            f"\n===== peer {sid} ({s.root}) =====\n{s.log()[-20000:]}"
            for sid, s in self.servers.items()
        )


def parse_members(text: str) -> dict[int, str]:
    """``server.N=spec`` lines of a config (zoo.cfg, a dynamic file, /zookeeper/config)."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and key.startswith("server."):
            out[int(key[len("server.") :])] = value.strip()
    return out


def start_fault(
    c: ChaosCluster, f: Fault, leader: int | None, busy: set[int]
) -> Callable[[], None] | None:
    """Start ``f`` on ``c`` (``LEADER`` in its target is ``leader``); return what heals it,
    or None when it is skipped (no leader known, a process another fault holds, a link of
    a peer to itself).  ``busy`` collects the processes held."""
    target = tuple(leader if s == LEADER and leader is not None else s for s in f.target)
    if LEADER in target:
        return None
    if f.kind in ("kill", "stop"):
        (sid,) = target
        if sid in busy or not c.claim(sid):
            return None
        busy.add(sid)
        server = c.servers[sid]
        if f.kind == "kill":
            server.kill()

            def restart() -> None:
                try:
                    c.restart(sid)
                finally:
                    c.release(sid)

            return restart
        server.pause()

        def resume() -> None:
            try:
                server.resume()
            finally:
                c.release(sid)

        return resume
    a, b = target
    if a == b:
        return None
    if f.kind == "drop":
        c.proxy.set_link(a, b, "drop")
    elif f.kind == "delay":
        c.proxy.set_link(a, b, "delay", delay_ms=f.delay_ms)
    elif f.kind == "cut_one":
        c.proxy.set_link(a, b, "cut", cut=frozenset({(a, b)}))
    else:
        c.proxy.set_link(a, b, "cut", cut=frozenset({(a, b), (b, a)}))

    def heal() -> None:
        c.proxy.set_link(a, b, "ok")

    return heal
