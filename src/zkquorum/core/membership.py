"""The membership a peer runs with: the config in force and the last one it has seen.

``QuorumPeer``'s ``quorumVerifier`` and ``lastSeenQuorumVerifier``, shared by the peer core
and the leader or learner of its phase.  The last-seen config is ahead of the one in force
exactly while a reconfig is in progress (proposed, not yet committed); then every proposal
needs a quorum of both (``Leader#propose``).

Changes go out as ``SaveConfig`` hard state (the dynamic files) and, for an activation, a
``ConfigActivated`` outcome (the runtime reaches the new members).  With
``reconfigEnabled=false`` nothing changes, as in 3.8: ``setLastSeenQuorumVerifier`` and
``processReconfig`` return at once.
"""

from __future__ import annotations

import logging

from zkquorum.config.errors import ConfigError
from zkquorum.config.verifier import QuorumVerifier
from zkquorum.config.zoocfg import parse_config_string
from zkquorum.core.ready import ConfigActivated, ReadyBuilder, SaveConfig

log = logging.getLogger(__name__)

__all__ = ["Membership", "config_from_text", "same_membership"]


def config_from_text(text: str) -> QuorumVerifier | None:
    """``QuorumPeer#configFromString``; ``None`` (logged) when the text does not parse."""
    try:
        return parse_config_string(text)
    except ConfigError as exc:
        log.warning("ignoring a config that does not parse: %s", exc)
        return None


def same_membership(a: QuorumVerifier, b: QuorumVerifier) -> bool:
    """``QuorumMaj#equals``: the same version, or the same members at the same addresses
    with the same roles (and, for hierarchical configs, the same text but the version)."""
    if a.version == b.version:
        return True
    return _without_version(a) == _without_version(b)


def _without_version(v: QuorumVerifier) -> str:
    return "\n".join(
        line for line in v.to_zk_string().splitlines() if not line.startswith("version=")
    )


class Membership:
    """The configs of one peer (see the module docstring)."""

    __slots__ = (
        "_fixed_text",
        "current",
        "last_seen",
        "reconfig_enabled",
        "sid",
        "standalone_enabled",
    )

    def __init__(
        self,
        sid: int,
        current: QuorumVerifier,
        last_seen: QuorumVerifier | None = None,
        *,
        reconfig_enabled: bool = False,
        standalone_enabled: bool = True,
        config_text: str | None = None,
    ) -> None:
        """``config_text``: the text to show while reconfig is disabled (the config as
        the files give it), when it is not ``last_seen``'s own."""
        self.sid = sid
        self.current = current
        self.last_seen = current
        if last_seen is not None and last_seen.version > current.version:
            self.last_seen = last_seen
        self.reconfig_enabled = reconfig_enabled
        self.standalone_enabled = standalone_enabled
        self._fixed_text = config_text

    @property
    def config_text(self) -> str:
        """What NEWLEADER carries: the last-seen config (``Leader#getQuorumVerifierBytes``)."""
        if self._fixed_text is not None and not self.reconfig_enabled:
            return self._fixed_text
        return self.last_seen.to_zk_string()

    @property
    def current_text(self) -> str:
        """/zookeeper/config: the config in force (``initConfigInZKDatabase``)."""
        if self._fixed_text is not None and not self.reconfig_enabled:
            return self._fixed_text
        return self.current.to_zk_string()

    @property
    def in_progress(self) -> bool:
        """A reconfig is proposed but not committed (``ReconfigInProgress``)."""
        return self.last_seen.version != self.current.version

    @property
    def observer(self) -> bool:
        return self.sid in self.current.observing_members

    def verifiers(self) -> tuple[QuorumVerifier, ...]:
        """Whose quorums a proposal made now needs (``Proposal#addQuorumVerifier``)."""
        if self.last_seen.version > self.current.version:
            return (self.current, self.last_seen)
        return (self.current,)

    def see(self, out: ReadyBuilder, verifier: QuorumVerifier) -> None:
        """``setLastSeenQuorumVerifier(qv, true)``."""
        if not self.reconfig_enabled or verifier.version == self.last_seen.version:
            return
        if verifier.version < self.last_seen.version:
            log.error(
                "setLastSeenQuorumVerifier called with stale config %x. Current version: %x",
                verifier.version,
                self.current.version,
            )
        self.last_seen = verifier
        out.hard_state.append(SaveConfig(verifier, activated=False))

    def activate(
        self,
        out: ReadyBuilder,
        verifier: QuorumVerifier,
        *,
        leader: int | None,
        designated: int | None = None,
    ) -> bool:
        """``processReconfig``: put ``verifier`` in force when it is newer.  True when this
        peer's phase must end ("changes proposed in reconfig"): its role changed (observer
        and participant), or its leader did (``designated`` is not ``leader``, or, with no
        designated leader, ``leader`` is not a voter at the same address in both)."""
        if not self.reconfig_enabled or verifier.version <= self.current.version:
            return False
        previous = self.current
        was_observer = self.observer
        self.current = verifier
        if verifier.version > self.last_seen.version:
            self.last_seen = verifier
        out.hard_state.append(SaveConfig(verifier, activated=True))
        out.outcomes.append(ConfigActivated(verifier, previous))
        if same_membership(previous, verifier):
            return False
        log.info(
            "peer %d: config version %x in force: %s",
            self.sid,
            verifier.version,
            verifier.describe_quorum(),
        )
        role_change = self.observer != was_observer
        if designated is not None:
            leader_change = designated != leader
        elif leader is None:
            leader_change = False
        else:
            before = previous.voting_members.get(leader)
            after = verifier.voting_members.get(leader)
            leader_change = (
                before is None or after is None or before.quorum_addrs != after.quorum_addrs
            )
        return role_change or leader_change
