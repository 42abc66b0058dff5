"""``java ... QuorumPeerMain zoo.cfg`` -> ``python -m zkquorum run <translated zoo.cfg>``.

``tests/judges/bin/java`` runs this file when ``ZKQUORUM_JUDGE_TARGET=zkquorum``, so that a
harness written for the real server (kazoo's ``kazoo/testing/common.py#ManagedZooKeeper``,
which runs ``java -cp ... -D... org.apache.zookeeper.server.quorum.QuorumPeerMain zoo.cfg``)
starts a zkquorum peer instead, unpatched.  The process ``exec``s, so the harness's pid and
its SIGTERM reach zkquorum itself.

**The translation.**  zkquorum has no JVM, so the JVM system properties that change the
server's behaviour become lines of a copy of the zoo.cfg, ``zkquorum.cfg`` beside it:

    -Dzookeeper.<name>=<value>   ->   <name>=<value>
    -D<name>=<value>             ->   <name>=<value>     (names without the prefix)

for the names in :data:`TRANSLATED` only.  The first form is ZooKeeper 3.8's own rule read
backwards: ``QuorumPeerConfig#parseProperties`` turns every zoo.cfg key it does not know
into the system property ``zookeeper.<key>``, so for those names the copy means to a real
3.8 server exactly what the command line meant (``tests/judges/kazoo/test_shim.py`` checks
it against Java).  The second form has no zoo.cfg equivalent in Java (3.8 reads
``readonlymode.enabled``, ``java.security.auth.login.config`` and ``znode.container.*``
from the JVM only); zkquorum reads them from zoo.cfg under the same name.  A key already in
zoo.cfg keeps its zoo.cfg value, as in Java, where the parse runs after the JVM started.

    -Dreadonlymode.enabled=true
        -> readonlymode.enabled=true
    -Dzookeeper.DigestAuthenticationProvider.superDigest=S
        -> DigestAuthenticationProvider.superDigest=S
    -Djava.security.auth.login.config=/path/jaas.conf
        -> java.security.auth.login.config=/path/jaas.conf
    -Dzookeeper.extendedTypesEnabled=true
        -> extendedTypesEnabled=true
    -Dznode.container.checkIntervalMs=100          (the C client's test server uses it)
        -> znode.container.checkIntervalMs=100
    -Dznode.container.maxNeverUsedIntervalMs=N
        -> znode.container.maxNeverUsedIntervalMs=N

Every other flag (``-cp``, ``-X...``, ``-Dfile.encoding``, logging flags) is dropped and
named in the log.  The rest of kazoo's zoo.cfg stays as it is: zkquorum serves its
``secureClientPort`` (``ssl.*``) and SASL (``authProvider.1``, the JAAS file), and
accepts or ignores with a warning ``serverCnxnFactory``, ``admin.serverPort`` and
``maxClientCnxns``.

zkquorum's output goes to ``zookeeper.log`` in the zoo.cfg's directory, where kazoo's
harness collects server logs (``ManagedZooKeeper#get_logs``), after a header naming the
translation.  ``ZKQUORUM_RUN_ARGS`` adds arguments to ``zkquorum run`` (shell syntax).
Any invocation that is not QuorumPeerMain goes to the real JVM (``ZKQUORUM_REAL_JAVA``).

This file is run as a script by a Python that has zkquorum importable (the harness sets
``ZKQUORUM_PYTHON`` and ``PYTHONPATH``), and imports nothing from the test tree.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

QUORUM_PEER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
ZOOKEEPER_PREFIX = "zookeeper."

# The JVM system property names that change what the server does for the judges.
TRANSLATED = frozenset(
    {
        "readonlymode.enabled",
        "zookeeper.DigestAuthenticationProvider.superDigest",
        "java.security.auth.login.config",
        "zookeeper.extendedTypesEnabled",
        "znode.container.checkIntervalMs",
        "znode.container.maxNeverUsedIntervalMs",
    }
)

# java options that take the next argument as their value.
_OPTIONS_WITH_VALUE = frozenset({"-cp", "-classpath", "--class-path", "-jar"})


class ShimError(ValueError):
    """The java command line is not one the shim understands."""


@dataclasses.dataclass(frozen=True, slots=True)
class JavaCommand:
    """A java command line, split: options, the main class and its arguments."""

    properties: tuple[tuple[str, str], ...]
    other_options: tuple[str, ...]
    main_class: str | None
    arguments: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Translation:
    """What ``zkquorum run`` gets in place of the JVM's flags."""

    lines: tuple[str, ...]  # appended to the zoo.cfg copy
    dropped: tuple[str, ...]  # flags with no meaning for zkquorum
    kept_from_config: tuple[str, ...]  # translated keys that zoo.cfg already sets


def parse_java_command(argv: Sequence[str]) -> JavaCommand:
    """Split ``java`` arguments the way the launcher does (options until the main class)."""
    props: list[tuple[str, str]] = []
    other: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            return JavaCommand(tuple(props), tuple(other), arg, tuple(argv[i + 1 :]))
        if arg.startswith("-D"):
            name, _, value = arg[2:].partition("=")
            if not name:
                raise ShimError(f"empty system property name in {arg!r}")
            props.append((name, value))
        elif arg in _OPTIONS_WITH_VALUE:
            if i + 1 >= len(argv):
                raise ShimError(f"{arg} needs a value")
            other.extend(argv[i : i + 2])
            i += 1
        else:
            other.append(arg)
        i += 1
    return JavaCommand(tuple(props), tuple(other), None, ())


def config_key(property_name: str) -> str:
    """The zoo.cfg key for a system property (3.8 prefixes unknown zoo.cfg keys)."""
    if property_name.startswith(ZOOKEEPER_PREFIX):
        return property_name[len(ZOOKEEPER_PREFIX) :]
    return property_name


def _config_keys(config_text: str) -> set[str]:
    keys = set()
    for raw in config_text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        for sep in ("=", ":"):
            if sep in line:
                keys.add(line.split(sep, 1)[0].strip())
                break
    return keys


def translate(command: JavaCommand, config_text: str) -> Translation:
    """The zoo.cfg lines that carry the command's meaningful -D flags (module docstring)."""
    present = _config_keys(config_text)
    lines: list[str] = []
    kept: list[str] = []
    dropped: list[str] = list(command.other_options)
    seen: dict[str, str] = {}
    for name, value in command.properties:
        if name in TRANSLATED:
            seen[name] = value  # the JVM keeps the last -D of a name
        else:
            dropped.append(f"-D{name}={value}")
    for name, value in seen.items():
        key = config_key(name)
        if key in present:
            kept.append(key)
        else:
            lines.append(f"{key}={value}")
    return Translation(tuple(lines), tuple(dropped), tuple(kept))


def translated_config(config_text: str, translation: Translation) -> str:
    head = config_text if config_text.endswith("\n") or not config_text else config_text + "\n"
    if not translation.lines:
        return head
    return (
        head
        + "# translated from JVM flags by tests/judges/javashim.py\n"
        + "\n".join(translation.lines)
        + "\n"
    )


def _real_java(argv: Sequence[str]) -> None:
    java = os.environ.get("ZKQUORUM_REAL_JAVA", "/usr/bin/java")
    os.execv(java, [java, *argv])


def main(argv: Sequence[str]) -> int:
    command = parse_java_command(argv)
    if command.main_class != QUORUM_PEER_MAIN:
        _real_java(argv)
    if len(command.arguments) != 1:
        raise ShimError(f"QuorumPeerMain takes one zoo.cfg here, got {list(command.arguments)}")
    source = Path(command.arguments[0])
    text = source.read_text()
    translation = translate(command, text)
    target = source.with_name("zkquorum.cfg")
    target.write_text(translated_config(text, translation))
    log_path = source.with_name("zookeeper.log")
    run = [sys.executable, "-m", "zkquorum", "run", str(target)]
    run += shlex.split(os.environ.get("ZKQUORUM_RUN_ARGS", ""))
    with log_path.open("a") as log:
        log.write(f"javashim: {shlex.join(run)}\n")
        for line in translation.lines:
            log.write(f"javashim: translated {line}\n")
        for key in translation.kept_from_config:
            log.write(f"javashim: {key} kept as zoo.cfg sets it\n")
        log.write(f"javashim: dropped {shlex.join(translation.dropped)}\n")
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.execv(sys.executable, run)
    return 1  # not reached: execv replaces the process


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (ShimError, OSError) as exc:
        print(f"javashim: {exc}", file=sys.stderr)
        sys.exit(2)
