"""Dynamic reconfiguration across real ZooKeeper 3.8 servers and zkquorum peers.

A :class:`Cluster` lays out servers -- each Java (``QuorumPeerMain``) or zkquorum
(``zkquorum run``) -- with free loopback ports, ``reconfigEnabled=true`` and the super
digest of kazoo's harness (``super:test``), and lets a test decide which membership each
server's zoo.cfg starts with (a server added later starts with the current members plus
itself).  Java gets the digest as ``-Dzookeeper.DigestAuthenticationProvider.superDigest``,
zkquorum as the zoo.cfg line ``DigestAuthenticationProvider.superDigest`` (the translation
of ``tests/judges/javashim.py``).

What a test checks after each change (:meth:`Cluster.check_step`):

* every running server's ``conf`` four-letter word shows the expected membership and
  version (and ``peerType``: 1 for an observer of it, else 0), and so does
  ``/zookeeper/config`` read through a client of that server alone (after a ``sync``,
  stat version and aversion -1).  Members are compared parsed; the bytes are compared
  too, because with sids below 16 3.8's ``HashMap`` order is ascending (in general it
  is not: never compare config bytes of large sids);
* every server wrote ``<zoo.cfg>.dynamic.<hex version>`` (no version line) and its
  zoo.cfg names it in ``dynamicConfigFile=`` and has no ``server.`` line left;
* the long-lived client session (:class:`Session`) is the one it was (same session id,
  never LOST) and its ephemeral node is still there, seen from every server;
* a write made after the change is acknowledged and readable (after ``sync``) on every
  server.

:meth:`Cluster.config_watches` checks that a data watch on ``/zookeeper/config`` fires
on every server; :meth:`Cluster.reconfig` that the answer's config has the version of
the txn's zxid.

The fixture ``reconfig_cluster`` stops every process it started, by pid, whatever
happens, and attaches every server's log (both sides) to a failed test's report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import ConnectionLoss, NodeExistsError
from kazoo.protocol.states import EventType, WatchedEvent

from tests.interop.mixed import FAST, NEW_ELECTION
from tests.interop.zk import ZooKeeperInstall, write_log4j_properties
from tests.interop.zkserver import JavaServer, four_letter_word, wait_for
from tests.peer.cluster import PyServer
from zkquorum.testing import free_ports

SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # kazoo's harness: super:test
SUPER_AUTH = ("digest", "super:test")
SUPER_DIGEST_KEY = "DigestAuthenticationProvider.superDigest"

# FAST's 200 ms tick, with room for sessions: at tickTime=200 the default
# maxSessionTimeout is 20 ticks (4 s), short for a session that rides out a re-election on
# a loaded machine.
SETTINGS: Mapping[str, str] = {**FAST, "reconfigEnabled": "true", "maxSessionTimeout": "30000"}

CONFIG_PATH = "/zookeeper/config"


# ------------------------------------------------------------------------------ configs


@dataclasses.dataclass(frozen=True)
class Config:
    """A membership as ``QuorumMaj#toString`` prints it, parsed."""

    version: int
    members: Mapping[int, str]  # sid -> the server line's value, trimmed

    def voters(self) -> set[int]:
        return {sid for sid, v in self.members.items() if not _role_is(v, "observer")}

    def observers(self) -> set[int]:
        return {sid for sid, v in self.members.items() if _role_is(v, "observer")}

    def __str__(self) -> str:
        lines = [f"server.{sid}={v}" for sid, v in sorted(self.members.items())]
        return "\n".join([*lines, f"version={self.version:x}"])


def _role_is(value: str, role: str) -> bool:
    addrs = value.split(";", 1)[0]
    return addrs.rsplit(":", 1)[-1].strip().lower() == role


_SERVER_RE = re.compile(r"^server\.(\d+)\s*=\s*(.*?)\s*$")


def parse_config(text: str) -> Config:
    """``server.N=...`` and ``version=<hex>`` lines (anything else is an error)."""
    members: dict[int, str] = {}
    version: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _SERVER_RE.match(line)
        if m:
            sid = int(m[1])
            assert sid not in members, f"server.{sid} twice in:\n{text}"
            members[sid] = m[2]
        elif line.startswith("version="):
            version = int(line.partition("=")[2], 16)
        else:
            raise AssertionError(f"unexpected line {line!r} in config:\n{text}")
    assert version is not None, f"no version in config:\n{text}"
    return Config(version, members)


def conf_membership(text: str) -> Config:
    """The ``membership:`` section of a ``conf`` answer."""
    _, sep, membership = text.partition("membership: \n")
    assert sep, f"no membership in conf:\n{text}"
    return parse_config(membership)


def conf_value(text: str, key: str) -> str | None:
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and k == key:
            return v
    return None


# ------------------------------------------------------------------------------ a session


class Session:
    """A client session that must survive every change: its id, its ephemeral node,
    and every state it went through (``LOST`` would be an expired session)."""

    def __init__(self, zk: KazooClient, ephemeral: str) -> None:
        self.zk = zk
        self.ephemeral = ephemeral
        self.states: list[str] = []
        self._lock = threading.Lock()
        zk.add_listener(self._on_state)
        self.session_id: int = zk.client_id[0]

    def _on_state(self, state: str) -> None:
        with self._lock:
            self.states.append(str(state))

    def write(self, path: str, data: bytes, *, timeout: float = 30.0, tries: int = 3) -> None:
        """Create ``path``; acknowledged.  A connection lost under the request (its server
        restarting) leaves the outcome unknown: reconnect, and create it again unless it
        is there (with our data)."""
        for attempt in range(tries):
            try:
                assert self.zk.create(path, data) == path
                return
            except ConnectionLoss:
                if attempt == tries - 1:
                    raise
            except NodeExistsError:
                if attempt == 0:
                    raise
                assert self.zk.get(path)[0] == data, path
                return
            self.check(timeout=timeout)

    def check(self, *, timeout: float = 30.0) -> None:
        """Connected again (kazoo reconnects by itself), with the same session id."""
        wait_for(
            lambda: self.zk.state == KazooState.CONNECTED,
            timeout=timeout,
            what="the session's client to be connected",
        )
        with self._lock:
            states = list(self.states)
        assert KazooState.LOST not in states, f"the session was lost: {states}"
        client_id = self.zk.client_id
        assert client_id is not None and client_id[0] == self.session_id, (
            f"session 0x{self.session_id:x} became {client_id!r}"
        )


class ConfigWatches:
    """Which servers' ``/zookeeper/config`` watches fired, and with what."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: dict[int, list[str]] = {}

    def callback(self, sid: int) -> Callable[[WatchedEvent], None]:
        def fired(event: WatchedEvent) -> None:
            with self._lock:
                self.events.setdefault(sid, []).append(f"{event.type}:{event.path}")

        return fired

    def wait(self, sids: Sequence[int], *, timeout: float = 30.0) -> None:
        """Each of ``sids`` notified NodeDataChanged on /zookeeper/config, once."""
        want = [f"{EventType.CHANGED}:{CONFIG_PATH}"]

        def done() -> bool:
            with self._lock:
                return all(sid in self.events for sid in sids)

        try:
            wait_for(done, timeout=timeout, what=f"config watches to fire on {list(sids)}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: fired {self.events}") from None
        with self._lock:
            for sid in sids:
                assert self.events[sid] == want, (sid, self.events[sid])


class Writer:
    """A client writing ``<base>/n-<i>`` one create at a time, each waited for, until
    stopped: writes in flight while a reconfig is (the leader then needs acks from a
    quorum of the old config and of the new one)."""

    def __init__(self, zk: KazooClient, base: str) -> None:
        self.zk = zk
        self.base = base
        self.acked: list[str] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        zk.ensure_path(base)
        self._thread = threading.Thread(target=self._run, name=f"writer {base}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        try:
            while not self._stop.is_set():
                path = f"{self.base}/n-{i}"
                self.zk.create(path, str(i).encode())
                self.acked.append(path)
                i += 1
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def wait_for(self, count: int, *, timeout: float = 30.0) -> None:
        wait_for(
            lambda: len(self.acked) >= count or self.error is not None,
            timeout=timeout,
            what=f"{count} writes acknowledged",
        )
        assert self.error is None, f"a write failed: {self.error!r}"

    def stop(self) -> list[str]:
        """Stop; every write it made was acknowledged (else the error is raised)."""
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the writer is stuck"
        if self.error is not None:
            raise AssertionError(f"a write failed: {self.error!r}") from self.error
        return list(self.acked)


# ------------------------------------------------------------------------------ the cluster


@dataclasses.dataclass
class Cluster:
    """Servers, Java or zkquorum, each with the zoo.cfg membership a test gives it."""

    install: ZooKeeperInstall
    servers: dict[int, JavaServer]
    settings: Mapping[str, str]
    roles: dict[int, str] = dataclasses.field(default_factory=dict)
    """Each server's role in its own first zoo.cfg (participant unless said)."""
    changed_at: float = 0.0
    """When the last reconfig was answered, or the last server (re)started (monotonic)."""

    # -- who is what ------------------------------------------------------------------

    def is_py(self, sid: int) -> bool:
        return isinstance(self.servers[sid], PyServer)

    def kind(self, sid: int) -> str:
        return "zkquorum" if self.is_py(sid) else "Java"

    def running(self) -> list[int]:
        return sorted(sid for sid, s in self.servers.items() if s.running())

    def spec(self, sid: int, role: str = "participant") -> str:
        """``server.N=host:quorum:election:role;host:client`` (an incremental joiner's
        string: 3.8 wants the client address)."""
        s = self.servers[sid]
        return (
            f"server.{sid}={s.host}:{s.quorum_port}:{s.election_port}:{role};"
            f"{s.host}:{s.client_port}"
        )

    def hosts(self, sids: Sequence[int]) -> str:
        return ",".join(f"{self.servers[s].host}:{self.servers[s].client_port}" for s in sids)

    # -- files and processes ----------------------------------------------------------

    def write_config(
        self, sid: int, members: Sequence[int], *, joiners: Sequence[int] = ()
    ) -> None:
        """``sid``'s zoo.cfg: the settings, its client port, and a server line for each
        of ``members`` (``clientPort`` style: no client address) and of ``joiners``
        (with their client address, as the reconfig that adds them gives it)."""
        s = self.servers[sid]
        s.data_dir.mkdir(parents=True, exist_ok=True)
        write_log4j_properties(s.conf_dir)
        lines = [f"{k}={v}" for k, v in self.settings.items()]
        lines += [
            f"dataDir={s.data_dir}",
            f"clientPort={s.client_port}",
            f"clientPortAddress={s.host}",
        ]
        if self.is_py(sid):
            lines.append(f"{SUPER_DIGEST_KEY}={SUPER_DIGEST}")
        for m in sorted(members):
            other = self.servers[m]
            role = self.roles.get(m, "participant")
            lines.append(
                f"server.{m}={other.host}:{other.quorum_port}:{other.election_port}:{role}"
            )
        lines += [self.spec(j, self.roles.get(j, "participant")) for j in joiners]
        s.cfg_path.write_text("\n".join(lines) + "\n")
        (s.data_dir / "myid").write_text(f"{sid}\n")

    def start(self, sids: Sequence[int]) -> None:
        for sid in sids:
            self.servers[sid].start(self.install)
        self.changed_at = time.monotonic()

    def start_java_first(self, sids: Sequence[int], *, timeout: float = 30.0) -> None:
        """The Java servers of ``sids``, each into its first election, then the zkquorum
        ones (a JVM takes seconds to start; a zkquorum peer would settle without it)."""
        java = [sid for sid in sids if not self.is_py(sid)]
        self.start(java)
        for sid in java:
            wait_for(
                lambda sid=sid: NEW_ELECTION in self.log(sid) or self.check_alive([sid]),
                timeout=timeout,
                what=f"Java server {sid} to start its election",
            )
        self.start([sid for sid in sids if self.is_py(sid)])

    def start_py_first(self, sids: Sequence[int], *, timeout: float = 30.0) -> None:
        """The zkquorum servers of ``sids``, each into its first election, then Java."""
        py = [sid for sid in sids if self.is_py(sid)]
        self.start(py)
        for sid in py:
            wait_for(
                lambda sid=sid: NEW_ELECTION in self.log(sid) or self.check_alive([sid]),
                timeout=timeout,
                what=f"zkquorum server {sid} to start its election",
            )
        self.start([sid for sid in sids if not self.is_py(sid)])

    def stop(self, sid: int) -> None:
        self.servers[sid].stop()

    def restart(self, sid: int) -> None:
        """Stop (TERM, by pid) and start again, from the files it wrote."""
        assert self.servers[sid].stop() is not None, f"server {sid} was not started"
        self.start([sid])

    def stop_all(self) -> None:
        for s in self.servers.values():
            s.stop()

    def check_alive(self, sids: Sequence[int]) -> None:
        for sid in sids:
            proc = self.servers[sid].proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise AssertionError(f"{self.kind(sid)} server {sid} is not running (exit {code})")

    def log(self, sid: int) -> str:
        return self.servers[sid].log()

    def logs(self) -> str:
        return "".join(
            f"\n===== {self.kind(sid)} server {sid} ({s.root}) =====\n{s.log()}"
            for sid, s in sorted(self.servers.items())
            if s.proc is not None
        )

    def diffs_sent(self, leader: int, learner: int) -> int:
        """How many times ``leader`` logged syncing ``learner`` by DIFF (Java
        ``LearnerHandler``: ``Sending DIFF zxid=0x.. for peer sid: N``; zkquorum:
        ``syncing sid N with DIFF``)."""
        if self.is_py(leader):
            pattern = rf"syncing sid {learner} with DIFF"
        else:
            pattern = rf"Sending DIFF zxid=0x[0-9a-f]+\s+for peer sid: {learner}\b"
        return len(re.findall(pattern, self.log(leader)))

    def dynamic_files(self, sid: int) -> list[str]:
        conf = self.servers[sid].conf_dir
        return sorted(p.name for p in conf.glob("zoo.cfg.dynamic*") if not p.name.endswith(".tmp"))

    def dynamic_file_matches(self, sid: int, expected: Config) -> bool:
        """``<zoo.cfg>.dynamic.<hex version>`` holds ``expected`` (no version line: it is
        in the name) and zoo.cfg names it as its ``dynamicConfigFile``."""
        cfg = self.servers[sid].cfg_path
        dyn = cfg.with_name(f"{cfg.name}.dynamic.{expected.version:x}")
        try:
            text = dyn.read_text()
            static = cfg.read_text()
        except FileNotFoundError:
            return False
        assert "version=" not in text, f"{dyn} has a version line:\n{text}"
        written = parse_config(text + f"\nversion={expected.version:x}")
        assert written == expected, f"{dyn}:\n{text}\nexpected:\n{expected}"
        pointer = [line for line in static.splitlines() if line.startswith("dynamicConfigFile=")]
        assert len(pointer) == 1, f"{cfg}:\n{static}"
        assert not any(line.startswith("server.") for line in static.splitlines()), static
        return Path(pointer[0].partition("=")[2]).resolve() == dyn.resolve()

    # -- observations -----------------------------------------------------------------

    def srvr(self, sid: int) -> dict[str, str] | None:
        return self.servers[sid].srvr()

    def mode(self, sid: int) -> str | None:
        info = self.srvr(sid)
        return info.get("Mode") if info else None

    def zxid(self, sid: int) -> int:
        """The ``srvr`` Zxid (the last txn it applied)."""
        info = self.srvr(sid)
        assert info is not None and "Zxid" in info, f"{self.kind(sid)} server {sid}: {info}"
        return int(info["Zxid"], 16)

    def conf_text(self, sid: int) -> str:
        s = self.servers[sid]
        return four_letter_word(s.host, s.client_port, "conf")

    def conf(self, sid: int) -> Config:
        return conf_membership(self.conf_text(sid))

    def describe(self, sids: Sequence[int] | None = None) -> str:
        rows = []
        for sid in self.running() if sids is None else sids:
            info = self.srvr(sid) or {}
            try:
                conf = str(self.conf(sid)).replace("\n", " ")
            except (OSError, AssertionError) as exc:
                conf = f"? ({exc})"
            rows.append(
                f"  {self.kind(sid):8} {sid}: mode={info.get('Mode')} zxid={info.get('Zxid')} "
                f"conf: {conf}"
            )
        return "\n".join(rows)

    def wait_modes(
        self, expected: Mapping[int, str | set[str]], *, timeout: float = 40.0
    ) -> dict[int, str]:
        """Every server of ``expected`` serves in (one of) its mode(s), one leader."""

        def check() -> dict[int, str] | None:
            self.check_alive(list(expected))
            modes: dict[int, str] = {}
            for sid, want in expected.items():
                mode = self.mode(sid)
                ok = {want} if isinstance(want, str) else want
                if mode not in ok:
                    return None
                modes[sid] = mode
            if list(modes.values()).count("leader") != 1:
                return None
            return modes

        try:
            return wait_for(check, timeout=timeout, what=f"modes {dict(expected)}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; now:\n{self.describe(list(expected))}") from None

    def leader(self, sids: Sequence[int]) -> int:
        (leader,) = [sid for sid in sids if self.mode(sid) == "leader"]
        return leader

    # -- clients ------------------------------------------------------------------------

    @contextlib.contextmanager
    def client(
        self, sids: Sequence[int], *, admin: bool = False, timeout: float = 20.0
    ) -> Iterator[KazooClient]:
        """A kazoo client of (some of) ``sids``; ``admin``: authenticated as super."""
        zk = KazooClient(
            hosts=self.hosts(sids),
            timeout=10.0,
            connection_retry={"max_tries": 5, "delay": 0.2, "max_delay": 1.0},
            auth_data=[SUPER_AUTH] if admin else None,
        )
        zk.start(timeout=timeout)
        try:
            yield zk
        finally:
            with contextlib.suppress(Exception):
                zk.stop()
            zk.close()

    @contextlib.contextmanager
    def session(self, sids: Sequence[int], ephemeral: str = "/session-owned") -> Iterator[Session]:
        """The long-lived session (a client of ``sids`` that reconnects by itself), with
        an ephemeral node; closed after."""
        zk = KazooClient(hosts=self.hosts(sids), timeout=20.0)
        zk.start(timeout=30.0)
        try:
            zk.create(ephemeral, b"owned", ephemeral=True)
            yield Session(zk, ephemeral)
        finally:
            with contextlib.suppress(Exception):
                zk.stop()
            zk.close()

    @contextlib.contextmanager
    def config_watches(self, sids: Sequence[int]) -> Iterator[ConfigWatches]:
        """A data watch on ``/zookeeper/config`` set through each of ``sids`` (a client of
        that server alone), the way clients follow the membership (``getConfig`` with a
        watch)."""
        watches = ConfigWatches()
        with contextlib.ExitStack() as stack:
            for sid in sids:
                zk = stack.enter_context(self.client([sid]))
                zk.get(CONFIG_PATH, watch=watches.callback(sid))
            yield watches

    @contextlib.contextmanager
    def writer(self, sid: int, base: str = "/load") -> Iterator[Writer]:
        """A :class:`Writer` through server ``sid``; its client closed after."""
        with self.client([sid]) as zk:
            w = Writer(zk, base)
            try:
                yield w
            finally:
                w._stop.set()

    def check_writes(self, base: str, acked: Sequence[str], sids: Sequence[int]) -> None:
        """Every acknowledged write is on every server (after ``sync``), in order."""
        for sid in sids:
            with self.client([sid]) as zk:
                zk.sync(base)
                children = set(zk.get_children(base))
            missing = [p for p in acked if p.rsplit("/", 1)[1] not in children]
            assert not missing, f"{self.kind(sid)} server {sid} lacks {missing[:5]}..."

    def node_config(self, sid: int) -> tuple[Config, Any]:
        """``/zookeeper/config`` as server ``sid`` serves it, after a ``sync``."""
        with self.client([sid]) as zk:
            zk.sync(CONFIG_PATH)
            data, stat = zk.get(CONFIG_PATH)
        return parse_config(data.decode()), stat

    def reconfig(
        self,
        via: Sequence[int],
        *,
        joining: str | None = None,
        leaving: str | None = None,
        new_members: str | None = None,
    ) -> Config:
        """One reconfig, authenticated as super, through a client of ``via``; the config
        its answer carries (3.8: the committed config, version = the txn's zxid)."""
        with self.client(via, admin=True) as zk:
            data, stat = zk.reconfig(joining=joining, leaving=leaving, new_members=new_members)
        config = parse_config(data.decode())
        assert stat.mzxid == config.version, (hex(stat.mzxid), str(config))
        self.changed_at = time.monotonic()
        return config

    # -- the checks after a change ------------------------------------------------------

    def wait_config(
        self, expected: Config, sids: Sequence[int] | None = None, *, timeout: float = 40.0
    ) -> None:
        """Every server's ``conf`` shows ``expected``."""
        chosen = list(self.running() if sids is None else sids)
        last: dict[int, str] = {}

        def check() -> bool:
            self.check_alive(chosen)
            for sid in chosen:
                try:
                    got = self.conf(sid)
                except (OSError, AssertionError) as exc:
                    last[sid] = f"no answer: {exc}"
                    return False
                if got != expected:
                    last[sid] = str(got)
                    return False
                last.pop(sid, None)
            return True

        try:
            wait_for(check, timeout=timeout, what=f"conf on {chosen} to show\n{expected}")
        except TimeoutError as exc:
            seen = "\n".join(f"  {self.kind(s)} {s}: {t}" for s, t in sorted(last.items()))
            raise AssertionError(f"{exc}\nlast seen:\n{seen}\n{self.describe(chosen)}") from None

    def check_step(
        self, expected: Config, session: Session, tag: str, *, timeout: float = 40.0
    ) -> None:
        """After a change: the same membership everywhere (``conf`` and
        ``/zookeeper/config``), the session kept, a write acknowledged and readable
        on every running server."""
        sids = self.running()
        self.wait_config(expected, sids, timeout=timeout)
        took = time.monotonic() - self.changed_at
        print(f"{tag}: conf agreed on {sids} {took:.2f} s after the change")
        confs = {sid: self.conf_text(sid) for sid in sids}
        texts = {sid: text.partition("membership: \n")[2] for sid, text in confs.items()}
        assert len(set(texts.values())) == 1, f"conf membership texts differ: {texts}"
        for sid, text in confs.items():
            # QuorumPeer#getLearnerType: an observer of the config, else a participant
            # (also when not a member: "a non-voting participant").
            want = "1" if sid in expected.observers() else "0"
            assert conf_value(text, "peerType") == want, f"server {sid}'s conf:\n{text}"
        for sid in sids:
            wait_for(
                lambda sid=sid: self.dynamic_file_matches(sid, expected),
                timeout=timeout,
                what=f"{self.kind(sid)} server {sid} to write its dynamic config file",
            )
        session.check(timeout=timeout)
        path = f"/after-{tag}"
        session.write(path, tag.encode(), timeout=timeout)
        served_bytes: dict[int, bytes] = {}
        for sid in sids:
            with self.client([sid]) as zk:
                zk.sync(CONFIG_PATH)
                data, stat = zk.get(CONFIG_PATH)
                served_bytes[sid] = data
                served = parse_config(data.decode())
                assert served == expected, (
                    f"{self.kind(sid)} server {sid} serves {CONFIG_PATH}:\n{served}\n"
                    f"expected:\n{expected}"
                )
                assert stat.version == -1 and stat.aversion == -1, (sid, stat)
                zk.sync(path)
                assert zk.get(path)[0] == tag.encode(), (sid, path)
                owner = zk.exists(session.ephemeral)
                assert owner is not None, f"{session.ephemeral} gone on server {sid}"
                assert owner.ephemeralOwner == session.session_id, (sid, owner)
        # Small sids: 3.8's HashMap order is ascending, and so is ours; the bytes agree.
        assert len(set(served_bytes.values())) == 1, served_bytes


def layout(
    install: ZooKeeperInstall,
    base_dir: Path,
    *,
    java_sids: Sequence[int] = (),
    py_sids: Sequence[int] = (),
    settings: Mapping[str, str] = SETTINGS,
) -> Cluster:
    """Directories and free ports for every sid (no config written, nothing started)."""
    sids = sorted({*java_sids, *py_sids})
    ports = free_ports(3 * len(sids))
    servers: dict[int, JavaServer] = {}
    for i, sid in enumerate(sids):
        fields: dict[str, Any] = {
            "sid": sid,
            "root": base_dir / f"zk{sid}",
            "quorum_port": ports[3 * i],
            "election_port": ports[3 * i + 1],
            "client_port": ports[3 * i + 2],
        }
        if sid in py_sids:
            servers[sid] = PyServer(**fields)
        else:
            fields["jvm_flags"] = (f"-Dzookeeper.{SUPER_DIGEST_KEY}={SUPER_DIGEST}",)
            servers[sid] = JavaServer(**fields)
    return Cluster(install, servers, settings)


ClusterFactory = Callable[..., Cluster]


@pytest.fixture(name="reconfig_cluster")
def reconfig_cluster_fixture(
    request: pytest.FixtureRequest, zookeeper: ZooKeeperInstall, tmp_path: Path
) -> Iterator[ClusterFactory]:
    """``reconfig_cluster(java_sids=[1, 2], py_sids=[3])`` -> :class:`Cluster`.

    Every cluster made is stopped (by pid) at teardown; on failure every server's log is
    attached to the report.
    """
    made: list[Cluster] = []

    def factory(**kwargs: Any) -> Cluster:
        cluster = layout(zookeeper, tmp_path / f"cluster{len(made)}", **kwargs)
        made.append(cluster)
        sources = getattr(request.node, "zk_log_sources", [])
        sources.append((f"server logs, cluster {len(made) - 1}", cluster.logs))
        request.node.zk_log_sources = sources
        return cluster

    try:
        yield factory
    finally:
        for cluster in made:
            cluster.stop_all()


__all__ = [
    "SETTINGS",
    "Cluster",
    "ClusterFactory",
    "Config",
    "ConfigWatches",
    "Session",
    "Writer",
    "conf_membership",
    "conf_value",
    "layout",
    "parse_config",
    "reconfig_cluster_fixture",
]
