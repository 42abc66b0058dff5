"""zkquorum peers as real processes, beside (or instead of) real ZooKeeper servers.

A :class:`PyServer` has the same layout and interface as the interop harness's
:class:`~tests.interop.zkserver.JavaServer` (ports, zoo.cfg, myid, ``srvr``, ``stop`` by
pid, ``kill``), but runs ``python -m zkquorum run zoo.cfg --events logs/events.jsonl``
(the events give wall-clock times of decisions, establishment and failures), and can be
paused (SIGSTOP) and resumed (SIGCONT).  :func:`ensemble` lays out one membership in which
any sid may be Java or zkquorum.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.interop.zk import ZooKeeperInstall
from tests.interop.zkserver import JavaEnsemble, JavaServer, make_ensemble, wait_for

__all__ = ["Ensemble", "PyServer", "ensemble", "wait_for"]


@dataclasses.dataclass
class PyServer(JavaServer):
    """One ``zkquorum run`` process."""

    extra_args: tuple[str, ...] = ()

    def command(self) -> list[str]:
        """The command line of the peer process (subclasses wrap or replace it)."""
        cmd = [sys.executable, "-m", "zkquorum", "run", str(self.cfg_path)]
        return [*cmd, "--events", str(self.events_path), *self.extra_args]

    def environment(self) -> dict[str, str]:
        return dict(os.environ, PYTHONUNBUFFERED="1")

    def start(self, install: ZooKeeperInstall | None = None) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"peer {self.sid} running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = (self.log_dir / "zkquorum.log").open("ab")
        try:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=self.environment(),
            )
        finally:
            out.close()

    def log(self) -> str:
        path = self.log_dir / "zkquorum.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def rss_kib(self) -> int | None:
        """Resident memory now (VmRSS), in KiB."""
        if self.proc is None:
            return None
        try:
            text = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        m = re.search(r"VmRSS:\s+(\d+) kB", text)
        return int(m.group(1)) if m else None

    def election_times_ms(self) -> list[int]:
        return [int(x) for x in re.findall(r"LEADER ELECTION TOOK - (\d+) MS", self.log())]

    @property
    def events_path(self) -> Path:
        return self.log_dir / "events.jsonl"

    def events(self, *kinds: str, since: float = 0.0) -> list[dict[str, Any]]:
        """The peer's ``--events`` records (of these kinds) with wall-clock ``t`` >= since."""
        try:
            lines = self.events_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line being written
            if (not kinds or rec["ev"] in kinds) and rec["t"] >= since:
                out.append(rec)
        return out

    def epoch_files(self) -> tuple[int | None, int | None]:
        """(acceptedEpoch, currentEpoch) as the files say now (None: missing)."""
        out: list[int | None] = []
        for name in ("acceptedEpoch", "currentEpoch"):
            try:
                out.append(int((self.data_dir / "version-2" / name).read_text()))
            except (FileNotFoundError, ValueError):
                out.append(None)
        return out[0], out[1]


@dataclasses.dataclass
class Ensemble:
    """A membership whose servers are Java or zkquorum processes."""

    inner: JavaEnsemble

    @property
    def servers(self) -> dict[int, JavaServer]:
        return self.inner.servers

    def start(self, sids: Sequence[int] | None = None) -> None:
        for sid in self.servers if sids is None else sids:
            self.servers[sid].start(self.inner.install)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.inner.stop()

    def py(self, sid: int) -> PyServer:
        server = self.servers[sid]
        assert isinstance(server, PyServer)
        return server

    def modes(self, sids: Sequence[int] | None = None) -> dict[int, str | None]:
        chosen = self.servers if sids is None else {s: self.servers[s] for s in sids}
        return {sid: s.mode() for sid, s in chosen.items()}

    def check_alive(self) -> None:
        for sid, s in self.servers.items():
            if (
                s.proc is not None
                and s.proc.poll() is not None
                and s.proc.returncode
                not in (
                    0,
                    -signal.SIGKILL,
                    -signal.SIGTERM,
                )
            ):
                raise RuntimeError(f"server {sid} exited with {s.proc.returncode}:\n{s.log()}")

    def wait_for_leader(self, sids: Sequence[int] | None = None, timeout: float = 30.0) -> int:
        """Every chosen running server reports a mode, and exactly one is the leader."""
        chosen = list(self.servers if sids is None else sids)

        def settled() -> int | None:
            self.check_alive()
            modes = {s: self.servers[s].mode() for s in chosen if self.servers[s].running()}
            if not modes or any(m is None for m in modes.values()):
                return None
            leaders = [sid for sid, m in modes.items() if m == "leader"]
            return leaders[0] if len(leaders) == 1 else None

        return wait_for(settled, timeout=timeout, what=f"one leader among {chosen}")

    def srvr_epoch(self, sid: int) -> int | None:
        """The epoch of the ``Zxid`` that ``srvr`` reports (zxid >> 32)."""
        info = self.servers[sid].srvr()
        if not info or "Zxid" not in info:
            return None
        return int(info["Zxid"], 16) >> 32

    def logs(self) -> str:
        return self.inner.logs()


@contextlib.contextmanager
def ensemble(
    base_dir: Path,
    *,
    py_sids: Sequence[int] = (1, 2, 3),
    java_sids: Sequence[int] = (),
    observers: Sequence[int] = (),
    install: ZooKeeperInstall | None = None,
    settings: Mapping[str, str] | None = None,
    py_args: Sequence[str] = (),
    jvm_flags: Mapping[int, Sequence[str]] | None = None,
    start: bool = True,
) -> Iterator[Ensemble]:
    """Lay out one membership; zkquorum for ``py_sids`` (and py observers), Java for the rest.

    Every process is stopped by pid whatever happens; on failure every log is printed.
    """
    sids = sorted({*py_sids, *java_sids} - set(observers))
    fake_install = install or ZooKeeperInstall(  # only used to lay out files
        jar=Path("/nonexistent"), java="java", javac=None, log_jars=()
    )
    inner = make_ensemble(
        fake_install,
        base_dir,
        sids,
        observers=observers,
        settings=settings,
        jvm_flags=jvm_flags,
    )
    for sid, server in list(inner.servers.items()):
        if sid in py_sids:
            fields = {f.name: getattr(server, f.name) for f in dataclasses.fields(JavaServer)}
            inner.servers[sid] = PyServer(**fields, extra_args=tuple(py_args))
    inner.write_configs()
    ens = Ensemble(inner)
    try:
        if start:
            ens.start()
        yield ens
    except BaseException:
        print(ens.logs(), file=sys.stderr)
        raise
    finally:
        ens.stop()
