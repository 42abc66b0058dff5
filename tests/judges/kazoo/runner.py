"""Run kazoo's own test suite (``kazoo/tests``, shipped inside kazoo's wheel) unpatched.

kazoo's harness (``kazoo/testing/harness.py#get_global_cluster``, ``common.py``) starts its
own servers with ``java ... QuorumPeerMain zoo.cfg``; we put ``tests/judges/bin/java`` first
on ``PATH`` so that the target decides what runs:

* ``target="java"``: Debian's ZooKeeper 3.8.0 (the baseline);
* ``target="zkquorum"``: ``zkquorum run`` through ``tests/judges/javashim.py``.

kazoo's suite runs in a child pytest, in its own session (process group) so that every
server kazoo starts (its children) is stopped by that group's pid whatever happens, with a
private ``TMPDIR`` (kazoo's ``tempfile.mkdtemp`` server directories land there), a free
block of loopback ports (``ZOOKEEPER_PORT_OFFSET``; kazoo uses offset + 10*i + 0..4), and a
JUnit XML report read back into :class:`SuiteResult`.

From the command line (prints the counts, the failures and the wall time)::

    python -m tests.judges.kazoo.runner --target java --size 1            # CI's subset
    python -m tests.judges.kazoo.runner --target java --size 3 --full     # everything
    python -m tests.judges.kazoo.runner --target zkquorum --size 1 -- -k test_create
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.interop.zk import JAVA_DIR, ZOOKEEPER_JAR, stop_process
from tests.judges.ports import free_port_block

JUDGES = Path(__file__).resolve().parents[1]
BIN = JUDGES / "bin"
SRC = JUDGES.parents[1] / "src"
TARGETS = ("java", "zkquorum")

# The classpath kazoo's servers get: zookeeper.jar (its manifest brings jute, netty-handler,
# jetty...), the log4j binding (without it the server logs nothing), and the netty jars the
# manifest lacks but NettyServerCnxnFactory and the secure client port need.
CLASSPATH_JARS = (
    ZOOKEEPER_JAR,
    JAVA_DIR / "slf4j-log4j12.jar",
    JAVA_DIR / "log4j-1.2.jar",
    JAVA_DIR / "netty-codec.jar",
    JAVA_DIR / "netty-resolver.jar",
    JAVA_DIR / "netty-transport-native-unix-common.jar",
)

# The ZooKeeper version kazoo's version gates see (3.5+ settings: 4lw whitelist, reconfig,
# the super digest).
ZOOKEEPER_VERSION = "3.8.0"

# CI's subset: one test class or module per area kazoo covers, chosen from the baseline
# (docs in tests/judges/README.md).  Each item is a pytest node id relative to kazoo/tests.
CI_SUBSET = (
    "test_client.py::TestClient",
    "test_client.py::TestClientTransactions",
    "test_client.py::TestSessionCallbacks",
    "test_client.py::TestCallbacks",
    "test_client.py::TestNonChrootClient",
    "test_connection.py::TestConnectionHandler",
    "test_connection.py::TestConnectionDrop",
    "test_watchers.py",
    "test_lock.py::KazooLockTests",
    "test_cache.py::KazooTreeCacheTests",
    "test_queue.py",
    "test_barrier.py",
    "test_counter.py",
    "test_election.py",
    "test_party.py",
    "test_partitioner.py",
    "test_lease.py",
    "test_paths.py",
    "test_security.py",
    "test_client.py::TestSSLClient",
    "test_sasl.py",
)


# Tests that need ZOOKEEPER_CLUSTER_SIZE=3 (spec zk-server.md 3.1): they stop servers of the
# cluster (update_host_list stops cluster[0], read-only mode stops cluster[1] and [2]) or
# reconfigure it (standalone answers reconfig with UNIMPLEMENTED).  Deselected from a
# standalone run.
NEEDS_ENSEMBLE = (
    "test_client.py::TestClient::test_update_host_list",
    "test_eventlet_handler.py::TestEventletClient::test_update_host_list",
    "test_gevent_handler.py::TestGeventClient::test_update_host_list",
    "test_client.py::TestReconfig",
    "test_connection.py::TestReadOnlyMode",
)


def kazoo_tests_dir() -> Path:
    import kazoo

    return Path(kazoo.__file__).resolve().parent / "tests"


def kazoo_version() -> str:
    import kazoo.version

    return str(kazoo.version.__version__)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """One test case as the JUnit report says."""

    nodeid: str
    status: str  # passed, failed, error, skipped
    message: str
    seconds: float


@dataclasses.dataclass(frozen=True, slots=True)
class SuiteResult:
    target: str
    cluster_size: int
    returncode: int
    seconds: float
    outcomes: tuple[Outcome, ...]
    output: Path  # the child pytest's stdout and stderr
    work_dir: Path

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def not_passed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.status in ("failed", "error"))

    def summary(self) -> str:
        return (
            f"kazoo {kazoo_version()} suite against {self.target} "
            f"(cluster of {self.cluster_size}): {self.count('passed')} passed, "
            f"{self.count('failed')} failed, {self.count('error')} errors, "
            f"{self.count('skipped')} skipped in {self.seconds:.0f} s "
            f"(pytest exit {self.returncode})"
        )

    def report(self) -> str:
        lines = [self.summary()]
        for o in self.not_passed:
            first = o.message.strip().splitlines()[0][:160] if o.message.strip() else ""
            lines.append(f"  {o.status.upper()} {o.nodeid}: {first}")
        return "\n".join(lines)

    def tail(self, chars: int = 20000) -> str:
        try:
            return self.output.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def parse_junit(path: Path) -> tuple[Outcome, ...]:
    out: list[Outcome] = []
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        cls = case.get("classname", "")
        name = case.get("name", "")
        # classname is kazoo.tests.test_client.TestClient: make it a node id.
        parts = cls.split(".")
        nodeid = cls
        for i in range(len(parts)):
            if parts[i].startswith("test_"):
                nodeid = "/".join(parts[: i + 1]) + ".py::" + "::".join(parts[i + 1 :])
                break
        nodeid = f"{nodeid.rstrip(':')}::{name}"
        status, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                status = {"failure": "failed"}.get(tag, tag)
                message = el.get("message", "") or (el.text or "")
                break
        out.append(Outcome(nodeid, status, message, float(case.get("time", "0") or 0)))
    return tuple(out)


def suite_environment(
    target: str, cluster_size: int, port_offset: int, tmp: Path, base: Mapping[str, str]
) -> dict[str, str]:
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
    env = {
        k: v
        for k, v in base.items()
        if not k.startswith("ZOOKEEPER_") and not k.startswith("PYTEST_")
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{base.get('PATH', '/usr/bin:/bin')}",
        ZKQUORUM_JUDGE_TARGET=target,
        ZKQUORUM_PYTHON=sys.executable,
        PYTHONPATH=os.pathsep.join([str(SRC), *filter(None, [base.get("PYTHONPATH")])]),
        ZOOKEEPER_CLASSPATH=os.pathsep.join(str(p) for p in CLASSPATH_JARS),
        ZOOKEEPER_VERSION=ZOOKEEPER_VERSION,
        ZOOKEEPER_CLUSTER_SIZE=str(cluster_size),
        ZOOKEEPER_PORT_OFFSET=str(port_offset),
        TMPDIR=str(tmp),
        PYTHONUNBUFFERED="1",
    )
    return env


def run_suite(
    target: str,
    cluster_size: int,
    work_dir: Path,
    *,
    selection: Sequence[str] = CI_SUBSET,
    pytest_args: Sequence[str] = (),
    per_test_timeout: float = 180.0,
    deadline: float = 3600.0,
    exitfirst: bool = False,
) -> SuiteResult:
    """Run kazoo's tests (``selection``: node ids under kazoo/tests; empty = all of them)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    tmp = work_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    ini = work_dir / "pytest.ini"
    # kazoo's own pytest settings (its pyproject.toml), minus the live log echo.
    ini.write_text(f"[pytest]\naddopts = -ra\ntimeout = {per_test_timeout:g}\n")
    junit = work_dir / "junit.xml"
    output = work_dir / "pytest-output.txt"
    tests = kazoo_tests_dir()
    targets = [str(tests / item) for item in selection] if selection else [str(tests)]
    if cluster_size == 1:
        for item in NEEDS_ENSEMBLE:
            targets.append(f"--deselect={item}")
    # The port block: kazoo uses offset + 10*i + (0..4) for i < size.
    offset = free_port_block(10 * cluster_size)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(ini),
        # kazoo/tests as the rootdir: node ids (and --deselect) read test_client.py::...
        "--rootdir",
        str(tests),
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        "-q",
        *(["-x"] if exitfirst else []),
        *pytest_args,
        *targets,
    ]
    env = suite_environment(target, cluster_size, offset, tmp, os.environ)
    start = time.monotonic()
    with output.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=work_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            returncode = -1
        finally:
            # kazoo's servers are children in the same process group: stop them all.
            stop_process(proc)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    seconds = time.monotonic() - start
    outcomes = parse_junit(junit) if junit.is_file() else ()
    return SuiteResult(target, cluster_size, returncode, seconds, outcomes, output, work_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.judges.kazoo.runner")
    parser.add_argument("--target", choices=TARGETS, default="java")
    parser.add_argument("--size", type=int, default=3, help="ZOOKEEPER_CLUSTER_SIZE (3)")
    parser.add_argument("--full", action="store_true", help="the whole suite, not CI's subset")
    parser.add_argument("--work-dir", type=Path, help="where to keep logs (a new temp dir)")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments")
    args = parser.parse_args(argv)
    import tempfile

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="kazoo-suite-"))
    result = run_suite(
        args.target,
        args.size,
        work,
        selection=() if args.full else CI_SUBSET,
        pytest_args=args.pytest_args,
    )
    print(result.report())
    print(f"output: {result.output}")
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
