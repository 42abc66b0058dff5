"""core/sessions.py against ZooKeeper 3.8.0's own classes, through ``ServerRulesProbe.java``.

The probe is compiled on first use against the installed jar into the shared Java cache
(``tests/interop/zk.py``), never into the repository; without ZooKeeper and ``javac`` these
tests skip with the reason, and fail in CI (``ZKQUORUM_REQUIRE_ZK=1``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.interop.zk import NOP_JAR, ZooKeeperInstall, _cache_root, require_zookeeper
from zkquorum.core.sessions import JavaRandom, generate_password, initialize_next_session_id

PROBE_SOURCE = Path(__file__).resolve().parents[1] / "interop" / "java" / "ServerRulesProbe.java"

LONGS = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)


def compile_rules_probe(install: ZooKeeperInstall) -> Path:
    """Compile ServerRulesProbe.java once per (source, jar, JDK); the class directory."""
    assert install.javac is not None
    jar_stat = install.jar.stat()
    key = hashlib.sha256(
        PROBE_SOURCE.read_bytes()
        + f"|{install.jar.resolve()}|{jar_stat.st_size}|{jar_stat.st_mtime_ns}|"
        f"{Path(install.javac).resolve()}".encode()
    ).hexdigest()[:16]
    out = _cache_root() / f"rules-probe-{key}"
    if (out / "ServerRulesProbe.class").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix="rules-probe-build-", dir=out.parent))
    try:
        proc = subprocess.run(
            [install.javac, "-nowarn", "-d", str(build), "-cp", str(install.jar),
             str(PROBE_SOURCE)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"javac ServerRulesProbe.java failed:\n{proc.stdout}{proc.stderr}")
        try:
            build.rename(out)  # atomic; another process may have won the race
        except OSError:
            if not (out / "ServerRulesProbe.class").is_file():
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return out


def ask_probe(questions: Sequence[str], *, timeout: float = 120.0) -> list[str]:
    """One JVM for all ``questions`` (see the probe's header); one answer line each."""
    install = require_zookeeper(javac=True)
    classes = compile_rules_probe(install)
    cp = [str(classes), str(install.jar)]
    if NOP_JAR.is_file():
        cp.append(str(NOP_JAR))
    proc = subprocess.run(
        [install.java, "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", os.pathsep.join(cp),
         "ServerRulesProbe"],
        input="".join(q + "\n" for q in questions),
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or len(lines) != len(questions):
        raise RuntimeError(
            f"ServerRulesProbe exited {proc.returncode} with {len(lines)} answers for "
            f"{len(questions)} questions\nstderr:\n{proc.stderr}"
        )
    return lines


def hex_text(s: str) -> str:
    """How the probe spells a string: ``x`` + hex of its UTF-8 (never empty)."""
    return "x" + s.encode("utf-8").hex()


# Hypothesis draws batches of cases and one JVM answers a whole batch (a JVM per case would be
# slow, so no shrinking either: the failure message names the case).  A few batches, since
# the first one Hypothesis draws is its simplest.
BATCHES = settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.large_base_example, HealthCheck.too_slow],
)


@BATCHES
@given(st.lists(LONGS, min_size=300, max_size=300, unique=True))
def test_passwords_match_generate_passwd(ids: list[int]) -> None:
    ids = [0, 1, -1, (1 << 63) - 1, -(1 << 63), 0xB3415C00, 0x100003AE6E00000, *ids]
    answers = ask_probe([f"passwd {i}" for i in ids])
    for i, answer in zip(ids, answers, strict=True):
        assert generate_password(i).hex() == answer, hex(i)


@BATCHES
@given(st.lists(LONGS, min_size=100, max_size=100))
def test_java_random_sequences(seeds: list[int]) -> None:
    seeds = [0, 42, -1, *seeds]
    answers = ask_probe([f"random {s}" for s in seeds])
    for seed, answer in zip(seeds, answers, strict=True):
        r = JavaRandom(seed)
        ours = [r.next_int(), r.next_int(), r.next_int(), r.next_long()]
        ours += [r.next_int(b) for b in (1, 7, 1 << 20, (1 << 31) - 1, 1_000_000_007)]
        assert " ".join(map(str, ours)) + " " + r.next_bytes(7).hex() == answer, seed


def test_initial_session_ids_match_initialize_next_session_id() -> None:
    sids = [0, 1, 2, 3, 100, 127, 128, 200, 254, 255]
    answers = ask_probe([f"nextid {sid}" for sid in sids])
    for sid, answer in zip(sids, answers, strict=True):
        before, java_id, after = map(int, answer.split())
        # Java read its clock once between `before` and `after`; some ms in that window
        # must give the same id here.
        candidates = {initialize_next_session_id(sid, t) for t in range(before, after + 1)}
        assert java_id in candidates, (sid, answer)
