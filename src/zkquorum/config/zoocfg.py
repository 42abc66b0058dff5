"""zoo.cfg as ZooKeeper 3.8 reads it (``QuorumPeerConfig#parse``), into one frozen object.

Pure: the caller reads the files (see :func:`zkquorum.runtime.files.load_config`) and hands
us their text.  Facts: ``docs/spec/quorum-config-and-zab.md`` A1 to A3.

Every rejection is a :class:`ConfigError` whose text is one line, ``file:line: what is
wrong; how to fix it``.  Where ZooKeeper's own message misleads, ours says what is really
wrong; the ZooKeeper text it replaces is noted next to each check.

Deliberate differences from ZooKeeper 3.8.0 (each one a ZooKeeper bug or trap):

* ``|`` in a server line is accepted when zoo.cfg says ``multiAddress.enabled=true``.
  3.8 ignores the zoo.cfg key for parsing and needs ``-Dzookeeper.multiAddress.enabled=true``
  on the JVM; we say so in the error when the key is missing.
* zkquorum never resolves host names while parsing (the runtime does, when it connects);
  ZooKeeper fails on an unresolvable ``clientPortAddress``.
* Integer-valued keys that ZooKeeper reads later from system properties
  (``cnxTimeout``, ``electionPortBindRetry``, ``fastleader.*NotificationInterval``,
  ``quorumCnxnTimeoutMs``) are checked here; ZooKeeper fails at start-up or silently
  falls back to its default.
* An observer listed in a hierarchical group without a ``weight`` line crashes
  ZooKeeper's parser (NullPointerException); we report it as a config error.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from zkquorum.config.errors import ConfigError
from zkquorum.config.javatext import is_wildcard_host, java_int, java_split
from zkquorum.config.model import HostPort, LearnerType, QuorumServer
from zkquorum.config.properties import Entry, Properties, load_properties
from zkquorum.config.verifier import HierarchicalVerifier, MajorityVerifier, QuorumVerifier

INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1

DEFAULT_TICK_TIME = 3000
DEFAULT_CNX_TIMEOUT_MS = 5000
DEFAULT_ELECTION_PORT_BIND_RETRY = 3
DEFAULT_MIN_NOTIFICATION_INTERVAL = 200
DEFAULT_MAX_NOTIFICATION_INTERVAL = 60000
DEFAULT_REACHABILITY_TIMEOUT_MS = 1000

_WRONG_FORMAT = (
    "expected host:quorumPort:electionPort[:participant|observer][;[clientHost:]clientPort], "
    "several addresses joined with '|'"
)


def _same_host(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a.lower() == b.lower()


# --------------------------------------------------------------------------------------
# The object every other part reads


@dataclass(frozen=True)
class QuorumConfig:
    """One immutable configuration; voting and observing views derive from ``verifier``.

    ``verifier`` is ``None`` only when zoo.cfg has no server lines (standalone).
    ``last_seen_verifier`` is the proposed config from ``<zoo.cfg>.dynamic.next``.
    """

    path: str
    tick_time: int = DEFAULT_TICK_TIME
    init_limit: int = 0
    sync_limit: int = 0
    connect_to_learner_master_limit: int = 0
    data_dir: str = ""
    data_log_dir: str = ""
    client_port: int | None = None
    client_port_address: str | None = None
    secure_client_port: int | None = None
    """``secureClientPort``: the TLS client port (its keys are zoo.cfg's ``ssl.*``)."""
    secure_client_port_address: str | None = None
    election_alg: int = 3
    peer_type: LearnerType = LearnerType.PARTICIPANT
    dynamic_config_file: str | None = None
    reconfig_enabled: bool = False
    standalone_enabled: bool = True
    quorum_listen_on_all_ips: bool = False
    multi_address_enabled: bool = False
    multi_address_reachability_check_enabled: bool = True
    multi_address_reachability_check_timeout_ms: int = DEFAULT_REACHABILITY_TIMEOUT_MS
    cnx_timeout_ms: int = DEFAULT_CNX_TIMEOUT_MS
    quorum_cnxn_timeout_ms: int = -1
    election_port_bind_retry: int = DEFAULT_ELECTION_PORT_BIND_RETRY
    four_letter_words: frozenset[str] = frozenset({"srvr"})
    min_session_timeout: int = 2 * DEFAULT_TICK_TIME
    max_session_timeout: int = 20 * DEFAULT_TICK_TIME
    min_notification_interval: int = DEFAULT_MIN_NOTIFICATION_INTERVAL
    max_notification_interval: int = DEFAULT_MAX_NOTIFICATION_INTERVAL
    observer_master_port: int | None = None
    ssl_quorum: bool = False
    port_unification: bool = False
    ssl_quorum_reload_cert_files: bool = False
    ssl_quorum_settings: Mapping[str, str] = field(default_factory=dict)
    quorum_sasl_enabled: bool = False
    my_id: int | None = None
    verifier: MajorityVerifier | HierarchicalVerifier | None = None
    last_seen_verifier: MajorityVerifier | HierarchicalVerifier | None = None
    unused_keys: tuple[tuple[str, int], ...] = ()
    warnings: tuple[str, ...] = ()

    # --- derived views -----------------------------------------------------------------

    @property
    def is_distributed(self) -> bool:
        """``QuorumPeerConfig#isDistributed``: a quorum peer rather than a standalone server."""
        if self.verifier is None:
            return False
        return not self.standalone_enabled or len(self.verifier.voting_members) > 1

    @property
    def me(self) -> QuorumServer | None:
        if self.verifier is None or self.my_id is None:
            return None
        return self.verifier.all_members.get(self.my_id)

    @property
    def learner_type(self) -> LearnerType:
        """The server list decides our role; ``peerType`` only warns (ZooKeeper's rule)."""
        me = self.me
        return me.role if me is not None else self.peer_type

    @property
    def voting_members(self) -> Mapping[int, QuorumServer]:
        return self.verifier.voting_members if self.verifier else {}

    @property
    def observing_members(self) -> Mapping[int, QuorumServer]:
        return self.verifier.observing_members if self.verifier else {}

    def current_and_next_voters(self) -> frozenset[int]:
        """``QuorumPeer#getCurrentAndNextConfigVoters``."""
        voters = set(self.voting_members)
        if self.last_seen_verifier is not None:
            voters |= set(self.last_seen_verifier.voting_members)
        return frozenset(voters)


# --------------------------------------------------------------------------------------
# Server lines


def parse_server_line(
    sid: int, value: str, *, multi_address: bool, where: tuple[str | None, int | None]
) -> QuorumServer:
    """One ``server.N`` value (``QuorumServer#initializeWithAddressString``).

    ``value`` is the raw Properties value: trailing white space is *not* trimmed, as in
    ZooKeeper, where ``server.1=h:2888:3888 `` fails on the port ``3888 ``.
    """
    path, line = where

    def fail(msg: str) -> ConfigError:
        return ConfigError(f"server.{sid}: {msg}", path=path, line=line)

    if "," in value.split(";", 1)[0]:
        raise fail(
            f"'{value}' lists addresses with ','; ZooKeeper reads that as one malformed "
            "address: join several addresses with '|' (and set multiAddress.enabled=true)"
        )
    halves = java_split(value, ";")
    if len(halves) > 2:
        raise fail(f"'{value}' has more than one ';': {_WRONG_FORMAT}")
    client_addr = None
    if len(halves) == 2:
        client_addr = _parse_client_part(halves[1], fail)
    addresses = java_split(halves[0], "|") if halves else [""]
    if len(addresses) > 1 and not multi_address:
        # ZooKeeper: "Multiple address feature is disabled, but multiple addresses were
        # specified for sid N" (and it only looks at the JVM flag, not at zoo.cfg).
        raise fail(
            "several addresses joined with '|' need multiAddress.enabled=true in zoo.cfg "
            "(ZooKeeper 3.8 also needs -Dzookeeper.multiAddress.enabled=true on its JVM)"
        )
    if not addresses:
        raise fail(f"no address in '{value}': {_WRONG_FORMAT}")
    quorum: list[HostPort] = []
    election: list[HostPort] = []
    role: LearnerType | None = None
    for address in addresses:
        parts = _host_and_port(address, fail)
        if len(parts) < 3 or len(parts) > 4:
            raise fail(f"'{address}' is not of the form {_WRONG_FORMAT}")
        host = parts[0]
        qport = _port(parts[1], host, fail)
        eport = _port(parts[2], host, fail)
        if qport == eport:
            # ZooKeeper: "Client and election port must be different!" (it compares the
            # quorum and election ports).
            raise fail(
                f"quorum port and election port are both {qport}; give the election port "
                "(the second port) another number"
            )
        if len(parts) == 4:
            this_role = _role(parts[3], fail)
            if role is not None and this_role is not role:
                raise fail(
                    f"its addresses disagree on the role ({role.value} vs {this_role.value}); "
                    "give every address the same role, or give it once"
                )
            role = this_role
        for seen, hp in ((quorum, HostPort(host, qport)), (election, HostPort(host, eport))):
            if hp in seen:
                # ZooKeeper keeps addresses in sets: a repeat silently disappears, and the
                # quorum and election lists can end up of different lengths.
                raise fail(f"address {hp} appears twice in '{value}': list each address once")
            seen.append(hp)
    return QuorumServer(
        sid,
        tuple(quorum),
        tuple(election),
        role or LearnerType.PARTICIPANT,
        client_addr,
    )


def _host_and_port(text: str, fail: Callable[[str], ConfigError]) -> list[str]:
    """``ConfigUtils#getHostAndPort``: ``[v6]:a:b`` or ``host:a:b``."""
    if text.startswith("["):
        i = text.find("]")
        if i < 0:
            raise fail(f"'{text}' starts with '[' but has no matching ']'")
        if i + 2 == len(text):
            raise fail(f"'{text}' has no port after the colon")
        if i + 2 < len(text):
            if text[i + 1] != ":":
                raise fail(f"'{text}': expected ':' after ']'")
            return [text[1:i], *java_split(text[i + 2 :], ":")]
        return [text.replace("[", "").replace("]", "")]
    parts = java_split(text, ":")
    if len(parts) > 4 and text.count(":") >= 2 and _looks_ipv6(text):
        raise fail(f"'{text}' looks like an IPv6 address: write it in brackets, [{_v6_hint(text)}]")
    return parts


def _looks_ipv6(text: str) -> bool:
    return "::" in text or bool(re.match(r"[0-9a-fA-F]{1,4}:[0-9a-fA-F]{0,4}:", text))


def _v6_hint(text: str) -> str:
    head = text.rsplit(":", 3)
    return head[0] if len(head) == 4 else text


def _port(text: str, host: str, fail: Callable[[str], ConfigError]) -> int:
    value = java_int(text)
    if value is None:
        # ZooKeeper: "Address unresolved: host:text".
        raise fail(f"port '{text}' of {host or 'the address'} is not a number{_blank_hint(text)}")
    if not 0 <= value <= 65535:
        raise fail(f"port {value} is out of range (0 to 65535)")
    return value


def _blank_hint(text: str) -> str:
    """ZooKeeper does not trim server lines: a blank at the end breaks the last port."""
    if text != text.rstrip() and java_int(text.rstrip()) is not None:
        return " (ZooKeeper keeps trailing white space on server lines: remove it)"
    return ""


def _role(text: str, fail: Callable[[str], ConfigError]) -> LearnerType:
    word = text.strip().lower()
    if word == "participant":
        return LearnerType.PARTICIPANT
    if word == "observer":
        return LearnerType.OBSERVER
    raise fail(f"unrecognised role '{text}': use 'participant' or 'observer'")


def _parse_client_part(text: str, fail: Callable[[str], ConfigError]) -> HostPort:
    parts = _host_and_port(text, fail)
    if len(parts) > 2:
        raise fail(f"client part '{text}' is not 'clientPort' or 'clientHost:clientPort'")
    host = parts[0] if len(parts) == 2 else "0.0.0.0"
    value = java_int(parts[-1])
    if value is None:
        # ZooKeeper: "Address unresolved: null:<text>" (it prints an unset field).
        raise fail(f"client port '{parts[-1]}' is not a number{_blank_hint(parts[-1])}")
    if not 0 <= value <= 65535:
        raise fail(f"client port {value} is out of range (0 to 65535)")
    return HostPort(host, value)


# --------------------------------------------------------------------------------------
# Membership: server, group and weight lines -> a verifier


def build_verifier(
    props: Properties,
    *,
    path: str | None,
    multi_address: bool,
    dynamic: bool,
) -> MajorityVerifier | HierarchicalVerifier:
    """``QuorumPeerConfig#parseDynamicConfig`` + the verifier constructors."""
    servers: dict[int, QuorumServer] = {}
    groups: dict[int, frozenset[int]] = {}
    group_of: dict[int, int] = {}
    weights: dict[int, int] = {}
    hierarchical = False
    version = 0
    lines: dict[int, int] = {}
    for entry in props:
        key, value, line = entry.key, entry.value, entry.line
        if key.startswith("group") or key.startswith("weight"):
            hierarchical = True
        if key.startswith("server."):
            sid = _id_after_dot(entry, "server", path)
            servers[sid] = parse_server_line(
                sid, value, multi_address=multi_address, where=(path, line)
            )
            lines[sid] = line
        elif key.startswith("group"):
            gid = _id_after_dot(entry, "group", path)
            members = []
            for text in java_split(value, ":"):
                member = java_int(text, 64)
                if member is None:
                    raise ConfigError(
                        f"{key}: '{text}' is not a server id (write group.N=sid:sid:...)",
                        path=path,
                        line=line,
                    )
                if member in group_of:
                    # ZooKeeper: "Server <sid>is in multiple groups".
                    raise ConfigError(
                        f"server {member} is in group {group_of[member]} and group {gid}; "
                        "a server belongs to one group",
                        path=path,
                        line=line,
                    )
                group_of[member] = gid
                members.append(member)
            groups[gid] = groups.get(gid, frozenset()) | frozenset(members)
        elif key.startswith("weight"):
            sid = _id_after_dot(entry, "weight", path)
            w = java_int(value, 64)
            if w is None:
                raise ConfigError(f"{key}: weight '{value}' is not a number", path=path, line=line)
            weights[sid] = w
        elif key == "version":
            parsed = _hex_long(value)
            if parsed is None:
                raise ConfigError(
                    f"version '{value}' is not a hexadecimal number", path=path, line=line
                )
            version = parsed
        elif dynamic:
            raise ConfigError(
                f"'{key}' does not belong in a dynamic config file: it may only hold "
                "server.N, group.N and weight.N lines",
                path=path,
                line=line,
            )

    verifier: MajorityVerifier | HierarchicalVerifier
    if hierarchical:
        for sid, server in servers.items():
            if server.is_participant:
                if sid not in group_of:
                    # ZooKeeper: "Server <sid>is not in a group".
                    raise ConfigError(
                        f"server.{sid} is a participant but in no group.N line; "
                        "with group/weight lines every participant needs a group",
                        path=path,
                        line=lines[sid],
                    )
                weights.setdefault(sid, 1)
        for sid in group_of:
            if sid not in weights:
                # ZooKeeper crashes with a NullPointerException here.
                raise ConfigError(
                    f"server {sid} is in group {group_of[sid]} but is not a participant and "
                    f"has no weight.{sid} line; drop it from the group or give it a weight",
                    path=path,
                )
        verifier = HierarchicalVerifier(servers, groups, weights, version)
    else:
        verifier = MajorityVerifier(servers, version)
    return verifier


def _id_after_dot(entry: Entry, prefix: str, path: str | None) -> int:
    """``Long.parseLong(key.substring(key.indexOf('.') + 1))``."""
    dot = entry.key.find(".")
    text = entry.key[dot + 1 :]
    value = java_int(text, 64)
    if value is None:
        raise ConfigError(
            f"'{entry.key}': '{text}' is not a number (write {prefix}.N with a numeric N)",
            path=path,
            line=entry.line,
        )
    return value


def _hex_long(text: str) -> int | None:
    """``Long.parseLong(text, 16)``."""
    if not re.fullmatch(r"[+-]?[0-9a-fA-F]+", text):
        return None
    value = int(text, 16)
    return value if LONG_MIN <= value <= LONG_MAX else None


def version_from_filename(name: str) -> int:
    """``QuorumPeerConfig#getVersionFromFilename``: hex after the last '.', else 0."""
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    value = _hex_long(suffix) if suffix and "+" not in suffix and "-" not in suffix else None
    return value or 0


# --------------------------------------------------------------------------------------
# Static keys


_Kind = Literal["int", "long", "bool", "str"]

# Keys ZooKeeper reads itself (QuorumPeerConfig#parseProperties), with their type so that a
# bad value is refused as ZooKeeper refuses it.  Those zkquorum also uses are in _USED.
_ZK_KEYS: dict[str, _Kind] = {
    "dataDir": "str",
    "dataLogDir": "str",
    "clientPort": "int",
    "localSessionsEnabled": "bool",
    "localSessionsUpgradingEnabled": "bool",
    "clientPortAddress": "str",
    "secureClientPort": "int",
    "secureClientPortAddress": "str",
    "observerMasterPort": "int",
    "clientPortListenBacklog": "int",
    "tickTime": "int",
    "maxClientCnxns": "int",
    "minSessionTimeout": "int",
    "maxSessionTimeout": "int",
    "initLimit": "int",
    "syncLimit": "int",
    "connectToLearnerMasterLimit": "int",
    "electionAlg": "int",
    "quorumListenOnAllIPs": "bool",
    "peerType": "str",
    "syncEnabled": "bool",
    "dynamicConfigFile": "str",
    "autopurge.snapRetainCount": "int",
    "autopurge.purgeInterval": "int",
    "standaloneEnabled": "bool",
    "reconfigEnabled": "bool",
    "sslQuorum": "bool",
    "portUnification": "bool",
    "sslQuorumReloadCertFiles": "bool",
    "quorum.auth.enableSasl": "bool",
    "quorum.auth.serverRequireSasl": "bool",
    "quorum.auth.learnerRequireSasl": "bool",
    "quorum.auth.learner.saslLoginContext": "str",
    "quorum.auth.server.saslLoginContext": "str",
    "quorum.auth.kerberos.servicePrincipal": "str",
    "quorum.cnxn.threads.size": "int",
    "jvm.pause.info-threshold.ms": "long",
    "jvm.pause.warn-threshold.ms": "long",
    "jvm.pause.sleep.time.ms": "long",
    "jvm.pause.monitor": "bool",
    "metricsProvider.className": "str",
    "multiAddress.enabled": "bool",
    "multiAddress.reachabilityCheckTimeoutMs": "int",
    "multiAddress.reachabilityCheckEnabled": "bool",
    "oraclePath": "str",
}

# Keys ZooKeeper reads as system properties, which zkquorum checks as integers.
_SYSPROP_INTS = {
    "cnxTimeout",
    "quorumCnxnTimeoutMs",
    "electionPortBindRetry",
    "fastleader.minNotificationInterval",
    "fastleader.maxNotificationInterval",
}

_SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
_USED = {
    "tickTime",
    "initLimit",
    "syncLimit",
    "connectToLearnerMasterLimit",
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "secureClientPort",
    "secureClientPortAddress",
    "electionAlg",
    "peerType",
    "dynamicConfigFile",
    "reconfigEnabled",
    "standaloneEnabled",
    "quorumListenOnAllIPs",
    "multiAddress.enabled",
    "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "observerMasterPort",
    "sslQuorum",
    "portUnification",
    "sslQuorumReloadCertFiles",
    "quorum.auth.enableSasl",
    "quorum.auth.serverRequireSasl",
    "quorum.auth.learnerRequireSasl",
    "4lw.commands.whitelist",
    "version",
    "minSessionTimeout",
    "maxSessionTimeout",
    "maxClientCnxns",
    # the server (core/server.py ServerSettings), with or without "zookeeper."
    "extendedTypesEnabled",
    "zookeeper.extendedTypesEnabled",
    "DigestAuthenticationProvider.superDigest",
    "zookeeper.DigestAuthenticationProvider.superDigest",
    "leader.ackLoggingFrequency",
    "zookeeper.leader.ackLoggingFrequency",
    "readonlymode.enabled",
    # SASL on the client port (core/sasl.py, runtime/sasl_login.py)
    "java.security.auth.login.config",
    "sasl.serverconfig",
    "zookeeper.sasl.serverconfig",
    "allowSaslFailedClients",
    "zookeeper.allowSaslFailedClients",
    "SASLAuthenticationProvider.superPassword",
    "zookeeper.SASLAuthenticationProvider.superPassword",
    "superUser",
    "zookeeper.superUser",
    # storage (runtime/storage.py StorageSettings)
    "commitLogCount",
    "snapshotSizeFactor",
    "snapCount",
    "snapSizeLimitInKb",
    "preAllocSize",
    "forceSync",
    "fsync.warningthresholdms",
    "maxBatchSize",
    "znode.container.checkIntervalMs",
    "znode.container.maxNeverUsedIntervalMs",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    # the ops endpoints (runtime/opssettings.py)
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "admin.commandURL",
    "admin.idleTimeout",
    "metricsProvider.className",
    "metricsProvider.httpHost",
    "metricsProvider.httpPort",
    *_SYSPROP_INTS,
}


def _is_membership_key(key: str) -> bool:
    return key.startswith("server.") or key.startswith("group") or key.startswith("weight")


@dataclass
class _Reader:
    """Typed access to the trimmed static values, errors located at their line."""

    props: Properties
    path: str

    def entry(self, key: str) -> Entry | None:
        return self.props.get(key)

    def value(self, key: str) -> str | None:
        e = self.props.get(key)
        return e.value.strip() if e is not None else None

    def fail(self, key: str, message: str) -> ConfigError:
        e = self.props.get(key)
        return ConfigError(message, path=self.path, line=e.line if e else None)

    def int(self, key: str, default: int, bits: int = 32) -> int:
        text = self.value(key)
        if text is None:
            return default
        value = java_int(text, bits)
        if value is None:
            raise self.fail(key, f"{key}={text}: not a whole number")
        return value

    def bool(self, key: str, default: bool) -> bool:
        text = self.value(key)
        if text is None:
            return default
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        # ZooKeeper: "Invalid option <v> for <key>. Choose 'true' or 'false.'"
        raise self.fail(key, f"{key}={text}: choose 'true' or 'false'")


def parse_zoo_cfg(
    text: str,
    *,
    path: str = "zoo.cfg",
    myid_text: str | None = None,
    myid_path: str | None = None,
    dynamic_text: str | None = None,
    dynamic_path: str | None = None,
    next_dynamic_text: str | None = None,
    next_dynamic_path: str | None = None,
) -> QuorumConfig:
    """Interpret zoo.cfg (and, when the caller found them, the dynamic file and myid).

    ``myid_text`` is the content of ``dataDir/myid`` or ``None`` when there is none;
    ``dynamic_text`` the content of ``dynamicConfigFile``; ``next_dynamic_text`` the
    content of ``<zoo.cfg>.dynamic.next``.
    """
    props = load_properties(text, path)
    r = _Reader(props, path)
    warnings: list[str] = []

    for dup in props.duplicates():
        warnings.append(f"{path}:{dup.line}: {dup.key} is set again later; this value is ignored")

    has_dynamic = "dynamicConfigFile" in props
    unused: list[tuple[str, int]] = []
    for entry in props:
        key = entry.key.strip()
        if _is_membership_key(key):
            if has_dynamic:
                # ZooKeeper: "parameter: <key> must be in a separate dynamic config file".
                raise ConfigError(
                    f"{key} is in zoo.cfg, but dynamicConfigFile is set: move every "
                    "server/group/weight line into the dynamic file",
                    path=path,
                    line=entry.line,
                )
            continue
        kind = _ZK_KEYS.get(key)
        if kind == "int":
            r.int(key, 0)
        elif kind == "long":
            r.int(key, 0, 64)
        elif kind == "bool":
            r.bool(key, False)
        elif key in _SYSPROP_INTS:
            r.int(key, 0)
        if key in _USED or key.startswith("ssl.quorum."):
            continue
        if key.startswith(("ssl.", "zookeeper.ssl.")) and r.int("secureClientPort", 0):
            continue  # the secure client port's (runtime/tls.py client_settings)
        if key.startswith(("authProvider.", "zookeeper.authProvider.")) and (
            entry.value.strip() == _SASL_PROVIDER
        ):
            continue  # the sasl ACL scheme (core/sasl.py)
        unused.append((key, entry.line))

    # SASL rules (ZooKeeper checks them before anything else after the loop).
    sasl = r.bool("quorum.auth.enableSasl", False)
    server_sasl = r.bool("quorum.auth.serverRequireSasl", False)
    learner_sasl = r.bool("quorum.auth.learnerRequireSasl", False)
    if not sasl and server_sasl:
        raise r.fail(
            "quorum.auth.serverRequireSasl",
            "quorum.auth.serverRequireSasl=true needs quorum.auth.enableSasl=true",
        )
    if not sasl and learner_sasl:
        raise r.fail(
            "quorum.auth.learnerRequireSasl",
            "quorum.auth.learnerRequireSasl=true needs quorum.auth.enableSasl=true",
        )
    if not learner_sasl and server_sasl:
        raise r.fail(
            "quorum.auth.serverRequireSasl",
            "quorum.auth.serverRequireSasl=true needs quorum.auth.learnerRequireSasl=true",
        )
    if sasl:
        warnings.append(
            f"{path}: quorum SASL is not supported by zkquorum; it will not authenticate"
        )

    data_dir = r.value("dataDir")
    if data_dir is None:
        raise ConfigError(
            "dataDir is not set: add dataDir=<directory for myid and epochs>", path=path
        )
    data_log_dir = r.value("dataLogDir") or data_dir

    client_port = r.int("clientPort", 0)
    client_port_address = r.value("clientPortAddress")
    if client_port == 0 and client_port_address is not None:
        raise r.fail(
            "clientPortAddress",
            "clientPortAddress is set but clientPort is not: add clientPort=<port>",
        )
    if not 0 <= client_port <= 65535:
        raise r.fail("clientPort", f"clientPort={client_port} is out of range (0 to 65535)")
    secure_client_port = r.int("secureClientPort", 0)
    if secure_client_port == 0 and r.value("secureClientPortAddress") is not None:
        raise r.fail(
            "secureClientPortAddress",
            "secureClientPortAddress is set but secureClientPort is not: add secureClientPort",
        )
    if not 0 <= secure_client_port <= 65535:
        raise r.fail("secureClientPort", f"secureClientPort={secure_client_port} is out of range")

    tick_time = r.int("tickTime", DEFAULT_TICK_TIME)
    if tick_time == 0:
        raise r.fail("tickTime", "tickTime is 0: set it to the tick length in ms (e.g. 2000)")
    min_session = r.int("minSessionTimeout", -1)
    max_session = r.int("maxSessionTimeout", -1)
    min_session = tick_time * 2 if min_session == -1 else min_session
    max_session = tick_time * 20 if max_session == -1 else max_session
    if min_session > max_session:
        raise r.fail(
            "minSessionTimeout", "minSessionTimeout must not be larger than maxSessionTimeout"
        )

    election_alg = r.int("electionAlg", 3)
    if election_alg != 3:
        raise r.fail(
            "electionAlg",
            f"electionAlg={election_alg}: only 3 (fast leader election) exists since 3.6",
        )
    peer_type = LearnerType.PARTICIPANT
    pt = r.value("peerType")
    if pt is not None:
        if pt.lower() not in ("participant", "observer"):
            raise r.fail("peerType", f"peerType={pt}: use 'participant' or 'observer'")
        peer_type = LearnerType(pt.lower())

    standalone_enabled = r.bool("standaloneEnabled", True)
    multi_address = r.bool("multiAddress.enabled", False)

    # Membership: from the dynamic file when there is one, else from zoo.cfg itself.
    dynamic_file = r.value("dynamicConfigFile")
    membership_path: str | None = path
    if dynamic_file is not None:
        if dynamic_text is None:
            raise r.fail("dynamicConfigFile", f"dynamic config file {dynamic_file} not found")
        membership_path = dynamic_path or dynamic_file
        dyn_props = load_properties(dynamic_text, membership_path)
        if "version" in dyn_props:
            e = dyn_props.get("version")
            raise ConfigError(
                "a dynamic file must not contain version=; the version comes from the "
                "file name's suffix (zoo.cfg.dynamic.<hex>)",
                path=membership_path,
                line=e.line if e else None,
            )
        version = version_from_filename(membership_path)
        members_props = Properties((*dyn_props.entries, Entry("version", format(version, "x"), 0)))
        verifier = build_verifier(
            members_props, path=membership_path, multi_address=multi_address, dynamic=True
        )
    else:
        verifier = build_verifier(props, path=path, multi_address=multi_address, dynamic=False)

    last_seen = None
    if next_dynamic_text is not None and dynamic_file is not None:
        last_seen = build_verifier(
            load_properties(next_dynamic_text, next_dynamic_path),
            path=next_dynamic_path,
            multi_address=multi_address,
            dynamic=False,
        )

    first_line = _first_server_line(props if dynamic_file is None else None)
    where = (membership_path, first_line)
    _check_membership(verifier, standalone_enabled, where, warnings)

    # myid (QuorumPeerConfig#setupMyId): only the first line, Long.parseLong, no trimming.
    my_id = None
    if myid_text is not None:
        first = myid_text.split("\n", 1)[0].split("\r", 1)[0]
        my_id = java_int(first, 64)
        if my_id is None:
            raise ConfigError(
                f"myid '{first}' is not a number: the file's first line must be this "
                "server's id, with nothing else on the line",
                path=myid_path or "myid",
                line=1,
            )

    me = verifier.all_members.get(my_id) if my_id is not None else None
    client_addr = _client_address(client_port, client_port_address)
    if me is not None and client_addr is not None and me.client_addr is not None:
        static_host, static_port = client_addr
        wildcard = is_wildcard_host(static_host)
        if (wildcard and static_port != me.client_addr.port) or (
            not wildcard
            and (
                static_port != me.client_addr.port
                or not _same_host(static_host, me.client_addr.host)
            )
        ):
            raise ConfigError(
                f"the client address of server.{my_id} ({me.client_addr}) differs from "
                f"clientPort/clientPortAddress ({static_host}:{static_port}): make them agree "
                "or drop one",
                path=membership_path,
                line=_server_line_number(props, my_id),
            )
    if me is not None and me.client_addr is None and client_addr is not None:
        me = QuorumServer(
            me.sid,
            me.quorum_addrs,
            me.election_addrs,
            me.role,
            HostPort(*client_addr),
            client_addr_from_static=True,
        )
        verifier = _replace_member(verifier, me)

    if me is not None and peer_type is not me.role:
        warnings.append(
            f"{path}: peerType={peer_type.value} but server.{my_id} is a {me.role.value}; "
            "the server line wins"
        )

    cfg = QuorumConfig(
        path=path,
        tick_time=tick_time,
        init_limit=r.int("initLimit", 0),
        sync_limit=r.int("syncLimit", 0),
        connect_to_learner_master_limit=r.int("connectToLearnerMasterLimit", 0),
        data_dir=data_dir,
        data_log_dir=data_log_dir,
        client_port=client_port or None,
        client_port_address=client_port_address,
        secure_client_port=secure_client_port or None,
        secure_client_port_address=r.value("secureClientPortAddress"),
        election_alg=election_alg,
        peer_type=peer_type,
        dynamic_config_file=dynamic_file,
        reconfig_enabled=r.bool("reconfigEnabled", False),
        standalone_enabled=standalone_enabled,
        quorum_listen_on_all_ips=r.bool("quorumListenOnAllIPs", False),
        multi_address_enabled=multi_address,
        multi_address_reachability_check_enabled=r.bool(
            "multiAddress.reachabilityCheckEnabled", True
        ),
        multi_address_reachability_check_timeout_ms=r.int(
            "multiAddress.reachabilityCheckTimeoutMs", DEFAULT_REACHABILITY_TIMEOUT_MS
        ),
        cnx_timeout_ms=r.int("cnxTimeout", DEFAULT_CNX_TIMEOUT_MS),
        quorum_cnxn_timeout_ms=r.int("quorumCnxnTimeoutMs", -1),
        election_port_bind_retry=r.int("electionPortBindRetry", DEFAULT_ELECTION_PORT_BIND_RETRY),
        four_letter_words=_four_letter_words(r.value("4lw.commands.whitelist")),
        min_session_timeout=min_session,
        max_session_timeout=max_session,
        min_notification_interval=r.int(
            "fastleader.minNotificationInterval", DEFAULT_MIN_NOTIFICATION_INTERVAL
        ),
        max_notification_interval=r.int(
            "fastleader.maxNotificationInterval", DEFAULT_MAX_NOTIFICATION_INTERVAL
        ),
        observer_master_port=r.int("observerMasterPort", 0) or None,
        ssl_quorum=r.bool("sslQuorum", False),
        port_unification=r.bool("portUnification", False),
        ssl_quorum_reload_cert_files=r.bool("sslQuorumReloadCertFiles", False),
        ssl_quorum_settings={
            e.key: e.value.strip() for e in props if e.key.startswith("ssl.quorum.")
        },
        quorum_sasl_enabled=sasl,
        my_id=my_id,
        verifier=verifier,
        last_seen_verifier=last_seen,
        unused_keys=tuple(unused),
        warnings=tuple(warnings),
    )
    _check_validity(cfg, r)
    return cfg


def _first_server_line(props: Properties | None) -> int | None:
    if props is None:
        return None
    lines = [e.line for e in props if e.key.startswith("server.")]
    return min(lines) if lines else None


def _server_line_number(props: Properties, sid: int | None) -> int | None:
    e = props.get(f"server.{sid}")
    return e.line if e else None


def _check_membership(
    verifier: QuorumVerifier,
    standalone_enabled: bool,
    where: tuple[str | None, int | None],
    warnings: list[str],
) -> None:
    """The membership table of spec A1 (``QuorumPeerConfig#parseDynamicConfig``)."""
    path, line = where
    voters = len(verifier.voting_members)
    observers = len(verifier.observing_members)
    if voters == 0:
        if not standalone_enabled:
            raise ConfigError(
                "standaloneEnabled=false but no participant is listed: add server.N lines",
                path=path,
                line=line,
            )
        if observers > 0:
            raise ConfigError(
                "only observers are listed: an ensemble needs participants to observe",
                path=path,
                line=line,
            )
    elif voters == 1 and standalone_enabled:
        if observers > 0:
            raise ConfigError(
                "one participant with observers runs standalone (standaloneEnabled=true), "
                "where observers are invalid: add participants or set standaloneEnabled=false",
                path=path,
                line=line,
            )
        warnings.append(
            f"{path}: only one participant: ZooKeeper ignores the server list and runs "
            "standalone (set standaloneEnabled=false for a one-voter ensemble)"
        )
    elif voters <= 2:
        warnings.append(f"{path}: {voters} participants: no server failure will be tolerated")
    elif voters % 2 == 0:
        warnings.append(f"{path}: {voters} participants: an odd number tolerates as many failures")


def _check_validity(cfg: QuorumConfig, r: _Reader) -> None:
    """``QuorumPeerConfig#checkValidity`` plus ``QuorumPeer#start``'s myid check."""
    if not cfg.is_distributed:
        return
    if cfg.init_limit == 0:
        raise r.fail("initLimit", "initLimit is not set: add initLimit=<ticks> (e.g. 10)")
    if cfg.sync_limit == 0:
        raise r.fail("syncLimit", "syncLimit is not set: add syncLimit=<ticks> (e.g. 5)")
    if cfg.my_id is None:
        raise ConfigError(
            f"myid file is missing: write this server's id into {cfg.data_dir}/myid",
            path=cfg.path,
        )
    assert cfg.verifier is not None
    if cfg.my_id not in cfg.verifier.all_members:
        # ZooKeeper passes parsing and fails at start: "My id N not in the peer list".
        raise ConfigError(
            f"myid is {cfg.my_id} but there is no server.{cfg.my_id} line: fix "
            f"{cfg.data_dir}/myid or add the server",
            path=cfg.path,
        )


def _client_address(port: int, address: str | None) -> tuple[str, int] | None:
    if port == 0:
        return None
    return (address or "0.0.0.0", port)


def _replace_member(
    verifier: MajorityVerifier | HierarchicalVerifier, server: QuorumServer
) -> MajorityVerifier | HierarchicalVerifier:
    servers = dict(verifier.all_members)
    servers[server.sid] = server
    if isinstance(verifier, HierarchicalVerifier):
        return HierarchicalVerifier(servers, verifier.groups, verifier.weights, verifier.version)
    return MajorityVerifier(servers, verifier.version)


def _four_letter_words(text: str | None) -> frozenset[str]:
    """``FourLetterCommands#isEnabled``: comma list, trimmed, ``*`` = all; srvr always on."""
    if text is None:
        return frozenset({"srvr"})
    words = {w.strip() for w in text.split(",") if w.strip()}
    return frozenset(words | {"srvr"})


def parse_config_string(
    text: str, *, multi_address: bool = True
) -> MajorityVerifier | HierarchicalVerifier:
    """A config string received from a peer (notification or NEWLEADER) -> a verifier.

    ``QuorumPeer#configFromString``: Properties text with only server.N, group.N, weight.N
    and version keys.  Raises :class:`ConfigError` (no location: it came off the wire).
    """
    props = load_properties(text, None)
    return build_verifier(props, path=None, multi_address=multi_address, dynamic=True)
