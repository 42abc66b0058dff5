"""zoo.cfg interpretation: Java Properties syntax, every rejection as one located line, and
the canonical config string (spec A1 to A3)."""

from __future__ import annotations

import pytest

from zkquorum.config import ConfigError, HierarchicalVerifier, LearnerType, parse_zoo_cfg
from zkquorum.config.properties import load_properties

BASE = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/lib/zk\n"
THREE = "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2888:3888\nserver.3=127.0.0.3:2888:3888\n"


def parse(text: str, myid: str | None = "1", **kw: str) -> object:
    return parse_zoo_cfg(text, path="zoo.cfg", myid_text=myid, myid_path="data/myid", **kw)


# --- Properties syntax ---------------------------------------------------------------------


def test_properties_separators_comments_and_continuations() -> None:
    text = (
        "a=1\n"
        "b = 2\n"
        "c: 3\n"
        "d 4\n"
        "  # comment\n"
        "! also a comment\n"
        "e=one \\\n"
        "    two\n"
        "f\\=g=h\n"
        "tab\t\t\tx\n"
        "u=\\u0041\\t\n"
        "trailing=kept  \n"
    )
    got = {e.key: (e.value, e.line) for e in load_properties(text)}
    assert got == {
        "a": ("1", 1),
        "b": ("2", 2),
        "c": ("3", 3),
        "d": ("4", 4),
        "e": ("one two", 7),
        "f=g": ("h", 9),
        "tab": ("x", 10),
        "u": ("A\t", 11),
        "trailing": ("kept  ", 12),
    }


def test_properties_comment_does_not_continue_and_last_value_wins() -> None:
    props = load_properties("# note \\\nk=1\nk=2\n")
    assert props.get("k") is not None and props.get("k").value == "2"  # type: ignore[union-attr]
    assert [d.line for d in props.duplicates()] == [2]


def test_malformed_unicode_escape_is_located() -> None:
    with pytest.raises(ConfigError, match=r"^zoo.cfg:5: malformed \\uxxxx"):
        parse_zoo_cfg(BASE + "x=\\u00zz\n", path="zoo.cfg")


# --- valid configurations --------------------------------------------------------------------


def test_three_servers_config_string_and_views() -> None:
    cfg = parse(BASE + "clientPort=2181\n" + THREE)
    assert cfg.is_distributed and cfg.my_id == 1  # type: ignore[attr-defined]
    assert cfg.verifier.to_zk_string() == (  # type: ignore[attr-defined]
        "server.1=127.0.0.1:2888:3888:participant\n"
        "server.2=127.0.0.2:2888:3888:participant\n"
        "server.3=127.0.0.3:2888:3888:participant\n"
        "version=0"
    )
    # the static clientPort is attached to our own entry but hidden from the string
    me = cfg.me  # type: ignore[attr-defined]
    assert me.client_addr is not None and me.client_addr_from_static


def test_client_parts_observer_ipv6_and_multi_address() -> None:
    text = (
        BASE
        + "multiAddress.enabled=true\n"
        + "server.1=127.0.0.1:2888:3888|127.0.1.1:2889:3889\n"
        + "server.2=[::1]:2888:3888;2181\n"
        + "server.3=[2001:db8::2]:2888:3888:participant;[::1]:2182\n"
        + "server.4=127.0.0.4:2888:3888:OBSERVER;127.0.0.4:2184\n"
    )
    cfg = parse(text)
    lines = cfg.verifier.to_zk_string().split("\n")  # type: ignore[attr-defined]
    assert lines == [
        "server.1=127.0.0.1:2888:3888|127.0.1.1:2889:3889:participant",
        "server.2=[0:0:0:0:0:0:0:1]:2888:3888:participant;0.0.0.0:2181",
        "server.3=[2001:db8:0:0:0:0:0:2]:2888:3888:participant;[0:0:0:0:0:0:0:1]:2182",
        "server.4=127.0.0.4:2888:3888:observer;127.0.0.4:2184",
        "version=0",
    ]
    assert cfg.verifier.observing_members.keys() == {4}  # type: ignore[attr-defined]


def test_hierarchical_config() -> None:
    text = (
        BASE
        + THREE
        + "server.4=127.0.0.4:2888:3888:observer\n"
        + "group.1=1:2\ngroup.2=3\nweight.1=2\nweight.3=0\n"
    )
    cfg = parse(text)
    v = cfg.verifier  # type: ignore[attr-defined]
    assert isinstance(v, HierarchicalVerifier)
    assert v.weights == {1: 2, 2: 1, 3: 0}
    assert v.contains_quorum([1]) is True  # group 1 won (2 of 3) and group 2 does not count


def test_dynamic_file_version_from_name() -> None:
    cfg = parse(
        BASE + "dynamicConfigFile=/etc/zk/zoo.cfg.dynamic.100000000\n",
        dynamic_text=THREE,
        dynamic_path="/etc/zk/zoo.cfg.dynamic.100000000",
    )
    assert cfg.verifier.version == 0x100000000  # type: ignore[attr-defined]


def test_one_participant_is_standalone_unless_disabled() -> None:
    one = BASE + "server.1=127.0.0.1:2888:3888\n"
    assert not parse(one).is_distributed  # type: ignore[attr-defined]
    assert parse(one + "standaloneEnabled=false\n").is_distributed  # type: ignore[attr-defined]


def test_unknown_keys_are_kept_as_unused() -> None:
    cfg = parse(BASE + THREE + "fooBar=1\nssl.keyStore.location=/k\n")
    assert ("fooBar", 8) in cfg.unused_keys  # type: ignore[attr-defined]
    # the secure client port's keys, without a secure client port
    assert ("ssl.keyStore.location", 9) in cfg.unused_keys  # type: ignore[attr-defined]


def test_secure_client_port_and_its_keys() -> None:
    cfg = parse(
        BASE + THREE + "secureClientPort=2281\nsecureClientPortAddress=127.0.0.1\n"
        "ssl.keyStore.location=/k\nzookeeper.ssl.clientAuth=want\n"
    )
    assert cfg.secure_client_port == 2281  # type: ignore[attr-defined]
    assert cfg.secure_client_port_address == "127.0.0.1"  # type: ignore[attr-defined]
    assert cfg.unused_keys == ()  # type: ignore[attr-defined]


def test_keys_the_server_storage_and_ops_read_are_not_unused() -> None:
    used = (
        "autopurge.purgeInterval=1\nsnapCount=1000\nminSessionTimeout=4000\n"
        "zookeeper.extendedTypesEnabled=true\nadmin.serverPort=8080\n"
        "metricsProvider.httpPort=7000\nznode.container.checkIntervalMs=100\n"
    )
    cfg = parse(BASE + THREE + used)
    assert cfg.unused_keys == ()  # type: ignore[attr-defined]


def test_peer_type_disagreeing_with_server_line_warns_and_line_wins() -> None:
    cfg = parse(BASE + THREE + "server.4=127.0.0.4:2888:3888:observer\npeerType=participant\n", "4")
    assert cfg.learner_type is LearnerType.OBSERVER  # type: ignore[attr-defined]
    assert any("server line wins" in w for w in cfg.warnings)  # type: ignore[attr-defined]


# --- every rejection: one line, file and line number, and the fix -----------------------------

ERRORS = [
    # (zoo.cfg text, myid, expected start of the message)
    ("tickTime=2000\n" + THREE, "1", "zoo.cfg: dataDir is not set"),
    (BASE + "tickTime=0\n" + THREE, "1", "zoo.cfg:5: tickTime is 0"),
    (BASE.replace("initLimit=10\n", "") + THREE, "1", "zoo.cfg: initLimit is not set"),
    (BASE.replace("syncLimit=5\n", "") + THREE, "1", "zoo.cfg: syncLimit is not set"),
    (BASE + "electionAlg=1\n" + THREE, "1", "zoo.cfg:5: electionAlg=1: only 3"),
    (BASE + "peerType=voter\n" + THREE, "1", "zoo.cfg:5: peerType=voter"),
    (BASE + "standaloneEnabled=yes\n" + THREE, "1", "zoo.cfg:5: standaloneEnabled=yes: choose"),
    (BASE + "clientPortAddress=127.0.0.1\n" + THREE, "1", "zoo.cfg:5: clientPortAddress is set"),
    (BASE + "tickTime=fast\n" + THREE, "1", "zoo.cfg:5: tickTime=fast: not a whole number"),
    (BASE + THREE, None, "zoo.cfg: myid file is missing"),
    (BASE + THREE, "one", "data/myid:1: myid 'one' is not a number"),
    (BASE + THREE, "1 ", "data/myid:1: myid '1 ' is not a number"),
    (BASE + THREE, "9", "zoo.cfg: myid is 9 but there is no server.9"),
    (BASE + "server.x=127.0.0.1:2888:3888\n", "1", "zoo.cfg:5: 'server.x': 'x' is not a number"),
    (
        BASE + "server.1=127.0.0.1:2888:3888 \n",
        "1",
        "zoo.cfg:5: server.1: port '3888 ' of 127.0.0.1 is not a number (ZooKeeper keeps",
    ),
    (
        BASE + "server.1=zoo1-net1:2888:3888,zoo1-net2:2888:3888\n",
        "1",
        "zoo.cfg:5: server.1: 'zoo1-net1:2888:3888,zoo1-net2:2888:3888' lists addresses with ','",
    ),
    (
        BASE + "server.1=a:2888:3888|b:2889:3889\nserver.2=c:1:2\n",
        "1",
        "zoo.cfg:5: server.1: several addresses joined with '|' need multiAddress.enabled=true",
    ),
    (BASE + "server.1=127.0.0.1:2888\n", "1", "zoo.cfg:5: server.1: '127.0.0.1:2888' is not of"),
    (
        BASE + "server.1=127.0.0.1:2888:3888;1;2\n",
        "1",
        "zoo.cfg:5: server.1: '127.0.0.1:2888:3888;1;2' has more than one ';'",
    ),
    (
        BASE + "server.1=127.0.0.1:2888:3888;a:b:c\n",
        "1",
        "zoo.cfg:5: server.1: client part 'a:b:c'",
    ),
    (BASE + "server.1=127.0.0.1:2888:3888;port\n", "1", "zoo.cfg:5: server.1: client port 'port'"),
    (BASE + "server.1=127.0.0.1:qp:3888\n", "1", "zoo.cfg:5: server.1: port 'qp' of 127.0.0.1"),
    (
        BASE + "server.1=127.0.0.1:2888:70000\n",
        "1",
        "zoo.cfg:5: server.1: port 70000 is out of range",
    ),
    (
        BASE + "server.1=127.0.0.1:2888:2888\n",
        "1",
        "zoo.cfg:5: server.1: quorum port and election port are both 2888",
    ),
    (
        BASE + "server.1=127.0.0.1:2888:3888:voter\n",
        "1",
        "zoo.cfg:5: server.1: unrecognised role 'voter'",
    ),
    (
        BASE + "server.1=[::1:2888:3888\n",
        "1",
        "zoo.cfg:5: server.1: '[::1:2888:3888' starts with '['",
    ),
    (BASE + "server.1=[::1]:\n", "1", "zoo.cfg:5: server.1: '[::1]:' has no port"),
    (
        BASE + "server.1=::1:2888:3888\n",
        "1",
        "zoo.cfg:5: server.1: '::1:2888:3888' looks like an IPv6",
    ),
    (
        BASE
        + "multiAddress.enabled=true\nserver.1=a:1:2:observer|b:1:2:participant\nserver.2=c:1:2\n",
        "1",
        "zoo.cfg:6: server.1: its addresses disagree on the role",
    ),
    (BASE + "server.1=127.0.0.1:2888:3888:observer\n", "1", "zoo.cfg:5: only observers are listed"),
    (
        BASE + "server.1=a:1:2\nserver.2=b:1:2:observer\n",
        "1",
        "zoo.cfg:5: one participant with observers runs standalone",
    ),
    (
        BASE + "standaloneEnabled=false\n",
        "1",
        "zoo.cfg: standaloneEnabled=false but no participant",
    ),
    (
        BASE + THREE + "group.1=1:2\ngroup.2=2:3\n",
        "1",
        "zoo.cfg:9: server 2 is in group 1 and group 2",
    ),
    (BASE + THREE + "group.1=1:2\n", "1", "zoo.cfg:7: server.3 is a participant but in no group"),
    (
        BASE + THREE + "server.4=d:1:2:observer\ngroup.1=1:2:3:4\n",
        "1",
        "zoo.cfg: server 4 is in group 1 but is not a participant and has no weight.4",
    ),
    (
        BASE + "clientPort=2181\n" + THREE.replace(":3888\n", ":3888;127.0.0.1:2182\n", 1),
        "1",
        "zoo.cfg:6: the client address of server.1 (127.0.0.1:2182) differs",
    ),
    (
        BASE + "dynamicConfigFile=/x/zoo.cfg.dynamic\n" + THREE,
        "1",
        "zoo.cfg:6: server.1 is in zoo.cfg, but dynamicConfigFile is set",
    ),
    (
        BASE + "quorum.auth.serverRequireSasl=true\n" + THREE,
        "1",
        "zoo.cfg:5: quorum.auth.serverRequireSasl=true needs quorum.auth.enableSasl=true",
    ),
    (BASE + "cnxTimeout=5s\n" + THREE, "1", "zoo.cfg:5: cnxTimeout=5s: not a whole number"),
]


@pytest.mark.parametrize(("text", "myid", "expected"), ERRORS)
def test_rejections_are_one_located_line(text: str, myid: str | None, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text, myid)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(expected), message


def test_dynamic_file_rejections() -> None:
    with pytest.raises(ConfigError, match=r"^/d/zoo.cfg.dynamic:4: a dynamic file must not"):
        parse(
            BASE + "dynamicConfigFile=/d/zoo.cfg.dynamic\n",
            dynamic_text=THREE + "version=1\n",
            dynamic_path="/d/zoo.cfg.dynamic",
        )
    with pytest.raises(ConfigError, match=r"^/d/dyn:2: 'tickTime' does not belong"):
        parse(
            BASE + "dynamicConfigFile=/d/dyn\n",
            dynamic_text="server.1=a:1:2\ntickTime=1\n",
            dynamic_path="/d/dyn",
        )
