"""Leader election and failover: zkquorum against ZooKeeper 3.8, PySyncObj and etcd.

    .venv/bin/python bench/election.py [--sizes 3,5,7] [--reps 10] [--quick] [--systems ...]

Runs every system on this machine in the same run, alternating systems between
repetitions (the order rotates every repetition, so machine drift hits all alike), with
the same number of servers, all on 127.0.0.1:

* cold start: all servers launched together → a leader established with a quorum
  (zkquorum: the leader's ``established`` event; ZooKeeper: ``srvr`` polled every 10 ms
  shows a leader and a quorum of leader+followers in its epoch; PySyncObj: a majority of
  nodes report the same leader; etcd: a majority of members' raft logs name the same
  leader), with start-up, election and establishment apart where the system tells them;
* failover: SIGKILL of the leader → a new leader established with a quorum;
* hung leader: SIGSTOP of the leader → the same, for tickTime 200 and 2000 (ZooKeeper,
  zkquorum); PySyncObj and etcd at their defaults and tuned;
* peak RSS per server (VmHWM) and CPU per idle server over the idle window;
* scale: zkquorum alone for N = 9, 15, 25, 51 and ZooKeeper for N = 9, 15.

Results: ``bench/results/<stamp>.md`` (tables: min / median / max per cell, ratios of
zkquorum's median to each other system's) and ``<stamp>.json`` (every sample).  PySyncObj
is installed into ``bench/.venv`` (never the project's environment); etcd from Debian's
``etcd-server`` with apt-get when root and missing.  Every process is started in its own
session and stopped by its pid whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from zkquorum.runtime.cluster import LocalCluster, free_ports  # noqa: E402
from zkquorum.tools.events import Event, outcome  # noqa: E402

LOOPBACK = "127.0.0.1"
ZK_JARS = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
]
CLK_TCK = os.sysconf("SC_CLK_TCK")


class TrialFailed(Exception):
    pass


# ---------------------------------------------------------------- process helpers


def proc_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_hwm_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def stop_pids(procs: Sequence[subprocess.Popen[Any]], timeout: float = 5.0) -> None:
    """TERM (after CONT) then KILL, each by its pid."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
                p.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.05, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait(timeout=10)


def line_reader(stream: Any, callback: Callable[[float, str], None]) -> threading.Thread:
    def loop() -> None:
        for raw in iter(stream.readline, b""):
            callback(time.time(), raw.decode("utf-8", "replace"))

    th = threading.Thread(target=loop, daemon=True)
    th.start()
    return th


def four_letter(port: int, word: str = "srvr", timeout: float = 0.5) -> str | None:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while True:
                data = s.recv(4096)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return None


# ---------------------------------------------------------------- the systems


@dataclasses.dataclass
class Settled:
    t: float  # wall seconds
    leader: Any
    extra: dict[str, float] = dataclasses.field(default_factory=dict)


class System:
    name = "?"
    has_tick = False

    def __init__(self, n: int, root: Path, tick: int) -> None:
        self.n = n
        self.root = root
        self.tick = tick
        self.procs: dict[Any, subprocess.Popen[Any]] = {}
        self.stopped: set[Any] = set()
        self.quiet = threading.Event()
        self.gone: set[Any] = set()

    def launch(self) -> float:
        raise NotImplementedError

    def settled(self, since: float, exclude: Any) -> Settled | None:
        raise NotImplementedError

    def wait(self, since: float, exclude: Any = None, timeout: float = 60.0) -> Settled:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.settled(since, exclude)
            if got is not None:
                return got
            for key, p in self.procs.items():
                if p.poll() is not None and p.returncode not in (-9,) and key not in self.gone:
                    raise TrialFailed(f"{self.name} server {key} exited with {p.returncode}")
            time.sleep(0.005)
        raise TrialFailed(f"{self.name} N={self.n}: no leader with a quorum after {timeout} s")

    def live_pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def kill(self, key: Any) -> None:
        self.gone = {*self.gone, key}
        self.procs[key].send_signal(signal.SIGKILL)
        self.procs[key].wait(timeout=10)

    def stop(self, key: Any) -> None:
        self.gone = {*self.gone, key}
        self.stopped.add(key)
        self.procs[key].send_signal(signal.SIGSTOP)

    def shutdown(self) -> None:
        stop_pids(list(self.procs.values()))


class ZkQuorum(System):
    name = "zkquorum"
    has_tick = True

    def __init__(self, n: int, root: Path, tick: int, strict: bool = False) -> None:
        super().__init__(n, root, tick)
        self.cluster = LocalCluster(
            root, size=n, tick_time=tick, peer_args=["--no-shortcut"] if strict else []
        )
        self.cluster.write()
        self.events: list[Event] = []

    def launch(self) -> float:
        t0 = time.time()
        self.cluster.start()
        self.procs = {s: p.proc for s, p in self.cluster.peers.items() if p.proc is not None}
        return t0

    def settled(self, since: float, exclude: Any) -> Settled | None:
        self.events.extend(self.cluster.poll_events())
        live = [s for s in self.cluster.peers if s not in self.gone]
        o = outcome(
            self.events, since, voters=list(self.cluster.peers), peers=live, exclude_leader=exclude
        )
        if o.leader_established is None or o.leader is None:
            return None
        extra: dict[str, float] = {}
        if o.quorum_looking is not None:
            extra["start-up (→ a quorum in FLE)"] = (o.quorum_looking - since) * 1000
        if o.first_looking is not None and exclude is not None:
            extra["detection (→ first survivor LOOKING)"] = (o.first_looking - since) * 1000
        if o.leader_took_ms is not None:
            extra["FLE as the leader logs it"] = float(o.leader_took_ms)
        if o.leader_decided is not None:
            extra["establishment (leader decided → quorum synced)"] = (
                o.leader_established - o.leader_decided
            ) * 1000
        return Settled(o.leader_established, o.leader, extra)

    def shutdown(self) -> None:
        self.cluster.shutdown()


class ZooKeeper(System):
    name = "zookeeper"
    has_tick = True

    def __init__(self, n: int, root: Path, tick: int) -> None:
        super().__init__(n, root, tick)
        ports = free_ports(3 * n)
        self.client = {i + 1: ports[3 * i + 2] for i in range(n)}
        lines = [f"server.{i + 1}={LOOPBACK}:{ports[3 * i]}:{ports[3 * i + 1]}" for i in range(n)]
        for sid in range(1, n + 1):
            d = root / f"zk{sid}"
            (d / "conf").mkdir(parents=True)
            (d / "data").mkdir()
            (d / "logs").mkdir()
            (d / "data" / "myid").write_text(f"{sid}\n")
            (d / "conf" / "zoo.cfg").write_text(
                "\n".join(
                    [
                        f"tickTime={tick}",
                        "initLimit=10",
                        "syncLimit=5",
                        f"dataDir={d / 'data'}",
                        f"clientPort={self.client[sid]}",
                        f"clientPortAddress={LOOPBACK}",
                        "admin.enableServer=false",
                        "4lw.commands.whitelist=*",
                        *lines,
                    ]
                )
                + "\n"
            )
            (d / "conf" / "log4j.properties").write_text(
                "log4j.rootLogger=INFO, F\n"
                "log4j.appender.F=org.apache.log4j.FileAppender\n"
                f"log4j.appender.F.File={d / 'logs' / 'zookeeper.log'}\n"
                "log4j.appender.F.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.F.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - "
                "%-5p [%t:%C{1}@%L] - %m%n\n"
            )
        self.state: dict[int, tuple[float, str | None, int | None]] = {}
        self._stop_poll = threading.Event()
        self._lock = threading.Lock()

    def launch(self) -> float:
        t0 = time.time()
        for sid in range(1, self.n + 1):
            d = self.root / f"zk{sid}"
            cp = ":".join([str(d / "conf"), *ZK_JARS])
            with (d / "logs" / "stdout.txt").open("ab") as out:
                self.procs[sid] = subprocess.Popen(
                    [
                        "java",
                        f"-Dzookeeper.log.dir={d / 'logs'}",
                        "-Dzookeeper.log.file=zookeeper.log",
                        "-Dzookeeper.admin.enableServer=false",
                        "-cp",
                        cp,
                        "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                        str(d / "conf" / "zoo.cfg"),
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        for sid in self.procs:
            threading.Thread(target=self._poll, args=(sid,), daemon=True).start()
        return t0

    def _poll(self, sid: int) -> None:
        last: tuple[str | None, int | None] = (None, None)
        while not self._stop_poll.is_set():
            if sid in self.gone:
                return
            if self.quiet.is_set():  # no polling during the idle-CPU window
                time.sleep(0.01)
                continue
            text = four_letter(self.client[sid])
            mode: str | None = None
            epoch: int | None = None
            if text and "Mode:" in text:
                m = re.search(r"Mode: (\w+)", text)
                z = re.search(r"Zxid: 0x([0-9a-f]+)", text)
                mode = m.group(1) if m else None
                epoch = int(z.group(1), 16) >> 32 if z else None
            if (mode, epoch) != last:
                last = (mode, epoch)
                with self._lock:
                    self.state[sid] = (time.time(), mode, epoch)
            time.sleep(0.01)

    def settled(self, since: float, exclude: Any) -> Settled | None:
        with self._lock:
            state = dict(self.state)
        leaders = [
            (sid, v)
            for sid, v in state.items()
            if v[1] == "leader" and sid != exclude and sid not in self.gone and v[0] >= since
        ]
        if not leaders:
            return None
        sid = leaders[0][0]
        agree = sorted(
            v[0]
            for s, v in state.items()
            # Followers of an empty database answer Zxid 0x0 (the leader: epoch << 32), so
            # a follower counts when it (re)entered the follower mode after ``since``.
            if s not in self.gone and v[1] in ("leader", "follower") and v[0] >= since
        )
        if len(agree) < self.n // 2 + 1:
            return None
        extra: dict[str, float] = {}
        log = self.root / f"zk{sid}" / "logs" / "zookeeper.log"
        with contextlib.suppress(OSError):
            took = re.findall(r"LEADER ELECTION TOOK - (\d+) MS", log.read_text(errors="replace"))
            if took:
                extra["FLE as the leader logs it"] = float(took[-1])
        return Settled(agree[self.n // 2], sid, extra)

    def shutdown(self) -> None:
        self._stop_poll.set()
        super().shutdown()


class PySyncObj(System):
    name = "pysyncobj"

    def __init__(self, n: int, root: Path, tick: int, tuned: bool = False) -> None:
        super().__init__(n, root, tick)
        self.tuned = tuned
        if tuned:
            self.name = "pysyncobj-tuned"
        ports = free_ports(n)
        self.addr = {i + 1: f"{LOOPBACK}:{ports[i]}" for i in range(n)}
        self.by_addr = {a: i for i, a in self.addr.items()}
        self.view: dict[int, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def launch(self) -> float:
        py = str(HERE / ".venv" / "bin" / "python")
        t0 = time.time()
        for i, a in self.addr.items():
            others = [b for j, b in self.addr.items() if j != i]
            self.procs[i] = subprocess.Popen(
                [py, str(HERE / "pso_node.py"), a, *others, *(["--tuned"] if self.tuned else [])],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.root,
            )
            line_reader(self.procs[i].stdout, lambda t, line, i=i: self._on_line(i, line))
        return t0

    def _on_line(self, i: int, line: str) -> None:
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            if "leader" in rec:
                with self._lock:
                    self.view[i] = (float(rec["t"]), rec["leader"])

    def settled(self, since: float, exclude: Any) -> Settled | None:
        with self._lock:
            view = dict(self.view)
        counts: dict[str, list[float]] = {}
        for i, (t, leader) in view.items():
            if i in self.gone or leader is None:
                continue
            lid = self.by_addr.get(leader)
            if lid is None or lid == exclude or lid in self.gone:
                continue
            counts.setdefault(leader, []).append(max(t, since))
        for leader, ts in counts.items():
            if len(ts) >= self.n // 2 + 1:
                return Settled(sorted(ts)[self.n // 2], self.by_addr[leader])
        return None


class Etcd(System):
    name = "etcd"

    def __init__(self, n: int, root: Path, tick: int, tuned: bool = False) -> None:
        super().__init__(n, root, tick)
        self.tuned = tuned
        if tuned:
            self.name = "etcd-tuned"
        ports = free_ports(2 * n)
        self.peer = {i + 1: ports[2 * i] for i in range(n)}
        self.client = {i + 1: ports[2 * i + 1] for i in range(n)}
        self.ids: dict[str, int] = {}
        self.view: dict[int, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def launch(self) -> float:
        cluster = ",".join(f"m{i}=http://{LOOPBACK}:{p}" for i, p in self.peer.items())
        t0 = time.time()
        for i in self.peer:
            cmd = [
                "etcd", "--name", f"m{i}", "--data-dir", str(self.root / f"m{i}"),
                "--listen-peer-urls", f"http://{LOOPBACK}:{self.peer[i]}",
                "--initial-advertise-peer-urls", f"http://{LOOPBACK}:{self.peer[i]}",
                "--listen-client-urls", f"http://{LOOPBACK}:{self.client[i]}",
                "--advertise-client-urls", f"http://{LOOPBACK}:{self.client[i]}",
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "bench",
            ]  # fmt: skip
            if self.tuned:
                cmd += ["--heartbeat-interval", "10", "--election-timeout", "50"]
            self.procs[i] = subprocess.Popen(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            line_reader(self.procs[i].stderr, lambda t, line, i=i: self._on_line(i, t, line))
        return t0

    def _on_line(self, i: int, t: float, line: str) -> None:
        m = re.search(r"starting member (\w+) in cluster", line)
        if m:
            with self._lock:
                self.ids[m.group(1)] = i
            return
        m = re.search(r"elected leader (\w+) at term", line) or re.search(
            r"changed leader from \w+ to (\w+) at term", line
        )
        lost = re.search(r"lost leader (\w+) at term", line)
        if m or lost:
            with self._lock:
                self.view[i] = (t, m.group(1) if m else None)

    def settled(self, since: float, exclude: Any) -> Settled | None:
        with self._lock:
            view = dict(self.view)
            ids = dict(self.ids)
        counts: dict[str, list[float]] = {}
        for i, (t, leader) in view.items():
            if i in self.gone or leader is None:
                continue
            lid = ids.get(leader)
            if lid is None or lid == exclude or lid in self.gone:
                continue
            counts.setdefault(leader, []).append(max(t, since))
        for leader, ts in counts.items():
            if len(ts) >= self.n // 2 + 1:
                return Settled(sorted(ts)[self.n // 2], ids[leader])
        return None


FACTORIES: dict[str, Callable[[int, Path, int], System]] = {
    "zkquorum": lambda n, r, t: ZkQuorum(n, r, t),
    "zkquorum-strict": lambda n, r, t: ZkQuorum(n, r, t, strict=True),
    "zookeeper": ZooKeeper,
    "pysyncobj": lambda n, r, t: PySyncObj(n, r, t),
    "pysyncobj-tuned": lambda n, r, t: PySyncObj(n, r, t, tuned=True),
    "etcd": lambda n, r, t: Etcd(n, r, t),
    "etcd-tuned": lambda n, r, t: Etcd(n, r, t, tuned=True),
}
DEFAULT_SYSTEMS = ["zkquorum", "zookeeper", "pysyncobj", "pysyncobj-tuned", "etcd", "etcd-tuned"]


# ---------------------------------------------------------------- one trial


def trial(
    system: str, n: int, *, tick: int, fault: str, idle_s: float, settle_s: float, timeout: float
) -> dict[str, float]:
    """Cold start, idle window, one fault; every figure in ms (MiB / % for memory / CPU)."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-{system}-"))
    sys_ = FACTORIES[system](n, root, tick)
    out: dict[str, float] = {}
    try:
        t0 = sys_.launch()
        cold = sys_.wait(t0, timeout=timeout)
        out["cold start → leader with a quorum"] = (cold.t - t0) * 1000
        for k, v in cold.extra.items():
            out[f"cold: {k}"] = v
        time.sleep(settle_s)
        if idle_s > 0:
            pids = sys_.live_pids()
            sys_.quiet.set()
            before = {p: proc_cpu_s(p) for p in pids}
            start = time.monotonic()
            time.sleep(idle_s)
            took = time.monotonic() - start
            after = {p: proc_cpu_s(p) for p in pids}
            sys_.quiet.clear()
            cpu = [
                100 * (a - b) / took
                for p in pids
                if (a := after[p]) is not None and (b := before[p]) is not None
            ]
            if cpu:
                out["idle CPU per server (% of a core)"] = statistics.median(cpu)
        leader = cold.leader
        if isinstance(sys_, (PySyncObj, Etcd)):
            # Raft may have re-elected since (a late or starved member campaigns): the fault
            # goes to the leader a majority names now.
            now = sys_.settled(t0, None)
            leader = now.leader if now is not None else leader
        hwm = [m for p in sys_.live_pids() if (m := proc_hwm_mib(p)) is not None]
        t_fault = time.time()
        if fault == "kill":
            sys_.kill(leader)
        else:
            sys_.stop(leader)
        new = sys_.wait(t_fault, exclude=leader, timeout=timeout + (10 * tick / 1000) * 2)
        label = "failover (SIGKILL)" if fault == "kill" else "hung leader (SIGSTOP)"
        out[f"{label} → new leader with a quorum"] = (new.t - t_fault) * 1000
        for k, v in new.extra.items():
            if not k.startswith("start-up"):
                out[f"{label}: {k}"] = v
        hwm += [m for p in sys_.live_pids() if (m := proc_hwm_mib(p)) is not None]
        if hwm:
            out["peak RSS per server (MiB)"] = statistics.median(hwm)
    finally:
        sys_.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    return out


# ---------------------------------------------------------------- setup and report


def ensure_tools(systems: Sequence[str]) -> list[str]:
    """Install what is missing; return the systems that can run."""
    ok = []
    for s in systems:
        if s.startswith("pysyncobj"):
            py = HERE / ".venv" / "bin" / "python"
            if not py.exists():
                subprocess.run([sys.executable, "-m", "venv", str(HERE / ".venv")], check=True)
            if subprocess.run([str(py), "-c", "import pysyncobj"], capture_output=True).returncode:
                subprocess.run(
                    [str(py), "-m", "pip", "install", "-q", "pysyncobj==0.3.17"], check=True
                )
        elif s.startswith("etcd") and shutil.which("etcd") is None:
            if os.geteuid() == 0 and shutil.which("apt-get"):
                subprocess.run(["apt-get", "update", "-qq"], check=False)
                subprocess.run(
                    ["apt-get", "install", "-y", "-qq", "etcd-server"],
                    check=False,
                    env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
                )
            if shutil.which("etcd") is None:
                print(f"skipping {s}: etcd not installed (apt-get install etcd-server)")
                continue
        elif s == "zookeeper" and (
            shutil.which("java") is None or not all(Path(j).exists() for j in ZK_JARS)
        ):
            print("skipping zookeeper: needs java and Debian's zookeeper package")
            continue
        ok.append(s)
    return ok


def cell(values: Sequence[float]) -> str:
    if not values:
        return "–"
    fmt = (lambda v: f"{v:.1f}") if max(values) < 100 else (lambda v: f"{v:.0f}")
    return (
        f"{fmt(min(values))} / {fmt(statistics.median(values))} / {fmt(max(values))} "
        f"(n={len(values)})"
    )


def report(samples: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [f"# Election benchmark, {meta['date']}", ""]
    lines.append(f"Machine: {meta['machine']}. Command: `{meta['command']}`.")
    lines.append(
        "Each cell: min / median / max (n = samples), ms unless the row says otherwise. "
        "Systems alternated between repetitions; all on 127.0.0.1."
    )
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for s in samples:
        groups.setdefault((s["scenario"], s["tick"]), []).append(s)
    for (scenario, tick), rows in groups.items():
        sizes = sorted({r["n"] for r in rows})
        systems = list(dict.fromkeys(r["system"] for r in rows))
        metrics = list(dict.fromkeys(k for r in rows for k in r["figures"]))
        lines += ["", f"## {scenario} (zkquorum and ZooKeeper at tickTime {tick})", ""]
        lines.append("| system | figure | " + " | ".join(f"N={n}" for n in sizes) + " |")
        lines.append("|---|---|" + "---|" * len(sizes))
        for metric in metrics:
            for system in systems:
                vals = {
                    n: [
                        r["figures"][metric]
                        for r in rows
                        if r["system"] == system and r["n"] == n and metric in r["figures"]
                    ]
                    for n in sizes
                }
                if not any(vals.values()):
                    continue
                lines.append(
                    f"| {system} | {metric} | " + " | ".join(cell(vals[n]) for n in sizes) + " |"
                )
        # Ratios of zkquorum's medians to each other system's, per row.
        if "zkquorum" in systems:
            ratio_lines = []
            for metric in metrics:
                for other in systems:
                    if other == "zkquorum":
                        continue
                    parts = []
                    for n in sizes:
                        a = [
                            r["figures"][metric]
                            for r in rows
                            if r["system"] == "zkquorum" and r["n"] == n and metric in r["figures"]
                        ]
                        b = [
                            r["figures"][metric]
                            for r in rows
                            if r["system"] == other and r["n"] == n and metric in r["figures"]
                        ]
                        if a and b and statistics.median(b) > 0:
                            parts.append(f"{statistics.median(a) / statistics.median(b):.3f}")
                        else:
                            parts.append("–")
                    if any(p != "–" for p in parts):
                        ratio_lines.append(f"| {metric} | {other} | " + " | ".join(parts) + " |")
            if ratio_lines:
                lines += ["", "Ratio zkquorum / other (medians):", ""]
                lines.append("| figure | vs | " + " | ".join(f"N={n}" for n in sizes) + " |")
                lines.append("|---|---|" + "---|" * len(sizes))
                lines += ratio_lines
    if meta.get("errors"):
        lines += ["", "## Failed trials", ""] + [f"- {e}" for e in meta["errors"]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="3,5,7")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--stop-reps", type=int, default=3, help="repetitions of SIGSTOP cells")
    ap.add_argument("--idle", type=float, default=10.0, help="idle window (s) for CPU")
    ap.add_argument("--idle-reps", type=int, default=3, help="repetitions with an idle window")
    ap.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS))
    ap.add_argument("--scale", default="9,15,25,51", help="zkquorum-only sizes ('' = none)")
    ap.add_argument("--zk-scale", default="9,15", help="ZooKeeper sizes in the scale run")
    ap.add_argument("--no-stop", action="store_true", help="skip the SIGSTOP cells")
    ap.add_argument("--quick", action="store_true", help="a smoke run in about 2 minutes")
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.reps, args.stop_reps = "3", 1, 1
        args.idle, args.idle_reps, args.scale, args.zk_scale = 2.0, 1, "9", ""
    sizes = [int(x) for x in args.sizes.split(",") if x]
    systems = ensure_tools([s for s in args.systems.split(",") if s])
    plan: list[tuple[str, str, int, int, int, int]] = []  # scenario, system, n, tick, rep, idle
    for rep in range(args.reps):
        for n in sizes:
            k = rep % len(systems)
            for system in systems[k:] + systems[:k]:
                plan.append(
                    (
                        "cold start and failover (SIGKILL)",
                        system,
                        n,
                        2000,
                        rep,
                        rep < args.idle_reps,
                    )
                )
    if not args.no_stop:
        ticks = [200] if args.quick else [200, 2000]
        for rep in range(args.stop_reps):
            for n in sizes:
                for tick in ticks:
                    for system in systems:
                        if tick == 2000 and system.startswith(("pysyncobj", "etcd")):
                            continue  # no tickTime: measured once, in the 200 row
                        plan.append(("hung leader (SIGSTOP)", system, n, tick, rep, False))
    for n in [int(x) for x in args.scale.split(",") if x]:
        for rep in range(1 if args.quick else 3):
            plan.append(("scale", "zkquorum", n, 2000, rep, False))
            if "zookeeper" in systems and str(n) in args.zk_scale.split(","):
                plan.append(("scale", "zookeeper", n, 2000, rep, False))
    samples: list[dict[str, Any]] = []
    errors: list[str] = []
    started = time.monotonic()
    for i, (scenario, system, n, tick, rep, idle) in enumerate(plan, 1):
        fault = "stop" if scenario.startswith("hung") else "kill"
        timeout = 30.0 + (0.4 * n if system == "zkquorum" else 1.0 * n)
        try:
            figures = trial(
                system,
                n,
                tick=tick,
                fault=fault,
                idle_s=args.idle if idle else 0.0,
                settle_s=0.5 if args.quick else 1.0,
                timeout=timeout,
            )
        except (TrialFailed, subprocess.SubprocessError, OSError) as exc:
            errors.append(f"{scenario} {system} N={n} tick={tick} rep {rep}: {exc}")
            print(f"[{i}/{len(plan)}] FAILED {errors[-1]}", flush=True)
            continue
        samples.append(
            dict(scenario=scenario, system=system, n=n, tick=tick, rep=rep, figures=figures)
        )
        main_fig = {
            k: round(v, 1)
            for k, v in figures.items()
            if k.startswith(("cold start", "failover (", "hung leader (SIGSTOP) →"))
        }
        print(
            f"[{i}/{len(plan)}] {time.monotonic() - started:6.0f} s  {scenario:<34} "
            f"{system:<16} N={n:<3} tick={tick:<5} {main_fig}",
            flush=True,
        )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        m = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1) if m else cpu
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs ({cpu}), "
        f"Python {platform.python_version()}",
        "command": "python bench/election.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "errors": errors,
        "seconds": round(time.monotonic() - started),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stamp}.json").write_text(json.dumps({"meta": meta, "samples": samples}, indent=1))
    text = report(samples, meta)
    (out / f"{stamp}.md").write_text(text)
    print(text)
    print(f"results: {out / stamp}.md and .json ({meta['seconds']} s)")
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
