"""The members of an ensemble: servers, their addresses and roles."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass


class LearnerType(enum.Enum):
    """``QuorumPeer.LearnerType``: a voter or a non-voting learner."""

    PARTICIPANT = "participant"
    OBSERVER = "observer"


@dataclass(frozen=True, slots=True, order=True)
class HostPort:
    """A host (name or IP literal, IPv6 without brackets) and a port."""

    host: str
    port: int

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    def java_host(self) -> str:
        """The host as Java prints it: IPv6 literals in long form, in brackets."""
        if self.is_ipv6:
            try:
                ip = ipaddress.IPv6Address(self.host.split("%", 1)[0])
            except ValueError:
                return f"[{self.host}]"
            return "[" + ":".join(format(int(g, 16), "x") for g in ip.exploded.split(":")) + "]"
        return self.host

    def __str__(self) -> str:
        return f"{self.java_host()}:{self.port}"


@dataclass(frozen=True, slots=True)
class QuorumServer:
    """One ``server.N`` entry (``QuorumPeer.QuorumServer``).

    ``quorum_addrs`` and ``election_addrs`` are paired index by index (the ``|`` list of
    ``host:quorumPort:electionPort``).  ``client_addr_from_static`` marks a client address
    filled in from ``clientPort=``: ZooKeeper hides it from the config string.
    """

    sid: int
    quorum_addrs: tuple[HostPort, ...]
    election_addrs: tuple[HostPort, ...]
    role: LearnerType = LearnerType.PARTICIPANT
    client_addr: HostPort | None = None
    client_addr_from_static: bool = False

    @property
    def is_participant(self) -> bool:
        return self.role is LearnerType.PARTICIPANT

    def to_zk_string(self) -> str:
        """``QuorumServer#toString``: address lists sorted by host, zipped, role, client."""
        # Java sorts each list by InetSocketAddress#getHostString (no brackets); the order of
        # equal hosts comes from a HashSet, so we break ties by port to stay deterministic.
        qs = sorted(self.quorum_addrs, key=lambda a: (a.java_host().strip("[]"), a.port))
        es = sorted(self.election_addrs, key=lambda a: (a.java_host().strip("[]"), a.port))
        parts = [f"{q.java_host()}:{q.port}:{e.port}" for q, e in zip(qs, es, strict=True)]
        text = "|".join(parts) + ":" + self.role.value
        if self.client_addr is not None and not self.client_addr_from_static:
            text += f";{self.client_addr}"
        return text

    @classmethod
    def simple(
        cls,
        sid: int,
        host: str = "127.0.0.1",
        quorum_port: int = 2888,
        election_port: int = 3888,
        role: LearnerType = LearnerType.PARTICIPANT,
    ) -> QuorumServer:
        """A single-address server, for tests and the simulator."""
        return cls(sid, (HostPort(host, quorum_port),), (HostPort(host, election_port),), role)
