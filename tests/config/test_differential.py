"""zoo.cfg, differential: zkquorum's parser against real ZooKeeper 3.8's own parser.

The corpus is ``corpus/<case>/``: a ``zoo.cfg``, maybe dynamic files, and ``case.toml``:

    about = "what the case shows"       spec = "the row of spec Part A it covers"
    zookeeper = "valid" | "invalid"     ZooKeeper 3.8.0's verdict, pinned
    error = "..."                       a substring of ZooKeeper's message (or its cause's)
    myid = "1\\n"                        dataDir/myid, byte for byte (absent: no myid file)
    jvm = ["-Dzookeeper.multiAddress.enabled=true"]   JVM flags of the ZooKeeper side
    main = true                         also run QuorumPeerMain (rows that fail only at start)
    exit_status = 2                     QuorumPeerMain's exit status (with main = true)

Files may use @DATADIR@ (the case's dataDir), @DIR@ (where the case's files are) and
@PORT1@..@PORT8@ (free loopback ports), substituted at test time. Trailing whitespace in
these files is deliberate (server lines keep it): keep editors from stripping it.

ZooKeeper's side: one JVM parses every config with ``QuorumPeerConfig#parse``
(``tests/interop/java/ConfigProbe.java``); cases with ``main = true`` also go through a real
``QuorumPeerMain`` (a config error exits 2; ``My id 9 not in the peer list`` exits 1).

Tests:
* ``test_zookeeper_agrees_with_the_corpus``: the pinned verdicts and messages are what the
  installed ZooKeeper really does (this keeps the corpus and the spec honest);
* ``test_zkquorum_verdict``: zkquorum accepts/rejects as pinned, except for the deliberate
  differences below; its errors are one line naming a file (runs without ZooKeeper);
* ``test_zkquorum_matches_zookeeper``: for every config both accept, the members, roles,
  addresses, client addresses, groups, weights, version, myid, distributed flag and the
  config string (compared as Properties) are the same.
"""

from __future__ import annotations

import dataclasses
import io
import re
import tomllib
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from tests.interop.zk import (
    MainRun,
    ProbeRequest,
    jvm_flags_to_properties,
    probe_configs,
    require_zookeeper,
    run_quorum_peer_main,
)
from tests.interop.zkserver import free_ports

CORPUS = Path(__file__).resolve().parent / "corpus"

# Cases where zkquorum deliberately gives another verdict than ZooKeeper 3.8.0:
# case name -> (zkquorum's verdict, why).
DELIBERATE_DIFFERENCES: dict[str, tuple[str, str]] = {
    "multi-key-without-jvm-flag": (
        "valid",
        "ZooKeeper 3.8 only honours '|' with the JVM property "
        "-Dzookeeper.multiAddress.enabled=true and ignores the zoo.cfg key for parsing "
        "(spec A1 multiAddress caveat); zkquorum honours multiAddress.enabled=true in zoo.cfg "
        "(issue 2).",
    ),
    "extra-clientportaddress-unresolvable": (
        "valid",
        "ZooKeeper resolves clientPortAddress while parsing (InetAddress.getByName) and fails "
        "on a name it cannot resolve; zkquorum's config layer is pure (no DNS): a name that "
        "does not resolve fails when the client port is bound.",
    ),
    "valid-multiaddress-repeated-quorum-address": (
        "invalid",
        "ZooKeeper keeps a server's addresses in sets, so a repeated address silently "
        "disappears and the quorum and election lists can end up of different lengths "
        "(one quorum address, two election addresses); zkquorum refuses the repeat and "
        "names it.",
    ),
}


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    source: Path
    about: str
    spec: str
    zookeeper_valid: bool
    error: str | None
    myid: str | None
    jvm: tuple[str, ...]
    main: bool
    exit_status: int | None

    @classmethod
    def load(cls, source: Path) -> Case:
        meta = tomllib.loads((source / "case.toml").read_text())
        unknown = set(meta) - {
            "about",
            "spec",
            "zookeeper",
            "error",
            "myid",
            "jvm",
            "main",
            "exit_status",
        }
        assert not unknown, f"{source.name}/case.toml: unknown keys {unknown}"
        assert meta["zookeeper"] in ("valid", "invalid"), source.name
        return cls(
            name=source.name,
            source=source,
            about=meta["about"],
            spec=meta["spec"],
            zookeeper_valid=meta["zookeeper"] == "valid",
            error=meta.get("error"),
            myid=meta.get("myid"),
            jvm=tuple(meta.get("jvm", ())),
            main=bool(meta.get("main", False)),
            exit_status=meta.get("exit_status"),
        )

    @property
    def zkquorum_valid(self) -> bool:
        if self.name in DELIBERATE_DIFFERENCES:
            return DELIBERATE_DIFFERENCES[self.name][0] == "valid"
        return self.zookeeper_valid


CASES = [Case.load(d) for d in sorted(CORPUS.iterdir()) if (d / "case.toml").is_file()]
CASE_IDS = [c.name for c in CASES]
BY_NAME = {c.name: c for c in CASES}
PLACEHOLDER = re.compile(r"@(DATADIR|DIR|PORT[1-8])@")


def materialize(case: Case, root: Path) -> Path:
    """Copy the case under ``root`` with placeholders filled in; return its zoo.cfg."""
    where = root / case.name
    data = where / "data"
    data.mkdir(parents=True)
    ports = free_ports(8)
    values = {"DATADIR": str(data), "DIR": str(where)}
    values.update({f"PORT{i + 1}": str(p) for i, p in enumerate(ports)})
    for f in case.source.iterdir():
        if f.name == "case.toml":
            continue
        text = f.read_bytes().decode("iso-8859-1")
        text = PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
        (where / f.name).write_bytes(text.encode("iso-8859-1"))
    if case.myid is not None:
        (data / "myid").write_bytes(case.myid.encode())
    return where / "zoo.cfg"


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    return {case.name: materialize(case, root) for case in CASES}


@dataclasses.dataclass(frozen=True)
class JavaVerdict:
    valid: bool
    probe: Mapping[str, Any]
    main: MainRun | None

    def text(self) -> str:
        """Everything ZooKeeper said about the config, for messages and substring checks."""
        parts = [str(self.probe.get(k)) for k in ("exception", "message", "cause", "cause_message")]
        if self.main is not None:
            parts.append(f"QuorumPeerMain exit status {self.main.exit_status}")
            parts.append(self.main.log[-4000:])
        return "\n".join(parts)


@pytest.fixture(scope="module")
def zookeeper_verdicts(
    configs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, JavaVerdict]:
    install = require_zookeeper(javac=True)
    requests = [ProbeRequest(configs[c.name], jvm_flags_to_properties(c.jvm)) for c in CASES]
    results = probe_configs(install, requests)
    runs = tmp_path_factory.mktemp("quorum-peer-main")
    verdicts = {}
    for case, probe in zip(CASES, results, strict=True):
        main = None
        if case.main:
            main = run_quorum_peer_main(
                install, configs[case.name], runs / case.name, jvm_flags=case.jvm, deadline=20
            )
        valid = bool(probe["ok"]) and (main is None or main.exit_status is None)
        verdicts[case.name] = JavaVerdict(valid, probe, main)
    return verdicts


# ------------------------------------------------------------------------------ the corpus


def test_corpus_covers_valid_and_broken_configs() -> None:
    assert len(CASES) >= 40
    valid = [c for c in CASES if c.zookeeper_valid]
    assert len(valid) >= 10 and len(CASES) - len(valid) >= 30
    for case in CASES:
        if not case.zookeeper_valid:
            assert case.error, f"{case.name}: an invalid case must pin ZooKeeper's error"
        if case.exit_status is not None:
            assert case.main, f"{case.name}: exit_status needs main = true"
    assert set(DELIBERATE_DIFFERENCES) <= set(BY_NAME)


@pytest.mark.interop
@pytest.mark.parametrize("name", CASE_IDS)
def test_zookeeper_agrees_with_the_corpus(
    name: str, zookeeper_verdicts: dict[str, JavaVerdict]
) -> None:
    case, java = BY_NAME[name], zookeeper_verdicts[name]
    assert java.valid == case.zookeeper_valid, f"{case.about}\nZooKeeper said:\n{java.text()}"
    if case.error is not None:
        assert case.error in java.text(), f"{case.about}\nZooKeeper said:\n{java.text()}"
    if case.main:
        assert java.main is not None
        if case.exit_status is None:
            assert java.main.started, java.main.log[-4000:]
        else:
            assert java.main.exit_status == case.exit_status, java.main.log[-4000:]
            assert java.main.seconds < 10
    if not java.probe["ok"]:
        # The probe predicts QuorumPeerMain's status: ConfigException/IAE 2, the rest 1.
        assert java.probe["exit_status"] in (1, 2)
        if java.main is not None:
            assert java.main.exit_status == java.probe["exit_status"], java.main.log[-4000:]


# ------------------------------------------------------------------------------ zkquorum


def _zkquorum_load(path: Path) -> tuple[Any, str | None]:
    """(config, None) or (None, error message); any other exception fails the test."""
    from zkquorum.config.errors import ConfigError
    from zkquorum.runtime.files import load_config

    try:
        return load_config(path), None
    except ConfigError as exc:
        return None, str(exc)


@pytest.mark.parametrize("name", CASE_IDS)
def test_zkquorum_verdict(name: str, configs: dict[str, Path]) -> None:
    case = BY_NAME[name]
    cfg, error = _zkquorum_load(configs[name])
    if case.zkquorum_valid:
        assert error is None, f"{case.about}: zkquorum rejects a config ZooKeeper accepts"
        assert cfg is not None
    else:
        assert cfg is None, f"{case.about}: zkquorum accepts; ZooKeeper says {case.error!r}"
        assert error is not None
        assert "\n" not in error, error
        files = {f.name for f in configs[name].parent.iterdir()} | {"myid"}
        assert any(f in error for f in files), f"error does not name the file: {error}"

    # The CLI gives the same verdict: exit 0, or 2 with one line on stderr.
    from zkquorum.cli.main import main as cli_main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = cli_main(["config", "check", str(configs[name])])
    if case.zkquorum_valid:
        assert status == 0, err.getvalue()
    else:
        assert status == 2, out.getvalue()
        assert len(err.getvalue().strip().splitlines()) == 1, err.getvalue()


def _properties(text: str) -> dict[str, str]:
    """A QuorumVerifier#toString document (plain key=value lines) as a dict."""
    out = {}
    for line in text.splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def _java_host(host: str) -> str:
    """zkquorum's host as Java's getHostString prints it (IPv6 long form, no brackets)."""
    from zkquorum.config.model import HostPort

    return HostPort(host, 0).java_host().removeprefix("[").removesuffix("]")


def _hostports(addrs: Any) -> list[list[Any]]:
    return sorted([_java_host(a.host), a.port] for a in addrs)


VALID_BOTH = [c.name for c in CASES if c.zookeeper_valid and c.zkquorum_valid]


@pytest.mark.interop
@pytest.mark.parametrize("name", VALID_BOTH)
def test_zkquorum_matches_zookeeper(
    name: str, configs: dict[str, Path], zookeeper_verdicts: dict[str, JavaVerdict]
) -> None:
    java = zookeeper_verdicts[name].probe
    assert java["ok"], java
    cfg, error = _zkquorum_load(configs[name])
    assert error is None, error

    assert cfg.my_id == (None if java["myid"] == -1 else java["myid"])
    assert cfg.is_distributed == java["distributed"]
    assert (cfg.tick_time, cfg.init_limit, cfg.sync_limit) == (
        java["tick_time"],
        java["init_limit"],
        java["sync_limit"],
    )
    if cfg.my_id is not None:
        assert cfg.learner_type.name == java["peer_type"]  # the server line wins

    jv = java["verifier"]
    qv = cfg.verifier
    if not jv["servers"]:
        # ZooKeeper builds an empty QuorumMaj when there are no server lines.
        assert qv is None or not qv.all_members
        return
    assert qv is not None
    assert sorted(qv.all_members) == sorted(int(s) for s in jv["servers"])
    for sid, js in jv["servers"].items():
        server = qv.all_members[int(sid)]
        assert server.role.name == js["type"], sid
        assert _hostports(server.quorum_addrs) == js["quorum"], sid
        assert _hostports(server.election_addrs) == js["election"], sid
        client = server.client_addr
        assert (None if client is None else [_java_host(client.host), client.port]) == (
            js["client"]
        ), sid
        if client is not None:
            # (ZooKeeper also sets the flag on its own entry when there is no clientPort at
            # all, with a null address: meaningless, so only compared with an address.)
            assert server.client_addr_from_static == js["client_from_static"], sid
        assert server.to_zk_string() == js["string"], sid
    assert sorted(qv.voting_members) == jv["voting"]
    assert sorted(qv.observing_members) == jv["observing"]

    groups = {int(g): frozenset(int(s) for s in v.split(":")) for g, v in jv["groups"].items()}
    weights = {int(s): int(w) for s, w in jv["weights"].items()}
    assert dict(getattr(qv, "groups", {})) == groups
    if groups:
        assert dict(qv.weights) == weights
    assert qv.version == jv["version"]
    assert _properties(qv.to_zk_string()) == _properties(jv["string"])
