"""Hostile input on both ports while a 3-peer ensemble runs (issue 9).

The ensemble: participants 1, 2, 3 and an observer 9 that is in the configuration but never
runs (so the test can speak as a member without displacing a real peer's connection).
While the peers lead and follow, the test connects to every election port and to the
leader's quorum port and sends what ZooKeeper's history says breaks servers: random
bytes, truncated initial messages and frames, declared lengths -1, 0 and 2 GB, unknown
protocol versions, an address with port 70000, notifications with bogus config text or a
config version far above the ensemble's, quorum streams that do not start with
FOLLOWERINFO, strangers' sids, a flood of 1,000 connections, and slow senders that stop
half-way.

Checked: every bad connection is closed by the peer; the peers keep leading and
following (no new election, no phase ended, the same leader and epoch); resident memory
stays bounded; ``mntr``'s ``zk_zkquorum_election_connections_refused`` grows by exactly the
number of bad election connections each peer got.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import resource
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.checker import check_logs
from tests.chaos.harness import ChaosCluster, ChaosServer
from tests.interop.zkserver import four_letter_word
from zkquorum.wire.election import (
    PROTOCOL_VERSION_V1,
    PROTOCOL_VERSION_V2,
    InitialMessage,
    Notification,
    ServerState,
    decode_notification_frame,
    encode_initial_message,
    encode_notification_frame,
)
from zkquorum.wire.quorum import (
    LearnerInfo,
    PacketType,
    QuorumPacket,
    encode_learner_info,
    encode_packet,
)

HOST = "127.0.0.1"
MEMBER = 9  # an observer of the configuration that never runs: the test speaks as it
STRANGER = 42
FLOOD = 1000
CLOSE_WITHIN = 10.0  # s; handshake timeout is tickTime*syncLimit = 1 s, initLimit 2 s
RSS_SLACK_KIB = 30 * 1024
TWO_GB = 0x7FFFFFFF


def _hs(sid: int = MEMBER, addr: str = "127.0.0.1:1", version: int = PROTOCOL_VERSION_V1) -> bytes:
    return encode_initial_message(InitialMessage(version, sid, (addr,)))


def _vote(config: str | None, *, state: ServerState = ServerState.LOOKING) -> bytes:
    return encode_notification_frame(Notification(state, MEMBER, 0, 1, 0, 2, config))


def _raw_initial(version: int, sid: int, length: int, body: bytes = b"") -> bytes:
    return struct.pack(">qqi", version, sid, length) + body


def _qp(ptype: int, data: bytes | None = None, zxid: int = 0) -> bytes:
    return encode_packet(QuorumPacket(ptype, zxid, data))


def _election_attacks(rng: random.Random) -> list[tuple[str, list[bytes]]]:
    """(name, chunks): each is one connection the peer must close as bad."""
    bad = [(f"random bytes #{i}", [rng.randbytes(rng.randint(64, 4096))]) for i in range(5)]
    bad += [
        ("truncated initial message", [_hs()[:17]]),
        ("address length -1", [_raw_initial(PROTOCOL_VERSION_V1, MEMBER, -1)]),
        ("address length 0", [_raw_initial(PROTOCOL_VERSION_V1, MEMBER, 0)]),
        ("address length 2 GB", [_raw_initial(PROTOCOL_VERSION_V2, MEMBER, TWO_GB, b"x" * 100)]),
        ("frame length -1", [_hs() + struct.pack(">i", -1)]),
        ("frame length 0", [_hs() + struct.pack(">i", 0)]),
        ("frame length 2 GB", [_hs() + struct.pack(">i", TWO_GB) + b"\0" * 1000]),
        ("protocol version -3", [struct.pack(">q", -3) + b"\0" * 40]),
        ("protocol version -65534 (V3)", [_raw_initial(-65534, MEMBER, 11, b"127.0.0.1:1")]),
        ("port 70000", [_raw_initial(PROTOCOL_VERSION_V1, MEMBER, 15, b"127.0.0.1:70000")]),
        (
            "port 70000, second of two addresses",
            [_raw_initial(PROTOCOL_VERSION_V2, MEMBER, 27, b"127.0.0.1:1|127.0.0.1:70000")],
        ),
        ("unknown sid", [_hs(STRANGER) + _vote(None)]),
        ("sid 0 (old style, not a member)", [struct.pack(">q", 0) + _vote(None)]),
        ("http request", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]),
    ]
    return bad


def _quorum_attacks(rng: random.Random) -> list[tuple[str, list[bytes]]]:
    info = encode_learner_info(LearnerInfo(2))
    return [
        *[(f"random bytes #{i}", [rng.randbytes(rng.randint(64, 4096))]) for i in range(3)],
        ("PING first", [_qp(PacketType.PING)]),
        ("ACK first", [_qp(PacketType.ACK)]),
        ("ACKEPOCH first", [_qp(PacketType.ACKEPOCH, b"\0\0\0\1")]),
        ("FOLLOWERINFO of a stranger", [_qp(PacketType.FOLLOWERINFO, _li(STRANGER))]),
        (
            "FOLLOWERINFO with a config version far above",
            [_qp(PacketType.FOLLOWERINFO, _li(2, config_version=2**40))],
        ),
        ("FOLLOWERINFO, null data (length -1)", [_qp(PacketType.FOLLOWERINFO, None)]),
        ("FOLLOWERINFO, data length 0", [_qp(PacketType.FOLLOWERINFO, b"")]),
        (
            "FOLLOWERINFO, data length 2 GB",
            [struct.pack(">iqi", PacketType.FOLLOWERINFO, 0, TWO_GB) + b"\0" * 1000],
        ),
        ("FOLLOWERINFO, data length -2", [struct.pack(">iqi", PacketType.FOLLOWERINFO, 0, -2)]),
        ("truncated packet header", [_qp(PacketType.FOLLOWERINFO, info)[:7]]),
        ("truncated FOLLOWERINFO", [_qp(PacketType.FOLLOWERINFO, info)[:-6]]),
        ("unknown packet type", [_qp(999, b"hello")]),
    ]


def _li(sid: int, config_version: int = 0) -> bytes:
    return encode_learner_info(LearnerInfo(sid, config_version=config_version))


async def _expect_closed(port: int, chunks: list[bytes], *, pause: float = 0.0) -> bytes | None:
    """Send ``chunks`` (``pause`` s apart), then read until the peer closes; what came
    (None: the peer did not close within ``CLOSE_WITHIN``)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    got = b""
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)  # a slow sender's pace, not synchronisation
        async with asyncio.timeout(CLOSE_WITHIN):
            while data := await reader.read(65536):
                got += data
    except ConnectionResetError:
        pass
    except TimeoutError:
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return got


async def _flood(port: int, count: int) -> int:
    """Open ``count`` connections that send nothing; return how many the peer closed."""
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for i in range(0, count, 100):
        batch = await asyncio.gather(
            *(asyncio.open_connection(HOST, port) for _ in range(min(100, count - i)))
        )
        conns.extend(batch)

    async def closed(r: asyncio.StreamReader) -> bool:
        try:
            async with asyncio.timeout(CLOSE_WITHIN + 5):
                while await r.read(65536):
                    pass
            return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    try:
        results = await asyncio.gather(*(closed(r) for r, _ in conns))
    finally:
        for _, w in conns:
            w.close()
    return sum(results)


def _mntr(server: ChaosServer) -> dict[str, str]:
    text = four_letter_word(HOST, server.client_port, "mntr")
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


def _looking_and_phases(server: ChaosServer) -> tuple[int, int]:
    looking = phases = 0
    for line in server.events_path.read_text().splitlines():
        ev = json.loads(line).get("ev")
        looking += ev == "looking"
        phases += ev == "phase-over"
    return looking, phases


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ChaosCluster]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft < want:  # the flood needs the descriptors, here and in the peers
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    c = ChaosCluster(tmp_path / "hostile", [1, 2, 3], [MEMBER], direct=True, absent=[MEMBER])
    try:
        yield c
    finally:
        c.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        sys.stderr.write(c.logs())  # captured: pytest shows it when the test fails


def test_hostile_input_on_both_ports(cluster: ChaosCluster) -> None:
    c = cluster
    c.start()
    leader, epoch = c.wait_settled(60)
    peers = {sid: c.servers[sid] for sid in (1, 2, 3)}
    rss_before = {sid: s.rss_kib() or 0 for sid, s in peers.items()}
    bad_before = {
        sid: int(_mntr(s)["zk_zkquorum_election_connections_refused"]) for sid, s in peers.items()
    }
    history_before = {sid: _looking_and_phases(s) for sid, s in peers.items()}
    rejoining = min(sid for sid in peers if sid != leader)
    rng = random.Random(20240909)
    expected_bad = dict.fromkeys(peers, 0)
    tried: list[str] = []

    async def attack_all() -> None:
        # -- election ports: every peer, every bad input, one after the other (two
        # connections claiming the member's sid at once: the newer replaces the older,
        # which is closed unread - closed, but not counted as bad)
        attacks = _election_attacks(rng)
        for sid, s in peers.items():
            results = [await _expect_closed(s.election_port, ch) for _name, ch in attacks]
            wrong = {n: r for (n, _), r in zip(attacks, results, strict=True) if r != b""}
            assert not wrong, f"peer {sid} did not just close: {wrong}"
            expected_bad[sid] += len(attacks)
        tried.extend(f"election: {name}" for name, _ in attacks)

        # -- a member's notifications with a bogus config or a config version far above:
        # answered (the peer's current vote), the connection kept; not bad.
        lp = peers[1].election_port
        bogus = [
            ("bogus config text", _vote("this is \x00 not a config\nserver.x=\xff")),
            ("config version far above", _vote("server.1=h:1:2:participant\nversion=ffffffffff")),
            ("LEADING claim of a non-voter", _vote(None, state=ServerState.LEADING)),
        ]
        for name, frame in bogus:
            r, w = await asyncio.open_connection(HOST, lp)
            w.write(_hs() + frame)
            async with asyncio.timeout(5):
                head = await r.readexactly(4)
                body = await r.readexactly(int.from_bytes(head, "big"))
            answer = decode_notification_frame(head + body)
            assert isinstance(answer, Notification), (name, answer)
            assert answer.leader == leader and answer.state is not ServerState.LOOKING
            w.close()
            tried.append(f"election: {name} (answered with leader {answer.leader})")

        # -- slow senders that stop half-way through the initial message: closed by the
        # handshake timeout
        for sid, s in peers.items():
            got = await _expect_closed(
                s.election_port, [bytes([b]) for b in _hs()[:12]], pause=0.02
            )
            assert got == b""
            expected_bad[sid] += 1
        tried.append("election: slow sender stopping half-way through the initial message")
        # ... and half-way through a frame, as the member: harmless, and closed when the
        # member connects again (the newer connection replaces it)
        r1, w1 = await asyncio.open_connection(HOST, lp)
        w1.write(_hs() + _vote(None))
        async with asyncio.timeout(5):  # the answer: the connection is registered
            await r1.readexactly(int.from_bytes(await r1.readexactly(4), "big"))
        w1.write(_vote(None)[:9])
        await w1.drain()
        # (the peer resends its last notification to the member on the new connection
        # (SendWorker.run), then closes it for the bad frame length)
        assert await _expect_closed(lp, [_hs(), struct.pack(">i", -1)]) is not None
        expected_bad[1] += 1
        async with asyncio.timeout(CLOSE_WITHIN):
            while await r1.read(65536):
                pass
        w1.close()
        tried.append("election: slow sender stopping half-way through a frame")

        # -- the leader's quorum port
        qport = c.servers[leader].quorum_port
        qattacks = _quorum_attacks(rng)
        results = await asyncio.gather(*(_expect_closed(qport, ch) for _n, ch in qattacks))
        for (name, _), got in zip(qattacks, results, strict=True):
            # at most a LEADERINFO went out (never for these), then the close
            assert got == b"", (name, got)
        tried.extend(f"quorum: {name}" for name, _ in qattacks)
        info = _qp(PacketType.FOLLOWERINFO, encode_learner_info(LearnerInfo(2)))
        assert await _expect_closed(qport, [bytes([b]) for b in info[:10]], pause=0.02) == b""
        tried.append("quorum: slow sender stopping half-way through FOLLOWERINFO")
        # the leader counted what it refused: out-of-protocol learners and bad packets
        lm = await asyncio.to_thread(_mntr, c.servers[leader])
        refused = int(lm["zk_zkquorum_quorum_learners_dropped"]) + int(
            lm["zk_zkquorum_quorum_bad_packets"]
        )
        complete = len(qattacks) - 2  # the two truncated ones just end (EOF), uncounted
        assert refused >= complete - 3, (refused, complete, lm)  # random bytes may EOF too
        assert int(lm["zk_zkquorum_quorum_bad_packets"]) >= 2, lm  # the 2 GB and -2 lengths

        # every bad election connection so far was counted, exactly
        for sid, s in peers.items():
            m = await asyncio.to_thread(_mntr, s)
            got = int(m["zk_zkquorum_election_connections_refused"]) - bad_before[sid]
            assert got == expected_bad[sid], (sid, got, expected_bad[sid])

        # -- the flood: 1,000 silent connections on the leader's election port, 200 on its
        # quorum port, at once; meanwhile a follower crashes and comes back: it elects
        # (joins the leader) through the flooded port
        def crash_and_rejoin() -> None:
            peers[rejoining].kill()
            peers[rejoining].restart()

        closed = await asyncio.gather(
            _flood(c.servers[leader].election_port, FLOOD),
            _flood(qport, 200),
            asyncio.to_thread(crash_and_rejoin),
        )
        assert list(closed[:2]) == [FLOOD, 200]
        expected_bad[leader] += FLOOD
        expected_bad[rejoining] = 0  # a new process: its counters start again
        bad_before[rejoining] = 0
        tried.append(f"flood: {FLOOD} election + 200 quorum connections")

    t0 = time.monotonic()
    asyncio.run(attack_all())
    took = time.monotonic() - t0

    # The peers kept leading and following: same leader and epoch; nobody but the
    # restarted follower went LOOKING, and it rejoined.
    assert c.wait_settled(20) == (leader, epoch)
    looking, phases = history_before[rejoining]
    history_before[rejoining] = (looking + 1, phases)
    assert {sid: _looking_and_phases(s) for sid, s in peers.items()} == history_before
    for sid, s in peers.items():
        m = _mntr(s)
        got = int(m["zk_zkquorum_election_connections_refused"]) - bad_before[sid]
        assert got == expected_bad[sid], (sid, got, expected_bad[sid])
    rss_after = {sid: s.rss_kib() or 0 for sid, s in peers.items()}
    for sid in peers:
        if sid != rejoining:
            assert rss_after[sid] - rss_before[sid] < RSS_SLACK_KIB, (rss_before, rss_after)
    assert all(s.running() for s in peers.values())
    problems = check_logs({sid: s.log() for sid, s in peers.items()})
    assert not problems, problems
    print(
        f"\nhostile: {len(tried)} kinds of bad input in {took:.1f} s; bad election "
        f"connections counted per peer {expected_bad}; RSS KiB before {rss_before} after "
        f"{rss_after}; leader {leader} epoch {epoch} throughout; follower {rejoining} "
        "crashed and rejoined during the flood"
    )
