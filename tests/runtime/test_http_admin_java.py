"""ZooKeeper 3.8's AdminServer answers: how the reference in ``tests/testdata/adminserver`` is
taken, and a live re-check of it against Debian's 3.8.0 (``interop``).

Debian's ``zookeeper.jar`` starts its Jetty AdminServer only when the servlet API jar
(Debian package ``libservlet-api-java``, ``/usr/share/java/servlet-api.jar``) is on the class
path: the jar's manifest names the Jetty jars but not that one.  Every server here gets it,
with ``-Dzookeeper.admin.enableServer=true`` and its own ``admin.serverPort`` on loopback.

The reference is the *shape* of every answer, never its values: :func:`shape` turns a JSON
answer into nested key sets and value types (``"int"``, ``"str"``, ``"bool"``, ``"float"``,
``"null"``), lists into the shape of their first element, and maps keyed by data (sids,
session ids, paths, times) into one ``"*"`` key.  Four seats are recorded (standalone,
leader, follower, observer of a 3 + 1 ensemble) while a kazoo client holds a session with an
ephemeral node and watches on each server (so that session, watch and connection lists are
not empty), plus a ``looking`` seat (one voter of three, alone: not serving).

Re-record (a few minutes; needs ZooKeeper, a JDK and ``libservlet-api-java``)::

    PYTHONPATH=src:. /work/main/.venv/bin/python -m tests.runtime.test_http_admin_java \\
        tests/testdata/adminserver
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.interop.zk import ZooKeeperInstall, require_zookeeper
from tests.interop.zkserver import (
    JavaEnsemble,
    four_letter_word,
    free_ports,
    make_ensemble,
    wait_for,
)
from zkquorum.runtime.metrics import SERVER_METRICS

REFERENCE = Path(__file__).resolve().parents[1] / "testdata" / "adminserver"
SERVLET_API_JAR = Path("/usr/share/java/servlet-api.jar")

SEATS = ("standalone", "leader", "follower", "observer", "looking")

# 3.8.0's primary command names (``GET /commands``), and the aliases of each
# (``server/admin/Commands.java``).
COMMAND_NAMES: dict[str, tuple[str, ...]] = {
    "configuration": ("conf", "config"),
    "connection_stat_reset": ("crst",),
    "connections": ("cons",),
    "dirs": (),
    "dump": (),
    "environment": ("env", "envi"),
    "get_trace_mask": ("gtmk",),
    "hash": (),
    "initial_configuration": ("icfg",),
    "is_read_only": ("isro",),
    "last_snapshot": ("lsnp",),
    "leader": ("lead",),
    "monitor": ("mntr",),
    "observer_connection_stat_reset": ("orst",),
    "observers": ("obsr",),
    "ruok": (),
    "server_stats": ("srvr",),
    "set_trace_mask": ("stmk",),
    "stat_reset": ("srst",),
    "stats": ("stat",),
    "system_properties": ("sysp",),
    "voting_view": (),
    "watch_summary": ("wchs",),
    "watches": ("wchc",),
    "watches_by_path": ("wchp",),
    "zabstate": (),
}

FOUR_LETTER_WORDS = [
    "conf",
    "cons",
    "crst",
    "dirs",
    "dump",
    "envi",
    "gtmk",
    "ruok",
    "stmk",
    "srvr",
    "srst",
    "stat",
    "wchc",
    "wchp",
    "wchs",
    "mntr",
    "isro",
    "hash",
]

# Maps whose keys are data, not names: their shape is one "*" entry.
_DATA_KEYED = frozenset(
    {
        "current_config",
        "expiry_time_to_session_ids",
        "session_id_to_ephemeral_paths",
        "session_id_to_watched_paths",
        "path_to_session_ids",
    }
)


def shape(value: Any, key: str | None = None) -> Any:
    """The normalised shape of a JSON value (see the module docstring)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, dict):
        if key in _DATA_KEYED:
            first = next(iter(value.values()), None)
            return {"*": shape(first)} if value else {}
        return {k: shape(v, k) for k, v in value.items()}
    raise TypeError(f"not JSON: {value!r}")


def get_json(host: str, port: int, path: str, timeout: float = 5.0) -> Any:
    """The JSON answer; an HTTP error status as ``{"http_status": code}``."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        exc.close()
        return {"http_status": exc.code}


def admin_install(install: ZooKeeperInstall) -> ZooKeeperInstall:
    """The install with the servlet API jar on the class path (Jetty needs it)."""
    if not SERVLET_API_JAR.is_file():
        pytest.fail(
            f"{SERVLET_API_JAR} is missing: the AdminServer of Debian's ZooKeeper needs it "
            "(apt-get install libservlet-api-java)",
            pytrace=False,
        )
    return dataclasses.replace(install, log_jars=(*install.log_jars, SERVLET_API_JAR))


@dataclasses.dataclass
class AdminEnsemble:
    ens: JavaEnsemble
    admin_ports: dict[int, int]

    def answer(self, sid: int, command: str) -> Any:
        return get_json("127.0.0.1", self.admin_ports[sid], f"/commands/{command}")


@contextlib.contextmanager
def java_admin_ensemble(
    install: ZooKeeperInstall,
    base: Path,
    sids: tuple[int, ...],
    observers: tuple[int, ...] = (),
    start: tuple[int, ...] | None = None,
) -> Iterator[AdminEnsemble]:
    """Real 3.8 servers with their AdminServer on; stopped by pid whatever happens."""
    all_sids = (*sids, *observers)
    ports = dict(zip(all_sids, free_ports(len(all_sids)), strict=True))
    flags = {
        sid: [
            "-Dzookeeper.admin.enableServer=true",
            "-Dzookeeper.admin.serverAddress=127.0.0.1",
            f"-Dzookeeper.admin.serverPort={ports[sid]}",
        ]
        for sid in all_sids
    }
    ens = make_ensemble(
        admin_install(install),
        base,
        sids,
        observers=observers,
        settings={"4lw.commands.whitelist": "*"},
        jvm_flags=flags,
    )
    try:
        ens.start(start)
        yield AdminEnsemble(ens, ports)
    except BaseException:
        print(ens.logs(), file=sys.stderr)
        raise
    finally:
        ens.stop()


def _admin_up(ae: AdminEnsemble, sid: int, *, serving: bool = True) -> bool:
    """The AdminServer answers (and, with ``serving``, its server serves)."""
    try:
        answer = ae.answer(sid, "ruok")
    except OSError:
        return False
    return answer["error"] is None or not serving


def _serving_kinds(ae: AdminEnsemble, timeout: float = 60.0) -> dict[str, int]:
    """Seat kind -> sid, once every server serves."""

    def settled() -> bool:
        ae.ens.check_alive()
        modes = list(ae.ens.modes().values())
        return None not in modes and ("standalone" in modes or "leader" in modes)

    wait_for(settled, timeout=timeout, what="every server serving")
    for sid in ae.ens.servers:
        wait_for(lambda s=sid: _admin_up(ae, s), timeout=timeout, what=f"AdminServer of {sid}")
    return {mode: sid for sid, mode in ae.ens.modes().items() if mode is not None}


def _answers(ae: AdminEnsemble, sid: int) -> dict[str, Any]:
    """Every command's answer (``set_trace_mask`` with the argument 3.8 needs)."""
    out: dict[str, Any] = {}
    for name in COMMAND_NAMES:
        path = name
        if name == "set_trace_mask":
            # Set it to what it is (gtmk), so that recording changes nothing.
            mask = ae.answer(sid, "get_trace_mask")["tracemask"]
            path = f"set_trace_mask?traceMask={mask}"
        out[name] = ae.answer(sid, path)
    return out


def _four_letter_words(ae: AdminEnsemble, sid: int) -> dict[str, str]:
    port = ae.ens.servers[sid].client_port
    return {w: four_letter_word("127.0.0.1", port, w) for w in FOUR_LETTER_WORDS}


@contextlib.contextmanager
def _client_load(ae: AdminEnsemble) -> Iterator[None]:
    """One kazoo session per server: an ephemeral node, a data and a child watch each."""
    from kazoo.client import KazooClient

    clients = []
    try:
        for sid, server in ae.ens.servers.items():
            zk = KazooClient(hosts=f"127.0.0.1:{server.client_port}", timeout=10)
            zk.start(timeout=20)
            clients.append(zk)
            zk.ensure_path("/ops")
            zk.create(f"/ops/eph{sid}", b"x", ephemeral=True)
            zk.get("/ops", watch=lambda _e: None)
            zk.get_children("/ops", watch=lambda _e: None)
            zk.exists(f"/ops/missing{sid}", watch=lambda _e: None)
        yield
    finally:
        for zk in clients:
            with contextlib.suppress(Exception):
                zk.stop()
                zk.close()


def record_all(install: ZooKeeperInstall, work: Path) -> dict[str, dict[str, Any]]:
    """Raw answers per seat: ``{seat: {"commands": {...}, "fourletter": {...}}}``."""
    seats: dict[str, dict[str, Any]] = {}
    with java_admin_ensemble(install, work / "standalone", (1,)) as ae:
        kinds = _serving_kinds(ae)
        sid = kinds["standalone"]
        with _client_load(ae):
            seats["standalone"] = {
                "commands": _answers(ae, sid),
                "fourletter": _four_letter_words(ae, sid),
            }
    with java_admin_ensemble(install, work / "quorum", (1, 2, 3), observers=(4,)) as ae:
        kinds = _serving_kinds(ae)
        with _client_load(ae):
            for seat in ("leader", "follower", "observer"):
                seats[seat] = {
                    "commands": _answers(ae, kinds[seat]),
                    "fourletter": _four_letter_words(ae, kinds[seat]),
                }
    with java_admin_ensemble(install, work / "looking", (1, 2, 3), start=(1,)) as ae:
        wait_for(
            lambda: _admin_up(ae, 1, serving=False),
            timeout=60,
            what="AdminServer of the lone voter",
        )
        seats["looking"] = {
            "commands": _answers(ae, 1),
            "fourletter": _four_letter_words(ae, 1),
        }
    return seats


def load_reference(seat: str) -> dict[str, Any]:
    """``{"commands": {name: shape}, "keys": {name: [top-level keys in 3.8's order]}}``."""
    data: dict[str, Any] = json.loads((REFERENCE / f"{seat}.json").read_text())
    return data


def write_reference(seats: Mapping[str, Mapping[str, Any]], out: Path, work: Path) -> None:
    """Shapes per seat, and the four-letter words with the work directory as ``<work>``."""
    out.mkdir(parents=True, exist_ok=True)
    for seat, got in seats.items():
        commands = got["commands"]
        doc = {
            "seat": seat,
            "taken_with": "Debian zookeeper 3.8.0-11+deb12u2, OpenJDK 17, Jetty 9.4.57; "
            "see tests/runtime/test_http_admin_java.py",
            "commands": {name: shape(answer) for name, answer in commands.items()},
            "keys": {name: list(answer) for name, answer in commands.items()},
            "errors": {name: answer.get("error") for name, answer in commands.items()},
            "mntr_keys": [
                line.split("\t", 1)[0]
                for line in got["fourletter"]["mntr"].splitlines()
                if "\t" in line
            ],
        }
        (out / f"{seat}.json").write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
        # The four-letter words verbatim: formats, not values, are what the tests read.
        words = {w: t.replace(str(work), "<work>") for w, t in got["fourletter"].items()}
        (out / f"{seat}.4lw.json").write_text(json.dumps(words, indent=1) + "\n")


# ----------------------------------------------------------------------------- live re-check


_SET_NAMES = tuple(s.name for s in SERVER_METRICS if s.labelled)
_PLAIN_NAMES = frozenset(s.name for s in SERVER_METRICS if not s.labelled)
_SET_MEMBER = re.compile(
    r"^(avg|min|max|cnt|sum|p50|p95|p99|p999)_(.+_(" + "|".join(_SET_NAMES) + r"))$"
)


def is_set_member(key: str) -> bool:
    """``avg_<key>_<set>``...: a member of a summary set, named by data (a namespace, a
    learner's sid), not a name of 3.8's (``avg_quorum_ack_latency`` is a plain summary)."""
    m = _SET_MEMBER.match(key)
    return m is not None and m.group(2) not in _PLAIN_NAMES


def key_structure(s: Any, key: str | None = None) -> Any:
    """The key structure of a shape: maps keyed by data and lists only as "map" and "list"
    (their members depend on the data: compare those with :func:`members`)."""
    if isinstance(s, dict):
        if key in _DATA_KEYED:
            return "map"
        return {k: key_structure(v, k) for k, v in s.items()}
    if isinstance(s, list):
        return "list"
    return "."


def members(s: Any, key: str | None = None) -> list[tuple[str, Any]]:
    """(where, key structure) of the first member of every non-empty list and data-keyed
    map in a shape (an empty one says nothing about its members)."""
    out: list[tuple[str, Any]] = []
    if isinstance(s, dict):
        if key in _DATA_KEYED:
            first = s.get("*")
            if first not in (None, []):
                out.append((key or "", key_structure(first)))
            return out
        for k, v in s.items():
            out += members(v, k)
    elif isinstance(s, list) and s:
        out.append((f"{key}[]", key_structure(s[0])))
        out += members(s[0], key)
    return out


def same_keys(got: Any, want: Any) -> bool:
    """Equal key structures, and equal members wherever both sides have one."""
    if key_structure(got) != key_structure(want):
        return False
    mine = dict(members(got))
    return all(mine[where] == m for where, m in members(want) if where in mine)


@pytest.mark.interop
@pytest.mark.slow
def test_recorded_shapes_match_a_live_server(tmp_path: Path) -> None:
    """The recorded reference still describes what Debian's 3.8.0 answers (standalone, and a
    3 + 1 ensemble's leader, follower and observer)."""
    install = require_zookeeper()
    got = record_all(install, tmp_path)
    for seat in ("standalone", "leader", "follower", "observer", "looking"):
        ref = load_reference(seat)
        for name, answer in got[seat]["commands"].items():
            if name in ("system_properties", "environment"):
                # JVM and host specific key sets (java.*, sun.*, user.*): compared by the
                # keys that name ZooKeeper only.
                live = {k for k in answer if k.startswith("zookeeper.")}
                want = {k for k in ref["commands"][name] if k.startswith("zookeeper.")}
                assert live == want, (seat, name)
                continue
            if name == "monitor" and "http_status" not in answer:
                # Summary-set members (per learner, per namespace) come and go with the
                # traffic at the moment of asking: compare 3.8's own names only.
                live = {k for k in answer if not is_set_member(k)}
                want = {k for k in ref["commands"][name] if not is_set_member(k)}
                assert live == want, (seat, name, live ^ want)
                continue
            assert same_keys(shape(answer), ref["commands"][name]), (seat, name)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REFERENCE
    inst = require_zookeeper()
    with tempfile.TemporaryDirectory(prefix="adminserver-ref-") as tmp:
        write_reference(record_all(inst, Path(tmp)), target, Path(tmp))
    print(f"wrote {target}")
