"""Real Apache ZooKeeper 3.8 (Debian package ``zookeeper``) for zkquorum's tests.

* :func:`find_zookeeper` locates the jar, a JVM and the SLF4J binding jars; when something is
  missing, :func:`zookeeper_status` says what and which Debian package brings it.
* :func:`require_zookeeper` applies the project policy: without ZooKeeper a test is skipped
  with the reason, except in CI (``CI=true``) or with ``ZKQUORUM_REQUIRE_ZK=1``, where it fails.
* :func:`probe_configs` asks ZooKeeper's own parser (``QuorumPeerConfig#parse``) about many
  zoo.cfg files in one JVM, through our ``java/ConfigProbe.java``, compiled on first use into
  a cache directory keyed by the source, the jar and the JDK (never into the repository).
* :func:`run_quorum_peer_main` starts the real ``QuorumPeerMain`` on one zoo.cfg and reports
  its exit status (2 = config error) or that it started, then stops it by pid.

Debian packages relied on: ``zookeeper`` (brings ``libzookeeper-java``, ``libslf4j-java``,
``liblog4j1.2-java`` and a JRE) and, for the probe, a JDK with ``javac``:
``default-jdk-headless`` (on Debian 12: ``openjdk-17-jdk-headless``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PROBE_SOURCE = HERE / "java" / "ConfigProbe.java"

JAVA_DIR = Path(os.environ.get("ZKQUORUM_JAVA_DIR", "/usr/share/java"))
ZOOKEEPER_JAR = Path(os.environ.get("ZKQUORUM_ZOOKEEPER_JAR", str(JAVA_DIR / "zookeeper.jar")))
# zookeeper.jar's manifest Class-Path has no SLF4J binding: without these the server logs
# nothing at all (spec zk-reference.md, "Classpath").
LOG_JARS = (JAVA_DIR / "slf4j-log4j12.jar", JAVA_DIR / "log4j-1.2.jar")
# The probe only needs silence.
NOP_JAR = JAVA_DIR / "slf4j-nop.jar"

QUORUM_PEER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
INSTALL_HINT = "apt-get install -y zookeeper default-jdk-headless"

LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=${zookeeper.log.dir}/${zookeeper.log.file}
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
"""


@dataclasses.dataclass(frozen=True)
class ZooKeeperInstall:
    """Where the pieces of a usable ZooKeeper 3.8 are."""

    jar: Path
    java: str
    javac: str | None
    log_jars: tuple[Path, ...]

    def server_classpath(self, conf_dir: Path) -> str:
        """``conf_dir`` (holding log4j.properties) + zookeeper.jar + the log4j binding."""
        return os.pathsep.join([str(conf_dir), str(self.jar), *map(str, self.log_jars)])


def _find() -> tuple[ZooKeeperInstall | None, str]:
    java = shutil.which("java")
    if java is None:
        return None, f"no 'java' on PATH ({INSTALL_HINT})"
    if not ZOOKEEPER_JAR.is_file():
        return None, f"{ZOOKEEPER_JAR} not found (Debian package 'zookeeper'; {INSTALL_HINT})"
    missing = [str(p) for p in LOG_JARS if not p.is_file()]
    if missing:
        return None, (
            f"missing {', '.join(missing)} (Debian packages libslf4j-java, liblog4j1.2-java)"
        )
    return ZooKeeperInstall(ZOOKEEPER_JAR, java, shutil.which("javac"), LOG_JARS), ""


_STATUS: tuple[ZooKeeperInstall | None, str] | None = None


def zookeeper_status() -> tuple[ZooKeeperInstall | None, str]:
    """The install (or None) and, when None, the reason."""
    global _STATUS
    if _STATUS is None:
        _STATUS = _find()
    return _STATUS


def zookeeper_available() -> bool:
    return zookeeper_status()[0] is not None


def zookeeper_unavailable_reason() -> str:
    return zookeeper_status()[1]


def zookeeper_required() -> bool:
    """CI must never skip the interop tests."""
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("ZKQUORUM_REQUIRE_ZK", "") == "1"
    )


def _unavailable(reason: str) -> None:
    if zookeeper_required():
        pytest.fail(
            f"real ZooKeeper 3.8 is required here (CI=true or ZKQUORUM_REQUIRE_ZK=1) "
            f"but unusable: {reason}",
            pytrace=False,
        )
    pytest.skip(f"real ZooKeeper 3.8 not available: {reason}")


def require_zookeeper(*, javac: bool = False) -> ZooKeeperInstall:
    """Return the install, or skip (locally) / fail (CI) with the reason."""
    install, reason = zookeeper_status()
    if install is None:
        _unavailable(reason)
        raise AssertionError("unreachable")
    if javac and install.javac is None:
        _unavailable(f"no 'javac' on PATH (Debian package default-jdk-headless; {INSTALL_HINT})")
    return install


# ---------------------------------------------------------------------------- the config probe


def _cache_root() -> Path:
    env = os.environ.get("ZKQUORUM_JAVA_CACHE")
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"zkquorum-java-cache-{os.getuid()}"


def compile_probe(install: ZooKeeperInstall) -> Path:
    """Compile ConfigProbe.java once per (source, jar, JDK); return the class directory."""
    assert install.javac is not None, "javac is needed to compile the probe"
    source = PROBE_SOURCE.read_bytes()
    jar_stat = install.jar.stat()
    key = hashlib.sha256(
        source
        + f"|{install.jar.resolve()}|{jar_stat.st_size}|{jar_stat.st_mtime_ns}|"
        f"{Path(install.javac).resolve()}".encode()
    ).hexdigest()[:16]
    out = _cache_root() / f"probe-{key}"
    if (out / "ConfigProbe.class").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix="probe-build-", dir=out.parent))
    try:
        proc = subprocess.run(
            [
                install.javac,
                "-nowarn",
                "-d",
                str(build),
                "-cp",
                str(install.jar),
                str(PROBE_SOURCE),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"javac ConfigProbe.java failed:\n{proc.stdout}{proc.stderr}")
        try:
            build.rename(out)  # atomic; another process may have won the race
        except OSError:
            if not (out / "ConfigProbe.class").is_file():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return out


@dataclasses.dataclass(frozen=True)
class ProbeRequest:
    """One zoo.cfg and the JVM system properties to set while parsing it."""

    path: Path
    system_properties: Mapping[str, str] = dataclasses.field(default_factory=dict)


def jvm_flags_to_properties(flags: Sequence[str]) -> dict[str, str]:
    """``["-Dk=v", ...]`` -> ``{"k": "v"}`` (only -D flags mean anything to the probe)."""
    props: dict[str, str] = {}
    for flag in flags:
        if not flag.startswith("-D"):
            raise ValueError(f"the config probe only takes -D flags, not {flag!r}")
        key, _, value = flag[2:].partition("=")
        props[key] = value
    return props


def probe_configs(
    install: ZooKeeperInstall, requests: Sequence[ProbeRequest], *, timeout: float = 60.0
) -> list[dict[str, Any]]:
    """Parse every config with ZooKeeper's QuorumPeerConfig in one JVM; one dict per config.

    Each dict has ``ok``; errors carry ``exception``, ``message``, ``cause``,
    ``cause_message`` and the ``exit_status`` QuorumPeerMain would give (2 or 1); valid ones
    carry ``myid``, ``distributed``, ``verifier`` (servers, groups, weights, version, string)...
    """
    classes = compile_probe(install)
    cp = [str(classes), str(install.jar)]
    if NOP_JAR.is_file():
        cp.append(str(NOP_JAR))
    args: list[str] = []
    for req in requests:
        args.extend(f"-D{k}={v}" for k, v in req.system_properties.items())
        args.append(str(req.path))
    proc = subprocess.run(
        [
            install.java,
            "-Xshare:auto",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            os.pathsep.join(cp),
            "ConfigProbe",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or len(lines) != len(requests):
        raise RuntimeError(
            f"ConfigProbe exited {proc.returncode} with {len(lines)} results for "
            f"{len(requests)} configs\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    results = [json.loads(line) for line in lines]
    for req, res in zip(requests, results, strict=True):
        assert res["path"] == str(req.path), (res["path"], req.path)
    return results


# --------------------------------------------------------------------------- QuorumPeerMain


# What QuorumPeerMain logs once it is past every start-up check: a quorum peer entering
# its first state, or (one voter, standaloneEnabled) the standalone server's request
# processor starting.
STARTED_RE = re.compile(
    r"QuorumPeer@\d+\] - (LOOKING|OBSERVING)\s*$"
    r"|PrepRequestProcessor \(sid:\d+\) started",
    re.MULTILINE,
)


def write_log4j_properties(conf_dir: Path) -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    (conf_dir / "log4j.properties").write_text(LOG4J_PROPERTIES)


def server_command(
    install: ZooKeeperInstall,
    cfg: Path,
    conf_dir: Path,
    log_dir: Path,
    jvm_flags: Sequence[str] = (),
) -> list[str]:
    """The JVM command line of a QuorumPeerMain, logging to ``log_dir/zookeeper.log``."""
    return [
        install.java,
        f"-Dzookeeper.log.dir={log_dir}",
        "-Dzookeeper.log.file=zookeeper.log",
        # The AdminServer (Jetty) would bind 8080 on every server: off unless asked for.
        "-Dzookeeper.admin.enableServer=false",
        *jvm_flags,
        "-cp",
        install.server_classpath(conf_dir),
        QUORUM_PEER_MAIN,
        str(cfg),
    ]


@contextlib.contextmanager
def popen_group(cmd: Sequence[str], **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cmd`` in its own process group; on exit stop it (TERM, then KILL) by pid."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
        list(cmd), start_new_session=True, **kwargs
    )
    try:
        yield proc
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> int | None:
    """Stop a process we started (its own session) by its pid; return its exit status."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)
    return proc.returncode


@dataclasses.dataclass(frozen=True)
class MainRun:
    """What QuorumPeerMain did with a config within the deadline."""

    exit_status: int | None  # None: it was still running (we stopped it)
    started: bool  # it logged that it got past the start-up checks
    log: str  # zookeeper.log + stdout/stderr
    seconds: float

    @property
    def config_error(self) -> bool:
        return self.exit_status == 2


def run_quorum_peer_main(
    install: ZooKeeperInstall,
    cfg: Path,
    work_dir: Path,
    *,
    jvm_flags: Sequence[str] = (),
    deadline: float = 15.0,
) -> MainRun:
    """Run QuorumPeerMain on ``cfg`` until it exits, logs that it started, or ``deadline``."""
    conf_dir = work_dir / "conf"
    log_dir = work_dir / "logs"
    write_log4j_properties(conf_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / "zookeeper.log"
    out_file = log_dir / "stdout.txt"
    start = time.monotonic()
    started = False
    status: int | None = None
    with (
        out_file.open("wb") as out,
        popen_group(
            server_command(install, cfg, conf_dir, log_dir, jvm_flags),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        ) as proc,
    ):
        while True:
            status = proc.poll()
            if status is not None:
                break
            if log_file.is_file() and STARTED_RE.search(log_file.read_text(errors="replace")):
                started = True
                break
            if time.monotonic() - start > deadline:
                break
            time.sleep(0.05)  # polling interval, not synchronisation
    seconds = time.monotonic() - start
    log = log_file.read_text(errors="replace") if log_file.is_file() else ""
    log += out_file.read_text(errors="replace")
    return MainRun(status, started, log, seconds)
