"""zoo.cfg -> one frozen :class:`QuorumConfig`; quorum verifiers; the config string.

Pure: reading files is the runtime's job (:func:`zkquorum.runtime.files.load_config`).
"""

from zkquorum.config.errors import ConfigError
from zkquorum.config.model import HostPort, LearnerType, QuorumServer
from zkquorum.config.verifier import HierarchicalVerifier, MajorityVerifier, QuorumVerifier
from zkquorum.config.zoocfg import QuorumConfig, parse_config_string, parse_zoo_cfg

__all__ = [
    "ConfigError",
    "HierarchicalVerifier",
    "HostPort",
    "LearnerType",
    "MajorityVerifier",
    "QuorumConfig",
    "QuorumServer",
    "QuorumVerifier",
    "parse_config_string",
    "parse_zoo_cfg",
]
