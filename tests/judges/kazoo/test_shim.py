"""The java shim's translation of JVM flags into zoo.cfg lines (tests/judges/javashim.py).

The pure part needs no Java.  The interop test proves the rule for ``zookeeper.*`` flags
on the real server: a Java 3.8.0 started on the translated zoo.cfg *without* the flags
honours the super digest and TTL nodes, as it does with them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl

from tests.interop.zk import ZooKeeperInstall, popen_group, server_command, write_log4j_properties
from tests.interop.zkserver import four_letter_word, free_ports, wait_for
from tests.judges.differential.workload import OPEN_ACL_UNSAFE, CreateTTL
from tests.judges.javashim import (
    QUORUM_PEER_MAIN,
    parse_java_command,
    translate,
    translated_config,
)

SUPER = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # kazoo's harness: the password is "test"

# What kazoo's ManagedZooKeeper#run passes (kazoo/testing/common.py), with the super digest
# of harness.py and the TTL switch of the C client's test server.
KAZOO_ARGV = [
    "-cp",
    "/usr/share/java/zookeeper.jar",
    "-Dfile.encoding=UTF-8",
    "-Dreadonlymode.enabled=true",
    "-Dzookeeper.log.dir=/tmp/log",
    "-Dzookeeper.root.logger=INFO,CONSOLE",
    "-Dlog4j.configuration=file:/tmp/log4j.properties",
    "-Djava.awt.headless=true",
    "-Djava.security.auth.login.config=/tmp/jaas.conf",
    f"-Dzookeeper.DigestAuthenticationProvider.superDigest={SUPER}",
    "-Dzookeeper.extendedTypesEnabled=true",
    QUORUM_PEER_MAIN,
    "/tmp/zoo.cfg",
]


def test_kazoo_command_line_is_split_like_the_launcher() -> None:
    cmd = parse_java_command(KAZOO_ARGV)
    assert cmd.main_class == QUORUM_PEER_MAIN
    assert cmd.arguments == ("/tmp/zoo.cfg",)
    assert ("readonlymode.enabled", "true") in cmd.properties
    assert cmd.other_options == ("-cp", "/usr/share/java/zookeeper.jar")


def test_the_flags_that_matter_become_zoo_cfg_lines() -> None:
    tr = translate(parse_java_command(KAZOO_ARGV), "tickTime=2000\nclientPort=1\n")
    assert tr.lines == (
        "readonlymode.enabled=true",
        "java.security.auth.login.config=/tmp/jaas.conf",
        f"DigestAuthenticationProvider.superDigest={SUPER}",
        "extendedTypesEnabled=true",
    )
    assert "-Dfile.encoding=UTF-8" in tr.dropped and "-Djava.awt.headless=true" in tr.dropped
    assert tr.kept_from_config == ()


def test_zoo_cfg_wins_over_a_flag_as_in_java() -> None:
    text = "extendedTypesEnabled = false\n"
    tr = translate(parse_java_command(["-Dzookeeper.extendedTypesEnabled=true", "Main"]), text)
    assert tr.lines == () and tr.kept_from_config == ("extendedTypesEnabled",)
    assert translated_config(text, tr) == text


def test_the_last_flag_of_a_name_wins_as_in_the_jvm() -> None:
    argv = ["-Dreadonlymode.enabled=false", "-Dreadonlymode.enabled=true", "Main"]
    assert translate(parse_java_command(argv), "").lines == ("readonlymode.enabled=true",)


@pytest.mark.interop
@pytest.mark.judge
def test_java_reads_the_translated_zookeeper_keys_from_zoo_cfg(
    zookeeper: ZooKeeperInstall, tmp_path: Path
) -> None:
    (client_port,) = free_ports(1)
    conf = tmp_path / "conf"
    data = tmp_path / "data"
    logs = tmp_path / "logs"
    data.mkdir()
    write_log4j_properties(conf)
    original = f"tickTime=200\ndataDir={data}\nclientPort={client_port}\n"
    original += "clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n"
    argv = [
        f"-Dzookeeper.DigestAuthenticationProvider.superDigest={SUPER}",
        "-Dzookeeper.extendedTypesEnabled=true",
        QUORUM_PEER_MAIN,
        str(conf / "zoo.cfg"),
    ]
    cfg = conf / "zoo.cfg"
    cfg.write_text(translated_config(original, translate(parse_java_command(argv), original)))
    # No -D flag of either kind on the JVM: only the translated zoo.cfg carries them.
    cmd = server_command(zookeeper, cfg, conf, logs)
    assert not any("superDigest" in c or "extendedTypes" in c for c in cmd)
    with popen_group(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        wait_for(
            lambda: _serving(client_port), timeout=60, what="ZooKeeper on the translated zoo.cfg"
        )
        hosts = f"127.0.0.1:{client_port}"
        owner = KazooClient(hosts, auth_data=[("digest", "alice:secret")])
        boss = KazooClient(hosts, auth_data=[("digest", "super:test")])
        stranger = KazooClient(hosts)
        for c in (owner, boss, stranger):
            c.start(timeout=30)
        try:
            owner.create("/private", b"p", acl=[make_digest_acl("alice", "secret", all=True)])
            with pytest.raises(NoAuthError):
                stranger.get("/private")
            assert boss.get("/private")[0] == b"p"  # the super digest from zoo.cfg
            result = owner.handler.async_result()
            owner._call(CreateTTL("/ttl", b"", OPEN_ACL_UNSAFE, 60000), result)
            path, stat = result.get(timeout=30)  # extendedTypesEnabled from zoo.cfg
            assert path == "/ttl" and stat.ephemeralOwner == 0
        finally:
            for c in (owner, boss, stranger):
                c.stop()
                c.close()


def _serving(port: int) -> bool:
    try:
        return "Mode: standalone" in four_letter_word("127.0.0.1", port, "srvr")
    except OSError:
        return False
