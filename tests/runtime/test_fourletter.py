"""Every four-letter word against Debian's 3.8.0 answers, recorded per seat
(``tests/testdata/adminserver/<seat>.4lw.json``), and the whitelist rules."""

from __future__ import annotations

import json
import re
import struct

import pytest

from tests.runtime.test_http_admin import (
    REFERENCE_SESSION,
    SEAT_OF,
    context,
    is_set_member,
)
from tests.runtime.test_http_admin_java import FOUR_LETTER_WORDS, REFERENCE
from zkquorum.runtime import fourletter
from zkquorum.runtime.opsview import ClientStats, ConnectionInfo, Seat

ALL = frozenset({"*"})
SERVING = ("standalone", "leader", "follower", "observer")
# The word's own connection, as 3.8 lists it in cons/stat/dump (interest 0, one packet in).
OWN = (ConnectionInfo("127.0.0.1:41752", interest_ops=0, packets_received=1),)
SESSION_CONN = ConnectionInfo(
    "127.0.0.1:41670",
    session_id=REFERENCE_SESSION,
    established_ms=1796455348189,
    session_timeout=4000,
    last_zxid=-1,
)


def recorded(seat: str) -> dict[str, str]:
    words: dict[str, str] = json.loads((REFERENCE / f"{seat}.4lw.json").read_text())
    return words


def clients(seat: str) -> ClientStats:
    learner = seat in ("follower", "observer")
    return ClientStats(
        connections=(SESSION_CONN,),
        session_expiry={} if learner else {11748400: (REFERENCE_SESSION,)},
        session_timeouts={REFERENCE_SESSION: 4000} if learner else {},
        ephemerals={REFERENCE_SESSION: ("/ops/eph3",)},
        watches={REFERENCE_SESSION: ("/ops", "/ops/missing3")},
    )


def normal(text: str) -> list[str]:
    """Lines with the values that vary between runs blanked, sorted (order is hash order
    in 3.8): hex ids, numbers, dates, paths, the version line."""
    text = re.sub(r"Zookeeper version: .*", "Zookeeper version: V", text)
    text = re.sub(r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d \w+ \d{4}", "DATE", text)
    text = re.sub(r"0x[0-9a-f]+", "0xH", text)
    text = re.sub(r"/ops/\w+", "/ops/P", text)
    text = re.sub(r"-?\d+(\.\d+)?", "N", text)
    return sorted(text.split("\n"))


def render(seat: str, word: str, **kw: object) -> str | None:
    ctx = context(SEAT_OF[seat], clients(seat))
    return fourletter.render(word, ctx, ALL, own=OWN, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("seat", SERVING)
@pytest.mark.parametrize("word", ["srvr", "stat", "cons", "dump", "wchc", "wchp", "wchs", "dirs"])
def test_formats_match_3_8(seat: str, word: str) -> None:
    got = render(seat, word)
    assert got is not None
    if word == "dump":
        # 3.8's ensemble held four sessions here, ours one: compare the kinds of lines.
        assert set(normal(got)) == set(normal(recorded(seat)[word])), got
    else:
        assert normal(got) == normal(recorded(seat)[word]), got


@pytest.mark.parametrize("seat", SERVING)
def test_conf_has_3_8_keys(seat: str) -> None:
    want = recorded(seat)["conf"]
    got = render(seat, "conf")
    assert got is not None

    def keys(text: str) -> list[str]:
        head = text.split("membership: ")[0]
        return [line.split("=")[0] for line in head.splitlines()]

    assert keys(got) == keys(want)
    assert got.endswith("\n") == want.endswith("\n")
    if seat != "standalone":
        assert got.rstrip().endswith("version=0") and "\nmembership: \nserver.1=" in got


@pytest.mark.parametrize("seat", SERVING)
def test_mntr_has_3_8_keys_and_value_types(seat: str) -> None:
    got = render(seat, "mntr")
    assert got is not None
    mine = dict(line.split("\t", 1) for line in got.splitlines())
    theirs = dict(line.split("\t", 1) for line in recorded(seat)["mntr"].splitlines())
    ours = {k for k in mine if not k.startswith("zk_zkquorum_")}
    assert ours == {k for k in theirs if not is_set_member(k.removeprefix("zk_"))}
    assert got.startswith("zk_version\t")
    for key in ("zk_avg_latency", "zk_avg_election_time", "zk_connection_drop_probability"):
        assert "." in mine[key] and "." in theirs[key], key  # floats print as floats
    for key in ("zk_min_latency", "zk_cnt_election_time", "zk_uptime", "zk_znode_count"):
        assert re.fullmatch(r"-?\d+", mine[key]), key


def test_envi_has_3_8_keys() -> None:
    got = render("leader", "envi")
    assert got is not None
    want = recorded("leader")["envi"]
    assert [line.split("=")[0] for line in got.splitlines()] == [
        line.split("=")[0] for line in want.splitlines()
    ]
    assert "zookeeper.version=3.8.0-" in got  # what kazoo's server_version() reads


@pytest.mark.parametrize("word", FOUR_LETTER_WORDS)
def test_not_serving_answers_as_3_8(word: str) -> None:
    want = recorded("looking")[word]
    got = render("looking", word)
    if word == "envi":
        assert got is not None and got.startswith("Environment:\nzookeeper.version=")
    elif word == "stmk":
        assert want == "" and got is None  # 3.8 closes without an answer
    else:
        assert got == want


@pytest.mark.parametrize("seat", SERVING)
def test_small_words(seat: str) -> None:
    words = recorded(seat)
    for word in ("ruok", "isro", "gtmk", "crst", "srst", "hash"):
        assert render(seat, word) == words[word], word


def test_stmk_sets_the_mask_from_eight_bytes() -> None:
    ctx = context(Seat.LEADER)
    assert fourletter.render("stmk", ctx, ALL, argument=struct.pack(">q", 7)) == "7"
    assert fourletter.render("gtmk", ctx, ALL) == "7"
    assert fourletter.render("stmk", ctx, ALL, argument=b"\x00\x01") is None
    assert fourletter.render("gtmk", ctx, ALL) == "7"


def test_read_only_seat() -> None:
    ctx = context(Seat.READ_ONLY)
    assert fourletter.render("isro", ctx, ALL) == "ro"
    srvr = fourletter.render("srvr", ctx, ALL)
    assert srvr is not None
    assert "\nREAD-ONLY mode; serving only read-only clients\n" in srvr
    assert "Mode: read-only\n" in srvr


def test_whitelist() -> None:
    ctx = context(Seat.LEADER)
    only_stat = frozenset({"stat"})
    assert fourletter.render("mntr", ctx, only_stat) == (
        "mntr is not executed because it is not in the whitelist.\n"
    )
    # srvr is always allowed; isro too in read-only mode (FourLetterCommands#isEnabled).
    assert (fourletter.render("srvr", ctx, frozenset()) or "").startswith("Zookeeper version")
    assert fourletter.render("isro", ctx, frozenset()) == (
        "isro is not executed because it is not in the whitelist.\n"
    )
    assert fourletter.render("isro", ctx, frozenset(), read_only_mode=True) == "rw"
    # A refused word is refused whatever the state, before "not serving".
    assert fourletter.render("conf", context(None), only_stat) == (
        "conf is not executed because it is not in the whitelist.\n"
    )
    # Not a word: close without an answer, whatever the whitelist.
    assert fourletter.render("abcd", ctx, ALL) is None
    assert set(FOUR_LETTER_WORDS) == fourletter.KNOWN_WORDS
