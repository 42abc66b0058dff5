"""Issue 7, scenario 6: multi-address ensembles, Java and zkquorum side by side.

Every server has two loopback addresses (127.0.0.1 and 127.0.0.2, each with its own
quorum and election ports).  Java servers run with ``-Dzookeeper.multiAddress.enabled=true``
and zkquorum peers with ``multiAddress.enabled=true``: both send the V2 initial message
(protocol version -65534) carrying every election address.  Checked both ways: a Java
server logs (QuorumCnxManager at DEBUG) the two addresses a zkquorum peer sent, and a
larger-sid Java server's V2 connection to a zkquorum peer is kept by it (``incoming``).

Needs Debian's ``zookeeper`` package: skipped without it locally, failed in CI.
"""

from __future__ import annotations

import re

import pytest

from tests.interop.mixed import (
    Mixed,
    MixedFactory,
    mixed_fixture,  # noqa: F401  (the ``mixed`` fixture)
    stable_seconds,
)

pytestmark = pytest.mark.interop

EXTRA = ["127.0.0.2"]


def parsed_initial_addresses(m: Mixed, java: int, sender: int) -> set[tuple[str, ...]]:
    """The address lists Java server ``java`` parsed from ``sender``'s initial messages."""
    found = re.findall(
        rf"Initial message parsed by {java}: InitialMessage\{{sid={sender}, "
        r"electionAddr=\[([^\]]*)\]",
        m.log(java),
    )
    return {tuple(a.strip().lstrip("/") for a in addrs.split(",")) for addrs in found}


def addresses(m: Mixed, sid: int) -> set[str]:
    s = m.servers[sid]
    return {
        f"{h}:{e}" for h, _, e in [(s.host, s.quorum_port, s.election_port), *s.extra_addresses]
    }


def assert_v2_from(m: Mixed, sender: int, java: int) -> None:
    lists = parsed_initial_addresses(m, java, sender)
    assert lists, f"Java {java} parsed no initial message from {sender}"
    for found in lists:
        got = {a.split("/")[-1] for a in found}
        assert got == addresses(m, sender), (found, addresses(m, sender))


def test_multi_address_zkquorum_leader(mixed: MixedFactory) -> None:
    # Java 1, 2 < zkquorum 3: zkquorum 3 dials both Java servers (V2, two addresses each);
    # the Java followers connect to one of our two quorum addresses.
    m = mixed(py_sids=[3], java_sids=[1, 2], extra_hosts={s: EXTRA for s in (1, 2, 3)})
    agreement = m.settle(leader_in=[3])
    for java in (1, 2):
        m.wait_agreement(agreement.modes)
        assert_v2_from(m, 3, java)
    assert_v2_from(m, 2, 1)
    m.assert_java_config_unchanged()
    m.assert_stable(agreement, stable_seconds())
    print("\n".join(m.timings()))


def test_multi_address_java_leader(mixed: MixedFactory) -> None:
    # Java 1 < zkquorum 2 < Java 3: zkquorum 2 dials Java 1, Java 3 dials zkquorum 2 (V2)
    # and we keep that connection; zkquorum 2 follows Java 3 over a multi-address link.
    m = mixed(py_sids=[2], java_sids=[1, 3], extra_hosts={s: EXTRA for s in (1, 2, 3)}, start=False)
    m.start_java_first()
    agreement = m.settle(leader_in=[1, 3])
    assert_v2_from(m, 2, 1)
    assert "Election connection to 3 (" in m.log(2)
    assert re.search(r"Election connection to 3 \([^)]*incoming\) up", m.log(2)), m.log(2)
    m.assert_java_config_unchanged()
    m.assert_stable(agreement, stable_seconds())
    print("\n".join(m.timings()))
