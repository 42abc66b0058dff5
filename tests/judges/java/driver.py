"""Build and run ``tests/interop/java/ZkDriver.java``, the Java client driver.

Compiled on first use into the cache of ``tests/interop/zk.py`` (keyed by the source, the
jar and the JDK; never into the repository), run with ZooKeeper 3.8's client library and
the SLF4J no-op binding (the driver's stdout is its whole output).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.interop.zk import NOP_JAR, ZooKeeperInstall, _cache_root, popen_group

SOURCE = Path(__file__).resolve().parents[2] / "interop" / "java" / "ZkDriver.java"
GOLDEN = Path(__file__).resolve().parent / "golden-zookeeper-3.8.0.txt"

# What the driver needs of the server: TTL nodes, and a ContainerManager that runs often
# enough for the driver to see an emptied container and an expired TTL node deleted.
SERVER_PROPERTIES = {
    "zookeeper.extendedTypesEnabled": "true",
    "znode.container.checkIntervalMs": "100",
}


def compile_driver(install: ZooKeeperInstall) -> Path:
    """javac ZkDriver.java once per (source, jar, JDK); the class directory."""
    assert install.javac is not None, "javac is needed to compile the driver"
    jar = install.jar.stat()
    key = hashlib.sha256(
        SOURCE.read_bytes()
        + f"|{install.jar.resolve()}|{jar.st_size}|{jar.st_mtime_ns}|"
        f"{Path(install.javac).resolve()}".encode()
    ).hexdigest()[:16]
    out = _cache_root() / f"zkdriver-{key}"
    if (out / "ZkDriver.class").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix="zkdriver-build-", dir=out.parent))
    try:
        proc = subprocess.run(
            [install.javac, "-nowarn", "-d", str(build), "-cp", str(install.jar), str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"javac ZkDriver.java failed:\n{proc.stdout}{proc.stderr}")
        try:
            build.rename(out)  # atomic; another process may have won the race
        except OSError:
            if not (out / "ZkDriver.class").is_file():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return out


@dataclasses.dataclass(frozen=True, slots=True)
class DriverRun:
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


def run_driver(install: ZooKeeperInstall, hosts: str, *, timeout: float = 180.0) -> DriverRun:
    """Run the driver against ``hosts`` (one host:port); stopped by pid if it hangs."""
    classes = compile_driver(install)
    cp = [str(classes), str(install.jar)]
    if NOP_JAR.is_file():
        cp.append(str(NOP_JAR))
    cmd = [
        install.java,
        "-Xshare:auto",
        "-XX:TieredStopAtLevel=1",
        "-Dzookeeper.sasl.client=false",
        "-cp",
        os.pathsep.join(cp),
        "ZkDriver",
        hosts,
    ]
    start = time.monotonic()
    with popen_group(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            out, err = b"", f"ZkDriver timed out after {timeout} s".encode()
    return DriverRun(
        proc.returncode,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
        time.monotonic() - start,
    )
