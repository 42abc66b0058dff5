"""Mixed ensembles for issue 7: real ZooKeeper 3.8 servers and zkquorum peers, any seat.

Built on :mod:`tests.peer.cluster` (which lays out one membership whose sids are Java or
``zkquorum run`` processes); this module adds what the scenarios check:

* :meth:`Mixed.wait_agreement` -- every running server answers ``srvr`` with the expected
  mode, exactly one is the leader, every server's ``currentEpoch`` file holds the same
  epoch E (Java and zkquorum write it in the same format), the leader's ``srvr`` Zxid is
  in epoch E and nobody's Zxid is in a later epoch; zkquorum peers also logged
  ``established: leader=L epoch=E``.  (A Java follower synced by an empty DIFF at zxid 0
  keeps ``Zxid: 0x0`` -- spec B2 -- so the Zxid alone cannot carry the epoch.)
* :meth:`Mixed.assert_stable` -- for a window, ``srvr`` keeps answering the same modes and
  epoch, and no server logs a new election (``New election. My id``, logged by both).
* :meth:`Mixed.assert_java_config_unchanged` -- issue 7 scenario 7: every Java server's
  ``conf`` membership is the one it started with.
* :meth:`Mixed.timings` -- election and establishment times, as each side logs them.

The fixture ``mixed`` makes ensembles that are stopped (by pid) at teardown; when a test
fails, the logs of every server, Java and zkquorum, are attached to the report (the
``zk_log_sources`` hook of ``tests/interop/conftest.py``).

Stability windows: ``ZKQUORUM_STABLE_SECONDS`` sets every window; unset, one
representative scenario (a zkquorum leader with Java followers) holds for 30 s of
heartbeats and the others for 10 s (50 ticks at tickTime=200 ms: 100 PINGs, 10 x the
syncLimit timeout of 1 s), which keeps the whole interop suite (tests/interop)
at about 3 minutes on a 2-core machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient

from tests.interop.zk import ZooKeeperInstall
from tests.interop.zkserver import JavaServer, four_letter_word, make_ensemble, wait_for
from tests.peer.cluster import Ensemble, PyServer, ensemble

STABLE_ENV = "ZKQUORUM_STABLE_SECONDS"
LONG_STABLE_SECONDS = 30.0
SHORT_STABLE_SECONDS = 10.0

FAST = {"tickTime": "200", "initLimit": "10", "syncLimit": "5", "4lw.commands.whitelist": "*"}

NEW_ELECTION = "New election. My id"
_ESTABLISHED_RE = re.compile(r"established: leader=(\d+) epoch=(\d+)")
_TOOK_RE = re.compile(r"^(\S+ \S+) .*?(LEADING|FOLLOWING|OBSERVING) - LEADER ELECTION TOOK - (\d+)")
# zkquorum: established; Java leader: quorum of NEWLEADER acks; Java learner: UPTODATE.
_ESTABLISHED_LINE = re.compile(
    r"established: leader=|Have quorum of supporters|Learner@\d+\] - .*UPTODATE"
)


def stable_seconds(*, representative: bool = False) -> float:
    """The stability window: ``ZKQUORUM_STABLE_SECONDS`` if set, else 30 s or 10 s."""
    env = os.environ.get(STABLE_ENV, "").strip()
    if env:
        return float(env)
    return LONG_STABLE_SECONDS if representative else SHORT_STABLE_SECONDS


def zxid_epoch(zxid: int) -> int:
    return zxid >> 32


def _log_time(stamp: str) -> float:
    return time.mktime(time.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")) + int(stamp[20:23]) / 1000


@dataclasses.dataclass(frozen=True)
class Agreement:
    """What everyone agreed on."""

    leader: int
    epoch: int
    modes: Mapping[int, str]
    zxids: Mapping[int, int]


@dataclasses.dataclass
class Mixed:
    """A mixed ensemble and the checks of issue 7."""

    ens: Ensemble
    install: ZooKeeperInstall

    # -- who is what ------------------------------------------------------------------

    @property
    def servers(self) -> dict[int, JavaServer]:
        return self.ens.servers

    def is_py(self, sid: int) -> bool:
        return isinstance(self.servers[sid], PyServer)

    def kind(self, sid: int) -> str:
        return "zkquorum" if self.is_py(sid) else "Java"

    def java_sids(self) -> list[int]:
        return [sid for sid in self.servers if not self.is_py(sid)]

    def py_sids(self) -> list[int]:
        return [sid for sid in self.servers if self.is_py(sid)]

    def running(self) -> list[int]:
        return [sid for sid, s in self.servers.items() if s.running()]

    # -- processes --------------------------------------------------------------------

    def start(self, sids: Sequence[int]) -> None:
        for sid in sids:
            self.servers[sid].start(self.install)

    def kill(self, sid: int) -> None:
        """kill -9 (a crash), by pid."""
        self.servers[sid].kill()

    def stop(self, sid: int) -> None:
        self.servers[sid].stop()

    # -- observations -----------------------------------------------------------------

    def srvr(self, sid: int) -> dict[str, str] | None:
        return self.servers[sid].srvr()

    def zxid(self, sid: int) -> int | None:
        info = self.srvr(sid)
        if not info or "Zxid" not in info:
            return None
        return int(info["Zxid"], 16)

    def current_epoch(self, sid: int) -> int | None:
        path = self.servers[sid].data_dir / "version-2" / "currentEpoch"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def log(self, sid: int) -> str:
        return self.servers[sid].log()

    def election_count(self, sid: int) -> int:
        return self.log(sid).count(NEW_ELECTION)

    def established(self, sid: int) -> tuple[int, int] | None:
        """zkquorum only: the last ``established: leader=L epoch=E`` it logged."""
        found = _ESTABLISHED_RE.findall(self.log(sid))
        return (int(found[-1][0]), int(found[-1][1])) if found else None

    def check_alive(self, sids: Sequence[int]) -> None:
        for sid in sids:
            proc = self.servers[sid].proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise AssertionError(f"{self.kind(sid)} server {sid} is not running (exit {code})")

    def start_java_first(self, *, timeout: float = 30.0) -> None:
        """Start the Java servers, wait until each is in its first election, then zkquorum.

        JVMs take a second or more to start; this puts every server in the same election
        when the Java side must take part (otherwise the zkquorum peers, up in a few
        milliseconds, may settle before a JVM is listening).
        """
        java = [sid for sid in self.java_sids() if not self.servers[sid].running()]
        self.start(java)
        for sid in java:
            wait_for(
                lambda sid=sid: NEW_ELECTION in self.log(sid) or self.check_alive([sid]),
                timeout=timeout,
                what=f"Java server {sid} to start its election",
            )
        self.start([sid for sid in self.py_sids() if not self.servers[sid].running()])

    def settle(
        self,
        *,
        leader_in: Sequence[int],
        observers: Sequence[int] = (),
        sids: Sequence[int] | None = None,
        timeout: float = 40.0,
    ) -> Agreement:
        """One leader among ``leader_in``; the rest of ``sids`` follow (or observe)."""
        chosen = list(self.running() if sids is None else sids)
        leader = self.ens.wait_for_leader(chosen, timeout=timeout)
        assert leader in leader_in, (
            f"{self.kind(leader)} server {leader} leads; expected one of {list(leader_in)}"
        )
        expected = {
            sid: "leader" if sid == leader else "observer" if sid in observers else "follower"
            for sid in chosen
        }
        return self.wait_agreement(expected, timeout=timeout)

    # -- agreement --------------------------------------------------------------------

    def _agreement(self, expected: Mapping[int, str]) -> Agreement | None:
        self.check_alive(list(expected))
        modes: dict[int, str] = {}
        zxids: dict[int, int] = {}
        for sid in expected:
            info = self.srvr(sid)
            if not info or "Mode" not in info or "Zxid" not in info:
                return None
            modes[sid] = info["Mode"]
            zxids[sid] = int(info["Zxid"], 16)
        if modes != dict(expected):
            return None
        leaders = [sid for sid, m in modes.items() if m == "leader"]
        if len(leaders) != 1:
            return None
        leader = leaders[0]
        epochs = {sid: self.current_epoch(sid) for sid in expected}
        epoch = epochs[leader]
        if epoch is None or any(e != epoch for e in epochs.values()):
            return None
        if zxid_epoch(zxids[leader]) != epoch:
            return None
        if any(zxid_epoch(z) > epoch for z in zxids.values()):
            return None
        for sid in expected:
            if self.is_py(sid) and self.established(sid) != (leader, epoch):
                return None
        return Agreement(leader, epoch, modes, zxids)

    def wait_agreement(self, expected: Mapping[int, str], *, timeout: float = 40.0) -> Agreement:
        """Wait until the running servers ``expected`` agree (see the module docstring)."""
        last: list[str] = []

        def check() -> Agreement | None:
            got = self._agreement(expected)
            if got is None:
                last[:] = [self.describe(list(expected))]
            return got

        try:
            return wait_for(check, timeout=timeout, what=f"agreement on modes {dict(expected)}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; last seen:\n{last[0] if last else '?'}") from None

    def describe(self, sids: Sequence[int]) -> str:
        rows = []
        for sid in sids:
            info = self.srvr(sid) or {}
            rows.append(
                f"  {self.kind(sid):8} {sid}: mode={info.get('Mode')} zxid={info.get('Zxid')} "
                f"currentEpoch={self.current_epoch(sid)} elections={self.election_count(sid)}"
                + (f" established={self.established(sid)}" if self.is_py(sid) else "")
            )
        return "\n".join(rows)

    def assert_stable(self, agreement: Agreement, seconds: float, *, interval: float = 0.5) -> None:
        """No new election for ``seconds``: modes, epochs and election counts hold."""
        sids = list(agreement.modes)
        counts = {sid: self.election_count(sid) for sid in sids}
        deadline = time.monotonic() + seconds
        polls = 0
        while True:
            self.check_alive(sids)
            for sid in sids:
                info = self.srvr(sid)
                mode = info.get("Mode") if info else None
                assert mode == agreement.modes[sid], (
                    f"after {polls} polls, {self.kind(sid)} server {sid} reports mode {mode!r} "
                    f"instead of {agreement.modes[sid]!r}:\n{self.describe(sids)}"
                )
                assert info is not None
                zxid = int(info["Zxid"], 16)
                assert zxid_epoch(zxid) <= agreement.epoch, (sid, hex(zxid), agreement)
                assert self.current_epoch(sid) == agreement.epoch, (sid, agreement)
            polls += 1
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)  # the poll interval of an observation window
        after = {sid: self.election_count(sid) for sid in sids}
        assert after == counts, f"a new election during the stable window: {counts} -> {after}"
        for sid in sids:
            if self.is_py(sid):
                assert self.established(sid) == (agreement.leader, agreement.epoch), sid

    def wait_zxids_equal(self, sids: Sequence[int], *, timeout: float = 20.0) -> int:
        """Wait until every server in ``sids`` reports the same ``srvr`` Zxid; return it."""

        def same() -> int | None:
            zxids = {self.zxid(sid) for sid in sids}
            if len(zxids) == 1:
                (z,) = zxids
                return z if z is not None else None
            return None

        try:
            return wait_for(same, timeout=timeout, what=f"equal zxids on {list(sids)}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}:\n{self.describe(list(sids))}") from None

    # -- a real client ----------------------------------------------------------------

    @contextlib.contextmanager
    def client(self, sids: Sequence[int], *, timeout: float = 20.0) -> Iterator[KazooClient]:
        """A kazoo client connected to (some of) the servers ``sids``, Java or zkquorum;
        closed after."""
        assert sids, "no server to connect to"
        hosts = ",".join(f"{self.servers[s].host}:{self.servers[s].client_port}" for s in sids)
        zk = KazooClient(hosts=hosts, timeout=10.0, connection_retry={"max_tries": 3})
        zk.start(timeout=timeout)
        try:
            yield zk
        finally:
            with contextlib.suppress(Exception):
                zk.stop()
            zk.close()

    def sync_modes(self, leader: int, learner: int) -> list[str]:
        """How ``leader`` synced ``learner``, in order, as the leader logged it.

        Java (``LearnerHandler#syncFollower``): ``Synchronizing with Learner sid: N`` then,
        on the same LearnerHandler thread, ``Sending DIFF`` / ``Sending snapshot`` /
        ``Sending TRUNC``.  zkquorum: ``syncing sid N with DIFF|SNAP|TRUNC``.
        """
        text = self.log(leader)
        if self.is_py(leader):
            return re.findall(rf"syncing sid {learner} with (\w+)", text)
        modes: list[str] = []
        threads: set[str] = set()
        for line in text.splitlines():
            m = re.search(r"\[(LearnerHandler-[^:]+:\d+):", line)
            if m is None:
                continue
            if f"Synchronizing with Learner sid: {learner} " in line:
                threads.add(m[1])
            elif m[1] in threads:
                if "Sending snapshot" in line:
                    modes.append("SNAP")
                elif "Sending DIFF" in line:
                    modes.append("DIFF")
                elif "Sending TRUNC" in line:
                    modes.append("TRUNC")
                else:
                    continue
                threads.discard(m[1])
        return modes

    # -- scenario 7: Java servers keep their own membership ---------------------------

    def java_membership(self, sid: int) -> str:
        text = four_letter_word(self.servers[sid].host, self.servers[sid].client_port, "conf")
        _, sep, membership = text.partition("membership: \n")
        assert sep, f"Java server {sid}: no membership in conf:\n{text}"
        return membership.strip()

    def expected_membership(self) -> str:
        lines = [s.server_line() for _, s in sorted(self.servers.items())]
        return "\n".join([*lines, "version=0"])

    def assert_java_config_unchanged(self, sids: Sequence[int] | None = None) -> None:
        """Every (chosen, serving) Java server's ``conf`` is the zoo.cfg it started with."""
        expected = self.expected_membership()
        for sid in self.java_sids() if sids is None else sids:
            assert self.java_membership(sid) == expected, f"Java server {sid} changed config"
            cfg = self.servers[sid].cfg_path.read_text()
            assert all(line in cfg for line in expected.splitlines()[:-1]), cfg
            assert not list(self.servers[sid].conf_dir.glob("zoo.cfg.dynamic*")), sid

    # -- reporting --------------------------------------------------------------------

    def timings(self) -> list[str]:
        """Election and establishment times, as each server logged them (ms).

        Election: ``LEADER ELECTION TOOK`` (both sides).  Establishment: from that line to
        zkquorum's ``established`` line, or to the Java leader's ``Have quorum of
        supporters`` / the Java learner's ``Learner ... UPTODATE`` equivalent.
        """
        rows = []
        for sid in sorted(self.servers):
            rows.append(f"{self.kind(sid)} {sid}: {establishment_times(self.log(sid))}")
        return rows

    def logs(self) -> str:
        return "".join(
            f"\n===== {self.kind(sid)} server {sid} ({s.root}) =====\n{s.log()}"
            for sid, s in sorted(self.servers.items())
        )


def establishment_times(log: str) -> list[tuple[str, int, int | None]]:
    """``(state, election ms, establishment ms)`` per election in one server's log.

    Establishment runs from the decision to the first line matching
    :data:`_ESTABLISHED_LINE` before the next decision (None when there is none).
    """
    out: list[tuple[str, int, int | None]] = []
    decided_at: float | None = None
    for line in log.splitlines():
        m = _TOOK_RE.match(line)
        if m is not None:
            decided_at = _log_time(m[1])
            out.append((m[2], int(m[3]), None))
        elif decided_at is not None and _ESTABLISHED_LINE.search(line):
            stamp = line.split(" [", 1)[0]
            state, took, _ = out[-1]
            out[-1] = (state, took, round((_log_time(stamp) - decided_at) * 1000))
            decided_at = None
    return out


MixedFactory = Callable[..., Mixed]


@contextlib.contextmanager
def _multi_address_ensemble(
    base_dir: Path,
    install: ZooKeeperInstall,
    *,
    py_sids: Sequence[int],
    java_sids: Sequence[int],
    extra_hosts: Mapping[int, Sequence[str]],
    settings: Mapping[str, str],
    start: bool = True,
) -> Iterator[Ensemble]:
    """Like :func:`tests.peer.cluster.ensemble`, with more addresses per server.

    Java servers get ``-Dzookeeper.multiAddress.enabled=true`` (3.8 reads only the system
    property) and DEBUG logging of ``QuorumCnxManager`` (it logs each parsed initial
    message, with the addresses it carried); zkquorum peers get
    ``multiAddress.enabled=true`` in their zoo.cfg.
    """
    inner = make_ensemble(
        install,
        base_dir,
        sorted({*py_sids, *java_sids}),
        settings=settings,
        jvm_flags={sid: [MULTI_ADDRESS_FLAG] for sid in java_sids},
        extra_hosts=extra_hosts,
    )
    for sid, server in list(inner.servers.items()):
        if sid in py_sids:
            fields = {f.name: getattr(server, f.name) for f in dataclasses.fields(JavaServer)}
            inner.servers[sid] = PyServer(**fields)
    inner.write_configs()
    for sid, server in inner.servers.items():
        if sid in py_sids:
            with server.cfg_path.open("a") as cfg:
                cfg.write("multiAddress.enabled=true\n")
        else:
            with (server.conf_dir / "log4j.properties").open("a") as props:
                props.write(f"log4j.logger.{CNX_MANAGER}=DEBUG\n")
    ens = Ensemble(inner)
    try:
        if start:
            ens.start()
        yield ens
    finally:
        ens.stop()


MULTI_ADDRESS_FLAG = "-Dzookeeper.multiAddress.enabled=true"
CNX_MANAGER = "org.apache.zookeeper.server.quorum.QuorumCnxManager"


@pytest.fixture(name="mixed")
def mixed_fixture(
    request: pytest.FixtureRequest, zookeeper: ZooKeeperInstall, tmp_path: Path
) -> Iterator[MixedFactory]:
    """``mixed(py_sids=[3], java_sids=[1, 2], observers=[], start=True)`` -> :class:`Mixed`.

    ``extra_hosts={sid: ["127.0.0.2"]}`` lays out a multi-address ensemble instead
    (no observers then).  Every ensemble made is stopped at teardown, whatever happens;
    on failure every server's log (both sides) is attached to the test report.
    """
    with contextlib.ExitStack() as stack:
        count = 0

        def factory(**kwargs: Any) -> Mixed:
            nonlocal count
            count += 1
            kwargs.setdefault("settings", FAST)
            base = tmp_path / f"mixed{count}"
            if "extra_hosts" in kwargs:
                cm = _multi_address_ensemble(base, zookeeper, **kwargs)
            else:
                cm = ensemble(base, install=zookeeper, **kwargs)
            m = Mixed(stack.enter_context(cm), zookeeper)
            sources = getattr(request.node, "zk_log_sources", [])
            sources.append((f"server logs, mixed ensemble {count}", m.logs))
            request.node.zk_log_sources = sources
            return m

        yield factory
