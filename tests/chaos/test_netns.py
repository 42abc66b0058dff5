"""Two networks per host (issue 9): the multi-address case in network namespaces.

Three "hosts" (namespaces), each on two networks (10.231.1.0/24 and 10.231.2.0/24, inside
namespaces the test makes); zoo.cfg lists every server's two addresses joined with ``|``
and ``multiAddress.enabled=true``; ``zkquorum run`` runs in each namespace.  While the
ensemble runs, network 1 fails (its switch drops every packet): the election connections
and the learners' links must move to network 2 and the ensemble must keep, or establish
again, a leader within ``BOUND_S``.  Network 1 comes back, network 2 fails: the same.

Needs root and iproute2 (CI runs as root); elsewhere it skips and says why.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.checker import check_logs
from tests.chaos.harness import SETTINGS, ChaosServer, EventTail
from tests.chaos.netns import TwoNetworks, why_not_available
from tests.interop.zkserver import wait_for

BOUND_S = 45.0
"""After a network fails, a leader is established (again) on the other within this."""
HOSTS = (1, 2, 3)
QUORUM_PORT, ELECTION_PORT, CLIENT_PORT = 2888, 3888, 2181

_why = why_not_available()
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


class _Ensemble:
    def __init__(self, nets: TwoNetworks, base: Path) -> None:
        self.nets = nets
        self.servers: dict[int, ChaosServer] = {}
        lines = [f"{k}={v}" for k, v in SETTINGS.items()]
        lines.append("multiAddress.enabled=true")
        for h in HOSTS:
            addrs = "|".join(f"{nets.addr(h, net)}:{QUORUM_PORT}:{ELECTION_PORT}" for net in (1, 2))
            lines.append(f"server.{h}={addrs}:participant")
        for h in HOSTS:
            s = ChaosServer(
                sid=h,
                root=base / f"host{h}",
                quorum_port=QUORUM_PORT,
                election_port=ELECTION_PORT,
                client_port=CLIENT_PORT,
                prefix=tuple(nets.exec_prefix(h)),
            )
            s.data_dir.mkdir(parents=True)
            s.cfg_path.parent.mkdir(parents=True)
            (s.data_dir / "myid").write_text(f"{h}\n")
            own = [f"dataDir={s.data_dir}", f"clientPort={CLIENT_PORT}",
                   "clientPortAddress=127.0.0.1"]  # fmt: skip
            s.cfg_path.write_text("\n".join([*lines, *own]) + "\n")
            self.servers[h] = s
        self.tails = {h: EventTail(s.events_path) for h, s in self.servers.items()}

    def settled(self) -> tuple[int, int] | None:
        """(leader, epoch) when every peer's newest record is ``established`` in it."""
        for h, s in self.servers.items():
            if not s.running():
                raise AssertionError(f"peer {h} exited: {s.proc and s.proc.returncode}")
        seen = set()
        for tail in self.tails.values():
            rec = tail.serving()
            if rec is None:
                return None
            seen.add((rec["leader"], rec["epoch"]))
        if len(seen) != 1:
            return None
        leader, epoch = seen.pop()
        assert isinstance(leader, int) and isinstance(epoch, int)
        return leader, epoch

    def links_on(self, leader: int) -> dict[str, set[int]]:
        """Per port kind, the networks that carry an established peer connection."""
        out: dict[str, set[int]] = {"quorum": set(), "election": set()}
        for h in HOSTS:
            for local, peer in self.nets.tcp_connections(h):
                for kind, port in (("quorum", QUORUM_PORT), ("election", ELECTION_PORT)):
                    if local.endswith(f":{port}") or peer.endswith(f":{port}"):
                        net = int(local.split(".")[2])
                        if kind == "quorum" and h == leader:
                            continue  # counted once, from the learners' side
                        out[kind].add(net)
        return out


@pytest.fixture
def ensemble(tmp_path: Path) -> Iterator[_Ensemble]:
    with TwoNetworks(len(HOSTS)) as nets:
        ens = _Ensemble(nets, tmp_path)
        try:
            yield ens
        finally:
            for s in ens.servers.values():
                s.stop()
            for h, s in ens.servers.items():
                sys.stderr.write(f"\n===== host {h} =====\n{s.log()[-15000:]}")


def test_ensemble_moves_to_the_other_network(ensemble: _Ensemble) -> None:
    ens, nets = ensemble, ensemble.nets
    for s in ens.servers.values():
        s.start()
    leader, epoch = wait_for(ens.settled, timeout=60, what="a leader on both networks")
    first_leader = leader
    fds_before = {h: s.fd_count() for h, s in ens.servers.items()}
    took: list[float] = []
    for down, other in ((1, 2), (2, 1)):
        nets.set_network(down, up=False)
        t0 = time.monotonic()
        try:
            # Settled again, and every learner's link and some election links use `other`.
            def moved(other: int = other) -> tuple[int, int] | None:
                got = ens.settled()
                if got is None:
                    return None
                links = ens.links_on(got[0])
                if links["quorum"] != {other} or other not in links["election"]:
                    return None
                return got

            leader, new_epoch = wait_for(
                moved, timeout=BOUND_S, what=f"leader with network {down} down"
            )
            took.append(time.monotonic() - t0)
            assert new_epoch >= epoch
            epoch = new_epoch
        finally:
            nets.set_network(down, up=True)

    # The connections on the failed networks were let go: no descriptor is held by them
    # (compared per role: a leader holds one quorum socket per learner).
    base = {
        role: max(fds_before[h] or 0 for h in HOSTS if (h == first_leader) == (role == "L"))
        for role in ("L", "F")
    }

    def no_leak() -> dict[int, int | None] | None:
        now = {h: s.fd_count() for h, s in ens.servers.items()}
        ok = all((now[h] or 0) <= base["L" if h == leader else "F"] + 2 for h in HOSTS)
        return now if ok else None

    try:
        fds_after = wait_for(no_leak, timeout=20, what=f"fd counts back near {fds_before}")
    except TimeoutError:
        detail = {h: (s.fd_count(), nets.tcp_connections(h)) for h, s in ens.servers.items()}
        pytest.fail(f"descriptors still held: before {fds_before}, now {detail}")
    problems = check_logs({h: s.log() for h, s in ens.servers.items()})
    assert not problems, problems
    print(
        f"\nnetns: leader re-established after network 1 down in {took[0]:.1f} s, after "
        f"network 2 down in {took[1]:.1f} s (bound {BOUND_S:.0f} s); final leader {leader} "
        f"epoch {epoch}; fds before {fds_before} after {fds_after}"
    )
